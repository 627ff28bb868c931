/* resp_script: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT.
 *
 * A script runs once, on the node its client is connected to, after a
 * linearizable read (so it sees every write acknowledged before it
 * began), against an overlay of the store (kv/overlay.h): what it reads
 * is faulted in from the store, what it writes stays in the overlay and
 * is recorded. Its writes - its effects - are then proposed as one
 * KV_OP_EXEC that watches every key the script looked at: applied whole
 * or not at all, on every node alike, without running Lua there. Should
 * another write have changed one of those keys in between, apply
 * refuses the entry and the script runs again on the newer state
 * (optimistic concurrency; at most RESP_SCRIPT_MAX_RUNS runs). The client
 * gets the script's answer once the entry has been applied on its node.
 *
 * Each redis.call runs the command's own handler in a sub-request whose
 * store is the overlay: its write goes to kv_overlay_apply, its read
 * reads the overlay, and its reply is what the handler formats. What a
 * script cannot run: commands Redis refuses in scripts (MULTI, WATCH,
 * SUBSCRIBE, blocking pops, EVAL ...), and those that walk the whole
 * keyspace (KEYS, SCAN, DBSIZE, RANDOMKEY, FLUSHALL, FLUSHDB), which an
 * overlay cannot answer (docs/resp.md, "Lua scripts").
 *
 * As in Redis, a script that raises an error after writing keeps the
 * writes it made before; a script stopped for time or memory keeps none
 * (here nothing is applied before the end, so stopping is always safe). */
#include <stdlib.h>
#include <string.h>

#include "api/memory.h"
#include "api/resp_internal.h"
#include "api/script_lua.h"
#include "kv/dump.h"
#include "kv/overlay.h"
#include "util/alloc.h"
#include "util/glob.h"
#include "util/strconv.h"

/* busy-reply-threshold (lua-time-limit): Redis' default */
#define SCRIPT_BUSY_THRESHOLD_MS 5000

enum { SCRIPT_BY_SHA = 1, SCRIPT_READ_ONLY = 2, SCRIPT_FUNCTION = 4 };

struct resp_script_run {
    resp_req *req; /* NULL once its client left (a busy run then ends) */
    resp_api *ra;
    kv_overlay *ov; /* the node's (ra->overlay), reset for each run */
    api view;       /* the request's api, with the overlay as its store */
    bool read_only;
    bool function; /* FCALL: "FUNCTION KILL" in the BUSY error */
    uint64_t started_ms;
    buf reply;          /* what the script answers */
    resp_proc on_abort; /* a key it looked at changed before its effects applied */
};

/* A script past the busy threshold yields every SCRIPT_SLICE_MS
 * (api/script_lua.h); `turn` resumes it once the loop has served what
 * came meanwhile: other clients get Redis' BUSY error, SCRIPT KILL and
 * FUNCTION KILL end it. The interpreter runs one script at a time, so a
 * script whose read completes while one is busy waits here, and so does
 * FUNCTION LIST when the functions must be reloaded (never under a busy
 * function). */
typedef struct script_waiter {
    resp_req *req;
    resp_proc proc;
} script_waiter;

struct resp_scripts {
    uv_idle_t turn; /* an idle handle: a timer restarted at 0 ms in its callback would run
                     * again before the loop polls (libuv 1.44) */
    resp_script_run *busy;
    uint64_t threshold_ms;
    script_waiter *q;
    size_t head, n, cap; /* q[head .. head+n) */
};

static script_lua *script__lua(resp_api *ra)
{
    if (!ra->lua) ra->lua = script_lua_new(SCRIPT_REDIS_VERSION);
    return ra->lua;
}

static void script__turn(uv_idle_t *t);

void resp_script_init(resp_api *ra, uv_loop_t *loop)
{
    resp_scripts *sc = xcalloc(1, sizeof(*sc));
    uv_idle_init(loop, &sc->turn);
    sc->turn.data = ra;
    sc->threshold_ms = SCRIPT_BUSY_THRESHOLD_MS;
    ra->scripts = sc;
}

uint64_t resp_script_threshold(const resp_api *ra)
{
    return ra->scripts->threshold_ms;
}

void resp_script_set_threshold(resp_api *ra, uint64_t ms)
{
    ra->scripts->threshold_ms = ms;
}

void resp_script_close(resp_api *ra)
{
    resp_scripts *sc = ra->scripts;
    if (sc) {
        /* the timer handle goes with the loop's final walk, as WAIT's;
         * connections are gone, and their requests with them */
        if (sc->busy) {
            buf_close(&sc->busy->reply);
            free(sc->busy);
        }
        free(sc->q);
        free(sc);
        ra->scripts = NULL;
    }
    script_lua_free(ra->lua);
    ra->lua = NULL;
    if (ra->overlay) kv_overlay_close(ra->overlay);
    free(ra->overlay);
    ra->overlay = NULL;
}

/* ---- what a command asks for, inside a script ----------------------------------- */

void resp_script_propose(resp_req *sub, kv_command *cmd, resp_write_fn done)
{
    kv_result res;
    kv_overlay_apply(sub->script->ov, cmd, &res);
    resp_req_answer_write(sub, REPLICA_OK, &res, done);
}

void resp_script_pop(resp_req *sub, const kv_command *cmd, resp_write_fn done, resp_proc empty)
{
    /* inside a script a blocking pop does not block: never reached today,
     * as Redis 7.0 refuses blocking commands in scripts */
    kv_result res;
    kv_overlay_apply(sub->script->ov, cmd, &res);
    if (res.status == KV_OK && !res.has_value)
        empty(sub);
    else
        resp_req_answer_write(sub, REPLICA_OK, &res, done);
}

void resp_script_read(resp_req *sub, resp_proc ready)
{
    sub->rreq.read_ms = sub->script->ov->now_ms;
    sub->rreq.read_unsettled = false;
    ready(sub);
    if (sub->track) resp_tracking_read(sub);
}

/* ---- redis.call ------------------------------------------------------------------ */

static bool script__walks_keyspace(const resp_cmd *cmd)
{
    static const char *const names[] = {"keys",     "scan",    "dbsize", "randomkey",
                                        "flushall", "flushdb", "swapdb"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(cmd->name, names[i]) == 0) return true;
    return false;
}

/* Commands without keys a script may run (any with keys may, unless
 * flagged otherwise). */
static bool script__keyless_allowed(const resp_cmd *cmd)
{
    static const char *const names[] = {"ping",  "echo",       "time", "publish",
                                        "xread", "xreadgroup", "xinfo"}; /* keys move */
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(cmd->name, names[i]) == 0) return true;
    return false;
}

/* redis.call: run one command for the script; its reply goes to out, which
 * is empty on entry (the command's handler writes straight into it). */
static void script__call(void *ctx, const resp_arg *argv, size_t argc, int resp, buf *out)
{
    resp_script_run *run = ctx;
    resp_req *req = run->req;
    resp_api *ra = req->rc->ra;
    size_t cmd_index;
    const resp_cmd *cmd = resp_api_lookup_index(ra, argv[0].ptr, argv[0].len, &cmd_index);
    if (!cmd) {
        resp_write_error(out, "ERR Unknown Redis command called from script");
        return;
    }
    if (cmd->first_key == 0 && script__walks_keyspace(cmd)) { /* each of them is keyless */
        resp_write_errorf(out,
                          "ERR This Redis command is not allowed from script: '%s' walks the "
                          "whole keyspace, which a cairn script cannot see (docs/resp.md)",
                          cmd->name);
        return;
    }
    if ((cmd->flags & (RESP_CMD_NOSCRIPT | RESP_CMD_TX_CONTROL | RESP_CMD_NO_MULTI |
                       RESP_CMD_AT_EXEC | RESP_CMD_BLOCKING | RESP_CMD_PUBSUB_CONTEXT) &&
         strcmp(cmd->name, "ping") != 0 && strcmp(cmd->name, "xread") != 0 &&
         strcmp(cmd->name, "xreadgroup") != 0) ||
        (cmd->first_key == 0 && !script__keyless_allowed(cmd))) {
        resp_write_error(out, "ERR This Redis command is not allowed from script");
        return;
    }
    if ((cmd->arity > 0 && argc != (size_t)cmd->arity) ||
        (cmd->arity < 0 && argc < (size_t)-cmd->arity)) {
        resp_write_error(out, "ERR Wrong number of args calling Redis command from script");
        return;
    }
    if (run->read_only && (cmd->flags & RESP_CMD_WRITE)) {
        resp_write_error(out, "ERR Write commands are not allowed from read-only scripts.");
        return;
    }
    if ((cmd->flags & RESP_CMD_DENYOOM) && memory_admit_write(req->a) != MEMORY_OK) {
        resp_write_error(out, "OOM command not allowed when used memory > 'maxmemory'.");
        return;
    }
    resp_req sub;
    memset(&sub, 0, sizeof(sub));
    /* the command answers straight into out (empty: the caller's, per call) */
    sub.reply = *out;
    buf_init(out);
    buf_init(&sub.own_data);
    replica_req_init(&sub.rreq, &sub, NULL);
    sub.rc = req->rc;
    sub.a = &run->view;
    sub.cmd = cmd;
    sub.cmd_index = cmd_index;
    sub.proto = resp;
    sub.script = run;
    sub.track = req->track; /* the keys its reads look up are the caller's */
    sub.argv = argv;
    sub.argc = argc;
    sub.rreq.read_ms = run->ov->now_ms;
    long first, last;
    bool ok = resp_auth_admit(&sub);
    if (ok && resp_cmd_keys(cmd, argv, argc, &first, &last)) {
        uint64_t max = req->a->cfg->max_key_bytes;
        for (long i = first; i <= last && ok; i += cmd->key_step)
            if (argv[i].len > max) {
                resp_req_errorf(&sub, "ERR key too large (max %llu bytes)",
                                (unsigned long long)max);
                ok = false;
            }
    }
    if (ok) {
        sub.in_proc = sub.ran = true;
        cmd->proc(&sub);
        sub.in_proc = false;
    }
    if (sub.waiting) { /* nothing a script may run waits; were it to, refuse it */
        buf_reset(&sub.reply);
        resp_write_error(&sub.reply, "ERR This Redis command is not allowed from script");
    }
    *out = sub.reply;
    replica_req_close(&sub.rreq);
    buf_close(&sub.own_data);
    free(sub.own_argv);
}

/* ---- EVAL and friends ---------------------------------------------------------- */

static void script__run(resp_req *req, int64_t now_ms);

static void script__ready_later(resp_req *req)
{
    script__run(req, replica_now_ms());
}

/* The interpreter's functions are the store's (reloaded when a FUNCTION
 * change or a snapshot applied since). */
static bool script__functions_current(resp_api *ra, kv_store *store)
{
    script_lua *sl = script__lua(ra);
    if (script_lua_functions_current(sl, store->functions.gen)) return true;
    if (script_lua_busy(sl)) return false; /* a function may be running in them */
    script_lua_functions_reload(sl, &store->functions);
    return true;
}

/* A key the script looked at changed before its effects applied: run it
 * again, on the newer state (this node has applied that change). */
static void script__again(resp_req *req)
{
    resp_tx_exec_free(req);
    if (++req->n[5] >= RESP_SCRIPT_MAX_RUNS) {
        resp_req_errorf(req,
                        "ERR script not applied: the keys it reads changed under it %d times in "
                        "a row; retry later",
                        RESP_SCRIPT_MAX_RUNS);
        return;
    }
    script__run(req, replica_now_ms());
}

/* ---- busy scripts and the requests that wait for the interpreter ------------ */

static void script__wait(resp_api *ra, resp_req *req, resp_proc proc)
{
    resp_scripts *sc = ra->scripts;
    if (sc->head + sc->n == sc->cap) {
        if (sc->head) {
            memmove(sc->q, sc->q + sc->head, sc->n * sizeof(*sc->q));
            sc->head = 0;
        } else {
            sc->cap = sc->cap ? 2 * sc->cap : 8;
            sc->q = xrealloc(sc->q, sc->cap * sizeof(*sc->q));
        }
    }
    sc->q[sc->head + sc->n++] = (script_waiter){req, proc};
    req->script_waits = true;
    req->waiting = true;
}

static const char *script__busy_error(const resp_scripts *sc)
{
    return sc->busy->function
               ? "BUSY Redis is busy running a script. You can only call FUNCTION KILL or "
                 "SHUTDOWN NOSAVE."
               : "BUSY Redis is busy running a script. You can only call SCRIPT KILL or "
                 "SHUTDOWN NOSAVE.";
}

static void script__after(resp_script_run *run, script_outcome outcome);

/* The loop's turn is over: go on with the busy script, or, once none is,
 * with the next request that waited for the interpreter. */
static void script__turn(uv_idle_t *t)
{
    resp_api *ra = t->data;
    resp_scripts *sc = ra->scripts;
    uv_idle_stop(t); /* started again when the script is still busy */
    if (sc->busy) {
        resp_script_run *run = sc->busy;
        sc->busy = NULL;
        if (!run->req || ra->a->stopping) {
            /* nobody waits for it, or the node stops: nothing was applied */
            script_lua_kill(ra->lua, NULL);
            if (run->req)
                resp_write_error(&run->reply, "ERR script stopped: the node is shutting down; "
                                              "none of its writes were applied");
            script__after(run, SCRIPT_STOPPED);
        } else {
            /* the slice counts as the script's execution time (SLOWLOG) */
            uint64_t t0 = uv_hrtime();
            script_outcome outcome = script_lua_resume(ra->lua, &run->reply);
            run->req->exec_ns += uv_hrtime() - t0;
            script__after(run, outcome);
        }
    }
    while (!sc->busy && sc->n) {
        script_waiter w = sc->q[sc->head++];
        sc->n--;
        if (!sc->n) sc->head = 0;
        w.req->script_waits = false;
        w.req->waiting = false;
        w.proc(w.req);
        if (!w.req->waiting) resp_req_finish_async(w.req);
    }
}

bool resp_script_refuses(resp_req *req)
{
    resp_scripts *sc = req->rc->ra->scripts;
    if (!sc->busy) return false;
    const resp_cmd *cmd = req->cmd;
    static const char *const allowed[] = {"auth",    "hello", "multi", "discard", "watch",
                                          "unwatch", "quit",  "reset", "shutdown"};
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
        if (strcmp(cmd->name, allowed[i]) == 0) return false;
    bool is_script = strcmp(cmd->name, "script") == 0,
         is_function = strcmp(cmd->name, "function") == 0;
    if ((is_script || is_function) && req->argc >= 2 &&
        (resp_format_arg_is(&req->argv[1], "kill") ||
         (is_function && resp_format_arg_is(&req->argv[1], "stats"))))
        return false;
    /* EXEC too, as Redis: resp_tx_flag then discards the transaction */
    resp_req_error(req, script__busy_error(sc));
    return true;
}

void resp_script_detach(resp_req *req)
{
    if (!req->script_waits) return;
    resp_scripts *sc = req->rc->ra->scripts;
    req->script_waits = false;
    if (sc->busy && sc->busy->req == req) {
        sc->busy->req = NULL; /* it ends at its next turn */
        return;
    }
    for (size_t i = 0; i < sc->n; i++) {
        if (sc->q[sc->head + i].req != req) continue;
        memmove(sc->q + sc->head + i, sc->q + sc->head + i + 1, (sc->n - i - 1) * sizeof(*sc->q));
        sc->n--;
        return;
    }
}

/* SCRIPT KILL / FUNCTION KILL: as Redis' answers, but a script that
 * wrote is killed too: its writes were never applied (kv/overlay.h). */
static void script__kill(resp_req *req, bool function)
{
    resp_scripts *sc = req->rc->ra->scripts;
    if (!sc->busy) {
        resp_req_error(req, "NOTBUSY No scripts in execution right now.");
        return;
    }
    if (sc->busy->function != function) {
        resp_req_error(req, script__busy_error(sc));
        return;
    }
    resp_script_run *run = sc->busy;
    sc->busy = NULL;
    script_lua_kill(req->rc->ra->lua, run->req ? &run->reply : NULL);
    script__after(run, SCRIPT_STOPPED);
    uv_idle_start(&sc->turn, script__turn); /* whoever waited for the interpreter */
    resp_req_ok(req);
}

/* ---- running a script ------------------------------------------------------------ */

/* The script an EVAL-family command names (opt: SCRIPT_*; name: the
 * body, SHA1 or function name): its SHA1 or function, and whether it
 * may write; false after writing Redis' error into err. */
static bool script__resolve(resp_api *ra, kv_store *store, uint32_t opt, const resp_arg *name,
                            char sha[SCRIPT_SHA_LEN + 1], const script_function **fn,
                            bool *read_only, buf *err)
{
    script_lua *sl = script__lua(ra);
    *fn = NULL;
    *read_only = opt & SCRIPT_READ_ONLY;
    if (opt & SCRIPT_FUNCTION) {
        script__functions_current(ra, store);
        *fn = script_lua_function(sl, name->ptr, name->len);
        if (!*fn) {
            resp_write_error(err, "ERR Function not found");
            return false;
        }
        if (*read_only && !((*fn)->flags & SCRIPT_FLAG_NO_WRITES)) {
            resp_write_error(err,
                             "ERR Can not execute a script with write flag using *_ro command.");
            return false;
        }
        *read_only = (*fn)->flags & SCRIPT_FLAG_NO_WRITES;
        return true;
    }
    if (opt & SCRIPT_BY_SHA) {
        if (script_lua_find(sl, name->ptr, name->len, sha)) return true;
        resp_write_error(err, "NOSCRIPT No matching script. Please use EVAL.");
        return false;
    }
    return script_lua_load(sl, name->ptr, name->len, sha, err);
}

/* A run on the node's overlay, reset to the store at now_ms. */
static resp_script_run *script__begin(resp_req *req, int64_t now_ms)
{
    resp_api *ra = req->rc->ra;
    resp_script_run *run = xcalloc(1, sizeof(*run));
    run->req = req;
    run->ra = ra;
    run->started_ms = uv_now(ra->scripts->turn.loop); /* the loop's: no clock read */
    run->on_abort = script__again;
    buf_init(&run->reply);
    if (!ra->overlay) {
        ra->overlay = xcalloc(1, sizeof(*ra->overlay));
        kv_overlay_init(ra->overlay, req->a->store, now_ms);
    } else {
        kv_overlay_reset(ra->overlay, req->a->store, now_ms);
    }
    run->ov = ra->overlay;
    run->view = *req->a;
    run->view.store = &run->ov->store;
    return run;
}

/* Run the script (sha or fn) on run, its answer appended to out. */
static script_outcome script__lua_run(resp_script_run *run, const char *sha,
                                      const script_function *fn, const resp_arg *argv, size_t argc,
                                      int proto, bool may_yield, buf *out)
{
    int64_t n = 0;
    strconv_parse_i64(argv[2].ptr, argv[2].len, &n); /* checked before */
    const resp_arg *keys = argv + 3, *args = argv + 3 + n;
    size_t nkeys = (size_t)n, nargs = argc - 3 - (size_t)n;
    script_lua *sl = script__lua(run->ra);
    script_time time = {run->ra->scripts->threshold_ms, may_yield, run->started_ms};
    return fn ? script_lua_fcall(sl, fn, keys, nkeys, args, nargs, proto, time, script__call, run,
                                 out)
              : script_lua_run(sl, sha, keys, nkeys, args, nargs, proto, time, script__call, run,
                               out);
}

static void script__run(resp_req *req, int64_t now_ms)
{
    resp_api *ra = req->rc->ra;
    resp_scripts *sc = ra->scripts;
    if (sc->busy) {
        /* only a transaction's script can come here now (its EXEC was
         * accepted before): it cannot wait */
        resp_req_error(req, script__busy_error(sc));
        return;
    }
    char sha[SCRIPT_SHA_LEN + 1];
    const script_function *fn;
    bool read_only;
    if (!script__resolve(ra, req->a->store, req->opt, &req->argv[1], sha, &fn, &read_only,
                         &req->reply)) {
        req->outcome = RESP_OUTCOME_ERROR;
        return;
    }
    resp_script_run *run = script__begin(req, now_ms);
    run->read_only = read_only;
    run->function = fn != NULL;
    /* a transaction's script runs inside its apply, which cannot wait */
    script_outcome outcome =
        script__lua_run(run, sha, fn, req->argv, req->argc, req->proto, !req->tx_exec, &run->reply);
    script__after(run, outcome);
}

/* What a run came to: busy (the loop gets a turn, the request waits), or
 * its answer, or its effects proposed. */
static void script__after(resp_script_run *run, script_outcome outcome)
{
    resp_scripts *sc = run->ra->scripts;
    resp_req *req = run->req;
    if (outcome == SCRIPT_BUSY) {
        sc->busy = run;
        if (!req->script_waits) {
            req->script_waits = true;
            req->waiting = true;
        }
        uv_idle_start(&sc->turn, script__turn);
        return;
    }
    bool resumed = req && req->script_waits; /* it was busy: complete it here */
    if (resumed) {
        req->script_waits = false;
        req->waiting = false;
    }
    if (!req) {
        /* its client left */
    } else if (outcome == SCRIPT_STOPPED || run->ov->n_effects == 0) {
        buf_append(&req->reply, run->reply.data, run->reply.len);
        if (run->reply.len && run->reply.data[0] == '-') req->outcome = RESP_OUTCOME_ERROR;
    } else if (req->tx_exec) {
        /* a read-only script, run where the transaction applies, cannot
         * write (one that may write makes the whole EXEC run on an
         * overlay, resp_multi.c): never reached */
        resp_req_error(req, "ERR a script run inside a transaction's apply wrote; its writes "
                            "were not applied");
    } else {
        resp_tx_propose_effects(req, run->ov, &run->reply, run->on_abort);
    }
    buf_close(&run->reply);
    kv_overlay_clear(run->ov); /* what it faulted in goes now, not at the next run */
    free(run);
    if (resumed && !req->waiting) resp_req_finish_async(req);
}

static void script__ready(resp_req *req)
{
    if (req->rc->ra->scripts->busy) {
        /* the interpreter is another's: run when it is free, on the
         * state then */
        script__wait(req->rc->ra, req, script__ready_later);
        return;
    }
    script__run(req, replica_req_read_ms(&req->rreq));
}

/* EVAL's numkeys and keys, checked; false after writing the error. */
static bool script__check_keys(const api *a, const resp_arg *argv, size_t argc, buf *err)
{
    int64_t numkeys;
    if (!strconv_parse_i64(argv[2].ptr, argv[2].len, &numkeys)) {
        resp_write_error(err, "ERR value is not an integer or out of range");
        return false;
    }
    if (numkeys < 0) {
        resp_write_error(err, "ERR Number of keys can't be negative");
        return false;
    }
    if ((uint64_t)numkeys > argc - 3) {
        resp_write_error(err, "ERR Number of keys can't be greater than number of args");
        return false;
    }
    uint64_t max = a->cfg->max_key_bytes;
    for (int64_t i = 0; i < numkeys; i++)
        if (argv[3 + i].len > max) {
            resp_write_errorf(err, "ERR key too large (max %llu bytes)", (unsigned long long)max);
            return false;
        }
    return true;
}

/* SCRIPT_* of an EVAL-family command; -1 for any other. */
static int script__opt_of(const resp_cmd *cmd)
{
    static const struct {
        const char *name;
        int opt;
    } m[] = {{"eval", 0},
             {"evalsha", SCRIPT_BY_SHA},
             {"eval_ro", SCRIPT_READ_ONLY},
             {"evalsha_ro", SCRIPT_BY_SHA | SCRIPT_READ_ONLY},
             {"fcall", SCRIPT_FUNCTION},
             {"fcall_ro", SCRIPT_FUNCTION | SCRIPT_READ_ONLY}};
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        if (strcmp(cmd->name, m[i].name) == 0) return m[i].opt;
    return -1;
}

/* ---- a transaction on the overlay (resp_multi.c) ------------------------------------ */

bool resp_script_busy(const resp_api *ra)
{
    return ra->scripts->busy != NULL;
}

void resp_script_wait(resp_req *req, resp_proc proc)
{
    script__wait(req->rc->ra, req, proc);
}

resp_script_run *resp_script_begin(resp_req *req, int64_t now_ms)
{
    return script__begin(req, now_ms);
}

void resp_script_look(resp_script_run *run, const char *key, size_t len)
{
    kv_keyspace_find(&run->ov->store.ks, key, len); /* faults it in: its revision is watched */
}

bool resp_script_step(resp_script_run *run, const resp_arg *argv, size_t argc, buf *out,
                      buf *stopped)
{
    resp_req *req = run->req;
    const resp_cmd *cmd = resp_api_lookup(run->ra, argv[0].ptr, argv[0].len);
    int opt = cmd ? script__opt_of(cmd) : -1;
    if (opt < 0) {
        /* script__call answers into a buffer of its own: out holds the
         * transaction's replies so far */
        buf r;
        buf_init(&r);
        script__call(run, argv, argc, req->proto, &r);
        buf_append(out, r.data, r.len);
        buf_close(&r);
        return true;
    }
    /* a script, on the transaction's overlay: what it reads is what the
     * commands before it wrote */
    if (!script__check_keys(req->a, argv, argc, out)) return true;
    char sha[SCRIPT_SHA_LEN + 1];
    const script_function *fn;
    bool read_only;
    if (!script__resolve(run->ra, req->a->store, (uint32_t)opt, &argv[1], sha, &fn, &read_only,
                         out))
        return true;
    run->read_only = read_only;
    run->function = fn != NULL;
    buf r;
    buf_init(&r);
    script_outcome outcome = script__lua_run(run, sha, fn, argv, argc, req->proto, false, &r);
    run->read_only = false;
    buf_append(outcome == SCRIPT_STOPPED ? stopped : out, r.data, r.len);
    buf_close(&r);
    return outcome != SCRIPT_STOPPED;
}

void resp_script_end(resp_script_run *run, buf *reply, bool stopped, resp_proc on_abort)
{
    buf_append(&run->reply, reply->data, reply->len);
    run->on_abort = on_abort;
    script__after(run, stopped ? SCRIPT_STOPPED : SCRIPT_RAN);
}

static void script__eval(resp_req *req, uint32_t opt)
{
    if (!script__check_keys(req->a, req->argv, req->argc, &req->reply)) {
        req->outcome = RESP_OUTCOME_ERROR;
        return;
    }
    req->opt = opt;
    req->n[5] = 0; /* attempts */
    resp_req_read(req, script__ready);
}

static void script__eval_cmd(resp_req *req)
{
    script__eval(req, 0);
}

static void script__evalsha(resp_req *req)
{
    script__eval(req, SCRIPT_BY_SHA);
}

static void script__eval_ro(resp_req *req)
{
    script__eval(req, SCRIPT_READ_ONLY);
}

static void script__evalsha_ro(resp_req *req)
{
    script__eval(req, SCRIPT_BY_SHA | SCRIPT_READ_ONLY);
}

static void script__fcall(resp_req *req)
{
    script__eval(req, SCRIPT_FUNCTION);
}

static void script__fcall_ro(resp_req *req)
{
    script__eval(req, SCRIPT_FUNCTION | SCRIPT_READ_ONLY);
}

/* ---- FUNCTION ------------------------------------------------------------------ */

static void function__loaded(resp_req *req, const kv_result *res)
{
    (void)res;
    const resp_arg *code = &req->argv[req->argc - 1]; /* kept (keep_args) */
    const char *name;
    size_t len;
    if (script_lua_library_name(code->ptr, code->len, &name, &len))
        resp_write_bulk(&req->reply, name, len);
    else
        resp_req_error(req, "ERR internal error: the library's name is gone");
}

static void function__load(resp_req *req)
{
    resp_api *ra = req->rc->ra;
    bool replace = req->argc == 4 && resp_format_arg_is(&req->argv[2], "replace");
    if (req->argc != 3 && !replace) {
        if (req->argc == 4)
            resp_req_errorf(req, "ERR Unknown option given: %.*s", (int)req->argv[2].len,
                            req->argv[2].ptr);
        else
            resp_req_error(req, "ERR wrong number of arguments for 'function|load' command");
        return;
    }
    const resp_arg *code = &req->argv[req->argc - 1];
    buf name, fnames;
    buf_init(&name);
    buf_init(&fnames);
    uint32_t nfn = 0;
    if (!script_lua_check_library(script__lua(ra), code->ptr, code->len, &name, &fnames, &nfn,
                                  &req->reply)) {
        req->outcome = RESP_OUTCOME_ERROR;
        buf_close(&name);
        buf_close(&fnames);
        return;
    }
    if (nfn > KV_FUNCTIONS_MAX_PER_LIBRARY) {
        resp_req_errorf(req, "ERR a library may register at most %u functions",
                        KV_FUNCTIONS_MAX_PER_LIBRARY);
        buf_close(&name);
        buf_close(&fnames);
        return;
    }
    kv_slice *args = xcalloc(2 + (size_t)nfn, sizeof(*args));
    args[0] = (kv_slice){name.data, name.len};
    args[1] = (kv_slice){code->ptr, code->len};
    size_t at = 0;
    for (uint32_t i = 0; i < nfn; i++) {
        uint32_t l;
        memcpy(&l, fnames.data + at, sizeof(l));
        args[2 + i] = (kv_slice){fnames.data + at + sizeof(l), l};
        at += sizeof(l) + l;
    }
    kv_command cmd = {.op = KV_OP_FUNCTION_LOAD,
                      .flags = replace ? KV_FLAG_XX : 0,
                      .nargs = 2 + nfn,
                      .args = args};
    req->keep_args = true; /* the answer names the library from the code */
    resp_req_propose(req, &cmd, function__loaded);
    free(args);
    buf_close(&name);
    buf_close(&fnames);
}

static void function__ok(resp_req *req, const kv_result *res)
{
    (void)res;
    resp_req_ok(req);
}

static bool function__flush_arg(resp_req *req)
{
    if (req->argc == 2) return true;
    if (req->argc == 3 &&
        (resp_format_arg_is(&req->argv[2], "sync") || resp_format_arg_is(&req->argv[2], "async")))
        return true;
    resp_req_error(req, "ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
    return false;
}

static void function__write_fn(resp_req *req, const script_function *f)
{
    resp_write_map(&req->reply, req->proto, 3);
    resp_write_bulk_str(&req->reply, "name");
    resp_write_bulk_str(&req->reply, f->name);
    resp_write_bulk_str(&req->reply, "description");
    if (f->description)
        resp_write_bulk_str(&req->reply, f->description);
    else
        resp_write_null(&req->reply, req->proto);
    resp_write_bulk_str(&req->reply, "flags");
    size_t n = 0;
    for (int b = 0; b < SCRIPT_FLAG_COUNT; b++) n += (f->flags >> b) & 1;
    resp_write_set(&req->reply, req->proto, n);
    for (int b = 0; b < SCRIPT_FLAG_COUNT; b++)
        if ((f->flags >> b) & 1) resp_write_simple(&req->reply, script_lua_flag_name(b));
}

static void function__list_ready(resp_req *req)
{
    resp_api *ra = req->rc->ra;
    kv_store *store = req->a->store;
    if (!script__functions_current(ra, store)) {
        script__wait(ra, req, function__list_ready); /* until the busy script ends */
        return;
    }
    bool withcode = req->opt & 1;
    const resp_arg *pattern = req->n[0] ? &req->argv[req->n[0]] : NULL;
    const kv_functions *lf = &store->functions;
    size_t n = 0;
    for (uint32_t i = 0; i < lf->n; i++)
        n += !pattern ||
             glob_match(pattern->ptr, pattern->len, lf->libs[i].name, lf->libs[i].name_len, false);
    size_t nfns;
    const script_function *fns = script_lua_functions(script__lua(ra), &nfns);
    resp_write_array(&req->reply, n);
    for (uint32_t i = 0; i < lf->n; i++) {
        const kv_library *lib = &lf->libs[i];
        if (pattern && !glob_match(pattern->ptr, pattern->len, lib->name, lib->name_len, false))
            continue;
        resp_write_map(&req->reply, req->proto, withcode ? 4 : 3);
        resp_write_bulk_str(&req->reply, "library_name");
        resp_write_bulk(&req->reply, lib->name, lib->name_len);
        resp_write_bulk_str(&req->reply, "engine");
        resp_write_bulk_str(&req->reply, "LUA");
        resp_write_bulk_str(&req->reply, "functions");
        size_t k = 0;
        for (size_t j = 0; j < nfns; j++) k += strcmp(fns[j].library, lib->name) == 0;
        resp_write_array(&req->reply, k);
        for (size_t j = 0; j < nfns; j++)
            if (strcmp(fns[j].library, lib->name) == 0) function__write_fn(req, &fns[j]);
        if (withcode) {
            resp_write_bulk_str(&req->reply, "library_code");
            resp_write_bulk(&req->reply, lib->code, lib->code_len);
        }
    }
}

static void function__list(resp_req *req)
{
    req->opt = 0;
    req->n[0] = 0;
    for (size_t i = 2; i < req->argc; i++) {
        if (resp_format_arg_is(&req->argv[i], "withcode") && !(req->opt & 1)) {
            req->opt |= 1;
        } else if (resp_format_arg_is(&req->argv[i], "libraryname") && !req->n[0]) {
            if (i + 1 >= req->argc) {
                resp_req_error(req, "ERR library name argument was not given");
                return;
            }
            req->n[0] = (int64_t)++i;
        } else {
            resp_req_errorf(req, "ERR Unknown argument %.*s", (int)req->argv[i].len,
                            req->argv[i].ptr);
            return;
        }
    }
    resp_req_read(req, function__list_ready);
}

/* FUNCTION STATS: the running script is a function that went busy (one
 * that has not is never seen running: it holds the loop). */
static void function__stats_ready(resp_req *req)
{
    resp_api *ra = req->rc->ra;
    kv_store *store = req->a->store;
    const resp_script_run *busy = ra->scripts->busy;
    if (busy && !busy->function) {
        resp_req_error(req, script__busy_error(ra->scripts));
        return;
    }
    size_t nfns = 0;
    for (uint32_t i = 0; i < store->functions.n; i++) nfns += store->functions.libs[i].nfn;
    resp_write_map(&req->reply, req->proto, 2);
    resp_write_bulk_str(&req->reply, "running_script");
    if (busy && busy->req) {
        const resp_req *r = busy->req;
        resp_write_map(&req->reply, req->proto, 3);
        resp_write_bulk_str(&req->reply, "name");
        resp_write_bulk(&req->reply, r->argv[1].ptr, r->argv[1].len);
        resp_write_bulk_str(&req->reply, "command");
        resp_write_array(&req->reply, r->argc);
        for (size_t i = 0; i < r->argc; i++)
            resp_write_bulk(&req->reply, r->argv[i].ptr, r->argv[i].len);
        resp_write_bulk_str(&req->reply, "duration_ms");
        resp_write_integer(&req->reply,
                           (long long)(uv_now(ra->scripts->turn.loop) - busy->started_ms));
    } else {
        resp_write_null(&req->reply, req->proto);
    }
    resp_write_bulk_str(&req->reply, "engines");
    resp_write_map(&req->reply, req->proto, 1);
    resp_write_bulk_str(&req->reply, "LUA");
    resp_write_map(&req->reply, req->proto, 2);
    resp_write_bulk_str(&req->reply, "libraries_count");
    resp_write_integer(&req->reply, store->functions.n);
    resp_write_bulk_str(&req->reply, "functions_count");
    resp_write_integer(&req->reply, (long long)nfns);
}

static void function__dump_ready(resp_req *req)
{
    const kv_functions *f = &req->a->store->functions;
    kv_slice *codes = xcalloc(f->n ? f->n : 1, sizeof(*codes));
    for (uint32_t i = 0; i < f->n; i++) codes[i] = (kv_slice){f->libs[i].code, f->libs[i].code_len};
    buf payload;
    buf_init(&payload);
    kv_dump_functions(codes, f->n, &payload);
    resp_write_bulk(&req->reply, payload.data, payload.len);
    buf_close(&payload);
    free(codes);
}

/* FUNCTION RESTORE's libraries as the log entry's arguments: per library
 * name, code, function count, function names, kept as offsets into one
 * buffer until the payload is read whole. */
typedef struct fn_restore {
    resp_req *req;
    buf data;
    size_t *off, *len; /* per argument */
    size_t nargs, cap;
    size_t nlibs;
    bool failed; /* the reply holds the error */
} fn_restore;

static void fn_restore__arg(fn_restore *r, const char *p, size_t n)
{
    if (r->nargs == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 16;
        r->off = xrealloc(r->off, r->cap * sizeof(*r->off));
        r->len = xrealloc(r->len, r->cap * sizeof(*r->len));
    }
    r->off[r->nargs] = r->data.len;
    r->len[r->nargs++] = n;
    buf_append(&r->data, p, n);
}

static bool fn_restore__eq(const fn_restore *r, size_t arg, const char *p, size_t n)
{
    return r->len[arg] == n && memcmp(r->data.data + r->off[arg], p, n) == 0;
}

/* A library of the payload: checked as FUNCTION LOAD checks its code (in
 * a scratch interpreter: its name, its functions), and against the
 * libraries before it in the payload, with Redis' texts. */
static bool fn_restore__library(void *ctx, kv_slice code)
{
    fn_restore *r = ctx;
    resp_req *req = r->req;
    buf name, fnames;
    buf_init(&name);
    buf_init(&fnames);
    uint32_t nfn = 0;
    bool ok = script_lua_check_library(script__lua(req->rc->ra), code.ptr, code.len, &name, &fnames,
                                       &nfn, &req->reply);
    if (ok && nfn > KV_FUNCTIONS_MAX_PER_LIBRARY) {
        resp_req_errorf(req, "ERR a library may register at most %u functions",
                        KV_FUNCTIONS_MAX_PER_LIBRARY);
        ok = false;
    }
    if (ok && r->nlibs >= KV_FUNCTIONS_MAX_LIBRARIES) {
        resp_req_errorf(req, "ERR too many function libraries (at most %u): delete one first",
                        KV_FUNCTIONS_MAX_LIBRARIES);
        ok = false;
    }
    /* the earlier libraries: name, code, count, names... */
    for (size_t a = 0; ok && a < r->nargs;) {
        if (fn_restore__eq(r, a, name.data, name.len)) {
            resp_req_errorf(req, "ERR Library '%.*s' already exists", (int)name.len, name.data);
            ok = false;
        }
        uint64_t k = 0;
        strconv_parse_u64(r->data.data + r->off[a + 2], r->len[a + 2], &k);
        for (size_t j = 0, at = 0; ok && j < nfn; j++) {
            uint32_t l;
            memcpy(&l, fnames.data + at, sizeof(l));
            for (uint64_t i = 0; ok && i < k; i++)
                if (fn_restore__eq(r, a + 3 + i, fnames.data + at + sizeof(l), l)) {
                    resp_req_errorf(req, "ERR Function %.*s already exists", (int)l,
                                    fnames.data + at + sizeof(l));
                    ok = false;
                }
            at += sizeof(l) + l;
        }
        a += 3 + k;
    }
    if (ok) {
        fn_restore__arg(r, name.data, name.len);
        fn_restore__arg(r, code.ptr, code.len);
        char num[16];
        fn_restore__arg(r, num, (size_t)snprintf(num, sizeof(num), "%u", nfn));
        for (size_t j = 0, at = 0; j < nfn; j++) {
            uint32_t l;
            memcpy(&l, fnames.data + at, sizeof(l));
            fn_restore__arg(r, fnames.data + at + sizeof(l), l);
            at += sizeof(l) + l;
        }
        r->nlibs++;
    }
    buf_close(&name);
    buf_close(&fnames);
    r->failed = !ok;
    return ok;
}

static void function__restored(resp_req *req, const kv_result *res)
{
    if (res->status == KV_ERR_PRECONDITION && res->value_len > 0) {
        resp_req_errorf(req, "ERR %s %.*s already exists",
                        res->value[0] == 'L' ? "Library" : "Function", (int)res->value_len - 1,
                        res->value + 1);
        return;
    }
    resp_req_ok(req);
}

static void function__restore(resp_req *req)
{
    int policy = KV_FUNCTION_RESTORE_APPEND;
    if (req->argc == 4) {
        const resp_arg *p = &req->argv[3];
        if (resp_format_arg_is(p, "append")) {
            policy = KV_FUNCTION_RESTORE_APPEND;
        } else if (resp_format_arg_is(p, "replace")) {
            policy = KV_FUNCTION_RESTORE_REPLACE;
        } else if (resp_format_arg_is(p, "flush")) {
            policy = KV_FUNCTION_RESTORE_FLUSH;
        } else {
            resp_req_error(req, "ERR Wrong restore policy given, value should be either FLUSH, "
                                "APPEND or REPLACE.");
            return;
        }
    }
    fn_restore r = {.req = req};
    buf_init(&r.data);
    const char *why;
    const resp_arg *payload = &req->argv[2];
    kv_dump_status st = kv_dump_functions_load(
        payload->ptr, payload->len, req->a->cfg->max_value_bytes, fn_restore__library, &r, &why);
    if (r.failed) {
        req->outcome = RESP_OUTCOME_ERROR;
    } else if (st == KV_DUMP_BAD_FOOTER) {
        resp_req_error(req, "ERR DUMP payload version or checksum are wrong");
    } else if (st == KV_DUMP_TOO_LARGE) {
        resp_req_errorf(req, "ERR a library's code is larger than --max-value-bytes (%llu)",
                        (unsigned long long)req->a->cfg->max_value_bytes);
    } else if (st != KV_DUMP_OK) {
        resp_req_errorf(req, "ERR %s", why ? why : "Failed loading library payload");
    } else {
        kv_slice *args = xcalloc(r.nargs ? r.nargs : 1, sizeof(*args));
        for (size_t i = 0; i < r.nargs; i++) args[i] = (kv_slice){r.data.data + r.off[i], r.len[i]};
        kv_command cmd = {
            .op = KV_OP_FUNCTION_RESTORE, .a = policy, .nargs = (uint32_t)r.nargs, .args = args};
        resp_req_propose(req, &cmd, function__restored);
        free(args);
    }
    buf_close(&r.data);
    free(r.off);
    free(r.len);
}

static void script__function(resp_req *req)
{
    const resp_arg *sub = &req->argv[1];
    if (resp_format_arg_is(sub, "load") && req->argc >= 3) {
        function__load(req);
    } else if (resp_format_arg_is(sub, "delete") && req->argc == 3) {
        kv_slice name = {req->argv[2].ptr, req->argv[2].len};
        kv_command cmd = {.op = KV_OP_FUNCTION_DELETE, .nargs = 1, .args = &name};
        resp_req_propose(req, &cmd, function__ok);
    } else if (resp_format_arg_is(sub, "flush") && req->argc <= 3) {
        if (!function__flush_arg(req)) return;
        kv_command cmd = {.op = KV_OP_FUNCTION_FLUSH};
        resp_req_propose(req, &cmd, function__ok);
    } else if (resp_format_arg_is(sub, "list")) {
        function__list(req);
    } else if (resp_format_arg_is(sub, "stats") && req->argc == 2) {
        resp_req_read(req, function__stats_ready);
    } else if (resp_format_arg_is(sub, "dump") && req->argc == 2) {
        resp_req_read(req, function__dump_ready);
    } else if (resp_format_arg_is(sub, "restore") && req->argc >= 3) {
        if (req->argc > 4)
            resp_req_errorf(req,
                            "ERR unknown subcommand or wrong number of arguments for '%.*s'. "
                            "Try FUNCTION HELP.",
                            (int)sub->len, sub->ptr);
        else
            function__restore(req);
    } else if (resp_format_arg_is(sub, "kill") && req->argc == 2) {
        script__kill(req, true);
    } else if (resp_format_arg_is(sub, "help") && req->argc == 2) {
        static const char *const lines[] = {
            "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            ("    It also possible to get only function that matches a pattern using LIBRARYNAME "
             "argument."),
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    Libraries go at once, whatever the mode. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            ("    Return a serialized payload representing the current libraries, can be "
             "restored using FUNCTION RESTORE command"),
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            ("    Restore the libraries represented by the given payload, it is possible to "
             "give a restore policy to"),
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            ("    * APPEND: appends the restored libraries to the existing libraries. On "
             "collision, abort."),
            ("    * REPLACE: appends the restored libraries to the existing libraries, On "
             "collision, replace the old"),
            ("      libraries with the new libraries (notice that even on this option there is "
             "a chance of failure"),
            "      in case of functions name collision with another library).",
            "HELP",
            "    Prints this help.",
            NULL};
        resp_req_help(req, lines);
    } else if (resp_format_arg_is(sub, "load") || resp_format_arg_is(sub, "delete") ||
               resp_format_arg_is(sub, "flush") || resp_format_arg_is(sub, "stats") ||
               resp_format_arg_is(sub, "kill") || resp_format_arg_is(sub, "help") ||
               resp_format_arg_is(sub, "dump") || resp_format_arg_is(sub, "restore")) {
        resp_req_error_sub_arity(req);
    } else {
        resp_req_errorf(req, "ERR unknown subcommand '%.*s'. Try FUNCTION HELP.", (int)sub->len,
                        sub->ptr);
    }
}

/* ---- SCRIPT ---------------------------------------------------------------------- */

static void script__script(resp_req *req)
{
    resp_api *ra = req->rc->ra;
    const resp_arg *sub = &req->argv[1];
    if (resp_format_arg_is(sub, "load") && req->argc == 3) {
        char sha[SCRIPT_SHA_LEN + 1];
        if (script_lua_load(script__lua(ra), req->argv[2].ptr, req->argv[2].len, sha, &req->reply))
            resp_write_bulk(&req->reply, sha, SCRIPT_SHA_LEN);
        else
            req->outcome = RESP_OUTCOME_ERROR;
    } else if (resp_format_arg_is(sub, "exists") && req->argc >= 3) {
        resp_write_array(&req->reply, req->argc - 2);
        for (size_t i = 2; i < req->argc; i++) {
            char sha[SCRIPT_SHA_LEN + 1];
            bool found =
                ra->lua && script_lua_find(ra->lua, req->argv[i].ptr, req->argv[i].len, sha);
            resp_write_integer(&req->reply, found);
        }
    } else if (resp_format_arg_is(sub, "flush") && req->argc <= 3) {
        if (req->argc == 3 && !resp_format_arg_is(&req->argv[2], "sync") &&
            !resp_format_arg_is(&req->argv[2], "async")) {
            resp_req_error(req, "ERR SCRIPT FLUSH only support SYNC|ASYNC option");
            return;
        }
        if (ra->scripts->busy) {
            /* (refused at dispatch; a transaction's could come here) */
            resp_req_error(req, script__busy_error(ra->scripts));
            return;
        }
        if (ra->lua) script_lua_flush(ra->lua);
        resp_req_ok(req);
    } else if (resp_format_arg_is(sub, "kill") && req->argc == 2) {
        script__kill(req, false);
    } else if (resp_format_arg_is(sub, "help") && req->argc == 2) {
        static const char *const lines[] = {
            "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
            "HELP",
            "    Prints this help.",
            NULL};
        resp_req_help(req, lines);
    } else if (resp_format_arg_is(sub, "load") || resp_format_arg_is(sub, "exists") ||
               resp_format_arg_is(sub, "flush") || resp_format_arg_is(sub, "kill") ||
               resp_format_arg_is(sub, "help")) {
        resp_req_error_sub_arity(req);
    } else {
        resp_req_errorf(req, "ERR unknown subcommand '%.*s'. Try SCRIPT HELP.", (int)sub->len,
                        sub->ptr);
    }
}

#define R RESP_CMD_READONLY
#define NS RESP_CMD_NOSCRIPT
#define S RESP_CMD_STALE
#define NK RESP_CMD_NUMKEYS

const resp_cmd resp_cmds_scripting[] = {
    {"eval", script__eval_cmd, -3, NS | S | NK, 2, 0, 1, "scripting", "2.6.0",
     "Depends on the script that is executed.",
     "Execute a Lua script; its writes are applied as one entry of the log",
     "script numkeys [key [key ...]] [arg [arg ...]]"},
    {"evalsha", script__evalsha, -3, NS | S | NK, 2, 0, 1, "scripting", "2.6.0",
     "Depends on the script that is executed.", "Execute a cached Lua script by its SHA1 digest",
     "sha1 numkeys [key [key ...]] [arg [arg ...]]"},
    {"eval_ro", script__eval_ro, -3, R | NS | S | NK, 2, 0, 1, "scripting", "7.0.0",
     "Depends on the script that is executed.", "Execute a read-only Lua script",
     "script numkeys [key [key ...]] [arg [arg ...]]"},
    {"evalsha_ro", script__evalsha_ro, -3, R | NS | S | NK, 2, 0, 1, "scripting", "7.0.0",
     "Depends on the script that is executed.", "Execute a cached read-only Lua script",
     "sha1 numkeys [key [key ...]] [arg [arg ...]]"},
    {"fcall", script__fcall, -3, NS | S | NK, 2, 0, 1, "scripting", "7.0.0",
     "Depends on the function that is executed.",
     "Invoke a function; its writes are applied as one entry of the log",
     "function numkeys [key [key ...]] [arg [arg ...]]"},
    {"fcall_ro", script__fcall_ro, -3, R | NS | S | NK, 2, 0, 1, "scripting", "7.0.0",
     "Depends on the function that is executed.", "Invoke a read-only function",
     "function numkeys [key [key ...]] [arg [arg ...]]"},
    {"function", script__function, -2, NS, 0, 0, 0, "scripting", "7.0.0",
     "Depends on the subcommand.",
     "Manage the function libraries (replicated): LOAD, DELETE, FLUSH, LIST, STATS, KILL, HELP",
     "subcommand [argument ...]"},
    {"script", script__script, -2, NS, 0, 0, 0, "scripting", "2.6.0", "Depends on the subcommand.",
     "Manage this node's script cache: LOAD, EXISTS, FLUSH, KILL, HELP",
     "subcommand [argument ...]"},
};
const size_t resp_cmds_scripting_count =
    sizeof(resp_cmds_scripting) / sizeof(resp_cmds_scripting[0]);
