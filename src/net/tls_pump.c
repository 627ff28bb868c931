/* tls_pump: a TLS connection on a TCP socket, offered as a plaintext uv
 * stream (tls_pump.h). */
#include "net/tls_pump.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "obs/log.h"
#include "util/alloc.h"
#include "util/buf.h"

typedef struct tls_pump {
    uv_loop_t *loop;
    uv_tcp_t *tcp;  /* ciphertext */
    uv_pipe_t ours; /* plaintext: our end of the socketpair */
    tls_conn *tls;
    tls_pump_side side;
    int open; /* handles not yet closed */
    bool closing;
    bool tcp_paused, ours_paused; /* reads stopped while the other side's writes wait */
    buf plain, cipher;
    char rbuf[64 * 1024];
} tls_pump;

typedef struct pump_write {
    uv_write_t w;
    tls_pump *p;
    size_t n;
    char data[];
} pump_write;

static uint64_t pump_failures;
/* the last log line's time per side (tls_pump_side) */
static uint64_t last_log_ms[2];

uint64_t tls_pump_failures(void)
{
    return pump_failures;
}

static void pump__closed(uv_handle_t *h)
{
    tls_pump *p = h->data;
    if (--p->open > 0) return;
    tls_conn_free(p->tls);
    buf_close(&p->plain);
    buf_close(&p->cipher);
    free(p->tcp);
    free(p);
}

static void pump__close(tls_pump *p)
{
    if (p->closing) return;
    p->closing = true;
    uv_close((uv_handle_t *)p->tcp, pump__closed);
    uv_close((uv_handle_t *)&p->ours, pump__closed);
}

static void pump__fail(tls_pump *p, const char *why)
{
    pump_failures++;
    uint64_t now = uv_now(p->loop);
    if (last_log_ms[p->side] == 0 || now - last_log_ms[p->side] >= 1000) {
        last_log_ms[p->side] = now ? now : 1;
        LOG_WARN("TLS connection closed",
                 LF_S("conn", p->side == TLS_PUMP_DIALED ? "peer, outgoing" : "peer, incoming"),
                 LF_S("why", why), LF_I("failures_total", (long long)pump_failures));
    }
    pump__close(p);
}

static void pump__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    tls_pump *p = h->data;
    *b = uv_buf_init(p->rbuf, sizeof p->rbuf);
}

static void pump__read_tcp(uv_stream_t *s, ssize_t n, const uv_buf_t *b);
static void pump__read_ours(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

/* A side's writes drained enough: read the other side again. */
static void pump__written(uv_write_t *w, int status)
{
    pump_write *pw = (pump_write *)w;
    tls_pump *p = pw->p;
    uv_stream_t *to = w->handle;
    free(pw);
    if (p->closing) return;
    if (status != 0) {
        pump__close(p);
        return;
    }
    size_t queued = uv_stream_get_write_queue_size(to);
    if (queued > TLS_PUMP_MAX_QUEUED / 2) return;
    if (to == (uv_stream_t *)&p->ours && p->tcp_paused) {
        p->tcp_paused = false;
        uv_read_start((uv_stream_t *)p->tcp, pump__alloc, pump__read_tcp);
    } else if (to == (uv_stream_t *)p->tcp && p->ours_paused) {
        p->ours_paused = false;
        uv_read_start((uv_stream_t *)&p->ours, pump__alloc, pump__read_ours);
    }
}

/* Queue n bytes on `to`; returns false when the pump closed. */
static bool pump__write(tls_pump *p, uv_stream_t *to, const char *data, size_t n)
{
    if (n == 0) return true;
    pump_write *pw = xmalloc(sizeof(*pw) + n);
    pw->p = p;
    pw->n = n;
    memcpy(pw->data, data, n);
    uv_buf_t b = uv_buf_init(pw->data, (unsigned)n);
    if (uv_write(&pw->w, to, &b, 1, pump__written) != 0) {
        free(pw);
        pump__close(p);
        return false;
    }
    /* the reader of `to` is slow: stop reading what would feed it */
    if (uv_stream_get_write_queue_size(to) > TLS_PUMP_MAX_QUEUED) {
        if (to == (uv_stream_t *)&p->ours && !p->tcp_paused) {
            p->tcp_paused = true;
            uv_read_stop((uv_stream_t *)p->tcp);
        } else if (to == (uv_stream_t *)p->tcp && !p->ours_paused) {
            p->ours_paused = true;
            uv_read_stop((uv_stream_t *)&p->ours);
        }
    }
    return true;
}

static void pump__read_tcp(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    tls_pump *p = s->data;
    if (n == 0 || p->closing) return;
    if (n < 0) {
        if (!tls_conn_handshake_done(p->tls))
            pump__fail(p, n == UV_EOF ? "closed by the other side during the handshake"
                                      : uv_strerror((int)n));
        else
            pump__close(p);
        return;
    }
    char err[256] = "";
    buf_reset(&p->plain);
    buf_reset(&p->cipher);
    int rv = tls_conn_read(p->tls, b->base, (size_t)n, &p->plain, &p->cipher, err, sizeof err);
    /* an alert for the other side goes out even when we then close */
    if (p->cipher.len && !pump__write(p, (uv_stream_t *)p->tcp, p->cipher.data, p->cipher.len))
        return;
    if (rv != 0) {
        pump__fail(p, err[0] ? err : "TLS error");
        return;
    }
    pump__write(p, (uv_stream_t *)&p->ours, p->plain.data, p->plain.len);
}

static void pump__read_ours(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    tls_pump *p = s->data;
    if (n == 0 || p->closing) return;
    if (n < 0) {
        pump__close(p); /* the stream's owner closed it */
        return;
    }
    buf_reset(&p->cipher);
    if (tls_conn_write(p->tls, b->base, (size_t)n, &p->cipher) != 0) {
        pump__fail(p, "TLS write failed");
        return;
    }
    pump__write(p, (uv_stream_t *)p->tcp, p->cipher.data, p->cipher.len);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

uv_stream_t *tls_pump_start(uv_loop_t *loop, uv_tcp_t *tcp, tls_conn *tls, tls_pump_side side)
{
    uv_os_sock_t sv[2];
    if (!tls || uv_socketpair(SOCK_STREAM, 0, sv, UV_NONBLOCK_PIPE, UV_NONBLOCK_PIPE) != 0) {
        tls_conn_free(tls);
        uv_close((uv_handle_t *)tcp, free_handle);
        return NULL;
    }
    tls_pump *p = xcalloc(1, sizeof(*p));
    p->loop = loop;
    p->tcp = tcp;
    p->tls = tls;
    p->side = side;
    buf_init(&p->plain);
    buf_init(&p->cipher);
    tcp->data = p;
    uv_pipe_init(loop, &p->ours, 0);
    p->ours.data = p;
    p->open = 2;
    uv_pipe_t *theirs = xmalloc(sizeof(*theirs));
    uv_pipe_init(loop, theirs, 0);
    if (uv_pipe_open(&p->ours, sv[1]) != 0 || uv_pipe_open(theirs, sv[0]) != 0) {
        /* uv_close closes an fd a handle holds; one it does not is ours */
        if (uv_fileno((uv_handle_t *)&p->ours, &(uv_os_fd_t){0}) != 0) close(sv[1]);
        if (uv_fileno((uv_handle_t *)theirs, &(uv_os_fd_t){0}) != 0) close(sv[0]);
        uv_close((uv_handle_t *)theirs, free_handle);
        pump__close(p);
        return NULL;
    }
    /* a message libraft writes at once may leave here as two TLS records;
     * with Nagle the second waits for the peer's (delayed) ACK of the
     * first: measured 0.71x the plain transport's durable write rate
     * without this, docs/design.md */
    uv_tcp_nodelay(tcp, 1);
    uv_read_start((uv_stream_t *)tcp, pump__alloc, pump__read_tcp);
    uv_read_start((uv_stream_t *)&p->ours, pump__alloc, pump__read_ours);
    return (uv_stream_t *)theirs;
}
