/* Tests for the pure parts of authentication and rate limiting:
 * util/password (hash text form, verification, base64), util/users (the
 * users file and its grants) and util/ratelimit (token buckets with an
 * injected clock). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "util/base64.h"
#include "util/buf.h"
#include "util/password.h"
#include "util/ratelimit.h"
#include "util/users.h"

/* ---- password ---- */

static void test_base64_roundtrip(void **state)
{
    (void)state;
    uint8_t in[40];
    for (size_t n = 0; n <= sizeof(in); n++) {
        for (size_t i = 0; i < n; i++) in[i] = (uint8_t)(i * 37 + n);
        for (int padded = 0; padded < 2; padded++) {
            buf txt, out;
            buf_init(&txt);
            buf_init(&out);
            base64_encode(&txt, in, n, BASE64_STD, padded);
            assert_int_equal(txt.len, padded ? (n + 2) / 3 * 4 : (n * 4 + 2) / 3);
            if (!padded) assert_true(!txt.len || !memchr(txt.data, '=', txt.len));
            assert_int_equal(base64_decode(txt.data, txt.len, BASE64_STD, &out), 0);
            assert_int_equal(out.len, n);
            if (n) assert_memory_equal(in, out.data, n);
            buf_close(&txt);
            buf_close(&out);
        }
    }
    /* RFC 4648 vectors */
    buf b, out;
    buf_init(&b);
    buf_init(&out);
    base64_encode(&b, "foob", 4, BASE64_STD, false);
    assert_string_equal(b.data, "Zm9vYg");
    buf_reset(&b);
    base64_encode(&b, "foob", 4, BASE64_STD, true);
    assert_string_equal(b.data, "Zm9vYg==");
    buf_reset(&b);
    base64_encode(&b, "\xfb\xff", 2, BASE64_STD, false);
    assert_string_equal(b.data, "+/8");
    buf_reset(&b);
    base64_encode(&b, "\xfb\xff", 2, BASE64_URL, false);
    assert_string_equal(b.data, "-_8");
    assert_int_equal(base64_decode("Zm9v!g", 6, BASE64_STD, &out), -1);  /* bad char */
    assert_int_equal(base64_decode("-_8", 3, BASE64_STD, &out), -1);     /* other alphabet */
    assert_int_equal(base64_decode("Zm9vY", 5, BASE64_STD, &out), -1);   /* bad length */
    assert_int_equal(base64_decode("Zh", 2, BASE64_STD, &out), -1);      /* not canonical */
    assert_int_equal(base64_decode("Zm9vYg=", 7, BASE64_STD, &out), -1); /* partial padding */
    assert_int_equal(out.len, 0); /* nothing appended on failure */
    buf_close(&b);
    buf_close(&out);
}

static void test_password_hash_and_verify(void **state)
{
    (void)state;
    char h1[160], h2[160];
    assert_int_equal(password_hash("secret", 6, 10000, h1, sizeof(h1)), 0);
    assert_int_equal(password_hash("secret", 6, 10000, h2, sizeof(h2)), 0);
    assert_string_not_equal(h1, h2); /* fresh salt each time */
    assert_null(strchr(h1, ':'));
    assert_true(strncmp(h1, "pbkdf2-sha256$10000$", 20) == 0);
    password_params p;
    const char *why = NULL;
    assert_true(password_parse(h1, strlen(h1), &p, &why));
    assert_int_equal(p.iterations, 10000);
    assert_int_equal(p.salt_len, PASSWORD_SALT_BYTES);
    assert_int_equal(p.key_len, PASSWORD_KEY_BYTES);
    assert_true(password_verify(&p, "secret", 6));
    assert_false(password_verify(&p, "secreT", 6));
    assert_false(password_verify(&p, "secret!", 7));
    assert_false(password_verify(&p, "", 0));
    assert_int_equal(password_hash("x", 1, 10000, h1, 20), -1); /* no room */
}

/* A known answer: PBKDF2-HMAC-SHA256 as
 * Python's hashlib computes it, so the format is what other tools make. */
static void test_password_known_answer(void **state)
{
    (void)state;
    /* hashlib.pbkdf2_hmac('sha256', b'pw', b'0123456789abcdef', 10000) */
    const char *h = "pbkdf2-sha256$10000$MDEyMzQ1Njc4OWFiY2RlZg$"
                    "N/y9DskeeRX2qLMpd24hyTUNiM3IXwAoUyJwZo2LuwA";
    password_params p;
    const char *why = NULL;
    assert_true(password_parse(h, strlen(h), &p, &why));
    assert_memory_equal(p.salt, "0123456789abcdef", 16);
    assert_true(password_verify(&p, "pw", 2));
    assert_false(password_verify(&p, "pw2", 3));
}

static void test_password_parse_rejects(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "sha256$10000$MDEyMzQ1Njc4OWFiY2RlZg$N/y9DskeeRX2qLMpd24hyTUNiM3IXwAoUyJwZo2LuwA",
        "pbkdf2-sha256$9999$MDEyMzQ1Njc4OWFiY2RlZg$N/y9DskeeRX2qLMpd24hyTUNiM3IXwAoUyJwZo2LuwA",
        "pbkdf2-sha256$$MDEyMzQ1Njc4OWFiY2RlZg$N/y9DskeeRX2qLMpd24hyTUNiM3IXwAoUyJwZo2LuwA",
        "pbkdf2-sha256$99999999999$MDEy$N/y9DskeeRX2qLMpd24hyTUNiM3IXwAoUyJwZo2LuwA",
        "pbkdf2-sha256$10000$MDEyMzQ1Njc4OWFiY2RlZg",
        "pbkdf2-sha256$10000$MDEy$N/y9DskeeRX2qLMpd24hyTUNiM3IXwAoUyJwZo2LuwA", /* short salt */
        "pbkdf2-sha256$10000$MDEyMzQ1Njc4OWFiY2RlZg$N/y9",                      /* short key */
        "pbkdf2-sha256$10000$MDEyMzQ1Njc4OWFiY2RlZg==$N/y9DskeeRX2qLMpd24hyTUNiM3IXwAoUyJwZo2LuwA",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        password_params p;
        const char *why = NULL;
        assert_false(password_parse(bad[i], strlen(bad[i]), &p, &why));
        assert_non_null(why);
        assert_null(strstr(why, "MDEy")); /* never echoes the hash */
    }
}

/* ---- users ---- */

#define H "pbkdf2-sha256$10000$MDEyMzQ1Njc4OWFiY2RlZg$N/y9DskeeRX2qLMpd24hyTUNiM3IXwAoUyJwZo2LuwA"

static void test_users_parse_and_grants(void **state)
{
    (void)state;
    const char *text = "# users\n"
                       "\n"
                       "alice:" H ":rw:app/,r:shared/\r\n"
                       "ops:" H ":admin\n"
                       "root:" H ":admin,rw:\n"
                       "nobody:" H ":\n"
                       "colon:" H ":r:a:b";
    users_table t;
    char err[200];
    assert_int_equal(users_parse(text, strlen(text), &t, err, sizeof(err)), 0);
    assert_int_equal(t.n, 5);
    const users_user *alice = users_find(&t, "alice", 5);
    assert_non_null(alice);
    assert_false(alice->admin);
    assert_true(users_may_access(alice, "app/x", 5, true));
    assert_true(users_may_access(alice, "app/", 4, false));
    assert_false(users_may_access(alice, "app", 3, false));
    assert_true(users_may_access(alice, "shared/k", 8, false));
    assert_false(users_may_access(alice, "shared/k", 8, true));
    assert_false(users_may_access(alice, "other", 5, false));
    assert_true(users_may_list(alice, "app/sub", 7));
    assert_false(users_may_list(alice, "ap", 2));
    assert_false(users_may_list(alice, "", 0));
    const users_user *ops = users_find(&t, "ops", 3);
    assert_true(ops->admin);
    assert_false(users_may_access(ops, "k", 1, false)); /* admin is not key access */
    const users_user *root = users_find(&t, "root", 4);
    assert_true(root->admin);
    assert_true(users_may_access(root, "anything", 8, true));
    assert_true(users_may_list(root, "", 0));
    const users_user *nobody = users_find(&t, "nobody", 6);
    assert_int_equal(nobody->ngrants, 0);
    assert_false(users_may_access(nobody, "k", 1, false));
    const users_user *colon = users_find(&t, "colon", 5);
    assert_true(users_may_access(colon, "a:b/c", 5, false)); /* prefixes may hold ':' */
    assert_null(users_find(&t, "ALICE", 5));
    assert_int_equal(users_index(&t, root), 2);
    users_free(&t);
}

static void test_users_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"alice\n", "line 1: expected name:hash:perms"},
        {"# c\nalice:" H "\n", "line 2: expected name:hash:perms"},
        {"alice:nothash:rw:", "line 1: the hash is not of the form"},
        {":" H ":rw:", "line 1: bad user name"},
        {"al ice:" H ":rw:", "line 1: bad user name"},
        {"a:" H ":rw:\na:" H ":r:", "line 2: duplicate user name"},
        {"a:" H ":write:x", "line 1: unknown grant"},
        {"a:" H ":rw:x,", "line 1: empty grant"},
        {"a:" H ":admin,,r:", "line 1: empty grant"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        users_table t = {0};
        char err[300] = "";
        assert_int_equal(users_parse(cases[i].text, strlen(cases[i].text), &t, err, sizeof(err)),
                         -1);
        if (strncmp(err, cases[i].want, strlen(cases[i].want)) != 0) {
            print_error("case %zu: got '%s', want '%s'\n", i, err, cases[i].want);
            fail();
        }
        assert_null(strstr(err, "MDEy")); /* the hash is not repeated */
        assert_int_equal(t.n, 0);
    }
}

static void test_users_stamp_follows_hash(void **state)
{
    (void)state;
    const char *a = "u:" H ":rw:";
    const char *b = "u:pbkdf2-sha256$20000$MDEyMzQ1Njc4OWFiY2RlZg$"
                    "N/y9DskeeRX2qLMpd24hyTUNiM3IXwAoUyJwZo2LuwA:rw:";
    users_table ta, tb;
    char err[100];
    assert_int_equal(users_parse(a, strlen(a), &ta, err, sizeof(err)), 0);
    assert_int_equal(users_parse(b, strlen(b), &tb, err, sizeof(err)), 0);
    assert_true(ta.v[0].stamp != tb.v[0].stamp);
    users_free(&ta);
    users_free(&tb);
}

/* ---- ratelimit ---- */

static void test_ratelimit_bucket(void **state)
{
    (void)state;
    ratelimit *r = ratelimit_create(5, 5, 100);
    int64_t t = 1000;
    for (int i = 0; i < 5; i++) {
        ratelimit_verdict v = ratelimit_take(r, "a", 1, t);
        assert_true(v.allowed);
        assert_int_equal(v.remaining, 4 - i);
    }
    ratelimit_verdict v = ratelimit_take(r, "a", 1, t);
    assert_false(v.allowed);
    assert_int_equal(v.retry_after_ms, 200);           /* 5/s: one token per 200 ms */
    assert_true(ratelimit_take(r, "b", 1, t).allowed); /* another client */
    assert_false(ratelimit_take(r, "a", 1, t + 199).allowed);
    assert_true(ratelimit_take(r, "a", 1, t + 400).allowed);
    /* refills to the burst, not beyond */
    t += 100000;
    for (int i = 0; i < 5; i++) assert_true(ratelimit_take(r, "a", 1, t).allowed);
    assert_false(ratelimit_take(r, "a", 1, t).allowed);
    ratelimit_destroy(r);
}

static void test_ratelimit_bounded_table(void **state)
{
    (void)state;
    ratelimit *r = ratelimit_create(1, 2, 4);
    char key[16];
    /* four busy clients fill the table */
    for (int i = 0; i < 4; i++) {
        int n = snprintf(key, sizeof(key), "c%d", i);
        assert_true(ratelimit_take(r, key, (size_t)n, 0).allowed);
    }
    assert_int_equal(ratelimit_clients(r), 4);
    /* newcomers share the overflow bucket while nobody is idle */
    assert_true(ratelimit_take(r, "x1", 2, 10).allowed);
    assert_true(ratelimit_take(r, "x2", 2, 10).allowed);
    assert_false(ratelimit_take(r, "x3", 2, 10).allowed);
    assert_int_equal(ratelimit_clients(r), 4);
    /* once the old buckets have refilled, they are forgotten */
    assert_true(ratelimit_take(r, "y", 1, 5000).allowed);
    assert_int_equal(ratelimit_clients(r), 1);
    ratelimit_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_roundtrip),
        cmocka_unit_test(test_password_hash_and_verify),
        cmocka_unit_test(test_password_known_answer),
        cmocka_unit_test(test_password_parse_rejects),
        cmocka_unit_test(test_users_parse_and_grants),
        cmocka_unit_test(test_users_parse_errors),
        cmocka_unit_test(test_users_stamp_follows_hash),
        cmocka_unit_test(test_ratelimit_bucket),
        cmocka_unit_test(test_ratelimit_bounded_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
