/* script_lua: the Lua 5.1 interpreter EVAL runs scripts in, with Redis'
 * API inside it.
 *
 * One interpreter per node, as in Redis: scripts are compiled once into
 * a cache keyed by their SHA1 (EVALSHA, SCRIPT LOAD/EXISTS/FLUSH), and
 * run with the globals KEYS and ARGV. Inside, as Redis 7.0 offers them:
 * redis.call and redis.pcall (through the call function the caller
 * gives, which runs a command and answers with its RESP reply),
 * redis.error_reply, redis.status_reply, redis.sha1hex, redis.log,
 * redis.setresp, redis.REDIS_VERSION, and the base, table, string and
 * math libraries with cjson, bit and cmsgpack (Debian's lua-cjson,
 * lua-bitop and lua-messagepack, loaded when installed; api/script_cmsgpack.h). Sandbox as Redis:
 * no os, io, loadfile, dofile, print, require; reading or creating an undeclared global is an
 * error.
 *
 * Limits: the interpreter's heap (SCRIPT_LUA_MEMORY_LIMIT). Time: a run
 * goes on while it runs (as in Redis), but past busy_after_ms (Redis'
 * busy-reply-threshold) it gives the loop a turn every SCRIPT_SLICE_MS:
 * it yields, script_lua_run answers SCRIPT_BUSY, and the caller serves
 * others (Redis' -BUSY) and script_lua_resume()s it, or ends it with
 * script_lua_kill(). A run is a Lua coroutine and its count hook yields
 * it; where Lua 5.1 cannot yield (inside a C function such as pcall or
 * table.sort, a metamethod or a for-iterator) it goes on, and one that
 * cannot yield for as long again as busy_after_ms (at least
 * SCRIPT_UNYIELDING_MIN_MS) is stopped with an error.
 * Since a script's writes reach the store only when it has finished
 * (effects replication, kv/overlay.h), stopping or killing one never
 * leaves half its writes.
 *
 * Replies are converted as Redis converts them, both ways, for RESP2 and
 * RESP3 (redis.setresp(3)); errors carry Redis' "script: <sha>, on
 * @user_script:<line>." suffix. Not thread-safe; the loop thread only. */
#ifndef CAIRN_API_SCRIPT_LUA_H
#define CAIRN_API_SCRIPT_LUA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/functions.h"
#include "net/resp.h"
#include "util/buf.h"

#define SCRIPT_LUA_MEMORY_LIMIT (256u << 20)
#define SCRIPT_SHA_LEN 40

typedef struct script_lua script_lua;

/* Run argv as a command (redis.call / redis.pcall) and write its reply,
 * in RESP version resp (2 or 3), to out; an error reply starts with '-'. */
typedef void (*script_call_fn)(void *ctx, const resp_arg *argv, size_t argc, int resp, buf *out);

/* The Redis version scripts see (redis.REDIS_VERSION): the one whose
 * scripting cairn follows. */
#define SCRIPT_REDIS_VERSION "7.0.0"
script_lua *script_lua_new(const char *redis_version);
void script_lua_free(script_lua *sl);

/* Compile body into the cache (a no-op when it is there); its SHA1 in
 * lowercase hex into sha. False on a compile error, written to err as
 * Redis words it. */
bool script_lua_load(script_lua *sl, const char *body, size_t len, char sha[SCRIPT_SHA_LEN + 1],
                     buf *err);
/* Whether sha (any case) is in the cache; sha is then lowercased. */
bool script_lua_find(script_lua *sl, const char *sha, size_t len, char out[SCRIPT_SHA_LEN + 1]);
/* Empty the cache (SCRIPT FLUSH): a fresh interpreter. */
void script_lua_flush(script_lua *sl);
size_t script_lua_count(const script_lua *sl);
size_t script_lua_memory(const script_lua *sl);

/* A busy run gives the loop a turn this often (ms of running) */
#define SCRIPT_SLICE_MS 10
/* A busy run that cannot yield at least this long is not stopped yet */
#define SCRIPT_UNYIELDING_MIN_MS 100

typedef enum script_outcome {
    SCRIPT_RAN = 0, /* out holds its answer (which may be an error reply it returned or raised) */
    SCRIPT_STOPPED =
        1,          /* out of memory or time, or killed: out holds the error; discard its writes */
    SCRIPT_BUSY = 2 /* past busy_after_ms it yielded: script_lua_resume or _kill it later */
} script_outcome;

/* How a run may take its time: past busy_after_ms it yields (SCRIPT_BUSY)
 * when may_yield, else it is stopped (a script inside a transaction's
 * apply, which cannot wait). */
typedef struct script_time {
    uint64_t busy_after_ms;
    bool may_yield;
    uint64_t started_ms; /* when the run started, on CLOCK_MONOTONIC (uv_now) */
} script_time;

/* Run the cached script sha; its answer, in the client's protocol
 * proto, appended to out. */
script_outcome script_lua_run(script_lua *sl, const char sha[SCRIPT_SHA_LEN + 1],
                              const resp_arg *keys, size_t nkeys, const resp_arg *args,
                              size_t nargs, int proto, script_time time, script_call_fn call,
                              void *ctx, buf *out);
/* Whether a run yielded and waits for script_lua_resume or _kill: the
 * interpreter then runs nothing else and must not be flushed or have its
 * functions reloaded. */
bool script_lua_busy(const script_lua *sl);
/* Go on with the busy run for another slice; as script_lua_run. */
script_outcome script_lua_resume(script_lua *sl, buf *out);
/* End the busy run: Redis' "Script killed by user with SCRIPT KILL..."
 * with where it stood into out (NULL: nobody waits for it). */
void script_lua_kill(script_lua *sl, buf *out);

/* ---- FUNCTION ---- */

/* Function flags (register_function's flags), bit i named
 * script_lua_flag_name(i): */
enum {
    SCRIPT_FLAG_NO_WRITES = 1,
    SCRIPT_FLAG_ALLOW_OOM = 2,
    SCRIPT_FLAG_ALLOW_STALE = 4,
    SCRIPT_FLAG_NO_CLUSTER = 8,
    SCRIPT_FLAG_ALLOW_CROSS_SLOT = 16,
};
#define SCRIPT_FLAG_COUNT 5
/* A library's code must register its functions within this (Redis' load timeout). */
#define SCRIPT_LOAD_TIME_LIMIT_MS 500

typedef struct script_function {
    char *name, *library, *description; /* description may be NULL */
    uint32_t flags;
    int ref; /* the callback, in the functions' interpreter */
} script_function;

/* FUNCTION LOAD's checks, in an interpreter of their own: the metadata
 * line ("#!lua name=<library>"), the code compiles, loading it registers
 * at least one function with valid, distinct names and flags. On success
 * the library's name is appended to name and its functions' names to
 * fnames (u32 length, native order | bytes, each), their count in *nfn;
 * else Redis' error in err. */
bool script_lua_check_library(script_lua *sl, const char *code, size_t len, buf *name, buf *fnames,
                              uint32_t *nfn, buf *err);
/* The name a library's metadata line gives it; false when it has none. */
bool script_lua_library_name(const char *code, size_t len, const char **name, size_t *name_len);
/* (Re)load the functions from the store's libraries; current: whether
 * what is loaded is generation gen's. */
void script_lua_functions_reload(script_lua *sl, const kv_functions *f);
bool script_lua_functions_current(const script_lua *sl, uint64_t gen);
const script_function *script_lua_function(const script_lua *sl, const char *name, size_t len);
/* Every loaded function, library by library in load order. */
const script_function *script_lua_functions(const script_lua *sl, size_t *n);
const char *script_lua_flag_name(int bit);
/* FCALL: run fn with its keys and args tables (as script_lua_run). */
script_outcome script_lua_fcall(script_lua *sl, const script_function *fn, const resp_arg *keys,
                                size_t nkeys, const resp_arg *args, size_t nargs, int proto,
                                script_time time, script_call_fn call, void *ctx, buf *out);

#endif
