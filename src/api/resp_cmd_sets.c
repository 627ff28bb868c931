/* resp_cmd_sets: the set commands (SADD and family; issue 12).
 *
 * Writes are one kv command each (KV_OP_SADD, SREM, SPOP, SMOVE, SSTORE:
 * kv/store.c applies them; kv/set.h holds the encodings). SPOP's random
 * choice is made in the state machine from a seed this node draws and
 * the command carries, so every replica removes the same members. Reads
 * run on the local store once the read is safe; SINTER, SUNION and SDIFF
 * build their result in a scratch keyspace. Argument checks, error texts
 * and reply types (a set in RESP3 where Redis sends one) follow Redis 7.0,
 * checked against redis-server by tests/integration/test_resp_sets.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/resp_internal.h"
#include "kv/set.h"
#include "util/alloc.h"
#include "util/glob.h"
#include "util/strconv.h"

static kv_slice set__arg(const resp_req *req, size_t i)
{
    return (kv_slice){req->argv[i].ptr, req->argv[i].len};
}

static kv_entry *set__lookup(resp_req *req, size_t i, bool *wrong)
{
    return resp_req_lookup_typed(req, &req->argv[i], KV_TYPE_SET, wrong);
}

/* argv[first .. first + n) as the command's arguments */
/* ---- writes -------------------------------------------------------------------- */

static void set__sadd(resp_req *req)
{
    for (size_t i = 2; i < req->argc; i++)
        if (!resp_req_check_value(req, &req->argv[i])) return;
    resp_req_propose_args(req, 1, req->argc - 1, KV_OP_SADD, 0, 0, 0, resp_reply_integer);
}

static void set__srem(resp_req *req)
{
    resp_req_propose_args(req, 1, req->argc - 1, KV_OP_SREM, 0, 0, 0, resp_reply_integer);
}

static void set__smove(resp_req *req)
{
    resp_req_propose_args(req, 1, 3, KV_OP_SMOVE, 0, 0, 0, resp_reply_integer);
}

static void set__reply_popped_one(resp_req *req, const kv_result *res)
{
    size_t pos = 0;
    kv_slice m;
    if (res->has_value && kv_result_popped_next(res, &pos, &m))
        resp_write_bulk(&req->reply, m.ptr, m.len);
    else
        resp_req_null(req);
}

static void set__reply_popped(resp_req *req, const kv_result *res)
{
    resp_write_set(&req->reply, req->proto, (size_t)res->integer);
    size_t pos = 0;
    kv_slice m;
    while (res->has_value && kv_result_popped_next(res, &pos, &m))
        resp_write_bulk(&req->reply, m.ptr, m.len);
}

/* A seed for the state machine's choice: any value will do, as long as
 * the command carries it (every replica then picks alike). */
static int64_t set__seed(void)
{
    static uint64_t counter;
    return (int64_t)(((uint64_t)replica_now_ms() << 20) ^ (++counter * 0x9e3779b97f4a7c15ULL));
}

static void set__spop(resp_req *req)
{
    if (req->argc > 3) {
        resp_req_error_syntax(req);
        return;
    }
    if (req->argc == 2) {
        resp_req_propose_args(req, 1, 1, KV_OP_SPOP, 0, -1, set__seed(), set__reply_popped_one);
        return;
    }
    int64_t count;
    if (!strconv_parse_i64(req->argv[2].ptr, req->argv[2].len, &count) || count < 0) {
        resp_req_error(req, "ERR value is out of range, must be positive");
        return;
    }
    resp_req_propose_args(req, 1, 1, KV_OP_SPOP, 0, count, set__seed(), set__reply_popped);
}

/* SINTERSTORE, SUNIONSTORE, SDIFFSTORE */
static void set__store(resp_req *req, int op)
{
    resp_req_propose_args(req, 1, req->argc - 1, KV_OP_SSTORE, 0, op, 0, resp_reply_integer);
}

static void set__sinterstore(resp_req *req)
{
    set__store(req, KV_SET_INTER);
}

static void set__sunionstore(resp_req *req)
{
    set__store(req, KV_SET_UNION);
}

static void set__sdiffstore(resp_req *req)
{
    set__store(req, KV_SET_DIFF);
}

/* ---- reads -------------------------------------------------------------------- */

static void set__write_members(resp_req *req, const kv_entry *e)
{
    resp_write_set(&req->reply, req->proto, e ? (size_t)kv_set_len(e) : 0);
    if (!e) return;
    kv_set_iter it;
    kv_slice m;
    kv_set_iter_init(&it, e);
    while (kv_set_iter_next(&it, &m)) resp_write_bulk(&req->reply, m.ptr, m.len);
}

static void set__smembers_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = set__lookup(req, 1, &wrong);
    if (!wrong) set__write_members(req, e);
}

static void set__smembers(resp_req *req)
{
    resp_req_read(req, set__smembers_ready);
}

static void set__scard_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = set__lookup(req, 1, &wrong);
    if (!wrong) resp_write_integer(&req->reply, e ? (long long)kv_set_len(e) : 0);
}

static void set__scard(resp_req *req)
{
    resp_req_read(req, set__scard_ready);
}

static void set__sismember_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = set__lookup(req, 1, &wrong);
    if (!wrong) resp_write_integer(&req->reply, e && kv_set_contains(e, set__arg(req, 2)));
}

static void set__sismember(resp_req *req)
{
    resp_req_read(req, set__sismember_ready);
}

static void set__smismember_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = set__lookup(req, 1, &wrong);
    if (wrong) return;
    resp_write_array(&req->reply, req->argc - 2);
    for (size_t i = 2; i < req->argc; i++)
        resp_write_integer(&req->reply, e && kv_set_contains(e, set__arg(req, i)));
}

static void set__smismember(resp_req *req)
{
    resp_req_read(req, set__smismember_ready);
}

static void set__write_member(void *ctx, kv_slice m)
{
    resp_write_bulk(ctx, m.ptr, m.len);
}

/* SRANDMEMBER key [count]: n[0] count */
static void set__srandmember_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = set__lookup(req, 1, &wrong);
    if (wrong) return;
    uint64_t len = e ? kv_set_len(e) : 0;
    if (req->argc == 2) {
        if (!len) {
            resp_req_null(req);
            return;
        }
        size_t n;
        uint64_t *one = resp_random_positions(len, 1, &n);
        kv_set_pick(e, one, n, set__write_member, &req->reply);
        free(one);
        return;
    }
    size_t n;
    uint64_t *idx = resp_random_positions(len, req->n[0], &n);
    resp_write_array(&req->reply, n);
    if (n) kv_set_pick(e, idx, n, set__write_member, &req->reply);
    free(idx);
}

static void set__srandmember(resp_req *req)
{
    if (req->argc > 3) {
        resp_req_error_syntax(req);
        return;
    }
    if (req->argc == 3 && !resp_req_random_count(req, &req->argv[2], &req->n[0])) return;
    resp_req_read(req, set__srandmember_ready);
}

/* The sets at argv[first .. first + n): false after WRONGTYPE (every key
 * is checked, as Redis does, before anything is computed). */
static bool set__gather(resp_req *req, size_t first, size_t n, const kv_entry **sets)
{
    for (size_t i = 0; i < n; i++) {
        bool wrong;
        sets[i] = set__lookup(req, first + i, &wrong);
        if (wrong) return false;
    }
    return true;
}

/* SINTER, SUNION, SDIFF: n[0] the operation */
static void set__combine_ready(resp_req *req)
{
    size_t n = req->argc - 1;
    const kv_entry **sets = xcalloc(n, sizeof(*sets));
    if (set__gather(req, 1, n, sets)) {
        kv_keyspace tmp;
        kv_keyspace_init(&tmp, 1);
        kv_entry *out = kv_keyspace_insert(&tmp, "", 0, NULL, 0);
        kv_set_init(&tmp, out);
        kv_set_combine(&tmp, out, sets, n, (int)req->n[0]);
        set__write_members(req, out);
        kv_keyspace_close(&tmp);
    }
    free(sets);
}

static void set__combine(resp_req *req, int op)
{
    req->n[0] = op;
    resp_req_read(req, set__combine_ready);
}

static void set__sinter(resp_req *req)
{
    set__combine(req, KV_SET_INTER);
}

static void set__sunion(resp_req *req)
{
    set__combine(req, KV_SET_UNION);
}

static void set__sdiff(resp_req *req)
{
    set__combine(req, KV_SET_DIFF);
}

/* SINTERCARD numkeys key [key ...] [LIMIT limit]: n[0] numkeys, n[1] limit */
static void set__sintercard_ready(resp_req *req)
{
    size_t n = (size_t)req->n[0];
    const kv_entry **sets = xcalloc(n, sizeof(*sets));
    if (set__gather(req, 2, n, sets))
        resp_write_integer(&req->reply, (long long)kv_set_intercard(sets, n, (uint64_t)req->n[1]));
    free(sets);
}

static void set__sintercard(resp_req *req)
{
    int64_t numkeys;
    if (!strconv_parse_i64(req->argv[1].ptr, req->argv[1].len, &numkeys) || numkeys <= 0) {
        resp_req_error(req, "ERR numkeys should be greater than 0");
        return;
    }
    if ((uint64_t)numkeys > req->argc - 2) {
        resp_req_error(req, "ERR Number of keys can't be greater than number of args");
        return;
    }
    req->n[0] = numkeys;
    req->n[1] = 0;
    for (size_t i = 2 + (size_t)numkeys; i < req->argc; i += 2) {
        if (!resp_format_arg_is(&req->argv[i], "limit") || i + 1 >= req->argc) {
            resp_req_error_syntax(req);
            return;
        }
        int64_t limit;
        if (!strconv_parse_i64(req->argv[i + 1].ptr, req->argv[i + 1].len, &limit)) {
            resp_req_error(req, "ERR LIMIT can't be negative");
            return;
        }
        if (limit < 0) {
            resp_req_error(req, "ERR LIMIT can't be negative");
            return;
        }
        req->n[1] = limit;
    }
    resp_req_read(req, set__sintercard_ready);
}

/* SSCAN key cursor [MATCH pattern] [COUNT count] */
static void set__sscan_visit(void *ctx, kv_slice m)
{
    resp_scan_take(ctx, m);
}

static uint64_t set__sscan_step(const kv_entry *e, uint64_t cursor, resp_scan *sc)
{
    return kv_set_scan(e, cursor, set__sscan_visit, sc);
}

static void set__sscan_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = set__lookup(req, 1, &wrong);
    if (!wrong) resp_req_scan_reply(req, e, set__sscan_step, 1);
}

static void set__sscan(resp_req *req)
{
    if (resp_req_scan_args(req)) resp_req_read(req, set__sscan_ready);
}

/* ---- the table ------------------------------------------------------------------ */

#define W RESP_CMD_WRITE
#define R RESP_CMD_READONLY
#define D RESP_CMD_DENYOOM
#define F RESP_CMD_FAST
#define N RESP_CMD_NUMKEYS

const resp_cmd resp_cmds_sets[] = {
    {"sadd", set__sadd, -3, W | D | F, 1, 1, 1, "set", "1.0.0", "O(N)", "Add members to a set",
     "key member [member ...]"},
    {"srem", set__srem, -3, W | F, 1, 1, 1, "set", "1.0.0", "O(N)", "Remove members from a set",
     "key member [member ...]"},
    {"scard", set__scard, 2, R | F, 1, 1, 1, "set", "1.0.0", "O(1)",
     "Return the number of members of a set", "key"},
    {"smembers", set__smembers, 2, R, 1, 1, 1, "set", "1.0.0", "O(N)",
     "Return every member of a set", "key"},
    {"sismember", set__sismember, 3, R | F, 1, 1, 1, "set", "1.0.0", "O(1)",
     "Whether a member is in a set", "key member"},
    {"smismember", set__smismember, -3, R | F, 1, 1, 1, "set", "6.2.0", "O(N)",
     "Whether each member is in a set", "key member [member ...]"},
    {"spop", set__spop, -2, W | F, 1, 1, 1, "set", "1.0.0", "O(N)",
     "Remove and return random members of a set", "key [count]"},
    {"srandmember", set__srandmember, -2, R, 1, 1, 1, "set", "1.0.0", "O(N)",
     "Return random members of a set", "key [count]"},
    {"smove", set__smove, 4, W | F, 1, 2, 1, "set", "1.0.0", "O(1)",
     "Move a member from one set to another", "source destination member"},
    {"sinter", set__sinter, -2, R, 1, -1, 1, "set", "1.0.0", "O(N*M)",
     "Return the intersection of sets", "key [key ...]"},
    {"sunion", set__sunion, -2, R, 1, -1, 1, "set", "1.0.0", "O(N)", "Return the union of sets",
     "key [key ...]"},
    {"sdiff", set__sdiff, -2, R, 1, -1, 1, "set", "1.0.0", "O(N)",
     "Return the difference of the first set and the others", "key [key ...]"},
    {"sintercard", set__sintercard, -3, R | N, 1, 0, 1, "set", "7.0.0", "O(N*M)",
     "Return the size of the intersection of sets", "numkeys key [key ...] [LIMIT limit]"},
    {"sinterstore", set__sinterstore, -3, W | D, 1, -1, 1, "set", "1.0.0", "O(N*M)",
     "Store the intersection of sets", "destination key [key ...]"},
    {"sunionstore", set__sunionstore, -3, W | D, 1, -1, 1, "set", "1.0.0", "O(N)",
     "Store the union of sets", "destination key [key ...]"},
    {"sdiffstore", set__sdiffstore, -3, W | D, 1, -1, 1, "set", "1.0.0", "O(N)",
     "Store the difference of the first set and the others", "destination key [key ...]"},
    {"sscan", set__sscan, -3, R, 1, 1, 1, "set", "2.8.0", "O(1)",
     "Iterate over the members of a set", "key cursor [MATCH pattern] [COUNT count]"},
};
const size_t resp_cmds_sets_count = sizeof(resp_cmds_sets) / sizeof(resp_cmds_sets[0]);
