/* resp_cmd_stream_groups: streams' consumer groups, as Redis 7.0 has them:
 * XGROUP (CREATE, SETID, DESTROY, CREATECONSUMER, DELCONSUMER, HELP),
 * XREADGROUP, XACK, XCLAIM, XAUTOCLAIM (writes: log entries, kv/store.c
 * and kv/stream_group.h) and XPENDING (a read); XINFO: resp_cmd_xinfo.c.
 *
 * Every change to a group is a log entry applied on every node at the
 * entry's time, so the pending entries lists survive a failover and a
 * consumer that died has its entries claimed by another through any node.
 * XREADGROUP BLOCK waits on the node it is sent to, as a blocking pop
 * does (resp_block.c): the read is proposed again whenever one of its
 * streams changes there, until it delivers something or times out. */
#include <stdlib.h>
#include <string.h>

#include "api/resp_internal.h"
#include "kv/stream.h"
#include "kv/stream_group.h"
#include "util/alloc.h"
#include "util/strconv.h"

#define SG_ERR_ID "ERR Invalid stream ID specified as stream command argument"

static bool sg__id_arg(resp_req *req, const resp_arg *a, kv_stream_id *id)
{
    if (a->len == 1 && (a->ptr[0] == '-' || a->ptr[0] == '+')) {
        *id = a->ptr[0] == '-' ? (kv_stream_id){0, 0} : (kv_stream_id){UINT64_MAX, UINT64_MAX};
        return true;
    }
    if (!kv_stream_id_parse(a->ptr, a->len, 0, id, NULL)) {
        resp_req_error(req, SG_ERR_ID);
        return false;
    }
    return true;
}

/* ---- the answers of the writes (kv/store.c's encoding) ------------------------------- */

typedef struct sg_reader {
    const char *p, *end;
} sg_reader;

static uint64_t sg__get(sg_reader *r, int bytes)
{
    uint64_t v = 0;
    if (r->end - r->p < bytes) {
        r->p = r->end;
        return 0;
    }
    for (int i = 0; i < bytes; i++) v |= (uint64_t)(unsigned char)r->p[i] << (8 * i);
    r->p += bytes;
    return v;
}

/* Entries: u32 n, each u64 ms | u64 seq | i32 pairs (-1 deleted, -2 the
 * ID alone) | pairs x 2 x (u32 len | bytes). */
static void sg__write_entries(resp_req *req, sg_reader *r)
{
    uint32_t n = (uint32_t)sg__get(r, 4);
    resp_write_array(&req->reply, n);
    for (uint32_t i = 0; i < n; i++) {
        kv_stream_id id = {sg__get(r, 8), 0};
        id.seq = sg__get(r, 8);
        int32_t pairs = (int32_t)(uint32_t)sg__get(r, 4);
        if (pairs == -2) {
            resp_stream_write_id(&req->reply, id);
            continue;
        }
        resp_write_array(&req->reply, 2);
        resp_stream_write_id(&req->reply, id);
        if (pairs == -1) {
            resp_write_null_array(&req->reply, req->proto);
            continue;
        }
        resp_write_array(&req->reply, 2 * (size_t)pairs);
        for (int32_t k = 0; k < 2 * pairs; k++) {
            uint32_t l = (uint32_t)sg__get(r, 4);
            if ((size_t)(r->end - r->p) < l) l = (uint32_t)(r->end - r->p);
            resp_write_bulk(&req->reply, r->p, l);
            r->p += l;
        }
    }
}

/* The names in a NOGROUP result: u32 len | key | group. */
static void sg__nogroup_names(const kv_result *res, kv_slice *key, kv_slice *group)
{
    sg_reader r = {res->value, res->value + res->value_len};
    uint32_t kl = (uint32_t)sg__get(&r, 4);
    if ((size_t)(r.end - r.p) < kl) kl = (uint32_t)(r.end - r.p);
    *key = (kv_slice){r.p, kl};
    *group = (kv_slice){r.p + kl, (size_t)(r.end - r.p) - kl};
}

void resp_stream_group_error(resp_req *req, const kv_result *res)
{
    kv_slice key, group;
    sg__nogroup_names(res, &key, &group);
    const char *cmd = req->cmd->name;
    if (strcmp(cmd, "xreadgroup") == 0)
        resp_req_errorf(req,
                        "NOGROUP No such key '%.*s' or consumer group '%.*s' in XREADGROUP with "
                        "GROUP option",
                        (int)key.len, key.ptr, (int)group.len, group.ptr);
    else if (strcmp(cmd, "xgroup") == 0)
        resp_req_errorf(req, "NOGROUP No such consumer group '%.*s' for key name '%.*s'",
                        (int)group.len, group.ptr, (int)key.len, key.ptr);
    else
        resp_req_errorf(req, "NOGROUP No such key '%.*s' or consumer group '%.*s'", (int)key.len,
                        key.ptr, (int)group.len, group.ptr);
}

/* ---- XGROUP ---------------------------------------------------------------------------- */

static void sg__ok(resp_req *req, const kv_result *res)
{
    (void)res;
    resp_req_ok(req);
}

static void sg__integer(resp_req *req, const kv_result *res)
{
    resp_write_integer(&req->reply, res->integer);
}

static bool sg__entries_read_arg(resp_req *req, const resp_arg *a, int64_t *out)
{
    if (!resp_req_int_arg(req, a, out)) return false;
    if (*out < 0 && *out != -1) {
        resp_req_error(req, "ERR value for ENTRIESREAD must be positive or -1");
        return false;
    }
    return true;
}

static void sg__xgroup(resp_req *req)
{
    const resp_arg *sub = &req->argv[1];
    kv_slice args[3];
    kv_command cmd = {.op = KV_OP_XGROUP, .b = INT64_MIN, .args = args};
    bool create = resp_format_arg_is(sub, "create"), setid = resp_format_arg_is(sub, "setid");
    if (create || setid) {
        if (req->argc < 5) {
            resp_req_errorf(req, "ERR wrong number of arguments for 'xgroup|%s' command",
                            create ? "create" : "setid");
            return;
        }
        for (size_t i = 5; i < req->argc; i++) {
            const resp_arg *o = &req->argv[i];
            if (create && resp_format_arg_is(o, "mkstream")) {
                cmd.flags |= KV_FLAG_NX;
            } else if (resp_format_arg_is(o, "entriesread") && i + 1 < req->argc) {
                if (!sg__entries_read_arg(req, &req->argv[++i], &cmd.b)) return;
            } else {
                resp_req_errorf(req,
                                "ERR unknown subcommand or wrong number of arguments for '%.*s'. "
                                "Try XGROUP HELP.",
                                (int)sub->len, sub->ptr);
                return;
            }
        }
        const resp_arg *ida = &req->argv[4];
        kv_stream_id id;
        if (!(ida->len == 1 && ida->ptr[0] == '$') && !sg__id_arg(req, ida, &id)) return;
        cmd.a = create ? KV_XGROUP_CREATE : KV_XGROUP_SETID;
        cmd.nargs = 3;
        args[2] = (kv_slice){ida->ptr, ida->len};
    } else if (resp_format_arg_is(sub, "destroy")) {
        if (req->argc != 4) {
            resp_req_error(req, "ERR wrong number of arguments for 'xgroup|destroy' command");
            return;
        }
        cmd.a = KV_XGROUP_DESTROY;
        cmd.nargs = 2;
    } else if (resp_format_arg_is(sub, "createconsumer") ||
               resp_format_arg_is(sub, "delconsumer")) {
        bool del = resp_format_arg_is(sub, "delconsumer");
        if (req->argc != 5) {
            resp_req_errorf(req, "ERR wrong number of arguments for 'xgroup|%s' command",
                            del ? "delconsumer" : "createconsumer");
            return;
        }
        cmd.a = del ? KV_XGROUP_DELCONSUMER : KV_XGROUP_CREATECONSUMER;
        cmd.nargs = 3;
        args[2] = (kv_slice){req->argv[4].ptr, req->argv[4].len};
    } else if (resp_format_arg_is(sub, "help") && req->argc == 2) {
        static const char *const lines[] = {
            "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
            "HELP",
            "    Prints this help.",
            NULL};
        resp_req_help(req, lines);
        return;
    } else {
        resp_req_errorf(req, "ERR unknown subcommand '%.*s'. Try XGROUP HELP.",
                        (int)(sub->len > 128 ? 128 : sub->len), sub->ptr);
        return;
    }
    if (req->argv[2].len > req->a->cfg->max_key_bytes) {
        resp_req_errorf(req, "ERR key too large (max %llu bytes)",
                        (unsigned long long)req->a->cfg->max_key_bytes);
        return;
    }
    args[0] = (kv_slice){req->argv[2].ptr, req->argv[2].len};
    args[1] = (kv_slice){req->argv[3].ptr, req->argv[3].len};
    bool counts = cmd.a == KV_XGROUP_DESTROY || cmd.a == KV_XGROUP_CREATECONSUMER ||
                  cmd.a == KV_XGROUP_DELCONSUMER;
    resp_req_propose(req, &cmd, counts ? sg__integer : sg__ok);
}

/* ---- XREADGROUP ------------------------------------------------------------------------ */

static void sg__readgroup_done(resp_req *req, const kv_result *res)
{
    sg_reader r = {res->value, res->value + res->value_len};
    uint32_t n = (uint32_t)sg__get(&r, 4);
    if (n == 0) {
        resp_write_null_array(&req->reply, req->proto);
        return;
    }
    if (req->proto == 3)
        resp_write_map(&req->reply, 3, n);
    else
        resp_write_array(&req->reply, n);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t kl = (uint32_t)sg__get(&r, 4);
        if ((size_t)(r.end - r.p) < kl) kl = (uint32_t)(r.end - r.p);
        if (req->proto == 2) resp_write_array(&req->reply, 2);
        resp_write_bulk(&req->reply, r.p, kl);
        r.p += kl;
        sg__write_entries(req, &r);
    }
}

static void sg__timed_out(resp_req *req)
{
    resp_write_null_array(&req->reply, req->proto);
}

static void sg__xreadgroup(resp_req *req)
{
    if (!resp_format_arg_is(&req->argv[1], "group")) {
        resp_req_error_syntax(req);
        return;
    }
    int64_t count = 0, block_ms = 0;
    bool noack = false, block = false;
    size_t streams = 0;
    for (size_t i = 4; i < req->argc; i++) {
        const resp_arg *o = &req->argv[i];
        size_t more = req->argc - 1 - i;
        if (resp_format_arg_is(o, "count") && more) {
            if (!resp_req_int_arg(req, &req->argv[i + 1], &count)) return;
            if (count < 0) count = 0;
            i++;
        } else if (resp_format_arg_is(o, "block") && more) {
            if (!strconv_parse_i64(req->argv[i + 1].ptr, req->argv[i + 1].len, &block_ms)) {
                resp_req_error(req, "ERR timeout is not an integer or out of range");
                return;
            }
            if (block_ms < 0) {
                resp_req_error(req, "ERR timeout is negative");
                return;
            }
            block = true;
            i++;
        } else if (resp_format_arg_is(o, "noack")) {
            noack = true;
        } else if (resp_format_arg_is(o, "streams") && more) {
            streams = i + 1;
            break;
        } else {
            resp_req_error_syntax(req);
            return;
        }
    }
    if (!streams) {
        resp_req_error_syntax(req);
        return;
    }
    size_t rest = req->argc - streams;
    if (rest % 2) {
        resp_req_error(req, "ERR Unbalanced XREAD list of streams: for each stream key an ID or "
                            "'$' must be specified."); /* sic, Redis 7.0's */
        return;
    }
    size_t nk = rest / 2;
    for (size_t k = streams; k < streams + nk; k++)
        if (!resp_auth_extra_key(req, &req->argv[k])) return; /* keys move: checked here */
    for (size_t k = streams + nk; k < req->argc; k++) {
        const resp_arg *a = &req->argv[k];
        if (a->len == 1 && a->ptr[0] == '>') continue;
        if (a->len == 1 && a->ptr[0] == '$') {
            resp_req_error(req, "ERR The $ ID is meaningless in the context of XREADGROUP: you "
                                "want to read the history of this consumer by specifying a "
                                "proper ID, or use the > ID to get new messages. The $ ID would "
                                "just return an empty result set.");
            return;
        }
        kv_stream_id id;
        if (!sg__id_arg(req, a, &id)) return;
    }
    kv_slice *args = xcalloc(2 + 2 * nk, sizeof(*args));
    args[0] = (kv_slice){req->argv[2].ptr, req->argv[2].len};
    args[1] = (kv_slice){req->argv[3].ptr, req->argv[3].len};
    for (size_t k = 0; k < nk; k++) {
        args[2 + k] = (kv_slice){req->argv[streams + k].ptr, req->argv[streams + k].len};
        const resp_arg *a = &req->argv[streams + nk + k];
        args[2 + nk + k] =
            a->len == 1 && a->ptr[0] == '>' ? (kv_slice){"", 0} : (kv_slice){a->ptr, a->len};
    }
    kv_command cmd = {.op = KV_OP_XREADGROUP,
                      .flags = noack ? KV_FLAG_NX : 0,
                      .a = count,
                      .b = (int64_t)nk,
                      .nargs = (uint32_t)(2 + 2 * nk),
                      .args = args};
    /* BLOCK: proposed again each time one of the streams changes on this
     * node, until something is delivered or the time is up (with only
     * history IDs there is always an answer: it does not block) */
    bool any_new = false;
    for (size_t k = 0; k < nk; k++) any_new |= args[2 + nk + k].len == 0;
    if (block && any_new)
        resp_block_pop(req, &cmd, block_ms, sg__readgroup_done, sg__timed_out);
    else
        resp_req_propose(req, &cmd, sg__readgroup_done);
    free(args);
}

/* ---- XACK ------------------------------------------------------------------------------- */

static void sg__xack(resp_req *req)
{
    for (size_t i = 3; i < req->argc; i++) {
        kv_stream_id id;
        if (!kv_stream_id_parse(req->argv[i].ptr, req->argv[i].len, 0, &id, NULL)) {
            resp_req_error(req, SG_ERR_ID);
            return;
        }
    }
    kv_slice *args = xcalloc(req->argc - 1, sizeof(*args));
    for (size_t i = 1; i < req->argc; i++)
        args[i - 1] = (kv_slice){req->argv[i].ptr, req->argv[i].len};
    kv_command cmd = {.op = KV_OP_XACK, .nargs = (uint32_t)(req->argc - 1), .args = args};
    resp_req_propose(req, &cmd, sg__integer);
    free(args);
}

/* ---- XCLAIM and XAUTOCLAIM ------------------------------------------------------------- */

static bool sg__ms_arg(resp_req *req, const resp_arg *a, int64_t *out, const char *what)
{
    if (!strconv_parse_i64(a->ptr, a->len, out)) {
        resp_req_errorf(req, "ERR Invalid %s argument for XCLAIM", what);
        return false;
    }
    return true;
}

static void sg__claim_done(resp_req *req, const kv_result *res)
{
    sg_reader r = {res->value, res->value + res->value_len};
    sg__write_entries(req, &r);
}

static void sg__xclaim(resp_req *req)
{
    int64_t min_idle;
    if (!strconv_parse_i64(req->argv[4].ptr, req->argv[4].len, &min_idle)) {
        resp_req_error(req, "ERR Invalid min-idle-time argument for XCLAIM");
        return;
    }
    if (min_idle < 0) min_idle = 0;
    size_t i = 5;
    for (; i < req->argc; i++) {
        kv_stream_id id;
        if (!kv_stream_id_parse(req->argv[i].ptr, req->argv[i].len, 0, &id, NULL)) break;
    }
    size_t ids_end = i;
    kv_command cmd = {.op = KV_OP_XCLAIM, .a = min_idle, .expire_ms = -1};
    const resp_arg *lastid = NULL;
    for (; i < req->argc; i++) {
        const resp_arg *o = &req->argv[i];
        size_t more = req->argc - 1 - i;
        if (resp_format_arg_is(o, "force")) {
            cmd.flags |= KV_FLAG_NX;
        } else if (resp_format_arg_is(o, "justid")) {
            cmd.flags |= KV_FLAG_XX;
        } else if (resp_format_arg_is(o, "idle") && more) {
            if (!sg__ms_arg(req, &req->argv[++i], &cmd.b, "IDLE")) return;
            cmd.flags = (uint16_t)((cmd.flags & ~KV_FLAG_GET) | KV_FLAG_KEEPTTL);
        } else if (resp_format_arg_is(o, "time") && more) {
            if (!sg__ms_arg(req, &req->argv[++i], &cmd.b, "TIME")) return;
            cmd.flags = (uint16_t)((cmd.flags & ~KV_FLAG_KEEPTTL) | KV_FLAG_GET);
        } else if (resp_format_arg_is(o, "retrycount") && more) {
            if (!sg__ms_arg(req, &req->argv[++i], &cmd.expire_ms, "RETRYCOUNT")) return;
        } else if (resp_format_arg_is(o, "lastid") && more) {
            lastid = &req->argv[++i];
            kv_stream_id id;
            if (!sg__id_arg(req, lastid, &id)) return;
        } else {
            resp_req_errorf(req, "ERR Unrecognized XCLAIM option '%.*s'", (int)o->len, o->ptr);
            return;
        }
    }
    if (ids_end == 5) {
        resp_req_error(req, SG_ERR_ID);
        return;
    }
    if (cmd.flags & KV_FLAG_GET && cmd.b < 0) cmd.b = 0;
    size_t n = 3 + (ids_end - 5) + (lastid ? 1 : 0);
    kv_slice *args = xcalloc(n, sizeof(*args));
    for (size_t k = 0; k < 3; k++) args[k] = (kv_slice){req->argv[1 + k].ptr, req->argv[1 + k].len};
    for (size_t k = 5; k < ids_end; k++)
        args[3 + k - 5] = (kv_slice){req->argv[k].ptr, req->argv[k].len};
    if (lastid) {
        args[n - 1] = (kv_slice){lastid->ptr, lastid->len};
        cmd.flags |= KV_FLAG_PERSIST;
    }
    cmd.nargs = (uint32_t)n;
    cmd.args = args;
    resp_req_propose(req, &cmd, sg__claim_done);
    free(args);
}

static void sg__autoclaim_done(resp_req *req, const kv_result *res)
{
    sg_reader r = {res->value, res->value + res->value_len};
    kv_stream_id next = {sg__get(&r, 8), 0};
    next.seq = sg__get(&r, 8);
    resp_write_array(&req->reply, 3);
    resp_stream_write_id(&req->reply, next);
    sg__write_entries(req, &r);
    uint32_t gone = (uint32_t)sg__get(&r, 4);
    resp_write_array(&req->reply, gone);
    for (uint32_t i = 0; i < gone; i++) {
        kv_stream_id id = {sg__get(&r, 8), 0};
        id.seq = sg__get(&r, 8);
        resp_stream_write_id(&req->reply, id);
    }
}

static void sg__xautoclaim(resp_req *req)
{
    int64_t min_idle, count = 100;
    if (!strconv_parse_i64(req->argv[4].ptr, req->argv[4].len, &min_idle)) {
        resp_req_error(req, "ERR Invalid min-idle-time argument for XAUTOCLAIM");
        return;
    }
    if (min_idle < 0) min_idle = 0;
    kv_stream_id start;
    if (!sg__id_arg(req, &req->argv[5], &start)) return;
    bool justid = false;
    for (size_t i = 6; i < req->argc; i++) {
        const resp_arg *o = &req->argv[i];
        if (resp_format_arg_is(o, "justid")) {
            justid = true;
        } else if (resp_format_arg_is(o, "count") && i + 1 < req->argc) {
            if (!resp_req_int_arg(req, &req->argv[++i], &count)) return;
            if (count < 1 || count > INT64_MAX / 10) {
                resp_req_error(req, "ERR COUNT must be > 0");
                return;
            }
        } else {
            resp_req_error_syntax(req);
            return;
        }
    }
    char text[48];
    int tn = kv_stream_id_format(start, text);
    kv_slice args[4] = {{req->argv[1].ptr, req->argv[1].len},
                        {req->argv[2].ptr, req->argv[2].len},
                        {req->argv[3].ptr, req->argv[3].len},
                        {text, (size_t)tn}};
    kv_command cmd = {.op = KV_OP_XAUTOCLAIM,
                      .flags = justid ? KV_FLAG_XX : 0,
                      .a = min_idle,
                      .b = count,
                      .nargs = 4,
                      .args = args};
    resp_req_propose(req, &cmd, sg__autoclaim_done);
}

/* ---- XPENDING (a read) -------------------------------------------------------- */

/* The stream and group named by argv[1], argv[2], or an error (NULL). */
static kv_sg *sg__lookup(resp_req *req, const resp_arg *key, const resp_arg *group, kv_entry **out)
{
    bool wrong;
    kv_entry *e = resp_req_lookup_typed(req, key, KV_TYPE_STREAM, &wrong);
    if (wrong) return NULL;
    kv_sg *g = e ? kv_sg_find(e, group->ptr, group->len) : NULL;
    if (!g)
        resp_req_errorf(req, "NOGROUP No such key '%.*s' or consumer group '%.*s'", (int)key->len,
                        key->ptr, (int)group->len, group->ptr);
    *out = e;
    return g;
}

/* XPENDING: n[0] 1 for the extended form; n[1] IDLE (-1 none), n[2]
 * count, n[3] the start's argument, n[4] the consumer's (0: none). */
static void sg__xpending_ready(resp_req *req)
{
    kv_entry *e;
    kv_sg *g = sg__lookup(req, &req->argv[1], &req->argv[2], &e);
    if (!g) return;
    int64_t now = replica_req_read_ms(&req->rreq);
    if (!req->n[0]) {
        resp_write_array(&req->reply, 4);
        resp_write_integer(&req->reply, (long long)g->npel);
        if (!g->npel) {
            resp_write_null(&req->reply, req->proto);
            resp_write_null(&req->reply, req->proto);
            resp_write_null_array(&req->reply, req->proto);
            return;
        }
        resp_stream_write_id(&req->reply, g->pel[0].id);
        resp_stream_write_id(&req->reply, g->pel[g->npel - 1].id);
        size_t with = 0;
        for (uint32_t i = 0; i < g->nconsumers; i++) with += g->consumers[i]->pending > 0;
        resp_write_array(&req->reply, with);
        for (uint32_t i = 0; i < g->nconsumers; i++) {
            const kv_sg_consumer *c = g->consumers[i];
            if (!c->pending) continue;
            char num[24];
            int nl = snprintf(num, sizeof(num), "%llu", (unsigned long long)c->pending);
            resp_write_array(&req->reply, 2);
            resp_write_bulk(&req->reply, c->name, c->name_len);
            resp_write_bulk(&req->reply, num, (size_t)nl);
        }
        return;
    }
    size_t at = (size_t)req->n[3];
    kv_stream_id start, end;
    bool excl_s = req->argv[at].len > 1 && req->argv[at].ptr[0] == '(';
    bool excl_e = req->argv[at + 1].len > 1 && req->argv[at + 1].ptr[0] == '(';
    resp_arg sa = {req->argv[at].ptr + excl_s, req->argv[at].len - excl_s};
    resp_arg ea = {req->argv[at + 1].ptr + excl_e, req->argv[at + 1].len - excl_e};
    if (!(sa.len == 1 && sa.ptr[0] == '-')) {
        if (!kv_stream_id_parse(sa.ptr, sa.len, 0, &start, NULL)) start = (kv_stream_id){0, 0};
    } else {
        start = (kv_stream_id){0, 0};
    }
    if (ea.len == 1 && ea.ptr[0] == '+')
        end = (kv_stream_id){UINT64_MAX, UINT64_MAX};
    else if (!kv_stream_id_parse(ea.ptr, ea.len, UINT64_MAX, &end, NULL))
        end = (kv_stream_id){UINT64_MAX, UINT64_MAX};
    const kv_sg_consumer *only = NULL;
    if (req->n[4]) {
        only = kv_sg_consumer_find(g, req->argv[req->n[4]].ptr, req->argv[req->n[4]].len);
        if (!only) {
            resp_write_array(&req->reply, 0);
            return;
        }
    }
    uint64_t count = (uint64_t)req->n[2];
    buf body;
    buf_init(&body);
    uint64_t n = 0;
    for (uint64_t k = kv_sg_pel_seek(g, start); k < g->npel && n < count; k++) {
        const kv_sg_pending *p = &g->pel[k];
        int ce = kv_stream_id_cmp(p->id, end);
        if (ce > 0 || (excl_e && ce == 0)) break;
        if (excl_s && kv_stream_id_cmp(p->id, start) == 0) continue;
        if (only && p->owner != only) continue;
        int64_t idle = now - p->delivered_ms;
        if (idle < 0) idle = 0;
        if (req->n[1] >= 0 && idle < req->n[1]) continue;
        resp_write_array(&body, 4);
        resp_stream_write_id(&body, p->id);
        resp_write_bulk(&body, p->owner->name, p->owner->name_len);
        resp_write_integer(&body, idle);
        resp_write_integer(&body, (long long)p->deliveries);
        n++;
    }
    resp_write_array(&req->reply, n);
    buf_append(&req->reply, body.data, body.len);
    buf_close(&body);
}

static void sg__xpending(resp_req *req)
{
    memset(req->n, 0, sizeof(req->n));
    req->n[1] = -1;
    if (req->argc == 3) {
        resp_req_read(req, sg__xpending_ready);
        return;
    }
    size_t i = 3;
    if (req->argc > 4 && resp_format_arg_is(&req->argv[3], "idle")) {
        if (!resp_req_int_arg(req, &req->argv[4], &req->n[1])) return;
        if (req->n[1] < 0) req->n[1] = 0;
        i = 5;
    }
    if (req->argc < i + 3 || req->argc > i + 4) {
        resp_req_error_syntax(req);
        return;
    }
    for (size_t k = i; k < i + 2; k++) {
        const resp_arg *a = &req->argv[k];
        bool excl = a->len > 1 && a->ptr[0] == '(';
        resp_arg b = {a->ptr + excl, a->len - excl};
        kv_stream_id id;
        if (!sg__id_arg(req, &b, &id)) return;
    }
    if (!resp_req_int_arg(req, &req->argv[i + 2], &req->n[2])) return;
    if (req->n[2] < 0) req->n[2] = 0;
    req->n[0] = 1;
    req->n[3] = (int64_t)i;
    req->n[4] = req->argc == i + 4 ? (int64_t)(i + 3) : 0;
    resp_req_read(req, sg__xpending_ready);
}

#define W RESP_CMD_WRITE
#define R RESP_CMD_READONLY
#define F RESP_CMD_FAST

const resp_cmd resp_cmds_stream_groups[] = {
    {"xgroup", sg__xgroup, -2, W, 2, 2, 1, "stream", "5.0.0", "Depends on subcommand.",
     "Consumer groups: CREATE, SETID, DESTROY, CREATECONSUMER, DELCONSUMER, HELP",
     "subcommand [argument ...]"},
    {"xreadgroup", sg__xreadgroup, -7, W | RESP_CMD_BLOCKING | RESP_CMD_BLOCK_OPTION, 0, 0, 0,
     "stream", "5.0.0", "For each stream mentioned: O(M) with M the number of elements returned",
     "Return new entries from a stream using a consumer group, or access the history of the "
     "pending entries for a given consumer; BLOCK waits on any node",
     "GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS key [key ...] id "
     "[id ...]"},
    {"xack", sg__xack, -4, W | F, 1, 1, 1, "stream", "5.0.0", "O(1) for each message ID processed.",
     "Marks a pending message as correctly processed, effectively removing it from the pending "
     "entries list of the consumer group",
     "key group id [id ...]"},
    {"xclaim", sg__xclaim, -6, W | F, 1, 1, 1, "stream", "5.0.0",
     "O(log N) with N the number of "
     "messages in the PEL of the consumer group.",
     "Changes (or acquires) ownership of a message in a consumer group, as if the message was "
     "delivered to the specified consumer.",
     "key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-milliseconds] "
     "[RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]"},
    {"xautoclaim", sg__xautoclaim, -6, W | F, 1, 1, 1, "stream", "6.2.0", "O(1) if COUNT is small.",
     "Changes (or acquires) ownership of messages in a consumer group, as if the messages were "
     "delivered to the specified consumer.",
     "key group consumer min-idle-time start [COUNT count] [JUSTID]"},
    {"xpending", sg__xpending, -3, R, 1, 1, 1, "stream", "5.0.0",
     "O(N) with N the number of elements returned",
     "Return information and entries from a stream consumer group pending entries list, that "
     "are messages fetched but never acknowledged.",
     "key group [[IDLE min-idle-time] start end count [consumer]]"},
};
const size_t resp_cmds_stream_groups_count =
    sizeof(resp_cmds_stream_groups) / sizeof(resp_cmds_stream_groups[0]);
