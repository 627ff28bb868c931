/* clock: the two clocks cairn uses.
 *
 * Monotonic time measures durations and deadlines (it never jumps); wall
 * time (ms since the epoch) is what commands carry for expiry, because
 * every node must agree on what an absolute expiry means. */
#ifndef CAIRN_UTIL_CLOCK_H
#define CAIRN_UTIL_CLOCK_H

#include <stdint.h>
#include <sys/time.h>
#include <time.h>

static inline uint64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline int64_t clock_mono_ms(void)
{
    return (int64_t)(clock_mono_ns() / 1000000);
}

static inline int64_t clock_wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

#endif
