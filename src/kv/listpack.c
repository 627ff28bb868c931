/* listpack: the byte layouts are those of Redis' listpack.c, ziplist.c and
 * intset.c (read from their documentation and checked against bytes that
 * redis-server DUMPs: tests/integration/test_resp_dump.py). */
#include "kv/listpack.h"

#include <stdio.h>
#include <string.h>

#include "util/strconv.h"

#define LP_HEADER 6
#define ZL_HEADER 10
#define LP_COUNT_UNKNOWN 65535
#define LP_EOF 0xff

static uint32_t lp__u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t lp__uint_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* an n-byte two's complement little-endian integer, sign-extended */
static int64_t lp__int_le(const unsigned char *p, int n)
{
    uint64_t v = lp__uint_le(p, n);
    if (n < 8 && (v >> (8 * n - 1))) v |= ~(uint64_t)0 << (8 * n);
    return (int64_t)v;
}

/* The back length of an entry of l bytes (encoding and data), written so
 * that reading from its last byte backwards finds where the entry starts. */
static size_t lp__backlen(unsigned char *out, uint64_t l)
{
    size_t n = l <= 127 ? 1 : l < 16383 ? 2 : l < 2097151 ? 3 : l < 268435455 ? 4 : 5;
    /* big end first; every byte but the first carries the continuation bit */
    for (size_t i = 0; i < n; i++)
        out[n - 1 - i] = (unsigned char)(((l >> (7 * i)) & 127) | (i < n - 1 ? 128 : 0));
    return n;
}

/* ---- writer ---------------------------------------------------------------------------- */

void kv_lp_writer_init(kv_lp_writer *w)
{
    buf_init(&w->b);
    kv_lp_writer_reset(w);
}

void kv_lp_writer_close(kv_lp_writer *w)
{
    buf_close(&w->b);
}

void kv_lp_writer_reset(kv_lp_writer *w)
{
    buf_reset(&w->b);
    static const char header[LP_HEADER];
    buf_append(&w->b, header, LP_HEADER);
    w->count = 0;
}

static void lp__entry(kv_lp_writer *w, const unsigned char *enc, size_t enc_len, const char *data,
                      size_t len)
{
    unsigned char back[5];
    size_t nb = lp__backlen(back, enc_len + len);
    buf_append(&w->b, enc, enc_len);
    if (len) buf_append(&w->b, data, len);
    buf_append(&w->b, back, nb);
    w->count++;
}

void kv_lp_append_int(kv_lp_writer *w, int64_t v)
{
    unsigned char enc[9];
    size_t n;
    uint64_t u = (uint64_t)v;
    if (v >= 0 && v <= 127) {
        enc[0] = (unsigned char)v;
        n = 1;
    } else if (v >= -4096 && v <= 4095) {
        u &= 0x1fff;
        enc[0] = (unsigned char)(0xc0 | (u >> 8));
        enc[1] = (unsigned char)(u & 0xff);
        n = 2;
    } else {
        int bytes = v >= -32768 && v <= 32767          ? 2
                    : v >= -8388608 && v <= 8388607    ? 3
                    : v >= INT32_MIN && v <= INT32_MAX ? 4
                                                       : 8;
        enc[0] = bytes == 2 ? 0xf1 : bytes == 3 ? 0xf2 : bytes == 4 ? 0xf3 : 0xf4;
        for (int i = 0; i < bytes; i++) enc[1 + i] = (unsigned char)(u >> (8 * i));
        n = 1 + (size_t)bytes;
    }
    lp__entry(w, enc, n, NULL, 0);
}

void kv_lp_append(kv_lp_writer *w, const char *s, size_t len)
{
    int64_t v;
    if (strconv_parse_i64(s, len, &v)) {
        kv_lp_append_int(w, v);
        return;
    }
    unsigned char enc[5];
    size_t n;
    if (len < 64) {
        enc[0] = (unsigned char)(0x80 | len);
        n = 1;
    } else if (len < 4096) {
        enc[0] = (unsigned char)(0xe0 | (len >> 8));
        enc[1] = (unsigned char)(len & 0xff);
        n = 2;
    } else {
        enc[0] = 0xf0;
        for (int i = 0; i < 4; i++) enc[1 + i] = (unsigned char)((uint64_t)len >> (8 * i));
        n = 5;
    }
    lp__entry(w, enc, n, s, len);
}

const char *kv_lp_finish(kv_lp_writer *w, size_t *len)
{
    buf_append_char(&w->b, (char)LP_EOF);
    size_t total = w->b.len - w->b.off;
    unsigned char *h = (unsigned char *)w->b.data + w->b.off;
    for (int i = 0; i < 4; i++) h[i] = (unsigned char)((uint64_t)total >> (8 * i));
    uint32_t count = w->count < LP_COUNT_UNKNOWN ? w->count : LP_COUNT_UNKNOWN;
    h[4] = (unsigned char)(count & 0xff);
    h[5] = (unsigned char)(count >> 8);
    *len = total;
    return (const char *)h;
}

/* ---- readers --------------------------------------------------------------------------- */

bool kv_lp_iter_init(kv_lp_iter *it, const char *data, size_t len)
{
    const unsigned char *p = (const unsigned char *)data;
    if (len < LP_HEADER + 1 || lp__u32(p) != len || p[len - 1] != LP_EOF) return false;
    uint32_t count = (uint32_t)p[4] | (uint32_t)p[5] << 8;
    *it = (kv_lp_iter){.start = p,
                       .p = p + LP_HEADER,
                       .end = p + len - 1,
                       .count = count == LP_COUNT_UNKNOWN ? UINT32_MAX : count};
    return true;
}

bool kv_zl_iter_init(kv_lp_iter *it, const char *data, size_t len)
{
    const unsigned char *p = (const unsigned char *)data;
    if (len < ZL_HEADER + 1 || lp__u32(p) != len || p[len - 1] != LP_EOF) return false;
    uint32_t tail = lp__u32(p + 4);
    if (tail < ZL_HEADER || tail > len - 1) return false;
    uint32_t count = (uint32_t)p[8] | (uint32_t)p[9] << 8;
    *it = (kv_lp_iter){.start = p,
                       .p = p + ZL_HEADER,
                       .end = p + len - 1,
                       .count = count == LP_COUNT_UNKNOWN ? UINT32_MAX : count,
                       .ziplist = true};
    return true;
}

/* A listpack entry at it->p: its element and total size with back length. */
static int lp__next(kv_lp_iter *it, kv_lp_elem *e)
{
    const unsigned char *p = it->p;
    size_t room = (size_t)(it->end - p), head, data = 0;
    unsigned char b = p[0];
    *e = (kv_lp_elem){0};
    if (b < 0x80) {
        e->is_int = true;
        e->v = b;
        head = 1;
    } else if ((b & 0xc0) == 0x80) {
        head = 1;
        data = b & 0x3f;
    } else if ((b & 0xe0) == 0xc0) {
        if (room < 2) return -1;
        e->is_int = true;
        int64_t u = (int64_t)((b & 0x1f) << 8 | p[1]);
        e->v = u >= 4096 ? u - 8192 : u;
        head = 2;
    } else if ((b & 0xf0) == 0xe0) {
        if (room < 2) return -1;
        data = (size_t)(b & 0x0f) << 8 | p[1];
        head = 2;
    } else if (b == 0xf0) {
        if (room < 5) return -1;
        data = lp__u32(p + 1);
        head = 5;
    } else if (b >= 0xf1 && b <= 0xf4) {
        int bytes = b == 0xf1 ? 2 : b == 0xf2 ? 3 : b == 0xf3 ? 4 : 8;
        if (room < 1 + (size_t)bytes) return -1;
        e->is_int = true;
        e->v = lp__int_le(p + 1, bytes);
        head = 1 + (size_t)bytes;
    } else {
        return -1;
    }
    if (data > room || head + data > room) return -1;
    if (!e->is_int) {
        e->s = (const char *)p + head;
        e->len = data;
    }
    unsigned char back[5];
    size_t nb = lp__backlen(back, head + data);
    if (head + data + nb > room || memcmp(p + head + data, back, nb) != 0) return -1;
    it->p = p + head + data + nb;
    return 1;
}

/* A ziplist entry: prevlen (1 or 5 bytes), encoding, data. */
static int zl__next(kv_lp_iter *it, kv_lp_elem *e)
{
    const unsigned char *p = it->p;
    size_t room = (size_t)(it->end - p), pl, head, data = 0;
    size_t prev;
    if (p[0] < 254) {
        prev = p[0];
        pl = 1;
    } else {
        if (p[0] != 254 || room < 5) return -1;
        prev = lp__u32(p + 1);
        pl = 5;
    }
    if (prev != it->prev_len || room < pl + 1) return -1;
    const unsigned char *q = p + pl;
    unsigned char b = q[0];
    *e = (kv_lp_elem){0};
    switch (b >> 6) {
    case 0:
        head = 1;
        data = b & 0x3f;
        break;
    case 1:
        if (room < pl + 2) return -1;
        head = 2;
        data = (size_t)(b & 0x3f) << 8 | q[1];
        break;
    case 2:
        if (b != 0x80 || room < pl + 5) return -1;
        head = 5;
        data = (size_t)q[1] << 24 | (size_t)q[2] << 16 | (size_t)q[3] << 8 | q[4];
        break;
    default: {
        int bytes;
        if (b == 0xc0)
            bytes = 2;
        else if (b == 0xd0)
            bytes = 4;
        else if (b == 0xe0)
            bytes = 8;
        else if (b == 0xf0)
            bytes = 3;
        else if (b == 0xfe)
            bytes = 1;
        else if (b >= 0xf1 && b <= 0xfd)
            bytes = 0;
        else
            return -1;
        if (room < pl + 1 + (size_t)bytes) return -1;
        e->is_int = true;
        e->v = bytes ? lp__int_le(q + 1, bytes) : (int64_t)(b & 0x0f) - 1;
        head = 1 + (size_t)bytes;
    }
    }
    if (data > room || pl + head + data > room) return -1;
    if (!e->is_int) {
        e->s = (const char *)q + head;
        e->len = data;
    }
    it->prev_len = pl + head + data;
    it->p = p + pl + head + data;
    return 1;
}

int kv_lp_iter_next(kv_lp_iter *it, kv_lp_elem *e)
{
    if (it->p == it->end) {
        if (it->count != UINT32_MAX && it->seen != it->count) return -1;
        /* a ziplist's tail offset names its last entry */
        if (it->ziplist &&
            lp__u32(it->start + 4) !=
                (it->seen ? (uint32_t)(it->end - it->start) - (uint32_t)it->prev_len : ZL_HEADER))
            return -1;
        return 0;
    }
    if (it->seen == UINT32_MAX) return -1;
    int r = it->ziplist ? zl__next(it, e) : lp__next(it, e);
    if (r == 1) it->seen++;
    return r;
}

const char *kv_lp_elem_str(const kv_lp_elem *e, char *tmp, size_t *len)
{
    if (!e->is_int) {
        *len = e->len;
        return e->s;
    }
    *len = (size_t)snprintf(tmp, 21, "%lld", (long long)e->v);
    return tmp;
}

bool kv_intset_check(const char *data, size_t len, uint32_t *count)
{
    const unsigned char *p = (const unsigned char *)data;
    if (len < 8) return false;
    uint32_t width = lp__u32(p), n = lp__u32(p + 4);
    if (width != 2 && width != 4 && width != 8) return false;
    if ((uint64_t)n * width + 8 != len) return false;
    for (uint32_t i = 1; i < n; i++)
        if (kv_intset_get(data, i - 1) >= kv_intset_get(data, i)) return false;
    *count = n;
    return true;
}

int64_t kv_intset_get(const char *data, uint32_t i)
{
    const unsigned char *p = (const unsigned char *)data;
    int width = (int)lp__u32(p);
    return lp__int_le(p + 8 + (size_t)i * (size_t)width, width);
}
