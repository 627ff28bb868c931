/* libFuzzer target for net/http_parser.
 *
 * Besides looking for memory errors, it checks the properties the connection
 * layer relies on:
 * - a parsed head lies inside the input and everything it points to lies
 *   inside the head;
 * - incremental arrival changes nothing: a prefix of the input is rejected
 *   only if the whole input is, and a prefix of a valid head needs more;
 * - a chunked body decodes the same in one feed as in two;
 * - percent decoding never grows its input, works in place, and agrees with
 *   a deliberately naive reference. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/http_parser.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Cut points and limits come from the data itself, so the fuzzer can steer
 * them while every input stays a plain HTTP request (good for seeds). */
static uint64_t fuzz_hash(const uint8_t *d, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ d[i]) * 1099511628211ULL;
    return h;
}

static bool fuzz_inside(const char *p, size_t n, const char *base, size_t len)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;
    return p != NULL && a >= b && n <= len && a - b <= len - n;
}

static bool fuzz_known_code(int rc)
{
    switch (rc) {
    case HTTP_NEED_MORE:
    case HTTP_ERR_BAD_REQUEST:
    case HTTP_ERR_URI_TOO_LONG:
    case HTTP_ERR_HEADERS_TOO_LARGE:
    case HTTP_ERR_NOT_IMPLEMENTED:
    case HTTP_ERR_VERSION:
        return true;
    }
    return rc > 0;
}

/* Parses an exact-size copy, so that ASan catches a read past len. */
static int fuzz_parse(const char *buf, size_t len, size_t max_head, size_t max_target,
                      http_request *req)
{
    char *copy = malloc(len ? len : 1);
    CHECK(copy != NULL);
    if (len) memcpy(copy, buf, len);
    int rc = http_parse_head(copy, len, max_head, max_target, req);
    /* Rebase pointers onto buf, for comparison with other parses. */
    if (rc > 0) {
        ptrdiff_t delta = buf - copy;
        req->method_str += delta;
        req->target += delta;
        for (size_t i = 0; i < req->n_headers; i++) {
            req->headers[i].name += delta;
            req->headers[i].value += delta;
        }
    }
    free(copy);
    return rc;
}

static void fuzz_check_head(const char *buf, size_t size, size_t max_head, size_t max_target,
                            const http_request *req, int rc)
{
    CHECK(fuzz_known_code(rc));
    if (rc <= 0) return;
    size_t n = (size_t)rc;
    CHECK(n <= size);
    CHECK(n <= max_head);
    CHECK(req->head_len == n);
    CHECK(buf[n - 1] == '\n');
    CHECK(req->method_len > 0);
    CHECK(fuzz_inside(req->method_str, req->method_len, buf, n));
    CHECK(req->target_len > 0 && req->target_len <= max_target);
    CHECK(fuzz_inside(req->target, req->target_len, buf, n));
    CHECK(req->target[0] == '/' || (req->target[0] == '*' && req->target_len == 1));
    CHECK(req->version_minor == 0 || req->version_minor == 1);
    CHECK(req->n_headers <= HTTP_MAX_HEADERS);
    char name[16384 + 1];
    CHECK(n < sizeof name);
    for (size_t i = 0; i < req->n_headers; i++) {
        const http_header *h = &req->headers[i];
        CHECK(h->name_len > 0);
        CHECK(fuzz_inside(h->name, h->name_len, buf, n));
        CHECK(h->value_len == 0 || fuzz_inside(h->value, h->value_len, buf, n));
        /* Lookup by the same name, with its case flipped, finds this
         * header or an earlier one of the same name. */
        for (size_t j = 0; j < h->name_len; j++) {
            char c = h->name[j];
            bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
            name[j] = alpha ? (char)(c ^ 0x20) : c;
        }
        name[h->name_len] = '\0';
        const http_header *found = http_find_header(req, name);
        CHECK(found != NULL && found <= h && found->name_len == h->name_len);
        for (size_t j = 0; j < h->value_len; j++) {
            unsigned char c = (unsigned char)h->value[j];
            CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
    }
    CHECK(req->content_length >= -1);
    CHECK(!(req->chunked && req->content_length >= 0));
    if (req->version_minor == 0) CHECK(!req->chunked && !req->expect_continue);
}

static bool fuzz_same_request(const http_request *a, const http_request *b)
{
    if (a->method != b->method || a->method_str != b->method_str ||
        a->method_len != b->method_len || a->target != b->target ||
        a->target_len != b->target_len || a->version_minor != b->version_minor ||
        a->n_headers != b->n_headers || a->content_length != b->content_length ||
        a->chunked != b->chunked || a->keep_alive != b->keep_alive ||
        a->expect_continue != b->expect_continue || a->head_len != b->head_len)
        return false;
    for (size_t i = 0; i < a->n_headers; i++) {
        if (memcmp(&a->headers[i], &b->headers[i], sizeof a->headers[i]) != 0) return false;
    }
    return true;
}

/* Full parse against a parse of a data-chosen prefix. */
static void fuzz_head(const char *buf, size_t size, size_t max_head, size_t max_target, uint64_t h,
                      http_request *req)
{
    http_request part;
    int full = fuzz_parse(buf, size, max_head, max_target, req);
    fuzz_check_head(buf, size, max_head, max_target, req, full);

    size_t cut = size ? (size_t)(h % (size + 1)) : 0;
    int rc = fuzz_parse(buf, cut, max_head, max_target, &part);
    fuzz_check_head(buf, cut, max_head, max_target, &part, rc);
    if (rc < 0) CHECK(full < 0);
    if (full > 0) {
        if (cut < (size_t)full) {
            CHECK(rc == HTTP_NEED_MORE);
        } else {
            CHECK(rc == full);
            CHECK(fuzz_same_request(req, &part));
        }
    }
}

typedef struct fuzz_decoded {
    int rc;
    size_t consumed;
    size_t out_len;
} fuzz_decoded;

static fuzz_decoded fuzz_chunked_once(const char *in, size_t len, char *out, size_t cap)
{
    http_chunked_decoder d;
    fuzz_decoded r = {0};
    http_chunked_init(&d);
    r.rc = http_chunked_feed(&d, in, len, &r.consumed, out, cap, &r.out_len);
    CHECK(r.rc == 0 || r.rc == 1 || r.rc == HTTP_ERR_BAD_REQUEST || r.rc == HTTP_ERR_TOO_LARGE);
    CHECK(r.consumed <= len);
    CHECK(r.rc != 0 || r.consumed == len);
    CHECK(r.out_len <= cap && r.out_len <= r.consumed);
    CHECK(d.body_len == r.out_len);
    return r;
}

static fuzz_decoded fuzz_chunked_split(const char *in, size_t len, size_t split, char *out,
                                       size_t cap)
{
    http_chunked_decoder d;
    fuzz_decoded r = {0};
    size_t c = 0;
    http_chunked_init(&d);
    r.rc = http_chunked_feed(&d, in, split, &c, out, cap, &r.out_len);
    r.consumed = c;
    if (r.rc == 0) {
        CHECK(c == split);
        r.rc = http_chunked_feed(&d, in + split, len - split, &c, out, cap, &r.out_len);
        r.consumed += c;
    }
    /* Finished or failed decoders stay that way and eat nothing. */
    if (r.rc != 0) {
        size_t out_len = r.out_len;
        int again = http_chunked_feed(&d, in, len, &c, out, cap, &out_len);
        CHECK(again == r.rc && c == 0 && out_len == r.out_len);
    }
    return r;
}

static void fuzz_chunked(const char *in, size_t len, uint64_t h)
{
    /* Usually room for anything the input could decode to, sometimes less
     * so that the cap is exercised too. */
    size_t cap = (h & 3) ? len : (size_t)((h >> 2) % (len + 1));
    size_t split = (size_t)((h >> 20) % (len + 1));
    char *out1 = malloc(cap ? cap : 1);
    char *out2 = malloc(cap ? cap : 1);
    CHECK(out1 && out2);
    fuzz_decoded a = fuzz_chunked_once(in, len, out1, cap);
    fuzz_decoded b = fuzz_chunked_split(in, len, split, out2, cap);
    CHECK(a.rc == b.rc);
    CHECK(a.consumed == b.consumed);
    CHECK(a.out_len == b.out_len);
    CHECK(memcmp(out1, out2, a.out_len) == 0);
    free(out1);
    free(out2);
}

static int fuzz_hex(char c)
{
    static const char digits[] = "0123456789abcdefABCDEF";
    const char *p = memchr(digits, c, sizeof digits - 1);
    if (!p) return -1;
    int i = (int)(p - digits);
    return i < 16 ? i : i - 6;
}

/* The obvious byte loop, to compare the real decoder against. */
static long fuzz_reference_decode(const char *s, size_t n, char *out, bool form)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 >= n) return -1;
            int hi = fuzz_hex(s[i + 1]), lo = fuzz_hex(s[i + 2]);
            if (hi < 0 || lo < 0) return -1;
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = form && s[i] == '+' ? ' ' : s[i];
        }
    }
    return (long)o;
}

static void fuzz_percent(const char *s, size_t n, bool form)
{
    long (*decode)(const char *, size_t, char *) = form ? http_form_decode : http_percent_decode;
    char *src = malloc(n ? n : 1);
    char *dst = malloc(n ? n : 1);
    char *ref = malloc(n ? n : 1);
    CHECK(src && dst && ref);
    if (n) memcpy(src, s, n);
    long got = decode(src, n, dst);
    long want = fuzz_reference_decode(s, n, ref, form);
    CHECK(got == want);
    CHECK(got <= (long)n);
    if (got > 0) CHECK(memcmp(dst, ref, (size_t)got) == 0);
    long in_place = decode(src, n, src);
    CHECK(in_place == got);
    if (got > 0) CHECK(memcmp(src, ref, (size_t)got) == 0);
    free(src);
    free(dst);
    free(ref);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    http_request req;
    const char *buf = (const char *)data;
    uint64_t h = fuzz_hash(data, size);

    /* The production limits, then small ones that make 414 and 431 reachable
     * from short inputs. */
    fuzz_head(buf, size, 16384, 8192, h, &req);
    fuzz_head(buf, size, 1 + (size_t)((h >> 32) % 256), (size_t)((h >> 40) % 64), h >> 7, &req);

    int rc = http_parse_head(buf, size, 16384, 8192, &req);
    if (rc > 0) {
        fuzz_percent(req.target, req.target_len, false);
        fuzz_percent(req.target, req.target_len, true);
        if (req.chunked) fuzz_chunked(buf + rc, size - (size_t)rc, h);
    } else {
        /* Also decode the raw input as a body: most inputs never get past
         * the head, and the decoder deserves the coverage. */
        fuzz_chunked(buf, size, h);
    }
    fuzz_percent(buf, size, (h & 1) != 0);
    return 0;
}
