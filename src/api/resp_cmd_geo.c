/* resp_cmd_geo: positions on sorted sets (issue 12): GEOADD GEOPOS GEODIST
 * GEOHASH GEOSEARCH GEOSEARCHSTORE GEORADIUS GEORADIUSBYMEMBER and their
 * _RO forms.
 *
 * GEOADD is a ZADD of geohash scores (kv/geo.h). The searches read the
 * local store; the STORE forms are one kv command (KV_OP_GEOSTORE) that
 * searches on apply, so the stored set is the one the log's order sees.
 * Replies follow Redis 7.0: distances with four decimals, coordinates
 * with Redis' long double digits in RESP2 and doubles in RESP3. Two
 * differences, both where Redis promises nothing: a search without
 * ASC/DESC or COUNT answers in the order it finds members, which is not
 * Redis' walk order; and COUNT n ANY returns n members found first in
 * that order. Checked against redis-server by
 * tests/integration/test_resp_geo.py. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/resp_internal.h"
#include "kv/geo.h"
#include "kv/zset.h"
#include "util/alloc.h"
#include "util/strconv.h"

static kv_slice geo__arg(const resp_req *req, size_t i)
{
    return (kv_slice){req->argv[i].ptr, req->argv[i].len};
}

static bool geo__double(const resp_arg *v, double *out)
{
    long double d;
    if (!strconv_parse_ld(v->ptr, v->len, &d)) return false;
    *out = (double)d;
    return !isnan(*out);
}

/* A longitude, latitude pair; false after replying Redis' error */
static bool geo__lonlat_args(resp_req *req, size_t at, double *lon, double *lat)
{
    if (!geo__double(&req->argv[at], lon) || !geo__double(&req->argv[at + 1], lat)) {
        resp_req_error(req, "ERR value is not a valid float");
        return false;
    }
    if (*lon < KV_GEO_LON_MIN || *lon > KV_GEO_LON_MAX || *lat < KV_GEO_LAT_MIN ||
        *lat > KV_GEO_LAT_MAX) {
        resp_req_errorf(req, "ERR invalid longitude,latitude pair %f,%f", *lon, *lat);
        return false;
    }
    return true;
}

/* metres per unit; false after the error */
static bool geo__unit_arg(resp_req *req, const resp_arg *v, double *to_m)
{
    static const struct {
        const char *name;
        double m;
    } units[] = {{"m", 1}, {"km", 1000}, {"ft", 0.3048}, {"mi", 1609.34}};
    for (size_t i = 0; i < 4; i++)
        if (resp_format_arg_is(v, units[i].name)) {
            *to_m = units[i].m;
            return true;
        }
    resp_req_error(req, "ERR unsupported unit provided. please use M, KM, FT, MI");
    return false;
}

/* A distance printed as Redis prints one */
static void geo__write_dist(resp_req *req, double d)
{
    char text[64];
    int n = snprintf(text, sizeof(text), "%.4f", d);
    resp_write_bulk(&req->reply, text, (size_t)n);
}

/* A coordinate as Redis writes a "human" long double: "%.17Lf" without
 * trailing zeroes, a bulk in RESP2, a double of those digits in RESP3 */
static void geo__write_coord(resp_req *req, double d)
{
    char text[128];
    int n = snprintf(text, sizeof(text), "%.17Lf", (long double)d);
    if (strchr(text, '.')) {
        while (n > 0 && text[n - 1] == '0') n--;
        if (n > 0 && text[n - 1] == '.') n--;
    }
    if (n == 2 && memcmp(text, "-0", 2) == 0) n = 1, text[0] = '0';
    if (req->proto == 3)
        buf_printf(&req->reply, ",%.*s\r\n", n, text);
    else
        resp_write_bulk(&req->reply, text, (size_t)n);
}

static void geo__reply_zadd(resp_req *req, const kv_result *res)
{
    resp_write_integer(&req->reply, res->integer);
}

/* ---- GEOADD ---------------------------------------------------------------------- */

static void geo__geoadd(resp_req *req)
{
    size_t at = 2;
    bool nx = false, xx = false, ch = false;
    for (; at < req->argc; at++) {
        if (resp_format_arg_is(&req->argv[at], "nx"))
            nx = true;
        else if (resp_format_arg_is(&req->argv[at], "xx"))
            xx = true;
        else if (resp_format_arg_is(&req->argv[at], "ch"))
            ch = true;
        else
            break;
    }
    if ((req->argc - at) % 3 || (nx && xx) || at == req->argc) {
        resp_req_error_syntax(req);
        return;
    }
    size_t n = (req->argc - at) / 3;
    kv_slice *args = xcalloc(1 + 2 * n, sizeof(*args));
    char *text = xmalloc(n * 24);
    args[0] = geo__arg(req, 1);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        double lon, lat;
        uint64_t score;
        ok = geo__lonlat_args(req, at + 3 * i, &lon, &lat);
        if (!ok) break;
        kv_geo_encode(lon, lat, &score);
        int len = snprintf(text + 24 * i, 24, "%llu", (unsigned long long)score);
        args[1 + 2 * i] = (kv_slice){text + 24 * i, (size_t)len};
        args[2 + 2 * i] = geo__arg(req, at + 3 * i + 2);
    }
    if (ok) {
        kv_command cmd = {.op = KV_OP_ZADD,
                          .a =
                              (nx ? KV_ZADD_NX : 0) | (xx ? KV_ZADD_XX : 0) | (ch ? KV_ZADD_CH : 0),
                          .nargs = (uint32_t)(1 + 2 * n),
                          .args = args};
        resp_req_propose(req, &cmd, geo__reply_zadd);
    }
    free(text);
    free(args);
}

/* ---- GEOPOS GEODIST GEOHASH --------------------------------------------------------- */

static kv_entry *geo__lookup(resp_req *req, bool *wrong)
{
    return resp_req_lookup_typed(req, &req->argv[1], KV_TYPE_ZSET, wrong);
}

static bool geo__member_score(const kv_entry *e, kv_slice m, uint64_t *score)
{
    double s;
    if (!e || !kv_zset_score(e, m, &s)) return false;
    *score = (uint64_t)s;
    return true;
}

/* GEOPOS (req->opt 0): [lon, lat] per member; GEOHASH (1): its geohash
 * string. A missing member: a null (an array's in GEOPOS), as in Redis */
static void geo__per_member_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = geo__lookup(req, &wrong);
    if (wrong) return;
    resp_write_array(&req->reply, req->argc - 2);
    for (size_t i = 2; i < req->argc; i++) {
        uint64_t score;
        if (!geo__member_score(e, geo__arg(req, i), &score)) {
            if (req->opt)
                resp_req_null(req);
            else
                resp_write_null_array(&req->reply, req->proto);
            continue;
        }
        if (req->opt) {
            char text[12];
            kv_geo_hash_text(score, text);
            resp_write_bulk(&req->reply, text, 11);
            continue;
        }
        double lon, lat;
        kv_geo_decode(score, &lon, &lat);
        resp_write_array(&req->reply, 2);
        geo__write_coord(req, lon);
        geo__write_coord(req, lat);
    }
}

static void geo__geopos(resp_req *req)
{
    req->opt = 0;
    resp_req_read(req, geo__per_member_ready);
}

static void geo__geohash(resp_req *req)
{
    req->opt = 1;
    resp_req_read(req, geo__per_member_ready);
}

static void geo__geodist_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = geo__lookup(req, &wrong);
    if (wrong) return;
    double to_m = 1;
    if (req->argc == 5 && !geo__unit_arg(req, &req->argv[4], &to_m)) return;
    uint64_t s1, s2;
    if (!geo__member_score(e, geo__arg(req, 2), &s1) ||
        !geo__member_score(e, geo__arg(req, 3), &s2)) {
        resp_req_null(req);
        return;
    }
    double lon1, lat1, lon2, lat2;
    kv_geo_decode(s1, &lon1, &lat1);
    kv_geo_decode(s2, &lon2, &lat2);
    geo__write_dist(req, kv_geo_distance(lon1, lat1, lon2, lat2) / to_m);
}

static void geo__geodist(resp_req *req)
{
    if (req->argc > 5) {
        resp_req_error_syntax(req);
        return;
    }
    resp_req_read(req, geo__geodist_ready);
}

/* ---- the searches ------------------------------------------------------------------- */

enum {
    GEO_RADIUS = 1,     /* GEORADIUS: key lon lat radius unit */
    GEO_BYMEMBER = 2,   /* GEORADIUSBYMEMBER: key member radius unit */
    GEO_SEARCH = 4,     /* GEOSEARCH: key FROMMEMBER|FROMLONLAT BYRADIUS|BYBOX */
    GEO_SEARCHSTORE = 8 /* GEOSEARCHSTORE: dst src ... */
};
enum { GEO_NOSTORE = 16 };

typedef struct geo_q {
    kv_geo_query q;
    double to_m;
    bool withdist, withhash, withcoord, storedist;
    size_t store_at;  /* the STORE key's argument (0: none) */
    size_t member_at; /* FROMMEMBER / BYMEMBER's member argument (0: a position) */
} geo_q;

static bool geo__distance_args(resp_req *req, size_t at, double *d, double *to_m)
{
    if (!geo__double(&req->argv[at], d)) {
        resp_req_error(req, "ERR need numeric radius");
        return false;
    }
    if (*d < 0) {
        resp_req_error(req, "ERR radius cannot be negative");
        return false;
    }
    return geo__unit_arg(req, &req->argv[at + 1], to_m);
}

/* The arguments of any search (req->opt: its kind), in Redis' order; the
 * FROMMEMBER / BYMEMBER member is found later. False after the error. */
static bool geo__query_args(resp_req *req, geo_q *g, bool have_src)
{
    int kind = (int)req->opt;
    memset(g, 0, sizeof(*g));
    g->to_m = 1;
    size_t base;
    kv_geo_shape *s = &g->q.shape;
    if (kind & GEO_RADIUS) {
        base = 6;
        if (!geo__lonlat_args(req, 2, &s->lon, &s->lat) ||
            !geo__distance_args(req, 4, &s->radius, &g->to_m))
            return false;
    } else if (kind & GEO_BYMEMBER) {
        base = 5;
        g->member_at = 2;
        /* Redis reads no radius when there is no set to search */
        if (have_src && !geo__distance_args(req, 3, &s->radius, &g->to_m)) return false;
    } else {
        base = kind & GEO_SEARCHSTORE ? 3 : 2;
    }
    bool search = kind & (GEO_SEARCH | GEO_SEARCHSTORE), fromloc = false, frommember = false,
         byradius = false, bybox = false;
    for (size_t i = base; i < req->argc; i++) {
        const resp_arg *a = &req->argv[i];
        size_t left = req->argc - i - 1;
        if (resp_format_arg_is(a, "withdist")) {
            g->withdist = true;
        } else if (resp_format_arg_is(a, "withhash")) {
            g->withhash = true;
        } else if (resp_format_arg_is(a, "withcoord")) {
            g->withcoord = true;
        } else if (resp_format_arg_is(a, "any")) {
            g->q.any = true;
        } else if (resp_format_arg_is(a, "asc")) {
            g->q.sort = KV_GEO_ASC;
        } else if (resp_format_arg_is(a, "desc")) {
            g->q.sort = KV_GEO_DESC;
        } else if (resp_format_arg_is(a, "count") && left >= 1) {
            int64_t count;
            if (!resp_req_int_arg(req, &req->argv[i + 1], &count)) return false;
            if (count <= 0) {
                resp_req_error(req, "ERR COUNT must be > 0");
                return false;
            }
            g->q.count = (uint64_t)count;
            i++;
        } else if ((resp_format_arg_is(a, "store") || resp_format_arg_is(a, "storedist")) &&
                   left >= 1 && !(kind & GEO_NOSTORE) && !search) {
            g->storedist = resp_format_arg_is(a, "storedist");
            g->store_at = ++i;
        } else if (resp_format_arg_is(a, "storedist") && (kind & GEO_SEARCHSTORE)) {
            g->storedist = true;
        } else if (resp_format_arg_is(a, "frommember") && left >= 1 && search && !fromloc) {
            frommember = true;
            g->member_at = ++i;
        } else if (resp_format_arg_is(a, "fromlonlat") && left >= 2 && search && !frommember) {
            if (!geo__lonlat_args(req, i + 1, &s->lon, &s->lat)) return false;
            fromloc = true;
            i += 2;
        } else if (resp_format_arg_is(a, "byradius") && left >= 2 && search && !bybox) {
            if (!geo__distance_args(req, i + 1, &s->radius, &g->to_m)) return false;
            byradius = true;
            i += 2;
        } else if (resp_format_arg_is(a, "bybox") && left >= 3 && search && !byradius) {
            if (!geo__double(&req->argv[i + 1], &s->width)) {
                resp_req_error(req, "ERR need numeric width");
                return false;
            }
            if (!geo__double(&req->argv[i + 2], &s->height)) {
                resp_req_error(req, "ERR need numeric height");
                return false;
            }
            if (s->width < 0 || s->height < 0) {
                resp_req_error(req, "ERR height or width cannot be negative");
                return false;
            }
            if (!geo__unit_arg(req, &req->argv[i + 3], &g->to_m)) return false;
            s->box = bybox = true;
            i += 3;
        } else {
            resp_req_error_syntax(req);
            return false;
        }
    }
    bool store = g->store_at || (kind & GEO_SEARCHSTORE);
    if (store && (g->withdist || g->withhash || g->withcoord)) {
        resp_req_errorf(req,
                        "ERR %s is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
                        kind & GEO_SEARCHSTORE ? "GEOSEARCHSTORE" : "STORE option in GEORADIUS");
        return false;
    }
    if (search && !frommember && !fromloc) {
        resp_req_errorf(req,
                        "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for %.*s",
                        (int)req->argv[0].len, req->argv[0].ptr);
        return false;
    }
    if (search && !byradius && !bybox) {
        resp_req_errorf(req, "ERR exactly one of BYRADIUS and BYBOX can be specified for %.*s",
                        (int)req->argv[0].len, req->argv[0].ptr);
        return false;
    }
    if (g->q.any && !g->q.count) {
        resp_req_error(req, "ERR the ANY argument requires COUNT argument");
        return false;
    }
    s->radius *= g->to_m;
    s->width *= g->to_m;
    s->height *= g->to_m;
    return true;
}

static void geo__search_ready(resp_req *req)
{
    size_t src = req->opt & GEO_SEARCHSTORE ? 2 : 1;
    bool wrong;
    kv_entry *e = resp_req_lookup_typed(req, &req->argv[src], KV_TYPE_ZSET, &wrong);
    if (wrong) return;
    geo_q g;
    if (!geo__query_args(req, &g, e != NULL)) return;
    if (!e) {
        resp_write_array(&req->reply, 0);
        return;
    }
    if (g.member_at) {
        uint64_t score;
        if (!geo__member_score(e, geo__arg(req, g.member_at), &score)) {
            resp_req_error(req, "ERR could not decode requested zset member");
            return;
        }
        kv_geo_decode(score, &g.q.shape.lon, &g.q.shape.lat);
    }
    size_t n;
    kv_geo_hit *hits = kv_geo_run(e, &g.q, &n);
    size_t options = (size_t)g.withdist + g.withhash + g.withcoord;
    resp_write_array(&req->reply, n);
    for (size_t i = 0; i < n; i++) {
        if (options) resp_write_array(&req->reply, options + 1);
        resp_write_bulk(&req->reply, hits[i].member.ptr, hits[i].member.len);
        if (g.withdist) geo__write_dist(req, hits[i].dist / g.to_m);
        if (g.withhash) resp_write_integer(&req->reply, (long long)hits[i].score);
        if (g.withcoord) {
            resp_write_array(&req->reply, 2);
            geo__write_coord(req, hits[i].lon);
            geo__write_coord(req, hits[i].lat);
        }
    }
    free(hits);
}

/* The STORE forms: the query goes to apply, which finds the member,
 * searches and writes the destination */
static void geo__search_store(resp_req *req, const geo_q *g)
{
    size_t dst = req->opt & GEO_SEARCHSTORE ? 1 : g->store_at;
    size_t src = req->opt & GEO_SEARCHSTORE ? 2 : 1;
    if (!resp_auth_extra_key(req, &req->argv[dst])) return;
    char spec[KV_GEO_QUERY_BYTES];
    kv_geo_query_encode(&g->q, g->to_m, spec);
    kv_slice args[4] = {geo__arg(req, dst),
                        geo__arg(req, src),
                        {spec, sizeof(spec)},
                        g->member_at ? geo__arg(req, g->member_at) : (kv_slice){"", 0}};
    kv_command cmd = {.op = KV_OP_GEOSTORE,
                      .a = (g->member_at ? KV_GEOSTORE_FROM_MEMBER : 0) |
                           (g->storedist ? KV_GEOSTORE_DIST : 0),
                      .nargs = 4,
                      .args = args};
    resp_req_propose(req, &cmd, resp_reply_integer);
}

static void geo__search(resp_req *req, int kind)
{
    req->opt = (uint32_t)kind;
    if (!(kind & GEO_NOSTORE)) { /* GEOSEARCHSTORE, or GEORADIUS with STORE: a write */
        geo_q g;
        /* BYMEMBER's radius is read only when the set exists, as Redis
         * does: a read finds out; a STORE has to check it here */
        if (!geo__query_args(req, &g, false)) return;
        if ((kind & GEO_SEARCHSTORE) || g.store_at) {
            if (geo__query_args(req, &g, true)) geo__search_store(req, &g);
            return;
        }
    }
    resp_req_read(req, geo__search_ready);
}

static void geo__georadius(resp_req *req)
{
    geo__search(req, GEO_RADIUS);
}
static void geo__georadius_ro(resp_req *req)
{
    geo__search(req, GEO_RADIUS | GEO_NOSTORE);
}
static void geo__georadiusbymember(resp_req *req)
{
    geo__search(req, GEO_BYMEMBER);
}
static void geo__georadiusbymember_ro(resp_req *req)
{
    geo__search(req, GEO_BYMEMBER | GEO_NOSTORE);
}
static void geo__geosearch(resp_req *req)
{
    geo__search(req, GEO_SEARCH | GEO_NOSTORE);
}
static void geo__geosearchstore(resp_req *req)
{
    geo__search(req, GEO_SEARCHSTORE);
}

#define W RESP_CMD_WRITE
#define R RESP_CMD_READONLY
#define D RESP_CMD_DENYOOM

/* As Redis 7.0's key specs: the argument after the first STORE, then the
 * one after the first STOREDIST, each looked for from the first option on
 * (never in the last argument). */
size_t resp_geo_store_keys(const resp_cmd *cmd, const resp_arg *argv, size_t argc, size_t out[2])
{
    size_t start = strcmp(cmd->name, "georadius") == 0 ? 6 : 5, n = 0;
    static const char *const words[] = {"store", "storedist"};
    for (int w = 0; w < 2; w++) {
        for (size_t i = start; i + 1 < argc; i++) {
            if (resp_format_arg_is(&argv[i], words[w])) {
                out[n++] = i + 1;
                break;
            }
        }
    }
    return n;
}

const resp_cmd resp_cmds_geo[] = {
    {"geoadd", geo__geoadd, -5, W | D, 1, 1, 1, "geo", "3.2.0", "O(log(N))",
     "Add members with their longitude and latitude to a sorted set",
     "key [NX|XX] [CH] longitude latitude member [longitude latitude member ...]"},
    {"geopos", geo__geopos, -2, R, 1, 1, 1, "geo", "3.2.0", "O(N)",
     "Return the longitude and latitude of members", "key [member [member ...]]"},
    {"geodist", geo__geodist, -4, R, 1, 1, 1, "geo", "3.2.0", "O(log(N))",
     "Return the distance between two members", "key member1 member2 [M|KM|FT|MI]"},
    {"geohash", geo__geohash, -2, R, 1, 1, 1, "geo", "3.2.0", "O(log(N))",
     "Return the geohash strings of members", "key [member [member ...]]"},
    {"geosearch", geo__geosearch, -7, R, 1, 1, 1, "geo", "6.2.0", "O(N+log(M))",
     "Return the members within a circle or a box",
     "key (FROMMEMBER member|FROMLONLAT longitude latitude) (BYRADIUS radius (M|KM|FT|MI)|BYBOX "
     "width height (M|KM|FT|MI)) [ASC|DESC] [COUNT count [ANY]] [WITHCOORD] [WITHDIST] [WITHHASH]"},
    {"geosearchstore", geo__geosearchstore, -8, W | D, 1, 2, 1, "geo", "6.2.0", "O(N+log(M))",
     "Store the members within a circle or a box",
     "destination source (FROMMEMBER member|FROMLONLAT longitude latitude) (BYRADIUS radius "
     "(M|KM|FT|MI)|BYBOX width height (M|KM|FT|MI)) [ASC|DESC] [COUNT count [ANY]] [STOREDIST]"},
    {"georadius", geo__georadius, -6, W | D | RESP_CMD_MAY_READ, 1, 1, 1, "geo", "3.2.0",
     "O(N+log(M))", "Return the members within a radius of a position (or store them)",
     "key longitude latitude radius (M|KM|FT|MI) [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count "
     "[ANY]] [ASC|DESC] [STORE key|STOREDIST key]"},
    {"georadius_ro", geo__georadius_ro, -6, R, 1, 1, 1, "geo", "3.2.10", "O(N+log(M))",
     "Return the members within a radius of a position",
     "key longitude latitude radius (M|KM|FT|MI) [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count "
     "[ANY]] [ASC|DESC]"},
    {"georadiusbymember", geo__georadiusbymember, -5, W | D | RESP_CMD_MAY_READ, 1, 1, 1, "geo",
     "3.2.0", "O(N+log(M))", "Return the members within a radius of a member (or store them)",
     "key member radius (M|KM|FT|MI) [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] "
     "[ASC|DESC] [STORE key|STOREDIST key]"},
    {"georadiusbymember_ro", geo__georadiusbymember_ro, -5, R, 1, 1, 1, "geo", "3.2.10",
     "O(N+log(M))", "Return the members within a radius of a member",
     "key member radius (M|KM|FT|MI) [WITHCOORD] [WITHDIST] [WITHHASH] [COUNT count [ANY]] "
     "[ASC|DESC]"},
};
const size_t resp_cmds_geo_count = sizeof(resp_cmds_geo) / sizeof(resp_cmds_geo[0]);
