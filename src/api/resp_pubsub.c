/* resp_pubsub: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH,
 * their shard-channel forms SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH, and PUBSUB
 * CHANNELS/NUMSUB/NUMPAT/SHARDCHANNELS/SHARDNUMSUB/HELP.
 *
 * A message travels through the Raft log: PUBLISH proposes a KV_OP_PUBLISH
 * entry (forwarded to the leader from a follower, like any write), and
 * every node hands it to its own subscribers when it applies the entry
 * (kv_store's on_publish). So a PUBLISH on any node reaches subscribers on
 * every node, in one order everywhere, and is answered once committed;
 * its reply counts the receivers on the node that applied it for the
 * client (the leader, or this node with --persistence none), as Redis
 * Cluster counts the node's. Delivery is at most once, as in Redis: a node
 * that replays or catches up on entries older than its own start (a
 * restart) delivers none of them. docs/resp.md, "Pub/sub".
 *
 * Subscriptions are this node's: a table of channels, each with its
 * subscribed connections, and a list of patterns (matched with Redis'
 * glob, src/util/glob.c, against every message's channel). A subscriber
 * that does not read is bounded by --max-pending-output: past it the
 * connection is closed and counted, never buffered without bound. */
#include <stdlib.h>
#include <string.h>

#include "api/resp_internal.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/glob.h"
#include "util/hash.h"

typedef struct ps_channel ps_channel;
struct ps_channel {
    char *name;
    size_t len;
    uint64_t hash;
    resp_conn **subs;
    size_t n, cap;
    ps_channel *next; /* bucket chain */
};

/* A namespace of channels: SUBSCRIBE's, or SSUBSCRIBE's shard channels
 * (Redis keeps them apart: a PUBLISH never reaches a shard subscriber). */
typedef struct ps_table {
    ps_channel **buckets;
    size_t mask; /* buckets - 1 */
    size_t n;
} ps_table;

typedef struct ps_pattern {
    char *pat;
    size_t len;
    resp_conn *rc;
} ps_pattern;

struct resp_pubsub {
    uv_timer_t flush; /* 0 ms: writes out what deliveries queued */
    bool flush_armed, closing;
    resp_conn **dirty; /* connections with messages not written yet (held) */
    size_t ndirty, capdirty;
    ps_table chans, shard;
    ps_pattern *pats;
    size_t npats, cappats;
    int64_t started_wall_ms;
    uint64_t seed;
    metrics_counter *m_delivered;
};

/* A connection's channels of one namespace, in subscription order. */
typedef struct ps_list {
    ps_channel **v;
    size_t n, cap;
} ps_list;

/* one connection's subscriptions */
struct resp_conn_subs {
    ps_list chans, shard;
    size_t npats;
};

/* ---- the channel tables --------------------------------------------------------------- */

static void ps__table_init(ps_table *t)
{
    t->mask = 15;
    t->buckets = xcalloc(t->mask + 1, sizeof(*t->buckets));
    t->n = 0;
}

static void ps__table_close(ps_table *t)
{
    for (size_t b = 0; b <= t->mask; b++) {
        ps_channel *c = t->buckets[b];
        while (c) {
            ps_channel *next = c->next;
            free(c->subs);
            free(c->name);
            free(c);
            c = next;
        }
    }
    free(t->buckets);
}

static ps_channel *ps__find(const resp_pubsub *ps, const ps_table *t, const char *name, size_t len)
{
    uint64_t h = hash_bytes(name, len, ps->seed);
    for (ps_channel *c = t->buckets[h & t->mask]; c; c = c->next)
        if (c->hash == h && c->len == len && memcmp(c->name, name, len) == 0) return c;
    return NULL;
}

static void ps__grow(ps_table *t)
{
    size_t size = (t->mask + 1) * 2;
    ps_channel **b = xcalloc(size, sizeof(*b));
    for (size_t i = 0; i <= t->mask; i++) {
        ps_channel *c = t->buckets[i];
        while (c) {
            ps_channel *next = c->next;
            c->next = b[c->hash & (size - 1)];
            b[c->hash & (size - 1)] = c;
            c = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->mask = size - 1;
}

static ps_channel *ps__get(resp_pubsub *ps, ps_table *t, const char *name, size_t len)
{
    ps_channel *c = ps__find(ps, t, name, len);
    if (c) return c;
    if (t->n + 1 > t->mask + 1) ps__grow(t);
    c = xcalloc(1, sizeof(*c));
    c->name = xmalloc(len ? len : 1);
    memcpy(c->name, name, len);
    c->len = len;
    c->hash = hash_bytes(name, len, ps->seed);
    c->next = t->buckets[c->hash & t->mask];
    t->buckets[c->hash & t->mask] = c;
    t->n++;
    return c;
}

static void ps__drop_if_empty(ps_table *t, ps_channel *c)
{
    if (c->n) return;
    ps_channel **at = &t->buckets[c->hash & t->mask];
    while (*at != c) at = &(*at)->next;
    *at = c->next;
    t->n--;
    free(c->subs);
    free(c->name);
    free(c);
}

/* ---- a connection's subscriptions -------------------------------------------------------- */

static struct resp_conn_subs *ps__subs(resp_conn *rc)
{
    if (!rc->subs) rc->subs = xcalloc(1, sizeof(*rc->subs));
    return rc->subs;
}

size_t resp_pubsub_count(const resp_conn *rc)
{
    return rc->subs ? rc->subs->chans.n + rc->subs->shard.n + rc->subs->npats : 0;
}

/* The namespace a command works on, and the connection's list of it. */
static ps_table *ps__table(resp_pubsub *ps, bool shard)
{
    return shard ? &ps->shard : &ps->chans;
}

static ps_list *ps__list(resp_conn *rc, bool shard)
{
    struct resp_conn_subs *s = ps__subs(rc);
    return shard ? &s->shard : &s->chans;
}

static bool ps__subscribe(resp_pubsub *ps, resp_conn *rc, bool shard, const char *name, size_t len)
{
    ps_channel *c = ps__get(ps, ps__table(ps, shard), name, len);
    for (size_t i = 0; i < c->n; i++)
        if (c->subs[i] == rc) return false;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 4;
        c->subs = xrealloc(c->subs, c->cap * sizeof(*c->subs));
    }
    c->subs[c->n++] = rc;
    ps_list *l = ps__list(rc, shard);
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 4;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = c;
    return true;
}

/* Remove rc from its list's channel i (and the channel from the list). */
static void ps__unsubscribe_at(resp_pubsub *ps, resp_conn *rc, bool shard, size_t i)
{
    ps_list *l = ps__list(rc, shard);
    ps_channel *c = l->v[i];
    for (size_t k = 0; k < c->n; k++) {
        if (c->subs[k] == rc) {
            c->subs[k] = c->subs[--c->n];
            break;
        }
    }
    /* keep the connection's order: Redis answers UNSUBSCRIBE without
     * arguments in the order of its own dict; ours is subscription order */
    memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
    l->n--;
    ps__drop_if_empty(ps__table(ps, shard), c);
}

static bool ps__psubscribe(resp_pubsub *ps, resp_conn *rc, const char *pat, size_t len)
{
    for (size_t i = 0; i < ps->npats; i++)
        if (ps->pats[i].rc == rc && ps->pats[i].len == len &&
            memcmp(ps->pats[i].pat, pat, len) == 0)
            return false;
    if (ps->npats == ps->cappats) {
        ps->cappats = ps->cappats ? 2 * ps->cappats : 8;
        ps->pats = xrealloc(ps->pats, ps->cappats * sizeof(*ps->pats));
    }
    ps_pattern *p = &ps->pats[ps->npats++];
    p->pat = xmalloc(len ? len : 1);
    memcpy(p->pat, pat, len);
    p->len = len;
    p->rc = rc;
    ps__subs(rc)->npats++;
    return true;
}

static void ps__punsubscribe_at(resp_pubsub *ps, size_t i)
{
    ps_pattern *p = &ps->pats[i];
    p->rc->subs->npats--;
    free(p->pat);
    /* patterns keep their order: a message matching several reaches a
     * client in the order it subscribed them */
    memmove(p, p + 1, (ps->npats - i - 1) * sizeof(*p));
    ps->npats--;
}

/* A (un)subscription's confirmation. Its count, as Redis': the shard
 * channels for SSUBSCRIBE/SUNSUBSCRIBE, else the channels and patterns. */
static void ps__confirm(resp_req *req, bool shard, const char *kind, const char *name, size_t len)
{
    const struct resp_conn_subs *s = req->rc->subs;
    size_t count = !s ? 0 : shard ? s->shard.n : s->chans.n + s->npats;
    resp_write_push(&req->reply, req->proto, 3);
    resp_write_bulk_str(&req->reply, kind);
    if (name)
        resp_write_bulk(&req->reply, name, len);
    else
        resp_write_null(&req->reply, req->proto);
    resp_write_integer(&req->reply, (long long)count);
}

void resp_pubsub_conn_free(resp_conn *rc)
{
    resp_pubsub *ps = rc->ra->pubsub;
    if (!rc->subs) return;
    while (rc->subs->chans.n) ps__unsubscribe_at(ps, rc, false, rc->subs->chans.n - 1);
    while (rc->subs->shard.n) ps__unsubscribe_at(ps, rc, true, rc->subs->shard.n - 1);
    for (size_t i = ps->npats; i-- > 0;)
        if (ps->pats[i].rc == rc) ps__punsubscribe_at(ps, i);
    free(rc->subs->chans.v);
    free(rc->subs->shard.v);
    free(rc->subs);
    rc->subs = NULL;
}

/* ---- delivery ------------------------------------------------------------------------------ */

/* Messages are appended to their connections' output and written once
 * per loop iteration, as Redis writes before it sleeps: a publisher's
 * pipeline of messages to a subscriber costs one write, not one each. */
static void ps__flush_cb(uv_timer_t *t)
{
    resp_pubsub *ps = t->data;
    ps->flush_armed = false;
    size_t n = ps->ndirty;
    resp_conn **list = ps->dirty;
    ps->dirty = NULL;
    ps->ndirty = ps->capdirty = 0;
    for (size_t i = 0; i < n; i++) {
        resp_conn *rc = list[i];
        rc->push_queued = false;
        if (!rc->dead && !rc->c->closing) net_conn_flush(rc->c);
        resp_conn_release(rc);
    }
    free(list);
}

static void ps__mark_dirty(resp_pubsub *ps, resp_conn *rc)
{
    if (rc->push_queued) return;
    rc->push_queued = true;
    resp_conn_hold(rc); /* until the flush: a closed one is freed then */
    if (ps->ndirty == ps->capdirty) {
        ps->capdirty = ps->capdirty ? 2 * ps->capdirty : 16;
        ps->dirty = xrealloc(ps->dirty, ps->capdirty * sizeof(*ps->dirty));
    }
    ps->dirty[ps->ndirty++] = rc;
    if (!ps->flush_armed && !ps->closing) {
        ps->flush_armed = true;
        uv_timer_start(&ps->flush, ps__flush_cb, 0, 0);
    }
}

static void ps__send(resp_pubsub *ps, resp_conn *rc, const char *kind, const char *pat, size_t plen,
                     const kv_slice *ch, const kv_slice *msg)
{
    if (rc->dead || rc->c->closing) return;
    buf out;
    buf_init(&out);
    resp_write_push(&out, rc->proto, pat ? 4 : 3);
    resp_write_bulk_str(&out, pat ? "pmessage" : kind);
    if (pat) resp_write_bulk(&out, pat, plen);
    resp_write_bulk(&out, ch->ptr, ch->len);
    resp_write_bulk(&out, msg->ptr, msg->len);
    /* out of band: between whole replies (replies are written whole);
     * over --max-pending-output the connection is closed and counted */
    net_conn_write(rc->c, out.data, out.len);
    if (!rc->c->closing) ps__mark_dirty(ps, rc);
    buf_close(&out);
    metrics_counter_add(ps->m_delivered, 1);
}

typedef struct ps_target {
    resp_conn *rc;
    char *pat; /* a copy: the list may change while sending */
    size_t plen;
} ps_target;

static int64_t ps__deliver(resp_api *ra, bool shard, kv_slice channel, kv_slice message);

static int64_t ps__on_publish(void *ctx, const kv_command *cmd)
{
    resp_api *ra = ctx;
    /* at most once: entries older than this process (a restart's replay,
     * a catch-up after one) were for the subscribers of that time */
    if (cmd->now_ms && cmd->now_ms < ra->pubsub->started_wall_ms - 1000) return 0;
    return ps__deliver(ra, cmd->a == KV_PUBLISH_SHARD, cmd->args[0], cmd->args[1]);
}

int64_t resp_pubsub_local(resp_api *ra, kv_slice channel, kv_slice message)
{
    return ps__deliver(ra, false, channel, message);
}

static int64_t ps__deliver(resp_api *ra, bool shard, kv_slice channel, kv_slice message)
{
    resp_pubsub *ps = ra->pubsub;
    const kv_slice *ch = &channel, *msg = &message;
    ps_channel *c = ps__find(ps, ps__table(ps, shard), ch->ptr, ch->len);
    size_t npats = shard ? 0 : ps->npats; /* patterns never match shard channels */
    size_t n = 0, cap = (c ? c->n : 0) + npats;
    if (cap == 0) return 0;
    ps_target *t = xmalloc(cap * sizeof(*t));
    for (size_t i = 0; c && i < c->n; i++) t[n++] = (ps_target){c->subs[i], NULL, 0};
    for (size_t i = 0; i < npats; i++) {
        ps_pattern *p = &ps->pats[i];
        if (!glob_match(p->pat, p->len, ch->ptr, ch->len, false)) continue;
        char *copy = xmalloc(p->len ? p->len : 1);
        memcpy(copy, p->pat, p->len);
        t[n++] = (ps_target){p->rc, copy, p->len};
    }
    /* A send can close its connection (a subscriber over its output
     * limit), which unsubscribes it at once: every target is held until
     * all are sent, so none is freed under the loop. */
    for (size_t i = 0; i < n; i++) resp_conn_hold(t[i].rc);
    const char *kind = shard ? "smessage" : "message";
    for (size_t i = 0; i < n; i++) ps__send(ps, t[i].rc, kind, t[i].pat, t[i].plen, ch, msg);
    for (size_t i = 0; i < n; i++) {
        free(t[i].pat);
        resp_conn_release(t[i].rc);
    }
    free(t);
    return (int64_t)n;
}

/* ---- the commands ---------------------------------------------------------------------------- */

static void ps__subscribe_in(resp_req *req, bool shard)
{
    resp_pubsub *ps = req->rc->ra->pubsub;
    if (shard && req->tx_exec) {
        /* Redis 7.0 runs SUBSCRIBE and PSUBSCRIBE inside EXEC, not this one */
        resp_req_error(req, "ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client");
        return;
    }
    for (size_t i = 1; i < req->argc; i++) {
        ps__subscribe(ps, req->rc, shard, req->argv[i].ptr, req->argv[i].len);
        ps__confirm(req, shard, shard ? "ssubscribe" : "subscribe", req->argv[i].ptr,
                    req->argv[i].len);
    }
}

static void ps__unsubscribe_in(resp_req *req, bool shard)
{
    resp_pubsub *ps = req->rc->ra->pubsub;
    resp_conn *rc = req->rc;
    const char *kind = shard ? "sunsubscribe" : "unsubscribe";
    ps_list *l = ps__list(rc, shard);
    if (req->argc == 1) {
        if (l->n == 0) {
            ps__confirm(req, shard, kind, NULL, 0);
            return;
        }
        while (l->n) {
            ps_channel *c = l->v[0];
            buf name;
            buf_init(&name);
            buf_append(&name, c->name, c->len);
            ps__unsubscribe_at(ps, rc, shard, 0);
            ps__confirm(req, shard, kind, name.data, name.len);
            buf_close(&name);
        }
        return;
    }
    for (size_t a = 1; a < req->argc; a++) {
        const resp_arg *ch = &req->argv[a];
        for (size_t i = 0; i < l->n; i++) {
            ps_channel *c = l->v[i];
            if (c->len == ch->len && memcmp(c->name, ch->ptr, ch->len) == 0) {
                ps__unsubscribe_at(ps, rc, shard, i);
                break;
            }
        }
        ps__confirm(req, shard, kind, ch->ptr, ch->len);
    }
}

static void ps__subscribe_cmd(resp_req *req)
{
    ps__subscribe_in(req, false);
}

static void ps__unsubscribe_cmd(resp_req *req)
{
    ps__unsubscribe_in(req, false);
}

static void ps__ssubscribe_cmd(resp_req *req)
{
    ps__subscribe_in(req, true);
}

static void ps__sunsubscribe_cmd(resp_req *req)
{
    ps__unsubscribe_in(req, true);
}

static void ps__psubscribe_cmd(resp_req *req)
{
    resp_pubsub *ps = req->rc->ra->pubsub;
    for (size_t i = 1; i < req->argc; i++) {
        ps__psubscribe(ps, req->rc, req->argv[i].ptr, req->argv[i].len);
        ps__confirm(req, false, "psubscribe", req->argv[i].ptr, req->argv[i].len);
    }
}

static void ps__punsubscribe_cmd(resp_req *req)
{
    resp_pubsub *ps = req->rc->ra->pubsub;
    resp_conn *rc = req->rc;
    if (req->argc == 1) {
        if (!rc->subs || rc->subs->npats == 0) {
            ps__confirm(req, false, "punsubscribe", NULL, 0);
            return;
        }
        for (size_t i = 0; i < ps->npats;) {
            if (ps->pats[i].rc != rc) {
                i++;
                continue;
            }
            buf name;
            buf_init(&name);
            buf_append(&name, ps->pats[i].pat, ps->pats[i].len);
            ps__punsubscribe_at(ps, i);
            ps__confirm(req, false, "punsubscribe", name.data, name.len);
            buf_close(&name);
        }
        return;
    }
    for (size_t a = 1; a < req->argc; a++) {
        const resp_arg *p = &req->argv[a];
        for (size_t i = 0; i < ps->npats; i++) {
            if (ps->pats[i].rc == rc && ps->pats[i].len == p->len &&
                memcmp(ps->pats[i].pat, p->ptr, p->len) == 0) {
                ps__punsubscribe_at(ps, i);
                break;
            }
        }
        ps__confirm(req, false, "punsubscribe", p->ptr, p->len);
    }
}

static void ps__publish(resp_req *req)
{
    if (!resp_req_check_value(req, &req->argv[1]) || !resp_req_check_value(req, &req->argv[2]))
        return;
    resp_req_propose_args(req, 1, 2, KV_OP_PUBLISH, 0, 0, 0, resp_reply_integer);
}

/* SPUBLISH: to a shard channel. cairn is one shard (one Raft group), so
 * every node's shard subscribers get it, as PUBLISH's subscribers do. */
static void ps__spublish(resp_req *req)
{
    if (!resp_req_check_value(req, &req->argv[1]) || !resp_req_check_value(req, &req->argv[2]))
        return;
    resp_req_propose_args(req, 1, 2, KV_OP_PUBLISH, 0, KV_PUBLISH_SHARD, 0, resp_reply_integer);
}

static int ps__cmp_channel(const void *a, const void *b)
{
    const ps_channel *x = *(ps_channel *const *)a, *y = *(ps_channel *const *)b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->name, y->name, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static void ps__pubsub(resp_req *req)
{
    resp_pubsub *ps = req->rc->ra->pubsub;
    const resp_arg *sub = &req->argv[1];
    bool shard = resp_format_arg_is(sub, "shardchannels") || resp_format_arg_is(sub, "shardnumsub");
    const ps_table *t = ps__table(ps, shard);
    if ((resp_format_arg_is(sub, "channels") || resp_format_arg_is(sub, "shardchannels")) &&
        req->argc <= 3) {
        const resp_arg *pat = req->argc == 3 ? &req->argv[2] : NULL;
        ps_channel **found = xmalloc((t->n ? t->n : 1) * sizeof(*found));
        size_t n = 0;
        for (size_t b = 0; b <= t->mask; b++)
            for (ps_channel *c = t->buckets[b]; c; c = c->next)
                if (!pat || glob_match(pat->ptr, pat->len, c->name, c->len, false)) found[n++] = c;
        qsort(found, n, sizeof(*found), ps__cmp_channel); /* Redis: dict order; ours sorted */
        resp_write_array(&req->reply, n);
        for (size_t i = 0; i < n; i++) resp_write_bulk(&req->reply, found[i]->name, found[i]->len);
        free(found);
        return;
    }
    if (resp_format_arg_is(sub, "numsub") || resp_format_arg_is(sub, "shardnumsub")) {
        resp_write_map(&req->reply, req->proto, req->argc - 2);
        for (size_t i = 2; i < req->argc; i++) {
            const resp_arg *ch = &req->argv[i];
            ps_channel *c = ps__find(ps, t, ch->ptr, ch->len);
            resp_write_bulk(&req->reply, ch->ptr, ch->len);
            resp_write_integer(&req->reply, c ? (long long)c->n : 0);
        }
        return;
    }
    if (resp_format_arg_is(sub, "numpat") && req->argc == 2) {
        /* distinct patterns, as Redis counts them */
        size_t distinct = 0;
        for (size_t i = 0; i < ps->npats; i++) {
            bool seen = false;
            for (size_t k = 0; k < i && !seen; k++)
                seen = ps->pats[k].len == ps->pats[i].len &&
                       memcmp(ps->pats[k].pat, ps->pats[i].pat, ps->pats[i].len) == 0;
            distinct += !seen;
        }
        resp_write_integer(&req->reply, (long long)distinct);
        return;
    }
    if (resp_format_arg_is(sub, "help") && req->argc == 2) {
        static const char *const lines[] = {
            "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            ("    Return the currently active shard level channels matching a <pattern> (default: "
             "'*')."),
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
            "HELP",
            "    Prints this help."};
        resp_write_array(&req->reply, sizeof(lines) / sizeof(lines[0]));
        for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
            resp_write_simple(&req->reply, lines[i]);
        return;
    }
    if (resp_format_arg_is(sub, "channels") || resp_format_arg_is(sub, "shardchannels")) {
        /* Redis 7.0's words for these */
        resp_req_errorf(req,
                        "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try "
                        "PUBSUB HELP.",
                        (int)sub->len, sub->ptr);
        return;
    }
    if (resp_format_arg_is(sub, "numpat") || resp_format_arg_is(sub, "help")) {
        resp_req_errorf(req, "ERR wrong number of arguments for 'pubsub|%s' command",
                        resp_format_arg_is(sub, "help") ? "help" : "numpat");
        return;
    }
    resp_req_errorf(req, "ERR unknown subcommand '%.*s'. Try PUBSUB HELP.", (int)sub->len,
                    sub->ptr);
}

/* ---- setup -------------------------------------------------------------------------------- */

void resp_pubsub_init(resp_api *ra, uv_loop_t *loop)
{
    resp_pubsub *ps = xcalloc(1, sizeof(*ps));
    uv_timer_init(loop, &ps->flush);
    ps->flush.data = ps;
    ps__table_init(&ps->chans);
    ps__table_init(&ps->shard);
    ps->started_wall_ms = clock_wall_ms();
    ps->seed = (uint64_t)clock_mono_ns();
    ps->m_delivered =
        metrics_counter_get("cairn_resp_pubsub_messages_delivered_total",
                            "Pub/sub messages written to subscribers of this node", "");
    ra->pubsub = ps;
    kv_store *s = ra->a->store;
    s->on_publish = ps__on_publish;
    s->on_publish_ctx = ra;
}

void resp_pubsub_close(resp_api *ra)
{
    resp_pubsub *ps = ra->pubsub;
    if (!ps) return;
    ps->closing = true;
    uv_timer_stop(&ps->flush);
    /* the timer handle goes with the loop's final walk (cairnd closes
     * every handle); connections are gone, nothing is held any more */
    free(ps->dirty);
    kv_store *s = ra->a->store;
    if (s->on_publish == ps__on_publish && s->on_publish_ctx == ra) {
        s->on_publish = NULL;
        s->on_publish_ctx = NULL;
    }
    /* connections are gone by now (each unsubscribed as it closed) */
    ps__table_close(&ps->chans);
    ps__table_close(&ps->shard);
    for (size_t i = 0; i < ps->npats; i++) free(ps->pats[i].pat);
    free(ps->pats);
    free(ps);
    ra->pubsub = NULL;
}

#define F RESP_CMD_FAST
#define N RESP_CMD_NOSCRIPT
#define L RESP_CMD_LOADING
#define S RESP_CMD_STALE
#define P RESP_CMD_PUBSUB_CONTEXT
#define M RESP_CMD_AT_EXEC

const resp_cmd resp_cmds_pubsub[] = {
    {"subscribe", ps__subscribe_cmd, -2, N | L | S | P | M, 0, 0, 0, "pubsub", "2.0.0",
     "O(N) where N is the number of channels to subscribe to",
     "Listen for messages published to the given channels", "channel [channel ...]"},
    {"unsubscribe", ps__unsubscribe_cmd, -1, N | L | S | P | M, 0, 0, 0, "pubsub", "2.0.0",
     "O(N) where N is the number of clients already subscribed to a channel",
     "Stop listening for messages posted to the given channels", "[channel [channel ...]]"},
    {"psubscribe", ps__psubscribe_cmd, -2, N | L | S | P | M, 0, 0, 0, "pubsub", "2.0.0",
     "O(N) where N is the number of patterns the client is already subscribed to",
     "Listen for messages published to channels matching the given patterns",
     "pattern [pattern ...]"},
    {"punsubscribe", ps__punsubscribe_cmd, -1, N | L | S | P | M, 0, 0, 0, "pubsub", "2.0.0",
     "O(N+M) where N is the number of patterns the client is already subscribed and M is the "
     "number of total patterns subscribed in the system (by any client)",
     "Stop listening for messages posted to channels matching the given patterns",
     "[pattern [pattern ...]]"},
    {"publish", ps__publish, 3, RESP_CMD_WRITE | F | L | S, 0, 0, 0, "pubsub", "2.0.0",
     "O(N+M) where N is the number of clients subscribed to the receiving channel and M is the "
     "total number of subscribed patterns (by any client)",
     "Post a message to a channel (through the log: every node's subscribers get it)",
     "channel message"},
    {"ssubscribe", ps__ssubscribe_cmd, -2, N | L | S | P | M, 0, 0, 0, "pubsub", "7.0.0",
     "O(N) where N is the number of shard channels to subscribe to",
     "Listen for messages published to the given shard channels",
     "shardchannel [shardchannel ...]"},
    {"sunsubscribe", ps__sunsubscribe_cmd, -1, N | L | S | P | M, 0, 0, 0, "pubsub", "7.0.0",
     "O(N) where N is the number of clients already subscribed to a shard channel",
     "Stop listening for messages posted to the given shard channels",
     "[shardchannel [shardchannel ...]]"},
    {"spublish", ps__spublish, 3, RESP_CMD_WRITE | F | L, 0, 0, 0, "pubsub", "7.0.0",
     "O(N) where N is the number of clients subscribed to the receiving shard channel.",
     "Post a message to a shard channel (one shard: every node's shard subscribers get it)",
     "shardchannel message"},
    {"pubsub", ps__pubsub, -2, L | S, 0, 0, 0, "pubsub", "2.8.0", "O(N)",
     "This node's channels and subscriptions: CHANNELS, NUMSUB, NUMPAT, SHARDCHANNELS, "
     "SHARDNUMSUB, HELP",
     "subcommand [argument ...]"},
};
const size_t resp_cmds_pubsub_count = sizeof(resp_cmds_pubsub) / sizeof(resp_cmds_pubsub[0]);
