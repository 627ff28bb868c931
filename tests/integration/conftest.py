"""Integration-test harness for cairnd.

Starts real `cairnd` processes on free loopback ports with a fresh data dir
under pytest's tmp_path, waits for GET /readyz == 200, captures stderr to a
file, and stops them by pid (SIGTERM, bounded wait, SIGKILL as a last resort).
Only processes started here are ever signalled.

Binary: $CAIRN_BUILD_DIR/cairnd, default <repo>/build/cairnd
(use CAIRN_BUILD_DIR=<repo>/build-asan for the sanitizer build).

Every wait in this file and in the tests is bounded; on top of that an
autouse watchdog (SIGALRM) fails a test that runs longer than its budget
(default 90 s, `@pytest.mark.timeout_s(N)` to change it).

Only the standard library, pytest, requests and redis are used.
"""
import base64
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

from ports import free_ports  # noqa: F401  (tests import it from here)

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
BUILD_DIR = Path(os.environ.get("CAIRN_BUILD_DIR") or (REPO / "build"))
CAIRND = BUILD_DIR / "cairnd"

DEFAULT_READY_TIMEOUT = float(os.environ.get("CAIRN_READY_TIMEOUT", "15"))
DEFAULT_TEST_TIMEOUT = float(os.environ.get("CAIRN_TEST_TIMEOUT", "90"))

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "WARNING: ThreadSanitizer")

# Every process this harness started and that may still run: pid -> Popen.
_LIVE = {}
_LIVE_LOCK = threading.Lock()


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

def build_shim(source, out, libs=("-ldl",)):
    """Build an LD_PRELOAD library from tests/fault (plain cc, no
    sanitizers: it is preloaded into sanitized builds too)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler is needed to build the fault shims (scripts/deps.sh installs one)"
    r = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(out),
                        str(REPO / "tests" / "fault" / source), *libs],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    assert r.returncode == 0, r.stdout.decode(errors="replace")
    return out


def qkey(key, keep_slash=False):
    """Percent-encode a key (bytes or str) for a request path."""
    if isinstance(key, str):
        key = key.encode()
    return urllib.parse.quote(key, safe="/" if keep_slash else "")


def kpath(key, keep_slash=False):
    return "/v1/key/" + qkey(key, keep_slash)


def b64url_decode(s):
    assert isinstance(s, str), s
    assert "=" not in s, f"base64url must be unpadded: {s!r}"
    assert re.fullmatch(r"[A-Za-z0-9_-]*", s), f"not base64url: {s!r}"
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64url_encode(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Poll pred() until truthy; return its value, or raise AssertionError."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last={last!r})")
        time.sleep(interval)


def dir_digest(path):
    """Hash of every file name, size and content under path (for 'untouched' checks)."""
    h = hashlib.sha256()
    path = Path(path)
    if not path.exists():
        return "absent"
    for p in sorted(path.rglob("*")):
        rel = str(p.relative_to(path)).encode()
        if p.is_file():
            h.update(b"F" + rel + b"\0")
            h.update(p.read_bytes())
        elif p.is_dir():
            h.update(b"D" + rel + b"\0")
    return h.hexdigest()


def repo_script(name, timeout, *args, env=None):
    """Run one of scripts/ (package.sh, image.sh) from the checkout; return
    the last line it printed on stdout (what it built), failing with the
    tail of its stderr."""
    r = subprocess.run([f"scripts/{name}", *args], cwd=REPO, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout,
                       env=None if env is None else {**os.environ, **env})
    assert r.returncode == 0, r.stderr[-4000:]
    return r.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def debian_package():
    """The Debian package of this checkout, built once (scripts/package.sh)
    for the package's tests and the image's. Without the unit tests in the
    build (DEB_BUILD_OPTIONS=nocheck): scripts/test.sh runs them on the
    same Release configuration already."""
    path = REPO / repo_script("package.sh", 480, env={"DEB_BUILD_OPTIONS": "nocheck"})
    assert path.is_file(), path
    return path


def dir_listing(path):
    path = Path(path)
    if not path.exists():
        return "<absent>"
    return "\n".join(f"{p.relative_to(path)} {p.stat().st_size if p.is_file() else '/'}"
                     for p in sorted(path.rglob("*")))


def raft_dir(data_dir):
    """The directory holding the libraft files (<data-dir>/raft normally)."""
    data_dir = Path(data_dir)
    cand = data_dir / "raft"
    if cand.is_dir():
        return cand
    for p in sorted(data_dir.rglob("*")):
        if p.is_file() and (p.name.startswith("open-") or p.name.startswith("metadata")
                            or re.fullmatch(r"\d{16}-\d{16}", p.name)):
            return p.parent
    raise AssertionError(f"no raft directory under {data_dir}:\n{dir_listing(data_dir)}")


def parse_logfmt(line):
    """Parse one logfmt line into a dict (values unquoted)."""
    out = {}
    for m in re.finditer(r'([A-Za-z0-9_.\-]+)=("(?:[^"\\]|\\.)*"|\S*)', line):
        v = m.group(2)
        if v.startswith('"'):
            v = v[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out[m.group(1)] = v
    return out


# --------------------------------------------------------------------------
# raw HTTP/1.1 client (for keep-alive, pipelining, framing and limits tests)
# --------------------------------------------------------------------------

class ConnectionClosed(Exception):
    pass


class Resp:
    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) as received
        self.body = body

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return f"<Resp {self.status} {self.reason} headers={self.headers} body={self.body[:200]!r}>"


def build_request(method, target, headers=None, body=None, host=True, version="HTTP/1.1"):
    """Serialise a request. headers: dict or list of pairs. Content-Length is
    added for a body unless a Content-Length / Transfer-Encoding is given."""
    hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {k.lower() for k, _ in hdrs}
    if host and "host" not in names:
        hdrs.insert(0, ("Host", "127.0.0.1"))
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        hdrs.append(("Content-Length", str(len(body))))
    if isinstance(target, bytes):
        target = target.decode("latin-1")
    head = f"{method} {target} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs) + "\r\n"
    return head.encode("latin-1") + (body or b"")


class RawHttp:
    """A single TCP connection speaking HTTP/1.1 by hand."""

    def __init__(self, port, timeout=5.0, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.timeout = timeout
        self.eof = False

    # -- low level ------------------------------------------------------
    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        if self.eof:
            raise ConnectionClosed("connection closed by server")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out reading from server")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(262144)
        except socket.timeout:
            raise TimeoutError("timed out reading from server") from None
        except (ConnectionResetError, BrokenPipeError) as e:
            self.eof = True
            raise ConnectionClosed(f"connection reset: {e}") from None
        if not chunk:
            self.eof = True
            raise ConnectionClosed("connection closed by server")
        self.buf += chunk

    def _read_until(self, sep, deadline, limit=1 << 20):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out, self.buf = self.buf[:i + len(sep)], self.buf[i + len(sep):]
                return out
            if len(self.buf) > limit:
                raise AssertionError(f"no {sep!r} within {limit} bytes")
            self._fill(deadline)

    def _read_exact(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    # -- responses ----------------------------------------------------------
    def read_response(self, method="GET", timeout=None):
        """Read one response. 1xx responses are returned like any other."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        head = self._read_until(b"\r\n\r\n", deadline)
        lines = head[:-4].split(b"\r\n")
        m = re.match(rb"(HTTP/1\.[01]) (\d{3})(?: (.*))?$", lines[0])
        assert m, f"bad status line {lines[0]!r}"
        version, status, reason = m.group(1).decode(), int(m.group(2)), (m.group(3) or b"").decode("latin-1")
        headers = []
        for ln in lines[1:]:
            k, sep, v = ln.partition(b":")
            assert sep and k and k == k.strip(), f"bad response header line {ln!r}"
            headers.append((k.decode("latin-1"), v.strip().decode("latin-1")))
        r = Resp(version, status, reason, headers, b"")
        if method == "HEAD" or 100 <= status < 200 or status in (204, 304):
            return r
        te = (r.header("Transfer-Encoding") or "").lower()
        cl = r.header("Content-Length")
        if "chunked" in te:
            body = b""
            while True:
                size_line = self._read_until(b"\r\n", deadline)
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self._read_until(b"\r\n", deadline) != b"\r\n":
                        pass
                    break
                body += self._read_exact(size, deadline)
                assert self._read_exact(2, deadline) == b"\r\n"
            r.body = body
        elif cl is not None:
            r.body = self._read_exact(int(cl), deadline)
        else:
            # delimited by close
            try:
                while True:
                    self._fill(deadline)
            except ConnectionClosed:
                pass
            r.body, self.buf = self.buf, b""
        return r

    def request(self, method, target, headers=None, body=None, timeout=None):
        self.send(build_request(method, target, headers, body))
        return self.read_response(method, timeout)

    def wait_closed(self, timeout):
        """Read until the server closes (returns (True, bytes_received)) or the
        timeout passes (returns (False, bytes_received))."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._fill(deadline)
        except ConnectionClosed:
            data, self.buf = self.buf, b""
            return True, data
        except TimeoutError:
            data, self.buf = self.buf, b""
            return False, data

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def parse_responses(data):
    """Parse complete responses out of raw bytes (all GET-like framing)."""
    out = []

    class _Buf(RawHttp):
        def __init__(self, b):
            self.buf = b
            self.eof = True
            self.timeout = 1

    rb = _Buf(data)
    while rb.buf:
        out.append(rb.read_response())
    return out


# --------------------------------------------------------------------------
# the server process
# --------------------------------------------------------------------------

class StartupFailed(AssertionError):
    pass


class Cairnd:
    """One cairnd process (restartable) with its own ports and data dir."""

    def __init__(self, workdir, node_id=1, persistence="durable", data_dir=None, extra_args=(),
                 env=None, binary=None, ready_timeout=None, pass_id=True):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.node_id = node_id
        self.persistence = persistence
        self.data_dir = Path(data_dir) if data_dir is not None else self.workdir / "data"
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.binary = Path(binary) if binary else CAIRND
        self.ready_timeout = ready_timeout or DEFAULT_READY_TIMEOUT
        self.pass_id = pass_id
        self.http_port, self.resp_port, self.peer_port = free_ports(3)
        self.proc = None
        self.runs = 0
        self.stderr_path = None
        self.stderr_paths = []
        self.returncodes = []
        self.refusal_runs = set()
        self._session = None

    # -- command line -------------------------------------------------------
    def argv(self, extra=None):
        a = [str(self.binary)]
        if self.pass_id:
            a += ["--id", str(self.node_id)]
        a += ["--data-dir", str(self.data_dir),
              "--listen-http", f"127.0.0.1:{self.http_port}",
              "--listen-resp", f"127.0.0.1:{self.resp_port}",
              "--listen-peer", f"127.0.0.1:{self.peer_port}"]
        if self.persistence is not None:
            a += ["--persistence", self.persistence]
        a += self.extra_args
        a += list(extra or [])
        return a

    def url(self, path="/"):
        if isinstance(path, bytes):
            path = path.decode("latin-1")
        return f"http://127.0.0.1:{self.http_port}{path}"

    # -- lifecycle ----------------------------------------------------------
    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def spawn(self, extra=None, argv=None):
        """Start the process without waiting for readiness."""
        assert not self.running, "already running"
        if not self.binary.exists():
            pytest.fail(f"cairnd binary not found at {self.binary} "
                        f"(build it, or set CAIRN_BUILD_DIR)")
        self.runs += 1
        self.stderr_path = self.workdir / f"stderr.{self.runs}.log"
        self.stderr_paths.append(self.stderr_path)
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("CAIRN_") and k not in ("CAIRN_BUILD_DIR",):
                del env[k]  # only what the test asks for
        env.update(self.env)
        env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1:handle_abort=1")
        # The binary may be being relinked right now (a developer rebuilding
        # while the suite runs): retry exec for a few seconds on that.
        deadline = time.monotonic() + 10
        while True:
            try:
                with open(self.stderr_path, "wb") as err, \
                        open(self.workdir / f"stdout.{self.runs}.log", "wb") as out:
                    self.proc = subprocess.Popen(argv or self.argv(extra), stdin=subprocess.DEVNULL, stdout=out,
                                                 stderr=err, env=env, cwd=str(self.workdir),
                                                 start_new_session=True)
                break
            except (PermissionError, FileNotFoundError, OSError) as e:
                if time.monotonic() > deadline or not (isinstance(e, (PermissionError, FileNotFoundError))
                                                        or e.errno == errno.ETXTBSY):
                    raise
                time.sleep(0.2)
        with _LIVE_LOCK:
            _LIVE[self.proc.pid] = self.proc
        self._session = None
        return self.proc

    def start(self, extra=None, wait_ready=True, timeout=None):
        first = self.runs == 0
        for attempt in range(3):
            self.spawn(extra)
            if not wait_ready:
                return self
            try:
                self.wait_ready(timeout)
                return self
            except StartupFailed:
                # Another process grabbed one of our ports between picking and
                # binding: on a first start only, pick new ports and retry.
                if not (first and attempt < 2 and not self.running
                        and "in use" in self.stderr_text().lower()):
                    raise
                self.http_port, self.resp_port, self.peer_port = free_ports(3)
        return self

    def wait_ready(self, timeout=None):
        timeout = timeout or self.ready_timeout
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self._reap(rc)
                raise StartupFailed(f"cairnd exited with code {rc} before it was ready\n"
                                    f"argv: {self.proc.args}\n--- stderr ---\n{self.stderr_text()[-4000:]}")
            try:
                r = requests.get(self.url("/readyz"), timeout=1)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[:200]}"
            except requests.RequestException as e:
                last = repr(e)
            if time.monotonic() >= deadline:
                raise StartupFailed(f"cairnd not ready within {timeout}s (last /readyz: {last})\n"
                                    f"argv: {self.proc.args}\n--- stderr ---\n{self.stderr_text()[-4000:]}")
            time.sleep(0.05)

    def _reap(self, rc):
        if getattr(self, "_reaped", None) is self.proc:
            return  # one exit status per run, however often it is asked for
        self._reaped = self.proc
        with _LIVE_LOCK:
            _LIVE.pop(self.proc.pid, None)
        self.returncodes.append(rc)
        self.drop_session()

    def wait_exit(self, timeout):
        """Wait for the process to exit; return its code, or None on timeout."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reap(rc)
        return rc

    def send_signal(self, sig):
        if self.running:
            os.kill(self.proc.pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Send sig, wait up to timeout; SIGKILL as a last resort (then fails).
        Returns the exit code (negative = killed by that signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None:
            rc = self.proc.returncode
            self._reap(rc)
            return rc
        os.kill(self.proc.pid, sig)
        rc = self.wait_exit(timeout)
        if rc is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.wait_exit(10)
            raise AssertionError(f"cairnd (pid {self.proc.pid}) did not exit within {timeout}s "
                                 f"after signal {sig!s}; killed\n{self.stderr_text()[-3000:]}")
        return rc

    def kill9(self):
        if self.running:
            os.kill(self.proc.pid, signal.SIGKILL)
        rc = self.wait_exit(10)
        assert rc is not None, "process did not die after SIGKILL"
        return rc

    def restart(self, extra=None, wait_ready=True, timeout=None):
        if self.running:
            rc = self.stop()
            assert rc == 0, f"graceful stop exited {rc}\n{self.stderr_text()[-3000:]}"
        return self.start(extra, wait_ready=wait_ready, timeout=timeout)

    def run_expect_exit(self, extra=None, timeout=15.0, argv=None):
        """Start and expect the process to exit by itself within timeout.
        Returns (exit code, stderr). Fails if it is still running (it is
        then stopped)."""
        self.spawn(extra, argv=argv)
        self.refusal_runs.add(self.stderr_path)
        rc = self.wait_exit(timeout)
        if rc is None:
            try:
                self.stop(timeout=5)
            except AssertionError:
                pass
            raise AssertionError(f"cairnd was expected to exit but still ran after {timeout}s\n"
                                 f"argv: {self.proc.args}\n{self.stderr_text()[-3000:]}")
        return rc, self.stderr_text()

    # -- logs -----------------------------------------------------------------
    def stderr_text(self):
        if self.stderr_path is None or not self.stderr_path.exists():
            return ""
        return self.stderr_path.read_text(errors="replace")

    def all_stderr(self):
        return "".join(p.read_text(errors="replace") for p in self.stderr_paths if p.exists())

    def sanitizer_reports(self):
        """Sanitizer findings over all runs. Leak reports of runs that were
        expected to refuse to start (run_expect_exit) are ignored: memory
        still held when startup is abandoned is not a defect."""
        out = []
        for p in self.stderr_paths:
            if not p.exists():
                continue
            text = p.read_text(errors="replace")
            if p in self.refusal_runs:
                text = re.sub(r"=+\n==\d+==ERROR: LeakSanitizer.*?SUMMARY: AddressSanitizer: [^\n]*leaked[^\n]*",
                              "", text, flags=re.S)
            san = check_sanitizers(text)
            if san:
                out.append(f"{p.name}:\n{san}")
        return out

    # -- HTTP convenience (keep-alive session) -----------------------------
    def drop_session(self):
        """Close the keep-alive connection (it counts as a client)."""
        if self._session is not None:
            self._session.close()
            self._session = None

    @property
    def session(self):
        if self._session is None:
            self._session = requests.Session()
        return self._session

    def request(self, method, path, timeout=10, **kw):
        return self.session.request(method, self.url(path), timeout=timeout, **kw)

    def put(self, key, value=b"", params=None, headers=None, keep_slash=False):
        if isinstance(value, str):
            value = value.encode()
        return self.request("PUT", kpath(key, keep_slash), data=value, params=params, headers=headers)

    def get(self, key, params=None, headers=None, keep_slash=False):
        return self.request("GET", kpath(key, keep_slash), params=params, headers=headers)

    def head(self, key, headers=None):
        return self.request("HEAD", kpath(key), headers=headers)

    def delete(self, key, headers=None):
        return self.request("DELETE", kpath(key), headers=headers)

    def status(self):
        r = self.request("GET", "/v1/status")
        assert r.status_code == 200, r.text
        return r.json()

    def raw(self, timeout=5.0):
        return RawHttp(self.http_port, timeout=timeout)

    def list_all(self, prefix=b"", limit=1000, values=False, max_pages=100000):
        """Follow next_cursor to the end; return the entries in order."""
        entries = []
        cursor = None
        for _ in range(max_pages):
            params = {"limit": str(limit)}
            if prefix:
                params["prefix"] = prefix
            if values:
                params["values"] = "true"
            if cursor is not None:
                params["cursor"] = cursor
            r = self.request("GET", "/v1/keys", params=params, timeout=60)
            assert r.status_code == 200, (r.status_code, r.text[:500])
            doc = r.json()
            entries.extend(doc["keys"])
            cursor = doc.get("next_cursor")
            if cursor is None:
                return entries
        raise AssertionError("listing did not end")


def check_sanitizers(text):
    for m in SANITIZER_MARKERS:
        if m in text:
            i = text.index(m)
            return text[max(0, i - 500):i + 4000]
    return None


# --------------------------------------------------------------------------
# bulk writes
# --------------------------------------------------------------------------

def pipelined_puts(port, items, window=200, conns=4, timeout=300.0, headers=None):
    """PUT every (key_bytes, value_bytes) in items, pipelining `window`
    requests per write on `conns` keep-alive connections. 503 answers are
    retried after a short pause. Returns the number of 503s seen. Raises on any
    other status or when the deadline passes."""
    deadline = time.monotonic() + timeout
    items = list(items)
    slices = [items[i::conns] for i in range(conns)]
    errors = []
    busy = [0] * conns
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())

    def worker(idx, mine):
        try:
            c = RawHttp(port, timeout=30)
            pending = mine
            while pending:
                retry = []
                for off in range(0, len(pending), window):
                    batch = pending[off:off + window]
                    out = []
                    for k, v in batch:
                        out.append(f"PUT {kpath(k)} HTTP/1.1\r\nHost: x\r\n{extra}Content-Length: {len(v)}\r\n\r\n"
                                   .encode("latin-1"))
                        out.append(v)
                    c.send(b"".join(out))
                    for kv in batch:
                        r = c.read_response("PUT", timeout=max(1.0, deadline - time.monotonic()))
                        if r.status == 503:
                            retry.append(kv)
                        elif r.status != 201:
                            raise AssertionError(f"PUT {kv[0]!r}: {r}")
                    if time.monotonic() > deadline:
                        raise AssertionError("bulk write deadline passed")
                if retry:
                    busy[idx] += len(retry)
                    time.sleep(0.05)
                pending = retry
            c.close()
        except BaseException as e:  # noqa: B902 - report in main thread
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(i, s), daemon=True) for i, s in enumerate(slices)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(max(1.0, deadline - time.monotonic()) + 5)
        assert not t.is_alive(), "bulk writer thread hung"
    if errors:
        raise errors[0]
    return sum(busy)


# --------------------------------------------------------------------------
# Prometheus text format
# --------------------------------------------------------------------------

_METRIC_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?[ \t]+(\S+)(?:[ \t]+(-?\d+))?[ \t]*$")


def _parse_labels(s):
    """s is '{a="x",b="y"}' (Prometheus escapes \\\\ \\" \\n)."""
    assert s[0] == "{" and s[-1] == "}", s
    inner = s[1:-1]
    labels = {}
    i = 0
    n = len(inner)
    while i < n:
        while i < n and inner[i] in " \t,":
            i += 1
        if i >= n:
            break
        m = re.match(r"[a-zA-Z_][a-zA-Z0-9_]*", inner[i:])
        assert m, f"bad label name at {inner[i:]!r}"
        name = m.group(0)
        i += len(name)
        while i < n and inner[i] in " \t":
            i += 1
        assert inner[i:i + 2] == '="', f"bad label syntax in {s!r}"
        i += 2
        val = []
        while True:
            assert i < n, f"unterminated label value in {s!r}"
            ch = inner[i]
            if ch == "\\":
                nxt = inner[i + 1]
                assert nxt in '\\"n', f"bad escape in {s!r}"
                val.append({"\\": "\\", '"': '"', "n": "\n"}[nxt])
                i += 2
            elif ch == '"':
                i += 1
                break
            else:
                val.append(ch)
                i += 1
        assert name not in labels, f"duplicate label {name} in {s!r}"
        labels[name] = "".join(val)
        while i < n and inner[i] in " \t":
            i += 1
        if i < n:
            assert inner[i] == ",", f"expected ',' in {s!r}"
            i += 1
    return labels


def parse_prometheus(text):
    """Strict-ish parser for the Prometheus text format 0.0.4.
    Returns (types: name->type, samples: list of (name, labels, value))."""
    types = {}
    samples = []
    seen_families = set()
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 2 and parts[1] == "TYPE":
                assert len(parts) == 4, f"line {lineno}: bad TYPE line {line!r}"
                name, typ = parts[2], parts[3].strip()
                assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name), f"line {lineno}: bad name {name!r}"
                assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), \
                    f"line {lineno}: bad type {typ!r}"
                assert name not in types, f"line {lineno}: second TYPE line for {name}"
                assert name not in seen_families, f"line {lineno}: TYPE for {name} after its samples"
                types[name] = typ
            continue
        m = _METRIC_RE.match(line)
        assert m, f"line {lineno}: not `name{{labels}} value`: {line!r}"
        name, lab, val = m.group(1), m.group(2), m.group(3)
        labels = _parse_labels(lab) if lab else {}
        try:
            value = float(val)  # accepts NaN, +Inf, -Inf
        except ValueError:
            raise AssertionError(f"line {lineno}: value is not a float: {line!r}") from None
        fam = family_of(name, types)
        assert fam is not None, f"line {lineno}: metric {name} has no # TYPE line (before it)"
        seen_families.add(fam)
        samples.append((name, labels, value))
    return types, samples


def family_of(name, types):
    if name in types:
        return name
    for suf in ("_bucket", "_sum", "_count"):
        if name.endswith(suf):
            base = name[: -len(suf)]
            if types.get(base) in ("histogram", "summary"):
                return base
    return None


# --------------------------------------------------------------------------
# pytest plumbing
# --------------------------------------------------------------------------

def pytest_configure(config):
    config.addinivalue_line("markers", "timeout_s(seconds): per-test watchdog budget (default 90 s)")


class WatchdogTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _watchdog(request):
    m = request.node.get_closest_marker("timeout_s")
    budget = float(m.args[0]) if m else DEFAULT_TEST_TIMEOUT

    def on_alarm(signum, frame):
        raise WatchdogTimeout(f"test exceeded its {budget}s budget")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, budget)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def make_node(tmp_path, request):
    """Factory: make_node(**Cairnd kwargs) -> Cairnd (not started)."""
    nodes = []

    def factory(**kw):
        n = Cairnd(tmp_path / f"node{len(nodes) + 1}", **kw)
        nodes.append(n)
        return n

    yield factory

    problems = []
    for n in nodes:
        if n.running:
            try:
                n.stop(timeout=10)
            except AssertionError as e:
                problems.append(str(e))
    failed = getattr(request.node, "rep_call", None)
    for n in nodes:
        text = n.all_stderr()
        for san in n.sanitizer_reports():
            problems.append(f"sanitizer report in {n.workdir}/{san}")
        if failed is not None and failed.failed:
            print(f"\n--- {n.workdir} stderr (tail) ---\n" + "\n".join(text.splitlines()[-40:]))
    if problems:
        pytest.fail("\n\n".join(problems))


@pytest.fixture
def node(make_node):
    """A fresh durable single node, ready."""
    return make_node().start()


@pytest.fixture
def cache_node(make_node):
    """A fresh --persistence none node, ready."""
    return make_node(persistence="none").start()


def pytest_sessionfinish(session, exitstatus):
    # last-resort cleanup: only processes this harness started
    with _LIVE_LOCK:
        procs = list(_LIVE.values())
    for p in procs:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
