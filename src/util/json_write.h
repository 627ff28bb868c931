/* json_write: the writing half of JSON (json_scan is the reading half).
 *
 * Keys and values in cairn are arbitrary bytes, and JSON strings are
 * Unicode, so bytes travel as base64url (always lossless) and, when they
 * happen to be valid UTF-8, also as a readable string. */
#ifndef CAIRN_UTIL_JSON_WRITE_H
#define CAIRN_UTIL_JSON_WRITE_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

/* Append a quoted JSON string; s must be valid UTF-8. */
void json_write_string(buf *out, const char *s, size_t n);
void json_write_cstr(buf *out, const char *s);
bool utf8_valid(const char *s, size_t n);
/* base64url without padding (RFC 4648 §5), unquoted. */
void base64url_encode(buf *out, const void *p, size_t n);

#endif
