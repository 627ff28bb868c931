"""Redis protocol: streams (issue 13) without consumer groups: XADD (IDs
explicit, ms-*, *; NOMKSTREAM; MAXLEN and MINID, exact and ~, LIMIT),
XLEN, XRANGE and XREVRANGE (-, +, exclusive bounds, COUNT), XDEL, XTRIM,
XREAD (COUNT, $), checked byte for byte against Debian's redis-server in
RESP2 and RESP3 with explicit IDs (the ones * picks come from each
server's clock). Then what only cairn has to show: * takes the leader's
clock so every node holds the same IDs, a stream survives a restart and a
follower's snapshot install, TYPE/OBJECT ENCODING/COPY/RENAME/WRONGTYPE."""
import re
import time

import pytest

from conftest import wait_until
from resp_helpers import RawResp, anynode  # noqa: F401
from test_cluster import compact_the_log, leader_of, make_cluster
from test_resp_hashes import assert_same, redis_server  # noqa: F401

BASIC = [
    ("XADD", "s", "1-1", "f", "v"), ("XADD", "s", "1-2", "a", "1", "b", "2"),
    ("XADD", "s", "1-*", "c", "3"), ("XADD", "s", "5", "d", "4"), ("XADD", "s", "5-*", "e", "5"),
    ("XADD", "s", "5-1", "x", "y"), ("XADD", "s", "4-9", "x", "y"), ("XADD", "s", "0-0", "x", "y"),
    ("XADD", "s", "0", "x", "y"), ("XADD", "new", "0-*", "x", "y"), ("XADD", "new2", "0-1", "a", "b"),
    ("XLEN", "s"), ("XLEN", "nokey"),
    ("XRANGE", "s", "-", "+"), ("XRANGE", "s", "1", "1"), ("XRANGE", "s", "(1-1", "5"),
    ("XRANGE", "s", "1-2", "(5-1"), ("XRANGE", "s", "-", "+", "COUNT", "2"),
    ("XRANGE", "s", "-", "+", "COUNT", "0"), ("XRANGE", "s", "-", "+", "COUNT", "-3"),
    ("XRANGE", "s", "5", "1"), ("XRANGE", "nokey", "-", "+"), ("XRANGE", "nokey", "-", "+", "COUNT", "0"),
    ("XREVRANGE", "s", "+", "-"), ("XREVRANGE", "s", "+", "-", "COUNT", "1"),
    ("XREVRANGE", "s", "5", "(1-2"),
    ("XRANGE", "s", "(-", "+"), ("XRANGE", "s", "-", "(+"), ("XRANGE", "s", "x", "+"),
    ("XRANGE", "s", "(18446744073709551615-18446744073709551615", "+"),
    ("XRANGE", "s", "-", "(0-0"), ("XRANGE", "s", "-", "+", "COUNT"), ("XRANGE", "s", "-", "+", "LIMIT", "1"),
    ("XRANGE", "s", "-", "+", "COUNT", "x"), ("XRANGE", "s"),
    # XDEL
    ("XDEL", "s", "1-2", "9-9", "1-2"), ("XDEL", "s", "bad"), ("XDEL", "nokey", "1-1"),
    ("XRANGE", "s", "-", "+"), ("XLEN", "s"),
    ("XADD", "s", "5-1", "again", "no"),  # the last ID stays, also after its entry goes
    ("XDEL", "s", "5-1"), ("XADD", "s", "5-1", "again", "no"), ("XADD", "s", "5-*", "ok", "1"),
    # NOMKSTREAM
    ("XADD", "missing", "NOMKSTREAM", "1-1", "a", "b"), ("EXISTS", "missing"),
    ("XADD", "s", "NOMKSTREAM", "6-0", "a", "b"),
    # arity and syntax
    ("XADD", "s", "7-0", "a"), ("XADD", "s", "7-0", "a", "b", "c"), ("XADD", "s", "MAXLEN", "x", "*", "a", "b"),
    ("XADD", "s", "MAXLEN", "-1", "*", "a", "b"), ("XADD", "s", "LIMIT", "5", "7-0", "a", "b"),
    ("XADD", "s", "MAXLEN", "5", "LIMIT", "5", "7-0", "a", "b"),
    ("XADD", "s", "MAXLEN", "5", "MINID", "1", "7-0", "a", "b"),
    ("XADD", "s", "MINID", "bad", "7-0", "a", "b"), ("XADD", "s", "MAXLEN", "~", "5", "LIMIT", "-1", "7-0", "a", "b"),
    ("XADD", "s", "notanid", "a", "b"), ("XADD", "s", "1-x", "a", "b"), ("XADD", "s", "-", "a", "b"),
    ("XLEN",), ("XDEL", "s"),
]

TRIMS = [
    *[("XADD", "t", f"{i}-0", "n", str(i)) for i in range(1, 251)],
    ("XLEN", "t"),
    ("XADD", "t", "MAXLEN", "~", "200", "251-0", "n", "x"), ("XLEN", "t"),  # whole nodes only
    ("XADD", "t", "MAXLEN", "~", "120", "252-0", "n", "x"), ("XLEN", "t"),
    ("XTRIM", "t", "MAXLEN", "~", "10"), ("XLEN", "t"), ("XRANGE", "t", "-", "+", "COUNT", "1"),
    ("XTRIM", "t", "MAXLEN", "=", "10"), ("XLEN", "t"), ("XRANGE", "t", "-", "+"),
    ("XTRIM", "t", "MINID", "248"), ("XRANGE", "t", "-", "+"),
    ("XTRIM", "t", "MAXLEN", "0"), ("XLEN", "t"), ("EXISTS", "t"), ("TYPE", "t"),
    ("XADD", "t", "MAXLEN", "0", "300-0", "a", "b"), ("XLEN", "t"),
    ("XADD", "t", "300-0", "a", "b"), ("XADD", "t", "300-*", "a", "b"),
    ("XTRIM", "t", "MAXLEN"), ("XTRIM", "t", "LIMIT", "1"), ("XTRIM", "t", "FOO", "1"),
    ("XTRIM", "t", "MAXLEN", "1", "LIMIT", "1"), ("XTRIM", "nokey", "MAXLEN", "1"),
    *[("XADD", "u", f"{i}-0", "n", str(i)) for i in range(1, 301)],
    ("XTRIM", "u", "MINID", "~", "150"), ("XLEN", "u"),
    ("XTRIM", "u", "MAXLEN", "~", "0", "LIMIT", "100"), ("XLEN", "u"),
    ("XTRIM", "u", "MAXLEN", "~", "0", "LIMIT", "0"), ("XLEN", "u"),
]

READS = [
    ("XADD", "a", "1-0", "k", "v1"), ("XADD", "a", "2-0", "k", "v2"), ("XADD", "b", "1-5", "x", "y"),
    ("XREAD", "STREAMS", "a", "b", "0", "0"), ("XREAD", "COUNT", "1", "STREAMS", "a", "b", "0-0", "1"),
    ("XREAD", "STREAMS", "a", "1-0"), ("XREAD", "STREAMS", "a", "2"), ("XREAD", "STREAMS", "a", "$"),
    ("XREAD", "STREAMS", "nokey", "0"), ("XREAD", "STREAMS", "a", "b", "0"),
    ("XREAD", "STREAMS", "a", ">"), ("XREAD", "STREAMS", "a", "x"), ("XREAD", "COUNT", "x", "STREAMS", "a", "0"),
    ("XREAD", "FOO", "STREAMS", "a", "0"), ("XREAD", "STREAMS"),
    # WRONGTYPE both ways
    ("SET", "str", "v"), ("XADD", "str", "1-1", "a", "b"), ("XLEN", "str"), ("XRANGE", "str", "-", "+"),
    ("XREAD", "STREAMS", "str", "0"), ("XDEL", "str", "1-1"), ("XTRIM", "str", "MAXLEN", "1"),
    ("GET", "a"), ("LPUSH", "a", "x"), ("TYPE", "a"), ("OBJECT", "ENCODING", "a"),
    ("COPY", "a", "a2"), ("XRANGE", "a2", "-", "+"), ("XADD", "a2", "2-0", "x", "y"),
    ("XADD", "a2", "3-0", "x", "y"), ("XLEN", "a"),
    ("RENAME", "a2", "a3"), ("XRANGE", "a3", "-", "+"), ("DEL", "a3"), ("EXISTS", "a3"),
    ("EXPIRE", "b", "100"), ("TTL", "b"),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_stream_commands_match_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, BASIC, proto)
    assert_same(anynode.resp_port, redis_server, TRIMS, proto)
    assert_same(anynode.resp_port, redis_server, READS, proto)


def _blocking(port):
    """XREAD BLOCK: a timeout, a reader served by another client's XADD,
    $ meaning what comes after now, BLOCK inside MULTI not blocking."""
    out = []
    with RawResp(port) as a, RawResp(port) as b:
        a.cmd("XADD", "bs", "1-0", "f", "old")
        t0 = time.monotonic()
        out.append(a.raw_full_reply("XREAD", "BLOCK", "150", "STREAMS", "bs", "$"))
        assert time.monotonic() - t0 >= 0.14
        a.send_cmd("XREAD", "BLOCK", "0", "STREAMS", "bs", "nokey", "$", "$")
        time.sleep(0.2)
        out.append(b.raw_full_reply("XADD", "bs", "2-0", "f", "new"))
        parts = []
        a._raw_value(time.monotonic() + 10, parts)
        out.append(b"".join(parts))
        a.send_cmd("XREAD", "COUNT", "1", "BLOCK", "5000", "STREAMS", "nokey", "0")
        time.sleep(0.2)
        out.append(b.raw_full_reply("XADD", "nokey", "5-0", "a", "b", "c", "d"))
        parts = []
        a._raw_value(time.monotonic() + 10, parts)
        out.append(b"".join(parts))
        out.append(a.raw_full_reply("MULTI"))
        out.append(a.raw_full_reply("XREAD", "BLOCK", "0", "STREAMS", "bs", "$"))
        out.append(a.raw_full_reply("EXEC"))
        out.append(a.raw_full_reply("XREAD", "BLOCK", "-1", "STREAMS", "bs", "$"))
        out.append(a.raw_full_reply("XREAD", "BLOCK", "x", "STREAMS", "bs", "$"))
    return out


@pytest.mark.parametrize("proto", [2])
def test_xread_block_matches_redis(anynode, redis_server, proto):  # noqa: F811
    assert _blocking(anynode.resp_port) == _blocking(redis_server)


def test_xread_block_on_a_follower_is_served_through_the_leader(make_node):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    f1 = next(x for x in nodes if x is not leader)
    with RawResp(f1.resp_port, timeout=20) as r, RawResp(leader.resp_port) as w:
        r.send_cmd("XREAD", "BLOCK", "10000", "STREAMS", "ev", "$")
        time.sleep(0.3)
        t0 = time.monotonic()
        assert w.cmd("XADD", "ev", "7-1", "k", "v") == b"7-1"
        assert r.read() == [[b"ev", [[b"7-1", [b"k", b"v"]]]]]
        assert time.monotonic() - t0 < 5


ID = re.compile(rb"^(\d+)-(\d+)$")


def test_star_ids_are_the_leaders_and_the_same_everywhere(make_node):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    f1 = next(x for x in nodes if x is not leader)
    ids = []
    with RawResp(f1.resp_port) as c:
        for i in range(50):
            ids.append(c.cmd("XADD", "events", "*", "i", str(i)))
    parsed = [tuple(int(x) for x in ID.match(i).groups()) for i in ids]
    assert parsed == sorted(parsed) and len(set(parsed)) == 50
    want = c_range = None
    for x in nodes:
        with RawResp(x.resp_port) as c:
            c_range = c.cmd("XRANGE", "events", "-", "+")
        if want is None:
            want = c_range
        assert c_range == want
    assert [e[0] for e in want] == ids


def test_a_stream_survives_restart_and_reaches_a_follower_by_snapshot(make_node):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    lagging = next(x for x in nodes if x is not leader)
    with RawResp(leader.resp_port) as c:
        for i in range(1, 131):
            c.cmd("XADD", "log", f"{i}-0", "n", str(i))
        c.cmd("XDEL", "log", "5-0")
        c.cmd("XTRIM", "log", "MAXLEN", "~", "20")
        want = c.cmd("XRANGE", "log", "-", "+")
        want_len = c.cmd("XLEN", "log")
    lagging.stop()
    compact_the_log(leader, lambda i: RawResp(leader.resp_port).cmd("SET", f"k{i}", "v"))
    lagging.start()

    def same():
        with RawResp(lagging.resp_port) as c:
            c.cmd("READONLY")
            return c.cmd("XRANGE", "log", "-", "+") == want

    wait_until(same, 30, 0.2, "the follower to install the leader's snapshot")
    with RawResp(lagging.resp_port) as c:
        # the last ID and the nodes came along: an old ID is refused, ~ goes on by nodes
        assert str(c.cmd("XADD", "log", "130-0", "a", "b")).startswith("ERR The ID specified")
        assert c.cmd("XLEN", "log") == want_len
    leader.stop()
    leader.start()
    with RawResp(leader.resp_port) as c:
        assert c.cmd("XRANGE", "log", "-", "+") == want


def test_xadd_over_the_value_limit_is_refused(make_node):
    n = make_node(persistence="none", extra_args=["--max-value-bytes", "1024"]).start()
    with RawResp(n.resp_port) as c:
        assert c.cmd("XADD", "s", "1-1", "f", b"x" * 1025) == "ERR value too large (max 1024 bytes)"
        assert c.cmd("XADD", "s", "1-1", b"f" * 1025, "v") == "ERR value too large (max 1024 bytes)"
        assert c.cmd("EXISTS", "s") == 0
        assert c.cmd("XADD", "s", "1-1", "f", b"x" * 1024) == b"1-1"
