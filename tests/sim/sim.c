/* sim: the real replica and kv code of three nodes in one process, on a
 * simulated disk and network (sim_io), driven by one seeded schedule
 * (issue 11, the deterministic simulator).
 *
 * What runs for real: libraft, the replica (proposals, forwarding from
 * followers to the leader, linearizable reads by barrier and read-index,
 * the member table, snapshots taken in process, the snapshot handoff), the
 * kv store and command codec, and restarts from what a node's disk kept.
 * What is simulated: time (the world's clock is every replica's clock),
 * libraft's disk and network (sim_io), and the followers' HTTP forwarding
 * (an in-memory peer with the HTTP handler's status mapping, carried over
 * the same links, so a cut link cuts forwarding too).
 *
 * The schedule: clients, two per key, each with one operation at a time
 * (so the two race on their key): writes of increasing values through a
 * random node, linearizable reads through a random node. Faults, one at a time, mostly on the
 * leader: a node cut off both ways, a node that cannot send (one-way), a node frozen (kill -STOP),
 * a crash that loses every disk write not yet completed followed by a restart from the disk, lossy
 * links (dropped messages), and latency with jitter (messages overtake each other). After every
 * step: at most one leader per term. Every read is checked as it completes: it must return a value
 * some write had been invoked for, and no write that completed before the read began may be newer
 * than the write it saw (see check_read). At the end, after healing and restarting: every node
 * applies the same index, holds byte-identical state (the snapshot
 * serialisation), and each key's final value passes the same check as a
 * read (no acknowledged write lost). With --history-dir DIR every
 * operation is also written to DIR/sim-seed-N.jsonl in the format of
 * tests/jepsen/checker.py, which checks the whole history for
 * linearizability (tests/sim/check_histories.sh).
 *
 * Usage: sim [--seed N | --seeds A-B | --random] [--ops N] [--stale-reads]
 *            [--stale-bookmarks] [--no-match-guard] [--trace-key K] [--history-dir DIR]
 *            [--diverge] [--ttl] [--ignore-ttl] [--local-clock-reads] [--no-settle]
 *            [--cut-after-promotion] [--disk-faults] [--no-failstop]
 * Exit status 0 when every seed passed; a failure prints its seed, and
 * `sim --seed N` replays it exactly. Negative controls the checker must
 * reject: --stale-reads (linearizable reads skip the leader check),
 * --stale-bookmarks (reads at a bookmark ignore it), --no-match-guard
 * (libraft 0.15 without cairn's correction: docs/design.md), --diverge
 * (one node's state changed behind Raft's back at 5 s), --ignore-ttl
 * (PUTs meant to expire are sent without their TTL), --local-clock-reads
 * (with --ttl: a read judges expiry by its node's clock, not by the time
 * its leader confirmed it: docs/design.md, "Expiry"), --no-settle (with
 * --ttl: a read served before the writes in flight applied stands even when
 * it hid an expired entry). --disk-faults adds a fault that makes a node's
 * disk fail its writes (storage_failstop stops the node as in production;
 * the fault's end restarts it) and lets a crash leave part of the write in
 * progress on the disk; --no-failstop (a control) leaves failed writes to
 * libraft 0.15, which crashes on them. */
#include <errno.h>
#include <inttypes.h>
#include <raft.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "kv/snapshot.h"
#include "kv/store.h"
#include "obs/log.h"
#include "replica/replica.h"
#include "replica/replica_internal.h" /* --no-match-guard reaches in */
#include "sim_io.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/config.h"
#include "util/hash.h"

#define N_NODES 3
#define N_KEYS 6
#define CLIENTS_PER_KEY 2
#define N_CLIENTS (N_KEYS * CLIENTS_PER_KEY)
#define POLL_MS 10
#define WALL_BASE_MS 1800000000000LL /* a fixed wall clock: replays are exact */

typedef struct sim sim;

/* ---- random numbers: one stream per run, nothing else is random ---------- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static unsigned rng_below(uint64_t *s, unsigned n)
{
    return (unsigned)(rng_next(s) % n);
}

/* ---- state ------------------------------------------------------------------ */

enum { MSG_REQUEST, MSG_AT_TARGET, MSG_RESPONSE, MSG_LOST, MSG_DONE };

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

enum { NODE_UP, NODE_CLOSING, NODE_DOWN };

typedef struct node {
    sim *s;
    unsigned index;
    uint64_t digested; /* the last applied index whose state was digested */
    int state;
    cairn_config cfg;
    kv_store store;
    replica *r;
    struct raft *raft;
    bool cut_out; /* cannot send to the others */
    bool cut_in;  /* cannot receive from them */
    unsigned restarts;
} node;

typedef struct write_rec {
    int64_t value;
    int64_t inv_ms, ack_ms; /* ack_ms: INT64_MAX unless acknowledged OK */
    bool refused;           /* a compare-and-set answered "not applied" */
    bool is_del;            /* a DEL: the key absent afterwards */
    int64_t expire_ms;      /* a PUT with a TTL: absent from then on (0: none) */
} write_rec;

/* A key and every write any client invoked on it, in invocation order;
 * values are unique per key (1, 2, 3, ...). */
typedef struct key_hist {
    unsigned key;
    char keybuf[16];
    write_rec *writes;
    size_t n_writes, cap_writes;
} key_hist;

typedef struct client {
    sim *s;
    unsigned id;  /* c<id> in the history */
    unsigned key; /* its key: kh */
    key_hist *kh;
    size_t my_write; /* the record of the write in flight */
    bool busy;
    bool is_write;
    bool is_cas;       /* a write only if the key is still as last read */
    bool is_del;       /* a write that removes the key */
    bool is_bookmark;  /* a stale read at the revision of the client's last write */
    bool has_acked;    /* a write of this client was acknowledged: */
    size_t last_acked; /* its record, and the revision it produced */
    uint64_t last_acked_rev;
    bool has_seen;     /* a read succeeded: seen_rev, seen_value */
    uint64_t seen_rev; /* its mod revision (0: absent) */
    int64_t seen_value, cas_expects;
    int64_t inv_ms;
    unsigned via; /* node index */
    int64_t value;
    replica_req req;
    kv_command cmd;
    kv_slice args[2];
    char valbuf[32];
} client;

struct sim {
    uint64_t seed, rng;
    sim_world *w;
    uv_loop_t loop;
    node nodes[N_NODES];
    key_hist keys[N_KEYS];
    client clients[N_CLIENTS];
    peer_msg *msgs;
    /* posted while peer_run walks msgs (a completion that starts another
     * request): joined to msgs after the walk, which unlinks through
     * pointers a push at the head would invalidate */
    peer_msg *incoming;
    unsigned latency_ms;
    int64_t next_poll_ms;
    raft_id leader_of_term[8192];
    /* the fault in force */
    bool fault_on;
    int fault_kind;
    unsigned fault_node;
    int64_t fault_end;
    /* counts */
    uint64_t ops_ok, ops_failed, reads_ok, writes_ok, faults, steps, leader_changes;
    uint64_t crashes, snapshots, cas_ok, cas_refused, transfers, dels_ok, bookmark_reads;
    uint64_t failstops; /* nodes stopped by storage_failstop on a failed log write */
    bool transfer_pending;
    /* FAULT_MEMBER: an operator removes a member, wipes it, adds it back */
    int member_phase;
    unsigned member_node;
    int64_t member_next_ms;
    bool member_pending;     /* a change is in flight: wait for its answer */
    int member_status;       /* its answer */
    bool member_answered;    /* unread answer */
    uint64_t member_changes; /* members removed, wiped and added back */
    unsigned cut_leader;     /* --cut-after-promotion */
    int64_t cut_start;
    uint64_t promotion_cuts, cut_elected, cut_stalled, cut_elect_ms;
    uint64_t target_ops;
    bool stale_reads;    /* negative control: the checker must catch these */
    int trace_key;       /* --trace-key: print this key's operations, and faults */
    bool no_match_guard; /* --no-match-guard: show what the guard prevents */
    bool failed;
    char why[512];
    /* applied state identical at equal indexes: the digest of the state
     * of the first node seen at applied index k, per k (0: none yet) */
    uint32_t *digests;
    size_t n_digests;
    uint64_t digest_checks, majority_checks;
    uint64_t ttl_writes;
    uint64_t settled_reads; /* reads answered again by replica_read_settle */
    FILE *history;          /* --history-dir: every operation, for tests/jepsen/checker.py */
    uint64_t history_ids;
};

static sim *g_sim;             /* the run in progress (storage_failstop's stop finds it) */
static bool g_stale_bookmarks; /* negative control: bookmarks ignored */
static bool g_ttl;             /* --ttl: a fifth of the plain PUTs expire (docs/verification.md) */
static bool g_ignore_ttl;      /* negative control: TTLs checked but never sent */
static bool g_local_clock_reads; /* negative control: reads judge expiry by the local clock */
static bool g_no_settle; /* negative control: an unsettled read that hid an expired entry stands */
static bool g_disk_faults; /* --disk-faults: failing disks and torn writes (docs/verification.md) */
static bool g_no_failstop; /* --no-failstop: libraft 0.15 sees failed log writes itself */

static int64_t sim_now(sim *s)
{
    return sim_world_now(s->w);
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

/* Can node a reach node b now (a process that answers, on a link that
 * carries)? The same links carry Raft and forwarding. */
static bool reachable(sim *s, unsigned a, unsigned b)
{
    return s->nodes[a].state == NODE_UP && s->nodes[b].state == NODE_UP &&
           !sim_world_frozen(s->w, a) && !sim_world_frozen(s->w, b) && sim_world_linked(s->w, a, b);
}

/* ---- the in-memory peer (a follower's forwarding to the leader) ----------- */

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
        char answer[64];
        buf_append(&m->resp, answer, (size_t)replica_read_index_answer(rr, answer, sizeof(answer)));
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
    bool propose = strcmp(path, "/internal/v1/propose") == 0;
    if ((!propose && strcmp(path, "/internal/v1/read-index") != 0) || peer_id < 1 ||
        peer_id > N_NODES)
        return NULL; /* admin paths are not simulated */
    peer_msg *m = xcalloc(1, sizeof(*m));
    m->s = s;
    m->from = from->index;
    m->to = (unsigned)(peer_id - 1);
    m->propose = propose;
    m->phase = MSG_REQUEST;
    m->due_ms = sim_now(s) + s->latency_ms;
    m->deadline_ms = sim_now(s) + (int64_t)(timeout_s * 1000);
    buf_init(&m->body);
    buf_init(&m->resp);
    buf_append(&m->body, body, len);
    m->cb = cb;
    m->cb_ctx = cb_ctx;
    m->next = s->incoming;
    s->incoming = m;
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
    case MSG_REQUEST: {
        if (m->cancelled) {
            m->phase = MSG_DONE;
            return;
        }
        if (!reachable(s, m->from, m->to)) {
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
                m->phase = MSG_LOST;
                return;
            }
            st = replica_propose_here(t->r, &m->rreq, &cmd);
        } else {
            st = replica_read_index(t->r, &m->rreq);
        }
        if (st != REPLICA_OK) peer_answered(&m->rreq, st);
        return;
    }
    case MSG_RESPONSE:
        if (m->cancelled) {
            m->phase = MSG_DONE;
        } else if (reachable(s, m->to, m->from)) {
            m->phase = MSG_DONE;
            m->cb(m->cb_ctx, FORWARD_OK, true, m->http_status, m->resp.data, m->resp.len);
        } else {
            m->phase = MSG_LOST;
        }
        return;
    case MSG_LOST:
        if (m->cancelled) {
            m->phase = MSG_DONE;
        } else if (now >= m->deadline_ms && s->nodes[m->from].state == NODE_UP &&
                   !sim_world_frozen(s->w, m->from)) {
            m->phase = MSG_DONE;
            m->cb(m->cb_ctx, FORWARD_ERR_TIMEOUT, true, 0, NULL, 0);
        }
        return;
    }
}

static void peer_msg_free(peer_msg *m)
{
    replica_req_close(&m->rreq);
    buf_close(&m->body);
    buf_close(&m->resp);
    free(m);
}

/* newest first, as a push at the head of msgs would have put them */
static void peer_join_incoming(sim *s)
{
    if (!s->incoming) return;
    peer_msg *tail = s->incoming;
    while (tail->next) tail = tail->next;
    tail->next = s->msgs;
    s->msgs = s->incoming;
    s->incoming = NULL;
}

static void peer_run(sim *s)
{
    int64_t now = sim_now(s);
    peer_join_incoming(s);
    for (peer_msg **pm = &s->msgs; *pm;) {
        peer_msg *m = *pm;
        bool due = (m->phase == MSG_REQUEST || m->phase == MSG_RESPONSE) && m->due_ms <= now;
        if (due || m->phase == MSG_LOST) peer_deliver(s, m);
        if (m->phase == MSG_DONE) {
            *pm = m->next;
            peer_msg_free(m);
            continue;
        }
        pm = &m->next;
    }
    peer_join_incoming(s);
}

/* ---- history checks ----------------------------------------------------- */

static const write_rec *find_write(const client *c, int64_t value)
{
    for (size_t i = 0; i < c->kh->n_writes; i++)
        if (c->kh->writes[i].value == value && !c->kh->writes[i].is_del) return &c->kh->writes[i];
    return NULL;
}

/* Whether a linearizable read over [read_inv, read_done] may have seen
 * what write w left (w NULL: the key before any write). Not if w began
 * after the read ended or was refused, nor if another write began after w
 * was acknowledged and was itself acknowledged before the read began: that
 * one must lie between them. Writes that failed or timed out may apply at
 * any later time; all writes of a key have distinct values. */
static const write_rec *between(const client *c, const write_rec *w, int64_t read_inv)
{
    int64_t w_ack = w ? w->ack_ms : -1;
    for (size_t i = 0; i < c->kh->n_writes; i++) {
        const write_rec *o = &c->kh->writes[i];
        if (o == w || o->ack_ms == INT64_MAX || o->refused) continue;
        if (o->inv_ms > w_ack && o->ack_ms < read_inv) return o;
    }
    return NULL;
}

static bool may_see(const client *c, const write_rec *w, int64_t read_inv, int64_t read_done)
{
    if (w && (w->refused || w->inv_ms > read_done)) return false;
    return between(c, w, read_inv) == NULL;
}

/* A linearizable read (or what an applied CAS expected) that returned got
 * (0: the key was absent). Absent is what the key was before any write and
 * after every DEL: one of them must fit. */
/* The expiry of a PUT with a TTL, as a write of "absent": it takes effect
 * at the expiry time, or when the PUT is applied if that is later. */
static write_rec expiry_of(const write_rec *w)
{
    int64_t end = w->ack_ms == INT64_MAX     ? INT64_MAX
                  : w->ack_ms > w->expire_ms ? w->ack_ms
                                             : w->expire_ms;
    return (write_rec){0, w->expire_ms, end, w->refused, true, 0};
}

static void check_read(sim *s, client *c, int64_t got, int64_t read_inv, int64_t read_done)
{
    if (got == 0) {
        if (may_see(c, NULL, read_inv, read_done)) return;
        for (size_t i = 0; i < c->kh->n_writes; i++) {
            const write_rec *w = &c->kh->writes[i];
            if (w->is_del && may_see(c, w, read_inv, read_done)) return;
            if (w->expire_ms) {
                write_rec x = expiry_of(w);
                if (may_see(c, &x, read_inv, read_done)) return;
            }
        }
        sim_fail(s,
                 "key %u: stale read at %" PRId64 " ms: saw the key absent, which no DEL "
                 "or expiry explains",
                 c->key, read_inv);
        return;
    }
    const write_rec *w = find_write(c, got);
    if (!w || w->inv_ms > read_done) {
        sim_fail(s, "key %u: read returned %" PRId64 ", which no write had begun", c->key, got);
        return;
    }
    if (w->refused) {
        sim_fail(s, "key %u: read returned %" PRId64 ", whose compare-and-set was refused", c->key,
                 got);
        return;
    }
    if (w->expire_ms && read_inv >= w->expire_ms) {
        sim_fail(s,
                 "key %u: read at %" PRId64 " ms returned %" PRId64 ", which expired at %" PRId64
                 " ms",
                 c->key, read_inv, got, w->expire_ms);
        return;
    }
    const write_rec *o = between(c, w, read_inv);
    if (o)
        sim_fail(s,
                 "key %u: stale read at %" PRId64 " ms: saw %" PRId64 " but %s%" PRId64
                 " was written (%" PRId64 "-%" PRId64 " ms) after it and before the read",
                 c->key, read_inv, got, o->is_del ? "DEL " : "", o->value, o->inv_ms, o->ack_ms);
}

/* A read at a bookmark (stale, but at least at the revision of the
 * client's own acknowledged write b) must not see anything older than b:
 * what it saw is b, or a write that may follow b (not one acknowledged
 * before b began). */
static void check_bookmark(sim *s, client *c, int64_t got, const write_rec *b)
{
    const write_rec *w = got ? find_write(c, got) : NULL;
    if (got && !w) {
        sim_fail(s, "key %u: bookmark read returned %" PRId64 ", which no write had begun", c->key,
                 got);
        return;
    }
    bool ok;
    if (got && w->expire_ms && c->inv_ms >= w->expire_ms) {
        sim_fail(s,
                 "key %u: bookmark read at %" PRId64 " ms returned %" PRId64 ", which expired at "
                 "%" PRId64 " ms",
                 c->key, c->inv_ms, got, w->expire_ms);
        return;
    }
    if (got) {
        ok = w == b || w->ack_ms >= b->inv_ms; /* b, or a write that may follow it */
    } else { /* absent: a DEL that may follow b (or b itself), or the expiry
              * of such a write, due by the end of the read */
        ok = false;
        for (size_t i = 0; i < c->kh->n_writes && !ok; i++) {
            const write_rec *d = &c->kh->writes[i];
            bool follows = d == b || d->ack_ms >= b->inv_ms;
            ok = follows && (d->is_del || (d->expire_ms && d->expire_ms <= sim_now(s)));
        }
    }
    if (!ok)
        sim_fail(s,
                 "key %u: stale read at a bookmark: saw %" PRId64 ", older than the client's "
                 "own write %" PRId64 " (%" PRId64 "-%" PRId64 " ms)",
                 c->key, got, b->value, b->inv_ms, b->ack_ms);
}

/* ---- nodes: boot, crash, restart ------------------------------------------- */

static void trace_change(void *ctx, const kv_change *c)
{
    node *n = ctx;
    char want[16];
    snprintf(want, sizeof(want), "k%d", n->s->trace_key);
    if (c->key_len != strlen(want) || memcmp(c->key, want, c->key_len) != 0) return;
    fprintf(stderr, "%8lld node %u applies %s=%.*s (revision %llu, raft applied %llu)\n",
            (long long)sim_now(n->s), n->index + 1, want, (int)c->value_len,
            c->value ? c->value : "", (unsigned long long)c->revision,
            (unsigned long long)(n->raft ? raft_last_applied(n->raft) : 0));
}

static void node_crash(sim *s, node *n);

/* storage_failstop's stop: production exits the process; here the node
 * crashes (its pending writes are lost) and libraft, now closing, is told
 * the failed append is done, as the simulated disk tells a crashed node
 * about every pending one (sim_io.c, cancel_run). */
static int node_failstop(storage_failstop *f, int status)
{
    (void)status;
    replica *r = (replica *)((char *)f - offsetof(replica, failstop));
    for (unsigned i = 0; i < N_NODES; i++) {
        node *n = &g_sim->nodes[i];
        if (n->r != r) continue;
        g_sim->failstops++;
        if (g_sim->trace_key >= 0)
            fprintf(stderr, "%8lld node %u stops: its log write failed\n",
                    (long long)sim_now(g_sim), i + 1);
        node_crash(g_sim, n);
        return 0;
    }
    abort();
}

static void node_boot(sim *s, node *n, const struct raft_configuration *bootstrap)
{
    kv_store_init(&n->store, s->seed + n->index);
    if (s->trace_key >= 0) {
        n->store.on_change = trace_change;
        n->store.on_change_ctx = n;
    }
    replica_env env = {.mono_ms = clock_mono,
                       .wall_ms = clock_wall,
                       .clock_ctx = s,
                       .peer = &sim_peers,
                       .peer_ctx = n};
    replica_create_detached(&n->r, &s->loop, &n->cfg, &n->store, &env);
    n->raft = xcalloc(1, sizeof(*n->raft));
    char address[32];
    snprintf(address, sizeof(address), "sim-%u", n->index + 1);
    if (raft_init(n->raft, sim_world_io(s->w, n->index), replica_fsm(n->r), n->index + 1,
                  address) != 0)
        abort();
    raft_set_election_timeout(n->raft, 1000);
    raft_set_heartbeat_timeout(n->raft, 100);
    raft_set_snapshot_threshold(n->raft, 64 + (unsigned)(s->seed % 64));
    raft_set_snapshot_trailing(n->raft, 16);
    raft_set_pre_vote(n->raft, true);
    raft_set_install_snapshot_timeout(n->raft, 3000);
    replica_attach(n->r, n->raft);
    /* as in production: a failed log write stops the node (here: crashes
     * it; the fault's end restarts it, as the unit's Restart= does) */
    if (!g_no_failstop) {
        storage_failstop_install(&n->r->failstop, sim_world_io(s->w, n->index), "sim");
        n->r->failstop.stop = node_failstop;
    }
    if (s->no_match_guard) match_guard_remove(&n->r->match); /* libraft 0.15 as it is */
    if (bootstrap && raft_bootstrap(n->raft, bootstrap) != 0) abort();
    int rv = raft_start(n->raft);
    if (rv != 0) {
        sim_fail(s, "node %u does not start from its disk: %s (%s)", n->index + 1,
                 raft_errmsg(n->raft), raft_strerror(rv));
        return;
    }
    n->state = NODE_UP;
}

static void node_replica_closed(void *ctx)
{
    node *n = ctx;
    replica_destroy(n->r);
    kv_store_close(&n->store);
    n->r = NULL;
    free(n->raft);
    n->raft = NULL;
    n->state = NODE_DOWN;
}

/* libraft closes in steps; the replica goes once libraft is done with it
 * (a detached replica's contract: close libraft first). */
static node *g_closing[N_NODES];

static void node_libraft_closed(struct raft *raft)
{
    for (unsigned k = 0; k < N_NODES; k++) {
        node *n = g_closing[k];
        if (n && n->raft == raft) {
            g_closing[k] = NULL;
            replica_close(n->r, node_replica_closed, n);
            return;
        }
    }
    abort();
}

static void node_close(node *n)
{
    n->state = NODE_CLOSING;
    g_closing[n->index] = n;
    raft_close(n->raft, node_libraft_closed);
}

/* A crash: the disk keeps what had completed; everything else is gone. */
static void node_crash(sim *s, node *n)
{
    sim_world_crash(s->w, n->index);
    node_close(n);
    s->crashes++;
}

static void node_restart(sim *s, node *n)
{
    sim_world_revive(s->w, n->index);
    n->restarts++;
    node_boot(s, n, NULL);
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

static void trace_nodes(sim *s)
{
    for (unsigned i = 0; i < N_NODES; i++) {
        node *n = &s->nodes[i];
        if (n->state != NODE_UP) {
            fprintf(stderr, " [%u down]", i + 1);
            continue;
        }
        fprintf(stderr, " [%u %s t%llu l%llu c%llu a%llu%s]", i + 1,
                raft_state(n->raft) == RAFT_LEADER      ? "L"
                : raft_state(n->raft) == RAFT_CANDIDATE ? "C"
                                                        : "F",
                (unsigned long long)n->raft->current_term,
                (unsigned long long)raft_last_index(n->raft),
                (unsigned long long)n->raft->commit_index,
                (unsigned long long)replica_applied_index(n->r),
                sim_world_frozen(s->w, i) ? " frozen" : "");
    }
    fprintf(stderr, "\n");
}

static void trace_op(sim *s, client *c, int status, int64_t got)
{
    if ((int)c->key != s->trace_key) return;
    fprintf(stderr, "%8lld k%u %s via %u [%lld-%lld] status %d value %lld:", (long long)sim_now(s),
            c->key, c->is_write ? "write" : "read ", c->via + 1, (long long)c->inv_ms,
            (long long)sim_now(s), status, (long long)(c->is_write ? c->value : got));
    trace_nodes(s);
}

/* ---- the history, in the format of tests/jepsen/checker.py ------------------------ */

/* Failures that cairn promises mean "not applied" (SPEC: 503 no leader,
 * not the leader, too many requests in flight, disk almost full); the
 * checker holds cairn to that. Every other failure may have applied. */
static bool status_not_applied(int status)
{
    return status == REPLICA_ERR_BUSY || status == REPLICA_ERR_NO_LEADER ||
           status == REPLICA_ERR_NOT_LEADER || status == REPLICA_ERR_NOSPACE ||
           status == REPLICA_ERR_NOT_APPLIED;
}

static void history_value(FILE *f, const char *name, int64_t v)
{
    if (v)
        fprintf(f, ",\"%s\":%" PRId64, name, v);
    else
        fprintf(f, ",\"%s\":null", name); /* 0: the key absent */
}

/* One finished operation: outcome "ok", "fail" (certainly not applied) or
 * "info" (may have applied). Reads at a bookmark are not linearizable
 * and are checked on their own (check_bookmark). */
static void history_op(sim *s, client *c, const char *outcome, bool cas_applied, int64_t got)
{
    if (!s->history || (!c->is_write && c->is_bookmark)) return;
    if (!c->is_write && strcmp(outcome, "ok") != 0) return; /* a failed read saw nothing */
    FILE *f = s->history;
    const char *fn = !c->is_write ? "read" : c->is_cas ? "cas" : "write";
    fprintf(f,
            "{\"id\":%" PRIu64
            ",\"key\":\"%s\",\"f\":\"%s\",\"client\":\"c%u\",\"node\":%u,\"proto\":\"sim\"",
            ++s->history_ids, c->kh->keybuf, fn, c->id, c->via + 1);
    if (c->is_write) history_value(f, "value", c->is_del ? 0 : c->value);
    if (c->is_write && c->is_cas) history_value(f, "expect", c->cas_expects);
    fprintf(f, ",\"outcome\":\"%s\"", outcome);
    if (!c->is_write)
        history_value(f, "result", got);
    else if (c->is_cas && strcmp(outcome, "ok") == 0)
        fprintf(f, ",\"result\":%s", cas_applied ? "true" : "false");
    /* simulated ms, written as ns like the harness's monotonic clock */
    fprintf(f, ",\"inv\":%" PRId64 "000000", c->inv_ms);
    if (strcmp(outcome, "info") == 0)
        fprintf(f, ",\"cmp\":null}\n");
    else
        fprintf(f, ",\"cmp\":%" PRId64 "000000}\n", sim_now(s));
    /* a PUT with a TTL that may have applied: its expiry is a write of
     * "absent" that may happen any time from the expiry on (the checker
     * has no clock; "may" keeps the check sound, the read checks above
     * hold the expiry to its time) */
    const write_rec *w = c->is_write ? &c->kh->writes[c->my_write] : NULL;
    if (w && w->expire_ms && strcmp(outcome, "fail") != 0)
        fprintf(f,
                "{\"id\":%" PRIu64 ",\"key\":\"%s\",\"f\":\"write\",\"client\":\"expiry\","
                "\"proto\":\"sim\",\"value\":null,\"outcome\":\"info\",\"inv\":%" PRId64
                "000000,\"cmp\":null}\n",
                ++s->history_ids, c->kh->keybuf, w->expire_ms);
}

static void client_done(replica_req *req, int status)
{
    client *c = req->data;
    sim *s = c->s;
    int64_t now = sim_now(s);
    c->busy = false;
    if (c->is_write || status != REPLICA_OK) trace_op(s, c, status, 0);
    if (status != REPLICA_OK) {
        s->ops_failed++;
        history_op(s, c, status_not_applied(status) ? "fail" : "info", false, 0);
        return; /* a failed write stays "maybe": ack_ms INT64_MAX */
    }
    s->ops_ok++;
    if (c->is_write) {
        write_rec *w = &c->kh->writes[c->my_write];
        if (c->is_cas && req->result.status == KV_ERR_PRECONDITION) {
            w->refused = true; /* it must never be seen */
            s->cas_refused++;
            history_op(s, c, "ok", false, 0);
            return;
        }
        if (req->result.status != KV_OK) {
            sim_fail(s, "key %u: write answered status %d", c->key, (int)req->result.status);
            return;
        }
        s->writes_ok++;
        history_op(s, c, "ok", true, 0);
        w->ack_ms = now;
        c->has_acked = true;
        c->last_acked = c->my_write;
        c->last_acked_rev = req->result.revision;
        if (c->is_del) s->dels_ok++;
        if (c->is_cas) {
            /* applied: just before it, the key held what it expected, so
             * the CAS is also a read of that value over its own span */
            s->cas_ok++;
            check_read(s, c, c->cas_expects, c->inv_ms, now);
        }
        return;
    }
    s->reads_ok++;
    node *n = &s->nodes[c->via];
    int64_t judged_at = g_local_clock_reads ? WALL_BASE_MS + now : c->req.read_ms;
    uint64_t hidden = n->store.hidden_expired;
    kv_entry *e = kv_store_get(&n->store, c->kh->keybuf, strlen(c->kh->keybuf), judged_at);
    if (c->req.read_unsettled && n->store.hidden_expired != hidden && !g_no_settle) {
        /* as the APIs do: an answer that hid an expired entry while
         * earlier writes were in flight is read again once they applied */
        s->reads_ok--;
        s->ops_ok--;
        s->settled_reads++;
        c->busy = true;
        int st = replica_read_settle(n->r, &c->req);
        if (st != REPLICA_OK) client_done(&c->req, st);
        return;
    }
    trace_op(s, c, status, parse_value(e));
    history_op(s, c, "ok", false, parse_value(e));
    if (c->is_bookmark) {
        s->bookmark_reads++;
        check_bookmark(s, c, parse_value(e), &c->kh->writes[c->last_acked]);
    } else {
        check_read(s, c, parse_value(e), c->inv_ms, now);
    }
    c->has_seen = true;
    c->seen_rev = e ? e->mod_rev : 0;
    c->seen_value = parse_value(e);
}

static void client_start(sim *s, client *c)
{
    c->via = rng_below(&s->rng, N_NODES);
    node *n = &s->nodes[c->via];
    if (n->state != NODE_UP || sim_world_frozen(s->w, c->via)) return; /* try again later */
    /* 35 % linearizable reads, 10 % reads at the client's bookmark, 10 %
     * DEL, the rest PUT, half of them compare-and-set once it has read */
    unsigned pick = rng_below(&s->rng, 100);
    c->is_bookmark = pick >= 35 && pick < 45 && c->has_acked;
    c->is_write = pick >= 45;
    c->is_del = pick >= 45 && pick < 55;
    c->inv_ms = sim_now(s);
    c->busy = true;
    replica_req_close(&c->req); /* the last operation's result buffer */
    replica_req_init(&c->req, c, client_done);
    int st;
    if (c->is_write) {
        c->value = (int64_t)c->kh->n_writes + 1;
        if (c->kh->n_writes == c->kh->cap_writes) {
            c->kh->cap_writes = c->kh->cap_writes ? c->kh->cap_writes * 2 : 64;
            c->kh->writes = xrealloc(c->kh->writes, c->kh->cap_writes * sizeof(*c->kh->writes));
        }
        c->my_write = c->kh->n_writes;
        c->kh->writes[c->kh->n_writes++] =
            (write_rec){c->value, c->inv_ms, INT64_MAX, false, c->is_del, 0};
        int vlen = snprintf(c->valbuf, sizeof(c->valbuf), "%" PRId64, c->value);
        c->args[0] = (kv_slice){c->kh->keybuf, strlen(c->kh->keybuf)};
        c->args[1] = (kv_slice){c->valbuf, (size_t)vlen};
        memset(&c->cmd, 0, sizeof(c->cmd));
        c->cmd.op = c->is_del ? KV_OP_DEL : KV_OP_PUT;
        c->cmd.nargs = c->is_del ? 1 : 2;
        c->cmd.args = c->args;
        c->is_cas = !c->is_del && c->has_seen && rng_below(&s->rng, 2) == 0;
        if (c->is_cas) {
            c->cmd.flags = KV_FLAG_IF_REV;
            c->cmd.a = (int64_t)c->seen_rev;
            c->cas_expects = c->seen_value;
        } else if (g_ttl && !c->is_del && rng_below(&s->rng, 5) == 0) {
            /* a PUT with a TTL of 0.1-1.5 s, timed as the HTTP API times
             * it: from the request's arrival (here, the invocation) */
            int64_t ttl = 100 + rng_below(&s->rng, 1400);
            c->cmd.now_ms = WALL_BASE_MS + c->inv_ms;
            if (!g_ignore_ttl) c->cmd.expire_ms = c->cmd.now_ms + ttl;
            c->kh->writes[c->my_write].expire_ms = c->inv_ms + ttl;
            s->ttl_writes++;
        }
        st = replica_propose(n->r, &c->req, &c->cmd);
    } else if (c->is_bookmark) {
        st = replica_read(n->r, &c->req, REPLICA_READ_STALE,
                          g_stale_bookmarks ? 0 : c->last_acked_rev);
    } else {
        st = replica_read(n->r, &c->req,
                          s->stale_reads ? REPLICA_READ_STALE : REPLICA_READ_LINEARIZABLE, 0);
    }
    if (st != REPLICA_OK) {
        c->busy = false;
        s->ops_failed++;
        history_op(s, c, "fail", false, 0); /* refused before anything was proposed */
    }
}

/* ---- faults ---------------------------------------------------------------------- */

enum {
    FAULT_CUT,
    FAULT_CUT_OUT,
    FAULT_FREEZE,
    FAULT_CRASH,
    FAULT_LOSSY,
    FAULT_SLOW,
    FAULT_TRANSFER,
    FAULT_MEMBER,
    FAULT_DISK, /* --disk-faults only: last, so other schedules stay as they were */
    FAULT_KINDS
};
static const char *const fault_names[FAULT_KINDS] = {"cut",  "cut-out",  "freeze", "crash", "lossy",
                                                     "slow", "transfer", "member", "disk"};

static void apply_links(sim *s)
{
    for (unsigned i = 0; i < N_NODES; i++)
        for (unsigned j = 0; j < N_NODES; j++)
            if (i != j) sim_world_link(s->w, i, j, !s->nodes[i].cut_out && !s->nodes[j].cut_in);
}

static void set_latency(sim *s, unsigned base, unsigned jitter)
{
    s->latency_ms = base;
    sim_world_latency(s->w, base, jitter);
}

static unsigned current_leader(sim *s)
{
    unsigned best = N_NODES;
    raft_term term = 0;
    for (unsigned i = 0; i < N_NODES; i++) {
        node *n = &s->nodes[i];
        if (n->state != NODE_UP || raft_state(n->raft) != RAFT_LEADER) continue;
        if (n->raft->current_term >= term) {
            term = n->raft->current_term;
            best = i;
        }
    }
    return best;
}

static void transfer_done(void *ctx, int status, const char *message)
{
    sim *s = ctx;
    (void)message;
    s->transfer_pending = false;
    if (status == 0) s->transfers++;
}

/* ---- membership: remove, wipe, add back ------------------------------------------- */

enum { MEMBER_REMOVING, MEMBER_OUT, MEMBER_ADDING, MEMBER_CUT, MEMBER_DONE };

/* --cut-after-promotion (a diagnostic, off in CI): the moment a replaced
 * member is a voter in the leader's committed configuration, cut the
 * leader off for up to 5 s and see whether the two others elect one. */
static bool g_cut_after_promotion;

static void member_answer(void *ctx, int status, const char *message)
{
    sim *s = ctx;
    (void)message;
    s->member_pending = false;
    s->member_answered = true;
    s->member_status = status;
}

/* Node x's place in node l's configuration, once that configuration is
 * committed: -1 unknown (a change is pending), 0 absent, 1 spare or
 * standby, 2 voter. */
static int member_role(sim *s, unsigned l, unsigned x)
{
    const struct raft *raft = s->nodes[l].raft;
    if (raft->configuration_uncommitted_index != 0) return -1;
    for (unsigned i = 0; i < raft->configuration.n; i++)
        if (raft->configuration.servers[i].id == x + 1)
            return raft->configuration.servers[i].role == RAFT_VOTER ? 2 : 1;
    return 0;
}

/* One step of the operator's procedure, as tests/jepsen's `member` does
 * it: remove the member through the leader and wait until the removal is
 * committed (only then may its data go), stop it, wipe its disk, start it
 * empty and without a bootstrap, add it back through whichever node leads
 * now, and wait until it is a voter again. A change that fails (the
 * leader changed) is retried; what the committed configuration says
 * decides. */
static void member_step(sim *s)
{
    int64_t now = sim_now(s);
    if (s->member_pending || now < s->member_next_ms) return;
    bool failed = s->member_answered && s->member_status != 0;
    s->member_answered = false;
    node *x = &s->nodes[s->member_node];
    unsigned l = current_leader(s);
    if (s->member_phase == MEMBER_CUT) {
        node *old = &s->nodes[s->cut_leader];
        bool elected = l < N_NODES && l != s->cut_leader;
        if (elected || now - s->cut_start >= 5000) {
            if (elected)
                s->cut_elected++, s->cut_elect_ms += (uint64_t)(now - s->cut_start);
            else
                s->cut_stalled++;
            old->cut_in = old->cut_out = false;
            apply_links(s);
            s->member_phase = MEMBER_DONE;
        }
        return;
    }
    if (s->member_phase != MEMBER_OUT && (l >= N_NODES || l == s->member_node)) {
        s->member_next_ms = now + 100; /* wait for a leader (not the member itself) */
        return;
    }
    switch (s->member_phase) {
    case MEMBER_REMOVING: {
        int role = member_role(s, l, s->member_node);
        if (role < 0) break;
        if (role > 0) {
            if (replica_member_remove(s->nodes[l].r, s->member_node + 1, member_answer, s) == 0)
                s->member_pending = true;
            break;
        }
        /* out, and committed: stop it; its data goes once it is down */
        if (x->state == NODE_UP) node_crash(s, x);
        s->member_phase = MEMBER_OUT;
        s->member_next_ms = now + 300 + rng_below(&s->rng, 1500);
        return;
    }
    case MEMBER_OUT:
        if (x->state != NODE_DOWN || l >= N_NODES) break;
        sim_world_wipe(s->w, s->member_node);
        sim_world_revive(s->w, s->member_node);
        node_boot(s, x, NULL); /* empty, no bootstrap: it waits to be contacted */
        s->member_phase = MEMBER_ADDING;
        /* add it */
        __attribute__((fallthrough));
    case MEMBER_ADDING: {
        int role = member_role(s, l, s->member_node);
        if (role == 2) {
            s->member_phase = MEMBER_DONE;
            s->member_changes++;
            if (g_cut_after_promotion) {
                s->cut_leader = l;
                s->cut_start = now;
                s->nodes[l].cut_in = s->nodes[l].cut_out = true;
                apply_links(s);
                s->member_phase = MEMBER_CUT;
                s->promotion_cuts++;
            }
            return;
        }
        if (role < 0 && !failed) break;
        char address[32];
        snprintf(address, sizeof(address), "sim-%u", s->member_node + 1);
        if (replica_member_add(s->nodes[l].r, s->member_node + 1, address, member_answer, s) == 0)
            s->member_pending = true;
        break;
    }
    }
    s->member_next_ms = now + 100;
}

/* End the fault in force. A crashed node restarts from its disk. */
static void fault_heal(sim *s)
{
    if (!s->fault_on) return;
    node *n = &s->nodes[s->fault_node];
    switch (s->fault_kind) {
    case FAULT_CUT:
    case FAULT_CUT_OUT:
        n->cut_in = n->cut_out = false;
        apply_links(s);
        break;
    case FAULT_FREEZE:
        sim_world_freeze(s->w, s->fault_node, false);
        break;
    case FAULT_CRASH:
        if (n->state != NODE_DOWN) return; /* still closing: next step */
        node_restart(s, n);
        if (s->trace_key >= 0) {
            fprintf(stderr, "%8lld node %u restarted:", (long long)sim_now(s), n->index + 1);
            trace_nodes(s);
        }
        break;
    case FAULT_LOSSY:
        sim_world_drop_rate(s->w, 0);
        break;
    case FAULT_SLOW:
        set_latency(s, 15, 0);
        break;
    case FAULT_TRANSFER:
        if (s->transfer_pending) return; /* its answer comes first */
        break;
    case FAULT_MEMBER:
        member_step(s);
        if (s->member_phase != MEMBER_DONE) return; /* not back yet */
        break;
    case FAULT_DISK:
        sim_world_disk_fail(s->w, s->fault_node, false);
        if (n->state == NODE_CLOSING) return;          /* stopping: next step */
        if (n->state == NODE_DOWN) node_restart(s, n); /* a supervisor's restart */
        break;
    }
    s->fault_on = false;
}

/* One fault at a time, three in four on the leader, held for 0.5-3 s;
 * a quiet period of 0.5-2.5 s between two. */
static void maybe_fault(sim *s)
{
    int64_t now = sim_now(s);
    if (s->fault_on && s->fault_kind == FAULT_MEMBER) member_step(s);
    if (s->fault_on) {
        if (now >= s->fault_end) {
            fault_heal(s);
            if (!s->fault_on) s->fault_end = now + 500 + rng_below(&s->rng, 2000);
        }
        return;
    }
    if (now < s->fault_end) return;
    unsigned leader = current_leader(s);
    unsigned victim =
        leader < N_NODES && rng_below(&s->rng, 4) != 0 ? leader : rng_below(&s->rng, N_NODES);
    node *n = &s->nodes[victim];
    if (n->state != NODE_UP) return;
    int kind = (int)rng_below(&s->rng, g_disk_faults ? FAULT_KINDS : FAULT_KINDS - 1);
    switch (kind) {
    case FAULT_CUT:
        n->cut_in = n->cut_out = true;
        apply_links(s);
        break;
    case FAULT_CUT_OUT:
        n->cut_out = true;
        apply_links(s);
        break;
    case FAULT_FREEZE:
        sim_world_freeze(s->w, victim, true);
        break;
    case FAULT_CRASH:
        node_crash(s, n);
        break;
    case FAULT_LOSSY:
        sim_world_drop_rate(s->w, 100 + rng_below(&s->rng, 300));
        break;
    case FAULT_TRANSFER:
        /* an operator's leadership transfer (libraft picks the target) */
        if (raft_state(n->raft) == RAFT_LEADER &&
            replica_transfer_leadership(n->r, 0, transfer_done, s) == 0)
            s->transfer_pending = true;
        break;
    case FAULT_MEMBER:
        if (leader >= N_NODES) return; /* an operator needs a leader */
        s->member_node = victim != leader ? victim : (leader + 1 + rng_below(&s->rng, 2)) % N_NODES;
        s->member_phase = MEMBER_REMOVING;
        s->member_next_ms = 0;
        s->member_answered = false;
        break;
    case FAULT_DISK:
        sim_world_disk_fail(s->w, victim, true);
        break;
    case FAULT_SLOW: {
        /* one draw per statement: argument order is the compiler's */
        unsigned base = 5 + rng_below(&s->rng, 100);
        unsigned jitter = 1 + rng_below(&s->rng, 100);
        set_latency(s, base, jitter);
    } break;
    }
    if (s->trace_key >= 0) {
        fprintf(stderr, "%8lld fault %s on node %u:", (long long)now, fault_names[kind],
                victim + 1);
        trace_nodes(s);
    }
    s->fault_on = true;
    s->fault_kind = kind;
    s->fault_node = victim;
    s->faults++;
    s->fault_end = now + 500 + rng_below(&s->rng, 2500);
}

/* ---- invariants ------------------------------------------------------------------ */

static void check_leaders(sim *s)
{
    for (unsigned i = 0; i < N_NODES; i++) {
        node *n = &s->nodes[i];
        if (n->state != NODE_UP || raft_state(n->raft) != RAFT_LEADER) continue;
        raft_term t = n->raft->current_term;
        if (t >= sizeof(s->leader_of_term) / sizeof(s->leader_of_term[0])) continue;
        raft_id *who = &s->leader_of_term[t];
        if (*who == 0) {
            *who = n->raft->id;
            s->leader_changes++;
        } else if (*who != n->raft->id) {
            sim_fail(s, "two leaders in term %llu: %llu and %llu", (unsigned long long)t,
                     (unsigned long long)*who, (unsigned long long)n->raft->id);
        }
    }
}

/* Invariant: every entry the leader counts as committed is durable (a
 * completed disk write, or inside a snapshot on the disk) on at least two
 * disks, a majority of every configuration the simulator makes (three
 * voters, or two while a member is out). Checked at the leader's commit
 * index after every step; a lost or uncounted write shows up here before
 * any read can notice. */
static void check_committed_on_majority(sim *s)
{
    unsigned l = current_leader(s);
    if (l >= N_NODES) return;
    raft_index c = s->nodes[l].raft->commit_index;
    if (c == 0) return;
    bool covered;
    raft_term t = sim_world_disk_term(s->w, l, c, &covered);
    if (t == 0) return; /* only in the leader's snapshot: its term is not at hand */
    unsigned holders = 0;
    for (unsigned i = 0; i < N_NODES; i++) {
        raft_term ti = sim_world_disk_term(s->w, i, c, &covered);
        holders += covered || ti == t;
    }
    s->majority_checks++;
    if (holders < 2)
        sim_fail(s,
                 "node %u (leader) counts index %llu (term %llu) as committed, but only %u "
                 "disk(s) hold it",
                 l + 1, (unsigned long long)c, (unsigned long long)t, holders);
}

/* Invariant: nodes that applied the same index hold the same state. After
 * every step, the state (the snapshot serialisation) of each node whose
 * applied index moved is digested and compared with what the first node
 * at that index had. Nodes apply in batches of their own, so only the
 * indexes where two of them happen to stop are compared; a divergence,
 * once there, stays and meets such an index soon. */
/* Negative control: from 5 s on, node 2 writes a key no client reads
 * behind Raft's back whenever it has applied something (again after each
 * restart, which would otherwise rebuild its state from the log). */
static bool g_diverge;

static void diverge(sim *s)
{
    static const char key[] = "zz", value[] = "-1"; /* a key no client reads */
    node *n = &s->nodes[1];
    if (sim_now(s) < 5000 || n->state != NODE_UP) return;
    uint64_t applied = replica_applied_index(n->r);
    if (applied == n->digested) return; /* nothing new applied since the last time */
    kv_slice args[2] = {{key, 2}, {value, 2}};
    kv_command cmd = {
        .op = KV_OP_PUT, .nargs = 2, .args = args, .now_ms = WALL_BASE_MS + sim_now(s)};
    kv_result res;
    kv_store_apply(&n->store, &cmd, &res);
}

static void check_applied_state(sim *s)
{
    if (g_diverge) diverge(s);
    for (unsigned i = 0; i < N_NODES && !s->failed; i++) {
        node *n = &s->nodes[i];
        if (n->state != NODE_UP) continue;
        uint64_t applied = replica_applied_index(n->r);
        if (applied == 0 || applied == n->digested) continue;
        n->digested = applied;
        buf b;
        buf_init(&b);
        kv_snapshot_write(&n->store, kv_snapshot_sink_buf, &b);
        /* not over the trailing checksum: a CRC over data and its own CRC
         * is the same constant for all data */
        uint32_t d = crc32c_update(0, b.data, b.len - 4) | 1; /* never 0: "none yet" */
        buf_close(&b);
        size_t k = applied;
        if (k >= s->n_digests) {
            size_t n_new = k * 2 + 64;
            s->digests = xrealloc(s->digests, n_new * sizeof(*s->digests));
            memset(s->digests + s->n_digests, 0, (n_new - s->n_digests) * sizeof(*s->digests));
            s->n_digests = n_new;
        }
        if (s->digests[k] == 0) {
            s->digests[k] = d;
            continue;
        }
        s->digest_checks++;
        if (s->digests[k] != d)
            sim_fail(s,
                     "node %u applied index %llu but holds a different state than another node "
                     "did there",
                     i + 1, (unsigned long long)applied);
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
    /* and no acknowledged write is missing: each final value is what a
     * read that began now may return */
    int64_t now = sim_now(s);
    for (unsigned k = 0; k < N_KEYS && !s->failed; k++) {
        client *c = &s->clients[k]; /* one of the key's clients: check_read needs its key */
        kv_entry *e = kv_store_get(&s->nodes[0].store, c->kh->keybuf, strlen(c->kh->keybuf),
                                   WALL_BASE_MS + now);
        check_read(s, c, parse_value(e), now, now);
    }
}

/* On a failure: each node's Raft state, the first thing to look at (its
 * role in its own configuration, whom it follows, how far its log, commit
 * and state machine are). */
static void report_nodes(sim *s)
{
    for (unsigned i = 0; i < N_NODES; i++) {
        node *n = &s->nodes[i];
        if (n->state != NODE_UP) {
            fprintf(stderr, "  node %u: down\n", i + 1);
            continue;
        }
        const struct raft *r = n->raft;
        int role = -1;
        for (unsigned k = 0; k < r->configuration.n; k++)
            if (r->configuration.servers[k].id == i + 1) role = r->configuration.servers[k].role;
        static const char *const states[] = {"unavailable", "follower", "candidate", "leader"};
        static const char *const roles[] = {"standby", "voter", "spare"};
        unsigned st = raft_state(n->raft);
        fprintf(stderr,
                "  node %u: %s, term %llu, own role %s (of %u servers), follows %llu, last index "
                "%llu, commit %llu, applied %llu, snapshot %llu\n",
                i + 1, st < 4 ? states[st] : "?", (unsigned long long)r->current_term,
                role >= 0 && role < 3 ? roles[role] : "none", r->configuration.n,
                (unsigned long long)(st == RAFT_FOLLOWER ? r->follower_state.current_leader.id : 0),
                (unsigned long long)raft_last_index(n->raft), (unsigned long long)r->commit_index,
                (unsigned long long)replica_applied_index(n->r),
                (unsigned long long)r->log.snapshot.last_index);
    }
}

/* ---- one run ------------------------------------------------------------------------ */

static void sim_step(sim *s)
{
    if (!sim_world_step(s->w)) sim_world_advance(s->w, sim_now(s) + 1);
    s->steps++;
    uv_run(&s->loop, UV_RUN_NOWAIT); /* deferred completions (zero-delay timers) */
    peer_run(s);
    uv_run(&s->loop, UV_RUN_NOWAIT);
    int64_t now = sim_now(s);
    if (now >= s->next_poll_ms) {
        s->next_poll_ms = now + POLL_MS;
        for (unsigned i = 0; i < N_NODES; i++)
            if (s->nodes[i].state == NODE_UP && !sim_world_frozen(s->w, i))
                replica_poll(s->nodes[i].r);
    }
    check_leaders(s);
    check_committed_on_majority(s);
    check_applied_state(s);
}

static bool clients_busy(sim *s)
{
    for (unsigned k = 0; k < N_CLIENTS; k++)
        if (s->clients[k].busy) return true;
    return false;
}

static int g_trace_key = -1;
static bool g_no_match_guard;
static const char *g_history_dir;

static int sim_run(uint64_t seed, uint64_t target_ops, bool stale_reads, bool verbose,
                   uint64_t *ops_out, uint64_t *faults_out)
{
    sim *s = xcalloc(1, sizeof(*s));
    s->trace_key = g_trace_key;
    s->no_match_guard = g_no_match_guard;
    s->seed = seed;
    s->rng = seed;
    s->target_ops = target_ops;
    s->stale_reads = stale_reads;
    if (g_history_dir) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/sim-seed-%llu.jsonl", g_history_dir,
                 (unsigned long long)seed);
        s->history = fopen(path, "w");
        if (!s->history) {
            fprintf(stderr, "sim: cannot write %s: %s\n", path, strerror(errno));
            free(s);
            return 1;
        }
    }
    srand((unsigned)seed); /* replica's forwarding backoff jitter */
    uv_loop_init(&s->loop);
    s->w = sim_world_create(seed ^ 0x5eed, N_NODES);
    sim_world_torn_writes(s->w, g_disk_faults);
    g_sim = s;
    set_latency(s, 15, 0);
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    for (unsigned i = 0; i < N_NODES; i++) {
        char address[32];
        snprintf(address, sizeof(address), "sim-%u", i + 1);
        raft_configuration_add(&conf, i + 1, address, RAFT_VOTER);
    }
    for (unsigned i = 0; i < N_NODES; i++) {
        node *n = &s->nodes[i];
        n->s = s;
        n->index = i;
        config_defaults(&n->cfg);
        n->cfg.id = i + 1;
        n->cfg.persistence = PERSISTENCE_DURABLE;
        snprintf(n->cfg.listen_http, sizeof(n->cfg.listen_http), "sim-node-%u:80", i + 1);
        n->cfg.write_timeout = 2.0;
        node_boot(s, n, &conf);
    }
    raft_configuration_close(&conf);
    for (unsigned k = 0; k < N_KEYS; k++) {
        s->keys[k].key = k;
        snprintf(s->keys[k].keybuf, sizeof(s->keys[k].keybuf), "k%u", k);
    }
    for (unsigned i = 0; i < N_CLIENTS; i++) { /* client i works on key i % N_KEYS */
        s->clients[i].s = s;
        s->clients[i].id = i;
        s->clients[i].key = i % N_KEYS;
        s->clients[i].kh = &s->keys[i % N_KEYS];
    }

    s->fault_end = 3000; /* let the first leader settle */
    uint64_t max_steps = target_ops * 400 + 100000;
    while (!s->failed && s->ops_ok + s->ops_failed < target_ops && s->steps < max_steps) {
        sim_step(s);
        maybe_fault(s);
        for (unsigned k = 0; k < N_CLIENTS; k++)
            if (!s->clients[k].busy && rng_below(&s->rng, 4) == 0) client_start(s, &s->clients[k]);
    }
    /* heal (a crashed node restarts), let every client finish, then let the
     * cluster converge */
    int64_t until = sim_now(s) + 60000;
    while (!s->failed && s->fault_on && sim_now(s) < until) {
        fault_heal(s);
        sim_step(s);
    }
    /* converged: a leader, and every node at the same applied index for
     * 0.5 s on end (the leader's expiry cycle may still propose deletes
     * of keys whose TTL runs out after the last client operation) */
    until = sim_now(s) + 30000;
    int64_t same_since = -1;
    while (!s->failed && sim_now(s) < until) {
        sim_step(s);
        uint64_t a0 = replica_applied_index(s->nodes[0].r);
        bool same = !clients_busy(s) && current_leader(s) < N_NODES;
        for (unsigned i = 1; i < N_NODES; i++) same &= replica_applied_index(s->nodes[i].r) == a0;
        if (!same)
            same_since = -1;
        else if (same_since < 0)
            same_since = sim_now(s);
        else if (sim_now(s) - same_since >= 500)
            break;
    }
    if (!s->failed && clients_busy(s)) sim_fail(s, "a client operation never completed");
    if (!s->failed) check_converged(s);
    if (s->failed) report_nodes(s);
    if (!s->failed && s->ops_ok < target_ops / 4)
        sim_fail(s, "too little progress: %llu of %llu operations succeeded",
                 (unsigned long long)s->ops_ok, (unsigned long long)(s->ops_ok + s->ops_failed));
    for (unsigned i = 0; i < N_NODES; i++) {
        replica_status_info st;
        if (!s->nodes[i].r) continue;
        replica_get_status(s->nodes[i].r, &st);
        s->snapshots += st.snapshots_taken;
    }

    if (s->failed || verbose)
        fprintf(stderr,
                "sim seed %llu: %s%s; ops %llu ok (%llu writes of which %llu CAS and %llu DEL, "
                "%llu reads of which %llu at a bookmark), "
                "%llu failed, %llu CAS refused, %llu with a TTL (%llu reads settled), transfers "
                "%llu, members replaced "
                "%llu, "
                "faults %llu (crashes %llu, disk writes lost %llu, failed %llu, torn %llu, nodes "
                "stopped by a failed write %llu), leaders %llu, snapshots "
                "%llu, installs %llu, steps %llu (invariants checked: commit on a majority "
                "%llu, state at equal indexes %llu), simulated %.1f s\n",
                (unsigned long long)seed, s->failed ? "FAILED: " : "ok", s->why,
                (unsigned long long)s->ops_ok, (unsigned long long)s->writes_ok,
                (unsigned long long)s->cas_ok, (unsigned long long)s->dels_ok,
                (unsigned long long)s->reads_ok, (unsigned long long)s->bookmark_reads,
                (unsigned long long)s->ops_failed, (unsigned long long)s->cas_refused,
                (unsigned long long)s->ttl_writes, (unsigned long long)s->settled_reads,
                (unsigned long long)s->transfers, (unsigned long long)s->member_changes,
                (unsigned long long)s->faults, (unsigned long long)s->crashes,
                (unsigned long long)sim_world_lost_writes(s->w),
                (unsigned long long)sim_world_failed_writes(s->w),
                (unsigned long long)sim_world_torn(s->w), (unsigned long long)s->failstops,
                (unsigned long long)s->leader_changes, (unsigned long long)s->snapshots,
                (unsigned long long)sim_world_installs(s->w), (unsigned long long)s->steps,
                (unsigned long long)s->majority_checks, (unsigned long long)s->digest_checks,
                (double)sim_now(s) / 1000.0);
    if (g_cut_after_promotion && s->promotion_cuts)
        fprintf(stderr,
                "sim seed %llu: leader cut right after a promotion %llu times: a new leader "
                "within 5 s %llu times (mean %.0f ms), none %llu times\n",
                (unsigned long long)seed, (unsigned long long)s->promotion_cuts,
                (unsigned long long)s->cut_elected,
                s->cut_elected ? (double)s->cut_elect_ms / (double)s->cut_elected : 0.0,
                (unsigned long long)s->cut_stalled);
    int rc = s->failed ? 1 : 0;
    *ops_out += s->ops_ok + s->ops_failed;
    *faults_out += s->faults;

    /* teardown: libraft first (it fails what is pending), then replicas */
    for (unsigned k = 0; k < N_CLIENTS; k++)
        if (s->clients[k].busy) replica_cancel(&s->clients[k].req);
    for (unsigned i = 0; i < N_NODES; i++) {
        sim_world_freeze(s->w, i, false);
        if (s->nodes[i].state == NODE_UP) node_close(&s->nodes[i]);
    }
    for (unsigned guard = 0; guard < 100000; guard++) {
        bool closing = false;
        for (unsigned i = 0; i < N_NODES; i++) closing |= s->nodes[i].state != NODE_DOWN;
        if (!closing) break;
        sim_world_step(s->w);
        uv_run(&s->loop, UV_RUN_NOWAIT);
        peer_run(s);
    }
    peer_join_incoming(s);
    while (s->msgs) {
        peer_msg *m = s->msgs;
        s->msgs = m->next;
        peer_msg_free(m);
    }
    uv_run(&s->loop, UV_RUN_DEFAULT);
    for (unsigned i = 0; i < N_NODES; i++)
        if (s->nodes[i].state != NODE_DOWN) {
            fprintf(stderr, "sim seed %llu: node %u did not close\n", (unsigned long long)seed,
                    i + 1);
            rc = 1;
        }
    for (unsigned k = 0; k < N_CLIENTS; k++) replica_req_close(&s->clients[k].req);
    for (unsigned k = 0; k < N_KEYS; k++) free(s->keys[k].writes);
    if (s->history && fclose(s->history) != 0) {
        fprintf(stderr, "sim seed %llu: writing the history failed\n", (unsigned long long)seed);
        rc = 1;
    }
    sim_world_destroy(s->w);
    uv_loop_close(&s->loop);
    free(s->digests);
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
        } else if (strcmp(argv[i], "--trace-key") == 0 && i + 1 < argc) {
            g_trace_key = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--stale-bookmarks") == 0) {
            g_stale_bookmarks = true;
        } else if (strcmp(argv[i], "--no-match-guard") == 0) {
            g_no_match_guard = true;
        } else if (strcmp(argv[i], "--stale-reads") == 0) {
            stale_reads = true;
        } else if (strcmp(argv[i], "--random") == 0) {
            random_seed = true;
        } else if (strcmp(argv[i], "--ops") == 0 && i + 1 < argc) {
            ops = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--cut-after-promotion") == 0) {
            g_cut_after_promotion = true;
        } else if (strcmp(argv[i], "--ttl") == 0) {
            g_ttl = true;
        } else if (strcmp(argv[i], "--ignore-ttl") == 0) {
            g_ttl = g_ignore_ttl = true;
        } else if (strcmp(argv[i], "--local-clock-reads") == 0) {
            g_ttl = g_local_clock_reads = true;
        } else if (strcmp(argv[i], "--no-settle") == 0) {
            g_ttl = g_no_settle = true;
        } else if (strcmp(argv[i], "--disk-faults") == 0) {
            g_disk_faults = true;
        } else if (strcmp(argv[i], "--no-failstop") == 0) {
            g_disk_faults = g_no_failstop = true;
        } else if (strcmp(argv[i], "--diverge") == 0) {
            g_diverge = true;
        } else if (strcmp(argv[i], "--history-dir") == 0 && i + 1 < argc) {
            g_history_dir = argv[++i];
        } else {
            fprintf(stderr,
                    "usage: sim [--seed N | --seeds A-B | --random] [--ops N] "
                    "[--stale-reads] [--stale-bookmarks] [--no-match-guard] "
                    "[--trace-key K] [--history-dir DIR] [--diverge] [--ttl] [--ignore-ttl] "
                    "[--local-clock-reads] [--no-settle] "
                    "[--cut-after-promotion] [--disk-faults] [--no-failstop]\n");
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
