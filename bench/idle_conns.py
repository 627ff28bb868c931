#!/usr/bin/env python3
"""Does holding N idle connections slow a working client? Starts one cairnd
(--persistence none), measures GET latency with wrk (10 connections), opens
N idle TCP connections, measures again, alternating twice.
Usage: bench/idle_conns.py [N] [PORT]   (loopback only)"""
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 28460


def wrk():
    out = subprocess.run(["wrk", "-t1", "-c10", "-d5s", "--latency",
                          f"http://127.0.0.1:{PORT}/v1/key/k"], capture_output=True, text=True,
                         timeout=30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+(\S+)", out).group(1)
    return rps, p99


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, N + 1000), hard))
    work = tempfile.mkdtemp()
    proc = subprocess.Popen([os.path.join(ROOT, "build", "cairnd"), "--persistence", "none",
                             "--data-dir", work, "--listen-http", f"127.0.0.1:{PORT}",
                             "--listen-resp", "off", "--max-clients", str(N + 100)],
                            stderr=subprocess.DEVNULL)
    socks = []
    try:
        time.sleep(0.5)
        subprocess.run(["curl", "-s", "-X", "PUT", "-d", "v",
                        f"http://127.0.0.1:{PORT}/v1/key/k"], check=True, capture_output=True)
        rows = []
        for rnd in range(2):
            rows.append(("without idle", *wrk()))
            for _ in range(N - len(socks)):
                socks.append(socket.create_connection(("127.0.0.1", PORT)))
            time.sleep(1)
            rows.append((f"with {N} idle", *wrk()))
            for s in socks:
                s.close()
            socks = []
            time.sleep(1)
        for name, rps, p99 in rows:
            print(f"{name:>16}: {rps:10.0f} req/s  p99 {p99}")
    finally:
        for s in socks:
            s.close()
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
