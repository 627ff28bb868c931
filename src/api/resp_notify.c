/* resp_notify: keyspace notifications (notify-keyspace-events).
 *
 * Every node applies every change, so every node emits the notifications
 * of the changes it applies, to its own subscribers, as Redis does on each
 * of its nodes: `__keyspace@0__:<key>` with the event, `__keyevent@0__:
 * <event>` with the key, for the classes CONFIG SET notify-keyspace-events
 * turned on (a node-local setting, as in Redis). The event names are
 * Redis 7.0's, taken from the command that made the change (kv_change.cmd):
 * "set", "del", "expire", "lpush", "hset", "zincr", "rename_from",
 * "expired" for the leader's expiry cycle, "evicted" for --maxmemory
 * evictions, "new" for a created key (class n) ... Like published
 * messages, notifications are at most once: a node replaying or catching
 * up on entries older than its start emits none of them. */
#include <string.h>

#include "api/resp_internal.h"
#include "kv/set.h"
#include "kv/zset.h"
#include "util/clock.h"

enum {
    N_GENERIC = 1 << 0,   /* g */
    N_STRING = 1 << 1,    /* $ */
    N_LIST = 1 << 2,      /* l */
    N_SET = 1 << 3,       /* s */
    N_HASH = 1 << 4,      /* h */
    N_ZSET = 1 << 5,      /* z */
    N_EXPIRED = 1 << 6,   /* x */
    N_EVICTED = 1 << 7,   /* e */
    N_STREAM = 1 << 8,    /* t */
    N_MODULE = 1 << 9,    /* d */
    N_NEW = 1 << 10,      /* n */
    N_KEYSPACE = 1 << 11, /* K */
    N_KEYEVENT = 1 << 12, /* E */
    N_KEY_MISS = 1 << 13, /* m */
    N_ALL = N_GENERIC | N_STRING | N_LIST | N_SET | N_HASH | N_ZSET | N_EXPIRED | N_EVICTED |
            N_STREAM | N_MODULE,
};

static const struct {
    char c;
    uint32_t flag;
} notify__chars[] = {{'g', N_GENERIC},  {'$', N_STRING},  {'l', N_LIST},    {'s', N_SET},
                     {'h', N_HASH},     {'z', N_ZSET},    {'x', N_EXPIRED}, {'e', N_EVICTED},
                     {'t', N_STREAM},   {'d', N_MODULE},  {'n', N_NEW},     {'K', N_KEYSPACE},
                     {'E', N_KEYEVENT}, {'m', N_KEY_MISS}};

bool resp_notify_parse(const char *s, size_t n, uint32_t *flags)
{
    uint32_t f = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == 'A') {
            f |= N_ALL;
            continue;
        }
        size_t k = 0;
        while (k < sizeof(notify__chars) / sizeof(notify__chars[0]) && notify__chars[k].c != s[i])
            k++;
        if (k == sizeof(notify__chars) / sizeof(notify__chars[0])) return false;
        f |= notify__chars[k].flag;
    }
    *flags = f;
    return true;
}

size_t resp_notify_format(uint32_t flags, char out[32])
{
    size_t n = 0;
    if ((flags & N_ALL) == N_ALL) {
        out[n++] = 'A';
    } else {
        static const char order[] = "g$lshzxetdn";
        for (const char *p = order; *p; p++)
            for (size_t k = 0; k < sizeof(notify__chars) / sizeof(notify__chars[0]); k++)
                if (notify__chars[k].c == *p && (flags & notify__chars[k].flag)) out[n++] = *p;
    }
    if (flags & N_KEYSPACE) out[n++] = 'K';
    if (flags & N_KEYEVENT) out[n++] = 'E';
    if (flags & N_KEY_MISS) out[n++] = 'm';
    out[n] = '\0';
    return n;
}

static void notify__emit(resp_api *ra, uint32_t cls, const char *event, const char *key,
                         size_t klen)
{
    uint32_t f = ra->notify_flags;
    if (!(f & cls)) return;
    size_t elen = strlen(event);
    buf ch;
    buf_init(&ch);
    if (f & N_KEYSPACE) {
        buf_append(&ch, "__keyspace@0__:", 15);
        buf_append(&ch, key, klen);
        resp_pubsub_local(ra, (kv_slice){ch.data, ch.len}, (kv_slice){event, elen});
    }
    if (f & N_KEYEVENT) {
        buf_reset(&ch);
        buf_append(&ch, "__keyevent@0__:", 15);
        buf_append(&ch, event, elen);
        resp_pubsub_local(ra, (kv_slice){ch.data, ch.len}, (kv_slice){key, klen});
    }
    buf_close(&ch);
}

static bool notify__is(const kv_change *c, uint32_t arg)
{
    const kv_command *cmd = c->cmd;
    return arg < cmd->nargs && cmd->args[arg].len == c->key_len &&
           memcmp(cmd->args[arg].ptr, c->key, c->key_len) == 0;
}

void resp_notify_change(resp_api *ra, const kv_change *c)
{
    uint32_t f = ra->notify_flags;
    if (!(f & (N_KEYSPACE | N_KEYEVENT)) || !c->cmd || c->kind == KV_CHANGE_FLUSH ||
        c->kind == KV_CHANGE_RESET)
        return;
    if (c->now_ms && c->now_ms < ra->notify_since_ms) return; /* replayed: at most once */
    const kv_command *cmd = c->cmd;
    if (c->kind == KV_CHANGE_EXPIRED) {
        notify__emit(ra, N_EXPIRED, "expired", c->key, c->key_len);
        return;
    }
    bool put = c->kind == KV_CHANGE_PUT, del = c->kind == KV_CHANGE_DELETE;
    const char *ev = NULL, *after = NULL;
    uint32_t cls = N_GENERIC;
    /* an emptied collection: its command's event, then "del" */
    bool emptied = del;
    switch (cmd->op) {
    case KV_OP_PUT:
    case KV_OP_MSET:
        if (put && cmd->op == KV_OP_PUT && cmd->expire_ms) after = "expire";
        ev = "set", cls = N_STRING, emptied = false;
        break;
    case KV_OP_DEL:
        ev = cmd->b == 1 ? "evicted" : "del", cls = cmd->b == 1 ? N_EVICTED : N_GENERIC;
        emptied = false;
        break;
    case KV_OP_INCR:
        ev = "incrby", cls = N_STRING;
        break;
    case KV_OP_INCRFLOAT:
        ev = "incrbyfloat", cls = N_STRING;
        break;
    case KV_OP_APPEND:
        ev = "append", cls = N_STRING;
        break;
    case KV_OP_SETRANGE:
        ev = "setrange", cls = N_STRING;
        break;
    case KV_OP_EXPIRE:
        ev = del ? "del" : "expire", emptied = false;
        break;
    case KV_OP_PERSIST:
        ev = "persist";
        break;
    case KV_OP_GETEX:
        ev = del ? "del" : (cmd->flags & KV_FLAG_PERSIST) ? "persist" : "expire", emptied = false;
        break;
    case KV_OP_RENAME:
        /* Redis: "new" for the destination, "rename_from", "rename_to";
         * the store reports the source's delete first: it waits */
        if (del) {
            buf_reset(&ra->notify_held);
            buf_append(&ra->notify_held, c->key, c->key_len);
            return;
        }
        if (c->created) notify__emit(ra, N_NEW, "new", c->key, c->key_len);
        notify__emit(ra, N_GENERIC, "rename_from", ra->notify_held.data ? ra->notify_held.data : "",
                     ra->notify_held.len);
        notify__emit(ra, N_GENERIC, "rename_to", c->key, c->key_len);
        buf_reset(&ra->notify_held);
        return;
    case KV_OP_EXPIRE_KEYS:
        ev = "expired", cls = N_EXPIRED, emptied = false;
        break;
    case KV_OP_HSET:
        ev = "hset", cls = N_HASH;
        break;
    case KV_OP_HDEL:
        ev = "hdel", cls = N_HASH;
        break;
    case KV_OP_HINCR:
        ev = "hincrby", cls = N_HASH;
        break;
    case KV_OP_HINCRFLOAT:
        ev = "hincrbyfloat", cls = N_HASH;
        break;
    case KV_OP_LPUSH:
        ev = cmd->a == 1 ? "lpush" : "rpush", cls = N_LIST;
        break;
    case KV_OP_LPOP:
        ev = (cmd->a & 1) ? "lpop" : "rpop", cls = N_LIST;
        break;
    case KV_OP_LMPOP:
        ev = cmd->a == 1 ? "lpop" : "rpop", cls = N_LIST;
        break;
    case KV_OP_LSET:
        ev = "lset", cls = N_LIST;
        break;
    case KV_OP_LREM:
        ev = "lrem", cls = N_LIST;
        break;
    case KV_OP_LTRIM:
        ev = "ltrim", cls = N_LIST;
        break;
    case KV_OP_LINSERT:
        ev = "linsert", cls = N_LIST;
        break;
    case KV_OP_LMOVE: {
        /* Redis tells the push (destination) before the pop (source);
         * the store reports the source first: it waits for the other */
        const char *pop = cmd->a == 1 ? "lpop" : "rpop", *push = cmd->b == 1 ? "lpush" : "rpush";
        bool same = cmd->args[0].len == cmd->args[1].len &&
                    memcmp(cmd->args[0].ptr, cmd->args[1].ptr, cmd->args[0].len) == 0;
        if (!same && notify__is(c, 0)) {
            buf_reset(&ra->notify_held);
            buf_append(&ra->notify_held, c->key, c->key_len);
            ra->notify_held_del = del;
            return;
        }
        if (c->created) notify__emit(ra, N_NEW, "new", c->key, c->key_len);
        notify__emit(ra, N_LIST, push, c->key, c->key_len);
        const char *src = same ? c->key : ra->notify_held.data ? ra->notify_held.data : "";
        size_t slen = same ? c->key_len : ra->notify_held.len;
        notify__emit(ra, N_LIST, pop, src, slen);
        if (!same && ra->notify_held_del) notify__emit(ra, N_GENERIC, "del", src, slen);
        buf_reset(&ra->notify_held);
        return;
    }
    case KV_OP_SADD:
        ev = "sadd", cls = N_SET;
        break;
    case KV_OP_SREM:
        ev = "srem", cls = N_SET;
        break;
    case KV_OP_SPOP:
        ev = "spop", cls = N_SET;
        break;
    case KV_OP_SMOVE:
        cls = N_SET;
        ev = notify__is(c, 1) && !del ? "sadd" : "srem";
        break;
    case KV_OP_SSTORE:
        ev = del                      ? "del"
             : cmd->a == KV_SET_INTER ? "sinterstore"
             : cmd->a == KV_SET_UNION ? "sunionstore"
                                      : "sdiffstore";
        cls = del ? N_GENERIC : N_SET, emptied = false;
        break;
    case KV_OP_ZADD:
        ev = (cmd->a & KV_ZADD_INCR) ? "zincr" : "zadd", cls = N_ZSET;
        break;
    case KV_OP_ZREM:
        ev = "zrem", cls = N_ZSET;
        break;
    case KV_OP_ZPOP:
        ev = cmd->b == 1 ? "zpopmax" : "zpopmin", cls = N_ZSET;
        break;
    case KV_OP_ZMPOP:
        ev = cmd->a == 1 ? "zpopmax" : "zpopmin", cls = N_ZSET;
        break;
    case KV_OP_ZREMRANGEBYRANK:
        ev = "zremrangebyrank", cls = N_ZSET;
        break;
    case KV_OP_ZREMRANGEBYSCORE:
        ev = "zremrangebyscore", cls = N_ZSET;
        break;
    case KV_OP_ZREMRANGEBYLEX:
        ev = "zremrangebylex", cls = N_ZSET;
        break;
    case KV_OP_ZSTORE:
        ev = del                        ? "del"
             : cmd->a == KV_ZCOMB_UNION ? "zunionstore"
             : cmd->a == KV_ZCOMB_INTER ? "zinterstore"
                                        : "zdiffstore";
        cls = del ? N_GENERIC : N_ZSET, emptied = false;
        break;
    case KV_OP_ZRANGESTORE:
        ev = del ? "del" : "zrangestore", cls = del ? N_GENERIC : N_ZSET, emptied = false;
        break;
    case KV_OP_SETBIT:
    case KV_OP_BITFIELD:
        ev = "setbit", cls = N_STRING;
        break;
    case KV_OP_BITOP:
        ev = del ? "del" : "set", cls = del ? N_GENERIC : N_STRING, emptied = false;
        break;
    case KV_OP_PFADD:
    case KV_OP_PFMERGE:
        ev = "pfadd", cls = N_STRING;
        break;
    case KV_OP_COPY:
        ev = del ? "del" : "copy_to", emptied = false;
        break;
    case KV_OP_SORTSTORE:
        ev = del ? "del" : "sortstore", cls = del ? N_GENERIC : N_LIST, emptied = false;
        break;
    case KV_OP_RESTORE:
        ev = del ? "del" : "restore", emptied = false;
        break;
    case KV_OP_XADD:
        ev = "xadd", cls = N_STREAM, emptied = false;
        break;
    case KV_OP_XDEL:
        ev = "xdel", cls = N_STREAM, emptied = false;
        break;
    case KV_OP_XTRIM:
        ev = "xtrim", cls = N_STREAM, emptied = false;
        break;
    case KV_OP_XSETID:
        ev = "xsetid", cls = N_STREAM, emptied = false;
        break;
    case KV_OP_XREADGROUP:
    case KV_OP_XCLAIM:
    case KV_OP_XAUTOCLAIM:
        /* Redis tells only the consumer they made (not the reads, claims) */
        if (!c->consumer_created) return;
        ev = "xgroup-createconsumer", cls = N_STREAM, emptied = false;
        put = false;
        break;
    case KV_OP_XGROUP: {
        /* the store reports a change only when one happened (a consumer
         * created or deleted, a group destroyed), as Redis notifies */
        static const char *const sub[] = {NULL,
                                          "xgroup-create",
                                          "xgroup-setid",
                                          "xgroup-destroy",
                                          "xgroup-createconsumer",
                                          "xgroup-delconsumer"};
        if (cmd->a < KV_XGROUP_CREATE || cmd->a > KV_XGROUP_DELCONSUMER) return;
        ev = sub[cmd->a], cls = N_STREAM, emptied = false;
        break;
    }
    default:
        return;
    }
    if (put && c->created) notify__emit(ra, N_NEW, "new", c->key, c->key_len);
    notify__emit(ra, cls, ev, c->key, c->key_len);
    if (after) notify__emit(ra, N_GENERIC, after, c->key, c->key_len);
    if (emptied) notify__emit(ra, N_GENERIC, "del", c->key, c->key_len);
}

void resp_notify_init(resp_api *ra)
{
    ra->notify_since_ms = clock_wall_ms() - 1000;
    buf_init(&ra->notify_held);
}

void resp_notify_close(resp_api *ra)
{
    buf_close(&ra->notify_held);
}
