/* resp_format: the small pure rules of Redis' command layer that the RESP
 * front end reproduces: message texts that embed client input, index and
 * time arithmetic with Redis' overflow rules, human-readable byte counts.
 * Kept apart from the connection code so they can be unit-tested.
 * Pure code, any thread. */
#ifndef CAIRN_API_RESP_FORMAT_H
#define CAIRN_API_RESP_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/resp.h"
#include "util/buf.h"

/* "ERR unknown command '<name>', with args beginning with: '<a>' '<b>' ":
 * the name cut at 128 bytes, then arguments while the argument text is
 * shorter than 128 bytes, the last one cut to fit. */
void resp_format_unknown_command(buf *out, const resp_arg *argv, size_t argc);

/* Redis' "1.50K" style: B below 1 KiB, then K, M, G, T, P with two
 * decimals. Returns the length written (always NUL-terminated). */
size_t resp_format_human_bytes(char *out, size_t cap, uint64_t n);

/* GETRANGE: the byte range [*from, *from + *count) of a value of length
 * len for inclusive indexes start..end, negative ones counting from the
 * end (Redis 7.0 clamping rules). *count is 0 for an empty result. */
void resp_format_range(int64_t len, int64_t start, int64_t end, size_t *from, size_t *count);
/* Two negative indexes out of order: GETRANGE and BITCOUNT answer empty
 * before any clipping (Redis 7.0); BITPOS clips them like any range. */
static inline bool resp_format_range_reversed(int64_t start, int64_t end)
{
    return start < 0 && end < 0 && start > end;
}

/* Absolute expiry in ms for an EX/PX/EXAT/PXAT-style argument `when`
 * (seconds if `seconds`, relative to now_ms if `relative`). False when the
 * conversion overflows ("invalid expire time"). The result may be in the
 * past or negative; callers decide what that means. */
bool resp_format_expire_ms(int64_t when, bool seconds, bool relative, int64_t now_ms, int64_t *out);

/* CLIENT SETNAME: printable ASCII without spaces ('!'..'~'), may be empty. */
bool resp_format_client_name_ok(const char *s, size_t n);

/* COMMAND DOCS: the "arguments" array described by a synopsis in the
 * notation of Redis' documentation, e.g.
 *   "key value [NX|XX] [GET] [EX seconds|PX milliseconds|KEEPTTL]"
 * UPPER-case words are tokens (a token followed by a lower-case word is
 * one argument with that token); lower-case words are arguments, typed by
 * name (key, pattern, integer-like names, unix-time-*) or explicitly
 * ("increment:double"); [...] is
 * optional, (...) a required group, '|' separates alternatives (oneof),
 * "..." after an item makes it repeatable. Writes one array; returns the
 * number of top-level arguments, or -1 (and writes nothing) if the
 * synopsis does not parse. */
int resp_format_doc_args(buf *out, int proto, const char *synopsis);

/* ASCII case-insensitive equality of an argument with a lower-case word. */
bool resp_format_arg_is(const resp_arg *a, const char *lower);

#endif
