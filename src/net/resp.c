/* resp: request parsing and reply writing for the Redis protocol.
 *
 * Parser state, all offsets relative to the `data` the caller passes (the
 * same start on every call until a command completes):
 *
 *   RESP__START      between commands. pos = bytes of empty commands skipped
 *                    so far in this call (see *consumed below).
 *   RESP__INLINE     scanning an inline line for '\n'.
 *   RESP__MB_COUNT   scanning the "*<count>" line for '\r'.
 *   RESP__BULK_COUNT scanning a "$<len>" line for '\r'.
 *   RESP__BULK_DATA  waiting until bulk_len + 2 bytes are present at pos.
 *   RESP__FAILED     a protocol error was reported; it is sticky, the
 *                    connection is going to be closed anyway.
 *
 * While a line is being scanned, arg_off[nargs] holds the offset where that
 * line starts and pos how far it has been searched, so bytes trickling in
 * are looked at once. The header's struct has no other slot for the line
 * start and must not change under the other modules, hence this reuse.
 *
 * Where Redis' behaviour depends on how the bytes were split into reads, a
 * rule that does not is used, so that a command parses the same whether it
 * arrives at once or byte by byte (the fuzz target checks exactly that):
 *   - a "*"/"$" line whose '\r' is more than 64 KiB after its start is
 *     "too big ... count string" (Redis: when 64 KiB arrived without '\r');
 *   - an inline line with more than max_inline_bytes before its '\n' is
 *     "too big inline request" (Redis: when that much arrived without '\n').
 * Other deliberate differences, all on input no real client sends:
 *   - the '\r' of a "*"/"$" line must be followed by '\n' (Redis skips the
 *     next byte whatever it is), else "invalid (multi)bulk length";
 *   - a bulk payload must be followed by "\r\n" (Redis skips two bytes
 *     unchecked), else "invalid bulk length": a payload of the wrong length
 *     would otherwise shift every later command and desynchronise the
 *     stream silently;
 *   - NUL bytes are ordinary bytes everywhere. Redis scans inline requests
 *     as C strings, so a NUL there hides the newline (the request hangs
 *     until it is "too big") and cuts the argument list short.
 * *consumed is what the caller may drop from the front of its data, on
 * every return: on 1 the command plus any empty commands before it; on 0
 * the empty commands skipped when no command is under way (so a client
 * flooding blank lines does not grow the buffer), else 0; on -1, 0. It is
 * correct either way if a caller ignores it on 0: the parser then forgets
 * the skipped empties and skips them again on the next call.
 *
 * The "unauthenticated multibulk/bulk length" checks of Redis belong to the
 * connection layer, which knows whether the client has authenticated. */
#include "net/resp.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

enum {
    RESP__START = 0,
    RESP__INLINE,
    RESP__MB_COUNT,
    RESP__BULK_COUNT,
    RESP__BULK_DATA,
    RESP__FAILED,
};

/* Step results inside resp_parse: the public 1/0/-1 plus "go on". */
enum {
    RESP__ERR = -1,
    RESP__MORE = 0,
    RESP__DONE = 1,
    RESP__AGAIN = 2,
};

/* Redis' PROTO_INLINE_MAX_SIZE, the bound it uses for "*" and "$" lines. */
#define RESP__MAX_COUNT_LINE ((size_t)64 * 1024)
/* Arrays above this many entries are released between commands, so that a
 * connection that once sent a million arguments does not keep 32 MB. */
#define RESP__KEEP_ARGS 1024
#define RESP__KEEP_SCRATCH ((size_t)64 * 1024)

static const resp_limits resp__default_limits = {
    .max_args = INT_MAX,
    .max_bulk_bytes = (size_t)512 * 1024 * 1024,
    .max_inline_bytes = (size_t)64 * 1024,
};

void resp_parser_init(resp_parser *p)
{
    memset(p, 0, sizeof(*p));
    p->state = RESP__START;
    p->multibulk = -1;
    p->bulk_len = -1;
    buf_init(&p->inline_scratch);
}

void resp_parser_close(resp_parser *p)
{
    free(p->arg_off);
    free(p->arg_len);
    free(p->argv);
    buf_close(&p->inline_scratch);
    resp_parser_init(p);
}

static void resp__restart(resp_parser *p)
{
    p->state = RESP__START;
    p->pos = 0;
    p->nargs = 0;
    p->multibulk = -1;
    p->bulk_len = -1;
}

static int resp__fail(resp_parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int resp__fail(resp_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof(p->err), fmt, ap);
    va_end(ap);
    /* The text goes into a one-line error reply; Redis blanks CR/LF too. */
    for (char *c = p->err; *c; c++)
        if (*c == '\r' || *c == '\n') *c = ' ';
    p->state = RESP__FAILED;
    return RESP__ERR;
}

/* Geometric growth: a million-argument command costs O(n), and memory
 * follows the bytes that actually arrived, not the announced count. */
static void resp__reserve_args(resp_parser *p, size_t need)
{
    if (need <= p->arg_cap) return;
    size_t cap = p->arg_cap ? p->arg_cap : 16;
    while (cap < need) cap *= 2;
    p->arg_off = xrealloc(p->arg_off, cap * sizeof(*p->arg_off));
    p->arg_len = xrealloc(p->arg_len, cap * sizeof(*p->arg_len));
    p->arg_cap = cap;
}

static void resp__reserve_argv(resp_parser *p, size_t need)
{
    if (need <= p->argv_cap) return;
    size_t cap = p->argv_cap ? p->argv_cap : 16;
    while (cap < need) cap *= 2;
    p->argv = xrealloc(p->argv, cap * sizeof(*p->argv));
    p->argv_cap = cap;
}

/* Called when a new command starts: the previous argv is no longer valid,
 * so oversized arrays can go. */
static void resp__trim(resp_parser *p)
{
    if (p->arg_cap > RESP__KEEP_ARGS) {
        free(p->arg_off);
        free(p->arg_len);
        p->arg_off = NULL;
        p->arg_len = NULL;
        p->arg_cap = 0;
    }
    if (p->argv_cap > RESP__KEEP_ARGS) {
        free(p->argv);
        p->argv = NULL;
        p->argv_cap = 0;
    }
    if (p->inline_scratch.cap > RESP__KEEP_SCRATCH) buf_close(&p->inline_scratch);
}

/* Publishes the nargs completed args (offsets into base) as argv and
 * resets the state for the next command, which starts after `end`. */
static int resp__complete(resp_parser *p, const char *base, size_t end, size_t *consumed)
{
    resp__reserve_argv(p, p->nargs);
    for (size_t i = 0; i < p->nargs; i++) {
        p->argv[i].ptr = base + p->arg_off[i];
        p->argv[i].len = p->arg_len[i];
    }
    p->argc = p->nargs;
    *consumed = end;
    resp__restart(p);
    return RESP__DONE;
}

/* Looks for `term` ending the line that starts at `start`, resuming at
 * p->pos. A line may hold at most max_line bytes before its terminator.
 * Returns RESP__DONE with *at = offset of the terminator, RESP__MORE, or
 * RESP__ERR when the line is too long (the caller words the error). */
static int resp__find_line_end(resp_parser *p, const char *data, size_t len, size_t start,
                               char term, size_t max_line, size_t *at)
{
    size_t avail = len - start;
    /* Only the first max_line + 1 bytes can hold an acceptable terminator;
     * do not scan a 1 GB pipeline for a line that is already too long. */
    size_t window_end = start + (avail > max_line ? max_line + 1 : avail);
    if (p->pos < window_end) {
        const char *hit = memchr(data + p->pos, term, window_end - p->pos);
        if (hit) {
            *at = (size_t)(hit - data);
            return RESP__DONE;
        }
    }
    if (avail > max_line) return RESP__ERR;
    p->pos = len;
    return RESP__MORE;
}

/* Redis' string2ll rules: optional '-', no '+', no leading zeros, no
 * spaces, at most 20 characters, no overflow. Written from its documented
 * behaviour; positive counts therefore have exactly one spelling. */
static bool resp__parse_ll(const char *s, size_t n, long long *out)
{
    if (n == 0 || n > 20) return false;
    if (n == 1 && s[0] == '0') {
        *out = 0;
        return true;
    }
    bool neg = s[0] == '-';
    size_t i = neg ? 1 : 0;
    if (i == n || s[i] < '1' || s[i] > '9') return false;
    unsigned long long v = 0;
    for (; i < n; i++) {
        unsigned d = (unsigned)(unsigned char)s[i] - '0';
        if (d > 9) return false;
        if (v > (ULLONG_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1) return false;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX) return false;
        *out = (long long)v;
    }
    return true;
}

/* isspace() in the C locale, without its locale lookup and sign pitfalls. */
static bool resp__is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int resp__hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The character a backslash escape inside "..." stands for. */
static char resp__unescape(char c)
{
    switch (c) {
    case 'n':
        return '\n';
    case 'r':
        return '\r';
    case 't':
        return '\t';
    case 'b':
        return '\b';
    case 'a':
        return '\a';
    default:
        return c;
    }
}

/* Reads the rest of a "..." part, s[*i] being just past the opening quote,
 * into out: \n \r \t \b \a and \xHH are escapes, any other escaped
 * character stands for itself. Returns false on a missing closing quote, or one not
 * followed by a blank or the end of the line. */
static bool resp__read_double_quoted(const char *s, size_t n, size_t *i, char *out, size_t *o)
{
    size_t j = *i, k = *o;
    for (;;) {
        if (j == n) return false;
        char c = s[j];
        if (c == '"') break;
        if (c != '\\' || j + 1 == n) {
            /* A backslash ending the line stays literal; the quote is then
             * missing anyway. */
            out[k++] = c;
            j++;
            continue;
        }
        int hi = j + 3 < n && s[j + 1] == 'x' ? resp__hex_value(s[j + 2]) : -1;
        int lo = hi >= 0 ? resp__hex_value(s[j + 3]) : -1;
        if (lo >= 0) {
            out[k++] = (char)(hi * 16 + lo);
            j += 4;
        } else {
            /* \x without two hex digits is just an escaped 'x'. */
            out[k++] = resp__unescape(s[j + 1]);
            j += 2;
        }
    }
    if (j + 1 < n && !resp__is_space(s[j + 1])) return false;
    *i = j + 1;
    *o = k;
    return true;
}

/* Same for '...', where only \' is an escape. */
static bool resp__read_single_quoted(const char *s, size_t n, size_t *i, char *out, size_t *o)
{
    size_t j = *i, k = *o;
    for (;;) {
        if (j == n) return false;
        char c = s[j];
        if (c == '\'') break;
        if (c == '\\' && j + 1 < n && s[j + 1] == '\'') {
            out[k++] = '\'';
            j += 2;
        } else {
            out[k++] = c;
            j++;
        }
    }
    if (j + 1 < n && !resp__is_space(s[j + 1])) return false;
    *i = j + 1;
    *o = k;
    return true;
}

/* Splits one inline line into p->inline_scratch following Redis' quoting
 * rules (sdssplitargs): blanks separate words; a quoted part may start in
 * the middle of a word and ends the word. Leading blanks are any isspace()
 * character, while a bare word ends only at space, tab, CR or LF (so \v
 * and \f inside a word belong to it, as in Redis). Returns false on
 * unbalanced quotes. Sets nargs and arg_off/arg_len (scratch offsets). */
static bool resp__split_inline(resp_parser *p, const char *s, size_t n)
{
    buf *sc = &p->inline_scratch;
    buf_reset(sc);
    /* Unquoting never makes a word longer, so the output fits in n bytes
     * and pointers into the scratch stay valid while it is written. */
    buf_reserve(sc, n);
    char *out = sc->data;
    size_t o = 0, i = 0, argc = 0;
    for (;;) {
        while (i < n && resp__is_space(s[i])) i++;
        if (i == n) break;
        resp__reserve_args(p, argc + 1);
        p->arg_off[argc] = o;
        while (i < n) {
            char c = s[i++];
            if (c == ' ' || c == '\t' || c == '\r' || c == '\n') break;
            if (c == '"') {
                if (!resp__read_double_quoted(s, n, &i, out, &o)) return false;
                break;
            }
            if (c == '\'') {
                if (!resp__read_single_quoted(s, n, &i, out, &o)) return false;
                break;
            }
            out[o++] = c;
        }
        p->arg_len[argc] = o - p->arg_off[argc];
        argc++;
    }
    sc->len = o;
    sc->data[o] = '\0';
    p->nargs = argc;
    return true;
}

static int resp__step_inline(resp_parser *p, const char *data, size_t len, const resp_limits *lim,
                             size_t *consumed)
{
    size_t start = p->arg_off[0];
    size_t nl;
    int rc = resp__find_line_end(p, data, len, start, '\n', lim->max_inline_bytes, &nl);
    if (rc == RESP__ERR) return resp__fail(p, "Protocol error: too big inline request");
    if (rc == RESP__MORE) return RESP__MORE;
    size_t end = nl;
    if (end > start && data[end - 1] == '\r') end--;
    if (!resp__split_inline(p, data + start, end - start))
        return resp__fail(p, "Protocol error: unbalanced quotes in request");
    if (p->nargs == 0) {
        /* Blank line: Redis skips it (replicas send "\n" as a keepalive). */
        resp__restart(p);
        p->pos = nl + 1;
        return RESP__AGAIN;
    }
    p->inline_cmd = true;
    return resp__complete(p, p->inline_scratch.data, nl + 1, consumed);
}

static int resp__step_mb_count(resp_parser *p, const char *data, size_t len, const resp_limits *lim)
{
    size_t start = p->arg_off[0];
    size_t cr;
    int rc = resp__find_line_end(p, data, len, start, '\r', RESP__MAX_COUNT_LINE, &cr);
    if (rc == RESP__ERR) return resp__fail(p, "Protocol error: too big mbulk count string");
    if (rc == RESP__MORE) return RESP__MORE;
    if (cr + 1 == len) {
        p->pos = cr; /* the '\n' is still to come */
        return RESP__MORE;
    }
    long long n;
    if (data[cr + 1] != '\n' || !resp__parse_ll(data + start + 1, cr - start - 1, &n) ||
        n > INT_MAX || (n > 0 && (unsigned long long)n > lim->max_args))
        return resp__fail(p, "Protocol error: invalid multibulk length");
    size_t next = cr + 2;
    if (n <= 0) {
        /* "*0" and "*-1" carry no command; Redis skips them. */
        resp__restart(p);
        p->pos = next;
        return RESP__AGAIN;
    }
    p->multibulk = n;
    p->nargs = 0;
    p->arg_off[0] = next;
    p->pos = next;
    p->state = RESP__BULK_COUNT;
    return RESP__AGAIN;
}

static int resp__step_bulk_count(resp_parser *p, const char *data, size_t len,
                                 const resp_limits *lim)
{
    size_t start = p->arg_off[p->nargs];
    size_t cr;
    int rc = resp__find_line_end(p, data, len, start, '\r', RESP__MAX_COUNT_LINE, &cr);
    if (rc == RESP__ERR) return resp__fail(p, "Protocol error: too big bulk count string");
    if (rc == RESP__MORE) return RESP__MORE;
    if (cr + 1 == len) {
        p->pos = cr;
        return RESP__MORE;
    }
    /* %c of a NUL ends the message there, exactly as Redis' reply does. */
    if (data[start] != '$')
        return resp__fail(p, "Protocol error: expected '$', got '%c'", data[start]);
    long long n;
    if (data[cr + 1] != '\n' || !resp__parse_ll(data + start + 1, cr - start - 1, &n) || n < 0 ||
        (unsigned long long)n > lim->max_bulk_bytes)
        return resp__fail(p, "Protocol error: invalid bulk length");
    p->bulk_len = n;
    p->pos = cr + 2;
    p->state = RESP__BULK_DATA;
    return RESP__AGAIN;
}

static int resp__step_bulk_data(resp_parser *p, const char *data, size_t len, size_t *consumed)
{
    size_t n = (size_t)p->bulk_len;
    /* Only the length is checked: the payload itself is never scanned. */
    if (len - p->pos < n + 2) return RESP__MORE;
    size_t end = p->pos + n;
    if (data[end] != '\r' || data[end + 1] != '\n')
        return resp__fail(p, "Protocol error: invalid bulk length");
    p->arg_off[p->nargs] = p->pos;
    p->arg_len[p->nargs] = n;
    p->nargs++;
    p->bulk_len = -1;
    if ((long long)p->nargs == p->multibulk) {
        p->inline_cmd = false;
        return resp__complete(p, data, end + 2, consumed);
    }
    resp__reserve_args(p, p->nargs + 1);
    p->arg_off[p->nargs] = end + 2;
    p->pos = end + 2;
    p->state = RESP__BULK_COUNT;
    return RESP__AGAIN;
}

int resp_parse(resp_parser *p, const char *data, size_t len, const resp_limits *lim,
               size_t *consumed)
{
    *consumed = 0;
    if (!lim) lim = &resp__default_limits;
    if (p->state == RESP__FAILED) return -1;
    /* Fewer bytes than last time breaks the calling convention; starting
     * over from this start is the only interpretation that stays safe. */
    if (p->pos > len) resp__restart(p);
    for (;;) {
        int rc;
        switch (p->state) {
        case RESP__START:
            if (p->pos == len) {
                *consumed = p->pos;
                p->pos = 0;
                return 0;
            }
            resp__trim(p);
            resp__reserve_args(p, 1);
            p->nargs = 0;
            p->arg_off[0] = p->pos;
            p->state = data[p->pos] == '*' ? RESP__MB_COUNT : RESP__INLINE;
            rc = RESP__AGAIN;
            break;
        case RESP__INLINE:
            rc = resp__step_inline(p, data, len, lim, consumed);
            break;
        case RESP__MB_COUNT:
            rc = resp__step_mb_count(p, data, len, lim);
            break;
        case RESP__BULK_COUNT:
            rc = resp__step_bulk_count(p, data, len, lim);
            break;
        case RESP__BULK_DATA:
            rc = resp__step_bulk_data(p, data, len, consumed);
            break;
        default:
            return -1;
        }
        if (rc != RESP__AGAIN) return rc;
    }
}

/* ---- reply writers ---- */

/* Appends "<prefix><n>\r\n", the header of every aggregate and bulk. */
static void resp__write_header(buf *out, char prefix, long long n)
{
    buf_append_char(out, prefix);
    buf_append_i64(out, n);
    buf_append(out, "\r\n", 2);
}

/* A simple string or error must stay on one line: a CR or LF from, say, a
 * user-supplied name echoed in an error would inject a reply of its own.
 * Redis blanks them the same way in its formatted errors. */
static void resp__write_line(buf *out, char prefix, const char *s, size_t n)
{
    buf_reserve(out, n + 3);
    buf_append_char(out, prefix);
    size_t at = out->len;
    buf_append(out, s, n);
    for (size_t i = at; i < out->len; i++)
        if (out->data[i] == '\r' || out->data[i] == '\n') out->data[i] = ' ';
    buf_append(out, "\r\n", 2);
}

void resp_write_simple(buf *out, const char *s)
{
    resp__write_line(out, '+', s, strlen(s));
}

void resp_write_error(buf *out, const char *msg)
{
    /* Tolerate Redis' own convention of passing the '-' in the message. */
    if (msg[0] == '-') msg++;
    resp__write_line(out, '-', msg, strlen(msg));
}

void resp_write_errorf(buf *out, const char *fmt, ...)
{
    buf tmp;
    buf_init(&tmp);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&tmp, fmt, ap);
    va_end(ap);
    const char *s = tmp.data ? tmp.data : "";
    size_t n = tmp.len;
    if (n > 0 && s[0] == '-') {
        s++;
        n--;
    }
    resp__write_line(out, '-', s, n);
    buf_close(&tmp);
}

void resp_write_integer(buf *out, long long v)
{
    resp__write_header(out, ':', v);
}

void resp_write_bulk(buf *out, const void *p, size_t n)
{
    buf_reserve(out, n + 32);
    resp__write_header(out, '$', (long long)n);
    buf_append(out, p, n);
    buf_append(out, "\r\n", 2);
}

void resp_write_bulk_str(buf *out, const char *s)
{
    resp_write_bulk(out, s, strlen(s));
}

void resp_write_null(buf *out, int proto)
{
    if (proto == 3)
        buf_append(out, "_\r\n", 3);
    else
        buf_append(out, "$-1\r\n", 5);
}

void resp_write_null_array(buf *out, int proto)
{
    if (proto == 3)
        buf_append(out, "_\r\n", 3);
    else
        buf_append(out, "*-1\r\n", 5);
}

void resp_write_array(buf *out, size_t n)
{
    resp__write_header(out, '*', (long long)n);
}

void resp_write_map(buf *out, int proto, size_t pairs)
{
    if (proto == 3)
        resp__write_header(out, '%', (long long)pairs);
    else
        resp__write_header(out, '*', (long long)pairs * 2);
}

void resp_write_push(buf *out, int proto, size_t n)
{
    resp__write_header(out, proto == 3 ? '>' : '*', (long long)n);
}

void resp_write_set(buf *out, int proto, size_t n)
{
    resp__write_header(out, proto == 3 ? '~' : '*', (long long)n);
}

void resp_write_double(buf *out, int proto, double v)
{
    /* Spelled out rather than left to printf, which may say "-nan" or
     * "infinity" depending on the libc. */
    char text[64];
    int n;
    if (isnan(v))
        n = snprintf(text, sizeof(text), "nan");
    else if (isinf(v))
        n = snprintf(text, sizeof(text), "%s", v > 0 ? "inf" : "-inf");
    else
        n = snprintf(text, sizeof(text), "%.17g", v);
    if (proto == 3) {
        buf_append_char(out, ',');
        buf_append(out, text, (size_t)n);
        buf_append(out, "\r\n", 2);
    } else {
        resp_write_bulk(out, text, (size_t)n);
    }
}

void resp_write_bool(buf *out, int proto, bool v)
{
    if (proto == 3)
        buf_append(out, v ? "#t\r\n" : "#f\r\n", 4);
    else
        buf_append(out, v ? ":1\r\n" : ":0\r\n", 4);
}

void resp_write_verbatim(buf *out, int proto, const char *fmt3, const void *p, size_t n)
{
    if (proto != 3) {
        resp_write_bulk(out, p, n);
        return;
    }
    /* The format is exactly three characters: padded with spaces or cut,
     * as Redis does with whatever extension it is given. */
    char fmt[4] = "   ";
    for (size_t i = 0; i < 3 && fmt3 && fmt3[i]; i++) fmt[i] = fmt3[i];
    buf_reserve(out, n + 40);
    resp__write_header(out, '=', (long long)(n + 4));
    buf_append(out, fmt, 3);
    buf_append_char(out, ':');
    buf_append(out, p, n);
    buf_append(out, "\r\n", 2);
}
