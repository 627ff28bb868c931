/* resp_cmd_hashes: the hash commands (HSET and family; issue 12).
 *
 * Writes are one kv command each (KV_OP_HSET, HDEL, HINCR, HINCRFLOAT:
 * kv/store.c applies them; kv/hash.h holds the encodings); reads run on
 * the local store once the read is safe, like GET. Argument checks and
 * error texts follow Redis 7.0, checked against redis-server by
 * tests/integration/test_resp_hashes.py. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/resp_internal.h"
#include "kv/hash.h"
#include "util/alloc.h"
#include "util/glob.h"
#include "util/strconv.h"

static kv_entry *hash__lookup(resp_req *req, bool *wrong)
{
    return resp_req_lookup_typed(req, &req->argv[1], KV_TYPE_HASH, wrong);
}

static kv_slice hash__arg(const resp_req *req, size_t i)
{
    return (kv_slice){req->argv[i].ptr, req->argv[i].len};
}

/* Fields and values are bounded like string values. */
static bool hash__check_args(resp_req *req, size_t from)
{
    for (size_t i = from; i < req->argc; i++)
        if (!resp_req_check_value(req, &req->argv[i])) return false;
    return true;
}

/* ---- writes -------------------------------------------------------------------- */

static void hash__reply_applied(resp_req *req, const kv_result *res)
{
    resp_write_integer(&req->reply, res->status == KV_ERR_PRECONDITION ? 0 : 1);
}

static void hash__reply_value(resp_req *req, const kv_result *res)
{
    resp_write_bulk(&req->reply, res->value, res->value_len);
}

/* The command's arguments: the request's argv[1 .. n] (key first). */
static bool hash__pairs_ok(resp_req *req)
{
    if ((req->argc - 2) % 2 != 0) {
        resp_req_error_arity(req);
        return false;
    }
    return hash__check_args(req, 2);
}

static void hash__hset(resp_req *req)
{
    if (!hash__pairs_ok(req)) return;
    resp_req_propose_args(req, 1, req->argc - 1, KV_OP_HSET, 0, 0, 0, resp_reply_integer);
}

static void hash__hmset(resp_req *req)
{
    if (!hash__pairs_ok(req)) return;
    resp_req_propose_args(req, 1, req->argc - 1, KV_OP_HSET, 0, 0, 0, resp_reply_ok);
}

static void hash__hsetnx(resp_req *req)
{
    if (!hash__check_args(req, 2)) return;
    resp_req_propose_args(req, 1, 3, KV_OP_HSET, KV_FLAG_NX, 0, 0, hash__reply_applied);
}

static void hash__hdel(resp_req *req)
{
    resp_req_propose_args(req, 1, req->argc - 1, KV_OP_HDEL, 0, 0, 0, resp_reply_integer);
}

static void hash__hincrby(resp_req *req)
{
    int64_t delta;
    if (!resp_req_int_arg(req, &req->argv[3], &delta)) return;
    /* key and field; the increment travels in the command's a */
    resp_req_propose_args(req, 1, 2, KV_OP_HINCR, 0, delta, 0, resp_reply_integer);
}

static void hash__hincrbyfloat(resp_req *req)
{
    long double incr;
    if (!strconv_parse_ld(req->argv[3].ptr, req->argv[3].len, &incr)) {
        resp_req_error(req, "ERR value is not a valid float");
        return;
    }
    if (isnan(incr) || isinf(incr)) { /* checked before the field, as Redis does */
        resp_req_error(req, "ERR value is NaN or Infinity");
        return;
    }
    resp_req_propose_args(req, 1, 3, KV_OP_HINCRFLOAT, 0, 0, 0, hash__reply_value);
}

/* ---- reads --------------------------------------------------------------------- */

static void hash__hget_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = hash__lookup(req, &wrong);
    kv_slice v;
    if (wrong) return;
    if (e && kv_hash_get(e, hash__arg(req, 2), &v))
        resp_write_bulk(&req->reply, v.ptr, v.len);
    else
        resp_req_null(req);
}

static void hash__hget(resp_req *req)
{
    resp_req_read(req, hash__hget_ready);
}

static void hash__hmget_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = hash__lookup(req, &wrong);
    if (wrong) return;
    resp_write_array(&req->reply, req->argc - 2);
    for (size_t i = 2; i < req->argc; i++) {
        kv_slice v;
        if (e && kv_hash_get(e, hash__arg(req, i), &v))
            resp_write_bulk(&req->reply, v.ptr, v.len);
        else
            resp_req_null(req);
    }
}

static void hash__hmget(resp_req *req)
{
    resp_req_read(req, hash__hmget_ready);
}

static void hash__hlen_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = hash__lookup(req, &wrong);
    if (!wrong) resp_write_integer(&req->reply, e ? (long long)kv_hash_len(e) : 0);
}

static void hash__hlen(resp_req *req)
{
    resp_req_read(req, hash__hlen_ready);
}

static void hash__hexists_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = hash__lookup(req, &wrong);
    kv_slice v;
    if (!wrong) resp_write_integer(&req->reply, e && kv_hash_get(e, hash__arg(req, 2), &v));
}

static void hash__hexists(resp_req *req)
{
    resp_req_read(req, hash__hexists_ready);
}

static void hash__hstrlen_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = hash__lookup(req, &wrong);
    kv_slice v;
    if (!wrong)
        resp_write_integer(&req->reply,
                           e && kv_hash_get(e, hash__arg(req, 2), &v) ? (long long)v.len : 0);
}

static void hash__hstrlen(resp_req *req)
{
    resp_req_read(req, hash__hstrlen_ready);
}

enum { HASH_FIELDS = 1, HASH_VALUES = 2 };

/* HGETALL (a map in RESP3), HKEYS, HVALS */
static void hash__walk(resp_req *req, int what)
{
    bool wrong;
    kv_entry *e = hash__lookup(req, &wrong);
    if (wrong) return;
    size_t n = e ? kv_hash_len(e) : 0;
    if (what == (HASH_FIELDS | HASH_VALUES))
        resp_write_map(&req->reply, req->proto, n);
    else
        resp_write_array(&req->reply, n);
    if (!e) return;
    kv_hash_iter it;
    kv_slice f, v;
    kv_hash_iter_init(&it, e);
    while (kv_hash_iter_next(&it, &f, &v)) {
        if (what & HASH_FIELDS) resp_write_bulk(&req->reply, f.ptr, f.len);
        if (what & HASH_VALUES) resp_write_bulk(&req->reply, v.ptr, v.len);
    }
}

static void hash__hgetall_ready(resp_req *req)
{
    hash__walk(req, HASH_FIELDS | HASH_VALUES);
}

static void hash__hkeys_ready(resp_req *req)
{
    hash__walk(req, HASH_FIELDS);
}

static void hash__hvals_ready(resp_req *req)
{
    hash__walk(req, HASH_VALUES);
}

static void hash__hgetall(resp_req *req)
{
    resp_req_read(req, hash__hgetall_ready);
}

static void hash__hkeys(resp_req *req)
{
    resp_req_read(req, hash__hkeys_ready);
}

static void hash__hvals(resp_req *req)
{
    resp_req_read(req, hash__hvals_ready);
}

static void hash__write_picked(void *ctx, kv_slice f, kv_slice v)
{
    resp_req *req = ctx;
    if (req->opt && req->proto == 3) resp_write_array(&req->reply, 2);
    resp_write_bulk(&req->reply, f.ptr, f.len);
    if (req->opt) resp_write_bulk(&req->reply, v.ptr, v.len);
}

/* HRANDFIELD key [count [WITHVALUES]]: n[0] count, opt WITHVALUES */
static void hash__hrandfield_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = hash__lookup(req, &wrong);
    if (wrong) return;
    bool counted = req->argc >= 3, values = req->opt;
    uint64_t len = e ? kv_hash_len(e) : 0;
    if (!counted && !len) {
        resp_req_null(req);
        return;
    }
    size_t n;
    uint64_t *idx = resp_random_positions(len, counted ? req->n[0] : 1, &n);
    bool pairs = values && req->proto == 3;
    if (counted) resp_write_array(&req->reply, values && !pairs ? 2 * n : n);
    if (e && n) kv_hash_pick(e, idx, n, hash__write_picked, req);
    free(idx);
}

static void hash__hrandfield(resp_req *req)
{
    if (req->argc > 4 || (req->argc == 4 && !resp_format_arg_is(&req->argv[3], "withvalues"))) {
        resp_req_error_syntax(req);
        return;
    }
    if (req->argc >= 3 && !resp_req_random_count(req, &req->argv[2], &req->n[0])) return;
    req->opt = req->argc == 4;
    resp_req_read(req, hash__hrandfield_ready);
}

/* HSCAN key cursor [MATCH pattern] [COUNT count] */
static void hash__hscan_visit(void *ctx, kv_slice f, kv_slice v)
{
    resp_scan *sc = ctx;
    if (resp_scan_take(sc, f)) resp_write_bulk(&sc->body, v.ptr, v.len);
}

static uint64_t hash__hscan_step(const kv_entry *e, uint64_t cursor, resp_scan *sc)
{
    return kv_hash_scan(e, cursor, hash__hscan_visit, sc);
}

static void hash__hscan_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = hash__lookup(req, &wrong);
    if (!wrong) resp_req_scan_reply(req, e, hash__hscan_step, 2);
}

static void hash__hscan(resp_req *req)
{
    if (resp_req_scan_args(req)) resp_req_read(req, hash__hscan_ready);
}

/* ---- the table ------------------------------------------------------------------ */

#define W RESP_CMD_WRITE
#define R RESP_CMD_READONLY
#define D RESP_CMD_DENYOOM
#define F RESP_CMD_FAST

const resp_cmd resp_cmds_hashes[] = {
    {"hrandfield", hash__hrandfield, -2, R, 1, 1, 1, "hash", "6.2.0", "O(N)",
     "Return random fields of a hash", "key [count [WITHVALUES]]"},
    {"hset", hash__hset, -4, W | D | F, 1, 1, 1, "hash", "2.0.0", "O(N)",
     "Set fields of a hash; returns how many were new", "key field value [field value ...]"},
    {"hmset", hash__hmset, -4, W | D | F, 1, 1, 1, "hash", "2.0.0", "O(N)",
     "Set fields of a hash (deprecated form of HSET)", "key field value [field value ...]"},
    {"hsetnx", hash__hsetnx, 4, W | D | F, 1, 1, 1, "hash", "2.0.0", "O(1)",
     "Set a field of a hash only if it does not exist", "key field value"},
    {"hget", hash__hget, 3, R | F, 1, 1, 1, "hash", "2.0.0", "O(1)",
     "Return the value of a field of a hash", "key field"},
    {"hmget", hash__hmget, -3, R | F, 1, 1, 1, "hash", "2.0.0", "O(N)",
     "Return the values of fields of a hash", "key field [field ...]"},
    {"hdel", hash__hdel, -3, W | F, 1, 1, 1, "hash", "2.0.0", "O(N)",
     "Remove fields from a hash (an emptied hash is deleted)", "key field [field ...]"},
    {"hlen", hash__hlen, 2, R | F, 1, 1, 1, "hash", "2.0.0", "O(1)",
     "Return the number of fields of a hash", "key"},
    {"hexists", hash__hexists, 3, R | F, 1, 1, 1, "hash", "2.0.0", "O(1)",
     "Whether a field exists in a hash", "key field"},
    {"hstrlen", hash__hstrlen, 3, R | F, 1, 1, 1, "hash", "3.2.0", "O(1)",
     "Return the length of a field's value", "key field"},
    {"hgetall", hash__hgetall, 2, R, 1, 1, 1, "hash", "2.0.0", "O(N)",
     "Return every field and value of a hash", "key"},
    {"hkeys", hash__hkeys, 2, R, 1, 1, 1, "hash", "2.0.0", "O(N)", "Return every field of a hash",
     "key"},
    {"hvals", hash__hvals, 2, R, 1, 1, 1, "hash", "2.0.0", "O(N)", "Return every value of a hash",
     "key"},
    {"hincrby", hash__hincrby, 4, W | D | F, 1, 1, 1, "hash", "2.0.0", "O(1)",
     "Add an amount to the integer value of a field", "key field increment"},
    {"hscan", hash__hscan, -3, R, 1, 1, 1, "hash", "2.8.0", "O(1) per call",
     "Iterate over the fields of a hash incrementally with a cursor",
     "key cursor [MATCH pattern] [COUNT count]"},
    {"hincrbyfloat", hash__hincrbyfloat, 4, W | D | F, 1, 1, 1, "hash", "2.6.0", "O(1)",
     "Add an amount to the float value of a field", "key field increment"},
};
const size_t resp_cmds_hashes_count = sizeof(resp_cmds_hashes) / sizeof(resp_cmds_hashes[0]);
