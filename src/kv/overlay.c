/* overlay: see overlay.h. */
#include "kv/overlay.h"

#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

static kv_entry *overlay__miss(void *ctx, kv_keyspace *ks, const char *key, size_t key_len)
{
    kv_overlay *o = ctx;
    if (kv_keyspace_find(&o->seen, key, key_len)) return NULL; /* absent, or deleted here */
    kv_entry *b = kv_store_get(o->base, key, key_len, o->now_ms);
    /* the base's revision rides in the seen entry's own mod_rev: no value */
    kv_keyspace_insert(&o->seen, key, key_len, NULL, 0)->mod_rev = b ? b->mod_rev : 0;
    if (!b) return NULL;
    ks->on_miss = NULL; /* the insert below must not fault again */
    kv_entry *e = kv_keyspace_insert(ks, key, key_len, NULL, 0);
    kv_store_copy_value(&o->store, b, e);
    kv_keyspace_set_expire(ks, e, b->expire_ms);
    e->create_rev = b->create_rev;
    e->mod_rev = b->mod_rev;
    e->version = b->version;
    e->lru = b->lru;
    ks->on_miss = overlay__miss;
    return e;
}

void kv_overlay_init(kv_overlay *o, kv_store *base, int64_t now_ms)
{
    memset(o, 0, sizeof(*o));
    kv_store_init(&o->store, base->ks.seed ^ 0x9e3779b97f4a7c15ull);
    o->store.ks.limits = base->ks.limits;
    o->store.revision = base->revision;
    o->store.ks.on_miss = overlay__miss;
    o->store.ks.on_miss_ctx = o;
    kv_keyspace_init(&o->seen, base->ks.seed);
    o->base = base;
    o->now_ms = now_ms;
    buf_init(&o->effects);
}

void kv_overlay_reset(kv_overlay *o, kv_store *base, int64_t now_ms)
{
    kv_overlay_clear(o);
    o->store.ks.limits = base->ks.limits;
    o->store.revision = base->revision;
    o->base = base;
    o->now_ms = now_ms;
}

void kv_overlay_clear(kv_overlay *o)
{
    o->store.ks.on_miss = NULL;
    kv_keyspace_empty(&o->store.ks);
    o->store.ks.on_miss = overlay__miss;
    kv_keyspace_empty(&o->seen);
    buf_reset(&o->effects);
    o->n_effects = 0;
}

void kv_overlay_close(kv_overlay *o)
{
    o->store.ks.on_miss = NULL;
    kv_store_close(&o->store);
    kv_keyspace_close(&o->seen);
    buf_close(&o->effects);
    free(o->effect_end);
    memset(o, 0, sizeof(*o));
}

void kv_overlay_apply(kv_overlay *o, const kv_command *cmd, kv_result *res)
{
    kv_command c = *cmd;
    c.origin = c.seq = 0;
    c.now_ms = o->now_ms;
    kv_store_apply(&o->store, &c, res);
    if (o->n_effects == o->cap_effects) {
        o->cap_effects = o->cap_effects ? 2 * o->cap_effects : 8;
        o->effect_end = xrealloc(o->effect_end, o->cap_effects * sizeof(*o->effect_end));
    }
    kv_command_encode(&c, &o->effects);
    o->effect_end[o->n_effects++] = o->effects.len;
}

kv_slice kv_overlay_effect(const kv_overlay *o, size_t i)
{
    size_t from = i ? o->effect_end[i - 1] : 0;
    return (kv_slice){o->effects.data + from, o->effect_end[i] - from};
}

uint64_t kv_overlay_seen_rev(const kv_entry *seen)
{
    return seen->mod_rev;
}
