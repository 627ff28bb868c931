"""Client workload for the cairn fault-injection tests.

Several client threads, each bound to one node at a time (moving to another
node now and then), issue over HTTP linearizable reads, writes of unique
values and compare-and-set (PUT with If-Match: "<mod_revision>" of a value
the client read, or If-None-Match: * when it saw no key), and over RESP
GET/SET, on a small rotating set of keys. Every operation is recorded with
invocation and completion times (time.monotonic_ns) and an outcome:

  ok    the server answered with a definite result
  fail  known not applied: 412 aside (a definite CAS result, recorded as
        ok/False), 4xx, connection refused or the request not fully sent,
        503 "no leader" / "not the leader" / "too many requests in flight",
        RESP -CLUSTERDOWN no leader / not the leader, -BUSY
  info  indeterminate: timeouts, connection lost after the request was
        sent, 503 "leadership lost: outcome unknown", "quorum lost: not
        committed in time", "leader not reachable", "node is shutting
        down", 5xx with an unknown body, any other RESP error to a SET

Hand-written HTTP/1.1 and RESP clients are used so that nothing is ever
retried behind our back (an automatic retry of a write would make its
outcome unknowable).
"""
import json
import select
import socket
import threading
import time
import urllib.parse

# 503 bodies that mean "not applied" (SPEC §6; replica_status_text)
NOT_APPLIED_503 = ("no leader", "not the leader", "too many requests in flight",
                   "leadership lost: not applied")
NOT_APPLIED_RESP = ("CLUSTERDOWN no leader", "CLUSTERDOWN not the leader", "BUSY",
                    "NETPROXY not forwarded", "CLUSTERDOWN leadership lost: not applied")
# The fault proxy in front of the client ports answers this way when it
# forwarded no byte of the connection (node down, or the clients' link
# cut): the request never reached cairnd, as with a refused connection.
NETPROXY_HEADER = "x-netproxy"


class NotSent(Exception):
    """The request certainly did not reach the server whole."""


class Unknown(Exception):
    """The request may have been received and executed."""


# --------------------------------------------------------------------------
# minimal clients
# --------------------------------------------------------------------------

class HttpConn:
    """One keep-alive HTTP/1.1 connection; no retries, ever."""

    def __init__(self, port, connect_timeout=2.0):
        self.port = port
        try:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=connect_timeout)
        except OSError as e:  # refused, timed out while connecting
            raise NotSent(f"connect: {e}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def usable(self):
        """A kept-alive connection the server has closed (or that has stray
        bytes) must not be reused: sending on it would leave the outcome of
        the request unknown."""
        try:
            r, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not r and not self.buf

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def request(self, method, target, headers=None, body=b"", timeout=10.0):
        hdrs = [("Host", "127.0.0.1")] + list((headers or {}).items())
        if body or method in ("PUT", "POST"):
            hdrs.append(("Content-Length", str(len(body))))
        data = (f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs)
                + "\r\n").encode("latin-1") + body
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(data)
        except OSError as e:
            # sendall raises only when some bytes never reached the kernel:
            # the server cannot have a complete request
            raise NotSent(f"send: {e}") from None
        deadline = time.monotonic() + timeout
        try:
            return self._read_response(method, deadline)
        except (OSError, TimeoutError, ValueError) as e:
            raise Unknown(f"{type(e).__name__}: {e}") from None

    def pipeline(self, reqs, timeout=10.0):
        """Send several requests back to back (HTTP pipelining), each with
        its own invocation time, then read the answers in order. Returns
        one (inv ns, result) per request; result is (status, headers, body,
        completion time ns), NotSent for a request that never reached the
        kernel whole, or Unknown for one whose answer did not arrive (its
        outcome is unknown: it may have been received whole)."""
        self.sock.settimeout(timeout)
        invs = []
        for method, target, headers, body in reqs:
            hdrs = [("Host", "127.0.0.1")] + list((headers or {}).items())
            if body or method in ("PUT", "POST"):
                hdrs.append(("Content-Length", str(len(body))))
            raw = (f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs)
                   + "\r\n").encode("latin-1") + body
            invs.append(time.monotonic_ns())
            try:
                self.sock.sendall(raw)
            except OSError as e:
                # this one and the rest were not sent whole; earlier ones were
                results = self._read_answers(reqs[:len(invs) - 1], timeout)
                results += [NotSent(f"send: {e}")] * (len(reqs) - len(results))
                return list(zip(invs + [invs[-1]] * (len(reqs) - len(invs)), results))
        return list(zip(invs, self._read_answers(reqs, timeout)))

    def _read_answers(self, reqs, timeout):
        deadline = time.monotonic() + timeout
        results = []
        for method, _, _, _ in reqs:
            try:
                st, hdrs, body = self._read_response(method, deadline)
                results.append((st, hdrs, body, time.monotonic_ns()))
            except (OSError, TimeoutError, ValueError) as e:
                err = Unknown(f"{type(e).__name__}: {e}")
                results += [err] * (len(reqs) - len(results))
                break
        return results

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("client timeout")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("client timeout") from None
        if not chunk:
            raise ConnectionError("connection closed by server")
        self.buf += chunk

    def _read_response(self, method, deadline):
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
            if len(self.buf) > 1 << 20:
                raise ValueError("response head too large")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        status = int(parts[1])
        headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(b":")
            headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
        n = int(headers.get("content-length", "0"))
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            n = 0
        while len(self.buf) < n:
            self._fill(deadline)
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body


class RespError(str):
    pass


class RespConn:
    """One RESP2 connection; commands are never retried."""

    def __init__(self, port, connect_timeout=2.0):
        try:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=connect_timeout)
        except OSError as e:
            raise NotSent(f"connect: {e}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    usable = HttpConn.usable
    close = HttpConn.close
    _fill = HttpConn._fill

    @staticmethod
    def _encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def pipeline(self, cmds, timeout=10.0):
        """Send several commands back to back, each with its own
        invocation time, then read the replies in order. Returns one
        (inv ns, reply) per command; reply is the reply (a RespError is
        one), NotSent for a command that never reached the kernel whole,
        or Unknown for one whose reply did not arrive."""
        self.sock.settimeout(timeout)
        invs, sent = [], 0
        for args in cmds:
            invs.append(time.monotonic_ns())
            try:
                self.sock.sendall(self._encode(args))
            except OSError as e:
                out = self._read_replies(sent, timeout)
                out += [NotSent(f"send: {e}")] * (len(cmds) - len(out))
                return list(zip(invs + [invs[-1]] * (len(cmds) - len(invs)), out))
            sent += 1
        return list(zip(invs, self._read_replies(sent, timeout)))

    def _read_replies(self, n, timeout):
        deadline = time.monotonic() + timeout
        out = []
        for _ in range(n):
            try:
                out.append(self._reply(deadline))
            except (OSError, TimeoutError, ValueError) as e:
                out += [Unknown(f"{type(e).__name__}: {e}")] * (n - len(out))
                break
        return out

    def call(self, *args, timeout=10.0):
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(self._encode(args))
        except OSError as e:
            raise NotSent(f"send: {e}") from None
        deadline = time.monotonic() + timeout
        try:
            return self._reply(deadline)
        except (OSError, TimeoutError, ValueError) as e:
            raise Unknown(f"{type(e).__name__}: {e}") from None

    def _line(self, deadline):
        while b"\r\n" not in self.buf:
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _reply(self, deadline):
        line = self._line(deadline)
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RespError(rest.decode(errors="replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill(deadline)
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply(deadline) for _ in range(n)]
        raise ValueError(f"bad RESP reply {line[:80]!r}")


def resp_works(port, key="jepsen-probe"):
    """RESP SET and GET round-trip on this port?"""
    try:
        c = RespConn(port)
        try:
            if c.call("PING", timeout=5) != "PONG":
                return False
            v = f"probe-{time.monotonic_ns()}"
            if c.call("SET", key, v, timeout=10) != "OK":
                return False
            return c.call("GET", key, timeout=10) == v.encode()
        finally:
            c.close()
    except (NotSent, Unknown, ValueError):
        return False


# --------------------------------------------------------------------------
# history and keys
# --------------------------------------------------------------------------

class History:
    def __init__(self):
        self.ops = []
        self.lock = threading.Lock()
        self.next_id = 0

    def add(self, op):
        with self.lock:
            op["id"] = self.next_id
            self.next_id += 1
            self.ops.append(op)

    def snapshot(self):
        with self.lock:
            return list(self.ops)


class Keys:
    """A few key slots; a slot's key is replaced by a fresh one after
    `ops_per_key` operations, which keeps every key's history short enough
    for an exact linearizability search even with indeterminate ops."""

    def __init__(self, prefix, slots=4, ops_per_key=120):
        self.prefix = prefix
        self.ops_per_key = ops_per_key
        self.lock = threading.Lock()
        self.gen = 0
        self.slots = []
        self.counts = {}
        self.all = []
        for _ in range(slots):
            self.slots.append(self._fresh())

    def _fresh(self):
        k = f"{self.prefix}{self.gen:05d}"
        self.gen += 1
        self.counts[k] = 0
        self.all.append(k)
        return k

    def pick(self, rng):
        with self.lock:
            i = rng.randrange(len(self.slots))
            k = self.slots[i]
            self.counts[k] += 1
            if self.counts[k] >= self.ops_per_key:
                self.slots[i] = self._fresh()
            return k


def _error_text(body):
    try:
        return json.loads(body.decode()).get("error", "")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return body[:200].decode(errors="replace")


# --------------------------------------------------------------------------
# clients
# --------------------------------------------------------------------------

class Client(threading.Thread):
    """One client thread. `nodes()` returns the current {id: http/resp port}
    map (ports may change when a node had to move)."""

    def __init__(self, name, proto, cluster, keys, history, stop, rng, op_timeout=10.0,
                 think=(0.005, 0.03), mix=None, stale_read_rate=0.0, overtake_rate=0.0):
        super().__init__(name=f"jepsen-{name}", daemon=True)
        self.cname = name
        self.proto = proto
        self.cluster = cluster
        self.keys = keys
        self.history = history
        self.stop = stop
        self.rng = rng
        self.op_timeout = op_timeout
        self.think = think
        self.mix = mix or {"read": 0.35, "write": 0.25, "cas": 0.3, "pipelined": 0.1}
        self.conn = None
        self.conn_node = None
        ids = cluster.node_ids()
        self.node = ids[rng.randrange(len(ids))]
        self.seq = 0
        self.known = {}   # key -> (value, mod_revision) last seen by this client
        self.errors = []
        # harness self-check only: this share of HTTP reads asks for
        # ?consistency=stale but is recorded (and checked) as linearizable,
        # which the checker must catch once a node lags
        self.stale_read_rate = stale_read_rate
        # harness self-check only: this share of pipelined pairs is sent
        # read first but recorded write first (see do_pipelined)
        self.overtake_rate = overtake_rate

    # -- connections ---------------------------------------------------------
    def _port(self):
        return self.cluster.client_port(self.node, self.proto)

    def _drop(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def _get_conn(self):
        if self.conn is not None and (self.conn_node != self.node or not self.conn.usable()):
            self._drop()
        if self.conn is None:
            cls = HttpConn if self.proto == "http" else RespConn
            self.conn = cls(self._port())
            self.conn_node = self.node
        return self.conn

    def _move(self):
        ids = self.cluster.node_ids()
        self._drop()
        self.node = ids[self.rng.randrange(len(ids))]

    # -- one operation ----------------------------------------------------------
    def _record(self, op, outcome, **kw):
        op["cmp"] = op.get("cmp") or time.monotonic_ns()
        op["outcome"] = outcome
        op.update(kw)
        self.history.add(op)
        if outcome != "ok":
            self._drop()
            if self.rng.random() < 0.5:
                self._move()
        return op

    def _http(self, op, method, key, body=b"", headers=None, query=""):
        path = "/v1/key/" + urllib.parse.quote(key, safe="") + query
        try:
            conn = self._get_conn()
            st, hdrs, rbody = conn.request(method, path, headers=headers, body=body,
                                           timeout=self.op_timeout)
        except NotSent as e:
            return None, None, None, ("fail", str(e))
        except Unknown as e:
            return None, None, None, ("info", str(e))
        if hdrs.get("connection", "").lower() == "close":
            self._drop()
        return st, hdrs, rbody, None

    @staticmethod
    def _rev(hdrs):
        et = hdrs.get("etag", "")
        return int(et.strip('"')) if et.strip('"').isdigit() else None

    def do_read(self, key):
        op = {"client": self.cname, "proto": self.proto, "node": self.node, "key": key, "f": "read",
              "inv": time.monotonic_ns()}
        if self.proto == "resp":
            return self._resp_op(op, ("GET", key))
        query = ""
        if self.stale_read_rate and self.rng.random() < self.stale_read_rate:
            query = "?consistency=stale"
        st, hdrs, body, err = self._http(op, "GET", key, query=query)
        return self._classify_read(op, st, hdrs, body, err)

    def _classify_read(self, op, st, hdrs, body, err):
        key = op["key"]
        if err:
            # a read has no effect: failed or unknown, it observed nothing
            return self._record(op, "fail", error=err[1], status=None)
        if st == 200:
            v = body.decode()
            self.known[key] = (v, self._rev(hdrs))
            return self._record(op, "ok", result=v, status=st, rev=self._rev(hdrs))
        if st == 404:
            self.known[key] = (None, None)
            return self._record(op, "ok", result=None, status=st)
        return self._record(op, "fail", status=st, error=_error_text(body))

    def _classify_write(self, op, st, hdrs, body, err):
        if err:
            return self._record(op, err[0], error=err[1], status=None)
        if st == 201:
            rev = self._rev(hdrs)
            self.known[op["key"]] = (op["value"], rev)
            if op["f"] == "cas":
                return self._record(op, "ok", result=True, status=st, rev=rev)
            return self._record(op, "ok", status=st, rev=rev)
        if st == 412 and op["f"] == "cas":
            self.known.pop(op["key"], None)
            return self._record(op, "ok", result=False, status=st)
        text = _error_text(body)
        if st == 503 and text in NOT_APPLIED_503:
            return self._record(op, "fail", status=st, error=text)
        if st == 502 and hdrs.get(NETPROXY_HEADER) == "not-forwarded":
            return self._record(op, "fail", status=st, error="proxy: " + text)
        if 400 <= st < 500 and st not in (408,):
            self.errors.append(f"unexpected {st} {text} for {op}")
            return self._record(op, "fail", status=st, error=text)
        return self._record(op, "info", status=st, error=text)

    def do_write(self, key):
        self.seq += 1
        value = f"{self.cname}-{self.seq}"
        op = {"client": self.cname, "proto": self.proto, "node": self.node, "key": key, "f": "write",
              "value": value, "inv": time.monotonic_ns()}
        if self.proto == "resp":
            return self._resp_op(op, ("SET", key, value))
        st, hdrs, body, err = self._http(op, "PUT", key, body=value.encode())
        return self._classify_write(op, st, hdrs, body, err)

    def do_cas(self, key):
        if key not in self.known:
            return self.do_read(key)
        expect, rev = self.known[key]
        if expect is not None and rev is None:
            return self.do_read(key)
        self.seq += 1
        value = f"{self.cname}-{self.seq}"
        headers = {"If-None-Match": "*"} if expect is None else {"If-Match": f'"{rev}"'}
        op = {"client": self.cname, "proto": self.proto, "node": self.node, "key": key, "f": "cas",
              "value": value, "expect": expect, "expect_rev": rev, "inv": time.monotonic_ns()}
        st, hdrs, body, err = self._http(op, "PUT", key, body=value.encode(), headers=headers)
        return self._classify_write(op, st, hdrs, body, err)

    def _do_pipelined_resp(self, key):
        """SET and GET of the same key sent back to back on one RESP
        connection; the GET names the SET (`after`), as over HTTP."""
        self.seq += 1
        value = f"{self.cname}-{self.seq}"
        base = {"client": self.cname, "proto": self.proto, "node": self.node, "key": key,
                "pipelined": True}
        w = dict(base, f="write", value=value)
        r = dict(base, f="read")
        results = self._pipeline_pair(w, r, ("SET", key, value), ("GET", key))
        if results is None:
            return r
        w["cmp"] = r["cmp"] = time.monotonic_ns()  # replies are read together
        self._classify_resp(w, results[0])
        r["after"] = w["id"]
        return self._classify_resp(r, results[1])

    def _pipeline_pair(self, w, r, write_req, read_req):
        """Send a write and a read back to back on one connection and set
        each op's invocation time. Returns the two results (the write's
        first), or None when nothing could be sent (both recorded as
        fail). Harness self-check only (overtake_rate): the read is sent
        first but recorded second; the checker must catch the read that
        "overtook" its write."""
        overtake = bool(self.overtake_rate) and self.rng.random() < self.overtake_rate
        try:
            conn = self._get_conn()
        except NotSent as e:
            w["inv"] = r["inv"] = time.monotonic_ns()
            self._record(w, "fail", error=str(e))
            self._record(r, "fail", error=str(e))
            return None
        sent = conn.pipeline([read_req, write_req] if overtake else [write_req, read_req],
                             timeout=self.op_timeout)
        if overtake:
            sent = sent[::-1]
            r["overtake_selfcheck"] = True
        (w["inv"], wres), (r["inv"], rres) = sent
        if overtake:
            w["inv"] = min(w["inv"], r["inv"])
        return [wres, rres]

    def do_pipelined(self, key):
        """A write (or CAS) and a read of the same key sent back to back on
        one connection before any answer: cairn must run them in order, so
        the read sees the write (or something newer). The read names the
        write in `after`, which the checker enforces: by the clock the two
        are concurrent, so without it a read that overtook its write would
        pass."""
        if self.proto == "resp":
            return self._do_pipelined_resp(key)
        path = "/v1/key/" + urllib.parse.quote(key, safe="")
        self.seq += 1
        value = f"{self.cname}-{self.seq}"
        known = self.known.get(key)
        base = {"client": self.cname, "proto": self.proto, "node": self.node, "key": key,
                "pipelined": True}
        if known is not None and (known[0] is None or known[1] is not None) and self.rng.random() < 0.5:
            expect, rev = known
            headers = {"If-None-Match": "*"} if expect is None else {"If-Match": f'"{rev}"'}
            w = dict(base, f="cas", value=value, expect=expect, expect_rev=rev)
        else:
            headers = {}
            w = dict(base, f="write", value=value)
        r = dict(base, f="read")
        results = self._pipeline_pair(w, r, ("PUT", path, headers, value.encode()),
                                      ("GET", path, {}, b""))
        if results is None:
            return r
        # classify in order; the connection is dropped on any failure
        ops = []
        for op, res in zip((w, r), results):
            if isinstance(res, NotSent):
                ops.append((op, None, None, None, ("fail", str(res))))
            elif isinstance(res, Exception):
                ops.append((op, None, None, None, ("info", str(res))))
            else:
                st, hdrs, body, cmp = res
                op["cmp"] = cmp
                ops.append((op, st, hdrs, body, None))
        (op, st, hdrs, body, err) = ops[0]
        self._classify_write(op, st, hdrs, body, err)
        r["after"] = w["id"]
        (op, st, hdrs, body, err) = ops[1]
        return self._classify_read(op, st, hdrs, body, err)

    def _resp_op(self, op, cmd):
        try:
            conn = self._get_conn()
            rep = conn.call(*cmd, timeout=self.op_timeout)
        except (NotSent, Unknown) as e:
            rep = e
        return self._classify_resp(op, rep)

    def _classify_resp(self, op, rep):
        if isinstance(rep, NotSent):
            return self._record(op, "fail", error=str(rep))
        if isinstance(rep, Unknown):
            return self._record(op, "fail" if op["f"] == "read" else "info", error=str(rep))
        if op["f"] == "read":
            if isinstance(rep, RespError):
                return self._record(op, "fail", error=str(rep))
            if rep is None or isinstance(rep, bytes):
                return self._record(op, "ok", result=None if rep is None else rep.decode())
            self.errors.append(f"unexpected GET reply {rep!r}")
            return self._record(op, "fail", error=repr(rep))
        if rep == "OK":
            return self._record(op, "ok")
        if isinstance(rep, RespError):
            if any(str(rep).startswith(p) for p in NOT_APPLIED_RESP):
                return self._record(op, "fail", error=str(rep))
            return self._record(op, "info", error=str(rep))
        self.errors.append(f"unexpected SET reply {rep!r}")
        return self._record(op, "info", error=repr(rep))

    def run(self):
        fns = {"read": self.do_read, "write": self.do_write, "cas": self.do_cas,
               "pipelined": self.do_pipelined}
        kinds = list(self.mix)
        weights = [self.mix[k] for k in kinds]
        n = 0
        try:
            while not self.stop.is_set():
                key = self.keys.pick(self.rng)
                f = self.rng.choices(kinds, weights)[0]
                if self.proto == "resp" and f == "cas":
                    f = "write"
                fns[f](key)
                n += 1
                if n % 40 == 0 and self.rng.random() < 0.5:
                    self._move()
                self.stop.wait(self.rng.uniform(*self.think))
        except Exception as e:  # noqa: BLE001 - reported by the runner
            self.errors.append(f"client crashed: {e!r}")
            raise
        finally:
            self._drop()
