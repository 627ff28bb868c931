/* Tests for net/resp: the request parser (multibulk, inline, errors,
 * limits, resumption from any split) and every reply writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/resp.h"

static const resp_limits lim_default = {
    .max_args = 1024 * 1024,
    .max_bulk_bytes = 512u * 1024 * 1024,
    .max_inline_bytes = 64 * 1024,
};

/* ---- helpers ---- */

/* Appends a readable form of one argument: printable ASCII as is, the
 * rest (and the separators) as \xHH. */
static void log_arg(buf *log, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c >= 0x7f || c == '\\' || c == '|' || c == '(' || c == ')')
            buf_printf(log, "\\x%02x", c);
        else
            buf_append_char(log, (char)c);
    }
}

/* Checks what every caller relies on after one resp_parse call. */
static void check_invariants(const resp_parser *p, int rc, const char *data, size_t len,
                             size_t consumed)
{
    assert_true(rc >= -1 && rc <= 1);
    assert_true(consumed <= len);
    if (rc == -1) {
        assert_int_equal(consumed, 0);
        assert_memory_equal(p->err, "Protocol error: ", 16);
        return;
    }
    if (rc == 0) return;
    assert_true(consumed > 0);
    assert_true(p->argc > 0);
    for (size_t i = 0; i < p->argc; i++) {
        const char *lo = p->inline_cmd ? p->inline_scratch.data : data;
        size_t n = p->inline_cmd ? p->inline_scratch.len : consumed;
        assert_true(p->argv[i].ptr >= lo);
        assert_true(p->argv[i].len <= n);
        assert_true((size_t)(p->argv[i].ptr - lo) <= n - p->argv[i].len);
    }
}

/* Parses in[0..n) delivered in stages ending at cuts[0], cuts[1], ..., n.
 * Like a connection would, it passes the unread bytes from the same start
 * until a command completes, each time from a freshly allocated copy so
 * that stale pointers into an old buffer are caught by ASan. With
 * drop_on_more it also drops what *consumed reports on a 0 return (skipped
 * empty commands), else only after a command. Returns a log such as
 * "m(SET|k|v)i(PING)more" or "m(GET|k)err(Protocol error: ...)"
 * (m = multibulk, i = inline). */
static char *parse_log_ex(const char *in, size_t n, const size_t *cuts, size_t ncuts,
                          const resp_limits *lim, bool drop_on_more)
{
    resp_parser p;
    resp_parser_init(&p);
    buf log;
    buf_init(&log);
    buf_append(&log, "", 0);
    size_t off = 0;
    for (size_t stage = 0; stage <= ncuts; stage++) {
        size_t end = stage < ncuts ? cuts[stage] : n;
        if (end < off) continue;
        for (;;) {
            size_t len = end - off;
            char *copy = malloc(len ? len : 1);
            assert_non_null(copy);
            if (len) memcpy(copy, in + off, len);
            size_t consumed = 12345;
            int rc = resp_parse(&p, copy, len, lim, &consumed);
            check_invariants(&p, rc, copy, len, consumed);
            if (rc == 1) {
                buf_append_str(&log, p.inline_cmd ? "i(" : "m(");
                for (size_t i = 0; i < p.argc; i++) {
                    if (i) buf_append_char(&log, '|');
                    log_arg(&log, p.argv[i].ptr, p.argv[i].len);
                }
                buf_append_char(&log, ')');
                off += consumed;
                free(copy);
                continue;
            }
            free(copy);
            if (rc == 0) {
                if (drop_on_more) off += consumed;
                break;
            }
            buf_printf(&log, "err(%s)", p.err);
            /* A protocol error is final: asking again repeats it. */
            char dummy = '*';
            assert_int_equal(resp_parse(&p, &dummy, 1, lim, &consumed), -1);
            resp_parser_close(&p);
            return log.data;
        }
    }
    buf_append_str(&log, "more");
    resp_parser_close(&p);
    return log.data;
}

static char *parse_log(const char *in, size_t n, const size_t *cuts, size_t ncuts,
                       const resp_limits *lim)
{
    return parse_log_ex(in, n, cuts, ncuts, lim, false);
}

static void expect_log(const char *in, size_t n, const resp_limits *lim, const char *expected)
{
    char *got = parse_log(in, n, NULL, 0, lim);
    assert_string_equal(got, expected);
    free(got);
}

/* The same result for a one-shot parse, every single split point, every
 * pair of split points (short inputs) and byte-by-byte delivery. */
static void expect_log_all_splits(const char *in, size_t n, const resp_limits *lim,
                                  const char *expected)
{
    expect_log(in, n, lim, expected);
    for (size_t k = 0; k <= n; k++) {
        for (int drop = 0; drop < 2; drop++) {
            char *got = parse_log_ex(in, n, &k, 1, lim, drop);
            if (strcmp(got, expected) != 0)
                fail_msg("split at %zu (drop %d): %s != %s", k, drop, got, expected);
            free(got);
        }
    }
    if (n <= 160) {
        for (size_t i = 0; i <= n; i++) {
            for (size_t j = i; j <= n; j++) {
                size_t cuts[2] = {i, j};
                char *got = parse_log_ex(in, n, cuts, 2, lim, (i + j) % 2);
                if (strcmp(got, expected) != 0)
                    fail_msg("split at %zu,%zu: %s != %s", i, j, got, expected);
                free(got);
            }
        }
    }
    size_t *cuts = malloc((n + 1) * sizeof(*cuts));
    assert_non_null(cuts);
    for (size_t k = 0; k <= n; k++) cuts[k] = k;
    for (int drop = 0; drop < 2; drop++) {
        char *got = parse_log_ex(in, n, cuts, n + 1, lim, drop);
        assert_string_equal(got, expected);
        free(got);
    }
    free(cuts);
}

#define S(lit) lit, sizeof(lit) - 1

/* ---- multibulk ---- */

static void test_multibulk_basic(void **state)
{
    static const char in[] = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n";
    resp_parser p;
    resp_parser_init(&p);
    size_t consumed;
    assert_int_equal(resp_parse(&p, in, sizeof(in) - 1, &lim_default, &consumed), 1);
    assert_int_equal(consumed, sizeof(in) - 1);
    assert_int_equal(p.argc, 3);
    assert_false(p.inline_cmd);
    /* Multibulk arguments point into the caller's data, no copy. */
    assert_ptr_equal(p.argv[0].ptr, in + 8);
    assert_int_equal(p.argv[0].len, 3);
    assert_memory_equal(p.argv[1].ptr, "key", 3);
    assert_memory_equal(p.argv[2].ptr, "value", 5);
    resp_parser_close(&p);

    expect_log_all_splits(S(in), &lim_default, "m(SET|key|value)more");
    expect_log_all_splits(S("*1\r\n$4\r\nPING\r\n"), &lim_default, "m(PING)more");
}

static void test_multibulk_binary_safe(void **state)
{
    /* NUL, CR, LF and a fake "*1\r\n" inside payloads are just bytes. */
    static const char in[] = "*3\r\n$3\r\nSET\r\n$3\r\nk\0y\r\n$11\r\na\r\n*1\r\n\0\r\n\xff\r\n";
    expect_log_all_splits(S(in), &lim_default,
                          "m(SET|k\\x00y|a\\x0d\\x0a*1\\x0d\\x0a\\x00\\x0d\\x0a\\xff)more");
    /* Empty bulk strings. */
    expect_log_all_splits(S("*2\r\n$0\r\n\r\n$0\r\n\r\n"), &lim_default, "m(|)more");
}

static void test_multibulk_partial(void **state)
{
    expect_log(S("*2\r\n$3\r\nGET\r\n$1\r\nk"), &lim_default, "more");
    expect_log(S("*2\r\n$3\r\nGET\r\n$1\r\nk\r"), &lim_default, "more");
    expect_log(S("*2\r"), &lim_default, "more");
    expect_log(S("*2\r\n$3\r"), &lim_default, "more");
    expect_log(S("*"), &lim_default, "more");
}

static void test_pipelined(void **state)
{
    static const char in[] = "*2\r\n$3\r\nGET\r\n$1\r\na\r\n"
                             "PING\r\n"
                             "*0\r\n"
                             "*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$2\r\nxy\r\n"
                             "\r\n"
                             "ECHO \"hi there\"\n"
                             "*1\r\n$4\r\nQUIT\r\n"
                             "*2\r\n$3\r\nGET"; /* incomplete tail */
    expect_log_all_splits(S(in), &lim_default,
                          "m(GET|a)i(PING)m(SET|b|xy)i(ECHO|hi there)m(QUIT)more");

    /* consumed covers exactly one command, so the caller can drop it. */
    resp_parser p;
    resp_parser_init(&p);
    size_t consumed;
    assert_int_equal(resp_parse(&p, in, sizeof(in) - 1, &lim_default, &consumed), 1);
    assert_int_equal(consumed, 20);
    assert_int_equal(resp_parse(&p, in + 20, sizeof(in) - 21, &lim_default, &consumed), 1);
    assert_int_equal(consumed, 6);
    assert_true(p.inline_cmd);
    resp_parser_close(&p);
}

static void test_empty_commands_skipped(void **state)
{
    expect_log_all_splits(S("*0\r\n*-1\r\n*-7\r\n\r\n\n   \t \r\n*1\r\n$4\r\nPING\r\n"),
                          &lim_default, "m(PING)more");
    expect_log_all_splits(S("*0\r\n\n"), &lim_default, "more");

    /* Only empties: 0, and they may be dropped. A caller that ignores
     * *consumed on 0 still gets the right result: they are skipped again
     * and dropped with the command. */
    resp_parser p;
    resp_parser_init(&p);
    size_t consumed = 99;
    static const char in[] = "*0\r\n\r\n*1\r\n$4\r\nPING\r\n";
    assert_int_equal(resp_parse(&p, in, 6, &lim_default, &consumed), 0);
    assert_int_equal(consumed, 6);
    assert_int_equal(resp_parse(&p, in, 8, &lim_default, &consumed), 0);
    /* A command is under way after the empties: nothing may be dropped. */
    assert_int_equal(consumed, 0);
    assert_int_equal(resp_parse(&p, in, sizeof(in) - 1, &lim_default, &consumed), 1);
    assert_int_equal(consumed, sizeof(in) - 1);
    assert_int_equal(p.argc, 1);
    assert_memory_equal(p.argv[0].ptr, "PING", 4);
    resp_parser_close(&p);

    /* The caller that drops them. */
    resp_parser_init(&p);
    assert_int_equal(resp_parse(&p, in, 6, &lim_default, &consumed), 0);
    assert_int_equal(consumed, 6);
    assert_int_equal(resp_parse(&p, in + 6, 2, &lim_default, &consumed), 0);
    assert_int_equal(consumed, 0);
    assert_int_equal(resp_parse(&p, in + 6, sizeof(in) - 7, &lim_default, &consumed), 1);
    assert_int_equal(consumed, sizeof(in) - 7);
    resp_parser_close(&p);
}

/* ---- inline ---- */

static void test_inline_basic(void **state)
{
    expect_log_all_splits(S("PING\r\n"), &lim_default, "i(PING)more");
    expect_log_all_splits(S("PING\n"), &lim_default, "i(PING)more");
    expect_log_all_splits(S("  SET   k\tv  \r\n"), &lim_default, "i(SET|k|v)more");
    /* Only the CR right before LF is part of the line end; others split. */
    expect_log_all_splits(S("a\rb\r\r\n"), &lim_default, "i(a|b)more");
    expect_log(S("GET k\r"), &lim_default, "more");
    expect_log(S("GET k"), &lim_default, "more");
    /* A line that starts with a blank is inline even if '*' follows. */
    expect_log(S(" *1\r\n"), &lim_default, "i(*1)more");
}

static void test_inline_quoting(void **state)
{
    static const struct {
        const char *in;
        size_t len;
        const char *log;
    } cases[] = {
        {S("SET \"hello world\" x\n"), "i(SET|hello world|x)more"},
        {S("E \"\\n\\r\\t\\b\\a\\\\\\\"\"\n"), "i(E|\\x0a\\x0d\\x09\\x08\\x07\\x5c\")more"},
        {S("E \"\\x41\\x6a\\x4B\\x00\\xff\"\n"), "i(E|AjK\\x00\\xff)more"},
        /* \x without two hex digits is an ordinary escaped 'x'. */
        {S("E \"\\xZZ\" \"\\x4\" \"\\x\"\n"), "i(E|xZZ|x4|x)more"},
        {S("E \"\\q\\'\"\n"), "i(E|q')more"},
        {S("E 'it\\'s' 'a\\nb' 'a\"b' \"a'b\"\n"), "i(E|it's|a\\x5cnb|a\"b|a'b)more"},
        {S("E \"\" ''\n"), "i(E||)more"},
        /* A quote may open in the middle of a word. */
        {S("E a\"b c\" x'y z'\n"), "i(E|ab c|xy z)more"},
        /* After a closing quote: any blank, including \v and \f. */
        {S("E \"a\"\tb \"c\"\v\"d\"\f'e'\r\n"), "i(E|a|b|c|d|e)more"},
        {S("E \"a\"\r\n"), "i(E|a)more"},
        {S("E \"a\" \r\r\n"), "i(E|a)more"},
        /* Blanks inside quotes are kept, a raw CR too. */
        {S("E \" a\rb \"\n"), "i(E| a\\x0db )more"},
        /* \v and \f separate words only before a word, not inside. */
        {S("\v\fa\vb c\n"), "i(a\\x0bb|c)more"},
        /* NUL is an ordinary byte (Redis would stop at it). */
        {S("x\0y \"p\0q\" '\0'\n"), "i(x\\x00y|p\\x00q|\\x00)more"},
        {S("   \t \r\n"), "more"},
        {S("\"abc\"def\n"), "err(Protocol error: unbalanced quotes in request)"},
        {S("'abc'd\n"), "err(Protocol error: unbalanced quotes in request)"},
        {S("'a'\"b\"\n"), "err(Protocol error: unbalanced quotes in request)"},
        {S("\"abc\n"), "err(Protocol error: unbalanced quotes in request)"},
        {S("'abc\r\n"), "err(Protocol error: unbalanced quotes in request)"},
        {S("\"abc\\\"\n"), "err(Protocol error: unbalanced quotes in request)"},
        {S("\"abc\\\n"), "err(Protocol error: unbalanced quotes in request)"},
        {S("'abc\\'\n"), "err(Protocol error: unbalanced quotes in request)"},
        {S("\"\n"), "err(Protocol error: unbalanced quotes in request)"},
        /* The first command is answered before the bad one is seen. */
        {S("PING\n\"x\n"), "i(PING)err(Protocol error: unbalanced quotes in request)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = parse_log(cases[i].in, cases[i].len, NULL, 0, &lim_default);
        if (strcmp(got, cases[i].log) != 0) fail_msg("case %zu: %s != %s", i, got, cases[i].log);
        free(got);
        expect_log_all_splits(cases[i].in, cases[i].len, &lim_default, cases[i].log);
    }
}

static void test_inline_scratch_pointers(void **state)
{
    static const char in[] = "SET \"a b\" c\r\n";
    resp_parser p;
    resp_parser_init(&p);
    size_t consumed;
    assert_int_equal(resp_parse(&p, in, sizeof(in) - 1, &lim_default, &consumed), 1);
    assert_true(p.inline_cmd);
    assert_int_equal(p.argc, 3);
    for (size_t i = 0; i < p.argc; i++) {
        assert_true(p.argv[i].ptr >= p.inline_scratch.data);
        assert_true(p.argv[i].ptr + p.argv[i].len <= p.inline_scratch.data + p.inline_scratch.len);
    }
    assert_memory_equal(p.argv[1].ptr, "a b", 3);
    resp_parser_close(&p);
}

/* ---- errors and limits ---- */

static char *repeat(const char *head, char c, size_t n, const char *tail, size_t *len)
{
    size_t hl = strlen(head), tl = strlen(tail);
    *len = hl + n + tl;
    char *s = malloc(*len + 1);
    assert_non_null(s);
    memcpy(s, head, hl);
    memset(s + hl, c, n);
    memcpy(s + hl + n, tail, tl + 1);
    return s;
}

static void test_protocol_errors(void **state)
{
    static const resp_limits small = {.max_args = 4, .max_bulk_bytes = 16, .max_inline_bytes = 16};
    static const struct {
        const char *in;
        size_t len;
        const char *log;
    } cases[] = {
        {S("*abc\r\n"), "err(Protocol error: invalid multibulk length)"},
        {S("*+1\r\n"), "err(Protocol error: invalid multibulk length)"},
        {S("*01\r\n"), "err(Protocol error: invalid multibulk length)"},
        {S("*1 \r\n"), "err(Protocol error: invalid multibulk length)"},
        {S("*\r\n"), "err(Protocol error: invalid multibulk length)"},
        {S("*-\r\n"), "err(Protocol error: invalid multibulk length)"},
        {S("*-0\r\n"), "err(Protocol error: invalid multibulk length)"},
        {S("*5\r\n"), "err(Protocol error: invalid multibulk length)"},
        {S("*99999999999999999999\r\n"), "err(Protocol error: invalid multibulk length)"},
        {S("*100000000000000000000\r\n"), "err(Protocol error: invalid multibulk length)"},
        /* CR must be followed by LF (Redis skips the byte unchecked). */
        {S("*1\rX$1\r\na\r\n"), "err(Protocol error: invalid multibulk length)"},
        {S("*1\r\nX\r\n"), "err(Protocol error: expected '$', got 'X')"},
        {S("*1\r\n:1\r\n"), "err(Protocol error: expected '$', got ':')"},
        {S("*1\r\n\r\n"), "err(Protocol error: expected '$', got ' ')"},
        {S("*1\r\n\n\r\n"), "err(Protocol error: expected '$', got ' ')"},
        /* %c of NUL cuts the message short, just like Redis' reply. */
        {S("*1\r\n\0\r\n"), "err(Protocol error: expected '$', got ')"},
        {S("*2\r\n$1\r\na\r\nGET\r\n"), "err(Protocol error: expected '$', got 'G')"},
        {S("*1\r\n$-1\r\n"), "err(Protocol error: invalid bulk length)"},
        {S("*1\r\n$17\r\n"), "err(Protocol error: invalid bulk length)"},
        {S("*1\r\n$abc\r\n"), "err(Protocol error: invalid bulk length)"},
        {S("*1\r\n$\r\n"), "err(Protocol error: invalid bulk length)"},
        {S("*1\r\n$+1\r\n"), "err(Protocol error: invalid bulk length)"},
        {S("*1\r\n$01\r\n"), "err(Protocol error: invalid bulk length)"},
        {S("*1\r\n$1\rXa\r\n"), "err(Protocol error: invalid bulk length)"},
        /* The payload must end with CRLF exactly where the length says. */
        {S("*1\r\n$3\r\nabcd\r\n"), "err(Protocol error: invalid bulk length)"},
        {S("*1\r\n$3\r\nab\r\n\r\n"), "err(Protocol error: invalid bulk length)"},
        {S("*1\r\n$3\r\nabc\n\r"), "err(Protocol error: invalid bulk length)"},
        {S("aaaaaaaaaaaaaaaaa"), "err(Protocol error: too big inline request)"},
        {S("aaaaaaaaaaaaaaaaa\n"), "err(Protocol error: too big inline request)"},
        {S("aaaaaaaaaaaaaaaa\r\n"), "err(Protocol error: too big inline request)"},
        /* Boundaries that are still fine. */
        {S("aaaaaaaaaaaaaaaa"), "more"},
        {S("aaaaaaaaaaaaaaaa\n"), "i(aaaaaaaaaaaaaaaa)more"},
        {S("aaaaaaaaaaaaaaa\r\n"), "i(aaaaaaaaaaaaaaa)more"},
        {S("*4\r\n$0\r\n\r\n$0\r\n\r\n$0\r\n\r\n$16\r\n0123456789abcdef\r\n"),
         "m(|||0123456789abcdef)more"},
        /* Commands before the error are delivered. */
        {S("*1\r\n$1\r\na\r\n*x\r\n"), "m(a)err(Protocol error: invalid multibulk length)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = parse_log(cases[i].in, cases[i].len, NULL, 0, &small);
        if (strcmp(got, cases[i].log) != 0) fail_msg("case %zu: %s != %s", i, got, cases[i].log);
        free(got);
        expect_log_all_splits(cases[i].in, cases[i].len, &small, cases[i].log);
    }

    /* With the default limits a count over INT_MAX is still refused. */
    static const resp_limits huge = {SIZE_MAX, SIZE_MAX, SIZE_MAX};
    expect_log(S("*2147483648\r\n"), &huge, "err(Protocol error: invalid multibulk length)");
    expect_log(S("*2147483647\r\n"), &huge, "more");
    expect_log(S("*1\r\n$9223372036854775807\r\n"), &huge, "more");
    expect_log(S("*1\r\n$9223372036854775808\r\n"), &huge,
               "err(Protocol error: invalid bulk length)");
    /* NULL limits mean Redis' defaults. */
    expect_log(S("*1\r\n$536870912\r\n"), NULL, "more");
    expect_log(S("*1\r\n$536870913\r\n"), NULL, "err(Protocol error: invalid bulk length)");
}

static void test_count_line_too_big(void **state)
{
    const size_t max = 64 * 1024;
    size_t len;
    char *s;

    /* "*" + 65535 digits = 65536 bytes without CR: still waiting. */
    s = repeat("*", '1', max - 1, "", &len);
    expect_log(s, len, &lim_default, "more");
    free(s);
    s = repeat("*", '1', max, "", &len);
    expect_log(s, len, &lim_default, "err(Protocol error: too big mbulk count string)");
    free(s);
    /* Same when the CR has already arrived: the result cannot depend on
     * how the bytes were split into reads. */
    s = repeat("*", '1', max, "\r\n", &len);
    expect_log(s, len, &lim_default, "err(Protocol error: too big mbulk count string)");
    size_t cut = 1000;
    char *got = parse_log(s, len, &cut, 1, &lim_default);
    assert_string_equal(got, "err(Protocol error: too big mbulk count string)");
    free(got);
    free(s);
    s = repeat("*", '1', max - 1, "\r\n", &len);
    expect_log(s, len, &lim_default, "err(Protocol error: invalid multibulk length)");
    free(s);

    s = repeat("*1\r\n$", '1', max - 1, "", &len);
    expect_log(s, len, &lim_default, "more");
    free(s);
    s = repeat("*1\r\n$", '1', max, "", &len);
    expect_log(s, len, &lim_default, "err(Protocol error: too big bulk count string)");
    free(s);
    s = repeat("*1\r\n$", '1', max, "\r\n", &len);
    expect_log(s, len, &lim_default, "err(Protocol error: too big bulk count string)");
    free(s);
    /* The '$' check comes after the line is found, as in Redis. */
    s = repeat("*1\r\nX", 'x', max, "", &len);
    expect_log(s, len, &lim_default, "err(Protocol error: too big bulk count string)");
    free(s);
    s = repeat("*1\r\nX", 'x', 10, "", &len);
    expect_log(s, len, &lim_default, "more");
    free(s);

    /* Inline: 64 KiB without newline is fine, one more byte is not. */
    s = repeat("", 'a', max, "", &len);
    expect_log(s, len, &lim_default, "more");
    free(s);
    s = repeat("", 'a', max + 1, "", &len);
    expect_log(s, len, &lim_default, "err(Protocol error: too big inline request)");
    free(s);
}

static void test_limits_exact(void **state)
{
    static const resp_limits lim = {.max_args = 3, .max_bulk_bytes = 5, .max_inline_bytes = 8};
    expect_log(S("*3\r\n$5\r\nabcde\r\n$0\r\n\r\n$1\r\nx\r\n"), &lim, "m(abcde||x)more");
    expect_log(S("*4\r\n"), &lim, "err(Protocol error: invalid multibulk length)");
    expect_log(S("*1\r\n$6\r\n"), &lim, "err(Protocol error: invalid bulk length)");
    expect_log(S("a b c dd\n"), &lim, "i(a|b|c|dd)more");
    expect_log(S("a b c ddd\n"), &lim, "err(Protocol error: too big inline request)");
    /* Inline commands are bounded by bytes, not by max_args (as Redis). */
    expect_log(S("1 2 3 4\n"), &lim, "i(1|2|3|4)more");
    /* The limit is per line, not per buffer. */
    expect_log_all_splits(S("a b c\r\nd e f\r\ng h\r\n"), &lim, "i(a|b|c)i(d|e|f)i(g|h)more");
}

static void test_error_sticky(void **state)
{
    resp_parser p;
    resp_parser_init(&p);
    size_t consumed;
    assert_int_equal(resp_parse(&p, S("*x\r\n"), &lim_default, &consumed), -1);
    assert_string_equal(p.err, "Protocol error: invalid multibulk length");
    assert_int_equal(resp_parse(&p, S("PING\r\n"), &lim_default, &consumed), -1);
    assert_string_equal(p.err, "Protocol error: invalid multibulk length");
    /* close + init makes it usable again. */
    resp_parser_close(&p);
    resp_parser_init(&p);
    assert_int_equal(resp_parse(&p, S("PING\r\n"), &lim_default, &consumed), 1);
    resp_parser_close(&p);
}

/* ---- resumption ---- */

static void test_split_everywhere_mixed(void **state)
{
    static const char in[] = "*3\r\n$3\r\nSET\r\n$4\r\nk\r\nx\r\n$0\r\n\r\n"
                             "\n"
                             "set 'a b' \"c\\x00d\"\r\n"
                             "*-1\r\n"
                             "*2\r\n$4\r\nECHO\r\n$11\r\n*1\r\n$1\r\nx\r\n\r\n"
                             "*1\r\n$1\r\nZ\r\n";
    expect_log_all_splits(
        S(in), &lim_default,
        "m(SET|k\\x0d\\x0ax|)i(set|a b|c\\x00d)m(ECHO|*1\\x0d\\x0a$1\\x0d\\x0ax\\x0d"
        "\\x0a)m(Z)more");
}

static void test_large_bulk_not_rescanned(void **state)
{
    const size_t n = 1024 * 1024;
    static const char head[] = "*2\r\n$3\r\nSET\r\n$1048576\r\n";
    size_t hl = sizeof(head) - 1;
    size_t total = hl + n + 2;
    char *in = malloc(total);
    assert_non_null(in);
    memcpy(in, head, hl);
    for (size_t i = 0; i < n; i++) in[hl + i] = (char)(i * 7 + (i >> 9)); /* CRLFs included */
    memcpy(in + hl + n, "\r\n", 2);

    resp_parser p;
    resp_parser_init(&p);
    size_t consumed;
    size_t got = 0;
    int rc = 0;
    while (rc == 0) {
        got = got + 4096 < total ? got + 4096 : total;
        rc = resp_parse(&p, in, got, &lim_default, &consumed);
        if (rc == 0 && got >= hl) {
            /* Once the header is read the parser only waits for the byte
             * count: its scan position stays at the payload start. */
            assert_int_equal(p.pos, hl);
            assert_int_equal(p.bulk_len, (long long)n);
        }
    }
    assert_int_equal(rc, 1);
    assert_int_equal(consumed, total);
    assert_int_equal(p.argc, 2);
    assert_ptr_equal(p.argv[1].ptr, in + hl);
    assert_int_equal(p.argv[1].len, n);
    resp_parser_close(&p);
    free(in);
}

static void test_many_args(void **state)
{
    const size_t n = 1000 * 1000;
    buf in;
    buf_init(&in);
    buf_printf(&in, "*%zu\r\n", n);
    for (size_t i = 0; i < n; i++) buf_append(&in, "$1\r\nx\r\n", 7);
    buf_append(&in, "*1\r\n$4\r\nPING\r\n", 14);

    resp_parser p;
    resp_parser_init(&p);
    size_t consumed;
    /* One shot. */
    assert_int_equal(resp_parse(&p, in.data, in.len, &lim_default, &consumed), 1);
    assert_int_equal(p.argc, n);
    assert_int_equal(consumed, in.len - 14);
    assert_ptr_equal(p.argv[n - 1].ptr, in.data + consumed - 3);
    /* The next command frees the big arrays. */
    assert_int_equal(resp_parse(&p, in.data + consumed, 14, &lim_default, &consumed), 1);
    assert_true(p.arg_cap <= 1024);
    assert_true(p.argv_cap <= 1024);
    resp_parser_close(&p);

    /* In 64 KiB reads: each call resumes where the last one stopped (this
     * would take minutes if each call re-parsed the earlier arguments). */
    resp_parser_init(&p);
    size_t got = 0;
    int rc = 0;
    size_t calls = 0;
    while (rc == 0) {
        got = got + 65536 < in.len ? got + 65536 : in.len;
        rc = resp_parse(&p, in.data, got, &lim_default, &consumed);
        calls++;
        if (rc == 0) assert_true(p.nargs <= n);
    }
    assert_int_equal(rc, 1);
    assert_int_equal(p.argc, n);
    assert_true(calls > 100);
    resp_parser_close(&p);
    buf_close(&in);
}

static void test_shorter_input_restarts(void **state)
{
    /* Not the calling convention, but it must not read out of bounds. */
    resp_parser p;
    resp_parser_init(&p);
    size_t consumed;
    static const char in[] = "*1\r\n$4\r\nPING\r\n";
    assert_int_equal(resp_parse(&p, in, 10, &lim_default, &consumed), 0);
    assert_int_equal(resp_parse(&p, in, 3, &lim_default, &consumed), 0);
    assert_int_equal(resp_parse(&p, in, sizeof(in) - 1, &lim_default, &consumed), 1);
    assert_int_equal(consumed, sizeof(in) - 1);
    assert_int_equal(resp_parse(&p, in, 0, &lim_default, &consumed), 0);
    resp_parser_close(&p);
}

/* ---- writers ---- */

static void expect_bytes(buf *out, const char *want, size_t n)
{
    if (out->len - out->off != n || memcmp(out->data + out->off, want, n) != 0) {
        buf tmp;
        buf_init(&tmp);
        log_arg(&tmp, out->data + out->off, out->len - out->off);
        fail_msg("got %s", tmp.data);
    }
    buf_reset(out);
}

#define EXPECT(out, lit) expect_bytes(out, lit, sizeof(lit) - 1)

static void test_writers_scalar(void **state)
{
    buf out;
    buf_init(&out);
    resp_write_simple(&out, "OK");
    EXPECT(&out, "+OK\r\n");
    resp_write_simple(&out, "");
    EXPECT(&out, "+\r\n");
    resp_write_simple(&out, "a\r\nb");
    EXPECT(&out, "+a  b\r\n");
    resp_write_error(&out, "ERR unknown command 'x'");
    EXPECT(&out, "-ERR unknown command 'x'\r\n");
    resp_write_error(&out, "-WRONGTYPE Operation");
    EXPECT(&out, "-WRONGTYPE Operation\r\n");
    resp_write_error(&out, "ERR bad\r\n+OK");
    EXPECT(&out, "-ERR bad  +OK\r\n");
    resp_write_errorf(&out, "ERR unknown command '%s', with args beginning with: %d", "foo", 3);
    EXPECT(&out, "-ERR unknown command 'foo', with args beginning with: 3\r\n");
    resp_write_errorf(&out, "%s", "-NOAUTH Authentication required.");
    EXPECT(&out, "-NOAUTH Authentication required.\r\n");
    resp_write_errorf(&out, "ERR '%s'", "a\nb");
    EXPECT(&out, "-ERR 'a b'\r\n");
    resp_write_integer(&out, 0);
    EXPECT(&out, ":0\r\n");
    resp_write_integer(&out, -42);
    EXPECT(&out, ":-42\r\n");
    resp_write_integer(&out, LLONG_MAX);
    EXPECT(&out, ":9223372036854775807\r\n");
    resp_write_integer(&out, LLONG_MIN);
    EXPECT(&out, ":-9223372036854775808\r\n");
    resp_write_bulk(&out, "a\0\r\nb", 5);
    EXPECT(&out, "$5\r\na\0\r\nb\r\n");
    resp_write_bulk(&out, NULL, 0);
    EXPECT(&out, "$0\r\n\r\n");
    resp_write_bulk_str(&out, "hello");
    EXPECT(&out, "$5\r\nhello\r\n");
    resp_write_bulk_str(&out, "");
    EXPECT(&out, "$0\r\n\r\n");
    resp_write_array(&out, 0);
    EXPECT(&out, "*0\r\n");
    resp_write_array(&out, 12345);
    EXPECT(&out, "*12345\r\n");

    /* Writers append after what is there, unread offset untouched. */
    buf_append(&out, "xx", 2);
    buf_consume(&out, 1);
    resp_write_integer(&out, 7);
    EXPECT(&out, "x:7\r\n");
    buf_close(&out);
}

static void test_writers_resp2(void **state)
{
    buf out;
    buf_init(&out);
    resp_write_null(&out, 2);
    EXPECT(&out, "$-1\r\n");
    resp_write_null_array(&out, 2);
    EXPECT(&out, "*-1\r\n");
    resp_write_map(&out, 2, 3);
    EXPECT(&out, "*6\r\n");
    resp_write_map(&out, 2, 0);
    EXPECT(&out, "*0\r\n");
    resp_write_set(&out, 2, 4);
    EXPECT(&out, "*4\r\n");
    resp_write_bool(&out, 2, true);
    EXPECT(&out, ":1\r\n");
    resp_write_bool(&out, 2, false);
    EXPECT(&out, ":0\r\n");
    resp_write_verbatim(&out, 2, "txt", "hi\r\nyou", 7);
    EXPECT(&out, "$7\r\nhi\r\nyou\r\n");
    resp_write_double(&out, 2, 3.14);
    EXPECT(&out, "$18\r\n3.1400000000000001\r\n");
    resp_write_double(&out, 2, 1.0);
    EXPECT(&out, "$1\r\n1\r\n");
    resp_write_double(&out, 2, 0.1);
    EXPECT(&out, "$19\r\n0.10000000000000001\r\n");
    resp_write_double(&out, 2, -0.0);
    EXPECT(&out, "$2\r\n-0\r\n");
    resp_write_double(&out, 2, 1e300);
    EXPECT(&out, "$23\r\n1.0000000000000001e+300\r\n");
    resp_write_double(&out, 2, -2.5e-10);
    EXPECT(&out, "$23\r\n-2.5000000000000002e-10\r\n");
    resp_write_double(&out, 2, INFINITY);
    EXPECT(&out, "$3\r\ninf\r\n");
    resp_write_double(&out, 2, -INFINITY);
    EXPECT(&out, "$4\r\n-inf\r\n");
    resp_write_double(&out, 2, NAN);
    EXPECT(&out, "$3\r\nnan\r\n");
    resp_write_double(&out, 2, -NAN);
    EXPECT(&out, "$3\r\nnan\r\n");
    buf_close(&out);
}

static void test_writers_resp3(void **state)
{
    buf out;
    buf_init(&out);
    resp_write_null(&out, 3);
    EXPECT(&out, "_\r\n");
    resp_write_null_array(&out, 3);
    EXPECT(&out, "_\r\n");
    resp_write_map(&out, 3, 3);
    EXPECT(&out, "%3\r\n");
    resp_write_set(&out, 3, 4);
    EXPECT(&out, "~4\r\n");
    resp_write_bool(&out, 3, true);
    EXPECT(&out, "#t\r\n");
    resp_write_bool(&out, 3, false);
    EXPECT(&out, "#f\r\n");
    resp_write_verbatim(&out, 3, "txt", "hi\r\nyou", 7);
    EXPECT(&out, "=11\r\ntxt:hi\r\nyou\r\n");
    resp_write_verbatim(&out, 3, "md", "x", 1);
    EXPECT(&out, "=5\r\nmd :x\r\n");
    resp_write_verbatim(&out, 3, "markdown", "", 0);
    EXPECT(&out, "=4\r\nmar:\r\n");
    resp_write_double(&out, 3, 3.14);
    EXPECT(&out, ",3.1400000000000001\r\n");
    resp_write_double(&out, 3, 1.0);
    EXPECT(&out, ",1\r\n");
    resp_write_double(&out, 3, -0.0);
    EXPECT(&out, ",-0\r\n");
    resp_write_double(&out, 3, 1e300);
    EXPECT(&out, ",1.0000000000000001e+300\r\n");
    resp_write_double(&out, 3, INFINITY);
    EXPECT(&out, ",inf\r\n");
    resp_write_double(&out, 3, -INFINITY);
    EXPECT(&out, ",-inf\r\n");
    resp_write_double(&out, 3, NAN);
    EXPECT(&out, ",nan\r\n");
    /* Types that are the same in both protocols. */
    resp_write_array(&out, 2);
    resp_write_bulk_str(&out, "a");
    resp_write_integer(&out, 1);
    EXPECT(&out, "*2\r\n$1\r\na\r\n:1\r\n");
    buf_close(&out);
}

static void test_writer_output_parses_back(void **state)
{
    /* What the writers produce for a request is what the parser reads. */
    buf out;
    buf_init(&out);
    resp_write_array(&out, 3);
    resp_write_bulk_str(&out, "SET");
    resp_write_bulk(&out, "k\0\r\n", 4);
    resp_write_double(&out, 2, 2.5);
    char *got = parse_log(out.data, out.len, NULL, 0, &lim_default);
    assert_string_equal(got, "m(SET|k\\x00\\x0d\\x0a|2.5)more");
    free(got);
    buf_close(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multibulk_basic),
        cmocka_unit_test(test_multibulk_binary_safe),
        cmocka_unit_test(test_multibulk_partial),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_empty_commands_skipped),
        cmocka_unit_test(test_inline_basic),
        cmocka_unit_test(test_inline_quoting),
        cmocka_unit_test(test_inline_scratch_pointers),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_count_line_too_big),
        cmocka_unit_test(test_limits_exact),
        cmocka_unit_test(test_error_sticky),
        cmocka_unit_test(test_split_everywhere_mixed),
        cmocka_unit_test(test_large_bulk_not_rescanned),
        cmocka_unit_test(test_many_args),
        cmocka_unit_test(test_shorter_input_restarts),
        cmocka_unit_test(test_writers_scalar),
        cmocka_unit_test(test_writers_resp2),
        cmocka_unit_test(test_writers_resp3),
        cmocka_unit_test(test_writer_output_parses_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
