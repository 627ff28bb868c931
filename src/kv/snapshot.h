/* snapshot: serialise the whole store, and load it back.
 *
 * Format (little-endian), version 9 (1: no member table, 2: no dedup table,
 * 3: strings only, no type bytes; 4: no sets; 5: no limits, the defaults;
 * 6: a string's encoding byte is always 0):
 *   "CAIRNSNP" | u32 version | u32 reserved | u64 revision | u64 count
 *   count x ( u32 key_len | u32 value_len | u64 create_rev | u64 mod_rev
 *             | u64 version | i64 expire_ms | (version >= 4) u8 type | u8 encoding
 *             | key | value )
 *   where a string's encoding is KV_ENC_RAW (by its content), STR_RAW or
 *   STR_EMBSTR (kv/keyspace.h); a hash's value is its listpack layout (kv/hash.h) whatever its
 *   encoding, and the encoding byte says which one to rebuild; a list's is
 *   u32 count | count x (u32 len | bytes) (kv/list.h); a set's is its intset
 *   array (kv/set.h) or, listpack or hashtable, the hash layout with empty
 *   values; a sorted set's its listpack layout (kv/zset.h)
 *   (version >= 2) u32 n_members, n x (u64 id | u16 len | http | u16 len | resp)
 *   (version >= 3) u32 n_dedup, n x (u8 key_len | key | u32 status | i64 integer
 *                  | u64 revision | u64 create_rev | u64 mod_rev | u64 version), oldest first
 *   (version >= 6) u32 n (<= KV_LIMIT_COUNT_), n x u64: the encodings' limits
 *                  (kv/limits.h) in kv_limit_id order; those past n at their defaults
 *   (version >= 9) u32 n_libraries, n x (u32 len | name | u32 len | code | u32 nfn
 *                  | nfn x (u32 len | function name)): FUNCTION's (kv/functions.h)
 *   u32 crc32c of everything before it
 * Keys are written in byte order, so loading can append to the skiplist
 * in O(1) per key, and the loader can check the order as a sanity test.
 *
 * The writer allocates nothing: it runs in a forked child (see
 * replica/fsm), where another thread of the parent may have held the
 * allocator's lock at the moment of fork(). */
#ifndef CAIRN_KV_SNAPSHOT_H
#define CAIRN_KV_SNAPSHOT_H

#include <stddef.h>

#include "kv/store.h"

/* Sink for the writer: write all n bytes or return a negative errno. */
typedef int (*kv_snapshot_sink)(void *ctx, const void *p, size_t n);

int kv_snapshot_write(const kv_store *s, kv_snapshot_sink sink, void *ctx);

/* Sinks for a file descriptor (ctx = int*) and for a buf (ctx = buf*). */
int kv_snapshot_sink_fd(void *ctx, const void *p, size_t n);
int kv_snapshot_sink_buf(void *ctx, const void *p, size_t n);

/* Load data[0..len) into s, replacing its contents. On error s is
 * unchanged and err (of errlen bytes) says what is wrong and at which
 * offset. Returns 0 or -1. */
int kv_snapshot_load(kv_store *s, const char *data, size_t len, char *err, size_t errlen);

#endif
