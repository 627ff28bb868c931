#include "util/users.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/hash.h"
#include "util/json_write.h"

static bool users__name_ok(const char *s, size_t n)
{
    if (n == 0 || n > USERS_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f || c == ':') return false;
    }
    return utf8_valid(s, n);
}

static void users__free_user(users_user *u)
{
    for (size_t i = 0; i < u->ngrants; i++) free(u->grants[i].prefix);
    free(u->grants);
    memset(u, 0, sizeof(*u));
}

void users_free(users_table *t)
{
    for (size_t i = 0; i < t->n; i++) users__free_user(&t->v[i]);
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

/* Parse "perms" into u; false with a reason. */
static bool users__parse_perms(users_user *u, const char *p, size_t n, const char **why)
{
    size_t cap = 0;
    size_t i = 0;
    while (n > 0 && i <= n) {
        size_t j = i;
        while (j < n && p[j] != ',') j++;
        const char *g = p + i;
        size_t gl = j - i;
        if (gl == 5 && memcmp(g, "admin", 5) == 0) {
            u->admin = true;
        } else if ((gl >= 2 && memcmp(g, "r:", 2) == 0) || (gl >= 3 && memcmp(g, "rw:", 3) == 0)) {
            bool write = g[1] == 'w';
            size_t skip = write ? 3 : 2;
            if (u->ngrants == cap) {
                cap = cap ? cap * 2 : 4;
                u->grants = xrealloc(u->grants, cap * sizeof(*u->grants));
            }
            users_grant *gr = &u->grants[u->ngrants++];
            gr->write = write;
            gr->prefix_len = gl - skip;
            gr->prefix = xmalloc(gr->prefix_len + 1);
            memcpy(gr->prefix, g + skip, gr->prefix_len);
            gr->prefix[gr->prefix_len] = '\0';
        } else {
            *why = gl == 0 ? "empty grant (two commas, or a trailing comma)"
                           : "unknown grant (expected rw:PREFIX, r:PREFIX or admin)";
            return false;
        }
        i = j + 1;
        if (j == n) break;
    }
    return true;
}

int users_parse(const char *text, size_t len, users_table *out, char *err, size_t errlen)
{
    users_table t = {0};
    *out = t;
    size_t cap = 0, line_no = 0, pos = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        pos += ll + (nl ? 1 : 0);
        line_no++;
        if (ll && line[ll - 1] == '\r') ll--;
        size_t lead = 0;
        while (lead < ll && (line[lead] == ' ' || line[lead] == '\t')) lead++;
        if (lead == ll || line[lead] == '#') continue;
        const char *why = NULL;
        const char *c1 = memchr(line, ':', ll);
        const char *c2 = c1 ? memchr(c1 + 1, ':', ll - (size_t)(c1 + 1 - line)) : NULL;
        if (!c2) {
            why = "expected name:hash:perms";
            goto bad;
        }
        if (!users__name_ok(line, (size_t)(c1 - line))) {
            why = "bad user name (1-64 bytes of UTF-8, no ':', spaces or control characters)";
            goto bad;
        }
        if (users_find(&t, line, (size_t)(c1 - line))) {
            why = "duplicate user name";
            goto bad;
        }
        if (t.n >= USERS_MAX) {
            why = "too many users";
            goto bad;
        }
        if (t.n == cap) {
            cap = cap ? cap * 2 : 8;
            t.v = xrealloc(t.v, cap * sizeof(*t.v));
        }
        users_user *u = &t.v[t.n];
        memset(u, 0, sizeof(*u));
        u->name_len = (size_t)(c1 - line);
        memcpy(u->name, line, u->name_len);
        if (!password_parse(c1 + 1, (size_t)(c2 - c1 - 1), &u->pw, &why)) goto bad;
        if (!users__parse_perms(u, c2 + 1, ll - (size_t)(c2 + 1 - line), &why)) {
            users__free_user(u);
            goto bad;
        }
        u->stamp = hash_bytes(c1 + 1, (size_t)(c2 - c1 - 1), 0x5eed);
        t.n++;
        continue;
    bad:
        snprintf(err, errlen, "line %zu: %s", line_no, why);
        users_free(&t);
        return -1;
    }
    *out = t;
    return 0;
}

int users_load_file(const char *path, users_table *out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *text = xmalloc(USERS_FILE_MAX + 1);
    size_t n = fread(text, 1, USERS_FILE_MAX + 1, f);
    bool read_err = ferror(f);
    fclose(f);
    int rv = -1;
    if (read_err) {
        snprintf(err, errlen, "%s: read error", path);
    } else if (n > USERS_FILE_MAX) {
        snprintf(err, errlen, "%s: larger than %u bytes", path, USERS_FILE_MAX);
    } else {
        char why[256];
        rv = users_parse(text, n, out, why, sizeof(why));
        if (rv != 0) snprintf(err, errlen, "%s %s", path, why);
    }
    free(text);
    return rv;
}

const users_user *users_find(const users_table *t, const char *name, size_t len)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].name_len == len && memcmp(t->v[i].name, name, len) == 0) return &t->v[i];
    return NULL;
}

int users_index(const users_table *t, const users_user *u)
{
    return u ? (int)(u - t->v) : -1;
}

bool users_may_access(const users_user *u, const void *key, size_t len, bool write)
{
    for (size_t i = 0; i < u->ngrants; i++) {
        const users_grant *g = &u->grants[i];
        if ((g->write || !write) && g->prefix_len <= len &&
            (g->prefix_len == 0 || memcmp(g->prefix, key, g->prefix_len) == 0))
            return true;
    }
    return false;
}

bool users_may_list(const users_user *u, const void *prefix, size_t len)
{
    return users_may_access(u, prefix, len, false);
}
