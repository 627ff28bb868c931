/* Sets in the state machine (issue 12): the intset (widths, order, the
 * 512-member limit), its conversions to listpack and hashtable, random
 * adds and removes checked against a plain model, sampling, and snapshots
 * (every encoding round-trips; malformed intsets are refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/command.h"
#include "kv/set.h"
#include "kv/snapshot.h"
#include "kv/store.h"
#include "unit_rand.h"

#define MODEL_MAX 2048

typedef struct model {
    char v[MODEL_MAX][32];
    size_t n;
} model;

static uint64_t rng = 0x2545F4914F6CDD1DULL;

static uint64_t next_rand(void)
{
    return unit_rand(&rng);
}

static kv_slice sl(const char *s)
{
    return unit_slice(s);
}

static long model_find(const model *m, const char *s)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->v[i], s) == 0) return (long)i;
    return -1;
}

static void check(const kv_entry *e, const model *m)
{
    assert_int_equal(kv_set_len(e), m->n);
    kv_set_iter it;
    kv_slice v;
    size_t seen = 0;
    char prev[32] = "";
    kv_set_iter_init(&it, e);
    while (kv_set_iter_next(&it, &v)) {
        char buf[32];
        assert_true(v.len < sizeof(buf));
        memcpy(buf, v.ptr, v.len);
        buf[v.len] = '\0';
        assert_true(model_find(m, buf) >= 0);
        if (e->encoding == KV_ENC_INTSET && seen) assert_true(atoll(prev) < atoll(buf));
        strcpy(prev, buf);
        seen++;
    }
    assert_int_equal(seen, m->n);
    for (size_t i = 0; i < m->n; i++) assert_true(kv_set_contains(e, sl(m->v[i])));
}

static kv_entry *fresh(kv_keyspace *ks, const char *key)
{
    kv_entry *e = kv_keyspace_insert(ks, key, strlen(key), NULL, 0);
    kv_set_init(ks, e);
    return e;
}

static void test_intset_widths_and_conversion(void **state)
{
    (void)state;
    kv_keyspace ks;
    kv_keyspace_init(&ks, 1);
    kv_entry *e = fresh(&ks, "s");
    assert_true(kv_set_add(&ks, e, sl("5")));
    assert_false(kv_set_add(&ks, e, sl("5")));
    assert_true(kv_set_add(&ks, e, sl("-40000")));     /* 16 -> 32 bits */
    assert_true(kv_set_add(&ks, e, sl("9000000000"))); /* -> 64 bits */
    assert_true(kv_set_add(&ks, e, sl("-9223372036854775808")));
    assert_int_equal(e->encoding, KV_ENC_INTSET);
    assert_int_equal((unsigned char)e->value[0], 8);
    assert_true(kv_set_contains(e, sl("-40000")));
    assert_false(kv_set_contains(e, sl("05"))); /* not an integer: not a member */
    assert_false(kv_set_contains(e, sl("x")));
    assert_false(kv_set_add(&ks, e, sl("9000000000")));
    assert_true(kv_set_add(&ks, e, sl("05"))); /* text: becomes a listpack */
    assert_int_equal(e->encoding, KV_ENC_LISTPACK);
    assert_int_equal(kv_set_len(e), 5);
    assert_true(kv_set_contains(e, sl("9000000000")));
    assert_true(kv_set_remove(&ks, e, sl("5")));
    assert_false(kv_set_remove(&ks, e, sl("5")));

    kv_entry *big = fresh(&ks, "big");
    char num[24];
    for (int i = 0; i < KV_SET_INTSET_ENTRIES; i++) {
        snprintf(num, sizeof(num), "%d", i * 3);
        assert_true(kv_set_add(&ks, big, sl(num)));
    }
    assert_int_equal(big->encoding, KV_ENC_INTSET);
    assert_false(kv_set_add(&ks, big, sl("0"))); /* present: no conversion */
    assert_int_equal(big->encoding, KV_ENC_INTSET);
    assert_true(kv_set_add(&ks, big, sl("1"))); /* the 513th: a table */
    assert_int_equal(big->encoding, KV_ENC_HASHTABLE);
    assert_int_equal(kv_set_len(big), KV_SET_INTSET_ENTRIES + 1);
    assert_true(kv_set_contains(big, sl("1533")));
    kv_keyspace_close(&ks);
}

static void test_random_ops_against_a_model(void **state)
{
    (void)state;
    for (int run = 0; run < 6; run++) {
        kv_keyspace ks;
        kv_keyspace_init(&ks, (uint64_t)run + 1);
        kv_entry *e = fresh(&ks, "s");
        static model m;
        m.n = 0;
        int range = run < 2 ? 100 : run < 4 ? 1000 : 3000;
        for (int step = 0; step < 4000; step++) {
            char s[32];
            uint64_t r = next_rand();
            if (run % 2 == 0 || r % 50) /* mostly integers, sometimes words */
                snprintf(s, sizeof(s), "%lld", (long long)(r % (uint64_t)range) - range / 2);
            else
                snprintf(s, sizeof(s), "w%d", (int)(r % (uint64_t)range));
            long at = model_find(&m, s);
            if (next_rand() % 3) {
                assert_int_equal(kv_set_add(&ks, e, sl(s)), at < 0);
                if (at < 0 && m.n < MODEL_MAX) strcpy(m.v[m.n++], s);
            } else {
                assert_int_equal(kv_set_remove(&ks, e, sl(s)), at >= 0);
                if (at >= 0) memcpy(m.v[at], m.v[--m.n], sizeof(m.v[0]));
            }
            if (step % 500 == 0) check(e, &m);
        }
        check(e, &m);
        assert_true(ks.mem_bytes > 0);
        kv_keyspace_close(&ks);
    }
}

static uint64_t counting(void *ctx)
{
    return next_rand() ^ (uint64_t)(uintptr_t)ctx;
}

static void test_sample_is_distinct_and_sorted(void **state)
{
    (void)state;
    uint64_t out[1000];
    for (uint64_t len = 1; len < 1000; len += 97) {
        for (uint64_t n = 0; n <= len && n <= 1000; n += len / 3 + 1) {
            kv_set_sample(len, n, counting, NULL, out);
            for (uint64_t i = 0; i < n; i++) {
                assert_true(out[i] < len);
                if (i) assert_true(out[i - 1] < out[i]);
            }
        }
    }
    kv_set_sample(10, 10, counting, NULL, out); /* all of them */
    for (uint64_t i = 0; i < 10; i++) assert_int_equal(out[i], i);
}

static void sadd(kv_store *s, const char *key, int from, int to, const char *fmt)
{
    for (int i = from; i < to; i++) {
        char m[32];
        snprintf(m, sizeof(m), fmt, i);
        kv_slice args[2] = {sl(key), sl(m)};
        kv_command c = {.op = KV_OP_SADD, .nargs = 2, .args = args, .now_ms = 1};
        kv_result r;
        kv_store_apply(s, &c, &r);
        assert_int_equal(r.status, KV_OK);
    }
}

static void test_snapshot_round_trip_and_refusals(void **state)
{
    (void)state;
    kv_store s;
    kv_store_init(&s, 3);
    sadd(&s, "a-ints", -10, 10, "%d");
    sadd(&s, "b-words", 0, 20, "w%d");
    sadd(&s, "c-table", 0, 300, "t%d");
    buf out, again;
    buf_init(&out);
    buf_init(&again);
    assert_int_equal(kv_snapshot_write(&s, kv_snapshot_sink_buf, &out), 0);
    kv_store t;
    kv_store_init(&t, 99);
    char err[256];
    assert_int_equal(kv_snapshot_load(&t, out.data, out.len, err, sizeof(err)), 0);
    const char *keys[] = {"a-ints", "b-words", "c-table"};
    const int encodings[] = {KV_ENC_INTSET, KV_ENC_LISTPACK, KV_ENC_HASHTABLE};
    for (int i = 0; i < 3; i++) {
        kv_entry *e = kv_keyspace_find(&t.ks, keys[i], strlen(keys[i]));
        assert_non_null(e);
        assert_int_equal(e->type, KV_TYPE_SET);
        assert_int_equal(e->encoding, encodings[i]);
    }
    assert_int_equal(kv_snapshot_write(&t, kv_snapshot_sink_buf, &again), 0);
    assert_int_equal(again.len, out.len);
    assert_memory_equal(again.data, out.data, out.len);

    /* an intset out of order, or with a width that cannot be, is refused */
    kv_entry *e = kv_keyspace_find(&s.ks, "a-ints", 6);
    char bad[INT8_MAX];
    memcpy(bad, e->value, e->value_len);
    kv_keyspace ks;
    kv_keyspace_init(&ks, 5);
    kv_entry *x = kv_keyspace_insert(&ks, "x", 1, NULL, 0);
    assert_true(kv_set_load(&ks, x, KV_ENC_INTSET, bad, e->value_len));
    kv_entry *y = kv_keyspace_insert(&ks, "y", 1, NULL, 0);
    char swapped[INT8_MAX];
    memcpy(swapped, bad, e->value_len);
    memcpy(swapped + 5, bad + 7, 2); /* first two members swapped */
    memcpy(swapped + 7, bad + 5, 2);
    assert_false(kv_set_load(&ks, y, KV_ENC_INTSET, swapped, e->value_len));
    swapped[0] = 3;
    assert_false(kv_set_load(&ks, y, KV_ENC_INTSET, swapped, e->value_len));
    assert_false(kv_set_load(&ks, y, KV_ENC_RAW, bad, e->value_len));
    kv_keyspace_close(&ks);
    buf_close(&out);
    buf_close(&again);
    kv_store_close(&s);
    kv_store_close(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intset_widths_and_conversion),
        cmocka_unit_test(test_random_ops_against_a_model),
        cmocka_unit_test(test_sample_is_distinct_and_sorted),
        cmocka_unit_test(test_snapshot_round_trip_and_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
