"""Redis protocol: SORT and SORT_RO (issue 12), checked against Debian's
redis-server (the harness of test_resp_hashes.py) in RESP2 and RESP3:
numbers and ALPHA, ASC/DESC, LIMIT, BY patterns (string keys, hash
fields, a constant: the source's own order), GET patterns (#, strings,
hash fields, missing keys), STORE, and the errors. Sets are sorted, so
their order is Redis'; a set in its own order (BY a constant) is not."""
import pytest

from resp_helpers import RawResp, anynode, raw  # noqa: F401
from test_cluster import leader_of, make_cluster
from test_resp_hashes import assert_same, redis_server  # noqa: F401

SORT = [
    ("RPUSH", "l", "3", "1", "10", "2", "-1.5", "2"), ("SORT", "l"), ("SORT", "l", "DESC"),
    ("SORT", "l", "ALPHA"), ("SORT", "l", "ALPHA", "DESC"), ("SORT", "l", "LIMIT", "1", "3"),
    ("SORT", "l", "LIMIT", "-5", "2"), ("SORT", "l", "LIMIT", "4", "-1"), ("SORT", "l", "LIMIT", "10", "2"),
    ("SORT", "l", "LIMIT", "0", "0"), ("SORT_RO", "l", "DESC", "LIMIT", "0", "2"),
    ("SADD", "s", "5", "3", "9", "1"), ("SORT", "s"), ("SORT", "s", "DESC", "LIMIT", "1", "2"),
    ("ZADD", "z", "1", "c", "2", "a", "3", "b"), ("SORT", "z", "ALPHA"), ("SORT", "z"),
    ("SORT", "z", "BY", "nosort"), ("SORT", "z", "BY", "nosort", "DESC"),
    ("SORT", "z", "BY", "nosort", "LIMIT", "1", "1"), ("SORT", "l", "BY", "nosort"),
    ("SORT", "l", "BY", "nosort", "DESC", "LIMIT", "1", "2"),
    ("MSET", "w_a", "3", "w_b", "1", "w_c", "2", "o_a", "A", "o_b", "B"),
    ("SORT", "z", "BY", "w_*"), ("SORT", "z", "BY", "w_*", "DESC", "GET", "#", "GET", "o_*"),
    ("SORT", "z", "BY", "w_*", "ALPHA", "GET", "o_*"),
    ("HSET", "h_a", "f", "30", "n", "x"), ("HSET", "h_b", "f", "10"), ("HSET", "h_c", "f", "20", "n", "z"),
    ("SORT", "z", "BY", "h_*->f", "GET", "h_*->n", "GET", "#"), ("SORT", "z", "BY", "h_*->nofield"),
    ("SORT", "l", "BY", "h_*->", "GET", "#"),
    ("SORT", "z", "GET", "nostar"), ("SORT", "z", "ALPHA", "GET", "w_*", "GET", "h_*->f"),
    ("SORT", "z", "BY", "o_*", "ALPHA", "DESC"),
    ("RPUSH", "words", "pear", "apple", "Banana", "apple2", "10"), ("SORT", "words"),
    ("SORT", "words", "ALPHA"), ("SORT", "words", "ALPHA", "LIMIT", "1", "2", "DESC"),
    ("SORT", "nokey"), ("SORT", "nokey", "BY", "x_*", "GET", "#"),
    ("SORT", "l", "STORE", "dst"), ("LRANGE", "dst", "0", "-1"), ("TYPE", "dst"),
    ("SORT", "z", "BY", "w_*", "GET", "o_*", "STORE", "dst"), ("LRANGE", "dst", "0", "-1"),
    ("SORT", "nokey", "STORE", "dst"), ("EXISTS", "dst"),
    ("SORT", "s", "BY", "nosort", "STORE", "dst"), ("LRANGE", "dst", "0", "-1"),
    ("SORT", "l", "STORE", "l"), ("LRANGE", "l", "0", "-1"),
    # errors
    ("SORT", "words"), ("SORT", "l", "LIMIT", "x", "1"), ("SORT", "l", "LIMIT", "1"),
    ("SORT", "l", "FOO"), ("SORT", "l", "BY"), ("SORT", "l", "GET"), ("SORT_RO", "l", "STORE", "x"),
    ("SET", "str", "v"), ("SORT", "str"), ("SORT", "str", "STORE", "d2"), ("SORT_RO", "str"),
    ("RPUSH", "bad", "1", "2x", "3"), ("SORT", "bad"), ("SORT", "bad", "STORE", "d3"), ("EXISTS", "d3"),
    ("RPUSH", "sp", " 2", "1", ""), ("SORT", "sp"),
    # the STORE key is a key (COMMAND GETKEYS), as Redis' sortGetKeys and
    # georadiusGetKeys find it
    ("COMMAND", "GETKEYS", "SORT", "l"), ("COMMAND", "GETKEYS", "SORT", "l", "STORE", "d"),
    ("COMMAND", "GETKEYS", "SORT", "l", "LIMIT", "0", "1", "GET", "store", "BY", "x", "STORE", "d"),
    ("COMMAND", "GETKEYS", "SORT", "l", "STORE", "a", "STORE", "b"),
    ("COMMAND", "GETKEYS", "SORT", "l", "STORE"), ("COMMAND", "GETKEYS", "SORT_RO", "l", "GET", "#"),
    ("COMMAND", "GETKEYS", "GEORADIUS", "g", "0", "0", "1", "km", "STORE", "d"),
    ("COMMAND", "GETKEYS", "GEORADIUS", "g", "0", "0", "1", "km", "STORE", "a", "STOREDIST", "b"),
    ("COMMAND", "GETKEYS", "GEORADIUSBYMEMBER", "g", "m", "1", "km", "WITHDIST"),
    ("COMMAND", "GETKEYS", "GEORADIUSBYMEMBER", "g", "m", "1", "km", "STOREDIST", "d"),
    ("COMMAND", "GETKEYS", "GEORADIUS", "g", "0", "0", "1", "km", "STOREDIST", "a", "STORE", "b", "STOREDIST", "c"),
    ("COMMAND", "GETKEYS", "GEORADIUS", "g", "0", "0", "1", "store", "STORE", "x"),
    ("COMMAND", "GETKEYS", "GEORADIUS", "g", "0", "0", "1", "km", "COUNT", "5", "STORE"),
    # last: Redis leaves errno at ERANGE after this, and its next numeric
    # SORT may fail for that stale errno
    ("RPUSH", "tiny", "1e-400"), ("SORT", "tiny"),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_sort_matches_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, SORT, proto)


def test_sort_store_is_the_same_on_every_node(make_node):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    follower = next(x for x in nodes if x is not leader)
    with RawResp(follower.resp_port) as c:
        c.cmd("RPUSH", "jobs", "3", "1", "2")
        c.cmd("MSET", "pri_1", "30", "pri_2", "10", "pri_3", "20")
        assert c.cmd("SORT", "jobs", "BY", "pri_*", "STORE", "queue") == 3
    for x in nodes:
        with RawResp(x.resp_port) as c:
            assert c.cmd("LRANGE", "queue", "0", "-1") == [b"2", b"3", b"1"]
