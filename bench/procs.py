"""Servers under test: start on loopback, wait until ready, measure from
/proc, stop by pid.

Every process the suite starts goes through Server, which records its pid;
stop_all() (run at exit and on SIGINT/SIGTERM) stops exactly those pids:
SIGTERM, then a second SIGTERM (cairnd exits at once on the second), then
SIGKILL, each after a bounded wait. Nothing is ever stopped by name."""
import os
import signal
import socket
import subprocess
import time
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from ports import free_port  # noqa: E402,F401  (outside the ephemeral range)

CLK_TCK = os.sysconf("SC_CLK_TCK")
_started = []       # running servers, for stop_all()
started_pids = []   # every pid ever started, for the report and the smoke test


def _children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def proc_cpu_seconds(pid):
    """utime + stime of one process, in seconds (fields 14 and 15)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return 0.0
    fields = data[data.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Server:
    """One server process (plus its children, for nginx's workers)."""

    def __init__(self, name, argv, logdir, ready, env=None, cwd=None):
        self.name = name
        self.argv = argv
        self.ready = ready  # callable(server) -> bool
        self.log_path = os.path.join(logdir, f"{name}.log")
        self.env = env
        self.cwd = cwd
        self.proc = None
        self.pid = None
        self.ready_seconds = None

    def start(self, timeout=60):
        self.spawn()
        return self.wait_ready(timeout)

    def spawn(self):
        """Start the process without waiting for it to be ready (members of
        a cluster are only ready once a quorum of them runs)."""
        log = open(self.log_path, "ab")
        self._t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.env, cwd=self.cwd,
                                     start_new_session=True)
        log.close()
        self.pid = self.proc.pid
        _started.append(self)
        started_pids.append(self.pid)
        return self

    def wait_ready(self, timeout=60):
        """Wait (bounded) until ready; stops the process and raises if not."""
        t0 = self._t0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} while "
                                   f"starting; see {self.log_path}: {self.log_tail()}")
            try:
                if self.ready(self):
                    self.ready_seconds = time.monotonic() - t0
                    return self
            except OSError:
                pass
            time.sleep(0.005)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout}s; see {self.log_path}")

    def log_tail(self, n=3):
        try:
            with open(self.log_path, errors="replace") as f:
                return " | ".join(f.read().strip().splitlines()[-n:])
        except OSError:
            return ""

    def pids(self):
        if not self.pid:
            return []
        return [self.pid] + _children(self.pid)

    def cpu_seconds(self):
        return sum(proc_cpu_seconds(p) for p in self.pids())

    def rss_kb(self):
        return sum(proc_status_kb(p, "VmRSS") for p in self.pids())

    def hwm_kb(self):
        return sum(proc_status_kb(p, "VmHWM") for p in self.pids())

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, graceful_timeout=15):
        """SIGTERM, a second SIGTERM, then SIGKILL; returns how it ended."""
        if not self.alive():
            self._forget()
            return "not running"
        how = "sigterm"
        for sig, wait in ((signal.SIGTERM, graceful_timeout), (signal.SIGTERM, 5),
                          (signal.SIGKILL, 10)):
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                how = "second sigterm" if how == "sigterm" else "sigkill"
        self._forget()
        return how

    def _forget(self):
        if self in _started:
            _started.remove(self)


class Group:
    """Several servers measured as one (a cluster): CPU seconds and peak RSS
    are summed over the members; start() spawns every member before waiting
    for any (a member is ready only once a quorum runs); stop() stops each
    member by pid. Quacks like Server for the suite's start/measure/stop."""

    def __init__(self, name, members, kind):
        self.name = name
        self.members = list(members)
        self.kind = kind
        self.ready_seconds = None

    def start(self, timeout=60):
        t0 = time.monotonic()
        try:
            for m in self.members:
                m.spawn()
            deadline = t0 + timeout
            for m in self.members:
                m.wait_ready(max(1.0, deadline - time.monotonic()))
        except Exception:
            self.stop(graceful_timeout=5)
            raise
        self.ready_seconds = time.monotonic() - t0
        return self

    def pids(self):
        return [p for m in self.members for p in m.pids()]

    def cpu_seconds(self):
        return sum(m.cpu_seconds() for m in self.members)

    def rss_kb(self):
        return sum(m.rss_kb() for m in self.members)

    def hwm_kb(self):
        return sum(m.hwm_kb() for m in self.members)

    def alive(self):
        return all(m.alive() for m in self.members)

    def log_tail(self, n=3):
        dead = [m for m in self.members if not m.alive()] or self.members
        return " || ".join(f"{m.name}: {m.log_tail(n)}" for m in dead)

    def stop(self, graceful_timeout=15):
        """Stops every member; returns the worst way one of them ended."""
        order = ("not running", "sigterm", "second sigterm", "sigkill")
        worst = "not running"
        for m in self.members:
            how = m.stop(graceful_timeout)
            if order.index(how) > order.index(worst):
                worst = how
        return worst


def stop_all():
    for s in list(_started):
        s.stop(graceful_timeout=5)


# ---- readiness probes ------------------------------------------------------


def http_ok(url, timeout=1.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return 200 <= r.status < 300
    except Exception:
        return False


def resp_encode(*args):
    """A command as a RESP array of bulk strings (str arguments as UTF-8)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def resp_command(port, *args, timeout=2.0):
    """One RESP command; returns the raw first reply line (without CRLF)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(resp_encode(*args))
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0].decode(errors="replace")


def resp_ready(port):
    try:
        return resp_command(port, "PING", timeout=0.5) == "+PONG"
    except OSError:
        return False


def memcached_ready(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"version\r\n")
            return s.recv(100).startswith(b"VERSION")
    except OSError:
        return False


def memcached_items(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"stats\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    for line in data.decode().splitlines():
        if line.startswith("STAT curr_items "):
            return int(line.split()[2])
    return None


# ---- cluster leaders -------------------------------------------------------


def http_json(url, body=None, timeout=1.0):
    """GET (or POST body) url on loopback and parse the JSON answer."""
    import json
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def _agreed_leader(ask, ports, timeout, what):
    """Poll every member (bounded) until all answer and name the same
    leader; returns the leader's port. ask(port) -> (own id, leader id)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            seen = {p: ask(p) for p in ports}
            leaders = {lead for _, lead in seen.values()}
            if len(leaders) == 1 and None not in leaders:
                lead = leaders.pop()
                for p, (own, _) in seen.items():
                    if own == lead:
                        return p
            last = seen
        except Exception as e:  # noqa: BLE001 - keep polling until the deadline
            last = e
        time.sleep(0.05)
    raise RuntimeError(f"{what}: members did not agree on a leader within {timeout}s ({last})")


def cairn_leader(http_ports, timeout=15):
    """The HTTP port of the cairn cluster's leader, from GET /v1/status."""
    def ask(p):
        st = http_json(f"http://127.0.0.1:{p}/v1/status")
        return st.get("id"), (st.get("leader") or None)
    return _agreed_leader(ask, http_ports, timeout, "cairn")


def etcd_leader(client_ports, timeout=15):
    """The client port of the etcd cluster's leader, from the JSON gateway's
    POST /v3/maintenance/status (header.member_id vs leader)."""
    def ask(p):
        st = http_json(f"http://127.0.0.1:{p}/v3/maintenance/status", body=b"{}")
        return st.get("header", {}).get("member_id"), (st.get("leader") or None)
    return _agreed_leader(ask, client_ports, timeout, "etcd")
