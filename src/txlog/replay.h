/* txlog replay: the book's ReadEvents. Reads a --txlog-postgres table in
 * revision order and applies every change to a store, as the property test
 * of kv's change stream does (tests/unit/test_store.c). Used by cairnd
 * --restore-from-postgres. Refuses, naming what is wrong, a table that is
 * missing, has a gap (a missing revision, or a revision whose seq numbers
 * do not run 0, 1, ...), or holds an unknown event type; nothing is
 * applied then. Blocking (libpq): call before the loop serves anything. */
#ifndef CAIRN_TXLOG_REPLAY_H
#define CAIRN_TXLOG_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "kv/store.h"

typedef struct txlog_replay_stats {
    uint64_t events;
    uint64_t last_revision;
} txlog_replay_stats;

/* Apply the table at `url` to `into` (an empty store). 0, or -1 with err. */
int txlog_replay(const char *url, kv_store *into, txlog_replay_stats *st, char *err, size_t errlen);

#endif
