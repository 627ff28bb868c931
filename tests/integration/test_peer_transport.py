"""The peer port is cairn's own transport (replica/transport_mux.c): one
listener for every Raft group, a preamble naming the group. A 3-node
cluster keeps committing while strangers connect to a member's peer port:
garbage, a preamble for a group no node runs, a preamble that never ends;
each is closed and counted (cairn_peer_connections_refused_total), and a
connection that is left half-open goes after the preamble deadline
(5 s). Group 0 speaks libraft 0.15's own handshake (unit test
test_transport_mux.c checks its bytes)."""
import socket
import struct
import time

import requests

from conftest import parse_prometheus, wait_until
from test_cluster import leader_of, make_cluster


def _metric(node, name):
    r = requests.get(node.url("/metrics"), timeout=5)
    assert r.status_code == 200
    _, samples = parse_prometheus(r.text)
    vals = [v for n, _, v in samples if n == name]
    assert vals, f"{name} not exported"
    return vals[0]


def _preamble(group, sender_id, address):
    a = address.encode() + b"\0"
    a += b"\0" * (-len(a) % 8)
    if group == 0:
        return struct.pack("<QQQ", 1, sender_id, len(a)) + a
    return struct.pack("<QQQQ", 0x434149524E4D0001, group, sender_id, len(a)) + a


def _closed_by_peer(sock, timeout=8.0):
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_strangers_on_the_peer_port_are_refused_and_the_cluster_goes_on(make_node):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    target = next(x for x in nodes if x is not leader)  # a follower
    assert leader.put("before", b"1").status_code in (200, 201, 204)
    # the members' own connections were handed to group 0
    assert _metric(target, "cairn_peer_connections_accepted_total") >= 1
    refused0 = _metric(target, "cairn_peer_connections_refused_total")

    addr = ("127.0.0.1", target.peer_port)
    strangers = []
    # garbage: an HTTP request on the peer port
    s1 = socket.create_connection(addr, timeout=5)
    s1.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    strangers.append(s1)
    # a well-formed preamble for a group no node runs
    s2 = socket.create_connection(addr, timeout=5)
    s2.sendall(_preamble(42, 7, "127.0.0.1:1"))
    strangers.append(s2)
    # half a preamble, then silence: closed after the preamble deadline
    s3 = socket.create_connection(addr, timeout=5)
    s3.sendall(_preamble(0, 7, "127.0.0.1:1")[:11])
    strangers.append(s3)
    t0 = time.monotonic()
    try:
        # writes go on committing through the follower meanwhile
        for i in range(20):
            r = target.put(f"k{i}", str(i).encode())
            assert r.status_code in (200, 201, 204), r.text
        assert _closed_by_peer(s1)
        assert _closed_by_peer(s2)
        assert _closed_by_peer(s3)
        waited = time.monotonic() - t0
        assert 3.0 <= waited <= 9.0, waited  # the 5 s preamble deadline
        wait_until(lambda: _metric(target, "cairn_peer_connections_refused_total")
                   >= refused0 + 3, 5, 0.1, "three refusals counted")
        # the refusals were logged, with why (at most one line a second)
        assert 'msg="peer connection refused"' in target.all_stderr()
        # and the cluster still replicates to the node that refused them
        assert leader.put("after", b"2").status_code in (200, 201, 204)
        wait_until(lambda: target.get("after", params={"consistency": "stale"}).content == b"2",
                   10, 0.1, "the follower to apply the write")
    finally:
        for s in strangers:
            s.close()
