#include "util/config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/log.h"

#define CAIRN_VERSION "0.1.0"

enum { T_U64, T_POS_U64, T_BYTES, T_SECONDS, T_STR, T_ADDR, T_ADDR_OFF, T_ENUM, T_BOOL };

typedef struct flag_def {
    const char *name; /* without the leading dashes */
    int type;
    size_t offset;
    size_t size;              /* for strings */
    const char *const *enums; /* for T_ENUM, NULL-terminated */
    const char *help;
} flag_def;

static const char *const persistence_names[] = {"durable", "none", NULL};
static const char *const eviction_names[] = {"noeviction", "allkeys-lru", "volatile-lru",
                                             "volatile-ttl", NULL};
static const char *const level_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const format_names[] = {"text", "json", NULL};

#define OFF(f) offsetof(cairn_config, f)
#define SZ(f) sizeof(((cairn_config *)0)->f)

static const flag_def flags[] = {
    {"id", T_POS_U64, OFF(id), 0, NULL, "node id, a positive integer unique in the cluster"},
    {"data-dir", T_STR, OFF(data_dir), SZ(data_dir), NULL, "all durable state"},
    {"listen-http", T_ADDR, OFF(listen_http), SZ(listen_http), NULL, "REST API address"},
    {"listen-resp", T_ADDR_OFF, OFF(listen_resp), SZ(listen_resp), NULL,
     "Redis protocol address, or off"},
    {"listen-peer", T_ADDR, OFF(listen_peer), SZ(listen_peer), NULL, "replication address"},
    {"advertise-http", T_ADDR, OFF(advertise_http), SZ(advertise_http), NULL,
     "HTTP address other members forward to and clients are shown; none: --listen-http's"},
    {"advertise-resp", T_ADDR, OFF(advertise_resp), SZ(advertise_resp), NULL,
     "Redis protocol address clients are shown; none: --listen-resp's"},
    {"initial-cluster", T_STR, OFF(initial_cluster), SZ(initial_cluster), NULL,
     "bootstrap members: 1=host:port,2=host:port"},
    {"join", T_STR, OFF(join), SZ(join), NULL, "join a running cluster through this HTTP URL"},
    {"persistence", T_ENUM, OFF(persistence), 0, persistence_names, "durable or none"},
    {"maxmemory", T_BYTES, OFF(maxmemory), 0, NULL, "memory budget for data (k, m, g)"},
    {"eviction", T_ENUM, OFF(eviction), 0, eviction_names, "eviction policy"},
    {"max-key-bytes", T_POS_U64, OFF(max_key_bytes), 0, NULL, "larger keys are refused"},
    {"max-value-bytes", T_POS_U64, OFF(max_value_bytes), 0, NULL, "larger values are refused"},
    {"log-level", T_ENUM, OFF(log_level), 0, level_names, "debug, info, warn, error"},
    {"log-format", T_ENUM, OFF(log_format), 0, format_names, "text or json"},
    {"max-clients", T_POS_U64, OFF(max_clients), 0, NULL, "connections beyond this are refused"},
    {"client-timeout", T_SECONDS, OFF(client_timeout), 0, NULL,
     "a request must arrive whole within this many seconds"},
    {"idle-timeout", T_SECONDS, OFF(idle_timeout), 0, NULL, "close idle connections (0: never)"},
    {"snapshot-threshold", T_POS_U64, OFF(snapshot_threshold), 0, NULL,
     "log entries between snapshots"},
    {"snapshot-trailing", T_U64, OFF(snapshot_trailing), 0, NULL,
     "log entries kept behind a snapshot"},
    {"install-snapshot-timeout", T_SECONDS, OFF(install_snapshot_timeout), 0, NULL,
     "seconds a leader waits for a follower to install its snapshot before sending it again"},
    {"heartbeat-interval", T_SECONDS, OFF(heartbeat_interval), 0, NULL,
     "seconds between a leader's heartbeats; followers learn of commits by them at the latest"},
    {"max-inflight", T_POS_U64, OFF(max_inflight), 0, NULL,
     "proposals in flight before new writes are shed with 503"},
    {"write-timeout", T_SECONDS, OFF(write_timeout), 0, NULL,
     "seconds a write may wait for a quorum before 503"},
    {"read-wait-timeout", T_SECONDS, OFF(read_wait_timeout), 0, NULL,
     "seconds a min_revision read may wait before 504"},
    {"expiry-interval", T_SECONDS, OFF(expiry_interval), 0, NULL,
     "seconds between active expiry cycles"},
    {"max-pending-output", T_BYTES, OFF(max_pending_output), 0, NULL,
     "unsent reply bytes per client before it is disconnected"},
    {"txlog-postgres", T_STR, OFF(txlog_postgres), SZ(txlog_postgres), NULL,
     "also append every committed write to a PostgreSQL table (libpq URL)"},
    {"restore", T_STR, OFF(restore), SZ(restore), NULL,
     "seed an empty data dir from a backup file (today: a Redis RDB file, dump.rdb), then start"},
    {"restore-from-postgres", T_STR, OFF(restore_from_postgres), SZ(restore_from_postgres), NULL,
     "seed an empty data dir by replaying a --txlog-postgres table, then start"},
    {"min-free-disk", T_BYTES, OFF(min_free_disk), 0, NULL,
     "refuse writes (not deletes) while the data dir's file system has less free space; "
     "0 = never (libraft 0.15 may crash when a log write fails)"},
    {"txlog-buffer", T_BYTES, OFF(txlog_buffer), 0, NULL,
     "changes held in memory for --txlog-postgres while PostgreSQL is behind (k, m, g)"},
    {"insecure-allow-public", T_BOOL, OFF(insecure_allow_public), 0, NULL,
     "serve clients on non-loopback addresses without authentication (true/false)"},
    {"tls-cert", T_STR, OFF(tls_cert), SZ(tls_cert), NULL,
     "serve HTTP and RESP over TLS with this PEM certificate (chain)"},
    {"tls-key", T_STR, OFF(tls_key), SZ(tls_key), NULL, "the PEM private key for --tls-cert"},
    {"tls-client-ca", T_STR, OFF(tls_client_ca), SZ(tls_client_ca), NULL,
     "require client certificates signed by this CA (mutual TLS)"},
    {"users-file", T_STR, OFF(users_file), SZ(users_file), NULL,
     "enable authentication: lines name:hash:perms (reloaded on SIGHUP)"},
    {"rate-limit", T_POS_U64, OFF(rate_limit), 0, NULL,
     "requests per second per client (user, else IP address)"},
    {"rate-burst", T_POS_U64, OFF(rate_burst), 0, NULL,
     "burst size of --rate-limit (default: the rate)"},
};

void config_defaults(cairn_config *c)
{
    memset(c, 0, sizeof(*c));
    c->id = 1;
    snprintf(c->data_dir, sizeof(c->data_dir), "./cairn-data");
    snprintf(c->listen_http, sizeof(c->listen_http), "127.0.0.1:8080");
    snprintf(c->listen_resp, sizeof(c->listen_resp), "127.0.0.1:6380");
    snprintf(c->listen_peer, sizeof(c->listen_peer), "127.0.0.1:7080");
    c->persistence = PERSISTENCE_DURABLE;
    c->eviction = EVICTION_NOEVICTION;
    c->max_key_bytes = 4096;
    c->max_value_bytes = 1048576;
    c->log_level = LOG_LEVEL_INFO;
    c->log_format = LOG_FORMAT_TEXT;
    c->max_clients = 10000;
    c->client_timeout = 10;
    c->idle_timeout = 300;
    c->snapshot_threshold = 100000;
    c->snapshot_trailing = 8192;
    c->install_snapshot_timeout = 5;
    c->heartbeat_interval = 0.02;
    c->txlog_buffer = 64 * 1024 * 1024;
    /* libraft preallocates the log in 8 MiB segments and keeps spares;
     * snapshots need room too */
    c->min_free_disk = 64 * 1024 * 1024;
    c->max_inflight = 10000;
    c->write_timeout = 5;
    c->read_wait_timeout = 5;
    c->expiry_interval = 0.1;
    c->max_pending_output = 64 * 1024 * 1024;
}

bool config_parse_bytes(const char *s, uint64_t *out)
{
    if (!*s || !isdigit((unsigned char)*s)) return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return false;
    uint64_t mul = 1;
    if (*end) {
        switch (tolower((unsigned char)*end)) {
        case 'k':
            mul = 1024;
            break;
        case 'm':
            mul = 1024 * 1024;
            break;
        case 'g':
            mul = 1024ull * 1024 * 1024;
            break;
        default:
            return false;
        }
        end++;
        if (*end == 'b' || *end == 'B') end++;
        if (*end) return false;
    }
    if (v > UINT64_MAX / mul) return false;
    *out = v * mul;
    return true;
}

static bool config__valid_addr(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s) return false;
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    return colon[1] && !*end && !errno && port >= 0 && port <= 65535;
}

/* 127.0.0.0/8, ::1, localhost */
static bool config__is_loopback(const char *addr)
{
    if (strncmp(addr, "127.", 4) == 0 || strncmp(addr, "localhost:", 10) == 0) return true;
    return strncmp(addr, "[::1]:", 6) == 0;
}

static int config__set(cairn_config *c, const flag_def *f, const char *v, char *err, size_t errlen)
{
    char *field = (char *)c + f->offset;
    switch (f->type) {
    case T_U64:
    case T_POS_U64: {
        char *end;
        errno = 0;
        if (!isdigit((unsigned char)v[0])) goto bad;
        unsigned long long n = strtoull(v, &end, 10);
        if (*end || errno || (f->type == T_POS_U64 && n == 0)) goto bad;
        *(uint64_t *)field = n;
        return 0;
    }
    case T_BYTES:
        if (!config_parse_bytes(v, (uint64_t *)field)) goto bad;
        return 0;
    case T_SECONDS: {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        if (!*v || *end || errno || !isfinite(d) || d < 0 || d > 1e7) goto bad;
        *(double *)field = d;
        return 0;
    }
    case T_ADDR_OFF:
        if (strcmp(v, "off") == 0) {
            field[0] = '\0';
            return 0;
        }
        /* fallthrough */
    case T_ADDR:
        if (!config__valid_addr(v)) goto bad;
        /* fallthrough */
    case T_STR:
        if (strlen(v) >= f->size) goto bad;
        snprintf(field, f->size, "%s", v);
        return 0;
    case T_BOOL:
        if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
            *(bool *)field = true;
            return 0;
        }
        if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
            *(bool *)field = false;
            return 0;
        }
        goto bad;
    case T_ENUM:
        for (int i = 0; f->enums[i]; i++) {
            if (strcmp(v, f->enums[i]) == 0) {
                *(int *)field = i;
                return 0;
            }
        }
        goto bad;
    }
bad:
    if (f->type == T_ENUM) {
        char opts[256] = "";
        for (int i = 0; f->enums[i]; i++) {
            strncat(opts, i ? ", " : "", sizeof(opts) - strlen(opts) - 1);
            strncat(opts, f->enums[i], sizeof(opts) - strlen(opts) - 1);
        }
        snprintf(err, errlen, "--%s: invalid value '%s' (one of: %s)", f->name, v, opts);
    } else {
        snprintf(err, errlen, "--%s: invalid value '%s' (%s)", f->name, v, f->help);
    }
    return -1;
}

static const flag_def *config__find(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0)
            return &flags[i];
    return NULL;
}

/* The environment variable of a flag: CAIRN_ and the name in capitals. */
static void config__env_name(const flag_def *f, char *env, size_t n)
{
    size_t k = (size_t)snprintf(env, n, "CAIRN_");
    for (const char *p = f->name; *p && k + 1 < n; p++)
        env[k++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    env[k] = '\0';
}

/* A flag's default, as it would be written on the command line. */
static void config__default_text(const cairn_config *d, const flag_def *f, char *out, size_t n)
{
    const char *field = (const char *)d + f->offset;
    switch (f->type) {
    case T_POS_U64: /* 0 is not a value these take: the flag is unset */
        if (*(const uint64_t *)field == 0) {
            snprintf(out, n, "unset");
            break;
        }
        /* fallthrough */
    case T_U64:
        snprintf(out, n, "%llu", (unsigned long long)*(const uint64_t *)field);
        break;
    case T_BYTES: {
        uint64_t v = *(const uint64_t *)field;
        if (v && v % (1024 * 1024) == 0)
            snprintf(out, n, "%llum", (unsigned long long)(v / (1024 * 1024)));
        else
            snprintf(out, n, "%llu%s", (unsigned long long)v, v ? "" : " (no limit)");
        break;
    }
    case T_SECONDS:
        snprintf(out, n, "%g", *(const double *)field);
        break;
    case T_BOOL:
        snprintf(out, n, "%s", *(const bool *)field ? "true" : "false");
        break;
    case T_ENUM:
        snprintf(out, n, "%s", f->enums[*(const int *)field]);
        break;
    case T_ADDR_OFF:
        snprintf(out, n, "%s", field[0] ? field : "off");
        break;
    default:
        snprintf(out, n, "%s", field[0] ? field : "none");
        break;
    }
}

void config_usage(void)
{
    cairn_config d;
    config_defaults(&d);
    printf("usage: cairnd [--flag value]...\n\n"
           "Every flag also reads its environment variable; the flag wins.\n\n");
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        char env[64], def[160];
        config__env_name(&flags[i], env, sizeof(env));
        config__default_text(&d, &flags[i], def, sizeof(def));
        printf("  --%s VALUE\n      %s\n      [default %s, env %s]\n", flags[i].name, flags[i].help,
               def, env);
    }
}

int config_parse(cairn_config *c, int argc, char **argv, char *err, size_t errlen)
{
    /* environment first, so that flags override it */
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        char env[64];
        config__env_name(&flags[i], env, sizeof(env));
        const char *v = getenv(env);
        if (v && config__set(c, &flags[i], v, err, errlen) != 0) {
            size_t n = strlen(err);
            snprintf(err + n, errlen - n, " from %s", env);
            return -1;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            config_usage();
            return 1;
        }
        if (strcmp(a, "--version") == 0) {
            printf("cairnd %s\n", CAIRN_VERSION);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s'", a);
            return -1;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const flag_def *f = config__find(name, nlen);
        if (!f) {
            snprintf(err, errlen, "unknown flag '--%.*s'", (int)nlen, name);
            return -1;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v && f->type == T_BOOL) v = "true"; /* a bare boolean flag turns it on */
        if (!v) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--%s: missing value", f->name);
                return -1;
            }
            v = argv[++i];
        }
        if (config__set(c, f, v, err, errlen) != 0) return -1;
    }
    if (!c->tls_cert[0] != !c->tls_key[0]) {
        snprintf(err, errlen, "--tls-cert and --tls-key go together");
        return -1;
    }
    if (c->tls_client_ca[0] && !c->tls_cert[0]) {
        snprintf(err, errlen, "--tls-client-ca needs --tls-cert and --tls-key");
        return -1;
    }
    /* Advertised addresses default to the listen addresses; they differ
     * behind NAT, a container's port mapping or a proxy. */
    if (!c->advertise_http[0])
        snprintf(c->advertise_http, sizeof(c->advertise_http), "%s", c->listen_http);
    if (!c->listen_resp[0] && c->advertise_resp[0]) {
        snprintf(err, errlen, "--advertise-resp: the Redis protocol is off (--listen-resp off)");
        return -1;
    }
    if (!c->advertise_resp[0])
        snprintf(c->advertise_resp, sizeof(c->advertise_resp), "%s", c->listen_resp);
    if (c->install_snapshot_timeout < 0.1 || c->install_snapshot_timeout > 3600) {
        snprintf(err, errlen, "--install-snapshot-timeout: must be between 0.1 and 3600 seconds");
        return -1;
    }
    if (c->heartbeat_interval < 0.005 || c->heartbeat_interval > 0.1) {
        /* the election timeout is 1 s: ten heartbeats at least fit in it */
        snprintf(err, errlen, "--heartbeat-interval: must be between 0.005 and 0.1 seconds");
        return -1;
    }
    if (c->restore[0] && c->restore_from_postgres[0]) {
        snprintf(err, errlen, "--restore and --restore-from-postgres: one source at a time");
        return -1;
    }
    if (c->restore[0] && (c->join[0] || strchr(c->initial_cluster, ','))) {
        snprintf(err, errlen,
                 "--restore seeds a new cluster of one: not with --join or a several-member "
                 "--initial-cluster (grow it with --join afterwards)");
        return -1;
    }
    if (c->restore_from_postgres[0] && (c->join[0] || strchr(c->initial_cluster, ','))) {
        snprintf(err, errlen,
                 "--restore-from-postgres seeds a new cluster of one: not with "
                 "--join or a several-member --initial-cluster (grow it with --join "
                 "afterwards)");
        return -1;
    }
    if (c->restore_from_postgres[0] && strcmp(c->restore_from_postgres, c->txlog_postgres) == 0) {
        snprintf(err, errlen,
                 "--restore-from-postgres and --txlog-postgres name the same "
                 "database: the restored cluster's revisions start again at 1, give "
                 "its transaction log a database of its own");
        return -1;
    }
    if (c->txlog_buffer < 1024 * 1024) {
        snprintf(err, errlen, "--txlog-buffer: at least 1m");
        return -1;
    }
    if (c->rate_burst && !c->rate_limit) {
        snprintf(err, errlen, "--rate-burst needs --rate-limit");
        return -1;
    }
    if (c->rate_limit && !c->rate_burst) c->rate_burst = c->rate_limit;
    if (!c->insecure_allow_public && !c->users_file[0]) {
        /* protected mode, as Redis has it: without authentication
         * (--users-file), only loopback clients */
        const char *addrs[2] = {c->listen_http, c->listen_resp};
        const char *names[2] = {"--listen-http", "--listen-resp"};
        for (int i = 0; i < 2; i++) {
            if (!addrs[i][0] || config__is_loopback(addrs[i])) continue;
            snprintf(err, errlen,
                     "%s %s: not a loopback address, and without authentication anyone who can "
                     "reach it could read and write every key; use a loopback address, "
                     "configure users with --users-file, or pass --insecure-allow-public to "
                     "accept that",
                     names[i], addrs[i]);
            return -1;
        }
    }
    /* Evicting means dropping acknowledged writes, which a durable store
     * promises never to do: there the budget can only refuse writes. */
    if (c->persistence == PERSISTENCE_DURABLE && c->eviction != EVICTION_NOEVICTION) {
        snprintf(err, errlen,
                 "--eviction %s: needs --persistence none (a durable store never drops "
                 "acknowledged writes; use noeviction with --maxmemory)",
                 eviction_names[c->eviction]);
        return -1;
    }
    return 0;
}
