/* rdb: see rdb.h. The opcodes are those of Redis' rdb.h. */
#include "kv/rdb.h"

#include <stdio.h>
#include <string.h>

#include "kv/dump_internal.h"
#include "util/buf.h"
#include "util/crc64.h"

enum {
    RDB_OP_FUNCTION2 = 245,    /* a library's code (Redis 7.0) */
    RDB_OP_FUNCTION_PRE = 246, /* the 7.0 release candidates' */
    RDB_OP_MODULE_AUX = 247,
    RDB_OP_IDLE = 248,
    RDB_OP_FREQ = 249,
    RDB_OP_AUX = 250,
    RDB_OP_RESIZEDB = 251,
    RDB_OP_EXPIRETIME_MS = 252,
    RDB_OP_EXPIRETIME = 253,
    RDB_OP_SELECTDB = 254,
    RDB_OP_EOF = 255,
};

#define RDB_HEADER 9 /* "REDIS" and four digits */

static uint64_t le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* The error of a reader that stopped, at its offset. */
/* A key's name for a message: at most 64 bytes of it. */
#define KEY_FMT "\"%.*s\""
#define KEY_ARG(b) (int)((b).len < 64 ? (b).len : 64), (b).data ? (b).data : ""

static int rdb__fail(const kv_dump_rd *r, const char *data, const char *what, char *err,
                     size_t errlen)
{
    const char *why = r->err == KV_DUMP_TOO_LARGE ? "a string unpacks past the size limit"
                                                  : "malformed or cut short";
    snprintf(err, errlen, "RDB file, offset %zu: %s: %s", (size_t)((const char *)r->p - data), what,
             why);
    return -1;
}

int kv_rdb_load(const char *data, size_t len, kv_store *into, int64_t now_ms,
                kv_rdb_library_fn on_library, void *ctx, kv_rdb_stats *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof(*st));
    if (len < RDB_HEADER || memcmp(data, "REDIS", 5) != 0) {
        snprintf(err, errlen, "not a Redis RDB file (it does not start with REDIS)");
        return -1;
    }
    unsigned version = 0;
    for (int i = 5; i < RDB_HEADER; i++) {
        if (data[i] < '0' || data[i] > '9') {
            snprintf(err, errlen, "not a Redis RDB file (no version after REDIS)");
            return -1;
        }
        version = version * 10 + (unsigned)(data[i] - '0');
    }
    st->version = version;
    if (version < 1 || version > KV_DUMP_RDB_VERSION_MAX) {
        snprintf(err, errlen, "RDB version %u: cairn reads versions 1 to %d (Redis up to 7.2)",
                 version, KV_DUMP_RDB_VERSION_MAX);
        return -1;
    }
    kv_dump_rd r = {.p = (const unsigned char *)data + RDB_HEADER,
                    .end = (const unsigned char *)data + len,
                    .max_string = UINT32_MAX};
    buf key, scratch;
    buf_init(&key);
    buf_init(&scratch);
    int64_t expire = 0;
    uint64_t db = 0;
    int rv = -1;
    for (;;) {
        const unsigned char *op;
        if (!kv_dump__bytes(&r, 1, &op)) {
            snprintf(err, errlen, "RDB file: it ends without its end marker (truncated?)");
            goto out;
        }
        const unsigned char *d;
        uint64_t a, b;
        kv_slice s1, s2;
        switch (op[0]) {
        case RDB_OP_EOF:
            if (version >= 5) {
                const char *at = (const char *)r.p;
                if (!kv_dump__bytes(&r, 8, &d)) {
                    snprintf(err, errlen, "RDB file: truncated in its checksum");
                    goto out;
                }
                uint64_t want = le(d, 8);
                if (want != 0 && crc64(0, data, (size_t)(at - data)) != want) {
                    snprintf(err, errlen, "RDB file: the checksum does not match (corrupt)");
                    goto out;
                }
            }
            if (r.p != r.end) {
                snprintf(err, errlen, "RDB file: %zu bytes after its end marker",
                         (size_t)(r.end - r.p));
                goto out;
            }
            rv = 0;
            goto out;
        case RDB_OP_SELECTDB:
            if (!kv_dump__len(&r, &db, NULL)) {
                rdb__fail(&r, data, "SELECTDB", err, errlen);
                goto out;
            }
            break;
        case RDB_OP_RESIZEDB:
            if (!kv_dump__len(&r, &a, NULL) || !kv_dump__len(&r, &b, NULL)) {
                rdb__fail(&r, data, "RESIZEDB", err, errlen);
                goto out;
            }
            /* the keys to come: the table sized once; a count that lies
             * gets no more than a key per 16 bytes left (smaller keys only
             * grow the table later) */
            if (db == 0) {
                uint64_t most = (uint64_t)(r.end - r.p) / 16;
                kv_keyspace_reserve(&into->ks, a < most ? a : most);
            }
            break;
        case RDB_OP_EXPIRETIME:
            if (!kv_dump__bytes(&r, 4, &d)) {
                rdb__fail(&r, data, "an expiry", err, errlen);
                goto out;
            }
            expire = (int64_t)(int32_t)le(d, 4) * 1000;
            break;
        case RDB_OP_EXPIRETIME_MS:
            if (!kv_dump__bytes(&r, 8, &d)) {
                rdb__fail(&r, data, "an expiry", err, errlen);
                goto out;
            }
            expire = (int64_t)le(d, 8);
            break;
        case RDB_OP_IDLE:
            if (!kv_dump__len(&r, &a, NULL)) {
                rdb__fail(&r, data, "an idle time", err, errlen);
                goto out;
            }
            break;
        case RDB_OP_FREQ:
            if (!kv_dump__bytes(&r, 1, &d)) {
                rdb__fail(&r, data, "a frequency", err, errlen);
                goto out;
            }
            break;
        case RDB_OP_AUX:
            if (!kv_dump__string(&r, &scratch, &s1)) {
                rdb__fail(&r, data, "an AUX field", err, errlen);
                goto out;
            }
            buf_reset(&key);
            buf_append(&key, s1.ptr, s1.len);
            if (!kv_dump__string(&r, &scratch, &s2)) {
                rdb__fail(&r, data, "an AUX field", err, errlen);
                goto out;
            }
            st->aux_fields++;
            if (key.len == 9 && memcmp(key.data, "redis-ver", 9) == 0)
                snprintf(st->redis_ver, sizeof(st->redis_ver), "%.*s", (int)s2.len, s2.ptr);
            break;
        case RDB_OP_MODULE_AUX:
            snprintf(err, errlen, "RDB file: it holds module data, which cairn cannot read");
            goto out;
        case RDB_OP_FUNCTION2:
            if (!on_library) {
                snprintf(err, errlen,
                         "RDB file: it holds Redis functions, which this reader "
                         "does not take");
                goto out;
            }
            if (!kv_dump__string(&r, &scratch, &s1)) {
                rdb__fail(&r, data, "a function library", err, errlen);
                goto out;
            }
            if (!on_library(ctx, s1)) goto out;
            st->libraries++;
            break;
        case RDB_OP_FUNCTION_PRE:
            snprintf(err, errlen,
                     "RDB file: it holds functions in the format of Redis 7.0's release "
                     "candidates, which cairn does not read (FUNCTION DUMP on Redis, FUNCTION "
                     "RESTORE on cairn)");
            goto out;
        default: {
            int type = op[0];
            if (!kv_dump__string(&r, &scratch, &s1)) {
                rdb__fail(&r, data, "a key's name", err, errlen);
                goto out;
            }
            buf_reset(&key);
            buf_append(&key, s1.ptr, s1.len);
            if (db != 0) {
                snprintf(err, errlen,
                         "RDB file: key " KEY_FMT " is in database %llu; cairn has one keyspace "
                         "(database 0): move it there first (MOVE or SWAPDB on Redis)",
                         KEY_ARG(key), (unsigned long long)db);
                goto out;
            }
            kv_entry value = {0}; /* outside the keyspace until whole */
            if (!kv_dump__rd_value(&r, &into->ks, &value, type)) {
                char what[160];
                snprintf(what, sizeof(what), "key " KEY_FMT " (value type %d)", KEY_ARG(key), type);
                rdb__fail(&r, data, what, err, errlen);
                goto out;
            }
            if (expire != 0 && expire <= now_ms) {
                kv_keyspace_reset_value(&into->ks, &value);
                st->expired++;
            } else if (kv_keyspace_find(&into->ks, key.data, key.len)) {
                kv_keyspace_reset_value(&into->ks, &value);
                snprintf(err, errlen, "RDB file: key " KEY_FMT " appears twice", KEY_ARG(key));
                goto out;
            } else {
                kv_entry *e = kv_keyspace_insert(&into->ks, key.data, key.len, NULL, 0);
                kv_keyspace_move_value(&into->ks, &value, e);
                kv_keyspace_set_expire(&into->ks, e, expire);
                e->create_rev = e->mod_rev = ++into->revision;
                e->version = 1;
                st->keys++;
            }
            expire = 0;
            break;
        }
        }
    }
out:
    buf_close(&key);
    buf_close(&scratch);
    return rv;
}
