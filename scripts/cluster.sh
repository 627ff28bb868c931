#!/usr/bin/env bash
# A local demo cluster of N nodes (default 3) on loopback, separate data dirs.
#   scripts/cluster.sh start [N]   build if needed, start, wait until ready
#   scripts/cluster.sh stop        stop the nodes this script started
#   scripts/cluster.sh status      cairnctl status against the cluster
# Node i listens on HTTP 127.0.0.1:(8080+i), RESP 6380+i, peer 7080+i;
# data in ./cluster-data/node<i>, logs in ./cluster-data/node<i>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=cluster-data
cmd=${1:-start}
n=${2:-3}
case "$cmd" in
start)
  [ -x build/cairnd ] || { scripts/deps.sh build; scripts/build.sh build; }
  mkdir -p "$dir"
  members=""
  for i in $(seq 1 "$n"); do members="$members${members:+,}$i=127.0.0.1:$((7080 + i))"; done
  for i in $(seq 1 "$n"); do
    if [ -f "$dir/node$i.pid" ] && kill -0 "$(cat "$dir/node$i.pid")" 2>/dev/null; then
      echo "node $i already running (pid $(cat "$dir/node$i.pid"))"; continue
    fi
    build/cairnd --id "$i" --data-dir "$dir/node$i" --initial-cluster "$members" \
      --listen-http "127.0.0.1:$((8080 + i))" --listen-resp "127.0.0.1:$((6380 + i))" \
      --listen-peer "127.0.0.1:$((7080 + i))" >"$dir/node$i.log" 2>&1 &
    echo $! >"$dir/node$i.pid"
  done
  for i in $(seq 1 "$n"); do
    for _ in $(seq 1 100); do
      curl -sf "http://127.0.0.1:$((8080 + i))/readyz" >/dev/null && break
      sleep 0.1
    done
  done
  eps=""
  for i in $(seq 1 "$n"); do eps="$eps${eps:+,}http://127.0.0.1:$((8080 + i))"; done
  echo "cluster of $n started; try: build/cairnctl --endpoints $eps status"
  ;;
stop)
  for f in "$dir"/node*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$f"
  done
  echo "cluster stopped (data kept in $dir)"
  ;;
status)
  eps=""
  for i in $(seq 1 "$n"); do eps="$eps${eps:+,}http://127.0.0.1:$((8080 + i))"; done
  build/cairnctl --endpoints "$eps" status
  ;;
*) echo "usage: $0 start [N] | stop | status" >&2; exit 2 ;;
esac
