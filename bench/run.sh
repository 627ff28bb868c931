#!/usr/bin/env bash
# The benchmark suite in one command: installs what is missing (Debian
# packages: redis-server, redis-tools, memcached, etcd-server, etcd-client,
# nginx-light, wrk, gnuplot), builds cairn, runs every workload against
# cairn and its competitors on loopback, and writes BENCHMARKS.md and
# bench/plots/*.png.
# Usage: bench/run.sh [smoke|quick|full] [suite options]   (default: quick)
#   smoke  seconds; proves the suite works (CI runs it via pytest)
#   quick  under 5 minutes
#   full   the numbers to quote (about 30 minutes)
# Options go to bench/suite.py: --only W1,W3 --rounds N --report FILE ...
# (quick and full include W7, the 3-node cairn vs etcd clusters; smoke does
# not unless --only names it)
# Set CAIRN_BENCH_NO_INSTALL=1 / CAIRN_BENCH_NO_BUILD=1 to skip those steps.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${CAIRN_BENCH_NO_INSTALL:-0}" = 1 ] || scripts/deps.sh bench
[ "${CAIRN_BENCH_NO_BUILD:-0}" = 1 ] || scripts/build.sh build
exec /usr/bin/python3 bench/suite.py "$@"
