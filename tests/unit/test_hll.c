/* kv/hll against a model: a plain array of 16384 registers fed the same
 * elements. Through the sparse opcodes (splits and merges), the move to
 * dense, and merges, every register of the sketch equals the model's, and
 * the estimate of the sketch equals the estimate of the model's registers.
 * A sketch whose opcodes do not cover the registers is refused. (That the
 * bytes equal Redis' own is test_resp_hll.py's part.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "kv/hll.h"
#include "unit_rand.h"

static uint8_t model[KV_HLL_REGISTERS];

static void assert_same_registers(const kv_hll *h)
{
    uint8_t regs[KV_HLL_REGISTERS] = {0};
    assert_true(kv_hll_merge_max(regs, (const char *)h->p, h->len));
    assert_memory_equal(regs, model, sizeof(model));
    uint64_t a;
    assert_true(kv_hll_count((const char *)h->p, h->len, &a));
    assert_int_equal(a, kv_hll_count_registers(model));
}

static void test_adds_against_a_register_model(void **state)
{
    (void)state;
    uint64_t seed = 77;
    kv_hll h;
    kv_hll_create(&h);
    memset(model, 0, sizeof(model));
    assert_true(kv_hll_is_hll((const char *)h.p, h.len));
    int checks = 0;
    bool was_sparse = true;
    for (int i = 1; i <= 20000; i++) {
        char ele[32];
        int n = snprintf(ele, sizeof(ele), "x%llu", (unsigned long long)(unit_rand(&seed) % 50000));
        /* the model's view: merge a one-element sketch into it */
        kv_hll one;
        kv_hll_create(&one);
        assert_true(kv_hll_add(&one, ele, (size_t)n) >= 0);
        uint8_t before[KV_HLL_REGISTERS];
        memcpy(before, model, sizeof(model));
        assert_true(kv_hll_merge_max(model, (const char *)one.p, one.len));
        free(one.p);
        int r = kv_hll_add(&h, ele, (size_t)n);
        assert_int_equal(r, memcmp(before, model, sizeof(model)) != 0);
        bool sparse = h.p[4] == 1;
        if (sparse) assert_true(h.len <= KV_HLL_SPARSE_MAX_BYTES);
        if (was_sparse && !sparse) assert_int_equal(h.len, KV_HLL_DENSE_BYTES);
        if (i % 997 == 0 || (was_sparse && !sparse)) {
            assert_same_registers(&h);
            checks++;
        }
        was_sparse = sparse;
    }
    assert_false(was_sparse); /* 20000 adds end dense */
    assert_true(checks > 20);
    free(h.p);
}

static void test_merge_raises_registers(void **state)
{
    (void)state;
    kv_hll a, b;
    kv_hll_create(&a);
    kv_hll_create(&b);
    for (int i = 0; i < 300; i++) {
        char ele[16];
        int n = snprintf(ele, sizeof(ele), "a%d", i);
        kv_hll_add(&a, ele, (size_t)n);
        n = snprintf(ele, sizeof(ele), "b%d", i);
        kv_hll_add(&b, ele, (size_t)n);
    }
    memset(model, 0, sizeof(model));
    assert_true(kv_hll_merge_max(model, (const char *)a.p, a.len));
    assert_true(kv_hll_merge_max(model, (const char *)b.p, b.len));
    kv_hll sparse_dst, dense_dst;
    kv_hll_create(&sparse_dst);
    kv_hll_create(&dense_dst);
    assert_true(kv_hll_raise(&sparse_dst, model, false));
    assert_true(kv_hll_raise(&dense_dst, model, true));
    assert_int_equal(dense_dst.p[4], 0);
    assert_same_registers(&sparse_dst);
    assert_same_registers(&dense_dst);
    uint64_t c;
    assert_true(kv_hll_count((const char *)dense_dst.p, dense_dst.len, &c));
    assert_true(c > 570 && c < 630); /* 600 distinct, within 5% */
    free(a.p);
    free(b.p);
    free(sparse_dst.p);
    free(dense_dst.p);
}

static void test_corrupt_sketches_are_refused(void **state)
{
    (void)state;
    kv_hll h;
    kv_hll_create(&h);
    h.p[KV_HLL_HEADER] = 0x7f; /* XZERO of 16128 registers: 256 short */
    h.p[KV_HLL_HEADER + 1] = 0x00;
    kv_hll_invalidate(&h); /* a fresh cache would be answered as is, as in Redis */
    uint8_t regs[KV_HLL_REGISTERS] = {0};
    uint64_t c;
    assert_false(kv_hll_merge_max(regs, (const char *)h.p, h.len));
    assert_false(kv_hll_count((const char *)h.p, h.len, &c));
    /* an element landing past the covered registers finds no opcode */
    int refused = 0;
    for (int i = 0; i < 200 && !refused; i++) {
        char ele[16];
        int n = snprintf(ele, sizeof(ele), "k%d", i);
        refused = kv_hll_add(&h, ele, (size_t)n) < 0;
    }
    assert_true(refused);
    assert_false(kv_hll_is_hll("HYLL\x02", 5));
    assert_false(kv_hll_is_hll("HYLL\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 17));
    free(h.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adds_against_a_register_model),
        cmocka_unit_test(test_merge_raises_registers),
        cmocka_unit_test(test_corrupt_sketches_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
