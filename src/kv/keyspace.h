/* keyspace: the in-memory map from byte-string keys to entries.
 *
 * Two indexes share each entry:
 *  - a chained hash table with incremental rehashing (as Redis' dict does),
 *    for O(1) lookups and for SCAN: its reverse-binary cursor returns every
 *    key present for the whole scan at least once, even across a resize,
 *    and a resize never stalls the loop, because buckets move a few at a
 *    time on each write;
 *  - a skiplist in key byte order (forward pointers embedded in the entry),
 *    for prefix listing with cursors.
 *
 * The keyspace knows nothing of revisions' meaning, commands or expiry
 * policy: it stores what kv/store tells it. Expiry is a field here only so
 * that reads can hide expired entries cheaply. Single-threaded: only the
 * loop thread touches it (snapshots read it from a forked child). */
#ifndef CAIRN_KV_KEYSPACE_H
#define CAIRN_KV_KEYSPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/limits.h"

#define KV_SKIPLIST_MAX_LEVEL 32

/* What an entry holds (Redis' TYPE) and how (OBJECT ENCODING). A string's
 * bytes are value/value_len; other types are described in their modules
 * (kv/hash.h). */
enum {
    KV_TYPE_STRING = 0,
    KV_TYPE_HASH = 1,
    KV_TYPE_LIST = 2,
    KV_TYPE_SET = 3,
    KV_TYPE_ZSET = 4,
    KV_TYPE_STREAM = 5,
    KV_TYPE_MAX_
};
enum {
    /* a string whose OBJECT ENCODING follows from its content, as Redis
     * encodes a value it stores whole (SET, INCR, RESTORE ...): int,
     * embstr up to 44 bytes, raw */
    KV_ENC_RAW = 0,
    KV_ENC_LISTPACK = 1,
    KV_ENC_HASHTABLE = 2,
    KV_ENC_QUICKLIST = 3,
    KV_ENC_INTSET = 4,
    KV_ENC_SKIPLIST = 5,
    KV_ENC_STR_RAW = 6,    /* a string changed in place (APPEND SETRANGE SETBIT ...): raw */
    KV_ENC_STR_EMBSTR = 7, /* INCRBYFLOAT's result: embstr, whatever it reads as */
    KV_ENC_STREAM = 8,     /* kv/stream.h's object */
    KV_ENC_MAX_
};

/* Redis' names: TYPE's answer, and OBJECT ENCODING's. */
const char *kv_type_name(int type);

typedef struct kv_entry kv_entry;
/* OBJECT ENCODING's name for e's representation: a collection's encoding;
 * a string as Redis' SET would encode it ("int", "embstr" up to 44 bytes,
 * "raw"; cairn does not keep APPEND's and SETRANGE's "raw" apart). */
const char *kv_encoding_name(const kv_entry *e);

typedef struct kv_entry kv_entry;
struct kv_entry {
    kv_entry *hnext;     /* hash chain */
    uint64_t create_rev; /* revision that created this incarnation */
    uint64_t mod_rev;    /* revision of the last write */
    uint64_t version;    /* writes since creation, 1 after the first */
    int64_t expire_ms;   /* absolute unix ms; 0 = never */
    char *value;
    uint32_t value_len;
    uint32_t key_len;
    uint32_t lru; /* coarse access clock for approximate LRU eviction */
    uint8_t level;
    uint8_t type;     /* KV_TYPE_* */
    uint8_t encoding; /* KV_ENC_*: a hashtable or quicklist is an object behind value */
    kv_entry *next[]; /* skiplist forward pointers [level], then key bytes */
};

static inline const char *kv_entry_key(const kv_entry *e)
{
    return (const char *)&e->next[e->level];
}

static inline bool kv_entry_expired(const kv_entry *e, int64_t now_ms)
{
    return e->expire_ms != 0 && e->expire_ms <= now_ms;
}

typedef struct kv_table {
    kv_entry **buckets;
    uint64_t mask; /* size - 1; size is a power of two or 0 */
    uint64_t used;
} kv_table;

typedef struct kv_keyspace {
    kv_table t[2];        /* t[1] is the target while rehashing */
    int64_t rehash_index; /* next bucket of t[0] to move, -1 when idle */
    uint64_t seed;
    kv_entry *head;          /* skiplist sentinel */
    int level;               /* highest level in use */
    uint64_t rng;            /* xorshift state for skiplist levels and sampling */
    size_t mem_bytes;        /* estimate of heap bytes held by entries and tables */
    uint64_t volatile_count; /* entries with an expiry */
    kv_limits limits;        /* the compact encodings' thresholds (replicated) */
    /* optional: asked for a key that kv_keyspace_find (or _delete) did not
     * find; may insert it and return its entry (kv/overlay.h faults keys in
     * from another store this way). NULL on every real keyspace. */
    kv_entry *(*on_miss)(void *ctx, struct kv_keyspace *ks, const char *key, size_t key_len);
    void *on_miss_ctx;
} kv_keyspace;

void kv_keyspace_init(kv_keyspace *ks, uint64_t seed);
void kv_keyspace_close(kv_keyspace *ks);
/* Remove every entry, keeping a small hash table for the next ones (a
 * scratch keyspace emptied and filled again for every script run; a big
 * one is cleared as kv_keyspace_clear clears it). */
void kv_keyspace_empty(kv_keyspace *ks);

static inline uint64_t kv_keyspace_count(const kv_keyspace *ks)
{
    return ks->t[0].used + ks->t[1].used;
}

kv_entry *kv_keyspace_find(kv_keyspace *ks, const char *key, size_t key_len);

/* Insert a new entry for a key that is not present. The value buffer is
 * copied. Returns the entry; its metadata fields are zero for the caller to
 * fill in. */
kv_entry *kv_keyspace_insert(kv_keyspace *ks, const char *key, size_t key_len, const char *value,
                             size_t value_len);

/* Replace an entry's value (copied). */
void kv_keyspace_set_value(kv_keyspace *ks, kv_entry *e, const char *value, size_t value_len);

/* Free whatever e holds (any type) and make it an empty string. */
void kv_keyspace_reset_value(kv_keyspace *ks, kv_entry *e);

/* Move from's value, whatever its type, to `to` (whose value is freed
 * first); from is left an empty string. */
void kv_keyspace_move_value(kv_keyspace *ks, kv_entry *from, kv_entry *to);

/* Take ownership of a malloc'd value buffer instead of copying it (strings
 * and packed encodings only). */
void kv_keyspace_set_value_owned(kv_keyspace *ks, kv_entry *e, char *value, size_t value_len);

/* A string's value grown to len bytes (the new ones zero), for a write
 * in place (SETBIT, BITFIELD); returns the value. */
char *kv_keyspace_grow_string(kv_keyspace *ks, kv_entry *e, size_t len);

/* Detach the value buffer (the caller owns it now); the entry is left with
 * an empty value. */
char *kv_keyspace_take_value(kv_keyspace *ks, kv_entry *e, size_t *len);

/* Set the expiry (0 = none), keeping volatile_count right. */
void kv_keyspace_set_expire(kv_keyspace *ks, kv_entry *e, int64_t expire_ms);

/* Remove and free the entry for key; returns true if it existed. */
bool kv_keyspace_delete(kv_keyspace *ks, const char *key, size_t key_len);

/* Remove everything. A big keyspace's entries are freed on the lazyfree
 * thread (kv/lazyfree.h), so FLUSHALL or a snapshot install does not
 * stall the loop. */
void kv_keyspace_clear(kv_keyspace *ks);
/* kv_keyspace_close, but the entries go as kv_keyspace_clear's do. */
void kv_keyspace_drop(kv_keyspace *ks);

/* Ordered iteration: the first entry with key >= (key, key_len), or, with
 * `after` set, the first entry with key > it. NULL at the end. */
kv_entry *kv_keyspace_seek(const kv_keyspace *ks, const char *key, size_t key_len, bool after);
static inline kv_entry *kv_keyspace_first(const kv_keyspace *ks)
{
    return ks->head->next[0];
}
static inline kv_entry *kv_keyspace_next(const kv_entry *e)
{
    return e->next[0];
}

/* Append an entry known to sort after every present key (snapshot restore
 * writes keys in order, so loading is O(n) instead of O(n log n)). `tail`
 * is a caller-owned array of KV_SKIPLIST_MAX_LEVEL pointers, all set to
 * NULL before the first call. */
kv_entry *kv_keyspace_append_sorted(kv_keyspace *ks, kv_entry **tail, const char *key,
                                    size_t key_len, const char *value, size_t value_len);

/* SCAN: visit the entries of one cursor step and return the next cursor (0
 * when done). Every key present from the start to the end of a full scan is
 * visited at least once; some may be visited twice. */
typedef void (*kv_scan_fn)(void *ctx, kv_entry *e);
uint64_t kv_keyspace_scan(kv_keyspace *ks, uint64_t cursor, kv_scan_fn fn, void *ctx);

/* A uniformly-ish random entry (bucket sampling), NULL when empty. */
kv_entry *kv_keyspace_random(kv_keyspace *ks);

/* Start loading the hash bucket key will land in, for a bulk loader that
 * knows its next keys ahead: the bucket is a cache (and TLB) miss per key
 * in a large table. A hint only; never needed for correctness. */
void kv_keyspace_prefetch(const kv_keyspace *ks, const char *key, size_t key_len);

/* Size the hash table for n entries up front (snapshot load), so loading
 * does not resize repeatedly. Only on an empty keyspace. */
void kv_keyspace_reserve(kv_keyspace *ks, uint64_t n);

/* Do up to n steps of incremental rehashing; returns true if more remain. */
bool kv_keyspace_rehash_step(kv_keyspace *ks, int n);

/* SCAN's cursor step over a table of mask + 1 buckets: increment the
 * bit-reversed cursor, higher bits first, so that buckets that split when
 * the table grows are never skipped (as Redis' dictScan). 0: done. */
static inline uint64_t kv_cursor_next(uint64_t v, uint64_t mask)
{
    v |= ~mask;
    v = ((v >> 1) & 0x5555555555555555ull) | ((v & 0x5555555555555555ull) << 1);
    v = ((v >> 2) & 0x3333333333333333ull) | ((v & 0x3333333333333333ull) << 2);
    v = ((v >> 4) & 0x0f0f0f0f0f0f0f0full) | ((v & 0x0f0f0f0f0f0f0f0full) << 4);
    v = __builtin_bswap64(v) + 1;
    v = ((v >> 1) & 0x5555555555555555ull) | ((v & 0x5555555555555555ull) << 1);
    v = ((v >> 2) & 0x3333333333333333ull) | ((v & 0x3333333333333333ull) << 2);
    v = ((v >> 4) & 0x0f0f0f0f0f0f0f0full) | ((v & 0x0f0f0f0f0f0f0f0full) << 4);
    return __builtin_bswap64(v);
}

/* Heap bytes a malloc of n bytes costs: glibc rounds chunks to 16 bytes
 * with an 8-byte header. Every type's memory estimate counts with it. */
static inline size_t kv_alloc_size(size_t n)
{
    return (n + 8 + 15) & ~(size_t)15;
}

/* Heap bytes one entry costs (for the memory estimate and eviction). */
size_t kv_entry_mem_bytes(const kv_entry *e);

#endif
