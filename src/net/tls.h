/* tls: TLS 1.2+ for client connections, on the loop, through memory BIOs.
 *
 * The socket still belongs to net/server: ciphertext read from it is fed
 * in with tls_conn_read, which yields plaintext for the protocol parser and
 * any handshake bytes to send back; replies go through tls_conn_write,
 * which yields ciphertext for the socket. No thread per connection and no
 * second I/O path.
 *
 * tls_ctx holds the certificate, key and (for mutual TLS) the client CA.
 * tls_ctx_reload re-reads the files (SIGHUP): new connections use the new
 * context, open connections keep the one they started with (OpenSSL
 * reference-counts it), so nothing is dropped.
 *
 * The client side (replica/forward: a follower talking to the leader's
 * HTTP port) uses the same connection functions on a context made by
 * tls_ctx_create_client and connections made by tls_conn_new_client. The
 * client speaks first: its first tls_conn_write yields the ClientHello
 * and holds the plaintext until the handshake is done. Loop thread only. */
#ifndef CAIRN_NET_TLS_H
#define CAIRN_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

typedef struct tls_ctx tls_ctx;
typedef struct tls_conn tls_conn;

/* client_ca may be NULL or "" (no client certificates asked for). */
int tls_ctx_create(tls_ctx **out, const char *cert, const char *key, const char *client_ca,
                   char *err, size_t errlen);
/* A context for connecting to other nodes. cert and key are presented as
 * the client certificate (mutual TLS between nodes). The server must
 * present a certificate that chains to a certificate in ca, or, when ca is
 * NULL or "", in the cert file itself (a certificate shared by the nodes,
 * or a chain that includes its CA); TLS 1.2 or newer. */
int tls_ctx_create_client(tls_ctx **out, const char *cert, const char *key, const char *ca,
                          char *err, size_t errlen);
/* Re-read the files; on error the old context stays in use. */
int tls_ctx_reload(tls_ctx *t, char *err, size_t errlen);
void tls_ctx_free(tls_ctx *t);

/* Server side of an accepted connection (NULL on a client context). */
tls_conn *tls_conn_new(tls_ctx *t);
/* Client side of a connection to host (an IP literal, checked against the
 * certificate's IP addresses, or a DNS name, checked against its names and
 * sent as SNI). NULL on a server context or a bad host. */
tls_conn *tls_conn_new_client(tls_ctx *t, const char *host);
void tls_conn_free(tls_conn *c);

/* Feed n ciphertext bytes. Plaintext is appended to plain, bytes to send
 * (handshake, alerts, and replies held until the handshake finished) to
 * cipher. Returns 0, or -1 when the connection must be closed (not TLS,
 * bad certificate, protocol error); err then says why. */
int tls_conn_read(tls_conn *c, const char *in, size_t n, buf *plain, buf *cipher, char *err,
                  size_t errlen);
/* Encrypt n plaintext bytes into cipher (held until the handshake is done;
 * on a client connection the first call starts the handshake). Returns 0
 * or -1. */
int tls_conn_write(tls_conn *c, const void *p, size_t n, buf *cipher);
bool tls_conn_handshake_done(const tls_conn *c);

#endif
