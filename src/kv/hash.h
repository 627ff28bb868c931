/* hash: Redis hashes stored on keyspace entries (kv_entry.type
 * KV_TYPE_HASH).
 *
 * Two encodings, as Redis 7 has them:
 *  - listpack: a packed array in the entry's value buffer,
 *      u32 count | count x (field | value)
 *    each a kv/packed.h element (LEB128 length, then bytes), in insertion
 *    order (HSET of a new field appends, HDEL closes the gap),
 *    while the hash has at most hash-max-listpack-entries fields and no
 *    field or value is longer than hash-max-listpack-value bytes;
 *  - hashtable: a chained hash table behind e->value (e->value_len 0),
 *    once either limit is passed; its nodes also sit in one dense array
 *    (insertion order, a deleted field's slot taken by the last one), so
 *    that listings and snapshots are the same on every replica whatever
 *    its hash seed and a position is found in O(1). A hash never converts back (nor does
 *    Redis'), so the encoding depends only on the commands applied, and
 *    every replica holds the same one; snapshots record it.
 * The limits are the keyspace's (kv/limits.h: CONFIG SET through the
 * log), by default Redis' for hash-max-listpack-entries and
 * hash-max-listpack-value (redis-server's built-in 512 and 64; the 128 of
 * the sample redis.conf is not the default).
 *
 * Functions that change a hash keep the keyspace's memory estimate right.
 * An empty hash is deleted by the caller (Redis has no empty hashes). */
#ifndef CAIRN_KV_HASH_H
#define CAIRN_KV_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/command.h"
#include "kv/keyspace.h"

#define KV_HASH_LISTPACK_ENTRIES 512 /* redis-server's compiled-in default */
/* a set (kv/set.h) past its intset keeps its members here with empty
 * values, under set-max-listpack-entries (Redis 7.2's default) */
#define KV_SET_LISTPACK_ENTRIES 128
#define KV_HASH_LISTPACK_VALUE 64

/* Make e (a fresh entry with no value) an empty listpack hash. */
void kv_hash_init(kv_keyspace *ks, kv_entry *e);

uint64_t kv_hash_len(const kv_entry *e);
bool kv_hash_get(const kv_entry *e, kv_slice field, kv_slice *value);
/* Set field to value: 1 when the field is new, 0 when it was replaced. */
int kv_hash_set(kv_keyspace *ks, kv_entry *e, kv_slice field, kv_slice value);
/* Remove field: true when it was there. */
bool kv_hash_del(kv_keyspace *ks, kv_entry *e, kv_slice field);

/* Every field once, in the hash's order (insertion order in a listpack;
 * in a table too until a delete moves the last field into the gap): the
 * same on every replica. The hash must not change during the walk. */
typedef struct kv_hash_iter {
    const kv_entry *e;
    size_t pos;  /* listpack: byte offset; hashtable: the next slot */
    size_t left; /* listpack */
} kv_hash_iter;
void kv_hash_iter_init(kv_hash_iter *it, const kv_entry *e);
bool kv_hash_iter_next(kv_hash_iter *it, kv_slice *field, kv_slice *value);

/* The object behind a hashtable-encoded entry: its heap bytes, and freeing
 * it (the keyspace calls these). */
/* The fields at walk positions idx[0..n) (ascending; a position may
 * repeat), in that order: O(1) each in a table, one walk in a listpack
 * (SPOP, SRANDMEMBER, HRANDFIELD). */
typedef void (*kv_hash_pick_fn)(void *ctx, kv_slice field, kv_slice value);
void kv_hash_pick(const kv_entry *e, const uint64_t *idx, size_t n, kv_hash_pick_fn fn, void *ctx);

/* HSCAN: visit the fields of one cursor step and return the next cursor
 * (0: done). A listpack is visited whole in one step (as Redis does); a
 * table one bucket, with SCAN's guarantee across growth. */
typedef void (*kv_hash_scan_fn)(void *ctx, kv_slice field, kv_slice value);
uint64_t kv_hash_scan(const kv_entry *e, uint64_t cursor, kv_hash_scan_fn fn, void *ctx);

size_t kv_hash_table_mem(const void *table);
void kv_hash_table_free(void *table);

/* Snapshots: a hash is written in one layout whatever its encoding,
 *      u32 count | count x (u32 field_len | field | u32 value_len | value)
 * (serialized_len bytes, then the encoding byte decides how it is loaded;
 * the layout is that of the listpack encoding before it took LEB128
 * lengths, so every snapshot ever written loads). kv_hash_serialize hands
 * it to out piece by piece and stops at out's first nonzero answer, which
 * it returns. kv_hash_load checks the layout and builds the encoding named;
 * false (nothing changed) when data is not a well-formed hash. */
typedef int (*kv_hash_out_fn)(void *ctx, const void *p, size_t n);
size_t kv_hash_serialized_len(const kv_entry *e);
int kv_hash_serialize(const kv_entry *e, kv_hash_out_fn out, void *ctx);
bool kv_hash_load(kv_keyspace *ks, kv_entry *e, int encoding, const char *data, size_t len);

#endif
