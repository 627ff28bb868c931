/* kv/stream_group: consumer groups applied through kv_store_apply. XGROUP
 * CREATE refuses a name that exists; XREADGROUP > delivers each entry once
 * to the group and records it pending for its consumer; an explicit ID
 * re-reads the consumer's own pending entries (counting a delivery);
 * XACK removes; XCLAIM moves entries between consumers only past their
 * idle time; DELCONSUMER drops the consumer's entries; the groups travel
 * in snapshots and in COPY whole (owners, times, counts), and a damaged
 * group table is refused. Groups and consumers are kept in name order (as
 * Redis lists them), also when a snapshot holds them in another order; a
 * name twice is refused. XSETID checks against the stream at apply. */
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
#include "kv/stream.h"
#include "kv/stream_group.h"
#include "util/hash.h"

#define T0 1000000

static kv_result run(kv_store *s, int op, int64_t a, int64_t b, uint16_t flags, int64_t now,
                     uint32_t nargs, const char *const *argv)
{
    kv_slice sargs[16];
    for (uint32_t i = 0; i < nargs; i++) sargs[i] = (kv_slice){argv[i], strlen(argv[i])};
    kv_command c = {.op = (uint8_t)op,
                    .now_ms = now,
                    .a = a,
                    .b = b,
                    .flags = flags,
                    .expire_ms = -1,
                    .nargs = nargs,
                    .args = sargs};
    kv_result r;
    kv_store_apply(s, &c, &r);
    return r;
}

static void xadd(kv_store *s, const char *id)
{
    kv_result r = run(s, KV_OP_XADD, 0, 0, 0, T0, 5, (const char *[]){"s", id, "", "f", "v"});
    assert_int_equal(r.status, KV_OK);
}

static kv_sg *group(kv_store *s, const char *name)
{
    kv_entry *e = kv_store_get(s, "s", 1, T0);
    assert_non_null(e);
    return kv_sg_find(e, name, strlen(name));
}

/* The IDs of an XREADGROUP answer's first stream. */
static uint32_t read_ids(const kv_result *r, uint64_t *ms_out, uint32_t max)
{
    const char *p = r->value;
    uint32_t nstreams;
    memcpy(&nstreams, p, 4);
    if (!nstreams) return 0;
    uint32_t kl;
    memcpy(&kl, p + 4, 4);
    p += 8 + kl;
    uint32_t n;
    memcpy(&n, p, 4);
    p += 4;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t ms;
        memcpy(&ms, p, 8);
        if (i < max) ms_out[i] = ms;
        int32_t pairs;
        memcpy(&pairs, p + 16, 4);
        p += 20;
        for (int32_t k = 0; k < 2 * pairs; k++) {
            uint32_t l;
            memcpy(&l, p, 4);
            p += 4 + l;
        }
    }
    return n;
}

static void test_deliver_ack_claim(void **state)
{
    (void)state;
    kv_store s;
    kv_store_init(&s, 1);
    for (int i = 1; i <= 5; i++) {
        char id[16];
        snprintf(id, sizeof(id), "%d-1", i);
        xadd(&s, id);
    }
    assert_int_equal(run(&s, KV_OP_XGROUP, KV_XGROUP_CREATE, INT64_MIN, 0, T0, 3,
                         (const char *[]){"s", "g", "0"})
                         .status,
                     KV_OK);
    assert_int_equal(run(&s, KV_OP_XGROUP, KV_XGROUP_CREATE, INT64_MIN, 0, T0, 3,
                         (const char *[]){"s", "g", "$"})
                         .status,
                     KV_ERR_BUSYGROUP);
    uint64_t ids[8];
    kv_result r = run(&s, KV_OP_XREADGROUP, 3, 1, 0, T0, 4, (const char *[]){"g", "a", "s", ""});
    assert_int_equal(read_ids(&r, ids, 8), 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[2], 3);
    r = run(&s, KV_OP_XREADGROUP, 0, 1, 0, T0 + 10, 4, (const char *[]){"g", "b", "s", ""});
    assert_int_equal(read_ids(&r, ids, 8), 2); /* never the same entry twice */
    assert_int_equal(ids[0], 4);
    r = run(&s, KV_OP_XREADGROUP, 0, 1, 0, T0, 4, (const char *[]){"g", "b", "s", ""});
    assert_int_equal(read_ids(&r, ids, 8), 0);
    kv_sg *g = group(&s, "g");
    assert_int_equal(g->npel, 5);
    assert_int_equal(g->last_id.ms, 5);
    assert_int_equal(g->entries_read, 5);
    /* history: a's own pending entries, counted as delivered again */
    r = run(&s, KV_OP_XREADGROUP, 0, 1, 0, T0 + 50, 4, (const char *[]){"g", "a", "s", "0"});
    assert_int_equal(read_ids(&r, ids, 8), 3);
    assert_int_equal(kv_sg_pel_find(g, (kv_stream_id){1, 1})->deliveries, 2);
    assert_int_equal(kv_sg_pel_find(g, (kv_stream_id){1, 1})->delivered_ms, T0 + 50);
    /* XACK */
    r = run(&s, KV_OP_XACK, 0, 0, 0, T0, 4, (const char *[]){"s", "g", "1-1", "9-9"});
    assert_int_equal(r.integer, 1);
    assert_int_equal(g->npel, 4);
    /* XCLAIM: min idle 100 at T0 + 100: 4-1 (delivered at T0 + 10) is not idle enough */
    r = run(&s, KV_OP_XCLAIM, 100, 0, KV_FLAG_XX, T0 + 100, 5,
            (const char *[]){"s", "g", "c", "2-1", "4-1"});
    assert_int_equal(r.status, KV_OK);
    kv_sg_consumer *c = kv_sg_consumer_find(g, "c", 1);
    assert_non_null(c);
    assert_int_equal(c->pending, 0); /* 2-1 was delivered again at T0 + 50 */
    r = run(&s, KV_OP_XCLAIM, 100, 0, 0, T0 + 200, 5,
            (const char *[]){"s", "g", "c", "2-1", "4-1"});
    assert_int_equal(c->pending, 2);
    assert_int_equal(kv_sg_pel_find(g, (kv_stream_id){4, 1})->deliveries, 2);
    /* DELCONSUMER b: its remaining entry (5-1) goes */
    r = run(&s, KV_OP_XGROUP, KV_XGROUP_DELCONSUMER, 0, 0, T0, 3, (const char *[]){"s", "g", "b"});
    assert_int_equal(r.integer, 1);
    assert_int_equal(g->npel, 3); /* 2-1 and 4-1 (c's), 3-1 (a's) */
    assert_null(kv_sg_pel_find(g, (kv_stream_id){5, 1}));
    kv_store_close(&s);
}

static int sink(void *ctx, const void *p, size_t n)
{
    buf_append(ctx, p, n);
    return 0;
}

static void same_groups(kv_sg *a, kv_sg *b)
{
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->npel, b->npel);
    assert_int_equal(a->nconsumers, b->nconsumers);
    assert_int_equal(a->entries_read, b->entries_read);
    assert_int_equal(kv_stream_id_cmp(a->last_id, b->last_id), 0);
    for (uint64_t i = 0; i < a->npel; i++) {
        assert_int_equal(kv_stream_id_cmp(a->pel[i].id, b->pel[i].id), 0);
        assert_int_equal(a->pel[i].deliveries, b->pel[i].deliveries);
        assert_int_equal(a->pel[i].delivered_ms, b->pel[i].delivered_ms);
        assert_int_equal(a->pel[i].owner->name_len, b->pel[i].owner->name_len);
        assert_memory_equal(a->pel[i].owner->name, b->pel[i].owner->name,
                            a->pel[i].owner->name_len);
    }
}

static void test_snapshot_and_copy_keep_groups(void **state)
{
    (void)state;
    kv_store s;
    kv_store_init(&s, 1);
    xadd(&s, "1-1");
    xadd(&s, "2-1");
    run(&s, KV_OP_XGROUP, KV_XGROUP_CREATE, INT64_MIN, 0, T0, 3, (const char *[]){"s", "g", "0"});
    run(&s, KV_OP_XGROUP, KV_XGROUP_CREATE, 7, 0, T0, 3, (const char *[]){"s", "h", "$"});
    run(&s, KV_OP_XREADGROUP, 1, 1, 0, T0 + 5, 4, (const char *[]){"g", "a", "s", ""});
    run(&s, KV_OP_XREADGROUP, 0, 1, 0, T0 + 9, 4, (const char *[]){"g", "b", "s", ""});
    run(&s, KV_OP_XGROUP, KV_XGROUP_CREATECONSUMER, 0, 0, T0, 3, (const char *[]){"s", "h", "z"});
    kv_result r = run(&s, KV_OP_COPY, 0, 0, 0, T0, 2, (const char *[]){"s", "t"});
    assert_int_equal(r.integer, 1);
    kv_entry *t = kv_store_get(&s, "t", 1, T0);
    same_groups(group(&s, "g"), kv_sg_find(t, "g", 1));
    same_groups(group(&s, "h"), kv_sg_find(t, "h", 1));
    buf out;
    buf_init(&out);
    assert_int_equal(kv_snapshot_write(&s, sink, &out), 0);
    kv_store l;
    kv_store_init(&l, 2);
    char err[256];
    assert_int_equal(kv_snapshot_load(&l, out.data, out.len, err, sizeof(err)), 0);
    same_groups(group(&s, "g"), group(&l, "g"));
    same_groups(group(&s, "h"), group(&l, "h"));
    assert_int_equal(l.ks.mem_bytes != 0, 1);
    kv_store_close(&l);
    /* a damaged group table: the stream's value does not load */
    kv_entry *e = kv_store_get(&s, "s", 1, T0);
    buf v;
    buf_init(&v);
    kv_stream_serialize(e, &v);
    for (size_t cut = 1; cut < 60; cut++) {
        kv_store x;
        kv_store_init(&x, 3);
        kv_entry *n = kv_keyspace_insert(&x.ks, "s", 1, NULL, 0);
        assert_false(kv_stream_load(&x.ks, n, v.data, v.len - cut));
        kv_store_close(&x);
    }
    buf_close(&v);
    buf_close(&out);
    kv_store_close(&s);
}

static void test_names_in_order(void **state)
{
    (void)state;
    kv_store s;
    kv_store_init(&s, 1);
    xadd(&s, "1-1");
    const char *names[] = {"gBBB", "gAAA", "g", "gAA"};
    for (int i = 0; i < 4; i++)
        run(&s, KV_OP_XGROUP, KV_XGROUP_CREATE, INT64_MIN, 0, T0, 3,
            (const char *[]){"s", names[i], "0"});
    const char *consumers[] = {"zc", "ac", "a", "B"};
    for (int i = 0; i < 4; i++)
        run(&s, KV_OP_XGROUP, KV_XGROUP_CREATECONSUMER, 0, 0, T0, 3,
            (const char *[]){"s", "g", consumers[i]});
    kv_entry *e = kv_store_get(&s, "s", 1, T0);
    const kv_sg_set *set = kv_sg_groups(e);
    const char *want[] = {"g", "gAA", "gAAA", "gBBB"};
    for (int i = 0; i < 4; i++) {
        assert_string_equal(set->groups[i]->name, want[i]);
        assert_ptr_equal(group(&s, want[i]), set->groups[i]);
    }
    const char *wantc[] = {"B", "a", "ac", "zc"};
    kv_sg *g = group(&s, "g");
    for (int i = 0; i < 4; i++) {
        assert_string_equal(g->consumers[i]->name, wantc[i]);
        assert_ptr_equal(kv_sg_consumer_find(g, wantc[i], strlen(wantc[i])), g->consumers[i]);
    }
    assert_null(kv_sg_consumer_find(g, "b", 1));
    /* a table in another order (renamed in place) loads in name order;
     * two groups of one name do not load */
    buf v;
    buf_init(&v);
    kv_stream_serialize(e, &v);
    char *at = memmem(v.data, v.len, "gAAA", 4);
    assert_non_null(at);
    memcpy(at, "gCCC", 4);
    kv_store x;
    kv_store_init(&x, 3);
    kv_entry *n = kv_keyspace_insert(&x.ks, "s", 1, NULL, 0);
    assert_true(kv_stream_load(&x.ks, n, v.data, v.len));
    assert_string_equal(kv_sg_groups(n)->groups[2]->name, "gBBB");
    assert_string_equal(kv_sg_groups(n)->groups[3]->name, "gCCC");
    assert_non_null(kv_sg_find(n, "gCCC", 4));
    kv_store_close(&x);
    memcpy(at, "gBBB", 4);
    kv_store_init(&x, 4);
    n = kv_keyspace_insert(&x.ks, "s", 1, NULL, 0);
    assert_false(kv_stream_load(&x.ks, n, v.data, v.len));
    kv_store_close(&x);
    buf_close(&v);
    kv_store_close(&s);
}

static void test_xsetid(void **state)
{
    (void)state;
    kv_store s;
    kv_store_init(&s, 1);
    kv_result r = run(&s, KV_OP_XSETID, -1, 0, 0, T0, 2, (const char *[]){"s", "5-0"});
    assert_int_equal(r.status, KV_ERR_NO_SUCH_KEY);
    xadd(&s, "1-1");
    xadd(&s, "2-1");
    r = run(&s, KV_OP_XSETID, -1, 0, 0, T0, 2, (const char *[]){"s", "2-0"});
    assert_int_equal(r.status, KV_ERR_STREAM_ID_SMALL);
    r = run(&s, KV_OP_XSETID, 1, 0, 0, T0, 2, (const char *[]){"s", "5-0"});
    assert_int_equal(r.status, KV_ERR_ENTRIES_ADDED);
    uint64_t rev = s.revision;
    r = run(&s, KV_OP_XSETID, 9, 0, 0, T0, 3, (const char *[]){"s", "5-0", "3-0"});
    assert_int_equal(r.status, KV_OK);
    assert_int_equal(s.revision, rev + 1);
    kv_entry *e = kv_store_get(&s, "s", 1, T0);
    assert_int_equal(kv_stream_last_id(e).ms, 5);
    assert_int_equal(kv_stream_entries_added(e), 9);
    assert_int_equal(kv_stream_max_deleted(e).ms, 3);
    /* the next XADD follows the ID set, not the last entry */
    r = run(&s, KV_OP_XADD, 0, 0, 0, T0, 5, (const char *[]){"s", "5-*", "", "f", "v"});
    assert_int_equal(r.status, KV_OK);
    assert_memory_equal(r.value, "5-1", 3);
    /* trimming is no deletion: the greatest deleted ID stays */
    run(&s, KV_OP_XTRIM, KV_XTRIM_MAXLEN, 0, 0, T0, 2, (const char *[]){"s", "0"});
    assert_int_equal(kv_stream_max_deleted(e).ms, 3);
    r = run(&s, KV_OP_XSETID, -1, 0, 0, T0, 2, (const char *[]){"s", "1-0"});
    assert_int_equal(r.status, KV_OK); /* empty: any ID */
    kv_store_close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deliver_ack_claim),
        cmocka_unit_test(test_snapshot_and_copy_keep_groups),
        cmocka_unit_test(test_names_in_order),
        cmocka_unit_test(test_xsetid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
