#include "util/http_client.h"

#include "util/base64.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"

/* A chunk-size or trailer line longer than this is not a sane server. */
#define HTTP_CLIENT__MAX_LINE 4096

static int http_client__fail(http_client_error *err, int code, const char *url, const char *fmt,
                             ...) __attribute__((format(printf, 4, 5)));

static int http_client__fail(http_client_error *err, int code, const char *url, const char *fmt,
                             ...)
{
    if (!err) return code;
    err->code = code;
    err->url = url;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

/* strerror text starts with a capital ("Connection refused"); messages here
 * are embedded mid-sentence, so lower the first letter. */
static void http_client__errno_text(int e, char *out, size_t n)
{
    snprintf(out, n, "%s", strerror(e));
    if (out[0] && islower((unsigned char)out[1])) out[0] = (char)tolower((unsigned char)out[0]);
}

static long long http_client__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for events on fd until the deadline. Returns the revents (> 0), 0 on
 * timeout, -1 with errno on failure. */
static int http_client__wait(int fd, short events, long long deadline_ms)
{
    for (;;) {
        long long left = deadline_ms - http_client__now_ms();
        if (left <= 0) return 0;
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
        if (n > 0) return pfd.revents ? pfd.revents : events;
        if (n == 0) return 0;
        if (errno != EINTR) return -1;
    }
}

/* ---- endpoints ---------------------------------------------------------- */

static bool http_client__host_char(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

int http_client_endpoint_init(http_client_endpoint *ep, const char *url, http_client_error *err)
{
    memset(ep, 0, sizeof(*ep));
    const char *p = url;
    if (strncasecmp(p, "http://", 7) == 0) {
        p += 7;
    } else if (strstr(p, "://")) {
        return http_client__fail(err, HTTP_CLIENT_EURL, NULL, "unsupported scheme (only http://)");
    }
    const char *slash = strchr(p, '/');
    size_t auth_len = slash ? (size_t)(slash - p) : strlen(p);
    if (slash && slash[1] != '\0')
        return http_client__fail(err, HTTP_CLIENT_EURL, NULL, "a path is not allowed here");
    if (auth_len == 0) return http_client__fail(err, HTTP_CLIENT_EURL, NULL, "missing host");

    char auth[300];
    if (auth_len >= sizeof(auth))
        return http_client__fail(err, HTTP_CLIENT_EURL, NULL, "host name too long");
    memcpy(auth, p, auth_len);
    auth[auth_len] = '\0';

    const char *host = auth;
    size_t host_len;
    const char *port = NULL;
    bool bracketed = false;
    if (auth[0] == '[') {
        char *close = strchr(auth, ']');
        if (!close) return http_client__fail(err, HTTP_CLIENT_EURL, NULL, "missing ']'");
        *close = '\0';
        host = auth + 1;
        host_len = strlen(host);
        struct in6_addr a6;
        if (inet_pton(AF_INET6, host, &a6) != 1)
            return http_client__fail(err, HTTP_CLIENT_EURL, NULL, "bad IPv6 address");
        bracketed = true;
        if (close[1] == ':') {
            port = close + 2;
        } else if (close[1] != '\0') {
            return http_client__fail(err, HTTP_CLIENT_EURL, NULL, "junk after ']'");
        }
    } else {
        char *colon = strchr(auth, ':');
        if (colon && strchr(colon + 1, ':'))
            return http_client__fail(err, HTTP_CLIENT_EURL, NULL,
                                     "IPv6 addresses need brackets: http://[::1]:8080");
        if (colon) {
            *colon = '\0';
            port = colon + 1;
        }
        host_len = strlen(host);
        for (size_t i = 0; i < host_len; i++)
            if (!http_client__host_char(host[i]))
                return http_client__fail(err, HTTP_CLIENT_EURL, NULL, "bad character in host");
    }
    if (host_len == 0) return http_client__fail(err, HTTP_CLIENT_EURL, NULL, "missing host");

    unsigned long port_num = 80;
    if (port) {
        size_t n = strlen(port);
        if (n == 0 || n > 5 || strspn(port, "0123456789") != n)
            return http_client__fail(err, HTTP_CLIENT_EURL, NULL, "bad port");
        port_num = strtoul(port, NULL, 10);
        if (port_num == 0 || port_num > 65535)
            return http_client__fail(err, HTTP_CLIENT_EURL, NULL, "port out of range");
    }

    buf b;
    buf_init(&b);
    buf_printf(&b, bracketed ? "[%s]:%lu" : "%s:%lu", host, port_num);
    ep->host_header = xstrdup(b.data);
    buf_reset(&b);
    buf_printf(&b, "http://%s", ep->host_header);
    ep->url = xstrdup(b.data);
    buf_reset(&b);
    buf_printf(&b, "%lu", port_num);
    ep->port = xstrdup(b.data);
    buf_close(&b);
    ep->host = xstrdup(host);
    return HTTP_CLIENT_OK;
}

void http_client_endpoint_close(http_client_endpoint *ep)
{
    free(ep->url);
    free(ep->host);
    free(ep->port);
    free(ep->host_header);
    memset(ep, 0, sizeof(*ep));
}

/* ---- responses ---------------------------------------------------------- */

void http_client_response_init(http_client_response *r)
{
    r->status = 0;
    r->reason = "";
    r->headers = NULL;
    r->n_headers = 0;
    buf_init(&r->head);
    buf_init(&r->body);
}

void http_client_response_close(http_client_response *r)
{
    free(r->headers);
    buf_close(&r->head);
    buf_close(&r->body);
    http_client_response_init(r);
}

static void http_client__response_reset(http_client_response *r)
{
    free(r->headers);
    r->headers = NULL;
    r->n_headers = 0;
    r->status = 0;
    r->reason = "";
    buf_reset(&r->head);
    buf_reset(&r->body);
}

const char *http_client_response_header(const http_client_response *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0) return r->headers[i].value;
    return NULL;
}

static bool http_client__tchar(char c)
{
    return isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Split the header section in resp->head (ending with CRLF CRLF) in place:
 * each name and value becomes a NUL-terminated string. */
static int http_client__parse_head(http_client_response *resp, const char *url,
                                   http_client_error *err)
{
    char *p = resp->head.data;
    char *end = p + resp->head.len;

    size_t lines = 0;
    for (char *q = p; q < end; q++)
        if (*q == '\n') lines++;
    resp->headers = xcalloc(lines, sizeof(*resp->headers));

    char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
    *eol = '\0';
    if (strncmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') || p[8] != ' ' ||
        !isdigit((unsigned char)p[9]) || !isdigit((unsigned char)p[10]) ||
        !isdigit((unsigned char)p[11]) || (p[12] != ' ' && p[12] != '\0'))
        return http_client__fail(err, HTTP_CLIENT_EPROTO, url, "bad status line");
    resp->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (resp->status < 100)
        return http_client__fail(err, HTTP_CLIENT_EPROTO, url, "bad status code");
    resp->reason = p[12] ? p + 13 : "";
    p = eol + 2;

    for (;;) {
        eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (eol == p) break; /* the blank line */
        *eol = '\0';
        if (*p == ' ' || *p == '\t')
            return http_client__fail(err, HTTP_CLIENT_EPROTO, url, "obsolete header folding");
        char *colon = p;
        while (http_client__tchar(*colon)) colon++;
        if (colon == p || *colon != ':')
            return http_client__fail(err, HTTP_CLIENT_EPROTO, url, "malformed header line");
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        char *ve = eol;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        *ve = '\0';
        for (char *c = v; c < ve; c++)
            if ((unsigned char)*c < 0x20 && *c != '\t')
                return http_client__fail(err, HTTP_CLIENT_EPROTO, url,
                                         "control character in header value");
        resp->headers[resp->n_headers].name = p;
        resp->headers[resp->n_headers].value = v;
        resp->n_headers++;
        p = eol + 2;
    }
    return HTTP_CLIENT_OK;
}

/* ---- one attempt ---------------------------------------------------------- */

typedef struct http_client__conn {
    int fd;
    long long deadline_ms;
    int timeout_ms;
    const char *url;
    buf raw; /* received bytes not yet moved into the response */
    bool eof;
} http_client__conn;

static int http_client__timeout(http_client__conn *c, http_client_error *err, const char *what)
{
    return http_client__fail(err, HTTP_CLIENT_ETIMEDOUT, c->url, "timed out %s after %.3g s", what,
                             c->timeout_ms / 1000.0);
}

static int http_client__connect(http_client__conn *c, const http_client_endpoint *ep,
                                http_client_error *err)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(ep->host, ep->port, &hints, &res);
    if (rc != 0) {
        char text[128];
        if (rc == EAI_SYSTEM)
            http_client__errno_text(errno, text, sizeof(text));
        else
            snprintf(text, sizeof(text), "%s", gai_strerror(rc));
        if (text[0] && islower((unsigned char)text[1]))
            text[0] = (char)tolower((unsigned char)text[0]);
        return http_client__fail(err, HTTP_CLIENT_ERESOLVE, c->url, "cannot resolve %s: %s",
                                 ep->host, text);
    }
    /* Try each address in turn within the one deadline (localhost may be
     * both ::1 and 127.0.0.1, with the server on only one of them). */
    int last_errno = ECONNREFUSED;
    bool timed_out = false;
    c->fd = -1;
    for (struct addrinfo *ai = res; ai && c->fd < 0; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            c->fd = fd;
            break;
        }
        if (errno != EINPROGRESS) {
            last_errno = errno;
            close(fd);
            continue;
        }
        int w = http_client__wait(fd, POLLOUT, c->deadline_ms);
        if (w == 0) {
            close(fd);
            timed_out = true;
            break;
        }
        int so_error = 0;
        socklen_t sl = sizeof(so_error);
        if (w < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &sl) < 0) so_error = errno;
        if (so_error) {
            last_errno = so_error;
            close(fd);
            continue;
        }
        c->fd = fd;
    }
    freeaddrinfo(res);
    if (c->fd >= 0) return HTTP_CLIENT_OK;
    if (timed_out) return http_client__timeout(c, err, "connecting");
    char text[128];
    http_client__errno_text(last_errno, text, sizeof(text));
    return http_client__fail(err, HTTP_CLIENT_ECONNECT, c->url, "%s", text);
}

static bool http_client__header_ok(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n') return false;
    return true;
}

static int http_client__build_head(const http_client_endpoint *ep, const http_client_request *req,
                                   buf *out, http_client_error *err)
{
    if (!req->method || !*req->method || !req->target || req->target[0] != '/')
        return http_client__fail(err, HTTP_CLIENT_EINVAL, ep->url, "bad method or target");
    for (const char *m = req->method; *m; m++)
        if (!http_client__tchar(*m))
            return http_client__fail(err, HTTP_CLIENT_EINVAL, ep->url, "bad method");
    for (const char *t = req->target; *t; t++)
        if ((unsigned char)*t <= 0x20 || (unsigned char)*t >= 0x7F)
            return http_client__fail(err, HTTP_CLIENT_EINVAL, ep->url,
                                     "request target must be percent-encoded");
    bool has_agent = false;
    for (size_t i = 0; i < req->n_headers; i++) {
        const http_client_header *h = &req->headers[i];
        bool name_ok = *h->name != '\0';
        for (const char *c = h->name; *c; c++)
            if (!http_client__tchar(*c)) name_ok = false;
        if (!name_ok || !http_client__header_ok(h->value))
            return http_client__fail(err, HTTP_CLIENT_EINVAL, ep->url, "bad header %s", h->name);
        /* Framing and connection handling belong to this module. */
        if (strcasecmp(h->name, "Content-Length") == 0 ||
            strcasecmp(h->name, "Transfer-Encoding") == 0 ||
            strcasecmp(h->name, "Connection") == 0 || strcasecmp(h->name, "Host") == 0)
            return http_client__fail(err, HTTP_CLIENT_EINVAL, ep->url,
                                     "header %s is set by the client itself", h->name);
        if (strcasecmp(h->name, "User-Agent") == 0) has_agent = true;
    }
    buf_printf(out, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", req->method, req->target,
               ep->host_header);
    if (!has_agent) buf_append_str(out, "User-Agent: cairn-http-client\r\n");
    if (req->has_body) buf_printf(out, "Content-Length: %zu\r\n", req->body_len);
    for (size_t i = 0; i < req->n_headers; i++)
        buf_printf(out, "%s: %s\r\n", req->headers[i].name, req->headers[i].value);
    buf_append_str(out, "\r\n");
    return HTTP_CLIENT_OK;
}

/* Send head and body. A server may answer before it has read the whole
 * request (413 on a large body, then close); that is not a send failure:
 * *answered_early is set and the caller goes on to read the answer. */
static int http_client__send(http_client__conn *c, const buf *head, const void *body,
                             size_t body_len, bool *answered_early, int *send_errno,
                             http_client_error *err)
{
    struct iovec iov[2] = {
        {.iov_base = head->data, .iov_len = head->len},
        {.iov_base = (void *)body, .iov_len = body ? body_len : 0},
    };
    struct iovec *v = iov;
    int cnt = 2;
    *answered_early = false;
    *send_errno = 0;
    while (cnt > 0) {
        if (v->iov_len == 0) {
            v++;
            cnt--;
            continue;
        }
        struct msghdr msg;
        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = v;
        msg.msg_iovlen = (size_t)cnt;
        ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (n >= 0) {
            size_t left = (size_t)n;
            while (cnt > 0 && left >= v->iov_len) {
                left -= v->iov_len;
                v++;
                cnt--;
            }
            if (cnt > 0) {
                v->iov_base = (char *)v->iov_base + left;
                v->iov_len -= left;
            }
            continue;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int w = http_client__wait(c->fd, POLLOUT | POLLIN, c->deadline_ms);
            if (w == 0) return http_client__timeout(c, err, "sending the request");
            if (w > 0 && (w & POLLIN)) {
                *answered_early = true;
                return HTTP_CLIENT_OK;
            }
            continue;
        }
        /* EPIPE / ECONNRESET: the server may have answered and closed. */
        *send_errno = errno;
        *answered_early = true;
        return HTTP_CLIENT_OK;
    }
    return HTTP_CLIENT_OK;
}

/* Read more bytes into c->raw. Returns 1 on data, 0 on EOF, or an error. */
static int http_client__fill(http_client__conn *c, http_client_error *err)
{
    for (;;) {
        buf_reserve(&c->raw, 16384);
        ssize_t n = recv(c->fd, c->raw.data + c->raw.len, c->raw.cap - c->raw.len - 1, 0);
        if (n > 0) {
            c->raw.len += (size_t)n;
            c->raw.data[c->raw.len] = '\0';
            return 1;
        }
        if (n == 0) {
            c->eof = true;
            return 0;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int w = http_client__wait(c->fd, POLLIN, c->deadline_ms);
            if (w == 0) return http_client__timeout(c, err, "waiting for the response");
            continue;
        }
        char text[128];
        http_client__errno_text(errno, text, sizeof(text));
        return http_client__fail(err, HTTP_CLIENT_EIO, c->url, "%s", text);
    }
}

static int http_client__read_head(http_client__conn *c, http_client_response *resp,
                                  http_client_error *err)
{
    size_t scanned = 0; /* bytes already searched for the blank line */
    for (;;) {
        const char *u = buf_unread(&c->raw);
        size_t n = buf_unread_len(&c->raw);
        const char *blank = memmem(u + scanned, n - scanned, "\r\n\r\n", 4);
        if (blank) {
            size_t head_len = (size_t)(blank - u) + 4;
            buf_reset(&resp->head);
            buf_append(&resp->head, u, head_len);
            buf_consume(&c->raw, head_len);
            return HTTP_CLIENT_OK;
        }
        if (n > HTTP_CLIENT_MAX_HEAD)
            return http_client__fail(err, HTTP_CLIENT_ETOOBIG, c->url,
                                     "response header section over %zu KiB",
                                     HTTP_CLIENT_MAX_HEAD >> 10);
        scanned = n >= 3 ? n - 3 : 0;
        if (c->eof)
            return http_client__fail(err, HTTP_CLIENT_EIO, c->url,
                                     n ? "connection closed inside the response header"
                                       : "connection closed without a response");
        int rc = http_client__fill(c, err);
        if (rc < 0) return rc;
    }
}

enum {
    HTTP_CLIENT__CH_SIZE,
    HTTP_CLIENT__CH_DATA,
    HTTP_CLIENT__CH_DATA_END,
    HTTP_CLIENT__CH_TRAILER
};

typedef struct http_client__chunked {
    int state;
    uint64_t left;        /* bytes left in the current chunk */
    size_t trailer_bytes; /* trailers are read and dropped, but bounded */
} http_client__chunked;

/* Decode what c->raw holds into body. Returns 1 when the body is complete,
 * 0 when more input is needed, or an error. */
static int http_client__chunked_step(http_client__chunked *ch, http_client__conn *c, buf *body,
                                     http_client_error *err)
{
    for (;;) {
        const char *u = buf_unread(&c->raw);
        size_t n = buf_unread_len(&c->raw);
        switch (ch->state) {
        case HTTP_CLIENT__CH_SIZE: {
            const char *eol = memmem(u, n, "\r\n", 2);
            if (!eol) {
                if (n > HTTP_CLIENT__MAX_LINE) goto bad;
                return 0;
            }
            uint64_t size = 0;
            const char *p = u;
            for (; p < eol && isxdigit((unsigned char)*p); p++) {
                int d =
                    isdigit((unsigned char)*p) ? *p - '0' : (tolower((unsigned char)*p) - 'a' + 10);
                size = size * 16 + (uint64_t)d;
                if (size > HTTP_CLIENT_MAX_BODY) goto too_big;
            }
            if (p == u) goto bad;
            while (p < eol && (*p == ' ' || *p == '\t')) p++;
            if (p < eol && *p != ';') goto bad; /* extensions are ignored */
            buf_consume(&c->raw, (size_t)(eol - u) + 2);
            if (size == 0) {
                ch->state = HTTP_CLIENT__CH_TRAILER;
            } else {
                if (body->len + size > HTTP_CLIENT_MAX_BODY) goto too_big;
                ch->left = size;
                ch->state = HTTP_CLIENT__CH_DATA;
            }
            break;
        }
        case HTTP_CLIENT__CH_DATA: {
            if (n == 0) return 0;
            size_t take = n < ch->left ? n : (size_t)ch->left;
            buf_append(body, u, take);
            buf_consume(&c->raw, take);
            ch->left -= take;
            if (ch->left == 0) ch->state = HTTP_CLIENT__CH_DATA_END;
            break;
        }
        case HTTP_CLIENT__CH_DATA_END:
            if (n < 2) return 0;
            if (u[0] != '\r' || u[1] != '\n') goto bad;
            buf_consume(&c->raw, 2);
            ch->state = HTTP_CLIENT__CH_SIZE;
            break;
        case HTTP_CLIENT__CH_TRAILER: {
            const char *eol = memmem(u, n, "\r\n", 2);
            if (!eol) {
                if (n > HTTP_CLIENT__MAX_LINE) goto bad;
                return 0;
            }
            size_t line = (size_t)(eol - u);
            buf_consume(&c->raw, line + 2);
            if (line == 0) return 1;
            ch->trailer_bytes += line + 2;
            if (ch->trailer_bytes > HTTP_CLIENT_MAX_HEAD) goto bad;
            break;
        }
        }
    }
bad:
    return http_client__fail(err, HTTP_CLIENT_EPROTO, c->url, "malformed chunked body");
too_big:
    return http_client__fail(err, HTTP_CLIENT_ETOOBIG, c->url, "response body over %zu MiB",
                             HTTP_CLIENT_MAX_BODY >> 20);
}

static int http_client__closed_early(http_client__conn *c, http_client_error *err)
{
    return http_client__fail(err, HTTP_CLIENT_EIO, c->url,
                             "connection closed before the response body was complete");
}

/* Read the body as framed by the response head. */
static int http_client__read_body(http_client__conn *c, bool is_head_request,
                                  http_client_response *resp, http_client_error *err)
{
    int st = resp->status;
    if (is_head_request || st == 204 || st == 304) return HTTP_CLIENT_OK;

    const char *te = NULL;
    bool have_cl = false;
    uint64_t cl = 0;
    for (size_t i = 0; i < resp->n_headers; i++) {
        const http_client_header *h = &resp->headers[i];
        if (strcasecmp(h->name, "Transfer-Encoding") == 0) {
            if (te)
                return http_client__fail(err, HTTP_CLIENT_EPROTO, c->url,
                                         "repeated Transfer-Encoding");
            te = h->value;
        } else if (strcasecmp(h->name, "Content-Length") == 0) {
            size_t n = strlen(h->value);
            if (n == 0 || n > 19 || strspn(h->value, "0123456789") != n)
                return http_client__fail(err, HTTP_CLIENT_EPROTO, c->url, "bad Content-Length");
            uint64_t v = strtoull(h->value, NULL, 10);
            if (have_cl && v != cl)
                return http_client__fail(err, HTTP_CLIENT_EPROTO, c->url,
                                         "conflicting Content-Length headers");
            have_cl = true;
            cl = v;
        }
    }

    if (te) {
        /* We never send TE or Accept-Encoding, so only plain chunked can
         * legitimately come back. */
        if (strcasecmp(te, "chunked") != 0)
            return http_client__fail(err, HTTP_CLIENT_EPROTO, c->url,
                                     "unsupported Transfer-Encoding: %s", te);
        http_client__chunked ch = {.state = HTTP_CLIENT__CH_SIZE};
        for (;;) {
            int rc = http_client__chunked_step(&ch, c, &resp->body, err);
            if (rc < 0) return rc;
            if (rc == 1) return HTTP_CLIENT_OK;
            if (c->eof) return http_client__closed_early(c, err);
            rc = http_client__fill(c, err);
            if (rc < 0) return rc;
        }
    }

    if (have_cl) {
        if (cl > HTTP_CLIENT_MAX_BODY)
            return http_client__fail(err, HTTP_CLIENT_ETOOBIG, c->url, "response body over %zu MiB",
                                     HTTP_CLIENT_MAX_BODY >> 20);
        buf_reserve(&resp->body, (size_t)cl);
        for (;;) {
            size_t want = (size_t)cl - resp->body.len;
            size_t n = buf_unread_len(&c->raw);
            size_t take = n < want ? n : want;
            buf_append(&resp->body, buf_unread(&c->raw), take);
            buf_consume(&c->raw, take);
            if (resp->body.len == cl) return HTTP_CLIENT_OK;
            if (c->eof) return http_client__closed_early(c, err);
            int rc = http_client__fill(c, err);
            if (rc < 0) return rc;
        }
    }

    /* No framing: the body runs until the server closes. */
    for (;;) {
        buf_append(&resp->body, buf_unread(&c->raw), buf_unread_len(&c->raw));
        buf_consume(&c->raw, buf_unread_len(&c->raw));
        if (resp->body.len > HTTP_CLIENT_MAX_BODY)
            return http_client__fail(err, HTTP_CLIENT_ETOOBIG, c->url, "response body over %zu MiB",
                                     HTTP_CLIENT_MAX_BODY >> 20);
        if (c->eof) return HTTP_CLIENT_OK;
        int rc = http_client__fill(c, err);
        if (rc < 0) return rc;
    }
}

static int http_client__exchange(http_client__conn *c, const http_client_endpoint *ep,
                                 const http_client_request *req, http_client_response *resp,
                                 http_client_error *err)
{
    buf head;
    buf_init(&head);
    int rc = http_client__build_head(ep, req, &head, err);
    if (rc < 0) goto out;
    rc = http_client__connect(c, ep, err);
    if (rc < 0) goto out;

    bool early;
    int send_errno;
    rc = http_client__send(c, &head, req->has_body ? req->body : NULL,
                           req->has_body ? req->body_len : 0, &early, &send_errno, err);
    if (rc < 0) goto out;

    bool is_head = strcasecmp(req->method, "HEAD") == 0;
    for (;;) {
        rc = http_client__read_head(c, resp, err);
        if (rc < 0) {
            if (send_errno) {
                /* Nothing usable came back: the send failure is the story. */
                char text[128];
                http_client__errno_text(send_errno, text, sizeof(text));
                rc = http_client__fail(err, HTTP_CLIENT_EIO, c->url, "%s", text);
            }
            goto out;
        }
        free(resp->headers);
        resp->headers = NULL;
        resp->n_headers = 0;
        rc = http_client__parse_head(resp, c->url, err);
        if (rc < 0) goto out;
        if (resp->status == 101) {
            rc = http_client__fail(err, HTTP_CLIENT_EPROTO, c->url, "unexpected 101 response");
            goto out;
        }
        /* 100 Continue and other interim answers precede the real one. */
        if (resp->status >= 200) break;
    }
    rc = http_client__read_body(c, is_head, resp, err);
out:
    buf_close(&head);
    return rc;
}

int http_client_do(const http_client_endpoint *ep, const http_client_request *req, int timeout_ms,
                   http_client_response *resp, http_client_error *err)
{
    http_client__response_reset(resp);
    http_client__conn c = {
        .fd = -1,
        .deadline_ms = http_client__now_ms() + (timeout_ms > 0 ? timeout_ms : 1),
        .timeout_ms = timeout_ms,
        .url = ep->url,
    };
    buf_init(&c.raw);
    buf_reserve(&c.raw, 16384); /* parsers below may assume data != NULL */
    int rc = http_client__exchange(&c, ep, req, resp, err);
    if (c.fd >= 0) close(c.fd);
    buf_close(&c.raw);
    if (rc < 0) {
        http_client__response_reset(resp);
    } else if (err) {
        err->code = HTTP_CLIENT_OK;
        err->url = ep->url;
        err->msg[0] = '\0';
    }
    return rc;
}

/* ---- endpoint lists and retries ------------------------------------------- */

void http_client_options_default(http_client_options *o)
{
    o->timeout_ms = 5000;
    o->rounds = 3;
    o->backoff_initial_ms = 100;
    o->backoff_max_ms = 2000;
}

int http_client_init(http_client *c, const char *endpoints, const http_client_options *opt,
                     http_client_error *err)
{
    memset(c, 0, sizeof(*c));
    if (opt)
        c->opt = *opt;
    else
        http_client_options_default(&c->opt);
    if (c->opt.rounds < 1) c->opt.rounds = 1;

    char *list = xstrdup(endpoints);
    char *save = NULL;
    int rc = HTTP_CLIENT_OK;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        size_t n = strlen(tok);
        while (n > 0 && tok[n - 1] == ' ') tok[--n] = '\0';
        if (n == 0) continue;
        c->endpoints = xrealloc(c->endpoints, (c->n_endpoints + 1) * sizeof(*c->endpoints));
        rc = http_client_endpoint_init(&c->endpoints[c->n_endpoints], tok, err);
        if (rc < 0) {
            /* Say which entry was wrong: the message alone names no URL. */
            if (err) {
                char reason[sizeof(err->msg)];
                snprintf(reason, sizeof(reason), "%s", err->msg);
                snprintf(err->msg, sizeof(err->msg), "bad endpoint '%.100s': %.120s", tok, reason);
            }
            break;
        }
        c->n_endpoints++;
    }
    free(list);
    if (rc == HTTP_CLIENT_OK && c->n_endpoints == 0)
        rc = http_client__fail(err, HTTP_CLIENT_EURL, NULL, "no endpoints given");
    if (rc < 0) {
        http_client_close(c);
        return rc;
    }

    /* Jitter only has to differ between clients started together, so that
     * they do not retry in lockstep; it need not be unpredictable. */
    if (getrandom(&c->rng, sizeof(c->rng), GRND_NONBLOCK) != sizeof(c->rng))
        c->rng = (unsigned long long)http_client__now_ms() ^ ((unsigned long long)getpid() << 32);
    if (c->rng == 0) c->rng = 0x9E3779B97F4A7C15ull;
    return HTTP_CLIENT_OK;
}

void http_client_close(http_client *c)
{
    for (size_t i = 0; i < c->n_endpoints; i++) http_client_endpoint_close(&c->endpoints[i]);
    free(c->endpoints);
    memset(c, 0, sizeof(*c));
}

static unsigned long long http_client__rand(http_client *c)
{
    /* xorshift64 */
    unsigned long long x = c->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c->rng = x;
    return x;
}

static void http_client__sleep_ms(long long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static bool http_client__retryable(int rc)
{
    return rc == HTTP_CLIENT_ECONNECT || rc == HTTP_CLIENT_ETIMEDOUT || rc == HTTP_CLIENT_EIO ||
           rc == HTTP_CLIENT_ERESOLVE;
}

/* Delay before attempt number `attempt` + 1: the doubling base, capped, of
 * which a random half is taken away ("equal jitter"), so that retries spread
 * out but still back off. A server's Retry-After is honoured up to the cap. */
static long long http_client__backoff_ms(http_client *c, size_t attempt, long long retry_after_ms)
{
    long long base = c->opt.backoff_initial_ms > 0 ? c->opt.backoff_initial_ms : 0;
    long long cap = c->opt.backoff_max_ms > 0 ? c->opt.backoff_max_ms : 0;
    for (size_t i = 0; i < attempt && base < cap; i++) base *= 2;
    if (base > cap) base = cap;
    long long half = base / 2;
    long long d = half + (long long)(http_client__rand(c) % (unsigned long long)(half + 1));
    if (retry_after_ms > d) d = retry_after_ms < cap ? retry_after_ms : cap;
    return d;
}

static long long http_client__retry_after_ms(const http_client_response *resp)
{
    const char *ra = http_client_response_header(resp, "Retry-After");
    if (!ra || !*ra || strlen(ra) > 6 || strspn(ra, "0123456789") != strlen(ra)) return 0;
    return atoll(ra) * 1000; /* HTTP-dates are not worth parsing here */
}

int http_client_send(http_client *c, const http_client_request *req, http_client_response *resp,
                     http_client_error *err)
{
    size_t n = c->n_endpoints;
    size_t total = n * (size_t)c->opt.rounds;
    int rc = HTTP_CLIENT_EURL;
    for (size_t attempt = 0; attempt < total; attempt++) {
        size_t idx = (c->preferred + attempt) % n;
        c->last_used = idx;
        rc = http_client_do(&c->endpoints[idx], req, c->opt.timeout_ms, resp, err);
        long long retry_after = 0;
        if (rc == HTTP_CLIENT_OK) {
            if (resp->status != 503) {
                c->preferred = idx;
                return HTTP_CLIENT_OK;
            }
            retry_after = http_client__retry_after_ms(resp);
        } else if (!http_client__retryable(rc)) {
            return rc;
        }
        if (attempt + 1 < total)
            http_client__sleep_ms(http_client__backoff_ms(c, attempt, retry_after));
    }
    return rc;
}

const char *http_client_last_url(const http_client *c)
{
    return c->n_endpoints ? c->endpoints[c->last_used].url : NULL;
}

const char *http_client_strerror(int code)
{
    switch (code) {
    case HTTP_CLIENT_OK:
        return "ok";
    case HTTP_CLIENT_EURL:
        return "bad URL";
    case HTTP_CLIENT_ERESOLVE:
        return "name resolution failed";
    case HTTP_CLIENT_ECONNECT:
        return "connection failed";
    case HTTP_CLIENT_ETIMEDOUT:
        return "timed out";
    case HTTP_CLIENT_EIO:
        return "connection error";
    case HTTP_CLIENT_EPROTO:
        return "malformed response";
    case HTTP_CLIENT_ETOOBIG:
        return "response too large";
    case HTTP_CLIENT_EINVAL:
        return "invalid request";
    default:
        return "unknown error";
    }
}

void http_basic_auth_value(buf *out, const char *userpass, size_t n)
{
    buf_append_str(out, "Basic ");
    base64_encode(out, userpass, n, BASE64_STD, true);
}
