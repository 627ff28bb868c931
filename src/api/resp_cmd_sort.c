/* resp_cmd_sort: SORT and SORT_RO (issue 12).
 *
 * kv/sort.c sorts; a SORT without STORE and SORT_RO read the local store
 * (BY and GET patterns look up other keys there), SORT ... STORE is one kv
 * command (KV_OP_SORTSTORE) that sorts on apply and stores the result as
 * a list, so it is the list the log's order sees. BY with a pattern and
 * GET read keys no argument names: as in Redis, only a user who may read
 * every key may use them. Checked against redis-server by
 * tests/integration/test_resp_sort.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/resp_internal.h"
#include "kv/sort.h"
#include "util/alloc.h"

/* As Redis' sortGetKeys: LIMIT takes two arguments, GET and BY one, and
 * the last STORE names the destination. */
size_t resp_sort_store_key(const resp_arg *argv, size_t argc)
{
    size_t found = 0;
    for (size_t i = 2; i < argc; i++) {
        const resp_arg *a = &argv[i];
        if (resp_format_arg_is(a, "limit"))
            i += 2;
        else if (resp_format_arg_is(a, "get") || resp_format_arg_is(a, "by"))
            i += 1;
        else if (resp_format_arg_is(a, "store") && i + 1 < argc)
            found = i + 1; /* and the key is looked at again, as Redis does */
    }
    return found;
}

static kv_slice sort__arg(const resp_req *req, size_t i)
{
    return (kv_slice){req->argv[i].ptr, req->argv[i].len};
}

/* The options from argv[2] on (gets: room for argc slices); *store_at: the
 * STORE key's argument (0: none). False after replying the error. */
static bool sort__args(resp_req *req, bool read_only, kv_sort_opts *o, kv_slice *gets,
                       size_t *store_at)
{
    memset(o, 0, sizeof(*o));
    o->limit_count = -1;
    o->gets = gets;
    *store_at = 0;
    for (size_t j = 2; j < req->argc; j++) {
        const resp_arg *a = &req->argv[j];
        size_t left = req->argc - j - 1;
        if (resp_format_arg_is(a, "asc")) {
            o->desc = false;
        } else if (resp_format_arg_is(a, "desc")) {
            o->desc = true;
        } else if (resp_format_arg_is(a, "alpha")) {
            o->alpha = true;
        } else if (resp_format_arg_is(a, "limit") && left >= 2) {
            if (!resp_req_int_arg(req, &req->argv[j + 1], &o->limit_start) ||
                !resp_req_int_arg(req, &req->argv[j + 2], &o->limit_count))
                return false;
            j += 2;
        } else if (!read_only && resp_format_arg_is(a, "store") && left >= 1) {
            *store_at = ++j;
        } else if (resp_format_arg_is(a, "by") && left >= 1) {
            o->has_by = true;
            o->by = sort__arg(req, ++j);
            if (memchr(o->by.ptr, '*', o->by.len) && !resp_auth_reads_every_key(req)) {
                resp_req_error(req,
                               "ERR BY option of SORT denied due to insufficient ACL permissions.");
                return false;
            }
        } else if (resp_format_arg_is(a, "get") && left >= 1) {
            gets[o->ngets++] = sort__arg(req, ++j);
            if (!resp_auth_reads_every_key(req)) {
                resp_req_error(
                    req, "ERR GET option of SORT denied due to insufficient ACL permissions.");
                return false;
            }
        } else {
            resp_req_error_syntax(req);
            return false;
        }
    }
    o->store = *store_at != 0;
    return true;
}

static const kv_entry *sort__find_read(void *ctx, kv_slice key)
{
    resp_req *req = ctx;
    return kv_store_get(req->a->store, key.ptr, key.len, replica_req_read_ms(&req->rreq));
}

static void sort__ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = resp_req_lookup(req, &req->argv[1]);
    wrong = e && e->type != KV_TYPE_LIST && e->type != KV_TYPE_SET && e->type != KV_TYPE_ZSET;
    if (wrong) {
        resp_req_error(req, "WRONGTYPE Operation against a key holding the wrong kind of value");
        return;
    }
    kv_sort_opts o;
    kv_slice *gets = xcalloc(req->argc, sizeof(*gets));
    size_t store_at, n;
    if (sort__args(req, req->opt, &o, gets, &store_at)) {
        buf out;
        buf_init(&out);
        if (!kv_sort(e, &o, sort__find_read, req, &out, &n)) {
            resp_req_error(req, "ERR One or more scores can't be converted into double");
        } else {
            resp_write_array(&req->reply, n);
            for (size_t pos = 0; pos < out.len;) {
                const unsigned char *p = (const unsigned char *)out.data + pos;
                size_t len =
                    (size_t)p[1] | (size_t)p[2] << 8 | (size_t)p[3] << 16 | (size_t)p[4] << 24;
                if (p[0])
                    resp_write_bulk(&req->reply, p + 5, len);
                else
                    resp_req_null(req);
                pos += 5 + len;
            }
        }
        buf_close(&out);
    }
    free(gets);
}

/* SORT ... STORE: the options go to apply as they came, with the flags
 * parsed here (a = KV_SORT_* flags; args: dst src by limit-start
 * limit-count get ...) */
static void sort__store(resp_req *req, const kv_sort_opts *o, size_t store_at)
{
    if (!resp_auth_extra_key(req, &req->argv[store_at])) return;
    size_t n = 5 + o->ngets;
    kv_slice *args = xcalloc(n, sizeof(*args));
    char start[24], count[24];
    int sl = snprintf(start, sizeof(start), "%lld", (long long)o->limit_start);
    int cl = snprintf(count, sizeof(count), "%lld", (long long)o->limit_count);
    args[0] = sort__arg(req, store_at);
    args[1] = sort__arg(req, 1);
    args[2] = o->has_by ? o->by : (kv_slice){"", 0};
    args[3] = (kv_slice){start, (size_t)sl};
    args[4] = (kv_slice){count, (size_t)cl};
    for (size_t i = 0; i < o->ngets; i++) args[5 + i] = o->gets[i];
    kv_command cmd = {.op = KV_OP_SORTSTORE,
                      .a = (o->desc ? KV_SORT_DESC : 0) | (o->alpha ? KV_SORT_ALPHA : 0) |
                           (o->has_by ? KV_SORT_BY : 0),
                      .nargs = (uint32_t)n,
                      .args = args};
    resp_req_propose(req, &cmd, resp_reply_integer);
    free(args);
}

static void sort__sort(resp_req *req)
{
    kv_sort_opts o;
    kv_slice *gets = xcalloc(req->argc, sizeof(*gets));
    size_t store_at;
    req->opt = 0;
    /* a STORE makes it a write: found out (and checked) here */
    if (sort__args(req, false, &o, gets, &store_at)) {
        if (store_at)
            sort__store(req, &o, store_at);
        else
            resp_req_read(req, sort__ready);
    }
    free(gets);
}

static void sort__sort_ro(resp_req *req)
{
    req->opt = 1;
    resp_req_read(req, sort__ready);
}

#define W RESP_CMD_WRITE
#define R RESP_CMD_READONLY
#define D RESP_CMD_DENYOOM

const resp_cmd resp_cmds_sort[] = {
    {"sort", sort__sort, -2, W | D | RESP_CMD_MAY_READ, 1, 1, 1, "generic", "1.0.0",
     "O(N+M*log(M))", "Sort the elements of a list, set or sorted set (or store them sorted)",
     "key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]] [ASC|DESC] [ALPHA] "
     "[STORE destination]"},
    {"sort_ro", sort__sort_ro, -2, R, 1, 1, 1, "generic", "7.0.0", "O(N+M*log(M))",
     "Sort the elements of a list, set or sorted set",
     "key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]] [ASC|DESC] [ALPHA]"},
};
const size_t resp_cmds_sort_count = sizeof(resp_cmds_sort) / sizeof(resp_cmds_sort[0]);
