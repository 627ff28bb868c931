"""Redis protocol: transactions (issue 13): MULTI, EXEC, DISCARD, WATCH,
UNWATCH. Every script runs on Debian's redis-server and on cairnd (both
persistence modes) and the raw replies must be identical, in RESP2 and
RESP3: queue-time errors (EXECABORT), runtime errors per command, nested
MULTI, WATCH inside MULTI, a watched key changed by another client, by the
same client, by FLUSHALL, or by expiring; blocking pops that do not block
inside a transaction. On a 3-node cluster a transaction sent to a follower
reads its own writes between them, WATCH holds across nodes, contended
optimistic increments through every node lose no update, and transfers
between accounts keep their sum through a kill -9 of the leader: each
EXEC is one log entry, applied whole or not at all."""
import random
import re
import threading
import time

import pytest
import redis

from conftest import wait_until
from resp_helpers import ConnectionClosed, RawResp, anynode, client  # noqa: F401
from test_cluster import leader_of, make_cluster
from test_resp_hashes import assert_same, redis_server  # noqa: F401

BASIC = [
    ("MULTI",), ("SET", "a", "1"), ("INCR", "a"), ("GET", "a"), ("LPUSH", "l", "x", "y"),
    ("LRANGE", "l", "0", "-1"), ("HSET", "h", "f", "v"), ("HGETALL", "h"), ("EXEC",),
    ("EXEC",), ("DISCARD",),
    # an empty transaction, one of answers given at once
    ("MULTI",), ("EXEC",),
    ("MULTI",), ("PING",), ("ECHO", "hi"), ("PING", "x"), ("EXEC",),
    # nested MULTI and WATCH inside MULTI are refused without aborting
    ("MULTI",), ("MULTI",), ("WATCH", "a"), ("INCR", "a"), ("EXEC",),
    # queue-time errors abort the transaction
    ("MULTI",), ("SET", "x"), ("INCR", "a"), ("EXEC",), ("GET", "a"),
    ("MULTI",), ("NOSUCHCOMMAND", "a"), ("INCR", "a"), ("EXEC",), ("GET", "a"),
    ("MULTI",), ("GET",), ("EXEC",),
    # runtime errors stay per command
    ("MULTI",), ("SET", "s", "v"), ("LPUSH", "s", "x"), ("INCR", "s"), ("APPEND", "s", "w"),
    ("GET", "s"), ("SET", "k", "v", "EX", "nan"), ("SET", "k", "v", "EX", "0"), ("GET", "k"),
    ("EXEC",),
    # DISCARD
    ("MULTI",), ("SET", "a", "99"), ("DISCARD",), ("GET", "a"), ("EXEC",),
    # values written and read back between writes
    ("MULTI",), ("DEL", "a"), ("EXISTS", "a"), ("SET", "a", "10"), ("TYPE", "a"),
    ("INCRBYFLOAT", "a", "0.5"), ("GETSET", "a", "z"), ("GETDEL", "a"), ("EXISTS", "a"),
    ("SET", "g", "old"), ("SET", "g", "new", "GET"), ("STRLEN", "g"), ("EXEC",),
    ("MULTI",), ("ZADD", "z", "1", "a", "2", "b"), ("ZINCRBY", "z", "5", "a"),
    ("ZRANGE", "z", "0", "-1", "WITHSCORES"), ("SADD", "st", "3", "1", "2"),
    ("SMEMBERS", "st"), ("SCARD", "st"), ("OBJECT", "ENCODING", "st"),
    ("SADD", "st", "x"), ("SCARD", "st"), ("HINCRBY", "h", "n", "3"),
    ("HLEN", "h"), ("RPUSH", "l", "t"), ("LLEN", "l"), ("LPOP", "l"), ("EXEC",),
    # blocking pops do not block inside MULTI
    ("MULTI",), ("BLPOP", "empty", "0"), ("BRPOP", "l", "0"), ("BLMOVE", "l", "l2", "LEFT",
                                                                   "RIGHT", "0"),
    ("BZPOPMIN", "z", "0"), ("BZPOPMAX", "none", "0"), ("LRANGE", "l2", "0", "-1"), ("EXEC",),
    # arity of the commands themselves
    ("MULTI", "x"), ("EXEC", "x"), ("DISCARD", "x"), ("WATCH",), ("UNWATCH", "x"),
]

WATCHES = [
    ("SET", "a", "1"),
    # unchanged: runs
    ("WATCH", "a"), ("MULTI",), ("GET", "a"), ("INCR", "a"), ("EXEC",),
    # EXEC unwatched it: a write after that does not matter
    ("SET", "a", "5"), ("MULTI",), ("GET", "a"), ("EXEC",),
    # the same client's own write aborts it
    ("WATCH", "a"), ("SET", "a", "6"), ("MULTI",), ("INCR", "a"), ("EXEC",), ("GET", "a"),
    # an absent key that stays absent; one that appears
    ("WATCH", "nope"), ("MULTI",), ("SET", "other", "1"), ("EXEC",),
    ("WATCH", "nope"), ("SET", "nope", "1"), ("MULTI",), ("SET", "other", "2"), ("EXEC",),
    ("GET", "other"),
    # UNWATCH forgets; DISCARD unwatches
    ("WATCH", "a"), ("UNWATCH",), ("SET", "a", "7"), ("MULTI",), ("GET", "a"), ("EXEC",),
    ("WATCH", "a"), ("MULTI",), ("DISCARD",), ("SET", "a", "8"), ("MULTI",), ("GET", "a"),
    ("EXEC",),
    # a write that changes nothing the key holds still counts as a write
    ("WATCH", "a"), ("SET", "a", "8"), ("MULTI",), ("GET", "a"), ("EXEC",),
    # several keys, one changed
    ("WATCH", "a", "b", "c"), ("DEL", "c"), ("MULTI",), ("GET", "a"), ("EXEC",),
    ("SET", "c", "1"), ("WATCH", "a", "b", "c"), ("DEL", "c"), ("MULTI",), ("GET", "a"),
    ("EXEC",),
    # a watched key that is deleted by FLUSHALL, and a watch with a queue error
    ("WATCH", "a"), ("FLUSHALL",), ("MULTI",), ("SET", "a", "x"), ("EXEC",), ("EXISTS", "a"),
    ("SET", "a", "1"), ("WATCH", "a"), ("SET", "a", "2"), ("MULTI",), ("SET", "a"), ("EXEC",),
    # RESET leaves MULTI and unwatches
    ("WATCH", "a"), ("MULTI",), ("SET", "a", "3"), ("RESET",), ("EXEC",), ("GET", "a"),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_transactions_match_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, BASIC, proto)
    assert_same(anynode.resp_port, redis_server, WATCHES, proto)


def _expired_watch(port):
    """A watched key that expires before EXEC aborts it (Redis 6.0.9+);
    one already expired when watched does not."""
    out = []
    with RawResp(port) as c, RawResp(port) as other:
        c.cmd("SET", "e", "v", "PX", "300")
        out.append(c.cmd("WATCH", "e"))
        time.sleep(0.6)
        c.cmd("MULTI")
        c.cmd("SET", "x", "1")
        out.append(c.cmd("EXEC"))
        other.cmd("SET", "e2", "v", "PX", "100")
        time.sleep(0.3)
        out.append(c.cmd("WATCH", "e2"))
        c.cmd("MULTI")
        c.cmd("SET", "x", "2")
        out.append(c.cmd("EXEC"))
    return out


def test_a_watched_key_that_expires_aborts_like_redis(anynode, redis_server):  # noqa: F811
    got = _expired_watch(anynode.resp_port)
    assert got == _expired_watch(redis_server)
    assert got[1] == None and got[3] == ["OK"], got  # noqa: E711 (a RESP null)


def test_another_clients_write_aborts_with_watch_error(anynode):
    r, other = client(anynode), client(anynode)
    r.set("n", 1)
    with r.pipeline() as p:
        p.watch("n")
        v = int(p.get("n"))
        p.multi()
        p.set("n", v + 1)
        other.set("n", 50)
        with pytest.raises(redis.WatchError):
            p.execute()
    assert r.get("n") == b"50"
    # redis-py's transaction() helper retries until it goes through
    r.transaction(lambda p: p.multi() or p.incr("n"), "n")
    assert r.get("n") == b"51"


# Commands that change the connection run inside EXEC, in their place
# (Redis 7.0 queues them; only SHUTDOWN, SAVE, SYNC and PSYNC are refused).
# Each script starts on a fresh connection.
CONN_SCRIPTS = [
    [("MULTI",), ("SUBSCRIBE", "a"), ("SET", "x", "1"), ("EXEC",), ("PING",),
     ("SET", "x", "2")],
    [("MULTI",), ("AUTH", "foo"), ("EXEC",)],
    [("MULTI",), ("AUTH", "default", "nopass"), ("GET", "x"), ("EXEC",)],
    [("MULTI",), ("HELLO", "3"), ("HGETALL", "nokey"), ("GET", "nokey"), ("EXEC",), ("PING",),
     ("GET", "nokey")],
    [("MULTI",), ("SET", "h", "1"), ("HELLO", "2"), ("EXEC",)],
    [("HELLO", "3"), ("MULTI",), ("SUBSCRIBE", "a"), ("UNSUBSCRIBE", "a"), ("EXEC",),
     ("PING",)],
    [("HELLO", "3"), ("MULTI",), ("HELLO", "2"), ("HGETALL", "nokey"), ("EXEC",)],
    [("MULTI",), ("PSUBSCRIBE", "a*"), ("PUNSUBSCRIBE",), ("UNSUBSCRIBE",), ("EXEC",),
     ("PING",)],
    [("MULTI",), ("SSUBSCRIBE", "a"), ("SUNSUBSCRIBE", "a"), ("EXEC",)],
    [("MULTI",), ("HELLO", "4"), ("HELLO", "3", "NOSUCHOPTION"), ("EXEC",), ("GET", "nokey")],
    [("MULTI",), ("SHUTDOWN",), ("EXEC",)],
    # a transaction that does not run runs none of them either
    [("WATCH", "w"), ("SET", "w", "1"), ("MULTI",), ("SUBSCRIBE", "a"), ("HELLO", "3"),
     ("EXEC",), ("PING",), ("GET", "nokey")],
    [("MULTI",), ("SUBSCRIBE", "a"), ("SET", "k"), ("EXEC",), ("PING",)],
]


def _conn_replies(port, script):
    out = []
    with RawResp(port) as c:
        for cmd in script:
            r = c.raw_full_reply(*cmd)
            # HELLO's map names the server's version and the connection's id
            r = re.sub(rb"\$7\r\nversion\r\n\$\d+\r\n[0-9.]+\r\n", b"<version>", r)
            out.append(re.sub(rb"\$2\r\nid\r\n:\d+\r\n", b"<id>", r))
    return out


def test_connection_commands_inside_multi_match_redis(anynode, redis_server):  # noqa: F811
    for script in CONN_SCRIPTS:
        got = _conn_replies(anynode.resp_port, script)
        want = _conn_replies(redis_server, script)
        for cmd, g, w in zip(script, got, want):
            assert g == w, (script, cmd, g, w)


def test_a_subscribe_inside_multi_receives_messages(anynode):
    with RawResp(anynode.resp_port) as c, RawResp(anynode.resp_port) as pub:
        assert c.cmd("MULTI") == "OK"
        assert c.cmd("SUBSCRIBE", "news") == "QUEUED"
        assert c.cmd("INCR", "n") == "QUEUED"
        assert c.cmd("EXEC") == [[b"subscribe", b"news", 1], 1]
        assert pub.cmd("PUBLISH", "news", "hello") == 1
        assert c.read(timeout=5) == [b"message", b"news", b"hello"]


def test_queue_time_refusals_of_cairn(anynode):
    """SHUTDOWN cannot be queued (as in Redis); the transaction is then
    aborted, as with any refused command."""
    with RawResp(anynode.resp_port) as c:
        assert c.cmd("MULTI") == "OK"
        err = c.cmd("SHUTDOWN")
        assert str(err) == "ERR Command not allowed inside a transaction", err
        assert c.cmd("SET", "k", "v") == "QUEUED"
        assert str(c.cmd("EXEC")).startswith("EXECABORT"), "EXEC ran after a refused command"
        assert c.cmd("EXISTS", "k") == 0


def test_a_transaction_through_a_follower(make_node):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    f1, f2 = [x for x in nodes if x is not leader]
    with RawResp(f1.resp_port) as c:
        script = [("SET", "k", "1"), ("INCR", "k"), ("GET", "k"), ("RPUSH", "q", "a", "b"),
                  ("LPOP", "q"), ("LRANGE", "q", "0", "-1"), ("GET", "nope"), ("DBSIZE",)]
        assert c.cmd("MULTI") == "OK"
        for cmd in script:
            assert c.cmd(*cmd) == "QUEUED"
        assert c.cmd("EXEC") == ["OK", 2, b"2", 2, b"a", [b"b"], None, 2]
        # read-only: a linearizable read, no log entry
        c.cmd("MULTI")
        c.cmd("GET", "k")
        c.cmd("LLEN", "q")
        assert c.cmd("EXEC") == [b"2", 1]
        # WATCH on a follower, the write through the leader: aborted
        assert c.cmd("WATCH", "k") == "OK"
        with RawResp(leader.resp_port) as w:
            assert w.cmd("SET", "k", "leader") == "OK"
        c.cmd("MULTI")
        c.cmd("SET", "k", "follower")
        assert c.cmd("EXEC") == None  # noqa: E711 (a RESP null)
        assert c.cmd("GET", "k") == b"leader"
    # and from the other follower's point of view, the same state
    with RawResp(f2.resp_port) as c:
        assert c.cmd("GET", "k") == b"leader"
        assert c.cmd("LRANGE", "q", "0", "-1") == [b"b"]


def _optimistic_incr(node, key, times, deadline):
    r = client(node)
    done = 0
    while done < times and time.monotonic() < deadline:
        try:
            with r.pipeline() as p:
                p.watch(key)
                v = int(p.get(key) or 0)
                p.multi()
                p.set(key, v + 1)
                p.execute()
                done += 1
        except redis.WatchError:
            continue
    return done


def test_contended_optimistic_increments_lose_nothing(make_node):
    """WATCH/GET/MULTI/SET/EXEC from clients on every node: every EXEC that
    went through added one, none was lost to a concurrent one."""
    nodes = make_cluster(make_node)
    deadline = time.monotonic() + 60
    counts = [0] * 6
    threads = []
    for i in range(6):
        node = nodes[i % 3]

        def run(i=i, node=node):
            counts[i] = _optimistic_incr(node, "ctr", 15, deadline)

        threads.append(threading.Thread(target=run))
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert sum(counts) == 6 * 15, counts
    assert client(leader_of(nodes)).get("ctr") == b"90"


ACCOUNTS = [f"acct{i}" for i in range(5)]


def _transfers(node, stop, tally):
    rnd = random.Random(node.node_id)
    while not stop.is_set():
        a, b = rnd.sample(ACCOUNTS, 2)
        n = rnd.randint(1, 20)
        try:
            with RawResp(node.resp_port, timeout=10) as c:
                while not stop.is_set():
                    c.cmd("MULTI")
                    c.cmd("DECRBY", a, str(n))
                    c.cmd("INCRBY", b, str(n))
                    r = c.cmd("EXEC")
                    tally["ok" if isinstance(r, list) else "failed"] += 1
        except (OSError, EOFError, ConnectionError, TimeoutError, ConnectionClosed):
            tally["conn"] += 1
            time.sleep(0.05)


def _sum_everywhere(nodes):
    sums = []
    for x in nodes:
        with RawResp(x.resp_port) as c:
            vals = c.cmd("MGET", *ACCOUNTS)
        sums.append(sum(int(v) for v in vals))
    return sums


def test_transfers_keep_their_sum_through_a_leader_kill(make_node):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    with RawResp(leader.resp_port) as c:
        assert c.cmd("MSET", *[x for a in ACCOUNTS for x in (a, "100")]) == "OK"
    stop = threading.Event()
    tally = {"ok": 0, "failed": 0, "conn": 0}
    threads = [threading.Thread(target=_transfers, args=(x, stop, tally)) for x in nodes]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: tally["ok"] >= 50, 30, 0.05, "transfers to run")
        leader.kill9()
        rest = [x for x in nodes if x is not leader]
        ids = {x.node_id for x in rest}
        wait_until(lambda: {x.status()["leader"] for x in rest} in ({i} for i in ids), 20, 0.1,
                   "a new leader among the two others")
        before = tally["ok"]
        wait_until(lambda: tally["ok"] >= before + 50, 30, 0.05,
                   "transfers to go on under the new leader")
        leader.start()
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    new = leader_of(nodes)
    with RawResp(new.resp_port) as c:
        c.cmd("SET", "barrier", "1")
    wait_until(lambda: _sum_everywhere(nodes) == [500, 500, 500], 20, 0.1,
               "every node to hold the accounts' total")


def test_transaction_limits(make_node):
    """At most 262,144 queued commands and 65,536 watched keys: past them a
    clear error, the transaction discarded, nothing applied."""
    n = make_node(persistence="none").start()
    with RawResp(n.resp_port, timeout=60) as c:
        keys = [f"w{i}" for i in range(65537)]
        err = c.cmd("WATCH", *keys)
        assert str(err) == "ERR too many watched keys (at most 65536)", err
        assert c.cmd("UNWATCH") == "OK"
        assert c.cmd("MULTI") == "OK"
        replies = c.pipeline([("SET", "k", "v")] * (1 << 18))
        assert all(r == "QUEUED" for r in replies)
        err = c.cmd("SET", "k", "v")
        assert str(err).startswith("ERR transaction too large: at most 262144 commands"), err
        assert str(c.cmd("EXEC")).startswith("EXECABORT"), "EXEC ran past the limit"
        assert c.cmd("EXISTS", "k") == 0
