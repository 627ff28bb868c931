/* cairnctl: the command-line client and admin tool of cairn.
 *
 * A client of the public HTTP API only (docs/api.md): every command becomes
 * one or a few requests through http_client, which owns endpoint failover,
 * deadlines and backoff. This file turns arguments into requests and
 * responses into output.
 *
 * Output contract, relied on by scripts: results go to stdout; every error
 * is one line on stderr starting with "cairnctl: "; the exit code is 0 on
 * success, 1 when the operation failed (server error, missing key,
 * unreachable cluster) and 2 when the command line itself is wrong. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/http_client.h"
#include "util/json_scan.h"
#include "util/loadgen.h"
#include "util/password.h"
#include "util/strconv.h"

enum { CTL_EXIT_OK = 0, CTL_EXIT_FAIL = 1, CTL_EXIT_USAGE = 2 };

#define CTL_DEFAULT_ENDPOINT "http://127.0.0.1:8080"
#define CTL_MAX_POSITIONAL 8
/* Page size for list: the server's default, well under its 10000 cap. */
#define CTL_LIST_PAGE 1000

static const char ctl__usage_text[] =
    "usage: cairnctl [--endpoints URL,...] [--timeout S] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  put KEY VALUE [--ttl S]         store VALUE under KEY ('-' reads VALUE from stdin)\n"
    "  get KEY                         print the raw value of KEY\n"
    "  del KEY                         delete KEY\n"
    "  list [PREFIX] [--limit N] [--values]\n"
    "                                  print keys (and values after a tab) in byte order,\n"
    "                                  at most N of them\n"
    "  status                          node and cluster status as a table\n"
    "  member list                     cluster members\n"
    "  member add ID PEER_ADDR [--http URL]\n"
    "                                  add member ID reachable at PEER_ADDR (host:port)\n"
    "  member remove ID                remove member ID\n"
    "  leader transfer ID              hand leadership to member ID\n"
    "  hash-password PASSWORD|- [--iterations N]\n"
    "                                  print a --users-file hash ('-': read the password\n"
    "                                  from stdin; N default 600000)\n"
    "  bench [OPTIONS]                 load generator for cairn, Redis, memcached and etcd\n"
    "                                  (cairnctl bench --help lists its options)\n"
    "\n"
    "options:\n"
    "  --endpoints URL,...   servers to try in turn (default: $CAIRN_ENDPOINTS,\n"
    "                        else " CTL_DEFAULT_ENDPOINT ")\n"
    "  --timeout S           deadline per request attempt in seconds (default 5)\n"
    "  --user NAME           authenticate (HTTP Basic; default $CAIRN_USER)\n"
    "  --password PW         its password (default $CAIRN_PASSWORD, which keeps it out\n"
    "                        of the process list)\n"
    "  --                    end of options (for keys starting with '-')\n"
    "\n"
    "exit status: 0 success, 1 failure, 2 usage error\n";

typedef struct ctl_args {
    const char *endpoints;
    const char *timeout;
    const char *ttl;
    const char *limit;
    const char *http_url;
    const char *user;
    const char *password;
    const char *iterations;
    bool values;
    bool help;
    const char *pos[CTL_MAX_POSITIONAL];
    size_t n_pos;
} ctl_args;

typedef struct ctl {
    const char *cmd;   /* for messages: "get", "member add", ... */
    const char *usage; /* the command's synopsis, for usage errors */
    ctl_args args;
    http_client client;
    http_client_options opt;
    char auth_value[512]; /* "Basic ..." with --user, else "" */
    http_client_header auth_header;
} ctl;

/* ---- messages ----------------------------------------------------------- */

/* Server-provided text goes to a terminal: keep it on one line and free of
 * control sequences. */
static void ctl__put_clean(FILE *f, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        fputc(c < 0x20 || c == 0x7F ? '?' : c, f);
    }
}

static int ctl__fail(const ctl *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ctl__fail(const ctl *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cairnctl: %s: ", x->cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CTL_EXIT_FAIL;
}

static int ctl__usage(const ctl *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ctl__usage(const ctl *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("cairnctl: ", stderr);
    if (x->cmd) fprintf(stderr, "%s: ", x->cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (x->usage)
        fprintf(stderr, " (usage: cairnctl %s)\n", x->usage);
    else
        fputs(" (see cairnctl --help)\n", stderr);
    return CTL_EXIT_USAGE;
}

static int ctl__transport_fail(const ctl *x, const http_client_error *err, size_t n_endpoints)
{
    const char *url = err->url ? err->url : "server";
    switch (err->code) {
    case HTTP_CLIENT_ECONNECT:
    case HTTP_CLIENT_ERESOLVE:
    case HTTP_CLIENT_ETIMEDOUT:
    case HTTP_CLIENT_EIO:
        fprintf(stderr, "cairnctl: cannot reach %s: %s", url, err->msg);
        if (n_endpoints > 1) fprintf(stderr, " (tried %zu endpoints)", n_endpoints);
        fputc('\n', stderr);
        return CTL_EXIT_FAIL;
    case HTTP_CLIENT_EPROTO:
    case HTTP_CLIENT_ETOOBIG:
        fprintf(stderr, "cairnctl: %s: bad response from %s: %s\n", x->cmd, url, err->msg);
        return CTL_EXIT_FAIL;
    default:
        return ctl__fail(x, "%s", err->msg);
    }
}

/* The server's JSON "error" message when there is one, else the status. */
static int ctl__http_fail(const ctl *x, const http_client_response *resp, const char *url)
{
    json_value root, msg;
    buf text;
    buf_init(&text);
    if (json_scan_parse(resp->body.data ? resp->body.data : "", resp->body.len, &root) == 0 &&
        json_scan_get(&root, "error", &msg) == 0)
        json_scan_string(&msg, &text);
    fprintf(stderr, "cairnctl: %s: ", x->cmd);
    /* A 4xx is about the request, and its message says it all; anything
     * else is about a server, and which one matters when there are several. */
    bool client_error = resp->status >= 400 && resp->status < 500;
    if (text.len) {
        ctl__put_clean(stderr, text.data, text.len);
        if (!client_error) fprintf(stderr, " (HTTP %d from %s)", resp->status, url);
    } else {
        fprintf(stderr, "%sHTTP %d ", client_error ? "" : "unexpected answer ", resp->status);
        ctl__put_clean(stderr, resp->reason, strlen(resp->reason));
        if (!client_error) fprintf(stderr, " from %s", url);
    }
    fputc('\n', stderr);
    buf_close(&text);
    return CTL_EXIT_FAIL;
}

static int ctl__bad_json(const ctl *x, const char *url, const char *what, int rc)
{
    fprintf(stderr, "cairnctl: %s: bad response from %s: %s (%s)\n", x->cmd, url, what,
            json_scan_strerror(rc));
    return CTL_EXIT_FAIL;
}

static int ctl__flush_stdout(const ctl *x)
{
    if (fflush(stdout) != 0 || ferror(stdout))
        return ctl__fail(x, "cannot write output: %s", strerror(errno));
    return CTL_EXIT_OK;
}

/* ---- small helpers -------------------------------------------------------- */

/* Percent-encode every byte outside RFC 3986's unreserved set, so that any
 * byte string survives as a path segment or query value (notably '/', '?',
 * '%' and '+', which the server's query decoding reads as a space). */
static void ctl__pct(buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
        if (unreserved) {
            buf_append_char(b, (char)c);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_append(b, esc, 3);
        }
    }
}

static void ctl__json_quote(buf *b, const char *s)
{
    buf_append_char(b, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf_append_char(b, '\\');
            buf_append_char(b, (char)c);
        } else if (c < 0x20) {
            buf_printf(b, "\\u%04x", c);
        } else {
            buf_append_char(b, (char)c);
        }
    }
    buf_append_char(b, '"');
}

/* Strict decimal: digits only, no sign, no spaces, within [min, max]. */
static bool ctl__parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || !*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 19) return false;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno || v < min || v > max) return false;
    *out = v;
    return true;
}

/* host:port or [v6]:port, as the server's --listen-peer takes it. */
static bool ctl__valid_host_port(const char *s)
{
    const char *colon = strrchr(s, ':');
    uint64_t port;
    if (!colon || colon == s || !ctl__parse_u64(colon + 1, 1, 65535, &port)) return false;
    if (s[0] == '[') return colon[-1] == ']' && colon - s > 2;
    return memchr(s, ':', (size_t)(colon - s)) == NULL;
}

static int ctl__read_stdin(const ctl *x, buf *out)
{
    for (;;) {
        buf_reserve(out, 65536);
        ssize_t n = read(STDIN_FILENO, out->data + out->len, out->cap - out->len - 1);
        if (n > 0) {
            out->len += (size_t)n;
            out->data[out->len] = '\0';
            if (out->len > HTTP_CLIENT_MAX_BODY)
                return ctl__fail(x, "value on stdin is over %zu MiB", HTTP_CLIENT_MAX_BODY >> 20);
            continue;
        }
        if (n == 0) return CTL_EXIT_OK;
        if (errno == EINTR) continue;
        return ctl__fail(x, "cannot read stdin: %s", strerror(errno));
    }
}

/* Send one request with failover. Returns 0 with a response of any status,
 * or reports the transport failure and returns the exit code. */
static int ctl__send(ctl *x, const char *method, const char *target, const buf *body,
                     http_client_response *resp)
{
    http_client_request req = {
        .method = method,
        .target = target,
        .has_body = body != NULL,
        .body = body ? body->data : NULL,
        .body_len = body ? body->len : 0,
        .headers = x->auth_value[0] ? &x->auth_header : NULL,
        .n_headers = x->auth_value[0] ? 1 : 0,
    };
    http_client_error err;
    int rc = http_client_send(&x->client, &req, resp, &err);
    if (rc < 0) return ctl__transport_fail(x, &err, x->client.n_endpoints);
    return CTL_EXIT_OK;
}

static bool ctl__ok(const http_client_response *resp)
{
    return resp->status >= 200 && resp->status < 300;
}

/* A simple one-shot command: request, then "OK" or the server's error. */
static int ctl__simple(ctl *x, const char *method, const char *target, const buf *body,
                       const char *ok_text)
{
    http_client_response resp;
    http_client_response_init(&resp);
    int rc = ctl__send(x, method, target, body, &resp);
    if (rc == CTL_EXIT_OK) {
        if (ctl__ok(&resp)) {
            puts(ok_text);
            rc = ctl__flush_stdout(x);
        } else {
            rc = ctl__http_fail(x, &resp, http_client_last_url(&x->client));
        }
    }
    http_client_response_close(&resp);
    return rc;
}

/* ---- aligned tables ------------------------------------------------------- */

typedef struct ctl_table {
    size_t n_cols;
    char **cells; /* row-major, owned */
    size_t n_cells;
} ctl_table;

static void ctl__table_init(ctl_table *t, size_t n_cols)
{
    t->n_cols = n_cols;
    t->cells = NULL;
    t->n_cells = 0;
}

/* Takes ownership of cell. */
static void ctl__table_add(ctl_table *t, char *cell)
{
    t->cells = xrealloc(t->cells, (t->n_cells + 1) * sizeof(*t->cells));
    t->cells[t->n_cells++] = cell;
}

static void ctl__table_add_str(ctl_table *t, const char *s)
{
    ctl__table_add(t, xstrdup(s));
}

static void ctl__table_print(const ctl_table *t)
{
    size_t width[16] = {0};
    for (size_t i = 0; i < t->n_cells; i++) {
        size_t n = strlen(t->cells[i]);
        if (n > width[i % t->n_cols]) width[i % t->n_cols] = n;
    }
    for (size_t i = 0; i < t->n_cells; i++) {
        size_t col = i % t->n_cols;
        bool last = col == t->n_cols - 1 || i == t->n_cells - 1;
        ctl__put_clean(stdout, t->cells[i], strlen(t->cells[i]));
        if (last) {
            fputc('\n', stdout);
        } else {
            for (size_t k = strlen(t->cells[i]); k < width[col] + 2; k++) fputc(' ', stdout);
        }
    }
}

static void ctl__table_close(ctl_table *t)
{
    for (size_t i = 0; i < t->n_cells; i++) free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->n_cells = 0;
}

/* A JSON field as table text: strings decoded, numbers verbatim, null or
 * missing as "-". */
static char *ctl__field_text(const json_value *obj, const char *name)
{
    json_value v;
    if (json_scan_get(obj, name, &v) < 0) return xstrdup("-");
    switch (v.type) {
    case JSON_STRING: {
        buf b;
        buf_init(&b);
        if (json_scan_string(&v, &b) < 0 || memchr(b.data ? b.data : "", '\0', b.len)) {
            buf_close(&b);
            return xstrdup("?");
        }
        if (b.len == 0) return xstrdup("-");
        return b.data; /* NUL-terminated, and ours now */
    }
    case JSON_NUMBER: {
        char *s = xmalloc(v.len + 1);
        memcpy(s, v.text, v.len);
        s[v.len] = '\0';
        return s;
    }
    case JSON_TRUE:
        return xstrdup("true");
    case JSON_FALSE:
        return xstrdup("false");
    case JSON_NULL:
        return xstrdup("-");
    default:
        return xstrdup("?");
    }
}

/* ---- key commands --------------------------------------------------------- */

static void ctl__key_target(buf *t, const char *key)
{
    buf_append_str(t, "/v1/key/");
    ctl__pct(t, key, strlen(key));
}

static int ctl__cmd_put(ctl *x)
{
    if (x->args.n_pos < 2) return ctl__usage(x, "missing %s", x->args.n_pos ? "VALUE" : "KEY");
    if (x->args.n_pos > 2) return ctl__usage(x, "too many arguments");
    const char *key = x->args.pos[0];
    if (!*key) return ctl__usage(x, "KEY must not be empty");
    uint64_t ttl = 0;
    if (x->args.ttl && !ctl__parse_u64(x->args.ttl, 1, 1000000000, &ttl))
        return ctl__usage(x, "--ttl takes whole seconds from 1 to 1000000000");

    buf value, target;
    buf_init(&value);
    buf_init(&target);
    int rc = CTL_EXIT_OK;
    if (strcmp(x->args.pos[1], "-") == 0)
        rc = ctl__read_stdin(x, &value);
    else
        buf_append_str(&value, x->args.pos[1]);
    if (rc == CTL_EXIT_OK) {
        ctl__key_target(&target, key);
        if (ttl) buf_printf(&target, "?ttl=%llu", (unsigned long long)ttl);
        rc = ctl__simple(x, "PUT", target.data, &value, "OK");
    }
    buf_close(&value);
    buf_close(&target);
    return rc;
}

static int ctl__cmd_get(ctl *x)
{
    if (x->args.n_pos != 1)
        return ctl__usage(x, x->args.n_pos ? "too many arguments" : "missing KEY");
    if (!*x->args.pos[0]) return ctl__usage(x, "KEY must not be empty");
    buf target;
    buf_init(&target);
    ctl__key_target(&target, x->args.pos[0]);
    http_client_response resp;
    http_client_response_init(&resp);
    int rc = ctl__send(x, "GET", target.data, NULL, &resp);
    if (rc == CTL_EXIT_OK) {
        if (resp.status == 200) {
            /* The value exactly as stored: no newline added. */
            fwrite(resp.body.data ? resp.body.data : "", 1, resp.body.len, stdout);
            rc = ctl__flush_stdout(x);
        } else {
            rc = ctl__http_fail(x, &resp, http_client_last_url(&x->client));
        }
    }
    http_client_response_close(&resp);
    buf_close(&target);
    return rc;
}

static int ctl__cmd_del(ctl *x)
{
    if (x->args.n_pos != 1)
        return ctl__usage(x, x->args.n_pos ? "too many arguments" : "missing KEY");
    if (!*x->args.pos[0]) return ctl__usage(x, "KEY must not be empty");
    buf target;
    buf_init(&target);
    ctl__key_target(&target, x->args.pos[0]);
    int rc = ctl__simple(x, "DELETE", target.data, NULL, "OK");
    buf_close(&target);
    return rc;
}

/* Decode the bytes of item[b64_name] (base64url), falling back to the
 * plain item[name] string, which the server sends only for valid UTF-8. */
static int ctl__item_bytes(const json_value *item, const char *b64_name, const char *name, buf *out)
{
    json_value v;
    int rc = json_scan_get(item, b64_name, &v);
    if (rc == 0) {
        buf enc;
        buf_init(&enc);
        rc = json_scan_string(&v, &enc);
        if (rc == 0) rc = json_scan_base64url_decode(enc.data ? enc.data : "", enc.len, out);
        buf_close(&enc);
        return rc;
    }
    if (json_scan_get(item, name, &v) == 0) return json_scan_string(&v, out);
    return rc;
}

/* Print one page of a list response; sets *next (reset first) to the
 * decoded next_cursor, left empty when there is none. */
static int ctl__list_page(ctl *x, const http_client_response *resp, const char *url,
                          uint64_t *printed, uint64_t max, buf *next, bool *has_next)
{
    json_value root, keys, item, cur;
    int rc = json_scan_parse(resp->body.data ? resp->body.data : "", resp->body.len, &root);
    if (rc < 0) return ctl__bad_json(x, url, "list body", rc);
    rc = json_scan_get(&root, "keys", &keys);
    if (rc == 0 && keys.type != JSON_ARRAY) rc = JSON_SCAN_ETYPE;
    if (rc < 0) return ctl__bad_json(x, url, "\"keys\"", rc);

    json_iter it;
    json_scan_iter_init(&it, &keys);
    buf key, value;
    buf_init(&key);
    buf_init(&value);
    int out = CTL_EXIT_OK;
    while (*printed < max && json_scan_iter_next(&it, NULL, &item) == 1) {
        buf_reset(&key);
        buf_reset(&value);
        rc = ctl__item_bytes(&item, "key_b64", "key", &key);
        if (rc < 0) {
            out = ctl__bad_json(x, url, "key", rc);
            break;
        }
        if (x->args.values) {
            rc = ctl__item_bytes(&item, "value_b64", "value", &value);
            if (rc < 0) {
                out = ctl__bad_json(x, url, "value", rc);
                break;
            }
        }
        fwrite(key.data ? key.data : "", 1, key.len, stdout);
        if (x->args.values) {
            fputc('\t', stdout);
            fwrite(value.data ? value.data : "", 1, value.len, stdout);
        }
        fputc('\n', stdout);
        (*printed)++;
    }
    buf_close(&key);
    buf_close(&value);
    if (out != CTL_EXIT_OK) return out;

    buf_reset(next);
    *has_next = false;
    if (json_scan_get(&root, "next_cursor", &cur) == 0 && cur.type != JSON_NULL) {
        rc = json_scan_string(&cur, next);
        if (rc < 0) return ctl__bad_json(x, url, "\"next_cursor\"", rc);
        *has_next = true;
    }
    return CTL_EXIT_OK;
}

static int ctl__cmd_list(ctl *x)
{
    if (x->args.n_pos > 1) return ctl__usage(x, "too many arguments");
    const char *prefix = x->args.n_pos ? x->args.pos[0] : "";
    uint64_t max = UINT64_MAX;
    if (x->args.limit && !ctl__parse_u64(x->args.limit, 1, UINT64_MAX, &max))
        return ctl__usage(x, "--limit takes a positive integer");

    buf target, cursor, next;
    buf_init(&target);
    buf_init(&cursor);
    buf_init(&next);
    http_client_response resp;
    http_client_response_init(&resp);
    uint64_t printed = 0;
    bool has_cursor = false;
    int rc = CTL_EXIT_OK;
    while (printed < max) {
        uint64_t page = max - printed < CTL_LIST_PAGE ? max - printed : CTL_LIST_PAGE;
        buf_reset(&target);
        buf_append_str(&target, "/v1/keys?prefix=");
        ctl__pct(&target, prefix, strlen(prefix));
        buf_printf(&target, "&limit=%llu", (unsigned long long)page);
        if (x->args.values) buf_append_str(&target, "&values=true");
        if (has_cursor) {
            buf_append_str(&target, "&cursor=");
            ctl__pct(&target, cursor.data, cursor.len);
        }
        rc = ctl__send(x, "GET", target.data, NULL, &resp);
        if (rc != CTL_EXIT_OK) break;
        const char *url = http_client_last_url(&x->client);
        if (resp.status != 200) {
            rc = ctl__http_fail(x, &resp, url);
            break;
        }
        bool has_next;
        rc = ctl__list_page(x, &resp, url, &printed, max, &next, &has_next);
        if (rc != CTL_EXIT_OK || !has_next) break;
        /* A cursor that does not move would loop forever. */
        if (has_cursor && next.len == cursor.len && memcmp(next.data, cursor.data, next.len) == 0) {
            rc = ctl__fail(x, "server returned the same cursor twice; stopping");
            break;
        }
        buf_reset(&cursor);
        buf_append(&cursor, next.data ? next.data : "", next.len);
        has_cursor = true;
    }
    if (rc == CTL_EXIT_OK)
        rc = ctl__flush_stdout(x);
    else
        fflush(stdout);
    http_client_response_close(&resp);
    buf_close(&target);
    buf_close(&cursor);
    buf_close(&next);
    return rc;
}

/* ---- status and cluster ----------------------------------------------------- */

/* GET path through client, expecting a JSON object. Returns 0 with *root
 * pointing into resp, an exit code after reporting the failure, or -404 on
 * a 404 when allow_404 (so that the caller can fall back quietly). */
static int ctl__get_json(ctl *x, http_client *client, const char *path, bool allow_404,
                         http_client_response *resp, json_value *root)
{
    http_client_request req = {.method = "GET",
                               .target = path,
                               .headers = x->auth_value[0] ? &x->auth_header : NULL,
                               .n_headers = x->auth_value[0] ? 1 : 0};
    http_client_error err;
    int rc = http_client_send(client, &req, resp, &err);
    if (rc < 0) return ctl__transport_fail(x, &err, client->n_endpoints);
    const char *url = http_client_last_url(client);
    if (resp->status == 404 && allow_404) return -404;
    if (resp->status != 200) return ctl__http_fail(x, resp, url);
    rc = json_scan_parse(resp->body.data ? resp->body.data : "", resp->body.len, root);
    if (rc == 0 && root->type != JSON_OBJECT) rc = JSON_SCAN_ETYPE;
    if (rc < 0) return ctl__bad_json(x, url, path, rc);
    return CTL_EXIT_OK;
}

static const char *const ctl__status_cols[] = {"ID",      "ROLE",     "TERM", "LEADER",  "COMMIT",
                                               "APPLIED", "REVISION", "KEYS", "ENDPOINT"};
#define CTL_STATUS_NCOLS (sizeof(ctl__status_cols) / sizeof(ctl__status_cols[0]))

static void ctl__status_row(ctl_table *t, const json_value *st, const char *url)
{
    static const char *const fields[] = {"id",           "role",          "term",     "leader",
                                         "commit_index", "applied_index", "revision", "keys"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        ctl__table_add(t, ctl__field_text(st, fields[i]));
    ctl__table_add_str(t, url);
}

static void ctl__status_dead_row(ctl_table *t, const char *id, const char *url)
{
    ctl__table_add_str(t, id);
    ctl__table_add_str(t, "unreachable");
    for (size_t i = 2; i < CTL_STATUS_NCOLS - 1; i++) ctl__table_add_str(t, "-");
    ctl__table_add_str(t, url ? url : "-");
}

/* A member's client URL. /v1/cluster is not pinned down in docs/api.md
 * yet; "http" matches what `member add --http` sends, the others are
 * accepted so that a renamed field degrades to "unknown", not to a crash. */
static char *ctl__member_http(const json_value *m)
{
    static const char *const names[] = {"http", "http_url", "client_url", "url"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        json_value v;
        if (json_scan_get(m, names[i], &v) == 0 && v.type == JSON_STRING) {
            char *s = ctl__field_text(m, names[i]);
            if (strcmp(s, "?") != 0 && strcmp(s, "-") != 0) return s;
            free(s);
        }
    }
    return NULL;
}

/* Ask one member for its own status, in one round and without failing over:
 * the point is to see that very node. Returns 0 and adds a row, or adds an
 * "unreachable" row and returns 1 after saying why on stderr. */
static int ctl__member_status(ctl *x, ctl_table *t, const char *id, const char *url)
{
    http_client_options opt = x->opt;
    opt.rounds = 1;
    http_client mc;
    http_client_error err;
    if (http_client_init(&mc, url, &opt, &err) < 0) {
        ctl__status_dead_row(t, id, url);
        fprintf(stderr, "cairnctl: status: member %s: %s\n", id, err.msg);
        return CTL_EXIT_FAIL;
    }
    http_client_response resp;
    http_client_response_init(&resp);
    json_value st;
    int rc = ctl__get_json(x, &mc, "/v1/status", false, &resp, &st);
    if (rc == CTL_EXIT_OK) {
        ctl__status_row(t, &st, mc.endpoints[0].url);
    } else {
        ctl__status_dead_row(t, id, mc.endpoints[0].url);
        rc = CTL_EXIT_FAIL;
    }
    http_client_response_close(&resp);
    http_client_close(&mc);
    return rc;
}

static bool ctl__same_id(const json_value *a_obj, const json_value *b_obj)
{
    json_value a, b;
    uint64_t x, y;
    return json_scan_get(a_obj, "id", &a) == 0 && json_scan_get(b_obj, "id", &b) == 0 &&
           json_scan_u64(&a, &x) == 0 && json_scan_u64(&b, &y) == 0 && x == y;
}

static int ctl__cmd_status(ctl *x)
{
    if (x->args.n_pos) return ctl__usage(x, "too many arguments");
    http_client_response sresp, cresp;
    http_client_response_init(&sresp);
    http_client_response_init(&cresp);
    ctl_table t;
    ctl__table_init(&t, CTL_STATUS_NCOLS);
    for (size_t i = 0; i < CTL_STATUS_NCOLS; i++) ctl__table_add_str(&t, ctl__status_cols[i]);

    json_value st, cl, members, m;
    char *status_url = NULL;
    int rc = ctl__get_json(x, &x->client, "/v1/status", false, &sresp, &st);
    if (rc != CTL_EXIT_OK) goto out;
    status_url = xstrdup(http_client_last_url(&x->client));

    rc = ctl__get_json(x, &x->client, "/v1/cluster", true, &cresp, &cl);
    if (rc != CTL_EXIT_OK) {
        /* A standalone node (or an older server) has no cluster view: its
         * own status is the whole story. Other failures were reported. */
        ctl__status_row(&t, &st, status_url);
        rc = rc == -404 ? CTL_EXIT_OK : rc;
        goto print;
    }
    int jrc = json_scan_get(&cl, "members", &members);
    if (jrc == 0 && members.type != JSON_ARRAY) jrc = JSON_SCAN_ETYPE;
    if (jrc < 0) {
        ctl__status_row(&t, &st, status_url);
        rc = ctl__bad_json(x, http_client_last_url(&x->client), "\"members\"", jrc);
        goto print;
    }
    json_iter it;
    json_scan_iter_init(&it, &members);
    bool self_listed = false;
    while (json_scan_iter_next(&it, NULL, &m) == 1) {
        if (m.type != JSON_OBJECT) continue;
        if (ctl__same_id(&m, &st)) {
            ctl__status_row(&t, &st, status_url);
            self_listed = true;
            continue;
        }
        char *id = ctl__field_text(&m, "id");
        char *url = ctl__member_http(&m);
        if (url) {
            if (ctl__member_status(x, &t, id, url) != CTL_EXIT_OK) rc = CTL_EXIT_FAIL;
        } else {
            /* Without a client URL only the cluster's view is known. */
            ctl__table_add(&t, id);
            id = NULL;
            json_value role;
            ctl__table_add(
                &t,
                ctl__field_text(&m, json_scan_get(&m, "role", &role) == 0 ? "role" : "suffrage"));
            for (size_t i = 2; i < CTL_STATUS_NCOLS; i++) ctl__table_add_str(&t, "-");
        }
        free(id);
        free(url);
    }
    if (!self_listed) ctl__status_row(&t, &st, status_url);

print:
    ctl__table_print(&t);
    if (rc == CTL_EXIT_OK)
        rc = ctl__flush_stdout(x);
    else
        fflush(stdout);
out:
    free(status_url);
    ctl__table_close(&t);
    http_client_response_close(&sresp);
    http_client_response_close(&cresp);
    return rc;
}

static char *ctl__member_role(const json_value *m, const json_value *cluster)
{
    json_value v;
    char *role;
    if (json_scan_get(m, "role", &v) == 0) {
        role = ctl__field_text(m, "role");
    } else if (json_scan_get(m, "suffrage", &v) == 0) {
        role = ctl__field_text(m, "suffrage");
    } else if (json_scan_get(m, "voter", &v) == 0 &&
               (v.type == JSON_TRUE || v.type == JSON_FALSE)) {
        role = xstrdup(v.type == JSON_TRUE ? "voter" : "learner");
    } else {
        role = xstrdup("-");
    }
    json_value leader, id;
    if (strcmp(role, "leader") != 0 && json_scan_get(cluster, "leader", &leader) == 0 &&
        json_scan_get(m, "id", &id) == 0 && leader.type == JSON_NUMBER && id.type == JSON_NUMBER &&
        leader.len == id.len && memcmp(leader.text, id.text, id.len) == 0) {
        buf b;
        buf_init(&b);
        buf_printf(&b, "%s (leader)", role);
        free(role);
        role = b.data;
    }
    return role;
}

static int ctl__member_list(ctl *x)
{
    if (x->args.n_pos) return ctl__usage(x, "too many arguments");
    http_client_response resp;
    http_client_response_init(&resp);
    json_value cl, members, m;
    int rc = ctl__get_json(x, &x->client, "/v1/cluster", false, &resp, &cl);
    if (rc != CTL_EXIT_OK) goto out;
    rc = json_scan_get(&cl, "members", &members);
    if (rc == 0 && members.type != JSON_ARRAY) rc = JSON_SCAN_ETYPE;
    if (rc < 0) {
        rc = ctl__bad_json(x, http_client_last_url(&x->client), "\"members\"", rc);
        goto out;
    }
    ctl_table t;
    ctl__table_init(&t, 4);
    ctl__table_add_str(&t, "ID");
    ctl__table_add_str(&t, "ROLE");
    ctl__table_add_str(&t, "PEER");
    ctl__table_add_str(&t, "HTTP");
    json_iter it;
    json_scan_iter_init(&it, &members);
    while (json_scan_iter_next(&it, NULL, &m) == 1) {
        if (m.type != JSON_OBJECT) continue;
        ctl__table_add(&t, ctl__field_text(&m, "id"));
        ctl__table_add(&t, ctl__member_role(&m, &cl));
        ctl__table_add(&t, ctl__field_text(&m, "peer"));
        char *url = ctl__member_http(&m);
        ctl__table_add(&t, url ? url : xstrdup("-"));
    }
    ctl__table_print(&t);
    ctl__table_close(&t);
    rc = ctl__flush_stdout(x);
out:
    http_client_response_close(&resp);
    return rc;
}

static int ctl__member_add(ctl *x)
{
    if (x->args.n_pos < 2) return ctl__usage(x, "missing %s", x->args.n_pos ? "PEER_ADDR" : "ID");
    if (x->args.n_pos > 2) return ctl__usage(x, "too many arguments");
    uint64_t id;
    if (!ctl__parse_u64(x->args.pos[0], 1, INT64_MAX, &id))
        return ctl__usage(x, "ID must be a positive integer");
    if (!ctl__valid_host_port(x->args.pos[1])) return ctl__usage(x, "PEER_ADDR must be host:port");
    if (x->args.http_url) {
        http_client_endpoint ep;
        http_client_error err;
        if (http_client_endpoint_init(&ep, x->args.http_url, &err) < 0)
            return ctl__usage(x, "--http: %s", err.msg);
        http_client_endpoint_close(&ep);
    }
    buf body, ok;
    buf_init(&body);
    buf_init(&ok);
    buf_printf(&body, "{\"id\":%llu,\"peer\":", (unsigned long long)id);
    ctl__json_quote(&body, x->args.pos[1]);
    if (x->args.http_url) {
        buf_append_str(&body, ",\"http\":");
        ctl__json_quote(&body, x->args.http_url);
    }
    buf_append_char(&body, '}');
    buf_printf(&ok, "member %llu added", (unsigned long long)id);
    int rc = ctl__simple(x, "POST", "/v1/cluster/members", &body, ok.data);
    buf_close(&body);
    buf_close(&ok);
    return rc;
}

static int ctl__member_remove(ctl *x)
{
    if (x->args.n_pos != 1)
        return ctl__usage(x, x->args.n_pos ? "too many arguments" : "missing ID");
    uint64_t id;
    if (!ctl__parse_u64(x->args.pos[0], 1, INT64_MAX, &id))
        return ctl__usage(x, "ID must be a positive integer");
    buf target, ok;
    buf_init(&target);
    buf_init(&ok);
    buf_printf(&target, "/v1/cluster/members/%llu", (unsigned long long)id);
    buf_printf(&ok, "member %llu removed", (unsigned long long)id);
    int rc = ctl__simple(x, "DELETE", target.data, NULL, ok.data);
    buf_close(&target);
    buf_close(&ok);
    return rc;
}

static int ctl__leader_transfer(ctl *x)
{
    if (x->args.n_pos != 1)
        return ctl__usage(x, x->args.n_pos ? "too many arguments" : "missing ID");
    uint64_t id;
    if (!ctl__parse_u64(x->args.pos[0], 1, INT64_MAX, &id))
        return ctl__usage(x, "ID must be a positive integer");
    buf body, ok;
    buf_init(&body);
    buf_init(&ok);
    buf_printf(&body, "{\"id\":%llu}", (unsigned long long)id);
    buf_printf(&ok, "leadership transfer to member %llu accepted", (unsigned long long)id);
    int rc = ctl__simple(x, "POST", "/v1/cluster/leader", &body, ok.data);
    buf_close(&body);
    buf_close(&ok);
    return rc;
}

/* hash-password: the hash of a users-file line (docs/security.md). */
static int ctl__hash_password(ctl *x)
{
    if (x->args.n_pos != 1) return ctl__usage(x, "expected one PASSWORD (or - to read stdin)");
    uint64_t iterations = PASSWORD_DEFAULT_ITERATIONS;
    if (x->args.iterations &&
        (!strconv_parse_u64(x->args.iterations, strlen(x->args.iterations), &iterations) ||
         iterations < PASSWORD_MIN_ITERATIONS || iterations > PASSWORD_MAX_ITERATIONS))
        return ctl__usage(x, "--iterations takes an integer from 10000 to 100000000");
    char line[1100];
    const char *pw = x->args.pos[0];
    if (strcmp(pw, "-") == 0) {
        if (!fgets(line, sizeof(line), stdin)) return ctl__fail(x, "no password on stdin");
        line[strcspn(line, "\r\n")] = '\0';
        pw = line;
    }
    if (!*pw || strlen(pw) > 1024) return ctl__usage(x, "the password must be 1 to 1024 bytes");
    char out[256];
    int rc = password_hash(pw, strlen(pw), (uint32_t)iterations, out, sizeof(out));
    memset(line, 0, sizeof(line));
    if (rc != 0) return ctl__fail(x, "hashing failed");
    printf("%s\n", out);
    return CTL_EXIT_OK;
}

/* ---- bench ------------------------------------------------------------------ */

/* bench has options of its own, many of them, so it parses its command
 * line itself; the global --endpoints names the HTTP target. */

static const char ctl__bench_usage_text[] =
    "usage: cairnctl bench [OPTIONS]\n"
    "\n"
    "Drive load at a server and report throughput and latency percentiles.\n"
    "\n"
    "options:\n"
    "  --protocol P        http (cairn REST), resp (Redis), memcache (memcached text),\n"
    "                      etcd (etcd v3 JSON gateway); default http\n"
    "  --target HOST:PORT  server address (default: http: the first --endpoints URL,\n"
    "                      else 127.0.0.1:8080; resp 127.0.0.1:6380; memcache\n"
    "                      127.0.0.1:11211; etcd 127.0.0.1:2379)\n"
    "  --connections N     concurrent connections (default 50)\n"
    "  --duration S        run for S seconds (default 10 unless --requests is given)\n"
    "  --requests N        stop after N answers\n"
    "  --keyspace N        keys k000000000000000 .. N-1 (default 100000)\n"
    "  --keys random|sequential\n"
    "                      key choice; sequential writes each key once (default random)\n"
    "  --value-size B      bytes per written value (default 100)\n"
    "  --read-ratio R      share of reads, 0..1 (default 0.5)\n"
    "  --pipeline N        requests in flight per connection (default 1)\n"
    "  --rate R            open loop: R requests/s in total, latency measured from\n"
    "                      each request's intended send time (default: closed loop)\n"
    "  --seed N            random seed (default fixed)\n"
    "  --timeout S         connect timeout and longest wait for an answer (default 10)\n"
    "  --json              print the summary as one JSON object\n"
    "  --quiet             no progress line on stderr\n"
    "\n"
    "Outcomes: ok, miss (key not found), shed (HTTP 503/429, -BUSY), error, lost\n"
    "(connection failed). Percentiles cover served requests (all but shed and lost).\n";

typedef struct ctl_bench {
    loadgen_options opt;
    char host[256];
    char port[16];
    bool json;
    bool quiet;
    bool tty;
} ctl_bench;

static int ctl__bench_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int ctl__bench_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("cairnctl: bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see cairnctl bench --help)\n", stderr);
    return CTL_EXIT_USAGE;
}

static bool ctl__parse_double(const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < min || v > max) return false;
    *out = v;
    return true;
}

/* "host:port", "[v6]:port" or an http:// URL into host and port. */
static bool ctl__split_target(const char *s, ctl_bench *b)
{
    if (strncmp(s, "http://", 7) == 0) s += 7;
    size_t n = strcspn(s, "/");
    char tmp[300];
    if (n == 0 || n >= sizeof(tmp)) return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *colon = strrchr(tmp, ':');
    uint64_t port;
    if (!colon || !ctl__parse_u64(colon + 1, 1, 65535, &port)) return false;
    *colon = '\0';
    char *host = tmp;
    if (host[0] == '[') {
        size_t hl = strlen(host);
        if (hl < 3 || host[hl - 1] != ']') return false;
        host[hl - 1] = '\0';
        host++;
    }
    if (!*host || strlen(host) >= sizeof(b->host)) return false;
    snprintf(b->host, sizeof(b->host), "%s", host);
    snprintf(b->port, sizeof(b->port), "%" PRIu64, port);
    return true;
}

static int ctl__bench_parse(ctl_bench *b, int argc, char **argv, bool *help)
{
    loadgen_options *o = &b->opt;
    const char *target = NULL, *endpoints = NULL;
    bool have_duration = false, have_requests = false, seen_cmd = false;
    *help = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (arg[0] != '-') {
            if (!seen_cmd && strcmp(arg, "bench") == 0) {
                seen_cmd = true;
                continue;
            }
            return ctl__bench_usage("unexpected argument '%s'", arg);
        }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            *help = true;
            return CTL_EXIT_OK;
        }
        if (strcmp(arg, "--json") == 0) {
            b->json = true;
            continue;
        }
        if (strcmp(arg, "--quiet") == 0) {
            b->quiet = true;
            continue;
        }
        const char *eq = strchr(arg, '=');
        char name[32];
        size_t nl = eq ? (size_t)(eq - arg) : strlen(arg);
        if (nl >= sizeof(name)) return ctl__bench_usage("unknown option '%s'", arg);
        memcpy(name, arg, nl);
        name[nl] = '\0';
        static const char *const valued[] = {
            "--protocol", "--target",   "--endpoints", "--connections", "--duration",
            "--requests", "--keyspace", "--keys",      "--value-size",  "--read-ratio",
            "--pipeline", "--rate",     "--seed",      "--timeout"};
        bool known = false;
        for (size_t k = 0; k < sizeof(valued) / sizeof(valued[0]); k++)
            known |= strcmp(name, valued[k]) == 0;
        if (!known) return ctl__bench_usage("unknown option '%s'", name);
        const char *val = eq ? eq + 1 : NULL;
        if (!val) {
            if (i + 1 >= argc) return ctl__bench_usage("%s needs a value", name);
            val = argv[++i];
        }
        uint64_t u;
        double d;
        if (strcmp(name, "--protocol") == 0) {
            if (loadgen_protocol_parse(val, &o->protocol) < 0)
                return ctl__bench_usage("--protocol takes http, resp, memcache or etcd");
        } else if (strcmp(name, "--target") == 0) {
            target = val;
        } else if (strcmp(name, "--endpoints") == 0) {
            endpoints = val;
        } else if (strcmp(name, "--connections") == 0) {
            if (!ctl__parse_u64(val, 1, 100000, &u))
                return ctl__bench_usage("--connections takes 1..100000");
            o->connections = (unsigned)u;
        } else if (strcmp(name, "--duration") == 0) {
            if (!ctl__parse_double(val, 0.001, 86400, &d))
                return ctl__bench_usage("--duration takes seconds, e.g. 10 or 0.5");
            o->duration_s = d;
            have_duration = true;
        } else if (strcmp(name, "--requests") == 0) {
            if (!ctl__parse_u64(val, 1, UINT64_MAX / 2, &u))
                return ctl__bench_usage("--requests takes a positive integer");
            o->requests = u;
            have_requests = true;
        } else if (strcmp(name, "--keyspace") == 0) {
            if (!ctl__parse_u64(val, 1, 999999999999999ull, &u))
                return ctl__bench_usage("--keyspace takes 1..999999999999999");
            o->keyspace = u;
        } else if (strcmp(name, "--keys") == 0) {
            if (strcmp(val, "random") == 0)
                o->keys = LOADGEN_KEYS_RANDOM;
            else if (strcmp(val, "sequential") == 0)
                o->keys = LOADGEN_KEYS_SEQUENTIAL;
            else
                return ctl__bench_usage("--keys takes random or sequential");
        } else if (strcmp(name, "--value-size") == 0) {
            if (!ctl__parse_u64(val, 0, 64u << 20, &u))
                return ctl__bench_usage("--value-size takes 0..67108864 bytes");
            o->value_size = (size_t)u;
        } else if (strcmp(name, "--read-ratio") == 0) {
            if (!ctl__parse_double(val, 0, 1, &d))
                return ctl__bench_usage("--read-ratio takes a number from 0 to 1");
            o->read_ratio = d;
        } else if (strcmp(name, "--pipeline") == 0) {
            if (!ctl__parse_u64(val, 1, 100000, &u))
                return ctl__bench_usage("--pipeline takes 1..100000");
            o->pipeline = (unsigned)u;
        } else if (strcmp(name, "--rate") == 0) {
            if (!ctl__parse_double(val, 0.001, 1e9, &d))
                return ctl__bench_usage("--rate takes requests per second, > 0");
            o->rate = d;
        } else if (strcmp(name, "--seed") == 0) {
            if (!ctl__parse_u64(val, 0, UINT64_MAX / 2, &u))
                return ctl__bench_usage("--seed takes a non-negative integer");
            o->seed = u;
        } else if (strcmp(name, "--timeout") == 0) {
            if (!ctl__parse_double(val, 0.001, 86400, &d))
                return ctl__bench_usage("--timeout takes seconds, e.g. 5 or 0.5");
            o->timeout_s = d;
        } else {
            return ctl__bench_usage("unknown option '%s'", name);
        }
    }
    if (have_requests && !have_duration) o->duration_s = 0;

    if (!target && o->protocol == LOADGEN_HTTP) {
        if (!endpoints) endpoints = getenv("CAIRN_ENDPOINTS");
        if (endpoints && *endpoints) {
            /* the first endpoint; failover makes no sense under load */
            static char first[300];
            size_t n = strcspn(endpoints, ",");
            if (n >= sizeof(first)) return ctl__bench_usage("--endpoints: URL too long");
            memcpy(first, endpoints, n);
            first[n] = '\0';
            if (strncmp(first, "https://", 8) == 0)
                return ctl__bench_usage("bench speaks plain HTTP only, not '%s'", first);
            target = first;
        }
    }
    if (!target) {
        switch (o->protocol) {
        case LOADGEN_HTTP:
            target = "127.0.0.1:8080";
            break;
        case LOADGEN_RESP:
            target = "127.0.0.1:6380";
            break;
        case LOADGEN_MEMCACHE:
            target = "127.0.0.1:11211";
            break;
        case LOADGEN_ETCD:
            target = "127.0.0.1:2379";
            break;
        }
    }
    if (!ctl__split_target(target, b))
        return ctl__bench_usage("bad target '%s' (want HOST:PORT)", target);
    o->host = b->host;
    o->port = b->port;
    return CTL_EXIT_OK;
}

static double ctl__ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static void ctl__bench_progress(const loadgen_progress *p, void *ctx)
{
    const ctl_bench *b = ctx;
    fprintf(stderr, "%sbench: %6.1fs  %10.0f req/s  p99 %8.3f ms  answers %" PRIu64,
            b->tty ? "\r" : "", p->elapsed_s, p->interval_rate, ctl__ms(p->interval_p99_ns),
            p->completed);
    if (p->shed) fprintf(stderr, "  shed %" PRIu64, p->shed);
    if (p->errors) fprintf(stderr, "  errors %" PRIu64, p->errors);
    if (b->opt.rate > 0) fprintf(stderr, "  backlog %" PRIu64, p->backlog);
    fputs(b->tty ? "\033[K" : "\n", stderr);
    fflush(stderr);
}

static const double ctl__bench_pcts[] = {50, 90, 99, 99.9, 99.99};
static const char *const ctl__bench_pct_names[] = {"p50", "p90", "p99", "p999", "p9999"};
#define CTL_BENCH_NPCT (sizeof(ctl__bench_pcts) / sizeof(ctl__bench_pcts[0]))

static void ctl__bench_print_json(const ctl_bench *b, const loadgen_result *r)
{
    const loadgen_options *o = &b->opt;
    const hdr_histogram *h = &r->latency;
    printf("{\"protocol\":\"%s\",\"target\":\"%s:%s\",\"connections\":%u,\"pipeline\":%u,"
           "\"rate\":%.3f,\"keyspace\":%" PRIu64 ",\"value_size\":%zu,\"read_ratio\":%.4f,"
           "\"elapsed_s\":%.6f,\"sent\":%" PRIu64 ",\"answered\":%" PRIu64
           ",\"throughput\":%.3f,\"ok\":%" PRIu64 ",\"misses\":%" PRIu64 ",\"shed\":%" PRIu64
           ",\"errors\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"reconnects\":%" PRIu64
           ",\"reads\":%" PRIu64 ",\"writes\":%" PRIu64
           ",\"latency_ms\":{\"min\":%.4f,\"mean\":%.4f",
           loadgen_protocol_name(o->protocol), b->host, b->port, o->connections, o->pipeline,
           o->rate, o->keyspace, o->value_size, o->read_ratio, r->elapsed_s, r->sent,
           r->ok + r->misses + r->shed + r->errors, loadgen_result_throughput(r), r->ok, r->misses,
           r->shed, r->errors, r->conn_errors, r->reconnects, r->reads, r->writes,
           h->total ? ctl__ms(h->min) : 0.0, hdr_mean(h) / 1e6);
    for (size_t i = 0; i < CTL_BENCH_NPCT; i++)
        printf(",\"%s\":%.4f", ctl__bench_pct_names[i],
               ctl__ms(hdr_percentile(h, ctl__bench_pcts[i])));
    printf(",\"max\":%.4f}}\n", ctl__ms(h->max));
}

static void ctl__bench_print_text(const ctl_bench *b, const loadgen_result *r)
{
    const loadgen_options *o = &b->opt;
    const hdr_histogram *h = &r->latency;
    printf("target      %s %s:%s, %u connections, pipeline %u, ",
           loadgen_protocol_name(o->protocol), b->host, b->port, o->connections, o->pipeline);
    if (o->rate > 0)
        printf("open loop at %.0f req/s\n", o->rate);
    else
        printf("closed loop\n");
    printf("answers     %" PRIu64 " in %.2f s: %.0f req/s (%" PRIu64 " reads, %" PRIu64
           " writes)\n",
           r->ok + r->misses + r->shed + r->errors, r->elapsed_s, loadgen_result_throughput(r),
           r->reads, r->writes);
    printf("outcomes    ok %" PRIu64 ", miss %" PRIu64 ", shed %" PRIu64 ", error %" PRIu64
           ", lost %" PRIu64 "\n",
           r->ok, r->misses, r->shed, r->errors, r->conn_errors);
    printf("latency ms  min %.3f  mean %.3f", h->total ? ctl__ms(h->min) : 0.0, hdr_mean(h) / 1e6);
    for (size_t i = 0; i < CTL_BENCH_NPCT; i++)
        printf("  p%g %.3f", ctl__bench_pcts[i], ctl__ms(hdr_percentile(h, ctl__bench_pcts[i])));
    printf("  max %.3f\n", ctl__ms(h->max));
}

static int ctl__bench_main(int argc, char **argv)
{
    ctl_bench b;
    memset(&b, 0, sizeof(b));
    loadgen_options_default(&b.opt);
    bool help;
    int rc = ctl__bench_parse(&b, argc, argv, &help);
    if (rc != CTL_EXIT_OK) return rc;
    if (help) {
        fputs(ctl__bench_usage_text, stdout);
        return CTL_EXIT_OK;
    }
    b.tty = isatty(STDERR_FILENO);
    if (!b.quiet) {
        b.opt.progress = ctl__bench_progress;
        b.opt.progress_ctx = &b;
    }
    loadgen_result r;
    char err[256];
    rc = loadgen_run(&b.opt, &r, err, sizeof(err));
    if (!b.quiet && b.tty) fputc('\n', stderr);
    if (rc < 0) {
        fprintf(stderr, "cairnctl: bench: %s\n", err);
        return CTL_EXIT_FAIL;
    }
    if (b.json)
        ctl__bench_print_json(&b, &r);
    else
        ctl__bench_print_text(&b, &r);
    bool served = r.ok + r.misses > 0;
    loadgen_result_close(&r);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "cairnctl: bench: cannot write output: %s\n", strerror(errno));
        return CTL_EXIT_FAIL;
    }
    if (!served) {
        fprintf(stderr, "cairnctl: bench: no request was served\n");
        return CTL_EXIT_FAIL;
    }
    return CTL_EXIT_OK;
}

/* Whether the command is bench: the first word that is neither an option
 * nor the value of a global option. */
static bool ctl__is_bench(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0) return i + 1 < argc && strcmp(argv[i + 1], "bench") == 0;
        if (strcmp(arg, "--endpoints") == 0 || strcmp(arg, "--timeout") == 0) {
            i++;
            continue;
        }
        if (arg[0] == '-' && arg[1]) continue;
        return strcmp(arg, "bench") == 0;
    }
    return false;
}

/* ---- command table and argument parsing ----------------------------------- */

/* Which command-specific options a command accepts. */
enum {
    CTL_OPT_TTL = 1,
    CTL_OPT_LIMIT = 2,
    CTL_OPT_VALUES = 4,
    CTL_OPT_HTTP = 8,
    CTL_OPT_ITERATIONS = 16
};

typedef struct ctl_command {
    const char *name; /* "member add": two words are a subcommand */
    const char *usage;
    int opts;
    bool needs_client;
    int (*run)(ctl *x);
} ctl_command;

static const ctl_command ctl__commands[] = {
    {"put", "put KEY VALUE [--ttl S]", CTL_OPT_TTL, true, ctl__cmd_put},
    {"get", "get KEY", 0, true, ctl__cmd_get},
    {"del", "del KEY", 0, true, ctl__cmd_del},
    {"list", "list [PREFIX] [--limit N] [--values]", CTL_OPT_LIMIT | CTL_OPT_VALUES, true,
     ctl__cmd_list},
    {"status", "status", 0, true, ctl__cmd_status},
    {"member list", "member list", 0, true, ctl__member_list},
    {"member add", "member add ID PEER_ADDR [--http URL]", CTL_OPT_HTTP, true, ctl__member_add},
    {"member remove", "member remove ID", 0, true, ctl__member_remove},
    {"leader transfer", "leader transfer ID", 0, true, ctl__leader_transfer},
    {"hash-password", "hash-password PASSWORD|- [--iterations N]", CTL_OPT_ITERATIONS, false,
     ctl__hash_password},
};

typedef struct ctl_option {
    const char *name;
    int flag; /* CTL_OPT_*, or 0 for the global ones */
    bool takes_value;
} ctl_option;

static const ctl_option ctl__options[] = {
    {"--endpoints", 0, true},
    {"--timeout", 0, true},
    {"--ttl", CTL_OPT_TTL, true},
    {"--limit", CTL_OPT_LIMIT, true},
    {"--values", CTL_OPT_VALUES, false},
    {"--http", CTL_OPT_HTTP, true},
    {"--user", 0, true},
    {"--password", 0, true},
    {"--iterations", CTL_OPT_ITERATIONS, true},
    {"--help", 0, false},
};

static const char **ctl__option_slot(ctl_args *a, const char *name)
{
    if (strcmp(name, "--endpoints") == 0) return &a->endpoints;
    if (strcmp(name, "--timeout") == 0) return &a->timeout;
    if (strcmp(name, "--ttl") == 0) return &a->ttl;
    if (strcmp(name, "--limit") == 0) return &a->limit;
    if (strcmp(name, "--http") == 0) return &a->http_url;
    if (strcmp(name, "--user") == 0) return &a->user;
    if (strcmp(name, "--password") == 0) return &a->password;
    if (strcmp(name, "--iterations") == 0) return &a->iterations;
    return NULL;
}

/* Options may appear anywhere, before or after the command; "--" ends
 * them. *used_opts collects the command-specific ones for checking once the
 * command is known. */
static int ctl__parse_args(ctl *x, int argc, char **argv, int *used_opts)
{
    ctl_args *a = &x->args;
    bool options_done = false;
    *used_opts = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (options_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (a->n_pos == CTL_MAX_POSITIONAL) return ctl__usage(x, "too many arguments");
            a->pos[a->n_pos++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (strcmp(arg, "-h") == 0) {
            a->help = true;
            continue;
        }
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const ctl_option *opt = NULL;
        for (size_t k = 0; k < sizeof(ctl__options) / sizeof(ctl__options[0]); k++)
            if (strlen(ctl__options[k].name) == name_len &&
                strncmp(ctl__options[k].name, arg, name_len) == 0)
                opt = &ctl__options[k];
        if (!opt) return ctl__usage(x, "unknown option '%s'", arg);
        if (!opt->takes_value) {
            if (eq) return ctl__usage(x, "%s takes no value", opt->name);
            if (strcmp(opt->name, "--help") == 0) a->help = true;
            if (strcmp(opt->name, "--values") == 0) a->values = true;
        } else {
            const char *val = eq ? eq + 1 : NULL;
            if (!val) {
                if (i + 1 >= argc) return ctl__usage(x, "%s needs a value", opt->name);
                val = argv[++i];
            }
            *ctl__option_slot(a, opt->name) = val;
        }
        *used_opts |= opt->flag;
    }
    return CTL_EXIT_OK;
}

/* Find the command named by the first one or two positionals and drop
 * those from the positionals. */
static const ctl_command *ctl__find_command(ctl *x)
{
    ctl_args *a = &x->args;
    for (size_t k = 0; k < sizeof(ctl__commands) / sizeof(ctl__commands[0]); k++) {
        const ctl_command *c = &ctl__commands[k];
        const char *space = strchr(c->name, ' ');
        size_t words;
        if (!space) {
            if (strcmp(a->pos[0], c->name) != 0) continue;
            words = 1;
        } else {
            size_t n = (size_t)(space - c->name);
            if (strlen(a->pos[0]) != n || strncmp(a->pos[0], c->name, n) != 0) continue;
            if (a->n_pos < 2 || strcmp(a->pos[1], space + 1) != 0) continue;
            words = 2;
        }
        memmove(a->pos, a->pos + words, (a->n_pos - words) * sizeof(a->pos[0]));
        a->n_pos -= words;
        return c;
    }
    return NULL;
}

static int ctl__setup_client(ctl *x)
{
    /* Problems here concern the global options, not the command. */
    ctl global = {.cmd = NULL, .usage = NULL};
    http_client_options_default(&x->opt);
    if (x->args.timeout) {
        char *end;
        errno = 0;
        double s = strtod(x->args.timeout, &end);
        if (errno || end == x->args.timeout || *end || !isfinite(s) || s <= 0 || s > 86400)
            return ctl__usage(&global, "--timeout takes seconds, e.g. 5 or 0.5");
        /* Round up (without libm's ceil) so that 0.0001 is not 0 ms. */
        double ms = s * 1000;
        x->opt.timeout_ms = (int)ms < ms ? (int)ms + 1 : (int)ms;
    }
    const char *endpoints = x->args.endpoints;
    if (!endpoints) endpoints = getenv("CAIRN_ENDPOINTS");
    if (!endpoints || !*endpoints) endpoints = CTL_DEFAULT_ENDPOINT;
    const char *user = x->args.user ? x->args.user : getenv("CAIRN_USER");
    const char *password = x->args.password ? x->args.password : getenv("CAIRN_PASSWORD");
    if (user && *user) {
        if (!password) return ctl__usage(&global, "--user needs --password or CAIRN_PASSWORD");
        char creds[1100];
        int n = snprintf(creds, sizeof(creds), "%s:%s", user, password);
        if (n < 0 || (size_t)n >= sizeof(creds) || strlen(user) > 64)
            return ctl__usage(&global, "--user or --password too long");
        buf value;
        buf_init(&value);
        http_basic_auth_value(&value, creds, (size_t)n);
        memset(creds, 0, sizeof(creds));
        if (value.len >= sizeof(x->auth_value)) {
            buf_close(&value);
            return ctl__usage(&global, "--user or --password too long");
        }
        memcpy(x->auth_value, value.data, value.len + 1);
        memset(value.data, 0, value.len);
        buf_close(&value);
        x->auth_header.name = "Authorization";
        x->auth_header.value = x->auth_value;
    }
    http_client_error err;
    if (http_client_init(&x->client, endpoints, &x->opt, &err) < 0)
        return ctl__usage(&global, "%s", err.msg);
    return CTL_EXIT_OK;
}

int main(int argc, char **argv)
{
    ctl x;
    memset(&x, 0, sizeof(x));
    if (ctl__is_bench(argc, argv)) return ctl__bench_main(argc, argv);
    int used_opts;
    int rc = ctl__parse_args(&x, argc, argv, &used_opts);
    if (rc != CTL_EXIT_OK) return rc;
    if (x.args.help || (x.args.n_pos == 1 && strcmp(x.args.pos[0], "help") == 0)) {
        fputs(ctl__usage_text, stdout);
        return CTL_EXIT_OK;
    }
    if (x.args.n_pos == 0) {
        fputs(ctl__usage_text, stderr);
        return CTL_EXIT_USAGE;
    }

    const char *first = x.args.pos[0];
    const ctl_command *cmd = ctl__find_command(&x);
    if (!cmd) {
        if (strcmp(first, "member") == 0 || strcmp(first, "leader") == 0) {
            x.cmd = first;
            x.usage = first[0] == 'm' ? "member list|add|remove ..." : "leader transfer ID";
            if (x.args.n_pos < 2) return ctl__usage(&x, "missing subcommand");
            return ctl__usage(&x, "unknown subcommand '%s'", x.args.pos[1]);
        }
        return ctl__usage(&x, "unknown command '%s'", first);
    }
    x.cmd = cmd->name;
    x.usage = cmd->usage;
    int stray = used_opts & ~cmd->opts;
    if (stray) {
        for (size_t k = 0; k < sizeof(ctl__options) / sizeof(ctl__options[0]); k++)
            if (ctl__options[k].flag & stray)
                return ctl__usage(&x, "option %s does not apply here", ctl__options[k].name);
    }
    if (cmd->needs_client) {
        rc = ctl__setup_client(&x);
        if (rc != CTL_EXIT_OK) return rc;
    }
    rc = cmd->run(&x);
    if (cmd->needs_client) http_client_close(&x.client);
    return rc;
}
