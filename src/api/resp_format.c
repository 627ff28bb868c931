/* resp_format: pure helpers of the Redis command layer (see the header). */
#include "api/resp_format.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESP_FORMAT_ARGS_TEXT 128

void resp_format_unknown_command(buf *out, const resp_arg *argv, size_t argc)
{
    size_t name_len = argc ? argv[0].len : 0;
    if (name_len > RESP_FORMAT_ARGS_TEXT) name_len = RESP_FORMAT_ARGS_TEXT;
    buf_append_str(out, "ERR unknown command '");
    if (argc) buf_append(out, argv[0].ptr, name_len);
    buf_append_str(out, "', with args beginning with: ");
    size_t text = 0;
    for (size_t i = 1; i < argc && text < RESP_FORMAT_ARGS_TEXT; i++) {
        size_t n = argv[i].len;
        if (n > RESP_FORMAT_ARGS_TEXT - text) n = RESP_FORMAT_ARGS_TEXT - text;
        buf_append_char(out, '\'');
        buf_append(out, argv[i].ptr, n);
        buf_append_str(out, "' ");
        text += n + 3;
    }
}

size_t resp_format_human_bytes(char *out, size_t cap, uint64_t n)
{
    static const char units[] = "KMGTP";
    int len;
    if (n < 1024) {
        len = snprintf(out, cap, "%lluB", (unsigned long long)n);
    } else {
        double v = (double)n / 1024;
        int u = 0;
        while (v >= 1024 && u < 4) {
            v /= 1024;
            u++;
        }
        len = snprintf(out, cap, "%.2f%c", v, units[u]);
    }
    if (len < 0) len = 0;
    return (size_t)len < cap ? (size_t)len : cap ? cap - 1 : 0;
}

void resp_format_range(int64_t len, int64_t start, int64_t end, size_t *from, size_t *count)
{
    *from = 0;
    *count = 0;
    if (len <= 0) return;
    /* negative indexes count from the end; both are then clamped into
     * the value, which is why "-100 -50" on a short value yields its
     * first byte, exactly as Redis 7.0 answers */
    if (start < 0) start = len + start;
    if (end < 0) end = len + end;
    if (start < 0) start = 0;
    if (end < 0) end = 0;
    if (end >= len) end = len - 1;
    if (start > end) return;
    *from = (size_t)start;
    *count = (size_t)(end - start + 1);
}

bool resp_format_expire_ms(int64_t when, bool seconds, bool relative, int64_t now_ms, int64_t *out)
{
    if (seconds) {
        if (when > INT64_MAX / 1000 || when < INT64_MIN / 1000) return false;
        when *= 1000;
    }
    if (relative) {
        if (when > 0 && when > INT64_MAX - now_ms) return false;
        if (when < 0 && when < INT64_MIN + now_ms) return false;
        when += now_ms;
    }
    *out = when;
    return true;
}

bool resp_format_client_name_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '!' || s[i] > '~') return false;
    return true;
}

bool resp_format_arg_is(const resp_arg *a, const char *lower)
{
    size_t n = strlen(lower);
    if (a->len != n) return false;
    for (size_t i = 0; i < n; i++) {
        char c = a->ptr[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c + ('a' - 'A'));
        if (c != lower[i]) return false;
    }
    return true;
}

/* ---- COMMAND DOCS argument trees ------------------------------------------ */

#define DOC_MAX_NODES 64
#define DOC_MAX_CHILDREN 16

enum { DOC_PLAIN, DOC_ONEOF, DOC_BLOCK };

typedef struct doc_node {
    char name[40];
    char token[40];
    const char *type;
    int kind;
    bool optional, multiple;
    int child[DOC_MAX_CHILDREN];
    int nchild;
} doc_node;

typedef struct doc_parser {
    const char *s;
    size_t i;
    doc_node nodes[DOC_MAX_NODES];
    int n;
    bool failed;
} doc_parser;

static int doc__new(doc_parser *p)
{
    if (p->n == DOC_MAX_NODES) {
        p->failed = true;
        return -1;
    }
    memset(&p->nodes[p->n], 0, sizeof(p->nodes[0]));
    return p->n++;
}

static void doc__skip(doc_parser *p)
{
    while (p->s[p->i] == ' ') p->i++;
}

static bool doc__word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static size_t doc__word(doc_parser *p, char *out, size_t cap, bool *upper)
{
    size_t n = 0;
    bool lower = false;
    while (doc__word_char(p->s[p->i])) {
        char c = p->s[p->i++];
        if (c >= 'a' && c <= 'z') lower = true;
        if (n + 1 < cap) out[n++] = c;
    }
    out[n] = '\0';
    *upper = n && !lower;
    return n;
}

static const char *doc__type_of(const char *name)
{
    static const char *const integers[] = {
        "seconds",   "milliseconds", "offset", "start",    "end",       "count", "cursor",
        "increment", "decrement",    "index",  "protover", "client-id", NULL};
    if (strcmp(name, "key") == 0 || strcmp(name, "newkey") == 0) return "key";
    if (strcmp(name, "pattern") == 0) return "pattern";
    if (strncmp(name, "unix-time", 9) == 0) return "unix-time";
    for (size_t i = 0; integers[i]; i++)
        if (strcmp(name, integers[i]) == 0) return "integer";
    return "string";
}

static void doc__copy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) n = cap - 1;
    memmove(dst, src, n);
    dst[n] = '\0';
}

static void doc__lower(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < cap; i++)
        dst[i] = src[i] >= 'A' && src[i] <= 'Z' ? (char)(src[i] + ('a' - 'A')) : src[i];
    dst[i] = '\0';
}

static int doc__alternatives(doc_parser *p, char close);

/* One item: a word (or token + word), or a bracketed group; then "...". */
static int doc__item(doc_parser *p)
{
    doc__skip(p);
    char c = p->s[p->i];
    int id;
    if (c == '[' || c == '(') {
        p->i++;
        id = doc__alternatives(p, c == '[' ? ']' : ')');
        if (id < 0) return -1;
        if (c == '[') p->nodes[id].optional = true;
    } else {
        char w[40];
        bool upper;
        if (!doc__word(p, w, sizeof(w), &upper)) {
            p->failed = true;
            return -1;
        }
        if ((id = doc__new(p)) < 0) return -1;
        doc_node *d = &p->nodes[id];
        if (upper) {
            doc__copy(d->token, sizeof(d->token), w);
            size_t save = p->i;
            doc__skip(p);
            char name[40];
            bool up2;
            if (doc__word(p, name, sizeof(name), &up2) && !up2) {
                doc__copy(d->name, sizeof(d->name), name);
                d->type = doc__type_of(name);
            } else {
                p->i = save;
                doc__lower(d->name, sizeof(d->name), w);
                d->type = "pure-token";
            }
        } else {
            doc__copy(d->name, sizeof(d->name), w);
            d->type = doc__type_of(w);
            if (p->s[p->i] == ':') { /* an explicit type: "increment:double" */
                static const char *const types[] = {"string",  "integer",   "double", "key",
                                                    "pattern", "unix-time", NULL};
                char t[16];
                p->i++;
                doc__word(p, t, sizeof(t), &upper);
                d->type = NULL;
                for (size_t k = 0; types[k]; k++)
                    if (strcmp(t, types[k]) == 0) d->type = types[k];
                if (!d->type) {
                    p->failed = true;
                    return -1;
                }
            }
        }
    }
    doc__skip(p);
    if (strncmp(p->s + p->i, "...", 3) == 0) {
        p->i += 3;
        p->nodes[id].multiple = true;
    }
    return id;
}

/* Items up to '|', the closing bracket or the end, as one node (a block
 * when there are several). */
static int doc__sequence(doc_parser *p, char close, int *items, int *n)
{
    *n = 0;
    for (;;) {
        doc__skip(p);
        char c = p->s[p->i];
        if (c == '\0' || c == '|' || c == close) return 0;
        if (c == ']' || c == ')' || *n == DOC_MAX_CHILDREN) {
            p->failed = true;
            return -1;
        }
        int id = doc__item(p);
        if (id < 0) return -1;
        items[(*n)++] = id;
    }
}

static int doc__group(doc_parser *p, const int *items, int n, int kind)
{
    if (n == 1 && kind == DOC_BLOCK) return items[0];
    int id = doc__new(p);
    if (id < 0) return -1;
    doc_node *d = &p->nodes[id];
    d->kind = kind;
    d->type = kind == DOC_ONEOF ? "oneof" : "block";
    memcpy(d->child, items, (size_t)n * sizeof(int));
    d->nchild = n;
    /* groups are named after their first member, as in "nx" for [NX|XX] */
    doc__copy(d->name, sizeof(d->name), p->nodes[items[0]].name);
    return id;
}

static int doc__alternatives(doc_parser *p, char close)
{
    int alts[DOC_MAX_CHILDREN], nalts = 0;
    for (;;) {
        int items[DOC_MAX_CHILDREN], n;
        if (doc__sequence(p, close, items, &n) < 0 || n == 0 || nalts == DOC_MAX_CHILDREN) {
            p->failed = true;
            return -1;
        }
        int id = doc__group(p, items, n, DOC_BLOCK);
        if (id < 0) return -1;
        alts[nalts++] = id;
        char c = p->s[p->i];
        if (c == '|') {
            p->i++;
            continue;
        }
        if (c != close) {
            p->failed = true;
            return -1;
        }
        p->i++;
        break;
    }
    if (nalts == 1) {
        /* a group of one sequence: reuse the node, or wrap a lone item
         * so that flags apply to the group, not to the item itself */
        return alts[0];
    }
    return doc__group(p, alts, nalts, DOC_ONEOF);
}

static void doc__write(buf *out, int proto, const doc_parser *p, int id)
{
    const doc_node *d = &p->nodes[id];
    bool key = strcmp(d->type, "key") == 0;
    size_t pairs = 2 + (key ? 1 : 0) + (d->token[0] ? 1 : 0) + (d->optional || d->multiple) +
                   (d->nchild ? 1 : 0);
    resp_write_map(out, proto, pairs);
    resp_write_bulk_str(out, "name");
    resp_write_bulk_str(out, d->name);
    resp_write_bulk_str(out, "type");
    resp_write_bulk_str(out, d->type);
    if (key) {
        resp_write_bulk_str(out, "key_spec_index");
        resp_write_integer(out, 0);
    }
    if (d->token[0]) {
        resp_write_bulk_str(out, "token");
        resp_write_bulk_str(out, d->token);
    }
    if (d->optional || d->multiple) {
        resp_write_bulk_str(out, "flags");
        resp_write_set(out, proto, (size_t)d->optional + (size_t)d->multiple);
        if (d->optional) resp_write_simple(out, "optional");
        if (d->multiple) resp_write_simple(out, "multiple");
    }
    if (d->nchild) {
        resp_write_bulk_str(out, "arguments");
        resp_write_array(out, (size_t)d->nchild);
        for (int i = 0; i < d->nchild; i++) doc__write(out, proto, p, d->child[i]);
    }
}

int resp_format_doc_args(buf *out, int proto, const char *synopsis)
{
    doc_parser *p = calloc(1, sizeof(*p));
    if (!p) return -1;
    p->s = synopsis ? synopsis : "";
    int top[DOC_MAX_CHILDREN], n = 0;
    int rv = -1;
    if (doc__sequence(p, '\0', top, &n) == 0 && !p->failed && p->s[p->i] == '\0') {
        resp_write_array(out, (size_t)n);
        for (int i = 0; i < n; i++) doc__write(out, proto, p, top[i]);
        rv = n;
    }
    free(p);
    return rv;
}
