/* dedup: results of recent idempotent writes, by client-chosen key.
 *
 * A client that retries a write after a timeout or a leader change cannot
 * know whether the first attempt was applied. With an Idempotency-Key the
 * state machine remembers the result of the last KV_DEDUP_CAPACITY keyed
 * writes (oldest forgotten first, the same on every node because it is
 * driven by the log) and answers a repeat with the remembered result
 * instead of applying it again. Part of the snapshot, so the guarantee
 * survives restarts and snapshot installs. */
#ifndef CAIRN_KV_DEDUP_H
#define CAIRN_KV_DEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KV_DEDUP_CAPACITY 10000
#define KV_DEDUP_KEY_MAX 128

typedef struct kv_dedup_entry {
    char key[KV_DEDUP_KEY_MAX];
    uint8_t key_len;
    uint8_t used;
    uint32_t status;
    int64_t integer;
    uint64_t revision, create_rev, mod_rev, version;
} kv_dedup_entry;

typedef struct kv_dedup {
    kv_dedup_entry *ring; /* insertion order; ring[head] is the oldest */
    uint32_t head, count;
    uint32_t *index; /* open addressing: ring slot + 1, 0 = empty */
    uint32_t index_cap;
    uint64_t seed;
} kv_dedup;

void kv_dedup_init(kv_dedup *d, uint64_t seed);
void kv_dedup_close(kv_dedup *d);
void kv_dedup_clear(kv_dedup *d);
const kv_dedup_entry *kv_dedup_find(const kv_dedup *d, const char *key, size_t len);
/* Remember a result (the oldest is forgotten when full). */
void kv_dedup_put(kv_dedup *d, const kv_dedup_entry *e);
/* Entries oldest first, for the snapshot writer. */
const kv_dedup_entry *kv_dedup_at(const kv_dedup *d, uint32_t i);

#endif
