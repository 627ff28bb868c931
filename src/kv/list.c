#include "kv/list.h"

#include <stdlib.h>
#include <string.h>

#include "kv/packed.h"
#include "util/alloc.h"

typedef struct lnode {
    struct lnode *prev, *next;
    uint32_t count; /* elements */
    uint32_t bytes; /* used bytes of data */
    uint32_t cap;   /* allocated bytes of data */
    char data[];    /* count x (len | bytes), len as LEB128 (kv_packed_put) */
} lnode;

typedef struct qlist {
    lnode *head, *tail;
    uint64_t count;
    size_t mem;
    /* how much a node may hold: list-max-listpack-size as it stood at the
     * last write (kv_limit_list_node); list__writable sets them */
    uint32_t node_bytes, node_count;
} qlist;

static size_t node__mem(const lnode *n)
{
    return kv_alloc_size(sizeof(lnode) + n->cap);
}

static uint32_t get32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

static qlist *list__of(const kv_entry *e)
{
    return (qlist *)(void *)e->value;
}

/* The list about to be written, its node limits as the keyspace's
 * list-max-listpack-size says now (replicated state: every replica builds
 * the same nodes). A node built earlier keeps what it holds (Redis keeps
 * a list's fill from its creation instead; nodes are invisible but to
 * memory, and DUMP packs nodes afresh). */
static qlist *list__writable(const kv_keyspace *ks, const kv_entry *e)
{
    qlist *q = list__of(e);
    kv_limit_list_node(&ks->limits, &q->node_bytes, &q->node_count);
    return q;
}

/* ---- nodes -------------------------------------------------------------------- */

/* Decode a node's elements into out (node->count slices into its data). */
static void node__elems(const lnode *n, kv_slice *out)
{
    uint32_t pos = 0;
    for (uint32_t i = 0; i < n->count; i++) pos += kv_packed_get(n->data + pos, &out[i]);
}

static lnode *node__build(const kv_slice *elems, size_t n)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) bytes += kv_packed_size(elems[i].len);
    lnode *node = xmalloc(sizeof(lnode) + bytes);
    node->prev = node->next = NULL;
    node->count = (uint32_t)n;
    node->bytes = node->cap = (uint32_t)bytes;
    char *p = node->data;
    for (size_t i = 0; i < n; i++) p += kv_packed_put(p, elems[i]);
    return node;
}

static void list__link_after(qlist *q, lnode *prev, lnode *n)
{
    n->prev = prev;
    n->next = prev ? prev->next : q->head;
    if (n->next)
        n->next->prev = n;
    else
        q->tail = n;
    if (prev)
        prev->next = n;
    else
        q->head = n;
    q->count += n->count;
    q->mem += node__mem(n);
}

static void list__unlink(qlist *q, lnode *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        q->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        q->tail = n->prev;
    q->count -= n->count;
    q->mem -= node__mem(n);
}

/* Replace node `at` by nodes holding elems (split at the node size; none
 * when n == 0). elems may point into `at`: it is freed last. */
static void list__replace(qlist *q, lnode *at, const kv_slice *elems, size_t n)
{
    lnode *prev = at->prev;
    list__unlink(q, at);
    size_t i = 0;
    while (i < n) {
        size_t j = i, bytes = 0;
        do {
            bytes += kv_packed_size(elems[j].len);
            j++;
        } while (j < n && j - i < q->node_count &&
                 bytes + kv_packed_size(elems[j].len) <= q->node_bytes);
        lnode *node = node__build(elems + i, j - i);
        list__link_after(q, prev, node);
        prev = node;
        i = j;
    }
    free(at);
}

/* The node holding 0-based position idx, and idx's rank inside it. */
static lnode *list__find(const qlist *q, uint64_t idx, uint32_t *rank)
{
    if (idx < q->count / 2) {
        for (lnode *n = q->head; n; n = n->next) {
            if (idx < n->count) {
                *rank = (uint32_t)idx;
                return n;
            }
            idx -= n->count;
        }
    } else {
        uint64_t from_tail = q->count - 1 - idx;
        for (lnode *n = q->tail; n; n = n->prev) {
            if (from_tail < n->count) {
                *rank = n->count - 1 - (uint32_t)from_tail;
                return n;
            }
            from_tail -= n->count;
        }
    }
    return NULL;
}

/* A Redis index as a 0-based position; false when out of range. */
static bool list__position(const qlist *q, int64_t index, uint64_t *pos)
{
    if (index < 0) index += (int64_t)q->count;
    if (index < 0 || (uint64_t)index >= q->count) return false;
    *pos = (uint64_t)index;
    return true;
}

/* ---- the list ----------------------------------------------------------------- */

#define LIST_ACCOUNT_BEGIN(ks, e) (ks)->mem_bytes -= kv_entry_mem_bytes(e)
#define LIST_ACCOUNT_END(ks, e) (ks)->mem_bytes += kv_entry_mem_bytes(e)

void kv_list_init(kv_keyspace *ks, kv_entry *e)
{
    LIST_ACCOUNT_BEGIN(ks, e);
    qlist *q = xcalloc(1, sizeof(*q));
    q->mem = kv_alloc_size(sizeof(*q));
    kv_limit_list_node(&ks->limits, &q->node_bytes, &q->node_count);
    e->value = (char *)(void *)q;
    e->value_len = 0;
    e->type = KV_TYPE_LIST;
    e->encoding = KV_ENC_QUICKLIST;
    LIST_ACCOUNT_END(ks, e);
}

uint64_t kv_list_len(const kv_entry *e)
{
    return list__of(e)->count;
}

void kv_list_stats(const kv_entry *e, kv_list_node_stats *st)
{
    memset(st, 0, sizeof(*st));
    for (const lnode *n = list__of(e)->head; n; n = n->next) {
        st->nodes++;
        if (n->count > st->most_elements) st->most_elements = n->count;
        if (n->bytes > st->most_bytes) {
            st->most_bytes = n->bytes;
            st->most_bytes_elements = n->count;
        }
    }
}

size_t kv_list_mem(const void *list)
{
    return ((const qlist *)list)->mem;
}

void kv_list_free(void *list)
{
    qlist *q = list;
    if (!q) return;
    for (lnode *n = q->head, *next; n; n = next) {
        next = n->next;
        free(n);
    }
    free(q);
}

/* Room for `need` more bytes in node n, doubling its allocation up to the
 * node size; the node may move, so it is relinked (count and memory kept
 * right by unlink/link). Returns the node. */
static lnode *list__reserve(qlist *q, lnode *n, size_t need)
{
    if (n->bytes + need <= n->cap) return n;
    lnode *prev = n->prev;
    list__unlink(q, n);
    size_t cap = n->cap * 2 > n->bytes + need ? n->cap * 2 : n->bytes + need;
    if (cap > q->node_bytes) cap = q->node_bytes;
    n = xrealloc(n, sizeof(lnode) + cap);
    n->cap = (uint32_t)cap;
    list__link_after(q, prev, n);
    return n;
}

void kv_list_push(kv_keyspace *ks, kv_entry *e, kv_slice v, bool head)
{
    LIST_ACCOUNT_BEGIN(ks, e);
    qlist *q = list__writable(ks, e);
    lnode *end = head ? q->head : q->tail;
    size_t need = kv_packed_size(v.len);
    if (end && end->count < q->node_count && end->bytes + need <= q->node_bytes) {
        /* In place at either end: a head push moves the node's bytes up
         * once, as Redis' listpack insert does (rebuilding the node from
         * its elements cost LPUSH a third of its speed). */
        end = list__reserve(q, end, need);
        if (head) memmove(end->data + need, end->data, end->bytes);
        kv_packed_put(end->data + (head ? 0 : end->bytes), v);
        end->bytes += (uint32_t)need;
        end->count++;
        q->count++;
    } else {
        lnode *n = node__build(&v, 1);
        list__link_after(q, head ? NULL : q->tail, n);
    }
    LIST_ACCOUNT_END(ks, e);
}

bool kv_list_pop(kv_keyspace *ks, kv_entry *e, bool head, buf *out)
{
    qlist *q = list__of(e);
    lnode *n = head ? q->head : q->tail;
    if (!n) return false;
    LIST_ACCOUNT_BEGIN(ks, e);
    uint32_t at = 0;
    kv_slice v;
    if (!head) /* the last element's offset */
        for (uint32_t i = 0; i + 1 < n->count; i++) at += kv_packed_get(n->data + at, &v);
    uint32_t gap = kv_packed_get(n->data + at, &v);
    buf_append(out, v.ptr, v.len);
    if (n->count == 1) {
        list__unlink(q, n);
        free(n);
    } else {
        if (head) memmove(n->data, n->data + gap, n->bytes - gap);
        n->bytes -= gap;
        n->count--;
        q->count--;
    }
    LIST_ACCOUNT_END(ks, e);
    return true;
}

bool kv_list_index(const kv_entry *e, int64_t index, kv_slice *v)
{
    const qlist *q = list__of(e);
    uint64_t pos;
    uint32_t rank = 0;
    if (!list__position(q, index, &pos)) return false;
    const lnode *n = list__find(q, pos, &rank);
    uint32_t at = 0;
    for (uint32_t i = 0; i < rank; i++) at += kv_packed_get(n->data + at, v);
    kv_packed_get(n->data + at, v);
    return true;
}

/* Rebuild node n with its elements edited by fn (which may change how
 * many there are; the array has room for one more). */
typedef size_t (*list_edit_fn)(kv_slice *elems, size_t n, void *ctx);

static void list__edit_node(qlist *q, lnode *n, list_edit_fn fn, void *ctx)
{
    kv_slice *elems = xmalloc((n->count + 1) * sizeof(kv_slice));
    node__elems(n, elems);
    size_t count = fn(elems, n->count, ctx);
    list__replace(q, n, elems, count);
    free(elems);
}

typedef struct set_edit {
    uint32_t rank;
    kv_slice v;
} set_edit;

static size_t list__set_fn(kv_slice *elems, size_t n, void *ctx)
{
    set_edit *s = ctx;
    elems[s->rank] = s->v;
    return n;
}

bool kv_list_set(kv_keyspace *ks, kv_entry *e, int64_t index, kv_slice v)
{
    qlist *q = list__writable(ks, e);
    uint64_t pos;
    set_edit s = {.v = v};
    if (!list__position(q, index, &pos)) return false;
    LIST_ACCOUNT_BEGIN(ks, e);
    lnode *n = list__find(q, pos, &s.rank);
    list__edit_node(q, n, list__set_fn, &s);
    LIST_ACCOUNT_END(ks, e);
    return true;
}

typedef struct rem_edit {
    kv_slice v;
    int64_t left; /* how many more may go (-1: all) */
    bool from_tail;
    int64_t removed;
} rem_edit;

static bool slice_eq(kv_slice a, kv_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static size_t list__rem_fn(kv_slice *elems, size_t n, void *ctx)
{
    rem_edit *r = ctx;
    bool *drop = xcalloc(n ? n : 1, sizeof(bool));
    for (size_t k = 0; k < n && r->left != 0; k++) {
        size_t i = r->from_tail ? n - 1 - k : k;
        if (!slice_eq(elems[i], r->v)) continue;
        drop[i] = true;
        r->removed++;
        if (r->left > 0) r->left--;
    }
    size_t out = 0;
    for (size_t i = 0; i < n; i++)
        if (!drop[i]) elems[out++] = elems[i];
    free(drop);
    return out;
}

int64_t kv_list_rem(kv_keyspace *ks, kv_entry *e, int64_t count, kv_slice v)
{
    qlist *q = list__writable(ks, e);
    rem_edit r = {.v = v,
                  .left = count == 0  ? -1
                          : count < 0 ? (count == INT64_MIN ? INT64_MAX : -count)
                                      : count,
                  .from_tail = count < 0};
    LIST_ACCOUNT_BEGIN(ks, e);
    for (lnode *n = r.from_tail ? q->tail : q->head, *next; n && r.left != 0; n = next) {
        next = r.from_tail ? n->prev : n->next;
        /* a node without the value is left alone */
        kv_slice *elems = xmalloc(n->count * sizeof(kv_slice));
        node__elems(n, elems);
        bool has = false;
        for (uint32_t i = 0; i < n->count && !has; i++) has = slice_eq(elems[i], v);
        free(elems);
        if (has) list__edit_node(q, n, list__rem_fn, &r);
    }
    LIST_ACCOUNT_END(ks, e);
    return r.removed;
}

typedef struct drop_edit {
    uint32_t first; /* drop elements [first, first + n) */
    uint32_t n;
} drop_edit;

static size_t list__drop_fn(kv_slice *elems, size_t n, void *ctx)
{
    drop_edit *d = ctx;
    memmove(elems + d->first, elems + d->first + d->n, (n - d->first - d->n) * sizeof(kv_slice));
    return n - d->n;
}

/* Remove n elements from one end. */
static void list__drop(qlist *q, uint64_t n, bool head)
{
    while (n) {
        lnode *node = head ? q->head : q->tail;
        if (n >= node->count) {
            n -= node->count;
            list__unlink(q, node);
            free(node);
            continue;
        }
        drop_edit d = {.first = head ? 0 : node->count - (uint32_t)n, .n = (uint32_t)n};
        list__edit_node(q, node, list__drop_fn, &d);
        n = 0;
    }
}

void kv_list_trim(kv_keyspace *ks, kv_entry *e, int64_t start, int64_t stop)
{
    qlist *q = list__writable(ks, e);
    int64_t len = (int64_t)q->count;
    if (start < 0) start += len;
    if (stop < 0) stop += len;
    if (start < 0) start = 0;
    LIST_ACCOUNT_BEGIN(ks, e);
    if (start > stop || start >= len) {
        list__drop(q, q->count, true);
    } else {
        if (stop >= len) stop = len - 1;
        list__drop(q, (uint64_t)(len - 1 - stop), false);
        list__drop(q, (uint64_t)start, true);
    }
    LIST_ACCOUNT_END(ks, e);
}

typedef struct insert_edit {
    uint32_t at; /* insert before this rank */
    kv_slice v;
} insert_edit;

static size_t list__insert_fn(kv_slice *elems, size_t n, void *ctx)
{
    insert_edit *ins = ctx;
    memmove(elems + ins->at + 1, elems + ins->at, (n - ins->at) * sizeof(kv_slice));
    elems[ins->at] = ins->v;
    return n + 1;
}

bool kv_list_insert(kv_keyspace *ks, kv_entry *e, bool before, kv_slice pivot, kv_slice v)
{
    qlist *q = list__writable(ks, e);
    for (lnode *n = q->head; n; n = n->next) {
        uint32_t at = 0;
        for (uint32_t i = 0; i < n->count; i++) {
            kv_slice cur;
            at += kv_packed_get(n->data + at, &cur);
            if (!slice_eq(cur, pivot)) continue;
            insert_edit ins = {.at = before ? i : i + 1, .v = v};
            LIST_ACCOUNT_BEGIN(ks, e);
            list__edit_node(q, n, list__insert_fn, &ins);
            LIST_ACCOUNT_END(ks, e);
            return true;
        }
    }
    return false;
}

void kv_list_iter_init(kv_list_iter *it, const kv_entry *e, uint64_t from)
{
    memset(it, 0, sizeof(*it));
    const qlist *q = list__of(e);
    if (from >= q->count) return;
    uint32_t rank = 0;
    const lnode *n = list__find(q, from, &rank);
    uint32_t at = 0;
    kv_slice skip;
    for (uint32_t i = 0; i < rank; i++) at += kv_packed_get(n->data + at, &skip);
    it->node = n;
    it->pos = at;
    it->left = n->count - rank;
}

bool kv_list_iter_next(kv_list_iter *it, kv_slice *v)
{
    const lnode *n = it->node;
    while (n && it->left == 0) {
        n = n->next;
        it->node = n;
        it->pos = 0;
        it->left = n ? n->count : 0;
    }
    if (!n) return false;
    it->pos += kv_packed_get(n->data + it->pos, v);
    it->left--;
    return true;
}

void kv_list_walk(const kv_entry *e, bool from_tail, kv_list_visit_fn fn, void *ctx)
{
    const qlist *q = list__of(e);
    if (!from_tail) {
        uint64_t pos = 0;
        for (const lnode *n = q->head; n; n = n->next) {
            uint32_t at = 0;
            for (uint32_t i = 0; i < n->count; i++, pos++) {
                kv_slice v;
                at += kv_packed_get(n->data + at, &v);
                if (!fn(ctx, pos, v)) return;
            }
        }
        return;
    }
    uint64_t pos = q->count;
    for (const lnode *n = q->tail; n; n = n->prev) {
        kv_slice *elems = xmalloc((n->count ? n->count : 1) * sizeof(kv_slice));
        node__elems(n, elems);
        bool more = true;
        for (uint32_t i = n->count; i-- > 0 && more;) more = fn(ctx, --pos, elems[i]);
        free(elems);
        if (!more) return;
    }
}

size_t kv_list_serialized_len(const kv_entry *e)
{
    /* the snapshot's layout: u32 count | count x (u32 len | bytes) */
    const qlist *q = list__of(e);
    size_t n = 4 + 4 * q->count;
    kv_slice v;
    for (const lnode *node = q->head; node; node = node->next) {
        uint32_t at = 0;
        for (uint32_t i = 0; i < node->count; i++) {
            at += kv_packed_get(node->data + at, &v);
            n += v.len;
        }
    }
    return n;
}

bool kv_list_load(kv_keyspace *ks, kv_entry *e, const char *data, size_t len)
{
    if (len < 4) return false;
    uint32_t count = get32(data);
    if (count == 0) return false; /* no empty lists */
    size_t pos = 4;
    for (uint32_t i = 0; i < count; i++) {
        if (len - pos < 4) return false;
        uint32_t n = get32(data + pos);
        pos += 4;
        if (n > len - pos) return false;
        pos += n;
    }
    if (pos != len) return false;
    kv_keyspace_reset_value(ks, e);
    kv_list_init(ks, e);
    pos = 4;
    for (uint32_t i = 0; i < count; i++) {
        kv_slice v = {data + pos + 4, get32(data + pos)};
        kv_list_push(ks, e, v, false);
        pos += 4 + v.len;
    }
    return true;
}
