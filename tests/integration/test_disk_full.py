"""Disk faults (issue 11): the data directory on a small loop-mounted ext4
file system (96 MiB, a file under the test's own temp dir, never a real
disk) that fills up.

What a user must see: before the disk is full, writes are refused with a
clear answer (HTTP 503 "disk almost full", RESP -MISCONF) and one log line
saying where and how much is left, while reads and deletes keep working;
the node does not crash and reports it in /v1/status; once space is back
it takes writes again by itself; nothing acknowledged is lost and no log
file is left damaged (a restart loads everything). libraft itself never
sees a failed write (after one, libraft 0.15 can crash: docs/verification.md).

Needs root and loop devices (mount -o loop); skipped with the reason
otherwise.
"""
import os
import shutil
import subprocess
import time

import pytest
import redis
import requests


def _run(*argv):
    return subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)


@pytest.fixture
def small_fs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to loop-mount a file system")
    if not shutil.which("mkfs.ext4"):
        pytest.skip("mkfs.ext4 missing (e2fsprogs)")
    img = tmp_path / "fs.img"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with open(img, "wb") as f:
        f.truncate(96 * 1024 * 1024)
    r = _run("mkfs.ext4", "-q", "-F", str(img))
    assert r.returncode == 0, r.stdout
    r = _run("mount", "-o", "loop", str(img), str(mnt))
    if r.returncode != 0:
        pytest.skip(f"cannot loop-mount here: {r.stdout.decode(errors='replace').strip()}")
    try:
        yield mnt
    finally:
        if _run("umount", str(mnt)).returncode != 0:
            _run("umount", "-l", str(mnt))


@pytest.mark.timeout_s(180)
def test_disk_almost_full_refuses_writes_then_recovers(make_node, small_fs):
    # room to give back later: a file the test can delete
    filler = small_fs / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * (16 * 1024 * 1024))
    node = make_node(data_dir=small_fs / "data", extra_args=["--min-free-disk", "16m"]).start()
    value = os.urandom(300 * 1024).hex().encode()  # 600 KB, incompressible
    acked = []
    refused = None
    for i in range(150):
        r = requests.put(node.url(f"/v1/key/big{i}"), data=value, timeout=10)
        if r.status_code in (200, 201):
            acked.append(f"big{i}")
            continue
        refused = r
        break
    assert refused is not None, "the 96 MiB file system never filled up"
    assert len(acked) >= 5, f"refused after {len(acked)} writes: {refused.text}"
    assert refused.status_code == 503, (refused.status_code, refused.text)
    assert refused.json()["error"].startswith("disk almost full"), refused.text

    # still alive and saying so; reads and deletes work, writes do not
    assert node.running
    st = node.status()
    assert st["disk_low"] is True and st["disk_free_bytes"] < 16 * 1024 * 1024, st
    assert "storage_errors" not in st, st  # libraft never saw a failed write
    assert requests.get(node.url(f"/v1/key/{acked[-1]}"), timeout=10).content == value
    assert requests.delete(node.url(f"/v1/key/{acked[-1]}"), timeout=10).status_code in (200, 204)
    gone = acked.pop()
    with pytest.raises(redis.ResponseError, match="^MISCONF disk almost full"):
        redis.Redis(port=node.resp_port, socket_timeout=10).set("small", "x")
    assert requests.put(node.url("/v1/key/small"), data=b"x", timeout=10).status_code == 503
    lines = [ln for ln in node.stderr_text().splitlines() if "disk almost full" in ln]
    assert len(lines) == 1, lines
    assert "level=error" in lines[0] and "free_bytes=" in lines[0] and "dir=" in lines[0], lines[0]

    # space comes back: writes are taken again without an operator
    filler.unlink()
    t_free = time.monotonic()
    deadline = t_free + 10
    while True:
        r = requests.put(node.url("/v1/key/after"), data=b"ok", timeout=10)
        if r.status_code in (200, 201) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert r.status_code in (200, 201), r.text
    print(f"\nwrites refused after {len(acked) + 1} writes of 600 KB; taken again "
          f"{time.monotonic() - t_free:.2f} s after space was freed")
    assert "disk space back" in node.stderr_text()
    assert node.status()["disk_low"] is False

    # and a restart loads every acknowledged write: no log file was left
    # damaged (the start-up log check would refuse to start)
    assert node.stop(timeout=30) == 0, node.stderr_text()[-2000:]
    node.start()
    for k in acked:
        r = requests.get(node.url(f"/v1/key/{k}"), timeout=10)
        assert r.status_code == 200 and r.content == value, k
    assert requests.get(node.url(f"/v1/key/{gone}"), timeout=10).status_code == 404
    assert requests.get(node.url("/v1/key/after"), timeout=10).content == b"ok"
