"""Writes forwarded by a follower keep exactly-once semantics through a
leader kill (docs/design.md, "A forwarded write whose answer was lost").
A client on a follower runs INCR after INCR while the leader is killed
with SIGKILL: a write whose answer died with the leader is not failed as
"outcome unknown" but found out — applied (this node applied the entry:
its own result is the answer) or not (then sent to the new leader) — so
every INCR answers, the answers are 1, 2, 3 ... without a gap or a
repeat, and the counter ends at their number."""
import threading
import time

from conftest import wait_until
from resp_helpers import ConnectionClosed, Err, RawResp
from test_cluster import leader_of, make_cluster


def test_incr_through_a_follower_across_a_leader_kill(make_node):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    f = next(x for x in nodes if x is not leader)
    answers, errors = [], []
    done = threading.Event()

    def run():
        with RawResp(f.resp_port, timeout=20) as c:
            deadline = time.monotonic() + 60
            while len(answers) + len(errors) < 600 and time.monotonic() < deadline:
                try:
                    r = c.cmd("INCR", "n")
                except (OSError, ConnectionClosed, TimeoutError) as e:
                    errors.append(repr(e))
                    break
                (errors if isinstance(r, Err) else answers).append(r)
        done.set()

    t = threading.Thread(target=run)
    t.start()
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
