/* resp_api: connections, ordering and dispatch of the Redis front end.
 *
 * Per connection, requests form a queue in arrival order; each holds its
 * reply until every request before it has been written. The parse loop
 * (resp__process) takes one command at a time from the input:
 *   - a write is dispatched unless a non-write is queued;
 *   - anything else is dispatched only when the queue is empty;
 *   - otherwise the loop stops without consuming the command, pauses
 *     reading, and resumes when the queue drains (resp__drain).
 * Replica callbacks may run inside replica_propose/replica_read, so the
 * queue is written out only by the outermost process/drain call
 * (rc->depth), and a connection closed under such a call is freed when
 * that call unwinds (rc->dead): a reply written to a client that is
 * disconnected for not reading closes the connection synchronously. */
#include "api/resp_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/memory.h"
#include "api/auth.h"
#include "api/resp_internal.h"
#include "obs/log.h"
#include "util/alloc.h"
#include "util/glob.h"
#include "kv/set.h"
#include "util/strconv.h"

#define RESP_MAX_ARGS (1u << 20)
#define RESP_MAX_INLINE ((size_t)64 * 1024)
/* Bulk strings a little over the key/value limits still parse, so that
 * the command gets a clear "too large" error instead of a closed
 * connection; beyond the margin it is a protocol error. */
#define RESP_BULK_MARGIN ((size_t)64 * 1024)
/* An incomplete command may buffer at most this much (or 4 maximal bulks,
 * whichever is larger), like Redis' client-query-buffer-limit. */
#define RESP_MIN_QUERY_BYTES ((size_t)256 * 1024 * 1024)
/* Requests one connection may have in flight (at most --max-inflight). A
 * client pipelining more (redis-cli --pipe) is slowed down by TCP
 * backpressure instead of having its writes shed with -BUSY by the
 * replica's global --max-inflight, which is left for many clients at once. */
#define RESP_MAX_PENDING 1024
#define RESP_SPARE_REQS 8
#define RESP_KEEP_BYTES ((size_t)16 * 1024)
#define RESP_KEEP_ARGS 1024

static const char *const resp__outcome_names[RESP_OUTCOMES_] = {"ok", "error", "busy",
                                                                "unavailable", "oom"};

static uint64_t resp__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the command index ---------------------------------------------------- */

static char resp__lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c + ('a' - 'A')) : c;
}

/* FNV-1a over the lower-cased name: command names are fixed and short, so
 * a 512-slot open-addressing table resolves a name in about one probe. */
static uint32_t resp__hash_name(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)resp__lower(s[i]);
        h *= 16777619u;
    }
    return h;
}

static size_t resp__find(const resp_api *ra, const char *name, size_t len)
{
    if (len == 0 || len > ra->max_name_len) return ra->ncmds;
    uint32_t h = resp__hash_name(name, len) & (RESP_HASH_SLOTS - 1);
    while (ra->slots[h]) {
        size_t idx = ra->slots[h] - 1u;
        const char *cn = ra->cmds[idx]->name;
        size_t i = 0;
        while (i < len && cn[i] && cn[i] == resp__lower(name[i])) i++;
        if (i == len && cn[i] == '\0') return idx;
        h = (h + 1) & (RESP_HASH_SLOTS - 1);
    }
    return ra->ncmds;
}

const resp_cmd *resp_api_lookup_index(const resp_api *ra, const char *name, size_t len, size_t *idx)
{
    *idx = resp__find(ra, name, len);
    return *idx < ra->ncmds ? ra->cmds[*idx] : NULL;
}

const resp_cmd *resp_api_lookup(const resp_api *ra, const char *name, size_t len)
{
    size_t idx = resp__find(ra, name, len);
    return idx < ra->ncmds ? ra->cmds[idx] : NULL;
}

static void resp__index_commands(resp_api *ra)
{
    const struct {
        const resp_cmd *t;
        size_t n;
    } tables[] = {
        {resp_cmds_server, resp_cmds_server_count},
        {resp_cmds_strings, resp_cmds_strings_count},
        {resp_cmds_keys, resp_cmds_keys_count},
        {resp_cmds_hashes, resp_cmds_hashes_count},
        {resp_cmds_lists, resp_cmds_lists_count},
        {resp_cmds_sets, resp_cmds_sets_count},
        {resp_cmds_zsets, resp_cmds_zsets_count},
        {resp_cmds_bitmaps, resp_cmds_bitmaps_count},
        {resp_cmds_hll, resp_cmds_hll_count},
        {resp_cmds_geo, resp_cmds_geo_count},
        {resp_cmds_sort, resp_cmds_sort_count},
        {resp_cmds_transactions, resp_cmds_transactions_count},
        {resp_cmds_pubsub, resp_cmds_pubsub_count},
        {resp_cmds_streams, resp_cmds_streams_count},
        {resp_cmds_stream_groups, resp_cmds_stream_groups_count},
        {resp_cmds_xinfo, resp_cmds_xinfo_count},
        {resp_cmds_wait, resp_cmds_wait_count},
        {resp_cmds_scripting, resp_cmds_scripting_count},
        {resp_cmds_cluster, resp_cmds_cluster_count},
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) total += tables[i].n;
    ra->cmds = xcalloc(total, sizeof(*ra->cmds));
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
        for (size_t k = 0; k < tables[i].n; k++) {
            const resp_cmd *cmd = &tables[i].t[k];
            size_t len = strlen(cmd->name);
            if (len > ra->max_name_len) ra->max_name_len = len;
            uint32_t h = resp__hash_name(cmd->name, len) & (RESP_HASH_SLOTS - 1);
            while (ra->slots[h]) h = (h + 1) & (RESP_HASH_SLOTS - 1);
            ra->cmds[ra->ncmds] = cmd;
            ra->slots[h] = (uint16_t)(++ra->ncmds);
        }
}

/* ---- metrics ---------------------------------------------------------------- */

/* Created on first use, so /metrics lists only what happened; after that
 * an update is a pointer dereference. */
static metrics_counter *resp__counter(resp_api *ra, size_t idx, int outcome)
{
    metrics_counter **slot = &ra->m_cmd[idx][outcome];
    if (!*slot) {
        char labels[128];
        snprintf(labels, sizeof(labels), "command=\"%s\",outcome=\"%s\"",
                 idx < ra->ncmds ? ra->cmds[idx]->name : "unknown", resp__outcome_names[outcome]);
        *slot = metrics_counter_get("cairn_resp_commands_total",
                                    "Redis protocol commands by command and outcome", labels);
    }
    return *slot;
}

static metrics_histogram *resp__histogram(resp_api *ra, size_t idx)
{
    if (!ra->m_latency[idx]) {
        char labels[96];
        snprintf(labels, sizeof(labels), "command=\"%s\"",
                 idx < ra->ncmds ? ra->cmds[idx]->name : "unknown");
        ra->m_latency[idx] = metrics_histogram_get("cairn_resp_command_duration_seconds",
                                                   "Redis protocol command latency", labels);
    }
    return ra->m_latency[idx];
}

resp_api *resp_api_create(api *a, uv_loop_t *loop)
{
    resp_api *ra = xcalloc(1, sizeof(*ra));
    ra->a = a;
    size_t max_bulk = a->cfg->max_value_bytes > a->cfg->max_key_bytes ? a->cfg->max_value_bytes
                                                                      : a->cfg->max_key_bytes;
    ra->limits = (resp_limits){.max_args = RESP_MAX_ARGS,
                               .max_bulk_bytes = max_bulk + RESP_BULK_MARGIN,
                               .max_inline_bytes = RESP_MAX_INLINE};
    ra->max_pending =
        a->cfg->max_inflight < RESP_MAX_PENDING ? (uint32_t)a->cfg->max_inflight : RESP_MAX_PENDING;
    if (ra->max_pending == 0) ra->max_pending = 1;
    ra->max_query_bytes = 4 * ra->limits.max_bulk_bytes;
    if (ra->max_query_bytes < RESP_MIN_QUERY_BYTES) ra->max_query_bytes = RESP_MIN_QUERY_BYTES;
    resp__index_commands(ra);
    ra->m_cmd = xcalloc(ra->ncmds + 1, sizeof(*ra->m_cmd));
    ra->m_latency = xcalloc(ra->ncmds + 1, sizeof(*ra->m_latency));
    ra->m_protocol_errors =
        metrics_counter_get("cairn_resp_protocol_errors_total",
                            "Redis protocol connections closed for malformed input", "");
    ra->m_reply_too_large = metrics_counter_get(
        "cairn_resp_replies_too_large_total",
        "Redis protocol replies over --max-pending-output, answered an error", "");
    resp_blocking_init(ra, loop);
    resp_tx_init(ra);
    resp_pubsub_init(ra, loop);
    resp_tracking_init(ra, loop);
    resp_wait_init(ra, loop);
    resp_script_init(ra, loop);
    resp_notify_init(ra);
    slowlog_init(&ra->slowlog);
    return ra;
}

void resp_api_destroy(resp_api *ra)
{
    if (!ra) return;
    resp_tx_close(ra);
    resp_script_close(ra);
    resp_wait_close(ra);
    resp_pubsub_close(ra);
    resp_tracking_close(ra);
    resp_notify_close(ra);
    resp_blocking_close(ra);
    slowlog_close(&ra->slowlog);
    free(ra->cmds);
    free(ra->m_cmd);
    free(ra->m_latency);
    free(ra);
}

/* ---- requests ---------------------------------------------------------------- */

static void resp__drain(resp_conn *rc);

static resp_req *resp__new_req(resp_conn *rc)
{
    resp_req *req = rc->spare;
    if (req) {
        rc->spare = req->next;
        rc->nspare--;
    } else {
        req = xcalloc(1, sizeof(*req));
        buf_init(&req->reply);
        buf_init(&req->own_data);
        replica_req_init(&req->rreq, req, NULL);
    }
    req->rc = rc;
    req->a = rc->ra->a;
    req->cmd = NULL;
    req->cmd_index = rc->ra->ncmds;
    req->on_write = NULL;
    req->on_ready = NULL;
    req->proto = rc->proto;
    req->outcome = RESP_OUTCOME_OK;
    req->done = req->waiting = req->close_after = req->keep_args = false;
    req->start_ns = resp__now_ns();
    req->exec_ns = req->end_ns = req->cont_ns = 0;
    req->in_proc = req->ran = false;
    req->argv = NULL;
    req->argc = 0;
    memset(req->n, 0, sizeof(req->n));
    req->opt = 0;
    req->block = NULL;
    req->exec = req->tx_exec = NULL;
    req->script = NULL;
    req->script_waits = false;
    req->wait = NULL;
    req->track = req->tracking_after = false;
    req->tx_step = 0;
    req->next = NULL;
    if (rc->tail)
        rc->tail->next = req;
    else
        rc->head = req;
    rc->tail = req;
    rc->pending++;
    rc->c->busy++;
    return req;
}

static void resp__free_req(resp_req *req)
{
    if (req->wait) resp_wait_forget(req);
    resp_tx_exec_free(req);
    replica_req_close(&req->rreq); /* cancels a pending replica request */
    buf_close(&req->reply);
    buf_close(&req->own_data);
    free(req->own_argv);
    free(req);
}

static void resp__recycle(resp_conn *rc, resp_req *req)
{
    if (req->rreq.op) replica_cancel(&req->rreq);
    resp_tx_exec_free(req);
    if (rc->nspare >= RESP_SPARE_REQS) {
        resp__free_req(req);
        return;
    }
    buf_reset(&req->reply);
    buf_shrink_if_empty(&req->reply, RESP_KEEP_BYTES);
    buf_reset(&req->own_data);
    buf_shrink_if_empty(&req->own_data, RESP_KEEP_BYTES);
    buf_reset(&req->rreq.value_buf);
    buf_shrink_if_empty(&req->rreq.value_buf, RESP_KEEP_BYTES);
    if (req->own_cap > RESP_KEEP_ARGS) {
        free(req->own_argv);
        req->own_argv = NULL;
        req->own_cap = 0;
    }
    req->next = rc->spare;
    rc->spare = req;
    rc->nspare++;
}

/* The request keeps its own copy of the arguments (it has to wait and the
 * parser's input will be consumed). */
static void resp__own_args(resp_req *req)
{
    size_t total = 0;
    for (size_t i = 0; i < req->argc; i++) total += req->argv[i].len;
    if (req->own_cap < req->argc) {
        free(req->own_argv);
        req->own_argv = xcalloc(req->argc, sizeof(*req->own_argv));
        req->own_cap = req->argc;
    }
    buf_reset(&req->own_data);
    buf_reserve(&req->own_data, total);
    size_t off = 0;
    for (size_t i = 0; i < req->argc; i++) {
        buf_append(&req->own_data, req->argv[i].ptr, req->argv[i].len);
        req->own_argv[i].len = req->argv[i].len;
        off += req->argv[i].len;
    }
    /* pointers only once the buffer has stopped moving */
    off = 0;
    for (size_t i = 0; i < req->argc; i++) {
        req->own_argv[i].ptr = req->own_data.data + off;
        off += req->own_argv[i].len;
    }
    req->argv = req->own_argv;
}

/* Where a command's arguments stop being shown in the slowlog: AUTH's and
 * HELLO's credentials are "(redacted)", as Redis redacts them. */
static size_t resp__redact_from(const resp_req *req)
{
    if (!req->cmd) return req->argc;
    if (strcmp(req->cmd->name, "auth") == 0) return 1;
    if (strcmp(req->cmd->name, "hello") == 0)
        for (size_t i = 1; i < req->argc; i++)
            if (resp_format_arg_is(&req->argv[i], "auth")) return i + 1;
    return req->argc;
}

static void resp__slowlog(resp_req *req)
{
    resp_conn *rc = req->rc;
    uint64_t us = req->exec_ns / 1000;
    if (!req->ran || !req->argc || !slowlog_wants(&rc->ra->slowlog, us)) return;
    slowlog_add(&rc->ra->slowlog, req->argv, req->argc, resp__redact_from(req), us,
                rc->dead ? "" : rc->c->peer, rc->name.data, rc->name.len);
}

static void resp__finish(resp_req *req)
{
    resp_api *ra = req->rc->ra;
    req->done = true;
    if (req->in_proc && !req->end_ns) {
        /* finished inside its handler (a script whose effects applied at
         * once): the handler's time ends here */
        req->end_ns = resp__now_ns();
        req->exec_ns += req->end_ns - req->start_ns;
    } else if (req->cont_ns) { /* finished inside its read continuation */
        req->exec_ns += resp__now_ns() - req->cont_ns;
        req->cont_ns = 0;
    }
    resp__slowlog(req);
    metrics_counter_add(resp__counter(ra, req->cmd_index, req->outcome), 1);
    uint64_t end = req->end_ns ? req->end_ns : resp__now_ns();
    metrics_histogram_observe(resp__histogram(ra, req->cmd_index),
                              (double)(end - req->start_ns) / 1e9);
}

static void resp__complete(resp_req *req)
{
    resp__finish(req);
    resp__drain(req->rc);
}

void resp_req_finish_async(resp_req *req)
{
    if (req->tx_exec) {
        resp_tx_sub_finished(req); /* a command inside EXEC: EXEC goes on */
        return;
    }
    resp__complete(req);
}

/* ---- replies used by every command ------------------------------------------ */

void resp_req_error(resp_req *req, const char *msg)
{
    resp_write_error(&req->reply, msg);
    if (req->outcome == RESP_OUTCOME_OK) req->outcome = RESP_OUTCOME_ERROR;
}

void resp_req_errorf(resp_req *req, const char *fmt, ...)
{
    buf tmp;
    buf_init(&tmp);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&tmp, fmt, ap);
    va_end(ap);
    resp_req_error(req, tmp.data ? tmp.data : "ERR");
    buf_close(&tmp);
}

void resp_req_error_syntax(resp_req *req)
{
    resp_req_error(req, "ERR syntax error");
}

void resp_req_error_not_integer(resp_req *req)
{
    resp_req_error(req, "ERR value is not an integer or out of range");
}

void resp_req_help(resp_req *req, const char *const *lines)
{
    size_t n = 0;
    while (lines[n]) n++;
    resp_write_array(&req->reply, n);
    for (size_t i = 0; i < n; i++) resp_write_simple(&req->reply, lines[i]);
}

void resp_req_error_arity(resp_req *req)
{
    resp_req_errorf(req, "ERR wrong number of arguments for '%s' command", req->cmd->name);
}

void resp_req_error_sub_arity(resp_req *req)
{
    char sub[64];
    size_t n = req->argv[1].len < sizeof(sub) ? req->argv[1].len : sizeof(sub) - 1;
    for (size_t i = 0; i < n; i++) {
        char c = req->argv[1].ptr[i];
        sub[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    resp_req_errorf(req, "ERR wrong number of arguments for '%s|%.*s' command", req->cmd->name,
                    (int)n, sub);
}

bool resp_req_check_value(resp_req *req, const resp_arg *v)
{
    uint64_t max = req->a->cfg->max_value_bytes;
    if (v->len <= max) return true;
    resp_req_errorf(req, "ERR value too large (max %llu bytes)", (unsigned long long)max);
    return false;
}

bool resp_req_scan_args(resp_req *req)
{
    if (!resp_req_cursor_arg(req, &req->argv[2], &req->n[0])) return false;
    req->n[1] = 10;
    req->n[2] = 0;
    for (size_t i = 3; i < req->argc; i += 2) {
        if (i + 1 >= req->argc) {
            resp_req_error_syntax(req);
            return false;
        }
        if (resp_format_arg_is(&req->argv[i], "match")) {
            req->n[2] = (int64_t)i + 1;
        } else if (resp_format_arg_is(&req->argv[i], "count")) {
            if (!resp_req_int_arg(req, &req->argv[i + 1], &req->n[1])) return false;
            if (req->n[1] < 1) {
                resp_req_error_syntax(req);
                return false;
            }
        } else {
            resp_req_error_syntax(req);
            return false;
        }
    }
    return true;
}

static uint64_t resp__rnd(void *ctx)
{
    (void)ctx;
    return ((uint64_t)random() << 31) ^ (uint64_t)random();
}

static int resp__cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

uint64_t *resp_random_positions(uint64_t len, int64_t count, size_t *n)
{
    uint64_t want = count < 0 ? (uint64_t) - (count + 1) + 1 : (uint64_t)count;
    if (!len || !want) {
        *n = 0;
        return NULL;
    }
    if (count > 0 && want > len) want = len;
    uint64_t *idx = xmalloc(want * sizeof(*idx));
    if (count > 0) {
        kv_set_sample(len, want, resp__rnd, NULL, idx);
    } else {
        for (uint64_t i = 0; i < want; i++) idx[i] = resp__rnd(NULL) % len;
        qsort(idx, want, sizeof(*idx), resp__cmp_u64);
    }
    *n = want;
    return idx;
}

bool resp_req_random_count(resp_req *req, const resp_arg *v, int64_t *count)
{
    if (!resp_req_int_arg(req, v, count)) return false;
    if (*count < -(int64_t)(INT64_MAX / 2)) { /* Redis bounds what a negative count may ask */
        resp_req_error(req, "ERR value is out of range");
        return false;
    }
    return true;
}

bool resp_scan_take(resp_scan *sc, kv_slice item)
{
    sc->visited++;
    if (sc->match && !glob_match(sc->match->ptr, sc->match->len, item.ptr, item.len, false))
        return false;
    resp_write_bulk(&sc->body, item.ptr, item.len);
    sc->found++;
    return true;
}

void resp_req_scan_reply(resp_req *req, const kv_entry *e, resp_scan_step step, size_t per_item)
{
    resp_scan sc = {.match = req->n[2] ? &req->argv[req->n[2]] : NULL};
    buf_init(&sc.body);
    uint64_t cursor = (uint64_t)req->n[0], count = (uint64_t)req->n[1];
    if (count > ((uint64_t)1 << 40)) count = (uint64_t)1 << 40; /* keeps count * 10 exact */
    if (!e) {
        cursor = 0;
    } else {
        uint64_t steps = 0;
        do {
            cursor = step(e, cursor, &sc);
            steps++;
        } while (cursor && sc.visited < count && steps < count * 10);
    }
    char num[24];
    int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)cursor);
    resp_write_array(&req->reply, 2);
    resp_write_bulk(&req->reply, num, (size_t)n);
    resp_write_array(&req->reply, per_item * sc.found);
    buf_append(&req->reply, sc.body.data, sc.body.len);
    buf_close(&sc.body);
}

kv_slice *resp_req_arg_slices(const resp_req *req, size_t first, size_t n, kv_slice small[16])
{
    kv_slice *args = n <= 16 ? small : xmalloc(n * sizeof(kv_slice));
    for (size_t i = 0; i < n; i++)
        args[i] = (kv_slice){req->argv[first + i].ptr, req->argv[first + i].len};
    return args;
}

void resp_req_propose_args(resp_req *req, size_t first, size_t n, int op, uint16_t flags, int64_t a,
                           int64_t b, resp_write_fn done)
{
    kv_slice small[16];
    kv_slice *args = resp_req_arg_slices(req, first, n, small);
    kv_command cmd = {
        .op = (uint8_t)op, .flags = flags, .a = a, .b = b, .nargs = (uint32_t)n, .args = args};
    resp_req_propose(req, &cmd, done);
    if (args != small) free(args);
}

void resp_reply_integer(resp_req *req, const kv_result *res)
{
    resp_write_integer(&req->reply, res->integer);
}

void resp_reply_ok(resp_req *req, const kv_result *res)
{
    (void)res;
    resp_req_ok(req);
}

bool resp_req_mpop_args(resp_req *req, size_t at, const char *one, const char *zero, size_t *first,
                        size_t *n, int *side, int64_t *count)
{
    int64_t numkeys;
    if (!strconv_parse_i64(req->argv[at].ptr, req->argv[at].len, &numkeys) || numkeys <= 0) {
        resp_req_error(req, "ERR numkeys should be greater than 0");
        return false;
    }
    /* numkeys past the arguments is a syntax error in Redis' LMPOP */
    if ((uint64_t)numkeys >= req->argc - at - 1) {
        resp_req_error_syntax(req);
        return false;
    }
    *first = at + 1;
    *n = (size_t)numkeys;
    size_t i = at + 1 + (size_t)numkeys;
    *side = resp_format_arg_is(&req->argv[i], one)    ? 1
            : resp_format_arg_is(&req->argv[i], zero) ? 0
                                                      : -1;
    if (*side < 0) {
        resp_req_error_syntax(req);
        return false;
    }
    *count = 1;
    bool counted = false;
    for (i++; i < req->argc; i++) {
        if (!counted && resp_format_arg_is(&req->argv[i], "count") && i + 1 < req->argc) {
            if (!strconv_parse_i64(req->argv[i + 1].ptr, req->argv[i + 1].len, count) ||
                *count <= 0) {
                resp_req_error(req, "ERR count should be greater than 0");
                return false;
            }
            counted = true;
            i++;
        } else {
            resp_req_error_syntax(req);
            return false;
        }
    }
    return true;
}

bool resp_req_int_arg(resp_req *req, const resp_arg *v, int64_t *out)
{
    if (strconv_parse_i64(v->ptr, v->len, out)) return true;
    resp_req_error_not_integer(req);
    return false;
}

static void resp__replica_error(resp_req *req, int st)
{
    req->outcome = RESP_OUTCOME_UNAVAILABLE;
    switch (st) {
    case REPLICA_ERR_BUSY:
        req->outcome = RESP_OUTCOME_BUSY;
        resp_write_error(&req->reply, "BUSY too many requests in flight, retry later");
        break;
    case REPLICA_ERR_INTERNAL:
        resp_write_error(&req->reply, "ERR internal error");
        break;
    case REPLICA_ERR_STORAGE:
    case REPLICA_ERR_NOSPACE:
        /* Redis answers MISCONF when it cannot write its AOF */
        resp_write_errorf(&req->reply, "MISCONF %s", replica_status_text(st));
        break;
    default:
        resp_write_errorf(&req->reply, "CLUSTERDOWN %s", replica_status_text(st));
        break;
    }
}

void resp_req_replica_error(resp_req *req, int status)
{
    resp__replica_error(req, status);
}

/* Errors the state machine reports the same way for every command. */
static bool resp__kv_error(resp_req *req, const kv_result *res)
{
    const char *msg;
    switch (res->status) {
    case KV_OK:
    case KV_ERR_PRECONDITION:
        return false;
    case KV_ERR_NOT_INTEGER:
        msg = strcmp(req->cmd->group, "hash") == 0 ? "ERR hash value is not an integer"
                                                   : "ERR value is not an integer or out of range";
        break;
    case KV_ERR_OVERFLOW:
        msg = "ERR increment or decrement would overflow";
        break;
    case KV_ERR_NOT_FLOAT:
        msg = strcmp(req->cmd->group, "hash") == 0 ? "ERR hash value is not a float"
                                                   : "ERR value is not a valid float";
        break;
    case KV_ERR_OUT_OF_RANGE:
        msg = "ERR index out of range";
        break;
    case KV_ERR_WRONGTYPE:
        msg = "WRONGTYPE Operation against a key holding the wrong kind of value";
        break;
    case KV_ERR_NAN_OR_INF:
        msg = strcmp(req->cmd->group, "sortedset") == 0
                  ? "ERR resulting score is not a number (NaN)"
                  : "ERR increment would produce NaN or Infinity";
        break;
    case KV_ERR_NO_SUCH_KEY:
        msg = strcmp(req->cmd->name, "xgroup") == 0
                  ? "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE "
                    "you may want to use the MKSTREAM option to create an empty stream "
                    "automatically."
                  : "ERR no such key";
        break;
    case KV_ERR_TOO_LARGE:
        msg = strcmp(req->cmd->name, "function") == 0
                  ? "ERR too many function libraries (at most 1024): delete one first"
                  : "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
        break;
    case KV_ERR_NOT_HLL:
        msg = "WRONGTYPE Key is not a valid HyperLogLog string value.";
        break;
    case KV_ERR_HLL_CORRUPT:
        msg = "INVALIDOBJ Corrupted HLL object detected";
        break;
    case KV_ERR_NO_MEMBER:
        msg = "ERR could not decode requested zset member";
        break;
    case KV_ERR_NOT_FLOAT_SORT:
        msg = "ERR One or more scores can't be converted into double";
        break;
    case KV_ERR_DUMP_FOOTER:
        msg = "ERR DUMP payload version or checksum are wrong";
        break;
    case KV_ERR_DUMP_DATA:
        msg = "ERR Bad data format";
        break;
    case KV_ERR_STREAM_ID_SMALL:
        msg = strcmp(req->cmd->name, "xsetid") == 0
                  ? "ERR The ID specified in XSETID is smaller than the target stream top item"
                  : "ERR The ID specified in XADD is equal or smaller than the target stream top "
                    "item";
        break;
    case KV_ERR_STREAM_ID_ZERO:
        msg = "ERR The ID specified in XADD must be greater than 0-0";
        break;
    case KV_ERR_LIBRARY_EXISTS:
        resp_req_errorf(req, "ERR Library '%.*s' already exists", (int)res->value_len,
                        res->value ? res->value : "");
        return true;
    case KV_ERR_FUNCTION_EXISTS:
        resp_req_errorf(req, "ERR Function %.*s already exists", (int)res->value_len,
                        res->value ? res->value : "");
        return true;
    case KV_ERR_NO_LIBRARY:
        msg = "ERR Library not found";
        break;
    case KV_ERR_NOGROUP:
        resp_stream_group_error(req, res);
        return true;
    case KV_ERR_BUSYGROUP:
        msg = "BUSYGROUP Consumer Group name already exists";
        break;
    case KV_ERR_ENTRIES_ADDED:
        msg = "ERR The entries_added specified in XSETID is smaller than the target stream length";
        break;
    default:
        msg = "ERR internal error: the state machine refused the command";
        break;
    }
    resp_req_error(req, msg);
    return true;
}

/* ---- writes and reads ----------------------------------------------------------- */

void resp_req_answer_write(resp_req *req, int status, const kv_result *res, resp_write_fn done)
{
    if (status != REPLICA_OK)
        resp__replica_error(req, status);
    else if (!resp__kv_error(req, res))
        done(req, res);
}

static void resp__write_cb(replica_req *rr, int status)
{
    resp_req *req = rr->data;
    req->waiting = false;
    /* the apply ran inside the handler when it completed at once */
    if (!req->in_proc) req->exec_ns += rr->result.apply_ns;
    resp_req_answer_write(req, status, &rr->result, req->on_write);
    if (req->waiting) return; /* the continuation waits again (EXEC through a follower) */
    resp__complete(req);
}

/* Writes through RESP count as accesses for LRU eviction. Only possible
 * when the write completed at once (persistence none, the only mode that
 * evicts), while the command's arguments are still at hand. */
static void resp__touch_written(resp_req *req, const kv_command *cmd)
{
    if (cmd->op == KV_OP_PUBLISH || cmd->op == KV_OP_EXEC) return; /* no key, or their steps' */
    kv_keyspace *ks = &req->a->store->ks;
    uint32_t clock = memory_lru_clock();
    /* key positions: every other argument of MSET, the target of RENAME,
     * else the first argument */
    uint32_t first = cmd->op == KV_OP_RENAME ? 1 : 0;
    uint32_t step = cmd->op == KV_OP_MSET ? 2 : cmd->nargs;
    for (uint32_t i = first; i < cmd->nargs; i += step) {
        kv_entry *e = kv_keyspace_find(ks, cmd->args[i].ptr, cmd->args[i].len);
        if (e) memory_touch(e, clock);
    }
}

void resp_req_propose(resp_req *req, kv_command *cmd, resp_write_fn done)
{
    if (req->tx_exec) {
        resp_tx_propose(req, cmd, done);
        return;
    }
    if (req->script) {
        resp_script_propose(req, cmd, done);
        return;
    }
    api *a = req->a;
    if ((req->cmd->flags & RESP_CMD_DENYOOM) && memory_admit_write(a) != MEMORY_OK) {
        req->outcome = RESP_OUTCOME_OOM;
        resp_write_error(&req->reply, "OOM command not allowed when used memory > 'maxmemory'.");
        return;
    }
    if (!cmd->now_ms) cmd->now_ms = replica_now_ms();
    req->on_write = done;
    req->rreq.cb = resp__write_cb;
    req->waiting = true;
    int st = replica_propose(a->replica, &req->rreq, cmd);
    if (st != REPLICA_OK) {
        req->waiting = false;
        resp__replica_error(req, st);
        return;
    }
    if (req->rc->tracking) resp_tracking_proposed(req->rc, cmd);
    if (req->done && memory_tracks_lru(a)) resp__touch_written(req, cmd);
}

static void resp__read_cb(replica_req *rr, int status)
{
    resp_req *req = rr->data;
    req->waiting = false;
    if (status != REPLICA_OK) {
        resp__replica_error(req, status);
    } else {
        kv_store *store = req->a->store;
        uint64_t hidden = store->hidden_expired;
        size_t mark = req->reply.len;
        /* answered inside its handler (a read that completed at once),
         * the handler's own timing covers it */
        req->cont_ns = req->in_proc ? 0 : resp__now_ns();
        req->on_ready(req);
        if (req->track) resp_tracking_read(req);
        if (req->cont_ns) {
            req->exec_ns += resp__now_ns() - req->cont_ns;
            req->cont_ns = 0;
        }
        /* a script whose effects applied at once completed inside */
        if (req->done) return;
        if (req->waiting) return; /* blocked (XREAD BLOCK): its answer comes later */
        if (rr->read_unsettled && store->hidden_expired != hidden) {
            /* the answer hid an expired entry while earlier writes were in
             * flight: answer again once they have been applied */
            req->reply.len = mark;
            req->waiting = true;
            int st = replica_read_settle(req->a->replica, rr);
            if (st == REPLICA_OK) return;
            req->waiting = false;
            resp__replica_error(req, st);
        }
    }
    resp__complete(req);
}

void resp_req_read(resp_req *req, resp_proc ready)
{
    if (req->tx_exec) {
        resp_tx_read(req, ready);
        return;
    }
    if (req->script) {
        resp_script_read(req, ready);
        return;
    }
    req->on_ready = ready;
    req->rreq.cb = resp__read_cb;
    req->waiting = true;
    int consistency = req->rc->readonly ? REPLICA_READ_STALE : REPLICA_READ_LINEARIZABLE;
    int st = replica_read(req->a->replica, &req->rreq, consistency, 0);
    if (st != REPLICA_OK) {
        req->waiting = false;
        resp__replica_error(req, st);
    }
}

kv_entry *resp_req_lookup_typed(resp_req *req, const resp_arg *key, int type, bool *wrong)
{
    kv_entry *e = resp_req_lookup(req, key);
    *wrong = e && e->type != type;
    if (*wrong) resp_req_wrongtype(req);
    return *wrong ? NULL : e;
}

bool resp_req_cursor_arg(resp_req *req, const resp_arg *v, int64_t *out)
{
    uint64_t cursor;
    if (strconv_parse_u64(v->ptr, v->len, &cursor)) {
        *out = (int64_t)cursor;
        return true;
    }
    if (strconv_parse_i64(v->ptr, v->len, out)) return true;
    resp_req_error(req, "ERR invalid cursor");
    return false;
}

kv_entry *resp_req_lookup(resp_req *req, const resp_arg *key)
{
    resp_api *ra = req->rc->ra;
    kv_entry *e = kv_store_get(req->a->store, key->ptr, key->len, replica_req_read_ms(&req->rreq));
    /* tracking: keys of commands that declare none (XREAD's); the declared
     * ones are remembered once the read ran (resp_tracking_read) */
    if (req->track && (req->cmd->flags & RESP_CMD_READONLY) && req->cmd->first_key <= 0 &&
        !(req->cmd->flags & RESP_CMD_NUMKEYS))
        resp_tracking_remember(req, key);
    if (e) {
        ra->keyspace_hits++;
        memory_touch(e, memory_lru_clock());
    } else {
        ra->keyspace_misses++;
    }
    return e;
}

/* ---- dispatch -------------------------------------------------------------------- */

/* Keys over --max-key-bytes, checked for every key position the command
 * table declares. */
bool resp_cmd_keys(const resp_cmd *cmd, const resp_arg *argv, size_t argc, long *first, long *last)
{
    if (cmd->flags & RESP_CMD_NUMKEYS) {
        size_t at = (size_t)cmd->first_key;
        int64_t numkeys;
        if (argc <= at || !strconv_parse_i64(argv[at].ptr, argv[at].len, &numkeys) ||
            numkeys <= 0 || (uint64_t)numkeys > argc - at - 1)
            return false;
        *first = (long)at + 1;
        *last = (long)at + (long)numkeys;
        return true;
    }
    if (cmd->first_key <= 0) return false;
    *first = cmd->first_key;
    *last = cmd->last_key < 0 ? (long)argc + cmd->last_key : cmd->last_key;
    if (*last >= (long)argc) *last = (long)argc - 1;
    return true;
}

static bool resp__check_keys(resp_req *req)
{
    const resp_cmd *cmd = req->cmd;
    long first, last;
    if (!resp_cmd_keys(cmd, req->argv, req->argc, &first, &last)) return true;
    uint64_t max = req->a->cfg->max_key_bytes;
    for (long i = first; i <= last; i += cmd->key_step) {
        if (req->argv[i].len > max) {
            resp_req_errorf(req, "ERR key too large (max %llu bytes)", (unsigned long long)max);
            return false;
        }
    }
    return true;
}

/* Whether nothing after cmd may start until it answered: a read, a write
 * that may answer as a read (it must see the writes before it), or a
 * command that blocks (as a blocked Redis client does). */
static bool resp__ordered_as_read(const resp_cmd *cmd, const resp_arg *argv, size_t argc)
{
    if (!(cmd->flags & RESP_CMD_WRITE) || (cmd->flags & RESP_CMD_MAY_READ)) return true;
    if (!(cmd->flags & RESP_CMD_BLOCKING)) return false;
    if (!(cmd->flags & RESP_CMD_BLOCK_OPTION)) return true;
    /* the options before STREAMS (XREADGROUP's after GROUP group consumer:
     * names that read BLOCK are not options) */
    for (size_t i = 4; i < argc && !resp_format_arg_is(&argv[i], "streams"); i++) {
        if (resp_format_arg_is(&argv[i], "block")) return true;
        if (resp_format_arg_is(&argv[i], "count")) i++;
    }
    return false;
}

static void resp__dispatch(resp_conn *rc, size_t idx, const resp_arg *argv, size_t argc)
{
    resp_api *ra = rc->ra;
    resp_req *req = resp__new_req(rc);
    req->argv = argv;
    req->argc = argc;
    req->cmd_index = idx;
    ra->total_commands++;
    rc->last_cmd_ms = net_now_ms();
    if (ra->a->stopping) {
        /* draining: finish what is in flight, take nothing new */
        resp_write_error(&req->reply, "CLUSTERDOWN node is shutting down");
        req->outcome = RESP_OUTCOME_UNAVAILABLE;
        req->close_after = true;
        rc->failed = true;
        net_conn_pause(rc->c);
    } else if (!resp_auth_rate(req)) {
        rc->last_cmd = idx == ra->ncmds ? "unknown" : ra->cmds[idx]->name;
        resp_tx_flag(req);
    } else if (idx == ra->ncmds) {
        buf msg;
        buf_init(&msg);
        resp_format_unknown_command(&msg, argv, argc);
        resp_req_error(req, msg.data);
        buf_close(&msg);
        rc->last_cmd = "unknown";
        resp_tx_flag(req);
    } else {
        const resp_cmd *cmd = ra->cmds[idx];
        req->cmd = cmd;
        rc->last_cmd = cmd->name;
        bool queues = resp_tx_queues(rc, cmd);
        if (rc->tracking) req->track = resp_tracking_take(rc, cmd, queues);
        if (!queues && resp__ordered_as_read(cmd, argv, argc)) rc->pending_read = true;
        if ((cmd->arity > 0 && argc != (size_t)cmd->arity) ||
            (cmd->arity < 0 && argc < (size_t)-cmd->arity)) {
            resp_req_error_arity(req);
            resp_tx_flag(req);
        } else if (!resp_auth_admit(req) || !resp__check_keys(req)) {
            resp_tx_flag(req);
        } else if (rc->proto == 2 && !(cmd->flags & RESP_CMD_PUBSUB_CONTEXT) &&
                   resp_pubsub_count(rc) > 0) {
            resp_req_errorf(req,
                            "ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
                            "PING / QUIT / RESET are allowed in this context",
                            cmd->name);
        } else if (resp_script_refuses(req)) {
            resp_tx_flag(req);
        } else if (queues) {
            resp_tx_queue(req);
        } else {
            /* clock reads are a visible share of a small command's CPU on
             * some machines: the request's start is the handler's, and the
             * handler's end its finish when it finishes at once */
            req->in_proc = req->ran = true;
            cmd->proc(req);
            req->in_proc = false;
            if (!req->done) {
                req->end_ns = resp__now_ns();
                req->exec_ns += req->end_ns - req->start_ns;
            }
        }
    }
    if (req->waiting) {
        req->end_ns = 0; /* it finishes later */
        /* a write keeps its arguments only for its continuation, or for
         * the slowlog should its apply be slow */
        if (req->on_ready || req->keep_args || ra->slowlog.slower_than >= 0) {
            resp__own_args(req);
        } else {
            req->argv = NULL; /* write continuations work from the kv_result only */
            req->argc = 0;
        }
    } else if (!req->done) {
        resp__finish(req);
    }
}

/* ---- the connection's queue ---------------------------------------------------- */

/* Ends a nested process/drain call; true when the connection was freed. */
static void resp__free_conn(resp_conn *rc);

static bool resp__leave(resp_conn *rc)
{
    if (--rc->depth == 0 && rc->dead) {
        resp__free_conn(rc);
        return true;
    }
    return false;
}

void resp_conn_hold(resp_conn *rc)
{
    rc->depth++;
}

void resp_conn_release(resp_conn *rc)
{
    resp__leave(rc);
}

/* Write every finished reply at the head of the queue, in order. */
static void resp__flush_replies(resp_conn *rc)
{
    net_conn *c = rc->c;
    while (rc->head && rc->head->done && !rc->dead) {
        resp_req *req = rc->head;
        rc->head = req->next;
        if (!rc->head) rc->tail = NULL;
        rc->pending--;
        c->busy--;
        bool close = req->close_after;
        uint64_t limit = rc->ra->a->cfg->max_pending_output;
        if (req->reply.len > limit) {
            /* one reply that could never be sent within the limit: a clear
             * error instead, and the connection stays (Redis has no limit
             * for normal clients; cairn's bounds every client's output) */
            size_t n = req->reply.len;
            buf_reset(&req->reply);
            resp_write_errorf(&req->reply,
                              "ERR reply too large: %zu bytes over the output limit of %llu "
                              "(--max-pending-output); ask for less at a time (a range, SCAN)",
                              n, (unsigned long long)limit);
            metrics_counter_add(rc->ra->m_reply_too_large, 1);
        }
        net_conn_write(c, req->reply.data, req->reply.len); /* may close the connection */
        if (req->tracking_after) resp_tracking_after_reply(rc);
        resp__recycle(rc, req);
        if (close) {
            if (!c->closing) net_conn_close_after_write(c);
            break;
        }
    }
    if (!rc->head) rc->pending_read = false;
}

static void resp__drain(resp_conn *rc)
{
    if (rc->depth) return; /* the parse loop or drain up the stack writes */
    net_conn *c = rc->c;
    rc->depth++;
    resp__flush_replies(rc);
    if (!rc->dead) net_conn_flush(c);
    bool resume = !rc->dead && rc->stalled && rc->pending <= rc->resume_at && !c->closing;
    if (resume) rc->stalled = false;
    if (resp__leave(rc)) return;
    if (resume) net_conn_resume(c); /* parses what waited, via on_data */
}

/* Answer an unparseable stream, after what is queued, and close. */
static void resp__protocol_error(resp_conn *rc, const char *msg)
{
    resp_api *ra = rc->ra;
    metrics_counter_add(ra->m_protocol_errors, 1);
    LOG_INFO("closing connection after a protocol error", LF_I("conn", rc->c->id),
             LF_S("peer", rc->c->peer), LF_S("error", msg));
    rc->failed = true;
    resp_req *req = resp__new_req(rc);
    resp_write_errorf(&req->reply, "ERR %s", msg);
    req->close_after = true;
    req->done = true;
    net_conn_pause(rc->c);
}

static void resp__process(resp_conn *rc)
{
    net_conn *c = rc->c;
    resp_api *ra = rc->ra;
    rc->depth++;
    while (!c->closing && !c->close_after_write && !rc->failed && !rc->dead && !rc->stalled) {
        size_t len = buf_unread_len(&c->in);
        if (len == 0) break;
        size_t consumed = 0;
        int rv = resp_parse(&rc->parser, buf_unread(&c->in), len, &ra->limits, &consumed);
        if (rv < 0) {
            resp__protocol_error(rc, rc->parser.err);
            break;
        }
        if (rv == 0) {
            buf_consume(&c->in, consumed);
            if (buf_unread_len(&c->in) > ra->max_query_bytes)
                resp__protocol_error(rc, "Protocol error: request too large");
            break;
        }
        const resp_parser *p = &rc->parser;
        size_t idx = resp__find(ra, p->argv[0].ptr, p->argv[0].len);
        /* a blocking command is ordered like a read: nothing after it
         * starts until it answers, as on a blocked Redis client; so is a
         * write that may answer as a read, which must see the writes
         * before it */
        bool is_write = idx < ra->ncmds && !resp__ordered_as_read(ra->cmds[idx], p->argv, p->argc);
        bool observes = idx < ra->ncmds && !is_write;
        bool ordered = rc->pending && (observes || rc->pending_read);
        if (ordered || rc->pending >= ra->max_pending) {
            /* Left in the input and parsed again when the queue has
             * drained: completely for ordering, half for the cap. */
            rc->stalled = true;
            rc->resume_at = ordered ? 0 : ra->max_pending / 2;
            net_conn_pause(c);
            break;
        }
        resp__dispatch(rc, idx, p->argv, p->argc);
        buf_consume(&c->in, consumed);
        resp__flush_replies(rc);
    }
    if (!rc->dead) resp__flush_replies(rc); /* a protocol error's reply */
    resp__leave(rc);
}

/* ---- net_proto callbacks ---------------------------------------------------------- */

static void resp__on_open(net_conn *c)
{
    resp_api *ra = c->proto_ctx;
    resp_conn *rc = xcalloc(1, sizeof(*rc));
    rc->c = c;
    rc->ra = ra;
    rc->proto = 2;
    resp_parser_init(&rc->parser);
    buf_init(&rc->name);
    buf_init(&rc->lib_name);
    buf_init(&rc->lib_ver);
    rc->created_ms = rc->last_cmd_ms = net_now_ms();
    rc->last_cmd = "NULL";
    rc->next = ra->conns;
    if (ra->conns) ra->conns->prev = rc;
    ra->conns = rc;
    ra->n_conns++;
    ra->total_connections++;
    c->proto_data = rc;
}

static void resp__on_data(net_conn *c)
{
    resp_conn *rc = c->proto_data;
    if (!rc || rc->failed || rc->stalled) return;
    resp__process(rc);
}

static void resp__free_conn(resp_conn *rc)
{
    while (rc->head) {
        resp_req *req = rc->head;
        rc->head = req->next;
        resp__free_req(req);
    }
    while (rc->spare) {
        resp_req *req = rc->spare;
        rc->spare = req->next;
        resp__free_req(req);
    }
    resp_parser_close(&rc->parser);
    resp_tx_conn_free(rc);
    resp_pubsub_conn_free(rc);
    resp_tracking_conn_free(rc);
    buf_close(&rc->name);
    buf_close(&rc->lib_name);
    buf_close(&rc->lib_ver);
    free(rc);
}

static void resp__on_close(net_conn *c)
{
    resp_conn *rc = c->proto_data;
    if (!rc) return;
    c->proto_data = NULL;
    resp_api *ra = rc->ra;
    if (rc->prev)
        rc->prev->next = rc->next;
    else
        ra->conns = rc->next;
    if (rc->next) rc->next->prev = rc->prev;
    ra->n_conns--;
    /* No callback may reach this connection any more. */
    for (resp_req *req = rc->head; req; req = req->next) {
        if (req->rreq.op) replica_cancel(&req->rreq);
        if (req->block) resp_block_detach(req);
        resp_script_detach(req);
    }
    auth_wait_cancel(rc->auth_wait);
    resp_pubsub_conn_free(rc); /* no message may reach it any more */
    resp_tracking_conn_free(rc);
    if (rc->depth > 0) {
        rc->dead = true; /* freed when the call up the stack returns */
        return;
    }
    resp__free_conn(rc);
}

static void resp__on_reject(net_conn *c)
{
    static const char msg[] = "-ERR max number of clients reached\r\n";
    net_conn_write(c, msg, sizeof(msg) - 1);
}

const net_proto resp_api_proto = {
    .name = "resp",
    .on_open = resp__on_open,
    .on_data = resp__on_data,
    .on_close = resp__on_close,
    .on_reject = resp__on_reject,
};
