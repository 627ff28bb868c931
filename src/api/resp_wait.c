/* resp_wait: WAIT numreplicas timeout.
 *
 * Redis' WAIT counts the replicas that acknowledged the connection's
 * writes. In cairn every write a client was told about is already
 * committed: on a majority of the voters, the leader among them. WAIT
 * answers how many nodes besides the leader hold the log up to a point at
 * least as recent as the connection's last write: after a linearizable
 * read (so that point covers every write acknowledged before WAIT), the
 * leader counts the followers whose log matches up to there, waiting (a
 * 10 ms poll, until timeout ms; 0: for ever) until numreplicas of them do.
 * A follower cannot see the others' logs: it answers at once with what the
 * commit guarantees (a majority minus the leader, itself included), so
 * WAIT 1 through a follower of three nodes answers 1 without waiting.
 * With --persistence none there are no replicas: 0 (after the timeout when
 * more were asked for), as a Redis master without replicas answers.
 * (docs/resp.md, "WAIT") */
#include <stdlib.h>
#include <string.h>

#include "api/resp_internal.h"
#include "util/alloc.h"
#include "util/strconv.h"

#define WAIT_POLL_MS 10
#define WAIT_MAX_MEMBERS 64

typedef struct resp_waiter {
    resp_req *req;
    uint64_t target;
    int64_t want;
    int64_t deadline; /* monotonic ms; 0: none */
    struct resp_waiter *prev, *next;
} resp_waiter;

struct resp_waits {
    uv_timer_t poll;
    resp_waiter *head;
    resp_api *ra;
};

static int64_t wait__now(void)
{
    return (int64_t)(uv_hrtime() / 1000000u);
}

/* Nodes other than the leader known to hold the log up to target. */
static int64_t wait__count(resp_api *ra, uint64_t target, bool *exact)
{
    replica *r = ra->a->replica;
    replica_member_info m[WAIT_MAX_MEMBERS];
    size_t n = replica_members(r, m, WAIT_MAX_MEMBERS);
    size_t voters = 0;
    int64_t count = 0;
    *exact = replica_is_leader(r);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(m[i].role, "voter") != 0) continue;
        voters++;
        if (*exact && !m[i].leader && m[i].match_index >= target) count++;
    }
    if (*exact) return count;
    /* a follower: committed means a majority holds it, the leader one of
     * them at most; this node holds it too (it has applied it) */
    int64_t guaranteed = voters ? (int64_t)(voters / 2 + 1) - 1 : 0;
    return guaranteed > 1 ? guaranteed : (voters > 1 ? 1 : 0);
}

static void wait__remove(resp_waits *w, resp_waiter *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        w->head = x->next;
    if (x->next) x->next->prev = x->prev;
    x->req->wait = NULL;
    free(x);
    if (!w->head) uv_timer_stop(&w->poll);
}

static void wait__poll_cb(uv_timer_t *t)
{
    resp_waits *w = t->data;
    int64_t now = wait__now();
    for (resp_waiter *x = w->head, *next; x; x = next) {
        next = x->next;
        bool exact;
        int64_t count = wait__count(w->ra, x->target, &exact);
        if (count < x->want && exact && (!x->deadline || now < x->deadline)) continue;
        resp_req *req = x->req;
        wait__remove(w, x);
        resp_write_integer(&req->reply, count);
        req->waiting = false;
        resp_req_finish_async(req);
    }
}

static void wait__ready(resp_req *req)
{
    resp_api *ra = req->rc->ra;
    uint64_t target = replica_applied_index(req->a->replica);
    bool exact;
    int64_t count = wait__count(ra, target, &exact);
    if (count >= req->n[0] || !exact || req->tx_exec) { /* in MULTI it does not wait (Redis') */
        resp_write_integer(&req->reply, count);
        return;
    }
    resp_waits *w = ra->waits;
    resp_waiter *x = xcalloc(1, sizeof(*x));
    x->req = req;
    x->target = target;
    x->want = req->n[0];
    x->deadline = req->n[1] ? wait__now() + req->n[1] : 0;
    x->next = w->head;
    if (w->head) w->head->prev = x;
    w->head = x;
    req->wait = x;
    req->waiting = true;
    if (!uv_is_active((uv_handle_t *)&w->poll))
        uv_timer_start(&w->poll, wait__poll_cb, WAIT_POLL_MS, WAIT_POLL_MS);
}

static void wait__cmd(resp_req *req)
{
    int64_t want, timeout;
    if (!resp_req_int_arg(req, &req->argv[1], &want)) return;
    if (!strconv_parse_i64(req->argv[2].ptr, req->argv[2].len, &timeout)) {
        resp_req_error(req, "ERR timeout is not an integer or out of range");
        return;
    }
    if (timeout < 0) {
        resp_req_error(req, "ERR timeout is negative");
        return;
    }
    req->n[0] = want;
    req->n[1] = timeout;
    resp_req_read(req, wait__ready);
}

void resp_wait_forget(resp_req *req)
{
    if (req->wait) wait__remove(req->rc->ra->waits, req->wait);
}

void resp_wait_init(resp_api *ra, uv_loop_t *loop)
{
    resp_waits *w = xcalloc(1, sizeof(*w));
    w->ra = ra;
    uv_timer_init(loop, &w->poll);
    w->poll.data = w;
    uv_unref((uv_handle_t *)&w->poll); /* a pending WAIT does not keep a shutdown waiting */
    ra->waits = w;
}

void resp_wait_close(resp_api *ra)
{
    resp_waits *w = ra->waits;
    if (!w) return;
    uv_timer_stop(&w->poll);
    /* the timer handle goes with the loop's final walk (cairnd closes
     * every handle), as pub/sub's; connections are gone, and their
     * requests with them */
    while (w->head) {
        resp_waiter *x = w->head;
        x->req->wait = NULL;
        w->head = x->next;
        free(x);
    }
    free(w);
    ra->waits = NULL;
}

const resp_cmd resp_cmds_wait[] = {
    {"wait", wait__cmd, 3, RESP_CMD_NOSCRIPT, 0, 0, 0, "generic", "3.0.0", "O(1)",
     "How many nodes besides the leader hold this connection's writes, waiting up to timeout "
     "ms for numreplicas of them (on the leader)",
     "numreplicas timeout"},
};
const size_t resp_cmds_wait_count = sizeof(resp_cmds_wait) / sizeof(resp_cmds_wait[0]);
