#!/usr/bin/env bash
# Quick start: install what is missing, build, run one cairnd on the SPEC
# defaults (HTTP 127.0.0.1:8080, RESP 127.0.0.1:6380, data in ./cairn-data).
# Extra arguments go to cairnd.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
scripts/build.sh build
exec build/cairnd "$@"
