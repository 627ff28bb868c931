/* Unit tests for net/http_parser: request heads, chunked bodies, and
 * percent decoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net/http_parser.h"

#define MAX_HEAD 16384
#define MAX_TARGET 8192

static int parse_n(const char *s, size_t n, http_request *req)
{
    return http_parse_head(s, n, MAX_HEAD, MAX_TARGET, req);
}

static int parse(const char *s, http_request *req)
{
    return parse_n(s, strlen(s), req);
}

/* Parses a copy in a buffer of exactly the right size, so that ASan sees any
 * read past the end. */
static int parse_exact(const char *s, size_t n, size_t max_head, size_t max_target,
                       http_request *req)
{
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, s, n);
    int rc = http_parse_head(copy, n, max_head, max_target, req);
    free(copy);
    return rc;
}

static void assert_header(const http_request *req, const char *name, const char *value)
{
    const http_header *h = http_find_header(req, name);
    assert_non_null(h);
    assert_int_equal(h->value_len, strlen(value));
    assert_memory_equal(h->value, value, h->value_len);
}

static void assert_code(const char *s, int code)
{
    http_request req;
    assert_int_equal(parse_exact(s, strlen(s), MAX_HEAD, MAX_TARGET, &req), code);
}

/* ---- request heads ---- */

static void test_simple_get(void **state)
{
    const char *s = "GET /v1/key/foo HTTP/1.1\r\nHost: localhost\r\n\r\n";
    http_request req;
    int rc = parse(s, &req);
    assert_int_equal(rc, (int)strlen(s));
    assert_int_equal(req.head_len, strlen(s));
    assert_int_equal(req.method, HTTP_GET);
    assert_int_equal(req.method_len, 3);
    assert_memory_equal(req.method_str, "GET", 3);
    assert_int_equal(req.target_len, strlen("/v1/key/foo"));
    assert_memory_equal(req.target, "/v1/key/foo", req.target_len);
    assert_ptr_equal(req.target, s + 4);
    assert_int_equal(req.version_minor, 1);
    assert_int_equal(req.n_headers, 1);
    assert_int_equal(req.content_length, -1);
    assert_false(req.chunked);
    assert_true(req.keep_alive);
    assert_false(req.expect_continue);
    assert_header(&req, "Host", "localhost");
}

static void test_put_content_length(void **state)
{
    const char *s = "PUT /v1/key/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    http_request req;
    int rc = parse(s, &req);
    assert_int_equal(rc, (int)strlen(s) - 5);
    assert_int_equal(req.method, HTTP_PUT);
    assert_int_equal(req.content_length, 5);
    assert_memory_equal(s + rc, "hello", 5);
}

static void test_methods(void **state)
{
    static const struct {
        const char *name;
        http_method m;
    } cases[] = {
        {"GET", HTTP_GET},        {"HEAD", HTTP_HEAD},     {"PUT", HTTP_PUT},
        {"POST", HTTP_POST},      {"DELETE", HTTP_DELETE}, {"OPTIONS", HTTP_OPTIONS},
        {"PATCH", HTTP_PATCH},    {"BREW", HTTP_OTHER},    {"get", HTTP_OTHER},
        {"M-SEARCH", HTTP_OTHER}, {"GETX", HTTP_OTHER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char s[128];
        snprintf(s, sizeof s, "%s / HTTP/1.1\r\n\r\n", cases[i].name);
        http_request req;
        assert_int_equal(parse(s, &req), (int)strlen(s));
        assert_int_equal(req.method, cases[i].m);
        assert_int_equal(req.method_len, strlen(cases[i].name));
    }
}

static void test_asterisk_target(void **state)
{
    http_request req;
    const char *s = "OPTIONS * HTTP/1.1\r\n\r\n";
    assert_int_equal(parse(s, &req), (int)strlen(s));
    assert_int_equal(req.target_len, 1);
    assert_int_equal(req.target[0], '*');
    assert_code("OPTIONS *x HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_code("OPTIONS ** HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_REQUEST);
}

static void test_bare_lf(void **state)
{
    const char *s = "GET /a HTTP/1.1\nHost: x\nX-A: b\n\n";
    http_request req;
    assert_int_equal(parse(s, &req), (int)strlen(s));
    assert_int_equal(req.n_headers, 2);
    assert_header(&req, "x-a", "b");
}

static void test_leading_empty_lines(void **state)
{
    const char *s = "\r\n\n\r\nGET / HTTP/1.1\r\n\r\n";
    http_request req;
    assert_int_equal(parse(s, &req), (int)strlen(s));
    assert_int_equal(req.head_len, strlen(s));
    assert_ptr_equal(req.method_str, s + 5);
    assert_code("\rGET / HTTP/1.1\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_int_equal(parse("\r\n\r", &req), HTTP_NEED_MORE);
    assert_int_equal(parse("", &req), HTTP_NEED_MORE);
}

static void test_header_values(void **state)
{
    const char *s = "GET / HTTP/1.1\r\n"
                    "A:  spaced value \t \r\n"
                    "Empty:\r\n"
                    "Blank: \t \r\n"
                    "Utf8: caf\xc3\xa9\r\n"
                    "Colon: a:b: c\r\n"
                    "\r\n";
    http_request req;
    assert_int_equal(parse(s, &req), (int)strlen(s));
    assert_int_equal(req.n_headers, 5);
    assert_header(&req, "a", "spaced value");
    assert_header(&req, "empty", "");
    assert_header(&req, "blank", "");
    assert_header(&req, "utf8", "caf\xc3\xa9");
    assert_header(&req, "colon", "a:b: c");
}

static void test_header_lookup_case_insensitive(void **state)
{
    const char *s = "GET / HTTP/1.1\r\nX-Custom-Header: v1\r\ncontent-TYPE: text/plain\r\n\r\n";
    http_request req;
    assert_int_equal(parse(s, &req), (int)strlen(s));
    assert_header(&req, "x-custom-header", "v1");
    assert_header(&req, "X-CUSTOM-HEADER", "v1");
    assert_header(&req, "Content-Type", "text/plain");
    assert_null(http_find_header(&req, "X-Custom"));
    assert_null(http_find_header(&req, "X-Custom-Header2"));
    assert_null(http_find_header(&req, "Host"));
    /* The first of repeated headers is found. */
    s = "GET / HTTP/1.1\r\nX: 1\r\nx: 2\r\n\r\n";
    assert_int_equal(parse(s, &req), (int)strlen(s));
    assert_header(&req, "X", "1");
}

static void test_target_raw_bytes(void **state)
{
    const char *s = "GET /v1/key/caf\xc3\xa9?a=%2F HTTP/1.1\r\n\r\n";
    http_request req;
    assert_int_equal(parse(s, &req), (int)strlen(s));
    assert_int_equal(req.target_len, strlen("/v1/key/caf\xc3\xa9?a=%2F"));
}

static void test_bad_request_line(void **state)
{
    static const char *const bad[] = {
        " GET / HTTP/1.1\r\n\r\n", /* empty method */
        "GE(T / HTTP/1.1\r\n\r\n", /* non-token method */
        "GET\t/ HTTP/1.1\r\n\r\n", /* tab separator */
        "GET  / HTTP/1.1\r\n\r\n", /* double space */
        "GET / HTTP/1.1 \r\n\r\n", /* trailing space */
        "GET /  HTTP/1.1\r\n\r\n", /* double space after target */
        "GET x HTTP/1.1\r\n\r\n",  /* target not origin-form */
        "GET http://a/ HTTP/1.1\r\n\r\n",
        "GET /a\x01 HTTP/1.1\r\n\r\n", /* control char in target */
        "GET /a\x7f HTTP/1.1\r\n\r\n", /* DEL in target */
        "GET /a\tb HTTP/1.1\r\n\r\n",
        "GET /\r\n\r\n", /* no version */
        "GET\r\n\r\n",
        "GET /a HTTP/1.1\r\r\n\r\n", /* CR inside line */
        "GET /a\r HTTP/1.1\r\n\r\n",
        "GET / HTXP/1.1\r\n\r\n",
        "GET / http/1.1\r\n\r\n",
        "GET / HTTP/1.\r\n\r\n",
        "GET / HTTP/1\r\n\r\n",
        "GET / HTTP/1,1\r\n\r\n",
        "GET / HTTP/a.1\r\n\r\n",
        "GET / HTTP/1.x\r\n\r\n",
        "GET / HTTP/1.10\r\n\r\n",
        "GET / HTTP/1.1x\r\n\r\n",
        "\r\n\rGET / HTTP/1.1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http_request req;
        int rc = parse_exact(bad[i], strlen(bad[i]), MAX_HEAD, MAX_TARGET, &req);
        if (rc != HTTP_ERR_BAD_REQUEST) fail_msg("case %zu: got %d", i, rc);
    }
}

static void test_nul_in_request_line(void **state)
{
    static const char s1[] = "GET /a\0b HTTP/1.1\r\n\r\n";
    static const char s2[] = "G\0T / HTTP/1.1\r\n\r\n";
    static const char s3[] = "GET / HTTP/1.1\0\r\n\r\n";
    http_request req;
    assert_int_equal(parse_exact(s1, sizeof s1 - 1, MAX_HEAD, MAX_TARGET, &req),
                     HTTP_ERR_BAD_REQUEST);
    assert_int_equal(parse_exact(s2, sizeof s2 - 1, MAX_HEAD, MAX_TARGET, &req),
                     HTTP_ERR_BAD_REQUEST);
    assert_int_equal(parse_exact(s3, sizeof s3 - 1, MAX_HEAD, MAX_TARGET, &req),
                     HTTP_ERR_BAD_REQUEST);
}

static void test_bad_version(void **state)
{
    assert_code("GET / HTTP/2.0\r\n\r\n", HTTP_ERR_VERSION);
    assert_code("GET / HTTP/1.2\r\n\r\n", HTTP_ERR_VERSION);
    assert_code("GET / HTTP/0.9\r\n\r\n", HTTP_ERR_VERSION);
    assert_code("GET / HTTP/3.0\r\n\r\n", HTTP_ERR_VERSION);
    /* Known as soon as the version is read, before the line ends. */
    assert_code("GET / HTTP/2.0", HTTP_ERR_VERSION);
    http_request req;
    assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &req), 18);
    assert_int_equal(req.version_minor, 0);
}

static void test_bad_headers(void **state)
{
    static const char *const bad[] = {
        "GET / HTTP/1.1\r\nHost : x\r\n\r\n",  /* space before colon */
        "GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", /* tab before colon */
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\n: empty-name\r\n\r\n",
        "GET / HTTP/1.1\r\nBad(Name): x\r\n\r\n",
        "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", /* obs-fold */
        "GET / HTTP/1.1\r\nA: b\r\n\tfolded\r\n\r\n",
        "GET / HTTP/1.1\r\n continuation\r\n\r\n",
        "GET / HTTP/1.1\r\nA: b\x01\r\n\r\n", /* control char in value */
        "GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n",
        "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", /* bare CR in value */
        "GET / HTTP/1.1\r\nA: b\r\r\n\r\n",
        "GET / HTTP/1.1\r\nA: b\r\n\rX\r\n\r\n", /* CR not followed by LF */
        "GET / HTTP/1.1\r\nA: b\r\n\r\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        http_request req;
        int rc = parse_exact(bad[i], strlen(bad[i]), MAX_HEAD, MAX_TARGET, &req);
        if (rc != HTTP_ERR_BAD_REQUEST) fail_msg("case %zu: got %d", i, rc);
    }
}

static void test_nul_in_header(void **state)
{
    static const char s1[] = "GET / HTTP/1.1\r\nA: x\0y\r\n\r\n";
    static const char s2[] = "GET / HTTP/1.1\r\nA\0B: xy\r\n\r\n";
    http_request req;
    assert_int_equal(parse_exact(s1, sizeof s1 - 1, MAX_HEAD, MAX_TARGET, &req),
                     HTTP_ERR_BAD_REQUEST);
    assert_int_equal(parse_exact(s2, sizeof s2 - 1, MAX_HEAD, MAX_TARGET, &req),
                     HTTP_ERR_BAD_REQUEST);
}

static void test_content_length(void **state)
{
    http_request req;
    const char *s = "PUT / HTTP/1.1\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(parse(s, &req), (int)strlen(s));
    assert_int_equal(req.content_length, 0);

    s = "PUT / HTTP/1.1\r\ncontent-length:   0042  \r\n\r\n";
    assert_int_equal(parse(s, &req), (int)strlen(s));
    assert_int_equal(req.content_length, 42);

    s = "PUT / HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\n";
    assert_int_equal(parse(s, &req), (int)strlen(s));
    assert_int_equal(req.content_length, INT64_MAX);

    /* The same value twice is harmless (RFC 9110 §8.6). */
    s = "PUT / HTTP/1.1\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n";
    assert_int_equal(parse(s, &req), (int)strlen(s));
    assert_int_equal(req.content_length, 7);
    s = "PUT / HTTP/1.1\r\nContent-Length: 7\r\nContent-Length: 007\r\n\r\n";
    assert_int_equal(parse(s, &req), (int)strlen(s));
    assert_int_equal(req.content_length, 7);

    assert_code("PUT / HTTP/1.1\r\nContent-Length: 9223372036854775808\r\n\r\n",
                HTTP_ERR_BAD_REQUEST);
    assert_code("PUT / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                HTTP_ERR_BAD_REQUEST);
    assert_code("PUT / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_code("PUT / HTTP/1.1\r\nContent-Length: +1\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_code("PUT / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_code("PUT / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_code("PUT / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_code("PUT / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_code("PUT / HTTP/1.1\r\nContent-Length:\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_code("PUT / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                HTTP_ERR_BAD_REQUEST);
}

static void test_transfer_encoding(void **state)
{
    http_request req;
    const char *s = "PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(parse(s, &req), (int)strlen(s));
    assert_true(req.chunked);
    assert_int_equal(req.content_length, -1);

    s = "PUT / HTTP/1.1\r\ntransfer-encoding:  ChUnKeD \r\n\r\n";
    assert_int_equal(parse(s, &req), (int)strlen(s));
    assert_true(req.chunked);

    assert_code("PUT / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", HTTP_ERR_NOT_IMPLEMENTED);
    assert_code("PUT / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                HTTP_ERR_NOT_IMPLEMENTED);
    assert_code("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
                HTTP_ERR_NOT_IMPLEMENTED);
    assert_code(
        "PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        HTTP_ERR_NOT_IMPLEMENTED);
    assert_code("PUT / HTTP/1.1\r\nTransfer-Encoding: chunkedx\r\n\r\n", HTTP_ERR_NOT_IMPLEMENTED);
    assert_code("PUT / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n", HTTP_ERR_NOT_IMPLEMENTED);
}

static void test_cl_and_te(void **state)
{
    assert_code("PUT / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                HTTP_ERR_BAD_REQUEST);
    assert_code("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
                HTTP_ERR_BAD_REQUEST);
    /* Even an unknown coding: the conflict is the worse problem. */
    assert_code("PUT / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n\r\n",
                HTTP_ERR_BAD_REQUEST);
    /* Transfer-Encoding means nothing in HTTP/1.0: faulty framing. */
    assert_code("PUT / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_ERR_BAD_REQUEST);
}

static void test_expect_continue(void **state)
{
    http_request req;
    const char *s = "PUT / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    assert_int_equal(parse(s, &req), (int)strlen(s));
    assert_true(req.expect_continue);

    s = "PUT / HTTP/1.1\r\nEXPECT: 100-Continue\r\n\r\n";
    assert_int_equal(parse(s, &req), (int)strlen(s));
    assert_true(req.expect_continue);

    s = "PUT / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n";
    assert_int_equal(parse(s, &req), (int)strlen(s));
    assert_false(req.expect_continue);

    /* HTTP/1.0 clients do not understand an interim 100. */
    s = "PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n";
    assert_int_equal(parse(s, &req), (int)strlen(s));
    assert_false(req.expect_continue);
}

static void test_keep_alive(void **state)
{
    static const struct {
        const char *head;
        bool keep_alive;
    } cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nConnection: CLOSE\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nConnection: Upgrade, close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nConnection: upgrade ,  Close ,x\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nConnection: closed\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nConnection: x-close\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nConnection: upgrade\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nX-Connection: close\r\n\r\n", true},
        {"GET / HTTP/1.0\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: foo, keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: ,,\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive-ish\r\n\r\n", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http_request req;
        assert_int_equal(parse(cases[i].head, &req), (int)strlen(cases[i].head));
        if (req.keep_alive != cases[i].keep_alive) fail_msg("case %zu", i);
    }
}

static void test_too_many_headers(void **state)
{
    char s[8192];
    size_t n = (size_t)snprintf(s, sizeof s, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < HTTP_MAX_HEADERS; i++)
        n += (size_t)snprintf(s + n, sizeof s - n, "H%d: v\r\n", i);
    http_request req;
    snprintf(s + n, sizeof s - n, "\r\n");
    assert_int_equal(parse(s, &req), (int)n + 2);
    assert_int_equal(req.n_headers, HTTP_MAX_HEADERS);
    assert_header(&req, "h63", "v");

    snprintf(s + n, sizeof s - n, "One-Too-Many: v\r\n\r\n");
    assert_int_equal(parse(s, &req), HTTP_ERR_HEADERS_TOO_LARGE);
}

static void test_uri_too_long(void **state)
{
    http_request req;
    const char *s = "GET /abcdefgh HTTP/1.1\r\n\r\n"; /* target of 9 bytes */
    assert_int_equal(parse_exact(s, strlen(s), MAX_HEAD, 9, &req), (int)strlen(s));
    assert_int_equal(parse_exact(s, strlen(s), MAX_HEAD, 8, &req), HTTP_ERR_URI_TOO_LONG);
    /* Known before the request line ends... */
    assert_int_equal(parse_exact(s, 13, MAX_HEAD, 8, &req), HTTP_ERR_URI_TOO_LONG);
    assert_int_equal(parse_exact(s, 12, MAX_HEAD, 8, &req), HTTP_NEED_MORE);
    /* ...and before the head cap is reached. */
    char big[2000];
    memset(big, 'a', sizeof big);
    memcpy(big, "GET /", 5);
    assert_int_equal(parse_exact(big, sizeof big, MAX_HEAD, 1024, &req), HTTP_ERR_URI_TOO_LONG);
    /* 414 wins over 431 on an overlong request line. */
    assert_int_equal(parse_exact(big, sizeof big, 100, 1024, &req), HTTP_ERR_URI_TOO_LONG);
}

static void test_head_too_large(void **state)
{
    const char *s = "GET / HTTP/1.1\r\nHost: example\r\n\r\n";
    size_t n = strlen(s);
    http_request req;
    assert_int_equal(parse_exact(s, n, n, MAX_TARGET, &req), (int)n);
    assert_int_equal(parse_exact(s, n, n - 1, MAX_TARGET, &req), HTTP_ERR_HEADERS_TOO_LARGE);
    /* Incomplete: as soon as the cap is reached without the end. */
    assert_int_equal(parse_exact(s, n - 1, n - 1, MAX_TARGET, &req), HTTP_ERR_HEADERS_TOO_LARGE);
    assert_int_equal(parse_exact(s, n - 2, n - 1, MAX_TARGET, &req), HTTP_NEED_MORE);
    assert_int_equal(parse_exact(s, 10, 10, MAX_TARGET, &req), HTTP_ERR_HEADERS_TOO_LARGE);
    /* Leading empty lines count. */
    const char *t = "\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    assert_int_equal(parse_exact(t, strlen(t), strlen(t) - 1, MAX_TARGET, &req),
                     HTTP_ERR_HEADERS_TOO_LARGE);
    char crlfs[64];
    for (size_t i = 0; i < sizeof crlfs; i += 2) memcpy(crlfs + i, "\r\n", 2);
    assert_int_equal(parse_exact(crlfs, sizeof crlfs, 32, MAX_TARGET, &req),
                     HTTP_ERR_HEADERS_TOO_LARGE);
    /* A long header line. */
    char big[MAX_HEAD + 100];
    size_t m = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\nX: ");
    memset(big + m, 'v', sizeof big - m);
    assert_int_equal(parse_exact(big, sizeof big, MAX_HEAD, MAX_TARGET, &req),
                     HTTP_ERR_HEADERS_TOO_LARGE);
    memcpy(big + sizeof big - 4, "\r\n\r\n", 4);
    assert_int_equal(parse_exact(big, sizeof big, MAX_HEAD, MAX_TARGET, &req),
                     HTTP_ERR_HEADERS_TOO_LARGE);
}

/* Every proper prefix of a valid head needs more; the whole parses to the
 * same result whatever follows it. */
static void check_prefixes(const char *s)
{
    size_t n = strlen(s);
    http_request req;
    for (size_t i = 0; i < n; i++) {
        int rc = parse_exact(s, i, MAX_HEAD, MAX_TARGET, &req);
        if (rc != HTTP_NEED_MORE) fail_msg("prefix %zu of %zu: got %d", i, n, rc);
    }
    assert_int_equal(parse_exact(s, n, MAX_HEAD, MAX_TARGET, &req), (int)n);
}

static void test_incomplete_every_boundary(void **state)
{
    check_prefixes("GET /v1/key/foo HTTP/1.1\r\nHost: localhost\r\n\r\n");
    check_prefixes("PUT /v1/key/a%2Fb HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                   "Expect: 100-continue\r\nConnection: keep-alive\r\n\r\n");
    check_prefixes("POST / HTTP/1.0\nA: b\n\n");
    check_prefixes("\r\n\r\nDELETE /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    check_prefixes("OPTIONS * HTTP/1.1\r\nEmpty:\r\n\r\n");
}

static void test_pipelined(void **state)
{
    const char *s = "PUT /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                    "GET /b HTTP/1.1\r\nConnection: close\r\n\r\n"
                    "GET /c";
    http_request req;
    int rc = parse(s, &req);
    assert_true(rc > 0);
    assert_int_equal(req.method, HTTP_PUT);
    assert_memory_equal(req.target, "/a", 2);
    assert_int_equal(req.content_length, 3);
    size_t off = (size_t)rc + 3;

    rc = parse(s + off, &req);
    assert_true(rc > 0);
    assert_int_equal(req.method, HTTP_GET);
    assert_memory_equal(req.target, "/b", 2);
    assert_false(req.keep_alive);
    off += (size_t)rc;

    assert_int_equal(parse(s + off, &req), HTTP_NEED_MORE);

    /* Two heads back to back, no body. */
    const char *t = "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n";
    rc = parse(t, &req);
    assert_int_equal(rc, (int)strlen(t) / 2);
    assert_memory_equal(req.target, "/1", 2);
    rc = parse(t + rc, &req);
    assert_int_equal(rc, (int)strlen(t) / 2);
    assert_memory_equal(req.target, "/2", 2);
}

/* ---- chunked bodies ---- */

typedef struct chunk_result {
    int rc;
    size_t consumed;
    size_t out_len;
    char out[256];
} chunk_result;

static chunk_result decode_all(const char *in, size_t len, size_t cap)
{
    chunk_result r = {0};
    http_chunked_decoder d;
    http_chunked_init(&d);
    assert_true(cap <= sizeof r.out);
    r.rc = http_chunked_feed(&d, in, len, &r.consumed, r.out, cap, &r.out_len);
    return r;
}

static void assert_decodes(const char *in, const char *want)
{
    chunk_result r = decode_all(in, strlen(in), sizeof r.out);
    assert_int_equal(r.rc, 1);
    assert_int_equal(r.consumed, strlen(in));
    assert_int_equal(r.out_len, strlen(want));
    assert_memory_equal(r.out, want, r.out_len);
}

static void assert_chunk_error(const char *in, int code)
{
    chunk_result r = decode_all(in, strlen(in), sizeof r.out);
    assert_int_equal(r.rc, code);
}

static void test_chunked_single(void **state)
{
    assert_decodes("5\r\nhello\r\n0\r\n\r\n", "hello");
    assert_decodes("0\r\n\r\n", "");
    assert_decodes("000\r\n\r\n", "");
    assert_decodes("0005\r\nhello\r\n0\r\n\r\n", "hello");
}

static void test_chunked_many(void **state)
{
    assert_decodes(
        "1\r\na\r\n2\r\nbc\r\n3\r\ndef\r\na\r\n0123456789\r\nA\r\nABCDEFGHIJ\r\n0\r\n\r\n",
        "abcdef0123456789ABCDEFGHIJ");
    assert_decodes("6\r\n\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n\r\n");
}

static void test_chunked_extensions(void **state)
{
    assert_decodes("5;name=value\r\nhello\r\n0;last\r\n\r\n", "hello");
    assert_decodes("5 ; a=\"quoted; \\\"x\" ;b\r\nhello\r\n0\r\n\r\n", "hello");
    assert_decodes("5\t;a\r\nhello\r\n0\r\n\r\n", "hello");
    assert_chunk_error("5;a\nb\r\nhello\r\n0\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_chunk_error("5;a\x01\r\nhello\r\n0\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_chunk_error("5 x\r\nhello\r\n0\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_chunk_error("5 \r\nhello\r\n0\r\n\r\n", HTTP_ERR_BAD_REQUEST);
}

static void test_chunked_trailers(void **state)
{
    assert_decodes("5\r\nhello\r\n0\r\nX-Sum: 1234\r\nX-Other:\r\n\r\n", "hello");
    assert_chunk_error("0\r\nX-Sum 1\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_chunk_error("0\r\nX-Sum: 1\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_chunk_error("0\r\n folded: 1\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_chunk_error("0\r\nX: a\x01\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_chunk_error("0\r\n:x\r\n\r\n", HTTP_ERR_BAD_REQUEST);
}

static void test_chunked_split_every_boundary(void **state)
{
    const char *in = "5;ext=1\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nT: v\r\n\r\n"
                     "GET / HTTP/1.1\r\n\r\n";
    const char *want = "helloabcdefghijklmnopqrstuvwxyz";
    size_t body = strlen(in) - strlen("GET / HTTP/1.1\r\n\r\n");
    size_t n = strlen(in);
    for (size_t split = 0; split <= n; split++) {
        http_chunked_decoder d;
        http_chunked_init(&d);
        char out[64];
        size_t out_len = 0, c1 = 0, c2 = 0;
        int rc = http_chunked_feed(&d, in, split, &c1, out, sizeof out, &out_len);
        if (split < body) {
            assert_int_equal(rc, 0);
            assert_int_equal(c1, split);
            rc = http_chunked_feed(&d, in + split, n - split, &c2, out, sizeof out, &out_len);
        }
        assert_int_equal(rc, 1);
        assert_int_equal(c1 + c2, body);
        assert_int_equal(out_len, strlen(want));
        assert_memory_equal(out, want, out_len);
        /* Done is sticky and consumes nothing more. */
        assert_int_equal(http_chunked_feed(&d, in, n, &c2, out, sizeof out, &out_len), 1);
        assert_int_equal(c2, 0);
    }

    /* And one byte at a time. */
    http_chunked_decoder d;
    http_chunked_init(&d);
    char out[64];
    size_t out_len = 0, total = 0;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t c;
        rc = http_chunked_feed(&d, in + i, 1, &c, out, sizeof out, &out_len);
        assert_int_equal(c, 1);
        total += c;
    }
    assert_int_equal(rc, 1);
    assert_int_equal(total, body);
    assert_int_equal(d.body_len, strlen(want));
    assert_memory_equal(out, want, out_len);
}

static void test_chunked_bad_hex(void **state)
{
    assert_chunk_error("g\r\nhello\r\n0\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_chunk_error("5g\r\nhello\r\n0\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_chunk_error("-5\r\nhello\r\n0\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_chunk_error("0x5\r\nhello\r\n0\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_chunk_error("\r\nhello\r\n0\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_chunk_error(";a\r\nhello\r\n0\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_chunk_error(" 5\r\nhello\r\n0\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    /* Upper- and lower-case hex are both fine. */
    assert_decodes("B\r\nhello world\r\n0\r\n\r\n", "hello world");
    assert_decodes("b\r\nhello world\r\n0\r\n\r\n", "hello world");
}

static void test_chunked_too_large(void **state)
{
    chunk_result r = decode_all("5\r\nhello\r\n0\r\n\r\n", 15, 5);
    assert_int_equal(r.rc, 1);
    r = decode_all("5\r\nhello\r\n0\r\n\r\n", 15, 4);
    assert_int_equal(r.rc, HTTP_ERR_TOO_LARGE);
    r = decode_all("3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", 23, 5);
    assert_int_equal(r.rc, HTTP_ERR_TOO_LARGE);
    assert_int_equal(r.out_len, 3);
    /* A size that would overflow 64 bits is just too large. */
    assert_chunk_error("ffffffffffffffffffffffff\r\n", HTTP_ERR_TOO_LARGE);
    assert_chunk_error("10000000000000000\r\n", HTTP_ERR_TOO_LARGE);
    /* Leading zeros are not a size. */
    r = decode_all("00000000000000000000000001\r\nx\r\n0\r\n\r\n", 36, 1);
    assert_int_equal(r.rc, 1);
    assert_int_equal(r.out_len, 1);
}

static void test_chunked_missing_crlf(void **state)
{
    assert_chunk_error("5\r\nhelloX\r\n0\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_chunk_error("5\r\nhello\rX0\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_chunk_error("5\r\nhello\n0\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_chunk_error("5\nhello\r\n0\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_chunk_error("5\rhello\r\n0\r\n\r\n", HTTP_ERR_BAD_REQUEST);
    assert_chunk_error("5\r\nhello\r\n0\r\n\n", HTTP_ERR_BAD_REQUEST);
    assert_chunk_error("5\r\nhello\r\n0\r\n\rX", HTTP_ERR_BAD_REQUEST);
    assert_chunk_error("5\r\nhello\r\n0\n\r\n", HTTP_ERR_BAD_REQUEST);
}

static void test_chunked_incomplete_and_error_sticky(void **state)
{
    http_chunked_decoder d;
    http_chunked_init(&d);
    char out[16];
    size_t out_len = 0, c;
    assert_int_equal(http_chunked_feed(&d, "5\r\nhel", 6, &c, out, sizeof out, &out_len), 0);
    assert_int_equal(c, 6);
    assert_int_equal(out_len, 3);
    assert_int_equal(http_chunked_feed(&d, "", 0, &c, out, sizeof out, &out_len), 0);
    assert_int_equal(c, 0);
    assert_int_equal(http_chunked_feed(&d, "loX", 3, &c, out, sizeof out, &out_len),
                     HTTP_ERR_BAD_REQUEST);
    assert_int_equal(c, 2); /* the offending byte is not consumed */
    assert_int_equal(http_chunked_feed(&d, "\r\n0\r\n\r\n", 7, &c, out, sizeof out, &out_len),
                     HTTP_ERR_BAD_REQUEST);
    assert_int_equal(c, 0);
}

static void test_chunked_line_limits(void **state)
{
    static char in[10000];
    http_chunked_decoder d;
    char out[16];
    size_t out_len, c;

    /* A size line of exactly 4 KiB (counting CR LF) is fine. */
    memset(in, 0, sizeof in);
    strcpy(in, "1;");
    memset(in + 2, 'x', 4096 - 4);
    strcpy(in + 4094, "\r\nA\r\n0\r\n\r\n");
    http_chunked_init(&d);
    out_len = 0;
    assert_int_equal(http_chunked_feed(&d, in, strlen(in), &c, out, sizeof out, &out_len), 1);
    assert_int_equal(out_len, 1);

    /* One more byte of extension is not. */
    memset(in, 0, sizeof in);
    strcpy(in, "1;");
    memset(in + 2, 'x', 4096 - 3);
    strcpy(in + 4095, "\r\nA\r\n0\r\n\r\n");
    http_chunked_init(&d);
    out_len = 0;
    assert_int_equal(http_chunked_feed(&d, in, strlen(in), &c, out, sizeof out, &out_len),
                     HTTP_ERR_BAD_REQUEST);

    /* Endless leading zeros hit the same cap. */
    memset(in, '0', sizeof in);
    http_chunked_init(&d);
    out_len = 0;
    assert_int_equal(http_chunked_feed(&d, in, sizeof in, &c, out, sizeof out, &out_len),
                     HTTP_ERR_BAD_REQUEST);
    assert_int_equal(c, 4096);

    /* The whole trailer section is capped, not just each line. */
    size_t n = (size_t)snprintf(in, sizeof in, "0\r\n");
    while (n < 5000) n += (size_t)snprintf(in + n, sizeof in - n, "X-Trailer: 0123456789\r\n");
    n += (size_t)snprintf(in + n, sizeof in - n, "\r\n");
    http_chunked_init(&d);
    out_len = 0;
    assert_int_equal(http_chunked_feed(&d, in, n, &c, out, sizeof out, &out_len),
                     HTTP_ERR_BAD_REQUEST);
}

/* ---- percent decoding ---- */

static void assert_pct(long (*fn)(const char *, size_t, char *), const char *src, const char *want,
                       long want_len)
{
    char dst[256];
    long n = fn(src, strlen(src), dst);
    assert_int_equal(n, want_len);
    if (want_len >= 0) assert_memory_equal(dst, want, (size_t)want_len);
}

static void test_percent_decode(void **state)
{
    assert_pct(http_percent_decode, "", "", 0);
    assert_pct(http_percent_decode, "plain", "plain", 5);
    assert_pct(http_percent_decode, "a%2Fb", "a/b", 3);
    assert_pct(http_percent_decode, "a%2fb", "a/b", 3);
    assert_pct(http_percent_decode, "%00", "\0", 1);
    assert_pct(http_percent_decode, "x%00y%FF", "x\0y\xff", 4);
    assert_pct(http_percent_decode, "%25%25", "%%", 2);
    assert_pct(http_percent_decode, "a+b", "a+b", 3);
    assert_pct(http_percent_decode, "%2B", "+", 1);
    assert_pct(http_percent_decode, "%G1", NULL, -1);
    assert_pct(http_percent_decode, "%1G", NULL, -1);
    assert_pct(http_percent_decode, "abc%", NULL, -1);
    assert_pct(http_percent_decode, "abc%4", NULL, -1);
    assert_pct(http_percent_decode, "%%41", NULL, -1);
    assert_pct(http_percent_decode, "% 41", NULL, -1);
}

static void test_form_decode(void **state)
{
    assert_pct(http_form_decode, "a+b", "a b", 3);
    assert_pct(http_form_decode, "++", "  ", 2);
    assert_pct(http_form_decode, "a%2Bb", "a+b", 3);
    assert_pct(http_form_decode, "k=v+1%26x", "k=v 1&x", 7);
    assert_pct(http_form_decode, "%2G", NULL, -1);
    assert_pct(http_form_decode, "a+%", NULL, -1);
}

static void test_percent_decode_in_place(void **state)
{
    char s[] = "%41b%2Fc+d%2b";
    long n = http_percent_decode(s, strlen(s), s);
    assert_int_equal(n, 7);
    assert_memory_equal(s, "Ab/c+d+", 7);
    char f[] = "x+%41+y";
    n = http_form_decode(f, strlen(f), f);
    assert_int_equal(n, 5);
    assert_memory_equal(f, "x A y", 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_put_content_length),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_asterisk_target),
        cmocka_unit_test(test_bare_lf),
        cmocka_unit_test(test_leading_empty_lines),
        cmocka_unit_test(test_header_values),
        cmocka_unit_test(test_header_lookup_case_insensitive),
        cmocka_unit_test(test_target_raw_bytes),
        cmocka_unit_test(test_bad_request_line),
        cmocka_unit_test(test_nul_in_request_line),
        cmocka_unit_test(test_bad_version),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_nul_in_header),
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_transfer_encoding),
        cmocka_unit_test(test_cl_and_te),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_too_many_headers),
        cmocka_unit_test(test_uri_too_long),
        cmocka_unit_test(test_head_too_large),
        cmocka_unit_test(test_incomplete_every_boundary),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_chunked_single),
        cmocka_unit_test(test_chunked_many),
        cmocka_unit_test(test_chunked_extensions),
        cmocka_unit_test(test_chunked_trailers),
        cmocka_unit_test(test_chunked_split_every_boundary),
        cmocka_unit_test(test_chunked_bad_hex),
        cmocka_unit_test(test_chunked_too_large),
        cmocka_unit_test(test_chunked_missing_crlf),
        cmocka_unit_test(test_chunked_incomplete_and_error_sticky),
        cmocka_unit_test(test_chunked_line_limits),
        cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_form_decode),
        cmocka_unit_test(test_percent_decode_in_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
