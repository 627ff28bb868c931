/* disk_guard: refuse writes before the raft log runs out of space.
 *
 * libraft 0.15 preallocates its log in 8 MiB segments; when the file
 * system is full the append fails, and after a failed append on the leader
 * libraft can crash (docs/verification.md, "Disk faults"). So, like etcd's
 * NOSPACE alarm, the leader refuses new writes while the data directory's
 * file system has less than --min-free-disk free, and takes them again as
 * soon as there is room. Deletes still pass (they are how space is won
 * back: smaller snapshots), as do the replica's own entries (no-op of a new
 * term, expiry, membership). Loop thread only. */
#ifndef CAIRN_REPLICA_DISK_GUARD_H
#define CAIRN_REPLICA_DISK_GUARD_H

#include <stdbool.h>
#include <stdint.h>

typedef struct disk_guard {
    uint64_t min_free;   /* bytes; 0 = off */
    uint64_t free_bytes; /* last measured (UINT64_MAX until measured) */
    bool low;            /* writes are being refused */
    uint64_t checked_ns; /* when it was measured */
    const char *dir;     /* measured: the file system holding it */
    uint64_t refused;    /* writes refused */
} disk_guard;

void disk_guard_init(disk_guard *g, uint64_t min_free, const char *dir);

/* Measure the file system, at most every 100 ms (now_ns from a monotonic
 * clock); logs when writes stop and start being refused. statvfs is cheap,
 * and libraft's preallocation makes free space fall in 8 MiB steps, one
 * segment at a time, so --min-free-disk needs room for the segments a
 * burst of 100 ms can fill, plus libraft's spare ones. */
void disk_guard_poll(disk_guard *g, uint64_t now_ns);

/* Whether a command of this kv_op must be refused now (and count it). */
bool disk_guard_refuses(disk_guard *g, int kv_op);

#endif
