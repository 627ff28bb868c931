/* Tests for kv/keyspace: the hash index (incremental rehash in both
 * directions, SCAN's guarantee across resizes, random sampling), the
 * skiplist order (iteration and seek against a sorted model), and the
 * bookkeeping (mem_bytes, volatile_count, value ownership).
 *
 * check_invariants() walks both indexes without going through the API, so
 * a lookup that happens to work cannot hide a broken chain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/hash.h"
#include "kv/keyspace.h"
#include "kv/lazyfree.h"
#include "util/hash.h"

/* ---- helpers ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    /* splitmix64: deterministic, independent of the code under test */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c) return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static size_t table_bytes(const kv_keyspace *ks)
{
    size_t n = 0;
    for (int i = 0; i < 2; i++)
        if (ks->t[i].buckets) n += (ks->t[i].mask + 1) * sizeof(kv_entry *);
    return n;
}

static uint64_t table_size(const kv_table *t)
{
    return t->buckets ? t->mask + 1 : 0;
}

/* Walks the skiplist and both hash tables directly and checks that they
 * agree with each other and with the counters. O(n). */
static void check_invariants(const kv_keyspace *ks)
{
    uint64_t n = 0, vol = 0;
    size_t mem = table_bytes(ks);
    int max_level = 1;
    const kv_entry *prev = NULL;
    for (const kv_entry *e = kv_keyspace_first(ks); e; e = kv_keyspace_next(e)) {
        if (prev)
            assert_true(key_cmp(kv_entry_key(prev), prev->key_len, kv_entry_key(e), e->key_len) <
                        0);
        assert_true(e->level >= 1 && e->level <= KV_SKIPLIST_MAX_LEVEL);
        if (e->level > max_level) max_level = e->level;
        if (e->expire_ms) vol++;
        assert_true((e->value == NULL) == (e->value_len == 0));
        mem += kv_entry_mem_bytes(e);
        n++;
        prev = e;
    }
    assert_int_equal(n, kv_keyspace_count(ks));
    assert_int_equal(vol, ks->volatile_count);
    assert_int_equal(mem, ks->mem_bytes);
    assert_true(ks->level >= max_level);

    /* every upper level is a sorted sub-list of the entries tall enough */
    for (int lvl = 1; lvl < KV_SKIPLIST_MAX_LEVEL; lvl++) {
        uint64_t tall = 0, linked = 0;
        for (const kv_entry *e = kv_keyspace_first(ks); e; e = kv_keyspace_next(e))
            if (e->level > lvl) tall++;
        const kv_entry *p = NULL;
        for (const kv_entry *e = ks->head->next[lvl]; e; e = e->next[lvl]) {
            assert_true(e->level > lvl);
            if (p)
                assert_true(key_cmp(kv_entry_key(p), p->key_len, kv_entry_key(e), e->key_len) < 0);
            p = e;
            linked++;
        }
        assert_int_equal(tall, linked);
        if (lvl >= ks->level) assert_null(ks->head->next[lvl]);
    }

    /* hash tables: every entry in the bucket its hash names, counts right,
     * moved buckets of t[0] empty while rehashing */
    uint64_t in_tables = 0;
    for (int i = 0; i < 2; i++) {
        const kv_table *t = &ks->t[i];
        uint64_t used = 0;
        for (uint64_t b = 0; b < table_size(t); b++) {
            if (i == 0 && ks->rehash_index >= 0 && b < (uint64_t)ks->rehash_index)
                assert_null(t->buckets[b]);
            for (const kv_entry *e = t->buckets[b]; e; e = e->hnext) {
                assert_int_equal(hash_bytes(kv_entry_key(e), e->key_len, ks->seed) & t->mask, b);
                used++;
            }
        }
        assert_int_equal(used, t->used);
        in_tables += used;
    }
    assert_int_equal(in_tables, n);
    if (ks->rehash_index < 0) {
        assert_null(ks->t[1].buckets);
        assert_int_equal(ks->t[1].used, 0);
    } else {
        assert_non_null(ks->t[1].buckets);
    }
}

static size_t fmt_key(char *out, const char *prefix, uint64_t i)
{
    return (size_t)snprintf(out, 32, "%s%llu", prefix, (unsigned long long)i);
}

static kv_entry *insert_str(kv_keyspace *ks, const char *k, const char *v)
{
    assert_null(kv_keyspace_find(ks, k, strlen(k)));
    return kv_keyspace_insert(ks, k, strlen(k), v, strlen(v));
}

static void finish_rehash(kv_keyspace *ks)
{
    for (int i = 0; i < 1000000 && kv_keyspace_rehash_step(ks, 100); i++) {
    }
    assert_true(ks->rehash_index < 0);
}

/* ---- basic operations ---- */

static void test_insert_find_delete(void **state)
{
    kv_keyspace ks;
    kv_keyspace_init(&ks, 42);
    assert_int_equal(kv_keyspace_count(&ks), 0);
    assert_null(kv_keyspace_find(&ks, "a", 1));
    assert_false(kv_keyspace_delete(&ks, "a", 1));
    assert_null(kv_keyspace_first(&ks));
    assert_null(kv_keyspace_random(&ks));

    kv_entry *a = insert_str(&ks, "alpha", "one");
    kv_entry *b = insert_str(&ks, "beta", "two");
    /* metadata starts at zero for kv/store to fill in */
    assert_int_equal(a->create_rev, 0);
    assert_int_equal(a->mod_rev, 0);
    assert_int_equal(a->version, 0);
    assert_int_equal(a->expire_ms, 0);
    assert_int_equal(a->key_len, 5);
    assert_memory_equal(kv_entry_key(a), "alpha", 5);
    assert_int_equal(a->value_len, 3);
    assert_memory_equal(a->value, "one", 3);
    assert_int_equal(kv_keyspace_count(&ks), 2);
    assert_ptr_equal(kv_keyspace_find(&ks, "alpha", 5), a);
    assert_ptr_equal(kv_keyspace_find(&ks, "beta", 4), b);
    assert_null(kv_keyspace_find(&ks, "alph", 4));
    assert_null(kv_keyspace_find(&ks, "alphaa", 6));
    check_invariants(&ks);

    /* the value is copied, not referenced */
    char v[] = "mutable";
    kv_entry *c = kv_keyspace_insert(&ks, "c", 1, v, 7);
    v[0] = 'X';
    assert_memory_equal(c->value, "mutable", 7);

    kv_keyspace_set_value(&ks, a, "uno!", 4);
    assert_memory_equal(a->value, "uno!", 4);
    assert_int_equal(a->value_len, 4);
    kv_keyspace_set_value(&ks, a, NULL, 0);
    assert_null(a->value);
    assert_int_equal(a->value_len, 0);
    check_invariants(&ks);

    assert_true(kv_keyspace_delete(&ks, "alpha", 5));
    assert_false(kv_keyspace_delete(&ks, "alpha", 5));
    assert_null(kv_keyspace_find(&ks, "alpha", 5));
    assert_ptr_equal(kv_keyspace_find(&ks, "beta", 4), b);
    assert_int_equal(kv_keyspace_count(&ks), 2);
    check_invariants(&ks);

    kv_keyspace_clear(&ks);
    assert_int_equal(kv_keyspace_count(&ks), 0);
    assert_int_equal(ks.mem_bytes, 0);
    assert_null(kv_keyspace_first(&ks));
    assert_null(kv_keyspace_find(&ks, "beta", 4));
    check_invariants(&ks);
    /* usable after clear */
    insert_str(&ks, "again", "x");
    assert_non_null(kv_keyspace_find(&ks, "again", 5));
    check_invariants(&ks);
    kv_keyspace_close(&ks);
}

static void test_binary_keys(void **state)
{
    kv_keyspace ks;
    kv_keyspace_init(&ks, 7);
    /* listed in byte order; \0 inside and at the end, a \xff byte, the
     * empty key, and prefixes of each other */
    static const struct {
        const char *p;
        size_t n;
    } keys[] = {
        {"", 0},   {"\0", 1}, {"\0\0", 2}, {"a", 1},    {"a\0", 2},  {"a\0b", 3},   {"a\0c", 3},
        {"ab", 2}, {"b", 1},  {"\x7f", 1}, {"\x80", 1}, {"\xff", 1}, {"\xff\0", 2}, {"\xff\xff", 2},
    };
    const size_t nk = sizeof(keys) / sizeof(keys[0]);
    /* insert in a scrambled order */
    for (size_t i = 0; i < nk; i++) {
        size_t j = (i * 5 + 3) % nk;
        char val[8];
        int vn = snprintf(val, sizeof(val), "v%zu", j);
        assert_null(kv_keyspace_find(&ks, keys[j].p, keys[j].n));
        kv_keyspace_insert(&ks, keys[j].p, keys[j].n, val, (size_t)vn);
    }
    assert_int_equal(kv_keyspace_count(&ks), nk);
    check_invariants(&ks);
    size_t i = 0;
    for (kv_entry *e = kv_keyspace_first(&ks); e; e = kv_keyspace_next(e), i++) {
        assert_true(i < nk);
        assert_int_equal(e->key_len, keys[i].n);
        if (keys[i].n) assert_memory_equal(kv_entry_key(e), keys[i].p, keys[i].n);
        char val[8];
        int vn = snprintf(val, sizeof(val), "v%zu", i);
        assert_int_equal(e->value_len, vn);
        assert_memory_equal(e->value, val, (size_t)vn);
        assert_ptr_equal(kv_keyspace_find(&ks, keys[i].p, keys[i].n), e);
    }
    assert_int_equal(i, nk);
    /* a key with \0 is not confused with its C-string prefix */
    assert_true(kv_keyspace_delete(&ks, "a\0b", 3));
    assert_null(kv_keyspace_find(&ks, "a\0b", 3));
    assert_non_null(kv_keyspace_find(&ks, "a", 1));
    assert_non_null(kv_keyspace_find(&ks, "a\0", 2));
    assert_true(kv_keyspace_delete(&ks, "", 0));
    assert_null(kv_keyspace_find(&ks, "", 0));
    assert_non_null(kv_keyspace_find(&ks, "\0", 1));
    check_invariants(&ks);
    kv_keyspace_close(&ks);
}

/* ---- resizing ---- */

#define MANY 200000

static void check_all_present(kv_keyspace *ks, kv_entry **ents, const char *prefix, uint64_t lo,
                              uint64_t hi, uint64_t *finds_mid_rehash)
{
    char k[32];
    for (uint64_t i = lo; i < hi; i++) {
        size_t n = fmt_key(k, prefix, i);
        if (ks->rehash_index >= 0) (*finds_mid_rehash)++;
        assert_ptr_equal(kv_keyspace_find(ks, k, n), ents[i]);
    }
}

static void test_many_keys_rehash_and_shrink(void **state)
{
    kv_keyspace ks;
    kv_keyspace_init(&ks, 0x1234);
    kv_entry **ents = calloc(MANY, sizeof(*ents));
    char k[32];
    uint64_t grows = 0, shrinks = 0, finds_mid_rehash = 0;
    uint64_t max_size = 0;

    for (uint64_t i = 0; i < MANY; i++) {
        size_t n = fmt_key(k, "key:", i);
        bool was = ks.rehash_index >= 0;
        ents[i] = kv_keyspace_insert(&ks, k, n, k, n);
        if (!was && ks.rehash_index >= 0) {
            grows++;
            assert_true(table_size(&ks.t[1]) > table_size(&ks.t[0]));
            /* right after a resize starts: every key so far, mid-rehash,
             * and absent keys are still absent */
            check_all_present(&ks, ents, "key:", 0, i + 1, &finds_mid_rehash);
            assert_null(kv_keyspace_find(&ks, "key:x", 5));
            if (grows == 6) check_invariants(&ks);
        }
        if (table_size(&ks.t[0]) > max_size) max_size = table_size(&ks.t[0]);
        if (table_size(&ks.t[1]) > max_size) max_size = table_size(&ks.t[1]);
    }
    assert_true(grows >= 10);
    assert_true(finds_mid_rehash > 1000);
    assert_true(max_size >= MANY / 2);
    assert_int_equal(kv_keyspace_count(&ks), MANY);
    check_invariants(&ks);

    /* delete all but every 1000th key; the table must shrink, and every
     * surviving key stays findable while it does. A shrink of a sparse
     * table moves slowly on deletes alone (bounded empty-bucket visits),
     * so the idle-time steps of the loop are simulated too. */
    uint64_t deleted = 0;
    for (uint64_t i = 0; i < MANY; i++) {
        if (i % 64 == 0) kv_keyspace_rehash_step(&ks, 20);
        if (i % 1000 == 0) continue;
        size_t n = fmt_key(k, "key:", i);
        bool was = ks.rehash_index >= 0;
        uint64_t before = table_size(&ks.t[0]);
        assert_true(kv_keyspace_delete(&ks, k, n));
        ents[i] = NULL;
        deleted++;
        if (!was && ks.rehash_index >= 0) {
            shrinks++;
            assert_true(table_size(&ks.t[1]) < before);
            for (uint64_t j = 0; j < MANY; j += 1000) {
                size_t m = fmt_key(k, "key:", j);
                if (ks.rehash_index >= 0) finds_mid_rehash++;
                assert_ptr_equal(kv_keyspace_find(&ks, k, m), ents[j]);
            }
            /* a few deleted ones, mid-rehash */
            for (uint64_t j = 1; j < i; j += 997) {
                if (j % 1000 == 0) continue;
                size_t m = fmt_key(k, "key:", j);
                assert_null(kv_keyspace_find(&ks, k, m));
            }
        }
    }
    assert_true(shrinks >= 3);
    assert_int_equal(kv_keyspace_count(&ks), MANY / 1000);
    check_invariants(&ks);
    finish_rehash(&ks);
    check_invariants(&ks);
    /* 200 keys left: the table is back to a size near their count */
    assert_true(table_size(&ks.t[0]) <= 1024);
    for (uint64_t j = 0; j < MANY; j += 1000) {
        size_t m = fmt_key(k, "key:", j);
        assert_ptr_equal(kv_keyspace_find(&ks, k, m), ents[j]);
    }
    free(ents);
    kv_keyspace_close(&ks);
}

/* rehash_step does bounded work and reports whether more remains */
static void test_rehash_step(void **state)
{
    kv_keyspace ks;
    kv_keyspace_init(&ks, 99);
    assert_false(kv_keyspace_rehash_step(&ks, 10));
    char k[32];
    uint64_t i = 0;
    /* grow until a resize is in progress with plenty left to move */
    while (!(ks.rehash_index >= 0 && ks.t[0].used > 1000)) {
        size_t n = fmt_key(k, "r", i++);
        kv_keyspace_insert(&ks, k, n, "", 0);
    }
    uint64_t moved_before = ks.t[1].used;
    assert_true(kv_keyspace_rehash_step(&ks, 5));
    assert_true(ks.t[1].used > moved_before);
    assert_true(ks.t[1].used - moved_before < 200); /* a few buckets, not the table */
    check_invariants(&ks);
    finish_rehash(&ks);
    assert_false(kv_keyspace_rehash_step(&ks, 1));
    check_invariants(&ks);
    for (uint64_t j = 0; j < i; j++) {
        size_t n = fmt_key(k, "r", j);
        assert_non_null(kv_keyspace_find(&ks, k, n));
    }
    kv_keyspace_close(&ks);
}

/* ---- order ---- */

#define POOL 3000

typedef struct model_key {
    char k[8];
    size_t n;
    bool present;
} model_key;

static model_key pool[POOL];

static int model_cmp(const void *a, const void *b)
{
    const model_key *x = *(model_key *const *)a, *y = *(model_key *const *)b;
    return key_cmp(x->k, x->n, y->k, y->n);
}

/* Keys over a 3-letter alphabet (with \0) and lengths 0..6, so that many
 * are prefixes of others. Duplicates in the pool are dropped. */
static void make_pool(void)
{
    static const char alpha[3] = {'\0', 'a', '\xff'};
    size_t made = 0;
    while (made < POOL) {
        model_key m = {.n = rnd() % 7};
        for (size_t i = 0; i < m.n; i++) m.k[i] = alpha[rnd() % 3];
        bool dup = false;
        for (size_t j = 0; j < made && !dup; j++)
            dup = pool[j].n == m.n && memcmp(pool[j].k, m.k, m.n) == 0;
        if (!dup) pool[made++] = m;
        /* only 3^0+...+3^6 = 1093 distinct keys exist in that alphabet */
        if (made == 1093) break;
    }
    for (size_t j = made; j < POOL; j++) {
        pool[j].n = (size_t)snprintf(pool[j].k, sizeof(pool[j].k), "z%zu", j);
    }
    for (size_t j = 0; j < POOL; j++) pool[j].present = false;
}

static size_t sorted_model(model_key **out)
{
    size_t n = 0;
    for (size_t i = 0; i < POOL; i++)
        if (pool[i].present) out[n++] = &pool[i];
    qsort(out, n, sizeof(*out), model_cmp);
    return n;
}

static void check_seek(const kv_keyspace *ks, model_key **sorted, size_t n, const char *p,
                       size_t pn)
{
    for (int after = 0; after < 2; after++) {
        /* the first model key >= probe (> probe with after) */
        size_t i = 0;
        while (i < n) {
            int c = key_cmp(sorted[i]->k, sorted[i]->n, p, pn);
            if (c > 0 || (c == 0 && !after)) break;
            i++;
        }
        kv_entry *e = kv_keyspace_seek(ks, p, pn, after != 0);
        if (i == n) {
            assert_null(e);
        } else {
            assert_non_null(e);
            assert_int_equal(e->key_len, sorted[i]->n);
            assert_int_equal(key_cmp(kv_entry_key(e), e->key_len, sorted[i]->k, sorted[i]->n), 0);
        }
    }
}

static void test_ordered_iteration_and_seek(void **state)
{
    rng_state = 11;
    make_pool();
    kv_keyspace ks;
    kv_keyspace_init(&ks, 5);
    model_key **sorted = calloc(POOL, sizeof(*sorted));
    for (int round = 0; round < 30; round++) {
        /* a burst of inserts and deletes, biased to grow early and to
         * shrink late, so upper skiplist levels come and go */
        int bias = round < 15 ? 70 : 25;
        for (int op = 0; op < 400; op++) {
            model_key *m = &pool[rnd() % POOL];
            if ((int)(rnd() % 100) < bias) {
                if (!m->present) {
                    kv_keyspace_insert(&ks, m->k, m->n, m->k, m->n);
                    m->present = true;
                } else {
                    assert_non_null(kv_keyspace_find(&ks, m->k, m->n));
                }
            } else {
                assert_int_equal(kv_keyspace_delete(&ks, m->k, m->n), m->present);
                m->present = false;
            }
        }
        size_t n = sorted_model(sorted);
        assert_int_equal(kv_keyspace_count(&ks), n);
        size_t i = 0;
        for (kv_entry *e = kv_keyspace_first(&ks); e; e = kv_keyspace_next(e), i++) {
            assert_true(i < n);
            assert_int_equal(e->key_len, sorted[i]->n);
            assert_int_equal(key_cmp(kv_entry_key(e), e->key_len, sorted[i]->k, sorted[i]->n), 0);
            assert_int_equal(e->value_len, sorted[i]->n);
        }
        assert_int_equal(i, n);
        check_invariants(&ks);

        /* seek at present keys, absent keys, and the extremes */
        for (int probe = 0; probe < 200; probe++) {
            const model_key *m = &pool[rnd() % POOL];
            check_seek(&ks, sorted, n, m->k, m->n);
        }
        check_seek(&ks, sorted, n, "", 0);
        check_seek(&ks, sorted, n, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
        check_seek(&ks, sorted, n, "a\0", 2);
        /* walking with after=true from each key visits exactly the order */
        if (n) {
            kv_entry *e = kv_keyspace_seek(&ks, "", 0, false);
            for (size_t j = 0; j < n; j++) {
                assert_non_null(e);
                assert_int_equal(key_cmp(kv_entry_key(e), e->key_len, sorted[j]->k, sorted[j]->n),
                                 0);
                e = kv_keyspace_seek(&ks, kv_entry_key(e), e->key_len, true);
            }
            assert_null(e);
        }
    }
    free(sorted);
    kv_keyspace_close(&ks);
}

/* Restore path: appending sorted keys builds a keyspace indistinguishable
 * from one built by inserts, and normal operations work on it after. */
static void test_append_sorted(void **state)
{
    kv_keyspace ks;
    kv_keyspace_init(&ks, 3);
    kv_entry *tail[KV_SKIPLIST_MAX_LEVEL] = {0};
    char k[32];
    const int n = 5000;
    for (int i = 0; i < n; i++) {
        size_t kn = (size_t)snprintf(k, sizeof(k), "k%06d", i);
        kv_entry *e = kv_keyspace_append_sorted(&ks, tail, k, kn, "val", 3);
        assert_int_equal(e->create_rev, 0);
        assert_int_equal(e->expire_ms, 0);
    }
    assert_int_equal(kv_keyspace_count(&ks), n);
    check_invariants(&ks);
    for (int i = 0; i < n; i++) {
        size_t kn = (size_t)snprintf(k, sizeof(k), "k%06d", i);
        kv_entry *e = kv_keyspace_find(&ks, k, kn);
        assert_non_null(e);
        assert_memory_equal(e->value, "val", 3);
        kv_entry *s = kv_keyspace_seek(&ks, k, kn, false);
        assert_ptr_equal(s, e);
    }
    /* mix in inserts between and deletes */
    kv_keyspace_insert(&ks, "k000100a", 8, "", 0);
    kv_keyspace_insert(&ks, "a", 1, "", 0);
    kv_keyspace_insert(&ks, "z", 1, "", 0);
    for (int i = 0; i < n; i += 3) {
        size_t kn = (size_t)snprintf(k, sizeof(k), "k%06d", i);
        assert_true(kv_keyspace_delete(&ks, k, kn));
    }
    check_invariants(&ks);
    kv_entry *e = kv_keyspace_seek(&ks, "k000100", 7, true);
    assert_int_equal(e->key_len, 8);
    assert_memory_equal(kv_entry_key(e), "k000100a", 8);
    assert_memory_equal(kv_entry_key(kv_keyspace_first(&ks)), "a", 1);
    kv_keyspace_close(&ks);
}

/* ---- SCAN ---- */

#define SCAN_STABLE 2000

typedef struct scan_ctx {
    uint32_t *seen; /* visits per stable key */
    uint64_t visits;
} scan_ctx;

static void scan_cb(void *p, kv_entry *e)
{
    scan_ctx *c = p;
    c->visits++;
    char k[32];
    assert_true(e->key_len < sizeof(k));
    memcpy(k, kv_entry_key(e), e->key_len);
    k[e->key_len] = '\0';
    if (k[0] == 's') {
        long i = strtol(k + 1, NULL, 10);
        assert_true(i >= 0 && i < SCAN_STABLE);
        c->seen[i]++;
    } else {
        assert_int_equal(k[0], 't');
    }
}

static void test_scan_empty(void **state)
{
    kv_keyspace ks;
    kv_keyspace_init(&ks, 1);
    scan_ctx c = {.seen = calloc(SCAN_STABLE, sizeof(uint32_t))};
    assert_int_equal(kv_keyspace_scan(&ks, 0, scan_cb, &c), 0);
    assert_int_equal(c.visits, 0);
    /* a single small table: one pass visits each key exactly once */
    char k[32];
    for (int i = 0; i < 10; i++) {
        size_t n = fmt_key(k, "s", (uint64_t)i);
        kv_keyspace_insert(&ks, k, n, "", 0);
    }
    uint64_t cur = 0;
    int steps = 0;
    do {
        cur = kv_keyspace_scan(&ks, cur, scan_cb, &c);
        steps++;
        if (steps % 4 == 0) kv_keyspace_rehash_step(&ks, 2); /* idle-time steps */
    } while (cur != 0 && steps < 100);
    assert_int_equal(cur, 0);
    assert_int_equal(steps, 16);
    for (int i = 0; i < 10; i++) assert_int_equal(c.seen[i], 1);
    free(c.seen);
    kv_keyspace_close(&ks);
}

/* A full scan while other keys come and go between steps, forcing the
 * table to grow and to shrink mid-scan (and to be mid-rehash at steps):
 * every key present the whole time is returned at least once. */
static void scan_under_churn(uint64_t seed, int per_step, uint64_t high_water)
{
    rng_state = seed;
    kv_keyspace ks;
    kv_keyspace_init(&ks, seed * 31 + 7);
    scan_ctx c = {.seen = calloc(SCAN_STABLE, sizeof(uint32_t))};
    char k[32];
    for (uint64_t i = 0; i < SCAN_STABLE; i++) {
        size_t n = fmt_key(k, "s", i);
        kv_keyspace_insert(&ks, k, n, "", 0);
    }
    /* transient keys live in a window [t_lo, t_hi) of a counter */
    uint64_t t_lo = 0, t_hi = 0;
    bool growing = true;
    uint64_t cur = 0, steps = 0, grows = 0, shrinks = 0, steps_mid_rehash = 0;
    do {
        cur = kv_keyspace_scan(&ks, cur, scan_cb, &c);
        steps++;
        if (steps % 4 == 0) kv_keyspace_rehash_step(&ks, 2); /* idle-time steps */
        for (int j = 0; j < per_step; j++) {
            bool was = ks.rehash_index >= 0;
            uint64_t before = table_size(&ks.t[0]);
            if (growing) {
                size_t n = fmt_key(k, "t", t_hi++);
                kv_keyspace_insert(&ks, k, n, "", 0);
                if (t_hi - t_lo >= high_water) growing = false;
            } else if (t_hi > t_lo) {
                /* the window stays dense: delete its oldest or newest */
                size_t n = fmt_key(k, "t", (rnd() & 1) ? t_lo++ : --t_hi);
                assert_true(kv_keyspace_delete(&ks, k, n));
                if (t_hi == t_lo) growing = true;
            }
            if (!was && ks.rehash_index >= 0) {
                if (table_size(&ks.t[1]) > before)
                    grows++;
                else
                    shrinks++;
            }
        }
        if (ks.rehash_index >= 0) steps_mid_rehash++;
        assert_true(steps < 10000000);
    } while (cur != 0);
    for (int i = 0; i < SCAN_STABLE; i++) {
        if (c.seen[i] == 0) fail_msg("stable key s%d never returned by SCAN", i);
    }
    assert_true(grows >= 1);
    assert_true(shrinks >= 1);
    assert_true(steps_mid_rehash >= 1);
    check_invariants(&ks);
    free(c.seen);
    kv_keyspace_close(&ks);
}

static void test_scan_with_resizes(void **state)
{
    scan_under_churn(1, 20, 30000);
    scan_under_churn(2, 7, 9000);
    scan_under_churn(3, 50, 60000);
    scan_under_churn(4, 5, 16000);
}

/* Scanning a stable keyspace returns each key exactly once (no resize
 * means no duplicates), also when it starts mid-rehash and stays there. */
static void test_scan_stable_mid_rehash(void **state)
{
    kv_keyspace ks;
    kv_keyspace_init(&ks, 77);
    scan_ctx c = {.seen = calloc(SCAN_STABLE, sizeof(uint32_t))};
    char k[32];
    uint64_t i = 0;
    /* stop right after a grow starts, with all of s0..sN inserted */
    for (; i < SCAN_STABLE; i++) {
        size_t n = fmt_key(k, "s", i);
        kv_keyspace_insert(&ks, k, n, "", 0);
        if (i > 1000 && ks.rehash_index >= 0) break;
    }
    assert_true(ks.rehash_index >= 0);
    uint64_t have = i + 1;
    uint64_t cur = 0;
    do {
        cur = kv_keyspace_scan(&ks, cur, scan_cb, &c);
        assert_true(ks.rehash_index >= 0); /* scan itself does not rehash */
    } while (cur != 0);
    for (uint64_t j = 0; j < have; j++) assert_int_equal(c.seen[j], 1);
    assert_int_equal(c.visits, have);
    free(c.seen);
    kv_keyspace_close(&ks);
}

/* ---- random ---- */

static void test_random(void **state)
{
    kv_keyspace ks;
    kv_keyspace_init(&ks, 2024);
    assert_null(kv_keyspace_random(&ks));
    char k[32];
    const int n = 1000;
    for (int i = 0; i < n; i++) {
        size_t kn = fmt_key(k, "s", (uint64_t)i);
        kv_keyspace_insert(&ks, k, kn, "", 0);
    }
    finish_rehash(&ks);
    uint32_t *hits = calloc(n, sizeof(uint32_t));
    for (int t = 0; t < 20000; t++) {
        kv_entry *e = kv_keyspace_random(&ks);
        assert_non_null(e);
        assert_ptr_equal(kv_keyspace_find(&ks, kv_entry_key(e), e->key_len), e);
        memcpy(k, kv_entry_key(e), e->key_len);
        k[e->key_len] = '\0';
        hits[strtol(k + 1, NULL, 10)]++;
    }
    int distinct = 0;
    for (int i = 0; i < n; i++) distinct += hits[i] != 0;
    assert_true(distinct > n * 9 / 10);

    /* mid-rehash (growing), and after deleting most keys (sparse table) */
    for (int i = n; ks.rehash_index < 0; i++) {
        size_t kn = fmt_key(k, "s", (uint64_t)i);
        kv_keyspace_insert(&ks, k, kn, "", 0);
    }
    for (int t = 0; t < 2000; t++) {
        kv_entry *e = kv_keyspace_random(&ks);
        assert_ptr_equal(kv_keyspace_find(&ks, kv_entry_key(e), e->key_len), e);
    }
    finish_rehash(&ks);
    uint64_t total = kv_keyspace_count(&ks);
    for (uint64_t i = 0; i + 3 < total; i++) {
        size_t kn = fmt_key(k, "s", i);
        assert_true(kv_keyspace_delete(&ks, k, kn));
    }
    for (int t = 0; t < 2000; t++) {
        kv_entry *e = kv_keyspace_random(&ks);
        assert_non_null(e);
        assert_ptr_equal(kv_keyspace_find(&ks, kv_entry_key(e), e->key_len), e);
    }
    free(hits);
    kv_keyspace_close(&ks);
}

/* ---- bookkeeping ---- */

static void test_mem_bytes_baseline(void **state)
{
    kv_keyspace ks;
    kv_keyspace_init(&ks, 8);
    assert_int_equal(ks.mem_bytes, 0);
    kv_keyspace_insert(&ks, "x", 1, "y", 1);
    assert_true(kv_keyspace_delete(&ks, "x", 1));
    finish_rehash(&ks);
    const size_t baseline = ks.mem_bytes;
    assert_int_equal(baseline, table_bytes(&ks)); /* only the empty table */
    assert_true(baseline > 0 && baseline <= 16 * sizeof(kv_entry *));

    char k[32];
    const int n = 20000;
    for (int i = 0; i < n; i++) {
        size_t kn = fmt_key(k, "mem", (uint64_t)i);
        /* values of varied sizes, some empty */
        size_t vn = (size_t)(i % 7) * 13;
        char v[100] = {0};
        kv_keyspace_insert(&ks, k, kn, v, vn);
    }
    check_invariants(&ks);
    assert_true(ks.mem_bytes > baseline + (size_t)n * sizeof(kv_entry));
    /* value changes are accounted */
    kv_entry *e = kv_keyspace_find(&ks, "mem5", 4);
    size_t before = ks.mem_bytes, old_cost = kv_entry_mem_bytes(e);
    char big[5000] = {0};
    kv_keyspace_set_value(&ks, e, big, sizeof(big));
    assert_int_equal(ks.mem_bytes, before - old_cost + kv_entry_mem_bytes(e));
    assert_true(kv_entry_mem_bytes(e) >= sizeof(big));
    check_invariants(&ks);

    for (int i = 0; i < n; i++) {
        size_t kn = fmt_key(k, "mem", (uint64_t)i);
        assert_true(kv_keyspace_delete(&ks, k, kn));
        if (i % 4999 == 0) check_invariants(&ks);
    }
    assert_int_equal(kv_keyspace_count(&ks), 0);
    /* nothing of the entries is left in the estimate */
    assert_int_equal(ks.mem_bytes, table_bytes(&ks));
    finish_rehash(&ks);
    kv_keyspace_insert(&ks, "x", 1, "y", 1);
    assert_true(kv_keyspace_delete(&ks, "x", 1));
    finish_rehash(&ks);
    assert_int_equal(ks.mem_bytes, baseline);
    check_invariants(&ks);
    kv_keyspace_clear(&ks);
    assert_int_equal(ks.mem_bytes, 0);
    kv_keyspace_close(&ks);
}

/* A big keyspace is cleared at once and freed on the lazyfree thread,
 * collections inside it included; the keyspace is usable right after (ASan
 * and Valgrind see that every byte is freed exactly once). */
static void test_big_clear_frees_in_the_background(void **state)
{
    (void)state;
    kv_keyspace ks;
    kv_keyspace_init(&ks, 11);
    char k[64];
    for (int i = 0; i < 20000; i++) {
        size_t kn = fmt_key(k, "big", (uint64_t)i);
        kv_keyspace_insert(&ks, k, kn, "value", 5);
    }
    kv_entry *h = kv_keyspace_insert(&ks, "h", 1, NULL, 0);
    kv_hash_init(&ks, h);
    for (int i = 0; i < 600; i++) { /* a table, too small to be lazily freed alone */
        size_t kn = fmt_key(k, "f", (uint64_t)i);
        kv_hash_set(&ks, h, (kv_slice){k, kn}, (kv_slice){"v", 1});
    }
    assert_true(ks.mem_bytes >= KV_LAZYFREE_MIN_BYTES);
    uint64_t done = kv_lazyfree_done();
    kv_keyspace_clear(&ks);
    assert_int_equal(kv_keyspace_count(&ks), 0);
    assert_int_equal(ks.mem_bytes, 0);
    assert_null(kv_keyspace_find(&ks, "h", 1));
    kv_keyspace_insert(&ks, "x", 1, "y", 1);
    check_invariants(&ks);
    kv_lazyfree_drain();
    assert_true(kv_lazyfree_done() > done);
    kv_keyspace_close(&ks);
}

static void test_volatile_count(void **state)
{
    kv_keyspace ks;
    kv_keyspace_init(&ks, 9);
    kv_entry *a = insert_str(&ks, "a", "1");
    kv_entry *b = insert_str(&ks, "b", "2");
    insert_str(&ks, "c", "3");
    assert_int_equal(ks.volatile_count, 0);
    kv_keyspace_set_expire(&ks, a, 1000);
    assert_int_equal(ks.volatile_count, 1);
    kv_keyspace_set_expire(&ks, a, 2000); /* change, still one */
    assert_int_equal(ks.volatile_count, 1);
    assert_int_equal(a->expire_ms, 2000);
    kv_keyspace_set_expire(&ks, b, -5); /* negative is still "has expiry" */
    assert_int_equal(ks.volatile_count, 2);
    kv_keyspace_set_expire(&ks, a, 0);
    assert_int_equal(ks.volatile_count, 1);
    kv_keyspace_set_expire(&ks, a, 0);
    assert_int_equal(ks.volatile_count, 1);
    check_invariants(&ks);
    assert_true(kv_keyspace_delete(&ks, "b", 1)); /* deleting a volatile key */
    assert_int_equal(ks.volatile_count, 0);
    kv_keyspace_set_expire(&ks, a, 7);
    assert_int_equal(ks.volatile_count, 1);
    assert_true(kv_entry_expired(a, 7));
    assert_true(kv_entry_expired(a, 8));
    assert_false(kv_entry_expired(a, 6));
    kv_keyspace_set_expire(&ks, a, 0);
    assert_false(kv_entry_expired(a, INT64_MAX));
    kv_keyspace_set_expire(&ks, a, 7);
    kv_keyspace_clear(&ks);
    assert_int_equal(ks.volatile_count, 0);
    check_invariants(&ks);
    kv_keyspace_close(&ks);
}

static void test_take_value(void **state)
{
    kv_keyspace ks;
    kv_keyspace_init(&ks, 10);
    kv_entry *e = insert_str(&ks, "k", "hello world");
    size_t len = 0;
    char *v = kv_keyspace_take_value(&ks, e, &len);
    assert_int_equal(len, 11);
    assert_memory_equal(v, "hello world", 11);
    assert_null(e->value);
    assert_int_equal(e->value_len, 0);
    check_invariants(&ks);
    /* the caller owns it: grow it and give it back */
    v = realloc(v, 16);
    memcpy(v + 11, "!!!!!", 5);
    kv_keyspace_set_value_owned(&ks, e, v, 16);
    assert_ptr_equal(e->value, v);
    assert_int_equal(e->value_len, 16);
    check_invariants(&ks);
    /* taking an empty value yields NULL/0 */
    kv_entry *f = insert_str(&ks, "empty", "");
    char *w = kv_keyspace_take_value(&ks, f, &len);
    assert_null(w);
    assert_int_equal(len, 0);
    /* an owned zero-length buffer is released, not kept */
    kv_keyspace_set_value_owned(&ks, f, malloc(4), 0);
    assert_null(f->value);
    assert_int_equal(f->value_len, 0);
    check_invariants(&ks);
    kv_keyspace_close(&ks);
}

/* An overwrite whose value needs the same allocation size reuses the
 * buffer; any other size gets a new one; content and the memory estimate
 * are right either way. */
static void test_overwrite_reuses_same_size_value(void **state)
{
    kv_keyspace ks;
    kv_keyspace_init(&ks, 11);
    char v[300];
    memset(v, 'a', sizeof(v));
    kv_entry *e = kv_keyspace_insert(&ks, "k", 1, v, 100);
    const char *buf = e->value;
    size_t mem = ks.mem_bytes;
    memset(v, 'b', sizeof(v));
    kv_keyspace_set_value(&ks, e, v, 100); /* same length */
    assert_ptr_equal(e->value, buf);
    assert_int_equal(e->value_len, 100);
    assert_memory_equal(e->value, v, 100);
    assert_int_equal(ks.mem_bytes, mem);
    memset(v, 'c', sizeof(v));
    kv_keyspace_set_value(&ks, e, v, 97); /* shorter, same 16-byte class */
    assert_ptr_equal(e->value, buf);
    assert_int_equal(e->value_len, 97);
    assert_memory_equal(e->value, v, 97);
    assert_int_equal(ks.mem_bytes, mem);
    check_invariants(&ks);
    kv_keyspace_set_value(&ks, e, v, 300); /* larger: a new buffer */
    assert_int_equal(e->value_len, 300);
    assert_memory_equal(e->value, v, 300);
    kv_keyspace_set_value(&ks, e, v, 1); /* much smaller: not kept oversized */
    assert_int_equal(e->value_len, 1);
    check_invariants(&ks);                      /* the estimate follows the new, smaller buffer */
    kv_keyspace_set_value(&ks, e, e->value, 1); /* its own bytes */
    assert_int_equal(e->value[0], 'c');
    check_invariants(&ks);
    kv_keyspace_set_value(&ks, e, NULL, 0);
    assert_null(e->value);
    check_invariants(&ks);
    kv_keyspace_close(&ks);
}

/* Entries never move: pointers stay valid across resizes, which kv/store
 * relies on while it holds one entry and inserts or deletes others. */
static void test_entries_stable_across_resize(void **state)
{
    kv_keyspace ks;
    kv_keyspace_init(&ks, 11);
    kv_entry *keep = insert_str(&ks, "keep", "v");
    char k[32];
    for (int i = 0; i < 5000; i++) {
        size_t kn = fmt_key(k, "x", (uint64_t)i);
        kv_keyspace_insert(&ks, k, kn, "", 0);
    }
    for (int i = 0; i < 5000; i++) {
        size_t kn = fmt_key(k, "x", (uint64_t)i);
        kv_keyspace_delete(&ks, k, kn);
    }
    assert_ptr_equal(kv_keyspace_find(&ks, "keep", 4), keep);
    assert_memory_equal(keep->value, "v", 1);
    /* deleting through a key pointer that lives inside the entry */
    assert_true(kv_keyspace_delete(&ks, kv_entry_key(keep), keep->key_len));
    assert_int_equal(kv_keyspace_count(&ks), 0);
    check_invariants(&ks);
    kv_keyspace_close(&ks);
}

/* kv_keyspace_empty: every entry gone, a small table kept (and reused),
 * a big one released as kv_keyspace_clear releases it. */
static void test_empty_keeps_a_small_table(void **state)
{
    (void)state;
    kv_keyspace ks;
    kv_keyspace_init(&ks, 5);
    char k[32];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 10; i++) {
            snprintf(k, sizeof(k), "k%d", i);
            kv_entry *e = kv_keyspace_insert(&ks, k, strlen(k), "v", 1);
            kv_keyspace_set_expire(&ks, e, 1000 + i);
        }
        assert_int_equal(kv_keyspace_count(&ks), 10);
        kv_entry **buckets = ks.t[0].buckets;
        kv_keyspace_empty(&ks);
        assert_int_equal(kv_keyspace_count(&ks), 0);
        assert_ptr_equal(ks.t[0].buckets, buckets); /* kept */
        assert_int_equal(ks.mem_bytes, (ks.t[0].mask + 1) * sizeof(kv_entry *));
        assert_int_equal(ks.volatile_count, 0);
        assert_null(kv_keyspace_find(&ks, "k3", 2));
        assert_null(kv_keyspace_first(&ks));
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof(k), "k%d", i);
        kv_keyspace_insert(&ks, k, strlen(k), "v", 1);
    }
    while (ks.rehash_index >= 0) kv_keyspace_rehash_step(&ks, 100);
    kv_keyspace_empty(&ks); /* past 64 buckets: released */
    assert_null(ks.t[0].buckets);
    assert_int_equal(ks.mem_bytes, 0);
    assert_non_null(kv_keyspace_insert(&ks, "again", 5, "v", 1));
    assert_int_equal(kv_keyspace_count(&ks), 1);
    kv_keyspace_close(&ks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_find_delete),
        cmocka_unit_test(test_empty_keeps_a_small_table),
        cmocka_unit_test(test_binary_keys),
        cmocka_unit_test(test_many_keys_rehash_and_shrink),
        cmocka_unit_test(test_rehash_step),
        cmocka_unit_test(test_ordered_iteration_and_seek),
        cmocka_unit_test(test_append_sorted),
        cmocka_unit_test(test_scan_empty),
        cmocka_unit_test(test_scan_with_resizes),
        cmocka_unit_test(test_scan_stable_mid_rehash),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_mem_bytes_baseline),
        cmocka_unit_test(test_volatile_count),
        cmocka_unit_test(test_take_value),
        cmocka_unit_test(test_entries_stable_across_resize),
        cmocka_unit_test(test_overwrite_reuses_same_size_value),
        cmocka_unit_test(test_big_clear_frees_in_the_background),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
