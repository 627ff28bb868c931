#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

struct tls_ctx {
    SSL_CTX *ctx;
    char *cert, *key, *client_ca;
};

struct tls_conn {
    SSL *ssl;
    BIO *rbio;   /* ciphertext in: we write, OpenSSL reads */
    BIO *wbio;   /* ciphertext out: OpenSSL writes, we read */
    buf pending; /* plaintext written before the handshake finished */
    bool done;
};

static void tls__error(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char reason[160] = "unknown error";
    if (e) ERR_error_string_n(e, reason, sizeof(reason));
    snprintf(err, errlen, "%s: %s", what, reason);
    ERR_clear_error();
}

static SSL_CTX *tls__build(const tls_ctx *t, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        tls__error(err, errlen, "cannot create TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS); /* idle conns hold no TLS buffers */
    if (SSL_CTX_use_certificate_chain_file(ctx, t->cert) != 1) {
        char what[1200];
        snprintf(what, sizeof(what), "--tls-cert %s", t->cert);
        tls__error(err, errlen, what);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, t->key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char what[1200];
        snprintf(what, sizeof(what), "--tls-key %s", t->key);
        tls__error(err, errlen, what);
        goto fail;
    }
    if (t->client_ca && t->client_ca[0]) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(t->client_ca);
        if (!names || SSL_CTX_load_verify_locations(ctx, t->client_ca, NULL) != 1) {
            char what[1200];
            snprintf(what, sizeof(what), "--tls-client-ca %s", t->client_ca);
            tls__error(err, errlen, what);
            if (names) sk_X509_NAME_pop_free(names, X509_NAME_free);
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

int tls_ctx_create(tls_ctx **out, const char *cert, const char *key, const char *client_ca,
                   char *err, size_t errlen)
{
    tls_ctx *t = xcalloc(1, sizeof(*t));
    t->cert = xstrdup(cert);
    t->key = xstrdup(key);
    t->client_ca = xstrdup(client_ca ? client_ca : "");
    t->ctx = tls__build(t, err, errlen);
    if (!t->ctx) {
        tls_ctx_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

int tls_ctx_reload(tls_ctx *t, char *err, size_t errlen)
{
    SSL_CTX *ctx = tls__build(t, err, errlen);
    if (!ctx) return -1;
    SSL_CTX_free(t->ctx); /* open connections keep their own reference */
    t->ctx = ctx;
    return 0;
}

void tls_ctx_free(tls_ctx *t)
{
    if (!t) return;
    SSL_CTX_free(t->ctx);
    free(t->cert);
    free(t->key);
    free(t->client_ca);
    free(t);
}

tls_conn *tls_conn_new(tls_ctx *t)
{
    tls_conn *c = xcalloc(1, sizeof(*c));
    c->ssl = SSL_new(t->ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rbio || !c->wbio) {
        SSL_free(c->ssl);
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        free(c);
        return NULL;
    }
    /* an empty read BIO means "want more", not end of file */
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio); /* the SSL owns both now */
    SSL_set_accept_state(c->ssl);
    buf_init(&c->pending);
    return c;
}

void tls_conn_free(tls_conn *c)
{
    if (!c) return;
    SSL_free(c->ssl);
    buf_close(&c->pending);
    free(c);
}

bool tls_conn_handshake_done(const tls_conn *c)
{
    return c->done;
}

static void tls__drain_out(tls_conn *c, buf *cipher)
{
    char tmp[16384];
    int k;
    while ((k = BIO_read(c->wbio, tmp, sizeof(tmp))) > 0) buf_append(cipher, tmp, (size_t)k);
}

static int tls__encrypt(tls_conn *c, const void *p, size_t n, buf *cipher)
{
    const char *s = p;
    while (n) {
        int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
        int k = SSL_write(c->ssl, s, chunk);
        if (k <= 0) return -1;
        s += k;
        n -= (size_t)k;
    }
    tls__drain_out(c, cipher);
    return 0;
}

int tls_conn_read(tls_conn *c, const char *in, size_t n, buf *plain, buf *cipher, char *err,
                  size_t errlen)
{
    if (n && BIO_write(c->rbio, in, (int)n) != (int)n) {
        snprintf(err, errlen, "TLS buffer write failed");
        return -1;
    }
    if (!c->done) {
        int rv = SSL_do_handshake(c->ssl);
        tls__drain_out(c, cipher);
        if (rv != 1) {
            int e = SSL_get_error(c->ssl, rv);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
            tls__error(err, errlen, "TLS handshake failed");
            return -1;
        }
        c->done = true;
        if (c->pending.len) {
            int w = tls__encrypt(c, c->pending.data, c->pending.len, cipher);
            buf_close(&c->pending);
            if (w != 0) {
                tls__error(err, errlen, "TLS write failed");
                return -1;
            }
        }
    }
    for (;;) {
        buf_reserve(plain, 16384);
        int k = SSL_read(c->ssl, plain->data + plain->len, (int)(plain->cap - plain->len - 1));
        if (k > 0) {
            plain->len += (size_t)k;
            plain->data[plain->len] = '\0';
            continue;
        }
        int e = SSL_get_error(c->ssl, k);
        tls__drain_out(c, cipher);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
        if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify: the peer is done */
            snprintf(err, errlen, "TLS connection closed by peer");
            return -1;
        }
        tls__error(err, errlen, "TLS read failed");
        return -1;
    }
}

int tls_conn_write(tls_conn *c, const void *p, size_t n, buf *cipher)
{
    if (!c->done) {
        buf_append(&c->pending, p, n);
        return 0;
    }
    return tls__encrypt(c, p, n, cipher);
}
