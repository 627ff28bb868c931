/* barrier_guard: at most one libraft log barrier at a time.
 *
 * libraft 0.15 (Debian 12) implements two raft_io operations with a
 * "barrier" on its segment writer: io->truncate (a follower dropping a
 * conflicting log suffix) and io->snapshot_put (a snapshot of our own, or
 * one installed from the leader). When the second of two such operations
 * is issued while the first one's barrier is still waiting, 0.15 never
 * attaches it (canonical/raft issue 372, fixed upstream by pull request
 * 435 after 0.15):
 *
 *  - a truncate issued while a snapshot put is in flight is never carried
 *    out on disk. The truncated entries stay in their closed segment, the
 *    new entries are written to a new one numbered from the truncation
 *    point, and the next start loads the old entries back and the new ones
 *    shifted or not at all: a write the cluster acknowledged is lost, and
 *    a node may refuse to start ("last entry on disk has index N, which is
 *    behind last snapshot's index M"). This is what the restart-all step
 *    of the Jepsen run found (docs/verification.md);
 *  - a snapshot put issued right after a truncate, before any append,
 *    never completes, so libraft never takes or installs a snapshot again.
 *
 * tests/unit/test_barrier_guard.c drives libraft's own disk code through
 * both sequences. The guard sits on the raft_io seam and keeps the two
 * operations apart: while a truncate or a snapshot put is unconfirmed,
 * another one waits, and so does every operation libraft issues after it,
 * so that the log is written in the order libraft asked (appends may pass
 * a waiting snapshot put: see guard__must_wait). A snapshot put is
 * confirmed by its callback; a truncate by the callback of the first
 * append after it (0.15 writes nothing after a truncate until the truncate
 * is done, and libraft always appends the entries that replaced the
 * truncated ones). Appends pass straight through when nothing waits.
 *
 * Held operations are issued from the next loop iteration, never from
 * inside the confirming callback: libraft 0.15 calls a snapshot put's
 * callback before it clears its own barrier, so a truncate issued from
 * there meets the same fault.
 *
 * Loop thread only. */
#ifndef CAIRN_REPLICA_BARRIER_GUARD_H
#define CAIRN_REPLICA_BARRIER_GUARD_H

#include <raft.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct guard_op guard_op;

typedef enum { GUARD_IDLE, GUARD_TRUNCATE, GUARD_SNAPSHOT_PUT } guard_barrier;

typedef struct barrier_guard {
    struct raft_io *io;
    /* libraft's own implementations */
    int (*append)(struct raft_io *, struct raft_io_append *, const struct raft_entry[], unsigned,
                  raft_io_append_cb);
    int (*truncate)(struct raft_io *, raft_index);
    int (*snapshot_put)(struct raft_io *, unsigned, struct raft_io_snapshot_put *,
                        const struct raft_snapshot *, raft_io_snapshot_put_cb);
    void (*close)(struct raft_io *, raft_io_close_cb);

    guard_barrier unconfirmed;            /* the barrier operation in flight */
    bool confirm_assigned;                /* truncate: its confirming append is issued */
    struct raft_io_append *confirm_req;   /* that append */
    raft_io_append_cb confirm_cb;         /* and libraft's callback for it */
    struct raft_io_snapshot_put *put_req; /* the snapshot put in flight */
    raft_io_snapshot_put_cb put_cb;       /* and libraft's callback for it */
    guard_op *head, *tail;                /* held operations, in libraft's order */
    bool draining;
    bool close_waits;          /* io->close waits for the truncate in flight */
    raft_io_close_cb close_cb; /* libraft's callback for that close */
    bool closed;
    uv_timer_t drain_timer; /* held operations go out from the loop, not from a callback */

    uint64_t held_total;     /* operations that had to wait */
    uint64_t held_truncates; /* truncates that waited for a snapshot put */
    uint64_t held_puts;      /* snapshot puts that waited for a truncate */
    uint64_t close_waited;   /* closes that waited for a truncate */
} barrier_guard;

/* Replace io's append, truncate, snapshot_put and close with the guard's.
 * Call after raft_init (which does not call them). */
void barrier_guard_install(barrier_guard *g, struct raft_io *io, uv_loop_t *loop);

/* After the raft instance is closed (or instead of closing it): drop what
 * is held and close the timer handle (with the next loop iteration).
 * libraft 0.15 may still call io->snapshot_put after its close (an async
 * snapshot finishing); from now on everything passes straight through. */
void barrier_guard_close(barrier_guard *g);

/* Unregister the guard; call when its memory is about to go. */
void barrier_guard_forget(barrier_guard *g);

/* Operations waiting now. */
unsigned barrier_guard_held(const barrier_guard *g);

#endif
