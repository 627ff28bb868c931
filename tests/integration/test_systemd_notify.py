"""systemd's Type=notify protocol (issue 17): cairnd run as systemd runs
it, with NOTIFY_SOCKET naming a datagram socket that this test listens on,
sends READY=1 once it listens, WATCHDOG=1 at half of WATCHDOG_USEC from its
event loop, and STOPPING=1 on SIGTERM. A loop stalled by SIGSTOP stops
feeding the watchdog (which is what lets systemd restart it)."""
import signal
import socket
import time

from conftest import wait_until


def _listen(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(0.2)
    return s


def _drain(s, seconds):
    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            out.append(s.recv(4096).decode())
        except socket.timeout:
            pass
    return out


def test_ready_watchdog_and_stopping(make_node, tmp_path):
    sock_path = tmp_path / "notify.sock"
    s = _listen(sock_path)
    try:
        node = make_node(env={"NOTIFY_SOCKET": str(sock_path), "WATCHDOG_USEC": "400000"})
        node.start()
        msgs = _drain(s, 1.0)
        ready = [m for m in msgs if "READY=1" in m]
        assert ready, msgs
        assert "STATUS=" in ready[0]
        feeds = [m for m in msgs if m == "WATCHDOG=1"]
        assert 3 <= len(feeds) <= 8, msgs  # every 200 ms
        # a frozen loop feeds nothing
        node.send_signal(signal.SIGSTOP)
        try:
            _drain(s, 0.3)  # what was already queued
            frozen = _drain(s, 1.0)
        finally:
            node.send_signal(signal.SIGCONT)
        assert not [m for m in frozen if m == "WATCHDOG=1"], frozen
        wait_until(lambda: "WATCHDOG=1" in _drain(s, 0.5), 5, 0, "feeding to resume")
        node.proc.send_signal(signal.SIGTERM)
        msgs = _drain(s, 1.5)
        assert any(m.startswith("STOPPING=1") for m in msgs), msgs
        assert node.proc.wait(10) == 0
    finally:
        s.close()


def test_nothing_sent_outside_systemd(make_node):
    # no NOTIFY_SOCKET: runs as before (the rest of the suite covers it);
    # an unusable one must not stop it either
    node = make_node(env={"NOTIFY_SOCKET": "/nonexistent/notify.sock", "WATCHDOG_USEC": "200000"})
    node.start()
    assert node.status()["role"] in ("leader", "standalone")
