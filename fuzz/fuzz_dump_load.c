/* libFuzzer target for kv/dump's loader (RESTORE's payloads).
 *
 * A payload comes from any client; a malformed one must be refused, never
 * crash, leak or leave a half-built value. The input is a payload without
 * its footer: the right version and CRC-64 are appended, so the fuzzer
 * reaches the object parser. For each input it checks:
 * - refused: the entry holds nothing and the memory estimate is as it was;
 * - loaded: DUMPing the value and loading that gives a value that DUMPs to
 *   the same bytes (a loaded value is canonical), and freeing both brings
 *   the memory estimate back to zero.
 * The same input read as a FUNCTION RESTORE payload: refused with a reason,
 * or its libraries' codes, which FUNCTION DUMP writes back into a payload
 * that reads as the same codes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/dump.h"
#include "util/buf.h"
#include "util/crc64.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_STRING (1 << 20)

static void with_footer(buf *p, const uint8_t *data, size_t size)
{
    buf_append(p, data, size);
    unsigned char f[10] = {KV_DUMP_RDB_VERSION, 0};
    buf_append(p, f, 2);
    uint64_t crc = crc64(0, p->data + p->off, p->len - p->off);
    for (int i = 0; i < 8; i++) f[i] = (unsigned char)(crc >> (8 * i));
    buf_append(p, f, 8);
}

typedef struct codes {
    buf data;
    size_t off[64], len[64], n;
} codes;

static bool collect(void *ctx, kv_slice code)
{
    codes *c = ctx;
    if (c->n == 64) return false;
    c->off[c->n] = c->data.len;
    c->len[c->n++] = code.len;
    buf_append(&c->data, code.ptr, code.len);
    return true;
}

static void check_functions(const buf *p)
{
    codes a = {0}, b = {0};
    buf_init(&a.data);
    buf_init(&b.data);
    const char *why;
    kv_dump_status st =
        kv_dump_functions_load(p->data + p->off, p->len - p->off, MAX_STRING, collect, &a, &why);
    CHECK(st != KV_DUMP_BAD_FOOTER);
    CHECK(st != KV_DUMP_BAD_DATA || why != NULL);
    if (st == KV_DUMP_OK) {
        kv_slice s[64];
        for (size_t i = 0; i < a.n; i++) s[i] = (kv_slice){a.data.data + a.off[i], a.len[i]};
        buf d;
        buf_init(&d);
        kv_dump_functions(s, a.n, &d);
        CHECK(kv_dump_functions_load(d.data + d.off, d.len - d.off, MAX_STRING, collect, &b,
                                     &why) == KV_DUMP_OK);
        CHECK(a.n == b.n && a.data.len == b.data.len);
        CHECK(a.data.len == 0 || memcmp(a.data.data, b.data.data, a.data.len) == 0);
        buf_close(&d);
    }
    buf_close(&a.data);
    buf_close(&b.data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kv_keyspace ks;
    kv_keyspace_init(&ks, 7);
    buf p, d1, d2;
    buf_init(&p);
    buf_init(&d1);
    buf_init(&d2);
    with_footer(&p, data, size);
    kv_entry a = {0}, b = {0};
    kv_dump_status st = kv_dump_load(&ks, &a, p.data + p.off, p.len - p.off, MAX_STRING);
    if (st != KV_DUMP_OK) {
        CHECK(st != KV_DUMP_BAD_FOOTER);
        CHECK(a.value == NULL && ks.mem_bytes == 0);
    } else {
        kv_dump_value(&ks.limits, &a, &d1);
        CHECK(kv_dump_load(&ks, &b, d1.data + d1.off, d1.len - d1.off, MAX_STRING) == KV_DUMP_OK);
        CHECK(a.type == b.type && a.encoding == b.encoding);
        kv_dump_value(&ks.limits, &b, &d2);
        CHECK(d1.len - d1.off == d2.len - d2.off);
        CHECK(memcmp(d1.data + d1.off, d2.data + d2.off, d1.len - d1.off) == 0);
        kv_keyspace_reset_value(&ks, &a);
        kv_keyspace_reset_value(&ks, &b);
        CHECK(ks.mem_bytes == 0);
    }
    check_functions(&p);
    buf_close(&p);
    buf_close(&d1);
    buf_close(&d2);
    kv_keyspace_close(&ks);
    return 0;
}
