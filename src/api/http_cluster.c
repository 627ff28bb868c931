/* http_cluster: /v1/cluster and the internal endpoints that followers use
 * to forward writes and read-index requests to the leader. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/http_internal.h"
#include "kv/command.h"
#include "util/alloc.h"
#include "util/json_write.h"

#define MAX_MEMBERS 64

static void http__internal_error(http_req *req, int st)
{
    /* 421: this node is not the leader and did nothing (safe to retry);
     * 503 with the replica status in the body: it tried and failed */
    if (st == REPLICA_ERR_NOT_LEADER) {
        http_respond_error(req, 421, "not the leader", NULL);
        return;
    }
    char body[16];
    int n = snprintf(body, sizeof(body), "%d", st);
    http_respond(req, 503, "text/plain", NULL, body, (size_t)n);
}

static void http__propose_done(replica_req *rr, int status)
{
    http_req *req = rr->data;
    if (status != REPLICA_OK) {
        http__internal_error(req, status);
    } else {
        buf b;
        buf_init(&b);
        kv_result_encode(&rr->result, &b);
        http_respond(req, 200, "application/octet-stream", NULL, b.data, b.len);
        buf_close(&b);
    }
    http_req_complete(req);
}

void http_cluster_internal_propose(http_req *req, const char *body, size_t len)
{
    kv_command cmd;
    kv_slice small[16];
    kv_slice *args = small;
    uint32_t need = 0;
    const char *why = NULL;
    int rv = kv_command_decode(body, len, &cmd, args, 16, &need, &why);
    if (rv == -2) {
        args = xmalloc(need * sizeof(kv_slice));
        rv = kv_command_decode(body, len, &cmd, args, need, &need, &why);
    }
    if (rv != 0) {
        http_respond_error(req, 400, why ? why : "malformed command", NULL);
    } else {
        req->rreq.cb = http__propose_done;
        int st = replica_propose_here(req->a->replica, &req->rreq, &cmd);
        if (st != REPLICA_OK) http__internal_error(req, st);
    }
    if (args != small) free(args);
}

static void http__read_index_done(replica_req *rr, int status)
{
    http_req *req = rr->data;
    if (status != REPLICA_OK) {
        http__internal_error(req, status);
    } else {
        char body[64];
        int n = replica_read_index_answer(rr, body, sizeof(body));
        http_respond(req, 200, "text/plain", NULL, body, (size_t)n);
    }
    http_req_complete(req);
}

void http_cluster_internal_read_index(http_req *req)
{
    req->rreq.cb = http__read_index_done;
    int st = replica_read_index(req->a->replica, &req->rreq);
    if (st != REPLICA_OK) http__internal_error(req, st);
}

void http_cluster_list(http_req *req)
{
    api *a = req->a;
    replica_member_info m[MAX_MEMBERS];
    size_t n = replica_members(a->replica, m, MAX_MEMBERS);
    replica_status_info st;
    replica_get_status(a->replica, &st);
    buf b;
    buf_init(&b);
    buf_printf(&b, "{\"id\":%" PRIu64 ",\"term\":%" PRIu64 ",\"leader\":", st.id, st.term);
    if (st.leader_id)
        buf_printf(&b, "%" PRIu64, st.leader_id);
    else
        buf_append_str(&b, "null");
    buf_append_str(&b, ",\"members\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) buf_append_char(&b, ',');
        buf_printf(&b, "{\"id\":%" PRIu64 ",\"peer\":", m[i].id);
        json_write_cstr(&b, m[i].peer);
        buf_append_str(&b, ",\"http\":");
        json_write_cstr(&b, m[i].http);
        buf_append_str(&b, ",\"resp\":");
        json_write_cstr(&b, m[i].resp);
        buf_printf(&b, ",\"role\":\"%s\",\"voter\":%s,\"leader\":%s", m[i].role,
                   strcmp(m[i].role, "voter") == 0 ? "true" : "false",
                   m[i].leader ? "true" : "false");
        if (m[i].has_match) buf_printf(&b, ",\"match_index\":%" PRIu64, m[i].match_index);
        if (m[i].id == st.id) buf_printf(&b, ",\"applied_index\":%" PRIu64, st.applied_index);
        buf_append_char(&b, '}');
    }
    buf_append_str(&b, "]}\n");
    http_respond(req, 200, "application/json", NULL, b.data, b.len);
    buf_close(&b);
}

/* ---- membership and leadership (SPEC §5) ---------------------------------- */

#include <raft.h>

#include "util/json_scan.h"
#include "util/strconv.h"

static int http__raft_status(int rv)
{
    switch (rv) {
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
    case RAFT_CANTCHANGE:
        return 409;
    case RAFT_BADID:
    case RAFT_NOTFOUND:
        return 404;
    case RAFT_NOTLEADER:
    case RAFT_NOCONNECTION:
    case RAFT_LEADERSHIPLOST:
        return 503;
    default:
        return 500;
    }
}

static void http__change_done(void *ctx, int status, const char *message)
{
    http_req *req = ctx;
    if (http_req_admin_return(req)) return;
    if (status == 0) {
        static const char ok[] = "{\"ok\":true}\n";
        http_respond(req, 200, "application/json", NULL, ok, sizeof(ok) - 1);
    } else {
        http_respond_error(req, http__raft_status(status), message, NULL);
    }
    http_req_complete(req);
}

static void http__relay_done(void *ctx, int http_status, const char *body, size_t len)
{
    http_req *req = ctx;
    if (http_req_admin_return(req)) return;
    if (http_status == 0)
        http_respond_error(req, 503, "leader not reachable", "Retry-After: 1\r\n");
    else
        http_respond(req, http_status, "application/json", NULL, body, len);
    http_req_complete(req);
}

/* Followers relay admin requests to the leader unchanged. */
static bool http__relay_if_follower(http_req *req, const char *path, const char *body, size_t len)
{
    replica *r = req->a->replica;
    if (replica_is_leader(r)) return false;
    if (req->forwarded) { /* never relay twice: the sender retries */
        http_respond_error(req, 421, "not the leader", NULL);
        return true;
    }
    req->admin_waiting = true;
    int st = replica_forward_raw(r, path, body, len, http__relay_done, req);
    if (st != REPLICA_OK) {
        req->admin_waiting = false;
        http_respond_error(req, 503, "no leader", "Retry-After: 1\r\n");
    }
    return true;
}

static bool http__json_u64(const json_value *root, const char *name, uint64_t *out)
{
    json_value v;
    int64_t i;
    if (json_scan_get(root, name, &v) != 0 || json_scan_i64(&v, &i) != 0 || i <= 0) return false;
    *out = (uint64_t)i;
    return true;
}

void http_cluster_member_add(http_req *req, const char *body, size_t len)
{
    if (http__relay_if_follower(req, "/v1/cluster/members", body, len)) return;
    json_value root, v;
    uint64_t id;
    buf peer;
    buf_init(&peer);
    if (json_scan_parse(body, len, &root) != 0 || !http__json_u64(&root, "id", &id) ||
        json_scan_get(&root, "peer", &v) != 0 || json_scan_string(&v, &peer) != 0 || !peer.len ||
        !memchr(peer.data, ':', peer.len)) {
        buf_close(&peer);
        http_respond_error(req, 400, "body must be {\"id\": N, \"peer\": \"host:port\"}", NULL);
        return;
    }
    req->admin_waiting = true;
    int rv = replica_member_add(req->a->replica, id, peer.data, http__change_done, req);
    buf_close(&peer);
    if (rv != 0) req->admin_waiting = false;
    if (rv != 0) http_respond_error(req, http__raft_status(rv), raft_strerror(rv), NULL);
}

/* Removing the leader: libraft 0.15 keeps a leader that removed itself in
 * charge of a configuration it is not part of, so hand leadership away
 * first, then ask the new leader to do the removal. */
typedef struct remove_self {
    http_req *req;
    char path[96];
} remove_self;

static void http__remove_self_transferred(void *ctx, int status, const char *message)
{
    remove_self *rs = ctx;
    http_req *req = rs->req;
    if (req->orphaned) { /* the client went away: the removal is not asked for */
        http_req_admin_return(req);
    } else if (status != 0 || replica_forward_raw(req->a->replica, rs->path, NULL, 0,
                                                  http__relay_done, req) != 0) {
        req->admin_waiting = false;
        http_respond_error(req, 503, status ? message : "no new leader yet", "Retry-After: 1\r\n");
        http_req_complete(req);
    }
    free(rs);
}

void http_cluster_member_remove(http_req *req, const char *id_text, size_t id_len)
{
    char path[96];
    snprintf(path, sizeof(path), "/internal/v1/remove/%.*s", (int)(id_len < 40 ? id_len : 40),
             id_text);
    uint64_t id;
    if (!strconv_parse_u64(id_text, id_len, &id) || id == 0) {
        http_respond_error(req, 400, "member id must be a positive integer", NULL);
        return;
    }
    if (http__relay_if_follower(req, path, NULL, 0)) return;
    replica *r = req->a->replica;
    if (id == replica_id(r)) {
        remove_self *rs = xcalloc(1, sizeof(*rs));
        rs->req = req;
        snprintf(rs->path, sizeof(rs->path), "%s", path);
        req->admin_waiting = true;
        int rv = replica_transfer_leadership(r, 0, http__remove_self_transferred, rs);
        if (rv != 0) {
            req->admin_waiting = false;
            free(rs);
            http_respond_error(req, http__raft_status(rv), raft_strerror(rv), NULL);
        }
        return;
    }
    req->admin_waiting = true;
    int rv = replica_member_remove(r, id, http__change_done, req);
    if (rv != 0) req->admin_waiting = false;
    if (rv != 0) http_respond_error(req, http__raft_status(rv), raft_strerror(rv), NULL);
}

void http_cluster_transfer(http_req *req, const char *body, size_t len)
{
    if (http__relay_if_follower(req, "/v1/cluster/leader", body, len)) return;
    json_value root;
    uint64_t id = 0;
    if (len && (json_scan_parse(body, len, &root) != 0 || !http__json_u64(&root, "id", &id))) {
        http_respond_error(req, 400, "body must be {\"id\": N}", NULL);
        return;
    }
    req->admin_waiting = true;
    int rv = replica_transfer_leadership(req->a->replica, id, http__change_done, req);
    if (rv != 0) req->admin_waiting = false;
    if (rv != 0) http_respond_error(req, http__raft_status(rv), raft_strerror(rv), NULL);
}
