#!/usr/bin/env python3
"""Measure the longest request stall: GET one key in a tight keep-alive
loop for DURATION seconds and report latency percentiles and the maximum.
Usage: stall_probe.py HOST PORT DURATION"""
import http.client
import sys
import time

host, port, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
conn = http.client.HTTPConnection(host, port, timeout=10)
lat = []
end = time.monotonic() + duration
worst_at = 0.0
start = time.monotonic()
while time.monotonic() < end:
    t0 = time.monotonic()
    conn.request("GET", "/healthz")
    conn.getresponse().read()
    dt = time.monotonic() - t0
    if not lat or dt > max(lat):
        worst_at = t0 - start
    lat.append(dt)
lat.sort()
def pct(p):
    return lat[min(len(lat) - 1, int(len(lat) * p))] * 1000
print(f"requests={len(lat)} p50_ms={pct(0.5):.3f} p99_ms={pct(0.99):.3f} "
      f"p999_ms={pct(0.999):.3f} max_ms={lat[-1]*1000:.3f} worst_at_s={worst_at:.1f}")
