/* limits: the thresholds at which a collection leaves its compact
 * encoding (Redis' hash-max-listpack-entries and the like, and the size
 * at which a HyperLogLog turns dense).
 *
 * They are replicated state, not node configuration: a CONFIG SET goes
 * through the log (KV_OP_CONFIG) and snapshots keep them, so that every
 * replica converts a collection at the same element and holds the same
 * encoding. The keyspace carries them (kv_keyspace.limits) because every
 * type's writes consult them. A new limit applies to writes from then on;
 * a collection already converted stays converted and a compact one over a
 * lowered limit converts at its next write that grows it (as in Redis). */
#ifndef CAIRN_KV_LIMITS_H
#define CAIRN_KV_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* New limits go at the end: a snapshot's table of fewer is an older
 * binary's, and the limits it lacks load as their defaults. */
typedef enum kv_limit_id {
    KV_LIMIT_HASH_ENTRIES,       /* hash-max-listpack-entries */
    KV_LIMIT_HASH_VALUE,         /* hash-max-listpack-value (bytes) */
    KV_LIMIT_SET_INTSET_ENTRIES, /* set-max-intset-entries */
    KV_LIMIT_SET_ENTRIES,        /* set-max-listpack-entries (Redis 7.2's) */
    KV_LIMIT_SET_VALUE,          /* set-max-listpack-value (bytes) */
    KV_LIMIT_ZSET_ENTRIES,       /* zset-max-listpack-entries */
    KV_LIMIT_ZSET_VALUE,         /* zset-max-listpack-value (bytes) */
    KV_LIMIT_HLL_SPARSE,         /* hll-sparse-max-bytes */
    KV_LIMIT_LIST_SIZE,          /* list-max-listpack-size: signed, see below */
    KV_LIMIT_COUNT_
} kv_limit_id;

typedef struct kv_limits {
    uint64_t v[KV_LIMIT_COUNT_];
} kv_limits;

/* Redis' compiled-in defaults (the KV_*_LISTPACK_* and KV_SET_INTSET_
 * constants of kv/hash.h, kv/set.h, kv/zset.h). */
void kv_limits_default(kv_limits *l);

/* The limit a CONFIG parameter names (its name or Redis' older ziplist
 * alias, any case), or -1. */
int kv_limit_lookup(const char *name, size_t len);
const char *kv_limit_name(int id);
/* The older alias (hash-max-ziplist-entries ...), or NULL. */
const char *kv_limit_alias(int id);

/* Parse a value as Redis' CONFIG SET does: an entries limit is an integer
 * from 0 to INT64_MAX, a value limit a memory value (digits with an
 * optional k kb m mb g gb), list-max-listpack-size an int from INT_MIN to
 * INT_MAX kept as an int64_t in the u64 (kv_limit_signed). NULL and *out,
 * or Redis' reason why not. */
const char *kv_limit_parse(int id, const char *s, size_t len, uint64_t *out);
/* Whether a limit's value is signed (stored as an int64_t's bits). */
bool kv_limit_signed(int id);
/* list-max-listpack-size as Redis' quicklist reads it: a node holds
 * elements while they fit in *bytes (a negative size -1..-5: 4, 8, 16, 32
 * or 64 KiB; smaller ones count as -5) and number at most *count (a
 * positive size, at most 32767; 0 counts as 1; with a count, 8 KiB is the
 * size too). A node with no element takes any one. */
void kv_limit_list_node(const kv_limits *l, uint32_t *bytes, uint32_t *count);

/* A memory value as Redis' memtoull reads it (also for maxmemory). */
bool kv_limit_parse_memory(const char *s, size_t len, uint64_t *out);

#endif
