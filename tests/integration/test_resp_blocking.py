"""Redis protocol: LMPOP and the blocking pops (issue 12, "Blocking
commands on a replicated store"): BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP,
and for sorted sets BZPOPMIN BZPOPMAX BZMPOP.

What answers at once (an element there, a short timeout on empty lists,
every argument error, WRONGTYPE) is compared reply for reply with Debian's
redis-server, in RESP2 and RESP3. Blocking itself on real processes: a
push from another client serves the blocked one; clients are served in
the order they blocked; nothing after a blocked command on its connection
runs before it answers; a client that leaves loses no element; a client
blocked on a follower is served by a push through the leader, with the
element gone on every node; and it stays blocked through a leader change.
"""
import threading
import time

import pytest

from conftest import wait_until
from resp_helpers import RawResp, anynode, client, info, raw  # noqa: F401
from test_cluster import leader_of, make_cluster
from test_resp_hashes import assert_same, redis_server  # noqa: F401

IMMEDIATE = [
    ("RPUSH", "q", "a", "b", "c", "d", "e"),
    ("BLPOP", "q", "0"), ("BRPOP", "q", "0"), ("BLPOP", "nokey", "q", "0"),
    ("LMPOP", "1", "q", "LEFT"), ("LMPOP", "2", "nokey", "q", "RIGHT", "COUNT", "5"),
    ("EXISTS", "q"), ("LMPOP", "1", "q", "LEFT"), ("LMPOP", "2", "a", "b", "left", "count", "2"),
    ("RPUSH", "q", "1", "2", "3"), ("BLMPOP", "0", "1", "q", "LEFT", "COUNT", "2"),
    ("BLMPOP", "0.01", "2", "nokey", "other", "RIGHT"),
    ("RPUSH", "src", "x", "y"), ("BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"),
    ("BRPOPLPUSH", "src", "dst", "0"), ("LRANGE", "dst", "0", "-1"), ("EXISTS", "src"),
    ("BLPOP", "empty", "0.05"), ("BRPOP", "empty", "other", "0.05"),
    ("BLMOVE", "empty", "dst", "LEFT", "LEFT", "0.05"), ("BRPOPLPUSH", "empty", "dst", "0.05"),
    # argument errors
    ("BLPOP", "q", "x"), ("BLPOP", "q", "-1"), ("BLPOP", "q", "1e30"), ("BLPOP", "q"),
    ("BRPOP",), ("BLMOVE", "a", "b", "UP", "LEFT", "0"), ("BLMOVE", "a", "b", "LEFT", "LEFT", "x"),
    ("BRPOPLPUSH", "a", "b", "-2"), ("BLMOVE", "a", "b", "LEFT"),
    ("LMPOP", "0", "q", "LEFT"), ("LMPOP", "-1", "q", "LEFT"), ("LMPOP", "x", "q", "LEFT"),
    ("LMPOP", "3", "q", "LEFT"), ("LMPOP", "1", "q", "UP"), ("LMPOP", "1", "q"),
    ("LMPOP", "1", "q", "LEFT", "COUNT"), ("LMPOP", "1", "q", "LEFT", "COUNT", "0"),
    ("LMPOP", "1", "q", "LEFT", "COUNT", "-1"), ("LMPOP", "1", "q", "LEFT", "COUNT", "x"),
    ("LMPOP", "1", "q", "LEFT", "COUNT", "1", "COUNT", "2"), ("LMPOP", "1", "q", "LEFT", "FOO"),
    ("BLMPOP", "x", "1", "q", "LEFT"), ("BLMPOP", "0", "0", "q", "LEFT"),
    ("BLMPOP", "0", "2", "q", "LEFT"), ("LMPOP", "1"), ("BLMPOP", "0", "1", "q"),
    # types: a key of another type before a non-empty list answers WRONGTYPE
    ("SET", "str", "v"), ("RPUSH", "lst", "1"), ("BLPOP", "str", "lst", "0"),
    ("BLPOP", "lst", "str", "0"), ("RPUSH", "lst", "2"), ("LMPOP", "2", "str", "lst", "LEFT"),
    ("BLMOVE", "str", "lst", "LEFT", "LEFT", "0"), ("BLMOVE", "lst", "str", "LEFT", "LEFT", "0"),
    # an absent source answers nil before the destination's type is looked
    # at (found by the differential run)
    ("LMOVE", "nokey", "str", "LEFT", "LEFT"), ("RPOPLPUSH", "nokey", "str"),
    ("LRANGE", "lst", "0", "-1"),
    ("COMMAND", "GETKEYS", "LMPOP", "2", "k1", "k2", "LEFT"),
    ("COMMAND", "GETKEYS", "BLMPOP", "0", "1", "k1", "RIGHT", "COUNT", "3"),
    ("COMMAND", "GETKEYS", "BLPOP", "k1", "k2", "0"),
    # sorted sets
    ("ZADD", "z", "1", "a", "2", "b", "3", "c", "2.5", "d"), ("BZPOPMIN", "z", "0"),
    ("BZPOPMAX", "nokey", "z", "0"), ("BZMPOP", "0", "2", "nokey", "z", "MIN", "COUNT", "2"),
    ("BZMPOP", "0.01", "1", "z", "MAX", "COUNT", "5"), ("EXISTS", "z"),
    ("BZPOPMIN", "z", "0.05"), ("BZPOPMAX", "z", "other", "0.05"),
    ("BZMPOP", "0.05", "1", "z", "MIN"),
    ("BZPOPMIN", "z", "x"), ("BZPOPMIN", "z", "-1"), ("BZPOPMIN", "z"),
    ("BZMPOP", "x", "1", "z", "MIN"), ("BZMPOP", "0", "0", "z", "MIN"),
    ("BZMPOP", "0", "1", "z", "LEFT"), ("BZMPOP", "0", "1", "z", "MIN", "COUNT", "0"),
    ("BZMPOP", "0", "1", "z"), ("BZPOPMIN", "str", "0"), ("BZPOPMIN", "lst", "0"),
    ("ZADD", "z2", "7", "m"), ("BZPOPMAX", "str", "z2", "0"), ("BZMPOP", "0", "2", "lst", "z2", "MAX"),
    ("BLPOP", "z2", "0"),
    ("COMMAND", "GETKEYS", "BZMPOP", "0", "2", "k1", "k2", "MIN"),
    ("COMMAND", "GETKEYS", "BZPOPMIN", "k1", "k2", "0"),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_what_answers_at_once_matches_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, IMMEDIATE, proto)


def blocked_count(node):
    return int(info(node, "clients")["blocked_clients"])


def wait_blocked(node, n, timeout=10):
    wait_until(lambda: blocked_count(node) == n, timeout, 0.02, f"{n} blocked clients")


def test_a_push_serves_a_blocked_client_and_a_timeout_answers_nil(anynode):  # noqa: F811
    with raw(anynode) as b, raw(anynode) as p:
        b.send_cmd("BLPOP", "jobs", "0")
        wait_blocked(anynode, 1)
        assert p.cmd("RPUSH", "jobs", "j1", "j2") == 2
        assert b.read() == [b"jobs", b"j1"]
        assert p.cmd("LRANGE", "jobs", "0", "-1") == [b"j2"]
        assert blocked_count(anynode) == 0
        t0 = time.monotonic()
        assert b.cmd("BLPOP", "none", "0.3") == None  # noqa: E711 (a RESP null)
        assert time.monotonic() - t0 >= 0.29
        b.send_cmd("BLMOVE", "src", "dst", "RIGHT", "LEFT", "0")
        wait_blocked(anynode, 1)
        p.cmd("RPUSH", "src", "m")
        assert b.read() == b"m"
        assert p.cmd("LRANGE", "dst", "0", "-1") == [b"m"]
        b.send_cmd("BLMPOP", "0", "2", "a", "b", "RIGHT", "COUNT", "2")
        wait_blocked(anynode, 1)
        p.cmd("RPUSH", "b", "1", "2", "3")
        assert b.read() == [b"b", [b"3", b"2"]]


def test_a_zadd_serves_a_client_blocked_on_a_sorted_set(anynode):  # noqa: F811
    with raw(anynode) as b, raw(anynode) as p:
        b.send_cmd("BZPOPMIN", "none", "board", "0")
        wait_blocked(anynode, 1)
        assert p.cmd("ZADD", "board", "5", "five", "1.5", "low") == 2
        assert b.read() == [b"board", b"low", b"1.5"]
        assert p.cmd("ZRANGE", "board", "0", "-1") == [b"five"]
        b.send_cmd("BZMPOP", "0", "1", "q", "MAX", "COUNT", "2")
        wait_blocked(anynode, 1)
        p.cmd("ZADD", "q", "1", "x", "2", "y", "3", "z")
        assert b.read() == [b"q", [[b"z", b"3"], [b"y", b"2"]]]
        assert b.cmd("BZPOPMAX", "none", "0.2") == None  # noqa: E711 (a RESP null)
        # RESP3: the score is a double
        b.cmd("HELLO", "3")
        b.send_cmd("BZPOPMAX", "r3", "0")
        wait_blocked(anynode, 1)
        p.cmd("ZADD", "r3", "2.5", "m")
        assert b.read() == [b"r3", b"m", 2.5]


def test_a_push_of_another_type_leaves_a_blocked_client_blocked(anynode):  # noqa: F811
    """A key blocked on by a list pop and a sorted set pop: a ZADD serves
    the sorted set's client only (as in Redis); the list's client stays
    blocked until an element of its own type comes."""
    with raw(anynode) as bl, raw(anynode) as bz, raw(anynode) as p:
        bl.send_cmd("BLPOP", "k", "0")
        wait_blocked(anynode, 1)
        bz.send_cmd("BZPOPMIN", "k", "0")
        wait_blocked(anynode, 2)
        p.cmd("ZADD", "k", "1", "m")
        assert bz.read() == [b"k", b"m", b"1"]
        time.sleep(0.2)
        assert blocked_count(anynode) == 1
        p.cmd("RPUSH", "k", "e")
        assert bl.read() == [b"k", b"e"]


def test_clients_are_served_in_the_order_they_blocked(anynode):  # noqa: F811
    conns = [raw(anynode) for _ in range(4)]
    try:
        for i, c in enumerate(conns):
            c.send_cmd("BRPOP", "q", "0")
            wait_blocked(anynode, i + 1)
        with raw(anynode) as p:
            p.cmd("LPUSH", "q", "e1", "e2", "e3", "e4")  # e1 is at the tail
        assert [c.read() for c in conns] == [[b"q", b"e1"], [b"q", b"e2"], [b"q", b"e3"],
                                             [b"q", b"e4"]]
    finally:
        for c in conns:
            c.close()


def test_nothing_after_a_blocked_command_runs_before_it(anynode):  # noqa: F811
    with raw(anynode) as b, raw(anynode) as p:
        b.send(b"".join([b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n",
                         b"*3\r\n$3\r\nSET\r\n$5\r\nafter\r\n$1\r\n1\r\n"]))
        wait_blocked(anynode, 1)
        time.sleep(0.2)
        assert p.cmd("EXISTS", "after") == 0, "the SET behind a blocked BLPOP ran"
        p.cmd("RPUSH", "q", "x")
        assert b.read() == [b"q", b"x"]
        assert b.read() == "OK"
        assert p.cmd("GET", "after") == b"1"


def test_a_client_that_leaves_loses_no_element(anynode):  # noqa: F811
    b = raw(anynode)
    b.send_cmd("BLPOP", "q", "0")
    wait_blocked(anynode, 1)
    b.close()
    wait_blocked(anynode, 0)
    with raw(anynode) as p:
        p.cmd("RPUSH", "q", "kept")
        time.sleep(0.2)
        assert p.cmd("LRANGE", "q", "0", "-1") == [b"kept"]


def test_a_client_gone_while_its_pop_is_in_flight_loses_no_element(make_node):
    """BLPOP on a non-empty list, and the connection closed in the same
    breath: the pop is in flight (waiting for its fsync) when the server
    sees the client leave, so the element it popped is pushed back."""
    node = make_node(persistence="durable").start()
    with raw(node) as p:
        p.cmd("RPUSH", "q", *[f"e{i}" for i in range(10)])
        for _ in range(10):
            c = raw(node)
            c.send_cmd("BLPOP", "q", "0")
            c.close()
        wait_blocked(node, 0)
        time.sleep(0.3)
        left = p.cmd("LRANGE", "q", "0", "-1")
    # every element is still there (each went back to the head it was
    # popped from; ten clients leaving at once put them back in the order
    # their pops completed, so the order is not kept)
    assert sorted(left) == sorted(f"e{i}".encode() for i in range(10)), left


def test_a_client_gone_while_its_zset_pop_is_in_flight_loses_no_member(make_node):
    """The sorted set form: the members go back with their scores."""
    node = make_node(persistence="durable").start()
    with raw(node) as p:
        members = []
        for i in range(10):
            members += [f"{i}.5", f"m{i}"]
        p.cmd("ZADD", "z", *members)
        for i in range(10):
            c = raw(node)
            c.send_cmd("BZPOPMIN" if i % 2 else "BZPOPMAX", "z", "0")
            c.close()
        wait_blocked(node, 0)
        time.sleep(0.3)
        left = p.cmd("ZRANGE", "z", "0", "-1", "WITHSCORES")
    assert left == sum(([f"m{i}".encode(), f"{i}.5".encode()] for i in range(10)), []), left


def test_redis_py_blpop_with_timeout(anynode):  # noqa: F811
    r = client(anynode)
    assert r.blpop(["none"], timeout=0.2) is None

    def push():
        time.sleep(0.3)
        client(anynode).rpush("work", "job")

    t = threading.Thread(target=push)
    t.start()
    assert r.blpop(["work"], timeout=5) == (b"work", b"job")
    t.join()
    assert r.brpoplpush("work", "done", timeout=0.1) is None
    r.rpush("work", "j2")
    assert r.brpoplpush("work", "done", timeout=1) == b"j2"
    assert r.lmpop(1, "done", direction="LEFT") == [b"done", [b"j2"]]
    assert r.bzpopmin(["none"], timeout=0.1) is None
    r.zadd("zq", {"job": 3.0})
    assert r.bzpopmax(["zq"], timeout=1) == (b"zq", b"job", 3.0)
    r.zadd("zq", {"a": 1, "b": 2})
    assert r.zmpop(1, ["zq"], min=True, count=5) == [b"zq", [[b"a", b"1"], [b"b", b"2"]]]


@pytest.mark.timeout_s(150)
def test_blocked_on_a_follower_is_served_through_the_leader_and_a_leader_change(make_node):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    f1, f2 = [x for x in nodes if x is not leader]
    with RawResp(f1.resp_port) as b:
        b.send_cmd("BLPOP", "q", "0")
        wait_blocked(f1, 1)
        with RawResp(leader.resp_port) as p:
            p.cmd("RPUSH", "q", "one", "two")
        assert b.read() == [b"q", b"one"]
        for x in nodes:  # the pop is a log entry: gone everywhere
            wait_until(lambda x=x: _lrange_stale(x, "q") == [b"two"], 10, 0.05,
                       f"node {x.node_id} to apply the pop")
        # block again, then take the leader away
        assert b.cmd("LPOP", "q") == b"two"
        b.send_cmd("BRPOP", "q", "0")
        wait_blocked(f1, 1)
        leader.kill9()
        ids = {f1.node_id, f2.node_id}
        wait_until(lambda: {x.status()["leader"] for x in (f1, f2)} in ({f1.node_id}, {f2.node_id}),
                   20, 0.1, "a new leader among the two others")
        new = f1 if f1.status()["leader"] == f1.node_id else f2
        assert new.node_id in ids
        assert blocked_count(f1) == 1, "the blocked client was dropped by the leader change"
        with RawResp(new.resp_port) as p:
            p.cmd("RPUSH", "q", "after")
        assert b.read(timeout=20) == [b"q", b"after"]


def _lrange_stale(node, key):
    with RawResp(node.resp_port) as c:
        c.cmd("READONLY")
        return c.cmd("LRANGE", key, "0", "-1")
