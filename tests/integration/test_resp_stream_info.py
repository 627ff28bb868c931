"""Redis protocol: XSETID and XINFO STREAM [FULL [COUNT n]] (issue 13),
with XINFO GROUPS / CONSUMERS listing groups and consumers in Redis' order
(by name), byte for byte against Debian's redis-server 7.0 in RESP2 and
RESP3. XINFO STREAM's radix-tree-keys and -nodes come from cairn's model
of Redis' nodes (100 entries each): compared here on streams of small
entries, appended, deleted and trimmed. XINFO STREAM FULL shows delivery
and seen times (absolute milliseconds): compared with those masked, after
XCLAIM / XAUTOCLAIM with and without JUSTID and FORCE (delivery counts)."""
import pytest

from resp_helpers import RawResp, anynode  # noqa: F401
from test_resp_hashes import assert_same, redis_server  # noqa: F401

XSETID = [
    ("XADD", "s", "1-1", "a", "1"), ("XADD", "s", "2-1", "b", "2"),
    ("XSETID", "s", "1-5"), ("XSETID", "s", "5-0", "ENTRIESADDED", "1"),
    ("XSETID", "s", "5-0", "ENTRIESADDED", "-1"), ("XSETID", "s", "5-0", "MAXDELETEDID", "6-0"),
    ("XSETID", "s", "5-0", "ENTRIESADDED", "10", "MAXDELETEDID", "3-0"), ("XINFO", "STREAM", "s"),
    ("XSETID", "s", "5-0", "MAXDELETEDID", "0-0"), ("XINFO", "STREAM", "s"),
    ("XSETID", "s", "9-0", "entriesadded", "3", "ENTRIESADDED", "4"), ("XINFO", "STREAM", "s"),
    ("XSETID", "nokey", "1-1"), ("XSETID", "nokey", "1-0", "ENTRIESADDED", "-1"),
    ("XSETID", "nokey", "1-0", "MAXDELETEDID", "2-0"),
    ("SET", "str", "x"), ("XSETID", "str", "1-1"), ("XSETID", "s", "foo"),
    ("XSETID", "s", "5-0", "bogus"), ("XSETID", "s", "5-0", "ENTRIESADDED"),
    ("XSETID", "s", "2-1"), ("XSETID", "s", "2-0"), ("XSETID", "s", "5"), ("XSETID", "s", "5-*"),
    ("XSETID", "s", "-"), ("XSETID", "s", "+"), ("XSETID", "s", "5-0", "ENTRIESADDED", "x"),
    ("XSETID", "s", "5-0", "MAXDELETEDID", "zz"), ("XSETID", "s"),
    # XADD after XSETID: the next ID follows the one set
    ("XADD", "s", "10-*", "c", "3"), ("XADD", "s", "10-0", "d", "4"), ("XADD", "s", "10-*", "d", "4"),
    ("XINFO", "STREAM", "s"),
    # an empty stream takes any ID
    ("XADD", "e", "MAXLEN", "0", "5-5", "a", "1"), ("XSETID", "e", "0-0"), ("XINFO", "STREAM", "e"),
    ("XSETID", "e", "0-0", "ENTRIESADDED", "0"), ("XINFO", "STREAM", "e"),
]

INFO = [
    ("XINFO", "HELP"), ("XINFO", "STREAM"), ("XINFO", "STREAM", "nokey"),
    ("XINFO", "STREAM", "nokey", "bogus"), ("XINFO", "GROUPS"), ("XINFO", "GROUPS", "a", "b"),
    ("XINFO", "CONSUMERS", "s"), ("XINFO", "nosuch"), ("XINFO", "stream", "str"),
    ("SET", "str", "x"), ("XINFO", "STREAM", "str"),
    ("XADD", "s", "1-1", "f", "v"), ("XINFO", "STREAM", "s", "bogus"),
    ("XINFO", "STREAM", "s", "FULL", "COUNT"), ("XINFO", "STREAM", "s", "FULL", "COUNT", "1", "2"),
    ("XINFO", "STREAM", "s", "FULL", "bogus", "1"), ("XINFO", "STREAM", "s", "FULL", "COUNT", "x"),
    ("XINFO", "STREAM", "s", "FULL", "COUNT", "99999999999999999999"),
    ("XINFO", "STREAM", "s"), ("XINFO", "STREAM", "s", "FULL"),
    # groups and consumers are listed by name, whatever the order made
    ("XGROUP", "CREATE", "s", "zeta", "0"), ("XGROUP", "CREATE", "s", "alpha", "$"),
    ("XGROUP", "CREATE", "s", "al", "$"), ("XGROUP", "CREATE", "s", "b", "$"),
    ("XGROUP", "CREATECONSUMER", "s", "zeta", "zc"), ("XGROUP", "CREATECONSUMER", "s", "zeta", "ac"),
    ("XGROUP", "CREATECONSUMER", "s", "zeta", "a"), ("XGROUP", "CREATECONSUMER", "s", "zeta", "B"),
    ("XINFO", "GROUPS", "s"), ("XGROUP", "DESTROY", "s", "al"), ("XINFO", "GROUPS", "s"),
    ("XGROUP", "DELCONSUMER", "s", "zeta", "ac"), ("XPENDING", "s", "zeta"),
    ("XINFO", "STREAM", "s"),
]


def _stream_of(n, key="big"):
    return [("XADD", key, f"{i}-{i % 3}", "f", str(i)) for i in range(1, n + 1)]


# radix-tree-keys/-nodes as nodes fill, empty and go
SHAPES = (_stream_of(250) + [("XINFO", "STREAM", "big")] +
          [("XDEL", "big", f"{i}-{i % 3}") for i in range(102, 180)] +
          [("XINFO", "STREAM", "big"), ("XDEL", "big", "101-2"), ("XINFO", "STREAM", "big"),
           ("XTRIM", "big", "MAXLEN", "~", "60"), ("XINFO", "STREAM", "big"),
           ("XTRIM", "big", "MAXLEN", "10"), ("XINFO", "STREAM", "big"),
           ("XTRIM", "big", "MAXLEN", "0"), ("XINFO", "STREAM", "big")] +
          [("XADD", "wide", f"{(i * 7919) << 20}-{i}", "f", "v") for i in range(1, 301)] +
          [("XINFO", "STREAM", "wide"), ("XADD", "one", "18446744073709551615-5", "f", "v"),
           ("XINFO", "STREAM", "one")])


@pytest.mark.parametrize("proto", [2, 3])
def test_xsetid_matches_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, XSETID, proto)


@pytest.mark.parametrize("proto", [2, 3])
def test_xinfo_matches_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, INFO, proto)


def test_xinfo_radix_shape_matches_redis(anynode, redis_server):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, SHAPES, 2)


def _mask_times(v):
    """Delivery and seen times (ms since the epoch) differ between servers."""
    if isinstance(v, list):
        return [_mask_times(x) for x in v]
    if isinstance(v, dict):
        return {k: _mask_times(x) for k, x in v.items()}
    if isinstance(v, int) and v > 10**12:
        return "<time>"
    return v


FULL = [
    ("XADD", "s", "1-1", "a", "1"), ("XADD", "s", "2-1", "b", "2"), ("XADD", "s", "3-1", "c", "3"),
    ("XGROUP", "CREATE", "s", "g", "0"), ("XGROUP", "CREATE", "s", "f", "0", "ENTRIESREAD", "0"),
    ("XREADGROUP", "GROUP", "g", "bob", "COUNT", "2", "STREAMS", "s", ">"),
    ("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"),
    ("XREADGROUP", "GROUP", "f", "carol", "COUNT", "1", "STREAMS", "s", ">"),
    # JUSTID claims keep the delivery count, FORCE makes an entry delivered once
    ("XCLAIM", "s", "g", "alice", "0", "1-1", "JUSTID"), ("XCLAIM", "s", "g", "bob", "0", "2-1"),
    ("XCLAIM", "s", "f", "dan", "0", "2-1", "FORCE", "JUSTID"),
    ("XCLAIM", "s", "f", "dan", "0", "3-1", "FORCE"),
    ("XAUTOCLAIM", "s", "g", "erin", "0", "0", "COUNT", "1", "JUSTID"),
    ("XAUTOCLAIM", "s", "f", "erin", "0", "0", "COUNT", "1"),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_xinfo_stream_full_matches_redis(anynode, redis_server, proto):  # noqa: F811
    outs = []
    for port in (anynode.resp_port, redis_server):
        with RawResp(port) as c:
            if proto == 3:
                c.cmd("HELLO", "3")
            for cmd in FULL:
                c.cmd(*cmd)
            outs.append([_mask_times(c.cmd("XINFO", "STREAM", "s", "FULL", *extra))
                         for extra in ((), ("COUNT", "1"), ("COUNT", "0"), ("COUNT", "-5"))])
    assert outs[0] == outs[1]
    full = outs[0][0]
    if isinstance(full, list):
        full = dict(zip(full[::2], full[1::2]))
    assert full[b"length"] == 3
