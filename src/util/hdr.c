#include "util/hdr.h"

#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

/* Bucket layout: with P = HDR_PRECISION_BITS, a value whose bit length is
 * at most P+1 is its own bucket (0 .. 2^(P+1)-1). A longer value is shifted
 * right by s = bitlen - (P+1), leaving a mantissa in [2^P, 2^(P+1)); its
 * bucket is s * 2^P + mantissa. Consecutive shifts therefore occupy
 * consecutive ranges of 2^P buckets, in value order. */
#define HDR__EXACT_LIMIT (UINT64_C(1) << (HDR_PRECISION_BITS + 1))

void hdr_init(hdr_histogram *h)
{
    h->counts = xcalloc(HDR_BUCKETS, sizeof(*h->counts));
    h->total = 0;
    h->min = UINT64_MAX;
    h->max = 0;
    h->sum = 0;
}

void hdr_close(hdr_histogram *h)
{
    free(h->counts);
    h->counts = NULL;
}

void hdr_reset(hdr_histogram *h)
{
    memset(h->counts, 0, HDR_BUCKETS * sizeof(*h->counts));
    h->total = 0;
    h->min = UINT64_MAX;
    h->max = 0;
    h->sum = 0;
}

uint32_t hdr_bucket_of(uint64_t value)
{
    if (value < HDR__EXACT_LIMIT) return (uint32_t)value;
    unsigned bitlen = 64u - (unsigned)__builtin_clzll(value);
    unsigned shift = bitlen - (HDR_PRECISION_BITS + 1);
    return (uint32_t)((shift << HDR_PRECISION_BITS) + (value >> shift));
}

uint64_t hdr_bucket_low(uint32_t bucket)
{
    if (bucket < HDR__EXACT_LIMIT) return bucket;
    unsigned shift = (bucket >> HDR_PRECISION_BITS) - 1;
    uint64_t mantissa = bucket - ((uint64_t)shift << HDR_PRECISION_BITS);
    return mantissa << shift;
}

uint64_t hdr_bucket_high(uint32_t bucket)
{
    if (bucket < HDR__EXACT_LIMIT) return bucket;
    unsigned shift = (bucket >> HDR_PRECISION_BITS) - 1;
    return hdr_bucket_low(bucket) + ((UINT64_C(1) << shift) - 1);
}

void hdr_record_n(hdr_histogram *h, uint64_t value, uint64_t n)
{
    if (n == 0) return;
    h->counts[hdr_bucket_of(value)] += n;
    h->total += n;
    if (value < h->min) h->min = value;
    if (value > h->max) h->max = value;
    h->sum += (double)value * (double)n;
}

void hdr_record(hdr_histogram *h, uint64_t value)
{
    hdr_record_n(h, value, 1);
}

void hdr_merge(hdr_histogram *dst, const hdr_histogram *src)
{
    if (src->total == 0) return;
    for (uint32_t i = 0; i < HDR_BUCKETS; i++) dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->sum += src->sum;
    if (src->min < dst->min) dst->min = src->min;
    if (src->max > dst->max) dst->max = src->max;
}

uint64_t hdr_percentile(const hdr_histogram *h, double p)
{
    if (h->total == 0) return 0;
    if (!(p > 0)) return h->min;
    if (p >= 100) return h->max;
    /* ceil without libm; the tolerance keeps 99.9% of 1000 at rank 999
     * despite rounding in p / 100 */
    double want = p / 100.0 * (double)h->total;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want - 1e-9) rank++;
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < HDR_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = hdr_bucket_high(i);
            if (v > h->max) v = h->max;
            if (v < h->min) v = h->min;
            return v;
        }
    }
    return h->max;
}

double hdr_mean(const hdr_histogram *h)
{
    return h->total ? h->sum / (double)h->total : 0;
}
