/* stream: Redis streams on keyspace entries (kv_entry.type KV_TYPE_STREAM,
 * encoding KV_ENC_STREAM: an object behind e->value).
 *
 * A stream is its entries in ID order — an ID is two u64, milliseconds and
 * a sequence number — each with its field/value pairs, plus what Redis
 * keeps beside them: the last ID ever added (new IDs must be greater, also
 * after the entry holding it was deleted), the number of entries ever
 * added and the greatest ID XDEL removed (trimming leaves it). Entries sit in an array (a live
 * range [head, head + len)), so appending, trimming from the front and a range lookup (binary
 * search) are cheap; XDEL moves the tail down.
 *
 * Redis packs entries into nodes of at most 100 (stream-node-max-entries)
 * and approximate trimming (`MAXLEN ~`) removes whole nodes only. Entries
 * here remember the node they would be in (by count: a node is full after
 * 100 appends; Redis also closes a node at 4096 bytes, which cairn does
 * not model), so `~` keeps what Redis keeps for streams of small entries.
 *
 * Unlike other collections, a stream may be empty: XADD MAXLEN 0 or XDEL
 * of every entry leaves the key in place, as in Redis. Functions that
 * change a stream keep the keyspace's memory estimate right. */
#ifndef CAIRN_KV_STREAM_H
#define CAIRN_KV_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/command.h"
#include "kv/keyspace.h"
#include "util/buf.h"

#define KV_STREAM_NODE_ENTRIES 100

typedef struct kv_stream_id {
    uint64_t ms, seq;
} kv_stream_id;

static inline int kv_stream_id_cmp(kv_stream_id a, kv_stream_id b)
{
    if (a.ms != b.ms) return a.ms < b.ms ? -1 : 1;
    if (a.seq != b.seq) return a.seq < b.seq ? -1 : 1;
    return 0;
}

/* Redis' text for an ID: "ms-seq" (at most 41 bytes with the NUL). */
int kv_stream_id_format(kv_stream_id id, char out[48]);
/* Parse "ms-seq" or "ms" (seq = missing_seq); false when malformed. With
 * seq_auto, "ms-*" is taken and *auto_seq set. */
bool kv_stream_id_parse(const char *p, size_t n, uint64_t missing_seq, kv_stream_id *id,
                        bool *auto_seq);

/* One entry: its ID and fields, read-only (valid until the stream changes). */
typedef struct kv_stream_entry kv_stream_entry;
kv_stream_id kv_stream_entry_id(const kv_stream_entry *x);
uint32_t kv_stream_entry_fields(const kv_stream_entry *x); /* pairs */
/* Field/value i of the entry. */
void kv_stream_entry_field(const kv_stream_entry *x, uint32_t i, kv_slice *field, kv_slice *value);

void kv_stream_init(kv_keyspace *ks, kv_entry *e);
uint64_t kv_stream_len(const kv_entry *e);
kv_stream_id kv_stream_last_id(const kv_entry *e);
kv_stream_id kv_stream_max_deleted(const kv_entry *e);
uint64_t kv_stream_entries_added(const kv_entry *e);
/* XSETID: the last ID, and when given (entries_added >= 0, max_deleted
 * not NULL) the count of entries ever added and the greatest deleted ID.
 * The caller checked what Redis checks (the ID not below the last entry's,
 * entries_added not below the length). */
void kv_stream_set_ids(kv_entry *e, kv_stream_id last, int64_t entries_added,
                       const kv_stream_id *max_deleted);
/* The number of nodes Redis' radix tree would hold for the stream and the
 * radix tree's own node count (XINFO STREAM's radix-tree-keys and -nodes),
 * from the node model above; a node's key is its first live entry's ID
 * (Redis keeps the ID of the node's first entry ever, also once deleted). */
void kv_stream_radix_shape(const kv_entry *e, uint64_t *keys, uint64_t *nodes);
/* The entry at position i (0 = the first), NULL past the end. */
const kv_stream_entry *kv_stream_at(const kv_entry *e, uint64_t i);
/* The position of the first entry with an ID >= id (len when none). */
uint64_t kv_stream_seek(const kv_entry *e, kv_stream_id id);

/* The ID XADD gives a new entry: *, ms-* or explicit, at now_ms. False
 * when it would not be greater than the last ID (or is 0-0, *zero set). */
bool kv_stream_next_id(const kv_entry *e, bool auto_ms, bool auto_seq, kv_stream_id want,
                       int64_t now_ms, kv_stream_id *out, bool *zero);
/* Append an entry (id greater than the last ID) with fields[0..2n). */
void kv_stream_append(kv_keyspace *ks, kv_entry *e, kv_stream_id id, const kv_slice *fields,
                      uint32_t npairs);
/* XDEL: true when the ID was there. */
bool kv_stream_delete(kv_keyspace *ks, kv_entry *e, kv_stream_id id);

/* Trimming (XADD's and XTRIM's MAXLEN / MINID, = or ~, LIMIT): how many
 * entries went. approx removes whole nodes only, at most limit entries
 * (0: no limit); exact trimming removes entries one by one, limit unused. */
uint64_t kv_stream_trim_maxlen(kv_keyspace *ks, kv_entry *e, uint64_t maxlen, bool approx,
                               uint64_t limit);
uint64_t kv_stream_trim_minid(kv_keyspace *ks, kv_entry *e, kv_stream_id minid, bool approx,
                              uint64_t limit);

/* A copy of src's stream into dst (a fresh entry with no value). */
void kv_stream_copy(kv_keyspace *ks, kv_entry *dst, const kv_entry *src);

size_t kv_stream_mem(const void *stream);
void kv_stream_free(void *stream);

/* Snapshots: last id | max deleted | entries added | tail node's id and
 * appends | count | count x (node u64 | ms | seq | u32 pairs | pairs x
 * (u32 len | bytes) x 2), then, when the stream has consumer groups, their
 * table (kv_sg_set_serialize, kv/stream_group.h); load: false (nothing
 * changed) when malformed. */
void kv_stream_serialize(const kv_entry *e, buf *out);
bool kv_stream_load(kv_keyspace *ks, kv_entry *e, const char *data, size_t len);

#endif
