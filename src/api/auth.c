#include "api/auth.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs/log.h"
#include "obs/metrics.h"
#include "util/alloc.h"
#include "util/json_scan.h"
#include "util/json_write.h"

#define CACHE_SLOTS 4096 /* credentials found right, direct-mapped */
#define MAX_RUNNING 2    /* checks in the pool at once: leave it to libraft */
#define MAX_QUEUED 1024  /* checks waiting for a slot; more are refused */
#define TOKEN_PREFIX "c1."

typedef struct cache_slot {
    uint8_t digest[32];
    uint64_t gen;
    int32_t user; /* index in the table of generation gen */
} cache_slot;

struct auth_wait {
    uv_work_t work;
    auth *a;
    password_params params;
    char *pw;
    size_t pw_len;
    uint8_t digest[32];
    int32_t user; /* -1: unknown user, checked against a decoy for equal time */
    uint64_t gen;
    bool ok;
    auth_done_fn done; /* NULL once cancelled */
    void *ctx;
    auth_wait *next;
};

struct auth {
    uv_loop_t *loop;
    char *path;
    users_table users;
    uint64_t gen;
    uint8_t cache_key[32]; /* keys the credential digests */
    uint8_t token_key[32];
    cache_slot *cache;
    auth_wait *queue_head, *queue_tail;
    size_t queued, running;
    metrics_counter *m_ok, *m_bad, *m_cached, *m_busy;
};

static void auth__reset_cache(auth *a)
{
    memset(a->cache, 0, CACHE_SLOTS * sizeof(*a->cache));
}

auth *auth_create(uv_loop_t *loop, const char *path, char *err, size_t errlen)
{
    users_table t;
    if (users_load_file(path, &t, err, errlen) != 0) return NULL;
    auth *a = xcalloc(1, sizeof(*a));
    a->loop = loop;
    a->path = xstrdup(path);
    a->users = t;
    a->gen = 1;
    a->cache = xcalloc(CACHE_SLOTS, sizeof(*a->cache));
    if (RAND_bytes(a->cache_key, sizeof(a->cache_key)) != 1 ||
        RAND_bytes(a->token_key, sizeof(a->token_key)) != 1) {
        snprintf(err, errlen, "no randomness for the authentication keys");
        auth_destroy(a);
        return NULL;
    }
    const char *name = "cairn_auth_checks_total", *help = "password checks by result";
    a->m_ok = metrics_counter_get(name, help, "result=\"ok\"");
    a->m_bad = metrics_counter_get(name, help, "result=\"bad\"");
    a->m_cached = metrics_counter_get(name, help, "result=\"cached\"");
    a->m_busy = metrics_counter_get(name, help, "result=\"busy\"");
    return a;
}

static void auth__free_wait(auth_wait *w)
{
    if (w->pw) OPENSSL_cleanse(w->pw, w->pw_len);
    free(w->pw);
    OPENSSL_cleanse(&w->params, sizeof(w->params));
    free(w);
}

void auth_destroy(auth *a)
{
    if (!a) return;
    /* the loop has stopped: only checks that never started remain */
    while (a->queue_head) {
        auth_wait *w = a->queue_head;
        a->queue_head = w->next;
        auth__free_wait(w);
    }
    users_free(&a->users);
    OPENSSL_cleanse(a->cache_key, sizeof(a->cache_key));
    OPENSSL_cleanse(a->token_key, sizeof(a->token_key));
    free(a->cache);
    free(a->path);
    free(a);
}

int auth_reload(auth *a, char *err, size_t errlen)
{
    users_table t;
    if (users_load_file(a->path, &t, err, errlen) != 0) return -1;
    users_free(&a->users);
    a->users = t;
    a->gen++;
    auth__reset_cache(a);
    return 0;
}

uint64_t auth_generation(const auth *a)
{
    return a->gen;
}

const users_user *auth_find(const auth *a, const char *name, size_t len)
{
    return users_find(&a->users, name, len);
}

size_t auth_user_count(const auth *a)
{
    return a->users.n;
}

/* ---- password checks ---------------------------------------------------------- */

#define MAX_PASSWORD 1024 /* longer ones are simply wrong */

static void auth__digest(const auth *a, const char *user, size_t ulen, const char *pw, size_t plen,
                         uint8_t out[32])
{
    uint8_t msg[2 + USERS_NAME_MAX + MAX_PASSWORD];
    msg[0] = (uint8_t)ulen;
    msg[1] = (uint8_t)(ulen >> 8);
    memcpy(msg + 2, user, ulen);
    memcpy(msg + 2 + ulen, pw, plen);
    unsigned int outlen = 32;
    HMAC(EVP_sha256(), a->cache_key, sizeof(a->cache_key), msg, 2 + ulen + plen, out, &outlen);
    OPENSSL_cleanse(msg, 2 + ulen + plen);
}

static cache_slot *auth__slot(auth *a, const uint8_t digest[32])
{
    uint32_t h;
    memcpy(&h, digest, sizeof(h));
    return &a->cache[h % CACHE_SLOTS];
}

static void auth__run(uv_work_t *work)
{
    auth_wait *w = work->data;
    w->ok = password_verify(&w->params, w->pw, w->pw_len) && w->user >= 0;
    /* libuv's pool threads never exit through OpenSSL: free its
     * thread-local state now rather than leave it for the process exit */
    OPENSSL_thread_stop();
}

static void auth__start_next(auth *a);

static void auth__after(uv_work_t *work, int status)
{
    auth_wait *w = work->data;
    auth *a = w->a;
    a->running--;
    bool ok = status == 0 && w->ok && w->gen == a->gen; /* a reload voids the answer */
    const users_user *u = ok ? &a->users.v[w->user] : NULL;
    if (ok) {
        cache_slot *s = auth__slot(a, w->digest);
        memcpy(s->digest, w->digest, sizeof(s->digest));
        s->gen = a->gen;
        s->user = w->user;
    }
    metrics_counter_add(ok ? a->m_ok : a->m_bad, 1);
    auth_done_fn done = w->done;
    void *ctx = w->ctx;
    auth__free_wait(w);
    auth__start_next(a);
    if (done) done(ctx, ok ? AUTH_OK : AUTH_BAD, u);
}

static void auth__start_next(auth *a)
{
    while (a->running < MAX_RUNNING && a->queue_head) {
        auth_wait *w = a->queue_head;
        a->queue_head = w->next;
        if (!a->queue_head) a->queue_tail = NULL;
        a->queued--;
        if (!w->done) { /* cancelled before it started */
            auth__free_wait(w);
            continue;
        }
        w->work.data = w;
        if (uv_queue_work(a->loop, &w->work, auth__run, auth__after) != 0) {
            auth_done_fn done = w->done;
            void *ctx = w->ctx;
            auth__free_wait(w);
            if (done) done(ctx, AUTH_BUSY, NULL);
            continue;
        }
        a->running++;
    }
}

int auth_check_password(auth *a, const char *user, size_t user_len, const char *pw, size_t pw_len,
                        const users_user **out, auth_done_fn done, void *ctx, auth_wait **wait)
{
    *out = NULL;
    *wait = NULL;
    if (user_len > USERS_NAME_MAX || pw_len > MAX_PASSWORD) return AUTH_BAD;
    uint8_t digest[32];
    auth__digest(a, user, user_len, pw, pw_len, digest);
    cache_slot *s = auth__slot(a, digest);
    if (s->gen == a->gen && CRYPTO_memcmp(s->digest, digest, sizeof(digest)) == 0) {
        metrics_counter_add(a->m_cached, 1);
        *out = &a->users.v[s->user];
        return AUTH_OK;
    }
    const users_user *u = users_find(&a->users, user, user_len);
    if (!u && a->users.n == 0) return AUTH_BAD;
    if (a->queued >= MAX_QUEUED) {
        metrics_counter_add(a->m_busy, 1);
        return AUTH_BUSY;
    }
    auth_wait *w = xcalloc(1, sizeof(*w));
    w->a = a;
    /* an unknown user costs as much as a known one: no timing tells
     * which names exist */
    w->params = u ? u->pw : a->users.v[0].pw;
    w->user = u ? (int32_t)users_index(&a->users, u) : -1;
    w->pw = xmalloc(pw_len + 1);
    memcpy(w->pw, pw, pw_len);
    w->pw_len = pw_len;
    memcpy(w->digest, digest, sizeof(digest));
    w->gen = a->gen;
    w->done = done;
    w->ctx = ctx;
    if (a->queue_tail)
        a->queue_tail->next = w;
    else
        a->queue_head = w;
    a->queue_tail = w;
    a->queued++;
    *wait = w;
    auth__start_next(a);
    return AUTH_PENDING;
}

void auth_wait_cancel(auth_wait *w)
{
    if (w) w->done = NULL;
}

/* ---- bearer tokens -------------------------------------------------------------- */

/* c1.<base64url name>.<expiry, unix seconds>.<base64url HMAC> */
static void auth__token_mac(const auth *a, const users_user *u, uint64_t expiry, uint8_t out[32])
{
    char msg[USERS_NAME_MAX + 64];
    int n = snprintf(msg, sizeof(msg), "%s\n%" PRIu64 "\n%016" PRIx64, u->name, expiry, u->stamp);
    unsigned int outlen = 32;
    HMAC(EVP_sha256(), a->token_key, sizeof(a->token_key), (const uint8_t *)msg, (size_t)n, out,
         &outlen);
}

void auth_token_issue(auth *a, const users_user *u, uint32_t ttl_s, int64_t now_wall_ms, buf *out)
{
    uint64_t expiry = (uint64_t)(now_wall_ms / 1000) + ttl_s;
    uint8_t mac[32];
    auth__token_mac(a, u, expiry, mac);
    buf_append_str(out, TOKEN_PREFIX);
    base64url_encode(out, u->name, u->name_len);
    buf_printf(out, ".%" PRIu64 ".", expiry);
    base64url_encode(out, mac, sizeof(mac));
}

const users_user *auth_token_check(auth *a, const char *tok, size_t len, int64_t now_wall_ms)
{
    size_t plen = sizeof(TOKEN_PREFIX) - 1;
    if (len < plen || len > 256 || memcmp(tok, TOKEN_PREFIX, plen) != 0) return NULL;
    const char *p = tok + plen, *end = tok + len;
    const char *d1 = memchr(p, '.', (size_t)(end - p));
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(end - d1 - 1)) : NULL;
    if (!d2) return NULL;
    buf name, mac;
    buf_init(&name);
    buf_init(&mac);
    const users_user *found = NULL;
    uint64_t expiry = 0;
    const char *q = d1 + 1;
    for (; q < d2 && *q >= '0' && *q <= '9' && expiry < UINT64_MAX / 20; q++)
        expiry = expiry * 10 + (uint64_t)(*q - '0');
    if (q == d2 && d2 > d1 + 1 && json_scan_base64url_decode(p, (size_t)(d1 - p), &name) == 0 &&
        json_scan_base64url_decode(d2 + 1, (size_t)(end - d2 - 1), &mac) == 0 && mac.len == 32 &&
        expiry > (uint64_t)(now_wall_ms / 1000)) {
        const users_user *u = users_find(&a->users, name.data, name.len);
        uint8_t want[32];
        if (u) {
            auth__token_mac(a, u, expiry, want);
            if (CRYPTO_memcmp(want, mac.data, sizeof(want)) == 0) found = u;
        }
    }
    buf_close(&name);
    buf_close(&mac);
    return found;
}
