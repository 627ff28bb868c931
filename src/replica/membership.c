/* Membership: add (as spare, then promote), remove, leadership transfer,
 * the replicated member table of client addresses. */
#include <stdlib.h>
#include <string.h>

#include "replica/replica_internal.h"
#include "util/alloc.h"
#include "util/clock.h"

int replica__role_is_voter(const struct raft_configuration *c, uint64_t id)
{
    for (unsigned i = 0; i < c->n; i++)
        if (c->servers[i].id == id) return c->servers[i].role == RAFT_VOTER;
    return 0;
}

unsigned replica__voters(const struct raft_configuration *c)
{
    unsigned n = 0;
    for (unsigned i = 0; i < c->n; i++) n += c->servers[i].role == RAFT_VOTER;
    return n;
}

/* Make sure the replicated member table holds this node's client
 * addresses, so that others can forward to it and list it. */
void replica__register_member(replica *r)
{
    const kv_member *m = kv_store_member(r->store, r->id);
    /* config_parse fills the advertised addresses in; a config built
     * without it (tests/sim) advertises what it listens on */
    const cairn_config *cfg = r->cfg;
    const char *http = cfg->advertise_http[0] ? cfg->advertise_http : cfg->listen_http;
    const char *resp = cfg->advertise_resp[0] ? cfg->advertise_resp : cfg->listen_resp;
    if (m && strcmp(m->http, http) == 0 && strcmp(m->resp, resp) == 0) return;
    int64_t now = replica__mono_ms(r);
    if (r->member_inflight || now < r->member_next_ms) return;
    r->member_next_ms = now + 500;
    kv_slice args[2] = {{http, strlen(http)}, {resp, strlen(resp)}};
    kv_command cmd = {.op = KV_OP_MEMBER,
                      .a = (int64_t)r->id,
                      .nargs = 2,
                      .args = args,
                      .now_ms = replica__wall_ms(r)};
    if (raft_state(r->raft) == RAFT_LEADER) {
        if (!r->leader_ready) return;
        replica_op *op = replica_op_new(r, NULL, OP_PROPOSE, 3600);
        op->internal_member = true;
        if (replica__submit(r, op, &cmd) != REPLICA_OK) {
            free(op);
            return;
        }
    } else {
        raft_id leader = 0;
        const char *addr = NULL;
        raft_leader(r->raft, &leader, &addr);
        if (!leader) return;
        cmd.origin = r->id;
        cmd.seq = ++r->seq;
        replica__forward(r, NULL, OP_FORWARD_WRITE, &cmd, r->cfg->write_timeout);
        if (r->forwards.tail) r->forwards.tail->internal_member = true;
    }
    r->member_inflight = true;
}

size_t replica_members(replica *r, replica_member_info *out, size_t max)
{
    if (!r->durable) return 0;
    const struct raft_configuration *c = &r->raft->configuration;
    raft_id leader = 0;
    const char *addr = NULL;
    raft_leader(r->raft, &leader, &addr);
    bool leading = raft_state(r->raft) == RAFT_LEADER;
    size_t n = 0;
    for (unsigned i = 0; i < c->n && n < max; i++) {
        const struct raft_server *srv = &c->servers[i];
        const kv_member *m = kv_store_member(r->store, srv->id);
        replica_member_info *o = &out[n++];
        o->id = srv->id;
        o->peer = srv->address;
        o->http = m ? m->http : "";
        o->resp = m ? m->resp : "";
        o->role = srv->role == RAFT_VOTER     ? "voter"
                  : srv->role == RAFT_STANDBY ? "standby"
                                              : "spare";
        o->leader = srv->id == leader;
        o->has_match = leading && r->raft->leader_state.progress != NULL;
        o->match_index = o->has_match ? r->raft->leader_state.progress[i].match_index : 0;
        if (srv->id == r->id) o->match_index = raft_last_index(r->raft);
    }
    return n;
}

/* ---- membership --------------------------------------------------------------- */

typedef struct change_op {
    replica *r;                    /* NULL once the replica is destroyed (delivery still pending) */
    struct change_op *prev, *next; /* r->changes */
    struct raft_change change;
    struct raft_transfer transfer;
    uv_timer_t later; /* the callback runs outside libraft's stack */
    /* A promotion is (re)tried from replica_poll once the replica's clock
     * reaches this (0: not waiting). The replica's clock, not a uv timer:
     * a simulator runs it on simulated time. */
    int64_t promote_at_ms;
    bool delivering; /* change__finish ran: only the callback is left */
    int promote_tries;
    uint64_t id;
    bool then_promote; /* add: assign voter once the add has committed */
    bool forget;       /* remove: drop the member's addresses afterwards */
    int status;
    const char *msg;
    replica_change_cb cb;
    void *ctx;
} change_op;

static void replica__forget_member(replica *r, uint64_t id);

static void change__unlink(change_op *c)
{
    if (!c->r) return;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->r->changes = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void change__closed(uv_handle_t *h)
{
    change_op *c = h->data;
    change__unlink(c);
    free(c);
}

static void change__deliver(uv_timer_t *t)
{
    change_op *c = t->data;
    if (c->r && c->forget && c->status == 0 && !c->r->closing &&
        raft_state(c->r->raft) == RAFT_LEADER)
        replica__forget_member(c->r, c->id);
    if (c->cb) c->cb(c->ctx, c->status, c->msg);
    uv_close((uv_handle_t *)&c->later, change__closed);
}

/* Called from libraft callbacks: never re-enter libraft or client code
 * from there; deliver on the next loop iteration. msg must be static. */
static void change__finish(change_op *c, int status, const char *msg)
{
    c->delivering = true;
    c->promote_at_ms = 0;
    c->status = status;
    c->msg = msg;
    uv_timer_init(c->r->loop, &c->later);
    c->later.data = c;
    uv_timer_start(&c->later, change__deliver, 0, 0);
}

#define PROMOTE_TRIES 60 /* x 500 ms: a joining node has this long to become reachable */

static void change__done(struct raft_change *req, int status);

static void change__promote(change_op *c)
{
    replica *r = c->r;
    int rv = raft_state(r->raft) == RAFT_LEADER
                 ? raft_assign(r->raft, &c->change, c->id, RAFT_VOTER, change__done)
                 : RAFT_NOTLEADER;
    if (rv != 0) change__done(&c->change, rv);
}

static void change__done(struct raft_change *req, int status)
{
    change_op *c = req->data;
    /* Adding is two steps: the node joins as a spare, then an assign makes
     * it a voter once libraft has caught it up. A node that is not
     * reachable yet fails the assign with NOCONNECTION: try again shortly.
     * Always from replica_poll: never call libraft from inside its
     * callback. */
    bool spare_added = c->then_promote && c->promote_tries == 0 && status == 0;
    bool retry = c->then_promote && status == RAFT_NOCONNECTION && c->promote_tries < PROMOTE_TRIES;
    if ((spare_added || retry) && !c->r->closing) {
        c->promote_at_ms = replica__mono_ms(c->r) + (spare_added ? 0 : 500);
        if (c->promote_at_ms == 0) c->promote_at_ms = 1; /* 0 means "not waiting" */
        c->promote_tries++;
        return;
    }
    change__finish(c, status, status ? raft_strerror(status) : "ok");
}

static change_op *change__new(replica *r, uint64_t id, replica_change_cb cb, void *ctx)
{
    change_op *c = xcalloc(1, sizeof(*c));
    c->r = r;
    c->id = id;
    c->cb = cb;
    c->ctx = ctx;
    c->change.data = c;
    c->transfer.data = c;
    c->next = r->changes;
    if (r->changes) r->changes->prev = c;
    r->changes = c;
    return c;
}

/* A change libraft refused at once: it was never started. */
static void change__discard(change_op *c)
{
    change__unlink(c);
    free(c);
}

void replica__membership_poll(replica *r)
{
    int64_t now = replica__mono_ms(r);
    change_op *next;
    for (change_op *c = r->changes; c; c = next) {
        next = c->next; /* change__promote may finish c (not free it) */
        if (c->promote_at_ms && now >= c->promote_at_ms) {
            c->promote_at_ms = 0;
            change__promote(c);
        }
    }
}

void replica__membership_close(replica *r)
{
    for (change_op *c = r->changes; c; c = c->next)
        if (c->promote_at_ms) change__finish(c, RAFT_SHUTDOWN, "node is shutting down");
}

void replica__membership_forget(replica *r)
{
    change_op *next;
    for (change_op *c = r->changes; c; c = next) {
        next = c->next;
        c->prev = c->next = NULL;
        c->r = NULL;
    }
    r->changes = NULL;
}

int replica_member_add(replica *r, uint64_t id, const char *peer, replica_change_cb cb, void *ctx)
{
    if (!r->durable) return RAFT_NOTLEADER;
    const struct raft_configuration *conf = &r->raft->configuration;
    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].id != id) continue;
        if (conf->servers[i].role == RAFT_VOTER) return RAFT_DUPLICATEID;
        /* added before but never promoted (it was not reachable then):
         * adding it again means promoting it */
        change_op *c = change__new(r, id, cb, ctx);
        c->then_promote = true;
        change__done(&c->change, 0);
        return 0;
    }
    change_op *c = change__new(r, id, cb, ctx);
    c->then_promote = true;
    int rv = raft_add(r->raft, &c->change, id, peer, change__done);
    if (rv != 0) change__discard(c);
    return rv;
}

static void replica__forget_member(replica *r, uint64_t id)
{
    kv_slice args[2] = {{"", 0}, {"", 0}};
    kv_command cmd = {.op = KV_OP_MEMBER,
                      .a = (int64_t)id,
                      .nargs = 2,
                      .args = args,
                      .now_ms = replica__wall_ms(r)};
    replica_op *op = replica_op_new(r, NULL, OP_PROPOSE, 3600);
    op->internal_expiry = false;
    op->internal_noop = false;
    op->internal_member = false;
    r->inflight++; /* balanced in proposal_done */
    if (replica__submit(r, op, &cmd) != REPLICA_OK) {
        r->inflight--;
        free(op);
    }
}

static void remove__done(struct raft_change *req, int status)
{
    change_op *c = req->data;
    c->forget = true;
    change__finish(c, status, status ? raft_strerror(status) : "ok");
}

int replica_member_remove(replica *r, uint64_t id, replica_change_cb cb, void *ctx)
{
    if (!r->durable) return RAFT_NOTLEADER;
    change_op *c = change__new(r, id, cb, ctx);
    int rv = raft_remove(r->raft, &c->change, id, remove__done);
    if (rv != 0) change__discard(c);
    return rv;
}

static void transfer__done(struct raft_transfer *t)
{
    change_op *c = t->data;
    raft_id leader = 0;
    const char *addr = NULL;
    raft_leader(c->r->raft, &leader, &addr);
    if (leader == c->id || (c->id == 0 && leader != c->r->id && leader != 0))
        change__finish(c, 0, "ok");
    else
        change__finish(c, RAFT_NOTFOUND, "leadership was not transferred in time");
}

int replica_transfer_leadership(replica *r, uint64_t id, replica_change_cb cb, void *ctx)
{
    if (!r->durable) return RAFT_NOTLEADER;
    change_op *c = change__new(r, id, cb, ctx);
    int rv = raft_transfer(r->raft, &c->transfer, id, transfer__done);
    if (rv != 0) change__discard(c);
    return rv;
}
