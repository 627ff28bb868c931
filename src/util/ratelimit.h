/* ratelimit: token buckets per client (--rate-limit N --rate-burst B).
 *
 * Each client key (a user name, else an IP address) has a bucket that
 * refills rate tokens per second up to burst; a request takes one. The
 * table is bounded: when it is full, buckets that have refilled completely
 * (idle clients) are dropped; if none has, the newcomers share one overflow
 * bucket, so memory stays bounded under a flood of addresses. Pure: the
 * caller passes the time. */
#ifndef CAIRN_UTIL_RATELIMIT_H
#define CAIRN_UTIL_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_KEY_MAX 80

typedef struct ratelimit ratelimit;

ratelimit *ratelimit_create(double rate, double burst, size_t max_clients);
void ratelimit_destroy(ratelimit *r);

typedef struct ratelimit_verdict {
    bool allowed;
    uint64_t remaining;      /* whole tokens left after this request */
    uint64_t retry_after_ms; /* refused: when the next token is back */
} ratelimit_verdict;

/* Take a token for key (truncated to RATELIMIT_KEY_MAX bytes). */
ratelimit_verdict ratelimit_take(ratelimit *r, const char *key, size_t len, int64_t now_ms);

size_t ratelimit_clients(const ratelimit *r);

#endif
