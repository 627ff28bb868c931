/* sim_io: see sim_io.h. Memory follows libraft's rules: a received
 * message's entries (one batch), snapshot data and configuration belong to
 * libraft; a snapshot handed back by load or snapshot_get too. */
#include "sim_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

enum { EV_TICK, EV_DISK, EV_SEND_DONE, EV_DELIVER, EV_CLOSE_DONE };
enum { DISK_APPEND, DISK_TRUNCATE, DISK_SNAPSHOT_PUT, DISK_SNAPSHOT_GET };

typedef struct event {
    int64_t at;
    uint64_t seq;
    int kind;
    unsigned node; /* who runs it; for a delivery, the receiver */
    unsigned from; /* a delivery's sender */
    /* disk */
    int disk;
    struct raft_io_append *append;
    struct raft_entry *entries; /* own copies, each buf raft_malloc'd */
    unsigned n;
    raft_index index; /* truncate from here */
    struct raft_io_snapshot_put *put;
    unsigned trailing;
    struct raft_snapshot *snapshot; /* own copy */
    struct raft_io_snapshot_get *get;
    /* a send's completion */
    struct raft_io_send *send;
    /* a delivery */
    struct raft_message msg;
    /* close */
    raft_io_close_cb close_cb;
    struct event *next;
} event;

typedef struct sim_node {
    sim_world *w;
    unsigned index;
    struct raft_io io;
    raft_id id;
    char address[64];
    /* the disk: what survives a crash */
    raft_term term;
    raft_id vote;
    struct raft_snapshot *snapshot;
    struct raft_entry *entries; /* entries[0] has index `start` */
    size_t n;
    raft_index start;
    /* the process */
    bool up, frozen, started;
    bool closing; /* libraft closed the io: pending requests fail */
    raft_io_tick_cb tick;
    raft_io_recv_cb recv;
    unsigned tick_ms;
    int64_t disk_done_at; /* completions stay in order */
    bool disk_failing;    /* writes fail with EIO (sim_world_disk_fail) */
} sim_node;

struct sim_world {
    uint64_t rng;
    int64_t now;
    uint64_t seq;
    unsigned n;
    sim_node nodes[SIM_MAX_NODES];
    bool link[SIM_MAX_NODES][SIM_MAX_NODES];
    unsigned latency_ms, jitter_ms, drop_per_mille, disk_ms;
    event *events;
    uint64_t lost_writes, installs, failed_writes, torn_writes;
    bool torn; /* a crash may leave part of the write in progress */
};

static uint64_t rng_next(sim_world *w)
{
    uint64_t z = (w->rng += 0x9e3779b97f4a7c15ULL); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static sim_node *node_of(struct raft_io *io)
{
    return io->impl;
}

static event *event_new(sim_world *w, int kind, unsigned node, int64_t at)
{
    event *e = xcalloc(1, sizeof(*e));
    e->kind = kind;
    e->node = node;
    e->at = at;
    e->seq = ++w->seq;
    e->next = w->events;
    w->events = e;
    return e;
}

static void event_unlink(sim_world *w, event *e)
{
    for (event **p = &w->events; *p; p = &(*p)->next) {
        if (*p == e) {
            *p = e->next;
            return;
        }
    }
}

/* ---- copies ---------------------------------------------------------------- */

static void conf_copy(const struct raft_configuration *src, struct raft_configuration *dst)
{
    raft_configuration_init(dst);
    for (unsigned i = 0; i < src->n; i++)
        if (raft_configuration_add(dst, src->servers[i].id, src->servers[i].address,
                                   src->servers[i].role) != 0)
            abort();
}

/* n entries sharing one batch, as libraft receives and loads them. */
static struct raft_entry *entries_batch_copy(const struct raft_entry *src, size_t n)
{
    if (n == 0) return NULL;
    size_t size = 0;
    for (size_t i = 0; i < n; i++) size += src[i].buf.len;
    struct raft_entry *dst = raft_malloc(n * sizeof(*dst));
    char *batch = raft_malloc(size ? size : 1);
    if (!dst || !batch) abort();
    char *p = batch;
    for (size_t i = 0; i < n; i++) {
        dst[i] = src[i];
        dst[i].buf.base = p;
        memcpy(p, src[i].buf.base, src[i].buf.len);
        dst[i].batch = batch;
        p += src[i].buf.len;
    }
    return dst;
}

static void entry_own_copy(const struct raft_entry *src, struct raft_entry *dst)
{
    *dst = *src;
    dst->batch = NULL;
    dst->buf.base = raft_malloc(src->buf.len ? src->buf.len : 1);
    if (!dst->buf.base) abort();
    memcpy(dst->buf.base, src->buf.base, src->buf.len);
}

static struct raft_snapshot *snapshot_copy(const struct raft_snapshot *src)
{
    struct raft_snapshot *s = raft_malloc(sizeof(*s));
    if (!s) abort();
    memset(s, 0, sizeof(*s));
    s->index = src->index;
    s->term = src->term;
    s->configuration_index = src->configuration_index;
    conf_copy(&src->configuration, &s->configuration);
    size_t size = 0;
    for (unsigned i = 0; i < src->n_bufs; i++) size += src->bufs[i].len;
    s->bufs = raft_malloc(sizeof(*s->bufs));
    s->bufs[0].base = raft_malloc(size ? size : 1);
    s->bufs[0].len = size;
    s->n_bufs = 1;
    char *p = s->bufs[0].base;
    for (unsigned i = 0; i < src->n_bufs; i++) {
        memcpy(p, src->bufs[i].base, src->bufs[i].len);
        p += src->bufs[i].len;
    }
    return s;
}

static void snapshot_free(struct raft_snapshot *s)
{
    if (!s) return;
    raft_configuration_close(&s->configuration);
    for (unsigned i = 0; i < s->n_bufs; i++) raft_free(s->bufs[i].base);
    raft_free(s->bufs);
    raft_free(s);
}

static void message_copy(const struct raft_message *src, struct raft_message *dst)
{
    *dst = *src;
    switch (src->type) {
    case RAFT_IO_APPEND_ENTRIES:
        dst->append_entries.entries =
            entries_batch_copy(src->append_entries.entries, src->append_entries.n_entries);
        break;
    case RAFT_IO_INSTALL_SNAPSHOT:
        conf_copy(&src->install_snapshot.conf, &dst->install_snapshot.conf);
        dst->install_snapshot.data.base = raft_malloc(src->install_snapshot.data.len + 1);
        memcpy(dst->install_snapshot.data.base, src->install_snapshot.data.base,
               src->install_snapshot.data.len);
        break;
    default:
        break;
    }
}

static void message_free(struct raft_message *m)
{
    switch (m->type) {
    case RAFT_IO_APPEND_ENTRIES:
        if (m->append_entries.entries) {
            raft_free(m->append_entries.entries[0].batch);
            raft_free(m->append_entries.entries);
        }
        break;
    case RAFT_IO_INSTALL_SNAPSHOT:
        raft_configuration_close(&m->install_snapshot.conf);
        raft_free(m->install_snapshot.data.base);
        break;
    default:
        break;
    }
}

static void disk_event_free(event *e)
{
    for (unsigned i = 0; i < e->n; i++) raft_free(e->entries[i].buf.base);
    free(e->entries);
    snapshot_free(e->snapshot);
}

/* ---- the disk ------------------------------------------------------------------ */

static void disk_drop_through(sim_node *n, raft_index last)
{
    /* forget entries with index <= last */
    size_t k = 0;
    while (k < n->n && n->start + k <= last) raft_free(n->entries[k++].buf.base);
    if (k == 0) return; /* also: a wiped disk has no array */
    memmove(n->entries, n->entries + k, (n->n - k) * sizeof(*n->entries));
    n->n -= k;
    n->start += k;
}

static void disk_truncate(sim_node *n, raft_index index)
{
    while (n->n > 0 && n->start + n->n - 1 >= index) raft_free(n->entries[--n->n].buf.base);
}

/* The first k entries of append e reach the disk (the bufs then belong
 * to it); the rest stay with e, to be freed with it. */
static void disk_keep_prefix(sim_node *n, event *e, unsigned k)
{
    if (k == 0) return;
    n->entries = xrealloc(n->entries, (n->n + k) * sizeof(*n->entries));
    memcpy(n->entries + n->n, e->entries, k * sizeof(*e->entries));
    n->n += k;
    memmove(e->entries, e->entries + k, (e->n - k) * sizeof(*e->entries));
    e->n -= k;
}

static void disk_run(sim_node *n, event *e)
{
    switch (e->disk) {
    case DISK_APPEND:
        if (n->disk_failing) {
            /* after EIO the file holds an unknown part of the write: here a
             * random prefix of its entries (possibly none, possibly all) */
            disk_keep_prefix(n, e, (unsigned)(rng_next(n->w) % (e->n + 1)));
            n->w->failed_writes++;
            snprintf(n->io.errmsg, sizeof(n->io.errmsg), "simulated EIO writing the log");
            e->append->cb(e->append, RAFT_IOERR);
            break;
        }
        disk_keep_prefix(n, e, e->n);
        e->append->cb(e->append, 0);
        break;
    case DISK_TRUNCATE:
        disk_truncate(n, e->index);
        break;
    case DISK_SNAPSHOT_PUT: {
        if (n->disk_failing) { /* nothing of it counts: the old snapshot stays */
            n->w->failed_writes++;
            snprintf(n->io.errmsg, sizeof(n->io.errmsg), "simulated EIO writing a snapshot");
            e->put->cb(e->put, RAFT_IOERR);
            break;
        }
        struct raft_snapshot *s = e->snapshot;
        e->snapshot = NULL;
        snapshot_free(n->snapshot);
        n->snapshot = s;
        if (e->trailing == 0) {
            /* installed from the leader: the log restarts after it */
            disk_drop_through(n, (raft_index)-1);
            n->start = s->index + 1;
            n->w->installs++;
        } else if (s->index > e->trailing) {
            disk_drop_through(n, s->index - e->trailing);
        }
        e->put->cb(e->put, 0);
        break;
    }
    case DISK_SNAPSHOT_GET:
        e->get->cb(e->get, n->snapshot ? snapshot_copy(n->snapshot) : NULL, 0);
        break;
    }
}

static event *disk_queue(sim_node *n, int kind)
{
    sim_world *w = n->w;
    int64_t at = w->now + w->disk_ms;
    if (at < n->disk_done_at) at = n->disk_done_at;
    n->disk_done_at = at;
    event *e = event_new(w, EV_DISK, n->index, at);
    e->disk = kind;
    return e;
}

/* ---- raft_io methods ----------------------------------------------------------- */

static int io_init(struct raft_io *io, raft_id id, const char *address)
{
    sim_node *n = node_of(io);
    n->id = id;
    snprintf(n->address, sizeof(n->address), "%s", address);
    return 0;
}

static void io_close(struct raft_io *io, raft_io_close_cb cb)
{
    sim_node *n = node_of(io);
    sim_world *w = n->w;
    /* What was not done is not done: pending requests get RAFT_CANCELED,
     * from the loop (as raft_uv does; libraft crashes if they come from
     * inside raft_close), in order, then the close callback. Nothing more
     * reaches the disk. */
    n->closing = true;
    for (event *e = w->events; e; e = e->next)
        if (e->node == n->index && e->kind != EV_DELIVER && e->kind != EV_CLOSE_DONE)
            e->at = w->now;
    n->started = false;
    n->tick = NULL;
    n->recv = NULL;
    n->disk_done_at = 0;
    event *e = event_new(w, EV_CLOSE_DONE, n->index, w->now);
    e->close_cb = cb;
}

/* A closing node's pending request, run: it fails, the disk stays. */
static void cancel_run(sim_world *w, event *e)
{
    if (e->kind == EV_DISK) {
        if (e->disk != DISK_SNAPSHOT_GET) w->lost_writes++;
        /* libraft 0.15 crashes (NULL read) on an append that fails while it
         * closes; it reports success to a closing raft instead, which
         * changes nothing: the disk did not get it, and a crashed node
         * sends nothing more */
        if (e->disk == DISK_APPEND) e->append->cb(e->append, 0);
        if (e->disk == DISK_SNAPSHOT_PUT) e->put->cb(e->put, RAFT_CANCELED);
        if (e->disk == DISK_SNAPSHOT_GET) e->get->cb(e->get, NULL, RAFT_CANCELED);
        disk_event_free(e);
    } else if (e->kind == EV_SEND_DONE) {
        if (e->send->cb) e->send->cb(e->send, RAFT_CANCELED);
    }
}

static int io_load(struct raft_io *io, raft_term *term, raft_id *voted_for,
                   struct raft_snapshot **snapshot, raft_index *start_index,
                   struct raft_entry *entries[], size_t *n_entries)
{
    sim_node *n = node_of(io);
    *term = n->term;
    *voted_for = n->vote;
    *snapshot = n->snapshot ? snapshot_copy(n->snapshot) : NULL;
    *start_index = n->n ? n->start : (n->snapshot ? n->snapshot->index + 1 : 1);
    *entries = entries_batch_copy(n->entries, n->n);
    *n_entries = n->n;
    return 0;
}

static int io_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick, raft_io_recv_cb recv)
{
    sim_node *n = node_of(io);
    n->tick = tick;
    n->recv = recv;
    n->tick_ms = msecs;
    n->started = true;
    event_new(n->w, EV_TICK, n->index, n->w->now + msecs);
    return 0;
}

static int io_bootstrap(struct raft_io *io, const struct raft_configuration *conf)
{
    sim_node *n = node_of(io);
    if (n->term != 0 || n->n != 0 || n->snapshot) return RAFT_CANTBOOTSTRAP;
    struct raft_buffer buf;
    int rv = raft_configuration_encode(conf, &buf);
    if (rv != 0) return rv;
    n->entries = xcalloc(1, sizeof(*n->entries));
    n->entries[0].term = 1;
    n->entries[0].type = RAFT_CHANGE;
    n->entries[0].buf = buf;
    n->n = 1;
    n->start = 1;
    n->term = 1;
    n->vote = 0;
    return 0;
}

static int io_recover(struct raft_io *io, const struct raft_configuration *conf)
{
    (void)io;
    (void)conf;
    return RAFT_IOERR;
}

static int io_set_term(struct raft_io *io, raft_term term)
{
    sim_node *n = node_of(io);
    n->term = term; /* metadata is written synchronously (raft_uv does too) */
    n->vote = 0;
    return 0;
}

static int io_set_vote(struct raft_io *io, raft_id id)
{
    node_of(io)->vote = id;
    return 0;
}

static int io_send(struct raft_io *io, struct raft_io_send *req, const struct raft_message *message,
                   raft_io_send_cb cb)
{
    sim_node *n = node_of(io);
    sim_world *w = n->w;
    req->cb = cb;
    event *done = event_new(w, EV_SEND_DONE, n->index, w->now);
    done->send = req;
    if (!n->up || n->closing) return 0; /* a crashed process sends nothing */
    unsigned to = (unsigned)(message->server_id - 1);
    if (to >= w->n || !w->link[n->index][to]) return 0; /* lost on the way */
    if (w->drop_per_mille && rng_next(w) % 1000 < w->drop_per_mille) return 0;
    int64_t delay = w->latency_ms + (w->jitter_ms ? (int64_t)(rng_next(w) % w->jitter_ms) : 0);
    event *d = event_new(w, EV_DELIVER, to, w->now + delay);
    d->from = n->index;
    message_copy(message, &d->msg);
    return 0;
}

static int io_append(struct raft_io *io, struct raft_io_append *req,
                     const struct raft_entry entries[], unsigned n_entries, raft_io_append_cb cb)
{
    sim_node *n = node_of(io);
    req->cb = cb;
    event *e = disk_queue(n, DISK_APPEND);
    e->append = req;
    e->n = n_entries;
    e->entries = xcalloc(n_entries ? n_entries : 1, sizeof(*e->entries));
    for (unsigned i = 0; i < n_entries; i++) entry_own_copy(&entries[i], &e->entries[i]);
    return 0;
}

static int io_truncate(struct raft_io *io, raft_index index)
{
    event *e = disk_queue(node_of(io), DISK_TRUNCATE);
    e->index = index;
    return 0;
}

static int io_snapshot_put(struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
                           const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb)
{
    req->cb = cb;
    event *e = disk_queue(node_of(io), DISK_SNAPSHOT_PUT);
    e->put = req;
    e->trailing = trailing;
    e->snapshot = snapshot_copy(snapshot);
    return 0;
}

static int io_snapshot_get(struct raft_io *io, struct raft_io_snapshot_get *req,
                           raft_io_snapshot_get_cb cb)
{
    req->cb = cb;
    event *e = disk_queue(node_of(io), DISK_SNAPSHOT_GET);
    e->get = req;
    return 0;
}

static raft_time io_time(struct raft_io *io)
{
    return (raft_time)node_of(io)->w->now;
}

static int io_random(struct raft_io *io, int min, int max)
{
    sim_world *w = node_of(io)->w;
    return max > min ? min + (int)(rng_next(w) % (uint64_t)(max - min)) : min;
}

/* ---- the world ------------------------------------------------------------------ */

sim_world *sim_world_create(uint64_t seed, unsigned n_nodes)
{
    sim_world *w = xcalloc(1, sizeof(*w));
    w->rng = seed;
    w->n = n_nodes;
    w->latency_ms = 15;
    w->disk_ms = 5;
    for (unsigned i = 0; i < n_nodes; i++) {
        sim_node *n = &w->nodes[i];
        n->w = w;
        n->index = i;
        n->up = true;
        n->start = 1;
        struct raft_io *io = &n->io;
        io->version = 1;
        io->impl = n;
        io->init = io_init;
        io->close = io_close;
        io->load = io_load;
        io->start = io_start;
        io->bootstrap = io_bootstrap;
        io->recover = io_recover;
        io->set_term = io_set_term;
        io->set_vote = io_set_vote;
        io->send = io_send;
        io->append = io_append;
        io->truncate = io_truncate;
        io->snapshot_put = io_snapshot_put;
        io->snapshot_get = io_snapshot_get;
        io->time = io_time;
        io->random = io_random;
        for (unsigned j = 0; j < n_nodes; j++) w->link[i][j] = i != j;
    }
    return w;
}

void sim_world_destroy(sim_world *w)
{
    while (w->events) {
        event *e = w->events;
        w->events = e->next;
        if (e->kind == EV_DELIVER) message_free(&e->msg);
        if (e->kind == EV_DISK) disk_event_free(e);
        free(e);
    }
    for (unsigned i = 0; i < w->n; i++) {
        sim_node *n = &w->nodes[i];
        for (size_t k = 0; k < n->n; k++) raft_free(n->entries[k].buf.base);
        free(n->entries);
        snapshot_free(n->snapshot);
    }
    free(w);
}

struct raft_io *sim_world_io(sim_world *w, unsigned i)
{
    return &w->nodes[i].io;
}

raft_term sim_world_disk_term(const sim_world *w, unsigned i, raft_index index, bool *covered)
{
    const sim_node *n = &w->nodes[i];
    *covered = n->snapshot && n->snapshot->index >= index;
    if (n->n == 0 || index < n->start || index >= n->start + n->n) return 0;
    return n->entries[index - n->start].term;
}

int64_t sim_world_now(const sim_world *w)
{
    return w->now;
}

void sim_world_advance(sim_world *w, int64_t t)
{
    if (t > w->now) w->now = t;
}

/* SIM_TRACE_FROM / SIM_TRACE_TO (ms): print every delivery in that window. */
static void trace_message(sim_world *w, const event *e)
{
    static int64_t from = -1, to = -1;
    if (from == -1) {
        const char *f = getenv("SIM_TRACE_FROM"), *t = getenv("SIM_TRACE_TO");
        from = f ? atoll(f) : -2;
        to = t ? atoll(t) : INT64_MAX;
    }
    if (from < 0 || w->now < from || w->now > to) return;
    const struct raft_message *m = &e->msg;
    const sim_node *dst = &w->nodes[e->node];
    bool dropped = !(dst->up && dst->started && dst->recv && w->link[e->from][e->node]);
    fprintf(stderr, "%8lld msg %u->%u%s ", (long long)w->now, e->from + 1, e->node + 1,
            dropped ? " DROPPED" : "");
    switch (m->type) {
    case RAFT_IO_APPEND_ENTRIES: {
        const struct raft_append_entries *a = &m->append_entries;
        fprintf(stderr, "AE t%llu prev %llu/t%llu commit %llu n %u", (unsigned long long)a->term,
                (unsigned long long)a->prev_log_index, (unsigned long long)a->prev_log_term,
                (unsigned long long)a->leader_commit, a->n_entries);
        for (unsigned i = 0; i < a->n_entries && i < 8; i++)
            fprintf(stderr, " t%llu", (unsigned long long)a->entries[i].term);
        break;
    }
    case RAFT_IO_APPEND_ENTRIES_RESULT: {
        const struct raft_append_entries_result *r = &m->append_entries_result;
        fprintf(stderr, "AER t%llu rejected %llu last %llu", (unsigned long long)r->term,
                (unsigned long long)r->rejected, (unsigned long long)r->last_log_index);
        break;
    }
    case RAFT_IO_REQUEST_VOTE:
        fprintf(stderr, "RV t%llu last %llu/t%llu pre %d", (unsigned long long)m->request_vote.term,
                (unsigned long long)m->request_vote.last_log_index,
                (unsigned long long)m->request_vote.last_log_term, m->request_vote.pre_vote);
        break;
    case RAFT_IO_REQUEST_VOTE_RESULT:
        fprintf(stderr, "RVR t%llu granted %d pre %d",
                (unsigned long long)m->request_vote_result.term,
                m->request_vote_result.vote_granted, m->request_vote_result.pre_vote);
        break;
    case RAFT_IO_INSTALL_SNAPSHOT:
        fprintf(stderr, "IS t%llu last %llu/t%llu", (unsigned long long)m->install_snapshot.term,
                (unsigned long long)m->install_snapshot.last_index,
                (unsigned long long)m->install_snapshot.last_term);
        break;
    default:
        fprintf(stderr, "type %u", m->type);
    }
    fprintf(stderr, "\n");
}

static bool runnable(const sim_world *w, const event *e)
{
    const sim_node *n = &w->nodes[e->node];
    if (n->closing && e->kind != EV_DELIVER) return true;
    switch (e->kind) {
    case EV_CLOSE_DONE:
        return true;
    case EV_DELIVER:
        return !n->frozen; /* a frozen receiver holds it; a down one drops it */
    default:
        return n->up && !n->frozen;
    }
}

bool sim_world_step(sim_world *w)
{
    event *pick = NULL;
    for (event *e = w->events; e; e = e->next) {
        if (!runnable(w, e)) continue;
        if (!pick || e->at < pick->at || (e->at == pick->at && e->seq < pick->seq)) pick = e;
    }
    if (!pick) return false;
    event_unlink(w, pick);
    if (pick->at > w->now) w->now = pick->at;
    sim_node *n = &w->nodes[pick->node];
    if (n->closing && pick->kind != EV_DELIVER && pick->kind != EV_CLOSE_DONE) {
        cancel_run(w, pick);
        free(pick);
        return true;
    }
    switch (pick->kind) {
    case EV_TICK:
        if (n->started) {
            event_new(w, EV_TICK, n->index, w->now + n->tick_ms);
            n->tick(&n->io);
        }
        break;
    case EV_DISK:
        disk_run(n, pick);
        disk_event_free(pick);
        break;
    case EV_SEND_DONE:
        if (pick->send->cb) pick->send->cb(pick->send, 0); /* libraft may pass none */
        break;
    case EV_DELIVER:
        trace_message(w, pick);
        if (n->up && n->started && n->recv && w->link[pick->from][pick->node]) {
            pick->msg.server_id = w->nodes[pick->from].id;
            pick->msg.server_address = w->nodes[pick->from].address;
            n->recv(&n->io, &pick->msg); /* libraft owns what the message carries */
        } else {
            message_free(&pick->msg);
        }
        break;
    case EV_CLOSE_DONE:
        n->closing = false;
        if (pick->close_cb) pick->close_cb(&n->io);
        break;
    }
    free(pick);
    return true;
}

void sim_world_link(sim_world *w, unsigned from, unsigned to, bool up)
{
    if (from != to) w->link[from][to] = up;
}

bool sim_world_linked(const sim_world *w, unsigned from, unsigned to)
{
    return w->link[from][to];
}

void sim_world_latency(sim_world *w, unsigned base_ms, unsigned jitter_ms)
{
    w->latency_ms = base_ms;
    w->jitter_ms = jitter_ms;
}

void sim_world_drop_rate(sim_world *w, unsigned per_mille)
{
    w->drop_per_mille = per_mille;
}

void sim_world_disk_latency(sim_world *w, unsigned ms)
{
    w->disk_ms = ms;
}

void sim_world_freeze(sim_world *w, unsigned i, bool frozen)
{
    w->nodes[i].frozen = frozen;
}

bool sim_world_frozen(const sim_world *w, unsigned i)
{
    return w->nodes[i].frozen;
}

void sim_world_crash(sim_world *w, unsigned i)
{
    sim_node *n = &w->nodes[i];
    if (w->torn && n->up && !n->disk_failing) {
        /* the write in progress (the earliest pending, if an append) may
         * have reached the disk in part, though it never completed (a
         * failing disk writes nothing more: the append it failed may have
         * left only part of itself, and nothing may follow a hole) */
        event *first = NULL;
        for (event *e = w->events; e; e = e->next)
            if (e->kind == EV_DISK && e->node == i &&
                (!first || e->at < first->at || (e->at == first->at && e->seq < first->seq)))
                first = e;
        if (first && first->disk == DISK_APPEND && first->n > 0) {
            unsigned k = (unsigned)(rng_next(w) % (first->n + 1));
            if (k > 0) w->torn_writes++;
            disk_keep_prefix(n, first, k);
        }
    }
    n->up = false;
    n->frozen = false;
}

void sim_world_disk_fail(sim_world *w, unsigned i, bool failing)
{
    w->nodes[i].disk_failing = failing;
}

void sim_world_torn_writes(sim_world *w, bool on)
{
    w->torn = on;
}

uint64_t sim_world_failed_writes(const sim_world *w)
{
    return w->failed_writes;
}

uint64_t sim_world_torn(const sim_world *w)
{
    return w->torn_writes;
}

void sim_world_wipe(sim_world *w, unsigned i)
{
    sim_node *n = &w->nodes[i];
    if (n->up) abort(); /* a running node's disk is not wiped */
    for (event **p = &w->events; *p;) {
        event *e = *p;
        if (e->kind == EV_DISK && e->node == i) {
            *p = e->next;
            disk_event_free(e);
            free(e);
        } else {
            p = &e->next;
        }
    }
    for (size_t k = 0; k < n->n; k++) raft_free(n->entries[k].buf.base);
    free(n->entries);
    n->entries = NULL;
    n->n = 0;
    n->start = 1;
    snapshot_free(n->snapshot);
    n->snapshot = NULL;
    n->term = 0;
    n->vote = 0;
}

void sim_world_revive(sim_world *w, unsigned i)
{
    w->nodes[i].up = true;
}

bool sim_world_up(const sim_world *w, unsigned i)
{
    return w->nodes[i].up;
}

uint64_t sim_world_lost_writes(const sim_world *w)
{
    return w->lost_writes;
}

uint64_t sim_world_installs(const sim_world *w)
{
    return w->installs;
}
