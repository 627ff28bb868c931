"""BENCHMARKS.md and the gnuplot plots, from the suite's raw results.

Every number in the report comes from the run's results.json; anything
that did not run is listed as not measured. bench/findings.md (written by
a person, about a named run) is appended verbatim when it exists."""
import datetime
import os
import platform
import re
import shutil
import statistics
import subprocess
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)

# (workload, test, competitor, target ratio or None): throughput ratios,
# cairn / competitor, higher is better.
COMPARISONS = [
    ("W1", "SET -P 1", "redis", 1.0),
    ("W1", "GET -P 1", "redis", 1.0),
    ("W1", "INCR -P 1", "redis", None),
    ("W1", "MSET -P 1", "redis", None),
    ("W1", "SET -P 16", "redis", 1.0),
    ("W1", "GET -P 16", "redis", 1.0),
    ("W1", "INCR -P 16", "redis", None),
    ("W1", "MSET -P 16", "redis", None),
    ("W1", "SET (cairnctl bench)", "memcached", None),
    ("W1", "GET (cairnctl bench)", "memcached", None),
    ("W1", "SET (cairnctl bench)", "redis", None),
    ("W1", "GET (cairnctl bench)", "redis", None),
    ("W2", "SET -c 1", "redis", None),
    ("W2", "SET -c 50", "redis", 1.0),
    ("W3", "PUT", "etcd", 5.0),
    ("W3", "GET", "etcd", 5.0),
    ("W3", "GET", "nginx", 0.8),
    ("W7", "PUT", "etcd", None),
] + [("W9", f"{t.upper()} -P {p}", "redis", 1.0)
     for p in (1, 16)
     for t in ("lpush", "rpush", "lpop", "rpop", "sadd", "hset", "spop", "zadd", "zpopmin",
               "lrange_100")] + [("W10", f"{t.upper()} -c 50", "redis", None)
                                 for t in ("lpush", "rpush", "sadd", "hset", "zadd")] + [
    ("W12", t, "redis", 1.0)
    for t in ("MULTI + 10 INCR + EXEC, 8 conns", "XADD * -P 16",
              "PUBLISH -P 16 to 1 subscriber(s)", "PUBLISH -P 16 to 100 subscriber(s)")]

TITLES = {
    "W1": "1. RESP in memory (cairn --persistence none vs redis-server --save '' "
          "--appendonly no; GET/SET also vs memcached)",
    "W2": "2. RESP durable (cairn durable vs redis-server --appendonly yes "
          "--appendfsync always)",
    "W3": "3. HTTP (wrk, 50 connections, 100-byte values: cairn durable vs etcd 3.4 JSON "
          "gateway vs nginx static file)",
    "W4": "4. Memory per key",
    "W5": "5. Recovery: process start to ready",
    "W6": "6. Overload (open loop, HTTP PUT, cairn durable)",
    "W7": "7. Cluster (3 nodes, wrk, 50 connections, 100-byte HTTP PUT: cairn durable vs "
          "etcd 3.4 JSON gateway, load sent to the leader)",
    "W8": "8. Memory of the data types (cairn --persistence none vs redis-server, no "
          "persistence)",
    "W9": "9. Data-type commands in memory (redis-benchmark's tests, cairn --persistence "
          "none vs redis-server --save '' --appendonly no)",
    "W10": "10. Data-type writes, durable (redis-benchmark, 50 clients: cairn durable, one node "
           "and the leader of 3 nodes, vs redis-server --appendonly yes --appendfsync always)",
    "W11": "11. Blocking pop wake-up latency (BLPOP blocked, then LPUSH from another "
           "connection: time from sending the push to receiving the element)",
    "W12": "12. Transactions, streams, pub/sub in memory (cairn --persistence none vs "
           "redis-server --save '' --appendonly no)",
    "W13": "13. Transactions, streams, scripts, pub/sub durable (cairn durable, one node, vs "
           "redis-server --appendonly yes --appendfsync always)",
}


def _cmd_out(argv):
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
        return p.stdout.decode(errors="replace").strip().splitlines()[0]
    except Exception:  # noqa: BLE001
        return "not installed"


def _fsync_probe(path, n=50):
    f = os.path.join(path, "fsync-probe")
    fd = os.open(f, os.O_WRONLY | os.O_CREAT, 0o600)
    lat = []
    try:
        for _ in range(n):
            os.write(fd, b"x" * 4096)
            t = time.perf_counter()
            os.fdatasync(fd)
            lat.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        os.unlink(f)
    lat.sort()
    return lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000


def machine_info(tmp):
    info = {"cores": os.cpu_count(), "kernel": platform.release()}
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
            info["cpu"] = m.group(1) if m else "unknown"
        with open("/proc/meminfo") as f:
            info["memory_gib"] = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
        with open("/etc/debian_version") as f:
            info["debian"] = f.read().strip()
    except OSError:
        pass
    src = _cmd_out(["findmnt", "-n", "-o", "SOURCE,FSTYPE", "--target", tmp])
    info["disk"] = src
    dev = os.path.basename(src.split()[0]) if src and src != "not installed" else ""
    rot = f"/sys/block/{re.sub(r'[0-9]+$', '', dev)}/queue/rotational"
    if os.path.exists(rot):
        with open(rot) as f:
            info["disk"] += (" (kernel reports rotational=1; a virtual disk here)"
                             if f.read().strip() == "1" else " (non-rotational)")
    try:
        p50, p99 = _fsync_probe(tmp)
        info["fdatasync_ms"] = f"p50 {p50:.2f} ms, p99 {p99:.2f} ms (4 KiB appends)"
    except OSError as e:
        info["fdatasync_ms"] = f"not measured: {e}"
    with open("/proc/loadavg") as f:
        info["loadavg_at_start"] = f.read().split()[0]
    info["versions"] = {
        "redis-server": _cmd_out(["redis-server", "--version"]),
        "memcached": _cmd_out(["memcached", "-V"]),
        "etcd": _cmd_out(["etcd", "--version"]),
        "nginx": _cmd_out(["nginx", "-v"]),
        "wrk": _cmd_out(["wrk", "-v"]),
    }
    info["git"] = _cmd_out(["git", "-C", REPO, "describe", "--always", "--dirty"])
    return info


# ---- aggregation ---------------------------------------------------------------


def _med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def aggregate(results):
    groups = {}
    for r in results:
        groups.setdefault((r["workload"], r["test"], r["side"]), []).append(r)
    agg = {}
    for key, rows in groups.items():
        ok = [r for r in rows if r.get("ok") and r.get("throughput") is not None]
        a = {"runs": len(rows), "ok_runs": len(ok),
             "errors": [r.get("error") for r in rows if not r.get("ok")]}
        if ok:
            a["throughput"] = _med([r["throughput"] for r in ok])
            a["all_throughput"] = [r["throughput"] for r in ok]
            a["all_p50"] = [r.get("p50_ms") or 0 for r in ok]
            for k in ("p50_ms", "p99_ms", "p999_ms", "server_cpu_s", "client_cpu_s"):
                a[k] = _med([r.get(k) for r in ok])
            a["cpu_us_per_req"] = _med([r["server_cpu_s"] / r["requests"] * 1e6 for r in ok
                                        if r.get("requests") and r.get("server_cpu_s") is not None])
            a["peak_rss_mb"] = max((r.get("peak_rss_mb") or 0) for r in ok)
            a["shed"] = _med([r.get("shed") for r in ok])
            a["requests"] = _med([r.get("requests") for r in ok])
            a["loadavg"] = [r.get("loadavg") for r in ok]
            if len(ok) > 1 and a["throughput"]:
                a["spread"] = (max(a["all_throughput"]) - min(a["all_throughput"])) / a["throughput"]
        ready = [r["ready_s"] for r in rows if r.get("ok") and r.get("ready_s") is not None]
        if ready:
            a["ready_s"] = _med(ready)
            a["all_ready"] = ready
            a["stored"] = [r.get("stored") for r in rows if r.get("ok")][-1]
            a["peak_rss_mb"] = max((r.get("peak_rss_mb") or 0) for r in rows if r.get("ok"))
        agg[key] = a
    return agg


def _f(v, fmt="{:.0f}", none="–"):
    return none if v is None else fmt.format(v)


NOISE = 0.15  # ratios this close to a target are not a verdict on this machine


def _status(ratio, target, higher_better=True, noisy=True):
    if ratio is None:
        return "not measured"
    if target is None:
        return "(no target)"
    ok = ratio >= target if higher_better else ratio <= target
    close = noisy and abs(ratio / target - 1) < NOISE
    if ok:
        return "met (within noise)" if close else "met"
    return "below target (within noise)" if close else "**below target**"


# ---- the report ----------------------------------------------------------------


def targets_table(suite, agg):
    rows = []
    for w, test, comp, target in COMPARISONS:
        if target is None:
            continue
        a, b = agg.get((w, test, "cairn"), {}), agg.get((w, test, comp), {})
        ratio = a["throughput"] / b["throughput"] if a.get("throughput") and b.get(
            "throughput") else None
        rows.append((f"{w} {test}: throughput vs {comp}", f"≥ {target:.1f}×",
                     _f(ratio, "{:.2f}×", "not measured"), _status(ratio, target)))
    mem = suite.extra.get("W4", {}).get("memory", {})
    for mode in ("cairn-none", "cairn-durable"):
        c, r = mem.get(mode, {}), mem.get("redis", {})
        ratio = (c["bytes_per_key"] / r["bytes_per_key"]
                 if c.get("bytes_per_key") and r.get("bytes_per_key") else None)
        rows.append((f"W4 memory per key, {mode} vs redis", "≤ 1.0×",
                     _f(ratio, "{:.2f}×", "not measured"), _status(ratio, 1.0, False, False)))
    for comp in ("redis AOF", "redis RDB"):
        keys = [k for k in agg if k[0] == "W5" and k[2] == "cairn durable"]
        c = agg[keys[0]] if keys else {}
        r = agg.get((keys[0][0], keys[0][1], comp), {}) if keys else {}
        ratio = c["ready_s"] / r["ready_s"] if c.get("ready_s") and r.get("ready_s") else None
        rows.append((f"W5 recovery time vs {comp}", "≤ 1.0×",
                     _f(ratio, "{:.2f}×", "not measured"), _status(ratio, 1.0, False)))
    p70, p150 = agg.get(("W6", "70%", "cairn"), {}), agg.get(("W6", "150%", "cairn"), {})
    ratio = p150["p99_ms"] / p70["p99_ms"] if p70.get("p99_ms") and p150.get("p99_ms") else None
    rows.append(("W6 overload: p99 at 150% / p99 at 70%", "≤ 3.0×",
                 _f(ratio, "{:.2f}×", "not measured"), _status(ratio, 3.0, False)))
    out = ["| target | wanted | measured (cairn / other) | status |", "|---|---|---|---|"]
    out += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return out


def workload_table(w, agg):
    keys = [k for k in agg if k[0] == w and "throughput" in agg[k]]
    if not keys:
        keys = [k for k in agg if k[0] == w]
        if not keys:
            return []
    tests = []
    for k in keys:
        if k[1] not in tests:
            tests.append(k[1])
    out = ["| test | server | req/s (median) | p50 ms | p99 ms | p99.9 ms | server CPU s | "
           "server CPU µs/req | generator CPU s | peak RSS MB | cairn / this | runs (req/s) |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for t in tests:
        sides = [k[2] for k in keys if k[1] == t]
        sides.sort(key=lambda s: (s != "cairn", s))
        base = agg.get((w, t, "cairn"), {}).get("throughput")
        for s in sides:
            a = agg[(w, t, s)]
            if not a.get("ok_runs"):
                err = "; ".join(e for e in a["errors"] if e)[:160]
                out.append(f"| {t} | {s} | failed: {err} | | | | | | | | | |")
                continue
            ratio = "" if s == "cairn" or not base else f"{base / a['throughput']:.2f}×"
            runs = ", ".join(f"{x:.0f}" for x in a["all_throughput"])
            out.append(f"| {t} | {s} | {_f(a['throughput'])} | {_f(a['p50_ms'], '{:.3f}')} | "
                       f"{_f(a['p99_ms'], '{:.3f}')} | {_f(a['p999_ms'], '{:.3f}')} | "
                       f"{_f(a['server_cpu_s'], '{:.2f}')} | {_f(a['cpu_us_per_req'], '{:.1f}')} | "
                       f"{_f(a['client_cpu_s'], '{:.2f}')} | "
                       f"{_f(a['peak_rss_mb'], '{:.0f}')} | {ratio} | {runs} |")
    return out


def _section(suite, w, intro, table):
    """A workload's heading, its introduction, its table and its notes."""
    return ([f"### {TITLES[w]}", "", intro, ""] + (table or ["Not measured."]) +
            [f"- {n}" for n in suite.notes.get(w, [])] + [""])


def wakeup_table(agg):
    """W11: latency percentiles per side, and each side's p50 / redis' p50."""
    keys = [k for k in agg if k[0] == "W11"]
    if not keys:
        return []
    redis = agg.get(("W11", keys[0][1], "redis"), {}).get("p50_ms")
    out = ["| server | rounds | p50 ms | p99 ms | p99.9 ms | p50 / redis' p50 | runs (p50 ms) |",
           "|---|---:|---:|---:|---:|---:|---|"]
    for k in sorted(keys, key=lambda k: (k[2] != "redis", k[2])):
        a = agg[k]
        if not a.get("ok_runs"):
            err = "; ".join(e for e in a["errors"] if e)[:160]
            out.append(f"| {k[2]} | failed: {err} | | | | | |")
            continue
        ratio = f"{a['p50_ms'] / redis:.1f}×" if redis and k[2] != "redis" else ""
        out.append(f"| {k[2]} | {_f(a['requests'])} | {a['p50_ms']:.3f} | {a['p99_ms']:.3f} | "
                   f"{_f(a['p999_ms'], '{:.3f}')} | {ratio} | "
                   + ", ".join(f"{x:.3f}" for x in a["all_p50"]) + " |")
    return out


def memory_table(suite):
    mem = suite.extra.get("W4", {}).get("memory", {})
    if not mem:
        return []
    r = mem.get("redis", {}).get("bytes_per_key")
    out = ["| server | keys written | keys stored | RSS before MB | RSS after MB | peak RSS MB | "
           "bytes per key | this / redis | load rate (keys/s) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, m in mem.items():
        ratio = f"{m['bytes_per_key'] / r:.2f}×" if r and m.get("bytes_per_key") else ""
        out.append(f"| {name} | {m['keys']} | {_f(m.get('stored'))} | "
                   f"{m['rss_before_mb']:.1f} | {m['rss_after_mb']:.1f} | "
                   f"{m['peak_rss_mb']:.1f} | {_f(m.get('bytes_per_key'))} | {ratio} | "
                   f"{_f(m.get('load_rate'))} |")
    return out


def datatype_memory_table(suite):
    mem = suite.extra.get("W8", {}).get("memory", {})
    if not mem:
        return []
    out = ["| data set | elements | cairn bytes/element | redis bytes/element | cairn / redis | "
           "cairn load s | redis load s |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    names = []
    for label in mem:
        name = label.rsplit("/", 1)[0]
        if name not in names:
            names.append(name)
    for name in names:
        c, r = mem.get(f"{name}/cairn"), mem.get(f"{name}/redis")
        ratio = (f"{c['bytes_per_element'] / r['bytes_per_element']:.2f}×"
                 if c and r and r["bytes_per_element"] > 0 else "")
        out.append(f"| {name} | {(c or r)['elements']} | "
                   f"{_f(c and c['bytes_per_element'], '{:.1f}')} | "
                   f"{_f(r and r['bytes_per_element'], '{:.1f}')} | {ratio} | "
                   f"{_f(c and c['load_s'], '{:.1f}')} | {_f(r and r['load_s'], '{:.1f}')} |")
    return out


def recovery_table(agg):
    keys = [k for k in agg if k[0] == "W5"]
    if not keys:
        return []
    base = next((agg[k].get("ready_s") for k in keys if k[2] == "cairn durable"), None)
    out = ["| server | keys found after restart | start → ready, s (median) | runs (s) | "
           "peak RSS MB | cairn / this |", "|---|---:|---:|---|---:|---:|"]
    for k in keys:
        a = agg[k]
        if not a.get("ready_s"):
            out.append(f"| {k[2]} | failed: {'; '.join(e for e in a['errors'] if e)[:160]} "
                       "| | | | |")
            continue
        ratio = "" if k[2] == "cairn durable" or not base else f"{base / a['ready_s']:.2f}×"
        runs = ", ".join(f"{x:.2f}" for x in a["all_ready"])
        out.append(f"| {k[2]} | {_f(a.get('stored'))} | {a['ready_s']:.2f} | {runs} | "
                   f"{_f(a.get('peak_rss_mb'))} | {ratio} |")
    return out


def overload_table(suite, agg):
    ex = suite.extra.get("W6")
    if not ex:
        return []
    steps = sorted({k[1] for k in agg if k[0] == "W6" and k[1].endswith("%")},
                   key=lambda s: float(s[:-1]))
    out = [f"Capacity (closed loop, 50 connections, HTTP PUT): {ex['capacity']:.0f} req/s; "
           f"cairnd --max-inflight {ex['max_inflight']}; generator: 50 connections, up to "
           f"{ex['pipeline']} requests in flight each, latency from each request's intended "
           "send time.", "",
           "| offered | offered req/s | served req/s | shed (503) | p50 ms | p99 ms | p99.9 ms |",
           "|---:|---:|---:|---:|---:|---:|---:|"]
    out_notes = []
    for s in steps:
        a = agg[("W6", s, "cairn")]
        if not a.get("ok_runs"):
            out.append(f"| {s} | failed | | | | | |")
            continue
        rows = [r for r in suite.results if r["workload"] == "W6" and r["test"] == s and r["ok"]]
        shed_share = _med([r["shed"] / r["requests"] for r in rows if r.get("requests")])
        served = _med([(r["requests"] - r["shed"]) / r["elapsed_s"] for r in rows
                       if r.get("elapsed_s")])
        out.append(f"| {s} | {_f(_med([r['offered_rate'] for r in rows]))} | {_f(served)} | "
                   f"{_f(shed_share * 100 if shed_share is not None else None, '{:.1f}%')} | "
                   f"{_f(a['p50_ms'], '{:.2f}')} | {_f(a['p99_ms'], '{:.2f}')} | "
                   f"{_f(a['p999_ms'], '{:.2f}')} |")
        if float(s[:-1]) < 100 and shed_share:
            out_notes.append(f"At {s} of capacity {shed_share * 100:.1f}% was shed: the "
                             "server fell behind its measured capacity during that step (a "
                             "stall or CPU taken by other work); open-loop requests then pile "
                             f"up past --max-inflight {ex['max_inflight']} and are refused.")
    return out + [""] + [f"- {n}" for n in out_notes] if out_notes else out


# ---- plots ---------------------------------------------------------------------


def _label(s):
    return s.replace('"', "'").replace("_", " ")


def plots(suite, agg, plots_dir):
    made = []
    if not shutil.which("gnuplot"):
        return made, "gnuplot not installed: no plots"
    os.makedirs(plots_dir, exist_ok=True)
    data_dir = suite.out
    pairs = []
    for w, test, comp, _ in COMPARISONS:
        a, b = agg.get((w, test, "cairn"), {}), agg.get((w, test, comp), {})
        if a.get("throughput") and b.get("throughput"):
            pairs.append((f"{w} {test} vs {comp}", a, b))
    if pairs:
        tp = os.path.join(data_dir, "throughput.dat")
        with open(tp, "w") as f:
            f.write("label cairn other ratio\n")
            for lbl, a, b in pairs:
                f.write(f'"{_label(lbl)}" {a["throughput"]:.1f} {b["throughput"]:.1f} '
                        f'{a["throughput"] / b["throughput"]:.4f}\n')
        lt = os.path.join(data_dir, "latency.dat")
        with open(lt, "w") as f:
            f.write("label c50 o50 c99 o99 c999 o999\n")
            for lbl, a, b in pairs:
                vals = [a.get("p50_ms"), b.get("p50_ms"), a.get("p99_ms"), b.get("p99_ms"),
                        a.get("p999_ms"), b.get("p999_ms")]
                f.write(f'"{_label(lbl)}" ' + " ".join(
                    "NaN" if v is None else f"{v:.4f}" for v in vals) + "\n")
        for name, datafile in (("throughput", tp), ("latency", lt)):
            made.append(_gnuplot(name, datafile, plots_dir, suite))
    steps = sorted({k[1] for k in agg if k[0] == "W6" and k[1].endswith("%")},
                   key=lambda s: float(s[:-1]))
    if steps:
        od = os.path.join(data_dir, "overload.dat")
        with open(od, "w") as f:
            f.write("offered_pct p50 p99 p999 shed_pct\n")
            for s in steps:
                a = agg[("W6", s, "cairn")]
                rows = [r for r in suite.results
                        if r["workload"] == "W6" and r["test"] == s and r["ok"]]
                shed = _med([r["shed"] / r["requests"] * 100 for r in rows if r.get("requests")])
                if a.get("p99_ms") is None:
                    continue
                f.write(f"{s[:-1]} {a['p50_ms']:.4f} {a['p99_ms']:.4f} {a['p999_ms']:.4f} "
                        f"{shed or 0:.3f}\n")
        made.append(_gnuplot("overload", od, plots_dir, suite))
    return [m for m in made if m], None


def _gnuplot(name, datafile, plots_dir, suite):
    out = os.path.join(plots_dir, f"{name}.png")
    gp = os.path.join(BENCH_DIR, f"plot_{name}.gp")
    title = f"{suite.args.variant} run, {datetime.date.today().isoformat()}"
    try:
        subprocess.run(["gnuplot", "-e", f"datafile='{datafile}'; outfile='{out}'; "
                        f"subtitle='{title}'", gp], check=True, timeout=60,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return out
    except Exception as e:  # noqa: BLE001
        suite.notes.setdefault("plots", []).append(f"{name}.png not made: {e}")
        return None


def write(suite):
    agg = aggregate(suite.results)
    variant = suite.args.variant
    default_report = (os.path.join(REPO, "BENCHMARKS.md") if variant != "smoke"
                      else os.path.join(suite.out, "BENCHMARKS.md"))
    path = os.path.abspath(suite.args.report or default_report)
    plots_dir = os.path.abspath(suite.args.plots_dir or (
        os.path.join(BENCH_DIR, "plots") if variant != "smoke" else os.path.join(suite.out,
                                                                                   "plots")))
    made, why = plots(suite, agg, plots_dir)
    m = suite.machine
    rel = os.path.relpath
    L = ["# cairn benchmarks", "",
         f"Generated by `bench/run.sh {variant}` (`bench/suite.py`) on "
         f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} in {suite.elapsed:.0f} s, "
         f"cairn `{m.get('git')}`. Every number below comes from that run's "
         f"`results.json`; nothing is edited by hand. Each comparison alternates its sides "
         f"(A B A B ...) for {suite.rounds} round(s) and reports the median.", "",
         "Reproduce: `bench/run.sh quick` (under 5 minutes) or `bench/run.sh full`; see the "
         "README's Benchmarks section.", "",
         "## Machine", "",
         f"- {m.get('cores')} cores: {m.get('cpu')}; {m.get('memory_gib')} GiB RAM",
         f"- kernel {m.get('kernel')}, Debian {m.get('debian', '?')}",
         f"- disk of the data dirs: {m.get('disk')}; fdatasync {m.get('fdatasync_ms')}",
         "- " + "; ".join(f"{k}: {v}" for k, v in m.get("versions", {}).items()),
         "- load generators and servers share the same 2 cores; loopback only", ""]
    loads = [x for x in suite.loadavg if x is not None]
    if loads:
        L += ["**Noise.** This machine is shared with other engineers' builds and tests. "
              f"1-minute load average when runs started: {min(loads):.2f} to {max(loads):.2f} "
              f"(median {statistics.median(loads):.2f}) on 2 cores, i.e. the servers and "
              "generators competed for CPU with unrelated work. Treat single ratios within "
              "about ±15% of a target as inconclusive (marked \"within noise\"); the `runs` "
              "column shows the individual A/B runs. With 2 rounds (quick) the median is the "
              "mean of the pair. `generator CPU s` is the load generator's own CPU time: "
              "where generator and server each use most of a core, the 2-core machine, not "
              "the server alone, is the limit.", ""]
    L += ["## Targets", ""] + targets_table(suite, agg) + [""]
    settings = [
        "Settings: cairnd `--log-level warn` on loopback, one node; redis-server "
        "`--save '' --appendonly no` (W1), `--appendonly yes --appendfsync always` (W2); "
        "memcached `-t 1 -m 4096`; etcd 3.4 single node, defaults; nginx `worker_processes 1`, "
        "`access_log off`. cairn, redis and the single memcached worker thread each serve from "
        "one event loop, so one nginx worker keeps the comparison per core.",
        "Generators: `redis-benchmark -c 50 -d 100 -r 100000` (W1, W2), `wrk -t 2 -c 50` "
        "with bench/wrk_*.lua (W3), `cairnctl bench` (memcached comparison, preloading, W4, "
        "W6). Server CPU is utime+stime from /proc/PID/stat around each run; peak RSS is "
        "VmHWM from /proc/PID/status.",
    ]
    L += ["## Results", ""] + settings + [""]
    for w in ("W1", "W9", "W12", "W2", "W10", "W13", "W3"):
        L += [f"### {TITLES[w]}", ""]
        t = workload_table(w, agg)
        L += t if t else ["Not measured."]
        L += [f"- {n}" for n in suite.notes.get(w, [])] + [""]
    if any(k[0] == "W11" for k in agg) or suite.notes.get("W11"):
        L += _section(suite, "W11",
                      "One blocked client and one pushing client on loopback, driven by one "
                      "Python loop (its overhead is in every figure); the push goes to the "
                      "leader in the 3-node runs. In cairn the pop that serves a blocked client "
                      "is itself a log entry, so a durable wake-up includes that entry's commit "
                      "(an fsync; on 3 nodes, a replication round trip).", wakeup_table(agg))
    L += [f"### {TITLES['W4']}", "",
          "Keys `k` + 15 digits (16 bytes), 100-byte values, written once each by "
          "`cairnctl bench --keys sequential --pipeline 16`; bytes per key = (RSS after − RSS "
          "before) / keys, where \"after\" is once RSS has stayed within 1% for 2 s (at "
          "most 20 s: background snapshots and AOF work finish first). redis-server runs with `--appendonly yes --appendfsync everysec` "
          "here so that W5 can restart it from the same data (AOF adds no per-key memory).",
          ""]
    L += memory_table(suite) or ["Not measured."]
    L += [f"- {n}" for n in suite.notes.get("W4", [])] + [""]
    if suite.extra.get("W8") or suite.notes.get("W8"):
        L += _section(suite, "W8",
                      "Each data set in a fresh server, loaded with `redis-cli --pipe` (batches "
                      "of 100 elements a command; as many small hashes as the others have "
                      "elements, one `HSET` of 10 fields each; a tenth as many small sorted sets, "
                      "one `ZADD` of 10 members with whole-number scores each); bytes per element (a hash field, "
                      "a list element, a member) = (RSS once steady − RSS before) / elements. "
                      "Fields, members and elements of 8-15 bytes.", datatype_memory_table(suite))
    L += [f"### {TITLES['W5']}", "",
          "Time from spawning the process to: cairn `/readyz` 200; redis `PING` answered "
          "(not `-LOADING`). redis AOF: multi-part AOF without rewrite (every write replayed "
          "as a command); redis RDB: the same data saved with `SAVE`, started with "
          "`--appendonly no`. cairn: its latest snapshot plus the log tail.", ""]
    L += recovery_table(agg) or ["Not measured."]
    L += ["", "\"cairn --restore of redis' RDB\" is a migration, not a restart: a fresh node "
          "reads redis' file and writes every key through its own Raft log (durable) before "
          "it is ready; compare it with \"redis RDB\", redis loading the same file."]
    L += [f"- {n}" for n in suite.notes.get("W5", [])] + [""]
    L += [f"### {TITLES['W6']}", ""]
    L += overload_table(suite, agg) or ["Not measured."]
    L += [f"- {n}" for n in suite.notes.get("W6", [])] + [""]
    L += [f"### {TITLES['W7']}", ""]
    t = workload_table("W7", agg)
    if t:
        ex = suite.extra.get("W7", {})
        ready = ex.get("start_to_ready_s", {})
        L += ["Two clusters of 3 members each on loopback, one data dir per member, both "
              "running during the whole workload: cairnd `--initial-cluster` `--persistence "
              "durable` `--log-level warn` (RESP off), and etcd 3.4 with `--initial-cluster`, "
              "`--initial-cluster-state new`, otherwise defaults. Both fsync every write "
              "before acknowledging it: cairn's durable mode fsyncs the Raft log entry "
              "(libraft), etcd fsyncs its WAL by default (heartbeat 100 ms, election 1000 ms, "
              "no `--unsafe-no-fsync`); each side batches the writes that arrive during an "
              "fsync. `wrk -t 2 -c 50` with bench/wrk_put.lua (cairn, `PUT /v1/key/<key>`) "
              "and bench/wrk_etcd.lua (`POST /v3/kv/put`), random 16-byte keys, 100-byte "
              "values, the same load generator as W3. The load goes to the member that leads "
              "when each run starts (cairn: `leader` of `GET /v1/status`; etcd: `leader` vs "
              "`header.member_id` of `POST /v3/maintenance/status`); \"cairn via follower\" "
              "sends the same load to a follower, which forwards each write to the leader. "
              "Server CPU s and peak RSS are summed over the 3 processes of a cluster; "
              "rounds alternate cairn, etcd, cairn via follower. 6 servers and the "
              "generator share the machine's cores."
              + (" Start to ready (all members ready, a leader elected): "
                 + ", ".join(f"{k} {v:.2f} s" for k, v in ready.items() if v is not None)
                 + "." if ready else ""), ""]
        L += t
    else:
        L += ["Not measured."]
    L += [f"- {n}" for n in suite.notes.get("W7", [])] + [""]
    metrics = {**suite.extra.get("W3", {}).get("cairn_metrics", {}),
               **suite.extra.get("W4", {}).get("cairn_durable_metrics", {})}
    if metrics:
        L += ["### cairn's own loop-lag metrics", "",
              "Scraped from `/metrics` after the durable runs (W3: HTTP load; W4: after "
              "loading its keys):",
              ""]
        for k in ("W3", "W4"):
            src = suite.extra.get(k, {}).get("cairn_metrics" if k == "W3" else
                                              "cairn_durable_metrics", {})
            for name, v in src.items():
                L.append(f"- {k}: `{name}` = {v * 1000:.1f} ms")
        L.append("")
    if made:
        L += ["## Plots", ""]
        for p in made:
            L.append(f"![{os.path.basename(p)}]({rel(p, os.path.dirname(path))})")
        L.append("")
    elif why:
        L += ["## Plots", "", why, ""]
    other = [n for k, ns in suite.notes.items() if k not in TITLES for n in ns]
    if other:
        L += ["## Other notes", ""] + [f"- {n}" for n in other] + [""]
    L += ["Raw results and server logs: `" + rel(suite.out, REPO) + "` (not committed).", ""]
    findings = os.path.join(BENCH_DIR, "findings.md")
    if variant != "smoke" and os.path.exists(findings):
        with open(findings) as f:
            L += [f.read().rstrip(), ""]
    with open(path, "w") as f:
        f.write("\n".join(L))
    suite.report_path = path
