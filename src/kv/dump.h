/* dump: DUMP and RESTORE's payload, in Redis' own serialization, so that
 * a value DUMPed by Redis RESTOREs into cairn and the reverse:
 *
 *   RDB object type (1 byte) | the object as an RDB file holds it
 *   | RDB version (u16 little endian) | CRC-64 of all before (u64 LE)
 *
 * Writing (kv_dump_value) follows Redis 7.0 (RDB version 10): strings
 * with RDB's integer and LZF encodings; a small hash or sorted set as one
 * Redis listpack, a big one as a plain RDB hash or a sorted set with
 * binary scores from the highest; an integer set as an intset, another
 * set as a plain RDB set; a list as a quicklist of listpack nodes filled
 * front to back by Redis' list-max-listpack-size rule; a stream as
 * kv/dump_stream.c says. For what Redis 7.0 would hold the
 * same way the bytes are Redis' own (checked against redis-server in
 * tests/integration/test_resp_dump.py); a hash or set in a hash table
 * lists its elements in cairn's order, a list pushed at the head may be
 * cut into other nodes, a stream's deleted entries leave no tombstones:
 * the value is the same.
 *
 * Reading (kv_dump_load) takes every encoding Redis 2.6 to 7.2 writes for
 * strings, hashes, lists, sets, sorted sets and streams (RDB versions up
 * to 11: ziplists, intsets, listpacks, quicklists of both, stream
 * listpacks of Redis 5 to 7.2; not the Redis 2.x zipmap or module types)
 * and rebuilds the value with cairn's own
 * encodings, by its own conversion rules, so a RESTOREd value is encoded
 * as one built by commands. Unlike Redis with its default
 * sanitize-dump-payload no, every payload is checked whole: a duplicate
 * field, member or score that is not a number, a count that does not
 * match, an empty collection, trailing bytes are all refused. */
#ifndef CAIRN_KV_DUMP_H
#define CAIRN_KV_DUMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/command.h"
#include "kv/keyspace.h"
#include "util/buf.h"

#define KV_DUMP_RDB_VERSION 10     /* what DUMP writes: Redis 7.0's */
#define KV_DUMP_RDB_VERSION_MAX 11 /* what RESTORE reads: up to Redis 7.2's */

/* Append e's payload to out. A list's nodes are packed as Redis 7.0
 * packs a list pushed at its tail under lim's list-max-listpack-size. */
void kv_dump_value(const kv_limits *lim, const kv_entry *e, buf *out);

typedef enum kv_dump_status {
    KV_DUMP_OK = 0,
    KV_DUMP_BAD_FOOTER, /* version too new or checksum wrong */
    KV_DUMP_BAD_DATA,   /* the object does not parse */
    KV_DUMP_TOO_LARGE,  /* a compressed string unpacks past max_string */
} kv_dump_status;

/* The version and checksum only. */
kv_dump_status kv_dump_check(const char *p, size_t len);

/* Rebuild the payload's value into e, a fresh entry holding no value
 * (it may be outside the keyspace: ks is charged for the memory). No
 * string may unpack to more than max_string bytes (0: UINT32_MAX). On an
 * error e holds nothing again. */
kv_dump_status kv_dump_load(kv_keyspace *ks, kv_entry *e, const char *p, size_t len,
                            uint64_t max_string);

/* FUNCTION DUMP's payload (Redis 7.0's): per library the opcode 245 and
 * its code as an RDB string, then the version and checksum. */
void kv_dump_functions(const kv_slice *codes, size_t n, buf *out);

/* FUNCTION RESTORE's payload: each library's code to each(ctx, code) in
 * payload order (code valid during the call; each answers false to stop,
 * which is no error). KV_DUMP_BAD_DATA with *why Redis' text for what is
 * wrong (an entry that is not a library, a code that does not read). */
typedef bool (*kv_dump_library_fn)(void *ctx, kv_slice code);
kv_dump_status kv_dump_functions_load(const char *p, size_t len, uint64_t max_string,
                                      kv_dump_library_fn each, void *ctx, const char **why);

#endif
