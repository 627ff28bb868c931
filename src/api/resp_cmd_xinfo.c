/* resp_cmd_xinfo: XINFO STREAM [FULL [COUNT n]], GROUPS, CONSUMERS, HELP,
 * as Redis 7.0 answers them, read on the local store after the read
 * barrier like any read.
 *
 * What cairn does not hold it derives: radix-tree-keys and -nodes come
 * from the stream's node model (kv_stream_radix_shape, kv/stream.h), so
 * they match Redis for streams of small entries. */
#include <string.h>

#include "api/resp_internal.h"
#include "kv/stream.h"
#include "kv/stream_group.h"

/* XINFO GROUPS's and XINFO STREAM FULL's lag, null when unknown. */
static void xinfo__lag(resp_req *req, const kv_entry *e, const kv_sg *g)
{
    int64_t lag;
    if (kv_sg_lag(e, g, &lag))
        resp_write_integer(&req->reply, lag);
    else
        resp_write_null(&req->reply, req->proto);
}

static void xinfo__entries_read(resp_req *req, const kv_sg *g)
{
    if (g->entries_read >= 0)
        resp_write_integer(&req->reply, g->entries_read);
    else
        resp_write_null(&req->reply, req->proto);
}

static void xinfo__groups(resp_req *req, const kv_entry *e)
{
    const kv_sg_set *s = kv_sg_groups(e);
    uint32_t n = s ? s->n : 0;
    resp_write_array(&req->reply, n);
    for (uint32_t i = 0; i < n; i++) {
        const kv_sg *g = s->groups[i];
        resp_write_map(&req->reply, req->proto, 6);
        resp_write_bulk_str(&req->reply, "name");
        resp_write_bulk(&req->reply, g->name, g->name_len);
        resp_write_bulk_str(&req->reply, "consumers");
        resp_write_integer(&req->reply, g->nconsumers);
        resp_write_bulk_str(&req->reply, "pending");
        resp_write_integer(&req->reply, (long long)g->npel);
        resp_write_bulk_str(&req->reply, "last-delivered-id");
        resp_stream_write_id(&req->reply, g->last_id);
        resp_write_bulk_str(&req->reply, "entries-read");
        xinfo__entries_read(req, g);
        resp_write_bulk_str(&req->reply, "lag");
        xinfo__lag(req, e, g);
    }
}

static void xinfo__consumers(resp_req *req, const kv_entry *e)
{
    kv_sg *g = kv_sg_find(e, req->argv[3].ptr, req->argv[3].len);
    if (!g) {
        resp_req_errorf(req, "NOGROUP No such consumer group '%.*s' for key name '%.*s'",
                        (int)req->argv[3].len, req->argv[3].ptr, (int)req->argv[2].len,
                        req->argv[2].ptr);
        return;
    }
    int64_t now = replica_req_read_ms(&req->rreq);
    resp_write_array(&req->reply, g->nconsumers);
    for (uint32_t i = 0; i < g->nconsumers; i++) {
        const kv_sg_consumer *c = g->consumers[i];
        resp_write_map(&req->reply, req->proto, 3);
        resp_write_bulk_str(&req->reply, "name");
        resp_write_bulk(&req->reply, c->name, c->name_len);
        resp_write_bulk_str(&req->reply, "pending");
        resp_write_integer(&req->reply, (long long)c->pending);
        resp_write_bulk_str(&req->reply, "idle");
        resp_write_integer(&req->reply, now > c->seen_ms ? now - c->seen_ms : 0);
    }
}

/* The first (or last) entry, or a null when the stream is empty. */
static void xinfo__edge(resp_req *req, const kv_entry *e, bool last)
{
    uint64_t len = kv_stream_len(e);
    if (!len)
        resp_write_null(&req->reply, req->proto);
    else
        resp_stream_write_entry(&req->reply, kv_stream_at(e, last ? len - 1 : 0));
}

/* FULL's groups: each with its PEL and consumers, PELs cut at count (0:
 * whole). Redis counts what it wrote after writing it; so does this. */
static void xinfo__full_groups(resp_req *req, const kv_entry *e, uint64_t count)
{
    const kv_sg_set *s = kv_sg_groups(e);
    uint32_t n = s ? s->n : 0;
    buf *o = &req->reply;
    resp_write_array(o, n);
    for (uint32_t i = 0; i < n; i++) {
        const kv_sg *g = s->groups[i];
        resp_write_map(o, req->proto, 7);
        resp_write_bulk_str(o, "name");
        resp_write_bulk(o, g->name, g->name_len);
        resp_write_bulk_str(o, "last-delivered-id");
        resp_stream_write_id(o, g->last_id);
        resp_write_bulk_str(o, "entries-read");
        xinfo__entries_read(req, g);
        resp_write_bulk_str(o, "lag");
        xinfo__lag(req, e, g);
        resp_write_bulk_str(o, "pel-count");
        resp_write_integer(o, (long long)g->npel);
        resp_write_bulk_str(o, "pending");
        uint64_t np = count && count < g->npel ? count : g->npel;
        resp_write_array(o, np);
        for (uint64_t k = 0; k < np; k++) {
            const kv_sg_pending *p = &g->pel[k];
            resp_write_array(o, 4);
            resp_stream_write_id(o, p->id);
            resp_write_bulk(o, p->owner->name, p->owner->name_len);
            resp_write_integer(o, p->delivered_ms);
            resp_write_integer(o, (long long)p->deliveries);
        }
        resp_write_bulk_str(o, "consumers");
        resp_write_array(o, g->nconsumers);
        for (uint32_t c = 0; c < g->nconsumers; c++) {
            const kv_sg_consumer *cs = g->consumers[c];
            resp_write_map(o, req->proto, 4);
            resp_write_bulk_str(o, "name");
            resp_write_bulk(o, cs->name, cs->name_len);
            resp_write_bulk_str(o, "seen-time");
            resp_write_integer(o, cs->seen_ms);
            resp_write_bulk_str(o, "pel-count");
            resp_write_integer(o, (long long)cs->pending);
            resp_write_bulk_str(o, "pending");
            /* the consumer's own PEL, in ID order, as the group's */
            uint64_t mine = count && count < cs->pending ? count : cs->pending;
            resp_write_array(o, mine);
            for (uint64_t k = 0, w = 0; k < g->npel && w < mine; k++) {
                const kv_sg_pending *p = &g->pel[k];
                if (p->owner != cs) continue;
                resp_write_array(o, 3);
                resp_stream_write_id(o, p->id);
                resp_write_integer(o, p->delivered_ms);
                resp_write_integer(o, (long long)p->deliveries);
                w++;
            }
        }
    }
}

static void xinfo__stream(resp_req *req, const kv_entry *e)
{
    /* options after the key: none, FULL, or FULL COUNT n (Redis checks
     * them once it found the stream) */
    size_t optc = req->argc - 3;
    const resp_arg *opt = &req->argv[3];
    int64_t count = 10;
    bool full = optc > 0;
    if (full && ((optc != 1 && optc != 3) || !resp_format_arg_is(&opt[0], "full") ||
                 (optc == 3 && !resp_format_arg_is(&opt[1], "count")))) {
        resp_req_errorf(req,
                        "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try "
                        "XINFO HELP.",
                        (int)req->argv[1].len, req->argv[1].ptr);
        return;
    }
    if (optc == 3) {
        if (!resp_req_int_arg(req, &opt[2], &count)) return;
        if (count < 0) count = 0;
    }
    uint64_t keys, nodes;
    kv_stream_radix_shape(e, &keys, &nodes);
    uint64_t len = kv_stream_len(e);
    buf *o = &req->reply;
    resp_write_map(o, req->proto, full ? 9 : 10);
    resp_write_bulk_str(o, "length");
    resp_write_integer(o, (long long)len);
    resp_write_bulk_str(o, "radix-tree-keys");
    resp_write_integer(o, (long long)keys);
    resp_write_bulk_str(o, "radix-tree-nodes");
    resp_write_integer(o, (long long)nodes);
    resp_write_bulk_str(o, "last-generated-id");
    resp_stream_write_id(o, kv_stream_last_id(e));
    resp_write_bulk_str(o, "max-deleted-entry-id");
    resp_stream_write_id(o, kv_stream_max_deleted(e));
    resp_write_bulk_str(o, "entries-added");
    resp_write_integer(o, (long long)kv_stream_entries_added(e));
    resp_write_bulk_str(o, "recorded-first-entry-id");
    resp_stream_write_id(o, len ? kv_stream_entry_id(kv_stream_at(e, 0)) : (kv_stream_id){0, 0});
    if (!full) {
        const kv_sg_set *s = kv_sg_groups(e);
        resp_write_bulk_str(o, "groups");
        resp_write_integer(o, s ? s->n : 0);
        resp_write_bulk_str(o, "first-entry");
        xinfo__edge(req, e, false);
        resp_write_bulk_str(o, "last-entry");
        xinfo__edge(req, e, true);
        return;
    }
    resp_write_bulk_str(o, "entries");
    uint64_t ne = count && (uint64_t)count < len ? (uint64_t)count : len;
    resp_write_array(o, ne);
    for (uint64_t i = 0; i < ne; i++) resp_stream_write_entry(o, kv_stream_at(e, i));
    resp_write_bulk_str(o, "groups");
    xinfo__full_groups(req, e, (uint64_t)count);
}

static void xinfo__ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = resp_req_lookup_typed(req, &req->argv[2], KV_TYPE_STREAM, &wrong);
    if (wrong) return;
    if (!e) {
        resp_req_error(req, "ERR no such key");
        return;
    }
    switch (req->n[0]) {
    case 1:
        xinfo__groups(req, e);
        break;
    case 2:
        xinfo__consumers(req, e);
        break;
    default:
        xinfo__stream(req, e);
        break;
    }
}

static void xinfo__cmd(resp_req *req)
{
    const resp_arg *sub = &req->argv[1];
    static const struct {
        const char *name;
        int arity; /* Redis' for the subcommand: negative is a minimum */
    } subs[] = {{"stream", -3}, {"groups", 3}, {"consumers", 4}};
    if (resp_format_arg_is(sub, "help") && req->argc == 2) {
        static const char *const lines[] = {
            "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
            "HELP",
            "    Prints this help.",
            NULL};
        resp_req_help(req, lines);
        return;
    }
    for (size_t k = 0; k < sizeof(subs) / sizeof(subs[0]); k++) {
        if (!resp_format_arg_is(sub, subs[k].name)) continue;
        int ar = subs[k].arity;
        if (ar > 0 ? req->argc != (size_t)ar : req->argc < (size_t)-ar) {
            resp_req_error_sub_arity(req);
            return;
        }
        req->n[0] = (int64_t)k;
        resp_req_read(req, xinfo__ready);
        return;
    }
    resp_req_errorf(req, "ERR unknown subcommand '%.*s'. Try XINFO HELP.",
                    (int)(sub->len > 128 ? 128 : sub->len), sub->ptr);
}

const resp_cmd resp_cmds_xinfo[] = {
    {"xinfo", xinfo__cmd, -2, RESP_CMD_READONLY, 0, 0, 0, "stream", "5.0.0", "O(N)",
     "A stream, its consumer groups and their consumers: STREAM [FULL], GROUPS, CONSUMERS, HELP",
     "subcommand [argument ...]"},
};
const size_t resp_cmds_xinfo_count = sizeof(resp_cmds_xinfo) / sizeof(resp_cmds_xinfo[0]);
