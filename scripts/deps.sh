#!/usr/bin/env bash
# Install the Debian packages cairn needs, only those that are missing.
# Usage: scripts/deps.sh [build|test|bench|package]   (test and bench imply
# build; package: the Debian packaging and image tools on top of test)
set -euo pipefail
what=${1:-build}
pkgs=(build-essential cmake pkg-config libuv1-dev libraft-dev libssl-dev libpq-dev libsystemd-dev liblzf-dev
      liblua5.1-0-dev lua-cjson lua-bitop lua-messagepack)
if [ "$what" = test ] || [ "$what" = bench ] || [ "$what" = package ]; then
  pkgs+=(libcmocka-dev clang libclang-rt-14-dev python3 python3-pytest python3-requests
         python3-redis python3-rq python3-celery redis-tools redis-server libhiredis-dev valgrind
         curl openssl
         postgresql)
fi
if [ "$what" = package ]; then
  pkgs+=(debhelper dpkg-dev fakeroot lintian help2man mmdebstrap buildah podman)
fi
if [ "$what" = bench ]; then
  pkgs+=(wrk gnuplot memcached nginx-light etcd-server etcd-client)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo=sudo
echo "installing missing packages: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
