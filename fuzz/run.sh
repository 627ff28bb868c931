#!/usr/bin/env bash
# Builds (build-fuzz/) and runs the libFuzzer targets.
#
#   fuzz/run.sh [--seconds N | --minutes N] [--merge] [TARGET...]
#
# Each target (default: all of fuzz/fuzz_*.c; TARGET is the name without
# fuzz_, e.g. resp_parser) runs on a scratch copy of fuzz/corpus/TARGET for
# the given time (default 15 s) with a per-input timeout, an RSS limit and
# LeakSanitizer on. A crash, a leak, an out-of-memory or a slow input ends
# the target with libFuzzer's non-zero status, and this script then fails
# after the remaining targets ran; the input that did it is kept under
# build-fuzz/artifacts/TARGET/. With --merge (the default with --minutes)
# inputs that reached new coverage are merged, minimised, back into
# fuzz/corpus/TARGET: commit them. Prints executions and exec/s per target.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=15
merge=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --minutes) seconds=$(($2 * 60)); merge=1; shift 2 ;;
    --merge) merge=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "fuzz/run.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done

scripts/build.sh build-fuzz -DCAIRN_FUZZ=ON -DCAIRN_SANITIZE=ON -DCMAKE_C_COMPILER=clang >&2
if [ ${#targets[@]} -eq 0 ]; then
  for f in build-fuzz/fuzz/fuzz_*; do targets+=("$(basename "$f" | sed 's/^fuzz_//')"); done
fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
printf '%-16s %12s %10s %8s\n' target executions exec/s corpus >&2
for name in "${targets[@]}"; do
  bin="build-fuzz/fuzz/fuzz_$name"
  [ -x "$bin" ] || { echo "fuzz/run.sh: no target $name ($bin)" >&2; exit 2; }
  corpus="fuzz/corpus/$name"
  mkdir -p "$work/$name" "build-fuzz/artifacts/$name"
  [ -d "$corpus" ] && cp -r "$corpus/." "$work/$name/"
  rc=0
  # -timeout: one input taking more than 10 s is a hang; -rss_limit_mb: an
  # input that makes the target grow past 2 GiB is an OOM. Both, like a
  # crash or a leak, end the run with a non-zero status.
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="build-fuzz/artifacts/$name/" "$work/$name" > "$work/$name.log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$name.log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$name.log" | tail -1)
  printf '%-16s %12s %10s %8s\n' "$name" "${execs:-?}" "${speed:-?}" \
    "$(find "$work/$name" -type f | wc -l)" >&2
  if [ $rc -ne 0 ]; then
    echo "fuzz/run.sh: $name failed (exit $rc); input kept in build-fuzz/artifacts/$name/:" >&2
    grep -E "ERROR|WARNING|SUMMARY|invariant failed|Test unit written" "$work/$name.log" | head -20 >&2 || true
    failed+=("$name")
    continue
  fi
  if [ $merge -eq 1 ]; then
    mkdir -p "$corpus"
    before=$(find "$corpus" -type f | wc -l)
    "$bin" -merge=1 -timeout=10 "$corpus" "$work/$name" > "$work/$name.merge.log" 2>&1
    echo "  merged into $corpus: $before -> $(find "$corpus" -type f | wc -l) inputs" >&2
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz/run.sh: failing targets: ${failed[*]}" >&2
  exit 1
fi
