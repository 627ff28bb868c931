"""Redis protocol: hashes (issue 12), checked against Debian's redis-server
itself. Every script runs on a real redis-server and on cairnd (both
persistence modes), and the raw replies must be identical, in RESP2 and
RESP3; hash-table-encoded hashes (past 512 fields or a 64-byte value) list
their fields in an order of their own on either side, so those listings are
compared as sets.

HSET HMSET HSETNX HGET HMGET HDEL HLEN HEXISTS HSTRLEN HGETALL HKEYS HVALS
HINCRBY HINCRBYFLOAT, WRONGTYPE both ways, TYPE, SCAN TYPE, and a hash
surviving a restart and a follower's snapshot install."""
import shutil
import signal
import subprocess

import pytest

from conftest import free_ports, wait_until
from resp_helpers import RawResp, anynode, client, raw  # noqa: F401

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


@pytest.fixture
def redis_server(tmp_path):
    """Debian's redis-server on a free loopback port, no persistence."""
    exe = shutil.which("redis-server")
    assert exe, "redis-server is needed (scripts/deps.sh installs it)"
    (port,) = free_ports(1)
    d = tmp_path / "redis"
    d.mkdir()
    p = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", str(d)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def up():
            try:
                with RawResp(port, timeout=1) as c:
                    return c.cmd("PING") == "PONG"
            except OSError:
                return False

        wait_until(up, 10, 0.05, "redis-server to answer")
        yield port
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def replies(port, script, proto, unordered):
    """Each command's whole reply: its exact bytes, or for a listing in
    `unordered`, its parsed value with the order taken out."""
    out = []
    with RawResp(port) as c:
        if proto == 3:
            c.cmd("HELLO", "3")
        for cmd in script:
            if cmd[0].upper() not in unordered:
                out.append(c.raw_full_reply(*cmd))
                continue
            v = c.cmd(*cmd)
            if cmd[0].upper() == "HGETALL" and isinstance(v, list):
                v = dict(zip(v[::2], v[1::2]))
            out.append(dict(v) if isinstance(v, dict) else sorted(v))
    return out


def assert_same(cairn_port, redis_port, script, proto=2, unordered=()):
    got = replies(cairn_port, script, proto, unordered)
    want = replies(redis_port, script, proto, unordered)
    assert len(got) == len(want) == len(script)
    for cmd, g, w in zip(script, got, want):
        assert g == w, (cmd, g, w)


BASIC = [
    ("HSET", "h", "f1", "v1", "f2", "v2"),
    ("HSET", "h", "f1", "new", "f3", "v3"),
    ("HGET", "h", "f1"), ("HGET", "h", "nope"), ("HGET", "nokey", "f"),
    ("HMGET", "h", "f1", "nope", "f3"), ("HMGET", "nokey", "a", "b"),
    ("HLEN", "h"), ("HLEN", "nokey"),
    ("HEXISTS", "h", "f2"), ("HEXISTS", "h", "zz"), ("HEXISTS", "nokey", "f"),
    ("HSTRLEN", "h", "f1"), ("HSTRLEN", "h", "zz"),
    ("HGETALL", "h"), ("HKEYS", "h"), ("HVALS", "h"), ("HGETALL", "nokey"),
    ("HSETNX", "h", "f1", "x"), ("HSETNX", "h", "f9", "x"), ("HSETNX", "n2", "a", "b"),
    ("HMSET", "h", "m1", "1", "m2", "2"), ("HGETALL", "h"),
    ("HDEL", "h", "f1", "zz", "f2"), ("HDEL", "nokey", "a"), ("HGETALL", "h"),
    ("HSET", "bin", b"\x00\xff", b"\r\n\x00"), ("HGET", "bin", b"\x00\xff"),
    ("HSET", "empty", "", ""), ("HGETALL", "empty"), ("HSTRLEN", "empty", ""),
    ("TYPE", "h"), ("TYPE", "nokey"),
    ("HDEL", "n2", "a"), ("EXISTS", "n2"), ("TYPE", "n2"),
    # arity and syntax
    ("HSET", "h", "f"), ("HSET", "h", "f", "v", "g"), ("HMSET", "h", "f"),
    ("HGET", "h"), ("HSETNX", "h", "f"), ("HDEL", "h"), ("HLEN",),
    ("HINCRBY", "h", "f"), ("HINCRBYFLOAT", "h", "f", "1", "2"),
]

COUNTERS = [
    ("HINCRBY", "c", "n", "5"), ("HINCRBY", "c", "n", "-7"), ("HGET", "c", "n"),
    ("HINCRBY", "c", "n", "x"), ("HINCRBY", "c", "n", "1.5"),
    ("HSET", "c", "s", "abc"), ("HINCRBY", "c", "s", "1"),
    ("HSET", "c", "big", "9223372036854775807"), ("HINCRBY", "c", "big", "1"),
    ("HSET", "c", "neg", "-9223372036854775808"), ("HINCRBY", "c", "neg", "-1"),
    ("HSET", "c", "sp", " 1"), ("HINCRBY", "c", "sp", "1"),
    ("HINCRBYFLOAT", "c", "f", "10.5"), ("HINCRBYFLOAT", "c", "f", "0.1"),
    ("HINCRBYFLOAT", "c", "f", "-5"), ("HINCRBYFLOAT", "c", "f", "5.0e3"),
    ("HINCRBYFLOAT", "c", "n", "0.5"), ("HINCRBYFLOAT", "c", "s", "1"),
    ("HINCRBYFLOAT", "c", "f", "abc"), ("HINCRBYFLOAT", "c", "f", "nan"),
    ("HINCRBYFLOAT", "c", "f", "inf"), ("HGETALL", "c"),
]

WRONG = [
    ("SET", "s", "str"), ("HSET", "h", "f", "v"),
    ("HSET", "s", "f", "v"), ("HGET", "s", "f"), ("HMGET", "s", "f"), ("HLEN", "s"),
    ("HDEL", "s", "f"), ("HGETALL", "s"), ("HKEYS", "s"), ("HVALS", "s"),
    ("HEXISTS", "s", "f"), ("HSTRLEN", "s", "f"), ("HINCRBY", "s", "f", "1"),
    ("HINCRBYFLOAT", "s", "f", "1"), ("HSETNX", "s", "f", "v"),
    ("GET", "h"), ("STRLEN", "h"), ("GETRANGE", "h", "0", "-1"), ("APPEND", "h", "x"),
    ("INCR", "h"), ("INCRBYFLOAT", "h", "1"), ("SETRANGE", "h", "0", "x"), ("GETDEL", "h"),
    ("GETEX", "h"), ("SET", "h", "x", "GET"), ("GETSET", "h", "x"), ("MGET", "s", "h", "nokey"),
    ("TYPE", "h"), ("TYPE", "s"), ("EXISTS", "h", "s"),
    ("RENAME", "h", "h2"), ("HGET", "h2", "f"), ("TYPE", "h2"),
    ("SET", "h2", "now a string"), ("TYPE", "h2"), ("GET", "h2"),
    ("HSET", "h3", "a", "b"), ("EXPIRE", "h3", "100"), ("TTL", "h3"), ("PERSIST", "h3"),
    ("TTL", "h3"), ("DEL", "h3"), ("EXISTS", "h3"),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_hash_commands_match_redis(anynode, redis_server, proto):
    assert_same(anynode.resp_port, redis_server, BASIC, proto)
    assert_same(anynode.resp_port, redis_server, COUNTERS, proto)
    assert_same(anynode.resp_port, redis_server, WRONG, proto)


def test_big_hashes_and_long_values_match_redis(anynode, redis_server):
    fill = [("HSET", "big", f"field:{i}", f"value:{i}") for i in range(700)]
    script = fill + [
        ("HLEN", "big"), ("HGET", "big", "field:7"), ("HGET", "big", "field:699"),
        ("HDEL", "big", "field:7", "field:8"), ("HLEN", "big"), ("HEXISTS", "big", "field:7"),
        ("HGETALL", "big"), ("HKEYS", "big"), ("HVALS", "big"),
        ("HSET", "long", "a", "b"), ("HSET", "long", "x" * 65, "y"), ("HSET", "long", "v", "z" * 100),
        ("HGETALL", "long"), ("HSTRLEN", "long", "v"),
    ]
    assert_same(anynode.resp_port, redis_server, script,
                unordered=("HGETALL", "HKEYS", "HVALS"))
    # exactly 512 fields (redis-server's hash-max-listpack-entries) stay
    # packed, in insertion order on both sides; the 513th makes a table
    exact = ([("HSET", "edge", f"f{i}", "v") for i in range(512)] +
             [("HKEYS", "edge"), ("OBJECT", "ENCODING", "edge"), ("HSET", "edge", "last", "v"),
              ("OBJECT", "ENCODING", "edge")])
    assert_same(anynode.resp_port, redis_server, exact)


def test_scan_type_filters_by_type(anynode):
    with raw(anynode) as c:
        c.cmd("SET", "s1", "x")
        c.cmd("HSET", "h1", "f", "v")
        c.cmd("HSET", "h2", "f", "v")

        def scan(*extra):
            cursor, keys = b"0", []
            for _ in range(100):
                cursor, batch = c.cmd("SCAN", cursor, "COUNT", "100", *extra)
                keys += batch
                if cursor == b"0":
                    break
            return sorted(keys)

        assert scan("TYPE", "hash") == [b"h1", b"h2"]
        assert scan("TYPE", "string") == [b"s1"]
        assert scan("TYPE", "zset") == []
        assert scan() == [b"h1", b"h2", b"s1"]


def test_rest_api_refuses_a_hash_with_409(anynode):
    c = client(anynode)
    c.hset("h", mapping={"a": "1"})
    r = anynode.request("GET", "/v1/key/h")
    assert r.status_code == 409, r.text
    assert r.headers["X-Cairn-Type"] == "hash"
    listed = anynode.request("GET", "/v1/keys?values=true").json()["keys"]
    assert {"key": "h"}.items() <= listed[0].items() and listed[0]["type"] == "hash"
    assert "value" not in listed[0]
    # PUT replaces it with a string, as SET does
    assert anynode.put("h", "text").status_code in (200, 201)
    assert c.type("h") == b"string"


def test_hash_survives_restart_and_snapshot(make_node):
    n = make_node(extra_args=["--snapshot-threshold", "50"]).start()
    c = client(n)
    c.hset("small", mapping={f"f{i}": f"v{i}" for i in range(10)})
    c.hset("large", mapping={f"f{i}": f"v{i}" for i in range(500)})
    for i in range(120):  # past the snapshot threshold
        c.hincrby("counter", "n", 1)
    before = {k: c.hgetall(k) for k in ("small", "large", "counter")}
    assert n.stop(timeout=30) == 0
    n.start(timeout=60)
    c = client(n)
    assert {k: c.hgetall(k) for k in ("small", "large", "counter")} == before
    assert c.hget("counter", "n") == b"120"
    assert c.hlen("large") == 500


def test_hash_reaches_a_restarted_follower(make_node):
    # it catches up by a snapshot or by the log (libraft decides which);
    # snapshot loading of hashes is covered by the restart test above and
    # tests/unit/test_hash.c
    from test_cluster import compact_the_log, make_cluster, leader_of
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    follower = next(x for x in nodes if x is not leader)
    assert follower.stop(timeout=30) == 0
    c = client(leader)
    c.hset("big", mapping={f"f{i}": f"v{i}" for i in range(300)})  # a table
    compact_the_log(leader, lambda i: c.hset("small", f"k{i % 5}", str(i)))
    follower.start(timeout=60)

    def caught_up():
        with raw(follower) as r:
            r.cmd("READONLY")
            return r.cmd("HLEN", "big") == 300 and r.cmd("HGET", "small", "k4") == b"299"

    wait_until(caught_up, 30, 0.2, "the follower to catch up")
    f = client(follower)  # linearizable reads through the follower
    assert f.hgetall("big") == c.hgetall("big")
    assert f.hgetall("small") == {f"k{i}".encode(): str(295 + i).encode() for i in range(5)}
    assert f.type("big") == b"hash"


def test_hscan_matches_redis_and_covers_a_table(anynode, redis_server):  # noqa: F811
    script = [
        ("HSET", "h", "a1", "1", "b1", "2", "a2", "3"),
        ("HSCAN", "h", "0"), ("HSCAN", "h", "0", "MATCH", "a*"), ("HSCAN", "h", "0", "COUNT", "1"),
        ("HSCAN", "nokey", "0"), ("HSCAN", "h", "x"), ("HSCAN", "h", "0", "COUNT", "0"),
        ("HSCAN", "h", "0", "COUNT"), ("HSCAN", "h", "0", "FOO", "1"), ("HSCAN", "h"),
        ("SET", "s", "x"), ("HSCAN", "s", "0"),
    ]
    assert_same(anynode.resp_port, redis_server, script)
    # a table: a full scan returns every field (at least once)
    c = client(anynode)
    want = {f"f{i}".encode(): f"v{i}".encode() for i in range(1000)}
    c.hset("big", mapping=want)
    got, cursor, calls = {}, 0, 0
    while True:
        cursor, part = c.hscan("big", cursor, count=50)
        got.update(part)
        calls += 1
        if cursor == 0:
            break
        assert calls < 10000
    assert got == want and calls > 1
    assert dict(c.hscan_iter("big", match="f99*")) == {k: v for k, v in want.items()
                                                      if k.startswith(b"f99")}
