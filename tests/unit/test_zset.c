/* Sorted sets in the state machine (issue 12): random adds, score changes
 * and removes on both encodings checked against a plain sorted model
 * (length, scores, ranks, counts below a score, walks both ways from any
 * rank), the listpack -> skiplist conversion, and snapshots (round trip;
 * unordered or repeated members refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/command.h"
#include "kv/snapshot.h"
#include "kv/store.h"
#include "unit_rand.h"
#include "kv/zset.h"

#define MODEL_MAX 1024

typedef struct item {
    double score;
    char m[16];
} item;

typedef struct model {
    item v[MODEL_MAX];
    size_t n;
} model;

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t next_rand(void)
{
    return unit_rand(&rng);
}

static int item_cmp(const void *a, const void *b)
{
    const item *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? -1 : 1;
    return strcmp(x->m, y->m);
}

static kv_slice sl(const char *s)
{
    return unit_slice(s);
}

static void check(const kv_entry *e, model *m)
{
    qsort(m->v, m->n, sizeof(item), item_cmp);
    assert_int_equal(kv_zset_len(e), m->n);
    for (size_t i = 0; i < m->n; i++) {
        double s;
        uint64_t r;
        assert_true(kv_zset_score(e, sl(m->v[i].m), &s));
        assert_true(s == m->v[i].score);
        assert_true(kv_zset_rank(e, sl(m->v[i].m), &r));
        assert_int_equal(r, i);
    }
    /* walks from a few ranks, both ways */
    for (int t = 0; t < 4 && m->n; t++) {
        uint64_t from = next_rand() % m->n;
        for (int rev = 0; rev < 2; rev++) {
            kv_zset_iter it;
            kv_slice v;
            double s;
            kv_zset_iter_init(&it, e, from, rev);
            for (uint64_t k = from; k < m->n; k++) {
                const item *want = &m->v[rev ? m->n - 1 - k : k];
                assert_true(kv_zset_iter_next(&it, &v, &s));
                assert_int_equal(v.len, strlen(want->m));
                assert_memory_equal(v.ptr, want->m, v.len);
                assert_true(s == want->score);
            }
            assert_false(kv_zset_iter_next(&it, &v, &s));
        }
    }
    /* counts below scores present and absent */
    for (int t = 0; t < 8; t++) {
        double s = (double)(int64_t)(next_rand() % 60) - 30;
        uint64_t lt = 0, le = 0;
        for (size_t i = 0; i < m->n; i++) {
            lt += m->v[i].score < s;
            le += m->v[i].score <= s;
        }
        assert_int_equal(kv_zset_below(e, s, true), lt);
        assert_int_equal(kv_zset_below(e, s, false), le);
    }
}

static void test_random_ops_against_a_model(void **state)
{
    (void)state;
    for (int run = 0; run < 4; run++) {
        kv_keyspace ks;
        kv_keyspace_init(&ks, (uint64_t)run + 7);
        kv_entry *e = kv_keyspace_insert(&ks, "z", 1, NULL, 0);
        kv_zset_init(&ks, e);
        static model m;
        m.n = 0;
        int range = run == 0 ? 60 : run == 1 ? 200 : 900;
        for (int step = 0; step < 5000; step++) {
            char name[16];
            snprintf(name, sizeof(name), "m%d", (int)(next_rand() % (uint64_t)range));
            long at = -1;
            for (size_t i = 0; i < m.n; i++)
                if (strcmp(m.v[i].m, name) == 0) at = (long)i;
            if (next_rand() % 4) {
                double score = (double)(int64_t)(next_rand() % 50) - 25 + (next_rand() % 2) * 0.5;
                assert_int_equal(kv_zset_set(&ks, e, sl(name), score), at < 0);
                if (at < 0) {
                    at = (long)m.n++;
                    strcpy(m.v[at].m, name);
                }
                m.v[at].score = score;
            } else {
                assert_int_equal(kv_zset_remove(&ks, e, sl(name)), at >= 0);
                if (at >= 0) m.v[at] = m.v[--m.n];
            }
            if (step % 700 == 0) check(e, &m);
        }
        check(e, &m);
        if (run >= 2) assert_int_equal(e->encoding, KV_ENC_SKIPLIST);
        kv_keyspace_close(&ks);
    }
}

static void zadd(kv_store *s, const char *key, const char *score, const char *member)
{
    kv_slice args[3] = {sl(key), sl(score), sl(member)};
    kv_command c = {.op = KV_OP_ZADD, .nargs = 3, .args = args, .now_ms = 1};
    kv_result r;
    kv_store_apply(s, &c, &r);
    assert_int_equal(r.status, KV_OK);
}

static void test_snapshot_round_trip_and_refusals(void **state)
{
    (void)state;
    kv_store s;
    kv_store_init(&s, 3);
    zadd(&s, "a-small", "1.5", "x");
    zadd(&s, "a-small", "-inf", "y");
    char num[32], mem[32];
    for (int i = 0; i < 200; i++) {
        snprintf(num, sizeof(num), "%d", i % 17);
        snprintf(mem, sizeof(mem), "m%d", i);
        zadd(&s, "b-big", num, mem);
    }
    buf out, again;
    buf_init(&out);
    buf_init(&again);
    assert_int_equal(kv_snapshot_write(&s, kv_snapshot_sink_buf, &out), 0);
    kv_store t;
    kv_store_init(&t, 99);
    char err[256];
    assert_int_equal(kv_snapshot_load(&t, out.data, out.len, err, sizeof(err)), 0);
    kv_entry *a = kv_keyspace_find(&t.ks, "a-small", 7), *b = kv_keyspace_find(&t.ks, "b-big", 5);
    assert_int_equal(a->encoding, KV_ENC_LISTPACK);
    assert_int_equal(b->encoding, KV_ENC_SKIPLIST);
    assert_int_equal(kv_zset_len(b), 200);
    assert_int_equal(kv_snapshot_write(&t, kv_snapshot_sink_buf, &again), 0);
    assert_int_equal(again.len, out.len);
    assert_memory_equal(again.data, out.data, out.len);

    /* a listpack out of order, or one member under two scores: refused */
    kv_keyspace ks;
    kv_keyspace_init(&ks, 5);
    char lp[64];
    size_t n = 4;
    lp[0] = 2, lp[1] = lp[2] = lp[3] = 0;
    kv_zset_entry_header(lp + n, 2.0, 1);
    lp[n + 12] = 'a';
    n += 13;
    kv_zset_entry_header(lp + n, 1.0, 1);
    lp[n + 12] = 'b';
    n += 13;
    kv_entry *x = kv_keyspace_insert(&ks, "x", 1, NULL, 0);
    assert_false(kv_zset_load(&ks, x, KV_ENC_LISTPACK, lp, n));
    kv_zset_entry_header(lp + 4, 1.0, 1);
    lp[16] = 'a';
    kv_zset_entry_header(lp + 17, 2.0, 1);
    lp[29] = 'a';
    assert_false(kv_zset_load(&ks, x, KV_ENC_SKIPLIST, lp, n));
    lp[29] = 'b';
    assert_true(kv_zset_load(&ks, x, KV_ENC_SKIPLIST, lp, n));
    assert_int_equal(kv_zset_len(x), 2);
    kv_keyspace_close(&ks);
    buf_close(&out);
    buf_close(&again);
    kv_store_close(&s);
    kv_store_close(&t);
}

static kv_result apply(kv_store *s, int op, int64_t a, int64_t b, const char *const *argv,
                       uint32_t n)
{
    kv_slice args[8];
    for (uint32_t i = 0; i < n; i++) args[i] = sl(argv[i]);
    kv_command c = {.op = (uint8_t)op, .a = a, .b = b, .nargs = n, .args = args, .now_ms = 1};
    kv_result r;
    kv_store_apply(s, &c, &r);
    return r;
}

/* ZRANGESTORE into its own source, and the commands apply refuses: a
 * replica never trusts the front end's checks */
static void test_rangestore_and_mpop_at_apply(void **state)
{
    (void)state;
    kv_store s;
    kv_store_init(&s, 3);
    for (int i = 0; i < 10; i++) {
        char num[8], mem[8];
        snprintf(num, sizeof(num), "%d", i);
        snprintf(mem, sizeof(mem), "m%d", i);
        zadd(&s, "z", num, mem);
    }
    const char *self[] = {"z", "z", "(2", "7", "1", "-1"};
    kv_result r = apply(&s, KV_OP_ZRANGESTORE, KV_ZRS_BYSCORE | KV_ZRS_LIMIT, 0, self, 6);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.integer, 4); /* 3..7 past the first: 4 5 6 7 */
    kv_entry *z = kv_keyspace_find(&s.ks, "z", 1);
    assert_int_equal(kv_zset_len(z), 4);
    double score;
    assert_true(kv_zset_score(z, sl("m4"), &score));
    assert_true(score == 4.0);
    assert_false(kv_zset_score(z, sl("m3"), &score));

    const char *none[] = {"z", "absent", "0", "-1", "0", "-1"};
    r = apply(&s, KV_OP_ZRANGESTORE, 0, 0, none, 6);
    assert_int_equal(r.integer, 0);
    assert_null(kv_keyspace_find(&s.ks, "z", 1)); /* an empty range deletes dst */

    zadd(&s, "y", "1", "a");
    const char *bad_bound[] = {"d", "y", "x", "1", "0", "-1"};
    const char *lex[] = {"d", "y", "[a", "+", "0", "-1"};
    assert_int_equal(apply(&s, KV_OP_ZRANGESTORE, 0, 0, bad_bound, 6).status, KV_ERR_MALFORMED);
    assert_int_equal(apply(&s, KV_OP_ZRANGESTORE, KV_ZRS_BYLEX | KV_ZRS_BYSCORE, 0, lex, 6).status,
                     KV_ERR_MALFORMED);
    assert_int_equal(apply(&s, KV_OP_ZRANGESTORE, 16, 0, lex, 6).status, KV_ERR_MALFORMED);
    assert_int_equal(apply(&s, KV_OP_ZRANGESTORE, KV_ZRS_BYLEX, 0, lex, 5).status,
                     KV_ERR_MALFORMED);
    r = apply(&s, KV_OP_ZRANGESTORE, KV_ZRS_BYLEX, 0, lex, 6);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.integer, 1);

    const char *keys[] = {"absent", "y"};
    assert_int_equal(apply(&s, KV_OP_ZMPOP, 0, 0, keys, 2).status, KV_ERR_MALFORMED);
    r = apply(&s, KV_OP_ZMPOP, 1, 5, keys, 2);
    assert_int_equal(r.status, KV_OK);
    assert_true(r.has_value);
    assert_int_equal(r.integer, 1);
    size_t pos = 0;
    kv_slice key = kv_result_popped_key(&r, &pos), m, sc;
    assert_int_equal(key.len, 1);
    assert_memory_equal(key.ptr, "y", 1);
    assert_true(kv_result_popped_next(&r, &pos, &m) && kv_result_popped_next(&r, &pos, &sc));
    assert_memory_equal(m.ptr, "a", 1);
    assert_memory_equal(sc.ptr, "1", 1);
    assert_null(kv_keyspace_find(&s.ks, "y", 1)); /* emptied: gone */
    r = apply(&s, KV_OP_ZMPOP, 0, 1, keys, 2);
    assert_int_equal(r.status, KV_OK);
    assert_false(r.has_value); /* nothing to pop: a blocking pop waits */
    kv_store_close(&s);
}

static void test_parsing_as_redis(void **state)
{
    (void)state;
    double d;
    bool x;
    assert_true(kv_zset_parse_score("1.5", 3, &d) && d == 1.5);
    assert_true(kv_zset_parse_score("-inf", 4, &d) && d < -1e308);
    assert_true(kv_zset_parse_score("0x10", 4, &d) && d == 16); /* strtod's, as Redis */
    assert_false(kv_zset_parse_score("nan", 3, &d));
    assert_false(kv_zset_parse_score(" 1", 2, &d));
    assert_false(kv_zset_parse_score("1 ", 2, &d));
    assert_false(kv_zset_parse_score("", 0, &d));
    assert_false(kv_zset_parse_score("1e999", 5, &d));
    assert_true(kv_zset_parse_bound("(5", 2, &d, &x) && x && d == 5);
    assert_true(kv_zset_parse_bound("+inf", 4, &d, &x) && !x);
    assert_false(kv_zset_parse_bound("(x", 2, &d, &x));
    assert_false(kv_zset_parse_bound("nan", 3, &d, &x));
}

/* The listpack encoding packs its scores: whole numbers up to 2^53 as
 * zigzag LEB128, the rest as doubles. Every kind reads back exactly, in
 * order, and a snapshot (which keeps the 8-byte layout) round-trips. */
static void test_packed_scores_of_every_kind(void **state)
{
    (void)state;
    static const double scores[] = {0,
                                    1,
                                    -1,
                                    63,
                                    64,
                                    -64,
                                    -65,
                                    127.0,
                                    1e6,
                                    -123456789012.0,
                                    9007199254740992.0,
                                    -9007199254740992.0,
                                    9007199254740994.0,
                                    1.5,
                                    -0.25,
                                    1e300,
                                    -1e-300,
                                    INFINITY,
                                    -INFINITY};
    enum { N = sizeof(scores) / sizeof(scores[0]) };
    kv_store s, t;
    kv_store_init(&s, 4);
    kv_store_init(&t, 5);
    kv_entry *e = kv_keyspace_insert(&s.ks, "z", 1, NULL, 0);
    kv_zset_init(&s.ks, e);
    char m[N][8];
    for (int i = 0; i < N; i++) {
        snprintf(m[i], sizeof(m[i]), "m%02d", i);
        assert_true(kv_zset_set(&s.ks, e, unit_slice(m[i]), scores[i]));
    }
    assert_int_equal(e->encoding, KV_ENC_LISTPACK);
    buf out;
    buf_init(&out);
    assert_int_equal(kv_snapshot_write(&s, kv_snapshot_sink_buf, &out), 0);
    char err[256];
    assert_int_equal(kv_snapshot_load(&t, out.data, out.len, err, sizeof(err)), 0);
    for (int round = 0; round < 2; round++) {
        kv_entry *x = kv_keyspace_find(round ? &t.ks : &s.ks, "z", 1);
        assert_int_equal(x->encoding, KV_ENC_LISTPACK);
        assert_int_equal(kv_zset_len(x), N);
        double prev = -INFINITY, got;
        for (int i = 0; i < N; i++) {
            assert_true(kv_zset_score(x, unit_slice(m[i]), &got));
            assert_memory_equal(&got, &scores[i], sizeof(double)); /* bit for bit */
        }
        kv_zset_iter it;
        kv_slice mm;
        int n = 0;
        kv_zset_iter_init(&it, x, 0, false);
        while (kv_zset_iter_next(&it, &mm, &got)) {
            assert_true(got >= prev);
            prev = got;
            n++;
        }
        assert_int_equal(n, N);
    }
    buf_close(&out);
    kv_store_close(&s);
    kv_store_close(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_ops_against_a_model),
        cmocka_unit_test(test_snapshot_round_trip_and_refusals),
        cmocka_unit_test(test_packed_scores_of_every_kind),
        cmocka_unit_test(test_parsing_as_redis),
        cmocka_unit_test(test_rangestore_and_mpop_at_apply),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
