/* lazyfree: libraft's heap, with frees on the loop thread paced.
 *
 * After a snapshot, libraft drops every log entry it held in memory at
 * once, one raft_free per entry. With 100k entries between snapshots that
 * was a 450 ms stall of the loop (1.6 s at 400k), measured by
 * cairn_loop_lag_seconds. As Redis does with lazyfree, frees made on the
 * loop thread are queued and released a bounded batch per loop iteration;
 * frees from other threads (libraft's I/O workers) happen at once. */
#ifndef CAIRN_REPLICA_LAZYFREE_H
#define CAIRN_REPLICA_LAZYFREE_H

#include <stddef.h>
#include <uv.h>

/* Install as libraft's heap; call on the loop thread before raft_init. */
void lazyfree_install(uv_loop_t *loop);
/* Free everything queued (shutdown). */
void lazyfree_flush(void);
/* Pointers waiting to be freed (for metrics). */
size_t lazyfree_pending(void);

#endif
