#include "kv/set.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/strconv.h"

/* ---- the intset ---------------------------------------------------------------- */

#define INTSET_HEADER 5 /* u8 width | u32 count */

static uint32_t intset__count(const char *p)
{
    const unsigned char *u = (const unsigned char *)p + 1;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

static void intset__set_count(char *p, uint32_t n)
{
    for (int i = 0; i < 4; i++) p[1 + i] = (char)(n >> (8 * i));
}

static int64_t intset__get(const char *p, uint32_t i)
{
    unsigned w = (unsigned char)p[0];
    const unsigned char *u = (const unsigned char *)p + INTSET_HEADER + (size_t)i * w;
    uint64_t v = 0;
    for (unsigned k = 0; k < w; k++) v |= (uint64_t)u[k] << (8 * k);
    if (w < 8 && (v >> (8 * w - 1)) & 1) v |= ~0ull << (8 * w); /* sign-extend */
    return (int64_t)v;
}

static void intset__put(char *p, uint32_t i, int64_t v)
{
    unsigned w = (unsigned char)p[0];
    unsigned char *u = (unsigned char *)p + INTSET_HEADER + (size_t)i * w;
    for (unsigned k = 0; k < w; k++) u[k] = (unsigned char)((uint64_t)v >> (8 * k));
}

static unsigned intset__width_for(int64_t v)
{
    if (v >= INT16_MIN && v <= INT16_MAX) return 2;
    if (v >= INT32_MIN && v <= INT32_MAX) return 4;
    return 8;
}

/* Binary search: true and *at when found, else *at = where it goes. */
static bool intset__find(const char *p, int64_t v, uint32_t *at)
{
    uint32_t lo = 0, hi = intset__count(p);
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int64_t m = intset__get(p, mid);
        if (m == v) {
            *at = mid;
            return true;
        }
        if (m < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    *at = lo;
    return false;
}

/* A member as Redis reads an integer for an intset. */
static bool set__as_int(kv_slice m, int64_t *v)
{
    return m.len > 0 && m.len <= 20 && strconv_parse_i64(m.ptr, m.len, v);
}

static bool is_intset(const kv_entry *e)
{
    return e->encoding == KV_ENC_INTSET;
}

void kv_set_init(kv_keyspace *ks, kv_entry *e)
{
    char *b = xcalloc(1, INTSET_HEADER);
    b[0] = 2;
    kv_keyspace_set_value_owned(ks, e, b, INTSET_HEADER);
    e->type = KV_TYPE_SET;
    e->encoding = KV_ENC_INTSET;
}

uint64_t kv_set_len(const kv_entry *e)
{
    return is_intset(e) ? intset__count(e->value) : kv_hash_len(e);
}

bool kv_set_contains(const kv_entry *e, kv_slice member)
{
    if (!is_intset(e)) return kv_hash_get(e, member, &(kv_slice){0});
    int64_t v;
    uint32_t at;
    return set__as_int(member, &v) && intset__find(e->value, v, &at);
}

/* intset -> listpack or hashtable (the hash module decides by size),
 * members in ascending order. */
static void set__convert(kv_keyspace *ks, kv_entry *e)
{
    uint32_t n = intset__count(e->value);
    char *old = xmalloc(e->value_len);
    memcpy(old, e->value, e->value_len);
    kv_keyspace_reset_value(ks, e);
    kv_hash_init(ks, e);
    e->type = KV_TYPE_SET;
    for (uint32_t i = 0; i < n; i++) {
        char num[24];
        int len = snprintf(num, sizeof(num), "%lld", (long long)intset__get(old, i));
        kv_hash_set(ks, e, (kv_slice){num, (size_t)len}, (kv_slice){"", 0});
    }
    free(old);
}

bool kv_set_add(kv_keyspace *ks, kv_entry *e, kv_slice member)
{
    int64_t v;
    if (is_intset(e)) {
        uint32_t n = intset__count(e->value), at;
        if (!set__as_int(member, &v) || n >= ks->limits.v[KV_LIMIT_SET_INTSET_ENTRIES]) {
            if (set__as_int(member, &v) && intset__find(e->value, v, &at)) return false;
            set__convert(ks, e);
        } else {
            if (intset__find(e->value, v, &at)) return false;
            unsigned w = (unsigned char)e->value[0], nw = intset__width_for(v);
            if (nw < w) nw = w;
            size_t size = INTSET_HEADER + (size_t)(n + 1) * nw;
            char *b = xmalloc(size);
            b[0] = (char)nw;
            intset__set_count(b, n + 1);
            /* copy around the gap, widening if need be */
            for (uint32_t i = 0, j = 0; i < n; i++, j++) {
                if (j == at) j++;
                intset__put(b, j, intset__get(e->value, i));
            }
            intset__put(b, at, v);
            kv_keyspace_set_value_owned(ks, e, b, size);
            e->type = KV_TYPE_SET;
            e->encoding = KV_ENC_INTSET;
            return true;
        }
    }
    if (kv_hash_get(e, member, &(kv_slice){0})) return false;
    kv_hash_set(ks, e, member, (kv_slice){"", 0});
    return true;
}

bool kv_set_remove(kv_keyspace *ks, kv_entry *e, kv_slice member)
{
    if (!is_intset(e)) return kv_hash_del(ks, e, member);
    int64_t v;
    uint32_t at;
    if (!set__as_int(member, &v) || !intset__find(e->value, v, &at)) return false;
    uint32_t n = intset__count(e->value);
    unsigned w = (unsigned char)e->value[0];
    size_t size = INTSET_HEADER + (size_t)(n - 1) * w;
    char *b = xmalloc(size);
    memcpy(b, e->value, INTSET_HEADER + (size_t)at * w);
    memcpy(b + INTSET_HEADER + (size_t)at * w, e->value + INTSET_HEADER + (size_t)(at + 1) * w,
           (size_t)(n - at - 1) * w);
    intset__set_count(b, n - 1);
    kv_keyspace_set_value_owned(ks, e, b, size);
    e->type = KV_TYPE_SET;
    e->encoding = KV_ENC_INTSET;
    return true;
}

/* ---- walking ---------------------------------------------------------------------- */

void kv_set_iter_init(kv_set_iter *it, const kv_entry *e)
{
    it->e = e;
    it->i = 0;
    if (!is_intset(e)) kv_hash_iter_init(&it->hash, e);
}

bool kv_set_iter_next(kv_set_iter *it, kv_slice *member)
{
    if (!is_intset(it->e)) {
        kv_slice v;
        return kv_hash_iter_next(&it->hash, member, &v);
    }
    if (it->i >= intset__count(it->e->value)) return false;
    int len = snprintf(it->num, sizeof(it->num), "%lld",
                       (long long)intset__get(it->e->value, (uint32_t)it->i++));
    *member = (kv_slice){it->num, (size_t)len};
    return true;
}

typedef struct set_scan_ctx {
    kv_set_scan_fn fn;
    void *ctx;
} set_scan_ctx;

static void set__scan_pair(void *ctx, kv_slice field, kv_slice value)
{
    set_scan_ctx *c = ctx;
    (void)value;
    c->fn(c->ctx, field);
}

uint64_t kv_set_scan(const kv_entry *e, uint64_t cursor, kv_set_scan_fn fn, void *ctx)
{
    if (!is_intset(e)) {
        set_scan_ctx c = {fn, ctx};
        return kv_hash_scan(e, cursor, set__scan_pair, &c);
    }
    kv_set_iter it;
    kv_slice m;
    kv_set_iter_init(&it, e);
    while (kv_set_iter_next(&it, &m)) fn(ctx, m);
    return 0;
}

/* ---- snapshots ---------------------------------------------------------------------- */

size_t kv_set_serialized_len(const kv_entry *e)
{
    return is_intset(e) ? e->value_len : kv_hash_serialized_len(e);
}

bool kv_set_load(kv_keyspace *ks, kv_entry *e, int encoding, const char *data, size_t len)
{
    if (encoding == KV_ENC_LISTPACK || encoding == KV_ENC_HASHTABLE) {
        if (!kv_hash_load(ks, e, encoding, data, len)) return false;
        kv_hash_iter it;
        kv_slice f, v;
        kv_hash_iter_init(&it, e);
        while (kv_hash_iter_next(&it, &f, &v))
            if (v.len) return false; /* a set's members carry no value (e is dropped) */
        e->type = KV_TYPE_SET;
        return true;
    }
    if (encoding != KV_ENC_INTSET || len < INTSET_HEADER) return false;
    unsigned w = (unsigned char)data[0];
    uint32_t n = intset__count(data);
    if ((w != 2 && w != 4 && w != 8) || n == 0 || len != INTSET_HEADER + (size_t)n * w)
        return false;
    for (uint32_t i = 1; i < n; i++) /* strictly ascending: sorted, no duplicates */
        if (intset__get(data, i - 1) >= intset__get(data, i)) return false;
    kv_keyspace_set_value(ks, e, data, len);
    e->type = KV_TYPE_SET;
    e->encoding = KV_ENC_INTSET;
    return true;
}

/* ---- picking and combining ---------------------------------------------------------- */

typedef struct set_pick {
    kv_set_pick_fn fn;
    void *ctx;
} set_pick;

static void set__picked(void *ctx, kv_slice member, kv_slice value)
{
    (void)value;
    set_pick *p = ctx;
    p->fn(p->ctx, member);
}

void kv_set_pick(const kv_entry *e, const uint64_t *idx, size_t n, kv_set_pick_fn fn, void *ctx)
{
    if (!is_intset(e)) {
        set_pick p = {fn, ctx};
        kv_hash_pick(e, idx, n, set__picked, &p);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        char num[24];
        int len =
            snprintf(num, sizeof(num), "%lld", (long long)intset__get(e->value, (uint32_t)idx[k]));
        fn(ctx, (kv_slice){num, (size_t)len});
    }
}

/* Whether m is in every set but skip (a missing set holds nothing). */
static bool set__in_all(const kv_entry *const *sets, size_t n, size_t skip, kv_slice m)
{
    for (size_t i = 0; i < n; i++)
        if (i != skip && (!sets[i] || !kv_set_contains(sets[i], m))) return false;
    return true;
}

static size_t set__smallest(const kv_entry *const *sets, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (!sets[i] || (sets[best] && kv_set_len(sets[i]) < kv_set_len(sets[best]))) best = i;
    return best;
}

void kv_set_combine(kv_keyspace *ks, kv_entry *out, const kv_entry *const *sets, size_t n, int op)
{
    kv_set_iter it;
    kv_slice m;
    if (op == KV_SET_UNION) {
        for (size_t i = 0; i < n; i++) {
            if (!sets[i]) continue;
            kv_set_iter_init(&it, sets[i]);
            while (kv_set_iter_next(&it, &m)) kv_set_add(ks, out, m);
        }
        return;
    }
    if (op == KV_SET_INTER) {
        size_t s = set__smallest(sets, n);
        if (!sets[s]) return;
        kv_set_iter_init(&it, sets[s]);
        while (kv_set_iter_next(&it, &m))
            if (set__in_all(sets, n, s, m)) kv_set_add(ks, out, m);
        return;
    }
    if (!sets[0]) return; /* KV_SET_DIFF */
    kv_set_iter_init(&it, sets[0]);
    while (kv_set_iter_next(&it, &m)) {
        bool elsewhere = false;
        for (size_t i = 1; i < n && !elsewhere; i++)
            elsewhere = sets[i] && kv_set_contains(sets[i], m);
        if (!elsewhere) kv_set_add(ks, out, m);
    }
}

uint64_t kv_set_intercard(const kv_entry *const *sets, size_t n, uint64_t limit)
{
    size_t s = set__smallest(sets, n);
    if (!sets[s]) return 0;
    uint64_t count = 0;
    kv_set_iter it;
    kv_slice m;
    kv_set_iter_init(&it, sets[s]);
    while ((!limit || count < limit) && kv_set_iter_next(&it, &m))
        if (set__in_all(sets, n, s, m)) count++;
    return count;
}

/* n distinct indexes below len, ascending (Floyd's sampling, with an
 * open-addressing table for "drawn already"), from the caller's random
 * stream; n <= len. */
static int set__cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void kv_set_sample(uint64_t len, uint64_t n, uint64_t (*rnd)(void *), void *rctx, uint64_t *out)
{
    uint64_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    uint64_t *seen = xmalloc(cap * sizeof(*seen)); /* index + 1, 0 = empty */
    memset(seen, 0, cap * sizeof(*seen));
    uint64_t k = 0;
    for (uint64_t j = len - n; j < len; j++) {
        uint64_t t = rnd(rctx) % (j + 1), pick = t;
        for (int pass = 0; pass < 2; pass++) {
            uint64_t h = (pick * 0x9e3779b97f4a7c15ULL) & (cap - 1);
            while (seen[h] && seen[h] != pick + 1) h = (h + 1) & (cap - 1);
            if (!seen[h]) {
                seen[h] = pick + 1;
                break;
            }
            pick = j; /* t was drawn before: j never was */
        }
        out[k++] = pick;
    }
    free(seen);
    qsort(out, k, sizeof(*out), set__cmp_u64);
}
