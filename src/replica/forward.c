#include "replica/forward.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/server.h"
#include "net/tls.h"
#include "obs/log.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/strconv.h"

#define FORWARD_BREAKER_FAILURES 5
#define FORWARD_BREAKER_COOLDOWN_MS 1000
#define FORWARD_MAX_IDLE_MS 10000 /* never reuse a connection idle longer */
#define FORWARD_MAX_RESPONSE (64u << 20)

typedef struct fwd_conn fwd_conn;
typedef struct fwd_peer fwd_peer;

struct fwd_peer {
    uint64_t id;
    char addr[160];
    fwd_conn *idle;
    int failures;
    int state; /* 0 closed, 1 open, 2 half-open (probe in flight) */
    int64_t open_until;
    fwd_peer *next;
};

struct fwd_conn {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    forward *f;
    fwd_peer *peer;
    forward_req *req;
    buf in; /* the response, plaintext */
    tls_conn *tls;
    buf cipher;      /* TLS: records to send */
    char raw[16384]; /* TLS: records read from the socket */
    int64_t idle_since;
    bool closing;
    fwd_conn *next;
};

/* TLS output is produced in pieces (handshake, then the request), so each
 * write owns a copy of its bytes. */
typedef struct fwd_write {
    uv_write_t w;
    fwd_conn *c;
    char data[];
} fwd_write;

struct forward_req {
    forward *f;
    fwd_peer *peer;
    fwd_conn *conn;
    buf out;
    uv_timer_t timer;
    forward_cb cb;
    void *ctx;
    bool sent;
    bool done;
    forward_req *prev, *next; /* active requests */
};

struct forward {
    uv_loop_t *loop;
    fwd_peer *peers;
    uint64_t n_sent, n_failed;
    forward_req *active;
    bool closing;
    tls_ctx *tls;            /* owned; NULL: plain text */
    char extra_headers[600]; /* e.g. the Authorization of --join */
};

void forward_set_headers(forward *f, const char *lines)
{
    snprintf(f->extra_headers, sizeof(f->extra_headers), "%s", lines);
}

forward *forward_create(uv_loop_t *loop, tls_ctx *tls)
{
    forward *f = xcalloc(1, sizeof(*f));
    f->loop = loop;
    f->tls = tls;
    return f;
}

int forward_reload_tls(forward *f, char *err, size_t errlen)
{
    return f->tls ? tls_ctx_reload(f->tls, err, errlen) : 0;
}

static void fwd__conn_closed(uv_handle_t *h)
{
    fwd_conn *c = h->data;
    buf_close(&c->in);
    buf_close(&c->cipher);
    tls_conn_free(c->tls);
    free(c);
}

static void fwd__conn_close(fwd_conn *c)
{
    if (c->closing) return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, fwd__conn_closed);
}

static fwd_peer *fwd__peer(forward *f, uint64_t id, const char *addr)
{
    fwd_peer *p;
    for (p = f->peers; p; p = p->next)
        if (p->id == id) break;
    if (!p) {
        p = xcalloc(1, sizeof(*p));
        p->id = id;
        p->next = f->peers;
        f->peers = p;
    }
    if (strcmp(p->addr, addr) != 0) {
        snprintf(p->addr, sizeof(p->addr), "%s", addr);
        /* address changed: idle connections go to the old one */
        while (p->idle) {
            fwd_conn *c = p->idle;
            p->idle = c->next;
            fwd__conn_close(c);
        }
    }
    return p;
}

int forward_breaker_state(forward *f, uint64_t id)
{
    for (fwd_peer *p = f->peers; p; p = p->next)
        if (p->id == id) return p->state;
    return 0;
}

uint64_t forward_count(forward *f, int which)
{
    return which == 0 ? f->n_sent : f->n_failed;
}

static void fwd__req_freed(uv_handle_t *h)
{
    forward_req *r = h->data;
    buf_close(&r->out);
    free(r);
}

static void fwd__breaker_record(fwd_peer *p, bool ok)
{
    if (ok) {
        p->failures = 0;
        p->state = 0;
        return;
    }
    p->failures++;
    if (p->state == 2 || p->failures >= FORWARD_BREAKER_FAILURES) {
        p->state = 1;
        p->open_until = net_now_ms() + FORWARD_BREAKER_COOLDOWN_MS;
    }
}

/* Finish a request once: callback, breaker bookkeeping, release. */
static void fwd__finish(forward_req *r, int status, int http_status, const char *body, size_t len)
{
    if (r->done) return;
    r->done = true;
    if (r->prev)
        r->prev->next = r->next;
    else
        r->f->active = r->next;
    if (r->next) r->next->prev = r->prev;
    uv_timer_stop(&r->timer);
    fwd_peer *p = r->peer;
    bool ok = status == FORWARD_OK && http_status < 500;
    /* the breaker tracks reachability: any response counts as success */
    if (status != FORWARD_ERR_CANCELED) fwd__breaker_record(p, status == FORWARD_OK);
    if (!ok) r->f->n_failed++;
    fwd_conn *c = r->conn;
    r->conn = NULL;
    if (c) {
        c->req = NULL;
        if (status == FORWARD_OK && !c->closing && !r->f->closing) {
            c->idle_since = net_now_ms();
            c->next = p->idle;
            p->idle = c;
        } else {
            fwd__conn_close(c);
        }
    }
    if (r->cb) r->cb(r->ctx, status, r->sent, http_status, body, len);
    uv_close((uv_handle_t *)&r->timer, fwd__req_freed);
}

static void fwd__on_timeout(uv_timer_t *t)
{
    forward_req *r = t->data;
    fwd__finish(r, FORWARD_ERR_TIMEOUT, 0, NULL, 0);
}

/* Parse a whole response in c->in; 1 done, 0 need more, -1 bad. */
static int fwd__parse(fwd_conn *c, int *status, const char **body, size_t *len)
{
    const char *d = buf_unread(&c->in);
    size_t n = buf_unread_len(&c->in);
    const char *end = memmem(d, n, "\r\n\r\n", 4);
    if (!end) return n > 65536 ? -1 : 0;
    if (n < 12 || memcmp(d, "HTTP/1.", 7) != 0) return -1;
    *status = (d[9] - '0') * 100 + (d[10] - '0') * 10 + (d[11] - '0');
    size_t head = (size_t)(end - d) + 4;
    uint64_t cl = 0;
    for (const char *line = memchr(d, '\n', head); line && line < end;
         line = memchr(line + 1, '\n', (size_t)(end - line))) {
        const char *l = line + 1;
        if ((size_t)(end - l) > 15 && strncasecmp(l, "Content-Length:", 15) == 0) {
            const char *v = l + 15;
            while (*v == ' ') v++;
            const char *e = v;
            while (*e >= '0' && *e <= '9') e++;
            if (!strconv_parse_u64(v, (size_t)(e - v), &cl) || cl > FORWARD_MAX_RESPONSE) return -1;
        }
    }
    if (n - head < cl) return 0;
    *body = d + head;
    *len = (size_t)cl;
    return 1;
}

static void fwd__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    fwd_conn *c = h->data;
    (void)suggested;
    if (c->tls) { /* records go through TLS into c->in */
        b->base = c->raw;
        b->len = sizeof(c->raw);
        return;
    }
    buf_reserve(&c->in, 16384);
    b->base = c->in.data + c->in.len;
    b->len = c->in.cap - c->in.len - 1;
}

/* The request may have reached the peer from now on: a failure after this
 * leaves its outcome unknown. */
static void fwd__mark_sent(forward_req *r)
{
    if (r->sent) return;
    r->sent = true;
    r->f->n_sent++;
}

static int fwd__failure(const forward_req *r)
{
    return r->sent ? FORWARD_ERR_IO : FORWARD_ERR_CONNECT;
}

/* Close a connection that may sit in its peer's idle list. */
static void fwd__drop(fwd_conn *c)
{
    for (fwd_conn **pp = &c->peer->idle; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    fwd__conn_close(c);
}

static void fwd__on_tls_write(uv_write_t *w, int status)
{
    fwd_write *fw = w->data;
    fwd_conn *c = fw->c;
    free(fw);
    if (status < 0 && c->req) fwd__finish(c->req, fwd__failure(c->req), 0, NULL, 0);
}

/* Send the records TLS produced. -1 if the write could not be started. */
static int fwd__flush_tls(fwd_conn *c)
{
    size_t n = buf_unread_len(&c->cipher);
    if (n == 0 || c->closing) return c->closing ? -1 : 0;
    fwd_write *fw = xmalloc(sizeof(*fw) + n);
    fw->c = c;
    fw->w.data = fw;
    memcpy(fw->data, buf_unread(&c->cipher), n);
    buf_reset(&c->cipher);
    uv_buf_t b = uv_buf_init(fw->data, (unsigned)n);
    if (uv_write(&fw->w, (uv_stream_t *)&c->tcp, &b, 1, fwd__on_tls_write) != 0) {
        free(fw);
        return -1;
    }
    return 0;
}

/* Decrypt n bytes of c->raw into c->in and send what TLS answers (the rest
 * of the handshake, then the request held until it finished). 0: go on; -1:
 * the connection failed, is closed, and its request (if any) finished. */
static int fwd__tls_read(fwd_conn *c, size_t n)
{
    forward_req *r = c->req;
    bool was_done = tls_conn_handshake_done(c->tls);
    char err[400];
    int rv = tls_conn_read(c->tls, c->raw, n, &c->in, &c->cipher, err, sizeof(err));
    /* the request goes out with the client's last handshake flight */
    if (r && !was_done && tls_conn_handshake_done(c->tls)) fwd__mark_sent(r);
    if (fwd__flush_tls(c) != 0 && rv == 0) {
        snprintf(err, sizeof(err), "write failed");
        rv = -1;
    }
    if (rv == 0) return 0;
    if (!tls_conn_handshake_done(c->tls))
        LOG_WARN("TLS connection to a member failed", LF_S("peer", c->peer->addr),
                 LF_S("error", err));
    fwd__drop(c);
    if (!r) return -1;
    /* a whole response followed by close_notify is still a response */
    int status = 0;
    const char *body = NULL;
    size_t len = 0;
    if (fwd__parse(c, &status, &body, &len) == 1)
        fwd__finish(r, FORWARD_OK, status, body, len);
    else
        fwd__finish(r, fwd__failure(r), 0, NULL, 0);
    return -1;
}

static void fwd__on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    fwd_conn *c = s->data;
    (void)b;
    if (n == 0) return;
    forward_req *r = c->req;
    if (n < 0) {
        if (r)
            fwd__finish(r, fwd__failure(r), 0, NULL, 0);
        else
            fwd__drop(c); /* an idle connection closed by the peer */
        return;
    }
    if (c->tls) {
        if (fwd__tls_read(c, (size_t)n) != 0) return;
    } else {
        c->in.len += (size_t)n;
        c->in.data[c->in.len] = '\0';
    }
    if (!r) return;
    int status = 0;
    const char *body = NULL;
    size_t len = 0;
    int rv = fwd__parse(c, &status, &body, &len);
    if (rv == 0) return;
    if (rv < 0) {
        fwd__finish(r, FORWARD_ERR_PROTOCOL, 0, NULL, 0);
        return;
    }
    /* the body lives in c->in until the callback returns */
    fwd__finish(r, FORWARD_OK, status, body, len);
    buf_reset(&c->in);
}

static void fwd__on_write(uv_write_t *w, int status)
{
    fwd_conn *c = w->data;
    if (status < 0 && c->req) fwd__finish(c->req, FORWARD_ERR_IO, 0, NULL, 0);
}

static void fwd__send(fwd_conn *c, forward_req *r)
{
    c->req = r;
    r->conn = c;
    buf_reset(&c->in);
    if (c->tls) {
        /* on a new connection this starts the handshake and holds the
         * request until it is done (the deadline timer bounds both) */
        if (tls_conn_write(c->tls, buf_unread(&r->out), buf_unread_len(&r->out), &c->cipher) != 0) {
            fwd__finish(r, fwd__failure(r), 0, NULL, 0);
            return;
        }
        if (tls_conn_handshake_done(c->tls)) fwd__mark_sent(r);
        if (fwd__flush_tls(c) != 0) {
            fwd__finish(r, fwd__failure(r), 0, NULL, 0);
            return;
        }
    } else {
        uv_buf_t b = uv_buf_init((char *)buf_unread(&r->out), (unsigned)buf_unread_len(&r->out));
        c->write.data = c;
        fwd__mark_sent(r);
        if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, fwd__on_write) != 0) {
            fwd__finish(r, FORWARD_ERR_IO, 0, NULL, 0);
            return;
        }
    }
    uv_read_start((uv_stream_t *)&c->tcp, fwd__alloc, fwd__on_read);
}

static void fwd__on_connect(uv_connect_t *cr, int status)
{
    fwd_conn *c = cr->data;
    forward_req *r = c->req;
    if (!r) { /* cancelled and timed out meanwhile */
        fwd__conn_close(c);
        return;
    }
    if (status < 0 || c->closing) {
        fwd__finish(r, FORWARD_ERR_CONNECT, 0, NULL, 0);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    fwd__send(c, r);
}

/* "host:port" or "[v6]:port" to a socket address; host (without brackets)
 * is what a TLS certificate is checked against. */
static int fwd__sockaddr(const char *addr, struct sockaddr_storage *ss, char *host, size_t hostlen)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= hostlen) return -1;
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (h[0] == '[') {
        h++;
        hl = strcspn(h, "]");
        if (h + hl >= colon) return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    int port = atoi(colon + 1);
    const char *ip = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
    if (uv_ip4_addr(ip, port, (struct sockaddr_in *)ss) == 0) return 0;
    if (uv_ip6_addr(ip, port, (struct sockaddr_in6 *)ss) == 0) return 0;
    return -1;
}

forward_req *forward_post(forward *f, uint64_t peer_id, const char *addr, const char *path,
                          const void *body, size_t body_len, bool relayed, double timeout_s,
                          forward_cb cb, void *ctx)
{
    if (f->closing) return NULL;
    fwd_peer *p = fwd__peer(f, peer_id, addr);
    int64_t now = net_now_ms();
    if (p->state == 1) {
        if (now < p->open_until) return NULL;
        p->state = 2; /* half-open: this request is the probe */
    } else if (p->state == 2) {
        return NULL; /* a probe is already in flight */
    }
    struct sockaddr_storage ss;
    char host[160];
    if (fwd__sockaddr(addr, &ss, host, sizeof(host)) != 0) return NULL;

    forward_req *r = xcalloc(1, sizeof(*r));
    r->f = f;
    r->peer = p;
    r->cb = cb;
    r->ctx = ctx;
    buf_init(&r->out);
    buf_printf(&r->out,
               "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\n"
               "%s%sContent-Length: %zu\r\n\r\n",
               path, addr, relayed ? "X-Cairn-Forwarded: 1\r\n" : "", f->extra_headers, body_len);
    buf_append(&r->out, body, body_len);
    uv_timer_init(f->loop, &r->timer);
    r->timer.data = r;
    r->next = f->active;
    if (f->active) f->active->prev = r;
    f->active = r;
    uv_timer_start(&r->timer, fwd__on_timeout, (uint64_t)(timeout_s * 1000) + 1, 0);

    /* reuse a recent idle connection; drop stale ones */
    while (p->idle) {
        fwd_conn *c = p->idle;
        p->idle = c->next;
        if (now - c->idle_since > FORWARD_MAX_IDLE_MS) {
            fwd__conn_close(c);
            continue;
        }
        fwd__send(c, r);
        return r;
    }
    fwd_conn *c = xcalloc(1, sizeof(*c));
    c->f = f;
    c->peer = p;
    buf_init(&c->in);
    buf_init(&c->cipher);
    uv_tcp_init(f->loop, &c->tcp);
    c->tcp.data = c;
    c->connect.data = c;
    c->req = r;
    r->conn = c;
    if ((f->tls && !(c->tls = tls_conn_new_client(f->tls, host))) ||
        uv_tcp_connect(&c->connect, &c->tcp, (struct sockaddr *)&ss, fwd__on_connect) != 0) {
        r->cb = NULL;
        fwd__finish(r, FORWARD_ERR_CONNECT, 0, NULL, 0);
        return NULL;
    }
    return r;
}

void forward_cancel(forward_req *r)
{
    if (!r || r->done) return;
    r->cb = NULL;
    fwd__finish(r, FORWARD_ERR_CANCELED, 0, NULL, 0);
}

void forward_close(forward *f)
{
    f->closing = true;
    while (f->active) forward_cancel(f->active);
    fwd_peer *p = f->peers;
    while (p) {
        while (p->idle) {
            fwd_conn *c = p->idle;
            p->idle = c->next;
            fwd__conn_close(c);
        }
        fwd_peer *next = p->next;
        free(p);
        p = next;
    }
    f->peers = NULL;
    /* connections still closing hold their own reference to the SSL_CTX */
    tls_ctx_free(f->tls);
    free(f);
}
