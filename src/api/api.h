/* api: what the protocol front ends (http_api, resp_api) share.
 *
 * Each front end turns one parsed request into one kv command or read,
 * hands it to the replica, and formats the reply. This struct is their
 * common context; it owns nothing but counters. Loop thread only. */
#ifndef CAIRN_API_API_H
#define CAIRN_API_API_H

#include <stdbool.h>
#include <stdint.h>

#include "kv/store.h"
#include "obs/metrics.h"
#include "net/server.h"
#include "replica/replica.h"
#include "util/config.h"
#include "util/ratelimit.h"
#include "util/users.h"

#define CAIRN_VERSION_STRING "0.1.0"

typedef struct api {
    const cairn_config *cfg;
    kv_store *store;
    replica *replica;
    net_server *server;
    int64_t start_ms;       /* monotonic, for uptime */
    uint64_t next_request;  /* for generated request ids */
    bool stopping;          /* SIGTERM seen: new requests get 503 and close */
    struct auth *auth;      /* --users-file, or NULL: everyone may do anything */
    struct ratelimit *rate; /* --rate-limit, or NULL */
    struct txlog *txlog;    /* --txlog-postgres, or NULL */
    metrics_counter *m_rate_limited_http, *m_rate_limited_resp;
    /* This node's settings that CONFIG SET may change at runtime; they
     * start from --maxmemory and --eviction. */
    uint64_t maxmemory;
    int eviction;
} api;

/* One request against --rate-limit (a->rate must be set): the bucket of
 * the authenticated user, else of the client's address. */
ratelimit_verdict api_rate_take(api *a, const users_user *user, const char *ip);

/* Resident set size of this process in bytes (from /proc), 0 if unknown. */
uint64_t api_rss_bytes(void);

#endif
