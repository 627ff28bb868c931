/* resp_api: the Redis protocol front end (SPEC §3) on top of net/server.
 *
 * Speaks RESP2, and RESP3 after HELLO 3; inline and multibulk commands,
 * pipelined to any depth. Commands work on the same keyspace as the REST
 * API and through the same paths: writes are kv commands proposed to the
 * replica and answered once committed and applied; reads are linearizable
 * (replica_read) unless the connection said READONLY.
 *
 * Replies on one connection come in request order. Writes may be
 * pipelined (the log keeps their order); any other command waits until
 * every earlier request of its connection has completed, so a client
 * always reads its own writes. When a command cannot start yet, parsing
 * stops and reading pauses (backpressure) until the connection's queue
 * drains; the command stays unconsumed in the input and is parsed again.
 * The same backpressure caps the requests one connection has in flight
 * (min(1024, --max-inflight)), so a deep write pipeline is slowed down
 * rather than shed with -BUSY.
 *
 * The resp_api object owns the command index, the per-command metric
 * pointers and the list of open connections (CLIENT LIST, INFO); it is the
 * proto_ctx of the listener. Loop thread only. Details: docs/resp.md. */
#ifndef CAIRN_API_RESP_API_H
#define CAIRN_API_RESP_API_H

#include "api/api.h"
#include "net/server.h"

typedef struct resp_api resp_api;

extern const net_proto resp_api_proto;

/* Build the command index and register metrics; pass the result as the
 * listener's proto_ctx. */
resp_api *resp_api_create(api *a, uv_loop_t *loop);
/* After every connection is closed (net_server_close has completed). */
void resp_api_destroy(resp_api *ra);

#endif
