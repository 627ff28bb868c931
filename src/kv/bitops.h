/* bitops: strings as bitmaps, the arithmetic of Redis' SETBIT GETBIT
 * BITCOUNT BITPOS BITOP and BITFIELD (issue 12).
 *
 * Bit 0 is the most significant bit of byte 0, as in Redis; bits past the
 * end of a string read as 0. Pure functions over byte arrays, shared by
 * apply (kv/store.c: the writes) and the front end (the reads), so that a
 * read on a follower and the write on the leader agree bit for bit.
 * Checked against redis-server by tests/integration/test_resp_bitmaps.py,
 * and by tests/unit/test_bitops.c against a bit-by-bit model. */
#ifndef CAIRN_KV_BITOPS_H
#define CAIRN_KV_BITOPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int kv_bit_get(const unsigned char *p, size_t len, uint64_t bit);
/* Set or clear a bit that lies inside p; returns its previous value. */
int kv_bit_set(unsigned char *p, uint64_t bit, int value);

/* The set bits among bits [first, last] (inside p). */
uint64_t kv_bit_count(const unsigned char *p, uint64_t first, uint64_t last);
/* The first bit equal to `bit` among [first, last] (inside p), or -1. */
int64_t kv_bit_pos(const unsigned char *p, uint64_t first, uint64_t last, int bit);

/* BITOP: dst (len bytes: the longest source) = op of the sources, the
 * shorter ones read as zero-padded. NOT takes one source. */
enum { KV_BITOP_AND, KV_BITOP_OR, KV_BITOP_XOR, KV_BITOP_NOT };
void kv_bit_op(int op, unsigned char *dst, size_t len, const unsigned char *const *srcs,
               const size_t *lens, size_t n);

/* One BITFIELD operation: an integer of `bits` bits (signed: 1..64,
 * unsigned: 1..63) at bit `offset`. */
enum { KV_BF_GET, KV_BF_SET, KV_BF_INCRBY };
enum { KV_BF_WRAP, KV_BF_SAT, KV_BF_FAIL };
typedef struct kv_bitfield_op {
    uint8_t kind;     /* KV_BF_GET, _SET, _INCRBY */
    uint8_t overflow; /* KV_BF_WRAP, _SAT, _FAIL (SET and INCRBY) */
    uint8_t is_signed;
    uint8_t bits;
    uint64_t offset;
    int64_t value; /* SET: the value; INCRBY: the increment */
} kv_bitfield_op;
#define KV_BITFIELD_OP_BYTES 20 /* its encoding in a log entry */
void kv_bitfield_op_encode(const kv_bitfield_op *op, char out[KV_BITFIELD_OP_BYTES]);
/* false when the bytes are not a valid operation */
bool kv_bitfield_op_decode(const char *in, size_t len, kv_bitfield_op *op);
/* The byte length a string needs for the operation to write it. */
uint64_t kv_bitfield_op_end(const kv_bitfield_op *op);
/* Run op on p (len bytes; a write needs kv_bitfield_op_end(op) <= len):
 * true with *out the reply (GET: the value; SET: the old value; INCRBY:
 * the new one), false when OVERFLOW FAIL held the write back (a null
 * reply). */
bool kv_bitfield_run(unsigned char *p, size_t len, const kv_bitfield_op *op, int64_t *out);

#endif
