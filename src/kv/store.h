/* store: the deterministic state machine that every node runs.
 *
 * kv_store_apply takes one decoded command and changes the keyspace the
 * same way on every node: it reads time only from the command (now_ms) and
 * limits only from the command, so replaying the log anywhere yields the
 * same keyspace and the same revision. It does no I/O.
 *
 * Revisions: `revision` grows by one per applied command that changes the
 * visible keyspace (like etcd). A key's create_rev/mod_rev are revisions;
 * `version` counts writes since the key was created.
 *
 * Expired entries are logically absent. Apply removes an expired entry
 * when it meets one (same on every node, so no divergence); the leader's
 * expiry cycle proposes KV_OP_EXPIRE_KEYS for the rest. Reads judge expiry
 * at the time their replica gives them (kv_store_get, kv_store_hides). */
#ifndef CAIRN_KV_STORE_H
#define CAIRN_KV_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "kv/command.h"
#include "kv/dedup.h"
#include "kv/functions.h"
#include "kv/keyspace.h"
#include "util/buf.h"

typedef enum kv_status {
    KV_OK = 0,
    KV_ERR_PRECONDITION,    /* NX/XX/IF_REV not met: nothing changed */
    KV_ERR_NOT_INTEGER,     /* value is not an integer or out of range */
    KV_ERR_OVERFLOW,        /* increment or decrement would overflow */
    KV_ERR_NOT_FLOAT,       /* value is not a valid float */
    KV_ERR_NAN_OR_INF,      /* increment would produce NaN or Infinity */
    KV_ERR_NO_SUCH_KEY,     /* rename of a missing key */
    KV_ERR_TOO_LARGE,       /* result over the command's max length */
    KV_ERR_MALFORMED,       /* wrong argument count for the op */
    KV_ERR_WRONGTYPE,       /* the key holds a value of another type */
    KV_ERR_OUT_OF_RANGE,    /* LSET: no element at that index */
    KV_ERR_NOT_HLL,         /* a string that is not a HyperLogLog sketch */
    KV_ERR_HLL_CORRUPT,     /* a sketch whose registers do not add up */
    KV_ERR_NO_MEMBER,       /* GEOSEARCHSTORE FROMMEMBER: no such member */
    KV_ERR_NOT_FLOAT_SORT,  /* SORT: an element or BY value is not a number */
    KV_ERR_DUMP_FOOTER,     /* RESTORE: a payload's version or checksum is wrong */
    KV_ERR_DUMP_DATA,       /* RESTORE: a payload's object does not parse */
    KV_ERR_STREAM_ID_SMALL, /* XADD: the ID is not greater than the stream's last one */
    KV_ERR_STREAM_ID_ZERO,  /* XADD: the ID 0-0 */
    KV_ERR_LIBRARY_EXISTS,  /* FUNCTION LOAD without REPLACE of a library that exists */
    KV_ERR_FUNCTION_EXISTS, /* FUNCTION LOAD: another library has a function of that name (value) */
    KV_ERR_NO_LIBRARY,      /* FUNCTION DELETE: no such library */
    KV_ERR_NOGROUP,         /* no such stream or consumer group (value: u32 len | key | group) */
    KV_ERR_BUSYGROUP,       /* XGROUP CREATE of a group that exists */
    KV_ERR_ENTRIES_ADDED,   /* XSETID: ENTRIESADDED below the stream's length */
    KV_STATUS_COUNT_
} kv_status;

typedef struct kv_result {
    kv_status status;
    int64_t integer;   /* count, new length, new integer, 0/1 per op */
    bool has_value;    /* value holds the old/current value */
    const char *value; /* store-owned, valid until the next apply */
    size_t value_len;  /* LPOP with a count: count x (u32 len | bytes) */
    uint64_t revision; /* store revision after the command */
    /* metadata of the (first) key after the command, when it exists */
    bool key_exists;
    uint64_t create_rev, mod_rev, version;
    int64_t expire_ms;
    bool replayed;     /* an idempotent repeat: the remembered result */
    uint64_t apply_ns; /* how long the apply took (SLOWLOG; time_applies); not state */
} kv_result;

/* Called after each apply, on every node; the replica layer uses it to hand
 * results to the request that proposed the command (origin == self). */
typedef void (*kv_store_result_fn)(void *ctx, const kv_command *cmd, const kv_result *res);

/* A change to the keyspace, reported right after it is made, on every node
 * and in apply order (the transaction log feeds on it; watch and keyspace
 * notifications will). One command may report several at one revision
 * (MSET, a DEL of several keys, RENAME). Every revision a command adds
 * reports at least one change; reclaiming a key that had already expired
 * adds no revision and reports none (its expiry was reported with it). */
typedef enum kv_change_kind {
    KV_CHANGE_PUT = 1,     /* key now holds value (and expire_ms, 0 = none) */
    KV_CHANGE_DELETE = 2,  /* key removed */
    KV_CHANGE_FLUSH = 3,   /* every key removed (on_notify also hears a flush of none) */
    KV_CHANGE_RESET = 4,   /* the whole state replaced (a snapshot): on_notify only */
    KV_CHANGE_EXPIRED = 5, /* an expired key reclaimed (no revision; its expiry was reported
                            * with it): on_notify only, for keyspace notifications */
} kv_change_kind;

typedef struct kv_change {
    uint64_t revision;
    kv_change_kind kind;
    const char *key; /* PUT, DELETE; valid during the call only */
    size_t key_len;
    const char *value; /* PUT of a string */
    size_t value_len;
    uint8_t type;          /* PUT: KV_TYPE_*; value is set for strings only */
    int64_t expire_ms;     /* PUT: absolute, ms since the epoch; 0 = none */
    int64_t now_ms;        /* the command's time */
    const kv_command *cmd; /* what made the change (NULL for RESET); valid during the call */
    bool created;          /* PUT: the key was created by it */
    bool consumer_created; /* XREADGROUP, XCLAIM, XAUTOCLAIM: a consumer was made */
} kv_change;

typedef void (*kv_store_change_fn)(void *ctx, const kv_change *c);

/* A transaction's progress (kv/transaction.h): step KV_TX_BEGIN with the
 * outcome in res->integer (1 run, 0 aborted by WATCH), then each step's
 * result (NULL for a read step). res->value is valid during the call. */
typedef void (*kv_store_tx_step_fn)(void *ctx, const kv_command *tx, int64_t step,
                                    const kv_result *res);

/* A KV_OP_PUBLISH applies (every node): deliver args[0] (channel), args[1]
 * (message); the answer becomes the result's integer (receivers here). */
typedef int64_t (*kv_store_publish_fn)(void *ctx, const kv_command *cmd);

/* The client addresses of cluster members, replicated like data so that
 * every node can reach every other one's HTTP API (for forwarding) and
 * list them. Raft's configuration only knows peer addresses. */
#define KV_MAX_MEMBERS 64
#define KV_ADDR_MAX 128
typedef struct kv_member {
    uint64_t id;
    char http[KV_ADDR_MAX];
    char resp[KV_ADDR_MAX];
} kv_member;

typedef struct kv_store {
    kv_keyspace ks;
    uint64_t revision;
    uint64_t expired_keys; /* reclaimed by expiry (stat) */
    /* expired entries reads have hidden so far: a read whose answer grew
     * it depended on judging expiry (replica_read_settle) */
    uint64_t hidden_expired;
    buf scratch; /* backs kv_result.value */
    kv_member members[KV_MAX_MEMBERS];
    unsigned n_members;
    kv_dedup dedup;
    kv_store_result_fn on_result;
    void *on_result_ctx;
    /* time the outermost applies into kv_result.apply_ns (SLOWLOG of a
     * write applied after its request returned); off, an apply reads no
     * clock: a script's or a transaction's nested applies never do */
    bool time_applies;
    unsigned apply_depth;
    kv_store_change_fn on_change; /* optional */
    void *on_change_ctx;
    /* optional, a second listener of the node's own (blocked clients wait
     * for pushes through it); also told KV_CHANGE_RESET by kv_store_replace */
    kv_store_change_fn on_notify;
    void *on_notify_ctx;
    kv_store_tx_step_fn on_tx_step; /* optional */
    void *on_tx_step_ctx;
    kv_store_publish_fn on_publish; /* optional */
    void *on_publish_ctx;
    kv_functions functions; /* FUNCTION LOAD's libraries (kv/functions.h) */
    kv_slice *tx_args;      /* a transaction step's decoded arguments */
    uint32_t tx_args_cap;
} kv_store;

void kv_store_init(kv_store *s, uint64_t seed);
void kv_store_close(kv_store *s);

void kv_store_apply(kv_store *s, const kv_command *cmd, kv_result *res);

/* Local read: the live entry for key at now_ms, or NULL (expired entries
 * are hidden, not removed: removal is a replicated write). */
kv_entry *kv_store_get(kv_store *s, const char *key, size_t key_len, int64_t now_ms);
/* Whether a read at now_ms must hide e (expired); counts it if so. */
bool kv_store_hides(kv_store *s, const kv_entry *e, int64_t now_ms);

/* Give to (an entry of s just inserted, without a value) a copy of from's
 * value, of any type; from may belong to another store. */
void kv_store_copy_value(kv_store *s, const kv_entry *from, kv_entry *to);

const kv_member *kv_store_member(const kv_store *s, uint64_t id);

/* A result on the wire (a leader answering a forwarded write):
 * u32 status | i64 integer | u64 revision | u8 key_exists | u64 create_rev
 * | u64 mod_rev | u64 version | i64 expire_ms | u8 flags (1 has_value, 2 replayed)
 * | u32 len | value.
 * Decoding points res->value into data; returns 0 or -1 if malformed. */
void kv_result_encode(const kv_result *res, buf *out);
int kv_result_decode(const char *data, size_t len, kv_result *res);

/* Reading a pop's result: LPOP with a count and LMPOP carry their
 * elements as u32 length | bytes each, LMPOP the key before them. Start
 * with pos 0; kv_result_popped_key (LMPOP only) comes first. */
kv_slice kv_result_popped_key(const kv_result *res, size_t *pos);
bool kv_result_popped_next(const kv_result *res, size_t *pos, kv_slice *out);

/* Replace the whole state (snapshot restore). Takes the keyspace by value;
 * the old one is freed. */
void kv_store_replace(kv_store *s, kv_keyspace *ks, uint64_t revision);

#endif
