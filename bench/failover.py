#!/usr/bin/env python3
"""Failover time of a local 3-node cluster: kill -9 the leader, measure the
time until a PUT through another node succeeds; repeat. Then wrk PUT/GET at
50 connections against the leader and against a follower.

Usage: bench/failover.py [TRIALS] [BASE_PORT]   (loopback only)"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAIRND = os.path.join(ROOT, "build", "cairnd")
TRIALS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
BASE = int(sys.argv[2]) if len(sys.argv) > 2 else 29000


def http(method, port, path, body=None, timeout=2.0):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


class Node:
    def __init__(self, i, work, members):
        self.i, self.work, self.members = i, work, members
        self.http, self.peer = BASE + i, BASE + 100 + i
        self.proc = None

    def start(self):
        log = open(os.path.join(self.work, f"node{self.i}.log"), "ab")
        self.proc = subprocess.Popen(
            [CAIRND, "--id", str(self.i), "--data-dir", os.path.join(self.work, f"d{self.i}"),
             "--initial-cluster", self.members, "--listen-http", f"127.0.0.1:{self.http}",
             "--listen-resp", "off", "--listen-peer", f"127.0.0.1:{self.peer}"],
            stdout=log, stderr=log)

    def ready(self, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if http("GET", self.http, "/readyz")[0] == 200:
                return True
            time.sleep(0.05)
        return False


def leader_id(nodes):
    for n in nodes:
        if n.proc and n.proc.poll() is None:
            st, body = http("GET", n.http, "/v1/status")
            if st == 200 and json.loads(body).get("leader"):
                return json.loads(body)["leader"]
    return None


def wrk(port, script, env):
    out = subprocess.run(["wrk", "-t2", "-c50", "-d10s", "--latency", "-s", script,
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True,
                         env=dict(os.environ, **env), timeout=60).stdout
    rps = next(l.split()[1] for l in out.splitlines() if l.startswith("Requests/sec"))
    p99 = next(l.split()[1] for l in out.splitlines() if l.strip().startswith("99%"))
    return float(rps), p99


def main():
    work = tempfile.mkdtemp(prefix="cairn-failover-")
    members = ",".join(f"{i}=127.0.0.1:{BASE + 100 + i}" for i in (1, 2, 3))
    nodes = [Node(i, work, members) for i in (1, 2, 3)]
    times = []
    try:
        for n in nodes:
            n.start()
        assert all(n.ready() for n in nodes), "cluster did not start"
        for t in range(TRIALS):
            lid = leader_id(nodes)
            victim = nodes[lid - 1]
            other = next(n for n in nodes if n is not victim)
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait()
            t0 = time.monotonic()
            while time.monotonic() - t0 < 30:
                if http("PUT", other.http, f"/v1/key/failover-{t}", b"x")[0] == 201:
                    break
                time.sleep(0.01)
            times.append(time.monotonic() - t0)
            victim.start()
            assert victim.ready(), "restarted node not ready"
            print(f"trial {t + 1}: killed leader {lid}, write through node {other.i} after "
                  f"{times[-1] * 1000:.0f} ms", flush=True)
        lid = leader_id(nodes)
        leader = nodes[lid - 1]
        follower = next(n for n in nodes if n is not leader)
        put = os.path.join(ROOT, "bench", "wrk_put.lua")
        get = os.path.join(ROOT, "bench", "wrk_get.lua")
        res = {"failover_ms": [round(x * 1000) for x in times],
               "failover_median_ms": round(statistics.median(times) * 1000),
               "failover_max_ms": round(max(times) * 1000),
               "put_leader": wrk(leader.http, put, {"CAIRN_KEYSPACE": "100000"}),
               "put_follower": wrk(follower.http, put, {"CAIRN_KEYSPACE": "100000"}),
               "get_leader": wrk(leader.http, get, {"CAIRN_KEYSPACE": "100000"}),
               "get_follower": wrk(follower.http, get, {"CAIRN_KEYSPACE": "100000"})}
        print(json.dumps(res, indent=1))
    finally:
        for n in nodes:
            if n.proc and n.proc.poll() is None:
                n.proc.send_signal(signal.SIGTERM)
                try:
                    n.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    n.proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
