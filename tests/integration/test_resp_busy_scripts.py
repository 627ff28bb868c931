"""Redis protocol: scripts that run long (issue 13). Past
busy-reply-threshold (lua-time-limit) a script gives the loop a turn
every few milliseconds, as Redis does: other clients get Redis' BUSY
error for all but the commands Redis lets through, SCRIPT KILL and
FUNCTION KILL end the script, FUNCTION STATS names it. The replies are
compared with Debian's redis-server 7.0 byte for byte.

Then what is cairn's own: the loop keeps serving HTTP and Raft while a
script is busy (no election on a cluster, a concurrent write makes the
script run again on the newer state), a killed script - even one that
wrote - leaves nothing applied, a client that leaves ends its script,
and a script that cannot yield (inside pcall, a metamethod, an
iterator) is stopped once it has not yielded for as long again as the
threshold. SHUTDOWN, which the BUSY error names, stops the node as
SIGTERM does, busy script or not."""
import time

import pytest

from resp_helpers import ConnectionClosed, Err, RawResp, anynode, client  # noqa: F401
from test_cluster import leader_of, make_cluster
from test_resp_hashes import redis_server  # noqa: F401
from conftest import wait_until

SPIN = "local i = 0 while true do i = i + 1 end"
LIBRARY = ("#!lua name=spinlib\n"
           "redis.register_function('spin', function(k, a) local i = 0 while true do i = i + 1 end end)\n"
           "redis.register_function{function_name='spin_ro', flags={'no-writes'},\n"
           "  callback=function(k, a) local i = 0 while true do i = i + 1 end end}\n")
# Commands both servers have, sent while a script is busy: refused with
# BUSY, or let through as Redis lets them through (AUTH, MULTI, DISCARD,
# WATCH, UNWATCH, RESET); EXEC is refused and ends the transaction.
PROBES = [
    ("PING",), ("GET", "x"), ("ECHO", "a"), ("AUTH", "a"), ("MULTI",), ("SET", "a", "1"),
    ("EXEC",), ("DISCARD",), ("MULTI",), ("DISCARD",), ("WATCH", "x"), ("UNWATCH",),
    ("SCRIPT", "LOAD", "return 1"), ("SCRIPT", "FLUSH"), ("SCRIPT", "EXISTS", "a"),
    ("FUNCTION", "LIST"), ("FUNCTION", "STATS"), ("FUNCTION", "KILL"), ("EVAL", "return 1", "0"),
    ("TIME",), ("DBSIZE",), ("CONFIG", "GET", "maxmemory"), ("SUBSCRIBE", "c"), ("WAIT", "0", "0"),
    ("SELECT", "0"), ("CLIENT", "ID"), ("INFO", "server"), ("READONLY",), ("RESET",),
]


def _set_threshold(port, ms):
    with RawResp(port) as c:
        assert c.cmd("CONFIG", "SET", "busy-reply-threshold", str(ms)) == "OK"


def _busy_session(port, spin_cmd, probes, kill_cmd):
    """spin_cmd on one connection; once the server answers BUSY, probes and
    kill_cmd on another; returns (probe replies, kill reply, what the
    spinning client got)."""
    _set_threshold(port, 100)
    spinner = RawResp(port, timeout=60)
    other = RawResp(port, timeout=30)
    try:
        spinner.send_cmd(*spin_cmd)
        # the first command waits for the loop's first turn, then is refused
        wait_until(lambda: str(other.cmd("PING")).startswith("BUSY"), 20, 0.02,
                   "the server to answer BUSY")
        replies = [other.cmd(*p) for p in probes]
        killed = other.cmd(*kill_cmd)
        got = spinner.read()
        return replies, killed, got
    finally:
        spinner.sock.close()
        other.sock.close()


def _normalized(v):
    """FUNCTION STATS' duration_ms is whatever it was."""
    if isinstance(v, list):
        out = [_normalized(x) for x in v]
        for i in range(len(out) - 1):
            if out[i] == b"duration_ms" and isinstance(out[i + 1], int):
                out[i + 1] = "<ms>"
        return out
    return v


def test_a_busy_script_is_answered_around_as_redis_does(anynode, redis_server):  # noqa: F811
    ours = _busy_session(anynode.resp_port, ("EVAL", SPIN, "0"), PROBES, ("SCRIPT", "KILL"))
    theirs = _busy_session(redis_server, ("EVAL", SPIN, "0"), PROBES, ("SCRIPT", "KILL"))
    for probe, a, b in zip(PROBES, ours[0], theirs[0]):
        assert a == b, (probe, a, b)
    assert ours[1] == theirs[1] == "OK"
    assert ours[2] == theirs[2], (ours[2], theirs[2])
    assert str(ours[2]).startswith("ERR Script killed by user with SCRIPT KILL..."), ours[2]
    with RawResp(anynode.resp_port) as c:
        assert c.cmd("PING") == "PONG"
        assert c.cmd("SCRIPT", "KILL") == Err("NOTBUSY No scripts in execution right now.")
        assert c.cmd("FUNCTION", "KILL") == Err("NOTBUSY No scripts in execution right now.")


@pytest.mark.parametrize("name", ["spin", "spin_ro"])
def test_a_busy_function_is_answered_around_as_redis_does(anynode, redis_server, name):  # noqa: F811
    probes = [("PING",), ("FUNCTION", "STATS"), ("SCRIPT", "KILL"), ("EVAL", "return 1", "0")]
    out = []
    for port in (anynode.resp_port, redis_server):
        with RawResp(port) as c:
            assert c.cmd("FUNCTION", "LOAD", "REPLACE", LIBRARY) == b"spinlib"
        replies, killed, got = _busy_session(port, ("FCALL", name, "0"), probes,
                                             ("FUNCTION", "KILL"))
        out.append(([_normalized(r) for r in replies], killed, got))
    assert out[0] == out[1], out
    stats = out[0][0][1]
    assert stats[0] == b"running_script" and stats[1][:4] == [b"name", name.encode(), b"command",
                                                             [b"FCALL", name.encode(), b"0"]], stats
    assert out[0][2] == Err(f"ERR Script killed by user with SCRIPT KILL... script: {name}, "
                            f"on @user_function:{2 if name == 'spin' else 4}.")


def _spin_for(ms):
    """Lua that runs ms milliseconds by the clock, then goes on."""
    return ("local t = redis.call('time') "
            f"local stop = t[1] * 1000000 + t[2] + {ms * 1000} "
            "repeat t = redis.call('time') until t[1] * 1000000 + t[2] >= stop ")


def test_a_busy_script_that_ends_answers_and_its_writes_apply(anynode):
    """While it runs others are refused with BUSY, HTTP is still served; the
    script's answer and its write come when it ends."""
    port = anynode.resp_port
    _set_threshold(port, 100)
    src = _spin_for(800) + "redis.call('set', KEYS[1], 'done') return 'finished'"
    spinner = RawResp(port, timeout=60)
    other = RawResp(port, timeout=30)
    try:
        spinner.send_cmd("EVAL", src, "1", "busykey")
        wait_until(lambda: str(other.cmd("PING")).startswith("BUSY"), 20, 0.02, "BUSY")
        r = anynode.put("httpkey", b"v")  # the loop serves HTTP meanwhile
        assert r.status_code in (200, 201, 204), r.text
        assert str(other.cmd("GET", "busykey")).startswith("BUSY")
        assert spinner.read() == b"finished"
        assert other.cmd("GET", "busykey") == b"done"
        assert other.cmd("GET", "httpkey") == b"v"
    finally:
        spinner.sock.close()
        other.sock.close()


def test_a_write_while_a_script_is_busy_makes_it_run_again(anynode):
    """The script read a key, then gave the loop a turn; a write to that key
    in the turn (over HTTP) must not be lost under the script's copy: the
    script's effects are refused at apply and it runs again."""
    port = anynode.resp_port
    _set_threshold(port, 100)
    with RawResp(port) as c:
        assert c.cmd("SET", "src", "1") == "OK"
    src = ("local v = redis.call('get', KEYS[1]) " + _spin_for(600) +
           "redis.call('set', KEYS[2], v) return v")
    spinner = RawResp(port, timeout=60)
    other = RawResp(port, timeout=30)
    try:
        spinner.send_cmd("EVAL", src, "2", "src", "dst")
        wait_until(lambda: str(other.cmd("PING")).startswith("BUSY"), 20, 0.02, "BUSY")
        r = anynode.put("src", b"2")
        assert r.status_code in (200, 201, 204), r.text
        assert spinner.read() == b"2"  # the second run's
        assert other.cmd("GET", "dst") == b"2"
    finally:
        spinner.sock.close()
        other.sock.close()


def test_killing_a_script_that_wrote_applies_none_of_its_writes(anynode, redis_server):  # noqa: F811
    """Redis refuses (UNKILLABLE: its writes are in place); in cairn a
    script's writes apply only when it ends, so it can be killed."""
    spin = ("EVAL", "redis.call('set', 'written', 'x') " + SPIN, "0")
    _set_threshold(redis_server, 100)
    with RawResp(redis_server, timeout=30) as spinner, RawResp(redis_server) as other:
        spinner.send_cmd(*spin)
        wait_until(lambda: str(other.cmd("PING")).startswith("BUSY"), 20, 0.02, "BUSY")
        assert other.cmd("SCRIPT", "KILL").code == "UNKILLABLE"
        other.send_cmd("SHUTDOWN", "NOSAVE")  # the only way Redis has
    _, killed, got = _busy_session(anynode.resp_port, spin, [], ("SCRIPT", "KILL"))
    assert killed == "OK"
    assert str(got).startswith("ERR Script killed by user with SCRIPT KILL..."), got
    with RawResp(anynode.resp_port) as c:
        assert c.cmd("EXISTS", "written") == 0


def test_a_client_that_leaves_ends_its_busy_script(anynode):
    port = anynode.resp_port
    _set_threshold(port, 100)
    spinner = RawResp(port, timeout=30)
    spinner.send_cmd("EVAL", "redis.call('set', 'left', 'x') " + SPIN, "0")
    with RawResp(port, timeout=30) as other:
        wait_until(lambda: str(other.cmd("PING")).startswith("BUSY"), 20, 0.02, "BUSY")
        spinner.sock.close()
        wait_until(lambda: other.cmd("PING") == "PONG", 10, 0.02, "the script to end")
        assert other.cmd("EXISTS", "left") == 0
        assert other.cmd("EVAL", "return 5", "0") == 5


# Where Lua 5.1 cannot yield, a busy script goes on holding the loop; it
# is stopped once it has not yielded for as long again as the threshold.
UNYIELDING = [
    "while true do pcall(function() while true do end end) end",
    "local t = setmetatable({}, {__index = function() while true do end end}) return t.x",
    "local function it() while true do end end for x in it do end",
    "table.sort({3, 2, 1}, function(a, b) while true do end end)",
]
# ... and where it can (calls, tail calls, loops inside functions), it yields.
YIELDING = [
    "local function f() while true do end end f()",
    "local function f() while true do end end return f()",
    "local function f(n) if n > 0 then return f(n - 1) end while true do end end return f(3)",
    "for i = 1, 3 do local x = {} while true do x[1] = i end end",
]


@pytest.mark.parametrize("src", UNYIELDING)
def test_a_script_that_cannot_yield_is_stopped(anynode, src):
    port = anynode.resp_port
    _set_threshold(port, 200)
    with RawResp(port, timeout=30) as c:
        t0 = time.monotonic()
        got = c.cmd("EVAL", "redis.call('set', 'stuck', 'x') " + src, "0")
        took = time.monotonic() - t0
        assert "cannot give other clients a turn" in str(got), got
        assert 0.3 < took < 20, took
        assert c.cmd("EXISTS", "stuck") == 0
        assert c.cmd("PING") == "PONG"


@pytest.mark.parametrize("src", YIELDING)
def test_a_script_yields_wherever_lua_allows(anynode, src):
    _, killed, got = _busy_session(anynode.resp_port, ("EVAL", src, "0"), [("PING",)],
                                   ("SCRIPT", "KILL"))
    assert killed == "OK"
    assert str(got).startswith("ERR Script killed by user with SCRIPT KILL..."), got


def test_busy_reply_threshold_is_configured_as_in_redis(anynode, redis_server):  # noqa: F811
    for port in (anynode.resp_port, redis_server):
        with RawResp(port) as c:
            assert c.cmd("CONFIG", "GET", "lua-time-limit") == [b"lua-time-limit", b"5000"]
            assert c.cmd("CONFIG", "SET", "lua-time-limit", "-1") == Err(
                "ERR CONFIG SET failed (possibly related to argument 'lua-time-limit') - argument "
                "must be between 0 and 9223372036854775807 inclusive")
            assert c.cmd("CONFIG", "SET", "busy-reply-threshold", "x") == Err(
                "ERR CONFIG SET failed (possibly related to argument 'busy-reply-threshold') - "
                "argument couldn't be parsed into an integer")
            assert c.cmd("CONFIG", "SET", "busy-reply-threshold", "10", "lua-time-limit",
                         "20") == "OK"
            assert c.cmd("CONFIG", "GET", "busy-reply-threshold") == [b"busy-reply-threshold",
                                                                    b"20"]


def test_a_busy_script_on_the_leader_causes_no_election(make_node):
    """Raft's heartbeats go on while the script runs, far past the election
    timeout: the leader and the term stay, and the script's write reaches
    every node."""
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    term = leader.status()["term"]
    _set_threshold(leader.resp_port, 100)
    with RawResp(leader.resp_port, timeout=60) as c:
        got = c.cmd("EVAL", _spin_for(3000) + "redis.call('set', 'k', 'v') return 1", "0")
        assert got == 1, got
    assert leader_of(nodes) is leader
    assert all(x.status()["term"] == term for x in nodes)
    for x in nodes:
        assert client(x).get("k") == b"v"


@pytest.mark.parametrize("busy", [False, True])
def test_shutdown_stops_the_node_and_keeps_what_was_written(make_node, busy):
    node = make_node(persistence="durable").start()
    with RawResp(node.resp_port) as c:
        assert c.cmd("SET", "kept", "v") == "OK"
        assert c.cmd("SHUTDOWN", "ABORT") == Err("ERR No shutdown in progress.")
        assert c.cmd("SHUTDOWN", "NOSAVE", "SAVE") == Err("ERR syntax error")
        assert c.cmd("SHUTDOWN", "NOW", "ABORT") == Err("ERR syntax error")
    spinner = None
    if busy:
        _set_threshold(node.resp_port, 100)
        spinner = RawResp(node.resp_port, timeout=30)
        spinner.send_cmd("EVAL", "redis.call('set', 'kept', 'no') " + SPIN, "0")
    with RawResp(node.resp_port, timeout=30) as c:
        if busy:
            wait_until(lambda: str(c.cmd("PING")).startswith("BUSY"), 20, 0.02, "BUSY")
        c.send_cmd("SHUTDOWN", "NOSAVE")
        with pytest.raises(ConnectionClosed):  # as Redis: no reply, the connection closes
            c.read()
    assert node.wait_exit(20) == 0
    if spinner:
        try:
            got = spinner.read()
            assert "shutting down" in str(got), got
        except ConnectionClosed:
            pass
        spinner.sock.close()
    node.start()
    with RawResp(node.resp_port) as c:
        assert c.cmd("GET", "kept") == b"v"
