/* loadgen: a single-threaded load generator for cairn and the servers it
 * is compared with (cairnctl bench, bench/).
 *
 * One thread drives every connection with non-blocking sockets and epoll,
 * so that on a small machine the generator costs one core at most and
 * leaves the rest to the server under test. It speaks four protocols with
 * the same key and value scheme, so that one generator measures every side
 * of a comparison:
 *
 *   http      cairn's REST API: PUT / GET /v1/key/{key}
 *   resp      Redis protocol: SET / GET
 *   memcache  memcached's text protocol: set / get
 *   etcd      etcd v3's JSON gateway: POST /v3/kv/put, /v3/kv/range
 *
 * Keys are 16 bytes, "k" and 15 digits, as bench/wrk_*.lua write them.
 *
 * Two modes:
 * - closed loop (rate 0): each connection keeps `pipeline` requests in
 *   flight and sends the next one when an answer arrives; latency runs from
 *   the actual send.
 * - open loop (rate > 0): request i is due at start + i / rate whatever the
 *   server does; it goes out on any connection with fewer than `pipeline`
 *   requests in flight, and its latency runs from the time it was due, not
 *   the time it was sent. A server that falls behind therefore shows its
 *   queueing delay instead of hiding it by slowing the client down (the
 *   "coordinated omission" of closed-loop tools).
 *
 * Outcomes: ok (a write acknowledged, a read that found its key), miss (a
 * read of a missing key), shed (refused by admission control: HTTP 503 or
 * 429, RESP -BUSY), error (any other error answer), and connection errors
 * (requests lost with a connection that failed or timed out; the
 * connection is reopened). Latency percentiles cover the served requests:
 * everything but shed and lost ones.
 *
 * loadgen_run blocks its calling thread for the whole run. */
#ifndef CAIRN_UTIL_LOADGEN_H
#define CAIRN_UTIL_LOADGEN_H

#include <stddef.h>
#include <stdint.h>

#include "util/hdr.h"

typedef enum loadgen_protocol {
    LOADGEN_HTTP,
    LOADGEN_RESP,
    LOADGEN_MEMCACHE,
    LOADGEN_ETCD,
} loadgen_protocol;

typedef enum loadgen_keys {
    LOADGEN_KEYS_RANDOM,     /* uniform over the keyspace */
    LOADGEN_KEYS_SEQUENTIAL, /* 0, 1, 2, ... wrapping at keyspace: loads every key once */
} loadgen_keys;

typedef struct loadgen_progress {
    double elapsed_s;
    uint64_t completed;   /* answers so far, of any outcome */
    double interval_rate; /* answers per second since the previous report */
    uint64_t interval_p99_ns;
    uint64_t shed;
    uint64_t errors;  /* error answers and lost requests */
    uint64_t backlog; /* open loop: requests due but not sent yet */
} loadgen_progress;

typedef void (*loadgen_progress_cb)(const loadgen_progress *p, void *ctx);

typedef struct loadgen_options {
    loadgen_protocol protocol;
    const char *host; /* borrowed; a name or a numeric address */
    const char *port; /* borrowed */
    unsigned connections;
    double duration_s; /* stop after this long; 0: when `requests` are answered */
    uint64_t requests; /* stop after this many; 0: when `duration_s` has passed */
    uint64_t keyspace; /* keys 0 .. keyspace-1 */
    size_t value_size; /* bytes per written value */
    double read_ratio; /* 0..1: the share of reads */
    unsigned pipeline; /* requests in flight per connection, >= 1 */
    double rate;       /* open-loop target in requests/s; 0: closed loop */
    loadgen_keys keys;
    uint64_t seed;
    double timeout_s; /* connect timeout, and the longest wait for one answer */
    double progress_interval_s;
    loadgen_progress_cb progress; /* may be NULL */
    void *progress_ctx;
} loadgen_options;

void loadgen_options_default(loadgen_options *o);

typedef struct loadgen_result {
    uint64_t sent;
    uint64_t ok;
    uint64_t misses;
    uint64_t shed;
    uint64_t errors;
    uint64_t conn_errors;
    uint64_t reconnects;
    uint64_t reads; /* answered reads and writes, any outcome */
    uint64_t writes;
    double elapsed_s;      /* the measured window */
    hdr_histogram latency; /* nanoseconds, served requests (ok, misses, errors) */
} loadgen_result;

/* Runs the load described by opt. On success returns 0 and fills *res,
 * which the caller releases with loadgen_result_close. Returns a negative
 * code and a message in err when the options are unusable or no
 * connection could be opened; *res then needs no closing. */
int loadgen_run(const loadgen_options *opt, loadgen_result *res, char *err, size_t errlen);
void loadgen_result_close(loadgen_result *res);

/* Answers of any outcome, per second of the measured window. */
double loadgen_result_throughput(const loadgen_result *res);

const char *loadgen_protocol_name(loadgen_protocol p);
/* 0 and *out set when s names a protocol, else -1. */
int loadgen_protocol_parse(const char *s, loadgen_protocol *out);

#endif
