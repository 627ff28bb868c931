"""The PostgreSQL transaction log (--txlog-postgres, issue 16), against a
real PostgreSQL server (pg_helpers.Postgres: Debian's postgresql on a
loopback port of its own).

What must hold: every committed change lands in cairn_txlog once, in
revision order, with no gap; writes never wait for PostgreSQL (they go on
while it is down, and it catches up when it is back); a new leader goes on
from the progress row; replaying the table gives the store's keyspace."""
import re
import subprocess
import threading
import time

import pytest
import redis
import requests

from conftest import b64url_decode, wait_until
from pg_helpers import Postgres, replay, wait_shipped


@pytest.fixture
def pg():
    p = Postgres()
    try:
        p.start()
        yield p
    finally:
        p.stop_and_remove()


def keyspace(node):
    """key -> value of every live string key, through the public listing."""
    out, cursor = {}, None
    while True:
        params = {"limit": "1000", "values": "true", "consistency": "stale"}
        if cursor:
            params["cursor"] = cursor
        doc = node.request("GET", "/v1/keys", params=params).json()
        for e in doc["keys"]:
            if "value_b64" in e:  # strings: other types are listed without their value
                out[b64url_decode(e["key_b64"])] = b64url_decode(e["value_b64"])
        cursor = doc.get("next_cursor")
        if not cursor:
            return out


def as_listing(state):
    """replay() state without the expiries: key -> value bytes."""
    return {k: v for k, (v, _) in state.items()}


def test_every_write_lands_once_in_revision_order(make_node, pg):
    node = make_node(extra_args=["--txlog-postgres", pg.url]).start()
    s = requests.Session()
    for i in range(20):
        assert s.put(node.url(f"/v1/key/h{i:02d}"), data=f"v{i}").status_code == 201
    assert s.delete(node.url("/v1/key/h03")).status_code == 200
    r = redis.Redis(port=node.resp_port, socket_timeout=10)
    r.mset({"m1": "a", "m2": "b"})
    r.incr("counter")
    r.incr("counter")
    r.append("m1", "zz")
    r.rename("m2", "m3")
    r.delete("h04", "h05", "missing")
    r.set("ttl", "x", ex=300)
    r.expire("h06", 600)
    r.set("bin\x00key", b"\x00\xff\x01")
    st = wait_shipped(node, pg)
    state, last = replay(pg)
    assert last == st["revision"]
    assert as_listing(state) == keyspace(node)
    assert state[b"counter"][0] == b"2" and state[b"m1"][0] == b"azz"
    assert b"m2" not in state and state[b"m3"][0] == b"b"
    assert state[b"bin\x00key"][0] == b"\x00\xff\x01"
    assert state[b"ttl"][1] > time.time() * 1000 and state[b"h06"][1] > time.time() * 1000
    # one multi-key command is one revision, its changes numbered by seq
    rows = pg.sql("SELECT count(*) FROM cairn_txlog GROUP BY revision HAVING count(*) > 1")
    assert len(rows) >= 3  # MSET, RENAME, DEL h04 h05
    assert pg.sql("SELECT revision FROM cairn_txlog_progress")[0][0] == str(st["revision"])
    # FLUSHDB is one event that clears everything before it
    r.flushdb()
    r.set("after", "flush")
    wait_shipped(node, pg)
    state, _ = replay(pg)
    assert as_listing(state) == {b"after": b"flush"}


def test_restart_ships_nothing_twice(make_node, pg):
    node = make_node(extra_args=["--txlog-postgres", pg.url]).start()
    for i in range(30):
        assert node.put(f"r{i}", "x").status_code == 201
    wait_shipped(node, pg)
    node.stop()
    node.start()  # replays its log: recorded again, already in PostgreSQL
    assert node.put("after-restart", "y").status_code == 201
    st = wait_shipped(node, pg)
    state, last = replay(pg)  # asserts no duplicate or missing revision
    assert last == st["revision"] and state[b"after-restart"][0] == b"y"


def test_postgres_down_mid_load_loses_and_duplicates_nothing(make_node, pg):
    node = make_node(extra_args=["--txlog-postgres", pg.url]).start()
    stop = threading.Event()
    results = {"ok": 0, "bad": []}

    def load():
        s = requests.Session()
        i = 0
        while not stop.is_set() and i < 100000:
            r = s.put(node.url(f"/v1/key/load{i % 500:03d}"), data=str(i), timeout=10)
            if r.status_code == 201:
                results["ok"] += 1
            else:
                results["bad"].append(r.status_code)
            i += 1

    t = threading.Thread(target=load, daemon=True)
    t.start()
    try:
        wait_until(lambda: node.status()["txlog"]["shipped"] > 50, 15, 0.05, "first batches")
        pg.stop()  # immediate: like a crash
        before = results["ok"]
        # writes go on without PostgreSQL, and the lag shows it
        wait_until(lambda: results["ok"] > before + 200, 20, 0.05, "writes while PostgreSQL is down")
        st = node.status()["txlog"]
        assert st["lag"] > 0 and not st["connected"], st
        metrics = node.request("GET", "/metrics").text
        assert "cairn_txlog_lag_revisions" in metrics
        time.sleep(1.0)
        pg.start()
        wait_until(lambda: results["ok"] > before + 400, 20, 0.05, "writes after PostgreSQL is back")
    finally:
        stop.set()
        t.join(15)
    assert not results["bad"], results["bad"][:10]
    st = wait_shipped(node, pg, timeout=30)
    state, last = replay(pg)
    assert last == st["revision"]
    assert as_listing(state) == keyspace(node)
    count = int(pg.sql("SELECT count(*) FROM cairn_txlog")[0][0])
    assert count == st["revision"]  # single-key PUTs: one row per revision, none twice
    assert node.status()["txlog"]["connected"]


def _leader(nodes):
    def find():
        for x in nodes:
            if x.running:
                try:
                    if x.status()["role"] == "leader":
                        return x
                except (requests.RequestException, AssertionError):
                    pass
        return None
    return wait_until(find, 15, 0.05, "a leader")


@pytest.mark.timeout_s(120)
def test_new_leader_goes_on_from_the_progress_row(make_node, pg):
    nodes = [make_node(node_id=i + 1) for i in range(3)]
    members = ",".join(f"{x.node_id}=127.0.0.1:{x.peer_port}" for x in nodes)
    for x in nodes:
        x.extra_args = ["--initial-cluster", members, "--txlog-postgres", pg.url]
        x.start(wait_ready=False)
    for x in nodes:
        x.wait_ready(20)
    leader = _leader(nodes)
    s = requests.Session()
    for i in range(100):
        assert s.put(leader.url(f"/v1/key/a{i:03d}"), data=str(i)).status_code == 201
    # PostgreSQL stops before the leader dies: the new leader must ship what
    # the old one had not, from its own buffer
    pg.stop()
    for i in range(100, 150):
        assert s.put(leader.url(f"/v1/key/a{i:03d}"), data=str(i)).status_code == 201
    leader.kill9()
    rest = [x for x in nodes if x is not leader]
    new = _leader(rest)
    for i in range(150, 200):
        r = s.put(new.url(f"/v1/key/a{i:03d}"), data=str(i), timeout=10)
        assert r.status_code == 201, r.text
    pg.start()
    st = wait_shipped(new, pg, timeout=30)
    state, last = replay(pg)
    assert last == st["revision"]
    assert as_listing(state) == keyspace(new)
    assert len([k for k in state if k.startswith(b"a")]) == 200
    # followers do not ship
    other = next(x for x in rest if x is not new)
    assert other.status()["txlog"]["shipping"] is False


def test_bad_url_is_refused_without_echoing_it(make_node):
    n = make_node(extra_args=["--txlog-postgres", "postgresql://u:s3cret@host:5432/db?bogus=1"])
    r = subprocess.run(n.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10,
                       text=True)
    assert r.returncode == 2, r.stderr
    assert "--txlog-postgres" in r.stderr and "s3cret" not in r.stderr
    r = subprocess.run(n.argv(["--txlog-buffer", "10k"]), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10, text=True)
    assert r.returncode == 2 and "--txlog-buffer" in r.stderr


# ---- --restore-from-postgres: the book's ReadEvents ----------------------

def _fill(node):
    r = redis.Redis(port=node.resp_port, socket_timeout=10)
    for i in range(300):
        r.set(f"k{i:03d}", f"v{i}")
    r.mset({"m1": "a", "m2": b"\x00\xffbin"})
    r.incrby("counter", 41)
    r.incr("counter")
    r.delete("k000", "k001")
    r.rename("k002", "renamed")
    r.set("ttl", "x", ex=600)
    r.flushdb()  # everything above goes: replay must honour it
    for i in range(200):
        r.set(f"after{i:03d}", f"w{i}")
    r.set("ttl", "y", ex=600)
    r.set("gone-soon", "z", px=1)  # expired by the time of the restore
    r.delete("after000")


@pytest.mark.timeout_s(120)
def test_restore_from_postgres_rebuilds_the_keyspace(make_node, pg):
    src = make_node(extra_args=["--txlog-postgres", pg.url]).start()
    _fill(src)
    wait_shipped(src, pg)
    want = keyspace(src)
    assert len(want) == 200 and b"after000" not in want
    time.sleep(0.01)
    # a new node from the table alone; then a normal node with that data
    dst = make_node(node_id=1, extra_args=["--restore-from-postgres", pg.url]).start(timeout=60)
    assert keyspace(dst) == want
    ttl = redis.Redis(port=dst.resp_port, socket_timeout=10).ttl("ttl")
    assert 0 < ttl <= 600  # the absolute expiry came along
    assert "restored from PostgreSQL" in dst.stderr_text()
    # durable: it survives a restart without the flag
    dst.stop()
    dst.extra_args = []
    dst.start()
    assert keyspace(dst) == want


def test_restore_into_memory_only_node(make_node, pg):
    src = make_node(extra_args=["--txlog-postgres", pg.url]).start()
    _fill(src)
    wait_shipped(src, pg)
    dst = make_node(persistence="none", extra_args=["--restore-from-postgres", pg.url]).start()
    assert keyspace(dst) == keyspace(src)


def test_restore_refuses_a_table_with_a_gap_and_writes_nothing(make_node, pg):
    src = make_node(extra_args=["--txlog-postgres", pg.url]).start()
    for i in range(20):
        assert src.put(f"g{i}", "v").status_code == 201
    wait_shipped(src, pg)
    pg.sql("DELETE FROM cairn_txlog WHERE revision = 7")
    dst = make_node(extra_args=["--restore-from-postgres", pg.url])
    r = subprocess.run(dst.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=30)
    assert r.returncode == 1, r.stderr
    assert "gap" in r.stderr and "revision 8" in r.stderr, r.stderr
    assert not dst.data_dir.exists()  # nothing written
    # a data dir that holds anything is refused before PostgreSQL is asked
    dst.data_dir.mkdir(parents=True)
    (dst.data_dir / "something").write_text("x")
    r = subprocess.run(dst.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=30)
    assert r.returncode == 2 and "not empty" in r.stderr, r.stderr


def test_restore_refuses_what_it_cannot_do(make_node, pg):
    n = make_node(extra_args=["--restore-from-postgres", pg.url, "--txlog-postgres", pg.url])
    r = subprocess.run(n.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=30)
    assert r.returncode == 2 and "same" in r.stderr, r.stderr
    n = make_node(extra_args=["--restore-from-postgres", pg.url, "--join", "http://127.0.0.1:1"])
    r = subprocess.run(n.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=30)
    assert r.returncode == 2 and "cluster of one" in r.stderr, r.stderr
    # no table at all
    pg.sql("DROP TABLE IF EXISTS cairn_txlog")
    n = make_node(extra_args=["--restore-from-postgres", pg.url])
    r = subprocess.run(n.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=30)
    assert r.returncode == 1 and "cairn_txlog" in r.stderr, r.stderr


# ---- filling a gap with a base ------------------------------------------

def test_enabled_on_a_store_with_data_writes_a_base_first(make_node, pg):
    # no transaction log yet; snapshots, so that a restart does not replay
    # the whole history from the log (which would ship it all, no base)
    snap = ["--snapshot-threshold", "100", "--snapshot-trailing", "10"]
    node = make_node(extra_args=snap).start()
    r = redis.Redis(port=node.resp_port, socket_timeout=10)
    for i in range(500):
        r.set(f"old{i:03d}", f"v{i}")
    r.delete("old000")
    r.set("ttl", "x", ex=600)
    r.hset("hash", mapping={"a": "1", "b": "2"})
    r.zadd("zs", {"m": 2.5})
    wait_until(lambda: node.status()["snapshots"] >= 3, 15, 0.05, "snapshots")
    node.stop()
    node.extra_args = snap + ["--txlog-postgres", pg.url]
    node.start()
    r = redis.Redis(port=node.resp_port, socket_timeout=10)
    r.set("new", "after")
    st = wait_shipped(node, pg)
    assert st["txlog"]["bases"] == 1 and not st["txlog"]["gap"]
    state, last = replay(pg)  # accepts the base, checks the rest
    assert last == st["revision"]
    typed = (b"hash", b"zs")  # in the base as their DUMP payloads

    def strings(listing):
        return {k: v for k, v in listing.items() if k not in typed}
    assert strings(as_listing(state)) == strings(keyspace(node))
    for k in typed:
        assert state[k][0] == ("dump", r.dump(k)), k
    assert state[b"ttl"][1] > 0  # expiries come along in the base
    kinds = pg.sql("SELECT event_type, count(*) FROM cairn_txlog GROUP BY 1 ORDER BY 1")
    assert ["4", "1"] in kinds and ["5", "2"] in kinds  # one base marker, two typed values
    # and a restore from it equals the store
    dst = make_node(node_id=1, extra_args=["--restore-from-postgres", pg.url]).start(timeout=60)
    assert keyspace(dst) == keyspace(node)
    d = redis.Redis(port=dst.resp_port, socket_timeout=10)
    assert [d.dump(k) for k in typed] == [r.dump(k) for k in typed]


@pytest.mark.timeout_s(120)
def test_outage_longer_than_the_buffer_is_filled_by_a_base(make_node, pg):
    node = make_node(extra_args=["--txlog-postgres", pg.url, "--txlog-buffer", "1m"]).start()
    assert node.put("first", "1").status_code == 201
    wait_shipped(node, pg)
    pg.stop()
    s = requests.Session()
    big = b"x" * 2000
    for i in range(1500):  # ~3 MB of changes into a 1 MiB buffer
        assert s.put(node.url(f"/v1/key/b{i % 700:03d}"), data=big + b"%d" % i).status_code == 201
    metrics = node.request("GET", "/metrics").text
    dropped = float(re.search(r"^cairn_txlog_dropped_events_total (\S+)$", metrics, re.M).group(1))
    assert dropped > 0
    pg.start()
    st = wait_shipped(node, pg, timeout=30)
    assert st["txlog"]["bases"] >= 1
    state, last = replay(pg)
    assert last == st["revision"]
    assert as_listing(state) == keyspace(node)


def test_every_type_is_recorded_and_restored(make_node, pg):
    """A hash, list, set, sorted set or stream is recorded whole after each
    change (its DUMP payload, event type 5) and comes back from
    --restore-from-postgres byte for byte; an emptied one is deleted; one
    holding more than 1 MiB is recorded as deleted and counted, so a
    restore never brings back a value the key no longer has."""
    node = make_node(extra_args=["--txlog-postgres", pg.url]).start()
    r = redis.Redis(port=node.resp_port, socket_timeout=10)
    r.set("t", "old string")
    r.hset("hh", "f", "v")
    r.rename("hh", "t")  # t now holds a hash
    r.hset("h2", mapping={"a": "1", "b": "2"})
    r.rpush("l", *range(50))
    r.expire("l", 600)
    r.sadd("s", "a", "b", "c")
    r.zadd("z", {"m": 1.5, "n": 2})
    r.xadd("x", {"f": "v"}, id="1-0")
    r.xgroup_create("x", "g", "0")
    r.xreadgroup("g", "c", {"x": ">"})
    r.set("str", "kept")
    r.hdel("h2", "a", "b")  # emptied: deleted
    r.hset("big", mapping={f"f{i:06d}": "x" * 60 for i in range(20000)})  # over 1 MiB
    st = wait_shipped(node, pg)
    state, last = replay(pg)  # no revision missing
    assert last == st["revision"]
    typed = ("t", "l", "s", "z", "x")
    assert set(state) == {k.encode() for k in typed + ("str",)}
    for k in typed:
        assert state[k.encode()][0] == ("dump", r.dump(k)), k
    assert state[b"l"][1] > 0  # the expiry came along
    assert state[b"str"][0] == b"kept"
    text = requests.get(node.url("/metrics"), timeout=10).text
    assert re.search(r"^cairn_txlog_skipped_typed_total 1$", text, re.M), text
    dst = make_node(node_id=1, extra_args=["--restore-from-postgres", pg.url]).start(timeout=60)
    d = redis.Redis(port=dst.resp_port, socket_timeout=10)
    for k in typed:
        assert d.dump(k) == r.dump(k), k
    assert 0 < d.ttl("l") <= 600
    assert d.get("str") == b"kept" and d.exists("big", "h2", "hh") == 0
    r.set("t", "a string again")  # SET replaces the hash
    wait_shipped(node, pg)
    state, _ = replay(pg)
    assert state[b"t"][0] == b"a string again"