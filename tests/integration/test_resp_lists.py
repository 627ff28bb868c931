"""Redis protocol: lists (issue 12), checked reply for reply against
Debian's redis-server (the harness of test_resp_hashes.py), in RESP2 and
RESP3, on both persistence modes; lists long enough to span many quicklist
nodes; a list surviving a restart; a work queue through redis-py.

LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP (with COUNT) LLEN LINDEX LRANGE LPOS
LSET LREM LTRIM LINSERT LMOVE RPOPLPUSH, WRONGTYPE, TYPE."""
import pytest

from resp_helpers import anynode, client  # noqa: F401
from test_resp_hashes import assert_same, redis_server  # noqa: F401

BASIC = [
    ("RPUSH", "l", "a", "b", "c"), ("LPUSH", "l", "z", "y"), ("LRANGE", "l", "0", "-1"),
    ("LLEN", "l"), ("LLEN", "nokey"), ("LINDEX", "l", "0"), ("LINDEX", "l", "-1"),
    ("LINDEX", "l", "99"), ("LINDEX", "l", "x"), ("LINDEX", "nokey", "0"),
    ("LRANGE", "l", "1", "2"), ("LRANGE", "l", "-100", "100"), ("LRANGE", "l", "3", "1"),
    ("LRANGE", "l", "-2", "-1"), ("LRANGE", "nokey", "0", "-1"), ("LRANGE", "l", "a", "1"),
    ("LPUSHX", "nokey", "a"), ("RPUSHX", "nokey", "a"), ("EXISTS", "nokey"),
    ("LPUSHX", "l", "x1"), ("RPUSHX", "l", "x2", "x3"), ("LRANGE", "l", "0", "-1"),
    ("LPOP", "l"), ("RPOP", "l"), ("LPOP", "l", "2"), ("RPOP", "l", "2"),
    ("LPOP", "l", "0"), ("LPOP", "nokey"), ("LPOP", "nokey", "2"), ("LPOP", "nokey", "0"),
    ("LPOP", "l", "-1"), ("LPOP", "l", "x"), ("LPOP", "l", "1", "2"),
    ("LRANGE", "l", "0", "-1"), ("RPOP", "l", "100"), ("EXISTS", "l"), ("TYPE", "l"),
    ("RPUSH", "s", "a", "b", "a", "c", "a"), ("LREM", "s", "1", "a"), ("LRANGE", "s", "0", "-1"),
    ("LREM", "s", "-1", "a"), ("LRANGE", "s", "0", "-1"), ("LREM", "s", "0", "zz"),
    ("RPUSH", "s", "a", "a"), ("LREM", "s", "0", "a"), ("LRANGE", "s", "0", "-1"),
    ("LREM", "nokey", "0", "a"), ("LREM", "s", "x", "a"),
    ("LSET", "s", "0", "B"), ("LSET", "s", "-1", "C"), ("LSET", "s", "5", "x"),
    ("LSET", "nokey", "0", "x"), ("LRANGE", "s", "0", "-1"),
    ("LINSERT", "s", "BEFORE", "C", "b2"), ("LINSERT", "s", "after", "C", "end"),
    ("LINSERT", "s", "BEFORE", "zz", "x"), ("LINSERT", "nokey", "BEFORE", "a", "x"),
    ("LINSERT", "s", "middle", "C", "x"), ("LRANGE", "s", "0", "-1"),
    ("RPUSH", "t", "1", "2", "3", "4", "5", "6"), ("LTRIM", "t", "1", "-2"),
    ("LRANGE", "t", "0", "-1"), ("LTRIM", "t", "-100", "100"), ("LRANGE", "t", "0", "-1"),
    ("LTRIM", "t", "5", "1"), ("EXISTS", "t"), ("LTRIM", "nokey", "0", "1"),
    ("RPUSH", "p", "a", "b", "c", "b", "a", "b"), ("LPOS", "p", "b"), ("LPOS", "p", "zz"),
    ("LPOS", "p", "b", "RANK", "2"), ("LPOS", "p", "b", "RANK", "-1"),
    ("LPOS", "p", "b", "COUNT", "0"), ("LPOS", "p", "b", "COUNT", "2"),
    ("LPOS", "p", "b", "RANK", "-2", "COUNT", "5"), ("LPOS", "p", "b", "MAXLEN", "2"),
    ("LPOS", "p", "b", "COUNT", "0", "MAXLEN", "3"), ("LPOS", "p", "b", "RANK", "0"),
    ("LPOS", "p", "b", "COUNT", "-1"), ("LPOS", "p", "b", "MAXLEN", "-1"),
    ("LPOS", "p", "b", "FOO", "1"), ("LPOS", "p", "b", "RANK"), ("LPOS", "nokey", "a"),
    ("LPOS", "nokey", "a", "COUNT", "1"),
    ("RPUSH", "src", "1", "2", "3"), ("LMOVE", "src", "dst", "LEFT", "RIGHT"),
    ("LMOVE", "src", "dst", "right", "left"), ("LRANGE", "dst", "0", "-1"),
    ("RPOPLPUSH", "src", "dst"), ("EXISTS", "src"), ("LRANGE", "dst", "0", "-1"),
    ("RPOPLPUSH", "nokey", "dst"), ("LMOVE", "dst", "dst", "LEFT", "RIGHT"),
    ("LRANGE", "dst", "0", "-1"), ("LMOVE", "dst", "dst", "UP", "LEFT"),
    ("RPUSH", "bin", b"\x00\xff", b""), ("LRANGE", "bin", "0", "-1"),
    # arity
    ("LPUSH", "l"), ("RPUSH",), ("LLEN",), ("LINDEX", "l"), ("LRANGE", "l", "0"),
    ("LSET", "l", "0"), ("LREM", "l", "0"), ("LTRIM", "l", "0"), ("LINSERT", "l", "BEFORE", "a"),
    ("LMOVE", "a", "b", "LEFT"), ("RPOPLPUSH", "a"), ("LPOS", "l"),
]

WRONG = [
    ("SET", "str", "x"), ("RPUSH", "lst", "a"), ("HSET", "h", "f", "v"),
    ("LPUSH", "str", "a"), ("RPUSH", "h", "a"), ("LPOP", "str"), ("RPOP", "str", "2"),
    ("LLEN", "str"), ("LINDEX", "str", "0"), ("LRANGE", "h", "0", "-1"), ("LSET", "str", "0", "a"),
    ("LREM", "str", "0", "a"), ("LTRIM", "str", "0", "1"), ("LINSERT", "str", "BEFORE", "a", "b"),
    ("LPOS", "str", "a"), ("LMOVE", "str", "lst", "LEFT", "LEFT"),
    ("LMOVE", "lst", "str", "LEFT", "LEFT"), ("LRANGE", "lst", "0", "-1"),
    ("RPOPLPUSH", "lst", "h"), ("LPUSHX", "str", "a"),
    ("GET", "lst"), ("HGET", "lst", "f"), ("INCR", "lst"), ("TYPE", "lst"),
    ("SET", "lst", "now a string"), ("TYPE", "lst"),
    ("RPUSH", "l2", "a"), ("RENAME", "l2", "l3"), ("LRANGE", "l3", "0", "-1"),
    ("EXPIRE", "l3", "100"), ("TTL", "l3"), ("DEL", "l3"), ("EXISTS", "l3"),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_list_commands_match_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, BASIC, proto)
    assert_same(anynode.resp_port, redis_server, WRONG, proto)


def test_long_lists_across_nodes_match_redis(anynode, redis_server):  # noqa: F811
    # elements of 100-300 bytes: a node holds 8 KiB, so thousands of
    # elements span many nodes; every edit below crosses node borders
    script = [("RPUSH", "q", *[f"{i:05d}-" + "x" * (100 + i % 200) for i in range(j, j + 100)])
              for j in range(0, 3000, 100)]
    script += [("LPUSH", "q", *[f"h{i}" for i in range(500)])]
    script += [
        ("LLEN", "q"), ("LINDEX", "q", "1700"), ("LINDEX", "q", "-1234"),
        ("LRANGE", "q", "1000", "1010"), ("LRANGE", "q", "-5", "-1"),
        ("LSET", "q", "2000", "y" * 9000), ("LINDEX", "q", "2000"),  # a node of its own
        ("LINSERT", "q", "BEFORE", "h7", "inserted"), ("LINDEX", "q", "492"),
        ("LREM", "q", "0", "h3"), ("LREM", "q", "-2", "inserted"), ("LLEN", "q"),
        ("LPOS", "q", "h100"), ("LPOS", "q", "h100", "RANK", "-1"),
        ("LPOP", "q", "700"), ("RPOP", "q", "300"), ("LLEN", "q"),
        ("LTRIM", "q", "100", "-100"), ("LLEN", "q"), ("LRANGE", "q", "0", "3"),
        ("LRANGE", "q", "-3", "-1"), ("LRANGE", "q", "0", "-1"),
        ("LMOVE", "q", "q2", "LEFT", "LEFT"), ("LRANGE", "q2", "0", "-1"),
    ]
    assert_same(anynode.resp_port, redis_server, script)


def test_list_survives_restart_and_a_work_queue_drains(make_node):
    n = make_node(extra_args=["--snapshot-threshold", "50"]).start()
    c = client(n)
    c.rpush("jobs", *[f"job-{i}" for i in range(2000)])
    for i in range(100):  # past the snapshot threshold
        c.lpush("log", f"event-{i}")
    before = c.lrange("jobs", 0, -1), c.lrange("log", 0, -1)
    assert n.stop(timeout=30) == 0
    n.start(timeout=60)
    c = client(n)
    assert (c.lrange("jobs", 0, -1), c.lrange("log", 0, -1)) == before
    # a queue: producers RPUSH, a worker moves each job to a processing
    # list (the reliable-queue pattern of RQ and Sidekiq) and acknowledges
    done = 0
    while True:
        job = c.lmove("jobs", "processing", "LEFT", "RIGHT")
        if job is None:
            break
        assert c.lrem("processing", 1, job) == 1
        done += 1
    assert done == 2000 and c.exists("jobs", "processing") == 0
