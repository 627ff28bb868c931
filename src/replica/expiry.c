/* Active expiry, decided by the leader through the log. */
#include <stdint.h>
#include <stdlib.h>

#include "replica/replica_internal.h"
#include "util/clock.h"

#define EXPIRY_SCAN_BUCKETS 1024 /* hash buckets looked at per expiry cycle */
#define EXPIRY_MAX_KEYS 256      /* keys per EXPIRE_KEYS command */

typedef struct expiry_scan {
    replica *r;
    int64_t now_ms;
    size_t found;
    kv_slice *keys;
} expiry_scan;

static void replica__expiry_visit(void *ctx, kv_entry *e)
{
    expiry_scan *s = ctx;
    if (s->found >= EXPIRY_MAX_KEYS || !kv_entry_expired(e, s->now_ms)) return;
    buf *b = &s->r->expiry_keys;
    /* offsets now, pointers later: the buffer may move while filling */
    s->keys[s->found].ptr = (const char *)(uintptr_t)(b->len);
    s->keys[s->found].len = e->key_len;
    buf_append(b, kv_entry_key(e), e->key_len);
    s->found++;
}

/* Active expiry, as Redis' activeExpireCycle: look at a bounded slice of the
 * keyspace per cycle and reclaim what has expired. Only the leader decides
 * (through the log), so every node deletes the same keys at the same
 * point; followers just hide expired keys until then. */
void replica__expiry_cycle(replica *r)
{
    int64_t now = replica__mono_ms(r);
    if (now < r->expiry_next_ms) return;
    r->expiry_next_ms = now + (int64_t)(r->cfg->expiry_interval * 1000);
    if (r->store->ks.volatile_count == 0 || r->expiry_inflight) return;
    if (r->durable && !(raft_state(r->raft) == RAFT_LEADER && r->leader_ready)) return;

    kv_slice keys[EXPIRY_MAX_KEYS];
    expiry_scan s = {.r = r, .now_ms = replica__wall_ms(r), .keys = keys};
    buf_reset(&r->expiry_keys);
    /* one scan step is one hash bucket; stop after a bounded number of
     * buckets, at the end of a full pass, or with a full batch */
    unsigned buckets = 0;
    do {
        r->expiry_cursor =
            kv_keyspace_scan(&r->store->ks, r->expiry_cursor, replica__expiry_visit, &s);
    } while (r->expiry_cursor && ++buckets < EXPIRY_SCAN_BUCKETS && s.found < EXPIRY_MAX_KEYS);
    metrics_counter_add(r->m_expiry_cycles, 1);
    if (!s.found) return;
    for (size_t i = 0; i < s.found; i++) keys[i].ptr = r->expiry_keys.data + (uintptr_t)keys[i].ptr;
    kv_command cmd = {
        .op = KV_OP_EXPIRE_KEYS, .now_ms = s.now_ms, .nargs = (uint32_t)s.found, .args = keys};
    if (!r->durable) {
        kv_result res;
        kv_store_apply(r->store, &cmd, &res);
        return;
    }
    replica_op *op = replica_op_new(r, NULL, OP_PROPOSE, 3600);
    op->internal_expiry = true;
    if (replica__submit(r, op, &cmd) != REPLICA_OK) {
        free(op);
        return;
    }
    r->expiry_inflight = true;
}
