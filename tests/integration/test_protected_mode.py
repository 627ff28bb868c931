"""Safe default (issue 7): without authentication, cairnd serves only
loopback clients unless told otherwise with an explicitly named flag."""
from conftest import free_ports


def test_non_loopback_address_refused_without_flag(make_node):
    (port,) = free_ports(1)
    n = make_node(extra_args=["--listen-http", f"0.0.0.0:{port}"])
    rc, err = n.run_expect_exit()
    assert rc == 2
    assert "--listen-http" in err and "--insecure-allow-public" in err


def test_resp_non_loopback_refused_too(make_node):
    (port,) = free_ports(1)
    n = make_node(extra_args=["--listen-resp", f"0.0.0.0:{port}"])
    rc, err = n.run_expect_exit()
    assert rc == 2 and "--listen-resp" in err


def test_explicit_flag_allows_it(make_node):
    n = make_node(extra_args=["--insecure-allow-public"])
    (port,) = free_ports(1)
    n.http_port = port
    n.extra_args += ["--listen-http", f"0.0.0.0:{port}"]
    n.start()
    assert n.status()["role"] == "leader"
