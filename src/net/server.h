/* server: TCP listeners and connections on the loop, protocol-agnostic.
 *
 * A protocol (HTTP, RESP) plugs in through net_proto callbacks; it parses
 * c->in and appends replies with net_conn_write. The server enforces the
 * limits every protocol shares: --max-clients, --client-timeout (a request
 * must arrive whole within S seconds of its first byte), --idle-timeout,
 * and a cap on unsent output per client (a client that does not read its
 * replies is disconnected, so memory stays bounded).
 *
 * Input is read through one loop-wide 64 KiB buffer and appended to the
 * connection's own buffer, so 10k idle connections cost no read buffers.
 * Loop thread only. */
#ifndef CAIRN_NET_SERVER_H
#define CAIRN_NET_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "net/tls.h"
#include "util/buf.h"

typedef struct net_conn net_conn;
typedef struct net_server net_server;

enum { NET_TIMEOUT_REQUEST = 1, NET_TIMEOUT_IDLE };

typedef struct net_proto {
    const char *name;
    void (*on_open)(net_conn *c);
    /* New bytes are in c->in; consume what was handled. */
    void (*on_data)(net_conn *c);
    /* The connection is going away: cancel pending work, free state. */
    void (*on_close)(net_conn *c);
    /* A request took too long to arrive: may write a last reply. */
    void (*on_timeout)(net_conn *c, int kind);
    /* Refused for --max-clients: may write a last reply. */
    void (*on_reject)(net_conn *c);
} net_proto;

struct net_conn {
    uv_tcp_t tcp;
    net_server *srv;
    const net_proto *proto;
    void *proto_ctx;  /* given to net_server_listen (e.g. the api object) */
    void *proto_data; /* per-connection protocol state */
    buf in;
    buf out;  /* replies not yet handed to the kernel */
    buf wbuf; /* the bytes of the write in flight */
    uv_write_t wreq;
    uint64_t id;
    int64_t last_activity_ms;
    int64_t request_start_ms; /* first byte of an incomplete request, or 0 */
    uint32_t busy;            /* requests in progress (not idle while > 0) */
    bool closing;
    bool write_inflight;
    bool close_after_write;
    bool reading;
    bool paused;      /* protocol asked to stop reading (ordering, backpressure) */
    char peer[64];    /* "ip:port" or "[ipv6]:port", for logs */
    char peer_ip[48]; /* the address alone (rate limits, trusted hosts) */
    tls_conn *tls;    /* NULL on a plain-text listener */
    net_conn *prev, *next;
};

typedef struct net_limits {
    uint64_t max_clients;
    double client_timeout;
    double idle_timeout;
    uint64_t max_pending_output;
} net_limits;

net_server *net_server_create(uv_loop_t *loop, const net_limits *limits);
/* Listen on "host:port" with a protocol; the bound address (with the real
 * port when 0 was asked) is logged. Returns 0 or -1 with err set. */
int net_server_listen(net_server *s, const char *addr, const net_proto *proto, void *proto_ctx,
                      char *err, size_t errlen);
/* The same with TLS (tls may be NULL for plain text). */
int net_server_listen_tls(net_server *s, const char *addr, const net_proto *proto, void *proto_ctx,
                          tls_ctx *tls, char *err, size_t errlen);
/* Stop accepting (graceful shutdown, step 1). */
void net_server_stop_listening(net_server *s);
/* Connections with requests in progress. */
uint64_t net_server_busy_conns(net_server *s);
uint64_t net_server_conn_count(net_server *s);
/* Close every connection; cb when all are gone. */
void net_server_close(net_server *s, void (*cb)(void *), void *ctx);
void net_server_destroy(net_server *s);

void net_conn_write(net_conn *c, const void *p, size_t n);
/* Hand pending output to the kernel (call after a batch of replies). */
void net_conn_flush(net_conn *c);
/* Close once pending output is written. */
void net_conn_close_after_write(net_conn *c);
void net_conn_close(net_conn *c);
/* Stop/resume reading (and re-run on_data with what is buffered). */
void net_conn_pause(net_conn *c);
void net_conn_resume(net_conn *c);

int64_t net_now_ms(void);

#endif
