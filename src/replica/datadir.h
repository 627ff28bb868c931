/* datadir: the identity of a data directory.
 *
 * A data dir holds `cairn.meta` (which node of which cluster it belongs to)
 * and `raft/` (libraft's log, snapshots and term/vote metadata). Before
 * anything is written we check the identity, so that a dir belonging to
 * another node id or cluster is refused untouched (SPEC §1), and a dir
 * holding raft state without cairn.meta is never silently reinitialised. */
#ifndef CAIRN_REPLICA_DATADIR_H
#define CAIRN_REPLICA_DATADIR_H

#include <stddef.h>
#include <stdint.h>

typedef struct datadir_identity {
    uint64_t node_id;
    uint64_t cluster_id; /* 0 = not pinned */
} datadir_identity;

/* Check (and on first use create) the data dir at `path` for `want`.
 * raft_dir receives the path of the raft subdirectory. Returns 0, or -1
 * with a message in err. `fresh` is set when the dir was just created. */
int datadir_open(const char *path, const datadir_identity *want, char *raft_dir,
                 size_t raft_dir_len, int *fresh, char *err, size_t errlen);

#endif
