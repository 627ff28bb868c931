/* libFuzzer target for net/resp's request parser.
 *
 * Input layout: byte 0 picks limits and delivery options, bytes 1-2 pick
 * where the stream is cut, the rest is the stream. The stream is parsed
 * once in one piece and once delivered in two or three pieces the way a
 * connection delivers it: the unread bytes from the same start on every
 * call until a command completes, each call from a freshly malloc'd copy of
 * exactly that length (so reads past the end, or through pointers kept from
 * an older buffer, trip ASan). Both runs must yield the same commands and
 * the same final error. Each command is also checked to end exactly at
 * *consumed and to survive a round trip through the reply writers. Any
 * violation aborts. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/resp.h"
#include "util/buf.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static const resp_limits fuzz_unlimited = {SIZE_MAX, SIZE_MAX, SIZE_MAX};

static char *fuzz_copy(const char *p, size_t n)
{
    char *c = malloc(n ? n : 1);
    CHECK(c != NULL);
    if (n) memcpy(c, p, n);
    return c;
}

static bool fuzz_same_argv(const resp_parser *a, const resp_parser *b)
{
    if (a->argc != b->argc) return false;
    for (size_t i = 0; i < a->argc; i++) {
        if (a->argv[i].len != b->argv[i].len) return false;
        if (a->argv[i].len && memcmp(a->argv[i].ptr, b->argv[i].ptr, a->argv[i].len) != 0)
            return false;
    }
    return true;
}

/* The command just returned from data[0..consumed) must come out the same
 * from exactly those bytes, and not from one byte fewer. */
static void fuzz_check_boundary(const resp_parser *p, const char *data, size_t consumed,
                                const resp_limits *lim)
{
    resp_parser q;
    resp_parser_init(&q);
    size_t c;
    char *copy = fuzz_copy(data, consumed - 1);
    CHECK(resp_parse(&q, copy, consumed - 1, lim, &c) == 0);
    free(copy);
    resp_parser_close(&q);

    resp_parser_init(&q);
    copy = fuzz_copy(data, consumed);
    CHECK(resp_parse(&q, copy, consumed, lim, &c) == 1);
    CHECK(c == consumed);
    CHECK(q.inline_cmd == p->inline_cmd);
    CHECK(fuzz_same_argv(p, &q));
    free(copy);
    resp_parser_close(&q);
}

/* Writing the argv as a multibulk request must parse back to it. */
static void fuzz_check_roundtrip(const resp_parser *p)
{
    buf out;
    buf_init(&out);
    resp_write_array(&out, p->argc);
    for (size_t i = 0; i < p->argc; i++) resp_write_bulk(&out, p->argv[i].ptr, p->argv[i].len);
    resp_parser q;
    resp_parser_init(&q);
    size_t c;
    char *copy = fuzz_copy(out.data, out.len);
    CHECK(resp_parse(&q, copy, out.len, &fuzz_unlimited, &c) == 1);
    CHECK(c == out.len);
    CHECK(!q.inline_cmd);
    CHECK(fuzz_same_argv(p, &q));
    free(copy);
    resp_parser_close(&q);
    buf_close(&out);
}

static void fuzz_check_result(const resp_parser *p, int rc, const char *data, size_t len,
                              size_t consumed)
{
    CHECK(rc >= -1 && rc <= 1);
    CHECK(consumed <= len);
    if (rc == -1) {
        CHECK(consumed == 0);
        CHECK(strncmp(p->err, "Protocol error: ", 16) == 0);
        CHECK(memchr(p->err, '\0', sizeof(p->err)) != NULL);
        CHECK(strpbrk(p->err, "\r\n") == NULL);
        return;
    }
    if (rc == 0) return;
    CHECK(consumed > 0);
    CHECK(p->argc > 0);
    const char *lo = p->inline_cmd ? p->inline_scratch.data : data;
    size_t n = p->inline_cmd ? p->inline_scratch.len : consumed;
    for (size_t i = 0; i < p->argc; i++) {
        CHECK(p->argv[i].ptr != NULL);
        CHECK(p->argv[i].ptr >= lo);
        CHECK(p->argv[i].len <= n);
        CHECK((size_t)(p->argv[i].ptr - lo) <= n - p->argv[i].len);
    }
    if (!p->inline_cmd) {
        /* Multibulk bytes are never altered: a zero-copy view. */
        CHECK(p->argv[p->argc - 1].ptr + p->argv[p->argc - 1].len + 2 == data + consumed);
    }
}

/* Appends to log: per command 'i' or 'm', argc and each arg as length +
 * bytes; at the end 'E' + error text, or 'M' when more input is needed. */
static void fuzz_run(const char *in, size_t n, const size_t *cuts, size_t ncuts,
                     const resp_limits *lim, bool drop_on_more, bool deep, buf *log)
{
    resp_parser p;
    resp_parser_init(&p);
    size_t off = 0;
    for (size_t stage = 0; stage <= ncuts; stage++) {
        size_t end = stage < ncuts ? cuts[stage] : n;
        if (end < off) continue;
        for (;;) {
            size_t len = end - off;
            char *copy = fuzz_copy(in + off, len);
            size_t consumed = (size_t)-1;
            int rc = resp_parse(&p, copy, len, lim, &consumed);
            fuzz_check_result(&p, rc, copy, len, consumed);
            if (rc == 1) {
                buf_append_char(log, p.inline_cmd ? 'i' : 'm');
                buf_append(log, &p.argc, sizeof(p.argc));
                for (size_t i = 0; i < p.argc; i++) {
                    buf_append(log, &p.argv[i].len, sizeof(p.argv[i].len));
                    buf_append(log, p.argv[i].ptr, p.argv[i].len);
                }
                if (deep) {
                    fuzz_check_boundary(&p, copy, consumed, lim);
                    fuzz_check_roundtrip(&p);
                }
                off += consumed;
                free(copy);
                continue;
            }
            free(copy);
            if (rc == 0) {
                if (drop_on_more) off += consumed;
                break;
            }
            buf_append_char(log, 'E');
            buf_append_str(log, p.err);
            resp_parser_close(&p);
            return;
        }
    }
    buf_append_char(log, 'M');
    resp_parser_close(&p);
}

/* The writers never crash and frame what they are given. */
static void fuzz_writers(const uint8_t *data, size_t size)
{
    if (size < 8) return;
    double d;
    memcpy(&d, data, sizeof(d));
    buf out;
    buf_init(&out);
    resp_write_double(&out, 3, d);
    CHECK(out.len >= 4 && out.data[0] == ',');
    CHECK(memcmp(out.data + out.len - 2, "\r\n", 2) == 0);
    CHECK(memchr(out.data, '\r', out.len) == out.data + out.len - 2);
    buf_reset(&out);
    resp_write_array(&out, 1);
    resp_write_double(&out, 2, d);
    resp_parser q;
    resp_parser_init(&q);
    size_t c;
    CHECK(resp_parse(&q, out.data, out.len, &fuzz_unlimited, &c) == 1);
    CHECK(c == out.len && q.argc == 1 && q.argv[0].len > 0);
    resp_parser_close(&q);
    buf_reset(&out);
    char ext[4] = {0};
    memcpy(ext, data + 8, size - 8 < 3 ? size - 8 : 3);
    resp_write_verbatim(&out, 3, ext, data, size < 64 ? size : 64);
    CHECK(out.data[0] == '=');

    /* Simple strings and errors stay one line whatever text they get. */
    char *text = malloc(size + 1);
    CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    buf_reset(&out);
    resp_write_simple(&out, text);
    CHECK(out.data[0] == '+');
    CHECK(memchr(out.data, '\n', out.len) == out.data + out.len - 1);
    CHECK(memchr(out.data, '\r', out.len) == out.data + out.len - 2);
    buf_reset(&out);
    resp_write_error(&out, text);
    CHECK(out.data[0] == '-');
    CHECK(memchr(out.data, '\n', out.len) == out.data + out.len - 1);
    buf_reset(&out);
    resp_write_errorf(&out, "ERR %s", text);
    CHECK(memchr(out.data, '\n', out.len) == out.data + out.len - 1);
    free(text);
    buf_close(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    uint8_t cfg = data[0];
    resp_limits lim = {
        .max_args = cfg & 1 ? 4 : 1024,
        .max_bulk_bytes = cfg & 2 ? 16 : 1u << 20,
        .max_inline_bytes = cfg & 4 ? 24 : 64 * 1024,
    };
    bool drop_on_more = cfg & 8;
    bool three = cfg & 16;
    const char *in = (const char *)data + 3;
    size_t n = size - 3;
    size_t cuts[2];
    cuts[0] = n * data[1] / 255;
    cuts[1] = cuts[0] + (n - cuts[0]) * data[2] / 255;

    buf one, pieces;
    buf_init(&one);
    buf_init(&pieces);
    fuzz_run(in, n, cuts, 0, &lim, false, true, &one);
    fuzz_run(in, n, cuts, three ? 2 : 1, &lim, drop_on_more, false, &pieces);
    if (one.len != pieces.len || memcmp(one.data, pieces.data, one.len) != 0) {
        fprintf(stderr, "one-shot and split (%zu, %zu, three=%d) parses differ\n", cuts[0], cuts[1],
                three);
        abort();
    }
    buf_close(&one);
    buf_close(&pieces);

    fuzz_writers(data, size);
    return 0;
}
