/* packed: the element format of cairn's own packed arrays (list nodes,
 * listpack-encoded hashes and sets): an element's length as LEB128 (7 bits
 * a byte, low first: one byte under 128, as most elements are), then its
 * bytes. Redis' listpack spends 1-5 bytes before an element and 1-5 after;
 * a fixed u32 length cost cairn 10-20% more memory than Redis on
 * collections of short elements. These arrays never leave the process
 * (snapshots and DUMP have their own layouts), so the format is free to
 * change with the code. */
#ifndef CAIRN_KV_PACKED_H
#define CAIRN_KV_PACKED_H

#include <stdint.h>
#include <string.h>

#include "kv/command.h"

/* An unsigned LEB128 number: its size, writing it, reading it (the
 * caller knows p holds a well-formed one); each returns bytes. */
static inline uint32_t kv_packed_uint_size(uint64_t v)
{
    uint32_t n = 1;
    while (v >= 128) {
        v >>= 7;
        n++;
    }
    return n;
}

static inline uint32_t kv_packed_put_uint(char *p, uint64_t v)
{
    uint32_t n = 0;
    while (v >= 128) {
        p[n++] = (char)((v & 127) | 128);
        v >>= 7;
    }
    p[n++] = (char)v;
    return n;
}

static inline uint32_t kv_packed_get_uint(const char *p, uint64_t *v)
{
    const unsigned char *u = (const unsigned char *)p;
    uint64_t x = 0;
    uint32_t n = 0;
    int shift = 0;
    do {
        x |= (uint64_t)(u[n] & 127) << shift;
        shift += 7;
    } while (u[n++] & 128);
    *v = x;
    return n;
}

/* Bytes of the length prefix of an element of len bytes. */
static inline uint32_t kv_packed_hdr(size_t len)
{
    return kv_packed_uint_size(len);
}

/* Bytes an element of len bytes takes, prefix included. */
static inline uint32_t kv_packed_size(size_t len)
{
    return kv_packed_hdr(len) + (uint32_t)len;
}

/* Write v at p; returns its size. */
static inline uint32_t kv_packed_put(char *p, kv_slice v)
{
    uint32_t n = kv_packed_put_uint(p, v.len);
    if (v.len) memcpy(p + n, v.ptr, v.len);
    return n + (uint32_t)v.len;
}

/* The element at p (the caller knows p holds a well-formed one); returns
 * its size. */
static inline uint32_t kv_packed_get(const char *p, kv_slice *v)
{
    uint64_t len;
    uint32_t n = kv_packed_get_uint(p, &len);
    v->ptr = p + n;
    v->len = (size_t)len;
    return n + (uint32_t)len;
}

#endif
