"""Redis protocol: the key commands with Redis 7.0 semantics, in both
persistence modes.

DEL UNLINK EXISTS TYPE EXPIRE PEXPIRE EXPIREAT PEXPIREAT TTL PTTL
EXPIRETIME PEXPIRETIME PERSIST KEYS SCAN RENAME RENAMENX RANDOMKEY DBSIZE
FLUSHDB FLUSHALL"""
import time

import pytest

from resp_helpers import anynode, client, raw  # noqa: F401
from test_resp_hashes import assert_same, redis_server  # noqa: F401

NOT_INT = "ERR value is not an integer or out of range"


def test_del_unlink_exists_type(anynode):
    with raw(anynode) as c:
        c.cmd("MSET", "a", "1", "b", "2", "c", "3")
        assert c.cmd("EXISTS", "a", "a", "nope", "b") == 3  # duplicates count
        assert c.cmd("TYPE", "a") == "string"
        assert c.raw_reply("TYPE", "a") == b"+string\r\n"
        assert c.raw_reply("TYPE", "nope") == b"+none\r\n"
        assert c.cmd("DEL", "a", "a", "nope") == 1  # a key is deleted once
        assert c.cmd("UNLINK", "b", "c") == 2
        assert c.cmd("EXISTS", "a", "b", "c") == 0
        assert c.cmd("DEL", "nope") == 0
    r = client(anynode)
    r.mset({f"d{i}": i for i in range(300)})
    assert r.delete(*[f"d{i}" for i in range(300)]) == 300


def test_expire_family(anynode):
    now_ms = int(time.time() * 1000)
    with raw(anynode) as c:
        c.cmd("SET", "k", "v")
        assert c.cmd("TTL", "k") == -1 and c.cmd("PTTL", "k") == -1
        assert c.cmd("EXPIRETIME", "k") == -1 and c.cmd("PEXPIRETIME", "k") == -1
        assert c.cmd("TTL", "nope") == -2 and c.cmd("PTTL", "nope") == -2
        assert c.cmd("EXPIRETIME", "nope") == -2 and c.cmd("PEXPIRETIME", "nope") == -2
        assert c.cmd("EXPIRE", "k", "100") == 1
        assert c.cmd("TTL", "k") == 100
        assert c.cmd("PEXPIRE", "k", "200000") == 1
        assert 199000 < c.cmd("PTTL", "k") <= 200000
        at = now_ms // 1000 + 1000
        assert c.cmd("EXPIREAT", "k", str(at)) == 1
        assert c.cmd("EXPIRETIME", "k") == at
        assert c.cmd("PEXPIREAT", "k", str(at * 1000 + 123)) == 1
        assert c.cmd("PEXPIRETIME", "k") == at * 1000 + 123
        assert c.cmd("EXPIRETIME", "k") == at
        assert c.cmd("PERSIST", "k") == 1
        assert c.cmd("PERSIST", "k") == 0
        assert c.cmd("PERSIST", "nope") == 0
        assert c.cmd("TTL", "k") == -1
        assert c.cmd("EXPIRE", "nope", "10") == 0
        assert c.cmd("EXPIRE", "nope", "-1") == 0
        # a time not in the future deletes the key
        for cmd, t in (("EXPIRE", "-1"), ("EXPIRE", "0"), ("PEXPIRE", "-5"), ("EXPIREAT", "1"),
                       ("PEXPIREAT", "0"), ("EXPIREAT", "-100")):
            c.cmd("SET", "gone", "v")
            assert c.cmd(cmd, "gone", t) == 1, (cmd, t)
            assert c.cmd("EXISTS", "gone") == 0, (cmd, t)
        # large but representable times are fine; overflowing ones are not
        c.cmd("SET", "k", "v")
        assert c.cmd("EXPIRE", "k", "9223372036854") == 1
        assert c.cmd("PEXPIREAT", "k", "9223372036854775807") == 1
        for cmd, t in (("EXPIRE", "9223372036854775807"), ("EXPIRE", "-9223372036854775808"),
                       ("PEXPIRE", "9223372036854775807"), ("EXPIREAT", "9223372036854775807")):
            assert c.cmd(cmd, "k", t) == f"ERR invalid expire time in '{cmd.lower()}' command"
        assert c.cmd("EXPIRE", "k", "abc") == NOT_INT
        assert c.cmd("EXPIRE", "k", "1.5") == NOT_INT
        assert c.cmd("EXISTS", "k") == 1


def test_expire_options(anynode):
    with raw(anynode) as c:
        c.cmd("SET", "k", "v")
        assert c.cmd("EXPIRE", "k", "100", "XX") == 0  # no TTL yet
        assert c.cmd("EXPIRE", "k", "100", "GT") == 0  # no TTL counts as infinite
        assert c.cmd("EXPIRE", "k", "100", "NX") == 1
        assert c.cmd("EXPIRE", "k", "200", "NX") == 0
        assert c.cmd("TTL", "k") == 100
        assert c.cmd("EXPIRE", "k", "50", "GT") == 0
        assert c.cmd("EXPIRE", "k", "150", "GT") == 1
        assert c.cmd("EXPIRE", "k", "200", "LT") == 0
        assert c.cmd("EXPIRE", "k", "50", "lt") == 1
        assert c.cmd("EXPIRE", "k", "60", "XX", "GT") == 1
        assert c.cmd("TTL", "k") == 60
        c.cmd("SET", "p", "v")
        assert c.cmd("EXPIRE", "p", "100", "LT") == 1  # anything is less than infinite
        # a past time with a failing condition does not delete
        assert c.cmd("PEXPIRE", "p", "-5", "GT") == 0
        assert c.cmd("EXISTS", "p") == 1
        assert c.cmd("PEXPIRE", "p", "-5", "LT") == 1
        assert c.cmd("EXISTS", "p") == 0
        nx_err = "ERR NX and XX, GT or LT options at the same time are not compatible"
        assert c.cmd("EXPIRE", "k", "100", "NX", "XX") == nx_err
        assert c.cmd("EXPIRE", "k", "100", "NX", "GT") == nx_err
        assert c.cmd("PEXPIRE", "k", "100", "LT", "NX") == nx_err
        assert c.cmd("EXPIRE", "k", "100", "GT", "LT") == \
            "ERR GT and LT options at the same time are not compatible"
        assert c.cmd("EXPIRE", "k", "100", "foo") == "ERR Unsupported option foo"
        # options are checked before the number
        assert c.cmd("EXPIRE", "k", "abc", "foo") == "ERR Unsupported option foo"
        assert c.cmd("EXPIRE", "k", "abc", "nx", "xx") == nx_err
        assert c.cmd("TTL", "k") == 60


def test_ttl_rounding_and_expiry(anynode):
    r = client(anynode)
    r.set("k", "v", px=1600)
    assert r.ttl("k") == 2  # rounded, as Redis does
    assert 1000 < r.pttl("k") <= 1600
    r.set("gone", "v", px=100)
    time.sleep(0.3)
    assert r.ttl("gone") == -2 and r.exists("gone") == 0 and r.get("gone") is None
    # active expiry reclaims it and counts it
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if int(r.info("stats")["expired_keys"]) >= 1:
            break
        time.sleep(0.05)
    assert int(r.info("stats")["expired_keys"]) >= 1
    assert r.dbsize() == 1


def test_keys_glob(anynode):
    r = client(anynode)
    keys = [b"a1", b"a2", b"b1", b"h[x", b"c\\d", b"hello", b"hallo", b"hxllo", b"\x00bin", b""]
    for k in keys:
        r.set(k, "v")
    r.set("expired", "v", px=1)
    time.sleep(0.05)

    def keys_of(p):
        got = r.keys(p)
        assert got == sorted(got)  # byte order
        return set(got)

    assert keys_of("*") == set(keys)
    assert keys_of("a*") == {b"a1", b"a2"}
    assert keys_of("*[12]") == {b"a1", b"a2", b"b1"}
    assert keys_of("[^a]*") == set(keys) - {b"a1", b"a2", b""}
    assert keys_of("h?llo") == {b"hello", b"hallo", b"hxllo"}
    assert keys_of("h[ae]llo") == {b"hello", b"hallo"}
    assert keys_of("h[^e]llo") == {b"hallo", b"hxllo"}
    assert keys_of("h[a-b]llo") == {b"hallo"}
    assert keys_of("h\\[*") == {b"h[x"}
    assert keys_of("c\\\\d") == {b"c\\d"}
    assert keys_of("hello") == {b"hello"}  # a literal pattern
    assert keys_of("nothing") == set()
    assert keys_of("?bin") == {b"\x00bin"}
    assert keys_of("") == {b""}
    assert keys_of("expired") == set() and b"expired" not in keys_of("*")


def test_scan(anynode):
    r = client(anynode)
    names = {f"key:{i}".encode() for i in range(1000)} | {f"other:{i}".encode() for i in range(200)}
    r.mset({k: "v" for k in names})
    seen, cursor, rounds = set(), 0, 0
    while True:
        cursor, batch = r.scan(cursor, count=50)
        seen.update(batch)
        rounds += 1
        if cursor == 0:
            break
        assert rounds < 10000
    assert seen == names
    assert rounds > 5  # it really was incremental

    matched = set()
    for k in r.scan_iter(match="other:*", count=100):
        matched.add(k)
    assert matched == {k for k in names if k.startswith(b"other:")}
    assert set(r.scan_iter(_type="string")) == names
    assert set(r.scan_iter(_type="hash")) == set()

    with raw(anynode) as c:
        cur, batch = c.cmd("SCAN", "0", "MATCH", "key:1*", "COUNT", "2000", "TYPE", "string")
        assert cur == b"0" and set(batch) == {k for k in names if k.startswith(b"key:1")}
        assert c.cmd("SCAN", "x") == "ERR invalid cursor"
        assert c.cmd("SCAN", "18446744073709551616") == "ERR invalid cursor"
        assert isinstance(c.cmd("SCAN", "18446744073709551615"), list)
        assert c.cmd("SCAN", "0", "COUNT", "0") == "ERR syntax error"
        assert c.cmd("SCAN", "0", "COUNT", "-1") == "ERR syntax error"
        assert c.cmd("SCAN", "0", "COUNT", "abc") == NOT_INT
        assert c.cmd("SCAN", "0", "MATCH") == "ERR syntax error"
        assert c.cmd("SCAN", "0", "foo", "bar") == "ERR syntax error"


def test_scan_survives_rehashing(anynode):
    """Keys present for the whole scan are returned even while the table
    grows under it."""
    r = client(anynode)
    stable = {f"s{i}".encode() for i in range(300)}
    r.mset({k: "v" for k in stable})
    seen, cursor, n = set(), 0, 0
    while True:
        cursor, batch = r.scan(cursor, count=20)
        seen.update(batch)
        # grow the keyspace between steps: forces resizes mid-scan
        r.mset({f"grow{n}-{j}": "v" for j in range(100)})
        n += 1
        if cursor == 0:
            break
        assert n < 100000
    assert stable <= seen


def test_rename(anynode):
    with raw(anynode) as c:
        c.cmd("SET", "src", "v", "EX", "100")
        assert c.cmd("RENAME", "src", "dst") == "OK"
        assert c.cmd("GET", "dst") == b"v" and c.cmd("EXISTS", "src") == 0
        assert c.cmd("TTL", "dst") == 100  # the TTL moves with the value
        assert c.cmd("RENAME", "nope", "x") == "ERR no such key"
        assert c.cmd("RENAMENX", "nope", "x") == "ERR no such key"
        assert c.cmd("RENAME", "dst", "dst") == "OK"
        assert c.cmd("RENAMENX", "dst", "dst") == 0
        c.cmd("SET", "other", "o")
        assert c.cmd("RENAMENX", "dst", "other") == 0
        assert c.cmd("GET", "other") == b"o"
        assert c.cmd("RENAMENX", "dst", "fresh") == 1
        assert c.cmd("RENAME", "fresh", "other") == "OK"  # overwrites
        assert c.cmd("GET", "other") == b"v" and c.cmd("EXISTS", "fresh") == 0


def test_randomkey_dbsize_flush(anynode):
    with raw(anynode) as c:
        assert c.raw_reply("RANDOMKEY") == b"$-1\r\n"
        assert c.cmd("DBSIZE") == 0
        c.cmd("MSET", "a", "1", "b", "2", "c", "3")
        seen = {c.cmd("RANDOMKEY") for _ in range(60)}
        assert seen <= {b"a", b"b", b"c"} and len(seen) >= 2
        assert c.cmd("DBSIZE") == 3
        assert c.cmd("FLUSHDB") == "OK"
        assert c.cmd("DBSIZE") == 0
        c.cmd("SET", "a", "1")
        assert c.cmd("FLUSHALL", "ASYNC") == "OK"
        assert c.cmd("DBSIZE") == 0
        assert c.cmd("FLUSHALL", "sync") == "OK"
        assert c.cmd("FLUSHDB", "async") == "OK"
        assert c.cmd("FLUSHALL", "foo") == "ERR syntax error"
        assert c.cmd("FLUSHDB", "async", "sync") == "ERR syntax error"
        c.cmd("SET", "only", "1", "PX", "1")
        time.sleep(0.05)
        assert c.raw_reply("RANDOMKEY") == b"$-1\r\n"  # only an expired key left


def test_key_commands_via_redis_py(anynode):
    r = client(anynode)
    r.set("k", "v")
    assert r.expire("k", 100) is True
    assert r.expire("k", 10, gt=True) is False
    assert r.pexpire("k", 5000, lt=True) is True
    assert 0 < r.pttl("k") <= 5000
    assert r.persist("k") is True
    assert r.type("k") == b"string"
    assert r.rename("k", "k2") is True
    assert r.renamenx("k2", "k3") is True
    assert r.exists("k3") == 1
    assert r.randomkey() == b"k3"
    assert r.flushdb() is True and r.dbsize() == 0


COPY = [
    ("SET", "s", "v"), ("EXPIRE", "s", "1000"), ("COPY", "s", "s2"), ("GET", "s2"),
    ("TTL", "s2"), ("COPY", "s", "s2"), ("SET", "s2", "old"), ("COPY", "s", "s2", "REPLACE"),
    ("GET", "s2"), ("COPY", "nokey", "x"), ("EXISTS", "x"), ("COPY", "s", "s"),
    ("COPY", "s", "s3", "DB", "0"), ("GET", "s3"), ("COPY", "s", "s4", "DB", "x"),
    ("COPY", "s", "s4", "FOO"), ("COPY", "s", "s4", "DB"), ("COPY", "s"),
    ("HSET", "h", "f1", "v1", "f2", "v2"), ("COPY", "h", "h2"), ("HGETALL", "h2"),
    ("HSET", "h2", "f3", "v3"), ("HLEN", "h"), ("OBJECT", "ENCODING", "h2"),
    ("RPUSH", "l", "a", "b", "c"), ("COPY", "l", "l2"), ("LRANGE", "l2", "0", "-1"),
    ("LPOP", "l2"), ("LLEN", "l"), ("OBJECT", "ENCODING", "l2"),
    ("SADD", "st", "1", "2", "3"), ("COPY", "st", "st2"), ("SMEMBERS", "st2"),
    ("OBJECT", "ENCODING", "st2"), ("SADD", "sx", "a", "b"), ("COPY", "sx", "sx2"),
    ("SMEMBERS", "sx2"),
    ("ZADD", "z", "1", "a", "2.5", "b"), ("COPY", "z", "z2"), ("ZRANGE", "z2", "0", "-1", "WITHSCORES"),
    ("OBJECT", "ENCODING", "z2"), ("COPY", "z", "h", "REPLACE"), ("TYPE", "h"),
    ("ZRANGE", "h", "0", "-1", "WITHSCORES"), ("COPY", "h", "l"), ("TYPE", "l"),
    ("PFADD", "hll", "a", "b"), ("COPY", "hll", "hll2"), ("PFCOUNT", "hll2"),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_copy_matches_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, COPY, proto, unordered={"SMEMBERS"})


def test_copy_of_big_values_of_every_type(anynode):  # noqa: F811
    """Past the compact encodings: the copy holds every element and is
    independent of its source."""
    with raw(anynode) as c:
        n = 3000
        c.cmd("HSET", "h", *[x for i in range(n) for x in (f"f{i}", f"v{i}")])
        c.cmd("RPUSH", "l", *[f"e{i}" for i in range(n)])
        c.cmd("SADD", "s", *[f"m{i}" for i in range(n)])
        c.cmd("ZADD", "z", *[x for i in range(n) for x in (str(i), f"m{i}")])
        for k, count in (("h", "HLEN"), ("l", "LLEN"), ("s", "SCARD"), ("z", "ZCARD")):
            assert c.cmd("COPY", k, k + "2") == 1
            assert c.cmd(count, k + "2") == n
            assert c.cmd("OBJECT", "ENCODING", k + "2") == c.cmd("OBJECT", "ENCODING", k)
            c.cmd("DEL", k)
            assert c.cmd(count, k + "2") == n
        assert c.cmd("LINDEX", "l2", "1234") == b"e1234"
        assert c.cmd("ZSCORE", "z2", "m2999") == b"2999"
        assert c.cmd("HGET", "h2", "f7") == b"v7"
