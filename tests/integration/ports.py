"""Loopback ports for the servers a test or benchmark starts.

A port the kernel hands out for bind(0) lies in its ephemeral range. Between
picking it and the server's own bind, any outgoing connection (a cluster
node dialling a peer, a client) may take it as its source port, and the
server then cannot listen: a rare, unexplained startup failure. Ports
outside that range are never given to outgoing connections, so only another
listener can take them, and each is checked free here. A port handed out
recently is not handed out again, so two servers started one after the
other never get the same one.
"""

import random
import socket
import threading

_rng = random.Random()
_recent = []
_recent_set = set()
_lock = threading.Lock()
_RECENT_MAX = 4096


def ephemeral_range():
    """The kernel's range for the source ports of outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def _pool():
    lo, hi = ephemeral_range()
    if lo - 1 - 10000 >= 8192:
        return 10000, lo - 1
    if 65535 - hi >= 2048:
        return hi + 1, 65535
    return 1024, lo - 1


def _remember(port):
    _recent.append(port)
    _recent_set.add(port)
    if len(_recent) > _RECENT_MAX:
        _recent_set.discard(_recent.pop(0))


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1, outside the ephemeral range
    (bound together to check them, then released)."""
    pool = _pool()
    socks = []
    with _lock:
        try:
            for _ in range(200 * n):
                if len(socks) == n:
                    break
                port = _rng.randint(*pool)
                if port in _recent_set:
                    continue
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    s.close()
                    continue
                socks.append(s)
            if len(socks) != n:
                raise RuntimeError(f"no {n} free ports in {pool}")
            ports = [s.getsockname()[1] for s in socks]
            for port in ports:
                _remember(port)
            return ports
        finally:
            for s in socks:
                s.close()


def free_port():
    return free_ports(1)[0]
