/* forward: requests from this node to another node's HTTP API.
 *
 * A follower forwards writes and read-index requests to the leader. This
 * is a small HTTP/1.1 client on the loop: keep-alive connections pooled per
 * peer, one request at a time per connection, a deadline per request (a
 * timer; nothing waits longer), and a circuit breaker per peer: after
 * FORWARD_BREAKER_FAILURES consecutive failures the peer is not tried for
 * a cool-down, then one probe is let through (half-open) and a success
 * closes it again.
 *
 * The callback learns whether the request may have reached the peer
 * (`sent`): a request that failed before any byte was written can be
 * retried safely; one that failed after may have been applied.
 *
 * With a client TLS context (a node that serves TLS) every connection is
 * TLS: the handshake runs on the loop through net/tls, under the same
 * deadline as the request, and the request is held (not `sent`) until the
 * peer's certificate has been verified, so a refused certificate counts
 * as "could not connect". Loop thread only. */
#ifndef CAIRN_REPLICA_FORWARD_H
#define CAIRN_REPLICA_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "net/tls.h"

typedef struct forward forward;
typedef struct forward_req forward_req;

enum {
    FORWARD_OK = 0,       /* a response arrived (see http_status) */
    FORWARD_ERR_CONNECT,  /* could not connect: nothing was sent */
    FORWARD_ERR_BREAKER,  /* circuit open: nothing was sent */
    FORWARD_ERR_IO,       /* connection failed after sending */
    FORWARD_ERR_TIMEOUT,  /* deadline passed */
    FORWARD_ERR_PROTOCOL, /* unparseable response */
    FORWARD_ERR_CANCELED,
};

typedef void (*forward_cb)(void *ctx, int status, bool sent, int http_status, const char *body,
                           size_t body_len);

/* tls: NULL for plain text, else a context from tls_ctx_create_client,
 * owned by the forward from now on (freed by forward_close). */
forward *forward_create(uv_loop_t *loop, tls_ctx *tls);
/* Re-read the TLS files (SIGHUP): new connections use them, pooled ones
 * keep theirs. 0 without TLS; on error the old files stay in use. */
int forward_reload_tls(forward *f, char *err, size_t errlen);
/* Header lines ("Name: value\r\n"...) sent with every request. */
void forward_set_headers(forward *f, const char *lines);
/* Close every connection and fail pending requests (CANCELED). */
void forward_close(forward *f);

/* POST body to http://addr/path. `relayed` marks the request with
 * X-Cairn-Forwarded (sent on behalf of a client; the receiver must not
 * relay it again). Returns the request (for cancel) or NULL if it could not
 * even be started (cb not called). */
forward_req *forward_post(forward *f, uint64_t peer_id, const char *addr, const char *path,
                          const void *body, size_t body_len, bool relayed, double timeout_s,
                          forward_cb cb, void *ctx);
/* The callback will not be called. */
void forward_cancel(forward_req *req);

/* Breaker state of a peer: 0 closed, 1 open, 2 half-open. */
int forward_breaker_state(forward *f, uint64_t peer_id);
uint64_t forward_count(forward *f, int which); /* 0 sent, 1 failed */

#endif
