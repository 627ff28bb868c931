/* replica internals: the state every part of the replica shares, and the
 * lifecycle of an operation (replica_op) on its intrusive lists.
 *
 * The replica is split by concern; each file stands on this core and on
 * libraft, not on its siblings' private state:
 *   op.c          op lists, an op's lifecycle, deferred completions (kick)
 *   fsm.c         libraft state machine: apply, snapshot (fork), restore
 *   propose.c     the write path: admission, submit to libraft, results
 *   read.c        linearizable reads: barrier batches, read-index (leader)
 *   leader_forward.c  a follower's writes and read-index sent to the leader
 *   membership.c  configuration changes, member table, leadership transfer
 *   expiry.c      active expiry, decided by the leader through the log
 *   metrics.c     gauges and counters
 *   group.c       one Raft group's lifecycle, periodic tick, status
 * Loop thread only (fsm__snapshot_async excepted, see fsm.c). */
#ifndef CAIRN_REPLICA_INTERNAL_H
#define CAIRN_REPLICA_INTERNAL_H

#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "obs/metrics.h"
#include "replica/barrier_guard.h"
#include "replica/disk_guard.h"
#include "replica/forward.h"
#include "replica/match_guard.h"
#include "replica/storage_failstop.h"
#include "replica/replica.h"
#include "replica/snapshot_handoff.h"
#include "util/buf.h"

enum {
    OP_PROPOSE,
    OP_READ_BARRIER,
    OP_READ_INDEX, /* a follower's read-index request, served by this leader */
    OP_READ_REVISION,
    OP_FORWARD_WRITE,
    OP_FORWARD_READ,
    OP_READ_APPLIED
};

typedef struct replica_op replica_op;
typedef struct op_list op_list;
struct replica_op {
    replica *r;
    replica_req *req; /* NULL once detached (cancelled, timed out) */
    int kind;
    uint64_t origin, seq; /* the command's identity: (proposing node, its number) */
    int64_t deadline_ms;
    uint64_t min_revision;
    bool internal_noop;
    bool internal_expiry;
    uint64_t term;            /* noop: the term it was proposed in; read index: arrival term */
    bool index_after_barrier; /* read index: the arrival commit index does not count */
    /* forwarding to the leader */
    buf payload; /* the encoded command (writes) */
    void *freq;  /* the peer request in flight, if any (env.peer) */
    unsigned attempts;
    int64_t retry_at_ms;
    /* a forwarded write whose outcome the leader could not tell (it died
     * or stepped down with the write in flight): resolved by a read-index
     * from the leader after that, then waiting for wait_index here */
    bool resolving;
    bool applied_here;     /* this node applied it: req->result is its own */
    uint64_t wait_index;   /* reads: serve once applied >= this */
    uint64_t settle_index; /* reads: settled (read_unsettled false) once applied >= this */
    bool internal_member;
    int status; /* for completions waiting on r->completed */
    struct raft_apply apply;
    op_list *list;
    replica_op *prev, *next;
};

struct op_list {
    replica_op *head, *tail;
    size_t n;
};

struct replica {
    replica_req *applying; /* during an apply: this node's request for the entry, if any */
    uv_loop_t *loop;
    const cairn_config *cfg;
    kv_store *store;
    bool durable;
    uint64_t id;

    /* The seam: libraft's instance and its raft_io are the replica's own
     * (own_raft over raft_uv and TCP) or a simulator's (replica_attach). */
    struct raft *raft;
    struct raft_io *io;
    bool owns_raft;
    struct raft own_raft;
    struct raft_io own_io;
    struct raft_uv_transport transport; /* this group's port on mux */
    bool transport_on;
    struct transport_mux *mux;
    struct raft_fsm fsm;
    bool snapshot_in_process; /* no fork: the simulator's snapshots */
    replica_env env;          /* clocks and peer operations */
    replica *next_live;       /* registry: the replica of a raft_io */
    /* raft_io seam: the transport's messages pass through the handoff,
     * which holds a leader's snapshot while libraft would ignore it */
    snapshot_handoff handoff;
    /* and a log truncate and a snapshot write never overlap in libraft */
    barrier_guard guard;
    /* and a follower never claims entries the leader did not check */
    match_guard match;
    /* a failed log write stops the node (raft_uv only) */
    storage_failstop failstop;
    int (*io_start)(struct raft_io *, unsigned, raft_io_tick_cb, raft_io_recv_cb);
    bool raft_started;
    char raft_dir[1100];
    disk_guard disk;                  /* refuses writes before the disk is full */
    uint64_t storage_errors;          /* failed log writes */
    uint64_t storage_error_logged_ns; /* last error line */
    char storage_error[256];          /* libraft's message for the last one */

    uint64_t seq;
    op_list proposals;    /* in seq order; deadlines ascend */
    op_list rev_waiters;  /* min_revision reads; deadlines ascend */
    op_list barrier_next; /* linearizable reads for the next barrier */
    op_list barrier_now;  /* reads served by the barrier in flight */
    /* Completions are never run inside a libraft callback: a client
     * callback may start the next request (a pipelined write), and calling
     * into libraft while it is converting state (leadership lost) crashes
     * it. They wait here and run on the next loop iteration (`kick`). */
    op_list completed;
    uv_timer_t kick;
    bool kick_armed;
    op_list forwards;      /* writes and read-index requests sent to the leader */
    op_list index_waiters; /* reads waiting for the local applied index */
    forward *fwd;          /* HTTP peer client (production env); TLS if this node serves it */
    uv_signal_t fwd_hup;   /* SIGHUP: forwarding re-reads the TLS files */
    bool fwd_hup_on;
    bool member_inflight;
    int64_t member_next_ms;
    struct change_op *changes; /* membership changes and transfers not yet delivered */
    struct raft_barrier barrier;
    bool barrier_inflight;
    uint64_t inflight; /* client proposals in flight (admission control) */

    /* A leader serves local linearizable reads only after an entry of its
     * own term has been applied (Raft thesis §6.4): before that it may not
     * know the latest committed state. */
    bool leader_ready;
    uint64_t leader_ready_term;

    /* The latest command stamp this node wrote or applied, and the latest
     * time a linearizable read here judged expiry at (replica__stamp):
     * stamps only grow along the log (docs/design.md, "Expiry"). */
    int64_t last_stamp;
    bool noop_inflight;
    uint64_t noop_term;

    /* active expiry */
    uint64_t expiry_cursor;
    int64_t expiry_next_ms;
    bool expiry_inflight;

    /* snapshot child (see fsm__snapshot) */
    pid_t snap_pid;
    int snap_fd;
    size_t snap_buf_cap; /* mapping size of the collected snapshot */
    uint64_t snap_started_ns;
    uint64_t snap_fork_ns;
    int snap_error;
    uint64_t snapshots_taken;
    uint64_t snapshot_bytes;
    double snapshot_last_seconds;
    double snapshot_max_fork_seconds;

    kv_slice *decode_args;
    uint32_t decode_cap;
    buf expiry_keys;
    char restore_error[1600];

    uv_timer_t tick;
    struct raft_transfer transfer;
    void (*stepdown_cb)(void *);
    void *stepdown_ctx;
    bool stepdown_done;
    void (*close_cb)(void *);
    void *close_ctx;
    bool closing;

    uint64_t leader_changes;
    uint64_t last_leader_seen;
    struct peer_gauge *peer_gauges; /* per-peer metrics registered so far */
    uint64_t snapshots_received;
    metrics_counter *m_proposals_ok, *m_proposals_failed, *m_shed, *m_expiry_cycles;
    metrics_counter *m_forwarded, *m_forward_failures;
    metrics_histogram *m_snapshot_seconds, *m_snapshot_fork_seconds;
};

/* ---- op.c: lists and an op's lifecycle ---------------------------------- */

void op_list_push(op_list *l, replica_op *op);
void op_list_remove(replica_op *op);
/* Move every op of `from` to the end of `to`, in order, in O(1) links. */
void op_list_move_all(op_list *to, op_list *from);

replica_op *replica_op_new(replica *r, replica_req *req, int kind, double timeout_s);
/* Release an op that libraft does not reference (reads, forwards). */
void replica_op_free(replica_op *op);
/* Complete an op's request, if one is still attached. */
void replica_op_finish(replica_op *op, int status);
/* Unlink, complete and free an op that is ours alone (reads, forwards). */
void replica_op_finish_now(replica_op *op, int status);
/* Complete on the next loop iteration, never inside a libraft callback. */
void replica_op_finish_later(replica_op *op, int status);
/* Arm the next-iteration pass: completions, queued reads, step-down. */
void replica__kick(replica *r);
void replica__drain_completions(replica *r);

/* The seam's clocks (env), in ms. */
int64_t replica__mono_ms(replica *r);
int64_t replica__wall_ms(replica *r);
/* The time for a command appended now or a linearizable read confirmed
 * now: the wall clock, never earlier than last_stamp; records it. */
int64_t replica__stamp(replica *r);
/* The replica whose libraft uses this raft_io (hooks libraft calls). */
replica *replica__of_io(struct raft_io *io);

/* ---- fsm.c ----------------------------------------------------------------- */

void replica__fsm_setup(replica *r);
void replica__io_async_setup(replica *r);
/* kv_store's on_result hook: hands a command's result to its proposal. */
void replica__on_result(void *ctx, const kv_command *cmd, const kv_result *res);

/* ---- propose.c ------------------------------------------------------------- */

/* Stamp cmd with this node's origin and next seq, append it to the log
 * and list op on r->proposals. The leader only. */
int replica__submit(replica *r, replica_op *op, kv_command *cmd);

/* ---- leader_forward.c --------------------------------------------------------------- */

/* Send a write (cmd) or a read-index request (cmd NULL) to the leader. */
int replica__forward(replica *r, replica_req *req, int kind, const kv_command *cmd, double timeout);
/* A proposal of this node's own client failed with the leadership: find
 * out whether it applied (leader_forward.c); op goes, its request stays. */
void replica__resolve_own(replica *r, replica_op *op);
void replica__forward_attempt(replica *r, replica_op *op);
void replica__read_applied(replica *r, replica_op *op);
/* Retries due, and reads whose read index has been applied. */
void replica__forward_tick(replica *r);

/* ---- read.c ------------------------------------------------------------------ */

/* The queued reads become the batch of the barrier about to be appended:
 * each gets its expiry stamp and (read index) the last appended index. */
void replica__barrier_begin(replica *r);
void replica__barrier_done(struct raft_barrier *b, int status);
/* Start a barrier for queued linearizable reads, or forward them. */
void replica__serve_queued_reads(replica *r);

/* ---- membership.c ------------------------------------------------------------ */

int replica__role_is_voter(const struct raft_configuration *c, uint64_t id);
unsigned replica__voters(const struct raft_configuration *c);
void replica__register_member(replica *r);
/* Promotions waiting to be retried, on the replica's clock (replica_poll). */
void replica__membership_poll(replica *r);
/* replica_close: changes waiting for a retry fail (shutting down). */
void replica__membership_close(replica *r);
/* replica_destroy: changes still to be delivered no longer point at it. */
void replica__membership_forget(replica *r);

/* ---- expiry.c, metrics.c ------------------------------------------------------- */

void replica__expiry_cycle(replica *r);
void replica__register_metrics(replica *r);
void replica__register_peer_metrics(replica *r);
void replica__free_peer_metrics(replica *r);

#endif
