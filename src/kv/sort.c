#include "kv/sort.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kv/hash.h"
#include "kv/list.h"
#include "kv/set.h"
#include "kv/zset.h"
#include "util/alloc.h"

typedef struct sort_item {
    size_t off, len;         /* the element, in the arena */
    size_t cmp_off, cmp_len; /* ALPHA BY: the value it sorts by */
    bool has_cmp;
    double score;
    size_t order; /* its place as loaded: ties keep it */
} sort_item;

typedef struct sort_run {
    buf arena;
    sort_item *items;
    size_t n, cap;
    const kv_sort_opts *o;
    bool by_pattern;
} sort_run;

static void sort__add(sort_run *r, kv_slice v)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 16;
        r->items = xrealloc(r->items, r->cap * sizeof(*r->items));
    }
    sort_item *it = &r->items[r->n];
    memset(it, 0, sizeof(*it));
    it->off = r->arena.len;
    it->len = v.len;
    it->order = r->n++;
    buf_append(&r->arena, v.ptr, v.len);
}

static kv_slice sort__elem(const sort_run *r, const sort_item *it)
{
    return (kv_slice){r->arena.data + it->off, it->len};
}

static int sort__bytes(kv_slice a, kv_slice b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c) return c;
    return a.len < b.len ? -1 : a.len > b.len ? 1 : 0;
}

/* The value a pattern names for an element: "#" the element itself; a
 * pattern without '*' nothing; "key*" a string, "key*->field" a hash
 * field. Copies into tmp; false when there is none. */
static bool sort__by_pattern(kv_slice pat, kv_slice elem, kv_sort_find_fn find, void *ctx, buf *tmp,
                             kv_slice *out)
{
    if (pat.len == 1 && pat.ptr[0] == '#') {
        *out = elem;
        return true;
    }
    const char *star = memchr(pat.ptr, '*', pat.len);
    if (!star) return false;
    const char *end = pat.ptr + pat.len, *arrow = NULL;
    for (const char *q = star + 1; q + 1 < end; q++)
        if (q[0] == '-' && q[1] == '>') {
            arrow = q;
            break;
        }
    if (arrow && arrow + 2 == end) arrow = NULL; /* "->" with no field: part of the key */
    const char *post_end = arrow ? arrow : end;
    buf_reset(tmp);
    buf_append(tmp, pat.ptr, (size_t)(star - pat.ptr));
    buf_append(tmp, elem.ptr, elem.len);
    buf_append(tmp, star + 1, (size_t)(post_end - star - 1));
    const kv_entry *e = find(ctx, (kv_slice){tmp->data, tmp->len});
    if (!e) return false;
    if (arrow) {
        if (e->type != KV_TYPE_HASH) return false;
        kv_slice field = {arrow + 2, (size_t)(end - arrow - 2)}, v;
        if (!kv_hash_get(e, field, &v)) return false;
        *out = v;
        return true;
    }
    if (e->type != KV_TYPE_STRING) return false;
    *out = (kv_slice){e->value ? e->value : "", e->value_len};
    return true;
}

static const sort_run *sort__cmp_run; /* qsort has no context argument */

static int sort__compare(const void *pa, const void *pb)
{
    const sort_run *r = sort__cmp_run;
    const sort_item *a = pa, *b = pb;
    int c;
    if (!r->o->alpha) {
        c = a->score > b->score ? 1 : a->score < b->score ? -1 : 0;
        if (!c) c = sort__bytes(sort__elem(r, a), sort__elem(r, b));
    } else if (r->by_pattern) {
        if (!a->has_cmp || !b->has_cmp)
            c = a->has_cmp == b->has_cmp ? 0 : !a->has_cmp ? -1 : 1;
        else
            c = sort__bytes((kv_slice){r->arena.data + a->cmp_off, a->cmp_len},
                            (kv_slice){r->arena.data + b->cmp_off, b->cmp_len});
    } else {
        c = sort__bytes(sort__elem(r, a), sort__elem(r, b));
    }
    if (r->o->desc) c = -c;
    if (!c) c = a->order < b->order ? -1 : a->order > b->order ? 1 : 0;
    return c;
}

static void sort__load(sort_run *r, const kv_entry *src)
{
    if (!src) return;
    kv_slice v;
    if (src->type == KV_TYPE_LIST) {
        kv_list_iter it;
        kv_list_iter_init(&it, src, 0);
        while (kv_list_iter_next(&it, &v)) sort__add(r, v);
    } else if (src->type == KV_TYPE_SET) {
        kv_set_iter it;
        kv_set_iter_init(&it, src);
        while (kv_set_iter_next(&it, &v)) sort__add(r, v);
    } else if (src->type == KV_TYPE_ZSET) {
        kv_zset_iter it;
        double score;
        kv_zset_iter_init(&it, src, 0, false);
        while (kv_zset_iter_next(&it, &v, &score)) sort__add(r, v);
    }
}

bool kv_sort(const kv_entry *src, const kv_sort_opts *o, kv_sort_find_fn find, void *ctx, buf *out,
             size_t *n)
{
    sort_run r = {.o = o};
    buf_init(&r.arena);
    buf tmp, num;
    buf_init(&tmp);
    buf_init(&num);
    kv_sort_opts opts = *o;
    bool dontsort = opts.has_by && !memchr(opts.by.ptr, '*', opts.by.len);
    if (dontsort && src && src->type == KV_TYPE_SET && opts.store) {
        /* a set has no order of its own to store: ALPHA, as Redis */
        dontsort = false;
        opts.alpha = true;
        opts.has_by = false;
    }
    r.o = &opts;
    r.by_pattern = opts.has_by;
    sort__load(&r, src);
    bool ok = true;
    if (dontsort) {
        /* the source's own order: a list or sorted set read backwards
         * for DESC, a set as it comes */
        if (opts.desc && src && src->type != KV_TYPE_SET)
            for (size_t i = 0; i < r.n / 2; i++) {
                sort_item t = r.items[i];
                r.items[i] = r.items[r.n - 1 - i];
                r.items[r.n - 1 - i] = t;
            }
    } else {
        for (size_t i = 0; i < r.n && ok; i++) {
            sort_item *it = &r.items[i];
            kv_slice by = sort__elem(&r, it);
            if (opts.has_by && !sort__by_pattern(opts.by, by, find, ctx, &tmp, &by)) continue;
            if (opts.alpha) {
                if (opts.has_by) {
                    /* by may be in the arena ("#"): through num, as the
                     * append may move the arena */
                    buf_reset(&num);
                    buf_append(&num, by.ptr, by.len);
                    it->has_cmp = true;
                    it->cmp_off = r.arena.len;
                    it->cmp_len = by.len;
                    buf_append(&r.arena, num.data, num.len);
                }
                continue;
            }
            /* strtod over the whole value, as Redis reads a score */
            buf_reset(&num);
            buf_append(&num, by.ptr, by.len);
            char *end;
            errno = 0;
            it->score = strtod(num.data ? num.data : "", &end);
            if ((num.data && end != num.data + num.len) || errno == ERANGE || isnan(it->score))
                ok = false;
        }
        if (ok && r.n > 1) {
            sort__cmp_run = &r;
            qsort(r.items, r.n, sizeof(*r.items), sort__compare);
            sort__cmp_run = NULL;
        }
    }
    *n = 0;
    if (ok) {
        int64_t len = (int64_t)r.n;
        int64_t start = opts.limit_start < 0 ? 0 : opts.limit_start;
        int64_t end = opts.limit_count < 0 ? len - 1 : start + opts.limit_count - 1;
        if (start >= len) end = start - 1;
        if (end >= len) end = len - 1;
        for (int64_t j = start; j <= end; j++) {
            kv_slice elem = sort__elem(&r, &r.items[j]);
            size_t outs = opts.ngets ? opts.ngets : 1;
            for (size_t g = 0; g < outs; g++) {
                kv_slice v = elem;
                bool present =
                    !opts.ngets || sort__by_pattern(opts.gets[g], elem, find, ctx, &tmp, &v);
                char h[5] = {(char)present, (char)(v.len), (char)(v.len >> 8), (char)(v.len >> 16),
                             (char)(v.len >> 24)};
                if (!present) v.len = 0, h[1] = h[2] = h[3] = h[4] = 0;
                buf_append(out, h, 5);
                buf_append(out, v.ptr, v.len);
                (*n)++;
            }
        }
    }
    free(r.items);
    buf_close(&r.arena);
    buf_close(&tmp);
    buf_close(&num);
    return ok;
}
