"""Disk faults (issue 11): a device that fails writes with EIO.

This kernel has no device-mapper targets to make a failing device
(`dmsetup targets` lists none of error/flakey), so the closest honest
substitute is used: tests/fault/fault_shim.c, an LD_PRELOAD library that,
while a switch file exists, fails every write under the node's raft
directory with EIO, the way a failing device answers (libraft's
asynchronous writes complete with -EIO; pwrite/fsync return EIO). It is
built here with cc, without sanitizers, and preloaded into cairnd.

What a user must see: the node whose log write failed stops at once with
exit status 74 and one error line naming the segment file (libraft 0.15
crashed or stalled otherwise: docs/design.md, "A failed log write stops
the node"); the others go on (a follower's failure costs no write; a
leader's costs a re-election); once the device is back, a restart (what
systemd's Restart=on-failure does) loads what was written and catches up;
no acknowledged write is lost.
"""
import time

import pytest
import requests

from conftest import build_shim, wait_until
from test_cluster import leader_of, make_cluster

STOP_LINE = "cannot write the raft log: stopping"


@pytest.fixture
def shim(tmp_path):
    return build_shim("fault_shim.c", tmp_path / "fault_shim.so")


def faulty_node(make_node, shim, tmp_path, node_id, **kw):
    node = make_node(node_id=node_id, **kw)
    switch = tmp_path / f"eio{node_id}.on"
    node.env.update({"LD_PRELOAD": str(shim), "CAIRN_FAULT_SWITCH": str(switch),
                     "CAIRN_FAULT_DIR": str(node.data_dir / "raft")})
    node.switch = switch
    return node


def put(node, key, value, timeout=5):
    try:
        return requests.put(node.url(f"/v1/key/{key}"), data=value, timeout=timeout).status_code
    except requests.RequestException:
        return None


def get(node, key):
    r = requests.get(node.url(f"/v1/key/{key}"), timeout=5)
    return r.text if r.status_code == 200 else None


def assert_stopped_for_eio(node):
    rc = node.wait_exit(15)
    assert rc == 74, f"node {node.node_id}: exit {rc}, expected 74 (EX_IOERR)"
    lines = [l for l in node.stderr_text().splitlines() if STOP_LINE in l]
    assert len(lines) == 1, lines
    raft = str(node.data_dir / "raft")
    assert f"file={raft}/open-" in lines[0], lines[0]
    assert "I/O error" in lines[0], lines[0]


def three_nodes(make_node, shim, tmp_path):
    return make_cluster(lambda node_id: faulty_node(make_node, shim, tmp_path, node_id))


def new_leader(others, timeout=20):
    """The node the others agree leads, once it is one of them."""
    found = {}

    def agreed():
        try:
            ids = {x.status()["leader"] for x in others}
        except (requests.RequestException, AssertionError):
            return False
        lead = [x for x in others if ids == {x.node_id}]
        found["node"] = lead[0] if lead else None
        return found["node"] is not None

    wait_until(agreed, timeout, 0.1, "a new leader among the remaining nodes")
    return found["node"]


def catch_up(node, leader, timeout=20):
    want = leader.status()["commit_index"]
    wait_until(lambda: node.status()["applied_index"] >= want, timeout, 0.1,
               f"node {node.node_id} to apply {want}")


@pytest.mark.timeout_s(150)
def test_eio_on_a_follower_stops_it_and_costs_no_write(make_node, shim, tmp_path):
    nodes = three_nodes(make_node, shim, tmp_path)
    leader = leader_of(nodes)
    victim = next(x for x in nodes if x is not leader)
    acked = {}
    for i in range(30):
        assert put(leader, f"before{i}", f"v{i}") == 201
        acked[f"before{i}"] = f"v{i}"
    victim.switch.touch()
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < 2.0 or victim.running:
        assert time.monotonic() - t0 < 20, "the follower did not stop"
        code = put(leader, f"during{i}", f"d{i}")
        assert code == 201, f"write {i} through the leader: {code} (the other follower is enough)"
        acked[f"during{i}"] = f"d{i}"
        i += 1
    assert_stopped_for_eio(victim)
    victim.switch.unlink()
    t1 = time.monotonic()
    victim.restart(timeout=20)
    catch_up(victim, leader)
    print(f"\nfollower: {i} writes during the fault, all acknowledged; back and caught up "
          f"{time.monotonic() - t1:.2f}s after its restart")
    for k, v in acked.items():
        assert get(victim, k + "?consistency=stale") == v, k


@pytest.mark.timeout_s(150)
def test_eio_on_the_leader_stops_it_and_another_leads(make_node, shim, tmp_path):
    nodes = three_nodes(make_node, shim, tmp_path)
    leader = leader_of(nodes)
    others = [x for x in nodes if x is not leader]
    acked = {}
    for i in range(30):
        assert put(leader, f"before{i}", f"v{i}") == 201
        acked[f"before{i}"] = f"v{i}"
    leader.switch.touch()
    codes = []
    for i in range(20):
        code = put(leader, f"during{i}", f"d{i}", timeout=4)
        codes.append(code)
        if code == 201:  # acknowledged before the leader's write failed
            acked[f"during{i}"] = f"d{i}"
        if not leader.running:
            break
    assert_stopped_for_eio(leader)
    t0 = time.monotonic()
    new = new_leader(others)
    took = time.monotonic() - t0
    for i in range(20):
        assert put(new, f"after{i}", f"a{i}") == 201
        acked[f"after{i}"] = f"a{i}"
    leader.switch.unlink()
    leader.restart(timeout=20)
    catch_up(leader, new)
    print(f"\nleader: answers during the fault {codes}; new leader {new.node_id} "
          f"{took:.2f}s after the old one stopped")
    for k, v in acked.items():
        assert get(new, k) == v, k
        assert get(leader, k + "?consistency=stale") == v, k


@pytest.mark.timeout_s(120)
def test_eio_on_a_single_node_stops_it_and_a_restart_loses_nothing(make_node, shim, tmp_path):
    node = faulty_node(make_node, shim, tmp_path, 1).start()
    acked = {}
    for i in range(30):
        assert put(node, f"k{i}", f"v{i}") == 201
        acked[f"k{i}"] = f"v{i}"
    node.switch.touch()
    codes = [put(node, f"lost{i}", "x", timeout=4) for i in range(3)]
    assert 201 not in codes, codes  # nothing can be made durable now
    assert_stopped_for_eio(node)
    node.switch.unlink()
    node.restart(timeout=20)
    for k, v in acked.items():
        assert get(node, k) == v, k
    assert put(node, "after", "ok") == 201
    assert get(node, "after") == "ok"
