/* transport_mux: many Raft groups over one peer port (transport_mux.h). */
#include "replica/transport_mux.h"

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/tls_pump.h"
#include "obs/log.h"
#include "util/alloc.h"

typedef struct tmux_port tmux_port;
typedef struct tmux_dial tmux_dial;
typedef struct tmux_incoming tmux_incoming;

struct transport_mux {
    uv_loop_t *loop;
    char bind_address[256];
    uv_tcp_t listener;
    bool listener_open; /* initialised: must be closed */
    bool released;
    int handles; /* open handles of ours: the listener, incoming sockets and timers */
    tmux_port *ports;
    tmux_incoming *incoming;
    transport_mux_stats stats;
    uint64_t last_refusal_log_ms;
    unsigned connect_timeout_ms, preamble_timeout_ms;
    tls_ctx *tls_server, *tls_client; /* both or neither */
};

struct tmux_port {
    transport_mux *mux;
    struct raft_uv_transport *t;
    uint32_t group;
    raft_id id;
    char address[TMUX_ADDRESS_MAX];
    raft_uv_accept_cb accept_cb; /* set by listen, cleared by close */
    raft_uv_transport_close_cb close_cb;
    bool closing, close_deferred_done;
    uv_timer_t closer; /* only closed: defers close_cb to the loop's next turn */
    tmux_dial *dials;  /* connects in flight */
    int dials_alive;   /* in flight or still closing their handles */
    tmux_port *next;
};

/* An outgoing connection: resolve (names only), connect, write the
 * preamble, hand the socket to libraft. */
struct tmux_dial {
    tmux_port *port;
    struct raft_uv_connect *req;
    uv_tcp_t *tcp;  /* malloc'd; a TLS pump's once it started */
    uv_stream_t *s; /* what libraft gets: tcp, or the pump's pipe (malloc'd) */
    uv_timer_t deadline;
    uv_connect_t connect;
    uv_write_t write;
    uv_getaddrinfo_t gai;
    char port_str[16];
    char host[256]; /* checked against the certificate (TLS) */
    char ack;       /* TLS: the other side's TMUX_ACK */
    bool resolving;
    bool finished;
    int status;  /* for the request's callback */
    int pending; /* async completions (handle closes, the resolver) before it is freed */
    char preamble[TMUX_ADDRESS_MAX + 40];
    size_t preamble_len;
    tmux_dial *prev, *next;
};

/* An incoming connection until its preamble is read. */
struct tmux_incoming {
    transport_mux *mux;
    uv_stream_t *s; /* malloc'd (TCP, or a TLS pump's pipe): libraft frees it once handed over */
    uv_timer_t deadline;
    uint64_t words[4];
    size_t need, got; /* bytes of the stage being read */
    int stage;        /* 0: protocol word; 1: the fixed words; 2: the address */
    uint64_t protocol;
    uint32_t group;
    raft_id id;
    size_t address_len;
    char address[TMUX_ADDRESS_MAX];
    int pending; /* handle closes before it is freed */
    bool done;
    tmux_incoming *prev, *next;
};

/* ---- words on the wire ---------------------------------------------------------------- */

static void put64(char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (char)(v >> (8 * i));
}

static uint64_t get64(const void *p)
{
    const unsigned char *b = p;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

size_t transport_mux_preamble(uint32_t group, raft_id id, const char *address, char *out,
                              size_t cap)
{
    size_t alen = strlen(address) + 1;
    size_t padded = (alen + 7) & ~(size_t)7;
    size_t words = group == 0 ? 3 : 4;
    size_t n = 8 * words + padded;
    if (padded > TMUX_ADDRESS_MAX || n > cap) return 0;
    char *p = out;
    if (group == 0) {
        put64(p, TMUX_LEGACY_PROTOCOL);
        p += 8;
    } else {
        put64(p, TMUX_PROTOCOL);
        put64(p + 8, group);
        p += 16;
    }
    put64(p, id);
    put64(p + 8, padded);
    p += 16;
    memset(p, 0, padded);
    memcpy(p, address, alen);
    return n;
}

/* host:port, [v6]:port or name:port into host and port strings. */
static int split_address(const char *address, char *host, size_t hostcap, char *port,
                         size_t portcap)
{
    const char *colon = strrchr(address, ':');
    if (!colon || colon == address || !colon[1]) return -1;
    const char *h = address;
    size_t hl = (size_t)(colon - address);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= hostcap || strlen(colon + 1) >= portcap) return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, portcap, "%s", colon + 1);
    return 0;
}

/* A numeric address without a resolver round trip. */
static bool numeric_address(const char *host, const char *port, struct sockaddr_storage *ss,
                            bool any_port)
{
    char *end = NULL;
    long p = strtol(port, &end, 10);
    if (!end || *end || p < (any_port ? 0 : 1) || p > 65535) return false;
    if (uv_ip4_addr(host, (int)p, (struct sockaddr_in *)ss) == 0) return true;
    if (uv_ip6_addr(host, (int)p, (struct sockaddr_in6 *)ss) == 0) return true;
    return false;
}

/* ---- the mux's own handles -------------------------------------------------------------- */

static void mux__maybe_free(transport_mux *m)
{
    if (!m->released || m->handles != 0) return;
    tls_ctx_free(m->tls_server);
    tls_ctx_free(m->tls_client);
    free(m);
}

static void mux__handle_closed(uv_handle_t *h)
{
    transport_mux *m = h->data;
    m->handles--;
    mux__maybe_free(m);
}

/* ---- incoming connections ----------------------------------------------------------------- */

static void in__unlink(tmux_incoming *in)
{
    transport_mux *m = in->mux;
    if (in->prev)
        in->prev->next = in->next;
    else
        m->incoming = in->next;
    if (in->next) in->next->prev = in->prev;
    in->prev = in->next = NULL;
}

static void in__closed(uv_handle_t *h)
{
    tmux_incoming *in = h->data;
    transport_mux *m = in->mux;
    if ((uv_handle_t *)in->s == h) free(in->s);
    m->handles--;
    if (--in->pending == 0) free(in);
    mux__maybe_free(m);
}

/* Ends the preamble phase; the socket is closed unless handed over. */
static void in__finish(tmux_incoming *in, bool handed_over)
{
    if (in->done) return;
    in->done = true;
    in__unlink(in);
    uv_timer_stop(&in->deadline);
    in->pending = 1;
    uv_close((uv_handle_t *)&in->deadline, in__closed);
    if (handed_over) {
        in->mux->handles--; /* the socket is libraft's now */
        in->s = NULL;
    } else {
        in->pending++;
        uv_close((uv_handle_t *)in->s, in__closed);
    }
}

static void in__refuse(tmux_incoming *in, const char *why)
{
    transport_mux *m = in->mux;
    m->stats.refused++;
    uint64_t now = uv_now(m->loop);
    if (m->last_refusal_log_ms == 0 || now - m->last_refusal_log_ms >= 1000) {
        m->last_refusal_log_ms = now;
        LOG_WARN("peer connection refused", LF_S("why", why), LF_I("group", (long long)in->group),
                 LF_I("refused_total", m->stats.refused));
    }
    in__finish(in, false);
}

static void in__deadline(uv_timer_t *timer)
{
    in__refuse(timer->data, "no complete preamble in time");
}

static void in__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    tmux_incoming *in = h->data;
    /* exactly what the stage still needs: never a byte of libraft's */
    char *base = in->stage == 2 ? in->address : (char *)in->words;
    if (in->stage == 1) base += 8;
    *buf = uv_buf_init(base + in->got, (unsigned)(in->need - in->got));
}

static tmux_port *mux__port(transport_mux *m, uint32_t group)
{
    for (tmux_port *p = m->ports; p; p = p->next)
        if (p->group == group) return p;
    return NULL;
}

static void free_write(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static void in__complete(tmux_incoming *in)
{
    uv_read_stop(in->s);
    if (memchr(in->address, '\0', in->address_len) == NULL) {
        in__refuse(in, "address not terminated");
        return;
    }
    tmux_port *p = mux__port(in->mux, in->group);
    if (!p || !p->accept_cb || p->closing) {
        in__refuse(in, "no such group here");
        return;
    }
    uv_stream_t *stream = in->s;
    stream->data = NULL;
    in->mux->stats.accepted++;
    if (in->mux->tls_server) {
        /* over TLS the dialer waits for this byte before it hands the
         * stream to libraft: a refusal (an untrusted certificate, an
         * unknown group) is then a failed connect, which libraft retries
         * after its back-off, not a stream that dies at once */
        static const char ack = TMUX_ACK;
        uv_write_t *w = xmalloc(sizeof(*w));
        uv_buf_t b = uv_buf_init((char *)&ack, 1);
        if (uv_write(w, stream, &b, 1, free_write) != 0) free(w);
    }
    in__finish(in, true);
    p->accept_cb(p->t, in->id, in->address, stream);
}

static void in__read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    tmux_incoming *in = s->data;
    if (nread == 0) return;
    if (nread < 0) {
        in__refuse(in, nread == UV_EOF ? "closed in the preamble" : uv_strerror((int)nread));
        return;
    }
    in->got += (size_t)nread;
    if (in->got < in->need) return;
    if (in->stage == 0) {
        in->protocol = get64(&in->words[0]);
        if (in->protocol != TMUX_LEGACY_PROTOCOL && in->protocol != TMUX_PROTOCOL) {
            in__refuse(in, "not a cairn or libraft peer (unknown protocol)");
            return;
        }
        in->stage = 1;
        in->got = 0;
        in->need = in->protocol == TMUX_PROTOCOL ? 24 : 16;
        return;
    }
    if (in->stage == 1) {
        const uint64_t *w = &in->words[1];
        uint64_t group = in->protocol == TMUX_PROTOCOL ? get64(&w[0]) : 0;
        uint64_t id = get64(&w[in->protocol == TMUX_PROTOCOL ? 1 : 0]);
        uint64_t alen = get64(&w[in->protocol == TMUX_PROTOCOL ? 2 : 1]);
        in->group = (uint32_t)group;
        if (group > UINT32_MAX || (in->protocol == TMUX_PROTOCOL && group == 0)) {
            in__refuse(in, "bad group");
            return;
        }
        if (id == 0 || alen == 0 || alen % 8 != 0 || alen > TMUX_ADDRESS_MAX) {
            in__refuse(in, "bad sender id or address length");
            return;
        }
        in->id = id;
        in->address_len = (size_t)alen;
        in->stage = 2;
        in->got = 0;
        in->need = in->address_len;
        return;
    }
    in__complete(in);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void mux__connection(uv_stream_t *server, int status)
{
    transport_mux *m = server->data;
    if (status != 0 || m->released) return;
    uv_tcp_t *tcp = malloc(sizeof(*tcp));
    if (!tcp) abort();
    uv_tcp_init(m->loop, tcp);
    if (uv_accept(server, (uv_stream_t *)tcp) != 0) {
        uv_close((uv_handle_t *)tcp, free_handle);
        return;
    }
    uv_stream_t *stream = (uv_stream_t *)tcp;
    if (m->tls_server) {
        /* the preamble and everything after it inside TLS */
        stream = tls_pump_start(m->loop, tcp, tls_conn_new(m->tls_server), TLS_PUMP_ACCEPTED);
        if (!stream) {
            m->stats.refused++;
            return;
        }
    }
    tmux_incoming *in = xcalloc(1, sizeof(*in));
    in->mux = m;
    in->s = stream;
    stream->data = in;
    m->handles++;
    uv_timer_init(m->loop, &in->deadline);
    in->deadline.data = in;
    m->handles++;
    in->next = m->incoming;
    if (m->incoming) m->incoming->prev = in;
    m->incoming = in;
    in->need = 8;
    if (uv_read_start(stream, in__alloc, in__read) != 0) {
        in__finish(in, false);
        return;
    }
    uv_timer_start(&in->deadline, in__deadline, m->preamble_timeout_ms, 0);
}

static int mux__listen(transport_mux *m, char *err, size_t errlen)
{
    if (m->listener_open) return 0;
    char host[256], port[16];
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (split_address(m->bind_address, host, sizeof host, port, sizeof port) != 0) {
        snprintf(err, errlen, "%.200s: not host:port", m->bind_address);
        return -1;
    }
    if (!numeric_address(host[0] ? host : "0.0.0.0", port, &ss, true)) {
        /* a name: resolved once, at start */
        struct addrinfo hints = {.ai_family = AF_UNSPEC,
                                 .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
        struct addrinfo *res = NULL;
        int rv = getaddrinfo(host, port, &hints, &res);
        if (rv != 0 || !res) {
            snprintf(err, errlen, "%.200s: %s", m->bind_address, gai_strerror(rv));
            return -1;
        }
        memcpy(&ss, res->ai_addr, res->ai_addrlen);
        freeaddrinfo(res);
    }
    uv_tcp_init(m->loop, &m->listener);
    m->listener.data = m;
    m->listener_open = true;
    m->handles++;
    int rv = uv_tcp_bind(&m->listener, (struct sockaddr *)&ss, 0);
    if (rv == 0) rv = uv_listen((uv_stream_t *)&m->listener, 128, mux__connection);
    if (rv != 0) {
        snprintf(err, errlen, "%.200s: %s", m->bind_address, uv_strerror(rv));
        m->listener_open = false;
        uv_close((uv_handle_t *)&m->listener, mux__handle_closed);
        return -1;
    }
    return 0;
}

/* ---- outgoing connections ----------------------------------------------------------------- */

static void port__maybe_closed(tmux_port *p);

static void dial__unlink(tmux_dial *d)
{
    tmux_port *p = d->port;
    if (d->prev)
        d->prev->next = d->next;
    else
        p->dials = d->next;
    if (d->next) d->next->prev = d->prev;
    d->prev = d->next = NULL;
}

static void dial__settle(tmux_dial *d)
{
    if (--d->pending > 0) return;
    tmux_port *p = d->port;
    if (d->status != 0) d->req->cb(d->req, NULL, d->status);
    free(d);
    p->dials_alive--;
    port__maybe_closed(p);
}

static void dial__handle_closed(uv_handle_t *h)
{
    tmux_dial *d = h->data;
    if ((uv_handle_t *)d->s == h) {
        free(d->s);
        d->s = NULL;
        d->tcp = NULL;
    }
    dial__settle(d);
}

/* The attempt ends: handed over (status 0) or failed. */
static void dial__finish(tmux_dial *d, int status)
{
    if (d->finished) return;
    d->finished = true;
    d->status = status;
    tmux_port *p = d->port;
    dial__unlink(d);
    uv_timer_stop(&d->deadline);
    d->pending = 1;
    uv_close((uv_handle_t *)&d->deadline, dial__handle_closed);
    if (d->resolving) {
        d->pending++; /* its callback comes, canceled or not */
        uv_cancel((uv_req_t *)&d->gai);
    }
    if (status == 0) {
        uv_stream_t *stream = d->s;
        d->s = NULL;
        d->tcp = NULL;
        stream->data = NULL;
        p->mux->stats.dialed++;
        d->req->cb(d->req, stream, 0);
    } else {
        p->mux->stats.dial_failed++;
        if (d->s) {
            d->pending++;
            uv_close((uv_handle_t *)d->s, dial__handle_closed);
        }
    }
}

static void dial__deadline(uv_timer_t *timer)
{
    dial__finish(timer->data, RAFT_NOCONNECTION);
}

static void dial__ack_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    tmux_dial *d = h->data;
    *b = uv_buf_init(&d->ack, 1); /* one byte: nothing of libraft's is read */
}

static void dial__ack_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    (void)b;
    tmux_dial *d = s->data;
    if (n == 0 || d->finished) return;
    uv_read_stop(s);
    dial__finish(d, n == 1 && d->ack == TMUX_ACK ? 0 : RAFT_NOCONNECTION);
}

static void dial__written(uv_write_t *w, int status)
{
    tmux_dial *d = w->data;
    if (d->finished) return;
    if (status != 0) {
        dial__finish(d, RAFT_NOCONNECTION);
        return;
    }
    if (d->port->mux->tls_client) {
        /* wait for the other side's acceptance (in__complete) */
        if (uv_read_start(d->s, dial__ack_alloc, dial__ack_read) != 0)
            dial__finish(d, RAFT_NOCONNECTION);
        return;
    }
    dial__finish(d, 0);
}

static void dial__connected(uv_connect_t *c, int status)
{
    tmux_dial *d = c->data;
    if (d->finished) return;
    if (status != 0) {
        dial__finish(d, RAFT_NOCONNECTION);
        return;
    }
    transport_mux *m = d->port->mux;
    if (m->tls_client) {
        /* the preamble goes out inside TLS; a handshake that fails (an
         * untrusted certificate) ends the stream libraft was given */
        d->s = tls_pump_start(m->loop, d->tcp, tls_conn_new_client(m->tls_client, d->host),
                              TLS_PUMP_DIALED);
        d->tcp = NULL; /* the pump's, or closed */
        if (!d->s) {
            dial__finish(d, RAFT_NOCONNECTION);
            return;
        }
        d->s->data = d;
    }
    uv_buf_t b = uv_buf_init(d->preamble, (unsigned)d->preamble_len);
    d->write.data = d;
    if (uv_write(&d->write, d->s, &b, 1, dial__written) != 0) dial__finish(d, RAFT_NOCONNECTION);
}

static void dial__connect(tmux_dial *d, const struct sockaddr *sa)
{
    d->connect.data = d;
    if (uv_tcp_connect(&d->connect, d->tcp, sa, dial__connected) != 0)
        dial__finish(d, RAFT_NOCONNECTION);
}

static void dial__resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    tmux_dial *d = g->data;
    d->resolving = false;
    if (d->finished) {
        if (res) uv_freeaddrinfo(res);
        dial__settle(d);
        return;
    }
    if (status != 0 || !res)
        dial__finish(d, RAFT_NOCONNECTION);
    else
        dial__connect(d, res->ai_addr);
    if (res) uv_freeaddrinfo(res);
}

static int port__connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                         const char *address, raft_uv_connect_cb cb)
{
    (void)id;
    tmux_port *p = t->impl;
    transport_mux *m = p->mux;
    if (p->closing) return RAFT_CANCELED;
    char host[256], port[16];
    if (split_address(address, host, sizeof host, port, sizeof port) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "peer address %s: not host:port", address);
        return RAFT_INVALID;
    }
    tmux_dial *d = xcalloc(1, sizeof(*d));
    d->preamble_len =
        transport_mux_preamble(p->group, p->id, p->address, d->preamble, sizeof d->preamble);
    if (d->preamble_len == 0) {
        free(d);
        snprintf(t->errmsg, sizeof t->errmsg, "own address too long for the preamble");
        return RAFT_INVALID;
    }
    d->port = p;
    p->dials_alive++;
    d->req = req;
    req->cb = cb;
    d->tcp = malloc(sizeof(*d->tcp));
    if (!d->tcp) abort();
    uv_tcp_init(m->loop, d->tcp);
    d->tcp->data = d;
    d->s = (uv_stream_t *)d->tcp;
    snprintf(d->host, sizeof d->host, "%s", host);
    uv_timer_init(m->loop, &d->deadline);
    d->deadline.data = d;
    d->next = p->dials;
    if (p->dials) p->dials->prev = d;
    p->dials = d;
    uv_timer_start(&d->deadline, dial__deadline, m->connect_timeout_ms, 0);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (numeric_address(host, port, &ss, false)) {
        dial__connect(d, (struct sockaddr *)&ss);
        return 0;
    }
    /* a name: resolved on the thread pool, never on the loop */
    snprintf(d->port_str, sizeof d->port_str, "%s", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    d->gai.data = d;
    d->resolving = true;
    if (uv_getaddrinfo(m->loop, &d->gai, dial__resolved, host, d->port_str, &hints) != 0) {
        d->resolving = false;
        dial__finish(d, RAFT_NOCONNECTION);
    }
    return 0;
}

/* ---- a group's transport ------------------------------------------------------------------ */

static void port__maybe_closed(tmux_port *p)
{
    if (!p->closing || p->dials_alive || !p->close_deferred_done || !p->close_cb) return;
    raft_uv_transport_close_cb cb = p->close_cb;
    p->close_cb = NULL;
    cb(p->t);
}

static void port__closer_closed(uv_handle_t *h)
{
    tmux_port *p = h->data;
    p->close_deferred_done = true;
    port__maybe_closed(p);
}

static int port__init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    tmux_port *p = t->impl;
    if (strlen(address) + 1 > sizeof p->address - 8) {
        snprintf(t->errmsg, sizeof t->errmsg, "address too long");
        return RAFT_INVALID;
    }
    p->id = id;
    snprintf(p->address, sizeof p->address, "%s", address);
    return 0;
}

static int port__listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    tmux_port *p = t->impl;
    char err[256];
    if (mux__listen(p->mux, err, sizeof err) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "listen on %.220s", err);
        return RAFT_IOERR;
    }
    p->accept_cb = cb;
    return 0;
}

static void port__close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    tmux_port *p = t->impl;
    p->closing = true;
    p->accept_cb = NULL;
    p->close_cb = cb;
    while (p->dials) dial__finish(p->dials, RAFT_CANCELED);
    /* the callback comes from the loop, never from inside close */
    uv_timer_init(p->mux->loop, &p->closer);
    p->closer.data = p;
    uv_close((uv_handle_t *)&p->closer, port__closer_closed);
}

int transport_mux_port_init(struct raft_uv_transport *t, transport_mux *m, uint32_t group)
{
    if (mux__port(m, group)) return RAFT_DUPLICATEID;
    tmux_port *p = xcalloc(1, sizeof(*p));
    p->mux = m;
    p->t = t;
    p->group = group;
    p->next = m->ports;
    m->ports = p;
    memset(t, 0, sizeof(*t));
    t->impl = p;
    t->init = port__init;
    t->listen = port__listen;
    t->connect = port__connect;
    t->close = port__close;
    return 0;
}

void transport_mux_port_close(struct raft_uv_transport *t)
{
    tmux_port *p = t->impl;
    if (!p) return;
    transport_mux *m = p->mux;
    for (tmux_port **pp = &m->ports; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    /* libraft closed it first (its close callback has fired), or never
     * started it: no connect of its is in flight */
    if (p->dials_alive) abort();
    free(p);
    t->impl = NULL;
}

/* ---- the mux ------------------------------------------------------------------------------ */

int transport_mux_create(transport_mux **out, uv_loop_t *loop, const char *bind_address, char *err,
                         size_t errlen)
{
    if (strlen(bind_address) >= sizeof(((transport_mux *)0)->bind_address)) {
        snprintf(err, errlen, "--listen-peer %s: too long", bind_address);
        return -1;
    }
    transport_mux *m = xcalloc(1, sizeof(*m));
    m->loop = loop;
    m->connect_timeout_ms = TMUX_CONNECT_TIMEOUT_MS;
    m->preamble_timeout_ms = TMUX_PREAMBLE_TIMEOUT_MS;
    snprintf(m->bind_address, sizeof m->bind_address, "%s", bind_address);
    *out = m;
    return 0;
}

void transport_mux_release(transport_mux *m)
{
    if (!m) return;
    m->released = true;
    while (m->incoming) in__finish(m->incoming, false);
    if (m->listener_open) {
        m->listener_open = false;
        uv_close((uv_handle_t *)&m->listener, mux__handle_closed);
    }
    mux__maybe_free(m);
}

transport_mux_stats transport_mux_get_stats(const transport_mux *m)
{
    return m->stats;
}

int transport_mux_bound_port(const transport_mux *m)
{
    if (!m->listener_open) return 0;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(&m->listener, (struct sockaddr *)&ss, &len) != 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

void transport_mux_set_timeouts(transport_mux *m, unsigned connect_ms, unsigned preamble_ms)
{
    m->connect_timeout_ms = connect_ms;
    m->preamble_timeout_ms = preamble_ms;
}

int transport_mux_set_tls(transport_mux *m, const char *cert, const char *key, const char *ca,
                          char *err, size_t errlen)
{
    /* peers authenticate each other: the server asks for a client
     * certificate chaining to ca (else to the cert file itself, as the
     * client's check of the server does) */
    const char *trust = ca && ca[0] ? ca : cert;
    if (tls_ctx_create(&m->tls_server, cert, key, trust, err, errlen) != 0) return -1;
    if (tls_ctx_create_client(&m->tls_client, cert, key, ca, err, errlen) != 0) {
        tls_ctx_free(m->tls_server);
        m->tls_server = NULL;
        return -1;
    }
    return 0;
}

int transport_mux_reload_tls(transport_mux *m, char *err, size_t errlen)
{
    if (!m || !m->tls_server) return 0;
    if (tls_ctx_reload(m->tls_server, err, errlen) != 0) return -1;
    return tls_ctx_reload(m->tls_client, err, errlen);
}
