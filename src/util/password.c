#include "util/password.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#define PREFIX "pbkdf2-sha256$"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encode_nopad(const uint8_t *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        size_t chars = n - i >= 3 ? 4 : n - i + 1;
        for (size_t k = 0; k < chars; k++) {
            if (o + 1 >= cap) return 0;
            out[o++] = b64_alphabet[(v >> (18 - 6 * k)) & 63];
        }
    }
    if (o >= cap) return 0;
    out[o] = '\0';
    return o;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

long base64_decode_nopad(const char *s, size_t n, uint8_t *out, size_t cap)
{
    if (n % 4 == 1) return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value(s[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap) return -1;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* the unused low bits of the last character must be zero (canonical) */
    if (bits && (acc & ((1u << bits) - 1))) return -1;
    return (long)o;
}

int password_hash(const char *pw, size_t pw_len, uint32_t iterations, char *out, size_t cap)
{
    uint8_t salt[PASSWORD_SALT_BYTES], key[PASSWORD_KEY_BYTES];
    char salt_txt[32], key_txt[64];
    if (RAND_bytes(salt, sizeof(salt)) != 1) return -1;
    if (PKCS5_PBKDF2_HMAC(pw, (int)pw_len, salt, sizeof(salt), (int)iterations, EVP_sha256(),
                          sizeof(key), key) != 1)
        return -1;
    base64_encode_nopad(salt, sizeof(salt), salt_txt, sizeof(salt_txt));
    base64_encode_nopad(key, sizeof(key), key_txt, sizeof(key_txt));
    OPENSSL_cleanse(key, sizeof(key));
    int n = snprintf(out, cap, PREFIX "%u$%s$%s", iterations, salt_txt, key_txt);
    return n > 0 && (size_t)n < cap ? 0 : -1;
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
    long sl = base64_decode_nopad(salt, (size_t)(p - salt), out->salt, sizeof(out->salt));
    long kl = base64_decode_nopad(p + 1, (size_t)(end - p - 1), out->key, sizeof(out->key));
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
