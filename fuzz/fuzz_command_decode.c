/* libFuzzer target for kv/command's decoder and kv/store's apply.
 *
 * A Raft log entry is untrusted bytes until it decodes. Besides looking
 * for memory errors, this checks:
 * - a rejected input gets a reason; "need more args" (-2) only asks for a
 *   count the input could hold, and the retry never asks again;
 * - an accepted input re-encodes to exactly the same bytes (the encoding is
 *   canonical), and its argument slices lie inside the input;
 * - whatever decodes can be applied: apply never crashes, moves the
 *   revision by at most one, and two replicas with different hash seeds
 *   end with the same result and the same snapshot, which loads back. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/command.h"
#include "kv/snapshot.h"
#include "kv/store.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* What a proposer puts in b for APPEND/SETRANGE/SETBIT/BITFIELD
 * (--max-value-bytes). A
 * log entry without a limit may legitimately ask for a value of up to
 * 4 GiB, which is not a bug but would trip the fuzzer's malloc limit. */
#define FUZZ_MAX_VALUE (1 << 20)

static void fuzz_put(kv_store *s, const char *k, const char *v, int64_t expire_ms)
{
    kv_slice args[2] = {{k, strlen(k)}, {v, strlen(v)}};
    kv_command c = {.op = KV_OP_PUT, .now_ms = 0, .expire_ms = expire_ms, .nargs = 2, .args = args};
    kv_result r;
    kv_store_apply(s, &c, &r);
}

/* A few keys of each kind the ops care about; the seeds use these names. */
static void fuzz_populate(kv_store *s)
{
    fuzz_put(s, "k", "value", 0);
    fuzz_put(s, "n", "41", 0);
    fuzz_put(s, "f", "1.5", 0);
    fuzz_put(s, "t", "ttl", 1000);
    fuzz_put(s, "", "empty key", 0);
    fuzz_put(s, "b\0in", "", 5000);
}

static bool fuzz_inside(const char *p, size_t n, const char *base, size_t len)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;
    return (n == 0 || p != NULL) && a >= b && n <= len && a - b <= len - n;
}

static void fuzz_same_result(const kv_result *x, const kv_result *y)
{
    CHECK(x->status == y->status);
    CHECK(x->integer == y->integer);
    CHECK(x->has_value == y->has_value);
    CHECK(x->value_len == y->value_len);
    CHECK(x->value_len == 0 || memcmp(x->value, y->value, x->value_len) == 0);
    CHECK(x->revision == y->revision);
    CHECK(x->key_exists == y->key_exists);
    if (x->key_exists) {
        CHECK(x->create_rev == y->create_rev);
        CHECK(x->mod_rev == y->mod_rev);
        CHECK(x->version == y->version);
        CHECK(x->expire_ms == y->expire_ms);
    }
}

static void fuzz_apply(const kv_command *decoded)
{
    kv_command c = *decoded;
    if ((c.op == KV_OP_APPEND || c.op == KV_OP_SETRANGE || c.op == KV_OP_SETBIT ||
         c.op == KV_OP_BITFIELD) &&
        (c.b <= 0 || c.b > FUZZ_MAX_VALUE))
        c.b = FUZZ_MAX_VALUE;

    kv_store a, b;
    kv_store_init(&a, 1);
    kv_store_init(&b, 0x5eed5eed5eed5eedull);
    fuzz_populate(&a);
    fuzz_populate(&b);
    uint64_t before = a.revision;
    kv_result ra, rb;
    kv_store_apply(&a, &c, &ra);
    CHECK(ra.revision == a.revision);
    CHECK(a.revision == before || a.revision == before + 1);
    CHECK(ra.status < KV_STATUS_COUNT_);
    if (ra.status != KV_OK) CHECK(a.revision == before);
    /* each store owns its result value, so a's stays valid while b applies */
    kv_store_apply(&b, &c, &rb);
    fuzz_same_result(&ra, &rb);

    /* apply a second time: still no crash, still deterministic */
    kv_store_apply(&a, &c, &ra);
    kv_store_apply(&b, &c, &rb);
    fuzz_same_result(&ra, &rb);

    /* both replicas serialise identically, and the snapshot loads back */
    buf sa, sb;
    buf_init(&sa);
    buf_init(&sb);
    CHECK(kv_snapshot_write(&a, kv_snapshot_sink_buf, &sa) == 0);
    CHECK(kv_snapshot_write(&b, kv_snapshot_sink_buf, &sb) == 0);
    CHECK(sa.len == sb.len && memcmp(sa.data, sb.data, sa.len) == 0);
    kv_store r;
    kv_store_init(&r, 3);
    char err[256];
    CHECK(kv_snapshot_load(&r, sa.data, sa.len, err, sizeof(err)) == 0);
    CHECK(r.revision == a.revision);
    CHECK(kv_keyspace_count(&r.ks) == kv_keyspace_count(&a.ks));
    CHECK(r.ks.volatile_count == a.ks.volatile_count);
    kv_store_close(&r);
    buf_close(&sa);
    buf_close(&sb);
    kv_store_close(&a);
    kv_store_close(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    kv_command cmd;
    kv_slice small[4];
    kv_slice *heap = NULL;
    uint32_t need = 0;
    const char *err = NULL;
    int rv = kv_command_decode(p, size, &cmd, small, 4, &need, &err);
    if (rv == -2) {
        CHECK(need > 4 && need <= KV_COMMAND_MAX_ARGS);
        CHECK(size >= KV_COMMAND_HEADER_BYTES && need <= (size - KV_COMMAND_HEADER_BYTES) / 4);
        heap = malloc(sizeof(*heap) * need);
        uint32_t need2 = 0;
        rv = kv_command_decode(p, size, &cmd, heap, need, &need2, &err);
        CHECK(rv != -2);
        CHECK(need2 == 0);
    }
    if (rv != 0) {
        CHECK(rv == -1);
        CHECK(err != NULL && err[0] != '\0');
        free(heap);
        return 0;
    }
    CHECK(cmd.op >= 1 && cmd.op < KV_OP_MAX_);
    CHECK((cmd.flags & ~KV_FLAG_ALL_) == 0);
    CHECK(cmd.nargs <= KV_COMMAND_MAX_ARGS);
    CHECK(cmd.nargs == 0 || cmd.args == (heap ? heap : small));
    for (uint32_t i = 0; i < cmd.nargs; i++)
        CHECK(fuzz_inside(cmd.args[i].ptr, cmd.args[i].len, p, size));

    /* canonical: re-encoding gives back the input, both ways */
    size_t n = kv_command_encoded_size(&cmd);
    CHECK(n == size);
    char *out = malloc(n);
    kv_command_encode_to(&cmd, out);
    CHECK(memcmp(out, p, n) == 0);
    free(out);
    buf b;
    buf_init(&b);
    kv_command_encode(&cmd, &b);
    CHECK(b.len == size && memcmp(b.data, p, size) == 0);
    buf_close(&b);
    CHECK(strcmp(kv_op_name(cmd.op), "?") != 0);

    fuzz_apply(&cmd);
    free(heap);
    return 0;
}
