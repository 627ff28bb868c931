/* transaction: MULTI/EXEC as one log entry (KV_OP_EXEC).
 *
 * A transaction is proposed whole, so it is applied whole or not at all,
 * through a crash or a leader change, and no other write comes between
 * its commands. Its arguments:
 *   args[0]                 a token the proposing node chose (may be empty):
 *                           how its own apply finds the client waiting for it
 *   args[1 .. 1 + 2a)       a watched keys, each followed by the revision
 *                           the client saw (u64, little-endian): the key's
 *                           mod_rev when it was watched, 0 if it was absent
 *   args[1 + 2a .. + b)     b steps: an encoded kv_command (never another
 *                           KV_OP_EXEC), or empty for a read step, which
 *                           changes nothing and is answered by the node
 *                           that proposed the transaction, at that point
 * Apply first compares every watched key's revision now (at now_ms, an
 * expired key being absent) with the one seen: any difference aborts the
 * transaction (result integer 0, nothing applied), as Redis' WATCH does;
 * else it applies the steps in order (integer 1). Each step is applied at
 * the transaction's now_ms and may fail on its own (a WRONGTYPE among them
 * fails that step only, as in Redis).
 *
 * The store's on_tx_step hook is told, on every node, first
 * KV_TX_BEGIN with the outcome, then each step with its result (NULL for a
 * read step): the node that proposed it formats the replies then, reading
 * the store between the steps. */
#ifndef CAIRN_KV_TRANSACTION_H
#define CAIRN_KV_TRANSACTION_H

#include <stddef.h>
#include <stdint.h>

#include "kv/command.h"
#include "kv/keyspace.h"

#define KV_TX_BEGIN (-1)
#define KV_TX_TOKEN_MAX 32

struct kv_store;
struct kv_result;

/* The revision WATCH records for key at now_ms: its mod_rev, 0 when it is
 * absent or expired. */
uint64_t kv_tx_watch_rev(kv_keyspace *ks, const char *key, size_t key_len, int64_t now_ms);

/* Apply a KV_OP_EXEC command (called by kv_store_apply). */
void kv_tx_apply(struct kv_store *s, const kv_command *cmd, struct kv_result *res);

#endif
