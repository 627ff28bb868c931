/* kv/overlay: a script's private view faults keys in from the base store
 * on first look-up (copies: the base never changes), sees its own writes,
 * remembers the revision of every key it looked at (0 when absent or
 * expired), does not fault a key it deleted back in, and its effects,
 * proposed as one KV_OP_EXEC watching those revisions, bring the base to
 * the state the overlay reached - or to nothing at all when a watched key
 * moved in between. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/command.h"
#include "kv/hash.h"
#include "kv/overlay.h"
#include "kv/store.h"
#include "kv/transaction.h"

#define T0 1000000

static kv_slice str(const char *s)
{
    return (kv_slice){s, strlen(s)};
}

static kv_result run(kv_store *s, int op, int64_t a, uint32_t nargs, const char *const *argv)
{
    kv_slice sargs[8];
    for (uint32_t i = 0; i < nargs; i++) sargs[i] = str(argv[i]);
    kv_command c = {.op = (uint8_t)op, .now_ms = T0, .a = a, .nargs = nargs, .args = sargs};
    kv_result r;
    kv_store_apply(s, &c, &r);
    return r;
}

static kv_result ov(kv_overlay *o, int op, int64_t a, uint32_t nargs, const char *const *argv)
{
    kv_slice sargs[8];
    for (uint32_t i = 0; i < nargs; i++) sargs[i] = str(argv[i]);
    kv_command c = {.op = (uint8_t)op, .a = a, .nargs = nargs, .args = sargs};
    kv_result r;
    kv_overlay_apply(o, &c, &r);
    return r;
}

static void want_string(kv_store *s, const char *key, const char *want)
{
    kv_entry *e = kv_store_get(s, key, strlen(key), T0);
    if (!want) {
        assert_null(e);
        return;
    }
    assert_non_null(e);
    assert_int_equal(e->value_len, strlen(want));
    assert_memory_equal(e->value, want, strlen(want));
}

/* The effects as one transaction, watching what the overlay saw. */
static kv_result propose(kv_store *base, kv_overlay *o)
{
    kv_slice args[64];
    char revs[16][8];
    uint32_t n = 0, nw = 0;
    args[n++] = str("tok");
    for (kv_entry *e = kv_keyspace_first(&o->seen); e; e = kv_keyspace_next(e)) {
        uint64_t rev = kv_overlay_seen_rev(e);
        for (int b = 0; b < 8; b++) revs[nw][b] = (char)(rev >> (8 * b));
        args[n++] = (kv_slice){kv_entry_key(e), e->key_len};
        args[n++] = (kv_slice){revs[nw], 8};
        nw++;
    }
    for (size_t i = 0; i < o->n_effects; i++) args[n++] = kv_overlay_effect(o, i);
    kv_command c = {.op = KV_OP_EXEC,
                    .now_ms = T0,
                    .a = nw,
                    .b = (int64_t)o->n_effects,
                    .nargs = n,
                    .args = args};
    kv_result r;
    kv_store_apply(base, &c, &r);
    return r;
}

static void test_reads_fault_in_writes_stay_private(void **state)
{
    (void)state;
    kv_store base;
    kv_store_init(&base, 7);
    run(&base, KV_OP_PUT, 0, 2, (const char *[]){"n", "41"});
    run(&base, KV_OP_HSET, 0, 3, (const char *[]){"h", "f", "v"});
    uint64_t rev = base.revision;
    kv_overlay o;
    kv_overlay_init(&o, &base, T0);
    kv_result r = ov(&o, KV_OP_INCR, 1, 1, (const char *[]){"n"});
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.integer, 42);
    want_string(&o.store, "n", "42");
    want_string(&base, "n", "41"); /* the base is untouched */
    r = ov(&o, KV_OP_HSET, 0, 3, (const char *[]){"h", "g", "w"});
    assert_int_equal(r.status, KV_OK);
    kv_entry *h = kv_store_get(&o.store, "h", 1, T0);
    assert_non_null(h);
    assert_int_equal(h->type, KV_TYPE_HASH);
    assert_int_equal(kv_hash_len(h), 2); /* the copy, then the new field */
    assert_int_equal(kv_hash_len(kv_store_get(&base, "h", 1, T0)), 1);
    assert_int_equal(base.revision, rev);
    assert_int_equal(o.n_effects, 2);
    /* applied for real, the effects reach the same state */
    r = propose(&base, &o);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.integer, 1);
    want_string(&base, "n", "42");
    assert_int_equal(kv_hash_len(kv_store_get(&base, "h", 1, T0)), 2);
    kv_overlay_close(&o);
    kv_store_close(&base);
}

static void test_seen_revisions_and_deleted_keys(void **state)
{
    (void)state;
    kv_store base;
    kv_store_init(&base, 7);
    run(&base, KV_OP_PUT, 0, 2, (const char *[]){"a", "1"});
    uint64_t a_rev = kv_store_get(&base, "a", 1, T0)->mod_rev;
    kv_overlay o;
    kv_overlay_init(&o, &base, T0);
    assert_null(kv_store_get(&o.store, "missing", 7, T0));
    kv_result r = ov(&o, KV_OP_DEL, 0, 1, (const char *[]){"a"});
    assert_int_equal(r.integer, 1);                  /* DEL faulted "a" in before deleting it */
    assert_null(kv_store_get(&o.store, "a", 1, T0)); /* and it does not come back */
    r = ov(&o, KV_OP_DEL, 0, 1, (const char *[]){"a"});
    assert_int_equal(r.integer, 0);
    int n = 0;
    for (kv_entry *e = kv_keyspace_first(&o.seen); e; e = kv_keyspace_next(e), n++) {
        if (e->key_len == 1)
            assert_int_equal(kv_overlay_seen_rev(e), a_rev);
        else
            assert_int_equal(kv_overlay_seen_rev(e), 0);
    }
    assert_int_equal(n, 2);
    kv_overlay_close(&o);
    kv_store_close(&base);
}

static void test_an_expired_key_is_absent(void **state)
{
    (void)state;
    kv_store base;
    kv_store_init(&base, 7);
    kv_slice a[2] = {str("e"), str("v")};
    kv_command c = {.op = KV_OP_PUT, .now_ms = T0 - 10, .expire_ms = T0 - 1, .nargs = 2, .args = a};
    kv_result r;
    kv_store_apply(&base, &c, &r);
    kv_overlay o;
    kv_overlay_init(&o, &base, T0);
    assert_null(kv_store_get(&o.store, "e", 1, T0));
    assert_int_equal(kv_overlay_seen_rev(kv_keyspace_first(&o.seen)), 0);
    kv_overlay_close(&o);
    kv_store_close(&base);
}

static void test_a_key_changed_meanwhile_refuses_the_effects(void **state)
{
    (void)state;
    kv_store base;
    kv_store_init(&base, 7);
    run(&base, KV_OP_PUT, 0, 2, (const char *[]){"n", "1"});
    kv_overlay o;
    kv_overlay_init(&o, &base, T0);
    ov(&o, KV_OP_INCR, 1, 1, (const char *[]){"n"});
    ov(&o, KV_OP_PUT, 0, 2, (const char *[]){"other", "x"});
    run(&base, KV_OP_INCR, 10, 1, (const char *[]){"n"}); /* another client's write */
    uint64_t rev = base.revision;
    kv_result r = propose(&base, &o);
    assert_int_equal(r.integer, 0); /* aborted: nothing applied */
    assert_int_equal(base.revision, rev);
    want_string(&base, "n", "11");
    want_string(&base, "other", NULL);
    kv_overlay_close(&o);
    kv_store_close(&base);
}

static void test_reset_forgets_the_previous_run(void **state)
{
    (void)state;
    kv_store base;
    kv_store_init(&base, 7);
    run(&base, KV_OP_PUT, 0, 2, (const char *[]){"a", "1"});
    kv_overlay o;
    kv_overlay_init(&o, &base, T0);
    ov(&o, KV_OP_DEL, 0, 1, (const char *[]){"a"});
    ov(&o, KV_OP_PUT, 0, 2, (const char *[]){"b", "2"});
    kv_overlay_reset(&o, &base, T0 + 1); /* the next script */
    assert_int_equal(o.n_effects, 0);
    assert_int_equal(kv_keyspace_count(&o.seen), 0);
    want_string(&o.store, "a", "1"); /* faulted in again: the base still has it */
    want_string(&o.store, "b", NULL);
    assert_int_equal(o.now_ms, T0 + 1);
    kv_overlay_clear(&o);
    assert_int_equal(kv_keyspace_count(&o.store.ks), 0);
    kv_overlay_close(&o);
    kv_store_close(&base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_fault_in_writes_stay_private),
        cmocka_unit_test(test_seen_revisions_and_deleted_keys),
        cmocka_unit_test(test_an_expired_key_is_absent),
        cmocka_unit_test(test_a_key_changed_meanwhile_refuses_the_effects),
        cmocka_unit_test(test_reset_forgets_the_previous_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
