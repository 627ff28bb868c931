/* One Raft group: create (data dir, transport, libraft, the raft_io
 * seam's guards), start, the periodic tick, status, step-down, close. */
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net/tls.h"
#include "replica/transport_mux.h"
#include "obs/log.h"
#include "replica/datadir.h"
#include "replica/lazyfree.h"
#include "replica/logcheck.h"
#include "replica/replica_internal.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/hash.h"

#define TICK_MS 10

/* ---- periodic work ------------------------------------------------------- */

static void replica__expire_deadlines(replica *r)
{
    int64_t now = replica__mono_ms(r);
    /* lists are in deadline order: stop at the first op still in time */
    for (replica_op *op = r->proposals.head; op && op->deadline_ms <= now; op = op->next)
        if (op->req)
            replica_op_finish(op, REPLICA_ERR_TIMEOUT); /* stays listed until libraft answers */
    while (r->rev_waiters.head && r->rev_waiters.head->deadline_ms <= now)
        replica_op_finish_now(r->rev_waiters.head, REPLICA_ERR_READ_TIMEOUT);
    while (r->barrier_next.head && r->barrier_next.head->deadline_ms <= now)
        replica_op_finish_now(r->barrier_next.head, REPLICA_ERR_TIMEOUT);
    for (replica_op *op = r->barrier_now.head; op;) {
        replica_op *next = op->next;
        if (op->deadline_ms <= now) replica_op_finish_now(op, REPLICA_ERR_TIMEOUT);
        op = next;
    }
}

static void replica__check_leadership(replica *r)
{
    raft_id leader = 0;
    const char *addr = NULL;
    raft_leader(r->raft, &leader, &addr);
    if (leader != r->last_leader_seen) {
        if (leader) {
            r->leader_changes++;
            LOG_INFO("leader changed", LF_I("leader", leader), LF_I("term", r->raft->current_term));
        }
        r->last_leader_seen = leader;
    }
    if (raft_state(r->raft) != RAFT_LEADER) {
        r->leader_ready = false;
        return;
    }
    if (r->leader_ready && r->leader_ready_term == r->raft->current_term) return;
    if (r->noop_inflight) return;
    replica_op *op = replica_op_new(r, NULL, OP_PROPOSE, 3600);
    op->internal_noop = true;
    kv_command cmd = {.op = KV_OP_NOOP, .now_ms = replica__wall_ms(r)};
    uint64_t term = r->raft->current_term;
    if (replica__submit(r, op, &cmd) != REPLICA_OK) {
        free(op);
        return;
    }
    op->term = term;
    r->noop_inflight = true;
}

/* The periodic work: every TICK_MS from the tick timer, or when a
 * simulator polls. */
void replica_poll(replica *r)
{
    if (r->closing) return;
    if (r->durable) {
        disk_guard_poll(&r->disk, clock_mono_ns());
        replica__check_leadership(r);
        replica__expire_deadlines(r);
        replica__forward_tick(r);
        replica__register_member(r);
        replica__membership_poll(r);
        replica__register_peer_metrics(r);
        /* a held InstallSnapshot handed over now is answered as if it
         * had just arrived: guard that answer too */
        if (r->handoff.held) match_guard_begin(&r->match, &r->handoff.msg, r->raft);
        snapshot_handoff_poll(&r->handoff);
        match_guard_end(&r->match);
    }
    replica__expiry_cycle(r);
    /* keep incremental rehashing moving when there are no writes */
    kv_keyspace_rehash_step(&r->store->ks, 100);
}

static void replica__tick(uv_timer_t *t)
{
    replica_poll(t->data);
}

/* ---- status ---------------------------------------------------------------- */

void replica_get_status(replica *r, replica_status_info *info)
{
    memset(info, 0, sizeof(*info));
    info->id = r->id;
    info->inflight = r->inflight;
    info->snapshots_taken = r->snapshots_taken;
    info->storage_errors = r->storage_errors;
    info->storage_error = r->storage_error;
    info->disk_free_bytes = r->disk.free_bytes;
    info->disk_low = r->disk.low;
    if (!r->durable) {
        info->role = "standalone";
        info->ready = true;
        info->applied_index = info->commit_index = r->store->revision;
        return;
    }
    int st = raft_state(r->raft);
    info->role = st == RAFT_LEADER      ? "leader"
                 : st == RAFT_CANDIDATE ? "candidate"
                 : st == RAFT_FOLLOWER  ? "follower"
                                        : "unavailable";
    if (st == RAFT_FOLLOWER && !replica__role_is_voter(&r->raft->configuration, r->id))
        info->role = "learner";
    info->term = r->raft->current_term;
    raft_id leader = 0;
    const char *addr = NULL;
    raft_leader(r->raft, &leader, &addr);
    info->leader_id = leader;
    info->commit_index = r->raft->commit_index;
    info->applied_index = raft_last_applied(r->raft);
    info->last_index = raft_last_index(r->raft);
    if (st == RAFT_LEADER) {
        info->ready = r->leader_ready && r->leader_ready_term == r->raft->current_term;
        info->not_ready_reason = "leader has not committed an entry in its term yet";
    } else if (leader) {
        /* forwarding needs the leader's client address from the member
         * table: not ready to serve until we have it */
        const kv_member *m = kv_store_member(r->store, leader);
        info->ready = info->applied_index >= info->commit_index && m && m->http[0];
        info->not_ready_reason = m && m->http[0] ? "catching up" : "leader address not known yet";
    } else {
        info->ready = false;
        info->not_ready_reason = "no leader";
    }
}

uint64_t replica_id(replica *r)
{
    return r->id;
}

bool replica_is_leader(replica *r)
{
    return !r->durable || raft_state(r->raft) == RAFT_LEADER;
}

/* ---- the seam -------------------------------------------------------------- */

static int64_t replica__system_mono_ms(void *ctx)
{
    (void)ctx;
    return clock_mono_ms();
}

static int64_t replica__system_wall_ms(void *ctx)
{
    (void)ctx;
    return clock_wall_ms();
}

/* Production peers: forward.c, HTTP (TLS when this node serves TLS). */
static void *replica__http_post(void *ctx, uint64_t peer_id, const char *http, const char *path,
                                const void *body, size_t len, double timeout_s, forward_cb cb,
                                void *cb_ctx)
{
    return forward_post(ctx, peer_id, http, path, body, len, true, timeout_s, cb, cb_ctx);
}

static void replica__http_cancel(void *ctx, void *req)
{
    (void)ctx;
    forward_cancel(req);
}

static int replica__http_breaker_state(void *ctx, uint64_t peer_id)
{
    return forward_breaker_state(ctx, peer_id);
}

static const replica_peer_ops replica__http_peers = {
    .post = replica__http_post,
    .cancel = replica__http_cancel,
    .breaker_state = replica__http_breaker_state,
};

/* Live replicas, for the hooks libraft calls with only its raft_io (one
 * in cairnd; one per simulated node in tests/sim). Loop thread only. */
static replica *replica__live;

replica *replica__of_io(struct raft_io *io)
{
    replica *r = replica__live;
    while (r && r->io != io) r = r->next_live;
    return r;
}

static void replica__unlist(replica *r)
{
    for (replica **p = &replica__live; *p; p = &(*p)->next_live) {
        if (*p == r) {
            *p = r->next_live;
            return;
        }
    }
}

static void replica__io_recv(struct raft_io *io, struct raft_message *msg)
{
    replica *r = replica__of_io(io);
    match_guard_begin(&r->match, msg, r->raft);
    snapshot_handoff_recv(&r->handoff, msg);
    match_guard_end(&r->match);
}

/* libraft's raft_start calls this with its own receive callback: the
 * transport gets ours, which passes everything on through the handoff. */
static int replica__io_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                             raft_io_recv_cb recv)
{
    replica *r = replica__of_io(io);
    snapshot_handoff_started(&r->handoff, recv);
    return r->io_start(io, msecs, tick, replica__io_recv);
}

/* ---- lifecycle ------------------------------------------------------------- */

static uint64_t replica__cluster_id(const char *initial_cluster)
{
    return initial_cluster[0] ? hash_bytes(initial_cluster, strlen(initial_cluster), 0x636169726e)
                              : 0;
}

static void replica__on_hup(uv_signal_t *s, int signum)
{
    replica *r = s->data;
    char err[1400];
    (void)signum;
    if (!r->fwd) return;
    if (forward_reload_tls(r->fwd, err, sizeof(err)) == 0)
        LOG_INFO("TLS files reloaded for forwarding", LF_S("cert", r->cfg->tls_cert));
    else
        LOG_ERROR("TLS reload for forwarding failed; keeping the old certificate",
                  LF_S("error", err));
    if (r->mux && transport_mux_reload_tls(r->mux, err, sizeof(err)) != 0)
        LOG_ERROR("TLS reload for the peer port failed; keeping the old certificate",
                  LF_S("error", err));
}

/* A node that serves TLS expects the other members to serve it too: the
 * leader's HTTP port is then reached over TLS, its certificate checked
 * against --tls-client-ca (else this node's own --tls-cert file) and its
 * address, and this node's certificate presented for mutual TLS. */
static int replica__forward_create(replica *r, char *err, size_t errlen)
{
    const cairn_config *cfg = r->cfg;
    tls_ctx *tls = NULL;
    if (cfg->tls_cert[0] && tls_ctx_create_client(&tls, cfg->tls_cert, cfg->tls_key,
                                                  cfg->tls_client_ca, err, errlen) != 0)
        return -1;
    r->fwd = forward_create(r->loop, tls);
    /* names the sender in every forwarded request: for the receiver's
     * logs, and for a fault-injecting proxy that cuts links by direction */
    char from[64];
    snprintf(from, sizeof(from), "X-Cairn-From: %" PRIu64 "\r\n", r->id);
    forward_set_headers(r->fwd, from);
    r->env.peer = &replica__http_peers;
    r->env.peer_ctx = r->fwd;
    if (tls) {
        uv_signal_init(r->loop, &r->fwd_hup);
        r->fwd_hup.data = r;
        uv_signal_start(&r->fwd_hup, replica__on_hup, SIGHUP);
        uv_unref((uv_handle_t *)&r->fwd_hup); /* never what keeps the loop running */
        r->fwd_hup_on = true;
    }
    return 0;
}

/* Parse "1=host:port,2=host:port" into a raft configuration. */
static int replica__parse_cluster(const char *spec, struct raft_configuration *conf, uint64_t self,
                                  char *err, size_t errlen)
{
    char copy[4096];
    snprintf(copy, sizeof(copy), "%s", spec);
    char *save = NULL;
    int self_found = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        char *end = NULL;
        unsigned long long id = eq ? strtoull(tok, &end, 10) : 0;
        if (!eq || end != eq || id == 0 || !strchr(eq + 1, ':')) {
            snprintf(err, errlen, "--initial-cluster: bad member '%s' (want ID=host:port)", tok);
            return -1;
        }
        int rv = raft_configuration_add(conf, id, eq + 1, RAFT_VOTER);
        if (rv != 0) {
            snprintf(err, errlen, "--initial-cluster: member '%s': %s", tok, raft_strerror(rv));
            return -1;
        }
        self_found |= id == self;
    }
    if (!self_found) {
        snprintf(err, errlen, "--initial-cluster does not contain this node's --id %llu",
                 (unsigned long long)self);
        return -1;
    }
    return 0;
}

/* What every replica has, whoever runs its libraft. */
static replica *replica__new(uv_loop_t *loop, const cairn_config *cfg, kv_store *store,
                             const replica_env *env)
{
    replica *r = xcalloc(1, sizeof(*r));
    r->loop = loop;
    r->cfg = cfg;
    r->store = store;
    r->id = cfg->id;
    r->durable = cfg->persistence == PERSISTENCE_DURABLE;
    r->snap_fd = -1;
    r->env = *env;
    if (!r->env.mono_ms) r->env.mono_ms = replica__system_mono_ms;
    if (!r->env.wall_ms) r->env.wall_ms = replica__system_wall_ms;
    /* proposal numbers go on growing across restarts, so a log entry
     * proposed before one is never taken for a proposal of after it */
    r->seq = (uint64_t)r->env.wall_ms(r->env.clock_ctx) << 20;
    buf_init(&r->expiry_keys);
    store->on_result = replica__on_result;
    store->on_result_ctx = r;
    /* a durable write applies after its handler returned: SLOWLOG adds
     * its apply time (resp__write_cb); in memory it runs inside the
     * handler's own timing */
    store->time_applies = r->durable;
    replica__register_metrics(r);
    uv_timer_init(loop, &r->tick);
    r->tick.data = r;
    uv_timer_init(loop, &r->kick);
    r->kick.data = r;
    r->next_live = replica__live;
    replica__live = r;
    return r;
}

/* Every message libraft receives passes the handoff (see snapshot_handoff.h):
 * hook the io's start before libraft starts it. */
static void replica__hook_io(replica *r)
{
    snapshot_handoff_init(&r->handoff, r->raft, r->io);
    match_guard_install(&r->match, r->io);
    r->io_start = r->io->start;
    r->io->start = replica__io_start;
}

int replica_create_detached(replica **out, uv_loop_t *loop, const cairn_config *cfg,
                            kv_store *store, const replica_env *env)
{
    replica *r = replica__new(loop, cfg, store, env);
    r->durable = true;
    store->time_applies = true;
    r->snapshot_in_process = true;
    disk_guard_init(&r->disk, 0, "");
    replica__fsm_setup(r);
    *out = r;
    return 0;
}

struct raft_fsm *replica_fsm(replica *r)
{
    return &r->fsm;
}

void replica_attach(replica *r, struct raft *raft)
{
    r->raft = raft;
    r->io = raft->io;
    r->raft->data = r;
    replica__hook_io(r);
    r->raft_started = true; /* the caller starts it; the replica never does */
}

int replica_create(replica **out, uv_loop_t *loop, const cairn_config *cfg, kv_store *store,
                   char *err, size_t errlen)
{
    replica_env system = {0};
    replica *r = replica__new(loop, cfg, store, &system);
    *out = r;
    r->owns_raft = true;
    r->raft = &r->own_raft;
    r->io = &r->own_io;
    if (!r->durable) return 0;

    datadir_identity want = {.node_id = cfg->id,
                             .cluster_id = replica__cluster_id(cfg->initial_cluster)};
    int fresh = 0;
    if (datadir_open(cfg->data_dir, &want, r->raft_dir, sizeof(r->raft_dir), &fresh, err, errlen) !=
        0)
        return -1;

    lazyfree_install(loop);
    if (replica__forward_create(r, err, errlen) != 0) return -1;
    /* the peer port: one listener for every group of the process (one
     * group today), libraft 0.15's handshake for group 0 */
    if (transport_mux_create(&r->mux, loop, cfg->listen_peer, err, errlen) != 0) return -1;
    /* a node that serves TLS speaks it to its peers too, mutually
     * authenticated (the same files and trust as forwarding) */
    if (cfg->tls_cert[0] && transport_mux_set_tls(r->mux, cfg->tls_cert, cfg->tls_key,
                                                  cfg->tls_client_ca, err, errlen) != 0)
        return -1;
    int rv = transport_mux_port_init(&r->transport, r->mux, 0);
    if (rv != 0) {
        snprintf(err, errlen, "--listen-peer %s: cannot use this address (%s)", cfg->listen_peer,
                 raft_strerror(rv));
        return -1;
    }
    r->transport_on = true;
    rv = raft_uv_init(r->io, loop, r->raft_dir, &r->transport);
    if (rv != 0) {
        snprintf(err, errlen, "cannot open raft storage in %s: %s", r->raft_dir, r->io->errmsg);
        return -1;
    }
    raft_uv_set_snapshot_compression(r->io, false);
    /* libraft's auto-recovery renames a segment it cannot read to corrupt-*
     * and starts without it: silent loss of acknowledged writes. Refuse to
     * start instead, naming the file (SPEC §4). */
    raft_uv_set_auto_recovery(r->io, false);
    /* first on append, so that it sees raft_uv's own results */
    storage_failstop_install(&r->failstop, r->io, r->raft_dir);
    replica__io_async_setup(r);
    replica__fsm_setup(r);
    rv = raft_init(r->raft, r->io, &r->fsm, cfg->id, cfg->listen_peer);
    if (rv != 0) {
        snprintf(err, errlen, "raft init: %s", raft_errmsg(r->raft));
        return -1;
    }
    raft_set_snapshot_threshold(r->raft, (unsigned)cfg->snapshot_threshold);
    raft_set_snapshot_trailing(r->raft, (unsigned)cfg->snapshot_trailing);
    raft_set_pre_vote(r->raft, true);
    /* A follower learns that entries are committed only from the leader's
     * next message: a new entry, or a heartbeat, which libraft sends when a
     * follower has heard nothing for this long, checked at each tick of the
     * same period (so up to twice this). libraft's default of 100 ms made
     * a client blocked on a follower wait 190 ms for a push (bench W11). */
    raft_set_heartbeat_timeout(r->raft, (unsigned)(cfg->heartbeat_interval * 1000));
    /* libraft's default is 30 s; with the handoff a leader's snapshot is no
     * longer ignored, so this only covers one lost on the wire */
    raft_set_install_snapshot_timeout(r->raft, (unsigned)(cfg->install_snapshot_timeout * 1000));
    replica__hook_io(r);
    barrier_guard_install(&r->guard, r->io, loop);
    disk_guard_init(&r->disk, cfg->min_free_disk, r->raft_dir);
    disk_guard_poll(&r->disk, clock_mono_ns());

    struct raft_configuration conf;
    raft_configuration_init(&conf);
    if (cfg->initial_cluster[0]) {
        if (replica__parse_cluster(cfg->initial_cluster, &conf, cfg->id, err, errlen) != 0) {
            raft_configuration_close(&conf);
            return -1;
        }
    } else {
        raft_configuration_add(&conf, cfg->id, cfg->listen_peer, RAFT_VOTER);
    }
    /* a node that joins a running cluster gets its configuration from the
     * leader; bootstrapping it would start a second, separate cluster */
    rv = cfg->join[0] ? RAFT_CANTBOOTSTRAP : raft_bootstrap(r->raft, &conf);
    raft_configuration_close(&conf);
    if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
        snprintf(err, errlen, "raft bootstrap in %s: %s", r->raft_dir, raft_errmsg(r->raft));
        return -1;
    }
    if (rv == 0) LOG_INFO("bootstrapped new cluster", LF_S("data_dir", cfg->data_dir));
    (void)fresh;
    return 0;
}

/* libraft's TCP transport binds --listen-peer inside raft_start and
 * answers a failed bind with a bare RAFT_IOERR, no message: bind the
 * address once more to name the cause (most often: already in use). */
static int replica__peer_bind_error(const char *address, char *why, size_t whylen)
{
    char host[256];
    const char *colon = strrchr(address, ':');
    if (!colon || (size_t)(colon - address) >= sizeof host) return 0;
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res) != 0 || !res) return 0;
    int failed = 0;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        int on = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on); /* as libuv does */
        if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1) != 0) {
            snprintf(why, whylen, "%s", strerror(errno));
            failed = 1;
        }
        close(fd);
    }
    freeaddrinfo(res);
    return failed;
}

int replica_start(replica *r, char *err, size_t errlen)
{
    if (!r->owns_raft) return 0; /* the simulator polls and runs libraft */
    uv_timer_start(&r->tick, replica__tick, TICK_MS, TICK_MS);
    if (!r->durable) return 0;
    uint64_t t0 = clock_mono_ns();
    int repaired = 0;
    if (logcheck_run(r->raft_dir, &repaired, err, errlen) != 0) return -1;
    int rv = raft_start(r->raft);
    if (rv != 0) {
        char why[128];
        if (r->restore_error[0])
            snprintf(err, errlen, "cannot load raft state: %s", r->restore_error);
        else if (!raft_errmsg(r->raft)[0] &&
                 replica__peer_bind_error(r->cfg->listen_peer, why, sizeof why))
            snprintf(err, errlen, "--listen-peer %s: cannot listen (%s)", r->cfg->listen_peer, why);
        else
            snprintf(err, errlen, "cannot load raft state from %s: %s (%s)", r->raft_dir,
                     raft_errmsg(r->raft), raft_strerror(rv));
        return -1;
    }
    r->raft_started = true;
    LOG_INFO("raft started", LF_I("id", r->id), LF_I("term", r->raft->current_term),
             LF_I("last_index", raft_last_index(r->raft)), LF_I("revision", r->store->revision),
             LF_I("keys", kv_keyspace_count(&r->store->ks)),
             LF_I("load_ms", (clock_mono_ns() - t0) / 1000000));
    return 0;
}

static void replica__transfer_done(struct raft_transfer *t)
{
    replica *r = t->data;
    r->stepdown_done = true; /* delivered by the kick, outside libraft */
    replica__kick(r);
}

void replica_step_down(replica *r, void (*cb)(void *ctx), void *ctx)
{
    r->stepdown_cb = cb;
    r->stepdown_ctx = ctx;
    if (!r->durable || !r->raft_started || raft_state(r->raft) != RAFT_LEADER ||
        replica__voters(&r->raft->configuration) < 2) {
        cb(ctx);
        return;
    }
    r->transfer.data = r;
    if (raft_transfer(r->raft, &r->transfer, 0, replica__transfer_done) != 0) cb(ctx);
}

static void replica__fail_reads(replica *r)
{
    while (r->rev_waiters.head) replica_op_finish_now(r->rev_waiters.head, REPLICA_ERR_SHUTDOWN);
    while (r->barrier_next.head) replica_op_finish_now(r->barrier_next.head, REPLICA_ERR_SHUTDOWN);
    while (r->barrier_now.head) replica_op_finish_now(r->barrier_now.head, REPLICA_ERR_SHUTDOWN);
    while (r->forwards.head) replica_op_finish_now(r->forwards.head, REPLICA_ERR_SHUTDOWN);
    while (r->index_waiters.head)
        replica_op_finish_now(r->index_waiters.head, REPLICA_ERR_SHUTDOWN);
    if (r->fwd) {
        forward_close(r->fwd);
        r->fwd = NULL;
        r->env.peer = NULL;
    }
}

void replica_begin_shutdown(replica *r)
{
    while (r->rev_waiters.head) replica_op_finish_now(r->rev_waiters.head, REPLICA_ERR_SHUTDOWN);
    while (r->index_waiters.head)
        replica_op_finish_now(r->index_waiters.head, REPLICA_ERR_SHUTDOWN);
}

static void replica__tick_closed(uv_handle_t *h)
{
    replica *r = h->data;
    if (r->close_cb) r->close_cb(r->close_ctx);
}

static void replica__transport_close(replica *r)
{
    if (r->transport_on) transport_mux_port_close(&r->transport);
    r->transport_on = false;
    transport_mux_release(r->mux); /* frees itself once its handles have closed */
    r->mux = NULL;
}

static void replica__raft_closed(struct raft *raft)
{
    replica *r = raft->data;
    /* libraft is done with every request now */
    while (r->proposals.head) {
        replica_op *op = r->proposals.head;
        op_list_remove(op);
        replica_op_finish(op, REPLICA_ERR_SHUTDOWN);
        free(op);
    }
    snapshot_handoff_close(&r->handoff);
    barrier_guard_close(&r->guard);
    raft_uv_close(r->io);
    replica__transport_close(r);
    replica__drain_completions(r); /* what libraft failed while closing */
    uv_close((uv_handle_t *)&r->kick, NULL);
    uv_close((uv_handle_t *)&r->tick, replica__tick_closed);
}

void replica_close(replica *r, void (*cb)(void *ctx), void *ctx)
{
    r->closing = true;
    r->close_cb = cb;
    r->close_ctx = ctx;
    if (r->fwd_hup_on) {
        r->fwd_hup_on = false;
        uv_close((uv_handle_t *)&r->fwd_hup, NULL);
    }
    uv_timer_stop(&r->tick);
    uv_timer_stop(&r->kick);
    replica__membership_close(r);
    replica__drain_completions(r);
    replica__fail_reads(r);
    for (replica_op *op = r->proposals.head; op; op = op->next)
        replica_op_finish(op, REPLICA_ERR_SHUTDOWN);
    if (!r->owns_raft) {
        /* the caller has closed libraft (the detached contract): it holds
         * no request of ours any more */
        while (r->proposals.head) {
            replica_op *op = r->proposals.head;
            op_list_remove(op);
            free(op);
        }
        snapshot_handoff_close(&r->handoff);
    } else if (r->durable && r->raft_started) {
        r->raft->data = r;
        raft_close(r->raft, replica__raft_closed);
        return;
    } else if (r->durable) {
        barrier_guard_close(&r->guard);
        raft_uv_close(r->io);
        replica__transport_close(r);
    }
    replica__drain_completions(r);
    uv_close((uv_handle_t *)&r->kick, NULL);
    uv_close((uv_handle_t *)&r->tick, replica__tick_closed);
}

void replica_destroy(replica *r)
{
    lazyfree_flush();
    replica__unlist(r);
    replica__membership_forget(r);
    match_guard_remove(&r->match);
    storage_failstop_remove(&r->failstop); /* libraft is closed: no append in flight */
    /* a simulator restarts a node on the same raft_io: unhook it */
    if (r->io && r->io->start == replica__io_start) r->io->start = r->io_start;
    if (r->owns_raft) barrier_guard_forget(&r->guard);
    replica__free_peer_metrics(r);
    if (r->snap_pid > 0) {
        kill(r->snap_pid, SIGKILL);
        waitpid(r->snap_pid, NULL, 0);
    }
    free(r->decode_args);
    buf_close(&r->expiry_keys);
    free(r);
}
