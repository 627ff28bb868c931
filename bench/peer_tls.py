#!/usr/bin/env python3
"""What TLS on the Raft peer port costs on the write path.

Two cairnd builds, each as a 3-node durable cluster on loopback with every
client port over TLS (the same certificates): OLD, a build whose peer port
is plain text (before transport_mux's TLS), and NEW, one whose peer traffic
goes through net/tls_pump.c. redis-benchmark --tls sends SET to the leader
(-P 16, 50 connections); rounds alternate between the two so that drift on
this shared machine hits both. Prints requests/s per round, the medians and
NEW/OLD with the spread of the per-round ratios.

Usage: /usr/bin/python3 bench/peer_tls.py --old OLD/cairnd --new NEW/cairnd
       [--rounds 3] [--requests 200000]
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import ssl
import urllib.request


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(d):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=bench CA", cwd=d)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "node.key", "-out", "node.csr", "-subj", "/CN=node", cwd=d)
    with open(os.path.join(d, "node.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "node.pem", "-days", "2", "-extfile", "node.ext", cwd=d)


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Cluster:
    def __init__(self, binary, certs, work):
        self.procs = []
        self.nodes = []
        ports = free_ports(9)
        members = ",".join(f"{i + 1}=127.0.0.1:{ports[3 * i + 2]}" for i in range(3))
        self.cert = os.path.join(certs, "node.pem")
        self.key = os.path.join(certs, "node.key")
        self.ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
        self.ctx.load_cert_chain(self.cert, self.key)  # --tls-client-ca: mutual TLS
        for i in range(3):
            http, resp, peer = ports[3 * i:3 * i + 3]
            data = os.path.join(work, f"n{i + 1}")
            log = open(os.path.join(work, f"n{i + 1}.log"), "w")
            p = subprocess.Popen(
                [binary, "--id", str(i + 1), "--data-dir", data,
                 "--listen-http", f"127.0.0.1:{http}", "--listen-resp", f"127.0.0.1:{resp}",
                 "--listen-peer", f"127.0.0.1:{peer}", "--initial-cluster", members,
                 "--tls-cert", os.path.join(certs, "node.pem"),
                 "--tls-key", os.path.join(certs, "node.key"),
                 "--tls-client-ca", os.path.join(certs, "ca.pem")],
                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
            self.procs.append(p)
            self.nodes.append({"id": i + 1, "http": http, "resp": resp})

    def status(self, node):
        with urllib.request.urlopen(f"https://127.0.0.1:{node['http']}/v1/status",
                                    context=self.ctx, timeout=3) as r:
            return json.load(r)

    def leader(self, timeout=30):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                ids = {self.status(n)["leader"] for n in self.nodes}
                if len(ids) == 1 and ids != {0}:
                    lid = ids.pop()
                    return next(n for n in self.nodes if n["id"] == lid)
            except Exception:
                pass
            time.sleep(0.2)
        raise RuntimeError("no leader")

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def cpu_seconds(pids):
    """user + system CPU of the processes, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def run_round(binary, certs, requests):
    work = tempfile.mkdtemp(prefix="peer-tls-")
    c = Cluster(binary, certs, work)
    try:
        leader = c.leader()
        pids = [p.pid for p in c.procs]
        cpu0 = cpu_seconds(pids)
        out = subprocess.run(
            ["redis-benchmark", "-p", str(leader["resp"]), "--tls",
             "--cacert", os.path.join(certs, "ca.pem"), "--cert", c.cert, "--key", c.key,
             "-t", "set", "-P", "16", "-c", "50", "-n", str(requests), "-r", "100000", "-q",
             "--csv"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
        cpu = cpu_seconds(pids) - cpu0
        for line in out.stdout.splitlines():
            if line.startswith('"SET"'):
                return float(line.split(",")[1].strip('"')), cpu * 1e6 / requests
        raise RuntimeError(out.stdout[-2000:])
    finally:
        c.stop()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=200000)
    a = ap.parse_args()
    certs = tempfile.mkdtemp(prefix="peer-tls-certs-")
    try:
        make_certs(certs)
        old, new, old_cpu, new_cpu = [], [], [], []
        for r in range(a.rounds):
            rate, cpu = run_round(a.old, certs, a.requests)
            old.append(rate)
            old_cpu.append(cpu)
            rate, cpu = run_round(a.new, certs, a.requests)
            new.append(rate)
            new_cpu.append(cpu)
            print(f"round {r + 1}: plain peers {old[-1]:.0f} req/s {old_cpu[-1]:.1f} us CPU/req, "
                  f"TLS peers {new[-1]:.0f} req/s {new_cpu[-1]:.1f} us CPU/req "
                  "(CPU: the three nodes together)", flush=True)
        ratios = [n / o for n, o in zip(new, old)]
        cpu_ratios = [n / o for n, o in zip(new_cpu, old_cpu)]
        print(f"median: plain peers {statistics.median(old):.0f}, TLS peers "
              f"{statistics.median(new):.0f} req/s; TLS/plain {statistics.median(ratios):.2f}x "
              f"(rounds {min(ratios):.2f}-{max(ratios):.2f}); CPU per request TLS/plain "
              f"{statistics.median(cpu_ratios):.2f}x "
              f"(rounds {min(cpu_ratios):.2f}-{max(cpu_ratios):.2f})")
    finally:
        shutil.rmtree(certs, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
