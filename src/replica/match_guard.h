/* match_guard: a follower never tells the leader that it holds log entries
 * the leader has not checked.
 *
 * libraft 0.15 (Debian 12) answers an AppendEntries that brings nothing new
 * to append (a heartbeat, or entries it already has) with its whole stored
 * log as "last_log_index", and the leader takes that as the follower's
 * match index. A follower that still holds uncommitted entries of an older
 * term past the point the leader checked (prev_log_index) therefore makes
 * the new leader believe that it holds the leader's own entries at those
 * indexes. The leader then counts it for a quorum, commits and
 * acknowledges a write that only the leader has, and the write is gone at
 * the next leader change. The deterministic simulator found this
 * (docs/verification.md, "Deterministic simulation"): a leader cut off
 * one way keeps appending entries nobody acknowledges; the new leader's
 * first heartbeat reaches it; the write acknowledged next was lost.
 * Later libraft versions answer min(prev_log_index + n_entries,
 * last_stored), which is what this guard makes 0.15 send: it sits on the
 * raft_io seam, notes what the AppendEntries (or InstallSnapshot) being
 * received asks about, and lowers last_log_index in a success answer that
 * libraft sends while receiving it. An answer sent later, after an append
 * completes, only counts entries that the append has just written after a
 * truncation of everything that did not match, and passes unchanged.
 *
 * Second correction, the other way round: libraft 0.15 rejects an
 * AppendEntries whose prev_log_index lies inside the follower's snapshot
 * (an index no longer in its log: it finds no term there), and answers
 * an InstallSnapshot of an index it already compacted with a no-op
 * "success" at that index. A leader whose next index for the follower has
 * fallen below the follower's snapshot then walks down one index per
 * heartbeat to its own snapshot, sends it, is told "done" at that older
 * index, and starts over: the follower never catches up. With the
 * configuration needing that follower (a member just removed), the
 * cluster commits nothing, for good. The simulator found it (a soak seed;
 * docs/verification.md). Everything in a follower's snapshot is
 * committed, so it matches the leader's log: the guard turns such a
 * rejection into a success that claims the snapshot's last index, and the
 * leader goes on from there.
 *
 * Loop thread only. */
#ifndef CAIRN_REPLICA_MATCH_GUARD_H
#define CAIRN_REPLICA_MATCH_GUARD_H

#include <raft.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct match_guard {
    struct raft_io *io;
    int (*send)(struct raft_io *, struct raft_io_send *, const struct raft_message *,
                raft_io_send_cb); /* the io's own */
    bool receiving;               /* inside libraft's receive of a checked message */
    raft_id leader;               /* its sender */
    raft_index checked;           /* the last index it lets us vouch for */
    raft_index prev;              /* an AppendEntries' prev_log_index */
    raft_term term;               /* and its term */
    raft_index in_snapshot;       /* prev lies in our snapshot, which ends here (0: no) */
    uint64_t lowered_total;       /* answers corrected */
    uint64_t unrejected_total;    /* rejections of an index in our snapshot turned into success */
    struct match_guard *next;     /* registry: the guard of an io */
} match_guard;

/* Wrap io->send (before libraft starts). */
void match_guard_install(match_guard *g, struct raft_io *io);
/* Around libraft's receive callback, for every message received; raft:
 * the receiving instance (its log's snapshot), or NULL. */
void match_guard_begin(match_guard *g, const struct raft_message *msg, const struct raft *raft);
void match_guard_end(match_guard *g);
/* Unwrap and forget (before the io goes away, or a new guard takes it). */
void match_guard_remove(match_guard *g);

#endif
