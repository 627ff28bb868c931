/* Tests for kv/store: every op of kv/command.h through kv_store_apply,
 * with the semantics its header documents (flags, revisions, versions,
 * expiry judged by the command's clock), and two property tests: replicas
 * applying the same random log end identical, and PUT/DEL/INCR agree with
 * a small model of a map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/command.h"
#include "kv/snapshot.h"
#include "kv/store.h"

/* the clock of most commands */
#define T0 1000000

/* ---- helpers ---- */

static uint64_t rng_state = 1;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Argument arrays for commands under construction; a ring so that a test
 * can hold a few commands at once. */
static kv_slice arg_ring[16][64];
static unsigned arg_next;

/* A command with nargs NUL-terminated string arguments, at T0. */
static kv_command mk(int op, uint32_t nargs, ...)
{
    assert_true(nargs <= 64);
    kv_slice *a = arg_ring[arg_next++ % 16];
    va_list ap;
    va_start(ap, nargs);
    for (uint32_t i = 0; i < nargs; i++) {
        const char *s = va_arg(ap, const char *);
        a[i] = (kv_slice){s, strlen(s)};
    }
    va_end(ap);
    return (kv_command){.op = (uint8_t)op, .now_ms = T0, .nargs = nargs, .args = a};
}

static kv_result run(kv_store *s, kv_command c)
{
    kv_result r;
    kv_store_apply(s, &c, &r);
    assert_int_equal(r.revision, s->revision);
    return r;
}

static kv_result put(kv_store *s, const char *k, const char *v)
{
    return run(s, mk(KV_OP_PUT, 2, k, v));
}

static kv_result put_ttl(kv_store *s, const char *k, const char *v, int64_t expire_ms)
{
    kv_command c = mk(KV_OP_PUT, 2, k, v);
    c.expire_ms = expire_ms;
    return run(s, c);
}

static kv_entry *live(kv_store *s, const char *k)
{
    return kv_store_get(s, k, strlen(k), T0);
}

static void expect_val_n(kv_store *s, const char *k, const char *v, size_t n)
{
    kv_entry *e = live(s, k);
    if (!e) fail_msg("key '%s' absent, expected a value", k);
    assert_int_equal(e->value_len, n);
    if (n) assert_memory_equal(e->value, v, n);
}

static void expect_val(kv_store *s, const char *k, const char *v)
{
    expect_val_n(s, k, v, strlen(v));
}

static void expect_absent(kv_store *s, const char *k)
{
    if (live(s, k)) fail_msg("key '%s' present, expected absent", k);
}

static void expect_result_value(const kv_result *r, const char *v)
{
    assert_true(r->has_value);
    assert_int_equal(r->value_len, strlen(v));
    assert_memory_equal(r->value, v, strlen(v));
}

static void snapshot_of(const kv_store *s, buf *out)
{
    buf_reset(out);
    assert_int_equal(kv_snapshot_write(s, kv_snapshot_sink_buf, out), 0);
}

/* ---- PUT ---- */

static void test_put_basic(void **state)
{
    kv_store s;
    kv_store_init(&s, 1);
    kv_result r = put(&s, "k", "v1");
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.revision, 1);
    assert_true(r.key_exists);
    assert_int_equal(r.create_rev, 1);
    assert_int_equal(r.mod_rev, 1);
    assert_int_equal(r.version, 1);
    assert_int_equal(r.expire_ms, 0);
    assert_false(r.has_value);
    expect_val(&s, "k", "v1");

    /* overwrite keeps create_rev, counts the version */
    r = put(&s, "k", "v2");
    assert_int_equal(r.revision, 2);
    assert_int_equal(r.create_rev, 1);
    assert_int_equal(r.mod_rev, 2);
    assert_int_equal(r.version, 2);
    expect_val(&s, "k", "v2");
    r = put(&s, "other", "x");
    assert_int_equal(r.revision, 3);
    assert_int_equal(r.create_rev, 3);
    r = put(&s, "k", "v3");
    assert_int_equal(r.create_rev, 1);
    assert_int_equal(r.mod_rev, 4);
    assert_int_equal(r.version, 3);

    /* binary and empty values */
    kv_command c = mk(KV_OP_PUT, 2, "bin", "");
    c.args[1] = (kv_slice){"a\0b\0", 4};
    run(&s, c);
    expect_val_n(&s, "bin", "a\0b\0", 4);
    put(&s, "empty", "");
    expect_val(&s, "empty", "");

    /* expiry comes from the command; a plain PUT clears an old one */
    r = put_ttl(&s, "k", "v4", T0 + 5000);
    assert_int_equal(r.expire_ms, T0 + 5000);
    assert_int_equal(live(&s, "k")->expire_ms, T0 + 5000);
    assert_int_equal(s.ks.volatile_count, 1);
    r = put(&s, "k", "v5");
    assert_int_equal(r.expire_ms, 0);
    assert_int_equal(s.ks.volatile_count, 0);

    /* wrong argument counts change nothing */
    uint64_t rev = s.revision;
    r = run(&s, mk(KV_OP_PUT, 1, "k"));
    assert_int_equal(r.status, KV_ERR_MALFORMED);
    r = run(&s, mk(KV_OP_PUT, 3, "k", "v", "w"));
    assert_int_equal(r.status, KV_ERR_MALFORMED);
    assert_int_equal(s.revision, rev);
    expect_val(&s, "k", "v5");
    kv_store_close(&s);
}

static void test_put_nx_xx(void **state)
{
    kv_store s;
    kv_store_init(&s, 2);
    kv_command c = mk(KV_OP_PUT, 2, "k", "first");
    c.flags = KV_FLAG_NX;
    kv_result r = run(&s, c);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.revision, 1);

    c = mk(KV_OP_PUT, 2, "k", "second");
    c.flags = KV_FLAG_NX;
    r = run(&s, c);
    assert_int_equal(r.status, KV_ERR_PRECONDITION);
    assert_int_equal(r.revision, 1);
    assert_true(r.key_exists); /* the current metadata, for the 412 reply */
    assert_int_equal(r.mod_rev, 1);
    expect_val(&s, "k", "first");

    c = mk(KV_OP_PUT, 2, "absent", "x");
    c.flags = KV_FLAG_XX;
    r = run(&s, c);
    assert_int_equal(r.status, KV_ERR_PRECONDITION);
    assert_false(r.key_exists);
    assert_int_equal(r.revision, 1);
    expect_absent(&s, "absent");
    assert_int_equal(kv_keyspace_count(&s.ks), 1);

    c = mk(KV_OP_PUT, 2, "k", "third");
    c.flags = KV_FLAG_XX;
    r = run(&s, c);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.version, 2);
    expect_val(&s, "k", "third");

    /* NX and XX together can never hold */
    c = mk(KV_OP_PUT, 2, "k", "y");
    c.flags = KV_FLAG_NX | KV_FLAG_XX;
    assert_int_equal(run(&s, c).status, KV_ERR_PRECONDITION);
    c = mk(KV_OP_PUT, 2, "new", "y");
    c.flags = KV_FLAG_NX | KV_FLAG_XX;
    assert_int_equal(run(&s, c).status, KV_ERR_PRECONDITION);
    assert_int_equal(s.revision, 2);
    kv_store_close(&s);
}

static void test_put_keepttl(void **state)
{
    kv_store s;
    kv_store_init(&s, 3);
    put_ttl(&s, "k", "a", T0 + 1000);
    kv_command c = mk(KV_OP_PUT, 2, "k", "b");
    c.flags = KV_FLAG_KEEPTTL;
    kv_result r = run(&s, c);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.expire_ms, T0 + 1000);
    expect_val(&s, "k", "b");
    assert_int_equal(s.ks.volatile_count, 1);
    /* KEEPTTL wins over an expiry in the same command */
    c = mk(KV_OP_PUT, 2, "k", "c");
    c.flags = KV_FLAG_KEEPTTL;
    c.expire_ms = T0 + 9999;
    r = run(&s, c);
    assert_int_equal(r.expire_ms, T0 + 1000);
    /* on a new key there is nothing to keep */
    c = mk(KV_OP_PUT, 2, "fresh", "c");
    c.flags = KV_FLAG_KEEPTTL;
    r = run(&s, c);
    assert_int_equal(r.expire_ms, 0);
    /* the kept TTL still expires the key */
    c = mk(KV_OP_PUT, 2, "k", "d");
    c.flags = KV_FLAG_KEEPTTL;
    c.now_ms = T0 + 1000;
    r = run(&s, c);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.expire_ms, 0); /* the old incarnation was gone */
    assert_int_equal(r.version, 1);
    kv_store_close(&s);
}

static void test_put_get_flag(void **state)
{
    kv_store s;
    kv_store_init(&s, 4);
    kv_command c = mk(KV_OP_PUT, 2, "k", "one");
    c.flags = KV_FLAG_GET;
    kv_result r = run(&s, c);
    assert_int_equal(r.status, KV_OK);
    assert_false(r.has_value);
    assert_int_equal(r.revision, 1);

    c = mk(KV_OP_PUT, 2, "k", "two");
    c.flags = KV_FLAG_GET;
    r = run(&s, c);
    assert_int_equal(r.status, KV_OK);
    expect_result_value(&r, "one");
    expect_val(&s, "k", "two");

    /* a failed precondition still reports the old value */
    c = mk(KV_OP_PUT, 2, "k", "three");
    c.flags = KV_FLAG_GET | KV_FLAG_NX;
    r = run(&s, c);
    assert_int_equal(r.status, KV_ERR_PRECONDITION);
    expect_result_value(&r, "two");
    expect_val(&s, "k", "two");
    c = mk(KV_OP_PUT, 2, "nope", "three");
    c.flags = KV_FLAG_GET | KV_FLAG_XX;
    r = run(&s, c);
    assert_int_equal(r.status, KV_ERR_PRECONDITION);
    assert_false(r.has_value);

    /* binary old value */
    c = mk(KV_OP_PUT, 2, "b", "");
    c.args[1] = (kv_slice){"\0\1\2", 3};
    run(&s, c);
    c = mk(KV_OP_PUT, 2, "b", "new");
    c.flags = KV_FLAG_GET;
    r = run(&s, c);
    assert_true(r.has_value);
    assert_int_equal(r.value_len, 3);
    assert_memory_equal(r.value, "\0\1\2", 3);
    kv_store_close(&s);
}

static void test_put_if_rev(void **state)
{
    kv_store s;
    kv_store_init(&s, 5);
    /* a == 0: must be absent */
    kv_command c = mk(KV_OP_PUT, 2, "k", "v1");
    c.flags = KV_FLAG_IF_REV;
    c.a = 0;
    kv_result r = run(&s, c);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.mod_rev, 1);
    r = run(&s, c);
    assert_int_equal(r.status, KV_ERR_PRECONDITION);
    assert_int_equal(r.mod_rev, 1);

    put(&s, "other", "x"); /* revision 2 */
    /* the right revision */
    c = mk(KV_OP_PUT, 2, "k", "v2");
    c.flags = KV_FLAG_IF_REV;
    c.a = 1;
    r = run(&s, c);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.mod_rev, 3);
    /* a stale one, the store revision, a future one */
    for (int64_t a = 1; a <= 5; a++) {
        if (a == 3) continue;
        c = mk(KV_OP_PUT, 2, "k", "bad");
        c.flags = KV_FLAG_IF_REV;
        c.a = a;
        r = run(&s, c);
        assert_int_equal(r.status, KV_ERR_PRECONDITION);
        assert_int_equal(r.revision, 3);
        assert_int_equal(r.mod_rev, 3);
    }
    expect_val(&s, "k", "v2");
    /* a != 0 on an absent key */
    c = mk(KV_OP_PUT, 2, "absent", "x");
    c.flags = KV_FLAG_IF_REV;
    c.a = 3;
    assert_int_equal(run(&s, c).status, KV_ERR_PRECONDITION);
    expect_absent(&s, "absent");
    /* IF_REV with NX on a matching revision: NX still fails */
    c = mk(KV_OP_PUT, 2, "k", "x");
    c.flags = KV_FLAG_IF_REV | KV_FLAG_NX;
    c.a = 3;
    assert_int_equal(run(&s, c).status, KV_ERR_PRECONDITION);
    assert_int_equal(s.revision, 3);
    kv_store_close(&s);
}

/* ---- revisions and versions ---- */

static void test_revisions_and_versions(void **state)
{
    kv_store s;
    kv_store_init(&s, 6);
    assert_int_equal(s.revision, 0);
    put(&s, "a", "1");
    put(&s, "a", "2");
    put(&s, "a", "3");
    kv_entry *e = live(&s, "a");
    assert_int_equal(e->version, 3);
    assert_int_equal(e->create_rev, 1);
    assert_int_equal(e->mod_rev, 3);

    /* deleting a missing key changes nothing */
    kv_result r = run(&s, mk(KV_OP_DEL, 1, "missing"));
    assert_int_equal(r.integer, 0);
    assert_int_equal(r.revision, 3);

    /* delete then re-create starts a new incarnation */
    r = run(&s, mk(KV_OP_DEL, 1, "a"));
    assert_int_equal(r.integer, 1);
    assert_int_equal(r.revision, 4);
    r = put(&s, "a", "again");
    assert_int_equal(r.create_rev, 5);
    assert_int_equal(r.version, 1);

    /* every kind of write counts one version */
    uint64_t v = live(&s, "a")->version;
    kv_command c = mk(KV_OP_APPEND, 2, "a", "!");
    run(&s, c);
    assert_int_equal(live(&s, "a")->version, ++v);
    c = mk(KV_OP_SETRANGE, 2, "a", "A");
    run(&s, c);
    assert_int_equal(live(&s, "a")->version, ++v);
    c = mk(KV_OP_EXPIRE, 1, "a");
    c.expire_ms = T0 + 100;
    run(&s, c);
    assert_int_equal(live(&s, "a")->version, ++v);
    run(&s, mk(KV_OP_PERSIST, 1, "a"));
    assert_int_equal(live(&s, "a")->version, ++v);
    put(&s, "n", "1");
    c = mk(KV_OP_INCR, 1, "n");
    c.a = 1;
    run(&s, c);
    assert_int_equal(live(&s, "n")->version, 2);
    run(&s, mk(KV_OP_INCRFLOAT, 2, "n", "0.5"));
    assert_int_equal(live(&s, "n")->version, 3);

    /* a failed command leaves revision and version alone */
    uint64_t rev = s.revision;
    c = mk(KV_OP_INCR, 1, "a"); /* not an integer */
    c.a = 1;
    assert_int_equal(run(&s, c).status, KV_ERR_NOT_INTEGER);
    assert_int_equal(s.revision, rev);
    assert_int_equal(live(&s, "a")->version, v);
    kv_store_close(&s);
}

/* ---- DEL ---- */

static void test_del(void **state)
{
    kv_store s;
    kv_store_init(&s, 7);
    put(&s, "a", "1");
    put(&s, "b", "2");
    put(&s, "c", "3");
    kv_result r = run(&s, mk(KV_OP_DEL, 4, "a", "x", "c", "y"));
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.integer, 2);
    assert_int_equal(r.revision, 4); /* one revision for the whole command */
    expect_absent(&s, "a");
    expect_absent(&s, "c");
    expect_val(&s, "b", "2");
    /* the same key twice is deleted once */
    r = run(&s, mk(KV_OP_DEL, 2, "b", "b"));
    assert_int_equal(r.integer, 1);
    assert_int_equal(r.revision, 5);
    assert_int_equal(kv_keyspace_count(&s.ks), 0);

    r = run(&s, mk(KV_OP_DEL, 0));
    assert_int_equal(r.status, KV_ERR_MALFORMED);
    assert_int_equal(r.revision, 5);

    /* GET: the value being deleted */
    put(&s, "g", "gone");
    kv_command c = mk(KV_OP_DEL, 1, "g");
    c.flags = KV_FLAG_GET;
    r = run(&s, c);
    assert_int_equal(r.integer, 1);
    expect_result_value(&r, "gone");
    expect_absent(&s, "g");
    r = run(&s, c);
    assert_int_equal(r.integer, 0);
    assert_false(r.has_value);
    kv_store_close(&s);
}

static void test_del_if_rev(void **state)
{
    kv_store s;
    kv_store_init(&s, 8);
    put(&s, "k", "v"); /* mod_rev 1 */
    put(&s, "z", "v"); /* revision 2 */
    kv_command c = mk(KV_OP_DEL, 1, "k");
    c.flags = KV_FLAG_IF_REV;
    c.a = 2;
    kv_result r = run(&s, c);
    assert_int_equal(r.status, KV_ERR_PRECONDITION);
    assert_true(r.key_exists);
    assert_int_equal(r.mod_rev, 1);
    assert_int_equal(r.revision, 2);
    expect_val(&s, "k", "v");
    c.a = 0; /* "must be absent" fails for a present key */
    assert_int_equal(run(&s, c).status, KV_ERR_PRECONDITION);
    expect_val(&s, "k", "v");

    c.a = 1;
    r = run(&s, c);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.integer, 1);
    assert_int_equal(r.revision, 3);
    expect_absent(&s, "k");

    /* on an absent key: any revision fails, 0 ("must be absent") holds
     * and deletes nothing */
    c.a = 1;
    assert_int_equal(run(&s, c).status, KV_ERR_PRECONDITION);
    c.a = 0;
    r = run(&s, c);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.integer, 0);
    assert_int_equal(r.revision, 3);

    /* GET with IF_REV: the value comes back either way */
    put(&s, "g", "val"); /* rev 4 */
    c = mk(KV_OP_DEL, 1, "g");
    c.flags = KV_FLAG_IF_REV | KV_FLAG_GET;
    c.a = 99;
    r = run(&s, c);
    assert_int_equal(r.status, KV_ERR_PRECONDITION);
    expect_result_value(&r, "val");
    c.a = 4;
    r = run(&s, c);
    assert_int_equal(r.status, KV_OK);
    expect_result_value(&r, "val");
    expect_absent(&s, "g");
    kv_store_close(&s);
}

/* ---- MSET ---- */

static void test_mset(void **state)
{
    kv_store s;
    kv_store_init(&s, 9);
    put_ttl(&s, "a", "old", T0 + 100); /* rev 1 */
    kv_result r = run(&s, mk(KV_OP_MSET, 6, "a", "1", "b", "2", "c", "3"));
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.integer, 1);
    assert_int_equal(r.revision, 2);
    expect_val(&s, "a", "1");
    expect_val(&s, "b", "2");
    expect_val(&s, "c", "3");
    kv_entry *a = live(&s, "a"), *b = live(&s, "b");
    assert_int_equal(a->create_rev, 1);
    assert_int_equal(a->mod_rev, 2);
    assert_int_equal(a->version, 2);
    assert_int_equal(a->expire_ms, 0); /* MSET clears TTLs, as SET does */
    assert_int_equal(s.ks.volatile_count, 0);
    assert_int_equal(b->create_rev, 2);
    assert_int_equal(b->mod_rev, 2);

    /* NX: all or nothing */
    kv_command c = mk(KV_OP_MSET, 4, "new", "x", "b", "y");
    c.flags = KV_FLAG_NX;
    r = run(&s, c);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.integer, 0);
    assert_int_equal(r.revision, 2);
    expect_absent(&s, "new");
    expect_val(&s, "b", "2");
    c = mk(KV_OP_MSET, 4, "new", "x", "new2", "y");
    c.flags = KV_FLAG_NX;
    r = run(&s, c);
    assert_int_equal(r.integer, 1);
    assert_int_equal(r.revision, 3);
    expect_val(&s, "new", "x");
    expect_val(&s, "new2", "y");

    /* the last of a repeated key wins */
    run(&s, mk(KV_OP_MSET, 4, "d", "first", "d", "last"));
    expect_val(&s, "d", "last");

    uint64_t rev = s.revision;
    assert_int_equal(run(&s, mk(KV_OP_MSET, 3, "a", "1", "b")).status, KV_ERR_MALFORMED);
    assert_int_equal(run(&s, mk(KV_OP_MSET, 0)).status, KV_ERR_MALFORMED);
    assert_int_equal(s.revision, rev);
    expect_val(&s, "a", "1");
    kv_store_close(&s);
}

/* ---- INCR ---- */

static kv_result incr(kv_store *s, const char *k, int64_t by)
{
    kv_command c = mk(KV_OP_INCR, 1, k);
    c.a = by;
    return run(s, c);
}

static void test_incr(void **state)
{
    kv_store s;
    kv_store_init(&s, 10);
    kv_result r = incr(&s, "n", 5);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.integer, 5);
    assert_int_equal(r.create_rev, 1);
    assert_int_equal(r.version, 1);
    expect_val(&s, "n", "5");
    r = incr(&s, "n", -12);
    assert_int_equal(r.integer, -7);
    expect_val(&s, "n", "-7");
    r = incr(&s, "zero", 0);
    assert_int_equal(r.integer, 0);
    expect_val(&s, "zero", "0");

    put(&s, "n", "9223372036854775806");
    r = incr(&s, "n", 1);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.integer, INT64_MAX);
    expect_val(&s, "n", "9223372036854775807");
    uint64_t rev = s.revision;
    r = incr(&s, "n", 1);
    assert_int_equal(r.status, KV_ERR_OVERFLOW);
    assert_int_equal(r.revision, rev);
    expect_val(&s, "n", "9223372036854775807");
    assert_int_equal(incr(&s, "n", INT64_MAX).status, KV_ERR_OVERFLOW);
    r = incr(&s, "n", INT64_MIN);
    assert_int_equal(r.integer, -1);

    put(&s, "m", "-9223372036854775807");
    r = incr(&s, "m", -1);
    assert_int_equal(r.integer, INT64_MIN);
    expect_val(&s, "m", "-9223372036854775808");
    rev = s.revision;
    assert_int_equal(incr(&s, "m", -1).status, KV_ERR_OVERFLOW);
    assert_int_equal(incr(&s, "m", INT64_MIN).status, KV_ERR_OVERFLOW);
    assert_int_equal(s.revision, rev);
    expect_val(&s, "m", "-9223372036854775808");
    r = incr(&s, "m", INT64_MAX);
    assert_int_equal(r.integer, -1);
    /* a missing key starts at 0, so INT64_MIN is reachable in one step */
    r = incr(&s, "fresh", INT64_MIN);
    assert_int_equal(r.integer, INT64_MIN);

    static const char *not_ints[] = {"01",
                                     "+1",
                                     " 1",
                                     "1 ",
                                     "-0",
                                     "-",
                                     "",
                                     "00",
                                     "1.0",
                                     "1e3",
                                     "0x10",
                                     "--1",
                                     "abc",
                                     "1a",
                                     "-01",
                                     "\t1",
                                     "1\n",
                                     "9223372036854775808",
                                     "-9223372036854775809",
                                     "99999999999999999999",
                                     "000000000000000000001"};
    for (size_t i = 0; i < sizeof(not_ints) / sizeof(not_ints[0]); i++) {
        put(&s, "bad", not_ints[i]);
        rev = s.revision;
        r = incr(&s, "bad", 1);
        if (r.status != KV_ERR_NOT_INTEGER)
            fail_msg("INCR on '%s' gave status %d", not_ints[i], r.status);
        assert_int_equal(s.revision, rev);
        expect_val(&s, "bad", not_ints[i]);
    }
    /* an embedded NUL is not a digit */
    kv_command c = mk(KV_OP_PUT, 2, "nul", "");
    c.args[1] = (kv_slice){"1\0", 2};
    run(&s, c);
    assert_int_equal(incr(&s, "nul", 1).status, KV_ERR_NOT_INTEGER);

    /* INCR keeps the TTL */
    put_ttl(&s, "t", "10", T0 + 500);
    r = incr(&s, "t", 1);
    assert_int_equal(r.integer, 11);
    assert_int_equal(r.expire_ms, T0 + 500);

    assert_int_equal(run(&s, mk(KV_OP_INCR, 2, "a", "b")).status, KV_ERR_MALFORMED);
    assert_int_equal(run(&s, mk(KV_OP_INCR, 0)).status, KV_ERR_MALFORMED);
    kv_store_close(&s);
}

/* ---- INCRFLOAT ---- */

static kv_result incrf(kv_store *s, const char *k, const char *by)
{
    return run(s, mk(KV_OP_INCRFLOAT, 2, k, by));
}

static void expect_incrf(kv_store *s, const char *start, const char *by, const char *want)
{
    if (start)
        put(s, "f", start);
    else
        run(s, mk(KV_OP_DEL, 1, "f"));
    kv_result r = incrf(s, "f", by);
    if (r.status != KV_OK) fail_msg("INCRFLOAT %s + %s: status %d", start, by, r.status);
    if (r.value_len != strlen(want) || memcmp(r.value, want, r.value_len) != 0)
        fail_msg("INCRFLOAT %s + %s: got '%.*s', want '%s'", start, by, (int)r.value_len, r.value,
                 want);
    expect_val(s, "f", want);
}

static void test_incrfloat(void **state)
{
    kv_store s;
    kv_store_init(&s, 11);
    expect_incrf(&s, "10.5", "0.1", "10.6");
    expect_incrf(&s, "3.0e3", "0", "3000");
    expect_incrf(&s, "5.0e3", "2.0e2", "5200");
    expect_incrf(&s, NULL, "1.5", "1.5");
    expect_incrf(&s, NULL, "-2", "-2");
    expect_incrf(&s, "1", "-1", "0");
    expect_incrf(&s, "-0.0", "0", "0");
    expect_incrf(&s, "0.1", "0.2", "0.3");
    expect_incrf(&s, "10", "1", "11");
    expect_incrf(&s, "1.25", "-3", "-1.75");
    expect_incrf(&s, "5", "1e-20", "5");  /* below 17 decimals */
    expect_incrf(&s, "0", "-1e-20", "0"); /* not "-0" */
    expect_incrf(&s, "7", "0x10", "23");  /* strtold reads hex */

    /* big results print in full fixed point */
    put(&s, "f", "1e300");
    kv_result r = incrf(&s, "f", "1");
    assert_int_equal(r.status, KV_OK);
    assert_true(r.value_len > 300);
    assert_null(memchr(r.value, '.', r.value_len));
    assert_null(memchr(r.value, 'e', r.value_len));
    assert_true(fabsl(strtold(r.value, NULL) / 1e300L - 1) < 1e-15L);

    /* INCRFLOAT keeps the TTL, returns the new value, bumps the revision */
    put_ttl(&s, "t", "1", T0 + 50);
    uint64_t rev = s.revision;
    r = incrf(&s, "t", "1");
    assert_int_equal(r.expire_ms, T0 + 50);
    assert_int_equal(r.revision, rev + 1);
    expect_result_value(&r, "2");

    /* errors change nothing */
    put(&s, "f", "1.5");
    rev = s.revision;
    static const char *bad_incr[] = {"nan", "NaN", "abc", "", " 1", "1 ", "1.5x", "-nan"};
    for (size_t i = 0; i < sizeof(bad_incr) / sizeof(bad_incr[0]); i++) {
        r = incrf(&s, "f", bad_incr[i]);
        if (r.status != KV_ERR_NOT_FLOAT)
            fail_msg("INCRFLOAT by '%s' gave status %d", bad_incr[i], r.status);
    }
    static const char *bad_vals[] = {"abc", "", " 1", "1 ", "nan", "1..2"};
    for (size_t i = 0; i < sizeof(bad_vals) / sizeof(bad_vals[0]); i++) {
        put(&s, "v", bad_vals[i]);
        uint64_t rv = s.revision;
        r = incrf(&s, "v", "1");
        if (r.status != KV_ERR_NOT_FLOAT)
            fail_msg("INCRFLOAT on '%s' gave status %d", bad_vals[i], r.status);
        assert_int_equal(s.revision, rv);
        expect_val(&s, "v", bad_vals[i]);
    }
    r = incrf(&s, "f", "inf");
    assert_int_equal(r.status, KV_ERR_NAN_OR_INF);
    r = incrf(&s, "f", "-inf");
    assert_int_equal(r.status, KV_ERR_NAN_OR_INF);
    put(&s, "huge", "1e4932");
    r = incrf(&s, "huge", "1e4932");
    assert_int_equal(r.status, KV_ERR_NAN_OR_INF);
    expect_val(&s, "huge", "1e4932");
    put(&s, "inf", "inf");
    r = incrf(&s, "inf", "-inf"); /* inf - inf = NaN */
    assert_int_equal(r.status, KV_ERR_NAN_OR_INF);
    expect_val(&s, "f", "1.5");

    assert_int_equal(run(&s, mk(KV_OP_INCRFLOAT, 1, "f")).status, KV_ERR_MALFORMED);
    kv_store_close(&s);
}

/* ---- APPEND and SETRANGE ---- */

static kv_result append(kv_store *s, const char *k, const char *v, int64_t max)
{
    kv_command c = mk(KV_OP_APPEND, 2, k, v);
    c.b = max;
    return run(s, c);
}

static kv_result setrange(kv_store *s, const char *k, int64_t off, const char *v, int64_t max)
{
    kv_command c = mk(KV_OP_SETRANGE, 2, k, v);
    c.a = off;
    c.b = max;
    return run(s, c);
}

static void test_append(void **state)
{
    kv_store s;
    kv_store_init(&s, 12);
    kv_result r = append(&s, "k", "abc", 0);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.integer, 3);
    assert_int_equal(r.create_rev, 1);
    assert_int_equal(r.version, 1);
    r = append(&s, "k", "def", 0);
    assert_int_equal(r.integer, 6);
    assert_int_equal(r.version, 2);
    assert_int_equal(r.create_rev, 1);
    expect_val(&s, "k", "abcdef");
    /* the limit in b: exactly b is fine, one more is TOO_LARGE */
    r = append(&s, "k", "gh", 8);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.integer, 8);
    uint64_t rev = s.revision;
    r = append(&s, "k", "i", 8);
    assert_int_equal(r.status, KV_ERR_TOO_LARGE);
    assert_int_equal(s.revision, rev);
    expect_val(&s, "k", "abcdefgh");
    r = append(&s, "new", "toolong", 3);
    assert_int_equal(r.status, KV_ERR_TOO_LARGE);
    expect_absent(&s, "new");
    /* binary, and onto an empty value */
    put(&s, "e", "");
    kv_command c = mk(KV_OP_APPEND, 2, "e", "");
    c.args[1] = (kv_slice){"\0x\0", 3};
    r = run(&s, c);
    assert_int_equal(r.integer, 3);
    expect_val_n(&s, "e", "\0x\0", 3);
    /* TTL is kept */
    put_ttl(&s, "t", "a", T0 + 10);
    r = append(&s, "t", "b", 0);
    assert_int_equal(r.expire_ms, T0 + 10);
    expect_val(&s, "t", "ab");
    /* appending nothing to a missing key creates it empty (as Redis) */
    r = append(&s, "z", "", 0);
    assert_int_equal(r.integer, 0);
    expect_val(&s, "z", "");
    assert_int_equal(run(&s, mk(KV_OP_APPEND, 1, "k")).status, KV_ERR_MALFORMED);
    kv_store_close(&s);
}

static void test_setrange(void **state)
{
    kv_store s;
    kv_store_init(&s, 13);
    /* a missing key is padded with zero bytes */
    kv_result r = setrange(&s, "k", 5, "hi", 0);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.integer, 7);
    assert_int_equal(r.create_rev, 1);
    assert_int_equal(r.version, 1);
    expect_val_n(&s, "k", "\0\0\0\0\0hi", 7);

    put(&s, "h", "Hello World");
    r = setrange(&s, "h", 6, "Redis", 0);
    assert_int_equal(r.integer, 11);
    expect_val(&s, "h", "Hello Redis");
    r = setrange(&s, "h", 0, "J", 0);
    expect_val(&s, "h", "Jello Redis");
    /* past the end: zero padding between */
    put(&s, "p", "abc");
    r = setrange(&s, "p", 5, "xy", 0);
    assert_int_equal(r.integer, 7);
    expect_val_n(&s, "p", "abc\0\0xy", 7);
    r = setrange(&s, "p", 3, "", 0); /* nothing to write */
    assert_int_equal(r.integer, 7);
    /* overlapping the end */
    r = setrange(&s, "p", 6, "XYZ", 0);
    assert_int_equal(r.integer, 9);
    expect_val_n(&s, "p", "abc\0\0xXYZ", 9);

    /* an empty value changes nothing and creates nothing */
    uint64_t rev = s.revision;
    r = setrange(&s, "none", 10, "", 0);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.integer, 0);
    expect_absent(&s, "none");
    r = setrange(&s, "h", 100, "", 0);
    assert_int_equal(r.integer, 11);
    assert_int_equal(s.revision, rev);

    /* the limit in b applies to the resulting length */
    r = setrange(&s, "h", 8, "abc", 10);
    assert_int_equal(r.status, KV_ERR_TOO_LARGE);
    assert_int_equal(s.revision, rev);
    expect_val(&s, "h", "Jello Redis");
    r = setrange(&s, "l", 7, "abc", 10);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.integer, 10);
    r = setrange(&s, "l2", 8, "abc", 10);
    assert_int_equal(r.status, KV_ERR_TOO_LARGE);
    expect_absent(&s, "l2");

    /* a result past what an entry can hold (u32 length) is TOO_LARGE even
     * without a limit, and allocates nothing */
    rev = s.revision;
    r = setrange(&s, "h", (int64_t)UINT32_MAX, "x", 0);
    assert_int_equal(r.status, KV_ERR_TOO_LARGE);
    r = setrange(&s, "h", INT64_MAX, "x", 0);
    assert_int_equal(r.status, KV_ERR_TOO_LARGE);
    assert_int_equal(s.revision, rev);
    expect_val(&s, "h", "Jello Redis");

    /* TTL kept; negative offsets are malformed */
    put_ttl(&s, "t", "aaa", T0 + 7);
    r = setrange(&s, "t", 1, "b", 0);
    assert_int_equal(r.expire_ms, T0 + 7);
    expect_val(&s, "t", "aba");
    assert_int_equal(setrange(&s, "t", -1, "b", 0).status, KV_ERR_MALFORMED);
    assert_int_equal(run(&s, mk(KV_OP_SETRANGE, 1, "t")).status, KV_ERR_MALFORMED);
    expect_val(&s, "t", "aba");
    kv_store_close(&s);
}

/* ---- expiry ---- */

static kv_result expire(kv_store *s, const char *k, int64_t at, uint16_t flags)
{
    kv_command c = mk(KV_OP_EXPIRE, 1, k);
    c.expire_ms = at;
    c.flags = flags;
    return run(s, c);
}

static void test_expire(void **state)
{
    kv_store s;
    kv_store_init(&s, 14);
    put(&s, "k", "v");
    kv_result r = expire(&s, "k", T0 + 1000, 0);
    assert_int_equal(r.integer, 1);
    assert_int_equal(r.revision, 2);
    assert_int_equal(live(&s, "k")->expire_ms, T0 + 1000);
    assert_int_equal(live(&s, "k")->mod_rev, 2);
    assert_int_equal(s.ks.volatile_count, 1);

    r = expire(&s, "missing", T0 + 1000, 0);
    assert_int_equal(r.integer, 0);
    assert_int_equal(r.revision, 2);

    /* NX: only without a TTL; XX: only with one */
    assert_int_equal(expire(&s, "k", T0 + 2000, KV_FLAG_NX).integer, 0);
    assert_int_equal(live(&s, "k")->expire_ms, T0 + 1000);
    assert_int_equal(expire(&s, "k", T0 + 2000, KV_FLAG_XX).integer, 1);
    assert_int_equal(live(&s, "k")->expire_ms, T0 + 2000);
    put(&s, "p", "v");
    assert_int_equal(expire(&s, "p", T0 + 3000, KV_FLAG_XX).integer, 0);
    assert_int_equal(live(&s, "p")->expire_ms, 0);
    assert_int_equal(expire(&s, "p", T0 + 3000, KV_FLAG_NX).integer, 1);
    assert_int_equal(live(&s, "p")->expire_ms, T0 + 3000);

    /* GT: strictly later; no TTL counts as infinite so GT never wins */
    uint64_t rev = s.revision;
    assert_int_equal(expire(&s, "k", T0 + 1500, KV_FLAG_GT).integer, 0);
    assert_int_equal(expire(&s, "k", T0 + 2000, KV_FLAG_GT).integer, 0);
    assert_int_equal(s.revision, rev);
    assert_int_equal(expire(&s, "k", T0 + 2500, KV_FLAG_GT).integer, 1);
    assert_int_equal(live(&s, "k")->expire_ms, T0 + 2500);
    put(&s, "q", "v");
    assert_int_equal(expire(&s, "q", T0 + 9000, KV_FLAG_GT).integer, 0);
    assert_int_equal(live(&s, "q")->expire_ms, 0);
    /* LT: strictly earlier; no TTL is infinite so LT always wins */
    assert_int_equal(expire(&s, "k", T0 + 2600, KV_FLAG_LT).integer, 0);
    assert_int_equal(expire(&s, "k", T0 + 2500, KV_FLAG_LT).integer, 0);
    assert_int_equal(expire(&s, "k", T0 + 2400, KV_FLAG_LT).integer, 1);
    assert_int_equal(live(&s, "k")->expire_ms, T0 + 2400);
    assert_int_equal(expire(&s, "q", T0 + 9000, KV_FLAG_LT).integer, 1);
    assert_int_equal(live(&s, "q")->expire_ms, T0 + 9000);

    /* a time in the past (or now) deletes the key, as a change */
    rev = s.revision;
    uint64_t count = kv_keyspace_count(&s.ks);
    r = expire(&s, "q", T0 - 1, 0);
    assert_int_equal(r.integer, 1);
    assert_int_equal(r.revision, rev + 1);
    assert_null(kv_keyspace_find(&s.ks, "q", 1));
    assert_int_equal(kv_keyspace_count(&s.ks), count - 1);
    r = expire(&s, "p", T0, 0);
    assert_int_equal(r.integer, 1);
    assert_null(kv_keyspace_find(&s.ks, "p", 1));
    assert_int_equal(s.ks.volatile_count, 1);
    /* ... also under LT when it is earlier */
    r = expire(&s, "k", T0 - 100, KV_FLAG_LT);
    assert_int_equal(r.integer, 1);
    expect_absent(&s, "k");
    assert_int_equal(s.ks.volatile_count, 0);

    /* an already expired key is absent: 0, and no revision */
    put_ttl(&s, "old", "v", T0 - 5);
    rev = s.revision;
    r = expire(&s, "old", T0 + 100, 0);
    assert_int_equal(r.integer, 0);
    assert_int_equal(r.revision, rev);
    assert_null(kv_keyspace_find(&s.ks, "old", 3));

    assert_int_equal(run(&s, mk(KV_OP_EXPIRE, 0)).status, KV_ERR_MALFORMED);
    assert_int_equal(run(&s, mk(KV_OP_EXPIRE, 2, "a", "b")).status, KV_ERR_MALFORMED);
    kv_store_close(&s);
}

static void test_persist(void **state)
{
    kv_store s;
    kv_store_init(&s, 15);
    put_ttl(&s, "k", "v", T0 + 100);
    kv_result r = run(&s, mk(KV_OP_PERSIST, 1, "k"));
    assert_int_equal(r.integer, 1);
    assert_int_equal(r.revision, 2);
    assert_int_equal(live(&s, "k")->expire_ms, 0);
    assert_int_equal(s.ks.volatile_count, 0);
    r = run(&s, mk(KV_OP_PERSIST, 1, "k"));
    assert_int_equal(r.integer, 0);
    assert_int_equal(r.revision, 2);
    r = run(&s, mk(KV_OP_PERSIST, 1, "missing"));
    assert_int_equal(r.integer, 0);
    assert_int_equal(r.revision, 2);
    /* too late to persist an expired key */
    put_ttl(&s, "x", "v", T0);
    r = run(&s, mk(KV_OP_PERSIST, 1, "x"));
    assert_int_equal(r.integer, 0);
    expect_absent(&s, "x");
    kv_store_close(&s);
}

static void test_getex(void **state)
{
    kv_store s;
    kv_store_init(&s, 16);
    put(&s, "k", "v");
    /* no option: a plain read, no change */
    kv_result r = run(&s, mk(KV_OP_GETEX, 1, "k"));
    expect_result_value(&r, "v");
    assert_int_equal(r.revision, 1);
    /* set an expiry */
    kv_command c = mk(KV_OP_GETEX, 1, "k");
    c.expire_ms = T0 + 100;
    r = run(&s, c);
    expect_result_value(&r, "v");
    assert_int_equal(r.revision, 2);
    assert_int_equal(live(&s, "k")->expire_ms, T0 + 100);
    /* PERSIST removes it */
    c = mk(KV_OP_GETEX, 1, "k");
    c.flags = KV_FLAG_PERSIST;
    r = run(&s, c);
    expect_result_value(&r, "v");
    assert_int_equal(r.revision, 3);
    assert_int_equal(live(&s, "k")->expire_ms, 0);
    r = run(&s, c); /* nothing to persist */
    assert_int_equal(r.revision, 3);
    /* a past time returns the value and deletes the key */
    c = mk(KV_OP_GETEX, 1, "k");
    c.expire_ms = T0 - 1;
    r = run(&s, c);
    expect_result_value(&r, "v");
    assert_int_equal(r.revision, 4);
    expect_absent(&s, "k");
    /* missing */
    r = run(&s, mk(KV_OP_GETEX, 1, "k"));
    assert_false(r.has_value);
    assert_int_equal(r.revision, 4);
    assert_int_equal(run(&s, mk(KV_OP_GETEX, 0)).status, KV_ERR_MALFORMED);
    kv_store_close(&s);
}

/* ---- RENAME ---- */

static kv_result rename_(kv_store *s, const char *from, const char *to, uint16_t flags)
{
    kv_command c = mk(KV_OP_RENAME, 2, from, to);
    c.flags = flags;
    return run(s, c);
}

static void test_rename(void **state)
{
    kv_store s;
    kv_store_init(&s, 17);
    put_ttl(&s, "a", "va", T0 + 500); /* rev 1 */
    kv_result r = rename_(&s, "a", "b", 0);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.integer, 1);
    assert_int_equal(r.revision, 2);
    expect_absent(&s, "a");
    expect_val(&s, "b", "va");
    kv_entry *b = live(&s, "b");
    assert_int_equal(b->expire_ms, T0 + 500); /* the TTL moves along */
    assert_int_equal(b->create_rev, 2);
    assert_int_equal(b->mod_rev, 2);
    assert_int_equal(b->version, 1);
    assert_int_equal(s.ks.volatile_count, 1);
    assert_int_equal(kv_keyspace_count(&s.ks), 1);

    /* onto an existing key: value and TTL (here: none) of the source */
    put_ttl(&s, "c", "vc", T0 + 900); /* rev 3 */
    put(&s, "d", "vd");               /* rev 4 */
    r = rename_(&s, "d", "c", 0);
    assert_int_equal(r.integer, 1);
    assert_int_equal(r.revision, 5);
    expect_val(&s, "c", "vd");
    expect_absent(&s, "d");
    assert_int_equal(live(&s, "c")->expire_ms, 0);
    assert_int_equal(live(&s, "c")->mod_rev, 5);
    assert_int_equal(s.ks.volatile_count, 1);

    /* NX: not onto an existing key */
    r = rename_(&s, "b", "c", KV_FLAG_NX);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.integer, 0);
    assert_int_equal(r.revision, 5);
    expect_val(&s, "b", "va");
    expect_val(&s, "c", "vd");
    r = rename_(&s, "b", "e", KV_FLAG_NX);
    assert_int_equal(r.integer, 1);
    assert_int_equal(r.revision, 6);
    expect_val(&s, "e", "va");
    assert_int_equal(live(&s, "e")->expire_ms, T0 + 500);

    /* same key: success without a change; with NX: 0 */
    r = rename_(&s, "e", "e", 0);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.integer, 1);
    assert_int_equal(r.revision, 6);
    expect_val(&s, "e", "va");
    r = rename_(&s, "e", "e", KV_FLAG_NX);
    assert_int_equal(r.integer, 0);
    assert_int_equal(r.revision, 6);
    expect_val(&s, "e", "va");

    /* missing or expired source */
    r = rename_(&s, "nope", "x", 0);
    assert_int_equal(r.status, KV_ERR_NO_SUCH_KEY);
    assert_int_equal(r.revision, 6);
    expect_absent(&s, "x");
    put_ttl(&s, "dead", "v", T0 - 1);
    uint64_t rev = s.revision;
    r = rename_(&s, "dead", "x", 0);
    assert_int_equal(r.status, KV_ERR_NO_SUCH_KEY);
    assert_int_equal(s.revision, rev);
    expect_absent(&s, "x");

    /* an expired destination is absent: a new incarnation */
    put_ttl(&s, "deaddst", "old", T0 - 1);
    put(&s, "src", "new");
    rev = s.revision;
    r = rename_(&s, "src", "deaddst", KV_FLAG_NX);
    assert_int_equal(r.integer, 1);
    assert_int_equal(live(&s, "deaddst")->create_rev, rev + 1);
    assert_int_equal(live(&s, "deaddst")->version, 1);
    expect_val(&s, "deaddst", "new");

    /* binary keys and an empty value */
    kv_command c = mk(KV_OP_PUT, 2, "", "");
    c.args[0] = (kv_slice){"k\0a", 3};
    run(&s, c);
    c = mk(KV_OP_RENAME, 2, "", "");
    c.args[0] = (kv_slice){"k\0a", 3};
    c.args[1] = (kv_slice){"k\0b", 3};
    r = run(&s, c);
    assert_int_equal(r.integer, 1);
    assert_null(kv_store_get(&s, "k\0a", 3, T0));
    kv_entry *kb = kv_store_get(&s, "k\0b", 3, T0);
    assert_non_null(kb);
    assert_int_equal(kb->value_len, 0);
    assert_int_equal(run(&s, mk(KV_OP_RENAME, 1, "a")).status, KV_ERR_MALFORMED);
    kv_store_close(&s);
}

/* ---- FLUSH, EXPIRE_KEYS, NOOP ---- */

static int flush_heard;

static void count_flush(void *ctx, const kv_change *c)
{
    (void)ctx;
    flush_heard += c->kind == KV_CHANGE_FLUSH;
}

static int flush_logged;

static void log_flush(void *ctx, const kv_change *c)
{
    (void)ctx;
    flush_logged += c->kind == KV_CHANGE_FLUSH;
}

static void test_flush(void **state)
{
    kv_store s;
    kv_store_init(&s, 18);
    /* a flush of nothing: no revision, nothing for on_change (the log of
     * changes), but on_notify hears it (Redis tells tracking clients) */
    s.on_notify = count_flush;
    s.on_change = log_flush;
    flush_heard = flush_logged = 0;
    kv_result r = run(&s, mk(KV_OP_FLUSH, 0));
    assert_int_equal(r.integer, 0);
    assert_int_equal(r.revision, 0);
    assert_int_equal(flush_heard, 1);
    assert_int_equal(flush_logged, 0);
    s.on_notify = NULL;
    s.on_change = NULL;
    put(&s, "a", "1");
    put_ttl(&s, "b", "2", T0 + 10);
    put(&s, "c", "3");
    r = run(&s, mk(KV_OP_FLUSH, 0));
    assert_int_equal(r.integer, 3);
    assert_int_equal(r.revision, 4);
    assert_int_equal(kv_keyspace_count(&s.ks), 0);
    assert_int_equal(s.ks.volatile_count, 0);
    expect_absent(&s, "a");
    /* usable afterwards */
    r = put(&s, "a", "x");
    assert_int_equal(r.create_rev, 5);
    kv_store_close(&s);
}

static void test_expire_keys(void **state)
{
    kv_store s;
    kv_store_init(&s, 19);
    put_ttl(&s, "past", "v", T0 - 10);
    put_ttl(&s, "now", "v", T0);
    put_ttl(&s, "later", "v", T0 + 10);
    put(&s, "forever", "v");
    uint64_t rev = s.revision;
    kv_command c = mk(KV_OP_EXPIRE_KEYS, 5, "past", "now", "later", "forever", "missing");
    kv_result r = run(&s, c);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.integer, 2);
    /* expired keys were already invisible: no revision */
    assert_int_equal(r.revision, rev);
    assert_int_equal(s.expired_keys, 2);
    assert_null(kv_keyspace_find(&s.ks, "past", 4));
    assert_null(kv_keyspace_find(&s.ks, "now", 3));
    assert_non_null(kv_keyspace_find(&s.ks, "later", 5));
    assert_non_null(kv_keyspace_find(&s.ks, "forever", 7));
    assert_int_equal(s.ks.volatile_count, 1);
    /* judged at the command's clock, not at anyone else's */
    c = mk(KV_OP_EXPIRE_KEYS, 1, "later");
    c.now_ms = T0 + 9;
    assert_int_equal(run(&s, c).integer, 0);
    c.now_ms = T0 + 10;
    assert_int_equal(run(&s, c).integer, 1);
    assert_int_equal(kv_keyspace_count(&s.ks), 1);
    /* no keys at all is fine */
    assert_int_equal(run(&s, mk(KV_OP_EXPIRE_KEYS, 0)).integer, 0);
    kv_store_close(&s);
}

static void test_noop_and_unknown(void **state)
{
    kv_store s;
    kv_store_init(&s, 20);
    put(&s, "a", "1");
    kv_result r = run(&s, mk(KV_OP_NOOP, 0));
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.revision, 1);
    r = run(&s, mk(0, 0));
    assert_int_equal(r.status, KV_ERR_MALFORMED);
    r = run(&s, mk(KV_OP_MAX_, 1, "a"));
    assert_int_equal(r.status, KV_ERR_MALFORMED);
    r = run(&s, mk(200, 0));
    assert_int_equal(r.status, KV_ERR_MALFORMED);
    assert_int_equal(s.revision, 1);
    expect_val(&s, "a", "1");
    kv_store_close(&s);
}

/* ---- expiry as seen by apply ---- */

static void test_expired_is_absent(void **state)
{
    kv_store s;
    kv_store_init(&s, 21);
    put_ttl(&s, "k", "old", T0 + 100); /* rev 1 */

    /* reads by the local clock hide it, but only apply removes it */
    assert_non_null(kv_store_get(&s, "k", 1, T0 + 99));
    assert_null(kv_store_get(&s, "k", 1, T0 + 100));
    assert_non_null(kv_keyspace_find(&s.ks, "k", 1));

    /* GET flag one ms before: the value; at the expiry: nothing */
    kv_command c = mk(KV_OP_GETEX, 1, "k");
    c.now_ms = T0 + 99;
    kv_result r = run(&s, c);
    expect_result_value(&r, "old");
    c = mk(KV_OP_PUT, 2, "k", "new");
    c.flags = KV_FLAG_NX | KV_FLAG_GET;
    c.now_ms = T0 + 100;
    r = run(&s, c);
    assert_int_equal(r.status, KV_OK);
    assert_false(r.has_value);
    assert_int_equal(r.create_rev, 2); /* a new incarnation */
    assert_int_equal(r.version, 1);
    assert_int_equal(r.expire_ms, 0);
    assert_int_equal(s.expired_keys, 1);

    /* INCR and APPEND start from nothing */
    put_ttl(&s, "n", "41", T0 + 5);
    c = mk(KV_OP_INCR, 1, "n");
    c.a = 1;
    c.now_ms = T0 + 5;
    r = run(&s, c);
    assert_int_equal(r.integer, 1);
    assert_int_equal(r.expire_ms, 0);
    put_ttl(&s, "s", "abc", T0 + 5);
    c = mk(KV_OP_APPEND, 2, "s", "x");
    c.now_ms = T0 + 6;
    r = run(&s, c);
    assert_int_equal(r.integer, 1);

    /* DEL of an expired key deletes nothing visible: 0, no revision */
    put_ttl(&s, "d", "v", T0 + 5);
    uint64_t rev = s.revision;
    c = mk(KV_OP_DEL, 1, "d");
    c.now_ms = T0 + 5;
    r = run(&s, c);
    assert_int_equal(r.integer, 0);
    assert_int_equal(r.revision, rev);
    assert_null(kv_keyspace_find(&s.ks, "d", 1));

    /* XX on an expired key fails, NX on one succeeds, MSET NX too */
    put_ttl(&s, "x", "v", T0 + 5);
    c = mk(KV_OP_PUT, 2, "x", "w");
    c.flags = KV_FLAG_XX;
    c.now_ms = T0 + 5;
    assert_int_equal(run(&s, c).status, KV_ERR_PRECONDITION);
    put_ttl(&s, "m", "v", T0 + 5);
    c = mk(KV_OP_MSET, 2, "m", "w");
    c.flags = KV_FLAG_NX;
    c.now_ms = T0 + 5;
    assert_int_equal(run(&s, c).integer, 1);

    /* IF_REV against an expired key sees "absent" */
    put_ttl(&s, "r", "v", T0 + 5);
    uint64_t mod = live(&s, "r")->mod_rev;
    c = mk(KV_OP_PUT, 2, "r", "w");
    c.flags = KV_FLAG_IF_REV;
    c.a = (int64_t)mod;
    c.now_ms = T0 + 5;
    assert_int_equal(run(&s, c).status, KV_ERR_PRECONDITION);
    c.a = 0;
    assert_int_equal(run(&s, c).status, KV_OK);
    kv_store_close(&s);
}

/* ---- plumbing ---- */

typedef struct cb_log {
    int calls;
    uint8_t last_op;
    uint64_t last_rev;
} cb_log;

static void on_result(void *ctx, const kv_command *cmd, const kv_result *res)
{
    cb_log *l = ctx;
    l->calls++;
    l->last_op = cmd->op;
    l->last_rev = res->revision;
}

static void test_on_result_and_replace(void **state)
{
    kv_store s;
    kv_store_init(&s, 22);
    cb_log log = {0};
    s.on_result = on_result;
    s.on_result_ctx = &log;
    put(&s, "a", "1");
    run(&s, mk(KV_OP_DEL, 1, "zz"));
    run(&s, mk(99, 0));
    assert_int_equal(log.calls, 3);
    assert_int_equal(log.last_op, 99);
    assert_int_equal(log.last_rev, 1);

    /* replace takes a keyspace by value and the revision with it */
    kv_keyspace ks;
    kv_keyspace_init(&ks, 5);
    kv_entry *e = kv_keyspace_insert(&ks, "r", 1, "x", 1);
    e->create_rev = e->mod_rev = 7;
    e->version = 1;
    kv_store_replace(&s, &ks, 7);
    assert_int_equal(s.revision, 7);
    expect_absent(&s, "a");
    expect_val(&s, "r", "x");
    kv_result r = put(&s, "r", "y");
    assert_int_equal(r.revision, 8);
    assert_int_equal(r.create_rev, 7);
    kv_store_close(&s);
}

/* ---- property: determinism ---- */

static const char *const prop_keys[] = {"k0", "k1",  "k2", "k3", "k4", "k5", "k6", "k7",
                                        "",   "k\0", "n0", "n1", "n2", "f0", "f1", "zz"};
static const size_t prop_key_lens[] = {2, 2, 2, 2, 2, 2, 2, 2, 0, 2, 2, 2, 2, 2, 2, 2};
static const char *const prop_vals[] = {
    "",    "0",   "1",   "-5", "42",          "9223372036854775807",  "x",
    "abc", "1.5", "3e2", "01", "hello world", "-9223372036854775808", "\x01\x02",
    " 7",  "10.5"};
static const char *const prop_floats[] = {"1",   "-1",  "0.5", "1e3", "-2.25",
                                          "nan", "inf", "x",   "0.1", "1e-3"};

static kv_slice prop_key(void)
{
    size_t i = rnd() % 16;
    return (kv_slice){prop_keys[i], prop_key_lens[i]};
}

static kv_slice prop_val(void)
{
    const char *v = prop_vals[rnd() % 16];
    return (kv_slice){v, strlen(v)};
}

/* A random command over a small keyspace, with a clock that moves forward
 * and expiry times around it, so that keys expire under apply. */
static kv_command prop_command(kv_slice *args, int64_t *clock)
{
    *clock += (int64_t)(rnd() % 40);
    kv_command c = {.now_ms = *clock, .args = args, .origin = rnd() % 3, .seq = rnd()};
    uint64_t pick = rnd() % 100;
    int64_t exp = 0;
    switch (rnd() % 4) {
    case 0:
        exp = 0;
        break;
    case 1:
        exp = *clock + (int64_t)(rnd() % 200);
        break;
    case 2:
        exp = *clock - (int64_t)(rnd() % 20);
        break;
    default:
        exp = *clock + 1;
        break;
    }
    uint16_t fl = (uint16_t)(rnd() & KV_FLAG_ALL_);
    if (pick < 25) {
        c.op = KV_OP_PUT;
        c.nargs = 2;
        args[0] = prop_key();
        args[1] = prop_val();
        c.flags = fl & (KV_FLAG_NX | KV_FLAG_XX | KV_FLAG_KEEPTTL | KV_FLAG_GET | KV_FLAG_IF_REV);
        if (rnd() % 3) c.flags &= (uint16_t) ~(KV_FLAG_NX | KV_FLAG_XX);
        c.a = (int64_t)(rnd() % 30);
        c.expire_ms = rnd() % 2 ? 0 : exp;
    } else if (pick < 35) {
        c.op = KV_OP_DEL;
        c.nargs = 1 + (uint32_t)(rnd() % 3);
        for (uint32_t i = 0; i < c.nargs; i++) args[i] = prop_key();
        if (rnd() % 4 == 0) {
            c.nargs = 1;
            c.flags = fl & (KV_FLAG_GET | KV_FLAG_IF_REV);
            c.a = (int64_t)(rnd() % 30);
        }
    } else if (pick < 40) {
        c.op = KV_OP_MSET;
        c.nargs = 2 * (1 + (uint32_t)(rnd() % 3));
        for (uint32_t i = 0; i < c.nargs; i += 2) {
            args[i] = prop_key();
            args[i + 1] = prop_val();
        }
        c.flags = fl & KV_FLAG_NX;
    } else if (pick < 52) {
        c.op = KV_OP_INCR;
        c.nargs = 1;
        args[0] = prop_key();
        c.a = rnd() % 10 == 0 ? (rnd() % 2 ? INT64_MAX : INT64_MIN) : (int64_t)(rnd() % 21) - 10;
    } else if (pick < 58) {
        c.op = KV_OP_INCRFLOAT;
        c.nargs = 2;
        args[0] = prop_key();
        const char *f = prop_floats[rnd() % 10];
        args[1] = (kv_slice){f, strlen(f)};
    } else if (pick < 64) {
        c.op = KV_OP_APPEND;
        c.nargs = 2;
        args[0] = prop_key();
        args[1] = prop_val();
        c.b = rnd() % 2 ? 0 : 20;
    } else if (pick < 69) {
        c.op = KV_OP_SETRANGE;
        c.nargs = 2;
        args[0] = prop_key();
        args[1] = prop_val();
        c.a = (int64_t)(rnd() % 12);
        c.b = rnd() % 2 ? 0 : 16;
    } else if (pick < 78) {
        c.op = KV_OP_EXPIRE;
        c.nargs = 1;
        args[0] = prop_key();
        c.expire_ms = exp ? exp : *clock + 50;
        c.flags = fl & (KV_FLAG_NX | KV_FLAG_XX | KV_FLAG_GT | KV_FLAG_LT);
    } else if (pick < 81) {
        c.op = KV_OP_PERSIST;
        c.nargs = 1;
        args[0] = prop_key();
    } else if (pick < 86) {
        c.op = KV_OP_GETEX;
        c.nargs = 1;
        args[0] = prop_key();
        c.expire_ms = exp;
        c.flags = fl & KV_FLAG_PERSIST;
    } else if (pick < 92) {
        c.op = KV_OP_RENAME;
        c.nargs = 2;
        args[0] = prop_key();
        args[1] = prop_key();
        c.flags = fl & KV_FLAG_NX;
    } else if (pick < 93) {
        c.op = KV_OP_FLUSH;
    } else if (pick < 98) {
        c.op = KV_OP_EXPIRE_KEYS;
        c.nargs = 1 + (uint32_t)(rnd() % 4);
        for (uint32_t i = 0; i < c.nargs; i++) args[i] = prop_key();
    } else {
        c.op = KV_OP_NOOP;
    }
    return c;
}

static void assert_same_result(const kv_result *x, const kv_result *y)
{
    assert_int_equal(x->status, y->status);
    assert_int_equal(x->integer, y->integer);
    assert_int_equal(x->has_value, y->has_value);
    assert_int_equal(x->value_len, y->value_len);
    if (x->value_len) assert_memory_equal(x->value, y->value, x->value_len);
    assert_int_equal(x->revision, y->revision);
    assert_int_equal(x->key_exists, y->key_exists);
    if (x->key_exists) {
        assert_int_equal(x->create_rev, y->create_rev);
        assert_int_equal(x->mod_rev, y->mod_rev);
        assert_int_equal(x->version, y->version);
        assert_int_equal(x->expire_ms, y->expire_ms);
    }
}

/* LMPOP: the first key holding a non-empty list serves (absent keys are
 * skipped, another type before it is WRONGTYPE); the value names the key
 * and carries the elements; nothing found changes nothing. */
static uint32_t u32_at(const char *p)
{
    const unsigned char *q = (const unsigned char *)p;
    return (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
}

static void test_lmpop(void **state)
{
    (void)state;
    kv_store s;
    kv_store_init(&s, 1);
    kv_command c = mk(KV_OP_LMPOP, 2, "none", "l");
    c.a = 1;
    c.b = 2;
    kv_result r = run(&s, c);
    assert_int_equal(r.status, KV_OK);
    assert_false(r.has_value);
    assert_int_equal(s.revision, 0);

    c = mk(KV_OP_LPUSH, 4, "l", "a", "b", "c");
    c.a = 0; /* RPUSH */
    run(&s, c);
    c = mk(KV_OP_LMPOP, 2, "none", "l");
    c.a = 0; /* from the tail */
    c.b = 2;
    r = run(&s, c);
    assert_true(r.has_value);
    assert_int_equal(r.integer, 2);
    assert_int_equal(u32_at(r.value), 1);
    assert_memory_equal(r.value + 4, "l", 1);
    assert_int_equal(u32_at(r.value + 5), 1);
    assert_memory_equal(r.value + 9, "c", 1);
    assert_int_equal(u32_at(r.value + 10), 1);
    assert_memory_equal(r.value + 14, "b", 1);
    assert_int_equal(r.value_len, 15);

    c = mk(KV_OP_LMPOP, 1, "l");
    c.a = 1;
    c.b = 5; /* more than it holds: what there is, and the list goes */
    r = run(&s, c);
    assert_int_equal(r.integer, 1);
    assert_null(kv_keyspace_find(&s.ks, "l", 1));

    put(&s, "str", "v");
    c = mk(KV_OP_LPUSH, 2, "l", "x");
    run(&s, c);
    c = mk(KV_OP_LMPOP, 2, "str", "l");
    c.a = 1;
    c.b = 1;
    assert_int_equal(run(&s, c).status, KV_ERR_WRONGTYPE);
    c = mk(KV_OP_LMPOP, 2, "l", "str");
    c.a = 1;
    c.b = 1;
    assert_int_equal(run(&s, c).integer, 1); /* served before the string */
    c = mk(KV_OP_LMPOP, 1, "l");
    c.b = 0;
    assert_int_equal(run(&s, c).status, KV_ERR_MALFORMED);
    kv_store_close(&s);
}

static void test_property_determinism(void **state)
{
    for (uint64_t run_seed = 1; run_seed <= 8; run_seed++) {
        rng_state = run_seed * 7919;
        /* different hash seeds: bucket layout and skiplist heights differ,
         * the state must not */
        kv_store a, b;
        kv_store_init(&a, run_seed);
        kv_store_init(&b, ~run_seed * 0x9e3779b97f4a7c15ull);
        buf sa, sb, enc;
        buf_init(&sa);
        buf_init(&sb);
        buf_init(&enc);
        kv_slice args[8], dargs[8];
        int64_t clock = T0;
        uint64_t changes = 0;
        for (int step = 0; step < 10000; step++) {
            kv_command c = prop_command(args, &clock);
            /* replica b gets the command through the log encoding */
            buf_reset(&enc);
            kv_command_encode(&c, &enc);
            kv_command d;
            uint32_t need = 0;
            const char *err = NULL;
            assert_int_equal(kv_command_decode(enc.data, enc.len, &d, dargs, 8, &need, &err), 0);
            kv_result ra, rb;
            uint64_t before = a.revision;
            kv_store_apply(&a, &c, &ra);
            kv_store_apply(&b, &d, &rb);
            assert_same_result(&ra, &rb);
            assert_true(a.revision == before || a.revision == before + 1);
            changes += a.revision != before;
            if (step % 500 == 0 || step == 9999) {
                snapshot_of(&a, &sa);
                snapshot_of(&b, &sb);
                assert_int_equal(sa.len, sb.len);
                assert_memory_equal(sa.data, sb.data, sa.len);
                assert_int_equal(a.ks.volatile_count, b.ks.volatile_count);
                assert_int_equal(a.expired_keys, b.expired_keys);
            }
        }
        assert_true(changes > 1000);
        buf_close(&sa);
        buf_close(&sb);
        buf_close(&enc);
        kv_store_close(&a);
        kv_store_close(&b);
    }
}

/* ---- property: the change stream rebuilds the keyspace ---- */

/* Every change, applied as a plain PUT (value and absolute expiry), DEL or
 * FLUSH to a second store, must leave it with the same live keys, values
 * and expiries as the source; every revision the source adds reports at
 * least one change, in order. This is what the PostgreSQL transaction log
 * replays (txlog). */
typedef struct change_sink {
    kv_store *copy;
    uint64_t last_rev;
    uint64_t n;
} change_sink;

static void replay_change(void *ctx, const kv_change *ch)
{
    change_sink *k = ctx;
    assert_true(ch->revision == k->last_rev || ch->revision == k->last_rev + 1);
    k->last_rev = ch->revision;
    k->n++;
    kv_slice a[2] = {{ch->key, ch->key_len}, {ch->value, ch->value_len}};
    kv_command c = {.now_ms = ch->now_ms, .args = a};
    if (ch->kind == KV_CHANGE_PUT) {
        c.op = KV_OP_PUT;
        c.nargs = 2;
        c.expire_ms = ch->expire_ms;
    } else if (ch->kind == KV_CHANGE_DELETE) {
        c.op = KV_OP_DEL;
        c.nargs = 1;
    } else {
        assert_int_equal(ch->kind, KV_CHANGE_FLUSH);
        c.op = KV_OP_FLUSH;
    }
    kv_result r;
    kv_store_apply(k->copy, &c, &r);
    assert_int_equal(r.status, KV_OK);
}

static void test_property_changes_rebuild_the_keyspace(void **state)
{
    (void)state;
    for (uint64_t run_seed = 1; run_seed <= 4; run_seed++) {
        rng_state = run_seed * 104729;
        kv_store a, b;
        kv_store_init(&a, run_seed);
        kv_store_init(&b, run_seed + 1);
        change_sink k = {.copy = &b};
        a.on_change = replay_change;
        a.on_change_ctx = &k;
        kv_slice args[8];
        int64_t clock = T0;
        for (int step = 0; step < 5000; step++) {
            kv_command c = prop_command(args, &clock);
            uint64_t before = a.revision;
            kv_result r;
            kv_store_apply(&a, &c, &r);
            /* a new revision always came with its change(s) */
            assert_int_equal(k.last_rev, a.revision);
            if (a.revision == before) continue;
            for (size_t i = 0; i < 16; i++) {
                kv_entry *x = kv_store_get(&a, prop_keys[i], prop_key_lens[i], clock);
                kv_entry *y = kv_store_get(&b, prop_keys[i], prop_key_lens[i], clock);
                assert_true((x == NULL) == (y == NULL));
                if (!x) continue;
                assert_int_equal(x->value_len, y->value_len);
                assert_memory_equal(x->value, y->value, x->value_len);
                assert_int_equal(x->expire_ms, y->expire_ms);
            }
        }
        assert_true(k.n > 1000);
        kv_store_close(&a);
        kv_store_close(&b);
    }
}

/* ---- property: a model of PUT/DEL/INCR ---- */

#define MODEL_KEYS 8

typedef struct model_entry {
    bool present;
    char val[32];
    size_t len;
    uint64_t create_rev, mod_rev, version;
} model_entry;

/* The integer rules, written independently of util/strconv. */
static bool model_parse_int(const char *p, size_t n, int64_t *out)
{
    if (n == 0 || n > 20) return false;
    size_t i = 0;
    bool neg = p[0] == '-';
    if (neg) i = 1;
    if (i == n) return false;
    if (p[i] == '0' && (n - i > 1 || neg)) return false;
    __int128 v = 0;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return false;
        v = v * 10 + (p[i] - '0');
        if (v > (__int128)INT64_MAX + 1) return false;
    }
    if (neg) v = -v;
    if (v > INT64_MAX || v < INT64_MIN) return false;
    *out = (int64_t)v;
    return true;
}

static void test_property_model(void **state)
{
    static const char *const keys[MODEL_KEYS] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    static const char *const vals[] = {"0",
                                       "1",
                                       "-1",
                                       "17",
                                       "x",
                                       "",
                                       "01",
                                       "-0",
                                       "9223372036854775807",
                                       "-9223372036854775808",
                                       "12a",
                                       "hello"};
    for (uint64_t run_seed = 1; run_seed <= 6; run_seed++) {
        rng_state = run_seed * 104729;
        kv_store s;
        kv_store_init(&s, run_seed);
        model_entry m[MODEL_KEYS] = {0};
        uint64_t rev = 0;
        for (int step = 0; step < 10000; step++) {
            int ki = (int)(rnd() % MODEL_KEYS);
            model_entry *e = &m[ki];
            kv_result r;
            uint64_t kind = rnd() % 10;
            if (kind < 4) {
                const char *v = vals[rnd() % (sizeof(vals) / sizeof(vals[0]))];
                kv_command c = mk(KV_OP_PUT, 2, keys[ki], v);
                c.flags = (uint16_t)(rnd() & (KV_FLAG_NX | KV_FLAG_XX | KV_FLAG_GET));
                if (rnd() % 4 == 0) {
                    c.flags |= KV_FLAG_IF_REV;
                    c.a = rnd() % 2 ? (int64_t)e->mod_rev : (int64_t)(rnd() % (rev + 2));
                }
                bool ok = true;
                if (c.flags & KV_FLAG_NX) ok = ok && !e->present;
                if (c.flags & KV_FLAG_XX) ok = ok && e->present;
                if (c.flags & KV_FLAG_IF_REV)
                    ok = ok && (c.a == 0 ? !e->present : e->present && e->mod_rev == (uint64_t)c.a);
                model_entry old = *e;
                r = run(&s, c);
                if (c.flags & KV_FLAG_GET) {
                    assert_int_equal(r.has_value, old.present);
                    if (old.present) {
                        assert_int_equal(r.value_len, old.len);
                        if (old.len) assert_memory_equal(r.value, old.val, old.len);
                    }
                }
                if (!ok) {
                    assert_int_equal(r.status, KV_ERR_PRECONDITION);
                } else {
                    assert_int_equal(r.status, KV_OK);
                    rev++;
                    if (!e->present) {
                        e->present = true;
                        e->create_rev = rev;
                        e->version = 0;
                    }
                    e->version++;
                    e->mod_rev = rev;
                    e->len = strlen(v);
                    memcpy(e->val, v, e->len);
                }
            } else if (kind < 7) {
                /* DEL of one to three keys, sometimes with GET/IF_REV */
                uint32_t n = 1 + (uint32_t)(rnd() % 3);
                int idx[3] = {ki, (int)(rnd() % MODEL_KEYS), (int)(rnd() % MODEL_KEYS)};
                kv_command c = mk(KV_OP_DEL, n, keys[idx[0]], keys[idx[1]], keys[idx[2]]);
                bool ok = true;
                if (n == 1 && rnd() % 3 == 0) {
                    c.flags = KV_FLAG_IF_REV | (rnd() % 2 ? KV_FLAG_GET : 0);
                    c.a = rnd() % 2 ? (int64_t)e->mod_rev : (int64_t)(rnd() % (rev + 2));
                    ok = c.a == 0 ? !e->present : e->present && e->mod_rev == (uint64_t)c.a;
                }
                r = run(&s, c);
                if (!ok) {
                    assert_int_equal(r.status, KV_ERR_PRECONDITION);
                } else {
                    assert_int_equal(r.status, KV_OK);
                    int64_t deleted = 0;
                    for (uint32_t i = 0; i < n; i++) {
                        if (m[idx[i]].present) deleted++;
                        m[idx[i]].present = false;
                    }
                    assert_int_equal(r.integer, deleted);
                    if (deleted) rev++;
                }
            } else {
                int64_t by = rnd() % 8 == 0 ? (rnd() % 2 ? INT64_MAX : INT64_MIN)
                                            : (int64_t)(rnd() % 2001) - 1000;
                kv_command c = mk(KV_OP_INCR, 1, keys[ki]);
                c.a = by;
                r = run(&s, c);
                int64_t cur = 0, next;
                if (e->present && !model_parse_int(e->val, e->len, &cur)) {
                    assert_int_equal(r.status, KV_ERR_NOT_INTEGER);
                } else if (__builtin_add_overflow(cur, by, &next)) {
                    assert_int_equal(r.status, KV_ERR_OVERFLOW);
                } else {
                    assert_int_equal(r.status, KV_OK);
                    assert_int_equal(r.integer, next);
                    rev++;
                    if (!e->present) {
                        e->present = true;
                        e->create_rev = rev;
                        e->version = 0;
                    }
                    e->version++;
                    e->mod_rev = rev;
                    e->len = (size_t)snprintf(e->val, sizeof(e->val), "%lld", (long long)next);
                }
            }
            assert_int_equal(s.revision, rev);
            /* the whole map agrees after every step */
            uint64_t present = 0;
            for (int i = 0; i < MODEL_KEYS; i++) {
                kv_entry *x = live(&s, keys[i]);
                assert_int_equal(x != NULL, m[i].present);
                if (!x) continue;
                present++;
                assert_int_equal(x->value_len, m[i].len);
                if (m[i].len) assert_memory_equal(x->value, m[i].val, m[i].len);
                assert_int_equal(x->create_rev, m[i].create_rev);
                assert_int_equal(x->mod_rev, m[i].mod_rev);
                assert_int_equal(x->version, m[i].version);
            }
            assert_int_equal(kv_keyspace_count(&s.ks), present);
        }
        kv_store_close(&s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_basic),
        cmocka_unit_test(test_put_nx_xx),
        cmocka_unit_test(test_put_keepttl),
        cmocka_unit_test(test_put_get_flag),
        cmocka_unit_test(test_put_if_rev),
        cmocka_unit_test(test_revisions_and_versions),
        cmocka_unit_test(test_del),
        cmocka_unit_test(test_del_if_rev),
        cmocka_unit_test(test_mset),
        cmocka_unit_test(test_incr),
        cmocka_unit_test(test_incrfloat),
        cmocka_unit_test(test_append),
        cmocka_unit_test(test_setrange),
        cmocka_unit_test(test_expire),
        cmocka_unit_test(test_persist),
        cmocka_unit_test(test_getex),
        cmocka_unit_test(test_rename),
        cmocka_unit_test(test_flush),
        cmocka_unit_test(test_expire_keys),
        cmocka_unit_test(test_noop_and_unknown),
        cmocka_unit_test(test_expired_is_absent),
        cmocka_unit_test(test_on_result_and_replace),
        cmocka_unit_test(test_lmpop),
        cmocka_unit_test(test_property_determinism),
        cmocka_unit_test(test_property_model),
        cmocka_unit_test(test_property_changes_rebuild_the_keyspace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
