/* seed: write every live key of a keyspace into this node's store through
 * Raft, before it serves clients: how a restore (--restore-from-postgres;
 * later backups and RDB files) becomes an ordinary, replicated and
 * durable history. Each key is one PUT (value and absolute expiry; keys
 * already expired are left out), or for a hash, list, set, sorted set or
 * stream one RESTORE of its DUMP payload (kv/dump.h); up to
 * SEED_BATCH_KEYS of them are the steps of one transaction entry
 * (kv/transaction.h), at most SEED_WINDOW entries in flight. The
 * revisions are the new cluster's own, starting at 1.
 *
 * Runs the loop itself until done (the node is not listening yet): waits
 * for this node to lead a cluster of one, then proposes. Loop thread. */
#ifndef CAIRN_REPLICA_SEED_H
#define CAIRN_REPLICA_SEED_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "kv/store.h"
#include "replica/replica.h"

#define SEED_WINDOW 16                 /* entries in flight */
#define SEED_BATCH_KEYS 512            /* keys per entry, at most */
#define SEED_BATCH_BYTES (1024 * 1024) /* and about this many bytes */

/* 0 with *written set, or -1 with err (no leader within timeout_s, or a
 * write that failed). */
int replica_seed(uv_loop_t *loop, replica *r, kv_store *from, double timeout_s, uint64_t *written,
                 char *err, size_t errlen);
/* One more write through the log (a restore's function libraries), after
 * replica_seed made this node the leader: 0, or -1 with err. */
int replica_seed_command(uv_loop_t *loop, replica *r, kv_command *cmd, char *err, size_t errlen);

#endif
