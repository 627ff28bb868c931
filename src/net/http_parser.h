/* http_parser: a strict, incremental HTTP/1.1 request parser.
 *
 * Pure code, no I/O: the connection layer hands it the unread bytes of a
 * connection and gets back either "need more", a parsed request head, or an
 * error that maps to a status code. Pointers in http_request point into the
 * caller's buffer and are valid until that buffer changes.
 *
 * Bodies: with Content-Length the caller simply waits for that many bytes;
 * chunked bodies go through http_chunked_decoder, which is incremental so
 * that a large body trickling in is not rescanned from the start.
 *
 * Any thread may call it; it keeps no global state. */
#ifndef CAIRN_NET_HTTP_PARSER_H
#define CAIRN_NET_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 64

/* Error codes returned by the parser (negative). Each maps to a status. */
enum {
    HTTP_NEED_MORE = 0,
    HTTP_ERR_BAD_REQUEST = -400,       /* malformed line or header */
    HTTP_ERR_TOO_LARGE = -413,         /* body over the cap */
    HTTP_ERR_URI_TOO_LONG = -414,      /* request-target over the cap */
    HTTP_ERR_HEADERS_TOO_LARGE = -431, /* header section over the cap */
    HTTP_ERR_NOT_IMPLEMENTED = -501,   /* unknown Transfer-Encoding */
    HTTP_ERR_VERSION = -505,           /* not HTTP/1.0 or HTTP/1.1 */
};

typedef enum http_method {
    HTTP_OTHER = 0, /* a syntactically valid token we do not know */
    HTTP_GET,
    HTTP_HEAD,
    HTTP_PUT,
    HTTP_POST,
    HTTP_DELETE,
    HTTP_OPTIONS,
    HTTP_PATCH,
} http_method;

typedef struct http_header {
    const char *name;
    size_t name_len;
    const char *value; /* leading and trailing whitespace stripped */
    size_t value_len;
} http_header;

typedef struct http_request {
    http_method method;
    const char *method_str;
    size_t method_len;
    const char *target; /* raw request-target as sent (origin-form) */
    size_t target_len;
    int version_minor; /* 0 for HTTP/1.0, 1 for HTTP/1.1 */
    http_header headers[HTTP_MAX_HEADERS];
    size_t n_headers;

    /* Interpreted from the headers: */
    int64_t content_length; /* -1 when absent */
    bool chunked;           /* Transfer-Encoding: chunked */
    bool keep_alive;        /* per version default and Connection header */
    bool expect_continue;   /* Expect: 100-continue */
    size_t head_len;        /* bytes of request line + headers + blank line */
} http_request;

/* Parse a request head from buf[0..len).
 * Returns the head length (> 0) when complete, HTTP_NEED_MORE (0) when the
 * head is incomplete and still under max_head_bytes, or a negative HTTP_ERR_*.
 * Rules: request line `METHOD SP target SP HTTP/1.x CRLF`; methods are
 * tokens; target must start with '/' (or be '*') and be at most
 * max_target_bytes; header names are tokens, no whitespace before ':';
 * obsolete line folding is rejected (400); bare LF line ends are accepted
 * (as nginx does). Both Content-Length and chunked, a repeated Content-Length
 * with different values, or a non-numeric one: 400. Transfer-Encoding other
 * than chunked: 501. A head longer than max_head_bytes: 431. */
int http_parse_head(const char *buf, size_t len, size_t max_head_bytes, size_t max_target_bytes,
                    http_request *req);

/* Case-insensitive header lookup; returns NULL when absent. */
const http_header *http_find_header(const http_request *req, const char *name);

/* Incremental decoder for `Transfer-Encoding: chunked` bodies. */
typedef struct http_chunked_decoder {
    int state;
    uint64_t chunk_left;
    size_t line_len; /* bytes of the current size/trailer line seen so far */
    size_t body_len; /* decoded bytes so far */
} http_chunked_decoder;

void http_chunked_init(http_chunked_decoder *d);

/* Feed encoded bytes in[0..len). Decoded payload is written to out, which
 * has room for out_cap bytes in total across all calls (out_len is the
 * running total, updated). *consumed is set to the input bytes used.
 * Returns 1 when the body (including the final CRLF after trailers) is
 * complete, 0 when all input was consumed and more is needed, or a negative
 * HTTP_ERR_*: HTTP_ERR_TOO_LARGE when the decoded body would exceed out_cap,
 * HTTP_ERR_BAD_REQUEST on malformed framing (bad hex, missing CRLF, chunk
 * size line or trailer over 4 KiB). Chunk extensions are ignored. */
int http_chunked_feed(http_chunked_decoder *d, const char *in, size_t len, size_t *consumed,
                      char *out, size_t out_cap, size_t *out_len);

/* Percent-decode src into dst (dst has room for src_len bytes); returns the
 * decoded length, or -1 on a malformed escape. '+' is NOT a space (path
 * semantics); use http_form_decode for query strings. */
long http_percent_decode(const char *src, size_t src_len, char *dst);
/* Same, but '+' decodes to a space (application/x-www-form-urlencoded). */
long http_form_decode(const char *src, size_t src_len, char *dst);

#endif
