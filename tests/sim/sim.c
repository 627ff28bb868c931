/* sim: the real replica and kv code of three nodes in one process, on
 * libraft's raft_fixture (in-memory disk and network, simulated time),
 * driven by one seeded schedule (issue 11, the deterministic simulator's
 * first step).
 *
 * What runs for real: replica (proposals, forwarding from followers to the
 * leader, linearizable reads by barrier and read-index, expiry, the member
 * table, snapshots taken in process), the kv store and command codec, and
 * libraft itself. What is simulated: time (the fixture's clock is every
 * replica's clock), libraft's disk and network (raft_fixture), and the
 * followers' HTTP forwarding (an in-memory peer with the HTTP handler's
 * status mapping, delays and losses).
 *
 * The schedule: clients, one per key, each with one operation at a time:
 * writes of increasing values through a random node, linearizable reads
 * through a random node. Faults: a node cut off from the others (its
 * forwarding too), a node frozen (raft_fixture_kill: no ticks, no
 * messages, like kill -STOP), message latency changes. After every step:
 * at most one leader per term. Every read is checked as it completes: it
 * must return a value some write had been invoked for, and no write that
 * completed before the read began may be newer than the write it saw
 * (see check_read). At the end, after healing: every node applies the
 * same index and holds byte-identical state (the snapshot serialisation).
 *
 * Usage: sim [--seed N | --seeds A-B | --random] [--ops N] [--stale-reads]
 * Exit status 0 when every seed passed; a failure prints its seed, and
 * `sim --seed N` replays it exactly. --stale-reads is the negative
 * control: reads that skip the leader check, which the checker must
 * reject. */
#include <inttypes.h>
#include <raft.h>
#include <raft/fixture.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "kv/snapshot.h"
#include "kv/store.h"
#include "obs/log.h"
#include "replica/replica.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/config.h"

#define N_NODES 3
#define N_KEYS 6
#define POLL_MS 10
#define WALL_BASE_MS 1800000000000LL /* a fixed wall clock: replays are exact */

typedef struct sim sim;

/* ---- random numbers: one stream per run, nothing else is random ---------- */

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static unsigned rng_below(uint64_t *s, unsigned n)
{
    return (unsigned)(rng_next(s) % n);
}

/* ---- the in-memory peer (a follower's forwarding to the leader) ----------- */

enum { MSG_REQUEST, MSG_AT_TARGET, MSG_RESPONSE, MSG_LOST };

typedef struct peer_msg {
    sim *s;
    unsigned from, to; /* node indexes */
    int phase;
    int64_t due_ms;      /* next delivery (request, response) */
    int64_t deadline_ms; /* the caller's deadline: a lost message fails then */
    bool propose;        /* else read-index */
    buf body;
    replica_req rreq; /* at the target while phase == MSG_AT_TARGET */
    int http_status;
    buf resp;
    forward_cb cb;
    void *cb_ctx;
    bool cancelled;
    struct peer_msg *next;
} peer_msg;

/* ---- the nodes and the clients -------------------------------------------- */

typedef struct node {
    sim *s;
    unsigned index;
    /* the fixture's disk, corrected (see fixture_truncate) */
    struct raft_io *io;
    int (*fixture_truncate)(struct raft_io *, raft_index);
    int (*fixture_snapshot_put)(struct raft_io *, unsigned, struct raft_io_snapshot_put *,
                                const struct raft_snapshot *, raft_io_snapshot_put_cb);
    raft_index log_base;        /* log index of the fixture's first stored entry */
    raft_index install_pending; /* an installed snapshot's index, until stored */
    cairn_config cfg;
    kv_store store;
    replica *r;
    bool frozen; /* raft_fixture_kill'ed */
    bool cut;    /* disconnected from every other node */
} node;

typedef struct write_rec {
    int64_t value;
    int64_t inv_ms, ack_ms; /* ack_ms: INT64_MAX unless acknowledged OK */
} write_rec;

typedef struct client {
    sim *s;
    unsigned key;
    bool busy;
    bool is_write;
    int64_t inv_ms;
    unsigned via; /* node index */
    int64_t value;
    replica_req req;
    kv_command cmd;
    kv_slice args[2];
    char keybuf[16], valbuf[32];
    /* history of this key's writes, in invocation order */
    write_rec *writes;
    size_t n_writes, cap_writes;
} client;

struct sim {
    uint64_t seed, rng;
    struct raft_fixture f;
    uv_loop_t loop;
    node nodes[N_NODES];
    client clients[N_KEYS];
    peer_msg *msgs;
    unsigned latency_ms;
    int64_t next_poll_ms;
    raft_id leader_of_term[4096];
    /* counts */
    uint64_t ops_ok, ops_failed, reads_ok, writes_ok, faults, steps, leader_changes;
    uint64_t installs, snapshots;
    uint64_t target_ops;
    bool stale_reads; /* negative control: the checker must catch these */
    bool failed;
    char why[512];
};

static int64_t sim_now(sim *s)
{
    return (int64_t)raft_fixture_time(&s->f);
}

static void sim_fail(sim *s, const char *fmt, ...)
{
    if (s->failed) return;
    s->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof(s->why), fmt, ap);
    va_end(ap);
}

static int64_t clock_mono(void *ctx)
{
    return sim_now(ctx);
}

static int64_t clock_wall(void *ctx)
{
    return WALL_BASE_MS + sim_now(ctx);
}

static bool linked(sim *s, unsigned a, unsigned b)
{
    return !s->nodes[a].cut && !s->nodes[b].cut && !s->nodes[a].frozen && !s->nodes[b].frozen;
}

static unsigned node_of_id(uint64_t id)
{
    return (unsigned)(id - 1);
}

/* The leader's HTTP handler's answers (api/http_cluster.c): 421 when it
 * does not lead and did nothing, 503 with the replica status when it tried
 * and failed, 200 with the encoded result or the read index. */
static void peer_answered(replica_req *rr, int status)
{
    peer_msg *m = rr->data;
    buf_reset(&m->resp);
    if (status == REPLICA_ERR_NOT_LEADER) {
        m->http_status = 421;
    } else if (status != REPLICA_OK) {
        m->http_status = 503;
        buf_printf(&m->resp, "%d", status);
    } else if (m->propose) {
        m->http_status = 200;
        kv_result_encode(&rr->result, &m->resp);
    } else {
        m->http_status = 200;
        buf_printf(&m->resp, "%" PRIu64, rr->read_index);
    }
    m->phase = MSG_RESPONSE;
    m->due_ms = sim_now(m->s) + m->s->latency_ms;
}

static void *peer_post(void *ctx, uint64_t peer_id, const char *http, const char *path,
                       const void *body, size_t len, double timeout_s, forward_cb cb, void *cb_ctx)
{
    node *from = ctx; /* each node's replica has its own peer context */
    sim *s = from->s;
    (void)http;
    peer_msg *m = xcalloc(1, sizeof(*m));
    m->s = s;
    m->from = from->index;
    m->to = node_of_id(peer_id);
    m->propose = strcmp(path, "/internal/v1/propose") == 0;
    if (!m->propose && strcmp(path, "/internal/v1/read-index") != 0) {
        free(m);
        return NULL; /* admin paths are not simulated */
    }
    m->phase = MSG_REQUEST;
    m->due_ms = sim_now(s) + s->latency_ms;
    m->deadline_ms = sim_now(s) + (int64_t)(timeout_s * 1000);
    buf_init(&m->body);
    buf_init(&m->resp);
    buf_append(&m->body, body, len);
    m->cb = cb;
    m->cb_ctx = cb_ctx;
    m->next = s->msgs;
    s->msgs = m;
    return m;
}

static void peer_cancel(void *ctx, void *req)
{
    (void)ctx;
    peer_msg *m = req;
    m->cancelled = true; /* freed when the target is done with it */
}

static int peer_breaker(void *ctx, uint64_t peer_id)
{
    (void)ctx;
    (void)peer_id;
    return 0;
}

static const replica_peer_ops sim_peers = {
    .post = peer_post, .cancel = peer_cancel, .breaker_state = peer_breaker};

static void peer_deliver(sim *s, peer_msg *m)
{
    int64_t now = sim_now(s);
    switch (m->phase) {
    case MSG_REQUEST:
        if (m->cancelled) {
            m->phase = MSG_LOST;
            return;
        }
        if (!linked(s, m->from, m->to)) {
            m->phase = MSG_LOST; /* fails at the deadline: may have been sent */
            return;
        }
        replica_req_init(&m->rreq, m, peer_answered);
        m->phase = MSG_AT_TARGET;
        node *t = &s->nodes[m->to];
        int st;
        if (m->propose) {
            kv_command cmd;
            kv_slice args[64];
            uint32_t need = 0;
            const char *why = NULL;
            if (kv_command_decode(m->body.data, m->body.len, &cmd, args, 64, &need, &why) != 0) {
                sim_fail(s, "forwarded command does not decode: %s", why ? why : "?");
                return;
            }
            st = replica_propose_here(t->r, &m->rreq, &cmd);
        } else {
            st = replica_read_index(t->r, &m->rreq);
        }
        if (st != REPLICA_OK) peer_answered(&m->rreq, st);
        return;
    case MSG_RESPONSE:
        if (!m->cancelled && linked(s, m->to, m->from))
            m->cb(m->cb_ctx, FORWARD_OK, true, m->http_status, m->resp.data, m->resp.len);
        else if (!m->cancelled)
            m->cb(m->cb_ctx, FORWARD_ERR_TIMEOUT, true, 0, NULL, 0);
        m->phase = -1; /* done */
        return;
    case MSG_LOST:
        if (!m->cancelled && now >= m->deadline_ms)
            m->cb(m->cb_ctx, FORWARD_ERR_TIMEOUT, true, 0, NULL, 0);
        if (m->cancelled || now >= m->deadline_ms) m->phase = -1;
        return;
    }
}

static void peer_run(sim *s)
{
    int64_t now = sim_now(s);
    for (peer_msg **pm = &s->msgs; *pm;) {
        peer_msg *m = *pm;
        bool due = (m->phase == MSG_REQUEST || m->phase == MSG_RESPONSE) && m->due_ms <= now;
        if (due || m->phase == MSG_LOST) peer_deliver(s, m);
        if (m->phase == -1) {
            *pm = m->next;
            replica_req_close(&m->rreq);
            buf_close(&m->body);
            buf_close(&m->resp);
            free(m);
            continue;
        }
        pm = &m->next;
    }
}

/* ---- the fixture's disk, corrected --------------------------------------- */

/* libraft 0.15's raft_fixture keeps a node's persisted entries in an array
 * it indexes from log index 1, and empties it when a snapshot from the
 * leader is stored (truncate(1)): after that the array starts at the
 * snapshot's index + 1, but its truncate still takes index - 1 entries and
 * reads past the array's end (found by this simulator under ASan). The
 * shim below translates log indexes to array positions. */
static sim *g_sim; /* the hooks get only the raft_io */

static node *node_of_io(struct raft_io *io)
{
    for (unsigned i = 0; i < N_NODES; i++)
        if (g_sim->nodes[i].io == io) return &g_sim->nodes[i];
    abort();
}

static int fixture_snapshot_put(struct raft_io *io, unsigned trailing,
                                struct raft_io_snapshot_put *req,
                                const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb)
{
    node *n = node_of_io(io);
    if (trailing == 0) {
        n->install_pending = snapshot->index;
        g_sim->installs++;
    }
    return n->fixture_snapshot_put(io, trailing, req, snapshot, cb);
}

static int fixture_truncate(struct raft_io *io, raft_index index)
{
    node *n = node_of_io(io);
    if (index == 1 && n->install_pending) {
        /* the fixture storing an installed snapshot: the log restarts */
        n->log_base = n->install_pending + 1;
        n->install_pending = 0;
        return n->fixture_truncate(io, 1);
    }
    if (index < n->log_base) {
        sim_fail(g_sim, "node %u: truncate at %llu, before its log's start %llu", n->index + 1,
                 (unsigned long long)index, (unsigned long long)n->log_base);
        return RAFT_IOERR;
    }
    return n->fixture_truncate(io, index - n->log_base + 1);
}

static void hook_fixture_io(node *n, struct raft_io *io)
{
    n->io = io;
    n->log_base = 1;
    n->fixture_truncate = io->truncate;
    n->fixture_snapshot_put = io->snapshot_put;
    io->truncate = fixture_truncate;
    io->snapshot_put = fixture_snapshot_put;
}

/* ---- history checks ----------------------------------------------------- */

static const write_rec *find_write(const client *c, int64_t value)
{
    for (size_t i = 0; i < c->n_writes; i++)
        if (c->writes[i].value == value) return &c->writes[i];
    return NULL;
}

/* A linearizable read of a register whose writes all have distinct values
 * is wrong if it saw a value nobody had begun to write, or if some other
 * write began after the one it saw had completed, and itself completed
 * before the read began: that write must lie between them, so the read
 * is stale. (Value 0: the key had never been written.) */
static void check_read(sim *s, client *c, int64_t got, int64_t read_inv, int64_t read_done)
{
    const write_rec *w = got ? find_write(c, got) : NULL;
    if (got && (!w || w->inv_ms > read_done)) {
        sim_fail(s, "key %u: read returned %" PRId64 ", which no write had begun", c->key, got);
        return;
    }
    int64_t w_ack = w ? w->ack_ms : -1;
    for (size_t i = 0; i < c->n_writes; i++) {
        const write_rec *o = &c->writes[i];
        if (o == w || o->ack_ms == INT64_MAX) continue;
        if (o->inv_ms > w_ack && o->ack_ms < read_inv) {
            sim_fail(s,
                     "key %u: stale read at %" PRId64 " ms: saw %" PRId64 " but %" PRId64
                     " was written (%" PRId64 "-%" PRId64 " ms) after it and before the read",
                     c->key, read_inv, got, o->value, o->inv_ms, o->ack_ms);
            return;
        }
    }
}

/* ---- clients ------------------------------------------------------------------ */

static int64_t parse_value(const kv_entry *e)
{
    if (!e) return 0;
    char tmp[32];
    size_t n = e->value_len < sizeof(tmp) - 1 ? e->value_len : sizeof(tmp) - 1;
    memcpy(tmp, e->value, n);
    tmp[n] = '\0';
    return strtoll(tmp, NULL, 10);
}

static void client_done(replica_req *req, int status)
{
    client *c = req->data;
    sim *s = c->s;
    int64_t now = sim_now(s);
    c->busy = false;
    if (status != REPLICA_OK) {
        s->ops_failed++;
        return; /* a failed write stays "maybe": ack_ms INT64_MAX */
    }
    s->ops_ok++;
    if (c->is_write) {
        s->writes_ok++;
        for (size_t i = c->n_writes; i-- > 0;) {
            if (c->writes[i].value == c->value) {
                c->writes[i].ack_ms = now;
                break;
            }
        }
        return;
    }
    s->reads_ok++;
    node *n = &s->nodes[c->via];
    kv_entry *e = kv_store_get(&n->store, c->keybuf, strlen(c->keybuf), WALL_BASE_MS + now);
    check_read(s, c, parse_value(e), c->inv_ms, now);
}

static void client_start(sim *s, client *c)
{
    c->via = rng_below(&s->rng, N_NODES);
    node *n = &s->nodes[c->via];
    if (n->frozen) return; /* a client of a frozen node waits */
    c->is_write = rng_below(&s->rng, 2) == 0;
    c->inv_ms = sim_now(s);
    c->busy = true;
    replica_req_close(&c->req); /* the last operation's result buffer */
    replica_req_init(&c->req, c, client_done);
    int st;
    if (c->is_write) {
        c->value = (int64_t)c->n_writes + 1;
        if (c->n_writes == c->cap_writes) {
            c->cap_writes = c->cap_writes ? c->cap_writes * 2 : 64;
            c->writes = xrealloc(c->writes, c->cap_writes * sizeof(*c->writes));
        }
        c->writes[c->n_writes++] = (write_rec){c->value, c->inv_ms, INT64_MAX};
        int vlen = snprintf(c->valbuf, sizeof(c->valbuf), "%" PRId64, c->value);
        c->args[0] = (kv_slice){c->keybuf, strlen(c->keybuf)};
        c->args[1] = (kv_slice){c->valbuf, (size_t)vlen};
        memset(&c->cmd, 0, sizeof(c->cmd));
        c->cmd.op = KV_OP_PUT;
        c->cmd.nargs = 2;
        c->cmd.args = c->args;
        st = replica_propose(n->r, &c->req, &c->cmd);
    } else {
        st = replica_read(n->r, &c->req,
                          s->stale_reads ? REPLICA_READ_STALE : REPLICA_READ_LINEARIZABLE, 0);
    }
    if (st != REPLICA_OK) {
        c->busy = false;
        s->ops_failed++;
    }
}

/* ---- faults ---------------------------------------------------------------------- */

static void set_cut(sim *s, unsigned i, bool cut)
{
    s->nodes[i].cut = cut;
    for (unsigned j = 0; j < N_NODES; j++) {
        if (j == i) continue;
        if (cut) {
            raft_fixture_disconnect(&s->f, i, j);
            raft_fixture_disconnect(&s->f, j, i);
        } else if (!s->nodes[j].cut) {
            raft_fixture_reconnect(&s->f, i, j);
            raft_fixture_reconnect(&s->f, j, i);
        }
    }
}

static void set_frozen(sim *s, unsigned i, bool frozen)
{
    s->nodes[i].frozen = frozen;
    if (frozen)
        raft_fixture_kill(&s->f, i);
    else
        raft_fixture_revive(&s->f, i);
}

static void heal(sim *s)
{
    for (unsigned i = 0; i < N_NODES; i++) {
        if (s->nodes[i].frozen) set_frozen(s, i, false);
        if (s->nodes[i].cut) set_cut(s, i, false);
    }
    s->latency_ms = 15;
}

/* One fault at a time, mostly on the leader, held for 0.5-3 s. */
static void maybe_fault(sim *s, int64_t *fault_end, bool *fault_on)
{
    int64_t now = sim_now(s);
    if (*fault_on) {
        if (now >= *fault_end) {
            heal(s);
            *fault_on = false;
            *fault_end = now + 500 + rng_below(&s->rng, 2000); /* quiet period */
        }
        return;
    }
    if (now < *fault_end) return;
    unsigned leader = raft_fixture_leader_index(&s->f);
    unsigned victim =
        leader < N_NODES && rng_below(&s->rng, 4) != 0 ? leader : rng_below(&s->rng, N_NODES);
    switch (rng_below(&s->rng, 3)) {
    case 0:
        set_cut(s, victim, true);
        break;
    case 1:
        set_frozen(s, victim, true);
        break;
    default:
        s->latency_ms = 5 + rng_below(&s->rng, 120);
        break;
    }
    s->faults++;
    *fault_on = true;
    *fault_end = now + 500 + rng_below(&s->rng, 2500);
}

/* ---- invariants ------------------------------------------------------------------ */

static void check_leaders(sim *s)
{
    for (unsigned i = 0; i < N_NODES; i++) {
        struct raft *r = raft_fixture_get(&s->f, i);
        if (raft_state(r) != RAFT_LEADER) continue;
        raft_term t = r->current_term;
        if (t >= sizeof(s->leader_of_term) / sizeof(s->leader_of_term[0])) continue;
        raft_id *who = &s->leader_of_term[t];
        if (*who == 0) {
            *who = r->id;
            s->leader_changes++;
        } else if (*who != r->id) {
            sim_fail(s, "two leaders in term %llu: %llu and %llu", (unsigned long long)t,
                     (unsigned long long)*who, (unsigned long long)r->id);
        }
    }
}

static void check_converged(sim *s)
{
    buf snap[N_NODES];
    uint64_t applied[N_NODES];
    for (unsigned i = 0; i < N_NODES; i++) {
        buf_init(&snap[i]);
        kv_snapshot_write(&s->nodes[i].store, kv_snapshot_sink_buf, &snap[i]);
        applied[i] = replica_applied_index(s->nodes[i].r);
    }
    for (unsigned i = 1; i < N_NODES && !s->failed; i++) {
        if (applied[i] != applied[0])
            sim_fail(s, "after healing, node %u applied %llu and node 1 %llu", i + 1,
                     (unsigned long long)applied[i], (unsigned long long)applied[0]);
        else if (snap[i].len != snap[0].len || memcmp(snap[i].data, snap[0].data, snap[0].len))
            sim_fail(s, "node %u and node 1 applied index %llu but hold different state", i + 1,
                     (unsigned long long)applied[0]);
    }
    for (unsigned i = 0; i < N_NODES; i++) buf_close(&snap[i]);
}

/* ---- one run ------------------------------------------------------------------------ */

static void sim_step(sim *s)
{
    raft_fixture_step(&s->f);
    s->steps++;
    uv_run(&s->loop, UV_RUN_NOWAIT); /* deferred completions (zero-delay timers) */
    peer_run(s);
    uv_run(&s->loop, UV_RUN_NOWAIT);
    int64_t now = sim_now(s);
    if (now >= s->next_poll_ms) {
        s->next_poll_ms = now + POLL_MS;
        for (unsigned i = 0; i < N_NODES; i++)
            if (!s->nodes[i].frozen) replica_poll(s->nodes[i].r);
    }
    check_leaders(s);
}

static void sim_closed(void *ctx)
{
    (void)ctx;
}

static int sim_run(uint64_t seed, uint64_t target_ops, bool stale_reads, bool verbose,
                   uint64_t *ops_out, uint64_t *faults_out)
{
    sim *s = xcalloc(1, sizeof(*s));
    s->seed = seed;
    s->rng = seed;
    s->latency_ms = 15;
    s->target_ops = target_ops;
    s->stale_reads = stale_reads;
    g_sim = s;
    srand((unsigned)seed); /* replica's forwarding backoff jitter */
    uv_loop_init(&s->loop);
    raft_fixture_initialize(&s->f);
    for (unsigned i = 0; i < N_NODES; i++) {
        node *n = &s->nodes[i];
        n->s = s;
        n->index = i;
        config_defaults(&n->cfg);
        n->cfg.id = i + 1;
        n->cfg.persistence = PERSISTENCE_DURABLE;
        snprintf(n->cfg.listen_http, sizeof(n->cfg.listen_http), "sim-node-%u:80", i + 1);
        n->cfg.write_timeout = 2.0;
        kv_store_init(&n->store, seed + i);
        replica_env env = {.mono_ms = clock_mono,
                           .wall_ms = clock_wall,
                           .clock_ctx = s,
                           .peer = &sim_peers,
                           .peer_ctx = n};
        replica_create_detached(&n->r, &s->loop, &n->cfg, &n->store, &env);
        raft_fixture_grow(&s->f, replica_fsm(n->r));
        struct raft *raft = raft_fixture_get(&s->f, i);
        raft_set_snapshot_threshold(raft, 64 + (unsigned)(seed % 64));
        raft_set_snapshot_trailing(raft, 16);
        replica_attach(n->r, raft);
        hook_fixture_io(n, raft->io);
        raft_fixture_set_randomized_election_timeout(&s->f, i, 1000 + rng_below(&s->rng, 1000));
    }
    struct raft_configuration conf;
    raft_fixture_configuration(&s->f, N_NODES, &conf);
    raft_fixture_bootstrap(&s->f, &conf);
    raft_configuration_close(&conf);
    raft_fixture_start(&s->f);
    for (unsigned k = 0; k < N_KEYS; k++) {
        s->clients[k].s = s;
        s->clients[k].key = k;
        snprintf(s->clients[k].keybuf, sizeof(s->clients[k].keybuf), "k%u", k);
    }

    int64_t fault_end = 3000; /* let the first leader settle */
    bool fault_on = false;
    uint64_t max_steps = target_ops * 400 + 100000;
    while (!s->failed && s->ops_ok + s->ops_failed < target_ops && s->steps < max_steps) {
        sim_step(s);
        maybe_fault(s, &fault_end, &fault_on);
        for (unsigned k = 0; k < N_KEYS; k++)
            if (!s->clients[k].busy && rng_below(&s->rng, 4) == 0) client_start(s, &s->clients[k]);
    }
    /* heal, let every client finish, then let the cluster converge */
    heal(s);
    int64_t until = sim_now(s) + 30000;
    while (!s->failed && sim_now(s) < until) {
        sim_step(s);
        bool busy = false;
        for (unsigned k = 0; k < N_KEYS; k++) busy |= s->clients[k].busy;
        if (busy) continue;
        uint64_t a0 = replica_applied_index(s->nodes[0].r);
        bool same = raft_fixture_leader_index(&s->f) < N_NODES;
        for (unsigned i = 1; i < N_NODES; i++) same &= replica_applied_index(s->nodes[i].r) == a0;
        if (same && sim_now(s) + 25000 < until) until = sim_now(s) + 500; /* a little more */
    }
    if (!s->failed) check_converged(s);
    for (unsigned i = 0; i < N_NODES; i++) {
        replica_status_info st;
        replica_get_status(s->nodes[i].r, &st);
        s->snapshots += st.snapshots_taken;
    }
    if (!s->failed && s->ops_ok < target_ops / 4)
        sim_fail(s, "too little progress: %llu of %llu operations succeeded",
                 (unsigned long long)s->ops_ok, (unsigned long long)(s->ops_ok + s->ops_failed));

    if (s->failed || verbose)
        fprintf(stderr,
                "sim seed %llu: %s%s; ops %llu ok (%llu writes, %llu reads), %llu failed, "
                "faults %llu, leaders %llu, snapshots %llu, installs %llu, steps %llu, "
                "simulated %.1f s\n",
                (unsigned long long)seed, s->failed ? "FAILED: " : "ok", s->why,
                (unsigned long long)s->ops_ok, (unsigned long long)s->writes_ok,
                (unsigned long long)s->reads_ok, (unsigned long long)s->ops_failed,
                (unsigned long long)s->faults, (unsigned long long)s->leader_changes,
                (unsigned long long)s->snapshots, (unsigned long long)s->installs,
                (unsigned long long)s->steps, (double)sim_now(s) / 1000.0);
    int rc = s->failed ? 1 : 0;
    *ops_out += s->ops_ok + s->ops_failed;
    *faults_out += s->faults;

    /* teardown: libraft first (it fails what is pending), then replicas */
    for (unsigned k = 0; k < N_KEYS; k++) {
        if (s->clients[k].busy) replica_cancel(&s->clients[k].req);
    }
    raft_fixture_close(&s->f);
    uv_run(&s->loop, UV_RUN_NOWAIT);
    for (unsigned i = 0; i < N_NODES; i++) replica_close(s->nodes[i].r, sim_closed, NULL);
    while (s->msgs) {
        peer_msg *m = s->msgs;
        s->msgs = m->next;
        if (m->phase == MSG_AT_TARGET) replica_cancel(&m->rreq);
        replica_req_close(&m->rreq);
        buf_close(&m->body);
        buf_close(&m->resp);
        free(m);
    }
    uv_run(&s->loop, UV_RUN_DEFAULT);
    for (unsigned i = 0; i < N_NODES; i++) {
        replica_destroy(s->nodes[i].r);
        kv_store_close(&s->nodes[i].store);
    }
    for (unsigned k = 0; k < N_KEYS; k++) {
        replica_req_close(&s->clients[k].req);
        free(s->clients[k].writes);
    }
    uv_loop_close(&s->loop);
    free(s);
    return rc;
}

int main(int argc, char **argv)
{
    uint64_t first = 1, last = 1, ops = 2000;
    bool random_seed = false, stale_reads = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            first = last = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc) {
            char *dash = NULL;
            first = strtoull(argv[++i], &dash, 10);
            last = dash && *dash == '-' ? strtoull(dash + 1, NULL, 10) : first;
        } else if (strcmp(argv[i], "--stale-reads") == 0) {
            stale_reads = true;
        } else if (strcmp(argv[i], "--random") == 0) {
            random_seed = true;
        } else if (strcmp(argv[i], "--ops") == 0 && i + 1 < argc) {
            ops = strtoull(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: sim [--seed N | --seeds A-B | --random] [--ops N] "
                            "[--stale-reads]\n");
            return 2;
        }
    }
    if (random_seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        first = last = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20);
        fprintf(stderr, "sim: random seed %llu\n", (unsigned long long)first);
    }
    log_setup(LOG_LEVEL_ERROR, 0);
    int failures = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t total_ops = 0, total_faults = 0;
    for (uint64_t seed = first; seed <= last; seed++)
        failures += sim_run(seed, ops, stale_reads, true, &total_ops, &total_faults);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr,
            "sim: %llu seeds, %d failed; %llu client operations, %llu faults in %.1f s "
            "(%.0f simulated operations per second)\n",
            (unsigned long long)(last - first + 1), failures, (unsigned long long)total_ops,
            (unsigned long long)total_faults, secs, secs > 0 ? (double)total_ops / secs : 0.0);
    return failures ? 1 : 0;
}
