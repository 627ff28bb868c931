/* kv/geo: scores and positions, distances, the search against a brute
 * force walk over every member, and the query's log encoding. (That the
 * digits equal Redis' is test_resp_geo.py's part.) */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "kv/geo.h"
#include "kv/zset.h"
#include "unit_rand.h"

static double uniform(uint64_t *seed, double lo, double hi)
{
    return lo + (hi - lo) * (double)(unit_rand(seed) >> 11) / (double)(UINT64_C(1) << 53);
}

static void test_positions_round_trip(void **state)
{
    (void)state;
    uint64_t seed = 3, score;
    for (int i = 0; i < 100000; i++) {
        double lon = uniform(&seed, -180, 180),
               lat = uniform(&seed, KV_GEO_LAT_MIN, KV_GEO_LAT_MAX);
        assert_true(kv_geo_encode(lon, lat, &score));
        assert_true(score < (UINT64_C(1) << 52));
        double lon2, lat2;
        kv_geo_decode(score, &lon2, &lat2);
        /* within half a cell: 360 / 2^26 degrees of longitude */
        assert_true(fabs(lon2 - lon) <= 360.0 / (1 << 26));
        assert_true(fabs(lat2 - lat) <= 171.0 / (1 << 26));
    }
    assert_false(kv_geo_encode(180.1, 0, &score));
    assert_false(kv_geo_encode(0, 85.06, &score));
    char text[12];
    assert_true(kv_geo_encode(13.361389, 38.115556, &score));
    kv_geo_hash_text(score, text);
    assert_string_equal(text, "sqc8b49rny0"); /* Redis' documentation example */
}

static void test_distances(void **state)
{
    (void)state;
    /* Palermo - Catania, Redis' documentation: 166274.1516 m */
    double d = kv_geo_distance(13.361389338970184, 38.115556395496299, 15.087267458438873,
                               37.50266842333162);
    assert_true(fabs(d - 166274.1516) < 0.001);
    assert_true(kv_geo_distance(10, 20, 10, 20) == 0);
    /* one meridian: the latitude difference times the radius */
    assert_true(fabs(kv_geo_distance(5, 0, 5, 1) - 6372797.560856 * M_PI / 180) < 1e-6);
}

typedef struct {
    int n;
} counter;

static bool count_hit(void *ctx, kv_slice m, uint64_t score, double lon, double lat, double dist)
{
    (void)m, (void)score, (void)lon, (void)lat, (void)dist;
    ((counter *)ctx)->n++;
    return true;
}

static void test_search_finds_what_a_full_walk_finds(void **state)
{
    (void)state;
    uint64_t seed = 11;
    kv_keyspace ks;
    kv_keyspace_init(&ks, 1);
    kv_entry *e = kv_keyspace_insert(&ks, "g", 1, NULL, 0);
    kv_zset_init(&ks, e);
    for (int i = 0; i < 4000; i++) {
        double lon = i % 2 ? uniform(&seed, -180, 180) : 179.5 + uniform(&seed, -1, 1);
        double lat = i % 2 ? uniform(&seed, -85, 85) : uniform(&seed, 60, 85);
        if (lon > 180) lon -= 360;
        uint64_t score;
        assert_true(kv_geo_encode(lon, lat, &score));
        char name[16];
        snprintf(name, sizeof(name), "m%d", i);
        kv_zset_set(&ks, e, unit_slice(name), (double)score);
    }
    for (int k = 0; k < 1500; k++) {
        kv_geo_shape s = {.lon = k % 2 ? uniform(&seed, -180, 180) : 179.9,
                          .lat = uniform(&seed, k % 2 ? -85 : 70, 85),
                          .box = k % 3 == 0,
                          .radius = uniform(&seed, 0, k % 5 ? 2e6 : 2e7),
                          .width = uniform(&seed, 0, k % 5 ? 3e6 : 4e7),
                          .height = uniform(&seed, 0, 3e6)};
        counter found = {0};
        kv_geo_search(e, &s, count_hit, &found);
        int want = 0;
        kv_zset_iter it;
        kv_zset_iter_init(&it, e, 0, false);
        kv_slice m;
        double score;
        while (kv_zset_iter_next(&it, &m, &score)) {
            double lon, lat;
            kv_geo_decode((uint64_t)score, &lon, &lat);
            double d = kv_geo_distance(s.lon, s.lat, lon, lat);
            if (!s.box) {
                want += d <= s.radius;
            } else {
                double dlat = 6372797.560856 * fabs(s.lat * M_PI / 180 - lat * M_PI / 180);
                want +=
                    dlat <= s.height / 2 && kv_geo_distance(lon, lat, s.lon, lat) <= s.width / 2;
            }
        }
        if (found.n != want)
            print_message("k=%d lon=%f lat=%f box=%d r=%f w=%f h=%f\n", k, s.lon, s.lat, s.box,
                          s.radius, s.width, s.height);
        assert_int_equal(found.n, want);
    }
    kv_keyspace_close(&ks);
}

static void test_query_encoding(void **state)
{
    (void)state;
    kv_geo_query q = {.shape = {.lon = 1.5, .lat = -2.25, .box = true, .width = 10, .height = 20},
                      .sort = KV_GEO_DESC,
                      .count = 7,
                      .any = true},
                 back;
    char enc[KV_GEO_QUERY_BYTES];
    double to_m;
    kv_geo_query_encode(&q, 1000, enc);
    assert_true(kv_geo_query_decode(enc, sizeof(enc), &back, &to_m));
    assert_true(back.shape.lon == 1.5 && back.shape.lat == -2.25 && back.shape.box);
    assert_true(back.shape.width == 10 && back.shape.height == 20 && to_m == 1000);
    assert_true(back.sort == KV_GEO_DESC && back.count == 7 && back.any);
    assert_false(kv_geo_query_decode(enc, sizeof(enc) - 1, &back, &to_m));
    q.shape.lat = 90; /* past the limits */
    kv_geo_query_encode(&q, 1000, enc);
    assert_false(kv_geo_query_decode(enc, sizeof(enc), &back, &to_m));
    q.shape.lat = 0;
    q.count = 0; /* ANY without COUNT */
    kv_geo_query_encode(&q, 1000, enc);
    assert_false(kv_geo_query_decode(enc, sizeof(enc), &back, &to_m));
    q.count = 1;
    kv_geo_query_encode(&q, NAN, enc);
    assert_false(kv_geo_query_decode(enc, sizeof(enc), &back, &to_m));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_positions_round_trip),
        cmocka_unit_test(test_distances),
        cmocka_unit_test(test_search_finds_what_a_full_walk_finds),
        cmocka_unit_test(test_query_encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
