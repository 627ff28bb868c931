/* What the model-checking unit tests share: a seeded xorshift stream
 * (runs replay exactly) and a slice of a C string. */
#ifndef CAIRN_TESTS_UNIT_RAND_H
#define CAIRN_TESTS_UNIT_RAND_H

#include <stdint.h>
#include <string.h>

#include "kv/command.h"

static inline uint64_t unit_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

static inline kv_slice unit_slice(const char *s)
{
    return (kv_slice){s, strlen(s)};
}

#endif
