"""Redis protocol: sorted sets (issue 12), checked reply for reply against
Debian's redis-server (the harness of test_resp_hashes.py), in RESP2 and
RESP3, on both persistence modes: small sets (listpack) and big ones
(skiplist), scores as Redis prints them, ranges by rank and score with REV,
LIMIT and WITHSCORES, pops, removals by range, WRONGTYPE, a restart, and
the same members on every node of a cluster.

ZADD (NX XX GT LT CH INCR) ZINCRBY ZREM ZCARD ZSCORE ZMSCORE ZRANK ZREVRANK
ZCOUNT ZRANGE ZREVRANGE ZRANGEBYSCORE ZREVRANGEBYSCORE ZRANGEBYLEX
ZREVRANGEBYLEX ZLEXCOUNT ZPOPMIN ZPOPMAX ZREMRANGEBYRANK ZREMRANGEBYSCORE
ZREMRANGEBYLEX ZSCAN ZUNION ZINTER ZDIFF ZUNIONSTORE ZINTERSTORE ZDIFFSTORE
ZINTERCARD ZRANGESTORE ZMPOP (BZMPOP BZPOPMIN BZPOPMAX: test_resp_blocking.py)."""
import pytest

from conftest import wait_until
from resp_helpers import RawResp, anynode, raw  # noqa: F401
from test_cluster import leader_of, make_cluster
from test_resp_hashes import assert_same, redis_server  # noqa: F401

BASIC = [
    ("ZADD", "z", "1", "a", "2", "b", "3", "c"), ("ZCARD", "z"), ("ZCARD", "nokey"),
    ("ZADD", "z", "1", "a"), ("ZADD", "z", "CH", "5", "a", "2", "b", "9", "new"),
    ("ZRANGE", "z", "0", "-1", "WITHSCORES"), ("ZSCORE", "z", "a"), ("ZSCORE", "z", "zz"),
    ("ZSCORE", "nokey", "a"), ("ZMSCORE", "z", "a", "zz", "c"), ("ZMSCORE", "nokey", "a"),
    ("ZADD", "z", "0.1", "tenth", "-0", "negzero", "1e300", "big", "-inf", "low", "+inf", "high"),
    ("ZRANGE", "z", "0", "-1", "WITHSCORES"), ("ZSCORE", "z", "tenth"), ("ZSCORE", "z", "low"),
    ("ZADD", "z", "x", "a"), ("ZADD", "z", "nan", "a"), ("ZADD", "z", "1"), ("ZADD", "z", "1", "a", "2"),
    ("ZADD", "z", "NX", "XX", "1", "a"), ("ZADD", "z", "GT", "LT", "1", "a"),
    ("ZADD", "z", "NX", "GT", "1", "a"), ("ZADD", "z", "INCR", "1", "a", "2", "b"),
    ("ZADD", "z", "NX", "100", "a", "100", "fresh"), ("ZSCORE", "z", "a"),
    ("ZADD", "z", "XX", "100", "a", "100", "absent"), ("ZSCORE", "z", "absent"),
    ("ZADD", "z", "GT", "CH", "1", "a", "200", "b"), ("ZADD", "z", "LT", "CH", "1", "a"),
    ("ZADD", "z", "INCR", "2.5", "a"), ("ZADD", "z", "NX", "INCR", "2.5", "a"),
    ("ZADD", "z", "XX", "INCR", "1", "nothere"), ("ZADD", "nokey2", "XX", "1", "a"),
    ("EXISTS", "nokey2"), ("ZINCRBY", "z", "10", "a"), ("ZINCRBY", "z", "-0.5", "brandnew"),
    ("ZINCRBY", "z", "x", "a"), ("ZINCRBY", "z", "+inf", "high"), ("ZINCRBY", "z", "-inf", "high"),
    ("ZRANK", "z", "a"), ("ZREVRANK", "z", "a"), ("ZRANK", "z", "zz"), ("ZRANK", "nokey", "a"),
    ("ZCOUNT", "z", "-inf", "+inf"), ("ZCOUNT", "z", "(1", "3"), ("ZCOUNT", "z", "1", "(3"),
    ("ZCOUNT", "z", "x", "3"), ("ZCOUNT", "nokey", "0", "1"),
    ("ZRANGE", "z", "0", "2"), ("ZRANGE", "z", "-3", "-1", "WITHSCORES"), ("ZRANGE", "z", "5", "1"),
    ("ZRANGE", "z", "0", "100"), ("ZRANGE", "z", "a", "1"), ("ZRANGE", "z", "0", "-1", "REV"),
    ("ZRANGE", "z", "1", "3", "BYSCORE"), ("ZRANGE", "z", "(1", "(3", "BYSCORE", "WITHSCORES"),
    ("ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV"), ("ZRANGE", "z", "3", "1", "BYSCORE", "REV"),
    ("ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "2"),
    ("ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "-1", "WITHSCORES"),
    ("ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "-1", "2"),
    ("ZRANGE", "z", "-inf", "+inf", "BYSCORE", "REV", "LIMIT", "2", "3"),
    ("ZRANGE", "z", "0", "1", "LIMIT", "0", "1"), ("ZRANGE", "z", "x", "1", "BYSCORE"),
    ("ZRANGE", "z", "0", "1", "FOO"), ("ZRANGE", "z", "0", "1", "LIMIT", "x", "1", "BYSCORE"),
    ("ZRANGE", "z", "(1", "3", "BYLEX"),
    ("ZREVRANGE", "z", "0", "2", "WITHSCORES"), ("ZREVRANGE", "z", "0", "1", "LIMIT", "0", "1"),
    ("ZRANGEBYSCORE", "z", "2", "+inf", "WITHSCORES", "LIMIT", "0", "3"),
    ("ZRANGEBYSCORE", "z", "(2", "100"), ("ZRANGEBYSCORE", "z", "2", "1"),
    ("ZREVRANGEBYSCORE", "z", "+inf", "2", "LIMIT", "1", "2", "WITHSCORES"),
    ("ZREVRANGEBYSCORE", "z", "2", "+inf"), ("ZRANGEBYSCORE", "z", "x", "y"),
    ("ZREM", "z", "a", "zz", "b"), ("ZREM", "nokey", "a"), ("ZCARD", "z"),
    ("ZPOPMIN", "z"), ("ZPOPMAX", "z"), ("ZPOPMIN", "z", "2"), ("ZPOPMAX", "z", "0"),
    ("ZPOPMIN", "nokey"), ("ZPOPMIN", "nokey", "2"), ("ZPOPMIN", "z", "-1"), ("ZPOPMIN", "z", "x"),
    ("ZPOPMIN", "z", "1", "2"), ("ZRANGE", "z", "0", "-1", "WITHSCORES"),
    ("ZADD", "r", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"), ("ZREMRANGEBYRANK", "r", "1", "2"),
    ("ZRANGE", "r", "0", "-1"), ("ZREMRANGEBYRANK", "r", "-1", "-1"), ("ZREMRANGEBYRANK", "r", "5", "9"),
    ("ZREMRANGEBYRANK", "r", "x", "1"), ("ZREMRANGEBYSCORE", "r", "(1", "5"), ("ZRANGE", "r", "0", "-1"),
    ("ZREMRANGEBYSCORE", "r", "x", "1"), ("ZREMRANGEBYSCORE", "r", "-inf", "+inf"), ("EXISTS", "r"),
    ("ZADD", "t", "1", "same", "1", "aaa", "1", "b"), ("ZRANGE", "t", "0", "-1"),
    ("ZSCAN", "t", "0"), ("ZSCAN", "t", "0", "MATCH", "a*"), ("ZSCAN", "nokey", "0"),
    ("ZADD", "bin", "1", b"\x00\xff", "2", b""), ("ZRANGE", "bin", "0", "-1", "WITHSCORES"),
    ("TYPE", "t"),
    # arity
    ("ZADD", "z"), ("ZADD", "z", "1"), ("ZREM", "z"), ("ZCARD",), ("ZSCORE", "z"), ("ZRANK", "z"),
    ("ZCOUNT", "z", "1"), ("ZRANGE", "z", "0"), ("ZINCRBY", "z", "1"), ("ZPOPMIN",),
]

LEX = [
    ("ZADD", "lx", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e", "0", "ab", "0", ""),
    ("ZRANGEBYLEX", "lx", "-", "+"), ("ZRANGEBYLEX", "lx", "[b", "(d"), ("ZRANGEBYLEX", "lx", "(a", "[c"),
    ("ZRANGEBYLEX", "lx", "+", "-"), ("ZRANGEBYLEX", "lx", "[", "[b"), ("ZRANGEBYLEX", "lx", "(", "+"),
    ("ZRANGEBYLEX", "lx", "-", "+", "LIMIT", "1", "3"), ("ZRANGEBYLEX", "lx", "-", "+", "LIMIT", "-1", "3"),
    ("ZREVRANGEBYLEX", "lx", "+", "-"), ("ZREVRANGEBYLEX", "lx", "[d", "(a", "LIMIT", "1", "2"),
    ("ZRANGE", "lx", "[b", "[d", "BYLEX"), ("ZRANGE", "lx", "[d", "[b", "BYLEX", "REV"),
    ("ZRANGE", "lx", "-", "+", "BYLEX", "LIMIT", "2", "2"), ("ZRANGE", "lx", "-", "+", "BYLEX", "WITHSCORES"),
    ("ZRANGE", "lx", "-", "+", "BYLEX", "BYSCORE"), ("ZRANGEBYLEX", "lx", "b", "[c"),
    ("ZRANGEBYLEX", "lx", "[a", "c"), ("ZRANGEBYLEX", "lx", "-", "+", "WITHSCORES"),
    ("ZLEXCOUNT", "lx", "-", "+"), ("ZLEXCOUNT", "lx", "[b", "[d"), ("ZLEXCOUNT", "lx", "(e", "+"),
    ("ZLEXCOUNT", "lx", "x", "+"), ("ZLEXCOUNT", "nokey", "-", "+"),
    ("ZREMRANGEBYLEX", "lx", "[b", "(d"), ("ZRANGE", "lx", "0", "-1"), ("ZREMRANGEBYLEX", "lx", "x", "y"),
    ("ZREMRANGEBYLEX", "lx", "-", "+"), ("EXISTS", "lx"), ("ZREMRANGEBYLEX", "nokey", "-", "+"),
    ("SET", "str", "x"), ("ZRANGEBYLEX", "str", "-", "+"), ("ZLEXCOUNT", "str", "-", "+"),
    ("ZADD", "bl", *sum((["0", f"m{i:04d}"] for i in range(300)), [])),
    ("ZRANGEBYLEX", "bl", "[m0100", "(m0110"), ("ZLEXCOUNT", "bl", "(m0007", "[m0250"),
    ("ZREVRANGEBYLEX", "bl", "+", "[m0290"), ("ZREMRANGEBYLEX", "bl", "[m0000", "[m0149"),
    ("ZCARD", "bl"), ("ZRANGEBYLEX", "bl", "-", "(m0155"),
]

COMB = [
    ("ZADD", "za", "1", "a", "2", "b", "3", "c"), ("ZADD", "zb", "10", "b", "20", "c", "30", "d"),
    ("ZADD", "zc", "0.1", "c", "0.2", "d", "0.3", "e", "0.4", "a"), ("SADD", "sx", "a", "x"),
    ("ZUNION", "2", "za", "zb"), ("ZUNION", "2", "za", "zb", "WITHSCORES"),
    ("ZUNION", "3", "za", "zb", "zc", "WEIGHTS", "1", "2", "3", "WITHSCORES"),
    ("ZUNION", "2", "za", "zb", "AGGREGATE", "MIN", "WITHSCORES"),
    ("ZUNION", "2", "za", "zb", "AGGREGATE", "max", "WITHSCORES"),
    ("ZUNION", "2", "za", "sx", "WITHSCORES"), ("ZUNION", "2", "za", "nokey", "WITHSCORES"),
    ("ZINTER", "2", "za", "zb", "WITHSCORES"), ("ZINTER", "3", "za", "zb", "zc", "WITHSCORES"),
    ("ZINTER", "2", "za", "zc", "WEIGHTS", "2", "0.5", "AGGREGATE", "MAX", "WITHSCORES"),
    ("ZINTER", "2", "za", "sx", "WITHSCORES"), ("ZINTER", "2", "za", "nokey"),
    ("ZDIFF", "2", "za", "zb", "WITHSCORES"), ("ZDIFF", "3", "zc", "za", "zb"),
    ("ZDIFF", "1", "nokey"), ("ZDIFF", "2", "za", "zb", "WEIGHTS", "1", "2"),
    ("ZDIFF", "2", "za", "zb", "AGGREGATE", "SUM"),
    ("ZUNIONSTORE", "d", "2", "za", "zb"), ("ZRANGE", "d", "0", "-1", "WITHSCORES"),
    ("ZINTERSTORE", "d", "2", "za", "zb", "WEIGHTS", "3", "1"), ("ZRANGE", "d", "0", "-1", "WITHSCORES"),
    ("ZDIFFSTORE", "d", "2", "zc", "za"), ("ZRANGE", "d", "0", "-1", "WITHSCORES"),
    ("ZINTERSTORE", "d", "2", "za", "nokey"), ("EXISTS", "d"),
    ("ZUNIONSTORE", "za", "2", "za", "zb", "AGGREGATE", "MAX"), ("ZRANGE", "za", "0", "-1", "WITHSCORES"),
    ("ZUNIONSTORE", "d", "1", "sx"), ("ZRANGE", "d", "0", "-1", "WITHSCORES"), ("TYPE", "d"),
    ("ZADD", "inf1", "+inf", "m"), ("ZADD", "inf2", "-inf", "m"),
    ("ZUNION", "2", "inf1", "inf2", "WITHSCORES"), ("ZUNION", "2", "inf1", "inf2", "WEIGHTS", "0", "1", "WITHSCORES"),
    ("ZINTERCARD", "2", "za", "zb"), ("ZINTERCARD", "2", "za", "zb", "LIMIT", "1"),
    ("ZINTERCARD", "2", "za", "sx"), ("ZINTERCARD", "1", "nokey"), ("ZINTERCARD", "0", "za"),
    ("ZINTERCARD", "3", "za", "zb"), ("ZINTERCARD", "2", "za", "zb", "LIMIT", "-1"),
    # errors
    ("ZUNION", "0", "za"), ("ZUNION", "x", "za"), ("ZUNION", "3", "za", "zb"),
    ("ZUNION", "2", "za", "zb", "WEIGHTS", "1"), ("ZUNION", "2", "za", "zb", "WEIGHTS", "1", "x"),
    ("ZUNION", "2", "za", "zb", "AGGREGATE", "AVG"), ("ZUNION", "2", "za", "zb", "FOO"),
    ("ZUNIONSTORE", "d", "2", "za", "zb", "WITHSCORES"), ("ZUNIONSTORE", "d", "0", "za"),
    ("SET", "str", "x"), ("ZUNION", "2", "za", "str"), ("ZINTER", "2", "str", "za"),
    ("ZUNIONSTORE", "d", "2", "za", "str"), ("ZINTERCARD", "2", "za", "str"),
    ("ZUNION", "2", "str", "za", "FOO"),
]

STORE_AND_MPOP = [
    ("ZADD", "src", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e", "5", "f"),
    ("ZRANGESTORE", "dst", "src", "0", "-1"), ("ZRANGE", "dst", "0", "-1", "WITHSCORES"),
    ("ZRANGESTORE", "dst", "src", "1", "2"), ("ZRANGE", "dst", "0", "-1", "WITHSCORES"),
    ("ZRANGESTORE", "dst", "src", "0", "1", "REV"), ("ZRANGE", "dst", "0", "-1", "WITHSCORES"),
    ("ZRANGESTORE", "dst", "src", "(2", "5", "BYSCORE"), ("ZRANGE", "dst", "0", "-1", "WITHSCORES"),
    ("ZRANGESTORE", "dst", "src", "5", "2", "BYSCORE", "REV", "LIMIT", "1", "2"),
    ("ZRANGE", "dst", "0", "-1", "WITHSCORES"),
    ("ZRANGESTORE", "dst", "src", "-inf", "+inf", "BYSCORE", "LIMIT", "2", "-1"),
    ("ZRANGE", "dst", "0", "-1", "WITHSCORES"),
    ("ZRANGESTORE", "dst", "src", "10", "20"), ("EXISTS", "dst"),
    ("ZRANGESTORE", "dst", "src", "0", "1"), ("ZRANGESTORE", "dst", "nokey", "0", "-1"),
    ("EXISTS", "dst"), ("ZRANGESTORE", "src", "src", "1", "3"),
    ("ZRANGE", "src", "0", "-1", "WITHSCORES"),
    ("ZADD", "lex", "0", "a", "0", "b", "0", "c", "0", "d"),
    ("ZRANGESTORE", "dst", "lex", "[b", "+", "BYLEX"), ("ZRANGE", "dst", "0", "-1"),
    ("ZRANGESTORE", "dst", "lex", "(c", "-", "BYLEX", "REV", "LIMIT", "0", "1"),
    ("ZRANGE", "dst", "0", "-1"),
    ("ZRANGESTORE", "dst", "lex", "0", "-1", "WITHSCORES"), ("ZRANGESTORE", "dst", "lex", "x", "1"),
    ("ZRANGESTORE", "dst", "lex", "0", "1", "BYSCORE", "BYLEX"),
    ("ZRANGESTORE", "dst", "lex", "0", "1", "LIMIT", "0", "1"),
    ("ZRANGESTORE", "dst", "lex", "x", "1", "BYSCORE"), ("ZRANGESTORE", "dst", "lex", "a", "b", "BYLEX"),
    ("ZRANGESTORE", "dst", "lex", "0"), ("SET", "str", "v"), ("ZRANGESTORE", "dst", "str", "0", "-1"),
    ("SADD", "set", "m"), ("ZRANGESTORE", "dst", "set", "0", "-1"),
    ("ZRANGESTORE", "str", "lex", "0", "0"), ("TYPE", "str"),
    # ZMPOP
    ("ZADD", "p1", "1", "a", "2", "b", "3", "c"), ("ZMPOP", "1", "p1", "MIN"),
    ("ZMPOP", "1", "p1", "MAX"), ("ZMPOP", "2", "nokey", "p1", "min", "COUNT", "10"),
    ("EXISTS", "p1"), ("ZMPOP", "2", "nokey", "p1", "MIN"),
    ("ZADD", "p2", "1.5", "x", "-inf", "y", "1e100", "z"), ("ZMPOP", "1", "p2", "MAX", "COUNT", "2"),
    ("ZMPOP", "0", "p2", "MIN"), ("ZMPOP", "x", "p2", "MIN"), ("ZMPOP", "3", "p2", "MIN"),
    ("ZMPOP", "1", "p2", "UP"), ("ZMPOP", "1", "p2"), ("ZMPOP", "1", "p2", "MIN", "COUNT"),
    ("ZMPOP", "1", "p2", "MIN", "COUNT", "0"), ("ZMPOP", "1", "p2", "MIN", "COUNT", "x"),
    ("ZMPOP", "1", "p2", "MIN", "COUNT", "1", "COUNT", "1"), ("ZMPOP", "1", "p2", "MIN", "FOO"),
    ("ZMPOP", "2", "str", "p2", "MIN"), ("ZMPOP", "2", "p2", "str", "MIN"),
    ("ZMPOP", "1", "set", "MIN"),
    ("COMMAND", "GETKEYS", "ZMPOP", "2", "k1", "k2", "MIN"),
    ("COMMAND", "GETKEYS", "ZRANGESTORE", "d", "s", "0", "1"),
]

WRONG = [
    ("SET", "str", "x"), ("ZADD", "zs", "1", "a"), ("ZADD", "str", "1", "a"), ("ZREM", "str", "a"),
    ("ZCARD", "str"), ("ZSCORE", "str", "a"), ("ZRANGE", "str", "0", "-1"), ("ZRANK", "str", "a"),
    ("ZCOUNT", "str", "0", "1"), ("ZPOPMIN", "str"), ("ZINCRBY", "str", "1", "a"),
    ("ZREMRANGEBYRANK", "str", "0", "1"), ("ZSCAN", "str", "0"), ("GET", "zs"), ("SADD", "zs", "x"),
    ("TYPE", "zs"), ("RENAME", "zs", "zs2"), ("ZRANGE", "zs2", "0", "-1", "WITHSCORES"),
    ("SET", "zs2", "s"), ("TYPE", "zs2"),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_sorted_set_commands_match_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, BASIC, proto)
    assert_same(anynode.resp_port, redis_server, WRONG, proto)
    assert_same(anynode.resp_port, redis_server, LEX, proto)
    assert_same(anynode.resp_port, redis_server, COMB, proto)
    assert_same(anynode.resp_port, redis_server, STORE_AND_MPOP, proto)


def test_big_sorted_sets_match_redis(anynode, redis_server):  # noqa: F811
    # past 128 members (or a member over 64 bytes) a skiplist holds them;
    # equal scores order by member bytes
    pairs = []
    for i in range(400):
        pairs += [str((i * 37) % 101), f"m{i:03d}"]
    script = [("ZADD", "big", *pairs), ("ZCARD", "big"), ("ZRANGE", "big", "0", "-1", "WITHSCORES"),
              ("ZRANGE", "big", "100", "130", "REV"), ("ZRANK", "big", "m123"),
              ("ZREVRANK", "big", "m123"), ("ZCOUNT", "big", "(10", "50"),
              ("ZRANGEBYSCORE", "big", "20", "(30", "WITHSCORES", "LIMIT", "3", "7"),
              ("ZREVRANGEBYSCORE", "big", "90", "80", "LIMIT", "0", "5"),
              ("ZINCRBY", "big", "1000", "m005"), ("ZREVRANGE", "big", "0", "2", "WITHSCORES"),
              ("ZREM", "big", *[f"m{i:03d}" for i in range(0, 400, 3)]), ("ZCARD", "big"),
              ("ZPOPMIN", "big", "5"), ("ZPOPMAX", "big", "3"), ("ZREMRANGEBYSCORE", "big", "40", "60"),
              ("ZREMRANGEBYRANK", "big", "10", "20"), ("ZRANGE", "big", "0", "-1", "WITHSCORES"),
              ("ZADD", "long", "1", "x" * 65), ("ZADD", "long", "2", "y"),
              ("ZRANGE", "long", "0", "-1", "WITHSCORES"),
              ("ZUNIONSTORE", "u", "2", "big", "long", "WEIGHTS", "2", "3"), ("ZCARD", "u"),
              # the sources' types before the options, as Redis checks them
              ("SET", "str", "x"), ("ZUNIONSTORE", "u2", "2", "big", "str", "WEIGHTS", "x", "1"),
              ("ZINTERSTORE", "u2", "2", "str", "big", "AGGREGATE", "nope"),
              ("ZDIFFSTORE", "u2", "2", "str", "big", "WEIGHTS", "1", "2"),
              ("ZUNIONSTORE", "u2", "2", "big", "nokey", "WEIGHTS", "x", "1"),
              ("ZUNIONSTORE", "u2", "1", "big", "BOGUS"), ("EXISTS", "u2"),
              ("ZRANGE", "u", "0", "-1", "WITHSCORES"), ("ZINTER", "2", "big", "u", "WITHSCORES"),
              ("ZDIFF", "2", "u", "big", "WITHSCORES"), ("ZINTERCARD", "2", "u", "big", "LIMIT", "50")]
    assert_same(anynode.resp_port, redis_server, script, 2)
    assert_same(anynode.resp_port, redis_server, [("ZRANGE", "big", "0", "20", "WITHSCORES")], 3)


def test_sorted_sets_survive_a_restart(make_node):
    node = make_node(persistence="durable", extra_args=["--snapshot-threshold", "10"]).start()
    with raw(node) as c:
        c.cmd("ZADD", "small", "1.5", "a", "-2", "b")
        c.cmd("ZADD", "big", *sum(([str(i / 4), f"m{i}"] for i in range(300)), []))
        before = (c.cmd("ZRANGE", "small", "0", "-1", "WITHSCORES"),
                  c.cmd("ZRANGE", "big", "0", "-1", "WITHSCORES"))
    node.restart()
    with raw(node) as c:
        assert (c.cmd("ZRANGE", "small", "0", "-1", "WITHSCORES"),
                c.cmd("ZRANGE", "big", "0", "-1", "WITHSCORES")) == before


def test_pops_take_the_same_members_on_every_node(make_node):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    follower = next(x for x in nodes if x is not leader)
    with RawResp(follower.resp_port) as c:
        c.cmd("ZADD", "q", *sum(([str(i), f"job{i}"] for i in range(200)), []))
        assert c.cmd("ZPOPMIN", "q", "3") == [b"job0", b"0", b"job1", b"1", b"job2", b"2"]
        want = c.cmd("ZRANGE", "q", "0", "-1", "WITHSCORES")
    for x in nodes:
        def same(x=x):
            with RawResp(x.resp_port) as r:
                r.cmd("READONLY")
                return r.cmd("ZRANGE", "q", "0", "-1", "WITHSCORES") == want
        wait_until(same, 10, 0.05, f"node {x.node_id} to hold the same members")
