/* logcheck: validate libraft's segment files before libraft opens them.
 *
 * Why: libraft 0.15 handles a torn tail badly. An open segment that ends
 * in the middle of a batch (the file cut short by a crash) makes it free a
 * buffer twice and abort; with its auto-recovery on, a segment it cannot
 * read is renamed away and the node starts without those entries.
 * Neither is acceptable (SPEC §4), so cairn reads every segment first:
 *
 *  - closed segments must be whole: every batch complete, every checksum
 *    right; otherwise refuse to start, naming the file and the offset;
 *  - in the newest open segment that holds data, a damaged batch that is
 *    followed only by zeros or the end of the file is the write that the
 *    crash interrupted. Acknowledgements follow fsync, so it was never
 *    acknowledged: its bytes are zeroed (the state libraft expects of
 *    preallocated space) and the node starts. Damage anywhere else is
 *    refused like a closed segment.
 *
 * Segment format (libraft uv.h): u64 format version (1), then batches of
 * u32 header crc | u32 data crc | u64 n | n x (u64 term, u8 type, 3 pad,
 * u32 len) | entry data, each padded to 8 bytes. CRC-32, MSB-first,
 * polynomial 0x04C11DB7, initial value 0. Runs once at startup, before the
 * loop; not thread-safe. */
#ifndef CAIRN_REPLICA_LOGCHECK_H
#define CAIRN_REPLICA_LOGCHECK_H

#include <stddef.h>

/* Returns 0 (repaired counts torn tails zeroed) or -1 with err set. */
int logcheck_run(const char *raft_dir, int *repaired, char *err, size_t errlen);

/* The path of the newest snapshot data file in raft_dir, for messages;
 * returns 0 if one exists. */
int logcheck_latest_snapshot(const char *raft_dir, char *out, size_t outlen);

/* libraft's checksum, exposed for tests. */
unsigned logcheck_crc32(const void *p, size_t n, unsigned init);

#endif
