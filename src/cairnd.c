/* cairnd: one node of a cairn cluster, or a whole single-node store.
 *
 * Wires the layers together (net -> api -> replica -> kv), runs the loop,
 * and shuts down gracefully on SIGTERM/SIGINT: stop accepting, let
 * in-flight requests finish (bounded), hand leadership away, close the
 * log. A second signal exits at once; the log is fsync'd per entry, so
 * that is as safe as a crash. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "api/api.h"
#include "api/auth.h"
#include "api/http_api.h"
#include "api/memory.h"
#include "api/resp_api.h"
#include "api/script_lua.h"
#include "kv/functions.h"
#include "kv/keyspace.h"
#include "kv/rdb.h"
#include "kv/store.h"
#include "net/server.h"
#include "net/tls.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "replica/join.h"
#include "replica/replica.h"
#include "replica/seed.h"
#include "txlog/replay.h"
#include "txlog/txlog.h"
#include "util/config.h"
#include "util/buf.h"
#include "util/alloc.h"
#include "util/hash.h"
#include "util/ratelimit.h"
#include "util/sdnotify.h"

#define DRAIN_LIMIT_MS 5000
#define DRAIN_POLL_MS 20
#define LAG_PROBE_MS 10
#define RATE_LIMIT_CLIENTS 100000 /* buckets kept (docs/security.md) */
#define TXLOG_ROLE_MS 100         /* how often the txlog learns who leads */

typedef struct daemon {
    uv_loop_t *loop;
    cairn_config cfg;
    kv_store store;
    replica *replica;
    net_server *server;
    api api;
    resp_api *resp;
    join *join;
    uv_signal_t sigterm, sigint, sigpipe, sighup;
    tls_ctx *tls;
    auth *auth;
    uv_timer_t drain;
    uv_timer_t lag_probe;
    txlog *txlog; /* --txlog-postgres, or NULL */
    sdnotify sd;  /* systemd Type=notify, when run by systemd */
    uv_timer_t txlog_role;
    uint64_t lag_last_ns;
    double lag_max;
    metrics_histogram *m_lag;
    int64_t drain_deadline;
    int signals;
    int exit_code;
} daemon_t;

static double g_keys(void *c)
{
    return (double)kv_keyspace_count(&((kv_store *)c)->ks);
}
static double g_revision(void *c)
{
    return (double)((kv_store *)c)->revision;
}
static double g_data_bytes(void *c)
{
    return (double)((kv_store *)c)->ks.mem_bytes;
}
static double g_expired(void *c)
{
    return (double)((kv_store *)c)->expired_keys;
}
static double g_rss(void *c)
{
    (void)c;
    return (double)api_rss_bytes();
}

static double g_lag_max(void *c)
{
    return ((daemon_t *)c)->lag_max;
}

/* Event-loop lag: how late a 10 ms timer fires. Any stall of the loop (a
 * fork, a long apply, a big snapshot load) shows up here, measured where
 * it happens rather than by a client competing for the same CPUs. */
static void daemon__lag_probe(uv_timer_t *t)
{
    daemon_t *d = t->data;
    uint64_t now = uv_hrtime();
    if (d->lag_last_ns) {
        double lag = (double)(now - d->lag_last_ns) / 1e9 - LAG_PROBE_MS / 1000.0;
        if (lag < 0) lag = 0;
        metrics_histogram_observe(d->m_lag, lag);
        if (lag > d->lag_max) d->lag_max = lag;
        if (lag > 0.1) LOG_WARN("event loop stalled", LF_I("ms", (long long)(lag * 1000)));
    }
    d->lag_last_ns = now;
}

/* Only the leader (or a single node) ships the transaction log. */
static void daemon__txlog_role(uv_timer_t *t)
{
    daemon_t *d = t->data;
    replica_status_info st;
    replica_get_status(d->replica, &st);
    txlog_set_leader(d->txlog,
                     strcmp(st.role, "leader") == 0 || strcmp(st.role, "standalone") == 0);
    txlog_tick(d->txlog, replica_now_ms());
}

static void daemon__register_metrics(daemon_t *d)
{
    d->m_lag = metrics_histogram_get("cairn_loop_lag_seconds",
                                     "How late a 10 ms loop timer fires (loop stalls)", "");
    metrics_gauge_register("cairn_loop_lag_max_seconds", "Longest loop stall seen", "", g_lag_max,
                           d);
    metrics_gauge_register("cairn_keys", "Keys in the store (including expired, not yet reclaimed)",
                           "", g_keys, &d->store);
    metrics_gauge_register("cairn_revision", "Store revision", "", g_revision, &d->store);
    metrics_gauge_register("cairn_data_bytes", "Estimated heap bytes held by keys and values", "",
                           g_data_bytes, &d->store);
    metrics_gauge_register("cairn_resident_memory_bytes", "Resident set size", "", g_rss, NULL);
    metrics_counter_fn_register("cairn_expired_keys_total", "Keys reclaimed after expiring", "",
                                g_expired, &d->store);
}

static void daemon__close_handles(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void daemon__replica_closed(void *ctx)
{
    daemon_t *d = ctx;
    LOG_INFO("stopped", LF_I("id", d->cfg.id));
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sigpipe, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
    uv_close((uv_handle_t *)&d->drain, NULL);
    uv_close((uv_handle_t *)&d->lag_probe, NULL);
    if (d->txlog) uv_close((uv_handle_t *)&d->txlog_role, NULL);
}

static void daemon__server_closed(void *ctx)
{
    daemon_t *d = ctx;
    join_stop(d->join);
    d->join = NULL;
    replica_close(d->replica, daemon__replica_closed, d);
}

static void daemon__stepped_down(void *ctx)
{
    daemon_t *d = ctx;
    net_server_close(d->server, daemon__server_closed, d);
}

static void daemon__drain_tick(uv_timer_t *t)
{
    daemon_t *d = t->data;
    bool idle = net_server_busy_conns(d->server) == 0;
    if (!idle && uv_now(d->loop) < (uint64_t)d->drain_deadline) return;
    uv_timer_stop(t);
    if (!idle)
        LOG_WARN("in-flight requests did not finish in time; closing anyway",
                 LF_I("ms", DRAIN_LIMIT_MS));
    replica_step_down(d->replica, daemon__stepped_down, d);
}

static void daemon__on_signal(uv_signal_t *s, int signum)
{
    daemon_t *d = s->data;
    if (signum == SIGPIPE) return;
    if (++d->signals > 1) {
        /* second signal: leave now; the log is durable entry by entry */
        static const char msg[] = "level=warn msg=\"second signal: exiting at once\"\n";
        ssize_t rv = write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)rv;
        _exit(1);
    }
    LOG_INFO("shutting down", LF_S("signal", signum == SIGTERM ? "SIGTERM" : "SIGINT"));
    sdnotify_stopping(&d->sd);
    net_server_stop_listening(d->server);
    d->api.stopping = true;
    replica_begin_shutdown(d->replica);
    d->drain_deadline = (int64_t)uv_now(d->loop) + DRAIN_LIMIT_MS;
    uv_timer_start(&d->drain, daemon__drain_tick, 0, DRAIN_POLL_MS);
}

/* SIGHUP: re-read what can change without a restart. Open connections
 * keep the TLS context they started with. */
static void daemon__on_sighup(uv_signal_t *s, int signum)
{
    daemon_t *d = s->data;
    (void)signum;
    if (d->auth) {
        char err[1300];
        if (auth_reload(d->auth, err, sizeof(err)) == 0)
            LOG_INFO("users reloaded", LF_S("file", d->cfg.users_file),
                     LF_I("users", auth_user_count(d->auth)));
        else
            LOG_ERROR("users file reload failed; keeping the old users", LF_S("error", err));
    }
    if (d->tls) {
        char err[512];
        if (tls_ctx_reload(d->tls, err, sizeof(err)) == 0)
            LOG_INFO("TLS certificate reloaded", LF_S("cert", d->cfg.tls_cert));
        else
            LOG_ERROR("TLS reload failed; keeping the old certificate", LF_S("error", err));
    }
}

/* --restore-from-postgres: refuse a data dir that holds anything. */
static int daemon__restore_target_empty(const char *flag, const char *dir, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "%s: data dir %.300s: %s", flag, dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    if (n) snprintf(err, errlen, "%s: data dir %.300s is not empty", flag, dir);
    return n ? -1 : 0;
}

/* A Redis RDB file's function libraries, checked as FUNCTION LOAD checks
 * them (compiled in an interpreter of their own) and kept as the arguments
 * of one KV_OP_FUNCTION_RESTORE: name code nfn fname... per library. */
typedef struct rdb_libraries {
    script_lua *sl;
    buf data;          /* the arguments, back to back */
    size_t *off, *len; /* of each argument */
    size_t nargs, cap;
    uint32_t nlibs;
    kv_keyspace names; /* every library ('L' + name) and function ('F' + name) so far */
    bool names_ready;
    char *err;
    size_t errlen;
} rdb_libraries;

static void rdb_lib__arg(rdb_libraries *l, const char *p, size_t n)
{
    if (l->nargs == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->off = xrealloc(l->off, l->cap * sizeof(*l->off));
        l->len = xrealloc(l->len, l->cap * sizeof(*l->len));
    }
    l->off[l->nargs] = l->data.len;
    l->len[l->nargs++] = n;
    buf_append(&l->data, p, n);
}

/* A name not seen before (libraries and functions each have one
 * namespace in Redis; cairn refuses a repeat of either kind). */
static bool rdb_lib__new_name(rdb_libraries *l, char kind, const char *p, size_t n)
{
    if (!l->names_ready) {
        kv_keyspace_init(&l->names, 1);
        l->names_ready = true;
    }
    buf key;
    buf_init(&key);
    buf_append_char(&key, kind);
    buf_append(&key, p, n);
    bool fresh = !kv_keyspace_find(&l->names, key.data, key.len);
    if (fresh) kv_keyspace_insert(&l->names, key.data, key.len, NULL, 0);
    buf_close(&key);
    return fresh;
}

static bool rdb_lib__each(void *ctx, kv_slice code)
{
    rdb_libraries *l = ctx;
    if (!l->sl) l->sl = script_lua_new(SCRIPT_REDIS_VERSION);
    buf name, fnames, why;
    buf_init(&name);
    buf_init(&fnames);
    buf_init(&why);
    uint32_t nfn = 0;
    bool ok = script_lua_check_library(l->sl, code.ptr, code.len, &name, &fnames, &nfn, &why);
    if (!ok) {
        snprintf(l->err, l->errlen, "RDB file: a function library does not load: %.*s",
                 (int)(why.len > 2 ? why.len - 2 : why.len), why.data ? why.data + 1 : "");
    } else if (nfn > KV_FUNCTIONS_MAX_PER_LIBRARY || l->nlibs >= KV_FUNCTIONS_MAX_LIBRARIES) {
        /* FUNCTION RESTORE's limits, checked before anything is written */
        snprintf(l->err, l->errlen,
                 "RDB file: more function libraries (or functions in one) than cairn holds "
                 "(%u libraries of %u functions)",
                 KV_FUNCTIONS_MAX_LIBRARIES, KV_FUNCTIONS_MAX_PER_LIBRARY);
        ok = false;
    } else if (!rdb_lib__new_name(l, 'L', name.data, name.len)) {
        snprintf(l->err, l->errlen, "RDB file: library %.*s appears twice", (int)name.len,
                 name.data);
        ok = false;
    }
    if (ok) {
        rdb_lib__arg(l, name.data, name.len);
        rdb_lib__arg(l, code.ptr, code.len);
        char num[16];
        rdb_lib__arg(l, num, (size_t)snprintf(num, sizeof(num), "%u", nfn));
        for (size_t j = 0, at = 0; ok && j < nfn; j++) {
            uint32_t n;
            memcpy(&n, fnames.data + at, sizeof(n));
            const char *fn = fnames.data + at + sizeof(n);
            if (!rdb_lib__new_name(l, 'F', fn, n)) {
                snprintf(l->err, l->errlen, "RDB file: function %.*s appears twice", (int)n, fn);
                ok = false;
            }
            rdb_lib__arg(l, fn, n);
            at += sizeof(n) + n;
        }
        l->nlibs++;
    }
    buf_close(&name);
    buf_close(&fnames);
    buf_close(&why);
    return ok;
}

static void rdb_lib__close(rdb_libraries *l)
{
    if (l->sl) script_lua_free(l->sl);
    buf_close(&l->data);
    if (l->names_ready) kv_keyspace_close(&l->names);
    free(l->off);
    free(l->len);
}

/* --restore FILE: a Redis RDB file into `into`, mapped read-only; its
 * function libraries into libs. */
static int daemon__load_rdb(const char *path, kv_store *into, rdb_libraries *libs, char *err,
                            size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        snprintf(err, errlen, "--restore %.300s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    if (!S_ISREG(sb.st_mode) || sb.st_size == 0) {
        snprintf(err, errlen, "--restore %.300s: not a regular file with data", path);
        close(fd);
        return -1;
    }
    void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "--restore %.300s: %s", path, strerror(errno));
        return -1;
    }
    kv_rdb_stats rs;
    char why[400];
    libs->err = why;
    libs->errlen = sizeof(why);
    int rv = kv_rdb_load(m, (size_t)sb.st_size, into, replica_now_ms(), rdb_lib__each, libs, &rs,
                         why, sizeof(why));
    munmap(m, (size_t)sb.st_size);
    if (rv != 0) {
        snprintf(err, errlen, "--restore %.100s: %.380s", path, why);
        return -1;
    }
    LOG_INFO("read the Redis RDB file", LF_S("file", path), LF_I("rdb_version", rs.version),
             LF_S("redis_version", rs.redis_ver), LF_I("keys", rs.keys),
             LF_I("expired_left_out", rs.expired), LF_I("function_libraries", rs.libraries));
    return 0;
}

static uint64_t daemon__random_seed(void)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
        seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;
    return seed;
}

int main(int argc, char **argv)
{
    static daemon_t d;
    char err[512];
    config_defaults(&d.cfg);
    int rv = config_parse(&d.cfg, argc, argv, err, sizeof(err));
    if (rv == 1) return 0;
    if (rv != 0) {
        fprintf(stderr, "cairnd: %s\nRun 'cairnd --help' for usage.\n", err);
        return 2;
    }
    log_setup(d.cfg.log_level, d.cfg.log_format);
    d.loop = uv_default_loop();
    if (d.cfg.users_file[0]) {
        char uerr[1300];
        d.auth = auth_create(d.loop, d.cfg.users_file, uerr, sizeof(uerr));
        if (!d.auth) {
            fprintf(stderr, "cairnd: --users-file %s\n", uerr);
            return 2;
        }
        bool loopback_only = strncmp(d.cfg.listen_http, "127.", 4) == 0 &&
                             (!d.cfg.listen_resp[0] || strncmp(d.cfg.listen_resp, "127.", 4) == 0);
        if (!d.cfg.tls_cert[0] && !loopback_only)
            LOG_WARN("users without --tls-cert: passwords and tokens cross the network in plain "
                     "text; serve TLS on a non-loopback address");
    }
    if (strncmp(d.cfg.advertise_http, "0.0.0.0:", 8) == 0 ||
        strncmp(d.cfg.advertise_http, "[::]:", 5) == 0)
        LOG_WARN("the HTTP address other members forward to is a wildcard: they cannot reach "
                 "this node; set --advertise-http to an address they can",
                 LF_S("advertise_http", d.cfg.advertise_http));
    crc32c_update(0, "", 0); /* build the table before any fork or thread */

    kv_store_init(&d.store, daemon__random_seed());
    daemon__register_metrics(&d);
    /* a restore reads and checks the whole table before anything is
     * created: a refused table leaves no data dir behind */
    static kv_store restored;
    bool from_pg = d.cfg.restore_from_postgres[0] != 0, from_rdb = d.cfg.restore[0] != 0;
    bool restoring = from_pg || from_rdb;
    if (restoring) {
        if (d.cfg.persistence == PERSISTENCE_DURABLE &&
            daemon__restore_target_empty(from_pg ? "--restore-from-postgres" : "--restore",
                                         d.cfg.data_dir, err, sizeof(err)) != 0) {
            fprintf(stderr, "cairnd: %s\n", err);
            return 2;
        }
        kv_store_init(&restored, daemon__random_seed());
    }
    static rdb_libraries libs;
    if (from_rdb && daemon__load_rdb(d.cfg.restore, &restored, &libs, err, sizeof(err)) != 0) {
        LOG_ERROR("cannot restore", LF_S("error", err));
        return 1;
    }
    if (from_pg) {
        txlog_replay_stats rs;
        if (txlog_replay(d.cfg.restore_from_postgres, &restored, &rs, err, sizeof(err)) != 0) {
            LOG_ERROR("cannot restore", LF_S("error", err));
            return 1;
        }
        LOG_INFO("read the PostgreSQL transaction log", LF_I("events", rs.events),
                 LF_I("last_revision", rs.last_revision),
                 LF_I("keys", kv_keyspace_count(&restored.ks)));
    }
    if (d.cfg.txlog_postgres[0]) {
        /* before the replica starts: replaying the log tail is recorded */
        d.txlog = txlog_new(d.cfg.txlog_postgres, d.cfg.txlog_buffer, err, sizeof(err));
        if (!d.txlog) {
            fprintf(stderr, "cairnd: %s\n", err);
            return 2;
        }
        d.store.on_change = txlog_on_change;
        d.store.on_change_ctx = d.txlog;
        txlog_attach_store(d.txlog, &d.store);
        txlog_register_metrics(d.txlog);
    }
    if (replica_create(&d.replica, d.loop, &d.cfg, &d.store, err, sizeof(err)) != 0) {
        LOG_ERROR("cannot start", LF_S("error", err));
        return 1;
    }
    LOG_INFO("starting", LF_I("id", d.cfg.id), LF_S("version", CAIRN_VERSION_STRING),
             LF_S("persistence", d.cfg.persistence == PERSISTENCE_NONE ? "none" : "durable"),
             LF_S("data_dir", d.cfg.persistence == PERSISTENCE_NONE ? "" : d.cfg.data_dir));
    if (replica_start(d.replica, err, sizeof(err)) != 0) {
        LOG_ERROR("cannot start", LF_S("error", err));
        return 1;
    }
    if (restoring) {
        uint64_t written = 0;
        kv_keyspace_reserve(&d.store.ks, kv_keyspace_count(&restored.ks)); /* sized once */
        if (replica_seed(d.loop, d.replica, &restored, 30, &written, err, sizeof(err)) != 0) {
            LOG_ERROR("cannot restore", LF_S("error", err));
            return 1;
        }
        kv_store_close(&restored);
        if (libs.nargs) { /* the file's function libraries: one entry, all or none */
            kv_slice *args = xcalloc(libs.nargs, sizeof(*args));
            for (size_t i = 0; i < libs.nargs; i++)
                args[i] = (kv_slice){libs.data.data + libs.off[i], libs.len[i]};
            kv_command cmd = {.op = KV_OP_FUNCTION_RESTORE,
                              .a = KV_FUNCTION_RESTORE_APPEND,
                              .nargs = (uint32_t)libs.nargs,
                              .args = args};
            int frv = replica_seed_command(d.loop, d.replica, &cmd, err, sizeof(err));
            free(args);
            if (frv != 0) {
                LOG_ERROR("cannot restore the function libraries", LF_S("error", err));
                return 1;
            }
        }
        rdb_lib__close(&libs);
        LOG_INFO(from_pg ? "restored from PostgreSQL" : "restored from the RDB file",
                 LF_I("keys", written), LF_I("revision", d.store.revision));
    }

    net_limits limits = {.max_clients = d.cfg.max_clients,
                         .client_timeout = d.cfg.client_timeout,
                         .idle_timeout = d.cfg.idle_timeout,
                         .max_pending_output = d.cfg.max_pending_output};
    d.server = net_server_create(d.loop, &limits);
    d.api = (api){.cfg = &d.cfg,
                  .store = &d.store,
                  .replica = d.replica,
                  .server = d.server,
                  .start_ms = net_now_ms(),
                  .auth = d.auth,
                  .txlog = d.txlog,
                  .maxmemory = d.cfg.maxmemory,
                  .eviction = d.cfg.eviction};
    if (d.cfg.rate_limit) {
        d.api.rate = ratelimit_create((double)d.cfg.rate_limit, (double)d.cfg.rate_burst,
                                      RATE_LIMIT_CLIENTS);
        const char *name = "cairn_rate_limited_total";
        const char *help = "requests refused by --rate-limit, by protocol";
        d.api.m_rate_limited_http = metrics_counter_get(name, help, "protocol=\"http\"");
        d.api.m_rate_limited_resp = metrics_counter_get(name, help, "protocol=\"resp\"");
    }
    http_api_init(&d.api);
    if (d.cfg.tls_cert[0] && tls_ctx_create(&d.tls, d.cfg.tls_cert, d.cfg.tls_key,
                                            d.cfg.tls_client_ca, err, sizeof(err)) != 0) {
        LOG_ERROR("cannot start", LF_S("error", err));
        return 1;
    }
    if (net_server_listen_tls(d.server, d.cfg.listen_http, &http_api_proto, &d.api, d.tls, err,
                              sizeof(err)) != 0) {
        LOG_ERROR("cannot start", LF_S("error", err));
        return 1;
    }
    memory_init();
    if (d.cfg.listen_resp[0]) {
        d.resp = resp_api_create(&d.api, d.loop);
        if (net_server_listen_tls(d.server, d.cfg.listen_resp, &resp_api_proto, d.resp, d.tls, err,
                                  sizeof(err)) != 0) {
            LOG_ERROR("cannot start", LF_S("error", err));
            return 1;
        }
    }

    uv_signal_init(d.loop, &d.sigterm);
    uv_signal_init(d.loop, &d.sigint);
    uv_signal_init(d.loop, &d.sigpipe);
    uv_signal_init(d.loop, &d.sighup);
    d.sigterm.data = d.sigint.data = d.sigpipe.data = d.sighup.data = &d;
    uv_signal_start(&d.sighup, daemon__on_sighup, SIGHUP);
    uv_signal_start(&d.sigterm, daemon__on_signal, SIGTERM);
    uv_signal_start(&d.sigint, daemon__on_signal, SIGINT);
    uv_signal_start(&d.sigpipe, daemon__on_signal, SIGPIPE);
    uv_timer_init(d.loop, &d.drain);
    d.drain.data = &d;
    uv_timer_init(d.loop, &d.lag_probe);
    d.lag_probe.data = &d;
    uv_timer_start(&d.lag_probe, daemon__lag_probe, LAG_PROBE_MS, LAG_PROBE_MS);
    if (d.txlog) {
        uv_timer_init(d.loop, &d.txlog_role);
        d.txlog_role.data = &d;
        uv_timer_start(&d.txlog_role, daemon__txlog_role, 0, TXLOG_ROLE_MS);
    }

    if (d.cfg.join[0]) {
        d.join = join_start_config(d.loop, &d.cfg);
        if (!d.join) return 2;
    }
    sdnotify_ready(&d.sd, d.loop, "listening; /readyz tells when linearizable requests are served");

    uv_run(d.loop, UV_RUN_DEFAULT);

    uv_walk(d.loop, daemon__close_handles, NULL);
    uv_run(d.loop, UV_RUN_DEFAULT);
    uv_loop_close(d.loop);
    net_server_destroy(d.server);
    resp_api_destroy(d.resp);
    replica_destroy(d.replica);
    txlog_free(d.txlog);
    kv_store_close(&d.store);
    tls_ctx_free(d.tls);
    auth_destroy(d.auth);
    ratelimit_destroy(d.api.rate);
    metrics_reset();
    return d.exit_code;
}
