"""Load generators: redis-benchmark, wrk and cairnctl bench, each run with a
hard time bound and parsed into one result shape:

    {"throughput": req/s, "p50_ms", "p99_ms", "p999_ms", "requests",
     "shed", "errors", "client_cpu_s"}

client_cpu_s is the generator's own CPU time (from RUSAGE_CHILDREN), so
the report can show whether the generator, not the server, was the limit."""
import json
import os
import re
import resource
import subprocess

import procs


class DriverError(RuntimeError):
    pass


def _run(argv, timeout, env=None):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise DriverError(f"{os.path.basename(argv[0])} did not finish within {timeout:.0f}s")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out = p.stdout.decode(errors="replace")
    err = p.stderr.decode(errors="replace")
    return p.returncode, out, err, cpu


def _tail(text, n=2):
    lines = [ln for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    return " | ".join(lines[-n:])[:300]


# ---- redis-benchmark ---------------------------------------------------------

_RB_SECTION = re.compile(r"====== (.+?) ======")


def parse_redis_benchmark(out):
    """Throughput and percentiles from redis-benchmark's full (non -q)
    output. p99.9 is the first line of its percentile distribution at or
    above 99.9% (its distribution halves the remaining tail per line)."""
    text = out.replace("\r", "\n")
    # LRANGE_* runs an LPUSH first to fill its list: the last test is the one asked for
    text = re.split(r"^====== ", text, flags=re.M)[-1]
    m = re.search(r"throughput summary: ([0-9.]+) requests per second", text)
    if not m:
        raise DriverError("redis-benchmark printed no throughput summary: " + _tail(out))
    res = {"throughput": float(m.group(1))}
    lat = re.search(r"latency summary \(msec\):\s*\n\s*avg\s+min\s+p50\s+p95\s+p99\s+max\s*\n"
                    r"\s*([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)",
                    text)
    if lat:
        res["p50_ms"] = float(lat.group(3))
        res["p99_ms"] = float(lat.group(5))
        res["max_ms"] = float(lat.group(6))
    p999 = None
    for pm in re.finditer(r"^([0-9.]+)% <= ([0-9.]+) milliseconds", text, re.M):
        if float(pm.group(1)) >= 99.9:
            p999 = float(pm.group(2))
            break
    res["p999_ms"] = p999
    m = re.search(r"(\d+) requests completed in ([0-9.]+) seconds", text)
    if m:
        res["requests"] = int(m.group(1))
    res["shed"] = 0
    res["errors"] = 0
    return res


def redis_benchmark(port, test, clients, requests, pipeline=1, value_size=100, keyspace=100000,
                    timeout=300):
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", test, "-c", str(clients),
            "-n", str(requests), "-d", str(value_size), "-r", str(keyspace), "-P", str(pipeline),
            "--precision", "3"]
    rc, out, err, cpu = _run(argv, timeout)
    if rc != 0 or "Error" in err:
        raise DriverError(f"redis-benchmark exited {rc}: {_tail(err or out)}")
    res = parse_redis_benchmark(out)
    res["client_cpu_s"] = cpu
    res["generator"] = "redis-benchmark"
    return res


def redis_benchmark_cmd(port, argv_cmd, clients, requests, pipeline=1, timeout=300,
                        keyspace=0):
    """redis-benchmark running one arbitrary command (XADD, PUBLISH ...);
    keyspace: __rand_int__ in its arguments ranges over that many values."""
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(clients),
            "-n", str(requests), "-P", str(pipeline), "--precision", "3"]
    if keyspace:
        argv += ["-r", str(keyspace)]
    argv += list(argv_cmd)
    rc, out, err, cpu = _run(argv, timeout)
    if rc != 0 or "Error" in err or "ERR" in out:
        raise DriverError(f"redis-benchmark exited {rc}: {_tail(err or out)}")
    res = parse_redis_benchmark(out)
    res["client_cpu_s"] = cpu
    res["generator"] = "redis-benchmark"
    return res


def multi_exec(port, conns=8, txs=2000, batch=20, cmds=10, timeout=300):
    """MULTI, `cmds` INCRs of one key per connection, EXEC: `txs`
    transactions per connection, `batch` of them pipelined at a time, on
    `conns` threads (the sockets release the GIL; replies are only counted:
    a transaction is 2 * cmds + 2 reply lines). Throughput in transactions
    per second; latency is per batch."""
    import socket
    import threading
    import time

    def one(i, out):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tx = (procs.resp_encode("MULTI") +
              procs.resp_encode("INCR", f"bench:tx:{i}") * cmds + procs.resp_encode("EXEC"))
        lines_per_tx = 2 * cmds + 2
        lat = []
        try:
            done = 0
            while done < txs:
                n = min(batch, txs - done)
                t0 = time.monotonic()
                s.sendall(tx * n)
                want, got, tail = lines_per_tx * n, 0, b""
                while got < want:
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        raise DriverError("connection closed")
                    if b"-" in chunk and (b"\r\n-" in tail[-2:] + chunk or chunk.startswith(b"-")):
                        raise DriverError("an error reply: " + _tail(chunk.decode("latin-1")))
                    got += chunk.count(b"\r\n")
                    tail = chunk
                lat.append(time.monotonic() - t0)
                done += n
        finally:
            s.close()
        out[i] = lat

    res = [None] * conns
    threads = [threading.Thread(target=one, args=(i, res)) for i in range(conns)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    secs = time.monotonic() - t0
    if any(r is None for r in res):
        raise DriverError("a connection failed")
    lat = sorted(x for r in res for x in r)
    return {"throughput": conns * txs / secs, "p50_ms": lat[len(lat) // 2] * 1000,
            "p99_ms": lat[min(len(lat) - 1, len(lat) * 99 // 100)] * 1000,
            "requests": conns * txs, "shed": 0, "errors": 0, "generator": "python (multi_exec)"}


def subscribers(port, channel, n):
    """n redis-cli processes subscribed to channel, their output thrown
    away; returns the Popen objects (stop them with kill)."""
    import subprocess
    return [subprocess.Popen(["redis-cli", "-p", str(port), "SUBSCRIBE", channel],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(n)]


# ---- wrk ---------------------------------------------------------------------


def wrk(url, script, duration, connections=50, threads=2, env_extra=None, timeout_pad=60):
    env = dict(os.environ)
    env.update(env_extra or {})
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
            "--timeout", "10s", "-s", script, url]
    rc, out, err, cpu = _run(argv, duration + timeout_pad, env=env)
    m = re.search(r"^WRK_JSON (\{.*\})$", out, re.M)
    if rc != 0 or not m:
        raise DriverError(f"wrk exited {rc}: {_tail(err or out)}")
    j = json.loads(m.group(1))
    secs = j["duration_us"] / 1e6
    errors = j["connect_errors"] + j["read_errors"] + j["write_errors"] + j["timeouts"]
    return {
        "throughput": j["requests"] / secs if secs else 0.0,
        "p50_ms": j["p50_us"] / 1000,
        "p99_ms": j["p99_us"] / 1000,
        "p999_ms": j["p999_us"] / 1000,
        "max_ms": j["max_us"] / 1000,
        "requests": j["requests"],
        "non2xx": j["non2xx"],
        "shed": 0,
        "errors": errors + j["non2xx"],
        "client_cpu_s": cpu,
        "generator": "wrk",
    }


# ---- cairnctl bench ------------------------------------------------------------


def cairnctl_bench(cairnctl, protocol, port, duration=None, requests=None, connections=50,
                   pipeline=1, read_ratio=0.0, keyspace=100000, keys="random", rate=None,
                   value_size=100, timeout_pad=120, log_path=None):
    argv = [cairnctl, "bench", "--protocol", protocol, "--target", f"127.0.0.1:{port}",
            "--connections", str(connections), "--pipeline", str(pipeline),
            "--read-ratio", str(read_ratio), "--keyspace", str(keyspace), "--keys", keys,
            "--value-size", str(value_size), "--json"]
    bound = timeout_pad
    if duration:
        argv += ["--duration", str(duration)]
        bound += duration
    if requests:
        argv += ["--requests", str(requests)]
    if rate:
        argv += ["--rate", f"{rate:.0f}"]
    rc, out, err, cpu = _run(argv, bound)
    if log_path:
        with open(log_path, "a") as f:
            f.write(" ".join(argv) + "\n" + err + out + "\n")
    line = next((ln for ln in out.splitlines() if ln.startswith("{")), None)
    if rc != 0 or not line:
        raise DriverError(f"cairnctl bench exited {rc}: {_tail(err or out)}")
    j = json.loads(line)
    lat = j["latency_ms"]
    return {
        "throughput": j["throughput"],
        "p50_ms": lat["p50"],
        "p99_ms": lat["p99"],
        "p999_ms": lat["p999"],
        "max_ms": lat["max"],
        "requests": j["answered"],
        "shed": j["shed"],
        "errors": j["errors"] + j["lost"],
        "misses": j["misses"],
        "sent": j["sent"],
        "elapsed_s": j["elapsed_s"],
        "client_cpu_s": cpu,
        "generator": "cairnctl bench",
    }


# ---- blocking pop wake-up ------------------------------------------------------


def _resp_read(f):
    """One whole RESP2 reply from a buffered socket file; errors raise."""
    line = f.readline()
    if not line:
        raise DriverError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"-":
        raise DriverError(f"server error: {rest.decode(errors='replace')[:200]}")
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_resp_read(f) for _ in range(n)]
    return rest


def blocking_wakeup(block_port, push_port, rounds, settle_s=0.01, key="bench:wakeup",
                    timeout=120):
    """Wake-up latency of a blocked BLPOP: one connection blocks on an
    empty list (on block_port), and once it has had settle_s to block, a
    second one LPUSHes (on push_port); the latency is from sending the
    push to receiving the popped element. The same Python loop times every
    server, so its own overhead (tens of microseconds) is in every figure."""
    import socket
    import time

    def connect(port):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s, s.makefile("rb")

    deadline = time.monotonic() + timeout
    (a, af), (b, bf) = connect(block_port), connect(push_port)
    try:
        b.sendall(procs.resp_encode("DEL", key))
        _resp_read(bf)
        lat = []
        t_start = time.monotonic()
        for i in range(rounds):
            if time.monotonic() > deadline:
                raise DriverError(f"wake-up rounds did not finish within {timeout}s")
            a.sendall(procs.resp_encode("BLPOP", key, "10"))
            time.sleep(settle_s)
            t0 = time.perf_counter()
            b.sendall(procs.resp_encode("LPUSH", key, f"v{i}"))
            got = _resp_read(af)
            t1 = time.perf_counter()
            _resp_read(bf)
            if got != [key.encode(), f"v{i}".encode()]:
                raise DriverError(f"BLPOP answered {got!r}, not the pushed element")
            lat.append((t1 - t0) * 1000)
        secs = time.monotonic() - t_start
    finally:
        a.close()
        b.close()
    lat.sort()

    def pct(p):
        return lat[min(len(lat) - 1, int(p * len(lat)))]

    return {"throughput": rounds / secs, "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "p999_ms": pct(0.999), "max_ms": lat[-1], "requests": rounds, "shed": 0,
            "errors": 0, "client_cpu_s": 0.0, "generator": "python BLPOP/LPUSH"}
