/* listpack: Redis' own packed-array byte formats, as they travel inside
 * DUMP payloads (kv/dump.h): the listpack (Redis 7's small hashes, sorted
 * sets and quicklist nodes) written and read, and the older ziplist and
 * intset read, so that a value DUMPed by Redis 7.0 or an earlier version
 * RESTOREs here. cairn's own encodings (kv/hash.h, kv/list.h, ...) are
 * different and never leave the process in these formats.
 *
 * Listpack: u32 total bytes | u16 count (65535: unknown) | entries | 0xff,
 * each entry its encoding and data then its length backwards (1-5 bytes).
 * An element that reads as a canonical int64 (as Redis reads one) is kept
 * as an integer in the narrowest of Redis' integer encodings, others as a
 * string with a 6, 12 or 32-bit length: the bytes are those Redis writes
 * for the same elements in the same order.
 *
 * The readers check every length against the buffer and the structure
 * (header, back lengths, count, terminator): the bytes come from clients. */
#ifndef CAIRN_KV_LISTPACK_H
#define CAIRN_KV_LISTPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* ---- writing a listpack ---- */
typedef struct kv_lp_writer {
    buf b; /* header placeholder, then entries */
    uint32_t count;
} kv_lp_writer;

void kv_lp_writer_init(kv_lp_writer *w);
void kv_lp_writer_close(kv_lp_writer *w);
/* Start over (keeps the memory). */
void kv_lp_writer_reset(kv_lp_writer *w);
void kv_lp_append(kv_lp_writer *w, const char *s, size_t len);
void kv_lp_append_int(kv_lp_writer *w, int64_t v);
/* The listpack's size once finished (with the terminator). */
static inline size_t kv_lp_bytes(const kv_lp_writer *w)
{
    return w->b.len + 1;
}
/* Write the header and terminator; the listpack is w->b.data[0..len). */
const char *kv_lp_finish(kv_lp_writer *w, size_t *len);

/* ---- reading listpacks and ziplists ---- */

/* One element: an integer or a string (s points into the buffer). */
typedef struct kv_lp_elem {
    bool is_int;
    int64_t v;
    const char *s;
    size_t len;
} kv_lp_elem;

typedef struct kv_lp_iter {
    const unsigned char *p, *end; /* next entry; the terminator */
    const unsigned char *start;
    uint32_t count, seen; /* header's count (UINT32_MAX unknown); elements read */
    bool ziplist;
    size_t prev_len; /* ziplist: the previous entry's length, for its prevlen check */
} kv_lp_iter;

/* Check the header and terminator of a listpack (or ziplist) of len bytes.
 * false: malformed. */
bool kv_lp_iter_init(kv_lp_iter *it, const char *data, size_t len);
bool kv_zl_iter_init(kv_lp_iter *it, const char *data, size_t len);
/* 1: an element; 0: the end, with the count matching; -1: malformed. */
int kv_lp_iter_next(kv_lp_iter *it, kv_lp_elem *e);

/* An element as a string: a string's bytes, or an integer's decimal
 * digits written to tmp (at least 21 bytes). */
const char *kv_lp_elem_str(const kv_lp_elem *e, char *tmp, size_t *len);

/* ---- reading an intset ----
 * u32 width (2, 4 or 8) | u32 count | count x signed int, little endian,
 * strictly ascending. false: malformed. */
bool kv_intset_check(const char *data, size_t len, uint32_t *count);
int64_t kv_intset_get(const char *data, uint32_t i);

#endif
