/* http_keys: /v1/key/{key} and /v1/keys (SPEC §2, docs/api.md). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api/http_internal.h"
#include "api/memory.h"
#include "kv/command.h"
#include "util/json_scan.h"
#include "util/json_write.h"
#include "util/strconv.h"

#define LIST_DEFAULT_LIMIT 1000
#define LIST_MAX_LIMIT 10000
#define TTL_MAX_SECONDS 1000000000ll

bool http_query_get(const char *query, size_t query_len, const char *name, buf *out)
{
    size_t name_len = strlen(name);
    const char *p = query, *end = query + query_len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        const char *kend = eq ? eq : stop;
        if ((size_t)(kend - p) == name_len && memcmp(p, name, name_len) == 0) {
            const char *v = eq ? eq + 1 : stop;
            buf_reset(out);
            buf_reserve(out, (size_t)(stop - v));
            long n = http_form_decode(v, (size_t)(stop - v), out->data);
            if (n < 0) return false;
            out->len = (size_t)n;
            out->data[out->len] = '\0';
            return true;
        }
        p = stop + 1;
    }
    return false;
}

/* Parse an entity tag holding a revision: "123" (quoted, as we send it),
 * W/"123" or a bare 123. */
static bool http__parse_etag(const char *v, size_t n, uint64_t *rev)
{
    if (n >= 2 && v[0] == 'W' && v[1] == '/') {
        v += 2;
        n -= 2;
    }
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        v++;
        n -= 2;
    }
    return strconv_parse_u64(v, n, rev);
}

/* Read consistency and min_revision; false after answering 400. */
static bool http__read_params(http_req *req, const char *query, size_t query_len)
{
    buf v;
    buf_init(&v);
    bool ok = true;
    req->consistency = REPLICA_READ_LINEARIZABLE;
    if (http_query_get(query, query_len, "consistency", &v)) {
        if (strcmp(v.data ? v.data : "", "stale") == 0)
            req->consistency = REPLICA_READ_STALE;
        else if (strcmp(v.data ? v.data : "", "linearizable") != 0)
            ok = false,
            http_respond_error(req, 400, "consistency must be linearizable or stale", NULL);
    }
    if (ok && http_query_get(query, query_len, "min_revision", &v) &&
        !strconv_parse_u64(v.data ? v.data : "", v.len, &req->min_revision)) {
        ok = false;
        http_respond_error(req, 400, "min_revision must be a non-negative integer", NULL);
    }
    buf_close(&v);
    return ok;
}

static void http__key_headers(buf *h, const kv_entry *e, uint64_t revision, int64_t now_ms)
{
    buf_printf(h, "ETag: \"%" PRIu64 "\"\r\nX-Cairn-Revision: %" PRIu64 "\r\n", e->mod_rev,
               revision);
    buf_printf(h,
               "X-Cairn-Create-Revision: %" PRIu64 "\r\nX-Cairn-Mod-Revision: %" PRIu64
               "\r\nX-Cairn-Version: %" PRIu64 "\r\n",
               e->create_rev, e->mod_rev, e->version);
    if (e->expire_ms) {
        int64_t left = (e->expire_ms - now_ms + 999) / 1000;
        buf_printf(h, "X-Cairn-TTL: %lld\r\n", (long long)(left > 0 ? left : 0));
    }
}

/* A read served while earlier writes were still in flight (the replica's
 * read_unsettled) whose answer hid an expired entry is read again once
 * they have been applied (replica_read_settle): true when it was. */
static bool http__read_again(http_req *req, replica_req *rr, uint64_t hidden_before)
{
    if (!rr->read_unsettled || req->a->store->hidden_expired == hidden_before) return false;
    int st = replica_read_settle(req->a->replica, rr);
    if (st != REPLICA_OK) {
        http_respond_replica_error(req, st);
        http_req_complete(req);
    }
    return true;
}

static void http__get_ready(replica_req *rr, int status)
{
    http_req *req = rr->data;
    if (status != REPLICA_OK) {
        http_respond_replica_error(req, status);
        http_req_complete(req);
        return;
    }
    kv_store *store = req->a->store;
    int64_t now = replica_req_read_ms(rr);
    uint64_t hidden = store->hidden_expired;
    kv_entry *e = kv_store_get(store, req->key.data, req->key.len, now);
    if (!e && http__read_again(req, rr, hidden)) return;
    if (e && memory_tracks_lru(req->a))
        memory_touch(e, memory_lru_clock()); /* HTTP reads count too */
    buf h;
    buf_init(&h);
    if (!e) {
        buf_printf(&h, "X-Cairn-Revision: %" PRIu64 "\r\n", store->revision);
        http_respond_error(req, 404, "no such key", h.data);
    } else if (e->type != KV_TYPE_STRING) {
        /* Redis' WRONGTYPE: the REST API reads and writes strings */
        buf_printf(&h, "X-Cairn-Revision: %" PRIu64 "\r\nX-Cairn-Type: %s\r\n", store->revision,
                   kv_type_name(e->type));
        http_respond_error(req, 409, "the key holds a value of another type (see X-Cairn-Type)",
                           h.data);
    } else {
        http__key_headers(&h, e, store->revision, now);
        if (req->has_if_none_match && req->if_none_match_rev == e->mod_rev)
            http_respond(req, 304, NULL, h.data, NULL, 0);
        else
            http_respond(req, 200, "application/octet-stream", h.data, e->value, e->value_len);
    }
    buf_close(&h);
    http_req_complete(req);
}

static void http__write_done(replica_req *rr, int status)
{
    http_req *req = rr->data;
    const kv_result *res = &rr->result;
    buf h;
    buf_init(&h);
    if (status == REPLICA_OK && res->replayed) buf_append_str(&h, "Idempotency-Replayed: true\r\n");
    if (status != REPLICA_OK) {
        http_respond_replica_error(req, status);
    } else if (res->status == KV_ERR_PRECONDITION) {
        buf_printf(&h, "X-Cairn-Revision: %" PRIu64 "\r\n", res->revision);
        if (res->key_exists) buf_printf(&h, "ETag: \"%" PRIu64 "\"\r\n", res->mod_rev);
        http_respond_error(req, 412, "precondition failed", h.data);
    } else if (res->status != KV_OK) {
        http_respond_error(req, 500, "unexpected state machine error", NULL);
    } else if (req->method == HTTP_PUT) {
        buf_printf(&h, "ETag: \"%" PRIu64 "\"\r\nX-Cairn-Revision: %" PRIu64 "\r\n", res->mod_rev,
                   res->revision);
        http_respond(req, 201, NULL, h.data, NULL, 0);
    } else {
        buf_printf(&h, "X-Cairn-Revision: %" PRIu64 "\r\n", res->revision);
        http_respond(req, 200, NULL, h.data, NULL, 0);
    }
    buf_close(&h);
    http_req_complete(req);
}

static void http__propose(http_req *req, kv_command *cmd)
{
    req->rreq.cb = http__write_done;
    int st = replica_propose(req->a->replica, &req->rreq, cmd);
    if (st != REPLICA_OK) {
        http_respond_replica_error(req, st);
        http_req_complete(req);
    }
}

/* Conditional-write headers; false after answering 400. */
static bool http__write_conditions(http_req *req, const http_request *hr, kv_command *cmd)
{
    const http_header *im = http_find_header(hr, "If-Match");
    const http_header *inm = http_find_header(hr, "If-None-Match");
    if (im && inm) {
        http_respond_error(req, 400, "If-Match and If-None-Match together are not supported", NULL);
        return false;
    }
    if (im) {
        uint64_t rev;
        if (im->value_len == 1 && im->value[0] == '*') {
            cmd->flags |= KV_FLAG_XX;
        } else if (http__parse_etag(im->value, im->value_len, &rev) && rev > 0) {
            cmd->flags |= KV_FLAG_IF_REV;
            cmd->a = (int64_t)rev;
        } else {
            http_respond_error(req, 400, "If-Match must be * or a revision in quotes", NULL);
            return false;
        }
    }
    if (inm) {
        if (!(inm->value_len == 1 && inm->value[0] == '*') || hr->method != HTTP_PUT) {
            http_respond_error(req, 400, "only If-None-Match: * is supported on writes", NULL);
            return false;
        }
        cmd->flags |= KV_FLAG_NX;
    }
    return true;
}

void http_keys_handle_key(http_req *req, const http_request *hr, const char *query,
                          size_t query_len, const char *body, size_t body_len)
{
    api *a = req->a;
    if (hr->method != HTTP_GET && hr->method != HTTP_HEAD && hr->method != HTTP_PUT &&
        hr->method != HTTP_DELETE) {
        http_respond_error(req, 405, "method not allowed", "Allow: GET, HEAD, PUT, DELETE\r\n");
        return;
    }
    const char *q = memchr(hr->target, '?', hr->target_len);
    size_t path_len = q ? (size_t)(q - hr->target) : hr->target_len;
    const char *raw = hr->target + 8;
    size_t raw_len = path_len > 8 ? path_len - 8 : 0;
    buf_reserve(&req->key, raw_len);
    long n = http_percent_decode(raw, raw_len, req->key.data);
    if (n < 0) {
        http_respond_error(req, 400, "malformed percent-encoding in key", NULL);
        return;
    }
    req->key.len = (size_t)n;
    req->key.data[n] = '\0';
    if (n == 0) {
        http_respond_error(req, 400, "empty key", NULL);
        return;
    }
    if ((uint64_t)n > a->cfg->max_key_bytes) {
        http_respond_error(req, 414, "key too long", NULL);
        return;
    }
    bool write = hr->method == HTTP_PUT || hr->method == HTTP_DELETE;
    if (!http_auth_may_access(req, req->key.data, req->key.len, write)) return;

    if (hr->method == HTTP_GET || hr->method == HTTP_HEAD) {
        if (!http__read_params(req, query, query_len)) return;
        const http_header *inm = http_find_header(hr, "If-None-Match");
        if (inm) {
            if (!http__parse_etag(inm->value, inm->value_len, &req->if_none_match_rev)) {
                http_respond_error(req, 400, "If-None-Match must be a revision in quotes", NULL);
                return;
            }
            req->has_if_none_match = true;
        }
        req->rreq.cb = http__get_ready;
        int st = replica_read(a->replica, &req->rreq, req->consistency, req->min_revision);
        if (st != REPLICA_OK) http_respond_replica_error(req, st);
        return;
    }

    kv_slice args[3] = {{req->key.data, req->key.len}, {body, body_len}, {NULL, 0}};
    kv_command cmd = {.args = args, .now_ms = replica_now_ms()};
    if (!http__write_conditions(req, hr, &cmd)) return;
    const http_header *idem = http_find_header(hr, "Idempotency-Key");
    if (idem && (idem->value_len == 0 || idem->value_len > KV_DEDUP_KEY_MAX)) {
        http_respond_error(req, 400, "Idempotency-Key must be 1 to 128 bytes", NULL);
        return;
    }
    if (hr->method == HTTP_PUT) {
        if (body_len > a->cfg->max_value_bytes) {
            http_respond_error(req, 413, "value too large", NULL);
            return;
        }
        buf v;
        buf_init(&v);
        if (http_query_get(query, query_len, "ttl", &v)) {
            int64_t ttl;
            if (!strconv_parse_i64(v.data ? v.data : "", v.len, &ttl) || ttl <= 0 ||
                ttl > TTL_MAX_SECONDS) {
                buf_close(&v);
                http_respond_error(req, 400, "ttl must be an integer number of seconds, 1 to 1e9",
                                   NULL);
                return;
            }
            cmd.expire_ms = cmd.now_ms + ttl * 1000;
        }
        buf_close(&v);
        if (memory_admit_write(a) != MEMORY_OK) {
            http_respond_error(req, 507, "memory budget reached (--maxmemory)", NULL);
            return;
        }
        cmd.op = KV_OP_PUT;
        cmd.nargs = 2;
    } else {
        cmd.op = KV_OP_DEL;
        cmd.nargs = 1;
    }
    if (idem) {
        /* the idempotency key travels as the last argument */
        args[cmd.nargs].ptr = idem->value;
        args[cmd.nargs].len = idem->value_len;
        cmd.nargs++;
        cmd.flags |= KV_FLAG_IDEMPOTENT;
    }
    http__propose(req, &cmd);
}

static void http__list_ready(replica_req *rr, int status)
{
    http_req *req = rr->data;
    if (status != REPLICA_OK) {
        http_respond_replica_error(req, status);
        http_req_complete(req);
        return;
    }
    kv_store *store = req->a->store;
    int64_t now = replica_req_read_ms(rr);
    uint64_t hidden = store->hidden_expired;
    const char *prefix = req->key.data ? req->key.data : "";
    size_t plen = req->key.len;
    kv_entry *e;
    if (req->cursor.len &&
        (plen == 0 || memcmp(req->cursor.data, prefix, plen) >= 0 || req->cursor.len < plen))
        e = kv_keyspace_seek(&store->ks, req->cursor.data, req->cursor.len, true);
    else
        e = kv_keyspace_seek(&store->ks, prefix, plen, false);

    buf body, h;
    buf_init(&body);
    buf_init(&h);
    buf_printf(&body, "{\"revision\":%" PRIu64 ",\"keys\":[", store->revision);
    uint64_t count = 0;
    const kv_entry *last = NULL;
    bool more = false;
    for (; e; e = kv_keyspace_next(e)) {
        const char *k = kv_entry_key(e);
        if (e->key_len < plen || (plen && memcmp(k, prefix, plen) != 0)) break;
        if (kv_store_hides(store, e, now)) continue;
        if (count == req->limit) {
            more = true;
            break;
        }
        if (count) buf_append_char(&body, ',');
        buf_append_str(&body, "{");
        if (utf8_valid(k, e->key_len)) {
            buf_append_str(&body, "\"key\":");
            json_write_string(&body, k, e->key_len);
            buf_append_char(&body, ',');
        }
        buf_append_str(&body, "\"key_b64\":\"");
        base64url_encode(&body, k, e->key_len);
        buf_printf(&body,
                   "\",\"create_revision\":%" PRIu64 ",\"mod_revision\":%" PRIu64
                   ",\"version\":%" PRIu64,
                   e->create_rev, e->mod_rev, e->version);
        if (e->expire_ms) {
            int64_t left = (e->expire_ms - now + 999) / 1000;
            buf_printf(&body, ",\"ttl\":%lld", (long long)(left > 0 ? left : 0));
        }
        if (e->type != KV_TYPE_STRING) {
            buf_printf(&body, ",\"type\":\"%s\"", kv_type_name(e->type));
        } else if (req->values) {
            if (utf8_valid(e->value, e->value_len)) {
                buf_append_str(&body, ",\"value\":");
                json_write_string(&body, e->value ? e->value : "", e->value_len);
            }
            buf_append_str(&body, ",\"value_b64\":\"");
            base64url_encode(&body, e->value, e->value_len);
            buf_append_char(&body, '"');
        }
        buf_append_char(&body, '}');
        last = e;
        count++;
    }
    if (http__read_again(req, rr, hidden)) {
        buf_close(&body);
        buf_close(&h);
        return;
    }
    buf_printf(&body, "],\"count\":%" PRIu64 ",\"more\":%s,\"next_cursor\":", count,
               more ? "true" : "false");
    buf_printf(&h, "X-Cairn-Revision: %" PRIu64 "\r\n", store->revision);
    if (more && last) {
        buf cur;
        buf_init(&cur);
        base64url_encode(&cur, kv_entry_key(last), last->key_len);
        buf_printf(&body, "\"%s\"", cur.data);
        buf_append_str(&h, "Link: </v1/keys?prefix=");
        for (size_t i = 0; i < plen; i++) buf_printf(&h, "%%%02X", (unsigned char)prefix[i]);
        buf_printf(&h, "&limit=%" PRIu64 "&cursor=%s%s>; rel=\"next\"\r\n", req->limit, cur.data,
                   req->values ? "&values=true" : "");
        buf_close(&cur);
    } else {
        buf_append_str(&body, "null");
    }
    buf_append_str(&body, "}\n");
    http_respond(req, 200, "application/json", h.data, body.data, body.len);
    buf_close(&body);
    buf_close(&h);
    http_req_complete(req);
}

void http_keys_handle_list(http_req *req, const http_request *hr, const char *query,
                           size_t query_len)
{
    (void)hr;
    if (!http__read_params(req, query, query_len)) return;
    buf v;
    buf_init(&v);
    http_query_get(query, query_len, "prefix", &req->key);
    if (!http_auth_may_access(req, req->key.data, req->key.len, false)) return;
    req->limit = LIST_DEFAULT_LIMIT;
    if (http_query_get(query, query_len, "limit", &v) &&
        (!strconv_parse_u64(v.data ? v.data : "", v.len, &req->limit) || req->limit == 0 ||
         req->limit > LIST_MAX_LIMIT)) {
        buf_close(&v);
        http_respond_error(req, 400, "limit must be an integer from 1 to 10000", NULL);
        return;
    }
    if (http_query_get(query, query_len, "values", &v))
        req->values = v.len == 4 && memcmp(v.data, "true", 4) == 0;
    if (http_query_get(query, query_len, "cursor", &v) && v.len &&
        json_scan_base64url_decode(v.data, v.len, &req->cursor) != 0) {
        buf_close(&v);
        http_respond_error(req, 400, "cursor is not a valid cursor", NULL);
        return;
    }
    buf_close(&v);
    req->rreq.cb = http__list_ready;
    int st = replica_read(req->a->replica, &req->rreq, req->consistency, req->min_revision);
    if (st != REPLICA_OK) http_respond_replica_error(req, st);
}
