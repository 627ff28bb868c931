#!/usr/bin/env bash
# The container image, built without pulling from any registry: a minimal
# Debian 12 root file system from the Debian archive (mmdebstrap), the
# package from scripts/package.sh installed into it with apt, assembled by
# buildah. Result: the image localhost/cairn:<version> in this machine's
# container storage (docker format, which keeps the HEALTHCHECK; OCI has no
# such field) and build-image/cairn-<version>.oci.tar (an OCI archive of
# the same image).
# Usage: scripts/image.sh [DEB]
#   DEB: a package scripts/package.sh already built from this checkout
#   (the tests build it once for both); without it, it is built here.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh package
if [ -n "${1:-}" ]; then
  deb=$1
  [ -f "$deb" ] || { echo "image.sh: no package at $deb" >&2; exit 1; }
else
  deb=$(scripts/package.sh 2>/dev/null | tail -1)
fi
version=$(dpkg-deb -f "$deb" Version)
out=build-image
rm -rf "$out"
mkdir -p "$out"
cp "$deb" "$out/cairn.deb"
log="$out/mmdebstrap.log"
# minbase: essential packages and apt only; then the package and what it
# depends on, curl for the health check; apt's lists and caches removed
if ! mmdebstrap --variant=minbase --include=ca-certificates,curl \
    --customize-hook="copy-in $out/cairn.deb /tmp" \
    --customize-hook='chroot "$1" apt-get install -y --no-install-recommends /tmp/cairn.deb' \
    --customize-hook='rm -f "$1"/tmp/cairn.deb' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$out/rootfs.tar" >"$log" 2>&1; then
  tail -30 "$log" >&2
  echo "image.sh: mmdebstrap failed (log: $log)" >&2
  exit 1
fi
export BUILDAH_FORMAT=docker # keeps the HEALTHCHECK (OCI has no such field)
ctr=$(buildah from scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah add --quiet "$ctr" "$out/rootfs.tar" / >/dev/null
# the state directory belongs to the service user the package created
buildah run --isolation chroot "$ctr" -- install -d -o cairn -g cairn -m 0750 /var/lib/cairn
buildah config \
  --user cairn:cairn \
  --workingdir /var/lib/cairn \
  --volume /var/lib/cairn \
  --port 8080/tcp --port 6380/tcp --port 7080/tcp \
  --env CAIRN_DATA_DIR=/var/lib/cairn \
  --env CAIRN_LISTEN_HTTP=0.0.0.0:8080 \
  --env CAIRN_LISTEN_RESP=0.0.0.0:6380 \
  --env CAIRN_LISTEN_PEER=0.0.0.0:7080 \
  --entrypoint '["/usr/bin/cairnd"]' --cmd '[]' \
  --healthcheck 'CMD curl -fsS http://127.0.0.1:8080/healthz' \
  --healthcheck-interval 10s --healthcheck-timeout 3s --healthcheck-retries 3 \
  --stop-signal SIGTERM \
  --label org.opencontainers.image.title=cairn \
  --label org.opencontainers.image.version="$version" \
  "$ctr"
# the previous build of this version goes (its layers would pile up)
podman rmi -f "localhost/cairn:$version" >/dev/null 2>&1 || true
buildah commit --quiet "$ctr" "localhost/cairn:$version" >/dev/null
buildah push --quiet "localhost/cairn:$version" "oci-archive:$out/cairn-$version.oci.tar" >/dev/null
echo "image.sh: localhost/cairn:$version, $out/cairn-$version.oci.tar" >&2
echo "localhost/cairn:$version"
