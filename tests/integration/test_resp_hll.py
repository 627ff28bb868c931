"""Redis protocol: HyperLogLog (issue 12): PFADD PFCOUNT PFMERGE, checked
against Debian's redis-server (the harness of test_resp_hashes.py): the
sketches' bytes (GET) after every kind of change, sparse and dense, the
estimates at every size up to 200,000 elements, merges, sketches copied
between the two servers with GET/SET, and the errors.

One difference is by design and tested as such: PFCOUNT is a read here, so
it does not store the cardinality in the sketch's header as Redis does;
the answers agree, a GET of the raw sketch after a PFCOUNT does not."""
import random

import pytest

from resp_helpers import RawResp, anynode, raw  # noqa: F401
from test_cluster import leader_of, make_cluster
from test_resp_hashes import assert_same, redis_server  # noqa: F401

BASIC = [
    ("PFADD", "h", "a", "b", "c"), ("GET", "h"), ("PFADD", "h", "a"), ("PFADD", "h"),
    ("PFADD", "new"), ("GET", "new"), ("EXISTS", "new"), ("PFADD", "h", "d", "e", "f", "g"),
    ("GET", "h"), ("PFCOUNT", "h"), ("PFCOUNT", "nokey"), ("PFCOUNT", "h", "nokey"),
    ("PFADD", "h2", "x", "y", "a"), ("PFCOUNT", "h", "h2"), ("PFMERGE", "m", "h", "h2"), ("GET", "m"),
    ("PFMERGE", "m", "h"), ("GET", "m"), ("PFMERGE", "m"), ("GET", "m"), ("PFMERGE", "empty"),
    ("GET", "empty"), ("PFMERGE", "h2", "h2"), ("GET", "h2"),
    ("SET", "str", "hello"), ("PFADD", "str", "a"), ("PFCOUNT", "str"), ("PFCOUNT", "h", "str"),
    ("PFMERGE", "str", "h"), ("PFMERGE", "m", "str"), ("SET", "fake", "HYLL\x02" + "\x00" * 20),
    ("PFADD", "fake", "a"), ("SET", "fake2", "HYLL\x00\x00\x00\x00" + "\x00" * 20),
    ("PFCOUNT", "fake2"), ("LPUSH", "lst", "a"), ("PFADD", "lst", "a"), ("PFCOUNT", "lst"),
    ("PFMERGE", "lst", "h"), ("PFMERGE", "m", "lst"), ("PFADD",), ("PFCOUNT",),
    # a sparse sketch whose opcodes do not cover the 16384 registers
    ("SET", "bad", "HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x7f\x00"),
    ("PFCOUNT", "bad"), ("PFADD", "bad", "a"), ("PFMERGE", "m", "bad"),
    ("COMMAND", "GETKEYS", "PFMERGE", "d", "s1", "s2"), ("COMMAND", "GETKEYS", "PFCOUNT", "a", "b"),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_hyperloglog_commands_match_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, BASIC, proto)


def test_sketch_bytes_and_estimates_match_redis_at_every_size(anynode, redis_server):  # noqa: F811
    """Adds in batches, the raw sketch compared after each: the sparse
    opcodes (split, merged), the move to dense (a value over 32, or past
    3000 bytes) and the estimate at sizes from 1 to 200,000."""
    rnd = random.Random(5)
    script = []
    n = 0
    for batch in [1, 1, 2, 5, 10, 30, 100, 300, 1000, 3000, 10000, 50000, 135551]:
        for k in range(0, batch, 2000):
            elems = [f"e{n + i}" for i in range(k, min(batch, k + 2000))]
            script.append(("PFADD", "big", *elems))
            script.append(("PFADD", "small", *rnd.sample(elems, min(len(elems), 3))))
        n += batch
        script.append(("GET", "big"))
        script.append(("GET", "small"))
        # counted on a copy: a PFCOUNT caches its answer in Redis' header
        # (not here), which the GETs above would show
        script.append(("PFMERGE", "copy", "big"))
        script.append(("PFCOUNT", "copy"))
        script.append(("PFCOUNT", "small", "big"))
    script.append(("PFMERGE", "both", "small", "big"))
    script.append(("GET", "both"))
    script.append(("PFMERGE", "small2", "small"))
    script.append(("GET", "small2"))
    assert_same(anynode.resp_port, redis_server, script, 2)


def test_hll_sparse_max_bytes_set_at_runtime_matches_redis(anynode, redis_server):  # noqa: F811
    """CONFIG SET hll-sparse-max-bytes (a replicated limit): a sparse sketch
    turns dense past the new size, byte for byte where Redis does."""
    elems = [f"e{i}" for i in range(400)]
    script = [("CONFIG", "SET", "hll-sparse-max-bytes", "x"),
              ("CONFIG", "SET", "hll-sparse-max-bytes", "-1"),
              ("CONFIG", "SET", "hll-sparse-max-bytes", "300"),
              ("CONFIG", "GET", "hll-sparse-max-bytes")]
    for i in range(0, len(elems), 20):
        # no PFCOUNT between: Redis caches its answer in the sketch's header
        script += [("PFADD", "h", *elems[i:i + 20]), ("GETRANGE", "h", "4", "4"), ("GET", "h")]
    script += [("CONFIG", "SET", "hll-sparse-max-bytes", "1kb"), ("PFADD", "h2", *elems[:200]),
               ("GET", "h2"), ("CONFIG", "SET", "hll-sparse-max-bytes", "0"),
               ("PFADD", "h3", "a"), ("GET", "h3"), ("PFMERGE", "h4", "h2"), ("GET", "h4"),
               ("PFCOUNT", "h"), ("PFCOUNT", "h2"), ("PFCOUNT", "h3"), ("PFCOUNT", "h4"),
               ("CONFIG", "SET", "hll-sparse-max-bytes", "3000")]
    assert_same(anynode.resp_port, redis_server, script, 2)
    with raw(anynode) as c:
        assert c.cmd("GETRANGE", "h", "4", "4") == b"\x00"  # dense: the limit was crossed


def test_sketches_move_between_redis_and_cairn(anynode, redis_server):  # noqa: F811
    with RawResp(redis_server) as r, raw(anynode) as c:
        r.cmd("PFADD", "x", *[f"r{i}" for i in range(5000)])
        r.cmd("PFADD", "y", *[f"r{i}" for i in range(20)])
        for key in ("x", "y"):
            c.cmd("SET", key, r.cmd("GET", key))
            assert c.cmd("PFCOUNT", key) == r.cmd("PFCOUNT", key)
            assert c.cmd("PFADD", key, "more", "again") == r.cmd("PFADD", key, "more", "again")
            ours, theirs = c.cmd("GET", key), r.cmd("GET", key)
            assert ours[:8] == theirs[:8] and ours[16:] == theirs[16:]  # all but the cache
        c.cmd("PFADD", "z", *[f"c{i}" for i in range(700)])
        r.cmd("SET", "z", c.cmd("GET", "z"))
        assert r.cmd("PFCOUNT", "z") == c.cmd("PFCOUNT", "z")


def test_pfcount_leaves_the_cached_cardinality_stale(anynode, redis_server):  # noqa: F811
    with RawResp(redis_server) as r, raw(anynode) as c:
        for s in (r, c):
            s.cmd("PFADD", "k", "a", "b")
            assert s.cmd("PFCOUNT", "k") == 2
        ours, theirs = c.cmd("GET", "k"), r.cmd("GET", "k")
        assert ours[15] & 0x80 and not theirs[15] & 0x80  # stale here, cached there
        assert ours[16:] == theirs[16:]


def test_sketches_on_every_node(make_node):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    follower = next(x for x in nodes if x is not leader)
    with RawResp(follower.resp_port) as c:
        assert c.cmd("PFADD", "visits", *[f"u{i}" for i in range(3000)]) == 1
        assert c.cmd("PFMERGE", "all", "visits") == "OK"
        want = c.cmd("PFCOUNT", "visits")
        assert abs(want - 3000) < 3000 * 0.05
    for x in nodes:
        with RawResp(x.resp_port) as c:
            assert c.cmd("PFCOUNT", "visits") == want
            assert c.cmd("PFCOUNT", "all") == want
