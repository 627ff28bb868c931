#include "txlog/txlog.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs/log.h"
#include "kv/dump.h"
#include "kv/keyspace.h"
#include "obs/metrics.h"
#include "util/alloc.h"
#include "util/buf.h"

#define BATCH_MAX_EVENTS 4096
#define BATCH_MAX_BYTES (4u * 1024 * 1024)
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define IDLE_WAIT_MS 1000
/* every call to PostgreSQL has a deadline (SPEC: every outgoing call) */
#define CONNECT_TIMEOUT_S "5"
#define STATEMENT_TIMEOUT_MS 10000
#define BASE_KEYS_PER_TICK 10000 /* keys copied per loop tick into a base */
#define TXLOG_BASE 4             /* event type of a base's first row */

/* A base: when PostgreSQL needs changes no node buffers any more (it was
 * down too long, the txlog was enabled on a store that already had data,
 * or this leader was restored from a snapshot), the leader copies its
 * keyspace at revision R, a bounded number of keys per loop tick, and
 * ships it as revision R: a first row of type 4 ("what came before is
 * replaced by what follows") and one put per live key, then the changes
 * after R from its buffer. The copy is fuzzy: a key copied late may hold
 * a value of a revision after R; the changes after R, replayed after it,
 * set every key to its final value anyway (they are whole values, never
 * increments), so a replay ends where the store is. */
enum { BASE_NONE, BASE_WANTED, BASE_COPYING, BASE_READY, BASE_SHIPPING };

typedef struct txlog_event txlog_event;
struct txlog_event {
    txlog_event *next;
    uint64_t revision;
    uint32_t seq;
    uint8_t kind;
    int64_t expire_ms;
    int64_t commit_ms;
    uint32_t key_len, value_len;
    char data[]; /* key, then value */
};

struct txlog {
    char *url;
    uint64_t skipped_typed; /* atomic: txlog_status.skipped_typed_total */
    size_t limit;
    pthread_t thread;
    bool thread_started;

    /* everything below up to `conn` is guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stop;
    bool leader;
    /* the buffer: whole revisions, contiguous, oldest first */
    txlog_event *head, *tail;
    size_t bytes;
    uint64_t n;
    uint64_t recorded;
    uint32_t next_seq;
    txlog_status st;
    int base_state;
    uint64_t base_rev;
    txlog_event *base_head, *base_tail;
    uint32_t base_n;

    /* loop thread only */
    kv_store *store;
    buf base_cursor; /* last key copied */

    /* shipping thread only */
    PGconn *conn;
    buf copy;
};

static size_t event_size(const txlog_event *e)
{
    return sizeof(*e) + e->key_len + e->value_len;
}

/* mu held */
static void txlog__pop_head(txlog *t)
{
    txlog_event *e = t->head;
    t->head = e->next;
    if (!t->head) t->tail = NULL;
    t->bytes -= event_size(e);
    t->n--;
    free(e);
}

/* mu held: drop every event of revision <= rev */
static void txlog__drop_through(txlog *t, uint64_t rev)
{
    while (t->head && t->head->revision <= rev) txlog__pop_head(t);
}

/* mu held */
static void txlog__base_free(txlog *t, int next_state)
{
    while (t->base_head) {
        txlog_event *e = t->base_head;
        t->base_head = e->next;
        free(e);
    }
    t->base_tail = NULL;
    t->base_n = 0;
    t->base_state = next_state;
}

/* A change as the buffer and a base hold it: one allocation, the key and
 * value copied behind the header. seq is set by the caller. */
static txlog_event *event_new(uint64_t revision, uint8_t kind, const char *key, size_t klen,
                              const char *value, size_t vlen, int64_t expire_ms, int64_t commit_ms)
{
    txlog_event *e = xmalloc(sizeof(*e) + klen + vlen);
    e->next = NULL;
    e->revision = revision;
    e->seq = 0;
    e->kind = kind;
    e->expire_ms = expire_ms;
    e->commit_ms = commit_ms;
    e->key_len = (uint32_t)klen;
    e->value_len = (uint32_t)vlen;
    if (klen) memcpy(e->data, key, klen);
    if (vlen) memcpy(e->data + klen, value, vlen);
    return e;
}

/* mu held */
static void txlog__base_push(txlog *t, uint8_t kind, const char *key, size_t klen,
                             const char *value, size_t vlen, int64_t expire_ms, int64_t now_ms)
{
    txlog_event *e = event_new(t->base_rev, kind, key, klen, value, vlen, expire_ms, now_ms);
    e->seq = t->base_n++;
    if (t->base_tail)
        t->base_tail->next = e;
    else
        t->base_head = e;
    t->base_tail = e;
}

void txlog_attach_store(txlog *t, kv_store *store)
{
    t->store = store;
}

/* A hash, list, set, sorted set or stream as its DUMP payload into out;
 * false (nothing written, counted) when it holds more memory than a
 * change may serialize on the loop. */
static bool txlog__typed(txlog *t, const kv_entry *e, buf *out)
{
    if (kv_entry_mem_bytes(e) > TXLOG_TYPED_MAX_BYTES) {
        /* counted outside mu: the base copy calls this holding it */
        if (__atomic_fetch_add(&t->skipped_typed, 1, __ATOMIC_RELAXED) == 0)
            LOG_WARN("txlog: a collection too big to record whole is recorded as deleted",
                     LF_I("max_bytes", TXLOG_TYPED_MAX_BYTES));
        return false;
    }
    kv_dump_value(&t->store->ks.limits, e, out);
    return true;
}

void txlog_tick(txlog *t, int64_t now_ms)
{
    if (!t->store) return;
    pthread_mutex_lock(&t->mu);
    if (t->base_state == BASE_WANTED) {
        /* the changes up to here are replaced by the base; those after
         * it follow in the buffer, which records every change from now */
        t->base_rev = t->store->revision;
        txlog__drop_through(t, t->base_rev);
        t->base_n = 0;
        txlog__base_push(t, TXLOG_BASE, NULL, 0, NULL, 0, 0, now_ms);
        buf_reset(&t->base_cursor);
        t->base_state = BASE_COPYING;
        LOG_INFO("txlog: copying the keyspace as a base for PostgreSQL",
                 LF_I("revision", t->base_rev), LF_I("keys", kv_keyspace_count(&t->store->ks)));
    }
    if (t->base_state == BASE_COPYING) {
        kv_entry *e = t->base_cursor.len ? kv_keyspace_seek(&t->store->ks, t->base_cursor.data,
                                                            t->base_cursor.len, true)
                                         : kv_keyspace_first(&t->store->ks);
        buf payload;
        buf_init(&payload);
        for (int n = 0; e && n < BASE_KEYS_PER_TICK; e = kv_keyspace_next(e), n++) {
            if (kv_entry_expired(e, now_ms)) continue;
            if (e->type == KV_TYPE_STRING) {
                txlog__base_push(t, KV_CHANGE_PUT, kv_entry_key(e), e->key_len, e->value,
                                 e->value_len, e->expire_ms, now_ms);
            } else {
                buf_reset(&payload);
                if (txlog__typed(t, e, &payload))
                    txlog__base_push(t, TXLOG_EVENT_TYPED, kv_entry_key(e), e->key_len,
                                     payload.data + payload.off, payload.len - payload.off,
                                     e->expire_ms, now_ms);
            }
            buf_reset(&t->base_cursor);
            buf_append(&t->base_cursor, kv_entry_key(e), e->key_len);
        }
        buf_close(&payload);
        if (!e) {
            t->base_state = BASE_READY;
            pthread_cond_signal(&t->cond);
        }
    }
    pthread_mutex_unlock(&t->mu);
}

void txlog_on_change(void *ctx, const kv_change *c)
{
    txlog *t = ctx;
    /* A key that now holds another type (a hash) is recorded with its
     * whole value as DUMP serializes it; one too big for that is recorded
     * as deleted, so that a restore never brings back a value the key no
     * longer has. docs/operations.md says so. */
    int kind = c->kind;
    const char *value = c->value;
    size_t vlen = kind == KV_CHANGE_PUT ? c->value_len : 0;
    buf payload;
    buf_init(&payload);
    if (kind == KV_CHANGE_PUT && c->type != KV_TYPE_STRING) {
        const kv_entry *now = t->store ? kv_keyspace_find(&t->store->ks, c->key, c->key_len) : NULL;
        if (now && txlog__typed(t, now, &payload)) {
            kind = TXLOG_EVENT_TYPED;
            value = payload.data + payload.off;
            vlen = payload.len - payload.off;
        } else {
            kind = KV_CHANGE_DELETE;
            vlen = 0;
        }
    }
    size_t klen = kind == KV_CHANGE_FLUSH ? 0 : c->key_len;
    bool put = kind == KV_CHANGE_PUT || kind == TXLOG_EVENT_TYPED;
    txlog_event *e = event_new(c->revision, (uint8_t)kind, c->key, klen, value, vlen,
                               put ? c->expire_ms : 0, c->now_ms);
    buf_close(&payload);

    pthread_mutex_lock(&t->mu);
    if (c->revision == t->recorded) {
        e->seq = t->next_seq++;
    } else {
        /* a revision skipped (a snapshot from the leader was installed):
         * what is buffered no longer joins up with what follows */
        if (t->recorded && c->revision != t->recorded + 1) {
            txlog__drop_through(t, UINT64_MAX);
            /* a base being copied no longer joins up either */
            if (t->base_state == BASE_COPYING || t->base_state == BASE_READY)
                txlog__base_free(t, BASE_NONE);
        }
        e->seq = 0;
        t->next_seq = 1;
        t->recorded = c->revision;
    }
    if (t->tail)
        t->tail->next = e;
    else
        t->head = e;
    t->tail = e;
    t->bytes += event_size(e);
    t->n++;
    /* over the bound: drop the oldest whole revisions, never the newest */
    while (t->bytes > t->limit && t->head->revision != e->revision) {
        uint64_t rev = t->head->revision;
        while (t->head && t->head->revision == rev) {
            txlog__pop_head(t);
            t->st.dropped_events_total++;
        }
    }
    if (t->leader) pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->mu);
}

void txlog_set_leader(txlog *t, bool leader)
{
    pthread_mutex_lock(&t->mu);
    if (leader != t->leader) {
        t->leader = leader;
        /* a base is the leader's business; a new leader makes its own */
        if (!leader && t->base_state != BASE_SHIPPING) txlog__base_free(t, BASE_NONE);
        pthread_cond_signal(&t->cond);
    }
    pthread_mutex_unlock(&t->mu);
}

void txlog_get_status(txlog *t, txlog_status *st)
{
    pthread_mutex_lock(&t->mu);
    *st = t->st;
    st->skipped_typed_total = __atomic_load_n(&t->skipped_typed, __ATOMIC_RELAXED);
    st->leader = t->leader;
    st->recorded = t->recorded;
    st->buffered_events = t->n;
    st->buffered_bytes = t->bytes;
    st->lag = st->recorded > st->shipped ? st->recorded - st->shipped : 0;
    pthread_mutex_unlock(&t->mu);
}

/* ---- metrics ------------------------------------------------------------- */

#define TXLOG_METRIC(fn, expr)                                                                     \
    static double fn(void *c)                                                                      \
    {                                                                                              \
        txlog_status st;                                                                           \
        txlog_get_status(c, &st);                                                                  \
        return (double)(expr);                                                                     \
    }
TXLOG_METRIC(m_lag, st.lag)
TXLOG_METRIC(m_shipped, st.shipped)
TXLOG_METRIC(m_connected, st.connected)
TXLOG_METRIC(m_gap, st.gap)
TXLOG_METRIC(m_bytes, st.buffered_bytes)
TXLOG_METRIC(m_events, st.shipped_events_total)
TXLOG_METRIC(m_errors, st.errors_total)
TXLOG_METRIC(m_dropped, st.dropped_events_total)
TXLOG_METRIC(m_bases, st.bases_total)
TXLOG_METRIC(m_skipped_typed, st.skipped_typed_total)

void txlog_register_metrics(txlog *t)
{
    metrics_gauge_register("cairn_txlog_lag_revisions",
                           "Revisions recorded but not yet in PostgreSQL", "", m_lag, t);
    metrics_gauge_register("cairn_txlog_shipped_revision",
                           "Newest revision in PostgreSQL (its progress row)", "", m_shipped, t);
    metrics_gauge_register("cairn_txlog_connected", "1 while connected to PostgreSQL", "",
                           m_connected, t);
    metrics_gauge_register("cairn_txlog_gap", "1 when PostgreSQL needs changes no longer buffered",
                           "", m_gap, t);
    metrics_gauge_register("cairn_txlog_buffered_bytes", "Changes held for PostgreSQL", "", m_bytes,
                           t);
    metrics_counter_fn_register("cairn_txlog_events_total", "Changes written to PostgreSQL", "",
                                m_events, t);
    metrics_counter_fn_register("cairn_txlog_errors_total", "Failed PostgreSQL calls", "", m_errors,
                                t);
    metrics_counter_fn_register("cairn_txlog_dropped_events_total",
                                "Changes dropped from a full buffer", "", m_dropped, t);
    metrics_counter_fn_register("cairn_txlog_skipped_typed_total",
                                "Collections too big to record whole, recorded as deleted", "",
                                m_skipped_typed, t);
    metrics_counter_fn_register("cairn_txlog_bases_total",
                                "Keyspace copies written to PostgreSQL to fill a gap", "", m_bases,
                                t);
}

/* ---- the shipping thread ------------------------------------------------ */

static void txlog__fail(txlog *t, const char *what)
{
    const char *msg = t->conn ? PQerrorMessage(t->conn) : "";
    char line[256];
    snprintf(line, sizeof(line), "%s: %s", what, msg && *msg ? msg : "failed");
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == ' ')) line[--n] = '\0';
    pthread_mutex_lock(&t->mu);
    bool repeated = strcmp(t->st.last_error, line) == 0;
    snprintf(t->st.last_error, sizeof(t->st.last_error), "%s", line);
    t->st.errors_total++;
    t->st.connected = false;
    pthread_mutex_unlock(&t->mu);
    if (!repeated) LOG_WARN("txlog: PostgreSQL", LF_S("error", line));
    if (t->conn) PQfinish(t->conn);
    t->conn = NULL;
}

static bool txlog__exec(txlog *t, const char *sql, ExecStatusType want)
{
    PGresult *res = PQexec(t->conn, sql);
    bool ok = PQresultStatus(res) == want;
    PQclear(res);
    return ok;
}

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS cairn_txlog ("
    " revision bigint NOT NULL, seq integer NOT NULL, event_type smallint NOT NULL,"
    " key bytea, value bytea, expire_ms bigint, commit_ms bigint NOT NULL,"
    " PRIMARY KEY (revision, seq));"
    "CREATE TABLE IF NOT EXISTS cairn_txlog_progress ("
    " id integer PRIMARY KEY CHECK (id = 1), revision bigint NOT NULL,"
    " updated_at timestamptz NOT NULL DEFAULT now());"
    "INSERT INTO cairn_txlog_progress (id, revision) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;";

static bool txlog__connect(txlog *t)
{
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {t->url, CONNECT_TIMEOUT_S, "cairnd-txlog", NULL};
    t->conn = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(t->conn) != CONNECTION_OK) {
        txlog__fail(t, "connect");
        return false;
    }
    char sql[96];
    snprintf(sql, sizeof(sql), "SET statement_timeout = %d", STATEMENT_TIMEOUT_MS);
    if (!txlog__exec(t, sql, PGRES_COMMAND_OK) || !txlog__exec(t, SCHEMA, PGRES_COMMAND_OK)) {
        txlog__fail(t, "create tables");
        return false;
    }
    pthread_mutex_lock(&t->mu);
    t->st.connected = true;
    pthread_mutex_unlock(&t->mu);
    LOG_INFO("txlog: connected to PostgreSQL", LF_I("shipped", t->st.shipped));
    return true;
}

static void copy_bytea(buf *b, const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    /* COPY text format: "\\x" is bytea's hex form once COPY has undone
     * its own backslash escaping */
    buf_append(b, "\\\\x", 3);
    buf_reserve(b, 2 * n);
    for (size_t i = 0; i < n; i++) {
        char two[2] = {hex[(unsigned char)p[i] >> 4], hex[(unsigned char)p[i] & 15]};
        buf_append(b, two, 2);
    }
}

static void copy_row(buf *b, const txlog_event *e)
{
    buf_printf(b, "%" PRIu64 "\t%" PRIu32 "\t%u\t", e->revision, e->seq, (unsigned)e->kind);
    if (e->kind == KV_CHANGE_FLUSH || e->kind == TXLOG_BASE)
        buf_append(b, "\\N", 2);
    else
        copy_bytea(b, e->data, e->key_len);
    buf_append(b, "\t", 1);
    bool put = e->kind == KV_CHANGE_PUT || e->kind == TXLOG_EVENT_TYPED;
    if (put)
        copy_bytea(b, e->data + e->key_len, e->value_len);
    else
        buf_append(b, "\\N", 2);
    if (put && e->expire_ms)
        buf_printf(b, "\t%" PRId64, e->expire_ms);
    else
        buf_append(b, "\t\\N", 3);
    buf_printf(b, "\t%" PRId64 "\n", e->commit_ms);
}

enum { SHIP_MORE, SHIP_IDLE, SHIP_GAP, SHIP_ERROR };

/* One batch in one PostgreSQL transaction: lock the progress row, COPY what
 * comes after it, advance it. Another node shipping at the same moment (a
 * deposed leader that does not know it yet) waits on the row lock and then
 * sees the new progress: nothing is written twice. */
static bool txlog__copy_in(txlog *t)
{
    PGresult *res = PQexec(t->conn, "COPY cairn_txlog (revision, seq, event_type, key, value, "
                                    "expire_ms, commit_ms) FROM STDIN");
    bool ok = PQresultStatus(res) == PGRES_COPY_IN;
    PQclear(res);
    return ok;
}

static bool txlog__copy_end(txlog *t)
{
    if (PQputCopyEnd(t->conn, NULL) != 1) return false;
    PGresult *res = PQgetResult(t->conn);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    while ((res = PQgetResult(t->conn))) PQclear(res);
    return ok;
}

/* The base, in the transaction that holds the progress row lock: all of
 * it and the progress row at its revision, or nothing. Called with mu
 * held; takes the base's rows out of the struct so that the loop never
 * sees them while they are being sent. */
static int txlog__ship_base(txlog *t)
{
    txlog_event *rows_head = t->base_head;
    uint64_t base_rev = t->base_rev;
    t->base_head = t->base_tail = NULL;
    t->base_state = BASE_SHIPPING;
    pthread_mutex_unlock(&t->mu);

    bool ok = txlog__copy_in(t);
    uint64_t rows = 0;
    for (txlog_event *e = rows_head; ok && e; e = e->next) {
        copy_row(&t->copy, e);
        rows++;
        if (t->copy.len >= BATCH_MAX_BYTES || !e->next) {
            ok = PQputCopyData(t->conn, t->copy.data, (int)t->copy.len) == 1;
            buf_reset(&t->copy);
        }
    }
    ok = ok && txlog__copy_end(t);
    char sql[128];
    snprintf(sql, sizeof(sql),
             "UPDATE cairn_txlog_progress SET revision = %" PRIu64
             ", updated_at = now() WHERE id = 1",
             base_rev);
    ok = ok && txlog__exec(t, sql, PGRES_COMMAND_OK) && txlog__exec(t, "COMMIT", PGRES_COMMAND_OK);
    while (rows_head) {
        txlog_event *e = rows_head;
        rows_head = e->next;
        free(e);
    }
    if (!ok) {
        pthread_mutex_lock(&t->mu);
        t->base_state = BASE_NONE; /* made again when it is still needed */
        pthread_mutex_unlock(&t->mu);
        txlog__fail(t, "base");
        return SHIP_ERROR;
    }
    pthread_mutex_lock(&t->mu);
    LOG_INFO("txlog: base written to PostgreSQL", LF_I("revision", base_rev), LF_I("rows", rows));
    t->st.shipped = base_rev;
    t->st.shipped_events_total += rows;
    t->st.batches_total++;
    t->st.bases_total++;
    t->st.gap = false;
    txlog__drop_through(t, base_rev);
    txlog__base_free(t, BASE_NONE);
    bool more = t->recorded > t->st.shipped;
    pthread_mutex_unlock(&t->mu);
    return more ? SHIP_MORE : SHIP_IDLE;
}

static int txlog__ship_once(txlog *t)
{
    if (!t->conn && !txlog__connect(t)) return SHIP_ERROR;
    if (!txlog__exec(t, "BEGIN", PGRES_COMMAND_OK)) {
        txlog__fail(t, "begin");
        return SHIP_ERROR;
    }
    PGresult *res =
        PQexec(t->conn, "SELECT revision FROM cairn_txlog_progress WHERE id = 1 FOR UPDATE");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        PQclear(res);
        txlog__fail(t, "read progress");
        return SHIP_ERROR;
    }
    uint64_t progress = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);

    buf_reset(&t->copy);
    uint64_t last = 0, events = 0;
    pthread_mutex_lock(&t->mu);
    t->st.shipped = progress;
    txlog__drop_through(t, progress); /* already in PostgreSQL */
    bool gap = t->head ? t->head->revision > progress + 1 : t->recorded > progress;
    if (gap && t->base_state == BASE_READY) {
        if (t->base_rev > progress && (!t->head || t->head->revision == t->base_rev + 1))
            return txlog__ship_base(t); /* unlocks */
        /* the buffer lost changes after the base too (or PostgreSQL moved
         * past it): copy again */
        txlog__base_free(t, BASE_NONE);
    }
    if (gap && t->base_state == BASE_NONE) t->base_state = BASE_WANTED;
    if (!gap && (t->base_state == BASE_READY || t->base_state == BASE_WANTED))
        txlog__base_free(t, BASE_NONE);
    t->st.gap = gap; /* until a base has filled it */
    for (txlog_event *e = gap ? NULL : t->head; e; e = e->next) {
        /* a batch ends on a revision boundary: the progress row names
         * revisions, never half of one */
        if (e->revision != last && (events >= BATCH_MAX_EVENTS || t->copy.len >= BATCH_MAX_BYTES))
            break;
        copy_row(&t->copy, e);
        last = e->revision;
        events++;
    }
    pthread_mutex_unlock(&t->mu);
    if (!events) {
        txlog__exec(t, "ROLLBACK", PGRES_COMMAND_OK);
        return gap ? SHIP_GAP : SHIP_IDLE;
    }

    bool ok = txlog__copy_in(t) && PQputCopyData(t->conn, t->copy.data, (int)t->copy.len) == 1 &&
              txlog__copy_end(t);
    if (!ok) {
        txlog__fail(t, "copy");
        return SHIP_ERROR;
    }
    char sql[128];
    snprintf(sql, sizeof(sql),
             "UPDATE cairn_txlog_progress SET revision = %" PRIu64
             ", updated_at = now() WHERE id = 1",
             last);
    if (!txlog__exec(t, sql, PGRES_COMMAND_OK) || !txlog__exec(t, "COMMIT", PGRES_COMMAND_OK)) {
        txlog__fail(t, "commit");
        return SHIP_ERROR;
    }
    pthread_mutex_lock(&t->mu);
    t->st.shipped = last;
    t->st.shipped_events_total += events;
    t->st.batches_total++;
    t->st.last_error[0] = '\0';
    txlog__drop_through(t, last);
    bool more = t->recorded > last;
    pthread_mutex_unlock(&t->mu);
    return more ? SHIP_MORE : SHIP_IDLE;
}

/* mu held: wait for a signal, stop, or ms */
static void txlog__wait(txlog *t, unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    if (!t->stop) pthread_cond_timedwait(&t->cond, &t->mu, &ts);
}

static void *txlog__run(void *arg)
{
    txlog *t = arg;
    unsigned backoff = 0;
    bool gap_logged = false;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        if (!t->leader) {
            if (t->conn) {
                pthread_mutex_unlock(&t->mu);
                PQfinish(t->conn);
                t->conn = NULL;
                pthread_mutex_lock(&t->mu);
                t->st.connected = false;
            }
            txlog__wait(t, IDLE_WAIT_MS);
            continue;
        }
        pthread_mutex_unlock(&t->mu);
        int rv = txlog__ship_once(t);
        pthread_mutex_lock(&t->mu);
        if (rv == SHIP_ERROR) {
            backoff = backoff ? backoff * 2 : BACKOFF_MIN_MS;
            if (backoff > BACKOFF_MAX_MS) backoff = BACKOFF_MAX_MS;
            txlog__wait(t, backoff);
            continue;
        }
        backoff = 0;
        if (rv == SHIP_GAP && !gap_logged) {
            LOG_INFO("txlog: PostgreSQL needs changes this node no longer buffers; copying the "
                     "keyspace as a base",
                     LF_I("progress", t->st.shipped),
                     LF_I("oldest_buffered", t->head ? t->head->revision : 0));
        }
        gap_logged = rv == SHIP_GAP;
        if (rv == SHIP_MORE) continue;
        if (t->recorded <= t->st.shipped || rv == SHIP_GAP) txlog__wait(t, IDLE_WAIT_MS);
    }
    pthread_mutex_unlock(&t->mu);
    if (t->conn) PQfinish(t->conn);
    t->conn = NULL;
    return NULL;
}

txlog *txlog_new(const char *url, size_t buffer_bytes, char *err, size_t errlen)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (!opts) {
        /* the message never repeats the URL: it may hold a password */
        snprintf(err, errlen, "--txlog-postgres: not a PostgreSQL connection string (%s)",
                 perr ? perr : "out of memory");
        size_t n = strlen(err);
        while (n && err[n - 1] == '\n') err[--n] = '\0';
        PQfreemem(perr);
        return NULL;
    }
    PQconninfoFree(opts);
    txlog *t = xcalloc(1, sizeof(*t));
    t->url = xstrdup(url);
    t->limit = buffer_bytes ? buffer_bytes : TXLOG_DEFAULT_BUFFER_BYTES;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cond, NULL);
    buf_init(&t->copy);
    buf_init(&t->base_cursor);
    int rv = pthread_create(&t->thread, NULL, txlog__run, t);
    if (rv != 0) {
        snprintf(err, errlen, "--txlog-postgres: cannot start its thread: %s", strerror(rv));
        txlog_free(t);
        return NULL;
    }
    t->thread_started = true;
    return t;
}

void txlog_free(txlog *t)
{
    if (!t) return;
    if (t->thread_started) {
        pthread_mutex_lock(&t->mu);
        t->stop = true;
        pthread_cond_signal(&t->cond);
        pthread_mutex_unlock(&t->mu);
        pthread_join(t->thread, NULL);
    }
    txlog__drop_through(t, UINT64_MAX);
    txlog__base_free(t, BASE_NONE);
    buf_close(&t->copy);
    buf_close(&t->base_cursor);
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->mu);
    free(t->url);
    free(t);
}
