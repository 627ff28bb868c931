/* hdr: a log-bucketed histogram of latencies, in the manner of
 * HdrHistogram.
 *
 * A load generator records one value per request, so recording must cost a
 * few instructions and no allocation, and percentiles must stay accurate
 * from microseconds to minutes. Values below 2^(HDR_PRECISION_BITS+1) are
 * counted exactly; above that each power of two is split into
 * 2^HDR_PRECISION_BITS equal buckets, so a reported value is never more
 * than 1/2^HDR_PRECISION_BITS (0.8%) above the true one. The whole uint64
 * range fits in HDR_BUCKETS counters (about 58 KiB).
 *
 * Units are the caller's (cairnctl bench records nanoseconds). The caller
 * owns the struct; hdr_init/hdr_close bracket its life. Not thread-safe:
 * one histogram per thread, merged afterwards with hdr_merge. */
#ifndef CAIRN_UTIL_HDR_H
#define CAIRN_UTIL_HDR_H

#include <stdint.h>

#define HDR_PRECISION_BITS 7
#define HDR_BUCKETS ((64 - HDR_PRECISION_BITS + 1) << HDR_PRECISION_BITS)

typedef struct hdr_histogram {
    uint64_t *counts; /* HDR_BUCKETS counters, owned */
    uint64_t total;   /* number of recorded values */
    uint64_t min;     /* exact, UINT64_MAX while empty */
    uint64_t max;     /* exact, 0 while empty */
    double sum;       /* for the mean */
} hdr_histogram;

void hdr_init(hdr_histogram *h);
void hdr_close(hdr_histogram *h);
/* Forget every value, keep the allocation. */
void hdr_reset(hdr_histogram *h);

void hdr_record(hdr_histogram *h, uint64_t value);
void hdr_record_n(hdr_histogram *h, uint64_t value, uint64_t n);
/* Add every value of src to dst. */
void hdr_merge(hdr_histogram *dst, const hdr_histogram *src);

/* The value at percentile p (0..100): the highest value that the bucket
 * holding the ceil(p% * total)-th smallest value could contain, clamped
 * to [min, max]. p <= 0 gives min, p >= 100 gives max; 0 while empty. */
uint64_t hdr_percentile(const hdr_histogram *h, double p);
/* Exact mean of the recorded values; 0 while empty. */
double hdr_mean(const hdr_histogram *h);

/* The bucket a value falls in, and the range of values that bucket holds
 * (both bounds inclusive); exposed for tests. */
uint32_t hdr_bucket_of(uint64_t value);
uint64_t hdr_bucket_low(uint32_t bucket);
uint64_t hdr_bucket_high(uint32_t bucket);

#endif
