#include "api/http_api.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/auth.h"
#include "api/http_internal.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "util/alloc.h"
#include "util/clock.h"
#include "util/json_write.h"

#define MAX_HEAD_BYTES (16 * 1024)
#define MAX_SMALL_BODY (64 * 1024) /* bodies of non-key routes */

struct http_conn {
    net_conn *c;
    api *a;
    http_req *head, *tail;
    uint32_t pending;
    bool pending_read; /* a non-write is queued: later requests must wait */
    bool stalled;      /* parsing stopped until the queue drains */
    bool in_process;
    int busy_depth; /* drain/process frames on the stack */
    bool dead;      /* the connection closed under us: free on unwind */
    /* body of the request being received */
    bool sent_continue;
    bool chunk_active;
    http_chunked_decoder dec;
    size_t chunk_in; /* encoded bytes consumed after the head */
    buf body;
    /* a password check of the request at the head of the input */
    auth_wait *auth_wait;  /* running: parsing waits for it */
    bool auth_has_verdict; /* it finished: its verdict applies once */
    int auth_verdict;
    const users_user *auth_user;
};

static const char *route_names[ROUTE_COUNT_] = {"key",
                                                "keys",
                                                "healthz",
                                                "readyz",
                                                "metrics",
                                                "status",
                                                "cluster",
                                                "cluster_members",
                                                "cluster_member",
                                                "cluster_leader",
                                                "internal_remove",
                                                "internal_propose",
                                                "internal_read_index",
                                                "auth_token",
                                                "other"};
static const int tracked_codes[] = {100, 200, 201, 304, 400, 401, 403, 404, 405, 408, 412,
                                    413, 414, 429, 431, 500, 501, 503, 504, 505, 507};
#define N_CODES (sizeof(tracked_codes) / sizeof(tracked_codes[0]))
static metrics_counter *m_requests[ROUTE_COUNT_][N_CODES + 1];
static metrics_histogram *m_latency[ROUTE_COUNT_];

void http_api_init(api *a)
{
    (void)a;
    for (int r = 0; r < ROUTE_COUNT_; r++) {
        char labels[96];
        snprintf(labels, sizeof(labels), "route=\"%s\"", route_names[r]);
        m_latency[r] = metrics_histogram_get("cairn_http_request_duration_seconds",
                                             "HTTP request latency by route", labels);
    }
}

static metrics_counter *http__counter(int route, int status)
{
    size_t i = 0;
    while (i < N_CODES && tracked_codes[i] != status) i++;
    if (!m_requests[route][i]) {
        char labels[96];
        if (i < N_CODES)
            snprintf(labels, sizeof(labels), "route=\"%s\",code=\"%d\"", route_names[route],
                     status);
        else
            snprintf(labels, sizeof(labels), "route=\"%s\",code=\"other\"", route_names[route]);
        m_requests[route][i] = metrics_counter_get(
            "cairn_http_requests_total", "HTTP requests by route and status code", labels);
    }
    return m_requests[route][i];
}

static const char *http__reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    case 507:
        return "Insufficient Storage";
    default:
        return "Unknown";
    }
}

void http_respond(http_req *req, int status, const char *content_type, const char *extra_headers,
                  const void *body, size_t body_len)
{
    buf *b = &req->resp;
    buf_reset(b);
    buf_printf(b, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n", status, http__reason(status),
               status == 304 ? 0 : body_len);
    if (content_type) buf_printf(b, "Content-Type: %s\r\n", content_type);
    buf_printf(b, "X-Request-Id: %s\r\n", req->request_id);
    if (req->close_after)
        buf_append_str(b, "Connection: close\r\n");
    else if (req->http10_keep_alive)
        buf_append_str(b, "Connection: keep-alive\r\n");
    if (req->rate_checked)
        buf_printf(b, "X-RateLimit-Limit: %" PRIu64 "\r\nX-RateLimit-Remaining: %" PRIu64 "\r\n",
                   req->a->cfg->rate_limit, req->rate_remaining);
    if (extra_headers) buf_append_str(b, extra_headers);
    buf_append(b, "\r\n", 2);
    if (!req->head_only && status != 304 && body_len) buf_append(b, body, body_len);

    metrics_counter_add(http__counter(req->route, status), 1);
    metrics_histogram_observe(m_latency[req->route],
                              (double)(clock_mono_ns() - req->start_ns) / 1e9);
    /* 503 and 504 are expected answers (shedding, no leader, bounded
     * waits) and are counted in metrics; a 500 is a bug worth a line */
    if (status == 500)
        LOG_WARN("request failed", LF_I("status", status), LF_S("request_id", req->request_id),
                 LF_S("route", route_names[req->route]));
    else
        LOG_DEBUG("request", LF_I("status", status), LF_S("request_id", req->request_id),
                  LF_S("route", route_names[req->route]));
    req->done = true;
}

void http_respond_error(http_req *req, int status, const char *message, const char *extra_headers)
{
    buf body;
    buf_init(&body);
    buf_append_str(&body, "{\"error\":");
    json_write_cstr(&body, message);
    buf_printf(&body, ",\"code\":%d}\n", status);
    http_respond(req, status, "application/json", extra_headers, body.data, body.len);
    buf_close(&body);
}

void http_respond_replica_error(http_req *req, int st)
{
    switch (st) {
    case REPLICA_ERR_BUSY:
        http_respond_error(req, 503, replica_status_text(st), "Retry-After: 1\r\n");
        break;
    case REPLICA_ERR_READ_TIMEOUT:
        http_respond_error(req, 504, replica_status_text(st), NULL);
        break;
    case REPLICA_ERR_INTERNAL:
        http_respond_error(req, 500, replica_status_text(st), NULL);
        break;
    default:
        http_respond_error(req, 503, replica_status_text(st), "Retry-After: 1\r\n");
        break;
    }
}

static void http__free_req(http_req *req)
{
    if (req->admin_waiting && !req->orphaned) {
        /* the admin callback still holds req: it frees it */
        req->orphaned = true;
        req->hc = NULL;
        req->next = NULL;
        return;
    }
    replica_req_close(&req->rreq);
    buf_close(&req->key);
    buf_close(&req->resp);
    buf_close(&req->cursor);
    free(req);
}

static void http__process(http_conn *hc);

static void http__free_conn(http_conn *hc);

/* Write every finished response at the head of the queue, in order.
 * Writing may close the connection (a Connection: close answer, a write
 * error), which runs http__on_close: it only marks hc dead while a drain or
 * parse frame is on the stack, and the outermost frame frees it. */
static void http__drain(http_conn *hc)
{
    net_conn *c = hc->c;
    hc->busy_depth++;
    while (!hc->dead && hc->head && hc->head->done) {
        http_req *req = hc->head;
        hc->head = req->next;
        if (!hc->head) hc->tail = NULL;
        hc->pending--;
        c->busy--;
        bool close = req->close_after;
        net_conn_write(c, buf_unread(&req->resp), buf_unread_len(&req->resp));
        http__free_req(req);
        if (close && !hc->dead) {
            /* nothing after a closing response may be answered */
            net_conn_close_after_write(c);
            break;
        }
    }
    if (!hc->dead && !hc->head) hc->pending_read = false;
    if (!hc->dead && !hc->in_process) {
        net_conn_flush(c);
        if (!hc->dead && !hc->head && hc->stalled && !c->closing) {
            hc->stalled = false;
            http__process(hc);
            if (!hc->dead) net_conn_flush(c);
        }
    }
    if (--hc->busy_depth == 0 && hc->dead) http__free_conn(hc);
}

void http_req_complete(http_req *req)
{
    http__drain(req->hc);
}

bool http_req_admin_return(http_req *req)
{
    req->admin_waiting = false;
    if (!req->orphaned) return false;
    http__free_req(req);
    return true;
}

static http_req *http__new_req(http_conn *hc)
{
    http_req *req = xcalloc(1, sizeof(*req));
    req->hc = hc;
    req->a = hc->a;
    req->start_ns = clock_mono_ns();
    req->route = ROUTE_OTHER;
    req->peer_ip = hc->c->peer_ip;
    buf_init(&req->key);
    buf_init(&req->resp);
    buf_init(&req->cursor);
    replica_req_init(&req->rreq, req, NULL);
    if (hc->tail)
        hc->tail->next = req;
    else
        hc->head = req;
    hc->tail = req;
    hc->pending++;
    hc->c->busy++;
    return req;
}

static void http__set_request_id(http_req *req, const http_request *hr)
{
    const http_header *h = hr ? http_find_header(hr, "X-Request-Id") : NULL;
    if (h && h->value_len > 0 && h->value_len < sizeof(req->request_id)) {
        bool ok = true;
        for (size_t i = 0; i < h->value_len && ok; i++) {
            char ch = h->value[i];
            ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '-' || ch == '_' || ch == '.' || ch == ':';
        }
        if (ok) {
            memcpy(req->request_id, h->value, h->value_len);
            req->request_id[h->value_len] = '\0';
            return;
        }
    }
    snprintf(req->request_id, sizeof(req->request_id), "%" PRIx64 "-%" PRIx64, req->a->cfg->id,
             ++req->a->next_request);
}

/* A framing error: answer (after what is queued) and close. */
static void http__fail_connection(http_conn *hc, int status, const char *message)
{
    http_req *req = http__new_req(hc);
    http__set_request_id(req, NULL);
    req->close_after = true;
    http_respond_error(req, status, message, NULL);
    http__drain(hc);
}

/* An unauthenticated request with a body: answer and close unread. */
static void http__fail_connection_hr(http_conn *hc, const http_request *hr, int route, int verdict)
{
    http_req *req = http__new_req(hc);
    req->route = route;
    http__set_request_id(req, hr);
    req->close_after = true;
    if (http_auth_rate(req)) http_auth_respond_unauthenticated(req, verdict);
    http__drain(hc);
}

static int http__route(const char *path, size_t len)
{
#define IS(lit) (len == sizeof(lit) - 1 && memcmp(path, lit, len) == 0)
    if (len >= 8 && memcmp(path, "/v1/key/", 8) == 0) return ROUTE_KEY;
    if (IS("/v1/key")) return ROUTE_KEY; /* empty key: the handler says 400 */
    if (IS("/v1/keys")) return ROUTE_KEYS;
    if (IS("/healthz")) return ROUTE_HEALTHZ;
    if (IS("/readyz")) return ROUTE_READYZ;
    if (IS("/metrics")) return ROUTE_METRICS;
    if (IS("/v1/status")) return ROUTE_STATUS;
    if (IS("/v1/cluster")) return ROUTE_CLUSTER;
    if (IS("/v1/cluster/members")) return ROUTE_CLUSTER_MEMBERS;
    if (len > 20 && memcmp(path, "/v1/cluster/members/", 20) == 0) return ROUTE_CLUSTER_MEMBER;
    if (IS("/v1/cluster/leader")) return ROUTE_CLUSTER_LEADER;
    if (len > 20 && memcmp(path, "/internal/v1/remove/", 20) == 0) return ROUTE_INTERNAL_REMOVE;
    if (IS("/internal/v1/propose")) return ROUTE_INTERNAL_PROPOSE;
    if (IS("/internal/v1/read-index")) return ROUTE_INTERNAL_READ_INDEX;
    if (IS("/v1/auth/token")) return ROUTE_AUTH_TOKEN;
    return ROUTE_OTHER;
#undef IS
}

static bool http__is_write(const http_request *hr, int route)
{
    return (route == ROUTE_KEY && (hr->method == HTTP_PUT || hr->method == HTTP_DELETE)) ||
           route == ROUTE_INTERNAL_PROPOSE || route == ROUTE_CLUSTER_LEADER ||
           route == ROUTE_INTERNAL_REMOVE ||
           ((route == ROUTE_CLUSTER_MEMBERS || route == ROUTE_CLUSTER_MEMBER) &&
            hr->method != HTTP_GET);
}

/* Dispatch one complete request. The head and body are valid only during
 * this call; handlers copy what they keep. */
static void http__dispatch(http_conn *hc, const http_request *hr, const char *body, size_t body_len,
                           int verdict, const users_user *user)
{
    http_req *req = http__new_req(hc);
    const char *q = memchr(hr->target, '?', hr->target_len);
    size_t path_len = q ? (size_t)(q - hr->target) : hr->target_len;
    const char *query = q ? q + 1 : "";
    size_t query_len = q ? hr->target_len - path_len - 1 : 0;
    req->route = http__route(hr->target, path_len);
    req->method = hr->method;
    req->head_only = hr->method == HTTP_HEAD;
    req->close_after = !hr->keep_alive;
    req->http10_keep_alive = hr->keep_alive && hr->version_minor == 0;
    req->forwarded = http_find_header(hr, "X-Cairn-Forwarded") != NULL;
    http__set_request_id(req, hr);
    if (http__is_write(hr, req->route) == false && req->route != ROUTE_OTHER)
        hc->pending_read = true;

    if (req->a->stopping && req->route != ROUTE_HEALTHZ && req->route != ROUTE_READYZ &&
        req->route != ROUTE_METRICS && req->route != ROUTE_INTERNAL_PROPOSE &&
        req->route != ROUTE_INTERNAL_READ_INDEX) {
        /* draining: finish what is in flight, take nothing new */
        req->close_after = true;
        http_respond_error(req, 503, "node is shutting down", "Retry-After: 1\r\n");
        return;
    }
    req->user = user;
    if (verdict == HTTP_AUTH_PEER) { /* checked by http_auth_authorize_route */
        req->peer_trusted = true;
        verdict = AUTH_OK;
    }
    if (!http_auth_rate(req)) return; /* before 401: guessing passwords costs tokens too */
    if (verdict != AUTH_OK) {
        http_auth_respond_unauthenticated(req, verdict);
        return;
    }
    if (!http_auth_authorize_route(req)) return;
    switch (req->route) {
    case ROUTE_KEY:
        http_keys_handle_key(req, hr, query, query_len, body, body_len);
        break;
    case ROUTE_KEYS:
        if (hr->method != HTTP_GET && hr->method != HTTP_HEAD)
            http_respond_error(req, 405, "method not allowed", "Allow: GET, HEAD\r\n");
        else
            http_keys_handle_list(req, hr, query, query_len);
        break;
    case ROUTE_OTHER:
        http_respond_error(req, 404, "no such route", NULL);
        break;
    case ROUTE_INTERNAL_PROPOSE:
    case ROUTE_INTERNAL_READ_INDEX:
        if (hr->method != HTTP_POST)
            http_respond_error(req, 405, "method not allowed", "Allow: POST\r\n");
        else if (req->route == ROUTE_INTERNAL_PROPOSE)
            http_cluster_internal_propose(req, body, body_len);
        else
            http_cluster_internal_read_index(req);
        break;
    case ROUTE_CLUSTER_MEMBERS:
        if (hr->method == HTTP_POST)
            http_cluster_member_add(req, body, body_len);
        else if (hr->method == HTTP_GET || hr->method == HTTP_HEAD)
            http_cluster_list(req);
        else
            http_respond_error(req, 405, "method not allowed", "Allow: GET, HEAD, POST\r\n");
        break;
    case ROUTE_CLUSTER_MEMBER:
    case ROUTE_INTERNAL_REMOVE:
        if (hr->method != (req->route == ROUTE_CLUSTER_MEMBER ? HTTP_DELETE : HTTP_POST))
            http_respond_error(req, 405, "method not allowed",
                               req->route == ROUTE_CLUSTER_MEMBER ? "Allow: DELETE\r\n"
                                                                  : "Allow: POST\r\n");
        else
            http_cluster_member_remove(req, hr->target + 20, path_len - 20);
        break;
    case ROUTE_CLUSTER_LEADER:
        if (hr->method != HTTP_POST)
            http_respond_error(req, 405, "method not allowed", "Allow: POST\r\n");
        else
            http_cluster_transfer(req, body, body_len);
        break;
    case ROUTE_AUTH_TOKEN:
        if (hr->method != HTTP_POST)
            http_respond_error(req, 405, "method not allowed", "Allow: POST\r\n");
        else
            http_auth_token(req, query, query_len);
        break;
    case ROUTE_CLUSTER:
        if (hr->method != HTTP_GET && hr->method != HTTP_HEAD)
            http_respond_error(req, 405, "method not allowed", "Allow: GET, HEAD\r\n");
        else
            http_cluster_list(req);
        break;
    default:
        if (hr->method != HTTP_GET && hr->method != HTTP_HEAD)
            http_respond_error(req, 405, "method not allowed", "Allow: GET, HEAD\r\n");
        else
            http_ops_handle(req);
        break;
    }
    /* the handler may have completed synchronously (or not yet): req may
     * be gone. req->user was valid only during the handler's synchronous
     * part (a reload frees users); nothing reads it later. */
}

static int http__status_of(int err)
{
    return -err; /* HTTP_ERR_* are negated status codes */
}

static void http__reset_body(http_conn *hc)
{
    hc->sent_continue = false;
    hc->chunk_active = false;
    hc->chunk_in = 0;
    buf_reset(&hc->body);
}

static void http__auth_done(void *ctx, int verdict, const users_user *user)
{
    http_conn *hc = ctx;
    hc->auth_wait = NULL;
    hc->auth_has_verdict = true;
    hc->auth_verdict = verdict;
    hc->auth_user = user;
    hc->busy_depth++;       /* resuming may close the connection */
    net_conn_resume(hc->c); /* parses the waiting request again, via on_data */
    if (!hc->dead && hc->auth_has_verdict) {
        http__process(hc);
        if (!hc->dead) net_conn_flush(hc->c);
    }
    if (--hc->busy_depth == 0 && hc->dead) http__free_conn(hc);
}

/* Who sent the request at the head of the input. False when a password
 * check has started: parsing stops until it ends (the request stays in
 * the input and is parsed again then). */
static bool http__identify(http_conn *hc, const http_request *hr, int route, int *verdict,
                           const users_user **user)
{
    if (hc->auth_has_verdict) {
        hc->auth_has_verdict = false;
        *verdict = hc->auth_verdict;
        *user = hc->auth_user;
        return true;
    }
    auth_wait *w = NULL;
    *verdict = http_auth_identify(hc->a, hr, route, user, http__auth_done, hc, &w);
    if (*verdict != AUTH_PENDING) return true;
    hc->auth_wait = w;
    net_conn_pause(hc->c);
    return false;
}

static void http__process(http_conn *hc)
{
    net_conn *c = hc->c;
    api *a = hc->a;
    size_t max_target = 3 * a->cfg->max_key_bytes + 1024;
    if (hc->auth_wait) return; /* a password check decides what comes next */
    hc->in_process = true;
    hc->busy_depth++;
    while (!hc->dead && !c->closing && !c->close_after_write) {
        const char *data = buf_unread(&c->in);
        size_t len = buf_unread_len(&c->in);
        if (len == 0) break;
        http_request hr;
        int rv = http_parse_head(data, len, MAX_HEAD_BYTES, max_target, &hr);
        if (rv == 0) break;
        if (rv < 0) {
            http__fail_connection(hc, http__status_of(rv),
                                  rv == HTTP_ERR_HEADERS_TOO_LARGE ? "header section too large"
                                  : rv == HTTP_ERR_URI_TOO_LONG    ? "request target too long"
                                  : rv == HTTP_ERR_NOT_IMPLEMENTED
                                      ? "transfer encoding not supported"
                                  : rv == HTTP_ERR_VERSION ? "HTTP version not supported"
                                                           : "malformed request");
            break;
        }
        const char *q = memchr(hr.target, '?', hr.target_len);
        int route = http__route(hr.target, q ? (size_t)(q - hr.target) : hr.target_len);
        bool is_write = http__is_write(&hr, route);
        /* in-order semantics: a read waits for everything before it, and
         * nothing overtakes a queued read */
        if (hc->pending && (!is_write || hc->pending_read)) {
            hc->stalled = true;
            break;
        }
        int verdict = AUTH_OK;
        const users_user *user = NULL;
        if (a->auth && !http__identify(hc, &hr, route, &verdict, &user)) break;
        if (verdict != AUTH_OK && verdict != HTTP_AUTH_PEER &&
            (hr.chunked || hr.content_length > 0)) {
            /* the body of a client we do not know is not read */
            http__fail_connection_hr(hc, &hr, route, verdict);
            break;
        }
        size_t cap = route == ROUTE_KEY && hr.method == HTTP_PUT ? a->cfg->max_value_bytes
                     : route == ROUTE_INTERNAL_PROPOSE
                         ? 64u << 20 /* a forwarded command, e.g. a large MSET */
                         : MAX_SMALL_BODY;
        size_t head_len = (size_t)rv;
        const char *body = data + head_len;
        size_t body_len = 0, consumed;
        if (hr.chunked) {
            if (!hc->chunk_active) {
                http_chunked_init(&hc->dec);
                hc->chunk_active = true;
                hc->chunk_in = 0;
                buf_reset(&hc->body);
                buf_reserve(&hc->body, 4096);
            }
            if (hr.expect_continue && !hc->sent_continue) {
                net_conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
                hc->sent_continue = true;
            }
            size_t used = 0, out_len = hc->body.len;
            /* grow the output as needed, never past the cap */
            buf_reserve(&hc->body,
                        len - head_len - hc->chunk_in < cap ? len - head_len - hc->chunk_in : cap);
            size_t room = hc->body.cap - 1;
            int crv = http_chunked_feed(&hc->dec, data + head_len + hc->chunk_in,
                                        len - head_len - hc->chunk_in, &used, hc->body.data,
                                        room < cap ? room : cap, &out_len);
            hc->chunk_in += used;
            hc->body.len = out_len;
            if (crv == HTTP_ERR_TOO_LARGE && room < cap) {
                /* our buffer, not the cap, was too small: grow and retry */
                hc->chunk_in -= used;
                buf_reserve(&hc->body, hc->body.cap);
                continue;
            }
            if (crv < 0) {
                http__reset_body(hc);
                http__fail_connection(hc, crv == HTTP_ERR_TOO_LARGE ? 413 : 400,
                                      crv == HTTP_ERR_TOO_LARGE ? "value too large"
                                                                : "malformed chunked body");
                break;
            }
            if (crv == 0) break;
            body = hc->body.data;
            body_len = hc->body.len;
            consumed = head_len + hc->chunk_in;
        } else {
            uint64_t cl = hr.content_length > 0 ? (uint64_t)hr.content_length : 0;
            if (cl > cap) {
                http__fail_connection(
                    hc, 413, cap == MAX_SMALL_BODY ? "request body too large" : "value too large");
                break;
            }
            if (len - head_len < cl) {
                if (hr.expect_continue && !hc->sent_continue) {
                    net_conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
                    hc->sent_continue = true;
                }
                buf_reserve(&c->in, cl - (len - head_len)); /* one allocation for the body */
                break;
            }
            body_len = cl;
            consumed = head_len + cl;
        }
        http__dispatch(hc, &hr, body, body_len, verdict, user);
        if (hc->dead) break;
        buf_consume(&c->in, consumed);
        http__reset_body(hc);
        http__drain(hc);
    }
    hc->in_process = false;
    if (--hc->busy_depth == 0 && hc->dead) http__free_conn(hc);
}

static void http__on_open(net_conn *c)
{
    http_conn *hc = xcalloc(1, sizeof(*hc));
    hc->c = c;
    hc->a = c->proto_ctx;
    buf_init(&hc->body);
    c->proto_data = hc;
}

static void http__on_data(net_conn *c)
{
    http__process(c->proto_data);
}

static void http__free_conn(http_conn *hc)
{
    auth_wait_cancel(hc->auth_wait);
    while (hc->head) {
        http_req *req = hc->head;
        hc->head = req->next;
        http__free_req(req); /* cancels its replica request */
    }
    buf_close(&hc->body);
    free(hc);
}

static void http__on_close(net_conn *c)
{
    http_conn *hc = c->proto_data;
    if (!hc) return;
    c->proto_data = NULL;
    if (hc->busy_depth > 0) {
        hc->dead = true; /* the frame on the stack frees it */
        return;
    }
    http__free_conn(hc);
}

static void http__on_timeout(net_conn *c, int kind)
{
    http_conn *hc = c->proto_data;
    if (kind == NET_TIMEOUT_REQUEST && hc && !hc->pending) {
        http_req tmp;
        memset(&tmp, 0, sizeof(tmp));
        tmp.a = hc->a;
        tmp.route = ROUTE_OTHER;
        tmp.close_after = true;
        tmp.start_ns = clock_mono_ns();
        buf_init(&tmp.resp);
        http__set_request_id(&tmp, NULL);
        http_respond_error(&tmp, 408, "request not received in time", NULL);
        net_conn_write(c, buf_unread(&tmp.resp), buf_unread_len(&tmp.resp));
        buf_close(&tmp.resp);
    }
}

static void http__on_reject(net_conn *c)
{
    static const char body[] = "{\"error\":\"too many connections\",\"code\":503}\n";
    char msg[256];
    int n = snprintf(msg, sizeof(msg),
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\nRetry-After: 1\r\n\r\n%s",
                     sizeof(body) - 1, body);
    net_conn_write(c, msg, (size_t)n);
}

const net_proto http_api_proto = {
    .name = "http",
    .on_open = http__on_open,
    .on_data = http__on_data,
    .on_close = http__on_close,
    .on_timeout = http__on_timeout,
    .on_reject = http__on_reject,
};
