/* overlay: a private store in front of the real one, for running a script.
 *
 * A Lua script must see its own writes as it goes, yet the real store
 * changes only by applying log entries, on every node alike. So a script
 * runs against an overlay: a scratch kv_store that starts empty and faults
 * each key in from the base store the first time anything looks it up (a
 * deep copy of its value, at the script's time). Writes apply to the
 * scratch store only, and are recorded, encoded, as the overlay's effects.
 *
 * Every key looked up is remembered with the revision the base store had
 * for it (its mod_rev, 0 when absent or expired): proposed with the effects
 * as the watches of one KV_OP_EXEC (kv/transaction.h), they make apply
 * refuse the effects if any of those keys changed since, and the script is
 * run again. Followers never run Lua; a script reading the clock or random
 * numbers cannot make replicas diverge.
 *
 * Commands that walk the whole keyspace (KEYS, SCAN, DBSIZE, RANDOMKEY,
 * FLUSHALL) cannot run on an overlay: it holds only the keys faulted in. */
#ifndef CAIRN_KV_OVERLAY_H
#define CAIRN_KV_OVERLAY_H

#include <stddef.h>
#include <stdint.h>

#include "kv/store.h"
#include "util/buf.h"

typedef struct kv_overlay {
    kv_store store; /* what the script sees and changes */
    kv_store *base;
    int64_t now_ms;     /* the script's time: reads and writes judge expiry at it */
    kv_keyspace seen;   /* every key looked up; its mod_rev: the base's revision */
    buf effects;        /* the commands applied, encoded back to back */
    size_t *effect_end; /* end offset of each */
    size_t n_effects, cap_effects;
} kv_overlay;

void kv_overlay_init(kv_overlay *o, kv_store *base, int64_t now_ms);
void kv_overlay_close(kv_overlay *o);
/* Start again on base at now_ms, keeping the allocations (a kv_store is
 * large to initialise: scripts reuse one overlay). */
void kv_overlay_reset(kv_overlay *o, kv_store *base, int64_t now_ms);
/* Drop what the overlay holds (faulted keys, effects). */
void kv_overlay_clear(kv_overlay *o);

/* Apply a write to the scratch store at the overlay's time, and record it
 * (origin and seq cleared: the effects are steps of one entry). */
void kv_overlay_apply(kv_overlay *o, const kv_command *cmd, kv_result *res);

/* Effect i, encoded (a kv_command). */
kv_slice kv_overlay_effect(const kv_overlay *o, size_t i);

/* The keys looked up, in key order: start with kv_keyspace_first(&o->seen),
 * go on with kv_keyspace_next; each one's base revision: */
uint64_t kv_overlay_seen_rev(const kv_entry *seen);

#endif
