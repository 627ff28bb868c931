/* resp_cmd_bitmaps: strings as bitmaps (issue 12): SETBIT GETBIT BITCOUNT
 * BITPOS BITOP BITFIELD BITFIELD_RO.
 *
 * The writes are one kv command each (KV_OP_SETBIT, BITOP, BITFIELD:
 * kv/store.c applies them with kv/bitops.h); the reads run on the local
 * store once the read is safe, with the same bit arithmetic. A BITFIELD of
 * GETs only is a read, as in Redis. Redis' proto-max-bulk-len is cairn's
 * --max-value-bytes: a bit offset past it is refused with Redis' error.
 * Argument checks, their order, error texts and reply types follow Redis
 * 7.0, checked against redis-server by
 * tests/integration/test_resp_bitmaps.py. */
#include <stdlib.h>
#include <string.h>

#include "api/resp_internal.h"
#include "kv/bitops.h"
#include "util/alloc.h"
#include "util/strconv.h"

static kv_slice bits__arg(const resp_req *req, size_t i)
{
    return (kv_slice){req->argv[i].ptr, req->argv[i].len};
}

static kv_entry *bits__lookup(resp_req *req, bool *wrong)
{
    return resp_req_lookup_typed(req, &req->argv[1], KV_TYPE_STRING, wrong);
}

/* A bit offset as Redis reads one: "#n" counts fields of `bits` bits
 * (BITFIELD only, bits > 0); the byte it falls in must be under the value
 * limit. False after replying the error. */
static bool bits__offset_arg(resp_req *req, const resp_arg *v, unsigned bits, uint64_t *out)
{
    bool hash = bits > 0 && v->len > 0 && v->ptr[0] == '#';
    int64_t off;
    uint64_t max = req->a->cfg->max_value_bytes;
    if (!strconv_parse_i64(v->ptr + hash, v->len - hash, &off) ||
        (hash && __builtin_mul_overflow(off, (int64_t)bits, &off)) || off < 0 ||
        (uint64_t)off >> 3 >= max) {
        resp_req_error(req, "ERR bit offset is not an integer or out of range");
        return false;
    }
    *out = (uint64_t)off;
    return true;
}

/* ---- SETBIT GETBIT ------------------------------------------------------------- */

static void bits__setbit(resp_req *req)
{
    uint64_t off;
    if (!bits__offset_arg(req, &req->argv[2], 0, &off)) return;
    const resp_arg *v = &req->argv[3];
    int64_t on;
    if (!strconv_parse_i64(v->ptr, v->len, &on) || (on != 0 && on != 1)) {
        resp_req_error(req, "ERR bit is not an integer or out of range");
        return;
    }
    kv_slice args[2] = {bits__arg(req, 1), {on ? "1" : "0", 1}};
    kv_command cmd = {.op = KV_OP_SETBIT,
                      .nargs = 2,
                      .args = args,
                      .a = (int64_t)off,
                      .b = (int64_t)req->a->cfg->max_value_bytes};
    resp_req_propose(req, &cmd, resp_reply_integer);
}

static void bits__getbit_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = bits__lookup(req, &wrong);
    if (wrong) return;
    resp_write_integer(
        &req->reply,
        e ? kv_bit_get((const unsigned char *)e->value, e->value_len, (uint64_t)req->n[0]) : 0);
}

static void bits__getbit(resp_req *req)
{
    uint64_t off;
    if (!bits__offset_arg(req, &req->argv[2], 0, &off)) return;
    req->n[0] = (int64_t)off;
    resp_req_read(req, bits__getbit_ready);
}

/* ---- BITCOUNT BITPOS ------------------------------------------------------------ */

/* The bit range [*first, *last] of start/end in argv[at], argv[at + 1]
 * (the end may be absent: the string's end) and an optional BYTE|BIT
 * after them, over a string of len bytes, clipped as GETRANGE clips
 * (BITCOUNT: `reversed_empty`, see resp_format_range_reversed). 0: a
 * range; 1: empty; -1: the error was replied. */
static int bits__range_args(resp_req *req, size_t at, size_t len, bool reversed_empty,
                            bool *end_given, uint64_t *first, uint64_t *last)
{
    int64_t start = 0, end = -1;
    bool in_bits = false;
    *end_given = false;
    if (at < req->argc) {
        if (!resp_req_int_arg(req, &req->argv[at], &start)) return -1;
        if (at + 1 < req->argc) {
            if (at + 2 < req->argc) {
                if (resp_format_arg_is(&req->argv[at + 2], "bit")) {
                    in_bits = true;
                } else if (!resp_format_arg_is(&req->argv[at + 2], "byte")) {
                    resp_req_error_syntax(req);
                    return -1;
                }
            }
            if (!resp_req_int_arg(req, &req->argv[at + 1], &end)) return -1;
            *end_given = true;
        }
    }
    if (reversed_empty && resp_format_range_reversed(start, end)) return 1;
    size_t from, count;
    resp_format_range(in_bits ? (int64_t)len * 8 : (int64_t)len, start, end, &from, &count);
    if (!count) return 1;
    *first = in_bits ? from : from * 8;
    *last = in_bits ? from + count - 1 : (from + count) * 8 - 1;
    return 0;
}

static void bits__bitcount_ready(resp_req *req)
{
    bool wrong;
    kv_entry *e = bits__lookup(req, &wrong);
    if (wrong) return;
    if (!e) { /* Redis 7.0 answers before it reads the range */
        resp_write_integer(&req->reply, 0);
        return;
    }
    if (req->argc == 3 || req->argc > 5) {
        resp_req_error_syntax(req);
        return;
    }
    bool end_given;
    uint64_t first, last;
    int r = bits__range_args(req, 2, e->value_len, true, &end_given, &first, &last);
    if (r < 0) return;
    resp_write_integer(
        &req->reply, r ? 0 : (long long)kv_bit_count((const unsigned char *)e->value, first, last));
}

static void bits__bitcount(resp_req *req)
{
    resp_req_read(req, bits__bitcount_ready);
}

static void bits__bitpos_ready(resp_req *req)
{
    int bit = (int)req->n[0];
    bool wrong;
    kv_entry *e = bits__lookup(req, &wrong);
    if (wrong) return;
    if (!e) { /* an endless run of zeroes */
        resp_write_integer(&req->reply, bit ? -1 : 0);
        return;
    }
    if (req->argc > 6) {
        resp_req_error_syntax(req);
        return;
    }
    bool end_given;
    uint64_t first, last;
    int r = bits__range_args(req, 3, e->value_len, false, &end_given, &first, &last);
    if (r < 0) return;
    int64_t pos = r ? -1 : kv_bit_pos((const unsigned char *)e->value, first, last, bit);
    /* no clear bit in the string: without an end, the zeroes that follow
     * it count, as in Redis */
    if (!r && pos < 0 && !bit && !end_given) pos = (int64_t)last + 1;
    resp_write_integer(&req->reply, pos);
}

static void bits__bitpos(resp_req *req)
{
    if (!resp_req_int_arg(req, &req->argv[2], &req->n[0])) return;
    if (req->n[0] != 0 && req->n[0] != 1) {
        resp_req_error(req, "ERR The bit argument must be 1 or 0.");
        return;
    }
    resp_req_read(req, bits__bitpos_ready);
}

/* ---- BITOP ------------------------------------------------------------------------ */

static void bits__bitop(resp_req *req)
{
    static const char *const ops[] = {"and", "or", "xor", "not"};
    int op = -1;
    for (int i = 0; i < 4; i++)
        if (resp_format_arg_is(&req->argv[1], ops[i])) op = i;
    if (op < 0) {
        resp_req_error_syntax(req);
        return;
    }
    if (op == KV_BITOP_NOT && req->argc != 4) {
        resp_req_error(req, "ERR BITOP NOT must be called with a single source key.");
        return;
    }
    size_t n = req->argc - 2;
    kv_slice *args = xcalloc(n, sizeof(*args));
    for (size_t i = 0; i < n; i++) args[i] = bits__arg(req, 2 + i);
    kv_command cmd = {.op = KV_OP_BITOP, .a = op, .nargs = (uint32_t)n, .args = args};
    resp_req_propose(req, &cmd, resp_reply_integer);
    free(args);
}

/* ---- BITFIELD ------------------------------------------------------------------- */

/* The operations of a BITFIELD (into ops, when given: room for argc / 3);
 * false after replying the error. *writes: a SET or INCRBY is among them. */
static bool bits__bitfield_ops(resp_req *req, kv_bitfield_op *ops, size_t *n, bool *writes)
{
    uint8_t overflow = KV_BF_WRAP;
    *n = 0;
    *writes = false;
    for (size_t j = 2; j < req->argc; j++) {
        size_t left = req->argc - j - 1;
        const resp_arg *sub = &req->argv[j];
        kv_bitfield_op op = {.overflow = overflow};
        if (resp_format_arg_is(sub, "get") && left >= 2) {
            op.kind = KV_BF_GET;
        } else if (resp_format_arg_is(sub, "set") && left >= 3) {
            op.kind = KV_BF_SET;
        } else if (resp_format_arg_is(sub, "incrby") && left >= 3) {
            op.kind = KV_BF_INCRBY;
        } else if (resp_format_arg_is(sub, "overflow") && left >= 1) {
            const resp_arg *t = &req->argv[++j];
            if (resp_format_arg_is(t, "wrap")) {
                overflow = KV_BF_WRAP;
            } else if (resp_format_arg_is(t, "sat")) {
                overflow = KV_BF_SAT;
            } else if (resp_format_arg_is(t, "fail")) {
                overflow = KV_BF_FAIL;
            } else {
                resp_req_error(req, "ERR Invalid OVERFLOW type specified");
                return false;
            }
            continue;
        } else {
            resp_req_error_syntax(req);
            return false;
        }
        const resp_arg *type = &req->argv[j + 1];
        int64_t bits = 0;
        op.is_signed = type->len > 0 && type->ptr[0] == 'i';
        if (type->len < 2 || (type->ptr[0] != 'i' && type->ptr[0] != 'u') ||
            !strconv_parse_i64(type->ptr + 1, type->len - 1, &bits) || bits < 1 ||
            bits > (op.is_signed ? 64 : 63)) {
            resp_req_error(req, "ERR Invalid bitfield type. Use something like i16 u8. Note that "
                                "u64 is not supported but i64 is.");
            return false;
        }
        op.bits = (uint8_t)bits;
        if (!bits__offset_arg(req, &req->argv[j + 2], op.bits, &op.offset)) return false;
        if (op.kind != KV_BF_GET) {
            *writes = true;
            if (!resp_req_int_arg(req, &req->argv[j + 3], &op.value)) return false;
        }
        if (ops) ops[*n] = op;
        (*n)++;
        j += op.kind == KV_BF_GET ? 2 : 3;
    }
    return true;
}

/* [value or null ...] of a write's result */
static void bits__reply_bitfield(resp_req *req, const kv_result *res)
{
    resp_write_array(&req->reply, (size_t)res->integer);
    for (size_t i = 0; i + 9 <= res->value_len; i += 9) {
        const unsigned char *p = (const unsigned char *)res->value + i;
        uint64_t v = 0;
        for (int k = 7; k >= 0; k--) v = v << 8 | p[1 + k];
        if (p[0])
            resp_write_integer(&req->reply, (long long)(int64_t)v);
        else
            resp_req_null(req);
    }
}

static void bits__bitfield_ready(resp_req *req)
{
    bool wrong, writes;
    kv_entry *e = bits__lookup(req, &wrong);
    if (wrong) return;
    size_t n;
    kv_bitfield_op *ops = xcalloc(req->argc / 3 + 1, sizeof(*ops));
    bits__bitfield_ops(req, ops, &n, &writes); /* checked before the read */
    resp_write_array(&req->reply, n);
    for (size_t i = 0; i < n; i++) {
        int64_t v;
        kv_bitfield_run(e ? (unsigned char *)e->value : NULL, e ? e->value_len : 0, &ops[i], &v);
        resp_write_integer(&req->reply, v);
    }
    free(ops);
}

static void bits__bitfield_generic(resp_req *req, bool read_only)
{
    size_t n;
    bool writes;
    if (!bits__bitfield_ops(req, NULL, &n, &writes)) return;
    if (!writes) {
        resp_req_read(req, bits__bitfield_ready);
        return;
    }
    if (read_only) {
        resp_req_error(req, "ERR BITFIELD_RO only supports the GET subcommand");
        return;
    }
    kv_bitfield_op *ops = xcalloc(n, sizeof(*ops));
    bits__bitfield_ops(req, ops, &n, &writes);
    kv_slice *args = xcalloc(n + 1, sizeof(*args));
    char *enc = xmalloc(n * KV_BITFIELD_OP_BYTES);
    args[0] = bits__arg(req, 1);
    for (size_t i = 0; i < n; i++) {
        kv_bitfield_op_encode(&ops[i], enc + i * KV_BITFIELD_OP_BYTES);
        args[1 + i] = (kv_slice){enc + i * KV_BITFIELD_OP_BYTES, KV_BITFIELD_OP_BYTES};
    }
    /* the highest write may reach past the limit by a field's bytes, as
     * in Redis (which checks only where it starts) */
    kv_command cmd = {.op = KV_OP_BITFIELD,
                      .nargs = (uint32_t)(n + 1),
                      .args = args,
                      .b = (int64_t)req->a->cfg->max_value_bytes + 8};
    resp_req_propose(req, &cmd, bits__reply_bitfield);
    free(enc);
    free(args);
    free(ops);
}

static void bits__bitfield(resp_req *req)
{
    bits__bitfield_generic(req, false);
}

static void bits__bitfield_ro(resp_req *req)
{
    bits__bitfield_generic(req, true);
}

/* ---- the table ------------------------------------------------------------------ */

#define W RESP_CMD_WRITE
#define R RESP_CMD_READONLY
#define D RESP_CMD_DENYOOM
#define F RESP_CMD_FAST

const resp_cmd resp_cmds_bitmaps[] = {
    {"setbit", bits__setbit, 4, W | D, 1, 1, 1, "bitmap", "2.2.0", "O(1)",
     "Set or clear the bit at an offset of a string", "key offset value"},
    {"getbit", bits__getbit, 3, R | F, 1, 1, 1, "bitmap", "2.2.0", "O(1)",
     "Return the bit at an offset of a string", "key offset"},
    {"bitcount", bits__bitcount, -2, R, 1, 1, 1, "bitmap", "2.6.0", "O(N)",
     "Count the set bits of a string", "key [start end [BYTE|BIT]]"},
    {"bitpos", bits__bitpos, -3, R, 1, 1, 1, "bitmap", "2.8.7", "O(N)",
     "Find the first set or clear bit of a string", "key bit [start [end [BYTE|BIT]]]"},
    {"bitop", bits__bitop, -4, W | D, 2, -1, 1, "bitmap", "2.6.0", "O(N)",
     "Store the bitwise AND, OR, XOR or NOT of strings", "operation destkey key [key ...]"},
    {"bitfield", bits__bitfield, -2, W | D | RESP_CMD_MAY_READ, 1, 1, 1, "bitmap", "3.2.0", "O(1)",
     "Read and write integers of any width at any bit offset of a string",
     "key [GET encoding offset | [OVERFLOW WRAP|SAT|FAIL] SET encoding offset value | INCRBY "
     "encoding offset increment ...]"},
    {"bitfield_ro", bits__bitfield_ro, -2, R | F, 1, 1, 1, "bitmap", "6.0.0", "O(1)",
     "Read integers of any width at any bit offset of a string",
     "key [GET encoding offset [GET encoding offset ...]]"},
};
const size_t resp_cmds_bitmaps_count = sizeof(resp_cmds_bitmaps) / sizeof(resp_cmds_bitmaps[0]);
