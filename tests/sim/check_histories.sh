#!/bin/sh
# Run the simulator over a range of seeds with --history-dir and check every
# history for linearizability with the Jepsen harness's checker
# (tests/jepsen/checker.py): the per-read checks inside the simulator are
# quick but partial; this is the complete check.
#
#   tests/sim/check_histories.sh SIM SEEDS OPS [--expect-violation] [SIM FLAGS...]
#
# --expect-violation: a negative control (e.g. with --stale-reads): the
# checker must reject at least one history.
set -u
if [ $# -lt 3 ]; then
    echo "usage: $0 SIM SEEDS OPS [--expect-violation] [SIM FLAGS...]" >&2
    exit 2
fi
sim=$1 seeds=$2 ops=$3
shift 3
expect=0
if [ "${1:-}" = --expect-violation ]; then
    expect=1
    shift
fi
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
[ -x "$py" ] || py=python3
dir=$(mktemp -d "${TMPDIR:-/tmp}/cairn-sim-histories.XXXXXX") || exit 2
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT TERM

"$sim" --seeds "$seeds" --ops "$ops" --history-dir "$dir" "$@" 2>"$dir/sim.log"
sim_rc=$?
tail -n 1 "$dir/sim.log"
timeout 600 "$py" "$here/../jepsen/checker.py" "$dir"/sim-seed-*.jsonl >"$dir/report"
rc=$?
ops_checked=$(cat "$dir"/sim-seed-*.jsonl | wc -l)
files=$(ls "$dir"/sim-seed-*.jsonl | wc -l)
if [ "$expect" = 1 ]; then
    if [ "$rc" = 1 ]; then
        echo "checker: a violation found, as it must be ($files histories)"
        grep "operations; fail:" "$dir/report" | sed "s|^$dir/||"
        grep -m 1 -A 4 "not linearizable (" "$dir/report"
        exit 0
    fi
    echo "checker: no violation found in $files histories, though the simulator was told to make one (checker exit $rc)" >&2
    exit 1
fi
if [ "$sim_rc" != 0 ]; then
    echo "simulator failed (exit $sim_rc):" >&2
    grep FAILED "$dir/sim.log" >&2
    exit 1
fi
if [ "$rc" != 0 ]; then
    echo "checker: exit $rc" >&2
    grep -v ": [0-9]* operations; ok:" "$dir/report" >&2
    exit 1
fi
echo "checker: $files histories, $ops_checked operations, every one linearizable"
