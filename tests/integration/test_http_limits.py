"""Limits, overload and bad input over HTTP: SPEC.md §6 and the
"Limits and overload" table of docs/api.md."""
import socket
import threading
import time

import pytest

from conftest import RawHttp, build_request, kpath, parse_responses


def assert_json_status(resp, code):
    assert resp.status == code, resp
    doc = resp.json()
    assert doc.get("code") == code, doc
    assert isinstance(doc.get("error"), str) and doc["error"], doc


def still_serves(node):
    with node.raw() as c:
        r = c.request("GET", "/healthz")
        assert r.status == 200, r


def expect_error_then_close(c, code, timeout=5):
    r = c.read_response(timeout=timeout)
    assert r.status == code, r
    if r.body:
        assert r.json()["code"] == code
    closed, extra = c.wait_closed(3)
    assert closed, f"connection not closed after {code}"
    assert extra == b"", f"unexpected bytes after the {code}: {extra[:200]!r}"
    return r


@pytest.fixture
def limited(make_node):
    return make_node(extra_args=["--max-key-bytes", "64", "--max-value-bytes", "1024"]).start()


# ---------------------------------------------------------------------------
# malformed requests
# ---------------------------------------------------------------------------

MALFORMED_LINES = [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET /healthz\r\n\r\n",
    b"GET  /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    b"GET healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    b"G(T /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /hea\x00lthz HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    b" GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
]


@pytest.mark.parametrize("raw", MALFORMED_LINES, ids=range(len(MALFORMED_LINES)))
def test_malformed_request_line_400_and_close(node, raw):
    with node.raw() as c:
        c.send(raw)
        expect_error_then_close(c, 400)
    still_serves(node)


BAD_HEADERS = [
    b"Name : v\r\n",
    b"Bad Name: v\r\n",
    b"NoColonHere\r\n",
    b"X-A: 1\r\n  folded continuation\r\n",
    b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
    b"Content-Length: abc\r\n",
    b"Content-Length: 3\r\nContent-Length: 4\r\n",
    b"Content-Length: -1\r\n",
    b": novalue\r\n",
]


@pytest.mark.parametrize("hdr", BAD_HEADERS, ids=range(len(BAD_HEADERS)))
def test_malformed_headers_400_and_close(node, hdr):
    with node.raw() as c:
        c.send(b"PUT /v1/key/hdr HTTP/1.1\r\nHost: x\r\n" + hdr + b"\r\n")
        expect_error_then_close(c, 400)
    still_serves(node)
    assert node.get("hdr").status_code == 404


def test_bad_chunked_framing_400_and_close(node):
    with node.raw() as c:
        c.send(build_request("PUT", "/v1/key/bc", {"Transfer-Encoding": "chunked"}, b"zz\r\nhello\r\n0\r\n\r\n"))
        expect_error_then_close(c, 400)
    assert node.get("bc").status_code == 404


def test_header_section_over_16k_is_431(node):
    with node.raw() as c:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (17 * 1024) + b"\r\n\r\n")
        expect_error_then_close(c, 431)
    still_serves(node)


def test_header_section_over_16k_many_headers_is_431(node):
    hdrs = b"".join(b"X-H%03d: %s\r\n" % (i, b"b" * 200) for i in range(60))  # ~13 KiB
    hdrs += b"X-Last: " + b"c" * 5000 + b"\r\n"
    with node.raw() as c:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + hdrs + b"\r\n")
        expect_error_then_close(c, 431)


def test_header_section_under_16k_is_fine(node):
    with node.raw() as c:
        r = c.request("GET", "/healthz", {"X-Big": "a" * (15 * 1024)})
        assert r.status == 200, r
        r = c.request("GET", "/healthz")
        assert r.status == 200


def test_unterminated_head_over_16k_is_431(node):
    """A head that never ends must not be buffered without bound."""
    with node.raw() as c:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (20 * 1024))
        r = c.read_response(timeout=5)
        assert r.status == 431, r


# ---------------------------------------------------------------------------
# key and value size
# ---------------------------------------------------------------------------

def test_key_size_limit_414(limited):
    n = limited
    assert n.put(b"k" * 64, b"v").status_code == 201
    assert n.put(b"\xff" * 64, b"v").status_code == 201  # 192 chars encoded, 64 bytes decoded
    for key in (b"k" * 65, b"\xff" * 65, b"k" * 5000):
        for method in ("PUT", "GET", "DELETE"):
            with n.raw() as c:  # a fresh connection each: the server may close after 414
                r = c.request(method, kpath(key), body=b"v" if method == "PUT" else None)
            assert r.status == 414, (method, len(key), r)
            assert r.json()["code"] == 414
    assert n.get(b"k" * 64).content == b"v"
    assert len(n.list_all()) == 2


def test_request_target_over_cap_is_414(limited):
    # cap = 3 * 64 + 1024 = 1216 bytes
    with limited.raw() as c:
        r = c.request("GET", "/v1/key/a?x=" + "y" * 1300)
        assert r.status == 414, r
        r2 = None
        try:
            r2 = c.request("GET", "/healthz")
        except Exception:  # the server may close after 414; that is fine
            pass
        if r2 is not None:
            assert r2.status == 200
    still_serves(limited)


def test_value_size_limit_413_and_close(limited):
    n = limited
    assert n.put("ok", b"v" * 1024).status_code == 201
    assert n.get("ok").content == b"v" * 1024
    with n.raw() as c:
        c.send(build_request("PUT", "/v1/key/toobig", {"Content-Length": "1025"}))
        r = expect_error_then_close(c, 413)
        assert r.json()["code"] == 413
    with n.raw() as c:  # a much larger announced body is refused without reading it
        c.send(build_request("PUT", "/v1/key/toobig", {"Content-Length": str(50 * 1024 * 1024)}))
        expect_error_then_close(c, 413)
    assert n.get("toobig").status_code == 404


def test_value_size_limit_chunked_413(limited):
    with limited.raw() as c:
        c.send(build_request("PUT", "/v1/key/chunkbig", {"Transfer-Encoding": "chunked"}, b"") + b"401\r\n")
        try:
            r = c.read_response(timeout=0.5)  # may refuse from the chunk size alone
        except TimeoutError:
            c.send(b"x" * 1025)
            r = c.read_response(timeout=5)
        assert r.status == 413, r
        closed, _ = c.wait_closed(3)
        assert closed
    with limited.raw() as c:  # several small chunks adding up to more than the cap
        c.send(build_request("PUT", "/v1/key/chunkbig", {"Transfer-Encoding": "chunked"}, b""))
        resp = None
        for _ in range(6):
            c.send(b"100\r\n" + b"y" * 256 + b"\r\n")
            try:
                resp = c.read_response(timeout=0.3)
                break
            except TimeoutError:
                continue
        assert resp is not None and resp.status == 413, resp
    assert limited.get("chunkbig").status_code == 404


def test_value_too_large_with_expect_gets_413_not_100(limited):
    with limited.raw() as c:
        c.send(build_request("PUT", "/v1/key/exp", {"Expect": "100-continue", "Content-Length": "5000"}))
        r = c.read_response(timeout=3)
        assert r.status == 413, r


def test_default_value_limit_is_1mib(node):
    mib = 1024 * 1024
    value = bytes(range(256)) * (mib // 256)
    assert node.put("mib", value).status_code == 201
    assert node.get("mib").content == value
    with node.raw() as c:
        c.send(build_request("PUT", "/v1/key/over", {"Content-Length": str(mib + 1)}))
        expect_error_then_close(c, 413)


def test_default_key_limit_is_4096(node):
    assert node.put(b"k" * 4096, b"v").status_code == 201
    with node.raw() as c:
        r = c.request("GET", kpath(b"k" * 4097))
        assert r.status == 414, r


# ---------------------------------------------------------------------------
# routes
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/v1", "/v1/", "/v1/nope", "/v2/key/a", "/v1/keysx", "/healthzz",
                                  "/v1/key_x/a", "/metrics/x"])
def test_unknown_route_404_json(node, path):
    with node.raw() as c:
        r = c.request("GET", path)
        assert_json_status(r, 404)
        assert (r.header("Content-Type") or "").startswith("application/json")
        # keep-alive survives a 404
        assert c.request("GET", "/healthz").status == 200


# ---------------------------------------------------------------------------
# timeouts
# ---------------------------------------------------------------------------

@pytest.fixture
def slow_client_node(make_node):
    return make_node(extra_args=["--client-timeout", "1"]).start()


def _assert_408_or_nothing(data):
    if data:
        rs = parse_responses(data)
        assert rs[0].status == 408, rs


def test_partial_request_head_closed_after_client_timeout(slow_client_node):
    with slow_client_node.raw() as c:
        t0 = time.monotonic()
        c.send(b"GET /v1/key/a HTTP/1.1\r\nHost: x\r\n")
        closed, data = c.wait_closed(6)
        took = time.monotonic() - t0
    assert closed, "partial request was not closed"
    assert 0.8 <= took <= 4.0, took
    assert data, "expected a 408 before the close"
    _assert_408_or_nothing(data)
    still_serves(slow_client_node)


def test_partial_body_closed_after_client_timeout(slow_client_node):
    with slow_client_node.raw() as c:
        t0 = time.monotonic()
        c.send(build_request("PUT", "/v1/key/pb", {"Content-Length": "10"}) + b"abc")
        closed, data = c.wait_closed(6)
        took = time.monotonic() - t0
    assert closed and 0.8 <= took <= 4.0, (closed, took)
    _assert_408_or_nothing(data)
    assert slow_client_node.get("pb").status_code == 404


def test_trickling_client_closed_after_client_timeout(slow_client_node):
    req = build_request("GET", "/v1/key/" + "t" * 100, {"X-Padding": "p" * 200})
    s = socket.create_connection(("127.0.0.1", slow_client_node.http_port), timeout=5)
    data = b""
    closed = False
    t0 = time.monotonic()
    try:
        for i in range(len(req)):
            try:
                s.sendall(req[i:i + 1])
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            s.settimeout(0.3)
            try:
                chunk = s.recv(4096)
                if not chunk:
                    closed = True
                    break
                data += chunk
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed = True
                break
            if time.monotonic() - t0 > 8:
                break
    finally:
        took = time.monotonic() - t0
        s.close()
    assert closed, f"trickling client still connected after {took:.1f}s"
    assert took <= 4.0, took
    _assert_408_or_nothing(data)


def test_slow_but_timely_request_is_served(slow_client_node):
    with slow_client_node.raw() as c:
        c.send(b"GET /healthz HTTP/1.1\r\n")
        time.sleep(0.4)
        c.send(b"Host: x\r\n\r\n")
        assert c.read_response().status == 200
        # the timer restarts with the next request
        time.sleep(0.6)
        c.send(b"GET /healthz HTTP/1.1\r\n")
        time.sleep(0.6)
        c.send(b"Host: x\r\n\r\n")
        assert c.read_response().status == 200


@pytest.fixture
def idle_node(make_node):
    return make_node(extra_args=["--idle-timeout", "1"]).start()


def test_idle_connection_closed_after_idle_timeout(idle_node):
    with idle_node.raw() as c:
        assert c.request("GET", "/healthz").status == 200
        t0 = time.monotonic()
        closed, data = c.wait_closed(6)
        took = time.monotonic() - t0
    assert closed, "idle keep-alive connection was not closed"
    assert 0.5 <= took <= 4.0, took
    _assert_408_or_nothing(data)


def test_silent_connection_closed(idle_node):
    with idle_node.raw() as c:
        t0 = time.monotonic()
        closed, _ = c.wait_closed(6)
        took = time.monotonic() - t0
    assert closed and took <= 4.0, (closed, took)


def test_active_connection_not_closed_by_idle_timeout(idle_node):
    with idle_node.raw() as c:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3:
            r = c.request("GET", "/healthz")
            assert r.status == 200
            time.sleep(0.4)


# ---------------------------------------------------------------------------
# connection limit
# ---------------------------------------------------------------------------

def _open_working(port, deadline):
    while True:
        c = RawHttp(port, timeout=3)
        try:
            r = c.request("GET", "/healthz")
            if r.status == 200:
                return c
        except Exception:
            pass
        c.close()
        assert time.monotonic() < deadline, "could not open a working connection"
        time.sleep(0.1)


def test_max_clients(make_node):
    n = make_node(extra_args=["--max-clients", "5"]).start()
    n.drop_session()  # _open_working waits for the server to free its slot
    deadline = time.monotonic() + 10
    conns = [_open_working(n.http_port, deadline) for _ in range(5)]
    try:
        # the 6th connection is refused: 503 then close, or just closed
        extra = socket.create_connection(("127.0.0.1", n.http_port), timeout=5)
        extra.settimeout(5)
        got = b""
        try:
            try:
                extra.sendall(build_request("GET", "/healthz"))
            except (BrokenPipeError, ConnectionResetError):
                pass
            t0 = time.monotonic()
            while time.monotonic() - t0 < 5:
                chunk = extra.recv(4096)
                if not chunk:
                    break
                got += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        finally:
            extra.close()
        if got:  # refused with an answer: it must be a 503
            assert got.startswith(b"HTTP/1.1 503") or got.startswith(b"HTTP/1.0 503"), got[:200]
        # the first five are unaffected
        for c in conns:
            r = c.request("GET", "/healthz")
            assert r.status == 200, r
        # freeing a slot lets a new client in
        conns.pop().close()
        conns.append(_open_working(n.http_port, time.monotonic() + 5))
    finally:
        for c in conns:
            c.close()


# ---------------------------------------------------------------------------
# in-flight limit
# ---------------------------------------------------------------------------

def _check_burst_results(n, results):
    """results: list of (key, value, Resp). Every request got one answer;
    201 keys are readable; 503s carry Retry-After and wrote nothing."""
    busy = [r for _, _, r in results if r.status == 503]
    for key, value, r in results:
        assert r.status in (201, 503), r
        if r.status == 503:
            assert r.header("Retry-After") is not None, r
            assert r.header("Retry-After").strip().isdigit(), r
    with n.raw() as c:
        for key, value, r in results:
            g = c.request("GET", kpath(key))
            if r.status == 201:
                assert g.status == 200 and g.body == value, (key, g)
            else:
                assert g.status == 404, f"{key!r} answered 503 but was written: {g}"
    return len(busy)


def test_max_inflight_pipelined_burst(make_node):
    n = make_node(extra_args=["--max-inflight", "1"]).start()
    items = [(f"burst{i:03d}", b"value-%d" % i) for i in range(50)]
    with n.raw(timeout=30) as c:
        c.send(b"".join(build_request("PUT", kpath(k), {"X-Request-Id": f"b{i}"}, v)
                        for i, (k, v) in enumerate(items)))
        results = []
        for i, (k, v) in enumerate(items):
            r = c.read_response("PUT", timeout=30)
            assert r.header("X-Request-Id") == f"b{i}", (i, r)
            results.append((k, v, r))
        # nothing more comes: exactly one answer per request
        with pytest.raises(TimeoutError):
            c.read_response(timeout=0.5)
    busy = _check_burst_results(n, results)
    assert busy > 0, "no request was shed with --max-inflight 1 and 50 pipelined PUTs"
    assert busy < 50
    assert n.put("after", b"ok").status_code == 201


def test_max_inflight_concurrent_connections(make_node):
    n = make_node(extra_args=["--max-inflight", "1"]).start()
    results = []
    errors = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def client(ci):
        try:
            items = [(f"c{ci}-{i}", b"v%d-%d" % (ci, i)) for i in range(10)]
            with n.raw(timeout=30) as c:
                start.wait(5)
                c.send(b"".join(build_request("PUT", kpath(k), None, v) for k, v in items))
                out = [(k, v, c.read_response("PUT", timeout=30)) for k, v in items]
            with lock:
                results.extend(out)
        except BaseException as e:  # noqa: B902
            errors.append(e)

    ts = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(40)
        assert not t.is_alive()
    assert not errors, errors
    assert len(results) == 80
    busy = _check_burst_results(n, results)
    assert busy > 0, "no request was shed with --max-inflight 1 and 8 concurrent pipelining clients"
