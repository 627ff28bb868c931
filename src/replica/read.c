/* Linearizable reads on the leader: reads queue for a barrier; one
 * barrier in flight serves every read queued before it started. Also the
 * leader's side of a follower's read-index request. */
#include "replica/replica_internal.h"

/* ---- reads -------------------------------------------------------------- */

/* Start a batch: the queued reads become the batch the next barrier
 * serves. The reads a barrier serves are linearized where it is appended: each
 * judges expiry at the stamp taken now (T), and a follower's read is
 * settled at the last entry appended before it. Every entry up to there is stamped at
 * or before T, every later one at or after T (replica__stamp), so a key a
 * read finds expired is expired for every command after it, and one a
 * command before it found alive was alive at T too. The barrier commits
 * every earlier entry, so this also covers a leader that has not yet
 * committed an entry of its own term (Raft thesis §6.4). */
void replica__barrier_begin(replica *r)
{
    op_list_move_all(&r->barrier_now, &r->barrier_next);
    int64_t stamp = replica__stamp(r);
    uint64_t last = raft_last_index(r->raft);
    for (replica_op *op = r->barrier_now.head; op; op = op->next) {
        if (!op->req) continue;
        op->req->read_ms = stamp;
        if (op->kind != OP_READ_INDEX) continue;
        op->req->read_settle_index = last;
        /* The commit index at arrival saves the follower waiting for the
         * entries in flight: a read served there is linearized before
         * them, and is settled unless it hid an expired entry
         * (replica_read_settle). It counts only when this leader had
         * committed an entry of its own term at arrival and the barrier
         * runs in that term (Raft thesis §6.4). */
        if (op->index_after_barrier || op->term != r->raft->current_term)
            op->req->read_index = last;
    }
}

static void replica__start_barrier(replica *r)
{
    if (r->barrier_inflight || !r->barrier_next.head) return;
    replica__barrier_begin(r);
    r->barrier.data = r;
    int rv = raft_barrier(r->raft, &r->barrier, replica__barrier_done);
    if (rv != 0) {
        int st = rv == RAFT_NOTLEADER ? REPLICA_ERR_NOT_LEADER : REPLICA_ERR_INTERNAL;
        while (r->barrier_now.head) replica_op_finish_now(r->barrier_now.head, st);
        return;
    }
    r->barrier_inflight = true;
}

void replica__barrier_done(struct raft_barrier *b, int status)
{
    replica *r = b->data;
    r->barrier_inflight = false;
    if (status == 0 || r->closing) {
        int st = status == 0 ? REPLICA_OK : REPLICA_ERR_SHUTDOWN;
        for (replica_op *op = r->barrier_now.head; op; op = op->next) op->status = st;
        op_list_move_all(&r->completed, &r->barrier_now);
    } else {
        /* leadership lost: reads are safe to retry, so they go back in the
         * queue (oldest first) and the kick sends them to the new leader */
        op_list_move_all(&r->barrier_now, &r->barrier_next); /* failed batch, then newer reads */
        op_list_move_all(&r->barrier_next, &r->barrier_now);
    }
    replica__kick(r); /* the next barrier starts outside this callback */
}

/* Queued linearizable reads: a leader starts a barrier for them; a node
 * that no longer leads forwards them (read-index) to the new leader. */
void replica__serve_queued_reads(replica *r)
{
    if (r->barrier_inflight || !r->barrier_next.head || r->closing) return;
    if (raft_state(r->raft) == RAFT_LEADER) {
        replica__start_barrier(r);
        return;
    }
    while (r->barrier_next.head) {
        replica_op *op = r->barrier_next.head;
        if (op->kind == OP_READ_INDEX) {
            /* asked of us as the leader: the follower asks the new one */
            replica_op_finish_later(op, REPLICA_ERR_NOT_LEADER);
            continue;
        }
        op_list_remove(op);
        op->kind = OP_FORWARD_READ;
        buf_init(&op->payload);
        op_list_push(&r->forwards, op);
        replica__forward_attempt(r, op);
    }
}

/* A single voter that leads serves a linearizable read from its state at
 * once, judged at a stamp taken now. Entries in flight (appended, not yet
 * applied) may be stamped before now and judge a key alive that the read,
 * at now, finds expired: such a read is marked unsettled, and one whose
 * answer hid an expired entry is read again behind a barrier
 * (replica_read_settle). Any other answer is the same at every time
 * between those stamps and now, so the read is linearized before the
 * entries in flight. */
static bool replica__local_reads_ok(replica *r)
{
    return raft_state(r->raft) == RAFT_LEADER && r->leader_ready &&
           r->leader_ready_term == r->raft->current_term &&
           replica__voters(&r->raft->configuration) == 1;
}

static int replica__read(replica *r, replica_req *req, int consistency, uint64_t min_revision,
                         bool may_be_unsettled)
{
    if (r->closing) return REPLICA_ERR_SHUTDOWN;
    /* stale and bookmark reads promise no order: this node's clock */
    req->read_ms = replica__wall_ms(r);
    req->read_unsettled = false;
    req->read_must_settle = false;
    if (min_revision > r->store->revision) {
        replica_op *op = replica_op_new(r, req, OP_READ_REVISION, r->cfg->read_wait_timeout);
        op->min_revision = min_revision;
        op_list_push(&r->rev_waiters, op);
        return REPLICA_OK;
    }
    bool local = r->durable && consistency != REPLICA_READ_STALE && replica__local_reads_ok(r);
    bool in_flight = local && raft_last_applied(r->raft) < raft_last_index(r->raft);
    if (!r->durable || consistency == REPLICA_READ_STALE ||
        (local && (!in_flight || may_be_unsettled))) {
        if (consistency != REPLICA_READ_STALE) req->read_ms = replica__stamp(r);
        req->read_unsettled = in_flight;
        req->cb(req, REPLICA_OK);
        return REPLICA_OK;
    }
    if (raft_state(r->raft) != RAFT_LEADER) {
        /* read-index: the leader confirms its leadership and tells us how
         * far to apply; then the local state is at least as new as any
         * write acknowledged before this read began */
        return replica__forward(r, req, OP_FORWARD_READ, NULL, r->cfg->write_timeout);
    }
    replica_op *op = replica_op_new(r, req, OP_READ_BARRIER, r->cfg->write_timeout);
    op_list_push(&r->barrier_next, op);
    replica__start_barrier(r);
    return REPLICA_OK;
}

int replica_read(replica *r, replica_req *req, int consistency, uint64_t min_revision)
{
    return replica__read(r, req, consistency, min_revision, true);
}

int replica_read_settle(replica *r, replica_req *req)
{
    int st = replica__read(r, req, REPLICA_READ_LINEARIZABLE, 0, false);
    req->read_must_settle = true; /* a follower waits for the settle index */
    return st;
}

int replica_read_index(replica *r, replica_req *req)
{
    if (r->closing) return REPLICA_ERR_SHUTDOWN;
    if (!r->durable || raft_state(r->raft) != RAFT_LEADER) return REPLICA_ERR_NOT_LEADER;
    replica_op *op = replica_op_new(r, req, OP_READ_INDEX, r->cfg->write_timeout);
    op->term = r->raft->current_term;
    op->index_after_barrier = !(r->leader_ready && r->leader_ready_term == r->raft->current_term);
    req->read_index = r->raft->commit_index;
    op_list_push(&r->barrier_next, op);
    replica__start_barrier(r);
    return REPLICA_OK;
}

uint64_t replica_applied_index(replica *r)
{
    return r->durable ? raft_last_applied(r->raft) : r->store->revision;
}
