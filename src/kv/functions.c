/* functions: see functions.h. */
#include "kv/functions.h"

#include <stdlib.h>
#include <string.h>

#include "kv/store.h"
#include "util/alloc.h"
#include "util/strconv.h"

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

static void fn__delete_at(kv_functions *f, size_t i)
{
    fn__free_lib(&f->libs[i]);
    memmove(&f->libs[i], &f->libs[i + 1], (f->n - i - 1) * sizeof(*f->libs));
    f->n--;
    f->gen++;
}

/* One library of a KV_OP_FUNCTION_RESTORE: name, code, count, fnames. */
typedef struct fn_restored {
    kv_slice name, code;
    const kv_slice *fnames;
    uint32_t nfn;
} fn_restored;

/* The libraries in args, or -1 when they do not parse. */
static int64_t fn__restored(const kv_command *cmd, fn_restored *out, size_t cap)
{
    size_t n = 0;
    for (uint32_t i = 0; i < cmd->nargs;) {
        uint64_t nfn;
        if (cmd->nargs - i < 3 || n == cap ||
            !strconv_parse_u64(cmd->args[i + 2].ptr, cmd->args[i + 2].len, &nfn) ||
            nfn > KV_FUNCTIONS_MAX_PER_LIBRARY || nfn > cmd->nargs - i - 3)
            return -1;
        out[n++] = (fn_restored){cmd->args[i], cmd->args[i + 1], cmd->args + i + 3, (uint32_t)nfn};
        i += 3 + (uint32_t)nfn;
    }
    return (int64_t)n;
}

/* A refusal of FUNCTION RESTORE: KV_ERR_PRECONDITION (nothing changed),
 * the value 'L' and a library that exists or 'F' and a function name. */
static void fn__refuse(kv_store *s, kv_result *res, char what, kv_slice name)
{
    res->status = KV_ERR_PRECONDITION;
    res->has_value = true;
    buf_reset(&s->scratch);
    buf_append_char(&s->scratch, what);
    buf_append(&s->scratch, name.ptr, name.len);
    res->value = s->scratch.data;
    res->value_len = s->scratch.len;
}

/* KV_OP_FUNCTION_RESTORE: all the libraries or none, joined as Redis'
 * libraryJoin: APPEND refuses a library that exists; REPLACE first drops
 * the libraries of the payload's names; FLUSH starts from none; then a
 * function name another library has refuses the whole. Built on a copy,
 * swapped in when every library went in. */
static void fn__restore(kv_store *s, const kv_command *cmd, kv_result *res)
{
    kv_functions *f = &s->functions;
    fn_restored *libs = xcalloc(cmd->nargs / 3 + 1, sizeof(*libs));
    int64_t n = fn__restored(cmd, libs, cmd->nargs / 3 + 1);
    if (n < 0 || cmd->a < KV_FUNCTION_RESTORE_APPEND || cmd->a > KV_FUNCTION_RESTORE_FLUSH) {
        res->status = KV_ERR_MALFORMED;
        free(libs);
        return;
    }
    if (cmd->a == KV_FUNCTION_RESTORE_APPEND)
        for (int64_t i = 0; i < n; i++)
            if (kv_functions_find(f, libs[i].name.ptr, libs[i].name.len)) {
                fn__refuse(s, res, 'L', libs[i].name);
                free(libs);
                return;
            }
    kv_functions next;
    kv_functions_init(&next);
    kv_slice clash = {0};
    for (uint32_t i = 0; cmd->a != KV_FUNCTION_RESTORE_FLUSH && i < f->n; i++) {
        const kv_library *l = &f->libs[i];
        bool replaced = false;
        for (int64_t k = 0; k < n && !replaced; k++)
            replaced = fn__eq(l->name, l->name_len, libs[k].name.ptr, libs[k].name.len);
        if (!replaced)
            kv_functions_add(&next, (kv_slice){l->name, l->name_len},
                             (kv_slice){l->code, l->code_len}, l->fnames, l->nfn, false, &clash);
    }
    for (int64_t i = 0; i < n; i++) {
        int rc = next.n >= KV_FUNCTIONS_MAX_LIBRARIES
                     ? -1
                     : kv_functions_add(&next, libs[i].name, libs[i].code, libs[i].fnames,
                                        libs[i].nfn, false, &clash);
        if (rc == KV_FUNCTIONS_ADDED) continue;
        if (rc < 0)
            res->status = KV_ERR_TOO_LARGE;
        else
            fn__refuse(s, res, rc == KV_FUNCTIONS_LIB_EXISTS ? 'L' : 'F',
                       rc == KV_FUNCTIONS_LIB_EXISTS ? libs[i].name : clash);
        kv_functions_close(&next);
        free(libs);
        return;
    }
    next.gen = f->gen + 1;
    kv_functions_close(f);
    *f = next;
    free(libs);
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
        fn__delete_at(f, (size_t)(l - f->libs));
        return;
    }
    case KV_OP_FUNCTION_RESTORE:
        fn__restore(s, cmd, res);
        return;
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
