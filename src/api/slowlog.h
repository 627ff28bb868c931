/* slowlog: Redis' SLOWLOG, the commands whose execution took longer than
 * slowlog-log-slower-than microseconds, newest first, at most
 * slowlog-max-len of them (both CONFIG SET-able at runtime, this node's).
 *
 * "Execution" is the time the event loop spent on the command, as in
 * Redis: the handler, the read of a read, and the apply of a write's log
 * entry on this node; never the time it waited for the network, a quorum
 * or an fsync, nor a blocked client's wait. An entry keeps at most 32
 * arguments and 128 bytes of each, as Redis' does, with the same "... (N
 * more arguments)" and "... (N more bytes)" markers. Loop thread only. */
#ifndef CAIRN_API_SLOWLOG_H
#define CAIRN_API_SLOWLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/resp.h"

#define SLOWLOG_MAX_ARGC 32
#define SLOWLOG_MAX_STRING 128
#define SLOWLOG_DEFAULT_SLOWER_THAN 10000 /* microseconds: Redis' default */
#define SLOWLOG_DEFAULT_MAX_LEN 128

typedef struct slowlog_entry {
    uint64_t id;
    int64_t unix_s;
    uint64_t duration_us;
    uint32_t argc;
    char **argv; /* argc NUL-terminated copies (args may hold NULs: lens) */
    size_t *lens;
    char *peer, *name;
} slowlog_entry;

typedef struct slowlog {
    int64_t slower_than; /* microseconds; < 0: log nothing */
    uint64_t max_len;
    slowlog_entry *ring; /* cap <= max_len slots; the newest at head - 1 */
    uint64_t cap, head, len;
    uint64_t next_id;
} slowlog;

void slowlog_init(slowlog *s);
void slowlog_close(slowlog *s);

/* True when a command that ran duration_us belongs in the log. */
bool slowlog_wants(const slowlog *s, uint64_t duration_us);

/* Log one command. redact_from: arguments from this index on are kept as
 * "(redacted)" (passwords; argc for none). */
void slowlog_add(slowlog *s, const resp_arg *argv, size_t argc, size_t redact_from,
                 uint64_t duration_us, const char *peer, const char *name, size_t name_len);

/* The i-th newest entry (0 = the newest); NULL past the end. */
const slowlog_entry *slowlog_get(const slowlog *s, uint64_t i);
uint64_t slowlog_len(const slowlog *s);
void slowlog_reset(slowlog *s);
/* A new slowlog-max-len: the oldest entries beyond it go. */
void slowlog_set_max_len(slowlog *s, uint64_t max_len);

#endif
