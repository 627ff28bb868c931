/* http_auth: who an HTTP client is and what it may do (--users-file), and
 * its rate limit (--rate-limit). docs/security.md has the contract. */
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "api/auth.h"
#include "api/http_internal.h"
#include "util/base64.h"
#include "util/clock.h"
#include "util/json_write.h"
#include "util/strconv.h"

#define CHALLENGE                                                                                  \
    "WWW-Authenticate: Basic realm=\"cairn\", charset=\"UTF-8\"\r\n"                               \
    "WWW-Authenticate: Bearer realm=\"cairn\"\r\n"

bool http_auth_route_is_open(int route)
{
    return route == ROUTE_HEALTHZ || route == ROUTE_READYZ;
}

static bool http__is_internal(int route)
{
    return route == ROUTE_INTERNAL_PROPOSE || route == ROUTE_INTERNAL_READ_INDEX ||
           route == ROUTE_INTERNAL_REMOVE;
}

static bool http__scheme_is(const http_header *h, const char *scheme, size_t n)
{
    if (h->value_len <= n || h->value[n] != ' ') return false;
    for (size_t i = 0; i < n; i++)
        if ((h->value[i] | 0x20) != scheme[i]) return false;
    return true;
}

int http_auth_identify(api *a, const http_request *hr, int route, const users_user **user,
                       auth_done_fn done, void *ctx, auth_wait **wait)
{
    *user = NULL;
    *wait = NULL;
    if (!a->auth || http_auth_route_is_open(route)) return AUTH_OK;
    /* internal routes, and admin requests a member relays for its client
     * (who it has authorised): trusted when they come from a member */
    bool relayable = route == ROUTE_CLUSTER_MEMBERS || route == ROUTE_CLUSTER_MEMBER ||
                     route == ROUTE_CLUSTER_LEADER;
    if (http__is_internal(route) || (relayable && http_find_header(hr, "X-Cairn-Forwarded")))
        return HTTP_AUTH_PEER;
    const http_header *h = http_find_header(hr, "Authorization");
    if (!h) return HTTP_AUTH_MISSING;
    if (http__scheme_is(h, "bearer", 6)) {
        const char *t = h->value + 7;
        size_t tl = h->value_len - 7;
        while (tl && *t == ' ') t++, tl--;
        *user = auth_token_check(a->auth, t, tl, clock_wall_ms());
        return *user ? AUTH_OK : AUTH_BAD;
    }
    if (!http__scheme_is(h, "basic", 5)) return HTTP_AUTH_MISSING;
    const char *b = h->value + 6;
    size_t bl = h->value_len - 6;
    while (bl && *b == ' ') b++, bl--;
    buf creds;
    buf_init(&creds);
    const char *colon = NULL;
    if (base64_decode(b, bl, BASE64_STD, &creds) == 0 && creds.len)
        colon = memchr(creds.data, ':', creds.len);
    /* too long for a name and a password: auth_check_password says BAD */
    int v = HTTP_AUTH_MISSING;
    if (colon) {
        size_t ulen = (size_t)(colon - creds.data);
        v = auth_check_password(a->auth, creds.data, ulen, colon + 1, creds.len - ulen - 1, user,
                                done, ctx, wait);
    }
    if (creds.data) OPENSSL_cleanse(creds.data, creds.cap);
    buf_close(&creds);
    return v;
}

void http_auth_respond_unauthenticated(http_req *req, int verdict)
{
    if (verdict == AUTH_BUSY)
        http_respond_error(req, 503, "too many password checks in progress", "Retry-After: 1\r\n");
    else
        http_respond_error(req, 401,
                           verdict == HTTP_AUTH_MISSING ? "authentication required"
                                                        : "invalid credentials",
                           CHALLENGE);
}

static void http__forbidden(http_req *req)
{
    http_respond_error(req, 403, "permission denied", NULL);
}

/* "host:port" or "[v6]:port" -> host, in out. */
static void http__host_of(const char *addr, char *out, size_t cap)
{
    out[0] = '\0';
    if (!addr || !*addr) return;
    const char *start = addr, *end = strrchr(addr, ':');
    if (*addr == '[') {
        start = addr + 1;
        end = strchr(start, ']');
    }
    if (!end) end = addr + strlen(addr);
    size_t n = (size_t)(end - start);
    if (n >= cap) n = cap - 1;
    memcpy(out, start, n);
    out[n] = '\0';
}

static bool http__is_loopback_ip(const char *h)
{
    return strncmp(h, "127.", 4) == 0 || strcmp(h, "::1") == 0;
}

/* Internal routes, with users configured, serve only the hosts of the
 * cluster's members (whose peer port is trusted anyway: docs/security.md). */
static bool http__from_member_host(http_req *req)
{
    const char *ip = req->peer_ip;
    char host[300];
    replica_member_info m[16];
    size_t n = replica_members(req->a->replica, m, 16);
    for (size_t i = 0; i < n; i++) {
        const char *addrs[2] = {m[i].peer, m[i].http};
        for (int k = 0; k < 2; k++) {
            http__host_of(addrs[k], host, sizeof(host));
            if (!host[0]) continue;
            if (strcmp(host, ip) == 0) return true;
            /* "localhost" may connect from any loopback address */
            if (strcmp(host, "localhost") == 0 && http__is_loopback_ip(ip)) return true;
        }
    }
    return false;
}

bool http_auth_authorize_route(http_req *req)
{
    if (!req->a->auth || http_auth_route_is_open(req->route)) return true;
    if (!req->peer_trusted && (req->route == ROUTE_KEY || req->route == ROUTE_KEYS ||
                               req->route == ROUTE_AUTH_TOKEN || req->route == ROUTE_OTHER))
        return true;
    bool ok = req->peer_trusted ? http__from_member_host(req) : req->user && req->user->admin;
    if (!ok) http__forbidden(req);
    return ok;
}

bool http_auth_may_access(http_req *req, const void *key, size_t len, bool write)
{
    if (!req->a->auth || req->peer_trusted) return true;
    if (req->user && users_may_access(req->user, key, len, write)) return true;
    http__forbidden(req);
    return false;
}

bool http_auth_rate(http_req *req)
{
    api *a = req->a;
    if (!a->rate || http_auth_route_is_open(req->route) || http__is_internal(req->route) ||
        req->peer_trusted)
        return true;
    ratelimit_verdict v = api_rate_take(a, req->user, req->peer_ip);
    req->rate_checked = true;
    req->rate_remaining = v.remaining;
    if (v.allowed) return true;
    metrics_counter_add(a->m_rate_limited_http, 1);
    char extra[64];
    snprintf(extra, sizeof(extra), "Retry-After: %" PRIu64 "\r\n", (v.retry_after_ms + 999) / 1000);
    http_respond_error(req, 429, "rate limit exceeded", extra);
    return false;
}

void http_auth_token(http_req *req, const char *query, size_t query_len)
{
    api *a = req->a;
    if (!a->auth) {
        http_respond_error(req, 404, "authentication is not enabled (--users-file)", NULL);
        return;
    }
    uint64_t ttl = 3600;
    buf v;
    buf_init(&v);
    if (http_query_get(query, query_len, "ttl", &v) &&
        (!strconv_parse_u64(v.data ? v.data : "", v.len, &ttl) || ttl == 0 ||
         ttl > AUTH_TOKEN_MAX_TTL)) {
        buf_close(&v);
        http_respond_error(req, 400, "ttl must be an integer from 1 to 86400 (seconds)", NULL);
        return;
    }
    buf_reset(&v);
    buf_append_str(&v, "{\"token\":\"");
    auth_token_issue(a->auth, req->user, (uint32_t)ttl, clock_wall_ms(), &v);
    buf_append_str(&v, "\",\"user\":");
    json_write_string(&v, req->user->name, req->user->name_len);
    buf_printf(&v, ",\"expires_in\":%" PRIu64 "}\n", ttl);
    http_respond(req, 200, "application/json", "Cache-Control: no-store\r\n", v.data, v.len);
    buf_close(&v);
}
