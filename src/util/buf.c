#include "util/buf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

void buf_init(buf *b)
{
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}

void buf_close(buf *b)
{
    free(b->data);
    buf_init(b);
}

void buf_reserve(buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap) return;
    if (b->off > 0 && b->off >= b->cap / 2) {
        buf_compact(b);
        if (b->len + extra + 1 <= b->cap) return;
    }
    size_t need = b->len + extra + 1;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void buf_append(buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void buf_append_str(buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_append_char(buf *b, char c)
{
    buf_reserve(b, 1);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

void buf_append_u64(buf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    buf_append(b, tmp + i, sizeof(tmp) - i);
}

void buf_append_i64(buf *b, int64_t v)
{
    if (v < 0) {
        buf_append_char(b, '-');
        buf_append_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        buf_append_u64(b, (uint64_t)v);
    }
}

void buf_vprintf(buf *b, const char *fmt, va_list ap)
{
    /* also keeps GCC's -fsanitize=nonnull-attribute from making a path
     * with a NULL format, which -Wformat-truncation then reports */
    if (!fmt) return;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n <= 0) return;
    buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void buf_consume(buf *b, size_t n)
{
    if (n >= b->len - b->off) {
        b->off = b->len = 0;
        if (b->data) b->data[0] = '\0';
        return;
    }
    b->off += n;
}

void buf_reset(buf *b)
{
    b->off = b->len = 0;
    if (b->data) b->data[0] = '\0';
}

void buf_compact(buf *b)
{
    if (b->off == 0) return;
    size_t n = b->len - b->off;
    memmove(b->data, b->data + b->off, n + 1);
    b->off = 0;
    b->len = n;
}

void buf_shrink_if_empty(buf *b, size_t keep)
{
    if (b->len != b->off || b->cap <= keep) return;
    free(b->data);
    buf_init(b);
}
