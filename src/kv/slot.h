/* slot: which of the 16,384 hash slots a key belongs to, exactly as Redis
 * Cluster computes it: CRC16 (XMODEM: polynomial 0x1021, initial value 0,
 * no reflection) of the key, or of its hash tag, modulo 16384. The hash
 * tag is what lies between the first '{' and the first '}' after it, when
 * that is not empty: "{user1}.a" and "{user1}.b" share a slot, "a{}b" and
 * "{}x" hash whole. Partitioning (docs/design.md) routes by it; CLUSTER
 * KEYSLOT answers it. Pure, no state but a table built once. */
#ifndef CAIRN_KV_SLOT_H
#define CAIRN_KV_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define KV_SLOTS 16384

uint16_t kv_crc16(const void *p, size_t n);
unsigned kv_key_slot(const void *key, size_t len);

#endif
