/* functions: see functions.h. */
#include "kv/functions.h"

#include <stdlib.h>
#include <string.h>

#include "kv/store.h"
#include "util/alloc.h"

void kv_functions_init(kv_functions *f)
{
    memset(f, 0, sizeof(*f));
}

static void fn__free_lib(kv_library *l)
{
    free(l->name);
    free(l->code);
    free(l->fnames);
    free(l->fbuf);
}

void kv_functions_close(kv_functions *f)
{
    for (uint32_t i = 0; i < f->n; i++) fn__free_lib(&f->libs[i]);
    free(f->libs);
    memset(f, 0, sizeof(*f));
}

static bool fn__eq(const char *a, size_t al, const char *b, size_t bl)
{
    return al == bl && memcmp(a, b, al) == 0;
}

const kv_library *kv_functions_find(const kv_functions *f, const char *name, size_t len)
{
    for (uint32_t i = 0; i < f->n; i++)
        if (fn__eq(f->libs[i].name, f->libs[i].name_len, name, len)) return &f->libs[i];
    return NULL;
}

static char *fn__dup(kv_slice s)
{
    char *p = xmalloc(s.len + 1);
    memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    return p;
}

int kv_functions_add(kv_functions *f, kv_slice name, kv_slice code, const kv_slice *fnames,
                     uint32_t nfn, bool replace, kv_slice *clash)
{
    const kv_library *old = kv_functions_find(f, name.ptr, name.len);
    if (old && !replace) return KV_FUNCTIONS_LIB_EXISTS;
    for (uint32_t i = 0; i < f->n; i++) {
        const kv_library *l = &f->libs[i];
        if (l == old) continue; /* REPLACE: its own names may come again */
        for (uint32_t k = 0; k < l->nfn; k++)
            for (uint32_t j = 0; j < nfn; j++)
                if (fn__eq(l->fnames[k].ptr, l->fnames[k].len, fnames[j].ptr, fnames[j].len)) {
                    *clash = fnames[j];
                    return KV_FUNCTIONS_FUNC_EXISTS;
                }
    }
    kv_library nl;
    memset(&nl, 0, sizeof(nl));
    nl.name = fn__dup(name);
    nl.name_len = (uint32_t)name.len;
    nl.code = fn__dup(code);
    nl.code_len = (uint32_t)code.len;
    size_t total = 0;
    for (uint32_t j = 0; j < nfn; j++) total += fnames[j].len;
    nl.fbuf = xmalloc(total ? total : 1);
    nl.fnames = xcalloc(nfn ? nfn : 1, sizeof(*nl.fnames));
    size_t at = 0;
    for (uint32_t j = 0; j < nfn; j++) {
        memcpy(nl.fbuf + at, fnames[j].ptr, fnames[j].len);
        nl.fnames[j] = (kv_slice){nl.fbuf + at, fnames[j].len};
        at += fnames[j].len;
    }
    nl.nfn = nfn;
    if (old) {
        /* replaced in place: FUNCTION LIST keeps its position */
        kv_library *slot = &f->libs[old - f->libs];
        fn__free_lib(slot);
        *slot = nl;
    } else {
        if (f->n == f->cap) {
            f->cap = f->cap ? 2 * f->cap : 4;
            f->libs = xrealloc(f->libs, f->cap * sizeof(*f->libs));
        }
        f->libs[f->n++] = nl;
    }
    f->gen++;
    return KV_FUNCTIONS_ADDED;
}

void kv_functions_apply(kv_store *s, const kv_command *cmd, kv_result *res)
{
    kv_functions *f = &s->functions;
    switch (cmd->op) {
    case KV_OP_FUNCTION_LOAD: {
        if (cmd->nargs < 2 || cmd->nargs - 2 > KV_FUNCTIONS_MAX_PER_LIBRARY) {
            res->status = KV_ERR_MALFORMED;
            return;
        }
        const kv_library *old = kv_functions_find(f, cmd->args[0].ptr, cmd->args[0].len);
        if (!old && f->n >= KV_FUNCTIONS_MAX_LIBRARIES) {
            res->status = KV_ERR_TOO_LARGE;
            return;
        }
        kv_slice clash = {0};
        int rc = kv_functions_add(f, cmd->args[0], cmd->args[1], cmd->args + 2, cmd->nargs - 2,
                                  cmd->flags & KV_FLAG_XX, &clash);
        if (rc != KV_FUNCTIONS_ADDED) {
            /* the name in the answer: the library's, or the function's */
            kv_slice which = rc == KV_FUNCTIONS_LIB_EXISTS ? cmd->args[0] : clash;
            res->status =
                rc == KV_FUNCTIONS_LIB_EXISTS ? KV_ERR_LIBRARY_EXISTS : KV_ERR_FUNCTION_EXISTS;
            res->has_value = true;
            buf_reset(&s->scratch);
            buf_append(&s->scratch, which.ptr, which.len);
            res->value = s->scratch.data;
            res->value_len = which.len;
        }
        return;
    }
    case KV_OP_FUNCTION_DELETE: {
        if (cmd->nargs != 1) {
            res->status = KV_ERR_MALFORMED;
            return;
        }
        const kv_library *l = kv_functions_find(f, cmd->args[0].ptr, cmd->args[0].len);
        if (!l) {
            res->status = KV_ERR_NO_LIBRARY;
            return;
        }
        size_t i = (size_t)(l - f->libs);
        fn__free_lib(&f->libs[i]);
        memmove(&f->libs[i], &f->libs[i + 1], (f->n - i - 1) * sizeof(*f->libs));
        f->n--;
        f->gen++;
        return;
    }
    case KV_OP_FUNCTION_FLUSH:
        for (uint32_t i = 0; i < f->n; i++) fn__free_lib(&f->libs[i]);
        f->n = 0;
        f->gen++;
        return;
    default:
        res->status = KV_ERR_MALFORMED;
        return;
    }
}
