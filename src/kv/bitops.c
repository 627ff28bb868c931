#include "kv/bitops.h"

#include <string.h>

int kv_bit_get(const unsigned char *p, size_t len, uint64_t bit)
{
    uint64_t byte = bit >> 3;
    if (byte >= len) return 0;
    return (p[byte] >> (7 - (bit & 7))) & 1;
}

int kv_bit_set(unsigned char *p, uint64_t bit, int value)
{
    uint64_t byte = bit >> 3;
    unsigned mask = 1u << (7 - (bit & 7));
    int old = (p[byte] & mask) != 0;
    if (value)
        p[byte] = (unsigned char)(p[byte] | mask);
    else
        p[byte] = (unsigned char)(p[byte] & ~mask);
    return old;
}

/* byte b with only bits [from, to] of it (0 = its most significant) kept */
static unsigned bits__mask(unsigned from, unsigned to)
{
    return (0xffu >> from) & (0xffu << (7 - to)) & 0xffu;
}

uint64_t kv_bit_count(const unsigned char *p, uint64_t first, uint64_t last)
{
    uint64_t fb = first >> 3, lb = last >> 3;
    if (fb == lb) return (uint64_t)__builtin_popcount(p[fb] & bits__mask(first & 7, last & 7));
    uint64_t n = (uint64_t)__builtin_popcount(p[fb] & bits__mask(first & 7, 7));
    n += (uint64_t)__builtin_popcount(p[lb] & bits__mask(0, last & 7));
    uint64_t i = fb + 1;
    for (; i + 8 <= lb; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        n += (uint64_t)__builtin_popcountll(w);
    }
    for (; i < lb; i++) n += (uint64_t)__builtin_popcount(p[i]);
    return n;
}

/* the first bit equal to `bit` in byte b among its bits [from, to], or -1 */
static int bits__first_in_byte(unsigned b, unsigned from, unsigned to, int bit)
{
    if (!bit) b = ~b & 0xffu;
    b &= bits__mask(from, to);
    return b ? __builtin_clz(b) - (int)(8 * sizeof(unsigned) - 8) : -1;
}

int64_t kv_bit_pos(const unsigned char *p, uint64_t first, uint64_t last, int bit)
{
    uint64_t fb = first >> 3, lb = last >> 3;
    for (uint64_t i = fb; i <= lb;) {
        unsigned from = i == fb ? (unsigned)(first & 7) : 0;
        unsigned to = i == lb ? (unsigned)(last & 7) : 7;
        if (from == 0 && to == 7 && i + 8 <= lb) { /* whole words that cannot hold it */
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w == (bit ? 0 : UINT64_MAX)) {
                i += 8;
                continue;
            }
        }
        int at = bits__first_in_byte(p[i], from, to, bit);
        if (at >= 0) return (int64_t)(8 * i + (uint64_t)at);
        i++;
    }
    return -1;
}

void kv_bit_op(int op, unsigned char *dst, size_t len, const unsigned char *const *srcs,
               const size_t *lens, size_t n)
{
    for (size_t i = 0; i < len; i++) {
        unsigned v = i < lens[0] ? srcs[0][i] : 0;
        if (op == KV_BITOP_NOT) v = ~v;
        for (size_t k = 1; k < n; k++) {
            unsigned w = i < lens[k] ? srcs[k][i] : 0;
            if (op == KV_BITOP_AND)
                v &= w;
            else if (op == KV_BITOP_OR)
                v |= w;
            else
                v ^= w;
        }
        dst[i] = (unsigned char)v;
    }
}

/* ---- BITFIELD ------------------------------------------------------------------------ */

static void put64(char *out, uint64_t v)
{
    for (int i = 0; i < 8; i++) out[i] = (char)(v >> (8 * i));
}

static uint64_t get64(const char *in)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | (unsigned char)in[i];
    return v;
}

void kv_bitfield_op_encode(const kv_bitfield_op *op, char out[KV_BITFIELD_OP_BYTES])
{
    out[0] = (char)op->kind;
    out[1] = (char)op->overflow;
    out[2] = (char)op->is_signed;
    out[3] = (char)op->bits;
    put64(out + 4, op->offset);
    put64(out + 12, (uint64_t)op->value);
}

bool kv_bitfield_op_decode(const char *in, size_t len, kv_bitfield_op *op)
{
    if (len != KV_BITFIELD_OP_BYTES) return false;
    op->kind = (uint8_t)in[0];
    op->overflow = (uint8_t)in[1];
    op->is_signed = (uint8_t)in[2];
    op->bits = (uint8_t)in[3];
    op->offset = get64(in + 4);
    op->value = (int64_t)get64(in + 12);
    unsigned max_bits = op->is_signed ? 64 : 63;
    return op->kind <= KV_BF_INCRBY && op->overflow <= KV_BF_FAIL && op->is_signed <= 1 &&
           op->bits >= 1 && op->bits <= max_bits && op->offset <= UINT64_MAX - 64;
}

uint64_t kv_bitfield_op_end(const kv_bitfield_op *op)
{
    return (op->offset + op->bits + 7) >> 3;
}

/* the bits..bits+n of p as an unsigned number, most significant first */
static uint64_t bitfield__read(const unsigned char *p, size_t len, uint64_t offset, unsigned bits)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bits; i++) v = v << 1 | (uint64_t)kv_bit_get(p, len, offset + i);
    return v;
}

static void bitfield__write(unsigned char *p, uint64_t offset, unsigned bits, uint64_t v)
{
    for (unsigned i = 0; i < bits; i++) kv_bit_set(p, offset + i, (int)((v >> (bits - 1 - i)) & 1));
}

/* the low `bits` of v as a number of the field's type */
static int64_t bitfield__as_type(uint64_t v, unsigned bits, bool is_signed)
{
    if (bits < 64) v &= (UINT64_C(1) << bits) - 1;
    if (is_signed && bits < 64 && (v >> (bits - 1)) & 1) v |= UINT64_MAX << bits;
    return (int64_t)v;
}

bool kv_bitfield_run(unsigned char *p, size_t len, const kv_bitfield_op *op, int64_t *out)
{
    unsigned bits = op->bits;
    int64_t old = bitfield__as_type(bitfield__read(p, len, op->offset, bits), bits, op->is_signed);
    if (op->kind == KV_BF_GET) {
        *out = old;
        return true;
    }
    /* the exact result first; then what the field's range makes of it.
     * An unsigned SET takes its value as Redis does, as a 64-bit unsigned
     * number: -1 is above every range (SAT gives the maximum) */
    __int128 target;
    if (op->kind == KV_BF_SET)
        target = op->is_signed ? (__int128)op->value : (__int128)(uint64_t)op->value;
    else
        target = (__int128)old + op->value;
    __int128 min = op->is_signed ? -((__int128)1 << (bits - 1)) : 0;
    __int128 max = op->is_signed ? ((__int128)1 << (bits - 1)) - 1 : ((__int128)1 << bits) - 1;
    int64_t result;
    if (target >= min && target <= max) {
        result = (int64_t)target;
    } else if (op->overflow == KV_BF_FAIL) {
        return false;
    } else if (op->overflow == KV_BF_SAT) {
        result = (int64_t)(target > max ? max : min);
    } else {
        result = bitfield__as_type((uint64_t)target, bits, op->is_signed);
    }
    bitfield__write(p, op->offset, bits, (uint64_t)result);
    *out = op->kind == KV_BF_SET ? old : result;
    return true;
}
