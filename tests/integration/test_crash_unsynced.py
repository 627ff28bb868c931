"""A power cut: every node crashes at once and loses what no fsync made
durable (issue 11, "a crash that drops every write not yet fsync'd").

This kernel has no device-mapper (no dm-flakey drop_writes, no
dm-log-writes), so the closest honest substitute is used:
tests/fault/crash_shim.c, an LD_PRELOAD library that journals, before it
happens, every change cairnd (and libraft inside it) makes under its data
dir (what a write overwrites, size changes, creates, renames, unlinks) and
every barrier (fsync, fdatasync, the completion of an O_DSYNC/RWF_DSYNC
write, a directory fsync). The nodes are killed with SIGKILL mid-load;
then tests/fault/crash_replay.py undoes, newest first, every change no
barrier covered, leaving each data dir as a power cut at that instant could
have left it. The cluster is started again without the shim.

What must hold: every write acknowledged before the cut is there after it,
on a linearizable read. The control: a disk that ignores fsync from the
start of the load (the same replay, barriers ignored from there) must lose
acknowledged writes, and the same check must say so.
"""
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import build_shim
from test_cluster import leader_of, make_cluster

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "fault"))
import crash_replay  # noqa: E402

SNAPSHOT_ARGS = ["--snapshot-threshold", "64", "--snapshot-trailing", "16"]


@pytest.fixture
def crash_shim(tmp_path):
    return build_shim("crash_shim.c", tmp_path / "crash_shim.so", ("-ldl", "-lpthread"))


def journaled_cluster(make_node, shim, tmp_path, n=3):
    def node(node_id):
        n = make_node(node_id=node_id)
        n.journal = tmp_path / f"journal{node_id}"
        save = tmp_path / f"saved{node_id}"
        save.mkdir()
        n.env.update({"LD_PRELOAD": str(shim), "CAIRN_CRASH_DIR": str(n.data_dir),
                      "CAIRN_CRASH_LOG": str(n.journal), "CAIRN_CRASH_SAVE": str(save)})
        return n
    return make_cluster(node, n=n, extra=SNAPSHOT_ARGS)


def load_then_cut(nodes, seconds=3.0, writers=4):
    """Writers put fresh keys through every node; mid-load every node is
    killed at once. Returns {key: value} of the acknowledged writes."""
    acked = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(w):
        s = requests.Session()
        i = 0
        while not stop.is_set() and i < 100000:
            node = nodes[(w + i) % len(nodes)]
            key, value = f"w{w}-{i}", f"v{w}-{i}"
            i += 1
            try:
                r = s.put(node.url(f"/v1/key/{key}"), data=value, timeout=2)
            except requests.RequestException:
                continue
            if r.status_code in (200, 201):
                with lock:
                    acked[key] = value

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(writers)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    for n in nodes:  # the cut: as close to one instant as signals get
        os.kill(n.pid, 9)
    stop.set()
    for n in nodes:
        n.kill9()
    for t in threads:
        t.join(10)
    with lock:
        return dict(acked)


def lost_writes(nodes, acked):
    """Start the nodes again (no shim) and read every acknowledged key
    linearizably through the leader: the keys missing or wrong."""
    for n in nodes:
        n.env.pop("LD_PRELOAD", None)
        n.start(wait_ready=False)
    for n in nodes:
        n.wait_ready(30)
    leader = leader_of(nodes)
    s = requests.Session()
    lost = []
    for key, value in acked.items():
        r = s.get(leader.url(f"/v1/key/{key}"), timeout=10)
        if r.status_code != 200 or r.text != value:
            lost.append((key, r.status_code))
    return lost


def replay_all(nodes, ignore_from=None):
    total = {}
    for n in nodes:
        out = crash_replay.replay(str(n.journal), str(n.data_dir),
                                  ignore_barriers_from=None if ignore_from is None
                                  else ignore_from[n.node_id])
        for k, v in out["undone"].items():
            total[k] = total.get(k, 0) + v
    return total


@pytest.mark.timeout_s(150)
@pytest.mark.parametrize("n", [1, 3], ids=["single-node", "three-nodes"])
def test_power_cut_of_every_node_loses_no_acknowledged_write(make_node, crash_shim, tmp_path, n):
    nodes = journaled_cluster(make_node, crash_shim, tmp_path, n)
    acked = load_then_cut(nodes)
    assert len(acked) >= 100, f"too little progress before the cut: {len(acked)} writes"
    undone = replay_all(nodes)
    print("acknowledged", len(acked), "changes undone", json.dumps(undone))
    # a cut mid-load always finds something no barrier covered yet (at
    # least libraft's next segment, allocated but not yet written)
    assert sum(undone.values()) >= 1, undone
    lost = lost_writes(nodes, acked)
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged writes lost: {lost[:10]}"


@pytest.mark.timeout_s(150)
def test_a_disk_that_ignores_fsync_is_caught(make_node, crash_shim, tmp_path):
    """The control: the same cut, on disks that ignore every barrier from
    the start of the load, must lose acknowledged writes."""
    nodes = journaled_cluster(make_node, crash_shim, tmp_path)
    start = {n.node_id: n.journal.stat().st_size for n in nodes}
    acked = load_then_cut(nodes, seconds=1.5)
    assert len(acked) >= 50, f"too little progress before the cut: {len(acked)} writes"
    undone = replay_all(nodes, ignore_from=start)
    lost = lost_writes(nodes, acked)
    print("acknowledged", len(acked), "lost", len(lost), "changes undone", json.dumps(undone))
    assert len(lost) == len(acked), \
        f"a disk that ignored every fsync since the load began kept {len(acked) - len(lost)} writes"


WRITER = r"""
import os, sys
d = sys.argv[1]
def fsync_dir():
    fd = os.open(d, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
a = os.open(f"{d}/a", os.O_CREAT | os.O_WRONLY, 0o644)
os.write(a, b"durable")
os.fsync(a)
fsync_dir()                      # a and its first 7 bytes are durable
os.write(a, b"+lost")            # no fsync after it
os.rename(f"{d}/a", f"{d}/c")    # made durable by the directory fsync below
s = os.open(f"{d}/s", os.O_CREAT | os.O_WRONLY | os.O_DSYNC, 0o644)
fsync_dir()
os.rename(f"{d}/c", f"{d}/a")    # no directory fsync after it
os.write(s, b"dsync")            # durable when it returns
os.ftruncate(s, 2)               # not durable
n = os.open(f"{d}/n", os.O_CREAT | os.O_WRONLY, 0o644)
os.write(n, b"whole")
os.fsync(n)                      # n's data is durable, its name is not
os.kill(os.getpid(), 9)
"""


def test_replay_undoes_exactly_what_no_barrier_covered(crash_shim, tmp_path):
    """The model itself, on a script whose every step's durability is
    known: what it fsync'd stays, what it did not is undone."""
    d = tmp_path / "d"
    d.mkdir()
    save = tmp_path / "saved"
    save.mkdir()
    journal = tmp_path / "journal"
    env = dict(os.environ, LD_PRELOAD=str(crash_shim), CAIRN_CRASH_DIR=str(d),
               CAIRN_CRASH_LOG=str(journal), CAIRN_CRASH_SAVE=str(save))
    r = subprocess.run(["/usr/bin/python3", "-c", WRITER, str(d)], env=env, timeout=30)
    assert r.returncode == -9, r.returncode
    assert sorted(os.listdir(d)) == ["a", "n", "s"]
    assert (d / "a").read_bytes() == b"durable+lost"
    assert (d / "s").read_bytes() == b"ds"
    out = crash_replay.replay(str(journal), str(d))
    # the file is c again (the rename back had no directory fsync after
    # it), holds only what was fsync'd, and n's name is gone
    assert sorted(os.listdir(d)) == ["c", "s"], (os.listdir(d), out)
    assert (d / "c").read_bytes() == b"durable", out
    assert (d / "s").read_bytes() == b"dsync", out
    assert out["undone"] == {"W": 1, "T": 1, "C": 1, "R": 1, "U": 0}, out
