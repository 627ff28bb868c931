/* password: salted, iterated password hashes in the users file's text form
 *
 *     pbkdf2-sha256$ITERATIONS$SALT$KEY
 *
 * PBKDF2-HMAC-SHA256 (OpenSSL), SALT and KEY in standard base64 without
 * padding, so the text never contains ':' (the users file's separator).
 * Verifying costs ITERATIONS HMACs on purpose: callers run it off the event
 * loop (api/auth.c). */
#ifndef CAIRN_UTIL_PASSWORD_H
#define CAIRN_UTIL_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PASSWORD_MIN_ITERATIONS 10000u
#define PASSWORD_DEFAULT_ITERATIONS 600000u /* OWASP 2023, PBKDF2-HMAC-SHA256 */
#define PASSWORD_MAX_ITERATIONS 100000000u
#define PASSWORD_SALT_BYTES 16u
#define PASSWORD_KEY_BYTES 32u
#define PASSWORD_MAX_SALT 64u
#define PASSWORD_MAX_KEY 64u

typedef struct password_params {
    uint32_t iterations;
    uint8_t salt[PASSWORD_MAX_SALT];
    size_t salt_len;
    uint8_t key[PASSWORD_MAX_KEY];
    size_t key_len;
} password_params;

/* Hash pw with a fresh random salt; writes the text form (NUL-terminated)
 * into out. Returns 0, or -1 when randomness or the KDF failed or out is
 * too small (128 bytes always suffice). */
int password_hash(const char *pw, size_t pw_len, uint32_t iterations, char *out, size_t cap);

/* Parse the text form; false with a short reason (never echoing the text). */
bool password_parse(const char *s, size_t n, password_params *out, const char **why);

/* Whether pw matches, compared in constant time. */
bool password_verify(const password_params *p, const char *pw, size_t pw_len);

#endif
