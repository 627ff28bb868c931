/* snapshot_handoff: a leader's snapshot that arrives while this node is
 * busy with a snapshot of its own is held, not lost.
 *
 * libraft 0.15 (Debian 12) ignores an InstallSnapshot that a follower
 * receives while it is taking or installing a snapshot ("the leader will
 * eventually retry"), and sends no answer: the leader retries only after
 * its install-snapshot timeout (libraft's default: 30 s). A follower that
 * restarts behind the leader's snapshot typically first receives a batch
 * of log entries, crosses its own --snapshot-threshold, starts a snapshot,
 * and the leader's InstallSnapshot lands in that window: the follower
 * caught up 30 s late (issue 23). Later libraft versions queue the install
 * behind the running snapshot; this module does the same from outside
 * libraft, on the raft_io seam: it sits between the transport and
 * libraft's receive callback, keeps the newest InstallSnapshot that came
 * while libraft would ignore it, and hands it to libraft once libraft's
 * own snapshot is done (snapshot_handoff_poll, from the replica's tick).
 * To libraft the message was just late on the wire.
 *
 * Every other message passes straight through. Loop thread only. */
#ifndef CAIRN_REPLICA_SNAPSHOT_HANDOFF_H
#define CAIRN_REPLICA_SNAPSHOT_HANDOFF_H

#include <raft.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct snapshot_handoff {
    struct raft *raft;
    struct raft_io *io;
    raft_io_recv_cb raft_recv; /* libraft's own receive callback */
    bool held;
    struct raft_message msg;  /* the held InstallSnapshot; owns data and conf */
    char address[256];        /* msg.server_address: the connection's copy may go */
    uint64_t held_total;      /* InstallSnapshots held */
    uint64_t delivered_total; /* held ones handed to libraft */
    uint64_t replaced_total;  /* held ones dropped for a newer one */
} snapshot_handoff;

void snapshot_handoff_init(snapshot_handoff *h, struct raft *raft, struct raft_io *io);

/* Whether libraft would ignore an InstallSnapshot now (the test it makes). */
bool snapshot_handoff_busy(const struct raft *raft);

/* From the raft_io start wrapper: remember libraft's receive callback. */
void snapshot_handoff_started(snapshot_handoff *h, raft_io_recv_cb raft_recv);

/* From the receive wrapper: pass `msg` to libraft, or hold it. Takes
 * ownership of the message's buffers as libraft's callback would. */
void snapshot_handoff_recv(snapshot_handoff *h, struct raft_message *msg);

/* Hand a held message to libraft if it is no longer busy. Never call from
 * inside a libraft callback. */
void snapshot_handoff_poll(snapshot_handoff *h);

/* Free a held message (shutdown). */
void snapshot_handoff_close(snapshot_handoff *h);

#endif
