"""Redis protocol: FUNCTION DUMP and FUNCTION RESTORE (issue 13).

The payload is Redis 7.0's (per library the opcode 245 and its code as an
RDB string, then the RDB version and a CRC-64), so a library DUMPed by
redis-server RESTOREs into cairn and the reverse. Compared byte for byte
with Debian's redis-server: a one-library DUMP; RESTORE's policies
(APPEND refuses a library that exists, REPLACE replaces it but refuses a
function name another library keeps, FLUSH starts from none) and its
errors (policy, arity, checksum, a payload of a key's DUMP, a code that
does not compile, a library twice). A RESTORE is one log entry: applied
whole or not at all, and through a follower it reaches every node."""
import pytest

from resp_helpers import RawResp, anynode  # noqa: F401
from test_cluster import leader_of, make_cluster
from test_resp_hashes import redis_server  # noqa: F401

LIB1 = "#!lua name=lib1\nredis.register_function('f1', function() return 1 end)"
LIB2 = "#!lua name=lib2\nredis.register_function('f2', function() return 2 end)"
OTHER = "#!lua name=other\nredis.register_function('f1', function() return 9 end)"
LIB1_V2 = "#!lua name=lib1\nredis.register_function('f1', function() return 11 end)"
BAD = "#!lua name=bad\nthis is not lua"


def _frame(body):
    """A payload around body with a right footer (version 10, CRC-64 as
    Redis computes it: Jones polynomial, reflected)."""
    poly, crc = 0x95AC9329AC4BC9B5, 0
    data = body + b"\x0a\x00"
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (poly if crc & 1 else 0)
    return data + crc.to_bytes(8, "little")


def _rdb_string(s):
    s = s.encode()
    assert len(s) < 16384
    return bytes([0x40 | (len(s) >> 8), len(s) & 0xFF]) + s


def _script(port, proto):
    """Each step's raw reply, on a server with no libraries at first."""
    out = []
    with RawResp(port) as c:
        if proto == 3:
            c.cmd("HELLO", "3")
        step = lambda *a: out.append(c.raw_full_reply(*a))  # noqa: E731
        step("FUNCTION", "FLUSH")
        step("FUNCTION", "DUMP")  # no library: the footer alone
        step("FUNCTION", "LOAD", LIB1)
        one = c.cmd("FUNCTION", "DUMP")
        out.append(one)
        step("FUNCTION", "RESTORE", one)
        step("FUNCTION", "RESTORE", one, "APPEND")
        step("FUNCTION", "RESTORE", one, "bogus")
        step("FUNCTION", "RESTORE", one, "FLUSH", "x")
        step("FUNCTION", "RESTORE")
        step("FUNCTION", "DUMP", "x")
        step("FUNCTION", "RESTORE", b"garbage")
        step("FUNCTION", "RESTORE", one[:-1] + b"x")
        c.cmd("SET", "k", "v")
        step("FUNCTION", "RESTORE", c.cmd("DUMP", "k"))
        step("FUNCTION", "RESTORE", _frame(b"\xf5" + _rdb_string(BAD)))
        step("FUNCTION", "RESTORE", _frame(b"\xf5" + _rdb_string(LIB2) * 2))
        step("FUNCTION", "RESTORE", _frame(b"\xf5" + _rdb_string(LIB2) + b"\xf5" +
                                           _rdb_string(OTHER.replace("other", "o2"))))
        step("FUNCTION", "RESTORE", _frame(b"\xf5"))
        step("FCALL", "f2", "0")  # none of those went in
        # REPLACE: the library is replaced; a function another library has refuses all
        step("FUNCTION", "LOAD", "REPLACE", LIB1_V2)
        step("FCALL", "f1", "0")
        step("FUNCTION", "RESTORE", one, "REPLACE")
        step("FCALL", "f1", "0")
        step("FUNCTION", "DELETE", "lib1")
        step("FUNCTION", "LOAD", OTHER)
        step("FUNCTION", "RESTORE", one, "REPLACE")
        step("FCALL", "f1", "0")
        # FLUSH: only the payload's libraries are left
        step("FUNCTION", "RESTORE", one, "FLUSH")
        step("FCALL", "f1", "0")
        step("FUNCTION", "LIST")
        step("FUNCTION", "RESTORE", _frame(b""), "FLUSH")
        step("FUNCTION", "LIST")
        step("FUNCTION", "FLUSH")
    return out


@pytest.mark.parametrize("proto", [2, 3])
def test_function_dump_and_restore_match_redis(anynode, redis_server, proto):  # noqa: F811
    got = _script(anynode.resp_port, proto)
    want = _script(redis_server, proto)
    for i, (g, w) in enumerate(zip(got, want)):
        assert g == w, (i, g, w)
    assert len(got) == len(want)


def test_payloads_cross_between_redis_and_cairn(anynode, redis_server):  # noqa: F811
    """Two libraries (whose order in a DUMP is each server's own) go from
    redis-server to cairn and back."""
    with RawResp(redis_server) as r, RawResp(anynode.resp_port) as c:
        r.cmd("FUNCTION", "FLUSH")
        r.cmd("FUNCTION", "LOAD", LIB1)
        r.cmd("FUNCTION", "LOAD", LIB2)
        assert c.cmd("FUNCTION", "RESTORE", r.cmd("FUNCTION", "DUMP")) == "OK"
        assert (c.cmd("FCALL", "f1", "0"), c.cmd("FCALL", "f2", "0")) == (1, 2)
        c.cmd("FUNCTION", "LOAD", "REPLACE", LIB1_V2)
        assert r.cmd("FUNCTION", "RESTORE", c.cmd("FUNCTION", "DUMP"), "REPLACE") == "OK"
        assert (r.cmd("FCALL", "f1", "0"), r.cmd("FCALL", "f2", "0")) == (11, 2)
        r.cmd("FUNCTION", "FLUSH")


def test_a_library_that_unpacks_past_max_value_bytes_is_refused(make_node, redis_server):  # noqa: F811
    """redis-server compresses a long code (LZF) in its DUMP: a payload of a
    few hundred bytes that unpacks past --max-value-bytes is refused with
    the flag named, and nothing is restored."""
    code = "#!lua name=big\n" + "-- padding\n" * 2000 + "redis.register_function('big', " \
        "function() return 1 end)"
    with RawResp(redis_server) as r:
        r.cmd("FUNCTION", "FLUSH")
        assert r.cmd("FUNCTION", "LOAD", code) == b"big"
        payload = r.cmd("FUNCTION", "DUMP")
        r.cmd("FUNCTION", "FLUSH")
    assert len(payload) < 4096 < len(code), len(payload)
    node = make_node(extra_args=["--max-value-bytes", "8192"]).start()
    with RawResp(node.resp_port) as c:
        got = c.cmd("FUNCTION", "RESTORE", payload)
        assert got == "ERR a library's code is larger than --max-value-bytes (8192)", got
        assert c.cmd("FUNCTION", "LIST") == []


def test_the_release_candidates_format_is_refused(anynode):
    """Redis 7.0's release candidates wrote libraries as opcode 246 (name,
    engine, description, body); 7.0 GA translates them, cairn says no."""
    with RawResp(anynode.resp_port) as c:
        got = c.cmd("FUNCTION", "RESTORE", _frame(b"\xf6" + _rdb_string("lib") * 4))
        assert got == "ERR Pre-GA function format not supported", got
        assert c.cmd("FUNCTION", "LIST") == []


def test_a_restore_through_a_follower_reaches_every_node(make_node):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    follower = next(x for x in nodes if x is not leader)
    with RawResp(leader.resp_port) as c:
        c.cmd("FUNCTION", "LOAD", LIB1)
        payload = c.cmd("FUNCTION", "DUMP")
        c.cmd("FUNCTION", "LOAD", "REPLACE", LIB1_V2)
        c.cmd("FUNCTION", "LOAD", LIB2)
    with RawResp(follower.resp_port) as f:
        assert f.cmd("FUNCTION", "RESTORE", payload, "FLUSH") == "OK"
        assert f.cmd("FCALL", "f1", "0") == 1
    for x in nodes:  # linearizable reads: each node has applied the RESTORE
        with RawResp(x.resp_port) as r:
            assert r.cmd("FCALL", "f1", "0") == 1
            lst = r.cmd("FUNCTION", "LIST")
            assert [lib[1] for lib in lst] == [b"lib1"], (x.node_id, lst)
