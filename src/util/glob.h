/* glob: the glob-style patterns of Redis' KEYS, SCAN MATCH and CONFIG GET.
 *
 * Syntax (as Redis documents it):
 *   *        any run of bytes, also empty
 *   ?        exactly one byte
 *   [abc]    one byte of the set; [a-z] a range (reversed ranges such as
 *            [z-a] mean the same range); [^...] the complement
 *   \x       the byte x itself, also inside a set
 * A set left open at the end of the pattern is closed there; a backslash
 * ending the pattern stands for itself.
 *
 * Patterns and subjects are byte strings (binary-safe, NUL is an ordinary
 * byte). Matching is O(len(pattern) * len(subject)) in the worst case: a
 * star never backtracks past the previous star, so patterns such as
 * "*a*a*a*a*b" cannot blow up. Pure code, any thread. */
#ifndef CAIRN_UTIL_GLOB_H
#define CAIRN_UTIL_GLOB_H

#include <stdbool.h>
#include <stddef.h>

/* Does s[0..slen) match pattern p[0..plen)? nocase folds ASCII letters. */
bool glob_match(const char *p, size_t plen, const char *s, size_t slen, bool nocase);

/* Does the pattern match only itself (no *, ?, [ or \)? Lets SCAN and KEYS
 * answer a literal pattern with one lookup. */
bool glob_is_literal(const char *p, size_t plen);

#endif
