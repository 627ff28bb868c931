/* The transaction log's buffer (src/txlog): what a node holds for
 * PostgreSQL while it does not ship (a follower) or cannot (PostgreSQL
 * down). Bounded by bytes, dropping the oldest whole revisions; a skipped
 * revision (a snapshot installed from the leader) empties it, since what
 * came before no longer joins up with what follows. No PostgreSQL here:
 * the txlog never ships because it is never told it leads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "txlog/txlog.h"

static void change(txlog *t, uint64_t rev, const char *key, size_t value_len)
{
    static char value[4096];
    kv_change c = {.revision = rev,
                   .kind = KV_CHANGE_PUT,
                   .key = key,
                   .key_len = strlen(key),
                   .value = value,
                   .value_len = value_len,
                   .now_ms = 1000};
    txlog_on_change(t, &c);
}

static void test_bad_url_refused(void **state)
{
    (void)state;
    char err[256];
    assert_null(txlog_new("postgresql://u:pw@h/db?nosuchoption=1", 1 << 20, err, sizeof(err)));
    assert_non_null(strstr(err, "--txlog-postgres"));
    assert_null(strstr(err, "pw@")); /* never echoes the URL */
}

static void test_buffer_is_bounded_by_whole_revisions(void **state)
{
    (void)state;
    char err[256];
    txlog *t = txlog_new("postgresql://127.0.0.1:1/none", 1 << 20, err, sizeof(err));
    assert_non_null(t);
    /* 1000 revisions of 3 changes of ~1 KiB: 3 MiB into a 1 MiB buffer */
    for (uint64_t rev = 1; rev <= 1000; rev++) {
        change(t, rev, "a", 1000);
        change(t, rev, "b", 1000);
        change(t, rev, "c", 1000);
    }
    txlog_status st;
    txlog_get_status(t, &st);
    assert_int_equal(st.recorded, 1000);
    assert_true(st.buffered_bytes <= 1 << 20);
    assert_true(st.buffered_bytes > (1 << 20) - 4 * 1100); /* filled, not emptied */
    assert_int_equal(st.buffered_events % 3, 0);           /* whole revisions only */
    assert_int_equal(st.dropped_events_total + st.buffered_events, 3000);
    assert_false(st.leader);
    assert_int_equal(st.shipped, 0);
    txlog_free(t);
}

static void test_a_skipped_revision_empties_the_buffer(void **state)
{
    (void)state;
    char err[256];
    txlog *t = txlog_new("host=127.0.0.1 port=1 dbname=none", 1 << 20, err, sizeof(err));
    assert_non_null(t);
    for (uint64_t rev = 1; rev <= 10; rev++) change(t, rev, "k", 10);
    txlog_status st;
    txlog_get_status(t, &st);
    assert_int_equal(st.buffered_events, 10);
    change(t, 50, "k", 10); /* revisions 11..49 arrived in a snapshot */
    txlog_get_status(t, &st);
    assert_int_equal(st.buffered_events, 1);
    assert_int_equal(st.recorded, 50);
    change(t, 50, "other", 10); /* the same revision: another key of it */
    change(t, 51, "k", 10);
    txlog_get_status(t, &st);
    assert_int_equal(st.buffered_events, 3);
    txlog_free(t);
}

static void test_free_null(void **state)
{
    (void)state;
    txlog_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_url_refused),
        cmocka_unit_test(test_buffer_is_bounded_by_whole_revisions),
        cmocka_unit_test(test_a_skipped_revision_empties_the_buffer),
        cmocka_unit_test(test_free_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
