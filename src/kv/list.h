/* list: Redis lists stored on keyspace entries (kv_entry.type
 * KV_TYPE_LIST), in the encoding Redis 7.0 gives every list: a quicklist,
 * a doubly linked chain of nodes, each a packed run of elements
 * (LEB128 length | bytes, ...) within list-max-listpack-size's limits
 * (kv/limits.h: by default 8 KiB of elements, -2) unless one element alone
 * is larger. Pushing
 * and popping at either end touch one node; an index walks the nodes by
 * their counts. The chain lives behind e->value (e->value_len 0).
 *
 * Functions that change a list keep the keyspace's memory estimate right.
 * An empty list is deleted by the caller (Redis has no empty lists).
 * Indexes are Redis': negative ones count from the tail. */
#ifndef CAIRN_KV_LIST_H
#define CAIRN_KV_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/command.h"
#include "kv/keyspace.h"
#include "util/buf.h"

/* Make e (a fresh entry with no value) an empty list. */
void kv_list_init(kv_keyspace *ks, kv_entry *e);

uint64_t kv_list_len(const kv_entry *e);
void kv_list_push(kv_keyspace *ks, kv_entry *e, kv_slice v, bool head);
/* Pop one element into out (appended); false when the list is empty. */
bool kv_list_pop(kv_keyspace *ks, kv_entry *e, bool head, buf *out);
/* The element at a Redis index (valid until the list changes). */
bool kv_list_index(const kv_entry *e, int64_t index, kv_slice *v);
/* LSET: false when the index is out of range. */
bool kv_list_set(kv_keyspace *ks, kv_entry *e, int64_t index, kv_slice v);
/* LREM: count > 0 from the head, < 0 from the tail, 0 all; how many went. */
int64_t kv_list_rem(kv_keyspace *ks, kv_entry *e, int64_t count, kv_slice v);
/* LTRIM with Redis' index rules (the list may become empty). */
void kv_list_trim(kv_keyspace *ks, kv_entry *e, int64_t start, int64_t stop);
/* LINSERT: false when the pivot is not there. */
bool kv_list_insert(kv_keyspace *ks, kv_entry *e, bool before, kv_slice pivot, kv_slice v);

/* Walk from a 0-based position towards the tail. The list must not change
 * during the walk. */
typedef struct kv_list_iter {
    const void *node;
    uint32_t pos, left; /* byte offset in the node, elements left in it */
} kv_list_iter;
void kv_list_iter_init(kv_list_iter *it, const kv_entry *e, uint64_t from);
bool kv_list_iter_next(kv_list_iter *it, kv_slice *v);

/* Visit every element with its 0-based position, from the head or from
 * the tail, until fn returns false. */
typedef bool (*kv_list_visit_fn)(void *ctx, uint64_t pos, kv_slice v);
void kv_list_walk(const kv_entry *e, bool from_tail, kv_list_visit_fn fn, void *ctx);

/* The shape of a list's nodes (tests check the node limits with it). */
typedef struct kv_list_node_stats {
    uint64_t nodes;
    uint32_t most_elements;       /* in one node */
    uint32_t most_bytes;          /* of one node's packed elements */
    uint32_t most_bytes_elements; /* elements of that node */
} kv_list_node_stats;
void kv_list_stats(const kv_entry *e, kv_list_node_stats *st);

size_t kv_list_mem(const void *list);
void kv_list_free(void *list);

/* Snapshots: u32 count | count x (u32 len | bytes), built back into nodes
 * on load; false (nothing changed) when data is not a well-formed list. */
size_t kv_list_serialized_len(const kv_entry *e);
bool kv_list_load(kv_keyspace *ks, kv_entry *e, const char *data, size_t len);

#endif
