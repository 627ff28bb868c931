/* slowlog: the ring keeps the newest max_len entries through growth and a
 * lowered max_len; Redis' argument cuts (32 arguments, 128 bytes) and
 * markers; binary arguments; redaction; the threshold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/slowlog.h"

static void add_numbered(slowlog *s, int i)
{
    char num[16];
    snprintf(num, sizeof(num), "%d", i);
    resp_arg argv[2] = {{"SET", 3}, {num, strlen(num)}};
    slowlog_add(s, argv, 2, 2, (uint64_t)i, "127.0.0.1:1", "app", 3);
}

static int numbered(const slowlog_entry *e)
{
    return atoi(e->argv[1]);
}

static void test_ring_keeps_the_newest(void **state)
{
    (void)state;
    slowlog s;
    slowlog_init(&s);
    assert_false(slowlog_wants(&s, 9999));
    assert_true(slowlog_wants(&s, 10000));
    slowlog_set_max_len(&s, 100);
    for (int i = 0; i < 250; i++) add_numbered(&s, i); /* grows 16, 32, 64, 100, then wraps */
    assert_int_equal(slowlog_len(&s), 100);
    for (uint64_t i = 0; i < 100; i++) {
        const slowlog_entry *e = slowlog_get(&s, i);
        assert_int_equal(numbered(e), 249 - (int)i);
        assert_int_equal(e->id, 249 - i);
        assert_string_equal(e->name, "app");
    }
    assert_null(slowlog_get(&s, 100));
    slowlog_set_max_len(&s, 7); /* the 7 newest stay, in order */
    assert_int_equal(slowlog_len(&s), 7);
    for (uint64_t i = 0; i < 7; i++) assert_int_equal(numbered(slowlog_get(&s, i)), 249 - (int)i);
    add_numbered(&s, 250);
    assert_int_equal(slowlog_len(&s), 7);
    assert_int_equal(numbered(slowlog_get(&s, 0)), 250);
    assert_int_equal(numbered(slowlog_get(&s, 6)), 244);
    slowlog_set_max_len(&s, 1000); /* growing again keeps them */
    add_numbered(&s, 251);
    assert_int_equal(slowlog_len(&s), 8);
    assert_int_equal(numbered(slowlog_get(&s, 7)), 244);
    slowlog_reset(&s);
    assert_int_equal(slowlog_len(&s), 0);
    add_numbered(&s, 1);
    assert_int_equal(slowlog_get(&s, 0)->id, 252); /* ids go on after a reset, as Redis' */
    slowlog_set_max_len(&s, 0);
    add_numbered(&s, 2);
    assert_int_equal(slowlog_len(&s), 0);
    s.slower_than = -1;
    assert_false(slowlog_wants(&s, UINT64_MAX));
    slowlog_close(&s);
}

static void test_arguments_are_cut_as_redis_cuts_them(void **state)
{
    (void)state;
    slowlog s;
    slowlog_init(&s);
    static char big[300], bin[4] = {'a', 0, 'b', 0};
    memset(big, 'x', sizeof(big));
    resp_arg argv[40];
    for (int i = 0; i < 40; i++) argv[i] = (resp_arg){"v", 1};
    argv[0] = (resp_arg){"RPUSH", 5};
    argv[1] = (resp_arg){big, sizeof(big)};
    argv[2] = (resp_arg){bin, sizeof(bin)};
    argv[3] = (resp_arg){big, 128}; /* exactly 128: kept whole */
    slowlog_add(&s, argv, 40, 40, 5, "[::1]:2", NULL, 0);
    const slowlog_entry *e = slowlog_get(&s, 0);
    assert_int_equal(e->argc, 32);
    assert_int_equal(e->lens[1], 128 + strlen("... (172 more bytes)"));
    assert_memory_equal(e->argv[1] + 128, "... (172 more bytes)", 20);
    assert_int_equal(e->lens[2], 4);
    assert_memory_equal(e->argv[2], bin, 4);
    assert_int_equal(e->lens[3], 128);
    assert_string_equal(e->argv[31], "... (9 more arguments)");
    assert_string_equal(e->name, "");
    assert_string_equal(e->peer, "[::1]:2");
    resp_arg auth[3] = {{"AUTH", 4}, {"user", 4}, {"pw", 2}};
    slowlog_add(&s, auth, 3, 1, 5, "", "", 0);
    e = slowlog_get(&s, 0);
    assert_string_equal(e->argv[0], "AUTH");
    assert_string_equal(e->argv[1], "(redacted)");
    assert_string_equal(e->argv[2], "(redacted)");
    slowlog_close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_keeps_the_newest),
        cmocka_unit_test(test_arguments_are_cut_as_redis_cuts_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
