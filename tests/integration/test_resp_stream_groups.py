"""Redis protocol: streams' consumer groups (issue 13): XGROUP (CREATE with
MKSTREAM and ENTRIESREAD, SETID, DESTROY, CREATECONSUMER, DELCONSUMER),
XREADGROUP (>, history, COUNT, NOACK), XACK, XCLAIM (IDLE, TIME,
RETRYCOUNT, FORCE, JUSTID), XAUTOCLAIM, XPENDING and XINFO GROUPS/CONSUMERS,
byte for byte against Debian's redis-server 7.0 in RESP2 and RESP3 (the
answers that show idle times are compared with the times left out).

Then what cairn adds: a group's state is replicated, so a consumer that
dies has its pending entries claimed by another consumer through another
node after the leader is killed, and no entry is lost or delivered twice
to the group; groups survive a restart and reach a node by snapshot;
XREADGROUP inside MULTI and a script."""
import pytest

from conftest import wait_until
from resp_helpers import RawResp, anynode, client  # noqa: F401
from test_cluster import compact_the_log, leader_of, make_cluster
from test_resp_hashes import assert_same, redis_server  # noqa: F401

GROUPS = [
    ("XGROUP", "CREATE", "s", "g", "$"), ("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"),
    ("XGROUP", "CREATE", "s", "g", "$"), ("XGROUP", "CREATE", "s", "g2", "0", "ENTRIESREAD", "5"),
    ("XGROUP", "CREATE", "s", "g3", "bad"), ("XGROUP", "CREATE", "s", "g3", "$", "bad"),
    ("SET", "str", "x"), ("XGROUP", "CREATE", "str", "g", "$"), ("XGROUP", "CREATE", "s"),
    ("XGROUP", "SETID", "nokey", "g", "0"), ("XGROUP", "DESTROY", "nokey", "g"),
    ("XADD", "s", "1-1", "f", "v1"), ("XADD", "s", "2-1", "f", "v2"), ("XADD", "s", "3-1", "f", "v3"),
    ("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"),
    ("XREADGROUP", "GROUP", "g2", "alice", "COUNT", "2", "STREAMS", "s", ">"),
    ("XREADGROUP", "GROUP", "g2", "bob", "STREAMS", "s", ">"),
    ("XREADGROUP", "GROUP", "g2", "bob", "STREAMS", "s", ">"),
    ("XREADGROUP", "GROUP", "g2", "alice", "STREAMS", "s", "0"),
    ("XREADGROUP", "GROUP", "g2", "alice", "STREAMS", "s", "1-1"),
    ("XREADGROUP", "GROUP", "nog", "alice", "STREAMS", "s", ">"),
    ("XREADGROUP", "GROUP", "g2", "alice", "STREAMS", "nokey", ">"),
    ("XREADGROUP", "GROUP", "g2", "alice", "STREAMS", "str", ">"),
    ("XREADGROUP", "GROUP", "g2", "alice", "STREAMS", "s"),
    ("XREADGROUP", "GROUP", "g2", "alice", "STREAMS", "s", "$"),
    ("XREADGROUP", "GROUP", "g2", "alice", "STREAMS", "s", "x"),
    ("XREADGROUP", "GROUP", "g2", "alice", "STREAMS", "s", "s", ">"),
    ("XREADGROUP", "GROUP", "g2", "alice", "NOACK", "STREAMS", "s", ">"),
    ("XREADGROUP", "GRP", "g2", "alice", "STREAMS", "s", ">"),
    ("XPENDING", "s", "g2"), ("XPENDING", "s", "nog"), ("XPENDING", "nokey", "g"),
    ("XPENDING", "str", "g"), ("XPENDING", "s", "g2", "-", "+", "x"),
    ("XPENDING", "s", "g2", "bad", "+", "10"),
    ("XPENDING", "s", "g2", "IDLE", "100000", "-", "+", "10"),
    ("XACK", "s", "g2", "1-1", "9-9"), ("XACK", "s", "g2", "1-1"), ("XACK", "s", "nog", "1-1"),
    ("XACK", "nokey", "g", "1-1"), ("XACK", "s", "g2", "bad"), ("XPENDING", "s", "g2"),
    ("XGROUP", "CREATECONSUMER", "s", "g2", "carol"),
    ("XGROUP", "CREATECONSUMER", "s", "g2", "carol"),
    ("XGROUP", "CREATECONSUMER", "s", "nog", "carol"),
    ("XGROUP", "DELCONSUMER", "s", "g2", "alice"), ("XGROUP", "DELCONSUMER", "s", "g2", "nobody"),
    ("XPENDING", "s", "g2"),
    ("XGROUP", "SETID", "s", "g2", "0"), ("XGROUP", "SETID", "s", "nog", "0"),
    ("XGROUP", "SETID", "s", "g2", "$", "ENTRIESREAD", "3"),
    ("XGROUP", "DESTROY", "s", "g3"), ("XGROUP", "DESTROY", "s", "g"),
    ("XGROUP", "HELP"), ("XGROUP", "NOSUCH"), ("XINFO", "NOSUCH"),
    ("XDEL", "s", "2-1"), ("XREADGROUP", "GROUP", "g2", "bob", "STREAMS", "s", "0"),
    ("XCLAIM", "s", "g2", "carol", "0", "2-1", "3-1"),
    ("XCLAIM", "s", "g2", "carol", "0", "3-1", "JUSTID"),
    ("XCLAIM", "s", "g2", "carol", "3600000", "3-1"),
    ("XCLAIM", "s", "g2", "carol", "0", "3-1", "RETRYCOUNT", "7", "IDLE", "5000000"),
    ("XCLAIM", "s", "g2", "dave", "1000000", "3-1", "JUSTID"),
    ("XCLAIM", "s", "g2", "carol", "0", "1-1", "FORCE", "JUSTID"),
    ("XCLAIM", "s", "nog", "carol", "0", "1-1"), ("XCLAIM", "s", "g2", "carol", "x", "1-1"),
    ("XCLAIM", "s", "g2", "carol", "0", "1-1", "BOGUS"),
    ("XPENDING", "s", "g2"),
    ("XAUTOCLAIM", "s", "g2", "dave", "0", "0-0"),
    ("XAUTOCLAIM", "s", "g2", "erin", "0", "0-0", "COUNT", "1", "JUSTID"),
    ("XAUTOCLAIM", "s", "g2", "erin", "0", "0-0", "COUNT", "0"),
    ("XAUTOCLAIM", "s", "nog", "erin", "0", "0-0"), ("XPENDING", "s", "g2"),
    ("XADD", "s", "4-1", "f", "v4"), ("XADD", "s", "5-1", "f", "v5"),
    ("XGROUP", "CREATE", "s", "late", "0"), ("XINFO", "GROUPS", "s"),
    ("XREADGROUP", "GROUP", "late", "x", "COUNT", "1", "STREAMS", "s", ">"), ("XINFO", "GROUPS", "s"),
    ("XREADGROUP", "GROUP", "late", "x", "STREAMS", "s", ">"), ("XINFO", "GROUPS", "s"),
    ("XINFO", "GROUPS", "nokey"), ("XINFO", "CONSUMERS", "s", "nog"),
    # two streams at once; one without new entries is left out
    ("XADD", "t", "1-1", "a", "b"), ("XGROUP", "CREATE", "t", "g2", "0"),
    ("XREADGROUP", "GROUP", "g2", "zed", "STREAMS", "s", "t", ">", ">"),
    ("XREADGROUP", "GROUP", "g2", "zed", "STREAMS", "s", "t", ">", ">"),
    ("XREADGROUP", "GROUP", "g2", "zed", "STREAMS", "s", "t", "0", "0"),
    ("TYPE", "s"), ("COPY", "s", "s2"), ("XPENDING", "s2", "g2"),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_consumer_groups_match_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, GROUPS, proto)


def _consumers(port):
    with RawResp(port) as c:
        return [(x[1], x[3]) if isinstance(x, list) else x
                for x in c.cmd("XINFO", "CONSUMERS", "s", "g")]


def test_idle_times_and_consumers(anynode):
    with RawResp(anynode.resp_port) as c:
        c.cmd("XGROUP", "CREATE", "s", "g", "0", "MKSTREAM")
        c.cmd("XADD", "s", "1-1", "f", "v")
        c.cmd("XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">")
        pend = c.cmd("XPENDING", "s", "g", "-", "+", "10")
        assert pend[0][0] == b"1-1" and pend[0][1] == b"alice" and pend[0][3] == 1
        assert 0 <= pend[0][2] < 5000, pend
        info = c.cmd("XINFO", "CONSUMERS", "s", "g")
        assert info[0][1] == b"alice" and info[0][3] == 1 and 0 <= info[0][5] < 5000


BLOCKING = [
    ("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"),
    ("XREADGROUP", "GROUP", "g", "a", "BLOCK", "100", "STREAMS", "s", ">"),
    ("XREADGROUP", "GROUP", "g", "a", "BLOCK", "100", "STREAMS", "s", "0"),
    ("XREADGROUP", "GROUP", "g", "a", "BLOCK", "-1", "STREAMS", "s", ">"),
    ("XREADGROUP", "GROUP", "g", "a", "BLOCK", "x", "STREAMS", "s", ">"),
    ("XREADGROUP", "GROUP", "nog", "a", "BLOCK", "100", "STREAMS", "s", ">"),
    ("XADD", "s", "1-1", "f", "v"),
    ("XREADGROUP", "GROUP", "g", "a", "BLOCK", "100", "STREAMS", "s", ">"),
    ("MULTI",), ("XREADGROUP", "GROUP", "g", "a", "BLOCK", "0", "STREAMS", "s", ">"), ("EXEC",),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_xreadgroup_block_matches_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, BLOCKING, proto)


def test_blocked_consumers_are_served_on_every_node(make_node):
    """Readers blocked in XREADGROUP on a follower and on the leader, in two
    groups and twice in one group: one XADD serves one reader per group,
    the other reader of that group stays blocked until the next XADD."""
    import threading
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    f1 = [x for x in nodes if x is not leader][0]
    with RawResp(leader.resp_port) as c:
        c.cmd("XGROUP", "CREATE", "s", "g1", "$", "MKSTREAM")
        c.cmd("XGROUP", "CREATE", "s", "g2", "$")
    got = {}

    def reader(name, node, group):
        with RawResp(node.resp_port, timeout=30) as r:
            got[name] = r.cmd("XREADGROUP", "GROUP", group, name, "BLOCK", "20000",
                              "STREAMS", "s", ">")

    threads = [threading.Thread(target=reader, args=a) for a in
               (("a", f1, "g1"), ("b", leader, "g1"), ("c", f1, "g2"))]
    for t in threads:
        t.start()
    import time
    time.sleep(0.5)
    with RawResp(leader.resp_port) as c:
        c.cmd("XADD", "s", "1-1", "f", "v")
    wait_until(lambda: len(got) == 2, 10, 0.05, "one reader of each group to be served")
    assert "c" in got and got["c"][0][1][0][0] == b"1-1", got
    served = [k for k in ("a", "b") if k in got]
    assert len(served) == 1 and got[served[0]][0][1][0][0] == b"1-1", got
    with RawResp(leader.resp_port) as c:
        c.cmd("XADD", "s", "2-1", "f", "v")
    for t in threads:
        t.join(30)
    other = "b" if served[0] == "a" else "a"
    assert got[other][0][1][0][0] == b"2-1", got
    with RawResp(leader.resp_port) as c:
        p = c.cmd("XPENDING", "s", "g1")
        assert p[0] == 2, p


def test_pending_entries_survive_a_leader_kill_and_are_claimed(make_node):
    """Consumer A reads 20 entries through a follower and dies without
    acknowledging; the leader is killed; consumer B claims them through
    the other node (XAUTOCLAIM), acknowledges them, and every entry was
    delivered to the group and acknowledged exactly once."""
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    f1, f2 = [x for x in nodes if x is not leader]
    with RawResp(leader.resp_port) as c:
        assert c.cmd("XGROUP", "CREATE", "jobs", "workers", "$", "MKSTREAM") == "OK"
        for i in range(30):
            c.cmd("XADD", "jobs", f"{i + 1}-1", "n", str(i))
    with RawResp(f1.resp_port) as a:
        got = a.cmd("XREADGROUP", "GROUP", "workers", "A", "COUNT", "20", "STREAMS", "jobs", ">")
        assert len(got[0][1]) == 20
        # A acknowledges 5 of them, then "dies"
        assert a.cmd("XACK", "jobs", "workers", *[f"{i + 1}-1" for i in range(5)]) == 5
    leader.kill9()
    rest = [f1, f2]
    wait_until(lambda: len({x.status()["leader"] for x in rest}) == 1 and
               rest[0].status()["leader"] in {x.node_id for x in rest}, 20, 0.1,
               "a new leader among the two others")
    with RawResp(f2.resp_port) as b:
        assert b.cmd("XPENDING", "jobs", "workers")[0] == 15
        claimed = b.cmd("XAUTOCLAIM", "jobs", "workers", "B", "0", "0-0", "COUNT", "100")
        ids = [e[0] for e in claimed[1]]
        assert ids == [f"{i + 1}-1".encode() for i in range(5, 20)], ids
        fresh = b.cmd("XREADGROUP", "GROUP", "workers", "B", "STREAMS", "jobs", ">")
        new_ids = [e[0] for e in fresh[0][1]]
        assert new_ids == [f"{i + 1}-1".encode() for i in range(20, 30)], new_ids
        assert b.cmd("XACK", "jobs", "workers", *(ids + new_ids)) == 25
        assert b.cmd("XPENDING", "jobs", "workers")[0] == 0
        assert b.cmd("XREADGROUP", "GROUP", "workers", "B", "STREAMS", "jobs", ">") == None  # noqa: E711
    leader.start()
    for x in nodes:
        with RawResp(x.resp_port) as r:
            wait_until(lambda: r.cmd("XPENDING", "jobs", "workers")[0] == 0, 20, 0.1,
                       "every node to hold the group's state")


def test_groups_outlive_restarts_and_reach_a_node_by_snapshot(make_node):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    follower, other = [x for x in nodes if x is not leader]
    assert other.stop(timeout=30) == 0
    with RawResp(follower.resp_port) as c:
        c.cmd("XGROUP", "CREATE", "s", "g", "0", "MKSTREAM")
        c.cmd("XADD", "s", "1-1", "f", "v")
        c.cmd("XADD", "s", "2-1", "f", "v")
        c.cmd("XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "STREAMS", "s", ">")
    with RawResp(leader.resp_port) as c:
        compact_the_log(leader, lambda i: c.cmd("SET", f"k{i % 5}", str(i)))
    other.start(timeout=60)

    def caught_up():
        with RawResp(other.resp_port) as r:
            r.cmd("READONLY")
            return r.cmd("GET", "k4") == b"299"

    wait_until(caught_up, 30, 0.2, "the restarted node to catch up")
    for x in nodes:
        x.restart()
    leader_of(nodes)
    for x in nodes:
        with RawResp(x.resp_port) as r:
            p = r.cmd("XPENDING", "s", "g")
            assert p[0] == 1 and p[3] == [[b"alice", b"1"]], p
            g = r.cmd("XINFO", "GROUPS", "s")[0]
            assert g[7] == b"1-1" and g[9] == 1, g  # last-delivered-id, entries-read


def test_xreadgroup_in_multi_and_in_a_script(anynode):
    r = client(anynode)
    r.xgroup_create("s", "g", id="0", mkstream=True)
    r.xadd("s", {"f": "v"}, id="1-1")
    with r.pipeline() as p:
        p.xreadgroup("g", "c", {"s": ">"})
        p.xpending("s", "g")
        res = p.execute()
    assert res[0] == [[b"s", [(b"1-1", {b"f": b"v"})]]]
    assert res[1]["pending"] == 1
    r.xadd("s", {"f": "w"}, id="2-1")
    got = r.eval("local r = redis.call('xreadgroup', 'GROUP', 'g', 'c', 'STREAMS', KEYS[1], '>') "
                 "redis.call('xack', KEYS[1], 'g', r[1][2][1][1]) "
                 "return redis.call('xpending', KEYS[1], 'g')", 1, "s")
    assert got[0] == 1 and got[1] == b"1-1", got  # 2-1 read and acknowledged in the script


def test_dead_letter_recipe(anynode):
    """docs/resp.md's recipe: entries delivered more than twice move to a
    dead-letter stream (XPENDING, XCLAIM, then XADD + XACK in one MULTI);
    the others stay pending."""
    r = client(anynode)
    r.xgroup_create("jobs", "workers", id="0", mkstream=True)
    for i in range(4):
        r.xadd("jobs", {"n": str(i)}, id=f"{i + 1}-1")
    r.xreadgroup("workers", "w1", {"jobs": ">"})
    for _ in range(2):  # entries 1-1 and 2-1 are read again (history): 3 deliveries
        r.execute_command("XREADGROUP", "GROUP", "workers", "w1", "COUNT", "2",
                          "STREAMS", "jobs", "0")
    moved = []
    for ent in r.xpending_range("jobs", "workers", min="-", max="+", count=100):
        if ent["times_delivered"] <= 2:
            continue
        claimed = r.xclaim("jobs", "workers", "reaper", 0, [ent["message_id"]])
        for msg_id, fields in claimed:
            with r.pipeline() as p:
                p.xadd("jobs:dead", fields)
                p.xack("jobs", "workers", msg_id)
                p.execute()
            moved.append(msg_id)
    assert moved == [b"1-1", b"2-1"], moved
    assert [f[b"n"] for _, f in r.xrange("jobs:dead")] == [b"0", b"1"]
    pending = r.xpending("jobs", "workers")
    assert pending["pending"] == 2 and pending["min"] == b"3-1", pending


def test_xreadgroup_without_block_pipelines_as_a_write(anynode):
    """Without BLOCK, XREADGROUP is a write like XACK and pipelines like
    one (it is not held behind the one before it): 200 of them sent at
    once each deliver the next entry, in order, once."""
    with RawResp(anynode.resp_port) as c:
        for i in range(1, 201):
            c.send_cmd("XADD", "p", f"{i}-1", "f", str(i))
        for _ in range(200):
            c.read()
        c.cmd("XGROUP", "CREATE", "p", "g", "0")
        for _ in range(200):
            c.send_cmd("XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "p", ">")
        c.send_cmd("XPENDING", "p", "g")
        got = [c.read()[0][1][0][0] for _ in range(200)]
        assert got == [f"{i}-1".encode() for i in range(1, 201)]
        assert c.read()[0] == 200  # a read after them sees them all
