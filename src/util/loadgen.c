#include "util/loadgen.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"

#define LG_KEY_LEN 16
#define LG_READ_CHUNK 65536
#define LG_RECONNECT_DELAY_NS 50000000ull
#define LG_MAX_EVENTS 256

enum { LG_CLOSED, LG_CONNECTING, LG_OPEN };

/* What one answer meant. */
enum { LG_OK, LG_MISS, LG_SHED, LG_ERROR };

typedef struct lg_pending {
    uint64_t due_ns;  /* latency runs from here */
    uint64_t sent_ns; /* for the answer timeout */
    bool is_read;
} lg_pending;

typedef struct lg_conn {
    int fd;
    int state;
    bool want_out; /* EPOLLOUT is registered */
    uint64_t retry_at_ns;
    uint64_t connect_deadline_ns;
    buf out;
    buf in;
    lg_pending *ring; /* `pipeline` slots */
    unsigned head, count;
} lg_conn;

typedef struct lg {
    const loadgen_options *opt;
    loadgen_result *res;
    hdr_histogram interval;
    struct addrinfo *addr;
    int epfd;
    lg_conn *conns;
    uint64_t start_ns, end_ns;
    uint64_t rng;
    uint64_t next_seq_key;
    unsigned rr;     /* open loop: next connection to try */
    char *value;     /* value_size bytes */
    char *value_b64; /* etcd: the value in base64 */
    char host_header[300];
    uint64_t answered; /* all outcomes, including lost requests */
    uint64_t last_answer_ns;
    int open_conns;
} lg;

/* ---- helpers -------------------------------------------------------------- */

static uint64_t lg__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: fast, good enough to pick keys and operations. */
static uint64_t lg__rand(lg *g)
{
    uint64_t x = g->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    g->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static void lg__format_key(char out[LG_KEY_LEN], uint64_t n)
{
    out[0] = 'k';
    for (int i = LG_KEY_LEN - 1; i >= 1; i--) {
        out[i] = (char)('0' + n % 10);
        n /= 10;
    }
}

static size_t lg__b64(char *out, const unsigned char *in, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

/* ---- requests ------------------------------------------------------------- */

static void lg__append_request(lg *g, buf *b, bool is_read, const char key[LG_KEY_LEN])
{
    const loadgen_options *o = g->opt;
    switch (o->protocol) {
    case LOADGEN_HTTP:
        buf_append_str(b, is_read ? "GET /v1/key/" : "PUT /v1/key/");
        buf_append(b, key, LG_KEY_LEN);
        buf_append_str(b, " HTTP/1.1\r\nHost: ");
        buf_append_str(b, g->host_header);
        if (is_read) {
            buf_append_str(b, "\r\n\r\n");
        } else {
            buf_append_str(b, "\r\nContent-Length: ");
            buf_append_u64(b, o->value_size);
            buf_append_str(b, "\r\n\r\n");
            buf_append(b, g->value, o->value_size);
        }
        break;
    case LOADGEN_RESP:
        if (is_read) {
            buf_append_str(b, "*2\r\n$3\r\nGET\r\n$16\r\n");
            buf_append(b, key, LG_KEY_LEN);
            buf_append_str(b, "\r\n");
        } else {
            buf_append_str(b, "*3\r\n$3\r\nSET\r\n$16\r\n");
            buf_append(b, key, LG_KEY_LEN);
            buf_append_str(b, "\r\n$");
            buf_append_u64(b, o->value_size);
            buf_append_str(b, "\r\n");
            buf_append(b, g->value, o->value_size);
            buf_append_str(b, "\r\n");
        }
        break;
    case LOADGEN_MEMCACHE:
        buf_append_str(b, is_read ? "get " : "set ");
        buf_append(b, key, LG_KEY_LEN);
        if (!is_read) {
            buf_append_str(b, " 0 0 ");
            buf_append_u64(b, o->value_size);
            buf_append_str(b, "\r\n");
            buf_append(b, g->value, o->value_size);
        }
        buf_append_str(b, "\r\n");
        break;
    case LOADGEN_ETCD: {
        char key64[32];
        lg__b64(key64, (const unsigned char *)key, LG_KEY_LEN);
        size_t body = strlen("{\"key\":\"\"}") + strlen(key64);
        if (!is_read) body += strlen(",\"value\":\"\"") + strlen(g->value_b64);
        buf_append_str(b, is_read ? "POST /v3/kv/range" : "POST /v3/kv/put");
        buf_append_str(b, " HTTP/1.1\r\nHost: ");
        buf_append_str(b, g->host_header);
        buf_append_str(b, "\r\nContent-Type: application/json\r\nContent-Length: ");
        buf_append_u64(b, body);
        buf_append_str(b, "\r\n\r\n{\"key\":\"");
        buf_append_str(b, key64);
        if (!is_read) {
            buf_append_str(b, "\",\"value\":\"");
            buf_append_str(b, g->value_b64);
        }
        buf_append_str(b, "\"}");
        break;
    }
    }
}

/* Queue one request on c, due at due_ns. */
static void lg__issue(lg *g, lg_conn *c, uint64_t due_ns, uint64_t now)
{
    const loadgen_options *o = g->opt;
    uint64_t n;
    if (o->keys == LOADGEN_KEYS_SEQUENTIAL)
        n = g->next_seq_key++ % o->keyspace;
    else
        n = lg__rand(g) % o->keyspace;
    bool is_read = o->read_ratio >= 1 ||
                   (o->read_ratio > 0 && (double)(lg__rand(g) >> 11) * 0x1.0p-53 < o->read_ratio);
    char key[LG_KEY_LEN];
    lg__format_key(key, n);
    lg__append_request(g, &c->out, is_read, key);
    unsigned slot = (c->head + c->count) % o->pipeline;
    c->ring[slot] = (lg_pending){.due_ns = due_ns, .sent_ns = now, .is_read = is_read};
    c->count++;
    g->res->sent++;
}

/* ---- answers -------------------------------------------------------------- */

/* Each parser looks at the unread bytes of one connection and returns the
 * length of one complete answer (setting *outcome), 0 when more bytes are
 * needed, or -1 when the bytes cannot be an answer. */

static const char *lg__line_end(const char *p, size_t n)
{
    const char *cr = memchr(p, '\r', n);
    return cr && (size_t)(cr - p) + 1 < n && cr[1] == '\n' ? cr : NULL;
}

static bool lg__parse_len(const char *p, const char *end, long long *out)
{
    bool neg = p < end && *p == '-';
    if (neg) p++;
    if (p == end) return false;
    long long v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9' || v > 1000000000000ll) return false;
        v = v * 10 + (*p - '0');
    }
    *out = neg ? -v : v;
    return true;
}

static long lg__parse_resp_value(const char *p, size_t n, int *outcome, int depth)
{
    if (n < 3) return 0;
    const char *eol = lg__line_end(p, n);
    if (!eol) return n > 65536 ? -1 : 0;
    size_t line = (size_t)(eol - p) + 2;
    long long len;
    switch (p[0]) {
    case '+':
    case ':':
        *outcome = LG_OK;
        return (long)line;
    case '-':
        *outcome = (eol - p >= 5 && memcmp(p, "-BUSY", 5) == 0) ? LG_SHED : LG_ERROR;
        return (long)line;
    case '_':
        *outcome = LG_MISS;
        return (long)line;
    case '$':
        if (!lg__parse_len(p + 1, eol, &len) || len < -1) return -1;
        if (len == -1) {
            *outcome = LG_MISS;
            return (long)line;
        }
        if (n < line + (size_t)len + 2) return 0;
        *outcome = LG_OK;
        return (long)(line + (size_t)len + 2);
    case '*': {
        if (depth > 8 || !lg__parse_len(p + 1, eol, &len) || len < -1) return -1;
        *outcome = len == -1 ? LG_MISS : LG_OK;
        size_t off = line;
        for (long long i = 0; i < len; i++) {
            int inner;
            long m = lg__parse_resp_value(p + off, n - off, &inner, depth + 1);
            if (m <= 0) return m;
            off += (size_t)m;
        }
        return (long)off;
    }
    default:
        return -1;
    }
}

static long lg__parse_memcache(const char *p, size_t n, int *outcome)
{
    const char *eol = lg__line_end(p, n);
    if (!eol) return n > 65536 ? -1 : 0;
    size_t line = (size_t)(eol - p) + 2;
    size_t ll = (size_t)(eol - p);
    if (ll >= 6 && memcmp(p, "VALUE ", 6) == 0) {
        /* VALUE <key> <flags> <bytes> [<cas>] */
        const char *f[5];
        size_t nf = 0;
        for (const char *q = p; q < eol && nf < 5; q++)
            if (*q == ' ') f[nf++] = q + 1;
        if (nf < 3) return -1;
        const char *bytes_end = nf > 3 ? f[3] - 1 : eol;
        long long len;
        if (!lg__parse_len(f[2], bytes_end, &len) || len < 0) return -1;
        size_t need = line + (size_t)len + 2 + 5;
        if (n < need) return 0;
        if (memcmp(p + need - 5, "END\r\n", 5) != 0) return -1;
        *outcome = LG_OK;
        return (long)need;
    }
    if (ll == 3 && memcmp(p, "END", 3) == 0) {
        *outcome = LG_MISS;
        return (long)line;
    }
    if ((ll == 6 && memcmp(p, "STORED", 6) == 0) ||
        (ll == 10 && memcmp(p, "NOT_STORED", 10) == 0)) {
        *outcome = LG_OK;
        return (long)line;
    }
    *outcome = LG_ERROR; /* ERROR, CLIENT_ERROR ..., SERVER_ERROR ... */
    return (long)line;
}

/* One HTTP/1.1 response with a Content-Length or chunked body. */
static long lg__parse_http(const char *p, size_t n, bool etcd_range, int *outcome)
{
    const char *hend = memmem(p, n, "\r\n\r\n", 4);
    if (!hend) return n > 65536 ? -1 : 0;
    size_t hlen = (size_t)(hend - p) + 4;
    if (hlen < 12 || memcmp(p, "HTTP/1.", 7) != 0) return -1;
    int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    long long clen = -1;
    bool chunked = false;
    const char *line = memchr(p, '\n', hlen) + 1;
    while (line < hend) {
        const char *eol = memchr(line, '\r', (size_t)(hend + 2 - line));
        if (!eol) break;
        size_t ll = (size_t)(eol - line);
        if (ll > 15 && strncasecmp(line, "content-length:", 15) == 0) {
            const char *v = line + 15;
            while (v < eol && *v == ' ') v++;
            if (!lg__parse_len(v, eol, &clen) || clen < 0) return -1;
        } else if (ll > 18 && strncasecmp(line, "transfer-encoding:", 18) == 0) {
            chunked = memmem(line, ll, "chunked", 7) != NULL;
        }
        line = eol + 2;
    }
    size_t total = hlen;
    const char *body = p + hlen;
    size_t body_len = 0;
    if (chunked) {
        size_t off = hlen;
        for (;;) {
            const char *eol = lg__line_end(p + off, n - off);
            if (!eol) return 0;
            unsigned long long sz = strtoull(p + off, NULL, 16);
            off = (size_t)(eol - p) + 2;
            if (sz == 0) {
                /* trailers end with an empty line */
                const char *end = memmem(p + off - 2, n - off + 2, "\r\n\r\n", 4);
                if (!end) return 0;
                total = (size_t)(end - p) + 4;
                break;
            }
            if (n < off + sz + 2) return 0;
            off += sz + 2;
        }
        body_len = total - hlen; /* approximate: chunk framing included */
    } else if (clen > 0) {
        if (n < hlen + (size_t)clen) return 0;
        total = hlen + (size_t)clen;
        body_len = (size_t)clen;
    }
    if (status >= 200 && status < 300) {
        /* etcd answers 200 for a range that finds nothing: no "kvs" */
        *outcome = etcd_range && !memmem(body, body_len, "\"kvs\"", 5) ? LG_MISS : LG_OK;
    } else if (status == 404) {
        *outcome = LG_MISS;
    } else if (status == 503 || status == 429) {
        *outcome = LG_SHED;
    } else {
        *outcome = LG_ERROR;
    }
    return (long)total;
}

static long lg__parse(lg *g, const char *p, size_t n, bool is_read, int *outcome)
{
    switch (g->opt->protocol) {
    case LOADGEN_HTTP:
        return lg__parse_http(p, n, false, outcome);
    case LOADGEN_ETCD:
        return lg__parse_http(p, n, is_read, outcome);
    case LOADGEN_RESP:
        return lg__parse_resp_value(p, n, outcome, 0);
    case LOADGEN_MEMCACHE:
        return lg__parse_memcache(p, n, outcome);
    }
    return -1;
}

static void lg__account(lg *g, const lg_pending *pd, int outcome, uint64_t now)
{
    loadgen_result *r = g->res;
    g->answered++;
    g->last_answer_ns = now;
    if (pd->is_read)
        r->reads++;
    else
        r->writes++;
    switch (outcome) {
    case LG_OK:
        r->ok++;
        break;
    case LG_MISS:
        r->misses++;
        break;
    case LG_SHED:
        r->shed++;
        return; /* refused work has no service latency */
    default:
        r->errors++;
        break;
    }
    uint64_t lat = now > pd->due_ns ? now - pd->due_ns : 0;
    hdr_record(&r->latency, lat);
    hdr_record(&g->interval, lat);
}

/* ---- connections ---------------------------------------------------------- */

static void lg__set_events(lg *g, lg_conn *c, bool want_out)
{
    if (c->want_out == want_out) return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(g->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want_out;
}

static void lg__close(lg *g, lg_conn *c, uint64_t now, bool lost)
{
    if (c->state != LG_CLOSED) {
        epoll_ctl(g->epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        if (c->state == LG_OPEN) g->open_conns--;
    }
    if (lost) {
        g->res->conn_errors += c->count;
        g->answered += c->count;
    }
    c->fd = -1;
    c->state = LG_CLOSED;
    c->want_out = false;
    c->head = c->count = 0;
    buf_reset(&c->out);
    buf_reset(&c->in);
    c->retry_at_ns = now + LG_RECONNECT_DELAY_NS;
}

static int lg__connect(lg *g, lg_conn *c, uint64_t now)
{
    int last = ECONNREFUSED;
    for (struct addrinfo *a = g->addr; a; a = a->ai_next) {
        int fd =
            socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
            last = errno;
            close(fd);
            continue;
        }
        c->fd = fd;
        c->state = LG_CONNECTING;
        c->want_out = true;
        c->connect_deadline_ns = now + (uint64_t)(g->opt->timeout_s * 1e9);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        epoll_ctl(g->epfd, EPOLL_CTL_ADD, fd, &ev);
        return 0;
    }
    c->retry_at_ns = now + LG_RECONNECT_DELAY_NS;
    return -last;
}

/* Write what is queued; ask for EPOLLOUT only while something is left. */
static void lg__flush(lg *g, lg_conn *c, uint64_t now)
{
    while (buf_unread_len(&c->out)) {
        ssize_t w = write(c->fd, buf_unread(&c->out), buf_unread_len(&c->out));
        if (w > 0) {
            buf_consume(&c->out, (size_t)w);
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            lg__set_events(g, c, true);
            return;
        }
        lg__close(g, c, now, true);
        return;
    }
    buf_reset(&c->out);
    lg__set_events(g, c, false);
}

static void lg__on_readable(lg *g, lg_conn *c)
{
    for (;;) {
        buf_compact(&c->in);
        buf_reserve(&c->in, LG_READ_CHUNK);
        size_t room = c->in.cap - c->in.len - 1;
        ssize_t r = read(c->fd, c->in.data + c->in.len, room);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        uint64_t now = lg__now();
        if (r <= 0) {
            lg__close(g, c, now, true);
            return;
        }
        c->in.len += (size_t)r;
        c->in.data[c->in.len] = '\0';
        while (buf_unread_len(&c->in)) {
            if (c->count == 0) {
                lg__close(g, c, now, true); /* an answer nobody asked for */
                return;
            }
            const lg_pending *pd = &c->ring[c->head];
            int outcome = LG_ERROR;
            long m =
                lg__parse(g, buf_unread(&c->in), buf_unread_len(&c->in), pd->is_read, &outcome);
            if (m == 0) break;
            if (m < 0) {
                lg__close(g, c, now, true);
                return;
            }
            buf_consume(&c->in, (size_t)m);
            lg__account(g, pd, outcome, now);
            c->head = (c->head + 1) % g->opt->pipeline;
            c->count--;
        }
        if ((size_t)r < room) break; /* drained the socket */
    }
}

static void lg__on_connected(lg *g, lg_conn *c, uint64_t now)
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr) {
        lg__close(g, c, now, false);
        return;
    }
    c->state = LG_OPEN;
    g->open_conns++;
    lg__set_events(g, c, false);
}

/* ---- the run -------------------------------------------------------------- */

static bool lg__more_to_send(const lg *g)
{
    return !g->opt->requests || g->res->sent < g->opt->requests;
}

static void lg__issue_closed_loop(lg *g, uint64_t now)
{
    const loadgen_options *o = g->opt;
    for (unsigned i = 0; i < o->connections && lg__more_to_send(g); i++) {
        lg_conn *c = &g->conns[i];
        if (c->state != LG_OPEN || c->count) continue;
        /* Refill only an idle connection, the whole pipeline at once, as
         * redis-benchmark -P does: one write per batch. */
        while (c->count < o->pipeline && lg__more_to_send(g)) lg__issue(g, c, now, now);
        lg__flush(g, c, now);
    }
}

static uint64_t lg__due_ns(const lg *g, uint64_t i)
{
    return g->start_ns + (uint64_t)((double)i * 1e9 / g->opt->rate);
}

/* Sends every request that is due, as long as some connection has room.
 * Returns true when requests are due but every connection is full: the
 * caller then waits for answers rather than for the clock. */
static bool lg__issue_open_loop(lg *g, uint64_t now)
{
    const loadgen_options *o = g->opt;
    double due = (double)(now - g->start_ns) * o->rate / 1e9;
    uint64_t due_count = (uint64_t)due + 1;
    if (o->requests && due_count > o->requests) due_count = o->requests;
    unsigned tried = 0;
    while (g->res->sent < due_count && tried < o->connections) {
        lg_conn *c = &g->conns[g->rr];
        if (c->state == LG_OPEN && c->count < o->pipeline) {
            lg__issue(g, c, lg__due_ns(g, g->res->sent), now);
            tried = 0;
        } else {
            tried++;
        }
        g->rr = (g->rr + 1) % o->connections;
    }
    for (unsigned i = 0; i < o->connections; i++) {
        lg_conn *c = &g->conns[i];
        if (c->state == LG_OPEN && buf_unread_len(&c->out) && !c->want_out) lg__flush(g, c, now);
    }
    return g->res->sent < due_count;
}

static uint64_t lg__backlog(const lg *g, uint64_t now)
{
    if (g->opt->rate <= 0) return 0;
    uint64_t due = (uint64_t)((double)(now - g->start_ns) * g->opt->rate / 1e9);
    if (g->opt->requests && due > g->opt->requests) due = g->opt->requests;
    return due > g->res->sent ? due - g->res->sent : 0;
}

/* Connections: reopen closed ones, fail slow connects and answers. */
static void lg__maintain(lg *g, uint64_t now)
{
    uint64_t timeout = (uint64_t)(g->opt->timeout_s * 1e9);
    for (unsigned i = 0; i < g->opt->connections; i++) {
        lg_conn *c = &g->conns[i];
        if (c->state == LG_CLOSED && now >= c->retry_at_ns) {
            if (lg__connect(g, c, now) == 0) g->res->reconnects++;
        } else if (c->state == LG_CONNECTING && now > c->connect_deadline_ns) {
            lg__close(g, c, now, false);
        } else if (c->state == LG_OPEN && c->count && now - c->ring[c->head].sent_ns > timeout) {
            lg__close(g, c, now, true);
        }
    }
}

static void lg__poll(lg *g, uint64_t wait_ns)
{
    struct epoll_event ev[LG_MAX_EVENTS];
    struct timespec ts = {.tv_sec = (time_t)(wait_ns / 1000000000ull),
                          .tv_nsec = (long)(wait_ns % 1000000000ull)};
    int n = epoll_pwait2(g->epfd, ev, LG_MAX_EVENTS, &ts, NULL);
    if (n < 0 && errno == ENOSYS)
        n = epoll_wait(g->epfd, ev, LG_MAX_EVENTS, (int)(wait_ns / 1000000));
    for (int i = 0; i < n; i++) {
        lg_conn *c = ev[i].data.ptr;
        uint64_t now = lg__now();
        if (c->state == LG_CONNECTING) {
            if (ev[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) lg__on_connected(g, c, now);
            continue;
        }
        if (c->state != LG_OPEN) continue;
        if (ev[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) lg__on_readable(g, c);
        if (c->state == LG_OPEN && (ev[i].events & EPOLLOUT)) lg__flush(g, c, now);
    }
}

static void lg__report(lg *g, uint64_t now, uint64_t *last_ns, uint64_t *last_answered)
{
    const loadgen_result *r = g->res;
    double dt = (double)(now - *last_ns) / 1e9;
    loadgen_progress p = {
        .elapsed_s = (double)(now - g->start_ns) / 1e9,
        .completed = g->answered,
        .interval_rate = dt > 0 ? (double)(g->answered - *last_answered) / dt : 0,
        .interval_p99_ns = hdr_percentile(&g->interval, 99),
        .shed = r->shed,
        .errors = r->errors + r->conn_errors,
        .backlog = lg__backlog(g, now),
    };
    g->opt->progress(&p, g->opt->progress_ctx);
    hdr_reset(&g->interval);
    *last_ns = now;
    *last_answered = g->answered;
}

static int lg__validate(const loadgen_options *o, char *err, size_t errlen)
{
    if (!o->host || !o->port) {
        snprintf(err, errlen, "no address to connect to");
        return -EINVAL;
    }
    if (o->connections < 1 || o->connections > 100000) {
        snprintf(err, errlen, "connections must be 1..100000");
        return -EINVAL;
    }
    if (o->pipeline < 1 || o->pipeline > 100000) {
        snprintf(err, errlen, "pipeline must be 1..100000");
        return -EINVAL;
    }
    if (o->duration_s <= 0 && o->requests == 0) {
        snprintf(err, errlen, "give a duration or a number of requests");
        return -EINVAL;
    }
    if (o->keyspace < 1 || o->keyspace > 999999999999999ull) {
        snprintf(err, errlen, "keyspace must be 1..999999999999999 (15 digits)");
        return -EINVAL;
    }
    if (!(o->read_ratio >= 0 && o->read_ratio <= 1)) {
        snprintf(err, errlen, "read ratio must be 0..1");
        return -EINVAL;
    }
    if (!(o->rate >= 0) || !(o->timeout_s > 0)) {
        snprintf(err, errlen, "rate must be >= 0 and timeout > 0");
        return -EINVAL;
    }
    if (o->value_size > (64u << 20)) {
        snprintf(err, errlen, "value size must be at most 64 MiB");
        return -EINVAL;
    }
    return 0;
}

static int lg__open(lg *g, char *err, size_t errlen)
{
    const loadgen_options *o = g->opt;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int gai = getaddrinfo(o->host, o->port, &hints, &g->addr);
    if (gai) {
        snprintf(err, errlen, "cannot resolve %s: %s", o->host, gai_strerror(gai));
        return -EINVAL;
    }
    g->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (g->epfd < 0) {
        snprintf(err, errlen, "epoll: %s", strerror(errno));
        return -errno;
    }
    bool v6 = strchr(o->host, ':') != NULL;
    snprintf(g->host_header, sizeof(g->host_header), v6 ? "[%s]:%s" : "%s:%s", o->host, o->port);
    g->value = xmalloc(o->value_size + 1);
    for (size_t i = 0; i < o->value_size; i++) g->value[i] = (char)('a' + i % 26);
    g->value[o->value_size] = '\0';
    g->value_b64 = xmalloc(o->value_size / 3 * 4 + 8);
    lg__b64(g->value_b64, (const unsigned char *)g->value, o->value_size);
    g->conns = xcalloc(o->connections, sizeof(*g->conns));
    uint64_t now = lg__now();
    int last = 0;
    for (unsigned i = 0; i < o->connections; i++) {
        lg_conn *c = &g->conns[i];
        c->fd = -1;
        buf_init(&c->out);
        buf_init(&c->in);
        c->ring = xcalloc(o->pipeline, sizeof(*c->ring));
        int rc = lg__connect(g, c, now);
        if (rc < 0) last = rc;
    }
    /* Every connection opens before the clock starts. */
    uint64_t deadline = now + (uint64_t)(o->timeout_s * 1e9);
    while (g->open_conns < (int)o->connections && lg__now() < deadline) {
        bool pending = false;
        for (unsigned i = 0; i < o->connections; i++) pending |= g->conns[i].state == LG_CONNECTING;
        if (!pending) break;
        lg__poll(g, 10000000);
    }
    if (g->open_conns == 0) {
        snprintf(err, errlen, "cannot connect to %s: %s", g->host_header,
                 strerror(last ? -last : ECONNREFUSED));
        return -ECONNREFUSED;
    }
    return 0;
}

static void lg__free(lg *g)
{
    if (g->conns) {
        for (unsigned i = 0; i < g->opt->connections; i++) {
            lg_conn *c = &g->conns[i];
            if (c->fd >= 0) close(c->fd);
            buf_close(&c->out);
            buf_close(&c->in);
            free(c->ring);
        }
        free(g->conns);
    }
    if (g->epfd >= 0) close(g->epfd);
    if (g->addr) freeaddrinfo(g->addr);
    free(g->value);
    free(g->value_b64);
    hdr_close(&g->interval);
}

int loadgen_run(const loadgen_options *opt, loadgen_result *res, char *err, size_t errlen)
{
    int rc = lg__validate(opt, err, errlen);
    if (rc < 0) return rc;
    memset(res, 0, sizeof(*res));
    hdr_init(&res->latency);
    lg g = {.opt = opt, .res = res, .epfd = -1};
    g.rng = opt->seed ? opt->seed : 0x9E3779B97F4A7C15ull;
    hdr_init(&g.interval);
    rc = lg__open(&g, err, errlen);
    if (rc < 0) {
        lg__free(&g);
        hdr_close(&res->latency);
        return rc;
    }
    bool open_loop = opt->rate > 0;
    uint64_t progress_every = (uint64_t)(opt->progress_interval_s * 1e9);
    g.start_ns = lg__now();
    g.end_ns = opt->duration_s > 0 ? g.start_ns + (uint64_t)(opt->duration_s * 1e9) : UINT64_MAX;
    g.last_answer_ns = g.start_ns;
    uint64_t next_report = g.start_ns + progress_every, last_report = g.start_ns;
    uint64_t last_answered = 0, next_maintain = g.start_ns;
    for (;;) {
        uint64_t now = lg__now();
        if (now >= g.end_ns) break;
        if (opt->requests && g.answered >= opt->requests) break;
        if (now >= next_maintain) {
            lg__maintain(&g, now);
            next_maintain = now + 10000000;
        }
        bool blocked = false;
        if (open_loop)
            blocked = lg__issue_open_loop(&g, now);
        else
            lg__issue_closed_loop(&g, now);
        if (opt->progress && progress_every && now >= next_report) {
            lg__report(&g, now, &last_report, &last_answered);
            next_report += progress_every;
            if (next_report < now) next_report = now + progress_every;
        }
        uint64_t wake = next_maintain;
        if (opt->progress && progress_every && next_report < wake) wake = next_report;
        if (g.end_ns < wake) wake = g.end_ns;
        if (open_loop && !blocked && lg__more_to_send(&g)) {
            uint64_t due = lg__due_ns(&g, res->sent);
            if (due < wake) wake = due;
        }
        lg__poll(&g, wake > now ? wake - now : 0);
    }
    uint64_t stop = lg__now();
    /* A timed run ends at its deadline, like wrk: answers still in flight
     * are not counted. A counted run ends with its last answer. */
    if (opt->duration_s > 0 && stop >= g.end_ns)
        res->elapsed_s = opt->duration_s;
    else
        res->elapsed_s = (double)(g.last_answer_ns - g.start_ns) / 1e9;
    lg__free(&g);
    return 0;
}

void loadgen_result_close(loadgen_result *res)
{
    hdr_close(&res->latency);
}

double loadgen_result_throughput(const loadgen_result *res)
{
    uint64_t answered = res->ok + res->misses + res->shed + res->errors;
    return res->elapsed_s > 0 ? (double)answered / res->elapsed_s : 0;
}

void loadgen_options_default(loadgen_options *o)
{
    memset(o, 0, sizeof(*o));
    o->protocol = LOADGEN_HTTP;
    o->connections = 50;
    o->duration_s = 10;
    o->keyspace = 100000;
    o->value_size = 100;
    o->read_ratio = 0.5;
    o->pipeline = 1;
    o->keys = LOADGEN_KEYS_RANDOM;
    o->timeout_s = 10;
    o->progress_interval_s = 1;
}

static const char *const lg__protocol_names[] = {
    [LOADGEN_HTTP] = "http",
    [LOADGEN_RESP] = "resp",
    [LOADGEN_MEMCACHE] = "memcache",
    [LOADGEN_ETCD] = "etcd",
};

const char *loadgen_protocol_name(loadgen_protocol p)
{
    return (unsigned)p < sizeof(lg__protocol_names) / sizeof(lg__protocol_names[0])
               ? lg__protocol_names[p]
               : "?";
}

int loadgen_protocol_parse(const char *s, loadgen_protocol *out)
{
    for (size_t i = 0; i < sizeof(lg__protocol_names) / sizeof(lg__protocol_names[0]); i++) {
        if (strcmp(s, lg__protocol_names[i]) == 0) {
            *out = (loadgen_protocol)i;
            return 0;
        }
    }
    return -1;
}
