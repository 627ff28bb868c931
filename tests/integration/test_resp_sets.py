"""Redis protocol: sets (issue 12), checked against Debian's redis-server
itself (the harness of test_resp_hashes.py), in RESP2 and RESP3, on both
persistence modes. Listings of sets Redis keeps in a hash table come in an
order of its own, so SMEMBERS, SINTER, SUNION and SDIFF are compared as
sets; integer sets list in ascending order on both sides. SPOP and
SRANDMEMBER choose at random: their choices are checked for what Redis
promises, and a pop is shown to remove the same members on every node.

SADD SREM SCARD SMEMBERS SISMEMBER SMISMEMBER SPOP SRANDMEMBER SMOVE SINTER
SINTERCARD SUNION SDIFF SINTERSTORE SUNIONSTORE SDIFFSTORE SSCAN, WRONGTYPE,
TYPE, encodings (intset, listpack, hashtable) across a restart."""
import pytest

from conftest import wait_until
from resp_helpers import RawResp, anynode, client, raw  # noqa: F401
from test_cluster import leader_of, make_cluster
from test_resp_hashes import assert_same, redis_server  # noqa: F401

LISTINGS = ("SMEMBERS", "SINTER", "SUNION", "SDIFF")

BASIC = [
    ("SADD", "s", "3", "1", "2", "2"), ("SMEMBERS", "s"), ("SCARD", "s"), ("SCARD", "nokey"),
    ("SADD", "s", "1"), ("SADD", "s", "-5", "100000", "9999999999"), ("SMEMBERS", "s"),
    ("SISMEMBER", "s", "2"), ("SISMEMBER", "s", "7"), ("SISMEMBER", "nokey", "1"),
    ("SISMEMBER", "s", "02"), ("SISMEMBER", "s", "+2"),
    ("SMISMEMBER", "s", "1", "x", "-5"), ("SMISMEMBER", "nokey", "a"),
    ("SREM", "s", "1", "1", "77"), ("SREM", "nokey", "a"), ("SMEMBERS", "s"),
    ("SADD", "w", "apple", "pear", "fig"), ("SADD", "w", "02", "-0", "2"), ("SCARD", "w"),
    ("SMEMBERS", "w"), ("SISMEMBER", "w", "02"), ("SISMEMBER", "w", "2"),
    ("SADD", "a", "1", "2", "3", "4"), ("SADD", "b", "3", "4", "5"), ("SADD", "c", "4", "x"),
    ("SINTER", "a", "b"), ("SINTER", "a", "b", "c"), ("SINTER", "a", "nokey"),
    ("SUNION", "a", "b", "c"), ("SUNION", "nokey"), ("SDIFF", "a", "b"), ("SDIFF", "a", "b", "c"),
    ("SDIFF", "nokey", "a"), ("SDIFF", "a", "nokey"),
    ("SINTERCARD", "2", "a", "b"), ("SINTERCARD", "3", "a", "b", "c"),
    ("SINTERCARD", "2", "a", "b", "LIMIT", "1"), ("SINTERCARD", "2", "a", "b", "LIMIT", "0"),
    ("SINTERCARD", "1", "nokey"), ("SINTERCARD", "0", "a"), ("SINTERCARD", "3", "a", "b"),
    ("SINTERCARD", "2", "a", "b", "LIMIT", "-1"), ("SINTERCARD", "2", "a", "b", "LIMIT"),
    ("SINTERCARD", "2", "a", "b", "FOO", "1"), ("SINTERCARD", "x", "a"),
    ("SINTERSTORE", "d", "a", "b"), ("SMEMBERS", "d"), ("SUNIONSTORE", "d", "a", "c"),
    ("SCARD", "d"), ("SDIFFSTORE", "d", "a", "b"), ("SMEMBERS", "d"),
    ("SINTERSTORE", "d", "a", "nokey"), ("EXISTS", "d"), ("SUNIONSTORE", "a", "a", "b"),
    ("SMEMBERS", "a"), ("SET", "str", "v"), ("SUNIONSTORE", "str", "b"), ("TYPE", "str"),
    ("SMOVE", "a", "b", "1"), ("SMOVE", "a", "b", "1"), ("SMOVE", "a", "new", "2"),
    ("SMEMBERS", "new"), ("SMOVE", "a", "a", "3"), ("SMOVE", "a", "a", "99"),
    ("SMOVE", "nokey", "b", "1"), ("SMEMBERS", "b"),
    ("SADD", "one", "x"), ("SMOVE", "one", "two", "x"), ("EXISTS", "one"), ("SMEMBERS", "two"),
    ("SPOP", "nokey"), ("SPOP", "nokey", "3"), ("SPOP", "s", "0"), ("SPOP", "s", "-1"),
    ("SPOP", "s", "x"), ("SPOP", "s", "1", "2"),
    ("SRANDMEMBER", "nokey"), ("SRANDMEMBER", "nokey", "3"), ("SRANDMEMBER", "s", "0"),
    ("SRANDMEMBER", "s", "x"), ("SRANDMEMBER", "s", "1", "2"),
    ("SADD", "one", "only"), ("SPOP", "one"), ("EXISTS", "one"), ("SADD", "one", "o"),
    ("SPOP", "one", "5"), ("EXISTS", "one"), ("SADD", "one", "o"), ("SRANDMEMBER", "one"),
    ("SRANDMEMBER", "one", "3"), ("SRANDMEMBER", "one", "-3"),
    ("SSCAN", "s", "0"), ("SSCAN", "w", "0", "MATCH", "p*"), ("SSCAN", "nokey", "0"),
    ("SSCAN", "s", "x"), ("SSCAN", "s", "0", "COUNT", "0"), ("SSCAN", "s", "0", "FOO", "1"),
    ("SADD", "bin", b"\x00\xff", b""), ("SISMEMBER", "bin", b""), ("SCARD", "bin"),
    ("TYPE", "s"), ("TYPE", "nokey"),
    # arity
    ("SADD", "s"), ("SREM", "s"), ("SCARD",), ("SISMEMBER", "s"), ("SMISMEMBER", "s"),
    ("SMOVE", "a", "b"), ("SINTER",), ("SINTERSTORE", "d"), ("SSCAN", "s"), ("SPOP",),
]

WRONG = [
    ("SET", "str", "x"), ("SADD", "set", "a"), ("RPUSH", "lst", "a"), ("HSET", "h", "f", "v"),
    ("SADD", "str", "a"), ("SREM", "lst", "a"), ("SCARD", "h"), ("SMEMBERS", "str"),
    ("SISMEMBER", "str", "a"), ("SMISMEMBER", "str", "a"), ("SPOP", "str"), ("SPOP", "str", "2"),
    ("SRANDMEMBER", "str"), ("SINTER", "set", "str"), ("SINTER", "nokey", "str"),
    ("SUNION", "str", "set"), ("SDIFF", "nokey", "str"), ("SINTERCARD", "2", "nokey", "str"),
    ("SINTERSTORE", "d", "nokey", "str"), ("SMOVE", "str", "set", "a"),
    ("SMOVE", "set", "str", "a"), ("SMOVE", "nokey", "str", "a"), ("SSCAN", "str", "0"),
    ("GET", "set"), ("LPUSH", "set", "x"), ("HGET", "set", "f"), ("TYPE", "set"),
    ("RENAME", "set", "set2"), ("SMEMBERS", "set2"), ("EXPIRE", "set2", "100"),
    ("TTL", "set2"), ("SET", "set2", "now a string"), ("TYPE", "set2"),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_set_commands_match_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, BASIC, proto, unordered=LISTINGS)
    assert_same(anynode.resp_port, redis_server, WRONG, proto, unordered=LISTINGS)


def test_big_sets_match_redis(anynode, redis_server):  # noqa: F811
    # past 512 integers an intset becomes a table; past 128 members or a
    # 64-byte member a listpack does
    ints = [str(i * 7) for i in range(600)]
    words = [f"w{i}" for i in range(200)]
    script = [("SADD", "ints", *ints[:500]), ("SCARD", "ints"), ("SMEMBERS", "ints"),
              ("SADD", "ints", *ints[500:]), ("SCARD", "ints"), ("SMEMBERS", "ints"),
              ("SISMEMBER", "ints", "3493"), ("SREM", "ints", *ints[::3]), ("SCARD", "ints"),
              ("SADD", "words", *words[:100]), ("SADD", "words", "x" * 65), ("SCARD", "words"),
              ("SADD", "words", *words[100:]), ("SMEMBERS", "words"),
              ("SINTER", "ints", "words"), ("SUNIONSTORE", "u", "ints", "words"), ("SCARD", "u"),
              ("SDIFF", "words", "u"), ("SINTERCARD", "2", "u", "ints"),
              ("SINTERCARD", "2", "u", "ints", "LIMIT", "10")]
    assert_same(anynode.resp_port, redis_server, script, 2, unordered=LISTINGS)


def scan_all(c, key, *opts):
    cursor, seen = b"0", []
    for _ in range(10000):
        cursor, batch = c.cmd("SSCAN", key, cursor, *opts)
        seen += batch
        if cursor == b"0":
            return seen
    raise AssertionError("SSCAN did not finish")


def test_sscan_covers_every_member_once_per_encoding(anynode):  # noqa: F811
    with raw(anynode) as c:
        c.cmd("SADD", "ints", *[str(i) for i in range(100)])
        c.cmd("SADD", "small", "a", "b", "c")
        c.cmd("SADD", "big", *[f"m{i}" for i in range(3000)])
        assert sorted(scan_all(c, "ints")) == sorted(str(i).encode() for i in range(100))
        assert sorted(scan_all(c, "small")) == [b"a", b"b", b"c"]
        got = scan_all(c, "big", "COUNT", "50")
        assert sorted(set(got)) == sorted(f"m{i}".encode() for i in range(3000))
        assert sorted(scan_all(c, "big", "MATCH", "m1?")) == sorted(
            f"m1{i}".encode() for i in range(10))


def test_spop_and_srandmember_choose_members(anynode):  # noqa: F811
    with raw(anynode) as c:
        for key, members in (("ints", [str(i) for i in range(50)]),
                             ("words", [f"w{i}" for i in range(50)]),
                             ("big", [f"b{i}" for i in range(300)])):
            c.cmd("SADD", key, *members)
            pool = {m.encode() for m in members}
            one = c.cmd("SRANDMEMBER", key)
            assert one in pool
            distinct = c.cmd("SRANDMEMBER", key, "20")
            assert len(distinct) == 20 and len(set(distinct)) == 20 and set(distinct) <= pool
            assert set(c.cmd("SRANDMEMBER", key, "100000")) == pool
            repeats = c.cmd("SRANDMEMBER", key, "-500")
            assert len(repeats) == 500 and set(repeats) <= pool
            assert len(set(repeats)) > 10, "negative counts must draw at random"
            popped = c.cmd("SPOP", key, "10")
            assert len(popped) == 10 and len(set(popped)) == 10 and set(popped) <= pool
            assert c.cmd("SCARD", key) == len(members) - 10
            assert not any(c.cmd("SMISMEMBER", key, *popped))
            single = c.cmd("SPOP", key)
            assert single in pool - set(popped)
            rest = c.cmd("SPOP", key, "100000")
            assert set(rest) | set(popped) | {single} == pool
            assert c.cmd("EXISTS", key) == 0


def test_sets_survive_a_restart_in_every_encoding(make_node):
    node = make_node(persistence="durable", extra_args=["--snapshot-threshold", "10"]).start()
    want = {"ints": {str(i) for i in range(20)}, "words": {f"w{i}" for i in range(30)},
            "table": {f"t{i}" for i in range(500)}}
    with raw(node) as c:
        for k, v in want.items():
            c.cmd("SADD", k, *sorted(v))
        c.cmd("SREM", "table", "t7")
        want["table"].discard("t7")
    node.restart()
    with raw(node) as c:
        for k, v in want.items():
            assert set(c.cmd("SMEMBERS", k)) == {m.encode() for m in v}, k
        assert c.cmd("SMEMBERS", "ints") == [str(i).encode() for i in range(20)]  # ascending


def test_spop_removes_the_same_members_on_every_node(make_node):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    follower = next(x for x in nodes if x is not leader)
    with RawResp(follower.resp_port) as c:
        c.cmd("SADD", "s", *[f"m{i}" for i in range(200)])
        popped = set(c.cmd("SPOP", "s", "50"))
        assert len(popped) == 50
        want = sorted({f"m{i}".encode() for i in range(200)} - popped)
    for x in nodes:
        def same(x=x):
            with RawResp(x.resp_port) as r:
                r.cmd("READONLY")
                return sorted(r.cmd("SMEMBERS", "s")) == want
        wait_until(same, 10, 0.05, f"node {x.node_id} to hold the same members")
