#include "kv/store.h"

#include "kv/bitops.h"
#include "kv/dump.h"
#include "kv/geo.h"
#include "kv/hash.h"
#include "kv/hll.h"
#include "kv/list.h"
#include "kv/set.h"
#include "kv/sort.h"
#include "kv/stream.h"
#include "kv/stream_group.h"
#include "kv/transaction.h"
#include "kv/zset.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/clock.h"
#include "util/strconv.h"

void kv_store_init(kv_store *s, uint64_t seed)
{
    memset(s, 0, sizeof(*s));
    kv_keyspace_init(&s->ks, seed);
    buf_init(&s->scratch);
    kv_dedup_init(&s->dedup, seed);
    kv_functions_init(&s->functions);
}

void kv_store_close(kv_store *s)
{
    kv_keyspace_close(&s->ks);
    buf_close(&s->scratch);
    kv_dedup_close(&s->dedup);
    kv_functions_close(&s->functions);
    free(s->tx_args);
    s->tx_args = NULL;
    s->tx_args_cap = 0;
}

void kv_store_replace(kv_store *s, kv_keyspace *ks, uint64_t revision)
{
    kv_keyspace_drop(&s->ks);
    s->ks = *ks;
    s->revision = revision;
    if (s->on_notify) {
        kv_change c = {.revision = revision, .kind = KV_CHANGE_RESET};
        s->on_notify(s->on_notify_ctx, &c);
    }
}

kv_entry *kv_store_get(kv_store *s, const char *key, size_t key_len, int64_t now_ms)
{
    kv_entry *e = kv_keyspace_find(&s->ks, key, key_len);
    if (e && kv_store_hides(s, e, now_ms)) return NULL;
    return e;
}

bool kv_store_hides(kv_store *s, const kv_entry *e, int64_t now_ms)
{
    if (!kv_entry_expired(e, now_ms)) return false;
    s->hidden_expired++;
    return true;
}

/* The live entry for key at the command's time; an expired one is removed
 * here, identically on every node, and does not count as a change. */
/* An expired key goes: told to on_notify only (keyspace notifications'
 * "expired"); the transaction log had its expiry with it. */
static void store__reclaim(kv_store *s, const kv_command *cmd, kv_slice key)
{
    kv_keyspace_delete(&s->ks, key.ptr, key.len);
    s->expired_keys++;
    if (!s->on_notify) return;
    kv_change c = {.revision = s->revision,
                   .kind = KV_CHANGE_EXPIRED,
                   .key = key.ptr,
                   .key_len = key.len,
                   .now_ms = cmd->now_ms,
                   .cmd = cmd};
    s->on_notify(s->on_notify_ctx, &c);
}

static kv_entry *store__live(kv_store *s, const kv_command *cmd, kv_slice key)
{
    kv_entry *e = kv_keyspace_find(&s->ks, key.ptr, key.len);
    if (e && kv_entry_expired(e, cmd->now_ms)) {
        store__reclaim(s, cmd, key);
        return NULL;
    }
    return e;
}

/* String commands refuse a key of another type, as Redis does. */
static bool store__wrongtype(kv_result *res, const kv_entry *e)
{
    if (!e || e->type == KV_TYPE_STRING) return false;
    res->status = KV_ERR_WRONGTYPE;
    return true;
}

static void store__return_value(kv_store *s, kv_result *res, const kv_entry *e)
{
    buf_reset(&s->scratch);
    if (e) buf_append(&s->scratch, e->value, e->value_len);
    res->has_value = e != NULL;
    res->value = s->scratch.data ? s->scratch.data : "";
    res->value_len = e ? e->value_len : 0;
}

static void store__describe(kv_result *res, const kv_entry *e)
{
    res->key_exists = e != NULL;
    if (!e) return;
    res->create_rev = e->create_rev;
    res->mod_rev = e->mod_rev;
    res->version = e->version;
    res->expire_ms = e->expire_ms;
}

/* A change to report; consumer_created: a stream command made a consumer
 * (its xgroup-createconsumer notification). */
static void store__changed_as(kv_store *s, const kv_command *cmd, kv_change_kind kind,
                              const char *key, size_t key_len, const kv_entry *e, uint64_t rev,
                              bool consumer_created)
{
    if (!s->on_change && !s->on_notify) return;
    kv_change c = {.revision = rev,
                   .kind = kind,
                   .key = key,
                   .key_len = key_len,
                   .now_ms = cmd->now_ms,
                   .cmd = cmd,
                   .consumer_created = consumer_created};
    if (e) {
        c.created = e->create_rev == rev;
        c.type = e->type;
        if (e->type == KV_TYPE_STRING) {
            c.value = e->value;
            c.value_len = e->value_len;
        }
        c.expire_ms = e->expire_ms;
    }
    if (s->on_change) s->on_change(s->on_change_ctx, &c);
    if (s->on_notify) s->on_notify(s->on_notify_ctx, &c);
}

static void store__changed(kv_store *s, const kv_command *cmd, kv_change_kind kind, const char *key,
                           size_t key_len, const kv_entry *e, uint64_t rev)
{
    store__changed_as(s, cmd, kind, key, key_len, e, rev, false);
}

/* e's current value and expiry (e->mod_rev is the change's revision). */
static void store__changed_put(kv_store *s, const kv_command *cmd, const kv_entry *e)
{
    store__changed(s, cmd, KV_CHANGE_PUT, kv_entry_key(e), e->key_len, e, e->mod_rev);
}

/* Record a write to e (existing) or create it, at the next revision. */
static kv_entry *store__write(kv_store *s, kv_entry *e, kv_slice key, const char *value,
                              size_t value_len, uint64_t rev)
{
    if (e) {
        if (e->type != KV_TYPE_STRING)
            kv_keyspace_reset_value(&s->ks, e); /* SET replaces any type */
        kv_keyspace_set_value(&s->ks, e, value, value_len);
        e->version++;
    } else {
        e = kv_keyspace_insert(&s->ks, key.ptr, key.len, value, value_len);
        e->create_rev = rev;
        e->version = 1;
    }
    e->mod_rev = rev;
    e->encoding = KV_ENC_RAW; /* stored whole: encoded by its content */
    return e;
}

static void store__put(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 2) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_slice key = cmd->args[0], val = cmd->args[1];
    kv_entry *e = store__live(s, cmd, key);
    if ((cmd->flags & KV_FLAG_GET) && store__wrongtype(res, e)) return;
    if (cmd->flags & KV_FLAG_GET) store__return_value(s, res, e);
    bool ok = true;
    if (cmd->flags & KV_FLAG_IF_REV)
        ok = cmd->a == 0 ? e == NULL : (e && e->mod_rev == (uint64_t)cmd->a);
    if ((cmd->flags & KV_FLAG_NX) && e) ok = false;
    if ((cmd->flags & KV_FLAG_XX) && !e) ok = false;
    if (!ok) {
        res->status = KV_ERR_PRECONDITION;
        store__describe(res, e);
        return;
    }
    uint64_t rev = ++s->revision;
    e = store__write(s, e, key, val.ptr, val.len, rev);
    if (!(cmd->flags & KV_FLAG_KEEPTTL)) kv_keyspace_set_expire(&s->ks, e, cmd->expire_ms);
    store__changed_put(s, cmd, e);
    store__describe(res, e);
}

static void store__del(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs == 0) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    if (cmd->flags & (KV_FLAG_GET | KV_FLAG_IF_REV | KV_FLAG_XX)) {
        kv_entry *e = store__live(s, cmd, cmd->args[0]);
        if ((cmd->flags & KV_FLAG_GET) && store__wrongtype(res, e)) return;
        if (cmd->flags & KV_FLAG_GET) store__return_value(s, res, e);
        /* as for PUT: a == 0 means "must be absent"; XX: must exist */
        bool rev_ok = cmd->a == 0 ? e == NULL : (e && e->mod_rev == (uint64_t)cmd->a);
        if (((cmd->flags & KV_FLAG_IF_REV) && !rev_ok) || ((cmd->flags & KV_FLAG_XX) && !e)) {
            res->status = KV_ERR_PRECONDITION;
            store__describe(res, e);
            return;
        }
    }
    int64_t n = 0;
    uint64_t rev = s->revision + 1; /* taken only if something is deleted */
    for (uint32_t i = 0; i < cmd->nargs; i++) {
        if (store__live(s, cmd, cmd->args[i]) &&
            kv_keyspace_delete(&s->ks, cmd->args[i].ptr, cmd->args[i].len)) {
            n++;
            store__changed(s, cmd, KV_CHANGE_DELETE, cmd->args[i].ptr, cmd->args[i].len, NULL, rev);
        }
    }
    if (n) s->revision = rev;
    res->integer = n;
}

static void store__mset(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs == 0 || cmd->nargs % 2) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    if (cmd->flags & KV_FLAG_NX) {
        for (uint32_t i = 0; i < cmd->nargs; i += 2) {
            if (store__live(s, cmd, cmd->args[i])) {
                res->integer = 0;
                return;
            }
        }
    }
    uint64_t rev = ++s->revision;
    for (uint32_t i = 0; i < cmd->nargs; i += 2) {
        kv_entry *e = store__live(s, cmd, cmd->args[i]);
        e = store__write(s, e, cmd->args[i], cmd->args[i + 1].ptr, cmd->args[i + 1].len, rev);
        kv_keyspace_set_expire(&s->ks, e, 0);
        store__changed_put(s, cmd, e);
    }
    res->integer = 1;
}

/* INCRBY's arithmetic on a value (NULL: absent, counts as 0), shared by
 * strings and hash fields: the new value in *next and as text in tmp. */
static kv_status store__add_integer(const kv_slice *cur, int64_t delta, int64_t *next, char tmp[24],
                                    size_t *n)
{
    int64_t v = 0;
    if (cur && !strconv_parse_i64(cur->ptr, cur->len, &v)) return KV_ERR_NOT_INTEGER;
    if (__builtin_add_overflow(v, delta, next)) return KV_ERR_OVERFLOW;
    *n = (size_t)snprintf(tmp, 24, "%lld", (long long)*next);
    return KV_OK;
}

/* INCRBYFLOAT's, in long double, printed as Redis prints it. */
#define STORE_FLOAT_TEXT 5200
static kv_status store__add_float(const kv_slice *cur, kv_slice incr_text,
                                  char tmp[STORE_FLOAT_TEXT], size_t *n)
{
    long double v = 0, incr;
    if ((cur && !strconv_parse_ld(cur->ptr, cur->len, &v)) ||
        !strconv_parse_ld(incr_text.ptr, incr_text.len, &incr))
        return KV_ERR_NOT_FLOAT;
    long double next = v + incr;
    if (isnan(next) || isinf(next)) return KV_ERR_NAN_OR_INF;
    *n = strconv_format_ld(next, tmp, STORE_FLOAT_TEXT);
    return KV_OK;
}

static void store__incr(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 1) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__live(s, cmd, cmd->args[0]);
    if (store__wrongtype(res, e)) return;
    kv_slice cur = {e ? e->value : NULL, e ? e->value_len : 0};
    int64_t next;
    char tmp[24];
    size_t n;
    res->status = store__add_integer(e ? &cur : NULL, cmd->a, &next, tmp, &n);
    if (res->status) return;
    e = store__write(s, e, cmd->args[0], tmp, n, ++s->revision);
    store__changed_put(s, cmd, e);
    res->integer = next;
    store__describe(res, e);
}

static void store__incrfloat(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 2) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__live(s, cmd, cmd->args[0]);
    if (store__wrongtype(res, e)) return;
    kv_slice cur = {e ? e->value : NULL, e ? e->value_len : 0};
    char tmp[STORE_FLOAT_TEXT];
    size_t n;
    res->status = store__add_float(e ? &cur : NULL, cmd->args[1], tmp, &n);
    if (res->status) return;
    e = store__write(s, e, cmd->args[0], tmp, n, ++s->revision);
    e->encoding = KV_ENC_STR_EMBSTR; /* Redis makes the new text an embstr */
    store__changed_put(s, cmd, e);
    store__return_value(s, res, e);
    store__describe(res, e);
}

static void store__append(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 2) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__live(s, cmd, cmd->args[0]);
    if (store__wrongtype(res, e)) return;
    kv_slice add = cmd->args[1];
    size_t cur = e ? e->value_len : 0;
    /* an entry's value length is a u32, whatever the limit in b */
    if ((cmd->b > 0 && cur + add.len > (uint64_t)cmd->b) || cur + add.len > UINT32_MAX) {
        res->status = KV_ERR_TOO_LARGE;
        return;
    }
    uint64_t rev = ++s->revision;
    if (!e) {
        e = store__write(s, NULL, cmd->args[0], add.ptr, add.len, rev);
    } else if (add.len) {
        size_t old_len;
        char *v = xrealloc(kv_keyspace_take_value(&s->ks, e, &old_len), cur + add.len);
        memcpy(v + cur, add.ptr, add.len);
        kv_keyspace_set_value_owned(&s->ks, e, v, cur + add.len);
        e->version++;
        e->mod_rev = rev;
        e->encoding = KV_ENC_STR_RAW;
    } else {
        e->version++;
        e->mod_rev = rev;
        e->encoding = KV_ENC_STR_RAW; /* Redis unshares it even for nothing */
    }
    store__changed_put(s, cmd, e);
    res->integer = (int64_t)e->value_len;
    store__describe(res, e);
}

static void store__setrange(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 2 || cmd->a < 0) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__live(s, cmd, cmd->args[0]);
    if (store__wrongtype(res, e)) return;
    kv_slice val = cmd->args[1];
    size_t cur = e ? e->value_len : 0;
    if (val.len == 0) { /* Redis: no change, reply with the current length */
        res->integer = (int64_t)cur;
        return;
    }
    uint64_t end = (uint64_t)cmd->a + val.len;
    if ((cmd->b > 0 && end > (uint64_t)cmd->b) || end > UINT32_MAX) {
        res->status = KV_ERR_TOO_LARGE;
        return;
    }
    size_t len = end > cur ? (size_t)end : cur;
    char *v = xcalloc(1, len);
    if (cur) memcpy(v, e->value, cur);
    memcpy(v + cmd->a, val.ptr, val.len);
    uint64_t rev = ++s->revision;
    if (!e) {
        e = kv_keyspace_insert(&s->ks, cmd->args[0].ptr, cmd->args[0].len, NULL, 0);
        e->create_rev = rev;
        e->version = 0;
    }
    kv_keyspace_set_value_owned(&s->ks, e, v, len);
    e->version++;
    e->mod_rev = rev;
    e->encoding = KV_ENC_STR_RAW;
    store__changed_put(s, cmd, e);
    res->integer = (int64_t)len;
    store__describe(res, e);
}

/* ---- bitmaps (kv/bitops.h) ---------------------------------------------------- */

/* The longest string a bit write may make: the front end's limit (b) and
 * the entry's 32-bit length */
static bool store__bits_fit(const kv_command *cmd, uint64_t len)
{
    return len <= UINT32_MAX && (cmd->b <= 0 || len <= (uint64_t)cmd->b);
}

/* e (created when absent) as a string of at least len bytes; *changed
 * says whether that created or grew it */
static kv_entry *store__bits_for_write(kv_store *s, const kv_command *cmd, kv_entry *e, size_t len,
                                       bool *changed)
{
    *changed = !e || e->value_len < len;
    if (!e) {
        e = kv_keyspace_insert(&s->ks, cmd->args[0].ptr, cmd->args[0].len, NULL, 0);
        e->create_rev = s->revision + 1;
        e->version = 0;
    }
    kv_keyspace_grow_string(&s->ks, e, len);
    e->encoding = KV_ENC_STR_RAW; /* Redis unshares it, changed or not */
    return e;
}

/* A string changed in place (SETBIT, BITFIELD, PFADD, PFMERGE): a new
 * revision and version, the change told */
static void store__string_changed(kv_store *s, const kv_command *cmd, kv_entry *e, kv_result *res)
{
    e->mod_rev = ++s->revision;
    e->version++;
    store__changed_put(s, cmd, e);
    store__describe(res, e);
}

/* SETBIT: like Redis, a bit set to what it was on an existing string of
 * that length changes nothing */
static void store__setbit(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 2 || cmd->a < 0 || cmd->args[1].len != 1 ||
        (cmd->args[1].ptr[0] != '0' && cmd->args[1].ptr[0] != '1')) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    uint64_t len = ((uint64_t)cmd->a >> 3) + 1;
    if (!store__bits_fit(cmd, len)) {
        res->status = KV_ERR_TOO_LARGE;
        return;
    }
    kv_entry *e = store__live(s, cmd, cmd->args[0]);
    if (store__wrongtype(res, e)) return;
    bool changed;
    e = store__bits_for_write(s, cmd, e, (size_t)len, &changed);
    int on = cmd->args[1].ptr[0] == '1';
    res->integer = kv_bit_set((unsigned char *)e->value, (uint64_t)cmd->a, on);
    if (changed || res->integer != on) store__string_changed(s, cmd, e, res);
}

/* BITFIELD's writes: the string grows to what the highest write needs
 * first, as in Redis (even when OVERFLOW FAIL then holds every write back) */
static void store__bitfield(kv_store *s, const kv_command *cmd, kv_result *res)
{
    uint32_t n = cmd->nargs - 1;
    uint64_t need = 0;
    kv_bitfield_op op;
    for (uint32_t i = 1; i < cmd->nargs; i++) {
        if (!kv_bitfield_op_decode(cmd->args[i].ptr, cmd->args[i].len, &op)) {
            res->status = KV_ERR_MALFORMED;
            return;
        }
        if (op.kind != KV_BF_GET && kv_bitfield_op_end(&op) > need) need = kv_bitfield_op_end(&op);
    }
    if (cmd->nargs < 2 || need == 0) { /* only GETs: that is a read */
        res->status = KV_ERR_MALFORMED;
        return;
    }
    if (!store__bits_fit(cmd, need)) {
        res->status = KV_ERR_TOO_LARGE;
        return;
    }
    kv_entry *e = store__live(s, cmd, cmd->args[0]);
    if (store__wrongtype(res, e)) return;
    bool changed;
    e = store__bits_for_write(s, cmd, e, (size_t)need, &changed);
    buf_reset(&s->scratch);
    buf_reserve(&s->scratch, 9 * (size_t)n);
    for (uint32_t i = 1; i < cmd->nargs; i++) {
        kv_bitfield_op_decode(cmd->args[i].ptr, cmd->args[i].len, &op);
        int64_t v = 0;
        bool ok = kv_bitfield_run((unsigned char *)e->value, e->value_len, &op, &v);
        if (ok && op.kind != KV_BF_GET) changed = true;
        char out[9];
        out[0] = (char)ok;
        for (int k = 0; k < 8; k++) out[1 + k] = (char)((uint64_t)v >> (8 * k));
        buf_append(&s->scratch, out, 9);
    }
    if (changed) store__string_changed(s, cmd, e, res);
    res->integer = n;
    res->has_value = true;
    res->value = s->scratch.data;
    res->value_len = s->scratch.len;
}

/* BITOP: the sources are strings (absent ones empty); a result of no
 * bytes deletes dst, anything else replaces it and its expiry */
static void store__bitop(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs < 2 || cmd->a < KV_BITOP_AND || cmd->a > KV_BITOP_NOT ||
        (cmd->a == KV_BITOP_NOT && cmd->nargs != 2)) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    size_t n = cmd->nargs - 1, len = 0;
    const unsigned char **srcs = xcalloc(n, sizeof(*srcs));
    size_t *lens = xcalloc(n, sizeof(*lens));
    for (size_t i = 0; i < n; i++) {
        kv_entry *e = store__live(s, cmd, cmd->args[1 + i]);
        if (store__wrongtype(res, e)) break;
        srcs[i] = e ? (const unsigned char *)e->value : NULL;
        lens[i] = e ? e->value_len : 0;
        if (lens[i] > len) len = lens[i];
    }
    if (!res->status) {
        char *v = xmalloc(len ? len : 1);
        kv_bit_op((int)cmd->a, (unsigned char *)v, len, srcs, lens, n);
        res->integer = (int64_t)len;
        kv_entry *dst = store__live(s, cmd, cmd->args[0]);
        if (!len) {
            if (dst) {
                uint64_t rev = ++s->revision;
                store__changed(s, cmd, KV_CHANGE_DELETE, cmd->args[0].ptr, cmd->args[0].len, NULL,
                               rev);
                kv_keyspace_delete(&s->ks, cmd->args[0].ptr, cmd->args[0].len);
            }
        } else {
            dst = store__write(s, dst, cmd->args[0], v, len, ++s->revision);
            dst->encoding = KV_ENC_STR_RAW;
            kv_keyspace_set_expire(&s->ks, dst, 0);
            store__changed_put(s, cmd, dst);
            store__describe(res, dst);
        }
        free(v);
    }
    free(srcs);
    free(lens);
}

/* ---- HyperLogLog (kv/hll.h) ------------------------------------------------------ */

/* The sketch at key i: NULL when absent; an error (WRONGTYPE, or not a
 * sketch) in res otherwise */
static kv_entry *store__hll(kv_store *s, const kv_command *cmd, uint32_t i, kv_result *res)
{
    kv_entry *e = store__live(s, cmd, cmd->args[i]);
    if (store__wrongtype(res, e)) return NULL;
    if (e && !kv_hll_is_hll(e->value, e->value_len)) {
        res->status = KV_ERR_NOT_HLL;
        return NULL;
    }
    return e;
}

/* The sketch of e (created when absent) taken out to change it, under
 * the hll-sparse-max-bytes limit; put back with store__hll_put */
static kv_entry *store__hll_take(kv_store *s, const kv_command *cmd, kv_entry *e, kv_hll *h)
{
    if (!e) {
        kv_hll_create(h);
        e = kv_keyspace_insert(&s->ks, cmd->args[0].ptr, cmd->args[0].len, NULL, 0);
        e->create_rev = s->revision + 1;
        e->version = 0;
    } else {
        size_t len;
        h->p = (unsigned char *)kv_keyspace_take_value(&s->ks, e, &len);
        h->len = h->cap = len;
    }
    h->sparse_max = s->ks.limits.v[KV_LIMIT_HLL_SPARSE];
    return e;
}

static void store__hll_put(kv_store *s, const kv_command *cmd, kv_entry *e, kv_hll *h, bool changed,
                           kv_result *res)
{
    kv_keyspace_set_value_owned(&s->ks, e, (char *)h->p, h->len);
    e->encoding = KV_ENC_STR_RAW;
    if (changed) store__string_changed(s, cmd, e, res);
}

static void store__pfadd(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs < 1) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__hll(s, cmd, 0, res);
    if (res->status) return;
    bool created = !e;
    kv_hll h;
    e = store__hll_take(s, cmd, e, &h);
    int changed = created;
    for (uint32_t i = 1; i < cmd->nargs && !res->status; i++) {
        int r = kv_hll_add(&h, cmd->args[i].ptr, cmd->args[i].len);
        if (r < 0) res->status = KV_ERR_HLL_CORRUPT; /* on the first element: nothing changed */
        if (r > 0) changed = 1;
    }
    if (changed && !res->status) kv_hll_invalidate(&h);
    store__hll_put(s, cmd, e, &h, changed && !res->status, res);
    res->integer = changed;
}

/* PFMERGE: dst's own registers count too, as in Redis; dst is dense when
 * any source is */
static void store__pfmerge(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs < 1) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    uint8_t *max = xcalloc(KV_HLL_REGISTERS, 1);
    bool dense = false;
    for (uint32_t i = 0; i < cmd->nargs && !res->status; i++) {
        kv_entry *e = store__hll(s, cmd, i, res);
        if (!e) continue;
        dense |= kv_hll_is_dense(e->value);
        if (!kv_hll_merge_max(max, e->value, e->value_len)) res->status = KV_ERR_HLL_CORRUPT;
    }
    if (!res->status) {
        kv_hll h;
        kv_entry *dst = store__hll_take(s, cmd, store__live(s, cmd, cmd->args[0]), &h);
        /* dst merged above: a corrupt one was refused there */
        kv_hll_raise(&h, max, dense);
        store__hll_put(s, cmd, dst, &h, true, res);
    }
    free(max);
}

/* Apply an expiry change (EXPIRE family, GETEX): a time in the past deletes
 * the key, as Redis does. */
static void store__set_expiry(kv_store *s, const kv_command *cmd, kv_entry *e, int64_t expire_ms)
{
    uint64_t rev = ++s->revision;
    if (expire_ms != 0 && expire_ms <= cmd->now_ms) {
        store__changed(s, cmd, KV_CHANGE_DELETE, kv_entry_key(e), e->key_len, NULL, rev);
        kv_keyspace_delete(&s->ks, kv_entry_key(e), e->key_len);
        return;
    }
    kv_keyspace_set_expire(&s->ks, e, expire_ms);
    e->mod_rev = rev;
    e->version++;
    store__changed_put(s, cmd, e);
}

static void store__expire(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 1) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__live(s, cmd, cmd->args[0]);
    res->integer = 0;
    if (!e) return;
    int64_t cur = e->expire_ms, want = cmd->expire_ms;
    if ((cmd->flags & KV_FLAG_NX) && cur) return;
    if ((cmd->flags & KV_FLAG_XX) && !cur) return;
    /* no expiry counts as infinite: GT never wins against it, LT always */
    if ((cmd->flags & KV_FLAG_GT) && (!cur || want <= cur)) return;
    if ((cmd->flags & KV_FLAG_LT) && cur && want >= cur) return;
    store__set_expiry(s, cmd, e, want);
    res->integer = 1;
}

static void store__persist(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 1) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__live(s, cmd, cmd->args[0]);
    res->integer = 0;
    if (!e || !e->expire_ms) return;
    store__set_expiry(s, cmd, e, 0);
    res->integer = 1;
}

static void store__getex(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 1) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__live(s, cmd, cmd->args[0]);
    if (store__wrongtype(res, e)) return;
    store__return_value(s, res, e);
    if (!e) return;
    if (cmd->flags & KV_FLAG_PERSIST) {
        if (e->expire_ms) store__set_expiry(s, cmd, e, 0);
    } else if (cmd->expire_ms) {
        store__set_expiry(s, cmd, e, cmd->expire_ms);
    }
}

static void store__rename(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 2) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_slice src = cmd->args[0], dst = cmd->args[1];
    kv_entry *from = store__live(s, cmd, src);
    if (!from) {
        res->status = KV_ERR_NO_SUCH_KEY;
        return;
    }
    kv_entry *to = store__live(s, cmd, dst);
    bool same = src.len == dst.len && memcmp(src.ptr, dst.ptr, src.len) == 0;
    if (same || ((cmd->flags & KV_FLAG_NX) && to)) {
        res->integer = same && !(cmd->flags & KV_FLAG_NX) ? 1 : 0;
        return;
    }
    uint64_t rev = ++s->revision;
    /* move the value (of any type) rather than copying it */
    int64_t expire = from->expire_ms;
    if (!to) {
        to = kv_keyspace_insert(&s->ks, dst.ptr, dst.len, NULL, 0);
        to->create_rev = rev;
    }
    kv_keyspace_move_value(&s->ks, from, to);
    kv_keyspace_delete(&s->ks, src.ptr, src.len);
    store__changed(s, cmd, KV_CHANGE_DELETE, src.ptr, src.len, NULL, rev);
    kv_keyspace_set_expire(&s->ks, to, expire);
    to->version++;
    to->mod_rev = rev;
    store__changed_put(s, cmd, to);
    res->integer = 1;
    store__describe(res, to);
}

/* to (a fresh entry) holds a copy of from's value, of any type, built
 * element by element: the copy takes the encoding its size calls for */
static void store__copy_value(kv_store *s, const kv_entry *from, kv_entry *to)
{
    kv_keyspace *ks = &s->ks;
    switch (from->type) {
    case KV_TYPE_HASH: {
        kv_hash_init(ks, to);
        kv_hash_iter it;
        kv_slice f, v;
        kv_hash_iter_init(&it, from);
        while (kv_hash_iter_next(&it, &f, &v)) kv_hash_set(ks, to, f, v);
        break;
    }
    case KV_TYPE_LIST: {
        kv_list_init(ks, to);
        kv_list_iter it;
        kv_slice v;
        kv_list_iter_init(&it, from, 0);
        while (kv_list_iter_next(&it, &v)) kv_list_push(ks, to, v, false);
        break;
    }
    case KV_TYPE_SET: {
        kv_set_init(ks, to);
        kv_set_iter it;
        kv_slice m;
        kv_set_iter_init(&it, from);
        while (kv_set_iter_next(&it, &m)) kv_set_add(ks, to, m);
        break;
    }
    case KV_TYPE_ZSET: {
        kv_zset_init(ks, to);
        kv_zset_iter it;
        kv_slice m;
        double score;
        kv_zset_iter_init(&it, from, 0, false);
        while (kv_zset_iter_next(&it, &m, &score)) kv_zset_set(ks, to, m, score);
        break;
    }
    case KV_TYPE_STREAM:
        kv_stream_copy(ks, to, from); /* IDs, last ID and counters as they are */
        break;
    default:
        kv_keyspace_set_value(ks, to, from->value, from->value_len);
        to->encoding = from->encoding; /* as Redis' dupStringObject */
        break;
    }
}

void kv_store_copy_value(kv_store *s, const kv_entry *from, kv_entry *to)
{
    store__copy_value(s, from, to);
}

/* COPY and RESTORE: key as a new incarnation at rev, the old one (when it
 * existed) deleted and reported first, as Redis replaces it; the caller
 * gives it its value. */
static kv_entry *store__recreate(kv_store *s, const kv_command *cmd, kv_slice key, bool existed,
                                 uint64_t rev)
{
    if (existed) {
        store__changed(s, cmd, KV_CHANGE_DELETE, key.ptr, key.len, NULL, rev);
        kv_keyspace_delete(&s->ks, key.ptr, key.len);
    }
    kv_entry *e = kv_keyspace_insert(&s->ks, key.ptr, key.len, NULL, 0);
    e->create_rev = e->mod_rev = rev;
    e->version = 1;
    return e;
}

/* COPY: a new dst (REPLACE deletes the old one first, as Redis does) with
 * src's value and expiry */
static void store__copy(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 2) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_slice src = cmd->args[0], dst = cmd->args[1];
    if (src.len == dst.len && memcmp(src.ptr, dst.ptr, src.len) == 0) {
        res->status = KV_ERR_MALFORMED; /* the front end refuses it first */
        return;
    }
    kv_entry *from = store__live(s, cmd, src);
    kv_entry *to = store__live(s, cmd, dst);
    if (!from || (to && !(cmd->flags & KV_FLAG_XX))) return;
    to = store__recreate(s, cmd, dst, to != NULL, ++s->revision);
    from = kv_keyspace_find(&s->ks, src.ptr, src.len); /* the delete may have moved it */
    store__copy_value(s, from, to);
    kv_keyspace_set_expire(&s->ks, to, from->expire_ms);
    store__changed_put(s, cmd, to);
    res->integer = 1;
    store__describe(res, to);
}

/* RESTORE: the checks in Redis' order (an existing key without REPLACE,
 * then the payload's footer, then its object), the old key deleted only
 * once the new value is whole; an expiry already past deletes the old key
 * and creates nothing, as Redis does. */
static void store__restore(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 2) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_slice key = cmd->args[0], payload = cmd->args[1];
    kv_entry *old = store__live(s, cmd, key);
    if (old && !(cmd->flags & KV_FLAG_XX)) {
        res->status = KV_ERR_PRECONDITION;
        return;
    }
    kv_entry value = {0}; /* outside the keyspace until it is whole */
    kv_dump_status st =
        kv_dump_load(&s->ks, &value, payload.ptr, payload.len, cmd->b > 0 ? (uint64_t)cmd->b : 0);
    if (st != KV_DUMP_OK) {
        res->status = st == KV_DUMP_BAD_FOOTER  ? KV_ERR_DUMP_FOOTER
                      : st == KV_DUMP_TOO_LARGE ? KV_ERR_TOO_LARGE
                                                : KV_ERR_DUMP_DATA;
        return;
    }
    if (cmd->expire_ms != 0 && cmd->expire_ms <= cmd->now_ms) {
        kv_keyspace_reset_value(&s->ks, &value);
        if (old) {
            uint64_t rev = ++s->revision;
            store__changed(s, cmd, KV_CHANGE_DELETE, key.ptr, key.len, NULL, rev);
            kv_keyspace_delete(&s->ks, key.ptr, key.len);
        }
        return;
    }
    kv_entry *e = store__recreate(s, cmd, key, old != NULL, ++s->revision);
    kv_keyspace_move_value(&s->ks, &value, e);
    kv_keyspace_set_expire(&s->ks, e, cmd->expire_ms);
    store__changed_put(s, cmd, e);
    res->integer = 1;
    store__describe(res, e);
}

/* CONFIG SET of encoding limits: every pair checked before any is set
 * (the front end has checked them too, with Redis' messages) */
static void store__config(kv_store *s, const kv_command *cmd, kv_result *res)
{
    kv_limits next = s->ks.limits;
    if (cmd->nargs == 0 || cmd->nargs % 2) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    for (uint32_t i = 0; i < cmd->nargs; i += 2) {
        int id = kv_limit_lookup(cmd->args[i].ptr, cmd->args[i].len);
        if (id < 0 || kv_limit_parse(id, cmd->args[i + 1].ptr, cmd->args[i + 1].len, &next.v[id])) {
            res->status = KV_ERR_MALFORMED;
            return;
        }
    }
    s->ks.limits = next;
}

static void store__flush(kv_store *s, const kv_command *cmd, kv_result *res)
{
    res->integer = (int64_t)kv_keyspace_count(&s->ks);
    if (res->integer) {
        kv_keyspace_clear(&s->ks);
        s->revision++;
        store__changed(s, cmd, KV_CHANGE_FLUSH, NULL, 0, NULL, s->revision);
    } else if (s->on_notify) {
        /* nothing to remove, no revision; but Redis tells tracking
         * clients of every flush, so on_notify hears of it */
        kv_change c = {
            .revision = s->revision, .kind = KV_CHANGE_FLUSH, .now_ms = cmd->now_ms, .cmd = cmd};
        s->on_notify(s->on_notify_ctx, &c);
    }
}

static void store__expire_keys(kv_store *s, const kv_command *cmd, kv_result *res)
{
    int64_t n = 0;
    for (uint32_t i = 0; i < cmd->nargs; i++) {
        kv_entry *e = kv_keyspace_find(&s->ks, cmd->args[i].ptr, cmd->args[i].len);
        if (e && kv_entry_expired(e, cmd->now_ms)) {
            store__reclaim(s, cmd, cmd->args[i]);
            n++;
        }
    }
    res->integer = n;
}

const kv_member *kv_store_member(const kv_store *s, uint64_t id)
{
    for (unsigned i = 0; i < s->n_members; i++)
        if (s->members[i].id == id) return &s->members[i];
    return NULL;
}

/* Member addresses are metadata, not keyspace: no revision change. */
static void store__member(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 2 || cmd->a <= 0 || cmd->args[0].len >= KV_ADDR_MAX ||
        cmd->args[1].len >= KV_ADDR_MAX || memchr(cmd->args[0].ptr, 0, cmd->args[0].len) ||
        memchr(cmd->args[1].ptr, 0, cmd->args[1].len)) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    uint64_t id = (uint64_t)cmd->a;
    unsigned i = 0;
    while (i < s->n_members && s->members[i].id != id) i++;
    if (cmd->args[0].len == 0 && cmd->args[1].len == 0) {
        if (i < s->n_members) s->members[i] = s->members[--s->n_members];
        return;
    }
    if (i == s->n_members) {
        if (s->n_members == KV_MAX_MEMBERS) {
            res->status = KV_ERR_TOO_LARGE;
            return;
        }
        s->n_members++;
    }
    kv_member *m = &s->members[i];
    memset(m, 0, sizeof(*m));
    m->id = id;
    memcpy(m->http, cmd->args[0].ptr, cmd->args[0].len);
    memcpy(m->resp, cmd->args[1].ptr, cmd->args[1].len);
}

/* ---- hashes (kv/hash.h) ---------------------------------------------------- */

/* The hash at key for a hash command: NULL with res untouched when absent,
 * NULL with WRONGTYPE set when the key holds something else. */
/* The live entry at args[i] if it holds type: NULL when absent, or (and
 * WRONGTYPE set) when it holds another type. */
static kv_entry *store__typed(kv_store *s, const kv_command *cmd, uint32_t i, int type,
                              kv_result *res)
{
    kv_entry *e = store__live(s, cmd, cmd->args[i]);
    if (e && e->type != type) {
        res->status = KV_ERR_WRONGTYPE;
        return NULL;
    }
    return e;
}

/* After a change to the collection e at rev, which now holds len
 * elements: an emptied one is deleted (Redis has no empty collections),
 * else it gets the revision and its change is reported. */
static void store__collection_changed(kv_store *s, const kv_command *cmd, kv_entry *e, uint64_t rev,
                                      uint64_t len)
{
    if (len == 0) {
        store__changed(s, cmd, KV_CHANGE_DELETE, kv_entry_key(e), e->key_len, NULL, rev);
        kv_keyspace_delete(&s->ks, kv_entry_key(e), e->key_len);
        return;
    }
    e->version++;
    e->mod_rev = rev;
    store__changed_put(s, cmd, e);
}

static kv_entry *store__hash(kv_store *s, const kv_command *cmd, kv_result *res)
{
    return store__typed(s, cmd, 0, KV_TYPE_HASH, res);
}

/* A write to the hash at key (created when absent) at a new revision. */
static kv_entry *store__hash_for_write(kv_store *s, const kv_command *cmd, kv_entry *e,
                                       uint64_t rev)
{
    if (!e) {
        e = kv_keyspace_insert(&s->ks, cmd->args[0].ptr, cmd->args[0].len, NULL, 0);
        kv_hash_init(&s->ks, e);
        e->create_rev = rev;
    }
    e->version++;
    e->mod_rev = rev;
    return e;
}

static void store__hset(kv_store *s, const kv_command *cmd, kv_result *res)
{
    bool nx = cmd->flags & KV_FLAG_NX;
    if (cmd->nargs < 3 || cmd->nargs % 2 == 0 || (nx && cmd->nargs != 3)) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__hash(s, cmd, res);
    if (res->status) return;
    kv_slice old;
    if (nx && e && kv_hash_get(e, cmd->args[1], &old)) {
        res->status = KV_ERR_PRECONDITION;
        store__describe(res, e);
        return;
    }
    e = store__hash_for_write(s, cmd, e, ++s->revision);
    int64_t added = 0;
    for (uint32_t i = 1; i < cmd->nargs; i += 2)
        added += kv_hash_set(&s->ks, e, cmd->args[i], cmd->args[i + 1]);
    store__changed_put(s, cmd, e);
    res->integer = added;
    store__describe(res, e);
}

static void store__hdel(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs < 2) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__hash(s, cmd, res);
    if (!e) return;
    int64_t n = 0;
    uint64_t rev = s->revision + 1; /* taken only if a field goes */
    for (uint32_t i = 1; i < cmd->nargs; i++) n += kv_hash_del(&s->ks, e, cmd->args[i]);
    res->integer = n;
    if (!n) return;
    s->revision = rev;
    uint64_t left = kv_hash_len(e);
    store__collection_changed(s, cmd, e, rev, left);
    if (left) store__describe(res, e);
}

static void store__hincr(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 2) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__hash(s, cmd, res);
    if (res->status) return;
    kv_slice cur;
    bool have = e && kv_hash_get(e, cmd->args[1], &cur);
    int64_t next;
    char tmp[24];
    size_t n;
    res->status = store__add_integer(have ? &cur : NULL, cmd->a, &next, tmp, &n);
    if (res->status) return;
    e = store__hash_for_write(s, cmd, e, ++s->revision);
    kv_hash_set(&s->ks, e, cmd->args[1], (kv_slice){tmp, n});
    store__changed_put(s, cmd, e);
    res->integer = next;
    store__describe(res, e);
}

static void store__hincrfloat(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 3) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__hash(s, cmd, res);
    if (res->status) return;
    kv_slice cur;
    bool have = e && kv_hash_get(e, cmd->args[1], &cur);
    char tmp[STORE_FLOAT_TEXT];
    size_t n;
    res->status = store__add_float(have ? &cur : NULL, cmd->args[2], tmp, &n);
    if (res->status) return;
    e = store__hash_for_write(s, cmd, e, ++s->revision);
    kv_hash_set(&s->ks, e, cmd->args[1], (kv_slice){tmp, n});
    store__changed_put(s, cmd, e);
    buf_reset(&s->scratch);
    buf_append(&s->scratch, tmp, n);
    res->has_value = true;
    res->value = s->scratch.data;
    res->value_len = n;
    store__describe(res, e);
}

/* ---- lists (kv/list.h) ------------------------------------------------------ */

/* The list at args[i]: NULL when absent (res untouched) or of another type
 * (WRONGTYPE set). */
static kv_entry *store__list(kv_store *s, const kv_command *cmd, uint32_t i, kv_result *res)
{
    return store__typed(s, cmd, i, KV_TYPE_LIST, res);
}

static void store__list_changed(kv_store *s, const kv_command *cmd, kv_entry *e, uint64_t rev)
{
    store__collection_changed(s, cmd, e, rev, kv_list_len(e));
}

static kv_entry *store__list_create(kv_store *s, kv_slice key, uint64_t rev)
{
    kv_entry *e = kv_keyspace_insert(&s->ks, key.ptr, key.len, NULL, 0);
    kv_list_init(&s->ks, e);
    e->create_rev = rev;
    return e;
}

static void store__lpush(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs < 2) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__list(s, cmd, 0, res);
    if (res->status) return;
    if (!e && (cmd->flags & KV_FLAG_XX)) return; /* LPUSHX: 0 */
    uint64_t rev = ++s->revision;
    if (!e) e = store__list_create(s, cmd->args[0], rev);
    for (uint32_t i = 1; i < cmd->nargs; i++) kv_list_push(&s->ks, e, cmd->args[i], cmd->a == 1);
    res->integer = (int64_t)kv_list_len(e);
    store__list_changed(s, cmd, e, rev);
    store__describe(res, e);
}

/* Pop up to count elements of e into the scratch buffer, after what it
 * holds, each as u32 length | bytes; returns how many. */
static int64_t store__pop_counted(kv_store *s, kv_entry *e, bool head, int64_t count)
{
    int64_t popped = 0;
    for (; popped < count; popped++) {
        size_t at = s->scratch.len;
        buf_append(&s->scratch, "\0\0\0\0", 4);
        if (!kv_list_pop(&s->ks, e, head, &s->scratch)) {
            s->scratch.len = at;
            break;
        }
        uint32_t n = (uint32_t)(s->scratch.len - at - 4);
        for (int k = 0; k < 4; k++) s->scratch.data[at + k] = (char)(n >> (8 * k));
    }
    return popped;
}

static void store__lpop(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 1 || cmd->b < 0) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__list(s, cmd, 0, res);
    if (!e) return;
    buf_reset(&s->scratch);
    bool head = cmd->a & 1, counted = cmd->a & 2;
    res->has_value = true;
    res->value = "";
    if (counted && cmd->b == 0) return; /* an empty array, nothing changes */
    if (!counted) {
        kv_list_pop(&s->ks, e, head, &s->scratch);
        res->integer = 1;
    } else {
        res->integer = store__pop_counted(s, e, head, cmd->b);
    }
    res->has_value = true;
    res->value = s->scratch.data ? s->scratch.data : "";
    res->value_len = s->scratch.len;
    store__list_changed(s, cmd, e, ++s->revision);
}

static void store__lset(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 2) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__list(s, cmd, 0, res);
    if (res->status) return;
    if (!e) {
        res->status = KV_ERR_NO_SUCH_KEY;
        return;
    }
    if (!kv_list_set(&s->ks, e, cmd->a, cmd->args[1])) {
        res->status = KV_ERR_OUT_OF_RANGE;
        return;
    }
    store__list_changed(s, cmd, e, ++s->revision);
}

static void store__lrem(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 2) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__list(s, cmd, 0, res);
    if (!e) return;
    res->integer = kv_list_rem(&s->ks, e, cmd->a, cmd->args[1]);
    if (res->integer) store__list_changed(s, cmd, e, ++s->revision);
}

static void store__ltrim(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 1) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__list(s, cmd, 0, res);
    if (!e) return;
    uint64_t before = kv_list_len(e);
    kv_list_trim(&s->ks, e, cmd->a, cmd->b);
    if (kv_list_len(e) != before) store__list_changed(s, cmd, e, ++s->revision);
}

static void store__linsert(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 3) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__list(s, cmd, 0, res);
    if (!e) return; /* 0, or WRONGTYPE */
    if (!kv_list_insert(&s->ks, e, cmd->a == 1, cmd->args[1], cmd->args[2])) {
        res->integer = -1;
        return;
    }
    res->integer = (int64_t)kv_list_len(e);
    store__list_changed(s, cmd, e, ++s->revision);
}

static void store__lmove(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 2) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *from = store__list(s, cmd, 0, res);
    if (res->status || !from) return; /* Redis looks at the destination only then */
    kv_entry *to = store__list(s, cmd, 1, res);
    if (res->status) return;
    uint64_t rev = ++s->revision;
    buf_reset(&s->scratch);
    kv_list_pop(&s->ks, from, cmd->a == 1, &s->scratch);
    /* the element leaves the scratch buffer before anything reuses it */
    char small[64];
    size_t n = s->scratch.len;
    char *v = n <= sizeof(small) ? small : xmalloc(n);
    memcpy(v, s->scratch.data, n);
    bool same = cmd->args[0].len == cmd->args[1].len &&
                memcmp(cmd->args[0].ptr, cmd->args[1].ptr, cmd->args[0].len) == 0;
    if (same) to = from;
    if (!same) store__list_changed(s, cmd, from, rev); /* may delete it */
    if (!to) to = store__list_create(s, cmd->args[1], rev);
    kv_list_push(&s->ks, to, (kv_slice){v, n}, cmd->b == 1);
    store__list_changed(s, cmd, to, rev);
    buf_reset(&s->scratch);
    buf_append(&s->scratch, v, n);
    if (v != small) free(v);
    res->has_value = true;
    res->value = s->scratch.data ? s->scratch.data : "";
    res->value_len = n;
}

/* LMPOP, BLPOP and family: the first key holding a non-empty list serves
 * (a key of another type before it answers WRONGTYPE, as in Redis). */
static void store__lmpop(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs < 1 || cmd->b < 1) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    for (uint32_t i = 0; i < cmd->nargs; i++) {
        kv_entry *e = store__list(s, cmd, i, res);
        if (res->status) return;
        if (!e) continue;
        buf_reset(&s->scratch);
        char len[4];
        for (int k = 0; k < 4; k++) len[k] = (char)(cmd->args[i].len >> (8 * k));
        buf_append(&s->scratch, len, 4);
        buf_append(&s->scratch, cmd->args[i].ptr, cmd->args[i].len);
        res->integer = store__pop_counted(s, e, cmd->a == 1, cmd->b);
        res->has_value = true;
        res->value = s->scratch.data;
        res->value_len = s->scratch.len;
        store__list_changed(s, cmd, e, ++s->revision);
        return;
    }
}

/* ---- sets (kv/set.h) ---------------------------------------------------------- */

static uint32_t store__get32(const char *p);

/* The set at args[i]: NULL when absent or (WRONGTYPE set) of another type. */
static kv_entry *store__set(kv_store *s, const kv_command *cmd, uint32_t i, kv_result *res)
{
    return store__typed(s, cmd, i, KV_TYPE_SET, res);
}

static kv_entry *store__set_create(kv_store *s, kv_slice key, uint64_t rev)
{
    kv_entry *e = kv_keyspace_insert(&s->ks, key.ptr, key.len, NULL, 0);
    kv_set_init(&s->ks, e);
    e->create_rev = rev;
    return e;
}

static void store__set_changed(kv_store *s, const kv_command *cmd, kv_entry *e, uint64_t rev)
{
    store__collection_changed(s, cmd, e, rev, kv_set_len(e));
}

/* SINTERSTORE and ZUNIONSTORE families: the destination goes, whatever
 * it held (as in Redis), at a new revision that the result then fills if
 * it has members; nothing there and nothing to store changes nothing.
 * Returns the revision. */
static uint64_t store__dst_replace(kv_store *s, const kv_command *cmd, uint64_t card)
{
    kv_entry *dst = store__live(s, cmd, cmd->args[0]);
    if (!dst && !card) return s->revision;
    uint64_t rev = ++s->revision;
    if (dst) {
        store__changed(s, cmd, KV_CHANGE_DELETE, cmd->args[0].ptr, cmd->args[0].len, NULL, rev);
        kv_keyspace_delete(&s->ks, cmd->args[0].ptr, cmd->args[0].len);
    }
    return rev;
}

static void store__sadd(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs < 2) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__set(s, cmd, 0, res);
    if (res->status) return;
    uint64_t rev = s->revision + 1; /* taken only if a member is new */
    bool created = !e;
    if (created) e = store__set_create(s, cmd->args[0], rev);
    for (uint32_t i = 1; i < cmd->nargs; i++) res->integer += kv_set_add(&s->ks, e, cmd->args[i]);
    if (!res->integer) return; /* an existing set with every member in it */
    s->revision = rev;
    store__set_changed(s, cmd, e, rev);
    store__describe(res, e);
}

static void store__srem(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs < 2) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__set(s, cmd, 0, res);
    if (!e) return;
    for (uint32_t i = 1; i < cmd->nargs; i++)
        res->integer += kv_set_remove(&s->ks, e, cmd->args[i]);
    if (res->integer) store__set_changed(s, cmd, e, ++s->revision);
}

/* splitmix64 over the command's seed: SPOP picks the same members on
 * every replica. */
static uint64_t store__rnd(void *ctx)
{
    uint64_t *state = ctx;
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void store__collect_member(void *ctx, kv_slice m)
{
    buf *out = ctx;
    char len[4];
    for (int k = 0; k < 4; k++) len[k] = (char)(m.len >> (8 * k));
    buf_append(out, len, 4);
    buf_append(out, m.ptr, m.len);
}

static void store__spop(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 1 || cmd->a < -1) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__set(s, cmd, 0, res);
    if (!e || cmd->a == 0) {
        res->has_value = cmd->a >= 0 && !res->status; /* SPOP k 0 / absent: an empty array */
        return;
    }
    uint64_t len = kv_set_len(e), n = cmd->a < 0 ? 1 : (uint64_t)cmd->a;
    if (n > len) n = len;
    uint64_t *idx = xmalloc(n * sizeof(*idx));
    uint64_t state = (uint64_t)cmd->b;
    kv_set_sample(len, n, store__rnd, &state, idx);
    buf_reset(&s->scratch);
    kv_set_pick(e, idx, n, store__collect_member, &s->scratch);
    free(idx);
    /* the members leave the set only now: the walk above read it */
    for (size_t pos = 0; pos < s->scratch.len;) {
        uint32_t k = store__get32(s->scratch.data + pos);
        kv_set_remove(&s->ks, e, (kv_slice){s->scratch.data + pos + 4, k});
        pos += 4 + (size_t)k;
    }
    res->integer = (int64_t)n;
    res->has_value = true;
    res->value = s->scratch.data;
    res->value_len = s->scratch.len;
    store__set_changed(s, cmd, e, ++s->revision);
}

static void store__smove(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 3) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *from = store__set(s, cmd, 0, res);
    if (!from) return; /* absent: 0, whatever dst holds (as in Redis) */
    kv_entry *to = store__set(s, cmd, 1, res);
    if (res->status || !kv_set_contains(from, cmd->args[2])) return;
    res->integer = 1;
    bool same = cmd->args[0].len == cmd->args[1].len &&
                memcmp(cmd->args[0].ptr, cmd->args[1].ptr, cmd->args[0].len) == 0;
    if (same) return; /* Redis: 1, nothing changes */
    uint64_t rev = ++s->revision;
    kv_set_remove(&s->ks, from, cmd->args[2]);
    store__set_changed(s, cmd, from, rev); /* may delete it */
    if (!to) to = store__set_create(s, cmd->args[1], rev);
    kv_set_add(&s->ks, to, cmd->args[2]);
    store__set_changed(s, cmd, to, rev);
}

static void store__sstore(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs < 2 || cmd->a < KV_SET_INTER || cmd->a > KV_SET_DIFF) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    size_t n = cmd->nargs - 1;
    const kv_entry **sets = xcalloc(n, sizeof(*sets));
    for (size_t i = 0; i < n && !res->status; i++)
        sets[i] = store__set(s, cmd, (uint32_t)i + 1, res);
    if (res->status) {
        free(sets);
        return;
    }
    /* into a keyspace of its own first: dst may be one of the sources */
    kv_keyspace tmp;
    kv_keyspace_init(&tmp, s->ks.seed);
    kv_entry *out = kv_keyspace_insert(&tmp, "", 0, NULL, 0);
    kv_set_init(&tmp, out);
    kv_set_combine(&tmp, out, sets, n, (int)cmd->a);
    free(sets);
    uint64_t card = kv_set_len(out);
    uint64_t rev = store__dst_replace(s, cmd, card);
    if (card) {
        kv_entry *dst = store__set_create(s, cmd->args[0], rev);
        kv_set_iter it;
        kv_slice m;
        kv_set_iter_init(&it, out);
        while (kv_set_iter_next(&it, &m)) kv_set_add(&s->ks, dst, m);
        store__set_changed(s, cmd, dst, rev);
    }
    kv_keyspace_close(&tmp);
    res->integer = (int64_t)card;
}

/* ---- sorted sets (kv/zset.h) --------------------------------------------------- */

static kv_entry *store__zset(kv_store *s, const kv_command *cmd, kv_result *res)
{
    return store__typed(s, cmd, 0, KV_TYPE_ZSET, res);
}

static void store__zset_changed(kv_store *s, const kv_command *cmd, kv_entry *e, uint64_t rev)
{
    store__collection_changed(s, cmd, e, rev, kv_zset_len(e));
}

/* ZADD and ZINCRBY: the front end checked the options and the scores; a
 * score that does not parse here is a malformed command */
static void store__zadd(kv_store *s, const kv_command *cmd, kv_result *res)
{
    int64_t f = cmd->a;
    bool incr = f & KV_ZADD_INCR;
    if (cmd->nargs < 3 || cmd->nargs % 2 == 0 || (incr && cmd->nargs != 3)) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    uint32_t pairs = (cmd->nargs - 1) / 2;
    double *scores = xmalloc(pairs * sizeof(*scores));
    for (uint32_t i = 0; i < pairs; i++) {
        if (!kv_zset_parse_score(cmd->args[1 + 2 * i].ptr, cmd->args[1 + 2 * i].len, &scores[i])) {
            free(scores);
            res->status = KV_ERR_MALFORMED;
            return;
        }
    }
    kv_entry *e = store__zset(s, cmd, res);
    if (res->status || (!e && (f & KV_ZADD_XX))) { /* XX on nothing: nothing */
        free(scores);
        return;
    }
    uint64_t rev = s->revision + 1; /* taken only if something changes */
    bool created = !e;
    if (created) {
        e = kv_keyspace_insert(&s->ks, cmd->args[0].ptr, cmd->args[0].len, NULL, 0);
        kv_zset_init(&s->ks, e);
        e->create_rev = rev;
    }
    int64_t added = 0, changed = 0;
    double result = 0;
    bool done = false;
    for (uint32_t i = 0; i < pairs; i++) {
        kv_slice m = cmd->args[2 + 2 * i];
        double score = scores[i], cur;
        bool have = kv_zset_score(e, m, &cur);
        if ((have && (f & KV_ZADD_NX)) || (!have && (f & KV_ZADD_XX))) continue;
        if (have && incr) score = cur + score;
        if (incr && isnan(score)) {
            res->status = KV_ERR_NAN_OR_INF;
            break;
        }
        if (have && (((f & KV_ZADD_GT) && !(score > cur)) || ((f & KV_ZADD_LT) && !(score < cur))))
            continue;
        result = score;
        done = true;
        if (!have) {
            kv_zset_set(&s->ks, e, m, score);
            added++;
        } else if (cur != score) {
            kv_zset_set(&s->ks, e, m, score);
            changed++;
        }
    }
    free(scores);
    if (added || changed) {
        s->revision = rev;
        store__zset_changed(s, cmd, e, rev);
    } else if (created) {
        kv_keyspace_delete(&s->ks, cmd->args[0].ptr, cmd->args[0].len); /* never was */
    }
    if (res->status) return;
    if (incr) {
        if (!done) return; /* held back: a nil reply */
        buf_reset(&s->scratch);
        char bits[8];
        uint64_t u;
        memcpy(&u, &result, 8);
        for (int k = 0; k < 8; k++) bits[k] = (char)(u >> (8 * k));
        buf_append(&s->scratch, bits, 8);
        res->has_value = true;
        res->value = s->scratch.data;
        res->value_len = 8;
        return;
    }
    res->integer = (f & KV_ZADD_CH) ? added + changed : added;
}

static void store__zrem(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs < 2) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__zset(s, cmd, res);
    if (!e) return;
    for (uint32_t i = 1; i < cmd->nargs; i++)
        res->integer += kv_zset_remove(&s->ks, e, cmd->args[i]);
    if (res->integer) store__zset_changed(s, cmd, e, ++s->revision);
}

/* Remove ranks [from, from + n) (ascending), appending member and score
 * text to the scratch buffer when `collect` (else it is left empty). */
static void store__zremove_ranks(kv_store *s, kv_entry *e, uint64_t from, uint64_t n, bool rev,
                                 bool collect)
{
    if (!collect) buf_reset(&s->scratch);
    size_t start = s->scratch.len; /* what this call appends starts here */
    kv_zset_iter it;
    kv_slice m;
    double score;
    kv_zset_iter_init(&it, e, from, rev);
    for (uint64_t i = 0; i < n && kv_zset_iter_next(&it, &m, &score); i++) {
        char text[64];
        int tl = snprintf(text, sizeof(text), "%.17g", score);
        store__collect_member(&s->scratch, m);
        store__collect_member(&s->scratch, (kv_slice){text, (size_t)tl});
    }
    /* the members leave only now: the walk above read the set */
    for (size_t pos = start; pos < s->scratch.len;) {
        uint32_t k = store__get32(s->scratch.data + pos);
        kv_zset_remove(&s->ks, e, (kv_slice){s->scratch.data + pos + 4, k});
        pos += 4 + (size_t)k;
        pos += 4 + (size_t)store__get32(s->scratch.data + pos); /* its score */
    }
    if (!collect) buf_reset(&s->scratch);
}

static void store__zpop(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 1 || cmd->a < -1) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__zset(s, cmd, res);
    res->has_value = !res->status;
    res->value = "";
    if (!e || cmd->a == 0) return;
    uint64_t len = kv_zset_len(e), n = cmd->a < 0 ? 1 : (uint64_t)cmd->a;
    if (n > len) n = len;
    buf_reset(&s->scratch);
    store__zremove_ranks(s, e, 0, n, cmd->b == 1, true);
    res->integer = (int64_t)n;
    res->value = s->scratch.data;
    res->value_len = s->scratch.len;
    store__zset_changed(s, cmd, e, ++s->revision);
}

/* ZMPOP and the blocking pops: the first sorted set of the keys that
 * exists (they are never empty); a key of another type first is an error */
static void store__zmpop(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs < 1 || cmd->b < 1) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    for (uint32_t i = 0; i < cmd->nargs; i++) {
        kv_entry *e = store__typed(s, cmd, i, KV_TYPE_ZSET, res);
        if (res->status) return;
        if (!e) continue;
        uint64_t n = kv_zset_len(e) < (uint64_t)cmd->b ? kv_zset_len(e) : (uint64_t)cmd->b;
        buf_reset(&s->scratch);
        store__collect_member(&s->scratch, cmd->args[i]);
        store__zremove_ranks(s, e, 0, n, cmd->a == 1, true);
        res->integer = (int64_t)n;
        res->has_value = true;
        res->value = s->scratch.data;
        res->value_len = s->scratch.len;
        store__zset_changed(s, cmd, e, ++s->revision);
        return;
    }
}

static void store__zremrangebyrank(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 1) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__zset(s, cmd, res);
    if (!e) return;
    int64_t len = (int64_t)kv_zset_len(e), start = cmd->a, stop = cmd->b;
    if (start < 0) start += len;
    if (stop < 0) stop += len;
    if (start < 0) start = 0;
    if (start > stop || start >= len) return;
    if (stop >= len) stop = len - 1;
    store__zremove_ranks(s, e, (uint64_t)start, (uint64_t)(stop - start + 1), false, false);
    res->integer = stop - start + 1;
    store__zset_changed(s, cmd, e, ++s->revision);
}

static void store__zremrangebyscore(kv_store *s, const kv_command *cmd, kv_result *res)
{
    double min, max;
    bool minx, maxx;
    if (cmd->nargs != 3 || !kv_zset_parse_bound(cmd->args[1].ptr, cmd->args[1].len, &min, &minx) ||
        !kv_zset_parse_bound(cmd->args[2].ptr, cmd->args[2].len, &max, &maxx)) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__zset(s, cmd, res);
    if (!e) return;
    uint64_t from = kv_zset_below(e, min, !minx), to = kv_zset_below(e, max, maxx);
    if (to <= from) return;
    store__zremove_ranks(s, e, from, to - from, false, false);
    res->integer = (int64_t)(to - from);
    store__zset_changed(s, cmd, e, ++s->revision);
}

static void store__zremrangebylex(kv_store *s, const kv_command *cmd, kv_result *res)
{
    kv_lex_bound min, max;
    if (cmd->nargs != 3 || !kv_zset_parse_lex(cmd->args[1].ptr, cmd->args[1].len, &min) ||
        !kv_zset_parse_lex(cmd->args[2].ptr, cmd->args[2].len, &max)) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__zset(s, cmd, res);
    if (!e) return;
    uint64_t from = kv_zset_lex_first(e, &min), to = kv_zset_lex_end(e, &max);
    if (to <= from) return;
    store__zremove_ranks(s, e, from, to - from, false, false);
    res->integer = (int64_t)(to - from);
    store__zset_changed(s, cmd, e, ++s->revision);
}

/* ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE: sources may be sorted sets or
 * sets; each has a weight argument (the front end sends 1 by default) */
static void store__zstore(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs < 3 || cmd->nargs % 2 == 0 || cmd->a < KV_ZCOMB_UNION ||
        cmd->a > KV_ZCOMB_DIFF || cmd->b < KV_ZAGG_SUM || cmd->b > KV_ZAGG_MAX) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    size_t n = (cmd->nargs - 1) / 2;
    const kv_entry **srcs = xcalloc(n, sizeof(*srcs));
    double *w = xcalloc(n, sizeof(*w));
    for (size_t i = 0; i < n; i++) {
        kv_slice wt = cmd->args[1 + n + i];
        if (!kv_zset_parse_score(wt.ptr, wt.len, &w[i])) res->status = KV_ERR_MALFORMED;
    }
    for (size_t i = 0; i < n && !res->status; i++) {
        kv_entry *e = store__live(s, cmd, cmd->args[1 + i]);
        if (e && e->type != KV_TYPE_ZSET && e->type != KV_TYPE_SET) res->status = KV_ERR_WRONGTYPE;
        srcs[i] = e;
    }
    if (res->status) {
        free(srcs);
        free(w);
        return;
    }
    /* into a keyspace of its own first: dst may be one of the sources */
    kv_keyspace tmp;
    kv_keyspace_init(&tmp, s->ks.seed);
    kv_entry *out = kv_keyspace_insert(&tmp, "", 0, NULL, 0);
    kv_zset_init(&tmp, out);
    kv_zset_combine(&tmp, out, srcs, n, w, (int)cmd->b, (int)cmd->a);
    free(srcs);
    free(w);
    uint64_t card = kv_zset_len(out);
    uint64_t rev = store__dst_replace(s, cmd, card);
    if (card) {
        kv_entry *dst = kv_keyspace_insert(&s->ks, cmd->args[0].ptr, cmd->args[0].len, NULL, 0);
        kv_zset_init(&s->ks, dst);
        dst->create_rev = rev;
        kv_zset_iter it;
        kv_slice m;
        double score;
        kv_zset_iter_init(&it, out, 0, false);
        while (kv_zset_iter_next(&it, &m, &score)) kv_zset_set(&s->ks, dst, m, score);
        store__zset_changed(s, cmd, dst, rev);
    }
    kv_keyspace_close(&tmp);
    res->integer = (int64_t)card;
}

/* ZRANGESTORE and GEOSEARCHSTORE: dst (args[0]) replaced by the n
 * members in the scratch buffer (u32 len | member, then the score's 8
 * bytes), copied there first because dst may be the source */
static void store__zset_dst_from_scratch(kv_store *s, const kv_command *cmd, size_t n)
{
    uint64_t rev = store__dst_replace(s, cmd, n);
    if (n) {
        kv_entry *dst = kv_keyspace_insert(&s->ks, cmd->args[0].ptr, cmd->args[0].len, NULL, 0);
        kv_zset_init(&s->ks, dst);
        dst->create_rev = rev;
        for (size_t pos = 0; pos < s->scratch.len;) {
            uint32_t k = store__get32(s->scratch.data + pos);
            double score;
            memcpy(&score, s->scratch.data + pos + 4 + k, sizeof(score));
            kv_zset_set(&s->ks, dst, (kv_slice){s->scratch.data + pos + 4, k}, score);
            pos += 4 + (size_t)k + sizeof(score);
        }
        store__zset_changed(s, cmd, dst, rev);
    }
    buf_reset(&s->scratch);
}

/* ZRANGESTORE: the selection is copied out before dst goes (dst may be
 * src); an empty selection deletes dst, as in Redis */
static void store__zrangestore(kv_store *s, const kv_command *cmd, kv_result *res)
{
    int64_t f = cmd->a;
    kv_zrange q = {.rev = (f & KV_ZRS_REV) != 0, .limited = (f & KV_ZRS_LIMIT) != 0};
    q.by = (f & KV_ZRS_BYLEX)     ? KV_ZRANGE_LEX
           : (f & KV_ZRS_BYSCORE) ? KV_ZRANGE_SCORE
                                  : KV_ZRANGE_RANK;
    if (cmd->nargs != 6 || f < 0 || f > 15 || (f & KV_ZRS_BYLEX && f & KV_ZRS_BYSCORE) ||
        kv_zrange_bounds(&q, cmd->args[2], cmd->args[3]) != 0 ||
        !strconv_parse_i64(cmd->args[4].ptr, cmd->args[4].len, &q.offset) ||
        !strconv_parse_i64(cmd->args[5].ptr, cmd->args[5].len, &q.count)) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *src = store__typed(s, cmd, 1, KV_TYPE_ZSET, res);
    if (res->status) return;
    uint64_t from, n;
    kv_zrange_select(src, &q, &from, &n);
    /* member, score bits pairs */
    buf_reset(&s->scratch);
    if (n) {
        kv_zset_iter it;
        kv_slice m;
        double score;
        kv_zset_iter_init(&it, src, from, q.rev);
        for (uint64_t i = 0; i < n && kv_zset_iter_next(&it, &m, &score); i++) {
            store__collect_member(&s->scratch, m);
            buf_append(&s->scratch, (const char *)&score, sizeof(score));
        }
    }
    store__zset_dst_from_scratch(s, cmd, n);
    res->integer = (int64_t)n;
}

/* GEOSEARCHSTORE and GEORADIUS STORE: the search runs here, so the
 * stored set is the one the log's order sees. The hits are copied out
 * before dst goes (dst may be src); none deletes dst, as in Redis. */
static void store__geostore(kv_store *s, const kv_command *cmd, kv_result *res)
{
    kv_geo_query q;
    double to_m;
    if (cmd->nargs != 4 || cmd->a < 0 || cmd->a > 3 ||
        !kv_geo_query_decode(cmd->args[2].ptr, cmd->args[2].len, &q, &to_m)) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *src = store__typed(s, cmd, 1, KV_TYPE_ZSET, res);
    if (res->status) return;
    size_t n = 0;
    buf_reset(&s->scratch);
    if (src) {
        double score;
        if (cmd->a & KV_GEOSTORE_FROM_MEMBER) {
            if (!kv_zset_score(src, cmd->args[3], &score)) {
                res->status = KV_ERR_NO_MEMBER;
                return;
            }
            kv_geo_decode((uint64_t)score, &q.shape.lon, &q.shape.lat);
        }
        kv_geo_hit *hits = kv_geo_run(src, &q, &n);
        for (size_t i = 0; i < n; i++) {
            store__collect_member(&s->scratch, hits[i].member);
            score = (cmd->a & KV_GEOSTORE_DIST) ? hits[i].dist / to_m : (double)hits[i].score;
            buf_append(&s->scratch, (const char *)&score, sizeof(score));
        }
        free(hits);
    }
    store__zset_dst_from_scratch(s, cmd, n);
    res->integer = (int64_t)n;
}

static const kv_entry *store__sort_find(void *ctx, kv_slice key)
{
    struct {
        kv_store *s;
        const kv_command *cmd;
    } *c = ctx;
    kv_entry *e = kv_keyspace_find(&c->s->ks, key.ptr, key.len);
    return e && !kv_entry_expired(e, c->cmd->now_ms) ? e : NULL;
}

/* SORT ... STORE: sorted here; dst becomes the list of what SORT answers
 * (a missing GET value as an empty string), none deletes it */
static void store__sortstore(kv_store *s, const kv_command *cmd, kv_result *res)
{
    kv_sort_opts o = {.desc = cmd->a & KV_SORT_DESC,
                      .alpha = (cmd->a & KV_SORT_ALPHA) != 0,
                      .has_by = (cmd->a & KV_SORT_BY) != 0,
                      .store = true};
    if (cmd->nargs < 5 || cmd->a < 0 || cmd->a > 7 ||
        !strconv_parse_i64(cmd->args[3].ptr, cmd->args[3].len, &o.limit_start) ||
        !strconv_parse_i64(cmd->args[4].ptr, cmd->args[4].len, &o.limit_count)) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    o.by = cmd->args[2];
    o.gets = cmd->args + 5;
    o.ngets = cmd->nargs - 5;
    kv_entry *src = store__live(s, cmd, cmd->args[1]);
    if (src && src->type != KV_TYPE_LIST && src->type != KV_TYPE_SET && src->type != KV_TYPE_ZSET) {
        res->status = KV_ERR_WRONGTYPE;
        return;
    }
    struct {
        kv_store *s;
        const kv_command *cmd;
    } ctx = {s, cmd};
    buf out;
    buf_init(&out);
    size_t n;
    if (!kv_sort(src, &o, store__sort_find, &ctx, &out, &n)) {
        res->status = KV_ERR_NOT_FLOAT_SORT;
        buf_close(&out);
        return;
    }
    uint64_t rev = store__dst_replace(s, cmd, n);
    if (n) {
        kv_entry *dst = store__list_create(s, cmd->args[0], rev);
        for (size_t pos = 0; pos < out.len;) {
            const unsigned char *p = (const unsigned char *)out.data + pos;
            size_t len = (size_t)p[1] | (size_t)p[2] << 8 | (size_t)p[3] << 16 | (size_t)p[4] << 24;
            kv_list_push(&s->ks, dst, (kv_slice){(const char *)p + 5, len}, false);
            pos += 5 + len;
        }
        store__list_changed(s, cmd, dst, rev);
    }
    buf_close(&out);
    res->integer = (int64_t)n;
}

/* ---- streams (kv/stream.h) ---------------------------------------------------------- */

/* A stream that changed (or was created) at rev: unlike other
 * collections an empty one stays. */
static void store__stream_changed(kv_store *s, const kv_command *cmd, kv_entry *e, uint64_t rev)
{
    e->version++;
    e->mod_rev = rev;
    store__changed_put(s, cmd, e);
}

/* A consumer group command's change: created, whether it made a consumer. */
static void store__group_changed(kv_store *s, const kv_command *cmd, kv_entry *e, uint64_t rev,
                                 bool created)
{
    e->version++;
    e->mod_rev = rev;
    store__changed_as(s, cmd, KV_CHANGE_PUT, kv_entry_key(e), e->key_len, e, e->mod_rev, created);
}

/* XADD's and XTRIM's trimming: a = KV_XTRIM_* | KV_XTRIM_APPROX, b = limit,
 * the threshold in args[at] (a decimal count, or an ID for MINID). */
static uint64_t store__stream_trim(kv_store *s, const kv_command *cmd, kv_entry *e, uint32_t at)
{
    int kind = (int)(cmd->a & 3);
    bool approx = cmd->a & KV_XTRIM_APPROX;
    uint64_t limit = cmd->b > 0 ? (uint64_t)cmd->b : 0;
    kv_slice t = cmd->args[at];
    if (kind == KV_XTRIM_MAXLEN) {
        uint64_t maxlen;
        if (!strconv_parse_u64(t.ptr, t.len, &maxlen)) return 0;
        return kv_stream_trim_maxlen(&s->ks, e, maxlen, approx, limit);
    }
    if (kind == KV_XTRIM_MINID) {
        kv_stream_id id;
        if (!kv_stream_id_parse(t.ptr, t.len, 0, &id, NULL)) return 0;
        return kv_stream_trim_minid(&s->ks, e, id, approx, limit);
    }
    return 0;
}

/* XADD key id threshold field value ...: id "" for *, "ms-*" or "ms-seq";
 * flag XX: NOMKSTREAM; a, b: trimming. The new ID is the result's value. */
static void store__xadd(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs < 5 || (cmd->nargs - 3) % 2) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__typed(s, cmd, 0, KV_TYPE_STREAM, res);
    if (res->status) return;
    if (!e && (cmd->flags & KV_FLAG_XX)) return; /* NOMKSTREAM: null */
    kv_slice idarg = cmd->args[1];
    kv_stream_id want = {0, 0}, id;
    bool auto_ms = idarg.len == 0, auto_seq = false, zero = false;
    if (!auto_ms && !kv_stream_id_parse(idarg.ptr, idarg.len, 0, &want, &auto_seq)) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    if (!kv_stream_next_id(e, auto_ms, auto_seq, want, cmd->now_ms, &id, &zero)) {
        res->status = zero ? KV_ERR_STREAM_ID_ZERO : KV_ERR_STREAM_ID_SMALL;
        return;
    }
    uint64_t rev = ++s->revision;
    if (!e) {
        e = kv_keyspace_insert(&s->ks, cmd->args[0].ptr, cmd->args[0].len, NULL, 0);
        kv_stream_init(&s->ks, e);
        e->create_rev = rev;
    }
    kv_stream_append(&s->ks, e, id, &cmd->args[3], (cmd->nargs - 3) / 2);
    store__stream_trim(s, cmd, e, 2);
    store__stream_changed(s, cmd, e, rev);
    char text[48];
    int n = kv_stream_id_format(id, text);
    buf_reset(&s->scratch);
    buf_append(&s->scratch, text, (size_t)n);
    res->value = s->scratch.data;
    res->value_len = (size_t)n;
    res->has_value = true;
    store__describe(res, e);
}

/* XDEL key id ...: how many were there */
static void store__xdel(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs < 2) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__typed(s, cmd, 0, KV_TYPE_STREAM, res);
    if (!e) return;
    int64_t n = 0;
    for (uint32_t i = 1; i < cmd->nargs; i++) {
        kv_stream_id id;
        if (kv_stream_id_parse(cmd->args[i].ptr, cmd->args[i].len, 0, &id, NULL))
            n += kv_stream_delete(&s->ks, e, id);
    }
    res->integer = n;
    if (n) store__stream_changed(s, cmd, e, ++s->revision);
}

/* XTRIM key threshold; a, b: trimming. Integer: entries removed. */
static void store__xtrim(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs != 2) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__typed(s, cmd, 0, KV_TYPE_STREAM, res);
    if (!e) return;
    uint64_t n = store__stream_trim(s, cmd, e, 1);
    res->integer = (int64_t)n;
    if (n) store__stream_changed(s, cmd, e, ++s->revision);
}

/* XSETID key id [max-deleted-id]; a = ENTRIESADDED (-1: none). Checked
 * here, against the state, as Redis does: the ID not below the last
 * entry's, ENTRIESADDED not below the length. */
static void store__xsetid(kv_store *s, const kv_command *cmd, kv_result *res)
{
    kv_stream_id id, md;
    if (cmd->nargs < 2 || cmd->nargs > 3 || cmd->a < -1 ||
        !kv_stream_id_parse(cmd->args[1].ptr, cmd->args[1].len, 0, &id, NULL) ||
        (cmd->nargs == 3 &&
         !kv_stream_id_parse(cmd->args[2].ptr, cmd->args[2].len, 0, &md, NULL))) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__typed(s, cmd, 0, KV_TYPE_STREAM, res);
    if (res->status) return;
    if (!e) {
        res->status = KV_ERR_NO_SUCH_KEY;
        return;
    }
    uint64_t len = kv_stream_len(e);
    if (len) {
        kv_stream_id top = kv_stream_entry_id(kv_stream_at(e, len - 1));
        if (kv_stream_id_cmp(id, top) < 0) {
            res->status = KV_ERR_STREAM_ID_SMALL;
            return;
        }
        if (cmd->a >= 0 && (uint64_t)cmd->a < len) {
            res->status = KV_ERR_ENTRIES_ADDED;
            return;
        }
    }
    kv_stream_set_ids(e, id, cmd->a, cmd->nargs == 3 ? &md : NULL);
    store__stream_changed(s, cmd, e, ++s->revision);
}

/* ---- stream consumer groups (kv/stream_group.h) --------------------------------- */

/* The answer's entries: u32 count, each u64 ms | u64 seq | i32 pairs
 * (-1: deleted, -2: the ID alone) | pairs x 2 x (u32 len | bytes). */
static void store__put32(buf *b, uint32_t v)
{
    char c[4];
    for (int i = 0; i < 4; i++) c[i] = (char)(v >> (8 * i));
    buf_append(b, c, 4);
}

static void store__le64(buf *b, uint64_t v)
{
    store__put32(b, (uint32_t)v);
    store__put32(b, (uint32_t)(v >> 32));
}

static void store__put_entry(buf *b, kv_stream_id id, const kv_stream_entry *x, int32_t mode)
{
    store__le64(b, id.ms);
    store__le64(b, id.seq);
    if (!x) {
        store__put32(b, (uint32_t)mode);
        return;
    }
    uint32_t n = kv_stream_entry_fields(x);
    store__put32(b, n);
    for (uint32_t i = 0; i < n; i++) {
        kv_slice f, v;
        kv_stream_entry_field(x, i, &f, &v);
        store__put32(b, (uint32_t)f.len);
        buf_append(b, f.ptr, f.len);
        store__put32(b, (uint32_t)v.len);
        buf_append(b, v.ptr, v.len);
    }
}

static const kv_stream_entry *store__stream_find(const kv_entry *e, kv_stream_id id)
{
    uint64_t i = kv_stream_seek(e, id);
    const kv_stream_entry *x = kv_stream_at(e, i);
    return x && kv_stream_id_cmp(kv_stream_entry_id(x), id) == 0 ? x : NULL;
}

static void store__value_names(kv_store *s, kv_result *res, kv_slice a, kv_slice b)
{
    /* an error's names for the front end's message: u32 len | a | b */
    buf_reset(&s->scratch);
    store__put32(&s->scratch, (uint32_t)a.len);
    buf_append(&s->scratch, a.ptr, a.len);
    buf_append(&s->scratch, b.ptr, b.len);
    res->value = s->scratch.data;
    res->value_len = s->scratch.len;
    res->has_value = true;
}

/* XGROUP: a = KV_XGROUP_*, args key group [id | consumer]; b = ENTRIESREAD
 * (INT64_MIN: not given); flag NX: MKSTREAM. */
static void store__xgroup(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs < 2) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__typed(s, cmd, 0, KV_TYPE_STREAM, res);
    if (res->status) return;
    kv_slice key = cmd->args[0], gname = cmd->args[1];
    if (!e && !(cmd->a == KV_XGROUP_CREATE && (cmd->flags & KV_FLAG_NX))) {
        res->status = KV_ERR_NO_SUCH_KEY;
        return;
    }
    kv_sg *g = e ? kv_sg_find(e, gname.ptr, gname.len) : NULL;
    if (cmd->a != KV_XGROUP_CREATE && cmd->a != KV_XGROUP_DESTROY && !g) {
        res->status = KV_ERR_NOGROUP;
        store__value_names(s, res, key, gname);
        return;
    }
    uint64_t rev = s->revision + 1;
    bool changed = false;
    switch (cmd->a) {
    case KV_XGROUP_CREATE:
    case KV_XGROUP_SETID: {
        if (cmd->nargs != 3) {
            res->status = KV_ERR_MALFORMED;
            return;
        }
        if (cmd->a == KV_XGROUP_CREATE && g) {
            res->status = KV_ERR_BUSYGROUP;
            return;
        }
        kv_slice ida = cmd->args[2];
        kv_stream_id id = {0, 0};
        bool dollar = ida.len == 1 && ida.ptr[0] == '$';
        if (!dollar && !kv_stream_id_parse(ida.ptr, ida.len, 0, &id, NULL)) {
            res->status = KV_ERR_MALFORMED;
            return;
        }
        if (!e) {
            e = kv_keyspace_insert(&s->ks, key.ptr, key.len, NULL, 0);
            kv_stream_init(&s->ks, e);
            e->create_rev = rev;
        }
        if (dollar) id = kv_stream_last_id(e);
        int64_t read = cmd->b == INT64_MIN ? -1 : cmd->b;
        if (cmd->a == KV_XGROUP_CREATE) {
            kv_sg_create(&s->ks, e, gname.ptr, gname.len, id, read);
        } else {
            g->last_id = id;
            g->entries_read = read;
        }
        changed = true;
        break;
    }
    case KV_XGROUP_DESTROY:
        res->integer = g && kv_sg_destroy(&s->ks, e, gname.ptr, gname.len);
        changed = res->integer != 0;
        break;
    case KV_XGROUP_CREATECONSUMER: {
        if (cmd->nargs != 3) {
            res->status = KV_ERR_MALFORMED;
            return;
        }
        bool created;
        kv_sg_consumer_get(&s->ks, e, g, cmd->args[2].ptr, cmd->args[2].len, cmd->now_ms, &created);
        res->integer = created;
        changed = created;
        break;
    }
    case KV_XGROUP_DELCONSUMER: {
        if (cmd->nargs != 3) {
            res->status = KV_ERR_MALFORMED;
            return;
        }
        kv_sg_consumer *c = kv_sg_consumer_find(g, cmd->args[2].ptr, cmd->args[2].len);
        if (c) {
            res->integer = (int64_t)kv_sg_consumer_delete(&s->ks, e, g, c);
            changed = true;
        }
        break;
    }
    default:
        res->status = KV_ERR_MALFORMED;
        return;
    }
    if (changed) {
        s->revision = rev;
        store__stream_changed(s, cmd, e, rev);
    }
}

/* XREADGROUP: args group consumer key... id... (b keys; id "" for >);
 * a = COUNT (0: all); flag NX: NOACK. The answer: u32 streams, each u32
 * len | key | entries (store__put_entry); a > stream without new entries
 * is left out. */
static void store__xreadgroup(kv_store *s, const kv_command *cmd, kv_result *res)
{
    uint64_t nk = (uint64_t)cmd->b;
    if (cmd->b < 1 || cmd->nargs != 2 + 2 * nk) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_slice gname = cmd->args[0], cname = cmd->args[1];
    /* every stream and group first, as Redis checks them before reading */
    for (uint64_t i = 0; i < nk; i++) {
        kv_entry *e = store__typed(s, cmd, (uint32_t)(2 + i), KV_TYPE_STREAM, res);
        if (res->status) return;
        if (!e || !kv_sg_find(e, gname.ptr, gname.len)) {
            res->status = KV_ERR_NOGROUP;
            store__value_names(s, res, cmd->args[2 + i], gname);
            return;
        }
    }
    buf out;
    buf_init(&out);
    store__put32(&out, 0);
    uint32_t nstreams = 0;
    uint64_t rev = s->revision + 1;
    bool changed = false;
    bool *made = xcalloc(nk, sizeof(*made)); /* per stream: its group got the consumer */
    uint64_t count = cmd->a > 0 ? (uint64_t)cmd->a : UINT64_MAX;
    for (uint64_t i = 0; i < nk; i++) {
        kv_slice key = cmd->args[2 + i], ida = cmd->args[2 + nk + i];
        kv_entry *e = kv_keyspace_find(&s->ks, key.ptr, key.len);
        kv_sg *g = kv_sg_find(e, gname.ptr, gname.len);
        bool created;
        kv_sg_consumer *c =
            kv_sg_consumer_get(&s->ks, e, g, cname.ptr, cname.len, cmd->now_ms, &created);
        c->seen_ms = cmd->now_ms;
        /* a read that found nothing for a known consumer is no change to
         * report (a blocked XREADGROUP proposed again must not wake itself) */
        changed |= created;
        made[i] = created;
        size_t at = out.len;
        store__put32(&out, (uint32_t)key.len);
        buf_append(&out, key.ptr, key.len);
        size_t count_at = out.len;
        store__put32(&out, 0);
        uint32_t n = 0;
        if (ida.len == 0) { /* > : entries never delivered to the group */
            kv_stream_id after = g->last_id;
            uint64_t pos = kv_stream_seek(e, after);
            const kv_stream_entry *x = kv_stream_at(e, pos);
            if (x && kv_stream_id_cmp(kv_stream_entry_id(x), after) == 0)
                x = kv_stream_at(e, ++pos);
            while (x && n < count) {
                kv_stream_id id = kv_stream_entry_id(x);
                store__put_entry(&out, id, x, 0);
                kv_sg_deliver(&s->ks, e, g, c, id, cmd->now_ms, cmd->flags & KV_FLAG_NX);
                n++;
                changed = true;
                x = kv_stream_at(e, ++pos);
            }
            if (!n) {
                out.len = at; /* left out */
                continue;
            }
        } else { /* the consumer's own pending entries after that ID */
            kv_stream_id from;
            if (!kv_stream_id_parse(ida.ptr, ida.len, 0, &from, NULL)) {
                res->status = KV_ERR_MALFORMED;
                buf_close(&out);
                return;
            }
            for (uint64_t k = kv_sg_pel_seek(g, from); k < g->npel && n < count; k++) {
                kv_sg_pending *p = &g->pel[k];
                if (p->owner != c || kv_stream_id_cmp(p->id, from) <= 0) continue;
                const kv_stream_entry *x = store__stream_find(e, p->id);
                store__put_entry(&out, p->id, x, -1);
                if (x) { /* delivered again, as Redis counts it */
                    p->delivered_ms = cmd->now_ms;
                    p->deliveries++;
                    changed = true;
                }
                n++;
            }
        }
        char *cp = out.data + count_at;
        for (int b = 0; b < 4; b++) cp[b] = (char)(n >> (8 * b));
        nstreams++;
    }
    for (int b = 0; b < 4; b++) out.data[b] = (char)(nstreams >> (8 * b));
    if (changed) {
        s->revision = rev;
        for (uint64_t i = 0; i < nk; i++) {
            kv_entry *e = kv_keyspace_find(&s->ks, cmd->args[2 + i].ptr, cmd->args[2 + i].len);
            store__group_changed(s, cmd, e, rev, made[i]);
        }
    }
    free(made);
    buf_reset(&s->scratch);
    buf_append(&s->scratch, out.data, out.len);
    buf_close(&out);
    res->value = s->scratch.data;
    res->value_len = s->scratch.len;
    res->has_value = nstreams > 0; /* nothing: a blocked XREADGROUP keeps waiting */
}

/* XACK key group id ...: how many were pending. */
static void store__xack(kv_store *s, const kv_command *cmd, kv_result *res)
{
    if (cmd->nargs < 3) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__typed(s, cmd, 0, KV_TYPE_STREAM, res);
    if (!e) return;
    kv_sg *g = kv_sg_find(e, cmd->args[1].ptr, cmd->args[1].len);
    if (!g) return;
    int64_t n = 0;
    for (uint32_t i = 2; i < cmd->nargs; i++) {
        kv_stream_id id;
        if (kv_stream_id_parse(cmd->args[i].ptr, cmd->args[i].len, 0, &id, NULL))
            n += kv_sg_ack(&s->ks, e, g, id);
    }
    res->integer = n;
    if (n) store__stream_changed(s, cmd, e, ++s->revision);
}

/* XCLAIM key group consumer id ... (and, flag PERSIST, LASTID last): a =
 * min idle ms; b = the delivery time to set: flag KEEPTTL: now - b (IDLE),
 * flag GET: b (TIME), else now; expire_ms = RETRYCOUNT (-1: add one,
 * unless JUSTID); flag NX: FORCE, flag XX: JUSTID. The answer's entries
 * (IDs alone with JUSTID). Also XAUTOCLAIM key group consumer start:
 * a = min idle, b = COUNT, flag XX: JUSTID; its answer: u64 ms | u64 seq
 * (the next start), the entries, then u32 n | n x (u64 ms | u64 seq): the
 * IDs deleted from the PEL because the stream no longer has them. */
static void store__xclaim(kv_store *s, const kv_command *cmd, kv_result *res)
{
    bool autoclaim = cmd->op == KV_OP_XAUTOCLAIM;
    bool lastid = !autoclaim && (cmd->flags & KV_FLAG_PERSIST);
    if (cmd->nargs < 4 + (lastid ? 1u : 0u) || (autoclaim && cmd->nargs != 4)) {
        res->status = KV_ERR_MALFORMED;
        return;
    }
    kv_entry *e = store__typed(s, cmd, 0, KV_TYPE_STREAM, res);
    if (res->status) return;
    kv_sg *g = e ? kv_sg_find(e, cmd->args[1].ptr, cmd->args[1].len) : NULL;
    if (!g) {
        res->status = KV_ERR_NOGROUP;
        store__value_names(s, res, cmd->args[0], cmd->args[1]);
        return;
    }
    bool justid = cmd->flags & KV_FLAG_XX;
    int64_t now = cmd->now_ms, min_idle = cmd->a;
    int64_t delivered = now;
    if (!autoclaim && (cmd->flags & KV_FLAG_KEEPTTL)) delivered = now - cmd->b;
    if (!autoclaim && (cmd->flags & KV_FLAG_GET)) delivered = cmd->b;
    /* RETRYCOUNT sets the count; else a claim counts a delivery, but
     * with JUSTID (the entry is not delivered), as Redis */
    int64_t retry = autoclaim ? -1 : cmd->expire_ms;
    if (retry < 0) retry = justid ? KV_SG_DELIVERIES_KEEP : KV_SG_DELIVERIES_ADD;
    bool created;
    kv_sg_consumer *c =
        kv_sg_consumer_get(&s->ks, e, g, cmd->args[2].ptr, cmd->args[2].len, now, &created);
    c->seen_ms = now;
    buf out, gone;
    buf_init(&out);
    buf_init(&gone);
    uint32_t n = 0, ngone = 0;
    store__put32(&out, 0);
    kv_stream_id next = {0, 0};
    if (!autoclaim) {
        uint32_t nids = cmd->nargs - 3 - (lastid ? 1u : 0u);
        if (lastid) {
            kv_stream_id last;
            kv_slice la = cmd->args[cmd->nargs - 1];
            if (kv_stream_id_parse(la.ptr, la.len, 0, &last, NULL) &&
                kv_stream_id_cmp(last, g->last_id) > 0)
                g->last_id = last;
        }
        for (uint32_t i = 0; i < nids; i++) {
            kv_stream_id id;
            if (!kv_stream_id_parse(cmd->args[3 + i].ptr, cmd->args[3 + i].len, 0, &id, NULL))
                continue;
            kv_sg_pending *p = kv_sg_pel_find(g, id);
            const kv_stream_entry *x = store__stream_find(e, id);
            if (!p && (cmd->flags & KV_FLAG_NX) && x) { /* FORCE: into the PEL */
                p = kv_sg_pel_add(&s->ks, e, g, c, id, delivered);
                p->deliveries = 1; /* Redis' new NACK; the claim below may count one more */
            }
            if (!p) continue;
            if (!x) { /* deleted from the stream: out of the PEL */
                kv_sg_pel_remove(&s->ks, e, g, p);
                continue;
            }
            if (min_idle > 0 && now - p->delivered_ms < min_idle) continue;
            kv_sg_claim(g, p, c, delivered, retry);
            store__put_entry(&out, id, justid ? NULL : x, -2);
            n++;
        }
    } else {
        kv_stream_id start;
        if (!kv_stream_id_parse(cmd->args[3].ptr, cmd->args[3].len, 0, &start, NULL)) {
            res->status = KV_ERR_MALFORMED;
            buf_close(&out);
            buf_close(&gone);
            return;
        }
        uint64_t count = cmd->b > 0 ? (uint64_t)cmd->b : 100, scanned = 0;
        uint64_t k = kv_sg_pel_seek(g, start);
        while (k < g->npel && scanned < count * 10 && n < count) {
            kv_sg_pending *p = &g->pel[k];
            scanned++;
            const kv_stream_entry *x = store__stream_find(e, p->id);
            if (!x) {
                store__le64(&gone, p->id.ms);
                store__le64(&gone, p->id.seq);
                ngone++;
                kv_sg_pel_remove(&s->ks, e, g, p);
                continue; /* the next one moved into k */
            }
            if (min_idle > 0 && now - p->delivered_ms < min_idle) {
                k++;
                continue;
            }
            kv_stream_id id = p->id;
            kv_sg_claim(g, p, c, now, retry);
            store__put_entry(&out, id, justid ? NULL : x, -2);
            n++;
            k++;
        }
        if (k < g->npel) next = g->pel[k].id;
    }
    for (int b = 0; b < 4; b++) out.data[b] = (char)(n >> (8 * b));
    store__group_changed(s, cmd, e, ++s->revision, created);
    buf_reset(&s->scratch);
    if (autoclaim) {
        store__le64(&s->scratch, next.ms);
        store__le64(&s->scratch, next.seq);
    }
    buf_append(&s->scratch, out.data, out.len);
    if (autoclaim) {
        store__put32(&s->scratch, ngone);
        buf_append(&s->scratch, gone.data, gone.len);
    }
    buf_close(&out);
    buf_close(&gone);
    res->value = s->scratch.data;
    res->value_len = s->scratch.len;
    res->has_value = true;
}

static void store__dispatch(kv_store *s, const kv_command *cmd, kv_result *res);

void kv_store_apply(kv_store *s, const kv_command *cmd, kv_result *res)
{
    bool timed = s->time_applies && s->apply_depth == 0;
    uint64_t t0 = timed ? clock_mono_ns() : 0;
    s->apply_depth++;
    memset(res, 0, sizeof(*res));
    res->value = "";
    if (!(cmd->flags & KV_FLAG_IDEMPOTENT)) {
        store__dispatch(s, cmd, res);
    } else if (cmd->nargs < 1 || cmd->args[cmd->nargs - 1].len == 0 ||
               cmd->args[cmd->nargs - 1].len > KV_DEDUP_KEY_MAX) {
        res->status = KV_ERR_MALFORMED;
    } else {
        kv_slice key = cmd->args[cmd->nargs - 1];
        const kv_dedup_entry *seen = kv_dedup_find(&s->dedup, key.ptr, key.len);
        if (seen) {
            res->status = (kv_status)seen->status;
            res->integer = seen->integer;
            res->create_rev = seen->create_rev;
            res->mod_rev = seen->mod_rev;
            res->version = seen->version;
            res->key_exists = seen->mod_rev != 0;
            res->replayed = true;
        } else {
            kv_command inner = *cmd;
            inner.nargs--;
            inner.flags &= (uint16_t)~KV_FLAG_IDEMPOTENT;
            store__dispatch(s, &inner, res);
            kv_dedup_entry e = {.key_len = (uint8_t)key.len,
                                .status = (uint32_t)res->status,
                                .integer = res->integer,
                                .revision = s->revision,
                                .create_rev = res->key_exists ? res->create_rev : 0,
                                .mod_rev = res->key_exists ? res->mod_rev : 0,
                                .version = res->key_exists ? res->version : 0};
            memcpy(e.key, key.ptr, key.len);
            kv_dedup_put(&s->dedup, &e);
        }
    }
    res->revision = s->revision;
    s->apply_depth--;
    if (timed) res->apply_ns = clock_mono_ns() - t0;
    if (s->on_result) s->on_result(s->on_result_ctx, cmd, res);
}

static void store__dispatch(kv_store *s, const kv_command *cmd, kv_result *res)
{
    switch (cmd->op) {
    case KV_OP_PUT:
        store__put(s, cmd, res);
        break;
    case KV_OP_DEL:
        store__del(s, cmd, res);
        break;
    case KV_OP_MSET:
        store__mset(s, cmd, res);
        break;
    case KV_OP_INCR:
        store__incr(s, cmd, res);
        break;
    case KV_OP_INCRFLOAT:
        store__incrfloat(s, cmd, res);
        break;
    case KV_OP_APPEND:
        store__append(s, cmd, res);
        break;
    case KV_OP_SETRANGE:
        store__setrange(s, cmd, res);
        break;
    case KV_OP_EXPIRE:
        store__expire(s, cmd, res);
        break;
    case KV_OP_PERSIST:
        store__persist(s, cmd, res);
        break;
    case KV_OP_GETEX:
        store__getex(s, cmd, res);
        break;
    case KV_OP_RENAME:
        store__rename(s, cmd, res);
        break;
    case KV_OP_FLUSH:
        store__flush(s, cmd, res);
        break;
    case KV_OP_EXPIRE_KEYS:
        store__expire_keys(s, cmd, res);
        break;
    case KV_OP_NOOP:
        break;
    case KV_OP_MEMBER:
        store__member(s, cmd, res);
        break;
    case KV_OP_HSET:
        store__hset(s, cmd, res);
        break;
    case KV_OP_HDEL:
        store__hdel(s, cmd, res);
        break;
    case KV_OP_HINCR:
        store__hincr(s, cmd, res);
        break;
    case KV_OP_HINCRFLOAT:
        store__hincrfloat(s, cmd, res);
        break;
    case KV_OP_LPUSH:
        store__lpush(s, cmd, res);
        break;
    case KV_OP_LPOP:
        store__lpop(s, cmd, res);
        break;
    case KV_OP_LSET:
        store__lset(s, cmd, res);
        break;
    case KV_OP_LREM:
        store__lrem(s, cmd, res);
        break;
    case KV_OP_LTRIM:
        store__ltrim(s, cmd, res);
        break;
    case KV_OP_LINSERT:
        store__linsert(s, cmd, res);
        break;
    case KV_OP_LMOVE:
        store__lmove(s, cmd, res);
        break;
    case KV_OP_LMPOP:
        store__lmpop(s, cmd, res);
        break;
    case KV_OP_SADD:
        store__sadd(s, cmd, res);
        break;
    case KV_OP_SREM:
        store__srem(s, cmd, res);
        break;
    case KV_OP_SPOP:
        store__spop(s, cmd, res);
        break;
    case KV_OP_SMOVE:
        store__smove(s, cmd, res);
        break;
    case KV_OP_SSTORE:
        store__sstore(s, cmd, res);
        break;
    case KV_OP_ZADD:
        store__zadd(s, cmd, res);
        break;
    case KV_OP_ZREM:
        store__zrem(s, cmd, res);
        break;
    case KV_OP_ZPOP:
        store__zpop(s, cmd, res);
        break;
    case KV_OP_ZREMRANGEBYRANK:
        store__zremrangebyrank(s, cmd, res);
        break;
    case KV_OP_ZREMRANGEBYSCORE:
        store__zremrangebyscore(s, cmd, res);
        break;
    case KV_OP_ZREMRANGEBYLEX:
        store__zremrangebylex(s, cmd, res);
        break;
    case KV_OP_ZSTORE:
        store__zstore(s, cmd, res);
        break;
    case KV_OP_ZMPOP:
        store__zmpop(s, cmd, res);
        break;
    case KV_OP_ZRANGESTORE:
        store__zrangestore(s, cmd, res);
        break;
    case KV_OP_SETBIT:
        store__setbit(s, cmd, res);
        break;
    case KV_OP_BITOP:
        store__bitop(s, cmd, res);
        break;
    case KV_OP_BITFIELD:
        store__bitfield(s, cmd, res);
        break;
    case KV_OP_PFADD:
        store__pfadd(s, cmd, res);
        break;
    case KV_OP_PFMERGE:
        store__pfmerge(s, cmd, res);
        break;
    case KV_OP_GEOSTORE:
        store__geostore(s, cmd, res);
        break;
    case KV_OP_COPY:
        store__copy(s, cmd, res);
        break;
    case KV_OP_SORTSTORE:
        store__sortstore(s, cmd, res);
        break;
    case KV_OP_RESTORE:
        store__restore(s, cmd, res);
        break;
    case KV_OP_CONFIG:
        store__config(s, cmd, res);
        break;
    case KV_OP_XGROUP:
        store__xgroup(s, cmd, res);
        break;
    case KV_OP_XREADGROUP:
        store__xreadgroup(s, cmd, res);
        break;
    case KV_OP_XACK:
        store__xack(s, cmd, res);
        break;
    case KV_OP_XCLAIM:
    case KV_OP_XAUTOCLAIM:
        store__xclaim(s, cmd, res);
        break;
    case KV_OP_FUNCTION_LOAD:
    case KV_OP_FUNCTION_DELETE:
    case KV_OP_FUNCTION_FLUSH:
    case KV_OP_FUNCTION_RESTORE:
        kv_functions_apply(s, cmd, res);
        break;
    case KV_OP_EXEC:
        kv_tx_apply(s, cmd, res);
        break;
    case KV_OP_XADD:
        store__xadd(s, cmd, res);
        break;
    case KV_OP_XDEL:
        store__xdel(s, cmd, res);
        break;
    case KV_OP_XTRIM:
        store__xtrim(s, cmd, res);
        break;
    case KV_OP_XSETID:
        store__xsetid(s, cmd, res);
        break;
    case KV_OP_PUBLISH:
        /* a message, not state: nothing changes, no revision */
        if (cmd->nargs != 2)
            res->status = KV_ERR_MALFORMED;
        else if (s->on_publish)
            res->integer = s->on_publish(s->on_publish_ctx, cmd);
        break;
    default:
        res->status = KV_ERR_MALFORMED;
        break;
    }
}

static void store__put64(buf *out, uint64_t v)
{
    char b[8];
    for (int i = 0; i < 8; i++) b[i] = (char)(v >> (8 * i));
    buf_append(out, b, 8);
}

static uint32_t store__get32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

static kv_slice store__slice_at(const kv_result *res, size_t *pos)
{
    uint32_t n = store__get32(res->value + *pos);
    kv_slice s = {res->value + *pos + 4, n};
    *pos += 4 + (size_t)n;
    return s;
}

kv_slice kv_result_popped_key(const kv_result *res, size_t *pos)
{
    return store__slice_at(res, pos);
}

bool kv_result_popped_next(const kv_result *res, size_t *pos, kv_slice *out)
{
    if (*pos + 4 > res->value_len) return false;
    *out = store__slice_at(res, pos);
    return true;
}

static uint64_t store__get64(const char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | (unsigned char)p[i];
    return v;
}

#define KV_RESULT_FIXED 58

void kv_result_encode(const kv_result *res, buf *out)
{
    char b4[4];
    uint32_t st = (uint32_t)res->status;
    for (int i = 0; i < 4; i++) b4[i] = (char)(st >> (8 * i));
    buf_append(out, b4, 4);
    store__put64(out, (uint64_t)res->integer);
    store__put64(out, res->revision);
    buf_append_char(out, res->key_exists ? 1 : 0);
    store__put64(out, res->create_rev);
    store__put64(out, res->mod_rev);
    store__put64(out, res->version);
    store__put64(out, (uint64_t)res->expire_ms);
    buf_append_char(out, (char)((res->has_value ? 1 : 0) | (res->replayed ? 2 : 0)));
    uint32_t n = (uint32_t)res->value_len;
    for (int i = 0; i < 4; i++) b4[i] = (char)(n >> (8 * i));
    buf_append(out, b4, 4);
    buf_append(out, res->value, res->value_len);
}

int kv_result_decode(const char *d, size_t len, kv_result *res)
{
    if (len < KV_RESULT_FIXED) return -1;
    memset(res, 0, sizeof(*res));
    uint32_t st = store__get32(d);
    if (st >= KV_STATUS_COUNT_) return -1;
    res->status = (kv_status)st;
    res->integer = (int64_t)store__get64(d + 4);
    res->revision = store__get64(d + 12);
    res->key_exists = d[20] != 0;
    res->create_rev = store__get64(d + 21);
    res->mod_rev = store__get64(d + 29);
    res->version = store__get64(d + 37);
    res->expire_ms = (int64_t)store__get64(d + 45);
    res->has_value = (d[53] & 1) != 0;
    res->replayed = (d[53] & 2) != 0;
    uint32_t n = store__get32(d + 54);
    if (n != len - KV_RESULT_FIXED) return -1;
    res->value = d + KV_RESULT_FIXED;
    res->value_len = n;
    return 0;
}
