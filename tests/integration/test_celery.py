"""A real task-queue library end to end (issue 13): Celery (Debian's
python3-celery, kombu's Redis transport) with cairn as both broker and
result backend, on a 3-node cluster. Celery uses lists (BRPOP on its
queues), MULTI/EXEC pipelines, sorted sets and hashes for its
acks-late bookkeeping, pub/sub for its results, SET with expiry for the
result keys. A worker runs through one follower, the tasks are sent and
their results read through the other, and the leader is killed with
SIGKILL mid-run and restarted: every task's result arrives, right, and a
chord (a group whose results feed one more task) completes."""
import gc
import os
import signal
import subprocess
import sys

import celery  # python3-celery (scripts/deps.sh installs it)

from conftest import wait_until
from test_cluster import leader_of, make_cluster

HERE = os.path.dirname(os.path.abspath(__file__))
TASKS = 120


def _app(node):
    os.environ["CAIRN_CELERY_URL"] = f"redis://127.0.0.1:{node.resp_port}/0"
    sys.path.insert(0, HERE)
    import importlib

    import celery_tasks
    importlib.reload(celery_tasks)  # the URL of this test's node
    return celery_tasks


def _worker(node, log):
    env = dict(os.environ, CAIRN_CELERY_URL=f"redis://127.0.0.1:{node.resp_port}/0",
               PYTHONPATH=HERE)
    return subprocess.Popen(
        ["/usr/bin/python3", "-m", "celery", "-A", "celery_tasks", "worker", "--pool=solo",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "info"],
        stdout=log, stderr=subprocess.STDOUT, cwd=HERE, env=env)


def test_celery_tasks_survive_a_leader_kill(make_node, tmp_path):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    wnode, pnode = [x for x in nodes if x is not leader]
    tasks = _app(pnode)
    log = open(tmp_path / "worker.log", "w+")
    worker = _worker(wnode, log)
    try:
        results = [tasks.add.delay(i, i) for i in range(TASKS)]
        wait_until(lambda: sum(r.ready() for r in results) >= TASKS // 4, 60, 0.05,
                   "the worker to finish a quarter of the tasks")
        done_before = sum(r.ready() for r in results)
        leader.kill9()
        leader.start()
        values = [r.get(timeout=120) for r in results]
        assert values == [2 * i for i in range(TASKS)]
        chord = celery.chord(tasks.add.s(i, 1) for i in range(10))(tasks.total.s())
        assert chord.get(timeout=60) == sum(i + 1 for i in range(10))
        # results unsubscribe when collected: while the nodes are up
        results.clear()
        chord = None
        gc.collect()
    finally:
        # the results' subscriber goes before the nodes do (else it
        # retries against stopped nodes in its thread)
        tasks.app.backend.result_consumer.stop()
        tasks.app.close()
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(10)
        log.seek(0)
        out = log.read()
        log.close()
    assert done_before < TASKS, "the leader was killed after the run, not during it"
    # every task ran (acks late: one taken when the leader died may run again)
    ran = out.count("succeeded in")
    assert TASKS + 11 <= ran <= TASKS + 11 + 5, out[-4000:]
