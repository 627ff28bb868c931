/* script_lua: see script_lua.h. The conversions follow Redis 7.0's
 * script_lua.c as documented (redis.io, "Scripting with Lua": the
 * conversion tables) and as redis-server 7.0 answers (the differential
 * tests, tests/integration/test_resp_scripts.py). */
#include "api/script_lua.h"

#include <dlfcn.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/script_cmsgpack.h"
#include "obs/log.h"
#include "util/alloc.h"
#include "util/strconv.h"

/* Nesting of tables converted either way (Redis stops at Lua's stack
 * limit; a cycle would never end). */
#define SCRIPT_MAX_DEPTH 1000
/* How often (VM instructions) the time limit is checked. */
#define SCRIPT_HOOK_EVERY 100000
/* Runs between two incremental collection steps (Redis' LUA_GC_CYCLE_PERIOD) */
#define SCRIPT_GC_PERIOD 50

struct script_lua {
    lua_State *L;
    size_t used, peak;
    size_t nscripts;
    char version[32];
    /* the run in progress */
    script_call_fn call;
    void *call_ctx;
    int resp;                     /* redis.setresp */
    int proto;                    /* the client's */
    uint64_t check_ns;            /* when the hook acts on a run: its busy threshold, then the end
                                   * of its slice */
    uint64_t load_deadline_ns;    /* a library load's */
    uint64_t unyielding_ns;       /* since when a busy run could not yield (0: it could) */
    uint64_t unyielding_limit_ns; /* how long it may not: stopped then */
    bool may_yield;
    bool hook_yielded;      /* the hook, not the script, yielded the run */
    const char *stop;       /* why the run is being stopped (raised at every line) */
    char *name;             /* the script's SHA1, or the function's name: in errors */
    size_t name_cap;        /* name's allocation, kept from run to run */
    buf call_reply;         /* redis.call's reply (sl__call) */
    lua_State *co;          /* the run's coroutine, while one runs or is busy */
    lua_State **co_slot;    /* where it is kept between runs (co_L or co_F) */
    lua_State *co_L, *co_F; /* a coroutine kept for the next run in L, in F */
    unsigned runs_since_gc;
    /* FUNCTION: an interpreter of its own, loaded from the store's libraries */
    lua_State *F;
    script_function *fns; /* every function, library by library */
    size_t nfns;
    uint64_t functions_gen;
    bool functions_loaded;
    struct sl_loading *loading; /* FUNCTION LOAD running a library's code */
};

static uint64_t sl__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The allocator: the heap is bounded; past it Lua raises "not enough
 * memory" and the run ends (script_lua_run reports it). */
static void *sl__alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    script_lua *sl = ud;
    if (nsize == 0) {
        free(ptr);
        sl->used -= osize;
        return NULL;
    }
    if (nsize > osize && sl->used + (nsize - osize) > SCRIPT_LUA_MEMORY_LIMIT) return NULL;
    void *p = realloc(ptr, nsize);
    if (!p) return NULL;
    sl->used = sl->used - osize + nsize;
    if (sl->used > sl->peak) sl->peak = sl->used;
    return p;
}

static script_lua *sl__of(lua_State *L)
{
    void *ud;
    lua_getallocf(L, &ud);
    return ud;
}

/* Raise Redis' error object: a table {err = msg}. */
static int sl__raise(lua_State *L, const char *msg)
{
    lua_newtable(L);
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "err");
    return lua_error(L);
}

/* ---- RESP reply -> Lua ------------------------------------------------------------ */

static const char *sl__line(const char *p, const char *end, size_t *len)
{
    const char *q = p;
    while (q + 1 < end && !(q[0] == '\r' && q[1] == '\n')) q++;
    if (q + 1 >= end) return NULL;
    *len = (size_t)(q - p);
    return q + 2;
}

static void sl__push_str_field(lua_State *L, const char *field, const char *p, size_t n)
{
    lua_newtable(L);
    lua_pushlstring(L, p, n);
    lua_setfield(L, -2, field);
}

/* Push the value the reply at p starts with; returns where it ends, or
 * NULL when it is malformed (never, from our own formatters). */
static const char *sl__push_reply(lua_State *L, const char *p, const char *end, int depth)
{
    if (p >= end || depth > SCRIPT_MAX_DEPTH || !lua_checkstack(L, 4)) return NULL;
    char type = *p++;
    size_t n;
    const char *next = sl__line(p, end, &n);
    if (!next) return NULL;
    int64_t count = 0;
    switch (type) {
    case '+':
        sl__push_str_field(L, "ok", p, n);
        return next;
    case '-':
        sl__push_str_field(L, "err", p, n);
        return next;
    case ':':
        if (!strconv_parse_i64(p, n, &count)) return NULL;
        lua_pushnumber(L, (lua_Number)count);
        return next;
    case '_':
        lua_pushnil(L);
        return next;
    case '#':
        lua_pushboolean(L, n == 1 && p[0] == 't');
        return next;
    case ',': {
        char tmp[64];
        size_t k = n < sizeof(tmp) - 1 ? n : sizeof(tmp) - 1;
        memcpy(tmp, p, k);
        tmp[k] = '\0';
        lua_newtable(L);
        lua_pushnumber(L, strtod(tmp, NULL));
        lua_setfield(L, -2, "double");
        return next;
    }
    case '(':
        sl__push_str_field(L, "big_number", p, n);
        return next;
    case '$':
    case '=':
        if (!strconv_parse_i64(p, n, &count)) return NULL;
        if (count < 0) {
            lua_pushboolean(L, 0);
            return next;
        }
        if ((size_t)(end - next) < (size_t)count + 2) return NULL;
        if (type == '$') {
            lua_pushlstring(L, next, (size_t)count);
        } else {
            lua_newtable(L);
            lua_newtable(L);
            size_t fl = count >= 4 ? 3 : 0;
            lua_pushlstring(L, next, fl);
            lua_setfield(L, -2, "format");
            lua_pushlstring(L, next + (count >= 4 ? 4 : 0), (size_t)count - (count >= 4 ? 4 : 0));
            lua_setfield(L, -2, "string");
            lua_setfield(L, -2, "verbatim_string");
        }
        return next + count + 2;
    case '*':
    case '>':
    case '~':
    case '%':
    case '|': {
        if (!strconv_parse_i64(p, n, &count)) return NULL;
        if (count < 0) {
            lua_pushboolean(L, 0);
            return next;
        }
        p = next;
        if (type == '|') { /* an attribute: skipped, the value follows */
            for (int64_t i = 0; i < 2 * count && p; i++) {
                p = sl__push_reply(L, p, end, depth + 1);
                if (p) lua_pop(L, 1);
            }
            return p ? sl__push_reply(L, p, end, depth) : NULL;
        }
        lua_newtable(L);
        if (type == '~' || type == '%') lua_newtable(L); /* the inner set or map */
        for (int64_t i = 0; i < count && p; i++) {
            p = sl__push_reply(L, p, end, depth + 1);
            if (!p) break;
            if (type == '~') {
                lua_pushboolean(L, 1);
                lua_settable(L, -3);
            } else if (type == '%') {
                p = sl__push_reply(L, p, end, depth + 1);
                if (!p) {
                    lua_pop(L, 1);
                    break;
                }
                lua_settable(L, -3);
            } else {
                lua_rawseti(L, -2, (int)(i + 1));
            }
        }
        if (type == '~') lua_setfield(L, -2, "set");
        if (type == '%') lua_setfield(L, -2, "map");
        return p;
    }
    default:
        return NULL;
    }
}

/* ---- Lua -> RESP reply ----------------------------------------------------------- */

/* Errors and statuses go on one line. */
static void sl__write_line(buf *out, char type, const char *s, size_t n)
{
    buf_append_char(out, type);
    size_t at = out->len;
    buf_append(out, s, n);
    for (size_t i = at; i < out->len; i++)
        if (out->data[i] == '\r' || out->data[i] == '\n') out->data[i] = ' ';
    buf_append(out, "\r\n", 2);
}

static bool sl__field(lua_State *L, int idx, const char *name, int type)
{
    lua_pushstring(L, name);
    lua_rawget(L, idx);
    if (lua_type(L, -1) == type) return true; /* left on the stack */
    lua_pop(L, 1);
    return false;
}

static void sl__write_value(lua_State *L, int proto, buf *out, int depth);

/* A table's array part, 1..n up to the first nil. */
static void sl__write_array(lua_State *L, int t, int proto, buf *out, int depth)
{
    size_t n = 0;
    for (;;) {
        lua_rawgeti(L, t, (int)n + 1);
        bool nil = lua_isnil(L, -1);
        lua_pop(L, 1);
        if (nil) break;
        n++;
    }
    resp_write_array(out, n);
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, t, (int)i + 1);
        sl__write_value(L, proto, out, depth + 1);
        lua_pop(L, 1);
    }
}

static void sl__write_table(lua_State *L, int proto, buf *out, int depth)
{
    int t = lua_gettop(L);
    if (sl__field(L, t, "err", LUA_TSTRING)) {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        if (n && s[0] == '-') s++, n--;
        sl__write_line(out, '-', s, n);
        lua_pop(L, 1);
        return;
    }
    if (sl__field(L, t, "ok", LUA_TSTRING)) {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        sl__write_line(out, '+', s, n);
        lua_pop(L, 1);
        return;
    }
    if (sl__field(L, t, "double", LUA_TNUMBER)) {
        resp_write_double(out, proto, lua_tonumber(L, -1));
        lua_pop(L, 1);
        return;
    }
    if (sl__field(L, t, "big_number", LUA_TSTRING)) {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        if (proto == 3)
            sl__write_line(out, '(', s, n);
        else
            resp_write_bulk(out, s, n);
        lua_pop(L, 1);
        return;
    }
    if (sl__field(L, t, "map", LUA_TTABLE)) {
        int m = lua_gettop(L);
        size_t pairs = 0;
        lua_pushnil(L);
        while (lua_next(L, m)) {
            pairs++;
            lua_pop(L, 1);
        }
        resp_write_map(out, proto, pairs);
        lua_pushnil(L);
        while (lua_next(L, m)) {
            lua_pushvalue(L, -2);
            sl__write_value(L, proto, out, depth + 1); /* the key */
            lua_pop(L, 1);
            sl__write_value(L, proto, out, depth + 1); /* the value */
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        return;
    }
    if (sl__field(L, t, "set", LUA_TTABLE)) {
        int m = lua_gettop(L);
        size_t n = 0;
        lua_pushnil(L);
        while (lua_next(L, m)) {
            n++;
            lua_pop(L, 1);
        }
        resp_write_set(out, proto, n);
        lua_pushnil(L);
        while (lua_next(L, m)) {
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            sl__write_value(L, proto, out, depth + 1);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        return;
    }
    if (sl__field(L, t, "verbatim_string", LUA_TTABLE)) {
        int v = lua_gettop(L);
        if (sl__field(L, v, "format", LUA_TSTRING)) {
            size_t fl;
            const char *f = lua_tolstring(L, -1, &fl);
            if (sl__field(L, v, "string", LUA_TSTRING)) {
                size_t n;
                const char *s = lua_tolstring(L, -1, &n);
                char fmt[4] = "txt";
                if (fl == 3) memcpy(fmt, f, 3);
                resp_write_verbatim(out, proto, fmt, s, n);
                lua_pop(L, 3);
                return;
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        resp_write_null(out, proto);
        return;
    }
    sl__write_array(L, t, proto, out, depth);
}

/* The value on top of the stack, as Redis converts a script's answer. */
static void sl__write_value(lua_State *L, int proto, buf *out, int depth)
{
    if (depth > SCRIPT_MAX_DEPTH || !lua_checkstack(L, 8)) {
        resp_write_error(out, "ERR reached lua stack limit");
        return;
    }
    switch (lua_type(L, -1)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        resp_write_bulk(out, s, n);
        break;
    }
    case LUA_TBOOLEAN:
        /* by the script's protocol (redis.setresp), not the client's, as Redis 7.0 does */
        if (sl__of(L)->resp == 3 && proto == 3)
            resp_write_bool(out, 3, lua_toboolean(L, -1));
        else if (lua_toboolean(L, -1))
            resp_write_integer(out, 1);
        else
            resp_write_null(out, proto);
        break;
    case LUA_TNUMBER: {
        /* truncated toward zero; what does not fit (inf, nan) is
         * LLONG_MIN, as x86's conversion makes it in Redis */
        double v = lua_tonumber(L, -1);
        long long i =
            (v >= -9223372036854775808.0 && v < 9223372036854775808.0) ? (long long)v : LLONG_MIN;
        resp_write_integer(out, i);
        break;
    }
    case LUA_TTABLE:
        sl__write_table(L, proto, out, depth);
        break;
    default:
        resp_write_null(out, proto);
        break;
    }
}

/* ---- the redis table ------------------------------------------------------------- */

/* A call's reply buffer is kept for the next call unless a big reply
 * grew it (a script's LRANGE of a long list must not pin its memory). */
#define SL_REPLY_KEEP (64 * 1024)

static void sl__reply_done(buf *reply)
{
    if (reply->cap > SL_REPLY_KEEP)
        buf_close(reply);
    else
        buf_reset(reply);
}

static int sl__call(lua_State *L, bool raise)
{
    script_lua *sl = sl__of(L);
    int argc = lua_gettop(L);
    if (argc == 0)
        return sl__raise(L, "ERR Please specify at least one argument for this redis lib call");
    resp_arg stack_argv[16];
    resp_arg *argv = argc <= 16 ? stack_argv : xcalloc((size_t)argc, sizeof(*argv));
    /* numbers become strings as Redis spells them (%.17g): kept on the
     * stack, so their bytes live through the call */
    for (int i = 1; i <= argc; i++) {
        int t = lua_type(L, i);
        if (t == LUA_TNUMBER) {
            char tmp[64];
            int n = snprintf(tmp, sizeof(tmp), "%.17g", (double)lua_tonumber(L, i));
            lua_pushlstring(L, tmp, (size_t)n);
            lua_replace(L, i);
        } else if (t != LUA_TSTRING) {
            if (argv != stack_argv) free(argv);
            return sl__raise(L, "ERR Lua redis lib command arguments must be strings or integers");
        }
        argv[i - 1].ptr = lua_tolstring(L, i, &argv[i - 1].len);
    }
    /* one buffer for every call's reply, kept (empty) between calls:
     * redis.call does not nest */
    buf *reply = &sl->call_reply;
    buf_reset(reply);
    sl->call(sl->call_ctx, argv, (size_t)argc, sl->resp, reply);
    if (argv != stack_argv) free(argv);
    if (raise && reply->len && reply->data[0] == '-') {
        size_t n;
        const char *s = sl__line(reply->data + 1, reply->data + reply->len, &n);
        lua_newtable(L);
        lua_pushlstring(L, reply->data + 1, s ? n : reply->len - 1);
        lua_setfield(L, -2, "err");
        sl__reply_done(reply);
        return lua_error(L);
    }
    const char *end = sl__push_reply(L, reply->data, reply->data + reply->len, 0);
    sl__reply_done(reply);
    if (!end) return sl__raise(L, "ERR reply of the command could not be read");
    return 1;
}

static int sl__redis_call(lua_State *L)
{
    return sl__call(L, true);
}

static int sl__redis_pcall(lua_State *L)
{
    return sl__call(L, false);
}

static int sl__reply_helper(lua_State *L, const char *field, bool error)
{
    if (lua_gettop(L) != 1 || lua_type(L, 1) != LUA_TSTRING) {
        /* answered, not raised, as Redis does */
        lua_newtable(L);
        lua_pushstring(L, "ERR wrong number or type of arguments");
        lua_setfield(L, -2, "err");
        return 1;
    }
    size_t n;
    const char *s = lua_tolstring(L, 1, &n);
    lua_newtable(L);
    if (error && (n == 0 || s[0] != '-')) {
        lua_pushlstring(L, s, n);
    } else if (error) {
        lua_pushlstring(L, s + 1, n - 1);
    } else {
        lua_pushlstring(L, s, n);
    }
    lua_setfield(L, -2, field);
    return 1;
}

static int sl__error_reply(lua_State *L)
{
    return sl__reply_helper(L, "err", true);
}

static int sl__status_reply(lua_State *L)
{
    return sl__reply_helper(L, "ok", false);
}

static void sl__sha1hex(const char *p, size_t n, char out[SCRIPT_SHA_LEN + 1])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)p, n, md);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[SCRIPT_SHA_LEN] = '\0';
}

static int sl__redis_sha1hex(lua_State *L)
{
    if (lua_gettop(L) != 1) return sl__raise(L, "ERR wrong number of arguments");
    size_t n;
    const char *s = lua_tolstring(L, 1, &n);
    char sha[SCRIPT_SHA_LEN + 1];
    sl__sha1hex(s ? s : "", s ? n : 0, sha);
    lua_pushstring(L, sha);
    return 1;
}

static int sl__redis_log(lua_State *L)
{
    int argc = lua_gettop(L);
    if (argc < 2) return sl__raise(L, "ERR redis.log() requires two arguments or more.");
    if (!lua_isnumber(L, 1))
        return sl__raise(L, "ERR First argument must be a number (log level).");
    int level = (int)lua_tonumber(L, 1);
    if (level < 0 || level > 3) return sl__raise(L, "ERR Invalid debug level.");
    buf msg;
    buf_init(&msg);
    for (int i = 2; i <= argc; i++) {
        size_t n;
        const char *s = lua_tolstring(L, i, &n);
        if (!s) continue;
        if (msg.len) buf_append_char(&msg, ' ');
        buf_append(&msg, s, n);
    }
    /* Redis' levels: debug, verbose, notice, warning */
    int lvl = level == 3 ? LOG_LEVEL_WARN : level == 2 ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG;
    LOG_AT(lvl, "redis.log", LF_B("message", msg.data ? msg.data : "", msg.len));
    buf_close(&msg);
    return 0;
}

static int sl__redis_setresp(lua_State *L)
{
    if (lua_gettop(L) != 1) return sl__raise(L, "ERR redis.setresp() requires one argument.");
    int v = (int)lua_tonumber(L, 1);
    if (v != 2 && v != 3) return sl__raise(L, "ERR RESP version must be 2 or 3.");
    sl__of(L)->resp = v;
    return 0;
}

/* redis.set_repl and redis.replicate_commands: effects are always what
 * is replicated here, as in Redis 7 */
static int sl__redis_true(lua_State *L)
{
    lua_pushboolean(L, 1);
    return 1;
}

static int sl__redis_noop(lua_State *L)
{
    (void)L;
    return 0;
}

/* ---- the sandbox --------------------------------------------------------------- */

static int sl__global_missing(lua_State *L)
{
    const char *name = lua_tostring(L, 2);
    luaL_where(L, 1);
    lua_pushfstring(L, "Script attempted to access nonexistent global variable '%s'",
                    name ? name : "?");
    lua_concat(L, 2);
    return lua_error(L);
}

static int sl__global_readonly(lua_State *L)
{
    luaL_where(L, 1);
    lua_pushstring(L, "Attempt to modify a readonly table");
    lua_concat(L, 2);
    return lua_error(L);
}

/* Make the error object at the top of L Redis' error table ({err = "ERR
 * msg"} for a plain message), with where it was raised when known. */
static void sl__error_table(lua_State *L, const lua_Debug *where)
{
    if (!lua_istable(L, -1)) {
        const char *m = lua_tostring(L, -1);
        lua_newtable(L);
        lua_pushfstring(L, "ERR %s", m ? m : luaL_typename(L, -2));
        lua_setfield(L, -2, "err");
        lua_remove(L, -2);
    }
    if (where) {
        lua_pushstring(L, where->source);
        lua_setfield(L, -2, "source");
        lua_pushnumber(L, where->currentline);
        lua_setfield(L, -2, "line");
    }
}

/* Where in the script L stands from level on: the first frame of the
 * user's code (a C function that raised, error or redis.call, and a
 * library's own Lua, cmsgpack's, are passed over). */
static bool sl__where(lua_State *L, int level, lua_Debug *ar)
{
    for (int i = level; i < level + 32; i++) {
        if (!lua_getstack(L, i, ar) || !lua_getinfo(L, "nSl", ar)) return false;
        if (strncmp(ar->source, "@user_", 6) == 0) return true;
    }
    return false;
}

/* Called with the error object (a library's load): Redis' error table,
 * with where it was raised. */
static int sl__on_error(lua_State *L)
{
    lua_Debug ar;
    bool have = sl__where(L, 1, &ar);
    lua_settop(L, 1);
    sl__error_table(L, have ? &ar : NULL);
    return 1;
}

/* Stop the run: the error is raised now and at every line from now on,
 * so a pcall cannot catch it for good. */
static void sl__stop(lua_State *L, const char *why)
{
    script_lua *sl = sl__of(L);
    sl->stop = why;
    lua_sethook(L, lua_gethook(L), LUA_MASKLINE | LUA_MASKCOUNT, SCRIPT_HOOK_EVERY);
    sl__raise(L, why);
}

/* Whether the hook may yield L: Lua 5.1 yields from a hook only when no C
 * call stands between the hook and lua_resume. Those are C functions
 * (pcall, table.sort's comparator, string.gsub's function) and what the
 * VM itself calls: a for-iterator ("(for generator)") and metamethods
 * (called by an instruction that is not a call, which leaves their
 * frame without a name while a Lua frame called it). A tail call's
 * frame has no name either, but its caller's level is the "tail" mark. */
static bool sl__can_yield(lua_State *L)
{
    lua_Debug ar, up;
    for (int level = 0; lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sn", &ar)) return false;
        if (strcmp(ar.what, "tail") == 0) continue;
        if (strcmp(ar.what, "C") == 0) return false;
        if (ar.name && strncmp(ar.name, "(for ", 5) == 0) return false;
        if (ar.namewhat[0] == '\0' && lua_getstack(L, level + 1, &up) && lua_getinfo(L, "S", &up) &&
            strcmp(up.what, "tail") != 0)
            return false;
    }
    return true;
}

static void sl__hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    script_lua *sl = sl__of(L);
    if (sl->stop) sl__raise(L, sl->stop);
    uint64_t now = sl__now_ns();
    if (sl->loading) {
        if (now >= sl->load_deadline_ns)
            sl__stop(L, "ERR script stopped: it ran longer than the script time limit "
                        "(lua-time-limit); none of its writes were applied");
        return;
    }
    if (now < sl->check_ns) return;
    if (!sl->may_yield)
        sl__stop(L, "ERR script stopped: it ran longer than the script time limit "
                    "(lua-time-limit); none of its writes were applied");
    if (L == sl->co && sl__can_yield(L)) {
        sl->unyielding_ns = 0;
        sl->hook_yielded = true;
        lua_yield(L, 0);
        return;
    }
    if (!sl->unyielding_ns) {
        sl->unyielding_ns = now;
    } else if (now - sl->unyielding_ns >= sl->unyielding_limit_ns) {
        sl__stop(L, "ERR script stopped: it ran too long where it cannot give other clients a "
                    "turn (inside pcall, a metamethod, an iterator or a coroutine); none of its "
                    "writes were applied");
    }
}

static void sl__open(lua_State *L, lua_CFunction f, const char *name)
{
    lua_pushcfunction(L, f);
    lua_pushstring(L, name);
    lua_call(L, 1, 0);
}

/* cjson and bit, from Debian's packages when installed: luaopen_* via dl.
 * A missing one is logged once per process (every FUNCTION LOAD makes a
 * scratch interpreter). */
static void sl__open_shared(lua_State *L, const char *lib, const char *sym, const char *global,
                            bool *warned)
{
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        if (!*warned)
            LOG_WARN("Lua library not loaded: scripts lack it", LF_S("lib", lib),
                     LF_S("global", global));
        *warned = true;
        return;
    }
    lua_CFunction f = (lua_CFunction)(uintptr_t)dlsym(h, sym);
    if (!f) {
        if (!*warned)
            LOG_WARN("Lua library without its entry point: scripts lack it", LF_S("lib", lib),
                     LF_S("global", global));
        *warned = true;
        return; /* h stays open: harmless */
    }
    lua_pushcfunction(L, f);
    lua_call(L, 0, 1);
    lua_setglobal(L, global);
}

static void sl__set_fn(lua_State *L, const char *name, lua_CFunction f)
{
    lua_pushcfunction(L, f);
    lua_setfield(L, -2, name);
}

/* Reading an undeclared key of t is an error, and so is adding one. */
static void sl__guard(lua_State *L, int t)
{
    lua_newtable(L);
    lua_pushcfunction(L, sl__global_missing);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, sl__global_readonly);
    lua_setfield(L, -2, "__newindex");
    lua_setmetatable(L, t < 0 ? t - 1 : t);
}

static void sl__redis_consts(script_lua *sl, lua_State *L)
{
    static const struct {
        const char *name;
        int v;
    } consts[] = {{"LOG_DEBUG", 0},   {"LOG_VERBOSE", 1},  {"LOG_NOTICE", 2},
                  {"LOG_WARNING", 3}, {"REPL_NONE", 0},    {"REPL_AOF", 1},
                  {"REPL_SLAVE", 2},  {"REPL_REPLICA", 2}, {"REPL_ALL", 3}};
    for (size_t i = 0; i < sizeof(consts) / sizeof(consts[0]); i++) {
        lua_pushnumber(L, consts[i].v);
        lua_setfield(L, -2, consts[i].name);
    }
    lua_pushstring(L, sl->version);
    lua_setfield(L, -2, "REDIS_VERSION");
    unsigned a = 0, b = 0, c = 0;
    sscanf(sl->version, "%u.%u.%u", &a, &b, &c);
    lua_pushnumber(L, (lua_Number)((a << 16) | (b << 8) | c));
    lua_setfield(L, -2, "REDIS_VERSION_NUM");
}

/* An interpreter with the sandbox and the redis table of a running
 * script; globals guarded. */
static lua_State *sl__new_state(script_lua *sl)
{
    lua_State *L = lua_newstate(sl__alloc, sl);
    if (!L) {
        fprintf(stderr, "cairnd: cannot create the Lua interpreter\n");
        abort();
    }
    sl__open(L, luaopen_base, "");
    sl__open(L, luaopen_table, LUA_TABLIBNAME);
    sl__open(L, luaopen_string, LUA_STRLIBNAME);
    sl__open(L, luaopen_math, LUA_MATHLIBNAME);
    static bool cjson_warned, bit_warned;
    sl__open_shared(L, "liblua5.1-cjson.so.0", "luaopen_cjson", "cjson", &cjson_warned);
    sl__open_shared(L, "liblua5.1-bitop.so.0", "luaopen_bit", "bit", &bit_warned);
    script_cmsgpack_open(L);
    static const char *const removed[] = {"loadfile", "dofile",   "print",  "setfenv",
                                          "getfenv",  "newproxy", "module", "require"};
    for (size_t i = 0; i < sizeof(removed) / sizeof(removed[0]); i++) {
        lua_pushnil(L);
        lua_setglobal(L, removed[i]);
    }
    lua_newtable(L);
    sl__set_fn(L, "call", sl__redis_call);
    sl__set_fn(L, "pcall", sl__redis_pcall);
    sl__set_fn(L, "error_reply", sl__error_reply);
    sl__set_fn(L, "status_reply", sl__status_reply);
    sl__set_fn(L, "sha1hex", sl__redis_sha1hex);
    sl__set_fn(L, "log", sl__redis_log);
    sl__set_fn(L, "setresp", sl__redis_setresp);
    sl__set_fn(L, "set_repl", sl__redis_noop);
    sl__set_fn(L, "replicate_commands", sl__redis_true);
    sl__set_fn(L, "debug", sl__redis_noop);
    sl__redis_consts(sl, L);
    lua_setglobal(L, "redis");
    /* globals are read-only, and reading an undeclared one is an error */
    lua_pushvalue(L, LUA_GLOBALSINDEX);
    sl__guard(L, -1);
    lua_pop(L, 1);
    return L;
}

static void sl__setup(script_lua *sl)
{
    sl->L = sl__new_state(sl);
    /* the cache: registry["cairn_scripts"][sha] = compiled chunk */
    lua_newtable(sl->L);
    lua_setfield(sl->L, LUA_REGISTRYINDEX, "cairn_scripts");
    sl->nscripts = 0;
}

script_lua *script_lua_new(const char *redis_version)
{
    script_lua *sl = xcalloc(1, sizeof(*sl));
    snprintf(sl->version, sizeof(sl->version), "%s", redis_version);
    sl->resp = 2;
    sl__setup(sl);
    return sl;
}

static void sl__functions_drop(script_lua *sl);

void script_lua_free(script_lua *sl)
{
    if (!sl) return;
    if (sl->co) script_lua_kill(sl, NULL);
    sl__functions_drop(sl);
    lua_close(sl->L);
    free(sl->name);
    buf_close(&sl->call_reply);
    free(sl);
}

void script_lua_flush(script_lua *sl)
{
    if (sl->co) script_lua_kill(sl, NULL); /* never while busy (resp_script.c); to be safe */
    lua_close(sl->L);
    sl->co_L = NULL;
    sl->used = 0;
    sl__setup(sl);
}

size_t script_lua_count(const script_lua *sl)
{
    return sl->nscripts;
}

size_t script_lua_memory(const script_lua *sl)
{
    return sl->used;
}

/* Push registry.cairn_scripts[sha] (nil when absent). */
static void sl__get_cached(lua_State *L, const char *sha)
{
    lua_getfield(L, LUA_REGISTRYINDEX, "cairn_scripts");
    lua_getfield(L, -1, sha);
    lua_remove(L, -2);
}

bool script_lua_load(script_lua *sl, const char *body, size_t len, char sha[SCRIPT_SHA_LEN + 1],
                     buf *err)
{
    lua_State *L = sl->L;
    sl__sha1hex(body, len, sha);
    sl__get_cached(L, sha);
    bool cached = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (cached) return true;
    int st = luaL_loadbuffer(L, body, len, "@user_script");
    if (st != 0) {
        const char *m = lua_tostring(L, -1);
        if (st == LUA_ERRMEM)
            resp_write_error(err, "ERR script compilation ran out of memory (the Lua heap limit)");
        else
            resp_write_errorf(err, "ERR Error compiling script (new function): %s", m ? m : "?");
        lua_pop(L, 1);
        return false;
    }
    lua_getfield(L, LUA_REGISTRYINDEX, "cairn_scripts");
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, sha);
    lua_pop(L, 2);
    sl->nscripts++;
    return true;
}

bool script_lua_find(script_lua *sl, const char *sha, size_t len, char out[SCRIPT_SHA_LEN + 1])
{
    if (len != SCRIPT_SHA_LEN) return false;
    for (size_t i = 0; i < len; i++) {
        char c = sha[i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    out[len] = '\0';
    sl__get_cached(sl->L, out);
    bool found = !lua_isnil(sl->L, -1);
    lua_pop(sl->L, 1);
    return found;
}

static void sl__set_array(lua_State *L, const char *name, const resp_arg *v, size_t n)
{
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushlstring(L, v[i].ptr, v[i].len);
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_pushstring(L, name);
    lua_insert(L, -2);
    lua_rawset(L, LUA_GLOBALSINDEX); /* past the read-only guard */
}

/* The error a run ended with: Redis' message and where it was raised. */
static void sl__write_error(script_lua *sl, lua_State *L, buf *out)
{
    if (!lua_istable(L, -1)) {
        const char *m = lua_tostring(L, -1);
        resp_write_errorf(out, "ERR Error running script %s, %.100s", sl->name,
                          m ? m : "execution failure");
        return;
    }
    int t = lua_gettop(L);
    buf msg;
    buf_init(&msg);
    if (sl__field(L, t, "err", LUA_TSTRING)) {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        if (n && s[0] == '-') s++, n--;
        buf_append(&msg, s, n);
        lua_pop(L, 1);
    }
    lua_getfield(L, t, "source");
    lua_getfield(L, t, "line");
    if (lua_isstring(L, -2) && lua_isnumber(L, -1)) {
        char tail[256];
        int n = snprintf(tail, sizeof(tail), " script: %s, on %s:%d.", sl->name,
                         lua_tostring(L, -2), (int)lua_tonumber(L, -1));
        buf_append(&msg, tail, (size_t)n < sizeof(tail) ? (size_t)n : sizeof(tail) - 1);
    }
    lua_pop(L, 2);
    sl__write_line(out, '-', msg.data ? msg.data : "", msg.len);
    buf_close(&msg);
}

/* The coroutine runs are made in, in owner (L or F): one kept from run to
 * run (a coroutine that returned can start another function), anchored in
 * owner's registry; a new one after one died of an error or was killed. */
static lua_State *sl__coroutine(lua_State *owner, lua_State **slot)
{
    if (*slot) return *slot;
    *slot = lua_newthread(owner);
    lua_setfield(owner, LUA_REGISTRYINDEX, "cairn_co");
    return *slot;
}

/* The run is over: forget it (and its coroutine when it cannot run again). */
static void sl__end(script_lua *sl, bool reusable)
{
    lua_State *owner = sl->co_slot == &sl->co_F ? sl->F : sl->L;
    lua_sethook(sl->co, NULL, 0, 0);
    if (reusable) {
        lua_settop(sl->co, 0);
    } else {
        *sl->co_slot = NULL;
        lua_pushnil(owner);
        lua_setfield(owner, LUA_REGISTRYINDEX, "cairn_co");
    }
    sl->co = NULL;
    sl->co_slot = NULL;
    sl->call = NULL;
    sl->call_ctx = NULL;
    sl->stop = NULL;
    if (sl->name) sl->name[0] = '\0'; /* its allocation serves the next run */
    /* as Redis: a step of collection every SCRIPT_GC_PERIOD runs, sized for
     * them (a step after every run cost a sixth of EVALSHA's time) */
    if (++sl->runs_since_gc >= SCRIPT_GC_PERIOD) {
        sl->runs_since_gc = 0;
        lua_gc(owner, LUA_GCSTEP, SCRIPT_GC_PERIOD);
    }
}

/* Resume the run (nargs arguments on its stack the first time) until it
 * returns, fails or yields. */
static script_outcome sl__step(script_lua *sl, int nargs, buf *out)
{
    lua_State *co = sl->co;
    sl->hook_yielded = false;
    int st = lua_resume(co, nargs);
    if (st == LUA_YIELD && sl->hook_yielded) {
        sl->check_ns = sl__now_ns() + SCRIPT_SLICE_MS * 1000000ull;
        return SCRIPT_BUSY;
    }
    lua_State *owner = sl->co_slot == &sl->co_F ? sl->F : sl->L;
    script_outcome outcome = SCRIPT_RAN;
    if (st == 0) {
        lua_settop(co, 1); /* its first value (nil when none) */
        sl__write_value(co, sl->proto, out, 0);
    } else if (st == LUA_ERRMEM) {
        resp_write_errorf(out,
                          "ERR script stopped: it used more than the Lua heap limit (%u MiB); "
                          "none of its writes were applied",
                          SCRIPT_LUA_MEMORY_LIMIT >> 20);
        outcome = SCRIPT_STOPPED;
    } else {
        /* an error (the coroutine is dead, its frames still there to say
         * where), or the script itself yielded (coroutine.yield outside a
         * coroutine of its own: Redis' error, as from its pcall) */
        lua_Debug ar;
        bool have = sl__where(co, 0, &ar);
        if (st == LUA_YIELD)
            lua_pushstring(owner, "attempt to yield across metamethod/C-call boundary");
        else
            lua_xmove(co, owner, 1);
        sl__error_table(owner, have ? &ar : NULL);
        sl__write_error(sl, owner, out);
        lua_settop(owner, 0);
        if (sl->stop) outcome = SCRIPT_STOPPED;
    }
    sl__end(sl, st == 0);
    return outcome;
}

/* Start the function under nargs arguments on owner's stack as the run. */
static script_outcome sl__start(script_lua *sl, lua_State *owner, lua_State **slot, int nargs,
                                int proto, script_time time, buf *out)
{
    lua_State *co = sl__coroutine(owner, slot);
    lua_settop(co, 0);
    lua_xmove(owner, co, nargs + 1);
    sl->co = co;
    sl->co_slot = slot;
    sl->proto = proto;
    sl->stop = NULL;
    sl->unyielding_ns = 0;
    sl->may_yield = time.may_yield;
    /* at most ~31 years, so the nanoseconds cannot overflow */
    uint64_t after_ms =
        time.busy_after_ms < 1000000000000ull ? time.busy_after_ms : 1000000000000ull;
    /* from when the caller says it started (the loop's clock: no clock read
     * per run) */
    sl->check_ns = time.started_ms * 1000000ull + after_ms * 1000000ull;
    uint64_t limit_ms = after_ms > SCRIPT_UNYIELDING_MIN_MS ? after_ms : SCRIPT_UNYIELDING_MIN_MS;
    sl->unyielding_limit_ns = limit_ms * 1000000ull;
    lua_sethook(co, sl__hook, LUA_MASKCOUNT, SCRIPT_HOOK_EVERY);
    return sl__step(sl, nargs, out);
}

bool script_lua_busy(const script_lua *sl)
{
    return sl->co != NULL;
}

script_outcome script_lua_resume(script_lua *sl, buf *out)
{
    return sl__step(sl, 0, out);
}

void script_lua_kill(script_lua *sl, buf *out)
{
    if (out) {
        lua_State *owner = sl->co_slot == &sl->co_F ? sl->F : sl->L;
        lua_Debug ar;
        bool have = sl__where(sl->co, 0, &ar);
        lua_pushstring(owner, "Script killed by user with SCRIPT KILL...");
        sl__error_table(owner, NULL);
        if (have) {
            lua_pushstring(owner, ar.source);
            lua_setfield(owner, -2, "source");
            lua_pushnumber(owner, ar.currentline);
            lua_setfield(owner, -2, "line");
        }
        sl__write_error(sl, owner, out);
        lua_settop(owner, 0);
    }
    sl__end(sl, false); /* a suspended coroutine is garbage once unanchored */
}

static void sl__begin(script_lua *sl, lua_State *L, const char *name, script_call_fn call,
                      void *ctx)
{
    lua_settop(L, 0);
    sl->call = call;
    sl->call_ctx = ctx;
    sl->resp = 2;
    size_t n = strlen(name) + 1;
    if (n > sl->name_cap) {
        sl->name = xrealloc(sl->name, n);
        sl->name_cap = n;
    }
    memcpy(sl->name, name, n);
}

script_outcome script_lua_run(script_lua *sl, const char sha[SCRIPT_SHA_LEN + 1],
                              const resp_arg *keys, size_t nkeys, const resp_arg *args,
                              size_t nargs, int proto, script_time time, script_call_fn call,
                              void *ctx, buf *out)
{
    lua_State *L = sl->L;
    sl__begin(sl, L, sha, call, ctx);
    sl__get_cached(L, sha);
    if (lua_isnil(L, -1)) {
        lua_settop(L, 0);
        sl->call = NULL;
        sl->call_ctx = NULL;
        resp_write_error(out, "NOSCRIPT No matching script. Please use EVAL.");
        return SCRIPT_RAN;
    }
    sl__set_array(L, "KEYS", keys, nkeys);
    sl__set_array(L, "ARGV", args, nargs);
    return sl__start(sl, L, &sl->co_L, 0, proto, time, out);
}

/* ---- FUNCTION: libraries and their functions ------------------------------------------ */

static const char *const sl__flag_names[] = {"no-writes", "allow-oom", "allow-stale", "no-cluster",
                                             "allow-cross-slot-keys"};

static bool sl__valid_name(const char *p, size_t n)
{
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

static void sl__fn_free(script_function *f)
{
    free(f->name);
    free(f->library);
    free(f->description);
}

/* The library being loaded: register_function adds to it. */
typedef struct sl_loading {
    const char *library;
    script_function *fns;
    size_t n, cap;
} sl_loading;

static char *sl__strndup(const char *p, size_t n)
{
    char *s = xmalloc(n + 1);
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static int sl__register_function(lua_State *L)
{
    script_lua *sl = sl__of(L);
    sl_loading *ld = sl->loading;
    if (!ld)
        return sl__raise(L,
                         "ERR redis.register_function can only be called on FUNCTION LOAD command");
    int argc = lua_gettop(L);
    const char *name = NULL, *desc = NULL;
    size_t name_len = 0, desc_len = 0;
    uint32_t flags = 0;
    int cb = 0;
    if (argc == 1) {
        if (!lua_istable(L, 1))
            return sl__raise(L, "ERR calling redis.register_function with a single argument is "
                                "only applicable to Lua table (representing named arguments).");
        lua_pushnil(L);
        while (lua_next(L, 1)) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
            if (!k)
                return sl__raise(
                    L, "ERR named argument key given to redis.register_function is not a string");
            if (strcmp(k, "function_name") == 0) {
                if (lua_type(L, -1) != LUA_TSTRING)
                    return sl__raise(L, "ERR function_name argument given to "
                                        "redis.register_function must be a string");
                name = lua_tolstring(L, -1, &name_len);
            } else if (strcmp(k, "description") == 0) {
                if (lua_type(L, -1) != LUA_TSTRING)
                    return sl__raise(L, "ERR description argument given to redis.register_function "
                                        "must be a string");
                desc = lua_tolstring(L, -1, &desc_len);
            } else if (strcmp(k, "callback") == 0) {
                if (lua_type(L, -1) != LUA_TFUNCTION)
                    return sl__raise(L, "ERR callback argument given to redis.register_function "
                                        "must be a function");
                cb = 1;
            } else if (strcmp(k, "flags") == 0) {
                if (!lua_istable(L, -1))
                    return sl__raise(L, "ERR flags argument to redis.register_function must be a "
                                        "table representing function flags");
                for (int i = 1;; i++) {
                    lua_rawgeti(L, -1, i);
                    if (lua_isnil(L, -1)) {
                        lua_pop(L, 1);
                        break;
                    }
                    const char *f = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
                    size_t b = 0;
                    while (f && b < sizeof(sl__flag_names) / sizeof(sl__flag_names[0]) &&
                           strcmp(f, sl__flag_names[b]) != 0)
                        b++;
                    lua_pop(L, 1);
                    if (!f || b == sizeof(sl__flag_names) / sizeof(sl__flag_names[0]))
                        return sl__raise(L, "ERR unknown flag given");
                    flags |= 1u << b;
                }
            } else {
                return sl__raise(L, "ERR unknown argument given to redis.register_function");
            }
            lua_pop(L, 1);
        }
        if (!name)
            return sl__raise(L, "ERR redis.register_function must get a function name argument");
        if (!cb) return sl__raise(L, "ERR redis.register_function must get a callback argument");
        lua_getfield(L, 1, "callback");
    } else if (argc == 2) {
        if (lua_type(L, 1) != LUA_TSTRING)
            return sl__raise(L, "ERR first argument to redis.register_function must be a string");
        if (lua_type(L, 2) != LUA_TFUNCTION)
            return sl__raise(L,
                             "ERR second argument to redis.register_function must be a function");
        name = lua_tolstring(L, 1, &name_len);
        lua_pushvalue(L, 2);
    } else {
        return sl__raise(L, "ERR wrong number of arguments to redis.register_function");
    }
    if (!sl__valid_name(name, name_len))
        return sl__raise(L, "ERR Library names can only contain letters, numbers, or "
                            "underscores(_) and must be at least one character long");
    for (size_t i = 0; i < ld->n; i++)
        if (strlen(ld->fns[i].name) == name_len && memcmp(ld->fns[i].name, name, name_len) == 0)
            return sl__raise(L, "ERR Function already exists in the library");
    if (ld->n == ld->cap) {
        ld->cap = ld->cap ? 2 * ld->cap : 4;
        ld->fns = xrealloc(ld->fns, ld->cap * sizeof(*ld->fns));
    }
    script_function *f = &ld->fns[ld->n++];
    memset(f, 0, sizeof(*f));
    f->name = sl__strndup(name, name_len);
    f->library = sl__strndup(ld->library, strlen(ld->library));
    f->description = desc ? sl__strndup(desc, desc_len) : NULL;
    f->flags = flags;
    f->ref = luaL_ref(L, LUA_REGISTRYINDEX); /* the callback, on top */
    return 0;
}

/* The redis table a library's code sees while it loads. */
static void sl__push_load_table(script_lua *sl, lua_State *L)
{
    lua_newtable(L);
    sl__set_fn(L, "register_function", sl__register_function);
    sl__set_fn(L, "log", sl__redis_log);
    sl__redis_consts(sl, L);
    sl__guard(L, -1);
}

/* Parse "#!lua name=<lib>" (the first line); the library's name into
 * name/len, the code after that line at *body. */
static bool sl__library_meta(const char *code, size_t len, const char **name, size_t *name_len,
                             size_t *body, buf *err)
{
    if (len < 2 || code[0] != '#' || code[1] != '!') {
        resp_write_error(err, "ERR Missing library metadata");
        return false;
    }
    const char *nl = memchr(code, '\n', len);
    size_t line = nl ? (size_t)(nl - code) : len;
    *body = line; /* the newline stays: line numbers count the shebang */
    size_t i = 2, tok = 0;
    *name = NULL;
    *name_len = 0;
    bool named = false;
    while (i < line) {
        while (i < line && code[i] == ' ') i++;
        size_t from = i;
        while (i < line && code[i] != ' ') i++;
        if (i == from) break;
        const char *t = code + from;
        size_t tl = i - from;
        if (tok++ == 0) {
            if (!(tl == 3 && strncasecmp(t, "lua", 3) == 0)) {
                resp_write_errorf(err, "ERR Engine '%.*s' not found", (int)tl, t);
                return false;
            }
        } else if (tl == 5 && memcmp(t, "name=", 5) == 0) {
            break; /* an empty name: no name */
        } else if (tl > 5 && memcmp(t, "name=", 5) == 0) {
            *name = t + 5;
            *name_len = tl - 5;
            named = true;
        } else {
            resp_write_errorf(err, "ERR Invalid metadata value given: %.*s", (int)tl, t);
            return false;
        }
    }
    if (!named) {
        resp_write_error(err, "ERR Invalid library metadata");
        return false;
    }
    if (!sl__valid_name(*name, *name_len)) {
        resp_write_error(err, "ERR Library names can only contain letters, numbers, or "
                              "underscores(_) and must be at least one character long");
        return false;
    }
    return true;
}

bool script_lua_library_name(const char *code, size_t len, const char **name, size_t *name_len)
{
    buf err;
    buf_init(&err);
    size_t body;
    bool ok = sl__library_meta(code, len, name, name_len, &body, &err);
    buf_close(&err);
    return ok;
}

/* Load a library's code into L: its functions are appended to ld. */
static bool sl__load_library(script_lua *sl, lua_State *L, const char *code, size_t len,
                             sl_loading *ld, buf *err)
{
    const char *name;
    size_t name_len, body;
    if (!sl__library_meta(code, len, &name, &name_len, &body, err)) return false;
    char *lib = sl__strndup(name, name_len);
    ld->library = lib;
    size_t first = ld->n;
    lua_settop(L, 0);
    lua_pushcfunction(L, sl__on_error);
    bool ok = false;
    int st = luaL_loadbuffer(L, code + body, len - body, "@user_function");
    if (st != 0) {
        const char *m = lua_tostring(L, -1);
        resp_write_errorf(err, "ERR Error compiling function: %s", m ? m : "?");
        goto done;
    }
    /* the load-time redis table in place of the running one */
    lua_pushstring(L, "redis");
    sl__push_load_table(sl, L);
    lua_rawset(L, LUA_GLOBALSINDEX);
    sl->loading = ld;
    sl->stop = NULL; /* a busy run, if any, is suspended with none */
    sl->load_deadline_ns = sl__now_ns() + SCRIPT_LOAD_TIME_LIMIT_MS * 1000000u;
    lua_sethook(L, sl__hook, LUA_MASKCOUNT, SCRIPT_HOOK_EVERY);
    st = lua_pcall(L, 0, 0, 1);
    lua_sethook(L, NULL, 0, 0);
    sl->loading = NULL;
    sl->stop = NULL;
    lua_pushstring(L, "redis");
    lua_getfield(L, LUA_REGISTRYINDEX, "cairn_redis");
    lua_rawset(L, LUA_GLOBALSINDEX);
    if (st != 0) {
        const char *m = NULL;
        if (lua_istable(L, -1)) {
            lua_getfield(L, -1, "err");
            m = lua_tostring(L, -1);
        }
        resp_write_errorf(err, "ERR Error registering functions: %s",
                          m ? m : "out of memory or time");
        goto done;
    }
    if (ld->n == first) {
        resp_write_error(err, "ERR No functions registered");
        goto done;
    }
    ok = true;
done:
    if (!ok) {
        for (size_t i = first; i < ld->n; i++) {
            luaL_unref(L, LUA_REGISTRYINDEX, ld->fns[i].ref);
            sl__fn_free(&ld->fns[i]);
        }
        ld->n = first;
    }
    lua_settop(L, 0);
    ld->library = NULL;
    free(lib);
    return ok;
}

static lua_State *sl__new_functions_state(script_lua *sl)
{
    lua_State *L = sl__new_state(sl);
    lua_getglobal(L, "redis");
    lua_setfield(L, LUA_REGISTRYINDEX, "cairn_redis"); /* the running table, kept */
    return L;
}

bool script_lua_check_library(script_lua *sl, const char *code, size_t len, buf *name, buf *fnames,
                              uint32_t *nfn, buf *err)
{
    lua_State *L = sl__new_functions_state(sl);
    sl_loading ld;
    memset(&ld, 0, sizeof(ld));
    bool ok = sl__load_library(sl, L, code, len, &ld, err);
    if (ok) {
        const char *n;
        size_t nl, body;
        sl__library_meta(code, len, &n, &nl, &body, err);
        buf_append(name, n, nl);
        for (size_t i = 0; i < ld.n; i++) {
            uint32_t l = (uint32_t)strlen(ld.fns[i].name);
            buf_append(fnames, &l, sizeof(l));
            buf_append(fnames, ld.fns[i].name, l);
        }
        *nfn = (uint32_t)ld.n;
    }
    for (size_t i = 0; i < ld.n; i++) sl__fn_free(&ld.fns[i]);
    free(ld.fns);
    lua_close(L);
    return ok;
}

static void sl__functions_drop(script_lua *sl)
{
    if (sl->co && sl->co_slot == &sl->co_F) script_lua_kill(sl, NULL); /* never, to be safe */
    sl->co_F = NULL;
    for (size_t i = 0; i < sl->nfns; i++) sl__fn_free(&sl->fns[i]);
    free(sl->fns);
    sl->fns = NULL;
    sl->nfns = 0;
    if (sl->F) lua_close(sl->F);
    sl->F = NULL;
}

void script_lua_functions_reload(script_lua *sl, const kv_functions *f)
{
    sl__functions_drop(sl);
    sl->F = sl__new_functions_state(sl);
    sl_loading ld;
    memset(&ld, 0, sizeof(ld));
    for (uint32_t i = 0; i < f->n; i++) {
        buf err;
        buf_init(&err);
        if (!sl__load_library(sl, sl->F, f->libs[i].code, f->libs[i].code_len, &ld, &err))
            LOG_WARN("a function library does not load here (its functions are missing)",
                     LF_B("library", f->libs[i].name, f->libs[i].name_len),
                     LF_B("error", err.data ? err.data : "", err.len));
        buf_close(&err);
    }
    sl->fns = ld.fns;
    sl->nfns = ld.n;
    sl->functions_gen = f->gen;
    sl->functions_loaded = true;
}

bool script_lua_functions_current(const script_lua *sl, uint64_t gen)
{
    return sl->functions_loaded && sl->functions_gen == gen;
}

const script_function *script_lua_function(const script_lua *sl, const char *name, size_t len)
{
    for (size_t i = 0; i < sl->nfns; i++)
        if (strlen(sl->fns[i].name) == len && memcmp(sl->fns[i].name, name, len) == 0)
            return &sl->fns[i];
    return NULL;
}

const script_function *script_lua_functions(const script_lua *sl, size_t *n)
{
    *n = sl->nfns;
    return sl->fns;
}

const char *script_lua_flag_name(int bit)
{
    return bit >= 0 && bit < SCRIPT_FLAG_COUNT ? sl__flag_names[bit] : NULL;
}

script_outcome script_lua_fcall(script_lua *sl, const script_function *fn, const resp_arg *keys,
                                size_t nkeys, const resp_arg *args, size_t nargs, int proto,
                                script_time time, script_call_fn call, void *ctx, buf *out)
{
    lua_State *L = sl->F;
    sl__begin(sl, L, fn->name, call, ctx);
    lua_rawgeti(L, LUA_REGISTRYINDEX, fn->ref);
    for (int k = 0; k < 2; k++) {
        const resp_arg *v = k ? args : keys;
        size_t n = k ? nargs : nkeys;
        lua_createtable(L, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            lua_pushlstring(L, v[i].ptr, v[i].len);
            lua_rawseti(L, -2, (int)i + 1);
        }
    }
    return sl__start(sl, L, &sl->co_F, 2, proto, time, out);
}
