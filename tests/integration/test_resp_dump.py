"""Redis protocol: DUMP and RESTORE in Redis' own serialization (issue 12),
checked against Debian's redis-server 7.0 itself, in both persistence
modes.

- The same commands on both sides give byte-identical DUMP payloads
  wherever Redis 7.0 holds the value in a layout of its own choosing that
  cairn can reproduce: strings (integer and LZF encodings), listpack hashes
  and sorted sets, intsets, skiplist sorted sets, lists pushed at the tail
  (their quicklist cut into the same 8 KiB nodes). Hash tables list their
  elements in an order of their own on either side.
- Every value crosses both ways: redis-server's payload RESTOREs into cairn
  with the same value and encoding, cairn's into redis-server.
- RESTORE's options and errors give Redis' replies, RESP2 and RESP3.
- A payload cut or corrupted anywhere (its checksum made right again) is
  refused with Redis' error or gives a whole value; the server lives on.
- RESTORE goes through the log: it replays after a restart."""
import random
import struct
import time

import pytest

from resp_helpers import RawResp, anynode, raw  # noqa: F401
from test_resp_hashes import assert_same, redis_server  # noqa: F401
from conftest import wait_until


TOO_LARGE = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"


def crc64(data):
    """Redis' CRC-64 (Jones, reflected), bit by bit: slow, obviously right."""
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x95AC9329AC4BC9B5 if crc & 1 else crc >> 1
    return crc


def payload(body, version=10):
    b = body + version.to_bytes(2, "little")
    return b + crc64(b).to_bytes(8, "little")


def lp(*elems):
    """A listpack of short strings (Redis reads a string "1" as well as an
    integer 1)."""
    body = b""
    for e in elems:
        entry = bytes([0x80 | len(e)]) + e
        body += entry + bytes([len(entry)])
    return (6 + len(body) + 1).to_bytes(4, "little") + len(elems).to_bytes(2, "little") + body + b"\xff"


def rdb_str(b):
    return bytes([len(b)]) + b  # under 64 bytes


def sample_payloads():
    """Payloads of every type in plain and compact layouts, for the
    differential run's RESTOREs."""
    s = rdb_str
    return [
        payload(b"\x00" + s(b"hello")),
        payload(b"\x00\xc1\x39\x30"),  # 12345 as a 16-bit integer
        payload(b"\x12\x01\x02" + s(lp(b"a", b"b"))),  # a quicklist of one listpack
        payload(b"\x01\x03" + s(b"x") + s(b"y") + s(b"z")),  # a plain list
        payload(b"\x0b" + s((2).to_bytes(4, "little") + (3).to_bytes(4, "little")
                            + b"\x01\x00\x02\x00\x03\x00")),  # intset 1 2 3
        payload(b"\x02\x02" + s(b"a") + s(b"b")),
        payload(b"\x04\x01" + s(b"f") + s(b"v")),
        payload(b"\x10" + s(lp(b"f1", b"1", b"f2", b"two"))),
        payload(b"\x05\x02" + s(b"m") + struct.pack("<d", 1.5) + s(b"n") + struct.pack("<d", -2.0)),
        payload(b"\x11" + s(lp(b"a", b"1", b"b", b"2.5"))),
    ]


# (key, type, built by these commands, byte-identical to Redis 7.0's DUMP)
VALUES = [
    ("s_short", [("SET", "s_short", "hello")], True),
    ("s_int8", [("SET", "s_int8", "-7")], True),
    ("s_int32", [("SET", "s_int32", "2147483647")], True),
    ("s_int64", [("SET", "s_int64", "4294967296")], True),
    ("s_lzf", [("SET", "s_lzf", "hello world " * 40)], True),
    ("s_incompressible", [("SET", "s_incompressible", "abcdefghijklmnopqrstuvwxyz0123")], True),
    ("s_appended", [("SET", "s_appended", "x"), ("APPEND", "s_appended", "y" * 100)], True),
    ("h_listpack", [("HSET", "h_listpack", "a", "1", "b", "hello", "c", "-5000", "d", "4095",
                     "e", "99999999999", "f", "")], True),
    ("h_table", [("HSET", "h_table", *[x for i in range(600) for x in (f"f{i}", f"v{i}")])], False),
    ("h_long_value", [("HSET", "h_long_value", "a", "1", "d", "x" * 70)], False),
    ("l_small", [("RPUSH", "l_small", "a", "1", "-5000", "x" * 70, "y" * 5000)], True),
    ("l_nodes", [("RPUSH", "l_nodes", *[("e%d" % i) * (i % 50 + 1) for i in range(3000)])], True),
    ("l_ints", [("RPUSH", "l_ints", *[str(v) for v in (0, 127, 128, -1, -4096, 4095, 4096,
                                                         -32768, 32767, 8388607, -8388609,
                                                         2**31, -(2**63), 2**63 - 1)])], True),
    ("l_head", [("LPUSH", "l_head", *[f"e{i}" for i in range(2000)])], False),
    ("i_16", [("SADD", "i_16", "1", "2", "3", "-5")], True),
    ("i_32", [("SADD", "i_32", "1", "70000")], True),
    ("i_64", [("SADD", "i_64", "1", str(2**40))], True),
    ("t_small", [("SADD", "t_small", "a", "b", "c")], False),
    ("t_table", [("SADD", "t_table", *[f"m{i}" for i in range(300)])], False),
    ("z_listpack", [("ZADD", "z_listpack", "1e17", "a", "1.1", "b", "5", "c", "-0.0", "d",
                     "1e300", "e", "5e15", "f", "inf", "g", "-inf", "h", "0.1", "i")], True),
    ("z_skiplist", [("ZADD", "z_skiplist", *[x for i in range(200) for x in (str(i * 1.5), f"m{i}")])],
     True),
    ("z_long_member", [("ZADD", "z_long_member", "1", "a", "2", "b" * 80)], True),
    ("hll", [("PFADD", "hll", *[f"e{i}" for i in range(100)])], True),
    # streams: Redis 7.0's node packing (100 entries, 4096 bytes, master
    # fields), negative seq differences, groups without consumers
    ("x_small", [("XADD", "x_small", "1-1", "a", "1", "b", "hello"),
                 ("XADD", "x_small", "1-2", "a", "2", "b", "world"),
                 ("XADD", "x_small", "2-0", "c", "3")], True),
    ("x_nodes", [("XADD", "x_nodes", f"{i}-{i % 7}", *(("f", f"v{i}") if i % 5 else ("g", str(i), "h", "-7")))
                 for i in range(1, 251)], True),
    ("x_big", [("XADD", "x_big", f"{i}-0", "f", "x" * (300 * (i % 9)), "n", str(i))
               for i in range(1, 60)], True),
    ("x_seq", [("XADD", "x_seq", "5-10", "a", "1"), ("XADD", "x_seq", "6-0", "a", "2"),
               ("XADD", "x_seq", "6-3", "a", "99999999999"), ("XADD", "x_seq", "18446744073709551615-0", "b", "")],
     True),
    ("x_groups", [("XADD", "x_groups", "1-0", "a", "1"), ("XADD", "x_groups", "2-0", "a", "2"),
                  ("XGROUP", "CREATE", "x_groups", "g1", "0"),
                  ("XGROUP", "CREATE", "x_groups", "g2", "$"),
                  ("XGROUP", "CREATE", "x_groups", "g3", "1-0", "ENTRIESREAD", "1")], True),
    ("x_emptied", [("XADD", "x_emptied", "5-0", "a", "1"), ("XDEL", "x_emptied", "5-0")], True),
    ("x_deleted", [*[("XADD", "x_deleted", f"{i}-0", "a", str(i)) for i in range(1, 300)],
                   ("XDEL", "x_deleted", "2-0", "150-0"), ("XTRIM", "x_deleted", "MAXLEN", "250")], False),
    ("x_pending", [*[("XADD", "x_pending", f"{i}-0", "a", str(i)) for i in range(1, 20)],
                   ("XGROUP", "CREATE", "x_pending", "g", "0"),
                   ("XREADGROUP", "GROUP", "g", "alice", "COUNT", "3", "STREAMS", "x_pending", ">"),
                   ("XREADGROUP", "GROUP", "g", "bob", "COUNT", "2", "STREAMS", "x_pending", ">"),
                   ("XGROUP", "CREATECONSUMER", "x_pending", "g", "carol"),
                   ("XCLAIM", "x_pending", "g", "carol", "0", "2-0", "RETRYCOUNT", "7"),
                   ("XACK", "x_pending", "g", "1-0"), ("XDEL", "x_pending", "3-0"),
                   ("XGROUP", "CREATE", "x_pending", "other", "$")], False),
]


def stream_value(c, key):
    """XINFO STREAM FULL without the radix tree's shape (Redis' nodes
    follow their history, cairn's a count of appends)."""
    got = c.cmd("XINFO", "STREAM", key, "FULL")
    return [(got[i], got[i + 1]) for i in range(0, len(got), 2)
            if got[i] not in (b"radix-tree-keys", b"radix-tree-nodes")]

TYPE_READ = {
    "string": lambda c, k: c.cmd("GET", k),
    "hash": lambda c, k: sorted(c.cmd("HGETALL", k)),
    "list": lambda c, k: c.cmd("LRANGE", k, "0", "-1"),
    "set": lambda c, k: sorted(c.cmd("SMEMBERS", k)),
    "zset": lambda c, k: c.cmd("ZRANGE", k, "0", "-1", "WITHSCORES"),
    "stream": stream_value,
}


def value_of(c, key):
    t = c.cmd("TYPE", key)
    return t, TYPE_READ[t](c, key)


def build(c):
    for _, cmds, _ in VALUES:
        for cmd in cmds:
            c.cmd(*cmd)


def test_dump_is_redis_own_and_values_cross_both_ways(anynode, redis_server):  # noqa: F811
    with raw(anynode) as c, RawResp(redis_server) as r:
        build(c)
        build(r)
        for key, _, identical in VALUES:
            mine, theirs = c.cmd("DUMP", key), r.cmd("DUMP", key)
            if identical:
                assert mine == theirs, key
            # Redis' payload into cairn: the same value, encoded as cairn
            # encodes it when built by commands
            assert c.cmd("RESTORE", key + ":r", "0", theirs) == "OK", key
            assert value_of(c, key + ":r") == value_of(r, key), key
            assert c.cmd("OBJECT", "ENCODING", key + ":r") == c.cmd("OBJECT", "ENCODING", key), key
            # and cairn's into Redis
            assert r.cmd("RESTORE", key + ":c", "0", mine) == "OK", key
            assert value_of(r, key + ":c") == value_of(c, key), key
            if key != "t_small":  # a small set is a listpack in cairn (7.2's), a table in 7.0
                assert r.cmd("OBJECT", "ENCODING", key + ":c") == r.cmd("OBJECT", "ENCODING", key)
        # a restored sketch is still a sketch
        assert c.cmd("PFCOUNT", "hll:r") == r.cmd("PFCOUNT", "hll") == 100


def options_script():
    p = payload(b"\x12\x01\x02" + b"\x0d\x0d\x00\x00\x00\x02\x00\x81a\x02\x81b\x02\xff")  # [a, b]
    bad_crc = p[:-1] + bytes([p[-1] ^ 1])
    return [
        ("DUMP", "nosuch"),
        ("RESTORE", "k", "0", p), ("LRANGE", "k", "0", "-1"), ("TTL", "k"),
        ("RESTORE", "k", "0", p),  # BUSYKEY
        ("SET", "str", "v"), ("RESTORE", "str", "0", bad_crc),  # BUSYKEY comes first
        ("RESTORE", "k", "0", p, "REPLACE"), ("RESTORE", "k", "0", p, "replace", "ABSTTL"),
        ("RESTORE", "k2", "-1", p), ("RESTORE", "k2", "x", p), ("RESTORE", "k2", "0", bad_crc),
        ("RESTORE", "k2", "0", payload(b"\x00\x01a", 12)),  # a version from the future
        ("RESTORE", "k2", "0", b""), ("RESTORE", "k2", "0", b"short"),
        ("RESTORE", "k2", "0", payload(b"\x02\x02\x01a\x01a")),  # a duplicate member
        ("RESTORE", "k2", "0", payload(b"\x04\x00")),  # an empty hash
        ("RESTORE", "k2", "0", payload(b"\x03\x01\x01a\xfd")),  # a NaN score
        ("RESTORE", "k2", "0", payload(b"\x06\x00")),  # a module type
        ("RESTORE", "k2", "0", p, "IDLETIME", "-1"), ("RESTORE", "k2", "0", p, "FREQ", "256"),
        ("RESTORE", "k2", "0", p, "FREQ", "-1"), ("RESTORE", "k2", "0", p, "FREQ", "x"),
        ("RESTORE", "k2", "0", p, "IDLETIME", "1", "FREQ", "3"), ("RESTORE", "k2", "0", p, "FREQ"),
        ("RESTORE", "k2", "0", p, "FOO"), ("RESTORE", "k2"), ("EXISTS", "k2"),
        ("RESTORE", "k2", "0", p, "FREQ", "7"), ("RESTORE", "k3", "0", p, "IDLETIME", "5"),
        # an expiry already past: nothing is created, REPLACE deletes the old key
        ("RESTORE", "k4", "1", p, "ABSTTL"), ("EXISTS", "k4"),
        ("RESTORE", "k", "1", p, "ABSTTL", "REPLACE"), ("EXISTS", "k"),
        ("RESTORE", "k5", "0", payload(b"\x00\xc0\x05")), ("GET", "k5"), ("OBJECT", "ENCODING", "k5"),
        ("RESTORE", "k6", "0", payload(b"\x05\x01\x01a" + b"\x00" * 6 + b"\xf0\x7f")), ("ZSCORE", "k6", "a"),
        ("DUMP", "k6"), ("TYPE", "k6"),
    ]


@pytest.mark.parametrize("proto", [2, 3])
def test_restore_options_and_errors_match_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, options_script(), proto)


def test_restore_ttl_and_idle_time(anynode):  # noqa: F811
    with raw(anynode) as c:
        c.cmd("SET", "src", "v")
        p = c.cmd("DUMP", "src")
        assert c.cmd("RESTORE", "a", "100000", p) == "OK"
        assert 99000 < c.cmd("PTTL", "a") <= 100000
        at = int(time.time() * 1000) + 3_600_000
        assert c.cmd("RESTORE", "b", str(at), p, "ABSTTL") == "OK"
        assert c.cmd("PEXPIRETIME", "b") == at
        assert c.cmd("RESTORE", "c", "0", p, "IDLETIME", "1000") == "OK"
        assert 999 <= c.cmd("OBJECT", "IDLETIME", "c") <= 1001


def test_what_cairn_reads_beyond_redis_7_0(anynode):  # noqa: F811
    """Payloads of Redis 7.2 (RDB 11, sets as listpacks) and of Redis 6
    (ziplists, quicklists of ziplists) RESTORE; a payload whose object
    does not end at its footer is refused (Redis reads past or ignores)."""
    def zl(*elems):
        body, prev = b"", 0
        for e in elems:
            entry = bytes([prev, len(e)]) + e
            body += entry
            prev = len(entry)
        tail = 10 + len(body) - prev if elems else 10
        return ((10 + len(body) + 1).to_bytes(4, "little") + tail.to_bytes(4, "little")
                + len(elems).to_bytes(2, "little") + body + b"\xff")

    def s(b):
        return bytes([len(b)]) + b

    with raw(anynode) as c:
        assert c.cmd("RESTORE", "set72", "0", payload(b"\x14" + s(lp(b"x", b"y")), 11)) == "OK"
        assert sorted(c.cmd("SMEMBERS", "set72")) == [b"x", b"y"]
        assert c.cmd("RESTORE", "hash6", "0", payload(b"\x0d" + s(zl(b"f", b"v", b"g", b"w")), 9)) == "OK"
        assert c.cmd("HGETALL", "hash6") == [b"f", b"v", b"g", b"w"]
        assert c.cmd("RESTORE", "zset6", "0", payload(b"\x0c" + s(zl(b"m", b"2.5")), 9)) == "OK"
        assert c.cmd("ZSCORE", "zset6", "m") == b"2.5"
        ql = b"\x0e\x02" + s(zl(b"a", b"b")) + s(zl(b"c"))
        assert c.cmd("RESTORE", "list6", "0", payload(ql, 9)) == "OK"
        assert c.cmd("LRANGE", "list6", "0", "-1") == [b"a", b"b", b"c"]
        assert c.cmd("RESTORE", "odd", "0", payload(b"\x0d" + s(zl(b"f")), 9)).startswith("ERR Bad data")
        assert c.cmd("RESTORE", "trail", "0", payload(b"\x00\x01ab")) == "ERR Bad data format"
        assert c.cmd("RESTORE", "over", "0", payload(b"\x00\x05ab")) == "ERR Bad data format"
        assert c.cmd("DBSIZE") == 4


def test_corrupt_payloads_are_refused_or_whole(anynode, redis_server):  # noqa: F811
    """Every cut and many flipped bytes of real payloads, each with its
    checksum made right: cairn answers OK (the value then reads back) or
    Redis' "Bad data format", and keeps serving."""
    with RawResp(redis_server) as r:
        build(r)
        payloads = [r.cmd("DUMP", k) for k in ("s_lzf", "h_listpack", "l_small", "i_32", "z_listpack",
                                                "z_skiplist", "h_long_value", "x_small", "x_pending")]
    rng = random.Random(12)
    tried = refused = 0
    with raw(anynode) as c:
        for p in payloads:
            body = p[:-10]
            variants = [body[:i] for i in range(len(body))] if len(body) < 400 else \
                [body[:rng.randrange(len(body))] for _ in range(60)]
            for _ in range(150):
                b = bytearray(body)
                b[rng.randrange(len(b))] = rng.randrange(256)
                variants.append(bytes(b))
            for v in variants:
                tried += 1
                got = c.cmd("RESTORE", "k", "0", payload(v, int.from_bytes(p[-10:-8], "little")), "REPLACE")
                if got == "OK":
                    t, _ = value_of(c, "k")
                    assert t in TYPE_READ
                else:  # or an LZF string that would unpack past --max-value-bytes
                    assert got in ("ERR Bad data format", TOO_LARGE), (v, got)
                    refused += 1
        assert c.cmd("PING") == "PONG"
    assert tried > 1000 and refused > tried // 2


def test_restore_replays_after_restart(make_node):
    n = make_node().start()
    with raw(n) as c:
        build(c)
        dumps = {k: c.cmd("DUMP", k) for k, _, _ in VALUES}
        for k, p in dumps.items():
            assert c.cmd("RESTORE", k + ":copy", "0", p) == "OK"
    assert n.stop(timeout=30) == 0
    n.start(timeout=60)
    with raw(n) as c:
        wait_until(lambda: c.cmd("EXISTS", "hll:copy") == 1, 10, 0.1, "the log to replay")
        for k, p in dumps.items():
            assert c.cmd("DUMP", k + ":copy") == p, k


def stream_payload(rdb_type, owned=True):
    """A stream of two entries (1-0 a=x, 2-0 a=y) with a group g (last ID
    1-0) whose consumer c owns 1-0 (delivered at 1,700,000,000,000 ms, 3
    times), in Redis 5/6's layout (15), 7.0's (19) or 7.2's (21)."""
    s = rdb_str
    nums = [str(v).encode() for v in (2, 0, 1)]
    node = lp(*nums, b"a", b"0", b"2", b"0", b"0", b"x", b"4", b"2", b"1", b"0", b"y", b"4")
    key = (1).to_bytes(8, "big") + (0).to_bytes(8, "big")
    body = bytes([rdb_type]) + b"\x01" + s(key) + s(node) + b"\x02" + b"\x02\x00"
    if rdb_type != 15:
        body += b"\x01\x00" + b"\x00\x00" + b"\x02"  # first ID, deleted, added
    body += b"\x01" + s(b"g") + b"\x01\x00"  # one group, last ID 1-0
    if rdb_type != 15:
        body += b"\x01"  # entries read
    t = (1700000000000).to_bytes(8, "little")
    body += b"\x01" + key + t + b"\x03"  # its PEL
    body += b"\x01" + s(b"c") + t + (t if rdb_type == 21 else b"")
    body += b"\x01" + key if owned else b"\x00"  # c's pending entries
    return payload(body, 11 if rdb_type == 21 else 10)


def test_restore_streams_of_every_redis_version(anynode, redis_server):  # noqa: F811
    """Redis 5/6's and 7.0's stream layouts read as redis-server 7.0 reads
    them (XINFO STREAM FULL equal: a 5/6 group's entries read estimated);
    7.2's too (redis-server 7.0 refuses its RDB version 11); a payload
    whose pending entry no consumer owns, or whose IDs go backwards, is
    refused."""
    with raw(anynode) as c, RawResp(redis_server) as r:
        for t in (15, 19):
            p = stream_payload(t)
            assert c.cmd("RESTORE", f"x{t}", "0", p) == "OK" == r.cmd("RESTORE", f"x{t}", "0", p), t
            assert stream_value(c, f"x{t}") == stream_value(r, f"x{t}"), t
        assert c.cmd("RESTORE", "x21", "0", stream_payload(21)) == "OK"
        assert stream_value(c, "x21") == stream_value(c, "x19")
        assert c.cmd("XPENDING", "x21", "g") == [1, b"1-0", b"1-0", [[b"c", b"1"]]]
        # a pending entry no consumer owns (Redis' deep check refuses it too)
        assert c.cmd("RESTORE", "bad1", "0", stream_payload(19, owned=False)) == "ERR Bad data format"
        assert r.cmd("RESTORE", "bad1", "0", stream_payload(19, owned=True)) == "OK"
        # the second entry's ID equal to the first's
        node = lp(b"2", b"0", b"1", b"a", b"0", b"2", b"1", b"0", b"x", b"4", b"2", b"0", b"0", b"y", b"4")
        key = (1).to_bytes(8, "big") + (0).to_bytes(8, "big")
        body = b"\x13\x01" + rdb_str(key) + rdb_str(node) + b"\x02\x02\x00\x01\x00\x00\x00\x02\x00"
        assert c.cmd("RESTORE", "bad2", "0", payload(body)) == "ERR Bad data format"
        assert c.cmd("EXISTS", "bad2") == 0
