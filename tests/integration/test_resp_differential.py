"""Redis protocol: a seeded differential run (issue 12's generator).

Random command sequences over the string, bitmap, hash, list, set, sorted
set, geo, HyperLogLog and key commands, on a small keyspace so that keys change
type and commands meet WRONGTYPE, sent pipelined to Debian's redis-server
and to cairn; every reply must be byte for byte Redis' own. Normalised is
only what Redis leaves unspecified: the order of a listing of a hash or set
(HGETALL HKEYS HVALS SMEMBERS SINTER SUNION SDIFF KEYS); commands whose
answer is random (SPOP SRANDMEMBER HRANDFIELD ZRANDMEMBER) or read the
clock (TTL) are not generated, nor PFCOUNT of one key (Redis caches its
answer in the sketch's bytes; cairn, by design, does not). RESTORE takes
payloads of every type in plain and compact layouts. At the end every key's
type and contents are compared too, and every key's DUMP: Redis' own bytes,
or (a hash table's order) a payload that each side RESTOREs to the other's
value.

CI runs 200,000 commands on a node without persistence, 50,000 on a
durable one (then again after a restart) and 20,000 through a follower of
a 3-node cluster whose third node is down until the end and then catches up
by installing a snapshot (then every node holds the same contents), half as
many on the sanitizer build (its
point there is memory errors, not more coverage); CAIRN_DIFF_COMMANDS and
CAIRN_DIFF_SEED make a longer soak or replay a seed."""
import os
import random

import pytest

from conftest import wait_until
from resp_helpers import RawResp, anynode  # noqa: F401
from test_cluster import leader_of, make_cluster
from test_resp_dump import sample_payloads
from test_resp_hashes import redis_server  # noqa: F401

UNORDERED = {"HGETALL", "HKEYS", "HVALS", "SMEMBERS", "SINTER", "SUNION", "SDIFF", "KEYS"}
KEYS = [f"k{i}" for i in range(24)]
PAYLOADS = sample_payloads()
GEO_KEYS = ["g0", "g1", "g2"]  # only geo commands touch them: every score is a position


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)

    def key(self):
        return self.r.choice(KEYS)

    def member(self):
        r = self.r.random()
        if r < 0.3:
            return str(self.r.randint(-5, 40))  # intset members and integers
        if r < 0.97:
            return f"m{self.r.randint(0, 14)}"
        return "x" * self.r.randint(60, 80)  # past the 64-byte compact limit

    def value(self):
        r = self.r.random()
        if r < 0.3:
            return str(self.r.randint(-100, 100))
        if r < 0.95:
            return self.r.choice(["a", "bb", "hello", "v1", "v2", ""]) + str(self.r.randint(0, 9))
        return "y" * self.r.randint(60, 90)

    def score(self):
        return self.r.choice(["1", "2", "2.5", "-1", "0", "+inf", "-inf", "1e3",
                              str(self.r.randint(-20, 20))])

    def bound(self):
        return self.r.choice(["-inf", "+inf", "(1", "2", "(2.5", "0", "-1", "10"])

    def index(self):
        return str(self.r.randint(-6, 6))

    def command(self):
        r, k, m, v = self.r, self.key, self.member, self.value
        c = r.randrange(100)
        if c < 14:  # strings and bitmaps
            return r.choice([
                lambda: ("SET", k(), v()), lambda: ("GET", k()), lambda: ("APPEND", k(), v()),
                lambda: ("INCR", k()), lambda: ("INCRBY", k(), str(r.randint(-5, 5))),
                lambda: ("STRLEN", k()), lambda: ("GETRANGE", k(), self.index(), self.index()),
                lambda: ("SETRANGE", k(), str(r.randint(0, 12)), v()), lambda: ("MGET", k(), k(), k()),
                lambda: ("SETNX", k(), v()), lambda: ("GETDEL", k()), lambda: ("GETSET", k(), v()),
                lambda: ("SETBIT", k(), str(r.randint(0, 100)), str(r.randint(0, 1))),
                lambda: ("GETBIT", k(), str(r.randint(0, 100))), lambda: ("BITCOUNT", k()),
                lambda: ("BITCOUNT", k(), self.index(), self.index(), r.choice(["BYTE", "BIT"])),
                lambda: ("BITPOS", k(), str(r.randint(0, 1))),
                lambda: ("BITFIELD", k(), "GET", r.choice(["u8", "i5", "u3"]), str(r.randint(0, 40))),
                lambda: ("BITFIELD", k(), "INCRBY", "i8", str(r.randint(0, 40)), str(r.randint(-9, 9))),
                lambda: ("BITOP", r.choice(["AND", "OR", "XOR"]), k(), k(), k()),
            ])()
        if c < 30:  # hashes
            return r.choice([
                lambda: ("HSET", k(), m(), v(), *((m(), v()) if r.random() < 0.4 else ())),
                lambda: ("HGET", k(), m()), lambda: ("HDEL", k(), m(), m()), lambda: ("HLEN", k()),
                lambda: ("HEXISTS", k(), m()), lambda: ("HINCRBY", k(), m(), str(r.randint(-3, 3))),
                lambda: ("HMGET", k(), m(), m()), lambda: ("HGETALL", k()), lambda: ("HKEYS", k()),
                lambda: ("HVALS", k()), lambda: ("HSTRLEN", k(), m()), lambda: ("HSETNX", k(), m(), v()),
            ])()
        if c < 48:  # lists
            return r.choice([
                lambda: ("LPUSH", k(), v(), *((v(),) if r.random() < 0.5 else ())),
                lambda: ("RPUSH", k(), v(), v()), lambda: ("LPOP", k()),
                lambda: ("RPOP", k(), str(r.randint(0, 3))), lambda: ("LRANGE", k(), self.index(), self.index()),
                lambda: ("LLEN", k()), lambda: ("LINDEX", k(), self.index()),
                lambda: ("LSET", k(), self.index(), v()), lambda: ("LREM", k(), self.index(), v()),
                lambda: ("LTRIM", k(), self.index(), self.index()),
                lambda: ("LINSERT", k(), r.choice(["BEFORE", "AFTER"]), v(), v()),
                lambda: ("LPOS", k(), v()), lambda: ("LMOVE", k(), k(), r.choice(["LEFT", "RIGHT"]),
                                                       r.choice(["LEFT", "RIGHT"])),
                lambda: ("RPOPLPUSH", k(), k()),
                lambda: ("LMPOP", "2", k(), k(), r.choice(["LEFT", "RIGHT"]), "COUNT", str(r.randint(1, 3))),
            ])()
        if c < 64:  # sets
            return r.choice([
                lambda: ("SADD", k(), m(), *((m(), m()) if r.random() < 0.4 else ())),
                lambda: ("SREM", k(), m()), lambda: ("SCARD", k()), lambda: ("SISMEMBER", k(), m()),
                lambda: ("SMISMEMBER", k(), m(), m()), lambda: ("SMEMBERS", k()),
                lambda: ("SINTER", k(), k()), lambda: ("SUNION", k(), k()), lambda: ("SDIFF", k(), k()),
                lambda: ("SINTERCARD", "2", k(), k()), lambda: ("SMOVE", k(), k(), m()),
                lambda: (r.choice(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]), k(), k(), k()),
            ])()
        if c < 84:  # sorted sets
            return r.choice([
                lambda: ("ZADD", k(), *r.sample(["NX", "XX", "GT", "LT", "CH"], r.randint(0, 1)),
                         self.score(), m(), *((self.score(), m()) if r.random() < 0.4 else ())),
                lambda: ("ZREM", k(), m()), lambda: ("ZINCRBY", k(), self.score(), m()),
                lambda: ("ZSCORE", k(), m()), lambda: ("ZCARD", k()), lambda: ("ZRANK", k(), m()),
                lambda: ("ZRANGE", k(), self.index(), self.index(), *(["WITHSCORES"] if r.random() < 0.5 else [])),
                lambda: ("ZRANGE", k(), self.bound(), self.bound(), "BYSCORE",
                         *(["REV"] if r.random() < 0.3 else []), "LIMIT", str(r.randint(0, 2)), str(r.randint(-1, 3))),
                lambda: ("ZCOUNT", k(), self.bound(), self.bound()),
                lambda: (r.choice(["ZPOPMIN", "ZPOPMAX"]), k(), str(r.randint(0, 2))),
                lambda: ("ZREMRANGEBYSCORE", k(), self.bound(), self.bound()),
                lambda: ("ZUNIONSTORE", k(), "2", k(), k(), "AGGREGATE", r.choice(["SUM", "MIN", "MAX"])),
                lambda: ("ZINTER", "2", k(), k(), "WITHSCORES"),
                lambda: ("ZRANGESTORE", k(), k(), self.index(), self.index()),
                lambda: ("ZMPOP", "2", k(), k(), r.choice(["MIN", "MAX"])),
                lambda: ("ZLEXCOUNT", k(), "-", "+"),
            ])()
        if c < 86:  # geo
            g = lambda: r.choice(GEO_KEYS)  # noqa: E731
            lon = lambda: f"{r.uniform(-1, 1) + 13:.5f}"  # noqa: E731
            lat = lambda: f"{r.uniform(-1, 1) + 38:.5f}"  # noqa: E731
            unit = lambda: r.choice(["m", "km", "mi"])  # noqa: E731
            return r.choice([
                lambda: ("GEOADD", g(), lon(), lat(), m(), *((lon(), lat(), m()) if r.random() < 0.5 else ())),
                lambda: ("GEOPOS", g(), m(), m()), lambda: ("GEODIST", g(), m(), m(), unit()),
                lambda: ("GEOHASH", g(), m()),
                lambda: ("GEOSEARCH", g(), "FROMLONLAT", lon(), lat(), "BYRADIUS", str(r.randint(1, 150)), "km",
                         "ASC", "COUNT", str(r.randint(1, 5)), "WITHDIST", "WITHCOORD"),
                lambda: ("GEOSEARCH", g(), "FROMMEMBER", m(), "BYBOX", str(r.randint(1, 300)),
                         str(r.randint(1, 300)), "km", "DESC", "WITHHASH"),
                lambda: ("GEOSEARCHSTORE", g(), g(), "FROMLONLAT", lon(), lat(), "BYRADIUS",
                         str(r.randint(1, 100)), "km", *(["STOREDIST"] if r.random() < 0.3 else [])),
                lambda: ("ZREM", g(), m()),
            ])()
        if c < 88:  # HyperLogLog
            return r.choice([
                # two keys: a union, which Redis does not cache in a sketch's
                # header (a one-key PFCOUNT does there, not here:
                # test_resp_hll.py)
                lambda: ("PFADD", k(), m(), m()), lambda: ("PFCOUNT", k(), k()),
                lambda: ("PFMERGE", k(), k()),
            ])()
        return r.choice([  # keys
            lambda: ("DEL", k(), k()), lambda: ("EXISTS", k()), lambda: ("TYPE", k()),
            lambda: ("RENAME", k(), k()), lambda: ("RENAMENX", k(), k()),
            lambda: ("COPY", k(), k(), *(["REPLACE"] if r.random() < 0.5 else [])),
            lambda: ("EXPIRE", k(), "100000"), lambda: ("PERSIST", k()), lambda: ("KEYS", "k1*"),
            lambda: ("SORT", k(), *r.choice([[], ["ALPHA"], ["DESC", "ALPHA"], ["LIMIT", "1", "3", "ALPHA"],
                                             ["ALPHA", "STORE", k()], ["BY", "nosort", "STORE", k()]])),
            lambda: ("RESTORE", k(), "0", r.choice(PAYLOADS), *(["REPLACE"] if r.random() < 0.5 else [])),
            lambda: ("RESTORE", k(), "1", r.choice(PAYLOADS), "ABSTTL", "REPLACE"),  # deletes
        ])()


def _run(port, cmds):
    """Pipelined, in batches: each reply as its exact bytes, or normalised."""
    out = []
    with RawResp(port, timeout=60) as c:
        for i in range(0, len(cmds), 500):
            batch = cmds[i:i + 500]
            c.send(b"".join(_encode(*cmd) for cmd in batch))
            for cmd in batch:
                if cmd[0] in UNORDERED:
                    v = c.read()
                    if cmd[0] == "HGETALL" and isinstance(v, list):
                        v = sorted(zip(v[::2], v[1::2]))
                    out.append(sorted(v) if isinstance(v, list) else v)
                else:
                    raw = []
                    c._raw_value(_deadline(), raw)
                    out.append(b"".join(raw))
    return out


def _deadline():
    import time
    return time.monotonic() + 60


def _encode(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode() if isinstance(a, str) else a
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


def _value(c, k):
    """A key's type and value, in a form independent of encodings."""
    t = str(c.cmd("TYPE", k))
    if t == "string":
        return (t, c.cmd("GET", k))
    if t == "hash":
        v = c.cmd("HGETALL", k)
        return (t, sorted(zip(v[::2], v[1::2])))
    if t == "list":
        return (t, c.cmd("LRANGE", k, "0", "-1"))
    if t == "set":
        return (t, sorted(c.cmd("SMEMBERS", k)))
    if t == "zset":
        return (t, c.cmd("ZRANGE", k, "0", "-1", "WITHSCORES"))
    return (t, None)


def _contents(port):
    with RawResp(port) as c:
        return {k: _value(c, k) for k in KEYS + GEO_KEYS}


def _dumps_agree(port, redis_port):
    """Every key's DUMP: Redis' own bytes, or (a hash table's order, a
    payload RESTOREd as a plain layout) a payload that each side RESTOREs
    to the other's value."""
    check = "__dump_check"
    with RawResp(port) as c, RawResp(redis_port) as r:
        for k in KEYS + GEO_KEYS:
            mine, theirs = c.cmd("DUMP", k), r.cmd("DUMP", k)
            if mine == theirs:
                continue
            assert r.cmd("RESTORE", check, "0", mine, "REPLACE") == "OK", k
            assert _value(r, check) == _value(r, k), k
            assert c.cmd("RESTORE", check, "0", theirs, "REPLACE") == "OK", k
            assert _value(c, check) == _value(c, k), k
        c.cmd("DEL", check)
        r.cmd("DEL", check)


def _compare(port, redis_port, total, seed):
    gen = Gen(seed)
    cmds = [gen.command() for _ in range(total)]
    step = 10000
    for i in range(0, total, step):
        part = cmds[i:i + step]
        mine, theirs = _run(port, part), _run(redis_port, part)
        for n, (cmd, a, b) in enumerate(zip(part, mine, theirs)):
            assert a == b, f"command {i + n} (seed {seed}): {cmd}: cairn {a!r}, redis {b!r}"
    want = _contents(redis_port)
    assert _contents(port) == want
    _dumps_agree(port, redis_port)
    return want


def _default_count(n):
    return str(n // 2 if os.environ.get("CAIRN_SANITIZED") else n)


def _seed():
    return int(os.environ.get("CAIRN_DIFF_SEED", "1207"))


@pytest.mark.timeout_s(600)
def test_random_commands_answer_as_redis(anynode, redis_server):  # noqa: F811
    durable = anynode.persistence == "durable"
    total = int(os.environ.get("CAIRN_DIFF_COMMANDS", _default_count(50000 if durable else 200000)))
    want = _compare(anynode.resp_port, redis_server, total, _seed())
    if durable:  # the same state again, from the disk
        assert anynode.stop(timeout=30) == 0
        anynode.start(timeout=60)
        assert _contents(anynode.resp_port) == want
        _dumps_agree(anynode.resp_port, redis_server)


@pytest.mark.timeout_s(600)
def test_random_commands_through_a_follower_answer_as_redis(make_node, redis_server):  # noqa: F811
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    follower, late = [x for x in nodes if x is not leader]
    assert late.stop(timeout=30) == 0  # back after the log is compacted
    total = int(os.environ.get("CAIRN_DIFF_COMMANDS", _default_count(20000)))
    want = _compare(follower.resp_port, redis_server, total, _seed() + 1)
    late.start(timeout=60)
    for x in nodes:  # every replica applied the same log, or its snapshot
        wait_until(lambda x=x: _contents(x.resp_port) == want, 30, 0.2,
                   f"node {x.node_id} to hold what redis-server holds")
    assert 'msg="snapshot loaded"' in late.all_stderr()  # installed from the leader
    _dumps_agree(late.resp_port, redis_server)
