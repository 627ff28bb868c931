/* resp_cmd_keys: the generic key commands (DEL, EXISTS, TYPE, the EXPIRE
 * and TTL families, KEYS, SCAN, RENAME, COPY, DUMP and RESTORE, RANDOMKEY,
 * DBSIZE, FLUSHDB), on keys of every type.
 *
 * Expiry times are absolute unix milliseconds in the kv command, computed
 * here from the proposer's clock (kv/command.h): every node applies the
 * same instant. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/memory.h"
#include "api/resp_internal.h"
#include "kv/dump.h"
#include "util/alloc.h"
#include "util/glob.h"
#include "util/strconv.h"

#define KEYS_SCAN_DEFAULT_COUNT 10
#define KEYS_RANDOM_TRIES 100
#define KEYS_SCAN_MAX_COUNT ((uint64_t)1 << 40)

/* ---- DEL UNLINK EXISTS TYPE ----------------------------------------------------- */

static void keys__del(resp_req *req)
{
    size_t n = req->argc - 1;
    kv_slice small[16];
    kv_slice *args = n <= 16 ? small : xcalloc(n, sizeof(*args));
    for (size_t i = 0; i < n; i++) args[i] = (kv_slice){req->argv[i + 1].ptr, req->argv[i + 1].len};
    kv_command cmd = {.op = KV_OP_DEL, .nargs = (uint32_t)n, .args = args};
    resp_req_propose(req, &cmd, resp_reply_integer);
    if (args != small) free(args);
}

static void keys__exists_ready(resp_req *req)
{
    kv_store *s = req->a->store;
    int64_t now = replica_req_read_ms(&req->rreq);
    long long n = 0;
    for (size_t i = 1; i < req->argc; i++)
        n += kv_store_get(s, req->argv[i].ptr, req->argv[i].len, now) != NULL;
    resp_write_integer(&req->reply, n);
}

static void keys__exists(resp_req *req)
{
    resp_req_read(req, keys__exists_ready);
}

static void keys__type_ready(resp_req *req)
{
    kv_entry *e = kv_store_get(req->a->store, req->argv[1].ptr, req->argv[1].len,
                               replica_req_read_ms(&req->rreq));
    resp_write_simple(&req->reply, e ? kv_type_name(e->type) : "none");
}

static void keys__type(resp_req *req)
{
    resp_req_read(req, keys__type_ready);
}

/* ---- EXPIRE PEXPIRE EXPIREAT PEXPIREAT PERSIST ------------------------------------ */

static void keys__expire_common(resp_req *req, bool seconds, bool relative)
{
    uint16_t flags = 0;
    for (size_t i = 3; i < req->argc; i++) {
        const resp_arg *a = &req->argv[i];
        if (resp_format_arg_is(a, "nx"))
            flags |= KV_FLAG_NX;
        else if (resp_format_arg_is(a, "xx"))
            flags |= KV_FLAG_XX;
        else if (resp_format_arg_is(a, "gt"))
            flags |= KV_FLAG_GT;
        else if (resp_format_arg_is(a, "lt"))
            flags |= KV_FLAG_LT;
        else {
            resp_req_errorf(req, "ERR Unsupported option %.*s", (int)a->len, a->ptr);
            return;
        }
    }
    if ((flags & KV_FLAG_NX) && (flags & (KV_FLAG_XX | KV_FLAG_GT | KV_FLAG_LT))) {
        resp_req_error(req, "ERR NX and XX, GT or LT options at the same time are not compatible");
        return;
    }
    if ((flags & KV_FLAG_GT) && (flags & KV_FLAG_LT)) {
        resp_req_error(req, "ERR GT and LT options at the same time are not compatible");
        return;
    }
    int64_t when, at;
    if (!resp_req_int_arg(req, &req->argv[2], &when)) return;
    int64_t now = replica_now_ms();
    if (!resp_format_expire_ms(when, seconds, relative, now, &at)) {
        resp_req_errorf(req, "ERR invalid expire time in '%s' command", req->cmd->name);
        return;
    }
    /* Any time not after now deletes the key; kv reads 0 as "no expiry",
     * so every past instant is sent as 1. */
    if (at <= 0) at = 1;
    kv_slice key = {req->argv[1].ptr, req->argv[1].len};
    kv_command cmd = {.op = KV_OP_EXPIRE,
                      .flags = flags,
                      .nargs = 1,
                      .args = &key,
                      .now_ms = now,
                      .expire_ms = at};
    resp_req_propose(req, &cmd, resp_reply_integer);
}

static void keys__expire(resp_req *req)
{
    keys__expire_common(req, true, true);
}

static void keys__pexpire(resp_req *req)
{
    keys__expire_common(req, false, true);
}

static void keys__expireat(resp_req *req)
{
    keys__expire_common(req, true, false);
}

static void keys__pexpireat(resp_req *req)
{
    keys__expire_common(req, false, false);
}

static void keys__persist(resp_req *req)
{
    kv_slice key = {req->argv[1].ptr, req->argv[1].len};
    kv_command cmd = {.op = KV_OP_PERSIST, .nargs = 1, .args = &key};
    resp_req_propose(req, &cmd, resp_reply_integer);
}

/* ---- TTL PTTL EXPIRETIME PEXPIRETIME ------------------------------------------------ */

enum { KEYS_TTL, KEYS_PTTL, KEYS_EXPIRETIME, KEYS_PEXPIRETIME };

static void keys__ttl_ready(resp_req *req)
{
    int64_t now = replica_req_read_ms(&req->rreq);
    kv_entry *e = kv_store_get(req->a->store, req->argv[1].ptr, req->argv[1].len, now);
    long long v;
    if (!e) {
        v = -2;
    } else if (!e->expire_ms) {
        v = -1;
    } else {
        int64_t left = e->expire_ms - now;
        if (left < 0) left = 0;
        switch (req->opt) {
        case KEYS_TTL:
            v = (left + 500) / 1000;
            break;
        case KEYS_PTTL:
            v = left;
            break;
        case KEYS_EXPIRETIME:
            v = e->expire_ms / 1000;
            break;
        default:
            v = e->expire_ms;
            break;
        }
    }
    resp_write_integer(&req->reply, v);
}

static void keys__ttl_common(resp_req *req, uint32_t kind)
{
    req->opt = kind;
    resp_req_read(req, keys__ttl_ready);
}

static void keys__ttl(resp_req *req)
{
    keys__ttl_common(req, KEYS_TTL);
}

static void keys__pttl(resp_req *req)
{
    keys__ttl_common(req, KEYS_PTTL);
}

static void keys__expiretime(resp_req *req)
{
    keys__ttl_common(req, KEYS_EXPIRETIME);
}

static void keys__pexpiretime(resp_req *req)
{
    keys__ttl_common(req, KEYS_PEXPIRETIME);
}

/* ---- KEYS SCAN RANDOMKEY DBSIZE -------------------------------------------------------- */

static void keys__keys_ready(resp_req *req)
{
    kv_store *s = req->a->store;
    int64_t now = replica_req_read_ms(&req->rreq);
    const resp_arg *pat = &req->argv[1];
    if (glob_is_literal(pat->ptr, pat->len)) {
        kv_entry *e = kv_store_get(s, pat->ptr, pat->len, now);
        resp_write_array(&req->reply, e ? 1 : 0);
        if (e) resp_write_bulk(&req->reply, kv_entry_key(e), e->key_len);
        return;
    }
    /* Byte order (the skiplist), which reads better than hash order. The
     * keys go to a side buffer first: the count comes before them. */
    buf body;
    buf_init(&body);
    size_t n = 0;
    for (kv_entry *e = kv_keyspace_first(&s->ks); e; e = kv_keyspace_next(e)) {
        if (kv_store_hides(s, e, now)) continue;
        if (!glob_match(pat->ptr, pat->len, kv_entry_key(e), e->key_len, false)) continue;
        resp_write_bulk(&body, kv_entry_key(e), e->key_len);
        n++;
    }
    resp_write_array(&req->reply, n);
    buf_append(&req->reply, body.data, body.len);
    buf_close(&body);
}

static void keys__keys(resp_req *req)
{
    resp_req_read(req, keys__keys_ready);
}

enum { KEYS_SCAN_MATCH = 1, KEYS_SCAN_TYPE = 2 };

typedef struct keys_scan {
    resp_req *req;
    buf body;
    size_t found;   /* keys written */
    size_t visited; /* keys looked at, the unit of COUNT */
    int64_t now;
    const resp_arg *match;
    int type; /* TYPE: only keys of this type (KV_TYPE_MAX_: an unknown name, none); -1 any */
} keys_scan;

static void keys__scan_visit(void *ctx, kv_entry *e)
{
    keys_scan *s = ctx;
    s->visited++;
    if ((s->type >= 0 && e->type != s->type) || kv_store_hides(s->req->a->store, e, s->now)) return;
    if (s->match && !glob_match(s->match->ptr, s->match->len, kv_entry_key(e), e->key_len, false))
        return;
    resp_write_bulk(&s->body, kv_entry_key(e), e->key_len);
    s->found++;
}

static void keys__scan_ready(resp_req *req)
{
    keys_scan s = {.req = req,
                   .now = replica_req_read_ms(&req->rreq),
                   .type = (req->opt & KEYS_SCAN_TYPE) ? (int)req->n[3] : -1};
    if (req->opt & KEYS_SCAN_MATCH) s.match = &req->argv[req->n[2]];
    buf_init(&s.body);
    uint64_t cursor = (uint64_t)req->n[0];
    uint64_t count = (uint64_t)req->n[1];
    if (count > KEYS_SCAN_MAX_COUNT) count = KEYS_SCAN_MAX_COUNT; /* keeps count * 10 exact */
    /* As Redis: visit buckets until COUNT keys were seen (before any
     * filtering), bounded to 10 x COUNT buckets so sparse tables return. */
    uint64_t buckets = 0;
    do {
        cursor = kv_keyspace_scan(&req->a->store->ks, cursor, keys__scan_visit, &s);
        buckets++;
    } while (cursor && s.visited < count && buckets < count * 10);
    char num[24];
    int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)cursor);
    resp_write_array(&req->reply, 2);
    resp_write_bulk(&req->reply, num, (size_t)n);
    resp_write_array(&req->reply, s.found);
    buf_append(&req->reply, s.body.data, s.body.len);
    buf_close(&s.body);
}

static void keys__scan(resp_req *req)
{
    if (!resp_req_cursor_arg(req, &req->argv[1], &req->n[0])) return;
    req->n[1] = KEYS_SCAN_DEFAULT_COUNT;
    for (size_t i = 2; i < req->argc; i += 2) {
        const resp_arg *a = &req->argv[i];
        if (i + 1 >= req->argc) {
            resp_req_error_syntax(req);
            return;
        }
        if (resp_format_arg_is(a, "match")) {
            req->opt |= KEYS_SCAN_MATCH;
            req->n[2] = (int64_t)i + 1;
        } else if (resp_format_arg_is(a, "count")) {
            if (!resp_req_int_arg(req, &req->argv[i + 1], &req->n[1])) return;
            if (req->n[1] < 1) {
                resp_req_error_syntax(req);
                return;
            }
        } else if (resp_format_arg_is(a, "type")) {
            req->opt |= KEYS_SCAN_TYPE;
            req->n[3] = KV_TYPE_MAX_; /* a type name cairn does not have matches nothing */
            for (int t = 0; t < KV_TYPE_MAX_; t++)
                if (resp_format_arg_is(&req->argv[i + 1], kv_type_name(t))) req->n[3] = t;
        } else {
            resp_req_error_syntax(req);
            return;
        }
    }
    resp_req_read(req, keys__scan_ready);
}

static void keys__randomkey_ready(resp_req *req)
{
    kv_keyspace *ks = &req->a->store->ks;
    int64_t now = replica_req_read_ms(&req->rreq);
    for (int i = 0; i < KEYS_RANDOM_TRIES; i++) {
        kv_entry *e = kv_keyspace_random(ks);
        if (!e) break;
        if (kv_store_hides(req->a->store, e, now)) continue;
        resp_write_bulk(&req->reply, kv_entry_key(e), e->key_len);
        return;
    }
    resp_req_null(req);
}

static void keys__randomkey(resp_req *req)
{
    resp_req_read(req, keys__randomkey_ready);
}

static void keys__dbsize_ready(resp_req *req)
{
    resp_write_integer(&req->reply, (long long)kv_keyspace_count(&req->a->store->ks));
}

static void keys__dbsize(resp_req *req)
{
    resp_req_read(req, keys__dbsize_ready);
}

/* ---- RENAME RENAMENX FLUSHDB FLUSHALL ------------------------------------------------------ */

static void keys__rename_common(resp_req *req, bool nx)
{
    kv_slice args[2] = {{req->argv[1].ptr, req->argv[1].len}, {req->argv[2].ptr, req->argv[2].len}};
    kv_command cmd = {.op = KV_OP_RENAME, .flags = nx ? KV_FLAG_NX : 0, .nargs = 2, .args = args};
    resp_req_propose(req, &cmd, nx ? resp_reply_integer : resp_reply_ok);
}

static void keys__rename(resp_req *req)
{
    keys__rename_common(req, false);
}

static void keys__renamenx(resp_req *req)
{
    keys__rename_common(req, true);
}

/* COPY source destination [DB destination-db] [REPLACE]: one keyspace
 * here, so DB takes 0 only (another index is refused as SELECT refuses
 * it) */
static void keys__copy(resp_req *req)
{
    bool replace = false;
    for (size_t j = 3; j < req->argc; j++) {
        if (resp_format_arg_is(&req->argv[j], "replace")) {
            replace = true;
        } else if (resp_format_arg_is(&req->argv[j], "db") && j + 1 < req->argc) {
            int64_t db;
            if (!resp_req_int_arg(req, &req->argv[++j], &db)) return;
            if (db != 0) {
                resp_req_error(req, "ERR DB index is out of range");
                return;
            }
        } else {
            resp_req_error_syntax(req);
            return;
        }
    }
    if (req->argv[1].len == req->argv[2].len &&
        memcmp(req->argv[1].ptr, req->argv[2].ptr, req->argv[1].len) == 0) {
        resp_req_error(req, "ERR source and destination objects are the same");
        return;
    }
    kv_slice args[2] = {{req->argv[1].ptr, req->argv[1].len}, {req->argv[2].ptr, req->argv[2].len}};
    kv_command cmd = {
        .op = KV_OP_COPY, .flags = replace ? KV_FLAG_XX : 0, .nargs = 2, .args = args};
    resp_req_propose(req, &cmd, resp_reply_integer);
}

/* ---- DUMP RESTORE ----------------------------------------------------------------------- */

static void keys__dump_ready(resp_req *req)
{
    kv_entry *e = kv_store_get(req->a->store, req->argv[1].ptr, req->argv[1].len,
                               replica_req_read_ms(&req->rreq));
    if (!e) {
        resp_write_null(&req->reply, req->proto);
        return;
    }
    buf payload;
    buf_init(&payload);
    kv_dump_value(&req->a->store->ks.limits, e, &payload);
    resp_write_bulk(&req->reply, payload.data + payload.off, payload.len - payload.off);
    buf_close(&payload);
}

static void keys__dump(resp_req *req)
{
    resp_req_read(req, keys__dump_ready);
}

/* IDLETIME: the restored key's access clock set back, where this node
 * holds it already (OBJECT IDLETIME and LRU eviction read it locally) */
static void keys__restore_idle(resp_req *req)
{
    int64_t idle = req->n[0];
    kv_entry *e =
        idle >= 0 ? kv_keyspace_find(&req->a->store->ks, req->argv[1].ptr, req->argv[1].len) : NULL;
    if (!e) return;
    uint32_t clock = memory_lru_clock();
    uint64_t back = (uint64_t)idle * 10; /* the clock counts 100 ms */
    e->lru = back < clock ? clock - (uint32_t)back : 1;
}

static void keys__restore_done(resp_req *req, const kv_result *res)
{
    if (res->status == KV_ERR_PRECONDITION) {
        resp_req_error(req, "BUSYKEY Target key name already exists.");
        return;
    }
    if (res->integer) keys__restore_idle(req);
    resp_write_simple(&req->reply, "OK");
}

/* RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds]
 * [FREQ frequency]: options and TTL are checked here, the payload on
 * apply (Redis checks an existing key before the payload: so does the
 * state machine). FREQ is checked and, as in Redis without an LFU policy
 * (cairn has none), changes nothing. */
static void keys__restore(resp_req *req)
{
    bool replace = false, absttl = false;
    int64_t idle = -1, freq = -1;
    for (size_t j = 4; j < req->argc; j++) {
        const resp_arg *a = &req->argv[j];
        bool more = j + 1 < req->argc;
        if (resp_format_arg_is(a, "replace")) {
            replace = true;
        } else if (resp_format_arg_is(a, "absttl")) {
            absttl = true;
        } else if (resp_format_arg_is(a, "idletime") && more && freq == -1) {
            if (!resp_req_int_arg(req, &req->argv[++j], &idle)) return;
            if (idle < 0) {
                resp_req_error(req, "ERR Invalid IDLETIME value, must be >= 0");
                return;
            }
        } else if (resp_format_arg_is(a, "freq") && more && idle == -1) {
            if (!resp_req_int_arg(req, &req->argv[++j], &freq)) return;
            if (freq < 0 || freq > 255) {
                resp_req_error(req, "ERR Invalid FREQ value, must be >= 0 and <= 255");
                return;
            }
        } else {
            resp_req_error_syntax(req);
            return;
        }
    }
    int64_t ttl;
    if (!resp_req_int_arg(req, &req->argv[2], &ttl)) return;
    if (ttl < 0) {
        resp_req_error(req, "ERR Invalid TTL value, must be >= 0");
        return;
    }
    int64_t now = replica_now_ms();
    int64_t at = ttl == 0 ? 0 : absttl ? ttl : ttl > INT64_MAX - now ? INT64_MAX : now + ttl;
    req->n[0] = idle;
    req->keep_args = idle >= 0;
    kv_slice args[2] = {{req->argv[1].ptr, req->argv[1].len}, {req->argv[3].ptr, req->argv[3].len}};
    kv_command cmd = {.op = KV_OP_RESTORE,
                      .flags = replace ? KV_FLAG_XX : 0,
                      .nargs = 2,
                      .args = args,
                      .now_ms = now,
                      .expire_ms = at,
                      .b = (int64_t)req->a->cfg->max_value_bytes};
    resp_req_propose(req, &cmd, keys__restore_done);
    /* a write done at once was stamped as accessed just now: set it back */
    if (req->done) keys__restore_idle(req);
}

static void keys__flush(resp_req *req)
{
    /* ASYNC and SYNC are accepted; the flush is one log entry either way */
    if (req->argc > 2 || (req->argc == 2 && !resp_format_arg_is(&req->argv[1], "async") &&
                          !resp_format_arg_is(&req->argv[1], "sync"))) {
        resp_req_error_syntax(req);
        return;
    }
    kv_command cmd = {.op = KV_OP_FLUSH};
    resp_req_propose(req, &cmd, resp_reply_ok);
}

/* ---- the table ------------------------------------------------------------------------------ */

#define W RESP_CMD_WRITE
#define R RESP_CMD_READONLY
#define F RESP_CMD_FAST
#define K RESP_CMD_KEYSPACE
#define X RESP_CMD_DANGEROUS
#define D RESP_CMD_DENYOOM

const resp_cmd resp_cmds_keys[] = {
    {"del", keys__del, -2, W | K, 1, -1, 1, "generic", "1.0.0", "O(N)", "Delete keys", "key ..."},
    {"unlink", keys__del, -2, W | K | F, 1, -1, 1, "generic", "4.0.0", "O(N)",
     "Delete keys (the same as DEL in cairn)", "key ..."},
    {"exists", keys__exists, -2, R | K | F, 1, -1, 1, "generic", "1.0.0", "O(N)",
     "Count how many of the given keys exist", "key ..."},
    {"type", keys__type, 2, R | K | F, 1, 1, 1, "generic", "1.0.0", "O(1)",
     "Return the type of the value of a key", "key"},
    {"expire", keys__expire, -3, W | K | F, 1, 1, 1, "generic", "1.0.0", "O(1)",
     "Set a key's time to live in seconds", "key seconds [NX|XX|GT|LT]"},
    {"pexpire", keys__pexpire, -3, W | K | F, 1, 1, 1, "generic", "2.6.0", "O(1)",
     "Set a key's time to live in milliseconds", "key milliseconds [NX|XX|GT|LT]"},
    {"expireat", keys__expireat, -3, W | K | F, 1, 1, 1, "generic", "1.2.0", "O(1)",
     "Set a key's expiry as a unix time in seconds", "key unix-time-seconds [NX|XX|GT|LT]"},
    {"pexpireat", keys__pexpireat, -3, W | K | F, 1, 1, 1, "generic", "2.6.0", "O(1)",
     "Set a key's expiry as a unix time in milliseconds",
     "key unix-time-milliseconds [NX|XX|GT|LT]"},
    {"persist", keys__persist, 2, W | K | F, 1, 1, 1, "generic", "2.2.0", "O(1)",
     "Remove the expiry of a key", "key"},
    {"ttl", keys__ttl, 2, R | K | F, 1, 1, 1, "generic", "1.0.0", "O(1)",
     "Return a key's time to live in seconds", "key"},
    {"pttl", keys__pttl, 2, R | K | F, 1, 1, 1, "generic", "2.6.0", "O(1)",
     "Return a key's time to live in milliseconds", "key"},
    {"expiretime", keys__expiretime, 2, R | K | F, 1, 1, 1, "generic", "7.0.0", "O(1)",
     "Return a key's expiry as a unix time in seconds", "key"},
    {"pexpiretime", keys__pexpiretime, 2, R | K | F, 1, 1, 1, "generic", "7.0.0", "O(1)",
     "Return a key's expiry as a unix time in milliseconds", "key"},
    {"keys", keys__keys, 2, R | K | X, 0, 0, 0, "generic", "1.0.0", "O(N)",
     "Return every key matching a glob-style pattern", "pattern"},
    {"scan", keys__scan, -2, R | K, 0, 0, 0, "generic", "2.8.0", "O(1) per call",
     "Iterate over the keys incrementally with a cursor",
     "cursor [MATCH pattern] [COUNT count] [TYPE type]"},
    {"randomkey", keys__randomkey, 1, R | K, 0, 0, 0, "generic", "1.0.0", "O(1)",
     "Return a random key", ""},
    {"dbsize", keys__dbsize, 1, R | K | F, 0, 0, 0, "server", "1.0.0", "O(1)",
     "Return the number of keys", ""},
    {"copy", keys__copy, -3, W | K, 1, 2, 1, "generic", "6.2.0", "O(N)",
     "Copy the value of a key, of any type, to another key",
     "source destination [DB destination-db] [REPLACE]"},
    {"dump", keys__dump, 2, R | K, 1, 1, 1, "generic", "2.6.0",
     "O(1) to access the key and O(N*M) to serialize it",
     "Return a serialized version of the value stored at the key, in Redis' format", "key"},
    {"restore", keys__restore, -4, W | K | D | X, 1, 1, 1, "generic", "2.6.0",
     "O(1) to create the new key and O(N*M) to reconstruct the serialized value",
     "Create a key from a value serialized with DUMP (by cairn or Redis)",
     "key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]"},
    {"rename", keys__rename, 3, W | K, 1, 2, 1, "generic", "1.0.0", "O(1)", "Rename a key",
     "key newkey"},
    {"renamenx", keys__renamenx, 3, W | K | F, 1, 2, 1, "generic", "1.0.0", "O(1)",
     "Rename a key only if the new name does not exist", "key newkey"},
    {"flushdb", keys__flush, -1, W | K | X, 0, 0, 0, "server", "1.0.0", "O(N)", "Delete every key",
     "[ASYNC|SYNC]"},
    {"flushall", keys__flush, -1, W | K | X, 0, 0, 0, "server", "1.0.0", "O(N)",
     "Delete every key (cairn has one database)", "[ASYNC|SYNC]"},
};
const size_t resp_cmds_keys_count = sizeof(resp_cmds_keys) / sizeof(resp_cmds_keys[0]);
