"""CLUSTER with one Raft group (issue 14, step 1 of docs/design.md's
partitioning plan): cairn answers cluster-aware clients as Redis 7.0
without cluster-enabled does (every reply below equal to redis-server's,
RESP2 and RESP3), except CLUSTER KEYSLOT, which answers the slot Redis
Cluster would use: checked against redis-py's own key_slot over random
keys, hash tags and binary bytes included."""
import random

import pytest
from redis.crc import key_slot

from resp_helpers import RawResp, anynode  # noqa: F401
from test_resp_hashes import assert_same, redis_server  # noqa: F401

SAME_AS_STANDALONE_REDIS = [
    ("CLUSTER", "INFO"), ("CLUSTER", "MYID"), ("CLUSTER", "NODES"), ("CLUSTER", "SLOTS"),
    ("CLUSTER", "SHARDS"), ("CLUSTER", "COUNTKEYSINSLOT", "1"),
    ("CLUSTER", "GETKEYSINSLOT", "1", "10"), ("CLUSTER", "SETSLOT", "1", "NODE", "x"),
    ("cluster", "info"), ("CLUSTER",), ("CLUSTER", "NOSUCH"), ("CLUSTER", "KEYSLOT"),
    ("CLUSTER", "KEYSLOT", "a", "b"), ("CLUSTER", "INFO", "x"),
    ("CLUSTER", "GETKEYSINSLOT", "1"), ("ASKING",), ("ASKING", "x"),
]
# (READONLY and READWRITE are cairn's own already: stale reads on a
# follower, docs/resp.md; Redis without cluster-enabled refuses them.)


@pytest.mark.parametrize("proto", [2, 3])
def test_cluster_commands_answer_as_standalone_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, SAME_AS_STANDALONE_REDIS, proto)


def test_keyslot_is_redis_clusters(anynode):
    rnd = random.Random(1414)
    keys = [b"foo", b"somekey", b"foo{hash_tag}", b"{user1000}.following", b"foo{}{bar}",
            b"foo{{bar}}zap", b"foo{bar}{zap}", b"{", b"}", b"{}", b"", b"\x00{\xff}\x00"]
    for _ in range(1500):
        n = rnd.randrange(0, 24)
        keys.append(bytes(rnd.choice(b"ab{}\x00\xff{}") if rnd.random() < 0.3
                          else rnd.randrange(256) for _ in range(n)))
    with RawResp(anynode.resp_port) as c:
        for k in keys:
            c.send_cmd("CLUSTER", "KEYSLOT", k)
        got = [c.read(timeout=10) for _ in keys]
    want = [key_slot(k) for k in keys]
    assert got == want
    assert got[0] == 12182 and got[1] == 11058 and got[2] == 2515
