/* users: the users file (--users-file) and what its grants allow.
 *
 * Lines "name:hash:perms"; perms is the rest of the line, comma-separated
 * grants "rw:PREFIX", "r:PREFIX", "admin" (docs/security.md). Pure: no I/O
 * but users_load_file, no clocks, no globals. */
#ifndef CAIRN_UTIL_USERS_H
#define CAIRN_UTIL_USERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/password.h"

#define USERS_NAME_MAX 64
#define USERS_MAX 10000
#define USERS_FILE_MAX (4u << 20)

typedef struct users_grant {
    bool write; /* rw: (else r:) */
    char *prefix;
    size_t prefix_len;
} users_grant;

typedef struct users_user {
    char name[USERS_NAME_MAX + 1];
    size_t name_len;
    password_params pw;
    bool admin;
    users_grant *grants;
    size_t ngrants;
    uint64_t stamp; /* changes when the hash does (for tokens) */
} users_user;

typedef struct users_table {
    users_user *v;
    size_t n;
} users_table;

/* Parse a whole file's text. Returns 0, or -1 with "line N: why" in err
 * (never the hash). On failure out is left empty. */
int users_parse(const char *text, size_t len, users_table *out, char *err, size_t errlen);
/* Read and parse a file; err names the file. */
int users_load_file(const char *path, users_table *out, char *err, size_t errlen);
void users_free(users_table *t);

const users_user *users_find(const users_table *t, const char *name, size_t len);
int users_index(const users_table *t, const users_user *u);

/* Whether u may read (write=false) or write a key. */
bool users_may_access(const users_user *u, const void *key, size_t len, bool write);
/* Whether u may read every key that starts with prefix (a listing): some
 * grant's prefix is a prefix of it. */
bool users_may_list(const users_user *u, const void *prefix, size_t len);

#endif
