#include "replica/storage_failstop.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "obs/log.h"
#include "util/alloc.h"

struct failstop_req {
    struct raft_io_append *req;
    raft_io_append_cb cb; /* libraft's */
    failstop_req *next;
};

static storage_failstop *failstops;

void storage_failstop_open_segment(const char *dir, char *out, size_t outlen)
{
    out[0] = '\0';
    DIR *d = opendir(dir);
    if (!d) return;
    unsigned long long best = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        unsigned long long n;
        char rest;
        if (sscanf(e->d_name, "open-%llu%c", &n, &rest) == 1 && n >= best) {
            best = n;
            snprintf(out, outlen, "%s/%s", dir, e->d_name);
        }
    }
    closedir(d);
}

static int failstop__exit(storage_failstop *f, int status)
{
    char file[1400];
    storage_failstop_open_segment(f->dir, file, sizeof(file));
    LOG_ERROR("cannot write the raft log: stopping; a restart loads what was written and catches "
              "up from the leader",
              LF_S("file", file[0] ? file : f->dir), LF_S("error", f->io->errmsg),
              LF_S("status", raft_strerror(status)));
    _exit(74); /* EX_IOERR; no atexit work: libraft's state is not to be trusted */
}

/* Find and unlink the record of req (normally the oldest). */
static failstop_req *failstop__take(struct raft_io_append *req, storage_failstop **owner)
{
    for (storage_failstop *f = failstops; f; f = f->next) {
        failstop_req *prev = NULL;
        for (failstop_req *r = f->head; r; prev = r, r = r->next) {
            if (r->req != req) continue;
            if (prev)
                prev->next = r->next;
            else
                f->head = r->next;
            if (f->tail == r) f->tail = prev;
            *owner = f;
            return r;
        }
    }
    return NULL;
}

static void failstop__cb(struct raft_io_append *req, int status)
{
    storage_failstop *f = NULL;
    failstop_req *r = failstop__take(req, &f);
    if (!r) abort(); /* an append we did not see: cannot happen */
    raft_io_append_cb cb = r->cb;
    r->next = f->spare;
    f->spare = r;
    if (status != 0 && status != RAFT_CANCELED) status = f->stop(f, status);
    cb(req, status);
}

static int failstop__append(struct raft_io *io, struct raft_io_append *req,
                            const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
    storage_failstop *f = failstops;
    while (f && f->io != io) f = f->next;
    failstop_req *r = f->spare;
    if (r)
        f->spare = r->next;
    else
        r = xmalloc(sizeof(*r));
    r->req = req;
    r->cb = cb;
    r->next = NULL;
    if (f->tail)
        f->tail->next = r;
    else
        f->head = r;
    f->tail = r;
    int rv = f->append(io, req, entries, n, failstop__cb);
    if (rv != 0) { /* not taken: libraft learns it from rv, never from cb */
        storage_failstop *owner = NULL;
        failstop_req *back = failstop__take(req, &owner);
        back->next = f->spare;
        f->spare = back;
    }
    return rv;
}

void storage_failstop_install(storage_failstop *f, struct raft_io *io, const char *dir)
{
    memset(f, 0, sizeof(*f));
    f->io = io;
    f->dir = dir;
    f->append = io->append;
    f->stop = failstop__exit;
    io->append = failstop__append;
    f->next = failstops;
    failstops = f;
}

static void failstop__free(failstop_req *r)
{
    while (r) {
        failstop_req *next = r->next;
        free(r);
        r = next;
    }
}

void storage_failstop_remove(storage_failstop *f)
{
    if (!f->io) return;
    for (storage_failstop **p = &failstops; *p; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            break;
        }
    }
    if (f->io->append == failstop__append) f->io->append = f->append;
    failstop__free(f->head);
    failstop__free(f->spare);
    f->head = f->tail = f->spare = NULL;
    f->io = NULL;
}
