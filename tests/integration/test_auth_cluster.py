"""Users and permissions in a 3-node cluster (issue 7 with issue 5).

Every node has the same --users-file. A follower authenticates and
authorises its client itself, then forwards the write or read-index request
to the leader over the internal routes, which the leader serves only to the
hosts of its members; admin requests are relayed the same way; --join
carries an admin's credentials in the URL (never logged)."""
import base64
import hashlib
import os
import time

import pytest
import redis
import requests

from conftest import wait_until
from test_cluster import CLUSTER_ARGS

PASSWORDS = {"root": "root-Pw-1", "alice": "alice-Pw-2"}
GRANTS = {"root": "admin,rw:", "alice": "rw:app/"}


def pbkdf2_line(name, pw, grants, iterations=10000):
    salt = os.urandom(16)
    key = hashlib.pbkdf2_hmac("sha256", pw.encode(), salt, iterations, 32)
    b64 = lambda b: base64.b64encode(b).decode().rstrip("=")
    return f"{name}:pbkdf2-sha256${iterations}${b64(salt)}${b64(key)}:{grants}\n"


@pytest.fixture
def users_file(tmp_path):
    p = tmp_path / "users"
    p.write_text("".join(pbkdf2_line(n, PASSWORDS[n], GRANTS[n]) for n in PASSWORDS))
    return p


def start_cluster(make_node, users_file, n=3):
    nodes = [make_node(node_id=i + 1) for i in range(n)]
    members = ",".join(f"{x.node_id}=127.0.0.1:{x.peer_port}" for x in nodes)
    for x in nodes:
        x.extra_args = ["--initial-cluster", members, "--users-file", str(users_file)] + CLUSTER_ARGS
    for x in nodes:
        x.start(wait_ready=False)
    for x in nodes:
        x.wait_ready(20)
        x.session.auth = ("root", PASSWORDS["root"])  # for status() and admin calls
    return nodes


def leader_and_followers(nodes):
    found = {}

    def agreed():
        ids = {x.status()["leader"] for x in nodes if x.running}
        found["id"] = ids.pop() if len(ids) == 1 else None
        return found["id"] is not None

    wait_until(agreed, 15, 0.1, "a leader all nodes agree on")
    leader = next(x for x in nodes if x.node_id == found["id"])
    return leader, [x for x in nodes if x is not leader]


def as_user(node, method, path, user, **kw):
    auth = (user, PASSWORDS[user]) if user else None
    return requests.request(method, node.url(path), auth=auth, timeout=10, **kw)


@pytest.fixture
def cluster(make_node, users_file):
    return start_cluster(make_node, users_file)


def test_follower_authorises_then_forwards_writes_and_reads(cluster):
    leader, (f1, f2) = leader_and_followers(cluster)
    r = as_user(f1, "PUT", "/v1/key/app/k", "alice", data=b"v1")
    assert r.status_code == 201, r.text
    # a linearizable read through the other follower (read-index forwarding)
    r = as_user(f2, "GET", "/v1/key/app/k", "alice")
    assert r.status_code == 200 and r.content == b"v1", r.text
    assert as_user(leader, "GET", "/v1/key/app/k", "alice").content == b"v1"
    # refused on the follower itself: nothing reaches the log
    assert as_user(f1, "PUT", "/v1/key/other/x", "alice", data=b"x").status_code == 403
    assert as_user(f1, "PUT", "/v1/key/app/x", None, data=b"x").status_code == 401
    assert as_user(leader, "GET", "/v1/key/other/x", "root").status_code == 404
    # the leader answered the forwarded requests on its internal routes
    metrics = as_user(leader, "GET", "/metrics", "root").text
    assert 'route="internal_propose",code="200"' in metrics
    assert 'route="internal_read_index",code="200"' in metrics


def test_resp_through_a_follower(cluster):
    _, (f1, _) = leader_and_followers(cluster)
    c = redis.Redis(port=f1.resp_port, username="alice", password=PASSWORDS["alice"],
                    socket_timeout=10)
    assert c.set("app/r", "1") is True
    assert c.incr("app/r") == 2
    with pytest.raises(redis.exceptions.NoPermissionError):
        c.set("other/r", "1")
    c.close()


def test_admin_relay_and_join_with_credentials(cluster, make_node, users_file):
    leader, (f1, _) = leader_and_followers(cluster)
    n4 = make_node(node_id=4)
    # credentials from the environment, as docs/security.md recommends
    n4.env["CAIRN_JOIN"] = (f"http://root:{PASSWORDS['root']}@127.0.0.1:{f1.http_port}")
    n4.extra_args = ["--users-file", str(users_file)] + CLUSTER_ARGS
    n4.start(wait_ready=False)

    def voter4():
        members = as_user(leader, "GET", "/v1/cluster", "root").json()["members"]
        return any(m["id"] == 4 and m["voter"] for m in members)

    wait_until(voter4, 60, 0.2, "node 4 to become a voter")
    n4.wait_ready(20)
    assert as_user(n4, "PUT", "/v1/key/app/n4", "alice", data=b"x").status_code == 201
    # a non-admin may not change membership, on any node
    assert as_user(f1, "DELETE", "/v1/cluster/members/4", "alice").status_code == 403
    # an admin through a follower: relayed to the leader, which trusts its member
    r = as_user(f1, "DELETE", "/v1/cluster/members/4", "root")
    assert r.status_code == 200, r.text
    wait_until(lambda: not any(m["id"] == 4 for m in
                               as_user(leader, "GET", "/v1/cluster", "root").json()["members"]),
               20, 0.2, "node 4 removed")
    n4.stop()
    assert PASSWORDS["root"] not in n4.all_stderr()


def test_join_without_credentials_is_refused(cluster, make_node, users_file):
    leader, (f1, _) = leader_and_followers(cluster)
    n4 = make_node(node_id=4)
    n4.extra_args = ["--join", f"http://127.0.0.1:{f1.http_port}", "--users-file",
                     str(users_file)] + CLUSTER_ARGS
    n4.start(wait_ready=False)
    wait_until(lambda: "join attempt failed" in n4.stderr_text(), 15, 0.1, "a refused join")
    assert "status=401" in n4.stderr_text()
    members = as_user(leader, "GET", "/v1/cluster", "root").json()["members"]
    assert not any(m["id"] == 4 for m in members)
    n4.kill9()
