/* storage_failstop: a node whose Raft log write fails stops at once.
 *
 * What libraft 0.15 does after a failed log write (EIO from the device, or
 * ENOSPC past the disk guard), measured with tests/fault/fault_shim.c:
 * a leader crashed (SIGSEGV) soon after; a follower went on running but
 * never advanced its commit index again, silently, until restarted. And
 * after a failed write the file's contents are not what the page cache
 * says (PostgreSQL's "fsyncgate"): retrying the same write is not known to
 * be safe. So, as etcd does when its WAL cannot be written, the node stops:
 * one error line naming the segment file and libraft's message, then exit
 * status 74 (EX_IOERR). Nothing acknowledged is at risk: a write is
 * acknowledged only after its entry is durable on a majority, and this
 * node's failed write was never counted. The supervisor restarts the node
 * (the Debian unit: Restart=on-failure); the restart loads what was
 * written (logcheck repairs a torn tail) and catches up from the leader.
 *
 * It wraps io->append on the raft_io seam and sees every append's result
 * before libraft does. Canceled appends (shutdown) pass through. Loop
 * thread only. */
#ifndef CAIRN_REPLICA_STORAGE_FAILSTOP_H
#define CAIRN_REPLICA_STORAGE_FAILSTOP_H

#include <raft.h>
#include <stdint.h>

typedef struct failstop_req failstop_req;

typedef struct storage_failstop {
    struct raft_io *io;
    int (*append)(struct raft_io *, struct raft_io_append *, const struct raft_entry[], unsigned,
                  raft_io_append_cb); /* the io's own */
    const char *dir;                  /* the raft directory, for the log line */
    /* appends in flight (they complete in order), and spare records */
    failstop_req *head, *tail, *spare;
    /* what to do on a failed write: default logs and _exit(74). Tests and
     * the simulator replace it; when it returns, what it returns is the
     * status libraft's callback gets. */
    int (*stop)(struct storage_failstop *f, int status);
    struct storage_failstop *next; /* registry: the failstop of an io */
} storage_failstop;

/* Wrap io->append (before libraft starts; before other wrappers of append
 * so that it sees the io's own results). dir must outlive f. */
void storage_failstop_install(storage_failstop *f, struct raft_io *io, const char *dir);
/* Unwrap and free (the io is closed or going away). */
void storage_failstop_remove(storage_failstop *f);

/* The newest open segment under dir ("" if none), for messages. */
void storage_failstop_open_segment(const char *dir, char *out, size_t outlen);

#endif
