#include "util/password.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "util/base64.h"
#include "util/buf.h"

#define PREFIX "pbkdf2-sha256$"

/* Decode standard base64 without padding into out (at most cap bytes);
 * the length, or -1. The users file's form has no '=' (padding). */
static long password__b64(const char *s, size_t n, uint8_t *out, size_t cap)
{
    if (memchr(s, '=', n)) return -1;
    buf b;
    buf_init(&b);
    long len = base64_decode(s, n, BASE64_STD, &b) == 0 && b.len <= cap ? (long)b.len : -1;
    if (len > 0) memcpy(out, b.data, (size_t)len);
    if (b.data) OPENSSL_cleanse(b.data, b.cap);
    buf_close(&b);
    return len;
}

int password_hash(const char *pw, size_t pw_len, uint32_t iterations, char *out, size_t cap)
{
    uint8_t salt[PASSWORD_SALT_BYTES], key[PASSWORD_KEY_BYTES];
    if (RAND_bytes(salt, sizeof(salt)) != 1) return -1;
    if (PKCS5_PBKDF2_HMAC(pw, (int)pw_len, salt, sizeof(salt), (int)iterations, EVP_sha256(),
                          sizeof(key), key) != 1)
        return -1;
    buf b;
    buf_init(&b);
    buf_printf(&b, PREFIX "%u$", iterations);
    base64_encode(&b, salt, sizeof(salt), BASE64_STD, false);
    buf_append_char(&b, '$');
    base64_encode(&b, key, sizeof(key), BASE64_STD, false);
    OPENSSL_cleanse(key, sizeof(key));
    int rv = b.len < cap ? 0 : -1;
    if (rv == 0) memcpy(out, b.data, b.len + 1);
    buf_close(&b);
    return rv;
}

bool password_parse(const char *s, size_t n, password_params *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    size_t plen = sizeof(PREFIX) - 1;
    if (n < plen || memcmp(s, PREFIX, plen) != 0) {
        *why = "the hash is not of the form pbkdf2-sha256$ITERATIONS$SALT$KEY "
               "(make it with cairnctl hash-password)";
        return false;
    }
    const char *p = s + plen, *end = s + n;
    uint64_t iter = 0;
    const char *digits = p;
    while (p < end && *p >= '0' && *p <= '9' && iter <= PASSWORD_MAX_ITERATIONS)
        iter = iter * 10 + (uint64_t)(*p++ - '0');
    if (p == digits || p >= end || *p != '$' || iter > PASSWORD_MAX_ITERATIONS) {
        *why = "the hash has a bad iteration count";
        return false;
    }
    if (iter < PASSWORD_MIN_ITERATIONS) {
        *why = "the hash has fewer than 10000 iterations";
        return false;
    }
    const char *salt = ++p;
    while (p < end && *p != '$') p++;
    if (p >= end) {
        *why = "the hash lacks its key";
        return false;
    }
    long sl = password__b64(salt, (size_t)(p - salt), out->salt, sizeof(out->salt));
    long kl = password__b64(p + 1, (size_t)(end - p - 1), out->key, sizeof(out->key));
    if (sl < 8 || kl < 16) {
        *why = "the hash has a bad salt or key (base64 without padding, salt >= 8 bytes, "
               "key >= 16 bytes)";
        return false;
    }
    out->iterations = (uint32_t)iter;
    out->salt_len = (size_t)sl;
    out->key_len = (size_t)kl;
    return true;
}

bool password_verify(const password_params *p, const char *pw, size_t pw_len)
{
    uint8_t key[PASSWORD_MAX_KEY];
    if (PKCS5_PBKDF2_HMAC(pw, (int)pw_len, p->salt, (int)p->salt_len, (int)p->iterations,
                          EVP_sha256(), (int)p->key_len, key) != 1)
        return false;
    bool ok = CRYPTO_memcmp(key, p->key, p->key_len) == 0;
    OPENSSL_cleanse(key, sizeof(key));
    return ok;
}
