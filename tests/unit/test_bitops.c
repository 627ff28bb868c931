/* kv/bitops against a bit-by-bit model: counts and searches over random
 * ranges (the word-at-a-time paths included), BITOP, and BITFIELD's
 * arithmetic at every width against 128-bit reference math. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kv/bitops.h"
#include "unit_rand.h"

static uint64_t seed = 0x9e3779b97f4a7c15u;

static uint64_t next(void)
{
    return unit_rand(&seed);
}

static void random_bytes(unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t r = next() % 4;
        p[i] = r == 0 ? 0 : r == 1 ? 0xff : (unsigned char)next();
    }
}

static void test_count_and_pos_against_the_model(void **state)
{
    (void)state;
    unsigned char p[64];
    for (int round = 0; round < 20000; round++) {
        size_t n = 1 + next() % sizeof(p);
        random_bytes(p, n);
        uint64_t a = next() % (8 * n), b = next() % (8 * n);
        uint64_t first = a < b ? a : b, last = a < b ? b : a;
        int bit = (int)(next() % 2);
        uint64_t count = 0;
        int64_t pos = -1;
        for (uint64_t i = first; i <= last; i++) {
            int v = kv_bit_get(p, n, i);
            count += (uint64_t)v;
            if (pos < 0 && v == bit) pos = (int64_t)i;
        }
        assert_int_equal(kv_bit_count(p, first, last), count);
        assert_int_equal(kv_bit_pos(p, first, last, bit), pos);
    }
}

static void test_set_get_and_range(void **state)
{
    (void)state;
    unsigned char p[2] = {0, 0};
    assert_int_equal(kv_bit_set(p, 0, 1), 0);
    assert_int_equal(p[0], 0x80); /* bit 0 is the most significant */
    assert_int_equal(kv_bit_set(p, 15, 1), 0);
    assert_int_equal(p[1], 0x01);
    assert_int_equal(kv_bit_set(p, 15, 0), 1);
    assert_int_equal(kv_bit_get(p, 2, 16), 0); /* past the end: 0 */
}

static void test_bitop(void **state)
{
    (void)state;
    const unsigned char a[] = {0xf0, 0x0f, 0xff}, b[] = {0xff};
    const unsigned char *srcs[] = {a, b};
    size_t lens[] = {3, 1};
    unsigned char out[3];
    kv_bit_op(KV_BITOP_AND, out, 3, srcs, lens, 2);
    assert_memory_equal(out, "\xf0\x00\x00", 3); /* the short one is zero-padded */
    kv_bit_op(KV_BITOP_OR, out, 3, srcs, lens, 2);
    assert_memory_equal(out, "\xff\x0f\xff", 3);
    kv_bit_op(KV_BITOP_XOR, out, 3, srcs, lens, 2);
    assert_memory_equal(out, "\x0f\x0f\xff", 3);
    kv_bit_op(KV_BITOP_NOT, out, 3, srcs, lens, 1);
    assert_memory_equal(out, "\x0f\xf0\x00", 3);
}

/* what a field of the type makes of an exact result */
static int ref_fit(__int128 target, unsigned bits, bool is_signed, int mode, int64_t *out)
{
    __int128 min = is_signed ? -((__int128)1 << (bits - 1)) : 0;
    __int128 max = is_signed ? ((__int128)1 << (bits - 1)) - 1 : ((__int128)1 << bits) - 1;
    if (target >= min && target <= max) {
        *out = (int64_t)target;
        return 1;
    }
    if (mode == KV_BF_FAIL) return 0;
    if (mode == KV_BF_SAT) {
        *out = (int64_t)(target > max ? max : min);
        return 1;
    }
    __int128 span = (__int128)1 << bits, r = target % span;
    if (r < 0) r += span;
    if (is_signed && r > max) r -= span;
    *out = (int64_t)r;
    return 1;
}

static void test_bitfield_against_reference_math(void **state)
{
    (void)state;
    unsigned char p[24];
    for (int round = 0; round < 50000; round++) {
        kv_bitfield_op op = {0};
        op.is_signed = next() % 2;
        op.bits = (uint8_t)(1 + next() % (op.is_signed ? 64 : 63));
        op.offset = next() % 64;
        op.overflow = (uint8_t)(next() % 3);
        op.kind = (uint8_t)(next() % 3);
        op.value = (int64_t)next();
        if (next() % 2) op.value >>= next() % 64; /* small ones too */
        random_bytes(p, sizeof(p));
        int64_t old;
        kv_bitfield_op get = op;
        get.kind = KV_BF_GET;
        assert_true(kv_bitfield_run(p, sizeof(p), &get, &old));
        /* the model of GET: the bits read one by one */
        __int128 raw = 0;
        for (unsigned i = 0; i < op.bits; i++)
            raw = raw * 2 + kv_bit_get(p, sizeof(p), op.offset + i);
        if (op.is_signed && raw >= ((__int128)1 << (op.bits - 1))) raw -= (__int128)1 << op.bits;
        assert_true((__int128)old == raw);

        __int128 target = op.kind == KV_BF_INCRBY ? (__int128)old + op.value
                          : op.is_signed          ? (__int128)op.value
                                                  : (__int128)(uint64_t)op.value;
        int64_t want = old, got;
        int ok =
            op.kind == KV_BF_GET ? 1 : ref_fit(target, op.bits, op.is_signed, op.overflow, &want);
        unsigned char before[24];
        memcpy(before, p, sizeof(p));
        assert_int_equal(kv_bitfield_run(p, sizeof(p), &op, &got), ok);
        if (!ok) {
            assert_memory_equal(p, before, sizeof(p)); /* FAIL writes nothing */
            continue;
        }
        assert_true(got == (op.kind == KV_BF_SET ? old : want));
        int64_t now;
        assert_true(kv_bitfield_run(p, sizeof(p), &get, &now));
        assert_true(now == want);
        /* the bits around the field are untouched */
        for (uint64_t i = 0; i < 8 * sizeof(p); i++)
            if (i < op.offset || i >= op.offset + op.bits)
                assert_int_equal(kv_bit_get(p, sizeof(p), i), kv_bit_get(before, sizeof(p), i));

        char enc[KV_BITFIELD_OP_BYTES];
        kv_bitfield_op back;
        kv_bitfield_op_encode(&op, enc);
        assert_true(kv_bitfield_op_decode(enc, sizeof(enc), &back));
        assert_memory_equal(&back.offset, &op.offset, sizeof(op.offset));
        assert_true(back.value == op.value && back.bits == op.bits && back.kind == op.kind);
    }
}

static void test_bitfield_decode_refuses(void **state)
{
    (void)state;
    kv_bitfield_op op = {.kind = KV_BF_SET, .bits = 63, .offset = 8}, out;
    char enc[KV_BITFIELD_OP_BYTES];
    kv_bitfield_op_encode(&op, enc);
    assert_true(kv_bitfield_op_decode(enc, sizeof(enc), &out));
    assert_false(kv_bitfield_op_decode(enc, sizeof(enc) - 1, &out));
    op.bits = 64; /* u64 is not a type */
    kv_bitfield_op_encode(&op, enc);
    assert_false(kv_bitfield_op_decode(enc, sizeof(enc), &out));
    op.bits = 0;
    kv_bitfield_op_encode(&op, enc);
    assert_false(kv_bitfield_op_decode(enc, sizeof(enc), &out));
    op.bits = 8;
    op.kind = 3;
    kv_bitfield_op_encode(&op, enc);
    assert_false(kv_bitfield_op_decode(enc, sizeof(enc), &out));
    op.kind = KV_BF_GET;
    op.offset = UINT64_MAX;
    kv_bitfield_op_encode(&op, enc);
    assert_false(kv_bitfield_op_decode(enc, sizeof(enc), &out));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_and_pos_against_the_model),
        cmocka_unit_test(test_set_get_and_range),
        cmocka_unit_test(test_bitop),
        cmocka_unit_test(test_bitfield_against_reference_math),
        cmocka_unit_test(test_bitfield_decode_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
