/* transport_mux: many Raft groups over one peer port.
 *
 * libraft lets its caller supply the transport that opens peer
 * connections (struct raft_uv_transport: init, listen, connect, close);
 * accept and connect hand libraft a connected uv stream, on which it then
 * runs its own message framing. This module is that transport, shared by
 * every Raft group of the process: one listening socket (--listen-peer),
 * and a short preamble at the start of each connection naming the group
 * it belongs to, so that an incoming connection is handed to that group's
 * libraft (docs/design.md, "Partitioning", step 2).
 *
 * The preamble, little-endian 64-bit words, then the sender's address
 * NUL-terminated and padded to 8 bytes:
 *   group 0:   [1] [sender id] [address bytes] [address]
 *              exactly libraft 0.15's own TCP handshake, so a node with
 *              this transport and a node with libraft's talk to each other
 *              (a rolling upgrade of a one-group cluster keeps working);
 *   group g>0: [TMUX_PROTOCOL] [g] [sender id] [address bytes] [address].
 * With TLS (transport_mux_set_tls) every connection is TLS from its
 * first byte, mutually authenticated; the preamble goes inside, and the
 * listener answers an accepted one with the byte TMUX_ACK, which the
 * dialer waits for before handing the stream to libraft (so a refused
 * peer is a failed connect, retried after libraft's back-off). The wire
 * is then cairn's own: a TLS node and a plain one do not talk.
 * A connection whose preamble is malformed, too long, too slow (past
 * TMUX_PREAMBLE_TIMEOUT_MS) or names a group this process does not run is
 * closed, counted and logged (at most once a second). Outgoing
 * connections have a deadline too (TMUX_CONNECT_TIMEOUT_MS: the TCP
 * connect and the preamble's write); libraft retries a failed one.
 *
 * Use: one transport_mux per process (transport_mux_create); for each
 * group, a struct raft_uv_transport set up with transport_mux_port_init
 * and passed to raft_uv_init; after raft_close completed and
 * raft_uv_close, transport_mux_port_close frees the port (as
 * raft_uv_tcp_close does for libraft's own). transport_mux_release closes
 * the listener once every port is gone; the mux frees itself when its
 * last handle has closed. Loop thread only. */
#ifndef CAIRN_REPLICA_TRANSPORT_MUX_H
#define CAIRN_REPLICA_TRANSPORT_MUX_H

#include <raft.h>
#include <raft/uv.h>
#include <stdint.h>
#include <uv.h>

#define TMUX_PROTOCOL UINT64_C(0x434149524e4d0001) /* "CAIRNM", version 1 */
#define TMUX_LEGACY_PROTOCOL 1                     /* libraft 0.15's handshake */
#define TMUX_ADDRESS_MAX 1024                      /* preamble's address, padding included */
#define TMUX_ACK 0x01 /* over TLS: the listener accepted the preamble */
#define TMUX_CONNECT_TIMEOUT_MS 3000
#define TMUX_PREAMBLE_TIMEOUT_MS 5000

typedef struct transport_mux transport_mux;

typedef struct transport_mux_stats {
    uint64_t accepted; /* connections handed to a group */
    uint64_t refused;  /* closed at the preamble: malformed, slow, unknown group */
    uint64_t dialed;   /* outgoing connections handed to a group */
    uint64_t dial_failed;
} transport_mux_stats;

/* bind_address: host:port (IPv4, [IPv6] or a name) the listener binds
 * once the first group listens. */
int transport_mux_create(transport_mux **out, uv_loop_t *loop, const char *bind_address, char *err,
                         size_t errlen);
/* Closes the listener and every connection still in its preamble; every
 * port must have been closed (transport_mux_port_close) before. */
void transport_mux_release(transport_mux *m);
transport_mux_stats transport_mux_get_stats(const transport_mux *m);
/* TLS on every peer connection, both ways, with mutual authentication:
 * this node presents cert (and key); a peer's certificate must chain to
 * ca, or when ca is NULL or "" to the cert file itself; the server's must
 * also name the address dialed (an IP SAN, or a DNS name). The preamble
 * goes inside TLS. Before the first listen or connect. */
int transport_mux_set_tls(transport_mux *m, const char *cert, const char *key, const char *ca,
                          char *err, size_t errlen);
/* Re-read the files (SIGHUP): new connections use them. */
int transport_mux_reload_tls(transport_mux *m, char *err, size_t errlen);
/* Deadlines other than the defaults (tests). */
void transport_mux_set_timeouts(transport_mux *m, unsigned connect_ms, unsigned preamble_ms);
/* The bound port (0 before the listener is open): for tests that bind :0. */
int transport_mux_bound_port(const transport_mux *m);

/* t becomes group `group`'s transport on m (fills t's methods). */
int transport_mux_port_init(struct raft_uv_transport *t, transport_mux *m, uint32_t group);
void transport_mux_port_close(struct raft_uv_transport *t);

/* The preamble a connection to `group` starts with (for tests that speak
 * to the listener by hand). Returns its length, 0 if it does not fit. */
size_t transport_mux_preamble(uint32_t group, raft_id id, const char *address, char *out,
                              size_t cap);

#endif
