/* resp_internal: what the Redis front-end modules share (resp_api:
 * connections, ordering, dispatch; resp_cmd_strings, resp_cmd_keys,
 * resp_cmd_server: the commands). Not a public interface.
 *
 * A command handler (resp_proc) runs when its request is dispatched, with
 * the request's arguments, and ends in exactly one of three ways:
 *   - it writes a reply into req->reply and returns (answered at once);
 *   - it calls resp_req_propose: the write goes to the replica and the
 *     resp_write_fn formats the reply from the kv_result once committed;
 *   - it calls resp_req_read: the resp_proc continuation runs once a read
 *     is safe (linearizable, or stale after READONLY) and replies then.
 * Continuations may run before those calls return. Arguments stay valid
 * until the request completes (they are copied when it has to wait). */
#ifndef CAIRN_API_RESP_INTERNAL_H
#define CAIRN_API_RESP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "api/api.h"
#include "api/resp_api.h"
#include "api/resp_format.h"
#include "api/slowlog.h"
#include "kv/command.h"
#include "kv/overlay.h"
#include "kv/store.h"
#include "kv/stream.h"
#include "net/resp.h"
#include "net/server.h"
#include "obs/metrics.h"
#include "replica/replica.h"
#include "util/buf.h"
#include "util/users.h"

typedef struct resp_conn resp_conn;
typedef struct resp_req resp_req;
typedef struct resp_cmd resp_cmd;
typedef struct resp_tx resp_tx;         /* a connection's MULTI and WATCH state (resp_multi.c) */
typedef struct resp_exec resp_exec;     /* an EXEC in progress (resp_multi.c) */
typedef struct resp_pubsub resp_pubsub; /* this node's subscriptions (resp_pubsub.c) */
typedef struct resp_script_run resp_script_run; /* a Lua script running (resp_script.c) */
typedef struct resp_scripts resp_scripts;       /* busy scripts and who waits (resp_script.c) */
typedef struct resp_waits resp_waits;           /* WAITs in progress (resp_wait.c) */
typedef struct resp_waiter resp_waiter;
typedef struct resp_tracking resp_tracking; /* CLIENT TRACKING's tables (resp_tracking.c) */

typedef void (*resp_proc)(resp_req *req);
typedef void (*resp_write_fn)(resp_req *req, const kv_result *res);

/* Command flags. WRITE decides ordering: a write may be dispatched while
 * earlier writes of its connection are in flight (the log keeps their
 * order); anything else waits until every earlier request completed. The
 * others are what COMMAND reports and what admission control checks. */
enum {
    RESP_CMD_WRITE = 1 << 0,
    RESP_CMD_READONLY = 1 << 1,
    RESP_CMD_DENYOOM = 1 << 2,
    RESP_CMD_FAST = 1 << 3,
    RESP_CMD_ADMIN = 1 << 4,
    RESP_CMD_NOSCRIPT = 1 << 5,
    RESP_CMD_LOADING = 1 << 6,
    RESP_CMD_STALE = 1 << 7,
    RESP_CMD_NO_AUTH = 1 << 8,
    RESP_CMD_DANGEROUS = 1 << 9,       /* ACL category only */
    RESP_CMD_KEYSPACE = 1 << 10,       /* ACL @keyspace (else the group's) */
    RESP_CMD_BLOCKING = 1 << 11,       /* may block: ordered like a read (nothing after it
                                        * starts until it answers), ACL @blocking */
    RESP_CMD_NUMKEYS = 1 << 12,        /* keys move: first_key is the position of their count
                                        * (LMPOP's numkeys), the keys follow it */
    RESP_CMD_MAY_READ = 1 << 13,       /* a write that may answer as a read (SORT without STORE,
                                        * GEORADIUS, BITFIELD of GETs, Z*STORE with bad options
                                        * that checks its sources' types): ordered like a read */
    RESP_CMD_TX_CONTROL = 1 << 14,     /* runs at once inside MULTI, never queued (MULTI, EXEC,
                                        * DISCARD, WATCH, UNWATCH, QUIT, RESET) */
    RESP_CMD_NO_MULTI = 1 << 15,       /* refused inside MULTI (SHUTDOWN, as Redis) */
    RESP_CMD_PUBSUB_CONTEXT = 1 << 16, /* allowed on a RESP2 connection that subscribed
                                        * (SUBSCRIBE and family, PING, QUIT, RESET) */
    RESP_CMD_BLOCK_OPTION = 1 << 17,   /* BLOCKING only with a BLOCK argument (before
                                        * STREAMS): without, XREADGROUP is a write that
                                        * pipelines like one */
    RESP_CMD_AT_EXEC = 1 << 18,        /* changes the connection (AUTH, HELLO, SUBSCRIBE
                                        * and family): inside MULTI it runs once the
                                        * transaction ran, when EXEC's reply is put together,
                                        * never when EXEC answers nil or EXECABORT */
};

struct resp_cmd {
    const char *name; /* lower case */
    resp_proc proc;
    int arity; /* Redis' convention: N exactly, -N at least N (name included) */
    uint32_t flags;
    int first_key, last_key, key_step; /* last_key < 0 counts from the end */
    const char *group;                 /* string, generic, connection, server */
    const char *since;
    const char *complexity;
    const char *summary;
    const char *synopsis; /* arguments, in the notation of Redis' docs */
};

/* The keys that options name (for COMMAND GETKEYS): SORT's STORE key
 * (its position in argv, 0 for none); GEORADIUS' and GEORADIUSBYMEMBER's
 * STORE and STOREDIST keys, into out (returns how many). */
size_t resp_sort_store_key(const resp_arg *argv, size_t argc);
size_t resp_geo_store_keys(const resp_cmd *cmd, const resp_arg *argv, size_t argc, size_t out[2]);

/* The positions of cmd's keys in argv, [*first, *last] by key_step;
 * false when it has none. */
bool resp_cmd_keys(const resp_cmd *cmd, const resp_arg *argv, size_t argc, long *first, long *last);

/* The command tables of the topic modules. */
extern const resp_cmd resp_cmds_strings[];
extern const size_t resp_cmds_strings_count;
extern const resp_cmd resp_cmds_keys[];
extern const size_t resp_cmds_keys_count;
extern const resp_cmd resp_cmds_hashes[];
extern const size_t resp_cmds_hashes_count;
extern const resp_cmd resp_cmds_lists[];
extern const size_t resp_cmds_lists_count;
extern const resp_cmd resp_cmds_sets[];
extern const size_t resp_cmds_sets_count;
extern const resp_cmd resp_cmds_zsets[];
extern const size_t resp_cmds_zsets_count;
extern const resp_cmd resp_cmds_bitmaps[];
extern const size_t resp_cmds_bitmaps_count;
extern const resp_cmd resp_cmds_hll[];
extern const size_t resp_cmds_hll_count;
extern const resp_cmd resp_cmds_geo[];
extern const size_t resp_cmds_geo_count;
extern const resp_cmd resp_cmds_sort[];
extern const size_t resp_cmds_sort_count;
extern const resp_cmd resp_cmds_server[];
extern const size_t resp_cmds_server_count;
extern const resp_cmd resp_cmds_transactions[];
extern const size_t resp_cmds_transactions_count;
extern const resp_cmd resp_cmds_pubsub[];
extern const size_t resp_cmds_pubsub_count;
extern const resp_cmd resp_cmds_cluster[];
extern const size_t resp_cmds_cluster_count;
extern const resp_cmd resp_cmds_streams[];
extern const size_t resp_cmds_streams_count;
extern const resp_cmd resp_cmds_stream_groups[];
extern const size_t resp_cmds_stream_groups_count;
extern const resp_cmd resp_cmds_xinfo[];
extern const size_t resp_cmds_xinfo_count;
extern const resp_cmd resp_cmds_wait[];
extern const size_t resp_cmds_wait_count;
extern const resp_cmd resp_cmds_scripting[];
extern const size_t resp_cmds_scripting_count;

enum {
    RESP_OUTCOME_OK = 0,
    RESP_OUTCOME_ERROR,       /* the client's mistake: syntax, arity, types */
    RESP_OUTCOME_BUSY,        /* shed: too much in flight */
    RESP_OUTCOME_UNAVAILABLE, /* no leader, quorum lost, shutting down */
    RESP_OUTCOME_OOM,         /* --maxmemory reached */
    RESP_OUTCOMES_
};

#define RESP_HASH_SLOTS 512

struct resp_api {
    api *a;
    resp_limits limits;
    size_t max_query_bytes; /* an incomplete command beyond this is refused */
    uint32_t max_pending;   /* requests in flight per connection */
    const resp_cmd **cmds;  /* every command, in table order */
    size_t ncmds;
    uint16_t slots[RESP_HASH_SLOTS]; /* command index + 1, open addressing */
    size_t max_name_len;
    metrics_counter *(*m_cmd)[RESP_OUTCOMES_]; /* [ncmds + 1]: last = unknown */
    metrics_histogram **m_latency;             /* [ncmds + 1] */
    metrics_counter *m_protocol_errors, *m_reply_too_large;
    resp_conn *conns; /* open connections, newest first */
    uint64_t n_conns;
    uint64_t total_connections;
    uint64_t total_commands;
    uint64_t keyspace_hits, keyspace_misses;
    int64_t peak_memory;
    struct resp_blocking *blocking; /* blocked clients (resp_block.c) */
    slowlog slowlog;
    /* CONFIG RESETSTAT: the node-wide counters INFO shows as counted since */
    uint64_t expired_base, evicted_base;
    resp_exec *execs; /* transactions proposed here, not applied yet */
    resp_pubsub *pubsub;
    uint32_t notify_flags;   /* notify-keyspace-events (resp_notify.c), this node's */
    int64_t notify_since_ms; /* changes stamped before this are not notified (a replay) */
    buf notify_held;         /* LMOVE's source, told after its destination */
    bool notify_held_del;
    uint64_t tx_nonce, tx_counter;
    struct script_lua *lua; /* the scripts' interpreter, made on first use (resp_script.c) */
    kv_overlay *overlay;    /* the scripts' overlay, reused run after run */
    resp_scripts *scripts;  /* a script that went busy, requests waiting for the interpreter */
    resp_waits *waits;
    resp_tracking *tracking;
};

struct resp_conn {
    net_conn *c;
    resp_api *ra;
    resp_parser parser;
    resp_req *head, *tail; /* requests in arrival order */
    resp_req *spare;       /* finished requests kept for reuse */
    uint32_t pending, nspare;
    bool pending_read;  /* a non-write is queued: nothing may start */
    bool stalled;       /* parsing stopped (and reading paused) until drained */
    uint32_t resume_at; /* a stalled connection resumes at this many pending */
    bool failed;        /* a protocol error or QUIT: parse nothing more */
    bool dead;          /* closed while a call up the stack still uses it */
    int depth;          /* nesting of process/drain calls */
    int proto;          /* 2 or 3 */
    bool readonly;      /* READONLY: stale local reads */
    /* --users-file: who authenticated (by name: a reload frees users) */
    const users_user *user; /* valid while user_gen is the current generation */
    uint64_t user_gen;
    char user_name[USERS_NAME_MAX];
    size_t user_name_len;        /* 0: not authenticated */
    struct auth_wait *auth_wait; /* a password check in progress */
    buf name, lib_name, lib_ver;
    int64_t created_ms, last_cmd_ms;
    const char *last_cmd;
    resp_tx *tx;                         /* NULL until MULTI or WATCH */
    struct resp_conn_subs *subs;         /* NULL until SUBSCRIBE or PSUBSCRIBE */
    bool push_queued;                    /* messages wait for the pub/sub flush (held till then) */
    struct resp_tracking_conn *tracking; /* NULL until CLIENT TRACKING */
    resp_conn *prev, *next;
};

struct resp_req {
    resp_conn *rc;
    api *a;
    const resp_cmd *cmd;
    size_t cmd_index; /* into ra->cmds; ra->ncmds for unknown commands */
    replica_req rreq;
    resp_write_fn on_write;
    resp_proc on_ready;
    int proto; /* of the connection when the request arrived */
    int outcome;
    bool done;
    bool waiting; /* a replica callback is due */
    bool close_after;
    bool keep_args; /* a write whose continuation reads argv (else it is gone) */
    uint64_t start_ns;
    uint64_t exec_ns; /* time the loop spent executing it (SLOWLOG) */
    uint64_t end_ns;  /* when its handler returned, if it finishes right then (else 0) */
    /* when its read continuation started, while it runs outside the
     * handler (0 otherwise): a finish inside it counts the time so far */
    uint64_t cont_ns;
    bool in_proc; /* its handler is running */
    bool ran;     /* its handler ran (Redis logs no command refused before) */
    /* arguments: the parser's during dispatch, own copies once waiting */
    const resp_arg *argv;
    size_t argc;
    resp_arg *own_argv;
    size_t own_cap;
    buf own_data;
    /* options parsed by the handler for its continuation */
    int64_t n[8];
    uint32_t opt;
    struct resp_block *block; /* a blocking pop's state, while it waits */
    resp_exec *exec;          /* EXEC: the transaction */
    resp_exec *tx_exec;       /* a command of a transaction: the EXEC running it */
    int tx_step;              /* ... what it asked for (resp_multi.c) */
    size_t tx_index;          /* ... its position */
    resp_script_run *script;  /* a command a script runs (redis.call): on its overlay */
    bool script_waits;        /* its script is busy, or waits for the busy one (resp_script.c) */
    resp_waiter *wait;        /* a WAIT waiting for replicas (resp_wait.c) */
    bool track;               /* CLIENT TRACKING remembers the keys it reads */
    bool tracking_after;      /* its own change's invalidation follows its reply */
    buf reply;
    resp_req *next;
};

/* ---- used by the command modules (resp_api.c) ---- */

void resp_req_propose(resp_req *req, kv_command *cmd, resp_write_fn done);
/* argv[first .. first + n) as slices: in small when n <= 16, else
 * allocated (free it when it is not small) */
kv_slice *resp_req_arg_slices(const resp_req *req, size_t first, size_t n, kv_slice small[16]);
/* resp_req_propose of a command whose arguments are argv[first .. first + n) */
void resp_req_propose_args(resp_req *req, size_t first, size_t n, int op, uint16_t flags, int64_t a,
                           int64_t b, resp_write_fn done);
/* The replies most writes give: the result's integer; +OK. */
void resp_reply_integer(resp_req *req, const kv_result *res);
void resp_reply_ok(resp_req *req, const kv_result *res);
/* A write's answer: the replica's or the state machine's error, else
 * done's reply from res. */
void resp_req_answer_write(resp_req *req, int status, const kv_result *res, resp_write_fn done);
void resp_req_read(resp_req *req, resp_proc ready);

void resp_req_error(resp_req *req, const char *msg);
void resp_req_errorf(resp_req *req, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void resp_req_error_syntax(resp_req *req);
void resp_req_error_not_integer(resp_req *req);
void resp_req_error_arity(resp_req *req);
/* Redis' arity error of a container's subcommand: 'cmd|sub', the
 * subcommand (argv[1]) in lower case as Redis names it. */
void resp_req_error_sub_arity(resp_req *req);
/* A HELP subcommand's answer: lines (NULL-terminated) as status replies. */
void resp_req_help(resp_req *req, const char *const *lines);
/* "-ERR value too large (max N bytes)" and false when v is over the limit. */
bool resp_req_check_value(resp_req *req, const resp_arg *v);
/* Parse a SCAN-family cursor (Redis reads it with strtoul: -1 wraps);
 * false after replying "ERR invalid cursor". */
bool resp_req_cursor_arg(resp_req *req, const resp_arg *v, int64_t *out);
/* HSCAN/SSCAN's key cursor [MATCH pattern] [COUNT count]: n[0] cursor,
 * n[1] count (10), n[2] the pattern's argument index (0: none); false
 * after replying the Redis error. */
bool resp_req_scan_args(resp_req *req);
/* HSCAN/SSCAN's walk: the step visits the items of one cursor step of
 * the collection and hands each to resp_scan_take. */
typedef struct resp_scan {
    const resp_arg *match;
    buf body;
    size_t found, visited;
} resp_scan;
typedef uint64_t (*resp_scan_step)(const kv_entry *e, uint64_t cursor, resp_scan *sc);
/* An item met by the walk: written and true, or false when MATCH leaves
 * it out (a field's value is then left out too). */
bool resp_scan_take(resp_scan *sc, kv_slice item);
/* Walk e (NULL: absent) from the cursor of resp_req_scan_args until COUNT
 * items were met or 10 x COUNT steps, as Redis does, and reply
 * [next cursor, [items]]; per_item: bulks written per item taken. */
void resp_req_scan_reply(resp_req *req, const kv_entry *e, resp_scan_step step, size_t per_item);
/* SRANDMEMBER, HRANDFIELD, ZRANDMEMBER: the positions to answer with for
 * a count over len elements (positive: distinct ones, at most len;
 * negative: |count| draws, repeats allowed), ascending so that one walk
 * visits them; *n of them (free the array). This node's random numbers:
 * a read changes nothing. */
uint64_t *resp_random_positions(uint64_t len, int64_t count, size_t *n);
/* A random count argument as Redis reads it; false after the error. */
bool resp_req_random_count(resp_req *req, const resp_arg *v, int64_t *count);
/* LMPOP's and ZMPOP's numkeys key [key ...] ONE|ZERO [COUNT count] from
 * argv[at]: the keys' first index and number, the side (1 for `one`, 0
 * for `zero`, the names as Redis spells them) and the count (1 without
 * COUNT); false after replying Redis' error. */
bool resp_req_mpop_args(resp_req *req, size_t at, const char *one, const char *zero, size_t *first,
                        size_t *n, int *side, int64_t *count);
/* Parse an integer argument; false after replying the Redis error. */
bool resp_req_int_arg(resp_req *req, const resp_arg *v, int64_t *out);

/* A request that waited for something other than the replica is done:
 * count it and write what is due. */
void resp_req_finish_async(resp_req *req);

/* ---- blocking pops (resp_block.c) ---- */

/* Serve req by proposing cmd, a pop (LMPOP or LMOVE) whose result has no
 * value when every list it looks at is empty or absent. Then the request
 * blocks until a push applies to one of cmd's keys on this node (it is
 * proposed again, blocked clients served in the order they blocked) or
 * timeout_ms passes (0: never); `done` formats the reply from the result
 * that served it, `timed_out` the timeout's reply. A client that leaves
 * loses no element: a pop that completes after it left is pushed back. */
void resp_block_pop(resp_req *req, const kv_command *cmd, int64_t timeout_ms, resp_write_fn done,
                    resp_proc timed_out);
/* A blocking command's timeout argument (seconds as a float, 0 for
 * ever) in ms; false after replying Redis' error. */
bool resp_block_timeout_arg(resp_req *req, const resp_arg *v, int64_t *ms);
/* resp_block_pop of a command on the keys argv[first .. first + n) that
 * answers a null array when it times out (every blocking pop in Redis). */
void resp_block_keys(resp_req *req, size_t first, size_t n, int op, int64_t a, int64_t b,
                     int64_t timeout_ms, resp_write_fn done);
/* Block req, a read that found nothing, on the keys argv[first .. first +
 * n) of type: on each push to one of them retry runs (reading the local
 * store) and, when it answered, the request completes; after timeout_ms
 * (0: never) it answers a null array. Every reader waiting on the key is
 * retried (a read takes nothing away). */
void resp_block_read(resp_req *req, size_t first, size_t n, int type, int64_t timeout_ms,
                     bool (*retry)(resp_req *req), void *state);
/* The state given to resp_block_read (malloc'd; freed with the block). */
void *resp_block_state(resp_req *req);
/* The client of a blocked request left (its connection closes). */
void resp_block_detach(resp_req *req);
void resp_blocking_init(resp_api *ra, uv_loop_t *loop);
void resp_blocking_close(resp_api *ra);
/* Blocked clients now (INFO's blocked_clients). */
uint64_t resp_blocking_count(const resp_api *ra);

/* ---- authentication and limits (resp_auth.c) ---- */

/* The connection's user, NULL if none (or no --users-file). */
const users_user *resp_auth_user(resp_conn *rc);
void resp_auth_forget(resp_conn *rc);
/* Check user and password; then ready(req) runs (now or once the check
 * finished) or WRONGPASS is answered. */
void resp_req_authenticate(resp_req *req, const resp_arg *user, const resp_arg *pw,
                           resp_proc ready);
/* Each answers the error itself and returns false when the command stops. */
bool resp_auth_rate(resp_req *req);
bool resp_auth_admit(resp_req *req);
/* A written key the command table's positions do not cover (the
 * destination of ZUNIONSTORE and family, whose other keys move): its size
 * limit and the user's key patterns. */
bool resp_auth_extra_key(resp_req *req, const resp_arg *key);
/* The same for a key the command only reads (XREAD's). */
bool resp_auth_extra_read_key(resp_req *req, const resp_arg *key);
/* Whether the connection's user may read every key (Redis' "full key
 * access": what SORT's BY and GET patterns need); true without users. */
bool resp_auth_reads_every_key(resp_req *req);

/* ---- transactions (resp_multi.c) ---- */

void resp_tx_init(resp_api *ra);
void resp_tx_close(resp_api *ra);
/* Whether cmd is queued (the connection is in MULTI and cmd is not one
 * that runs at once); then resp_tx_queue answers QUEUED or the error. */
bool resp_tx_queues(const resp_conn *rc, const resp_cmd *cmd);
void resp_tx_queue(resp_req *req);
/* req was refused before it ran (its error is in its reply): inside
 * MULTI the transaction is flagged, EXEC will abort; a refused EXEC
 * discards the transaction at once (EXECABORT). */
void resp_tx_flag(resp_req *req);
/* RESET, DISCARD: out of MULTI, nothing watched. */
void resp_tx_conn_reset(resp_conn *rc);
void resp_tx_conn_free(resp_conn *rc);
/* What a command of a transaction asks for (req->tx_exec set), instead
 * of resp_req_propose, resp_block_pop and resp_req_read. */
void resp_tx_propose(resp_req *sub, kv_command *cmd, resp_write_fn done);
void resp_tx_pop(resp_req *sub, const kv_command *cmd, resp_write_fn done, resp_proc empty);
void resp_tx_read(resp_req *sub, resp_proc ready);
/* A transaction's AUTH or HELLO whose password check waited is done. */
void resp_tx_sub_finished(resp_req *sub);
/* The request is done with: its transaction's state goes. */
void resp_tx_exec_free(resp_req *req);
/* A script ran on overlay o (resp_script.c): propose its effects as one
 * KV_OP_EXEC watching every key it looked at. Once the entry applied
 * here, req is answered with reply (taken over); when a watched key had
 * moved, nothing was applied and on_abort(req) runs instead (after
 * resp_tx_exec_free it may run the script again). */
void resp_tx_propose_effects(resp_req *req, const kv_overlay *o, buf *reply, resp_proc on_abort);

/* ---- streams (resp_cmd_streams.c) ---- */

/* An ID as a bulk string ("ms-seq"). */
void resp_stream_write_id(buf *o, kv_stream_id id);
/* An entry as XRANGE replies it: [id, [field, value, ...]]. */
void resp_stream_write_entry(buf *o, const kv_stream_entry *x);

/* ---- stream consumer groups (resp_cmd_stream_groups.c) ---- */

/* A NOGROUP result's error, worded as Redis words it for req's command. */
void resp_stream_group_error(resp_req *req, const kv_result *res);

/* ---- CLIENT TRACKING (resp_tracking.c) ---- */

void resp_tracking_init(resp_api *ra, uv_loop_t *loop);
void resp_tracking_close(resp_api *ra);
void resp_tracking_conn_free(resp_conn *rc);
/* RESET: tracking off. */
void resp_tracking_reset(resp_conn *rc);
/* CLIENT TRACKING, CACHING, GETREDIR, TRACKINGINFO; false: another
 * subcommand. */
bool resp_tracking_client(resp_req *req);
/* At dispatch: whether the keys cmd reads are remembered for the client
 * (it consumes CLIENT CACHING's flag; queued: inside MULTI). */
bool resp_tracking_take(resp_conn *rc, const resp_cmd *cmd, bool queued);
/* A read-only command of a tracking client looked key up. */
void resp_tracking_remember(resp_req *req, const resp_arg *key);
/* A read ran (its answer is made): remember the keys its command declares
 * (as Redis, which remembers a read-only command's keys after it ran;
 * keys looked up elsewhere are remembered at the lookup). */
void resp_tracking_read(resp_req *req);
/* A change applied (kv_store on_notify). */
void resp_tracking_change(resp_api *ra, const kv_change *c);
/* rc proposed cmd (its log identity is set): NOLOOP knows it as rc's. */
void resp_tracking_proposed(resp_conn *rc, const kv_command *cmd);
/* rc's reply that made a change of its own was written: tell it now. */
void resp_tracking_after_reply(resp_conn *rc);
/* CLIENT LIST's: flags t (tracking), R (its redirect is gone), B (BCAST)
 * appended at flags[*n]; redir= (-1: not tracking). */
void resp_tracking_flags(const resp_conn *rc, char *flags, size_t *n);
long long resp_tracking_redirect(const resp_conn *rc);
/* tracking-table-max-keys (0: no limit) and the keys remembered. */
void resp_tracking_set_max_keys(resp_api *ra, uint64_t max);
uint64_t resp_tracking_max_keys(const resp_api *ra);
/* INFO's: connections tracking, keys remembered, their (key, client)
 * pairs, BCAST prefixes. */
typedef struct resp_tracking_stats {
    uint64_t clients, keys, items, prefixes;
} resp_tracking_stats;
resp_tracking_stats resp_tracking_stats_of(const resp_api *ra);

/* ---- WAIT (resp_wait.c) ---- */

void resp_wait_init(resp_api *ra, uv_loop_t *loop);
void resp_wait_close(resp_api *ra);
/* The request goes (its connection closed): it stops waiting. */
void resp_wait_forget(resp_req *req);

/* ---- scripts (resp_script.c) ---- */

void resp_script_close(resp_api *ra);
void resp_script_init(resp_api *ra, uv_loop_t *loop);
/* While a script is busy (past busy-reply-threshold, yielding to the
 * loop), most commands are refused as Redis refuses them: true after
 * writing the BUSY error into req (EXEC: the transaction is discarded). */
bool resp_script_refuses(resp_req *req);
/* The client of req left: its busy script ends, or it waits no more. */
void resp_script_detach(resp_req *req);
/* A transaction with a script that may write runs at EXEC, every
 * queued command in order on one overlay (resp_multi.c): begin a run at
 * now_ms (never while a script is busy: resp_script_wait for that), look
 * at the WATCHed keys (their revisions are then checked at apply), run
 * each command (its reply appended to out; false when a script in it was
 * stopped, its error in stopped), and end: the reply, or the effects
 * proposed as one entry, on_abort when a key looked at changed first. */
#define RESP_SCRIPT_MAX_RUNS 64 /* runs of one script (or such a transaction) in a row */
bool resp_script_busy(const resp_api *ra);
void resp_script_wait(resp_req *req, resp_proc proc);
resp_script_run *resp_script_begin(resp_req *req, int64_t now_ms);
void resp_script_look(resp_script_run *run, const char *key, size_t len);
bool resp_script_step(resp_script_run *run, const resp_arg *argv, size_t argc, buf *out,
                      buf *stopped);
void resp_script_end(resp_script_run *run, buf *reply, bool stopped, resp_proc on_abort);
/* busy-reply-threshold (lua-time-limit), this node's, in ms */
uint64_t resp_script_threshold(const resp_api *ra);
void resp_script_set_threshold(resp_api *ra, uint64_t ms);
/* What a command run by a script (req->script set) asks for, instead of
 * resp_req_propose, resp_block_pop and resp_req_read: done at once, on
 * the script's overlay. */
void resp_script_propose(resp_req *sub, kv_command *cmd, resp_write_fn done);
void resp_script_pop(resp_req *sub, const kv_command *cmd, resp_write_fn done, resp_proc empty);
void resp_script_read(resp_req *sub, resp_proc ready);

/* ---- pub/sub (resp_pubsub.c) ---- */

void resp_pubsub_init(resp_api *ra, uv_loop_t *loop);
void resp_pubsub_close(resp_api *ra);
/* The connection's channels and patterns (0: not subscribed). */
size_t resp_pubsub_count(const resp_conn *rc);
/* The connection closes: its subscriptions end. */
void resp_pubsub_conn_free(resp_conn *rc);
/* Deliver a message to this node's subscribers of channel (and matching
 * patterns) now; how many got it. */
int64_t resp_pubsub_local(resp_api *ra, kv_slice channel, kv_slice message);

/* ---- keyspace notifications (resp_notify.c) ---- */

void resp_notify_init(resp_api *ra);
void resp_notify_close(resp_api *ra);
/* A change applied on this node: its notifications, if turned on. */
void resp_notify_change(resp_api *ra, const kv_change *c);
/* notify-keyspace-events as Redis reads and writes it; parse: false for a
 * character that is not a class. */
bool resp_notify_parse(const char *s, size_t n, uint32_t *flags);
size_t resp_notify_format(uint32_t flags, char out[32]);
/* Keep rc allocated across calls that may close it (it is freed, if it
 * closed, by the matching release). */
void resp_conn_hold(resp_conn *rc);
void resp_conn_release(resp_conn *rc);

/* A replica status as the RESP error it is answered with. */
void resp_req_replica_error(resp_req *req, int status);

/* Lookup for COMMAND INFO/DOCS: NULL when unknown. */
const resp_cmd *resp_api_lookup(const resp_api *ra, const char *name, size_t len);
/* The command of that name and its index (one lookup); NULL when unknown. */
const resp_cmd *resp_api_lookup_index(const resp_api *ra, const char *name, size_t len,
                                      size_t *idx);

/* Reply helpers that depend only on the request's protocol. */
static inline void resp_req_ok(resp_req *req)
{
    buf_append(&req->reply, "+OK\r\n", 5);
}
static inline void resp_req_null(resp_req *req)
{
    resp_write_null(&req->reply, req->proto);
}

/* The keyspace lookup of a read continuation, counting hits and misses
 * and touching the LRU clock. */
kv_entry *resp_req_lookup(resp_req *req, const resp_arg *key);

/* resp_req_lookup for a command of one type: NULL when absent; on a key
 * holding another type the WRONGTYPE error is written and *wrong set. */
kv_entry *resp_req_lookup_typed(resp_req *req, const resp_arg *key, int type, bool *wrong);

/* Redis' answer to a command on a key holding another type. */
static inline void resp_req_wrongtype(resp_req *req)
{
    resp_req_error(req, "WRONGTYPE Operation against a key holding the wrong kind of value");
}

#endif
