"""Redis protocol: the string commands with Redis 7.0 semantics, every
option and its errors (expected texts were checked against redis-server
7.0.15), in both persistence modes.

GET SET SETNX SETEX PSETEX GETSET GETDEL GETEX MGET MSET MSETNX INCR DECR
INCRBY DECRBY INCRBYFLOAT APPEND STRLEN GETRANGE SETRANGE"""
import time

import pytest
import redis

from resp_helpers import anynode, client, raw  # noqa: F401

NOT_INT = "ERR value is not an integer or out of range"
SYNTAX = "ERR syntax error"


def test_get_set_basic(anynode):
    r = client(anynode)
    assert r.get("nope") is None
    assert r.set("k", "v") is True
    assert r.get("k") == b"v"
    assert r.set("k", b"") is True
    assert r.get("k") == b""
    assert r.set(b"\x00bin\xffkey", b"\x00\r\n\xff") is True
    assert r.get(b"\x00bin\xffkey") == b"\x00\r\n\xff"
    assert r.set("", "empty key") is True  # Redis allows the empty key
    assert r.get("") == b"empty key"
    with raw(anynode) as c:
        assert c.raw_reply("SET", "x", "1") == b"+OK\r\n"
        assert c.raw_reply("GET", "x") == b"$1\r\n1\r\n"
        assert c.raw_reply("GET", "none") == b"$-1\r\n"


def test_set_nx_xx_get(anynode):
    with raw(anynode) as c:
        assert c.cmd("SET", "a", "1", "NX") == "OK"
        assert c.raw_reply("SET", "a", "2", "NX") == b"$-1\r\n"
        assert c.cmd("GET", "a") == b"1"
        assert c.raw_reply("SET", "b", "1", "XX") == b"$-1\r\n"
        assert c.cmd("EXISTS", "b") == 0
        assert c.cmd("SET", "a", "3", "xx") == "OK"
        assert c.cmd("GET", "a") == b"3"
        # GET returns the previous value (or nil), alone or with NX/XX
        assert c.cmd("SET", "a", "4", "GET") == b"3"
        assert c.cmd("SET", "new", "1", "GET") == None  # noqa: E711
        assert c.cmd("GET", "new") == b"1"
        assert c.cmd("SET", "a", "5", "NX", "GET") == b"4"  # exists: not set, old value
        assert c.cmd("GET", "a") == b"4"
        assert c.cmd("SET", "n2", "1", "NX", "GET") == None  # noqa: E711
        assert c.cmd("GET", "n2") == b"1"
        assert c.cmd("SET", "absent", "1", "XX", "GET") == None  # noqa: E711
        assert c.cmd("EXISTS", "absent") == 0
        # option conflicts and junk
        for args in (("NX", "XX"), ("XX", "NX"), ("EX", "10", "PX", "10"), ("KEEPTTL", "EX", "10"),
                     ("EX", "10", "KEEPTTL"), ("PXAT", "1", "EXAT", "1"), ("foo",), ("EX",),
                     ("NX", "PERSIST"), ("GET", "GET", "foo")):
            assert c.cmd("SET", "a", "v", *args) == SYNTAX, args
        # repeating an option is allowed, the last expiry wins
        assert c.cmd("SET", "rep", "v", "NX", "NX") == "OK"
        assert c.cmd("SET", "x", "1", "EX", "10", "EX", "20") == "OK"
        assert c.cmd("TTL", "x") == 20


def test_set_expiry_options(anynode):
    now = int(time.time())
    with raw(anynode) as c:
        assert c.cmd("SET", "ex", "v", "EX", "100") == "OK"
        assert 99 <= c.cmd("TTL", "ex") <= 100
        assert c.cmd("SET", "px", "v", "PX", "100000") == "OK"
        assert 99000 < c.cmd("PTTL", "px") <= 100000
        assert c.cmd("SET", "exat", "v", "EXAT", str(now + 1000)) == "OK"
        assert c.cmd("EXPIRETIME", "exat") == now + 1000
        assert c.cmd("SET", "pxat", "v", "PXAT", str((now + 1000) * 1000 + 5)) == "OK"
        assert c.cmd("PEXPIRETIME", "pxat") == (now + 1000) * 1000 + 5
        # a plain SET clears the TTL, KEEPTTL keeps it
        assert c.cmd("SET", "ex", "w") == "OK"
        assert c.cmd("TTL", "ex") == -1
        assert c.cmd("SET", "px", "w", "KEEPTTL") == "OK"
        assert c.cmd("TTL", "px") > 0
        assert c.cmd("GET", "px") == b"w"
        # an absolute time in the past: accepted, the key is gone at once
        assert c.cmd("SET", "past", "v", "EXAT", "1") == "OK"
        assert c.cmd("GET", "past") == None  # noqa: E711
        assert c.cmd("EXISTS", "past") == 0
        # invalid times
        for args in (("EX", "0"), ("EX", "-1"), ("PX", "0"), ("EXAT", "0"), ("PXAT", "-5"),
                     ("EX", "9223372036854775807"), ("PX", "9223372036854775807"),
                     ("EX", "9223372036854775"), ("EXAT", "9223372036854776")):
            assert c.cmd("SET", "bad", "v", *args) == "ERR invalid expire time in 'set' command", args
        assert c.cmd("SET", "bad", "v", "EX", "abc") == NOT_INT
        assert c.cmd("SET", "bad", "v", "EX", "1.5") == NOT_INT
        assert c.cmd("SET", "bad", "v", "EX", " 1") == NOT_INT
        # syntax is checked before numbers
        assert c.cmd("SET", "bad", "v", "EX", "abc", "NX", "XX") == SYNTAX
        assert c.cmd("EXISTS", "bad") == 0
    # expiry really happens
    r = client(anynode)
    r.set("short", "v", px=150)
    assert r.get("short") == b"v"
    time.sleep(0.4)
    assert r.get("short") is None
    assert r.exists("short") == 0


def test_setnx_setex_psetex(anynode):
    with raw(anynode) as c:
        assert c.cmd("SETNX", "k", "1") == 1
        assert c.cmd("SETNX", "k", "2") == 0
        assert c.cmd("GET", "k") == b"1"
        assert c.cmd("SETEX", "k", "100", "v") == "OK"
        assert c.cmd("GET", "k") == b"v" and c.cmd("TTL", "k") == 100
        assert c.cmd("PSETEX", "k", "100000", "w") == "OK"
        assert 99000 < c.cmd("PTTL", "k") <= 100000
        assert c.cmd("SETEX", "k", "0", "v") == "ERR invalid expire time in 'setex' command"
        assert c.cmd("SETEX", "k", "-5", "v") == "ERR invalid expire time in 'setex' command"
        assert c.cmd("PSETEX", "k", "0", "v") == "ERR invalid expire time in 'psetex' command"
        assert c.cmd("SETEX", "k", "9223372036854775807", "v") == \
            "ERR invalid expire time in 'setex' command"
        assert c.cmd("SETEX", "k", "x", "v") == NOT_INT
        assert c.cmd("SETEX", "k", "10") == "ERR wrong number of arguments for 'setex' command"
        assert c.cmd("GET", "k") == b"w"


def test_getset_getdel(anynode):
    with raw(anynode) as c:
        assert c.cmd("GETSET", "g", "1") == None  # noqa: E711
        assert c.cmd("GETSET", "g", "2") == b"1"
        assert c.cmd("GET", "g") == b"2"
        c.cmd("EXPIRE", "g", "100")
        assert c.cmd("GETSET", "g", "3") == b"2"
        assert c.cmd("TTL", "g") == -1  # GETSET clears the TTL, as SET does
        assert c.cmd("GETDEL", "g") == b"3"
        assert c.cmd("GETDEL", "g") == None  # noqa: E711
        assert c.cmd("EXISTS", "g") == 0
    r = client(anynode)
    r.set("x", "y")
    assert r.getdel("x") == b"y" and r.get("x") is None


def test_getex(anynode):
    now = int(time.time())
    with raw(anynode) as c:
        c.cmd("SET", "g", "v")
        assert c.cmd("GETEX", "g") == b"v"
        assert c.cmd("TTL", "g") == -1
        assert c.cmd("GETEX", "g", "EX", "100") == b"v"
        assert c.cmd("TTL", "g") == 100
        assert c.cmd("GETEX", "g", "PERSIST") == b"v"
        assert c.cmd("TTL", "g") == -1
        assert c.cmd("GETEX", "g", "PX", "50000") == b"v"
        assert 49000 < c.cmd("PTTL", "g") <= 50000
        assert c.cmd("GETEX", "g", "EXAT", str(now + 500)) == b"v"
        assert c.cmd("EXPIRETIME", "g") == now + 500
        assert c.cmd("GETEX", "g", "PXAT", str((now + 600) * 1000)) == b"v"
        assert c.cmd("PEXPIRETIME", "g") == (now + 600) * 1000
        assert c.cmd("GETEX", "nokey", "EX", "10") == None  # noqa: E711
        assert c.cmd("EXISTS", "nokey") == 0
        for args in (("EX", "10", "PX", "10"), ("PERSIST", "EX", "10"), ("EX", "10", "PERSIST"),
                     ("foo",), ("EX",), ("KEEPTTL",), ("NX",), ("GET",)):
            assert c.cmd("GETEX", "g", *args) == SYNTAX, args
        assert c.cmd("GETEX", "g", "EX", "0") == "ERR invalid expire time in 'getex' command"
        assert c.cmd("GETEX", "g", "EXAT", "0") == "ERR invalid expire time in 'getex' command"
        assert c.cmd("GETEX", "g", "EX", "x") == NOT_INT
        # a past absolute time deletes the key and still returns the value
        assert c.cmd("GETEX", "g", "EXAT", "1") == b"v"
        assert c.cmd("EXISTS", "g") == 0


def test_mget_mset_msetnx(anynode):
    with raw(anynode) as c:
        assert c.cmd("MSET", "a", "1", "b", "2", "c", "3") == "OK"
        assert c.cmd("MGET", "a", "nope", "c", "a") == [b"1", None, b"3", b"1"]
        assert c.raw_reply("MGET", "nope") == b"*1\r\n"
        assert c.read_raw(5) == b"$-1\r\n"
        assert c.cmd("MSET", "a") == "ERR wrong number of arguments for 'mset' command"
        assert c.cmd("MSET", "a", "1", "b") == "ERR wrong number of arguments for 'mset' command"
        assert c.cmd("MSETNX", "a", "9", "z", "9") == 0  # one exists: nothing set
        assert c.cmd("MGET", "a", "z") == [b"1", None]
        assert c.cmd("MSETNX", "y", "1", "z", "2") == 1
        assert c.cmd("MGET", "y", "z") == [b"1", b"2"]
        assert c.cmd("MSETNX", "q") == "ERR wrong number of arguments for 'msetnx' command"
        assert c.cmd("MGET") == "ERR wrong number of arguments for 'mget' command"
        # MSET clears TTLs, and the last value of a repeated key wins
        c.cmd("EXPIRE", "a", "100")
        assert c.cmd("MSET", "a", "x", "a", "y") == "OK"
        assert c.cmd("GET", "a") == b"y" and c.cmd("TTL", "a") == -1
    r = client(anynode)
    mapping = {f"m{i}": str(i) for i in range(500)}
    assert r.mset(mapping) is True
    assert r.mget(list(mapping)) == [v.encode() for v in mapping.values()]


def test_incr_decr(anynode):
    with raw(anynode) as c:
        assert c.cmd("INCR", "n") == 1
        assert c.cmd("INCR", "n") == 2
        assert c.cmd("DECR", "n") == 1
        assert c.cmd("INCRBY", "n", "10") == 11
        assert c.cmd("DECRBY", "n", "20") == -9
        assert c.cmd("INCRBY", "n", "-1") == -10
        assert c.cmd("GET", "n") == b"-10"
        assert c.cmd("DECR", "fresh") == -1
        c.cmd("SET", "s", "abc")
        assert c.cmd("INCR", "s") == NOT_INT
        c.cmd("SET", "s", " 1")
        assert c.cmd("INCR", "s") == NOT_INT
        c.cmd("SET", "s", "01")
        assert c.cmd("INCR", "s") == NOT_INT
        c.cmd("SET", "s", "1.5")
        assert c.cmd("INCRBY", "s", "1") == NOT_INT
        assert c.cmd("INCRBY", "n", "x") == NOT_INT
        assert c.cmd("INCRBY", "n", "1.0") == NOT_INT
        assert c.cmd("INCRBY", "n", "99999999999999999999") == NOT_INT
        c.cmd("SET", "big", "9223372036854775807")
        assert c.cmd("INCR", "big") == "ERR increment or decrement would overflow"
        assert c.cmd("GET", "big") == b"9223372036854775807"
        c.cmd("SET", "small", "-9223372036854775808")
        assert c.cmd("DECR", "small") == "ERR increment or decrement would overflow"
        assert c.cmd("DECRBY", "n", "-9223372036854775808") == "ERR decrement would overflow"
        assert c.cmd("INCRBY", "z", "-9223372036854775808") == -9223372036854775808
        assert c.cmd("DECR", "n", "1") == "ERR wrong number of arguments for 'decr' command"
        # INCR keeps the TTL, as in Redis
        c.cmd("SET", "t", "1", "EX", "100")
        assert c.cmd("INCR", "t") == 2
        assert c.cmd("TTL", "t") > 0
    r = client(anynode)
    assert r.incr("c") == 1 and r.incrby("c", 5) == 6 and r.decr("c") == 5 and r.decrby("c", 5) == 0


def test_incrbyfloat(anynode):
    with raw(anynode) as c:
        assert c.cmd("INCRBYFLOAT", "f", "10.5") == b"10.5"
        assert c.cmd("INCRBYFLOAT", "f", "0.1") == b"10.6"
        assert c.cmd("INCRBYFLOAT", "f", "-5") == b"5.6"
        # long double arithmetic, digits exactly as redis-server 7.0 prints them
        assert c.cmd("INCRBYFLOAT", "f", "5.0e3") == b"5005.60000000000000009"
        assert c.cmd("GET", "f") == b"5005.60000000000000009"
        assert c.cmd("INCRBYFLOAT", "g", "1e20") == b"100000000000000000000"
        assert c.cmd("INCRBYFLOAT", "h", "3.0e3") == b"3000"
        c.cmd("SET", "i", "7")
        assert c.cmd("INCRBYFLOAT", "i", "0.5") == b"7.5"
        assert c.cmd("INCRBYFLOAT", "f", "abc") == "ERR value is not a valid float"
        assert c.cmd("INCRBYFLOAT", "f", " 1") == "ERR value is not a valid float"
        assert c.cmd("INCRBYFLOAT", "f", "nan") == "ERR value is not a valid float"
        assert c.cmd("INCRBYFLOAT", "f", "inf") == "ERR increment would produce NaN or Infinity"
        c.cmd("SET", "s", "abc")
        assert c.cmd("INCRBYFLOAT", "s", "1") == "ERR value is not a valid float"
        assert c.cmd("GET", "f") == b"5005.60000000000000009"
    assert client(anynode).incrbyfloat("pf", 2.5) == 2.5


def test_append_strlen(anynode):
    with raw(anynode) as c:
        assert c.cmd("APPEND", "a", "Hello") == 5
        assert c.cmd("APPEND", "a", " World") == 11
        assert c.cmd("GET", "a") == b"Hello World"
        assert c.cmd("APPEND", "a", "") == 11
        assert c.cmd("STRLEN", "a") == 11
        assert c.cmd("STRLEN", "nope") == 0
        assert c.cmd("APPEND", "b", b"\x00\xff") == 2
        assert c.cmd("STRLEN", "b") == 2
        c.cmd("SET", "t", "x", "EX", "100")
        c.cmd("APPEND", "t", "y")
        assert c.cmd("TTL", "t") > 0  # APPEND keeps the TTL


def test_getrange(anynode):
    with raw(anynode) as c:
        c.cmd("SET", "r", "Hello")
        cases = {("0", "-1"): b"Hello", ("-3", "-1"): b"llo", ("10", "20"): b"", ("3", "1"): b"",
                 ("-100", "-50"): b"H", ("-100", "100"): b"Hello", ("0", "0"): b"H",
                 ("-1", "-5"): b"", ("0", "-100"): b"H", ("1", "3"): b"ell"}
        for (s, e), want in cases.items():
            assert c.cmd("GETRANGE", "r", s, e) == want, (s, e)
        assert c.cmd("GETRANGE", "nokey", "0", "-1") == b""
        assert c.cmd("GETRANGE", "r", "a", "b") == NOT_INT
        assert c.cmd("GETRANGE", "r", "0", "x") == NOT_INT


def test_setrange(anynode):
    with raw(anynode) as c:
        c.cmd("SET", "r", "Hello World")
        assert c.cmd("SETRANGE", "r", "6", "Redis") == 11
        assert c.cmd("GET", "r") == b"Hello Redis"
        assert c.cmd("SETRANGE", "pad", "3", "x") == 4
        assert c.cmd("GET", "pad") == b"\x00\x00\x00x"
        # an empty value changes nothing, whatever the offset
        assert c.cmd("SETRANGE", "nk", "5", "") == 0
        assert c.cmd("EXISTS", "nk") == 0
        assert c.cmd("SETRANGE", "r", "536870912", "") == 11
        assert c.cmd("SETRANGE", "r", "-1", "x") == "ERR offset is out of range"
        assert c.cmd("SETRANGE", "r", "-1", "") == "ERR offset is out of range"
        assert c.cmd("SETRANGE", "r", "x", "y") == NOT_INT
        # the maximum size is --max-value-bytes (1 MiB by default)
        assert c.cmd("SETRANGE", "r", "1048576", "x") == \
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
        assert c.cmd("SETRANGE", "r", "1048575", "xy") == \
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
        assert c.cmd("SETRANGE", "edge", "1048575", "x") == 1048576
        assert c.cmd("STRLEN", "edge") == 1048576
        assert c.cmd("GET", "r") == b"Hello Redis"


def test_append_over_the_limit(make_node):
    n = make_node(persistence="none", extra_args=["--max-value-bytes", "100"]).start()
    with raw(n) as c:
        assert c.cmd("SET", "a", "x" * 100) == "OK"
        assert c.cmd("APPEND", "a", "y") == "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
        assert c.cmd("STRLEN", "a") == 100
        assert c.cmd("SET", "b", "x" * 101) == "ERR value too large (max 100 bytes)"
        assert c.cmd("APPEND", "b", "x" * 101) == "ERR value too large (max 100 bytes)"


def test_redis_py_string_api(anynode):
    r = client(anynode, decode_responses=True)
    assert r.set("s", "v", ex=60, nx=True) is True
    assert r.set("s", "w", nx=True) is None
    assert r.set("s", "w", xx=True, get=True) == "v"
    assert r.ttl("s") == -1  # a SET without KEEPTTL drops the expiry
    assert r.expire("s", 60) is True
    assert r.set("s", "x", keepttl=True) is True and r.ttl("s") > 0
    assert r.getex("s", persist=True) == "x" and r.ttl("s") == -1
    assert r.setex("e", 30, "v") is True and 0 < r.ttl("e") <= 30
    assert r.psetex("p", 30000, "v") is True and 0 < r.pttl("p") <= 30000
    assert r.getrange("s", 0, 0) == "x"
    assert r.setrange("s", 1, "yz") == 3 and r.get("s") == "xyz"
    assert r.append("s", "!") == 4 and r.strlen("s") == 4
    assert r.msetnx({"u1": "1", "u2": "2"}) is True
    assert r.msetnx({"u1": "1", "u3": "3"}) is False
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.incr("s")
