/* resp_cmd_zsets: the sorted set commands (ZADD and family; issue 12).
 *
 * Writes are one kv command each (KV_OP_ZADD, ZREM, ZPOP, ZREMRANGEBY*:
 * kv/store.c applies them; kv/zset.h holds the encodings). Scores are
 * checked here and parsed again by apply with the same parser
 * (kv_zset_parse_score). Reads run on the local store once the read is
 * safe. Argument checks, error texts and reply types (doubles in RESP3,
 * pairs for WITHSCORES) follow Redis 7.0, checked against redis-server by
 * tests/integration/test_resp_zsets.py. ZMPOP, BZMPOP, BZPOPMIN and
 * BZPOPMAX are one KV_OP_ZMPOP each; the blocking ones wait in
 * resp_block.c as BLPOP does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/resp_internal.h"
#include "kv/zset.h"
#include "util/alloc.h"
#include "util/strconv.h"

static kv_slice zset__arg(const resp_req *req, size_t i)
{
    return (kv_slice){req->argv[i].ptr, req->argv[i].len};
}

static kv_entry *zset__lookup(resp_req *req, bool *wrong)
{
    return resp_req_lookup_typed(req, &req->argv[1], KV_TYPE_ZSET, wrong);
}

static bool zset__score_arg(resp_req *req, size_t i, double *out)
{
    if (kv_zset_parse_score(req->argv[i].ptr, req->argv[i].len, out)) return true;
    resp_req_error(req, "ERR value is not a valid float");
    return false;
}

/* ---- writes -------------------------------------------------------------------- */

static void zset__reply_incr(resp_req *req, const kv_result *res)
{
    if (!res->has_value) {
        resp_req_null(req);
        return;
    }
    uint64_t u = 0;
    for (int k = 0; k < 8; k++) u |= (uint64_t)(unsigned char)res->value[k] << (8 * k);
    double d;
    memcpy(&d, &u, 8);
    resp_write_double(&req->reply, req->proto, d);
}

static void zset__zadd(resp_req *req)
{
    int64_t f = 0;
    size_t i = 2;
    for (; i < req->argc; i++) {
        const resp_arg *a = &req->argv[i];
        if (resp_format_arg_is(a, "nx"))
            f |= KV_ZADD_NX;
        else if (resp_format_arg_is(a, "xx"))
            f |= KV_ZADD_XX;
        else if (resp_format_arg_is(a, "gt"))
            f |= KV_ZADD_GT;
        else if (resp_format_arg_is(a, "lt"))
            f |= KV_ZADD_LT;
        else if (resp_format_arg_is(a, "ch"))
            f |= KV_ZADD_CH;
        else if (resp_format_arg_is(a, "incr"))
            f |= KV_ZADD_INCR;
        else
            break;
    }
    size_t left = req->argc - i;
    if (left == 0 || left % 2) {
        resp_req_error_syntax(req);
        return;
    }
    if ((f & KV_ZADD_NX) && (f & KV_ZADD_XX)) {
        resp_req_error(req, "ERR XX and NX options at the same time are not compatible");
        return;
    }
    if (((f & KV_ZADD_GT) && (f & (KV_ZADD_LT | KV_ZADD_NX))) ||
        ((f & KV_ZADD_LT) && (f & KV_ZADD_NX))) {
        resp_req_error(req, "ERR GT, LT, and/or NX options at the same time are not compatible");
        return;
    }
    if ((f & KV_ZADD_INCR) && left > 2) {
        resp_req_error(req, "ERR INCR option supports a single increment-element pair");
        return;
    }
    for (size_t k = i; k < req->argc; k += 2) {
        double d;
        if (!zset__score_arg(req, k, &d)) return;
        if (!resp_req_check_value(req, &req->argv[k + 1])) return;
    }
    /* key, then score member pairs */
    size_t n = 1 + left;
    kv_slice small[17];
    kv_slice *args = n <= 17 ? small : xmalloc(n * sizeof(kv_slice));
    args[0] = zset__arg(req, 1);
    for (size_t k = 0; k < left; k++) args[1 + k] = zset__arg(req, i + k);
    kv_command cmd = {.op = KV_OP_ZADD, .a = f, .nargs = (uint32_t)n, .args = args};
    resp_req_propose(req, &cmd, (f & KV_ZADD_INCR) ? zset__reply_incr : resp_reply_integer);
    if (args != small) free(args);
}

static void zset__zincrby(resp_req *req)
{
    double d;
    if (!zset__score_arg(req, 2, &d)) return;
    if (!resp_req_check_value(req, &req->argv[3])) return;
    resp_req_propose_args(req, 1, 3, KV_OP_ZADD, 0, KV_ZADD_INCR, 0, zset__reply_incr);
}

static void zset__zrem(resp_req *req)
{
    resp_req_propose_args(req, 1, req->argc - 1, KV_OP_ZREM, 0, 0, 0, resp_reply_integer);
}

/* A popped member's score, as apply wrote it (%.17g: it reads back
 * exactly) */
static void zset__write_score_text(resp_req *req, kv_slice s)
{
    char text[64];
    size_t tl = s.len < sizeof(text) - 1 ? s.len : sizeof(text) - 1;
    memcpy(text, s.ptr, tl);
    text[tl] = '\0';
    resp_write_double(&req->reply, req->proto, strtod(text, NULL));
}

/* member, score text pairs as [m, s, ...] (RESP2) or [[m, s], ...] (RESP3
 * with a count); n pairs */
static void zset__reply_popped(resp_req *req, const kv_result *res)
{
    size_t n = (size_t)res->integer, pos = 0;
    bool pairs = req->proto == 3 && req->opt;
    resp_write_array(&req->reply, pairs ? n : 2 * n);
    kv_slice m, s;
    while (kv_result_popped_next(res, &pos, &m) && kv_result_popped_next(res, &pos, &s)) {
        if (pairs) resp_write_array(&req->reply, 2);
        resp_write_bulk(&req->reply, m.ptr, m.len);
        zset__write_score_text(req, s);
    }
}

static void zset__pop(resp_req *req, bool max)
{
    if (req->argc > 3) {
        resp_req_error_syntax(req);
        return;
    }
    int64_t count = -1;
    if (req->argc == 3) {
        if (!strconv_parse_i64(req->argv[2].ptr, req->argv[2].len, &count) || count < 0) {
            resp_req_error(req, "ERR value is out of range, must be positive");
            return;
        }
    }
    req->opt = req->argc == 3; /* RESP3 pairs only with a count */
    resp_req_propose_args(req, 1, 1, KV_OP_ZPOP, 0, count, max, zset__reply_popped);
}

static void zset__zpopmin(resp_req *req)
{
    zset__pop(req, false);
}

static void zset__zpopmax(resp_req *req)
{
    zset__pop(req, true);
}

/* ---- ZMPOP and the blocking pops ------------------------------------------------ */

/* A KV_OP_ZMPOP result as [key, [[member, score] ...]] (ZMPOP, BZMPOP)
 * or [key, member, score] (BZPOPMIN, BZPOPMAX); nothing: null. */
static void zset__reply_mpop(resp_req *req, const kv_result *res, bool nested)
{
    if (!res->has_value) {
        resp_write_null_array(&req->reply, req->proto);
        return;
    }
    size_t pos = 0;
    kv_slice key = kv_result_popped_key(res, &pos), m, sc;
    resp_write_array(&req->reply, nested ? 2 : 3);
    resp_write_bulk(&req->reply, key.ptr, key.len);
    if (nested) resp_write_array(&req->reply, (size_t)res->integer);
    while (kv_result_popped_next(res, &pos, &m) && kv_result_popped_next(res, &pos, &sc)) {
        if (nested) resp_write_array(&req->reply, 2);
        resp_write_bulk(&req->reply, m.ptr, m.len);
        zset__write_score_text(req, sc);
    }
}

static void zset__reply_key_members(resp_req *req, const kv_result *res)
{
    zset__reply_mpop(req, res, true);
}

static void zset__reply_key_member_score(resp_req *req, const kv_result *res)
{
    zset__reply_mpop(req, res, false);
}

static void zset__zmpop(resp_req *req)
{
    size_t first, n;
    int max;
    int64_t count;
    if (!resp_req_mpop_args(req, 1, "max", "min", &first, &n, &max, &count)) return;
    resp_req_propose_args(req, first, n, KV_OP_ZMPOP, 0, max, count, zset__reply_key_members);
}

static void zset__bzmpop(resp_req *req)
{
    int64_t timeout;
    if (!resp_block_timeout_arg(req, &req->argv[1], &timeout)) return;
    size_t first, n;
    int max;
    int64_t count;
    if (!resp_req_mpop_args(req, 2, "max", "min", &first, &n, &max, &count)) return;
    resp_block_keys(req, first, n, KV_OP_ZMPOP, max, count, timeout, zset__reply_key_members);
}

static void zset__bzpop(resp_req *req, bool max)
{
    int64_t timeout;
    if (!resp_block_timeout_arg(req, &req->argv[req->argc - 1], &timeout)) return;
    resp_block_keys(req, 1, req->argc - 2, KV_OP_ZMPOP, max, 1, timeout,
                    zset__reply_key_member_score);
}

static void zset__bzpopmin(resp_req *req)
{
    zset__bzpop(req, false);
}

static void zset__bzpopmax(resp_req *req)
{
    zset__bzpop(req, true);
}

static void zset__zremrangebyrank(resp_req *req)
{
    int64_t start, stop;
    if (!resp_req_int_arg(req, &req->argv[2], &start) ||
        !resp_req_int_arg(req, &req->argv[3], &stop))
        return;
    resp_req_propose_args(req, 1, 1, KV_OP_ZREMRANGEBYRANK, 0, start, stop, resp_reply_integer);
}

static bool zset__bounds_ok(resp_req *req, size_t i)
{
    double v;
    bool x;
    if (kv_zset_parse_bound(req->argv[i].ptr, req->argv[i].len, &v, &x) &&
        kv_zset_parse_bound(req->argv[i + 1].ptr, req->argv[i + 1].len, &v, &x))
        return true;
    resp_req_error(req, "ERR min or max is not a float");
    return false;
}

static void zset__zremrangebyscore(resp_req *req)
{
    if (!zset__bounds_ok(req, 2)) return;
    resp_req_propose_args(req, 1, 3, KV_OP_ZREMRANGEBYSCORE, 0, 0, 0, resp_reply_integer);
}

/* ---- reads -------------------------------------------------------------------- */

static void zset__zcard_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = zset__lookup(req, &wrong);
    if (!wrong) resp_write_integer(&req->reply, e ? (long long)kv_zset_len(e) : 0);
}

static void zset__zcard(resp_req *req)
{
    resp_req_read(req, zset__zcard_ready);
}

static void zset__write_score(resp_req *req, const kv_entry *e, kv_slice m)
{
    double d;
    if (e && kv_zset_score(e, m, &d))
        resp_write_double(&req->reply, req->proto, d);
    else
        resp_req_null(req);
}

static void zset__zscore_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = zset__lookup(req, &wrong);
    if (!wrong) zset__write_score(req, e, zset__arg(req, 2));
}

static void zset__zscore(resp_req *req)
{
    resp_req_read(req, zset__zscore_ready);
}

static void zset__zmscore_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = zset__lookup(req, &wrong);
    if (wrong) return;
    resp_write_array(&req->reply, req->argc - 2);
    for (size_t i = 2; i < req->argc; i++) zset__write_score(req, e, zset__arg(req, i));
}

static void zset__zmscore(resp_req *req)
{
    resp_req_read(req, zset__zmscore_ready);
}

/* ZRANK / ZREVRANK: opt = 1 for the reverse */
static void zset__zrank_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = zset__lookup(req, &wrong);
    if (wrong) return;
    uint64_t rank;
    if (!e || !kv_zset_rank(e, zset__arg(req, 2), &rank)) {
        resp_req_null(req);
        return;
    }
    resp_write_integer(&req->reply, (long long)(req->opt ? kv_zset_len(e) - 1 - rank : rank));
}

static void zset__zrank(resp_req *req)
{
    resp_req_read(req, zset__zrank_ready);
}

static void zset__zrevrank(resp_req *req)
{
    req->opt = 1;
    resp_req_read(req, zset__zrank_ready);
}

static void zset__zcount_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = zset__lookup(req, &wrong);
    if (wrong) return;
    double min, max;
    bool minx, maxx;
    kv_zset_parse_bound(req->argv[2].ptr, req->argv[2].len, &min, &minx);
    kv_zset_parse_bound(req->argv[3].ptr, req->argv[3].len, &max, &maxx);
    uint64_t from = e ? kv_zset_below(e, min, !minx) : 0, to = e ? kv_zset_below(e, max, maxx) : 0;
    resp_write_integer(&req->reply, to > from ? (long long)(to - from) : 0);
}

static void zset__zcount(resp_req *req)
{
    if (zset__bounds_ok(req, 2)) resp_req_read(req, zset__zcount_ready);
}

/* ---- ranges ---------------------------------------------------------------------- */

typedef struct zrange_q {
    kv_zrange r;
    bool withscores;
} zrange_q;

enum { ZR_ZRANGE, ZR_ZREVRANGE, ZR_BYSCORE, ZR_REVBYSCORE, ZR_BYLEX, ZR_REVBYLEX, ZR_STORE };

/* The query of any range command (req->opt says which; ZRANGESTORE's
 * arguments start one later); false after replying the error, in Redis'
 * order. */
static bool zset__range_query(resp_req *req, zrange_q *q)
{
    memset(q, 0, sizeof(*q));
    q->r.count = -1;
    int kind = (int)req->opt;
    size_t at = kind == ZR_STORE ? 3 : 2; /* the first bound */
    bool by_score = kind == ZR_BYSCORE || kind == ZR_REVBYSCORE;
    bool by_lex = kind == ZR_BYLEX || kind == ZR_REVBYLEX;
    bool options = kind == ZR_ZRANGE || kind == ZR_STORE;
    q->r.rev = kind == ZR_ZREVRANGE || kind == ZR_REVBYSCORE || kind == ZR_REVBYLEX;
    for (size_t i = at + 2; i < req->argc; i++) {
        const resp_arg *a = &req->argv[i];
        if (kind != ZR_STORE && resp_format_arg_is(a, "withscores")) {
            q->withscores = true;
        } else if (resp_format_arg_is(a, "limit") && i + 2 < req->argc) {
            if (!resp_req_int_arg(req, &req->argv[i + 1], &q->r.offset) ||
                !resp_req_int_arg(req, &req->argv[i + 2], &q->r.count))
                return false;
            q->r.limited = true;
            i += 2;
        } else if (options && resp_format_arg_is(a, "byscore")) {
            by_score = true;
        } else if (options && resp_format_arg_is(a, "bylex")) {
            by_lex = true;
        } else if (options && resp_format_arg_is(a, "rev")) {
            q->r.rev = true;
        } else {
            resp_req_error_syntax(req);
            return false;
        }
    }
    if (by_score && by_lex) {
        resp_req_error_syntax(req);
        return false;
    }
    if (q->withscores && by_lex) {
        resp_req_error(req, "ERR syntax error, WITHSCORES not supported in combination with BYLEX");
        return false;
    }
    if (q->r.limited && !by_score && !by_lex) {
        resp_req_error(req, "ERR syntax error, LIMIT is only supported in combination with either "
                            "BYSCORE or BYLEX");
        return false;
    }
    q->r.by = by_lex ? KV_ZRANGE_LEX : by_score ? KV_ZRANGE_SCORE : KV_ZRANGE_RANK;
    switch (kv_zrange_bounds(&q->r, zset__arg(req, at), zset__arg(req, at + 1))) {
    case 0:
        return true;
    case KV_ZRANGE_ERR_INT:
        resp_req_error(req, "ERR value is not an integer or out of range");
        return false;
    case KV_ZRANGE_ERR_FLOAT:
        resp_req_error(req, "ERR min or max is not a float");
        return false;
    default:
        resp_req_error(req, "ERR min or max not valid string range item");
        return false;
    }
}

static void zset__range_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = zset__lookup(req, &wrong);
    if (wrong) return;
    zrange_q q;
    zset__range_query(req, &q); /* checked before the read */
    uint64_t from, n;
    kv_zrange_select(e, &q.r, &from, &n);
    bool pairs = q.withscores && req->proto == 3;
    resp_write_array(&req->reply, q.withscores && !pairs ? 2 * n : n);
    if (!n) return;
    kv_zset_iter it;
    kv_slice m;
    double s;
    kv_zset_iter_init(&it, e, from, q.r.rev);
    for (uint64_t i = 0; i < n && kv_zset_iter_next(&it, &m, &s); i++) {
        if (pairs) resp_write_array(&req->reply, 2);
        resp_write_bulk(&req->reply, m.ptr, m.len);
        if (q.withscores) resp_write_double(&req->reply, req->proto, s);
    }
}

static void zset__range(resp_req *req, int kind)
{
    req->opt = (uint32_t)kind;
    zrange_q q;
    if (zset__range_query(req, &q)) resp_req_read(req, zset__range_ready);
}

/* ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]:
 * apply selects, from the arguments as given */
static void zset__zrangestore(resp_req *req)
{
    req->opt = ZR_STORE;
    zrange_q q;
    if (!zset__range_query(req, &q)) return;
    int64_t f = (q.r.by == KV_ZRANGE_SCORE ? KV_ZRS_BYSCORE : 0) |
                (q.r.by == KV_ZRANGE_LEX ? KV_ZRS_BYLEX : 0) | (q.r.rev ? KV_ZRS_REV : 0) |
                (q.r.limited ? KV_ZRS_LIMIT : 0);
    char offset[24], count[24];
    int ol = snprintf(offset, sizeof(offset), "%lld", (long long)q.r.offset);
    int cl = snprintf(count, sizeof(count), "%lld", (long long)q.r.count);
    kv_slice args[6] = {zset__arg(req, 1), zset__arg(req, 2),    zset__arg(req, 3),
                        zset__arg(req, 4), {offset, (size_t)ol}, {count, (size_t)cl}};
    kv_command cmd = {.op = KV_OP_ZRANGESTORE, .a = f, .nargs = 6, .args = args};
    resp_req_propose(req, &cmd, resp_reply_integer);
}

static void zset__zrange(resp_req *req)
{
    zset__range(req, ZR_ZRANGE);
}

static void zset__zrevrange(resp_req *req)
{
    zset__range(req, ZR_ZREVRANGE);
}

static void zset__zrangebyscore(resp_req *req)
{
    zset__range(req, ZR_BYSCORE);
}

static void zset__zrevrangebyscore(resp_req *req)
{
    zset__range(req, ZR_REVBYSCORE);
}

static void zset__zrangebylex(resp_req *req)
{
    zset__range(req, ZR_BYLEX);
}

static void zset__zrevrangebylex(resp_req *req)
{
    zset__range(req, ZR_REVBYLEX);
}

static bool zset__lex_ok(resp_req *req, size_t i, kv_lex_bound *min, kv_lex_bound *max)
{
    if (kv_zset_parse_lex(req->argv[i].ptr, req->argv[i].len, min) &&
        kv_zset_parse_lex(req->argv[i + 1].ptr, req->argv[i + 1].len, max))
        return true;
    resp_req_error(req, "ERR min or max not valid string range item");
    return false;
}

static void zset__zlexcount_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = zset__lookup(req, &wrong);
    if (wrong) return;
    kv_lex_bound min, max;
    zset__lex_ok(req, 2, &min, &max); /* checked before the read */
    uint64_t from = e ? kv_zset_lex_first(e, &min) : 0, to = e ? kv_zset_lex_end(e, &max) : 0;
    resp_write_integer(&req->reply, to > from ? (long long)(to - from) : 0);
}

static void zset__zlexcount(resp_req *req)
{
    kv_lex_bound min, max;
    if (zset__lex_ok(req, 2, &min, &max)) resp_req_read(req, zset__zlexcount_ready);
}

static void zset__zremrangebylex(resp_req *req)
{
    kv_lex_bound min, max;
    if (zset__lex_ok(req, 2, &min, &max))
        resp_req_propose_args(req, 1, 3, KV_OP_ZREMRANGEBYLEX, 0, 0, 0, resp_reply_integer);
}

/* ---- ZUNION, ZINTER, ZDIFF (and STORE), ZINTERCARD --------------------------- */

typedef struct zcomb_q {
    size_t first, n; /* the keys: argv[first .. first + n) */
    double *w;       /* n weights (1 unless WEIGHTS) */
    int agg;
    bool withscores;
} zcomb_q;

/* numkeys at argv[at], then the keys and the options; store: a STORE
 * command (no WITHSCORES), diff: ZDIFF (no WEIGHTS or AGGREGATE). With
 * numkeys_only, stop after numkeys (the rest is checked after the keys'
 * types, as Redis does). False after replying the error. */
static bool zset__comb_args(resp_req *req, size_t at, bool store, bool diff, bool numkeys_only,
                            zcomb_q *q)
{
    int64_t numkeys;
    if (!resp_req_int_arg(req, &req->argv[at], &numkeys)) return false;
    if (numkeys < 1) {
        resp_req_errorf(req, "ERR at least 1 input key is needed for '%s' command", req->cmd->name);
        return false;
    }
    if ((uint64_t)numkeys > req->argc - at - 1) {
        resp_req_error_syntax(req);
        return false;
    }
    q->first = at + 1;
    q->n = (size_t)numkeys;
    q->agg = KV_ZAGG_SUM;
    q->withscores = false;
    if (numkeys_only) return true;
    for (size_t i = 0; i < q->n; i++) q->w[i] = 1;
    for (size_t i = q->first + q->n; i < req->argc; i++) {
        size_t left = req->argc - i - 1;
        const resp_arg *a = &req->argv[i];
        if (!diff && left >= q->n && resp_format_arg_is(a, "weights")) {
            for (size_t k = 0; k < q->n; k++) {
                const resp_arg *v = &req->argv[i + 1 + k];
                if (!kv_zset_parse_score(v->ptr, v->len, &q->w[k])) {
                    resp_req_error(req, "ERR weight value is not a float");
                    return false;
                }
            }
            i += q->n;
        } else if (!diff && left >= 1 && resp_format_arg_is(a, "aggregate")) {
            const resp_arg *v = &req->argv[++i];
            if (resp_format_arg_is(v, "sum"))
                q->agg = KV_ZAGG_SUM;
            else if (resp_format_arg_is(v, "min"))
                q->agg = KV_ZAGG_MIN;
            else if (resp_format_arg_is(v, "max"))
                q->agg = KV_ZAGG_MAX;
            else {
                resp_req_error_syntax(req);
                return false;
            }
        } else if (!store && resp_format_arg_is(a, "withscores")) {
            q->withscores = true;
        } else {
            resp_req_error_syntax(req);
            return false;
        }
    }
    return true;
}

/* The sources at argv[first .. first + n): sorted sets or sets; false
 * after WRONGTYPE. */
static bool zset__gather(resp_req *req, size_t first, size_t n, const kv_entry **srcs)
{
    for (size_t i = 0; i < n; i++) {
        kv_entry *e = resp_req_lookup(req, &req->argv[first + i]);
        if (e && e->type != KV_TYPE_ZSET && e->type != KV_TYPE_SET) {
            resp_req_wrongtype(req);
            return false;
        }
        srcs[i] = e;
    }
    return true;
}

/* ZUNION, ZINTER, ZDIFF: opt the operation */
static void zset__comb_ready(resp_req *req)
{
    zcomb_q q;
    zset__comb_args(req, 1, false, false, true, &q); /* numkeys: checked before the read */
    const kv_entry **srcs = xcalloc(q.n, sizeof(*srcs));
    q.w = xcalloc(q.n, sizeof(*q.w));
    if (zset__gather(req, q.first, q.n, srcs) &&
        zset__comb_args(req, 1, false, req->opt == KV_ZCOMB_DIFF, false, &q)) {
        kv_keyspace tmp;
        kv_keyspace_init(&tmp, 1);
        kv_entry *out = kv_keyspace_insert(&tmp, "", 0, NULL, 0);
        kv_zset_init(&tmp, out);
        kv_zset_combine(&tmp, out, srcs, q.n, q.w, q.agg, (int)req->opt);
        size_t n = (size_t)kv_zset_len(out);
        bool pairs = q.withscores && req->proto == 3;
        resp_write_array(&req->reply, q.withscores && !pairs ? 2 * n : n);
        kv_zset_iter it;
        kv_slice m;
        double s;
        kv_zset_iter_init(&it, out, 0, false);
        while (kv_zset_iter_next(&it, &m, &s)) {
            if (pairs) resp_write_array(&req->reply, 2);
            resp_write_bulk(&req->reply, m.ptr, m.len);
            if (q.withscores) resp_write_double(&req->reply, req->proto, s);
        }
        kv_keyspace_close(&tmp);
    }
    free(q.w);
    free(srcs);
}

static void zset__comb(resp_req *req, int op)
{
    zcomb_q q;
    if (!zset__comb_args(req, 1, false, false, true, &q)) return;
    req->opt = (uint32_t)op;
    resp_req_read(req, zset__comb_ready);
}

static void zset__zunion(resp_req *req)
{
    zset__comb(req, KV_ZCOMB_UNION);
}

static void zset__zinter(resp_req *req)
{
    zset__comb(req, KV_ZCOMB_INTER);
}

static void zset__zdiff(resp_req *req)
{
    zset__comb(req, KV_ZCOMB_DIFF);
}

/* A STORE whose options are bad: Redis looks at the sources' types first,
 * so a wrong-typed source answers WRONGTYPE; a read (after the writes
 * before it) finds out, and otherwise the options' error is the answer. */
static void zset__comb_store_refused(resp_req *req)
{
    zcomb_q q;
    zset__comb_args(req, 2, true, false, true, &q); /* numkeys: checked before */
    const kv_entry **srcs = xcalloc(q.n, sizeof(*srcs));
    q.w = xcalloc(q.n, sizeof(*q.w));
    if (zset__gather(req, q.first, q.n, srcs))
        zset__comb_args(req, 2, true, req->opt == KV_ZCOMB_DIFF, false, &q);
    free(q.w);
    free(srcs);
}

/* ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE: dst, the keys, a weight each */
static void zset__comb_store(resp_req *req, int op)
{
    zcomb_q q;
    if (!resp_auth_extra_key(req, &req->argv[1])) return;
    if (!zset__comb_args(req, 2, true, false, true, &q)) return;
    q.w = xcalloc(q.n, sizeof(*q.w));
    size_t mark = req->reply.len;
    if (!zset__comb_args(req, 2, true, op == KV_ZCOMB_DIFF, false, &q)) {
        req->reply.len = mark; /* the answer waits for the types */
        req->outcome = RESP_OUTCOME_OK;
        req->opt = (uint32_t)op;
        resp_req_read(req, zset__comb_store_refused);
    } else {
        size_t n = 1 + 2 * q.n;
        kv_slice *args = xcalloc(n, sizeof(*args));
        char *text = xmalloc(q.n * 32);
        args[0] = zset__arg(req, 1);
        for (size_t i = 0; i < q.n; i++) {
            args[1 + i] = zset__arg(req, q.first + i);
            int len = snprintf(text + 32 * i, 32, "%.17g", q.w[i]);
            args[1 + q.n + i] = (kv_slice){text + 32 * i, (size_t)len};
        }
        kv_command cmd = {
            .op = KV_OP_ZSTORE, .a = op, .b = q.agg, .nargs = (uint32_t)n, .args = args};
        resp_req_propose(req, &cmd, resp_reply_integer);
        free(text);
        free(args);
    }
    free(q.w);
}

static void zset__zunionstore(resp_req *req)
{
    zset__comb_store(req, KV_ZCOMB_UNION);
}

static void zset__zinterstore(resp_req *req)
{
    zset__comb_store(req, KV_ZCOMB_INTER);
}

static void zset__zdiffstore(resp_req *req)
{
    zset__comb_store(req, KV_ZCOMB_DIFF);
}

/* ZINTERCARD numkeys key [key ...] [LIMIT limit]: n[0] numkeys, n[1] limit */
static void zset__zintercard_ready(resp_req *req)
{
    size_t n = (size_t)req->n[0];
    const kv_entry **srcs = xcalloc(n, sizeof(*srcs));
    if (zset__gather(req, 2, n, srcs))
        resp_write_integer(&req->reply, (long long)kv_zset_intercard(srcs, n, (uint64_t)req->n[1]));
    free(srcs);
}

static void zset__zintercard(resp_req *req)
{
    zcomb_q q;
    if (!zset__comb_args(req, 1, true, true, true, &q)) return; /* Redis' ZUNION rules */
    req->n[0] = (int64_t)q.n;
    req->n[1] = 0;
    for (size_t i = 2 + q.n; i < req->argc; i += 2) {
        int64_t limit;
        if (!resp_format_arg_is(&req->argv[i], "limit") || i + 1 >= req->argc) {
            resp_req_error_syntax(req);
            return;
        }
        if (!strconv_parse_i64(req->argv[i + 1].ptr, req->argv[i + 1].len, &limit) || limit < 0) {
            resp_req_error(req, "ERR LIMIT can't be negative");
            return;
        }
        req->n[1] = limit;
    }
    resp_req_read(req, zset__zintercard_ready);
}

/* ZRANDMEMBER key [count [WITHSCORES]]: n[0] count, opt WITHSCORES */
static void zset__zrandmember_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = zset__lookup(req, &wrong);
    if (wrong) return;
    bool counted = req->argc >= 3, scores = req->opt;
    uint64_t len = e ? kv_zset_len(e) : 0;
    if (!counted && !len) {
        resp_req_null(req);
        return;
    }
    size_t n;
    uint64_t *idx = resp_random_positions(len, counted ? req->n[0] : 1, &n);
    bool pairs = scores && req->proto == 3;
    if (counted) resp_write_array(&req->reply, scores && !pairs ? 2 * n : n);
    kv_zset_iter it;
    kv_slice m;
    double s;
    if (e) kv_zset_iter_init(&it, e, 0, false);
    size_t k = 0;
    for (uint64_t pos = 0; k < n && kv_zset_iter_next(&it, &m, &s); pos++)
        for (; k < n && idx[k] == pos; k++) {
            if (pairs) resp_write_array(&req->reply, 2);
            resp_write_bulk(&req->reply, m.ptr, m.len);
            if (scores) resp_write_double(&req->reply, req->proto, s);
        }
    free(idx);
}

static void zset__zrandmember(resp_req *req)
{
    if (req->argc > 4 || (req->argc == 4 && !resp_format_arg_is(&req->argv[3], "withscores"))) {
        resp_req_error_syntax(req);
        return;
    }
    if (req->argc >= 3 && !resp_req_random_count(req, &req->argv[2], &req->n[0])) return;
    req->opt = req->argc == 4;
    resp_req_read(req, zset__zrandmember_ready);
}

/* ZSCAN key cursor [MATCH pattern] [COUNT count] */
static void zset__zscan_visit(void *ctx, kv_slice m, double score)
{
    resp_scan *sc = ctx;
    if (!resp_scan_take(sc, m)) return;
    char text[64];
    int n = snprintf(text, sizeof(text), "%.17g", score);
    resp_write_bulk(&sc->body, text, (size_t)n);
}

static uint64_t zset__zscan_step(const kv_entry *e, uint64_t cursor, resp_scan *sc)
{
    return kv_zset_scan(e, cursor, zset__zscan_visit, sc);
}

static void zset__zscan_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = zset__lookup(req, &wrong);
    if (!wrong) resp_req_scan_reply(req, e, zset__zscan_step, 2);
}

static void zset__zscan(resp_req *req)
{
    if (resp_req_scan_args(req)) resp_req_read(req, zset__zscan_ready);
}

/* ---- the table ------------------------------------------------------------------ */

#define W RESP_CMD_WRITE
#define R RESP_CMD_READONLY
#define D RESP_CMD_DENYOOM
#define F RESP_CMD_FAST
#define NK RESP_CMD_NUMKEYS
#define B RESP_CMD_BLOCKING

const resp_cmd resp_cmds_zsets[] = {
    {"zadd", zset__zadd, -4, W | D | F, 1, 1, 1, "sortedset", "1.2.0", "O(log(N))",
     "Add members to a sorted set, or update their scores",
     "key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...]"},
    {"zincrby", zset__zincrby, 4, W | D | F, 1, 1, 1, "sortedset", "1.2.0", "O(log(N))",
     "Increment the score of a member", "key increment member"},
    {"zrem", zset__zrem, -3, W | F, 1, 1, 1, "sortedset", "1.2.0", "O(M*log(N))",
     "Remove members from a sorted set", "key member [member ...]"},
    {"zcard", zset__zcard, 2, R | F, 1, 1, 1, "sortedset", "1.2.0", "O(1)",
     "Return the number of members of a sorted set", "key"},
    {"zscore", zset__zscore, 3, R | F, 1, 1, 1, "sortedset", "1.2.0", "O(1)",
     "Return the score of a member", "key member"},
    {"zmscore", zset__zmscore, -3, R | F, 1, 1, 1, "sortedset", "6.2.0", "O(N)",
     "Return the scores of members", "key member [member ...]"},
    {"zrank", zset__zrank, 3, R | F, 1, 1, 1, "sortedset", "2.0.0", "O(log(N))",
     "Return the rank of a member, lowest score first", "key member"},
    {"zrevrank", zset__zrevrank, 3, R | F, 1, 1, 1, "sortedset", "2.0.0", "O(log(N))",
     "Return the rank of a member, highest score first", "key member"},
    {"zcount", zset__zcount, 4, R | F, 1, 1, 1, "sortedset", "2.0.0", "O(log(N))",
     "Count the members with scores in a range", "key min max"},
    {"zrange", zset__zrange, -4, R, 1, 1, 1, "sortedset", "1.2.0", "O(log(N)+M)",
     "Return a range of members by rank or score",
     "key start stop [BYSCORE|BYLEX] [REV] [LIMIT offset count] [WITHSCORES]"},
    {"zrevrange", zset__zrevrange, -4, R, 1, 1, 1, "sortedset", "1.2.0", "O(log(N)+M)",
     "Return a range of members by rank, highest score first", "key start stop [WITHSCORES]"},
    {"zrangebyscore", zset__zrangebyscore, -4, R, 1, 1, 1, "sortedset", "1.0.5", "O(log(N)+M)",
     "Return the members with scores in a range", "key min max [WITHSCORES] [LIMIT offset count]"},
    {"zrevrangebyscore", zset__zrevrangebyscore, -4, R, 1, 1, 1, "sortedset", "2.2.0",
     "O(log(N)+M)", "Return the members with scores in a range, highest first",
     "key max min [WITHSCORES] [LIMIT offset count]"},
    {"zrangebylex", zset__zrangebylex, -4, R, 1, 1, 1, "sortedset", "2.8.9", "O(log(N)+M)",
     "Return the members in a lexicographical range", "key min max [LIMIT offset count]"},
    {"zrevrangebylex", zset__zrevrangebylex, -4, R, 1, 1, 1, "sortedset", "2.8.9", "O(log(N)+M)",
     "Return the members in a lexicographical range, highest first",
     "key max min [LIMIT offset count]"},
    {"zlexcount", zset__zlexcount, 4, R | F, 1, 1, 1, "sortedset", "2.8.9", "O(log(N))",
     "Count the members in a lexicographical range", "key min max"},
    {"zremrangebylex", zset__zremrangebylex, 4, W, 1, 1, 1, "sortedset", "2.8.9", "O(log(N)+M)",
     "Remove the members in a lexicographical range", "key min max"},
    {"zpopmin", zset__zpopmin, -2, W | F, 1, 1, 1, "sortedset", "5.0.0", "O(log(N)*M)",
     "Remove and return the members with the lowest scores", "key [count]"},
    {"zpopmax", zset__zpopmax, -2, W | F, 1, 1, 1, "sortedset", "5.0.0", "O(log(N)*M)",
     "Remove and return the members with the highest scores", "key [count]"},
    {"zmpop", zset__zmpop, -4, W | NK, 1, 0, 1, "sortedset", "7.0.0", "O(K)+O(M*log(N))",
     "Pop members from the first non-empty sorted set",
     "numkeys key [key ...] (MIN|MAX) [COUNT count]"},
    {"bzmpop", zset__bzmpop, -5, W | B | NK, 2, 0, 1, "sortedset", "7.0.0", "O(K)+O(M*log(N))",
     "Pop members from the first non-empty sorted set, or block until one is added",
     "timeout numkeys key [key ...] (MIN|MAX) [COUNT count]"},
    {"bzpopmin", zset__bzpopmin, -3, W | F | B, 1, -2, 1, "sortedset", "5.0.0", "O(log(N))",
     "Pop the member with the lowest score of the first non-empty sorted set, or block",
     "key [key ...] timeout"},
    {"bzpopmax", zset__bzpopmax, -3, W | F | B, 1, -2, 1, "sortedset", "5.0.0", "O(log(N))",
     "Pop the member with the highest score of the first non-empty sorted set, or block",
     "key [key ...] timeout"},
    {"zrangestore", zset__zrangestore, -5, W | D, 1, 2, 1, "sortedset", "6.2.0", "O(log(N)+M)",
     "Store a range of members of a sorted set",
     "dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]"},
    {"zremrangebyrank", zset__zremrangebyrank, 4, W, 1, 1, 1, "sortedset", "2.0.0", "O(log(N)+M)",
     "Remove the members in a range of ranks", "key start stop"},
    {"zremrangebyscore", zset__zremrangebyscore, 4, W, 1, 1, 1, "sortedset", "1.2.0", "O(log(N)+M)",
     "Remove the members with scores in a range", "key min max"},
    {"zunion", zset__zunion, -3, R | NK, 1, 0, 1, "sortedset", "6.2.0", "O(N)+O(M*log(M))",
     "Return the union of sorted sets",
     "numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]"},
    {"zinter", zset__zinter, -3, R | NK, 1, 0, 1, "sortedset", "6.2.0", "O(N*K)+O(M*log(M))",
     "Return the intersection of sorted sets",
     "numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]"},
    {"zdiff", zset__zdiff, -3, R | NK, 1, 0, 1, "sortedset", "6.2.0", "O(L + (N-K)log(N))",
     "Return the difference of the first sorted set and the others",
     "numkeys key [key ...] [WITHSCORES]"},
    {"zunionstore", zset__zunionstore, -4, W | D | NK | RESP_CMD_MAY_READ, 2, 0, 1, "sortedset",
     "2.0.0", "O(N)+O(M log(M))", "Store the union of sorted sets",
     "destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM|MIN|MAX]"},
    {"zinterstore", zset__zinterstore, -4, W | D | NK | RESP_CMD_MAY_READ, 2, 0, 1, "sortedset",
     "2.0.0", "O(N*K)+O(M*log(M))", "Store the intersection of sorted sets",
     "destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM|MIN|MAX]"},
    {"zdiffstore", zset__zdiffstore, -4, W | D | NK | RESP_CMD_MAY_READ, 2, 0, 1, "sortedset",
     "6.2.0", "O(L + (N-K)log(N))", "Store the difference of the first sorted set and the others",
     "destination numkeys key [key ...]"},
    {"zintercard", zset__zintercard, -3, R | NK, 1, 0, 1, "sortedset", "7.0.0", "O(N*K)",
     "Return the size of the intersection of sorted sets", "numkeys key [key ...] [LIMIT limit]"},
    {"zrandmember", zset__zrandmember, -2, R, 1, 1, 1, "sortedset", "6.2.0", "O(N)",
     "Return random members of a sorted set", "key [count [WITHSCORES]]"},
    {"zscan", zset__zscan, -3, R, 1, 1, 1, "sortedset", "2.8.0", "O(1)",
     "Iterate over the members and scores of a sorted set",
     "key cursor [MATCH pattern] [COUNT count]"},
};
const size_t resp_cmds_zsets_count = sizeof(resp_cmds_zsets) / sizeof(resp_cmds_zsets[0]);
