/* sort: Redis' SORT over a list, set or sorted set (issue 12).
 *
 * The elements, or the values their BY pattern names, sorted as numbers
 * (strtod; an element that is not one is an error) or with ALPHA as byte
 * strings, ties broken by the elements' bytes; BY without '*' keeps the
 * source's own order (a list reversed by DESC, as Redis does); LIMIT; GET
 * patterns ("#" the element, "key*" a string, "key*->field" a hash field)
 * in the reply. The same function serves SORT's read and SORT ... STORE's
 * apply, with the lookup of each. Checked against redis-server by
 * tests/integration/test_resp_sort.py. */
#ifndef CAIRN_KV_SORT_H
#define CAIRN_KV_SORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/command.h"
#include "kv/keyspace.h"
#include "util/buf.h"

typedef struct kv_sort_opts {
    bool desc, alpha;
    bool store; /* SORT ... STORE: a set in its own order is sorted ALPHA */
    bool has_by;
    kv_slice by;
    int64_t limit_start, limit_count; /* -1 count: to the end (no LIMIT: 0, -1) */
    const kv_slice *gets;
    size_t ngets;
} kv_sort_opts;

/* The live entry of a key, or NULL (the caller's view of expiry). */
typedef const kv_entry *(*kv_sort_find_fn)(void *ctx, kv_slice key);

/* SORT of src (NULL: empty). The output (one value per element, or per
 * element and GET) is appended to out as a u8 present flag, then u32 len |
 * bytes; *n values. Returns false when a score is not a number. */
bool kv_sort(const kv_entry *src, const kv_sort_opts *o, kv_sort_find_fn find, void *ctx, buf *out,
             size_t *n);

#endif
