/* txlog: the PostgreSQL transaction log of the original design
 * (--txlog-postgres URL).
 *
 * *Cloud Native Go*'s key-value service wrote every change to a
 * `transactions` table and replayed it at start. Here the Raft log is the
 * durable log; this is a copy of the committed changes in PostgreSQL, for
 * people who want their data where their SQL is, and to rebuild a store
 * from (--restore-from-postgres, later).
 *
 * Every node records each change its store applies (kv_store.on_change:
 * committed entries only, in revision order) into a bounded in-memory
 * buffer; only the leader ships. A thread of its own ships the buffer in
 * batches, each one PostgreSQL transaction that locks the progress row,
 * skips what is already there, COPYs the rest and advances the progress
 * row: so a re-delivery after a reconnect or a leader change (the new
 * leader starts from the progress row, out of its own buffer) neither
 * duplicates nor skips an event. The write path never waits for
 * PostgreSQL: recording is a memcpy under a mutex; when PostgreSQL is down
 * or slow the buffer grows up to its bound, then the oldest events are
 * dropped. When PostgreSQL needs changes that no longer are buffered, the
 * leader fills the gap with a base: a copy of its keyspace written as one
 * revision (txlog.c; docs/operations.md).
 *
 * Tables (created if missing):
 *   cairn_txlog(revision bigint, seq int, event_type smallint (1 put of a
 *     string, 2 delete, 3 flush, 4 base: what came before is replaced by
 *     the puts of this revision, 5 put of a hash, list, set, sorted set or
 *     stream: value is the key's whole value after the change as Redis'
 *     DUMP serializes it, kv/dump.h), key bytea, value bytea, expire_ms
 *     bigint (NULL: no expiry), commit_ms bigint, PRIMARY KEY (revision,
 *     seq))
 * A value of type 5 costs a serialization of the whole collection per
 * change, so collections holding more than TXLOG_TYPED_MAX_BYTES of
 * memory are recorded as deleted (counted: skipped_typed_total) rather
 * than stall the loop; docs/operations.md says so.
 *   cairn_txlog_progress(id = 1, revision bigint, updated_at timestamptz)
 * A revision is the primary key of a change; commands that change several
 * keys at one revision (MSET, DEL k1 k2, RENAME) number them with seq.
 *
 * txlog_on_change and txlog_set_leader run on the loop thread;
 * txlog_get_status on any thread. */
#ifndef CAIRN_TXLOG_TXLOG_H
#define CAIRN_TXLOG_TXLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/store.h"

#define TXLOG_DEFAULT_BUFFER_BYTES (64u * 1024 * 1024)
#define TXLOG_EVENT_TYPED 5              /* event_type of a DUMP-serialized value */
#define TXLOG_TYPED_MAX_BYTES (1u << 20) /* bigger collections: recorded as deleted */

typedef struct txlog txlog;

typedef struct txlog_status {
    bool connected;           /* a PostgreSQL connection is open */
    bool leader;              /* this node ships */
    bool gap;                 /* PostgreSQL needs changes no longer buffered */
    uint64_t recorded;        /* newest revision recorded */
    uint64_t shipped;         /* progress row as last read or written */
    uint64_t lag;             /* recorded - shipped (0 if shipped is ahead) */
    uint64_t buffered_events; /* events held in memory */
    uint64_t buffered_bytes;
    uint64_t shipped_events_total;
    uint64_t batches_total;
    uint64_t errors_total;
    uint64_t dropped_events_total; /* dropped from a full buffer */
    uint64_t bases_total;          /* keyspace copies written to fill a gap */
    uint64_t skipped_typed_total;  /* collections past TXLOG_TYPED_MAX_BYTES */
    char last_error[256];
} txlog_status;

/* Start the shipping thread for libpq connection string `url` (a URL or
 * key=value pairs); nothing connects until this node leads. Returns NULL
 * with err set when url cannot be parsed. */
txlog *txlog_new(const char *url, size_t buffer_bytes, char *err, size_t errlen);

/* kv_store_change_fn: record one change (ctx is the txlog). */
void txlog_on_change(void *ctx, const kv_change *c);

/* The store whose keyspace a base copies (loop thread, before start). */
void txlog_attach_store(txlog *t, kv_store *store);

/* Loop thread, every ~100 ms: copies a bounded number of keys into a base
 * while one is being made (see txlog.c). now_ms: the wall clock. */
void txlog_tick(txlog *t, int64_t now_ms);

/* Ship only while this node leads (or is a single node). */
void txlog_set_leader(txlog *t, bool leader);

void txlog_get_status(txlog *t, txlog_status *st);

/* cairn_txlog_* gauges and counters in /metrics (loop thread). */
void txlog_register_metrics(txlog *t);

/* Stop the thread (waits at most for the running PostgreSQL call, which
 * has a deadline) and free everything. NULL is fine. */
void txlog_free(txlog *t);

#endif
