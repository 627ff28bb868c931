"""Durability: SPEC.md §1 (data dir ownership, signals), §4 (Raft log,
snapshots, crash safety, persistence none)."""
import os
import random
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from conftest import (ConnectionClosed, RawHttp, b64url_decode, build_request, dir_digest, dir_listing, kpath,
                      pipelined_puts, raft_dir, wait_until)

CLOSED_RE = re.compile(r"^(\d{16})-(\d{16})$")
OPEN_RE = re.compile(r"^open-(\d+)$")
SNAP_RE = re.compile(r"^snapshot-(\d+)-(\d+)-(\d+)$")


def listed_map(node, values=True, limit=10000):
    out = {}
    for e in node.list_all(values=values, limit=limit):
        k = b64url_decode(e["key_b64"])
        assert k not in out, f"key listed twice: {k!r}"
        out[k] = b64url_decode(e["value_b64"]) if values else e
    return out


def flip_byte(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))


def last_nonzero(path):
    data = Path(path).read_bytes()
    i = len(data) - 1
    while i >= 0 and data[i] == 0:
        i -= 1
    return i


def write_sequential(node, items):
    """PUT items one after the other on one connection; return acked keys in order."""
    acked = []
    with node.raw(timeout=20) as c:
        for k, v in items:
            r = c.request("PUT", kpath(k), body=v)
            assert r.status == 201, (k, r)
            acked.append(k)
    return acked


# ---------------------------------------------------------------------------
# restarts
# ---------------------------------------------------------------------------

def test_persists_across_sigterm_restart(node):
    items = {b"plain": b"v1", b"bin\x00\xff": bytes(range(256)), b"dir/a/b": b"slashes",
             b"ttl-long": b"expires later"}
    for k, v in items.items():
        params = {"ttl": "1000"} if k == b"ttl-long" else None
        assert node.put(k, v, params=params).status_code == 201
    node.put(b"plain", b"v2")
    items[b"plain"] = b"v2"
    node.put(b"gone", b"x")
    node.delete(b"gone")
    before = {k: node.get(k) for k in items}
    st = node.status()

    rc = node.stop()
    assert rc == 0, f"SIGTERM exit code {rc}\n{node.stderr_text()[-2000:]}"
    node.start()

    assert listed_map(node) == items
    for k, v in items.items():
        r = node.get(k)
        assert r.status_code == 200 and r.content == v
        for h in ("ETag", "X-Cairn-Create-Revision", "X-Cairn-Mod-Revision", "X-Cairn-Version"):
            assert r.headers.get(h) == before[k].headers.get(h), (k, h)
    ttl = int(node.get(b"ttl-long").headers["X-Cairn-TTL"])
    assert 900 <= ttl <= 1000
    assert node.get(b"gone").status_code == 404
    st2 = node.status()
    assert st2["revision"] == st["revision"]
    assert st2["keys"] == st["keys"] == len(items)
    # the next write continues the revision sequence
    r = node.put(b"next", b"n")
    assert int(r.headers["X-Cairn-Revision"]) == st["revision"] + 1


@pytest.mark.timeout_s(150)
@pytest.mark.parametrize("snapshot_threshold", [None, "100"], ids=["default", "snapshots-every-100"])
def test_kill9_loses_no_acknowledged_write(make_node, snapshot_threshold):
    node = make_node(extra_args=["--snapshot-threshold", snapshot_threshold] if snapshot_threshold else []).start()
    acked = {}
    attempted = {}
    lock = threading.Lock()
    stop = threading.Event()
    errors = []

    def writer(wi):
        try:
            c = RawHttp(node.http_port, timeout=10)
            i = 0
            while not stop.is_set():
                k = b"w%d-%05d" % (wi, i)
                v = b"value-%d-%d-" % (wi, i) + os.urandom(8)
                with lock:
                    attempted[k] = v
                try:
                    r = c.request("PUT", kpath(k), body=v)
                except Exception:
                    return  # the server died under us: expected
                if r.status == 503:  # shed: retry the same key so the sequence has no holes
                    time.sleep(0.01)
                    continue
                if r.status != 201:
                    errors.append(AssertionError(f"PUT {k!r}: {r}"))
                    return
                with lock:
                    acked[k] = v
                i += 1
        except Exception as e:  # noqa: B902
            if not stop.is_set():
                errors.append(e)

    ts = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(4)]
    for t in ts:
        t.start()
    wait_until(lambda: len(acked) >= 2000 or errors, 100, 0.02, "2000 acknowledged writes")
    node.kill9()  # while writes are still in flight
    stop.set()
    for t in ts:
        t.join(15)
        assert not t.is_alive()
    assert not errors, errors[0]
    with lock:
        acked_now = dict(acked)
        attempted_now = dict(attempted)
    assert len(acked_now) >= 2000

    node.start(timeout=30)
    stored = listed_map(node)
    missing = [k for k in acked_now if k not in stored]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
    for k, v in stored.items():
        assert k in attempted_now, f"unknown key after restart: {k!r}"
        assert v == attempted_now[k], f"wrong value for {k!r}"
    for k in random.sample(sorted(acked_now), 200):
        r = node.get(k)
        assert r.status_code == 200 and r.content == acked_now[k]
    # per writer, the surviving keys are a prefix of its write order (log order)
    for wi in range(4):
        idx = sorted(int(k.split(b"-")[1]) for k in stored if k.startswith(b"w%d-" % wi))
        assert idx == list(range(len(idx))), f"writer {wi}: holes in the surviving writes"


@pytest.mark.timeout_s(400)
def test_restart_from_snapshot_100k_keys(make_node):
    n = make_node(extra_args=["--snapshot-threshold", "1000"]).start()
    total = 100_000
    items = [(b"k%06d" % i, b"v%d" % i) for i in range(total)]
    t0 = time.monotonic()
    busy = pipelined_puts(n.http_port, items, window=250, conns=4, timeout=300)
    write_s = time.monotonic() - t0
    st = n.status()
    assert st["keys"] == total, st
    rev = st["revision"]
    rc = n.stop(timeout=30)
    assert rc == 0, n.stderr_text()[-2000:]
    rd = raft_dir(n.data_dir)
    snaps = [p.name for p in rd.iterdir() if SNAP_RE.match(p.name)]
    assert snaps, f"no snapshot written with --snapshot-threshold 1000:\n{dir_listing(rd)}"
    # the log was compacted: not 100k entries of segments left around
    entries_in_segments = 0
    for p in rd.iterdir():
        m = CLOSED_RE.match(p.name)
        if m:
            entries_in_segments += int(m.group(2)) - int(m.group(1)) + 1
    assert entries_in_segments < total, f"log not compacted:\n{dir_listing(rd)}"

    t1 = time.monotonic()
    n.start(timeout=90)
    start_s = time.monotonic() - t1
    st2 = n.status()
    assert st2["keys"] == total and st2["revision"] == rev, (st, st2)
    r = n.request("GET", "/v1/keys")  # default limit: 1000
    doc = r.json()
    assert len(doc["keys"]) == 1000 and doc["more"] is True and doc["next_cursor"]
    seen = 0
    expect = iter(k for k, _ in items)  # items are in byte order already
    for e in n.list_all(limit=10000):
        k = b64url_decode(e["key_b64"])
        assert k == next(expect), f"listing out of order or missing near {k!r}"
        seen += 1
    assert seen == total
    with n.raw(timeout=20) as c:
        for i in random.sample(range(total), 500):
            r = c.request("GET", kpath(items[i][0]))
            assert r.status == 200 and r.body == items[i][1], (i, r)
    print(f"100k writes: {write_s:.1f}s ({busy} retried 503s), restart to ready: {start_s:.1f}s")


# ---------------------------------------------------------------------------
# damaged files
# ---------------------------------------------------------------------------

def _open_segments_with_data(rd):
    out = []
    for p in rd.iterdir():
        m = OPEN_RE.match(p.name)
        if m and p.stat().st_size > 16 and last_nonzero(p) >= 16:
            out.append((int(m.group(1)), p))
    return [p for _, p in sorted(out)]


@pytest.mark.parametrize("damage", ["truncate", "garble", "zero"])
def test_damaged_log_tail_after_kill9(make_node, damage):
    n = make_node(extra_args=["--snapshot-threshold", "100000"]).start()
    phase_a = [(b"a%04d" % i, b"A-value-%d" % i) for i in range(50)]
    write_sequential(n, phase_a)
    assert n.stop() == 0
    n.start()  # the open segment of the first run becomes a closed one
    phase_b = [(b"b%04d" % i, b"B-value-%d" % i) for i in range(200)]
    write_sequential(n, phase_b)
    n.kill9()

    rd = raft_dir(n.data_dir)
    opens = _open_segments_with_data(rd)
    if opens:
        victim = opens[-1]
    else:
        closed = sorted((p for p in rd.iterdir() if CLOSED_RE.match(p.name)), key=lambda p: p.name)
        assert closed, f"no segment to damage:\n{dir_listing(rd)}"
        victim = closed[-1]
    end = last_nonzero(victim) + 1
    assert end > 64, (victim, end)
    if damage == "truncate":
        os.truncate(victim, end - 40)
    elif damage == "garble":
        with open(victim, "r+b") as f:
            f.seek(end - 40)
            f.write(b"\xa5" * 40)
    else:  # a torn write: the last bytes never reached the disk
        with open(victim, "r+b") as f:
            f.seek(end - 40)
            f.write(b"\x00" * 40)

    n.spawn()
    t0 = time.monotonic()
    ready = False
    while time.monotonic() - t0 < 20:
        if not n.running:
            break
        try:
            n.wait_ready(timeout=1)
            ready = True
            break
        except AssertionError:
            continue
    if not ready:
        rc = n.wait_exit(5)
        assert rc is not None, "node neither became ready nor exited"
        assert rc != 0, "node exited 0 without serving"
        assert victim.name in n.stderr_text(), \
            f"refusal does not name the damaged file {victim.name}:\n{n.stderr_text()[-2000:]}"
        assert rd.exists() and any(rd.iterdir()), "data dir was wiped"
        print(f"{damage}: refused to start, naming {victim.name} (exit {rc})")
        return

    # it started: phase A intact, phase B a prefix of the write order, no garbage
    stored = listed_map(n)
    for k, v in phase_a:
        assert stored.get(k) == v, f"phase A key {k!r} lost or wrong after tail damage"
    b_keys = [k for k, _ in phase_b]
    surviving = [k for k in b_keys if k in stored]
    assert surviving == b_keys[:len(surviving)], "surviving phase-B writes are not a prefix"
    assert len(surviving) >= len(b_keys) - 10, f"only {len(surviving)} of {len(b_keys)} survived a 40-byte damage"
    bvals = dict(phase_b)
    for k in surviving:
        assert stored[k] == bvals[k]
    print(f"{damage} of {victim.name}: started, {len(surviving)}/{len(b_keys)} phase-B writes survive")
    assert set(stored) == set(dict(phase_a)) | set(surviving), "unexpected keys"
    # and it keeps working across another restart
    assert n.put(b"after", b"repair").status_code == 201
    assert n.stop() == 0
    n.start()
    assert n.get(b"after").content == b"repair"
    assert listed_map(n, values=False).keys() == set(stored) | {b"after"}


def _expect_refusal_naming(n, victim, before_digest):
    rc, err = n.run_expect_exit(timeout=20)
    assert rc != 0, f"node started on a corrupt {victim.name} (exit {rc})"
    assert victim.name in err, f"error does not name {victim.name}:\n{err[-2000:]}"
    assert dir_digest(n.data_dir) == before_digest, \
        f"data dir changed by the refused start:\n{dir_listing(n.data_dir)}"


def test_corrupt_closed_segment_refuses_to_start(make_node):
    n = make_node(extra_args=["--snapshot-threshold", "100000"]).start()
    write_sequential(n, [(b"c%04d" % i, b"closed-%d" % i + b"x" * 50) for i in range(300)])
    assert n.stop() == 0
    n.start()
    write_sequential(n, [(b"d%04d" % i, b"open-%d" % i) for i in range(10)])
    assert n.stop() == 0
    rd = raft_dir(n.data_dir)
    closed = sorted((p for p in rd.iterdir() if CLOSED_RE.match(p.name)), key=lambda p: p.name)
    assert closed, f"no closed segment:\n{dir_listing(rd)}"
    victim = max(closed, key=lambda p: p.stat().st_size)
    size = victim.stat().st_size
    assert size > 1000, (victim, size)
    flip_byte(victim, size // 2)
    before = dir_digest(n.data_dir)
    _expect_refusal_naming(n, victim, before)
    # a second try refuses the same way (nothing was "repaired" by the first)
    _expect_refusal_naming(n, victim, before)


@pytest.mark.parametrize("which", ["data", "meta"])
def test_corrupt_snapshot_refuses_to_start(make_node, which):
    n = make_node(extra_args=["--snapshot-threshold", "100"]).start()
    write_sequential(n, [(b"s%04d" % i, b"snap-%d-" % i + b"y" * 40) for i in range(350)])
    wait_until(lambda: any(SNAP_RE.match(p.name) for p in raft_dir(n.data_dir).iterdir()), 10, 0.1,
               "a snapshot file")
    assert n.stop() == 0
    rd = raft_dir(n.data_dir)
    snaps = sorted(((int(m.group(1)), int(m.group(2)), int(m.group(3)), p)
                    for p in rd.iterdir() for m in [SNAP_RE.match(p.name)] if m))
    assert snaps, dir_listing(rd)
    newest = snaps[-1][3]
    victim = newest if which == "data" else newest.with_name(newest.name + ".meta")
    assert victim.exists(), dir_listing(rd)
    size = victim.stat().st_size
    flip_byte(victim, size // 2 if which == "data" else min(size - 1, 40))
    before = dir_digest(n.data_dir)
    _expect_refusal_naming(n, victim, before)


def test_data_dir_of_another_node_id_is_refused(make_node):
    n = make_node(node_id=1).start()
    assert n.put(b"mine", b"node1").status_code == 201
    assert n.stop() == 0
    before = dir_digest(n.data_dir)
    n.node_id = 2
    rc, err = n.run_expect_exit(timeout=20)
    assert rc != 0, "started on another node's data dir"
    assert err.strip(), "no message"
    assert re.search(r"\bid\b|node.?id|belongs", err, re.I), f"message does not explain:\n{err[-2000:]}"
    assert dir_digest(n.data_dir) == before, "data dir modified"
    n.node_id = 1
    n.start()
    assert n.get(b"mine").content == b"node1"


def test_data_dir_created_if_missing(make_node):
    n = make_node()
    n.data_dir = n.workdir / "deep" / "nested" / "data"
    n.start()
    assert n.put(b"k", b"v").status_code == 201
    assert n.data_dir.is_dir()
    assert n.stop() == 0
    n.start()
    assert n.get(b"k").content == b"v"


# ---------------------------------------------------------------------------
# signals
# ---------------------------------------------------------------------------

def test_second_sigint_exits_promptly_without_corruption(make_node):
    node = make_node(extra_args=["--read-wait-timeout", "30"]).start()
    acked = write_sequential(node, [(b"x%03d" % i, b"val%d" % i) for i in range(100)])
    rev = int(node.get(b"x000").headers["X-Cairn-Revision"])
    idle = node.raw()  # an idle client must not hold shutdown up
    waiting = node.raw(timeout=30)  # a read that waits: keeps the drain busy
    waiting.send(build_request("GET", f"/v1/key/x000?min_revision={rev + 1000}"))
    time.sleep(0.2)
    try:
        node.send_signal(signal.SIGINT)
        time.sleep(0.3)
        t0 = time.monotonic()
        node.send_signal(signal.SIGINT)
        rc = node.wait_exit(5)
        assert rc is not None, "did not exit within 5 s of the second SIGINT"
        assert time.monotonic() - t0 < 2.5, "second SIGINT did not exit at once"
    finally:
        idle.close()
        waiting.close()
    node.start()
    stored = listed_map(node)
    for k in acked:
        assert k in stored


def test_sigterm_with_a_waiting_read_exits_in_bounded_time(make_node):
    node = make_node(extra_args=["--read-wait-timeout", "60"]).start()
    rev = int(node.put(b"k", b"v").headers["X-Cairn-Revision"])
    waiting = node.raw(timeout=30)
    try:
        waiting.send(build_request("GET", f"/v1/key/k?min_revision={rev + 1000}"))
        time.sleep(0.2)
        t0 = time.monotonic()
        rc = node.stop(signal.SIGTERM, timeout=15)
        assert rc == 0
        assert time.monotonic() - t0 < 12
        # the waiting client got an answer (a failure) or a close, never a 200
        try:
            r = waiting.read_response(timeout=2)
            assert r.status in (503, 504), r
        except Exception as e:  # noqa: B902 - closed is fine
            assert isinstance(e, (ConnectionClosed, ConnectionError)), e
    finally:
        waiting.close()


def test_sigterm_with_open_connections_exits_0(node):
    node.put(b"k", b"v")
    conns = [node.raw() for _ in range(3)]
    try:
        conns[0].request("GET", "/healthz")
        conns[1].send(b"GET /v1/key/k HTTP/1.1\r\nHo")  # partial request
        t0 = time.monotonic()
        rc = node.stop(signal.SIGTERM, timeout=15)
        assert rc == 0, node.stderr_text()[-2000:]
        assert time.monotonic() - t0 < 15
    finally:
        for c in conns:
            c.close()
    node.start()
    assert node.get(b"k").content == b"v"


# ---------------------------------------------------------------------------
# persistence none
# ---------------------------------------------------------------------------

def test_persistence_none_writes_nothing_to_disk(make_node):
    n = make_node(persistence="none")
    assert not n.data_dir.exists()
    n.start()
    for i in range(200):
        assert n.put(b"k%d" % i, b"v" * 100).status_code == 201
    n.delete(b"k0")
    st = n.status()
    assert st["role"] == "standalone", st
    assert st["keys"] == 199
    assert st.get("persistence") == "none", st
    assert n.stop() == 0
    assert (not n.data_dir.exists()) or not any(n.data_dir.iterdir()), dir_listing(n.data_dir)
    assert not (n.workdir / "cairn-data").exists(), "wrote the default data dir"
    # and nothing survives a restart
    n.start()
    assert n.get(b"k1").status_code == 404
    assert n.status()["keys"] == 0


def test_expiry_is_absolute_across_restart(node):
    assert node.put(b"soon", b"x", params={"ttl": "1"}).status_code == 201
    assert node.put(b"later", b"y", params={"ttl": "30"}).status_code == 201
    assert node.stop() == 0
    time.sleep(1.6)
    node.start()
    r = node.get(b"soon")
    assert r.status_code == 404, "a key past its expiry came back after a restart"
    r = node.get(b"later")
    assert r.status_code == 200
    assert 25 <= int(r.headers["X-Cairn-TTL"]) <= 29


@pytest.mark.timeout_s(120)
def test_sigterm_under_write_load_keeps_acknowledged_writes(node):
    acked = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(wi):
        try:
            c = RawHttp(node.http_port, timeout=10)
        except OSError:
            return
        i = 0
        while not stop.is_set():
            k = b"t%d-%05d" % (wi, i)
            v = b"%d" % i
            try:
                r = c.request("PUT", kpath(k), body=v)
            except Exception:
                return
            if r.status == 201:
                with lock:
                    acked[k] = v
                i += 1
            elif r.status != 503:
                return
        c.close()

    ts = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(4)]
    for t in ts:
        t.start()
    wait_until(lambda: len(acked) >= 500, 60, 0.02, "500 acknowledged writes")
    t0 = time.monotonic()
    node.send_signal(signal.SIGTERM)  # requests are in flight right now
    stop.set()  # the clients send nothing new after the one in flight
    rc = node.wait_exit(15)
    assert time.monotonic() - t0 < 15
    for t in ts:
        t.join(15)
    assert rc is not None, "no exit within 15 s of SIGTERM"
    assert rc == 0, node.stderr_text()[-2000:]
    with lock:
        acked_now = dict(acked)
    node.start()
    stored = listed_map(node)
    missing = [k for k in acked_now if stored.get(k) != acked_now[k]]
    assert not missing, f"{len(missing)} acknowledged writes lost over a graceful stop"


def test_data_dir_that_is_a_file_is_refused(make_node):
    n = make_node()
    n.data_dir = n.workdir / "not-a-dir"
    n.data_dir.write_bytes(b"precious")
    rc, err = n.run_expect_exit(timeout=15)
    assert rc != 0
    assert "not-a-dir" in err, err[-1000:]
    assert n.data_dir.read_bytes() == b"precious"


def test_second_process_on_same_data_dir_is_refused(make_node, tmp_path):
    a = make_node().start()
    assert a.put(b"k", b"v").status_code == 201
    b = make_node(data_dir=a.data_dir)
    b.spawn()
    try:
        b.wait_ready(timeout=10)
        became_ready = True
    except AssertionError:
        became_ready = False
    assert not became_ready, "a second cairnd started and served on a data dir in use (no lock)"
    rc = b.wait_exit(5)
    assert rc is not None and rc != 0, "a second cairnd kept running on a data dir in use"
    assert b.stderr_text().strip()
    # the first one is unaffected
    assert a.get(b"k").content == b"v"
    assert a.put(b"k2", b"v2").status_code == 201
    assert a.stop() == 0
    a.start()
    assert a.get(b"k2").content == b"v2"
