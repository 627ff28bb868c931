/* functions: the libraries of FUNCTION LOAD, as replicated state.
 *
 * Redis keeps its functions in the dataset (RDB, AOF, replication): so
 * does cairn, in the store next to the keyspace (snapshots keep them,
 * version 9). The store never runs Lua: a library is its name, its code
 * and the names of the functions its code registers, which the node that
 * proposed it found by loading the code (api/script_lua.c). Apply only
 * checks names: a library that exists (without REPLACE) or a function
 * name another library has is refused, nothing changed. Each change
 * bumps gen, and a node that serves FCALL reloads its interpreter's
 * functions from the store when gen moved (FUNCTION LOAD/DELETE/FLUSH
 * applied, a snapshot installed). Not a keyspace change: no revision. */
#ifndef CAIRN_KV_FUNCTIONS_H
#define CAIRN_KV_FUNCTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kv/command.h"

/* Bounds (the front end refuses past them first): a library's code is
 * one argument, so --max-value-bytes bounds it too. */
#define KV_FUNCTIONS_MAX_LIBRARIES 1024
#define KV_FUNCTIONS_MAX_PER_LIBRARY 1024
#define KV_FUNCTION_NAME_MAX 256

typedef struct kv_library {
    char *name;
    uint32_t name_len;
    char *code;
    uint32_t code_len;
    kv_slice *fnames; /* into fbuf */
    char *fbuf;
    uint32_t nfn;
} kv_library;

typedef struct kv_functions {
    kv_library *libs; /* in load order (FUNCTION LIST's) */
    uint32_t n, cap;
    uint64_t gen; /* changes with every change */
} kv_functions;

struct kv_store;
struct kv_result;

void kv_functions_init(kv_functions *f);
void kv_functions_close(kv_functions *f);
const kv_library *kv_functions_find(const kv_functions *f, const char *name, size_t len);

/* Add a library (apply, snapshot load); false when the name is taken,
 * or a function name is another library's (*clash: which). */
int kv_functions_add(kv_functions *f, kv_slice name, kv_slice code, const kv_slice *fnames,
                     uint32_t nfn, bool replace, kv_slice *clash);
enum { KV_FUNCTIONS_ADDED = 0, KV_FUNCTIONS_LIB_EXISTS, KV_FUNCTIONS_FUNC_EXISTS };

/* KV_OP_FUNCTION_RESTORE's policy (its a), as Redis' */
enum {
    KV_FUNCTION_RESTORE_APPEND = 0, /* a library that exists refuses the whole */
    KV_FUNCTION_RESTORE_REPLACE = 1,
    KV_FUNCTION_RESTORE_FLUSH = 2,
};

/* KV_OP_FUNCTION_LOAD / _DELETE / _FLUSH / _RESTORE (kv_store_apply). */
void kv_functions_apply(struct kv_store *s, const kv_command *cmd, struct kv_result *res);

#endif
