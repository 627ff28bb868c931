/* libFuzzer target for kv/rdb's reader (cairnd --restore dump.rdb).
 *
 * An RDB file comes from an operator, maybe cut short or corrupt; it must
 * be refused with a message, never crash or leak. The input is the file's
 * body: "REDIS0010" goes in front, and an end marker with the right CRC-64
 * behind, so the fuzzer reaches the opcodes and objects. For each input:
 * refused: a message; loaded: every key's value DUMPs to a payload that
 * RESTOREs into a value of the same type (a loaded value is whole). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/dump.h"
#include "kv/rdb.h"
#include "util/buf.h"
#include "util/crc64.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static bool take_library(void *ctx, kv_slice code)
{
    (void)code;
    (*(int *)ctx)++;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    buf f;
    buf_init(&f);
    buf_append(&f, "REDIS0010", 9);
    buf_append(&f, data, size);
    buf_append_char(&f, (char)0xff);
    uint64_t crc = crc64(0, f.data + f.off, f.len - f.off);
    unsigned char c[8];
    for (int i = 0; i < 8; i++) c[i] = (unsigned char)(crc >> (8 * i));
    buf_append(&f, c, 8);
    kv_store s;
    kv_store_init(&s, 11);
    kv_rdb_stats st;
    char err[256] = "";
    int libs = 0;
    int rv = kv_rdb_load(f.data + f.off, f.len - f.off, &s, 0, take_library, &libs, &st, err,
                         sizeof(err));
    if (rv != 0) {
        CHECK(err[0] != '\0');
    } else {
        CHECK(st.keys == kv_keyspace_count(&s.ks));
        CHECK((uint64_t)libs == st.libraries);
        buf p;
        buf_init(&p);
        for (kv_entry *e = kv_keyspace_first(&s.ks); e; e = kv_keyspace_next(e)) {
            buf_reset(&p);
            kv_dump_value(&s.ks.limits, e, &p);
            kv_entry back = {0};
            CHECK(kv_dump_load(&s.ks, &back, p.data + p.off, p.len - p.off, 0) == KV_DUMP_OK);
            CHECK(back.type == e->type);
            kv_keyspace_reset_value(&s.ks, &back);
        }
        buf_close(&p);
    }
    kv_store_close(&s);
    buf_close(&f);
    return 0;
}
