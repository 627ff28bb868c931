"""Redis protocol: SLOWLOG, CONFIG SET of this node's settings
(maxmemory, maxmemory-policy, slowlog-log-slower-than, slowlog-max-len)
and CONFIG RESETSTAT (issue 12).

- the commands, their errors and what CONFIG GET then says, reply for
  reply as Debian's redis-server 7.0 gives them;
- the entries SLOWLOG keeps for the same commands (arguments cut at 32 and
  at 128 bytes, AUTH's password redacted, the client's name) equal
  redis-server's, as far as they do not depend on the clock or the port;
- a write's apply counts as its execution on a durable node (the handler
  only proposes it), so a slow SUNIONSTORE is logged;
- CONFIG SET maxmemory and maxmemory-policy take effect at once: a durable
  node refuses writes over the new budget and refuses eviction policies,
  an in-memory node evicts; CONFIG RESETSTAT zeroes INFO's counters;
- a CONFIG SET naming a limit and a local setting sets both or, when one
  value is bad, neither."""
import pytest

from resp_helpers import Err, RawResp, anynode, info, metric_value, metrics, raw  # noqa: F401
from test_resp_hashes import assert_same, redis_server  # noqa: F401

SCRIPT = [
    ("CONFIG", "SET", "slowlog-log-slower-than", "-1"),
    ("SLOWLOG", "RESET"), ("SLOWLOG", "LEN"), ("SLOWLOG", "GET"), ("SLOWLOG", "GET", "-1"),
    ("SLOWLOG", "GET", "0"), ("SLOWLOG", "GET", "-2"), ("SLOWLOG", "GET", "x"),
    ("SLOWLOG", "GET", "1", "2"), ("SLOWLOG", "LEN", "1"), ("SLOWLOG", "RESET", "x"),
    ("SLOWLOG",), ("SLOWLOG", "nosuch"), ("SLOWLOG", "HELP"), ("slowlog", "len"),
    ("CONFIG", "SET", "slowlog-log-slower-than", "-2"),
    ("CONFIG", "SET", "slowlog-log-slower-than", "x"),
    ("CONFIG", "SET", "slowlog-max-len", "-1"), ("CONFIG", "SET", "slowlog-max-len", "1.5"),
    ("CONFIG", "SET", "SLOWLOG-MAX-LEN", "5"), ("CONFIG", "GET", "slowlog-max-len"),
    ("CONFIG", "GET", "slowlog-log-slower-than"),
    ("CONFIG", "SET", "maxmemory", "100mb"), ("CONFIG", "GET", "maxmemory"),
    ("CONFIG", "SET", "maxmemory", "x"), ("CONFIG", "SET", "maxmemory", "-1"),
    ("CONFIG", "SET", "maxmemory", "1.5gb"), ("CONFIG", "GET", "maxmemory"),
    ("CONFIG", "SET", "maxmemory", "0"), ("CONFIG", "GET", "maxmemory"),
    ("CONFIG", "SET", "maxmemory-policy", "nosuch"),
    ("CONFIG", "SET", "maxmemory-policy", "NoEviction"), ("CONFIG", "GET", "maxmemory-policy"),
    # a limit and a local setting together: both, or neither
    ("CONFIG", "SET", "maxmemory", "1mb", "hash-max-listpack-entries", "3"),
    ("CONFIG", "GET", "maxmemory"), ("CONFIG", "GET", "hash-max-listpack-entries"),
    ("CONFIG", "SET", "maxmemory", "2mb", "hash-max-listpack-entries", "x"),
    ("CONFIG", "SET", "hash-max-listpack-entries", "4", "slowlog-max-len", "x"),
    ("CONFIG", "GET", "maxmemory"), ("CONFIG", "GET", "hash-max-listpack-entries"),
    ("CONFIG", "SET", "maxmemory", "0", "maxmemory", "0"),
    ("CONFIG", "SET", "maxmemory", "0"),
    ("CONFIG", "RESETSTAT"), ("CONFIG", "RESETSTAT", "x"),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_slowlog_and_local_config_match_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, SCRIPT, proto)


def _entries(port, setup, commands):
    """Log every command (slowlog-log-slower-than 0) of `commands` sent on
    a connection named "app"; the entries as (arguments, client name),
    oldest first, without the clock's and the port's fields."""
    with RawResp(port) as c:
        for cmd in setup:
            c.cmd(*cmd)
        c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "0", "slowlog-max-len", "100")
        c.cmd("SLOWLOG", "RESET")
        c.cmd("CLIENT", "SETNAME", "app")
        for cmd in commands:
            c.cmd(*cmd)
        got = c.cmd("SLOWLOG", "GET", "-1")
        c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "-1")
    ids = [e[0] for e in got]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids), ids
    for e in got:
        assert isinstance(e[1], int) and e[1] > 1_600_000_000, e  # a unix time
        assert isinstance(e[2], int) and e[2] >= 0, e
        assert e[4].startswith(b"127.0.0.1:"), e
    return [(e[3], e[5]) for e in reversed(got)]


COMMANDS = [
    ("SET", "k", "v"), ("GET", "k"), ("SET", "long", "x" * 200), ("GET", "long"),
    ("RPUSH", "l", *[str(i) for i in range(40)]), ("LRANGE", "l", "0", "-1"),
    ("AUTH", "secret"), ("AUTH", "user", "secret"), ("HELLO", "2", "AUTH", "default", "pw"),
    ("HSET", "h", "f", "y" * 129), ("NOSUCHCMD", "a"), ("GET",), ("SLOWLOG", "LEN"),
]


def test_slowlog_entries_match_redis(anynode, redis_server):  # noqa: F811
    got = _entries(anynode.resp_port, [], COMMANDS)
    want = _entries(redis_server, [], COMMANDS)
    assert got == want
    assert any(args[-1] == b"... (11 more arguments)" for args, _ in got)
    assert (b"x" * 128 + b"... (72 more bytes)") in [a for args, _ in got for a in args]
    assert [b"AUTH", b"(redacted)"] in [args for args, _ in got]


def test_slowlog_max_len_keeps_the_newest(anynode):  # noqa: F811
    with raw(anynode) as c:
        c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "0", "slowlog-max-len", "1000")
        c.cmd("SLOWLOG", "RESET")
        for i in range(50):
            c.cmd("SET", f"k{i}", "v")
        assert c.cmd("SLOWLOG", "LEN") == 51  # the SETs and the SLOWLOG RESET
        c.cmd("CONFIG", "SET", "slowlog-max-len", "3")
        got = c.cmd("SLOWLOG", "GET", "-1")
        assert [e[3] for e in got] == [[b"CONFIG", b"SET", b"slowlog-max-len", b"3"],
                                       [b"SLOWLOG", b"LEN"], [b"SET", b"k49", b"v"]]
        assert c.cmd("SLOWLOG", "GET", "1")[0][3][0] == b"SLOWLOG"
        c.cmd("CONFIG", "SET", "slowlog-max-len", "0")
        c.cmd("SET", "a", "b")
        assert c.cmd("SLOWLOG", "LEN") == 0
        # a huge max-len costs nothing until entries come
        c.cmd("CONFIG", "SET", "slowlog-max-len", "9223372036854775807")
        c.cmd("SET", "a", "b")
        assert c.cmd("SLOWLOG", "LEN") == 2
        c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "-1")
        c.cmd("SLOWLOG", "RESET")
        c.cmd("SET", "a", "b")
        assert c.cmd("SLOWLOG", "LEN") == 0


def test_a_slow_script_is_logged_with_its_time(anynode):  # noqa: F811
    """A script's run is its command's execution, whether it only read or
    its effects applied before the handler returned (in memory) or after
    (durable): each slow one is logged with at least its loop's time."""
    loop = "local t = 0 for i = 1, 3000000 do t = t + i end "
    with raw(anynode, timeout=60) as c:
        c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "1000")
        c.cmd("SLOWLOG", "RESET")
        assert c.cmd("EVAL", loop + "return t", "0") > 0
        assert c.cmd("EVAL", loop + "return redis.call('set', KEYS[1], t)", "1", "k") == "OK"
        assert c.cmd("EVAL", loop + "return redis.call('get', KEYS[1])", "1", "k") is not None
        got = c.cmd("SLOWLOG", "GET", "-1")
        c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "-1")
    evals = [e for e in got if e[3][:1] == [b"EVAL"]]
    assert len(evals) == 3, got  # each once: a request finishes once
    text = metrics(anynode)
    assert metric_value(text, "cairn_resp_commands_total", command="eval", outcome="ok") == 3
    # the loop alone takes ~10 ms or more; logged under 1 ms would mean
    # the run was not counted
    assert all(e[2] >= 1000 for e in evals), evals


def test_a_slow_apply_is_logged_on_a_durable_node(make_node):
    """On a durable node the handler only proposes a write; the work is the
    apply of its log entry, which the slowlog counts."""
    n = make_node(persistence="durable").start()
    with raw(n, timeout=60) as c:
        for b in range(20):
            assert c.cmd("SADD", "a", *[f"m{b}-{i}" for i in range(5000)]) == 5000
            c.cmd("SADD", "b", *[f"n{b}-{i}" for i in range(5000)])
        c.cmd("CONFIG", "SET", "slowlog-log-slower-than", "2000")
        c.cmd("SLOWLOG", "RESET")
        assert c.cmd("SUNIONSTORE", "u", "a", "b") == 200000
        got = c.cmd("SLOWLOG", "GET", "-1")
    slow = [e for e in got if e[3][:1] == [b"SUNIONSTORE"]]
    assert slow and slow[0][2] >= 2000, got


def test_maxmemory_set_at_runtime_on_a_durable_node(make_node):
    n = make_node(persistence="durable").start()
    with raw(n) as c:
        assert c.cmd("SET", "k", "v") == "OK"
        assert c.cmd("CONFIG", "SET", "maxmemory", "1") == "OK"
        err = c.cmd("SET", "k2", "v")
        assert isinstance(err, Err) and err.code == "OOM", err
        assert c.cmd("GET", "k") == b"v"  # reads and deletes still go
        assert info(n, "memory")["maxmemory"] == "1"
        err = c.cmd("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
        assert "eviction needs --persistence none" in str(err), err
        assert c.cmd("CONFIG", "GET", "maxmemory-policy") == [b"maxmemory-policy", b"noeviction"]
        assert c.cmd("CONFIG", "SET", "maxmemory", "0") == "OK"
        assert c.cmd("SET", "k2", "v") == "OK"


def test_eviction_set_at_runtime_and_resetstat(make_node):
    n = make_node(persistence="none").start()
    with raw(n, timeout=30) as c:
        err = c.cmd("CONFIG", "SET", "maxmemory-policy", "allkeys-lfu")
        assert "cairn evicts by noeviction, allkeys-lru" in str(err), err
        assert c.cmd("CONFIG", "SET", "maxmemory", "2mb", "maxmemory-policy", "allkeys-lru") == "OK"
        for i in range(0, 20000, 500):
            c.pipeline([("SET", f"k{j}", "x" * 100) for j in range(i, i + 500)])
        keys = c.cmd("DBSIZE")
        assert 0 < keys < 20000, keys
        st = info(n, "stats")
        assert int(st["evicted_keys"]) > 0 and int(st["total_commands_processed"]) > 20000, st
        assert c.cmd("CONFIG", "RESETSTAT") == "OK"
        st = info(n, "stats")
        assert st["evicted_keys"] == "0" and int(st["total_commands_processed"]) <= 3, st
        assert st["keyspace_hits"] == "0" and st["total_connections_received"] == "1", st
