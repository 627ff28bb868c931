#!/usr/bin/env bash
# Long simulator soak (outside CI): random seeds, 20,000 client operations
# each, for N minutes (default 60); every other seed with disk faults and
# with TTLs. A failing seed is printed with the command that replays it
# exactly; the soak stops there.
# Usage: tests/sim/soak.sh [MINUTES]   (CAIRN_BUILD_DIR: build to use, default build)
set -euo pipefail
cd "$(dirname "$0")/../.."
minutes=${1:-60}
build=${CAIRN_BUILD_DIR:-build}
[ -x "$build/tests/sim" ] || scripts/build.sh "$build"
end=$(($(date +%s) + minutes * 60))
runs=0
while [ "$(date +%s)" -lt "$end" ]; do
    seed=$(od -An -N6 -tu8 /dev/urandom | tr -d ' ')
    flags=()
    [ $((runs % 2)) -eq 1 ] && flags=(--disk-faults --ttl)
    if ! timeout 600 "$build/tests/sim" --seed "$seed" --ops 20000 "${flags[@]}" 2>/dev/null; then
        echo "soak: seed $seed FAILED; replay: $build/tests/sim --seed $seed --ops 20000 ${flags[*]}" >&2
        exit 1
    fi
    runs=$((runs + 1))
done
echo "soak: $runs seeds of 20000 operations passed in $minutes minutes" >&2
