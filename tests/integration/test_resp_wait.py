"""Redis protocol: WAIT (issue 13). On one node (or with --persistence
none) there are no replicas: WAIT answers 0, after its timeout when more
were asked for, and its argument errors are Redis' (compared with
redis-server, which has no replicas either). In a 3-node cluster the
leader counts the followers whose log holds the connection's last write
and waits for them; a follower answers at once what the commit
guarantees (1 of 2 followers); a follower that is down is not counted,
and WAIT for it times out."""
import time

import pytest

from resp_helpers import RawResp, anynode  # noqa: F401
from test_cluster import leader_of, make_cluster
from test_resp_hashes import assert_same, redis_server  # noqa: F401

ALONE = [
    ("SET", "k", "v"), ("WAIT", "0", "0"), ("WAIT", "1", "50"), ("WAIT", "x", "0"),
    ("WAIT", "1", "x"), ("WAIT", "1", "-1"), ("WAIT", "1"), ("WAIT", "-1", "0"),
    ("MULTI",), ("WAIT", "0", "0"), ("EXEC",),
    ("EVAL", "return redis.call('wait', '0', '0')", "0"),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_wait_without_replicas_matches_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, ALONE, proto)


def test_wait_times_out_when_asked_for_more_than_there_are(anynode):
    with RawResp(anynode.resp_port) as c:
        t0 = time.monotonic()
        assert c.cmd("WAIT", "3", "200") == 0
        assert 0.15 < time.monotonic() - t0 < 5


def test_wait_in_a_cluster(make_node):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    f1, f2 = [x for x in nodes if x is not leader]
    with RawResp(leader.resp_port) as c:
        assert c.cmd("SET", "k", "v") == "OK"
        assert c.cmd("WAIT", "2", "5000") == 2  # both followers have it
    with RawResp(f1.resp_port) as c:
        assert c.cmd("SET", "k2", "v") == "OK"
        t0 = time.monotonic()
        assert c.cmd("WAIT", "2", "5000") == 1  # what a follower can promise, at once
        assert time.monotonic() - t0 < 2
    assert f2.stop(timeout=30) == 0
    with RawResp(leader.resp_port) as c:
        assert c.cmd("SET", "k3", "v") == "OK"
        assert c.cmd("WAIT", "1", "5000") == 1
        t0 = time.monotonic()
        assert c.cmd("WAIT", "2", "300") == 1  # the stopped one never gets it
        assert time.monotonic() - t0 >= 0.25
    f2.start()
    with RawResp(leader.resp_port) as c:
        assert c.cmd("WAIT", "2", "10000") == 2  # it caught up


def test_a_client_that_leaves_while_waiting(anynode):
    """WAIT for ever, then the client goes: the node forgets the wait, keeps
    serving, and stops cleanly (the fixture checks the exit)."""
    import socket
    s = socket.create_connection(("127.0.0.1", anynode.resp_port))
    s.sendall(b"*3\r\n$4\r\nWAIT\r\n$1\r\n5\r\n$1\r\n0\r\n")
    time.sleep(0.1)
    s.close()
    time.sleep(0.1)
    with RawResp(anynode.resp_port) as c:
        assert c.cmd("PING") == "PONG"
        assert c.cmd("WAIT", "0", "0") == 0
