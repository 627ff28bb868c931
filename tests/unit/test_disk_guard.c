/* disk_guard: which writes are refused below --min-free-disk, and when. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kv/command.h"
#include "replica/disk_guard.h"

static void test_below_the_limit_refuses_writes_not_deletes(void **state)
{
    disk_guard g;
    disk_guard_init(&g, UINT64_MAX - 1, "/tmp");     /* no file system has that much free */
    assert_false(disk_guard_refuses(&g, KV_OP_PUT)); /* not measured yet */
    disk_guard_poll(&g, 1);
    assert_true(g.low);
    assert_true(g.free_bytes != UINT64_MAX);
    assert_true(disk_guard_refuses(&g, KV_OP_PUT));
    assert_true(disk_guard_refuses(&g, KV_OP_INCR));
    assert_true(disk_guard_refuses(&g, KV_OP_MSET));
    /* what wins space back, and the replica's own entries, still pass */
    assert_false(disk_guard_refuses(&g, KV_OP_DEL));
    assert_false(disk_guard_refuses(&g, KV_OP_FLUSH));
    assert_false(disk_guard_refuses(&g, KV_OP_EXPIRE_KEYS));
    assert_false(disk_guard_refuses(&g, KV_OP_NOOP));
    assert_false(disk_guard_refuses(&g, KV_OP_MEMBER));
    assert_int_equal(g.refused, 3);
}

static void test_above_the_limit_and_remeasured_at_most_every_100ms(void **state)
{
    disk_guard g;
    disk_guard_init(&g, 1, "/tmp");
    disk_guard_poll(&g, 1000);
    assert_false(g.low);
    assert_false(disk_guard_refuses(&g, KV_OP_PUT));
    g.min_free = UINT64_MAX - 1;
    disk_guard_poll(&g, 1000 + 50000000); /* 50 ms later: not measured again */
    assert_false(g.low);
    disk_guard_poll(&g, 1000 + 100000000);
    assert_true(g.low);
    g.min_free = 1;
    disk_guard_poll(&g, 1000 + 200000000);
    assert_false(g.low); /* space back: writes taken again */
}

static void test_zero_turns_it_off(void **state)
{
    disk_guard g;
    disk_guard_init(&g, 0, "/nonexistent");
    disk_guard_poll(&g, 1);
    assert_true(g.free_bytes == UINT64_MAX); /* never measured */
    assert_false(disk_guard_refuses(&g, KV_OP_PUT));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_below_the_limit_refuses_writes_not_deletes),
        cmocka_unit_test(test_above_the_limit_and_remeasured_at_most_every_100ms),
        cmocka_unit_test(test_zero_turns_it_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
