#include "util/ratelimit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/hash.h"

#define NIL UINT32_MAX

typedef struct bucket {
    char key[RATELIMIT_KEY_MAX];
    uint8_t key_len;
    uint32_t next; /* chain */
    double tokens;
    int64_t last_ms;
} bucket;

struct ratelimit {
    double rate, burst;
    size_t max;
    bucket *v; /* max + 1: the last one is the overflow bucket */
    size_t n;
    uint32_t *heads;
    size_t mask;
};

ratelimit *ratelimit_create(double rate, double burst, size_t max_clients)
{
    ratelimit *r = xcalloc(1, sizeof(*r));
    r->rate = rate;
    r->burst = burst;
    r->max = max_clients ? max_clients : 1;
    r->v = xcalloc(r->max + 1, sizeof(*r->v));
    size_t nh = 16;
    while (nh < 2 * r->max) nh *= 2;
    r->heads = xmalloc(nh * sizeof(*r->heads));
    for (size_t i = 0; i < nh; i++) r->heads[i] = NIL;
    r->mask = nh - 1;
    r->v[r->max].tokens = burst;
    return r;
}

void ratelimit_destroy(ratelimit *r)
{
    if (!r) return;
    free(r->v);
    free(r->heads);
    free(r);
}

size_t ratelimit_clients(const ratelimit *r)
{
    return r->n;
}

static void ratelimit__refill(const ratelimit *r, bucket *b, int64_t now_ms)
{
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * r->rate / 1000.0;
        if (b->tokens > r->burst) b->tokens = r->burst;
        b->last_ms = now_ms;
    }
}

static size_t ratelimit__slot(const ratelimit *r, const char *key, size_t len)
{
    return (size_t)hash_bytes(key, len, 0x7a7e) & r->mask;
}

/* Drop every bucket that has refilled completely (its client has been
 * idle long enough that forgetting it changes nothing), then rebuild the
 * chains. */
static void ratelimit__sweep(ratelimit *r, int64_t now_ms)
{
    size_t kept = 0;
    for (size_t i = 0; i < r->n; i++) {
        bucket *b = &r->v[i];
        ratelimit__refill(r, b, now_ms);
        if (b->tokens >= r->burst) continue;
        if (kept != i) r->v[kept] = *b;
        kept++;
    }
    r->n = kept;
    for (size_t i = 0; i <= r->mask; i++) r->heads[i] = NIL;
    for (size_t i = 0; i < r->n; i++) {
        size_t s = ratelimit__slot(r, r->v[i].key, r->v[i].key_len);
        r->v[i].next = r->heads[s];
        r->heads[s] = (uint32_t)i;
    }
}

static bucket *ratelimit__find(ratelimit *r, const char *key, size_t len, int64_t now_ms)
{
    size_t s = ratelimit__slot(r, key, len);
    for (uint32_t i = r->heads[s]; i != NIL; i = r->v[i].next)
        if (r->v[i].key_len == len && memcmp(r->v[i].key, key, len) == 0) return &r->v[i];
    if (r->n == r->max) {
        ratelimit__sweep(r, now_ms);
        if (r->n == r->max) return &r->v[r->max]; /* everyone is busy: share */
        s = ratelimit__slot(r, key, len);
    }
    bucket *b = &r->v[r->n];
    memcpy(b->key, key, len);
    b->key_len = (uint8_t)len;
    b->tokens = r->burst;
    b->last_ms = now_ms;
    b->next = r->heads[s];
    r->heads[s] = (uint32_t)r->n++;
    return b;
}

ratelimit_verdict ratelimit_take(ratelimit *r, const char *key, size_t len, int64_t now_ms)
{
    if (len > RATELIMIT_KEY_MAX) len = RATELIMIT_KEY_MAX;
    bucket *b = ratelimit__find(r, key, len, now_ms);
    ratelimit__refill(r, b, now_ms);
    ratelimit_verdict v = {0};
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        v.allowed = true;
        v.remaining = (uint64_t)b->tokens;
    } else {
        double wait_ms = (1.0 - b->tokens) * 1000.0 / r->rate;
        v.retry_after_ms = (uint64_t)ceil(wait_ms);
        if (v.retry_after_ms == 0) v.retry_after_ms = 1;
    }
    return v;
}
