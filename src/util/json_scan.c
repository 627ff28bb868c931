#include "util/json_scan.h"

#include "util/base64.h"

#include <string.h>

/* The validator and every lookup share one routine, json__skip_value: it
 * checks one value and returns where it ends. Lookups trust that the text was
 * validated by json_scan_parse but still stop at `end`, so a json_value built
 * by hand cannot make them read out of bounds. */

static const char *json__skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

static int json__hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* p points at the opening quote; returns the byte after the closing one, or
 * NULL on a syntax error. */
static const char *json__skip_string(const char *p, const char *end)
{
    p++;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') return p + 1;
        if (c < 0x20) return NULL;
        if (c != '\\') {
            p++;
            continue;
        }
        if (++p >= end) return NULL;
        switch (*p) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't':
            p++;
            break;
        case 'u':
            if (end - p < 5) return NULL;
            for (int i = 1; i <= 4; i++)
                if (json__hex(p[i]) < 0) return NULL;
            p += 5;
            break;
        default:
            return NULL;
        }
    }
    return NULL;
}

static bool json__is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static const char *json__skip_number(const char *p, const char *end)
{
    if (p < end && *p == '-') p++;
    if (p >= end) return NULL;
    if (*p == '0') {
        p++;
    } else if (json__is_digit(*p)) {
        while (p < end && json__is_digit(*p)) p++;
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !json__is_digit(*p)) return NULL;
        while (p < end && json__is_digit(*p)) p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || !json__is_digit(*p)) return NULL;
        while (p < end && json__is_digit(*p)) p++;
    }
    return p;
}

static const char *json__skip_literal(const char *p, const char *end, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(end - p) < n || memcmp(p, word, n) != 0) return NULL;
    return p + n;
}

/* Validate the value starting at *pp (no leading whitespace), advance *pp
 * past it and describe it in *out. depth counts the containers already
 * open around this value. */
static int json__skip_value(const char **pp, const char *end, int depth, json_value *out)
{
    const char *p = *pp;
    const char *q = NULL;
    json_type type;
    if (p >= end) return JSON_SCAN_ESYNTAX;
    switch (*p) {
    case '"':
        type = JSON_STRING;
        q = json__skip_string(p, end);
        break;
    case 'n':
        type = JSON_NULL;
        q = json__skip_literal(p, end, "null");
        break;
    case 't':
        type = JSON_TRUE;
        q = json__skip_literal(p, end, "true");
        break;
    case 'f':
        type = JSON_FALSE;
        q = json__skip_literal(p, end, "false");
        break;
    case '[':
    case '{': {
        bool is_object = *p == '{';
        char close = is_object ? '}' : ']';
        type = is_object ? JSON_OBJECT : JSON_ARRAY;
        if (depth + 1 > JSON_SCAN_MAX_DEPTH) return JSON_SCAN_EDEPTH;
        q = json__skip_ws(p + 1, end);
        if (q < end && *q == close) {
            q++;
            break;
        }
        for (;;) {
            if (is_object) {
                if (q >= end || *q != '"') return JSON_SCAN_ESYNTAX;
                q = json__skip_string(q, end);
                if (!q) return JSON_SCAN_ESYNTAX;
                q = json__skip_ws(q, end);
                if (q >= end || *q != ':') return JSON_SCAN_ESYNTAX;
                q = json__skip_ws(q + 1, end);
            }
            json_value inner;
            int rc = json__skip_value(&q, end, depth + 1, &inner);
            if (rc < 0) return rc;
            q = json__skip_ws(q, end);
            if (q >= end) return JSON_SCAN_ESYNTAX;
            if (*q == close) {
                q++;
                break;
            }
            if (*q != ',') return JSON_SCAN_ESYNTAX;
            q = json__skip_ws(q + 1, end);
        }
        break;
    }
    default:
        type = JSON_NUMBER;
        q = json__skip_number(p, end);
        break;
    }
    if (!q) return JSON_SCAN_ESYNTAX;
    out->type = type;
    out->text = p;
    out->len = (size_t)(q - p);
    *pp = q;
    return JSON_SCAN_OK;
}

int json_scan_parse(const char *text, size_t len, json_value *root)
{
    const char *end = text + len;
    const char *p = json__skip_ws(text, end);
    int rc = json__skip_value(&p, end, 0, root);
    if (rc < 0) return rc;
    if (json__skip_ws(p, end) != end) return JSON_SCAN_ESYNTAX;
    return JSON_SCAN_OK;
}

int json_scan_iter_init(json_iter *it, const json_value *container)
{
    if (container->type != JSON_OBJECT && container->type != JSON_ARRAY) return JSON_SCAN_ETYPE;
    if (container->len < 2) return JSON_SCAN_ESYNTAX;
    it->is_object = container->type == JSON_OBJECT;
    it->end = container->text + container->len - 1; /* the closing bracket */
    it->pos = json__skip_ws(container->text + 1, it->end);
    it->done = it->pos >= it->end;
    return JSON_SCAN_OK;
}

int json_scan_iter_next(json_iter *it, json_value *name, json_value *value)
{
    if (it->done) return 0;
    const char *p = it->pos;
    /* The depth limit was enforced by json_scan_parse on the whole
     * document; here only the remaining budget matters, so 0 is safe. */
    if (it->is_object) {
        json_value key;
        if (json__skip_value(&p, it->end, 0, &key) < 0 || key.type != JSON_STRING) goto bad;
        if (name) *name = key;
        p = json__skip_ws(p, it->end);
        if (p >= it->end || *p != ':') goto bad;
        p = json__skip_ws(p + 1, it->end);
    }
    if (json__skip_value(&p, it->end, 0, value) < 0) goto bad;
    p = json__skip_ws(p, it->end);
    if (p < it->end) {
        if (*p != ',') goto bad;
        p = json__skip_ws(p + 1, it->end);
    } else {
        it->done = true;
    }
    it->pos = p;
    return 1;
bad:
    /* Only reachable with a value that did not come from json_scan_parse. */
    it->done = true;
    return 0;
}

int json_scan_get(const json_value *obj, const char *name, json_value *out)
{
    if (obj->type != JSON_OBJECT) return JSON_SCAN_ETYPE;
    json_iter it;
    int rc = json_scan_iter_init(&it, obj);
    if (rc < 0) return rc;
    json_value key, val;
    size_t n = strlen(name);
    while (json_scan_iter_next(&it, &key, &val) == 1) {
        if (json_scan_string_eq(&key, name, n)) {
            *out = val;
            return JSON_SCAN_OK;
        }
    }
    return JSON_SCAN_ENOTFOUND;
}

static int json__index(const json_value *arr, const char *seg, size_t seg_len, json_value *out)
{
    uint64_t idx = 0;
    for (size_t i = 0; i < seg_len; i++) {
        if (idx > (UINT64_MAX - 9) / 10) return JSON_SCAN_ENOTFOUND;
        idx = idx * 10 + (uint64_t)(seg[i] - '0');
    }
    json_iter it;
    if (json_scan_iter_init(&it, arr) < 0) return JSON_SCAN_ESYNTAX;
    json_value val;
    for (uint64_t i = 0; json_scan_iter_next(&it, NULL, &val) == 1; i++) {
        if (i == idx) {
            *out = val;
            return JSON_SCAN_OK;
        }
    }
    return JSON_SCAN_ENOTFOUND;
}

int json_scan_find(const json_value *v, const char *path, json_value *out)
{
    json_value cur = *v;
    const char *p = path;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t seg_len = dot ? (size_t)(dot - p) : strlen(p);
        bool numeric = seg_len > 0;
        for (size_t i = 0; i < seg_len; i++)
            if (!json__is_digit(p[i])) numeric = false;
        json_value next;
        int rc;
        if (cur.type == JSON_ARRAY) {
            if (!numeric) return JSON_SCAN_ETYPE;
            rc = json__index(&cur, p, seg_len, &next);
        } else if (cur.type == JSON_OBJECT) {
            json_iter it;
            rc = json_scan_iter_init(&it, &cur);
            if (rc < 0) return rc;
            json_value key = {0}, val;
            rc = JSON_SCAN_ENOTFOUND;
            while (json_scan_iter_next(&it, &key, &val) == 1) {
                if (json_scan_string_eq(&key, p, seg_len)) {
                    next = val;
                    rc = JSON_SCAN_OK;
                    break;
                }
            }
        } else {
            return JSON_SCAN_ETYPE;
        }
        if (rc < 0) return rc;
        cur = next;
        p += seg_len;
        if (*p == '.') p++;
    }
    *out = cur;
    return JSON_SCAN_OK;
}

static void json__put_utf8(buf *out, uint32_t cp)
{
    char tmp[4];
    size_t n;
    if (cp < 0x80) {
        tmp[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        tmp[0] = (char)(0xC0 | (cp >> 6));
        tmp[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        tmp[0] = (char)(0xE0 | (cp >> 12));
        tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        tmp[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        tmp[0] = (char)(0xF0 | (cp >> 18));
        tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        tmp[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    buf_append(out, tmp, n);
}

/* p points just after "\u"; the caller checked that 4 bytes are there. */
static uint32_t json__hex4(const char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v = v << 4 | (uint32_t)json__hex(p[i]);
    return v;
}

int json_scan_string(const json_value *v, buf *out)
{
    if (v->type != JSON_STRING || v->len < 2) return JSON_SCAN_ETYPE;
    const char *p = v->text + 1;
    const char *end = v->text + v->len - 1;
    size_t mark = out->len;
    while (p < end) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        if (!bs) {
            buf_append(out, p, (size_t)(end - p));
            break;
        }
        buf_append(out, p, (size_t)(bs - p));
        p = bs + 1;
        if (p >= end) goto bad;
        char c = *p++;
        switch (c) {
        case 'b':
            buf_append_char(out, '\b');
            break;
        case 'f':
            buf_append_char(out, '\f');
            break;
        case 'n':
            buf_append_char(out, '\n');
            break;
        case 'r':
            buf_append_char(out, '\r');
            break;
        case 't':
            buf_append_char(out, '\t');
            break;
        case '"':
        case '\\':
        case '/':
            buf_append_char(out, c);
            break;
        case 'u': {
            if (end - p < 4) goto bad;
            uint32_t cp = json__hex4(p);
            p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF) goto bad; /* low half first */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                /* UTF-16 pair: the high half must be followed at once by
                 * an escaped low half. */
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u') goto bad;
                uint32_t lo = json__hex4(p + 2);
                if (lo < 0xDC00 || lo > 0xDFFF) goto bad;
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            json__put_utf8(out, cp);
            break;
        }
        default:
            goto bad;
        }
    }
    return JSON_SCAN_OK;
bad:
    out->len = mark;
    if (out->data) out->data[out->len] = '\0';
    return JSON_SCAN_EENCODING;
}

bool json_scan_string_eq(const json_value *v, const char *s, size_t n)
{
    if (v->type != JSON_STRING || v->len < 2) return false;
    const char *raw = v->text + 1;
    size_t raw_len = v->len - 2;
    /* Names in responses almost never contain escapes: compare in place. */
    if (!memchr(raw, '\\', raw_len)) return raw_len == n && memcmp(raw, s, n) == 0;
    buf tmp;
    buf_init(&tmp);
    bool eq =
        json_scan_string(v, &tmp) == JSON_SCAN_OK && tmp.len == n && memcmp(tmp.data, s, n) == 0;
    buf_close(&tmp);
    return eq;
}

/* Magnitude of an integer number's digits; sets *neg. */
static int json__integer(const json_value *v, bool *neg, uint64_t *mag)
{
    if (v->type != JSON_NUMBER) return JSON_SCAN_ETYPE;
    const char *p = v->text;
    const char *end = v->text + v->len;
    *neg = p < end && *p == '-';
    if (*neg) p++;
    if (p >= end) return JSON_SCAN_ETYPE;
    uint64_t m = 0;
    for (; p < end; p++) {
        if (!json__is_digit(*p)) return JSON_SCAN_ETYPE; /* '.', 'e': not an integer */
        unsigned d = (unsigned)(*p - '0');
        if (m > (UINT64_MAX - d) / 10) return JSON_SCAN_ERANGE;
        m = m * 10 + d;
    }
    *mag = m;
    return JSON_SCAN_OK;
}

int json_scan_u64(const json_value *v, uint64_t *out)
{
    bool neg;
    uint64_t m;
    int rc = json__integer(v, &neg, &m);
    if (rc < 0) return rc;
    if (neg && m != 0) return JSON_SCAN_ERANGE;
    *out = m;
    return JSON_SCAN_OK;
}

int json_scan_i64(const json_value *v, int64_t *out)
{
    bool neg;
    uint64_t m;
    int rc = json__integer(v, &neg, &m);
    if (rc < 0) return rc;
    if (neg) {
        if (m > (uint64_t)INT64_MAX + 1) return JSON_SCAN_ERANGE;
        *out = m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m;
    } else {
        if (m > (uint64_t)INT64_MAX) return JSON_SCAN_ERANGE;
        *out = (int64_t)m;
    }
    return JSON_SCAN_OK;
}

int json_scan_bool(const json_value *v, bool *out)
{
    if (v->type != JSON_TRUE && v->type != JSON_FALSE) return JSON_SCAN_ETYPE;
    *out = v->type == JSON_TRUE;
    return JSON_SCAN_OK;
}

int json_scan_base64url_decode(const char *s, size_t n, buf *out)
{
    return base64_decode(s, n, BASE64_URL, out) == 0 ? JSON_SCAN_OK : JSON_SCAN_EENCODING;
}

const char *json_scan_strerror(int err)
{
    switch (err) {
    case JSON_SCAN_OK:
        return "ok";
    case JSON_SCAN_ESYNTAX:
        return "malformed JSON";
    case JSON_SCAN_EDEPTH:
        return "JSON nested too deeply";
    case JSON_SCAN_ENOTFOUND:
        return "field not found";
    case JSON_SCAN_ETYPE:
        return "unexpected JSON type";
    case JSON_SCAN_ERANGE:
        return "number out of range";
    case JSON_SCAN_EENCODING:
        return "bad string encoding";
    default:
        return "unknown JSON error";
    }
}
