/* lazyfree: freeing big collections off the apply path.
 *
 * Deleting or overwriting a hash, list, set or sorted set of a million
 * elements frees a million allocations: tens of milliseconds during which
 * the loop applies nothing and answers no one. Like Redis' lazyfree, the
 * keyspace hands an object that big to one background thread instead and
 * goes on; the object is already unreachable (the entry no longer points
 * to it) and its memory is no longer counted in the keyspace's estimate.
 * Small objects are freed at once: a queue round trip costs more.
 *
 * Thread-safe; the thread starts with the first object handed over. */
#ifndef CAIRN_KV_LAZYFREE_H
#define CAIRN_KV_LAZYFREE_H

#include <stddef.h>
#include <stdint.h>

/* Objects of at least this many estimated heap bytes go to the thread
 * (about 1,000 small elements; Redis counts 64 elements, cheaper to
 * judge there). */
#define KV_LAZYFREE_MIN_BYTES (64 * 1024)

typedef void (*kv_lazyfree_fn)(void *obj);

/* Have fn(obj) called on the background thread. */
void kv_lazyfree(kv_lazyfree_fn fn, void *obj);

/* Objects handed over and not freed yet (INFO's lazyfree_pending_objects),
 * and freed so far in the background (lazyfreed_objects). */
uint64_t kv_lazyfree_pending(void);
uint64_t kv_lazyfree_done(void);

/* Wait until every object handed over so far is freed (tests). */
void kv_lazyfree_drain(void);

#endif
