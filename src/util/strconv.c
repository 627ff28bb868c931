#include "util/strconv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool strconv_parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20) return false;
    if (len > 1 && s[0] == '0') return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool strconv_parse_i64(const char *s, size_t len, int64_t *out)
{
    if (len == 0) return false;
    bool neg = s[0] == '-';
    if (neg) {
        s++;
        len--;
        /* "-0" and "-" are not integers in Redis */
        if (len == 0 || s[0] == '0') return false;
    }
    uint64_t v;
    if (!strconv_parse_u64(s, len, &v)) return false;
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) return false;
        *out = (int64_t)(0 - v);
    } else {
        if (v > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)v;
    }
    return true;
}

bool strconv_parse_ld(const char *s, size_t len, long double *out)
{
    char tmp[5 * 1024 + 1];
    if (len == 0 || len >= sizeof(tmp)) return false;
    if (s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r' || s[0] == '\v' || s[0] == '\f')
        return false;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *end;
    errno = 0;
    long double v = strtold(tmp, &end);
    if ((size_t)(end - tmp) != len || isnan(v) || errno == ERANGE) return false;
    *out = v;
    return true;
}

bool strconv_parse_double(const char *s, size_t len, double *out)
{
    long double v;
    if (!strconv_parse_ld(s, len, &v)) return false;
    *out = (double)v;
    return true;
}

size_t strconv_format_ld(long double v, char *out, size_t cap)
{
    if (isinf(v)) return (size_t)snprintf(out, cap, "%s", v > 0 ? "inf" : "-inf");
    int n = snprintf(out, cap, "%.17Lf", v);
    if (n <= 0 || (size_t)n >= cap) return 0;
    if (memchr(out, '.', (size_t)n)) {
        while (n > 0 && out[n - 1] == '0') n--;
        if (n > 0 && out[n - 1] == '.') n--;
    }
    if (n == 2 && out[0] == '-' && out[1] == '0') { /* "-0" prints as "0" */
        out[0] = '0';
        n = 1;
    }
    out[n] = '\0';
    return (size_t)n;
}
