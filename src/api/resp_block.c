/* resp_block: blocked clients of the Redis front end (BLPOP and family;
 * issue 12, "Blocking commands on a replicated store").
 *
 * A blocking pop is an ordinary replicated write (KV_OP_LMPOP,
 * KV_OP_LMOVE or KV_OP_ZMPOP), proposed at once. When it finds every list empty, its
 * request blocks here. The store tells this node of every push it applies
 * (kv_store.on_notify, on leader and followers alike, in apply order); the
 * pushed key becomes ready, and a 0 ms timer, outside the apply, proposes
 * the pop again for the client that blocked first on that key. So the pop
 * that serves a client is itself a log entry: every replica removes the
 * same element. One pop per key is in flight at a time, so clients are
 * served in the order they blocked; a pop that finds the list emptied
 * again (another client's LPOP got there first) leaves its client
 * blocked, still first in line.
 *
 * Each blocked request owns a resp_block with its own replica request, so
 * a pop in flight outlives a client that leaves: if it popped elements,
 * they are pushed back where they came from, as a write of its own (an
 * LMOVE's element is in its destination list, not lost; a sorted set's
 * members go back with their scores). A pop refused
 * before it reached the log (no leader yet, shed, disk almost full) is
 * retried 100 ms later, so a blocked client waits through a leader
 * election. A pop whose outcome is unknown (leadership lost while it was
 * in flight) answers the error, as LPOP does.
 *
 * Waiters are scanned in blocking order on each wake: linear in the
 * blocked clients, which suits the tens to hundreds a task queue has.
 * Loop thread only. */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "api/resp_internal.h"
#include "obs/log.h"
#include "util/alloc.h"
#include "util/strconv.h"

#define BLOCK_RETRY_MS 100

typedef struct resp_block {
    struct resp_blocking *bl;
    resp_req *req;    /* NULL once its client left */
    replica_req rreq; /* the pop (or push-back), this block's own */
    kv_command cmd;   /* the pop; its args point into keys */
    kv_slice *args;
    buf keys;         /* the arguments' bytes */
    kv_command back;  /* a push-back being proposed (args owned) */
    int64_t deadline; /* monotonic ms; 0: none */
    int64_t retry_at; /* a refused proposal goes again then (0: none) */
    resp_write_fn done;
    resp_proc timed_out;
    bool in_flight; /* a proposal is out */
    bool first;     /* the first pop: not blocked yet */
    bool pushing_back;
    /* a blocking read (XREAD BLOCK) instead of a pop: on a push to one of
     * its keys, retry reads the local store and answers if it found
     * something; no proposal, every waiting reader is served */
    bool (*retry)(resp_req *req);
    int read_type;
    void *state;                    /* the reader's, freed with the block */
    struct resp_block *prev, *next; /* in a list of resp_blocking */
} resp_block;

typedef struct block_list {
    resp_block *head, *tail;
    uint64_t n;
} block_list;

/* keys pushed to since the last wake (own copies) */
typedef struct ready_set {
    kv_slice *keys;
    size_t n, cap;
} ready_set;

typedef struct resp_blocking {
    resp_api *ra;
    uv_timer_t wake;     /* 0 ms: serve what became ready */
    uv_timer_t deadline; /* the earliest timeout or retry */
    bool wake_pending;
    block_list blocked; /* in blocking order */
    block_list orphans; /* clients gone, a pop or push-back still out */
    ready_set ready;    /* keys pushed to since the last wake */
    bool all_ready;     /* the state was replaced: try every waiter */
} resp_blocking;

static int64_t block__now(void)
{
    return (int64_t)(uv_hrtime() / 1000000u);
}

/* ---- lists ------------------------------------------------------------------------ */

static void list_add(block_list *l, resp_block *b)
{
    b->prev = l->tail;
    b->next = NULL;
    if (l->tail)
        l->tail->next = b;
    else
        l->head = b;
    l->tail = b;
    l->n++;
}

static void list_remove(block_list *l, resp_block *b)
{
    if (b->prev)
        b->prev->next = b->next;
    else
        l->head = b->next;
    if (b->next)
        b->next->prev = b->prev;
    else
        l->tail = b->prev;
    b->prev = b->next = NULL;
    l->n--;
}

static bool list_has(const block_list *l, const resp_block *b)
{
    return b->prev || l->head == b;
}

/* The type a blocked client waits for: a push of another type to its key
 * does not wake it (Redis leaves it blocked too). */
static int block__type(const resp_block *b)
{
    if (b->retry) return b->read_type;
    if (b->cmd.op == KV_OP_XREADGROUP) return KV_TYPE_STREAM;
    return b->cmd.op == KV_OP_ZMPOP ? KV_TYPE_ZSET : KV_TYPE_LIST;
}

/* The keys a blocked client waits on, args[*from .. *from + n): an LMOVE
 * its source, an LMPOP or ZMPOP all, an XREADGROUP its streams. */
static uint32_t block__keys(const resp_block *b, uint32_t *from)
{
    *from = b->cmd.op == KV_OP_XREADGROUP ? 2 : 0;
    if (b->cmd.op == KV_OP_XREADGROUP) return (uint32_t)b->cmd.b;
    return b->cmd.op == KV_OP_LMOVE ? 1 : b->cmd.nargs;
}

static bool block__waits_on(const resp_block *b, const char *key, size_t len)
{
    uint32_t from, nkeys = block__keys(b, &from);
    for (uint32_t i = from; i < from + nkeys; i++)
        if (b->args[i].len == len && memcmp(b->args[i].ptr, key, len) == 0) return true;
    return false;
}

static void block__free(resp_block *b)
{
    free(b->state);
    replica_req_close(&b->rreq);
    buf_close(&b->keys);
    free(b->args);
    free(b->back.args);
    free(b);
}

static void block__wake_cb(uv_timer_t *t);
static void block__deadline_cb(uv_timer_t *t);

static void block__schedule_wake(resp_blocking *bl)
{
    if (bl->wake_pending) return;
    bl->wake_pending = true;
    uv_timer_start(&bl->wake, block__wake_cb, 0, 0);
}

static int64_t block__due(const resp_block *b)
{
    int64_t t = b->deadline;
    if (b->retry_at && (!t || b->retry_at < t)) t = b->retry_at;
    return t;
}

/* The deadline timer: at the earliest timeout or retry. */
static void block__arm(resp_blocking *bl)
{
    int64_t first = 0;
    const block_list *lists[2] = {&bl->blocked, &bl->orphans};
    for (int k = 0; k < 2; k++)
        for (resp_block *b = lists[k]->head; b; b = b->next) {
            if (b->in_flight) continue; /* its answer re-arms: no spinning meanwhile */
            int64_t t = block__due(b);
            if (t && (!first || t < first)) first = t;
        }
    if (!first) {
        uv_timer_stop(&bl->deadline);
        return;
    }
    int64_t wait = first - block__now();
    uv_timer_start(&bl->deadline, block__deadline_cb, wait > 0 ? (uint64_t)wait : 0, 0);
}

/* The request has its reply: it completes, and the block goes. */
static void block__finish(resp_block *b)
{
    resp_blocking *bl = b->bl;
    resp_req *req = b->req;
    if (list_has(&bl->blocked, b)) list_remove(&bl->blocked, b);
    req->block = NULL;
    req->waiting = false;
    block__free(b);
    /* the deadline timer follows the blocks left: one armed for this
     * block's timeout would keep the loop (and a shutdown) waiting */
    block__arm(bl);
    resp_req_finish_async(req);
}

/* ---- proposals ------------------------------------------------------------------------ */

static void block__done_cb(replica_req *rr, int status);

/* Propose b's pop (or push-back). b may be gone when this returns. */
static void block__propose(resp_block *b)
{
    b->in_flight = true;
    b->retry_at = 0;
    kv_command *cmd = b->pushing_back ? &b->back : &b->cmd;
    cmd->now_ms = replica_now_ms();
    int st = replica_propose(b->bl->ra->a->replica, &b->rreq, cmd);
    if (st != REPLICA_OK) block__done_cb(&b->rreq, st); /* not taken: as if answered */
}

/* A pop that served nobody (its client left): what it took goes back
 * where it came from, as a write of its own. A list's elements: the first
 * popped nearest the end it was popped from. A sorted set's members: with
 * their scores, unless one was added again meanwhile (ZADD NX). */
static void block__start_push_back(resp_block *b, const kv_result *res)
{
    /* the result moves into a buffer of its own: the result's is reused
     * by the proposal */
    size_t n = (size_t)res->integer;
    bool zset = b->cmd.op == KV_OP_ZMPOP;
    buf_close(&b->keys); /* b->args point into it: unused from here on */
    free(b->args);
    b->args = NULL;
    buf_init(&b->keys);
    buf_append(&b->keys, res->value, res->value_len);
    kv_result copy = *res;
    copy.value = b->keys.data;
    size_t pos = 0, nargs = zset ? 2 * n + 1 : n + 1;
    b->back.args = xcalloc(nargs, sizeof(kv_slice));
    b->back.args[0] = kv_result_popped_key(&copy, &pos);
    for (size_t i = 0; i < n; i++) {
        /* ZADD takes score, member; the last element popped is pushed
         * first, so the list reads as before */
        kv_slice *at = zset ? &b->back.args[2 + 2 * i] : &b->back.args[n - i];
        if (!kv_result_popped_next(&copy, &pos, at)) break;
        if (zset && !kv_result_popped_next(&copy, &pos, &b->back.args[1 + 2 * i])) break;
    }
    b->back.op = zset ? KV_OP_ZADD : KV_OP_LPUSH;
    b->back.a = zset ? KV_ZADD_NX : b->cmd.a; /* a list: the end they came from */
    b->back.nargs = (uint32_t)nargs;
    b->pushing_back = true;
    block__propose(b);
}

static bool block__refused(int status)
{
    return status == REPLICA_ERR_BUSY || status == REPLICA_ERR_NO_LEADER ||
           status == REPLICA_ERR_NOT_LEADER || status == REPLICA_ERR_NOSPACE;
}

static void block__orphan_done(resp_block *b, int status, const kv_result *res)
{
    resp_blocking *bl = b->bl;
    if (block__refused(status) && b->pushing_back) { /* not applied: again, later */
        b->retry_at = block__now() + BLOCK_RETRY_MS;
        block__arm(bl);
        return;
    }
    bool popped = status == REPLICA_OK && res->status == KV_OK && res->has_value &&
                  (b->cmd.op == KV_OP_LMPOP || b->cmd.op == KV_OP_ZMPOP) && res->integer > 0;
    if (!b->pushing_back && popped) {
        block__start_push_back(b, res);
        return;
    }
    if (b->pushing_back && status != REPLICA_OK)
        LOG_WARN("a blocked client left while its pop was served; pushing the elements back "
                 "failed",
                 LF_S("status", replica_status_text(status)));
    list_remove(&bl->orphans, b);
    block__free(b);
}

static void block__done_cb(replica_req *rr, int status)
{
    resp_block *b = rr->data;
    resp_blocking *bl = b->bl;
    const kv_result *res = &rr->result;
    b->in_flight = false;
    block__schedule_wake(bl); /* whatever happened, the next in line may go */
    if (!b->req) {
        block__orphan_done(b, status, res);
        return;
    }
    if (block__refused(status) && !b->first) { /* blocked: wait for a leader */
        b->retry_at = block__now() + BLOCK_RETRY_MS;
        block__arm(bl);
        return;
    }
    if (status != REPLICA_OK || res->status != KV_OK || res->has_value) {
        resp_req_answer_write(b->req, status, res, b->done); /* served, or an error */
        block__finish(b);
        return;
    }
    /* every list empty or absent */
    if (b->deadline && block__now() >= b->deadline) {
        b->timed_out(b->req);
        block__finish(b);
        return;
    }
    if (b->first) {
        b->first = false;
        list_add(&bl->blocked, b);
    }
    block__arm(bl); /* its deadline counts again */
}

/* ---- waking ------------------------------------------------------------------------------ */

static void block__ready_add(ready_set *r, const char *key, size_t len)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->keys[i].len == len && memcmp(r->keys[i].ptr, key, len) == 0) return;
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 8;
        r->keys = xrealloc(r->keys, r->cap * sizeof(*r->keys));
    }
    char *copy = xmalloc(len ? len : 1);
    memcpy(copy, key, len);
    r->keys[r->n++] = (kv_slice){copy, len};
}

static void block__ready_free(ready_set *r)
{
    for (size_t i = 0; i < r->n; i++) free((char *)r->keys[i].ptr);
    free(r->keys);
    *r = (ready_set){0};
}

static void block__notify(void *ctx, const kv_change *c)
{
    resp_blocking *bl = ctx;
    resp_notify_change(bl->ra, c);   /* keyspace notifications: the other listeners */
    resp_tracking_change(bl->ra, c); /* CLIENT TRACKING */
    if (!bl->blocked.head) return;
    if (c->kind == KV_CHANGE_RESET) {
        bl->all_ready = true;
        block__schedule_wake(bl);
        return;
    }
    if (c->kind != KV_CHANGE_PUT) return;
    for (resp_block *b = bl->blocked.head; b; b = b->next) {
        if (block__type(b) == c->type && block__waits_on(b, c->key, c->key_len)) {
            block__ready_add(&bl->ready, c->key, c->key_len);
            block__schedule_wake(bl);
            return;
        }
    }
}

#define BLOCK_MAX_GROUPS_PER_WAKE 64

/* Two XREADGROUP blocks of the same group (args[0]). */
static bool block__same_group(const resp_block *a, const resp_block *b)
{
    return a->cmd.op == KV_OP_XREADGROUP && b->cmd.op == KV_OP_XREADGROUP &&
           a->args[0].len == b->args[0].len &&
           memcmp(a->args[0].ptr, b->args[0].ptr, a->args[0].len) == 0;
}

/* Serve key: propose for the first client blocked on it, unless a pop
 * for it is already out. Returns false to keep the key ready. */
static bool block__serve_key(resp_blocking *bl, const char *key, size_t len)
{
    /* only the clients that wait for what the key holds now */
    const kv_entry *e = kv_keyspace_find(&bl->ra->a->store->ks, key, len);
    if (!e) return true;
    resp_block *first = NULL;
    /* XREADGROUP: every group gets what is new, so the first reader of
     * each group goes (one of a group at a time) */
    resp_block *groups[BLOCK_MAX_GROUPS_PER_WAKE];
    size_t ng = 0;
    bool more = false;
    for (resp_block *b = bl->blocked.head, *next; b; b = next) {
        next = b->next;
        if (block__type(b) != e->type || !block__waits_on(b, key, len)) continue;
        if (b->retry) { /* a reader: each one reads for itself */
            if (b->retry(b->req)) block__finish(b);
            continue;
        }
        if (b->cmd.op == KV_OP_XREADGROUP) {
            bool taken = false;
            for (size_t i = 0; i < ng && !taken; i++) taken = block__same_group(groups[i], b);
            for (resp_block *o = bl->blocked.head; o && !taken; o = o->next)
                taken = o != b && (o->in_flight || o->retry_at) && block__same_group(o, b);
            if (taken || b->in_flight || b->retry_at) continue; /* its group's answer wakes us */
            if (ng < BLOCK_MAX_GROUPS_PER_WAKE)
                groups[ng++] = b;
            else
                more = true;
            continue;
        }
        if (b->in_flight || b->retry_at) return false; /* its answer wakes us again */
        if (!first) first = b;
    }
    if (first) block__propose(first);
    for (size_t i = 0; i < ng; i++) block__propose(groups[i]);
    return !more;
}

static void block__wake_cb(uv_timer_t *t)
{
    resp_blocking *bl = t->data;
    bl->wake_pending = false;
    if (bl->all_ready) {
        bl->all_ready = false;
        for (resp_block *b = bl->blocked.head; b; b = b->next) {
            uint32_t from, nkeys = block__keys(b, &from);
            for (uint32_t i = from; i < from + nkeys; i++)
                block__ready_add(&bl->ready, b->args[i].ptr, b->args[i].len);
        }
    }
    /* take the set: proposals may apply at once and notify again */
    ready_set todo = bl->ready;
    bl->ready = (ready_set){0};
    for (size_t k = 0; k < todo.n; k++)
        if (!block__serve_key(bl, todo.keys[k].ptr, todo.keys[k].len))
            block__ready_add(&bl->ready, todo.keys[k].ptr, todo.keys[k].len);
    block__ready_free(&todo);
}

static void block__deadline_cb(uv_timer_t *t)
{
    resp_blocking *bl = t->data;
    int64_t now = block__now();
    /* one due block per round: each may complete requests, free blocks
     * and propose, so the scan starts over after it */
    for (int round = 0; round < 100000; round++) {
        resp_block *due = NULL;
        const block_list *lists[2] = {&bl->blocked, &bl->orphans};
        for (int k = 0; k < 2 && !due; k++)
            for (resp_block *b = lists[k]->head; b && !due; b = b->next)
                if (!b->in_flight && block__due(b) && block__due(b) <= now) due = b;
        if (!due) break;
        if (due->req && due->deadline && due->deadline <= now) {
            due->timed_out(due->req);
            block__finish(due);
        } else {
            block__propose(due); /* a retry */
        }
    }
    block__arm(bl);
}

/* ---- the interface ---------------------------------------------------------------------- */

/* A new block of req on the keys (copied: b->args point into b->keys),
 * which b->cmd describes; the caller sets what the kind needs. */
static resp_block *block__new(resp_req *req, const kv_command *cmd, int64_t timeout_ms,
                              resp_proc timed_out)
{
    resp_block *b = xcalloc(1, sizeof(*b));
    b->bl = req->rc->ra->blocking;
    b->req = req;
    b->timed_out = timed_out;
    b->deadline = timeout_ms > 0 ? block__now() + timeout_ms : 0;
    b->cmd = *cmd;
    buf_init(&b->keys);
    size_t total = 0;
    for (uint32_t i = 0; i < cmd->nargs; i++) total += cmd->args[i].len;
    buf_reserve(&b->keys, total);
    b->args = xcalloc(cmd->nargs ? cmd->nargs : 1, sizeof(kv_slice));
    for (uint32_t i = 0; i < cmd->nargs; i++)
        buf_append(&b->keys, cmd->args[i].ptr, cmd->args[i].len);
    size_t off = 0;
    for (uint32_t i = 0; i < cmd->nargs; i++) {
        b->args[i] = (kv_slice){b->keys.data + off, cmd->args[i].len};
        off += cmd->args[i].len;
    }
    b->cmd.args = b->args;
    replica_req_init(&b->rreq, b, block__done_cb);
    req->block = b;
    req->waiting = true;
    return b;
}

void resp_block_pop(resp_req *req, const kv_command *cmd, int64_t timeout_ms, resp_write_fn done,
                    resp_proc timed_out)
{
    if (req->tx_exec) {
        resp_tx_pop(req, cmd, done, timed_out);
        return;
    }
    if (req->script) {
        resp_script_pop(req, cmd, done, timed_out);
        return;
    }
    resp_block *b = block__new(req, cmd, timeout_ms, timed_out);
    b->done = done;
    b->first = true;
    block__propose(b);
}

bool resp_block_timeout_arg(resp_req *req, const resp_arg *v, int64_t *ms)
{
    long double t;
    if (!strconv_parse_ld(v->ptr, v->len, &t)) {
        resp_req_error(req, "ERR timeout is not a float or out of range");
        return false;
    }
    /* Redis converts to a long long count of ms first: past its range
     * that wraps negative on x86, and Redis says so */
    if (t < 0 || t * 1000 >= 9223372036854775808.0L) {
        resp_req_error(req, "ERR timeout is negative");
        return false;
    }
    if (t * 1000 > (long double)(INT64_MAX - replica_now_ms())) {
        resp_req_error(req, "ERR timeout is out of range");
        return false;
    }
    *ms = (int64_t)(t * 1000);
    if (*ms == 0 && t > 0) *ms = 1; /* a positive timeout never means "for ever" */
    return true;
}

/* Redis answers a timed-out blocking command with a null array, also
 * BLMOVE and BRPOPLPUSH */
static void block__timed_out(resp_req *req)
{
    resp_write_null_array(&req->reply, req->proto);
}

void resp_block_keys(resp_req *req, size_t first, size_t n, int op, int64_t a, int64_t b,
                     int64_t timeout_ms, resp_write_fn done)
{
    kv_slice small[16];
    kv_slice *args = resp_req_arg_slices(req, first, n, small);
    kv_command cmd = {.op = (uint8_t)op, .a = a, .b = b, .nargs = (uint32_t)n, .args = args};
    resp_block_pop(req, &cmd, timeout_ms, done, block__timed_out);
    if (args != small) free(args);
}

void *resp_block_state(resp_req *req)
{
    return req->block ? req->block->state : NULL;
}

void resp_block_read(resp_req *req, size_t first, size_t n, int type, int64_t timeout_ms,
                     bool (*retry)(resp_req *req), void *state)
{
    kv_slice small[16];
    kv_slice *keys = resp_req_arg_slices(req, first, n, small);
    kv_command cmd = {.nargs = (uint32_t)n, .args = keys};
    resp_block *b = block__new(req, &cmd, timeout_ms, block__timed_out);
    if (keys != small) free(keys);
    b->retry = retry;
    b->read_type = type;
    b->state = state;
    list_add(&b->bl->blocked, b);
    block__arm(b->bl);
}

void resp_block_detach(resp_req *req)
{
    resp_block *b = req->block;
    resp_blocking *bl = b->bl;
    req->block = NULL;
    b->req = NULL;
    if (list_has(&bl->blocked, b)) list_remove(&bl->blocked, b);
    if (b->in_flight) { /* its answer decides: push back or not */
        list_add(&bl->orphans, b);
        return;
    }
    block__free(b);
}

void resp_blocking_init(resp_api *ra, uv_loop_t *loop)
{
    resp_blocking *bl = xcalloc(1, sizeof(*bl));
    bl->ra = ra;
    uv_timer_init(loop, &bl->wake);
    uv_timer_init(loop, &bl->deadline);
    bl->wake.data = bl->deadline.data = bl;
    ra->blocking = bl;
    ra->a->store->on_notify = block__notify;
    ra->a->store->on_notify_ctx = bl;
}

void resp_blocking_close(resp_api *ra)
{
    resp_blocking *bl = ra->blocking;
    if (!bl) return;
    ra->a->store->on_notify = NULL;
    /* every connection is closed: only orphans can be left */
    while (bl->orphans.head) {
        resp_block *b = bl->orphans.head;
        list_remove(&bl->orphans, b);
        block__free(b);
    }
    block__ready_free(&bl->ready);
    free(bl);
    ra->blocking = NULL;
}

uint64_t resp_blocking_count(const resp_api *ra)
{
    return ra->blocking ? ra->blocking->blocked.n : 0;
}
