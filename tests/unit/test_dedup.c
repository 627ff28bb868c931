/* Idempotent writes: a repeated Idempotency-Key returns the remembered
 * result and changes nothing; the memory is bounded, FIFO, and survives a
 * snapshot round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "kv/snapshot.h"
#include "kv/store.h"

static void idem_put(kv_store *s, const char *key, const char *value, const char *idem,
                     kv_result *res)
{
    kv_slice args[3] = {{key, strlen(key)}, {value, strlen(value)}, {idem, strlen(idem)}};
    kv_command cmd = {
        .op = KV_OP_PUT, .flags = KV_FLAG_IDEMPOTENT, .nargs = 3, .args = args, .now_ms = 1000};
    kv_store_apply(s, &cmd, res);
}

static void test_repeat_is_replayed_not_applied(void **state)
{
    (void)state;
    kv_store s;
    kv_store_init(&s, 7);
    kv_result a, b, c;
    idem_put(&s, "k", "v1", "req-1", &a);
    assert_int_equal(a.status, KV_OK);
    assert_false(a.replayed);
    assert_int_equal(s.revision, 1);
    idem_put(&s, "k", "v1", "req-1", &b);
    assert_true(b.replayed);
    assert_int_equal(b.mod_rev, a.mod_rev);
    assert_int_equal(s.revision, 1); /* nothing applied */
    idem_put(&s, "k", "v2", "req-2", &c);
    assert_false(c.replayed);
    assert_int_equal(s.revision, 2);
    kv_entry *e = kv_store_get(&s, "k", 1, 1000);
    assert_int_equal(e->version, 2);
    kv_store_close(&s);
}

static void test_failed_precondition_is_remembered_too(void **state)
{
    (void)state;
    kv_store s;
    kv_store_init(&s, 7);
    kv_result r;
    kv_slice args[3] = {{"k", 1}, {"v", 1}, {"once", 4}};
    kv_command cmd = {
        .op = KV_OP_PUT, .flags = KV_FLAG_IDEMPOTENT | KV_FLAG_XX, .nargs = 3, .args = args};
    kv_store_apply(&s, &cmd, &r);
    assert_int_equal(r.status, KV_ERR_PRECONDITION);
    idem_put(&s, "k", "v", "other", &r); /* now the key exists */
    cmd.flags = KV_FLAG_IDEMPOTENT | KV_FLAG_XX;
    kv_store_apply(&s, &cmd, &r);
    assert_true(r.replayed);
    assert_int_equal(r.status, KV_ERR_PRECONDITION); /* the first answer, kept */
    kv_store_close(&s);
}

static void test_bounded_fifo_and_snapshot(void **state)
{
    (void)state;
    kv_store s;
    kv_store_init(&s, 9);
    kv_result r;
    char idem[32];
    for (int i = 0; i < KV_DEDUP_CAPACITY + 500; i++) {
        snprintf(idem, sizeof(idem), "id-%d", i);
        idem_put(&s, "k", "v", idem, &r);
        assert_false(r.replayed);
    }
    assert_int_equal(s.dedup.count, KV_DEDUP_CAPACITY);
    /* the oldest 500 are forgotten, the rest remembered */
    assert_null(kv_dedup_find(&s.dedup, "id-0", 4));
    assert_null(kv_dedup_find(&s.dedup, "id-499", 6));
    assert_non_null(kv_dedup_find(&s.dedup, "id-500", 6));
    assert_non_null(kv_dedup_find(&s.dedup, "id-10499", 8));

    buf snap;
    buf_init(&snap);
    assert_int_equal(kv_snapshot_write(&s, kv_snapshot_sink_buf, &snap), 0);
    kv_store t;
    kv_store_init(&t, 11);
    char err[256];
    assert_int_equal(kv_snapshot_load(&t, snap.data, snap.len, err, sizeof(err)), 0);
    assert_int_equal(t.dedup.count, KV_DEDUP_CAPACITY);
    uint64_t rev = t.revision;
    idem_put(&t, "k", "v", "id-10499", &r);
    assert_true(r.replayed);
    assert_int_equal(t.revision, rev);
    idem_put(&t, "k", "v", "id-3", &r);
    assert_false(r.replayed);
    buf_close(&snap);
    kv_store_close(&s);
    kv_store_close(&t);
}

static void test_malformed_idempotency_key(void **state)
{
    (void)state;
    kv_store s;
    kv_store_init(&s, 7);
    kv_result r;
    idem_put(&s, "k", "v", "", &r);
    assert_int_equal(r.status, KV_ERR_MALFORMED);
    assert_int_equal(s.revision, 0);
    kv_store_close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repeat_is_replayed_not_applied),
        cmocka_unit_test(test_failed_precondition_is_remembered_too),
        cmocka_unit_test(test_bounded_fifo_and_snapshot),
        cmocka_unit_test(test_malformed_idempotency_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
