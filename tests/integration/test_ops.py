"""Operations: health, readiness, status, metrics, request ids, logs,
signals and command-line handling (SPEC.md §1, §2, §7)."""
import json
import re
import signal
import socket
import time

import pytest
import requests

import ports
from conftest import CAIRND, free_ports, kpath, parse_logfmt, parse_prometheus, wait_until


def test_healthz(node):
    r = requests.get(node.url("/healthz"), timeout=5)
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_readyz(node):
    r = requests.get(node.url("/readyz"), timeout=5)
    assert r.status_code == 200
    assert r.json() == {"status": "ready"}


def test_status_fields(node):
    st = node.status()
    for f in ("id", "role", "term", "leader", "commit_index", "applied_index", "revision", "keys",
              "memory_bytes", "uptime_seconds", "version", "persistence"):
        assert f in st, f"/v1/status lacks {f}: {st}"
    assert st["id"] == 1
    assert st["role"] == "leader"
    assert st["leader"] == 1
    assert isinstance(st["term"], int) and st["term"] >= 1
    assert isinstance(st["commit_index"], int) and isinstance(st["applied_index"], int)
    assert 0 <= st["applied_index"] <= st["commit_index"]
    assert st["keys"] == 0
    assert st["persistence"] == "durable"
    assert isinstance(st["version"], str) and st["version"]
    assert isinstance(st["memory_bytes"], int) and st["memory_bytes"] >= 0
    assert isinstance(st["uptime_seconds"], (int, float)) and st["uptime_seconds"] >= 0

    revs = [int(node.put(f"k{i}", b"v").headers["X-Cairn-Revision"]) for i in range(5)]
    node.delete("k0")
    st2 = node.status()
    assert st2["keys"] == 4
    assert st2["revision"] == revs[-1] + 1
    assert st2["applied_index"] >= st["applied_index"] + 6
    assert st2["commit_index"] >= st2["applied_index"]
    assert st2["term"] == st["term"]


def test_status_id_from_flag(make_node):
    n = make_node(node_id=7).start()
    st = n.status()
    assert st["id"] == 7 and st["leader"] == 7 and st["role"] == "leader"


def test_flags_read_env_and_flag_wins(make_node):
    n = make_node(pass_id=False, env={"CAIRN_ID": "5"}).start()
    assert n.status()["id"] == 5
    n2 = make_node(node_id=3, env={"CAIRN_ID": "5"}).start()
    assert n2.status()["id"] == 3


def test_cache_node_status_and_ready(cache_node):
    assert requests.get(cache_node.url("/readyz"), timeout=5).status_code == 200
    st = cache_node.status()
    assert st["role"] == "standalone"
    assert st["persistence"] == "none"


# ---------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------

def fetch_metrics(node):
    r = requests.get(node.url("/metrics"), timeout=5)
    assert r.status_code == 200
    ctype = r.headers.get("Content-Type", "")
    assert ctype.startswith("text/plain"), ctype
    return parse_prometheus(r.text)


def test_metrics_parse_as_prometheus_text(node):
    node.put("a", b"1")
    node.get("a")
    node.get("missing")
    types, samples = fetch_metrics(node)
    assert samples, "no samples"
    names = {fam for fam in types}
    assert any(types[f] == "counter" for f in names), types
    # histograms are complete: every label set has a +Inf bucket, a _sum and a _count
    for fam, typ in types.items():
        if typ != "histogram":
            continue
        buckets = [(lab, v) for n, lab, v in samples if n == fam + "_bucket"]
        if not buckets:
            continue
        assert all("le" in lab for lab, _ in buckets), fam
        assert any(lab["le"] == "+Inf" for lab, _ in buckets), f"{fam} has no +Inf bucket"
        assert any(n == fam + "_count" for n, _, _ in samples), fam
        assert any(n == fam + "_sum" for n, _, _ in samples), fam
    # counters never negative
    for n, lab, v in samples:
        fam = n if n in types else None
        if fam and types[fam] == "counter":
            assert v >= 0, (n, lab, v)


def _request_counter_total(types, samples):
    fams = {f for f, t in types.items() if t == "counter" and "request" in f}
    assert fams, f"no request counter among {sorted(types)}"
    return sum(v for n, _, v in samples if n in fams)


def test_metrics_request_counters_grow(node):
    before = _request_counter_total(*fetch_metrics(node))
    for i in range(20):
        node.put(f"m{i}", b"v")
        node.get(f"m{i}")
    after = _request_counter_total(*fetch_metrics(node))
    assert after >= before + 40, (before, after)


# ---------------------------------------------------------------------------
# request ids
# ---------------------------------------------------------------------------

def test_request_id_echoed(node):
    for method, path, kw in (("PUT", kpath("rid"), {"data": b"v"}), ("GET", kpath("rid"), {}),
                             ("GET", kpath("nope"), {}), ("DELETE", kpath("rid"), {}),
                             ("GET", "/v1/keys", {}), ("GET", "/no/such/route", {})):
        r = node.request(method, path, headers={"X-Request-Id": "abc-123_XYZ"}, **kw)
        assert r.headers.get("X-Request-Id") == "abc-123_XYZ", (method, path, r.status_code, dict(r.headers))


def test_request_id_generated(node):
    ids = []
    for _ in range(3):
        r = node.get("whatever")
        rid = r.headers.get("X-Request-Id")
        assert rid and rid.strip() == rid and len(rid) <= 200, dict(r.headers)
        ids.append(rid)
    assert len(set(ids)) == 3, ids


# ---------------------------------------------------------------------------
# signals
# ---------------------------------------------------------------------------

def test_sigterm_exits_0(node):
    node.put("k", b"v")
    t0 = time.monotonic()
    rc = node.stop(signal.SIGTERM, timeout=10)
    assert rc == 0, node.stderr_text()[-2000:]
    assert time.monotonic() - t0 < 10


def test_sigint_exits_0(node):
    rc = node.stop(signal.SIGINT, timeout=10)
    assert rc == 0, node.stderr_text()[-2000:]


def test_sigterm_cache_node_exits_0(cache_node):
    assert cache_node.stop(signal.SIGTERM, timeout=10) == 0


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------

BAD_FLAGS = [
    (["--no-such-flag"], "no-such-flag"),
    (["--no-such-flag", "value"], "no-such-flag"),
    (["--id", "0"], "id"),
    (["--id", "-3"], "id"),
    (["--id", "abc"], "id"),
    (["--id"], "id"),
    (["--max-clients", "abc"], "max-clients"),
    (["--max-clients", "-5"], "max-clients"),
    (["--persistence", "sometimes"], "persistence"),
    (["--log-level", "loud"], "log-level"),
    (["--log-format", "xml"], "log-format"),
    (["--heartbeat-interval", "0.001"], "heartbeat-interval"),
    (["--heartbeat-interval", "1"], "heartbeat-interval"),
    (["--listen-http", "nonsense"], "listen-http"),
    (["--advertise-http", "nonsense"], "advertise-http"),
    (["--listen-resp", "off", "--advertise-resp", "127.0.0.1:6390"], "advertise-resp"),
    (["--client-timeout", "soon"], "client-timeout"),
    (["--max-value-bytes", "12abc"], "max-value-bytes"),
]


@pytest.mark.parametrize("args,flag", BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_bad_flag_exits_2(make_node, args, flag):
    n = make_node()
    t0 = time.monotonic()
    rc, err = n.run_expect_exit(extra=args, timeout=10)
    assert rc == 2, f"exit code {rc} for {args}\n{err[-1000:]}"
    assert time.monotonic() - t0 < 10
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines, "no error message"
    assert flag in lines[0], f"first stderr line does not name {flag!r}: {lines[0]!r}"


def test_bad_env_value_exits_2(make_node):
    n = make_node(pass_id=False, env={"CAIRN_ID": "zero"})
    rc, err = n.run_expect_exit(timeout=10)
    assert rc == 2, err[-1000:]
    assert re.search(r"CAIRN_ID|\bid\b", err), err[-1000:]


def test_help_is_not_an_error(make_node):
    n = make_node()
    rc, err = n.run_expect_exit(argv=[str(CAIRND), "--help"], timeout=10)
    assert rc == 0, err[-1000:]
    out = (n.workdir / f"stdout.{n.runs}.log").read_text(errors="replace") + err
    assert "--data-dir" in out and "--listen-http" in out
    # each flag with its default and its environment variable
    assert re.search(r"--listen-http VALUE\n.*\n\s+\[default 127\.0\.0\.1:8080, env CAIRN_LISTEN_HTTP\]",
                     out), out[:2000]
    assert re.search(r"--install-snapshot-timeout VALUE\n.*\n\s+\[default 5, "
                     r"env CAIRN_INSTALL_SNAPSHOT_TIMEOUT\]", out), out[:4000]
    assert re.search(r"--persistence VALUE\n.*\n\s+\[default durable,", out)


# ---------------------------------------------------------------------------
# logs and listening
# ---------------------------------------------------------------------------

def test_port_zero_is_logged(make_node):
    n = make_node()
    peer, = free_ports(1)
    argv = [str(CAIRND), "--id", "1", "--data-dir", str(n.data_dir), "--listen-http", "127.0.0.1:0",
            "--listen-resp", "127.0.0.1:0", "--listen-peer", f"127.0.0.1:{peer}"]
    n.spawn(argv=argv)

    def find_addrs():
        found = {}
        for ln in n.stderr_text().splitlines():
            kv = parse_logfmt(ln)
            if "listen" in kv.get("msg", "") and kv.get("proto") and kv.get("addr"):
                found[kv["proto"]] = kv["addr"]
        return found if "http" in found else None

    addrs = wait_until(find_addrs, 10, 0.05, "a 'listening' log line for http")
    m = re.fullmatch(r"127\.0\.0\.1:(\d+)", addrs["http"])
    assert m and int(m.group(1)) != 0, addrs
    n.http_port = int(m.group(1))
    n.wait_ready(10)
    assert requests.get(n.url("/healthz"), timeout=5).status_code == 200
    if "resp" in addrs:
        assert not addrs["resp"].endswith(":0")


def test_peer_port_in_use_is_named(make_node):
    """libraft binds --listen-peer inside raft_start and reports only "I/O
    error": cairnd names the flag and the cause instead, so a port taken by
    another process is told apart from a damaged raft log."""
    n = make_node()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", n.peer_port))
        holder.listen(1)
        rc, err = n.run_expect_exit(timeout=20)
    assert rc not in (0, None), err[-1000:]
    assert re.search(rf"--listen-peer 127\.0\.0\.1:{n.peer_port}: cannot listen "
                     r"\(Address already in use\)", err), err[-2000:]
    assert "cannot load raft state" not in err, err[-2000:]


def test_test_ports_avoid_the_ephemeral_range():
    """Ports the harness picks are never in the kernel's range for outgoing
    source ports (a peer's dial could take one before cairnd binds it), and
    a port just handed out is not handed out again."""
    lo, hi = ports.ephemeral_range()
    seen = set()
    for _ in range(50):
        for p in free_ports(3):
            assert not lo <= p <= hi, (p, lo, hi)
            assert p not in seen, p
            seen.add(p)


def test_listen_resp_off(make_node):
    n = make_node()
    argv = [a if a != f"127.0.0.1:{n.resp_port}" else "off" for a in n.argv()]
    n.spawn(argv=argv)
    n.wait_ready()
    assert n.put("k", b"v").status_code == 201


def test_text_log_format(node):
    node.put("k", b"secret-value-do-not-log")
    node.get("k")
    assert node.stop() == 0
    lines = [ln for ln in node.stderr_text().splitlines() if ln.strip()]
    assert lines
    for ln in lines:
        kv = parse_logfmt(ln)
        assert "level" in kv and "msg" in kv, f"not a logfmt event line: {ln!r}"
        assert kv["level"] in ("debug", "info", "warn", "error"), ln
    assert "secret-value-do-not-log" not in node.stderr_text()


def test_json_log_format(make_node):
    n = make_node(extra_args=["--log-format", "json", "--log-level", "debug"]).start()
    n.put("k", b"another-secret-value")
    n.get("k", headers={"X-Request-Id": "json-log-req"})
    assert n.stop() == 0
    lines = [ln for ln in n.stderr_text().splitlines() if ln.strip()]
    assert lines
    for ln in lines:
        doc = json.loads(ln)
        assert isinstance(doc, dict) and "level" in doc and "msg" in doc, ln
    assert "another-secret-value" not in n.stderr_text()


def test_request_id_on_request_log_lines(make_node):
    n = make_node(extra_args=["--log-level", "debug"]).start()
    n.put("k", b"v", headers={"X-Request-Id": "trace-me-7f3a"})
    n.get("nope", headers={"X-Request-Id": "trace-me-404"})
    assert n.stop() == 0
    text = n.stderr_text()
    for rid in ("trace-me-7f3a", "trace-me-404"):
        lines = [ln for ln in text.splitlines() if rid in ln]
        assert lines, f"no debug log line carries request id {rid}"


def test_log_level_error_is_quiet(make_node):
    n = make_node(extra_args=["--log-level", "error"]).start()
    n.put("k", b"v")
    assert n.stop() == 0
    for ln in n.stderr_text().splitlines():
        if ln.strip():
            assert parse_logfmt(ln).get("level") == "error", f"non-error line at --log-level error: {ln!r}"
