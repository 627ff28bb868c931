/* auth: who a client is (--users-file), on the event loop.
 *
 * Owns the users table (reloaded on SIGHUP), checks passwords on libuv's
 * thread pool (PBKDF2 is slow on purpose; the loop never runs it), keeps
 * a cache of credentials already found right, and issues and checks
 * bearer tokens. The protocol front ends decide what to answer. Loop
 * thread only, except the hashing inside the pool. docs/security.md. */
#ifndef CAIRN_API_AUTH_H
#define CAIRN_API_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/buf.h"
#include "util/users.h"

typedef struct auth auth;
typedef struct auth_wait auth_wait;

enum {
    AUTH_OK = 0,
    AUTH_BAD,     /* unknown user or wrong password */
    AUTH_PENDING, /* the check runs in the pool: done is called later */
    AUTH_BUSY,    /* too many checks queued: try again later */
};

/* user is valid during the call (NULL unless AUTH_OK). */
typedef void (*auth_done_fn)(void *ctx, int verdict, const users_user *user);

/* Load the users file; NULL with err (naming file and line) if it is bad. */
auth *auth_create(uv_loop_t *loop, const char *path, char *err, size_t errlen);
void auth_destroy(auth *a);
/* Read the file again; on failure the old users stay and err says why. */
int auth_reload(auth *a, char *err, size_t errlen);

/* Bumped by every reload: user pointers of an older generation are void. */
uint64_t auth_generation(const auth *a);
const users_user *auth_find(const auth *a, const char *name, size_t len);
size_t auth_user_count(const auth *a);

/* Check a user name and password. AUTH_OK (cached: *out set), AUTH_BAD,
 * AUTH_BUSY, or AUTH_PENDING: done(ctx, ...) runs on a later loop
 * iteration unless *wait is cancelled first. */
int auth_check_password(auth *a, const char *user, size_t user_len, const char *pw, size_t pw_len,
                        const users_user **out, auth_done_fn done, void *ctx, auth_wait **wait);
void auth_wait_cancel(auth_wait *w);

/* Bearer tokens, signed with this process's random key. */
#define AUTH_TOKEN_MAX_TTL 86400u
void auth_token_issue(auth *a, const users_user *u, uint32_t ttl_s, int64_t now_wall_ms, buf *out);
const users_user *auth_token_check(auth *a, const char *tok, size_t len, int64_t now_wall_ms);

#endif
