/* config: cairnd's flags, their defaults, and their parsing.
 *
 * Every flag can also come from the environment as CAIRN_<NAME> (dashes
 * become underscores); a flag on the command line wins. Parsing stops at
 * the first bad flag with a one-line message naming it (SPEC §1: exit 2). */
#ifndef CAIRN_UTIL_CONFIG_H
#define CAIRN_UTIL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { PERSISTENCE_DURABLE = 0, PERSISTENCE_NONE };
enum {
    EVICTION_NOEVICTION = 0,
    EVICTION_ALLKEYS_LRU,
    EVICTION_VOLATILE_LRU,
    EVICTION_VOLATILE_TTL
};

typedef struct cairn_config {
    uint64_t id;
    char data_dir[1024];
    char listen_http[256];
    char listen_resp[256]; /* "" when off */
    char listen_peer[256];
    /* what other members and clients are told to connect to; "" = the
     * listen address (filled in by config_parse) */
    char advertise_http[256];
    char advertise_resp[256];
    char initial_cluster[4096];
    char join[256];
    int persistence;
    uint64_t maxmemory;
    int eviction;
    uint64_t max_key_bytes;
    uint64_t max_value_bytes;
    int log_level;
    int log_format;
    uint64_t max_clients;
    double client_timeout;            /* seconds */
    double idle_timeout;              /* seconds, 0 = never */
    uint64_t snapshot_threshold;      /* log entries between snapshots */
    uint64_t snapshot_trailing;       /* entries kept behind a snapshot */
    double install_snapshot_timeout;  /* seconds before a leader re-sends a snapshot */
    double heartbeat_interval;        /* seconds: libraft's heartbeat (and tick) */
    char txlog_postgres[1024];        /* libpq connection string, or empty */
    uint64_t txlog_buffer;            /* bytes of changes held for it */
    uint64_t min_free_disk;           /* writes refused below this free space; 0 = never */
    char restore_from_postgres[1024]; /* replay this table into a new data dir */
    char restore[1024];               /* load this Redis RDB file into a new data dir */
    uint64_t max_inflight;            /* proposals in flight before shedding */
    double write_timeout;             /* seconds a write may wait for a quorum */
    double read_wait_timeout;         /* seconds min_revision may wait */
    double expiry_interval;           /* seconds between active expiry cycles */
    uint64_t max_pending_output;      /* bytes of unsent replies per client */
    bool insecure_allow_public;       /* serve non-loopback clients without users */
    char tls_cert[1024];
    char tls_key[1024];
    char tls_client_ca[1024];
    char users_file[1024]; /* "" when authentication is off */
    uint64_t rate_limit;   /* requests per second per client, 0 = off */
    uint64_t rate_burst;   /* bucket size; 0 = rate_limit */
} cairn_config;

void config_defaults(cairn_config *c);

/* Parse argv (and the environment). Returns 0 on success, 1 when --help or
 * --version was handled (the caller exits 0), -1 on a bad flag or value
 * with a one-line message in err. */
int config_parse(cairn_config *c, int argc, char **argv, char *err, size_t errlen);

/* Parse "123", "64k", "1m", "2g" (powers of 1024). */
bool config_parse_bytes(const char *s, uint64_t *out);

void config_usage(void);

#endif
