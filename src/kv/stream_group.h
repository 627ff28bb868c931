/* stream_group: a stream's consumer groups (XGROUP, XREADGROUP, XACK,
 * XCLAIM, XPENDING), as Redis keeps them, in the stream's object.
 *
 * A group has a name, the last ID it delivered, a count of entries read
 * (for XINFO's lag; -1 when unknown, as Redis' SCG_INVALID_ENTRIES_READ),
 * its consumers (in name order, as Redis lists them) and its pending entries list (PEL):
 * per delivered, not yet acknowledged ID, the consumer that has it, when
 * it was last delivered and how often. Everything is changed by apply
 * only, at the command's time (now_ms), so every replica holds the same
 * groups and a failover loses no pending entry: groups are state, copied
 * by COPY, kept in snapshots (the stream's value). */
#ifndef CAIRN_KV_STREAM_GROUP_H
#define CAIRN_KV_STREAM_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/keyspace.h"
#include "kv/stream.h"
#include "util/buf.h"

typedef struct kv_sg_consumer {
    char *name;
    uint32_t name_len;
    int64_t seen_ms;  /* last interaction (XINFO CONSUMERS' idle) */
    uint64_t pending; /* entries of the PEL it has */
} kv_sg_consumer;

typedef struct kv_sg_pending {
    kv_stream_id id;
    kv_sg_consumer *owner;
    int64_t delivered_ms;
    uint64_t deliveries;
} kv_sg_pending;

typedef struct kv_sg {
    char *name;
    uint32_t name_len;
    kv_stream_id last_id;
    int64_t entries_read; /* -1: unknown */
    kv_sg_pending *pel;   /* by ID */
    uint64_t npel, cappel;
    kv_sg_consumer **consumers; /* in name order (bytewise), as Redis lists them */
    uint32_t nconsumers, capc;
} kv_sg;

typedef struct kv_sg_set {
    kv_sg **groups; /* in name order (bytewise), as Redis lists them */
    uint32_t n, cap;
} kv_sg_set;

/* The stream's groups (NULL: none ever). */
const kv_sg_set *kv_sg_groups(const kv_entry *e);
kv_sg *kv_sg_find(const kv_entry *e, const char *name, size_t len);

/* XGROUP CREATE: NULL when the name exists. */
kv_sg *kv_sg_create(kv_keyspace *ks, kv_entry *e, const char *name, size_t len,
                    kv_stream_id last_id, int64_t entries_read);
bool kv_sg_destroy(kv_keyspace *ks, kv_entry *e, const char *name, size_t len);

kv_sg_consumer *kv_sg_consumer_find(const kv_sg *g, const char *name, size_t len);
/* The consumer, created when absent (*created told). */
kv_sg_consumer *kv_sg_consumer_get(kv_keyspace *ks, kv_entry *e, kv_sg *g, const char *name,
                                   size_t len, int64_t now_ms, bool *created);
/* XGROUP DELCONSUMER: its pending entries go too; how many. */
uint64_t kv_sg_consumer_delete(kv_keyspace *ks, kv_entry *e, kv_sg *g, kv_sg_consumer *c);

/* The PEL position of the first ID >= id (npel when none); the entry of
 * id, or NULL. */
uint64_t kv_sg_pel_seek(const kv_sg *g, kv_stream_id id);
kv_sg_pending *kv_sg_pel_find(const kv_sg *g, kv_stream_id id);

/* XREADGROUP >: deliver the entry id to c (into the PEL unless noack;
 * an ID already pending changes owner and restarts its count), and move
 * the group's last ID and entries read as Redis does. */
void kv_sg_deliver(kv_keyspace *ks, kv_entry *e, kv_sg *g, kv_sg_consumer *c, kv_stream_id id,
                   int64_t now_ms, bool noack);
/* Put id in the PEL for c, delivered at now_ms once (an ID already
 * pending changes owner and restarts its count). */
kv_sg_pending *kv_sg_pel_add(kv_keyspace *ks, kv_entry *e, kv_sg *g, kv_sg_consumer *c,
                             kv_stream_id id, int64_t now_ms);
/* XACK of one ID: true when it was pending. */
/* XINFO's lag of g: entries added minus the group's entries read, when
 * Redis can tell it (streamReplyWithCGLag); false when it cannot (null). */
bool kv_sg_lag(const kv_entry *e, const kv_sg *g, int64_t *lag);
/* Redis' streamEstimateDistanceFromFirstEverEntry: the entries read by a
 * group whose last ID is id, when the stream can tell (else -1). */
int64_t kv_sg_estimate_read(const kv_entry *e, kv_stream_id id);
bool kv_sg_ack(kv_keyspace *ks, kv_entry *e, kv_sg *g, kv_stream_id id);
/* kv_sg_claim's deliveries other than a count */
enum { KV_SG_DELIVERIES_ADD = -1, KV_SG_DELIVERIES_KEEP = -2 };
/* XCLAIM: p (of g's PEL) to c, delivered at delivered_ms, deliveries
 * times (or KV_SG_DELIVERIES_ADD: one more; _KEEP: as it was). */
void kv_sg_claim(kv_sg *g, kv_sg_pending *p, kv_sg_consumer *c, int64_t delivered_ms,
                 int64_t deliveries);
/* An ID the PEL has but the stream no longer does: dropped (XCLAIM,
 * XAUTOCLAIM do that in Redis 7). */
void kv_sg_pel_remove(kv_keyspace *ks, kv_entry *e, kv_sg *g, kv_sg_pending *p);

/* For kv/stream.c: copy, free, memory, snapshot. The serialized form:
 * u32 groups, each: u32 len | name | u64 ms | u64 seq | i64 entries read
 * | u32 consumers, each (u32 len | name | i64 seen) | u64 pel, each (u64 ms
 * | u64 seq | u32 consumer index | i64 delivered | u64 deliveries). */
kv_sg_set *kv_sg_set_copy(const kv_sg_set *s);
void kv_sg_set_free(kv_sg_set *s);
size_t kv_sg_set_mem(const kv_sg_set *s);
void kv_sg_set_serialize(const kv_sg_set *s, buf *out);
/* Parse what kv_sg_set_serialize wrote (all of data); NULL when malformed. */
kv_sg_set *kv_sg_set_load(const char *data, size_t len, bool *ok);

#endif
