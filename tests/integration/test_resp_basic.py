"""Redis protocol: connection and server commands (SPEC §3), in RESP2 and
RESP3, with Redis 7.0's reply types and error texts.

PING ECHO HELLO AUTH SELECT QUIT RESET CLIENT COMMAND INFO DBSIZE TIME
CONFIG READONLY READWRITE, unknown commands and arity errors."""
import re
import time

import pytest
import redis

from resp_helpers import (Err, NullType, RawResp, RespMap, RespSet, Simple, Verbatim, anynode,  # noqa: F401
                          client, info, raw)
from test_resp_hashes import redis_server  # noqa: F401


# --------------------------------------------------------------------------
# PING ECHO TIME SELECT
# --------------------------------------------------------------------------

def test_ping_echo(anynode):
    with raw(anynode) as c:
        assert c.raw_reply("PING") == b"+PONG\r\n"
        assert c.raw_reply("ping", "hello") == b"$5\r\nhello\r\n"
        assert c.cmd("PING", "a", "b") == "ERR wrong number of arguments for 'ping' command"
        assert c.raw_reply("ECHO", b"bin\x00\r\nary") == b"$9\r\nbin\x00\r\nary\r\n"
        assert c.cmd("ECHO") == "ERR wrong number of arguments for 'echo' command"
        assert c.cmd("echo", "a", "b") == "ERR wrong number of arguments for 'echo' command"
    r = client(anynode)
    assert r.ping() is True
    assert r.echo("x") == b"x"


def test_time(anynode):
    with raw(anynode) as c:
        t = c.cmd("TIME")
        assert isinstance(t, list) and len(t) == 2
        assert all(isinstance(x, bytes) for x in t)
        secs, usecs = int(t[0]), int(t[1])
        assert abs(secs - time.time()) < 5
        assert 0 <= usecs < 1000000
        assert c.cmd("TIME", "x") == "ERR wrong number of arguments for 'time' command"


def test_select(anynode):
    with raw(anynode) as c:
        assert c.cmd("SELECT", "0") == "OK"
        assert c.cmd("SELECT", "1") == "ERR DB index is out of range"
        assert c.cmd("SELECT", "-1") == "ERR DB index is out of range"
        assert c.cmd("SELECT", "x") == "ERR value is not an integer or out of range"
        assert c.cmd("SELECT") == "ERR wrong number of arguments for 'select' command"
    # redis-py's db=0 sends nothing, db=1 is refused at connect
    assert client(anynode, db=0).ping()
    with pytest.raises(redis.ResponseError, match="DB index is out of range"):
        client(anynode, db=1).ping()


# --------------------------------------------------------------------------
# unknown commands, arity
# --------------------------------------------------------------------------

def test_unknown_command_texts(anynode):
    with raw(anynode) as c:
        assert c.cmd("foo", "a", "b") == "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
        assert c.cmd("foo") == "ERR unknown command 'foo', with args beginning with: "
        r = c.cmd("foo", "x" * 200, "y")
        assert r == "ERR unknown command 'foo', with args beginning with: '" + "x" * 128 + "' "
        r = c.cmd("foo", "a" * 100, "b" * 100, "c")
        assert r == ("ERR unknown command 'foo', with args beginning with: '" + "a" * 100 + "' '"
                     + "b" * 25 + "' ")
        # CR/LF from the client cannot break the reply line
        c.send_cmd("foo\r\nbar", "x\ny")
        assert c.read() == "ERR unknown command 'foo  bar', with args beginning with: 'x y' "
        assert c.cmd("PING") == "PONG"  # connection still in sync


def test_arity_errors(anynode):
    cases = [("get",), ("set", "a"), ("mset", "a"), ("mset", "a", "1", "b"), ("del",),
             ("getrange", "k", "0"), ("incr", "a", "b"), ("expire", "k"), ("ttl",), ("keys",),
             ("dbsize", "x"), ("rename", "a"), ("getex",), ("client",), ("config",),
             ("auth",), ("strlen",), ("append", "a")]
    with raw(anynode) as c:
        for args in cases:
            assert c.cmd(*args) == f"ERR wrong number of arguments for '{args[0]}' command", args
        # command names are case-insensitive; the message uses the lower-case name
        assert c.cmd("GeT") == "ERR wrong number of arguments for 'get' command"


# --------------------------------------------------------------------------
# HELLO, RESP3, AUTH
# --------------------------------------------------------------------------

def test_hello_2_and_3(anynode):
    with raw(anynode) as c:
        r = c.cmd("HELLO")
        assert isinstance(r, list)  # RESP2: a flat array
        d = dict(zip(r[0::2], r[1::2]))
        assert d[b"server"] == b"redis" and d[b"proto"] == 2 and d[b"mode"] == b"standalone"
        assert d[b"role"] == b"master" and d[b"modules"] == []
        assert re.fullmatch(rb"\d+\.\d+\.\d+", d[b"version"])
        cid = d[b"id"]
        assert c.cmd("CLIENT", "ID") == cid

        r = c.cmd("HELLO", "3")
        assert isinstance(r, RespMap)
        assert r[b"proto"] == 3 and r[b"id"] == cid
        # RESP3 types from now on
        assert c.raw_reply("GET", "nosuchkey") == b"_\r\n"
        assert isinstance(c.cmd("CONFIG", "GET", "maxmemory"), RespMap)
        assert isinstance(c.cmd("INFO", "server"), Verbatim)
        r = c.cmd("HELLO")
        assert r[b"proto"] == 3  # no version: keep the current one
        r = c.cmd("HELLO", "2")
        assert isinstance(r, list)
        assert c.raw_reply("GET", "nosuchkey") == b"$-1\r\n"


def test_hello_errors_and_options(anynode):
    with raw(anynode) as c:
        assert c.cmd("HELLO", "4") == "NOPROTO unsupported protocol version"
        assert c.cmd("HELLO", "1") == "NOPROTO unsupported protocol version"
        assert c.cmd("HELLO", "x") == "ERR Protocol version is not an integer or out of range"
        assert c.cmd("HELLO", "3", "foo") == "ERR Syntax error in HELLO option 'foo'"
        assert c.cmd("HELLO", "3", "AUTH", "default") == "ERR Syntax error in HELLO option 'AUTH'"
        assert c.cmd("HELLO", "3", "SETNAME") == "ERR Syntax error in HELLO option 'SETNAME'"
        # a failed HELLO changes nothing
        assert c.raw_reply("GET", "x") == b"$-1\r\n"
        assert c.cmd("HELLO", "3", "AUTH", "bob", "pw") == \
            "WRONGPASS invalid username-password pair or user is disabled."
        assert c.cmd("HELLO", "3", "SETNAME", "a b") == \
            "ERR Client names cannot contain spaces, newlines or special characters."
        assert c.raw_reply("GET", "x") == b"$-1\r\n"
        r = c.cmd("HELLO", "3", "AUTH", "default", "anything", "SETNAME", "worker-7")
        assert r[b"proto"] == 3
        assert c.cmd("CLIENT", "GETNAME") == b"worker-7"


def test_auth_without_users(anynode):
    with raw(anynode) as c:
        assert c.cmd("AUTH", "secret") == (
            "ERR AUTH <password> called without any password configured for the default user. "
            "Are you sure your configuration is correct?")
        assert c.cmd("AUTH", "bob", "pw") == "WRONGPASS invalid username-password pair or user is disabled."
        assert c.cmd("AUTH", "default", "whatever") == "OK"
        assert c.cmd("AUTH", "a", "b", "c") == "ERR syntax error"
    # redis-py with a password uses AUTH <password> and fails like against Redis
    with pytest.raises(redis.ResponseError, match="called without any password"):
        client(anynode, password="x").ping()
    assert client(anynode, username="default", password="x").ping()


def test_resp3_reply_types(anynode):
    with raw(anynode) as c:
        c.cmd("HELLO", "3")
        assert c.cmd("SET", "k", "v") == "OK"
        assert c.cmd("GET", "k") == b"v"
        assert c.cmd("MGET", "k", "nope") == [b"v", None]
        assert c.raw_reply("MGET", "nope") == b"*1\r\n"
        assert c.read_raw(3) == b"_\r\n"
        assert c.cmd("EXISTS", "k") == 1
        assert isinstance(c.cmd("CLIENT", "INFO"), Verbatim)
        r = c.cmd("COMMAND", "INFO", "get")
        assert isinstance(r[0][2], RespSet)  # flags are a set in RESP3
        assert c.cmd("COMMAND", "INFO", "nosuch") == [None]
        d = c.cmd("COMMAND", "DOCS", "get")
        assert isinstance(d, RespMap) and isinstance(d[b"get"], RespMap)
        assert c.cmd("INCRBYFLOAT", "f", "1.5") == b"1.5"  # a bulk, as Redis answers
        assert c.cmd("SCAN", "0")[0] == b"0"
        assert c.raw_reply("PING") == b"+PONG\r\n"


# --------------------------------------------------------------------------
# QUIT RESET READONLY READWRITE
# --------------------------------------------------------------------------

def test_quit_answers_then_closes(anynode):
    with raw(anynode) as c:
        # everything before QUIT is answered, nothing after it is executed
        c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nq\r\n$1\r\n1\r\n*1\r\n$4\r\nQUIT\r\n"
               b"*3\r\n$3\r\nSET\r\n$1\r\nq\r\n$1\r\n2\r\n")
        closed, data = c.wait_closed(10)
        assert closed
        assert data == b"+OK\r\n+OK\r\n"
    assert client(anynode).get("q") == b"1"


def test_reset(anynode):
    with raw(anynode) as c:
        c.cmd("HELLO", "3", "SETNAME", "n1")
        assert c.cmd("READONLY") == "OK"
        assert c.raw_reply("RESET") == b"+RESET\r\n"
        assert c.raw_reply("GET", "x") == b"$-1\r\n"  # back to RESP2
        assert c.cmd("CLIENT", "GETNAME") is None or c.cmd("CLIENT", "GETNAME") == None  # noqa: E711
        line = c.cmd("CLIENT", "INFO").decode()
        assert " flags=N " in line and " resp=2" in line
        assert c.cmd("RESET", "x") == "ERR wrong number of arguments for 'reset' command"


def test_readonly_readwrite(anynode):
    r = client(anynode)
    r.set("ro", "1")
    with raw(anynode) as c:
        assert c.cmd("READONLY") == "OK"
        assert "flags=r " in c.cmd("CLIENT", "INFO").decode()
        assert c.cmd("GET", "ro") == b"1"  # stale reads still see the local state
        assert c.cmd("SET", "ro", "2") == "OK"  # writes are unaffected
        assert c.cmd("GET", "ro") == b"2"
        assert c.cmd("READWRITE") == "OK"
        assert "flags=N " in c.cmd("CLIENT", "INFO").decode()
        assert c.cmd("READONLY", "x") == "ERR wrong number of arguments for 'readonly' command"


# --------------------------------------------------------------------------
# CLIENT
# --------------------------------------------------------------------------

def test_client_subcommands(anynode):
    with raw(anynode) as a, raw(anynode) as b:
        ida, idb = a.cmd("CLIENT", "ID"), b.cmd("CLIENT", "ID")
        assert isinstance(ida, int) and ida != idb
        assert a.cmd("CLIENT", "GETNAME") == None  # noqa: E711
        assert a.raw_reply("CLIENT", "GETNAME") == b"$-1\r\n"
        assert a.cmd("CLIENT", "SETNAME", "alpha") == "OK"
        assert a.cmd("CLIENT", "GETNAME") == b"alpha"
        for bad in ("a b", "a\nb", "\x01"):
            assert a.cmd("CLIENT", "SETNAME", bad) == \
                "ERR Client names cannot contain spaces, newlines or special characters."
        assert a.cmd("CLIENT", "SETNAME") == "ERR wrong number of arguments for 'client|setname' command"
        assert a.cmd("CLIENT", "ID", "x") == "ERR wrong number of arguments for 'client|id' command"
        assert a.cmd("CLIENT", "FOO") == "ERR unknown subcommand 'FOO'. Try CLIENT HELP."
        assert isinstance(a.cmd("CLIENT", "HELP"), list)

        info_line = a.cmd("CLIENT", "INFO").decode()
        assert info_line.endswith("\n")
        f = dict(kv.split("=", 1) for kv in info_line.split())
        assert f["id"] == str(ida) and f["name"] == "alpha" and f["db"] == "0"
        assert f["cmd"] == "client|info" and f["resp"] == "2" and f["user"] == "default"
        assert re.fullmatch(r"127\.0\.0\.1:\d+", f["addr"])
        assert f["laddr"] == f"127.0.0.1:{anynode.resp_port}"

        lst = b.cmd("CLIENT", "LIST").decode()
        lines = [ln for ln in lst.split("\n") if ln]
        ids = {int(dict(kv.split("=", 1) for kv in ln.split())["id"]) for ln in lines}
        assert {ida, idb} <= ids
        assert "name=alpha " in lst
        only = b.cmd("CLIENT", "LIST", "ID", str(ida)).decode()
        assert only.count("\n") == 1 and f"id={ida} " in only
        assert b.cmd("CLIENT", "LIST", "TYPE", "normal").decode().count("\n") == len(lines)
        assert b.cmd("CLIENT", "LIST", "TYPE", "pubsub") == b""
        assert b.cmd("CLIENT", "LIST", "ID", "abc") == "ERR Invalid client ID"
        assert b.cmd("CLIENT", "LIST", "foo") == "ERR syntax error"

        # what newer clients send on connect is accepted
        assert a.cmd("CLIENT", "SETINFO", "LIB-NAME", "redis-py") == "OK"
        assert a.cmd("CLIENT", "SETINFO", "lib-ver", "4.3.4") == "OK"
        assert a.cmd("CLIENT", "SETINFO", "foo", "x") == "ERR Unrecognized option 'foo'"
        assert "lib-name=redis-py lib-ver=4.3.4" in a.cmd("CLIENT", "INFO").decode()
        assert a.cmd("CLIENT", "NO-EVICT", "on") == "OK"
        assert a.cmd("CLIENT", "NO-TOUCH", "off") == "OK"
        assert a.cmd("CLIENT", "NO-EVICT", "maybe") == "ERR syntax error"
    # a closed connection leaves the list
    r = client(anynode)
    remaining = r.client_list()
    assert ida not in {int(x["id"]) for x in remaining}


def test_redis_py_client_helpers(anynode):
    r = client(anynode, client_name="pyclient")
    assert r.client_getname() == "pyclient"  # redis-py sends CLIENT SETNAME on connect
    assert r.client_id() > 0
    me = r.client_info()
    assert me["name"] == "pyclient"
    assert any(c["name"] == "pyclient" for c in r.client_list())


# --------------------------------------------------------------------------
# COMMAND
# --------------------------------------------------------------------------

SPEC_COMMANDS = """ping echo hello quit reset select auth client command info dbsize time config
get set setnx setex psetex getset getdel getex mget mset msetnx incr decr incrby decrby incrbyfloat
append strlen getrange setrange del unlink exists type expire pexpire expireat pexpireat ttl pttl
expiretime pexpiretime persist keys scan rename renamenx randomkey flushdb flushall readonly
readwrite""".split()


def test_command(anynode):
    with raw(anynode) as c:
        n = c.cmd("COMMAND", "COUNT")
        everything = c.cmd("COMMAND")
        assert isinstance(everything, list) and len(everything) == n
        names = {e[0].decode() for e in everything}
        assert set(SPEC_COMMANDS) <= names
        for e in everything:
            assert len(e) == 10
            assert isinstance(e[1], int) and isinstance(e[2], list) and isinstance(e[6], list)
        get = c.cmd("COMMAND", "INFO", "GET", "nosuch", "mset")
        assert get[0][:6] == [b"get", 2, ["readonly", "fast"], 1, 1, 1]  # flags: status replies
        assert get[1] == None  # noqa: E711
        assert get[2][0] == b"mset" and get[2][1] == -3 and get[2][3:6] == [1, -1, 2]
        assert "denyoom" in get[2][2] and "write" in get[2][2]
        assert "@write" in get[2][6] and "@string" in get[2][6]
        docs = c.cmd("COMMAND", "DOCS", "set", "nosuch")
        assert list(dict(zip(docs[0::2], docs[1::2])).keys()) == [b"set"]
        d = dict(zip(docs[1][0::2], docs[1][1::2]))
        assert d[b"group"] == b"string" and d[b"since"] == b"1.0.0" and d[b"summary"]
        alldocs = c.cmd("COMMAND", "DOCS")
        assert len(alldocs) == 2 * n
        # every command that takes arguments documents them (redis-cli hints)
        no_args = {b"quit", b"reset", b"readonly", b"readwrite", b"time", b"randomkey", b"dbsize",
                   b"multi", b"exec", b"discard", b"unwatch", b"asking"}
        for name, doc in zip(alldocs[0::2], alldocs[1::2]):
            d = dict(zip(doc[0::2], doc[1::2]))
            assert (b"arguments" in d) == (name not in no_args), name
            if b"arguments" in d:
                assert d[b"arguments"], name
        sd = dict(zip(docs[1][0::2], docs[1][1::2]))[b"arguments"]
        assert [dict(zip(a[0::2], a[1::2]))[b"name"] for a in sd] == \
            [b"key", b"value", b"nx", b"get", b"seconds"]
        assert sorted(x.decode() for x in c.cmd("COMMAND", "LIST")) == sorted(names)
        assert c.cmd("COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2") == [b"a", b"b"]
        assert c.cmd("COMMAND", "GETKEYS", "GET") == "ERR Invalid number of arguments specified for command"
        assert c.cmd("COMMAND", "GETKEYS", "NOPE", "x") == "ERR Invalid command specified"
        assert c.cmd("COMMAND", "GETKEYS", "PING") == "ERR The command has no key arguments"
        assert c.cmd("COMMAND", "FOO") == "ERR unknown subcommand 'FOO'. Try COMMAND HELP."
        assert c.cmd("COMMAND", "COUNT", "x") == "ERR wrong number of arguments for 'command|count' command"
    assert client(anynode).command_count() == n


# --------------------------------------------------------------------------
# INFO DBSIZE
# --------------------------------------------------------------------------

def test_info_sections_and_values(anynode):
    r = client(anynode)
    r.set("a", "1")
    r.set("b", "2", ex=100)
    r.get("a")
    r.get("missing")
    with raw(anynode) as c:
        text = c.cmd("INFO").decode()
        for title in ("# Server", "# Clients", "# Memory", "# Persistence", "# Stats",
                      "# Replication", "# Keyspace"):
            assert title + "\r\n" in text, title
        assert "\r\n\r\n# Clients\r\n" in text  # sections are separated by a blank line
        assert c.cmd("INFO", "nosuchsection") == b""
        only = c.cmd("INFO", "keyspace").decode()
        assert only == "# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n"
        two = c.cmd("INFO", "SERVER", "clients").decode()
        assert two.startswith("# Server\r\n") and "# Clients" in two and "# Memory" not in two
    i = info(anynode)
    assert i["redis_mode"] == "standalone"
    assert i["cairn_version"]
    assert int(i["tcp_port"]) == anynode.resp_port
    assert int(i["process_id"]) == anynode.pid
    assert int(i["uptime_in_seconds"]) >= 0
    assert int(i["connected_clients"]) >= 2  # the redis-py connection and this one
    assert int(i["used_memory"]) > 0
    assert int(i["used_memory_rss"]) > int(i["used_memory"])
    assert re.fullmatch(r"\d+(\.\d\d[KMGTP]|B)", i["used_memory_human"])
    assert i["maxmemory"] == "0" and i["maxmemory_policy"] == "noeviction"
    assert int(i["total_commands_processed"]) >= 4
    assert int(i["total_connections_received"]) >= 2
    assert int(i["keyspace_hits"]) >= 1 and int(i["keyspace_misses"]) >= 1
    assert i["expired_keys"] == "0" and i["evicted_keys"] == "0"
    assert i["role"] == "master"
    assert i["aof_enabled"] == ("1" if anynode.persistence == "durable" else "0")
    assert i["cairn_persistence"] == anynode.persistence
    assert i["db0"] == "keys=2,expires=1,avg_ttl=0"
    # redis-py parses it
    parsed = r.info()
    assert parsed["db0"]["keys"] == 2 and parsed["role"] == "master"
    assert r.dbsize() == 2
    with raw(anynode) as c:
        assert c.cmd("DBSIZE") == 2


def test_info_counts_commands_and_connections(anynode):
    before = info(anynode, "stats")
    r = client(anynode)
    for i in range(20):
        r.set(f"k{i}", i)
    after = info(anynode, "stats")
    assert int(after["total_commands_processed"]) >= int(before["total_commands_processed"]) + 20
    assert int(after["total_connections_received"]) >= int(before["total_connections_received"]) + 2


# --------------------------------------------------------------------------
# CONFIG
# --------------------------------------------------------------------------

def test_config_get_of_the_encoding_limits_matches_redis(anynode, redis_server):  # noqa: F811
    names = ["hash-max-listpack-entries", "hash-max-listpack-value", "list-max-listpack-size",
             "list-compress-depth", "set-max-intset-entries", "zset-max-listpack-entries",
             "zset-max-listpack-value", "hll-sparse-max-bytes"]
    with raw(anynode) as c, RawResp(redis_server) as r:
        for name in names:
            assert c.cmd("CONFIG", "GET", name) == r.cmd("CONFIG", "GET", name), name


def test_config_get(anynode):
    r = client(anynode)
    cfg = r.config_get("*")
    assert cfg["databases"] == "1"
    assert cfg["maxmemory"] == "0" and cfg["maxmemory-policy"] == "noeviction"
    assert cfg["port"] == str(anynode.resp_port) and cfg["bind"] == "127.0.0.1"
    assert cfg["save"] == ""
    assert cfg["appendonly"] == ("yes" if anynode.persistence == "durable" else "no")
    assert cfg["proto-max-bulk-len"] == "1048576"
    assert r.config_get("maxmemory*") == {"maxmemory": "0", "maxmemory-policy": "noeviction",
                                          "maxmemory-samples": "10"}
    assert r.config_get("MAXMEMORY") == {"maxmemory": "0"}
    assert r.config_get("nothing") == {}
    with raw(anynode) as c:
        # several patterns (Redis 7), each parameter once
        pairs = c.cmd("CONFIG", "GET", "port", "p*", "databases")
        d = dict(zip(pairs[0::2], pairs[1::2]))
        assert len(pairs) == 2 * len(d) and d[b"port"] and d[b"databases"] == b"1"
        assert c.cmd("CONFIG", "GET") == "ERR wrong number of arguments for 'config|get' command"
        assert c.cmd("CONFIG", "SET", "maxmemory").startswith(
            "ERR wrong number of arguments for 'config|set'")
        err = c.cmd("CONFIG", "SET", "maxclients", "1")  # a flag of cairnd's
        assert isinstance(err, Err) and err == ("ERR CONFIG SET failed (possibly related to argument "
                                                "'maxclients') - can't set immutable config")
        assert c.cmd("CONFIG", "REWRITE").startswith("ERR CONFIG REWRITE is not supported")
        assert c.cmd("CONFIG", "FOO") == "ERR unknown subcommand 'FOO'. Try CONFIG HELP."
        assert c.cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"0"]
