#include "replica/replica.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <raft.h>
#include <raft/uv.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kv/snapshot.h"
#include "net/tls.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "replica/datadir.h"
#include "replica/forward.h"
#include "replica/lazyfree.h"
#include "replica/logcheck.h"
#include "replica/barrier_guard.h"
#include "replica/disk_guard.h"
#include "replica/snapshot_handoff.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/hash.h"

#define TICK_MS 10
#define EXPIRY_SCAN_BUCKETS 1024 /* hash buckets looked at per expiry cycle */
#define EXPIRY_MAX_KEYS 256      /* keys per EXPIRE_KEYS command */

enum {
    OP_PROPOSE,
    OP_READ_BARRIER,
    OP_READ_INDEX, /* a follower's read-index request, served by this leader */
    OP_READ_REVISION,
    OP_FORWARD_WRITE,
    OP_FORWARD_READ,
    OP_READ_APPLIED
};

typedef struct replica_op replica_op;
typedef struct op_list op_list;
struct replica_op {
    replica *r;
    replica_req *req; /* NULL once detached (cancelled, timed out) */
    int kind;
    uint64_t seq;
    int64_t deadline_ms;
    uint64_t min_revision;
    bool internal_noop;
    bool internal_expiry;
    uint64_t term;            /* noop: the term it was proposed in; read index: arrival term */
    bool index_after_barrier; /* read index: take the commit index once the barrier is done */
    /* forwarding to the leader */
    buf payload;       /* the encoded command (writes) */
    forward_req *freq; /* the request in flight, if any */
    unsigned attempts;
    int64_t retry_at_ms;
    uint64_t wait_index; /* reads: serve once applied >= this */
    bool internal_member;
    int status; /* for completions waiting on r->completed */
    struct raft_apply apply;
    op_list *list;
    replica_op *prev, *next;
};

struct op_list {
    replica_op *head, *tail;
    size_t n;
};

struct replica {
    uv_loop_t *loop;
    const cairn_config *cfg;
    kv_store *store;
    bool durable;
    uint64_t id;

    struct raft raft;
    struct raft_io io;
    struct raft_uv_transport transport;
    struct raft_fsm fsm;
    /* raft_io seam: the transport's messages pass through the handoff,
     * which holds a leader's snapshot while libraft would ignore it */
    snapshot_handoff handoff;
    /* and a log truncate and a snapshot write never overlap in libraft */
    barrier_guard guard;
    int (*io_start)(struct raft_io *, unsigned, raft_io_tick_cb, raft_io_recv_cb);
    bool raft_started;
    char raft_dir[1100];
    disk_guard disk;                  /* refuses writes before the disk is full */
    uint64_t storage_errors;          /* failed log writes */
    uint64_t storage_error_logged_ns; /* last error line */
    char storage_error[256];          /* libraft's message for the last one */

    uint64_t seq;
    op_list proposals;    /* in seq order; deadlines ascend */
    op_list rev_waiters;  /* min_revision reads; deadlines ascend */
    op_list barrier_next; /* linearizable reads for the next barrier */
    op_list barrier_now;  /* reads served by the barrier in flight */
    /* Completions are never run inside a libraft callback: a client
     * callback may start the next request (a pipelined write), and calling
     * into libraft while it is converting state (leadership lost) crashes
     * it. They wait here and run on the next loop iteration (`kick`). */
    op_list completed;
    uv_timer_t kick;
    bool kick_armed;
    op_list forwards;      /* writes and read-index requests sent to the leader */
    op_list index_waiters; /* reads waiting for the local applied index */
    forward *fwd;          /* over TLS when this node serves TLS */
    uv_signal_t fwd_hup;   /* SIGHUP: forwarding re-reads the TLS files */
    bool fwd_hup_on;
    bool member_inflight;
    int64_t member_next_ms;
    struct raft_barrier barrier;
    bool barrier_inflight;
    uint64_t inflight; /* client proposals in flight (admission control) */

    /* A leader serves local linearizable reads only after an entry of its
     * own term has been applied (Raft thesis §6.4): before that it may not
     * know the latest committed state. */
    bool leader_ready;
    uint64_t leader_ready_term;
    bool noop_inflight;
    uint64_t noop_term;

    /* active expiry */
    uint64_t expiry_cursor;
    int64_t expiry_next_ms;
    bool expiry_inflight;

    /* snapshot child (see fsm__snapshot) */
    pid_t snap_pid;
    int snap_fd;
    size_t snap_buf_cap; /* mapping size of the collected snapshot */
    uint64_t snap_started_ns;
    uint64_t snap_fork_ns;
    int snap_error;
    uint64_t snapshots_taken;
    uint64_t snapshot_bytes;
    double snapshot_last_seconds;
    double snapshot_max_fork_seconds;

    kv_slice *decode_args;
    uint32_t decode_cap;
    buf expiry_keys;
    char restore_error[1600];

    uv_timer_t tick;
    struct raft_transfer transfer;
    void (*stepdown_cb)(void *);
    void *stepdown_ctx;
    bool stepdown_done;
    void (*close_cb)(void *);
    void *close_ctx;
    bool closing;

    uint64_t leader_changes;
    uint64_t last_leader_seen;
    struct peer_gauge *peer_gauges; /* per-peer metrics registered so far */
    uint64_t snapshots_received;
    metrics_counter *m_proposals_ok, *m_proposals_failed, *m_shed, *m_expiry_cycles;
    metrics_counter *m_forwarded, *m_forward_failures;
    metrics_histogram *m_snapshot_seconds, *m_snapshot_fork_seconds;
};

/* ---- small helpers ---------------------------------------------------- */

int64_t replica_now_ms(void)
{
    return clock_wall_ms();
}

/* The op lists are intrusive doubly linked lists. Invariant (asserted
 * in test and sanitizer builds): an op is on at most one list, op->list
 * names it, and the list's head, tail and count agree with the links. */
static void list_push(op_list *l, replica_op *op)
{
    assert(op->list == NULL && op->prev == NULL && op->next == NULL);
    op->list = l;
    op->prev = l->tail;
    if (l->tail)
        l->tail->next = op;
    else
        l->head = op;
    l->tail = op;
    l->n++;
}

static void list_remove(replica_op *op)
{
    op_list *l = op->list;
    if (!l) return;
    assert(l->n > 0);
    assert(op->prev ? op->prev->next == op : l->head == op);
    assert(op->next ? op->next->prev == op : l->tail == op);
    if (op->prev)
        op->prev->next = op->next;
    else
        l->head = op->next;
    if (op->next)
        op->next->prev = op->prev;
    else
        l->tail = op->prev;
    op->prev = op->next = NULL;
    op->list = NULL;
    l->n--;
}

/* Move every op of `from` to the end of `to`, in order, by joining the two
 * chains once; only op->list is rewritten op by op. Not a pop-and-push loop:
 * GCC 12.2 at -O3 compiled that loop, in replica__barrier_done, into one
 * that never re-read from->head and never ended (docs/design.md, "The op
 * lists and GCC -O3"; tests/unit/test_replica_barrier.c). */
static void list_move_all(op_list *to, op_list *from)
{
    assert(to != from);
    if (!from->head) return;
    size_t n = 0;
    for (replica_op *op = from->head; op; op = op->next, n++) {
        assert(op->list == from);
        op->list = to;
    }
    assert(n == from->n);
    if (to->tail) {
        to->tail->next = from->head;
        from->head->prev = to->tail;
    } else {
        to->head = from->head;
    }
    to->tail = from->tail;
    to->n += n;
    from->head = from->tail = NULL;
    from->n = 0;
}

const char *replica_status_text(int status)
{
    switch (status) {
    case REPLICA_OK:
        return "ok";
    case REPLICA_ERR_BUSY:
        return "too many requests in flight";
    case REPLICA_ERR_NO_LEADER:
        return "no leader";
    case REPLICA_ERR_NOT_LEADER:
        return "not the leader";
    case REPLICA_ERR_TIMEOUT:
        return "quorum lost: not committed in time";
    case REPLICA_ERR_INDETERMINATE:
        return "leadership lost: outcome unknown";
    case REPLICA_ERR_SHUTDOWN:
        return "node is shutting down";
    case REPLICA_ERR_READ_TIMEOUT:
        return "revision not reached in time";
    case REPLICA_ERR_STORAGE:
        return "storage error: this node could not write its log (disk full or failing); "
               "outcome unknown";
    case REPLICA_ERR_NOSPACE:
        return "disk almost full: writes refused until space is freed (not applied; deletes "
               "still work)";
    default:
        return "internal error";
    }
}

void replica_req_init(replica_req *req, void *data, replica_cb cb)
{
    memset(req, 0, sizeof(*req));
    req->data = data;
    req->cb = cb;
    buf_init(&req->value_buf);
}

void replica_req_close(replica_req *req)
{
    if (req->op) replica_cancel(req);
    buf_close(&req->value_buf);
}

static replica_op *op_new(replica *r, replica_req *req, int kind, double timeout_s)
{
    replica_op *op = xcalloc(1, sizeof(*op));
    op->r = r;
    op->req = req;
    op->kind = kind;
    op->deadline_ms = clock_mono_ms() + (int64_t)(timeout_s * 1000);
    op->apply.data = op;
    if (req) req->op = op;
    return op;
}

/* Release an op that libraft does not reference (reads, forwards). */
static void op_free(replica_op *op)
{
    list_remove(op);
    if (op->freq) forward_cancel(op->freq);
    if (op->internal_member) op->r->member_inflight = false;
    buf_close(&op->payload);
    free(op);
}

/* Complete an op's request, if one is still attached. */
static void op_finish(replica_op *op, int status)
{
    replica_req *req = op->req;
    if (!req) return;
    op->req = NULL;
    req->op = NULL;
    req->cb(req, status);
}

/* Finish an op that is ours alone (reads, forwards): it goes at once. */
static void read_finish(replica_op *op, int status)
{
    list_remove(op);
    op_finish(op, status);
    op_free(op);
}

static void replica__kick(replica *r);

/* Queue an op's completion for the next loop iteration (see `completed`). */
static void complete_later(replica_op *op, int status)
{
    list_remove(op);
    op->status = status;
    list_push(&op->r->completed, op);
    replica__kick(op->r);
}

void replica_cancel(replica_req *req)
{
    replica_op *op = req->op;
    if (!op) return;
    req->op = NULL;
    op->req = NULL;
    /* A proposal stays until libraft calls back: libraft holds a pointer
     * into it (unless it already did and the op only waits to complete).
     * Reads are ours alone. */
    if (op->kind != OP_PROPOSE || op->list == &op->r->completed) op_free(op);
}

/* ---- the state machine glue (libraft FSM) ------------------------------ */

static void replica__wake_rev_waiters(replica *r)
{
    replica_op *op = r->rev_waiters.head;
    while (op) {
        replica_op *next = op->next;
        /* called from inside libraft's apply: complete later */
        if (r->store->revision >= op->min_revision) complete_later(op, REPLICA_OK);
        op = next;
    }
}

/* Deliver a result to the proposal that produced the command, if it was
 * proposed here. Proposals apply in order, so the match is at or near the
 * head of the list. */
static void replica__on_result(void *ctx, const kv_command *cmd, const kv_result *res)
{
    replica *r = ctx;
    if (!r->durable || cmd->origin != r->id) return;
    for (replica_op *op = r->proposals.head; op; op = op->next) {
        if (op->seq != cmd->seq) continue;
        replica_req *req = op->req;
        if (req) {
            req->result = *res;
            buf_reset(&req->value_buf);
            buf_append(&req->value_buf, res->value, res->value_len);
            req->result.value = req->value_buf.data ? req->value_buf.data : "";
        }
        return;
    }
}

static int fsm__apply(struct raft_fsm *fsm, const struct raft_buffer *b, void **result)
{
    replica *r = fsm->data;
    kv_command cmd;
    const char *why = NULL;
    uint32_t need = 0;
    *result = NULL;
    int rv = kv_command_decode(b->base, b->len, &cmd, r->decode_args, r->decode_cap, &need, &why);
    if (rv == -2) {
        r->decode_args = xrealloc(r->decode_args, need * sizeof(kv_slice));
        r->decode_cap = need;
        rv = kv_command_decode(b->base, b->len, &cmd, r->decode_args, r->decode_cap, &need, &why);
    }
    if (rv != 0) {
        /* An entry that passed libraft's checksum but does not decode was
         * written by an incompatible version: stopping is the only safe
         * answer, applying a guess would fork the state. */
        LOG_ERROR("cannot decode log entry", LF_S("error", why),
                  LF_I("index", raft_last_applied(&r->raft) + 1));
        return RAFT_MALFORMED;
    }
    kv_result res;
    kv_store_apply(r->store, &cmd, &res);
    replica__wake_rev_waiters(r);
    return 0;
}

static int fsm__restore(struct raft_fsm *fsm, struct raft_buffer *b)
{
    replica *r = fsm->data;
    char err[256];
    uint64_t t0 = clock_mono_ns();
    if (kv_snapshot_load(r->store, b->base, b->len, err, sizeof(err)) != 0) {
        char file[1300] = "";
        if (logcheck_latest_snapshot(r->raft_dir, file, sizeof(file)) != 0)
            snprintf(file, sizeof(file), "%s (snapshot received from the leader)", r->raft_dir);
        LOG_ERROR("cannot load snapshot", LF_S("file", file), LF_S("error", err));
        snprintf(r->restore_error, sizeof(r->restore_error), "snapshot %s: %s", file, err);
        return RAFT_CORRUPT;
    }
    LOG_INFO("snapshot loaded", LF_I("keys", kv_keyspace_count(&r->store->ks)),
             LF_I("revision", r->store->revision), LF_I("bytes", b->len),
             LF_I("ms", (clock_mono_ns() - t0) / 1000000));
    raft_free(b->base);                           /* on success the FSM owns the buffer */
    if (r->raft_started) r->snapshots_received++; /* installed from the leader */
    replica__wake_rev_waiters(r);
    return 0;
}

/* Snapshots never stall the loop for long: the loop only forks. The child
 * sees a frozen copy-on-write image of the keyspace and streams it into a
 * pipe; a thread-pool thread (snapshot_async) collects it; the loop keeps
 * serving meanwhile. This is how Redis writes RDB files, and the stall is
 * the fork itself (page-table copy), measured and exported as a metric. */
static int fsm__snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    replica *r = fsm->data;
    if (r->snap_pid > 0) return RAFT_BUSY;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return RAFT_IOERR;
    uint64_t t0 = clock_mono_ns();
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return RAFT_IOERR;
    }
    if (pid == 0) {
        close(p[0]);
        int fd = p[1];
        int rv = kv_snapshot_write(r->store, kv_snapshot_sink_fd, &fd);
        _exit(rv == 0 ? 0 : 1);
    }
    close(p[1]);
    r->snap_pid = pid;
    r->snap_fd = p[0];
    r->snap_started_ns = t0;
    r->snap_fork_ns = clock_mono_ns() - t0;
    *bufs = raft_malloc(sizeof(struct raft_buffer));
    if (!*bufs) return RAFT_NOMEM;
    (*bufs)[0].base = NULL;
    (*bufs)[0].len = 0;
    *n_bufs = 1;
    return 0;
}

/* The snapshot buffer is mapped directly rather than malloc'd. Collected on
 * a thread-pool thread, a malloc'd buffer that doubles its way up lives in
 * that thread's glibc arena until it crosses the (dynamic) mmap threshold;
 * glibc keeps the arena's pages after the free, so every pool thread that
 * ever collected a snapshot held 16-25 MB of free heap for good (measured:
 * 4 arenas, ~64 MB RSS at 1M keys). A mapping goes back to the OS at once. */
static void *snapbuf__grow(void *old, size_t old_cap, size_t cap)
{
    void *p = old ? mremap(old, old_cap, cap, MREMAP_MAYMOVE)
                  : mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Runs on a thread-pool thread: must not log or touch loop state. */
static int fsm__snapshot_async(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    replica *r = fsm->data;
    size_t cap = 1 << 20, len = 0;
    char *data = snapbuf__grow(NULL, 0, cap);
    int rv = 0;
    for (;;) {
        if (!data) {
            rv = RAFT_NOMEM;
            break;
        }
        if (len == cap) {
            char *bigger = snapbuf__grow(data, cap, cap * 2);
            if (!bigger) {
                rv = RAFT_NOMEM;
                break;
            }
            data = bigger;
            cap *= 2;
        }
        ssize_t k = read(r->snap_fd, data + len, cap - len);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            rv = RAFT_IOERR;
            break;
        }
        if (k == 0) break;
        len += (size_t)k;
    }
    close(r->snap_fd);
    r->snap_fd = -1;
    int status = 0;
    while (waitpid(r->snap_pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) rv = RAFT_IOERR;
    r->snap_error = rv;
    if (rv != 0 && data) {
        munmap(data, cap);
        data = NULL;
        cap = len = 0;
    }
    r->snap_buf_cap = cap;
    (*bufs)[0].base = data;
    (*bufs)[0].len = len;
    (void)n_bufs;
    return rv;
}

static int fsm__snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                                  unsigned *n_bufs)
{
    replica *r = fsm->data;
    double secs = (double)(clock_mono_ns() - r->snap_started_ns) / 1e9;
    double fork_secs = (double)r->snap_fork_ns / 1e9;
    if (*bufs) {
        if (r->snap_error == 0 && (*bufs)[0].base) {
            r->snapshots_taken++;
            r->snapshot_bytes = (*bufs)[0].len;
            r->snapshot_last_seconds = secs;
            if (fork_secs > r->snapshot_max_fork_seconds) r->snapshot_max_fork_seconds = fork_secs;
            metrics_histogram_observe(r->m_snapshot_seconds, secs);
            metrics_histogram_observe(r->m_snapshot_fork_seconds, fork_secs);
            LOG_INFO("snapshot taken", LF_I("bytes", (*bufs)[0].len),
                     LF_I("keys", kv_keyspace_count(&r->store->ks)),
                     LF_I("fork_us", r->snap_fork_ns / 1000), LF_I("ms", (long long)(secs * 1000)));
        } else {
            LOG_ERROR("snapshot failed", LF_I("code", r->snap_error));
        }
        if ((*bufs)[0].base) munmap((*bufs)[0].base, r->snap_buf_cap);
        r->snap_buf_cap = 0;
        raft_free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    r->snap_pid = 0;
    return 0;
}

/* libraft 0.15's disk backend predates async work (io version 2), which
 * async snapshots need; the interface is a single function, so we provide
 * it on the loop's thread pool. */
typedef struct async_job {
    uv_work_t work;
    struct raft_io_async_work *req;
    int status;
} async_job;

static void replica__async_run(uv_work_t *w)
{
    async_job *job = w->data;
    job->status = job->req->work(job->req);
}

static void replica__async_done(uv_work_t *w, int status)
{
    async_job *job = w->data;
    struct raft_io_async_work *req = job->req;
    int rv = status == UV_ECANCELED ? RAFT_CANCELED : job->status;
    free(job);
    req->cb(req, rv);
}

static int replica__async_work(struct raft_io *io, struct raft_io_async_work *req,
                               raft_io_async_work_cb cb)
{
    replica *r = (replica *)((char *)io - offsetof(replica, io));
    async_job *job = xcalloc(1, sizeof(*job));
    job->req = req;
    job->work.data = job;
    req->cb = cb;
    int rv = uv_queue_work(r->loop, &job->work, replica__async_run, replica__async_done);
    if (rv != 0) {
        free(job);
        return RAFT_IOERR;
    }
    return 0;
}

/* ---- proposals ---------------------------------------------------------- */

static int replica__role_is_voter(const struct raft_configuration *c, uint64_t id)
{
    for (unsigned i = 0; i < c->n; i++)
        if (c->servers[i].id == id) return c->servers[i].role == RAFT_VOTER;
    return 0;
}

static unsigned replica__voters(const struct raft_configuration *c)
{
    unsigned n = 0;
    for (unsigned i = 0; i < c->n; i++) n += c->servers[i].role == RAFT_VOTER;
    return n;
}

/* A log write failed (libraft reports RAFT_IOERR / RAFT_NOSPACE to every
 * proposal the write carried). One error line per episode, naming what
 * libraft could not write, then one a minute while it lasts. A full disk
 * fails libraft's preallocation of the next segment; that is retried with
 * the next write, so writes succeed again as soon as space is back. */
static void replica__storage_error(replica *r)
{
    r->storage_errors++;
    const char *why = raft_errmsg(&r->raft);
    snprintf(r->storage_error, sizeof(r->storage_error), "%s", why && why[0] ? why : "I/O error");
    uint64_t now = clock_mono_ns();
    if (r->storage_error_logged_ns && now - r->storage_error_logged_ns < 60ULL * 1000000000ULL)
        return;
    r->storage_error_logged_ns = now;
    LOG_ERROR("cannot write the raft log: writes through this node fail while this lasts",
              LF_S("error", r->storage_error), LF_S("dir", r->raft_dir),
              LF_I("failed_writes", r->storage_errors));
}

static void replica__proposal_done(struct raft_apply *a, int status, void *result)
{
    replica_op *op = a->data;
    replica *r = op->r;
    (void)result;
    list_remove(op);
    if (!op->internal_noop && !op->internal_expiry && !op->internal_member) r->inflight--;
    if (op->internal_member) r->member_inflight = false;
    if (op->internal_noop) {
        r->noop_inflight = false;
        if (status == 0 && raft_state(&r->raft) == RAFT_LEADER &&
            r->raft.current_term == op->term) {
            r->leader_ready = true;
            r->leader_ready_term = op->term;
            LOG_INFO("leader ready", LF_I("term", op->term));
        }
    }
    if (op->internal_expiry) r->expiry_inflight = false;
    int st = REPLICA_OK;
    switch (status) {
    case 0:
        break;
    case RAFT_NOTLEADER:
        st = REPLICA_ERR_NOT_LEADER;
        break;
    case RAFT_SHUTDOWN:
        st = REPLICA_ERR_SHUTDOWN;
        break;
    case RAFT_IOERR:
    case RAFT_NOSPACE:
        /* our own log write failed; followers may still have it, so the
         * outcome is unknown as after a lost leadership */
        st = REPLICA_ERR_STORAGE;
        replica__storage_error(r);
        break;
    default:
        st = REPLICA_ERR_INDETERMINATE;
        break;
    }
    metrics_counter_add(st == REPLICA_OK ? r->m_proposals_ok : r->m_proposals_failed, 1);
    if (op->req) {
        complete_later(op, st);
    } else {
        op_free(op);
    }
}

static int replica__submit(replica *r, replica_op *op, kv_command *cmd)
{
    cmd->origin = r->id;
    cmd->seq = ++r->seq;
    op->seq = cmd->seq;
    size_t n = kv_command_encoded_size(cmd);
    struct raft_buffer b = {.base = raft_malloc(n), .len = n};
    if (!b.base) return REPLICA_ERR_INTERNAL;
    kv_command_encode_to(cmd, b.base);
    list_push(&r->proposals, op);
    int rv = raft_apply(&r->raft, &op->apply, &b, 1, replica__proposal_done);
    if (rv != 0) {
        list_remove(op);
        raft_free(b.base);
        return rv == RAFT_NOTLEADER ? REPLICA_ERR_NOT_LEADER : REPLICA_ERR_INTERNAL;
    }
    return REPLICA_OK;
}

static int replica__forward(replica *r, replica_req *req, int kind, const kv_command *cmd,
                            double timeout);

static int replica__propose(replica *r, replica_req *req, kv_command *cmd, bool may_forward)
{
    if (r->closing) return REPLICA_ERR_SHUTDOWN;
    if (!cmd->now_ms) cmd->now_ms = replica_now_ms();
    if (!r->durable) {
        /* persistence none: apply at once, same state machine */
        cmd->origin = 0;
        kv_result res;
        kv_store_apply(r->store, cmd, &res);
        req->result = res;
        buf_reset(&req->value_buf);
        buf_append(&req->value_buf, res.value, res.value_len);
        req->result.value = req->value_buf.data ? req->value_buf.data : "";
        metrics_counter_add(r->m_proposals_ok, 1);
        req->cb(req, REPLICA_OK);
        return REPLICA_OK;
    }
    if (r->inflight >= r->cfg->max_inflight) {
        metrics_counter_add(r->m_shed, 1);
        return REPLICA_ERR_BUSY;
    }
    if (raft_state(&r->raft) != RAFT_LEADER) {
        if (!may_forward) return REPLICA_ERR_NOT_LEADER;
        cmd->origin = r->id;
        cmd->seq = ++r->seq;
        return replica__forward(r, req, OP_FORWARD_WRITE, cmd, r->cfg->write_timeout);
    }
    if (disk_guard_refuses(&r->disk, cmd->op)) return REPLICA_ERR_NOSPACE;
    replica_op *op = op_new(r, req, OP_PROPOSE, r->cfg->write_timeout);
    int rv = replica__submit(r, op, cmd);
    if (rv != REPLICA_OK) {
        req->op = NULL;
        free(op);
        return rv;
    }
    r->inflight++;
    return REPLICA_OK;
}

int replica_propose(replica *r, replica_req *req, kv_command *cmd)
{
    return replica__propose(r, req, cmd, true);
}

int replica_propose_here(replica *r, replica_req *req, kv_command *cmd)
{
    return replica__propose(r, req, cmd, false);
}

/* ---- forwarding to the leader -------------------------------------------- */

#define FORWARD_BACKOFF_MIN_MS 20
#define FORWARD_BACKOFF_MAX_MS 500

static void replica__forward_attempt(replica *r, replica_op *op);

/* Exponential backoff with full jitter: spreads retries of many followers
 * across a leader change instead of synchronising them. */
static void replica__forward_later(replica *r, replica_op *op)
{
    unsigned shift = op->attempts < 5 ? op->attempts : 5;
    int64_t cap = FORWARD_BACKOFF_MIN_MS << shift;
    if (cap > FORWARD_BACKOFF_MAX_MS) cap = FORWARD_BACKOFF_MAX_MS;
    op->retry_at_ms = clock_mono_ms() + FORWARD_BACKOFF_MIN_MS / 2 + (int64_t)(rand() % (int)cap);
    op->attempts++;
    (void)r;
}

static void replica__forward_done(void *ctx, int status, bool sent, int http_status,
                                  const char *body, size_t len)
{
    replica_op *op = ctx;
    replica *r = op->r;
    op->freq = NULL;
    bool write = op->kind == OP_FORWARD_WRITE;
    if (status == FORWARD_OK && http_status == 200) {
        if (write) {
            kv_result res;
            if (kv_result_decode(body, len, &res) != 0) {
                read_finish(op, REPLICA_ERR_INDETERMINATE);
                return;
            }
            if (op->req) {
                replica_req *req = op->req;
                req->result = res;
                buf_reset(&req->value_buf);
                buf_append(&req->value_buf, res.value, res.value_len);
                req->result.value = req->value_buf.data ? req->value_buf.data : "";
            }
            metrics_counter_add(r->m_forwarded, 1);
            read_finish(op, REPLICA_OK);
            return;
        }
        uint64_t index = 0;
        char tmp[32];
        size_t n = len < sizeof(tmp) - 1 ? len : sizeof(tmp) - 1;
        memcpy(tmp, body, n);
        tmp[n] = '\0';
        index = strtoull(tmp, NULL, 10);
        metrics_counter_add(r->m_forwarded, 1);
        list_remove(op);
        op->kind = OP_READ_APPLIED;
        op->wait_index = index;
        list_push(&r->index_waiters, op);
        if (raft_last_applied(&r->raft) >= index) read_finish(op, REPLICA_OK);
        return;
    }
    metrics_counter_add(r->m_forward_failures, 1);
    if (status == FORWARD_OK && http_status == 503 && len > 0) {
        /* the leader ran it and failed it: pass its status on */
        int st = atoi(body);
        if (st > 0 && st != REPLICA_ERR_NOT_LEADER && st != REPLICA_ERR_NO_LEADER) {
            read_finish(op, st);
            return;
        }
    }
    /* 421: that node was not the leader and did nothing; not sent: nothing
     * reached it. Both are safe to retry. A write that may have reached
     * the leader is never sent again: at most once. */
    bool safe = (status == FORWARD_OK && (http_status == 421 || http_status == 503)) || !sent;
    if (write && !safe) {
        read_finish(op, REPLICA_ERR_INDETERMINATE);
        return;
    }
    replica__forward_later(r, op);
}

static void replica__forward_attempt(replica *r, replica_op *op)
{
    int64_t now = clock_mono_ms();
    if (now >= op->deadline_ms) {
        raft_id leader = 0;
        const char *addr = NULL;
        raft_leader(&r->raft, &leader, &addr);
        read_finish(op, leader ? REPLICA_ERR_TIMEOUT : REPLICA_ERR_NO_LEADER);
        return;
    }
    if (raft_state(&r->raft) == RAFT_LEADER) {
        /* we became the leader meanwhile: serve it here */
        replica_req *req = op->req;
        if (!req) {
            op_free(op);
            return;
        }
        op->req = NULL;
        req->op = NULL;
        bool write = op->kind == OP_FORWARD_WRITE;
        kv_command cmd;
        kv_slice args_space[64];
        uint32_t need = 0;
        const char *why = NULL;
        int st = REPLICA_ERR_INTERNAL;
        if (write && kv_command_decode(op->payload.data, op->payload.len, &cmd, args_space, 64,
                                       &need, &why) == 0)
            st = replica_propose(r, req, &cmd);
        else if (!write)
            st = replica_read(r, req, REPLICA_READ_LINEARIZABLE, 0);
        op_free(op);
        if (st != REPLICA_OK) req->cb(req, st);
        return;
    }
    raft_id leader = 0;
    const char *addr = NULL;
    raft_leader(&r->raft, &leader, &addr);
    const kv_member *m = leader ? kv_store_member(r->store, leader) : NULL;
    if (!m || !m->http[0]) {
        replica__forward_later(r, op);
        return;
    }
    double left = (double)(op->deadline_ms - now) / 1000.0;
    bool write = op->kind == OP_FORWARD_WRITE;
    op->freq = forward_post(
        r->fwd, leader, m->http, write ? "/internal/v1/propose" : "/internal/v1/read-index",
        op->payload.data, op->payload.len, true, left, replica__forward_done, op);
    if (!op->freq) replica__forward_later(r, op);
}

static int replica__forward(replica *r, replica_req *req, int kind, const kv_command *cmd,
                            double timeout)
{
    replica_op *op = op_new(r, req, kind, timeout);
    buf_init(&op->payload);
    if (cmd) kv_command_encode(cmd, &op->payload);
    list_push(&r->forwards, op);
    replica__forward_attempt(r, op);
    return REPLICA_OK;
}

static void replica__forward_tick(replica *r)
{
    int64_t now = clock_mono_ms();
    for (replica_op *op = r->forwards.head; op;) {
        replica_op *next = op->next;
        if (!op->freq && op->retry_at_ms <= now) replica__forward_attempt(r, op);
        op = next;
    }
    uint64_t applied = raft_last_applied(&r->raft);
    for (replica_op *op = r->index_waiters.head; op;) {
        replica_op *next = op->next;
        if (applied >= op->wait_index)
            read_finish(op, REPLICA_OK);
        else if (now >= op->deadline_ms)
            read_finish(op, REPLICA_ERR_TIMEOUT);
        op = next;
    }
}

/* Make sure the replicated member table holds this node's client
 * addresses, so that others can forward to it and list it. */
static void replica__register_member(replica *r)
{
    const kv_member *m = kv_store_member(r->store, r->id);
    const char *resp = r->cfg->listen_resp;
    if (m && strcmp(m->http, r->cfg->listen_http) == 0 && strcmp(m->resp, resp) == 0) return;
    int64_t now = clock_mono_ms();
    if (r->member_inflight || now < r->member_next_ms) return;
    r->member_next_ms = now + 500;
    kv_slice args[2] = {{r->cfg->listen_http, strlen(r->cfg->listen_http)}, {resp, strlen(resp)}};
    kv_command cmd = {.op = KV_OP_MEMBER,
                      .a = (int64_t)r->id,
                      .nargs = 2,
                      .args = args,
                      .now_ms = replica_now_ms()};
    if (raft_state(&r->raft) == RAFT_LEADER) {
        if (!r->leader_ready) return;
        replica_op *op = op_new(r, NULL, OP_PROPOSE, 3600);
        op->internal_member = true;
        if (replica__submit(r, op, &cmd) != REPLICA_OK) {
            free(op);
            return;
        }
    } else {
        raft_id leader = 0;
        const char *addr = NULL;
        raft_leader(&r->raft, &leader, &addr);
        if (!leader) return;
        cmd.origin = r->id;
        cmd.seq = ++r->seq;
        replica__forward(r, NULL, OP_FORWARD_WRITE, &cmd, r->cfg->write_timeout);
        if (r->forwards.tail) r->forwards.tail->internal_member = true;
    }
    r->member_inflight = true;
}

/* ---- reads -------------------------------------------------------------- */

static void replica__barrier_done(struct raft_barrier *b, int status);

static void replica__start_barrier(replica *r)
{
    if (r->barrier_inflight || !r->barrier_next.head) return;
    list_move_all(&r->barrier_now, &r->barrier_next);
    r->barrier.data = r;
    int rv = raft_barrier(&r->raft, &r->barrier, replica__barrier_done);
    if (rv != 0) {
        int st = rv == RAFT_NOTLEADER ? REPLICA_ERR_NOT_LEADER : REPLICA_ERR_INTERNAL;
        while (r->barrier_now.head) read_finish(r->barrier_now.head, st);
        return;
    }
    r->barrier_inflight = true;
}

/* The index a follower must apply before it serves a linearizable read,
 * decided once the barrier has confirmed this node still leads. The commit
 * index at arrival (kept in req->read_index) saves the follower a heartbeat
 * interval, but only counts when this leader had already committed an entry
 * of its own term at arrival and the barrier ran in that same term (Raft
 * thesis §6.4: before that, its commit index may lack an entry the previous
 * leader committed and acknowledged). Otherwise the barrier, an entry of
 * the current term, has just committed: the commit index now is right. */
static void replica__read_index_settle(replica *r, replica_op *op)
{
    if (op->index_after_barrier || op->term != r->raft.current_term)
        op->req->read_index = r->raft.commit_index;
}

static void replica__barrier_done(struct raft_barrier *b, int status)
{
    replica *r = b->data;
    r->barrier_inflight = false;
    if (status == 0 || r->closing) {
        int st = status == 0 ? REPLICA_OK : REPLICA_ERR_SHUTDOWN;
        for (replica_op *op = r->barrier_now.head; op; op = op->next) {
            op->status = st;
            if (op->kind == OP_READ_INDEX && op->req && status == 0)
                replica__read_index_settle(r, op);
        }
        list_move_all(&r->completed, &r->barrier_now);
    } else {
        /* leadership lost: reads are safe to retry, so they go back in the
         * queue (oldest first) and the kick sends them to the new leader */
        list_move_all(&r->barrier_now, &r->barrier_next); /* failed batch, then newer reads */
        list_move_all(&r->barrier_next, &r->barrier_now);
    }
    replica__kick(r); /* the next barrier starts outside this callback */
}

/* Queued linearizable reads: a leader starts a barrier for them; a node
 * that no longer leads forwards them (read-index) to the new leader. */
static void replica__serve_queued_reads(replica *r)
{
    if (r->barrier_inflight || !r->barrier_next.head || r->closing) return;
    if (raft_state(&r->raft) == RAFT_LEADER) {
        replica__start_barrier(r);
        return;
    }
    while (r->barrier_next.head) {
        replica_op *op = r->barrier_next.head;
        if (op->kind == OP_READ_INDEX) {
            /* asked of us as the leader: the follower asks the new one */
            complete_later(op, REPLICA_ERR_NOT_LEADER);
            continue;
        }
        list_remove(op);
        op->kind = OP_FORWARD_READ;
        buf_init(&op->payload);
        list_push(&r->forwards, op);
        replica__forward_attempt(r, op);
    }
}

static void replica__drain_completions(replica *r);

static void replica__run_completions(uv_timer_t *t)
{
    replica *r = t->data;
    r->kick_armed = false;
    replica__drain_completions(r);
    replica__serve_queued_reads(r);
    if (r->stepdown_done) {
        r->stepdown_done = false;
        if (r->stepdown_cb) r->stepdown_cb(r->stepdown_ctx);
    }
}

static void replica__drain_completions(replica *r)
{
    /* a completion may queue more: take only what is there now */
    op_list batch = {0};
    list_move_all(&batch, &r->completed);
    while (batch.head) {
        replica_op *op = batch.head;
        list_remove(op);
        op_finish(op, op->status);
        op_free(op);
    }
}

static void replica__kick(replica *r)
{
    if (r->kick_armed || r->closing) return;
    r->kick_armed = true;
    uv_timer_start(&r->kick, replica__run_completions, 0, 0);
}

static bool replica__local_reads_ok(replica *r)
{
    return raft_state(&r->raft) == RAFT_LEADER && r->leader_ready &&
           r->leader_ready_term == r->raft.current_term &&
           replica__voters(&r->raft.configuration) == 1;
}

int replica_read(replica *r, replica_req *req, int consistency, uint64_t min_revision)
{
    if (r->closing) return REPLICA_ERR_SHUTDOWN;
    if (min_revision > r->store->revision) {
        replica_op *op = op_new(r, req, OP_READ_REVISION, r->cfg->read_wait_timeout);
        op->min_revision = min_revision;
        list_push(&r->rev_waiters, op);
        return REPLICA_OK;
    }
    if (!r->durable || consistency == REPLICA_READ_STALE || replica__local_reads_ok(r)) {
        req->cb(req, REPLICA_OK);
        return REPLICA_OK;
    }
    if (raft_state(&r->raft) != RAFT_LEADER) {
        /* read-index: the leader confirms its leadership and tells us how
         * far to apply; then the local state is at least as new as any
         * write acknowledged before this read began */
        return replica__forward(r, req, OP_FORWARD_READ, NULL, r->cfg->write_timeout);
    }
    replica_op *op = op_new(r, req, OP_READ_BARRIER, r->cfg->write_timeout);
    list_push(&r->barrier_next, op);
    replica__start_barrier(r);
    return REPLICA_OK;
}

int replica_read_index(replica *r, replica_req *req)
{
    if (r->closing) return REPLICA_ERR_SHUTDOWN;
    if (!r->durable || raft_state(&r->raft) != RAFT_LEADER) return REPLICA_ERR_NOT_LEADER;
    replica_op *op = op_new(r, req, OP_READ_INDEX, r->cfg->write_timeout);
    op->term = r->raft.current_term;
    op->index_after_barrier = !(r->leader_ready && r->leader_ready_term == r->raft.current_term);
    req->read_index = r->raft.commit_index;
    list_push(&r->barrier_next, op);
    replica__start_barrier(r);
    return REPLICA_OK;
}

uint64_t replica_applied_index(replica *r)
{
    return r->durable ? raft_last_applied(&r->raft) : r->store->revision;
}

/* ---- periodic work ------------------------------------------------------- */

static void replica__expire_deadlines(replica *r)
{
    int64_t now = clock_mono_ms();
    /* lists are in deadline order: stop at the first op still in time */
    for (replica_op *op = r->proposals.head; op && op->deadline_ms <= now; op = op->next)
        if (op->req) op_finish(op, REPLICA_ERR_TIMEOUT); /* stays listed until libraft answers */
    while (r->rev_waiters.head && r->rev_waiters.head->deadline_ms <= now)
        read_finish(r->rev_waiters.head, REPLICA_ERR_READ_TIMEOUT);
    while (r->barrier_next.head && r->barrier_next.head->deadline_ms <= now)
        read_finish(r->barrier_next.head, REPLICA_ERR_TIMEOUT);
    for (replica_op *op = r->barrier_now.head; op;) {
        replica_op *next = op->next;
        if (op->deadline_ms <= now) read_finish(op, REPLICA_ERR_TIMEOUT);
        op = next;
    }
}

static void replica__check_leadership(replica *r)
{
    raft_id leader = 0;
    const char *addr = NULL;
    raft_leader(&r->raft, &leader, &addr);
    if (leader != r->last_leader_seen) {
        if (leader) {
            r->leader_changes++;
            LOG_INFO("leader changed", LF_I("leader", leader), LF_I("term", r->raft.current_term));
        }
        r->last_leader_seen = leader;
    }
    if (raft_state(&r->raft) != RAFT_LEADER) {
        r->leader_ready = false;
        return;
    }
    if (r->leader_ready && r->leader_ready_term == r->raft.current_term) return;
    if (r->noop_inflight) return;
    replica_op *op = op_new(r, NULL, OP_PROPOSE, 3600);
    op->internal_noop = true;
    kv_command cmd = {.op = KV_OP_NOOP, .now_ms = replica_now_ms()};
    uint64_t term = r->raft.current_term;
    if (replica__submit(r, op, &cmd) != REPLICA_OK) {
        free(op);
        return;
    }
    op->term = term;
    r->noop_inflight = true;
}

typedef struct expiry_scan {
    replica *r;
    int64_t now_ms;
    size_t found;
    kv_slice *keys;
} expiry_scan;

static void replica__expiry_visit(void *ctx, kv_entry *e)
{
    expiry_scan *s = ctx;
    if (s->found >= EXPIRY_MAX_KEYS || !kv_entry_expired(e, s->now_ms)) return;
    buf *b = &s->r->expiry_keys;
    /* offsets now, pointers later: the buffer may move while filling */
    s->keys[s->found].ptr = (const char *)(uintptr_t)(b->len);
    s->keys[s->found].len = e->key_len;
    buf_append(b, kv_entry_key(e), e->key_len);
    s->found++;
}

/* Active expiry, as Redis' activeExpireCycle: look at a bounded slice of the
 * keyspace per cycle and reclaim what has expired. Only the leader decides
 * (through the log), so every node deletes the same keys at the same
 * point; followers just hide expired keys until then. */
static void replica__expiry_cycle(replica *r)
{
    int64_t now = clock_mono_ms();
    if (now < r->expiry_next_ms) return;
    r->expiry_next_ms = now + (int64_t)(r->cfg->expiry_interval * 1000);
    if (r->store->ks.volatile_count == 0 || r->expiry_inflight) return;
    if (r->durable && !(raft_state(&r->raft) == RAFT_LEADER && r->leader_ready)) return;

    kv_slice keys[EXPIRY_MAX_KEYS];
    expiry_scan s = {.r = r, .now_ms = replica_now_ms(), .keys = keys};
    buf_reset(&r->expiry_keys);
    /* one scan step is one hash bucket; stop after a bounded number of
     * buckets, at the end of a full pass, or with a full batch */
    unsigned buckets = 0;
    do {
        r->expiry_cursor =
            kv_keyspace_scan(&r->store->ks, r->expiry_cursor, replica__expiry_visit, &s);
    } while (r->expiry_cursor && ++buckets < EXPIRY_SCAN_BUCKETS && s.found < EXPIRY_MAX_KEYS);
    metrics_counter_add(r->m_expiry_cycles, 1);
    if (!s.found) return;
    for (size_t i = 0; i < s.found; i++) keys[i].ptr = r->expiry_keys.data + (uintptr_t)keys[i].ptr;
    kv_command cmd = {
        .op = KV_OP_EXPIRE_KEYS, .now_ms = s.now_ms, .nargs = (uint32_t)s.found, .args = keys};
    if (!r->durable) {
        kv_result res;
        kv_store_apply(r->store, &cmd, &res);
        return;
    }
    replica_op *op = op_new(r, NULL, OP_PROPOSE, 3600);
    op->internal_expiry = true;
    if (replica__submit(r, op, &cmd) != REPLICA_OK) {
        free(op);
        return;
    }
    r->expiry_inflight = true;
}

static void replica__register_peer_metrics(replica *r);

static void replica__tick(uv_timer_t *t)
{
    replica *r = t->data;
    if (r->closing) return;
    if (r->durable) {
        disk_guard_poll(&r->disk, clock_mono_ns());
        replica__check_leadership(r);
        replica__expire_deadlines(r);
        replica__forward_tick(r);
        replica__register_member(r);
        replica__register_peer_metrics(r);
        snapshot_handoff_poll(&r->handoff);
    }
    replica__expiry_cycle(r);
    /* keep incremental rehashing moving when there are no writes */
    kv_keyspace_rehash_step(&r->store->ks, 100);
}

/* ---- status ---------------------------------------------------------------- */

void replica_get_status(replica *r, replica_status_info *info)
{
    memset(info, 0, sizeof(*info));
    info->id = r->id;
    info->inflight = r->inflight;
    info->snapshots_taken = r->snapshots_taken;
    info->storage_errors = r->storage_errors;
    info->storage_error = r->storage_error;
    info->disk_free_bytes = r->disk.free_bytes;
    info->disk_low = r->disk.low;
    if (!r->durable) {
        info->role = "standalone";
        info->ready = true;
        info->applied_index = info->commit_index = r->store->revision;
        return;
    }
    int st = raft_state(&r->raft);
    info->role = st == RAFT_LEADER      ? "leader"
                 : st == RAFT_CANDIDATE ? "candidate"
                 : st == RAFT_FOLLOWER  ? "follower"
                                        : "unavailable";
    if (st == RAFT_FOLLOWER && !replica__role_is_voter(&r->raft.configuration, r->id))
        info->role = "learner";
    info->term = r->raft.current_term;
    raft_id leader = 0;
    const char *addr = NULL;
    raft_leader(&r->raft, &leader, &addr);
    info->leader_id = leader;
    info->commit_index = r->raft.commit_index;
    info->applied_index = raft_last_applied(&r->raft);
    info->last_index = raft_last_index(&r->raft);
    if (st == RAFT_LEADER) {
        info->ready = r->leader_ready && r->leader_ready_term == r->raft.current_term;
        info->not_ready_reason = "leader has not committed an entry in its term yet";
    } else if (leader) {
        /* forwarding needs the leader's client address from the member
         * table: not ready to serve until we have it */
        const kv_member *m = kv_store_member(r->store, leader);
        info->ready = info->applied_index >= info->commit_index && m && m->http[0];
        info->not_ready_reason = m && m->http[0] ? "catching up" : "leader address not known yet";
    } else {
        info->ready = false;
        info->not_ready_reason = "no leader";
    }
}

size_t replica_members(replica *r, replica_member_info *out, size_t max)
{
    if (!r->durable) return 0;
    const struct raft_configuration *c = &r->raft.configuration;
    raft_id leader = 0;
    const char *addr = NULL;
    raft_leader(&r->raft, &leader, &addr);
    bool leading = raft_state(&r->raft) == RAFT_LEADER;
    size_t n = 0;
    for (unsigned i = 0; i < c->n && n < max; i++) {
        const struct raft_server *srv = &c->servers[i];
        const kv_member *m = kv_store_member(r->store, srv->id);
        replica_member_info *o = &out[n++];
        o->id = srv->id;
        o->peer = srv->address;
        o->http = m ? m->http : "";
        o->resp = m ? m->resp : "";
        o->role = srv->role == RAFT_VOTER     ? "voter"
                  : srv->role == RAFT_STANDBY ? "standby"
                                              : "spare";
        o->leader = srv->id == leader;
        o->has_match = leading && r->raft.leader_state.progress != NULL;
        o->match_index = o->has_match ? r->raft.leader_state.progress[i].match_index : 0;
        if (srv->id == r->id) o->match_index = raft_last_index(&r->raft);
    }
    return n;
}

/* ---- membership --------------------------------------------------------------- */

typedef struct change_op {
    replica *r;
    struct raft_change change;
    struct raft_transfer transfer;
    uv_timer_t later; /* the callback runs outside libraft's stack */
    uv_timer_t retry; /* promotion retries while the new node catches up */
    bool retry_armed;
    int promote_tries;
    uint64_t id;
    bool then_promote; /* add: assign voter once the add has committed */
    bool forget;       /* remove: drop the member's addresses afterwards */
    int status;
    const char *msg;
    replica_change_cb cb;
    void *ctx;
} change_op;

static void replica__forget_member(replica *r, uint64_t id);

static void change__closed(uv_handle_t *h)
{
    change_op *c = h->data;
    if (c->retry_armed) {
        c->retry_armed = false;
        uv_close((uv_handle_t *)&c->retry, change__closed);
        return;
    }
    free(c);
}

static void change__deliver(uv_timer_t *t)
{
    change_op *c = t->data;
    if (c->forget && c->status == 0 && raft_state(&c->r->raft) == RAFT_LEADER)
        replica__forget_member(c->r, c->id);
    if (c->cb) c->cb(c->ctx, c->status, c->msg);
    uv_close((uv_handle_t *)&c->later, change__closed);
}

/* Called from libraft callbacks: never re-enter libraft or client code
 * from there; deliver on the next loop iteration. msg must be static. */
static void change__finish(change_op *c, int status, const char *msg)
{
    c->status = status;
    c->msg = msg;
    uv_timer_init(c->r->loop, &c->later);
    c->later.data = c;
    uv_timer_start(&c->later, change__deliver, 0, 0);
}

#define PROMOTE_TRIES 60 /* x 500 ms: a joining node has this long to become reachable */

static void change__done(struct raft_change *req, int status);

static void change__promote(uv_timer_t *t)
{
    change_op *c = t->data;
    replica *r = c->r;
    int rv = raft_state(&r->raft) == RAFT_LEADER
                 ? raft_assign(&r->raft, &c->change, c->id, RAFT_VOTER, change__done)
                 : RAFT_NOTLEADER;
    if (rv != 0) change__done(&c->change, rv);
}

static void change__done(struct raft_change *req, int status)
{
    change_op *c = req->data;
    /* Adding is two steps: the node joins as a spare, then an assign makes
     * it a voter once libraft has caught it up. A node that is not
     * reachable yet fails the assign with NOCONNECTION: try again shortly.
     * Always from a timer: never call libraft from inside its callback. */
    bool spare_added = c->then_promote && c->promote_tries == 0 && status == 0;
    bool retry = c->then_promote && status == RAFT_NOCONNECTION && c->promote_tries < PROMOTE_TRIES;
    if (spare_added || retry) {
        if (!c->retry_armed) {
            uv_timer_init(c->r->loop, &c->retry);
            c->retry.data = c;
            c->retry_armed = true;
        }
        uv_timer_start(&c->retry, change__promote, spare_added ? 0 : 500, 0);
        c->promote_tries++;
        return;
    }
    change__finish(c, status, status ? raft_strerror(status) : "ok");
}

static change_op *change__new(replica *r, uint64_t id, replica_change_cb cb, void *ctx)
{
    change_op *c = xcalloc(1, sizeof(*c));
    c->r = r;
    c->id = id;
    c->cb = cb;
    c->ctx = ctx;
    c->change.data = c;
    c->transfer.data = c;
    return c;
}

int replica_member_add(replica *r, uint64_t id, const char *peer, replica_change_cb cb, void *ctx)
{
    if (!r->durable) return RAFT_NOTLEADER;
    const struct raft_configuration *conf = &r->raft.configuration;
    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].id != id) continue;
        if (conf->servers[i].role == RAFT_VOTER) return RAFT_DUPLICATEID;
        /* added before but never promoted (it was not reachable then):
         * adding it again means promoting it */
        change_op *c = change__new(r, id, cb, ctx);
        c->then_promote = true;
        change__done(&c->change, 0);
        return 0;
    }
    change_op *c = change__new(r, id, cb, ctx);
    c->then_promote = true;
    int rv = raft_add(&r->raft, &c->change, id, peer, change__done);
    if (rv != 0) free(c);
    return rv;
}

static void replica__forget_member(replica *r, uint64_t id)
{
    kv_slice args[2] = {{"", 0}, {"", 0}};
    kv_command cmd = {
        .op = KV_OP_MEMBER, .a = (int64_t)id, .nargs = 2, .args = args, .now_ms = replica_now_ms()};
    replica_op *op = op_new(r, NULL, OP_PROPOSE, 3600);
    op->internal_expiry = false;
    op->internal_noop = false;
    op->internal_member = false;
    r->inflight++; /* balanced in proposal_done */
    if (replica__submit(r, op, &cmd) != REPLICA_OK) {
        r->inflight--;
        free(op);
    }
}

static void remove__done(struct raft_change *req, int status)
{
    change_op *c = req->data;
    c->forget = true;
    change__finish(c, status, status ? raft_strerror(status) : "ok");
}

int replica_member_remove(replica *r, uint64_t id, replica_change_cb cb, void *ctx)
{
    if (!r->durable) return RAFT_NOTLEADER;
    change_op *c = change__new(r, id, cb, ctx);
    int rv = raft_remove(&r->raft, &c->change, id, remove__done);
    if (rv != 0) free(c);
    return rv;
}

static void transfer__done(struct raft_transfer *t)
{
    change_op *c = t->data;
    raft_id leader = 0;
    const char *addr = NULL;
    raft_leader(&c->r->raft, &leader, &addr);
    if (leader == c->id || (c->id == 0 && leader != c->r->id && leader != 0))
        change__finish(c, 0, "ok");
    else
        change__finish(c, RAFT_NOTFOUND, "leadership was not transferred in time");
}

int replica_transfer_leadership(replica *r, uint64_t id, replica_change_cb cb, void *ctx)
{
    if (!r->durable) return RAFT_NOTLEADER;
    change_op *c = change__new(r, id, cb, ctx);
    int rv = raft_transfer(&r->raft, &c->transfer, id, transfer__done);
    if (rv != 0) free(c);
    return rv;
}

uint64_t replica_id(replica *r)
{
    return r->id;
}

bool replica_is_leader(replica *r)
{
    return !r->durable || raft_state(&r->raft) == RAFT_LEADER;
}

typedef struct raw_op {
    replica *r;
    uv_timer_t timer;
    char path[128];
    buf body;
    int64_t deadline_ms;
    replica_raw_cb cb;
    void *ctx;
} raw_op;

static void replica__raw_attempt(uv_timer_t *t);

static void replica__raw_closed(uv_handle_t *h)
{
    raw_op *o = h->data;
    buf_close(&o->body);
    free(o);
}

static void replica__raw_finish(raw_op *o, int http_status, const char *body, size_t len)
{
    if (o->cb) o->cb(o->ctx, http_status, body, len);
    uv_close((uv_handle_t *)&o->timer, replica__raw_closed);
}

static void replica__raw_retry(raw_op *o)
{
    if (clock_mono_ms() >= o->deadline_ms) {
        replica__raw_finish(o, 0, NULL, 0);
        return;
    }
    uv_timer_start(&o->timer, replica__raw_attempt, 50 + (uint64_t)(rand() % 50), 0);
}

static void replica__raw_done(void *ctx, int status, bool sent, int http_status, const char *body,
                              size_t len)
{
    raw_op *o = ctx;
    /* 421: that node no longer leads and did nothing; try the new one */
    if ((status == FORWARD_OK && http_status == 421) || (status != FORWARD_OK && !sent)) {
        replica__raw_retry(o);
        return;
    }
    replica__raw_finish(o, status == FORWARD_OK ? http_status : 0, body, len);
}

static void replica__raw_attempt(uv_timer_t *t)
{
    raw_op *o = t->data;
    replica *r = o->r;
    if (r->closing) {
        replica__raw_finish(o, 0, NULL, 0);
        return;
    }
    raft_id leader = 0;
    const char *addr = NULL;
    raft_leader(&r->raft, &leader, &addr);
    const kv_member *m = leader && leader != r->id ? kv_store_member(r->store, leader) : NULL;
    double left = (double)(o->deadline_ms - clock_mono_ms()) / 1000.0;
    if (!m || !m->http[0] || left <= 0 ||
        !forward_post(r->fwd, leader, m->http, o->path, o->body.data, o->body.len, true, left,
                      replica__raw_done, o))
        replica__raw_retry(o);
}

int replica_forward_raw(replica *r, const char *path, const void *body, size_t len,
                        replica_raw_cb cb, void *ctx)
{
    if (!r->durable || !r->fwd || r->closing) return REPLICA_ERR_NO_LEADER;
    raw_op *o = xcalloc(1, sizeof(*o));
    o->r = r;
    o->cb = cb;
    o->ctx = ctx;
    snprintf(o->path, sizeof(o->path), "%s", path);
    buf_init(&o->body);
    buf_append(&o->body, body, len);
    o->deadline_ms = clock_mono_ms() + (int64_t)(r->cfg->write_timeout * 1000);
    uv_timer_init(r->loop, &o->timer);
    o->timer.data = o;
    uv_timer_start(&o->timer, replica__raw_attempt, 0, 0);
    return REPLICA_OK;
}

/* ---- metrics ------------------------------------------------------------- */

static double g_term(void *c)
{
    return (double)((replica *)c)->raft.current_term;
}
static double g_commit(void *c)
{
    return (double)((replica *)c)->raft.commit_index;
}
static double g_applied(void *c)
{
    return (double)raft_last_applied(&((replica *)c)->raft);
}
static double g_last(void *c)
{
    return (double)raft_last_index(&((replica *)c)->raft);
}
static double g_is_leader(void *c)
{
    return raft_state(&((replica *)c)->raft) == RAFT_LEADER;
}
static double g_inflight(void *c)
{
    return (double)((replica *)c)->inflight;
}
static double g_leader_changes(void *c)
{
    return (double)((replica *)c)->leader_changes;
}
static double g_snapshots(void *c)
{
    return (double)((replica *)c)->snapshots_taken;
}
static double g_snapshot_bytes(void *c)
{
    return (double)((replica *)c)->snapshot_bytes;
}
static double g_fork_max(void *c)
{
    return ((replica *)c)->snapshot_max_fork_seconds;
}

/* Per-peer gauges, registered when a peer first appears in the
 * configuration; their callbacks look the peer up by id at scrape time. */
typedef struct peer_gauge {
    replica *r;
    uint64_t id;
    struct peer_gauge *next;
} peer_gauge;

static double g_breaker(void *c)
{
    peer_gauge *p = c;
    return p->r->fwd ? forward_breaker_state(p->r->fwd, p->id) : 0;
}

static double g_lag(void *c)
{
    peer_gauge *p = c;
    replica *r = p->r;
    if (raft_state(&r->raft) != RAFT_LEADER || !r->raft.leader_state.progress) return 0;
    const struct raft_configuration *conf = &r->raft.configuration;
    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].id != p->id) continue;
        if (p->id == r->id) return 0;
        uint64_t last = raft_last_index(&r->raft),
                 match = r->raft.leader_state.progress[i].match_index;
        return last > match ? (double)(last - match) : 0;
    }
    return 0;
}

static void replica__register_peer_metrics(replica *r)
{
    const struct raft_configuration *conf = &r->raft.configuration;
    for (unsigned i = 0; i < conf->n; i++) {
        uint64_t id = conf->servers[i].id;
        if (id == r->id) continue;
        peer_gauge *p = r->peer_gauges;
        while (p && p->id != id) p = p->next;
        if (p) continue;
        p = xcalloc(1, sizeof(*p));
        p->r = r;
        p->id = id;
        p->next = r->peer_gauges;
        r->peer_gauges = p;
        char labels[64];
        snprintf(labels, sizeof(labels), "peer=\"%llu\"", (unsigned long long)id);
        metrics_gauge_register("cairn_forward_breaker_state",
                               "Circuit breaker towards a peer: 0 closed, 1 open, 2 half-open",
                               labels, g_breaker, p);
        metrics_gauge_register("cairn_replication_lag_entries",
                               "Log entries a peer is behind the leader (on the leader)", labels,
                               g_lag, p);
    }
}

static double g_snap_recv(void *c)
{
    return (double)((replica *)c)->snapshots_received;
}

static double g_snap_held(void *c)
{
    return (double)((replica *)c)->handoff.held_total;
}

static double g_disk_free(void *c)
{
    const replica *r = c;
    uint64_t f = r->disk.free_bytes;
    return !r->durable || f == UINT64_MAX ? -1.0 : (double)f;
}

static double g_disk_refused(void *c)
{
    return (double)((replica *)c)->disk.refused;
}

static double g_storage_errors(void *c)
{
    return (double)((replica *)c)->storage_errors;
}

static double g_io_held(void *c)
{
    return (double)((replica *)c)->guard.held_total;
}

static void replica__register_metrics(replica *r)
{
    r->m_proposals_ok = metrics_counter_get("cairn_proposals_total", "Writes proposed, by outcome",
                                            "outcome=\"ok\"");
    r->m_proposals_failed = metrics_counter_get(
        "cairn_proposals_total", "Writes proposed, by outcome", "outcome=\"failed\"");
    r->m_shed =
        metrics_counter_get("cairn_shed_total", "Requests shed because too much was in flight", "");
    r->m_forwarded = metrics_counter_get("cairn_forwarded_total",
                                         "Writes and reads forwarded to the leader", "");
    r->m_forward_failures = metrics_counter_get("cairn_forward_failures_total",
                                                "Forward attempts that failed (before retry)", "");
    r->m_expiry_cycles =
        metrics_counter_get("cairn_expiry_cycles_total", "Active expiry cycles run", "");
    r->m_snapshot_seconds = metrics_histogram_get("cairn_snapshot_duration_seconds",
                                                  "Time to take a snapshot, fork to written", "");
    r->m_snapshot_fork_seconds = metrics_histogram_get(
        "cairn_snapshot_fork_seconds", "Loop stall caused by forking the snapshot child", "");
    metrics_gauge_register("cairn_snapshot_fork_max_seconds", "Longest snapshot fork stall seen",
                           "", g_fork_max, r);
    metrics_gauge_register("cairn_inflight_proposals", "Client writes in flight", "", g_inflight,
                           r);
    if (!r->durable) return;
    metrics_gauge_register("cairn_raft_term", "Current Raft term", "", g_term, r);
    metrics_gauge_register("cairn_raft_commit_index", "Raft commit index", "", g_commit, r);
    metrics_gauge_register("cairn_raft_applied_index", "Raft applied index", "", g_applied, r);
    metrics_gauge_register("cairn_raft_last_index", "Last Raft log index", "", g_last, r);
    metrics_gauge_register("cairn_raft_is_leader", "1 if this node leads", "", g_is_leader, r);
    metrics_counter_fn_register("cairn_raft_leader_changes_total", "Leader changes seen", "",
                                g_leader_changes, r);
    metrics_counter_fn_register("cairn_snapshots_total", "Snapshots taken", "", g_snapshots, r);
    metrics_gauge_register("cairn_snapshot_bytes", "Size of the last snapshot", "",
                           g_snapshot_bytes, r);
    metrics_counter_fn_register("cairn_snapshots_received_total",
                                "Snapshots installed from the leader", "", g_snap_recv, r);
    metrics_counter_fn_register("cairn_snapshot_installs_held_total",
                                "Leader snapshots that arrived during a snapshot of our own and "
                                "were held until it was done",
                                "", g_snap_held, r);
    metrics_gauge_register("cairn_disk_free_bytes",
                           "Free space on the data dir's file system (-1: not measured)", "",
                           g_disk_free, r);
    metrics_counter_fn_register("cairn_disk_full_refused_total",
                                "Writes refused because the disk is almost full (--min-free-disk)",
                                "", g_disk_refused, r);
    metrics_counter_fn_register("cairn_storage_errors_total",
                                "Writes whose raft log write failed on this node (disk full or "
                                "failing)",
                                "", g_storage_errors, r);
    metrics_counter_fn_register("cairn_raft_io_held_total",
                                "Log writes held so that a log truncation and a snapshot write "
                                "never overlap in libraft (0.15 loses the truncation)",
                                "", g_io_held, r);
}

/* ---- lifecycle ------------------------------------------------------------- */

static void replica__io_recv(struct raft_io *io, struct raft_message *msg)
{
    replica *r = (replica *)((char *)io - offsetof(replica, io));
    snapshot_handoff_recv(&r->handoff, msg);
}

/* libraft's raft_start calls this with its own receive callback: the
 * transport gets ours, which passes everything on through the handoff. */
static int replica__io_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                             raft_io_recv_cb recv)
{
    replica *r = (replica *)((char *)io - offsetof(replica, io));
    snapshot_handoff_started(&r->handoff, recv);
    return r->io_start(io, msecs, tick, replica__io_recv);
}

static uint64_t replica__cluster_id(const char *initial_cluster)
{
    return initial_cluster[0] ? hash_bytes(initial_cluster, strlen(initial_cluster), 0x636169726e)
                              : 0;
}

static void replica__on_hup(uv_signal_t *s, int signum)
{
    replica *r = s->data;
    char err[1400];
    (void)signum;
    if (!r->fwd) return;
    if (forward_reload_tls(r->fwd, err, sizeof(err)) == 0)
        LOG_INFO("TLS files reloaded for forwarding", LF_S("cert", r->cfg->tls_cert));
    else
        LOG_ERROR("TLS reload for forwarding failed; keeping the old certificate",
                  LF_S("error", err));
}

/* A node that serves TLS expects the other members to serve it too: the
 * leader's HTTP port is then reached over TLS, its certificate checked
 * against --tls-client-ca (else this node's own --tls-cert file) and its
 * address, and this node's certificate presented for mutual TLS. */
static int replica__forward_create(replica *r, char *err, size_t errlen)
{
    const cairn_config *cfg = r->cfg;
    tls_ctx *tls = NULL;
    if (cfg->tls_cert[0] && tls_ctx_create_client(&tls, cfg->tls_cert, cfg->tls_key,
                                                  cfg->tls_client_ca, err, errlen) != 0)
        return -1;
    r->fwd = forward_create(r->loop, tls);
    if (tls) {
        uv_signal_init(r->loop, &r->fwd_hup);
        r->fwd_hup.data = r;
        uv_signal_start(&r->fwd_hup, replica__on_hup, SIGHUP);
        uv_unref((uv_handle_t *)&r->fwd_hup); /* never what keeps the loop running */
        r->fwd_hup_on = true;
    }
    return 0;
}

/* Parse "1=host:port,2=host:port" into a raft configuration. */
static int replica__parse_cluster(const char *spec, struct raft_configuration *conf, uint64_t self,
                                  char *err, size_t errlen)
{
    char copy[4096];
    snprintf(copy, sizeof(copy), "%s", spec);
    char *save = NULL;
    int self_found = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        char *end = NULL;
        unsigned long long id = eq ? strtoull(tok, &end, 10) : 0;
        if (!eq || end != eq || id == 0 || !strchr(eq + 1, ':')) {
            snprintf(err, errlen, "--initial-cluster: bad member '%s' (want ID=host:port)", tok);
            return -1;
        }
        int rv = raft_configuration_add(conf, id, eq + 1, RAFT_VOTER);
        if (rv != 0) {
            snprintf(err, errlen, "--initial-cluster: member '%s': %s", tok, raft_strerror(rv));
            return -1;
        }
        self_found |= id == self;
    }
    if (!self_found) {
        snprintf(err, errlen, "--initial-cluster does not contain this node's --id %llu",
                 (unsigned long long)self);
        return -1;
    }
    return 0;
}

int replica_create(replica **out, uv_loop_t *loop, const cairn_config *cfg, kv_store *store,
                   char *err, size_t errlen)
{
    replica *r = xcalloc(1, sizeof(*r));
    r->loop = loop;
    r->cfg = cfg;
    r->store = store;
    r->id = cfg->id;
    r->durable = cfg->persistence == PERSISTENCE_DURABLE;
    r->snap_fd = -1;
    buf_init(&r->expiry_keys);
    store->on_result = replica__on_result;
    store->on_result_ctx = r;
    replica__register_metrics(r);
    uv_timer_init(loop, &r->tick);
    r->tick.data = r;
    uv_timer_init(loop, &r->kick);
    r->kick.data = r;
    *out = r;
    if (!r->durable) return 0;

    datadir_identity want = {.node_id = cfg->id,
                             .cluster_id = replica__cluster_id(cfg->initial_cluster)};
    int fresh = 0;
    if (datadir_open(cfg->data_dir, &want, r->raft_dir, sizeof(r->raft_dir), &fresh, err, errlen) !=
        0)
        return -1;

    lazyfree_install(loop);
    if (replica__forward_create(r, err, errlen) != 0) return -1;
    int rv = raft_uv_tcp_init(&r->transport, loop);
    if (rv == 0) rv = raft_uv_tcp_set_bind_address(&r->transport, cfg->listen_peer);
    if (rv != 0) {
        snprintf(err, errlen, "--listen-peer %s: cannot use this address (%s)", cfg->listen_peer,
                 raft_strerror(rv));
        return -1;
    }
    rv = raft_uv_init(&r->io, loop, r->raft_dir, &r->transport);
    if (rv != 0) {
        snprintf(err, errlen, "cannot open raft storage in %s: %s", r->raft_dir, r->io.errmsg);
        return -1;
    }
    raft_uv_set_snapshot_compression(&r->io, false);
    /* libraft's auto-recovery renames a segment it cannot read to corrupt-*
     * and starts without it: silent loss of acknowledged writes. Refuse to
     * start instead, naming the file (SPEC §4). */
    raft_uv_set_auto_recovery(&r->io, false);
    if (r->io.version < 2) {
        r->io.version = 2;
        r->io.async_work = replica__async_work;
    }
    r->fsm.version = 3;
    r->fsm.data = r;
    r->fsm.apply = fsm__apply;
    r->fsm.snapshot = fsm__snapshot;
    r->fsm.restore = fsm__restore;
    r->fsm.snapshot_finalize = fsm__snapshot_finalize;
    r->fsm.snapshot_async = fsm__snapshot_async;
    rv = raft_init(&r->raft, &r->io, &r->fsm, cfg->id, cfg->listen_peer);
    if (rv != 0) {
        snprintf(err, errlen, "raft init: %s", raft_errmsg(&r->raft));
        return -1;
    }
    raft_set_snapshot_threshold(&r->raft, (unsigned)cfg->snapshot_threshold);
    raft_set_snapshot_trailing(&r->raft, (unsigned)cfg->snapshot_trailing);
    raft_set_pre_vote(&r->raft, true);
    /* libraft's default is 30 s; with the handoff a leader's snapshot is no
     * longer ignored, so this only covers one lost on the wire */
    raft_set_install_snapshot_timeout(&r->raft, (unsigned)(cfg->install_snapshot_timeout * 1000));
    snapshot_handoff_init(&r->handoff, &r->raft, &r->io);
    barrier_guard_install(&r->guard, &r->io, loop);
    disk_guard_init(&r->disk, cfg->min_free_disk, r->raft_dir);
    disk_guard_poll(&r->disk, clock_mono_ns());
    r->io_start = r->io.start;
    r->io.start = replica__io_start;

    struct raft_configuration conf;
    raft_configuration_init(&conf);
    if (cfg->initial_cluster[0]) {
        if (replica__parse_cluster(cfg->initial_cluster, &conf, cfg->id, err, errlen) != 0) {
            raft_configuration_close(&conf);
            return -1;
        }
    } else {
        raft_configuration_add(&conf, cfg->id, cfg->listen_peer, RAFT_VOTER);
    }
    /* a node that joins a running cluster gets its configuration from the
     * leader; bootstrapping it would start a second, separate cluster */
    rv = cfg->join[0] ? RAFT_CANTBOOTSTRAP : raft_bootstrap(&r->raft, &conf);
    raft_configuration_close(&conf);
    if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
        snprintf(err, errlen, "raft bootstrap in %s: %s", r->raft_dir, raft_errmsg(&r->raft));
        return -1;
    }
    if (rv == 0) LOG_INFO("bootstrapped new cluster", LF_S("data_dir", cfg->data_dir));
    (void)fresh;
    return 0;
}

int replica_start(replica *r, char *err, size_t errlen)
{
    uv_timer_start(&r->tick, replica__tick, TICK_MS, TICK_MS);
    if (!r->durable) return 0;
    uint64_t t0 = clock_mono_ns();
    int repaired = 0;
    if (logcheck_run(r->raft_dir, &repaired, err, errlen) != 0) return -1;
    int rv = raft_start(&r->raft);
    if (rv != 0) {
        if (r->restore_error[0])
            snprintf(err, errlen, "cannot load raft state: %s", r->restore_error);
        else
            snprintf(err, errlen, "cannot load raft state from %s: %s (%s)", r->raft_dir,
                     raft_errmsg(&r->raft), raft_strerror(rv));
        return -1;
    }
    r->raft_started = true;
    LOG_INFO("raft started", LF_I("id", r->id), LF_I("term", r->raft.current_term),
             LF_I("last_index", raft_last_index(&r->raft)), LF_I("revision", r->store->revision),
             LF_I("keys", kv_keyspace_count(&r->store->ks)),
             LF_I("load_ms", (clock_mono_ns() - t0) / 1000000));
    return 0;
}

static void replica__transfer_done(struct raft_transfer *t)
{
    replica *r = t->data;
    r->stepdown_done = true; /* delivered by the kick, outside libraft */
    replica__kick(r);
}

void replica_step_down(replica *r, void (*cb)(void *ctx), void *ctx)
{
    r->stepdown_cb = cb;
    r->stepdown_ctx = ctx;
    if (!r->durable || !r->raft_started || raft_state(&r->raft) != RAFT_LEADER ||
        replica__voters(&r->raft.configuration) < 2) {
        cb(ctx);
        return;
    }
    r->transfer.data = r;
    if (raft_transfer(&r->raft, &r->transfer, 0, replica__transfer_done) != 0) cb(ctx);
}

static void replica__fail_reads(replica *r)
{
    while (r->rev_waiters.head) read_finish(r->rev_waiters.head, REPLICA_ERR_SHUTDOWN);
    while (r->barrier_next.head) read_finish(r->barrier_next.head, REPLICA_ERR_SHUTDOWN);
    while (r->barrier_now.head) read_finish(r->barrier_now.head, REPLICA_ERR_SHUTDOWN);
    while (r->forwards.head) read_finish(r->forwards.head, REPLICA_ERR_SHUTDOWN);
    while (r->index_waiters.head) read_finish(r->index_waiters.head, REPLICA_ERR_SHUTDOWN);
    if (r->fwd) {
        forward_close(r->fwd);
        r->fwd = NULL;
    }
}

void replica_begin_shutdown(replica *r)
{
    while (r->rev_waiters.head) read_finish(r->rev_waiters.head, REPLICA_ERR_SHUTDOWN);
    while (r->index_waiters.head) read_finish(r->index_waiters.head, REPLICA_ERR_SHUTDOWN);
}

static void replica__tick_closed(uv_handle_t *h)
{
    replica *r = h->data;
    if (r->close_cb) r->close_cb(r->close_ctx);
}

static void replica__raft_closed(struct raft *raft)
{
    replica *r = raft->data;
    /* libraft is done with every request now */
    while (r->proposals.head) {
        replica_op *op = r->proposals.head;
        list_remove(op);
        op_finish(op, REPLICA_ERR_SHUTDOWN);
        free(op);
    }
    snapshot_handoff_close(&r->handoff);
    barrier_guard_close(&r->guard);
    raft_uv_close(&r->io);
    raft_uv_tcp_close(&r->transport);
    replica__drain_completions(r); /* what libraft failed while closing */
    uv_close((uv_handle_t *)&r->kick, NULL);
    uv_close((uv_handle_t *)&r->tick, replica__tick_closed);
}

void replica_close(replica *r, void (*cb)(void *ctx), void *ctx)
{
    r->closing = true;
    r->close_cb = cb;
    r->close_ctx = ctx;
    if (r->fwd_hup_on) {
        r->fwd_hup_on = false;
        uv_close((uv_handle_t *)&r->fwd_hup, NULL);
    }
    uv_timer_stop(&r->tick);
    uv_timer_stop(&r->kick);
    replica__drain_completions(r);
    replica__fail_reads(r);
    for (replica_op *op = r->proposals.head; op; op = op->next) op_finish(op, REPLICA_ERR_SHUTDOWN);
    if (r->durable && r->raft_started) {
        r->raft.data = r;
        raft_close(&r->raft, replica__raft_closed);
        return;
    }
    if (r->durable) {
        barrier_guard_close(&r->guard);
        raft_uv_close(&r->io);
        raft_uv_tcp_close(&r->transport);
    }
    replica__drain_completions(r);
    uv_close((uv_handle_t *)&r->kick, NULL);
    uv_close((uv_handle_t *)&r->tick, replica__tick_closed);
}

void replica_destroy(replica *r)
{
    lazyfree_flush();
    barrier_guard_forget(&r->guard);
    while (r->peer_gauges) {
        peer_gauge *p = r->peer_gauges;
        r->peer_gauges = p->next;
        free(p);
    }
    if (r->snap_pid > 0) {
        kill(r->snap_pid, SIGKILL);
        waitpid(r->snap_pid, NULL, 0);
    }
    free(r->decode_args);
    buf_close(&r->expiry_keys);
    free(r);
}
