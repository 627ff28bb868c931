#include "replica/barrier_guard.h"

#include <stdlib.h>
#include <string.h>

#include "obs/log.h"
#include "util/alloc.h"

typedef enum { OP_APPEND, OP_TRUNCATE, OP_SNAPSHOT_PUT } guard_op_kind;

struct guard_op {
    guard_op_kind kind;
    struct raft_io_append *append_req;
    const struct raft_entry *entries;
    unsigned n;
    raft_io_append_cb append_cb;
    raft_index index;
    unsigned trailing;
    struct raft_io_snapshot_put *put_req;
    const struct raft_snapshot *snapshot;
    raft_io_snapshot_put_cb put_cb;
    guard_op *next;
};

/* The raft_io callbacks carry no pointer of ours (io->data is libraft's),
 * so the guards are found by their io or request. One per raft group. */
static barrier_guard **guard__all;
static size_t guard__n, guard__cap;

static barrier_guard *guard__of_io(struct raft_io *io)
{
    for (size_t i = 0; i < guard__n; i++)
        if (guard__all[i]->io == io) return guard__all[i];
    abort(); /* an io without its guard: a wiring bug */
}

static void guard__drain(barrier_guard *g);
static void guard__close_now(barrier_guard *g);

static void guard__drain_cb(uv_timer_t *t)
{
    barrier_guard *g = t->data;
    if (g->close_waits && g->unconfirmed == GUARD_IDLE) {
        g->close_waits = false;
        guard__close_now(g);
        return;
    }
    guard__drain(g);
}

static void guard__drain_soon(barrier_guard *g)
{
    if (g->head && !uv_is_closing((uv_handle_t *)&g->drain_timer))
        uv_timer_start(&g->drain_timer, guard__drain_cb, 0, 0);
}

/* ---- callbacks ---------------------------------------------------------------- */

static void guard__confirm_cb(struct raft_io_append *req, int status)
{
    barrier_guard *g = NULL;
    for (size_t i = 0; i < guard__n && !g; i++)
        if (guard__all[i]->confirm_req == req) g = guard__all[i];
    if (!g) abort();
    raft_io_append_cb cb = g->confirm_cb;
    g->confirm_req = NULL;
    g->confirm_cb = NULL;
    g->confirm_assigned = false;
    g->unconfirmed = GUARD_IDLE;
    cb(req, status);
    if (g->close_waits) {
        /* not from inside libraft's write callback: closing its writer
         * there trips libuv's assertion on the poll handle being closed */
        uv_timer_start(&g->drain_timer, guard__drain_cb, 0, 0);
        return;
    }
    guard__drain_soon(g);
}

static void guard__put_cb(struct raft_io_snapshot_put *req, int status)
{
    barrier_guard *g = NULL;
    for (size_t i = 0; i < guard__n && !g; i++)
        if (guard__all[i]->put_req == req) g = guard__all[i];
    if (!g) abort();
    raft_io_snapshot_put_cb cb = g->put_cb;
    g->put_req = NULL;
    g->put_cb = NULL;
    g->unconfirmed = GUARD_IDLE;
    cb(req, status);
    guard__drain_soon(g);
}

/* ---- issuing ------------------------------------------------------------------ */

static int guard__issue_append(barrier_guard *g, struct raft_io_append *req,
                               const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
    if (g->unconfirmed == GUARD_TRUNCATE && !g->confirm_assigned) {
        /* the first append after a truncate: once it is written, the
         * truncate is done */
        g->confirm_assigned = true;
        g->confirm_req = req;
        g->confirm_cb = cb;
        int rv = g->append(g->io, req, entries, n, guard__confirm_cb);
        if (rv != 0) {
            g->confirm_assigned = false;
            g->confirm_req = NULL;
            g->confirm_cb = NULL;
        }
        return rv;
    }
    return g->append(g->io, req, entries, n, cb);
}

static int guard__issue_truncate(barrier_guard *g, raft_index index)
{
    int rv = g->truncate(g->io, index);
    if (rv == 0) {
        g->unconfirmed = GUARD_TRUNCATE;
        g->confirm_assigned = false;
    }
    return rv;
}

static int guard__issue_put(barrier_guard *g, unsigned trailing, struct raft_io_snapshot_put *req,
                            const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb)
{
    g->unconfirmed = GUARD_SNAPSHOT_PUT;
    g->put_req = req;
    g->put_cb = cb;
    int rv = g->snapshot_put(g->io, trailing, req, snapshot, guard__put_cb);
    if (rv != 0) {
        g->unconfirmed = GUARD_IDLE;
        g->put_req = NULL;
        g->put_cb = NULL;
    }
    return rv;
}

static bool guard__must_wait(const barrier_guard *g, guard_op_kind kind)
{
    if (g->close_waits) return true; /* canceled when the close goes out */
    if (kind == OP_APPEND) {
        /* An append may pass a held snapshot put: the snapshot covers only
         * committed entries and new ones go to segments after it either
         * way. It must not pass a held truncate, and it is what confirms
         * the truncate in flight (which the held put waits for). */
        return g->head && !(g->head == g->tail && g->head->kind == OP_SNAPSHOT_PUT);
    }
    return g->head || g->unconfirmed != GUARD_IDLE; /* keep libraft's order */
}

static void guard__hold(barrier_guard *g, guard_op *op)
{
    guard_op *copy = xmalloc(sizeof(*copy));
    *copy = *op;
    copy->next = NULL;
    if (g->tail)
        g->tail->next = copy;
    else
        g->head = copy;
    g->tail = copy;
    g->held_total++;
    if (op->kind == OP_TRUNCATE && g->unconfirmed == GUARD_SNAPSHOT_PUT) {
        g->held_truncates++;
        LOG_INFO("log truncation waits for the snapshot being written", LF_I("index", op->index));
    } else if (op->kind == OP_SNAPSHOT_PUT && g->unconfirmed == GUARD_TRUNCATE) {
        g->held_puts++;
        LOG_INFO("snapshot write waits for the log truncation", LF_I("index", op->snapshot->index));
    }
}

/* Issue held operations in order until one must wait again. A failure is
 * reported through the operation's callback: libraft was told it was
 * accepted when it was held. */
static void guard__drain(barrier_guard *g)
{
    if (g->draining) return;
    g->draining = true;
    while (g->head && !(g->head->kind != OP_APPEND && g->unconfirmed != GUARD_IDLE)) {
        guard_op *op = g->head;
        g->head = op->next;
        if (!g->head) g->tail = NULL;
        int rv;
        switch (op->kind) {
        case OP_APPEND:
            rv = guard__issue_append(g, op->append_req, op->entries, op->n, op->append_cb);
            if (rv != 0) op->append_cb(op->append_req, rv);
            break;
        case OP_TRUNCATE:
            rv = guard__issue_truncate(g, op->index);
            if (rv != 0)
                LOG_ERROR("held log truncation failed", LF_I("index", op->index),
                          LF_S("error", raft_strerror(rv)));
            break;
        case OP_SNAPSHOT_PUT:
            rv = guard__issue_put(g, op->trailing, op->put_req, op->snapshot, op->put_cb);
            if (rv != 0) op->put_cb(op->put_req, rv);
            break;
        }
        free(op);
    }
    g->draining = false;
}

/* ---- the raft_io operations --------------------------------------------------- */

static int guard__append(struct raft_io *io, struct raft_io_append *req,
                         const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
    barrier_guard *g = guard__of_io(io);
    if (g->closed) return g->append(io, req, entries, n, cb);
    if (!guard__must_wait(g, OP_APPEND)) return guard__issue_append(g, req, entries, n, cb);
    guard_op op = {
        .kind = OP_APPEND, .append_req = req, .entries = entries, .n = n, .append_cb = cb};
    guard__hold(g, &op);
    return 0;
}

static int guard__truncate(struct raft_io *io, raft_index index)
{
    barrier_guard *g = guard__of_io(io);
    if (g->closed) return g->truncate(io, index);
    if (!guard__must_wait(g, OP_TRUNCATE)) return guard__issue_truncate(g, index);
    guard_op op = {.kind = OP_TRUNCATE, .index = index};
    guard__hold(g, &op);
    return 0;
}

static int guard__snapshot_put(struct raft_io *io, unsigned trailing,
                               struct raft_io_snapshot_put *req,
                               const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb)
{
    barrier_guard *g = guard__of_io(io);
    if (g->closed) return g->snapshot_put(io, trailing, req, snapshot, cb);
    if (!guard__must_wait(g, OP_SNAPSHOT_PUT))
        return guard__issue_put(g, trailing, req, snapshot, cb);
    guard_op op = {.kind = OP_SNAPSHOT_PUT,
                   .trailing = trailing,
                   .put_req = req,
                   .snapshot = snapshot,
                   .put_cb = cb};
    guard__hold(g, &op);
    return 0;
}

/* Held operations end as libraft's own pending ones do on close:
 * canceled. */
static void guard__close_now(barrier_guard *g)
{
    while (g->head) {
        guard_op *op = g->head;
        g->head = op->next;
        if (op->kind == OP_APPEND) op->append_cb(op->append_req, RAFT_CANCELED);
        if (op->kind == OP_SNAPSHOT_PUT) op->put_cb(op->put_req, RAFT_CANCELED);
        free(op);
    }
    g->tail = NULL;
    uv_timer_stop(&g->drain_timer);
    g->closed = true; /* what libraft still asks for goes straight through */
    raft_io_close_cb cb = g->close_cb;
    g->close_cb = NULL;
    g->close(g->io, cb);
}

/* libraft 0.15 closes its log barrier by calling the barrier's callback a
 * second time. When that barrier belongs to a truncate whose work is
 * already on the thread pool, the second call frees the request and the
 * work's completion writes through the freed pointer (canonical/raft issue
 * 332). So a close waits for the truncate in flight: the callback of the
 * append after it says it is done. */
static void guard__close(struct raft_io *io, raft_io_close_cb cb)
{
    barrier_guard *g = guard__of_io(io);
    g->close_cb = cb;
    if (g->unconfirmed == GUARD_TRUNCATE && g->confirm_assigned) {
        g->close_waits = true;
        g->close_waited++;
        return;
    }
    guard__close_now(g);
}

void barrier_guard_install(barrier_guard *g, struct raft_io *io, uv_loop_t *loop)
{
    memset(g, 0, sizeof(*g));
    g->io = io;
    uv_timer_init(loop, &g->drain_timer);
    g->drain_timer.data = g;
    g->append = io->append;
    g->truncate = io->truncate;
    g->snapshot_put = io->snapshot_put;
    g->close = io->close;
    io->append = guard__append;
    io->truncate = guard__truncate;
    io->snapshot_put = guard__snapshot_put;
    io->close = guard__close;
    if (guard__n == guard__cap)
        guard__all = xrealloc(guard__all,
                              (guard__cap = guard__cap ? 2 * guard__cap : 4) * sizeof(*guard__all));
    guard__all[guard__n++] = g;
}

void barrier_guard_close(barrier_guard *g)
{
    if (!g->io) return; /* never installed */
    g->closed = true;
    while (g->head) {
        guard_op *op = g->head;
        g->head = op->next;
        free(op);
    }
    g->tail = NULL;
    if (!uv_is_closing((uv_handle_t *)&g->drain_timer))
        uv_close((uv_handle_t *)&g->drain_timer, NULL);
}

void barrier_guard_forget(barrier_guard *g)
{
    for (size_t i = 0; i < guard__n; i++) {
        if (guard__all[i] == g) {
            guard__all[i] = guard__all[--guard__n];
            break;
        }
    }
    if (guard__n == 0) {
        free(guard__all);
        guard__all = NULL;
        guard__cap = 0;
    }
    g->io = NULL;
}

unsigned barrier_guard_held(const barrier_guard *g)
{
    unsigned n = 0;
    for (const guard_op *op = g->head; op; op = op->next) n++;
    return n;
}
