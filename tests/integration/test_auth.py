"""Authentication and permissions (docs/security.md, SPEC §1 --users-file, §6).

Written against the contract in docs/security.md: the users file and its
refusal rules, `cairnctl hash-password`, HTTP Basic / Bearer with 401/403,
RESP AUTH / HELLO AUTH with Redis' NOAUTH / WRONGPASS / NOPERM texts,
SIGHUP reload, and that no secret reaches the log. Hashes are made here with
hashlib (PBKDF2-HMAC-SHA256, 10,000 iterations so the suite stays fast)."""
import base64
import hashlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import threading
import time

import pytest
import redis
import requests

from conftest import BUILD_DIR, RawHttp, free_ports, wait_until
from resp_helpers import RespMap, client, raw

CAIRNCTL = BUILD_DIR / "cairnctl"
ITER = 10000
WWW_BASIC = 'Basic realm="cairn", charset="UTF-8"'
WWW_BEARER = 'Bearer realm="cairn"'
NOAUTH = "NOAUTH Authentication required."
WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
NOPERM_KEY = "NOPERM this user has no permissions to access one of the keys used as arguments"


def noperm_cmd(name):
    return f"NOPERM this user has no permissions to run the '{name}' command"


# --------------------------------------------------------------------------
# hashes and users files
# --------------------------------------------------------------------------

def b64(b):
    return base64.b64encode(b).decode().rstrip("=")


def unb64(s):
    assert "=" not in s, f"padding in {s!r}"
    assert re.fullmatch(r"[A-Za-z0-9+/]+", s), f"not standard base64: {s!r}"
    return base64.b64decode(s + "=" * (-len(s) % 4), validate=True)


def make_hash(pw, iterations=ITER, salt=None, keylen=32):
    salt = os.urandom(16) if salt is None else salt
    key = hashlib.pbkdf2_hmac("sha256", pw.encode(), salt, iterations, keylen)
    return f"pbkdf2-sha256${iterations}${b64(salt)}${b64(key)}"


def parse_hash(h):
    parts = h.split("$")
    assert len(parts) == 4 and parts[0] == "pbkdf2-sha256", h
    assert ":" not in h
    assert re.fullmatch(r"[1-9][0-9]*", parts[1]), h
    return int(parts[1]), unb64(parts[2]), unb64(parts[3])


def verify_hash(h, pw):
    it, salt, key = parse_hash(h)
    return hashlib.pbkdf2_hmac("sha256", pw.encode(), salt, it, len(key)) == key


def secret_parts(h):
    """Strings from a hash that must never be printed: the hash, salt, key."""
    out = [h]
    out += [p for p in h.split("$")[2:] if len(p) >= 8]
    return out


USERS = {
    "root": ("root-Pw-7f3k", "admin,rw:"),
    "alice": ("alice-Pw-9qz2", "rw:app/,r:shared/"),
    "ops": ("ops-Pw-1mn4", "admin"),
    "reader": ("reader-Pw-5tt8", "r:"),
    "default": ("default-Pw-2kk0", "r:public/"),
    "nobody": ("nobody-Pw-6ee1", ""),
}


class Users:
    """A users file we control: name -> (password, perms, hash)."""

    def __init__(self, path):
        self.path = path
        self.entries = {}

    def set(self, name, pw, perms, iterations=ITER):
        self.entries[name] = (pw, perms, make_hash(pw, iterations))

    def remove(self, name):
        del self.entries[name]

    def pw(self, name):
        return self.entries[name][0]

    def hashes(self):
        return [h for _, _, h in self.entries.values()]

    def text(self, extra=()):
        lines = ["# cairn users (test)", ""]
        lines += [f"{n}:{h}:{perms}" for n, (pw, perms, h) in self.entries.items()]
        lines += list(extra)
        return "\n".join(lines) + "\n"

    def write(self, extra=()):
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(self.text(extra))
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)


@pytest.fixture
def users(tmp_path):
    u = Users(tmp_path / "users.conf")
    for name, (pw, perms) in USERS.items():
        u.set(name, pw, perms)
    u.write()
    return u


@pytest.fixture
def anode(make_node, users):
    """A single node with the USERS file."""
    return make_node(extra_args=["--users-file", str(users.path)]).start()


# --------------------------------------------------------------------------
# HTTP helpers
# --------------------------------------------------------------------------

_SESSION = requests.Session()
_SESSION.trust_env = False  # no ~/.netrc credentials, no proxies


def basic_value(user, pw):
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


def http(node, method, path, user=None, pw=None, token=None, headers=None, **kw):
    """One request; user= picks Basic credentials (password from USERS unless
    pw= is given), token= sends a Bearer token."""
    h = dict(headers or {})
    if user is not None:
        h["Authorization"] = basic_value(user, pw if pw is not None else USERS[user][0])
    if token is not None:
        h["Authorization"] = "Bearer " + token
    return _SESSION.request(method, node.url(path), headers=h, timeout=15, **kw)


def raw_http(node, method, path, headers=None, body=None):
    with RawHttp(node.http_port, timeout=10) as c:
        return c.request(method, path, headers=headers, body=body)


def assert_error(r, code, message):
    """requests.Response or conftest.Resp: status and JSON error body."""
    status = r.status_code if hasattr(r, "status_code") else r.status
    body = r.text if hasattr(r, "text") else r.body.decode("utf-8", "replace")
    assert status == code, (status, body[:300])
    if code != 401 or body:
        import json
        doc = json.loads(body)
        assert doc.get("error") == message and doc.get("code") == code, doc


def assert_401(resp, message):
    """A raw (RawHttp) 401 with both WWW-Authenticate challenges."""
    assert_error(resp, 401, message)
    joined = ", ".join(resp.header_all("WWW-Authenticate"))
    assert WWW_BASIC in joined, resp.headers
    assert WWW_BEARER in joined, resp.headers


def get_token(node, user, ttl=None, pw=None):
    path = "/v1/auth/token" + (f"?ttl={ttl}" if ttl is not None else "")
    r = http(node, "POST", path, user=user, pw=pw)
    assert r.status_code == 200, (r.status_code, r.text)
    doc = r.json()
    assert doc["user"] == user and isinstance(doc["token"], str) and doc["token"], doc
    return doc


def sighup_and_wait(node, pred, what, timeout=10):
    node.send_signal(signal.SIGHUP)
    return wait_until(pred, timeout, 0.1, what)


# --------------------------------------------------------------------------
# users file: startup refusal
# --------------------------------------------------------------------------

_H = make_hash("bob-Pw-3xy")
_it, _salt, _key = _H.split("$")[1:]
BAD_LINES = {
    "no_separator": "bob",
    "missing_perms_field": f"bob:{_H}",
    "empty_name": f":{_H}:rw:",
    "name_with_space": f"bo b:{_H}:rw:",
    "name_too_long": "b" * 65 + f":{_H}:rw:",
    "not_a_hash": "bob:hunter2-plain-password:rw:",
    "wrong_scheme": f"bob:pbkdf2-sha1${_it}${_salt}${_key}:rw:",
    "bad_base64": f"bob:pbkdf2-sha256$10000$%%%%not*base64%%%${_key}:rw:",
    "iterations_not_a_number": f"bob:pbkdf2-sha256$ten-thousand${_salt}${_key}:rw:",
    "missing_hash_part": f"bob:pbkdf2-sha256$10000${_salt}:rw:",
    "key_too_short": f"bob:{make_hash('bob-Pw-3xy', keylen=12)}:rw:",
    "too_few_iterations": f"bob:{make_hash('bob-Pw-3xy', iterations=9999)}:rw:",
    "duplicate_user": f"alice:{_H}:r:",
    "unknown_grant": f"bob:{_H}:rw:app/,w:other/",
    "unknown_grant_word": f"bob:{_H}:superuser",
    "grant_without_colon": f"bob:{_H}:rw",
}


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_bad_users_file_refused_at_start(make_node, tmp_path, case):
    alice_hash = make_hash("alice-Pw-9qz2")
    path = tmp_path / "users.conf"
    bad = BAD_LINES[case]
    # the bad line is line 4: comments and blank lines count
    path.write_text(f"# users\nalice:{alice_hash}:rw:app/\n\n{bad}\n")
    n = make_node(extra_args=["--users-file", str(path)])
    rc, err = n.run_expect_exit(timeout=6)
    assert rc == 2, (rc, err[-2000:])
    assert str(path) in err, f"message does not name the file:\n{err[-2000:]}"
    assert re.search(r"(line\s*4\b|:4\b)", err), f"message does not name line 4:\n{err[-2000:]}"
    secrets = secret_parts(alice_hash)
    fields = bad.split(":")
    if len(fields) >= 2 and len(fields[1]) >= 8:
        secrets += secret_parts(fields[1])
    for s in secrets:
        assert s not in err, f"refusal message leaks hash material {s!r}:\n{err[-2000:]}"


def test_missing_users_file_refused(make_node, tmp_path):
    path = tmp_path / "no-such-users.conf"
    n = make_node(extra_args=["--users-file", str(path)])
    rc, err = n.run_expect_exit(timeout=15)
    assert rc == 2, (rc, err[-2000:])
    assert str(path) in err, err[-2000:]


def test_unreadable_users_file_refused(make_node, tmp_path):
    # The suite may run as root (chmod 000 does not stop root): a directory
    # cannot be read as a file by anyone.
    path = tmp_path / "users.d"
    path.mkdir()
    n = make_node(extra_args=["--users-file", str(path)])
    rc, err = n.run_expect_exit(timeout=15)
    assert rc == 2, (rc, err[-2000:])
    assert str(path) in err, err[-2000:]
    if os.geteuid() != 0:
        f = tmp_path / "users.conf"
        f.write_text(f"alice:{make_hash('x-pw-12345')}:rw:\n")
        os.chmod(f, 0)
        n2 = make_node(extra_args=["--users-file", str(f)])
        rc, err = n2.run_expect_exit(timeout=15)
        assert rc == 2 and str(f) in err, (rc, err[-2000:])


def test_valid_edge_cases_accepted(make_node, tmp_path):
    """Empty perms, a 64-byte name, exactly 10,000 iterations, several
    grants, comments and blank lines all form a valid file."""
    u = Users(tmp_path / "users.conf")
    long_name = "n" * 64
    u.set(long_name, "long-Pw-1", "rw:x/")
    u.set("empty", "empty-Pw-1", "")
    u.set("multi", "multi-Pw-1", "r:a/,rw:b/,admin")
    u.write(extra=["", "# trailing comment"])
    n = make_node(extra_args=["--users-file", str(u.path)]).start()
    assert http(n, "PUT", "/v1/key/x/1", user=long_name, pw="long-Pw-1", data=b"v").status_code == 201
    assert http(n, "GET", "/v1/key/x/1", user="empty", pw="empty-Pw-1").status_code == 403
    assert http(n, "PUT", "/v1/key/b/1", user="multi", pw="multi-Pw-1", data=b"v").status_code == 201
    assert http(n, "PUT", "/v1/key/a/1", user="multi", pw="multi-Pw-1", data=b"v").status_code == 403
    assert http(n, "GET", "/v1/status", user="multi", pw="multi-Pw-1").status_code == 200


def test_public_listen_allowed_with_users_file(make_node, users):
    """Protected mode: with --users-file a non-loopback address needs no
    --insecure-allow-public."""
    hport, rport = free_ports(2)
    n = make_node(extra_args=["--users-file", str(users.path),
                              "--listen-http", f"0.0.0.0:{hport}", "--listen-resp", f"0.0.0.0:{rport}"])
    n.http_port, n.resp_port = hport, rport
    n.start()
    assert http(n, "GET", "/healthz").status_code == 200
    assert http(n, "GET", "/v1/key/app/x").status_code == 401
    assert http(n, "PUT", "/v1/key/app/x", user="alice", data=b"v").status_code == 201
    with raw(n) as c:
        assert c.cmd("GET", "app/x") == NOAUTH
        assert c.cmd("AUTH", "alice", USERS["alice"][0]) == "OK"
        assert c.cmd("GET", "app/x") == b"v"


# --------------------------------------------------------------------------
# cairnctl hash-password
# --------------------------------------------------------------------------

def cairnctl(*args, stdin=None, timeout=60):
    if not CAIRNCTL.exists():
        pytest.fail(f"cairnctl not found at {CAIRNCTL}")
    p = subprocess.run([str(CAIRNCTL), *args], input=stdin, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def printed_hash(out):
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line, got {out!r}"
    h = lines[0].strip()
    it, salt, key = parse_hash(h)
    assert len(salt) == 16 and len(key) == 32, h
    return h, it


def test_cairnctl_hash_verifies_in_python_and_in_cairnd(make_node, tmp_path):
    rc, out, err = cairnctl("hash-password", "Ctl-Secret-4u", "--iterations", "10000")
    assert rc == 0, err
    h, it = printed_hash(out)
    assert it == 10000
    assert verify_hash(h, "Ctl-Secret-4u") and not verify_hash(h, "Ctl-Secret-4v")
    # a second run uses a fresh salt
    rc, out2, _ = cairnctl("hash-password", "Ctl-Secret-4u", "--iterations", "10000")
    h2, _ = printed_hash(out2)
    assert parse_hash(h2)[1] != parse_hash(h)[1]
    # '-' reads the password from standard input
    rc, out3, err = cairnctl("hash-password", "-", "--iterations", "10000", stdin=b"Stdin-Secret-9\n")
    assert rc == 0, err
    h3, _ = printed_hash(out3)
    assert verify_hash(h3, "Stdin-Secret-9"), "stdin password (newline stripped) does not verify"
    # cairnd accepts both; the Python-made hash of the same password is accepted too
    path = tmp_path / "users.conf"
    path.write_text(f"ctl:{h}:rw:\nstdin:{h3}:r:\npy:{make_hash('Ctl-Secret-4u')}:r:\n")
    n = make_node(extra_args=["--users-file", str(path)]).start()
    assert http(n, "PUT", "/v1/key/k", user="ctl", pw="Ctl-Secret-4u", data=b"v").status_code == 201
    assert http(n, "GET", "/v1/key/k", user="ctl", pw="Ctl-Secret-4v").status_code == 401
    assert http(n, "GET", "/v1/key/k", user="stdin", pw="Stdin-Secret-9").status_code == 200
    assert http(n, "GET", "/v1/key/k", user="py", pw="Ctl-Secret-4u").status_code == 200
    with raw(n) as c:
        assert c.cmd("AUTH", "ctl", "Ctl-Secret-4u") == "OK"
        assert c.cmd("GET", "k") == b"v"


def test_cairnctl_default_iterations(tmp_path):
    rc, out, err = cairnctl("hash-password", "Default-Iter-Pw")
    assert rc == 0, err
    h, it = printed_hash(out)
    assert it >= 600000, f"default iterations {it} < 600000"
    assert verify_hash(h, "Default-Iter-Pw")  # the one slow verification


def test_cairnctl_never_prints_weak_hash():
    rc, out, err = cairnctl("hash-password", "Weak-Pw-1", "--iterations", "9999")
    if rc == 0:
        _, it = printed_hash(out)
        assert it >= 10000, f"cairnctl printed a hash cairnd must refuse ({it} iterations)"
    else:
        assert "Weak-Pw-1" not in out


# --------------------------------------------------------------------------
# HTTP: 401
# --------------------------------------------------------------------------

def test_health_routes_open(anode):
    for path in ("/healthz", "/readyz"):
        assert http(anode, "GET", path).status_code == 200
        assert raw_http(anode, "GET", path, headers={"Authorization": "Basic Zm9vOmJhcg=="}).status == 200


def test_401_without_credentials(anode):
    for method, path in (("GET", "/v1/key/app/x"), ("HEAD", "/v1/key/app/x"), ("DELETE", "/v1/key/app/x"),
                         ("GET", "/v1/keys?prefix=app/"), ("GET", "/v1/keys"), ("GET", "/metrics"),
                         ("GET", "/v1/status"), ("GET", "/v1/cluster"), ("POST", "/v1/auth/token")):
        with RawHttp(anode.http_port, timeout=10) as c:
            c.send(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode()
                   if method == "POST" else f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            r = c.read_response(method)
        if method == "HEAD":
            assert r.status == 401, r
            joined = ", ".join(r.header_all("WWW-Authenticate"))
            assert WWW_BASIC in joined and WWW_BEARER in joined, r
        else:
            assert_401(r, "authentication required")
    # unparseable Authorization headers
    for value in ("Digest username=\"alice\"", "Basic !!!not-base64!!!", "Bearer", "alice:alice-Pw-9qz2"):
        r = raw_http(anode, "GET", "/v1/key/app/x", headers={"Authorization": value})
        assert r.status == 401, (value, r)
        joined = ", ".join(r.header_all("WWW-Authenticate"))
        assert WWW_BASIC in joined and WWW_BEARER in joined, (value, r)
    r = raw_http(anode, "GET", "/v1/key/app/x", headers={"Authorization": "Digest username=\"alice\""})
    assert_401(r, "authentication required")


def test_401_invalid_credentials(anode):
    cases = [("alice", "wrong-password"), ("alice", ""), ("alice", USERS["alice"][0] + "x"),
             ("mallory", "alice-Pw-9qz2"), ("ALICE", USERS["alice"][0]), ("alice", USERS["root"][0])]
    for user, pw in cases:
        r = raw_http(anode, "GET", "/v1/key/app/x", headers={"Authorization": basic_value(user, pw)})
        assert_401(r, "invalid credentials")
    # nothing was written by the refused PUT
    r = http(anode, "PUT", "/v1/key/app/refused", user="alice", pw="wrong", data=b"v")
    assert r.status_code == 401
    assert http(anode, "GET", "/v1/key/app/refused", user="root").status_code == 404


def test_401_with_body_closes_connection(anode):
    with RawHttp(anode.http_port, timeout=10) as c:
        c.send(b"PUT /v1/key/app/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        r = c.read_response("PUT")
        assert_401(r, "authentication required")
        closed, _ = c.wait_closed(5)
        assert closed, "connection left open after a 401 to a request with a body"
    assert http(anode, "GET", "/v1/key/app/x", user="root").status_code == 404


# --------------------------------------------------------------------------
# HTTP: permissions
# --------------------------------------------------------------------------

def test_basic_auth_read_write(anode):
    r = http(anode, "PUT", "/v1/key/app/one", user="alice", data=b"v1")
    assert r.status_code == 201, r.text
    r = http(anode, "GET", "/v1/key/app/one", user="alice")
    assert r.status_code == 200 and r.content == b"v1"
    assert http(anode, "HEAD", "/v1/key/app/one", user="alice").status_code == 200
    assert http(anode, "PUT", "/v1/key/shared/doc", user="root", data=b"s").status_code == 201
    r = http(anode, "GET", "/v1/key/shared/doc", user="alice")
    assert r.status_code == 200 and r.content == b"s"
    assert http(anode, "GET", "/v1/key/app/missing", user="alice").status_code == 404
    assert http(anode, "DELETE", "/v1/key/app/one", user="alice").status_code == 200
    assert http(anode, "GET", "/v1/key/app/one", user="root").status_code == 404
    # default user over HTTP is an ordinary user
    assert http(anode, "PUT", "/v1/key/public/p", user="root", data=b"p").status_code == 201
    assert http(anode, "GET", "/v1/key/public/p", user="default").content == b"p"
    # keep-alive session: credentials on every request
    s = requests.Session()
    s.trust_env = False
    s.headers["Authorization"] = basic_value("alice", USERS["alice"][0])
    for i in range(20):
        assert s.put(anode.url(f"/v1/key/app/ka{i}"), data=b"x", timeout=10).status_code == 201
    s.close()


def test_403_forbidden_keys(anode):
    assert http(anode, "PUT", "/v1/key/other/x", user="root", data=b"o").status_code == 201
    assert http(anode, "PUT", "/v1/key/shared/x", user="root", data=b"s").status_code == 201
    forbidden = [
        ("alice", "GET", "/v1/key/other/x"), ("alice", "HEAD", "/v1/key/other/x"),
        ("alice", "PUT", "/v1/key/other/x"), ("alice", "DELETE", "/v1/key/other/x"),
        ("alice", "PUT", "/v1/key/shared/x"), ("alice", "DELETE", "/v1/key/shared/x"),  # r: only
        ("alice", "GET", "/v1/key/app"), ("alice", "GET", "/v1/key/App/x"),  # byte-for-byte prefix
        ("alice", "PUT", "/v1/key/ap"),
        ("reader", "PUT", "/v1/key/anything"), ("reader", "DELETE", "/v1/key/other/x"),
        ("ops", "GET", "/v1/key/other/x"), ("ops", "PUT", "/v1/key/ops"),  # admin grants no key access
        ("nobody", "GET", "/v1/key/other/x"), ("default", "GET", "/v1/key/other/x"),
    ]
    for user, method, path in forbidden:
        r = http(anode, method, path, user=user, data=b"new" if method == "PUT" else None)
        if method == "HEAD":
            assert r.status_code == 403, (user, method, path, r.status_code)
        else:
            assert_error(r, 403, "permission denied")
    # nothing changed
    assert http(anode, "GET", "/v1/key/other/x", user="root").content == b"o"
    assert http(anode, "GET", "/v1/key/shared/x", user="root").content == b"s"
    assert http(anode, "GET", "/v1/key/anything", user="root").status_code == 404
    # allowed: reader reads everything, root does everything
    assert http(anode, "GET", "/v1/key/other/x", user="reader").content == b"o"
    assert http(anode, "PUT", "/v1/key/zzz", user="root", data=b"z").status_code == 201


def test_list_keys_needs_grant_covering_prefix(anode):
    for k in ("app/a", "app/b", "apple", "shared/s", "other/o"):
        assert http(anode, "PUT", "/v1/key/" + k, user="root", data=b"v").status_code == 201
    ok = [("alice", "app/"), ("alice", "app/a"), ("alice", "shared/"), ("reader", None), ("reader", "o"),
          ("root", None), ("default", "public/")]
    for user, prefix in ok:
        params = {"prefix": prefix} if prefix is not None else {}
        r = http(anode, "GET", "/v1/keys", user=user, params=params)
        assert r.status_code == 200, (user, prefix, r.status_code, r.text)
    r = http(anode, "GET", "/v1/keys", user="alice", params={"prefix": "app/"})
    assert len(r.json()["keys"]) == 2
    denied = [("alice", None), ("alice", ""), ("alice", "ap"), ("alice", "app"), ("alice", "other/"),
              ("ops", None), ("nobody", "app/"), ("default", "pub")]
    for user, prefix in denied:
        params = {"prefix": prefix} if prefix is not None else {}
        r = http(anode, "GET", "/v1/keys", user=user, params=params)
        assert_error(r, 403, "permission denied")


def test_admin_routes(anode):
    for path in ("/metrics", "/v1/status", "/v1/cluster"):
        for user in ("alice", "reader", "nobody", "default"):
            r = http(anode, "GET", path, user=user)
            assert_error(r, 403, "permission denied")
        for user in ("ops", "root"):
            r = http(anode, "GET", path, user=user)
            assert r.status_code == 200, (path, user, r.status_code, r.text[:200])
    assert "cairn_" in http(anode, "GET", "/metrics", user="ops").text
    assert http(anode, "GET", "/v1/status", user="ops").json()["role"] == "leader"


def test_internal_routes_only_from_member_hosts(anode):
    """/internal/v1/... with --users-file: 403 to a connection from a host
    that is no member's peer host (127.0.0.2 here; the member is 127.0.0.1)."""
    s = socket.create_connection(("127.0.0.1", anode.http_port), timeout=10, source_address=("127.0.0.2", 0))
    c = RawHttp.__new__(RawHttp)
    c.sock, c.buf, c.timeout, c.eof = s, b"", 10, False
    with c:
        r = c.request("POST", "/internal/v1/read-index", headers={"Authorization":
                                                                 basic_value("root", USERS["root"][0])}, body=b"")
        assert r.status == 403, r
    r = raw_http(anode, "POST", "/internal/v1/read-index", body=b"")
    assert r.status not in (401, 403), r


# --------------------------------------------------------------------------
# HTTP: Bearer tokens
# --------------------------------------------------------------------------

def test_bearer_tokens(anode, make_node, users):
    assert http(anode, "PUT", "/v1/key/app/t", user="root", data=b"tv").status_code == 201
    doc = get_token(anode, "alice")
    assert doc["expires_in"] == 3600
    tok = doc["token"]
    r = http(anode, "GET", "/v1/key/app/t", token=tok)
    assert r.status_code == 200 and r.content == b"tv"
    assert http(anode, "PUT", "/v1/key/app/t2", token=tok, data=b"x").status_code == 201
    assert_error(http(anode, "GET", "/v1/key/other/x", token=tok), 403, "permission denied")
    assert_error(http(anode, "GET", "/v1/status", token=tok), 403, "permission denied")
    # tampered / garbage tokens
    mid = len(tok) // 2
    bad = tok[:mid] + ("A" if tok[mid] != "A" else "B") + tok[mid + 1:]
    for t in (bad, tok + "x", tok[:-1], "not-a-token", "a.b.c"):
        r = raw_http(anode, "GET", "/v1/key/app/t", headers={"Authorization": "Bearer " + t})
        assert_401(r, "invalid credentials")
    # a token is not a password
    assert http(anode, "GET", "/v1/key/app/t", user="alice", pw=tok).status_code == 401
    # needs authentication itself
    r = http(anode, "POST", "/v1/auth/token")
    assert r.status_code == 401
    assert http(anode, "POST", "/v1/auth/token", user="alice", pw="wrong").status_code == 401
    # any authenticated user, even one without grants
    assert get_token(anode, "nobody")["user"] == "nobody"
    # ttl
    assert get_token(anode, "alice", ttl=86400)["expires_in"] == 86400
    for ttl in ("0", "86401", "-5", "abc"):
        r = http(anode, "POST", f"/v1/auth/token?ttl={ttl}", user="alice")
        assert r.status_code == 400, (ttl, r.status_code, r.text)
    short = get_token(anode, "alice", ttl=1)
    assert short["expires_in"] == 1
    assert http(anode, "GET", "/v1/key/app/t", token=short["token"]).status_code == 200
    wait_until(lambda: http(anode, "GET", "/v1/key/app/t", token=short["token"]).status_code == 401, 5, 0.2,
               "a ttl=1 token to expire")
    assert http(anode, "GET", "/v1/key/app/t", token=tok).status_code == 200
    # another node (same users file) does not accept this node's token
    other = make_node(extra_args=["--users-file", str(users.path)]).start()
    assert http(other, "GET", "/v1/key/app/t", token=tok).status_code == 401
    # a restart invalidates tokens
    anode.restart()
    r = raw_http(anode, "GET", "/v1/key/app/t", headers={"Authorization": "Bearer " + tok})
    assert_401(r, "invalid credentials")
    assert http(anode, "GET", "/v1/key/app/t", user="alice").status_code == 200


def test_token_dies_with_user_or_password(anode, users):
    users.set("carol", "carol-Pw-1", "rw:c/")
    users.set("dave", "dave-Pw-1", "rw:d/")
    users.write()
    sighup_and_wait(anode, lambda: http(anode, "GET", "/v1/key/c/x", user="carol", pw="carol-Pw-1").status_code
                    == 404, "carol added")
    t_carol = get_token(anode, "carol", pw="carol-Pw-1")["token"]
    r = http(anode, "GET", "/v1/key/d/x", user="dave", pw="dave-Pw-1")
    assert r.status_code == 404
    t_dave = get_token(anode, "dave", pw="dave-Pw-1")["token"]
    t_reader = get_token(anode, "reader")["token"]
    assert http(anode, "GET", "/v1/key/c/x", token=t_carol).status_code == 404
    # carol removed, dave's password changed
    users.remove("carol")
    users.set("dave", "dave-Pw-2", "rw:d/")
    users.write()
    sighup_and_wait(anode, lambda: http(anode, "GET", "/v1/key/c/x", token=t_carol).status_code == 401,
                    "token of removed user to stop working")
    wait_until(lambda: http(anode, "GET", "/v1/key/d/x", token=t_dave).status_code == 401, 10, 0.1,
               "token of user with new password to stop working")
    assert http(anode, "GET", "/v1/key/c/x", user="carol", pw="carol-Pw-1").status_code == 401
    assert http(anode, "GET", "/v1/key/d/x", user="dave", pw="dave-Pw-1").status_code == 401
    assert http(anode, "GET", "/v1/key/d/x", user="dave", pw="dave-Pw-2").status_code == 404
    # an unchanged user's token lives on
    assert http(anode, "GET", "/v1/key/c/x", token=t_reader).status_code == 404


# --------------------------------------------------------------------------
# SIGHUP reload
# --------------------------------------------------------------------------

def test_reload_add_remove_change(anode, users):
    assert http(anode, "GET", "/v1/key/e/x", user="erin", pw="erin-Pw-1").status_code == 401
    users.set("erin", "erin-Pw-1", "rw:e/")
    users.remove("reader")
    users.set("alice", "alice-New-Pw", "rw:app/")  # new password, shared/ grant dropped
    users.write()
    sighup_and_wait(anode, lambda: http(anode, "PUT", "/v1/key/e/x", user="erin", pw="erin-Pw-1",
                                        data=b"e").status_code == 201, "new user erin")
    assert http(anode, "GET", "/v1/key/e/x", user="reader").status_code == 401
    assert http(anode, "GET", "/v1/key/app/x", user="alice").status_code == 401  # old password
    assert http(anode, "GET", "/v1/key/app/x", user="alice", pw="alice-New-Pw").status_code == 404
    assert http(anode, "GET", "/v1/key/shared/x", user="alice", pw="alice-New-Pw").status_code == 403
    with raw(anode) as c:
        assert c.cmd("AUTH", "alice", USERS["alice"][0]) == WRONGPASS
        assert c.cmd("AUTH", "reader", USERS["reader"][0]) == WRONGPASS
        assert c.cmd("AUTH", "erin", "erin-Pw-1") == "OK"
        assert c.cmd("GET", "e/x") == b"e"


def test_bad_reload_keeps_old_users(anode, users):
    before = len(anode.stderr_text())
    good_text = users.path.read_text()
    newcomer = make_hash("frank-Pw-1")
    users.path.write_text(good_text + f"frank:{newcomer}:rw:\nalice:{newcomer}:rw:\n")  # duplicate alice
    anode.send_signal(signal.SIGHUP)

    def logged():
        new = anode.stderr_text()[before:]
        lines = [ln for ln in new.splitlines() if "users" in ln.lower() or str(users.path) in ln]
        return [ln for ln in lines if re.search(r"error|warn", ln, re.I)]
    lines = wait_until(logged, 10, 0.1, "an error logged for the bad users file")
    for s in secret_parts(newcomer) + [h for h in users.hashes()]:
        assert s not in anode.stderr_text(), "reload error leaks a hash"
    assert anode.running
    assert http(anode, "GET", "/v1/key/app/x", user="alice").status_code == 404
    assert http(anode, "GET", "/v1/key/app/x", user="frank", pw="frank-Pw-1").status_code == 401
    with raw(anode) as c:
        assert c.cmd("AUTH", "alice", USERS["alice"][0]) == "OK"
    # a missing file on reload: same
    users.path.unlink()
    before = len(anode.stderr_text())
    anode.send_signal(signal.SIGHUP)
    wait_until(logged, 10, 0.1, "an error logged for the missing users file")
    assert http(anode, "PUT", "/v1/key/app/y", user="alice", data=b"y").status_code == 201
    # and a good file afterwards is picked up
    users.set("frank", "frank-Pw-1", "rw:")
    users.write()
    sighup_and_wait(anode, lambda: http(anode, "GET", "/v1/key/app/y", user="frank",
                                        pw="frank-Pw-1").status_code == 200, "frank after a good reload")
    assert lines


def test_no_secrets_in_log(make_node, users):
    n = make_node(extra_args=["--users-file", str(users.path), "--log-level", "debug"]).start()
    secrets = [pw for pw, _ in USERS.values()] + ["Wrong-Guess-77", "New-Alice-Pw-88"]
    for h in users.hashes():
        secrets += secret_parts(h)
    secrets.append(basic_value("alice", USERS["alice"][0]).split()[1])
    # traffic of every kind
    assert http(n, "PUT", "/v1/key/app/x", user="alice", data=b"v").status_code == 201
    assert http(n, "GET", "/v1/key/app/x", user="alice", pw="Wrong-Guess-77").status_code == 401
    assert http(n, "GET", "/v1/key/app/x", user="mallory", pw="Wrong-Guess-77").status_code == 401
    assert http(n, "GET", "/v1/key/other", user="alice").status_code == 403
    tok = get_token(n, "alice")["token"]
    secrets.append(tok)
    assert http(n, "GET", "/v1/key/app/x", token=tok).status_code == 200
    assert http(n, "GET", "/v1/key/app/x", token=tok[:-2] + "zz").status_code == 401
    with raw(n) as c:
        assert c.cmd("AUTH", "alice", "Wrong-Guess-77") == WRONGPASS
        assert c.cmd("AUTH", "Wrong-Guess-77") == WRONGPASS
        assert c.cmd("HELLO", "3", "AUTH", "alice", USERS["alice"][0])[b"proto"] == 3
        assert c.cmd("CONFIG", "GET", "requirepass") == noperm_cmd("config|get")
    users.set("alice", "New-Alice-Pw-88", "rw:app/")
    users.write()
    secrets += secret_parts(users.entries["alice"][2])
    sighup_and_wait(n, lambda: http(n, "GET", "/v1/key/app/x", user="alice", pw="New-Alice-Pw-88").status_code
                    == 200, "password change")
    users.path.write_text(users.text() + "broken line without hash\n" +
                          f"alice:{users.entries['alice'][2]}:rw:\n")
    before = len(n.stderr_text())
    n.send_signal(signal.SIGHUP)
    # the reload's error line is what could leak: wait for it, then look
    wait_until(lambda: [ln for ln in n.stderr_text()[before:].splitlines()
                        if re.search(r"error|warn", ln, re.I)
                        and ("users" in ln.lower() or str(users.path) in ln)],
               10, 0.1, "the reload error for the bad users file")
    rc = n.stop()
    assert rc == 0
    log = n.all_stderr()
    assert log.strip(), "empty log"
    for s in secrets:
        assert s not in log, f"secret {s!r} appears in the log"


# --------------------------------------------------------------------------
# RESP
# --------------------------------------------------------------------------

def test_resp_noauth_before_auth(anode):
    with raw(anode) as c:
        for cmd in (("PING",), ("GET", "app/x"), ("SET", "app/x", "v"), ("CONFIG", "GET", "maxmemory"),
                    ("SELECT", "0"), ("CLIENT", "ID"), ("DBSIZE",), ("KEYS", "*")):
            assert c.cmd(*cmd) == NOAUTH, cmd
        r = c.cmd("HELLO", "3")
        assert r.startswith("NOAUTH ") and r != NOAUTH, r
        assert "HELLO must be called with the client already authenticated" in r, r
        r = c.cmd("HELLO")
        assert r.startswith("NOAUTH"), r
        assert c.cmd("RESET") == "RESET"
        assert c.cmd("PING") == NOAUTH
        assert c.cmd("QUIT") == "OK"
        closed, _ = c.wait_closed(5)
        assert closed
    # redis-py without credentials
    with pytest.raises(redis.RedisError, match="Authentication required"):
        client(anode).get("app/x")


def test_resp_auth_forms(anode):
    with raw(anode) as c:
        assert c.cmd("AUTH", "alice", "nope") == WRONGPASS
        assert c.cmd("AUTH", "mallory", "x") == WRONGPASS
        assert c.cmd("AUTH", "nope") == WRONGPASS  # default user, wrong password
        assert c.cmd("GET", "app/x") == NOAUTH
        assert c.cmd("AUTH", "alice", USERS["alice"][0]) == "OK"
        assert c.cmd("SET", "app/x", "1") == "OK"
        assert c.cmd("GET", "app/x") == b"1"
    with raw(anode) as c:  # AUTH <password>: the user named default
        assert c.cmd("AUTH", USERS["default"][0]) == "OK"
        assert c.cmd("GET", "public/x") == None  # noqa: E711 (RESP null)
        assert c.cmd("GET", "app/x") == NOPERM_KEY
        assert c.cmd("AUTH", "default", USERS["default"][0]) == "OK"
    with raw(anode) as c:  # HELLO 3 AUTH
        r = c.cmd("HELLO", "3", "AUTH", "alice", "wrong")
        assert r == WRONGPASS
        assert c.cmd("PING") == NOAUTH
        r = c.cmd("HELLO", "3", "AUTH", "alice", USERS["alice"][0])
        assert isinstance(r, RespMap) and r[b"proto"] == 3, r
        assert c.raw_reply("GET", "app/nothing") == b"_\r\n"
        assert c.cmd("GET", "app/x") == b"1"
    with raw(anode) as c:  # HELLO 2 AUTH
        r = c.cmd("HELLO", "2", "AUTH", "alice", USERS["alice"][0])
        assert isinstance(r, list) and dict(zip(r[0::2], r[1::2]))[b"proto"] == 2, r
        assert c.cmd("GET", "app/x") == b"1"
    # redis-py
    r = client(anode, username="alice", password=USERS["alice"][0], decode_responses=True)
    assert r.set("app/py", "v") is True and r.get("app/py") == "v"
    r = client(anode, password=USERS["default"][0], decode_responses=True)
    assert r.get("public/none") is None
    with pytest.raises(redis.RedisError, match="invalid username-password pair"):
        client(anode, username="alice", password="bad").ping()
    with pytest.raises(redis.RedisError, match="no permissions"):
        client(anode, username="alice", password=USERS["alice"][0]).get("other/x")


def test_resp_auth_inside_multi(anode):
    """AUTH and HELLO AUTH queue inside MULTI and run in their place in
    EXEC (as Redis): the password check, which runs on the thread pool,
    makes EXEC wait for it; a wrong password answers WRONGPASS in its slot
    and keeps the user; a transaction that does not run changes nobody."""
    with raw(anode) as c:
        assert c.cmd("AUTH", "alice", USERS["alice"][0]) == "OK"
        assert c.cmd("MULTI") == "OK"
        assert c.cmd("SET", "app/m", "1") == "QUEUED"
        assert c.cmd("AUTH", "reader", USERS["reader"][0]) == "QUEUED"
        assert c.cmd("AUTH", "root", "wrong") == "QUEUED"
        assert c.cmd("GET", "app/m") == "QUEUED"
        assert c.cmd("EXEC") == ["OK", "OK", WRONGPASS, b"1"]
        # reader from here on: reads everything, writes nothing
        assert c.cmd("GET", "app/m") == b"1"
        assert c.cmd("SET", "app/m", "2").startswith("NOPERM"), "reader wrote"
        # HELLO AUTH: a new user and protocol 3 for what follows EXEC
        assert c.cmd("MULTI") == "OK"
        assert c.cmd("HELLO", "3", "AUTH", "alice", USERS["alice"][0]) == "QUEUED"
        r = c.cmd("EXEC")
        assert isinstance(r, list) and isinstance(r[0], RespMap) and r[0][b"proto"] == 3, r
        assert c.raw_reply("GET", "app/nothing") == b"_\r\n"
        assert c.cmd("SET", "app/m", "3") == "OK"
        # WATCH changed: nil, and still alice
        assert c.cmd("WATCH", "app/m") == "OK"
        assert c.cmd("SET", "app/m", "4") == "OK"
        assert c.cmd("MULTI") == "OK"
        assert c.cmd("AUTH", "reader", USERS["reader"][0]) == "QUEUED"
        assert c.cmd("EXEC") == None  # noqa: E711 (RESP null)
        assert c.cmd("SET", "app/m", "5") == "OK"


def test_sort_patterns_need_access_to_every_key(anode):
    """SORT's BY pattern and GET read keys no argument names: as in Redis,
    only a user who may read every key may use them (alice may read app/
    and shared/ only; reader may read everything, root too)."""
    with raw(anode) as c:
        assert c.cmd("AUTH", "root", USERS["root"][0]) == "OK"
        assert c.cmd("RPUSH", "app/l", "2", "1") == 2
        assert c.cmd("SET", "w_1", "b") == "OK"
    with raw(anode) as c:
        assert c.cmd("AUTH", "alice", USERS["alice"][0]) == "OK"
        assert c.cmd("SORT", "app/l") == [b"1", b"2"]
        assert c.cmd("SORT", "app/l", "BY", "nosort") == [b"2", b"1"]  # no pattern: no lookups
        assert c.cmd("SORT", "app/l", "BY", "w_*") == \
            "ERR BY option of SORT denied due to insufficient ACL permissions."
        assert c.cmd("SORT_RO", "app/l", "GET", "#") == \
            "ERR GET option of SORT denied due to insufficient ACL permissions."
        assert c.cmd("SORT", "app/l", "GET", "w_*", "STORE", "app/out") == \
            "ERR GET option of SORT denied due to insufficient ACL permissions."
        assert c.cmd("EXISTS", "app/out") == 0
    for user in ("reader", "root"):
        with raw(anode) as c:
            assert c.cmd("AUTH", user, USERS[user][0]) == "OK"
            assert c.cmd("SORT_RO", "app/l", "BY", "nosort", "GET", "w_*", "GET", "#") == \
                [None, b"2", b"b", b"1"]


def test_resp_noperm(anode):
    with raw(anode) as c:
        assert c.cmd("AUTH", "root", USERS["root"][0]) == "OK"
        assert c.cmd("SET", "other/x", "o") == "OK"
        assert c.cmd("SET", "shared/x", "s") == "OK"
    with raw(anode) as c:
        assert c.cmd("AUTH", "alice", USERS["alice"][0]) == "OK"
        assert c.cmd("GET", "other/x") == NOPERM_KEY
        assert c.cmd("SET", "other/x", "a") == NOPERM_KEY
        assert c.cmd("GET", "shared/x") == b"s"
        assert c.cmd("SET", "shared/x", "a") == NOPERM_KEY  # r: cannot write
        assert c.cmd("DEL", "shared/x") == NOPERM_KEY
        assert c.cmd("MSET", "app/a", "1", "other/b", "2") == NOPERM_KEY
        assert c.cmd("EXISTS", "app/a") == 0  # all or nothing
        assert c.cmd("MGET", "app/a", "other/x") == NOPERM_KEY
        assert c.cmd("DEL", "app/a", "other/x") == NOPERM_KEY
        assert c.cmd("GET", "App/x") == NOPERM_KEY
        assert c.cmd("CONFIG", "GET", "maxmemory") == noperm_cmd("config|get")
        assert c.cmd("CONFIG", "SET", "maxmemory", "0") == noperm_cmd("config|set")
        assert c.cmd("INFO") == noperm_cmd("info")
        assert c.cmd("CLIENT", "LIST") == noperm_cmd("client|list")
        assert c.cmd("CLIENT", "KILL", "ID", "999999") == noperm_cmd("client|kill")
        assert isinstance(c.cmd("CLIENT", "ID"), int)  # not an admin command
        assert c.cmd("SHUTDOWN", "NOSAVE") == noperm_cmd("shutdown")
        assert c.cmd("PING") == "PONG"
    with raw(anode) as c:
        assert c.cmd("AUTH", "ops", USERS["ops"][0]) == "OK"
        assert isinstance(c.cmd("CONFIG", "GET", "maxmemory"), list)
        assert isinstance(c.cmd("INFO"), bytes)
        assert isinstance(c.cmd("CLIENT", "LIST"), bytes)
        assert c.cmd("GET", "other/x") == NOPERM_KEY  # admin alone has no key access
    with raw(anode) as c:
        assert c.cmd("AUTH", "nobody", USERS["nobody"][0]) == "OK"
        assert c.cmd("GET", "other/x") == NOPERM_KEY
        assert c.cmd("PING") == "PONG"
    with raw(anode) as c:
        assert c.cmd("AUTH", "root", USERS["root"][0]) == "OK"
        assert c.cmd("GET", "other/x") == b"o" and c.cmd("GET", "shared/x") == b"s"
    # redis-py sees a NoPermissionError-like error with the text
    r = client(anode, username="alice", password=USERS["alice"][0], decode_responses=True)
    with pytest.raises(redis.RedisError, match=re.escape("no permissions to run the 'config|get' command")):
        r.config_get("maxmemory")


def test_resp_keyspace_commands(anode):
    with raw(anode) as c:
        assert c.cmd("AUTH", "root", USERS["root"][0]) == "OK"
        assert c.cmd("MSET", "app/1", "a", "app/2", "b", "apple", "c", "other/1", "d", "shared/1", "e") == "OK"
    with raw(anode) as c:
        assert c.cmd("AUTH", "alice", USERS["alice"][0]) == "OK"
        assert sorted(c.cmd("KEYS", "app/*")) == [b"app/1", b"app/2"]
        assert c.cmd("KEYS", "app/1") == [b"app/1"]
        assert sorted(c.cmd("KEYS", "shared/*")) == [b"shared/1"]
        assert c.cmd("KEYS", "app/\\*") == []  # literal prefix "app/"
        for pat in ("*", "ap*", "app", "a?p/*", "[a]pp/*", "other/*", "\\app/*"):
            r = c.cmd("KEYS", pat)
            assert isinstance(r, str) and r.startswith("NOPERM"), (pat, r)
        cursor, keys = c.cmd("SCAN", "0", "MATCH", "app/*", "COUNT", "1000")
        assert sorted(keys) == [b"app/1", b"app/2"] and cursor == b"0"
        for args in (("SCAN", "0"), ("SCAN", "0", "MATCH", "*"), ("SCAN", "0", "MATCH", "other*"),
                     ("SCAN", "0", "COUNT", "10"), ("DBSIZE",), ("RANDOMKEY",), ("FLUSHALL",), ("FLUSHDB",)):
            r = c.cmd(*args)
            assert isinstance(r, str) and r.startswith("NOPERM"), (args, r)
    # redis-py scan_iter under the granted prefix
    r = client(anode, username="alice", password=USERS["alice"][0], decode_responses=True)
    assert sorted(r.scan_iter(match="app/*")) == ["app/1", "app/2"]
    with raw(anode) as c:
        assert c.cmd("AUTH", "reader", USERS["reader"][0]) == "OK"
        assert c.cmd("DBSIZE") == 5
        assert len(c.cmd("KEYS", "*")) == 5
        assert c.cmd("SCAN", "0", "COUNT", "1000")[0] == b"0"
        assert isinstance(c.cmd("RANDOMKEY"), bytes)
        for args in (("FLUSHALL",), ("FLUSHDB",), ("SET", "x", "1")):
            r = c.cmd(*args)
            assert isinstance(r, str) and r.startswith("NOPERM"), (args, r)
        assert c.cmd("DBSIZE") == 5
    with raw(anode) as c:
        assert c.cmd("AUTH", "root", USERS["root"][0]) == "OK"
        assert c.cmd("FLUSHALL") == "OK"
        assert c.cmd("DBSIZE") == 0


def test_resp_reset_deauthenticates(anode):
    with raw(anode) as c:
        assert c.cmd("AUTH", "alice", USERS["alice"][0]) == "OK"
        assert c.cmd("SET", "app/r", "1") == "OK"
        assert c.cmd("RESET") == "RESET"
        assert c.cmd("GET", "app/r") == NOAUTH
        assert c.cmd("PING") == NOAUTH
        assert c.cmd("AUTH", "alice", USERS["alice"][0]) == "OK"
        assert c.cmd("GET", "app/r") == b"1"


def test_resp_removed_user_deauthenticated(anode, users):
    with raw(anode) as c, raw(anode) as keep:
        assert c.cmd("AUTH", "alice", USERS["alice"][0]) == "OK"
        assert keep.cmd("AUTH", "reader", USERS["reader"][0]) == "OK"
        assert c.cmd("SET", "app/d", "1") == "OK"
        users.remove("alice")
        users.write()
        sighup_and_wait(anode, lambda: c.cmd("GET", "app/d") == NOAUTH, "alice's connection de-authenticated")
        assert keep.cmd("GET", "app/d") == b"1"


def test_redis_cli_with_credentials(anode):
    if shutil.which("redis-cli") is None:
        pytest.skip("redis-cli not installed")

    def cli(*args):
        p = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(anode.resp_port), *args],
                           capture_output=True, timeout=30)
        return p.returncode, p.stdout.decode("latin-1"), p.stderr.decode("latin-1")

    pw = USERS["alice"][0]
    assert cli("--user", "alice", "--pass", pw, "--no-auth-warning", "SET", "app/cli", "v")[1] == "OK\n"
    assert cli("--user", "alice", "--pass", pw, "--no-auth-warning", "GET", "app/cli")[1] == "v\n"
    assert cli("--user", "alice", "--pass", pw, "--no-auth-warning", "-3", "GET", "app/cli")[1] == "v\n"
    assert cli("--user", "root", "-a", USERS["root"][0], "--no-auth-warning", "GET", "app/cli")[1] == "v\n"
    # -a alone: the default user
    assert cli("-a", USERS["default"][0], "--no-auth-warning", "GET", "public/none")[1] == "\n"
    assert "NOPERM" in cli("-a", USERS["default"][0], "--no-auth-warning", "GET", "app/cli")[1]
    assert cli("GET", "app/cli")[1].strip() == NOAUTH
    rc, out, err = cli("--user", "alice", "--pass", "wrong", "--no-auth-warning", "GET", "app/cli")
    assert "WRONGPASS" in out + err and "v\n" != out, (out, err)
    rc, out, err = cli("--user", "alice", "--pass", pw, "--no-auth-warning", "--scan", "--pattern", "app/*")
    assert out.split() == ["app/cli"], (out, err)


# --------------------------------------------------------------------------
# password checks: cache and concurrency
# --------------------------------------------------------------------------

def pbkdf2_seconds(iterations):
    t = time.perf_counter()
    hashlib.pbkdf2_hmac("sha256", b"x", b"s" * 16, iterations, 32)
    return time.perf_counter() - t


def iterations_for(seconds):
    per = pbkdf2_seconds(200000) / 200000
    return max(200000, min(10_000_000, int(seconds / per)))


def test_many_connections_same_password(anode):
    results = []
    errors = []

    def worker(i):
        try:
            r = client(anode, username="alice", password=USERS["alice"][0], decode_responses=True)
            r.set(f"app/c{i}", str(i))
            results.append(r.get(f"app/c{i}") == str(i))
            r.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    ts = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(40)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert not errors, errors[:3]
    assert len(results) == 40 and all(results)


@pytest.mark.timeout_s(120)
def test_successful_check_is_cached(make_node, users):
    it = iterations_for(0.4)
    users.set("slow", "slow-Pw-1", "rw:s/", iterations=it)
    users.write()
    t_check = pbkdf2_seconds(it)
    n = make_node(extra_args=["--users-file", str(users.path)]).start()
    durations = []
    for i in range(12):  # a new connection each time, same credentials
        t = time.monotonic()
        with requests.Session() as s:  # a new connection each time
            s.trust_env = False
            r = s.get(n.url("/v1/key/s/x"), headers={"Authorization": basic_value("slow", "slow-Pw-1")},
                      timeout=30)
        durations.append(time.monotonic() - t)
        assert r.status_code == 404, r.text
    assert durations[0] > t_check / 4, (f"the first request did not pay for a check ({durations[0]:.3f}s, "
                                        f"check {t_check:.3f}s): is the slow hash verified at all?")
    later = statistics.median(durations[1:])
    assert later < t_check / 3, (f"requests after the first still pay the check: median {later:.3f}s, "
                                 f"check {t_check:.3f}s, all {durations}")
    rtimes = []
    for i in range(12):
        with raw(n) as c:
            t = time.monotonic()
            assert c.cmd("AUTH", "slow", "slow-Pw-1") == "OK"
            rtimes.append(time.monotonic() - t)
    assert statistics.median(rtimes) < t_check / 3, (rtimes, t_check)
    # a wrong password is never cached as good
    with raw(n) as c:
        assert c.cmd("AUTH", "slow", "slow-Pw-2") == WRONGPASS


@pytest.mark.timeout_s(120)
def test_password_check_does_not_block_event_loop(make_node, users):
    it = iterations_for(1.0)
    users.set("slow", "slow-Pw-1", "rw:s/", iterations=it)
    users.write()
    n = make_node(extra_args=["--users-file", str(users.path)]).start()
    results = {}

    def bad_auth(i):
        with raw(n, timeout=60) as c:
            t = time.monotonic()
            results[i] = (c.cmd("AUTH", "slow", f"wrong-{i}", timeout=60), time.monotonic() - t)

    with raw(n) as pinger:
        assert pinger.cmd("AUTH", "root", USERS["root"][0]) == "OK"
        ts = [threading.Thread(target=bad_auth, args=(i,), daemon=True) for i in range(3)]
        for t in ts:
            t.start()
        lat = []
        deadline = time.monotonic() + 60
        while any(t.is_alive() for t in ts) and time.monotonic() < deadline:
            t0 = time.monotonic()
            assert pinger.cmd("PING") == "PONG"
            h = requests.get(n.url("/healthz"), timeout=5)
            assert h.status_code == 200
            lat.append(time.monotonic() - t0)
            time.sleep(0.02)
        for t in ts:
            t.join(5)
    assert len(results) == 3
    for i, (reply, dur) in results.items():
        assert reply == WRONGPASS, reply
    slowest = max(d for _, d in results.values())
    assert slowest > 0.3, f"wrong-password checks took only {slowest:.3f}s: nothing overlapped"
    assert len(lat) >= 5, lat
    assert max(lat) < 0.35, f"PING+healthz stalled {max(lat):.3f}s while checks ran ({slowest:.2f}s)"
