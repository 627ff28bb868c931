#!/usr/bin/env bash
# Build the Debian package with Debian's own tooling (debhelper,
# dpkg-buildpackage) from the files of this checkout, in build-deb/:
#   build-deb/cairn_<version>_<arch>.deb   (and .buildinfo, .changes)
# then check it with lintian (errors fail; warnings are printed).
# Usage: scripts/package.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh package
out=build-deb
rm -rf "$out"
mkdir -p "$out/src"
# the checkout's files (tracked and new, not ignored), not its build dirs
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$out/src"
(cd "$out/src" && dpkg-buildpackage -us -uc -b -j"$(nproc)" >../build.log 2>&1) || {
  tail -40 "$out/build.log" >&2
  echo "package.sh: dpkg-buildpackage failed (log: $out/build.log)" >&2
  exit 1
}
deb=$(ls "$out"/cairn_*.deb)
echo "package.sh: built $deb" >&2
lintian --fail-on error --info "$deb" >&2
echo "$deb"
