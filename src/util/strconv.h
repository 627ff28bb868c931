/* strconv: strict number parsing and formatting, with Redis' rules.
 *
 * Redis clients depend on exactly which strings count as integers ("01",
 * "+1" and " 1" do not) and on how floats are printed by INCRBYFLOAT, so
 * the rules live here once and both the state machine and the protocol
 * front ends use them. */
#ifndef CAIRN_UTIL_STRCONV_H
#define CAIRN_UTIL_STRCONV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A decimal int64 with optional '-', no '+', no spaces, no leading zeros
 * (but "0"), at most 20 digits, no overflow. */
bool strconv_parse_i64(const char *s, size_t len, int64_t *out);
/* Same for unsigned values. */
bool strconv_parse_u64(const char *s, size_t len, uint64_t *out);
/* A long double as strtold reads it, with no surrounding space, not NaN. */
bool strconv_parse_ld(const char *s, size_t len, long double *out);
/* A double (for RESP3 arguments like INCRBYFLOAT increments), not NaN. */
bool strconv_parse_double(const char *s, size_t len, double *out);
/* Format a long double the way INCRBYFLOAT replies: fixed point with up to
 * 17 decimals, trailing zeros and a trailing '.' removed. Returns length. */
size_t strconv_format_ld(long double v, char *out, size_t cap);

#endif
