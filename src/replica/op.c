/* The replica's operations: intrusive op lists, an op's lifecycle from
 * request to completion, and completions deferred to the next loop
 * iteration (see `completed` in replica_internal.h). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "replica/replica_internal.h"
#include "util/alloc.h"
#include "util/clock.h"

/* ---- small helpers ---------------------------------------------------- */

int64_t replica_now_ms(void)
{
    return clock_wall_ms();
}

int64_t replica_req_read_ms(const replica_req *req)
{
    return req->read_ms ? req->read_ms : clock_wall_ms();
}

int64_t replica__mono_ms(replica *r)
{
    return r->env.mono_ms(r->env.clock_ctx);
}

int64_t replica__wall_ms(replica *r)
{
    return r->env.wall_ms(r->env.clock_ctx);
}

int64_t replica__stamp(replica *r)
{
    int64_t now = replica__wall_ms(r);
    if (now < r->last_stamp) now = r->last_stamp; /* a clock stepped back */
    r->last_stamp = now;
    return now;
}

/* The op lists are intrusive doubly linked lists. Invariant (asserted
 * in test and sanitizer builds): an op is on at most one list, op->list
 * names it, and the list's head, tail and count agree with the links. */
void op_list_push(op_list *l, replica_op *op)
{
    assert(op->list == NULL && op->prev == NULL && op->next == NULL);
    op->list = l;
    op->prev = l->tail;
    if (l->tail)
        l->tail->next = op;
    else
        l->head = op;
    l->tail = op;
    l->n++;
}

void op_list_remove(replica_op *op)
{
    op_list *l = op->list;
    if (!l) return;
    assert(l->n > 0);
    assert(op->prev ? op->prev->next == op : l->head == op);
    assert(op->next ? op->next->prev == op : l->tail == op);
    if (op->prev)
        op->prev->next = op->next;
    else
        l->head = op->next;
    if (op->next)
        op->next->prev = op->prev;
    else
        l->tail = op->prev;
    op->prev = op->next = NULL;
    op->list = NULL;
    l->n--;
}

/* Move every op of `from` to the end of `to`, in order, by joining the two
 * chains once; only op->list is rewritten op by op. Not a pop-and-push loop:
 * GCC 12.2 at -O3 compiled that loop, in replica__barrier_done, into one
 * that never re-read from->head and never ended (docs/design.md, "The op
 * lists and GCC -O3"; tests/unit/test_replica_barrier.c). */
void op_list_move_all(op_list *to, op_list *from)
{
    assert(to != from);
    if (!from->head) return;
    size_t n = 0;
    for (replica_op *op = from->head; op; op = op->next, n++) {
        assert(op->list == from);
        op->list = to;
    }
    assert(n == from->n);
    if (to->tail) {
        to->tail->next = from->head;
        from->head->prev = to->tail;
    } else {
        to->head = from->head;
    }
    to->tail = from->tail;
    to->n += n;
    from->head = from->tail = NULL;
    from->n = 0;
}

const char *replica_status_text(int status)
{
    switch (status) {
    case REPLICA_OK:
        return "ok";
    case REPLICA_ERR_BUSY:
        return "too many requests in flight";
    case REPLICA_ERR_NO_LEADER:
        return "no leader";
    case REPLICA_ERR_NOT_LEADER:
        return "not the leader";
    case REPLICA_ERR_TIMEOUT:
        return "quorum lost: not committed in time";
    case REPLICA_ERR_INDETERMINATE:
        return "leadership lost: outcome unknown";
    case REPLICA_ERR_SHUTDOWN:
        return "node is shutting down";
    case REPLICA_ERR_READ_TIMEOUT:
        return "revision not reached in time";
    case REPLICA_ERR_STORAGE:
        return "storage error: this node could not write its log (disk full or failing); "
               "outcome unknown";
    case REPLICA_ERR_NOSPACE:
        return "disk almost full: writes refused until space is freed (not applied; deletes "
               "still work)";
    case REPLICA_ERR_NOT_APPLIED:
        return "leadership lost: not applied";
    default:
        return "internal error";
    }
}

void replica_req_init(replica_req *req, void *data, replica_cb cb)
{
    memset(req, 0, sizeof(*req));
    req->data = data;
    req->cb = cb;
    buf_init(&req->value_buf);
}

void replica_req_close(replica_req *req)
{
    if (req->op) replica_cancel(req);
    buf_close(&req->value_buf);
}

replica_op *replica_op_new(replica *r, replica_req *req, int kind, double timeout_s)
{
    replica_op *op = xcalloc(1, sizeof(*op));
    op->r = r;
    op->req = req;
    op->kind = kind;
    op->deadline_ms = replica__mono_ms(r) + (int64_t)(timeout_s * 1000);
    op->apply.data = op;
    if (req) req->op = op;
    return op;
}

/* Release an op that libraft does not reference (reads, forwards). */
void replica_op_free(replica_op *op)
{
    op_list_remove(op);
    if (op->freq) op->r->env.peer->cancel(op->r->env.peer_ctx, op->freq);
    if (op->internal_member) op->r->member_inflight = false;
    buf_close(&op->payload);
    free(op);
}

/* Complete an op's request, if one is still attached. */
void replica_op_finish(replica_op *op, int status)
{
    replica_req *req = op->req;
    if (!req) return;
    op->req = NULL;
    req->op = NULL;
    req->cb(req, status);
}

/* Finish an op that is ours alone (reads, forwards): it goes at once. */
void replica_op_finish_now(replica_op *op, int status)
{
    op_list_remove(op);
    replica_op_finish(op, status);
    replica_op_free(op);
}

/* Queue an op's completion for the next loop iteration (see `completed`). */
void replica_op_finish_later(replica_op *op, int status)
{
    op_list_remove(op);
    op->status = status;
    op_list_push(&op->r->completed, op);
    replica__kick(op->r);
}

void replica_cancel(replica_req *req)
{
    replica_op *op = req->op;
    if (!op) return;
    req->op = NULL;
    op->req = NULL;
    /* A proposal stays until libraft calls back: libraft holds a pointer
     * into it (unless it already did and the op only waits to complete).
     * Reads are ours alone. */
    if (op->kind != OP_PROPOSE || op->list == &op->r->completed) replica_op_free(op);
}

static void replica__run_completions(uv_timer_t *t)
{
    replica *r = t->data;
    r->kick_armed = false;
    replica__drain_completions(r);
    replica__serve_queued_reads(r);
    if (r->stepdown_done) {
        r->stepdown_done = false;
        if (r->stepdown_cb) r->stepdown_cb(r->stepdown_ctx);
    }
}

void replica__drain_completions(replica *r)
{
    /* a completion may queue more: take only what is there now */
    op_list batch = {0};
    op_list_move_all(&batch, &r->completed);
    while (batch.head) {
        replica_op *op = batch.head;
        op_list_remove(op);
        replica_op_finish(op, op->status);
        replica_op_free(op);
    }
}

void replica__kick(replica *r)
{
    if (r->kick_armed || r->closing) return;
    r->kick_armed = true;
    uv_timer_start(&r->kick, replica__run_completions, 0, 0);
}
