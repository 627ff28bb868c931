/* resp_cmd_strings: the string commands (GET, SET and family).
 *
 * Each write is one kv command (kv/command.h); its reply is formatted
 * from the state machine's kv_result once committed. Argument syntax and
 * error texts follow Redis 7.0: options are parsed first (syntax errors),
 * numbers after, and nothing is proposed for a command that is refused. */
#include <stdlib.h>
#include <string.h>

#include "api/resp_internal.h"
#include "util/alloc.h"
#include "util/strconv.h"

/* SET / GETEX options */
enum {
    STR_NX = 1 << 0,
    STR_XX = 1 << 1,
    STR_GET = 1 << 2,
    STR_KEEPTTL = 1 << 3,
    STR_PERSIST = 1 << 4,
    STR_EX = 1 << 5,
    STR_PX = 1 << 6,
    STR_EXAT = 1 << 7,
    STR_PXAT = 1 << 8,
};
#define STR_EXPIRES (STR_EX | STR_PX | STR_EXAT | STR_PXAT)

/* ---- shared pieces ------------------------------------------------------------ */

static void str__reply_value(resp_req *req, const kv_result *res)
{
    if (res->has_value)
        resp_write_bulk(&req->reply, res->value, res->value_len);
    else
        resp_req_null(req);
}

/* A precondition that failed means 0, else 1 (SETNX). */
static void str__reply_applied(resp_req *req, const kv_result *res)
{
    resp_write_integer(&req->reply, res->status == KV_ERR_PRECONDITION ? 0 : 1);
}

/* Parses SET's (or, with getex, GETEX's) options from argv[3..] (argv[2..]
 * for GETEX) with Redis' rules: an option conflicting with one already
 * given is a syntax error, repeating one is not. */
static bool str__parse_options(resp_req *req, size_t from, bool getex, uint32_t *flags,
                               const resp_arg **expire_arg)
{
    *flags = 0;
    *expire_arg = NULL;
    for (size_t i = from; i < req->argc; i++) {
        const resp_arg *a = &req->argv[i];
        bool has_next = i + 1 < req->argc;
        uint32_t f = *flags;
        uint32_t want = 0, conflicts = 0;
        if (!getex && resp_format_arg_is(a, "nx")) {
            want = STR_NX;
            conflicts = STR_XX;
        } else if (!getex && resp_format_arg_is(a, "xx")) {
            want = STR_XX;
            conflicts = STR_NX;
        } else if (!getex && resp_format_arg_is(a, "get")) {
            want = STR_GET;
        } else if (!getex && resp_format_arg_is(a, "keepttl")) {
            want = STR_KEEPTTL;
            conflicts = STR_EXPIRES | STR_PERSIST;
        } else if (getex && resp_format_arg_is(a, "persist")) {
            want = STR_PERSIST;
            conflicts = STR_EXPIRES | STR_KEEPTTL;
        } else if (resp_format_arg_is(a, "ex")) {
            want = STR_EX;
        } else if (resp_format_arg_is(a, "px")) {
            want = STR_PX;
        } else if (resp_format_arg_is(a, "exat")) {
            want = STR_EXAT;
        } else if (resp_format_arg_is(a, "pxat")) {
            want = STR_PXAT;
        }
        if (want & STR_EXPIRES) {
            conflicts = (STR_EXPIRES & ~want) | STR_KEEPTTL | STR_PERSIST;
            if (!has_next) want = 0;
        }
        if (!want || (f & conflicts)) {
            resp_req_error_syntax(req);
            return false;
        }
        *flags |= want;
        if (want & STR_EXPIRES) *expire_arg = &req->argv[++i];
    }
    return true;
}

/* The absolute expiry for an EX/PX/EXAT/PXAT argument; false after the
 * Redis error. Times must be positive; a past absolute time is allowed
 * (the key then expires at once). */
static bool str__expire_ms(resp_req *req, const resp_arg *v, uint32_t flags, int64_t now_ms,
                           int64_t *out)
{
    int64_t when;
    if (!resp_req_int_arg(req, v, &when)) return false;
    bool seconds = flags & (STR_EX | STR_EXAT);
    bool relative = flags & (STR_EX | STR_PX);
    if (when <= 0 || !resp_format_expire_ms(when, seconds, relative, now_ms, out)) {
        resp_req_errorf(req, "ERR invalid expire time in '%s' command", req->cmd->name);
        return false;
    }
    return true;
}

/* ---- GET MGET STRLEN GETRANGE ------------------------------------------------- */

static kv_entry *str__lookup(resp_req *req, size_t i, bool *wrong)
{
    return resp_req_lookup_typed(req, &req->argv[i], KV_TYPE_STRING, wrong);
}

static void str__get_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = str__lookup(req, 1, &wrong);
    if (wrong) return;
    if (e)
        resp_write_bulk(&req->reply, e->value, e->value_len);
    else
        resp_req_null(req);
}

static void str__get(resp_req *req)
{
    resp_req_read(req, str__get_ready);
}

static void str__mget_ready(resp_req *req)
{
    resp_write_array(&req->reply, req->argc - 1);
    for (size_t i = 1; i < req->argc; i++) {
        kv_entry *e = resp_req_lookup(req, &req->argv[i]);
        if (e && e->type == KV_TYPE_STRING) /* MGET: nil for other types */
            resp_write_bulk(&req->reply, e->value, e->value_len);
        else
            resp_req_null(req);
    }
}

static void str__mget(resp_req *req)
{
    resp_req_read(req, str__mget_ready);
}

static void str__strlen_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = str__lookup(req, 1, &wrong);
    if (wrong) return;
    resp_write_integer(&req->reply, e ? (long long)e->value_len : 0);
}

static void str__strlen(resp_req *req)
{
    resp_req_read(req, str__strlen_ready);
}

static void str__getrange_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = str__lookup(req, 1, &wrong);
    if (wrong) return;
    size_t from = 0, count = 0;
    if (e && !resp_format_range_reversed(req->n[0], req->n[1]))
        resp_format_range(e->value_len, req->n[0], req->n[1], &from, &count);
    resp_write_bulk(&req->reply, count ? e->value + from : "", count);
}

static void str__getrange(resp_req *req)
{
    if (!resp_req_int_arg(req, &req->argv[2], &req->n[0]) ||
        !resp_req_int_arg(req, &req->argv[3], &req->n[1]))
        return;
    resp_req_read(req, str__getrange_ready);
}

/* ---- SET and its variants ------------------------------------------------------- */

static void str__set_done(resp_req *req, const kv_result *res)
{
    if (req->opt & STR_GET)
        str__reply_value(req, res);
    else if (res->status == KV_ERR_PRECONDITION)
        resp_req_null(req);
    else
        resp_req_ok(req);
}

static void str__put(resp_req *req, uint16_t kv_flags, int64_t expire_ms, int64_t now_ms,
                     resp_write_fn done)
{
    kv_slice args[2] = {{req->argv[1].ptr, req->argv[1].len}, {req->argv[2].ptr, req->argv[2].len}};
    kv_command cmd = {.op = KV_OP_PUT,
                      .flags = kv_flags,
                      .nargs = 2,
                      .args = args,
                      .now_ms = now_ms,
                      .expire_ms = expire_ms};
    resp_req_propose(req, &cmd, done);
}

static void str__set(resp_req *req)
{
    uint32_t flags;
    const resp_arg *expire_arg;
    if (!str__parse_options(req, 3, false, &flags, &expire_arg)) return;
    int64_t now = replica_now_ms(), expire_ms = 0;
    if (expire_arg && !str__expire_ms(req, expire_arg, flags, now, &expire_ms)) return;
    if (!resp_req_check_value(req, &req->argv[2])) return;
    uint16_t kv_flags = 0;
    if (flags & STR_NX) kv_flags |= KV_FLAG_NX;
    if (flags & STR_XX) kv_flags |= KV_FLAG_XX;
    if (flags & STR_GET) kv_flags |= KV_FLAG_GET;
    if (flags & STR_KEEPTTL) kv_flags |= KV_FLAG_KEEPTTL;
    req->opt = flags;
    str__put(req, kv_flags, expire_ms, now, str__set_done);
}

static void str__setnx(resp_req *req)
{
    if (!resp_req_check_value(req, &req->argv[2])) return;
    str__put(req, KV_FLAG_NX, 0, replica_now_ms(), str__reply_applied);
}

static void str__setex_common(resp_req *req, uint32_t unit)
{
    int64_t now = replica_now_ms(), expire_ms;
    /* SETEX key seconds value: the value is argv[3] */
    if (!str__expire_ms(req, &req->argv[2], unit, now, &expire_ms)) return;
    if (!resp_req_check_value(req, &req->argv[3])) return;
    kv_slice args[2] = {{req->argv[1].ptr, req->argv[1].len}, {req->argv[3].ptr, req->argv[3].len}};
    kv_command cmd = {
        .op = KV_OP_PUT, .nargs = 2, .args = args, .now_ms = now, .expire_ms = expire_ms};
    resp_req_propose(req, &cmd, resp_reply_ok);
}

static void str__setex(resp_req *req)
{
    str__setex_common(req, STR_EX);
}

static void str__psetex(resp_req *req)
{
    str__setex_common(req, STR_PX);
}

static void str__getset(resp_req *req)
{
    if (!resp_req_check_value(req, &req->argv[2])) return;
    str__put(req, KV_FLAG_GET, 0, replica_now_ms(), str__reply_value);
}

static void str__getdel(resp_req *req)
{
    kv_slice key = {req->argv[1].ptr, req->argv[1].len};
    kv_command cmd = {.op = KV_OP_DEL, .flags = KV_FLAG_GET, .nargs = 1, .args = &key};
    resp_req_propose(req, &cmd, str__reply_value);
}

static void str__getex(resp_req *req)
{
    uint32_t flags;
    const resp_arg *expire_arg;
    if (!str__parse_options(req, 2, true, &flags, &expire_arg)) return;
    int64_t now = replica_now_ms(), expire_ms = 0;
    if (expire_arg && !str__expire_ms(req, expire_arg, flags, now, &expire_ms)) return;
    kv_slice key = {req->argv[1].ptr, req->argv[1].len};
    kv_command cmd = {.op = KV_OP_GETEX,
                      .flags = flags & STR_PERSIST ? KV_FLAG_PERSIST : 0,
                      .nargs = 1,
                      .args = &key,
                      .now_ms = now,
                      .expire_ms = expire_ms};
    resp_req_propose(req, &cmd, str__reply_value);
}

/* ---- MSET MSETNX ----------------------------------------------------------------- */

static void str__mset_common(resp_req *req, bool nx)
{
    if ((req->argc - 1) % 2) {
        resp_req_error_arity(req);
        return;
    }
    for (size_t i = 2; i < req->argc; i += 2)
        if (!resp_req_check_value(req, &req->argv[i])) return;
    size_t n = req->argc - 1;
    kv_slice small[16];
    kv_slice *args = n <= 16 ? small : xcalloc(n, sizeof(*args));
    for (size_t i = 0; i < n; i++) args[i] = (kv_slice){req->argv[i + 1].ptr, req->argv[i + 1].len};
    kv_command cmd = {
        .op = KV_OP_MSET, .flags = nx ? KV_FLAG_NX : 0, .nargs = (uint32_t)n, .args = args};
    resp_req_propose(req, &cmd, nx ? resp_reply_integer : resp_reply_ok);
    if (args != small) free(args);
}

static void str__mset(resp_req *req)
{
    str__mset_common(req, false);
}

static void str__msetnx(resp_req *req)
{
    str__mset_common(req, true);
}

/* ---- counters ------------------------------------------------------------------- */

static void str__incr_by(resp_req *req, int64_t delta)
{
    kv_slice key = {req->argv[1].ptr, req->argv[1].len};
    kv_command cmd = {.op = KV_OP_INCR, .nargs = 1, .args = &key, .a = delta};
    resp_req_propose(req, &cmd, resp_reply_integer);
}

static void str__incr(resp_req *req)
{
    str__incr_by(req, 1);
}

static void str__decr(resp_req *req)
{
    str__incr_by(req, -1);
}

static void str__incrby(resp_req *req)
{
    int64_t delta;
    if (!resp_req_int_arg(req, &req->argv[2], &delta)) return;
    str__incr_by(req, delta);
}

static void str__decrby(resp_req *req)
{
    int64_t delta;
    if (!resp_req_int_arg(req, &req->argv[2], &delta)) return;
    if (delta == INT64_MIN) {
        resp_req_error(req, "ERR decrement would overflow");
        return;
    }
    str__incr_by(req, -delta);
}

static void str__incrbyfloat_done(resp_req *req, const kv_result *res)
{
    resp_write_bulk(&req->reply, res->value, res->value_len);
}

static void str__incrbyfloat(resp_req *req)
{
    long double incr;
    if (!strconv_parse_ld(req->argv[2].ptr, req->argv[2].len, &incr)) {
        resp_req_error(req, "ERR value is not a valid float");
        return;
    }
    kv_slice args[2] = {{req->argv[1].ptr, req->argv[1].len}, {req->argv[2].ptr, req->argv[2].len}};
    kv_command cmd = {.op = KV_OP_INCRFLOAT, .nargs = 2, .args = args};
    resp_req_propose(req, &cmd, str__incrbyfloat_done);
}

/* ---- APPEND SETRANGE -------------------------------------------------------------- */

static void str__append(resp_req *req)
{
    if (!resp_req_check_value(req, &req->argv[2])) return;
    kv_slice args[2] = {{req->argv[1].ptr, req->argv[1].len}, {req->argv[2].ptr, req->argv[2].len}};
    kv_command cmd = {
        .op = KV_OP_APPEND, .nargs = 2, .args = args, .b = (int64_t)req->a->cfg->max_value_bytes};
    resp_req_propose(req, &cmd, resp_reply_integer);
}

static void str__setrange(resp_req *req)
{
    int64_t offset;
    if (!resp_req_int_arg(req, &req->argv[2], &offset)) return;
    if (offset < 0) {
        resp_req_error(req, "ERR offset is out of range");
        return;
    }
    uint64_t max = req->a->cfg->max_value_bytes;
    size_t len = req->argv[3].len;
    /* an empty value changes nothing and is answered whatever the offset */
    if (len && ((uint64_t)offset > max || len > max - (uint64_t)offset)) {
        resp_req_error(req, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
        return;
    }
    kv_slice args[2] = {{req->argv[1].ptr, req->argv[1].len}, {req->argv[3].ptr, req->argv[3].len}};
    kv_command cmd = {
        .op = KV_OP_SETRANGE, .nargs = 2, .args = args, .a = offset, .b = (int64_t)max};
    resp_req_propose(req, &cmd, resp_reply_integer);
}

/* ---- the table ------------------------------------------------------------------------ */

#define W RESP_CMD_WRITE
#define R RESP_CMD_READONLY
#define D RESP_CMD_DENYOOM
#define F RESP_CMD_FAST

const resp_cmd resp_cmds_strings[] = {
    {"get", str__get, 2, R | F, 1, 1, 1, "string", "1.0.0", "O(1)", "Get the value of a key",
     "key"},
    {"set", str__set, -3, W | D, 1, 1, 1, "string", "1.0.0", "O(1)",
     "Set the string value of a key, with optional expiry and conditions",
     "key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT "
     "unix-time-milliseconds|KEEPTTL]"},
    {"setnx", str__setnx, 3, W | D | F, 1, 1, 1, "string", "1.0.0", "O(1)",
     "Set the value of a key only if it does not exist", "key value"},
    {"setex", str__setex, 4, W | D, 1, 1, 1, "string", "2.0.0", "O(1)",
     "Set the value and the expiry (seconds) of a key", "key seconds value"},
    {"psetex", str__psetex, 4, W | D, 1, 1, 1, "string", "2.6.0", "O(1)",
     "Set the value and the expiry (milliseconds) of a key", "key milliseconds value"},
    {"getset", str__getset, 3, W | D | F, 1, 1, 1, "string", "1.0.0", "O(1)",
     "Set the value of a key and return the previous value", "key value"},
    {"getdel", str__getdel, 2, W | F, 1, 1, 1, "string", "6.2.0", "O(1)",
     "Return the value of a key and delete the key", "key"},
    {"getex", str__getex, -2, W | F, 1, 1, 1, "string", "6.2.0", "O(1)",
     "Return the value of a key and optionally change its expiry",
     "key [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|PERSIST]"},
    {"mget", str__mget, -2, R | F, 1, -1, 1, "string", "1.0.0", "O(N)",
     "Return the values of all the given keys", "key ..."},
    {"mset", str__mset, -3, W | D, 1, -1, 2, "string", "1.0.1", "O(N)",
     "Set several keys to several values at once", "(key value)..."},
    {"msetnx", str__msetnx, -3, W | D, 1, -1, 2, "string", "1.0.1", "O(N)",
     "Set several keys at once, only if none of them exists", "(key value)..."},
    {"incr", str__incr, 2, W | D | F, 1, 1, 1, "string", "1.0.0", "O(1)",
     "Add one to the integer value of a key", "key"},
    {"decr", str__decr, 2, W | D | F, 1, 1, 1, "string", "1.0.0", "O(1)",
     "Subtract one from the integer value of a key", "key"},
    {"incrby", str__incrby, 3, W | D | F, 1, 1, 1, "string", "1.0.0", "O(1)",
     "Add an amount to the integer value of a key", "key increment"},
    {"decrby", str__decrby, 3, W | D | F, 1, 1, 1, "string", "1.0.0", "O(1)",
     "Subtract an amount from the integer value of a key", "key decrement"},
    {"incrbyfloat", str__incrbyfloat, 3, W | D | F, 1, 1, 1, "string", "2.6.0", "O(1)",
     "Add a floating point amount to the value of a key", "key increment:double"},
    {"append", str__append, 3, W | D | F, 1, 1, 1, "string", "2.0.0", "O(1)",
     "Append bytes to the value of a key", "key value"},
    {"strlen", str__strlen, 2, R | F, 1, 1, 1, "string", "2.2.0", "O(1)",
     "Return the length of the value of a key", "key"},
    {"getrange", str__getrange, 4, R, 1, 1, 1, "string", "2.4.0", "O(N)",
     "Return a substring of the value of a key", "key start end"},
    {"setrange", str__setrange, 4, W | D, 1, 1, 1, "string", "2.2.0", "O(1)",
     "Overwrite part of the value of a key from an offset on", "key offset value"},
};
const size_t resp_cmds_strings_count = sizeof(resp_cmds_strings) / sizeof(resp_cmds_strings[0]);
