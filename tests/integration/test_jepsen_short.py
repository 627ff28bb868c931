"""Short Jepsen-style run in CI (issue 6): a 3-node cluster behind the
fault-injecting proxy, HTTP (and RESP, when SET/GET work there) clients on
every node, one round of every fault kind (kill -9 of a node and of the
leader, SIGSTOP pauses, partitions, a lossy and a slow network, a member
removed, wiped and re-added, a leadership transfer, a restart of every node
at once, the clients cut off one node), some of them overlapping (started
while the cluster still recovers from the last), with every path behind
the proxy (Raft, forwarding between nodes, clients), then: the history is
linearizable, no acknowledged write is lost, every node holds the same
keyspace, and the cluster recovers after each chain of faults.

The harness lives in tests/jepsen (see docs/verification.md); longer runs:
tests/jepsen/chaos.py. CAIRN_JEPSEN_SEED=N replays a seed; the seed of every
run is printed, and a failing run saves its history, fault log and node logs
(path in the failure message).
"""
import os
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "jepsen"))

from runner import Runner  # noqa: E402

SANITIZED = bool(os.environ.get("CAIRN_SANITIZED"))


# The seed that found the restart-all data loss (docs/verification.md) is
# replayed on every unsanitized build, with the kinds it had then (so that
# its schedule stays the same), next to a fresh random seed that also has
# the newer kinds and overlapping faults.
FIXED_SEEDS = [] if SANITIZED else [123708]
FIXED_SEED_MIX = ("kill,kill-leader,pause,pause-leader,partition-random,partition-leader,"
                  "blackhole-leader,partition-partial,partition-asym,delay,member,transfer,restart-all")
OVERLAP = 0.3
# Progress: a run in which almost nothing succeeded proves nothing. The
# normal build does thousands of each in a run; sanitized builds are
# several times slower.
MIN_OK = 150 if SANITIZED else 600


@pytest.mark.timeout_s(420)
@pytest.mark.parametrize("seed_kind", [f"seed{s}" for s in FIXED_SEEDS] + ["random"])
def test_jepsen_short(make_node, tmp_path, seed_kind):
    if seed_kind == "random":
        seed = int(os.environ.get("CAIRN_JEPSEN_SEED") or random.SystemRandom().randrange(1, 10 ** 6))
    else:
        seed = int(seed_kind[4:])
    print(f"\njepsen: seed {seed} (CAIRN_JEPSEN_SEED={seed} replays this schedule)")
    lines = []

    def log(msg):
        lines.append(msg)
        print(msg, flush=True)

    fixed = seed_kind != "random"
    runner = Runner(tmp_path / "jepsen", seed, duration=200, mix=FIXED_SEED_MIX if fixed else "all",
                    rounds=1, fault_time=(2.5, 4.5), gap=(1.0, 2.0), overlap=0.0 if fixed else OVERLAP,
                    node_factory=lambda node_id: make_node(node_id=node_id),
                    # sanitized builds are several times slower: fewer clients
                    n_http=3 if SANITIZED else 4, n_resp=1, log=log)
    res = runner.run()
    print(res.summary())
    assert res.valid, (f"jepsen run seed {seed}: {res.verdict}\n{res.summary()}\n"
                       f"reproduce: CAIRN_JEPSEN_SEED={seed} pytest {__file__}  or  "
                       f"tests/jepsen/chaos.py --seed {seed} --rounds 1 --duration 200"
                       + ("" if fixed else f" --overlap {OVERLAP}"))
    for f in ("write", "read", "cas"):
        assert res.ok_count(f) >= MIN_OK, (f"seed {seed}: only {res.ok_count(f)} successful {f}s "
                                           f"(at least {MIN_OK} expected)\n{res.summary()}")
    leader_faults = res.leader_faults()
    assert leader_faults, f"seed {seed}: no fault hit a leader\n{res.summary()}"
    # A leader fault that overlaps the recovery from the step before may
    # leave the others without a quorum that can elect (seed 817297: the
    # leader cut off 0.32 s after a member re-joined; docs/verification.md):
    # availability is then asserted by the recovery after the chain, not here.
    overlapped = {e["step"] for e in res.events if e["phase"] == "overlap"}
    for step, kind, node, during in leader_faults:
        if step in overlapped:
            print(f"step {step} {kind} overlapped a recovery: the others followed {during}")
            continue
        assert during not in (None, node), (
            f"seed {seed}: step {step} {kind} took node {node} out, yet the others elected no new "
            f"leader meanwhile (they followed {during})\n{res.summary()}")


@pytest.mark.timeout_s(240)
def test_jepsen_checker_rejects_stale_reads(make_node, tmp_path):
    """Negative control: the same harness, with half of the reads sent as
    ?consistency=stale but checked as linearizable, must find a violation
    (a follower paused for 2 s lags behind). A checker or recorder that
    stopped seeing anything would pass every run above."""
    seed = 4242
    runner = Runner(tmp_path / "jepsen", seed, duration=40, mix="pause", rounds=2,
                    fault_time=(2.0, 2.0), gap=(1.0, 1.0),
                    node_factory=lambda node_id: make_node(node_id=node_id),
                    n_http=3, n_resp=0, stale_read_rate=0.5, save="never", log=print)
    res = runner.run()
    print(res.summary())
    assert res.verdict == "invalid", f"stale reads went unnoticed:\n{res.summary()}"
    assert any("not linearizable" in f for f in res.failures), res.summary()


@pytest.mark.timeout_s(180)
def test_jepsen_checker_rejects_a_read_that_overtakes_its_write(make_node, tmp_path):
    """Negative control for pipelining: a read pipelined behind a write on
    one connection is concurrent with it by the clock, so only the session
    order the client records (`after`) catches a read that overtook its
    write. The harness sends a share of the pairs read first while
    recording them write first; the checker must reject the run. No fault
    is needed: the read returns the old value every time."""
    seed = 4343
    runner = Runner(tmp_path / "jepsen", seed, duration=6, mix="transfer", rounds=1,
                    fault_time=(1.0, 1.0), gap=(1.0, 1.0),
                    node_factory=lambda node_id: make_node(node_id=node_id),
                    n_http=2, n_resp=1, overtake_rate=0.5, save="never", log=print,
                    client_mix={"read": 0.2, "write": 0.2, "pipelined": 0.6})
    res = runner.run()
    print(res.summary())
    assert res.verdict == "invalid", f"a read that overtook its write went unnoticed:\n{res.summary()}"
    assert any("not linearizable" in f for f in res.failures), res.summary()


# --------------------------------------------------------------------------
# Deterministic regressions for what the Jepsen runs found (issue 6)
# --------------------------------------------------------------------------

def _plain_cluster(make_node):
    nodes = [make_node(node_id=i) for i in (1, 2, 3)]
    members = ",".join(f"{x.node_id}=127.0.0.1:{x.peer_port}" for x in nodes)
    for x in nodes:
        x.extra_args = ["--initial-cluster", members, "--write-timeout", "3"]
    for x in nodes:
        x.start(wait_ready=False)
    for x in nodes:
        x.wait_ready(20)
    return nodes


def _leader(nodes):
    import time
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for x in nodes:
            try:
                if x.running and x.status()["role"] == "leader":
                    return x
            except Exception:  # noqa: BLE001 - not answering yet
                pass
        time.sleep(0.1)
    raise AssertionError("no leader")


def _step_down_with(nodes, requests_per_conn):
    """Stop both followers, send the given raw requests to the leader (one
    connection each, back to back), wait until the leader gives up for lack
    of a quorum, resume the followers. Returns the old leader."""
    import signal
    import socket
    import time
    leader = _leader(nodes)
    others = [x for x in nodes if x is not leader]
    for x in others:
        x.send_signal(signal.SIGSTOP)
    socks = []
    try:
        for raw in requests_per_conn:
            s = socket.create_connection(("127.0.0.1", leader.http_port), timeout=10)
            s.sendall(raw)
            socks.append(s)
        time.sleep(4)  # > election timeout: libraft's leader steps down
    finally:
        for x in others:
            x.send_signal(signal.SIGCONT)
    time.sleep(1)
    for s in socks:
        s.close()
    return leader


GET_X = b"GET /v1/key/x HTTP/1.1\r\nHost: x\r\n\r\n"
PUT_X = b"PUT /v1/key/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nv"


@pytest.mark.timeout_s(120)
def test_leader_losing_quorum_with_queued_linearizable_reads_survives(make_node):
    # One read's barrier in flight, more reads queued behind it: when the
    # leader steps down, libraft fails the barrier from inside its state
    # change (state still "leader", progress array already freed); starting
    # the next barrier from that callback crashed the node (SIGSEGV).
    nodes = _plain_cluster(make_node)
    for attempt in range(2):
        old = _step_down_with(nodes, [GET_X] * 4)
        assert old.running, (f"old leader {old.node_id} died (exit {old.proc.poll()}) after losing its "
                             f"quorum with linearizable reads queued\n{old.stderr_text()[-2000:]}")


@pytest.mark.timeout_s(120)
def test_leader_losing_quorum_with_pipelined_write_then_read_survives(make_node):
    # A write in flight and a read pipelined behind it on one connection:
    # libraft fails the write (RAFT_LEADERSHIPLOST) inside its state change,
    # completing it dispatches the queued read, whose raft_barrier crashed
    # the node (SIGSEGV). Same root cause, through the HTTP pipeline.
    nodes = _plain_cluster(make_node)
    for attempt in range(2):
        old = _step_down_with(nodes, [PUT_X + GET_X])
        assert old.running, (f"old leader {old.node_id} died (exit {old.proc.poll()}) after losing its "
                             f"quorum with a write and a pipelined read in flight\n"
                             f"{old.stderr_text()[-2000:]}")
