"""Short Jepsen-style run in CI (issue 6): a 3-node cluster behind the
fault-injecting proxy, HTTP (and RESP, when SET/GET work there) clients on
every node, one round of every fault kind (kill -9 of a node and of the
leader, SIGSTOP pauses, partitions, a lossy and a slow network, a member
removed, wiped and re-added, a leadership transfer, a restart of every node
at once), then: the history is linearizable, no acknowledged write is
lost, every node holds the same keyspace, and the cluster recovers after
each heal.

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


@pytest.mark.timeout_s(420)
def test_jepsen_short(make_node, tmp_path):
    seed = int(os.environ.get("CAIRN_JEPSEN_SEED") or random.SystemRandom().randrange(1, 10 ** 6))
    print(f"\njepsen: seed {seed} (CAIRN_JEPSEN_SEED={seed} replays this schedule)")
    lines = []

    def log(msg):
        lines.append(msg)
        print(msg, flush=True)

    runner = Runner(tmp_path / "jepsen", seed, duration=200, mix="all", rounds=1,
                    fault_time=(2.5, 4.5), gap=(1.0, 2.0),
                    node_factory=lambda node_id: make_node(node_id=node_id),
                    # sanitized builds are several times slower: fewer clients
                    n_http=3 if SANITIZED else 4, n_resp=1, log=log)
    res = runner.run()
    print(res.summary())
    assert res.valid, (f"jepsen run seed {seed}: {res.verdict}\n{res.summary()}\n"
                       f"reproduce: CAIRN_JEPSEN_SEED={seed} pytest {__file__}  or  "
                       f"tests/jepsen/chaos.py --seed {seed} --rounds 1 --duration 200")
