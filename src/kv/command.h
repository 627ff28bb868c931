/* command: the binary record of one write, as stored in the Raft log.
 *
 * Every write — from HTTP, from RESP, or from the leader's own expiry
 * cycle — is encoded as one command, replicated, and applied by kv/store on
 * every node. The command carries everything apply needs to be
 * deterministic: the proposer's clock (`now_ms`, used to decide what has
 * expired), absolute expiry times, and limits. Apply must never consult
 * the local clock or configuration.
 *
 * Layout (little-endian), version 1:
 *   u8 version | u8 op | u16 flags | u32 nargs
 *   i64 now_ms | i64 expire_ms | i64 a | i64 b
 *   u64 origin (proposing node id) | u64 seq (proposal number on origin)
 *   nargs x (u32 len | bytes)
 *   zero padding to a multiple of 8 bytes
 * The padding is there because libraft 0.15 reads back entry payloads as
 * if their length were a multiple of 8 (its writer pads, its reader does
 * not); an unpadded entry makes the segment unreadable after a restart.
 * Decoding rejects unknown versions and ops, lengths past the end, and any
 * trailing byte that is not such padding: a corrupt entry is an error,
 * never a guess. */
#ifndef CAIRN_KV_COMMAND_H
#define CAIRN_KV_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define KV_COMMAND_VERSION 1
#define KV_COMMAND_HEADER_BYTES 56
#define KV_COMMAND_MAX_ARGS (1u << 20)

typedef enum kv_op {
    KV_OP_PUT = 1,     /* key value: set; flags NX XX KEEPTTL GET IF_REV */
    KV_OP_DEL,         /* key...: delete; flags GET, IF_REV, XX (must exist) apply to one key;
                        * b = 1: an eviction (only notifications tell it apart) */
    KV_OP_MSET,        /* key value ...: set all; flag NX = only if none exists */
    KV_OP_INCR,        /* key: add a (int64) */
    KV_OP_INCRFLOAT,   /* key incr-text: add a long double */
    KV_OP_APPEND,      /* key suffix; b = max value length */
    KV_OP_SETRANGE,    /* key value; a = offset, b = max value length */
    KV_OP_EXPIRE,      /* key: set expiry (expire_ms, may be past); flags NX XX GT LT */
    KV_OP_PERSIST,     /* key: remove expiry */
    KV_OP_GETEX,       /* key: return value, set expiry or (flag PERSIST) remove it */
    KV_OP_RENAME,      /* src dst; flag NX */
    KV_OP_FLUSH,       /* delete everything */
    KV_OP_EXPIRE_KEYS, /* key...: delete those that are expired at now_ms */
    KV_OP_NOOP,        /* nothing (used to commit an entry in a new term) */
    KV_OP_MEMBER,      /* a = node id; args: http addr, resp addr (both empty: forget it) */
    KV_OP_HSET,        /* key field value ...: set fields; flag NX: one pair, only if absent */
    KV_OP_HDEL,        /* key field ...: remove fields (an emptied hash is deleted) */
    KV_OP_HINCR,       /* key field: add a (int64) to the field */
    KV_OP_HINCRFLOAT,  /* key field incr-text: add a long double to the field */
    KV_OP_LPUSH,   /* key value ...: a = 1 at the head, 0 the tail; flag XX: only if it exists */
    KV_OP_LPOP,    /* key: a = 1 head | 2 counted (b elements, an array reply) */
    KV_OP_LSET,    /* key value: a = index */
    KV_OP_LREM,    /* key value: a = count (Redis' sign rules) */
    KV_OP_LTRIM,   /* key: keep [a, b] */
    KV_OP_LINSERT, /* key pivot value: a = 1 before, 0 after */
    KV_OP_LMOVE,   /* src dst: a = 1 pop the head, b = 1 push at the head */
    KV_OP_LMPOP,   /* key...: pop up to b elements of the first non-empty list; a = 1 head;
                    * value: u32 len | key, then u32 len | bytes per element */
    KV_OP_SADD,    /* key member ...: add (integer: how many were new) */
    KV_OP_SREM,    /* key member ...: remove (an emptied set is deleted) */
    KV_OP_SPOP,    /* key: remove members at random from seed b; a = count, -1: one (a bulk
                    * reply); value: u32 len | member each */
    KV_OP_SMOVE,   /* src dst member */
    KV_OP_SSTORE,  /* dst key ...: dst = a (KV_SET_INTER/UNION/DIFF) of the keys' sets */
    KV_OP_ZADD,    /* key score member ...: a = KV_ZADD_* flags; INCR: value is the new score
                    * (8 bytes, the double's bits), none when NX/XX/GT/LT held it back */
    KV_OP_ZREM,    /* key member ... */
    KV_OP_ZPOP,    /* key: a = count (-1: one), b = 1 the highest; value: member, score text
                    * (u32 len | bytes each) per member */
    KV_OP_ZREMRANGEBYRANK,  /* key: remove ranks [a, b] (negative from the end) */
    KV_OP_ZREMRANGEBYSCORE, /* key min max: bounds as ZRANGE BYSCORE reads them */
    KV_OP_ZREMRANGEBYLEX,   /* key min max: bounds as ZRANGEBYLEX reads them */
    KV_OP_ZSTORE,      /* dst key ... weight ...: dst = a (KV_ZCOMB_*) of the keys, b (KV_ZAGG_*) */
    KV_OP_ZMPOP,       /* key...: pop up to b members of the first non-empty sorted set; a = 1 the
                        * highest; value: u32 len | key, then member, score text as KV_OP_ZPOP */
    KV_OP_ZRANGESTORE, /* dst src first second offset count: dst = the members of src that
                        * ZRANGE selects; a = KV_ZRS_* flags (offset, count: LIMIT's text) */
    KV_OP_SETBIT,      /* key bit ("0" or "1"): a = bit offset, b = max value length; integer: the
                        * old bit */
    KV_OP_BITOP,       /* dst key ...: dst = a (KV_BITOP_*) of the keys' strings */
    KV_OP_BITFIELD,    /* key op ...: each op a kv_bitfield_op (kv/bitops.h); b = max value length;
                        * value: per op a flag byte (0: OVERFLOW FAIL) and 8 bytes LE */
    KV_OP_PFADD,       /* key element ...: integer 1 when a register changed (or the key is new) */
    KV_OP_PFMERGE,     /* dst key ...: dst (created when absent) = the union of dst and the keys */
    KV_OP_GEOSTORE,    /* dst src query member: dst = what the query (kv_geo_query_encode) finds
                        * in src; a = KV_GEOSTORE_* (from the member, scores the distances) */
    KV_OP_COPY, /* src dst: dst = a copy of src's value (any type) and expiry; flag XX: replace an
                 * existing dst; integer 1 when copied */
    KV_OP_SORTSTORE, /* dst src by limit-start limit-count get...: dst = the list SORT gives;
                      * a = KV_SORT_* flags */
    KV_OP_RESTORE,   /* key payload: key = the value of a DUMP payload (kv/dump.h), expiring at
                      * expire_ms (0: never; at or before now_ms: nothing is created); flag XX:
                      * replace an existing key; b = the longest string it may unpack */
    KV_OP_CONFIG,    /* name value ...: set these encoding limits (kv/limits.h), all or none;
                      * not a keyspace change (no revision) */
    KV_OP_EXEC,      /* token, a x (watched key, rev), b x step: a MULTI/EXEC transaction,
                      * applied whole (kv/transaction.h) */
    KV_OP_PUBLISH,   /* channel message: handed to the store's on_publish on every node;
                      * a = KV_PUBLISH_SHARD for SPUBLISH's shard channels; integer:
                      * what on_publish answers; not a keyspace change */
    KV_OP_XADD,      /* key id threshold field value ...: append to a stream (kv/stream.h); id ""
                      * for *, "ms-*" or "ms-seq"; flag XX: NOMKSTREAM; a = KV_XTRIM_* |
                      * KV_XTRIM_APPROX, b = LIMIT; value: the new ID */
    KV_OP_XDEL,      /* key id ...: integer: entries deleted */
    KV_OP_XTRIM,     /* key threshold: a, b as XADD's; integer: entries removed */
    KV_OP_FUNCTION_LOAD,    /* name code fname ...: a library (kv/functions.h); flag XX: REPLACE;
                             * not a keyspace change (no revision), nor are the two below */
    KV_OP_FUNCTION_DELETE,  /* name */
    KV_OP_FUNCTION_FLUSH,   /* (no arguments) */
    KV_OP_XGROUP,           /* key group [id|consumer]: a = KV_XGROUP_*, b = ENTRIESREAD
                             * (INT64_MIN: none); flag NX: MKSTREAM (kv/stream_group.h) */
    KV_OP_XREADGROUP,       /* group consumer key... id... ("" for >): b keys, a = COUNT;
                             * flag NX: NOACK; value: the entries (store.c) */
    KV_OP_XACK,             /* key group id ...: integer: acknowledged */
    KV_OP_XCLAIM,           /* key group consumer id ... [lastid]: see store__xclaim */
    KV_OP_XAUTOCLAIM,       /* key group consumer start: a = min idle, b = COUNT */
    KV_OP_FUNCTION_RESTORE, /* (name code nfn fname...)...: libraries all or none; a =
                             * KV_FUNCTION_RESTORE_* (kv/functions.h); refused: PRECONDITION,
                             * value 'L' library or 'F' function name */
    KV_OP_XSETID,           /* key id [max-deleted-id]: a stream's last ID; a = ENTRIESADDED
                             * (-1: none) */
    KV_OP_MAX_
} kv_op;

enum {
    KV_FLAG_NX = 1 << 0,
    KV_FLAG_XX = 1 << 1,
    KV_FLAG_KEEPTTL = 1 << 2,
    KV_FLAG_GET = 1 << 3,    /* return the previous value */
    KV_FLAG_IF_REV = 1 << 4, /* require mod_revision == a (0 = must be absent) */
    KV_FLAG_GT = 1 << 5,
    KV_FLAG_LT = 1 << 6,
    KV_FLAG_PERSIST = 1 << 7,
    /* the last arg is a client's idempotency key: a repeat of a key seen
     * recently returns the remembered result and changes nothing */
    KV_FLAG_IDEMPOTENT = 1 << 8,
    KV_FLAG_ALL_ = (1 << 9) - 1
};

/* ZADD's options (KV_OP_ZADD's a) */
enum {
    KV_ZADD_NX = 1,
    KV_ZADD_XX = 2,
    KV_ZADD_GT = 4,
    KV_ZADD_LT = 8,
    KV_ZADD_CH = 16,
    KV_ZADD_INCR = 32,
};

/* XGROUP's subcommands (its a) */
enum {
    KV_XGROUP_CREATE = 1,
    KV_XGROUP_SETID = 2,
    KV_XGROUP_DESTROY = 3,
    KV_XGROUP_CREATECONSUMER = 4,
    KV_XGROUP_DELCONSUMER = 5
};

/* KV_OP_PUBLISH's a: 0 a channel, KV_PUBLISH_SHARD a shard channel */
enum { KV_PUBLISH_SHARD = 1 };

/* XADD's and XTRIM's trimming (their a) */
enum { KV_XTRIM_NONE = 0, KV_XTRIM_MAXLEN = 1, KV_XTRIM_MINID = 2, KV_XTRIM_APPROX = 4 };

/* SORT ... STORE's options (KV_OP_SORTSTORE's a) */
enum { KV_SORT_DESC = 1, KV_SORT_ALPHA = 2, KV_SORT_BY = 4 };

/* ZRANGESTORE's options (KV_OP_ZRANGESTORE's a) */
enum {
    KV_ZRS_BYSCORE = 1,
    KV_ZRS_BYLEX = 2,
    KV_ZRS_REV = 4,
    KV_ZRS_LIMIT = 8,
};

typedef struct kv_slice {
    const char *ptr;
    size_t len;
} kv_slice;

typedef struct kv_command {
    uint8_t op;
    uint16_t flags;
    int64_t now_ms;
    int64_t expire_ms;
    int64_t a;
    int64_t b;
    uint64_t origin;
    uint64_t seq;
    uint32_t nargs;
    kv_slice *args; /* decode: points into the input and a caller array */
} kv_command;

/* Append the encoding of cmd to out. */
void kv_command_encode(const kv_command *cmd, buf *out);

/* Encoded size including padding, to allocate exactly once. */
size_t kv_command_encoded_size(const kv_command *cmd);
/* Encode into dst, which has kv_command_encoded_size bytes. */
void kv_command_encode_to(const kv_command *cmd, char *dst);

/* Decode data[0..len). args_space is a caller array of args_cap slices; if
 * the command has more args, *args_needed is set and -2 is returned so the
 * caller can retry with a larger array. Returns 0 on success, -1 when the
 * data is malformed (err gets a reason). Slices point into data. */
int kv_command_decode(const char *data, size_t len, kv_command *cmd, kv_slice *args_space,
                      uint32_t args_cap, uint32_t *args_needed, const char **err);

const char *kv_op_name(int op);

#endif
