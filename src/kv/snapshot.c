#include "kv/snapshot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv/hash.h"
#include "kv/list.h"
#include "kv/set.h"
#include "kv/stream.h"
#include "kv/zset.h"
#include "util/alloc.h"
#include "util/hash.h"

#define SNAP_MAGIC "CAIRNSNP"
#define SNAP_VERSION                                                                               \
    9 /* 5: sets and sorted sets; 6: the encodings' limits; 7: raw strings;                        \
       * 8: streams; 9: FUNCTION libraries */
#define SNAP_HEADER_BYTES 32
#define SNAP_ENTRY_HEADER_BYTES 40
#define SNAP_ENTRY_TYPE_BYTES 2 /* version >= 4: u8 type | u8 encoding */
#define SNAP_CHUNK (64 * 1024)

typedef struct snap_writer {
    kv_snapshot_sink sink;
    void *ctx;
    uint32_t crc;
    size_t used;
    char chunk[SNAP_CHUNK];
} snap_writer;

static int snap__flush(snap_writer *w)
{
    if (!w->used) return 0;
    w->crc = crc32c_update(w->crc, w->chunk, w->used);
    int rv = w->sink(w->ctx, w->chunk, w->used);
    w->used = 0;
    return rv;
}

static int snap__put(snap_writer *w, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        size_t room = SNAP_CHUNK - w->used;
        size_t k = n < room ? n : room;
        memcpy(w->chunk + w->used, c, k);
        w->used += k;
        c += k;
        n -= k;
        if (w->used == SNAP_CHUNK) {
            int rv = snap__flush(w);
            if (rv) return rv;
        }
    }
    return 0;
}

static int snap__put_fn(void *w, const void *p, size_t n)
{
    return snap__put(w, p, n);
}

static void snap__le32(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (char)(v >> (8 * i));
}

static void snap__le64(char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (char)(v >> (8 * i));
}

static uint32_t snap__get32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

static uint64_t snap__get64(const char *p)
{
    return (uint64_t)snap__get32(p) | (uint64_t)snap__get32(p + 4) << 32;
}

int kv_snapshot_write(const kv_store *s, kv_snapshot_sink sink, void *ctx)
{
    /* static: 64 KiB is too much for some thread stacks, and the writer
     * runs at most once at a time per process (in the forked child) */
    static snap_writer w;
    w.sink = sink;
    w.ctx = ctx;
    w.crc = 0;
    w.used = 0;
    char h[SNAP_HEADER_BYTES];
    memcpy(h, SNAP_MAGIC, 8);
    snap__le32(h + 8, SNAP_VERSION);
    snap__le32(h + 12, 0);
    snap__le64(h + 16, s->revision);
    snap__le64(h + 24, kv_keyspace_count(&s->ks));
    int rv = snap__put(&w, h, sizeof(h));
    for (kv_entry *e = kv_keyspace_first(&s->ks); e && !rv; e = kv_keyspace_next(e)) {
        char eh[SNAP_ENTRY_HEADER_BYTES + SNAP_ENTRY_TYPE_BYTES];
        /* a set of listpack or hashtable encoding is written as a hash */
        bool hash = e->type == KV_TYPE_HASH ||
                    (e->type == KV_TYPE_SET && e->encoding != KV_ENC_INTSET),
             list = e->type == KV_TYPE_LIST, zset = e->type == KV_TYPE_ZSET,
             stream = e->type == KV_TYPE_STREAM;
        buf sbuf; /* a stream is serialized first: its length is known then */
        buf_init(&sbuf);
        if (stream) kv_stream_serialize(e, &sbuf);
        size_t vlen = hash     ? kv_hash_serialized_len(e)
                      : list   ? kv_list_serialized_len(e)
                      : zset   ? kv_zset_serialized_len(e)
                      : stream ? sbuf.len
                               : (size_t)e->value_len;
        snap__le32(eh, e->key_len);
        snap__le32(eh + 4, (uint32_t)vlen);
        snap__le64(eh + 8, e->create_rev);
        snap__le64(eh + 16, e->mod_rev);
        snap__le64(eh + 24, e->version);
        snap__le64(eh + 32, (uint64_t)e->expire_ms);
        eh[40] = (char)e->type;
        eh[41] = (char)e->encoding;
        rv = snap__put(&w, eh, sizeof(eh));
        if (!rv) rv = snap__put(&w, kv_entry_key(e), e->key_len);
        if (!rv && hash) {
            rv = kv_hash_serialize(e, snap__put_fn, &w);
        } else if (!rv && zset) {
            /* the serialized layout, from either encoding (allocating nothing) */
            char n[12];
            snap__le32(n, (uint32_t)kv_zset_len(e));
            rv = snap__put(&w, n, 4);
            kv_zset_iter it;
            kv_slice m;
            double score;
            kv_zset_iter_init(&it, e, 0, false);
            while (!rv && kv_zset_iter_next(&it, &m, &score)) {
                kv_zset_entry_header(n, score, (uint32_t)m.len);
                rv = snap__put(&w, n, 12);
                if (!rv && m.len) rv = snap__put(&w, m.ptr, m.len);
            }
        } else if (!rv && list) {
            char n[4];
            snap__le32(n, (uint32_t)kv_list_len(e));
            rv = snap__put(&w, n, 4);
            kv_list_iter it;
            kv_slice v;
            kv_list_iter_init(&it, e, 0);
            while (!rv && kv_list_iter_next(&it, &v)) {
                snap__le32(n, (uint32_t)v.len);
                rv = snap__put(&w, n, 4);
                if (!rv && v.len) rv = snap__put(&w, v.ptr, v.len);
            }
        } else if (!rv && stream) {
            rv = snap__put(&w, sbuf.data, sbuf.len);
        } else if (!rv && e->value_len) {
            rv = snap__put(&w, e->value, e->value_len);
        }
        buf_close(&sbuf);
    }
    if (!rv) {
        char m[4];
        snap__le32(m, s->n_members);
        rv = snap__put(&w, m, 4);
    }
    for (unsigned i = 0; i < s->n_members && !rv; i++) {
        const kv_member *mb = &s->members[i];
        char hdr[8];
        snap__le64(hdr, mb->id);
        uint16_t hl = (uint16_t)strlen(mb->http), rl = (uint16_t)strlen(mb->resp);
        char l[2] = {(char)(hl & 0xff), (char)(hl >> 8)};
        char l2[2] = {(char)(rl & 0xff), (char)(rl >> 8)};
        rv = snap__put(&w, hdr, 8);
        if (!rv) rv = snap__put(&w, l, 2);
        if (!rv) rv = snap__put(&w, mb->http, hl);
        if (!rv) rv = snap__put(&w, l2, 2);
        if (!rv) rv = snap__put(&w, mb->resp, rl);
    }
    if (!rv) {
        char m[4];
        snap__le32(m, s->dedup.count);
        rv = snap__put(&w, m, 4);
    }
    for (uint32_t i = 0; i < s->dedup.count && !rv; i++) {
        const kv_dedup_entry *e = kv_dedup_at(&s->dedup, i);
        char h[1 + KV_DEDUP_KEY_MAX + 4 + 40];
        size_t n = 0;
        h[n++] = (char)e->key_len;
        memcpy(h + n, e->key, e->key_len);
        n += e->key_len;
        snap__le32(h + n, e->status);
        n += 4;
        snap__le64(h + n, (uint64_t)e->integer);
        snap__le64(h + n + 8, e->revision);
        snap__le64(h + n + 16, e->create_rev);
        snap__le64(h + n + 24, e->mod_rev);
        snap__le64(h + n + 32, e->version);
        n += 40;
        rv = snap__put(&w, h, n);
    }
    if (!rv) {
        char l[4 + 8 * KV_LIMIT_COUNT_];
        snap__le32(l, KV_LIMIT_COUNT_);
        for (int i = 0; i < KV_LIMIT_COUNT_; i++) snap__le64(l + 4 + 8 * i, s->ks.limits.v[i]);
        rv = snap__put(&w, l, sizeof(l));
    }
    if (!rv) {
        char n[4];
        snap__le32(n, s->functions.n);
        rv = snap__put(&w, n, 4);
    }
    for (uint32_t i = 0; i < s->functions.n && !rv; i++) {
        const kv_library *lib = &s->functions.libs[i];
        char n[4];
        snap__le32(n, lib->name_len);
        rv = snap__put(&w, n, 4);
        if (!rv) rv = snap__put(&w, lib->name, lib->name_len);
        snap__le32(n, lib->code_len);
        if (!rv) rv = snap__put(&w, n, 4);
        if (!rv) rv = snap__put(&w, lib->code, lib->code_len);
        snap__le32(n, lib->nfn);
        if (!rv) rv = snap__put(&w, n, 4);
        for (uint32_t k = 0; k < lib->nfn && !rv; k++) {
            snap__le32(n, (uint32_t)lib->fnames[k].len);
            rv = snap__put(&w, n, 4);
            if (!rv) rv = snap__put(&w, lib->fnames[k].ptr, lib->fnames[k].len);
        }
    }
    if (!rv) rv = snap__flush(&w);
    if (!rv) {
        char t[4];
        snap__le32(t, w.crc);
        rv = sink(ctx, t, 4);
    }
    return rv;
}

int kv_snapshot_sink_fd(void *ctx, const void *p, size_t n)
{
    int fd = *(int *)ctx;
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

int kv_snapshot_sink_buf(void *ctx, const void *p, size_t n)
{
    buf_append((buf *)ctx, p, n);
    return 0;
}

#define SNAP_LOOKAHEAD 8

/* Prefetch the bucket of the entry at pos and return the position of the
 * next one; returns end once the data runs out or does not parse. */
static size_t snap__prefetch(const kv_keyspace *ks, const char *data, size_t end, size_t pos,
                             size_t header)
{
    if (end - pos < header) return end;
    uint64_t klen = snap__get32(data + pos), vlen = snap__get32(data + pos + 4);
    pos += header;
    if (klen + vlen > end - pos) return end;
    kv_keyspace_prefetch(ks, data + pos, klen);
    return pos + klen + vlen;
}

/* The libraries' table (version 9): u32 n, n x (u32 len | name | u32 len |
 * code | u32 nfn | nfn x (u32 len | function name)). */
static int snap__functions(const char *data, size_t end, size_t *at, kv_functions *f)
{
    size_t pos = *at;
    if (end - pos < 4) return -1;
    uint32_t n = snap__get32(data + pos);
    pos += 4;
    if (n > KV_FUNCTIONS_MAX_LIBRARIES) return -1;
    int rc = 0;
    kv_slice *fn = xcalloc(KV_FUNCTIONS_MAX_PER_LIBRARY, sizeof(*fn));
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        kv_slice part[2];
        for (int k = 0; k < 2 && rc == 0; k++) {
            uint32_t l = end - pos >= 4 ? snap__get32(data + pos) : UINT32_MAX;
            if (l == UINT32_MAX || end - pos - 4 < l)
                rc = -1;
            else {
                part[k] = (kv_slice){data + pos + 4, l};
                pos += 4 + (size_t)l;
            }
        }
        uint32_t nfn = rc == 0 && end - pos >= 4 ? snap__get32(data + pos) : UINT32_MAX;
        if (nfn > KV_FUNCTIONS_MAX_PER_LIBRARY)
            rc = -1;
        else
            pos += 4;
        for (uint32_t k = 0; k < nfn && rc == 0; k++) {
            uint32_t l = end - pos >= 4 ? snap__get32(data + pos) : UINT32_MAX;
            if (l == UINT32_MAX || end - pos - 4 < l)
                rc = -1;
            else {
                fn[k] = (kv_slice){data + pos + 4, l};
                pos += 4 + (size_t)l;
            }
        }
        kv_slice clash;
        if (rc == 0 &&
            kv_functions_add(f, part[0], part[1], fn, nfn, false, &clash) != KV_FUNCTIONS_ADDED)
            rc = -1;
    }
    free(fn);
    *at = pos;
    return rc;
}

int kv_snapshot_load(kv_store *s, const char *data, size_t len, char *err, size_t errlen)
{
    if (len < SNAP_HEADER_BYTES + 4 || memcmp(data, SNAP_MAGIC, 8) != 0) {
        snprintf(err, errlen, "not a cairn snapshot (bad magic or %zu bytes too short)", len);
        return -1;
    }
    uint32_t want = snap__get32(data + len - 4);
    uint32_t got = crc32c_update(0, data, len - 4);
    if (want != got) {
        snprintf(err, errlen,
                 "snapshot checksum mismatch (stored %08x, computed %08x over %zu bytes)", want,
                 got, len - 4);
        return -1;
    }
    uint32_t version = snap__get32(data + 8);
    if (version < 1 || version > SNAP_VERSION) {
        snprintf(err, errlen, "unsupported snapshot version %u", version);
        return -1;
    }
    uint64_t revision = snap__get64(data + 16);
    uint64_t count = snap__get64(data + 24);
    size_t end = len - 4, pos = SNAP_HEADER_BYTES;

    kv_keyspace ks;
    kv_keyspace_init(&ks, s->ks.seed);
    /* the count is not trusted for allocation beyond what the data can hold */
    kv_keyspace_reserve(
        &ks, count < (len / SNAP_ENTRY_HEADER_BYTES) ? count : len / SNAP_ENTRY_HEADER_BYTES);
    kv_entry *tail[KV_SKIPLIST_MAX_LEVEL] = {0};
    kv_entry *prev = NULL;
    alloc_heap_prefault pf = {0};
    /* A second cursor walks SNAP_LOOKAHEAD entries ahead and prefetches
     * their hash buckets, so that linking each entry does not wait for a
     * cache miss. It only reads what it has bounds-checked; the main loop
     * still validates everything. */
    size_t header = SNAP_ENTRY_HEADER_BYTES + (version >= 4 ? SNAP_ENTRY_TYPE_BYTES : 0);
    size_t ahead = pos;
    for (uint64_t i = 0; i < count && i < SNAP_LOOKAHEAD; i++)
        ahead = snap__prefetch(&ks, data, end, ahead, header);
    for (uint64_t i = 0; i < count; i++) {
        if (i + SNAP_LOOKAHEAD < count) ahead = snap__prefetch(&ks, data, end, ahead, header);
        if (end - pos < header) {
            snprintf(err, errlen, "snapshot entry %llu header past the end at offset %zu",
                     (unsigned long long)i, pos);
            goto fail;
        }
        const char *eh = data + pos;
        uint32_t klen = snap__get32(eh), vlen = snap__get32(eh + 4);
        int type = version >= 4 ? (unsigned char)eh[40] : KV_TYPE_STRING;
        int encoding = version >= 4 ? (unsigned char)eh[41] : KV_ENC_RAW;
        pos += header;
        if ((type == KV_TYPE_STRING && encoding != KV_ENC_RAW &&
             (version < 7 || (encoding != KV_ENC_STR_RAW && encoding != KV_ENC_STR_EMBSTR))) ||
            (type == KV_TYPE_LIST && encoding != KV_ENC_QUICKLIST) ||
            ((type == KV_TYPE_SET || type == KV_TYPE_ZSET) && version < 5) ||
            (type == KV_TYPE_STREAM && (version < 8 || encoding != KV_ENC_STREAM)) ||
            type >= KV_TYPE_MAX_) {
            snprintf(err, errlen, "snapshot entry %llu has unknown type %d/%d at offset %zu",
                     (unsigned long long)i, type, encoding, pos);
            goto fail;
        }
        /* the empty key is a valid key (the store accepts it, as Redis
         * does); the order check below still allows it only first */
        if ((uint64_t)klen + vlen > end - pos) {
            snprintf(err, errlen, "snapshot entry %llu body invalid at offset %zu",
                     (unsigned long long)i, pos);
            goto fail;
        }
        const char *key = data + pos;
        if (prev) {
            size_t n = prev->key_len < klen ? prev->key_len : klen;
            int c = memcmp(kv_entry_key(prev), key, n);
            if (c > 0 || (c == 0 && prev->key_len >= klen)) {
                snprintf(err, errlen, "snapshot keys out of order at offset %zu", pos);
                goto fail;
            }
        }
        bool string = type == KV_TYPE_STRING;
        kv_entry *e = kv_keyspace_append_sorted(&ks, tail, key, klen, string ? key + klen : NULL,
                                                string ? vlen : 0);
        if (string) e->encoding = (uint8_t)encoding; /* raw after APPEND and the like */
        alloc_heap_prefault_step(&pf);
        if ((type == KV_TYPE_HASH && !kv_hash_load(&ks, e, encoding, key + klen, vlen)) ||
            (type == KV_TYPE_LIST && !kv_list_load(&ks, e, key + klen, vlen)) ||
            (type == KV_TYPE_SET && !kv_set_load(&ks, e, encoding, key + klen, vlen)) ||
            (type == KV_TYPE_ZSET && !kv_zset_load(&ks, e, encoding, key + klen, vlen)) ||
            (type == KV_TYPE_STREAM && !kv_stream_load(&ks, e, key + klen, vlen))) {
            snprintf(err, errlen, "snapshot entry %llu is not a well-formed %s at offset %zu",
                     (unsigned long long)i, kv_type_name(type), pos);
            goto fail;
        }
        e->create_rev = snap__get64(eh + 8);
        e->mod_rev = snap__get64(eh + 16);
        e->version = snap__get64(eh + 24);
        kv_keyspace_set_expire(&ks, e, (int64_t)snap__get64(eh + 32));
        pos += (size_t)klen + vlen;
        prev = e;
    }
    kv_member members[KV_MAX_MEMBERS];
    uint32_t n_members = 0;
    if (version >= 2) {
        if (end - pos < 4 || (n_members = snap__get32(data + pos)) > KV_MAX_MEMBERS) {
            snprintf(err, errlen, "snapshot member table invalid at offset %zu", pos);
            goto fail;
        }
        pos += 4;
        memset(members, 0, sizeof(members));
        for (uint32_t i = 0; i < n_members; i++) {
            if (end - pos < 10) goto bad_member;
            members[i].id = snap__get64(data + pos);
            pos += 8;
            if (members[i].id == 0) goto bad_member;
            for (uint32_t k = 0; k < i; k++)
                if (members[k].id == members[i].id) goto bad_member;
            for (int f = 0; f < 2; f++) {
                if (end - pos < 2) goto bad_member;
                size_t l = (size_t)(unsigned char)data[pos] | (size_t)(unsigned char)data[pos + 1]
                                                                  << 8;
                pos += 2;
                if (l >= KV_ADDR_MAX || end - pos < l || memchr(data + pos, 0, l)) goto bad_member;
                memcpy(f == 0 ? members[i].http : members[i].resp, data + pos, l);
                pos += l;
            }
        }
    }
    kv_dedup dedup;
    kv_dedup_init(&dedup, s->dedup.seed);
    if (version >= 3) {
        uint32_t n_dedup;
        if (end - pos < 4 || (n_dedup = snap__get32(data + pos)) > KV_DEDUP_CAPACITY) {
            snprintf(err, errlen, "snapshot dedup table invalid at offset %zu", pos);
            goto fail;
        }
        pos += 4;
        for (uint32_t i = 0; i < n_dedup; i++) {
            kv_dedup_entry e;
            memset(&e, 0, sizeof(e));
            if (end - pos < 1) goto bad_dedup;
            e.key_len = (uint8_t)data[pos++];
            if (e.key_len == 0 || e.key_len > KV_DEDUP_KEY_MAX ||
                end - pos < (size_t)e.key_len + 44)
                goto bad_dedup;
            memcpy(e.key, data + pos, e.key_len);
            pos += e.key_len;
            e.status = snap__get32(data + pos);
            e.integer = (int64_t)snap__get64(data + pos + 4);
            e.revision = snap__get64(data + pos + 12);
            e.create_rev = snap__get64(data + pos + 20);
            e.mod_rev = snap__get64(data + pos + 28);
            e.version = snap__get64(data + pos + 36);
            pos += 44;
            if (kv_dedup_find(&dedup, e.key, e.key_len)) goto bad_dedup;
            kv_dedup_put(&dedup, &e);
        }
    }
    if (version >= 6) {
        /* limits are only ever added at the end: a table of fewer is an
         * older binary's, and the limits it lacks keep their defaults */
        uint32_t n = end - pos >= 4 ? snap__get32(data + pos) : 0;
        if (n < 1 || n > KV_LIMIT_COUNT_ || end - pos < 4 + 8 * (size_t)n) {
            snprintf(err, errlen, "snapshot limits table invalid at offset %zu", pos);
            kv_dedup_close(&dedup);
            goto fail;
        }
        for (uint32_t i = 0; i < n; i++) ks.limits.v[i] = snap__get64(data + pos + 4 + 8 * i);
        pos += 4 + 8 * (size_t)n;
    }
    kv_functions funcs;
    kv_functions_init(&funcs);
    if (version >= 9 && snap__functions(data, end, &pos, &funcs) != 0) {
        snprintf(err, errlen, "snapshot function library invalid at offset %zu", pos);
        kv_functions_close(&funcs);
        kv_dedup_close(&dedup);
        goto fail;
    }
    if (pos != end) {
        snprintf(err, errlen, "snapshot has %zu trailing bytes at offset %zu", end - pos, pos);
        kv_functions_close(&funcs);
        kv_dedup_close(&dedup);
        goto fail;
    }
    kv_store_replace(s, &ks, revision);
    kv_dedup_close(&s->dedup);
    s->dedup = dedup;
    funcs.gen = s->functions.gen + 1; /* every node reloads its interpreter's functions */
    kv_functions_close(&s->functions);
    s->functions = funcs;
    memcpy(s->members, members, sizeof(kv_member) * n_members);
    s->n_members = n_members;
    return 0;
bad_dedup:
    snprintf(err, errlen, "snapshot dedup entry invalid at offset %zu", pos);
    kv_dedup_close(&dedup);
    goto fail;
bad_member:
    snprintf(err, errlen, "snapshot member entry invalid at offset %zu", pos);
fail:
    kv_keyspace_close(&ks);
    return -1;
}
