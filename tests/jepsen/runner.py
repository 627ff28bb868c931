"""One Jepsen-style run: cluster behind the proxy, concurrent clients, a
seeded fault schedule, then the checks:

  1. linearizability of every key's history (checker.py), including a final
     linearizable read of every key through every node after all faults
     healed;
  2. no lost acknowledged write: each key's final value was written by an
     operation that could come after every acknowledged write of that key;
  3. convergence: once every node has applied the same index, every node's
     whole keyspace (GET /v1/keys?values=true&consistency=stale) has the
     same digest, and matches the final reads;
  4. liveness: after each heal the cluster is healthy again within a bound.

Used by tests/integration/test_jepsen_short.py and tests/jepsen/chaos.py.
"""
import base64
import hashlib
import json
import os
import random
import shutil
import threading
import time
from pathlib import Path

import requests

import checker
from harness import REPO, Cluster
from nemesis import KINDS, Nemesis, make_schedule
from workload import Client, History, Keys, resp_works


def default_results_root():
    return Path(os.environ.get("CAIRN_JEPSEN_RESULTS") or (REPO / "build" / "jepsen-results"))


class RunResult:
    def __init__(self, seed):
        self.seed = seed
        self.verdict = "valid"
        self.failures = []        # safety: what went wrong (text)
        self.problems = []        # harness / liveness trouble (text)
        self.lin = None           # checker.LinResult
        self.history = []
        self.events = []
        self.schedule = []
        self.counts = {}
        self.fault_counts = {}
        self.lost = []
        self.convergence = {}
        self.results_dir = None
        self.resp = False
        self.t0 = 0
        self.timings = {}

    @property
    def valid(self):
        return self.verdict == "valid"

    def leader_faults(self):
        """(step, kind, node taken out, leader the others followed meanwhile)
        for every fault aimed at the leader that found one."""
        out, picked = {}, set()
        for e in self.events:
            if not e["kind"].endswith("-leader"):
                continue
            if e["phase"] == "info" and "note" in e:
                picked.add(e["step"])  # no leader was found: a random node was taken
            elif e["phase"] == "start":
                out[e["step"]] = [e["step"], e["kind"], e.get("node"), None]
            elif e["phase"] == "info" and "leader_during" in e and e["step"] in out:
                out[e["step"]][3] = e["leader_during"]
        return [tuple(v) for s, v in out.items() if s not in picked]

    def ok_count(self, f):
        return sum(1 for o in self.history if o["f"] == f and o["outcome"] == "ok")

    def summary(self):
        lines = [f"seed {self.seed}: verdict {self.verdict.upper()}"]
        n = len(self.history)
        lines.append(f"operations: {n} recorded ({'HTTP + RESP' if self.resp else 'HTTP only'} clients)")
        for k in sorted(self.counts):
            lines.append(f"  {k:<30} {self.counts[k]}")
        starts = [e for e in self.events if e["phase"] == "start"]
        lines.append(f"faults injected: {len(starts)}")
        for k in sorted(self.fault_counts):
            lines.append(f"  {k:<22} {self.fault_counts[k]}")
        if self.lin is not None:
            lines.append(f"linearizability: {self.lin.summary()}")
        lines.append(f"lost acknowledged writes: {len(self.lost)}")
        lf = self.leader_faults()
        if lf:
            moved = sum(1 for _s, _k, node, during in lf if during not in (None, node))
            lines.append(f"leader faults: {len(lf)}, a new leader elected during {moved}")
        if self.convergence:
            lines.append(f"convergence: {self.convergence.get('verdict')} "
                         f"({self.convergence.get('keys', '?')} keys, digest "
                         f"{str(self.convergence.get('digest', ''))[:16]})")
        for f in self.failures:
            lines.append(f"FAILURE: {f}")
        for p in self.problems:
            lines.append(f"PROBLEM: {p}")
        if self.timings:
            lines.append("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items()))
        if self.results_dir:
            lines.append(f"results saved in {self.results_dir}")
        return "\n".join(lines)


def _count_ops(ops):
    counts = {}
    for o in ops:
        proto = o["proto"] + ("-pipelined" if o.get("pipelined") else "")
        if o["f"] == "cas" and o["outcome"] == "ok":
            label = f"{proto} cas ok/" + ("applied" if o.get("result") else "412")
        else:
            label = f"{proto} {o['f']} {o['outcome']}"
        counts[label] = counts.get(label, 0) + 1
    return counts


def _list_all(cluster, i, timeout=20):
    entries = []
    cursor = None
    for _ in range(10000):
        params = {"limit": "1000", "values": "true", "consistency": "stale"}
        if cursor:
            params["cursor"] = cursor
        r = cluster.http(i, "GET", "/v1/keys", params=params, timeout=timeout)
        if r.status_code != 200:
            raise RuntimeError(f"listing node {i}: {r.status_code} {r.text[:200]}")
        doc = r.json()
        entries.extend(doc["keys"])
        cursor = doc.get("next_cursor")
        if not cursor:
            return entries
    raise RuntimeError("listing did not end")


def _digest(entries):
    rows = [(e["key_b64"], e.get("value_b64"), e["create_revision"], e["mod_revision"], e["version"])
            for e in entries]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest(), rows


def _tail(path, n=12):
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "    (no log)"
    return "\n".join("    " + ln for ln in lines[-n:])


def _b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class Runner:
    def __init__(self, workdir, seed, duration=100.0, mix="all", node_factory=None, n_http=4, n_resp=1,
                 ops_per_key=120, slots=4, log=print, results_root=None, save="failure",
                 op_timeout=10.0, recovery_timeout=60.0, think=(0.005, 0.03), stale_read_rate=0.0,
                 rounds=None, fault_time=(3.0, 6.0), gap=(1.0, 3.0), delay_ms=(20, 150),
                 overtake_rate=0.0, client_mix=None, overlap=0.0):
        self.workdir = Path(workdir)
        self.seed = seed
        self.duration = duration
        self.mix = mix
        self.node_factory = node_factory
        self.n_http = n_http
        self.n_resp = n_resp
        self.ops_per_key = ops_per_key
        self.slots = slots
        self.log = log
        self.results_root = Path(results_root) if results_root else default_results_root()
        self.save = save
        self.op_timeout = op_timeout
        self.recovery_timeout = recovery_timeout
        self.think = think
        self.stale_read_rate = stale_read_rate
        self.overtake_rate = overtake_rate
        self.client_mix = client_mix
        self.overlap = overlap
        self.rounds = rounds
        self.fault_time = fault_time
        self.gap = gap
        self.delay_ms = delay_ms

    def run(self):
        res = RunResult(self.seed)
        t_begin = time.monotonic()
        res.schedule = make_schedule(self.seed, self.duration, self.mix, fault_time=self.fault_time,
                                     gap=self.gap, rounds=self.rounds, delay_ms=self.delay_ms,
                                     overlap=self.overlap)
        self.log(f"seed {self.seed}: {len(res.schedule)} fault steps planned: "
                 + ", ".join(("+" if s.get("overlap") else "") + s["kind"] for s in res.schedule)
                 + (" (+: starts before the cluster recovered from the step before)"
                    if any(s.get("overlap") for s in res.schedule) else ""))
        cluster = Cluster(self.workdir, node_factory=self.node_factory, log=self.log)
        nem = Nemesis(cluster, log=self.log, recovery_timeout=self.recovery_timeout)
        history = History()
        stop = threading.Event()
        clients = []
        try:
            cluster.start()
            res.timings["start"] = time.monotonic() - t_begin
            res.resp = self.n_resp > 0 and resp_works(cluster.node(1).resp_port)
            if self.n_resp > 0 and not res.resp:
                self.log("RESP SET/GET does not work here: HTTP clients only")
            keys = Keys(f"jepsen/{self.seed}/k", slots=self.slots, ops_per_key=self.ops_per_key)
            rng = random.Random(self.seed * 7919 + 1)
            for c in range(self.n_http):
                clients.append(Client(f"h{c}", "http", cluster, keys, history, stop,
                                      random.Random(rng.random()), op_timeout=self.op_timeout,
                                      think=self.think, stale_read_rate=self.stale_read_rate,
                                      overtake_rate=self.overtake_rate, mix=self.client_mix))
            for c in range(self.n_resp if res.resp else 0):
                clients.append(Client(f"r{c}", "resp", cluster, keys, history, stop,
                                      random.Random(rng.random()), op_timeout=self.op_timeout,
                                      think=self.think, mix={"read": 0.45, "write": 0.4, "pipelined": 0.15},
                                      overtake_rate=self.overtake_rate))
            res.t0 = time.monotonic_ns()
            for c in clients:
                c.start()
            time.sleep(2.0)  # a little traffic on the healthy cluster first
            t_faults = time.monotonic()
            nem.run(res.schedule, deadline=t_faults + self.duration)
            res.timings["faults"] = time.monotonic() - t_faults
            # heal everything (it already is) and keep the clients going a bit
            cluster.heal_all()
            healthy = cluster.wait_healthy(self.recovery_timeout)
            if not healthy:
                res.problems.append(f"cluster not healthy {self.recovery_timeout}s after the final heal")
            time.sleep(3.0)
            stop.set()
            for c in clients:
                c.join(self.op_timeout + 10)
                if c.is_alive():
                    res.problems.append(f"client {c.cname} did not stop")
            for c in clients:
                for e in c.errors[:10]:
                    res.problems.append(f"client {c.cname}: {e}")
            res.events = list(nem.events)
            res.problems.extend(nem.problems)
            res.problems.extend(nem.unavailable)
            t_check = time.monotonic()
            if healthy:
                finals = self._final_reads(cluster, keys, history, res)
                res.timings["final reads"] = time.monotonic() - t_check
                t1 = time.monotonic()
                self._convergence(cluster, finals, res)
                res.timings["convergence"] = time.monotonic() - t1
            else:
                finals = {}
                res.problems.append("final reads, lost-write and convergence checks skipped: "
                                    "the cluster never became healthy again")
            res.history = history.snapshot()
            self._lost_writes(res.history, finals, res)
            t1 = time.monotonic()
            res.lin = checker.check(res.history)
            res.timings["linearizability"] = time.monotonic() - t1
        except Exception as e:  # noqa: BLE001 - reported, results kept
            stop.set()
            res.problems.append(f"harness error: {e!r}")
            res.history = history.snapshot()
            res.events = list(nem.events)
            import traceback
            self.log(traceback.format_exc())
        finally:
            stop.set()
            for c in clients:
                c.join(self.op_timeout + 10)
            cluster.stop_all()
        # a node that died by itself (not our kill -9) or did not exit
        # cleanly when stopped is a bug whatever the history says
        for i, x in cluster.nodes.items():
            for n, rc in enumerate(x.returncodes, 1):
                if rc not in (0, -9) and (i, n) not in cluster.port_taken_runs:
                    log = x.stderr_paths[n - 1] if n - 1 < len(x.stderr_paths) else x.stderr_path
                    res.failures.append(f"node {i} run {n} exited with status {rc} (not killed by the "
                                        f"harness; log {log}):\n" + _tail(log))
        for p in cluster.stop_problems:
            res.failures.append(f"graceful stop failed: {p}")
        res.counts = _count_ops(res.history)
        for e in res.events:
            if e["phase"] == "start":
                res.fault_counts[e["kind"]] = res.fault_counts.get(e["kind"], 0) + 1
        if res.lin is not None and not res.lin.ok:
            if res.lin.verdict == checker.FAIL:
                res.failures.append("history is not linearizable:\n"
                                    + checker.format_result(res.lin, t0=res.t0))
            else:
                res.problems.append("linearizability undecided for keys " + str(res.lin.unknown[:10]))
        if res.failures:
            res.verdict = "invalid"
        elif res.problems:
            res.verdict = "unknown" if res.lin is not None and res.lin.verdict == checker.UNKNOWN \
                else "error"
        res.timings["total"] = time.monotonic() - t_begin
        if self.save == "always" or (self.save == "failure" and not res.valid):
            self._save(cluster, res)
        return res

    # -- final phase ------------------------------------------------------------------
    def _final_reads(self, cluster, keys, history, res):
        """Linearizable read of every key through every node (one thread per
        node; the reads are part of the checked history); returns key ->
        value agreed by the successful reads."""
        seen = {}  # key -> {node: value}
        lock = threading.Lock()

        def reader(i):
            probe = Client(f"final{i}", "http", cluster, keys, history, threading.Event(),
                           random.Random(i), op_timeout=self.op_timeout)
            probe.node = i
            probe._move = lambda: None  # stay on this node
            for key in keys.all:
                for _attempt in range(5):
                    op = probe.do_read(key)
                    if op["outcome"] == "ok":
                        with lock:
                            seen.setdefault(key, {})[i] = op.get("result")
                        break
                    time.sleep(0.5)
            probe._drop()

        threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in cluster.node_ids()]
        for t in threads:
            t.start()
        for t in threads:
            t.join(600)
        finals = {}
        for key in keys.all:
            got = seen.get(key)
            if not got:
                res.problems.append(f"no node answered a final read of {key}")
                continue
            if len(set(got.values())) > 1:
                res.failures.append(f"final linearizable reads of {key} disagree across nodes: {got}")
            finals[key] = next(iter(got.values()))
        return finals

    def _convergence(self, cluster, finals, res):
        ids = cluster.node_ids()
        deadline = time.monotonic() + 30
        applied = {}
        same = 0
        while time.monotonic() < deadline:
            applied = {i: (cluster.status(i) or {}).get("applied_index") for i in ids}
            if None not in applied.values() and len(set(applied.values())) == 1:
                same += 1
                if same >= 2:
                    break
            else:
                same = 0
            time.sleep(0.3)
        res.convergence["applied_index"] = applied
        if len(set(applied.values())) != 1 or None in applied.values():
            res.failures.append(f"nodes did not converge to one applied index within 30s: {applied}")
        digests = {}
        rows = {}
        for attempt in range(5):
            digests, rows = {}, {}
            for i in ids:
                try:
                    d, r = _digest(_list_all(cluster, i))
                except (requests.RequestException, RuntimeError, ValueError) as e:
                    d, r = f"error: {e!r}", []
                digests[i], rows[i] = d, r
            if len(set(digests.values())) == 1:
                break
            time.sleep(1.0)
        res.convergence["digests"] = digests
        if len(set(digests.values())) != 1:
            base = rows[ids[0]]
            diffs = {}
            for i in ids[1:]:
                a, b = set(map(tuple, base)), set(map(tuple, rows[i]))
                diffs[i] = {"only_on_%d" % ids[0]: sorted(a - b)[:5], f"only_on_{i}": sorted(b - a)[:5]}
            res.failures.append(f"keyspaces differ across nodes after applied indexes matched: "
                                f"{digests}; first differences {diffs}")
            res.convergence["verdict"] = "DIVERGED"
        else:
            res.convergence["verdict"] = "identical"
            res.convergence["digest"] = digests[ids[0]]
            res.convergence["keys"] = len(rows[ids[0]])
        # the stale listing must hold what the final linearizable reads saw
        listing = {_b64d(r[0]).decode(errors="replace"): (_b64d(r[1]).decode(errors="replace")
                                                          if r[1] is not None else None)
                   for r in rows.get(ids[0], [])}
        for key, v in finals.items():
            if listing.get(key) != v:
                res.failures.append(f"key {key}: final read {v!r} but listing of node {ids[0]} "
                                    f"holds {listing.get(key)!r}")

    def _lost_writes(self, ops, finals, res):
        """Every acknowledged write is present, or overwritten by an
        operation that may have come after it."""
        producers = {}
        by_key = {}
        for o in ops:
            if o["f"] in ("write", "cas"):
                producers[(o["key"], o["value"])] = o
                if o["outcome"] == "ok" and (o["f"] == "write" or o.get("result") is True):
                    by_key.setdefault(o["key"], []).append(o)
        for key, acked in by_key.items():
            if key not in finals:
                continue
            v = finals[key]
            p = producers.get((key, v)) if v is not None else None
            if v is not None and p is None:
                res.failures.append(f"key {key}: final value {v!r} was never written by any client")
                continue
            if p is not None and p["outcome"] == "fail":
                res.failures.append(f"key {key}: final value {v!r} comes from a write reported as not "
                                    f"applied: {checker.format_op(p, res.t0)}")
                continue
            p_end = p["cmp"] if (p is not None and p["outcome"] == "ok") else None
            for w in acked:
                if w is p:
                    continue
                if v is None or (p_end is not None and p_end < w["inv"]):
                    res.lost.append({"key": key, "write": w, "final": v, "final_writer": p})
        for lw in res.lost[:20]:
            w, p = lw["write"], lw["final_writer"]
            res.failures.append(
                f"lost acknowledged write on {lw['key']}: {checker.format_op(w, res.t0)}\n"
                f"    but the final value is {lw['final']!r}"
                + (f", written by {checker.format_op(p, res.t0)}" if p else ""))
        if len(res.lost) > 20:
            res.failures.append(f"... {len(res.lost) - 20} more lost writes")

    # -- results ------------------------------------------------------------------------
    def _save(self, cluster, res):
        stamp = time.strftime("%Y%m%dT%H%M%S")
        d = self.results_root / f"{stamp}-seed{self.seed}"
        d.mkdir(parents=True, exist_ok=True)
        with open(d / "history.jsonl", "w") as f:
            for o in sorted(res.history, key=lambda o: o["inv"]):
                f.write(json.dumps(dict(o, t_ms=round((o["inv"] - res.t0) / 1e6, 3))) + "\n")
        with open(d / "faults.jsonl", "w") as f:
            for e in res.events:
                f.write(json.dumps(dict(e, t_ms=round((e["t"] - res.t0) / 1e6, 3))) + "\n")
        (d / "schedule.json").write_text(json.dumps({"seed": self.seed, "duration": self.duration,
                                                     "mix": self.mix, "steps": res.schedule}, indent=1))
        (d / "summary.txt").write_text(res.summary() + "\n")
        logs = d / "logs"
        logs.mkdir(exist_ok=True)
        for i, p in cluster.log_paths():
            if p.exists():
                shutil.copy(p, logs / f"node{i}.{p.name}")
        if cluster.proxy.log_path.exists():
            shutil.copy(cluster.proxy.log_path, logs / "proxy.log")
        res.results_dir = d
        self.log(f"results saved in {d}")


def replay_check(history_path):
    """Re-check a saved history.jsonl (e.g. after changing the checker)."""
    ops = checker.load_jsonl(history_path)
    return checker.check(ops)


__all__ = ["Runner", "RunResult", "KINDS", "replay_check", "default_results_root"]
