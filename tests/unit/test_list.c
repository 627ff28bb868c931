/* Lists in the state machine (issue 12): the quicklist's nodes under
 * pushes, pops, edits and trims that cross node borders, checked against a
 * plain array model; the memory estimate; snapshots (round trip and
 * malformed lists refused). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/command.h"
#include "kv/list.h"
#include "kv/snapshot.h"
#include "kv/store.h"
#include "util/hash.h"

#define MODEL_MAX 4096

typedef struct model {
    char *v[MODEL_MAX];
    size_t n;
} model;

static uint64_t rng = 88172645463325252ULL;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void check(const kv_entry *e, const model *m)
{
    assert_int_equal(kv_list_len(e), m->n);
    kv_list_iter it;
    kv_slice v;
    kv_list_iter_init(&it, e, 0);
    for (size_t i = 0; i < m->n; i++) {
        assert_true(kv_list_iter_next(&it, &v));
        assert_int_equal(v.len, strlen(m->v[i]));
        assert_memory_equal(v.ptr, m->v[i], v.len);
        kv_slice w;
        assert_true(kv_list_index(e, (int64_t)i, &w));
        assert_true(w.ptr == v.ptr);
        assert_true(kv_list_index(e, (int64_t)i - (int64_t)m->n, &w));
        assert_true(w.ptr == v.ptr);
    }
    assert_false(kv_list_iter_next(&it, &v));
}

static char *element(void)
{
    /* mostly small (a 1 or 2-byte length), sometimes bigger than a node
     * (2 or 3 bytes) */
    size_t len = next_rand() % 20 == 0 ? (next_rand() % 2 ? 9000 : 20000) : 1 + next_rand() % 300;
    char *s = malloc(len + 1);
    for (size_t i = 0; i < len; i++) s[i] = (char)('a' + next_rand() % 3);
    s[len] = '\0';
    return s;
}

/* Under list-max-listpack-size `fill` (kept for the whole run), random
 * pushes, pops, sets, inserts, removes and trims agree with the model, and
 * no node holds more than the fill allows (but a node of one element). */
static void random_operations(int64_t fill)
{
    kv_keyspace ks;
    kv_keyspace_init(&ks, 1);
    ks.limits.v[KV_LIMIT_LIST_SIZE] = (uint64_t)fill;
    uint32_t max_bytes, max_count;
    kv_limit_list_node(&ks.limits, &max_bytes, &max_count);
    kv_entry *e = kv_keyspace_insert(&ks, "l", 1, NULL, 0);
    size_t base = ks.mem_bytes;
    kv_list_init(&ks, e);
    model m = {0};
    buf out;
    buf_init(&out);
    for (int step = 0; step < 20000; step++) {
        unsigned op = (unsigned)(next_rand() % 10);
        if (op <= 3 && m.n < MODEL_MAX - 1) { /* push */
            char *s = element();
            bool head = op % 2;
            kv_list_push(&ks, e, (kv_slice){s, strlen(s)}, head);
            if (head) {
                memmove(m.v + 1, m.v, m.n * sizeof(char *));
                m.v[0] = s;
            } else {
                m.v[m.n] = s;
            }
            m.n++;
        } else if (op <= 5 && m.n) { /* pop */
            bool head = op % 2;
            buf_reset(&out);
            assert_true(kv_list_pop(&ks, e, head, &out));
            char *s = head ? m.v[0] : m.v[m.n - 1];
            assert_int_equal(out.len, strlen(s));
            assert_memory_equal(out.data, s, out.len);
            if (head) memmove(m.v, m.v + 1, (m.n - 1) * sizeof(char *));
            m.n--;
            free(s);
        } else if (op == 6 && m.n) { /* set */
            size_t i = next_rand() % m.n;
            char *s = element();
            assert_true(kv_list_set(&ks, e, (int64_t)i, (kv_slice){s, strlen(s)}));
            free(m.v[i]);
            m.v[i] = s;
        } else if (op == 7 && m.n && m.n < MODEL_MAX - 1) { /* insert before a pivot */
            size_t i = next_rand() % m.n;
            size_t first = 0; /* the first equal element is the pivot */
            while (strcmp(m.v[first], m.v[i]) != 0) first++;
            char *s = element();
            assert_true(kv_list_insert(&ks, e, true, (kv_slice){m.v[i], strlen(m.v[i])},
                                       (kv_slice){s, strlen(s)}));
            memmove(m.v + first + 1, m.v + first, (m.n - first) * sizeof(char *));
            m.v[first] = s;
            m.n++;
        } else if (op == 8 && m.n) { /* remove up to 2 equal to one, from either end */
            size_t i = next_rand() % m.n;
            char *want = strdup(m.v[i]);
            int64_t count = next_rand() % 2 ? 2 : -2;
            int64_t removed = kv_list_rem(&ks, e, count, (kv_slice){want, strlen(want)});
            int64_t left = 2, gone = 0;
            for (size_t k = 0; k < m.n && left; k++) {
                size_t j = count > 0 ? k : m.n - 1 - k;
                if (strcmp(m.v[j], want) != 0) continue;
                free(m.v[j]);
                m.v[j] = NULL;
                left--;
                gone++;
            }
            size_t w = 0;
            for (size_t k = 0; k < m.n; k++)
                if (m.v[k]) m.v[w++] = m.v[k];
            m.n = w;
            assert_int_equal(removed, gone);
            free(want);
        } else if (op == 9 && m.n > 10 && next_rand() % 8 == 0) { /* trim a little */
            int64_t start = (int64_t)(next_rand() % 3), stop = -1 - (int64_t)(next_rand() % 3);
            kv_list_trim(&ks, e, start, stop);
            int64_t last = (int64_t)m.n + stop;
            for (int64_t k = 0; k < (int64_t)m.n; k++)
                if (k < start || k > last) free(m.v[k]);
            memmove(m.v, m.v + start, (size_t)(last - start + 1) * sizeof(char *));
            m.n = (size_t)(last - start + 1);
        }
        if (step % 500 == 0) {
            check(e, &m);
            kv_list_node_stats st;
            kv_list_stats(e, &st);
            assert_true(st.most_elements <= max_count);
            assert_true(st.most_bytes <= max_bytes || st.most_bytes_elements == 1);
            assert_true(st.nodes <= m.n);
        }
    }
    check(e, &m);
    kv_list_trim(&ks, e, 1, 0); /* empties it */
    assert_int_equal(kv_list_len(e), 0);
    kv_keyspace_reset_value(&ks, e);
    assert_int_equal(ks.mem_bytes, base);
    for (size_t i = 0; i < m.n; i++) free(m.v[i]);
    buf_close(&out);
    kv_keyspace_close(&ks);
}

static void test_random_operations_match_a_model(void **state)
{
    (void)state;
    random_operations(-2); /* the default: 8 KiB nodes */
}

/* list-max-listpack-size's other shapes: a count (1, 3; 0 counts as 1),
 * the other sizes (4 and 64 KiB; -9 counts as -5) */
static void test_every_node_limit(void **state)
{
    (void)state;
    static const int64_t fills[] = {1, 3, 0, -1, -5, -9, 40000};
    for (size_t i = 0; i < sizeof(fills) / sizeof(fills[0]); i++) random_operations(fills[i]);
    kv_limits l;
    kv_limits_default(&l);
    uint32_t bytes, count;
    kv_limit_list_node(&l, &bytes, &count);
    assert_int_equal(bytes, 8192);
    assert_int_equal(count, UINT32_MAX);
    l.v[KV_LIMIT_LIST_SIZE] = (uint64_t)(int64_t)-9;
    kv_limit_list_node(&l, &bytes, &count);
    assert_int_equal(bytes, 65536);
    l.v[KV_LIMIT_LIST_SIZE] = 40000;
    kv_limit_list_node(&l, &bytes, &count);
    assert_int_equal(bytes, 8192);
    assert_int_equal(count, 32767);
    l.v[KV_LIMIT_LIST_SIZE] = 0;
    kv_limit_list_node(&l, &bytes, &count);
    assert_int_equal(count, 1);
}

static void test_snapshot_round_trip_and_malformed(void **state)
{
    (void)state;
    kv_store a, b;
    kv_store_init(&a, 2);
    kv_store_init(&b, 3);
    kv_slice args[401];
    char text[400][8];
    args[0] = (kv_slice){"q", 1};
    for (int i = 0; i < 400; i++) {
        snprintf(text[i], sizeof(text[i]), "e%d", i);
        args[i + 1] = (kv_slice){text[i], strlen(text[i])};
    }
    kv_command push = {.op = KV_OP_LPUSH, .a = 0, .nargs = 401, .args = args};
    kv_result res;
    kv_store_apply(&a, &push, &res);
    assert_int_equal(res.integer, 400);
    buf out;
    buf_init(&out);
    assert_int_equal(kv_snapshot_write(&a, kv_snapshot_sink_buf, &out), 0);
    char err[256];
    if (kv_snapshot_load(&b, out.data, out.len, err, sizeof(err)) != 0) fail_msg("%s", err);
    kv_entry *e = kv_store_get(&b, "q", 1, 0);
    assert_int_equal(e->type, KV_TYPE_LIST);
    assert_int_equal(kv_list_len(e), 400);
    kv_slice v;
    assert_true(kv_list_index(e, -1, &v));
    assert_memory_equal(v.ptr, "e399", 4);
    /* the same bytes again */
    buf again;
    buf_init(&again);
    assert_int_equal(kv_snapshot_write(&b, kv_snapshot_sink_buf, &again), 0);
    assert_int_equal(again.len, out.len);
    assert_memory_equal(again.data, out.data, out.len);
    /* malformed: value after the 32-byte header, 42-byte entry header, key */
    size_t value_at = 32 + 42 + 1;
    struct {
        size_t at;
        char byte;
    } bad[] = {{value_at, 0}, {value_at, 7}, {value_at + 4, 99}, {32 + 41, 1}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf c;
        buf_init(&c);
        buf_append(&c, out.data, out.len);
        c.data[bad[i].at] = bad[i].byte;
        uint32_t crc = crc32c_update(0, c.data, c.len - 4);
        for (int k = 0; k < 4; k++) c.data[c.len - 4 + k] = (char)(crc >> (8 * k));
        if (kv_snapshot_load(&b, c.data, c.len, err, sizeof(err)) == 0)
            fail_msg("case %zu loaded", i);
        buf_close(&c);
    }
    buf_close(&out);
    buf_close(&again);
    kv_store_close(&a);
    kv_store_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_operations_match_a_model),
        cmocka_unit_test(test_every_node_limit),
        cmocka_unit_test(test_snapshot_round_trip_and_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
