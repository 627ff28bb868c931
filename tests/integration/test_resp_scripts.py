"""Redis protocol: Lua scripts (issue 13): EVAL, EVALSHA, EVAL_RO,
EVALSHA_RO, SCRIPT LOAD/EXISTS/FLUSH/KILL. Every script below runs on
Debian's redis-server 7.0 and on cairnd (both persistence modes) and the
raw replies must be identical, in RESP2 and RESP3: the conversions both
ways (redis.setresp(3) included), redis.call against pcall, errors with
their "script: <sha>, on @user_script:<line>." suffix, the sandbox
(undeclared globals, removed functions), argument errors, cjson and bit,
writes followed by reads of the same keys inside one script.

Then what is cairn's own: a script's writes are one log entry whose
watched keys are every key it looked at (a concurrent write makes it run
again, so contended increments through every node of a cluster lose
nothing); redis-py's register_script and Lock work unchanged; commands
that walk the keyspace are refused with an explanation. Scripts that run
long (BUSY, SCRIPT KILL): test_resp_busy_scripts.py."""
import threading
import time

import pytest
import redis

from resp_helpers import ConnectionClosed, RawResp, anynode, client  # noqa: F401
from test_cluster import leader_of, make_cluster
from test_resp_hashes import assert_same, redis_server  # noqa: F401


def ev(src, *keys_then_args, numkeys=None):
    n = len(keys_then_args) if numkeys is None else numkeys
    return ("EVAL", src, str(n), *keys_then_args)


CONVERSIONS = [
    ("SET", "s", "x"),
    ev("return 1"), ev("return 3.99"), ev("return -3.7"), ev("return 1e300"), ev("return 0/0"),
    ev("return 'str'"), ev("return true"), ev("return false"), ev("return nil"),
    ev("return {1,2,3,'ciao',{1,2}}"), ev("return {1,nil,3}"), ev("return {'a', false, 'b'}"),
    ev("return {[1]='a',[3]='c'}"), ev("return {a=1}"), ev("return {1.5, 2.7}"),
    ev("return redis.error_reply('My Error')"), ev("return redis.error_reply('-My Error')"),
    ev("return {err='x boom'}"), ev("return redis.status_reply('FINE')"),
    ev("return {ok='fine'}"), ev("return {ok='x', err='y'}"), ev("return {1,2,{err='inner'}}"),
    ev("return redis.status_reply()"), ev("return redis.error_reply(5)"),
    ev("return {double=1.5}"), ev("return {double='1.5'}"), ev("return {map={x={1,2}}}"),
    ev("return {big_number='123'}"), ev("return {ok='a\\r\\nb'}"),
    # what redis.call gives the script
    ev("return redis.call('ping')"), ev("return redis.call('echo','x')"),
    ev("return redis.call('get','nokey')"), ev("return {redis.call('get','nokey')}"),
    ev("return type(redis.call('get','nokey'))"),
    ev("redis.call('hset','h','f','v'); return redis.call('hgetall','h')"),
    ev("return redis.call('set',KEYS[1],ARGV[1])", "k1", "v1", numkeys=1),
    ev("return {KEYS[1],KEYS[2],ARGV[1],ARGV[2]}", "a", "b", "c", "d", numkeys=2),
    ev("return #KEYS + #ARGV"),
    ev("redis.call('set','fl',3.0); return redis.call('get','fl')"),
    ev("redis.call('set','fl',1e20); return redis.call('get','fl')"),
    ev("redis.call('set','fl',0.1); return redis.call('get','fl')"),
    ev("return redis.call('set','a',1.5)"),
    ev("return redis.call('incr','s')"), ev("return redis.pcall('incr','s')"),
    ev("return type(redis.pcall('incr','s'))"),
    ev("local t = redis.pcall('incr','s'); return t.err"),
    ev("return redis.call('lpush','s','x')"),
    ev("return redis.call('nosuch')"), ev("return redis.pcall('nosuch')"),
    ev("return redis.call('get')"), ev("return redis.pcall('get','a','b')"),
    ev("return redis.call()"), ev("return redis.call({})"),
    ev("return redis.call('set', 'a', {})"), ev("return redis.call('set','a',true)"),
    ev("return redis.call('multi')"), ev("return redis.call('subscribe','x')"),
    ev("return redis.call('blpop','nolist', 0)"), ev("return redis.call('eval','return 1','0')"),
    # RESP3 inside the script
    ev("redis.setresp(3); return redis.call('hgetall','h')"),
    ev("redis.setresp(3); return redis.call('get','nokey')"),
    ev("redis.setresp(3); return {redis.call('get','nokey')}"),
    ev("redis.call('zadd','z',1.5,'m'); redis.setresp(3); return redis.call('zscore','z','m')"),
    ev("redis.setresp(3); return redis.call('zscore','z','nope')"),
    ev("redis.setresp(3); return redis.call('smembers','nset')"),
    ev("redis.setresp(3); return redis.call('exists','z')"),
    ev("redis.setresp(3); local t = redis.call('hgetall','h'); return t.map.f"),
    ev("return redis.setresp(4)"),
    # errors raised by the script
    ev("error('raw')"), ev("error({err='boom'})"), ev("error({err='TBL boom'})"),
    ev("local x = 1\nlocal y = 2\nerror('on line three')"),
    ev("local t = nil; return t.x"),
    ev("syntax error here"), ev("return ("),
    # the script's own coroutines; a yield out of the script itself
    ev("local co = coroutine.create(function() coroutine.yield(5) return 7 end) "
       "local a, b = coroutine.resume(co) local c, d = coroutine.resume(co) return {b, d}"),
    ev("return coroutine.yield(1)"), ev("return {pcall(coroutine.yield, 1)}"),
    ev("local f = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end) "
       "return {f(), f(), f()}"),
    # the sandbox
    ev("x = 1"), ev("return y"), ev("return _G.x"), ev("return os"), ev("return io"),
    ev("return print"), ev("return dofile"), ev("return loadfile"), ev("return require"),
    ev("return setfenv"), ev("return loadstring"), ev("return collectgarbage"),
    ev("return type(coroutine)"), ev("return table.getn({1,2})"),
    ev("return string.format('%d', 5)"), ev("return unpack({1,2})"),
    ev("return getmetatable('')"),
    # the libraries
    ev("return redis.sha1hex('')"), ev("return redis.sha1hex('abc')"), ev("return redis.sha1hex()"),
    ev("return cjson.encode({a=1})"), ev("return cjson.decode('[1,2,\"x\"]')"),
    ev("return bit.band(7,3)"), ev("return bit.bxor(5,1)"), ev("return bit.tohex(255)"),
    ev("return redis.log(redis.LOG_WARNING, 'hi')"), ev("return redis.log(1)"),
    ev("return redis.log(99,'x')"),
    ev("return redis.LOG_DEBUG..redis.LOG_VERBOSE..redis.LOG_NOTICE..redis.LOG_WARNING"),
    # arguments of EVAL itself
    ("EVAL", "return 1", "x"), ("EVAL", "return 1"), ("EVAL", "return 1", "-1"),
    ("EVAL", "return 1", "2", "a"), ("EVAL",),
]

WRITES = [
    # writes then reads of the same keys, inside one script
    ev("redis.call('set', KEYS[1], 10); redis.call('incrby', KEYS[1], 5); "
       "return redis.call('get', KEYS[1])", "n"),
    ev("redis.call('rpush', KEYS[1], 'a', 'b', 'c'); redis.call('lpop', KEYS[1]); "
       "return redis.call('lrange', KEYS[1], 0, -1)", "l"),
    ev("redis.call('del', KEYS[1]); return redis.call('exists', KEYS[1])", "n"),
    ev("local v = redis.call('incr', KEYS[1]); if v > 1 then return redis.call('get', KEYS[1]) "
       "end; return v", "n"),
    ev("redis.call('sadd', KEYS[1], 'a', 'b'); redis.call('srem', KEYS[1], 'a'); "
       "return redis.call('smembers', KEYS[1])", "st"),
    ev("redis.call('hset', KEYS[1], 'f', 1); redis.call('hincrby', KEYS[1], 'f', 41); "
       "return redis.call('hget', KEYS[1], 'f')", "hh"),
    ev("redis.call('set', 'e', 'v', 'EX', 100); return redis.call('ttl', 'e')"),
    ev("redis.call('set', 'x', 1); redis.call('rename', 'x', 'y'); "
       "return {redis.call('exists', 'x'), redis.call('get', 'y')}"),
    ("GET", "n"), ("LRANGE", "l", "0", "-1"), ("GET", "y"), ("EXISTS", "x"), ("HGET", "hh", "f"),
    # an error after a write: the write stays (as in Redis)
    ev("redis.call('set', 'kept', 'yes'); error('after the write')"), ("GET", "kept"),
    ev("redis.call('set', 'kept2', 'yes'); return redis.call('incr', 'kept')"), ("GET", "kept2"),
    # read-only variants
    ("EVAL_RO", "return redis.call('get','n')", "0"),
    ("EVAL_RO", "return redis.call('set','x','y')", "0"), ("EXISTS", "x"),
    ("EVAL_RO", "return redis.pcall('del','n')", "0"), ("GET", "n"),
    # the cache
    ("SCRIPT", "FLUSH"),
    ("EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"),
    ("SCRIPT", "LOAD", "return 1"),
    ("SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db",
     "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB", "ffffffffffffffffffffffffffffffffffffffff"),
    ("EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"),
    ("EVALSHA", "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB", "0"),
    ("EVALSHA_RO", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"),
    ("EVALSHA", "short", "0"),
    ("EVAL", "return 2", "0"), ("SCRIPT", "EXISTS", "7f923f79fe76194c868d7e1d0820de36700eb649"),
    ("SCRIPT", "LOAD", "return ("), ("SCRIPT", "KILL"), ("SCRIPT", "FLUSH", "ASYNC"),
    ("SCRIPT", "FLUSH", "SYNC"), ("SCRIPT", "FLUSH", "bad"), ("SCRIPT", "NOSUCH"), ("SCRIPT",),
    ("SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"),
]


def _hex(expr):
    return ev(f"local s = {expr} local t = {{}} for i = 1, #s do "
              "t[#t + 1] = string.format('%02x', s:byte(i)) end return table.concat(t, ' ')")


# cmsgpack (Debian's lua-messagepack under cairn's layer, api/script_cmsgpack.h):
# the bytes it packs and what it unpacks, errors included, as lua_cmsgpack.
CMSGPACK = [_hex(f"cmsgpack.pack({e})") for e in [
    "string.rep('a', 31)", "string.rep('a', 32)", "string.rep('a', 255)", "string.rep('a', 256)",
    "string.rep('a', 65536)", "127", "128", "255", "256", "65535", "65536", "4294967295",
    "4294967296", "-1", "-32", "-33", "-128", "-129", "-32768", "-32769", "-2147483648",
    "-2147483649", "1.5", "0.1", "1/0", "-1/0", "0/0", "-0.0", "1e300", "2^53", "2^63", "-2^63",
    "2^64", "{}", "{1, 2}", "{1, nil, 3}", "{a = 1}", "{a = {b = {c = 1}}}", "true", "false",
    "nil", "{[1.5] = 1}", "{1, 2, x = 3}", "redis.call", "coroutine.create(function() end)",
    "1, 2, 3", "'a', {1}, nil, 4"]] + [
    _hex("(function() local t = {} local c = t for i = 1, 20 do c[1] = {} c = c[1] end "
         "return cmsgpack.pack(t) end)()"),
] + [ev("return " + e) for e in [
    "cmsgpack.unpack(string.char(0xcd))", "cmsgpack.unpack(string.char(0xc1))",
    "cmsgpack.unpack(string.char(0xd4, 1, 2))", "cmsgpack.unpack()", "cmsgpack.unpack(nil)",
    "cmsgpack.unpack({})", "cmsgpack.unpack(5)", "{cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3))}",
    "{cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 2)}",
    "{cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2, 1)}",
    "{cmsgpack.unpack_one(cmsgpack.pack(1), 5)}",
    "{cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3, 4), -1)}",
    "{cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3, 4, 5), 0, 0)}",
    "{cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3, 4, 5), 0, 5)}",
    "{cmsgpack.unpack_one('')}", "{cmsgpack.unpack('')}", "cmsgpack.pack()",
    "cmsgpack._NAME", "cmsgpack.unpack(cmsgpack.pack({a = {b = {1, 2}}, 'x'})).a.b[2]",
    "{cmsgpack.unpack(cmsgpack.pack(1.5, -7, 'x', {1, 2, {3}}, true))}",
    "cmsgpack.unpack(cmsgpack.pack(0.1)) == 0.1", "cmsgpack.unpack(cmsgpack.pack(2^62)) == 2^62",
    "cmsgpack.unpack(cmsgpack.pack(-2^62)) == -2^62",
    "cmsgpack.unpack(string.char(0xcf, 0, 0, 0, 1, 0, 0, 0, 0))",
    "cmsgpack.unpack(string.char(0xd3, 255, 255, 255, 255, 255, 255, 255, 254))",
    "cmsgpack.unpack(string.char(0xca, 0x3f, 0xc0, 0, 0))",
    "cmsgpack.unpack(string.char(0x81, 0xa1, 0x61, 0x05)).a",
    "#cmsgpack.unpack(string.char(0xdc, 0, 3, 1, 2, 3))",
    "cmsgpack.unpack(cmsgpack.pack(string.rep('x', 70000))) == string.rep('x', 70000)"]]


def test_cmsgpack_matches_redis(anynode, redis_server):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, CMSGPACK)
    # where it differs: MessagePack's bin types decode (lua_cmsgpack 0.4.0 refuses them)
    with RawResp(anynode.resp_port) as c:
        assert c.cmd(*ev("return cmsgpack.unpack(string.char(0xc4, 2, 65, 66))")) == b"AB"


@pytest.mark.parametrize("proto", [2, 3])
def test_scripts_match_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, CONVERSIONS, proto)
    assert_same(anynode.resp_port, redis_server, WRITES, proto)


def test_refused_commands_say_why(anynode):
    with RawResp(anynode.resp_port) as c:
        for cmd in ("keys", "scan", "dbsize", "randomkey", "flushall"):
            args = {"keys": "'*'", "scan": "0"}.get(cmd)
            src = f"return redis.call('{cmd}'{', ' + args if args else ''})"
            err = str(c.cmd("EVAL", src, "0"))
            assert "walks the whole keyspace" in err, err


def test_a_script_over_the_memory_limit_is_stopped(anynode):
    with RawResp(anynode.resp_port, timeout=60) as c:
        err = c.cmd("EVAL", "redis.call('set', 'mem', 'x'); local s = string.rep('x', 1048576) "
                    "local t = {} for i = 1, 100000 do t[i] = s .. i end", "0")
        assert "Lua heap limit" in str(err), err
        assert c.cmd("EXISTS", "mem") == 0
        assert c.cmd("EVAL", "return 7", "0") == 7  # the interpreter still works


def test_register_script_and_lock_of_redis_py(anynode):
    r = client(anynode)
    incr_by = r.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
    assert incr_by(keys=["c"], args=[5]) == 5
    r.script_flush()
    assert incr_by(keys=["c"], args=[2]) == 7  # NOSCRIPT, loaded again by redis-py
    lock = r.lock("resource", timeout=10)
    assert lock.acquire(blocking=False)
    other = client(anynode).lock("resource", timeout=10)
    assert not other.acquire(blocking=False)
    lock.extend(5)
    assert r.pttl("resource") > 10000
    lock.release()
    assert other.acquire(blocking=False)
    stale = r.lock("resource")
    stale.local.token = b"not the holder's"
    with pytest.raises(redis.exceptions.LockNotOwnedError):
        stale.release()  # the compare-and-delete script refuses
    assert r.exists("resource") == 1
    other.release()
    assert r.exists("resource") == 0


INCR_SCRIPT = "local v = tonumber(redis.call('get', KEYS[1]) or '0'); " \
              "redis.call('set', KEYS[1], v + 1); return v + 1"


def _on_threads(fn, n, timeout=120):
    """fn(0) .. fn(n - 1), each on a thread of its own; what any raised fails."""
    errors = []

    def guarded(i):
        try:
            fn(i)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not errors, errors


def test_contended_script_increments_through_every_node_lose_nothing(make_node):
    """A read-then-write script from clients on all three nodes: each run
    whose effects applied saw the latest value (the watches), none lost."""
    nodes = make_cluster(make_node)
    results = [[] for _ in range(6)]

    def run(i):
        r = client(nodes[i % 3])
        for _ in range(20):
            results[i].append(r.eval(INCR_SCRIPT, 1, "ctr"))

    _on_threads(run, 6)
    seen = sorted(v for rs in results for v in rs)
    assert seen == list(range(1, 121)), seen  # every answer distinct: no lost update
    assert client(leader_of(nodes)).get("ctr") == b"120"


def test_a_script_through_a_follower_reads_its_writes(make_node):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    f = [x for x in nodes if x is not leader][0]
    with RawResp(f.resp_port) as c:
        assert c.cmd("EVAL", "redis.call('rpush', KEYS[1], 'a', 'b'); "
                     "return redis.call('lrange', KEYS[1], 0, -1)", "1", "q") == [b"a", b"b"]
        assert c.cmd("LRANGE", "q", "0", "-1") == [b"a", b"b"]
    with RawResp(leader.resp_port) as c:
        assert c.cmd("LRANGE", "q", "0", "-1") == [b"a", b"b"]


LIB = ("#!lua name=mylib\n"
       "redis.register_function('myf', function(keys, args) return {keys[1], args[1]} end)\n")
LIB2 = ("#!lua name=mylib\n"
        "redis.register_function{function_name='ro', callback=function(keys, args) "
        "return redis.call('get', keys[1]) end, flags={'no-writes', 'allow-stale'}, "
        "description='reads'}\n")
LIB3 = ("#!lua name=wlib\n"
        "redis.register_function('w', function(keys) redis.call('set', keys[1], 'v'); "
        "return redis.call('incr', 'fs') end)\n")

FUNCTIONS = [
    ("FUNCTION", "FLUSH"), ("SET", "k", "xxxx"), ("SET", "fs", "x"),
    ("FUNCTION", "LOAD", "return 1"), ("FUNCTION", "LOAD", "#!lua"),
    ("FUNCTION", "LOAD", "#!lua name="),
    ("FUNCTION", "LOAD", "#!lua name=a-b\nredis.register_function('f', function() return 1 end)"),
    ("FUNCTION", "LOAD", "#!js name=x\n"), ("FUNCTION", "LOAD", "#!lua name=x foo=bar\n"),
    ("FUNCTION", "LOAD", "#!lua name=x\n"), ("FUNCTION", "LOAD", "#!lua name=x\nreturn ("),
    ("FUNCTION", "LOAD", "#!lua name=x\nredis.call('ping')"),
    ("FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('f-1', function() return 1 end)"),
    ("FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('f', function() return 1 end)\n"
     "redis.register_function('f', function() return 2 end)"),
    ("FUNCTION", "LOAD", "#!lua name=x\nredis.register_function{function_name='f', "
     "callback=function() return 1 end, flags={'bad'}}"),
    ("FUNCTION", "LOAD", "#!lua name=x\nredis.register_function('f')"),
    ("FUNCTION", "LOAD", "#!lua name=x\nredis.register_function{function_name='f'}"),
    ("FUNCTION", "LOAD", "#!lua name=x6\nglobalv = 1\n"
     "redis.register_function('f6', function() return 6 end)"),
    ("FUNCTION", "LOAD", LIB), ("FUNCTION", "LOAD", LIB),
    ("FUNCTION", "LOAD", "#!lua name=lib2\nredis.register_function('myf', function() return 1 end)"),
    ("FCALL", "myf", "1", "k", "a"), ("FUNCTION", "LIST"), ("FUNCTION", "LIST", "WITHCODE"),
    ("FUNCTION", "LOAD", "REPLACE", LIB2), ("FCALL", "myf", "0"), ("FCALL", "ro", "1", "k"),
    ("FCALL_RO", "ro", "1", "k"), ("FUNCTION", "LIST"),
    ("FUNCTION", "LIST", "LIBRARYNAME", "my*"), ("FUNCTION", "LIST", "LIBRARYNAME", "zz*"),
    ("FUNCTION", "LIST", "bad"), ("FUNCTION", "LIST", "LIBRARYNAME"),
    ("FUNCTION", "LOAD", LIB3), ("FCALL_RO", "w", "1", "k2"), ("EXISTS", "k2"),
    ("FCALL", "w", "1", "k2"), ("GET", "k2"), ("EXISTS", "k2"),
    ("FUNCTION", "LOAD", "#!lua name=x3\nredis.register_function('f3', function() error('boom') end)"),
    ("FCALL", "f3", "0"), ("FCALL", "nosuch", "0"), ("FCALL", "ro", "-1"), ("FCALL", "ro", "5"),
    ("FUNCTION", "LOAD", "#!lua name=x7\nredis.register_function('f7', function() return globalv end)"),
    ("FCALL", "f7", "0"),
    ("FUNCTION", "LOAD", "#!LUA name=x4\nredis.register_function('f4', function() return 4 end)"),
    ("FCALL", "f4", "0"), ("FUNCTION", "STATS"),
    ("FUNCTION", "DELETE", "nosuch"), ("FUNCTION", "DELETE", "mylib"), ("FCALL", "ro", "1", "k"),
    ("FUNCTION", "KILL"), ("FUNCTION", "NOSUCH"), ("FUNCTION", "FLUSH", "bad"),
    ("FUNCTION", "FLUSH", "ASYNC"), ("FUNCTION", "STATS"), ("FCALL", "f4", "0"),
    ("FUNCTION", "LIST"),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_functions_match_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, FUNCTIONS, proto)


def test_functions_are_replicated_and_outlive_the_log(make_node):
    """FUNCTION LOAD is a log entry: through a follower, it reaches every
    node, FCALL runs on any of them, and a node that was down while the log
    was compacted gets the libraries from the snapshot."""
    from conftest import wait_until
    from test_cluster import compact_the_log
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    follower, other = [x for x in nodes if x is not leader]
    assert other.stop(timeout=30) == 0
    with RawResp(follower.resp_port) as f:
        assert f.cmd("FUNCTION", "LOAD", LIB3) == b"wlib"
        assert f.cmd("FCALL", "w", "1", "key") == 1  # read back on the node that loaded it
    with RawResp(leader.resp_port) as c:
        assert c.cmd("FCALL", "w", "1", "key") == 2
        compact_the_log(leader, lambda i: c.cmd("SET", f"k{i % 5}", str(i)))
    other.start(timeout=60)

    def caught_up():
        with RawResp(other.resp_port) as r:
            r.cmd("READONLY")
            return r.cmd("GET", "k4") == b"299"

    wait_until(caught_up, 30, 0.2, "the restarted node to catch up")
    with RawResp(other.resp_port) as r:
        assert r.cmd("FCALL", "w", "1", "key") == 3
        lst = r.cmd("FUNCTION", "LIST")
        assert lst[0][1] == b"wlib", lst
    # every node restarted: the libraries come back from their logs and snapshots
    for x in nodes:
        x.restart()
    leader = leader_of(nodes)
    with RawResp(leader.resp_port) as c:
        assert c.cmd("FCALL", "w", "1", "key") == 4
        assert c.cmd("FUNCTION", "DELETE", "wlib") == "OK"
    for x in nodes:
        with RawResp(x.resp_port) as r:
            wait_until(lambda: str(r.cmd("FCALL", "w", "1", "key")) == "ERR Function not found",
                       10, 0.1, "the delete to apply everywhere")


TRANSFER = ("local n = tonumber(ARGV[1]) "
            "redis.call('decrby', KEYS[1], n) "
            "redis.call('incrby', KEYS[2], n) "
            "return n")
ACCOUNTS = [f"sacct{i}" for i in range(5)]


def _script_transfers(node, stop, tally):
    import random
    rnd = random.Random(node.node_id * 7)
    while not stop.is_set():
        try:
            with RawResp(node.resp_port, timeout=10) as c:
                while not stop.is_set():
                    a, b = rnd.sample(ACCOUNTS, 2)
                    r = c.cmd("EVAL", TRANSFER, "2", a, b, str(rnd.randint(1, 20)))
                    tally["ok" if isinstance(r, int) else "failed"] += 1
        except (OSError, EOFError, ConnectionError, TimeoutError, ConnectionClosed):
            tally["conn"] += 1
            time.sleep(0.05)


def test_script_transfers_keep_their_sum_through_a_leader_kill(make_node):
    """Scripts that write two keys, from clients on all three nodes, while
    the leader is killed with SIGKILL: each script's writes are one entry,
    so the accounts' sum never changes on any node."""
    from conftest import wait_until
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    with RawResp(leader.resp_port) as c:
        assert c.cmd("MSET", *[x for a in ACCOUNTS for x in (a, "100")]) == "OK"
    stop = threading.Event()
    tally = {"ok": 0, "failed": 0, "conn": 0}
    threads = [threading.Thread(target=_script_transfers, args=(x, stop, tally)) for x in nodes]
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

    def sums():
        out = []
        for x in nodes:
            with RawResp(x.resp_port) as r:
                out.append(sum(int(v) for v in r.cmd("MGET", *ACCOUNTS)))
        return out

    wait_until(lambda: sums() == [500, 500, 500], 20, 0.1, "every node to hold the total")


def test_redis_py_lock_never_has_two_holders_across_a_leader_kill(make_node):
    """redis-py's Lock (SET NX PX to take it, Lua compare-and-delete to
    release it) contended by 6 clients on 3 nodes while the leader is
    killed: the lock's token is the fencing token, and each holder checks,
    inside a script, that the lock is still its own while it appends to a
    log of holders; the log never shows two holders overlapping."""
    from conftest import wait_until
    nodes = make_cluster(make_node)
    stop = threading.Event()
    counts = {"held": 0, "errors": 0}
    enter = ("if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end "
             "redis.call('rpush', KEYS[2], 'in:' .. ARGV[1]) return 1")
    leave = ("if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end "
             "redis.call('rpush', KEYS[2], 'out:' .. ARGV[1]) return 1")

    def worker(i):
        r = client(nodes[i % 3])
        r.connection_pool.connection_kwargs["socket_timeout"] = 10
        while not stop.is_set():
            try:
                lock = r.lock("the-lock", timeout=5, blocking_timeout=2)
                if not lock.acquire():
                    continue
                token = lock.local.token
                try:
                    if r.eval(enter, 2, "the-lock", "holders", token) == 1:
                        time.sleep(0.01)
                        r.eval(leave, 2, "the-lock", "holders", token)
                        counts["held"] += 1
                finally:
                    try:
                        lock.release()
                    except Exception:  # noqa: BLE001 - expired or failover: fine
                        pass
            except Exception:  # noqa: BLE001 - connection errors during the kill
                counts["errors"] += 1
                time.sleep(0.05)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: counts["held"] >= 20, 60, 0.05, "the lock to change hands")
        leader = leader_of(nodes)
        leader.kill9()
        rest = [x for x in nodes if x is not leader]
        wait_until(lambda: len({x.status()["leader"] for x in rest}) == 1 and
                   rest[0].status()["leader"] in {x.node_id for x in rest}, 20, 0.1,
                   "a new leader")
        before = counts["held"]
        wait_until(lambda: counts["held"] >= before + 20, 60, 0.05,
                   "the lock to change hands under the new leader")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    # Each entry was written only while the lock held its writer's token.
    # Two holders at once would show as an "out" whose "in" is not the
    # latest one (the earlier holder still fenced-in after another entered).
    # An "in" without its "out" is a holder whose leave failed (its
    # connection was cut by the kill) and whose lock then expired.
    log = client(leader_of(rest)).lrange("holders", 0, -1)
    last_in, unfinished = None, 0
    for entry in log:
        kind, token = entry.split(b":", 1)
        if kind == b"in":
            if last_in is not None:
                unfinished += 1
            last_in = token
        else:
            assert last_in == token, f"{token} left while {last_in} held the lock"
            last_in = None
    assert unfinished <= 6, (unfinished, len(log))
    assert len(log) >= 80, len(log)


def test_scripts_inside_multi(anynode):
    """A reading script runs at its place in the transaction, when the
    entry applies; so does a writing one, run on an overlay at EXEC (its
    reads see the commands before it, the one after it see its writes)."""
    with RawResp(anynode.resp_port) as c:
        c.cmd("MULTI")
        c.cmd("SET", "m", "1")
        c.cmd("EVAL", "return redis.call('get', KEYS[1])", "1", "m")
        c.cmd("EVAL", "return redis.call('incr', KEYS[1])", "1", "m")
        c.cmd("INCR", "m")
        got = c.cmd("EXEC")
        assert got == ["OK", b"1", 2, 3], got
        assert c.cmd("GET", "m") == b"3"


# Transactions with scripts that write, against redis-server: order of
# effects, WATCH, errors in slots, NOSCRIPT, scripts reading what came before.
MULTI_SCRIPTS = [
    ("DEL", "m", "n"), ("MULTI",), ("SET", "m", "1"),
    ev("return redis.call('incr', KEYS[1])", "m", numkeys=1), ("INCR", "m"),
    ev("redis.call('set', 'n', redis.call('get', 'm')) return redis.call('get', 'n')"),
    ("GET", "n"), ("EXEC",), ("GET", "m"), ("GET", "n"),
    ("DEL", "w"), ("WATCH", "w"), ("SET", "w", "x"), ("MULTI",),
    ev("return redis.call('set', 'w', 'y')"), ("EXEC",), ("GET", "w"),
    ("WATCH", "w2"), ("MULTI",), ev("return redis.call('set', 'w2', 'y')"), ("EXEC",), ("GET", "w2"),
    ("MULTI",), ev("return redis.call('lpush', 'w', 'y')"), ("SET", "s", "v"), ("EXEC",),
    ("GET", "s"),
    ("MULTI",), ev("error('boom')"), ("SET", "s2", "v"),
    ev("redis.call('set', 's3', 'a') error('late')"), ("EXEC",), ("GET", "s2"), ("GET", "s3"),
    ("MULTI",), ("EVAL", "return 1", "abc"),
    ("EVALSHA", "0000000000000000000000000000000000000000", "0"), ("SET", "q", "1"), ("EXEC",),
    ("MULTI",), ev("return 1"), ("PING",), ("ECHO", "x"), ("EXEC",),
    ("DEL", "h"), ("MULTI",), ("HSET", "h", "a", "1"), ev("return redis.call('hgetall', 'h')"),
    ("HGETALL", "h"), ev("redis.setresp(3) return redis.call('hgetall', 'h')"), ("EXEC",),
    ("MULTI",), ("SET", "f", "1"), ("EVAL", "return redis.call('get', 'f')", "0"),
    ("EVAL_RO", "return redis.call('get', 'f')", "0"), ("EXEC",),
]


@pytest.mark.parametrize("proto", [2, 3])
def test_writing_scripts_inside_multi_match_redis(anynode, redis_server, proto):  # noqa: F811
    assert_same(anynode.resp_port, redis_server, MULTI_SCRIPTS, proto)


def test_a_stopped_script_discards_its_transaction(anynode):
    with RawResp(anynode.resp_port, timeout=30) as c:
        assert c.cmd("CONFIG", "SET", "busy-reply-threshold", "200") == "OK"
        c.cmd("MULTI")
        c.cmd("SET", "before", "1")
        c.cmd("EVAL", "redis.call('set', 'inside', '1') while true do end", "0")
        got = c.cmd("EXEC")
        assert str(got).startswith("EXECABORT Transaction discarded because of: script stopped: "
                                   "it ran longer than the script time limit"), got
        assert c.cmd("EXISTS", "before", "inside") == 0


TX_INCR = "local v = tonumber(redis.call('get', KEYS[1]) or '0') redis.call('set', KEYS[1], v + 1)"


def test_contended_transactions_with_scripts_lose_nothing(make_node):
    """MULTI, a read-then-write script, INCR, EXEC from clients on all
    three nodes: the entry watches what the run read, so a run that raced
    another runs again; none is lost."""
    nodes = make_cluster(make_node)

    def run(i):
        with RawResp(nodes[i % 3].resp_port, timeout=30) as c:
            for _ in range(15):
                got = c.pipeline([("MULTI",), ("EVAL", TX_INCR, "1", "ctr"), ("INCR", "ctr"),
                                  ("EXEC",)])
                assert got[-1][0] == None and isinstance(got[-1][1], int), got  # noqa: E711

    _on_threads(run, 6)
    assert client(leader_of(nodes)).get("ctr") == b"180"


def test_function_limits(anynode):
    """At most 1,024 functions per library and 1,024 libraries: past them a
    clear error, nothing loaded."""
    with RawResp(anynode.resp_port, timeout=60) as c:
        code = "#!lua name=big\n" + "".join(
            f"redis.register_function('f{i}', function() return {i} end)\n" for i in range(1025))
        err = c.cmd("FUNCTION", "LOAD", code)
        assert str(err) == "ERR a library may register at most 1024 functions", err
        assert c.cmd("FUNCTION", "LIST") == []
        replies = c.pipeline([("FUNCTION", "LOAD",
                               f"#!lua name=l{i}\nredis.register_function('g{i}', "
                               f"function() return {i} end)") for i in range(1024)])
        assert replies[-1] == b"l1023", replies[-1]
        err = c.cmd("FUNCTION", "LOAD", "#!lua name=one_more\n"
                    "redis.register_function('h', function() return 0 end)")
        assert str(err).startswith("ERR too many function libraries (at most 1024)"), err
        assert c.cmd("FCALL", "g1023", "0") == 1023
        assert c.cmd("FUNCTION", "FLUSH") == "OK"
