/* replica: orders operations. The only module that knows libraft.
 *
 * Writes: replica_propose encodes a kv command and appends it to the Raft
 * log (durable mode) or applies it at once (persistence none). The request
 * completes after the entry is committed and applied; its kv_result is the
 * one the state machine produced for it, found by (origin node, sequence
 * number) carried inside the command, so that no result object has to
 * travel through libraft.
 *
 * Reads: replica_read completes when it is safe to read the local store:
 * at once for stale reads, when the local revision reaches min_revision for
 * bookmarks, and for linearizable reads once this node is a leader that has
 * committed an entry in its term (single voter) or after a barrier that
 * serves every read queued while it was in flight (several voters).
 *
 * Every request has a deadline; a request is failed with a clear status
 * rather than left hanging. Completion callbacks may run before
 * replica_propose/replica_read return (persistence none, or a read that is
 * ready at once): the caller must not touch the request after calling them
 * unless it handles that. A caller that goes away calls replica_cancel.
 * Loop thread only. */
#ifndef CAIRN_REPLICA_REPLICA_H
#define CAIRN_REPLICA_REPLICA_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "kv/command.h"
#include "kv/store.h"
#include "replica/forward.h"
#include "util/buf.h"
#include "util/config.h"

typedef enum replica_status {
    REPLICA_OK = 0,
    REPLICA_ERR_BUSY,          /* too much in flight: shed (503 + Retry-After) */
    REPLICA_ERR_NO_LEADER,     /* no leader known within the deadline (503) */
    REPLICA_ERR_NOT_LEADER,    /* this node cannot serve it (503) */
    REPLICA_ERR_TIMEOUT,       /* not committed within the deadline (503) */
    REPLICA_ERR_INDETERMINATE, /* leadership lost: may or may not be applied (503) */
    REPLICA_ERR_SHUTDOWN,      /* the node is stopping (503) */
    REPLICA_ERR_READ_TIMEOUT,  /* min_revision not reached in time (504) */
    REPLICA_ERR_STORAGE,       /* this node could not write its log: outcome unknown (503) */
    REPLICA_ERR_NOSPACE,       /* refused: the leader's disk is almost full (503) */
    REPLICA_ERR_INTERNAL,      /* unexpected (500) */
    REPLICA_ERR_NOT_APPLIED,   /* leadership lost with it in flight, and found out: never
                                * applied, safe to retry (503) */
} replica_status;

const char *replica_status_text(int status);

typedef struct replica_req replica_req;
typedef void (*replica_cb)(replica_req *req, int status);

struct replica_req {
    void *data;
    replica_cb cb;
    kv_result result;    /* for proposals; result.value points into value_buf */
    uint64_t read_index; /* replica_read_index's answer */
    /* replica_read_index: the last entry appended before the barrier; a
     * read served at read_index is settled once this is applied too */
    uint64_t read_settle_index;
    /* replica_read and replica_read_index: the time the read judges
     * expiry at (a linearizable read: the leader's stamp when it confirmed
     * the read, docs/design.md "Expiry"; others: this node's clock) */
    int64_t read_ms;
    /* replica_read served a linearizable read at once while entries
     * stamped before read_ms were still in flight: an answer that hid an
     * expired entry must be read again after replica_read_settle */
    bool read_unsettled;
    bool read_must_settle; /* internal: replica_read_settle asked for a settled read */
    buf value_buf;
    struct replica_op *op; /* internal */
};

void replica_req_init(replica_req *req, void *data, replica_cb cb);
void replica_req_close(replica_req *req);

typedef struct replica replica;
struct raft;
struct raft_fsm;

/* The replica's seam (docs/design.md, "The replica's seam"): its clocks and
 * the way it reaches other members' client APIs. replica_create uses the
 * system's clocks and HTTP (forward.c); a simulator passes its own. */
typedef struct replica_peer_ops {
    /* POST body to path (/internal/v1/propose, /internal/v1/read-index, an
     * admin path) on member peer_id, whose client address is http, as a
     * request relayed for a client. Returns a handle for cancel, or NULL
     * if nothing could be started (cb is then not called); otherwise cb
     * runs exactly once, never from inside post. */
    void *(*post)(void *ctx, uint64_t peer_id, const char *http, const char *path, const void *body,
                  size_t len, double timeout_s, forward_cb cb, void *cb_ctx);
    void (*cancel)(void *ctx, void *req);              /* cb will not be called */
    int (*breaker_state)(void *ctx, uint64_t peer_id); /* 0 closed, 1 open, 2 half-open */
} replica_peer_ops;

typedef struct replica_env {
    int64_t (*mono_ms)(void *ctx); /* deadlines, retries, periods */
    int64_t (*wall_ms)(void *ctx); /* the time written commands carry */
    void *clock_ctx;
    const replica_peer_ops *peer;
    void *peer_ctx;
} replica_env;

int replica_create(replica **out, uv_loop_t *loop, const cairn_config *cfg, kv_store *store,
                   char *err, size_t errlen);
/* A replica on a struct raft that the caller owns and runs (tests/sim, on
 * a simulated raft_io): create it, raft_init a struct raft with
 * replica_fsm(), replica_attach() it before raft_start. Snapshots are
 * taken in process (no fork); no timer runs the periodic work: the caller
 * calls replica_poll(). To stop, raft_close first; once libraft's close
 * callback has run, replica_close and replica_destroy. Durable mode only. */
int replica_create_detached(replica **out, uv_loop_t *loop, const cairn_config *cfg,
                            kv_store *store, const replica_env *env);
struct raft_fsm *replica_fsm(replica *r);
void replica_attach(replica *r, struct raft *raft);
void replica_poll(replica *r);

/* Start Raft (loads snapshot + log). Returns 0 or -1 with err set. */
int replica_start(replica *r, char *err, size_t errlen);
/* Hand leadership away if we lead and others can take it; cb when done
 * (or at once). */
void replica_step_down(replica *r, void (*cb)(void *ctx), void *ctx);
/* Shutdown has begun: answer reads that are waiting (bookmarks, index)
 * with SHUTDOWN now rather than letting them run into the drain limit. */
void replica_begin_shutdown(replica *r);
/* Stop: fail pending requests with SHUTDOWN, close Raft; cb when closed. */
void replica_close(replica *r, void (*cb)(void *ctx), void *ctx);
void replica_destroy(replica *r);

/* Propose a write. cmd->args may point into caller memory (copied here).
 * Returns REPLICA_OK (cb will be / has been called) or an error status
 * (cb is not called). */
int replica_propose(replica *r, replica_req *req, kv_command *cmd);

enum { REPLICA_READ_LINEARIZABLE = 0, REPLICA_READ_STALE };
int replica_read(replica *r, replica_req *req, int consistency, uint64_t min_revision);

/* A read answered with read_unsettled set hid an expired entry (the
 * store's hidden_expired grew): read again once the entries in flight
 * when it was served have been applied (cb again, read_unsettled false).
 * Same return as replica_read. */
int replica_read_settle(replica *r, replica_req *req);

/* For requests forwarded to us by another node: serve here or fail with
 * REPLICA_ERR_NOT_LEADER, never forward again (no forwarding loops). */
int replica_propose_here(replica *r, replica_req *req, kv_command *cmd);
/* Raft read-index, the leader's side of a follower's linearizable read:
 * confirm leadership with a barrier, then answer in req->read_index the
 * index the follower must have applied before it reads. Fails with
 * REPLICA_ERR_NOT_LEADER (never forwarded) when this node does not lead. */
int replica_read_index(replica *r, replica_req *req);
/* The body of a read-index answer: "INDEX STAMP SETTLE" (the follower
 * applies up to INDEX and judges expiry at STAMP; its read is settled once
 * SETTLE is applied too). Returns its length. */
int replica_read_index_answer(const replica_req *req, char *out, size_t cap);
/* Raft index this node has applied (the read-index answer). */
uint64_t replica_applied_index(replica *r);

/* Detach a pending request: its callback will not be called. */
void replica_cancel(replica_req *req);

typedef struct replica_status_info {
    const char *role; /* leader, follower, candidate, learner, standalone, unavailable */
    uint64_t id;
    uint64_t term;
    uint64_t leader_id; /* 0 when unknown */
    uint64_t commit_index;
    uint64_t applied_index;
    uint64_t last_index;
    uint64_t snapshots_taken;
    uint64_t inflight;
    bool ready;
    const char *not_ready_reason;
    uint64_t storage_errors;   /* log writes that failed (disk full, I/O error) */
    const char *storage_error; /* the last one, as libraft said it; "" if none */
    uint64_t disk_free_bytes;  /* free space under the data dir (UINT64_MAX: not measured) */
    bool disk_low;             /* below --min-free-disk: writes refused */
} replica_status_info;

void replica_get_status(replica *r, replica_status_info *info);

typedef struct replica_member_info {
    uint64_t id;
    const char *peer;
    const char *http; /* "" when not yet known */
    const char *resp;
    const char *role; /* voter, standby, spare */
    bool leader;
    bool has_match;       /* match_index is known (we lead) */
    uint64_t match_index; /* last log index known replicated there */
} replica_member_info;

/* Members of the current configuration; returns how many (at most max).
 * Pointers are valid until the next loop iteration. */
size_t replica_members(replica *r, replica_member_info *out, size_t max);

/* Membership and leadership (leader only; see replica_forward_raw for
 * followers). cb gets 0 or a libraft error code with a message. */
typedef void (*replica_change_cb)(void *ctx, int status, const char *message);
int replica_member_add(replica *r, uint64_t id, const char *peer, replica_change_cb cb, void *ctx);
int replica_member_remove(replica *r, uint64_t id, replica_change_cb cb, void *ctx);
int replica_transfer_leadership(replica *r, uint64_t id, replica_change_cb cb, void *ctx);
bool replica_is_leader(replica *r);
uint64_t replica_id(replica *r);

/* Send an HTTP request body to the leader's path and hand back its answer
 * (admin requests that only the leader can perform). http_status is 0
 * when the leader could not be reached in time. */
typedef void (*replica_raw_cb)(void *ctx, int http_status, const char *body, size_t len);
int replica_forward_raw(replica *r, const char *path, const void *body, size_t len,
                        replica_raw_cb cb, void *ctx);

/* While the store applies an entry (inside its change callbacks): the
 * request on this node that proposed or forwarded it, NULL when the entry
 * came from elsewhere or its request is gone. Lets a client's own writes
 * be told apart (CLIENT TRACKING's NOLOOP). */
replica_req *replica_applying(const replica *r);

/* Current time in ms since the epoch, as commands carry it. */
int64_t replica_now_ms(void);
/* The time a completed read judges expiry at (req->read_ms), or the
 * current time for a request that did not read through replica_read. */
int64_t replica_req_read_ms(const replica_req *req);

#endif
