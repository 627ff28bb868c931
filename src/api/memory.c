/* memory: --maxmemory admission and sampled eviction (see memory.h). */
#include "api/memory.h"

#include <string.h>

#include "kv/command.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "replica/replica.h"
#include "util/buf.h"

/* Random draws spent looking for keys with an expiry before falling back
 * to a scan (volatile-* policies with few volatile keys). */
#define MEMORY_VOLATILE_DRAWS 64
/* A bound on the work one write can trigger; a write adds at most one
 * value, so this is far more than any write needs. */
#define MEMORY_MAX_EVICTIONS 1000000

static metrics_counter *m_evicted;

void memory_init(void)
{
    m_evicted = metrics_counter_get("cairn_evicted_keys_total",
                                    "Keys evicted to stay under --maxmemory", "");
}

uint64_t memory_evicted_keys(void)
{
    return m_evicted ? (uint64_t)m_evicted->value : 0;
}

/* Tenths of a second, from 2^30 up: an access can be set back that far
 * (RESTORE IDLETIME, about 3.4 years) without the clock going below its
 * start, and it wraps only after some 9.8 years up. */
uint32_t memory_lru_clock(void)
{
    return (uint32_t)(net_now_ms() / 100) + (1u << 30);
}

const char *memory_policy_name(int eviction)
{
    switch (eviction) {
    case EVICTION_ALLKEYS_LRU:
        return "allkeys-lru";
    case EVICTION_VOLATILE_LRU:
        return "volatile-lru";
    case EVICTION_VOLATILE_TTL:
        return "volatile-ttl";
    default:
        return "noeviction";
    }
}

bool memory_over_budget(const api *a)
{
    return a->maxmemory && a->store->ks.mem_bytes > a->maxmemory;
}

static bool memory__can_evict(const api *a)
{
    return a->eviction != EVICTION_NOEVICTION && a->cfg->persistence == PERSISTENCE_NONE;
}

bool memory_tracks_lru(const api *a)
{
    return a->maxmemory && memory__can_evict(a) &&
           (a->eviction == EVICTION_ALLKEYS_LRU || a->eviction == EVICTION_VOLATILE_LRU);
}

typedef struct memory_pick {
    const api *a;
    uint32_t clock;
    int64_t now_ms;
    kv_entry *best;
    kv_entry *expired; /* a sampled key that is already past its expiry */
    uint64_t best_score;
    int found;
} memory_pick;

/* Higher is a better victim: idle time for LRU, closeness to expiry for
 * volatile-ttl. */
static uint64_t memory__score(memory_pick *p, kv_entry *e)
{
    if (p->a->eviction == EVICTION_VOLATILE_TTL)
        return (uint64_t)INT64_MAX - (uint64_t)e->expire_ms;
    if (e->lru == 0) e->lru = p->clock; /* first sighting starts its clock */
    return (uint32_t)(p->clock - e->lru);
}

static void memory__consider(memory_pick *p, kv_entry *e)
{
    if (kv_entry_expired(e, p->now_ms)) {
        if (!p->expired) p->expired = e;
        return;
    }
    uint64_t s = memory__score(p, e);
    if (!p->best || s > p->best_score) {
        p->best = e;
        p->best_score = s;
    }
}

static void memory__scan_visit(void *ctx, kv_entry *e)
{
    memory_pick *p = ctx;
    if (p->found >= MEMORY_SAMPLES || !e->expire_ms) return;
    p->found++;
    memory__consider(p, e);
}

static void memory__sample(memory_pick *p, kv_keyspace *ks, bool volatile_only)
{
    if (!volatile_only) {
        for (int i = 0; i < MEMORY_SAMPLES; i++) {
            kv_entry *e = kv_keyspace_random(ks);
            if (!e) return;
            memory__consider(p, e);
            p->found++;
        }
        return;
    }
    if (ks->volatile_count == 0) return;
    for (int i = 0; i < MEMORY_VOLATILE_DRAWS && p->found < MEMORY_SAMPLES; i++) {
        kv_entry *e = kv_keyspace_random(ks);
        if (!e) return;
        if (!e->expire_ms) continue;
        memory__consider(p, e);
        p->found++;
    }
    if (p->found) return;
    /* Few keys have an expiry: walk the table until some turn up. The walk
     * ends at the end of a full pass, so it is bounded by the table size. */
    uint64_t cursor = 0;
    do {
        cursor = kv_keyspace_scan(ks, cursor, memory__scan_visit, p);
    } while (cursor && p->found < MEMORY_SAMPLES);
}

static void memory__noop(replica_req *rr, int status)
{
    (void)rr;
    (void)status;
}

/* Delete one key through the normal write path. Returns false when the
 * proposal failed. */
static bool memory__delete(api *a, const kv_entry *e, bool expired, int64_t now_ms)
{
    /* The key is copied: the entry is freed by the delete it describes. */
    buf key;
    buf_init(&key);
    buf_append(&key, kv_entry_key(e), e->key_len);
    kv_slice arg = {key.data ? key.data : "", key.len};
    /* b = 1 marks an eviction (keyspace notifications say "evicted") */
    kv_command cmd = {.op = expired ? KV_OP_EXPIRE_KEYS : KV_OP_DEL,
                      .b = expired ? 0 : 1,
                      .nargs = 1,
                      .args = &arg,
                      .now_ms = now_ms};
    replica_req rr;
    replica_req_init(&rr, NULL, memory__noop);
    int st = replica_propose(a->replica, &rr, &cmd);
    bool deleted = st == REPLICA_OK && rr.result.status == KV_OK && rr.result.integer > 0;
    replica_req_close(&rr);
    buf_close(&key);
    if (st != REPLICA_OK) return false;
    if (deleted && !expired) metrics_counter_add(m_evicted, 1);
    return true;
}

int memory_admit_write(api *a)
{
    if (!memory_over_budget(a)) return MEMORY_OK;
    if (!memory__can_evict(a)) return MEMORY_OOM;
    kv_keyspace *ks = &a->store->ks;
    bool volatile_only = a->eviction != EVICTION_ALLKEYS_LRU;
    uint32_t clock = memory_lru_clock();
    for (int n = 0; n < MEMORY_MAX_EVICTIONS && memory_over_budget(a); n++) {
        memory_pick p = {.a = a, .clock = clock, .now_ms = replica_now_ms()};
        memory__sample(&p, ks, volatile_only);
        kv_entry *victim = p.expired ? p.expired : p.best;
        if (!victim) return MEMORY_OOM;
        size_t before = ks->mem_bytes;
        uint64_t keys_before = kv_keyspace_count(ks);
        if (!memory__delete(a, victim, p.expired != NULL, p.now_ms)) return MEMORY_OOM;
        if (ks->mem_bytes >= before && kv_keyspace_count(ks) >= keys_before) {
            /* No progress: something other than keys holds the memory. */
            LOG_WARN("eviction made no progress", LF_I("used", ks->mem_bytes),
                     LF_I("maxmemory", a->maxmemory));
            return MEMORY_OOM;
        }
    }
    return memory_over_budget(a) ? MEMORY_OOM : MEMORY_OK;
}
