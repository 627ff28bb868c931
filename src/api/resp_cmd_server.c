/* resp_cmd_server: connection and server commands (PING ECHO HELLO QUIT
 * RESET SELECT AUTH CLIENT COMMAND INFO TIME CONFIG SLOWLOG READONLY
 * READWRITE OBJECT).
 *
 * cairn presents itself as a standalone Redis 7.0 ("server" redis,
 * "version" 7.0.0 in HELLO and INFO, with cairn_version beside it) because
 * clients gate features on that version and cairn implements the 7.0
 * semantics of the commands it has. There are no users yet: AUTH behaves
 * as Redis does with no password configured (the default user accepts any
 * password, other users do not exist). */
#include <ctype.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "api/memory.h"
#include "api/resp_internal.h"
#include "kv/hash.h"
#include "kv/lazyfree.h"
#include "kv/set.h"
#include "kv/zset.h"
#include "obs/log.h"
#include "util/alloc.h"
#include "util/glob.h"
#include "util/strconv.h"

#define SERVER_REDIS_VERSION "7.0.0"
#define STR_(x) #x
#define STR(x) STR_(x)

static const char server__no_password[] =
    "ERR AUTH <password> called without any password configured for the default user. Are you "
    "sure your configuration is correct?";
static const char server__wrongpass[] =
    "WRONGPASS invalid username-password pair or user is disabled.";
static const char server__bad_name[] =
    "ERR Client names cannot contain spaces, newlines or special characters.";

static void server__unknown_subcommand(resp_req *req, const char *help_of)
{
    const resp_arg *a = &req->argv[1];
    resp_req_errorf(req, "ERR unknown subcommand '%.*s'. Try %s HELP.",
                    (int)(a->len > 128 ? 128 : a->len), a->ptr, help_of);
}

static void server__sub_arity(resp_req *req, const char *cmd, const char *sub)
{
    resp_req_errorf(req, "ERR wrong number of arguments for '%s|%s' command", cmd, sub);
}

static const char *server__role(resp_req *req)
{
    replica_status_info st;
    replica_get_status(req->a->replica, &st);
    return strcmp(st.role, "leader") == 0 || strcmp(st.role, "standalone") == 0 ? "master"
                                                                                : "replica";
}

/* ---- PING ECHO TIME SELECT READONLY READWRITE QUIT RESET ------------------------ */

static void server__ping(resp_req *req)
{
    if (req->argc > 2) {
        resp_req_error_arity(req);
        return;
    }
    if (req->proto == 2 && resp_pubsub_count(req->rc) > 0) {
        /* a subscribed RESP2 connection gets Redis' ["pong", message] */
        resp_write_array(&req->reply, 2);
        resp_write_bulk_str(&req->reply, "pong");
        if (req->argc == 2)
            resp_write_bulk(&req->reply, req->argv[1].ptr, req->argv[1].len);
        else
            resp_write_bulk(&req->reply, "", 0);
        return;
    }
    if (req->argc == 2)
        resp_write_bulk(&req->reply, req->argv[1].ptr, req->argv[1].len);
    else
        resp_write_simple(&req->reply, "PONG");
}

static void server__echo(resp_req *req)
{
    resp_write_bulk(&req->reply, req->argv[1].ptr, req->argv[1].len);
}

static void server__time(resp_req *req)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    char s[32], us[32];
    int n1 = snprintf(s, sizeof(s), "%lld", (long long)tv.tv_sec);
    int n2 = snprintf(us, sizeof(us), "%lld", (long long)tv.tv_usec);
    resp_write_array(&req->reply, 2);
    resp_write_bulk(&req->reply, s, (size_t)n1);
    resp_write_bulk(&req->reply, us, (size_t)n2);
}

static void server__select(resp_req *req)
{
    int64_t db;
    if (!resp_req_int_arg(req, &req->argv[1], &db)) return;
    if (db != 0) {
        resp_req_error(req, "ERR DB index is out of range");
        return;
    }
    resp_req_ok(req);
}

static void server__readonly(resp_req *req)
{
    req->rc->readonly = true;
    resp_req_ok(req);
}

static void server__readwrite(resp_req *req)
{
    req->rc->readonly = false;
    resp_req_ok(req);
}

static void server__quit(resp_req *req)
{
    resp_req_ok(req);
    req->close_after = true;
    req->rc->failed = true; /* nothing after QUIT is read */
    net_conn_pause(req->rc->c);
}

/* SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]: the node stops as on
 * SIGTERM (it raises one, so the one graceful path runs: in-flight
 * requests finish, new ones are refused, leadership is handed over).
 * Every acknowledged write is already in the log (durable) or nowhere
 * (--persistence none): NOSAVE, NOW and FORCE change nothing; SAVE cannot
 * be kept without a disk. As Redis, the client gets no reply: the
 * connection closes. */
static void server__shutdown(resp_req *req)
{
    bool nosave = false, save = false, abort_ = false, other = false;
    for (size_t i = 1; i < req->argc; i++) {
        const resp_arg *a = &req->argv[i];
        if (resp_format_arg_is(a, "nosave"))
            nosave = true;
        else if (resp_format_arg_is(a, "save"))
            save = true;
        else if (resp_format_arg_is(a, "now") || resp_format_arg_is(a, "force"))
            other = true;
        else if (resp_format_arg_is(a, "abort"))
            abort_ = true;
        else {
            resp_req_error_syntax(req);
            return;
        }
    }
    if ((abort_ && (nosave || save || other)) || (nosave && save)) {
        resp_req_error_syntax(req);
        return;
    }
    if (abort_) {
        resp_req_error(req, req->a->stopping
                                ? "ERR the shutdown in progress cannot be aborted: cairn stops "
                                  "at once (it waits for no replica)"
                                : "ERR No shutdown in progress.");
        return;
    }
    if (save && req->a->cfg->persistence != PERSISTENCE_DURABLE) {
        resp_req_error(req, "ERR Errors trying to SHUTDOWN. Check logs. (SAVE: this node keeps "
                            "nothing on disk, --persistence none)");
        return;
    }
    LOG_INFO("SHUTDOWN from a client", LF_I("conn", req->rc->c->id),
             LF_S("peer", req->rc->c->peer));
    req->close_after = true;
    req->rc->failed = true; /* nothing after it is read */
    net_conn_pause(req->rc->c);
    raise(SIGTERM);
}

static void server__reset(resp_req *req)
{
    resp_conn *rc = req->rc;
    rc->proto = 2;
    rc->readonly = false;
    buf_reset(&rc->name);
    resp_auth_forget(rc);      /* as Redis: back to not authenticated */
    resp_tx_conn_reset(rc);    /* out of MULTI, nothing watched */
    resp_pubsub_conn_free(rc); /* no subscriptions */
    resp_tracking_reset(rc);   /* no tracking */
    req->proto = 2;
    resp_write_simple(&req->reply, "RESET");
}

/* ---- AUTH HELLO --------------------------------------------------------------------- */

/* Without --users-file every password of the default user is right
 * (Redis' "nopass" default user); no other user exists. */
static bool server__auth_ok(const resp_arg *user)
{
    return user->len == 7 && memcmp(user->ptr, "default", 7) == 0;
}

static void server__auth_reply(resp_req *req)
{
    resp_req_ok(req);
}

static void server__auth(resp_req *req)
{
    if (req->argc > 3) {
        resp_req_error_syntax(req);
        return;
    }
    if (req->a->auth) {
        static const resp_arg default_user = {"default", 7};
        const resp_arg *user = req->argc == 2 ? &default_user : &req->argv[1];
        resp_req_authenticate(req, user, &req->argv[req->argc - 1], server__auth_reply);
        return;
    }
    if (req->argc == 2) {
        resp_req_error(req, server__no_password);
        return;
    }
    if (!server__auth_ok(&req->argv[1])) {
        resp_req_error(req, server__wrongpass);
        return;
    }
    resp_req_ok(req);
}

static void server__set_name(resp_conn *rc, const resp_arg *name)
{
    buf_reset(&rc->name);
    buf_append(&rc->name, name->ptr, name->len);
}

/* The reply of HELLO, once any AUTH in it succeeded: n[0] is the
 * protocol, n[1] the index of SETNAME's argument (0: none). */
static void server__hello_reply(resp_req *req)
{
    resp_conn *rc = req->rc;
    if (req->n[1]) server__set_name(rc, &req->argv[req->n[1]]);
    rc->proto = (int)req->n[0];
    req->proto = (int)req->n[0]; /* HELLO answers in the protocol it selects */
    buf *o = &req->reply;
    resp_write_map(o, req->proto, 7);
    resp_write_bulk_str(o, "server");
    resp_write_bulk_str(o, "redis");
    resp_write_bulk_str(o, "version");
    resp_write_bulk_str(o, SERVER_REDIS_VERSION);
    resp_write_bulk_str(o, "proto");
    resp_write_integer(o, req->n[0]);
    resp_write_bulk_str(o, "id");
    resp_write_integer(o, (long long)rc->c->id);
    resp_write_bulk_str(o, "mode");
    resp_write_bulk_str(o, "standalone");
    resp_write_bulk_str(o, "role");
    resp_write_bulk_str(o, server__role(req));
    resp_write_bulk_str(o, "modules");
    resp_write_array(o, 0);
}

static void server__hello(resp_req *req)
{
    resp_conn *rc = req->rc;
    int64_t ver = rc->proto;
    if (req->argc >= 2) {
        if (!strconv_parse_i64(req->argv[1].ptr, req->argv[1].len, &ver)) {
            resp_req_error(req, "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (ver < 2 || ver > 3) {
            resp_req_error(req, "NOPROTO unsupported protocol version");
            return;
        }
    }
    const resp_arg *user = NULL, *name = NULL;
    size_t name_at = 0;
    for (size_t i = 2; i < req->argc; i++) {
        const resp_arg *a = &req->argv[i];
        if (resp_format_arg_is(a, "auth") && i + 2 < req->argc) {
            user = &req->argv[i + 1];
            i += 2;
        } else if (resp_format_arg_is(a, "setname") && i + 1 < req->argc) {
            name_at = ++i;
            name = &req->argv[i];
        } else {
            resp_req_errorf(req, "ERR Syntax error in HELLO option '%.*s'",
                            (int)(a->len > 128 ? 128 : a->len), a->ptr);
            return;
        }
    }
    if (name && !resp_format_client_name_ok(name->ptr, name->len)) {
        resp_req_error(req, server__bad_name);
        return;
    }
    req->n[0] = ver;
    req->n[1] = (int64_t)name_at;
    if (user && req->a->auth) {
        resp_req_authenticate(req, user, user + 1, server__hello_reply);
        return;
    }
    if (user && !server__auth_ok(user)) {
        resp_req_error(req, server__wrongpass);
        return;
    }
    server__hello_reply(req);
}

/* ---- CLIENT ---------------------------------------------------------------------------- */

static void server__sockaddr_name(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[64] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        uv_ip4_name(s4, host, sizeof(host));
        port = ntohs(s4->sin_port);
        snprintf(out, cap, "%s:%d", host, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(s6, host, sizeof(host));
        port = ntohs(s6->sin6_port);
        snprintf(out, cap, "[%s]:%d", host, port);
    } else {
        snprintf(out, cap, "?:0");
    }
}

static int server__local_port(const net_conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) != 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

/* One line of CLIENT LIST / CLIENT INFO, with the fields Redis documents
 * (those without a meaning in cairn have their neutral value). */
static void server__client_line(buf *out, const resp_conn *rc, int64_t now_ms)
{
    const net_conn *c = rc->c;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char laddr[96] = "?:0";
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        server__sockaddr_name(&ss, laddr, sizeof(laddr));
    uv_os_fd_t fd = -1;
    uv_fileno((const uv_handle_t *)&c->tcp, &fd);
    buf_printf(out, "id=%" PRIu64 " addr=%s laddr=%s fd=%d name=", c->id, c->peer, laddr, (int)fd);
    /* Redis' flags in its order: t R B (tracking), r (READONLY); else N */
    char flags[8];
    size_t nf = 0;
    resp_tracking_flags(rc, flags, &nf);
    if (rc->readonly) flags[nf++] = 'r';
    if (!nf) flags[nf++] = 'N';
    flags[nf] = '\0';
    buf_append(out, rc->name.data ? rc->name.data : "", rc->name.len);
    buf_printf(out,
               " age=%lld idle=%lld flags=%s db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=%zu "
               "qbuf-free=0 argv-mem=0 multi-mem=0 rbs=%zu rbp=0 obl=0 oll=0 omem=%zu tot-mem=%zu "
               "events=r cmd=%s user=%.*s redir=%lld resp=%d lib-name=",
               (long long)((now_ms - rc->created_ms) / 1000),
               (long long)((now_ms - rc->last_cmd_ms) / 1000), flags, buf_unread_len(&c->in),
               c->in.cap, buf_unread_len(&c->out) + buf_unread_len(&c->wbuf),
               c->in.cap + c->out.cap + c->wbuf.cap, rc->last_cmd,
               rc->user_name_len ? (int)rc->user_name_len : 7,
               rc->user_name_len ? rc->user_name : "default", (long long)resp_tracking_redirect(rc),
               rc->proto);
    buf_append(out, rc->lib_name.data ? rc->lib_name.data : "", rc->lib_name.len);
    buf_append_str(out, " lib-ver=");
    buf_append(out, rc->lib_ver.data ? rc->lib_ver.data : "", rc->lib_ver.len);
    buf_append_char(out, '\n');
}

static void server__client_list(resp_req *req)
{
    resp_conn *rc = req->rc;
    bool none = false;
    size_t ids_from = 0;
    for (size_t i = 2; i < req->argc; i++) {
        const resp_arg *a = &req->argv[i];
        if (resp_format_arg_is(a, "type") && i + 1 < req->argc) {
            const resp_arg *t = &req->argv[++i];
            if (resp_format_arg_is(t, "normal")) continue;
            if (resp_format_arg_is(t, "master") || resp_format_arg_is(t, "replica") ||
                resp_format_arg_is(t, "slave") || resp_format_arg_is(t, "pubsub")) {
                none = true;
                continue;
            }
            resp_req_errorf(req, "ERR Unknown client type '%.*s'", (int)t->len, t->ptr);
            return;
        } else if (resp_format_arg_is(a, "id") && i + 1 < req->argc) {
            ids_from = i + 1;
            for (size_t k = ids_from; k < req->argc; k++) {
                int64_t id;
                if (!strconv_parse_i64(req->argv[k].ptr, req->argv[k].len, &id) || id <= 0) {
                    resp_req_error(req, "ERR Invalid client ID");
                    return;
                }
            }
            break;
        } else {
            resp_req_error_syntax(req);
            return;
        }
    }
    buf text;
    buf_init(&text);
    int64_t now = net_now_ms();
    for (resp_conn *x = none ? NULL : rc->ra->conns; x; x = x->next) {
        if (ids_from) {
            bool want = false;
            for (size_t k = ids_from; k < req->argc && !want; k++) {
                int64_t id = 0;
                strconv_parse_i64(req->argv[k].ptr, req->argv[k].len, &id);
                want = (uint64_t)id == x->c->id;
            }
            if (!want) continue;
        }
        server__client_line(&text, x, now);
    }
    resp_write_verbatim(&req->reply, req->proto, "txt", text.data ? text.data : "", text.len);
    buf_close(&text);
}

static const char *const server__client_help[] = {
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "LIST [TYPE <normal|master|replica|pubsub>] [ID <id> [<id> ...]]",
    "    Return information about client connections.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <LIB-NAME|LIB-VER> <value>",
    "    Record the client library's name or version (shown by CLIENT LIST).",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF), NO-TOUCH (ON|OFF)",
    "    Accepted for compatibility; they change nothing in cairn.",
    "HELP",
    "    Prints this help.",
    NULL,
};

static void server__client(resp_req *req)
{
    resp_conn *rc = req->rc;
    const resp_arg *sub = &req->argv[1];
    size_t argc = req->argc;
    if (resp_tracking_client(req)) {
        /* TRACKING, CACHING, GETREDIR, TRACKINGINFO: resp_tracking.c */
    } else if (resp_format_arg_is(sub, "id")) {
        if (argc != 2) {
            server__sub_arity(req, "client", "id");
            return;
        }
        rc->last_cmd = "client|id";
        resp_write_integer(&req->reply, (long long)rc->c->id);
    } else if (resp_format_arg_is(sub, "setname")) {
        if (argc != 3) {
            server__sub_arity(req, "client", "setname");
            return;
        }
        rc->last_cmd = "client|setname";
        const resp_arg *name = &req->argv[2];
        if (!resp_format_client_name_ok(name->ptr, name->len)) {
            resp_req_error(req, server__bad_name);
            return;
        }
        server__set_name(rc, name);
        resp_req_ok(req);
    } else if (resp_format_arg_is(sub, "getname")) {
        if (argc != 2) {
            server__sub_arity(req, "client", "getname");
            return;
        }
        rc->last_cmd = "client|getname";
        if (rc->name.len)
            resp_write_bulk(&req->reply, rc->name.data, rc->name.len);
        else
            resp_req_null(req);
    } else if (resp_format_arg_is(sub, "info")) {
        if (argc != 2) {
            server__sub_arity(req, "client", "info");
            return;
        }
        rc->last_cmd = "client|info";
        buf line;
        buf_init(&line);
        server__client_line(&line, rc, net_now_ms());
        resp_write_verbatim(&req->reply, req->proto, "txt", line.data, line.len);
        buf_close(&line);
    } else if (resp_format_arg_is(sub, "list")) {
        rc->last_cmd = "client|list";
        server__client_list(req);
    } else if (resp_format_arg_is(sub, "setinfo")) {
        if (argc != 4) {
            server__sub_arity(req, "client", "setinfo");
            return;
        }
        rc->last_cmd = "client|setinfo";
        const resp_arg *attr = &req->argv[2], *v = &req->argv[3];
        buf *dst = resp_format_arg_is(attr, "lib-name")  ? &rc->lib_name
                   : resp_format_arg_is(attr, "lib-ver") ? &rc->lib_ver
                                                         : NULL;
        if (!dst) {
            resp_req_errorf(req, "ERR Unrecognized option '%.*s'",
                            (int)(attr->len > 128 ? 128 : attr->len), attr->ptr);
            return;
        }
        if (!resp_format_client_name_ok(v->ptr, v->len)) {
            resp_req_errorf(req, "ERR %s cannot contain spaces, newlines or special characters.",
                            dst == &rc->lib_name ? "lib-name" : "lib-ver");
            return;
        }
        buf_reset(dst);
        buf_append(dst, v->ptr, v->len);
        resp_req_ok(req);
    } else if (resp_format_arg_is(sub, "no-evict") || resp_format_arg_is(sub, "no-touch")) {
        const char *name = resp_format_arg_is(sub, "no-evict") ? "no-evict" : "no-touch";
        if (argc != 3) {
            server__sub_arity(req, "client", name);
            return;
        }
        if (!resp_format_arg_is(&req->argv[2], "on") && !resp_format_arg_is(&req->argv[2], "off")) {
            resp_req_error_syntax(req);
            return;
        }
        resp_req_ok(req);
    } else if (resp_format_arg_is(sub, "help")) {
        resp_req_help(req, server__client_help);
    } else {
        server__unknown_subcommand(req, "CLIENT");
    }
}

/* ---- COMMAND -------------------------------------------------------------------------- */

static void server__command_flags(buf *o, int proto, uint32_t f)
{
    static const struct {
        uint32_t bit;
        const char *name;
    } names[] = {
        {RESP_CMD_WRITE, "write"},         {RESP_CMD_READONLY, "readonly"},
        {RESP_CMD_DENYOOM, "denyoom"},     {RESP_CMD_ADMIN, "admin"},
        {RESP_CMD_NOSCRIPT, "noscript"},   {RESP_CMD_LOADING, "loading"},
        {RESP_CMD_STALE, "stale"},         {RESP_CMD_FAST, "fast"},
        {RESP_CMD_NO_AUTH, "no_auth"},     {RESP_CMD_BLOCKING, "blocking"},
        {RESP_CMD_NUMKEYS, "movablekeys"},
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) n += (f & names[i].bit) != 0;
    resp_write_set(o, proto, n);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (f & names[i].bit) resp_write_simple(o, names[i].name);
}

static void server__command_categories(buf *o, int proto, const resp_cmd *cmd)
{
    const char *cats[7];
    size_t n = 0;
    uint32_t f = cmd->flags;
    if (f & RESP_CMD_WRITE) cats[n++] = "@write";
    if (f & RESP_CMD_READONLY) cats[n++] = "@read";
    if (strcmp(cmd->group, "string") == 0)
        cats[n++] = "@string";
    else if (strcmp(cmd->group, "hash") == 0)
        cats[n++] = "@hash";
    else if (strcmp(cmd->group, "list") == 0)
        cats[n++] = "@list";
    else if (strcmp(cmd->group, "set") == 0)
        cats[n++] = "@set";
    else if (strcmp(cmd->group, "sortedset") == 0)
        cats[n++] = "@sortedset";
    else if (strcmp(cmd->group, "bitmap") == 0)
        cats[n++] = "@bitmap";
    else if (strcmp(cmd->group, "hyperloglog") == 0)
        cats[n++] = "@hyperloglog";
    else if (strcmp(cmd->group, "geo") == 0)
        cats[n++] = "@geo";
    else if (strcmp(cmd->group, "stream") == 0)
        cats[n++] = "@stream";
    else if (f & RESP_CMD_KEYSPACE)
        cats[n++] = "@keyspace";
    else if (strcmp(cmd->group, "connection") == 0)
        cats[n++] = "@connection";
    else if (strcmp(cmd->group, "transactions") == 0)
        cats[n++] = "@transaction";
    else if (strcmp(cmd->group, "pubsub") == 0)
        cats[n++] = "@pubsub";
    cats[n++] = (f & RESP_CMD_FAST) ? "@fast" : "@slow";
    if (f & RESP_CMD_ADMIN) cats[n++] = "@admin";
    if (f & (RESP_CMD_DANGEROUS | RESP_CMD_ADMIN)) cats[n++] = "@dangerous";
    if (f & RESP_CMD_BLOCKING) cats[n++] = "@blocking";
    resp_write_set(o, proto, n);
    for (size_t i = 0; i < n; i++) resp_write_simple(o, cats[i]);
}

static void server__command_info(buf *o, int proto, const resp_cmd *cmd)
{
    resp_write_array(o, 10);
    resp_write_bulk_str(o, cmd->name);
    resp_write_integer(o, cmd->arity);
    server__command_flags(o, proto, cmd->flags);
    bool movable = cmd->flags & RESP_CMD_NUMKEYS; /* Redis reports 0 0 0 */
    resp_write_integer(o, movable ? 0 : cmd->first_key);
    resp_write_integer(o, movable ? 0 : cmd->last_key);
    resp_write_integer(o, movable ? 0 : cmd->key_step);
    server__command_categories(o, proto, cmd);
    resp_write_array(o, 0); /* tips */
    resp_write_array(o, 0); /* key specifications */
    resp_write_array(o, 0); /* subcommands */
}

static void server__command_doc(buf *o, int proto, const resp_cmd *cmd)
{
    bool args = cmd->synopsis && cmd->synopsis[0];
    resp_write_bulk_str(o, cmd->name);
    resp_write_map(o, proto, args ? 5 : 4);
    resp_write_bulk_str(o, "summary");
    resp_write_bulk_str(o, cmd->summary);
    resp_write_bulk_str(o, "since");
    resp_write_bulk_str(o, cmd->since);
    resp_write_bulk_str(o, "group");
    resp_write_bulk_str(o, cmd->group);
    resp_write_bulk_str(o, "complexity");
    resp_write_bulk_str(o, cmd->complexity);
    if (args) {
        /* what redis-cli turns into its argument hints */
        resp_write_bulk_str(o, "arguments");
        if (resp_format_doc_args(o, proto, cmd->synopsis) < 0) resp_write_array(o, 0);
    }
}

static void server__command_getkeys(resp_req *req)
{
    const resp_api *ra = req->rc->ra;
    if (req->argc < 3) {
        server__sub_arity(req, "command", "getkeys");
        return;
    }
    const resp_cmd *cmd = resp_api_lookup(ra, req->argv[2].ptr, req->argv[2].len);
    size_t argc = req->argc - 2;
    const resp_arg *argv = req->argv + 2;
    if (!cmd) {
        resp_req_error(req, "ERR Invalid command specified");
        return;
    }
    if ((cmd->arity > 0 && argc != (size_t)cmd->arity) ||
        (cmd->arity < 0 && argc < (size_t)-cmd->arity)) {
        resp_req_error(req, "ERR Invalid number of arguments specified for command");
        return;
    }
    long first, last;
    if (!resp_cmd_keys(cmd, argv, argc, &first, &last)) {
        resp_req_error(req, (cmd->flags & RESP_CMD_NUMKEYS)
                                ? "ERR Invalid arguments specified for command"
                                : "ERR The command has no key arguments");
        return;
    }
    /* keys that options name */
    size_t extra[2], nextra = 0, n = 0;
    if (strcmp(cmd->name, "sort") == 0 && (extra[0] = resp_sort_store_key(argv, argc)) != 0)
        nextra = 1;
    else if (strcmp(cmd->name, "georadius") == 0 || strcmp(cmd->name, "georadiusbymember") == 0)
        nextra = resp_geo_store_keys(cmd, argv, argc, extra);
    for (long i = first; i <= last; i += cmd->key_step) n++;
    resp_write_array(&req->reply, n + nextra);
    for (long i = first; i <= last; i += cmd->key_step)
        resp_write_bulk(&req->reply, argv[i].ptr, argv[i].len);
    for (size_t i = 0; i < nextra; i++)
        resp_write_bulk(&req->reply, argv[extra[i]].ptr, argv[extra[i]].len);
}

static const char *const server__command_help[] = {
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all commands.",
    "COUNT",
    "    Return the total number of commands.",
    "LIST",
    "    Return the names of all commands.",
    "INFO [<command-name> ...]",
    "    Return details about the given commands (all when none is given).",
    "DOCS [<command-name> ...]",
    "    Return documentation of the given commands (all when none is given).",
    "GETKEYS <full-command>",
    "    Return the keys of a full command.",
    "HELP",
    "    Prints this help.",
    NULL,
};

static void server__command(resp_req *req)
{
    const resp_api *ra = req->rc->ra;
    buf *o = &req->reply;
    if (req->argc == 1) {
        resp_write_array(o, ra->ncmds);
        for (size_t i = 0; i < ra->ncmds; i++) server__command_info(o, req->proto, ra->cmds[i]);
        return;
    }
    const resp_arg *sub = &req->argv[1];
    if (resp_format_arg_is(sub, "count")) {
        if (req->argc != 2) {
            server__sub_arity(req, "command", "count");
            return;
        }
        resp_write_integer(o, (long long)ra->ncmds);
    } else if (resp_format_arg_is(sub, "list")) {
        resp_write_array(o, ra->ncmds);
        for (size_t i = 0; i < ra->ncmds; i++) resp_write_bulk_str(o, ra->cmds[i]->name);
    } else if (resp_format_arg_is(sub, "info")) {
        if (req->argc == 2) {
            resp_write_array(o, ra->ncmds);
            for (size_t i = 0; i < ra->ncmds; i++) server__command_info(o, req->proto, ra->cmds[i]);
            return;
        }
        resp_write_array(o, req->argc - 2);
        for (size_t i = 2; i < req->argc; i++) {
            const resp_cmd *cmd = resp_api_lookup(ra, req->argv[i].ptr, req->argv[i].len);
            if (cmd)
                server__command_info(o, req->proto, cmd);
            else
                resp_write_null_array(o, req->proto);
        }
    } else if (resp_format_arg_is(sub, "docs")) {
        if (req->argc == 2) {
            resp_write_map(o, req->proto, ra->ncmds);
            for (size_t i = 0; i < ra->ncmds; i++) server__command_doc(o, req->proto, ra->cmds[i]);
            return;
        }
        size_t n = 0;
        for (size_t i = 2; i < req->argc; i++)
            n += resp_api_lookup(ra, req->argv[i].ptr, req->argv[i].len) != NULL;
        resp_write_map(o, req->proto, n);
        for (size_t i = 2; i < req->argc; i++) {
            const resp_cmd *cmd = resp_api_lookup(ra, req->argv[i].ptr, req->argv[i].len);
            if (cmd) server__command_doc(o, req->proto, cmd);
        }
    } else if (resp_format_arg_is(sub, "getkeys")) {
        server__command_getkeys(req);
    } else if (resp_format_arg_is(sub, "help")) {
        resp_req_help(req, server__command_help);
    } else {
        server__unknown_subcommand(req, "COMMAND");
    }
}

/* ---- INFO ------------------------------------------------------------------------------ */

enum {
    INFO_SERVER = 1 << 0,
    INFO_CLIENTS = 1 << 1,
    INFO_MEMORY = 1 << 2,
    INFO_PERSISTENCE = 1 << 3,
    INFO_STATS = 1 << 4,
    INFO_REPLICATION = 1 << 5,
    INFO_CPU = 1 << 6,
    INFO_CLUSTER = 1 << 7,
    INFO_KEYSPACE = 1 << 8,
    INFO_ALL = (1 << 9) - 1,
};

static const struct {
    const char *name;
    uint32_t bit;
} server__sections[] = {
    {"server", INFO_SERVER},     {"clients", INFO_CLIENTS},
    {"memory", INFO_MEMORY},     {"persistence", INFO_PERSISTENCE},
    {"stats", INFO_STATS},       {"replication", INFO_REPLICATION},
    {"cpu", INFO_CPU},           {"cluster", INFO_CLUSTER},
    {"keyspace", INFO_KEYSPACE},
};

static void server__section(buf *o, const char *title, bool *first)
{
    if (!*first) buf_append(o, "\r\n", 2);
    *first = false;
    buf_printf(o, "# %s\r\n", title);
}

static void server__human(buf *o, const char *field, uint64_t bytes)
{
    char h[32];
    resp_format_human_bytes(h, sizeof(h), bytes);
    buf_printf(o, "%s:%s\r\n", field, h);
}

static void server__info_text(resp_req *req, uint32_t want, buf *o)
{
    api *a = req->a;
    const cairn_config *cfg = a->cfg;
    resp_api *ra = req->rc->ra;
    kv_store *store = a->store;
    replica_status_info st;
    replica_get_status(a->replica, &st);
    bool first = true;
    int64_t now = net_now_ms();
    uint64_t used = store->ks.mem_bytes, rss = api_rss_bytes();
    resp_tracking_stats trk = resp_tracking_stats_of(ra);
    bool durable = cfg->persistence == PERSISTENCE_DURABLE;
    const char *role =
        strcmp(st.role, "leader") == 0 || strcmp(st.role, "standalone") == 0 ? "master" : "slave";
    if (want & INFO_SERVER) {
        struct utsname u;
        if (uname(&u) != 0) memset(&u, 0, sizeof(u));
        struct timeval tv;
        gettimeofday(&tv, NULL);
        int64_t up = (now - a->start_ms) / 1000;
        server__section(o, "Server", &first);
        buf_printf(o,
                   "redis_version:" SERVER_REDIS_VERSION "\r\ncairn_version:" CAIRN_VERSION_STRING
                   "\r\nredis_mode:standalone\r\nos:%s %s %s\r\narch_bits:%d\r\n"
                   "multiplexing_api:epoll\r\nprocess_id:%d\r\nrun_id:%016" PRIx64 "%016" PRIx64
                   "%08" PRIx64 "\r\ntcp_port:%d\r\nserver_time_usec:%lld\r\n"
                   "uptime_in_seconds:%lld\r\nuptime_in_days:%lld\r\nhz:10\r\nconfigured_hz:10\r\n"
                   "lru_clock:%u\r\nconfig_file:\r\nio_threads_active:0\r\n",
                   u.sysname, u.release, u.machine, (int)(sizeof(void *) * 8), (int)getpid(),
                   (uint64_t)a->start_ms, (uint64_t)getpid(), cfg->id,
                   server__local_port(req->rc->c),
                   (long long)tv.tv_sec * 1000000 + (long long)tv.tv_usec, (long long)up,
                   (long long)(up / 86400), memory_lru_clock());
    }
    if (want & INFO_CLIENTS) {
        server__section(o, "Clients", &first);
        buf_printf(o,
                   "connected_clients:%" PRIu64 "\r\ncluster_connections:0\r\nmaxclients:%" PRIu64
                   "\r\nblocked_clients:%" PRIu64 "\r\ntracking_clients:%" PRIu64
                   "\r\nclients_in_timeout_table:%" PRIu64 "\r\n",
                   ra->n_conns, cfg->max_clients, resp_blocking_count(ra), trk.clients,
                   resp_blocking_count(ra));
    }
    if (want & INFO_MEMORY) {
        server__section(o, "Memory", &first);
        buf_printf(o, "used_memory:%" PRIu64 "\r\n", used);
        server__human(o, "used_memory_human", used);
        buf_printf(o, "used_memory_rss:%" PRIu64 "\r\n", rss);
        server__human(o, "used_memory_rss_human", rss);
        buf_printf(o, "used_memory_dataset:%" PRIu64 "\r\nmaxmemory:%" PRIu64 "\r\n", used,
                   a->maxmemory);
        server__human(o, "maxmemory_human", a->maxmemory);
        buf_printf(o,
                   "maxmemory_policy:%s\r\nmem_fragmentation_ratio:%.2f\r\nmem_allocator:libc\r\n"
                   "lazyfree_pending_objects:%" PRIu64 "\r\nlazyfreed_objects:%" PRIu64 "\r\n"
                   "cairn_memory_estimate:keyspace\r\n",
                   memory_policy_name(a->eviction), used ? (double)rss / (double)used : 0.0,
                   kv_lazyfree_pending(), kv_lazyfree_done());
    }
    if (want & INFO_PERSISTENCE) {
        server__section(o, "Persistence", &first);
        buf_printf(o,
                   "loading:0\r\nasync_loading:0\r\nrdb_changes_since_last_save:0\r\n"
                   "rdb_bgsave_in_progress:0\r\nrdb_last_bgsave_status:ok\r\naof_enabled:%d\r\n"
                   "aof_rewrite_in_progress:0\r\naof_last_write_status:ok\r\n"
                   "cairn_persistence:%s\r\ncairn_snapshots_taken:%" PRIu64 "\r\n",
                   durable ? 1 : 0, durable ? "durable" : "none", st.snapshots_taken);
    }
    if (want & INFO_STATS) {
        server__section(o, "Stats", &first);
        buf_printf(o,
                   "total_connections_received:%" PRIu64 "\r\ntotal_commands_processed:%" PRIu64
                   "\r\ninstantaneous_ops_per_sec:0\r\nrejected_connections:0\r\n"
                   "expired_keys:%" PRIu64 "\r\nevicted_keys:%" PRIu64 "\r\nkeyspace_hits:%" PRIu64
                   "\r\nkeyspace_misses:%" PRIu64 "\r\npubsub_channels:0\r\npubsub_patterns:0\r\n"
                   "tracking_total_keys:%" PRIu64 "\r\ntracking_total_items:%" PRIu64
                   "\r\ntracking_total_prefixes:%" PRIu64 "\r\n",
                   ra->total_connections, ra->total_commands,
                   store->expired_keys - ra->expired_base, memory_evicted_keys() - ra->evicted_base,
                   ra->keyspace_hits, ra->keyspace_misses, trk.keys, trk.items, trk.prefixes);
    }
    if (want & INFO_REPLICATION) {
        server__section(o, "Replication", &first);
        buf_printf(o,
                   "role:%s\r\nconnected_slaves:0\r\nmaster_repl_offset:%" PRIu64
                   "\r\ncairn_raft_role:%s\r\ncairn_raft_term:%" PRIu64
                   "\r\ncairn_leader_id:%" PRIu64 "\r\ncairn_commit_index:%" PRIu64
                   "\r\ncairn_applied_index:%" PRIu64 "\r\ncairn_revision:%" PRIu64 "\r\n",
                   role, st.applied_index, st.role, st.term, st.leader_id, st.commit_index,
                   st.applied_index, store->revision);
    }
    if (want & INFO_CPU) {
        struct rusage self;
        getrusage(RUSAGE_SELF, &self);
        server__section(o, "CPU", &first);
        buf_printf(o, "used_cpu_sys:%ld.%06ld\r\nused_cpu_user:%ld.%06ld\r\n",
                   (long)self.ru_stime.tv_sec, (long)self.ru_stime.tv_usec,
                   (long)self.ru_utime.tv_sec, (long)self.ru_utime.tv_usec);
    }
    if (want & INFO_CLUSTER) {
        server__section(o, "Cluster", &first);
        buf_append_str(o, "cluster_enabled:0\r\n");
    }
    if (want & INFO_KEYSPACE) {
        server__section(o, "Keyspace", &first);
        uint64_t keys = kv_keyspace_count(&store->ks);
        if (keys)
            buf_printf(o, "db0:keys=%" PRIu64 ",expires=%" PRIu64 ",avg_ttl=0\r\n", keys,
                       store->ks.volatile_count);
    }
}

static void server__info(resp_req *req)
{
    uint32_t want = req->argc == 1 ? INFO_ALL : 0;
    for (size_t i = 1; i < req->argc; i++) {
        const resp_arg *a = &req->argv[i];
        if (resp_format_arg_is(a, "all") || resp_format_arg_is(a, "everything") ||
            resp_format_arg_is(a, "default")) {
            want = INFO_ALL;
            continue;
        }
        for (size_t k = 0; k < sizeof(server__sections) / sizeof(server__sections[0]); k++)
            if (resp_format_arg_is(a, server__sections[k].name)) want |= server__sections[k].bit;
    }
    buf text;
    buf_init(&text);
    server__info_text(req, want, &text);
    resp_write_verbatim(&req->reply, req->proto, "txt", text.data ? text.data : "", text.len);
    buf_close(&text);
}

/* ---- CONFIG ------------------------------------------------------------------------------ */

/* Writes "name value" into the reply when name matches one of the
 * patterns; returns 1 if it did. */
static size_t server__config_pair(resp_req *req, buf *o, const char *name, const char *value)
{
    size_t n = strlen(name);
    for (size_t i = 2; i < req->argc; i++) {
        if (glob_match(req->argv[i].ptr, req->argv[i].len, name, n, true)) {
            resp_write_bulk(o, name, n);
            resp_write_bulk_str(o, value);
            return 1;
        }
    }
    return 0;
}

static size_t server__config_all(resp_req *req, buf *o)
{
    const cairn_config *cfg = req->a->cfg;
    bool durable = cfg->persistence == PERSISTENCE_DURABLE;
    char port[16] = "0", bind[256] = "", n1[32], n2[32], n3[32], n4[32], n5[32], n6[32];
    const char *colon = strrchr(cfg->listen_resp, ':');
    if (colon) {
        snprintf(bind, sizeof(bind), "%.*s", (int)(colon - cfg->listen_resp), cfg->listen_resp);
        snprintf(port, sizeof(port), "%d", server__local_port(req->rc->c));
    }
    snprintf(n1, sizeof(n1), "%" PRIu64, req->a->maxmemory);
    snprintf(n2, sizeof(n2), "%" PRIu64, cfg->max_clients);
    snprintf(n3, sizeof(n3), "%lld", (long long)cfg->idle_timeout);
    snprintf(n4, sizeof(n4), "%" PRIu64, cfg->max_value_bytes);
    snprintf(n5, sizeof(n5), "%" PRIu64, cfg->max_key_bytes);
    snprintf(n6, sizeof(n6), "%" PRIu64, cfg->max_pending_output);
    static const char *const levels[] = {"debug", "notice", "warning", "warning"};
    size_t n = 0;
    n += server__config_pair(req, o, "bind", bind);
    n += server__config_pair(req, o, "port", port);
    n += server__config_pair(req, o, "databases", "1");
    n += server__config_pair(req, o, "maxmemory", n1);
    n += server__config_pair(req, o, "maxmemory-policy", memory_policy_name(req->a->eviction));
    n += server__config_pair(req, o, "maxmemory-samples", STR(MEMORY_SAMPLES));
    n += server__config_pair(req, o, "maxclients", n2);
    n += server__config_pair(req, o, "timeout", n3);
    n += server__config_pair(req, o, "proto-max-bulk-len", n4);
    n += server__config_pair(req, o, "appendonly", durable ? "yes" : "no");
    n += server__config_pair(req, o, "appendfsync", durable ? "always" : "no");
    n += server__config_pair(req, o, "save", "");
    n += server__config_pair(req, o, "dir", durable ? cfg->data_dir : "");
    n += server__config_pair(req, o, "loglevel", levels[cfg->log_level & 3]);
    n += server__config_pair(req, o, "client-output-buffer-limit", n6);
    n += server__config_pair(req, o, "cluster-enabled", "no");
    const slowlog *sl = &req->rc->ra->slowlog;
    char s1[24], s2[24];
    snprintf(s1, sizeof(s1), "%lld", (long long)sl->slower_than);
    snprintf(s2, sizeof(s2), "%" PRIu64, sl->max_len);
    n += server__config_pair(req, o, "slowlog-max-len", s2); /* in Redis' order */
    n += server__config_pair(req, o, "slowlog-log-slower-than", s1);
    char events[32];
    resp_notify_format(req->rc->ra->notify_flags, events);
    n += server__config_pair(req, o, "notify-keyspace-events", events);
    char tk[24];
    snprintf(tk, sizeof(tk), "%" PRIu64, resp_tracking_max_keys(req->rc->ra));
    n += server__config_pair(req, o, "tracking-table-max-keys", tk);
    char bt[24];
    snprintf(bt, sizeof(bt), "%" PRIu64, resp_script_threshold(req->rc->ra));
    n += server__config_pair(req, o, "lua-time-limit", bt);
    n += server__config_pair(req, o, "busy-reply-threshold", bt);
    /* the encodings' limits: replicated state (CONFIG SET goes through
     * the log), this node's as applied so far; sets: Redis 7.2's listpack
     * sets */
    const kv_limits *lim = &req->a->store->ks.limits;
    for (int i = 0; i < KV_LIMIT_COUNT_; i++) {
        char v[24];
        if (kv_limit_signed(i))
            snprintf(v, sizeof(v), "%" PRId64, (int64_t)lim->v[i]);
        else
            snprintf(v, sizeof(v), "%" PRIu64, lim->v[i]);
        n += server__config_pair(req, o, kv_limit_name(i), v);
        if (kv_limit_alias(i)) n += server__config_pair(req, o, kv_limit_alias(i), v);
    }
    n += server__config_pair(req, o, "list-compress-depth", "0");
    n += server__config_pair(req, o, "cairn-persistence", durable ? "durable" : "none");
    n += server__config_pair(req, o, "cairn-max-key-bytes", n5);
    n += server__config_pair(req, o, "cairn-max-value-bytes", n4);
    return n;
}

static const char *const server__config_help[] = {
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern> [<pattern> ...]",
    "    Return parameters matching the glob-like <pattern>s and their values.",
    "SET <directive> <value> [<directive> <value> ...]",
    "    Set the encodings' limits (hash-, set-, zset-max-*), on every node through",
    "    the log, and this node's maxmemory, maxmemory-policy, slowlog-* and",
    "    busy-reply-threshold (lua-time-limit); the rest",
    "    of cairn's configuration comes from its flags.",
    "RESETSTAT",
    "    Reset the statistics reported by INFO (this node's).",
    "REWRITE",
    "    Not supported.",
    "HELP",
    "    Prints this help.",
    NULL,
};

/* ---- OBJECT ----------------------------------------------------------------- */

static const char *const server__object_help[] = {
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
    NULL};

enum { OBJECT_ENCODING = 1, OBJECT_REFCOUNT, OBJECT_IDLETIME };

/* OBJECT looks without touching: no hit, no miss, no LRU stamp (as
 * Redis' LOOKUP_NOTOUCH). */
static void server__object_ready(resp_req *req)
{
    kv_entry *e = kv_store_get(req->a->store, req->argv[2].ptr, req->argv[2].len,
                               replica_req_read_ms(&req->rreq));
    if (!e) {
        resp_req_null(req);
        return;
    }
    const char *enc = kv_encoding_name(e);
    switch (req->opt) {
    case OBJECT_ENCODING:
        resp_write_bulk_str(&req->reply, enc);
        break;
    case OBJECT_REFCOUNT: {
        /* Redis shares the integers 0..9999 (one object, refcount INT_MAX)
         * unless an LRU policy needs a clock per key */
        int64_t v;
        bool shared = strcmp(enc, "int") == 0 && !memory_tracks_lru(req->a) &&
                      strconv_parse_i64(e->value, e->value_len, &v) && v >= 0 && v < 10000;
        resp_write_integer(&req->reply, shared ? 2147483647 : 1);
        break;
    }
    default: { /* IDLETIME: the LRU clock counts 100 ms units */
        uint32_t now = memory_lru_clock();
        resp_write_integer(&req->reply,
                           e->lru && now > e->lru ? (long long)(now - e->lru) / 10 : 0);
        break;
    }
    }
}

static void server__object(resp_req *req)
{
    const resp_arg *sub = &req->argv[1];
    static const struct {
        const char *name;
        int opt;
    } subs[] = {{"encoding", OBJECT_ENCODING},
                {"refcount", OBJECT_REFCOUNT},
                {"idletime", OBJECT_IDLETIME},
                {"freq", 0}};
    if (resp_format_arg_is(sub, "help")) {
        if (req->argc != 2)
            server__sub_arity(req, "object", "help");
        else
            resp_req_help(req, server__object_help);
        return;
    }
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (!resp_format_arg_is(sub, subs[i].name)) continue;
        if (req->argc != 3) {
            server__sub_arity(req, "object", subs[i].name);
        } else if (!subs[i].opt) {
            resp_req_error(req, "ERR An LFU maxmemory policy is not selected, access frequency "
                                "not tracked. Please note that when switching between policies "
                                "at runtime LRU and LFU data will take some time to adjust.");
        } else {
            req->opt = (uint32_t)subs[i].opt;
            resp_req_read(req, server__object_ready);
        }
        return;
    }
    server__unknown_subcommand(req, "OBJECT");
}

/* What CONFIG GET lists but only cairnd's flags set. */
static const char *const server__config_fixed[] = {"bind",
                                                   "port",
                                                   "databases",
                                                   "maxmemory-samples",
                                                   "maxclients",
                                                   "timeout",
                                                   "proto-max-bulk-len",
                                                   "appendonly",
                                                   "appendfsync",
                                                   "save",
                                                   "dir",
                                                   "loglevel",
                                                   "client-output-buffer-limit",
                                                   "cluster-enabled",
                                                   "list-compress-depth",
                                                   "cairn-persistence",
                                                   "cairn-max-key-bytes",
                                                   "cairn-max-value-bytes",
                                                   NULL};

/* This node's settings that CONFIG SET changes at once, on the node it
 * is sent to only: a memory budget and a slowlog are per machine, as
 * --maxmemory is a flag per node. Their slots in req->n (opt: which). */
enum {
    LOCAL_MAXMEMORY,
    LOCAL_POLICY,
    LOCAL_SLOWER_THAN,
    LOCAL_MAX_LEN,
    LOCAL_NOTIFY,
    LOCAL_TRACKING_MAX_KEYS,
    LOCAL_BUSY_THRESHOLD,
    LOCAL_COUNT_
};
static const char *const server__config_local[LOCAL_COUNT_] = {
    "maxmemory",           "maxmemory-policy",       "slowlog-log-slower-than",
    "slowlog-max-len",     "notify-keyspace-events", "tracking-table-max-keys",
    "busy-reply-threshold"};

static int server__local_lookup(const resp_arg *a)
{
    for (int i = 0; i < LOCAL_COUNT_; i++)
        if (resp_format_arg_is(a, server__config_local[i])) return i;
    if (resp_format_arg_is(a, "lua-time-limit")) return LOCAL_BUSY_THRESHOLD; /* its old name */
    return -1;
}

/* Parse a node-local value as Redis 7.0 does: NULL and *out, or the reason. */
static const char *server__local_parse(const api *a, int id, const resp_arg *v, int64_t *out)
{
    int64_t n;
    switch (id) {
    case LOCAL_MAXMEMORY: {
        uint64_t bytes;
        if (!kv_limit_parse_memory(v->ptr, v->len, &bytes) || bytes > INT64_MAX)
            return "argument must be a memory value";
        *out = (int64_t)bytes;
        return NULL;
    }
    case LOCAL_POLICY: {
        static const char *const redis_only[] = {"volatile-lfu", "volatile-random", "allkeys-lfu",
                                                 "allkeys-random"};
        for (int p = EVICTION_NOEVICTION; p <= EVICTION_VOLATILE_TTL; p++) {
            if (!resp_format_arg_is(v, memory_policy_name(p))) continue;
            if (p != EVICTION_NOEVICTION && a->cfg->persistence != PERSISTENCE_NONE)
                return "eviction needs --persistence none (a durable store never drops "
                       "acknowledged writes)";
            *out = p;
            return NULL;
        }
        for (size_t i = 0; i < sizeof(redis_only) / sizeof(redis_only[0]); i++)
            if (resp_format_arg_is(v, redis_only[i]))
                return "cairn evicts by noeviction, allkeys-lru, volatile-lru or volatile-ttl";
        return "argument(s) must be one of the following: volatile-lru, volatile-lfu, "
               "volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, "
               "noeviction";
    }
    case LOCAL_NOTIFY: {
        uint32_t flags;
        if (!resp_notify_parse(v->ptr, v->len, &flags))
            return "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";
        *out = flags;
        return NULL;
    }
    default:
        if (!strconv_parse_i64(v->ptr, v->len, &n))
            return "argument couldn't be parsed into an integer";
        if (id == LOCAL_SLOWER_THAN && n < -1)
            return "argument must be between -1 and 9223372036854775807 inclusive";
        if ((id == LOCAL_MAX_LEN || id == LOCAL_TRACKING_MAX_KEYS || id == LOCAL_BUSY_THRESHOLD) &&
            n < 0)
            return "argument must be between 0 and 9223372036854775807 inclusive";
        *out = n;
        return NULL;
    }
}

/* Set the node-local values CONFIG SET parsed into req->n (req->opt). */
static void server__local_apply(resp_req *req)
{
    api *a = req->a;
    slowlog *sl = &req->rc->ra->slowlog;
    if (req->opt & (1u << LOCAL_MAXMEMORY)) a->maxmemory = (uint64_t)req->n[LOCAL_MAXMEMORY];
    if (req->opt & (1u << LOCAL_POLICY)) a->eviction = (int)req->n[LOCAL_POLICY];
    if (req->opt & (1u << LOCAL_SLOWER_THAN)) sl->slower_than = req->n[LOCAL_SLOWER_THAN];
    if (req->opt & (1u << LOCAL_MAX_LEN)) slowlog_set_max_len(sl, (uint64_t)req->n[LOCAL_MAX_LEN]);
    if (req->opt & (1u << LOCAL_NOTIFY)) req->rc->ra->notify_flags = (uint32_t)req->n[LOCAL_NOTIFY];
    if (req->opt & (1u << LOCAL_TRACKING_MAX_KEYS))
        resp_tracking_set_max_keys(req->rc->ra, (uint64_t)req->n[LOCAL_TRACKING_MAX_KEYS]);
    if (req->opt & (1u << LOCAL_BUSY_THRESHOLD))
        resp_script_set_threshold(req->rc->ra, (uint64_t)req->n[LOCAL_BUSY_THRESHOLD]);
}

static void server__config_set_done(resp_req *req, const kv_result *res)
{
    server__local_apply(req);
    resp_reply_ok(req, res);
}

static void server__config_set_error(resp_req *req, const resp_arg *a, const char *why)
{
    char name[64];
    size_t n = a->len < sizeof(name) - 1 ? a->len : sizeof(name) - 1;
    for (size_t k = 0; k < n; k++) name[k] = (char)tolower((unsigned char)a->ptr[k]);
    resp_req_errorf(req, "ERR CONFIG SET failed (possibly related to argument '%.*s') - %s", (int)n,
                    name, why);
}

/* CONFIG SET: the checks and messages of Redis 7.0 in its order (every
 * name, then every value). The encodings' limits go through the log as
 * one entry; this node's settings are set once that entry has applied
 * (at once when there is none), so a refused entry changes nothing. */
static void server__config_set(resp_req *req)
{
    if (req->argc < 4) {
        server__sub_arity(req, "config", "set");
        return;
    }
    if (req->argc % 2) {
        resp_req_error_syntax(req);
        return;
    }
    size_t replicated = 0;
    for (size_t i = 2; i < req->argc; i += 2) {
        const resp_arg *a = &req->argv[i];
        if (kv_limit_lookup(a->ptr, a->len) >= 0) {
            replicated++;
        } else if (server__local_lookup(a) < 0) {
            bool fixed = false;
            for (size_t k = 0; server__config_fixed[k] && !fixed; k++)
                fixed = resp_format_arg_is(a, server__config_fixed[k]);
            if (fixed)
                resp_req_errorf(req,
                                "ERR CONFIG SET failed (possibly related to argument '%.*s') - "
                                "can't set immutable config",
                                (int)a->len, a->ptr);
            else
                resp_req_errorf(req,
                                "ERR Unknown option or number of arguments for CONFIG SET - '%.*s'",
                                (int)a->len, a->ptr);
            return;
        }
        for (size_t j = 2; j < i; j += 2) {
            if (req->argv[j].len == a->len && strncasecmp(req->argv[j].ptr, a->ptr, a->len) == 0) {
                resp_req_errorf(req,
                                "ERR CONFIG SET failed (possibly related to argument '%.*s') - "
                                "duplicate parameter",
                                (int)a->len, a->ptr);
                return;
            }
        }
    }
    req->opt = 0;
    for (size_t i = 2; i < req->argc; i += 2) {
        const resp_arg *a = &req->argv[i], *v = &req->argv[i + 1];
        int id = kv_limit_lookup(a->ptr, a->len);
        const char *why;
        if (id >= 0) {
            uint64_t lim;
            why = kv_limit_parse(id, v->ptr, v->len, &lim);
        } else {
            id = server__local_lookup(a);
            if (id < 0) return; /* never: every name was checked above */
            why = server__local_parse(req->a, id, v, &req->n[id]);
            req->opt |= 1u << id;
        }
        if (why) {
            server__config_set_error(req, a, why);
            return;
        }
    }
    if (!replicated) {
        server__local_apply(req);
        resp_req_ok(req);
        return;
    }
    /* the limits' name/value pairs only */
    kv_slice *args = xcalloc(replicated * 2, sizeof(kv_slice));
    size_t k = 0;
    for (size_t i = 2; i < req->argc; i += 2) {
        if (kv_limit_lookup(req->argv[i].ptr, req->argv[i].len) < 0) continue;
        args[k++] = (kv_slice){req->argv[i].ptr, req->argv[i].len};
        args[k++] = (kv_slice){req->argv[i + 1].ptr, req->argv[i + 1].len};
    }
    kv_command cmd = {.op = KV_OP_CONFIG, .nargs = (uint32_t)k, .args = args};
    resp_req_propose(req, &cmd, server__config_set_done);
    free(args);
}

/* CONFIG RESETSTAT: INFO's counters start again from zero (this node's;
 * the Prometheus metrics stay monotonic, as counters must). */
static void server__config_resetstat(resp_req *req)
{
    resp_api *ra = req->rc->ra;
    ra->total_connections = 0;
    ra->total_commands = 0;
    ra->keyspace_hits = ra->keyspace_misses = 0;
    ra->expired_base = req->a->store->expired_keys;
    ra->evicted_base = memory_evicted_keys();
    resp_req_ok(req);
}

/* CONFIG GET reads like a linearizable GET: after a CONFIG SET answered
 * OK, even one forwarded from a follower, the limits read are the new
 * ones. */
static void server__config_get_ready(resp_req *req)
{
    buf pairs;
    buf_init(&pairs);
    size_t n = server__config_all(req, &pairs);
    resp_write_map(&req->reply, req->proto, n);
    buf_append(&req->reply, pairs.data, pairs.len);
    buf_close(&pairs);
}

static void server__config(resp_req *req)
{
    const resp_arg *sub = &req->argv[1];
    if (resp_format_arg_is(sub, "get")) {
        if (req->argc < 3) {
            server__sub_arity(req, "config", "get");
            return;
        }
        resp_req_read(req, server__config_get_ready);
    } else if (resp_format_arg_is(sub, "set")) {
        server__config_set(req);
    } else if (resp_format_arg_is(sub, "resetstat")) {
        if (req->argc != 2)
            server__sub_arity(req, "config", "resetstat");
        else
            server__config_resetstat(req);
    } else if (resp_format_arg_is(sub, "rewrite")) {
        resp_req_error(req, "ERR CONFIG REWRITE is not supported: cairn's configuration comes "
                            "from its flags (and CONFIG SET of the encodings' limits is kept in "
                            "the log)");
    } else if (resp_format_arg_is(sub, "help")) {
        resp_req_help(req, server__config_help);
    } else {
        server__unknown_subcommand(req, "CONFIG");
    }
}

/* ---- SLOWLOG ------------------------------------------------------------------------------ */

static const char *const server__slowlog_help[] = {
    "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
    "HELP",
    "    Prints this help.",
    NULL};

static void server__slowlog_get(resp_req *req)
{
    const slowlog *sl = &req->rc->ra->slowlog;
    int64_t count = 10;
    if (req->argc == 3 &&
        (!strconv_parse_i64(req->argv[2].ptr, req->argv[2].len, &count) || count < -1)) {
        resp_req_error(req, "ERR count should be greater than or equal to -1");
        return;
    }
    uint64_t n = slowlog_len(sl);
    if (count >= 0 && (uint64_t)count < n) n = (uint64_t)count;
    resp_write_array(&req->reply, n);
    for (uint64_t i = 0; i < n; i++) {
        const slowlog_entry *e = slowlog_get(sl, i);
        resp_write_array(&req->reply, 6);
        resp_write_integer(&req->reply, (long long)e->id);
        resp_write_integer(&req->reply, (long long)e->unix_s);
        resp_write_integer(&req->reply, (long long)e->duration_us);
        resp_write_array(&req->reply, e->argc);
        for (uint32_t k = 0; k < e->argc; k++) resp_write_bulk(&req->reply, e->argv[k], e->lens[k]);
        resp_write_bulk_str(&req->reply, e->peer);
        resp_write_bulk_str(&req->reply, e->name);
    }
}

static void server__slowlog(resp_req *req)
{
    const resp_arg *sub = &req->argv[1];
    slowlog *sl = &req->rc->ra->slowlog;
    if (resp_format_arg_is(sub, "get")) {
        if (req->argc > 3) /* GET checks its own arity, with this text, in Redis */
            resp_req_errorf(req,
                            "ERR unknown subcommand or wrong number of arguments for '%.*s'. Try "
                            "SLOWLOG HELP.",
                            (int)sub->len, sub->ptr);
        else
            server__slowlog_get(req);
        return;
    }
    static const char *const no_args[] = {"len", "reset", "help"};
    for (size_t i = 0; i < sizeof(no_args) / sizeof(no_args[0]); i++) {
        if (!resp_format_arg_is(sub, no_args[i])) continue;
        if (req->argc != 2) {
            server__sub_arity(req, "slowlog", no_args[i]);
        } else if (i == 0) {
            resp_write_integer(&req->reply, (long long)slowlog_len(sl));
        } else if (i == 1) {
            slowlog_reset(sl);
            resp_req_ok(req);
        } else {
            resp_req_help(req, server__slowlog_help);
        }
        return;
    }
    server__unknown_subcommand(req, "SLOWLOG");
}

/* ---- the table ---------------------------------------------------------------------------- */

#define F RESP_CMD_FAST
#define A RESP_CMD_ADMIN
#define N RESP_CMD_NOSCRIPT
#define L RESP_CMD_LOADING
#define S RESP_CMD_STALE
#define U RESP_CMD_NO_AUTH

const resp_cmd resp_cmds_server[] = {
    {"ping", server__ping, -1, F | S | RESP_CMD_PUBSUB_CONTEXT, 0, 0, 0, "connection", "1.0.0",
     "O(1)", "Ping the server", "[message]"},
    {"echo", server__echo, 2, F | S | L, 0, 0, 0, "connection", "1.0.0", "O(1)",
     "Return the given string", "message"},
    {"hello", server__hello, -1, F | N | L | S | U | RESP_CMD_AT_EXEC, 0, 0, 0, "connection",
     "6.0.0", "O(1)", "Handshake: choose the protocol (2 or 3), authenticate, name the connection",
     "[protover [AUTH username password] [SETNAME clientname]]"},
    {"quit", server__quit, -1, F | N | L | S | U | RESP_CMD_TX_CONTROL | RESP_CMD_PUBSUB_CONTEXT, 0,
     0, 0, "connection", "1.0.0", "O(1)", "Close the connection once the earlier replies are sent",
     ""},
    {"shutdown", server__shutdown, -1, A | N | L | S | RESP_CMD_DANGEROUS | RESP_CMD_NO_MULTI, 0, 0,
     0, "server", "1.0.0", "O(N) when saving, where N is the total number of keys",
     "Stop the node as SIGTERM does (in-flight requests finish; durable writes are already on "
     "disk)",
     "[NOSAVE | SAVE] [NOW] [FORCE] [ABORT]"},
    {"reset", server__reset, 1, F | N | L | S | U | RESP_CMD_TX_CONTROL | RESP_CMD_PUBSUB_CONTEXT,
     0, 0, 0, "connection", "6.2.0", "O(1)",
     "Reset the connection: RESP2, no name, linearizable reads", ""},
    {"select", server__select, 2, F | L | S, 0, 0, 0, "connection", "1.0.0", "O(1)",
     "Select the database (cairn has only database 0)", "index"},
    {"auth", server__auth, -2, F | N | L | S | U | RESP_CMD_AT_EXEC, 0, 0, 0, "connection", "1.0.0",
     "O(N)", "Authenticate the connection", "[username] password"},
    {"client", server__client, -2, N | L | S, 0, 0, 0, "connection", "2.4.0", "O(1)",
     "Connection commands: ID, SETNAME, GETNAME, INFO, LIST, SETINFO", "subcommand [argument ...]"},
    {"readonly", server__readonly, 1, F | L | S, 0, 0, 0, "connection", "3.0.0", "O(1)",
     "Serve this connection's reads from the local node without a linearizability check", ""},
    {"readwrite", server__readwrite, 1, F | L | S, 0, 0, 0, "connection", "3.0.0", "O(1)",
     "Back to linearizable reads after READONLY", ""},
    {"command", server__command, -1, L | S, 0, 0, 0, "server", "2.8.13", "O(N)",
     "Describe the commands: COUNT, INFO, DOCS, LIST, GETKEYS", "[subcommand [argument ...]]"},
    {"info", server__info, -1, L | S, 0, 0, 0, "server", "1.0.0", "O(1)",
     "Server information and statistics", "[section ...]"},
    {"time", server__time, 1, F | L | S, 0, 0, 0, "server", "2.6.0", "O(1)",
     "Return the server time", ""},
    {"config", server__config, -2, A | N | L | S, 0, 0, 0, "server", "2.0.0", "O(N)",
     "Read and set the configuration: GET, SET, RESETSTAT", "subcommand [argument ...]"},
    {"slowlog", server__slowlog, -2, A | L | S, 0, 0, 0, "server", "2.2.12", "O(N)",
     "The commands that took longer than slowlog-log-slower-than: GET, LEN, RESET",
     "subcommand [argument ...]"},
    {"object", server__object, -2, RESP_CMD_READONLY | RESP_CMD_KEYSPACE, 2, 2, 1, "generic",
     "2.2.3", "O(1)", "Inspect a key's value: ENCODING, REFCOUNT, IDLETIME, FREQ",
     "subcommand [argument ...]"},
};
const size_t resp_cmds_server_count = sizeof(resp_cmds_server) / sizeof(resp_cmds_server[0]);
