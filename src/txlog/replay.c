#include "txlog/replay.h"
#include "txlog/txlog.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

#define FETCH_ROWS 10000
#define TXLOG_BASE_EVENT 4 /* txlog.c: a base begins */

static uint64_t be64(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | (unsigned char)p[i];
    return v;
}

static uint32_t be32(const char *p)
{
    return ((uint32_t)(unsigned char)p[0] << 24) | ((uint32_t)(unsigned char)p[1] << 16) |
           ((uint32_t)(unsigned char)p[2] << 8) | (uint32_t)(unsigned char)p[3];
}

static int fail(PGconn *c, char *err, size_t errlen, const char *what)
{
    const char *m = c ? PQerrorMessage(c) : "";
    snprintf(err, errlen, "--restore-from-postgres: %s: %s", what, m && *m ? m : "failed");
    size_t n = strlen(err);
    while (n && (err[n - 1] == '\n' || err[n - 1] == ' ')) err[--n] = '\0';
    return -1;
}

/* One row, binary format: revision int8, seq int4, event_type int2, key
 * bytea, value bytea, expire_ms int8, commit_ms int8. Checks the row
 * continues the sequence; applies it to the scratch store. */
static int replay_row(PGresult *res, int i, kv_store *into, txlog_replay_stats *st,
                      uint32_t *next_seq, char *err, size_t errlen)
{
    for (int f = 0; f < 7; f++) {
        static const int want[] = {8, 4, 2, -1, -1, 8, 8};
        if (want[f] > 0 && !PQgetisnull(res, i, f) && PQgetlength(res, i, f) != want[f]) {
            snprintf(err, errlen, "--restore-from-postgres: cairn_txlog: unexpected column types");
            return -1;
        }
    }
    uint64_t rev = be64(PQgetvalue(res, i, 0));
    uint32_t seq = be32(PQgetvalue(res, i, 1));
    const char *k = PQgetvalue(res, i, 2);
    int kind = ((unsigned char)k[0] << 8) | (unsigned char)k[1];
    if (rev == st->last_revision && seq == *next_seq) {
        (*next_seq)++;
    } else if (seq == 0 && (rev == st->last_revision + 1 ||
                            (rev > st->last_revision && kind == TXLOG_BASE_EVENT))) {
        /* a base may follow any earlier revision: it replaces them all */
        st->last_revision = rev;
        *next_seq = 1;
    } else {
        snprintf(err, errlen,
                 "--restore-from-postgres: cairn_txlog has a gap: revision %" PRIu64 " seq %" PRIu32
                 " follows revision %" PRIu64 " seq %" PRIu32 " (refusing a table with a hole)",
                 rev, seq, st->last_revision, *next_seq ? *next_seq - 1 : 0);
        return -1;
    }
    kv_slice a[2] = {{PQgetvalue(res, i, 3), (size_t)PQgetlength(res, i, 3)},
                     {PQgetvalue(res, i, 4), (size_t)PQgetlength(res, i, 4)}};
    kv_command c = {.args = a, .now_ms = (int64_t)be64(PQgetvalue(res, i, 6))};
    if (kind == KV_CHANGE_PUT && !PQgetisnull(res, i, 3) && !PQgetisnull(res, i, 4)) {
        c.op = KV_OP_PUT;
        c.nargs = 2;
        c.expire_ms = PQgetisnull(res, i, 5) ? 0 : (int64_t)be64(PQgetvalue(res, i, 5));
    } else if (kind == TXLOG_EVENT_TYPED && !PQgetisnull(res, i, 3) && !PQgetisnull(res, i, 4)) {
        /* a collection's whole value: RESTORE ... REPLACE of its payload */
        c.op = KV_OP_RESTORE;
        c.flags = KV_FLAG_XX;
        c.nargs = 2;
        c.expire_ms = PQgetisnull(res, i, 5) ? 0 : (int64_t)be64(PQgetvalue(res, i, 5));
    } else if (kind == KV_CHANGE_DELETE && !PQgetisnull(res, i, 3)) {
        c.op = KV_OP_DEL;
        c.nargs = 1;
    } else if (kind == KV_CHANGE_FLUSH || (kind == TXLOG_BASE_EVENT && seq == 0)) {
        c.op = KV_OP_FLUSH;
    } else {
        snprintf(err, errlen,
                 "--restore-from-postgres: cairn_txlog revision %" PRIu64
                 ": event type %d with these columns is not one cairn writes",
                 rev, kind);
        return -1;
    }
    kv_result r;
    kv_store_apply(into, &c, &r);
    if (c.op == KV_OP_RESTORE && r.status != KV_OK) {
        snprintf(err, errlen,
                 "--restore-from-postgres: cairn_txlog revision %" PRIu64 " seq %" PRIu32
                 ": the value of type %d does not load (status %d)",
                 rev, seq, kind, (int)r.status);
        return -1;
    }
    st->events++;
    return 0;
}

int txlog_replay(const char *url, kv_store *into, txlog_replay_stats *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof(*st));
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {url, "5", "cairnd-restore", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    int rv = -1;
    if (PQstatus(c) != CONNECTION_OK) {
        fail(c, err, errlen, "connect");
        goto out;
    }
    PGresult *res = PQexec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (ok) {
        res = PQexec(c, "DECLARE restore NO SCROLL CURSOR FOR SELECT revision, seq, event_type, "
                        "key, value, expire_ms, commit_ms FROM cairn_txlog ORDER BY revision, seq");
        ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
    }
    if (!ok) {
        fail(c, err, errlen, "reading cairn_txlog");
        goto out;
    }
    uint32_t next_seq = 0;
    char fetch[64];
    snprintf(fetch, sizeof(fetch), "FETCH %d FROM restore", FETCH_ROWS);
    for (;;) {
        res = PQexecParams(c, fetch, 0, NULL, NULL, NULL, NULL, 1);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            PQclear(res);
            fail(c, err, errlen, "reading cairn_txlog");
            goto out;
        }
        int n = PQntuples(res);
        for (int i = 0; i < n; i++) {
            if (replay_row(res, i, into, st, &next_seq, err, errlen) != 0) {
                PQclear(res);
                goto out;
            }
        }
        PQclear(res);
        if (n < FETCH_ROWS) break;
    }
    rv = 0;
out:
    PQfinish(c);
    return rv;
}
