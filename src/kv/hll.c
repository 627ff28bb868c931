#include "kv/hll.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

enum { HLL_DENSE = 0, HLL_SPARSE = 1 };
#define HLL_P 14
#define HLL_Q (64 - HLL_P)
#define HLL_MASK (KV_HLL_REGISTERS - 1)
#define VAL_MAX_VALUE 32
#define VAL_MAX_LEN 4
#define ZERO_MAX_LEN 64
#define XZERO_MAX_LEN 16384

/* ---- the hash ------------------------------------------------------------------ */

/* MurmurHash64A (Austin Appleby's, public domain), bytes read little
 * endian as Redis reads them on every machine */
static uint64_t hll__murmur64a(const unsigned char *p, size_t len, uint64_t seed)
{
    const uint64_t m = 0xc6a4a7935bd1e995u;
    const int r = 47;
    uint64_t h = seed ^ ((uint64_t)len * m);
    size_t blocks = len / 8;
    for (size_t i = 0; i < blocks; i++) {
        uint64_t k = 0;
        for (int b = 7; b >= 0; b--) k = k << 8 | p[8 * i + (size_t)b];
        k *= m;
        k ^= k >> r;
        k *= m;
        h ^= k;
        h *= m;
    }
    const unsigned char *tail = p + 8 * blocks;
    size_t rest = len & 7;
    if (rest) {
        for (size_t b = rest; b-- > 0;) h ^= (uint64_t)tail[b] << (8 * b);
        h *= m;
    }
    h ^= h >> r;
    h *= m;
    h ^= h >> r;
    return h;
}

/* The register an element lands in and the value it offers: the run of
 * zeroes above the index bits, plus one (at most Q + 1) */
static unsigned hll__pattern(const char *ele, size_t len, unsigned *index)
{
    uint64_t hash = hll__murmur64a((const unsigned char *)ele, len, 0xadc83b19u);
    *index = (unsigned)(hash & HLL_MASK);
    hash >>= HLL_P;
    hash |= UINT64_C(1) << HLL_Q;
    unsigned count = 1;
    for (uint64_t bit = 1; !(hash & bit); bit <<= 1) count++;
    return count;
}

/* ---- dense registers: 6 bits each, from the least significant bit -------------- */

static unsigned dense__get(const unsigned char *regs, unsigned i)
{
    unsigned byte = i * 6 / 8, fb = i * 6 & 7;
    unsigned v = regs[byte] >> fb;
    if (fb > 2) v |= (unsigned)regs[byte + 1] << (8 - fb);
    return v & 63;
}

static void dense__set(unsigned char *regs, unsigned i, unsigned v)
{
    unsigned byte = i * 6 / 8, fb = i * 6 & 7;
    regs[byte] = (unsigned char)((regs[byte] & ~(63u << fb)) | (v << fb));
    if (fb > 2)
        regs[byte + 1] = (unsigned char)((regs[byte + 1] & ~(63u >> (8 - fb))) | (v >> (8 - fb)));
}

/* ---- sparse opcodes ------------------------------------------------------------- */

static bool op_is_zero(const unsigned char *p)
{
    return (*p & 0xc0) == 0;
}
static bool op_is_xzero(const unsigned char *p)
{
    return (*p & 0xc0) == 0x40;
}
static bool op_is_val(const unsigned char *p)
{
    return (*p & 0x80) != 0;
}
static unsigned op_len(const unsigned char *p) /* registers covered */
{
    if (op_is_zero(p)) return (*p & 0x3fu) + 1;
    if (op_is_xzero(p)) return (((*p & 0x3fu) << 8) | p[1]) + 1;
    return (*p & 0x3u) + 1;
}
static unsigned op_value(const unsigned char *p)
{
    return ((*p >> 2) & 0x1fu) + 1;
}
static size_t op_bytes(const unsigned char *p)
{
    return op_is_xzero(p) ? 2 : 1;
}
static void op_val(unsigned char *p, unsigned value, unsigned len)
{
    *p = (unsigned char)(0x80 | (value - 1) << 2 | (len - 1));
}
/* zeroes, as one ZERO or XZERO; returns the bytes written */
static size_t op_zeroes(unsigned char *p, unsigned len)
{
    if (len <= ZERO_MAX_LEN) {
        *p = (unsigned char)(len - 1);
        return 1;
    }
    p[0] = (unsigned char)(0x40 | (len - 1) >> 8);
    p[1] = (unsigned char)((len - 1) & 0xff);
    return 2;
}

/* ---- the sketch ------------------------------------------------------------------- */

static void hll__reserve(kv_hll *h, size_t extra)
{
    if (h->len + extra <= h->cap) return;
    h->cap = h->len + extra + 64;
    h->p = xrealloc(h->p, h->cap);
}

bool kv_hll_is_hll(const char *v, size_t len)
{
    if (len < KV_HLL_HEADER || memcmp(v, "HYLL", 4) != 0) return false;
    unsigned enc = (unsigned char)v[4];
    if (enc > HLL_SPARSE) return false;
    return enc != HLL_DENSE || len == KV_HLL_DENSE_BYTES;
}

bool kv_hll_is_dense(const char *v)
{
    return (unsigned char)v[4] == HLL_DENSE;
}

void kv_hll_create(kv_hll *h)
{
    h->cap = h->len = KV_HLL_HEADER + 2; /* one XZERO covers all 16384 */
    h->sparse_max = KV_HLL_SPARSE_MAX_BYTES;
    h->p = xcalloc(1, h->cap);
    memcpy(h->p, "HYLL", 4);
    h->p[4] = HLL_SPARSE;
    op_zeroes(h->p + KV_HLL_HEADER, KV_HLL_REGISTERS);
}

void kv_hll_invalidate(kv_hll *h)
{
    h->p[15] |= 0x80;
}

/* Sparse to dense; false when the opcodes do not cover the registers
 * exactly. The header (and its cached cardinality) is kept. */
static bool hll__to_dense(kv_hll *h)
{
    unsigned char *d = xcalloc(1, KV_HLL_DENSE_BYTES);
    memcpy(d, h->p, KV_HLL_HEADER);
    d[4] = HLL_DENSE;
    unsigned idx = 0;
    const unsigned char *p = h->p + KV_HLL_HEADER, *end = h->p + h->len;
    while (p < end) {
        unsigned n = op_len(p);
        if (op_is_val(p))
            for (unsigned k = 0; k < n && idx + k < KV_HLL_REGISTERS; k++)
                dense__set(d + KV_HLL_HEADER, idx + k, op_value(p));
        idx += n;
        p += op_bytes(p);
    }
    if (idx != KV_HLL_REGISTERS || p != end) {
        free(d);
        return false;
    }
    free(h->p);
    h->p = d;
    h->len = h->cap = KV_HLL_DENSE_BYTES;
    return true;
}

static int hll__dense_set(kv_hll *h, unsigned index, unsigned count)
{
    unsigned char *regs = h->p + KV_HLL_HEADER;
    if (dense__get(regs, index) >= count) return 0;
    dense__set(regs, index, count);
    return 1;
}

/* Raise register `index` to `count` in a sparse sketch, as Redis does it
 * (its bytes depend on the path: see the header). 1: raised; 0: it was
 * as high already; -1: corrupt. */
static int hll__sparse_set(kv_hll *h, unsigned index, unsigned count)
{
    if (count > VAL_MAX_VALUE) goto promote;
    hll__reserve(h, 3); /* an XZERO split in three grows by 3 bytes */
    unsigned char *start = h->p + KV_HLL_HEADER, *end = h->p + h->len;
    unsigned char *p = start, *prev = NULL;
    unsigned first = 0, span = 0;
    while (p < end) {
        span = op_len(p);
        if (index <= first + span - 1) break;
        prev = p;
        p += op_bytes(p);
        first += span;
    }
    if (p >= end || span == 0) return -1;
    unsigned char *next = p + op_bytes(p);
    bool is_val = op_is_val(p), is_xzero = op_is_xzero(p);
    unsigned runlen = span;
    if (is_val) {
        if (op_value(p) >= count) return 0;
        if (runlen == 1) {
            op_val(p, count, 1);
            goto merge;
        }
    } else if (!is_xzero && runlen == 1) {
        op_val(p, count, 1);
        goto merge;
    }
    {
        /* split the opcode: what comes before the register, the register,
         * what comes after */
        unsigned char seq[5], *n = seq;
        unsigned last = first + span - 1;
        if (is_val) {
            unsigned cur = op_value(p);
            if (index != first) op_val(n++, cur, index - first);
            op_val(n++, count, 1);
            if (index != last) op_val(n++, cur, last - index);
        } else {
            if (index != first) n += op_zeroes(n, index - first);
            op_val(n++, count, 1);
            if (index != last) n += op_zeroes(n, last - index);
        }
        size_t seqlen = (size_t)(n - seq), oldlen = is_xzero ? 2 : 1;
        if (seqlen > oldlen && h->len + seqlen - oldlen > h->sparse_max) goto promote;
        if (seqlen != oldlen) memmove(p + seqlen, next, (size_t)(end - next));
        memcpy(p, seq, seqlen);
        h->len = h->len + seqlen - oldlen;
        end = h->p + h->len;
    }
merge:
    /* neighbouring VALs of one value merge, looking at up to five opcodes
     * from the one before the change */
    p = prev ? prev : start;
    for (int scan = 5; p < end && scan-- > 0;) {
        if (!op_is_val(p)) {
            p += op_bytes(p);
            continue;
        }
        if (p + 1 < end && op_is_val(p + 1) && op_value(p) == op_value(p + 1)) {
            unsigned len = op_len(p) + op_len(p + 1);
            if (len <= VAL_MAX_LEN) {
                op_val(p + 1, op_value(p), len);
                memmove(p, p + 1, (size_t)(end - p - 1));
                h->len--;
                end--;
                continue; /* the merged one may merge again */
            }
        }
        p++;
    }
    kv_hll_invalidate(h);
    return 1;
promote:
    if (!hll__to_dense(h)) return -1;
    return hll__dense_set(h, index, count);
}

static int hll__set(kv_hll *h, unsigned index, unsigned count)
{
    return h->p[4] == HLL_DENSE ? hll__dense_set(h, index, count)
                                : hll__sparse_set(h, index, count);
}

int kv_hll_add(kv_hll *h, const char *ele, size_t len)
{
    unsigned index, count = hll__pattern(ele, len, &index);
    return hll__set(h, index, count);
}

/* Visit every register's value (sparse: runs); false when corrupt. */
typedef void (*hll_visit)(void *ctx, unsigned index, unsigned n, unsigned value);

static bool hll__walk(const char *v, size_t len, hll_visit fn, void *ctx)
{
    const unsigned char *u = (const unsigned char *)v;
    if (u[4] == HLL_DENSE) {
        for (unsigned i = 0; i < KV_HLL_REGISTERS; i++)
            fn(ctx, i, 1, dense__get(u + KV_HLL_HEADER, i));
        return true;
    }
    unsigned idx = 0;
    const unsigned char *p = u + KV_HLL_HEADER, *end = u + len;
    while (p < end && idx <= KV_HLL_REGISTERS) {
        unsigned n = op_len(p);
        if (idx + n <= KV_HLL_REGISTERS) fn(ctx, idx, n, op_is_val(p) ? op_value(p) : 0);
        idx += n;
        p += op_bytes(p);
    }
    return idx == KV_HLL_REGISTERS && p == end;
}

static void hll__max_visit(void *ctx, unsigned index, unsigned n, unsigned value)
{
    uint8_t *max = ctx;
    for (unsigned k = 0; k < n; k++)
        if (value > max[index + k]) max[index + k] = (uint8_t)value;
}

bool kv_hll_merge_max(uint8_t max[KV_HLL_REGISTERS], const char *v, size_t len)
{
    /* a corrupt sparse sketch may have raised some registers already:
     * the caller drops max then */
    return hll__walk(v, len, hll__max_visit, max);
}

bool kv_hll_raise(kv_hll *h, const uint8_t max[KV_HLL_REGISTERS], bool dense)
{
    if (dense && h->p[4] == HLL_SPARSE && !hll__to_dense(h)) return false;
    for (unsigned i = 0; i < KV_HLL_REGISTERS; i++)
        if (max[i] && hll__set(h, i, max[i]) < 0) return false;
    kv_hll_invalidate(h);
    return true;
}

/* ---- the estimate ------------------------------------------------------------------ */

static double hll__sigma(double x)
{
    if (x == 1.0) return INFINITY;
    double y = 1, z = x, last;
    do {
        x *= x;
        last = z;
        z += x * y;
        y += y;
    } while (last != z);
    return z;
}

static double hll__tau(double x)
{
    if (x == 0.0 || x == 1.0) return 0.0;
    double y = 1.0, z = 1 - x, last;
    do {
        x = sqrt(x);
        last = z;
        y *= 0.5;
        z -= pow(1 - x, 2) * y;
    } while (last != z);
    return z / 3;
}

static uint64_t hll__estimate(const int histo[64])
{
    const double m = KV_HLL_REGISTERS, alpha_inf = 0.721347520444481703680; /* 1 / (2 ln 2) */
    double z = m * hll__tau((m - histo[HLL_Q + 1]) / m);
    for (int j = HLL_Q; j >= 1; j--) {
        z += histo[j];
        z *= 0.5;
    }
    z += m * hll__sigma(histo[0] / m);
    return (uint64_t)llroundl(alpha_inf * m * m / z);
}

static void hll__histo_visit(void *ctx, unsigned index, unsigned n, unsigned value)
{
    (void)index;
    ((int *)ctx)[value & 63] += (int)n;
}

bool kv_hll_count(const char *v, size_t len, uint64_t *out)
{
    const unsigned char *u = (const unsigned char *)v;
    if (!(u[15] & 0x80)) { /* the cache is fresh */
        uint64_t c = 0;
        for (int i = 7; i >= 0; i--) c = c << 8 | u[8 + i];
        *out = c;
        return true;
    }
    int histo[64] = {0};
    if (!hll__walk(v, len, hll__histo_visit, histo)) return false;
    *out = hll__estimate(histo);
    return true;
}

uint64_t kv_hll_count_registers(const uint8_t regs[KV_HLL_REGISTERS])
{
    int histo[64] = {0};
    for (unsigned i = 0; i < KV_HLL_REGISTERS; i++) histo[regs[i] & 63]++;
    return hll__estimate(histo);
}
