/* sim_io: a simulated disk and network for libraft, one seeded world.
 *
 * Each node gets a struct raft_io whose disk keeps what a real disk keeps
 * across a crash: term, vote, the latest snapshot and the log entries whose
 * append has completed (its "fsync"). Appends, truncations and snapshot
 * writes complete in order after a disk latency; a crash (sim_world_crash)
 * throws away every one still pending, as a power cut loses unsynced
 * writes, and the node can then be started again from what is left.
 *
 * The network carries libraft's messages between nodes with a latency
 * (base + seeded jitter, so messages can overtake each other), a drop rate
 * and links that can be cut one way or both. A frozen node (kill -STOP)
 * runs nothing: its ticks, disk completions and deliveries wait until it
 * thaws.
 *
 * Time is the world's: sim_world_step runs the earliest due event (a node's
 * tick, a disk completion, a delivery) and advances the clock to it. Ties
 * go in the order the events were created, so a seed replays exactly. */
#ifndef CAIRN_TESTS_SIM_IO_H
#define CAIRN_TESTS_SIM_IO_H

#include <raft.h>
#include <stdbool.h>
#include <stdint.h>

#define SIM_MAX_NODES 8

typedef struct sim_world sim_world;

sim_world *sim_world_create(uint64_t seed, unsigned n_nodes);
void sim_world_destroy(sim_world *w);

/* Node i's raft_io (stable for the world's life; raft_init it). */
struct raft_io *sim_world_io(sim_world *w, unsigned i);
int64_t sim_world_now(const sim_world *w);
/* Run the earliest due event. false when nothing is scheduled. */
bool sim_world_step(sim_world *w);
/* Advance the clock to at least t without running anything (idle time). */
void sim_world_advance(sim_world *w, int64_t t);

/* Network. */
void sim_world_link(sim_world *w, unsigned from, unsigned to, bool up);
bool sim_world_linked(const sim_world *w, unsigned from, unsigned to);
void sim_world_latency(sim_world *w, unsigned base_ms, unsigned jitter_ms);
void sim_world_drop_rate(sim_world *w, unsigned per_mille);
/* Disk latency of every node. */
void sim_world_disk_latency(sim_world *w, unsigned ms);

/* Faults on node i. Freeze holds everything it would run. Crash loses its
 * pending disk writes (their callbacks get RAFT_CANCELED when libraft
 * closes the io) and drops what is addressed to it until it is started
 * again; the caller then raft_close()s its struct raft and, to restart,
 * raft_init()s a new one on the same raft_io after sim_world_revive. */
void sim_world_freeze(sim_world *w, unsigned i, bool frozen);
bool sim_world_frozen(const sim_world *w, unsigned i);
void sim_world_crash(sim_world *w, unsigned i);
void sim_world_revive(sim_world *w, unsigned i);
/* Disk faults. While node i's disk fails, an append completes with
 * RAFT_IOERR after a random prefix of its entries reached the disk (what
 * a file holds after EIO is unknown), and a snapshot write fails whole.
 * With torn writes on, a crash may leave a random prefix of the append in
 * progress on the disk, though libraft never heard it completed. */
void sim_world_disk_fail(sim_world *w, unsigned i, bool failing);
void sim_world_torn_writes(sim_world *w, bool on);
uint64_t sim_world_failed_writes(const sim_world *w);
uint64_t sim_world_torn(const sim_world *w);
/* What node i's disk holds at index (completed writes only): the entry's
 * term, or 0 when it holds no entry there; *covered: a snapshot on the
 * disk includes index. */
raft_term sim_world_disk_term(const sim_world *w, unsigned i, raft_index index, bool *covered);
/* A crashed node's disk emptied (an operator wiping a removed member). */
void sim_world_wipe(sim_world *w, unsigned i);
bool sim_world_up(const sim_world *w, unsigned i);

/* Counters: writes lost to crashes, snapshots installed from a leader. */
uint64_t sim_world_lost_writes(const sim_world *w);
uint64_t sim_world_installs(const sim_world *w);

#endif
