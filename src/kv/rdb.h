/* rdb: reading a Redis RDB file (`cairnd --restore dump.rdb`), so that
 * data a Redis server saved comes into cairn whole.
 *
 * An RDB file is "REDIS" and a 4-digit version, then opcodes and keys:
 * AUX fields, SELECTDB, RESIZEDB, an expiry (seconds or milliseconds),
 * LRU idle time or LFU frequency before a key, each key as its value type,
 * its name and its value (the objects DUMP payloads carry: kv/dump.h
 * reads them, every encoding of Redis 2.6 to 7.2, streams included), and
 * EOF with a CRC-64 of everything before it (0: written without one).
 *
 * Redis 7's function libraries (FUNCTION LOAD's code) are handed to the
 * caller, which compiles and loads them. What cairn does not take is
 * refused with a reason, never half-read: keys in another database than 0
 * (cairn has one keyspace), module data, functions of the 7.0 release
 * candidates' format, a version past 11, a checksum that does not
 * match, anything malformed (kv/dump.h's checks: duplicates, counts,
 * trailing bytes). Keys already expired at now_ms are left out, as Redis
 * leaves them out loading a file as a primary. The idle time and
 * frequency are dropped. */
#ifndef CAIRN_KV_RDB_H
#define CAIRN_KV_RDB_H

#include <stddef.h>
#include <stdint.h>

#include "kv/store.h"

typedef struct kv_rdb_stats {
    unsigned version;    /* the file's RDB version */
    uint64_t keys;       /* loaded */
    uint64_t expired;    /* left out: expired at now_ms */
    uint64_t aux_fields; /* AUX fields seen (redis-ver, ctime ...) */
    uint64_t libraries;  /* function libraries handed over */
    char redis_ver[32];  /* the redis-ver AUX field, when there is one */
} kv_rdb_stats;

/* A Redis function library's code (FUNCTION LOAD's argument), valid
 * during the call; false stops the load (with the error it set). */
typedef bool (*kv_rdb_library_fn)(void *ctx, kv_slice code);

/* Load the file's bytes into `into` (an empty store): 0, or -1 with err
 * naming what is wrong and where (the store then holds part of the file:
 * throw it away). Function libraries go to on_library; without one, a file
 * that holds any is refused. */
int kv_rdb_load(const char *data, size_t len, kv_store *into, int64_t now_ms,
                kv_rdb_library_fn on_library, void *ctx, kv_rdb_stats *st, char *err,
                size_t errlen);

#endif
