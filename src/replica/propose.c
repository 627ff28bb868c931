/* The write path: admission (in-flight limit, disk guard), submission to
 * libraft, and a proposal's outcome. Followers forward (forward.c). */
#include <stdio.h>
#include <stdlib.h>

#include "obs/log.h"
#include "replica/replica_internal.h"
#include "util/clock.h"

/* ---- proposals ---------------------------------------------------------- */

/* A log write failed (libraft reports RAFT_IOERR / RAFT_NOSPACE to every
 * proposal the write carried). One error line per episode, naming what
 * libraft could not write, then one a minute while it lasts. A full disk
 * fails libraft's preallocation of the next segment; that is retried with
 * the next write, so writes succeed again as soon as space is back. */
static void replica__storage_error(replica *r)
{
    r->storage_errors++;
    const char *why = raft_errmsg(r->raft);
    snprintf(r->storage_error, sizeof(r->storage_error), "%s", why && why[0] ? why : "I/O error");
    uint64_t now = clock_mono_ns();
    if (r->storage_error_logged_ns && now - r->storage_error_logged_ns < 60ULL * 1000000000ULL)
        return;
    r->storage_error_logged_ns = now;
    LOG_ERROR("cannot write the raft log: writes through this node fail while this lasts",
              LF_S("error", r->storage_error), LF_S("dir", r->raft_dir),
              LF_I("failed_writes", r->storage_errors));
}

static void replica__proposal_done(struct raft_apply *a, int status, void *result)
{
    replica_op *op = a->data;
    replica *r = op->r;
    (void)result;
    op_list_remove(op);
    if (!op->internal_noop && !op->internal_expiry && !op->internal_member) r->inflight--;
    if (op->internal_member) r->member_inflight = false;
    if (op->internal_noop) {
        r->noop_inflight = false;
        if (status == 0 && raft_state(r->raft) == RAFT_LEADER &&
            r->raft->current_term == op->term) {
            r->leader_ready = true;
            r->leader_ready_term = op->term;
            LOG_INFO("leader ready", LF_I("term", op->term));
        }
    }
    if (op->internal_expiry) r->expiry_inflight = false;
    int st = REPLICA_OK;
    switch (status) {
    case 0:
        break;
    case RAFT_NOTLEADER:
        st = REPLICA_ERR_NOT_LEADER;
        break;
    case RAFT_SHUTDOWN:
        st = REPLICA_ERR_SHUTDOWN;
        break;
    case RAFT_IOERR:
    case RAFT_NOSPACE:
        /* our own log write failed; followers may still have it, so the
         * outcome is unknown as after a lost leadership */
        st = REPLICA_ERR_STORAGE;
        replica__storage_error(r);
        break;
    default:
        st = REPLICA_ERR_INDETERMINATE;
        break;
    }
    metrics_counter_add(st == REPLICA_OK ? r->m_proposals_ok : r->m_proposals_failed, 1);
    if (st == REPLICA_ERR_INDETERMINATE && op->req && op->origin == r->id && !r->closing) {
        /* our own client's write: found out as a forwarded one is
         * (leader_forward.c), answered with its result or NOT_APPLIED. A
         * write a follower forwarded is answered INDETERMINATE: that
         * follower finds it out itself, and sends it again if need be. */
        replica__resolve_own(r, op);
        return;
    }
    if (op->req) {
        replica_op_finish_later(op, st);
    } else {
        replica_op_free(op);
    }
}

int replica__submit(replica *r, replica_op *op, kv_command *cmd)
{
    /* The leader stamps every command as it appends it, replacing the
     * stamp a forwarding node chose: apply judges expiry at the stamp, and
     * stamps that grow along the log let a linearizable read judge expiry
     * consistently with every command (docs/design.md, "Expiry"). A TTL
     * stays what the client asked: expire_ms was fixed at arrival. */
    cmd->now_ms = replica__stamp(r);
    if (cmd->origin == 0 || cmd->origin == r->id) {
        cmd->origin = r->id;
        cmd->seq = ++r->seq;
    } /* else forwarded by that node: its identity stays, so that node
       * knows the entry when it applies it (a write whose answer was lost
       * with the leader is resolved that way, leader_forward.c) */
    op->origin = cmd->origin;
    op->seq = cmd->seq;
    size_t n = kv_command_encoded_size(cmd);
    struct raft_buffer b = {.base = raft_malloc(n), .len = n};
    if (!b.base) return REPLICA_ERR_INTERNAL;
    kv_command_encode_to(cmd, b.base);
    op_list_push(&r->proposals, op);
    int rv = raft_apply(r->raft, &op->apply, &b, 1, replica__proposal_done);
    if (rv != 0) {
        op_list_remove(op);
        raft_free(b.base);
        return rv == RAFT_NOTLEADER ? REPLICA_ERR_NOT_LEADER : REPLICA_ERR_INTERNAL;
    }
    return REPLICA_OK;
}

static int replica__propose(replica *r, replica_req *req, kv_command *cmd, bool may_forward)
{
    if (r->closing) return REPLICA_ERR_SHUTDOWN;
    if (!cmd->now_ms) cmd->now_ms = replica__wall_ms(r);
    if (!r->durable) {
        /* persistence none: apply at once, same state machine */
        cmd->now_ms = replica__stamp(r);
        cmd->origin = 0;
        kv_result res;
        r->applying = req;
        kv_store_apply(r->store, cmd, &res);
        r->applying = NULL;
        req->result = res;
        buf_reset(&req->value_buf);
        buf_append(&req->value_buf, res.value, res.value_len);
        req->result.value = req->value_buf.data ? req->value_buf.data : "";
        metrics_counter_add(r->m_proposals_ok, 1);
        req->cb(req, REPLICA_OK);
        return REPLICA_OK;
    }
    if (r->inflight >= r->cfg->max_inflight) {
        metrics_counter_add(r->m_shed, 1);
        return REPLICA_ERR_BUSY;
    }
    if (raft_state(r->raft) != RAFT_LEADER) {
        if (!may_forward) return REPLICA_ERR_NOT_LEADER;
        cmd->origin = r->id;
        cmd->seq = ++r->seq;
        return replica__forward(r, req, OP_FORWARD_WRITE, cmd, r->cfg->write_timeout);
    }
    if (disk_guard_refuses(&r->disk, cmd->op)) return REPLICA_ERR_NOSPACE;
    replica_op *op = replica_op_new(r, req, OP_PROPOSE, r->cfg->write_timeout);
    int rv = replica__submit(r, op, cmd);
    if (rv != REPLICA_OK) {
        req->op = NULL;
        free(op);
        return rv;
    }
    r->inflight++;
    return REPLICA_OK;
}

int replica_propose(replica *r, replica_req *req, kv_command *cmd)
{
    return replica__propose(r, req, cmd, true);
}

int replica_propose_here(replica *r, replica_req *req, kv_command *cmd)
{
    return replica__propose(r, req, cmd, false);
}
