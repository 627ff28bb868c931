#include "kv/geo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kv/zset.h"
#include "util/alloc.h"

#define GEO_STEP 26 /* 26 bits each: a 52-bit score, exact in a double */
#define EARTH_RADIUS_M 6372797.560856
#define DEG_TO_RAD (M_PI / 180.0)

/* x's bits at the even positions of the result, y's at the odd ones */
static uint64_t geo__interleave(uint32_t x, uint32_t y)
{
    uint64_t r = 0;
    for (int i = 0; i < 32; i++) {
        r |= (uint64_t)((x >> i) & 1) << (2 * i);
        r |= (uint64_t)((y >> i) & 1) << (2 * i + 1);
    }
    return r;
}

static void geo__deinterleave(uint64_t v, uint32_t *x, uint32_t *y)
{
    *x = *y = 0;
    for (int i = 0; i < 32; i++) {
        *x |= (uint32_t)((v >> (2 * i)) & 1) << i;
        *y |= (uint32_t)((v >> (2 * i + 1)) & 1) << i;
    }
}

/* A position's cell index in a range at `step` bits: the offset scaled
 * and truncated, as Redis computes it */
static uint32_t geo__index(double v, double min, double max, int step)
{
    double offset = (v - min) / (max - min);
    offset *= (double)(UINT64_C(1) << step);
    return (uint32_t)offset;
}

static bool geo__in_limits(double lon, double lat)
{
    return lon >= KV_GEO_LON_MIN && lon <= KV_GEO_LON_MAX && lat >= KV_GEO_LAT_MIN &&
           lat <= KV_GEO_LAT_MAX;
}

bool kv_geo_encode(double lon, double lat, uint64_t *score)
{
    if (!geo__in_limits(lon, lat)) return false;
    *score = geo__interleave(geo__index(lat, KV_GEO_LAT_MIN, KV_GEO_LAT_MAX, GEO_STEP),
                             geo__index(lon, KV_GEO_LON_MIN, KV_GEO_LON_MAX, GEO_STEP));
    return true;
}

void kv_geo_decode(uint64_t score, double *lon, double *lat)
{
    uint32_t ilat, ilon;
    geo__deinterleave(score, &ilat, &ilon);
    double cells = (double)(UINT64_C(1) << GEO_STEP);
    double lat_scale = KV_GEO_LAT_MAX - KV_GEO_LAT_MIN, lon_scale = KV_GEO_LON_MAX - KV_GEO_LON_MIN;
    double lat_min = KV_GEO_LAT_MIN + (ilat * 1.0 / cells) * lat_scale;
    double lat_max = KV_GEO_LAT_MIN + ((ilat + 1) * 1.0 / cells) * lat_scale;
    double lon_min = KV_GEO_LON_MIN + (ilon * 1.0 / cells) * lon_scale;
    double lon_max = KV_GEO_LON_MIN + ((ilon + 1) * 1.0 / cells) * lon_scale;
    *lon = (lon_min + lon_max) / 2;
    if (*lon > KV_GEO_LON_MAX) *lon = KV_GEO_LON_MAX;
    if (*lon < KV_GEO_LON_MIN) *lon = KV_GEO_LON_MIN;
    *lat = (lat_min + lat_max) / 2;
    if (*lat > KV_GEO_LAT_MAX) *lat = KV_GEO_LAT_MAX;
    if (*lat < KV_GEO_LAT_MIN) *lat = KV_GEO_LAT_MIN;
}

void kv_geo_hash_text(uint64_t score, char out[12])
{
    static const char alphabet[] = "0123456789bcdefghjkmnpqrstuvwxyz";
    double lon, lat;
    kv_geo_decode(score, &lon, &lat);
    /* the standard geohash ranges (latitude -90..90), 52 bits: the 11th
     * character stands for bits there are not, as 0 */
    uint64_t bits =
        geo__interleave(geo__index(lat, -90, 90, GEO_STEP), geo__index(lon, -180, 180, GEO_STEP));
    for (int i = 0; i < 11; i++)
        out[i] = alphabet[i == 10 ? 0 : (bits >> (52 - (i + 1) * 5)) & 0x1f];
    out[11] = '\0';
}

static double geo__lat_distance(double lat1, double lat2)
{
    return EARTH_RADIUS_M * fabs(lat2 * DEG_TO_RAD - lat1 * DEG_TO_RAD);
}

double kv_geo_distance(double lon1, double lat1, double lon2, double lat2)
{
    double lon1r = lon1 * DEG_TO_RAD, lon2r = lon2 * DEG_TO_RAD;
    double v = sin((lon2r - lon1r) / 2);
    if (v == 0.0) return geo__lat_distance(lat1, lat2); /* one meridian */
    double lat1r = lat1 * DEG_TO_RAD, lat2r = lat2 * DEG_TO_RAD;
    double u = sin((lat2r - lat1r) / 2);
    double a = u * u + cos(lat1r) * cos(lat2r) * v * v;
    return 2.0 * EARTH_RADIUS_M * asin(sqrt(a));
}

/* ---- search --------------------------------------------------------------------- */

/* Whether a position is within the shape, and its distance */
static bool geo__within(const kv_geo_shape *s, double lon, double lat, double *dist)
{
    if (!s->box) {
        *dist = kv_geo_distance(s->lon, s->lat, lon, lat);
        return *dist <= s->radius;
    }
    if (geo__lat_distance(lat, s->lat) > s->height / 2) return false;
    if (kv_geo_distance(lon, lat, s->lon, lat) > s->width / 2) return false;
    *dist = kv_geo_distance(s->lon, s->lat, lon, lat);
    return true;
}

typedef struct {
    uint32_t lat_lo, lat_hi; /* cell rows */
    uint32_t lon_lo, lon_n;  /* cell columns: lon_n from lon_lo, wrapping */
} geo_cells;

/* The cells at `step` that the box [lat_min, lat_max] x [lon_min,
 * lon_max] (longitudes may pass +-180) meets */
static void geo__cells(int step, double lat_min, double lat_max, double lon_min, double lon_max,
                       geo_cells *c)
{
    double n = (double)(UINT64_C(1) << step);
    double h = (KV_GEO_LAT_MAX - KV_GEO_LAT_MIN) / n, w = 360.0 / n;
    double lo = floor((lat_min - KV_GEO_LAT_MIN) / h), hi = floor((lat_max - KV_GEO_LAT_MIN) / h);
    c->lat_lo = lo < 0 ? 0 : (uint32_t)lo;
    c->lat_hi = hi > n - 1 ? (uint32_t)(n - 1) : hi < 0 ? 0 : (uint32_t)hi;
    double first = floor((lon_min + 180.0) / w), last = floor((lon_max + 180.0) / w);
    double count = last - first + 1;
    if (count >= n) {
        c->lon_lo = 0;
        c->lon_n = (uint32_t)n;
        return;
    }
    first = fmod(first, n);
    if (first < 0) first += n;
    c->lon_lo = (uint32_t)first;
    c->lon_n = (uint32_t)count;
}

static bool geo__walk_cell(const kv_entry *e, const kv_geo_shape *s, uint64_t bits, int step,
                           kv_geo_found_fn fn, void *ctx)
{
    int shift = 52 - 2 * step;
    double min = (double)(bits << shift), max = (double)((bits + 1) << shift);
    kv_zset_iter it;
    kv_zset_iter_init(&it, e, kv_zset_below(e, min, true), false);
    kv_slice m;
    double score;
    while (kv_zset_iter_next(&it, &m, &score) && score < max) {
        double lon, lat, dist;
        kv_geo_decode((uint64_t)score, &lon, &lat);
        if (geo__within(s, lon, lat, &dist) && !fn(ctx, m, (uint64_t)score, lon, lat, dist))
            return false;
    }
    return true;
}

void kv_geo_search(const kv_entry *e, const kv_geo_shape *s, kv_geo_found_fn fn, void *ctx)
{
    if (!e) return;
    /* the shape's bounding box in degrees, with a margin: a wider box only
     * walks more members, each still checked exactly. Distances are great
     * circles: near a pole a short one spans many degrees of longitude */
    double half_h = s->box ? s->height / 2 : s->radius, half_w = s->box ? s->width / 2 : s->radius;
    double dlat = half_h / EARTH_RADIUS_M / DEG_TO_RAD * 1.01 + 1e-9;
    double lat_min = s->lat - dlat, lat_max = s->lat + dlat;
    double lon_min = -180.0, lon_max = 180.0 + 360.0; /* every longitude */
    double ang = half_w / EARTH_RADIUS_M;             /* radians of great circle */
    /* the latitude where it spans the most longitude: the centre's for a
     * circle, the edge nearest a pole for a box */
    double at = s->box ? fabs(s->lat) + dlat : fabs(s->lat);
    if (at < 90.0 && ang < M_PI / 2) {
        double x = s->box ? sin(ang / 2) / cos(at * DEG_TO_RAD) : sin(ang) / cos(at * DEG_TO_RAD);
        if (x < 1.0) {
            double dlon = (s->box ? 2 * asin(x) : asin(x)) / DEG_TO_RAD * 1.01 + 1e-9;
            if (dlon < 180.0) {
                lon_min = s->lon - dlon;
                lon_max = s->lon + dlon;
            }
        }
    }
    /* the finest cells of which at most 3 x 3 cover the box */
    int step = GEO_STEP;
    geo_cells c;
    for (; step > 1; step--) {
        geo__cells(step, lat_min, lat_max, lon_min, lon_max, &c);
        if (c.lat_hi - c.lat_lo + 1 <= 3 && c.lon_n <= 3) break;
    }
    geo__cells(step, lat_min, lat_max, lon_min, lon_max, &c);
    uint32_t n = (uint32_t)(UINT64_C(1) << step);
    for (uint32_t ilat = c.lat_lo; ilat <= c.lat_hi; ilat++)
        for (uint32_t k = 0; k < c.lon_n; k++) {
            uint32_t ilon = (c.lon_lo + k) % n;
            if (!geo__walk_cell(e, s, geo__interleave(ilat, ilon), step, fn, ctx)) return;
        }
}

/* ---- queries ------------------------------------------------------------------- */

typedef struct {
    kv_geo_hit *hits;
    size_t n, cap;
    uint64_t stop_at; /* ANY: stop when this many are found (0: never) */
} geo_found;

static bool geo__collect(void *ctx, kv_slice member, uint64_t score, double lon, double lat,
                         double dist)
{
    geo_found *f = ctx;
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 16;
        f->hits = xrealloc(f->hits, f->cap * sizeof(*f->hits));
    }
    f->hits[f->n++] = (kv_geo_hit){member, score, lon, lat, dist};
    return !f->stop_at || f->n < f->stop_at;
}

static int geo__by_dist(const void *a, const void *b)
{
    double x = ((const kv_geo_hit *)a)->dist, y = ((const kv_geo_hit *)b)->dist;
    return x > y ? 1 : x < y ? -1 : 0;
}

static int geo__by_dist_desc(const void *a, const void *b)
{
    return geo__by_dist(b, a);
}

kv_geo_hit *kv_geo_run(const kv_entry *e, const kv_geo_query *q, size_t *n)
{
    geo_found f = {.stop_at = q->any ? q->count : 0};
    int sort = q->sort;
    if (q->count && sort == KV_GEO_UNSORTED && !q->any) sort = KV_GEO_ASC;
    kv_geo_search(e, &q->shape, geo__collect, &f);
    if (sort != KV_GEO_UNSORTED && f.n > 1)
        qsort(f.hits, f.n, sizeof(*f.hits), sort == KV_GEO_ASC ? geo__by_dist : geo__by_dist_desc);
    if (q->count && f.n > q->count) f.n = (size_t)q->count;
    *n = f.n;
    return f.hits;
}

static void geo__put_double(char *out, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    for (int i = 0; i < 8; i++) out[i] = (char)(v >> (8 * i));
}

static double geo__get_double(const char *in)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | (unsigned char)in[i];
    double d;
    memcpy(&d, &v, 8);
    return d;
}

void kv_geo_query_encode(const kv_geo_query *q, double to_m, char out[KV_GEO_QUERY_BYTES])
{
    const kv_geo_shape *s = &q->shape;
    double d[6] = {s->lon, s->lat, s->radius, s->width, s->height, to_m};
    for (int i = 0; i < 6; i++) geo__put_double(out + 8 * i, d[i]);
    for (int i = 0; i < 8; i++) out[48 + i] = (char)(q->count >> (8 * i));
    out[56] = (char)((s->box ? 1 : 0) | (q->any ? 2 : 0) | q->sort << 2);
}

bool kv_geo_query_decode(const char *in, size_t len, kv_geo_query *q, double *to_m)
{
    if (len != KV_GEO_QUERY_BYTES) return false;
    memset(q, 0, sizeof(*q));
    kv_geo_shape *s = &q->shape;
    s->lon = geo__get_double(in);
    s->lat = geo__get_double(in + 8);
    s->radius = geo__get_double(in + 16);
    s->width = geo__get_double(in + 24);
    s->height = geo__get_double(in + 32);
    *to_m = geo__get_double(in + 40);
    for (int i = 7; i >= 0; i--) q->count = q->count << 8 | (unsigned char)in[48 + i];
    unsigned f = (unsigned char)in[56];
    s->box = f & 1;
    q->any = (f & 2) != 0;
    q->sort = (int)(f >> 2);
    /* NaN fails every comparison: refused like a bad position */
    return f < 16 && q->sort <= KV_GEO_DESC && geo__in_limits(s->lon, s->lat) && *to_m > 0 &&
           s->radius >= 0 && s->width >= 0 && s->height >= 0 && (!q->any || q->count);
}
