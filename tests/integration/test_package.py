"""The Debian package (issue 17): built with Debian's own tooling
(scripts/package.sh: debhelper, dpkg-buildpackage, lintian with errors
fatal), its contents and maintainer scripts, its systemd unit verified
offline by systemd-analyze (this machine runs no systemd as PID 1, so the
unit is not started here), and cairnd started from the unpacked package
and used."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import REPO

if os.environ.get("CAIRN_SANITIZED"):
    pytest.skip("packaging does not depend on the sanitizer build; the normal run covers it",
                allow_module_level=True)


@pytest.fixture(scope="module")
def deb(debian_package):
    return debian_package


def _unpack(deb, root):
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, timeout=60)
    return root


@pytest.mark.timeout_s(600)
def test_contents_and_metadata(deb, tmp_path):
    root = _unpack(deb, tmp_path / "root")
    for f in ("usr/bin/cairnd", "usr/bin/cairnctl", "lib/systemd/system/cairn.service",
              "etc/cairn/cairnd.env", "usr/share/man/man1/cairnd.1.gz",
              "usr/share/man/man1/cairnctl.1.gz", "usr/share/doc/cairn/copyright"):
        assert (root / f).exists(), f
    info = subprocess.run(["dpkg-deb", "-I", str(deb)], stdout=subprocess.PIPE, text=True,
                          check=True).stdout
    depends = re.search(r"^ Depends: (.*)$", info, re.M).group(1)
    for lib in ("libraft", "libuv1", "libssl3", "libpq5", "libsystemd0", "adduser"):
        assert lib in depends, depends
    ctl = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", str(deb), str(ctl)], check=True)
    assert "adduser --system" in (ctl / "postinst").read_text()
    assert "/etc/cairn/cairnd.env" in (ctl / "conffiles").read_text()
    # built as a packager builds it: -O3 and hardened
    hard = subprocess.run(["readelf", "-d", "-W", str(root / "usr/bin/cairnd")],
                          stdout=subprocess.PIPE, text=True, check=True).stdout
    assert "BIND_NOW" in hard or "NOW" in hard


@pytest.mark.timeout_s(600)
def test_unit_verifies_offline(deb, tmp_path):
    root = _unpack(deb, tmp_path / "root")
    # the targets the unit refers to, from this machine's systemd
    shutil.copytree("/lib/systemd/system", root / "lib/systemd/system", dirs_exist_ok=True,
                    symlinks=True, ignore=shutil.ignore_patterns("cairn.service"))
    (root / "etc/systemd/system").mkdir(parents=True, exist_ok=True)
    unit = root / "lib/systemd/system/cairn.service"
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", f"--root={root}", str(unit)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "", r.stdout
    text = unit.read_text()
    for line in ("Type=notify", "WatchdogSec=", "StateDirectory=cairn", "ProtectSystem=strict",
                 "NoNewPrivileges=yes", "PrivateTmp=yes", "CapabilityBoundingSet=\n",
                 "Restart=on-failure", "User=cairn"):
        assert line in text, line
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", f"--root={root}",
                        "cairn.service"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=60)
    m = re.search(r"Overall exposure level for cairn.service: ([0-9.]+)", r.stdout)
    assert m, r.stdout[-2000:]
    print(f"\nsystemd-analyze security: exposure {m.group(1)} (0 safest, 10 unsafe)")
    assert float(m.group(1)) < 3.0


@pytest.mark.timeout_s(600)
def test_cairnd_from_the_package_serves(deb, tmp_path, make_node):
    root = _unpack(deb, tmp_path / "root")
    out = subprocess.run([str(root / "usr/bin/cairnd"), "--version"], stdout=subprocess.PIPE,
                         text=True, check=True).stdout
    assert out.startswith("cairnd ")
    node = make_node(binary=root / "usr/bin/cairnd").start()
    assert node.put("from-deb", "yes").status_code == 201
    assert node.get("from-deb").content == b"yes"
    r = subprocess.run([str(root / "usr/bin/cairnctl"), "--endpoints", node.url("").rstrip("/"),
                        "get", "from-deb"], stdout=subprocess.PIPE, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "yes"
