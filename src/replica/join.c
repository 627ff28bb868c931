#include "replica/join.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/log.h"
#include "net/tls.h"
#include "replica/forward.h"
#include "util/alloc.h"
#include "util/config.h"
#include "util/http_client.h"

#define JOIN_ATTEMPTS 60
#define JOIN_RETRY_MS 1000
#define JOIN_TIMEOUT_S 10

struct join {
    uv_loop_t *loop;
    forward *fwd;
    uv_timer_t timer;
    char addr[160];
    char body[320]; /* {"id":N,"peer":"<listen-peer, up to 255 bytes>"} */
    int attempts;
    bool done;
};

static void join__attempt(uv_timer_t *t);

static void join__done(void *ctx, int status, bool sent, int http_status, const char *body,
                       size_t len)
{
    join *j = ctx;
    (void)sent;
    if (status == FORWARD_OK && (http_status == 200 || http_status == 409)) {
        LOG_INFO("joined the cluster", LF_S("via", j->addr), LF_I("status", http_status));
        j->done = true;
        return;
    }
    LOG_WARN("join attempt failed", LF_S("via", j->addr), LF_I("status", http_status),
             LF_B("answer", body ? body : "", len), LF_I("attempt", j->attempts));
    if (j->attempts >= JOIN_ATTEMPTS) {
        LOG_ERROR("giving up joining the cluster", LF_S("via", j->addr));
        return;
    }
    uv_timer_start(&j->timer, join__attempt, JOIN_RETRY_MS, 0);
}

static void join__attempt(uv_timer_t *t)
{
    join *j = t->data;
    j->attempts++;
    if (!forward_post(j->fwd, 0, j->addr, "/v1/cluster/members", j->body, strlen(j->body), false,
                      JOIN_TIMEOUT_S, join__done, j))
        join__done(j, FORWARD_ERR_CONNECT, false, 0, NULL, 0);
}

/* tls: owned from here on (freed on every path). */
static join *join__start(uv_loop_t *loop, const char *url, uint64_t id, const char *peer_addr,
                         tls_ctx *tls)
{
    const char *p = url;
    if (strncmp(p, "http://", 7) == 0) {
        p += 7;
    } else if (strncmp(p, "https://", 8) == 0) {
        if (!tls) {
            LOG_ERROR("--join https:// needs --tls-cert and --tls-key on this node");
            return NULL;
        }
        p += 8;
    }
    /* http://user:password@host:port authenticates the request (a cluster
     * with --users-file needs an admin); never logged */
    const char *at = memchr(p, '@', strcspn(p, "/"));
    char auth[600] = "";
    if (at) {
        size_t cl = (size_t)(at - p);
        if (cl >= 200 || !memchr(p, ':', cl)) {
            LOG_ERROR("--join: credentials must be http[s]://user:password@host:port");
            tls_ctx_free(tls);
            return NULL;
        }
        buf value;
        buf_init(&value);
        http_basic_auth_value(&value, p, cl);
        snprintf(auth, sizeof(auth), "Authorization: %s\r\n", value.data);
        memset(value.data, 0, value.len);
        buf_close(&value);
        p = at + 1;
    }
    size_t n = strcspn(p, "/");
    if (n == 0 || n >= 160 || !memchr(p, ':', n)) {
        LOG_ERROR("--join needs http[s]://host:port of a member", LF_B("address", p, n));
        memset(auth, 0, sizeof(auth));
        tls_ctx_free(tls);
        return NULL;
    }
    join *j = xcalloc(1, sizeof(*j));
    j->loop = loop;
    j->fwd = forward_create(loop, tls);
    forward_set_headers(j->fwd, auth);
    memset(auth, 0, sizeof(auth));
    memcpy(j->addr, p, n);
    snprintf(j->body, sizeof(j->body), "{\"id\":%" PRIu64 ",\"peer\":\"%s\"}", id, peer_addr);
    uv_timer_init(loop, &j->timer);
    j->timer.data = j;
    uv_timer_start(&j->timer, join__attempt, 0, 0);
    return j;
}

join *join_start_config(uv_loop_t *loop, const cairn_config *cfg)
{
    tls_ctx *tls = NULL;
    if (cfg->tls_cert[0]) {
        /* a node that serves TLS expects its peers to: the request to the
         * member goes over TLS whether the URL says http:// or https:// */
        char err[1400];
        if (tls_ctx_create_client(&tls, cfg->tls_cert, cfg->tls_key, cfg->tls_client_ca, err,
                                  sizeof(err)) != 0) {
            LOG_ERROR("--join: cannot set up TLS", LF_S("error", err));
            return NULL;
        }
    }
    return join__start(loop, cfg->join, cfg->id, cfg->listen_peer, tls);
}

static void join__closed(uv_handle_t *h)
{
    free(h->data);
}

void join_stop(join *j)
{
    if (!j) return;
    uv_timer_stop(&j->timer);
    forward_close(j->fwd);
    uv_close((uv_handle_t *)&j->timer, join__closed);
}
