"""TLS between cluster members (issue 7): when a node serves its client
ports over TLS, a follower reaches the leader's HTTP port over TLS too, for
forwarded writes, read-index requests and --join, checking the leader's
certificate (against --tls-client-ca, else the node's own --tls-cert file)
and its IP address, and presenting its own certificate (mutual TLS).

The Raft peer port speaks TLS too (replica/transport_mux.c over
net/tls_pump.c): mutually authenticated with the same certificates and
trust, so a member whose certificate is not trusted, or does not name its
address, takes no part at all. Certificates are made per test with the
openssl CLI (EC P-256 keys: quick to generate)."""
import json
import signal
import socket
import struct
import subprocess
import time

import pytest
import redis
import requests

from conftest import wait_until

CLUSTER_ARGS = ["--write-timeout", "3"]


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d, name, cn):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={cn}",
            cwd=d)


def make_leaf(d, name, cn, ca, san="IP:127.0.0.1"):
    """name.pem (the leaf), name.key, and name-chain.pem (leaf + its CA)."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
    extra = []
    if san:
        (d / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        extra = ["-extfile", f"{name}.ext"]
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", *extra, cwd=d)
    (d / f"{name}-chain.pem").write_bytes((d / f"{name}.pem").read_bytes()
                                          + (d / f"{ca}.pem").read_bytes())


@pytest.fixture
def certs(tmp_path):
    """One cluster CA with node certificates (IP SAN 127.0.0.1) and a client
    certificate; a second, unrelated CA with a node certificate of its own;
    a certificate of the cluster CA for another address."""
    d = tmp_path / "certs"
    d.mkdir()
    make_ca(d, "ca", "cairn cluster CA")
    for i in range(1, 5):
        make_leaf(d, f"node{i}", f"node{i}", "ca")
    make_leaf(d, "client", "client", "ca", san=None)
    make_leaf(d, "elsewhere", "127.0.0.1", "ca", san="IP:127.0.0.2,DNS:localhost")
    make_ca(d, "rogue-ca", "some other CA")
    make_leaf(d, "rogue", "rogue", "rogue-ca")
    return d


class TlsNode:
    """A Cairnd plus an HTTPS session that trusts its CA."""

    def __init__(self, node, ca, client_cert=None):
        self.node = node
        self.s = requests.Session()
        self.s.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
        self.s.verify = str(ca) if ca else False
        if client_cert:
            self.s.cert = client_cert
        self.base = f"https://127.0.0.1:{node.http_port}"

    @property
    def id(self):
        return self.node.node_id

    def req(self, method, path, timeout=10, **kw):
        return self.s.request(method, self.base + path, timeout=timeout, **kw)

    def ready(self):
        try:
            return self.req("GET", "/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def status(self):
        return self.req("GET", "/v1/status").json()

    def metric(self, name):
        text = self.req("GET", "/metrics").text
        return sum(float(line.split()[-1]) for line in text.splitlines()
                   if line.startswith(name + " ") or line.startswith(name + "{"))


def tls_args(certs, node_cert, mutual):
    # Without --tls-client-ca a node trusts its own --tls-cert file: give it
    # the chain (leaf + CA). With --tls-client-ca the CA file is the anchor,
    # so the leaf alone is enough.
    cert = f"{node_cert}.pem" if mutual else f"{node_cert}-chain.pem"
    args = ["--tls-cert", str(certs / cert), "--tls-key", str(certs / f"{node_cert}.key")]
    if mutual:
        args += ["--tls-client-ca", str(certs / "ca.pem")]
    return args


def start_tls_cluster(make_node, certs, mutual=False, node_certs=("node1", "node2", "node3"),
                      cas=("ca", "ca", "ca"), wait=(True, True, True)):
    nodes = [make_node(node_id=i + 1) for i in range(len(node_certs))]
    members = ",".join(f"{x.node_id}=127.0.0.1:{x.peer_port}" for x in nodes)
    client = (str(certs / "client.pem"), str(certs / "client.key")) if mutual else None
    out = []
    for x, nc, ca in zip(nodes, node_certs, cas):
        x.extra_args = (["--initial-cluster", members] + CLUSTER_ARGS
                        + tls_args(certs, nc, mutual))
        x.start(wait_ready=False)  # the harness polls /readyz in plain text
        out.append(TlsNode(x, certs / f"{ca}.pem" if ca else None, client))
    for t, w in zip(out, wait):
        if w:
            wait_until(lambda: t.ready() or not t.node.running, 30, 0.1, f"node {t.id} ready")
        assert t.node.running, t.node.stderr_text()[-3000:]
    return out


def leader_of(tnodes):
    found = {}

    def agreed():
        ids = set()
        for t in tnodes:
            if not t.node.running:
                continue
            try:
                ids.add(t.status()["leader"])
            except (requests.RequestException, ValueError, KeyError):
                return False
        found["id"] = ids.pop() if len(ids) == 1 else None
        return bool(found["id"])

    wait_until(agreed, 15, 0.1, "nodes to agree on a leader")
    return next(t for t in tnodes if t.id == found["id"])


def test_documented_deployment_peer_ports_loopback_client_ports_tls(make_node, certs):
    """Every port over TLS: members' HTTP ports and peer ports refuse plain
    text, and replication (Raft over TLS) and forwarding work."""
    tn = start_tls_cluster(make_node, certs)
    # a plain-text peer preamble is not TLS: the listener closes it
    with socket.create_connection(("127.0.0.1", tn[1].node.peer_port), timeout=5) as s:
        s.sendall(struct.pack("<QQQ", 1, 9, 16) + b"127.0.0.1:1\0\0\0\0\0")
        s.settimeout(5)
        data = b""
        try:
            while True:  # perhaps a TLS alert, then the close; never a Raft byte
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        assert not data or data[:1] == b"\x15", data  # 0x15: a TLS alert record
    # client addresses are published through the log: wait until all known
    def all_published():
        ms = tn[0].req("GET", "/v1/cluster").json()["members"]
        return ms if len(ms) == 3 and all(m["http"] for m in ms) else None

    members = wait_until(all_published, 10, 0.1, "member addresses")
    for m in members:
        assert m["peer"].startswith("127.0.0.1:"), m
        assert m["http"].startswith("127.0.0.1:"), m
    for t in tn:
        with pytest.raises(requests.RequestException):
            requests.get(f"http://127.0.0.1:{t.node.http_port}/healthz", timeout=3)
    for t in tn:
        assert t.req("PUT", f"/v1/key/via-{t.id}", data=b"x").status_code == 201
    for t in tn:
        for w in tn:
            assert t.req("GET", f"/v1/key/via-{w.id}").content == b"x"


def test_put_and_linearizable_get_via_follower_over_https(make_node, certs):
    tn = start_tls_cluster(make_node, certs)
    leader = leader_of(tn)
    follower = next(t for t in tn if t is not leader)
    before = follower.metric("cairn_forwarded_total")
    r = follower.req("PUT", "/v1/key/k1", data=b"from-follower")
    assert r.status_code == 201, r.text
    assert leader.req("GET", "/v1/key/k1").content == b"from-follower"
    # a write on the leader, then a linearizable read on the follower: the
    # follower asks the leader for a read index (forwarded over TLS)
    assert leader.req("PUT", "/v1/key/k2", data=b"on-leader").status_code == 201
    r = follower.req("GET", "/v1/key/k2")
    assert r.status_code == 200 and r.content == b"on-leader", r.text
    assert follower.metric("cairn_forwarded_total") >= before + 2
    assert follower.metric("cairn_forward_failures_total") == 0


def test_mutual_tls_cluster_forwards_with_node_certificates(make_node, certs):
    """--tls-client-ca on every node: clients and members alike must present
    a certificate signed by the CA; followers present their node certificate
    to the leader."""
    tn = start_tls_cluster(make_node, certs, mutual=True)
    leader = leader_of(tn)
    follower = next(t for t in tn if t is not leader)
    r = follower.req("PUT", "/v1/key/m1", data=b"mutual")
    assert r.status_code == 201, r.text
    assert leader.req("GET", "/v1/key/m1").content == b"mutual"
    assert leader.req("PUT", "/v1/key/m2", data=b"2").status_code == 201
    assert follower.req("GET", "/v1/key/m2").content == b"2"
    assert follower.metric("cairn_forward_failures_total") == 0
    # and a client without a certificate is still refused
    anon = requests.Session()
    anon.trust_env = False
    anon.verify = str(certs / "ca.pem")
    with pytest.raises(requests.RequestException):
        anon.get(follower.base + "/v1/key/m1", timeout=5)
    # SIGHUP re-reads the files for forwarding too; forwarding goes on
    follower.node.send_signal(signal.SIGHUP)
    wait_until(lambda: "TLS files reloaded for forwarding" in follower.node.stderr_text(), 10,
               0.1, "forwarding TLS reload")
    follower.s.close()  # a fresh client connection to the follower
    assert follower.req("PUT", "/v1/key/m3", data=b"3").status_code == 201
    assert leader.req("GET", "/v1/key/m3").content == b"3"


@pytest.mark.parametrize("mutual", [False, True], ids=["tls", "mutual-tls"])
def test_resp_set_via_follower_over_tls(make_node, certs, mutual):
    tn = start_tls_cluster(make_node, certs, mutual=mutual)
    leader = leader_of(tn)
    follower = next(t for t in tn if t is not leader)
    kw = {}
    if mutual:
        kw = {"ssl_certfile": str(certs / "client.pem"), "ssl_keyfile": str(certs / "client.key")}
    c = redis.Redis(host="127.0.0.1", port=follower.node.resp_port, ssl=True,
                    ssl_ca_certs=str(certs / "ca.pem"), socket_timeout=10, **kw)
    try:
        assert c.set("rk", "rv") is True
        assert c.get("rk") == b"rv"
    finally:
        c.close()
    assert leader.req("GET", "/v1/key/rk").content == b"rv"


@pytest.mark.timeout_s(120)
def test_join_over_https_becomes_voter(make_node, certs):
    tn = start_tls_cluster(make_node, certs)
    leader = leader_of(tn)
    follower = next(t for t in tn if t is not leader)
    for i in range(10):
        assert tn[i % 3].req("PUT", f"/v1/key/pre-{i}", data=b"v").status_code == 201
    fourth = make_node(node_id=4)
    fourth.extra_args = (["--join", f"https://127.0.0.1:{follower.node.http_port}"] + CLUSTER_ARGS
                         + tls_args(certs, "node4", False))
    fourth.start(wait_ready=False)
    t4 = TlsNode(fourth, certs / "ca.pem")

    def is_voter():
        assert fourth.running, fourth.stderr_text()[-3000:]
        ms = leader.req("GET", "/v1/cluster").json()["members"]
        return any(m["id"] == 4 and m["voter"] for m in ms)

    wait_until(is_voter, 45, 0.2, "node 4 to become a voter")
    wait_until(t4.ready, 20, 0.1, "node 4 ready")
    assert "joined the cluster" in fourth.stderr_text()
    assert t4.req("GET", "/v1/key/pre-7").content == b"v"
    # node 4 is a follower: its write is forwarded to the leader over TLS
    assert t4.req("PUT", "/v1/key/from-4", data=b"x").status_code == 201
    assert leader.req("GET", "/v1/key/from-4").content == b"x"


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
@pytest.mark.parametrize("bad", ["other-ca", "other-address"])
def test_peer_with_an_untrusted_certificate_takes_no_part(make_node, certs, bad):
    """Verification is real, on the peer port too: nodes 1 and 2 trust the
    cluster CA; node 3 presents either a certificate for the right address
    (127.0.0.1) from another CA, or one from the cluster CA for another
    address (127.0.0.2, and the name localhost, which must not count for an
    IP). The TLS handshakes between node 3 and the others fail before any
    Raft byte, so node 3 never votes, leads or holds data: 1 and 2 elect a
    leader between themselves and commit writes, which never reach 3. The
    refusals are logged with OpenSSL's reason and counted."""
    cert, ca = ("rogue", "rogue-ca") if bad == "other-ca" else ("elsewhere", None)
    tn = start_tls_cluster(make_node, certs, node_certs=("node1", "node2", cert),
                           cas=("ca", "ca", ca), wait=(True, True, False))
    good, rogue = tn[:2], tn[2]
    leader = leader_of(good)
    follower = next(t for t in good if t is not leader)
    assert leader.req("PUT", "/v1/key/k", data=b"v").status_code == 201
    assert follower.req("PUT", "/v1/key/k2", data=b"w").status_code == 201  # forwarded
    wait_until(lambda: follower.req("GET", "/v1/key/k", params={"consistency": "stale"}).content
               == b"v", 10, 0.1, "replicated between the two trusted nodes")
    time.sleep(1.0)
    assert rogue.node.running
    assert rogue.req("GET", "/v1/key/k", params={"consistency": "stale"}).status_code == 404
    assert rogue.status()["leader"] in (0, None), rogue.status()
    logs = "".join(t.node.stderr_text() for t in good)
    assert 'msg="TLS connection closed"' in logs, logs[-3000:]
    assert "certificate verify failed" in logs, logs[-3000:]
    if bad == "other-address":
        assert "IP address mismatch" in logs, logs[-3000:]
    assert sum(t.metric("cairn_peer_tls_failures_total") for t in good) >= 1
    # a refused connect is retried after libraft's back-off, not at once
    n0 = sum(t.metric("cairn_peer_tls_failures_total") for t in good)
    time.sleep(2.0)
    n1 = sum(t.metric("cairn_peer_tls_failures_total") for t in good)
    assert n1 - n0 <= 20, (n0, n1)

