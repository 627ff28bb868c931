#include "kv/stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/stream_group.h"
#include "util/alloc.h"
#include "util/strconv.h"

struct kv_stream_entry {
    kv_stream_id id;
    uint64_t node;   /* the Redis node it would sit in (approximate trimming) */
    uint32_t npairs; /* field/value pairs */
    uint32_t bytes;  /* of data */
    char data[];     /* 2 x npairs x (u32 len | bytes) */
};

typedef struct kv_stream {
    kv_stream_entry **items;
    uint64_t head, len, cap; /* live entries: items[head .. head + len) */
    kv_stream_id last_id, max_deleted;
    uint64_t entries_added;
    uint64_t tail_node;    /* node the next append joins unless full */
    uint64_t tail_appends; /* appends into tail_node (deleted ones count, as in Redis) */
    size_t mem;
    kv_sg_set *groups; /* consumer groups (kv/stream_group.h), NULL until the first */
} kv_stream;

#define ACCOUNT_BEGIN(ks, e) (ks)->mem_bytes -= kv_entry_mem_bytes(e)
#define ACCOUNT_END(ks, e) (ks)->mem_bytes += kv_entry_mem_bytes(e)

static kv_stream *st__of(const kv_entry *e)
{
    return (kv_stream *)e->value;
}

static uint32_t st__get32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

static void st__put32(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (char)(v >> (8 * i));
}

static uint64_t st__get64(const char *p)
{
    return (uint64_t)st__get32(p) | (uint64_t)st__get32(p + 4) << 32;
}

static void st__put64(buf *out, uint64_t v)
{
    char b[8];
    for (int i = 0; i < 8; i++) b[i] = (char)(v >> (8 * i));
    buf_append(out, b, 8);
}

/* ---- IDs ---------------------------------------------------------------------------- */

int kv_stream_id_format(kv_stream_id id, char out[48])
{
    return snprintf(out, 48, "%llu-%llu", (unsigned long long)id.ms, (unsigned long long)id.seq);
}

bool kv_stream_id_parse(const char *p, size_t n, uint64_t missing_seq, kv_stream_id *id,
                        bool *auto_seq)
{
    if (auto_seq) *auto_seq = false;
    if (n == 0 || n > 127) return false;
    const char *dash = memchr(p, '-', n);
    if (!dash) {
        if (!strconv_parse_u64(p, n, &id->ms)) return false;
        id->seq = missing_seq;
        return true;
    }
    if (!strconv_parse_u64(p, (size_t)(dash - p), &id->ms)) return false;
    const char *s = dash + 1;
    size_t sl = n - (size_t)(s - p);
    if (auto_seq && sl == 1 && s[0] == '*') {
        *auto_seq = true;
        id->seq = 0;
        return true;
    }
    return strconv_parse_u64(s, sl, &id->seq);
}

/* ---- entries ------------------------------------------------------------------------ */

kv_stream_id kv_stream_entry_id(const kv_stream_entry *x)
{
    return x->id;
}

uint32_t kv_stream_entry_fields(const kv_stream_entry *x)
{
    return x->npairs;
}

void kv_stream_entry_field(const kv_stream_entry *x, uint32_t i, kv_slice *field, kv_slice *value)
{
    const char *p = x->data;
    for (uint32_t k = 0; k < 2 * i; k++) p += 4 + st__get32(p);
    field->len = st__get32(p);
    field->ptr = p + 4;
    p += 4 + field->len;
    value->len = st__get32(p);
    value->ptr = p + 4;
}

static size_t st__entry_alloc(const kv_stream_entry *x)
{
    return kv_alloc_size(sizeof(*x) + x->bytes);
}

/* ---- the stream -------------------------------------------------------------------------- */

void kv_stream_init(kv_keyspace *ks, kv_entry *e)
{
    ACCOUNT_BEGIN(ks, e);
    kv_stream *st = xcalloc(1, sizeof(*st));
    st->mem = kv_alloc_size(sizeof(*st));
    e->value = (char *)st;
    e->value_len = 0;
    e->type = KV_TYPE_STREAM;
    e->encoding = KV_ENC_STREAM;
    ACCOUNT_END(ks, e);
}

uint64_t kv_stream_len(const kv_entry *e)
{
    return st__of(e)->len;
}

kv_stream_id kv_stream_last_id(const kv_entry *e)
{
    return st__of(e)->last_id;
}

kv_stream_id kv_stream_max_deleted(const kv_entry *e)
{
    return st__of(e)->max_deleted;
}

uint64_t kv_stream_entries_added(const kv_entry *e)
{
    return st__of(e)->entries_added;
}

void kv_stream_set_ids(kv_entry *e, kv_stream_id last, int64_t entries_added,
                       const kv_stream_id *max_deleted)
{
    kv_stream *st = st__of(e);
    st->last_id = last;
    if (entries_added >= 0) st->entries_added = (uint64_t)entries_added;
    if (max_deleted) st->max_deleted = *max_deleted;
}

/* The big-endian 16 bytes Redis keys a node by. */
static void st__id_key(kv_stream_id id, unsigned char out[16])
{
    for (int i = 0; i < 8; i++) {
        out[i] = (unsigned char)(id.ms >> (56 - 8 * i));
        out[8 + i] = (unsigned char)(id.seq >> (56 - 8 * i));
    }
}

/* Nodes of a compressed radix tree (Redis' rax) over keys[lo, hi) (sorted,
 * distinct, 16 bytes each), for the subtree whose node starts at byte
 * depth d: a chain of single-child bytes is one compressed node, a fork one
 * node holding its bytes, a key one (empty) node after its last byte. */
static uint64_t st__rax_nodes(const unsigned char (*keys)[16], uint64_t lo, uint64_t hi, int d)
{
    if (hi - lo == 1) return d < 16 ? 2 : 1;
    int b = d; /* the fork: the first byte where the first and last key differ */
    while (keys[lo][b] == keys[hi - 1][b]) b++;
    uint64_t n = (b > d) + 1;
    for (uint64_t i = lo; i < hi;) {
        uint64_t j = i + 1;
        while (j < hi && keys[j][b] == keys[i][b]) j++;
        n += st__rax_nodes(keys, i, j, b + 1);
        i = j;
    }
    return n;
}

void kv_stream_radix_shape(const kv_entry *e, uint64_t *keys, uint64_t *nodes)
{
    const kv_stream *st = st__of(e);
    unsigned char(*k)[16] = xmalloc((st->len ? st->len : 1) * sizeof(*k));
    uint64_t n = 0, node = 0;
    for (uint64_t i = 0; i < st->len; i++) {
        const kv_stream_entry *x = st->items[st->head + i];
        if (n && x->node == node) continue;
        node = x->node;
        st__id_key(x->id, k[n++]);
    }
    *keys = n;
    *nodes = n ? st__rax_nodes((const unsigned char(*)[16])k, 0, n, 0) : 1;
    free(k);
}

const kv_stream_entry *kv_stream_at(const kv_entry *e, uint64_t i)
{
    const kv_stream *st = st__of(e);
    return i < st->len ? st->items[st->head + i] : NULL;
}

uint64_t kv_stream_seek(const kv_entry *e, kv_stream_id id)
{
    const kv_stream *st = st__of(e);
    uint64_t lo = 0, hi = st->len;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (kv_stream_id_cmp(st->items[st->head + mid]->id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool kv_stream_next_id(const kv_entry *e, bool auto_ms, bool auto_seq, kv_stream_id want,
                       int64_t now_ms, kv_stream_id *out, bool *zero)
{
    kv_stream_id last = e ? st__of(e)->last_id : (kv_stream_id){0, 0};
    *zero = false;
    if (auto_ms) {
        uint64_t ms = now_ms > 0 ? (uint64_t)now_ms : 0;
        if (ms > last.ms) {
            *out = (kv_stream_id){ms, 0};
            return true;
        }
        /* the clock is behind the last ID: go on from it, as Redis does */
        if (last.seq != UINT64_MAX) {
            *out = (kv_stream_id){last.ms, last.seq + 1};
            return true;
        }
        if (last.ms == UINT64_MAX) return false;
        *out = (kv_stream_id){last.ms + 1, 0};
        return true;
    }
    if (auto_seq) {
        if (want.ms < last.ms) return false;
        if (want.ms == last.ms) {
            if (last.seq == UINT64_MAX) return false;
            want.seq = last.seq + 1;
        } else {
            want.seq = 0;
        }
        if (want.ms == 0 && want.seq == 0) want.seq = 1; /* 0-* starts at 0-1 */
        *out = want;
        return true;
    }
    if (want.ms == 0 && want.seq == 0) {
        *zero = true;
        return false;
    }
    if (kv_stream_id_cmp(want, last) <= 0) return false;
    *out = want;
    return true;
}

void kv_stream_append(kv_keyspace *ks, kv_entry *e, kv_stream_id id, const kv_slice *fields,
                      uint32_t npairs)
{
    ACCOUNT_BEGIN(ks, e);
    kv_stream *st = st__of(e);
    size_t bytes = 0;
    for (uint32_t i = 0; i < 2 * npairs; i++) bytes += 4 + fields[i].len;
    kv_stream_entry *x = xmalloc(sizeof(*x) + (bytes ? bytes : 1));
    x->id = id;
    x->npairs = npairs;
    x->bytes = (uint32_t)bytes;
    char *p = x->data;
    for (uint32_t i = 0; i < 2 * npairs; i++) {
        st__put32(p, (uint32_t)fields[i].len);
        if (fields[i].len) memcpy(p + 4, fields[i].ptr, fields[i].len);
        p += 4 + fields[i].len;
    }
    /* a new node after KV_STREAM_NODE_ENTRIES appends, or when the tail
     * node was emptied (Redis frees an empty node) */
    bool tail_alive = st->len && st->items[st->head + st->len - 1]->node == st->tail_node;
    if (!tail_alive || st->tail_appends >= KV_STREAM_NODE_ENTRIES) {
        st->tail_node++;
        st->tail_appends = 0;
    }
    x->node = st->tail_node;
    st->tail_appends++;
    if (st->head + st->len == st->cap) {
        if (st->head > st->cap / 2) { /* mostly trimmed from the front: slide down */
            memmove(st->items, st->items + st->head, st->len * sizeof(*st->items));
            st->head = 0;
        } else {
            size_t old = st->cap ? kv_alloc_size(st->cap * sizeof(*st->items)) : 0;
            st->cap = st->cap ? 2 * st->cap : 8;
            st->items = xrealloc(st->items, st->cap * sizeof(*st->items));
            st->mem += kv_alloc_size(st->cap * sizeof(*st->items)) - old;
        }
    }
    st->items[st->head + st->len++] = x;
    st->mem += st__entry_alloc(x);
    st->last_id = id;
    st->entries_added++;
    ACCOUNT_END(ks, e);
}

/* Remove the live entry at position i. XDEL (xdel) records the greatest
 * deleted ID; trimming does not, as in Redis (its first ID moves). */
static void st__remove_at(kv_stream *st, uint64_t i, bool xdel)
{
    kv_stream_entry *x = st->items[st->head + i];
    if (xdel && kv_stream_id_cmp(x->id, st->max_deleted) > 0) st->max_deleted = x->id;
    st->mem -= st__entry_alloc(x);
    free(x);
    if (i == 0) {
        st->head++;
    } else {
        memmove(&st->items[st->head + i], &st->items[st->head + i + 1],
                (st->len - i - 1) * sizeof(*st->items));
    }
    st->len--;
    if (st->len == 0) st->head = 0;
}

bool kv_stream_delete(kv_keyspace *ks, kv_entry *e, kv_stream_id id)
{
    kv_stream *st = st__of(e);
    uint64_t i = kv_stream_seek(e, id);
    if (i >= st->len || kv_stream_id_cmp(st->items[st->head + i]->id, id) != 0) return false;
    ACCOUNT_BEGIN(ks, e);
    st__remove_at(st, i, true);
    ACCOUNT_END(ks, e);
    return true;
}

/* Live entries of the first node. */
static uint64_t st__first_node_len(const kv_stream *st)
{
    uint64_t n = 0;
    uint64_t node = st->items[st->head]->node;
    while (n < st->len && st->items[st->head + n]->node == node) n++;
    return n;
}

/* Trim from the front: MAXLEN (minid NULL) keeps the last maxlen entries,
 * MINID the entries from minid on. approx removes whole nodes only, at
 * most limit entries (0: any number), as Redis' `~`. */
static uint64_t st__trim(kv_keyspace *ks, kv_entry *e, uint64_t maxlen, const kv_stream_id *minid,
                         bool approx, uint64_t limit)
{
    kv_stream *st = st__of(e);
    uint64_t removed = 0;
    ACCOUNT_BEGIN(ks, e);
    while (st->len) {
        if (approx) {
            uint64_t n = st__first_node_len(st);
            const kv_stream_entry *last = st->items[st->head + n - 1];
            bool whole = minid ? kv_stream_id_cmp(last->id, *minid) < 0 : st->len - n >= maxlen;
            if (!whole || (limit && removed + n > limit)) break;
            for (uint64_t k = 0; k < n; k++) st__remove_at(st, 0, false);
            removed += n;
        } else {
            bool go =
                minid ? kv_stream_id_cmp(st->items[st->head]->id, *minid) < 0 : st->len > maxlen;
            if (!go) break;
            st__remove_at(st, 0, false);
            removed++;
        }
    }
    ACCOUNT_END(ks, e);
    return removed;
}

uint64_t kv_stream_trim_maxlen(kv_keyspace *ks, kv_entry *e, uint64_t maxlen, bool approx,
                               uint64_t limit)
{
    return st__trim(ks, e, maxlen, NULL, approx, limit);
}

uint64_t kv_stream_trim_minid(kv_keyspace *ks, kv_entry *e, kv_stream_id minid, bool approx,
                              uint64_t limit)
{
    return st__trim(ks, e, 0, &minid, approx, limit);
}

void kv_stream_copy(kv_keyspace *ks, kv_entry *dst, const kv_entry *src)
{
    kv_stream_init(ks, dst);
    ACCOUNT_BEGIN(ks, dst);
    const kv_stream *from = st__of(src);
    kv_stream *to = st__of(dst);
    to->cap = from->len ? from->len : 0;
    if (to->cap) {
        to->items = xmalloc(to->cap * sizeof(*to->items));
        to->mem += kv_alloc_size(to->cap * sizeof(*to->items));
    }
    for (uint64_t i = 0; i < from->len; i++) {
        const kv_stream_entry *x = from->items[from->head + i];
        kv_stream_entry *y = xmalloc(sizeof(*y) + (x->bytes ? x->bytes : 1));
        memcpy(y, x, sizeof(*y) + x->bytes);
        to->items[i] = y;
        to->mem += st__entry_alloc(y);
    }
    to->len = from->len;
    to->last_id = from->last_id;
    to->max_deleted = from->max_deleted;
    to->entries_added = from->entries_added;
    to->tail_node = from->tail_node;
    to->tail_appends = from->tail_appends;
    to->groups = kv_sg_set_copy(from->groups); /* COPY copies the groups, as Redis' */
    ACCOUNT_END(ks, dst);
}

size_t kv_stream_mem(const void *stream)
{
    const kv_stream *st = stream;
    return st->mem + kv_sg_set_mem(st->groups);
}

kv_sg_set **kv_stream__groups_slot(kv_entry *e)
{
    return &st__of(e)->groups;
}

kv_stream_id kv_stream__first_id(const kv_entry *e)
{
    const kv_stream *st = st__of(e);
    return st->len ? st->items[st->head]->id : (kv_stream_id){0, 0};
}

void kv_stream_free(void *stream)
{
    kv_stream *st = stream;
    if (!st) return;
    kv_sg_set_free(st->groups);
    for (uint64_t i = 0; i < st->len; i++) free(st->items[st->head + i]);
    free(st->items);
    free(st);
}

/* ---- snapshots ------------------------------------------------------------------------ */

void kv_stream_serialize(const kv_entry *e, buf *out)
{
    const kv_stream *st = st__of(e);
    st__put64(out, st->last_id.ms);
    st__put64(out, st->last_id.seq);
    st__put64(out, st->max_deleted.ms);
    st__put64(out, st->max_deleted.seq);
    st__put64(out, st->entries_added);
    st__put64(out, st->tail_node);
    st__put64(out, st->tail_appends);
    st__put64(out, st->len);
    for (uint64_t i = 0; i < st->len; i++) {
        const kv_stream_entry *x = st->items[st->head + i];
        st__put64(out, x->node);
        st__put64(out, x->id.ms);
        st__put64(out, x->id.seq);
        char n[4];
        st__put32(n, x->npairs);
        buf_append(out, n, 4);
        buf_append(out, x->data, x->bytes);
    }
    if (st->groups && st->groups->n) kv_sg_set_serialize(st->groups, out); /* else nothing */
}

bool kv_stream_load(kv_keyspace *ks, kv_entry *e, const char *data, size_t len)
{
    if (len < 64) return false;
    const char *p = data, *end = data + len;
    kv_stream_id last = {st__get64(p), st__get64(p + 8)};
    kv_stream_id maxdel = {st__get64(p + 16), st__get64(p + 24)};
    uint64_t added = st__get64(p + 32), tail_node = st__get64(p + 40),
             tail_appends = st__get64(p + 48), count = st__get64(p + 56);
    p += 64;
    if (count > (uint64_t)(end - p) / 28) return false;
    kv_stream_init(ks, e);
    kv_stream_id prev = {0, 0};
    bool ok = true;
    kv_slice *fields = NULL;
    size_t fcap = 0;
    for (uint64_t i = 0; i < count && ok; i++) {
        if (end - p < 28) {
            ok = false;
            break;
        }
        uint64_t node = st__get64(p);
        kv_stream_id id = {st__get64(p + 8), st__get64(p + 16)};
        uint32_t npairs = st__get32(p + 24);
        p += 28;
        if ((i > 0 && kv_stream_id_cmp(id, prev) <= 0) || kv_stream_id_cmp(id, last) > 0 ||
            npairs == 0 || npairs > (uint64_t)(end - p) / 8) {
            ok = false;
            break;
        }
        if (2 * (size_t)npairs > fcap) {
            fcap = 2 * (size_t)npairs;
            fields = xrealloc(fields, fcap * sizeof(*fields));
        }
        for (uint32_t k = 0; k < 2 * npairs && ok; k++) {
            if (end - p < 4) {
                ok = false;
                break;
            }
            uint32_t l = st__get32(p);
            if (l > (uint64_t)(end - p) - 4) {
                ok = false;
                break;
            }
            fields[k] = (kv_slice){p + 4, l};
            p += 4 + l;
        }
        if (!ok) break;
        kv_stream_append(ks, e, id, fields, npairs);
        st__of(e)->items[st__of(e)->head + st__of(e)->len - 1]->node = node;
        prev = id;
    }
    free(fields);
    kv_sg_set *groups = NULL;
    if (ok && p != end) { /* the consumer groups follow (none: nothing) */
        groups = kv_sg_set_load(p, (size_t)(end - p), &ok);
        if (ok && !groups) ok = false; /* an empty table is never written */
        p = end;
    }
    if (!ok) {
        kv_sg_set_free(groups);
        kv_keyspace_reset_value(ks, e);
        return false;
    }
    kv_stream *st = st__of(e);
    ACCOUNT_BEGIN(ks, e);
    st->groups = groups;
    ACCOUNT_END(ks, e);
    st->last_id = last;
    st->max_deleted = maxdel;
    st->entries_added = added;
    st->tail_node = tail_node;
    st->tail_appends = tail_appends;
    return true;
}
