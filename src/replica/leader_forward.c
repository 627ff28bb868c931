/* A follower's side of writes and linearizable reads: send them to the
 * leader (propose / read-index) with deadlines, backoff and at-most-once
 * writes; and admin requests only the leader can serve (forward_raw). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replica/replica_internal.h"
#include "util/alloc.h"
#include "util/clock.h"

/* ---- forwarding to the leader -------------------------------------------- */

#define FORWARD_BACKOFF_MIN_MS 20
#define FORWARD_BACKOFF_MAX_MS 500

/* Exponential backoff with full jitter: spreads retries of many followers
 * across a leader change instead of synchronising them. */
static void replica__forward_later(replica *r, replica_op *op)
{
    unsigned shift = op->attempts < 5 ? op->attempts : 5;
    int64_t cap = FORWARD_BACKOFF_MIN_MS << shift;
    if (cap > FORWARD_BACKOFF_MAX_MS) cap = FORWARD_BACKOFF_MAX_MS;
    op->retry_at_ms =
        replica__mono_ms(r) + FORWARD_BACKOFF_MIN_MS / 2 + (int64_t)(rand() % (int)cap);
    op->attempts++;
    (void)r;
}

/* ---- a forwarded write whose outcome is unknown ---------------------------
 *
 * The leader died, or lost its leadership, with our write in flight: it
 * appended the entry or not, before we saw the failure (a connection that
 * failed carries nothing more; a leader that stepped down appends no
 * more). A read-index from whoever leads after that settles it: once this
 * node has applied up to the settle index of that answer, every entry the
 * log will ever commit from before the failure has been applied here — a
 * new leader's log holds, before its first entry of its term (committed
 * before it serves read-indexes), every entry that can still commit. So
 * then either our entry was applied here (replica__on_result found it by
 * its identity and answered) or it never will be, and sending it again is
 * safe: exactly once, not at most once. Bounded by the write's deadline;
 * past it the answer is INDETERMINATE as before. */

static void replica__forward_later(replica *r, replica_op *op);

/* A read-index answer, "INDEX STAMP SETTLE" (a leader of an older version
 * sends INDEX alone, or INDEX STAMP): *stamp 0 and *settle 0 when absent. */
static void replica__parse_read_index(const char *body, size_t len, uint64_t *index,
                                      long long *stamp, uint64_t *settle)
{
    char tmp[64];
    size_t n = len < sizeof(tmp) - 1 ? len : sizeof(tmp) - 1;
    memcpy(tmp, body, n);
    tmp[n] = '\0';
    char *end = NULL;
    *index = strtoull(tmp, &end, 10);
    *stamp = end && *end == ' ' ? strtoll(end + 1, &end, 10) : 0;
    *settle = end && *end == ' ' ? strtoull(end + 1, NULL, 10) : 0;
}

static void replica__resolve_later(replica *r, replica_op *op)
{
    metrics_counter_add(r->m_forward_failures, 1);
    op->resolving = true;
    op->wait_index = 0;
    op->attempts = 0;
    replica__forward_later(r, op);
}

void replica__resolve_own(replica *r, replica_op *op)
{
    replica_req *req = op->req;
    replica_op *own = replica_op_new(r, req, OP_FORWARD_WRITE, 0);
    own->deadline_ms = op->deadline_ms;
    own->origin = op->origin;
    own->seq = op->seq;
    buf_init(&own->payload); /* nothing to send again: not applied is the answer then */
    op->req = NULL;
    replica_op_free(op);
    op_list_push(&r->forwards, own);
    replica__resolve_later(r, own); /* the tick asks, outside libraft's callback */
    own->retry_at_ms = 0;
}

static void replica__resolve_answer(replica *r, replica_op *op, int status, int http_status,
                                    const char *body, size_t len)
{
    if (status != FORWARD_OK || http_status != 200 || len == 0) {
        replica__forward_later(r, op); /* a read-index is safe to ask again */
        return;
    }
    uint64_t index, settle;
    long long stamp;
    replica__parse_read_index(body, len, &index, &stamp, &settle);
    if (!settle) {
        /* a leader of an older version: its index alone does not cover
         * entries in flight; stay unknown */
        replica_op_finish_now(op, REPLICA_ERR_INDETERMINATE);
        return;
    }
    op->wait_index = settle > index ? settle : index;
}

/* Called by the tick: a resolving write whose settle index was applied
 * and that did not apply here never will: send it again. */
static void replica__resolve_check(replica *r, replica_op *op)
{
    if (!op->wait_index || raft_last_applied(r->raft) < op->wait_index) return;
    if (op->payload.len == 0) { /* a write of the leader's own client */
        replica_op_finish_now(op, REPLICA_ERR_NOT_APPLIED);
        return;
    }
    op->resolving = false;
    op->wait_index = 0;
    op->attempts = 0;
    replica__forward_attempt(r, op);
}

static void replica__forward_done(void *ctx, int status, bool sent, int http_status,
                                  const char *body, size_t len)
{
    replica_op *op = ctx;
    replica *r = op->r;
    op->freq = NULL;
    bool write = op->kind == OP_FORWARD_WRITE;
    if (write && op->resolving) {
        replica__resolve_answer(r, op, status, http_status, body, len);
        return;
    }
    if (status == FORWARD_OK && http_status == 200) {
        if (write) {
            kv_result res;
            if (kv_result_decode(body, len, &res) != 0) {
                replica_op_finish_now(op, REPLICA_ERR_INDETERMINATE);
                return;
            }
            if (op->req) {
                replica_req *req = op->req;
                req->result = res;
                buf_reset(&req->value_buf);
                buf_append(&req->value_buf, res.value, res.value_len);
                req->result.value = req->value_buf.data ? req->value_buf.data : "";
            }
            metrics_counter_add(r->m_forwarded, 1);
            replica_op_finish_now(op, REPLICA_OK);
            return;
        }
        /* "INDEX STAMP": apply up to INDEX, judge expiry at STAMP (a
         * leader of an older version sends INDEX alone: our clock) */
        uint64_t index, settle;
        long long stamp;
        replica__parse_read_index(body, len, &index, &stamp, &settle);
        if (settle < index) settle = index;
        if (op->req) op->req->read_ms = stamp > 0 ? (int64_t)stamp : replica__wall_ms(r);
        if (op->req && op->req->read_must_settle) index = settle;
        metrics_counter_add(r->m_forwarded, 1);
        op_list_remove(op);
        op->kind = OP_READ_APPLIED;
        op->wait_index = index;
        op->settle_index = settle;
        op_list_push(&r->index_waiters, op);
        if (raft_last_applied(r->raft) >= index) replica__read_applied(r, op);
        return;
    }
    metrics_counter_add(r->m_forward_failures, 1);
    if (status == FORWARD_OK && http_status == 503 && len > 0) {
        /* the leader ran it and failed it: pass its status on, unless the
         * outcome is unknown (it lost the leadership with the write in
         * flight): that is resolved below */
        int st = atoi(body);
        if (st > 0 && st != REPLICA_ERR_NOT_LEADER && st != REPLICA_ERR_NO_LEADER &&
            !(write && st == REPLICA_ERR_INDETERMINATE)) {
            replica_op_finish_now(op, st);
            return;
        }
        if (write && st == REPLICA_ERR_INDETERMINATE) {
            replica__resolve_later(r, op);
            return;
        }
    }
    /* 421: that node was not the leader and did nothing; not sent: nothing
     * reached it. Both are safe to retry. A write that may have reached
     * the leader is never sent again blindly: at most once. Unless it
     * timed out (the leader may still be working on it), whether it was
     * applied is found out (replica__resolve_answer). */
    bool safe = (status == FORWARD_OK && (http_status == 421 || http_status == 503)) || !sent;
    if (write && !safe) {
        if (status == FORWARD_ERR_TIMEOUT)
            replica_op_finish_now(op, REPLICA_ERR_INDETERMINATE);
        else
            replica__resolve_later(r, op);
        return;
    }
    replica__forward_later(r, op);
}

int replica_read_index_answer(const replica_req *req, char *out, size_t cap)
{
    return snprintf(out, cap, "%" PRIu64 " %" PRId64 " %" PRIu64, req->read_index, req->read_ms,
                    req->read_settle_index);
}

/* A follower's read whose index has been applied: served now, unsettled
 * while entries up to its settle index are not applied yet. */
void replica__read_applied(replica *r, replica_op *op)
{
    if (op->req) op->req->read_unsettled = raft_last_applied(r->raft) < op->settle_index;
    replica_op_finish_now(op, REPLICA_OK);
}

void replica__forward_attempt(replica *r, replica_op *op)
{
    int64_t now = replica__mono_ms(r);
    if (now >= op->deadline_ms) {
        raft_id leader = 0;
        const char *addr = NULL;
        raft_leader(r->raft, &leader, &addr);
        replica_op_finish_now(op, op->resolving ? REPLICA_ERR_INDETERMINATE
                                  : leader      ? REPLICA_ERR_TIMEOUT
                                                : REPLICA_ERR_NO_LEADER);
        return;
    }
    if (raft_state(r->raft) == RAFT_LEADER && op->resolving) {
        /* we lead now: once our first entry of the term is applied, our
         * log had every entry that may still commit, ours too if it is
         * there (then it applied and answered already) */
        if (!r->leader_ready || r->leader_ready_term != r->raft->current_term) {
            replica__forward_later(r, op);
            return;
        }
        if (op->payload.len == 0) {
            replica_op_finish_now(op, REPLICA_ERR_NOT_APPLIED);
            return;
        }
        op->resolving = false;
    }
    if (raft_state(r->raft) == RAFT_LEADER) {
        /* we became the leader meanwhile: serve it here */
        replica_req *req = op->req;
        if (!req) {
            replica_op_free(op);
            return;
        }
        op->req = NULL;
        req->op = NULL;
        bool write = op->kind == OP_FORWARD_WRITE;
        kv_command cmd;
        kv_slice args_space[64];
        uint32_t need = 0;
        const char *why = NULL;
        int st = REPLICA_ERR_INTERNAL;
        if (write && kv_command_decode(op->payload.data, op->payload.len, &cmd, args_space, 64,
                                       &need, &why) == 0)
            st = replica_propose(r, req, &cmd);
        else if (!write)
            st = replica_read(r, req, REPLICA_READ_LINEARIZABLE, 0);
        replica_op_free(op);
        if (st != REPLICA_OK) req->cb(req, st);
        return;
    }
    raft_id leader = 0;
    const char *addr = NULL;
    raft_leader(r->raft, &leader, &addr);
    const kv_member *m = leader ? kv_store_member(r->store, leader) : NULL;
    if (!m || !m->http[0]) {
        replica__forward_later(r, op);
        return;
    }
    double left = (double)(op->deadline_ms - now) / 1000.0;
    bool propose = op->kind == OP_FORWARD_WRITE && !op->resolving;
    if (op->kind == OP_FORWARD_WRITE && op->resolving && op->wait_index) return; /* waiting */
    op->freq = r->env.peer->post(r->env.peer_ctx, leader, m->http,
                                 propose ? "/internal/v1/propose" : "/internal/v1/read-index",
                                 propose ? op->payload.data : "", propose ? op->payload.len : 0,
                                 left, replica__forward_done, op);
    if (!op->freq) replica__forward_later(r, op);
}

int replica__forward(replica *r, replica_req *req, int kind, const kv_command *cmd, double timeout)
{
    replica_op *op = replica_op_new(r, req, kind, timeout);
    buf_init(&op->payload);
    if (cmd) {
        kv_command_encode(cmd, &op->payload);
        op->origin = cmd->origin;
        op->seq = cmd->seq;
    }
    op_list_push(&r->forwards, op);
    replica__forward_attempt(r, op);
    return REPLICA_OK;
}

void replica__forward_tick(replica *r)
{
    int64_t now = replica__mono_ms(r);
    for (replica_op *op = r->forwards.head; op;) {
        replica_op *next = op->next;
        if (op->resolving && op->wait_index) {
            if (now >= op->deadline_ms)
                replica_op_finish_now(op, REPLICA_ERR_INDETERMINATE);
            else
                replica__resolve_check(r, op);
        } else if (!op->freq && op->retry_at_ms <= now) {
            replica__forward_attempt(r, op);
        }
        op = next;
    }
    uint64_t applied = raft_last_applied(r->raft);
    for (replica_op *op = r->index_waiters.head; op;) {
        replica_op *next = op->next;
        if (applied >= op->wait_index)
            replica__read_applied(r, op);
        else if (now >= op->deadline_ms)
            replica_op_finish_now(op, REPLICA_ERR_TIMEOUT);
        op = next;
    }
}

typedef struct raw_op {
    replica *r;
    uv_timer_t timer;
    char path[128];
    buf body;
    int64_t deadline_ms;
    replica_raw_cb cb;
    void *ctx;
} raw_op;

static void replica__raw_attempt(uv_timer_t *t);

static void replica__raw_closed(uv_handle_t *h)
{
    raw_op *o = h->data;
    buf_close(&o->body);
    free(o);
}

static void replica__raw_finish(raw_op *o, int http_status, const char *body, size_t len)
{
    if (o->cb) o->cb(o->ctx, http_status, body, len);
    uv_close((uv_handle_t *)&o->timer, replica__raw_closed);
}

static void replica__raw_retry(raw_op *o)
{
    if (replica__mono_ms(o->r) >= o->deadline_ms) {
        replica__raw_finish(o, 0, NULL, 0);
        return;
    }
    uv_timer_start(&o->timer, replica__raw_attempt, 50 + (uint64_t)(rand() % 50), 0);
}

static void replica__raw_done(void *ctx, int status, bool sent, int http_status, const char *body,
                              size_t len)
{
    raw_op *o = ctx;
    /* 421: that node no longer leads and did nothing; try the new one */
    if ((status == FORWARD_OK && http_status == 421) || (status != FORWARD_OK && !sent)) {
        replica__raw_retry(o);
        return;
    }
    replica__raw_finish(o, status == FORWARD_OK ? http_status : 0, body, len);
}

static void replica__raw_attempt(uv_timer_t *t)
{
    raw_op *o = t->data;
    replica *r = o->r;
    if (r->closing) {
        replica__raw_finish(o, 0, NULL, 0);
        return;
    }
    raft_id leader = 0;
    const char *addr = NULL;
    raft_leader(r->raft, &leader, &addr);
    const kv_member *m = leader && leader != r->id ? kv_store_member(r->store, leader) : NULL;
    double left = (double)(o->deadline_ms - replica__mono_ms(r)) / 1000.0;
    if (!m || !m->http[0] || left <= 0 ||
        !r->env.peer->post(r->env.peer_ctx, leader, m->http, o->path, o->body.data, o->body.len,
                           left, replica__raw_done, o))
        replica__raw_retry(o);
}

int replica_forward_raw(replica *r, const char *path, const void *body, size_t len,
                        replica_raw_cb cb, void *ctx)
{
    if (!r->durable || !r->env.peer || r->closing) return REPLICA_ERR_NO_LEADER;
    raw_op *o = xcalloc(1, sizeof(*o));
    o->r = r;
    o->cb = cb;
    o->ctx = ctx;
    snprintf(o->path, sizeof(o->path), "%s", path);
    buf_init(&o->body);
    buf_append(&o->body, body, len);
    o->deadline_ms = replica__mono_ms(r) + (int64_t)(r->cfg->write_timeout * 1000);
    uv_timer_init(r->loop, &o->timer);
    o->timer.data = o;
    uv_timer_start(&o->timer, replica__raw_attempt, 0, 0);
    return REPLICA_OK;
}
