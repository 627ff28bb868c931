/* Tests for the two decoders of untrusted bytes in kv/: the command record
 * of the Raft log (kv/command) and the snapshot file (kv/snapshot).
 *
 * Both are checked against their header's layout with encoders written
 * here from the header alone, then for round trips of random content, and
 * for clean rejection of every truncation, every flipped byte, trailing
 * bytes and well-formed-but-wrong content (crafted with a valid checksum so
 * that the checks behind the checksum are reached). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/command.h"
#include "kv/snapshot.h"
#include "kv/store.h"
#include "util/hash.h"

/* ---- helpers ---- */

static uint64_t rng_state = 1;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rnd_bytes(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) p[i] = (char)rnd();
}

static void put_le(char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) p[i] = (char)(v >> (8 * i));
}

static void append_le(buf *b, uint64_t v, int bytes)
{
    char t[8];
    put_le(t, v, bytes);
    buf_append(b, t, (size_t)bytes);
}

/* ---- command: random round trips ---- */

#define MAX_TEST_ARGS 12

typedef struct rcmd {
    kv_command c;
    kv_slice args[MAX_TEST_ARGS];
    char data[MAX_TEST_ARGS][64];
} rcmd;

/* Any field value the format can carry, not only meaningful ones. */
static void random_command(rcmd *r)
{
    memset(r, 0, sizeof(*r));
    r->c.op = (uint8_t)(1 + rnd() % (KV_OP_MAX_ - 1));
    r->c.flags = (uint16_t)(rnd() & KV_FLAG_ALL_);
    r->c.now_ms = (int64_t)rnd();
    r->c.expire_ms = (int64_t)rnd();
    r->c.a = (int64_t)rnd();
    r->c.b = (int64_t)rnd();
    r->c.origin = rnd();
    r->c.seq = rnd();
    r->c.nargs = (uint32_t)(rnd() % (MAX_TEST_ARGS + 1));
    for (uint32_t i = 0; i < r->c.nargs; i++) {
        size_t n = rnd() % 4 == 0 ? 0 : rnd() % 64;
        rnd_bytes(r->data[i], n);
        r->args[i] = (kv_slice){r->data[i], n};
    }
    r->c.args = r->args;
}

static void assert_same_command(const kv_command *x, const kv_command *y)
{
    assert_int_equal(x->op, y->op);
    assert_int_equal(x->flags, y->flags);
    assert_int_equal(x->now_ms, y->now_ms);
    assert_int_equal(x->expire_ms, y->expire_ms);
    assert_int_equal(x->a, y->a);
    assert_int_equal(x->b, y->b);
    assert_int_equal(x->origin, y->origin);
    assert_int_equal(x->seq, y->seq);
    assert_int_equal(x->nargs, y->nargs);
    for (uint32_t i = 0; i < x->nargs; i++) {
        assert_int_equal(x->args[i].len, y->args[i].len);
        if (x->args[i].len) assert_memory_equal(x->args[i].ptr, y->args[i].ptr, x->args[i].len);
    }
}

static int decode(const char *p, size_t n, kv_command *out, kv_slice *args, uint32_t cap,
                  const char **err)
{
    uint32_t need = 0;
    *err = NULL;
    int rv = kv_command_decode(p, n, out, args, cap, &need, err);
    if (rv == -1) {
        assert_non_null(*err);
        assert_true(strlen(*err) > 0);
    }
    return rv;
}

static void test_command_round_trip(void **state)
{
    rng_state = 101;
    buf out;
    buf_init(&out);
    for (int t = 0; t < 3000; t++) {
        rcmd r;
        random_command(&r);
        /* encode appends after what the buffer already holds */
        buf_reset(&out);
        buf_append(&out, "prefix", 6);
        kv_command_encode(&r.c, &out);
        size_t n = kv_command_encoded_size(&r.c);
        assert_int_equal(out.len, 6 + n);
        assert_memory_equal(out.data, "prefix", 6);
        assert_int_equal(out.data[out.len], '\0');
        char *direct = malloc(n);
        kv_command_encode_to(&r.c, direct);
        assert_memory_equal(direct, out.data + 6, n);

        kv_command d;
        kv_slice args[MAX_TEST_ARGS];
        const char *err;
        assert_int_equal(decode(direct, n, &d, args, MAX_TEST_ARGS, &err), 0);
        assert_same_command(&r.c, &d);
        /* slices point into the input, not into copies */
        for (uint32_t i = 0; i < d.nargs; i++) {
            assert_true(d.args[i].ptr >= direct && d.args[i].ptr + d.args[i].len <= direct + n);
        }
        if (d.nargs) assert_ptr_equal(d.args, args);
        free(direct);
    }
    buf_close(&out);
}

/* The exact bytes of the layout in the header comment. */
static void test_command_layout(void **state)
{
    kv_slice args[2] = {{"key", 3}, {"", 0}};
    kv_command c = {.op = KV_OP_SETRANGE,
                    .flags = 0x00a5,
                    .now_ms = 0x0102030405060708ll,
                    .expire_ms = -2,
                    .a = 7,
                    .b = INT64_MIN,
                    .origin = 0xdeadbeefcafef00dull,
                    .seq = 1,
                    .nargs = 2,
                    .args = args};
    /* 67 bytes of content, zero-padded to a multiple of 8 */
    char want[72] = {0};
    want[0] = 1;
    want[1] = KV_OP_SETRANGE;
    put_le(want + 2, 0x00a5, 2);
    put_le(want + 4, 2, 4);
    put_le(want + 8, 0x0102030405060708ull, 8);
    put_le(want + 16, (uint64_t)-2, 8);
    put_le(want + 24, 7, 8);
    put_le(want + 32, (uint64_t)INT64_MIN, 8);
    put_le(want + 40, 0xdeadbeefcafef00dull, 8);
    put_le(want + 48, 1, 8);
    put_le(want + 56, 3, 4);
    memcpy(want + 60, "key", 3);
    put_le(want + 63, 0, 4);
    assert_int_equal(KV_COMMAND_HEADER_BYTES, 56);
    assert_int_equal(kv_command_encoded_size(&c), sizeof(want));
    char got[sizeof(want)];
    kv_command_encode_to(&c, got);
    assert_memory_equal(got, want, sizeof(want));

    /* no args: exactly the header, and decode needs no args array */
    kv_command n = {.op = KV_OP_FLUSH, .now_ms = 5};
    char hdr[KV_COMMAND_HEADER_BYTES];
    assert_int_equal(kv_command_encoded_size(&n), KV_COMMAND_HEADER_BYTES);
    kv_command_encode_to(&n, hdr);
    kv_command d;
    const char *err;
    assert_int_equal(decode(hdr, sizeof(hdr), &d, NULL, 0, &err), 0);
    assert_int_equal(d.op, KV_OP_FLUSH);
    assert_int_equal(d.nargs, 0);
    assert_int_equal(d.now_ms, 5);
}

static void test_command_truncations(void **state)
{
    rng_state = 202;
    for (int t = 0; t < 300; t++) {
        rcmd r;
        random_command(&r);
        size_t n = kv_command_encoded_size(&r.c);
        char *enc = malloc(n);
        kv_command_encode_to(&r.c, enc);
        for (size_t len = 0; len < n; len++) {
            /* a fresh allocation of exactly len bytes: ASan sees any read
             * past the end of the prefix */
            char *p = malloc(len ? len : 1);
            memcpy(p, enc, len);
            kv_command d;
            kv_slice args[MAX_TEST_ARGS];
            const char *err;
            int rv = decode(p, len, &d, args, MAX_TEST_ARGS, &err);
            if (rv != -1) fail_msg("prefix %zu of %zu bytes decoded with %d", len, n, rv);
            free(p);
        }
        free(enc);
    }
}

static void test_command_trailing_bytes(void **state)
{
    rng_state = 303;
    for (int t = 0; t < 200; t++) {
        rcmd r;
        random_command(&r);
        size_t n = kv_command_encoded_size(&r.c);
        for (size_t extra = 1; extra <= 9; extra++) {
            char *p = calloc(1, n + extra);
            kv_command_encode_to(&r.c, p);
            kv_command d;
            kv_slice args[MAX_TEST_ARGS];
            const char *err;
            assert_int_equal(decode(p, n + extra, &d, args, MAX_TEST_ARGS, &err), -1);
            free(p);
        }
    }
}

/* The encoding is zero-padded to a multiple of 8 (for libraft, see
 * kv/command.h): the padding must be there, be zeros, and be short. */
static void test_command_padding(void **state)
{
    rng_state = 313;
    int padded = 0;
    for (int t = 0; t < 500; t++) {
        rcmd r;
        random_command(&r);
        size_t n = kv_command_encoded_size(&r.c);
        size_t content = KV_COMMAND_HEADER_BYTES;
        for (uint32_t i = 0; i < r.c.nargs; i++) content += 4 + r.args[i].len;
        assert_int_equal(n % 8, 0);
        assert_true(n >= content && n - content < 8);
        char *p = malloc(n + 8);
        memset(p, 0x5a, n + 8);
        kv_command_encode_to(&r.c, p);
        assert_int_equal((unsigned char)p[n], 0x5a); /* writes exactly n bytes */
        kv_command d;
        kv_slice args[MAX_TEST_ARGS];
        const char *err;
        for (size_t i = content; i < n; i++) assert_int_equal(p[i], 0);
        if (n > content) padded++;
        /* any non-zero padding byte */
        for (size_t i = content; i < n; i++) {
            for (int bit = 0; bit < 8; bit++) {
                p[i] = (char)(1 << bit);
                assert_int_equal(decode(p, n, &d, args, MAX_TEST_ARGS, &err), -1);
                assert_non_null(strstr(err, "padding"));
            }
            p[i] = 0;
        }
        /* without its padding, or with a whole extra word of zeros */
        if (n > content) assert_int_equal(decode(p, content, &d, args, MAX_TEST_ARGS, &err), -1);
        memset(p + n, 0, 8);
        assert_int_equal(decode(p, n + 8, &d, args, MAX_TEST_ARGS, &err), -1);
        assert_int_equal(decode(p, n, &d, args, MAX_TEST_ARGS, &err), 0);
        assert_same_command(&r.c, &d);
        free(p);
    }
    assert_true(padded > 300);
}

static void test_command_bad_header(void **state)
{
    kv_slice a1[1] = {{"k", 1}};
    kv_command c = {.op = KV_OP_PUT, .nargs = 1, .args = a1};
    char p[64]; /* 61 bytes and 3 of padding */
    assert_int_equal(kv_command_encoded_size(&c), sizeof(p));
    kv_command_encode_to(&c, p);
    kv_command d;
    kv_slice args[4];
    const char *err;
    assert_int_equal(decode(p, sizeof(p), &d, args, 4, &err), 0);

    static const unsigned char bad_versions[] = {0, 2, 3, 0x7f, 0x80, 0xff};
    for (size_t i = 0; i < sizeof(bad_versions); i++) {
        char q[sizeof(p)];
        memcpy(q, p, sizeof(p));
        q[0] = (char)bad_versions[i];
        assert_int_equal(decode(q, sizeof(q), &d, args, 4, &err), -1);
        assert_non_null(strstr(err, "version"));
    }
    for (int op = 0; op < 256; op++) {
        char q[sizeof(p)];
        memcpy(q, p, sizeof(p));
        q[1] = (char)op;
        int rv = decode(q, sizeof(q), &d, args, 4, &err);
        if (op >= 1 && op < KV_OP_MAX_) {
            assert_int_equal(rv, 0);
            assert_int_equal(d.op, op);
        } else {
            assert_int_equal(rv, -1);
            assert_non_null(strstr(err, "op"));
        }
    }
    /* every defined flag is accepted, every undefined bit rejected */
    for (int bit = 0; bit < 16; bit++) {
        char q[sizeof(p)];
        memcpy(q, p, sizeof(p));
        put_le(q + 2, 1u << bit, 2);
        int rv = decode(q, sizeof(q), &d, args, 4, &err);
        if ((1u << bit) & KV_FLAG_ALL_) {
            assert_int_equal(rv, 0);
            assert_int_equal(d.flags, 1u << bit);
        } else {
            assert_int_equal(rv, -1);
            assert_non_null(strstr(err, "flags"));
        }
    }
    char q[sizeof(p)];
    memcpy(q, p, sizeof(p));
    put_le(q + 2, KV_FLAG_ALL_, 2);
    assert_int_equal(decode(q, sizeof(q), &d, args, 4, &err), 0);
    put_le(q + 2, 0xffff, 2);
    assert_int_equal(decode(q, sizeof(q), &d, args, 4, &err), -1);

    /* an argument length that overflows 32-bit arithmetic */
    memcpy(q, p, sizeof(p));
    put_le(q + KV_COMMAND_HEADER_BYTES, 0xffffffffu, 4);
    assert_int_equal(decode(q, sizeof(q), &d, args, 4, &err), -1);
    put_le(q + KV_COMMAND_HEADER_BYTES, 0xfffffffcu, 4);
    assert_int_equal(decode(q, sizeof(q), &d, args, 4, &err), -1);
    put_le(q + KV_COMMAND_HEADER_BYTES, 5, 4); /* one byte past the end */
    assert_int_equal(decode(q, sizeof(q), &d, args, 4, &err), -1);
    put_le(q + KV_COMMAND_HEADER_BYTES, 0, 4); /* 'k' becomes non-zero padding */
    assert_int_equal(decode(q, sizeof(q), &d, args, 4, &err), -1);
    assert_non_null(strstr(err, "padding"));
}

static void test_command_absurd_nargs(void **state)
{
    kv_command d;
    kv_slice args[4];
    const char *err;
    uint32_t need;
    char h[KV_COMMAND_HEADER_BYTES + 8] = {0};
    h[0] = 1;
    h[1] = KV_OP_DEL;
    /* more args than bytes could hold: malformed, never "need more space",
     * whatever the capacity offered */
    static const uint32_t absurd[] = {0xffffffffu, 0x80000000u, KV_COMMAND_MAX_ARGS + 1, 1000, 3};
    for (size_t i = 0; i < sizeof(absurd) / sizeof(absurd[0]); i++) {
        put_le(h + 4, absurd[i], 4);
        need = 0;
        err = NULL;
        assert_int_equal(kv_command_decode(h, sizeof(h), &d, args, 0, &need, &err), -1);
        assert_non_null(err);
        assert_int_equal(need, 0);
        err = NULL;
        assert_int_equal(kv_command_decode(h, sizeof(h), &d, args, 4, &need, &err), -1);
        assert_non_null(err);
    }

    /* at and over the cap with the bytes present (empty args) */
    size_t n = KV_COMMAND_HEADER_BYTES + 4 * (size_t)(KV_COMMAND_MAX_ARGS + 1);
    char *big = calloc(1, n);
    big[0] = 1;
    big[1] = KV_OP_EXPIRE_KEYS;
    put_le(big + 4, KV_COMMAND_MAX_ARGS + 1, 4);
    kv_slice *many = malloc(sizeof(kv_slice) * (KV_COMMAND_MAX_ARGS + 1));
    err = NULL;
    assert_int_equal(kv_command_decode(big, n, &d, many, KV_COMMAND_MAX_ARGS + 1, &need, &err), -1);
    assert_non_null(err);
    put_le(big + 4, KV_COMMAND_MAX_ARGS, 4);
    need = 0;
    assert_int_equal(kv_command_decode(big, n - 4, &d, args, 4, &need, &err), -2);
    assert_int_equal(need, KV_COMMAND_MAX_ARGS);
    assert_int_equal(kv_command_decode(big, n - 4, &d, many, need, &need, &err), 0);
    assert_int_equal(d.nargs, KV_COMMAND_MAX_ARGS);
    assert_int_equal(d.args[KV_COMMAND_MAX_ARGS - 1].len, 0);
    free(many);
    free(big);
}

static void test_command_need_more_args(void **state)
{
    kv_slice a[5] = {{"a", 1}, {"bb", 2}, {"", 0}, {"dddd", 4}, {"e", 1}};
    kv_command c = {.op = KV_OP_DEL, .nargs = 5, .args = a, .seq = 9};
    buf enc;
    buf_init(&enc);
    kv_command_encode(&c, &enc);
    kv_command d;
    kv_slice small[2], exact[5];
    uint32_t need = 0;
    const char *err = NULL;
    assert_int_equal(kv_command_decode(enc.data, enc.len, &d, small, 2, &need, &err), -2);
    assert_int_equal(need, 5);
    assert_null(err);
    assert_int_equal(kv_command_decode(enc.data, enc.len, &d, NULL, 0, &need, &err), -2);
    assert_int_equal(need, 5);
    /* retry with exactly what was asked for */
    assert_int_equal(kv_command_decode(enc.data, enc.len, &d, exact, need, &need, &err), 0);
    assert_same_command(&c, &d);
    /* -2 comes before the arguments are walked: a body that is malformed
     * past a plausible count is found on the retry */
    enc.data[enc.len - 1] = 'x';
    assert_int_equal(kv_command_decode(enc.data, enc.len - 1, &d, small, 2, &need, &err), -2);
    assert_int_equal(kv_command_decode(enc.data, enc.len - 1, &d, exact, 5, &need, &err), -1);
    buf_close(&enc);
}

static void test_op_names(void **state)
{
    static const char *names[] = {"put",
                                  "del",
                                  "mset",
                                  "incr",
                                  "incrfloat",
                                  "append",
                                  "setrange",
                                  "expire",
                                  "persist",
                                  "getex",
                                  "rename",
                                  "flush",
                                  "expire_keys",
                                  "noop",
                                  "member",
                                  "hset",
                                  "hdel",
                                  "hincr",
                                  "hincrfloat",
                                  "lpush",
                                  "lpop",
                                  "lset",
                                  "lrem",
                                  "ltrim",
                                  "linsert",
                                  "lmove",
                                  "lmpop",
                                  "sadd",
                                  "srem",
                                  "spop",
                                  "smove",
                                  "sstore",
                                  "zadd",
                                  "zrem",
                                  "zpop",
                                  "zremrangebyrank",
                                  "zremrangebyscore",
                                  "zremrangebylex",
                                  "zstore",
                                  "zmpop",
                                  "zrangestore",
                                  "setbit",
                                  "bitop",
                                  "bitfield",
                                  "pfadd",
                                  "pfmerge",
                                  "geostore",
                                  "copy",
                                  "sortstore",
                                  "restore",
                                  "config",
                                  "exec",
                                  "publish",
                                  "xadd",
                                  "xdel",
                                  "xtrim",
                                  "function_load",
                                  "function_delete",
                                  "function_flush",
                                  "xgroup",
                                  "xreadgroup",
                                  "xack",
                                  "xclaim",
                                  "xautoclaim",
                                  "function_restore",
                                  "xsetid"};
    assert_int_equal(sizeof(names) / sizeof(names[0]), KV_OP_MAX_ - 1);
    for (int op = 1; op < KV_OP_MAX_; op++) assert_string_equal(kv_op_name(op), names[op - 1]);
    assert_string_equal(kv_op_name(0), "?");
    assert_string_equal(kv_op_name(KV_OP_MAX_), "?");
    assert_string_equal(kv_op_name(-1), "?");
    assert_string_equal(kv_op_name(1000), "?");
}

/* ---- checksum ---- */

static void test_crc32c(void **state)
{
    /* the CRC-32C check value, and RFC 3720's test vectors */
    assert_int_equal(crc32c_update(0, "123456789", 9), 0xe3069283u);
    assert_int_equal(crc32c_update(0, "", 0), 0);
    char z[32] = {0};
    assert_int_equal(crc32c_update(0, z, 32), 0x8a9136aau);
    memset(z, 0xff, sizeof(z));
    assert_int_equal(crc32c_update(0, z, 32), 0x62a8ab43u);
    for (int i = 0; i < 32; i++) z[i] = (char)i;
    assert_int_equal(crc32c_update(0, z, 32), 0x46dd794eu);
    /* chaining over any split gives the one-shot value */
    rng_state = 404;
    char data[1000];
    rnd_bytes(data, sizeof(data));
    uint32_t whole = crc32c_update(0, data, sizeof(data));
    for (int t = 0; t < 200; t++) {
        size_t cut1 = rnd() % sizeof(data), cut2 = cut1 + rnd() % (sizeof(data) - cut1);
        uint32_t c = crc32c_update(0, data, cut1);
        c = crc32c_update(c, data + cut1, cut2 - cut1);
        c = crc32c_update(c, data + cut2, sizeof(data) - cut2);
        assert_int_equal(c, whole);
    }
    /* the instruction-based and the table-driven versions agree (the
     * check value alone would not catch a wrong tail or chaining) */
    assert_int_equal(crc32c_update_portable(0, "123456789", 9), 0xe3069283u);
    for (int t = 0; t < 500; t++) {
        size_t off = rnd() % 16, len = rnd() % (sizeof(data) - off);
        uint32_t seed = (uint32_t)rnd();
        assert_int_equal(crc32c_update(seed, data + off, len),
                         crc32c_update_portable(seed, data + off, len));
    }
}

/* ---- snapshot: an encoder written from the header ---- */

typedef struct snap_ent {
    const char *k;
    size_t kn;
    const char *v;
    size_t vn;
    uint64_t create_rev, mod_rev, version;
    int64_t expire_ms;
} snap_ent;

static void craft_snapshot(buf *out, uint32_t version, uint64_t revision, uint64_t count,
                           const snap_ent *e, size_t n)
{
    buf_reset(out);
    buf_append(out, "CAIRNSNP", 8);
    append_le(out, version, 4);
    append_le(out, 0, 4);
    append_le(out, revision, 8);
    append_le(out, count, 8);
    for (size_t i = 0; i < n; i++) {
        append_le(out, e[i].kn, 4);
        append_le(out, e[i].vn, 4);
        append_le(out, e[i].create_rev, 8);
        append_le(out, e[i].mod_rev, 8);
        append_le(out, e[i].version, 8);
        append_le(out, (uint64_t)e[i].expire_ms, 8);
        if (version >= 4) append_le(out, 0, 2); /* type string, encoding raw */
        buf_append(out, e[i].k, e[i].kn);
        buf_append(out, e[i].v, e[i].vn);
    }
    if (version >= 2) append_le(out, 0, 4); /* empty member table */
    if (version >= 3) append_le(out, 0, 4); /* empty dedup table */
    if (version >= 6) {                     /* the default limits */
        kv_limits l;
        kv_limits_default(&l);
        append_le(out, KV_LIMIT_COUNT_, 4);
        for (int i = 0; i < KV_LIMIT_COUNT_; i++) append_le(out, l.v[i], 8);
    }
    if (version >= 9) append_le(out, 0, 4); /* no function libraries */
    append_le(out, crc32c_update(0, out->data, out->len), 4);
}

static void snapshot_of(const kv_store *s, buf *out)
{
    buf_reset(out);
    assert_int_equal(kv_snapshot_write(s, kv_snapshot_sink_buf, out), 0);
}

/* Every entry of the store, in order, as snap_ent (pointing into it). */
static size_t entries_of(const kv_store *s, snap_ent **out)
{
    size_t n = kv_keyspace_count(&s->ks), i = 0;
    *out = calloc(n ? n : 1, sizeof(snap_ent));
    for (kv_entry *e = kv_keyspace_first(&s->ks); e; e = kv_keyspace_next(e), i++) {
        (*out)[i] = (snap_ent){kv_entry_key(e), e->key_len, e->value,   e->value_len,
                               e->create_rev,   e->mod_rev, e->version, e->expire_ms};
    }
    assert_int_equal(i, n);
    return n;
}

static void assert_same_store(const kv_store *x, const kv_store *y)
{
    assert_int_equal(x->revision, y->revision);
    assert_int_equal(kv_keyspace_count(&x->ks), kv_keyspace_count(&y->ks));
    assert_int_equal(x->ks.volatile_count, y->ks.volatile_count);
    const kv_entry *a = kv_keyspace_first(&x->ks), *b = kv_keyspace_first(&y->ks);
    for (; a && b; a = kv_keyspace_next(a), b = kv_keyspace_next(b)) {
        assert_int_equal(a->key_len, b->key_len);
        if (a->key_len) assert_memory_equal(kv_entry_key(a), kv_entry_key(b), a->key_len);
        assert_int_equal(a->value_len, b->value_len);
        if (a->value_len) assert_memory_equal(a->value, b->value, a->value_len);
        assert_int_equal(a->create_rev, b->create_rev);
        assert_int_equal(a->mod_rev, b->mod_rev);
        assert_int_equal(a->version, b->version);
        assert_int_equal(a->expire_ms, b->expire_ms);
    }
    assert_null(a);
    assert_null(b);
}

static void apply_put(kv_store *s, const char *k, size_t kn, const char *v, size_t vn,
                      int64_t expire_ms)
{
    kv_slice args[2] = {{k, kn}, {v, vn}};
    kv_command c = {
        .op = KV_OP_PUT, .now_ms = 1000, .expire_ms = expire_ms, .nargs = 2, .args = args};
    kv_result r;
    kv_store_apply(s, &c, &r);
    assert_int_equal(r.status, KV_OK);
}

/* A store with n random binary keys (with \0 and high bytes), some
 * overwritten, some with expiries, some values empty. */
static void fill_random(kv_store *s, int n, size_t max_val)
{
    char k[40], *v = malloc(max_val + 1);
    for (int i = 0; i < n; i++) {
        size_t kn = 1 + rnd() % 32;
        rnd_bytes(k, kn);
        if (rnd() % 4 == 0) k[rnd() % kn] = '\0';
        size_t vn = rnd() % 3 == 0 ? 0 : rnd() % (max_val + 1);
        rnd_bytes(v, vn);
        int64_t exp = rnd() % 3 == 0 ? 5000 + (int64_t)(rnd() % 100000) : 0;
        apply_put(s, k, kn, v, vn, exp);
        if (rnd() % 5 == 0) apply_put(s, k, kn, v, vn / 2, exp); /* version 2 */
    }
    free(v);
}

static int load(kv_store *s, const buf *b, char *err, size_t errlen)
{
    /* an exact-size copy so that ASan catches reads past the end */
    char *p = malloc(b->len ? b->len : 1);
    if (b->len) memcpy(p, b->data, b->len);
    err[0] = '\0';
    int rv = kv_snapshot_load(s, p, b->len, err, errlen);
    if (rv != 0) {
        assert_int_equal(rv, -1);
        assert_true(strlen(err) > 0);
    }
    free(p);
    return rv;
}

/* ---- snapshot: round trips ---- */

static void test_snapshot_empty(void **state)
{
    kv_store a, b;
    kv_store_init(&a, 1);
    kv_store_init(&b, 2);
    buf out, want;
    buf_init(&out);
    buf_init(&want);
    snapshot_of(&a, &out);
    craft_snapshot(&want, 9, 0, 0, NULL, 0);
    assert_int_equal(out.len, 48 + 4 + 8 * KV_LIMIT_COUNT_); /* + the empty library table */
    assert_memory_equal(out.data, want.data, want.len);

    /* an empty snapshot with a revision replaces a store with content */
    apply_put(&b, "x", 1, "y", 1, 0);
    craft_snapshot(&want, 9, 77, 0, NULL, 0);
    char err[256];
    assert_int_equal(load(&b, &want, err, sizeof(err)), 0);
    assert_int_equal(b.revision, 77);
    assert_int_equal(kv_keyspace_count(&b.ks), 0);
    assert_null(kv_store_get(&b, "x", 1, 0));
    snapshot_of(&b, &out);
    assert_int_equal(out.len, want.len);
    assert_memory_equal(out.data, want.data, want.len);

    /* the encodings' limits travel with the snapshot; an older one (5)
     * gives the defaults */
    kv_slice cfg[4] = {
        {"zset-max-ziplist-entries", 24}, {"7", 1}, {"hash-max-listpack-value", 23}, {"1kb", 3}};
    kv_command set = {.op = KV_OP_CONFIG, .nargs = 4, .args = cfg};
    kv_result r;
    kv_store_apply(&a, &set, &r);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(a.ks.limits.v[KV_LIMIT_ZSET_ENTRIES], 7);
    assert_int_equal(a.ks.limits.v[KV_LIMIT_HASH_VALUE], 1024);
    cfg[3] = (kv_slice){"-1", 2}; /* refused whole: the first pair is not set either */
    cfg[1] = (kv_slice){"9", 1};
    kv_store_apply(&a, &set, &r);
    assert_int_equal(r.status, KV_ERR_MALFORMED);
    assert_int_equal(a.ks.limits.v[KV_LIMIT_ZSET_ENTRIES], 7);
    snapshot_of(&a, &out);
    assert_int_equal(load(&b, &out, err, sizeof(err)), 0);
    assert_memory_equal(&b.ks.limits, &a.ks.limits, sizeof(kv_limits));
    craft_snapshot(&want, 5, 77, 0, NULL, 0);
    assert_int_equal(load(&b, &want, err, sizeof(err)), 0);
    kv_limits def;
    kv_limits_default(&def);
    assert_memory_equal(&b.ks.limits, &def, sizeof(kv_limits));
    /* a version-6 table written before hll-sparse-max-bytes was a limit
     * (7 of them) loads, the newer limit at its default; a table of none
     * or of more than this binary knows is refused */
    /* before the table, the (empty) library table and the CRC */
    size_t table = out.len - 4 - 4 - 4 - 8 * KV_LIMIT_COUNT_;
    for (uint32_t n = 0; n <= KV_LIMIT_COUNT_ + 1; n++) {
        buf old;
        buf_init(&old);
        buf_append(&old, out.data, table);
        append_le(&old, n, 4);
        for (uint32_t i = 0; i < n; i++)
            append_le(&old, i < KV_LIMIT_COUNT_ ? a.ks.limits.v[i] : 1, 8);
        append_le(&old, 0, 4); /* no libraries */
        append_le(&old, crc32c_update(0, old.data, old.len), 4);
        int rv = load(&b, &old, err, sizeof(err));
        if (n == 0 || n > KV_LIMIT_COUNT_) {
            assert_int_equal(rv, -1);
        } else {
            assert_int_equal(rv, 0);
            for (uint32_t i = 0; i < KV_LIMIT_COUNT_; i++)
                assert_int_equal(b.ks.limits.v[i], i < n ? a.ks.limits.v[i] : def.v[i]);
        }
        buf_close(&old);
    }
    assert_int_equal(KV_LIMIT_HLL_SPARSE, 7); /* the one added after the first table */
    buf_close(&out);
    buf_close(&want);
    kv_store_close(&a);
    kv_store_close(&b);
}

static void test_snapshot_round_trip_10k(void **state)
{
    rng_state = 505;
    kv_store a, b;
    kv_store_init(&a, 11);
    kv_store_init(&b, 12345);
    fill_random(&a, 10000, 100);
    assert_true(kv_keyspace_count(&a.ks) > 9800);
    assert_true(a.ks.volatile_count > 2000);

    buf out, want, again;
    buf_init(&out);
    buf_init(&want);
    buf_init(&again);
    snapshot_of(&a, &out);
    /* the writer follows the documented format exactly */
    snap_ent *ents;
    size_t n = entries_of(&a, &ents);
    craft_snapshot(&want, 9, a.revision, n, ents, n);
    assert_int_equal(out.len, want.len);
    assert_memory_equal(out.data, want.data, want.len);
    free(ents);

    /* load into a store with another seed and content of its own */
    apply_put(&b, "old", 3, "x", 1, 0);
    char err[256];
    assert_int_equal(load(&b, &out, err, sizeof(err)), 0);
    assert_same_store(&a, &b);
    for (kv_entry *e = kv_keyspace_first(&a.ks); e; e = kv_keyspace_next(e)) {
        kv_entry *f = kv_keyspace_find(&b.ks, kv_entry_key(e), e->key_len);
        assert_non_null(f);
        assert_int_equal(f->mod_rev, e->mod_rev);
    }
    assert_null(kv_keyspace_find(&b.ks, "old", 3));
    snapshot_of(&b, &again);
    assert_int_equal(again.len, out.len);
    assert_memory_equal(again.data, out.data, out.len);

    /* the loaded store keeps working: writes continue from the revision */
    uint64_t rev = b.revision;
    kv_entry *first = kv_keyspace_first(&b.ks);
    uint64_t create = first->create_rev;
    apply_put(&b, kv_entry_key(first), first->key_len, "new", 3, 0);
    assert_int_equal(b.revision, rev + 1);
    assert_int_equal(kv_keyspace_first(&b.ks)->create_rev, create);
    assert_int_equal(kv_keyspace_first(&b.ks)->mod_rev, rev + 1);
    buf_close(&out);
    buf_close(&want);
    buf_close(&again);
    kv_store_close(&a);
    kv_store_close(&b);
}

/* Values bigger than the writer's 64 KiB chunk, and keys that need
 * ordering by length (prefixes) and contain \0, and the empty key. */
static void test_snapshot_edge_content(void **state)
{
    kv_store a, b;
    kv_store_init(&a, 21);
    kv_store_init(&b, 22);
    size_t big_n = 300 * 1000;
    char *big = malloc(big_n);
    rng_state = 606;
    rnd_bytes(big, big_n);
    apply_put(&a, "big", 3, big, big_n, 0);
    apply_put(&a, "bi", 2, big, 65536, 0);
    apply_put(&a, "b", 1, big, 65535, 0);
    apply_put(&a, "a\0", 2, "", 0, 0);
    apply_put(&a, "a", 1, "v", 1, -1); /* any expiry value round-trips */
    apply_put(&a, "\0", 1, "v", 1, INT64_MAX);
    apply_put(&a, "", 0, "empty key", 9, 0);
    buf out, again;
    buf_init(&out);
    buf_init(&again);
    snapshot_of(&a, &out);
    char err[256];
    if (load(&b, &out, err, sizeof(err)) != 0) fail_msg("load failed: %s", err);
    assert_same_store(&a, &b);
    kv_entry *e = kv_store_get(&b, "big", 3, 0);
    assert_int_equal(e->value_len, big_n);
    assert_memory_equal(e->value, big, big_n);
    e = kv_store_get(&b, "", 0, 0);
    assert_non_null(e);
    assert_memory_equal(e->value, "empty key", 9);
    snapshot_of(&b, &again);
    assert_int_equal(again.len, out.len);
    assert_memory_equal(again.data, out.data, out.len);
    free(big);
    buf_close(&out);
    buf_close(&again);
    kv_store_close(&a);
    kv_store_close(&b);
}

/* ---- snapshot: rejection ---- */

/* A store that must not change when a load fails. */
typedef struct victim {
    kv_store s;
    buf before;
} victim;

static void victim_init(victim *v)
{
    kv_store_init(&v->s, 31);
    apply_put(&v->s, "keep", 4, "me", 2, 0);
    apply_put(&v->s, "and", 3, "me", 2, 123456);
    buf_init(&v->before);
    snapshot_of(&v->s, &v->before);
}

static void victim_check(victim *v)
{
    buf now;
    buf_init(&now);
    snapshot_of(&v->s, &now);
    assert_int_equal(now.len, v->before.len);
    assert_memory_equal(now.data, v->before.data, now.len);
    assert_int_equal(v->s.revision, 2);
    assert_non_null(kv_store_get(&v->s, "keep", 4, 0));
    buf_close(&now);
}

static void victim_close(victim *v)
{
    buf_close(&v->before);
    kv_store_close(&v->s);
}

static void expect_load_error(victim *v, const buf *b, const char *substr)
{
    char err[256];
    int rv = load(&v->s, b, err, sizeof(err));
    if (rv != -1) fail_msg("bad snapshot loaded (expected an error about '%s')", substr);
    if (substr && !strstr(err, substr)) fail_msg("error '%s' does not mention '%s'", err, substr);
    victim_check(v);
}

static void test_snapshot_truncations(void **state)
{
    rng_state = 707;
    kv_store a;
    kv_store_init(&a, 41);
    fill_random(&a, 40, 30);
    buf out, cut;
    buf_init(&out);
    buf_init(&cut);
    snapshot_of(&a, &out);
    victim v;
    victim_init(&v);
    for (size_t len = 0; len < out.len; len++) {
        buf_reset(&cut);
        buf_append(&cut, out.data, len);
        expect_load_error(&v, &cut, NULL);
    }
    /* a truncation whose checksum is made valid again still fails, at
     * every entry boundary and inside entries */
    for (size_t len = 32; len + 4 < out.len; len += 7) {
        buf_reset(&cut);
        buf_append(&cut, out.data, len);
        append_le(&cut, crc32c_update(0, cut.data, cut.len), 4);
        expect_load_error(&v, &cut, "offset");
    }
    victim_close(&v);
    buf_close(&out);
    buf_close(&cut);
    kv_store_close(&a);
}

static void test_snapshot_flipped_bytes(void **state)
{
    rng_state = 808;
    kv_store a;
    kv_store_init(&a, 42);
    fill_random(&a, 30, 30);
    buf out, bad;
    buf_init(&out);
    buf_init(&bad);
    snapshot_of(&a, &out);
    victim v;
    victim_init(&v);
    for (size_t i = 0; i < out.len; i++) {
        /* one bit, and a whole-byte change */
        for (int k = 0; k < 2; k++) {
            buf_reset(&bad);
            buf_append(&bad, out.data, out.len);
            bad.data[i] ^= k ? (char)0xff : (char)(1 << (i % 8));
            expect_load_error(&v, &bad, NULL);
        }
    }
    /* the message names the checksum when that is what failed */
    buf_reset(&bad);
    buf_append(&bad, out.data, out.len);
    bad.data[40] ^= 1;
    expect_load_error(&v, &bad, "checksum");
    victim_close(&v);
    buf_close(&out);
    buf_close(&bad);
    kv_store_close(&a);
}

static void test_snapshot_crafted_errors(void **state)
{
    victim v;
    victim_init(&v);
    buf b;
    buf_init(&b);
    snap_ent e[3] = {
        {"a", 1, "1", 1, 1, 1, 1, 0},
        {"b", 1, "2", 1, 2, 2, 1, 0},
        {"c", 1, "3", 1, 3, 3, 1, 0},
    };

    /* sanity: the crafted form of a good snapshot loads */
    {
        kv_store t;
        kv_store_init(&t, 1);
        char err[256];
        craft_snapshot(&b, 1, 3, 3, e, 3);
        assert_int_equal(load(&t, &b, err, sizeof(err)), 0);
        assert_int_equal(kv_keyspace_count(&t.ks), 3);
        kv_store_close(&t);
    }

    snap_ent swapped[3] = {e[0], e[2], e[1]};
    craft_snapshot(&b, 1, 3, 3, swapped, 3);
    expect_load_error(&v, &b, "out of order");
    snap_ent dup[3] = {e[0], e[1], e[1]};
    craft_snapshot(&b, 1, 3, 3, dup, 3);
    expect_load_error(&v, &b, "out of order");
    /* a longer key before its own prefix */
    snap_ent pre[2] = {{"ab", 2, "", 0, 1, 1, 1, 0}, {"a", 1, "", 0, 1, 1, 1, 0}};
    craft_snapshot(&b, 1, 1, 2, pre, 2);
    expect_load_error(&v, &b, "out of order");
    /* byte order is unsigned: \xff sorts after 'a' */
    snap_ent sign[2] = {{"\xff", 1, "", 0, 1, 1, 1, 0}, {"a", 1, "", 0, 1, 1, 1, 0}};
    craft_snapshot(&b, 1, 1, 2, sign, 2);
    expect_load_error(&v, &b, "out of order");

    /* the empty key only first, and only once */
    snap_ent empty2[2] = {{"", 0, "", 0, 1, 1, 1, 0}, {"", 0, "", 0, 1, 1, 1, 0}};
    craft_snapshot(&b, 1, 1, 2, empty2, 2);
    expect_load_error(&v, &b, "out of order");
    snap_ent empty_late[2] = {{"a", 1, "", 0, 1, 1, 1, 0}, {"", 0, "", 0, 1, 1, 1, 0}};
    craft_snapshot(&b, 1, 1, 2, empty_late, 2);
    expect_load_error(&v, &b, "out of order");

    craft_snapshot(&b, 10, 3, 3, e, 3);
    expect_load_error(&v, &b, "version");
    craft_snapshot(&b, 0, 3, 3, e, 3);
    expect_load_error(&v, &b, "version");
    craft_snapshot(&b, 1, 3, 4, e, 3); /* count says more than there is */
    expect_load_error(&v, &b, "past the end");
    craft_snapshot(&b, 1, 3, UINT64_MAX, e, 3);
    expect_load_error(&v, &b, "past the end");
    craft_snapshot(&b, 1, 3, 2, e, 3); /* count says less */
    expect_load_error(&v, &b, "trailing");
    craft_snapshot(&b, 1, 3, 0, e, 3);
    expect_load_error(&v, &b, "trailing");

    /* lengths past the end, including ones that overflow 32 bits */
    static const uint32_t bad_lens[][2] = {
        {2, 1},
        {1, 2},
        {0xffffffffu, 1},
        {1, 0xffffffffu},
        {0x80000000u, 0x80000000u},
        {0xffffffffu, 0xffffffffu},
    };
    for (size_t i = 0; i < sizeof(bad_lens) / sizeof(bad_lens[0]); i++) {
        craft_snapshot(&b, 1, 1, 1, e, 1);
        put_le(b.data + 32, bad_lens[i][0], 4);
        put_le(b.data + 36, bad_lens[i][1], 4);
        b.len -= 4;
        append_le(&b, crc32c_update(0, b.data, b.len), 4);
        expect_load_error(&v, &b, "offset");
    }

    /* not a snapshot at all */
    buf_reset(&b);
    expect_load_error(&v, &b, "snapshot");
    buf_append(&b, "CAIRNSNQ", 8);
    buf_append(&b, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 28);
    expect_load_error(&v, &b, "magic");
    craft_snapshot(&b, 1, 3, 3, e, 3);
    b.data[0] = 'c';
    b.len -= 4;
    append_le(&b, crc32c_update(0, b.data, b.len), 4);
    expect_load_error(&v, &b, "magic");
    /* a header that stops before the checksum */
    buf_reset(&b);
    buf_append(&b, "CAIRNSNP", 8);
    expect_load_error(&v, &b, NULL);

    victim_close(&v);
    buf_close(&b);
}

/* Crafted but valid: the empty key first, \0 keys, zero-length values. */
static void test_snapshot_crafted_valid(void **state)
{
    snap_ent e[4] = {
        {"", 0, "root", 4, 1, 1, 1, 0},
        {"\0", 1, "", 0, 2, 5, 3, -7},
        {"\0\0", 2, "x", 1, 3, 3, 1, 99},
        {"\xff", 1, "", 0, 4, 4, 1, 0},
    };
    buf b, out;
    buf_init(&b);
    buf_init(&out);
    craft_snapshot(&b, 3, 5, 4, e, 4);
    kv_store s;
    kv_store_init(&s, 3);
    char err[256];
    if (load(&s, &b, err, sizeof(err)) != 0) fail_msg("load failed: %s", err);
    assert_int_equal(s.revision, 5);
    assert_int_equal(kv_keyspace_count(&s.ks), 4);
    assert_int_equal(s.ks.volatile_count, 2);
    kv_entry *x = kv_keyspace_find(&s.ks, "\0", 1);
    assert_non_null(x);
    assert_int_equal(x->create_rev, 2);
    assert_int_equal(x->mod_rev, 5);
    assert_int_equal(x->version, 3);
    assert_int_equal(x->expire_ms, -7);
    assert_int_equal(x->value_len, 0);
    snapshot_of(&s, &out);
    craft_snapshot(&b, 9, 5, 4, e, 4); /* a version 3 file is written back as 9 */
    assert_int_equal(out.len, b.len);
    assert_memory_equal(out.data, b.data, b.len);
    buf_close(&b);
    buf_close(&out);
    kv_store_close(&s);
}

/* An empty key is a legal key (Redis allows SET "" x), so a store holding
 * one must survive a snapshot round trip. */
/* A string changed in place is "raw" to OBJECT ENCODING, one INCRBYFLOAT
 * made "embstr", whatever their content says; a snapshot keeps that (7),
 * and an older version's string with such an encoding byte is refused. */
static void test_snapshot_keeps_string_encodings(void **state)
{
    (void)state;
    kv_store a, b;
    kv_store_init(&a, 1);
    kv_store_init(&b, 2);
    apply_put(&a, "app", 3, "12", 2, 0);
    apply_put(&a, "flt", 3, "1", 1, 0);
    apply_put(&a, "set", 3, "34", 2, 0);
    kv_slice app[2] = {{"app", 3}, {"3", 1}}, flt[2] = {{"flt", 3}, {"2", 1}};
    kv_command c1 = {.op = KV_OP_APPEND, .nargs = 2, .args = app};
    kv_command c2 = {.op = KV_OP_INCRFLOAT, .nargs = 2, .args = flt};
    kv_result r;
    kv_store_apply(&a, &c1, &r);
    kv_store_apply(&a, &c2, &r);
    assert_string_equal(kv_encoding_name(kv_store_get(&a, "app", 3, 0)), "raw");    /* "123" */
    assert_string_equal(kv_encoding_name(kv_store_get(&a, "flt", 3, 0)), "embstr"); /* "3" */
    assert_string_equal(kv_encoding_name(kv_store_get(&a, "set", 3, 0)), "int");
    buf out;
    buf_init(&out);
    snapshot_of(&a, &out);
    char err[256];
    assert_int_equal(load(&b, &out, err, sizeof(err)), 0);
    assert_string_equal(kv_encoding_name(kv_store_get(&b, "app", 3, 0)), "raw");
    assert_string_equal(kv_encoding_name(kv_store_get(&b, "flt", 3, 0)), "embstr");
    assert_string_equal(kv_encoding_name(kv_store_get(&b, "set", 3, 0)), "int");
    /* the same bytes labelled version 6 (and the CRC fixed): refused */
    out.data[8] = 6;
    uint32_t crc = crc32c_update(0, out.data, out.len - 4);
    for (int i = 0; i < 4; i++) out.data[out.len - 4 + i] = (char)(crc >> (8 * i));
    assert_int_equal(load(&b, &out, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unknown type"));
    buf_close(&out);
    kv_store_close(&a);
    kv_store_close(&b);
}

static void test_snapshot_empty_key_round_trip(void **state)
{
    kv_store a, b;
    kv_store_init(&a, 51);
    kv_store_init(&b, 52);
    apply_put(&a, "", 0, "v", 1, 0);
    apply_put(&a, "k", 1, "w", 1, 0);
    buf out;
    buf_init(&out);
    snapshot_of(&a, &out);
    char err[256];
    if (load(&b, &out, err, sizeof(err)) != 0) fail_msg("load failed: %s", err);
    assert_same_store(&a, &b);
    buf_close(&out);
    kv_store_close(&a);
    kv_store_close(&b);
}

/* ---- snapshot: sinks ---- */

typedef struct fail_sink {
    int calls, fail_at;
    size_t bytes;
} fail_sink;

static int failing_sink(void *ctx, const void *p, size_t n)
{
    fail_sink *f = ctx;
    if (++f->calls == f->fail_at) return -28; /* -ENOSPC */
    f->bytes += n;
    return 0;
}

static void test_snapshot_sinks(void **state)
{
    rng_state = 909;
    kv_store a;
    kv_store_init(&a, 61);
    fill_random(&a, 3000, 200); /* several 64 KiB chunks */
    buf out;
    buf_init(&out);
    snapshot_of(&a, &out);
    assert_true(out.len > 3 * 65536);

    /* the fd sink writes the same bytes */
    FILE *f = tmpfile();
    assert_non_null(f);
    int fd = fileno(f);
    assert_int_equal(kv_snapshot_write(&a, kv_snapshot_sink_fd, &fd), 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    char *back = malloc(out.len + 1);
    assert_int_equal(fread(back, 1, out.len + 1, f), out.len);
    assert_memory_equal(back, out.data, out.len);
    free(back);
    fclose(f);
    /* a bad descriptor is an errno, not a crash */
    int bad = -1;
    assert_true(kv_snapshot_write(&a, kv_snapshot_sink_fd, &bad) < 0);

    /* a sink error stops the writer and comes back unchanged */
    for (int at = 1; at <= 4; at++) {
        fail_sink fs = {.fail_at = at};
        assert_int_equal(kv_snapshot_write(&a, failing_sink, &fs), -28);
        assert_int_equal(fs.calls, at);
    }
    fail_sink ok = {.fail_at = -1};
    assert_int_equal(kv_snapshot_write(&a, failing_sink, &ok), 0);
    assert_int_equal(ok.bytes, out.len);
    /* and a failed write leaves nothing behind that breaks the next one */
    buf again;
    buf_init(&again);
    snapshot_of(&a, &again);
    assert_int_equal(again.len, out.len);
    assert_memory_equal(again.data, out.data, out.len);
    buf_close(&again);
    buf_close(&out);
    kv_store_close(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command_round_trip),
        cmocka_unit_test(test_command_layout),
        cmocka_unit_test(test_command_truncations),
        cmocka_unit_test(test_command_trailing_bytes),
        cmocka_unit_test(test_command_padding),
        cmocka_unit_test(test_command_bad_header),
        cmocka_unit_test(test_command_absurd_nargs),
        cmocka_unit_test(test_command_need_more_args),
        cmocka_unit_test(test_op_names),
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_snapshot_empty),
        cmocka_unit_test(test_snapshot_round_trip_10k),
        cmocka_unit_test(test_snapshot_edge_content),
        cmocka_unit_test(test_snapshot_truncations),
        cmocka_unit_test(test_snapshot_flipped_bytes),
        cmocka_unit_test(test_snapshot_crafted_errors),
        cmocka_unit_test(test_snapshot_crafted_valid),
        cmocka_unit_test(test_snapshot_empty_key_round_trip),
        cmocka_unit_test(test_snapshot_keeps_string_encodings),
        cmocka_unit_test(test_snapshot_sinks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
