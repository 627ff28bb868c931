"""Migration from Redis: `cairnd --restore dump.rdb` (issue 16) loads an
RDB file that Debian's redis-server 7.0 wrote with SAVE.

- every type and encoding the store holds (strings as integers, LZF and
  bytes; listpack and table hashes; quicklists; intsets, listpack and
  table sets; listpack and skiplist sorted sets; a HyperLogLog; a stream
  with a group, a consumer and a pending entry) comes back with DUMP
  payloads byte for byte equal to redis-server's own, expiries kept, keys
  already expired left out; the data is an ordinary durable history (a
  restart without the flag keeps it), and `--persistence none` takes it too;
- function libraries come along (FCALL works on the restored node);
- what cairn cannot take is refused with a message naming it, exit status
  1, and nothing written: a truncated file, a flipped byte (the checksum),
  a key in database 1, a file that is no RDB; a data dir
  that holds anything is refused before the file is read (status 2)."""
import shutil
import signal
import subprocess

import pytest
import redis

from conftest import wait_until
from ports import free_ports


class RedisDir:
    """redis-server in a directory of its own, saving there on SAVE."""

    def __init__(self, path):
        self.dir = path
        self.dir.mkdir()
        (self.port,) = free_ports(1)
        self.p = subprocess.Popen(
            [shutil.which("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.r = redis.Redis(port=self.port, socket_timeout=10)

        def up():
            try:
                return self.r.ping()
            except redis.ConnectionError:
                return False
        wait_until(up, 10, 0.05, "redis-server to answer")

    def save(self):
        assert self.r.save()
        return self.dir / "dump.rdb"

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()


@pytest.fixture
def rdir(tmp_path):
    d = RedisDir(tmp_path / "redis")
    try:
        yield d
    finally:
        d.stop()


def fill(r):
    r.set("s", "hello")
    r.set("n", "12345")
    r.set("big_int", "9999999999999")
    r.set("lzf", "hello world " * 100)
    r.set("ttl", "v", ex=600)
    r.set("gone", "x", px=1)
    r.hset("h", mapping={"a": "1", "b": "two"})
    r.hset("h_table", mapping={f"f{i}": f"v{i}" for i in range(700)})
    r.rpush("l", *range(100))
    r.rpush("l_nodes", *[("e%d" % i) * (i % 40 + 1) for i in range(3000)])
    r.sadd("si", 1, 2, 3, 70000)
    r.sadd("ss", "a", "b")
    r.sadd("s_table", *[f"m{i}" for i in range(600)])
    r.zadd("z", {"a": 1, "b": 2.5})
    r.zadd("z_skiplist", {f"m{i}": i * 1.5 for i in range(300)})
    r.pfadd("hll", *range(100))
    r.xadd("x", {"f": "v", "n": "1"}, id="1-0")
    r.xadd("x", {"f": "w", "n": "2"}, id="2-0")
    r.xgroup_create("x", "g", "0")
    r.xreadgroup("g", "c", {"x": ">"}, count=1)


def test_every_type_comes_back_from_a_redis_rdb(make_node, rdir):
    fill(rdir.r)
    wait_until(lambda: rdir.r.exists("gone") == 0, 5, 0.01, "gone to expire")
    rdir.r.set("gone", "x", px=300)  # expired by the time cairn reads the file
    path = rdir.save()
    keys = sorted(k for k in rdir.r.keys() if k != b"gone")
    import time
    time.sleep(0.4)
    n = make_node(extra_args=["--restore", str(path)]).start(timeout=60)
    c = redis.Redis(port=n.resp_port, socket_timeout=10)
    assert sorted(c.keys()) == keys
    for k in keys:
        assert c.dump(k) == rdir.r.dump(k), k
    assert 0 < c.ttl("ttl") <= 600 and c.ttl("s") == -1
    assert c.pfcount("hll") == 100
    assert c.xpending("x", "g")["pending"] == 1
    log = n.stderr_text()
    assert "read the Redis RDB file" in log and "redis_version=7.0" in log and "expired_left_out=1" in log
    # an ordinary durable history: a restart without the flag keeps it
    n.stop()
    n.extra_args = []
    n.start()
    c = redis.Redis(port=n.resp_port, socket_timeout=10)
    assert sorted(c.keys()) == keys and c.dump("z_skiplist") == rdir.r.dump("z_skiplist")
    # into memory only, too
    m = make_node(node_id=1, persistence="none", extra_args=["--restore", str(path)]).start()
    assert redis.Redis(port=m.resp_port, socket_timeout=10).dump("h_table") == rdir.r.dump("h_table")


def test_function_libraries_come_along(make_node, rdir):
    """Redis 7's function libraries in the file are checked as FUNCTION
    LOAD checks them and loaded with the keys: FCALL works at once."""
    rdir.r.function_load("#!lua name=lib\n"
                         "redis.register_function('f', function(keys, args) return 1 end)\n"
                         "redis.register_function{function_name='g', callback=function(keys, args)"
                         " return redis.call('get', keys[1]) end, flags={'no-writes'}}")
    rdir.r.function_load("#!lua name=other\nredis.register_function('h', function() return 'h' end)")
    rdir.r.set("k", "v")
    path = rdir.save()
    n = make_node(extra_args=["--restore", str(path)]).start(timeout=60)
    c = redis.Redis(port=n.resp_port, socket_timeout=10)
    assert c.fcall("f", 0) == 1 and c.fcall("h", 0) == b"h"
    assert c.fcall_ro("g", 1, "k") == b"v"
    # FUNCTION LIST (RESP2): per library a flat list name, value, ...
    libs = sorted(dict(zip(x[::2], x[1::2]))[b"library_name"] for x in c.function_list())
    assert libs == [b"lib", b"other"]
    assert "function_libraries=2" in n.stderr_text()


def refused(node, status=1):
    r = subprocess.run(node.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=30)
    assert r.returncode == status, r.stderr
    assert not node.data_dir.exists() or status == 2  # nothing written
    return r.stderr


def test_what_cairn_cannot_take_is_refused_and_nothing_written(make_node, rdir, tmp_path):
    fill(rdir.r)
    good = rdir.save().read_bytes()
    cases = tmp_path / "cases"
    cases.mkdir()

    def case(name, data):
        p = cases / name
        p.write_bytes(data)
        return make_node(extra_args=["--restore", str(p)])

    assert "cut short" in refused(case("cut.rdb", good[:len(good) // 2]))
    assert "end marker" in refused(case("cut_at_end.rdb", good[:-9]))
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x40
    err = refused(case("flipped.rdb", bytes(flipped)))
    assert "checksum" in err or "malformed" in err, err
    cksum = bytearray(good)
    cksum[-1] ^= 1  # only the checksum
    assert "checksum does not match" in refused(case("cksum.rdb", bytes(cksum)))
    assert "not a Redis RDB file" in refused(case("text.rdb", b"hello, not an RDB file\n"))
    assert "version 99" in refused(case("v99.rdb", b"REDIS0099" + good[9:]))
    # a key in database 1
    rdir.r.execute_command("SELECT", "1")
    rdir.r.set("elsewhere", "x")
    err = refused(case("db1.rdb", rdir.save().read_bytes()))
    assert "database 1" in err and "elsewhere" in err, err
    rdir.r.flushall()
    # more function libraries than cairn holds (FUNCTION RESTORE's 1024)
    for i in range(1025):
        rdir.r.function_load(f"#!lua name=l{i}\nredis.register_function('f{i}', function() return 1 end)")
    assert "more function libraries" in refused(case("libs.rdb", rdir.save().read_bytes()))
    rdir.r.function_flush()
    # a data dir that holds anything: refused before the file is read
    n = make_node(extra_args=["--restore", str(cases / "cut.rdb")])
    n.data_dir.mkdir(parents=True)
    (n.data_dir / "something").write_text("x")
    assert "not empty" in refused(n, status=2)
    # one source at a time
    n = make_node(extra_args=["--restore", str(cases / "cut.rdb"),
                              "--restore-from-postgres", "postgresql://127.0.0.1:1/x"])
    assert "one source" in refused(n, status=2)
