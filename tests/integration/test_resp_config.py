"""Redis protocol: CONFIG SET of the encodings' limits (issue 12).

The limits at which hashes, sets and sorted sets leave their compact
encodings are replicated state: CONFIG SET is one log entry, so every node
converts a collection at the same element, and snapshots keep the limits.

- CONFIG SET and GET, their errors (unknown, immutable, duplicate, bad
  values, arity) and the conversions they cause, reply for reply as Debian's
  redis-server 7.0 gives them, in both persistence modes;
- sets, whose compact encodings are Redis 7.2's (a listpack between the
  intset and the hash table), against their documented limits;
- a CONFIG SET sent to a follower reaches every node, and a node restarted
  after the leader compacted its log into a snapshot still has it."""
import pytest

from conftest import wait_until
from resp_helpers import anynode, raw  # noqa: F401
from test_resp_hashes import assert_same, redis_server  # noqa: F401

SCRIPT = [
    ("CONFIG", "SET", "hash-max-listpack-entries", "2"),
    ("HSET", "h", "a", "1", "b", "2"), ("OBJECT", "ENCODING", "h"),
    ("HSET", "h", "c", "3"), ("OBJECT", "ENCODING", "h"),
    ("CONFIG", "SET", "hash-max-listpack-entries", "512", "hash-max-listpack-value", "5"),
    ("HSET", "h2", "a", "12345"), ("OBJECT", "ENCODING", "h2"),
    ("HSET", "h2", "b", "123456"), ("OBJECT", "ENCODING", "h2"),
    ("CONFIG", "SET", "hash-max-ziplist-value", "1kb"), ("CONFIG", "GET", "hash-max-listpack-value"),
    ("HSET", "h3", "a", "x" * 1000), ("OBJECT", "ENCODING", "h3"),
    ("CONFIG", "SET", "zset-max-listpack-entries", "1"),
    ("ZADD", "z", "1", "a"), ("OBJECT", "ENCODING", "z"), ("ZADD", "z", "2", "b"), ("OBJECT", "ENCODING", "z"),
    ("CONFIG", "SET", "zset-max-ziplist-entries", "0"), ("ZADD", "z0", "1", "a"), ("OBJECT", "ENCODING", "z0"),
    ("CONFIG", "SET", "zset-max-listpack-entries", "128", "zset-max-listpack-value", "3"),
    ("ZADD", "z2", "1", "abc"), ("OBJECT", "ENCODING", "z2"), ("ZADD", "z2", "1", "abcd"),
    ("OBJECT", "ENCODING", "z2"),
    ("CONFIG", "SET", "set-max-intset-entries", "99999999999"), ("CONFIG", "GET", "set-max-intset-entries"),
    ("CONFIG", "SET", "ZSET-MAX-LISTPACK-VALUE", "64"), ("CONFIG", "GET", "zset-max-listpack-value"),
    ("CONFIG", "SET", "zset-max-listpack-value", ""), ("CONFIG", "GET", "zset-max-listpack-value"),
    # errors, and a refused CONFIG SET sets nothing
    ("CONFIG", "SET", "nosuch", "1"), ("CONFIG", "SET", "NoSuch", "1", "hash-max-listpack-entries", "x"),
    ("CONFIG", "SET", "databases", "3"), ("CONFIG", "SET", "DATABASES", "3"),
    ("CONFIG", "SET", "hash-max-listpack-entries", "x"), ("CONFIG", "SET", "HASH-MAX-ZIPLIST-ENTRIES", "x"),
    ("CONFIG", "SET", "hash-max-listpack-entries", "-1"), ("CONFIG", "SET", "hash-max-listpack-entries", "1.5"),
    ("CONFIG", "SET", "hash-max-listpack-value", "-1"), ("CONFIG", "SET", "hash-max-listpack-value", "1.5k"),
    ("CONFIG", "SET", "hash-max-listpack-entries", "5", "HASH-max-listpack-entries", "6"),
    ("CONFIG", "SET", "hash-max-listpack-entries", "7", "zset-max-listpack-entries", "x"),
    ("CONFIG", "GET", "hash-max-listpack-entries"), ("CONFIG", "GET", "zset-max-listpack-entries"),
    ("CONFIG", "SET", "hash-max-listpack-entries", "7", "zset-max-listpack-entries"),
    ("CONFIG", "SET", "hash-max-listpack-entries"),
    # an alias and its name in one call: the last wins
    ("CONFIG", "SET", "hash-max-ziplist-entries", "7", "hash-max-listpack-entries", "8"),
    ("CONFIG", "GET", "hash-max-listpack-entries"), ("CONFIG", "GET", "hash-max-ziplist-entries"),
    ("CONFIG", "GET", "hash-max-*"), ("CONFIG", "GET", "zset-max-*"),
    # list-max-listpack-size: any int (a count, or -1..-5 for 4..64 KiB nodes)
    ("CONFIG", "GET", "list-max-listpack-size"), ("CONFIG", "GET", "list-max-ziplist-size"),
    ("CONFIG", "SET", "list-max-listpack-size", "5"), ("CONFIG", "GET", "list-max-ziplist-size"),
    ("CONFIG", "SET", "list-max-ziplist-size", "-7"), ("CONFIG", "GET", "list-max-listpack-size"),
    ("CONFIG", "SET", "list-max-listpack-size", "2147483647"), ("CONFIG", "GET", "list-max-listpack-size"),
    ("CONFIG", "SET", "list-max-listpack-size", "-2147483648"), ("CONFIG", "GET", "list-max-listpack-size"),
    ("CONFIG", "SET", "list-max-listpack-size", "2147483648"),
    ("CONFIG", "SET", "list-max-listpack-size", "-2147483649"),
    ("CONFIG", "SET", "list-max-listpack-size", "abc"), ("CONFIG", "SET", "list-max-listpack-size", "1k"),
    ("CONFIG", "SET", "list-max-listpack-size", "1.5"), ("CONFIG", "SET", "list-max-listpack-size", ""),
    ("CONFIG", "GET", "list-max-listpack-size"),
    ("CONFIG", "SET", "list-max-listpack-size", "3"), ("RPUSH", "l", "a", "b", "c", "d", "e"),
    ("LRANGE", "l", "0", "-1"), ("OBJECT", "ENCODING", "l"), ("LINSERT", "l", "BEFORE", "c", "x"),
    ("LSET", "l", "4", "y"), ("LRANGE", "l", "0", "-1"),
    ("CONFIG", "GET", "list-*"),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_config_set_matches_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, SCRIPT, proto, unordered={"CONFIG"})


def test_set_limits(anynode):  # noqa: F811
    """Sets: intset up to set-max-intset-entries, then a listpack up to
    set-max-listpack-entries members of set-max-listpack-value bytes (Redis
    7.2's encodings), then a hash table."""
    with raw(anynode) as c:
        assert c.cmd("CONFIG", "SET", "set-max-intset-entries", "2", "set-max-listpack-entries", "3",
                     "set-max-listpack-value", "4") == "OK"
        assert c.cmd("CONFIG", "GET", "set-max-*") == [
            b"set-max-intset-entries", b"2", b"set-max-listpack-entries", b"3",
            b"set-max-listpack-value", b"4"]
        c.cmd("SADD", "s", "1", "2")
        assert c.cmd("OBJECT", "ENCODING", "s") == b"intset"
        c.cmd("SADD", "s", "3")
        assert c.cmd("OBJECT", "ENCODING", "s") == b"listpack"
        c.cmd("SADD", "s", "4")
        assert c.cmd("OBJECT", "ENCODING", "s") == b"hashtable"
        c.cmd("SADD", "t", "abcd")
        assert c.cmd("OBJECT", "ENCODING", "t") == b"listpack"
        c.cmd("SADD", "t", "abcde")
        assert c.cmd("OBJECT", "ENCODING", "t") == b"hashtable"
        assert sorted(c.cmd("SMEMBERS", "s")) == [b"1", b"2", b"3", b"4"]


def test_config_set_reaches_every_node_and_outlives_the_log(make_node):
    from test_cluster import compact_the_log, leader_of, make_cluster
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    follower, other = [x for x in nodes if x is not leader]
    assert other.stop(timeout=30) == 0
    with raw(follower) as f:
        assert f.cmd("CONFIG", "SET", "hash-max-listpack-entries", "3") == "OK"
        # the follower answers after its own apply: it reads its value back
        assert f.cmd("CONFIG", "GET", "hash-max-listpack-entries") == [b"hash-max-listpack-entries", b"3"]
    with raw(leader) as c:
        assert c.cmd("CONFIG", "GET", "hash-max-listpack-entries") == [b"hash-max-listpack-entries", b"3"]
        c.cmd("HSET", "h", "a", "1", "b", "2", "c", "3", "d", "4")
        assert c.cmd("OBJECT", "ENCODING", "h") == b"hashtable"
        compact_the_log(leader, lambda i: c.cmd("SET", f"k{i % 5}", str(i)))
    other.start(timeout=60)

    def caught_up():
        with raw(other) as r:
            r.cmd("READONLY")
            return r.cmd("GET", "k4") == b"299"

    wait_until(caught_up, 30, 0.2, "the restarted node to catch up")
    with raw(other) as r:
        assert r.cmd("CONFIG", "GET", "hash-max-listpack-entries") == [b"hash-max-listpack-entries", b"3"]
        r.cmd("READONLY")
        assert r.cmd("OBJECT", "ENCODING", "h") == b"hashtable"


def list_elements(seed, n):
    """n elements of lengths from 1 to 300 bytes and a few of 9,000 (past
    any node of -2), some of them integers (a listpack keeps those as
    integers)."""
    import random
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        r = rnd.random()
        if r < 0.02:
            out.append(b"L" * 9000)
        elif r < 0.3:
            out.append(str(rnd.randint(-10 ** 12, 10 ** 12)).encode())
        else:
            out.append(bytes([97 + i % 26]) * rnd.randint(1, 300))
    return out


@pytest.mark.parametrize("fill", ["-2", "5", "1", "0", "-1", "-3", "-5", "-9", "40000"])
def test_list_node_size_matches_redis_dump(anynode, redis_server, fill):  # noqa: F811
    """A list pushed at its tail under each list-max-listpack-size DUMPs to
    the bytes redis-server 7.0 writes for it (the payload lists its nodes:
    their number and contents follow the setting), and the setting reads
    back the same."""
    from resp_helpers import RawResp
    elems = list_elements(int(fill) & 0xffff, 400)
    with raw(anynode) as c, RawResp(redis_server) as r:
        for x in (c, r):
            assert x.cmd("CONFIG", "SET", "list-max-listpack-size", fill) == "OK"
            for i in range(0, len(elems), 50):
                x.cmd("RPUSH", "l", *elems[i:i + 50])
            x.cmd("RPUSH", "small", "a", "1", "b")
        assert c.cmd("CONFIG", "GET", "list-max-listpack-size") == \
            r.cmd("CONFIG", "GET", "list-max-listpack-size") == [b"list-max-listpack-size", fill.encode()]
        for key in ("l", "small"):
            assert c.cmd("LRANGE", key, "0", "-1") == r.cmd("LRANGE", key, "0", "-1")
            assert c.cmd("DUMP", key) == r.cmd("DUMP", key), (key, fill)
