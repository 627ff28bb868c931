#!/usr/bin/env python3
"""Chaos run against a real 3-node cairn cluster on loopback (the `make
chaos` of this project).

    /usr/bin/python3 tests/jepsen/chaos.py --duration 300 --seed 42
    /usr/bin/python3 tests/jepsen/chaos.py --nemesis kill-leader:2,partition-leader,member
    /usr/bin/python3 tests/jepsen/chaos.py --check build/jepsen-results/<run>/history.jsonl
    /usr/bin/python3 tests/jepsen/chaos.py --list-nemeses

Prints a summary (operations by type and outcome, faults injected, the
verdict); on failure (or with --save always) writes history.jsonl,
faults.jsonl, schedule.json, summary.txt and every node's log under
--results (default build/jepsen-results/<time>-seed<seed>/). The same
seed replays the same fault schedule. Exit status: 0 valid, 1 a safety
violation, 2 harness trouble or an undecided check, 3 bad usage.

Binary: $CAIRN_BUILD_DIR/cairnd (default build/cairnd).
"""
import argparse
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import checker  # noqa: E402
from nemesis import make_schedule, parse_mix  # noqa: E402
from runner import Runner, default_results_root  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=120.0,
                    help="seconds of faults (the run adds start-up and checking), default 120")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: time based, printed)")
    ap.add_argument("--nemesis", default="all",
                    help="fault mix: 'all' or kind[:weight],... (see --list-nemeses)")
    ap.add_argument("--rounds", type=int, default=None,
                    help="run exactly N shuffled rounds of the mix (each kind once per round) "
                         "instead of filling --duration; --duration then only bounds the run")
    ap.add_argument("--fault-time", default="3,6", help="MIN,MAX seconds each fault lasts (default 3,6)")
    ap.add_argument("--delay-ms", default="20,150", help="MIN,MAX link delay of the delay fault (default 20,150)")
    ap.add_argument("--http-clients", type=int, default=4)
    ap.add_argument("--resp-clients", type=int, default=1, help="used only if RESP SET/GET works")
    ap.add_argument("--ops-per-key", type=int, default=120, help="operations before a key is retired")
    ap.add_argument("--keys", type=int, default=4, help="keys in use at a time")
    ap.add_argument("--results", default=None, help="results root (default build/jepsen-results)")
    ap.add_argument("--save", choices=("failure", "always", "never"), default="failure")
    ap.add_argument("--workdir", default=None, help="where nodes keep data (default: a temp dir, removed "
                                                   "after a valid run)")
    ap.add_argument("--check", metavar="HISTORY_JSONL", help="only re-check a saved history")
    ap.add_argument("--self-check-stale-reads", type=float, default=0.0, metavar="RATE",
                    help="harness self-check: send this share of HTTP reads with ?consistency=stale "
                         "while checking them as linearizable; the run must then be INVALID")
    ap.add_argument("--overlap", type=float, default=0.0, metavar="P",
                    help="share of fault steps that start while the cluster is still recovering "
                         "from the step before (0-1)")
    ap.add_argument("--self-check-overtake", type=float, default=0.0, metavar="RATE",
                    help="harness self-check: send this share of pipelined PUT+GET pairs read first "
                         "while recording them write first; the run must then be INVALID")
    ap.add_argument("--list-nemeses", action="store_true")
    ap.add_argument("--plan", action="store_true", help="print the fault schedule for the seed and exit")
    a = ap.parse_args(argv)

    if a.list_nemeses:
        import nemesis
        print(nemesis.__doc__)
        return 0
    if a.check:
        ops = checker.load_jsonl(a.check)
        res = checker.check(ops)
        print(f"{len(ops)} operations")
        print(checker.format_result(res))
        return 0 if res.ok else 1
    try:
        parse_mix(a.nemesis)
    except ValueError as e:
        print(f"chaos.py: {e}", file=sys.stderr)
        return 3
    try:
        fault_time = tuple(float(x) for x in a.fault_time.split(","))
        delay_ms = tuple(int(x) for x in a.delay_ms.split(","))
        assert len(fault_time) == 2 and len(delay_ms) == 2 and 0 < fault_time[0] <= fault_time[1]
        assert 0 <= delay_ms[0] <= delay_ms[1]
    except (ValueError, AssertionError):
        print("chaos.py: --fault-time and --delay-ms take MIN,MAX", file=sys.stderr)
        return 3
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1, 10 ** 6)
    if a.plan:
        for s in make_schedule(seed, a.duration, a.nemesis, rounds=a.rounds, fault_time=fault_time,
                               delay_ms=delay_ms, overlap=a.overlap):
            print(s)
        return 0

    own_workdir = a.workdir is None
    workdir = Path(a.workdir or tempfile.mkdtemp(prefix=f"cairn-chaos-{seed}-"))
    print(f"chaos: seed {seed}, duration {a.duration:.0f}s, nemesis {a.nemesis}, workdir {workdir}", flush=True)

    def log(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    # SIGTERM: finish like Ctrl-C (the runner's finally stops every node it started)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    runner = Runner(workdir, seed, duration=a.duration, mix=a.nemesis, n_http=a.http_clients,
                    n_resp=a.resp_clients, ops_per_key=a.ops_per_key, slots=a.keys, log=log,
                    results_root=a.results or default_results_root(),
                    save=a.save if a.save != "never" else "none",
                    stale_read_rate=a.self_check_stale_reads, overtake_rate=a.self_check_overtake,
                    overlap=a.overlap, rounds=a.rounds, fault_time=fault_time,
                    delay_ms=delay_ms)
    res = runner.run()
    print()
    print(res.summary())
    if res.valid and own_workdir:
        import shutil
        shutil.rmtree(workdir, ignore_errors=True)
    elif own_workdir:
        print(f"node data kept in {workdir}")
    print(f"reproduce: {sys.executable} {os.path.relpath(__file__)} --seed {seed} "
          f"--duration {a.duration:g} --nemesis {a.nemesis} --fault-time {a.fault_time} --delay-ms {a.delay_ms}"
          + (f" --rounds {a.rounds}" if a.rounds else "") + (f" --overlap {a.overlap:g}" if a.overlap else ""))
    return 0 if res.valid else (1 if res.verdict == "invalid" else 2)


if __name__ == "__main__":
    sys.exit(main())
