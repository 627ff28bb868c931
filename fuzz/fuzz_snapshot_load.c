/* libFuzzer target for kv/snapshot's loader.
 *
 * A snapshot arrives from disk or from the leader; a corrupt one must be
 * an error, never a crash or a silently wrong store. Each input is loaded
 * twice: as is (which mostly exercises the checksum), and with its last
 * four bytes replaced by the right CRC-32C, so that the fuzzer reaches the
 * parsing behind the checksum. For each load it checks:
 * - failure: a message, and the target store exactly as it was;
 * - success: the store is well formed (keys in strict order, each one
 *   findable, counters right), writing it back gives the input (the format
 *   is canonical except for the reserved header word), and that output
 *   loads again to the same bytes; the loaded store accepts writes. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/snapshot.h"
#include "kv/store.h"
#include "util/hash.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define SNAP_RESERVED_OFF 12
#define SNAP_HEADER 32

static void fuzz_put(kv_store *s, const char *k, size_t kn, const char *v, size_t vn)
{
    kv_slice args[2] = {{k, kn}, {v, vn}};
    kv_command c = {.op = KV_OP_PUT, .now_ms = 0, .nargs = 2, .args = args};
    kv_result r;
    kv_store_apply(s, &c, &r);
    CHECK(r.status == KV_OK);
}

static int fuzz_cmp(const kv_entry *a, const kv_entry *b)
{
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = n ? memcmp(kv_entry_key(a), kv_entry_key(b), n) : 0;
    if (c) return c;
    return a->key_len < b->key_len ? -1 : a->key_len > b->key_len ? 1 : 0;
}

static void fuzz_check_store(kv_store *s)
{
    uint64_t n = 0, vol = 0;
    const kv_entry *prev = NULL;
    for (kv_entry *e = kv_keyspace_first(&s->ks); e; e = kv_keyspace_next(e)) {
        if (prev) CHECK(fuzz_cmp(prev, e) < 0);
        CHECK(kv_keyspace_find(&s->ks, kv_entry_key(e), e->key_len) == e);
        /* a string's bytes, a packed hash's buffer, or (hashtable, quicklist)
         * an object behind value with value_len 0 */
        if (e->encoding == KV_ENC_HASHTABLE || e->encoding == KV_ENC_QUICKLIST ||
            e->encoding == KV_ENC_SKIPLIST || e->encoding == KV_ENC_STREAM)
            CHECK(e->value != NULL && e->value_len == 0);
        else
            CHECK((e->value == NULL) == (e->value_len == 0));
        CHECK(e->type < KV_TYPE_MAX_);
        if (e->expire_ms) vol++;
        n++;
        prev = e;
    }
    CHECK(n == kv_keyspace_count(&s->ks));
    CHECK(vol == s->ks.volatile_count);
}

static void fuzz_load_one(const char *p, size_t size)
{
    kv_store s;
    kv_store_init(&s, 7);
    fuzz_put(&s, "resident", 8, "value", 5);
    buf before, out, again;
    buf_init(&before);
    buf_init(&out);
    buf_init(&again);
    CHECK(kv_snapshot_write(&s, kv_snapshot_sink_buf, &before) == 0);

    char err[256];
    err[0] = '\0';
    int rv = kv_snapshot_load(&s, p, size, err, sizeof(err));
    if (rv != 0) {
        CHECK(rv == -1);
        CHECK(err[0] != '\0');
        CHECK(kv_snapshot_write(&s, kv_snapshot_sink_buf, &out) == 0);
        CHECK(out.len == before.len && memcmp(out.data, before.data, out.len) == 0);
        goto done;
    }

    fuzz_check_store(&s);
    CHECK(kv_snapshot_write(&s, kv_snapshot_sink_buf, &out) == 0);
    /* older versions are rewritten as the current one (with member and
     * dedup tables), and a shorter limits table (an older binary's) as a
     * full one, so byte equality holds only for current inputs with every
     * limit: those are the ones written back at their own length */
    if (p[8] == 9 && out.len == size) { /* the current version (kv/snapshot.c SNAP_VERSION) */
        /* equal to the input but for the reserved word (written as 0) and,
         * if that differed, the checksum */
        CHECK(memcmp(out.data, p, SNAP_RESERVED_OFF) == 0);
        CHECK(memcmp(out.data + SNAP_RESERVED_OFF + 4, p + SNAP_RESERVED_OFF + 4,
                     size - 4 - SNAP_RESERVED_OFF - 4) == 0);
        static const char zero[4];
        if (memcmp(p + SNAP_RESERVED_OFF, zero, 4) == 0) CHECK(memcmp(out.data, p, size) == 0);
    }

    kv_store t;
    kv_store_init(&t, 99);
    CHECK(kv_snapshot_load(&t, out.data, out.len, err, sizeof(err)) == 0);
    CHECK(t.revision == s.revision);
    CHECK(kv_snapshot_write(&t, kv_snapshot_sink_buf, &again) == 0);
    CHECK(again.len == out.len && memcmp(again.data, out.data, out.len) == 0);
    kv_store_close(&t);

    /* the loaded structure takes writes: overwrite, delete, insert */
    uint64_t rev = s.revision;
    kv_entry *first = kv_keyspace_first(&s.ks);
    if (first) {
        char *k = malloc(first->key_len ? first->key_len : 1);
        size_t kn = first->key_len;
        if (kn) memcpy(k, kv_entry_key(first), kn);
        CHECK(kv_keyspace_delete(&s.ks, k, kn));
        CHECK(kv_keyspace_find(&s.ks, k, kn) == NULL);
        fuzz_put(&s, k, kn, "x", 1);
        CHECK(s.revision == rev + 1);
        free(k);
    }
    fuzz_put(&s, "\xff\xff\xff-fuzz-new", 12, "y", 1);
    fuzz_check_store(&s);

done:
    buf_close(&before);
    buf_close(&out);
    buf_close(&again);
    kv_store_close(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* exact-size copies, so that reads past the end are caught */
    char *p = malloc(size ? size : 1);
    if (size) memcpy(p, data, size);
    fuzz_load_one(p, size);
    if (size >= SNAP_HEADER + 4) {
        uint32_t crc = crc32c_update(0, p, size - 4);
        for (int i = 0; i < 4; i++) p[size - 4 + i] = (char)(crc >> (8 * i));
        fuzz_load_one(p, size);
    }
    free(p);
    return 0;
}
