/* http_internal: what the HTTP modules share (http_api: connections and
 * routing; http_keys: key and listing handlers; http_ops: health, status,
 * metrics). Not a public interface. */
#ifndef CAIRN_API_HTTP_INTERNAL_H
#define CAIRN_API_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "api/api.h"
#include "api/auth.h"
#include "net/http_parser.h"
#include "net/server.h"
#include "replica/replica.h"
#include "util/buf.h"

enum http_route {
    ROUTE_KEY = 0,
    ROUTE_KEYS,
    ROUTE_HEALTHZ,
    ROUTE_READYZ,
    ROUTE_METRICS,
    ROUTE_STATUS,
    ROUTE_CLUSTER,
    ROUTE_CLUSTER_MEMBERS,
    ROUTE_CLUSTER_MEMBER,
    ROUTE_CLUSTER_LEADER,
    ROUTE_INTERNAL_REMOVE,
    ROUTE_INTERNAL_PROPOSE,
    ROUTE_INTERNAL_READ_INDEX,
    ROUTE_AUTH_TOKEN,
    ROUTE_OTHER,
    ROUTE_COUNT_
};

typedef struct http_conn http_conn;
typedef struct http_req http_req;

struct http_req {
    http_conn *hc;
    api *a;
    replica_req rreq;
    int route;
    http_method method;
    bool head_only; /* HEAD: headers of GET, no body */
    bool done;
    bool close_after;       /* answer with Connection: close */
    bool http10_keep_alive; /* HTTP/1.0 asked for keep-alive: say yes */
    bool forwarded;         /* came from another node (X-Cairn-Forwarded) */
    bool rate_checked;      /* answer with the X-RateLimit headers */
    uint64_t rate_remaining;
    const char *peer_ip;    /* the client's address (net_conn.peer_ip) */
    const users_user *user; /* authenticated user, during dispatch only */
    bool peer_trusted;      /* another node's request, from a member's host */
    uint64_t start_ns;
    char request_id[96];
    buf key;  /* decoded key, or listing prefix */
    buf resp; /* the whole response, written when its turn comes */
    /* read parameters */
    int consistency;
    uint64_t min_revision;
    bool has_if_none_match;
    uint64_t if_none_match_rev;
    /* listing parameters */
    buf cursor;
    uint64_t limit;
    bool values;
    /* An admin call (membership change, transfer, relay to the leader) holds
     * this request as its callback context and cannot be cancelled: if the
     * client goes away first the request is orphaned, not freed, and the
     * callback frees it (http_req_admin_return). */
    bool admin_waiting;
    bool orphaned;
    http_req *next;
};

/* Parsed query string parameter lookup: returns true and the decoded value
 * in out when present. */
bool http_query_get(const char *query, size_t query_len, const char *name, buf *out);

/* Build the response for req (status line, standard headers, extra headers
 * as "Name: value\r\n" lines, body) and mark it done. */
void http_respond(http_req *req, int status, const char *content_type, const char *extra_headers,
                  const void *body, size_t body_len);
void http_respond_error(http_req *req, int status, const char *message, const char *extra_headers);
void http_respond_replica_error(http_req *req, int replica_status);
/* The request's response is complete: write what is due, in order. */
void http_req_complete(http_req *req);

/* Called first by every admin callback: true when the client went away
 * meanwhile, in which case the request has been freed and the callback must
 * not touch it. Otherwise clears admin_waiting. */
bool http_req_admin_return(http_req *req);

/* handlers (http_keys.c) */
void http_keys_handle_key(http_req *req, const http_request *hr, const char *query,
                          size_t query_len, const char *body, size_t body_len);
void http_keys_handle_list(http_req *req, const http_request *hr, const char *query,
                           size_t query_len);
/* handlers (http_cluster.c) */
void http_cluster_internal_propose(http_req *req, const char *body, size_t len);
void http_cluster_internal_read_index(http_req *req);
void http_cluster_list(http_req *req);
void http_cluster_member_add(http_req *req, const char *body, size_t len);
void http_cluster_member_remove(http_req *req, const char *id_text, size_t id_len);
void http_cluster_transfer(http_req *req, const char *body, size_t len);
/* authentication, permissions, rate limits (http_auth.c) */
#define HTTP_AUTH_MISSING 100 /* verdicts besides AUTH_*: no usable credentials, */
#define HTTP_AUTH_PEER 101    /* or another node speaking (internal, relayed) */
bool http_auth_route_is_open(int route);
/* Who sent hr: AUTH_OK (user set, or NULL when no auth applies),
 * HTTP_AUTH_MISSING, AUTH_BAD, AUTH_BUSY, or AUTH_PENDING (done runs later). */
int http_auth_identify(api *a, const http_request *hr, int route, const users_user **user,
                       auth_done_fn done, void *ctx, auth_wait **wait);
void http_auth_respond_unauthenticated(http_req *req, int verdict);
/* Each answers 403 / 429 itself and returns false when the request stops. */
bool http_auth_authorize_route(http_req *req);
bool http_auth_may_access(http_req *req, const void *key, size_t len, bool write);
bool http_auth_rate(http_req *req);
void http_auth_token(http_req *req, const char *query, size_t query_len);
/* handlers (http_ops.c) */
void http_ops_handle(http_req *req);

#endif
