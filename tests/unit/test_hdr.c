/* Tests for util/hdr: the bucket layout (contiguous, ordered, within the
 * promised relative error), percentiles against exact sorted arrays,
 * merging, and the edges (empty, one value, huge values). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "util/hdr.h"

static void test_empty(void **state)
{
    (void)state;
    hdr_histogram h;
    hdr_init(&h);
    assert_int_equal(h.total, 0);
    assert_int_equal(hdr_percentile(&h, 50), 0);
    assert_int_equal(hdr_percentile(&h, 0), 0);
    assert_int_equal(hdr_percentile(&h, 100), 0);
    assert_true(hdr_mean(&h) == 0);
    hdr_close(&h);
}

static void test_small_values_exact(void **state)
{
    (void)state;
    for (uint64_t v = 0; v < 256; v++) {
        assert_int_equal(hdr_bucket_low(hdr_bucket_of(v)), v);
        assert_int_equal(hdr_bucket_high(hdr_bucket_of(v)), v);
    }
    hdr_histogram h;
    hdr_init(&h);
    for (uint64_t v = 1; v <= 100; v++) hdr_record(&h, v);
    assert_int_equal(hdr_percentile(&h, 50), 50);
    assert_int_equal(hdr_percentile(&h, 99), 99);
    assert_int_equal(hdr_percentile(&h, 99.9), 100);
    assert_int_equal(hdr_percentile(&h, 1), 1);
    assert_int_equal(hdr_percentile(&h, 0), 1);
    assert_int_equal(hdr_percentile(&h, 100), 100);
    assert_true(hdr_mean(&h) == 50.5);
    hdr_close(&h);
}

/* Buckets tile the value range: each starts right after the previous one
 * ends, and every value maps into the bucket whose range holds it. */
static void test_buckets_contiguous(void **state)
{
    (void)state;
    for (uint32_t b = 1; b < HDR_BUCKETS; b++) {
        assert_true(hdr_bucket_low(b) == hdr_bucket_high(b - 1) + 1);
        assert_true(hdr_bucket_low(b) <= hdr_bucket_high(b));
        assert_int_equal(hdr_bucket_of(hdr_bucket_low(b)), b);
        assert_int_equal(hdr_bucket_of(hdr_bucket_high(b)), b);
    }
    assert_int_equal(hdr_bucket_of(UINT64_MAX), HDR_BUCKETS - 1);
    assert_true(hdr_bucket_high(HDR_BUCKETS - 1) == UINT64_MAX);
}

static void test_relative_error(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t v = x >> (x & 63);
        uint32_t b = hdr_bucket_of(v);
        uint64_t lo = hdr_bucket_low(b), hi = hdr_bucket_high(b);
        assert_true(lo <= v && v <= hi);
        /* width of a bucket is at most 1/128 of its low bound */
        assert_true(hi - lo <= lo / 128);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Percentiles agree with the exact order statistic within one bucket,
 * and never fall below it (the reported value is the bucket's top). */
static void test_percentiles_match_sorted(void **state)
{
    (void)state;
    enum { N = 20000 };
    uint64_t *v = malloc(N * sizeof(*v));
    hdr_histogram h;
    hdr_init(&h);
    uint64_t x = 12345;
    for (int i = 0; i < N; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        /* a long-tailed distribution: 50us .. ~1s in nanoseconds */
        v[i] = 50000 + ((x >> 33) % 1000) * ((x >> 20) % 7 == 0 ? 1000000 : 300);
        hdr_record(&h, v[i]);
    }
    qsort(v, N, sizeof(*v), cmp_u64);
    const double ps[] = {1, 10, 50, 75, 90, 99, 99.9, 99.99};
    for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
        size_t rank = (size_t)(ps[k] / 100.0 * N + 0.999999);
        uint64_t exact = v[rank - 1];
        uint64_t got = hdr_percentile(&h, ps[k]);
        assert_true(got >= exact);
        assert_true(got - exact <= exact / 128);
    }
    assert_int_equal(hdr_percentile(&h, 100), v[N - 1]);
    assert_int_equal(hdr_percentile(&h, 0), v[0]);
    assert_int_equal(h.min, v[0]);
    assert_int_equal(h.max, v[N - 1]);
    free(v);
    hdr_close(&h);
}

static void test_merge_and_reset(void **state)
{
    (void)state;
    hdr_histogram a, b;
    hdr_init(&a);
    hdr_init(&b);
    hdr_record_n(&a, 1000, 90);
    hdr_record_n(&b, 1000000, 10);
    hdr_merge(&a, &b);
    assert_int_equal(a.total, 100);
    assert_int_equal(a.min, 1000);
    assert_int_equal(a.max, 1000000);
    assert_true(hdr_percentile(&a, 90) <= 1000 + 1000 / 128);
    assert_int_equal(hdr_percentile(&a, 91), 1000000);
    assert_true(hdr_mean(&a) == (90.0 * 1000 + 10.0 * 1000000) / 100);
    hdr_reset(&a);
    assert_int_equal(a.total, 0);
    assert_int_equal(hdr_percentile(&a, 99), 0);
    hdr_record_n(&a, 5, 0); /* n = 0 records nothing */
    assert_int_equal(a.total, 0);
    hdr_merge(&a, &b);
    assert_int_equal(hdr_percentile(&a, 50), 1000000);
    hdr_close(&a);
    hdr_close(&b);
}

static void test_single_huge_value(void **state)
{
    (void)state;
    hdr_histogram h;
    hdr_init(&h);
    hdr_record(&h, UINT64_MAX - 5);
    assert_true(hdr_percentile(&h, 50) == UINT64_MAX - 5);
    assert_true(hdr_percentile(&h, 99.999) == UINT64_MAX - 5);
    hdr_close(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_small_values_exact),
        cmocka_unit_test(test_buckets_contiguous),
        cmocka_unit_test(test_relative_error),
        cmocka_unit_test(test_percentiles_match_sorted),
        cmocka_unit_test(test_merge_and_reset),
        cmocka_unit_test(test_single_huge_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
