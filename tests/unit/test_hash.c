/* Hashes in the state machine (issue 12): HSET/HDEL/HINCRBY/HINCRBYFLOAT
 * applied as commands, the listpack -> hashtable conversion at Redis'
 * limits, WRONGTYPE both ways, SET/RENAME/DEL on a hash, the memory
 * estimate, and snapshots that keep the encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/command.h"
#include "kv/hash.h"
#include "kv/lazyfree.h"
#include "kv/list.h"
#include "kv/zset.h"
#include "kv/snapshot.h"
#include "kv/store.h"
#include "util/hash.h"
#include "unit_rand.h"

static kv_result run(kv_store *s, int op, uint16_t flags, int64_t a, int nargs, ...)
{
    kv_slice args[64];
    va_list ap;
    va_start(ap, nargs);
    for (int i = 0; i < nargs; i++) {
        const char *p = va_arg(ap, const char *);
        args[i] = (kv_slice){p, strlen(p)};
    }
    va_end(ap);
    kv_command cmd = {
        .op = (uint8_t)op, .flags = flags, .a = a, .nargs = (uint32_t)nargs, .args = args};
    kv_result res;
    kv_store_apply(s, &cmd, &res);
    return res;
}

static const char *hget(kv_store *s, const char *key, const char *field)
{
    static char out[256];
    kv_entry *e = kv_store_get(s, key, strlen(key), 0);
    if (!e || e->type != KV_TYPE_HASH) return NULL;
    kv_slice v;
    if (!kv_hash_get(e, (kv_slice){field, strlen(field)}, &v)) return NULL;
    snprintf(out, sizeof(out), "%.*s", (int)v.len, v.ptr);
    return out;
}

static void test_hset_hget_hdel(void **state)
{
    (void)state;
    kv_store s;
    kv_store_init(&s, 1);
    kv_result r = run(&s, KV_OP_HSET, 0, 0, 5, "h", "a", "1", "b", "2");
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.integer, 2);
    r = run(&s, KV_OP_HSET, 0, 0, 5, "h", "a", "10", "c", "3");
    assert_int_equal(r.integer, 1); /* a replaced, c new */
    assert_string_equal(hget(&s, "h", "a"), "10");
    kv_entry *e = kv_store_get(&s, "h", 1, 0);
    assert_int_equal(e->encoding, KV_ENC_LISTPACK);
    assert_int_equal(kv_hash_len(e), 3);
    /* insertion order, as Redis' listpack keeps it */
    kv_hash_iter it;
    kv_slice f, v;
    kv_hash_iter_init(&it, e);
    const char *order[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        assert_true(kv_hash_iter_next(&it, &f, &v));
        assert_memory_equal(f.ptr, order[i], 1);
    }
    assert_false(kv_hash_iter_next(&it, &f, &v));
    /* HSETNX */
    r = run(&s, KV_OP_HSET, KV_FLAG_NX, 0, 3, "h", "a", "x");
    assert_int_equal(r.status, KV_ERR_PRECONDITION);
    r = run(&s, KV_OP_HSET, KV_FLAG_NX, 0, 3, "h", "d", "4");
    assert_int_equal(r.status, KV_OK);
    r = run(&s, KV_OP_HDEL, 0, 0, 4, "h", "a", "zz", "b");
    assert_int_equal(r.integer, 2);
    uint64_t rev = s.revision;
    r = run(&s, KV_OP_HDEL, 0, 0, 2, "h", "zz");
    assert_int_equal(r.integer, 0);
    assert_int_equal(s.revision, rev); /* nothing removed: no revision */
    r = run(&s, KV_OP_HDEL, 0, 0, 3, "h", "c", "d");
    assert_int_equal(r.integer, 2);
    assert_null(kv_store_get(&s, "h", 1, 0)); /* emptied: the key is gone */
    kv_store_close(&s);
}

static void test_wrongtype_both_ways(void **state)
{
    (void)state;
    kv_store s;
    kv_store_init(&s, 2);
    run(&s, KV_OP_HSET, 0, 0, 3, "h", "f", "v");
    run(&s, KV_OP_PUT, 0, 0, 2, "s", "text");
    assert_int_equal(run(&s, KV_OP_INCR, 0, 1, 1, "h").status, KV_ERR_WRONGTYPE);
    assert_int_equal(run(&s, KV_OP_APPEND, 0, 0, 2, "h", "x").status, KV_ERR_WRONGTYPE);
    assert_int_equal(run(&s, KV_OP_GETEX, 0, 0, 1, "h").status, KV_ERR_WRONGTYPE);
    assert_int_equal(run(&s, KV_OP_PUT, KV_FLAG_GET, 0, 2, "h", "x").status, KV_ERR_WRONGTYPE);
    assert_int_equal(run(&s, KV_OP_DEL, KV_FLAG_GET, 0, 1, "h").status, KV_ERR_WRONGTYPE);
    assert_int_equal(run(&s, KV_OP_HSET, 0, 0, 3, "s", "f", "v").status, KV_ERR_WRONGTYPE);
    assert_int_equal(run(&s, KV_OP_HDEL, 0, 0, 2, "s", "f").status, KV_ERR_WRONGTYPE);
    assert_int_equal(run(&s, KV_OP_HINCR, 0, 1, 2, "s", "f").status, KV_ERR_WRONGTYPE);
    /* nothing changed */
    assert_string_equal(hget(&s, "h", "f"), "v");
    assert_memory_equal(kv_store_get(&s, "s", 1, 0)->value, "text", 4);
    /* SET replaces a hash; RENAME moves one; DEL removes one */
    run(&s, KV_OP_HSET, 0, 0, 3, "h2", "f", "v");
    assert_int_equal(run(&s, KV_OP_PUT, 0, 0, 2, "h2", "now a string").status, KV_OK);
    kv_entry *e = kv_store_get(&s, "h2", 2, 0);
    assert_int_equal(e->type, KV_TYPE_STRING);
    assert_int_equal(run(&s, KV_OP_RENAME, 0, 0, 2, "h", "moved").integer, 1);
    assert_string_equal(hget(&s, "moved", "f"), "v");
    assert_null(kv_store_get(&s, "h", 1, 0));
    assert_int_equal(run(&s, KV_OP_RENAME, 0, 0, 2, "s", "moved").integer, 1);
    assert_int_equal(kv_store_get(&s, "moved", 5, 0)->type, KV_TYPE_STRING);
    kv_store_close(&s);
}

static void test_hincrby_and_float(void **state)
{
    (void)state;
    kv_store s;
    kv_store_init(&s, 3);
    kv_result r = run(&s, KV_OP_HINCR, 0, 5, 2, "h", "n");
    assert_int_equal(r.integer, 5);
    r = run(&s, KV_OP_HINCR, 0, -7, 2, "h", "n");
    assert_int_equal(r.integer, -2);
    run(&s, KV_OP_HSET, 0, 0, 3, "h", "t", "abc");
    assert_int_equal(run(&s, KV_OP_HINCR, 0, 1, 2, "h", "t").status, KV_ERR_NOT_INTEGER);
    run(&s, KV_OP_HSET, 0, 0, 3, "h", "big", "9223372036854775807");
    assert_int_equal(run(&s, KV_OP_HINCR, 0, 1, 2, "h", "big").status, KV_ERR_OVERFLOW);
    r = run(&s, KV_OP_HINCRFLOAT, 0, 0, 3, "h", "f", "10.5");
    assert_int_equal(r.status, KV_OK);
    assert_memory_equal(r.value, "10.5", 4);
    r = run(&s, KV_OP_HINCRFLOAT, 0, 0, 3, "h", "f", "0.1");
    assert_memory_equal(r.value, "10.6", 4);
    assert_int_equal(run(&s, KV_OP_HINCRFLOAT, 0, 0, 3, "h", "t", "1").status, KV_ERR_NOT_FLOAT);
    kv_store_close(&s);
}

/* Load a's snapshot into b (another hash seed); b then holds the same
 * keys, encodings and fields, and writes the same bytes (tables keep
 * insertion order). */
static void snapshot_round_trip(kv_store *a, kv_store *b)
{
    buf out, again;
    buf_init(&out);
    buf_init(&again);
    assert_int_equal(kv_snapshot_write(a, kv_snapshot_sink_buf, &out), 0);
    char err[256];
    if (kv_snapshot_load(b, out.data, out.len, err, sizeof(err)) != 0) fail_msg("load: %s", err);
    assert_int_equal(kv_snapshot_write(b, kv_snapshot_sink_buf, &again), 0);
    assert_int_equal(again.len, out.len);
    assert_memory_equal(again.data, out.data, out.len);
    assert_int_equal(kv_keyspace_count(&b->ks), kv_keyspace_count(&a->ks));
    for (kv_entry *e = kv_keyspace_first(&a->ks); e; e = kv_keyspace_next(e)) {
        kv_entry *x = kv_keyspace_find(&b->ks, kv_entry_key(e), e->key_len);
        assert_non_null(x);
        assert_int_equal(x->type, e->type);
        assert_int_equal(x->encoding, e->encoding);
        if (e->type != KV_TYPE_HASH) continue;
        assert_int_equal(kv_hash_len(x), kv_hash_len(e));
        kv_hash_iter it;
        kv_slice f, v, w;
        kv_hash_iter_init(&it, e);
        while (kv_hash_iter_next(&it, &f, &v)) {
            assert_true(kv_hash_get(x, f, &w));
            assert_int_equal(w.len, v.len);
            assert_memory_equal(w.ptr, v.ptr, v.len);
        }
    }
    buf_close(&out);
    buf_close(&again);
}

static void test_conversion_and_snapshots(void **state)
{
    (void)state;
    kv_store a, b;
    kv_store_init(&a, 4);
    kv_store_init(&b, 5);
    run(&a, KV_OP_PUT, 0, 0, 2, "anchor", "x"); /* the key table exists from here */
    size_t base = a.ks.mem_bytes;
    char f[32], v[32];
    for (int i = 0; i < KV_HASH_LISTPACK_ENTRIES; i++) {
        snprintf(f, sizeof(f), "f%d", i);
        snprintf(v, sizeof(v), "v%d", i);
        run(&a, KV_OP_HSET, 0, 0, 3, "small", f, v);
        run(&a, KV_OP_HSET, 0, 0, 3, "many", f, v);
    }
    assert_int_equal(kv_store_get(&a, "many", 4, 0)->encoding, KV_ENC_LISTPACK);
    run(&a, KV_OP_HSET, 0, 0, 3, "many", "one", "more"); /* 129 fields */
    assert_int_equal(kv_store_get(&a, "many", 4, 0)->encoding, KV_ENC_HASHTABLE);
    char longv[KV_HASH_LISTPACK_VALUE + 2];
    memset(longv, 'x', sizeof(longv) - 1);
    longv[sizeof(longv) - 1] = '\0';
    run(&a, KV_OP_HSET, 0, 0, 3, "long", "f", "short");
    assert_int_equal(kv_store_get(&a, "long", 4, 0)->encoding, KV_ENC_LISTPACK);
    run(&a, KV_OP_HSET, 0, 0, 3, "long", "g", longv);
    assert_int_equal(kv_store_get(&a, "long", 4, 0)->encoding, KV_ENC_HASHTABLE);
    /* never back: emptied down to one field it stays a table */
    for (int i = 0; i < KV_HASH_LISTPACK_ENTRIES; i++) {
        snprintf(f, sizeof(f), "f%d", i);
        run(&a, KV_OP_HDEL, 0, 0, 2, "many", f);
    }
    kv_entry *m = kv_store_get(&a, "many", 4, 0);
    assert_int_equal(kv_hash_len(m), 1);
    assert_int_equal(m->encoding, KV_ENC_HASHTABLE);
    assert_string_equal(hget(&a, "many", "one"), "more");
    assert_string_equal(hget(&a, "small", "f77"), "v77");
    assert_string_equal(hget(&a, "long", "g"), longv);

    /* a snapshot rebuilds the same encodings and the same contents */
    run(&b, KV_OP_PUT, 0, 0, 2, "other", "x");
    snapshot_round_trip(&a, &b);
    assert_int_equal(kv_store_get(&b, "many", 4, 0)->encoding, KV_ENC_HASHTABLE);
    assert_int_equal(kv_store_get(&b, "small", 5, 0)->encoding, KV_ENC_LISTPACK);
    assert_int_equal(kv_store_get(&b, "long", 4, 0)->encoding, KV_ENC_HASHTABLE);
    assert_int_equal(kv_hash_len(kv_store_get(&b, "small", 5, 0)), KV_HASH_LISTPACK_ENTRIES);
    assert_string_equal(hget(&b, "long", "g"), longv);
    assert_string_equal(hget(&b, "many", "one"), "more");
    assert_null(kv_store_get(&b, "other", 5, 0));
    /* a loaded table is sized for what it holds, not for its past */
    assert_true(b.ks.mem_bytes > base && b.ks.mem_bytes <= a.ks.mem_bytes);

    /* the memory estimate goes back to where it was */
    run(&a, KV_OP_DEL, 0, 0, 3, "small", "many", "long");
    assert_int_equal(a.ks.mem_bytes, base);
    kv_store_close(&a);
    kv_store_close(&b);
}

static void test_malformed_hashes_in_snapshots_are_refused(void **state)
{
    (void)state;
    kv_store a, b;
    kv_store_init(&a, 6);
    kv_store_init(&b, 7);
    run(&a, KV_OP_HSET, 0, 0, 5, "h", "a", "1", "b", "2");
    buf out;
    buf_init(&out);
    assert_int_equal(kv_snapshot_write(&a, kv_snapshot_sink_buf, &out), 0);
    /* value = u32 2 | u32 1 a | u32 1 "1" | u32 1 b | u32 1 "2", after the
     * 32-byte header, the 42-byte entry header and the key */
    size_t value_at = 32 + 42 + 1;
    struct {
        size_t at;
        char byte;
    } bad[] = {
        {value_at, 3},        /* count says 3 */
        {value_at, 0},        /* an empty hash */
        {value_at + 4, 9},    /* a field length past the end */
        {value_at + 18, 'a'}, /* duplicate field "a" */
        {32 + 40, 7},         /* unknown type */
        {32 + 41, 9},         /* unknown encoding */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf c;
        buf_init(&c);
        buf_append(&c, out.data, out.len);
        c.data[bad[i].at] = bad[i].byte;
        uint32_t crc = crc32c_update(0, c.data, c.len - 4);
        for (int k = 0; k < 4; k++) c.data[c.len - 4 + k] = (char)(crc >> (8 * k));
        char err[256];
        if (kv_snapshot_load(&b, c.data, c.len, err, sizeof(err)) == 0)
            fail_msg("case %zu loaded", i);
        buf_close(&c);
    }
    buf_close(&out);
    kv_store_close(&a);
    kv_store_close(&b);
}

/* The listpack encoding's lengths are LEB128 (kv/packed.h): elements of
 * 0, 127, 128 and up to 70,000 bytes (limits raised as CONFIG SET would)
 * read back, survive a replace with another length and a delete in the
 * middle, and a snapshot round trip keeps the encoding and the bytes. */
static void test_listpack_lengths_of_every_size(void **state)
{
    (void)state;
    kv_store a, b;
    kv_store_init(&a, 10);
    kv_store_init(&b, 11);
    a.ks.limits.v[KV_LIMIT_HASH_VALUE] = 100000;
    b.ks.limits.v[KV_LIMIT_HASH_VALUE] = 100000;
    static const size_t sizes[] = {0, 1, 127, 128, 129, 16383, 16384, 70000};
    enum { N = sizeof(sizes) / sizeof(sizes[0]) };
    static char field[N][16], value[N][70001];
    kv_entry *e = kv_keyspace_insert(&a.ks, "h", 1, NULL, 0);
    kv_hash_init(&a.ks, e);
    for (size_t i = 0; i < N; i++) {
        snprintf(field[i], sizeof(field[i]), "f%zu", i);
        memset(value[i], 'a' + (int)i, sizes[i]);
        assert_int_equal(
            kv_hash_set(&a.ks, e, unit_slice(field[i]), (kv_slice){value[i], sizes[i]}), 1);
    }
    /* an empty field name and a long one are elements too */
    assert_int_equal(kv_hash_set(&a.ks, e, (kv_slice){"", 0}, (kv_slice){value[7], 300}), 1);
    assert_int_equal(kv_hash_set(&a.ks, e, (kv_slice){value[5], 200}, unit_slice("x")), 1);
    assert_int_equal(e->encoding, KV_ENC_LISTPACK);
    assert_int_equal(kv_hash_len(e), N + 2);
    /* replace in the middle with a longer, then a shorter value */
    memset(value[3], 'z', 20000);
    assert_int_equal(kv_hash_set(&a.ks, e, unit_slice(field[3]), (kv_slice){value[3], 20000}), 0);
    assert_int_equal(kv_hash_set(&a.ks, e, unit_slice(field[6]), (kv_slice){value[6], 5}), 0);
    assert_true(kv_hash_del(&a.ks, e, unit_slice(field[4])));
    assert_int_equal(e->encoding, KV_ENC_LISTPACK);
    size_t want[N];
    memcpy(want, sizes, sizeof(want));
    want[3] = 20000;
    want[6] = 5;
    for (int round = 0; round < 2; round++) {
        kv_store *s = round ? &b : &a;
        kv_entry *x = kv_store_get(s, "h", 1, 0);
        assert_non_null(x);
        assert_int_equal(x->encoding, KV_ENC_LISTPACK);
        assert_int_equal(kv_hash_len(x), N + 1);
        kv_slice v;
        for (size_t i = 0; i < N; i++) {
            if (i == 4) {
                assert_false(kv_hash_get(x, unit_slice(field[i]), &v));
                continue;
            }
            assert_true(kv_hash_get(x, unit_slice(field[i]), &v));
            assert_int_equal(v.len, want[i]);
            if (v.len) assert_memory_equal(v.ptr, value[i], v.len);
        }
        assert_true(kv_hash_get(x, (kv_slice){"", 0}, &v));
        assert_int_equal(v.len, 300);
        assert_true(kv_hash_get(x, (kv_slice){value[5], 200}, &v));
        assert_int_equal(v.len, 1);
        if (!round) snapshot_round_trip(&a, &b);
    }
    kv_store_close(&a);
    kv_store_close(&b);
}

static void count_field(void *ctx, kv_slice f, kv_slice v)
{
    (void)v;
    int i = atoi(f.ptr + 1); /* "f<number>" */
    ((int *)ctx)[i]++;
}

/* HSCAN's cursor: every field present for the whole scan is returned,
 * also when the table grows (doubles, twice) in the middle of it. */
static void test_scan_covers_fields_across_growth(void **state)
{
    (void)state;
    kv_store s;
    kv_store_init(&s, 8);
    char f[16];
    for (int i = 0; i < 200; i++) {
        snprintf(f, sizeof(f), "f%d", i);
        run(&s, KV_OP_HSET, 0, 0, 3, "h", f, "v");
    }
    static int seen[1000];
    memset(seen, 0, sizeof(seen));
    uint64_t cursor = 0;
    int steps = 0;
    do {
        cursor = kv_hash_scan(kv_store_get(&s, "h", 1, 0), cursor, count_field, seen);
        if (++steps == 20) /* grow the table mid-scan: 200 -> 800 fields */
            for (int i = 200; i < 800; i++) {
                snprintf(f, sizeof(f), "f%d", i);
                run(&s, KV_OP_HSET, 0, 0, 3, "h", f, "v");
            }
    } while (cursor);
    for (int i = 0; i < 200; i++) assert_true(seen[i] >= 1);
    kv_store_close(&s);
}

/* Big collections of every kind are freed by the lazyfree thread, small
 * ones at once; the memory estimate drops at the delete either way. */
static void test_big_collections_are_freed_in_the_background(void **state)
{
    (void)state;
    kv_keyspace ks;
    kv_keyspace_init(&ks, 9);
    kv_lazyfree_drain();
    uint64_t done = kv_lazyfree_done();
    char k[32];
    for (int type = 0; type < 3; type++) {
        for (int big = 0; big < 2; big++) {
            kv_entry *e = kv_keyspace_insert(&ks, "c", 1, NULL, 0);
            /* small: past the listpack, under KV_LAZYFREE_MIN_BYTES */
            int n = big ? 20000 : type == 0 ? 600 : 200;
            if (type == 0) kv_hash_init(&ks, e);
            if (type == 1) kv_list_init(&ks, e);
            if (type == 2) kv_zset_init(&ks, e);
            for (int i = 0; i < n; i++) {
                snprintf(k, sizeof(k), "element-%d", i);
                if (type == 0) kv_hash_set(&ks, e, unit_slice(k), unit_slice("v"));
                if (type == 1) kv_list_push(&ks, e, unit_slice(k), false);
                if (type == 2) kv_zset_set(&ks, e, unit_slice(k), i);
            }
            assert_true(e->encoding != KV_ENC_LISTPACK);
            size_t before = ks.mem_bytes;
            assert_true(kv_keyspace_delete(&ks, "c", 1));
            assert_true(ks.mem_bytes < before);
            kv_lazyfree_drain();
            assert_int_equal(kv_lazyfree_pending(), 0);
            assert_int_equal(kv_lazyfree_done(), done + (uint64_t)big);
            done = kv_lazyfree_done();
        }
    }
    kv_keyspace_close(&ks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hset_hget_hdel),
        cmocka_unit_test(test_wrongtype_both_ways),
        cmocka_unit_test(test_hincrby_and_float),
        cmocka_unit_test(test_conversion_and_snapshots),
        cmocka_unit_test(test_malformed_hashes_in_snapshots_are_refused),
        cmocka_unit_test(test_listpack_lengths_of_every_size),
        cmocka_unit_test(test_scan_covers_fields_across_growth),
        cmocka_unit_test(test_big_collections_are_freed_in_the_background),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
