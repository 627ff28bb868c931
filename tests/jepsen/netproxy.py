#!/usr/bin/env python3
"""Fault-injecting TCP proxy for cairn's traffic (loopback only).

Three listeners per node, each with its own kind:

  raft  every node's --initial-cluster names this port for each peer
        instead of the peer's real --listen-peer port, so all Raft traffic
        crosses the proxy. libraft opens one TCP connection per direction
        (A connects to B to send A's messages to B) and starts it with a
        handshake carrying the sender's id (u64 protocol, u64 id, u64
        address length, address; little endian), so each connection
        belongs to exactly one directed link (src -> dst).
  http  in front of the node's HTTP port, and the node's --advertise-http:
        clients connect here, and so do other nodes forwarding requests to
        it. A forwarding node names itself in every request
        (X-Cairn-From: N), which the proxy reads from the first request
        head; a connection without it is a client's (src 0).
  plain in front of the node's RESP port: clients only (src 0).

Faults apply per directed link (src, dst); src 0 stands for the clients.
On http and plain connections the answers flow back under the rule of
the reverse link (dst, src): a blackholed or cut direction stops them too.
A client's connection of which no byte could be forwarded (the node is
down, or the clients' link is cut) is answered with a marked error
(HTTP 502 with `X-Netproxy: not-forwarded`, RESP `-NETPROXY not
forwarded`) instead of a bare reset: its request certainly never reached
the node, which is what a refused connection tells a client directly.

Link modes:
  ok         forward (optionally with delay_ms + uniform jitter_ms, order kept)
  cut        existing connections are reset; new ones are accepted, read up
             to the handshake and closed (like a firewall sending RSTs)
  blackhole  nothing flows: existing connections stop being read (the
             sender's writes pile up), new ones are held open; on heal these
             connections are reset (like a TCP connection timing out after
             packets were silently dropped)

Control: JSON lines on stdin, one JSON reply line on stdout per request:
  {"cmd": "listen", "dst": 1, "port": 40001, "target": 40011}       (kind raft)
  {"cmd": "listen", "dst": 1, "port": 40002, "target": 40012, "kind": "http"}
  {"cmd": "retarget", "dst": 1, "target": 40021[, "kind": "http"]}
  {"cmd": "set", "links": [[1, 2], [2, 1]], "mode": "cut"}
  {"cmd": "set", "links": [[1, 2]], "mode": "ok", "delay_ms": 80, "jitter_ms": 40}
  {"cmd": "heal"}                      every link back to ok, no delay
  {"cmd": "stats"}
  {"cmd": "quit"}
End of stdin stops the proxy too, so it never outlives its parent. Events
are logged to stderr. It only binds 127.0.0.1 and only connects to
127.0.0.1.
"""
import asyncio
import json
import random
import socket
import struct
import sys
import time

HANDSHAKE_HEAD = 24
MAX_ADDRESS = 4096
MAX_HTTP_HEAD = 65536
CLIENTS = 0  # the src of a client's connection
KINDS = ("raft", "http", "plain")


def log(msg, **kw):
    fields = " ".join(f"{k}={v}" for k, v in kw.items())
    sys.stderr.write(f"ts={time.time():.3f} mono={time.monotonic_ns()} msg=\"{msg}\" {fields}\n")
    sys.stderr.flush()


class Rule:
    __slots__ = ("mode", "delay_ms", "jitter_ms")

    def __init__(self, mode="ok", delay_ms=0.0, jitter_ms=0.0):
        self.mode = mode
        self.delay_ms = delay_ms
        self.jitter_ms = jitter_ms

    def as_dict(self):
        return {"mode": self.mode, "delay_ms": self.delay_ms, "jitter_ms": self.jitter_ms}


class Conn:
    def __init__(self, proxy, src, dst, cr, cw, kind="raft"):
        self.proxy = proxy
        self.kind = kind
        self.src = src
        self.dst = dst
        self.cr = cr          # client (sender node) side
        self.cw = cw
        self.ur = None        # upstream (receiver node) side
        self.uw = None
        self.closed = False
        self.wake = asyncio.Event()
        self.tasks = []
        self.last_due = 0.0
        self.bytes = 0

    def refuse(self, why):
        """For a client's connection of which no byte went upstream: tell
        the client so (its request certainly did not reach the node, as
        with a refused connection), then close."""
        if self.closed:
            return
        try:
            if self.kind == "http":
                body = json.dumps({"error": f"not forwarded: {why}"}).encode()
                self.cw.write(b"HTTP/1.1 502 Bad Gateway\r\nX-Netproxy: not-forwarded\r\n"
                              b"Content-Type: application/json\r\nConnection: close\r\n"
                              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            elif self.kind == "plain":
                self.cw.write(b"-NETPROXY not forwarded: %s\r\n" % why.encode())
        except Exception:  # noqa: BLE001
            pass
        self.closed = True
        try:
            self.cw.close()
        except Exception:  # noqa: BLE001
            pass
        self.proxy.conns.discard(self)
        log("conn refused", kind=self.kind, src=self.src, dst=self.dst, why=why)

    def reset(self, why):
        """Close both sides at once, with RST where possible."""
        if self.closed:
            return
        self.closed = True
        self.wake.set()
        for w in (self.cw, self.uw):
            if w is None:
                continue
            try:
                sock = w.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            try:
                w.close()
            except Exception:  # noqa: BLE001
                pass
        for t in self.tasks:
            if t is not asyncio.current_task():
                t.cancel()
        self.proxy.conns.discard(self)
        log("conn closed", src=self.src, dst=self.dst, why=why, bytes=self.bytes)


class Proxy:
    def __init__(self):
        self.rules = {}          # (src, dst) -> Rule
        self.targets = {}        # (kind, dst) -> target port
        self.servers = {}        # (kind, dst) -> asyncio server
        self.ports = {}          # (kind, dst) -> listen port
        self.conns = set()
        self.counters = {}       # (src, dst) -> [connections, bytes]
        self.rng = random.Random(0)

    def rule(self, src, dst):
        return self.rules.get((src, dst)) or Rule()

    async def listen(self, dst, port, target, kind="raft"):
        if kind not in KINDS:
            raise ValueError(f"unknown listener kind {kind!r}")
        self.targets[(kind, dst)] = target
        srv = await asyncio.start_server(lambda r, w: self.accept(kind, dst, r, w), "127.0.0.1", port,
                                         reuse_address=True)
        self.servers[(kind, dst)] = srv
        self.ports[(kind, dst)] = srv.sockets[0].getsockname()[1]
        log("listening", kind=kind, dst=dst, port=self.ports[(kind, dst)], target=target)
        return self.ports[(kind, dst)]

    async def _raft_head(self, cr):
        head = await asyncio.wait_for(cr.readexactly(HANDSHAKE_HEAD), 10)
        proto, src, alen = struct.unpack("<QQQ", head)
        if proto != 1 or alen > MAX_ADDRESS:
            raise ValueError(f"not a libraft handshake (protocol {proto}, address length {alen})")
        addr = await asyncio.wait_for(cr.readexactly(alen), 10)
        return src, head + addr

    @staticmethod
    async def _http_head(cr):
        """The first request head (and whatever came with it); the sender
        is the node named by X-Cairn-From, else a client. An idle client
        connection may wait long before its first request."""
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = await asyncio.wait_for(cr.read(65536), 600)
            if not data:
                raise ConnectionError("closed before a request head")
            buf += data
            if len(buf) > MAX_HTTP_HEAD:
                break
        src = CLIENTS
        head = buf.split(b"\r\n\r\n", 1)[0]
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"x-cairn-from" and value.strip().isdigit():
                src = int(value.strip())
        return src, buf

    async def accept(self, kind, dst, cr, cw):
        try:
            if kind == "raft":
                src, first = await self._raft_head(cr)
            elif kind == "http":
                src, first = await self._http_head(cr)
            else:
                src, first = CLIENTS, b""
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, ConnectionError) as e:
            log("bad handshake", kind=kind, dst=dst, error=repr(e))
            cw.close()
            return
        c = Conn(self, src, dst, cr, cw, kind)
        self.conns.add(c)
        cnt = self.counters.setdefault((src, dst), [0, 0])
        cnt[0] += 1
        rule = self.rule(src, dst)
        refusable = kind != "raft" and src == CLIENTS
        if rule.mode == "cut":
            if refusable:
                c.refuse("link cut")
            else:
                c.reset("link cut")
            return
        if rule.mode == "blackhole":
            log("conn held (blackhole)", kind=kind, src=src, dst=dst)
            # held until heal resets it
            while not c.closed and self.rule(src, dst).mode == "blackhole":
                c.wake.clear()
                await c.wake.wait()
            if c.closed:
                return
        try:
            c.ur, c.uw = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.targets[(kind, dst)]), 5)
        except (OSError, asyncio.TimeoutError) as e:
            if refusable:
                c.refuse(f"upstream connect failed: {e!r}")
            else:
                c.reset(f"upstream connect failed: {e!r}")
            return
        if c.closed:
            c.uw.close()
            return
        try:
            if first:
                c.uw.write(first)
        except Exception as e:  # noqa: BLE001
            c.reset(f"upstream write failed: {e!r}")
            return
        log("conn open", kind=kind, src=src, dst=dst)
        c.tasks = [asyncio.ensure_future(self.pump(c)), asyncio.ensure_future(self.drain_back(c))]

    async def pump(self, c):
        """Sender -> receiver, applying the link's rule chunk by chunk."""
        queue = asyncio.Queue()
        writer = asyncio.ensure_future(self.delayed_writer(c, queue))
        c.tasks.append(writer)
        try:
            while not c.closed:
                rule = self.rule(c.src, c.dst)
                if rule.mode == "blackhole":
                    c.wake.clear()
                    await c.wake.wait()
                    continue
                if rule.mode == "cut":
                    c.reset("link cut")
                    return
                data = await c.cr.read(65536)
                if not data:
                    c.reset("sender closed")
                    return
                rule = self.rule(c.src, c.dst)
                if rule.mode == "cut":
                    c.reset("link cut")
                    return
                # data read just before a blackhole started is delivered
                # when (if) the link heals without a reset: it never is, so
                # it is dropped with the connection, like packets in flight
                if rule.mode == "blackhole":
                    while not c.closed and self.rule(c.src, c.dst).mode == "blackhole":
                        c.wake.clear()
                        await c.wake.wait()
                    if c.closed:
                        return
                delay = rule.delay_ms + (self.rng.random() * rule.jitter_ms if rule.jitter_ms else 0.0)
                now = time.monotonic()
                due = max(now + delay / 1000.0, c.last_due)
                c.last_due = due
                c.bytes += len(data)
                self.counters[(c.src, c.dst)][1] += len(data)
                await queue.put((due, data))
        except (ConnectionError, OSError) as e:
            c.reset(f"read error {e!r}")
        except asyncio.CancelledError:
            pass

    async def delayed_writer(self, c, queue):
        try:
            while not c.closed:
                due, data = await queue.get()
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                if c.closed:
                    return
                c.uw.write(data)
                await c.uw.drain()
        except (ConnectionError, OSError) as e:
            c.reset(f"write error {e!r}")
        except asyncio.CancelledError:
            pass

    async def drain_back(self, c):
        """Receiver -> sender. libraft never writes back on its connections
        (whatever comes is forwarded while the link is ok); HTTP and RESP
        answers flow under the rule of the reverse link (dst -> src),
        delayed, held or cut like the requests."""
        try:
            while not c.closed:
                if c.kind != "raft":
                    rule = self.rule(c.dst, c.src)
                    if rule.mode == "cut":
                        c.reset("reverse link cut")
                        return
                    if rule.mode == "blackhole":
                        c.wake.clear()
                        await c.wake.wait()
                        continue
                data = await c.ur.read(65536)
                if not data:
                    c.reset("receiver closed")
                    return
                if c.kind == "raft":
                    if self.rule(c.src, c.dst).mode == "ok":
                        c.cw.write(data)
                        await c.cw.drain()
                    continue
                rule = self.rule(c.dst, c.src)
                while not c.closed and rule.mode == "blackhole":
                    c.wake.clear()
                    await c.wake.wait()
                    rule = self.rule(c.dst, c.src)
                if c.closed:
                    return
                if rule.mode == "cut":
                    c.reset("reverse link cut")
                    return
                delay = rule.delay_ms + (self.rng.random() * rule.jitter_ms if rule.jitter_ms else 0.0)
                if delay > 0:
                    await asyncio.sleep(delay / 1000.0)
                c.cw.write(data)
                await c.cw.drain()
        except (ConnectionError, OSError) as e:
            c.reset(f"upstream read error {e!r}")
        except asyncio.CancelledError:
            pass

    def set_links(self, links, mode, delay_ms=0.0, jitter_ms=0.0):
        for src, dst in links:
            self.rules[(int(src), int(dst))] = Rule(mode, float(delay_ms), float(jitter_ms))
        affected = {(int(s), int(d)) for s, d in links}
        for c in list(self.conns):
            if (c.src, c.dst) in affected or (c.kind != "raft" and (c.dst, c.src) in affected):
                if mode == "cut":
                    c.reset("link cut")
                else:
                    c.wake.set()
        log("links set", mode=mode, delay_ms=delay_ms, jitter_ms=jitter_ms,
            links=";".join(f"{s}->{d}" for s, d in sorted(affected)))

    def heal(self):
        held = [(s, d) for (s, d), r in self.rules.items() if r.mode == "blackhole"]
        self.rules.clear()
        for c in list(self.conns):
            if (c.src, c.dst) in held or (c.kind != "raft" and (c.dst, c.src) in held):
                c.reset("blackhole healed: connection timed out")
            else:
                c.wake.set()
        log("healed", reset_links=";".join(f"{s}->{d}" for s, d in held))

    def stats(self):
        return {"rules": {f"{s}->{d}": r.as_dict() for (s, d), r in self.rules.items()},
                "ports": {f"{k}:{d}": p for (k, d), p in self.ports.items()},
                "targets": {f"{k}:{d}": p for (k, d), p in self.targets.items()}, "open": len(self.conns),
                "links": {f"{s}->{d}": {"connections": v[0], "bytes": v[1]}
                          for (s, d), v in sorted(self.counters.items())}}

    async def handle(self, req):
        cmd = req.get("cmd")
        if cmd == "listen":
            port = await self.listen(int(req["dst"]), int(req.get("port", 0)), int(req["target"]),
                                     req.get("kind", "raft"))
            return {"ok": True, "port": port}
        if cmd == "retarget":
            self.targets[(req.get("kind", "raft"), int(req["dst"]))] = int(req["target"])
            log("retarget", kind=req.get("kind", "raft"), dst=req["dst"], target=req["target"])
            return {"ok": True}
        if cmd == "set":
            self.set_links(req["links"], req.get("mode", "ok"), req.get("delay_ms", 0),
                           req.get("jitter_ms", 0))
            return {"ok": True}
        if cmd == "heal":
            self.heal()
            return {"ok": True}
        if cmd == "stats":
            return {"ok": True, "stats": self.stats()}
        if cmd == "seed":
            self.rng.seed(req.get("seed", 0))
            return {"ok": True}
        if cmd == "quit":
            return {"ok": True, "quit": True}
        return {"ok": False, "error": f"unknown command {cmd!r}"}


async def main():
    proxy = Proxy()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout
    while True:
        line = await reader.readline()
        if not line:
            log("stdin closed, exiting")
            break
        try:
            req = json.loads(line)
            rep = await proxy.handle(req)
        except Exception as e:  # noqa: BLE001 - report to the controller
            rep = {"ok": False, "error": repr(e)}
        out.write(json.dumps(rep) + "\n")
        out.flush()
        if rep.get("quit"):
            break
    for c in list(proxy.conns):
        c.reset("proxy exiting")
    for srv in proxy.servers.values():
        srv.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
