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

#include "util/config.h"

typedef struct join join;

/* Join through cfg->join as node cfg->id with peer address
 * cfg->listen_peer. The URL is http[s]://[user:password@]host:port of any
 * member. When the node serves TLS (cfg->tls_cert) the request goes over
 * TLS whatever the scheme, checked and authenticated like forwarding (see
 * tls_ctx_create_client); https:// without --tls-cert is refused. Returns
 * NULL (with a log line) if the URL or the TLS files are unusable. */
join *join_start_config(uv_loop_t *loop, const cairn_config *cfg);
void join_stop(join *j);

#endif
