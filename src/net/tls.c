#include "net/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

struct tls_ctx {
    SSL_CTX *ctx;
    char *cert, *key, *client_ca;
    bool client; /* made by tls_ctx_create_client: we connect, the peer serves */
};

struct tls_conn {
    SSL *ssl;
    BIO *rbio;   /* ciphertext in: we write, OpenSSL reads */
    BIO *wbio;   /* ciphertext out: OpenSSL writes, we read */
    buf pending; /* plaintext written before the handshake finished */
    bool done;
    bool client;
};

static void tls__error(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char reason[160] = "unknown error";
    if (e) ERR_error_string_n(e, reason, sizeof(reason));
    snprintf(err, errlen, "%s: %s", what, reason);
    ERR_clear_error();
}

/* The server's certificate is checked against the trust anchors of the
 * client context: --tls-client-ca when given (the CA of the cluster's
 * certificates when nodes use mutual TLS), else the node's own --tls-cert
 * file. Every certificate in that file is then an anchor (PARTIAL_CHAIN),
 * so a certificate shared by all nodes, a chain that includes its CA, and
 * a chain that ends at an intermediate all work; the address check below
 * (tls_conn_new_client) keeps one node's certificate from passing for
 * another address. */
static int tls__client_trust(SSL_CTX *ctx, const tls_ctx *t, char *err, size_t errlen)
{
    bool own = !t->client_ca[0];
    const char *file = own ? t->cert : t->client_ca;
    if (SSL_CTX_load_verify_locations(ctx, file, NULL) != 1) {
        char what[1200];
        snprintf(what, sizeof(what), "%s %s (trust anchors for other nodes)",
                 own ? "--tls-cert" : "--tls-client-ca", file);
        tls__error(err, errlen, what);
        return -1;
    }
    if (own) X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return 0;
}

static SSL_CTX *tls__build(const tls_ctx *t, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(t->client ? TLS_client_method() : TLS_server_method());
    if (!ctx) {
        tls__error(err, errlen, "cannot create TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
                                 (t->client ? 0 : SSL_OP_CIPHER_SERVER_PREFERENCE));
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
    if (t->client) {
        if (tls__client_trust(ctx, t, err, errlen) != 0) goto fail;
    } else if (t->client_ca && t->client_ca[0]) {
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

static int tls__ctx_create(tls_ctx **out, bool client, const char *cert, const char *key,
                           const char *ca, char *err, size_t errlen)
{
    tls_ctx *t = xcalloc(1, sizeof(*t));
    t->client = client;
    t->cert = xstrdup(cert);
    t->key = xstrdup(key);
    t->client_ca = xstrdup(ca ? ca : "");
    t->ctx = tls__build(t, err, errlen);
    if (!t->ctx) {
        tls_ctx_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

int tls_ctx_create(tls_ctx **out, const char *cert, const char *key, const char *client_ca,
                   char *err, size_t errlen)
{
    return tls__ctx_create(out, false, cert, key, client_ca, err, errlen);
}

int tls_ctx_create_client(tls_ctx **out, const char *cert, const char *key, const char *ca,
                          char *err, size_t errlen)
{
    return tls__ctx_create(out, true, cert, key, ca, err, errlen);
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

static tls_conn *tls__conn_new(tls_ctx *t)
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
    buf_init(&c->pending);
    return c;
}

tls_conn *tls_conn_new(tls_ctx *t)
{
    if (t->client) return NULL;
    tls_conn *c = tls__conn_new(t);
    if (c) SSL_set_accept_state(c->ssl);
    return c;
}

tls_conn *tls_conn_new_client(tls_ctx *t, const char *host)
{
    if (!t->client || !host || !host[0]) return NULL;
    tls_conn *c = tls__conn_new(t);
    if (!c) return NULL;
    c->client = true;
    SSL_set_connect_state(c->ssl);
    /* Member addresses are usually IP literals: those must match an IP
     * SAN (set1_ip_asc); a name must match a DNS SAN and is sent as SNI. */
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    unsigned char ip[16];
    bool is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    int ok;
    if (is_ip) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(vp, host);
    } else {
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = X509_VERIFY_PARAM_set1_host(vp, host, 0) == 1 &&
             SSL_set_tlsext_host_name(c->ssl, host) == 1;
    }
    if (ok != 1) {
        ERR_clear_error();
        tls_conn_free(c);
        return NULL;
    }
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

/* One handshake step: 1 finished (plaintext held meanwhile is encrypted
 * into cipher), 0 in progress, -1 failed. */
static int tls__handshake(tls_conn *c, buf *cipher, char *err, size_t errlen)
{
    int rv = SSL_do_handshake(c->ssl);
    tls__drain_out(c, cipher); /* handshake records, or the alert that ends it */
    if (rv != 1) {
        int e = SSL_get_error(c->ssl, rv);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
        long v = SSL_get_verify_result(c->ssl);
        if (c->client && v != X509_V_OK) {
            /* say why the server's certificate was refused, not just that it was */
            char what[300];
            snprintf(what, sizeof(what), "TLS handshake failed (server certificate: %s)",
                     X509_verify_cert_error_string(v));
            tls__error(err, errlen, what);
        } else {
            tls__error(err, errlen, "TLS handshake failed");
        }
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
    return 1;
}

int tls_conn_read(tls_conn *c, const char *in, size_t n, buf *plain, buf *cipher, char *err,
                  size_t errlen)
{
    if (n && BIO_write(c->rbio, in, (int)n) != (int)n) {
        snprintf(err, errlen, "TLS buffer write failed");
        return -1;
    }
    if (!c->done) {
        int h = tls__handshake(c, cipher, err, errlen);
        if (h <= 0) return h;
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
        if (!c->client) return 0;
        /* the client speaks first: this sends the ClientHello */
        char err[256];
        return tls__handshake(c, cipher, err, sizeof(err)) < 0 ? -1 : 0;
    }
    return tls__encrypt(c, p, n, cipher);
}
