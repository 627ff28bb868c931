/* hll: Redis' HyperLogLog, held in a string (PFADD PFCOUNT PFMERGE;
 * issue 12).
 *
 * The representation is Redis' own, byte for byte, so that a sketch moves
 * between cairn and Redis (GET/SET, DUMP/RESTORE) and PFCOUNT answers what
 * Redis answers: a 16-byte header ("HYLL", the encoding, three unused
 * bytes, the cached cardinality little endian with its top bit meaning
 * "stale"), then 16384 registers of 6 bits (dense), or the sparse
 * run-length opcodes ZERO (00xxxxxx: 1-64 zero registers), XZERO (01xxxxxx
 * yyyyyyyy: up to 16384) and VAL (1vvvvvxx: a value 1-32 repeated 1-4
 * times). Elements hash with MurmurHash64A (seed 0xadc83b19): the low 14
 * bits pick the register, the run of zero bits above them + 1 is the
 * value. A sparse sketch becomes dense when a value passes 32 or it grows
 * past hll-sparse-max-bytes (3000 unless CONFIG SET), and is updated the way Redis updates
 * it (split the opcode, then merge equal neighbours within 5 opcodes), so
 * the bytes stay equal to Redis' after any sequence of adds. The
 * cardinality is Ertl's estimator ("New cardinality estimation algorithms
 * for HyperLogLog sketches", 2017), as Redis 5 and later compute it.
 *
 * Pure functions over a growable byte array; tests/unit/test_hll.c and
 * tests/integration/test_resp_hll.py (against redis-server). */
#ifndef CAIRN_KV_HLL_H
#define CAIRN_KV_HLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KV_HLL_REGISTERS 16384
#define KV_HLL_HEADER 16
#define KV_HLL_DENSE_BYTES (KV_HLL_HEADER + KV_HLL_REGISTERS * 6 / 8)
#define KV_HLL_SPARSE_MAX_BYTES 3000 /* Redis' hll-sparse-max-bytes default */

/* A sketch being changed: p is malloc'd, len bytes of it used. A sparse
 * one becomes dense past sparse_max bytes (hll-sparse-max-bytes, a
 * replicated limit: kv/limits.h; kv_hll_create sets Redis' default). */
typedef struct kv_hll {
    unsigned char *p;
    size_t len, cap;
    uint64_t sparse_max;
} kv_hll;

/* Whether a string is a sketch (Redis' check: the magic, a known
 * encoding, a dense one of the exact size). */
bool kv_hll_is_hll(const char *v, size_t len);
/* Whether a sketch (kv_hll_is_hll) is in the dense encoding. */
bool kv_hll_is_dense(const char *v);
/* A new, empty (sparse) sketch. */
void kv_hll_create(kv_hll *h);
/* Add an element: 1 when a register grew, 0 when none did, -1 when the
 * sketch is corrupt. */
int kv_hll_add(kv_hll *h, const char *ele, size_t len);
/* Mark the cached cardinality stale (after a change). */
void kv_hll_invalidate(kv_hll *h);
/* max[i] = max(max[i], register i) over the sketch's registers; false
 * when it is corrupt. */
bool kv_hll_merge_max(uint8_t max[KV_HLL_REGISTERS], const char *v, size_t len);
/* PFMERGE's write: every register raised to max[i] (dense first when
 * `dense`); false when the sketch is corrupt. */
bool kv_hll_raise(kv_hll *h, const uint8_t max[KV_HLL_REGISTERS], bool dense);
/* The cardinality of a sketch: its cached value when that is fresh.
 * false when it is corrupt. */
bool kv_hll_count(const char *v, size_t len, uint64_t *out);
/* The cardinality of raw registers (PFCOUNT of several keys). */
uint64_t kv_hll_count_registers(const uint8_t regs[KV_HLL_REGISTERS]);

#endif
