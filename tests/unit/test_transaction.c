/* kv/transaction: a KV_OP_EXEC entry applies its steps in order at its own
 * clock, tells the on_tx_step hook about each (read steps included), is
 * aborted whole by a watched key whose revision moved (expiry counts, a
 * key absent then and now does not), and refuses malformed shapes (nested
 * transactions, a revision that is not 8 bytes, a wrong argument count)
 * without changing anything. A replica applying the same entries ends
 * with the same keyspace. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/command.h"
#include "kv/snapshot.h"
#include "kv/store.h"
#include "kv/transaction.h"

#define T0 1000000

typedef struct seen_step {
    int64_t step;
    bool has_res;
    kv_status status;
    int64_t integer;
    char value[32];
    uint64_t revision_then; /* the store's revision during the call */
} seen_step;

typedef struct hook {
    kv_store *s;
    seen_step steps[32];
    int n;
} hook;

static void on_step(void *ctx, const kv_command *tx, int64_t step, const kv_result *res)
{
    (void)tx;
    hook *h = ctx;
    seen_step *e = &h->steps[h->n++];
    memset(e, 0, sizeof(*e));
    e->step = step;
    e->has_res = res != NULL;
    e->revision_then = h->s->revision;
    if (res) {
        e->status = res->status;
        e->integer = res->integer;
        size_t n = res->value_len < sizeof(e->value) - 1 ? res->value_len : sizeof(e->value) - 1;
        memcpy(e->value, res->value, n);
    }
}

static kv_slice str(const char *s)
{
    return (kv_slice){s, strlen(s)};
}

/* A transaction under construction: steps encoded into bufs. */
typedef struct tx {
    kv_slice args[64];
    uint32_t nargs;
    int64_t nw, nsteps;
    char revs[8][8];
    buf steps[16];
} tx;

static void tx_init(tx *t, const char *token)
{
    memset(t, 0, sizeof(*t));
    t->args[t->nargs++] = str(token);
}

static void tx_watch(tx *t, const char *key, uint64_t rev)
{
    assert_int_equal(t->nsteps, 0);
    for (int b = 0; b < 8; b++) t->revs[t->nw][b] = (char)(rev >> (8 * b));
    t->args[t->nargs++] = str(key);
    t->args[t->nargs++] = (kv_slice){t->revs[t->nw], 8};
    t->nw++;
}

static void tx_step(tx *t, int op, int64_t a, uint32_t nargs, const char *const *argv)
{
    kv_slice sargs[8];
    for (uint32_t i = 0; i < nargs; i++) sargs[i] = str(argv[i]);
    kv_command c = {.op = (uint8_t)op, .a = a, .nargs = nargs, .args = sargs};
    buf *b = &t->steps[t->nsteps];
    buf_init(b);
    kv_command_encode(&c, b);
    t->args[t->nargs++] = (kv_slice){b->data, b->len};
    t->nsteps++;
}

static void tx_read(tx *t)
{
    t->args[t->nargs++] = (kv_slice){"", 0};
    t->nsteps++;
}

static kv_command tx_cmd(tx *t, int64_t now)
{
    return (kv_command){.op = KV_OP_EXEC,
                        .now_ms = now,
                        .a = t->nw,
                        .b = t->nsteps,
                        .nargs = t->nargs,
                        .args = t->args};
}

static void tx_free(tx *t)
{
    for (int64_t i = 0; i < t->nsteps; i++) buf_close(&t->steps[i]);
}

static void put(kv_store *s, const char *k, const char *v, int64_t expire_ms)
{
    kv_slice a[2] = {str(k), str(v)};
    kv_command c = {.op = KV_OP_PUT, .now_ms = T0, .expire_ms = expire_ms, .nargs = 2, .args = a};
    kv_result r;
    kv_store_apply(s, &c, &r);
    assert_int_equal(r.status, KV_OK);
}

static void test_steps_apply_in_order_and_reads_see_between(void **state)
{
    (void)state;
    kv_store s;
    kv_store_init(&s, 1);
    hook h = {.s = &s};
    s.on_tx_step = on_step;
    s.on_tx_step_ctx = &h;
    tx t;
    tx_init(&t, "tok");
    tx_step(&t, KV_OP_PUT, 0, 2, (const char *[]){"a", "1"});
    tx_read(&t);
    tx_step(&t, KV_OP_INCR, 5, 1, (const char *[]){"a"});
    tx_step(&t, KV_OP_LPUSH, 1, 2, (const char *[]){"a", "x"}); /* WRONGTYPE: that step only */
    tx_step(&t, KV_OP_PUT, 0, 2, (const char *[]){"b", "2"});
    kv_command c = tx_cmd(&t, T0);
    kv_result r;
    kv_store_apply(&s, &c, &r);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.integer, 1);
    assert_int_equal(h.n, 6);
    assert_int_equal(h.steps[0].step, KV_TX_BEGIN);
    assert_int_equal(h.steps[0].integer, 1);
    assert_int_equal(h.steps[1].step, 0);
    assert_int_equal(h.steps[1].status, KV_OK);
    assert_int_equal(h.steps[2].step, 1);
    assert_false(h.steps[2].has_res);
    assert_int_equal(h.steps[2].revision_then, 1); /* the read sees the first write only */
    assert_int_equal(h.steps[3].integer, 6);
    assert_int_equal(h.steps[4].status, KV_ERR_WRONGTYPE);
    assert_int_equal(h.steps[5].status, KV_OK);
    kv_entry *e = kv_store_get(&s, "a", 1, T0);
    assert_non_null(e);
    assert_memory_equal(e->value, "6", 1);
    assert_non_null(kv_store_get(&s, "b", 1, T0));
    assert_int_equal(s.revision, 3);
    tx_free(&t);
    kv_store_close(&s);
}

static void test_a_moved_watch_aborts_everything(void **state)
{
    (void)state;
    kv_store s;
    kv_store_init(&s, 1);
    hook h = {.s = &s};
    s.on_tx_step = on_step;
    s.on_tx_step_ctx = &h;
    put(&s, "w", "v", 0);
    uint64_t rev = kv_tx_watch_rev(&s.ks, "w", 1, T0);
    assert_int_equal(rev, 1);
    assert_int_equal(kv_tx_watch_rev(&s.ks, "nope", 4, T0), 0);
    tx t;
    tx_init(&t, "tok");
    tx_watch(&t, "w", rev);
    tx_watch(&t, "nope", 0);
    tx_step(&t, KV_OP_PUT, 0, 2, (const char *[]){"x", "1"});
    kv_command c = tx_cmd(&t, T0);
    kv_result r;
    kv_store_apply(&s, &c, &r); /* unchanged: runs */
    assert_int_equal(r.integer, 1);
    assert_int_equal(s.revision, 2);
    put(&s, "w", "v", 0); /* the same value, still a write */
    h.n = 0;
    kv_store_apply(&s, &c, &r);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(r.integer, 0);
    assert_int_equal(h.n, 1);
    assert_int_equal(h.steps[0].step, KV_TX_BEGIN);
    assert_int_equal(h.steps[0].integer, 0);
    assert_int_equal(s.revision, 3); /* nothing applied */
    tx_free(&t);
    kv_store_close(&s);
}

static void test_expiry_moves_a_watch(void **state)
{
    (void)state;
    kv_store s;
    kv_store_init(&s, 1);
    put(&s, "e", "v", T0 + 100);
    put(&s, "gone", "v", T0 + 10);
    uint64_t live = kv_tx_watch_rev(&s.ks, "e", 1, T0);
    uint64_t dead = kv_tx_watch_rev(&s.ks, "gone", 4, T0 + 50); /* expired when watched */
    assert_int_equal(live, 1);
    assert_int_equal(dead, 0);
    tx t;
    tx_init(&t, "");
    tx_watch(&t, "gone", dead);
    tx_step(&t, KV_OP_PUT, 0, 2, (const char *[]){"x", "1"});
    kv_command c = tx_cmd(&t, T0 + 200);
    kv_result r;
    kv_store_apply(&s, &c, &r); /* expired then, expired now: runs */
    assert_int_equal(r.integer, 1);
    tx_free(&t);
    tx_init(&t, "");
    tx_watch(&t, "e", live);
    tx_step(&t, KV_OP_PUT, 0, 2, (const char *[]){"y", "1"});
    c = tx_cmd(&t, T0 + 50);
    kv_store_apply(&s, &c, &r); /* still alive at the entry's clock */
    assert_int_equal(r.integer, 1);
    c = tx_cmd(&t, T0 + 100);
    kv_store_apply(&s, &c, &r); /* expired by the entry's clock: aborted */
    assert_int_equal(r.integer, 0);
    tx_free(&t);
    kv_store_close(&s);
}

static void test_malformed_transactions_change_nothing(void **state)
{
    (void)state;
    kv_store s;
    kv_store_init(&s, 1);
    tx t;
    tx_init(&t, "tok");
    tx_step(&t, KV_OP_PUT, 0, 2, (const char *[]){"x", "1"});
    kv_command c = tx_cmd(&t, T0);
    kv_result r;
    c.nargs--; /* a step missing */
    kv_store_apply(&s, &c, &r);
    assert_int_equal(r.status, KV_ERR_MALFORMED);
    c = tx_cmd(&t, T0);
    c.a = 1; /* a watch that is not there */
    kv_store_apply(&s, &c, &r);
    assert_int_equal(r.status, KV_ERR_MALFORMED);
    c = tx_cmd(&t, T0);
    c.b = -1;
    kv_store_apply(&s, &c, &r);
    assert_int_equal(r.status, KV_ERR_MALFORMED);
    assert_int_equal(s.revision, 0);
    tx_free(&t);

    /* a revision of 7 bytes */
    tx_init(&t, "tok");
    tx_watch(&t, "k", 0);
    t.args[2].len = 7;
    tx_step(&t, KV_OP_PUT, 0, 2, (const char *[]){"x", "1"});
    c = tx_cmd(&t, T0);
    kv_store_apply(&s, &c, &r);
    assert_int_equal(r.status, KV_ERR_MALFORMED);
    tx_free(&t);

    /* a transaction inside a transaction, and a step that does not
     * decode: those steps fail, the others apply */
    tx inner;
    tx_init(&inner, "");
    tx_step(&inner, KV_OP_PUT, 0, 2, (const char *[]){"in", "1"});
    kv_command ic = tx_cmd(&inner, T0);
    buf nested;
    buf_init(&nested);
    kv_command_encode(&ic, &nested);
    tx_init(&t, "");
    t.args[t.nargs++] = (kv_slice){nested.data, nested.len};
    t.args[t.nargs++] = str("garbage that is no command");
    t.nsteps = 2;
    tx_step(&t, KV_OP_PUT, 0, 2, (const char *[]){"after", "1"});
    hook h = {.s = &s};
    s.on_tx_step = on_step;
    s.on_tx_step_ctx = &h;
    c = tx_cmd(&t, T0);
    kv_store_apply(&s, &c, &r);
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(h.n, 4);
    assert_int_equal(h.steps[1].status, KV_ERR_MALFORMED);
    assert_int_equal(h.steps[2].status, KV_ERR_MALFORMED);
    assert_int_equal(h.steps[3].status, KV_OK);
    assert_null(kv_store_get(&s, "in", 2, T0));
    assert_non_null(kv_store_get(&s, "after", 5, T0));
    buf_close(&nested);
    tx_free(&inner);
    tx_free(&t);
    kv_store_close(&s);
}

static void test_replicas_agree(void **state)
{
    (void)state;
    kv_store a, b;
    kv_store_init(&a, 1);
    kv_store_init(&b, 99); /* another seed: another table layout, same state */
    tx t;
    tx_init(&t, "tok");
    tx_step(&t, KV_OP_PUT, 0, 2, (const char *[]){"k", "1"});
    tx_step(&t, KV_OP_INCR, 41, 1, (const char *[]){"k"});
    tx_step(&t, KV_OP_LPUSH, 1, 3, (const char *[]){"l", "x", "y"});
    kv_command c = tx_cmd(&t, T0);
    buf enc;
    buf_init(&enc);
    kv_command_encode(&c, &enc);
    kv_slice space[16];
    uint32_t need = 0;
    const char *why = NULL;
    kv_command d;
    assert_int_equal(kv_command_decode(enc.data, enc.len, &d, space, 16, &need, &why), 0);
    kv_result r;
    kv_store_apply(&a, &c, &r);
    kv_store_apply(&b, &d, &r);
    buf sa, sb;
    buf_init(&sa);
    buf_init(&sb);
    assert_int_equal(kv_snapshot_write(&a, kv_snapshot_sink_buf, &sa), 0);
    assert_int_equal(kv_snapshot_write(&b, kv_snapshot_sink_buf, &sb), 0);
    assert_int_equal(sa.len, sb.len);
    assert_memory_equal(sa.data, sb.data, sa.len);
    assert_string_equal(kv_op_name(KV_OP_EXEC), "exec");
    buf_close(&sa);
    buf_close(&sb);
    buf_close(&enc);
    tx_free(&t);
    kv_store_close(&a);
    kv_store_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps_apply_in_order_and_reads_see_between),
        cmocka_unit_test(test_a_moved_watch_aborts_everything),
        cmocka_unit_test(test_expiry_moves_a_watch),
        cmocka_unit_test(test_malformed_transactions_change_nothing),
        cmocka_unit_test(test_replicas_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
