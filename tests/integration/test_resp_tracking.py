"""Redis protocol: CLIENT TRACKING, server-assisted client-side caching
(issue 13): CLIENT TRACKING ON|OFF with REDIRECT, BCAST and PREFIX, OPTIN,
OPTOUT, NOLOOP; CLIENT CACHING, GETREDIR, TRACKINGINFO.

Compared frame for frame with Debian's redis-server 7.0: a RESP3 client
reads keys (strings, hashes, MGET, inside MULTI and a script), others
write them, and every `invalidate` push is where Redis puts it — after the
reply of the client's own write, once per key until the key is read
again, a null on FLUSHALL, none with NOLOOP for its own writes, none for
keys OPTIN did not ask for or OPTOUT excluded; BCAST tells every key
under a prefix, a message per prefix per command; a RESP2 client gets
them through REDIRECT as `__redis__:invalidate` messages. Then what cairn
adds: tracking through a follower is told of a write made through the
leader (every node applies every change), and tracking-table-max-keys
bounds the table (keys forgotten past it are told)."""
import time

from resp_helpers import RawResp, anynode  # noqa: F401
from test_cluster import leader_of, make_cluster
from test_resp_hashes import redis_server  # noqa: F401

PONGS = (b"+PONG\r\n", b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")


def _frame(c):
    parts = []
    c._raw_value(time.monotonic() + 10, parts)
    return b"".join(parts)


def _until_pong(c):
    """PING, and every frame before its answer."""
    c.send_cmd("PING")
    out = []
    while True:
        f = _frame(c)
        if f in PONGS:
            return out
        out.append(f)


def _step(c, cmd, ping=True):
    """Send cmd: its reply and the pushes around it, up to a PING's answer
    after it (a push a command causes for its own client follows its
    reply); inside MULTI, where PING would be queued, up to the reply."""
    c.send_cmd(*cmd)
    out = []
    while True:
        f = _frame(c)
        out.append(f)
        if not f.startswith(b">"):
            break
    return out + _until_pong(c) if ping else out


def _settle(c):
    """Pushes that arrive for c because of another connection's command
    (those are asynchronous in both servers): wait until c has them all."""
    time.sleep(0.05)
    return _until_pong(c)


def _script(port):
    """The choreography; returns every frame each step produced."""
    a, b, r, c2 = RawResp(port), RawResp(port), RawResp(port), RawResp(port)
    out = []
    try:
        a.cmd("HELLO", "3")
        c2.cmd("HELLO", "3")
        b.cmd("FLUSHALL")

        queued = [False]

        def A(*cmd):
            if cmd[0] == "MULTI":
                queued[0] = True
            if cmd[0] == "EXEC":
                queued[0] = False
            out.append(("a", cmd, _step(a, cmd, ping=not queued[0])))

        def B(*cmd):
            out.append(("b", cmd, b.raw_full_reply(*cmd)))
            out.append(("a", "pushes", _settle(a)))

        A("CLIENT", "TRACKINGINFO")
        A("CLIENT", "TRACKING", "ON")
        A("CLIENT", "TRACKINGINFO")
        A("CLIENT", "GETREDIR")
        A("GET", "k1")
        A("MGET", "k2", "k3")
        A("HGET", "h", "f")
        A("EXISTS", "k4")
        A("TTL", "k5")
        A("TYPE", "k6")
        A("XREAD", "STREAMS", "xs", "0")
        B("SET", "k1", "v")
        B("MSET", "k2", "x", "k3", "y")
        B("SET", "k1", "again")  # forgotten once told
        B("HSET", "h", "f", "1")
        B("MSET", "k4", "1", "k5", "1", "k6", "1")  # read by commands that look elsewhere
        B("XADD", "xs", "1-1", "f", "v")
        B("DEL", "nothing")  # no change, nothing to tell
        # its own write: the reply first, then the push
        A("GET", "k1")
        A("SET", "k1", "mine")
        A("GET", "k1")
        B("FLUSHALL")  # a null: every key
        B("FLUSHALL")  # also when there was nothing to flush
        A("SET", "w", "1")  # not read: nothing
        # MULTI and a script: the keys their commands read
        A("MULTI")
        A("GET", "m1")
        A("SET", "m1", "x")
        A("EXEC")
        A("EVAL", "redis.call('get', KEYS[1]) return redis.call('set', KEYS[1], 'y')", "1", "e1")
        A("GET", "e2")
        A("EVAL", "return redis.call('get', KEYS[1])", "1", "e3")
        B("MSET", "e2", "1", "e3", "1")
        # NOLOOP: its own writes are not told (and forget the key)
        A("CLIENT", "TRACKING", "ON", "NOLOOP")
        A("GET", "n1")
        A("SET", "n1", "x")
        B("SET", "n1", "y")
        A("CLIENT", "TRACKINGINFO")
        # OPTIN: only what follows CLIENT CACHING yes
        A("CLIENT", "TRACKING", "OFF")
        A("CLIENT", "TRACKING", "ON", "OPTIN")
        A("GET", "o1")
        A("CLIENT", "CACHING", "yes")
        A("CLIENT", "TRACKINGINFO")
        A("GET", "o2")
        A("GET", "o3")
        B("MSET", "o1", "1", "o2", "2", "o3", "3")
        # OPTOUT: all but what follows CLIENT CACHING no
        A("CLIENT", "TRACKING", "OFF")
        A("CLIENT", "TRACKING", "ON", "OPTOUT")
        A("CLIENT", "CACHING", "no")
        A("GET", "p1")
        A("GET", "p2")
        B("MSET", "p1", "1", "p2", "2")
        # errors, in Redis' order
        A("CLIENT", "CACHING", "yes")
        A("CLIENT", "CACHING", "maybe")
        A("CLIENT", "TRACKING", "ON", "OPTIN")
        A("CLIENT", "TRACKING", "ON", "BCAST")
        A("CLIENT", "TRACKING", "OFF")
        A("CLIENT", "CACHING", "no")
        A("CLIENT", "TRACKING")
        A("CLIENT", "TRACKING", "maybe")
        A("CLIENT", "TRACKING", "ON", "BOGUS")
        A("CLIENT", "TRACKING", "ON", "PREFIX", "x")
        A("CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT")
        A("CLIENT", "TRACKING", "ON", "BCAST", "OPTIN")
        A("CLIENT", "TRACKING", "ON", "REDIRECT", "999999")
        A("CLIENT", "TRACKING", "ON", "REDIRECT", "x")
        A("CLIENT", "TRACKINGINFO")
        A("CLIENT", "GETREDIR")
        # BCAST: every key under a prefix, a message per prefix per command
        A("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:", "PREFIX", "order:")
        A("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "use")
        A("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "order:", "PREFIX", "zz")
        A("CLIENT", "TRACKINGINFO")
        B("SET", "user:1", "x")
        B("MSET", "order:1", "x", "other", "y", "order:2", "z", "user:2", "w")
        A("MSET", "user:3", "mine", "zz9", "mine")
        A("CLIENT", "TRACKING", "ON", "BCAST")
        A("CLIENT", "TRACKINGINFO")
        B("SET", "anything", "1")
        A("CLIENT", "TRACKING", "OFF")
        A("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "q", "NOLOOP")
        A("SET", "q1", "mine")
        B("SET", "q2", "theirs")
        A("CLIENT", "TRACKING", "OFF")
        # options between the prefixes
        A("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a:", "NOLOOP", "PREFIX", "b:")
        A("CLIENT", "TRACKINGINFO")
        A("CLIENT", "TRACKING", "OFF")
        # RESP2 through REDIRECT: __redis__:invalidate messages
        rid = r.cmd("CLIENT", "ID")
        out.append(("r", "subscribe", r.raw_full_reply("SUBSCRIBE", "__redis__:invalidate")))
        b.cmd("CLIENT", "TRACKING", "ON", "REDIRECT", str(rid))
        out.append(("b", "getredir", b.cmd("CLIENT", "GETREDIR") == rid))
        b.cmd("GET", "rk")
        c2.cmd("SET", "rk", "1")
        out.append(("r", "message", _settle(r)))
        c2.cmd("FLUSHALL")
        out.append(("r", "flush", _settle(r)))
        b.cmd("CLIENT", "TRACKING", "OFF")
        # a RESP3 client told its REDIRECT connection is gone
        x = RawResp(port)
        xid = x.cmd("CLIENT", "ID")
        c2.cmd("CLIENT", "TRACKING", "ON", "REDIRECT", str(xid))
        c2.cmd("GET", "gone")
        x.close()
        time.sleep(0.1)
        b.cmd("SET", "gone", "1")
        pushes = _settle(c2)
        out.append(("c2", "broken", [p.replace(str(xid).encode(), b"<id>") for p in pushes]))
        info = c2.cmd("CLIENT", "TRACKINGINFO")
        out.append(("c2", "info", sorted(info[b"flags"]) if isinstance(info, dict) else info))
    finally:
        for c in (a, b, r, c2):
            c.close()
    return out


def test_tracking_matches_redis(anynode, redis_server):  # noqa: F811  # noqa: F811
    got = _script(anynode.resp_port)
    want = _script(redis_server)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g == w, (g, w)


def test_a_follower_tells_its_client_of_a_write_through_the_leader(make_node):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    f1, f2 = [x for x in nodes if x is not leader]
    with RawResp(f1.resp_port) as t, RawResp(f2.resp_port) as bc, \
            RawResp(leader.resp_port) as w:
        t.cmd("HELLO", "3")
        bc.cmd("HELLO", "3")
        assert t.cmd("CLIENT", "TRACKING", "ON") == "OK"
        assert bc.cmd("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "cache:") == "OK"
        w.cmd("SET", "cache:a", "1")
        assert bc.read(timeout=10) == [b"invalidate", [b"cache:a"]]
        assert t.cmd("GET", "cache:a") == b"1"  # a linearizable read: remembered
        w.cmd("SET", "cache:a", "2")
        assert t.read(timeout=10) == [b"invalidate", [b"cache:a"]]
        assert bc.read(timeout=10) == [b"invalidate", [b"cache:a"]]
        # the key is told once: read it again to hear of the next change
        w.cmd("SET", "cache:a", "3")
        assert t.cmd("GET", "cache:a") == b"3"
        w.cmd("DEL", "cache:a")
        assert t.read(timeout=10) == [b"invalidate", [b"cache:a"]]
        # its own write through the follower (forwarded to the leader, applied
        # here): told right after the reply; with NOLOOP, not at all
        assert t.cmd("GET", "own") == None  # noqa: E711 (RESP3 null)
        t.send_cmd("SET", "own", "1")
        assert t.read(timeout=10) == "OK"
        assert t.read(timeout=10) == [b"invalidate", [b"own"]]
        assert t.cmd("CLIENT", "TRACKING", "ON", "NOLOOP") == "OK"
        assert t.cmd("GET", "own") == b"1"
        assert t.cmd("SET", "own", "2") == "OK"
        time.sleep(0.2)
        assert _until_pong(t) == []
        assert t.cmd("GET", "own") == b"2"
        w.cmd("SET", "own", "3")
        assert t.read(timeout=10) == [b"invalidate", [b"own"]]


def test_the_table_is_bounded_and_forgotten_keys_are_told(anynode):  # noqa: F811
    with RawResp(anynode.resp_port) as t, RawResp(anynode.resp_port) as c:
        t.cmd("HELLO", "3")
        assert c.cmd("CONFIG", "SET", "tracking-table-max-keys", "-1").startswith("ERR")
        assert c.cmd("CONFIG", "SET", "tracking-table-max-keys", "10") == "OK"
        assert c.cmd("CONFIG", "GET", "tracking-table-max-keys") == \
            [b"tracking-table-max-keys", b"10"]
        t.cmd("CLIENT", "TRACKING", "ON")
        for i in range(25):
            t.send_cmd("GET", f"key{i}")
        told, replies = [], 0
        deadline = time.monotonic() + 10
        while (replies < 25 or len(told) < 15) and time.monotonic() < deadline:
            v = t.read(timeout=10)
            if isinstance(v, list) and v and v[0] == b"invalidate":
                told += v[1]
            else:
                replies += 1
        time.sleep(0.2)
        assert _until_pong(t) == []  # and no more

        def stats():
            info = c.cmd("INFO", "stats").decode() if isinstance(
                c.cmd("INFO", "stats"), bytes) else c.cmd("INFO", "stats")
            return dict(line.split(":", 1) for line in info.splitlines() if ":" in line)

        assert int(stats()["tracking_total_keys"]) == 10
        assert len(told) == 15 and len(set(told)) == 15, told  # each forgotten key told once
        c.cmd("CONFIG", "SET", "tracking-table-max-keys", "1000000")
        c.cmd("FLUSHALL")
        assert t.read(timeout=10) == [b"invalidate", None]
        assert int(stats()["tracking_total_keys"]) == 0


def test_reset_turns_tracking_off(anynode):  # noqa: F811
    with RawResp(anynode.resp_port) as t, RawResp(anynode.resp_port) as w:
        t.cmd("HELLO", "3")
        t.cmd("CLIENT", "TRACKING", "ON", "BCAST")
        line = t.cmd("CLIENT", "INFO")
        line = line.decode() if isinstance(line, bytes) else str(line)
        assert " flags=tB " in line and " redir=0 " in line, line  # as Redis shows them
        assert t.cmd("RESET") == "RESET"
        t.cmd("HELLO", "3")
        assert list(t.cmd("CLIENT", "TRACKINGINFO")[b"flags"]) == [b"off"]
        w.cmd("SET", "k", "v")
        time.sleep(0.1)
        assert _until_pong(t) == []  # nothing told


def test_a_tracking_client_that_does_not_read_is_disconnected(make_node):
    """Invalidations are output like any other: a BCAST client that never
    reads is closed at --max-pending-output (counted) while invalidations
    are being written to it, and the node goes on."""
    from resp_helpers import metric_value, metrics

    n = make_node(persistence="none", extra_args=["--max-pending-output", "256k"]).start()
    slow = RawResp(n.resp_port)
    try:
        slow.cmd("HELLO", "3")
        slow.cmd("CLIENT", "TRACKING", "ON", "BCAST")
        key = "k" * 4000
        with RawResp(n.resp_port) as w:
            for i in range(1000):  # at most 16 MB of invalidations: past the limit
                for j in range(4):
                    w.send_cmd("SET", f"{key}{i}.{j}", "v")
                for _ in range(4):
                    w.read()
                if i % 50 == 49 and \
                        (metric_value(metrics(n), "cairn_output_overflow_total") or 0) >= 1:
                    break
            assert w.cmd("PING") == "PONG"
        closed, _ = slow.wait_closed(10)
        assert closed, "a tracking client that never read was not disconnected"
        assert (metric_value(metrics(n), "cairn_output_overflow_total") or 0) >= 1
    finally:
        slow.close()
