/* dump_internal: what the RDB codec's parts (dump.c, dump_stream.c)
 * share: the object types, the string and length encodings, and the
 * payload reader. Not for other modules: kv/dump.h is the interface. */
#ifndef CAIRN_KV_DUMP_INTERNAL_H
#define CAIRN_KV_DUMP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/dump.h"
#include "kv/keyspace.h"
#include "util/buf.h"

/* RDB object types (rdb.h) */
enum {
    RDB_STRING = 0,
    RDB_LIST = 1,
    RDB_SET = 2,
    RDB_ZSET = 3,
    RDB_HASH = 4,
    RDB_ZSET_2 = 5,
    RDB_HASH_ZIPMAP = 9,
    RDB_LIST_ZIPLIST = 10,
    RDB_SET_INTSET = 11,
    RDB_ZSET_ZIPLIST = 12,
    RDB_HASH_ZIPLIST = 13,
    RDB_LIST_QUICKLIST = 14,
    RDB_HASH_LISTPACK = 16,
    RDB_ZSET_LISTPACK = 17,
    RDB_LIST_QUICKLIST_2 = 18,
    RDB_STREAM_LISTPACKS = 15,   /* Redis 5 and 6 */
    RDB_STREAM_LISTPACKS_2 = 19, /* Redis 7.0 */
    RDB_SET_LISTPACK = 20,
    RDB_STREAM_LISTPACKS_3 = 21, /* Redis 7.2 */
};

#define RDB_ENC_INT8 0xc0
#define RDB_ENC_INT16 0xc1
#define RDB_ENC_INT32 0xc2
#define RDB_ENC_LZF 0xc3
#define RDB_LEN32 0x80
#define RDB_LEN64 0x81

/* Reading a payload: p moves on, err keeps the first error met. */
typedef struct kv_dump_rd {
    const unsigned char *p, *end;
    uint64_t max_string;
    kv_dump_status err;
} kv_dump_rd;

/* Record st (unless an error is there already); false. */
bool kv_dump__fail(kv_dump_rd *r, kv_dump_status st);
bool kv_dump__bytes(kv_dump_rd *r, size_t n, const unsigned char **out);
/* A length, or (*special set, special not NULL) a string's special
 * encoding in *len. */
bool kv_dump__len(kv_dump_rd *r, uint64_t *len, bool *special);
/* A string: into *out, pointing into the payload or into scratch. */
bool kv_dump__string(kv_dump_rd *r, buf *scratch, kv_slice *out);

/* Writing: rdbSaveLen and rdbSaveRawString (integers, LZF, bytes). */
void kv_dump__w_len(buf *b, uint64_t len);
void kv_dump__w_string(buf *b, const char *s, size_t len);

/* One object of type rdb_type (the payload's first byte, or an RDB
 * file's value type) read into e, a fresh entry: false (e holds nothing,
 * r->err says why) when it does not parse. r->p ends after the object. */
bool kv_dump__rd_value(kv_dump_rd *r, kv_keyspace *ks, kv_entry *e, int rdb_type);

/* Streams (dump_stream.c): the object after its type byte, as Redis 7.0
 * writes RDB_STREAM_LISTPACKS_2; and read back from any of the three
 * stream types into e (a fresh entry). */
void kv_dump__w_stream(buf *out, const kv_entry *e);
bool kv_dump__rd_stream(kv_dump_rd *r, kv_keyspace *ks, kv_entry *e, int rdb_type);

#endif
