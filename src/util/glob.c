/* glob: byte-string wildcard matching (see glob.h for the syntax).
 *
 * Every pattern element but '*' consumes exactly one subject byte, which is
 * what makes the classic single-backtrack algorithm correct: when an
 * element fails, only the most recent star needs to try absorbing one more
 * byte. Earlier stars never need to be revisited, because anything they
 * could absorb the most recent star can absorb too. */
#include "util/glob.h"

#include <stdint.h>

static unsigned char glob__fold(unsigned char c, bool nocase)
{
    return nocase && c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* p[*pi] is '['. Matches c against the set and moves *pi past it. */
static bool glob__set(const char *p, size_t plen, size_t *pi, unsigned char c, bool nocase)
{
    size_t i = *pi + 1;
    bool negate = false, match = false;
    c = glob__fold(c, nocase);
    if (i < plen && p[i] == '^') {
        negate = true;
        i++;
    }
    while (i < plen && p[i] != ']') {
        unsigned char lo = (unsigned char)p[i];
        if (lo == '\\' && i + 1 < plen) {
            if (glob__fold((unsigned char)p[i + 1], nocase) == c) match = true;
            i += 2;
            continue;
        }
        if (i + 2 < plen && p[i + 1] == '-' && p[i + 2] != ']') {
            unsigned char hi = (unsigned char)p[i + 2];
            lo = glob__fold(lo, nocase);
            hi = glob__fold(hi, nocase);
            if (lo > hi) {
                unsigned char t = lo;
                lo = hi;
                hi = t;
            }
            if (c >= lo && c <= hi) match = true;
            i += 3;
            continue;
        }
        if (glob__fold(lo, nocase) == c) match = true;
        i++;
    }
    if (i < plen) i++; /* the closing ']' */
    *pi = i;
    return match != negate;
}

/* Matches one non-star element at p[*pi] against c and moves *pi past it. */
static bool glob__element(const char *p, size_t plen, size_t *pi, unsigned char c, bool nocase)
{
    size_t i = *pi;
    unsigned char pc = (unsigned char)p[i];
    if (pc == '?') {
        *pi = i + 1;
        return true;
    }
    if (pc == '[') return glob__set(p, plen, pi, c, nocase);
    if (pc == '\\' && i + 1 < plen) pc = (unsigned char)p[++i];
    *pi = i + 1;
    return glob__fold(pc, nocase) == glob__fold(c, nocase);
}

bool glob_match(const char *p, size_t plen, const char *s, size_t slen, bool nocase)
{
    size_t pi = 0, si = 0;
    size_t star_p = SIZE_MAX, star_s = 0;
    while (si < slen) {
        if (pi < plen && p[pi] == '*') {
            while (pi < plen && p[pi] == '*') pi++;
            if (pi == plen) return true; /* a trailing star takes the rest */
            star_p = pi;
            star_s = si;
            continue;
        }
        if (pi < plen) {
            size_t next = pi;
            if (glob__element(p, plen, &next, (unsigned char)s[si], nocase)) {
                pi = next;
                si++;
                continue;
            }
        }
        if (star_p == SIZE_MAX) return false;
        pi = star_p;
        si = ++star_s;
    }
    while (pi < plen && p[pi] == '*') pi++;
    return pi == plen;
}

bool glob_is_literal(const char *p, size_t plen)
{
    for (size_t i = 0; i < plen; i++)
        if (p[i] == '*' || p[i] == '?' || p[i] == '[' || p[i] == '\\') return false;
    return true;
}
