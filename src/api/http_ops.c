/* http_ops: /healthz, /readyz, /metrics, /v1/status. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api/http_internal.h"
#include "obs/metrics.h"
#include "txlog/txlog.h"
#include "util/json_write.h"

static void http__status_json(http_req *req)
{
    api *a = req->a;
    replica_status_info st;
    replica_get_status(a->replica, &st);
    buf b;
    buf_init(&b);
    buf_printf(&b, "{\"id\":%" PRIu64 ",\"role\":\"%s\",\"term\":%" PRIu64 ",\"leader\":", st.id,
               st.role, st.term);
    if (st.leader_id)
        buf_printf(&b, "%" PRIu64, st.leader_id);
    else
        buf_append_str(&b, "null");
    buf_printf(&b,
               ",\"commit_index\":%" PRIu64 ",\"applied_index\":%" PRIu64 ",\"last_index\":%" PRIu64
               ",\"revision\":%" PRIu64 ",\"keys\":%" PRIu64 ",\"memory_bytes\":%" PRIu64
               ",\"data_bytes\":%zu,\"uptime_seconds\":%.3f"
               ",\"version\":\"%s\",\"persistence\":\"%s\",\"ready\":%s,\"snapshots\":%" PRIu64
               ",\"inflight\":%" PRIu64,
               st.commit_index, st.applied_index, st.last_index, a->store->revision,
               kv_keyspace_count(&a->store->ks), api_rss_bytes(), a->store->ks.mem_bytes,
               (double)(net_now_ms() - a->start_ms) / 1000.0, CAIRN_VERSION_STRING,
               a->cfg->persistence == PERSISTENCE_NONE ? "none" : "durable",
               st.ready ? "true" : "false", st.snapshots_taken, st.inflight);
    if (st.disk_free_bytes != UINT64_MAX && a->cfg->persistence != PERSISTENCE_NONE)
        buf_printf(&b, ",\"disk_free_bytes\":%" PRIu64 ",\"disk_low\":%s", st.disk_free_bytes,
                   st.disk_low ? "true" : "false");
    if (st.storage_errors) {
        buf_printf(&b, ",\"storage_errors\":%" PRIu64 ",\"storage_error\":", st.storage_errors);
        json_write_cstr(&b, st.storage_error);
    }
    if (a->txlog) {
        txlog_status ts;
        txlog_get_status(a->txlog, &ts);
        buf_printf(
            &b,
            ",\"txlog\":{\"shipping\":%s,\"connected\":%s,\"recorded\":%" PRIu64
            ",\"shipped\":%" PRIu64 ",\"lag\":%" PRIu64 ",\"gap\":%s,\"buffered_events\":%" PRIu64
            ",\"bases\":%" PRIu64 ",\"last_error\":",
            ts.leader ? "true" : "false", ts.connected ? "true" : "false", ts.recorded, ts.shipped,
            ts.lag, ts.gap ? "true" : "false", ts.buffered_events, ts.bases_total);
        json_write_string(&b, ts.last_error, strlen(ts.last_error));
        buf_append_str(&b, "}");
    }
    buf_append_str(&b, "}\n");
    http_respond(req, 200, "application/json", NULL, b.data, b.len);
    buf_close(&b);
}

void http_ops_handle(http_req *req)
{
    switch (req->route) {
    case ROUTE_HEALTHZ: {
        static const char ok[] = "{\"status\":\"ok\"}\n";
        http_respond(req, 200, "application/json", NULL, ok, sizeof(ok) - 1);
        break;
    }
    case ROUTE_READYZ: {
        replica_status_info st;
        replica_get_status(req->a->replica, &st);
        if (st.ready) {
            static const char ok[] = "{\"status\":\"ready\"}\n";
            http_respond(req, 200, "application/json", NULL, ok, sizeof(ok) - 1);
        } else {
            http_respond_error(req, 503, st.not_ready_reason, "Retry-After: 1\r\n");
        }
        break;
    }
    case ROUTE_METRICS: {
        buf b;
        buf_init(&b);
        metrics_render(&b);
        http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, b.data, b.len);
        buf_close(&b);
        break;
    }
    case ROUTE_STATUS:
        http__status_json(req);
        break;
    default:
        http_respond_error(req, 404, "no such route", NULL);
        break;
    }
}
