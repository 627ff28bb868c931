/* resp_format: pure helpers of the Redis command layer (see the header). */
#include "api/resp_format.h"

#include <stdio.h>
#include <string.h>

#define RESP_FORMAT_ARGS_TEXT 128

void resp_format_unknown_command(buf *out, const resp_arg *argv, size_t argc)
{
    size_t name_len = argc ? argv[0].len : 0;
    if (name_len > RESP_FORMAT_ARGS_TEXT) name_len = RESP_FORMAT_ARGS_TEXT;
    buf_append_str(out, "ERR unknown command '");
    if (argc) buf_append(out, argv[0].ptr, name_len);
    buf_append_str(out, "', with args beginning with: ");
    size_t text = 0;
    for (size_t i = 1; i < argc && text < RESP_FORMAT_ARGS_TEXT; i++) {
        size_t n = argv[i].len;
        if (n > RESP_FORMAT_ARGS_TEXT - text) n = RESP_FORMAT_ARGS_TEXT - text;
        buf_append_char(out, '\'');
        buf_append(out, argv[i].ptr, n);
        buf_append_str(out, "' ");
        text += n + 3;
    }
}

size_t resp_format_human_bytes(char *out, size_t cap, uint64_t n)
{
    static const char units[] = "KMGTP";
    int len;
    if (n < 1024) {
        len = snprintf(out, cap, "%lluB", (unsigned long long)n);
    } else {
        double v = (double)n / 1024;
        int u = 0;
        while (v >= 1024 && u < 4) {
            v /= 1024;
            u++;
        }
        len = snprintf(out, cap, "%.2f%c", v, units[u]);
    }
    if (len < 0) len = 0;
    return (size_t)len < cap ? (size_t)len : cap ? cap - 1 : 0;
}

void resp_format_range(int64_t len, int64_t start, int64_t end, size_t *from, size_t *count)
{
    *from = 0;
    *count = 0;
    if (len <= 0) return;
    /* negative indexes count from the end; both are then clamped into
     * the value, which is why "-100 -50" on a short value yields its
     * first byte, exactly as Redis 7.0 answers */
    if (start < 0) start = len + start;
    if (end < 0) end = len + end;
    if (start < 0) start = 0;
    if (end < 0) end = 0;
    if (end >= len) end = len - 1;
    if (start > end) return;
    *from = (size_t)start;
    *count = (size_t)(end - start + 1);
}

bool resp_format_expire_ms(int64_t when, bool seconds, bool relative, int64_t now_ms, int64_t *out)
{
    if (seconds) {
        if (when > INT64_MAX / 1000 || when < INT64_MIN / 1000) return false;
        when *= 1000;
    }
    if (relative) {
        if (when > 0 && when > INT64_MAX - now_ms) return false;
        if (when < 0 && when < INT64_MIN + now_ms) return false;
        when += now_ms;
    }
    *out = when;
    return true;
}

bool resp_format_client_name_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '!' || s[i] > '~') return false;
    return true;
}

bool resp_format_arg_is(const resp_arg *a, const char *lower)
{
    size_t n = strlen(lower);
    if (a->len != n) return false;
    for (size_t i = 0; i < n; i++) {
        char c = a->ptr[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c + ('a' - 'A'));
        if (c != lower[i]) return false;
    }
    return true;
}
