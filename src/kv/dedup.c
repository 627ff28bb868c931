#include "kv/dedup.h"

#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/hash.h"

void kv_dedup_init(kv_dedup *d, uint64_t seed)
{
    memset(d, 0, sizeof(*d));
    d->seed = seed;
}

void kv_dedup_close(kv_dedup *d)
{
    free(d->ring);
    free(d->index);
    memset(d, 0, sizeof(*d));
}

void kv_dedup_clear(kv_dedup *d)
{
    uint64_t seed = d->seed;
    kv_dedup_close(d);
    kv_dedup_init(d, seed);
}

static uint32_t dedup__slot(const kv_dedup *d, const char *key, size_t len)
{
    return (uint32_t)(hash_bytes(key, len, d->seed) & (d->index_cap - 1));
}

const kv_dedup_entry *kv_dedup_find(const kv_dedup *d, const char *key, size_t len)
{
    if (!d->index) return NULL;
    for (uint32_t i = dedup__slot(d, key, len), n = 0; n < d->index_cap;
         i = (i + 1) & (d->index_cap - 1), n++) {
        uint32_t v = d->index[i];
        if (v == 0) return NULL;
        const kv_dedup_entry *e = &d->ring[v - 1];
        if (e->used && e->key_len == len && memcmp(e->key, key, len) == 0) return e;
    }
    return NULL;
}

/* Rebuild the index from the ring (after evicting: linear probing cannot
 * delete in place without tombstones, and eviction is amortised anyway). */
static void dedup__reindex(kv_dedup *d)
{
    memset(d->index, 0, d->index_cap * sizeof(uint32_t));
    for (uint32_t k = 0; k < d->count; k++) {
        uint32_t slot_in_ring = (d->head + k) % KV_DEDUP_CAPACITY;
        const kv_dedup_entry *e = &d->ring[slot_in_ring];
        uint32_t i = dedup__slot(d, e->key, e->key_len);
        while (d->index[i]) i = (i + 1) & (d->index_cap - 1);
        d->index[i] = slot_in_ring + 1;
    }
}

void kv_dedup_put(kv_dedup *d, const kv_dedup_entry *e)
{
    if (!d->ring) {
        d->ring = xcalloc(KV_DEDUP_CAPACITY, sizeof(kv_dedup_entry));
        d->index_cap = 32768; /* > 3x capacity: short probe runs */
        d->index = xcalloc(d->index_cap, sizeof(uint32_t));
    }
    bool evicted = false;
    if (d->count == KV_DEDUP_CAPACITY) {
        d->ring[d->head].used = 0;
        d->head = (d->head + 1) % KV_DEDUP_CAPACITY;
        d->count--;
        evicted = true;
    }
    uint32_t slot = (d->head + d->count) % KV_DEDUP_CAPACITY;
    d->ring[slot] = *e;
    d->ring[slot].used = 1;
    d->count++;
    /* evictions are batched: rebuild when the oldest tenth has turned over */
    if (evicted && d->head % (KV_DEDUP_CAPACITY / 10) == 0) {
        dedup__reindex(d);
        return;
    }
    uint32_t i = dedup__slot(d, e->key, e->key_len);
    while (d->index[i]) {
        const kv_dedup_entry *x = &d->ring[d->index[i] - 1];
        if (!x->used) break; /* reuse a slot whose entry was evicted */
        i = (i + 1) & (d->index_cap - 1);
    }
    d->index[i] = slot + 1;
}

const kv_dedup_entry *kv_dedup_at(const kv_dedup *d, uint32_t i)
{
    return i < d->count ? &d->ring[(d->head + i) % KV_DEDUP_CAPACITY] : NULL;
}
