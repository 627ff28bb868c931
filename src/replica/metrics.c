/* The replica's metrics: Raft state, snapshots, disk, per-peer lag. */
#include <stdio.h>
#include <stdlib.h>

#include "replica/replica_internal.h"
#include "net/tls_pump.h"
#include "replica/transport_mux.h"
#include "util/alloc.h"

/* ---- metrics ------------------------------------------------------------- */

static double g_term(void *c)
{
    return (double)((replica *)c)->raft->current_term;
}
static double g_commit(void *c)
{
    return (double)((replica *)c)->raft->commit_index;
}
static double g_applied(void *c)
{
    return (double)raft_last_applied(((replica *)c)->raft);
}
static double g_last(void *c)
{
    return (double)raft_last_index(((replica *)c)->raft);
}
static double g_is_leader(void *c)
{
    return raft_state(((replica *)c)->raft) == RAFT_LEADER;
}
static double g_inflight(void *c)
{
    return (double)((replica *)c)->inflight;
}
static double g_leader_changes(void *c)
{
    return (double)((replica *)c)->leader_changes;
}
static double g_snapshots(void *c)
{
    return (double)((replica *)c)->snapshots_taken;
}
static double g_snapshot_bytes(void *c)
{
    return (double)((replica *)c)->snapshot_bytes;
}
static double g_peer_accepted(void *c)
{
    replica *r = c;
    return r->mux ? (double)transport_mux_get_stats(r->mux).accepted : 0;
}
static double g_peer_refused(void *c)
{
    replica *r = c;
    return r->mux ? (double)transport_mux_get_stats(r->mux).refused : 0;
}
static double g_peer_dial_failed(void *c)
{
    replica *r = c;
    return r->mux ? (double)transport_mux_get_stats(r->mux).dial_failed : 0;
}
static double g_peer_tls_failures(void *c)
{
    (void)c;
    return (double)tls_pump_failures();
}
static double g_fork_max(void *c)
{
    return ((replica *)c)->snapshot_max_fork_seconds;
}

/* Per-peer gauges, registered when a peer first appears in the
 * configuration; their callbacks look the peer up by id at scrape time. */
typedef struct peer_gauge {
    replica *r;
    uint64_t id;
    struct peer_gauge *next;
} peer_gauge;

static double g_breaker(void *c)
{
    peer_gauge *p = c;
    const replica_env *env = &p->r->env;
    return env->peer ? env->peer->breaker_state(env->peer_ctx, p->id) : 0;
}

static double g_lag(void *c)
{
    peer_gauge *p = c;
    replica *r = p->r;
    if (raft_state(r->raft) != RAFT_LEADER || !r->raft->leader_state.progress) return 0;
    const struct raft_configuration *conf = &r->raft->configuration;
    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].id != p->id) continue;
        if (p->id == r->id) return 0;
        uint64_t last = raft_last_index(r->raft),
                 match = r->raft->leader_state.progress[i].match_index;
        return last > match ? (double)(last - match) : 0;
    }
    return 0;
}

void replica__register_peer_metrics(replica *r)
{
    const struct raft_configuration *conf = &r->raft->configuration;
    for (unsigned i = 0; i < conf->n; i++) {
        uint64_t id = conf->servers[i].id;
        if (id == r->id) continue;
        peer_gauge *p = r->peer_gauges;
        while (p && p->id != id) p = p->next;
        if (p) continue;
        p = xcalloc(1, sizeof(*p));
        p->r = r;
        p->id = id;
        p->next = r->peer_gauges;
        r->peer_gauges = p;
        char labels[64];
        snprintf(labels, sizeof(labels), "peer=\"%llu\"", (unsigned long long)id);
        metrics_gauge_register("cairn_forward_breaker_state",
                               "Circuit breaker towards a peer: 0 closed, 1 open, 2 half-open",
                               labels, g_breaker, p);
        metrics_gauge_register("cairn_replication_lag_entries",
                               "Log entries a peer is behind the leader (on the leader)", labels,
                               g_lag, p);
    }
}

/* replica_destroy: the per-peer gauge contexts. */
void replica__free_peer_metrics(replica *r)
{
    while (r->peer_gauges) {
        peer_gauge *p = r->peer_gauges;
        r->peer_gauges = p->next;
        free(p);
    }
}

static double g_snap_recv(void *c)
{
    return (double)((replica *)c)->snapshots_received;
}

static double g_snap_held(void *c)
{
    return (double)((replica *)c)->handoff.held_total;
}

static double g_disk_free(void *c)
{
    const replica *r = c;
    uint64_t f = r->disk.free_bytes;
    return !r->durable || f == UINT64_MAX ? -1.0 : (double)f;
}

static double g_disk_refused(void *c)
{
    return (double)((replica *)c)->disk.refused;
}

static double g_storage_errors(void *c)
{
    return (double)((replica *)c)->storage_errors;
}

static double g_match_lowered(void *c)
{
    return (double)((replica *)c)->match.lowered_total;
}

static double g_match_unrejected(void *c)
{
    return (double)((replica *)c)->match.unrejected_total;
}

static double g_io_held(void *c)
{
    return (double)((replica *)c)->guard.held_total;
}

void replica__register_metrics(replica *r)
{
    r->m_proposals_ok = metrics_counter_get("cairn_proposals_total", "Writes proposed, by outcome",
                                            "outcome=\"ok\"");
    r->m_proposals_failed = metrics_counter_get(
        "cairn_proposals_total", "Writes proposed, by outcome", "outcome=\"failed\"");
    r->m_shed =
        metrics_counter_get("cairn_shed_total", "Requests shed because too much was in flight", "");
    r->m_forwarded = metrics_counter_get("cairn_forwarded_total",
                                         "Writes and reads forwarded to the leader", "");
    r->m_forward_failures = metrics_counter_get("cairn_forward_failures_total",
                                                "Forward attempts that failed (before retry)", "");
    r->m_expiry_cycles =
        metrics_counter_get("cairn_expiry_cycles_total", "Active expiry cycles run", "");
    r->m_snapshot_seconds = metrics_histogram_get("cairn_snapshot_duration_seconds",
                                                  "Time to take a snapshot, fork to written", "");
    r->m_snapshot_fork_seconds = metrics_histogram_get(
        "cairn_snapshot_fork_seconds", "Loop stall caused by forking the snapshot child", "");
    metrics_gauge_register("cairn_snapshot_fork_max_seconds", "Longest snapshot fork stall seen",
                           "", g_fork_max, r);
    metrics_gauge_register("cairn_inflight_proposals", "Client writes in flight", "", g_inflight,
                           r);
    if (!r->durable) return;
    metrics_gauge_register("cairn_raft_term", "Current Raft term", "", g_term, r);
    metrics_gauge_register("cairn_raft_commit_index", "Raft commit index", "", g_commit, r);
    metrics_gauge_register("cairn_raft_applied_index", "Raft applied index", "", g_applied, r);
    metrics_gauge_register("cairn_raft_last_index", "Last Raft log index", "", g_last, r);
    metrics_gauge_register("cairn_raft_is_leader", "1 if this node leads", "", g_is_leader, r);
    metrics_counter_fn_register("cairn_raft_leader_changes_total", "Leader changes seen", "",
                                g_leader_changes, r);
    metrics_counter_fn_register("cairn_peer_connections_accepted_total",
                                "Peer connections handed to a Raft group", "", g_peer_accepted, r);
    metrics_counter_fn_register("cairn_peer_connections_refused_total",
                                "Peer connections closed at their preamble: malformed, too slow, "
                                "or for a group this node does not run",
                                "", g_peer_refused, r);
    metrics_counter_fn_register("cairn_peer_tls_failures_total",
                                "Peer connections whose TLS failed: an untrusted or misnamed "
                                "certificate, not TLS, an error later",
                                "", g_peer_tls_failures, r);
    metrics_counter_fn_register("cairn_peer_connects_failed_total",
                                "Outgoing peer connections that failed or timed out", "",
                                g_peer_dial_failed, r);
    metrics_counter_fn_register("cairn_snapshots_total", "Snapshots taken", "", g_snapshots, r);
    metrics_gauge_register("cairn_snapshot_bytes", "Size of the last snapshot", "",
                           g_snapshot_bytes, r);
    metrics_counter_fn_register("cairn_snapshots_received_total",
                                "Snapshots installed from the leader", "", g_snap_recv, r);
    metrics_counter_fn_register("cairn_snapshot_installs_held_total",
                                "Leader snapshots that arrived during a snapshot of our own and "
                                "were held until it was done",
                                "", g_snap_held, r);
    metrics_gauge_register("cairn_disk_free_bytes",
                           "Free space on the data dir's file system (-1: not measured)", "",
                           g_disk_free, r);
    metrics_counter_fn_register("cairn_disk_full_refused_total",
                                "Writes refused because the disk is almost full (--min-free-disk)",
                                "", g_disk_refused, r);
    metrics_counter_fn_register("cairn_storage_errors_total",
                                "Writes whose raft log write failed on this node (disk full or "
                                "failing)",
                                "", g_storage_errors, r);
    metrics_counter_fn_register("cairn_raft_append_answers_lowered_total",
                                "Answers to the leader lowered to the entries it checked (libraft "
                                "0.15 would claim the whole log: docs/design.md)",
                                "", g_match_lowered, r);
    metrics_counter_fn_register("cairn_raft_append_rejections_corrected_total",
                                "Rejections of an index inside this node's snapshot answered as "
                                "a match instead (libraft 0.15 would make the leader walk below "
                                "it for good: docs/design.md)",
                                "", g_match_unrejected, r);
    metrics_counter_fn_register("cairn_raft_io_held_total",
                                "Log writes held so that a log truncation and a snapshot write "
                                "never overlap in libraft (0.15 loses the truncation)",
                                "", g_io_held, r);
}
