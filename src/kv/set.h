/* set: Redis sets stored on keyspace entries (kv_entry.type KV_TYPE_SET).
 *
 * Three encodings, as Redis 7.2 has them:
 *  - intset: while every member is an integer (as Redis reads one: a
 *    canonical decimal int64) and there are at most set-max-intset-entries,
 *    a sorted array in the entry's value buffer,
 *      u8 width (2, 4 or 8) | u32 count | count x int (little endian),
 *    the narrowest width that holds every member (SMEMBERS lists them in
 *    ascending order, as Redis does);
 *  - listpack and hashtable: the hash module's two encodings (kv/hash.h)
 *    with empty values, in their order (kv/hash.h): a packed array while the set
 *    has at most 128 members of at most 64 bytes by default
 *    (set-max-listpack-entries/-value, kv/limits.h), then a hash table.
 * A set converts intset -> listpack or hashtable, listpack -> hashtable,
 * never back (nor does Redis'), so the encoding depends only on the
 * commands applied and every replica holds the same one.
 *
 * An empty set is deleted by the caller (Redis has no empty sets). */
#ifndef CAIRN_KV_SET_H
#define CAIRN_KV_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/command.h"
#include "kv/hash.h"
#include "kv/keyspace.h"

#define KV_SET_INTSET_ENTRIES 512

/* Make e (a fresh entry with no value) an empty intset set. */
void kv_set_init(kv_keyspace *ks, kv_entry *e);

uint64_t kv_set_len(const kv_entry *e);
bool kv_set_contains(const kv_entry *e, kv_slice member);
/* Add member: true when it was not there. */
bool kv_set_add(kv_keyspace *ks, kv_entry *e, kv_slice member);
/* Remove member: true when it was there. */
bool kv_set_remove(kv_keyspace *ks, kv_entry *e, kv_slice member);

/* Every member once: ascending for an intset, the hash's order otherwise.
 * An intset member is written as text into the iterator's buffer, valid
 * until the next call. The set must not change during the walk. */
typedef struct kv_set_iter {
    const kv_entry *e;
    uint64_t i;        /* intset */
    kv_hash_iter hash; /* listpack, hashtable */
    char num[24];
} kv_set_iter;
void kv_set_iter_init(kv_set_iter *it, const kv_entry *e);
bool kv_set_iter_next(kv_set_iter *it, kv_slice *member);

/* Visit the members at the given positions of the iteration order (idx
 * ascending, repeats allowed), in one walk. */
typedef void (*kv_set_pick_fn)(void *ctx, kv_slice member);
void kv_set_pick(const kv_entry *e, const uint64_t *idx, size_t n, kv_set_pick_fn fn, void *ctx);
/* n distinct positions below len (n <= len), ascending, drawn from rnd. */
void kv_set_sample(uint64_t len, uint64_t n, uint64_t (*rnd)(void *), void *rctx, uint64_t *out);

/* SINTER, SUNION, SDIFF of sets (NULL: a missing key, an empty set) into
 * out, an empty set of ks. */
enum { KV_SET_INTER = 0, KV_SET_UNION = 1, KV_SET_DIFF = 2 };
void kv_set_combine(kv_keyspace *ks, kv_entry *out, const kv_entry *const *sets, size_t n, int op);
/* SINTERCARD: the intersection's size, counting stops at limit (0: none). */
uint64_t kv_set_intercard(const kv_entry *const *sets, size_t n, uint64_t limit);

/* SSCAN: like kv_hash_scan; an intset or listpack in one step. */
typedef void (*kv_set_scan_fn)(void *ctx, kv_slice member);
uint64_t kv_set_scan(const kv_entry *e, uint64_t cursor, kv_set_scan_fn fn, void *ctx);

/* Snapshots: an intset as its array; the others in the hash layout. */
size_t kv_set_serialized_len(const kv_entry *e);
void kv_set_serialize(const kv_entry *e, char *out);
bool kv_set_load(kv_keyspace *ks, kv_entry *e, int encoding, const char *data, size_t len);

#endif
