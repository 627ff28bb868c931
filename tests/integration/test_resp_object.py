"""Redis protocol: OBJECT (issue 12) and the random reads HRANDFIELD and
ZRANDMEMBER (SRANDMEMBER: test_resp_sets.py).

What is deterministic is compared reply for reply with Debian's
redis-server, in RESP2 and RESP3: OBJECT ENCODING of every encoding both
servers share (strings written by SET: int, embstr, raw; strings changed
in place, raw; INCRBYFLOAT's, embstr; listpack and
hashtable hashes; quicklist lists; intset and hashtable sets; listpack and
skiplist sorted sets), REFCOUNT, the errors, and random reads of one
element or of more than there are. The random choices themselves are
checked for what Redis promises."""
import time

import pytest

from resp_helpers import anynode, raw  # noqa: F401
from test_resp_hashes import assert_same, redis_server  # noqa: F401

BIG_SET = [str(i * 3) for i in range(600)]
BIG_HASH = sum(([f"f{i}", "v"] for i in range(200)), [])

SCRIPT = [
    ("SET", "int", "12345"), ("SET", "neg", "-7"), ("SET", "emb", "hello"),
    ("SET", "lead0", "012"), ("SET", "long", "x" * 45), ("SET", "num21", "1" * 21),
    ("SET", "shared", "42"), ("SET", "unshared", "10000"),
    ("HSET", "h", "f", "v"), ("HSET", "bigh", *BIG_HASH), ("HSET", "longh", "f", "v" * 65),
    ("RPUSH", "l", "a"), ("SADD", "ints", "1", "2"), ("SADD", "bigset", *BIG_SET),
    ("ZADD", "z", "1", "a"), ("ZADD", "bigz", *sum(([str(i), f"m{i}"] for i in range(200)), [])),
    ("OBJECT", "ENCODING", "int"), ("OBJECT", "ENCODING", "neg"), ("OBJECT", "ENCODING", "emb"),
    ("OBJECT", "ENCODING", "lead0"), ("OBJECT", "ENCODING", "long"),
    ("OBJECT", "ENCODING", "num21"), ("OBJECT", "ENCODING", "h"), ("OBJECT", "ENCODING", "bigh"),
    ("OBJECT", "ENCODING", "longh"), ("OBJECT", "ENCODING", "l"), ("OBJECT", "ENCODING", "ints"),
    ("OBJECT", "ENCODING", "bigset"), ("OBJECT", "ENCODING", "z"), ("OBJECT", "ENCODING", "bigz"),
    ("OBJECT", "ENCODING", "nokey"),
    ("OBJECT", "REFCOUNT", "shared"), ("OBJECT", "REFCOUNT", "unshared"),
    ("OBJECT", "REFCOUNT", "emb"), ("OBJECT", "REFCOUNT", "h"), ("OBJECT", "REFCOUNT", "nokey"),
    ("OBJECT", "IDLETIME", "nokey"), ("OBJECT", "FREQ", "emb"), ("OBJECT", "FOO", "emb"),
    ("OBJECT", "ENCODING"), ("OBJECT", "ENCODING", "a", "b"), ("OBJECT",), ("OBJECT", "HELP"),
    ("OBJECT", "HELP", "x"),
    ("HRANDFIELD", "h"), ("HRANDFIELD", "h", "5"), ("HRANDFIELD", "h", "1", "WITHVALUES"),
    ("HRANDFIELD", "h", "-3"), ("HRANDFIELD", "h", "-2", "WITHVALUES"), ("HRANDFIELD", "h", "0"),
    ("HRANDFIELD", "nokey"), ("HRANDFIELD", "nokey", "3"), ("HRANDFIELD", "h", "x"),
    ("HRANDFIELD", "h", "1", "FOO"), ("HRANDFIELD", "h", "1", "WITHVALUES", "x"),
    ("HRANDFIELD", "emb"),
    ("ZRANDMEMBER", "z"), ("ZRANDMEMBER", "z", "4", "WITHSCORES"), ("ZRANDMEMBER", "z", "-2"),
    ("ZRANDMEMBER", "z", "-2", "WITHSCORES"), ("ZRANDMEMBER", "z", "0"),
    ("ZRANDMEMBER", "nokey"), ("ZRANDMEMBER", "nokey", "2"), ("ZRANDMEMBER", "z", "x"),
    ("ZRANDMEMBER", "z", "1", "FOO"), ("ZRANDMEMBER", "emb"),
    # strings changed in place are raw whatever they hold; INCRBYFLOAT's
    # result is an embstr; a whole new value is encoded by its content again
    ("SET", "a1", "12"), ("APPEND", "a1", "3"), ("OBJECT", "ENCODING", "a1"),
    ("APPEND", "a2", "5"), ("OBJECT", "ENCODING", "a2"), ("APPEND", "a2", ""),
    ("OBJECT", "ENCODING", "a2"), ("SET", "a1", "7"), ("OBJECT", "ENCODING", "a1"),
    ("SET", "r1", "hello"), ("SETRANGE", "r1", "0", "J"), ("OBJECT", "ENCODING", "r1"),
    ("SETRANGE", "r2", "1", "x"), ("OBJECT", "ENCODING", "r2"), ("SET", "r3", "ab"),
    ("SETRANGE", "r3", "0", ""), ("OBJECT", "ENCODING", "r3"),
    ("SET", "b1", "1"), ("SETBIT", "b1", "0", "0"), ("OBJECT", "ENCODING", "b1"),
    ("SETBIT", "b2", "3", "1"), ("OBJECT", "ENCODING", "b2"),
    ("BITFIELD", "b3", "SET", "u8", "0", "65"), ("OBJECT", "ENCODING", "b3"),
    ("BITOP", "OR", "b4", "b2", "b3"), ("OBJECT", "ENCODING", "b4"),
    ("INCRBYFLOAT", "f1", "3"), ("OBJECT", "ENCODING", "f1"), ("INCRBYFLOAT", "f1", "0.5"),
    ("OBJECT", "ENCODING", "f1"), ("INCR", "f2"), ("OBJECT", "ENCODING", "f2"),
    ("SET", "f3", "5"), ("INCRBYFLOAT", "f3", "1"), ("OBJECT", "ENCODING", "f3"),
    ("INCR", "f3"), ("OBJECT", "ENCODING", "f3"),
    ("PFADD", "p1", "a"), ("OBJECT", "ENCODING", "p1"),
    ("COPY", "a1", "c1"), ("COPY", "r1", "c2"), ("COPY", "f1", "c3"),
    ("OBJECT", "ENCODING", "c1"), ("OBJECT", "ENCODING", "c2"), ("OBJECT", "ENCODING", "c3"),
    ("RENAME", "r1", "n1"), ("OBJECT", "ENCODING", "n1"), ("GETSET", "n1", "9"),
    ("OBJECT", "ENCODING", "n1"),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_object_and_single_random_reads_match_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, SCRIPT, proto)


def test_random_fields_and_members(anynode):  # noqa: F811
    with raw(anynode) as c:
        c.cmd("HSET", "h", *sum(([f"f{i}", f"v{i}"] for i in range(300)), []))
        c.cmd("ZADD", "z", *sum(([str(i), f"m{i}"] for i in range(300)), []))
        fields = {f"f{i}".encode(): f"v{i}".encode() for i in range(300)}
        got = c.cmd("HRANDFIELD", "h", "20", "WITHVALUES")
        pairs = dict(zip(got[::2], got[1::2]))
        assert len(pairs) == 20 and all(fields[f] == v for f, v in pairs.items())
        many = c.cmd("HRANDFIELD", "h", "-400")
        assert len(many) == 400 and set(many) <= set(fields) and len(set(many)) > 50
        assert set(c.cmd("HRANDFIELD", "h", "1000")) == set(fields)
        got = c.cmd("ZRANDMEMBER", "z", "15", "WITHSCORES")
        assert len(got) == 30
        for m, s in zip(got[::2], got[1::2]):
            assert m == b"m" + s, (m, s)
        assert len(set(c.cmd("ZRANDMEMBER", "z", "-50"))) > 10


def test_idletime_counts_seconds_since_the_last_access(make_node):
    node = make_node(persistence="none").start()
    with raw(node) as c:
        c.cmd("SET", "k", "v")
        c.cmd("GET", "k")
        time.sleep(2.3)
        assert c.cmd("OBJECT", "IDLETIME", "k") in (2, 3)
        assert c.cmd("OBJECT", "IDLETIME", "k") in (2, 3), "OBJECT itself must not touch the key"
        c.cmd("GET", "k")
        assert c.cmd("OBJECT", "IDLETIME", "k") == 0
