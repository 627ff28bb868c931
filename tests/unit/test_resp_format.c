/* Tests for api/resp_format: the pure Redis rules the RESP front end
 * reproduces (texts checked against redis-server 7.0's answers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "api/resp_format.h"

static resp_arg A(const char *s)
{
    return (resp_arg){s, strlen(s)};
}

static void check_unknown(const resp_arg *argv, size_t argc, const char *want)
{
    buf b;
    buf_init(&b);
    resp_format_unknown_command(&b, argv, argc);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    buf_close(&b);
}

static void test_unknown_command(void **state)
{
    (void)state;
    resp_arg a1[] = {A("foo"), A("a"), A("b")};
    check_unknown(a1, 3, "ERR unknown command 'foo', with args beginning with: 'a' 'b' ");
    resp_arg a2[] = {A("foo")};
    check_unknown(a2, 1, "ERR unknown command 'foo', with args beginning with: ");

    /* the argument text stops once it reaches 128 bytes, the last
     * argument cut to fit */
    char as[101], bs[101];
    memset(as, 'a', 100);
    memset(bs, 'b', 100);
    as[100] = bs[100] = '\0';
    resp_arg a3[] = {A("foo"), A(as), A(bs), A("c")};
    char want[512];
    snprintf(want, sizeof(want),
             "ERR unknown command 'foo', with args beginning with: '%s' '%.25s' ", as, bs);
    check_unknown(a3, 4, want);

    /* 26 two-byte arguments: 5 bytes each, the 26th crosses 128 */
    resp_arg a4[40];
    a4[0] = A("foo");
    for (int i = 1; i < 40; i++) a4[i] = A("ab");
    buf w;
    buf_init(&w);
    buf_append_str(&w, "ERR unknown command 'foo', with args beginning with: ");
    for (int i = 0; i < 26; i++) buf_append_str(&w, "'ab' ");
    check_unknown(a4, 40, w.data);
    buf_close(&w);

    /* a long name is cut at 128 bytes */
    char name[300];
    memset(name, 'n', 299);
    name[299] = '\0';
    resp_arg a5[] = {A(name)};
    snprintf(want, sizeof(want), "ERR unknown command '%.128s', with args beginning with: ", name);
    check_unknown(a5, 1, want);
}

static void test_human_bytes(void **state)
{
    (void)state;
    char out[32];
    resp_format_human_bytes(out, sizeof(out), 0);
    assert_string_equal(out, "0B");
    resp_format_human_bytes(out, sizeof(out), 1023);
    assert_string_equal(out, "1023B");
    resp_format_human_bytes(out, sizeof(out), 1024);
    assert_string_equal(out, "1.00K");
    resp_format_human_bytes(out, sizeof(out), 2329816);
    assert_string_equal(out, "2.22M");
    resp_format_human_bytes(out, sizeof(out), 14008320);
    assert_string_equal(out, "13.36M");
    resp_format_human_bytes(out, sizeof(out), 25276026880ull);
    assert_string_equal(out, "23.54G");
    resp_format_human_bytes(out, sizeof(out), 1ull << 50);
    assert_string_equal(out, "1.00P");
    char tiny[3];
    assert_int_equal(resp_format_human_bytes(tiny, sizeof(tiny), 1000), 2);
    assert_string_equal(tiny, "10");
}

static void check_range(int64_t len, int64_t s, int64_t e, size_t from, size_t count)
{
    size_t f, c;
    resp_format_range(len, s, e, &f, &c);
    assert_int_equal(c, count);
    if (count) assert_int_equal(f, from);
}

static void test_range(void **state)
{
    (void)state;
    /* "Hello", as redis-server 7.0 answers GETRANGE */
    check_range(5, 0, -1, 0, 5);
    check_range(5, -3, -1, 2, 3);
    check_range(5, 10, 20, 0, 0);
    check_range(5, 3, 1, 0, 0);
    check_range(5, -100, -50, 0, 1);
    check_range(5, -100, 100, 0, 5);
    check_range(5, 0, 0, 0, 1);
    /* the same clipping over bits (BITCOUNT, BITPOS) */
    check_range(10, -3, -1, 7, 3);
    check_range(10, 5, 2, 0, 0);
    check_range(0, 0, -1, 0, 0); /* an empty string */
    check_range(10, -100, 100, 0, 10);
    assert_true(resp_format_range_reversed(-1, -4));
    assert_false(resp_format_range_reversed(-4, -1));
    assert_false(resp_format_range_reversed(1, -4));
    check_range(5, -1, -5, 0, 0);
    check_range(5, 0, -100, 0, 1);
    check_range(0, 0, -1, 0, 0);
    check_range(5, INT64_MIN, INT64_MAX, 0, 5);
    check_range(5, INT64_MAX, INT64_MAX, 0, 0);
}

static void test_expire_ms(void **state)
{
    (void)state;
    int64_t out, now = 1700000000000;
    assert_true(resp_format_expire_ms(10, true, true, now, &out));
    assert_int_equal(out, now + 10000);
    assert_true(resp_format_expire_ms(10, false, true, now, &out));
    assert_int_equal(out, now + 10);
    assert_true(resp_format_expire_ms(10, true, false, now, &out));
    assert_int_equal(out, 10000);
    assert_true(resp_format_expire_ms(10, false, false, now, &out));
    assert_int_equal(out, 10);
    /* overflow of the unit conversion */
    assert_false(resp_format_expire_ms(INT64_MAX, true, true, now, &out));
    assert_false(resp_format_expire_ms(INT64_MIN, true, true, now, &out));
    assert_false(resp_format_expire_ms(INT64_MAX / 1000 + 1, true, false, now, &out));
    assert_true(resp_format_expire_ms(INT64_MAX / 1000, true, false, now, &out));
    /* overflow of the addition */
    assert_false(resp_format_expire_ms(INT64_MAX, false, true, now, &out));
    assert_true(resp_format_expire_ms(INT64_MAX - now, false, true, now, &out));
    assert_int_equal(out, INT64_MAX);
    assert_true(resp_format_expire_ms(INT64_MAX, false, false, now, &out));
    assert_true(resp_format_expire_ms(9223372036854, true, true, now, &out));
    /* negative times are allowed (they mean "already expired") */
    assert_true(resp_format_expire_ms(-1, true, true, now, &out));
    assert_int_equal(out, now - 1000);
    assert_false(resp_format_expire_ms(INT64_MIN, false, true, now, &out));
}

static void test_client_name(void **state)
{
    (void)state;
    assert_true(resp_format_client_name_ok("", 0));
    assert_true(resp_format_client_name_ok("worker-1", 8));
    assert_true(resp_format_client_name_ok("a!~", 3));
    assert_false(resp_format_client_name_ok("a b", 3));
    assert_false(resp_format_client_name_ok("a\nb", 3));
    assert_false(resp_format_client_name_ok("a\x7f", 2));
    assert_false(resp_format_client_name_ok("\xc3\xa9", 2));
}

static void test_arg_is(void **state)
{
    (void)state;
    resp_arg a = A("NX");
    assert_true(resp_format_arg_is(&a, "nx"));
    a = A("nX");
    assert_true(resp_format_arg_is(&a, "nx"));
    a = A("nxx");
    assert_false(resp_format_arg_is(&a, "nx"));
    a = A("n");
    assert_false(resp_format_arg_is(&a, "nx"));
    resp_arg z = {"n\0", 2};
    assert_false(resp_format_arg_is(&z, "nx"));
    a = A("KEEPTTL");
    assert_true(resp_format_arg_is(&a, "keepttl"));
}

static void check_doc(const char *synopsis, int proto, int want_rv, const char *want)
{
    buf b;
    buf_init(&b);
    int rv = resp_format_doc_args(&b, proto, synopsis);
    assert_int_equal(rv, want_rv);
    if (!want) {
        assert_int_equal(b.len, 0);
    } else {
        if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0)
            fprintf(stderr, "got:  %.*s\nwant: %s\n", (int)b.len, b.data ? b.data : "", want);
        assert_int_equal(b.len, strlen(want));
        assert_memory_equal(b.data, want, b.len);
    }
    buf_close(&b);
}

static void test_doc_args(void **state)
{
    (void)state;
    check_doc("", 2, 0, "*0\r\n");
    check_doc("key", 2, 1,
              "*1\r\n*6\r\n$4\r\nname\r\n$3\r\nkey\r\n$4\r\ntype\r\n$3\r\nkey\r\n"
              "$14\r\nkey_spec_index\r\n:0\r\n");
    /* an optional choice of two tokens, in RESP3 */
    check_doc("[NX|XX]", 3, 1,
              "*1\r\n%4\r\n$4\r\nname\r\n$2\r\nnx\r\n$4\r\ntype\r\n$5\r\noneof\r\n"
              "$5\r\nflags\r\n~1\r\n+optional\r\n$9\r\narguments\r\n*2\r\n"
              "%3\r\n$4\r\nname\r\n$2\r\nnx\r\n$4\r\ntype\r\n$10\r\npure-token\r\n"
              "$5\r\ntoken\r\n$2\r\nNX\r\n"
              "%3\r\n$4\r\nname\r\n$2\r\nxx\r\n$4\r\ntype\r\n$10\r\npure-token\r\n"
              "$5\r\ntoken\r\n$2\r\nXX\r\n");
    /* a token with its argument, typed by name; a repeated argument */
    check_doc("EX seconds pattern ...", 3, 2,
              "*2\r\n%3\r\n$4\r\nname\r\n$7\r\nseconds\r\n$4\r\ntype\r\n$7\r\ninteger\r\n"
              "$5\r\ntoken\r\n$2\r\nEX\r\n"
              "%3\r\n$4\r\nname\r\n$7\r\npattern\r\n$4\r\ntype\r\n$7\r\npattern\r\n"
              "$5\r\nflags\r\n~1\r\n+multiple\r\n");
    /* a repeated block, and an explicit type */
    check_doc("(k v)... n:double", 2, 2,
              "*2\r\n*8\r\n$4\r\nname\r\n$1\r\nk\r\n$4\r\ntype\r\n$5\r\nblock\r\n"
              "$5\r\nflags\r\n*1\r\n+multiple\r\n$9\r\narguments\r\n*2\r\n"
              "*4\r\n$4\r\nname\r\n$1\r\nk\r\n$4\r\ntype\r\n$6\r\nstring\r\n"
              "*4\r\n$4\r\nname\r\n$1\r\nv\r\n$4\r\ntype\r\n$6\r\nstring\r\n"
              "*4\r\n$4\r\nname\r\n$1\r\nn\r\n$4\r\ntype\r\n$6\r\ndouble\r\n");
    /* malformed synopses write nothing */
    const char *bad[] = {"[a", "a]", "a|b", "(a", "[]", "[a||b]", "n:nosuchtype", "a $", NULL};
    for (int i = 0; bad[i]; i++) check_doc(bad[i], 2, -1, NULL);
    /* every command's synopsis is exercised by the integration tests
     * (COMMAND DOCS); a long one parses within the node budget */
    buf b;
    buf_init(&b);
    assert_int_equal(resp_format_doc_args(&b, 2,
                                          "key value [NX|XX] [GET] [EX seconds|PX milliseconds|"
                                          "EXAT unix-time-seconds|PXAT unix-time-milliseconds|"
                                          "KEEPTTL]"),
                     5);
    buf_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unknown_command), cmocka_unit_test(test_human_bytes),
        cmocka_unit_test(test_range),           cmocka_unit_test(test_expire_ms),
        cmocka_unit_test(test_client_name),     cmocka_unit_test(test_arg_is),
        cmocka_unit_test(test_doc_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
