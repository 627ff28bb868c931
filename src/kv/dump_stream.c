/* dump_stream: streams in DUMP and RESTORE's payload, as Redis' rdb.c
 * writes them (kv/dump.h, kv/dump_internal.h).
 *
 * The object: a count of nodes, each its master ID (16 bytes, big endian
 * ms then seq) and a listpack; the length, the last ID, then (Redis 7.0,
 * RDB_STREAM_LISTPACKS_2) the first ID, the greatest deleted ID and the
 * number of entries ever added; then the consumer groups, each its name,
 * last delivered ID, (7.0) entries read, its pending entries (16-byte ID,
 * delivery time as 8 bytes little endian, delivery count) and its
 * consumers (name, seen time, (7.2) active time, the IDs of the pending
 * entries they own).
 *
 * A node's listpack: the master entry (count of live entries, count of
 * deleted ones, the number of master fields, the fields, 0), then each
 * entry: flags (1 deleted, 2 same fields as the master), the ms and seq
 * differences from the master ID, the number of fields unless flag 2,
 * the fields and values (values only with flag 2), and the number of
 * listpack elements the entry took (to walk backwards).
 *
 * Writing packs the live entries as Redis 7.0's XADD fills nodes: a new
 * node once the current one's listpack bytes plus the entry's field and
 * value bytes reach stream-node-max-bytes (4096) or it holds
 * stream-node-max-entries (100); the first entry's fields are a node's
 * master fields. For a stream built by XADD alone the bytes are Redis'
 * own; where Redis keeps deleted entries as flagged tombstones inside its
 * nodes, cairn writes only the live ones (the same value). */
#include <stdlib.h>
#include <string.h>

#include "kv/dump_internal.h"
#include "kv/listpack.h"
#include "kv/stream.h"
#include "kv/stream_group.h"
#include "util/alloc.h"
#include "util/strconv.h"

#define STREAM_NODE_MAX_BYTES 4096  /* stream-node-max-bytes */
#define STREAM_NODE_MAX_ENTRIES 100 /* stream-node-max-entries */
#define STREAM_FLAG_DELETED 1
#define STREAM_FLAG_SAMEFIELDS 2

/* ---- writing ---------------------------------------------------------------------------- */

static void w__raw_id(buf *out, kv_stream_id id)
{
    unsigned char k[16];
    for (int i = 0; i < 8; i++) {
        k[i] = (unsigned char)(id.ms >> (56 - 8 * i));
        k[8 + i] = (unsigned char)(id.seq >> (56 - 8 * i));
    }
    buf_append(out, k, 16);
}

/* rdbSaveMillisecondTime: 8 bytes, little endian */
static void w__ms(buf *out, int64_t ms)
{
    unsigned char t[8];
    for (int i = 0; i < 8; i++) t[i] = (unsigned char)((uint64_t)ms >> (8 * i));
    buf_append(out, t, 8);
}

static bool same_fields(const kv_stream_entry *a, const kv_stream_entry *b)
{
    uint32_t n = kv_stream_entry_fields(a);
    if (kv_stream_entry_fields(b) != n) return false;
    for (uint32_t i = 0; i < n; i++) {
        kv_slice fa, fb, v;
        kv_stream_entry_field(a, i, &fa, &v);
        kv_stream_entry_field(b, i, &fb, &v);
        if (fa.len != fb.len || (fa.len && memcmp(fa.ptr, fb.ptr, fa.len) != 0)) return false;
    }
    return true;
}

/* The node that starts at entry `from` written into w (master count
 * `count`); returns the position after its last entry. */
static uint64_t w__node(kv_lp_writer *w, const kv_entry *e, uint64_t from, uint64_t count)
{
    uint64_t len = kv_stream_len(e);
    const kv_stream_entry *master = kv_stream_at(e, from);
    kv_stream_id mid = kv_stream_entry_id(master);
    uint32_t nmaster = kv_stream_entry_fields(master);
    kv_lp_writer_reset(w);
    kv_lp_append_int(w, (int64_t)count);
    kv_lp_append_int(w, 0); /* deleted */
    kv_lp_append_int(w, nmaster);
    for (uint32_t i = 0; i < nmaster; i++) {
        kv_slice f, v;
        kv_stream_entry_field(master, i, &f, &v);
        kv_lp_append(w, f.ptr, f.len);
    }
    kv_lp_append_int(w, 0); /* the master entry's end */
    uint64_t i = from;
    for (; i < len; i++) {
        const kv_stream_entry *x = kv_stream_at(e, i);
        uint32_t n = kv_stream_entry_fields(x);
        if (i > from) { /* Redis' streamAppendItem: room in this node? */
            size_t bytes = 0;
            for (uint32_t k = 0; k < n; k++) {
                kv_slice f, v;
                kv_stream_entry_field(x, k, &f, &v);
                bytes += f.len + v.len;
            }
            if (kv_lp_bytes(w) + bytes >= STREAM_NODE_MAX_BYTES ||
                i - from >= STREAM_NODE_MAX_ENTRIES)
                break;
        }
        bool same = same_fields(master, x);
        kv_stream_id id = kv_stream_entry_id(x);
        kv_lp_append_int(w, same ? STREAM_FLAG_SAMEFIELDS : 0);
        kv_lp_append_int(w, (int64_t)(id.ms - mid.ms));
        kv_lp_append_int(w, (int64_t)(id.seq - mid.seq));
        if (!same) kv_lp_append_int(w, n);
        for (uint32_t k = 0; k < n; k++) {
            kv_slice f, v;
            kv_stream_entry_field(x, k, &f, &v);
            if (!same) kv_lp_append(w, f.ptr, f.len);
            kv_lp_append(w, v.ptr, v.len);
        }
        kv_lp_append_int(w, (int64_t)n + 3 + (same ? 0 : n + 1));
    }
    return i;
}

static void w__nodes(buf *out, const kv_entry *e)
{
    uint64_t len = kv_stream_len(e), nodes = 0;
    buf body, key;
    buf_init(&body);
    buf_init(&key);
    kv_lp_writer w;
    kv_lp_writer_init(&w);
    for (uint64_t from = 0; from < len;) {
        /* the node's end first (a count of 1 takes the byte any count up
         * to 100 takes), then the node with its count */
        uint64_t end = w__node(&w, e, from, 1);
        w__node(&w, e, from, end - from);
        buf_reset(&key);
        w__raw_id(&key, kv_stream_entry_id(kv_stream_at(e, from)));
        kv_dump__w_string(&body, key.data + key.off, 16);
        size_t n;
        const char *lp = kv_lp_finish(&w, &n);
        kv_dump__w_string(&body, lp, n);
        nodes++;
        from = end;
    }
    kv_lp_writer_close(&w);
    kv_dump__w_len(out, nodes);
    if (body.len > body.off) buf_append(out, body.data + body.off, body.len - body.off);
    buf_close(&key);
    buf_close(&body);
}

static void w__groups(buf *out, const kv_entry *e)
{
    const kv_sg_set *set = kv_sg_groups(e);
    uint32_t n = set ? set->n : 0;
    kv_dump__w_len(out, n);
    for (uint32_t i = 0; i < n; i++) {
        const kv_sg *g = set->groups[i];
        kv_dump__w_string(out, g->name, g->name_len);
        kv_dump__w_len(out, g->last_id.ms);
        kv_dump__w_len(out, g->last_id.seq);
        kv_dump__w_len(out, (uint64_t)g->entries_read); /* -1: all ones, as Redis */
        kv_dump__w_len(out, g->npel);
        for (uint64_t k = 0; k < g->npel; k++) {
            w__raw_id(out, g->pel[k].id);
            w__ms(out, g->pel[k].delivered_ms);
            kv_dump__w_len(out, g->pel[k].deliveries);
        }
        kv_dump__w_len(out, g->nconsumers);
        for (uint32_t c = 0; c < g->nconsumers; c++) {
            const kv_sg_consumer *con = g->consumers[c];
            kv_dump__w_string(out, con->name, con->name_len);
            w__ms(out, con->seen_ms);
            kv_dump__w_len(out, con->pending);
            for (uint64_t k = 0; k < g->npel; k++)
                if (g->pel[k].owner == con) w__raw_id(out, g->pel[k].id);
        }
    }
}

void kv_dump__w_stream(buf *out, const kv_entry *e)
{
    w__nodes(out, e);
    uint64_t len = kv_stream_len(e);
    kv_stream_id last = kv_stream_last_id(e), md = kv_stream_max_deleted(e);
    kv_stream_id first = len ? kv_stream_entry_id(kv_stream_at(e, 0)) : (kv_stream_id){0, 0};
    kv_dump__w_len(out, len);
    kv_dump__w_len(out, last.ms);
    kv_dump__w_len(out, last.seq);
    kv_dump__w_len(out, first.ms);
    kv_dump__w_len(out, first.seq);
    kv_dump__w_len(out, md.ms);
    kv_dump__w_len(out, md.seq);
    kv_dump__w_len(out, kv_stream_entries_added(e));
    w__groups(out, e);
}

/* ---- reading ---------------------------------------------------------------------------- */

static bool rd__raw_id(kv_dump_rd *r, kv_stream_id *id)
{
    const unsigned char *d;
    if (!kv_dump__bytes(r, 16, &d)) return false;
    id->ms = id->seq = 0;
    for (int i = 0; i < 8; i++) {
        id->ms = id->ms << 8 | d[i];
        id->seq = id->seq << 8 | d[8 + i];
    }
    return true;
}

static bool rd__ms(kv_dump_rd *r, int64_t *ms)
{
    const unsigned char *d;
    if (!kv_dump__bytes(r, 8, &d)) return false;
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--) u = u << 8 | d[i];
    *ms = (int64_t)u;
    return true;
}

static bool rd__id(kv_dump_rd *r, kv_stream_id *id)
{
    return kv_dump__len(r, &id->ms, NULL) && kv_dump__len(r, &id->seq, NULL);
}

/* A listpack element that must be an integer (or, as Redis'
 * lpGetInteger reads it, a string of one). */
static bool lp__int(kv_lp_iter *it, int64_t *v)
{
    kv_lp_elem x;
    if (kv_lp_iter_next(it, &x) != 1) return false;
    if (x.is_int) {
        *v = x.v;
        return true;
    }
    return strconv_parse_i64(x.s, x.len, v);
}

/* A listpack element as a string, appended to strs; its offset and
 * length recorded at at[0], at[1]. */
static bool lp__str(kv_lp_iter *it, buf *strs, size_t *at)
{
    kv_lp_elem x;
    if (kv_lp_iter_next(it, &x) != 1) return false;
    char tmp[32];
    size_t n;
    const char *s = kv_lp_elem_str(&x, tmp, &n);
    at[0] = strs->len;
    at[1] = n;
    buf_append(strs, s, n);
    return true;
}

typedef struct node_reader {
    kv_keyspace *ks;
    kv_entry *e;
    bool have_prev; /* an entry (live or deleted) was read before */
    kv_stream_id prev;
    buf strs; /* the node's master fields, then one entry's strings */
} node_reader;

/* One node's listpack: every live entry appended to the stream. The
 * checks are those of Redis' streamValidateListpackIntegrity (deep) and
 * more: IDs ascending over the whole stream, counts that match. */
static bool rd__node(node_reader *nr, kv_stream_id master, const char *lp, size_t lp_len)
{
    kv_lp_iter it;
    if (!kv_lp_iter_init(&it, lp, lp_len)) return false;
    int64_t count, deleted, nmaster, zero;
    if (!lp__int(&it, &count) || !lp__int(&it, &deleted) || !lp__int(&it, &nmaster) || count < 0 ||
        deleted < 0 || nmaster < 1 || (uint64_t)nmaster > lp_len ||
        (uint64_t)count + (uint64_t)deleted == 0)
        return false;
    buf_reset(&nr->strs);
    size_t *mat = xmalloc(((size_t)nmaster + 1) * 2 * sizeof(size_t));
    bool ok = true;
    for (int64_t i = 0; ok && i < nmaster; i++) ok = lp__str(&it, &nr->strs, &mat[2 * i]);
    ok = ok && lp__int(&it, &zero) && zero == 0;
    size_t master_bytes = nr->strs.len;
    int64_t seen_live = 0, seen_deleted = 0;
    kv_lp_elem x;
    while (ok) {
        int rc = kv_lp_iter_next(&it, &x);
        if (rc == 0) break; /* the end */
        int64_t flags, ms_diff, seq_diff, n, lp_count;
        if (rc < 0 || !(x.is_int ? (flags = x.v, true) : strconv_parse_i64(x.s, x.len, &flags)) ||
            flags < 0 || flags > 3) {
            ok = false;
            break;
        }
        bool same = flags & STREAM_FLAG_SAMEFIELDS;
        ok = lp__int(&it, &ms_diff) && lp__int(&it, &seq_diff);
        if (!ok) break;
        if (same) {
            n = nmaster;
        } else if (!lp__int(&it, &n) || n < 1 || (uint64_t)n > lp_len) {
            ok = false;
            break;
        }
        nr->strs.len = master_bytes;
        /* fields (from the master with flag 2) and values */
        size_t *pairs = xmalloc((size_t)n * 4 * sizeof(size_t));
        for (int64_t k = 0; ok && k < n; k++) {
            if (same) {
                pairs[4 * k] = mat[2 * k];
                pairs[4 * k + 1] = mat[2 * k + 1];
            } else {
                ok = lp__str(&it, &nr->strs, &pairs[4 * k]);
            }
            ok = ok && lp__str(&it, &nr->strs, &pairs[4 * k + 2]);
        }
        ok = ok && lp__int(&it, &lp_count) && lp_count == n + 3 + (same ? 0 : n + 1);
        kv_stream_id id = {master.ms + (uint64_t)ms_diff, master.seq + (uint64_t)seq_diff};
        if (ok && ((nr->have_prev && kv_stream_id_cmp(id, nr->prev) <= 0) ||
                   kv_stream_id_cmp(id, master) < 0))
            ok = false;
        if (ok) {
            nr->have_prev = true;
            nr->prev = id;
            if (flags & STREAM_FLAG_DELETED) {
                seen_deleted++;
            } else {
                seen_live++;
                kv_slice *fv = xmalloc((size_t)n * 2 * sizeof(kv_slice));
                for (int64_t k = 0; k < 2 * n; k++)
                    fv[k] = (kv_slice){nr->strs.data + pairs[2 * k], pairs[2 * k + 1]};
                kv_stream_append(nr->ks, nr->e, id, fv, (uint32_t)n);
                free(fv);
            }
        }
        free(pairs);
    }
    free(mat);
    return ok && seen_live == count && seen_deleted == deleted;
}

/* Streams of RDB_STREAM_LISTPACKS (Redis 5, 6), _2 (7.0) and _3 (7.2). */
bool kv_dump__rd_stream(kv_dump_rd *r, kv_keyspace *ks, kv_entry *e, int rdb_type)
{
    kv_stream_init(ks, e);
    uint64_t nodes;
    if (!kv_dump__len(r, &nodes, NULL)) return false;
    if (nodes > (uint64_t)(r->end - r->p)) return kv_dump__fail(r, KV_DUMP_BAD_DATA);
    node_reader nr = {.ks = ks, .e = e};
    buf_init(&nr.strs);
    buf key, lp;
    buf_init(&key);
    buf_init(&lp);
    bool ok = true;
    kv_stream_id prev_master = {0, 0};
    for (uint64_t i = 0; ok && i < nodes; i++) {
        kv_slice k, l;
        ok = kv_dump__string(r, &key, &k) && k.len == 16;
        if (!ok) break;
        kv_stream_id master = {0, 0};
        for (int b = 0; b < 8; b++) {
            master.ms = master.ms << 8 | (unsigned char)k.ptr[b];
            master.seq = master.seq << 8 | (unsigned char)k.ptr[8 + b];
        }
        ok = (i == 0 || kv_stream_id_cmp(master, prev_master) > 0) && kv_dump__string(r, &lp, &l) &&
             rd__node(&nr, master, l.ptr, l.len);
        prev_master = master;
    }
    buf_close(&key);
    buf_close(&lp);
    buf_close(&nr.strs);
    if (!ok) return kv_dump__fail(r, KV_DUMP_BAD_DATA);
    uint64_t length, added;
    kv_stream_id last, first, md = {0, 0};
    if (!kv_dump__len(r, &length, NULL) || !rd__id(r, &last)) return false;
    if (length != kv_stream_len(e)) return kv_dump__fail(r, KV_DUMP_BAD_DATA);
    if (length && kv_stream_id_cmp(last, kv_stream_last_id(e)) < 0)
        return kv_dump__fail(r, KV_DUMP_BAD_DATA);
    added = length;
    if (rdb_type != RDB_STREAM_LISTPACKS) {
        if (!rd__id(r, &first) || !rd__id(r, &md) || !kv_dump__len(r, &added, NULL)) return false;
        if (added < length || added > INT64_MAX) return kv_dump__fail(r, KV_DUMP_BAD_DATA);
    }
    kv_stream_set_ids(e, last, (int64_t)added, &md);
    uint64_t ngroups;
    if (!kv_dump__len(r, &ngroups, NULL)) return false;
    if (ngroups > (uint64_t)(r->end - r->p)) return kv_dump__fail(r, KV_DUMP_BAD_DATA);
    buf name;
    buf_init(&name);
    for (uint64_t gi = 0; ok && gi < ngroups; gi++) {
        kv_slice gname;
        kv_stream_id glast;
        uint64_t read_u = 0, npel;
        ok = kv_dump__string(r, &name, &gname) && rd__id(r, &glast);
        if (ok && rdb_type != RDB_STREAM_LISTPACKS) ok = kv_dump__len(r, &read_u, NULL);
        ok = ok && kv_dump__len(r, &npel, NULL) && npel <= (uint64_t)(r->end - r->p) / 17;
        if (!ok) break;
        int64_t read =
            rdb_type == RDB_STREAM_LISTPACKS ? kv_sg_estimate_read(e, glast) : (int64_t)read_u;
        if (read < -1) {
            ok = false;
            break;
        }
        kv_sg *g = kv_sg_create(ks, e, gname.ptr, gname.len, glast, read);
        if (!g) { /* a duplicate name */
            ok = false;
            break;
        }
        /* the group's PEL, owners to come: IDs ascending */
        kv_sg_pending *pel = xcalloc(npel ? npel : 1, sizeof(*pel));
        int64_t *owner = xcalloc(npel ? npel : 1, sizeof(*owner));
        for (uint64_t k = 0; ok && k < npel; k++) {
            int64_t t = 0;
            uint64_t count = 0;
            ok = rd__raw_id(r, &pel[k].id) && rd__ms(r, &t) && kv_dump__len(r, &count, NULL) &&
                 (k == 0 || kv_stream_id_cmp(pel[k].id, pel[k - 1].id) > 0);
            pel[k].delivered_ms = t;
            pel[k].deliveries = count;
            owner[k] = -1;
        }
        uint64_t nconsumers;
        ok = ok && kv_dump__len(r, &nconsumers, NULL) && nconsumers <= (uint64_t)(r->end - r->p);
        kv_sg_consumer **cons = ok ? xcalloc(nconsumers ? nconsumers : 1, sizeof(*cons)) : NULL;
        for (uint64_t c = 0; ok && c < nconsumers; c++) {
            kv_slice cname;
            int64_t seen = 0, active = 0;
            uint64_t n;
            ok = kv_dump__string(r, &name, &cname) && rd__ms(r, &seen) &&
                 (rdb_type != RDB_STREAM_LISTPACKS_3 || rd__ms(r, &active)) &&
                 kv_dump__len(r, &n, NULL) && n <= npel;
            if (!ok) break;
            bool created;
            cons[c] = kv_sg_consumer_get(ks, e, g, cname.ptr, cname.len, seen, &created);
            ok = created; /* a duplicate name is malformed */
            cons[c]->seen_ms = seen;
            for (uint64_t k = 0; ok && k < n; k++) {
                kv_stream_id id;
                ok = rd__raw_id(r, &id);
                /* find it in the group's PEL; each has one owner */
                uint64_t lo = 0, hi = npel;
                while (ok && lo < hi) {
                    uint64_t mid = lo + (hi - lo) / 2;
                    if (kv_stream_id_cmp(pel[mid].id, id) < 0)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                ok = ok && lo < npel && kv_stream_id_cmp(pel[lo].id, id) == 0 && owner[lo] < 0;
                if (ok) owner[lo] = (int64_t)c;
            }
        }
        for (uint64_t k = 0; ok && k < npel; k++) {
            if (owner[k] < 0) { /* Redis' deep check: a PEL entry without consumer */
                ok = false;
                break;
            }
            kv_sg_pending *p = kv_sg_pel_add(ks, e, g, cons[owner[k]], pel[k].id, 0);
            p->delivered_ms = pel[k].delivered_ms;
            p->deliveries = pel[k].deliveries;
        }
        free(cons);
        free(pel);
        free(owner);
    }
    buf_close(&name);
    return ok || kv_dump__fail(r, KV_DUMP_BAD_DATA);
}
