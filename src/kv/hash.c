#include "kv/hash.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "kv/packed.h"
#include "util/alloc.h"
#include "util/hash.h"

/* ---- the packed layout ------------------------------------------------------ */

static uint32_t hash__get32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

static void hash__put32(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (char)(v >> (8 * i));
}

/* The packed layout in memory: u32 count | count x (field | value), each
 * a kv/packed.h element (LEB128 length, bytes). Walk it; each step yields
 * one pair and the offset of the pair. Callers have validated the buffer
 * (it is ours, built by kv_hash_set or kv_hash_load). */
typedef struct packed_walk {
    const char *data;
    size_t pos, left;
    size_t at; /* offset of the pair just returned */
} packed_walk;

static void packed__begin(packed_walk *w, const char *data)
{
    w->data = data;
    w->left = data ? hash__get32(data) : 0;
    w->pos = 4;
}

static bool packed__next(packed_walk *w, kv_slice *f, kv_slice *v)
{
    if (!w->left) return false;
    w->at = w->pos;
    w->pos += kv_packed_get(w->data + w->pos, f);
    w->pos += kv_packed_get(w->data + w->pos, v);
    w->left--;
    return true;
}

static bool slice_eq(kv_slice a, kv_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* ---- the table ------------------------------------------------------------- */

/* Besides its bucket chain, every node has a slot in one dense array, the
 * table's order: a walk (HGETALL, a snapshot) follows it, so that every
 * replica, and a replica loaded from a snapshot, holds and writes the
 * fields in the same order whatever its hash seed; and the i-th field is
 * one step away, so that SPOP, SRANDMEMBER and HRANDFIELD pick a position
 * (which every replica agrees on) in O(1). A new field takes the next
 * slot; a deleted one's slot goes to the last field (so the order is
 * insertion order until the first delete, and the same on every replica
 * always). */
typedef struct hnode {
    struct hnode *next; /* bucket chain */
    uint32_t flen, vlen;
    uint32_t slot; /* in order */
    char data[];   /* field, then value: at offset 20, no padding */
} hnode;

/* A node's allocation: its header without the struct's tail padding, so a
 * short field and value fit a smaller malloc size class. */
#define HNODE_HEADER offsetof(hnode, data)

typedef struct htable {
    hnode **buckets;
    hnode **order; /* count nodes, of cap slots */
    uint64_t mask;
    uint64_t count, cap;
    uint64_t seed;
    size_t mem;
} htable;

static size_t hnode__mem(const hnode *n)
{
    return kv_alloc_size(HNODE_HEADER + n->flen + n->vlen);
}

static uint64_t table__index(const htable *t, kv_slice f)
{
    return hash_bytes(f.ptr, f.len, t->seed) & t->mask;
}

static void table__resize(htable *t, uint64_t size)
{
    hnode **b = xcalloc(size, sizeof(hnode *));
    uint64_t old = t->mask + 1;
    t->mem -= kv_alloc_size(old * sizeof(hnode *));
    t->mem += kv_alloc_size(size * sizeof(hnode *));
    hnode **from = t->buckets;
    t->buckets = b;
    t->mask = size - 1;
    for (uint64_t i = 0; i < old; i++) {
        for (hnode *n = from[i], *next; n; n = next) {
            next = n->next;
            uint64_t idx = table__index(t, (kv_slice){n->data, n->flen});
            n->next = b[idx];
            b[idx] = n;
        }
    }
    free(from);
}

static htable *table__new(uint64_t seed)
{
    htable *t = xcalloc(1, sizeof(*t));
    t->seed = seed;
    t->mask = 7;
    t->buckets = xcalloc(8, sizeof(hnode *));
    t->cap = 8;
    t->order = xcalloc(t->cap, sizeof(hnode *));
    t->mem = kv_alloc_size(sizeof(*t)) + 2 * kv_alloc_size(8 * sizeof(hnode *));
    return t;
}

/* The order array resized to cap slots (it holds count). */
static void table__order_cap(htable *t, uint64_t cap)
{
    t->mem -= kv_alloc_size(t->cap * sizeof(hnode *));
    t->order = xrealloc(t->order, cap * sizeof(hnode *));
    t->cap = cap;
    t->mem += kv_alloc_size(t->cap * sizeof(hnode *));
}

static hnode **table__find(htable *t, kv_slice f)
{
    hnode **p = &t->buckets[table__index(t, f)];
    for (; *p; p = &(*p)->next)
        if ((*p)->flen == f.len && memcmp((*p)->data, f.ptr, f.len) == 0) return p;
    return NULL;
}

static int table__set(htable *t, kv_slice f, kv_slice v)
{
    hnode **p = table__find(t, f);
    int added = p == NULL;
    hnode *n = xmalloc(HNODE_HEADER + f.len + v.len);
    n->flen = (uint32_t)f.len;
    n->vlen = (uint32_t)v.len;
    if (f.len) memcpy(n->data, f.ptr, f.len);
    if (v.len) memcpy(n->data + f.len, v.ptr, v.len);
    t->mem += hnode__mem(n);
    if (p) { /* replace in place: keeps its chain and its slot */
        hnode *old = *p;
        n->next = old->next;
        *p = n;
        n->slot = old->slot;
        t->order[n->slot] = n;
        t->mem -= hnode__mem(old);
        free(old);
        return 0;
    }
    uint64_t idx = table__index(t, f);
    n->next = t->buckets[idx];
    t->buckets[idx] = n;
    if (t->count == UINT32_MAX) abort(); /* 4G fields: far past any memory */
    if (t->count == t->cap) table__order_cap(t, t->cap + t->cap / 2);
    n->slot = (uint32_t)t->count;
    t->order[t->count++] = n;
    if (t->count > t->mask + 1) table__resize(t, (t->mask + 1) * 2);
    return added;
}

size_t kv_hash_table_mem(const void *table)
{
    return ((const htable *)table)->mem;
}

void kv_hash_table_free(void *table)
{
    htable *t = table;
    if (!t) return;
    for (uint64_t i = 0; i <= t->mask; i++) {
        for (hnode *n = t->buckets[i], *next; n; n = next) {
            next = n->next;
            free(n);
        }
    }
    free(t->buckets);
    free(t->order);
    free(t);
}

/* ---- the hash --------------------------------------------------------------- */

static bool is_table(const kv_entry *e)
{
    return e->encoding == KV_ENC_HASHTABLE;
}

void kv_hash_init(kv_keyspace *ks, kv_entry *e)
{
    char *b = xcalloc(1, 4);
    kv_keyspace_set_value_owned(ks, e, b, 4);
    e->type = KV_TYPE_HASH;
    e->encoding = KV_ENC_LISTPACK;
}

uint64_t kv_hash_len(const kv_entry *e)
{
    if (is_table(e)) return ((const htable *)(const void *)e->value)->count;
    return e->value ? hash__get32(e->value) : 0;
}

bool kv_hash_get(const kv_entry *e, kv_slice field, kv_slice *value)
{
    if (is_table(e)) {
        hnode **p = table__find((htable *)(void *)e->value, field);
        if (!p) return false;
        value->ptr = (*p)->data + (*p)->flen;
        value->len = (*p)->vlen;
        return true;
    }
    packed_walk w;
    kv_slice f, v;
    packed__begin(&w, e->value);
    while (packed__next(&w, &f, &v)) {
        if (slice_eq(f, field)) {
            *value = v;
            return true;
        }
    }
    return false;
}

/* listpack -> hashtable, keeping every pair. */
static void hash__convert(kv_keyspace *ks, kv_entry *e)
{
    htable *t = table__new(ks->seed);
    packed_walk w;
    kv_slice f, v;
    packed__begin(&w, e->value);
    uint64_t n = kv_hash_len(e);
    uint64_t size = 8;
    while (size < n) size *= 2;
    if (size > 8) table__resize(t, size);
    while (packed__next(&w, &f, &v)) table__set(t, f, v);
    ks->mem_bytes -= kv_entry_mem_bytes(e);
    free(e->value);
    e->value = (char *)(void *)t;
    e->value_len = 0;
    e->encoding = KV_ENC_HASHTABLE;
    ks->mem_bytes += kv_entry_mem_bytes(e);
}

int kv_hash_set(kv_keyspace *ks, kv_entry *e, kv_slice field, kv_slice value)
{
    bool set = e->type == KV_TYPE_SET;
    uint64_t max_value = ks->limits.v[set ? KV_LIMIT_SET_VALUE : KV_LIMIT_HASH_VALUE];
    uint64_t max_entries = ks->limits.v[set ? KV_LIMIT_SET_ENTRIES : KV_LIMIT_HASH_ENTRIES];
    if (!is_table(e) && (field.len > max_value || value.len > max_value ||
                         (kv_hash_len(e) >= max_entries && !kv_hash_get(e, field, &(kv_slice){0}))))
        hash__convert(ks, e);
    if (is_table(e)) {
        ks->mem_bytes -= kv_entry_mem_bytes(e);
        int added = table__set((htable *)(void *)e->value, field, value);
        ks->mem_bytes += kv_entry_mem_bytes(e);
        return added;
    }
    /* rebuild the packed buffer with the pair replaced in place or appended */
    packed_walk w;
    kv_slice f, v;
    packed__begin(&w, e->value);
    size_t at = 0, old_len = 0;
    bool found = false;
    while (packed__next(&w, &f, &v)) {
        if (slice_eq(f, field)) {
            found = true;
            at = w.at;
            old_len = w.pos - w.at;
            break;
        }
    }
    size_t pair = kv_packed_size(field.len) + kv_packed_size(value.len);
    size_t len = e->value_len - old_len + pair;
    char *b = xmalloc(len);
    size_t tail_from = found ? at + old_len : e->value_len;
    if (!found) at = e->value_len;
    memcpy(b, e->value, at);
    char *p = b + at;
    p += kv_packed_put(p, field);
    p += kv_packed_put(p, value);
    memcpy(p, e->value + tail_from, e->value_len - tail_from);
    hash__put32(b, (uint32_t)(kv_hash_len(e) + (found ? 0 : 1)));
    kv_keyspace_set_value_owned(ks, e, b, len);
    return found ? 0 : 1;
}

bool kv_hash_del(kv_keyspace *ks, kv_entry *e, kv_slice field)
{
    if (is_table(e)) {
        htable *t = (htable *)(void *)e->value;
        hnode **p = table__find(t, field);
        if (!p) return false;
        ks->mem_bytes -= kv_entry_mem_bytes(e);
        hnode *n = *p;
        *p = n->next;
        hnode *last = t->order[--t->count];
        t->order[n->slot] = last;
        last->slot = n->slot;
        t->mem -= hnode__mem(n);
        free(n);
        if (t->cap > 8 && t->count < t->cap / 3) table__order_cap(t, t->cap / 2);
        ks->mem_bytes += kv_entry_mem_bytes(e);
        return true;
    }
    packed_walk w;
    kv_slice f, v;
    packed__begin(&w, e->value);
    while (packed__next(&w, &f, &v)) {
        if (!slice_eq(f, field)) continue;
        size_t gap = w.pos - w.at;
        size_t len = e->value_len - gap;
        char *b = xmalloc(len);
        memcpy(b, e->value, w.at);
        memcpy(b + w.at, e->value + w.pos, e->value_len - w.pos);
        hash__put32(b, (uint32_t)(kv_hash_len(e) - 1));
        kv_keyspace_set_value_owned(ks, e, b, len);
        return true;
    }
    return false;
}

void kv_hash_iter_init(kv_hash_iter *it, const kv_entry *e)
{
    memset(it, 0, sizeof(*it));
    it->e = e;
    if (is_table(e)) {
        it->pos = 0; /* the next slot */
    } else {
        it->left = e->value ? hash__get32(e->value) : 0;
        it->pos = 4;
    }
}

bool kv_hash_iter_next(kv_hash_iter *it, kv_slice *field, kv_slice *value)
{
    if (!is_table(it->e)) {
        packed_walk w = {.data = it->e->value, .pos = it->pos, .left = it->left};
        if (!packed__next(&w, field, value)) return false;
        it->pos = w.pos;
        it->left = w.left;
        return true;
    }
    const htable *t = (const htable *)(const void *)it->e->value;
    if (it->pos >= t->count) return false;
    const hnode *n = t->order[it->pos++];
    field->ptr = n->data;
    field->len = n->flen;
    value->ptr = n->data + n->flen;
    value->len = n->vlen;
    return true;
}

void kv_hash_pick(const kv_entry *e, const uint64_t *idx, size_t n, kv_hash_pick_fn fn, void *ctx)
{
    if (is_table(e)) {
        const htable *t = (const htable *)(const void *)e->value;
        for (size_t k = 0; k < n; k++) {
            const hnode *x = t->order[idx[k]];
            fn(ctx, (kv_slice){x->data, x->flen}, (kv_slice){x->data + x->flen, x->vlen});
        }
        return;
    }
    kv_hash_iter it;
    kv_slice f, v;
    kv_hash_iter_init(&it, e);
    size_t k = 0;
    for (uint64_t pos = 0; k < n && kv_hash_iter_next(&it, &f, &v); pos++)
        for (; k < n && idx[k] == pos; k++) fn(ctx, f, v);
}

uint64_t kv_hash_scan(const kv_entry *e, uint64_t cursor, kv_hash_scan_fn fn, void *ctx)
{
    if (!is_table(e)) {
        kv_hash_iter it;
        kv_slice f, v;
        kv_hash_iter_init(&it, e);
        while (kv_hash_iter_next(&it, &f, &v)) fn(ctx, f, v);
        return 0;
    }
    const htable *t = (const htable *)(const void *)e->value;
    for (const hnode *n = t->buckets[cursor & t->mask]; n; n = n->next)
        fn(ctx, (kv_slice){n->data, n->flen}, (kv_slice){n->data + n->flen, n->vlen});
    return kv_cursor_next(cursor, t->mask);
}

size_t kv_hash_serialized_len(const kv_entry *e)
{
    size_t n = 4;
    kv_hash_iter it;
    kv_slice f, v;
    kv_hash_iter_init(&it, e);
    while (kv_hash_iter_next(&it, &f, &v)) n += 8 + f.len + v.len;
    return n;
}

int kv_hash_serialize(const kv_entry *e, kv_hash_out_fn out, void *ctx)
{
    char n[4];
    hash__put32(n, (uint32_t)kv_hash_len(e));
    int rv = out(ctx, n, 4);
    kv_hash_iter it;
    kv_slice f, v;
    kv_hash_iter_init(&it, e);
    while (!rv && kv_hash_iter_next(&it, &f, &v)) {
        hash__put32(n, (uint32_t)f.len);
        rv = out(ctx, n, 4);
        if (!rv && f.len) rv = out(ctx, f.ptr, f.len);
        hash__put32(n, (uint32_t)v.len);
        if (!rv) rv = out(ctx, n, 4);
        if (!rv && v.len) rv = out(ctx, v.ptr, v.len);
    }
    return rv;
}

/* The serialized layout's pairs (already checked), one after another. */
static bool serialized__next(const char *data, size_t *pos, kv_slice *f, kv_slice *v)
{
    f->len = hash__get32(data + *pos);
    f->ptr = data + *pos + 4;
    *pos += 4 + f->len;
    v->len = hash__get32(data + *pos);
    v->ptr = data + *pos + 4;
    *pos += 4 + v->len;
    return true;
}

bool kv_hash_load(kv_keyspace *ks, kv_entry *e, int encoding, const char *data, size_t len)
{
    if (encoding != KV_ENC_LISTPACK && encoding != KV_ENC_HASHTABLE) return false;
    if (len < 4) return false;
    uint32_t count = hash__get32(data);
    if (count == 0) return false; /* no empty hashes */
    size_t pos = 4;
    for (uint32_t i = 0; i < count; i++) {
        for (int half = 0; half < 2; half++) {
            if (len - pos < 4) return false;
            uint32_t n = hash__get32(data + pos);
            pos += 4;
            if (n > len - pos) return false;
            pos += n;
        }
    }
    if (pos != len) return false;
    /* duplicate fields would make HLEN lie: refuse them */
    htable *t = table__new(ks->seed);
    kv_slice f, v;
    size_t packed_len = 4;
    bool dup = false;
    pos = 4;
    for (uint32_t i = 0; !dup && i < count && serialized__next(data, &pos, &f, &v); i++) {
        dup = table__set(t, f, v) == 0;
        packed_len += kv_packed_size(f.len) + kv_packed_size(v.len);
    }
    if (dup) {
        kv_hash_table_free(t);
        return false;
    }
    if (encoding == KV_ENC_HASHTABLE) {
        ks->mem_bytes -= kv_entry_mem_bytes(e);
        free(e->value);
        e->value = (char *)(void *)t;
        e->value_len = 0;
        e->type = KV_TYPE_HASH;
        e->encoding = KV_ENC_HASHTABLE;
        ks->mem_bytes += kv_entry_mem_bytes(e);
        return true;
    }
    kv_hash_table_free(t);
    /* the in-memory packed layout, from the serialized one */
    char *b = xmalloc(packed_len), *p = b + 4;
    hash__put32(b, count);
    pos = 4;
    for (uint32_t i = 0; i < count && serialized__next(data, &pos, &f, &v); i++) {
        p += kv_packed_put(p, f);
        p += kv_packed_put(p, v);
    }
    kv_keyspace_set_value_owned(ks, e, b, packed_len);
    e->type = KV_TYPE_HASH;
    e->encoding = KV_ENC_LISTPACK;
    return true;
}
