#!/usr/bin/python3
"""cairn's side-by-side benchmark suite (issue #4).

Runs cairn and its competitors (redis-server, memcached, etcd, nginx) on
this machine, on loopback, with the same load generators, in the same run;
alternates the sides of every comparison (A B A B ...) and reports medians
and cairn/competitor ratios in a Markdown report with gnuplot plots.

Usage (bench/run.sh installs packages and builds first; this file does not):
    bench/suite.py [smoke|quick|full] [--build-dir DIR] [--report FILE]
                   [--plots-dir DIR] [--out DIR] [--only W1,W2,...]

smoke: seconds, proves the suite works (CI); quick: under 5 minutes;
full: the numbers to quote. Missing tools or servers are reported as not
measured, never guessed."""
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import drivers  # noqa: E402
import procs  # noqa: E402
import report  # noqa: E402

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)

CONNS = 50
VALUE = 100
KEYSPACE = 100000

# Sizes per variant. rb_*: redis-benchmark request counts; *_s: seconds.
VARIANTS = {
    "smoke": dict(rounds=1, gen_keys=5000, rb_n=2000, rb_n_pipe=8000, mset_n=500, dur_n1=50, dur_n50=500,
                  gen_s=0.5, wrk_s=1, http_keys=2000, mem_keys=20000, overload_steps=[50, 150],
                  overload_s=0.5, capacity_s=0.5, cluster=False, dt_n=5000, wake_n=50),
    "quick": dict(rounds=2, gen_keys=KEYSPACE, rb_n=60000, rb_n_pipe=300000, mset_n=15000, dur_n1=400,
                  dur_n50=15000, gen_s=2, wrk_s=2, http_keys=20000, mem_keys=1000000,
                  overload_steps=[10, 70, 110, 150], overload_s=2, capacity_s=2, cluster=True,
                  dt_n=200000, wake_n=300),
    "full": dict(rounds=3, gen_keys=KEYSPACE, rb_n=400000, rb_n_pipe=3000000, mset_n=100000, dur_n1=3000,
                 dur_n50=100000, gen_s=10, wrk_s=10, http_keys=100000, mem_keys=1000000,
                 overload_steps=[10, 30, 50, 70, 90, 110, 130, 150], overload_s=10,
                 capacity_s=10, cluster=True, dt_n=1000000, wake_n=2000),
}

# redis-benchmark's tests of the data types that issue 12 names (W9)
# ... and those of them that write, for the durable comparison (W10)
DURABLE_DATATYPE_TESTS = ("lpush", "rpush", "sadd", "hset", "zadd")
DATATYPE_TESTS = ("lpush", "rpush", "lpop", "rpop", "sadd", "hset", "spop", "zadd", "zpopmin",
                  "lrange_100")

OVERLOAD_MAX_INFLIGHT = 256
OVERLOAD_PIPELINE = 32
CLUSTER_SIZE = 3


class Suite:
    def __init__(self, args):
        self.args = args
        self.v = VARIANTS[args.variant]
        self.rounds = args.rounds or self.v["rounds"]
        self.build = os.path.abspath(args.build_dir)
        self.cairnd = os.path.join(self.build, "cairnd")
        self.cairnctl = os.path.join(self.build, "cairnctl")
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.out = os.path.abspath(args.out or os.path.join(BENCH_DIR, "results",
                                                            f"{args.variant}-{stamp}"))
        os.makedirs(self.out, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix="cairn-bench-")
        self.results = []   # one dict per run
        self.notes = {}     # workload -> list of notes
        self.extra = {}     # workload -> free-form measured data
        self.loadavg = []
        self.have = {t: shutil.which(t) is not None for t in
                     ("redis-server", "redis-benchmark", "memcached", "etcd", "nginx", "wrk",
                      "gnuplot", "redis-cli")}
        self.resp_ok = False
        self.t_start = time.monotonic()

    # ---- helpers -----------------------------------------------------------

    def note(self, w, text):
        self.notes.setdefault(w, []).append(text)
        self.log(f"[{w}] {text}")

    def log(self, text):
        el = time.monotonic() - self.t_start
        print(f"[{el:6.1f}s] {text}", file=sys.stderr, flush=True)

    def datadir(self, name):
        d = os.path.join(self.tmp, name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        return d

    def wanted(self, w):
        return not self.args.only or w in self.args.only.split(",")

    # ---- servers -----------------------------------------------------------

    def cairn(self, name, persistence, extra=(), datadir=None, resp=True):
        http, peer = procs.free_port(), procs.free_port()
        rport = procs.free_port() if resp else None
        d = datadir or self.datadir(name)
        argv = [self.cairnd, "--id", "1", "--data-dir", d, "--listen-http", f"127.0.0.1:{http}",
                "--listen-peer", f"127.0.0.1:{peer}",
                "--listen-resp", f"127.0.0.1:{rport}" if resp else "off",
                "--persistence", persistence, "--log-level", "warn", *extra]
        s = procs.Server(name, argv, self.out,
                         lambda s: procs.http_ok(f"http://127.0.0.1:{http}/readyz"))
        s.http_port, s.resp_port, s.datadir, s.kind = http, rport, d, "cairn"
        return s

    def redis(self, name, aof=False, fsync="always", datadir=None, port=None):
        port = port or procs.free_port()
        d = datadir or self.datadir(name)
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
                "--save", "", "--appendonly", "yes" if aof else "no", "--appendfsync", fsync,
                "--auto-aof-rewrite-percentage", "0", "--daemonize", "no", "--logfile", "",
                "--dbfilename", "dump.rdb", "--protected-mode", "yes"]
        s = procs.Server(name, argv, self.out, lambda s: procs.resp_ready(port))
        s.resp_port, s.datadir, s.kind = port, d, "redis"
        return s

    def memcached(self, name):
        port = procs.free_port()
        argv = ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-t", "1",
                "-m", "4096", "-c", "4096"]
        if os.geteuid() == 0:
            argv += ["-u", "memcache" if _user_exists("memcache") else "nobody"]
        s = procs.Server(name, argv, self.out, lambda s: procs.memcached_ready(port))
        s.mc_port, s.kind = port, "memcached"
        return s

    def etcd(self, name):
        port, peer = procs.free_port(), procs.free_port()
        d = self.datadir(name)
        argv = ["etcd", "--name", "bench", "--data-dir", os.path.join(d, "data"),
                "--listen-client-urls", f"http://127.0.0.1:{port}",
                "--advertise-client-urls", f"http://127.0.0.1:{port}",
                "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-cluster", f"bench=http://127.0.0.1:{peer}",
                "--log-level", "error"]
        s = procs.Server(name, argv, self.out,
                         lambda s: procs.http_ok(f"http://127.0.0.1:{port}/health"))
        s.http_port, s.kind = port, "etcd"
        return s

    def _cluster(self, name, kind, n, argv_of, health_path, leader_of):
        """n members on loopback, measured as one server (procs.Group).
        argv_of(i, http_port, peer_port, all_ports, data_dir) -> argv."""
        ports = [(procs.free_port(), procs.free_port()) for _ in range(n)]
        d = self.datadir(name)
        nodes = []
        for i, (http, peer) in enumerate(ports):
            node = procs.Server(f"{name}-{i + 1}", argv_of(i, http, peer, ports, d), self.out,
                                lambda s, http=http: procs.http_ok(
                                    f"http://127.0.0.1:{http}{health_path}"))
            node.http_port, node.kind = http, kind
            nodes.append(node)
        g = procs.Group(name, nodes, kind)
        g.http_ports = [x.http_port for x in nodes]
        g.leader_port = lambda: leader_of(g.http_ports)
        return g

    def cairn_cluster(self, name, n=CLUSTER_SIZE, resp=False):
        """n durable cairnd members, one --initial-cluster, a data dir each;
        with resp, each member listens for RESP too (member.resp_port)."""
        resp_ports = [procs.free_port() for _ in range(n)] if resp else [None] * n

        def argv(i, http, peer, ports, d):
            members = ",".join(f"{k + 1}=127.0.0.1:{p}" for k, (_, p) in enumerate(ports))
            listen_resp = f"127.0.0.1:{resp_ports[i]}" if resp else "off"
            return [self.cairnd, "--id", str(i + 1), "--data-dir", os.path.join(d, f"node{i + 1}"),
                    "--initial-cluster", members, "--listen-http", f"127.0.0.1:{http}",
                    "--listen-peer", f"127.0.0.1:{peer}", "--listen-resp", listen_resp,
                    "--persistence", "durable", "--log-level", "warn"]
        g = self._cluster(name, "cairn", n, argv, "/readyz", procs.cairn_leader)
        for m, port in zip(g.members, resp_ports):
            m.resp_port = port

        def resp_of(role):
            """The RESP port of the leader, or of a follower, right now."""
            lead = g.leader_port()
            pick = [m for m in g.members if (m.http_port == lead) == (role == "leader")]
            return pick[0].resp_port
        g.resp_of = resp_of
        return g

    def etcd_cluster(self, name, n=CLUSTER_SIZE):
        """n etcd members (defaults otherwise: the WAL is fsync'd before a
        write is acknowledged), a data dir each."""
        def argv(i, port, peer, ports, d):
            cluster = ",".join(f"m{k + 1}=http://127.0.0.1:{p}" for k, (_, p) in enumerate(ports))
            return ["etcd", "--name", f"m{i + 1}", "--data-dir", os.path.join(d, f"m{i + 1}"),
                    "--listen-client-urls", f"http://127.0.0.1:{port}",
                    "--advertise-client-urls", f"http://127.0.0.1:{port}",
                    "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                    "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                    "--initial-cluster", cluster, "--initial-cluster-state", "new",
                    "--initial-cluster-token", f"{name}-{os.getpid()}",
                    "--log-level", "error"]
        return self._cluster(name, "etcd", n, argv, "/health", procs.etcd_leader)

    def nginx(self, name):
        port = procs.free_port()
        d = self.datadir(name)
        www = os.path.join(d, "www")
        os.makedirs(www)
        # workers run as nobody: the path must be readable by everyone
        for p in (self.tmp, d, www):
            os.chmod(p, 0o755)
        with open(os.path.join(www, "v"), "wb") as f:
            f.write(b"v" * VALUE)
        os.chmod(os.path.join(www, "v"), 0o644)
        conf = os.path.join(d, "nginx.conf")
        temps = "\n".join(f"  {k}_temp_path {d}/{k};" for k in
                          ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        with open(conf, "w") as f:
            f.write(f"""daemon off;
master_process on;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  default_type application/octet-stream;
{temps}
  server {{ listen 127.0.0.1:{port}; root {www}; }}
}}
""")
        argv = ["nginx", "-p", d, "-c", conf, "-e", os.path.join(d, "error.log")]
        s = procs.Server(name, argv, self.out,
                         lambda s: procs.http_ok(f"http://127.0.0.1:{port}/v"))
        s.http_port, s.kind = port, "nginx"
        return s

    # ---- measuring one run ---------------------------------------------------

    def measure(self, workload, test, side, server, fn, rnd, **meta):
        """Run fn() against server, with the server's CPU and memory
        measured around it; record the result (or the failure)."""
        with open("/proc/loadavg") as f:
            load = float(f.read().split()[0])
        self.loadavg.append(load)
        cpu0 = server.cpu_seconds() if server else 0.0
        t0 = time.monotonic()
        row = {"workload": workload, "test": test, "side": side, "round": rnd,
               "loadavg": load, **meta}
        try:
            res = fn()
            row.update(res)
            row["ok"] = True
        except Exception as e:  # noqa: BLE001 - any failure becomes a reported row
            row["ok"] = False
            row["error"] = str(e)[:300]
            self.log(f"  {test} / {side}: FAILED: {row['error']}")
        row["wall_s"] = time.monotonic() - t0
        if server:
            row["server_cpu_s"] = server.cpu_seconds() - cpu0
            row["peak_rss_mb"] = server.hwm_kb() / 1024
            if not server.alive():
                row["ok"] = False
                row["error"] = (row.get("error", "") + f" server died: {server.log_tail()}")[:300]
        if row["ok"]:
            self.log(f"  {test} / {side} r{rnd}: {row['throughput']:.0f} req/s "
                     f"p99 {row.get('p99_ms') or 0:.2f} ms cpu {row.get('server_cpu_s', 0):.2f}s")
        self.results.append(row)
        return row

    def alternate(self, workload, test, sides, rounds=None):
        """sides: [(side label, server, fn)]; runs A B A B ... per round."""
        for rnd in range(1, (rounds or self.rounds) + 1):
            for side, server, fn in sides:
                self.measure(workload, test, side, server, fn, rnd)

    def start(self, servers, workload):
        """Start servers; those that fail are noted and left out."""
        up = []
        for s in servers:
            try:
                up.append(s.start())
            except Exception as e:  # noqa: BLE001
                self.note(workload, f"{s.name} did not start: {e}")
        return up

    def stop(self, servers):
        for s in servers:
            how = s.stop()
            if how not in ("sigterm", "not running"):
                self.note("stops", f"{s.name} needed {how} to stop")

    def preload(self, protocol, port, keys, workload, label):
        """Write keys 0..keys-1 once each (sequential, pipelined)."""
        try:
            r = drivers.cairnctl_bench(self.cairnctl, protocol, port, requests=keys,
                                       connections=8, pipeline=16, read_ratio=0,
                                       keyspace=keys, keys="sequential",
                                       timeout_pad=600,
                                       log_path=os.path.join(self.out, "cairnctl_bench.log"))
            self.log(f"  preloaded {keys} keys into {label} at {r['throughput']:.0f}/s")
            return r
        except drivers.DriverError as e:
            self.note(workload, f"preloading {label} failed: {e}")
            return None

    def redis_comparable(self, w):
        """cairn's RESP port works and redis-server and redis-benchmark are
        installed; else noted as not run."""
        if not self.resp_ok:
            self.note(w, "not run: cairn's RESP port did not answer PING")
            return False
        if not self.have["redis-server"] or not self.have["redis-benchmark"]:
            self.note(w, "not run: redis-server / redis-benchmark not installed")
            return False
        return True

    def in_memory_pair(self, w):
        """cairn --persistence none and redis-server without persistence,
        for redis-benchmark (W1, W9): (servers, cairn, redis), or None when
        they cannot run (noted)."""
        if not self.redis_comparable(w):
            return None
        tag = w.lower()
        servers = self.start([self.cairn(f"{tag}-cairn-none", "none"),
                              self.redis(f"{tag}-redis", aof=False)], w)
        by = {s.kind: s for s in servers}
        if len(by) < 2:
            self.stop(servers)
            return None
        return servers, by["cairn"], by["redis"]

    def benchmark_pair(self, w, c, r, test, n, pipeline):
        """One redis-benchmark test on cairn and redis, alternating."""
        def fn(port):
            return lambda: drivers.redis_benchmark(port, test, CONNS, n, pipeline, VALUE,
                                                   KEYSPACE)

        self.alternate(w, f"{test.upper()} -P {pipeline}", [("cairn", c, fn(c.resp_port)),
                                                             ("redis", r, fn(r.resp_port))])

    # ---- W1: RESP in memory ------------------------------------------------

    def w1_resp_memory(self):
        w = "W1"
        pair = self.in_memory_pair(w)
        if not pair:
            return
        servers, c, r = pair
        for pipeline in (1, 16):
            for test in ("set", "get", "incr", "mset"):
                n = self.v["mset_n"] if test == "mset" else (
                    self.v["rb_n"] if pipeline == 1 else self.v["rb_n_pipe"])
                if test == "mset" and pipeline > 1:
                    n = n * 4
                self.benchmark_pair(w, c, r, test, n, pipeline)
        # GET/SET against memcached need a generator that speaks both
        # protocols: cairnctl bench, on the same preloaded keyspace.
        if self.have["memcached"]:
            mc = self.start([self.memcached("w1-memcached")], w)
            if mc:
                m = mc[0]
                gk = self.v["gen_keys"]
                self.preload("resp", c.resp_port, gk, w, "cairn")
                self.preload("resp", r.resp_port, gk, w, "redis")
                self.preload("memcache", m.mc_port, gk, w, "memcached")
                for test, ratio in (("SET", 0.0), ("GET", 1.0)):
                    def gen(proto, port, ratio=ratio):
                        return lambda: drivers.cairnctl_bench(
                            self.cairnctl, proto, port, duration=self.v["gen_s"],
                            connections=CONNS, read_ratio=ratio, keyspace=gk)

                    self.alternate(w, f"{test} (cairnctl bench)",
                                   [("cairn", c, gen("resp", c.resp_port)),
                                    ("memcached", m, gen("memcache", m.mc_port)),
                                    ("redis", r, gen("resp", r.resp_port))])
                self.stop(mc)
        else:
            self.note(w, "memcached comparison not run: memcached not installed")
        self.stop(servers)

    # ---- W2: RESP durable --------------------------------------------------

    def w2_resp_durable(self):
        w = "W2"
        if not self.redis_comparable(w):
            return
        servers = self.start([self.cairn("w2-cairn-durable", "durable"),
                              self.redis("w2-redis-aof-always", aof=True, fsync="always")], w)
        by = {s.kind: s for s in servers}
        if len(by) == 2:
            c, r = by["cairn"], by["redis"]
            for clients, n in ((1, self.v["dur_n1"]), (50, self.v["dur_n50"])):
                def fn(port, clients=clients, n=n):
                    return lambda: drivers.redis_benchmark(port, "set", clients, n, 1, VALUE,
                                                           KEYSPACE)

                self.alternate(w, f"SET -c {clients}", [("cairn", c, fn(c.resp_port)),
                                                        ("redis", r, fn(r.resp_port))])
        self.stop(servers)

    # ---- W3: HTTP ------------------------------------------------------------

    def w3_http(self):
        w = "W3"
        if not self.have["wrk"]:
            self.note(w, "not run: wrk not installed")
            return
        cands = [self.cairn("w3-cairn-durable", "durable", resp=False)]
        if self.have["etcd"]:
            cands.append(self.etcd("w3-etcd"))
        else:
            self.note(w, "etcd not installed: etcd comparison not run")
        if self.have["nginx"]:
            cands.append(self.nginx("w3-nginx"))
        else:
            self.note(w, "nginx not installed: nginx comparison not run")
        servers = self.start(cands, w)
        by = {s.kind: s for s in servers}
        if "cairn" not in by:
            self.stop(servers)
            return
        keys = self.v["http_keys"]
        c = by["cairn"]
        self.preload("http", c.http_port, keys, w, "cairn")
        if "etcd" in by:
            self.preload("etcd", by["etcd"].http_port, keys, w, "etcd")
        env = {"CAIRN_KEYSPACE": str(keys), "CAIRN_THREADS": "2"}
        d = self.v["wrk_s"]

        def run(port, script, path="/", extra=None):
            e = dict(env, **(extra or {}))
            return lambda: drivers.wrk(f"http://127.0.0.1:{port}{path}",
                                       os.path.join(BENCH_DIR, script), d, CONNS, 2, e)

        put = [("cairn", c, run(c.http_port, "wrk_put.lua"))]
        get = [("cairn", c, run(c.http_port, "wrk_get.lua"))]
        if "etcd" in by:
            e = by["etcd"]
            put.append(("etcd", e, run(e.http_port, "wrk_etcd.lua", extra={"ETCD_OP": "put"})))
            get.append(("etcd", e, run(e.http_port, "wrk_etcd.lua",
                                       extra={"ETCD_OP": "range"})))
        if "nginx" in by:
            n = by["nginx"]
            get.append(("nginx", n, run(n.http_port, "wrk_static.lua", path="/v")))
        self.alternate(w, "PUT", put)
        self.alternate(w, "GET", get)
        self.extra.setdefault(w, {})["cairn_metrics"] = _scrape_metrics(
            c.http_port, ("cairn_loop_lag_max_seconds", "cairn_snapshot_fork_max_seconds"))
        self.stop(servers)

    # ---- W9: data-type commands in memory --------------------------------------

    def w9_datatype_commands(self):
        """redis-benchmark's own tests of the data types (issue 12's list),
        cairn --persistence none against redis-server without persistence,
        alternating as W1 does. The pops follow the pushes on each server,
        so they pop from the lists, sets and sorted sets those filled."""
        w = "W9"
        pair = self.in_memory_pair(w)
        if not pair:
            return
        servers, c, r = pair
        for pipeline in (1, 16):
            for test in DATATYPE_TESTS:
                n = self.v["rb_n"] if pipeline == 1 else self.v["rb_n_pipe"]
                self.benchmark_pair(w, c, r, test, n, pipeline)
        self.stop(servers)

    # ---- W10: data-type writes, durable -----------------------------------------

    def w10_datatype_durable(self):
        """redis-benchmark's write tests of the data types, 50 clients,
        against cairn durable (one node, and the leader of 3 nodes) and
        redis-server --appendfsync always, alternating."""
        w = "W10"
        if not self.redis_comparable(w):
            return
        cands = [self.cairn("w10-cairn-durable", "durable"),
                 self.redis("w10-redis-aof-always", aof=True, fsync="always")]
        if self.v["cluster"] or self.args.only:
            cands.append(self.cairn_cluster("w10-cairn-3", resp=True))
        servers = self.start(cands, w)
        single = [s for s in servers if s.kind == "cairn" and not hasattr(s, "members")]
        group = [s for s in servers if hasattr(s, "members")]
        redis = [s for s in servers if s.kind == "redis"]
        if not redis or not (single or group):
            self.stop(servers)
            return
        n = self.v["dur_n50"]
        for test in DURABLE_DATATYPE_TESTS:
            def fn(port_of, test=test):
                return lambda: drivers.redis_benchmark(port_of(), test, CONNS, n, 1, VALUE,
                                                       KEYSPACE)
            sides = [("cairn", s, fn(lambda s=s: s.resp_port)) for s in single]
            sides += [("cairn 3 nodes", g, fn(lambda g=g: g.resp_of("leader"))) for g in group]
            sides.append(("redis", redis[0], fn(lambda: redis[0].resp_port)))
            self.alternate(w, f"{test.upper()} -c {CONNS}", sides)
        self.stop(servers)

    # ---- W11: blocking pop wake-up latency ----------------------------------------

    def w11_blocking_wakeup(self):
        """How long a client blocked in BLPOP waits after another client's
        LPUSH: redis-server, cairn --persistence none, cairn durable, and a
        3-node cairn cluster with the blocked client on the leader and on a
        follower (the push goes to the leader)."""
        w = "W11"
        if not self.resp_ok:
            self.note(w, "not run: cairn's RESP port did not answer PING")
            return
        cands = [self.cairn("w11-cairn-none", "none"), self.cairn("w11-cairn-durable", "durable")]
        if self.have["redis-server"]:
            cands.append(self.redis("w11-redis"))
        if self.v["cluster"] or self.args.only:
            cands.append(self.cairn_cluster("w11-cairn-3", resp=True))
        servers = self.start(cands, w)
        rounds = self.v["wake_n"]

        def fn(block, push):
            return lambda: drivers.blocking_wakeup(block(), push(), rounds)
        sides = []
        for s in servers:
            if hasattr(s, "members"):
                sides.append(("cairn 3 nodes, on the leader", s,
                              fn(lambda s=s: s.resp_of("leader"), lambda s=s: s.resp_of("leader"))))
                sides.append(("cairn 3 nodes, on a follower", s,
                              fn(lambda s=s: s.resp_of("follower"),
                                 lambda s=s: s.resp_of("leader"))))
            else:
                label = s.kind if s.kind == "redis" else f"cairn {s.name.rsplit('-', 1)[1]}"
                sides.append((label, s, fn(lambda s=s: s.resp_port, lambda s=s: s.resp_port)))
        self.alternate(w, "BLPOP wake-up", sides)
        self.stop(servers)

    # ---- W12: transactions, pub/sub, streams in memory -------------------------

    def w12_messaging(self):
        """Issue 13's in-memory benchmarks, cairn --persistence none against
        redis-server without persistence, alternating: MULTI + 10 INCR +
        EXEC (the same Python driver for both), XADD * (redis-benchmark, 50
        clients, -P 16), XREADGROUP, EVALSHA, PUBLISH with 1 and with 100
        subscribers (redis-cli processes; the publisher is redis-benchmark,
        50 clients, -P 16; delivered messages/s = publishes/s x subscribers,
        checked with PUBSUB NUMSUB that no subscriber was dropped)."""
        w = "W12"
        pair = self.in_memory_pair(w)
        if not pair:
            return
        self.messaging(w, *pair, self.v["rb_n_pipe"])

    def w13_messaging_durable(self):
        """W12's commands durable: cairn durable (one node) against
        redis-server --appendonly yes --appendfsync always, alternating. A
        smaller n: every write is an fsync on both sides."""
        w = "W13"
        if not self.redis_comparable(w):
            return
        servers = self.start([self.cairn("w13-cairn-durable", "durable"),
                              self.redis("w13-redis-aof-always", aof=True, fsync="always")], w)
        by = {s.kind: s for s in servers}
        if len(by) < 2:
            self.stop(servers)
            return
        self.messaging(w, servers, by["cairn"], by["redis"], self.v["dur_n50"])

    def messaging(self, w, servers, c, r, n):
        """W12's and W13's runs on cairn c and redis r, n commands each."""
        txs = max(200, self.v["rb_n"] // 40) if w == "W12" else max(100, n // 20)

        def tx(port):
            return lambda: drivers.multi_exec(port, conns=8, txs=txs, batch=20)
        self.alternate(w, "MULTI + 10 INCR + EXEC, 8 conns", [("cairn", c, tx(c.resp_port)),
                                                              ("redis", r, tx(r.resp_port))])

        def xadd(port):
            return lambda: drivers.redis_benchmark_cmd(port, ["XADD", "bench:stream", "MAXLEN",
                                                              "~", "100000", "*", "f", "v"],
                                                       CONNS, n, 16)
        self.alternate(w, "XADD * -P 16", [("cairn", c, xadd(c.resp_port)),
                                          ("redis", r, xadd(r.resp_port))])
        # XREADGROUP: one new entry per call out of what XADD left (MAXLEN ~
        # 100000 keeps at least that many), a group created at 0 on each
        for s_ in (c, r):
            subprocess.run(["redis-cli", "-p", str(s_.resp_port), "XGROUP", "CREATE",
                            "bench:stream", "bench:g", "0"], capture_output=True, timeout=30,
                           check=True)
        reads = min(n, 50000) // 2

        def xreadgroup(port):
            return lambda: drivers.redis_benchmark_cmd(port, ["XREADGROUP", "GROUP", "bench:g",
                                                              "c", "COUNT", "1", "STREAMS",
                                                              "bench:stream", ">"],
                                                       CONNS, reads, 16)
        self.alternate(w, "XREADGROUP COUNT 1 -P 16", [("cairn", c, xreadgroup(c.resp_port)),
                                                       ("redis", r, xreadgroup(r.resp_port))])
        sha = None
        for s_ in (c, r):
            sha = _script_load(s_.resp_port, EVALSHA_SCRIPT)

        def evalsha(port):
            return lambda: drivers.redis_benchmark_cmd(port, ["EVALSHA", sha, "1",
                                                              "bench:eval:__rand_int__", "1"],
                                                       CONNS, n, 16, keyspace=100000)
        self.alternate(w, "EVALSHA (GET, INCRBY) -P 16", [("cairn", c, evalsha(c.resp_port)),
                                                          ("redis", r, evalsha(r.resp_port))])
        for subs in (1, 100):
            procs_ = {}
            for s in (c, r):
                procs_[s.kind] = drivers.subscribers(s.resp_port, "bench:ch", subs)
            time.sleep(1.0)

            def pub(port):
                return lambda: drivers.redis_benchmark_cmd(port, ["PUBLISH", "bench:ch",
                                                                  "x" * 16], CONNS,
                                                           n // max(1, subs // 10), 16)
            self.alternate(w, f"PUBLISH -P 16 to {subs} subscriber(s)",
                           [("cairn", c, pub(c.resp_port)), ("redis", r, pub(r.resp_port))])
            for s in (c, r):
                left = _numsub(s.resp_port, "bench:ch")
                self.extra.setdefault(w, {})[f"{s.kind}_subscribers_left_{subs}"] = left
                if left != subs:
                    self.note(w, f"{s.kind}: {subs - left} of {subs} subscribers were dropped")
                for p_ in procs_[s.kind]:
                    p_.kill()
                    p_.wait(10)
        self.stop(servers)

    # ---- W8: memory of the data types -----------------------------------------

    def w8_datatype_memory(self):
        """Each data set loaded into a fresh server (cairn --persistence none,
        then redis-server without persistence) with redis-cli --pipe; memory
        per element = (settled RSS after - RSS before) / elements."""
        w = "W8"
        if not self.have["redis-server"] or not self.have["redis-cli"]:
            self.note(w, "redis-server or redis-cli not installed: not measured")
            return
        n = self.v["dt_n"]
        out = {}
        for name, elements, gen in _datatype_sets(n):
            path = os.path.join(self.tmp, f"w8-{name.replace(' ', '-')}.resp")
            with open(path, "wb") as f:
                for cmd in gen():
                    f.write(procs.resp_encode(*cmd))
            for side in ("cairn", "redis"):
                s = (self.cairn(f"w8-cairn-{len(out)}", "none") if side == "cairn"
                     else self.redis(f"w8-redis-{len(out)}", aof=False))
                label = f"{name}/{side}"
                try:
                    s.start()
                    time.sleep(0.2)
                    base = s.rss_kb()
                    t0 = time.monotonic()
                    with open(path, "rb") as f:
                        r = subprocess.run(["redis-cli", "-p", str(s.resp_port), "--pipe"],
                                           stdin=f, stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, timeout=900)
                    load_s = time.monotonic() - t0
                    text = r.stdout.decode(errors="replace")
                    if r.returncode != 0 or "errors: 0" not in text:
                        self.note(w, f"{label}: load failed: {text.strip()[-200:]}")
                        continue
                    quick = self.args.variant == "smoke"  # proves the path only
                    rss, _ = _settled_rss(s, min_s=0.2, steady_s=0.5) if quick else _settled_rss(s)
                    out[label] = {"elements": elements, "rss_before_mb": base / 1024,
                                  "rss_after_mb": rss / 1024,
                                  "bytes_per_element": (rss - base) * 1024 / elements,
                                  "load_s": load_s}
                    self.log(f"  {label}: {out[label]['bytes_per_element']:.1f} B/element")
                except Exception as e:  # noqa: BLE001
                    self.note(w, f"{label}: {e}")
                finally:
                    self.stop([s])
            os.unlink(path)
        self.extra[w] = {"memory": out, "n": n}

    # ---- W4 + W5: memory per key and recovery ------------------------------

    def w4_w5_memory_recovery(self):
        keys = self.v["mem_keys"]
        proto = "resp" if self.resp_ok else "http"
        cands = [self.cairn("w4-cairn-none", "none", resp=self.resp_ok),
                 self.cairn("w4-cairn-durable", "durable", resp=self.resp_ok)]
        if self.have["redis-server"]:
            cands.append(self.redis("w4-redis", aof=True, fsync="everysec"))
        else:
            self.note("W4", "redis-server not installed: not measured")
        if self.have["memcached"]:
            cands.append(self.memcached("w4-memcached"))
        else:
            self.note("W4", "memcached not installed: not measured")
        mem = {}
        for s in cands:
            try:
                s.start()
            except Exception as e:  # noqa: BLE001
                self.note("W4", f"{s.name} did not start: {e}")
                continue
            time.sleep(0.2)
            base = s.rss_kb()
            if s.kind == "cairn":
                port, p = (s.resp_port, "resp") if proto == "resp" else (s.http_port, "http")
            elif s.kind == "redis":
                port, p = s.resp_port, "resp"
            else:
                port, p = s.mc_port, "memcache"
            label = s.name.replace("w4-", "")
            r = self.preload(p, port, keys, "W4", label)
            # let background work (snapshots, AOF rewrites) finish: the same
            # rule for every server, RSS steady within 1% for 2 s (at most 20 s)
            rss, settle_s = _settled_rss(s)
            stored = _count_keys(s)
            mem[label] = {"keys": keys, "stored": stored, "rss_before_mb": base / 1024,
                          "rss_after_mb": rss / 1024, "peak_rss_mb": s.hwm_kb() / 1024,
                          "bytes_per_key": (rss - base) * 1024 / keys if r else None,
                          "load_rate": r["throughput"] if r else None,
                          "settle_s": settle_s,
                          "load_protocol": p}
            self.log(f"  memory {label}: {mem[label]['bytes_per_key'] or 0:.0f} B/key "
                     f"({stored} keys stored)")
            if s.kind == "redis":
                try:
                    procs.resp_command(s.resp_port, "SAVE", timeout=120)
                except OSError as e:
                    self.note("W5", f"redis SAVE failed: {e}")
            if s.kind == "cairn" and "durable" in s.name:
                self.extra.setdefault("W4", {})["cairn_durable_metrics"] = _scrape_metrics(
                    s.http_port, ("cairn_loop_lag_max_seconds",
                                  "cairn_snapshot_fork_max_seconds"))
            s.stop()
            mem[label]["stopped_by"] = "sigterm"
        self.extra["W4"] = dict(self.extra.get("W4", {}), memory=mem)
        if self.wanted("W5"):
            self.w5_recovery(cands, keys)

    def w5_recovery(self, loaded, keys):
        w = "W5"
        by = {s.name: s for s in loaded}
        sides = []
        cd = by.get("w4-cairn-durable")
        if cd and os.path.exists(cd.datadir):
            sides.append(("cairn durable", lambda: self.cairn("w5-cairn", "durable",
                                                              datadir=cd.datadir, resp=False)))
        rd = by.get("w4-redis")
        if rd and os.path.exists(os.path.join(rd.datadir, "dump.rdb")):
            sides.append(("redis AOF", lambda: self.redis("w5-redis-aof", aof=True,
                                                          fsync="everysec",
                                                          datadir=rd.datadir)))
            sides.append(("redis RDB", lambda: self.redis("w5-redis-rdb", aof=False,
                                                          datadir=rd.datadir)))
            # migration: the same RDB file imported by a fresh cairn node
            # (cairnd --restore: parse, then every key through its Raft log)
            rdb = os.path.join(rd.datadir, "dump.rdb")
            runs = iter(range(1, 1000))
            sides.append(("cairn --restore of redis' RDB",
                          lambda: self.cairn(f"w5-cairn-import-{next(runs)}", "durable",
                                             extra=["--restore", rdb], resp=False)))
        elif rd:
            self.note(w, "redis recovery not measured: no RDB file was written")
        if not sides:
            self.note(w, "not run: nothing was loaded")
            return
        for rnd in range(1, self.rounds + 1):
            for side, make in sides:
                s = make()
                row = {"workload": w, "test": f"restart with {keys} keys", "side": side,
                       "round": rnd}
                try:
                    s.start(timeout=300)
                    row.update(ok=True, ready_s=s.ready_seconds, stored=_count_keys(s),
                               peak_rss_mb=s.hwm_kb() / 1024, server_cpu_s=s.cpu_seconds())
                    self.log(f"  recovery {side} r{rnd}: {s.ready_seconds:.2f}s "
                             f"({row['stored']} keys)")
                except Exception as e:  # noqa: BLE001
                    row.update(ok=False, error=str(e)[:300])
                    self.log(f"  recovery {side}: FAILED {e}")
                self.results.append(row)
                self.stop([s])

    # ---- W6: overload ------------------------------------------------------

    def w6_overload(self):
        w = "W6"
        extra = ["--max-inflight", str(OVERLOAD_MAX_INFLIGHT)]
        servers = self.start([self.cairn("w6-cairn-durable", "durable", extra=extra,
                                         resp=False)], w)
        if not servers:
            return
        c = servers[0]
        log = os.path.join(self.out, "cairnctl_bench.log")
        cap = self.measure(w, "capacity (closed loop)", "cairn", c,
                           lambda: drivers.cairnctl_bench(
                               self.cairnctl, "http", c.http_port,
                               duration=self.v["capacity_s"], connections=CONNS, read_ratio=0,
                               keyspace=KEYSPACE, log_path=log), 1)
        if not cap["ok"] or cap["throughput"] <= 0:
            self.note(w, "capacity could not be measured; steps not run")
            self.stop(servers)
            return
        capacity = cap["throughput"]
        self.extra[w] = {"capacity": capacity, "max_inflight": OVERLOAD_MAX_INFLIGHT,
                         "pipeline": OVERLOAD_PIPELINE}
        for rnd in range(1, self.rounds + 1):
            for pct in self.v["overload_steps"]:
                rate = capacity * pct / 100
                self.measure(w, f"{pct}%", "cairn", c,
                             lambda rate=rate: drivers.cairnctl_bench(
                                 self.cairnctl, "http", c.http_port,
                                 duration=self.v["overload_s"], connections=CONNS,
                                 pipeline=OVERLOAD_PIPELINE, read_ratio=0, keyspace=KEYSPACE,
                                 rate=rate, log_path=log), rnd, offered_pct=pct,
                             offered_rate=rate)
        self.stop(servers)

    # ---- W7: 3-node cluster ------------------------------------------------

    def w7_cluster(self):
        w = "W7"
        if not self.have["wrk"]:
            self.note(w, "not run: wrk not installed")
            return
        cands = [self.cairn_cluster("w7-cairn")]
        if self.have["etcd"]:
            cands.append(self.etcd_cluster("w7-etcd"))
        else:
            self.note(w, "etcd not installed: etcd comparison not run")
        servers = self.start(cands, w)
        by = {s.kind: s for s in servers}
        self.extra[w] = {"nodes": CLUSTER_SIZE, "start_to_ready_s": {
            s.kind: s.ready_seconds for s in servers}}
        if "cairn" not in by:
            self.stop(servers)
            return
        env = {"CAIRN_KEYSPACE": str(self.v["http_keys"]), "CAIRN_THREADS": "2"}
        d = self.v["wrk_s"]

        def put(g, script, role, extra=None):
            """wrk PUT against the member that leads (or one that follows)
            when the run starts; notes a leader change during the run."""
            def fn():
                lead = g.leader_port()
                port = lead if role == "leader" else next(
                    p for p in g.http_ports if p != lead)
                res = drivers.wrk(f"http://127.0.0.1:{port}/", os.path.join(BENCH_DIR, script),
                                  d, CONNS, 2, dict(env, **(extra or {})))
                after = g.leader_port()
                res["target"] = f"{role} 127.0.0.1:{port}"
                if after != lead:
                    res["leader_changed"] = True
                    self.note(w, f"{g.kind}: the leader changed during a {role} run "
                                 f"(:{lead} -> :{after})")
                return res
            return fn

        c = by["cairn"]
        sides = [("cairn", c, put(c, "wrk_put.lua", "leader"))]
        if "etcd" in by:
            e = by["etcd"]
            sides.append(("etcd", e, put(e, "wrk_etcd.lua", "leader", {"ETCD_OP": "put"})))
        sides.append(("cairn via follower", c, put(c, "wrk_put.lua", "follower")))
        self.alternate(w, "PUT", sides)
        self.stop(servers)

    # ---- the run -----------------------------------------------------------

    def check_resp(self):
        s = self.cairn("resp-probe", "none")
        try:
            s.start()
            self.resp_ok = procs.resp_ready(s.resp_port)
            if self.resp_ok and self.have["redis-server"]:
                # a write and a read back, as the workloads do
                procs.resp_command(s.resp_port, "SET", "probe", "v")
                self.resp_ok = procs.resp_command(s.resp_port, "GET", "probe") == "$1"
        except Exception as e:  # noqa: BLE001
            self.log(f"RESP probe failed: {e}")
            self.resp_ok = False
        finally:
            self.stop([s])
        self.log(f"cairn RESP port answers: {self.resp_ok}")

    def run(self):
        for b in (self.cairnd, self.cairnctl):
            if not os.access(b, os.X_OK):
                raise SystemExit(f"suite: {b} missing; build first (scripts/build.sh build)")
        self.machine = report.machine_info(self.tmp)
        if self.args.label:
            self.machine["git"] = self.args.label
        self.log(f"variant {self.args.variant}, {self.rounds} round(s), output {self.out}")
        self.check_resp()
        steps = [("W1", self.w1_resp_memory), ("W2", self.w2_resp_durable),
                 ("W3", self.w3_http), ("W4", self.w4_w5_memory_recovery),
                 ("W6", self.w6_overload), ("W8", self.w8_datatype_memory),
                 ("W9", self.w9_datatype_commands), ("W10", self.w10_datatype_durable),
                 ("W11", self.w11_blocking_wakeup), ("W12", self.w12_messaging),
                 ("W13", self.w13_messaging_durable)]
        if self.v["cluster"] or self.args.only:
            steps.append(("W7", self.w7_cluster))
        for w, fn in steps:
            if not self.wanted(w) and not (w == "W4" and self.wanted("W5")):
                continue
            self.log(f"== {w}")
            try:
                fn()
            except Exception as e:  # noqa: BLE001
                self.note(w, f"aborted: {e}")
                traceback.print_exc()
            finally:
                procs.stop_all()
        self.elapsed = time.monotonic() - self.t_start
        with open(os.path.join(self.out, "results.json"), "w") as f:
            json.dump({"variant": self.args.variant, "rounds": self.rounds,
                       "machine": self.machine, "results": self.results, "notes": self.notes,
                       "extra": self.extra, "elapsed_s": self.elapsed,
                       "resp_ok": self.resp_ok, "pids": procs.started_pids}, f, indent=1)
        report.write(self)
        shutil.rmtree(self.tmp, ignore_errors=True)


def _user_exists(name):
    import pwd
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _count_keys(s):
    try:
        if s.kind == "cairn":
            import urllib.request
            with urllib.request.urlopen(f"http://127.0.0.1:{s.http_port}/v1/status",
                                        timeout=10) as r:
                return json.loads(r.read()).get("keys")
        if s.kind == "redis":
            line = procs.resp_command(s.resp_port, "DBSIZE", timeout=10)
            return int(line[1:]) if line.startswith(":") else None
        if s.kind == "memcached":
            return procs.memcached_items(s.mc_port)
    except Exception:  # noqa: BLE001
        return None
    return None


def _datatype_sets(n):
    """(name, elements, generator of commands) for W8, as issue 12 names
    them: n small hashes of 10 fields; n/10 small sorted sets of 10 members
    (whole-number scores); one hash, one list, one set and one sorted set
    of n elements (fields and members of 8-15 bytes)."""
    batch = 100

    def small_hashes():
        for i in range(n):
            yield ["HSET", f"h:{i:08d}"] + sum(([f"f{j}", f"value-{j:04d}"] for j in range(10)), [])

    def small_zsets():  # leaderboards, rate-limit windows: whole-number scores
        for i in range(n // 10):
            yield ["ZADD", f"z:{i:08d}"] + sum(([str(1700000000 + 37 * j), f"member-{j:02d}"]
                                                 for j in range(10)), [])

    def big(cmd, key, item):
        def gen():
            for start in range(0, n, batch):
                yield [cmd, key] + sum((item(i) for i in range(start, min(n, start + batch))), [])
        return gen

    return [
        ("small hashes", 10 * n, small_hashes),
        ("small sorted sets", n, small_zsets),
        ("one hash", n, big("HSET", "bighash", lambda i: [f"field:{i:08d}", f"v{i % 1000}"])),
        ("one list", n, big("RPUSH", "biglist", lambda i: [f"item:{i:08d}"])),
        ("one set", n, big("SADD", "bigset", lambda i: [f"member:{i:08d}"])),
        ("one sorted set", n, big("ZADD", "bigzset", lambda i: [str(i % 100000), f"m:{i:08d}"])),
    ]


def _settled_rss(s, min_s=1.0, steady_s=2.0, max_s=20.0, step=0.25):
    """RSS (KiB) once it has stayed within 1% for steady_s; at most max_s."""
    t0 = time.monotonic()
    time.sleep(min_s)
    hist = []
    while True:
        now = time.monotonic()
        hist.append((now, s.rss_kb()))
        window = [v for t, v in hist if t >= now - steady_s]
        covered = now - hist[0][0] >= steady_s
        if covered and max(window) - min(window) <= 0.01 * max(window):
            return hist[-1][1], now - t0
        if now - t0 >= max_s:
            return hist[-1][1], now - t0
        time.sleep(step)


EVALSHA_SCRIPT = ("local v = tonumber(redis.call('get', KEYS[1]) or '0') "
                  "return redis.call('incrby', KEYS[1], ARGV[1]) + v * 0")


def _script_load(port, script):
    """SCRIPT LOAD through redis-cli: the script's SHA1."""
    out = subprocess.run(["redis-cli", "-p", str(port), "SCRIPT", "LOAD", script],
                         capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    if len(out) != 40:
        raise drivers.DriverError(f"SCRIPT LOAD answered {out!r}")
    return out


def _numsub(port, channel):
    """PUBSUB NUMSUB channel's count, over a raw socket."""
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sk:
        sk.sendall(procs.resp_encode("PUBSUB", "NUMSUB", channel))
        data = b""
        while data.count(b"\r\n") < 4:
            chunk = sk.recv(65536)
            if not chunk:
                break
            data += chunk
    lines = data.split(b"\r\n")
    return int(lines[3][1:]) if len(lines) > 3 and lines[3].startswith(b":") else -1


def _scrape_metrics(port, names):
    import urllib.request
    out = {}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] in names:
                    out[parts[0]] = float(parts[1])
    except Exception:  # noqa: BLE001
        pass
    return out


def render(args):
    """Rewrite the report of an earlier run from its results.json."""
    out = os.path.abspath(args.render)
    with open(os.path.join(out, "results.json")) as f:
        d = json.load(f)

    class Saved:
        pass

    s = Saved()
    args.variant = d["variant"]
    s.args, s.out, s.rounds = args, out, d["rounds"]
    s.machine, s.results, s.notes = d["machine"], d["results"], d["notes"]
    s.extra, s.elapsed = d["extra"], d["elapsed_s"]
    s.loadavg = [r.get("loadavg") for r in d["results"] if r.get("loadavg") is not None]
    report.write(s)
    print(s.report_path)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variant", nargs="?", default="quick", choices=sorted(VARIANTS))
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build"))
    ap.add_argument("--report", help="Markdown report (default: BENCHMARKS.md in the repo "
                    "for quick/full, OUT/BENCHMARKS.md for smoke)")
    ap.add_argument("--plots-dir", help="PNG plots (default: bench/plots for quick/full, "
                    "OUT/plots for smoke)")
    ap.add_argument("--out", help="raw results and logs (default bench/results/VARIANT-TIME)")
    ap.add_argument("--only", help="comma-separated workloads: W1,W2,...,W13 "
                    "(W7, the 3-node clusters, is left out of smoke unless named here)")
    ap.add_argument("--rounds", type=int, help="override the variant's A/B rounds")
    ap.add_argument("--render", metavar="OUT",
                    help="only rewrite the report and plots from OUT/results.json of an "
                    "earlier run")
    ap.add_argument("--label", help="what the report calls the cairn build (default: git "
                    "describe of this checkout)")
    args = ap.parse_args()
    if args.render:
        render(args)
        return
    suite = Suite(args)

    def on_signal(signum, frame):
        procs.stop_all()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        suite.run()
    finally:
        procs.stop_all()
    print(suite.report_path)


if __name__ == "__main__":
    main()
