/* kv_key_slot against Redis Cluster's documented values and hash-tag
 * rules (the integration test compares it with redis-py's key_slot over
 * random keys). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "kv/slot.h"

static unsigned slot(const char *s)
{
    return kv_key_slot(s, strlen(s));
}

static void test_crc16_check_value(void **state)
{
    (void)state;
    /* the CRC-16/XMODEM check value: CRC of "123456789" */
    assert_int_equal(kv_crc16("123456789", 9), 0x31C3);
    assert_int_equal(kv_crc16("", 0), 0);
}

static void test_documented_slots(void **state)
{
    (void)state;
    assert_int_equal(slot("foo"), 12182);
    assert_int_equal(slot("somekey"), 11058);
    assert_int_equal(slot("foo{hash_tag}"), 2515);
    assert_int_equal(slot("hash_tag"), 2515);
}

static void test_hash_tags(void **state)
{
    (void)state;
    assert_int_equal(slot("{user1000}.following"), slot("{user1000}.followers"));
    assert_int_equal(slot("{user1000}.following"), slot("user1000"));
    /* an empty tag: the whole key */
    assert_int_equal(slot("foo{}{bar}"), kv_crc16("foo{}{bar}", 10) & 16383);
    /* the first '{' and the first '}' after it */
    assert_int_equal(slot("foo{{bar}}zap"), slot("{bar"));
    assert_int_equal(slot("foo{bar}{zap}"), slot("bar"));
    /* no closing brace: the whole key */
    assert_int_equal(slot("{abc"), kv_crc16("{abc", 4) & 16383);
    /* binary keys, NUL included */
    const char bin[] = {'{', 0, 'x', '}', 'y'};
    assert_int_equal(kv_key_slot(bin, sizeof bin), kv_key_slot(bin + 1, 2));
    for (unsigned i = 0; i < 1000; i++) {
        char k[16];
        int n = snprintf(k, sizeof k, "key:%u", i);
        assert_true(kv_key_slot(k, (size_t)n) < KV_SLOTS);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16_check_value),
        cmocka_unit_test(test_documented_slots),
        cmocka_unit_test(test_hash_tags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
