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
        char body[32];
        int n = snprintf(body, sizeof(body), "%" PRIu64, replica_applied_index(req->a->replica));
        http_respond(req, 200, "text/plain", NULL, body, (size_t)n);
    }
    http_req_complete(req);
}

void http_cluster_internal_read_index(http_req *req)
{
    req->rreq.cb = http__read_index_done;
    int st = replica_read_here(req->a->replica, &req->rreq);
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
