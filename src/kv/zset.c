#include "kv/zset.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kv/packed.h"
#include "kv/set.h"
#include "util/alloc.h"
#include "util/hash.h"
#include "util/strconv.h"

/* ---- ordering ----------------------------------------------------------------- */

static int zset__cmp(double sa, const char *ma, size_t la, double sb, const char *mb, size_t lb)
{
    if (sa < sb) return -1;
    if (sa > sb) return 1;
    size_t n = la < lb ? la : lb;
    int c = n ? memcmp(ma, mb, n) : 0;
    if (c) return c;
    return la < lb ? -1 : la > lb;
}

static bool zset__slice_eq(const char *a, size_t la, kv_slice b)
{
    return la == b.len && (la == 0 || memcmp(a, b.ptr, la) == 0);
}

/* ---- the packed layout ---------------------------------------------------------- */

static uint32_t lp__get32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

static void lp__put32(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (char)(v >> (8 * i));
}

/* A score as the little-endian bits of its IEEE double. */
static double lp__score(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++) bits |= (uint64_t)u[i] << (8 * i);
    double d;
    memcpy(&d, &bits, 8);
    return d;
}

static void lp__put_score(char *p, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, 8);
    for (int i = 0; i < 8; i++) p[i] = (char)(bits >> (8 * i));
}

/* A score in memory: a whole number of at most 53 bits (exact in a
 * double; most scores are: counters, timestamps, ranks) as ZSCORE_INT and
 * its zigzag LEB128, 2-9 bytes; any other as ZSCORE_DOUBLE and its 8 bytes.
 * Redis' listpack keeps integer scores as integers too. */
#define ZSCORE_DOUBLE 0
#define ZSCORE_INT 1
#define ZSCORE_INT_MAX 9007199254740992.0 /* 2^53 */

static bool lp__int_score(double d, int64_t *v)
{
    if (!(d >= -ZSCORE_INT_MAX && d <= ZSCORE_INT_MAX) || d != (double)(int64_t)d) return false;
    *v = (int64_t)d;
    return true;
}

static uint64_t lp__zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static size_t lp__score_size(double d)
{
    int64_t v;
    return lp__int_score(d, &v) ? 1 + kv_packed_uint_size(lp__zigzag(v)) : 9;
}

/* Write d at p; returns its size. */
static size_t lp__put_packed_score(char *p, double d)
{
    int64_t v;
    if (!lp__int_score(d, &v)) {
        p[0] = ZSCORE_DOUBLE;
        lp__put_score(p + 1, d);
        return 9;
    }
    p[0] = ZSCORE_INT;
    return 1 + kv_packed_put_uint(p + 1, lp__zigzag(v));
}

static size_t lp__get_packed_score(const char *p, double *d)
{
    if (p[0] == ZSCORE_DOUBLE) {
        *d = lp__score(p + 1);
        return 9;
    }
    uint64_t z;
    size_t n = kv_packed_get_uint(p + 1, &z);
    *d = (double)(int64_t)((z >> 1) ^ (~(z & 1) + 1));
    return 1 + n;
}

/* One packed entry at pos: its score, member and the next offset. In
 * memory an entry is its packed score, then its member as a kv/packed.h
 * element (LEB128 length, bytes). */
static size_t lp__entry(const char *data, size_t pos, double *score, kv_slice *m)
{
    pos += lp__get_packed_score(data + pos, score);
    return pos + kv_packed_get(data + pos, m);
}

/* A walk over a packed buffer: each step yields the entry at `at` and its
 * score and member. */
typedef struct lp_walk {
    const char *data;
    uint32_t left;
    size_t at, next;
} lp_walk;

static void lp__begin(lp_walk *w, const char *data)
{
    w->data = data;
    w->left = lp__get32(data);
    w->next = 4;
}

static bool lp__next(lp_walk *w, double *score, kv_slice *m)
{
    if (!w->left) return false;
    w->left--;
    w->at = w->next;
    w->next = lp__entry(w->data, w->at, score, m);
    return true;
}

/* ---- the skiplist --------------------------------------------------------------- */

#define ZSL_MAXLEVEL 32

typedef struct zsl_node {
    double score;
    struct zsl_node *backward;
    struct zsl_node *hnext; /* member hash chain */
    uint32_t len;
    uint8_t level;
    struct {
        struct zsl_node *fwd;
        uint64_t span;
    } lv[];
    /* then the member's bytes */
} zsl_node;

typedef struct zsl {
    zsl_node *header, *tail;
    uint64_t length;
    int level;
    zsl_node **buckets; /* member -> node */
    uint64_t mask;
    uint64_t seed, rnd;
    size_t mem;
} zsl;

static char *node__member(const zsl_node *n)
{
    return (char *)&n->lv[n->level];
}

static size_t node__size(int level, size_t len)
{
    return sizeof(zsl_node) + (size_t)level * sizeof(((zsl_node *)0)->lv[0]) + len;
}

static zsl_node *node__new(int level, double score, kv_slice m)
{
    zsl_node *n = xcalloc(1, node__size(level, m.len));
    n->score = score;
    n->level = (uint8_t)level;
    n->len = (uint32_t)m.len;
    if (m.len) memcpy(node__member(n), m.ptr, m.len);
    return n;
}

static zsl *zsl__new(uint64_t seed)
{
    zsl *z = xcalloc(1, sizeof(*z));
    z->header = node__new(ZSL_MAXLEVEL, 0, (kv_slice){"", 0});
    z->level = 1;
    z->seed = seed;
    z->rnd = seed | 1;
    z->mask = 15;
    z->buckets = xcalloc(z->mask + 1, sizeof(*z->buckets));
    z->mem = node__size(ZSL_MAXLEVEL, 0) + sizeof(*z) + (z->mask + 1) * sizeof(*z->buckets);
    return z;
}

/* Redis' level distribution: p = 1/4 */
static int zsl__random_level(zsl *z)
{
    int level = 1;
    for (;;) {
        z->rnd ^= z->rnd << 13;
        z->rnd ^= z->rnd >> 7;
        z->rnd ^= z->rnd << 17;
        if ((z->rnd & 3) != 0 || level >= ZSL_MAXLEVEL) return level;
        level++;
    }
}

static uint64_t zsl__bucket(const zsl *z, const char *m, size_t len)
{
    return hash_bytes(m, len, z->seed) & z->mask;
}

static zsl_node *zsl__find(const zsl *z, kv_slice m)
{
    for (zsl_node *n = z->buckets[zsl__bucket(z, m.ptr, m.len)]; n; n = n->hnext)
        if (zset__slice_eq(node__member(n), n->len, m)) return n;
    return NULL;
}

/* n is on the skiplist already (z->length counts it) */
static void zsl__hash_add(zsl *z, zsl_node *n)
{
    if (z->length > z->mask + 1) { /* grow (load factor 1): rehashing places n too */
        uint64_t size = (z->mask + 1) * 2;
        zsl_node **b = xcalloc(size, sizeof(*b));
        z->mem += (size - (z->mask + 1)) * sizeof(*b);
        z->mask = size - 1;
        for (zsl_node *x = z->header->lv[0].fwd; x; x = x->lv[0].fwd) {
            uint64_t i = zsl__bucket(z, node__member(x), x->len);
            x->hnext = b[i];
            b[i] = x;
        }
        free(z->buckets);
        z->buckets = b;
        return;
    }
    uint64_t i = zsl__bucket(z, node__member(n), n->len);
    n->hnext = z->buckets[i];
    z->buckets[i] = n;
}

static void zsl__hash_remove(zsl *z, const zsl_node *n)
{
    zsl_node **p = &z->buckets[zsl__bucket(z, node__member(n), n->len)];
    while (*p != n) p = &(*p)->hnext;
    *p = n->hnext;
}

static int zsl__before(const zsl_node *x, double score, kv_slice m)
{
    return zset__cmp(x->score, node__member(x), x->len, score, m.ptr, m.len) < 0;
}

static void zsl__insert(zsl *z, double score, kv_slice m)
{
    zsl_node *update[ZSL_MAXLEVEL], *x = z->header;
    uint64_t rank[ZSL_MAXLEVEL];
    for (int i = z->level - 1; i >= 0; i--) {
        rank[i] = i == z->level - 1 ? 0 : rank[i + 1];
        while (x->lv[i].fwd && zsl__before(x->lv[i].fwd, score, m)) {
            rank[i] += x->lv[i].span;
            x = x->lv[i].fwd;
        }
        update[i] = x;
    }
    int level = zsl__random_level(z);
    if (level > z->level) {
        for (int i = z->level; i < level; i++) {
            rank[i] = 0;
            update[i] = z->header;
            update[i]->lv[i].span = z->length;
        }
        z->level = level;
    }
    x = node__new(level, score, m);
    for (int i = 0; i < level; i++) {
        x->lv[i].fwd = update[i]->lv[i].fwd;
        update[i]->lv[i].fwd = x;
        x->lv[i].span = update[i]->lv[i].span - (rank[0] - rank[i]);
        update[i]->lv[i].span = (rank[0] - rank[i]) + 1;
    }
    for (int i = level; i < z->level; i++) update[i]->lv[i].span++;
    x->backward = update[0] == z->header ? NULL : update[0];
    if (x->lv[0].fwd)
        x->lv[0].fwd->backward = x;
    else
        z->tail = x;
    z->length++;
    z->mem += node__size(level, m.len);
    zsl__hash_add(z, x);
}

/* Unlink the node of (score, member), which is there, and free it. */
static void zsl__delete(zsl *z, double score, kv_slice m)
{
    zsl_node *update[ZSL_MAXLEVEL], *x = z->header;
    for (int i = z->level - 1; i >= 0; i--) {
        while (x->lv[i].fwd && zsl__before(x->lv[i].fwd, score, m)) x = x->lv[i].fwd;
        update[i] = x;
    }
    x = x->lv[0].fwd;
    for (int i = 0; i < z->level; i++) {
        if (update[i]->lv[i].fwd == x) {
            update[i]->lv[i].span += x->lv[i].span - 1;
            update[i]->lv[i].fwd = x->lv[i].fwd;
        } else {
            update[i]->lv[i].span--;
        }
    }
    if (x->lv[0].fwd)
        x->lv[0].fwd->backward = x->backward;
    else
        z->tail = x->backward;
    while (z->level > 1 && !z->header->lv[z->level - 1].fwd) z->level--;
    z->length--;
    zsl__hash_remove(z, x);
    z->mem -= node__size(x->level, x->len);
    free(x);
}

/* The node at 1-based rank. */
static zsl_node *zsl__at(const zsl *z, uint64_t rank)
{
    const zsl_node *x = z->header;
    uint64_t traversed = 0;
    for (int i = z->level - 1; i >= 0; i--) {
        while (x->lv[i].fwd && traversed + x->lv[i].span <= rank) {
            traversed += x->lv[i].span;
            x = x->lv[i].fwd;
        }
        if (traversed == rank) return (zsl_node *)x;
    }
    return NULL;
}

size_t kv_zset_mem(const void *zs)
{
    return ((const zsl *)zs)->mem;
}

void kv_zset_free(void *zs)
{
    zsl *z = zs;
    zsl_node *x = z->header;
    while (x) {
        zsl_node *next = x->lv[0].fwd;
        free(x);
        x = next;
    }
    free(z->buckets);
    free(z);
}

/* ---- the sorted set -------------------------------------------------------------- */

static bool is_skiplist(const kv_entry *e)
{
    return e->encoding == KV_ENC_SKIPLIST;
}

static zsl *zs(const kv_entry *e)
{
    return (zsl *)(void *)e->value;
}

void kv_zset_init(kv_keyspace *ks, kv_entry *e)
{
    char *b = xcalloc(1, 4);
    kv_keyspace_set_value_owned(ks, e, b, 4);
    e->type = KV_TYPE_ZSET;
    e->encoding = KV_ENC_LISTPACK;
}

uint64_t kv_zset_len(const kv_entry *e)
{
    return is_skiplist(e) ? zs(e)->length : lp__get32(e->value);
}

/* The packed entry of member: its offset, or 0 when absent. */
static size_t lp__find(const kv_entry *e, kv_slice member, double *score)
{
    lp_walk w;
    kv_slice m;
    lp__begin(&w, e->value);
    while (lp__next(&w, score, &m))
        if (zset__slice_eq(m.ptr, m.len, member)) return w.at;
    return 0;
}

bool kv_zset_score(const kv_entry *e, kv_slice member, double *score)
{
    if (is_skiplist(e)) {
        zsl_node *n = zsl__find(zs(e), member);
        if (n) *score = n->score;
        return n != NULL;
    }
    return lp__find(e, member, score) != 0;
}

/* listpack -> skiplist, keeping every member. */
static void zset__convert(kv_keyspace *ks, kv_entry *e)
{
    zsl *z = zsl__new(ks->seed);
    lp_walk w;
    kv_slice m;
    double s;
    lp__begin(&w, e->value);
    while (lp__next(&w, &s, &m)) zsl__insert(z, s, m);
    ks->mem_bytes -= kv_entry_mem_bytes(e);
    free(e->value);
    e->value = (char *)(void *)z;
    e->value_len = 0;
    e->encoding = KV_ENC_SKIPLIST;
    ks->mem_bytes += kv_entry_mem_bytes(e);
}

/* Remove the packed entry at pos (rebuilding the buffer). */
static void lp__remove_at(kv_keyspace *ks, kv_entry *e, size_t pos)
{
    double s;
    kv_slice m;
    size_t next = lp__entry(e->value, pos, &s, &m);
    size_t size = e->value_len - (next - pos);
    char *b = xmalloc(size);
    memcpy(b, e->value, pos);
    memcpy(b + pos, e->value + next, e->value_len - next);
    lp__put32(b, lp__get32(e->value) - 1);
    kv_keyspace_set_value_owned(ks, e, b, size);
    e->type = KV_TYPE_ZSET;
    e->encoding = KV_ENC_LISTPACK;
}

static void lp__insert(kv_keyspace *ks, kv_entry *e, double score, kv_slice member)
{
    uint32_t n = lp__get32(e->value);
    lp_walk w;
    kv_slice m;
    double s;
    size_t pos = e->value_len; /* before the first entry that sorts after it */
    lp__begin(&w, e->value);
    while (lp__next(&w, &s, &m)) {
        if (zset__cmp(s, m.ptr, m.len, score, member.ptr, member.len) > 0) {
            pos = w.at;
            break;
        }
    }
    size_t add = lp__score_size(score) + kv_packed_size(member.len), size = e->value_len + add;
    char *b = xmalloc(size);
    memcpy(b, e->value, pos);
    size_t at = pos + lp__put_packed_score(b + pos, score);
    kv_packed_put(b + at, member);
    memcpy(b + pos + add, e->value + pos, e->value_len - pos);
    lp__put32(b, n + 1);
    kv_keyspace_set_value_owned(ks, e, b, size);
    e->type = KV_TYPE_ZSET;
    e->encoding = KV_ENC_LISTPACK;
}

bool kv_zset_set(kv_keyspace *ks, kv_entry *e, kv_slice member, double score)
{
    double old;
    if (score == 0) score = 0; /* -0 is stored (and printed) as 0, as Redis does */
    if (!is_skiplist(e)) {
        size_t at = lp__find(e, member, &old);
        if (at) {
            if (old == score) return false;
            lp__remove_at(ks, e, at);
            lp__insert(ks, e, score, member);
            return false;
        }
        if (member.len <= ks->limits.v[KV_LIMIT_ZSET_VALUE] &&
            kv_zset_len(e) < ks->limits.v[KV_LIMIT_ZSET_ENTRIES]) {
            lp__insert(ks, e, score, member);
            return true;
        }
        zset__convert(ks, e);
    }
    zsl *z = zs(e);
    ks->mem_bytes -= kv_entry_mem_bytes(e);
    zsl_node *n = zsl__find(z, member);
    bool added = n == NULL;
    if (n && n->score != score) {
        zsl__delete(z, n->score, member);
        n = NULL;
    }
    if (!n) zsl__insert(z, score, member);
    ks->mem_bytes += kv_entry_mem_bytes(e);
    return added;
}

bool kv_zset_remove(kv_keyspace *ks, kv_entry *e, kv_slice member)
{
    double s;
    if (!is_skiplist(e)) {
        size_t at = lp__find(e, member, &s);
        if (!at) return false;
        lp__remove_at(ks, e, at);
        return true;
    }
    zsl *z = zs(e);
    zsl_node *n = zsl__find(z, member);
    if (!n) return false;
    ks->mem_bytes -= kv_entry_mem_bytes(e);
    zsl__delete(z, n->score, member);
    ks->mem_bytes += kv_entry_mem_bytes(e);
    return true;
}

uint64_t kv_zset_below(const kv_entry *e, double s, bool inclusive)
{
    if (!is_skiplist(e)) {
        lp_walk w;
        kv_slice m;
        double x;
        uint64_t below = 0;
        lp__begin(&w, e->value);
        while (lp__next(&w, &x, &m)) below += x < s || (!inclusive && x == s);
        return below;
    }
    const zsl *z = zs(e);
    const zsl_node *x = z->header;
    uint64_t rank = 0;
    for (int i = z->level - 1; i >= 0; i--)
        while (x->lv[i].fwd &&
               (x->lv[i].fwd->score < s || (!inclusive && x->lv[i].fwd->score == s))) {
            rank += x->lv[i].span;
            x = x->lv[i].fwd;
        }
    return rank;
}

bool kv_zset_rank(const kv_entry *e, kv_slice member, uint64_t *rank)
{
    if (!is_skiplist(e)) {
        lp_walk w;
        kv_slice m;
        double s;
        lp__begin(&w, e->value);
        for (uint64_t i = 0; lp__next(&w, &s, &m); i++) {
            if (zset__slice_eq(m.ptr, m.len, member)) {
                *rank = i;
                return true;
            }
        }
        return false;
    }
    const zsl *z = zs(e);
    const zsl_node *n = zsl__find(z, member);
    if (!n) return false;
    /* every node that sorts at or before n: x ends on n, at 1-based rank r */
    const zsl_node *x = z->header;
    uint64_t r = 0;
    for (int i = z->level - 1; i >= 0; i--)
        while (x->lv[i].fwd &&
               zset__cmp(x->lv[i].fwd->score, node__member(x->lv[i].fwd), x->lv[i].fwd->len,
                         n->score, member.ptr, member.len) <= 0) {
            r += x->lv[i].span;
            x = x->lv[i].fwd;
        }
    *rank = r - 1;
    return true;
}

/* ---- walking ---------------------------------------------------------------------- */

void kv_zset_iter_init(kv_zset_iter *it, const kv_entry *e, uint64_t from, bool rev)
{
    it->e = e;
    it->rev = rev;
    it->rank = from;
    it->node = NULL;
    it->pos = 4;
    it->block_first = 0;
    it->block_n = 0;
    uint64_t len = kv_zset_len(e);
    if (from >= len) {
        it->rank = len; /* nothing */
        return;
    }
    if (is_skiplist(e)) {
        /* rev: rank `from` counted from the top */
        it->node = zsl__at(zs(e), rev ? len - from : from + 1);
    } else if (!rev) {
        double s;
        kv_slice m;
        for (uint64_t i = 0; i < from; i++) it->pos = lp__entry(e->value, it->pos, &s, &m);
    }
}

bool kv_zset_iter_next(kv_zset_iter *it, kv_slice *member, double *score)
{
    const kv_entry *e = it->e;
    uint64_t len = kv_zset_len(e);
    if (it->rank >= len) return false;
    if (is_skiplist(e)) {
        const zsl_node *n = it->node;
        *score = n->score;
        *member = (kv_slice){node__member(n), n->len};
        it->node = it->rev ? (const void *)n->backward : (const void *)n->lv[0].fwd;
    } else if (!it->rev) {
        it->pos = lp__entry(e->value, it->pos, score, member);
    } else {
        /* a listpack has no way back: the block of entries before this
         * one is found by one walk from the front, so a whole listing
         * costs n * n / KV_ZSET_ITER_BLOCK steps (n is at most
         * zset-max-listpack-entries) */
        uint64_t idx = len - 1 - it->rank;
        if (it->block_n == 0 || idx < it->block_first) {
            it->block_first = idx + 1 >= KV_ZSET_ITER_BLOCK ? idx + 1 - KV_ZSET_ITER_BLOCK : 0;
            it->block_n = (uint32_t)(idx + 1 - it->block_first);
            size_t pos = 4;
            for (uint64_t i = 0; i < it->block_first; i++)
                pos = lp__entry(e->value, pos, score, member);
            for (uint32_t i = 0; i < it->block_n; i++) {
                it->block[i] = pos;
                pos = lp__entry(e->value, pos, score, member);
            }
        }
        lp__entry(e->value, it->block[idx - it->block_first], score, member);
    }
    it->rank++;
    return true;
}

uint64_t kv_zset_scan(const kv_entry *e, uint64_t cursor, kv_zset_scan_fn fn, void *ctx)
{
    if (!is_skiplist(e)) {
        kv_zset_iter it;
        kv_slice m;
        double s;
        kv_zset_iter_init(&it, e, 0, false);
        while (kv_zset_iter_next(&it, &m, &s)) fn(ctx, m, s);
        return 0;
    }
    const zsl *z = zs(e);
    for (const zsl_node *n = z->buckets[cursor & z->mask]; n; n = n->hnext)
        fn(ctx, (kv_slice){node__member(n), n->len}, n->score);
    return kv_cursor_next(cursor, z->mask);
}

/* ---- snapshots ---------------------------------------------------------------------- */

size_t kv_zset_serialized_len(const kv_entry *e)
{
    size_t n = 4;
    if (!is_skiplist(e)) {
        lp_walk w;
        kv_slice m;
        double s;
        lp__begin(&w, e->value);
        while (lp__next(&w, &s, &m)) n += 12 + m.len;
        return n;
    }
    for (const zsl_node *x = zs(e)->header->lv[0].fwd; x; x = x->lv[0].fwd) n += 12 + x->len;
    return n;
}

void kv_zset_entry_header(char out[12], double score, uint32_t len)
{
    lp__put_score(out, score);
    lp__put32(out + 8, len);
}

bool kv_zset_load(kv_keyspace *ks, kv_entry *e, int encoding, const char *data, size_t len)
{
    if ((encoding != KV_ENC_LISTPACK && encoding != KV_ENC_SKIPLIST) || len < 4) return false;
    uint32_t n = lp__get32(data);
    if (n == 0) return false;
    size_t pos = 4;
    double ps = 0;
    kv_slice pm = {0};
    for (uint32_t i = 0; i < n; i++) { /* well formed, strictly in order, no NaN */
        if (len - pos < 12) return false;
        double s = lp__score(data + pos);
        uint32_t ml = lp__get32(data + pos + 8);
        if (ml > len - pos - 12 || isnan(s)) return false;
        kv_slice m = {data + pos + 12, ml};
        if (i && zset__cmp(ps, pm.ptr, pm.len, s, m.ptr, m.len) >= 0) return false;
        ps = s;
        pm = m;
        pos += 12 + ml;
    }
    if (pos != len) return false;
    /* one member under two scores passes the order check: build the
     * skiplist (which a skiplist entry keeps) and refuse a repeat; a
     * listpack entry gets the in-memory packed layout */
    zsl *z = zsl__new(ks->seed);
    size_t packed_len = 4;
    pos = 4;
    for (uint32_t i = 0; i < n; i++) {
        double s = lp__score(data + pos);
        kv_slice m = {data + pos + 12, lp__get32(data + pos + 8)};
        pos += 12 + m.len;
        if (zsl__find(z, m)) {
            kv_zset_free(z);
            return false;
        }
        zsl__insert(z, s, m);
        packed_len += lp__score_size(s) + kv_packed_size(m.len);
    }
    if (encoding == KV_ENC_LISTPACK) {
        kv_zset_free(z);
        char *b = xmalloc(packed_len), *p = b + 4;
        lp__put32(b, n);
        pos = 4;
        for (uint32_t i = 0; i < n; i++) {
            double s = lp__score(data + pos);
            kv_slice m = {data + pos + 12, lp__get32(data + pos + 8)};
            pos += 12 + m.len;
            p += lp__put_packed_score(p, s);
            p += kv_packed_put(p, m);
        }
        kv_keyspace_set_value_owned(ks, e, b, packed_len);
        e->type = KV_TYPE_ZSET;
        e->encoding = KV_ENC_LISTPACK;
        return true;
    }
    ks->mem_bytes -= kv_entry_mem_bytes(e);
    free(e->value);
    e->value = (char *)(void *)z;
    e->value_len = 0;
    e->type = KV_TYPE_ZSET;
    e->encoding = KV_ENC_SKIPLIST;
    ks->mem_bytes += kv_entry_mem_bytes(e);
    return true;
}

/* ---- parsing, as Redis does it ----------------------------------------------------- */

bool kv_zset_parse_score(const char *s, size_t len, double *out)
{
    char tmp[128];
    if (len == 0 || len >= sizeof(tmp) || isspace((unsigned char)s[0])) return false;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (memchr(tmp, '\0', len)) return false;
    char *end;
    errno = 0;
    double v = strtod(tmp, &end);
    if ((size_t)(end - tmp) != len || isnan(v) ||
        (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL || fpclassify(v) == FP_ZERO)))
        return false;
    *out = v;
    return true;
}

bool kv_zset_parse_bound(const char *s, size_t len, double *out, bool *exclusive)
{
    char tmp[128];
    if (len >= sizeof(tmp)) return false;
    *exclusive = len > 0 && s[0] == '(';
    size_t skip = *exclusive ? 1 : 0;
    memcpy(tmp, s + skip, len - skip);
    tmp[len - skip] = '\0';
    if (memchr(tmp, '\0', len - skip)) return false;
    char *end;
    *out = strtod(tmp, &end);
    return end[0] == '\0' && !isnan(*out);
}

/* ---- lexicographic ranges (all scores equal, as Redis requires) ------------------- */

bool kv_zset_parse_lex(const char *s, size_t len, kv_lex_bound *out)
{
    if (len == 1 && (s[0] == '-' || s[0] == '+')) {
        out->kind = s[0] == '-' ? KV_LEX_MIN : KV_LEX_MAX;
        out->ptr = NULL;
        out->len = 0;
        return true;
    }
    if (len == 0 || (s[0] != '[' && s[0] != '(')) return false;
    out->kind = s[0] == '[' ? KV_LEX_INCLUSIVE : KV_LEX_EXCLUSIVE;
    out->ptr = s + 1;
    out->len = len - 1;
    return true;
}

static int lex__cmp(kv_slice m, const kv_lex_bound *b)
{
    size_t n = m.len < b->len ? m.len : b->len;
    int c = n ? memcmp(m.ptr, b->ptr, n) : 0;
    if (c) return c;
    return m.len < b->len ? -1 : m.len > b->len;
}

static bool lex__gte_min(kv_slice m, const kv_lex_bound *min)
{
    switch (min->kind) {
    case KV_LEX_MIN:
        return true;
    case KV_LEX_MAX:
        return false;
    case KV_LEX_INCLUSIVE:
        return lex__cmp(m, min) >= 0;
    default:
        return lex__cmp(m, min) > 0;
    }
}

static bool lex__lte_max(kv_slice m, const kv_lex_bound *max)
{
    switch (max->kind) {
    case KV_LEX_MIN:
        return false;
    case KV_LEX_MAX:
        return true;
    case KV_LEX_INCLUSIVE:
        return lex__cmp(m, max) <= 0;
    default:
        return lex__cmp(m, max) < 0;
    }
}

/* The rank where members at or past min begin (a skiplist is descended,
 * a listpack scanned, as Redis finds the first member in range). */
uint64_t kv_zset_lex_first(const kv_entry *e, const kv_lex_bound *min)
{
    if (!is_skiplist(e)) {
        lp_walk w;
        kv_slice m;
        double s;
        lp__begin(&w, e->value);
        for (uint64_t i = 0; lp__next(&w, &s, &m); i++)
            if (lex__gte_min(m, min)) return i;
        return lp__get32(e->value);
    }
    const zsl *z = zs(e);
    const zsl_node *x = z->header;
    uint64_t rank = 0;
    for (int i = z->level - 1; i >= 0; i--)
        while (x->lv[i].fwd &&
               !lex__gte_min((kv_slice){node__member(x->lv[i].fwd), x->lv[i].fwd->len}, min)) {
            rank += x->lv[i].span;
            x = x->lv[i].fwd;
        }
    return rank;
}

/* The rank just past the last member at or before max. */
uint64_t kv_zset_lex_end(const kv_entry *e, const kv_lex_bound *max)
{
    if (!is_skiplist(e)) {
        uint64_t end = 0;
        lp_walk w;
        kv_slice m;
        double s;
        lp__begin(&w, e->value);
        for (uint64_t i = 0; lp__next(&w, &s, &m); i++)
            if (lex__lte_max(m, max)) end = i + 1;
        return end;
    }
    const zsl *z = zs(e);
    const zsl_node *x = z->header;
    uint64_t rank = 0;
    for (int i = z->level - 1; i >= 0; i--)
        while (x->lv[i].fwd &&
               lex__lte_max((kv_slice){node__member(x->lv[i].fwd), x->lv[i].fwd->len}, max)) {
            rank += x->lv[i].span;
            x = x->lv[i].fwd;
        }
    return rank;
}

/* ---- ZUNION, ZINTER, ZDIFF ---------------------------------------------------------- */

/* A source's members and scores: a sorted set's own, a set's at 1. */
static void zset__each(const kv_entry *e, void (*fn)(void *ctx, kv_slice m, double s), void *ctx)
{
    if (e->type == KV_TYPE_ZSET) {
        kv_zset_iter it;
        kv_slice m;
        double s;
        kv_zset_iter_init(&it, e, 0, false);
        while (kv_zset_iter_next(&it, &m, &s)) fn(ctx, m, s);
        return;
    }
    kv_set_iter it;
    kv_slice m;
    kv_set_iter_init(&it, e);
    while (kv_set_iter_next(&it, &m)) fn(ctx, m, 1.0);
}

static bool zset__member_score(const kv_entry *e, kv_slice m, double *s)
{
    if (e->type == KV_TYPE_ZSET) return kv_zset_score(e, m, s);
    *s = 1.0;
    return kv_set_contains(e, m);
}

static uint64_t zset__card(const kv_entry *e)
{
    return e->type == KV_TYPE_ZSET ? kv_zset_len(e) : kv_set_len(e);
}

static double zset__aggregate(double a, double b, int agg)
{
    if (agg == KV_ZAGG_MIN) return a < b ? a : b;
    if (agg == KV_ZAGG_MAX) return a > b ? a : b;
    double sum = a + b;
    return isnan(sum) ? 0.0 : sum; /* inf + -inf: Redis says 0 */
}

typedef struct zcomb {
    kv_keyspace *ks;
    kv_entry *out;
    const kv_entry *const *srcs;
    const size_t *order; /* the sources by cardinality, as Redis combines them */
    size_t n, cur;       /* cur: the source being walked (an index into srcs) */
    const double *w;
    int agg;
} zcomb;

static double zset__weighted(double s, double w)
{
    double v = s * w;
    return isnan(v) ? 0.0 : v; /* inf * 0 */
}

static void zset__union_one(void *ctx, kv_slice m, double s)
{
    zcomb *c = ctx;
    double v = zset__weighted(s, c->w[c->cur]), acc;
    if (kv_zset_score(c->out, m, &acc)) v = zset__aggregate(acc, v, c->agg);
    kv_zset_set(c->ks, c->out, m, v);
}

static void zset__inter_one(void *ctx, kv_slice m, double s)
{
    zcomb *c = ctx;
    double v = zset__weighted(s, c->w[c->cur]);
    for (size_t k = 1; k < c->n; k++) {
        size_t i = c->order[k];
        double o;
        if (!zset__member_score(c->srcs[i], m, &o)) return;
        v = zset__aggregate(v, zset__weighted(o, c->w[i]), c->agg);
    }
    kv_zset_set(c->ks, c->out, m, v);
}

static void zset__diff_one(void *ctx, kv_slice m, double s)
{
    zcomb *c = ctx;
    for (size_t i = 1; i < c->n; i++) {
        double o;
        if (c->srcs[i] && zset__member_score(c->srcs[i], m, &o)) return;
    }
    kv_zset_set(c->ks, c->out, m, s);
}

void kv_zset_combine(kv_keyspace *ks, kv_entry *out, const kv_entry *const *srcs, size_t n,
                     const double *weights, int agg, int op)
{
    size_t *order = xmalloc(n * sizeof(*order));
    for (size_t i = 0; i < n; i++) order[i] = i;
    /* stable insertion sort by cardinality (a missing key counts 0): the
     * order Redis sums in, which decides the last bits of a SUM */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            const kv_entry *a = srcs[order[j - 1]], *b = srcs[order[j]];
            if ((a ? zset__card(a) : 0) <= (b ? zset__card(b) : 0)) break;
            size_t tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
    zcomb c = {
        .ks = ks, .out = out, .srcs = srcs, .order = order, .n = n, .w = weights, .agg = agg};
    if (op == KV_ZCOMB_UNION) {
        for (size_t k = 0; k < n; k++) {
            c.cur = order[k];
            if (srcs[c.cur]) zset__each(srcs[c.cur], zset__union_one, &c);
        }
    } else if (op == KV_ZCOMB_INTER) {
        c.cur = order[0];
        if (srcs[c.cur]) zset__each(srcs[c.cur], zset__inter_one, &c); /* a missing key: none */
    } else if (srcs[0]) {
        zset__each(srcs[0], zset__diff_one, &c);
    }
    free(order);
}

uint64_t kv_zset_intercard(const kv_entry *const *srcs, size_t n, uint64_t limit)
{
    size_t first = 0;
    for (size_t i = 0; i < n; i++) {
        if (!srcs[i]) return 0;
        if (zset__card(srcs[i]) < zset__card(srcs[first])) first = i;
    }
    uint64_t count = 0;
    kv_zset_iter it;
    kv_slice m;
    double s;
    kv_zset_iter_init(&it, srcs[first], 0, false);
    /* a set source is walked by the set iterator */
    if (srcs[first]->type != KV_TYPE_ZSET) {
        kv_set_iter si;
        kv_set_iter_init(&si, srcs[first]);
        while ((!limit || count < limit) && kv_set_iter_next(&si, &m)) {
            bool all = true;
            for (size_t i = 0; i < n && all; i++)
                all = i == first || zset__member_score(srcs[i], m, &s);
            count += all;
        }
        return count;
    }
    while ((!limit || count < limit) && kv_zset_iter_next(&it, &m, &s)) {
        bool all = true;
        for (size_t i = 0; i < n && all; i++) {
            double o;
            all = i == first || zset__member_score(srcs[i], m, &o);
        }
        count += all;
    }
    return count;
}

/* ---- range queries ---------------------------------------------------------------- */

int kv_zrange_bounds(kv_zrange *q, kv_slice first, kv_slice second)
{
    kv_slice lo = q->rev ? second : first, hi = q->rev ? first : second;
    switch (q->by) {
    case KV_ZRANGE_RANK:
        return strconv_parse_i64(first.ptr, first.len, &q->start) &&
                       strconv_parse_i64(second.ptr, second.len, &q->stop)
                   ? 0
                   : KV_ZRANGE_ERR_INT;
    case KV_ZRANGE_SCORE:
        return kv_zset_parse_bound(lo.ptr, lo.len, &q->min, &q->minx) &&
                       kv_zset_parse_bound(hi.ptr, hi.len, &q->max, &q->maxx)
                   ? 0
                   : KV_ZRANGE_ERR_FLOAT;
    case KV_ZRANGE_LEX:
        return kv_zset_parse_lex(lo.ptr, lo.len, &q->lmin) &&
                       kv_zset_parse_lex(hi.ptr, hi.len, &q->lmax)
                   ? 0
                   : KV_ZRANGE_ERR_LEX;
    }
    return KV_ZRANGE_ERR_INT;
}

void kv_zrange_select(const kv_entry *e, const kv_zrange *q, uint64_t *from, uint64_t *n)
{
    *from = *n = 0;
    int64_t len = e ? (int64_t)kv_zset_len(e) : 0;
    if (!len) return;
    if (q->by == KV_ZRANGE_RANK) { /* ranks count in the walk's direction */
        int64_t start = q->start, stop = q->stop;
        if (start < 0) start += len;
        if (stop < 0) stop += len;
        if (start < 0) start = 0;
        if (stop >= len) stop = len - 1;
        if (start <= stop && start < len) {
            *from = (uint64_t)start;
            *n = (uint64_t)(stop - start + 1);
        }
        return;
    }
    int64_t lo = q->by == KV_ZRANGE_LEX ? (int64_t)kv_zset_lex_first(e, &q->lmin)
                                        : (int64_t)kv_zset_below(e, q->min, !q->minx);
    int64_t hi = q->by == KV_ZRANGE_LEX ? (int64_t)kv_zset_lex_end(e, &q->lmax)
                                        : (int64_t)kv_zset_below(e, q->max, q->maxx);
    if (hi <= lo) return;
    int64_t start = q->rev ? len - hi : lo, count = hi - lo;
    if (q->limited) {
        if (q->offset < 0 || q->offset >= count) return;
        start += q->offset;
        count -= q->offset;
        if (q->count >= 0 && q->count < count) count = q->count;
    }
    *from = (uint64_t)start;
    *n = (uint64_t)count;
}
