/* Unit tests for util/json_scan: validation, lookups, string decoding and
 * base64url. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/buf.h"
#include "util/json_scan.h"

static int parse(const char *text, json_value *v)
{
    return json_scan_parse(text, strlen(text), v);
}

static void test_parse_valid(void **state)
{
    static const char *const docs[] = {
        "null",
        "true",
        "false",
        "0",
        "-0",
        "12",
        "-1.5e+3",
        "0.25",
        "1E9",
        "\"\"",
        "\"a\\\"b\"",
        "[]",
        "{}",
        " [ 1 , \"x\" , null ] ",
        "{\"a\":{\"b\":[1,{\"c\":true}]}}",
        "\t\r\n{}\n",
        "\"\\u00e9\\/\\b\\f\\n\\r\\t\"",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        json_value v;
        assert_int_equal(parse(docs[i], &v), JSON_SCAN_OK);
    }
    json_value v;
    assert_int_equal(parse("  [1, 2] ", &v), JSON_SCAN_OK);
    assert_int_equal(v.type, JSON_ARRAY);
    assert_int_equal(v.len, 6);
    assert_memory_equal(v.text, "[1, 2]", 6);
}

static void test_parse_invalid(void **state)
{
    static const char *const docs[] = {
        "",      " ",        "nul",     "tru",      "01",         "1.",        "-",
        ".5",    "1e",       "+1",      "\"abc",    "\"a\\x\"",   "\"\\u12\"", "\"\\u12G4\"",
        "[1,]",  "[,1]",     "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{a:1}",     "[1 2]",
        "{} {}", "[1]]",     "\"a\"x",  "{'a':1}",  "[",          "{",         "\"\\\"",
        "NaN",   "Infinity", "[1,2",    "0x10",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        json_value v;
        if (parse(docs[i], &v) != JSON_SCAN_ESYNTAX) fail_msg("accepted: %s", docs[i]);
    }
    /* Raw control characters are not allowed inside strings. */
    json_value v;
    assert_int_equal(parse("\"a\nb\"", &v), JSON_SCAN_ESYNTAX);
    /* An embedded NUL byte is a control character too. */
    assert_int_equal(json_scan_parse("\"a\0b\"", 5, &v), JSON_SCAN_ESYNTAX);
    /* The length is respected: the text after it is not read. */
    assert_int_equal(json_scan_parse("[1]xyz", 3, &v), JSON_SCAN_OK);
}

static void test_depth_limit(void **state)
{
    char doc[2 * (JSON_SCAN_MAX_DEPTH + 1) + 1];
    size_t n = 0;
    for (int i = 0; i < JSON_SCAN_MAX_DEPTH; i++) doc[n++] = '[';
    for (int i = 0; i < JSON_SCAN_MAX_DEPTH; i++) doc[n++] = ']';
    json_value v;
    assert_int_equal(json_scan_parse(doc, n, &v), JSON_SCAN_OK);

    n = 0;
    for (int i = 0; i <= JSON_SCAN_MAX_DEPTH; i++) doc[n++] = '[';
    for (int i = 0; i <= JSON_SCAN_MAX_DEPTH; i++) doc[n++] = ']';
    assert_int_equal(json_scan_parse(doc, n, &v), JSON_SCAN_EDEPTH);

    /* A hostile document: a million open brackets must fail fast, not
     * overflow the stack. */
    size_t big = 1000000;
    char *deep = malloc(big);
    assert_non_null(deep);
    memset(deep, '[', big);
    int rc = json_scan_parse(deep, big, &v);
    /* Same through objects: {"a":{"a":... */
    for (size_t i = 0; i + 5 <= big; i += 5) memcpy(deep + i, "{\"a\":", 5);
    int rc2 = json_scan_parse(deep, big, &v);
    free(deep);
    assert_int_equal(rc, JSON_SCAN_EDEPTH);
    assert_int_equal(rc2, JSON_SCAN_EDEPTH);
}

static void test_get_and_find(void **state)
{
    json_value root, v;
    const char *doc = "{\"a\": 1, \"b\": {\"c\": [10, {\"d\": \"x\"}, 30]}, \"k\\u0065y\": 7, "
                      "\"dup\": 1, \"dup\": 2, \"7\": \"seven\"}";
    assert_int_equal(parse(doc, &root), JSON_SCAN_OK);
    assert_int_equal(root.type, JSON_OBJECT);

    assert_int_equal(json_scan_get(&root, "a", &v), JSON_SCAN_OK);
    assert_int_equal(v.type, JSON_NUMBER);
    assert_int_equal(json_scan_get(&root, "missing", &v), JSON_SCAN_ENOTFOUND);
    assert_int_equal(json_scan_get(&root, "", &v), JSON_SCAN_ENOTFOUND);

    /* Member names are compared after unescaping. */
    int64_t i;
    assert_int_equal(json_scan_get(&root, "key", &v), JSON_SCAN_OK);
    assert_int_equal(json_scan_i64(&v, &i), JSON_SCAN_OK);
    assert_int_equal(i, 7);

    /* With duplicates the first wins. */
    assert_int_equal(json_scan_get(&root, "dup", &v), JSON_SCAN_OK);
    assert_int_equal(json_scan_i64(&v, &i), JSON_SCAN_OK);
    assert_int_equal(i, 1);

    assert_int_equal(json_scan_find(&root, "b.c.1.d", &v), JSON_SCAN_OK);
    assert_true(json_scan_string_eq(&v, "x", 1));
    assert_int_equal(json_scan_find(&root, "b.c.2", &v), JSON_SCAN_OK);
    assert_int_equal(json_scan_i64(&v, &i), JSON_SCAN_OK);
    assert_int_equal(i, 30);
    assert_int_equal(json_scan_find(&root, "b.c.3", &v), JSON_SCAN_ENOTFOUND);
    assert_int_equal(json_scan_find(&root, "b.c.x", &v), JSON_SCAN_ETYPE);
    assert_int_equal(json_scan_find(&root, "a.b", &v), JSON_SCAN_ETYPE);
    assert_int_equal(json_scan_find(&root, "b.c.99999999999999999999999", &v), JSON_SCAN_ENOTFOUND);
    /* A numeric segment on an object is a member name. */
    assert_int_equal(json_scan_find(&root, "7", &v), JSON_SCAN_OK);
    assert_true(json_scan_string_eq(&v, "seven", 5));
    assert_int_equal(json_scan_find(&root, "", &v), JSON_SCAN_OK);
    assert_int_equal(v.type, JSON_OBJECT);

    json_value arr;
    assert_int_equal(parse("[1]", &arr), JSON_SCAN_OK);
    assert_int_equal(json_scan_get(&arr, "a", &v), JSON_SCAN_ETYPE);
}

static void test_iter(void **state)
{
    json_value root, name, v;
    json_iter it;
    assert_int_equal(parse("[ ]", &root), JSON_SCAN_OK);
    assert_int_equal(json_scan_iter_init(&it, &root), JSON_SCAN_OK);
    assert_int_equal(json_scan_iter_next(&it, NULL, &v), 0);

    assert_int_equal(parse("[1, [2, 3], {\"a\": 4}, \"s\"]", &root), JSON_SCAN_OK);
    assert_int_equal(json_scan_iter_init(&it, &root), JSON_SCAN_OK);
    json_type want[] = {JSON_NUMBER, JSON_ARRAY, JSON_OBJECT, JSON_STRING};
    for (size_t k = 0; k < 4; k++) {
        assert_int_equal(json_scan_iter_next(&it, NULL, &v), 1);
        assert_int_equal(v.type, want[k]);
    }
    assert_int_equal(json_scan_iter_next(&it, NULL, &v), 0);
    assert_int_equal(json_scan_iter_next(&it, NULL, &v), 0);

    assert_int_equal(parse("{\"x\": 1, \"y\": null}", &root), JSON_SCAN_OK);
    assert_int_equal(json_scan_iter_init(&it, &root), JSON_SCAN_OK);
    assert_int_equal(json_scan_iter_next(&it, &name, &v), 1);
    assert_true(json_scan_string_eq(&name, "x", 1));
    assert_int_equal(json_scan_iter_next(&it, &name, &v), 1);
    assert_true(json_scan_string_eq(&name, "y", 1));
    assert_int_equal(v.type, JSON_NULL);
    assert_int_equal(json_scan_iter_next(&it, &name, &v), 0);

    assert_int_equal(parse("3", &root), JSON_SCAN_OK);
    assert_int_equal(json_scan_iter_init(&it, &root), JSON_SCAN_ETYPE);
}

static void check_string(const char *doc, const char *want, size_t want_len)
{
    json_value v;
    assert_int_equal(parse(doc, &v), JSON_SCAN_OK);
    buf b;
    buf_init(&b);
    buf_append_str(&b, "pre:");
    assert_int_equal(json_scan_string(&v, &b), JSON_SCAN_OK);
    assert_int_equal(b.len, 4 + want_len);
    assert_memory_equal(b.data + 4, want, want_len);
    assert_true(json_scan_string_eq(&v, want, want_len));
    buf_close(&b);
}

static void check_bad_string(const char *doc)
{
    json_value v;
    assert_int_equal(parse(doc, &v), JSON_SCAN_OK);
    buf b;
    buf_init(&b);
    buf_append_str(&b, "keep");
    assert_int_equal(json_scan_string(&v, &b), JSON_SCAN_EENCODING);
    /* On error nothing is appended. */
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "keep");
    buf_close(&b);
}

static void test_string_decode(void **state)
{
    check_string("\"\"", "", 0);
    check_string("\"plain\"", "plain", 5);
    check_string("\"a\\\"b\\\\c\\/d\"", "a\"b\\c/d", 7);
    check_string("\"\\b\\f\\n\\r\\t\"", "\b\f\n\r\t", 5);
    check_string("\"\\u0041\\u00e9\"", "A\xc3\xa9", 3);
    check_string("\"\\u20AC\"", "\xe2\x82\xac", 3);
    check_string("\"\\u07ff\\u0800\\uffff\"", "\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf", 8);
    /* U+1F600 as a UTF-16 surrogate pair. */
    check_string("\"x\\ud83d\\ude00y\"", "x\xf0\x9f\x98\x80y", 6);
    /* U+10FFFF, the last code point. */
    check_string("\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf", 4);
    /* \u0000 is a NUL byte inside the decoded bytes. */
    check_string("\"a\\u0000b\"", "a\0b", 3);
    /* Raw bytes >= 0x80 pass through. */
    check_string("\"\xc3\xa9\xff\"", "\xc3\xa9\xff", 3);

    check_bad_string("\"\\ud83d\"");        /* lone high surrogate */
    check_bad_string("\"\\ud83dx\"");       /* high not followed by escape */
    check_bad_string("\"\\ud83d\\u0041\""); /* high followed by a non-low */
    check_bad_string("\"\\ude00\"");        /* lone low surrogate */
    check_bad_string("\"\\ude00\\ud83d\""); /* pair in the wrong order */

    json_value v;
    buf b;
    buf_init(&b);
    assert_int_equal(parse("12", &v), JSON_SCAN_OK);
    assert_int_equal(json_scan_string(&v, &b), JSON_SCAN_ETYPE);
    assert_false(json_scan_string_eq(&v, "12", 2));
    buf_close(&b);
    assert_int_equal(parse("\"ab\"", &v), JSON_SCAN_OK);
    assert_false(json_scan_string_eq(&v, "a", 1));
    assert_false(json_scan_string_eq(&v, "abc", 3));
    assert_int_equal(parse("\"a\\u0062\"", &v), JSON_SCAN_OK);
    assert_true(json_scan_string_eq(&v, "ab", 2));
    assert_false(json_scan_string_eq(&v, "ac", 2));
}

static void test_numbers(void **state)
{
    json_value v;
    int64_t i;
    uint64_t u;
    bool b;

    assert_int_equal(parse("9223372036854775807", &v), JSON_SCAN_OK);
    assert_int_equal(json_scan_i64(&v, &i), JSON_SCAN_OK);
    assert_true(i == INT64_MAX);
    assert_int_equal(parse("-9223372036854775808", &v), JSON_SCAN_OK);
    assert_int_equal(json_scan_i64(&v, &i), JSON_SCAN_OK);
    assert_true(i == INT64_MIN);
    assert_int_equal(parse("9223372036854775808", &v), JSON_SCAN_OK);
    assert_int_equal(json_scan_i64(&v, &i), JSON_SCAN_ERANGE);
    assert_int_equal(json_scan_u64(&v, &u), JSON_SCAN_OK);
    assert_true(u == (uint64_t)INT64_MAX + 1);
    assert_int_equal(parse("-9223372036854775809", &v), JSON_SCAN_OK);
    assert_int_equal(json_scan_i64(&v, &i), JSON_SCAN_ERANGE);

    assert_int_equal(parse("18446744073709551615", &v), JSON_SCAN_OK);
    assert_int_equal(json_scan_u64(&v, &u), JSON_SCAN_OK);
    assert_true(u == UINT64_MAX);
    assert_int_equal(parse("18446744073709551616", &v), JSON_SCAN_OK);
    assert_int_equal(json_scan_u64(&v, &u), JSON_SCAN_ERANGE);
    assert_int_equal(parse("-1", &v), JSON_SCAN_OK);
    assert_int_equal(json_scan_u64(&v, &u), JSON_SCAN_ERANGE);
    assert_int_equal(json_scan_i64(&v, &i), JSON_SCAN_OK);
    assert_int_equal(i, -1);
    assert_int_equal(parse("-0", &v), JSON_SCAN_OK);
    assert_int_equal(json_scan_u64(&v, &u), JSON_SCAN_OK);
    assert_int_equal(u, 0);

    assert_int_equal(parse("1.5", &v), JSON_SCAN_OK);
    assert_int_equal(json_scan_i64(&v, &i), JSON_SCAN_ETYPE);
    assert_int_equal(parse("1e3", &v), JSON_SCAN_OK);
    assert_int_equal(json_scan_u64(&v, &u), JSON_SCAN_ETYPE);
    assert_int_equal(parse("\"1\"", &v), JSON_SCAN_OK);
    assert_int_equal(json_scan_i64(&v, &i), JSON_SCAN_ETYPE);

    assert_int_equal(parse("true", &v), JSON_SCAN_OK);
    assert_int_equal(json_scan_bool(&v, &b), JSON_SCAN_OK);
    assert_true(b);
    assert_int_equal(parse("false", &v), JSON_SCAN_OK);
    assert_int_equal(json_scan_bool(&v, &b), JSON_SCAN_OK);
    assert_false(b);
    assert_int_equal(parse("null", &v), JSON_SCAN_OK);
    assert_int_equal(json_scan_bool(&v, &b), JSON_SCAN_ETYPE);
}

static void check_b64(const char *enc, const void *want, size_t want_len)
{
    buf b;
    buf_init(&b);
    assert_int_equal(json_scan_base64url_decode(enc, strlen(enc), &b), JSON_SCAN_OK);
    assert_int_equal(b.len, want_len);
    if (want_len) assert_memory_equal(b.data, want, want_len);
    buf_close(&b);
}

static void check_bad_b64(const char *enc)
{
    buf b;
    buf_init(&b);
    buf_append_str(&b, "keep");
    if (json_scan_base64url_decode(enc, strlen(enc), &b) != JSON_SCAN_EENCODING)
        fail_msg("accepted base64url: %s", enc);
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.data, "keep", 4);
    buf_close(&b);
}

static void test_base64url_vectors(void **state)
{
    /* RFC 4648 §10, without padding. */
    check_b64("", "", 0);
    check_b64("Zg", "f", 1);
    check_b64("Zm8", "fo", 2);
    check_b64("Zm9v", "foo", 3);
    check_b64("Zm9vYg", "foob", 4);
    check_b64("Zm9vYmE", "fooba", 5);
    check_b64("Zm9vYmFy", "foobar", 6);
    /* Padding is accepted when it completes the quantum. */
    check_b64("Zg==", "f", 1);
    check_b64("Zm8=", "fo", 2);
    /* The url alphabet: 62 is '-', 63 is '_'. */
    check_b64("-_8", "\xfb\xff", 2);
    check_b64("AP8A", "\x00\xff\x00", 3);
    /* From docs/api.md. */
    check_b64("a2V5MQ", "key1", 4);
    check_b64("dg", "v", 1);

    check_bad_b64("Z");      /* 6 bits cannot make a byte */
    check_bad_b64("Zm9vY");  /* same, after a full quantum */
    check_bad_b64("Zh");     /* low bits set: not the canonical encoding */
    check_bad_b64("Zm9");    /* likewise for two bytes */
    check_bad_b64("+/8");    /* standard alphabet is not base64url */
    check_bad_b64("Zg=");    /* padding that does not complete the quantum */
    check_bad_b64("Zg===");  /* too much padding */
    check_bad_b64("=");      /* padding alone */
    check_bad_b64("Z===");   /* padding leaving one character */
    check_bad_b64("Zm 9v");  /* no whitespace */
    check_bad_b64("Zg==Zg"); /* padding in the middle */
}

/* Reference encoder, written out plainly, to round-trip random data. */
static void b64url_encode(const unsigned char *in, size_t n, char *out)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = alpha[(v >> 18) & 63];
        out[o++] = alpha[(v >> 12) & 63];
        if (i + 1 < n) out[o++] = alpha[(v >> 6) & 63];
        if (i + 2 < n) out[o++] = alpha[v & 63];
    }
    out[o] = '\0';
}

static void test_base64url_roundtrip(void **state)
{
    unsigned char data[300];
    char enc[401];
    uint32_t seed = 12345;
    for (size_t n = 0; n <= sizeof(data); n++) {
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            data[i] = (unsigned char)(seed >> 16);
        }
        b64url_encode(data, n, enc);
        check_b64(enc, data, n);
    }
}

/* The shape cairnctl reads from GET /v1/keys. */
static void test_list_response(void **state)
{
    const char *doc =
        "{\"revision\": 42, \"count\": 2, \"more\": true, \"next_cursor\": \"a2V5Mg\",\n"
        " \"keys\": [{\"key\": \"key1\", \"key_b64\": \"a2V5MQ\", \"create_revision\": 3,\n"
        "           \"mod_revision\": 7, \"version\": 2, \"ttl\": 120,\n"
        "           \"value\": \"v\", \"value_b64\": \"dg\"},\n"
        "          {\"key_b64\": \"AP8\", \"value_b64\": \"\"}]}";
    json_value root, keys, item, v;
    assert_int_equal(parse(doc, &root), JSON_SCAN_OK);
    assert_int_equal(json_scan_get(&root, "keys", &keys), JSON_SCAN_OK);
    assert_int_equal(keys.type, JSON_ARRAY);

    buf enc, out;
    buf_init(&enc);
    buf_init(&out);
    json_iter it;
    assert_int_equal(json_scan_iter_init(&it, &keys), JSON_SCAN_OK);
    assert_int_equal(json_scan_iter_next(&it, NULL, &item), 1);
    assert_int_equal(json_scan_get(&item, "key_b64", &v), JSON_SCAN_OK);
    assert_int_equal(json_scan_string(&v, &enc), JSON_SCAN_OK);
    assert_int_equal(json_scan_base64url_decode(enc.data, enc.len, &out), JSON_SCAN_OK);
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.data, "key1", 4);

    assert_int_equal(json_scan_iter_next(&it, NULL, &item), 1);
    buf_reset(&enc);
    buf_reset(&out);
    assert_int_equal(json_scan_get(&item, "key_b64", &v), JSON_SCAN_OK);
    assert_int_equal(json_scan_string(&v, &enc), JSON_SCAN_OK);
    assert_int_equal(json_scan_base64url_decode(enc.data, enc.len, &out), JSON_SCAN_OK);
    assert_int_equal(out.len, 2);
    assert_memory_equal(out.data, "\x00\xff", 2);
    assert_int_equal(json_scan_iter_next(&it, NULL, &item), 0);

    assert_int_equal(json_scan_find(&root, "keys.0.ttl", &v), JSON_SCAN_OK);
    uint64_t ttl;
    assert_int_equal(json_scan_u64(&v, &ttl), JSON_SCAN_OK);
    assert_int_equal(ttl, 120);
    assert_int_equal(json_scan_get(&root, "next_cursor", &v), JSON_SCAN_OK);
    assert_true(json_scan_string_eq(&v, "a2V5Mg", 6));
    buf_close(&enc);
    buf_close(&out);

    /* The last page has a null cursor. */
    assert_int_equal(parse("{\"keys\":[],\"next_cursor\":null}", &root), JSON_SCAN_OK);
    assert_int_equal(json_scan_get(&root, "next_cursor", &v), JSON_SCAN_OK);
    assert_int_equal(v.type, JSON_NULL);
}

static void test_strerror(void **state)
{
    for (int e = 0; e >= -7; e--) assert_non_null(json_scan_strerror(e));
    assert_string_equal(json_scan_strerror(JSON_SCAN_EDEPTH), "JSON nested too deeply");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_get_and_find),
        cmocka_unit_test(test_iter),
        cmocka_unit_test(test_string_decode),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_base64url_vectors),
        cmocka_unit_test(test_base64url_roundtrip),
        cmocka_unit_test(test_list_response),
        cmocka_unit_test(test_strerror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
