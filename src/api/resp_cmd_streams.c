/* resp_cmd_streams: Redis streams (issue 13): XADD XLEN XRANGE XREVRANGE
 * XDEL XTRIM XREAD.
 *
 * XADD, XDEL and XTRIM are one kv command each (kv/store.c applies them
 * with kv/stream.h): the leader's stamp gives `*` its milliseconds, so
 * every replica assigns the same ID. The reads run on the local store.
 * Arguments are checked here with Redis 7.0's texts, in its order, so the
 * log only carries commands that apply. XREAD BLOCK waits on this node's
 * applies (resp_block_read): a reader on a follower is served when the
 * follower applies the XADD. XSETID is a kv command too, checked against
 * the stream at apply. Consumer groups and XINFO: resp_cmd_stream_groups.c. */
#include <stdlib.h>
#include <string.h>

#include "api/resp_internal.h"
#include "kv/stream.h"
#include "util/alloc.h"
#include "util/strconv.h"

#define STREAM_ERR_ID "ERR Invalid stream ID specified as stream command argument"

/* Redis' parse of an ID argument: "-" and "+" unless strict, "ms" alone
 * (seq = missing_seq), "ms-seq"; with auto_seq, "ms-*" too. */
static bool stream__id_arg(resp_req *req, const resp_arg *a, uint64_t missing_seq, bool strict,
                           kv_stream_id *id, bool *auto_seq)
{
    if (a->len == 1 && (a->ptr[0] == '-' || a->ptr[0] == '+')) {
        if (strict) {
            resp_req_error(req, STREAM_ERR_ID);
            return false;
        }
        *id = a->ptr[0] == '-' ? (kv_stream_id){0, 0} : (kv_stream_id){UINT64_MAX, UINT64_MAX};
        return true;
    }
    if (!kv_stream_id_parse(a->ptr, a->len, missing_seq, id, auto_seq)) {
        resp_req_error(req, STREAM_ERR_ID);
        return false;
    }
    return true;
}

/* ---- XADD and XTRIM ------------------------------------------------------------------ */

typedef struct stream_trim {
    int kind; /* KV_XTRIM_* */
    bool approx;
    size_t threshold; /* its argument */
    int64_t limit;
    bool limit_given;
} stream_trim;

/* The options from argv[2]; returns the index of the first argument that
 * is not one (XADD's ID), or 0 after replying an error. */
static size_t stream__trim_args(resp_req *req, bool xadd, stream_trim *t, bool *nomkstream)
{
    size_t i = 2;
    for (; i < req->argc; i++) {
        size_t more = req->argc - 1 - i;
        const resp_arg *o = &req->argv[i];
        if (xadd && o->len == 1 && o->ptr[0] == '*') break;
        bool maxlen = resp_format_arg_is(o, "maxlen"), minid = resp_format_arg_is(o, "minid");
        if ((maxlen || minid) && more) {
            if (t->kind != KV_XTRIM_NONE) {
                resp_req_error(req, "ERR syntax error, MAXLEN and MINID options at the same time "
                                    "are not compatible");
                return 0;
            }
            t->approx = false;
            const resp_arg *next = &req->argv[i + 1];
            if (more >= 2 && next->len == 1 && (next->ptr[0] == '~' || next->ptr[0] == '=')) {
                t->approx = next->ptr[0] == '~';
                i++;
            }
            const resp_arg *v = &req->argv[i + 1];
            if (maxlen) {
                int64_t n;
                if (!resp_req_int_arg(req, v, &n)) return 0;
                if (n < 0) {
                    resp_req_error(req, "ERR The MAXLEN argument must be >= 0.");
                    return 0;
                }
            } else {
                kv_stream_id id;
                if (!stream__id_arg(req, v, 0, true, &id, NULL)) return 0;
            }
            i++;
            t->kind = maxlen ? KV_XTRIM_MAXLEN : KV_XTRIM_MINID;
            t->threshold = i;
        } else if (resp_format_arg_is(o, "limit") && more) {
            if (!resp_req_int_arg(req, &req->argv[i + 1], &t->limit)) return 0;
            if (t->limit < 0) {
                resp_req_error(req, "ERR The LIMIT argument must be >= 0.");
                return 0;
            }
            t->limit_given = true;
            i++;
        } else if (xadd && resp_format_arg_is(o, "nomkstream")) {
            *nomkstream = true;
        } else if (xadd) {
            break; /* the ID, checked by the caller */
        } else {
            resp_req_error_syntax(req);
            return 0;
        }
    }
    if (t->limit && t->kind == KV_XTRIM_NONE) {
        resp_req_error(req, "ERR syntax error, LIMIT cannot be used without specifying a trimming "
                            "strategy");
        return 0;
    }
    if (!xadd && t->kind == KV_XTRIM_NONE) {
        resp_req_error(req, "ERR syntax error, XTRIM must be called with a trimming strategy");
        return 0;
    }
    if (t->approx) {
        if (!t->limit_given) t->limit = 100 * KV_STREAM_NODE_ENTRIES;
    } else if (t->limit_given && t->limit) {
        resp_req_error(req, "ERR syntax error, LIMIT cannot be used without the special ~ option");
        return 0;
    }
    return i;
}

static void stream__reply_id(resp_req *req, const kv_result *res)
{
    if (!res->has_value) {
        resp_req_null(req); /* NOMKSTREAM on a missing key */
        return;
    }
    resp_write_bulk(&req->reply, res->value, res->value_len);
}

static void stream__xadd(resp_req *req)
{
    stream_trim t = {0};
    bool nomk = false;
    size_t at = stream__trim_args(req, true, &t, &nomk);
    if (!at) return;
    if (at >= req->argc) {
        resp_req_error_arity(req);
        return;
    }
    const resp_arg *ida = &req->argv[at];
    size_t fields = at + 1, nf = req->argc - fields;
    kv_stream_id id = {0, 0};
    bool auto_ms = ida->len == 1 && ida->ptr[0] == '*', auto_seq = false;
    if (!auto_ms && !stream__id_arg(req, ida, 0, true, &id, &auto_seq)) return;
    if (nf < 2 || nf % 2) {
        resp_req_error_arity(req);
        return;
    }
    if (!auto_ms && !auto_seq && id.ms == 0 && id.seq == 0) {
        resp_req_error(req, "ERR The ID specified in XADD must be greater than 0-0");
        return;
    }
    for (size_t i = fields; i < req->argc; i++)
        if (!resp_req_check_value(req, &req->argv[i])) return;
    /* key, id ("" for *), threshold ("" without trimming), fields */
    size_t n = 3 + nf;
    kv_slice *args = xcalloc(n, sizeof(*args));
    args[0] = (kv_slice){req->argv[1].ptr, req->argv[1].len};
    args[1] = auto_ms ? (kv_slice){"", 0} : (kv_slice){ida->ptr, ida->len};
    args[2] = t.kind ? (kv_slice){req->argv[t.threshold].ptr, req->argv[t.threshold].len}
                     : (kv_slice){"", 0};
    for (size_t i = 0; i < nf; i++)
        args[3 + i] = (kv_slice){req->argv[fields + i].ptr, req->argv[fields + i].len};
    kv_command cmd = {.op = KV_OP_XADD,
                      .flags = nomk ? KV_FLAG_XX : 0,
                      .a = t.kind | (t.approx ? KV_XTRIM_APPROX : 0),
                      .b = t.limit,
                      .nargs = (uint32_t)n,
                      .args = args};
    resp_req_propose(req, &cmd, stream__reply_id);
    free(args);
}

static void stream__xtrim(resp_req *req)
{
    stream_trim t = {0};
    bool nomk = false;
    size_t at = stream__trim_args(req, false, &t, &nomk);
    if (!at) return;
    kv_slice args[2] = {{req->argv[1].ptr, req->argv[1].len},
                        {req->argv[t.threshold].ptr, req->argv[t.threshold].len}};
    kv_command cmd = {.op = KV_OP_XTRIM,
                      .a = t.kind | (t.approx ? KV_XTRIM_APPROX : 0),
                      .b = t.limit,
                      .nargs = 2,
                      .args = args};
    resp_req_propose(req, &cmd, resp_reply_integer);
}

static void stream__xdel(resp_req *req)
{
    for (size_t i = 2; i < req->argc; i++) {
        kv_stream_id id;
        if (!stream__id_arg(req, &req->argv[i], 0, true, &id, NULL)) return;
    }
    resp_req_propose_args(req, 1, req->argc - 1, KV_OP_XDEL, 0, 0, 0, resp_reply_integer);
}

/* XSETID key last-id [ENTRIESADDED n] [MAXDELETEDID id]: the arguments
 * here, in Redis' order; what depends on the stream at apply. */
static void stream__xsetid(resp_req *req)
{
    kv_stream_id id, md = {0, 0};
    if (!stream__id_arg(req, &req->argv[2], 0, true, &id, NULL)) return;
    int64_t added = -1;
    size_t md_arg = 0;
    for (size_t i = 3; i < req->argc; i += 2) {
        const resp_arg *o = &req->argv[i];
        bool more = i + 1 < req->argc;
        if (more && resp_format_arg_is(o, "entriesadded")) {
            if (!resp_req_int_arg(req, &req->argv[i + 1], &added)) return;
            if (added < 0) {
                resp_req_error(req, "ERR entries_added must be positive");
                return;
            }
        } else if (more && resp_format_arg_is(o, "maxdeletedid")) {
            if (!stream__id_arg(req, &req->argv[i + 1], 0, true, &md, NULL)) return;
            if (kv_stream_id_cmp(id, md) < 0) {
                resp_req_error(req, "ERR The ID specified in XSETID is smaller than the "
                                    "provided max_deleted_entry_id");
                return;
            }
            md_arg = i + 1;
        } else {
            resp_req_error_syntax(req);
            return;
        }
    }
    /* as Redis: MAXDELETEDID 0-0 leaves the stream's as it is */
    if (md.ms == 0 && md.seq == 0) md_arg = 0;
    kv_slice args[3] = {{req->argv[1].ptr, req->argv[1].len},
                        {req->argv[2].ptr, req->argv[2].len},
                        {md_arg ? req->argv[md_arg].ptr : "", md_arg ? req->argv[md_arg].len : 0}};
    kv_command cmd = {.op = KV_OP_XSETID, .a = added, .nargs = md_arg ? 3 : 2, .args = args};
    resp_req_propose(req, &cmd, resp_reply_ok);
}

/* ---- reads ------------------------------------------------------------------------------ */

void resp_stream_write_id(buf *o, kv_stream_id id)
{
    char text[48];
    int n = kv_stream_id_format(id, text);
    resp_write_bulk(o, text, (size_t)n);
}

void resp_stream_write_entry(buf *o, const kv_stream_entry *x)
{
    resp_write_array(o, 2);
    resp_stream_write_id(o, kv_stream_entry_id(x));
    uint32_t pairs = kv_stream_entry_fields(x);
    resp_write_array(o, 2 * (size_t)pairs);
    for (uint32_t i = 0; i < pairs; i++) {
        kv_slice f, v;
        kv_stream_entry_field(x, i, &f, &v);
        resp_write_bulk(o, f.ptr, f.len);
        resp_write_bulk(o, v.ptr, v.len);
    }
}

/* The entries of e in [start, end] (or reversed), at most count (0: all),
 * as an array. */
static void stream__write_range(buf *o, const kv_entry *e, kv_stream_id start, kv_stream_id end,
                                bool rev, uint64_t count)
{
    uint64_t len = e ? kv_stream_len(e) : 0;
    if (!e || kv_stream_id_cmp(start, end) > 0) {
        resp_write_array(o, 0);
        return;
    }
    uint64_t from = kv_stream_seek(e, start), to = len; /* [from, to) in range */
    if (end.seq != UINT64_MAX)
        to = kv_stream_seek(e, (kv_stream_id){end.ms, end.seq + 1});
    else if (end.ms != UINT64_MAX)
        to = kv_stream_seek(e, (kv_stream_id){end.ms + 1, 0});
    if (to < from) to = from;
    uint64_t n = to - from;
    if (count && n > count) n = count;
    resp_write_array(o, n);
    for (uint64_t i = 0; i < n; i++)
        resp_stream_write_entry(o, kv_stream_at(e, rev ? to - 1 - i : from + i));
}

static void stream__range_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = resp_req_lookup_typed(req, &req->argv[1], KV_TYPE_STREAM, &wrong);
    if (wrong) return;
    kv_stream_id start = {(uint64_t)req->n[0], (uint64_t)req->n[1]},
                 end = {(uint64_t)req->n[2], (uint64_t)req->n[3]};
    int64_t count = (int64_t)(req->opt >> 1) - 1; /* -1: no COUNT */
    if (count == 0 && e) {
        resp_write_null_array(&req->reply, req->proto);
        return;
    }
    stream__write_range(&req->reply, e, start, end, req->opt & 1, count < 0 ? 0 : (uint64_t)count);
}

/* "(" excludes the bound: the next ID (start) or the one before (end). */
static bool stream__interval_arg(resp_req *req, const resp_arg *a, bool is_end, kv_stream_id *id)
{
    bool ex = a->len > 1 && a->ptr[0] == '(';
    if (!ex) return stream__id_arg(req, a, is_end ? UINT64_MAX : 0, false, id, NULL);
    resp_arg inner = {a->ptr + 1, a->len - 1};
    if (!stream__id_arg(req, &inner, is_end ? UINT64_MAX : 0, true, id, NULL)) return false;
    if (!is_end) {
        if (id->seq == UINT64_MAX && id->ms == UINT64_MAX) {
            resp_req_error(req, "ERR invalid start ID for the interval");
            return false;
        }
        if (id->seq == UINT64_MAX) {
            id->ms++;
            id->seq = 0;
        } else {
            id->seq++;
        }
    } else {
        if (id->seq == 0 && id->ms == 0) {
            resp_req_error(req, "ERR invalid end ID for the interval");
            return false;
        }
        if (id->seq == 0) {
            id->ms--;
            id->seq = UINT64_MAX;
        } else {
            id->seq--;
        }
    }
    return true;
}

static void stream__range(resp_req *req, bool rev)
{
    kv_stream_id start, end;
    if (!stream__interval_arg(req, &req->argv[rev ? 3 : 2], false, &start) ||
        !stream__interval_arg(req, &req->argv[rev ? 2 : 3], true, &end))
        return;
    int64_t count = -1;
    for (size_t j = 4; j < req->argc; j++) {
        if (resp_format_arg_is(&req->argv[j], "count") && j + 1 < req->argc) {
            if (!resp_req_int_arg(req, &req->argv[j + 1], &count)) return;
            if (count < 0) count = 0;
            j++;
        } else {
            resp_req_error_syntax(req);
            return;
        }
    }
    req->n[0] = (int64_t)start.ms;
    req->n[1] = (int64_t)start.seq;
    req->n[2] = (int64_t)end.ms;
    req->n[3] = (int64_t)end.seq;
    if (count > (int64_t)(UINT32_MAX / 4)) count = UINT32_MAX / 4; /* fits opt; more than any */
    req->opt = (uint32_t)((count + 1) << 1) | (rev ? 1u : 0u);
    resp_req_read(req, stream__range_ready);
}

static void stream__xrange(resp_req *req)
{
    stream__range(req, false);
}

static void stream__xrevrange(resp_req *req)
{
    stream__range(req, true);
}

static void stream__xlen_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = resp_req_lookup_typed(req, &req->argv[1], KV_TYPE_STREAM, &wrong);
    if (!wrong) resp_write_integer(&req->reply, e ? (long long)kv_stream_len(e) : 0);
}

static void stream__xlen(resp_req *req)
{
    resp_req_read(req, stream__xlen_ready);
}

/* XREAD [COUNT count] [BLOCK ms] STREAMS key ... id ...: n[0] the first
 * key's index, n[1] the count (0: all), n[2] 1 with BLOCK, n[3] its ms. */
typedef struct xread_state {
    kv_stream_id after[1]; /* one per key */
} xread_state;

/* Answer the entries after after[i] of each stream that has some; false
 * (nothing written) when none has, or after a WRONGTYPE (*failed). */
static bool stream__xread_serve(resp_req *req, const kv_stream_id *after, bool *failed)
{
    size_t first = (size_t)req->n[0], nk = (req->argc - first) / 2;
    uint64_t count = (uint64_t)req->n[1];
    kv_entry **es = xcalloc(nk, sizeof(*es));
    size_t found = 0;
    *failed = false;
    for (size_t i = 0; i < nk; i++) {
        bool wrong;
        es[i] = resp_req_lookup_typed(req, &req->argv[first + i], KV_TYPE_STREAM, &wrong);
        if (wrong) {
            *failed = true;
            free(es);
            return false;
        }
        uint64_t len = es[i] ? kv_stream_len(es[i]) : 0;
        if (len && kv_stream_id_cmp(kv_stream_entry_id(kv_stream_at(es[i], len - 1)), after[i]) > 0)
            found++;
        else
            es[i] = NULL;
    }
    if (found) {
        if (req->proto == 3)
            resp_write_map(&req->reply, 3, found);
        else
            resp_write_array(&req->reply, found);
        for (size_t i = 0; i < nk; i++) {
            if (!es[i]) continue;
            kv_stream_id start = after[i];
            if (start.seq == UINT64_MAX) {
                start.ms++;
                start.seq = 0;
            } else {
                start.seq++;
            }
            if (req->proto == 2) resp_write_array(&req->reply, 2);
            resp_write_bulk(&req->reply, req->argv[first + i].ptr, req->argv[first + i].len);
            stream__write_range(&req->reply, es[i], start, (kv_stream_id){UINT64_MAX, UINT64_MAX},
                                false, count);
        }
    }
    free(es);
    return found > 0;
}

static bool stream__xread_retry(resp_req *req)
{
    const xread_state *st = resp_block_state(req);
    bool failed;
    bool answered = stream__xread_serve(req, st->after, &failed);
    return answered || failed;
}

static void stream__xread_ready(resp_req *req)
{
    size_t first = (size_t)req->n[0], nk = (req->argc - first) / 2;
    xread_state *st = xcalloc(1, sizeof(*st) + nk * sizeof(kv_stream_id));
    for (size_t i = 0; i < nk; i++) {
        const resp_arg *ida = &req->argv[first + nk + i];
        if (ida->len == 1 && ida->ptr[0] == '$') { /* what is there now */
            kv_entry *e = kv_store_get(req->a->store, req->argv[first + i].ptr,
                                       req->argv[first + i].len, replica_req_read_ms(&req->rreq));
            st->after[i] =
                e && e->type == KV_TYPE_STREAM ? kv_stream_last_id(e) : (kv_stream_id){0, 0};
        } else {
            kv_stream_id_parse(ida->ptr, ida->len, 0, &st->after[i], NULL); /* checked before */
            if (ida->len == 1 && ida->ptr[0] == '+')
                st->after[i] = (kv_stream_id){UINT64_MAX, UINT64_MAX};
        }
    }
    bool failed;
    if (stream__xread_serve(req, st->after, &failed) || failed) {
        free(st);
        return;
    }
    if (!req->n[2] || req->tx_exec ||
        req->script) { /* inside MULTI, BLOCK does not block (as in Redis) */
        resp_write_null_array(&req->reply, req->proto);
        free(st);
        return;
    }
    resp_block_read(req, first, nk, KV_TYPE_STREAM, req->n[3], stream__xread_retry, st);
}

static void stream__xread(resp_req *req)
{
    int64_t count = 0, block_ms = 0;
    bool block = false;
    size_t i = 1, streams = 0;
    for (; i < req->argc; i++) {
        const resp_arg *o = &req->argv[i];
        size_t more = req->argc - 1 - i;
        if (resp_format_arg_is(o, "block") && more) {
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
        } else if (resp_format_arg_is(o, "count") && more) {
            if (!resp_req_int_arg(req, &req->argv[i + 1], &count)) return;
            if (count < 0) count = 0;
            i++;
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
        resp_req_error(req, "ERR Unbalanced XREAD list of streams: for each stream key an ID "
                            "or '$' must be specified.");
        return;
    }
    for (size_t k = streams; k < streams + rest / 2; k++)
        if (!resp_auth_extra_read_key(req, &req->argv[k])) return; /* keys move: checked here */
    for (size_t k = streams + rest / 2; k < req->argc; k++) {
        const resp_arg *a = &req->argv[k];
        if (a->len == 1 && a->ptr[0] == '$') continue;
        if (a->len == 1 && a->ptr[0] == '>') {
            resp_req_error(req, "ERR The > ID can be specified only when calling XREADGROUP "
                                "using the GROUP <group> <consumer> option.");
            return;
        }
        kv_stream_id id;
        if (!stream__id_arg(req, a, 0, false, &id, NULL)) return;
    }
    req->n[0] = (int64_t)streams;
    req->n[1] = count;
    req->n[2] = block;
    req->n[3] = block_ms;
    resp_req_read(req, stream__xread_ready);
}

#define W RESP_CMD_WRITE
#define R RESP_CMD_READONLY
#define F RESP_CMD_FAST
#define D RESP_CMD_DENYOOM

const resp_cmd resp_cmds_streams[] = {
    {"xadd", stream__xadd, -5, W | D | F, 1, 1, 1, "stream", "5.0.0",
     "O(1) when adding a new entry", "Append a new entry to a stream",
     "key [NOMKSTREAM] [MAXLEN|MINID threshold [LIMIT count]] id field value "
     "[field value ...]"},
    {"xlen", stream__xlen, 2, R | F, 1, 1, 1, "stream", "5.0.0", "O(1)",
     "Return the number of entries in a stream", "key"},
    {"xrange", stream__xrange, -4, R, 1, 1, 1, "stream", "5.0.0",
     "O(N) with N being the number of elements being returned",
     "Return a range of elements in a stream, with IDs matching the specified IDs interval",
     "key start end [COUNT count]"},
    {"xrevrange", stream__xrevrange, -4, R, 1, 1, 1, "stream", "5.0.0",
     "O(N) with N being the number of elements returned",
     "Return a range of elements in a stream, with IDs matching the specified IDs interval, in "
     "reverse order (from greater to smaller IDs) compared to XRANGE",
     "key end start [COUNT count]"},
    {"xdel", stream__xdel, -3, W | F, 1, 1, 1, "stream", "5.0.0",
     "O(1) for each single item to delete in the stream",
     "Removes the specified entries from the stream", "key id [id ...]"},
    {"xtrim", stream__xtrim, -4, W, 1, 1, 1, "stream", "5.0.0", "O(N)",
     "Trims the stream to (approximately if '~' is passed before the threshold) a certain size",
     "key (MAXLEN|MINID) threshold [LIMIT count]"},
    {"xsetid", stream__xsetid, -3, W | D | F, 1, 1, 1, "stream", "5.0.0", "O(1)",
     "An internal command for replicating stream values",
     "key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-entry-id]"},
    {"xread", stream__xread, -4, R | RESP_CMD_BLOCKING, 0, 0, 0, "stream", "5.0.0",
     "O(N) with N the number of elements being returned",
     "Return never seen elements in multiple streams, with IDs greater than the ones reported "
     "by the caller for each stream; BLOCK waits for them on any node",
     "[COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]"},
};
const size_t resp_cmds_streams_count = sizeof(resp_cmds_streams) / sizeof(resp_cmds_streams[0]);
