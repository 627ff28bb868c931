/* join: ask a running cluster to add this node (--join URL).
 *
 * The node starts without bootstrapping (see replica_create) and POSTs
 * {"id", "peer"} to URL/v1/cluster/members; any member relays it to the
 * leader, which adds the node as a spare and promotes it to voter once it
 * has caught up (snapshot plus log). Retried with backoff for up to a
 * minute (the cluster may be electing); "already a member" counts as done.
 * Loop thread only. */
#ifndef CAIRN_REPLICA_JOIN_H
#define CAIRN_REPLICA_JOIN_H

#include <stdint.h>
#include <uv.h>

typedef struct join join;

/* url: http://host:port of any member. Returns NULL (with a log line) if
 * the URL is unusable. */
join *join_start(uv_loop_t *loop, const char *url, uint64_t id, const char *peer_addr);
void join_stop(join *j);

#endif
