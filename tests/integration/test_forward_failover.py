"""Writes forwarded by a follower keep exactly-once semantics through a
leader kill (docs/design.md, "A forwarded write whose answer was lost").
A client on a follower runs INCR after INCR while the leader is killed
with SIGKILL: a write whose answer died with the leader is not failed as
"outcome unknown" but found out — applied (this node applied the entry:
its own result is the answer) or not (then sent to the new leader) — so
every INCR answers, the answers are 1, 2, 3 ... without a gap or a
repeat, and the counter ends at their number."""
import signal
import threading
import time

from conftest import wait_until
from resp_helpers import ConnectionClosed, Err, RawResp
from test_cluster import leader_of, make_cluster


def _incr_loop(port, total):
    """INCR n, one at a time, total times (bounded to 60 s) on a thread:
    returns (answers, errors, done event, thread)."""
    answers, errors = [], []
    done = threading.Event()

    def run():
        with RawResp(port, timeout=30) as c:
            deadline = time.monotonic() + 60
            while len(answers) + len(errors) < total and time.monotonic() < deadline:
                try:
                    r = c.cmd("INCR", "n")
                except (OSError, ConnectionClosed, TimeoutError) as e:
                    errors.append(repr(e))
                    break
                (errors if isinstance(r, Err) else answers).append(r)
        done.set()

    t = threading.Thread(target=run)
    t.start()
    return answers, errors, done, t


def test_incr_through_a_follower_across_a_leader_kill(make_node):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    f = next(x for x in nodes if x is not leader)
    answers, errors, done, t = _incr_loop(f.resp_port, 600)
    try:
        wait_until(lambda: len(answers) >= 100, 30, 0.01, "INCRs to go through the follower")
        leader.kill9()
        wait_until(done.is_set, 90, 0.1, "the INCRs to finish")
    finally:
        t.join(90)
    leader.start()
    unknown = [e for e in errors if "unknown" in str(e)]
    assert not unknown, f"writes answered as unknown: {unknown[:3]}"
    assert answers == list(range(1, len(answers) + 1)), "a gap or a repeat among the answers"
    with RawResp(f.resp_port) as c:
        assert c.cmd("GET", "n") == str(len(answers)).encode()
    # what else failed was refused before it was applied (no leader yet)
    assert len(answers) + len(errors) == 600 or errors, (len(answers), errors[:3])


def test_incr_on_a_leader_that_loses_its_leadership(make_node):
    """A leader frozen (SIGSTOP) until the others elect another: its own
    clients' writes in flight are found out when it resumes — applied
    (answered with their result) or definitely not (`leadership lost: not
    applied`, safe to retry) — never `outcome unknown`."""
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    others = [x for x in nodes if x is not leader]
    answers, errors, done, t = _incr_loop(leader.resp_port, 400)
    try:
        wait_until(lambda: len(answers) >= 100, 30, 0.01, "INCRs to go through the leader")
        leader.send_signal(signal.SIGSTOP)
        try:
            ids = {x.node_id for x in others}
            wait_until(lambda: {x.status()["leader"] for x in others} in ({i} for i in ids), 20,
                       0.1, "another leader")
        finally:
            leader.send_signal(signal.SIGCONT)
        wait_until(done.is_set, 90, 0.1, "the INCRs to finish")
    finally:
        t.join(90)
    unknown = [e for e in errors if "unknown" in str(e)]
    assert not unknown, f"writes answered as unknown: {unknown[:3]}"
    assert all("not applied" in str(e) or "not the leader" in str(e) or "no leader" in str(e)
               for e in errors), errors[:5]
    assert answers == list(range(1, len(answers) + 1)), "a gap or a repeat among the answers"
    with RawResp(others[0].resp_port) as c:
        assert c.cmd("GET", "n") == str(len(answers)).encode()
