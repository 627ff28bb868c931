#include "kv/limits.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "kv/hash.h"
#include "kv/hll.h"
#include "kv/set.h"
#include "kv/zset.h"
#include "util/strconv.h"

enum { LIMIT_COUNT, LIMIT_MEMORY, LIMIT_INT };

static const struct {
    const char *name, *alias;
    int kind;
    uint64_t def;
} limits[KV_LIMIT_COUNT_] = {
    [KV_LIMIT_HASH_ENTRIES] = {"hash-max-listpack-entries", "hash-max-ziplist-entries", LIMIT_COUNT,
                               KV_HASH_LISTPACK_ENTRIES},
    [KV_LIMIT_HASH_VALUE] = {"hash-max-listpack-value", "hash-max-ziplist-value", LIMIT_MEMORY,
                             KV_HASH_LISTPACK_VALUE},
    [KV_LIMIT_SET_INTSET_ENTRIES] = {"set-max-intset-entries", NULL, LIMIT_COUNT,
                                     KV_SET_INTSET_ENTRIES},
    [KV_LIMIT_SET_ENTRIES] = {"set-max-listpack-entries", NULL, LIMIT_COUNT,
                              KV_SET_LISTPACK_ENTRIES},
    [KV_LIMIT_SET_VALUE] = {"set-max-listpack-value", NULL, LIMIT_MEMORY, KV_HASH_LISTPACK_VALUE},
    [KV_LIMIT_ZSET_ENTRIES] = {"zset-max-listpack-entries", "zset-max-ziplist-entries", LIMIT_COUNT,
                               KV_ZSET_LISTPACK_ENTRIES},
    [KV_LIMIT_ZSET_VALUE] = {"zset-max-listpack-value", "zset-max-ziplist-value", LIMIT_MEMORY,
                             KV_ZSET_LISTPACK_VALUE},
    [KV_LIMIT_HLL_SPARSE] = {"hll-sparse-max-bytes", NULL, LIMIT_MEMORY, KV_HLL_SPARSE_MAX_BYTES},
    /* -2: 8 KiB nodes */
    [KV_LIMIT_LIST_SIZE] = {"list-max-listpack-size", "list-max-ziplist-size", LIMIT_INT,
                            (uint64_t)(int64_t)-2},
};

void kv_limits_default(kv_limits *l)
{
    for (int i = 0; i < KV_LIMIT_COUNT_; i++) l->v[i] = limits[i].def;
}

static bool limits__is(const char *want, const char *s, size_t len)
{
    return want && strlen(want) == len && strncasecmp(want, s, len) == 0;
}

int kv_limit_lookup(const char *name, size_t len)
{
    for (int i = 0; i < KV_LIMIT_COUNT_; i++)
        if (limits__is(limits[i].name, name, len) || limits__is(limits[i].alias, name, len))
            return i;
    return -1;
}

const char *kv_limit_name(int id)
{
    return limits[id].name;
}

const char *kv_limit_alias(int id)
{
    return limits[id].alias;
}

/* Redis' memtoull: digits, then b, k, kb, m, mb, g or gb (any case) */
static bool limits__memory(const char *s, size_t len, uint64_t *out)
{
    size_t digits = 0;
    while (digits < len && s[digits] >= '0' && s[digits] <= '9') digits++;
    static const struct {
        const char *unit;
        uint64_t mul;
    } units[] = {{"", 1},           {"b", 1},
                 {"k", 1000},       {"kb", 1024},
                 {"m", 1000000},    {"mb", 1024 * 1024},
                 {"g", 1000000000}, {"gb", 1024ull * 1024 * 1024}};
    uint64_t v = 0;
    if (len == 0) { /* as Redis' memtoull takes it */
        *out = 0;
        return true;
    }
    if (digits == 0) return false;
    for (size_t i = 0; i < digits; i++) {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (!limits__is(units[i].unit, s + digits, len - digits)) continue;
        if (v > UINT64_MAX / units[i].mul) return false;
        *out = v * units[i].mul;
        return true;
    }
    return false;
}

bool kv_limit_parse_memory(const char *s, size_t len, uint64_t *out)
{
    return limits__memory(s, len, out);
}

bool kv_limit_signed(int id)
{
    return limits[id].kind == LIMIT_INT;
}

void kv_limit_list_node(const kv_limits *l, uint32_t *bytes, uint32_t *count)
{
    int64_t fill = (int64_t)l->v[KV_LIMIT_LIST_SIZE];
    if (fill >= 0) {
        *bytes = 8192; /* Redis' SIZE_SAFETY_LIMIT */
        *count = fill == 0 ? 1 : fill > 32767 ? 32767 : (uint32_t)fill;
        return;
    }
    int level = fill < -5 ? 4 : (int)(-fill - 1);
    *bytes = 4096u << level;
    *count = UINT32_MAX;
}

const char *kv_limit_parse(int id, const char *s, size_t len, uint64_t *out)
{
    if (limits[id].kind == LIMIT_MEMORY)
        return limits__memory(s, len, out) ? NULL : "argument must be a memory value";
    int64_t v;
    if (!strconv_parse_i64(s, len, &v)) return "argument couldn't be parsed into an integer";
    if (limits[id].kind == LIMIT_INT) {
        if (v < INT32_MIN || v > INT32_MAX)
            return "argument must be between -2147483648 and 2147483647 inclusive";
        *out = (uint64_t)v;
        return NULL;
    }
    if (v < 0) return "argument must be between 0 and 9223372036854775807 inclusive";
    *out = (uint64_t)v;
    return NULL;
}
