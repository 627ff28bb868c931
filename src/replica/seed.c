#include "replica/seed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/dump.h"
#include "kv/keyspace.h"
#include "util/alloc.h"
#include "util/clock.h"

typedef struct seed_slot {
    replica_req req;
    struct seed_run *run;
    bool busy;
    uint64_t keys; /* in its entry */
} seed_slot;

typedef struct seed_run {
    seed_slot slots[SEED_WINDOW];
    unsigned inflight;
    int failed; /* first failing replica status, 0 if none */
    uint64_t written;
} seed_run;

static void seed__done(replica_req *req, int status)
{
    seed_slot *s = req->data;
    s->busy = false;
    s->run->inflight--;
    if (status != REPLICA_OK || req->result.status != KV_OK) {
        if (!s->run->failed) s->run->failed = status != REPLICA_OK ? status : REPLICA_ERR_INTERNAL;
    } else {
        s->run->written += s->keys;
    }
}

static seed_slot *seed__free_slot(seed_run *run)
{
    for (unsigned i = 0; i < SEED_WINDOW; i++)
        if (!run->slots[i].busy) return &run->slots[i];
    return NULL;
}

/* Keys gathered for one log entry: each key's write encoded as a step of
 * a transaction (kv/transaction.h: empty token, no watches), so a million
 * keys are a few thousand entries, not a million. */
typedef struct seed_batch {
    buf steps;
    size_t *end; /* each step's end in steps */
    size_t n, cap;
} seed_batch;

static void seed__add(seed_batch *b, const kv_command *cmd)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : SEED_BATCH_KEYS;
        b->end = xrealloc(b->end, b->cap * sizeof(*b->end));
    }
    kv_command_encode(cmd, &b->steps);
    b->end[b->n++] = b->steps.len;
}

/* Propose the batch as one entry (waiting for a free slot); false once a
 * write failed. */
static bool seed__flush(uv_loop_t *loop, replica *r, seed_run *run, seed_batch *b)
{
    if (!b->n) return true;
    seed_slot *s;
    while (!(s = seed__free_slot(run)) && !run->failed) uv_run(loop, UV_RUN_ONCE);
    if (run->failed) return false;
    kv_slice *args = xcalloc(b->n + 1, sizeof(*args));
    args[0] = (kv_slice){"", 0}; /* no token: nobody waits for its steps' replies */
    for (size_t i = 0; i < b->n; i++) {
        size_t from = i ? b->end[i - 1] : 0;
        args[1 + i] = (kv_slice){b->steps.data + b->steps.off + from, b->end[i] - from};
    }
    kv_command cmd = {
        .op = KV_OP_EXEC, .a = 0, .b = (int64_t)b->n, .nargs = (uint32_t)(b->n + 1), .args = args};
    s->busy = true;
    s->keys = b->n;
    run->inflight++;
    int rv = replica_propose(r, &s->req, &cmd); /* encodes the entry: args may go */
    free(args);
    if (rv != REPLICA_OK) { /* not started: the callback will not come */
        s->busy = false;
        run->inflight--;
        run->failed = rv;
    }
    buf_reset(&b->steps);
    b->n = 0;
    return !run->failed;
}

int replica_seed(uv_loop_t *loop, replica *r, kv_store *from, double timeout_s, uint64_t *written,
                 char *err, size_t errlen)
{
    int64_t deadline = clock_mono_ms() + (int64_t)(timeout_s * 1000);
    replica_status_info st;
    for (;;) {
        replica_get_status(r, &st);
        if (st.ready && (strcmp(st.role, "leader") == 0 || strcmp(st.role, "standalone") == 0))
            break;
        if (clock_mono_ms() > deadline) {
            snprintf(err, errlen, "restore: this node did not become a ready leader in %.0f s (%s)",
                     timeout_s, st.not_ready_reason ? st.not_ready_reason : st.role);
            return -1;
        }
        uv_run(loop, UV_RUN_ONCE);
    }
    seed_run *run = xcalloc(1, sizeof(*run));
    for (unsigned i = 0; i < SEED_WINDOW; i++) {
        replica_req_init(&run->slots[i].req, &run->slots[i], seed__done);
        run->slots[i].run = run;
    }
    int64_t now = replica_now_ms();
    buf payload; /* a collection's DUMP payload: encoding the step copies it */
    buf_init(&payload);
    seed_batch batch = {0};
    buf_init(&batch.steps);
    for (kv_entry *e = kv_keyspace_first(&from->ks); e && !run->failed; e = kv_keyspace_next(e)) {
        if (kv_entry_expired(e, now)) continue;
        kv_slice a[2] = {{kv_entry_key(e), e->key_len}, {e->value, e->value_len}};
        kv_command cmd = {
            .op = KV_OP_PUT, .nargs = 2, .args = a, .expire_ms = e->expire_ms, .now_ms = now};
        if (e->type != KV_TYPE_STRING) { /* a hash, list ...: RESTORE of its payload */
            buf_reset(&payload);
            kv_dump_value(&from->ks.limits, e, &payload);
            a[1] = (kv_slice){payload.data + payload.off, payload.len - payload.off};
            cmd.op = KV_OP_RESTORE;
        }
        /* a big value goes in an entry of its own */
        if (batch.n && batch.steps.len + a[1].len > SEED_BATCH_BYTES &&
            !seed__flush(loop, r, run, &batch))
            break;
        seed__add(&batch, &cmd);
        if ((batch.n >= SEED_BATCH_KEYS || batch.steps.len >= SEED_BATCH_BYTES) &&
            !seed__flush(loop, r, run, &batch))
            break;
    }
    if (!run->failed) seed__flush(loop, r, run, &batch);
    buf_close(&payload);
    buf_close(&batch.steps);
    free(batch.end);
    while (run->inflight) uv_run(loop, UV_RUN_ONCE);
    for (unsigned i = 0; i < SEED_WINDOW; i++) replica_req_close(&run->slots[i].req);
    *written = run->written;
    int failed = run->failed;
    free(run);
    if (failed) {
        snprintf(err, errlen, "restore: a write failed after %llu keys: %s",
                 (unsigned long long)*written, replica_status_text(failed));
        return -1;
    }
    return 0;
}

typedef struct seed_one {
    bool done;
    int status;
    kv_status result;
} seed_one;

static void seed__one_done(replica_req *req, int status)
{
    seed_one *o = req->data;
    o->done = true;
    o->status = status;
    o->result = req->result.status;
}

int replica_seed_command(uv_loop_t *loop, replica *r, kv_command *cmd, char *err, size_t errlen)
{
    seed_one o = {0};
    replica_req req;
    replica_req_init(&req, &o, seed__one_done);
    int rv = replica_propose(r, &req, cmd);
    if (rv == REPLICA_OK)
        while (!o.done) uv_run(loop, UV_RUN_ONCE);
    else
        o.status = rv;
    replica_req_close(&req);
    if (o.status != REPLICA_OK || o.result != KV_OK) {
        snprintf(err, errlen, "restore: a write failed: %s",
                 o.status != REPLICA_OK ? replica_status_text(o.status) : "refused by the store");
        return -1;
    }
    return 0;
}
