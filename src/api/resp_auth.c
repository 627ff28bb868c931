/* resp_auth: AUTH, NOAUTH, NOPERM and rate limits for the Redis protocol
 * (--users-file, --rate-limit). docs/security.md has the contract; the
 * error texts are Redis 7's. */
#include <stdio.h>
#include <string.h>

#include "api/auth.h"
#include "api/resp_internal.h"

static const char noauth[] = "NOAUTH Authentication required.";
static const char noauth_hello[] =
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
    "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
    "select the RESP protocol version at the same time";
static const char wrongpass[] = "WRONGPASS invalid username-password pair or user is disabled.";
static const char noperm_keys[] =
    "NOPERM this user has no permissions to access one of the keys used as arguments";

const users_user *resp_auth_user(resp_conn *rc)
{
    auth *au = rc->ra->a->auth;
    if (!au || !rc->user_name_len) return NULL;
    if (rc->user_gen != auth_generation(au)) {
        /* the file was reloaded: the same name, if it is still there */
        rc->user = auth_find(au, rc->user_name, rc->user_name_len);
        rc->user_gen = auth_generation(au);
        if (!rc->user) rc->user_name_len = 0;
    }
    return rc->user;
}

void resp_auth_forget(resp_conn *rc)
{
    rc->user = NULL;
    rc->user_name_len = 0;
}

static void resp__set_user(resp_conn *rc, const users_user *u)
{
    rc->user = u;
    rc->user_gen = auth_generation(rc->ra->a->auth);
    memcpy(rc->user_name, u->name, u->name_len);
    rc->user_name_len = u->name_len;
}

/* ---- AUTH and HELLO AUTH ------------------------------------------------------------ */

static void resp__auth_done(void *ctx, int verdict, const users_user *u)
{
    resp_req *req = ctx;
    req->rc->auth_wait = NULL;
    req->waiting = false;
    if (verdict == AUTH_OK) {
        resp__set_user(req->rc, u);
        req->on_ready(req);
    } else {
        resp_req_error(req, verdict == AUTH_BUSY ? "BUSY too many password checks, try again"
                                                 : wrongpass);
    }
    resp_req_finish_async(req);
}

void resp_req_authenticate(resp_req *req, const resp_arg *user, const resp_arg *pw, resp_proc ready)
{
    resp_conn *rc = req->rc;
    const users_user *u = NULL;
    auth_wait *w = NULL;
    req->on_ready = ready;
    int v = auth_check_password(rc->ra->a->auth, user->ptr, user->len, pw->ptr, pw->len, &u,
                                resp__auth_done, req, &w);
    if (v == AUTH_OK) {
        resp__set_user(rc, u);
        ready(req);
    } else if (v == AUTH_PENDING) {
        req->waiting = true; /* arguments are copied for ready */
        rc->auth_wait = w;
    } else {
        resp_req_error(req,
                       v == AUTH_BUSY ? "BUSY too many password checks, try again" : wrongpass);
    }
}

/* ---- admission of every command --------------------------------------------------- */

bool resp_auth_rate(resp_req *req)
{
    api *a = req->a;
    if (!a->rate) return true;
    resp_conn *rc = req->rc;
    ratelimit_verdict v = api_rate_take(a, resp_auth_user(rc), rc->c->peer_ip);
    if (v.allowed) return true;
    metrics_counter_add(a->m_rate_limited_resp, 1);
    resp_req_errorf(req, "ERR rate limit exceeded, retry in %llu seconds",
                    (unsigned long long)((v.retry_after_ms + 999) / 1000));
    return false;
}

static bool resp__has_auth_option(const resp_req *req)
{
    for (size_t i = 2; i < req->argc; i++)
        if (resp_format_arg_is(&req->argv[i], "auth")) return true;
    return false;
}

/* The part of a glob pattern before its first special character. */
static size_t resp__literal_prefix(const resp_arg *pattern)
{
    size_t n = 0;
    while (n < pattern->len && !strchr("*?[\\", pattern->ptr[n])) n++;
    return n;
}

static void resp__noperm_command(resp_req *req, const char *sub)
{
    char name[96];
    if (sub)
        snprintf(name, sizeof(name), "%s|%s", req->cmd->name, sub);
    else
        snprintf(name, sizeof(name), "%s", req->cmd->name);
    resp_req_errorf(req, "NOPERM this user has no permissions to run the '%s' command", name);
}

/* Commands for admins only; sets *sub to the lower-case subcommand shown
 * in the error. */
static bool resp__needs_admin(const resp_req *req, char *sub, size_t cap)
{
    const char *name = req->cmd->name;
    bool admin = (req->cmd->flags & RESP_CMD_ADMIN) || strcmp(name, "info") == 0;
    if (strcmp(name, "client") == 0 && req->argc >= 2)
        admin =
            resp_format_arg_is(&req->argv[1], "list") || resp_format_arg_is(&req->argv[1], "kill");
    sub[0] = '\0';
    /* INFO's and SHUTDOWN's arguments are options, not subcommands */
    if (admin && req->argc >= 2 && strcmp(name, "info") != 0 && strcmp(name, "shutdown") != 0) {
        size_t n = req->argv[1].len < cap - 1 ? req->argv[1].len : cap - 1;
        for (size_t i = 0; i < n; i++) {
            char c = req->argv[1].ptr[i];
            sub[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
        }
        sub[n] = '\0';
    }
    return admin;
}

/* Keys of the whole keyspace (KEYS, SCAN, DBSIZE, RANDOMKEY, FLUSH*):
 * the pattern's literal prefix must be granted, or every key. */
static bool resp__keyspace_allowed(const resp_req *req, const users_user *u)
{
    const char *name = req->cmd->name;
    bool write = req->cmd->flags & RESP_CMD_WRITE;
    if (strcmp(name, "keys") == 0)
        return users_may_list(u, req->argv[1].ptr, resp__literal_prefix(&req->argv[1]));
    if (strcmp(name, "scan") == 0) {
        for (size_t i = 2; i + 1 < req->argc; i += 2)
            if (resp_format_arg_is(&req->argv[i], "match"))
                return users_may_list(u, req->argv[i + 1].ptr,
                                      resp__literal_prefix(&req->argv[i + 1]));
    }
    return users_may_access(u, "", 0, write);
}

static bool resp__extra_key(resp_req *req, const resp_arg *key, bool write)
{
    uint64_t max = req->a->cfg->max_key_bytes;
    if (key->len > max) {
        resp_req_errorf(req, "ERR key too large (max %llu bytes)", (unsigned long long)max);
        return false;
    }
    const users_user *u = req->a->auth ? resp_auth_user(req->rc) : NULL;
    if (u && !users_may_access(u, key->ptr, key->len, write)) {
        resp_req_error(req, noperm_keys);
        return false;
    }
    return true;
}

bool resp_auth_extra_key(resp_req *req, const resp_arg *key)
{
    return resp__extra_key(req, key, true);
}

bool resp_auth_extra_read_key(resp_req *req, const resp_arg *key)
{
    return resp__extra_key(req, key, false);
}

bool resp_auth_reads_every_key(resp_req *req)
{
    const users_user *u = req->a->auth ? resp_auth_user(req->rc) : NULL;
    return !u || users_may_list(u, "", 0);
}

bool resp_auth_admit(resp_req *req)
{
    resp_conn *rc = req->rc;
    if (!req->a->auth) return true;
    const resp_cmd *cmd = req->cmd;
    const users_user *u = resp_auth_user(rc);
    if (!u) {
        if (!(cmd->flags & RESP_CMD_NO_AUTH)) {
            resp_req_error(req, noauth);
            return false;
        }
        if (strcmp(cmd->name, "hello") == 0 && !resp__has_auth_option(req)) {
            resp_req_error(req, noauth_hello);
            return false;
        }
        return true;
    }
    char sub[48];
    if (resp__needs_admin(req, sub, sizeof(sub))) {
        if (u->admin) return true;
        resp__noperm_command(req, sub[0] ? sub : NULL);
        return false;
    }
    bool ok = true;
    long first, last;
    if (resp_cmd_keys(cmd, req->argv, req->argc, &first, &last)) {
        bool write = cmd->flags & RESP_CMD_WRITE;
        for (long i = first; ok && i <= last; i += cmd->key_step)
            ok = users_may_access(u, req->argv[i].ptr, req->argv[i].len, write);
    } else if (cmd->flags & RESP_CMD_KEYSPACE) {
        ok = resp__keyspace_allowed(req, u);
    }
    if (!ok) resp_req_error(req, noperm_keys);
    return ok;
}
