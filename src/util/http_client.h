/* http_client: a small blocking HTTP/1.1 client for tools and tests.
 *
 * cairnd never uses it (it has its own event loop); cairnctl, benchmarks and
 * integration tests do. It sends one request per connection with
 * `Connection: close`: these programs send few requests, and a fresh
 * connection per request keeps the code short and the failure modes few.
 *
 * Every attempt has a deadline that covers connect, send and receive,
 * enforced with non-blocking sockets and poll, so a stuck or trickling server
 * cannot hang the caller. Name resolution (getaddrinfo) is the one step the
 * deadline does not bound. Responses may be framed by Content-Length, by
 * chunked encoding or by the server closing; bodies over
 * HTTP_CLIENT_MAX_BODY are refused.
 *
 * Two levels:
 * - http_client_do: one attempt against one endpoint.
 * - http_client (an object with _init/_close): a list of endpoints and a
 *   retry policy. A connection failure, a timeout or a 503 moves on to the
 *   next endpoint, round the list a bounded number of times, with
 *   exponential backoff and jitter between attempts. Any other answer,
 *   including 4xx, is final. The endpoint that last answered is tried first
 *   next time, so a dead first endpoint costs one failure, not one per
 *   request.
 *
 * Objects are not shared between threads; separate objects may be used from
 * separate threads. */
#ifndef CAIRN_UTIL_HTTP_CLIENT_H
#define CAIRN_UTIL_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

#define HTTP_CLIENT_MAX_BODY ((size_t)64 << 20)
#define HTTP_CLIENT_MAX_HEAD ((size_t)64 << 10)

enum {
    HTTP_CLIENT_OK = 0,
    HTTP_CLIENT_EURL = -1,      /* malformed endpoint URL */
    HTTP_CLIENT_ERESOLVE = -2,  /* host name did not resolve */
    HTTP_CLIENT_ECONNECT = -3,  /* every address refused or was unreachable */
    HTTP_CLIENT_ETIMEDOUT = -4, /* the attempt's deadline passed */
    HTTP_CLIENT_EIO = -5,       /* send/recv failed, or the peer closed early */
    HTTP_CLIENT_EPROTO = -6,    /* the response is not valid HTTP/1.x */
    HTTP_CLIENT_ETOOBIG = -7,   /* head or body over the caps above */
    HTTP_CLIENT_EINVAL = -8,    /* the request itself is malformed (CR/LF in a header...) */
};

typedef struct http_client_error {
    int code;        /* HTTP_CLIENT_E* */
    const char *url; /* endpoint concerned, or NULL; owned by the endpoint */
    char msg[256];   /* human reason without the URL, e.g. "connection refused" */
} http_client_error;

typedef struct http_client_endpoint {
    char *url;         /* normalised "http://host:port", for messages */
    char *host;        /* name or address, IPv6 without brackets */
    char *port;        /* decimal */
    char *host_header; /* value of the Host header */
} http_client_endpoint;

/* Parse "http://host[:port][/]" (host: name, IPv4, or [IPv6]); a missing
 * scheme means http, a missing port 80. Anything after the authority other
 * than a lone '/' is refused: endpoints name servers, not resources. */
int http_client_endpoint_init(http_client_endpoint *ep, const char *url, http_client_error *err);
void http_client_endpoint_close(http_client_endpoint *ep);

typedef struct http_client_header {
    const char *name;
    const char *value;
} http_client_header;

typedef struct http_client_request {
    const char *method;                /* "GET", "PUT", ... */
    const char *target;                /* origin-form path and query, already percent-encoded */
    const http_client_header *headers; /* extra headers; may be NULL */
    size_t n_headers;
    /* A body is sent (with Content-Length, even when body_len is 0) when
     * has_body is set; methods that carry one should set it. */
    bool has_body;
    const void *body;
    size_t body_len;
} http_client_request;

typedef struct http_client_response {
    int status;
    const char *reason;          /* reason phrase, points into head */
    http_client_header *headers; /* NUL-terminated strings inside head */
    size_t n_headers;
    buf head; /* the header section, split in place */
    buf body; /* decoded body (chunked framing removed) */
} http_client_response;

void http_client_response_init(http_client_response *r);
void http_client_response_close(http_client_response *r);
/* Value of the first header called name (case-insensitive), or NULL. */
const char *http_client_response_header(const http_client_response *r, const char *name);

/* One attempt against one endpoint within timeout_ms. On success resp holds
 * the response, whatever its status; it is reset first. */
int http_client_do(const http_client_endpoint *ep, const http_client_request *req, int timeout_ms,
                   http_client_response *resp, http_client_error *err);

typedef struct http_client_options {
    int timeout_ms;         /* per attempt */
    int rounds;             /* passes over the endpoint list, at least 1 */
    int backoff_initial_ms; /* delay after the first failed attempt */
    int backoff_max_ms;     /* cap of the doubling delay */
} http_client_options;

/* 5 s per attempt, 3 rounds, backoff from 100 ms doubling up to 2 s. */
void http_client_options_default(http_client_options *o);

typedef struct http_client {
    http_client_endpoint *endpoints;
    size_t n_endpoints;
    http_client_options opt;
    size_t preferred;       /* index tried first: the last endpoint that answered */
    size_t last_used;       /* index of the endpoint of the last answer or error */
    unsigned long long rng; /* jitter source, seeded per object */
} http_client;

/* endpoints: comma-separated URLs as for http_client_endpoint_init. */
int http_client_init(http_client *c, const char *endpoints, const http_client_options *opt,
                     http_client_error *err);
void http_client_close(http_client *c);

/* Send req following the retry policy. Returns 0 with the final response
 * (which may be a 503 when every attempt got one), or the error of the last
 * attempt. http_client_last_url tells which endpoint that came from. */
int http_client_send(http_client *c, const http_client_request *req, http_client_response *resp,
                     http_client_error *err);
const char *http_client_last_url(const http_client *c);

const char *http_client_strerror(int code);

/* Append an HTTP Basic Authorization value ("Basic " + padded base64 of
 * "user:password", RFC 7617) for the credentials userpass[0..n). */
void http_basic_auth_value(buf *out, const char *userpass, size_t n);

#endif
