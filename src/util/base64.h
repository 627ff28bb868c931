/* base64: RFC 4648 encoding, in its two alphabets.
 *
 * cairn puts bytes into JSON and cursors as base64url (§5), and reads and
 * writes standard base64 (§4) for HTTP Basic credentials and password
 * hashes. One coder serves both. Decoding accepts padding only when it
 * completes the last quantum and requires the unused low bits of the last
 * character to be zero, so every byte string has exactly one accepted
 * unpadded encoding. */
#ifndef CAIRN_UTIL_BASE64_H
#define CAIRN_UTIL_BASE64_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

typedef enum { BASE64_STD, BASE64_URL } base64_alphabet;

/* Append the encoding of p[0..n) to out; pad with '=' to a multiple of 4
 * when pad is set (HTTP Basic), else not (JSON, hashes). */
void base64_encode(buf *out, const void *p, size_t n, base64_alphabet alphabet, bool pad);
/* Append the decoding of s[0..n) to out. Returns 0, or -1 (nothing
 * appended) on a character outside the alphabet, a bad length or padding,
 * or non-zero unused bits. */
int base64_decode(const char *s, size_t n, base64_alphabet alphabet, buf *out);

#endif
