/* http_api: the REST API of SPEC §2 on top of net/server.
 *
 * Requests on one connection are answered in order. Writes may be
 * pipelined (the log keeps their order), but a read waits until every
 * earlier request of its connection has completed, so a client always
 * reads its own writes; when a request cannot start yet, parsing simply
 * stops and resumes once the connection's queue drains.
 * Loop thread only. */
#ifndef CAIRN_API_HTTP_API_H
#define CAIRN_API_HTTP_API_H

#include "api/api.h"
#include "net/server.h"

extern const net_proto http_api_proto;

/* Register HTTP metrics (once, before serving). */
void http_api_init(api *a);

#endif
