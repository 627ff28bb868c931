/* The libraft state machine: apply a committed command to the kv store,
 * take snapshots in a forked child, restore them. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kv/snapshot.h"
#include "obs/log.h"
#include "replica/logcheck.h"
#include "replica/replica_internal.h"
#include "util/alloc.h"
#include "util/clock.h"

/* ---- the state machine glue (libraft FSM) ------------------------------ */

static void replica__wake_rev_waiters(replica *r)
{
    replica_op *op = r->rev_waiters.head;
    while (op) {
        replica_op *next = op->next;
        /* called from inside libraft's apply: complete later */
        if (r->store->revision >= op->min_revision) replica_op_finish_later(op, REPLICA_OK);
        op = next;
    }
}

/* Deliver a result to the proposal that produced the command, if it was
 * proposed here. Proposals apply in order, so the match is at or near the
 * head of the list. */
static void replica__take_result(replica_req *req, const kv_result *res)
{
    req->result = *res;
    buf_reset(&req->value_buf);
    buf_append(&req->value_buf, res->value, res->value_len);
    req->result.value = req->value_buf.data ? req->value_buf.data : "";
}

/* This node's proposal of cmd, or the forward it sent it by (*forward). */
static replica_op *replica__local_op(replica *r, const kv_command *cmd, bool *forward)
{
    *forward = false;
    if (!r->durable || !cmd->origin) return NULL;
    for (replica_op *op = r->proposals.head; op; op = op->next)
        if (op->seq == cmd->seq && op->origin == cmd->origin) return op;
    if (cmd->origin != r->id) return NULL;
    for (replica_op *op = r->forwards.head; op; op = op->next) {
        if (op->kind != OP_FORWARD_WRITE || op->seq != cmd->seq) continue;
        *forward = true;
        return op;
    }
    return NULL;
}

replica_req *replica_applying(const replica *r)
{
    return r->applying;
}

void replica__on_result(void *ctx, const kv_command *cmd, const kv_result *res)
{
    replica *r = ctx;
    bool forward;
    replica_op *op = replica__local_op(r, cmd, &forward);
    if (!op) return;
    if (!forward) {
        if (op->req) replica__take_result(op->req, res);
        return;
    }
    /* A write this node forwarded: applied here, so committed. Its answer
     * is this result (values included); the leader's need not come. */
    op->applied_here = true;
    if (op->req) replica__take_result(op->req, res);
    if (op->freq) {
        r->env.peer->cancel(r->env.peer_ctx, op->freq);
        op->freq = NULL;
    }
    metrics_counter_add(r->m_forwarded, 1);
    replica_op_finish_later(op, REPLICA_OK); /* inside libraft's apply */
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
                  LF_I("index", raft_last_applied(r->raft) + 1));
        return RAFT_MALFORMED;
    }
    if (cmd.now_ms > r->last_stamp) r->last_stamp = cmd.now_ms;
    bool forward;
    replica_op *own = replica__local_op(r, &cmd, &forward);
    r->applying = own ? own->req : NULL;
    kv_result res;
    kv_store_apply(r->store, &cmd, &res);
    r->applying = NULL;
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
    replica *r = replica__of_io(io);
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

/* In process (the simulator): one thread, nothing to fork around, and
 * the same serialiser the child runs. libraft calls it synchronously. */
static int fsm__snapshot_in_process(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                                    unsigned *n_bufs)
{
    replica *r = fsm->data;
    buf out;
    buf_init(&out);
    if (kv_snapshot_write(r->store, kv_snapshot_sink_buf, &out) != 0) {
        buf_close(&out);
        return RAFT_IOERR;
    }
    *bufs = raft_malloc(sizeof(struct raft_buffer));
    void *copy = raft_malloc(out.len ? out.len : 1);
    if (!*bufs || !copy) {
        raft_free(*bufs);
        raft_free(copy);
        buf_close(&out);
        return RAFT_NOMEM;
    }
    memcpy(copy, out.data, out.len);
    (*bufs)[0].base = copy;
    (*bufs)[0].len = out.len;
    *n_bufs = 1;
    r->snapshots_taken++;
    r->snapshot_bytes = out.len;
    buf_close(&out);
    return 0;
}

static int fsm__snapshot_finalize_in_process(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                                             unsigned *n_bufs)
{
    (void)fsm;
    if (*bufs) {
        raft_free((*bufs)[0].base);
        raft_free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

/* Fill in the replica's libraft state machine. */
void replica__fsm_setup(replica *r)
{
    r->fsm.version = 3;
    r->fsm.data = r;
    r->fsm.apply = fsm__apply;
    r->fsm.restore = fsm__restore;
    if (r->snapshot_in_process) {
        r->fsm.snapshot = fsm__snapshot_in_process;
        r->fsm.snapshot_finalize = fsm__snapshot_finalize_in_process;
        r->fsm.snapshot_async = NULL;
        return;
    }
    r->fsm.snapshot = fsm__snapshot;
    r->fsm.snapshot_finalize = fsm__snapshot_finalize;
    r->fsm.snapshot_async = fsm__snapshot_async;
}

/* Give a disk backend that predates async work (libraft 0.15's raft_uv)
 * the loop's thread pool. */
void replica__io_async_setup(replica *r)
{
    if (r->io->version < 2) {
        r->io->version = 2;
        r->io->async_work = replica__async_work;
    }
}
