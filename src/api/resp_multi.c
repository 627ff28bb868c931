/* resp_multi: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
 *
 * MULTI queues commands on the connection (checking what Redis checks at
 * queue time: the command exists, its arity, the user's rights, memory);
 * EXEC turns the queue into one KV_OP_EXEC log entry (kv/transaction.h),
 * so the transaction is applied whole or not at all, through a crash or a
 * leader change, with no other write between its commands.
 *
 * EXEC runs each queued command's handler in a sub-request that records
 * what the handler asks for instead of doing it: a write's kv command
 * becomes a step of the entry, a read becomes a read step, an answer the
 * handler gives at once (a syntax error, PING) is kept. When the entry
 * applies on this node, the store tells us each step (kv_store's
 * on_tx_step): a write's reply is formatted from its result, a read
 * step's handler reads the store right then, between the transaction's
 * writes, exactly as Redis runs EXEC. Through a follower the entry is
 * forwarded to the leader like any write, and answered once it has been
 * applied here too (a linearizable read waits for that).
 *
 * A transaction without writes is a linearizable read: its watches are
 * compared and its reads run in one read continuation.
 *
 * WATCH records each key's revision (mod_rev, 0 when absent) after a
 * linearizable read; the entry carries them and apply compares them with
 * the keys' revisions then, so the check holds when the transaction was
 * forwarded or retried after a failover (docs/resp.md, "Transactions"). */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "api/memory.h"
#include "api/resp_internal.h"
#include "kv/transaction.h"
#include "util/alloc.h"
#include "util/strconv.h"

/* Bounds of one transaction (each refused with a clear error, the
 * transaction discarded): commands queued, keys watched, queued bytes
 * (those of resp's query buffer limit). */
#define TX_MAX_QUEUED (1u << 18)
#define TX_MAX_WATCHED (1u << 16)
#define TX_TOKEN_BYTES 16

typedef struct tx_queued {
    size_t cmd_index;
    resp_arg *argv;
    size_t argc;
    buf data;
} tx_queued;

typedef struct tx_watch {
    size_t off, len; /* into wkeys */
    uint64_t rev;
} tx_watch;

struct resp_tx {
    bool multi;
    bool dirty; /* a command was refused while queuing: EXEC aborts */
    tx_queued *q;
    size_t nq, capq, qbytes;
    buf wkeys;
    tx_watch *w;
    size_t nw, capw;
    /* the transaction an EXEC runs on an overlay (it has a script that
     * may write), kept for its runs until the next MULTI or EXEC */
    tx_queued *run_q;
    size_t run_nq;
    buf run_wkeys;
    tx_watch *run_w;
    size_t run_nw;
};

/* STEP_AT_EXEC: a command that changes the connection (RESP_CMD_AT_EXEC),
 * run when the reply is put together */
enum { STEP_REPLIED = 0, STEP_WRITE, STEP_READ, STEP_POP, STEP_AT_EXEC };
enum { PHASE_COMPILE = 0, PHASE_APPLY };

#define TX_INLINE 16

struct resp_exec {
    resp_req *req; /* the EXEC */
    resp_api *ra;
    char token[TX_TOKEN_BYTES];
    resp_req **subs;
    size_t n;
    int phase;
    buf steps;      /* the encoded write steps, back to back */
    size_t *at;     /* per sub: its step's offset in steps */
    size_t *len;    /* per sub: its step's length (0: not a write) */
    size_t nwrites; /* write and pop steps */
    /* the watches, copied from the connection */
    buf wkeys;
    tx_watch *w;
    size_t nw;
    bool registered, seen, ran, waited;
    resp_exec *prev, *next; /* ra->execs, while registered */
    /* a script's effects (resp_tx_propose_effects): no sub-requests; the
     * script's answer, given once the entry ran here; what to do when a
     * watched key moved (run the script again); the script's time */
    buf script_reply;
    resp_proc on_abort;
    int64_t now_ms;
    size_t at_exec_next; /* the next sub to look at for STEP_AT_EXEC */
    /* at, len and w of a small transaction (most scripts: a few keys and
     * writes) point here, saving three allocations a call */
    size_t at_in[TX_INLINE], len_in[TX_INLINE];
    tx_watch w_in[TX_INLINE];
};

/* Room for n of at/len (steps) or w (watches): the inline arrays when
 * they are enough. */
static void tx__steps_room(resp_exec *x, size_t n)
{
    x->at = n <= TX_INLINE ? x->at_in : xcalloc(n, sizeof(*x->at));
    x->len = n <= TX_INLINE ? x->len_in : xcalloc(n, sizeof(*x->len));
}

static void tx__watch_room(resp_exec *x, size_t n)
{
    x->w = n <= TX_INLINE ? x->w_in : xcalloc(n, sizeof(*x->w));
}

/* ---- the connection's state ----------------------------------------------------------- */

static resp_tx *tx__of(resp_conn *rc)
{
    if (!rc->tx) {
        rc->tx = xcalloc(1, sizeof(*rc->tx));
        buf_init(&rc->tx->wkeys);
    }
    return rc->tx;
}

static void tx__free_queued(tx_queued *q, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(q[i].argv);
        buf_close(&q[i].data);
    }
}

static void tx__drop_queue(resp_tx *t)
{
    tx__free_queued(t->q, t->nq);
    t->nq = 0;
    t->qbytes = 0;
    t->multi = t->dirty = false;
}

static void tx__unwatch(resp_tx *t)
{
    buf_reset(&t->wkeys);
    t->nw = 0;
}

void resp_tx_conn_reset(resp_conn *rc)
{
    if (!rc->tx) return;
    tx__drop_queue(rc->tx);
    tx__unwatch(rc->tx);
}

static void tx__drop_run(resp_tx *t)
{
    tx__free_queued(t->run_q, t->run_nq);
    free(t->run_q);
    t->run_q = NULL;
    t->run_nq = 0;
    buf_close(&t->run_wkeys);
    free(t->run_w);
    t->run_w = NULL;
    t->run_nw = 0;
}

void resp_tx_conn_free(resp_conn *rc)
{
    resp_tx *t = rc->tx;
    if (!t) return;
    tx__drop_queue(t);
    tx__drop_run(t);
    free(t->q);
    buf_close(&t->wkeys);
    free(t->w);
    free(t);
    rc->tx = NULL;
}

bool resp_tx_queues(const resp_conn *rc, const resp_cmd *cmd)
{
    return rc->tx && rc->tx->multi && !(cmd->flags & RESP_CMD_TX_CONTROL);
}

/* The error reply in r becomes Redis' word for a discarded transaction:
 * EXECABORT, then the error without its ERR code. */
static void tx__execabort(buf *r)
{
    size_t from = 1, to = r->len;
    if (to >= 2 && r->data[to - 2] == '\r') to -= 2;
    if (to - from >= 4 && memcmp(r->data + from, "ERR ", 4) == 0) from += 4;
    buf msg;
    buf_init(&msg);
    buf_append(&msg, r->data + from, to - from);
    buf_reset(r);
    resp_write_errorf(r, "EXECABORT Transaction discarded because of: %s", msg.data);
    buf_close(&msg);
}

void resp_tx_flag(resp_req *req)
{
    resp_conn *rc = req->rc;
    if (req->cmd && strcmp(req->cmd->name, "exec") == 0) {
        /* a refused EXEC discards the transaction, and says so as Redis does */
        tx__execabort(&req->reply);
        resp_tx_conn_reset(rc);
        return;
    }
    if (rc->tx && rc->tx->multi) rc->tx->dirty = true;
}

static void tx__refuse(resp_req *req, const char *msg)
{
    resp_req_error(req, msg);
    req->rc->tx->dirty = true;
}

void resp_tx_queue(resp_req *req)
{
    resp_tx *t = req->rc->tx;
    const resp_cmd *cmd = req->cmd;
    if (cmd->flags & RESP_CMD_NO_MULTI) {
        tx__refuse(req, "ERR Command not allowed inside a transaction");
        return;
    }
    if ((cmd->flags & RESP_CMD_DENYOOM) && memory_admit_write(req->a) != MEMORY_OK) {
        req->outcome = RESP_OUTCOME_OOM;
        tx__refuse(req, "OOM command not allowed when used memory > 'maxmemory'.");
        return;
    }
    size_t bytes = 0;
    for (size_t i = 0; i < req->argc; i++) bytes += req->argv[i].len + 4;
    if (t->nq >= TX_MAX_QUEUED || t->qbytes + bytes > req->rc->ra->max_query_bytes) {
        resp_req_errorf(req,
                        "ERR transaction too large: at most %u commands and %zu bytes of "
                        "arguments may be queued",
                        TX_MAX_QUEUED, req->rc->ra->max_query_bytes);
        t->dirty = true;
        return;
    }
    if (t->nq == t->capq) {
        t->capq = t->capq ? 2 * t->capq : 8;
        t->q = xrealloc(t->q, t->capq * sizeof(*t->q));
    }
    tx_queued *q = &t->q[t->nq++];
    t->qbytes += bytes;
    q->cmd_index = req->cmd_index;
    q->argc = req->argc;
    q->argv = xcalloc(req->argc, sizeof(*q->argv));
    buf_init(&q->data);
    for (size_t i = 0; i < req->argc; i++) buf_append(&q->data, req->argv[i].ptr, req->argv[i].len);
    size_t off = 0;
    for (size_t i = 0; i < req->argc; i++) {
        q->argv[i] = (resp_arg){q->data.data + off, req->argv[i].len};
        off += req->argv[i].len;
    }
    resp_write_simple(&req->reply, "QUEUED");
}

/* ---- sub-requests ------------------------------------------------------------------------ */

/* Sub-requests of finished transactions, kept for the next ones with
 * their reply buffers (20 allocations fewer for a transaction of 10
 * commands). The loop thread alone touches them; bounded in number and in
 * the reply capacity each keeps. */
#define TX_SPARE_SUBS 64
#define TX_SPARE_REPLY_CAP 4096
static resp_req *tx__spare_subs;
static unsigned tx__nspare_subs;

static resp_req *tx__sub_alloc(void)
{
    resp_req *sub = tx__spare_subs;
    buf reply;
    if (sub) {
        tx__spare_subs = sub->next;
        tx__nspare_subs--;
        reply = sub->reply;
        buf_reset(&reply);
    } else {
        sub = xmalloc(sizeof(*sub));
        buf_init(&reply);
    }
    memset(sub, 0, sizeof(*sub));
    sub->reply = reply;
    return sub;
}

static resp_req *tx__sub_new(resp_req *exec_req, resp_exec *x, tx_queued *q)
{
    resp_req *sub = tx__sub_alloc();
    buf_init(&sub->own_data);
    replica_req_init(&sub->rreq, sub, NULL);
    sub->rc = exec_req->rc;
    sub->a = exec_req->a;
    sub->cmd_index = q->cmd_index;
    sub->cmd = exec_req->rc->ra->cmds[q->cmd_index];
    sub->proto = exec_req->proto;
    sub->tx_exec = x;
    sub->track = exec_req->track; /* CLIENT CACHING before EXEC counts for its commands */
    /* the arguments move from the queue into the sub-request */
    sub->own_argv = q->argv;
    sub->own_cap = q->argc;
    sub->own_data = q->data;
    sub->argv = q->argv;
    sub->argc = q->argc;
    q->argv = NULL;
    buf_init(&q->data);
    return sub;
}

static void tx__sub_free(resp_req *sub)
{
    replica_req_close(&sub->rreq);
    buf_close(&sub->own_data);
    free(sub->own_argv);
    if (tx__nspare_subs < TX_SPARE_SUBS && sub->reply.cap <= TX_SPARE_REPLY_CAP) {
        sub->next = tx__spare_subs;
        tx__spare_subs = sub;
        tx__nspare_subs++;
        return;
    }
    buf_close(&sub->reply);
    free(sub);
}

static void tx__step_encode(resp_req *sub, const kv_command *cmd)
{
    resp_exec *x = sub->tx_exec;
    size_t i = sub->tx_index;
    kv_command c = *cmd;
    c.origin = c.seq = 0;
    x->at[i] = x->steps.len;
    kv_command_encode(&c, &x->steps);
    x->len[i] = x->steps.len - x->at[i];
    x->nwrites++;
}

void resp_tx_propose(resp_req *sub, kv_command *cmd, resp_write_fn done)
{
    if (sub->tx_exec->phase != PHASE_COMPILE) {
        /* a read continuation that wants to write: nothing does today */
        resp_req_error(sub, "ERR this command cannot run inside a transaction");
        return;
    }
    sub->tx_step = STEP_WRITE;
    sub->on_write = done;
    tx__step_encode(sub, cmd);
}

void resp_tx_pop(resp_req *sub, const kv_command *cmd, resp_write_fn done, resp_proc empty)
{
    /* inside a transaction a blocking pop does not block (as in Redis):
     * it answers as if it timed out when every list is empty */
    if (sub->tx_exec->phase != PHASE_COMPILE) {
        resp_req_error(sub, "ERR this command cannot run inside a transaction");
        return;
    }
    sub->tx_step = STEP_POP;
    sub->on_write = done;
    sub->on_ready = empty;
    tx__step_encode(sub, cmd);
}

void resp_tx_read(resp_req *sub, resp_proc ready)
{
    if (sub->tx_exec->phase != PHASE_COMPILE) {
        ready(sub); /* applying: the store is at this step's point now */
        if (sub->track) resp_tracking_read(sub);
        return;
    }
    sub->tx_step = STEP_READ;
    sub->on_ready = ready;
}

/* ---- the transaction -------------------------------------------------------------------- */

static void tx__unregister(resp_exec *x)
{
    if (!x->registered) return;
    resp_api *ra = x->ra;
    if (x->prev)
        x->prev->next = x->next;
    else
        ra->execs = x->next;
    if (x->next) x->next->prev = x->prev;
    x->registered = false;
}

void resp_tx_exec_free(resp_req *req)
{
    resp_exec *x = req->exec;
    if (!x) return;
    req->exec = NULL;
    tx__unregister(x);
    for (size_t i = 0; x->subs && i < x->n; i++)
        if (x->subs[i]) tx__sub_free(x->subs[i]);
    free(x->subs);
    if (x->at != x->at_in) free(x->at);
    if (x->len != x->len_in) free(x->len);
    buf_close(&x->steps);
    buf_close(&x->wkeys);
    buf_close(&x->script_reply);
    if (x->w != x->w_in) free(x->w);
    free(x);
}

/* The reply of a transaction that ran: each command's, in order. */
static void tx__write_replies(resp_req *req)
{
    resp_exec *x = req->exec;
    resp_write_array(&req->reply, x->n);
    for (size_t i = 0; i < x->n; i++)
        buf_append(&req->reply, x->subs[i]->reply.data, x->subs[i]->reply.len);
}

/* The transaction ran: now, in order, the commands that change the
 * connection (AUTH, HELLO, SUBSCRIBE ...), then the reply. A password
 * check that waits for the thread pool makes EXEC wait with it
 * (resp_tx_sub_finished resumes). Each runs once, even when a read
 * continuation answers again. */
static void tx__assemble(resp_req *req)
{
    resp_exec *x = req->exec;
    for (; x->at_exec_next < x->n; x->at_exec_next++) {
        resp_req *sub = x->subs[x->at_exec_next];
        if (sub->tx_step != STEP_AT_EXEC) continue;
        sub->tx_step = STEP_REPLIED;
        sub->proto = req->rc->proto; /* a HELLO before it may have changed it */
        sub->in_proc = sub->ran = true;
        sub->cmd->proc(sub);
        sub->in_proc = false;
        if (sub->waiting) {
            req->waiting = true;
            return;
        }
    }
    tx__write_replies(req);
}

void resp_tx_sub_finished(resp_req *sub)
{
    resp_exec *x = sub->tx_exec;
    resp_req *req = x->req;
    req->waiting = false;
    x->at_exec_next++;
    tx__assemble(req);
    if (!req->waiting) resp_req_finish_async(req);
}

static void tx__read_step(resp_req *sub, int64_t now_ms)
{
    buf_reset(&sub->reply);
    sub->rreq.read_ms = now_ms;
    sub->rreq.read_unsettled = false;
    sub->on_ready(sub);
    if (sub->track) resp_tracking_read(sub);
}

/* A transaction without writes: a linearizable read. */
static void tx__reads_ready(resp_req *req)
{
    resp_exec *x = req->exec;
    kv_store *store = req->a->store;
    int64_t now = replica_req_read_ms(&req->rreq);
    for (size_t i = 0; i < x->nw; i++) {
        if (kv_tx_watch_rev(&store->ks, x->wkeys.data + x->w[i].off, x->w[i].len, now) !=
            x->w[i].rev) {
            resp_write_null_array(&req->reply, req->proto);
            return;
        }
    }
    for (size_t i = 0; i < x->n; i++)
        if (x->subs[i]->tx_step == STEP_READ) tx__read_step(x->subs[i], now);
    tx__assemble(req);
}

static void tx__finish(resp_req *req)
{
    resp_exec *x = req->exec;
    tx__unregister(x);
    if (!x->seen)
        resp_req_error(req, "ERR EXEC was applied, but this node did not apply it itself (it "
                            "installed a snapshot instead), so its replies are unknown; its "
                            "writes are in place");
    else if (!x->ran && x->on_abort)
        x->on_abort(req); /* last: it frees x */
    else if (!x->ran)
        resp_write_null_array(&req->reply, req->proto);
    else if (!x->subs)
        buf_append(&req->reply, x->script_reply.data, x->script_reply.len);
    else
        tx__assemble(req);
}

static void tx__applied_here(replica_req *rr, int status)
{
    resp_req *req = rr->data;
    req->waiting = false;
    if (status != REPLICA_OK)
        resp_req_replica_error(req, status);
    else
        tx__finish(req);
    if (!req->waiting) resp_req_finish_async(req); /* else a script runs again */
}

/* The entry is committed (and applied by the leader). */
static void tx__exec_done(resp_req *req, const kv_result *res)
{
    (void)res;
    resp_exec *x = req->exec;
    if (!x->seen && !x->waited) {
        /* forwarded: the leader answered before this node applied it; a
         * linearizable read completes once it has */
        x->waited = true;
        req->waiting = true;
        req->rreq.cb = tx__applied_here;
        int st = replica_read(req->a->replica, &req->rreq, REPLICA_READ_LINEARIZABLE, 0);
        if (st != REPLICA_OK) {
            req->waiting = false;
            resp_req_replica_error(req, st);
        }
        return;
    }
    tx__finish(req);
}

/* kv_store's on_tx_step: a transaction applies on this node. */
static void tx__on_step(void *ctx, const kv_command *tx, int64_t step, const kv_result *res)
{
    resp_api *ra = ctx;
    if (tx->args[0].len != TX_TOKEN_BYTES) return;
    resp_exec *x = ra->execs;
    while (x && memcmp(x->token, tx->args[0].ptr, TX_TOKEN_BYTES) != 0) x = x->next;
    if (!x) return; /* proposed elsewhere, or its client is gone */
    if (step == KV_TX_BEGIN) {
        x->seen = true;
        x->ran = res->integer != 0;
        return;
    }
    if (!x->subs) return; /* a script's effects: answered as a whole */
    if (step < 0 || (size_t)step >= x->n) return;
    resp_req *sub = x->subs[step];
    switch (sub->tx_step) {
    case STEP_WRITE:
        if (res) resp_req_answer_write(sub, REPLICA_OK, res, sub->on_write);
        break;
    case STEP_POP:
        if (!res) break;
        if (res->status == KV_OK && !res->has_value)
            sub->on_ready(sub); /* every list empty: the timeout's answer */
        else
            resp_req_answer_write(sub, REPLICA_OK, res, sub->on_write);
        break;
    case STEP_READ:
        tx__read_step(sub, tx->now_ms);
        break;
    default:
        break;
    }
}

static void tx__token(resp_api *ra, char out[TX_TOKEN_BYTES])
{
    if (!ra->tx_nonce) {
        if (getrandom(&ra->tx_nonce, sizeof(ra->tx_nonce), 0) != sizeof(ra->tx_nonce)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ra->tx_nonce = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        }
        ra->tx_nonce |= 1;
    }
    uint64_t n = ++ra->tx_counter;
    for (int i = 0; i < 8; i++) {
        out[i] = (char)(ra->tx_nonce >> (8 * i));
        out[8 + i] = (char)(n >> (8 * i));
    }
}

/* The protocol a queued HELLO will select, if its arguments are good. */
static int tx__hello_proto(const resp_req *hello, int proto)
{
    if (hello->argc < 2) return proto;
    int64_t ver = 0;
    if (!strconv_parse_i64(hello->argv[1].ptr, hello->argv[1].len, &ver) || ver < 2 || ver > 3)
        return proto;
    for (size_t i = 2; i < hello->argc; i++) {
        if (resp_format_arg_is(&hello->argv[i], "auth") && i + 2 < hello->argc)
            i += 2;
        else if (resp_format_arg_is(&hello->argv[i], "setname") && i + 1 < hello->argc)
            i++;
        else
            return proto;
    }
    return (int)ver;
}

/* Run the queued commands' handlers: each records its step. */
static resp_exec *tx__compile(resp_req *req)
{
    resp_conn *rc = req->rc;
    resp_tx *t = rc->tx;
    resp_exec *x = xcalloc(1, sizeof(*x));
    x->req = req;
    x->ra = rc->ra;
    x->n = t->nq;
    x->subs = xcalloc(x->n ? x->n : 1, sizeof(*x->subs));
    tx__steps_room(x, x->n);
    buf_init(&x->steps);
    buf_init(&x->wkeys);
    buf_append(&x->wkeys, t->wkeys.data, t->wkeys.len);
    x->nw = t->nw;
    tx__watch_room(x, t->nw);
    if (t->nw) memcpy(x->w, t->w, t->nw * sizeof(*x->w));
    req->exec = x;
    int proto = req->proto;
    for (size_t i = 0; i < x->n; i++) {
        x->subs[i] = tx__sub_new(req, x, &t->q[i]);
        x->subs[i]->tx_index = i;
        /* a reply is formatted when its command runs or applies, before
         * a HELLO queued ahead of it has run: in the protocol that HELLO
         * will select (should it then fail, on a wrong password, the
         * replies after it keep the protocol it named) */
        x->subs[i]->proto = proto;
        if (strcmp(x->subs[i]->cmd->name, "hello") == 0) proto = tx__hello_proto(x->subs[i], proto);
    }
    for (size_t i = 0; i < x->n; i++) {
        resp_req *sub = x->subs[i];
        if (sub->cmd->flags & RESP_CMD_AT_EXEC) {
            sub->tx_step = STEP_AT_EXEC;
            continue;
        }
        sub->in_proc = sub->ran = true;
        sub->cmd->proc(sub);
        sub->in_proc = false;
    }
    x->phase = PHASE_APPLY;
    return x;
}

static void tx__propose(resp_req *req)
{
    resp_exec *x = req->exec;
    size_t nargs = 1 + 2 * x->nw + x->n;
    /* on the stack for a small transaction */
    kv_slice args_in[1 + 3 * TX_INLINE];
    char revs_in[TX_INLINE][8];
    kv_slice *args = nargs <= 1 + 3 * TX_INLINE ? args_in : xcalloc(nargs, sizeof(*args));
    char(*revs)[8] = x->nw <= TX_INLINE ? revs_in : xcalloc(x->nw, 8);
    tx__token(x->ra, x->token);
    args[0] = (kv_slice){x->token, TX_TOKEN_BYTES};
    for (size_t i = 0; i < x->nw; i++) {
        for (int b = 0; b < 8; b++) revs[i][b] = (char)(x->w[i].rev >> (8 * b));
        args[1 + 2 * i] = (kv_slice){x->wkeys.data + x->w[i].off, x->w[i].len};
        args[2 + 2 * i] = (kv_slice){revs[i], 8};
    }
    for (size_t i = 0; i < x->n; i++)
        args[1 + 2 * x->nw + i] = (kv_slice){x->len[i] ? x->steps.data + x->at[i] : "", x->len[i]};
    kv_command cmd = {.op = KV_OP_EXEC,
                      .now_ms = x->now_ms,
                      .a = (int64_t)x->nw,
                      .b = (int64_t)x->n,
                      .nargs = (uint32_t)nargs,
                      .args = args};
    /* registered before proposing: with persistence none the entry
     * applies inside the call */
    resp_api *ra = x->ra;
    x->next = ra->execs;
    if (ra->execs) ra->execs->prev = x;
    ra->execs = x;
    x->registered = true;
    resp_req_propose(req, &cmd, tx__exec_done);
    if (args != args_in) free(args);
    if (revs != revs_in) free(revs);
}

void resp_tx_propose_effects(resp_req *req, const kv_overlay *o, buf *reply, resp_proc on_abort)
{
    resp_exec *x = xcalloc(1, sizeof(*x));
    x->req = req;
    x->ra = req->rc->ra;
    x->n = o->n_effects;
    tx__steps_room(x, x->n);
    buf_init(&x->steps);
    buf_append(&x->steps, o->effects.data, o->effects.len);
    for (size_t i = 0; i < x->n; i++) {
        kv_slice e = kv_overlay_effect(o, i);
        x->at[i] = (size_t)(e.ptr - o->effects.data);
        x->len[i] = e.len;
    }
    x->nwrites = x->n;
    buf_init(&x->wkeys);
    size_t nw = (size_t)kv_keyspace_count(&o->seen);
    tx__watch_room(x, nw);
    for (kv_entry *e = kv_keyspace_first(&o->seen); e; e = kv_keyspace_next(e)) {
        x->w[x->nw++] = (tx_watch){x->wkeys.len, e->key_len, kv_overlay_seen_rev(e)};
        buf_append(&x->wkeys, kv_entry_key(e), e->key_len);
    }
    x->script_reply = *reply;
    buf_init(reply);
    x->on_abort = on_abort;
    x->now_ms = o->now_ms;
    x->phase = PHASE_APPLY;
    req->exec = x;
    tx__propose(req);
}

/* ---- the commands --------------------------------------------------------------------------- */

static void tx__multi(resp_req *req)
{
    resp_tx *t = tx__of(req->rc);
    if (t->multi) {
        resp_req_error(req, "ERR MULTI calls can not be nested");
        return;
    }
    tx__drop_run(t);
    t->multi = true;
    resp_req_ok(req);
}

static void tx__discard(resp_req *req)
{
    resp_tx *t = req->rc->tx;
    if (!t || !t->multi) {
        resp_req_error(req, "ERR DISCARD without MULTI");
        return;
    }
    resp_tx_conn_reset(req->rc);
    resp_req_ok(req);
}

/* ---- a transaction with a script that may write: on an overlay ---------------------------- *
 *
 * Its script must run before the entry is proposed (only this node runs
 * Lua), yet see what the commands before it wrote. So such a transaction
 * runs whole at EXEC, after a linearizable read, as a script would: every
 * queued command in order on one overlay (api/resp_script.c), and its
 * effects go out as one entry that watches every key the commands looked
 * at and every WATCHed key. A WATCHed key that changed before the run
 * answers nil, as ever; a key that changed between the run and the apply
 * makes it run again (and a WATCHed one among them, nil). What an overlay
 * cannot run (KEYS, SCAN, DBSIZE ..., commands refused in scripts)
 * answers an error in its slot. */

static bool tx__writing_script(const resp_cmd *cmd)
{
    return strcmp(cmd->name, "eval") == 0 || strcmp(cmd->name, "evalsha") == 0 ||
           strcmp(cmd->name, "fcall") == 0;
}

static void tx__scripted_run(resp_req *req, int64_t now_ms);

static void tx__scripted_ready(resp_req *req)
{
    tx__scripted_run(req, replica_req_read_ms(&req->rreq));
}

/* after waiting for a busy script, or for a key that moved: the node has
 * applied what it waited for */
static void tx__scripted_later(resp_req *req)
{
    tx__scripted_run(req, replica_now_ms());
}

static void tx__scripted_again(resp_req *req)
{
    resp_tx_exec_free(req);
    if (++req->n[5] >= RESP_SCRIPT_MAX_RUNS) {
        resp_req_errorf(req,
                        "ERR transaction not applied: the keys it reads changed under it %d "
                        "times in a row; retry later",
                        RESP_SCRIPT_MAX_RUNS);
        return;
    }
    tx__scripted_later(req);
}

static void tx__scripted_run(resp_req *req, int64_t now_ms)
{
    resp_tx *t = req->rc->tx;
    if (resp_script_busy(req->rc->ra)) {
        resp_script_wait(req, tx__scripted_later);
        return;
    }
    kv_keyspace *ks = &req->a->store->ks;
    for (size_t i = 0; i < t->run_nw; i++) {
        const tx_watch *w = &t->run_w[i];
        if (kv_tx_watch_rev(ks, t->run_wkeys.data + w->off, w->len, now_ms) != w->rev) {
            resp_write_null_array(&req->reply, req->proto);
            return;
        }
    }
    resp_script_run *run = resp_script_begin(req, now_ms);
    for (size_t i = 0; i < t->run_nw; i++)
        resp_script_look(run, t->run_wkeys.data + t->run_w[i].off, t->run_w[i].len);
    buf reply, stopped;
    buf_init(&reply);
    buf_init(&stopped);
    resp_write_array(&reply, t->run_nq);
    bool ok = true;
    for (size_t i = 0; i < t->run_nq && ok; i++)
        ok = resp_script_step(run, t->run_q[i].argv, t->run_q[i].argc, &reply, &stopped);
    if (!ok) {
        /* a stopped script keeps none of its writes: nor does its transaction */
        tx__execabort(&stopped);
    }
    resp_script_end(run, ok ? &reply : &stopped, !ok, tx__scripted_again);
    buf_close(&reply);
    buf_close(&stopped);
}

static void tx__exec_scripted(resp_req *req)
{
    resp_tx *t = req->rc->tx;
    tx__drop_run(t);
    t->run_q = t->q;
    t->run_nq = t->nq;
    t->q = NULL;
    t->nq = t->capq = 0;
    buf_init(&t->run_wkeys);
    buf_append(&t->run_wkeys, t->wkeys.data, t->wkeys.len);
    t->run_nw = t->nw;
    t->run_w = xcalloc(t->nw ? t->nw : 1, sizeof(*t->run_w));
    if (t->nw) memcpy(t->run_w, t->w, t->nw * sizeof(*t->w));
    resp_tx_conn_reset(req->rc); /* MULTI ends, the keys are unwatched */
    req->n[5] = 0;               /* runs */
    resp_req_read(req, tx__scripted_ready);
}

static void tx__exec(resp_req *req)
{
    resp_tx *t = req->rc->tx;
    if (!t || !t->multi) {
        resp_req_error(req, "ERR EXEC without MULTI");
        return;
    }
    if (t->dirty) {
        resp_tx_conn_reset(req->rc);
        resp_req_error(req, "EXECABORT Transaction discarded because of previous errors.");
        return;
    }
    if (t->nq + 1 + 2 * t->nw > KV_COMMAND_MAX_ARGS) {
        resp_tx_conn_reset(req->rc);
        resp_req_error(req, "ERR transaction too large: too many commands and watched keys");
        return;
    }
    for (size_t i = 0; i < t->nq; i++) {
        if (tx__writing_script(req->rc->ra->cmds[t->q[i].cmd_index])) {
            tx__exec_scripted(req);
            return;
        }
    }
    resp_exec *x = tx__compile(req);
    resp_tx_conn_reset(req->rc); /* MULTI ends, the keys are unwatched */
    size_t reads = 0;
    for (size_t i = 0; i < x->n; i++) reads += x->subs[i]->tx_step == STEP_READ;
    if (x->nwrites) {
        tx__propose(req);
    } else if (reads || x->nw) {
        resp_req_read(req, tx__reads_ready);
    } else {
        tx__assemble(req); /* nothing that depends on the store */
    }
}

static void tx__watch_ready(resp_req *req)
{
    resp_tx *t = tx__of(req->rc);
    kv_store *store = req->a->store;
    int64_t now = replica_req_read_ms(&req->rreq);
    for (size_t k = 1; k < req->argc; k++) {
        const resp_arg *key = &req->argv[k];
        bool known = false;
        for (size_t i = 0; i < t->nw && !known; i++)
            known = t->w[i].len == key->len &&
                    memcmp(t->wkeys.data + t->w[i].off, key->ptr, key->len) == 0;
        if (known) continue; /* the first WATCH of a key counts, as in Redis */
        if (t->nw >= TX_MAX_WATCHED) {
            resp_req_errorf(req, "ERR too many watched keys (at most %u)", TX_MAX_WATCHED);
            return;
        }
        if (t->nw == t->capw) {
            t->capw = t->capw ? 2 * t->capw : 8;
            t->w = xrealloc(t->w, t->capw * sizeof(*t->w));
        }
        t->w[t->nw++] = (tx_watch){t->wkeys.len, key->len,
                                   kv_tx_watch_rev(&store->ks, key->ptr, key->len, now)};
        buf_append(&t->wkeys, key->ptr, key->len);
    }
    resp_req_ok(req);
}

static void tx__watch(resp_req *req)
{
    if (req->rc->tx && req->rc->tx->multi) {
        resp_req_error(req, "ERR WATCH inside MULTI is not allowed");
        return;
    }
    resp_req_read(req, tx__watch_ready);
}

static void tx__unwatch_cmd(resp_req *req)
{
    if (req->rc->tx) tx__unwatch(req->rc->tx);
    resp_req_ok(req);
}

void resp_tx_init(resp_api *ra)
{
    kv_store *s = ra->a->store;
    s->on_tx_step = tx__on_step;
    s->on_tx_step_ctx = ra;
}

void resp_tx_close(resp_api *ra)
{
    kv_store *s = ra->a->store;
    if (s->on_tx_step == tx__on_step && s->on_tx_step_ctx == ra) {
        s->on_tx_step = NULL;
        s->on_tx_step_ctx = NULL;
    }
}

#define F RESP_CMD_FAST
#define N RESP_CMD_NOSCRIPT
#define L RESP_CMD_LOADING
#define S RESP_CMD_STALE
#define C RESP_CMD_TX_CONTROL

const resp_cmd resp_cmds_transactions[] = {
    {"multi", tx__multi, 1, F | N | L | S | C, 0, 0, 0, "transactions", "1.2.0", "O(1)",
     "Start a transaction", ""},
    {"exec", tx__exec, 1, N | L | S | C, 0, 0, 0, "transactions", "1.2.0",
     "Depends on commands in the transaction",
     "Execute all commands issued after MULTI, as one entry of the log", ""},
    {"discard", tx__discard, 1, F | N | L | S | C, 0, 0, 0, "transactions", "2.0.0",
     "O(N), when N is the number of queued commands", "Discard all commands issued after MULTI",
     ""},
    {"watch", tx__watch, -2, F | N | L | S | C, 1, -1, 1, "transactions", "2.2.0",
     "O(1) for every key", "Abort the next EXEC if one of these keys changes", "key [key ...]"},
    {"unwatch", tx__unwatch_cmd, 1, F | N | L | S | C, 0, 0, 0, "transactions", "2.2.0", "O(1)",
     "Forget about all watched keys", ""},
};
const size_t resp_cmds_transactions_count =
    sizeof(resp_cmds_transactions) / sizeof(resp_cmds_transactions[0]);
