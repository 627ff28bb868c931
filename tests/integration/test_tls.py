"""TLS on the client ports (issue 7): HTTP and RESP over TLS 1.2+, plain text
refused, mutual TLS, certificate reload on SIGHUP without dropping
connections. Certificates are made per test with the openssl CLI."""
import re
import shutil
import signal
import socket
import ssl
import subprocess
import warnings

import pytest
import requests

from conftest import wait_until


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def certs(tmp_path):
    d = tmp_path / "certs"
    d.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=cairn test CA", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, cn in (("server", "127.0.0.1"), ("server2", "127.0.0.1"), ("client", "client")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
        extra = ["-extfile", "san.ext"] if name.startswith("server") else []
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", *extra, cwd=d)
    return d


def tls_node(make_node, certs, mutual=False):
    args = ["--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key")]
    if mutual:
        args += ["--tls-client-ca", str(certs / "ca.pem")]
    n = make_node(extra_args=args)
    n.start(wait_ready=False)
    sess = requests.Session()
    sess.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override verify
    sess.verify = str(certs / "ca.pem")
    if mutual:
        sess.cert = (str(certs / "client.pem"), str(certs / "client.key"))
    url = f"https://127.0.0.1:{n.http_port}"

    def ready():
        try:
            return sess.get(url + "/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_until(ready, 20, 0.1, "TLS node ready")
    return n, sess, url


def test_https_round_trip_and_plain_text_refused(make_node, certs):
    n, s, url = tls_node(make_node, certs)
    assert s.put(url + "/v1/key/secret", data=b"v").status_code == 201
    assert s.get(url + "/v1/key/secret").content == b"v"
    # a plain-text request to the TLS port fails cleanly, and the node lives on
    with pytest.raises(requests.RequestException):
        requests.get(f"http://127.0.0.1:{n.http_port}/healthz", timeout=3)
    with socket.create_connection(("127.0.0.1", n.http_port), timeout=3) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(3)
        try:
            data = sock.recv(100)
        except (ConnectionResetError, socket.timeout):
            data = b""
        assert not data.startswith(b"HTTP/1.1 200")
    assert s.get(url + "/healthz").status_code == 200


def test_tls_version_at_least_1_2(make_node, certs):
    n, s, url = tls_node(make_node, certs)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(certs / "ca.pem"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    try:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    with pytest.raises((ssl.SSLError, OSError)):
        with socket.create_connection(("127.0.0.1", n.http_port), timeout=3) as sock:
            with ctx.wrap_socket(sock, server_hostname="127.0.0.1"):
                pass
    # That could be this machine's client refusing TLS 1.1 by itself. Show
    # that the server refuses it: a client that offers only TLS 1.1 (at
    # security level 0, which allows it) sends its hello (no local "no
    # protocols available") and gets the server's protocol_version alert.
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{n.http_port}", "-tls1_1",
                        "-cipher", "DEFAULT:@SECLEVEL=0", "-CAfile", str(certs / "ca.pem")],
                       input="", capture_output=True, text=True, timeout=20)
    out = r.stdout + r.stderr
    assert "no protocols available" not in out, out
    assert re.search(r"SSL handshake has read \d+ bytes and written [1-9]\d* bytes", out), out
    assert "Cipher is (NONE)" in out, out
    assert "alert protocol version" in out, out
    # and the same client offering TLS 1.2 gets in
    r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{n.http_port}", "-tls1_2",
                        "-CAfile", str(certs / "ca.pem")],
                       input="", capture_output=True, text=True, timeout=20)
    assert "Protocol  : TLSv1.2" in r.stdout or "New, TLSv1.2" in r.stdout, r.stdout + r.stderr


def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True,
                          text=True, timeout=20)


def test_curl_over_tls_with_cacert_and_basic_auth(make_node, certs, tmp_path):
    """curl --cacert against a TLS node with users: the handshake verifies,
    Basic credentials travel inside TLS, a wrong CA is refused by curl."""
    import base64, hashlib, os
    salt = os.urandom(16)
    key = hashlib.pbkdf2_hmac("sha256", b"tls-pw", salt, 10000, 32)
    b64 = lambda b: base64.b64encode(b).decode().rstrip("=")
    users = tmp_path / "users"
    users.write_text(f"carol:pbkdf2-sha256$10000${b64(salt)}${b64(key)}:rw:\n")
    n = make_node(extra_args=["--tls-cert", str(certs / "server.pem"), "--tls-key",
                              str(certs / "server.key"), "--users-file", str(users)])
    n.start(wait_ready=False)
    url = f"https://127.0.0.1:{n.http_port}"
    ca = str(certs / "ca.pem")
    wait_until(lambda: curl("--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}",
                            url + "/readyz").stdout == "200", 20, 0.1, "TLS node ready")
    out = curl("--cacert", ca, "-u", "carol:tls-pw", "-X", "PUT", "--data-binary", "cv", "-o",
               "/dev/null", "-w", "%{http_code}", url + "/v1/key/ck")
    assert out.stdout == "201", out.stderr
    out = curl("--cacert", ca, "-u", "carol:tls-pw", url + "/v1/key/ck")
    assert out.returncode == 0 and out.stdout == "cv", out.stderr
    out = curl("--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}", url + "/v1/key/ck")
    assert out.stdout == "401"
    # without the CA the handshake fails on the client's side (curl exit 60)
    out = curl("--cacert", str(certs / "client.pem"), url + "/healthz")
    assert out.returncode == 60, (out.returncode, out.stderr)


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli not installed")
def test_redis_cli_over_tls(make_node, certs):
    n, s, url = tls_node(make_node, certs)
    out = subprocess.run(["redis-cli", "--tls", "--cacert", str(certs / "ca.pem"), "-p",
                          str(n.resp_port), "SET", "rk", "rv"], capture_output=True, text=True,
                         timeout=10)
    assert out.stdout.strip() == "OK", out.stderr
    assert s.get(url + "/v1/key/rk").content == b"rv"


def test_mutual_tls_requires_a_client_certificate(make_node, certs):
    n, s, url = tls_node(make_node, certs, mutual=True)
    assert s.put(url + "/v1/key/m", data=b"1").status_code == 201
    anon = requests.Session()
    anon.trust_env = False
    anon.verify = str(certs / "ca.pem")
    with pytest.raises(requests.RequestException):
        anon.get(url + "/v1/key/m", timeout=5)
    assert s.get(url + "/v1/key/m").content == b"1"


def served_serial(port, ca):
    ctx = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        with ctx.wrap_socket(sock, server_hostname="127.0.0.1") as t:
            return t.getpeercert()["serialNumber"]


def test_certificate_reload_on_sighup_keeps_open_connections(make_node, certs):
    n, s, url = tls_node(make_node, certs)
    before = served_serial(n.http_port, certs / "ca.pem")
    assert s.get(url + "/healthz").status_code == 200  # keep-alive connection now open
    shutil.copy(certs / "server2.pem", certs / "server.pem")
    shutil.copy(certs / "server2.key", certs / "server.key")
    n.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: served_serial(n.http_port, certs / "ca.pem") != before, 10, 0.1,
               "new certificate served")
    # the connection opened before the reload still works
    assert s.get(url + "/healthz").status_code == 200
    assert "TLS certificate reloaded" in n.stderr_text()


def test_tls_flag_errors(make_node, certs):
    n = make_node(extra_args=["--tls-cert", str(certs / "server.pem")])
    rc, err = n.run_expect_exit()
    assert rc == 2 and "--tls-key" in err
    # a key that does not match the certificate: refused, naming the flag
    n2 = make_node(extra_args=["--tls-cert", str(certs / "server.pem"), "--tls-key",
                               str(certs / "ca.key")])
    rc, err = n2.run_expect_exit()
    assert rc != 0 and "--tls-key" in err
