/* http_parser: strict HTTP/1.1 request heads and chunked bodies.
 *
 * The head parser is stateless: the caller hands it everything unread so
 * far and it rescans from the start. That costs a rescan per read while a
 * head is incomplete, but heads are capped (16 KiB by default) and a stateless
 * parser cannot get out of sync with the buffer it points into.
 *
 * One invariant shapes the code: checks run strictly left to right, and the
 * incomplete last line is checked by the same code as a complete one. So a
 * prefix of the input is rejected only if the whole input would be too, and
 * an error (a 414 in particular) is reported as soon as the bytes that prove
 * it have arrived, without waiting for a line end that may never come.
 *
 * Lines end in CRLF or a bare LF. A CR anywhere else is a control character
 * and rejected, which is what keeps "\r" from being read as a line end by us
 * and not by a proxy in front of us (or the reverse). */
#include "net/http_parser.h"

#include <limits.h>
#include <string.h>

enum { HTTP__OK = 1 };

/* Chunk size lines and the trailer section are each capped at this many
 * bytes: they are not payload, so a peer sending more is misbehaving. */
#define HTTP__FRAMING_MAX 4096

/* RFC 9110 tchar: the bytes allowed in methods and header names. */
static const unsigned char http__tchar[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0, /* 0x20 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, /* 0x30 */
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, /* 0x50 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0, /* 0x70 */
};

static inline bool http__is_tchar(char c)
{
    return http__tchar[(unsigned char)c];
}

/* Field values: visible ASCII, SP, HTAB and obs-text. Everything else is a
 * control character (NUL, CR, LF, DEL...) that has no business there. */
static inline bool http__is_value_char(char c)
{
    unsigned char u = (unsigned char)c;
    return u >= 0x20 ? u != 0x7f : u == '\t';
}

/* Targets: visible ASCII, plus bytes >= 0x80. RFC 3986 wants those
 * percent-encoded, but clients such as curl send raw UTF-8 paths as typed,
 * and keys are arbitrary bytes, so refusing them would only hurt users. */
static inline bool http__is_target_char(char c)
{
    unsigned char u = (unsigned char)c;
    return u > 0x20 && u != 0x7f;
}

static inline bool http__is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static inline unsigned char http__lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

static bool http__ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (http__lower((unsigned char)a[i]) != http__lower((unsigned char)b[i])) return false;
    }
    return true;
}

static inline int http__hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static http_method http__method(const char *m, size_t n)
{
    /* Methods are case-sensitive (RFC 9110 §9.1): "get" is not GET. */
    switch (n) {
    case 3:
        if (memcmp(m, "GET", 3) == 0) return HTTP_GET;
        if (memcmp(m, "PUT", 3) == 0) return HTTP_PUT;
        break;
    case 4:
        if (memcmp(m, "HEAD", 4) == 0) return HTTP_HEAD;
        if (memcmp(m, "POST", 4) == 0) return HTTP_POST;
        break;
    case 5:
        if (memcmp(m, "PATCH", 5) == 0) return HTTP_PATCH;
        break;
    case 6:
        if (memcmp(m, "DELETE", 6) == 0) return HTTP_DELETE;
        break;
    case 7:
        if (memcmp(m, "OPTIONS", 7) == 0) return HTTP_OPTIONS;
        break;
    }
    return HTTP_OTHER;
}

/* Scans the request line in [s, e), CR LF already stripped when complete.
 * On a partial line, running out of bytes means "need more"; everything
 * decided before that point is decided exactly as on the complete line. */
static int http__request_line(const char *s, const char *e, bool complete, size_t max_target,
                              http_request *req)
{
    const int short_line = complete ? HTTP_ERR_BAD_REQUEST : HTTP_NEED_MORE;
    const char *p = s;

    while (p < e && http__is_tchar(*p)) p++;
    if (p == e) return short_line;
    if (p == s || *p != ' ') return HTTP_ERR_BAD_REQUEST;
    req->method_str = s;
    req->method_len = (size_t)(p - s);
    req->method = http__method(s, req->method_len);
    p++;

    const char *t = p;
    if (p == e) return short_line;
    if (*p != '/' && *p != '*') return HTTP_ERR_BAD_REQUEST;
    /* Scan at most one byte past the cap: that byte alone proves a 414,
     * and a huge target is not walked to its end first. */
    size_t avail = (size_t)(e - t);
    const char *lim = t + (avail <= max_target ? avail : max_target + 1);
    while (p < lim && http__is_target_char(*p)) p++;
    if ((size_t)(p - t) > max_target) return HTTP_ERR_URI_TOO_LONG;
    if (p == e) return short_line;
    if (*p != ' ') return HTTP_ERR_BAD_REQUEST;
    if (*t == '*' && p - t != 1) return HTTP_ERR_BAD_REQUEST;
    req->target = t;
    req->target_len = (size_t)(p - t);
    p++;

    static const char proto[] = "HTTP/";
    for (size_t i = 0; i < sizeof proto - 1; i++, p++) {
        if (p == e) return short_line;
        if (*p != proto[i]) return HTTP_ERR_BAD_REQUEST;
    }
    if (p == e) return short_line;
    if (*p < '0' || *p > '9') return HTTP_ERR_BAD_REQUEST;
    int major = *p++ - '0';
    if (p == e) return short_line;
    if (*p++ != '.') return HTTP_ERR_BAD_REQUEST;
    if (p == e) return short_line;
    if (*p < '0' || *p > '9') return HTTP_ERR_BAD_REQUEST;
    int minor = *p++ - '0';
    /* Well-formed but a version we do not speak: say so, rather than 400. */
    if (major != 1 || minor > 1) return HTTP_ERR_VERSION;
    req->version_minor = minor;
    if (p != e) return HTTP_ERR_BAD_REQUEST;
    return complete ? HTTP__OK : HTTP_NEED_MORE;
}

/* What the framing headers said, gathered while scanning and judged once
 * the head is complete (a conflict needs both headers to be seen). */
typedef struct http__framing {
    bool te_seen;
    bool te_chunked; /* the only Transfer-Encoding is exactly "chunked" */
    bool conn_close;
    bool conn_keep_alive;
} http__framing;

static int http__content_length(const char *v, size_t n, http_request *req)
{
    /* Digits only: "+5", "5, 5", " 5" (inner) and "" are all framing
     * ambiguities that request smuggling feeds on. */
    if (n == 0) return HTTP_ERR_BAD_REQUEST;
    int64_t cl = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') return HTTP_ERR_BAD_REQUEST;
        int d = v[i] - '0';
        if (cl > (INT64_MAX - d) / 10) return HTTP_ERR_BAD_REQUEST;
        cl = cl * 10 + d;
    }
    if (req->content_length >= 0 && req->content_length != cl) return HTTP_ERR_BAD_REQUEST;
    req->content_length = cl;
    return HTTP__OK;
}

static void http__connection(const char *v, size_t n, http__framing *f)
{
    const char *p = v, *end = v + n;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *te = comma ? comma : end;
        const char *ts = p;
        while (ts < te && http__is_ows(*ts)) ts++;
        while (te > ts && http__is_ows(te[-1])) te--;
        size_t len = (size_t)(te - ts);
        if (len == 5 && http__ieq(ts, "close", 5)) f->conn_close = true;
        if (len == 10 && http__ieq(ts, "keep-alive", 10)) f->conn_keep_alive = true;
        p = comma ? comma + 1 : end;
    }
}

static int http__interpret(const http_header *h, http_request *req, http__framing *f)
{
    switch (h->name_len) {
    case 14:
        if (http__ieq(h->name, "content-length", 14))
            return http__content_length(h->value, h->value_len, req);
        break;
    case 17:
        if (http__ieq(h->name, "transfer-encoding", 17)) {
            /* A second header appends to the list, and no list of two
             * codings is exactly "chunked". */
            f->te_chunked = !f->te_seen && h->value_len == 7 && http__ieq(h->value, "chunked", 7);
            f->te_seen = true;
        }
        break;
    case 10:
        if (http__ieq(h->name, "connection", 10)) http__connection(h->value, h->value_len, f);
        break;
    case 6:
        /* RFC 9110 §10.1.1: a server MUST ignore 100-continue from an
         * HTTP/1.0 client, which would not understand the interim 100. */
        if (http__ieq(h->name, "expect", 6) && req->version_minor == 1 && h->value_len == 12 &&
            http__ieq(h->value, "100-continue", 12))
            req->expect_continue = true;
        break;
    }
    return HTTP__OK;
}

/* One complete field line in [s, e), line end stripped; s[0] is neither
 * whitespace nor a line end. */
static int http__header_line(const char *s, const char *e, http_request *req, http__framing *f)
{
    const char *p = s;
    while (p < e && http__is_tchar(*p)) p++;
    /* No whitespace before ':' (RFC 9112 §5.1): "Host :" is a classic
     * smuggling trick, read differently by different parsers. */
    if (p == s || p == e || *p != ':') return HTTP_ERR_BAD_REQUEST;
    const char *name_end = p++;
    while (p < e && http__is_ows(*p)) p++;
    const char *v = p;
    for (; p < e; p++) {
        if (!http__is_value_char(*p)) return HTTP_ERR_BAD_REQUEST;
    }
    const char *ve = e;
    while (ve > v && http__is_ows(ve[-1])) ve--;

    http_header *h = &req->headers[req->n_headers++];
    h->name = s;
    h->name_len = (size_t)(name_end - s);
    h->value = v;
    h->value_len = (size_t)(ve - v);
    return http__interpret(h, req, f);
}

static int http__finish(http_request *req, const http__framing *f)
{
    if (f->te_seen) {
        if (req->content_length >= 0) return HTTP_ERR_BAD_REQUEST;
        /* RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means
         * the framing is faulty, whatever it says. */
        if (req->version_minor == 0) return HTTP_ERR_BAD_REQUEST;
        if (!f->te_chunked) return HTTP_ERR_NOT_IMPLEMENTED;
        req->chunked = true;
    }
    if (req->version_minor == 1)
        req->keep_alive = !f->conn_close;
    else
        req->keep_alive = f->conn_keep_alive && !f->conn_close;
    return HTTP__OK;
}

int http_parse_head(const char *buf, size_t len, size_t max_head_bytes, size_t max_target_bytes,
                    http_request *req)
{
    /* The head length is returned as an int. */
    const size_t limit = max_head_bytes < INT_MAX ? max_head_bytes : INT_MAX;
    http__framing f = {0};
    size_t pos = 0;
    int rc;

    req->method = HTTP_OTHER;
    req->method_str = NULL;
    req->method_len = 0;
    req->target = NULL;
    req->target_len = 0;
    req->version_minor = 0;
    req->n_headers = 0;
    req->content_length = -1;
    req->chunked = false;
    req->keep_alive = false;
    req->expect_continue = false;
    req->head_len = 0;
    if (len == 0) goto incomplete;

    /* RFC 9112 §2.2: skip empty lines before the request line (some clients
     * send a stray CRLF after a POST body). They count toward the cap, so
     * a stream of them is still cut off. */
    while (pos < len) {
        if (buf[pos] == '\n') {
            pos++;
        } else if (buf[pos] == '\r') {
            if (pos + 1 == len) goto incomplete;
            if (buf[pos + 1] != '\n') return HTTP_ERR_BAD_REQUEST;
            pos += 2;
        } else {
            break;
        }
        if (pos > limit) return HTTP_ERR_HEADERS_TOO_LARGE;
    }

    const char *line = buf + pos;
    const char *nl = memchr(line, '\n', len - pos);
    if (!nl) {
        const char *e = buf + len;
        /* A final CR may be the first half of the CRLF. */
        if (e > line && e[-1] == '\r') e--;
        rc = http__request_line(line, e, false, max_target_bytes, req);
        if (rc < 0) return rc;
        goto incomplete;
    }
    /* line[0] is not a CR (empty lines were skipped), so this stays in it. */
    rc = http__request_line(line, nl[-1] == '\r' ? nl - 1 : nl, true, max_target_bytes, req);
    if (rc < 0) return rc;
    pos = (size_t)(nl + 1 - buf);
    if (pos > limit) return HTTP_ERR_HEADERS_TOO_LARGE;

    for (;;) {
        if (pos == len) goto incomplete;
        line = buf + pos;
        if (line[0] == '\n') {
            pos += 1;
            break;
        }
        if (line[0] == '\r') {
            if (pos + 1 == len) goto incomplete;
            if (line[1] != '\n') return HTTP_ERR_BAD_REQUEST;
            pos += 2;
            break;
        }
        /* Obsolete line folding (RFC 9112 §5.2): rejecting it is allowed
         * and removes one more way to disagree with a proxy. */
        if (http__is_ows(line[0])) return HTTP_ERR_BAD_REQUEST;
        nl = memchr(line, '\n', len - pos);
        if (!nl) goto incomplete;
        if ((size_t)(nl + 1 - buf) > limit) return HTTP_ERR_HEADERS_TOO_LARGE;
        if (req->n_headers == HTTP_MAX_HEADERS) return HTTP_ERR_HEADERS_TOO_LARGE;
        rc = http__header_line(line, nl[-1] == '\r' ? nl - 1 : nl, req, &f);
        if (rc < 0) return rc;
        pos = (size_t)(nl + 1 - buf);
    }
    if (pos > limit) return HTTP_ERR_HEADERS_TOO_LARGE;
    rc = http__finish(req, &f);
    if (rc < 0) return rc;
    req->head_len = pos;
    return (int)pos;

incomplete:
    /* The missing end is at least one byte past len. */
    return len >= limit ? HTTP_ERR_HEADERS_TOO_LARGE : HTTP_NEED_MORE;
}

const http_header *http_find_header(const http_request *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->n_headers; i++) {
        const http_header *h = &req->headers[i];
        if (h->name_len == n && http__ieq(h->name, name, n)) return h;
    }
    return NULL;
}

/* Chunked decoding (RFC 9112 §7.1) as a byte-at-a-time state machine, so that
 * the body can arrive split anywhere; only chunk data moves in bulk. The
 * framing is held to exact CRLFs, unlike the head: a body's framing is where
 * lenient parsers disagree and requests get smuggled. */
enum {
    HTTP__CH_SIZE_FIRST, /* first hex digit of a chunk size */
    HTTP__CH_SIZE,       /* more hex digits */
    HTTP__CH_SIZE_WS,    /* whitespace after the size: only ';' may follow */
    HTTP__CH_EXT,        /* chunk extension, ignored up to the CR */
    HTTP__CH_SIZE_LF,    /* LF ending the size line */
    HTTP__CH_DATA,
    HTTP__CH_DATA_CR, /* CRLF after the chunk data */
    HTTP__CH_DATA_LF,
    HTTP__CH_TRL_START, /* start of a trailer line, or CR of the final CRLF */
    HTTP__CH_TRL_NAME,
    HTTP__CH_TRL_VALUE,
    HTTP__CH_TRL_LF,
    HTTP__CH_END_LF, /* LF of the final CRLF */
    HTTP__CH_DONE,
};

void http_chunked_init(http_chunked_decoder *d)
{
    d->state = HTTP__CH_SIZE_FIRST;
    d->chunk_left = 0;
    d->line_len = 0;
    d->body_len = 0;
}

/* The state stays negative after an error (it is the error code), so that a
 * caller feeding more bytes cannot resynchronise on garbage. line_len
 * counts the bytes of the current size line, then of the whole trailer
 * section, against HTTP__FRAMING_MAX. */
int http_chunked_feed(http_chunked_decoder *d, const char *in, size_t len, size_t *consumed,
                      char *out, size_t out_cap, size_t *out_len)
{
    size_t i = 0;
    int err;

    *consumed = 0;
    if (d->state < 0) return d->state;
    if (d->state == HTTP__CH_DONE) return 1;
    while (i < len) {
        char c = in[i];
        switch (d->state) {
        case HTTP__CH_DATA: {
            size_t n = len - i;
            if (n > d->chunk_left) n = (size_t)d->chunk_left;
            memcpy(out + *out_len, in + i, n);
            *out_len += n;
            d->body_len += n;
            d->chunk_left -= n;
            i += n;
            if (d->chunk_left == 0) d->state = HTTP__CH_DATA_CR;
            continue;
        }
        case HTTP__CH_SIZE_FIRST:
        case HTTP__CH_SIZE: {
            if (++d->line_len > HTTP__FRAMING_MAX) goto bad;
            int v = http__hexval(c);
            if (v >= 0) {
                /* The size is held against the room left while its digits
                 * arrive, so data never needs a check of its own and a
                 * huge size cannot overflow. */
                size_t left = *out_len < out_cap ? out_cap - *out_len : 0;
                if (left < (size_t)v || d->chunk_left > (left - (size_t)v) / 16) {
                    err = HTTP_ERR_TOO_LARGE;
                    goto fail;
                }
                d->chunk_left = d->chunk_left * 16 + (uint64_t)v;
                d->state = HTTP__CH_SIZE;
            } else if (d->state == HTTP__CH_SIZE_FIRST) {
                goto bad; /* a size needs at least one digit */
            } else if (c == ';') {
                d->state = HTTP__CH_EXT;
            } else if (http__is_ows(c)) {
                d->state = HTTP__CH_SIZE_WS;
            } else if (c == '\r') {
                d->state = HTTP__CH_SIZE_LF;
            } else {
                goto bad;
            }
            break;
        }
        case HTTP__CH_SIZE_WS:
            if (++d->line_len > HTTP__FRAMING_MAX) goto bad;
            if (c == ';')
                d->state = HTTP__CH_EXT;
            else if (!http__is_ows(c))
                goto bad;
            break;
        case HTTP__CH_EXT:
            if (++d->line_len > HTTP__FRAMING_MAX) goto bad;
            if (c == '\r')
                d->state = HTTP__CH_SIZE_LF;
            else if (!http__is_value_char(c))
                goto bad;
            break;
        case HTTP__CH_SIZE_LF:
            if (++d->line_len > HTTP__FRAMING_MAX || c != '\n') goto bad;
            d->line_len = 0;
            d->state = d->chunk_left ? HTTP__CH_DATA : HTTP__CH_TRL_START;
            break;
        case HTTP__CH_DATA_CR:
            if (c != '\r') goto bad;
            d->state = HTTP__CH_DATA_LF;
            break;
        case HTTP__CH_DATA_LF:
            if (c != '\n') goto bad;
            d->state = HTTP__CH_SIZE_FIRST;
            break;
        case HTTP__CH_TRL_START:
            if (c == '\r') {
                d->state = HTTP__CH_END_LF;
                break;
            }
            if (++d->line_len > HTTP__FRAMING_MAX || !http__is_tchar(c)) goto bad;
            d->state = HTTP__CH_TRL_NAME;
            break;
        case HTTP__CH_TRL_NAME:
            if (++d->line_len > HTTP__FRAMING_MAX) goto bad;
            if (c == ':')
                d->state = HTTP__CH_TRL_VALUE;
            else if (!http__is_tchar(c))
                goto bad;
            break;
        case HTTP__CH_TRL_VALUE:
            if (++d->line_len > HTTP__FRAMING_MAX) goto bad;
            if (c == '\r')
                d->state = HTTP__CH_TRL_LF;
            else if (!http__is_value_char(c))
                goto bad;
            break;
        case HTTP__CH_TRL_LF:
            if (++d->line_len > HTTP__FRAMING_MAX || c != '\n') goto bad;
            d->state = HTTP__CH_TRL_START;
            break;
        case HTTP__CH_END_LF:
            if (c != '\n') goto bad;
            d->state = HTTP__CH_DONE;
            *consumed = i + 1;
            return 1;
        default:
            goto bad;
        }
        i++;
    }
    *consumed = i;
    return 0;

bad:
    err = HTTP_ERR_BAD_REQUEST;
fail:
    d->state = err;
    *consumed = i;
    return err;
}

/* dst may be src: the output never runs ahead of the input, and runs are
 * moved with memmove. That lets callers decode a target in place. */
static long http__decode(const char *src, size_t src_len, char *dst, bool plus_is_space)
{
    if (src_len > LONG_MAX) return -1;
    const char *p = src, *end = src + src_len;
    char *o = dst;
    while (p < end) {
        const char *pct = memchr(p, '%', (size_t)(end - p));
        size_t run = (size_t)((pct ? pct : end) - p);
        memmove(o, p, run);
        if (plus_is_space) {
            for (size_t i = 0; i < run; i++) {
                if (o[i] == '+') o[i] = ' ';
            }
        }
        o += run;
        p += run;
        if (!pct) break;
        if (end - p < 3) return -1;
        int hi = http__hexval(p[1]), lo = http__hexval(p[2]);
        if (hi < 0 || lo < 0) return -1;
        *o++ = (char)(hi << 4 | lo);
        p += 3;
    }
    return (long)(o - dst);
}

long http_percent_decode(const char *src, size_t src_len, char *dst)
{
    return http__decode(src, src_len, dst, false);
}

long http_form_decode(const char *src, size_t src_len, char *dst)
{
    return http__decode(src, src_len, dst, true);
}
