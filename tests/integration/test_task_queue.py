"""A real task-queue library end to end (issue 12): RQ (Debian's
python3-rq) on a 3-node cluster. Jobs are enqueued through the leader,
two `rq worker` processes work them through the two followers (RQ uses
MULTI/EXEC pipelines, WATCH, pub/sub for its worker channel, streams for
results, sets, sorted sets and hashes for its registries), and the leader
is killed with SIGKILL mid-run and restarted: every job finishes, with
its result, and none runs twice."""
import os
import shutil
import signal
import subprocess
import time

import redis
import rq  # python3-rq (scripts/deps.sh installs it)

from conftest import wait_until
from test_cluster import leader_of, make_cluster

HERE = os.path.dirname(os.path.abspath(__file__))
JOBS = 150


def _worker(node, log):
    exe = shutil.which("rq") or "/usr/bin/rq"
    return subprocess.Popen(
        [exe, "worker", "--burst", "-w", "rq.worker.SimpleWorker", "-P", HERE,
         "-u", f"redis://127.0.0.1:{node.resp_port}", "jobs"],
        stdout=log, stderr=subprocess.STDOUT, cwd=HERE)


def test_rq_jobs_survive_a_leader_kill(make_node, tmp_path):
    nodes = make_cluster(make_node)
    leader = leader_of(nodes)
    followers = [x for x in nodes if x is not leader]
    conn = redis.Redis(port=leader.resp_port, socket_timeout=20)
    q = rq.Queue("jobs", connection=conn)
    jobs = [q.enqueue("rq_jobs.double", i, result_ttl=3600) for i in range(JOBS)]
    assert q.count == JOBS
    logs = [open(tmp_path / f"worker{i}.log", "w+") for i in range(2)]
    workers = [_worker(f, logs[i]) for i, f in enumerate(followers)]
    try:
        watch = redis.Redis(port=followers[0].resp_port, socket_timeout=20)
        wait_until(lambda: watch.llen("rq:queue:jobs") <= JOBS * 3 // 4, 60, 0.05,
                   "the workers to take a quarter of the jobs")
        left = watch.llen("rq:queue:jobs")
        leader.kill9()
        time.sleep(1)
        leader.start()
        for w in workers:
            w.wait(timeout=120)
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGKILL)
                w.wait(10)
    out = ""
    for f in logs:
        f.seek(0)
        out += f.read()
        f.close()
    assert left > 0, "the leader was killed after the run, not during it"
    assert all(w.returncode == 0 for w in workers), out[-4000:]
    check = redis.Redis(port=leader_of(nodes).resp_port, socket_timeout=20)
    done = [rq.job.Job.fetch(j.id, connection=check) for j in jobs]
    statuses = [j.get_status() for j in done]
    assert statuses == ["finished"] * JOBS, (statuses, out[-4000:])
    assert [j.return_value() for j in done] == [2 * i for i in range(JOBS)]
    # each job ran once: one "Job OK" line per job across the workers
    assert sum(out.count(f"({j.id})") for j in jobs) == 2 * JOBS, out[-4000:]
