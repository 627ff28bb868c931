#include "kv/keyspace.h"

#include "kv/hash.h"
#include "kv/lazyfree.h"
#include "kv/list.h"
#include "kv/stream.h"
#include "kv/zset.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/hash.h"
#include "util/strconv.h"

#define KS_INITIAL_BUCKETS 16

static uint64_t ks__rand(kv_keyspace *ks)
{
    /* xorshift64*: cheap, good enough for levels and sampling */
    uint64_t x = ks->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    ks->rng = x;
    return x * 0x2545f4914f6cdd1dull;
}

static int ks__random_level(kv_keyspace *ks)
{
    /* p = 1/4 as in Redis' zset: 1.33 pointers per entry on average */
    uint64_t r = ks__rand(ks);
    int level = 1;
    while ((r & 3) == 0 && level < KV_SKIPLIST_MAX_LEVEL) {
        level++;
        r >>= 2;
    }
    return level;
}

static int ks__cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    if (c) return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static size_t ks__alloc_size(size_t n)
{
    return kv_alloc_size(n);
}

const char *kv_type_name(int type)
{
    static const char *names[] = {"string", "hash", "list", "set", "zset", "stream"};
    return type >= 0 && type < KV_TYPE_MAX_ ? names[type] : "none";
}

const char *kv_encoding_name(const kv_entry *e)
{
    switch (e->encoding) {
    case KV_ENC_LISTPACK:
        return "listpack";
    case KV_ENC_HASHTABLE:
        return "hashtable";
    case KV_ENC_QUICKLIST:
        return "quicklist";
    case KV_ENC_INTSET:
        return "intset";
    case KV_ENC_SKIPLIST:
        return "skiplist";
    case KV_ENC_STR_RAW:
        return "raw";
    case KV_ENC_STREAM:
        return "stream";
    case KV_ENC_STR_EMBSTR:
        return e->value_len <= 44 ? "embstr" : "raw";
    default:
        break;
    }
    int64_t v;
    if (e->value_len <= 20 && strconv_parse_i64(e->value, e->value_len, &v)) return "int";
    return e->value_len <= 44 ? "embstr" : "raw";
}

/* A value that is an object of its type's module, not a byte buffer. */
static bool ks__holds_table(const kv_entry *e)
{
    return e->encoding == KV_ENC_HASHTABLE || e->encoding == KV_ENC_QUICKLIST ||
           e->encoding == KV_ENC_SKIPLIST || e->encoding == KV_ENC_STREAM;
}

static size_t ks__object_mem(const kv_entry *e)
{
    return e->encoding == KV_ENC_QUICKLIST  ? kv_list_mem(e->value)
           : e->encoding == KV_ENC_SKIPLIST ? kv_zset_mem(e->value)
           : e->encoding == KV_ENC_STREAM   ? kv_stream_mem(e->value)
                                            : kv_hash_table_mem(e->value);
}

/* The free function of the table-like object e holds. */
static kv_lazyfree_fn ks__object_free_fn(const kv_entry *e)
{
    return e->encoding == KV_ENC_QUICKLIST  ? kv_list_free
           : e->encoding == KV_ENC_SKIPLIST ? kv_zset_free
           : e->encoding == KV_ENC_STREAM   ? kv_stream_free
                                            : kv_hash_table_free;
}

/* A big object goes to the lazyfree thread (kv/lazyfree.h): its free
 * functions touch nothing but the object. */
static void ks__object_free(kv_entry *e)
{
    kv_lazyfree_fn fn = ks__object_free_fn(e);
    if (ks__object_mem(e) >= KV_LAZYFREE_MIN_BYTES)
        kv_lazyfree(fn, e->value);
    else
        fn(e->value);
}

size_t kv_entry_mem_bytes(const kv_entry *e)
{
    size_t n = ks__alloc_size(sizeof(kv_entry) + e->level * sizeof(kv_entry *) + e->key_len);
    if (e->value_len) n += ks__alloc_size(e->value_len);
    if (ks__holds_table(e) && e->value) n += ks__object_mem(e);
    return n;
}

static void ks__free_value(kv_entry *e)
{
    if (ks__holds_table(e))
        ks__object_free(e);
    else
        free(e->value);
    e->value = NULL;
    e->value_len = 0;
    e->type = KV_TYPE_STRING;
    e->encoding = KV_ENC_RAW;
}

void kv_keyspace_reset_value(kv_keyspace *ks, kv_entry *e)
{
    ks->mem_bytes -= kv_entry_mem_bytes(e);
    ks__free_value(e);
    ks->mem_bytes += kv_entry_mem_bytes(e);
}

void kv_keyspace_move_value(kv_keyspace *ks, kv_entry *from, kv_entry *to)
{
    kv_keyspace_reset_value(ks, to);
    ks->mem_bytes -= kv_entry_mem_bytes(from) + kv_entry_mem_bytes(to);
    to->value = from->value;
    to->value_len = from->value_len;
    to->type = from->type;
    to->encoding = from->encoding;
    from->value = NULL;
    from->value_len = 0;
    from->type = KV_TYPE_STRING;
    from->encoding = KV_ENC_RAW;
    ks->mem_bytes += kv_entry_mem_bytes(from) + kv_entry_mem_bytes(to);
}

void kv_keyspace_init(kv_keyspace *ks, uint64_t seed)
{
    memset(ks, 0, sizeof(*ks));
    ks->rehash_index = -1;
    ks->seed = seed;
    ks->rng = seed | 1;
    ks->head = xcalloc(1, sizeof(kv_entry) + KV_SKIPLIST_MAX_LEVEL * sizeof(kv_entry *));
    ks->head->level = KV_SKIPLIST_MAX_LEVEL;
    ks->level = 1;
    kv_limits_default(&ks->limits);
}

static void ks__free_entry(kv_entry *e)
{
    ks__free_value(e);
    free(e);
}

/* What clearing a big keyspace hands to the lazyfree thread: its entries,
 * chained by their level-0 links, and its hash tables' bucket arrays. */
typedef struct ks_garbage {
    kv_entry *first;
    kv_entry **buckets[2];
} ks_garbage;

/* On the lazyfree thread: the entries are unreachable from the keyspace,
 * so nothing else touches them; a big collection among them is freed here
 * too rather than queued again. */
static void ks__garbage_free(void *p)
{
    ks_garbage *g = p;
    for (kv_entry *e = g->first, *next; e; e = next) {
        next = e->next[0];
        if (ks__holds_table(e) && e->value) {
            ks__object_free_fn(e)(e->value);
        } else {
            free(e->value);
        }
        free(e);
    }
    free(g->buckets[0]);
    free(g->buckets[1]);
    free(g);
}

/* Empty the keyspace; lazily: a keyspace of KV_LAZYFREE_MIN_BYTES or more
 * is freed on the lazyfree thread (a million keys held the loop 13-60 ms). */
static void ks__clear(kv_keyspace *ks, bool lazily)
{
    if (lazily && ks->mem_bytes >= KV_LAZYFREE_MIN_BYTES) {
        ks_garbage *g = xmalloc(sizeof(*g));
        g->first = ks->head->next[0];
        g->buckets[0] = ks->t[0].buckets;
        g->buckets[1] = ks->t[1].buckets;
        kv_lazyfree(ks__garbage_free, g);
    } else {
        kv_entry *e = ks->head->next[0];
        while (e) {
            kv_entry *next = e->next[0];
            ks__free_entry(e);
            e = next;
        }
        for (int i = 0; i < 2; i++) free(ks->t[i].buckets);
    }
    for (int i = 0; i < 2; i++) memset(&ks->t[i], 0, sizeof(ks->t[i]));
    memset(ks->head->next, 0, KV_SKIPLIST_MAX_LEVEL * sizeof(kv_entry *));
    ks->level = 1;
    ks->rehash_index = -1;
    ks->mem_bytes = 0;
    ks->volatile_count = 0;
}

void kv_keyspace_clear(kv_keyspace *ks)
{
    ks__clear(ks, true);
}

/* A table this small is kept by kv_keyspace_empty. */
#define KS_KEEP_BUCKETS 64

void kv_keyspace_empty(kv_keyspace *ks)
{
    kv_table *t = &ks->t[0];
    size_t table_bytes = t->buckets ? (t->mask + 1) * sizeof(kv_entry *) : 0;
    if (ks->rehash_index >= 0 || !t->buckets || t->mask + 1 > KS_KEEP_BUCKETS ||
        ks->mem_bytes - table_bytes >= KV_LAZYFREE_MIN_BYTES) {
        ks__clear(ks, true);
        return;
    }
    for (kv_entry *e = ks->head->next[0], *next; e; e = next) {
        next = e->next[0];
        ks__free_entry(e);
    }
    memset(t->buckets, 0, table_bytes);
    t->used = 0;
    memset(ks->head->next, 0, KV_SKIPLIST_MAX_LEVEL * sizeof(kv_entry *));
    ks->level = 1;
    ks->mem_bytes = table_bytes;
    ks->volatile_count = 0;
}

void kv_keyspace_drop(kv_keyspace *ks)
{
    ks__clear(ks, true);
    free(ks->head);
    ks->head = NULL;
}

void kv_keyspace_close(kv_keyspace *ks)
{
    ks__clear(ks, false);
    free(ks->head);
    ks->head = NULL;
}

static inline uint64_t ks__hash(const kv_keyspace *ks, const char *key, size_t len)
{
    return hash_bytes(key, len, ks->seed);
}

static inline bool ks__rehashing(const kv_keyspace *ks)
{
    return ks->rehash_index >= 0;
}

static void ks__table_alloc(kv_keyspace *ks, kv_table *t, uint64_t size)
{
    t->buckets = xcalloc(size, sizeof(kv_entry *));
    t->mask = size - 1;
    t->used = 0;
    ks->mem_bytes += size * sizeof(kv_entry *);
}

static void ks__table_free(kv_keyspace *ks, kv_table *t)
{
    if (t->buckets) ks->mem_bytes -= (t->mask + 1) * sizeof(kv_entry *);
    free(t->buckets);
    memset(t, 0, sizeof(*t));
}

static void ks__start_resize(kv_keyspace *ks, uint64_t want)
{
    uint64_t size = KS_INITIAL_BUCKETS;
    while (size < want) size <<= 1;
    if (ks->t[0].buckets == NULL) {
        ks__table_alloc(ks, &ks->t[0], size);
        return;
    }
    if (size == ks->t[0].mask + 1) return;
    ks__table_alloc(ks, &ks->t[1], size);
    ks->rehash_index = 0;
}

void kv_keyspace_reserve(kv_keyspace *ks, uint64_t n)
{
    if (kv_keyspace_count(ks) != 0 || ks__rehashing(ks)) return;
    ks__table_free(ks, &ks->t[0]);
    ks__start_resize(ks, n);
}

bool kv_keyspace_rehash_step(kv_keyspace *ks, int n)
{
    if (!ks__rehashing(ks)) return false;
    int empty_visits = n * 10; /* bound the work when many buckets are empty */
    kv_table *from = &ks->t[0], *to = &ks->t[1];
    while (n-- > 0 && from->used > 0) {
        while (from->buckets[ks->rehash_index] == NULL) {
            ks->rehash_index++;
            if (--empty_visits == 0) return true;
        }
        kv_entry *e = from->buckets[ks->rehash_index];
        while (e) {
            kv_entry *next = e->hnext;
            uint64_t idx = ks__hash(ks, kv_entry_key(e), e->key_len) & to->mask;
            e->hnext = to->buckets[idx];
            to->buckets[idx] = e;
            from->used--;
            to->used++;
            e = next;
        }
        from->buckets[ks->rehash_index] = NULL;
        ks->rehash_index++;
    }
    if (from->used == 0) {
        ks__table_free(ks, from);
        ks->t[0] = *to;
        memset(to, 0, sizeof(*to));
        ks->rehash_index = -1;
        return false;
    }
    return true;
}

static kv_entry *ks__lookup(kv_keyspace *ks, const char *key, size_t key_len)
{
    if (kv_keyspace_count(ks) == 0) return NULL;
    if (ks__rehashing(ks)) kv_keyspace_rehash_step(ks, 1);
    uint64_t h = ks__hash(ks, key, key_len);
    for (int i = 0; i < 2; i++) {
        kv_table *t = &ks->t[i];
        if (!t->buckets) continue;
        for (kv_entry *e = t->buckets[h & t->mask]; e; e = e->hnext) {
            if (e->key_len == key_len && memcmp(kv_entry_key(e), key, key_len) == 0) return e;
        }
        if (!ks__rehashing(ks)) break;
    }
    return NULL;
}

kv_entry *kv_keyspace_find(kv_keyspace *ks, const char *key, size_t key_len)
{
    kv_entry *e = ks__lookup(ks, key, key_len);
    if (!e && ks->on_miss) e = ks->on_miss(ks->on_miss_ctx, ks, key, key_len);
    return e;
}

void kv_keyspace_prefetch(const kv_keyspace *ks, const char *key, size_t key_len)
{
    const kv_table *t = ks__rehashing(ks) ? &ks->t[1] : &ks->t[0];
    if (!t->buckets) return;
    __builtin_prefetch(&t->buckets[ks__hash(ks, key, key_len) & t->mask], 1);
}

static kv_entry *ks__new_entry(kv_keyspace *ks, const char *key, size_t key_len, const char *value,
                               size_t value_len, int level)
{
    kv_entry *e = xmalloc(sizeof(kv_entry) + (size_t)level * sizeof(kv_entry *) + key_len);
    memset(e, 0, sizeof(kv_entry));
    e->level = (uint8_t)level;
    e->key_len = (uint32_t)key_len;
    if (key_len) memcpy((char *)&e->next[level], key, key_len);
    if (value_len) e->value = xmemdup(value, value_len);
    e->value_len = (uint32_t)value_len;
    ks->mem_bytes += kv_entry_mem_bytes(e);
    return e;
}

static void ks__hash_link(kv_keyspace *ks, kv_entry *e)
{
    if (!ks__rehashing(ks)) {
        if (ks->t[0].buckets == NULL) {
            ks__start_resize(ks, KS_INITIAL_BUCKETS);
        } else if (ks->t[0].used >= ks->t[0].mask + 1) {
            ks__start_resize(ks, ks->t[0].used * 2);
        }
    } else {
        kv_keyspace_rehash_step(ks, 1);
    }
    kv_table *t = ks__rehashing(ks) ? &ks->t[1] : &ks->t[0];
    uint64_t idx = ks__hash(ks, kv_entry_key(e), e->key_len) & t->mask;
    e->hnext = t->buckets[idx];
    t->buckets[idx] = e;
    t->used++;
}

kv_entry *kv_keyspace_insert(kv_keyspace *ks, const char *key, size_t key_len, const char *value,
                             size_t value_len)
{
    kv_entry *update[KV_SKIPLIST_MAX_LEVEL];
    kv_entry *x = ks->head;
    for (int i = ks->level - 1; i >= 0; i--) {
        while (x->next[i] &&
               ks__cmp(kv_entry_key(x->next[i]), x->next[i]->key_len, key, key_len) < 0)
            x = x->next[i];
        update[i] = x;
    }
    int level = ks__random_level(ks);
    if (level > ks->level) {
        for (int i = ks->level; i < level; i++) update[i] = ks->head;
        ks->level = level;
    }
    kv_entry *e = ks__new_entry(ks, key, key_len, value, value_len, level);
    for (int i = 0; i < level; i++) {
        e->next[i] = update[i]->next[i];
        update[i]->next[i] = e;
    }
    ks__hash_link(ks, e);
    return e;
}

kv_entry *kv_keyspace_append_sorted(kv_keyspace *ks, kv_entry **tail, const char *key,
                                    size_t key_len, const char *value, size_t value_len)
{
    int level = ks__random_level(ks);
    if (level > ks->level) ks->level = level;
    kv_entry *e = ks__new_entry(ks, key, key_len, value, value_len, level);
    for (int i = 0; i < level; i++) {
        kv_entry *prev = tail[i] ? tail[i] : ks->head;
        e->next[i] = NULL;
        prev->next[i] = e;
        tail[i] = e;
    }
    ks__hash_link(ks, e);
    return e;
}

void kv_keyspace_set_value_owned(kv_keyspace *ks, kv_entry *e, char *value, size_t value_len)
{
    ks->mem_bytes -= kv_entry_mem_bytes(e);
    if (ks__holds_table(e)) {
        ks__object_free(e);
        e->encoding = KV_ENC_LISTPACK; /* only a packed buffer can follow */
    } else {
        free(e->value);
    }
    e->value = value_len ? value : NULL;
    if (!value_len) free(value);
    e->value_len = (uint32_t)value_len;
    ks->mem_bytes += kv_entry_mem_bytes(e);
}

char *kv_keyspace_grow_string(kv_keyspace *ks, kv_entry *e, size_t len)
{
    if (len <= e->value_len) return e->value;
    ks->mem_bytes -= kv_entry_mem_bytes(e);
    char *v = xrealloc(e->value, len);
    memset(v + e->value_len, 0, len - e->value_len);
    e->value = v;
    e->value_len = (uint32_t)len;
    ks->mem_bytes += kv_entry_mem_bytes(e);
    return v;
}

char *kv_keyspace_take_value(kv_keyspace *ks, kv_entry *e, size_t *len)
{
    ks->mem_bytes -= kv_entry_mem_bytes(e);
    char *v = e->value;
    *len = e->value_len;
    e->value = NULL;
    e->value_len = 0;
    ks->mem_bytes += kv_entry_mem_bytes(e);
    return v;
}

void kv_keyspace_set_value(kv_keyspace *ks, kv_entry *e, const char *value, size_t value_len)
{
    if (ks__holds_table(e)) kv_keyspace_reset_value(ks, e);
    /* An overwrite with a value of the same allocation size (the common
     * case: counters, fixed-size records) copies into the old buffer: no
     * free of a cold chunk and no malloc, and the memory estimate, which
     * counts allocation sizes, stays exact. malloc_usable_size, not the
     * estimate, says whether the bytes fit: the buffer was allocated with
     * the old length (and sanitizers hold us to exactly that). */
    if (e->value && value_len && ks__alloc_size(value_len) == ks__alloc_size(e->value_len) &&
        malloc_usable_size(e->value) >= value_len) {
        memmove(e->value, value, value_len);
        e->value_len = (uint32_t)value_len;
        return;
    }
    kv_keyspace_set_value_owned(ks, e, value_len ? xmemdup(value, value_len) : NULL, value_len);
}

void kv_keyspace_set_expire(kv_keyspace *ks, kv_entry *e, int64_t expire_ms)
{
    if (e->expire_ms && !expire_ms) ks->volatile_count--;
    if (!e->expire_ms && expire_ms) ks->volatile_count++;
    e->expire_ms = expire_ms;
}

static void ks__maybe_shrink(kv_keyspace *ks)
{
    if (ks__rehashing(ks) || !ks->t[0].buckets) return;
    uint64_t size = ks->t[0].mask + 1;
    if (size > KS_INITIAL_BUCKETS && ks->t[0].used * 8 < size) ks__start_resize(ks, ks->t[0].used);
}

bool kv_keyspace_delete(kv_keyspace *ks, const char *key, size_t key_len)
{
    if (ks->on_miss && !kv_keyspace_find(ks, key, key_len)) return false; /* faulted in first */
    if (kv_keyspace_count(ks) == 0) return false;
    if (ks__rehashing(ks)) kv_keyspace_rehash_step(ks, 1);
    uint64_t h = ks__hash(ks, key, key_len);
    kv_entry *found = NULL;
    for (int i = 0; i < 2 && !found; i++) {
        kv_table *t = &ks->t[i];
        if (!t->buckets) continue;
        kv_entry **pp = &t->buckets[h & t->mask];
        for (; *pp; pp = &(*pp)->hnext) {
            kv_entry *e = *pp;
            if (e->key_len == key_len && memcmp(kv_entry_key(e), key, key_len) == 0) {
                *pp = e->hnext;
                t->used--;
                found = e;
                break;
            }
        }
        if (!ks__rehashing(ks)) break;
    }
    if (!found) return false;

    kv_entry *x = ks->head;
    for (int i = ks->level - 1; i >= 0; i--) {
        while (x->next[i] && x->next[i] != found &&
               ks__cmp(kv_entry_key(x->next[i]), x->next[i]->key_len, key, key_len) < 0)
            x = x->next[i];
        if (i < found->level && x->next[i] == found) x->next[i] = found->next[i];
    }
    while (ks->level > 1 && ks->head->next[ks->level - 1] == NULL) ks->level--;
    if (found->expire_ms) ks->volatile_count--;
    ks->mem_bytes -= kv_entry_mem_bytes(found);
    ks__free_entry(found);
    ks__maybe_shrink(ks);
    return true;
}

kv_entry *kv_keyspace_seek(const kv_keyspace *ks, const char *key, size_t key_len, bool after)
{
    kv_entry *x = ks->head;
    for (int i = ks->level - 1; i >= 0; i--) {
        while (x->next[i]) {
            int c = ks__cmp(kv_entry_key(x->next[i]), x->next[i]->key_len, key, key_len);
            if (c < 0 || (after && c == 0))
                x = x->next[i];
            else
                break;
        }
    }
    return x->next[0];
}

static void ks__scan_bucket(kv_entry *e, kv_scan_fn fn, void *ctx)
{
    while (e) {
        kv_entry *next = e->hnext; /* fn must not free e, but be safe */
        fn(ctx, e);
        e = next;
    }
}

uint64_t kv_keyspace_scan(kv_keyspace *ks, uint64_t v, kv_scan_fn fn, void *ctx)
{
    if (kv_keyspace_count(ks) == 0) return 0;
    if (!ks__rehashing(ks)) {
        kv_table *t = &ks->t[0];
        ks__scan_bucket(t->buckets[v & t->mask], fn, ctx);
        return kv_cursor_next(v, t->mask);
    }
    kv_table *small = &ks->t[0], *large = &ks->t[1];
    if (small->mask > large->mask) {
        kv_table *tmp = small;
        small = large;
        large = tmp;
    }
    uint64_t m0 = small->mask, m1 = large->mask;
    ks__scan_bucket(small->buckets[v & m0], fn, ctx);
    do {
        ks__scan_bucket(large->buckets[v & m1], fn, ctx);
        v = kv_cursor_next(v, m1);
    } while (v & (m0 ^ m1));
    return v;
}

kv_entry *kv_keyspace_random(kv_keyspace *ks)
{
    if (kv_keyspace_count(ks) == 0) return NULL;
    kv_entry *bucket = NULL;
    /* bounded tries; fall back to the first entry in order */
    for (int tries = 0; tries < 1000 && !bucket; tries++) {
        if (ks__rehashing(ks)) {
            uint64_t s0 = ks->t[0].mask + 1, s1 = ks->t[1].mask + 1;
            uint64_t r = ks__rand(ks) % (s0 + s1);
            if (r < s0) {
                if ((int64_t)r >= ks->rehash_index) bucket = ks->t[0].buckets[r];
            } else {
                bucket = ks->t[1].buckets[r - s0];
            }
        } else {
            bucket = ks->t[0].buckets[ks__rand(ks) & ks->t[0].mask];
        }
    }
    if (!bucket) return kv_keyspace_first(ks);
    size_t n = 0;
    for (kv_entry *e = bucket; e; e = e->hnext) n++;
    size_t pick = ks__rand(ks) % n;
    while (pick--) bucket = bucket->hnext;
    return bucket;
}
