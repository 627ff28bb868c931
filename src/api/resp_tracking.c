/* resp_tracking: CLIENT TRACKING, Redis' server-assisted client-side
 * caching, as Redis 7.0 does it (CLIENT TRACKING ON|OFF [REDIRECT id]
 * [BCAST] [PREFIX p ...] [OPTIN] [OPTOUT] [NOLOOP], CLIENT CACHING,
 * CLIENT GETREDIR, CLIENT TRACKINGINFO).
 *
 * Tracking is this node's, as a Redis replica's is its own: a client
 * reads through a node, the node remembers the keys, and when it applies
 * a change to one of them (every node applies every entry, in log order)
 * it tells the client once and forgets the key, so a client may cache
 * what it read until told. In the default mode the node remembers the keys
 * read-only commands looked up for the client (a table key -> connection
 * ids, bounded by tracking-table-max-keys: past it keys are forgotten with
 * an invalidation, as Redis does); in BCAST mode it remembers nothing and
 * tells every change to a key under one of the client's prefixes, batched
 * per prefix. A flush, or a snapshot installed in place of the state,
 * invalidates everything (a null).
 *
 * Messages go to the client itself in RESP3 (push `invalidate`), or to
 * the REDIRECT connection: a RESP3 one as a push, a RESP2 one as a message
 * of the `__redis__:invalidate` channel when it is subscribed to anything.
 * They are written once per loop iteration; a change the client made
 * itself is told right after that command's reply, as Redis orders them,
 * and not at all with NOLOOP (replica_applying names the request). */
#include <stdlib.h>
#include <string.h>

#include "api/resp_internal.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/hash.h"

#define TRACKING_DEFAULT_MAX_KEYS 1000000 /* Redis' tracking-table-max-keys */
/* A follower applies a write it forwarded after the leader answered it:
 * the client's last writes are known by their log identity this long */
#define TRACKING_OWN_SEQS 64

/* A key some connections read (the default mode's table). */
typedef struct trk_key trk_key;
struct trk_key {
    trk_key *next; /* bucket chain */
    uint64_t hash;
    uint64_t *ids; /* connection ids */
    uint32_t n, cap;
    size_t len;
    char key[];
};

/* A BCAST prefix of one connection and the changed keys under it not told yet. */
typedef struct trk_prefix {
    char *p;
    size_t len;
    buf keys; /* u32 len | bytes, per key */
    uint32_t nkeys;
} trk_prefix;

struct resp_tracking_conn {
    bool on, bcast, optin, optout, noloop;
    uint64_t redirect; /* a connection id; 0: the client itself */
    bool caching;      /* CLIENT CACHING yes|no for the next command */
    bool broken;       /* a message found the REDIRECT connection gone */
    trk_prefix *pfx;   /* sorted, none a prefix of another */
    size_t npfx;
    buf out; /* default mode messages to send: u32 count | keys; ~0: flush */
    uint64_t sent[TRACKING_OWN_SEQS]; /* seqs of its last writes proposed here (NOLOOP) */
    unsigned nsent;
    bool pending; /* in the node's pending list (the connection held) */
    bool held;    /* what waits goes out after a reply of its own */
};

struct resp_tracking {
    trk_key **buckets;
    size_t mask, nkeys;
    uint64_t seed;
    uint64_t max_keys;
    size_t evict_at;   /* the bucket eviction scans from next */
    resp_conn **bcast; /* connections in BCAST mode */
    size_t nbcast, capbcast;
    resp_conn **pend; /* connections with messages to send (held) */
    size_t npend, cappend;
    uv_timer_t flush;
    bool armed, closing;
    metrics_counter *m_sent;
};

#define FLUSH_ALL UINT32_MAX

static void trk__put32(buf *b, uint32_t v)
{
    buf_append(b, &v, sizeof(v));
}

static uint32_t trk__get32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* ---- the connection's state ---------------------------------------------------------- */

static struct resp_tracking_conn *trk__of(resp_conn *rc)
{
    if (!rc->tracking) {
        rc->tracking = xcalloc(1, sizeof(*rc->tracking));
        buf_init(&rc->tracking->out);
    }
    return rc->tracking;
}

static bool trk__on(const resp_conn *rc)
{
    return rc->tracking && rc->tracking->on;
}

static void trk__list_add(resp_conn ***v, size_t *n, size_t *cap, resp_conn *rc)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 8;
        *v = xrealloc(*v, *cap * sizeof(**v));
    }
    (*v)[(*n)++] = rc;
}

static void trk__list_remove(resp_conn **v, size_t *n, resp_conn *rc)
{
    for (size_t i = 0; i < *n; i++)
        if (v[i] == rc) {
            memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(*v));
            (*n)--;
            return;
        }
}

/* ---- delivery ------------------------------------------------------------------------ */

static resp_conn *trk__conn_by_id(resp_api *ra, uint64_t id)
{
    for (resp_conn *c = ra->conns; c; c = c->next)
        if (c->c->id == id && !c->dead && !c->c->closing) return c;
    return NULL;
}

/* One invalidation message to rc's target: keys (count of them, each u32
 * len | bytes at p), or every key (count FLUSH_ALL). Redis' forms: a push
 * to a RESP3 target, a `__redis__:invalidate` message to a RESP2 target
 * that is subscribed to something; a RESP2 client without REDIRECT gets
 * nothing (RESP2 has no way to say it). A REDIRECT to a connection that is
 * gone: a RESP3 client is told `tracking-redir-broken`. */
static void trk__send(resp_api *ra, resp_conn *rc, uint32_t count, const char *p)
{
    struct resp_tracking_conn *t = rc->tracking;
    resp_conn *to = t->redirect ? trk__conn_by_id(ra, t->redirect) : rc;
    buf out;
    buf_init(&out);
    if (!to) {
        t->broken = true;
        if (rc->proto == 3 && !rc->dead && !rc->c->closing) {
            resp_write_push(&out, 3, 2);
            resp_write_bulk_str(&out, "tracking-redir-broken");
            resp_write_integer(&out, (long long)t->redirect);
            net_conn_write(rc->c, out.data, out.len);
        }
        buf_close(&out);
        return;
    }
    if (to->dead || to->c->closing) {
        buf_close(&out);
        return;
    }
    if (to->proto == 3) {
        resp_write_push(&out, 3, 2);
        resp_write_bulk_str(&out, "invalidate");
    } else if (t->redirect && resp_pubsub_count(to) > 0) {
        resp_write_array(&out, 3);
        resp_write_bulk_str(&out, "message");
        resp_write_bulk_str(&out, "__redis__:invalidate");
    } else {
        buf_close(&out);
        return;
    }
    if (count == FLUSH_ALL) {
        resp_write_null(&out, to->proto);
    } else {
        resp_write_array(&out, count);
        for (uint32_t i = 0; i < count; i++) {
            uint32_t len = trk__get32(p);
            resp_write_bulk(&out, p + 4, len);
            p += 4 + len;
        }
    }
    net_conn_write(to->c, out.data, out.len); /* bounded by --max-pending-output */
    if (to != rc && !to->c->closing) net_conn_flush(to->c);
    metrics_counter_add(ra->tracking->m_sent, 1);
    buf_close(&out);
}

/* Whether rc is still there to be told (a send may close it: its output
 * over --max-pending-output closes it at once, which frees t). */
static bool trk__alive(const resp_conn *rc, const struct resp_tracking_conn *t)
{
    return !rc->dead && !rc->c->closing && rc->tracking == t;
}

/* Send what waits for rc: its default-mode messages in order, then its
 * BCAST prefixes' keys, a message per prefix (in prefix order). What waits
 * is taken first, so that a send that closes rc frees nothing in use. */
static void trk__deliver(resp_api *ra, resp_conn *rc)
{
    struct resp_tracking_conn *t = rc->tracking;
    buf out = t->out;
    buf_init(&t->out);
    size_t np = t->npfx;
    buf *pk = xcalloc(np ? np : 1, sizeof(*pk));
    uint32_t *pn = xcalloc(np ? np : 1, sizeof(*pn));
    for (size_t i = 0; i < np; i++) {
        pk[i] = t->pfx[i].keys;
        buf_init(&t->pfx[i].keys);
        pn[i] = t->pfx[i].nkeys;
        t->pfx[i].nkeys = 0;
    }
    const char *p = out.data, *end = p ? p + out.len : p;
    while (p < end && trk__alive(rc, t)) {
        uint32_t count = trk__get32(p);
        p += 4;
        const char *keys = p;
        for (uint32_t i = 0; count != FLUSH_ALL && i < count; i++) p += 4 + trk__get32(p);
        trk__send(ra, rc, count, keys);
    }
    for (size_t i = 0; i < np && trk__alive(rc, t); i++)
        if (pn[i]) trk__send(ra, rc, pn[i], pk[i].data);
    for (size_t i = 0; i < np; i++) buf_close(&pk[i]);
    free(pk);
    free(pn);
    buf_close(&out);
}

static void trk__flush_cb(uv_timer_t *timer)
{
    resp_api *ra = timer->data;
    resp_tracking *tr = ra->tracking;
    tr->armed = false;
    size_t n = tr->npend;
    resp_conn **list = tr->pend;
    tr->pend = NULL;
    tr->npend = tr->cappend = 0;
    for (size_t i = 0; i < n; i++) {
        resp_conn *rc = list[i];
        struct resp_tracking_conn *t = rc->tracking;
        if (t) t->pending = false;
        /* one held for its own command's reply is told after it */
        if (t && !t->held && !rc->dead && !rc->c->closing) {
            trk__deliver(ra, rc);
            if (!rc->c->closing) net_conn_flush(rc->c);
        }
        resp_conn_release(rc);
    }
    free(list);
}

/* rc has something to send: at the next loop iteration (the connection
 * held until then), or when held for a change its own command made, right
 * after that command's reply (resp_tracking_after_reply). */
static void trk__pending(resp_api *ra, resp_conn *rc)
{
    resp_tracking *tr = ra->tracking;
    struct resp_tracking_conn *t = rc->tracking;
    if (t->held || tr->closing) return;
    if (!t->pending) {
        t->pending = true;
        resp_conn_hold(rc);
        trk__list_add(&tr->pend, &tr->npend, &tr->cappend, rc);
    }
    if (!tr->armed) {
        tr->armed = true;
        uv_timer_start(&tr->flush, trk__flush_cb, 0, 0);
    }
}

/* Whether the change being applied is rc's own write: its request is
 * the one the replica applies for (*own: it, while it waits for the
 * entry), or the entry carries the log identity of one of rc's last
 * writes forwarded from here (answered by the leader before this node
 * applied it). */
static bool trk__is_own(resp_api *ra, resp_conn *rc, const kv_change *c, resp_req **own)
{
    *own = NULL;
    replica_req *applying = replica_applying(ra->a->replica);
    for (resp_req *r = rc->head; applying && r; r = r->next)
        if (&r->rreq == applying) {
            *own = r;
            return true;
        }
    const struct resp_tracking_conn *t = rc->tracking;
    if (!c || !c->cmd || !c->cmd->origin || c->cmd->origin != replica_id(ra->a->replica))
        return false;
    unsigned n = t->nsent < TRACKING_OWN_SEQS ? t->nsent : TRACKING_OWN_SEQS;
    for (unsigned i = 0; i < n; i++)
        if (t->sent[i] == c->cmd->seq) return true;
    return false;
}

/* A change that concerns rc (tracking): false when NOLOOP says not to
 * tell it. Its own change, while its command waits, is held for that
 * command's reply. */
static bool trk__may_tell(resp_api *ra, resp_conn *rc, const kv_change *c)
{
    resp_req *own;
    if (!trk__is_own(ra, rc, c, &own)) return true;
    if (rc->tracking->noloop) return false;
    if (own && (!rc->tracking->redirect || rc->tracking->redirect == rc->c->id)) {
        own->tracking_after = true;
        rc->tracking->held = true;
    }
    return true;
}

void resp_tracking_proposed(resp_conn *rc, const kv_command *cmd)
{
    struct resp_tracking_conn *t = rc->tracking;
    if (!t || !t->on || !cmd->origin) return;
    t->sent[t->nsent++ % TRACKING_OWN_SEQS] = cmd->seq;
}

void resp_tracking_after_reply(resp_conn *rc)
{
    struct resp_tracking_conn *t = rc->tracking;
    if (!t || !t->held) return;
    t->held = false;
    if (!rc->dead && !rc->c->closing) trk__deliver(rc->ra, rc); /* drain writes it out */
}

/* ---- the default mode's table -------------------------------------------------------- */

static trk_key *trk__find(resp_tracking *tr, const char *key, size_t len, uint64_t h,
                          trk_key ***slot)
{
    trk_key **at = &tr->buckets[h & tr->mask];
    for (; *at; at = &(*at)->next)
        if ((*at)->hash == h && (*at)->len == len && memcmp((*at)->key, key, len) == 0) break;
    if (slot) *slot = at;
    return *at;
}

static void trk__grow(resp_tracking *tr)
{
    size_t size = (tr->mask + 1) * 2;
    trk_key **b = xcalloc(size, sizeof(*b));
    for (size_t i = 0; i <= tr->mask; i++) {
        trk_key *k = tr->buckets[i];
        while (k) {
            trk_key *next = k->next;
            k->next = b[k->hash & (size - 1)];
            b[k->hash & (size - 1)] = k;
            k = next;
        }
    }
    free(tr->buckets);
    tr->buckets = b;
    tr->mask = size - 1;
}

/* Tell the key's readers (their connections, by id, those still
 * tracking) and forget it. */
static void trk__invalidate(resp_api *ra, trk_key **slot, const kv_change *c)
{
    resp_tracking *tr = ra->tracking;
    trk_key *k = *slot;
    *slot = k->next;
    tr->nkeys--;
    for (uint32_t i = 0; i < k->n; i++) {
        resp_conn *rc = trk__conn_by_id(ra, k->ids[i]);
        if (!rc || !trk__on(rc) || rc->tracking->bcast || !trk__may_tell(ra, rc, c)) continue;
        buf *o = &rc->tracking->out;
        trk__put32(o, 1);
        trk__put32(o, (uint32_t)k->len);
        buf_append(o, k->key, k->len);
        trk__pending(ra, rc);
    }
    free(k->ids);
    free(k);
}

/* Past tracking-table-max-keys: forget keys (each told to its readers),
 * scanning the buckets round, as Redis evicts at random. */
static void trk__trim(resp_api *ra)
{
    resp_tracking *tr = ra->tracking;
    while (tr->nkeys > tr->max_keys) {
        tr->evict_at &= tr->mask;
        trk_key **slot = &tr->buckets[tr->evict_at];
        if (!*slot) {
            tr->evict_at++;
            continue;
        }
        trk__invalidate(ra, slot, NULL);
    }
}

void resp_tracking_remember(resp_req *req, const resp_arg *key)
{
    resp_conn *rc = req->rc;
    resp_api *ra = rc->ra;
    resp_tracking *tr = ra->tracking;
    uint64_t id = rc->c->id;
    uint64_t h = hash_bytes(key->ptr, key->len, tr->seed);
    trk_key *k = trk__find(tr, key->ptr, key->len, h, NULL);
    if (!k) {
        if (tr->nkeys + 1 > tr->mask + 1) trk__grow(tr);
        k = xcalloc(1, sizeof(*k) + key->len);
        memcpy(k->key, key->ptr, key->len);
        k->len = key->len;
        k->hash = h;
        k->next = tr->buckets[h & tr->mask];
        tr->buckets[h & tr->mask] = k;
        tr->nkeys++;
    }
    for (uint32_t i = 0; i < k->n; i++)
        if (k->ids[i] == id) return;
    if (k->n == k->cap) {
        k->cap = k->cap ? 2 * k->cap : 2;
        k->ids = xrealloc(k->ids, k->cap * sizeof(*k->ids));
    }
    k->ids[k->n++] = id;
    if (tr->max_keys && tr->nkeys > tr->max_keys) trk__trim(ra);
}

void resp_tracking_read(resp_req *req)
{
    if (!req->track || !(req->cmd->flags & RESP_CMD_READONLY)) return;
    long first, last;
    if (!resp_cmd_keys(req->cmd, req->argv, req->argc, &first, &last)) return;
    for (long i = first; i <= last; i += req->cmd->key_step)
        resp_tracking_remember(req, &req->argv[i]);
}

bool resp_tracking_take(resp_conn *rc, const resp_cmd *cmd, bool queued)
{
    struct resp_tracking_conn *t = rc->tracking;
    if (!t || !t->on) return false;
    /* CLIENT CACHING is for the command after it; a command queued in
     * MULTI leaves it to EXEC, whose commands share it, as in Redis */
    if (strcmp(cmd->name, "client") == 0 || queued) return false;
    bool caching = t->caching;
    t->caching = false;
    if (t->bcast) return false;
    return t->optin ? caching : t->optout ? !caching : true;
}

/* ---- changes ------------------------------------------------------------------------- */

static bool trk__under(const trk_prefix *x, const char *key, size_t len)
{
    return x->len <= len && memcmp(x->p, key, x->len) == 0;
}

/* Forget every key of the table. */
static void trk__clear(resp_tracking *tr)
{
    for (size_t b = 0; b <= tr->mask; b++) {
        while (tr->buckets[b]) {
            trk_key *k = tr->buckets[b];
            tr->buckets[b] = k->next;
            free(k->ids);
            free(k);
        }
    }
    tr->nkeys = 0;
}

static void trk__flush_all(resp_api *ra, const kv_change *c)
{
    trk__clear(ra->tracking);
    /* every tracking connection: one null, as Redis' flush tells */
    for (resp_conn *rc = ra->conns; rc; rc = rc->next) {
        if (!trk__on(rc) || rc->dead || !trk__may_tell(ra, rc, c)) continue;
        trk__put32(&rc->tracking->out, FLUSH_ALL);
        trk__pending(ra, rc);
    }
}

void resp_tracking_change(resp_api *ra, const kv_change *c)
{
    resp_tracking *tr = ra->tracking;
    if (!tr) return;
    if (c->kind == KV_CHANGE_FLUSH || c->kind == KV_CHANGE_RESET) {
        trk__flush_all(ra, c);
        return;
    }
    if (!c->key) return;
    if (tr->nkeys) {
        trk_key **slot;
        uint64_t h = hash_bytes(c->key, c->key_len, tr->seed);
        if (trk__find(tr, c->key, c->key_len, h, &slot)) trk__invalidate(ra, slot, c);
    }
    for (size_t i = 0; i < tr->nbcast; i++) {
        resp_conn *rc = tr->bcast[i];
        struct resp_tracking_conn *t = rc->tracking;
        bool told = false;
        for (size_t k = 0; k < t->npfx; k++) {
            trk_prefix *x = &t->pfx[k];
            if (!trk__under(x, c->key, c->key_len)) continue;
            if (!told && !trk__may_tell(ra, rc, c)) break;
            told = true;
            trk__put32(&x->keys, (uint32_t)c->key_len);
            buf_append(&x->keys, c->key, c->key_len);
            x->nkeys++;
        }
        if (told) trk__pending(ra, rc);
    }
}

/* ---- on and off ---------------------------------------------------------------------- */

static void trk__prefixes_free(struct resp_tracking_conn *t)
{
    for (size_t i = 0; i < t->npfx; i++) {
        free(t->pfx[i].p);
        buf_close(&t->pfx[i].keys);
    }
    free(t->pfx);
    t->pfx = NULL;
    t->npfx = 0;
}

static void trk__off(resp_conn *rc)
{
    struct resp_tracking_conn *t = rc->tracking;
    if (!t) return;
    resp_tracking *tr = rc->ra->tracking;
    if (t->bcast) trk__list_remove(tr->bcast, &tr->nbcast, rc);
    trk__prefixes_free(t);
    buf_reset(&t->out);
    /* its keys stay in the table until they change or are trimmed: ids
     * of connections no longer tracking are skipped then, as Redis does */
    t->on = t->bcast = t->optin = t->optout = t->noloop = t->caching = t->broken = false;
    t->redirect = 0;
}

void resp_tracking_conn_free(resp_conn *rc)
{
    if (!rc->tracking) return;
    trk__off(rc);
    buf_close(&rc->tracking->out);
    free(rc->tracking);
    rc->tracking = NULL;
}

void resp_tracking_reset(resp_conn *rc)
{
    trk__off(rc);
}

static int trk__cmp_prefix(const void *a, const void *b)
{
    const trk_prefix *x = a, *y = b;
    int c = memcmp(x->p, y->p, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static void trk__switch_on(resp_req *req, bool on, bool bcast, bool optin, bool optout, bool noloop,
                           int64_t redirect, const size_t *pfx_at, size_t npfx);

/* CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST] [PREFIX p]... [OPTIN]
 * [OPTOUT] [NOLOOP], with Redis' checks in Redis' order. */
static void trk__tracking(resp_req *req)
{
    resp_conn *rc = req->rc;
    resp_api *ra = rc->ra;
    const resp_arg *onoff = &req->argv[2];
    bool on = resp_format_arg_is(onoff, "on");
    if (!on && !resp_format_arg_is(onoff, "off")) {
        resp_req_error_syntax(req);
        return;
    }
    bool bcast = false, optin = false, optout = false, noloop = false;
    int64_t redirect = 0;
    size_t npfx = 0;
    size_t *pfx_at = xcalloc(req->argc, sizeof(*pfx_at)); /* each PREFIX's argument */
    for (size_t i = 3; i < req->argc; i++) {
        const resp_arg *o = &req->argv[i];
        bool more = i + 1 < req->argc;
        if (resp_format_arg_is(o, "redirect") && more) {
            if (!resp_req_int_arg(req, &req->argv[++i], &redirect)) {
                free(pfx_at);
                return;
            }
            if (redirect <= 0 || !trk__conn_by_id(ra, (uint64_t)redirect)) {
                resp_req_error(req, "ERR The client ID you want redirect to does not exist");
                free(pfx_at);
                return;
            }
        } else if (resp_format_arg_is(o, "bcast")) {
            bcast = true;
        } else if (resp_format_arg_is(o, "optin")) {
            optin = true;
        } else if (resp_format_arg_is(o, "optout")) {
            optout = true;
        } else if (resp_format_arg_is(o, "noloop")) {
            noloop = true;
        } else if (resp_format_arg_is(o, "prefix") && more) {
            pfx_at[npfx++] = ++i;
        } else {
            resp_req_error_syntax(req);
            free(pfx_at);
            return;
        }
    }
    trk__switch_on(req, on, bcast, optin, optout, noloop, redirect, pfx_at, npfx);
    free(pfx_at);
}

/* CLIENT TRACKING's checks (Redis' order) and the switch, once the
 * arguments parsed; pfx_at: the positions of the npfx prefixes. */
static void trk__switch_on(resp_req *req, bool on, bool bcast, bool optin, bool optout, bool noloop,
                           int64_t redirect, const size_t *pfx_at, size_t npfx)
{
    resp_conn *rc = req->rc;
    resp_api *ra = rc->ra;
    struct resp_tracking_conn *t = trk__of(rc);
    if (!on) {
        trk__off(rc);
        resp_req_ok(req);
        return;
    }
    if (npfx && !bcast) {
        resp_req_error(req, "ERR PREFIX option requires BCAST mode to be enabled");
        return;
    }
    if (t->on && t->bcast != bcast) {
        resp_req_error(req, "ERR You can't switch BCAST mode on/off before disabling tracking for "
                            "this client, and then re-enabling it with a different mode.");
        return;
    }
    if (bcast && (optin || optout)) {
        resp_req_error(req, "ERR OPTIN and OPTOUT are not compatible with BCAST");
        return;
    }
    if (optin && optout) {
        resp_req_error(req, "ERR You can't specify both OPTIN mode and OPTOUT mode");
        return;
    }
    if ((optin && t->optout) || (optout && t->optin)) {
        resp_req_error(req, "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking "
                            "for this client, and then re-enabling it with a different mode.");
        return;
    }
    /* the prefixes, new and old together: none may be a prefix of another
     * (Redis checks each new one against the old and the earlier new) */
    size_t total = t->npfx + (bcast && !npfx ? 1 : npfx);
    trk_prefix *all = xcalloc(total ? total : 1, sizeof(*all));
    for (size_t i = 0; i < t->npfx; i++) all[i] = t->pfx[i];
    size_t n = t->npfx;
    for (size_t k = 0; bcast && k < (npfx ? npfx : 1); k++) {
        const char *p = npfx ? req->argv[pfx_at[k]].ptr : "";
        size_t len = npfx ? req->argv[pfx_at[k]].len : 0;
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++) {
            bool ovl = all[j].len <= len ? memcmp(all[j].p, p, all[j].len) == 0
                                         : memcmp(p, all[j].p, len) == 0;
            if (!npfx) {
                dup = all[j].len == 0; /* BCAST alone adds "" unchecked, as Redis */
            } else if (ovl) {          /* the same prefix again overlaps too */
                resp_req_errorf(req,
                                "ERR Prefix '%.*s' overlaps with an existing prefix '%.*s'. "
                                "Prefixes for a single client must not overlap.",
                                (int)len, p, (int)all[j].len, all[j].p);
                for (size_t q = t->npfx; q < n; q++) {
                    free(all[q].p);
                    buf_close(&all[q].keys);
                }
                free(all);
                return;
            }
        }
        if (dup) continue;
        all[n].p = xmalloc(len ? len : 1);
        memcpy(all[n].p, p, len);
        all[n].len = len;
        buf_init(&all[n].keys);
        n++;
    }
    qsort(all, n, sizeof(*all), trk__cmp_prefix);
    free(t->pfx);
    t->pfx = all;
    t->npfx = n;
    resp_tracking *tr = ra->tracking;
    if (bcast && !t->on) trk__list_add(&tr->bcast, &tr->nbcast, &tr->capbcast, rc);
    t->on = true;
    t->bcast = bcast;
    t->redirect = (uint64_t)redirect;
    t->noloop = noloop;
    t->optin = optin;
    t->optout = optout;
    t->caching = false;
    t->broken = false;
    resp_req_ok(req);
}

/* CLIENT CACHING YES|NO: for the next command, in OPTIN (yes) or OPTOUT
 * (no) mode. */
static void trk__caching(resp_req *req)
{
    struct resp_tracking_conn *t = req->rc->tracking;
    const resp_arg *v = &req->argv[2];
    if (!t || !t->on) { /* Redis' words, though only OPTIN/OPTOUT take it */
        resp_req_error(req, "ERR CLIENT CACHING can be called only when the client is in "
                            "tracking mode with OPTIN or OPTOUT mode enabled");
        return;
    }
    if (resp_format_arg_is(v, "yes")) {
        if (!t->optin) {
            resp_req_error(req, "ERR CLIENT CACHING YES is only valid when tracking is enabled "
                                "in OPTIN mode.");
            return;
        }
    } else if (resp_format_arg_is(v, "no")) {
        if (!t->optout) {
            resp_req_error(req, "ERR CLIENT CACHING NO is only valid when tracking is enabled "
                                "in OPTOUT mode.");
            return;
        }
    } else {
        resp_req_error_syntax(req);
        return;
    }
    t->caching = true;
    resp_req_ok(req);
}

static void trk__info(resp_req *req)
{
    const struct resp_tracking_conn *t = req->rc->tracking;
    bool on = t && t->on;
    buf *o = &req->reply;
    resp_write_map(o, req->proto, 3);
    resp_write_bulk_str(o, "flags");
    const char *flags[8];
    size_t nf = 0;
    if (!on) {
        flags[nf++] = "off";
    } else {
        flags[nf++] = "on";
        if (t->bcast) flags[nf++] = "bcast";
        if (t->optin) flags[nf++] = "optin";
        if (t->optout) flags[nf++] = "optout";
        if (t->optin && t->caching) flags[nf++] = "caching-yes";
        if (t->optout && t->caching) flags[nf++] = "caching-no";
        if (t->noloop) flags[nf++] = "noloop";
        if (t->broken) flags[nf++] = "broken_redirect";
    }
    resp_write_set(o, req->proto, nf);
    for (size_t i = 0; i < nf; i++) resp_write_bulk_str(o, flags[i]);
    resp_write_bulk_str(o, "redirect");
    resp_write_integer(o, !on ? -1 : (long long)t->redirect);
    resp_write_bulk_str(o, "prefixes");
    resp_write_array(o, on ? t->npfx : 0);
    for (size_t i = 0; on && i < t->npfx; i++) resp_write_bulk(o, t->pfx[i].p, t->pfx[i].len);
}

bool resp_tracking_client(resp_req *req)
{
    const resp_arg *sub = &req->argv[1];
    size_t argc = req->argc;
    if (resp_format_arg_is(sub, "tracking")) {
        req->rc->last_cmd = "client|tracking";
        if (argc < 3)
            resp_req_error_sub_arity(req);
        else
            trk__tracking(req);
    } else if (resp_format_arg_is(sub, "caching")) {
        req->rc->last_cmd = "client|caching";
        if (argc != 3)
            resp_req_error_sub_arity(req);
        else
            trk__caching(req);
    } else if (resp_format_arg_is(sub, "getredir")) {
        req->rc->last_cmd = "client|getredir";
        const struct resp_tracking_conn *t = req->rc->tracking;
        if (argc != 2)
            resp_req_error_sub_arity(req);
        else
            resp_write_integer(&req->reply, t && t->on ? (long long)t->redirect : -1);
    } else if (resp_format_arg_is(sub, "trackinginfo")) {
        req->rc->last_cmd = "client|trackinginfo";
        if (argc != 2)
            resp_req_error_sub_arity(req);
        else
            trk__info(req);
    } else {
        return false;
    }
    return true;
}

void resp_tracking_flags(const resp_conn *rc, char *flags, size_t *n)
{
    const struct resp_tracking_conn *t = rc->tracking;
    if (!t || !t->on) return;
    flags[(*n)++] = 't';
    if (t->broken) flags[(*n)++] = 'R';
    if (t->bcast) flags[(*n)++] = 'B';
}

long long resp_tracking_redirect(const resp_conn *rc)
{
    const struct resp_tracking_conn *t = rc->tracking;
    return t && t->on ? (long long)t->redirect : -1;
}

/* ---- the node's tables --------------------------------------------------------------- */

void resp_tracking_set_max_keys(resp_api *ra, uint64_t max)
{
    ra->tracking->max_keys = max;
    if (max && ra->tracking->nkeys > max) trk__trim(ra);
}

uint64_t resp_tracking_max_keys(const resp_api *ra)
{
    return ra->tracking->max_keys;
}

resp_tracking_stats resp_tracking_stats_of(const resp_api *ra)
{
    resp_tracking_stats st = {0};
    const resp_tracking *tr = ra->tracking;
    if (!tr) return st;
    st.keys = tr->nkeys;
    for (size_t b = 0; b <= tr->mask; b++)
        for (const trk_key *k = tr->buckets[b]; k; k = k->next) st.items += k->n;
    for (const resp_conn *rc = ra->conns; rc; rc = rc->next) {
        if (!trk__on(rc)) continue;
        st.clients++;
        st.prefixes += rc->tracking->npfx;
    }
    return st;
}

void resp_tracking_init(resp_api *ra, uv_loop_t *loop)
{
    resp_tracking *tr = xcalloc(1, sizeof(*tr));
    tr->mask = 63;
    tr->buckets = xcalloc(tr->mask + 1, sizeof(*tr->buckets));
    tr->seed = (uint64_t)clock_mono_ns() ^ 0x7472616b;
    tr->max_keys = TRACKING_DEFAULT_MAX_KEYS;
    uv_timer_init(loop, &tr->flush);
    tr->flush.data = ra;
    tr->m_sent = metrics_counter_get("cairn_resp_tracking_invalidations_total",
                                     "CLIENT TRACKING invalidation messages sent by this node", "");
    ra->tracking = tr;
}

void resp_tracking_close(resp_api *ra)
{
    resp_tracking *tr = ra->tracking;
    if (!tr) return;
    tr->closing = true;
    uv_timer_stop(&tr->flush);
    for (size_t i = 0; i < tr->npend; i++) resp_conn_release(tr->pend[i]);
    free(tr->pend);
    trk__clear(tr);
    free(tr->buckets);
    free(tr->bcast);
    free(tr);
    ra->tracking = NULL;
}
