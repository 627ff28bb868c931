/* stream_group: see stream_group.h. */
#include "kv/stream_group.h"

#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

/* kv/stream.c: the slot in the stream object, and the fields Redis'
 * entries-read bookkeeping reads */
kv_sg_set **kv_stream__groups_slot(kv_entry *e);
kv_stream_id kv_stream__first_id(const kv_entry *e);

#define ACCOUNT_BEGIN(ks, e) (ks)->mem_bytes -= kv_entry_mem_bytes(e)
#define ACCOUNT_END(ks, e) (ks)->mem_bytes += kv_entry_mem_bytes(e)

/* The set's memory, kept in a header before it (so that reading it is
 * O(1) from kv_stream_mem). */
typedef struct sg_set_full {
    kv_sg_set set;
    size_t mem;
} sg_set_full;

static size_t sg__group_mem(const kv_sg *g)
{
    size_t n = kv_alloc_size(sizeof(*g)) + kv_alloc_size(g->name_len + 1) +
               kv_alloc_size(g->cappel * sizeof(*g->pel)) +
               kv_alloc_size(g->capc * sizeof(*g->consumers));
    for (uint32_t i = 0; i < g->nconsumers; i++)
        n += kv_alloc_size(sizeof(kv_sg_consumer)) + kv_alloc_size(g->consumers[i]->name_len + 1);
    return n;
}

static void sg__recount(kv_sg_set *s)
{
    sg_set_full *f = (sg_set_full *)s;
    f->mem = kv_alloc_size(sizeof(*f)) + kv_alloc_size(s->cap * sizeof(*s->groups));
    for (uint32_t i = 0; i < s->n; i++) f->mem += sg__group_mem(s->groups[i]);
}

size_t kv_sg_set_mem(const kv_sg_set *s)
{
    return s ? ((const sg_set_full *)s)->mem : 0;
}

const kv_sg_set *kv_sg_groups(const kv_entry *e)
{
    return *kv_stream__groups_slot((kv_entry *)e);
}

static bool sg__eq(const char *a, size_t al, const char *b, size_t bl)
{
    return al == bl && memcmp(a, b, al) == 0;
}

/* Redis' order of groups and consumers (its radix trees'): bytewise, a
 * prefix first. */
static int sg__name_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

/* Where name is, or would go, among n items kept in name order; name_of
 * gives an item's name. */
typedef kv_slice (*sg_name_fn)(const void *item);

static uint32_t sg__seek(const void *const *items, uint32_t n, sg_name_fn name_of, const char *name,
                         size_t len)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        kv_slice m = name_of(items[mid]);
        if (sg__name_cmp(m.ptr, m.len, name, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static kv_slice sg__group_name(const void *item)
{
    const kv_sg *g = item;
    return (kv_slice){g->name, g->name_len};
}

static kv_slice sg__consumer_name(const void *item)
{
    const kv_sg_consumer *c = item;
    return (kv_slice){c->name, c->name_len};
}

static uint32_t sg__seek_group(const kv_sg_set *s, const char *name, size_t len)
{
    return sg__seek((const void *const *)s->groups, s->n, sg__group_name, name, len);
}

static uint32_t sg__seek_consumer(const kv_sg *g, const char *name, size_t len)
{
    return sg__seek((const void *const *)g->consumers, g->nconsumers, sg__consumer_name, name, len);
}

static int sg__group_order(const void *a, const void *b)
{
    const kv_sg *x = *(kv_sg *const *)a, *y = *(kv_sg *const *)b;
    return sg__name_cmp(x->name, x->name_len, y->name, y->name_len);
}

static int sg__consumer_order(const void *a, const void *b)
{
    const kv_sg_consumer *x = *(kv_sg_consumer *const *)a, *y = *(kv_sg_consumer *const *)b;
    return sg__name_cmp(x->name, x->name_len, y->name, y->name_len);
}

kv_sg *kv_sg_find(const kv_entry *e, const char *name, size_t len)
{
    const kv_sg_set *s = kv_sg_groups(e);
    if (!s) return NULL;
    uint32_t i = sg__seek_group(s, name, len);
    return i < s->n && sg__eq(s->groups[i]->name, s->groups[i]->name_len, name, len) ? s->groups[i]
                                                                                     : NULL;
}

static char *sg__dup(const char *p, size_t n)
{
    char *d = xmalloc(n + 1);
    memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

static kv_sg_set *sg__set_new(void)
{
    sg_set_full *f = xcalloc(1, sizeof(*f));
    return &f->set;
}

kv_sg *kv_sg_create(kv_keyspace *ks, kv_entry *e, const char *name, size_t len,
                    kv_stream_id last_id, int64_t entries_read)
{
    if (kv_sg_find(e, name, len)) return NULL;
    ACCOUNT_BEGIN(ks, e);
    kv_sg_set **slot = kv_stream__groups_slot(e);
    if (!*slot) *slot = sg__set_new();
    kv_sg_set *s = *slot;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 2;
        s->groups = xrealloc(s->groups, s->cap * sizeof(*s->groups));
    }
    kv_sg *g = xcalloc(1, sizeof(*g));
    g->name = sg__dup(name, len);
    g->name_len = (uint32_t)len;
    g->last_id = last_id;
    g->entries_read = entries_read;
    uint32_t at = sg__seek_group(s, name, len);
    memmove(&s->groups[at + 1], &s->groups[at], (s->n - at) * sizeof(*s->groups));
    s->groups[at] = g;
    s->n++;
    sg__recount(s);
    ACCOUNT_END(ks, e);
    return g;
}

static void sg__group_free(kv_sg *g)
{
    for (uint32_t i = 0; i < g->nconsumers; i++) {
        free(g->consumers[i]->name);
        free(g->consumers[i]);
    }
    free(g->consumers);
    free(g->pel);
    free(g->name);
    free(g);
}

bool kv_sg_destroy(kv_keyspace *ks, kv_entry *e, const char *name, size_t len)
{
    kv_sg_set *s = *kv_stream__groups_slot(e);
    for (uint32_t i = 0; s && i < s->n; i++) {
        if (!sg__eq(s->groups[i]->name, s->groups[i]->name_len, name, len)) continue;
        ACCOUNT_BEGIN(ks, e);
        sg__group_free(s->groups[i]);
        memmove(&s->groups[i], &s->groups[i + 1], (s->n - i - 1) * sizeof(*s->groups));
        s->n--;
        sg__recount(s);
        ACCOUNT_END(ks, e);
        return true;
    }
    return false;
}

kv_sg_consumer *kv_sg_consumer_find(const kv_sg *g, const char *name, size_t len)
{
    uint32_t i = sg__seek_consumer(g, name, len);
    return i < g->nconsumers && sg__eq(g->consumers[i]->name, g->consumers[i]->name_len, name, len)
               ? g->consumers[i]
               : NULL;
}

kv_sg_consumer *kv_sg_consumer_get(kv_keyspace *ks, kv_entry *e, kv_sg *g, const char *name,
                                   size_t len, int64_t now_ms, bool *created)
{
    kv_sg_consumer *c = kv_sg_consumer_find(g, name, len);
    *created = c == NULL;
    if (c) return c;
    ACCOUNT_BEGIN(ks, e);
    if (g->nconsumers == g->capc) {
        g->capc = g->capc ? 2 * g->capc : 4;
        g->consumers = xrealloc(g->consumers, g->capc * sizeof(*g->consumers));
    }
    c = xcalloc(1, sizeof(*c));
    c->name = sg__dup(name, len);
    c->name_len = (uint32_t)len;
    c->seen_ms = now_ms;
    uint32_t at = sg__seek_consumer(g, name, len);
    memmove(&g->consumers[at + 1], &g->consumers[at], (g->nconsumers - at) * sizeof(*g->consumers));
    g->consumers[at] = c;
    g->nconsumers++;
    sg__recount(*kv_stream__groups_slot(e));
    ACCOUNT_END(ks, e);
    return c;
}

uint64_t kv_sg_pel_seek(const kv_sg *g, kv_stream_id id)
{
    uint64_t lo = 0, hi = g->npel;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (kv_stream_id_cmp(g->pel[mid].id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

kv_sg_pending *kv_sg_pel_find(const kv_sg *g, kv_stream_id id)
{
    uint64_t i = kv_sg_pel_seek(g, id);
    return i < g->npel && kv_stream_id_cmp(g->pel[i].id, id) == 0 ? &g->pel[i] : NULL;
}

static void sg__pel_remove_at(kv_sg *g, uint64_t i)
{
    g->pel[i].owner->pending--;
    memmove(&g->pel[i], &g->pel[i + 1], (g->npel - i - 1) * sizeof(*g->pel));
    g->npel--;
}

uint64_t kv_sg_consumer_delete(kv_keyspace *ks, kv_entry *e, kv_sg *g, kv_sg_consumer *c)
{
    ACCOUNT_BEGIN(ks, e);
    uint64_t removed = 0, k = 0;
    for (uint64_t i = 0; i < g->npel; i++) {
        if (g->pel[i].owner == c) {
            removed++;
            continue;
        }
        g->pel[k++] = g->pel[i];
    }
    g->npel = k;
    for (uint32_t i = 0; i < g->nconsumers; i++) {
        if (g->consumers[i] != c) continue;
        memmove(&g->consumers[i], &g->consumers[i + 1],
                (g->nconsumers - i - 1) * sizeof(*g->consumers));
        g->nconsumers--;
        break;
    }
    free(c->name);
    free(c);
    sg__recount(*kv_stream__groups_slot(e));
    ACCOUNT_END(ks, e);
    return removed;
}

/* Redis' streamRangeHasTombstones(s, &id, NULL): a deleted entry at or
 * after id. */
static bool sg__tombstones_after(const kv_entry *e, kv_stream_id id)
{
    kv_stream_id md = kv_stream_max_deleted(e);
    if (!kv_stream_len(e) || (md.ms == 0 && md.seq == 0)) return false;
    return kv_stream_id_cmp(id, md) <= 0;
}

/* Redis' streamEstimateDistanceFromFirstEverEntry. */
int64_t kv_sg_estimate_read(const kv_entry *e, kv_stream_id id)
{
    uint64_t added = kv_stream_entries_added(e), len = kv_stream_len(e);
    if (!added) return 0;
    kv_stream_id last = kv_stream_last_id(e);
    if (!len && kv_stream_id_cmp(id, last) < 1) return (int64_t)added;
    int cmp_last = kv_stream_id_cmp(id, last);
    if (cmp_last == 0) return (int64_t)added;
    if (cmp_last > 0) return -1;
    kv_stream_id first = kv_stream__first_id(e), md = kv_stream_max_deleted(e);
    int cmp_first = kv_stream_id_cmp(id, first);
    if ((md.ms == 0 && md.seq == 0) || kv_stream_id_cmp(md, first) < 0) {
        if (cmp_first < 0) return (int64_t)(added - len);
        if (cmp_first == 0) return (int64_t)(added - len + 1);
    }
    return -1;
}

bool kv_sg_lag(const kv_entry *e, const kv_sg *g, int64_t *lag)
{
    int64_t added = (int64_t)kv_stream_entries_added(e);
    *lag = 0;
    if (!added) return true;
    int64_t read = g->entries_read;
    if (read < 0 || sg__tombstones_after(e, g->last_id)) read = kv_sg_estimate_read(e, g->last_id);
    if (read < 0) return false;
    *lag = added - read;
    return true;
}

void kv_sg_deliver(kv_keyspace *ks, kv_entry *e, kv_sg *g, kv_sg_consumer *c, kv_stream_id id,
                   int64_t now_ms, bool noack)
{
    if (kv_stream_id_cmp(id, g->last_id) > 0) {
        if (g->entries_read != -1 && !sg__tombstones_after(e, id))
            g->entries_read++;
        else if (kv_stream_entries_added(e))
            g->entries_read = kv_sg_estimate_read(e, id);
        g->last_id = id;
    }
    if (!noack) kv_sg_pel_add(ks, e, g, c, id, now_ms);
}

kv_sg_pending *kv_sg_pel_add(kv_keyspace *ks, kv_entry *e, kv_sg *g, kv_sg_consumer *c,
                             kv_stream_id id, int64_t now_ms)
{
    ACCOUNT_BEGIN(ks, e);
    uint64_t i = kv_sg_pel_seek(g, id);
    if (i < g->npel && kv_stream_id_cmp(g->pel[i].id, id) == 0) {
        g->pel[i].owner->pending--;
    } else {
        if (g->npel == g->cappel) {
            g->cappel = g->cappel ? 2 * g->cappel : 8;
            g->pel = xrealloc(g->pel, g->cappel * sizeof(*g->pel));
        }
        memmove(&g->pel[i + 1], &g->pel[i], (g->npel - i) * sizeof(*g->pel));
        g->npel++;
    }
    g->pel[i] = (kv_sg_pending){id, c, now_ms, 1};
    c->pending++;
    sg__recount(*kv_stream__groups_slot(e));
    ACCOUNT_END(ks, e);
    return &g->pel[i];
}

bool kv_sg_ack(kv_keyspace *ks, kv_entry *e, kv_sg *g, kv_stream_id id)
{
    uint64_t i = kv_sg_pel_seek(g, id);
    if (i >= g->npel || kv_stream_id_cmp(g->pel[i].id, id) != 0) return false;
    ACCOUNT_BEGIN(ks, e);
    sg__pel_remove_at(g, i);
    ACCOUNT_END(ks, e);
    return true;
}

void kv_sg_pel_remove(kv_keyspace *ks, kv_entry *e, kv_sg *g, kv_sg_pending *p)
{
    ACCOUNT_BEGIN(ks, e);
    sg__pel_remove_at(g, (uint64_t)(p - g->pel));
    ACCOUNT_END(ks, e);
}

void kv_sg_claim(kv_sg *g, kv_sg_pending *p, kv_sg_consumer *c, int64_t delivered_ms,
                 int64_t deliveries)
{
    (void)g;
    p->owner->pending--;
    p->owner = c;
    c->pending++;
    p->delivered_ms = delivered_ms;
    if (deliveries == KV_SG_DELIVERIES_ADD)
        p->deliveries++;
    else if (deliveries >= 0)
        p->deliveries = (uint64_t)deliveries;
}

/* ---- copy, free, snapshot ----------------------------------------------------------- */

kv_sg_set *kv_sg_set_copy(const kv_sg_set *s)
{
    if (!s) return NULL;
    kv_sg_set *t = sg__set_new();
    t->cap = s->n ? s->n : 1;
    t->groups = xcalloc(t->cap, sizeof(*t->groups));
    for (uint32_t i = 0; i < s->n; i++) {
        const kv_sg *g = s->groups[i];
        kv_sg *h = xcalloc(1, sizeof(*h));
        h->name = sg__dup(g->name, g->name_len);
        h->name_len = g->name_len;
        h->last_id = g->last_id;
        h->entries_read = g->entries_read;
        h->capc = g->nconsumers ? g->nconsumers : 1;
        h->consumers = xcalloc(h->capc, sizeof(*h->consumers));
        for (uint32_t k = 0; k < g->nconsumers; k++) {
            kv_sg_consumer *c = xcalloc(1, sizeof(*c));
            *c = *g->consumers[k];
            c->name = sg__dup(g->consumers[k]->name, g->consumers[k]->name_len);
            h->consumers[k] = c;
        }
        h->nconsumers = g->nconsumers;
        h->cappel = g->npel ? g->npel : 1;
        h->pel = xcalloc(h->cappel, sizeof(*h->pel));
        for (uint64_t k = 0; k < g->npel; k++) {
            h->pel[k] = g->pel[k];
            for (uint32_t j = 0; j < g->nconsumers; j++)
                if (g->consumers[j] == g->pel[k].owner) h->pel[k].owner = h->consumers[j];
        }
        h->npel = g->npel;
        t->groups[t->n++] = h;
    }
    sg__recount(t);
    return t;
}

void kv_sg_set_free(kv_sg_set *s)
{
    if (!s) return;
    for (uint32_t i = 0; i < s->n; i++) sg__group_free(s->groups[i]);
    free(s->groups);
    free((sg_set_full *)s);
}

static void sg__put32(buf *out, uint32_t v)
{
    char b[4];
    for (int i = 0; i < 4; i++) b[i] = (char)(v >> (8 * i));
    buf_append(out, b, 4);
}

static void sg__put64(buf *out, uint64_t v)
{
    char b[8];
    for (int i = 0; i < 8; i++) b[i] = (char)(v >> (8 * i));
    buf_append(out, b, 8);
}

void kv_sg_set_serialize(const kv_sg_set *s, buf *out)
{
    sg__put32(out, s ? s->n : 0);
    for (uint32_t i = 0; s && i < s->n; i++) {
        const kv_sg *g = s->groups[i];
        sg__put32(out, g->name_len);
        buf_append(out, g->name, g->name_len);
        sg__put64(out, g->last_id.ms);
        sg__put64(out, g->last_id.seq);
        sg__put64(out, (uint64_t)g->entries_read);
        sg__put32(out, g->nconsumers);
        for (uint32_t k = 0; k < g->nconsumers; k++) {
            sg__put32(out, g->consumers[k]->name_len);
            buf_append(out, g->consumers[k]->name, g->consumers[k]->name_len);
            sg__put64(out, (uint64_t)g->consumers[k]->seen_ms);
        }
        sg__put64(out, g->npel);
        for (uint64_t k = 0; k < g->npel; k++) {
            sg__put64(out, g->pel[k].id.ms);
            sg__put64(out, g->pel[k].id.seq);
            uint32_t owner = 0;
            while (owner < g->nconsumers && g->consumers[owner] != g->pel[k].owner) owner++;
            sg__put32(out, owner);
            sg__put64(out, (uint64_t)g->pel[k].delivered_ms);
            sg__put64(out, g->pel[k].deliveries);
        }
    }
}

typedef struct sg_reader {
    const char *p, *end;
    bool ok;
} sg_reader;

static uint64_t sg__get(sg_reader *r, int bytes)
{
    if (!r->ok || r->end - r->p < bytes) {
        r->ok = false;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)(unsigned char)r->p[i] << (8 * i);
    r->p += bytes;
    return v;
}

static const char *sg__bytes(sg_reader *r, uint32_t n)
{
    if (!r->ok || (size_t)(r->end - r->p) < n) {
        r->ok = false;
        return NULL;
    }
    const char *p = r->p;
    r->p += n;
    return p;
}

kv_sg_set *kv_sg_set_load(const char *data, size_t len, bool *ok)
{
    sg_reader r = {data, data + len, true};
    uint32_t n = (uint32_t)sg__get(&r, 4);
    *ok = false;
    if (!r.ok || n > len / 4) return NULL;
    if (n == 0) {
        *ok = r.p == r.end;
        return NULL;
    }
    kv_sg_set *s = sg__set_new();
    s->cap = n;
    s->groups = xcalloc(n, sizeof(*s->groups));
    for (uint32_t i = 0; i < n && r.ok; i++) {
        kv_sg *g = xcalloc(1, sizeof(*g));
        s->groups[s->n++] = g;
        uint32_t nl = (uint32_t)sg__get(&r, 4);
        const char *name = sg__bytes(&r, nl);
        g->name = sg__dup(name ? name : "", name ? nl : 0);
        g->name_len = name ? nl : 0;
        g->last_id.ms = sg__get(&r, 8);
        g->last_id.seq = sg__get(&r, 8);
        g->entries_read = (int64_t)sg__get(&r, 8);
        uint32_t nc = (uint32_t)sg__get(&r, 4);
        if (!r.ok || nc > (size_t)(r.end - r.p) / 12) {
            r.ok = false;
            break;
        }
        g->capc = nc ? nc : 1;
        g->consumers = xcalloc(g->capc, sizeof(*g->consumers));
        for (uint32_t k = 0; k < nc && r.ok; k++) {
            uint32_t cl = (uint32_t)sg__get(&r, 4);
            const char *cn = sg__bytes(&r, cl);
            if (!cn) break;
            kv_sg_consumer *c = xcalloc(1, sizeof(*c));
            c->name = sg__dup(cn, cl);
            c->name_len = cl;
            c->seen_ms = (int64_t)sg__get(&r, 8);
            g->consumers[g->nconsumers++] = c;
        }
        uint64_t np = sg__get(&r, 8);
        if (!r.ok || np > (size_t)(r.end - r.p) / 36) {
            r.ok = false;
            break;
        }
        g->cappel = np ? np : 1;
        g->pel = xcalloc(g->cappel, sizeof(*g->pel));
        for (uint64_t k = 0; k < np && r.ok; k++) {
            kv_sg_pending *p = &g->pel[k];
            p->id.ms = sg__get(&r, 8);
            p->id.seq = sg__get(&r, 8);
            uint32_t owner = (uint32_t)sg__get(&r, 4);
            p->delivered_ms = (int64_t)sg__get(&r, 8);
            p->deliveries = sg__get(&r, 8);
            if (!r.ok || owner >= g->nconsumers ||
                (k > 0 && kv_stream_id_cmp(g->pel[k - 1].id, p->id) >= 0)) {
                r.ok = false;
                break;
            }
            p->owner = g->consumers[owner];
            p->owner->pending++;
            g->npel++;
        }
        /* kept in name order (older snapshots hold creation order); a
         * name twice is a malformed table */
        qsort(g->consumers, g->nconsumers, sizeof(*g->consumers), sg__consumer_order);
        for (uint32_t j = 0; j + 1 < g->nconsumers && r.ok; j++)
            if (!sg__consumer_order(&g->consumers[j], &g->consumers[j + 1])) r.ok = false;
    }
    if (r.ok) {
        qsort(s->groups, s->n, sizeof(*s->groups), sg__group_order);
        for (uint32_t j = 0; j + 1 < s->n && r.ok; j++)
            if (!sg__group_order(&s->groups[j], &s->groups[j + 1])) r.ok = false;
    }
    if (!r.ok || r.p != r.end) {
        kv_sg_set_free(s);
        return NULL;
    }
    sg__recount(s);
    *ok = true;
    return s;
}
