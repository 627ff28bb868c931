/* buf: a growable byte buffer, the unit of I/O in cairn.
 *
 * The caller owns the struct; buf_init/buf_close bracket its life. Data is
 * always NUL-terminated one past len (not counted) so that text parsers may
 * use C string functions on it safely. Consumed bytes are dropped from the
 * front lazily: `off` marks the start of unread data, so that a parser that
 * eats one request at a time does not memmove the rest each time. */
#ifndef CAIRN_UTIL_BUF_H
#define CAIRN_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct buf {
    char *data;
    size_t off; /* start of unread data */
    size_t len; /* end of data (absolute, >= off) */
    size_t cap;
} buf;

void buf_init(buf *b);
void buf_close(buf *b);
/* Make room for `extra` more bytes after len; may move data. */
void buf_reserve(buf *b, size_t extra);
void buf_append(buf *b, const void *p, size_t n);
void buf_append_str(buf *b, const char *s);
void buf_append_char(buf *b, char c);
void buf_append_u64(buf *b, uint64_t v);
void buf_append_i64(buf *b, int64_t v);
void buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(buf *b, const char *fmt, va_list ap);
/* Drop n unread bytes from the front. */
void buf_consume(buf *b, size_t n);
/* Forget all data, keep the allocation. */
void buf_reset(buf *b);
/* Move unread data to the start (call before a large read). */
void buf_compact(buf *b);
/* Release memory beyond `keep` bytes of capacity when the buffer is empty,
 * so an idle connection that once saw a 1 MiB value does not hold it. */
void buf_shrink_if_empty(buf *b, size_t keep);

static inline const char *buf_unread(const buf *b)
{
    return b->data ? b->data + b->off : ""; /* NULL + 0 is undefined behaviour */
}
static inline size_t buf_unread_len(const buf *b)
{
    return b->len - b->off;
}

#endif
