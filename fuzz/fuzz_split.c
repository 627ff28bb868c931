/* libFuzzer target: the same bytes through both request parsers, whole and
 * split at every offset (issue 11).
 *
 * TCP may cut a request anywhere, and a connection parses again from the
 * start of its unread bytes each time more arrive. So for every cut k:
 * - RESP: delivering bytes [0,k) then the rest yields the same commands
 *   and the same final error (or need for more) as delivering them whole;
 * - HTTP: the head parsed from a prefix of k bytes needs more bytes while
 *   k is short of the head, and is exactly the whole parse from there on;
 *   a chunked body decodes to the same bytes fed as [0,k) then the rest.
 * The other fuzz targets try one or two data-chosen cuts with deeper
 * checks; this one tries them all. Inputs are capped at 512 bytes (the
 * work is quadratic). Every parse reads an exact-size copy, so a read
 * past the end trips ASan. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/http_parser.h"
#include "net/resp.h"
#include "util/buf.h"

#define MAX_INPUT 512

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: split check failed: %s\n", __FILE__, __LINE__, #cond);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const resp_limits limits = {64, 256, 256};

/* What a connection would do with `in` arriving as [0,cut) then the rest:
 * every command (kind, argc, args) appended to `out`, then 'E' + the
 * error, or 'M' if the stream ends in the middle of a command. */
static void resp_transcript(const char *in, size_t n, size_t cut, buf *out)
{
    resp_parser p;
    resp_parser_init(&p);
    size_t start = 0;
    for (int piece = 0; piece < 2; piece++) {
        size_t end = piece == 0 ? cut : n;
        while (start <= end) {
            size_t len = end - start;
            char *copy = malloc(len ? len : 1);
            CHECK(copy != NULL);
            memcpy(copy, in + start, len);
            size_t used = 0;
            int rc = resp_parse(&p, copy, len, &limits, &used);
            if (rc == 1) {
                CHECK(used > 0 && used <= len);
                buf_printf(out, "%c%zu:", p.inline_cmd ? 'i' : 'm', p.argc);
                for (size_t i = 0; i < p.argc; i++) {
                    buf_printf(out, "%zu=", p.argv[i].len);
                    buf_append(out, p.argv[i].ptr, p.argv[i].len);
                }
                start += used;
                free(copy);
                continue;
            }
            free(copy);
            if (rc == 0) break;
            CHECK(rc == -1);
            buf_printf(out, "E%s", p.err);
            resp_parser_close(&p);
            return;
        }
    }
    buf_append_char(out, 'M');
    resp_parser_close(&p);
}

static int http_head(const char *in, size_t len, http_request *req)
{
    char *copy = malloc(len ? len : 1);
    CHECK(copy != NULL);
    memcpy(copy, in, len);
    int rc = http_parse_head(copy, len, 8192, 2048, req);
    if (rc > 0) { /* compare by offsets into the input */
        req->target = in + (req->target - copy);
        req->method_str = in + (req->method_str - copy);
        for (size_t i = 0; i < req->n_headers; i++) {
            req->headers[i].name = in + (req->headers[i].name - copy);
            req->headers[i].value = in + (req->headers[i].value - copy);
        }
    }
    free(copy);
    return rc;
}

static void http_prefixes(const char *in, size_t n)
{
    http_request whole, part;
    int full = http_head(in, n, &whole);
    for (size_t k = 0; k <= n; k++) {
        int rc = http_head(in, k, &part);
        if (full > 0 && k < (size_t)full) {
            CHECK(rc == HTTP_NEED_MORE);
        } else if (full > 0) {
            CHECK(rc == full);
            CHECK(part.method == whole.method && part.target == whole.target &&
                  part.target_len == whole.target_len && part.n_headers == whole.n_headers &&
                  part.content_length == whole.content_length && part.chunked == whole.chunked);
        } else if (rc < 0) {
            CHECK(full < 0); /* a prefix is refused only if the whole is */
        }
    }
}

static int chunked(const char *in, size_t n, size_t cut, char *out, size_t *out_len, size_t *used)
{
    http_chunked_decoder d;
    http_chunked_init(&d);
    *out_len = 0;
    *used = 0;
    size_t c = 0;
    char *copy = malloc(n ? n : 1);
    CHECK(copy != NULL);
    memcpy(copy, in, n);
    int rc = http_chunked_feed(&d, copy, cut, &c, out, n, out_len);
    *used = c;
    if (rc == 0) {
        CHECK(c == cut);
        rc = http_chunked_feed(&d, copy + cut, n - cut, &c, out, n, out_len);
        *used += c;
    }
    free(copy);
    return rc;
}

static void chunked_splits(const char *in, size_t n)
{
    char *a = malloc(n ? n : 1), *b = malloc(n ? n : 1);
    CHECK(a && b);
    size_t a_len, a_used, b_len, b_used;
    int whole = chunked(in, n, n, a, &a_len, &a_used);
    for (size_t k = 0; k <= n; k++) {
        int rc = chunked(in, n, k, b, &b_len, &b_used);
        CHECK(rc == whole && b_len == a_len && b_used == a_used);
        CHECK(memcmp(a, b, a_len) == 0);
    }
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    size_t n = size < MAX_INPUT ? size : MAX_INPUT;
    buf whole, split;
    buf_init(&whole);
    buf_init(&split);
    resp_transcript(in, n, n, &whole);
    for (size_t k = 0; k < n; k++) {
        buf_reset(&split);
        resp_transcript(in, n, k, &split);
        if (split.len != whole.len || memcmp(split.data, whole.data, whole.len) != 0) {
            fprintf(stderr, "RESP: cut at %zu parses differently from the whole\n", k);
            abort();
        }
    }
    buf_close(&whole);
    buf_close(&split);
    http_prefixes(in, n);
    chunked_splits(in, n);
    return 0;
}
