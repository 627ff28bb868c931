#include "kv/transaction.h"

#include <stdlib.h>

#include "kv/store.h"
#include "util/alloc.h"

static uint64_t tx__get_u64(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | u[i];
    return v;
}

uint64_t kv_tx_watch_rev(kv_keyspace *ks, const char *key, size_t key_len, int64_t now_ms)
{
    kv_entry *e = kv_keyspace_find(ks, key, key_len);
    return e && !kv_entry_expired(e, now_ms) ? e->mod_rev : 0;
}

static bool tx__well_formed(const kv_command *cmd)
{
    if (cmd->a < 0 || cmd->b < 0 || cmd->nargs < 1) return false;
    if ((uint64_t)cmd->a > KV_COMMAND_MAX_ARGS || (uint64_t)cmd->b > KV_COMMAND_MAX_ARGS)
        return false;
    if ((uint64_t)cmd->nargs != 1 + 2 * (uint64_t)cmd->a + (uint64_t)cmd->b) return false;
    if (cmd->args[0].len > KV_TX_TOKEN_MAX) return false;
    for (int64_t i = 0; i < cmd->a; i++)
        if (cmd->args[2 + 2 * i].len != 8) return false;
    return true;
}

static bool tx__watches_hold(kv_store *s, const kv_command *cmd)
{
    for (int64_t i = 0; i < cmd->a; i++) {
        kv_slice key = cmd->args[1 + 2 * i];
        uint64_t seen = tx__get_u64(cmd->args[2 + 2 * i].ptr);
        if (kv_tx_watch_rev(&s->ks, key.ptr, key.len, cmd->now_ms) != seen) return false;
    }
    return true;
}

/* Decode step i into *sub; false when it is not a command a transaction
 * may hold (undecodable, or a transaction itself). */
static bool tx__decode_step(kv_store *s, kv_slice step, kv_command *sub)
{
    const char *why = NULL;
    uint32_t need = 0;
    int rv = kv_command_decode(step.ptr, step.len, sub, s->tx_args, s->tx_args_cap, &need, &why);
    if (rv == -2) {
        s->tx_args = xrealloc(s->tx_args, need * sizeof(kv_slice));
        s->tx_args_cap = need;
        rv = kv_command_decode(step.ptr, step.len, sub, s->tx_args, s->tx_args_cap, &need, &why);
    }
    return rv == 0 && sub->op != KV_OP_EXEC;
}

void kv_tx_apply(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (!tx__well_formed(cmd)) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    bool run = tx__watches_hold(s, cmd);
    kv_result begin = {.status = KV_OK, .integer = run, .value = "", .revision = s->revision};
    if (s->on_tx_step) s->on_tx_step(s->on_tx_step_ctx, cmd, KV_TX_BEGIN, &begin);
    res->integer = run;
    if (!run) return;
    const kv_slice *steps = &cmd->args[1 + 2 * cmd->a];
    for (int64_t i = 0; i < cmd->b; i++) {
        if (steps[i].len == 0) { /* a read: answered by the proposer, here */
            if (s->on_tx_step) s->on_tx_step(s->on_tx_step_ctx, cmd, i, NULL);
            continue;
        }
        kv_command sub;
        kv_result step_res;
        if (tx__decode_step(s, steps[i], &sub)) {
            /* a step is part of the transaction's entry: its time, no
             * origin of its own (no result is looked up for it), and no
             * idempotency key (the transaction is the unit) */
            sub.now_ms = cmd->now_ms;
            sub.origin = 0;
            sub.seq = 0;
            sub.flags &= (uint16_t)~KV_FLAG_IDEMPOTENT;
            kv_store_apply(s, &sub, &step_res);
        } else {
            step_res =
                (kv_result){.status = KV_ERR_MALFORMED, .value = "", .revision = s->revision};
        }
        if (s->on_tx_step) s->on_tx_step(s->on_tx_step_ctx, cmd, i, &step_res);
    }
}
