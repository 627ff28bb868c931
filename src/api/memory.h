/* memory: the --maxmemory budget and eviction, shared by both front ends.
 *
 * The budget is compared with kv_keyspace.mem_bytes, the keyspace's own
 * estimate of the heap bytes its entries, values and hash tables hold (see
 * docs/resp.md for how that estimate tracks the process RSS). As in Redis,
 * the check runs before a write that may add memory ("denyoom" commands,
 * HTTP PUT): while usage is over the budget,
 *   - noeviction refuses the write (RESP -OOM, HTTP 507);
 *   - allkeys-lru / volatile-lru / volatile-ttl evict keys until usage is
 *     under the budget again, and refuse the write only when nothing
 *     eligible is left (volatile-*: no key with an expiry).
 * Eviction is Redis' sampled approximation: look at a few random keys
 * (all keys, or only those with an expiry), delete the best candidate (the
 * least recently used, or the one expiring soonest), repeat. A sampled key
 * that has already expired is reclaimed as an expiry instead.
 *
 * Deletions take the normal write path (a KV_OP_DEL proposal), so they are
 * counted, logged and applied like any other write. Eviction runs only with
 * --persistence none, where a proposal applies at once: a durable store
 * never drops acknowledged data, so config refuses eviction policies there
 * and noeviction is the only behaviour.
 *
 * LRU clock: kv_entry.lru holds a coarse monotonic clock (100 ms units)
 * stamped by memory_touch on reads and writes through the Redis front end.
 * Keys never stamped (written over HTTP, or loaded from a snapshot) are
 * stamped the first time the evictor samples them, so they start ageing
 * from then rather than being evicted first.
 *
 * Counters live in the metrics registry (cairn_evicted_keys_total), the one
 * piece of process-wide state the style allows. Loop thread only. */
#ifndef CAIRN_API_MEMORY_H
#define CAIRN_API_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

#include "api/api.h"
#include "kv/keyspace.h"

enum { MEMORY_OK = 0, MEMORY_OOM = -1 };

/* Keys looked at per eviction (CONFIG GET maxmemory-samples). Redis
 * samples 5 but keeps a pool of good candidates across rounds; without a
 * pool, 10 fresh samples come close to its quality. */
#define MEMORY_SAMPLES 10

/* Register the eviction counter (once, before serving). */
void memory_init(void);

/* Call before proposing a write that may add memory. Evicts when the
 * policy allows; returns MEMORY_OK, or MEMORY_OOM when the write must be
 * refused. */
int memory_admit_write(api *a);

/* True when usage is over a non-zero --maxmemory. */
bool memory_over_budget(const api *a);

/* Keys evicted since start. */
uint64_t memory_evicted_keys(void);

/* The coarse LRU clock (never 0, wraps after 13 years). */
uint32_t memory_lru_clock(void);

/* Whether access times matter (an LRU policy with a budget), so callers
 * can skip the lookup a touch after a write needs. */
bool memory_tracks_lru(const api *a);

static inline void memory_touch(kv_entry *e, uint32_t clock)
{
    e->lru = clock;
}

/* The policy name as Redis spells it (maxmemory-policy). */
const char *memory_policy_name(int eviction);

#endif
