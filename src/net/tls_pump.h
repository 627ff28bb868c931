/* tls_pump: a TLS connection on a TCP socket, offered as a plaintext uv
 * stream.
 *
 * For code that must be handed a uv_stream_t it then reads and writes
 * itself (libraft's transport interface: after accept or connect,
 * libraft owns the stream). The pump makes a socketpair: one end is the
 * returned stream; the other end and the TCP socket stay with the pump,
 * which moves bytes between them through a tls_conn (memory BIOs,
 * net/tls.h): plaintext written to the stream goes out encrypted,
 * ciphertext read from the socket comes out of the stream as plaintext.
 * Cost: one copy and one extra pair of syscalls each way (measured in
 * docs/design.md, "Partitioning").
 *
 * Either side ending ends both: the socket's EOF, a TLS error (a
 * certificate not trusted, not TLS at all) or a write error closes the
 * pump's end of the pair, so the stream's owner reads EOF; the owner
 * closing the stream makes the pump close the socket. TLS errors are
 * logged, at most one line a second. Writes are bounded: past
 * TLS_PUMP_MAX_QUEUED bytes waiting on one side, the pump stops reading
 * the other. Loop thread only. */
#ifndef CAIRN_NET_TLS_PUMP_H
#define CAIRN_NET_TLS_PUMP_H

#include <stdint.h>
#include <uv.h>

#include "net/tls.h"

#define TLS_PUMP_MAX_QUEUED (4u << 20)

/* Which side opened the TCP connection: for the log, rate-limited per
 * side so that one side failing every few milliseconds hides no other. */
typedef enum { TLS_PUMP_ACCEPTED = 0, TLS_PUMP_DIALED } tls_pump_side;

/* tcp: connected, malloc'd, its data field free for the pump; tls: a
 * fresh server or client connection. Both become the pump's (also when it
 * fails). Returns a malloc'd uv_pipe_t (as uv_stream_t) that the caller
 * owns, closes and frees; NULL when no socketpair could be made. */
uv_stream_t *tls_pump_start(uv_loop_t *loop, uv_tcp_t *tcp, tls_conn *tls, tls_pump_side side);

/* Pumps whose TLS failed (handshake or later), since the start. */
uint64_t tls_pump_failures(void);

#endif
