#include "net/server.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs/log.h"
#include "obs/metrics.h"
#include "util/alloc.h"
#include "util/clock.h"

#define READ_CHUNK (64 * 1024)
#define SWEEP_MS 100
#define MAX_LISTENERS 8
/* Stop reading from a client whose unsent replies exceed this: it is
 * pipelining faster than it reads, and reading more only grows memory. */
#define OUTPUT_PAUSE_BYTES (4 * 1024 * 1024)

typedef struct net_listener {
    uv_tcp_t tcp;
    net_server *srv;
    const net_proto *proto;
    void *proto_ctx;
    tls_ctx *tls;
    bool active;
} net_listener;

struct net_server {
    uv_loop_t *loop;
    net_limits limits;
    net_listener listeners[MAX_LISTENERS];
    int n_listeners;
    net_conn *conns; /* doubly-linked list of open connections */
    uint64_t n_conns;
    uint64_t next_id;
    uv_timer_t sweep;
    char read_buf[READ_CHUNK];
    bool read_buf_busy;
    void (*close_cb)(void *);
    void *close_ctx;
    int pending_handle_closes;
    bool closing;
    metrics_counter *m_accepted, *m_rejected, *m_timeouts, *m_idle_closed, *m_output_overflow;
    metrics_counter *m_tls_failed;
};

int64_t net_now_ms(void)
{
    return clock_mono_ms();
}

static double net__conn_gauge(void *ctx)
{
    return (double)((net_server *)ctx)->n_conns;
}

static void net__sweep(uv_timer_t *t);
static const net_proto net__null_proto = {0};

net_server *net_server_create(uv_loop_t *loop, const net_limits *limits)
{
    net_server *s = xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->limits = *limits;
    uv_timer_init(loop, &s->sweep);
    s->sweep.data = s;
    uv_timer_start(&s->sweep, net__sweep, SWEEP_MS, SWEEP_MS);
    s->m_accepted =
        metrics_counter_get("cairn_connections_accepted_total", "Client connections accepted", "");
    s->m_rejected = metrics_counter_get("cairn_connections_rejected_total",
                                        "Connections refused over --max-clients", "");
    s->m_timeouts = metrics_counter_get(
        "cairn_client_timeouts_total", "Connections closed for a request not arriving in time", "");
    s->m_idle_closed =
        metrics_counter_get("cairn_idle_closed_total", "Connections closed for being idle", "");
    s->m_output_overflow = metrics_counter_get(
        "cairn_output_overflow_total", "Clients disconnected for not reading their replies", "");
    s->m_tls_failed =
        metrics_counter_get("cairn_tls_handshake_failures_total",
                            "TLS connections closed for a failed handshake or read", "");
    metrics_gauge_register("cairn_connections", "Open client connections", "", net__conn_gauge, s);
    return s;
}

static void net__on_conn_closed(uv_handle_t *h)
{
    net_conn *c = h->data;
    net_server *s = c->srv;
    buf_close(&c->in);
    buf_close(&c->out);
    buf_close(&c->wbuf);
    tls_conn_free(c->tls);
    free(c);
    if (s->closing && s->n_conns == 0 && s->pending_handle_closes == 0 && s->close_cb) {
        void (*cb)(void *) = s->close_cb;
        s->close_cb = NULL;
        cb(s->close_ctx);
    }
}

void net_conn_close(net_conn *c)
{
    if (c->closing) return;
    c->closing = true;
    net_server *s = c->srv;
    if (c->proto->on_close) c->proto->on_close(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->n_conns--;
    uv_close((uv_handle_t *)&c->tcp, net__on_conn_closed);
}

static void net__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    net_conn *c = h->data;
    net_server *s = c->srv;
    (void)suggested;
    /* one shared buffer: the loop handles one read at a time */
    b->base = s->read_buf;
    b->len = sizeof(s->read_buf);
}

static void net__process(net_conn *c)
{
    if (c->closing || c->paused) return;
    size_t off_before = c->in.off, len_before = c->in.len;
    c->proto->on_data(c);
    if (c->closing) return;
    /* the client timeout runs from the first byte of an incomplete request */
    if (buf_unread_len(&c->in) == 0)
        c->request_start_ms = 0;
    else if (c->in.off != off_before || c->in.len != len_before)
        c->request_start_ms = net_now_ms();
    net_conn_flush(c);
    buf_shrink_if_empty(&c->in, 16 * 1024);
}

static void net__on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *b)
{
    net_conn *c = stream->data;
    if (n == 0) return;
    if (n < 0) {
        /* EOF or error: the peer is gone; pending replies cannot reach it */
        net_conn_close(c);
        return;
    }
    c->last_activity_ms = net_now_ms();
    if (buf_unread_len(&c->in) == 0) c->request_start_ms = c->last_activity_ms;
    if (c->tls) {
        char err[256];
        if (tls_conn_read(c->tls, b->base, (size_t)n, &c->in, &c->out, err, sizeof(err)) != 0) {
            metrics_counter_add(c->srv->m_tls_failed, 1);
            LOG_DEBUG("closing TLS connection", LF_I("conn", c->id), LF_S("peer", c->peer),
                      LF_S("error", err));
            /* send the alert that says why (e.g. protocol_version to a TLS
             * 1.1 client) before closing */
            net_conn_close_after_write(c);
            net_conn_flush(c);
            return;
        }
        if (buf_unread_len(&c->out)) net_conn_flush(c);
        if (c->closing || buf_unread_len(&c->in) == 0) return; /* handshake bytes only */
    } else {
        buf_append(&c->in, b->base, (size_t)n);
    }
    net__process(c);
}

static void net__start_reading(net_conn *c)
{
    if (c->reading || c->closing) return;
    if (uv_read_start((uv_stream_t *)&c->tcp, net__alloc, net__on_read) == 0) c->reading = true;
}

static void net__stop_reading(net_conn *c)
{
    if (!c->reading) return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

static void net__on_write(uv_write_t *w, int status)
{
    net_conn *c = w->data;
    c->write_inflight = false;
    buf_reset(&c->wbuf);
    if (c->closing) return;
    if (status < 0) {
        net_conn_close(c);
        return;
    }
    net_conn_flush(c);
}

void net_conn_flush(net_conn *c)
{
    if (c->closing || c->write_inflight) return;
    size_t n = buf_unread_len(&c->out);
    if (n == 0) {
        buf_shrink_if_empty(&c->out, 64 * 1024);
        if (c->close_after_write) {
            net_conn_close(c);
            return;
        }
        if (!c->paused) net__start_reading(c);
        return;
    }
    /* try the fast path first: most replies fit in the socket buffer */
    uv_buf_t b = uv_buf_init((char *)buf_unread(&c->out), (unsigned)n);
    int k = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (k > 0)
        buf_consume(&c->out, (size_t)k);
    else if (k < 0 && k != UV_EAGAIN) {
        net_conn_close(c);
        return;
    }
    n = buf_unread_len(&c->out);
    if (n == 0) {
        net_conn_flush(c);
        return;
    }
    /* the rest goes in a write of its own; swap buffers so new replies
     * can keep accumulating in c->out meanwhile */
    buf tmp = c->wbuf;
    c->wbuf = c->out;
    c->out = tmp;
    buf_reset(&c->out);
    b = uv_buf_init((char *)buf_unread(&c->wbuf), (unsigned)buf_unread_len(&c->wbuf));
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, net__on_write) != 0) {
        net_conn_close(c);
        return;
    }
    c->write_inflight = true;
    if (buf_unread_len(&c->wbuf) > OUTPUT_PAUSE_BYTES) net__stop_reading(c);
}

void net_conn_write(net_conn *c, const void *p, size_t n)
{
    if (c->closing) return;
    if (buf_unread_len(&c->out) + buf_unread_len(&c->wbuf) + n >
        c->srv->limits.max_pending_output) {
        metrics_counter_add(c->srv->m_output_overflow, 1);
        LOG_WARN("client not reading its replies; disconnecting", LF_I("conn", c->id),
                 LF_S("peer", c->peer));
        net_conn_close(c);
        return;
    }
    if (c->tls) {
        if (tls_conn_write(c->tls, p, n, &c->out) != 0) net_conn_close(c);
        return;
    }
    buf_append(&c->out, p, n);
}

void net_conn_close_after_write(net_conn *c)
{
    c->close_after_write = true;
    net__stop_reading(c);
}

void net_conn_pause(net_conn *c)
{
    c->paused = true;
    net__stop_reading(c);
}

void net_conn_resume(net_conn *c)
{
    if (!c->paused || c->closing) return;
    c->paused = false;
    if (buf_unread_len(&c->in)) net__process(c);
    if (!c->closing && !c->paused && !c->close_after_write) net__start_reading(c);
}

static void net__peer_name(net_conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    c->peer[0] = c->peer_ip[0] = '\0';
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0) return;
    char host[48];
    if (ss.ss_family == AF_INET) {
        uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof(host));
        snprintf(c->peer, sizeof(c->peer), "%s:%d", host,
                 ntohs(((struct sockaddr_in *)&ss)->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof(host));
        snprintf(c->peer, sizeof(c->peer), "[%s]:%d", host,
                 ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
    } else {
        return;
    }
    snprintf(c->peer_ip, sizeof(c->peer_ip), "%s", host);
}

static void net__on_connection(uv_stream_t *server, int status)
{
    net_listener *l = server->data;
    net_server *s = l->srv;
    if (status < 0) return;
    net_conn *c = xcalloc(1, sizeof(*c));
    c->srv = s;
    c->proto = l->proto;
    c->proto_data = NULL;
    c->id = ++s->next_id;
    buf_init(&c->in);
    buf_init(&c->out);
    buf_init(&c->wbuf);
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        s->n_conns++; /* balanced in net_conn_close */
        c->next = s->conns;
        if (s->conns) s->conns->prev = c;
        s->conns = c;
        c->proto = &net__null_proto;
        net_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->last_activity_ms = net_now_ms();
    net__peer_name(c);
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->n_conns++;
    c->proto_ctx = l->proto_ctx;
    if (l->tls && !(c->tls = tls_conn_new(l->tls))) {
        net_conn_close(c);
        return;
    }
    if (s->n_conns > s->limits.max_clients) {
        metrics_counter_add(s->m_rejected, 1);
        if (c->proto->on_reject) c->proto->on_reject(c);
        net_conn_close_after_write(c);
        net_conn_flush(c);
        return;
    }
    metrics_counter_add(s->m_accepted, 1);
    if (c->proto->on_open) c->proto->on_open(c);
    net__start_reading(c);
}

static int net__resolve(const char *addr, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof(host)) {
        snprintf(err, errlen, "bad address '%s' (want host:port)", addr);
        return -1;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    char *h = host;
    if (h[0] == '[') { /* [::1]:port */
        h++;
        h[strcspn(h, "]")] = '\0';
    }
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    int rv = getaddrinfo(h[0] ? h : NULL, colon + 1, &hints, &res);
    if (rv != 0 || !res) {
        snprintf(err, errlen, "cannot resolve '%s': %s", addr, gai_strerror(rv));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

int net_server_listen(net_server *s, const char *addr, const net_proto *proto, void *proto_ctx,
                      char *err, size_t errlen)
{
    return net_server_listen_tls(s, addr, proto, proto_ctx, NULL, err, errlen);
}

int net_server_listen_tls(net_server *s, const char *addr, const net_proto *proto, void *proto_ctx,
                          tls_ctx *tls, char *err, size_t errlen)
{
    if (s->n_listeners >= MAX_LISTENERS) {
        snprintf(err, errlen, "too many listeners");
        return -1;
    }
    struct sockaddr_storage ss;
    if (net__resolve(addr, &ss, err, errlen) != 0) return -1;
    net_listener *l = &s->listeners[s->n_listeners];
    memset(l, 0, sizeof(*l));
    l->srv = s;
    l->proto = proto;
    l->proto_ctx = proto_ctx;
    l->tls = tls;
    uv_tcp_init(s->loop, &l->tcp);
    l->tcp.data = l;
    l->active = true;
    s->n_listeners++;
    int rv = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
    if (rv == 0) rv = uv_listen((uv_stream_t *)&l->tcp, 511, net__on_connection);
    if (rv != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", addr, uv_strerror(rv));
        return -1;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&bound, &len);
    char host[64];
    int port;
    if (bound.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&bound, host, sizeof(host));
        port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
    } else {
        uv_ip4_name((struct sockaddr_in *)&bound, host, sizeof(host));
        port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    }
    char where[128];
    snprintf(where, sizeof(where), bound.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host, port);
    LOG_INFO("listening", LF_S("proto", proto->name), LF_S("addr", where),
             LF_S("tls", tls ? "on" : "off"));
    return 0;
}

static void net__on_listener_closed(uv_handle_t *h)
{
    net_listener *l = h->data;
    net_server *s = l->srv;
    s->pending_handle_closes--;
    if (s->closing && s->n_conns == 0 && s->pending_handle_closes == 0 && s->close_cb) {
        void (*cb)(void *) = s->close_cb;
        s->close_cb = NULL;
        cb(s->close_ctx);
    }
}

void net_server_stop_listening(net_server *s)
{
    for (int i = 0; i < s->n_listeners; i++) {
        net_listener *l = &s->listeners[i];
        if (!l->active) continue;
        l->active = false;
        s->pending_handle_closes++;
        uv_close((uv_handle_t *)&l->tcp, net__on_listener_closed);
    }
}

uint64_t net_server_busy_conns(net_server *s)
{
    uint64_t n = 0;
    for (net_conn *c = s->conns; c; c = c->next)
        n += c->busy > 0 || buf_unread_len(&c->out) > 0 || c->write_inflight;
    return n;
}

uint64_t net_server_conn_count(net_server *s)
{
    return s->n_conns;
}

static void net__sweep_closed(uv_handle_t *h)
{
    net_server *s = h->data;
    s->pending_handle_closes--;
    if (s->closing && s->n_conns == 0 && s->pending_handle_closes == 0 && s->close_cb) {
        void (*cb)(void *) = s->close_cb;
        s->close_cb = NULL;
        cb(s->close_ctx);
    }
}

void net_server_close(net_server *s, void (*cb)(void *), void *ctx)
{
    s->closing = true;
    s->close_cb = cb;
    s->close_ctx = ctx;
    net_server_stop_listening(s);
    uv_timer_stop(&s->sweep);
    s->pending_handle_closes++;
    uv_close((uv_handle_t *)&s->sweep, net__sweep_closed);
    while (s->conns) net_conn_close(s->conns);
}

void net_server_destroy(net_server *s)
{
    free(s);
}

static void net__sweep(uv_timer_t *t)
{
    net_server *s = t->data;
    int64_t now = net_now_ms();
    int64_t req_ms = (int64_t)(s->limits.client_timeout * 1000);
    int64_t idle_ms = (int64_t)(s->limits.idle_timeout * 1000);
    net_conn *c = s->conns;
    while (c) {
        net_conn *next = c->next;
        if (c->closing || c->close_after_write) {
            c = next;
            continue;
        }
        /* an unfinished TLS handshake counts as a request still arriving */
        bool partial =
            (buf_unread_len(&c->in) > 0 || (c->tls && !tls_conn_handshake_done(c->tls))) &&
            c->request_start_ms;
        if (partial && req_ms > 0 && now - c->request_start_ms >= req_ms && !c->busy) {
            metrics_counter_add(s->m_timeouts, 1);
            LOG_DEBUG("request timeout", LF_I("conn", c->id), LF_S("peer", c->peer));
            if (c->proto->on_timeout) c->proto->on_timeout(c, NET_TIMEOUT_REQUEST);
            net_conn_close_after_write(c);
            net_conn_flush(c);
        } else if (!partial && !c->busy && idle_ms > 0 && now - c->last_activity_ms >= idle_ms &&
                   buf_unread_len(&c->out) == 0 && !c->write_inflight) {
            metrics_counter_add(s->m_idle_closed, 1);
            net_conn_close(c);
        }
        c = next;
    }
}
