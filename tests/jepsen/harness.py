"""A cairn cluster behind the fault-injecting proxy, for the Jepsen-style tests.

Nodes are the integration suite's `Cairnd` processes (tests/integration/
conftest.py: free loopback ports, own data dir, stderr captured, stopped by
pid). Each node's --initial-cluster names the proxy's port for every peer,
so all Raft traffic crosses tests/jepsen/netproxy.py, which runs as a child
process controlled over a pipe. So does every other path: each node
advertises (--advertise-http) the proxy's port in front of its HTTP port,
which other nodes forward client requests to, and the test's clients
connect to the proxy's HTTP and RESP ports, never to a node directly. Only
the harness's own control requests (status, membership, final reads) go
straight to the nodes.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(REPO / "tests" / "integration") not in sys.path:
    sys.path.insert(0, str(REPO / "tests" / "integration"))

# the integration harness (tests/integration/conftest.py), reused, not edited
from conftest import Cairnd, StartupFailed, free_ports  # noqa: E402

# Small snapshot thresholds so that restarted / re-added nodes catch up
# through snapshots too; a short write timeout so that a write without a
# quorum fails within a few seconds.
COMMON_ARGS = ["--snapshot-threshold", "400", "--snapshot-trailing", "100", "--write-timeout", "3",
               "--read-wait-timeout", "3"]


class ProxyController:
    """Runs netproxy.py as a child process and talks to it over its stdin/out."""

    def __init__(self, log_path):
        self.log_path = Path(log_path)
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, str(HERE / "netproxy.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.log_file, start_new_session=True)
        self.lock = threading.Lock()

    def call(self, **req):
        with self.lock:
            if self.proc.poll() is not None:
                raise RuntimeError(f"proxy exited with {self.proc.returncode}; see {self.log_path}")
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"proxy did not answer {req}; see {self.log_path}")
        rep = json.loads(line)
        if not rep.get("ok"):
            raise RuntimeError(f"proxy refused {req}: {rep}")
        return rep

    def close(self):
        if self.proc.poll() is None:
            try:
                self.call(cmd="quit")
            except (RuntimeError, OSError, ValueError):
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        self.log_file.close()


class Cluster:
    """n cairnd nodes (ids 1..n) whose peer links all go through the proxy."""

    def __init__(self, workdir, n=3, node_factory=None, extra_args=(), log=print):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.n = n
        self.proxy = ProxyController(self.workdir / "proxy.log")
        factory = node_factory or (lambda node_id: Cairnd(self.workdir / f"node{node_id}", node_id=node_id))
        self.nodes = {}
        for i in range(1, n + 1):
            self.nodes[i] = factory(node_id=i)
        self.proxy_ports = {}       # raft
        self.http_proxy_ports = {}  # clients and forwarding nodes
        self.resp_proxy_ports = {}  # clients
        for i in range(1, n + 1):
            x = self.nodes[i]
            self.proxy_ports[i] = self._listen("raft", i, x.peer_port)
            self.http_proxy_ports[i] = self._listen("http", i, x.http_port)
            self.resp_proxy_ports[i] = self._listen("plain", i, x.resp_port)
        self.members = ",".join(f"{i}=127.0.0.1:{p}" for i, p in self.proxy_ports.items())
        self.base_args = {}
        for i, x in self.nodes.items():
            self.base_args[i] = (["--initial-cluster", self.members,
                                  "--advertise-http", f"127.0.0.1:{self.http_proxy_ports[i]}"]
                                 + COMMON_ARGS + list(extra_args))
            x.extra_args = list(self.base_args[i])
        self.paused = set()
        self.sessions = {}
        self.unexpected_exits = []  # (node, exit status, log) of nodes found dead
        self.port_taken_runs = set()  # (node, run): exited because another process took a port
        self.down = set()           # nodes stopped on purpose (kill9), not yet restarted
        self.stop_problems = []

    def _listen(self, kind, i, target):
        for attempt in range(5):
            try:
                return self.proxy.call(cmd="listen", kind=kind, dst=i, port=free_ports(1)[0],
                                       target=target)["port"]
            except RuntimeError:
                if attempt == 4:  # the port was taken meanwhile: another one
                    raise
        raise AssertionError("unreachable")

    # -- lookups ------------------------------------------------------------------
    def client_port(self, i, proto):
        """The port a test client uses to reach node i (through the proxy)."""
        return self.http_proxy_ports[i] if proto == "http" else self.resp_proxy_ports[i]

    def node_ids(self):
        return sorted(self.nodes)

    def node(self, i):
        return self.nodes[i]

    def peer_addr(self, i):
        """The address the cluster knows node i by (its proxy port)."""
        return f"127.0.0.1:{self.proxy_ports[i]}"

    def _sess(self, i):
        s = self.sessions.get(i)
        if s is None:
            s = self.sessions[i] = requests.Session()
        return s

    def http(self, i, method, path, timeout=5.0, **kw):
        x = self.nodes[i]
        return self._sess(i).request(method, x.url(path), timeout=timeout, **kw)

    def status(self, i, timeout=2.0):
        """/v1/status of node i, or None when it does not answer."""
        if not self.nodes[i].running or i in self.paused:
            return None
        try:
            r = self.http(i, "GET", "/v1/status", timeout=timeout)
            return r.json() if r.status_code == 200 else None
        except (requests.RequestException, ValueError):
            self.sessions.pop(i, None)
            return None

    def leader(self, timeout=10.0, exclude=()):
        """Id of the current leader (a node that says it leads, in the
        highest term among those answering; nodes in `exclude` are not
        asked), waiting up to timeout; None."""
        deadline = time.monotonic() + timeout
        while True:
            best = None
            for i in self.node_ids():
                if i in exclude:
                    continue
                st = self.status(i, timeout=1.5)
                if st and st.get("role") == "leader":
                    if best is None or st.get("term", 0) > best[1]:
                        best = (i, st.get("term", 0))
            if best:
                return best[0]
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.1)

    def members_view(self, i, timeout=3.0):
        try:
            r = self.http(i, "GET", "/v1/cluster", timeout=timeout)
            if r.status_code == 200:
                return r.json()
        except (requests.RequestException, ValueError):
            self.sessions.pop(i, None)
        return None

    # -- lifecycle --------------------------------------------------------------------
    def _retarget(self, i):
        x = self.nodes[i]
        for kind, port in (("raft", x.peer_port), ("http", x.http_port), ("plain", x.resp_port)):
            self.proxy.call(cmd="retarget", kind=kind, dst=i, target=port)

    def spawn(self, i, extra_args=None):
        x = self.nodes[i]
        self.down.discard(i)
        if extra_args is not None:
            x.extra_args = list(extra_args)
        x.spawn()
        self._retarget(i)

    def _respawn_if_port_taken(self, i):
        """A node that exited because another process took one of its
        ports (other test suites share the machine) gets new ports."""
        x = self.nodes[i]
        if x.proc is None or x.proc.poll() is None:
            return False
        if "in use" not in x.stderr_text().lower():
            return False
        x.wait_exit(1)
        self.port_taken_runs.add((i, x.runs))  # not cairnd's fault: not a failure
        x.http_port, x.resp_port, x.peer_port = free_ports(3)
        self.log(f"node {i}: port taken, moving to http {x.http_port} peer {x.peer_port}")
        self.sessions.pop(i, None)
        self.spawn(i)
        return True

    def wait_ready(self, ids, timeout=40.0):
        deadline = time.monotonic() + timeout
        for i in ids:
            for attempt in range(3):
                try:
                    self.nodes[i].wait_ready(max(1.0, deadline - time.monotonic()))
                    break
                except StartupFailed:
                    if attempt < 2 and self._respawn_if_port_taken(i):
                        continue
                    raise

    def start(self, timeout=40.0):
        for i in self.node_ids():
            self.spawn(i)
        self.wait_ready(self.node_ids(), timeout)
        if self.leader(15) is None:
            raise AssertionError("no leader after start")

    def kill9(self, i):
        x = self.nodes[i]
        self.down.add(i)
        if i in self.paused:
            x.send_signal(signal.SIGCONT)
            self.paused.discard(i)
        if x.running:
            x.kill9()
        self.sessions.pop(i, None)

    def restart(self, i, wait=True, timeout=40.0):
        self.spawn(i)
        if wait:
            self.wait_ready([i], timeout)

    def pause(self, i):
        self.nodes[i].send_signal(signal.SIGSTOP)
        self.paused.add(i)

    def resume(self, i):
        if i in self.paused:
            self.nodes[i].send_signal(signal.SIGCONT)
            self.paused.discard(i)

    def wipe(self, i):
        x = self.nodes[i]
        assert not x.running
        shutil.rmtree(x.data_dir, ignore_errors=True)

    def heal_all(self):
        """Undo every fault: network healed, paused nodes resumed, dead
        nodes restarted (not waited for)."""
        self.proxy.call(cmd="heal")
        for i in list(self.paused):
            self.resume(i)
        for i in self.node_ids():
            x = self.nodes[i]
            if not x.running:
                rc = x.proc.poll() if x.proc is not None else None
                self.log(f"heal: node {i} is not running (exit status {rc}); restarting it")
                if i not in self.down:
                    self.unexpected_exits.append((i, rc, str(x.stderr_path)))
                if x.proc is not None:
                    x.wait_exit(1)
                self.spawn(i, self.base_args[i])

    def healthy(self):
        """Every node ready, one leader everyone agrees on, every node a voter."""
        leaders = set()
        for i in self.node_ids():
            if not self.nodes[i].running or i in self.paused:
                return False
            try:
                if self.http(i, "GET", "/readyz", timeout=2).status_code != 200:
                    return False
            except requests.RequestException:
                self.sessions.pop(i, None)
                return False
            st = self.status(i)
            if not st:
                return False
            leaders.add(st.get("leader"))
        if len(leaders) != 1 or None in leaders:
            return False
        view = self.members_view(next(iter(leaders)))
        if not view:
            return False
        voters = sorted(m["id"] for m in view["members"] if m.get("voter"))
        return voters == self.node_ids()

    def crashed(self):
        """Nodes that exited although nobody stopped them: [(id, status)]."""
        out = []
        for i, x in self.nodes.items():
            if x.proc is not None and i not in self.down:
                rc = x.proc.poll()
                if rc is not None:
                    out.append((i, rc))
        return out

    def wait_healthy(self, timeout=60.0):
        """True once healthy(); False after timeout, or at once when a node
        has crashed (heal_all restarts it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.crashed():
                return False
            if self.healthy():
                return True
            time.sleep(0.25)
        return False

    def stop_all(self):
        """Stop every node this cluster started (by pid) and the proxy."""
        for i in list(self.paused):
            self.resume(i)
        for i, x in self.nodes.items():
            self.down.add(i)
            if x.running:
                try:
                    x.stop(timeout=10)
                except AssertionError as e:
                    self.stop_problems.append(f"node {i}: {str(e).splitlines()[0]}")
                    self.log(f"stop: {e}")
        for s in self.sessions.values():
            s.close()
        self.sessions.clear()
        self.proxy.close()

    def log_paths(self):
        out = []
        for i, x in self.nodes.items():
            for p in x.stderr_paths:
                out.append((i, Path(p)))
        return out
