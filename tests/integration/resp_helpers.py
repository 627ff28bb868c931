"""Helpers for the Redis-protocol integration tests.

RawResp is a hand-written RESP2/RESP3 client over one socket: it sends
exactly the bytes a test asks for (multibulk, inline, garbage) and parses
replies into Python values that keep the wire type where it matters:

  +simple      -> Simple (str)         -error   -> Err (str, .code)
  :int         -> int                  $bulk    -> bytes
  $-1 *-1 _    -> None (Null; .wire tells which)
  *array       -> list                 %map     -> RespMap (dict, ordered)
  ~set         -> RespSet (list)       ,double  -> float
  #t #f        -> bool                 =verbatim-> Verbatim (bytes, .fmt)
  >push        -> Push (list)

Every read is bounded by a timeout. Only the standard library and redis-py
are used.
"""
import socket
import time

import pytest
import redis


class Simple(str):
    pass


class Err(str):
    @property
    def code(self):
        return self.split(" ", 1)[0]


class RespMap(dict):
    pass


class RespSet(list):
    pass


class Push(list):
    pass


class Verbatim(bytes):
    fmt = b""


class NullType:
    def __init__(self, wire):
        self.wire = wire

    def __eq__(self, other):
        return other is None or isinstance(other, NullType)

    def __hash__(self):
        return 0

    def __repr__(self):
        return f"Null({self.wire!r})"


class ConnectionClosed(Exception):
    pass


def encode(*args):
    """A command as a RESP multibulk."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = str(a).encode()
        elif isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class RawResp:
    def __init__(self, port, timeout=10.0, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.timeout = timeout
        self.eof = False

    # -- sending ---------------------------------------------------------
    def send(self, data):
        self.sock.sendall(data)

    def send_cmd(self, *args):
        self.send(encode(*args))

    def cmd(self, *args, timeout=None):
        self.send_cmd(*args)
        return self.read(timeout)

    def pipeline(self, cmds, timeout=None):
        self.send(b"".join(encode(*c) for c in cmds))
        return [self.read(timeout) for _ in cmds]

    # -- receiving -------------------------------------------------------
    def _fill(self, deadline):
        if self.eof:
            raise ConnectionClosed("closed by server")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out reading from server")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            raise TimeoutError("timed out reading from server") from None
        except (ConnectionResetError, BrokenPipeError) as e:
            self.eof = True
            raise ConnectionClosed(f"reset: {e}") from None
        if not chunk:
            self.eof = True
            raise ConnectionClosed("closed by server")
        self.buf += chunk

    def _line(self, deadline):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            self._fill(deadline)

    def _exact(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read(self, timeout=None):
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        return self._value(deadline)

    def _value(self, deadline):
        line = self._line(deadline)
        t, rest = line[:1], line[1:]
        if t == b"+":
            return Simple(rest.decode("latin-1"))
        if t == b"-":
            return Err(rest.decode("latin-1"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return NullType(b"$-1")
            data = self._exact(n + 2, deadline)
            assert data[-2:] == b"\r\n", data[-10:]
            return data[:-2]
        if t in (b"*", b"~", b">"):
            n = int(rest)
            if n < 0:
                return NullType(b"*-1")
            items = [self._value(deadline) for _ in range(n)]
            return {b"*": list, b"~": RespSet, b">": Push}[t](items)
        if t == b"%":
            n = int(rest)
            m = RespMap()
            for _ in range(n):
                k = self._value(deadline)
                m[k] = self._value(deadline)
            return m
        if t == b"_":
            return NullType(b"_")
        if t == b",":
            return float(rest)
        if t == b"#":
            return rest == b"t"
        if t == b"=":
            n = int(rest)
            data = self._exact(n + 2, deadline)[:-2]
            v = Verbatim(data[4:])
            v.fmt = data[:3]
            return v
        raise AssertionError(f"unexpected reply line {line!r}")

    def read_raw(self, n, timeout=None):
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        return self._exact(n, deadline)

    def raw_reply(self, *args, timeout=None):
        """Send a command and return the exact bytes of its (single-line or
        bulk) reply, for byte-exact checks."""
        self.send_cmd(*args)
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        line = self._line(deadline)
        if line[:1] == b"$" and int(line[1:]) >= 0:
            return line + b"\r\n" + self._exact(int(line[1:]) + 2, deadline)
        return line + b"\r\n"

    def raw_full_reply(self, *args, timeout=None):
        """Send a command and return the exact bytes of its whole reply,
        arrays, maps and sets included (for byte-exact differential checks
        against redis-server)."""
        self.send_cmd(*args)
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        out = []
        self._raw_value(deadline, out)
        return b"".join(out)

    def _raw_value(self, deadline, out):
        line = self._line(deadline)
        out.append(line + b"\r\n")
        t, rest = line[:1], line[1:]
        if t in (b"$", b"=", b"!") and int(rest) >= 0:
            out.append(self._exact(int(rest) + 2, deadline))
        elif t in (b"*", b"~", b">") and int(rest) > 0:
            for _ in range(int(rest)):
                self._raw_value(deadline, out)
        elif t in (b"%", b"|"):
            for _ in range(2 * int(rest)):
                self._raw_value(deadline, out)

    def wait_closed(self, timeout=10.0):
        """Read until the server closes; returns (closed, bytes received)."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self._fill(deadline)
        except ConnectionClosed:
            data, self.buf = self.buf, b""
            return True, data
        except TimeoutError:
            data, self.buf = self.buf, b""
            return False, data

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def client(node, **kw):
    """A redis-py client on the node's RESP port."""
    kw.setdefault("socket_timeout", 15)
    kw.setdefault("socket_connect_timeout", 5)
    return redis.Redis(host="127.0.0.1", port=node.resp_port, **kw)


def raw(node, timeout=10.0):
    return RawResp(node.resp_port, timeout=timeout)


def info(node, section=None):
    """INFO parsed into {field: value-string} over a raw connection."""
    with raw(node) as c:
        text = c.cmd("INFO", section) if section else c.cmd("INFO")
    assert isinstance(text, bytes), text
    out = {}
    for line in text.decode().split("\r\n"):
        if line and not line.startswith("#"):
            k, _, v = line.partition(":")
            out[k] = v
    return out


def metrics(node):
    r = node.request("GET", "/metrics")
    assert r.status_code == 200
    return r.text


def metric_value(text, name, **labels):
    """The value of one series (labels must match exactly), or None."""
    from conftest import parse_prometheus
    _, samples = parse_prometheus(text)
    for n, lab, v in samples:
        if n == name and lab == labels:
            return v
    return None


@pytest.fixture(params=["durable", "none"])
def anynode(request, make_node):
    """A fresh single node in each persistence mode."""
    return make_node(persistence=request.param).start()
