"""Rate limits (docs/security.md "Rate limits", SPEC §1 --rate-limit N
--rate-burst B): a token bucket per client (the authenticated user, else the
source IP), 429 + X-RateLimit-* + Retry-After over HTTP, `-ERR rate limit
exceeded, retry in S seconds` over RESP, /healthz and /readyz exempt, and
cairn_rate_limited_total{protocol=...} in /metrics.

Requests that must land inside one burst are pipelined on one connection so
that refill during the test cannot blur the counts. Other source addresses
(127.0.0.2, 127.0.0.3: loopback on Linux) give separate per-IP buckets."""
import base64
import hashlib
import os
import re
import socket
import time

import pytest

from conftest import RawHttp, build_request, parse_prometheus
from resp_helpers import RawResp, encode

ITER = 10000


def make_hash(pw, iterations=ITER):
    salt = os.urandom(16)
    key = hashlib.pbkdf2_hmac("sha256", pw.encode(), salt, iterations, 32)
    b = lambda x: base64.b64encode(x).decode().rstrip("=")  # noqa: E731
    return f"pbkdf2-sha256${iterations}${b(salt)}${b(key)}"


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}


class SrcHttp(RawHttp):
    """RawHttp from a chosen loopback source address."""

    def __init__(self, port, source="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.timeout = timeout
        self.eof = False


class SrcResp(RawResp):
    def __init__(self, port, source="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.timeout = timeout
        self.eof = False


def burst(node, n, source="127.0.0.1", method="GET", path="/v1/key/k", headers=None):
    """n requests pipelined in one write on one connection; the responses."""
    with SrcHttp(node.http_port, source) as c:
        body = b"v" if method == "PUT" else None
        c.send(b"".join(build_request(method, path, headers, body) for _ in range(n)))
        return [c.read_response(method) for _ in range(n)]


def one(node, source="127.0.0.1", method="GET", path="/v1/key/k", headers=None):
    return burst(node, 1, source, method, path, headers)[0]


def int_header(r, name):
    v = r.header(name)
    assert v is not None, f"missing {name}: {r}"
    assert re.fullmatch(r"\d+", v), f"{name} is not a whole number: {v!r}"
    return int(v)


def assert_429(r, limit):
    assert r.status == 429, r
    doc = r.json()
    assert doc.get("error") == "rate limit exceeded" and doc.get("code") == 429, doc
    assert int_header(r, "Retry-After") >= 1
    assert int_header(r, "X-RateLimit-Limit") == limit
    assert int_header(r, "X-RateLimit-Remaining") == 0


def rl_node(make_node, *args, users=None):
    extra = list(args)
    if users is not None:
        extra += ["--users-file", str(users)]
    return make_node(extra_args=extra).start()


def metric(text, name, **labels):
    _, samples = parse_prometheus(text)
    for n, lab, v in samples:
        if n == name and lab == labels:
            return v
    return None


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

def test_http_burst_then_429(make_node):
    n = rl_node(make_node, "--rate-limit", "5", "--rate-burst", "5")
    rs = burst(n, 6, method="PUT")
    for r in rs[:5]:
        assert r.status == 201, r
        assert int_header(r, "X-RateLimit-Limit") == 5
    remaining = [int_header(r, "X-RateLimit-Remaining") for r in rs[:5]]
    assert remaining == [4, 3, 2, 1, 0], remaining
    assert_429(rs[5], 5)
    # still limited right away, on a new connection, for any route that counts
    assert_429(one(n), 5)
    assert_429(one(n, path="/v1/keys"), 5)
    assert one(n, path="/v1/status").status == 429


def test_http_refills_after_wait(make_node):
    n = rl_node(make_node, "--rate-limit", "5", "--rate-burst", "5")
    rs = burst(n, 7)
    assert [r.status for r in rs] == [404] * 5 + [429] * 2, [r.status for r in rs]
    retry = int_header(rs[5], "Retry-After")
    assert 1 <= retry <= 2, retry
    time.sleep(1.2)  # 6 tokens at 5/s, capped at the burst of 5
    rs = burst(n, 6)
    assert [r.status for r in rs] == [404] * 5 + [429], [r.status for r in rs]
    # a partial refill: ~2 tokens after 0.45 s (at least 2; the last of 4
    # is refused unless the burst itself was slow enough to earn it)
    time.sleep(0.45)
    t0 = time.monotonic()
    rs = burst(n, 4)
    took = time.monotonic() - t0
    statuses = [r.status for r in rs]
    assert statuses[:2] == [404, 404], statuses
    if took < 0.25:
        assert statuses[-1] == 429, (statuses, took)


def test_burst_defaults_to_limit(make_node):
    n = rl_node(make_node, "--rate-limit", "3")
    rs = burst(n, 4)
    assert [r.status for r in rs] == [404, 404, 404, 429], [r.status for r in rs]
    assert int_header(rs[0], "X-RateLimit-Limit") == 3
    assert_429(rs[3], 3)


def test_burst_larger_than_limit(make_node):
    n = rl_node(make_node, "--rate-limit", "2", "--rate-burst", "8")
    rs = burst(n, 9)
    assert [r.status for r in rs] == [404] * 8 + [429], [r.status for r in rs]
    assert int_header(rs[0], "X-RateLimit-Limit") == 2  # N, not B
    assert int_header(rs[0], "X-RateLimit-Remaining") == 7
    assert_429(rs[8], 2)


def test_health_routes_exempt(make_node):
    n = rl_node(make_node, "--rate-limit", "2", "--rate-burst", "2")
    rs = burst(n, 3)
    assert rs[2].status == 429
    for path in ("/healthz", "/readyz"):
        for r in burst(n, 20, path=path):
            assert r.status == 200, (path, r)
    assert one(n).status == 429  # the health checks did not refill anything either


def test_per_ip_buckets_without_users(make_node):
    n = rl_node(make_node, "--rate-limit", "3", "--rate-burst", "3")
    rs = burst(n, 4, source="127.0.0.1")
    assert [r.status for r in rs] == [404, 404, 404, 429]
    rs = burst(n, 4, source="127.0.0.2")
    assert [r.status for r in rs] == [404, 404, 404, 429], "127.0.0.2 shares 127.0.0.1's bucket"
    assert int_header(rs[0], "X-RateLimit-Remaining") == 2
    # connections do not matter: the same IP on a new connection is still limited
    assert one(n, source="127.0.0.1").status == 429
    assert one(n, source="127.0.0.3").status == 404


def test_per_user_buckets_with_users(make_node, tmp_path):
    users = tmp_path / "users.conf"
    users.write_text(f"alice:{make_hash('alice-Pw-1')}:rw:\nbob:{make_hash('bob-Pw-1')}:rw:\n"
                     f"carol:{make_hash('carol-Pw-1')}:rw:\n")
    n = rl_node(make_node, "--rate-limit", "3", "--rate-burst", "3", users=users)
    a, b = basic("alice", "alice-Pw-1"), basic("bob", "bob-Pw-1")
    rs = burst(n, 4, headers=a)
    assert [r.status for r in rs] == [404, 404, 404, 429], [r.status for r in rs]
    assert_429(rs[3], 3)
    # bob from the same IP has his own bucket
    rs = burst(n, 3, headers=b)
    assert [r.status for r in rs] == [404, 404, 404], [r.status for r in rs]
    assert int_header(rs[0], "X-RateLimit-Remaining") == 2
    # alice from another IP is still alice
    assert one(n, source="127.0.0.2", headers=a).status == 429
    # carol via a bearer token is carol
    with SrcHttp(n.http_port) as c:
        r = c.request("POST", "/v1/auth/token", headers=basic("carol", "carol-Pw-1"), body=b"")
        assert r.status == 200, r
        tok = r.json()["token"]
    rs = burst(n, 3, headers={"Authorization": "Bearer " + tok})
    assert [r.status for r in rs] == [404, 404, 429], [r.status for r in rs]


# --------------------------------------------------------------------------
# RESP
# --------------------------------------------------------------------------

def test_resp_rate_limited(make_node):
    n = rl_node(make_node, "--rate-limit", "5", "--rate-burst", "5")
    with SrcResp(n.resp_port) as c:
        c.send(b"".join(encode("SET", f"k{i}", "v") for i in range(7)))
        replies = [c.read() for _ in range(7)]
        assert replies[:5] == ["OK"] * 5, replies
        for r in replies[5:]:
            assert isinstance(r, str) and r.startswith("ERR rate limit exceeded"), replies
            m = re.fullmatch(r"ERR rate limit exceeded, retry in (\d+) seconds?", r)
            assert m and int(m.group(1)) >= 1, r
        # the refused commands did nothing
        time.sleep(1.2)
        assert c.cmd("EXISTS", "k5", "k6") == 0
        # the connection stays usable after the window
        assert c.cmd("PING") == "PONG"
        assert c.cmd("GET", "k0") == b"v"
    # another IP is not affected
    with SrcResp(n.resp_port, source="127.0.0.2") as c:
        assert c.cmd("PING") == "PONG"


def test_resp_rate_limit_per_user(make_node, tmp_path):
    users = tmp_path / "users.conf"
    users.write_text(f"alice:{make_hash('alice-Pw-1')}:rw:\nbob:{make_hash('bob-Pw-1')}:rw:\n")
    n = rl_node(make_node, "--rate-limit", "3", "--rate-burst", "3", users=users)
    with SrcResp(n.resp_port) as a, SrcResp(n.resp_port) as b:
        # AUTH itself may count against the IP; the commands after it count against the user
        assert a.cmd("AUTH", "alice", "alice-Pw-1") == "OK"
        assert b.cmd("AUTH", "bob", "bob-Pw-1") == "OK"
        a.send(b"".join(encode("PING") for _ in range(5)))
        ra = [a.read() for _ in range(5)]
        pongs = ra.count("PONG")
        assert ra[:pongs] == ["PONG"] * pongs and pongs in (2, 3), ra
        assert all(isinstance(r, str) and r.startswith("ERR rate limit exceeded") for r in ra[pongs:]), ra
        assert b.cmd("PING") == "PONG", "bob limited by alice's bucket"


# --------------------------------------------------------------------------
# metrics, flags
# --------------------------------------------------------------------------

def read_metrics(node, source):
    with SrcHttp(node.http_port, source) as c:
        r = c.request("GET", "/metrics")
    assert r.status == 200, r
    text = r.body.decode()
    types, _ = parse_prometheus(text)
    return text, types


def test_rate_limited_metric(make_node):
    n = rl_node(make_node, "--rate-limit", "4", "--rate-burst", "4")
    # /metrics itself takes a token: read it from its own address
    text, _ = read_metrics(n, "127.0.0.2")
    http0 = metric(text, "cairn_rate_limited_total", protocol="http") or 0.0
    resp0 = metric(text, "cairn_rate_limited_total", protocol="resp") or 0.0
    rs = burst(n, 9)
    limited = sum(r.status == 429 for r in rs)
    assert limited >= 4, [r.status for r in rs]
    with SrcResp(n.resp_port, source="127.0.0.3") as c:
        c.send(b"".join(encode("PING") for _ in range(7)))
        replies = [c.read() for _ in range(7)]
    resp_limited = sum(isinstance(r, str) and r.startswith("ERR rate limit exceeded") for r in replies)
    assert resp_limited >= 2, replies
    text, types = read_metrics(n, "127.0.0.2")
    assert types.get("cairn_rate_limited_total") == "counter", types.get("cairn_rate_limited_total")
    assert metric(text, "cairn_rate_limited_total", protocol="http") == http0 + limited
    assert metric(text, "cairn_rate_limited_total", protocol="resp") == resp0 + resp_limited


@pytest.mark.parametrize("args,flag", [
    (["--rate-burst", "5"], "--rate-burst"),
    (["--rate-limit", "abc"], "--rate-limit"),
    (["--rate-limit", "-1"], "--rate-limit"),
    (["--rate-limit", "5", "--rate-burst", "x"], "--rate-burst"),
])
def test_bad_rate_flags_refused(make_node, args, flag):
    n = make_node(extra_args=args)
    rc, err = n.run_expect_exit(timeout=15)
    assert rc == 2, (rc, err[-1500:])
    assert flag in err, err[-1500:]
