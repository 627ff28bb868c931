"""Redis protocol: strings as bitmaps (issue 12): SETBIT GETBIT BITCOUNT
BITPOS BITOP BITFIELD BITFIELD_RO, checked reply for reply against Debian's
redis-server (the harness of test_resp_hashes.py) in RESP2 and RESP3:
ranges in bytes and bits, negative indexes, the zeroes past a string's
end, every BITFIELD width and overflow mode, argument errors in Redis'
order, WRONGTYPE; then the bits on every node of a cluster and after a
restart, and the value limit."""
import random

import pytest

from resp_helpers import RawResp, anynode, raw  # noqa: F401
from test_cluster import leader_of, make_cluster
from test_resp_hashes import assert_same, redis_server  # noqa: F401

BASIC = [
    ("SETBIT", "b", "7", "1"), ("SETBIT", "b", "7", "1"), ("SETBIT", "b", "7", "0"),
    ("SETBIT", "b", "100", "1"), ("GET", "b"), ("STRLEN", "b"), ("GETBIT", "b", "100"),
    ("GETBIT", "b", "101"), ("GETBIT", "b", "100000"), ("GETBIT", "nokey", "3"),
    ("SETBIT", "b", "-1", "1"), ("SETBIT", "b", "x", "1"), ("SETBIT", "b", "1", "2"),
    ("SETBIT", "b", "1", "x"), ("SETBIT", "b", "1", "-1"), ("SETBIT", "b", "4294967296", "1"),
    ("GETBIT", "b", "-1"), ("GETBIT", "b", "x"), ("SETBIT", "b", "1"),
    ("SET", "s", "foobar"), ("BITCOUNT", "s"), ("BITCOUNT", "s", "0", "0"),
    ("BITCOUNT", "s", "1", "1"), ("BITCOUNT", "s", "1", "-2"), ("BITCOUNT", "s", "-3", "-1"),
    ("BITCOUNT", "s", "5", "30", "BIT"), ("BITCOUNT", "s", "0", "-1", "BIT"),
    ("BITCOUNT", "s", "-9", "-3", "BIT"), ("BITCOUNT", "s", "3", "1"), ("BITCOUNT", "s", "100", "200"),
    ("BITCOUNT", "s", "-100", "-50"), ("BITCOUNT", "s", "0", "0", "BYTE"),
    # two negative indexes out of order: 0 before clipping (found by the
    # differential run), for GETRANGE too; BITPOS clips
    ("BITCOUNT", "s", "-1", "-4"), ("BITCOUNT", "s", "-1", "-40", "BIT"), ("GETRANGE", "s", "-4", "-5"),
    ("BITPOS", "s", "1", "-1", "-40"),
    ("BITCOUNT", "s", "0", "0", "bit"), ("BITCOUNT", "s", "0", "0", "WORD"), ("BITCOUNT", "s", "0"),
    ("BITCOUNT", "s", "x", "1"), ("BITCOUNT", "s", "0", "1", "BIT", "extra"),
    ("BITCOUNT", "nokey"), ("BITCOUNT", "nokey", "0", "1"),
    ("SET", "z", "\xff\xf0\x00"), ("BITPOS", "z", "0"), ("BITPOS", "z", "1"),
    ("SET", "z2", "\x00\xff\xf0"), ("BITPOS", "z2", "1", "0"), ("BITPOS", "z2", "1", "2"),
    ("BITPOS", "z2", "1", "2", "-1", "BYTE"), ("BITPOS", "z2", "1", "7", "15", "BIT"),
    ("BITPOS", "z2", "0", "8", "-1", "BIT"), ("BITPOS", "z2", "1", "3", "1"),
    ("SET", "ones", "\xff\xff\xff"), ("BITPOS", "ones", "0"), ("BITPOS", "ones", "0", "1"),
    ("BITPOS", "ones", "0", "0", "-1"), ("BITPOS", "ones", "0", "2", "20", "BIT"),
    ("BITPOS", "ones", "1", "5", "7", "BIT"), ("BITPOS", "ones", "0", "5", "30", "BIT"),
    ("SET", "zero", "\x00\x00"), ("BITPOS", "zero", "1"), ("BITPOS", "zero", "0", "1"),
    ("BITPOS", "nokey", "0"), ("BITPOS", "nokey", "1"), ("BITPOS", "nokey", "1", "x"),
    ("BITPOS", "s", "2"), ("BITPOS", "s", "x"), ("BITPOS", "s", "1", "x"),
    ("BITPOS", "s", "1", "0", "x"), ("BITPOS", "s", "1", "0", "1", "FOO"),
    ("BITPOS", "s", "1", "0", "1", "BIT", "x"), ("SET", "empty", ""), ("BITPOS", "empty", "0"),
    ("BITPOS", "empty", "1"), ("BITCOUNT", "empty"),
    # BITOP
    ("SET", "k1", "foobar"), ("SET", "k2", "abcdef"), ("SET", "k3", "\x01"),
    ("BITOP", "AND", "dest", "k1", "k2"), ("GET", "dest"), ("BITOP", "OR", "dest", "k1", "k2", "k3"),
    ("GET", "dest"), ("BITOP", "XOR", "dest", "k1", "k3"), ("GET", "dest"),
    ("BITOP", "NOT", "dest", "k1"), ("GET", "dest"), ("BITOP", "and", "dest", "k1", "nokey"),
    ("GET", "dest"), ("BITOP", "OR", "dest", "nokey", "nokey2"), ("EXISTS", "dest"),
    ("BITOP", "NOT", "dest", "k1", "k2"), ("BITOP", "NAND", "dest", "k1"), ("BITOP", "AND", "dest"),
    ("SET", "withttl", "x", "EX", "100"), ("BITOP", "OR", "withttl", "k1"), ("TTL", "withttl"),
    ("SETBIT", "withttl", "0", "1"), ("TTL", "withttl"),
    ("LPUSH", "lst", "a"), ("BITOP", "AND", "dest", "k1", "lst"), ("BITOP", "AND", "lst", "k1"),
    ("TYPE", "lst"), ("SETBIT", "lst", "1", "1"), ("GETBIT", "lst", "1"), ("BITCOUNT", "lst"),
    ("BITPOS", "lst", "1"), ("BITFIELD", "lst", "GET", "u8", "0"),
    ("BITFIELD_RO", "lst", "GET", "u8", "0"),
    ("COMMAND", "GETKEYS", "BITOP", "AND", "d", "s1", "s2"),
]

BITFIELD = [
    ("BITFIELD", "bf", "SET", "i8", "0", "100", "GET", "u4", "0", "GET", "i4", "4"),
    ("BITFIELD", "bf", "INCRBY", "i8", "0", "100"), ("BITFIELD", "bf", "INCRBY", "i8", "0", "-300"),
    ("BITFIELD", "bf", "OVERFLOW", "SAT", "INCRBY", "i8", "0", "200", "INCRBY", "i8", "0", "-1000"),
    ("BITFIELD", "bf", "OVERFLOW", "FAIL", "INCRBY", "i8", "0", "1000", "GET", "i8", "0"),
    ("BITFIELD", "bf", "OVERFLOW", "WRAP", "SET", "u8", "#1", "300", "GET", "u8", "#1"),
    ("BITFIELD", "bf", "OVERFLOW", "SAT", "SET", "u8", "#2", "-1", "SET", "u8", "#3", "300"),
    ("BITFIELD", "bf", "OVERFLOW", "FAIL", "SET", "u8", "#4", "-1", "SET", "i8", "#4", "-1"),
    ("BITFIELD", "bf", "OVERFLOW", "SAT", "SET", "i8", "#5", "-1000", "GET", "i8", "#5"),
    ("BITFIELD", "bf", "SET", "u63", "13", "9223372036854775807", "GET", "u63", "13",
     "INCRBY", "u63", "13", "1", "GET", "u63", "13"),
    ("BITFIELD", "bf", "SET", "i64", "3", "-9223372036854775808", "INCRBY", "i64", "3", "-1"),
    ("BITFIELD", "bf", "OVERFLOW", "SAT", "INCRBY", "i64", "3", "-1", "INCRBY", "i64", "3",
     "9223372036854775807", "INCRBY", "i64", "3", "9223372036854775807"),
    ("BITFIELD", "bf", "OVERFLOW", "FAIL", "INCRBY", "u1", "100", "1", "INCRBY", "u1", "100", "1"),
    ("BITFIELD", "bf", "SET", "i1", "200", "-1", "GET", "i1", "200", "GET", "u1", "200"),
    ("GET", "bf"), ("STRLEN", "bf"),
    ("BITFIELD", "bf", "GET", "u8", "1000", "GET", "i5", "#3"), ("BITFIELD_RO", "bf", "GET", "i5", "#3"),
    ("BITFIELD", "new", "GET", "u8", "0"), ("EXISTS", "new"),
    ("BITFIELD", "new2", "OVERFLOW", "FAIL", "SET", "u2", "20", "7"), ("GET", "new2"),
    ("BITFIELD", "bf"), ("BITFIELD", "bf", "OVERFLOW", "SAT"), ("BITFIELD_RO", "bf"),
    # errors
    ("BITFIELD", "bf", "GET", "u64", "0"), ("BITFIELD", "bf", "GET", "i65", "0"),
    ("BITFIELD", "bf", "GET", "u0", "0"), ("BITFIELD", "bf", "GET", "x8", "0"),
    ("BITFIELD", "bf", "GET", "u", "0"), ("BITFIELD", "bf", "GET", "u8", "-1"),
    ("BITFIELD", "bf", "GET", "u8", "#-1"), ("BITFIELD", "bf", "GET", "u8", "x"),
    ("BITFIELD", "bf", "GET", "u8", "4294967296"), ("BITFIELD", "bf", "SET", "u8", "0", "x"),
    ("BITFIELD", "bf", "SET", "u8", "0"), ("BITFIELD", "bf", "GET", "u8"),
    ("BITFIELD", "bf", "OVERFLOW", "FOO", "GET", "u8", "0"), ("BITFIELD", "bf", "OVERFLOW"),
    ("BITFIELD", "bf", "FOO", "u8", "0"), ("BITFIELD", "bf", "GET", "u8", "0", "SET", "x8", "0", "1"),
    ("BITFIELD_RO", "bf", "SET", "u8", "0", "1"), ("BITFIELD_RO", "bf", "INCRBY", "u8", "0", "1"),
    ("BITFIELD_RO", "bf", "GET", "u8", "0", "FOO"),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_bitmap_commands_match_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, BASIC, proto)
    assert_same(anynode.resp_port, redis_server, BITFIELD, proto)


def test_random_bit_ranges_match_redis(anynode, redis_server):  # noqa: F811
    """Seeded: random bitmaps, BITCOUNT and BITPOS over random ranges in
    both units, BITFIELD at random offsets and widths."""
    rnd = random.Random(12)
    script = []
    for k in range(6):
        key = f"r{k}"
        n = rnd.choice([1, 3, 9, 40])
        value = "".join(chr(rnd.choice([0, 255, rnd.randrange(256)])) for _ in range(n))
        script.append(("SET", key, value))
        for _ in range(40):
            unit = rnd.choice([[], ["BYTE"], ["BIT"]])
            top = 8 * n + 4 if unit == ["BIT"] else n + 2
            a, b = rnd.randint(-top, top), rnd.randint(-top, top)
            script.append(("BITCOUNT", key, str(a), str(b), *unit))
            script.append(("BITPOS", key, str(rnd.randint(0, 1)), str(a), str(b), *unit))
            script.append(("BITPOS", key, str(rnd.randint(0, 1)), str(a)))
        for _ in range(20):
            signed = rnd.random() < 0.5
            bits = rnd.randint(1, 64 if signed else 63)
            typ = ("i" if signed else "u") + str(bits)
            off = str(rnd.randint(0, 8 * n + 8))
            mode = rnd.choice(["WRAP", "SAT", "FAIL"])
            v = str(rnd.randint(-(1 << 63), (1 << 63) - 1))
            script.append(("BITFIELD", key, "OVERFLOW", mode, "INCRBY", typ, off, v, "GET", typ, off))
        script.append(("GET", key))
    assert_same(anynode.resp_port, redis_server, script, 2)


def test_bits_on_every_node_and_after_a_restart(make_node):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    follower = next(x for x in nodes if x is not leader)
    with RawResp(follower.resp_port) as c:  # writes through a follower
        assert c.cmd("SETBIT", "flags", "1000", "1") == 0
        assert c.cmd("BITFIELD", "flags", "INCRBY", "u16", "#3", "513") == [513]
        assert c.cmd("BITOP", "NOT", "inv", "flags") == 126
    for x in nodes:
        with RawResp(x.resp_port) as c:
            assert c.cmd("BITCOUNT", "flags") == 3
            assert c.cmd("GETBIT", "flags", "1000") == 1
            assert c.cmd("BITFIELD_RO", "flags", "GET", "u16", "#3") == [513]
            assert c.cmd("BITCOUNT", "inv") == 126 * 8 - 3
    follower.restart()
    with RawResp(follower.resp_port) as c:
        assert c.cmd("BITPOS", "flags", "1", "100", "-1", "BIT") == 1000


def test_a_bit_past_the_value_limit_is_refused(make_node):
    node = make_node(extra_args=["--max-value-bytes", "1024"]).start()
    with raw(node) as c:
        assert c.cmd("SETBIT", "b", str(1024 * 8 - 1), "1") == 0
        err = c.cmd("SETBIT", "b", str(1024 * 8), "1")
        assert str(err) == "ERR bit offset is not an integer or out of range"
        err = c.cmd("BITFIELD", "b", "SET", "u8", str(1024 * 8), "1")
        assert str(err) == "ERR bit offset is not an integer or out of range"
        assert c.cmd("BITFIELD", "b", "SET", "i64", str(1024 * 8 - 1), "-1") == [-(1 << 63)]  # its first bit was set
        assert c.cmd("STRLEN", "b") == 1032  # the field's bytes past the limit, as in Redis
