/* dump: the RDB object codec of DUMP and RESTORE (kv/dump.h). The RDB
 * layouts are those of Redis' rdb.c: lengths in 1, 2, 5 or 9 bytes (big
 * endian past 14 bits), strings as a length and bytes or a special
 * encoding (8, 16 or 32-bit integer, LZF), doubles in binary (little
 * endian) or as a length byte and text. */
#include "kv/dump.h"
#include "kv/dump_internal.h"

#include <limits.h>
#include <lzf.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/hash.h"
#include "kv/list.h"
#include "kv/listpack.h"
#include "kv/set.h"
#include "kv/zset.h"
#include "util/alloc.h"
#include "util/crc64.h"
#include "util/strconv.h"

#define QUICKLIST_PLAIN 1
#define QUICKLIST_PACKED 2
#define DUMP_FOOTER 10
#define RDB_OPCODE_FUNCTION2 245    /* a library: its code as a string (Redis 7.0 GA) */
#define RDB_OPCODE_FUNCTION_PRE 246 /* the 7.0 release candidates' format */
#define LZF_MAX_RATIO 100           /* an LZF back reference of 3 bytes yields at most 264 */

/* ---- writing ---------------------------------------------------------------------------- */

void kv_dump__w_len(buf *b, uint64_t len)
{
    unsigned char c[9];
    size_t n;
    if (len < 1u << 6) {
        c[0] = (unsigned char)len;
        n = 1;
    } else if (len < 1u << 14) {
        c[0] = (unsigned char)(0x40 | (len >> 8));
        c[1] = (unsigned char)(len & 0xff);
        n = 2;
    } else {
        int bytes = len <= UINT32_MAX ? 4 : 8;
        c[0] = bytes == 4 ? RDB_LEN32 : RDB_LEN64;
        for (int i = 0; i < bytes; i++) c[1 + i] = (unsigned char)(len >> (8 * (bytes - 1 - i)));
        n = 1 + (size_t)bytes;
    }
    buf_append(b, c, n);
}

/* A short string that is a canonical integer of at most 32 bits, as
 * rdbTryIntegerEncoding writes it. */
static bool w__int_string(buf *b, const char *s, size_t len)
{
    int64_t v;
    if (len > 11 || !strconv_parse_i64(s, len, &v) || v < INT32_MIN || v > INT32_MAX) return false;
    unsigned char c[5];
    int bytes = v >= -128 && v <= 127 ? 1 : v >= -32768 && v <= 32767 ? 2 : 4;
    c[0] = bytes == 1 ? RDB_ENC_INT8 : bytes == 2 ? RDB_ENC_INT16 : RDB_ENC_INT32;
    for (int i = 0; i < bytes; i++) c[1 + i] = (unsigned char)((uint64_t)v >> (8 * i));
    buf_append(b, c, 1 + (size_t)bytes);
    return true;
}

/* liblzf's compressor keeps its 256 KiB hash table on the stack without
 * clearing it (built with INIT_HTAB 0): an entry left there by an earlier
 * call may, rarely, turn a literal into a back reference. The output
 * always decompresses right, but then DUMP of one value could differ
 * between calls or nodes. Zeroing the stack it is about to use, from the
 * same caller, makes every call start from the empty table Redis' first
 * call sees. */
#define LZF_STACK_BYTES (320 * 1024) /* the table (1 << 16 offsets) and its locals */

static __attribute__((noinline)) void w__clear_lzf_stack(void)
{
    char pad[LZF_STACK_BYTES];
    explicit_bzero(pad, sizeof(pad));
    __asm__ volatile("" : : "r"(pad) : "memory");
}

/* rdbSaveRawString: an integer, else LZF when it saves at least 4 bytes
 * of a string over 20, else the bytes */
void kv_dump__w_string(buf *b, const char *s, size_t len)
{
    if (w__int_string(b, s, len)) return;
    if (len > 20 && len <= UINT_MAX) {
        size_t cap = len - 4;
        char *out = xmalloc(cap + 1);
        w__clear_lzf_stack();
        unsigned int clen = lzf_compress(s, (unsigned int)len, out, (unsigned int)cap);
        if (clen > 0) {
            buf_append_char(b, (char)RDB_ENC_LZF);
            kv_dump__w_len(b, clen);
            kv_dump__w_len(b, len);
            buf_append(b, out, clen);
            free(out);
            return;
        }
        free(out);
    }
    kv_dump__w_len(b, len);
    buf_append(b, s, len);
}

static void w__listpack(buf *b, kv_lp_writer *w)
{
    size_t n;
    const char *lp = kv_lp_finish(w, &n);
    kv_dump__w_string(b, lp, n);
}

/* A zset score in a listpack as Redis 7.0's zzlInsertAt writes it: an
 * integer when the double is one (within half of int64's range), else
 * d2string's text. */
static void w__lp_score(kv_lp_writer *w, double score)
{
    if (score >= (double)(-LLONG_MAX / 2) && score <= (double)(LLONG_MAX / 2) &&
        (double)(long long)score == score) {
        kv_lp_append_int(w, (long long)score);
        return;
    }
    char tmp[64];
    int n = isinf(score) ? snprintf(tmp, sizeof(tmp), "%s", score < 0 ? "-inf" : "inf")
                         : snprintf(tmp, sizeof(tmp), "%.17g", score);
    kv_lp_append(w, tmp, (size_t)n);
}

static void w__hash(buf *out, const kv_entry *e)
{
    kv_hash_iter it;
    kv_slice f, v;
    kv_hash_iter_init(&it, e);
    if (e->encoding == KV_ENC_LISTPACK) {
        buf_append_char(out, RDB_HASH_LISTPACK);
        kv_lp_writer w;
        kv_lp_writer_init(&w);
        while (kv_hash_iter_next(&it, &f, &v)) {
            kv_lp_append(&w, f.ptr, f.len);
            kv_lp_append(&w, v.ptr, v.len);
        }
        w__listpack(out, &w);
        kv_lp_writer_close(&w);
        return;
    }
    buf_append_char(out, RDB_HASH);
    kv_dump__w_len(out, kv_hash_len(e));
    while (kv_hash_iter_next(&it, &f, &v)) {
        kv_dump__w_string(out, f.ptr, f.len);
        kv_dump__w_string(out, v.ptr, v.len);
    }
}

/* Redis 7.0's _quicklistNodeAllowInsert for pushes at the tail: a node
 * takes an element while its listpack, plus the element and 8 bytes (the
 * most an entry's encoding and back length add), stays within the size
 * list-max-listpack-size gives (kv_limit_list_node), and while it holds
 * fewer elements than the count it gives. */
static bool w__node_takes(const kv_lp_writer *w, size_t len, uint32_t max_bytes, uint32_t max_count)
{
    return w->count == 0 || (w->count < max_count && kv_lp_bytes(w) + len + 8 <= max_bytes);
}

static void w__list(buf *out, const kv_limits *lim, const kv_entry *e)
{
    uint32_t max_bytes, max_count;
    kv_limit_list_node(lim, &max_bytes, &max_count);
    buf nodes;
    buf_init(&nodes);
    kv_lp_writer w;
    kv_lp_writer_init(&w);
    uint64_t n = 0;
    kv_list_iter it;
    kv_slice v;
    kv_list_iter_init(&it, e, 0);
    while (kv_list_iter_next(&it, &v)) {
        if (!w__node_takes(&w, v.len, max_bytes, max_count)) {
            kv_dump__w_len(&nodes, QUICKLIST_PACKED);
            w__listpack(&nodes, &w);
            kv_lp_writer_reset(&w);
            n++;
        }
        kv_lp_append(&w, v.ptr, v.len);
    }
    if (w.count) {
        kv_dump__w_len(&nodes, QUICKLIST_PACKED);
        w__listpack(&nodes, &w);
        n++;
    }
    buf_append_char(out, RDB_LIST_QUICKLIST_2);
    kv_dump__w_len(out, n);
    buf_append(out, nodes.data + nodes.off, nodes.len - nodes.off);
    kv_lp_writer_close(&w);
    buf_close(&nodes);
}

static void w__set(buf *out, const kv_entry *e)
{
    kv_set_iter it;
    kv_slice m;
    uint64_t n = kv_set_len(e);
    kv_set_iter_init(&it, e);
    if (e->encoding != KV_ENC_INTSET) {
        buf_append_char(out, RDB_SET);
        kv_dump__w_len(out, n);
        while (kv_set_iter_next(&it, &m)) kv_dump__w_string(out, m.ptr, m.len);
        return;
    }
    /* Redis' intset: the narrowest width for every member, ascending */
    int64_t *vals = xcalloc(n ? n : 1, sizeof(*vals));
    uint32_t width = 2;
    for (uint64_t i = 0; kv_set_iter_next(&it, &m); i++) {
        if (!strconv_parse_i64(m.ptr, m.len, &vals[i])) vals[i] = 0; /* cannot be: an intset */
        if (vals[i] < INT16_MIN || vals[i] > INT16_MAX) width = width < 4 ? 4 : width;
        if (vals[i] < INT32_MIN || vals[i] > INT32_MAX) width = 8;
    }
    size_t len = 8 + n * width;
    unsigned char *blob = xmalloc(len);
    for (int i = 0; i < 4; i++) {
        blob[i] = (unsigned char)(width >> (8 * i));
        blob[4 + i] = (unsigned char)(n >> (8 * i));
    }
    for (uint64_t i = 0; i < n; i++)
        for (uint32_t k = 0; k < width; k++)
            blob[8 + i * width + k] = (unsigned char)((uint64_t)vals[i] >> (8 * k));
    buf_append_char(out, RDB_SET_INTSET);
    kv_dump__w_string(out, (const char *)blob, len);
    free(blob);
    free(vals);
}

static void w__zset(buf *out, const kv_entry *e)
{
    kv_zset_iter it;
    kv_slice m;
    double score;
    if (e->encoding == KV_ENC_LISTPACK) {
        buf_append_char(out, RDB_ZSET_LISTPACK);
        kv_lp_writer w;
        kv_lp_writer_init(&w);
        kv_zset_iter_init(&it, e, 0, false);
        while (kv_zset_iter_next(&it, &m, &score)) {
            kv_lp_append(&w, m.ptr, m.len);
            w__lp_score(&w, score);
        }
        w__listpack(out, &w);
        kv_lp_writer_close(&w);
        return;
    }
    /* highest first, as Redis walks its skiplist from the tail */
    buf_append_char(out, RDB_ZSET_2);
    kv_dump__w_len(out, kv_zset_len(e));
    kv_zset_iter_init(&it, e, 0, true);
    while (kv_zset_iter_next(&it, &m, &score)) {
        kv_dump__w_string(out, m.ptr, m.len);
        uint64_t bits;
        memcpy(&bits, &score, 8);
        unsigned char c[8];
        for (int i = 0; i < 8; i++) c[i] = (unsigned char)(bits >> (8 * i));
        buf_append(out, c, 8);
    }
}

/* The RDB version and the CRC-64 of what was written from start on. */
static void w__footer(buf *out, size_t start)
{
    unsigned char footer[DUMP_FOOTER];
    footer[0] = KV_DUMP_RDB_VERSION & 0xff;
    footer[1] = KV_DUMP_RDB_VERSION >> 8;
    buf_append(out, footer, 2);
    uint64_t crc = crc64(0, out->data + start, out->len - start);
    for (int i = 0; i < 8; i++) footer[i] = (unsigned char)(crc >> (8 * i));
    buf_append(out, footer, 8);
}

void kv_dump_value(const kv_limits *lim, const kv_entry *e, buf *out)
{
    size_t start = out->len;
    switch (e->type) {
    case KV_TYPE_HASH:
        w__hash(out, e);
        break;
    case KV_TYPE_LIST:
        w__list(out, lim, e);
        break;
    case KV_TYPE_SET:
        w__set(out, e);
        break;
    case KV_TYPE_ZSET:
        w__zset(out, e);
        break;
    case KV_TYPE_STREAM:
        buf_append_char(out, RDB_STREAM_LISTPACKS_2);
        kv_dump__w_stream(out, e);
        break;
    default:
        buf_append_char(out, RDB_STRING);
        kv_dump__w_string(out, e->value, e->value_len);
        break;
    }
    w__footer(out, start);
}

void kv_dump_functions(const kv_slice *codes, size_t n, buf *out)
{
    size_t start = out->len;
    for (size_t i = 0; i < n; i++) {
        buf_append_char(out, (char)RDB_OPCODE_FUNCTION2);
        kv_dump__w_string(out, codes[i].ptr, codes[i].len);
    }
    w__footer(out, start);
}

/* ---- reading ---------------------------------------------------------------------------- */

kv_dump_status kv_dump_check(const char *p, size_t len)
{
    if (len < DUMP_FOOTER) return KV_DUMP_BAD_FOOTER;
    const unsigned char *f = (const unsigned char *)p + len - DUMP_FOOTER;
    unsigned version = f[0] | (unsigned)f[1] << 8;
    if (version > KV_DUMP_RDB_VERSION_MAX) return KV_DUMP_BAD_FOOTER;
    uint64_t want = 0;
    for (int i = 7; i >= 0; i--) want = want << 8 | f[2 + i];
    return crc64(0, p, len - 8) == want ? KV_DUMP_OK : KV_DUMP_BAD_FOOTER;
}

typedef kv_dump_rd rd;

bool kv_dump__fail(rd *r, kv_dump_status st)
{
    if (r->err == KV_DUMP_OK) r->err = st;
    return false;
}

bool kv_dump__bytes(rd *r, size_t n, const unsigned char **out)
{
    if ((size_t)(r->end - r->p) < n) return kv_dump__fail(r, KV_DUMP_BAD_DATA);
    *out = r->p;
    r->p += n;
    return true;
}

/* A length, or (*special set) a string's special encoding in *len. */
bool kv_dump__len(rd *r, uint64_t *len, bool *special)
{
    const unsigned char *c;
    if (!kv_dump__bytes(r, 1, &c)) return false;
    if (special) *special = false;
    switch (c[0] >> 6) {
    case 0:
        *len = c[0] & 0x3f;
        return true;
    case 1: {
        const unsigned char *d;
        if (!kv_dump__bytes(r, 1, &d)) return false;
        *len = (uint64_t)(c[0] & 0x3f) << 8 | d[0];
        return true;
    }
    case 3:
        if (!special) return kv_dump__fail(r, KV_DUMP_BAD_DATA);
        *special = true;
        *len = c[0];
        return true;
    default: {
        int bytes = c[0] == RDB_LEN32 ? 4 : c[0] == RDB_LEN64 ? 8 : 0;
        const unsigned char *d;
        if (!bytes || !kv_dump__bytes(r, (size_t)bytes, &d))
            return kv_dump__fail(r, KV_DUMP_BAD_DATA);
        uint64_t v = 0;
        for (int i = 0; i < bytes; i++) v = v << 8 | d[i];
        *len = v;
        return true;
    }
    }
}

/* A count of elements: never 0 (Redis refuses empty collections), never
 * more than the bytes left could hold */
static bool rd__count(rd *r, uint64_t *n)
{
    if (!kv_dump__len(r, n, NULL)) return false;
    if (*n == 0 || *n > (uint64_t)(r->end - r->p)) return kv_dump__fail(r, KV_DUMP_BAD_DATA);
    return true;
}

/* A string: into *out, pointing into the payload or into scratch. */
bool kv_dump__string(rd *r, buf *scratch, kv_slice *out)
{
    uint64_t len;
    bool special;
    if (!kv_dump__len(r, &len, &special)) return false;
    if (!special) {
        const unsigned char *d;
        if (!kv_dump__bytes(r, len, &d)) return false;
        *out = (kv_slice){(const char *)d, (size_t)len};
        return true;
    }
    buf_reset(scratch);
    if (len == RDB_ENC_LZF) {
        uint64_t clen, ulen;
        const unsigned char *d;
        if (!kv_dump__len(r, &clen, NULL) || !kv_dump__len(r, &ulen, NULL) ||
            !kv_dump__bytes(r, clen, &d))
            return false;
        if (ulen > r->max_string) return kv_dump__fail(r, KV_DUMP_TOO_LARGE);
        if (ulen == 0 || clen == 0 || ulen > clen * LZF_MAX_RATIO + 64)
            return kv_dump__fail(r, KV_DUMP_BAD_DATA);
        buf_reserve(scratch, ulen);
        char *dst = scratch->data + scratch->len;
        if (lzf_decompress(d, (unsigned int)clen, dst, (unsigned int)ulen) != ulen)
            return kv_dump__fail(r, KV_DUMP_BAD_DATA);
        scratch->len += ulen;
        *out = (kv_slice){dst, (size_t)ulen};
        return true;
    }
    int bytes = len == RDB_ENC_INT8 ? 1 : len == RDB_ENC_INT16 ? 2 : len == RDB_ENC_INT32 ? 4 : 0;
    const unsigned char *d;
    if (!bytes || !kv_dump__bytes(r, (size_t)bytes, &d)) return kv_dump__fail(r, KV_DUMP_BAD_DATA);
    uint64_t u = 0;
    for (int i = bytes - 1; i >= 0; i--) u = u << 8 | d[i];
    if (bytes < 8 && (u >> (8 * bytes - 1))) u |= ~(uint64_t)0 << (8 * bytes);
    buf_printf(scratch, "%lld", (long long)(int64_t)u);
    *out = (kv_slice){scratch->data + scratch->off, scratch->len - scratch->off};
    return true;
}

/* An old-style text double: a length byte (253 nan, 254 inf, 255 -inf)
 * and that many characters. */
static bool rd__text_double(rd *r, double *out)
{
    const unsigned char *c, *d;
    if (!kv_dump__bytes(r, 1, &c)) return false;
    if (c[0] == 254 || c[0] == 255) {
        *out = c[0] == 254 ? INFINITY : -INFINITY;
        return true;
    }
    if (c[0] == 253 || !kv_dump__bytes(r, c[0], &d) ||
        !kv_zset_parse_score((const char *)d, c[0], out))
        return kv_dump__fail(r, KV_DUMP_BAD_DATA);
    return true;
}

static bool rd__binary_double(rd *r, double *out)
{
    const unsigned char *d;
    if (!kv_dump__bytes(r, 8, &d)) return false;
    uint64_t bits = 0;
    for (int i = 7; i >= 0; i--) bits = bits << 8 | d[i];
    memcpy(out, &bits, 8);
    return isnan(*out) ? kv_dump__fail(r, KV_DUMP_BAD_DATA) : true;
}

/* ---- rebuilding a value: elements go through the types' own writes ---- */

typedef struct sink {
    kv_keyspace *ks;
    kv_entry *e;
    int type;        /* KV_TYPE_* */
    bool have_first; /* hash and zset: the first of a pair is waiting */
    buf first;
    uint64_t n; /* elements taken */
} sink;

/* One element (a field, a value, a member, a score in text, a list
 * element); false: a duplicate, or a score that is not one. */
static bool sink__elem(sink *k, kv_slice v)
{
    k->n++;
    switch (k->type) {
    case KV_TYPE_LIST:
        kv_list_push(k->ks, k->e, v, false);
        return true;
    case KV_TYPE_SET:
        return kv_set_add(k->ks, k->e, v);
    default:
        break;
    }
    if (!k->have_first) {
        buf_reset(&k->first);
        buf_append(&k->first, v.ptr, v.len);
        k->have_first = true;
        return true;
    }
    k->have_first = false;
    kv_slice first = {k->first.data + k->first.off, k->first.len - k->first.off};
    if (k->type == KV_TYPE_HASH) return kv_hash_set(k->ks, k->e, first, v) == 1;
    double score;
    if (!kv_zset_parse_score(v.ptr, v.len, &score)) return false;
    return kv_zset_set(k->ks, k->e, first, score);
}

static bool sink__zset_pair(sink *k, kv_slice member, double score)
{
    k->n += 2;
    return kv_zset_set(k->ks, k->e, member, score);
}

/* Every element of a listpack or ziplist blob into the sink. */
static bool rd__packed(rd *r, sink *k, bool ziplist, bool may_be_empty)
{
    buf scratch;
    buf_init(&scratch);
    kv_slice blob;
    bool ok = kv_dump__string(r, &scratch, &blob);
    kv_lp_iter it;
    if (ok && !(ziplist ? kv_zl_iter_init(&it, blob.ptr, blob.len)
                        : kv_lp_iter_init(&it, blob.ptr, blob.len)))
        ok = kv_dump__fail(r, KV_DUMP_BAD_DATA);
    uint64_t before = k->n;
    kv_lp_elem el;
    int got = 0;
    char tmp[24];
    while (ok && (got = kv_lp_iter_next(&it, &el)) == 1) {
        size_t n;
        const char *s = kv_lp_elem_str(&el, tmp, &n);
        if (!sink__elem(k, (kv_slice){s, n})) ok = kv_dump__fail(r, KV_DUMP_BAD_DATA);
    }
    if (ok && (got < 0 || (!may_be_empty && k->n == before)))
        ok = kv_dump__fail(r, KV_DUMP_BAD_DATA);
    buf_close(&scratch);
    return ok;
}

static bool rd__plain(rd *r, sink *k, uint64_t per_element)
{
    uint64_t n;
    if (!rd__count(r, &n)) return false;
    buf scratch;
    buf_init(&scratch);
    bool ok = true;
    for (uint64_t i = 0; ok && i < n * per_element; i++) {
        kv_slice v;
        ok = kv_dump__string(r, &scratch, &v) &&
             (sink__elem(k, v) || kv_dump__fail(r, KV_DUMP_BAD_DATA));
    }
    buf_close(&scratch);
    return ok;
}

static bool rd__zset_plain(rd *r, sink *k, bool binary)
{
    uint64_t n;
    if (!rd__count(r, &n)) return false;
    buf scratch;
    buf_init(&scratch);
    bool ok = true;
    for (uint64_t i = 0; ok && i < n; i++) {
        kv_slice m;
        double score;
        ok = kv_dump__string(r, &scratch, &m) &&
             (binary ? rd__binary_double(r, &score) : rd__text_double(r, &score)) &&
             (sink__zset_pair(k, m, score) || kv_dump__fail(r, KV_DUMP_BAD_DATA));
    }
    buf_close(&scratch);
    return ok;
}

static bool rd__quicklist(rd *r, sink *k, bool v2)
{
    uint64_t nodes;
    if (!rd__count(r, &nodes)) return false;
    buf scratch;
    buf_init(&scratch);
    bool ok = true;
    for (uint64_t i = 0; ok && i < nodes; i++) {
        uint64_t container = QUICKLIST_PACKED;
        if (v2 && !kv_dump__len(r, &container, NULL)) ok = false;
        if (!ok) break;
        if (container == QUICKLIST_PLAIN) {
            kv_slice v;
            ok = kv_dump__string(r, &scratch, &v) && sink__elem(k, v);
        } else if (container == QUICKLIST_PACKED) {
            ok = rd__packed(r, k, !v2, true);
        } else {
            ok = kv_dump__fail(r, KV_DUMP_BAD_DATA);
        }
    }
    if (ok && k->n == 0) ok = kv_dump__fail(r, KV_DUMP_BAD_DATA);
    buf_close(&scratch);
    return ok;
}

static bool rd__intset(rd *r, sink *k)
{
    buf scratch;
    buf_init(&scratch);
    kv_slice blob;
    uint32_t n = 0;
    bool ok = kv_dump__string(r, &scratch, &blob);
    if (ok && (!kv_intset_check(blob.ptr, blob.len, &n) || n == 0))
        ok = kv_dump__fail(r, KV_DUMP_BAD_DATA);
    for (uint32_t i = 0; ok && i < n; i++) {
        char tmp[24];
        int len = snprintf(tmp, sizeof(tmp), "%lld", (long long)kv_intset_get(blob.ptr, i));
        ok = sink__elem(k, (kv_slice){tmp, (size_t)len}) || kv_dump__fail(r, KV_DUMP_BAD_DATA);
    }
    buf_close(&scratch);
    return ok;
}

static bool rd__object(rd *r, sink *k, int rdb_type)
{
    switch (rdb_type) {
    case RDB_STRING: {
        buf scratch;
        buf_init(&scratch);
        kv_slice v;
        bool ok = kv_dump__string(r, &scratch, &v);
        if (ok) kv_keyspace_set_value(k->ks, k->e, v.ptr, v.len);
        buf_close(&scratch);
        return ok;
    }
    case RDB_LIST:
        return rd__plain(r, k, 1);
    case RDB_LIST_ZIPLIST:
        return rd__packed(r, k, true, false);
    case RDB_LIST_QUICKLIST:
    case RDB_LIST_QUICKLIST_2:
        return rd__quicklist(r, k, rdb_type == RDB_LIST_QUICKLIST_2);
    case RDB_SET:
        return rd__plain(r, k, 1);
    case RDB_SET_INTSET:
        return rd__intset(r, k);
    case RDB_SET_LISTPACK:
        return rd__packed(r, k, false, false);
    case RDB_HASH:
        return rd__plain(r, k, 2);
    case RDB_HASH_ZIPLIST:
    case RDB_HASH_LISTPACK:
    case RDB_ZSET_ZIPLIST:
    case RDB_ZSET_LISTPACK:
        return rd__packed(r, k, rdb_type == RDB_HASH_ZIPLIST || rdb_type == RDB_ZSET_ZIPLIST,
                          false) &&
               (!k->have_first || kv_dump__fail(r, KV_DUMP_BAD_DATA));
    case RDB_ZSET:
    case RDB_ZSET_2:
        return rd__zset_plain(r, k, rdb_type == RDB_ZSET_2);
    case RDB_STREAM_LISTPACKS:
    case RDB_STREAM_LISTPACKS_2:
    case RDB_STREAM_LISTPACKS_3:
        return kv_dump__rd_stream(r, k->ks, k->e, rdb_type);
    default: /* zipmap, modules */
        return kv_dump__fail(r, KV_DUMP_BAD_DATA);
    }
}

static int dump__kv_type(int rdb_type)
{
    switch (rdb_type) {
    case RDB_STRING:
        return KV_TYPE_STRING;
    case RDB_LIST:
    case RDB_LIST_ZIPLIST:
    case RDB_LIST_QUICKLIST:
    case RDB_LIST_QUICKLIST_2:
        return KV_TYPE_LIST;
    case RDB_SET:
    case RDB_SET_INTSET:
    case RDB_SET_LISTPACK:
        return KV_TYPE_SET;
    case RDB_ZSET:
    case RDB_ZSET_2:
    case RDB_ZSET_ZIPLIST:
    case RDB_ZSET_LISTPACK:
        return KV_TYPE_ZSET;
    case RDB_HASH:
    case RDB_HASH_ZIPLIST:
    case RDB_HASH_LISTPACK:
        return KV_TYPE_HASH;
    case RDB_STREAM_LISTPACKS:
    case RDB_STREAM_LISTPACKS_2:
    case RDB_STREAM_LISTPACKS_3:
        return KV_TYPE_STREAM;
    default:
        return -1;
    }
}

bool kv_dump__rd_value(kv_dump_rd *r, kv_keyspace *ks, kv_entry *e, int rdb_type)
{
    int type = dump__kv_type(rdb_type);
    if (type < 0) return kv_dump__fail(r, KV_DUMP_BAD_DATA);
    sink k = {.ks = ks, .e = e, .type = type};
    buf_init(&k.first);
    switch (type) {
    case KV_TYPE_HASH:
        kv_hash_init(ks, e);
        break;
    case KV_TYPE_LIST:
        kv_list_init(ks, e);
        break;
    case KV_TYPE_SET:
        kv_set_init(ks, e);
        break;
    case KV_TYPE_ZSET:
        kv_zset_init(ks, e);
        break;
    default:
        break;
    }
    if (!rd__object(r, &k, rdb_type)) kv_dump__fail(r, KV_DUMP_BAD_DATA);
    if (r->err == KV_DUMP_OK && type == KV_TYPE_STRING && e->value_len > r->max_string)
        r->err = KV_DUMP_TOO_LARGE;
    buf_close(&k.first);
    if (r->err != KV_DUMP_OK) kv_keyspace_reset_value(ks, e);
    return r->err == KV_DUMP_OK;
}

kv_dump_status kv_dump_load(kv_keyspace *ks, kv_entry *e, const char *p, size_t len,
                            uint64_t max_string)
{
    kv_dump_status st = kv_dump_check(p, len);
    if (st != KV_DUMP_OK) return st;
    rd r = {.p = (const unsigned char *)p + 1,
            .end = (const unsigned char *)p + len - DUMP_FOOTER,
            .max_string = max_string && max_string < UINT32_MAX ? max_string : UINT32_MAX};
    if (len == DUMP_FOOTER) return KV_DUMP_BAD_DATA;
    if (kv_dump__rd_value(&r, ks, e, (unsigned char)p[0]) && r.p != r.end) {
        kv_keyspace_reset_value(ks, e); /* trailing bytes */
        r.err = KV_DUMP_BAD_DATA;
    }
    return r.err;
}

kv_dump_status kv_dump_functions_load(const char *p, size_t len, uint64_t max_string,
                                      kv_dump_library_fn each, void *ctx, const char **why)
{
    *why = NULL;
    kv_dump_status st = kv_dump_check(p, len);
    if (st != KV_DUMP_OK) return st;
    rd r = {.p = (const unsigned char *)p,
            .end = (const unsigned char *)p + len - DUMP_FOOTER,
            .max_string = max_string && max_string < UINT32_MAX ? max_string : UINT32_MAX};
    buf scratch;
    buf_init(&scratch);
    while (r.p < r.end) {
        /* Redis' texts for what is not a library */
        unsigned char type = *r.p++;
        if (type == RDB_OPCODE_FUNCTION_PRE) {
            *why = "Pre-GA function format not supported";
        } else if (type != RDB_OPCODE_FUNCTION2) {
            *why = "given type is not a function";
        } else {
            kv_slice code;
            if (!kv_dump__string(&r, &scratch, &code))
                *why = r.err == KV_DUMP_TOO_LARGE ? NULL : "Failed loading library payload";
            else if (!each(ctx, code))
                break;
        }
        if (*why || r.err != KV_DUMP_OK) {
            buf_close(&scratch);
            return r.err == KV_DUMP_TOO_LARGE ? KV_DUMP_TOO_LARGE : KV_DUMP_BAD_DATA;
        }
    }
    buf_close(&scratch);
    return KV_DUMP_OK;
}
