"""Redis protocol: framing, ordering, limits and bad input (SPEC §3, §6).

Protocol errors answer "-ERR Protocol error: ..." and close; pipelines of
any depth answer in order (reads wait for earlier writes); inline
commands; binary safety; key/value limits answer -ERR and keep the
connection; slow readers and slow senders are disconnected; one keyspace
with the REST API (same values, same revisions); per-command metrics."""
import random
import socket
import time

import pytest
import requests

from conftest import kpath, wait_until
from resp_helpers import (ConnectionClosed, Err, NullType, anynode, client, encode, info,  # noqa: F401
                          metric_value, metrics, raw)


# --------------------------------------------------------------------------
# protocol errors
# --------------------------------------------------------------------------

BAD_INPUTS = [
    (b"*abc\r\n", "Protocol error: invalid multibulk length"),
    (b"*1\r\n$abc\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\n$-1\r\n", "Protocol error: invalid bulk length"),
    (b"*1\r\nxyz\r\n", "Protocol error: expected '$', got 'x'"),
    (b"*2\r\n$3\r\nGET\r\n:1\r\n", "Protocol error: expected '$', got ':'"),
    (b"*1\r\n$3\r\nGETXX\r\n", "Protocol error: invalid bulk length"),  # payload longer than said
    (b"*1048577\r\n", "Protocol error: invalid multibulk length"),  # over 1M arguments
    (b"*99999999999999999999999\r\n", "Protocol error: invalid multibulk length"),
    (b"*1\r\n$99999999999\r\n", "Protocol error: invalid bulk length"),  # over the bulk limit
    (b'SET "a b\r\n', "Protocol error: unbalanced quotes in request"),
    (b"SET 'a\r\n", "Protocol error: unbalanced quotes in request"),
    (b'SET "a"b c\r\n', "Protocol error: unbalanced quotes in request"),
]


@pytest.mark.parametrize("data,msg", BAD_INPUTS, ids=[repr(d[:20]) for d, _ in BAD_INPUTS])
def test_protocol_errors_close_the_connection(cache_node, data, msg):
    with raw(cache_node) as c:
        c.send(data)
        closed, got = c.wait_closed(10)
        assert closed, got
        assert got == f"-ERR {msg}\r\n".encode()
    # the server is fine
    assert client(cache_node).ping()


def test_protocol_error_after_pipelined_writes(anynode):
    """Replies to the commands before the garbage come first, in order."""
    with raw(anynode) as c:
        c.send(encode("SET", "p1", "1") + encode("INCR", "p1") + encode("GET", "p1") + b"*x\r\n"
               + encode("SET", "p1", "never"))
        closed, got = c.wait_closed(10)
        assert closed
        assert got == b"+OK\r\n:2\r\n$1\r\n2\r\n-ERR Protocol error: invalid multibulk length\r\n"
    assert client(anynode).get("p1") == b"2"


def test_too_big_inline_request(cache_node):
    with raw(cache_node) as c:
        c.send(b"SET a " + b"x" * (70 * 1024))
        closed, got = c.wait_closed(10)
        assert closed and got == b"-ERR Protocol error: too big inline request\r\n"


def test_protocol_error_is_counted(cache_node):
    with raw(cache_node) as c:
        c.send(b"*x\r\n")
        c.wait_closed(10)
    assert metric_value(metrics(cache_node), "cairn_resp_protocol_errors_total") >= 1


# --------------------------------------------------------------------------
# inline commands
# --------------------------------------------------------------------------

def test_inline_commands(anynode):
    with raw(anynode) as c:
        c.send(b"SET a b\r\n")
        assert c.read() == "OK"
        c.send(b"GET a\n")  # a bare LF ends the line too
        assert c.read() == b"b"
        c.send(b"\r\n\n  \r\nPING\r\n")  # blank lines are skipped
        assert c.read() == "PONG"
        c.send(b'SET "k e y" "v\\x41\\n"\r\n')
        assert c.read() == "OK"
        assert c.cmd("GET", "k e y") == b"vA\n"
        c.send(b"SET q 'it\\'s'\r\n")
        assert c.read() == "OK"
        assert c.cmd("GET", "q") == b"it's"
        c.send(b"get   a   \r\nEXISTS a q nope\r\n")
        assert c.read() == b"b"
        assert c.read() == 2
        c.send(b"nosuch x\r\n")
        assert c.read() == "ERR unknown command 'nosuch', with args beginning with: 'x' "


# --------------------------------------------------------------------------
# pipelining and ordering
# --------------------------------------------------------------------------

def _model_pipeline(n, seed):
    """n random commands over a few keys, and the replies a correct server
    gives, computed with a dict."""
    rnd = random.Random(seed)
    state, cmds, want = {}, [], []
    for i in range(n):
        k = f"k{rnd.randrange(8)}"
        op = rnd.choice(["set", "get", "incr", "del", "exists", "append", "ping", "mget", "bad",
                         "strlen", "getset"])
        if op == "set":
            v = f"v{i}"
            cmds.append(("SET", k, v))
            state[k] = v.encode()
            want.append("OK")
        elif op == "get":
            cmds.append(("GET", k))
            want.append(state.get(k))
        elif op == "incr":
            cmds.append(("INCR", k))
            cur = state.get(k, b"0")
            try:
                nv = int(cur)
                if cur != str(nv).encode():
                    raise ValueError
                state[k] = str(nv + 1).encode()
                want.append(nv + 1)
            except ValueError:
                want.append("ERR value is not an integer or out of range")
        elif op == "del":
            cmds.append(("DEL", k))
            want.append(1 if state.pop(k, None) is not None else 0)
        elif op == "exists":
            cmds.append(("EXISTS", k, k))
            want.append(2 if k in state else 0)
        elif op == "append":
            cmds.append(("APPEND", k, "x"))
            state[k] = state.get(k, b"") + b"x"
            want.append(len(state[k]))
        elif op == "ping":
            cmds.append(("PING",))
            want.append("PONG")
        elif op == "mget":
            cmds.append(("MGET", k, "k0"))
            want.append([state.get(k), state.get("k0")])
        elif op == "strlen":
            cmds.append(("STRLEN", k))
            want.append(len(state.get(k, b"")))
        elif op == "getset":
            cmds.append(("GETSET", k, "g"))
            want.append(state.get(k))
            state[k] = b"g"
        else:
            cmds.append(("NOPE", k))
            want.append(f"ERR unknown command 'NOPE', with args beginning with: '{k}' ")
    return cmds, want


@pytest.mark.timeout_s(120)
@pytest.mark.parametrize("proto", [2, 3])
def test_pipeline_of_1000_mixed_commands_in_order(anynode, proto):
    cmds, want = _model_pipeline(1000, seed=7 + proto)
    with raw(anynode, timeout=60) as c:
        if proto == 3:
            assert c.cmd("HELLO", "3")[b"proto"] == 3
        got = c.pipeline(cmds, timeout=60)
    nulls = [g for g in got if isinstance(g, NullType)]
    assert nulls and all(g.wire == (b"_" if proto == 3 else b"$-1") for g in nulls)
    for i, (cmd, g, w) in enumerate(zip(cmds, got, want)):
        assert g == w, f"reply {i} to {cmd}: got {g!r}, want {w!r}"


@pytest.mark.timeout_s(120)
def test_deep_pipeline_in_small_pieces(anynode):
    """The same pipeline trickled in odd-sized chunks parses identically."""
    cmds, want = _model_pipeline(400, seed=11)
    data = b"".join(encode(*cmd) for cmd in cmds)
    with raw(anynode, timeout=60) as c:
        i = 0
        rnd = random.Random(3)
        while i < len(data):
            n = rnd.randrange(1, 200)
            c.send(data[i:i + n])
            i += n
        got = [c.read(60) for _ in cmds]
    assert got == want


def test_read_your_writes_in_a_pipeline(anynode):
    with raw(anynode) as c:
        cmds = []
        for i in range(200):
            cmds += [("SET", "ryw", str(i)), ("GET", "ryw"), ("INCR", "ctr"), ("GET", "ctr")]
        got = c.pipeline(cmds)
    for i in range(200):
        assert got[4 * i:4 * i + 4] == ["OK", str(i).encode(), i + 1, str(i + 1).encode()]


def test_redis_py_pipeline(anynode):
    r = client(anynode)
    p = r.pipeline(transaction=False)
    for i in range(500):
        p.set(f"k{i}", i)
        p.get(f"k{i}")
        p.incr("n")
    out = p.execute()
    for i in range(500):
        assert out[3 * i] is True and out[3 * i + 1] == str(i).encode() and out[3 * i + 2] == i + 1


@pytest.mark.timeout_s(120)
def test_deep_write_pipeline_is_throttled_not_shed(make_node):
    """One client pipelining far more writes than --max-inflight is slowed
    down (backpressure), not answered -BUSY."""
    n = make_node(extra_args=["--max-inflight", "64"]).start()
    with raw(n, timeout=60) as c:
        got = c.pipeline([("SET", f"deep{i}", str(i)) for i in range(5000)], timeout=60)
    assert all(x == "OK" for x in got), {str(x) for x in got}
    assert client(n).get("deep4999") == b"4999"


@pytest.mark.timeout_s(120)
def test_overload_across_connections_is_shed_with_busy(make_node):
    n = make_node(extra_args=["--max-inflight", "1"]).start()
    busy = 0
    for _ in range(20):
        conns = [raw(n, timeout=30) for _ in range(16)]
        try:
            for i, c in enumerate(conns):
                c.send(b"".join(encode("SET", f"b{i}-{j}", "v") for j in range(20)))
            for c in conns:
                for _ in range(20):
                    r = c.read(30)
                    assert r in ("OK", "BUSY too many requests in flight, retry later"), r
                    busy += r != "OK"
        finally:
            for c in conns:
                c.close()
        if busy:
            break
    assert busy > 0
    text = metrics(n)
    assert metric_value(text, "cairn_resp_commands_total", command="set", outcome="busy") == busy
    assert client(n).ping()


def test_many_connections_interleaved(anynode):
    conns = [raw(anynode) for _ in range(20)]
    try:
        for i, c in enumerate(conns):
            c.send(encode("SET", f"c{i}", str(i)) + encode("INCR", "shared") + encode("GET", f"c{i}"))
        for i, c in enumerate(conns):
            assert c.read() == "OK"
            assert isinstance(c.read(), int)
            assert c.read() == str(i).encode()
    finally:
        for c in conns:
            c.close()
    assert client(anynode).get("shared") == b"20"


# --------------------------------------------------------------------------
# binary safety, sizes and limits
# --------------------------------------------------------------------------

def test_binary_safe_keys_and_values(anynode):
    r = client(anynode)
    every = bytes(range(256))
    r.set(every, every[::-1])
    assert r.get(every) == every[::-1]
    assert r.strlen(every) == 256
    assert r.exists(every) == 1
    assert every in r.keys("*")
    r.set(b"*?[", b"x")
    assert r.keys(b"\\*\\?\\[") == [b"*?["]


def test_big_values(anynode):
    r = client(anynode, socket_timeout=30)
    big = bytes(random.Random(1).randrange(256) for _ in range(1 << 20))  # exactly the limit
    assert r.set("big", big) is True
    assert r.get("big") == big
    assert r.strlen("big") == 1 << 20
    assert r.getrange("big", 1000, 1999) == big[1000:2000]
    with raw(anynode) as c:
        # one byte over: a clear error, the connection stays usable
        assert c.cmd("SET", "big2", b"x" * ((1 << 20) + 1)) == "ERR value too large (max 1048576 bytes)"
        assert c.cmd("APPEND", "big", "x") == "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
        assert c.cmd("GETSET", "big2", b"x" * ((1 << 20) + 1)) == "ERR value too large (max 1048576 bytes)"
        assert c.cmd("MSET", "a", "1", "b", b"x" * ((1 << 20) + 5)) == "ERR value too large (max 1048576 bytes)"
        assert c.cmd("PING") == "PONG"
        assert c.cmd("EXISTS", "big2", "a") == 0
    with raw(anynode) as c:
        # far over: the bulk itself is refused by the parser, and the connection closed
        c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n" % (4 << 20))
        closed, got = c.wait_closed(10)
        assert closed and got == b"-ERR Protocol error: invalid bulk length\r\n"


def test_key_limit(anynode):
    ok_key, long_key = b"k" * 4096, b"k" * 4097
    with raw(anynode) as c:
        assert c.cmd("SET", ok_key, "v") == "OK"
        assert c.cmd("GET", ok_key) == b"v"
        err = "ERR key too large (max 4096 bytes)"
        assert c.cmd("SET", long_key, "v") == err
        assert c.cmd("GET", long_key) == err
        assert c.cmd("MSET", "a", "1", long_key, "2") == err
        assert c.cmd("DEL", "a", long_key) == err
        assert c.cmd("RENAME", ok_key, long_key) == err
        assert c.cmd("PING") == "PONG"
        assert c.cmd("EXISTS", "a") == 0


def test_configured_limits(make_node):
    n = make_node(persistence="none", extra_args=["--max-key-bytes", "10", "--max-value-bytes", "20"]).start()
    with raw(n) as c:
        assert c.cmd("SET", "k" * 10, "v" * 20) == "OK"
        assert c.cmd("SET", "k" * 11, "v") == "ERR key too large (max 10 bytes)"
        assert c.cmd("SET", "k", "v" * 21) == "ERR value too large (max 20 bytes)"
        assert c.cmd("SETRANGE", "k", "19", "xx") == \
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
        assert c.cmd("PING") == "PONG"
    with raw(n) as c:
        # bulks up to the limit plus a 64 KiB margin still get the clean error
        assert c.cmd("SET", "k", b"v" * 60000) == "ERR value too large (max 20 bytes)"
        c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n" % (20 + 64 * 1024 + 1))
        closed, got = c.wait_closed(10)
        assert closed and got == b"-ERR Protocol error: invalid bulk length\r\n"


@pytest.mark.timeout_s(120)
def test_many_arguments(anynode):
    r = client(anynode, socket_timeout=60)
    keys = [f"m{i}" for i in range(100000)]
    with raw(anynode, timeout=60) as c:
        assert c.cmd("MSET", *[x for k in keys for x in (k, "1")]) == "OK"
        assert c.cmd("EXISTS", *keys) == 100000
        assert c.cmd("DEL", *keys) == 100000
    assert r.dbsize() == 0


def test_slow_reader_is_disconnected(make_node):
    n = make_node(persistence="none", extra_args=["--max-pending-output", "1m"]).start()
    r = client(n)
    r.set("v", b"x" * 100000)
    s = socket.create_connection(("127.0.0.1", n.resp_port), timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    req = encode("GET", "v") * 50
    deadline = time.monotonic() + 30
    closed = False
    try:
        while time.monotonic() < deadline:
            s.sendall(req)  # never reads a reply
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        closed = True
    finally:
        s.close()
    assert closed, "the server kept a client that does not read"
    assert metric_value(metrics(n), "cairn_output_overflow_total") >= 1
    assert r.get("v") == b"x" * 100000  # others unaffected


def test_a_reply_over_the_output_limit_is_an_error(make_node):
    """LRANGE 0 -1 of a list bigger than --max-pending-output: a clear error
    instead of a disconnect, and the connection goes on (Redis sets no such
    limit for normal clients; cairn bounds every client's output)."""
    n = make_node(persistence="none", extra_args=["--max-pending-output", "1m"]).start()
    with raw(n, timeout=30) as c:
        for i in range(0, 20000, 1000):
            c.pipeline([("RPUSH", "l", "x" * 100) for _ in range(1000)])
        got = c.pipeline([("LRANGE", "l", "0", "-1"), ("LRANGE", "l", "0", "1"), ("PING",)])
        assert isinstance(got[0], Err), got[0]
        assert got[0].startswith("ERR reply too large: ") and "--max-pending-output" in got[0], got[0]
        assert got[1] == [b"x" * 100] * 2 and got[2] == "PONG"
    assert metric_value(metrics(n), "cairn_resp_replies_too_large_total") == 1


def test_trickling_client_times_out(make_node):
    n = make_node(persistence="none", extra_args=["--client-timeout", "1"]).start()
    with raw(n) as c:
        c.send(b"*2\r\n$3\r\nGET\r\n")  # never completed
        closed, _ = c.wait_closed(10)
        assert closed
    with raw(n) as c:  # a complete command is not affected
        assert c.cmd("PING") == "PONG"
        time.sleep(1.5)
        assert c.cmd("PING") == "PONG"


def _client_slot(n):
    """A connection the server accepted as a client, or None."""
    c = raw(n)
    try:
        if c.cmd("PING") == "PONG":
            return c
    except (ConnectionClosed, OSError):
        pass
    c.close()
    return None


def test_max_clients(make_node):
    n = make_node(persistence="none", extra_args=["--max-clients", "3"]).start()
    # the harness's readiness probe may still hold a connection for a
    # moment: wait for three accepted clients rather than sleep
    n.drop_session()
    keep = []
    try:
        for _ in range(3):
            keep.append(wait_until(lambda: _client_slot(n), 10, what="a free client slot"))
        extra = raw(n)
        closed, got = extra.wait_closed(10)
        assert closed and got == b"-ERR max number of clients reached\r\n"
        extra.close()
        assert keep[0].cmd("PING") == "PONG"
    finally:
        for c in keep:
            c.close()


# --------------------------------------------------------------------------
# one keyspace with the REST API
# --------------------------------------------------------------------------

def test_resp_write_is_visible_over_http(anynode):
    r = client(anynode)
    assert r.set(b"cross/\x00key", b"\x00value\xff") is True
    rev = int(info(anynode, "replication")["cairn_revision"])
    h = anynode.get(b"cross/\x00key")
    assert h.status_code == 200 and h.content == b"\x00value\xff"
    assert h.headers["ETag"] == f'"{rev}"'
    assert int(h.headers["X-Cairn-Revision"]) == rev
    assert h.headers["X-Cairn-Version"] == "1"
    r.set(b"cross/\x00key", b"second", ex=100)
    h = anynode.get(b"cross/\x00key")
    assert h.content == b"second" and h.headers["X-Cairn-Version"] == "2"
    assert int(h.headers["X-Cairn-Revision"]) == rev + 1
    assert 99 <= int(h.headers["X-Cairn-TTL"]) <= 100
    r.delete(b"cross/\x00key")
    assert anynode.get(b"cross/\x00key").status_code == 404


def test_http_write_is_visible_over_resp(anynode):
    p = anynode.put("from-http", b"\x01\x02 v", params={"ttl": "50"})
    assert p.status_code == 201
    rev = int(p.headers["X-Cairn-Revision"])
    r = client(anynode)
    assert r.get("from-http") == b"\x01\x02 v"
    assert 49 <= r.ttl("from-http") <= 50
    assert int(info(anynode, "replication")["cairn_revision"]) == rev
    assert r.incr("ctr") == 1
    p = anynode.put("ctr", b"41")
    assert p.status_code == 201
    assert r.incr("ctr") == 42
    assert anynode.get("ctr").content == b"42"
    assert anynode.delete("from-http").status_code == 200
    assert r.exists("from-http") == 0
    assert r.keys("*") == [b"ctr"]


# --------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------

def test_command_metrics(anynode):
    r = client(anynode)
    for _ in range(5):
        r.set("m", "1")
        r.get("m")
    with raw(anynode) as c:
        c.cmd("SET", "m", "v", "EX", "0")
        c.cmd("NOSUCH")
    text = metrics(anynode)
    assert metric_value(text, "cairn_resp_commands_total", command="set", outcome="ok") >= 5
    assert metric_value(text, "cairn_resp_commands_total", command="get", outcome="ok") >= 5
    assert metric_value(text, "cairn_resp_commands_total", command="set", outcome="error") >= 1
    assert metric_value(text, "cairn_resp_commands_total", command="unknown", outcome="error") >= 1
    assert metric_value(text, "cairn_resp_command_duration_seconds_count", command="get") >= 5
    assert metric_value(text, "cairn_resp_command_duration_seconds_bucket", command="get", le="+Inf") >= 5
    assert metric_value(text, "cairn_evicted_keys_total") == 0


# --------------------------------------------------------------------------
# durability of acknowledged writes
# --------------------------------------------------------------------------

def test_acknowledged_writes_survive_kill9(node):
    """A reply comes only after the write is committed: every acknowledged
    write of a pipeline is there after a crash."""
    with raw(node, timeout=30) as c:
        got = c.pipeline([("SET", f"d{i}", str(i)) for i in range(300)] + [("INCRBY", "sum", "7")],
                         timeout=30)
    assert all(x == "OK" for x in got[:-1]) and got[-1] == 7
    node.kill9()
    node.start()
    r = client(node)
    assert r.mget([f"d{i}" for i in range(300)]) == [str(i).encode() for i in range(300)]
    assert r.get("sum") == b"7"
