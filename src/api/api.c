#include "api/api.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/clock.h"

uint64_t api_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long size = 0, resident = 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    if (n != 2) return 0;
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

ratelimit_verdict api_rate_take(api *a, const users_user *user, const char *ip)
{
    const char *key = user ? user->name : ip;
    size_t len = user ? user->name_len : strlen(ip);
    return ratelimit_take(a->rate, key, len, clock_mono_ms());
}
