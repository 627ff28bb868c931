/* Tests for util/glob: the documented syntax case by case, binary subjects,
 * pathological patterns, and a property test against a plain recursive
 * matcher (exponential, but obviously right) on random short inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/glob.h"

static bool m(const char *p, const char *s)
{
    return glob_match(p, strlen(p), s, strlen(s), false);
}

static bool mi(const char *p, const char *s)
{
    return glob_match(p, strlen(p), s, strlen(s), true);
}

static void test_literals(void **state)
{
    (void)state;
    assert_true(m("", ""));
    assert_false(m("", "a"));
    assert_false(m("a", ""));
    assert_true(m("abc", "abc"));
    assert_false(m("abc", "abd"));
    assert_false(m("abc", "ab"));
    assert_false(m("ab", "abc"));
    assert_false(m("ABC", "abc"));
    assert_true(mi("ABC", "abc"));
    assert_true(mi("abc", "AbC"));
}

static void test_star_and_question(void **state)
{
    (void)state;
    assert_true(m("*", ""));
    assert_true(m("*", "anything"));
    assert_true(m("**", "x"));
    assert_true(m("a*", "a"));
    assert_true(m("a*", "abc"));
    assert_false(m("a*", "ba"));
    assert_true(m("*c", "abc"));
    assert_true(m("a*c", "ac"));
    assert_true(m("a*c", "abbbc"));
    assert_false(m("a*c", "abbbd"));
    assert_true(m("a*b*c", "a_b_b_c"));
    assert_true(m("*a*", "bab"));
    assert_true(m("?", "x"));
    assert_false(m("?", ""));
    assert_false(m("?", "xy"));
    assert_true(m("h?llo", "hello"));
    assert_true(m("h?llo", "hallo"));
    assert_false(m("h?llo", "hllo"));
    assert_true(m("*?", "a"));
    assert_false(m("*??", "a"));
    assert_true(m("user:*:name", "user:42:name"));
    assert_false(m("user:*:name", "user:42:names"));
}

static void test_sets(void **state)
{
    (void)state;
    assert_true(m("h[ae]llo", "hello"));
    assert_true(m("h[ae]llo", "hallo"));
    assert_false(m("h[ae]llo", "hillo"));
    assert_true(m("h[^e]llo", "hallo"));
    assert_false(m("h[^e]llo", "hello"));
    assert_true(m("h[a-b]llo", "hbllo"));
    assert_false(m("h[a-b]llo", "hcllo"));
    assert_true(m("[z-a]", "m")); /* reversed range */
    assert_true(m("[0-9][0-9]", "42"));
    assert_false(m("[0-9]", "a"));
    assert_true(m("[^0-9]", "a"));
    assert_true(m("[abc", "b")); /* closed by the end of the pattern */
    assert_false(m("[abc", "d"));
    assert_false(m("[]", "a"));
    assert_true(m("[\\]]", "]"));
    assert_true(m("[a\\-z]", "-"));
    assert_false(m("[a\\-z]", "m"));
    assert_true(m("[a-]", "-")); /* a '-' before ']' is itself */
    assert_true(m("[a-]", "a"));
    assert_true(mi("[A-C]", "b"));
    assert_true(mi("[a-c]", "B"));
    assert_false(m("[A-C]", "b"));
    assert_true(m("*[12]", "a1"));
    assert_false(m("*[12]", "a3"));
}

static void test_escapes(void **state)
{
    (void)state;
    assert_true(m("h\\*llo", "h*llo"));
    assert_false(m("h\\*llo", "hello"));
    assert_true(m("\\?", "?"));
    assert_false(m("\\?", "a"));
    assert_true(m("h\\[*", "h[x"));
    assert_false(m("h\\[*", "hx"));
    assert_true(m("a\\\\b", "a\\b"));
    assert_true(m("ab\\", "ab\\")); /* a trailing backslash is itself */
    assert_false(m("ab\\", "ab"));
}

static void test_binary(void **state)
{
    (void)state;
    const char s[] = {'a', '\0', 'b'};
    assert_true(glob_match("a?b", 3, s, 3, false));
    assert_true(glob_match("a*", 2, s, 3, false));
    const char p[] = {'a', '\0', '*'};
    assert_true(glob_match(p, 3, s, 3, false));
    assert_false(glob_match(p, 3, "ab", 2, false));
    const char hi[] = {(char)0xff, (char)0x80};
    assert_true(glob_match("[\x80-\xff]?", 6, hi, 2, false));
}

static void test_pathological(void **state)
{
    (void)state;
    /* Exponential with naive backtracking; must be instant here. */
    char pat[256], subj[4096];
    size_t n = 0;
    for (int i = 0; i < 60; i++) {
        pat[n++] = '*';
        pat[n++] = 'a';
    }
    pat[n++] = 'b';
    memset(subj, 'a', sizeof(subj));
    clock_t t0 = clock();
    assert_false(glob_match(pat, n, subj, sizeof(subj), false));
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 1.0);
}

static void test_is_literal(void **state)
{
    (void)state;
    assert_true(glob_is_literal("abc", 3));
    assert_true(glob_is_literal("", 0));
    assert_false(glob_is_literal("a*", 2));
    assert_false(glob_is_literal("a?", 2));
    assert_false(glob_is_literal("a[b]", 4));
    assert_false(glob_is_literal("a\\b", 3));
}

/* ---- property test against a reference matcher ---- */

/* Parses the set starting at p[0] == '[': returns its length and whether
 * c is in it. Written independently of glob.c's loop, as a table. */
static size_t ref_set(const char *p, size_t plen, unsigned char c, bool *in)
{
    bool member[256] = {false};
    size_t i = 1;
    bool neg = false;
    if (i < plen && p[i] == '^') {
        neg = true;
        i++;
    }
    while (i < plen && p[i] != ']') {
        if (p[i] == '\\' && i + 1 < plen) {
            member[(unsigned char)p[i + 1]] = true;
            i += 2;
        } else if (i + 2 < plen && p[i + 1] == '-' && p[i + 2] != ']') {
            unsigned a = (unsigned char)p[i], b = (unsigned char)p[i + 2];
            for (unsigned x = a < b ? a : b; x <= (a < b ? b : a); x++) member[x] = true;
            i += 3;
        } else {
            member[(unsigned char)p[i]] = true;
            i++;
        }
    }
    *in = member[c] != neg;
    return i < plen ? i + 1 : i;
}

static bool ref_match(const char *p, size_t plen, const char *s, size_t slen)
{
    if (plen == 0) return slen == 0;
    if (p[0] == '*') {
        for (size_t k = 0; k <= slen; k++)
            if (ref_match(p + 1, plen - 1, s + k, slen - k)) return true;
        return false;
    }
    if (slen == 0) return false;
    unsigned char c = (unsigned char)s[0];
    if (p[0] == '?') return ref_match(p + 1, plen - 1, s + 1, slen - 1);
    if (p[0] == '[') {
        bool in;
        size_t e = ref_set(p, plen, c, &in);
        return in && ref_match(p + e, plen - e, s + 1, slen - 1);
    }
    if (p[0] == '\\' && plen > 1)
        return (unsigned char)p[1] == c && ref_match(p + 2, plen - 2, s + 1, slen - 1);
    return (unsigned char)p[0] == c && ref_match(p + 1, plen - 1, s + 1, slen - 1);
}

static uint64_t rng = 88172645463325252ull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static void test_property_vs_reference(void **state)
{
    (void)state;
    static const char palette_p[] = "ab*?[]^-\\";
    static const char palette_s[] = "ab-]^\\";
    for (int iter = 0; iter < 200000; iter++) {
        char p[10], s[10];
        size_t pl = rnd(9), sl = rnd(9);
        for (size_t i = 0; i < pl; i++) p[i] = palette_p[rnd(sizeof(palette_p) - 1)];
        for (size_t i = 0; i < sl; i++) s[i] = palette_s[rnd(sizeof(palette_s) - 1)];
        bool want = ref_match(p, pl, s, sl);
        bool got = glob_match(p, pl, s, sl, false);
        if (want != got) {
            fprintf(stderr, "pattern '%.*s' subject '%.*s': want %d got %d\n", (int)pl, p, (int)sl,
                    s, want, got);
            fail();
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals),   cmocka_unit_test(test_star_and_question),
        cmocka_unit_test(test_sets),       cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_binary),     cmocka_unit_test(test_pathological),
        cmocka_unit_test(test_is_literal), cmocka_unit_test(test_property_vs_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
