"""Keyspace notifications (issue 13): notify-keyspace-events set with
CONFIG SET on the node, and the __keyspace@0__ / __keyevent@0__ messages
of a script of writes of every type compared, message for message, with
Debian's redis-server; expiry ("expired", from the leader's expiry cycle)
and, on a 3-node cluster, a subscriber on a follower notified of a write
made through the leader."""
import time

import pytest

from conftest import wait_until
from resp_helpers import RawResp, anynode  # noqa: F401
from test_cluster import leader_of, make_cluster
from test_resp_hashes import redis_server  # noqa: F401

SCRIPT = [
    ("SET", "k", "v"), ("SET", "k", "v2", "EX", "100"), ("SETNX", "k", "x"), ("SETNX", "k2", "x"),
    ("GETSET", "k2", "y"), ("MSET", "m1", "1", "m2", "2"), ("INCR", "n"), ("INCRBY", "n", "5"),
    ("DECR", "n"), ("INCRBYFLOAT", "n", "1.5"), ("APPEND", "k", "x"), ("SETRANGE", "k", "0", "Z"),
    ("EXPIRE", "k", "100"), ("PERSIST", "k"), ("PEXPIRE", "k2", "0"), ("GETEX", "m1", "EX", "50"),
    ("GETEX", "m1", "PERSIST"), ("GETDEL", "m2"), ("DEL", "k", "n", "missing"),
    ("SET", "r", "1"), ("RENAME", "r", "r2"), ("COPY", "r2", "r3"),
    ("LPUSH", "l", "a", "b"), ("RPUSH", "l", "c"), ("LSET", "l", "0", "B"),
    ("LINSERT", "l", "BEFORE", "a", "x"), ("LREM", "l", "1", "x"), ("LTRIM", "l", "0", "1"),
    ("LMOVE", "l", "l2", "LEFT", "RIGHT"), ("LPOP", "l"), ("RPOP", "l2"),
    ("HSET", "h", "f", "1", "g", "2"), ("HINCRBY", "h", "f", "2"), ("HINCRBYFLOAT", "h", "f", "0.5"),
    ("HDEL", "h", "f"), ("HDEL", "h", "g"),
    ("SADD", "s", "1", "2", "3"), ("SREM", "s", "1"), ("SMOVE", "s", "s2", "2"),
    ("SADD", "s3", "3", "4"), ("SINTERSTORE", "si", "s", "s3"), ("SUNIONSTORE", "su", "s", "s3"),
    ("SDIFFSTORE", "sd", "s", "s3"), ("SDIFFSTORE", "sd", "s", "s"), ("SPOP", "s"),
    ("ZADD", "z", "1", "a", "2", "b", "3", "c"), ("ZINCRBY", "z", "5", "a"), ("ZREM", "z", "b"),
    ("ZPOPMIN", "z"), ("ZADD", "z", "1", "x", "2", "y"), ("ZPOPMAX", "z"),
    ("ZREMRANGEBYRANK", "z", "0", "0"), ("ZADD", "z", "1", "p", "2", "q"),
    ("ZREMRANGEBYSCORE", "z", "1", "1"), ("ZADD", "zl", "0", "a", "0", "b"),
    ("ZREMRANGEBYLEX", "zl", "[a", "[a"), ("ZUNIONSTORE", "zu", "2", "z", "zl"),
    ("ZINTERSTORE", "zi", "2", "z", "zl"), ("ZDIFFSTORE", "zd", "1", "z"),
    ("ZRANGESTORE", "zr", "zu", "0", "-1"),
    ("SETBIT", "b", "7", "1"), ("BITOP", "OR", "b2", "b"), ("BITFIELD", "b", "SET", "u8", "0", "255"),
    ("PFADD", "hll", "a"), ("PFMERGE", "hll2", "hll"),
    ("RPUSH", "sl", "3", "1", "2"), ("SORT", "sl", "STORE", "sorted"),
    ("XADD", "x", "1-1", "f", "v"), ("XADD", "x", "2-1", "f", "v"), ("XDEL", "x", "1-1"),
    ("XTRIM", "x", "MAXLEN", "0"), ("XSETID", "x", "9-9"),
    ("XGROUP", "CREATE", "xg", "g", "$", "MKSTREAM"), ("XGROUP", "SETID", "xg", "g", "0"),
    ("XGROUP", "CREATECONSUMER", "xg", "g", "c"), ("XGROUP", "CREATECONSUMER", "xg", "g", "c"),
    ("XGROUP", "DELCONSUMER", "xg", "g", "nobody"), ("XGROUP", "DELCONSUMER", "xg", "g", "c"),
    ("XGROUP", "DESTROY", "xg", "g"), ("XGROUP", "DESTROY", "xg", "g"),
    # consumers that XREADGROUP, XCLAIM and XAUTOCLAIM make
    ("XADD", "xr", "1-1", "f", "v"), ("XGROUP", "CREATE", "xr", "g", "0"),
    ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "xr", ">"),
    ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "xr", "0"),
    ("XCLAIM", "xr", "g", "c2", "0", "1-1"), ("XCLAIM", "xr", "g", "c2", "0", "1-1"),
    ("XAUTOCLAIM", "xr", "g", "c3", "0", "0"), ("XAUTOCLAIM", "xr", "g", "c3", "0", "0"),
    ("XACK", "xr", "g", "1-1"),
]


def _events(port, config):
    out = []
    with RawResp(port) as sub, RawResp(port) as c:
        assert c.cmd("CONFIG", "SET", "notify-keyspace-events", config) == "OK"
        sub.cmd("PSUBSCRIBE", "__key*__:*")
        sub.cmd("SUBSCRIBE", "sentinel")
        for cmd in SCRIPT:
            c.cmd(*cmd)
        c.cmd("PUBLISH", "sentinel", "end")
        while True:
            m = sub.read()
            if m[0] == b"message":
                break
            out.append((m[2], m[3]))
        assert c.cmd("CONFIG", "SET", "notify-keyspace-events", "") == "OK"
        c.cmd("FLUSHALL")
    return out


@pytest.mark.parametrize("config", ["KEA", "Kgx", "El$", "AKEn"])
def test_keyspace_events_match_redis(anynode, redis_server, config):  # noqa: F811
    got = _events(anynode.resp_port, config)
    want = _events(redis_server, config)
    assert got == want


def test_config_of_notify_keyspace_events(anynode, redis_server):  # noqa: F811
    outs = []
    for port in (anynode.resp_port, redis_server):
        with RawResp(port) as c:
            o = []
            for v in ("KEA", "Kgx", "gxK", "", "AKEtn", "Q", "K$lshzxetdmn"):
                o.append(c.raw_full_reply("CONFIG", "SET", "notify-keyspace-events", v))
                o.append(c.raw_full_reply("CONFIG", "GET", "notify-keyspace-events"))
            outs.append(o)
    assert outs[0] == outs[1]


def test_expired_and_follower_notifications(make_node):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    f1 = next(x for x in nodes if x is not leader)
    with RawResp(f1.resp_port, timeout=20) as sub, RawResp(f1.resp_port) as cf, \
            RawResp(leader.resp_port) as w:
        assert cf.cmd("CONFIG", "SET", "notify-keyspace-events", "Exg$") == "OK"
        sub.cmd("PSUBSCRIBE", "__keyevent@0__:*")
        w.cmd("SET", "soon", "v", "PX", "200")
        assert sub.read() == [b"pmessage", b"__keyevent@0__:*", b"__keyevent@0__:set", b"soon"]
        assert sub.read() == [b"pmessage", b"__keyevent@0__:*", b"__keyevent@0__:expire",
                              b"soon"]
        t0 = time.monotonic()
        m = sub.read()
        assert m == [b"pmessage", b"__keyevent@0__:*", b"__keyevent@0__:expired", b"soon"], m
        assert time.monotonic() - t0 < 10
