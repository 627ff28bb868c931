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
 * Loop thread only. */
#ifndef CAIRN_REPLICA_FORWARD_H
#define CAIRN_REPLICA_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

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

forward *forward_create(uv_loop_t *loop);
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
