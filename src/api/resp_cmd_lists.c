/* resp_cmd_lists: the list commands (LPUSH and family; issue 12).
 *
 * Writes are one kv command each (KV_OP_LPUSH ... LMOVE: kv/store.c
 * applies them; kv/list.h holds the quicklist); reads run on the local
 * store once the read is safe. Argument checks and error texts follow
 * Redis 7.0, checked against redis-server by
 * tests/integration/test_resp_lists.py. The blocking pops (BLPOP ...)
 * block in resp_block.c. */
#include <stdlib.h>
#include <string.h>

#include "api/resp_internal.h"
#include "kv/list.h"
#include "util/alloc.h"
#include "util/strconv.h"

static kv_slice list__arg(const resp_req *req, size_t i)
{
    return (kv_slice){req->argv[i].ptr, req->argv[i].len};
}

static kv_entry *list__lookup(resp_req *req, bool *wrong)
{
    return resp_req_lookup_typed(req, &req->argv[1], KV_TYPE_LIST, wrong);
}

/* argv[first .. first + n) as the command's arguments */
static void list__reply_value(resp_req *req, const kv_result *res)
{
    if (res->has_value)
        resp_write_bulk(&req->reply, res->value, res->value_len);
    else
        resp_req_null(req);
}

/* ---- pushes and pops -------------------------------------------------------- */

static bool list__check_elements(resp_req *req, size_t from)
{
    for (size_t i = from; i < req->argc; i++)
        if (!resp_req_check_value(req, &req->argv[i])) return false;
    return true;
}

static void list__push(resp_req *req, bool head, bool only_existing)
{
    if (!list__check_elements(req, 2)) return;
    resp_req_propose_args(req, 1, req->argc - 1, KV_OP_LPUSH, only_existing ? KV_FLAG_XX : 0, head,
                          0, resp_reply_integer);
}

static void list__lpush(resp_req *req)
{
    list__push(req, true, false);
}

static void list__rpush(resp_req *req)
{
    list__push(req, false, false);
}

static void list__lpushx(resp_req *req)
{
    list__push(req, true, true);
}

static void list__rpushx(resp_req *req)
{
    list__push(req, false, true);
}

static void list__reply_popped(resp_req *req, const kv_result *res)
{
    if (!res->has_value) {
        resp_write_null_array(&req->reply, req->proto);
        return;
    }
    resp_write_array(&req->reply, (size_t)res->integer);
    size_t pos = 0;
    kv_slice v;
    while (kv_result_popped_next(res, &pos, &v)) resp_write_bulk(&req->reply, v.ptr, v.len);
}

static void list__pop(resp_req *req, bool head)
{
    if (req->argc > 3) {
        resp_req_error_arity(req);
        return;
    }
    if (req->argc == 2) {
        resp_req_propose_args(req, 1, 1, KV_OP_LPOP, 0, head, 0, list__reply_value);
        return;
    }
    int64_t count;
    if (!strconv_parse_i64(req->argv[2].ptr, req->argv[2].len, &count) || count < 0) {
        resp_req_error(req, "ERR value is out of range, must be positive");
        return;
    }
    resp_req_propose_args(req, 1, 1, KV_OP_LPOP, 0, (head ? 1 : 0) | 2, count, list__reply_popped);
}

static void list__lpop(resp_req *req)
{
    list__pop(req, true);
}

static void list__rpop(resp_req *req)
{
    list__pop(req, false);
}

/* LEFT / RIGHT: 1 for the head, 0 the tail, -1 a syntax error */
static int list__side(const resp_arg *a)
{
    if (resp_format_arg_is(a, "left")) return 1;
    if (resp_format_arg_is(a, "right")) return 0;
    return -1;
}

static void list__lmove(resp_req *req)
{
    int from = list__side(&req->argv[3]), to = list__side(&req->argv[4]);
    if (from < 0 || to < 0) {
        resp_req_error_syntax(req);
        return;
    }
    resp_req_propose_args(req, 1, 2, KV_OP_LMOVE, 0, from, to, list__reply_value);
}

static void list__rpoplpush(resp_req *req)
{
    resp_req_propose_args(req, 1, 2, KV_OP_LMOVE, 0, 0, 1, list__reply_value);
}

/* ---- LMPOP and the blocking pops ------------------------------------------------ */

/* An LMPOP result (u32 len | key, then u32 len | element ...) as
 * [key, element] (BLPOP) or [key, [element ...]] (LMPOP); none: null. */
static void list__reply_mpop(resp_req *req, const kv_result *res, bool nested)
{
    if (!res->has_value) {
        resp_write_null_array(&req->reply, req->proto);
        return;
    }
    size_t pos = 0;
    kv_slice key = kv_result_popped_key(res, &pos), v;
    resp_write_array(&req->reply, 2);
    resp_write_bulk(&req->reply, key.ptr, key.len);
    if (nested) resp_write_array(&req->reply, (size_t)res->integer);
    while (kv_result_popped_next(res, &pos, &v)) resp_write_bulk(&req->reply, v.ptr, v.len);
}

static void list__reply_key_element(resp_req *req, const kv_result *res)
{
    list__reply_mpop(req, res, false);
}

static void list__reply_key_elements(resp_req *req, const kv_result *res)
{
    list__reply_mpop(req, res, true);
}

static void list__bpop(resp_req *req, bool head)
{
    int64_t timeout;
    if (!resp_block_timeout_arg(req, &req->argv[req->argc - 1], &timeout)) return;
    resp_block_keys(req, 1, req->argc - 2, KV_OP_LMPOP, head, 1, timeout, list__reply_key_element);
}

static void list__blpop(resp_req *req)
{
    list__bpop(req, true);
}

static void list__brpop(resp_req *req)
{
    list__bpop(req, false);
}

static void list__blmove(resp_req *req)
{
    int from = list__side(&req->argv[3]), to = list__side(&req->argv[4]);
    if (from < 0 || to < 0) {
        resp_req_error_syntax(req);
        return;
    }
    int64_t timeout;
    if (!resp_block_timeout_arg(req, &req->argv[5], &timeout)) return;
    resp_block_keys(req, 1, 2, KV_OP_LMOVE, from, to, timeout, list__reply_value);
}

static void list__brpoplpush(resp_req *req)
{
    int64_t timeout;
    if (!resp_block_timeout_arg(req, &req->argv[3], &timeout)) return;
    resp_block_keys(req, 1, 2, KV_OP_LMOVE, 0, 1, timeout, list__reply_value);
}

static void list__lmpop(resp_req *req)
{
    size_t first, n;
    int head;
    int64_t count;
    if (!resp_req_mpop_args(req, 1, "left", "right", &first, &n, &head, &count)) return;
    resp_req_propose_args(req, first, n, KV_OP_LMPOP, 0, head, count, list__reply_key_elements);
}

static void list__blmpop(resp_req *req)
{
    int64_t timeout;
    if (!resp_block_timeout_arg(req, &req->argv[1], &timeout)) return;
    size_t first, n;
    int head;
    int64_t count;
    if (!resp_req_mpop_args(req, 2, "left", "right", &first, &n, &head, &count)) return;
    resp_block_keys(req, first, n, KV_OP_LMPOP, head, count, timeout, list__reply_key_elements);
}

/* ---- edits -------------------------------------------------------------------- */

static void list__lset(resp_req *req)
{
    int64_t index;
    if (!resp_req_int_arg(req, &req->argv[2], &index)) return;
    if (!resp_req_check_value(req, &req->argv[3])) return;
    kv_slice args[2] = {list__arg(req, 1), list__arg(req, 3)};
    kv_command cmd = {.op = KV_OP_LSET, .a = index, .nargs = 2, .args = args};
    resp_req_propose(req, &cmd, resp_reply_ok);
}

static void list__lrem(resp_req *req)
{
    int64_t count;
    if (!resp_req_int_arg(req, &req->argv[2], &count)) return;
    kv_slice args[2] = {list__arg(req, 1), list__arg(req, 3)};
    kv_command cmd = {.op = KV_OP_LREM, .a = count, .nargs = 2, .args = args};
    resp_req_propose(req, &cmd, resp_reply_integer);
}

static void list__ltrim(resp_req *req)
{
    int64_t start, stop;
    if (!resp_req_int_arg(req, &req->argv[2], &start) ||
        !resp_req_int_arg(req, &req->argv[3], &stop))
        return;
    resp_req_propose_args(req, 1, 1, KV_OP_LTRIM, 0, start, stop, resp_reply_ok);
}

static void list__linsert(resp_req *req)
{
    int before;
    if (resp_format_arg_is(&req->argv[2], "before"))
        before = 1;
    else if (resp_format_arg_is(&req->argv[2], "after"))
        before = 0;
    else {
        resp_req_error_syntax(req);
        return;
    }
    if (!resp_req_check_value(req, &req->argv[4])) return;
    kv_slice args[3] = {list__arg(req, 1), list__arg(req, 3), list__arg(req, 4)};
    kv_command cmd = {.op = KV_OP_LINSERT, .a = before, .nargs = 3, .args = args};
    resp_req_propose(req, &cmd, resp_reply_integer);
}

/* ---- reads -------------------------------------------------------------------- */

static void list__llen_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = list__lookup(req, &wrong);
    if (!wrong) resp_write_integer(&req->reply, e ? (long long)kv_list_len(e) : 0);
}

static void list__llen(resp_req *req)
{
    resp_req_read(req, list__llen_ready);
}

static void list__lindex_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = list__lookup(req, &wrong);
    kv_slice v;
    if (wrong) return;
    if (e && kv_list_index(e, req->n[0], &v))
        resp_write_bulk(&req->reply, v.ptr, v.len);
    else
        resp_req_null(req);
}

static void list__lindex(resp_req *req)
{
    if (!resp_req_int_arg(req, &req->argv[2], &req->n[0])) return;
    resp_req_read(req, list__lindex_ready);
}

static void list__lrange_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = list__lookup(req, &wrong);
    if (wrong) return;
    int64_t len = e ? (int64_t)kv_list_len(e) : 0, start = req->n[0], stop = req->n[1];
    if (start < 0) start += len;
    if (stop < 0) stop += len;
    if (start < 0) start = 0;
    if (stop >= len) stop = len - 1;
    if (!e || start > stop || start >= len) {
        resp_write_array(&req->reply, 0);
        return;
    }
    resp_write_array(&req->reply, (size_t)(stop - start + 1));
    kv_list_iter it;
    kv_slice v;
    kv_list_iter_init(&it, e, (uint64_t)start);
    for (int64_t i = start; i <= stop && kv_list_iter_next(&it, &v); i++)
        resp_write_bulk(&req->reply, v.ptr, v.len);
}

static void list__lrange(resp_req *req)
{
    if (!resp_req_int_arg(req, &req->argv[2], &req->n[0]) ||
        !resp_req_int_arg(req, &req->argv[3], &req->n[1]))
        return;
    resp_req_read(req, list__lrange_ready);
}

/* LPOS: n[0] rank, n[1] count (-1: no COUNT), n[2] maxlen */
typedef struct lpos_scan {
    kv_slice want;
    int64_t skip;   /* matches still to pass over (RANK) */
    int64_t limit;  /* matches to report */
    int64_t maxlen; /* elements to look at (0: all) */
    int64_t looked;
    int64_t found;
    buf hits;
} lpos_scan;

static bool list__lpos_visit(void *ctx, uint64_t pos, kv_slice v)
{
    lpos_scan *s = ctx;
    if (s->maxlen && s->looked >= s->maxlen) return false;
    s->looked++;
    if (v.len != s->want.len || (v.len && memcmp(v.ptr, s->want.ptr, v.len) != 0)) return true;
    if (s->skip > 0) {
        s->skip--;
        return true;
    }
    resp_write_integer(&s->hits, (long long)pos);
    return ++s->found < s->limit;
}

static void list__lpos_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = list__lookup(req, &wrong);
    if (wrong) return;
    int64_t rank = req->n[0], count = req->n[1];
    bool counted = count >= 0;
    lpos_scan s = {.want = list__arg(req, 2),
                   .skip = (rank > 0 ? rank : -rank) - 1,
                   .limit = !counted    ? 1
                            : count > 0 ? count
                                        : INT64_MAX,
                   .maxlen = req->n[2]};
    buf_init(&s.hits);
    if (e) kv_list_walk(e, rank < 0, list__lpos_visit, &s);
    if (counted) {
        resp_write_array(&req->reply, (size_t)s.found);
        buf_append(&req->reply, s.hits.data, s.hits.len);
    } else if (s.found) {
        buf_append(&req->reply, s.hits.data, s.hits.len);
    } else {
        resp_req_null(req);
    }
    buf_close(&s.hits);
}

static void list__lpos(resp_req *req)
{
    req->n[0] = 1;
    req->n[1] = -1;
    req->n[2] = 0;
    for (size_t i = 3; i < req->argc; i += 2) {
        const resp_arg *opt = &req->argv[i];
        if (i + 1 >= req->argc) {
            resp_req_error_syntax(req);
            return;
        }
        int64_t v;
        if (!resp_req_int_arg(req, &req->argv[i + 1], &v)) return;
        if (resp_format_arg_is(opt, "rank")) {
            if (v == 0 || v == INT64_MIN) {
                resp_req_error(req, "ERR RANK can't be zero: use 1 to start from the first "
                                    "match, 2 from the second ... or use negative to start from "
                                    "the end of the list");
                return;
            }
            req->n[0] = v;
        } else if (resp_format_arg_is(opt, "count")) {
            if (v < 0) {
                resp_req_error(req, "ERR COUNT can't be negative");
                return;
            }
            req->n[1] = v;
        } else if (resp_format_arg_is(opt, "maxlen")) {
            if (v < 0) {
                resp_req_error(req, "ERR MAXLEN can't be negative");
                return;
            }
            req->n[2] = v;
        } else {
            resp_req_error_syntax(req);
            return;
        }
    }
    resp_req_read(req, list__lpos_ready);
}

/* ---- the table ------------------------------------------------------------------ */

#define W RESP_CMD_WRITE
#define R RESP_CMD_READONLY
#define D RESP_CMD_DENYOOM
#define F RESP_CMD_FAST
#define B RESP_CMD_BLOCKING
#define N RESP_CMD_NUMKEYS

const resp_cmd resp_cmds_lists[] = {
    {"lpush", list__lpush, -3, W | D | F, 1, 1, 1, "list", "1.0.0", "O(N)",
     "Prepend elements to a list", "key element [element ...]"},
    {"rpush", list__rpush, -3, W | D | F, 1, 1, 1, "list", "1.0.0", "O(N)",
     "Append elements to a list", "key element [element ...]"},
    {"lpushx", list__lpushx, -3, W | D | F, 1, 1, 1, "list", "2.2.0", "O(N)",
     "Prepend elements to a list only if it exists", "key element [element ...]"},
    {"rpushx", list__rpushx, -3, W | D | F, 1, 1, 1, "list", "2.2.0", "O(N)",
     "Append elements to a list only if it exists", "key element [element ...]"},
    {"lpop", list__lpop, -2, W | F, 1, 1, 1, "list", "1.0.0", "O(N)",
     "Remove and return the first elements of a list", "key [count]"},
    {"rpop", list__rpop, -2, W | F, 1, 1, 1, "list", "1.0.0", "O(N)",
     "Remove and return the last elements of a list", "key [count]"},
    {"llen", list__llen, 2, R | F, 1, 1, 1, "list", "1.0.0", "O(1)", "Return the length of a list",
     "key"},
    {"lindex", list__lindex, 3, R, 1, 1, 1, "list", "1.0.0", "O(N)",
     "Return an element of a list by its index", "key index"},
    {"lrange", list__lrange, 4, R, 1, 1, 1, "list", "1.0.0", "O(S+N)",
     "Return a range of elements of a list", "key start stop"},
    {"lpos", list__lpos, -3, R, 1, 1, 1, "list", "6.0.6", "O(N)",
     "Return the index of matching elements of a list",
     "key element [RANK rank] [COUNT num-matches] [MAXLEN len]"},
    {"lset", list__lset, 4, W | D, 1, 1, 1, "list", "1.0.0", "O(N)",
     "Set the element at an index of a list", "key index element"},
    {"lrem", list__lrem, 4, W, 1, 1, 1, "list", "1.0.0", "O(N+M)",
     "Remove elements equal to a value from a list", "key count element"},
    {"ltrim", list__ltrim, 4, W, 1, 1, 1, "list", "1.0.0", "O(N)",
     "Keep only a range of elements of a list", "key start stop"},
    {"linsert", list__linsert, 5, W | D, 1, 1, 1, "list", "2.2.0", "O(N)",
     "Insert an element before or after another one", "key (BEFORE|AFTER) pivot element"},
    {"lmove", list__lmove, 5, W | D, 1, 2, 1, "list", "6.2.0", "O(1)",
     "Pop an element from a list and push it onto another",
     "source destination (LEFT|RIGHT) (LEFT|RIGHT)"},
    {"rpoplpush", list__rpoplpush, 3, W | D, 1, 2, 1, "list", "1.2.0", "O(1)",
     "Pop the last element of a list and push it at the head of another", "source destination"},
    {"lmpop", list__lmpop, -4, W | N, 1, 0, 1, "list", "7.0.0", "O(N+M)",
     "Pop elements from the first non-empty list",
     "numkeys key [key ...] (LEFT|RIGHT) [COUNT count]"},
    {"blpop", list__blpop, -3, W | B, 1, -2, 1, "list", "2.0.0", "O(N)",
     "Pop the first element of the first non-empty list, or block until one is pushed",
     "key [key ...] timeout"},
    {"brpop", list__brpop, -3, W | B, 1, -2, 1, "list", "2.0.0", "O(N)",
     "Pop the last element of the first non-empty list, or block until one is pushed",
     "key [key ...] timeout"},
    {"blmove", list__blmove, 6, W | D | B, 1, 2, 1, "list", "6.2.0", "O(1)",
     "Pop an element from a list, push it onto another, or block until one is pushed",
     "source destination (LEFT|RIGHT) (LEFT|RIGHT) timeout"},
    {"brpoplpush", list__brpoplpush, 4, W | D | B, 1, 2, 1, "list", "2.2.0", "O(1)",
     "Pop the last element of a list, push it onto another, or block until one is pushed",
     "source destination timeout"},
    {"blmpop", list__blmpop, -5, W | B | N, 2, 0, 1, "list", "7.0.0", "O(N+M)",
     "Pop elements from the first non-empty list, or block until one is pushed",
     "timeout numkeys key [key ...] (LEFT|RIGHT) [COUNT count]"},
};
const size_t resp_cmds_lists_count = sizeof(resp_cmds_lists) / sizeof(resp_cmds_lists[0]);
