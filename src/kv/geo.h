/* geo: positions on sorted sets, as Redis keeps them (GEOADD and family;
 * issue 12).
 *
 * A position is a member's score: the 52-bit geohash of its longitude
 * (-180..180) and latitude (-85.05112878..85.05112878, the Web Mercator
 * limits), latitude bits at the even positions, read back as the centre
 * of its cell. Distances are haversine on Redis' sphere (6372797.560856
 * m), computed in Redis' order of operations so that the printed digits
 * agree. A search covers the circle or box with at most nine geohash cells
 * of one size (the smallest whose 3x3 block holds the shape's bounding
 * box), walks each cell's score range in the set, and keeps what is within
 * the shape. Pure functions; checked against redis-server by
 * tests/integration/test_resp_geo.py. */
#ifndef CAIRN_KV_GEO_H
#define CAIRN_KV_GEO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/command.h"
#include "kv/keyspace.h"

#define KV_GEO_LON_MIN -180.0
#define KV_GEO_LON_MAX 180.0
#define KV_GEO_LAT_MIN -85.05112878
#define KV_GEO_LAT_MAX 85.05112878

/* The score of a position (GEOADD); false outside the limits. */
bool kv_geo_encode(double lon, double lat, uint64_t *score);
/* The position a score stands for (the centre of its cell). */
void kv_geo_decode(uint64_t score, double *lon, double *lat);
/* GEOHASH's 11 characters (standard geohash: latitude -90..90). */
void kv_geo_hash_text(uint64_t score, char out[12]);
/* Metres between two positions, as Redis computes them. */
double kv_geo_distance(double lon1, double lat1, double lon2, double lat2);

/* A search: a circle (radius) or a box (width x height), in metres,
 * around a position. */
typedef struct kv_geo_shape {
    double lon, lat;
    bool box;
    double radius, width, height;
} kv_geo_shape;
/* Calls fn for each member of the sorted set e within the shape, with
 * its score, position and distance from the shape's centre; fn returns
 * false to stop (COUNT ANY). */
typedef bool (*kv_geo_found_fn)(void *ctx, kv_slice member, uint64_t score, double lon, double lat,
                                double dist);
void kv_geo_search(const kv_entry *e, const kv_geo_shape *shape, kv_geo_found_fn fn, void *ctx);

/* A GEOSEARCH: the shape, then ASC/DESC (0: as found), COUNT (0: all)
 * and ANY (stop at COUNT found), as Redis combines them: a COUNT without
 * ANY and without an order sorts ascending. */
enum { KV_GEO_UNSORTED, KV_GEO_ASC, KV_GEO_DESC };
typedef struct kv_geo_query {
    kv_geo_shape shape;
    int sort;
    uint64_t count;
    bool any;
} kv_geo_query;
typedef struct kv_geo_hit {
    kv_slice member; /* into the set */
    uint64_t score;
    double lon, lat, dist;
} kv_geo_hit;
/* The hits in reply order (*n of them; free the array). */
kv_geo_hit *kv_geo_run(const kv_entry *e, const kv_geo_query *q, size_t *n);

/* A query in a log entry (GEOSEARCHSTORE and GEORADIUS STORE), with the
 * metres per unit of its distances */
#define KV_GEO_QUERY_BYTES 57
void kv_geo_query_encode(const kv_geo_query *q, double to_m, char out[KV_GEO_QUERY_BYTES]);
bool kv_geo_query_decode(const char *in, size_t len, kv_geo_query *q, double *to_m);
/* KV_OP_GEOSTORE's a */
enum { KV_GEOSTORE_FROM_MEMBER = 1, KV_GEOSTORE_DIST = 2 };

#endif
