/* slowlog: see slowlog.h. A ring that grows by doubling up to max_len
 * (a max_len in the millions costs nothing until entries come); a lower
 * max_len rebuilds it with the newest entries. */
#include "api/slowlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/alloc.h"

void slowlog_init(slowlog *s)
{
    memset(s, 0, sizeof(*s));
    s->slower_than = SLOWLOG_DEFAULT_SLOWER_THAN;
    s->max_len = SLOWLOG_DEFAULT_MAX_LEN;
}

static void entry__free(slowlog_entry *e)
{
    for (uint32_t i = 0; i < e->argc; i++) free(e->argv[i]);
    free(e->argv);
    free(e->lens);
    free(e->peer);
    free(e->name);
    memset(e, 0, sizeof(*e));
}

/* The slot of the i-th newest entry. */
static slowlog_entry *slowlog__at(const slowlog *s, uint64_t i)
{
    return &s->ring[(s->head + s->cap - 1 - i) % s->cap];
}

void slowlog_reset(slowlog *s)
{
    for (uint64_t i = 0; i < s->len; i++) entry__free(slowlog__at(s, i));
    s->len = 0;
    s->head = 0;
}

void slowlog_close(slowlog *s)
{
    slowlog_reset(s);
    free(s->ring);
    s->ring = NULL;
    s->cap = 0;
}

bool slowlog_wants(const slowlog *s, uint64_t duration_us)
{
    return s->slower_than >= 0 && s->max_len > 0 && duration_us >= (uint64_t)s->slower_than;
}

/* A ring of cap slots holding the newest min(len, cap) entries, oldest
 * first (the rest are freed). */
static void slowlog__rebuild(slowlog *s, uint64_t cap)
{
    uint64_t keep = s->len < cap ? s->len : cap;
    slowlog_entry *ring = cap ? xcalloc(cap, sizeof(*ring)) : NULL;
    for (uint64_t i = 0; i < s->len; i++) {
        slowlog_entry *e = slowlog__at(s, i);
        if (i < keep)
            ring[keep - 1 - i] = *e;
        else
            entry__free(e);
    }
    free(s->ring);
    s->ring = ring;
    s->cap = cap;
    s->len = keep;
    s->head = cap ? keep % cap : 0;
}

void slowlog_set_max_len(slowlog *s, uint64_t max_len)
{
    s->max_len = max_len;
    if (s->cap > max_len) slowlog__rebuild(s, max_len);
}

static char *dup_bytes(const char *p, size_t n, size_t *len_out)
{
    char *d = xmalloc(n + 1);
    if (n) memcpy(d, p, n);
    d[n] = '\0';
    if (len_out) *len_out = n;
    return d;
}

/* The first n bytes of p (which may hold NULs), then a marker. */
static char *dup_marked(const char *p, size_t n, const char *what, unsigned long long more,
                        size_t *len_out)
{
    char tail[64];
    int t = snprintf(tail, sizeof(tail), "... (%llu more %s)", more, what);
    char *d = xmalloc(n + (size_t)t + 1);
    if (n) memcpy(d, p, n);
    memcpy(d + n, tail, (size_t)t + 1);
    *len_out = n + (size_t)t;
    return d;
}

void slowlog_add(slowlog *s, const resp_arg *argv, size_t argc, size_t redact_from,
                 uint64_t duration_us, const char *peer, const char *name, size_t name_len)
{
    if (!s->max_len) return;
    if (s->len == s->cap && s->cap < s->max_len) { /* grow as entries come, up to max_len */
        uint64_t cap = s->cap ? s->cap * 2 : 16;
        slowlog__rebuild(s, cap < s->max_len ? cap : s->max_len);
    }
    slowlog_entry *e = &s->ring[s->head];
    if (s->len == s->cap)
        entry__free(e); /* the oldest goes */
    else
        s->len++;
    s->head = (s->head + 1) % s->cap;
    e->id = s->next_id++;
    e->unix_s = (int64_t)time(NULL);
    e->duration_us = duration_us;
    e->argc = (uint32_t)(argc > SLOWLOG_MAX_ARGC ? SLOWLOG_MAX_ARGC : argc);
    e->argv = xcalloc(e->argc, sizeof(char *));
    e->lens = xcalloc(e->argc, sizeof(size_t));
    for (uint32_t i = 0; i < e->argc; i++) {
        if (e->argc != argc && i == e->argc - 1)
            e->argv[i] = dup_marked("", 0, "arguments", (unsigned long long)(argc - e->argc + 1),
                                    &e->lens[i]);
        else if (i >= redact_from)
            e->argv[i] = dup_bytes("(redacted)", 10, &e->lens[i]);
        else if (argv[i].len > SLOWLOG_MAX_STRING)
            e->argv[i] =
                dup_marked(argv[i].ptr, SLOWLOG_MAX_STRING, "bytes",
                           (unsigned long long)(argv[i].len - SLOWLOG_MAX_STRING), &e->lens[i]);
        else
            e->argv[i] = dup_bytes(argv[i].ptr, argv[i].len, &e->lens[i]);
    }
    e->peer = dup_bytes(peer, strlen(peer), NULL);
    e->name = dup_bytes(name ? name : "", name ? name_len : 0, NULL);
}

const slowlog_entry *slowlog_get(const slowlog *s, uint64_t i)
{
    return i < s->len ? slowlog__at(s, i) : NULL;
}

uint64_t slowlog_len(const slowlog *s)
{
    return s->len;
}
