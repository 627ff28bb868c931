/* kv/stream: IDs (parse, format, the next ID for *, ms-* and explicit
 * ones), appends and range seeks, XDEL keeping the last ID, exact and
 * approximate trimming by MAXLEN and MINID (whole nodes of 100 appends,
 * LIMIT), memory accounting back to the start, COPY, and the snapshot
 * form: a round trip, and malformed inputs refused without a change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/keyspace.h"
#include "kv/stream.h"

static kv_entry *new_stream(kv_keyspace *ks, const char *key)
{
    kv_entry *e = kv_keyspace_insert(ks, key, strlen(key), NULL, 0);
    kv_stream_init(ks, e);
    return e;
}

static void add(kv_keyspace *ks, kv_entry *e, uint64_t ms, uint64_t seq)
{
    char v[24];
    snprintf(v, sizeof(v), "%llu", (unsigned long long)ms);
    kv_slice f[2] = {{"n", 1}, {v, strlen(v)}};
    kv_stream_append(ks, e, (kv_stream_id){ms, seq}, f, 1);
}

static void test_ids(void **state)
{
    (void)state;
    kv_stream_id id;
    bool autoseq;
    assert_true(kv_stream_id_parse("5-3", 3, 0, &id, &autoseq));
    assert_true(id.ms == 5 && id.seq == 3 && !autoseq);
    assert_true(kv_stream_id_parse("7", 1, UINT64_MAX, &id, NULL));
    assert_true(id.ms == 7 && id.seq == UINT64_MAX);
    assert_true(kv_stream_id_parse("9-*", 3, 0, &id, &autoseq) && autoseq && id.ms == 9);
    assert_false(kv_stream_id_parse("9-*", 3, 0, &id, NULL)); /* only where allowed */
    assert_false(kv_stream_id_parse("x-1", 3, 0, &id, NULL));
    assert_false(kv_stream_id_parse("1-", 2, 0, &id, NULL));
    assert_false(kv_stream_id_parse("", 0, 0, &id, NULL));
    char text[48];
    kv_stream_id_format((kv_stream_id){UINT64_MAX, UINT64_MAX}, text);
    assert_string_equal(text, "18446744073709551615-18446744073709551615");

    kv_keyspace ks;
    kv_keyspace_init(&ks, 1);
    kv_entry *e = new_stream(&ks, "s");
    kv_stream_id out;
    bool zero;
    assert_true(kv_stream_next_id(e, true, false, id, 1000, &out, &zero));
    assert_true(out.ms == 1000 && out.seq == 0);
    add(&ks, e, 1000, 0);
    /* a clock behind the last ID goes on from it */
    assert_true(kv_stream_next_id(e, true, false, id, 900, &out, &zero));
    assert_true(out.ms == 1000 && out.seq == 1);
    assert_true(kv_stream_next_id(e, false, true, (kv_stream_id){1000, 0}, 0, &out, &zero));
    assert_true(out.ms == 1000 && out.seq == 1);
    assert_false(kv_stream_next_id(e, false, true, (kv_stream_id){999, 0}, 0, &out, &zero));
    assert_false(kv_stream_next_id(e, false, false, (kv_stream_id){1000, 0}, 0, &out, &zero));
    assert_false(kv_stream_next_id(e, false, false, (kv_stream_id){0, 0}, 0, &out, &zero));
    assert_true(zero);
    assert_true(kv_stream_next_id(NULL, false, true, (kv_stream_id){0, 0}, 0, &out, &zero));
    assert_true(out.ms == 0 && out.seq == 1); /* 0-* on a new stream */
    kv_keyspace_close(&ks);
}

static void test_append_seek_delete(void **state)
{
    (void)state;
    kv_keyspace ks;
    kv_keyspace_init(&ks, 1);
    kv_keyspace_insert(&ks, "s", 1, "v", 1); /* the table's buckets are allocated */
    kv_keyspace_delete(&ks, "s", 1);
    size_t mem0 = ks.mem_bytes;
    kv_entry *e = new_stream(&ks, "s");
    for (uint64_t i = 1; i <= 50; i++) add(&ks, e, i * 10, 0);
    assert_int_equal(kv_stream_len(e), 50);
    assert_int_equal(kv_stream_seek(e, (kv_stream_id){0, 0}), 0);
    assert_int_equal(kv_stream_seek(e, (kv_stream_id){15, 0}), 1);
    assert_int_equal(kv_stream_seek(e, (kv_stream_id){20, 0}), 1);
    assert_int_equal(kv_stream_seek(e, (kv_stream_id){501, 0}), 50);
    kv_slice f, v;
    kv_stream_entry_field(kv_stream_at(e, 4), 0, &f, &v);
    assert_memory_equal(v.ptr, "50", 2);
    assert_true(kv_stream_delete(&ks, e, (kv_stream_id){500, 0}));
    assert_false(kv_stream_delete(&ks, e, (kv_stream_id){500, 0}));
    assert_true(kv_stream_delete(&ks, e, (kv_stream_id){250, 0}));
    assert_int_equal(kv_stream_len(e), 48);
    assert_true(kv_stream_last_id(e).ms == 500); /* the last ID stays */
    assert_true(kv_stream_max_deleted(e).ms == 500);
    assert_int_equal(kv_stream_entries_added(e), 50);
    kv_keyspace_delete(&ks, "s", 1);
    assert_int_equal(ks.mem_bytes, mem0);
    kv_keyspace_close(&ks);
}

static void test_trimming(void **state)
{
    (void)state;
    kv_keyspace ks;
    kv_keyspace_init(&ks, 1);
    kv_entry *e = new_stream(&ks, "s");
    for (uint64_t i = 1; i <= 250; i++) add(&ks, e, i, 0); /* nodes of 100, 100, 50 */
    /* ~ 200: removing the first node would leave 150 < 200: nothing */
    assert_int_equal(kv_stream_trim_maxlen(&ks, e, 200, true, 0), 0);
    assert_int_equal(kv_stream_trim_maxlen(&ks, e, 150, true, 0), 100);
    assert_int_equal(kv_stream_len(e), 150);
    /* LIMIT smaller than a node: nothing */
    assert_int_equal(kv_stream_trim_maxlen(&ks, e, 0, true, 50), 0);
    assert_int_equal(kv_stream_trim_maxlen(&ks, e, 10, false, 0), 140);
    assert_int_equal(kv_stream_len(e), 10);
    assert_true(kv_stream_entry_id(kv_stream_at(e, 0)).ms == 241);
    assert_int_equal(kv_stream_trim_minid(&ks, e, (kv_stream_id){245, 0}, false, 0), 4);
    assert_true(kv_stream_entry_id(kv_stream_at(e, 0)).ms == 245);
    /* MINID ~: the node (241..250, 245 on) ends at 250 >= 249: it stays */
    assert_int_equal(kv_stream_trim_minid(&ks, e, (kv_stream_id){249, 0}, true, 0), 0);
    assert_int_equal(kv_stream_trim_maxlen(&ks, e, 0, false, 0), 6);
    assert_int_equal(kv_stream_len(e), 0);
    /* the tail node was emptied: the next append opens a new one */
    for (uint64_t i = 300; i < 400; i++) add(&ks, e, i, 0);
    add(&ks, e, 400, 0);
    assert_int_equal(kv_stream_trim_maxlen(&ks, e, 1, true, 0), 100);
    kv_keyspace_close(&ks);
}

static void test_copy_and_snapshot_form(void **state)
{
    (void)state;
    kv_keyspace ks;
    kv_keyspace_init(&ks, 1);
    kv_entry *e = new_stream(&ks, "s");
    for (uint64_t i = 1; i <= 120; i++) add(&ks, e, i, i % 3);
    kv_stream_delete(&ks, e, (kv_stream_id){7, 1});
    kv_entry *c = kv_keyspace_insert(&ks, "c", 1, NULL, 0);
    kv_stream_copy(&ks, c, e);
    buf a, b;
    buf_init(&a);
    buf_init(&b);
    kv_stream_serialize(e, &a);
    kv_stream_serialize(c, &b);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    kv_entry *l = kv_keyspace_insert(&ks, "l", 1, NULL, 0);
    assert_true(kv_stream_load(&ks, l, a.data, a.len));
    buf_reset(&b);
    kv_stream_serialize(l, &b);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    /* the nodes came along: ~ trims the same on both */
    assert_int_equal(kv_stream_trim_maxlen(&ks, l, 20, true, 0),
                     kv_stream_trim_maxlen(&ks, e, 20, true, 0));
    /* malformed: cut short, a byte too many, IDs out of order */
    size_t mem = ks.mem_bytes;
    kv_entry *bad = kv_keyspace_insert(&ks, "x", 1, NULL, 0);
    mem = ks.mem_bytes;
    assert_false(kv_stream_load(&ks, bad, a.data, a.len - 1));
    buf_append(&a, "z", 1);
    assert_false(kv_stream_load(&ks, bad, a.data, a.len));
    a.len--;
    memcpy(a.data + 64 + 8, a.data + 64 + 8 + 28 + 4 + 1 + 4 + 1, 8); /* first id := later */
    assert_false(kv_stream_load(&ks, bad, a.data, 30));
    assert_int_equal(bad->type, KV_TYPE_STRING);
    assert_int_equal(ks.mem_bytes, mem);
    buf_close(&a);
    buf_close(&b);
    kv_keyspace_close(&ks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_append_seek_delete),
        cmocka_unit_test(test_trimming),
        cmocka_unit_test(test_copy_and_snapshot_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
