/* DUMP payloads (kv/dump, kv/listpack, util/crc64): the CRC's check
 * value; listpack entries at every encoding boundary read back as
 * written; every type in every encoding dumps, loads back into the same
 * encoding and dumps to the same bytes; Redis 6's ziplists (every integer
 * encoding, long strings, 5-byte previous lengths) load; and every cut and
 * many altered bytes of real payloads (checksums made right) either load
 * whole or are refused leaving nothing behind, the memory estimate as it
 * was. That the bytes equal redis-server's own is test_resp_dump.py's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/dump.h"
#include "kv/hash.h"
#include "kv/list.h"
#include "kv/listpack.h"
#include "kv/set.h"
#include "kv/zset.h"
#include "unit_rand.h"
#include "util/crc64.h"

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static kv_slice sl(const char *s)
{
    return unit_slice(s);
}

static void test_crc64_check_value(void **state)
{
    (void)state;
    assert_true(crc64(0, "123456789", 9) == 0xe9c6d914c4b8d9caull);
    assert_true(crc64(crc64(0, "1234", 4), "56789", 5) == 0xe9c6d914c4b8d9caull);
}

static void test_listpack_boundaries(void **state)
{
    (void)state;
    static const int64_t ints[] = {0,       127,     128,       -1,        -4096,     4095,
                                   4096,    -4097,   -32768,    32767,     32768,     -8388608,
                                   8388607, 8388608, INT32_MIN, INT32_MAX, INT64_MIN, INT64_MAX};
    static const size_t lens[] = {0, 1, 63, 64, 4095, 4096, 20000};
    char *big = malloc(20000);
    memset(big, 'x', 20000);
    kv_lp_writer w;
    kv_lp_writer_init(&w);
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) kv_lp_append_int(&w, ints[i]);
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) kv_lp_append(&w, big, lens[i]);
    kv_lp_append(&w, "007", 3); /* not canonical: stays a string */
    size_t len;
    const char *lp = kv_lp_finish(&w, &len);
    kv_lp_iter it;
    kv_lp_elem e;
    assert_true(kv_lp_iter_init(&it, lp, len));
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        assert_int_equal(kv_lp_iter_next(&it, &e), 1);
        assert_true(e.is_int && e.v == ints[i]);
    }
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        assert_int_equal(kv_lp_iter_next(&it, &e), 1);
        /* "" and "x" are strings, not integers */
        assert_false(e.is_int);
        assert_int_equal(e.len, lens[i]);
    }
    assert_int_equal(kv_lp_iter_next(&it, &e), 1);
    assert_false(e.is_int);
    assert_int_equal(kv_lp_iter_next(&it, &e), 0);
    /* a wrong count, a wrong total, a wrong back length are refused */
    char *copy = malloc(len);
    memcpy(copy, lp, len);
    copy[4]++;
    assert_true(kv_lp_iter_init(&it, copy, len));
    while (kv_lp_iter_next(&it, &e) == 1) {
    }
    assert_int_equal(kv_lp_iter_next(&it, &e), -1);
    copy[4]--;
    assert_false(kv_lp_iter_init(&it, copy, len - 1));
    copy[6 + 1]++; /* entry 0 (int 0): its back length */
    assert_true(kv_lp_iter_init(&it, copy, len));
    assert_int_equal(kv_lp_iter_next(&it, &e), -1);
    free(copy);
    kv_lp_writer_close(&w);
    free(big);
}

/* ---- values in every encoding ---- */

enum {
    V_INT,
    V_STR,
    V_LZF,
    V_HASH_LP,
    V_HASH_HT,
    V_LIST,
    V_LIST_NODES,
    V_SET_INT,
    V_SET_INT64,
    V_SET_LP,
    V_SET_HT,
    V_ZSET_LP,
    V_ZSET_SL,
    V_COUNT
};

static void build(kv_keyspace *ks, kv_entry *e, int kind)
{
    char k[32], v[128];
    switch (kind) {
    case V_INT:
        kv_keyspace_set_value(ks, e, "-123456", 7);
        break;
    case V_STR:
        kv_keyspace_set_value(ks, e, "hello", 5);
        break;
    case V_LZF: {
        char s[400];
        for (int i = 0; i < 400; i++) s[i] = (char)('a' + i % 7);
        kv_keyspace_set_value(ks, e, s, sizeof(s));
        break;
    }
    case V_HASH_LP:
    case V_HASH_HT:
        kv_hash_init(ks, e);
        for (int i = 0; i < (kind == V_HASH_LP ? 20 : 700); i++) {
            snprintf(k, sizeof(k), "f%d", i);
            snprintf(v, sizeof(v), i % 3 ? "%d" : "value-%d", i * 37 - 500);
            kv_hash_set(ks, e, sl(k), sl(v));
        }
        break;
    case V_LIST:
    case V_LIST_NODES:
        kv_list_init(ks, e);
        for (int i = 0; i < (kind == V_LIST ? 10 : 5000); i++) {
            int n = snprintf(v, sizeof(v), "%d", (int)(unit_rand(&rng) % 100000) - 50000);
            if (i % 4 == 0) memset(v + n, 'y', (size_t)(i % 100)), n += i % 100;
            kv_list_push(ks, e, (kv_slice){v, (size_t)n}, i % 5 == 0);
        }
        break;
    case V_SET_INT:
    case V_SET_INT64:
        kv_set_init(ks, e);
        for (int i = 0; i < 300; i++) {
            snprintf(v, sizeof(v), "%lld",
                     kind == V_SET_INT ? (long long)i * 100 - 7000 : (long long)i << 40);
            kv_set_add(ks, e, sl(v));
        }
        break;
    case V_SET_LP:
    case V_SET_HT:
        kv_set_init(ks, e);
        for (int i = 0; i < (kind == V_SET_LP ? 50 : 1000); i++) {
            snprintf(v, sizeof(v), "m%d", i);
            kv_set_add(ks, e, sl(v));
        }
        break;
    default:
        kv_zset_init(ks, e);
        for (int i = 0; i < (kind == V_ZSET_LP ? 100 : 1000); i++) {
            snprintf(v, sizeof(v), "m%d", i);
            double score = i % 3 == 0 ? i : i % 3 == 1 ? i * 0.1 : -1e20 * i;
            kv_zset_set(ks, e, sl(v), score);
        }
        break;
    }
}

static void dump_of(const kv_entry *e, buf *out)
{
    kv_limits lim;
    kv_limits_default(&lim);
    buf_reset(out);
    kv_dump_value(&lim, e, out);
}

static void test_every_encoding_round_trips(void **state)
{
    (void)state;
    kv_keyspace ks;
    kv_keyspace_init(&ks, 1);
    buf a, b;
    buf_init(&a);
    buf_init(&b);
    for (int kind = 0; kind < V_COUNT; kind++) {
        kv_entry x = {0}, y = {0};
        build(&ks, &x, kind);
        dump_of(&x, &a);
        size_t before = ks.mem_bytes;
        assert_int_equal(kv_dump_load(&ks, &y, a.data + a.off, a.len - a.off, 0), KV_DUMP_OK);
        assert_int_equal(y.type, x.type);
        assert_int_equal(y.encoding, x.encoding);
        dump_of(&y, &b);
        /* a list pushed at both ends is cut into nodes afresh: the same
         * elements, and from then on the same bytes */
        if (kind != V_LIST_NODES) {
            assert_int_equal(a.len - a.off, b.len - b.off);
            assert_memory_equal(a.data + a.off, b.data + b.off, a.len - a.off);
        } else {
            assert_int_equal(kv_list_len(&x), kv_list_len(&y));
        }
        kv_keyspace_reset_value(&ks, &y);
        assert_int_equal(ks.mem_bytes, before);
        kv_keyspace_reset_value(&ks, &x);
    }
    /* a string past max_string (LZF unpacks it) is refused */
    kv_entry x = {0}, y = {0};
    build(&ks, &x, V_LZF);
    dump_of(&x, &a);
    assert_int_equal(kv_dump_load(&ks, &y, a.data + a.off, a.len - a.off, 399), KV_DUMP_TOO_LARGE);
    assert_int_equal(kv_dump_load(&ks, &y, a.data + a.off, a.len - a.off, 400), KV_DUMP_OK);
    kv_keyspace_reset_value(&ks, &x);
    kv_keyspace_reset_value(&ks, &y);
    assert_int_equal(ks.mem_bytes, 0);
    buf_close(&a);
    buf_close(&b);
    kv_keyspace_close(&ks);
}

/* ---- Redis 6's ziplists ---- */

static void footer(buf *p, unsigned char version)
{
    unsigned char v[2] = {version, 0};
    buf_append(p, v, 2);
    uint64_t crc = crc64(0, p->data + p->off, p->len - p->off);
    unsigned char c[8];
    for (int i = 0; i < 8; i++) c[i] = (unsigned char)(crc >> (8 * i));
    buf_append(p, c, 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void test_redis6_ziplist_list(void **state)
{
    (void)state;
    /* entries: prevlen | encoding | data */
    unsigned char zl[400];
    size_t n = 10, last = 0, prev = 0;
    const unsigned char entries[][12] = {
        {0xf1},                         /* immediate 0 */
        {0xfd},                         /* immediate 12 */
        {0xfe, 0x80},                   /* int8 -128 */
        {0xc0, 0x00, 0x80},             /* int16 -32768 */
        {0xf0, 0xff, 0xff, 0x7f},       /* int24 8388607 */
        {0xd0, 0x00, 0x00, 0x00, 0x80}, /* int32 INT32_MIN */
        {0xe0, 1, 0, 0, 0, 0, 0, 0, 0}, /* int64 1 */
        {0x03, 'a', 'b', 'c'},          /* 6-bit string */
    };
    const size_t sizes[] = {1, 1, 2, 3, 4, 5, 9, 4};
    for (size_t i = 0; i < 8; i++) {
        last = n;
        zl[n++] = (unsigned char)prev;
        memcpy(zl + n, entries[i], sizes[i]);
        n += sizes[i];
        prev = 1 + sizes[i];
    }
    /* a 300-byte string (14-bit length) after a 5-byte previous length */
    last = n;
    zl[n++] = 254;
    put32(zl + n, (uint32_t)prev);
    n += 4;
    zl[n++] = 0x40 | (300 >> 8);
    zl[n++] = 300 & 0xff;
    memset(zl + n, 'z', 300);
    n += 300;
    zl[n++] = 0xff;
    put32(zl, (uint32_t)n);
    put32(zl + 4, (uint32_t)last);
    zl[8] = 9;
    zl[9] = 0;
    buf p;
    buf_init(&p);
    buf_append_char(&p, 10); /* RDB_TYPE_LIST_ZIPLIST */
    unsigned char len[5] = {0x80, 0, 0, (unsigned char)(n >> 8), (unsigned char)(n & 0xff)};
    buf_append(&p, len, 5);
    buf_append(&p, zl, n);
    footer(&p, 9);
    kv_keyspace ks;
    kv_keyspace_init(&ks, 1);
    kv_entry e = {0};
    assert_int_equal(kv_dump_load(&ks, &e, p.data + p.off, p.len - p.off, 0), KV_DUMP_OK);
    static const char *want[] = {"0", "12", "-128", "-32768", "8388607", "-2147483648", "1", "abc"};
    for (int i = 0; i < 8; i++) {
        kv_slice v;
        assert_true(kv_list_index(&e, i, &v));
        assert_int_equal(v.len, strlen(want[i]));
        assert_memory_equal(v.ptr, want[i], v.len);
    }
    kv_slice v;
    assert_true(kv_list_index(&e, 8, &v));
    assert_int_equal(v.len, 300);
    kv_keyspace_reset_value(&ks, &e);
    /* a wrong tail offset is refused */
    p.data[p.off + 6 + 4]++;
    p.len -= 10;
    footer(&p, 9);
    assert_int_equal(kv_dump_load(&ks, &e, p.data + p.off, p.len - p.off, 0), KV_DUMP_BAD_DATA);
    assert_int_equal(ks.mem_bytes, 0);
    buf_close(&p);
    kv_keyspace_close(&ks);
}

/* ---- corruption ---- */

static void try_variant(kv_keyspace *ks, const char *body, size_t len, int *ok, int *refused)
{
    buf p;
    buf_init(&p);
    buf_append(&p, body, len);
    footer(&p, 10);
    size_t before = ks->mem_bytes;
    kv_entry e = {0};
    kv_dump_status st = kv_dump_load(ks, &e, p.data + p.off, p.len - p.off, 1 << 20);
    if (st == KV_DUMP_OK) {
        buf again;
        buf_init(&again);
        kv_dump_value(&ks->limits, &e, &again); /* whatever loaded is a whole value */
        buf_close(&again);
        kv_keyspace_reset_value(ks, &e);
        (*ok)++;
    } else {
        assert_int_not_equal(st, KV_DUMP_BAD_FOOTER);
        assert_null(e.value);
        (*refused)++;
    }
    assert_int_equal(ks->mem_bytes, before);
    buf_close(&p);
}

static void test_corrupt_payloads_load_whole_or_not_at_all(void **state)
{
    (void)state;
    kv_keyspace ks;
    kv_keyspace_init(&ks, 1);
    buf a;
    buf_init(&a);
    int ok = 0, refused = 0;
    for (int kind = 0; kind < V_COUNT; kind++) {
        if (kind == V_LIST_NODES || kind == V_HASH_HT || kind == V_SET_HT || kind == V_ZSET_SL)
            continue; /* big: their small cousins cover the same code */
        kv_entry x = {0};
        build(&ks, &x, kind);
        dump_of(&x, &a);
        kv_keyspace_reset_value(&ks, &x);
        size_t len = a.len - a.off - 10;
        char *body = malloc(len);
        memcpy(body, a.data + a.off, len);
        for (size_t cut = 0; cut < len; cut++) try_variant(&ks, body, cut, &ok, &refused);
        for (int i = 0; i < 3000; i++) {
            size_t at = unit_rand(&rng) % len;
            char was = body[at];
            body[at] = (char)(unit_rand(&rng) & 0xff);
            try_variant(&ks, body, len, &ok, &refused);
            body[at] = was;
        }
        free(body);
    }
    assert_true(refused > 1000 && ok > 100);
    assert_int_equal(ks.mem_bytes, 0);
    buf_close(&a);
    kv_keyspace_close(&ks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc64_check_value),
        cmocka_unit_test(test_listpack_boundaries),
        cmocka_unit_test(test_every_encoding_round_trips),
        cmocka_unit_test(test_redis6_ziplist_list),
        cmocka_unit_test(test_corrupt_payloads_load_whole_or_not_at_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
