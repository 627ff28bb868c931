"""The container image (issue 17): scripts/image.sh builds it without any
registry (mmdebstrap from the Debian archive, the package from
scripts/package.sh, buildah). Checked here: the image's config (non-root
user, /var/lib/cairn volume, HEALTHCHECK on /healthz, entrypoint, ports),
its contents, and a 3-node cluster started from it.

Where podman can run containers, the cluster runs in podman containers.
Where it cannot (this development machine: crun's setrlimit is refused by
the sandbox the machine itself runs in), the test says so and runs the
same three nodes from the image with buildah's chroot isolation: the
image's own file system, binaries, user and libraries, on the host's
network."""
import json
import os
import signal
import subprocess

import pytest
import requests

from conftest import REPO, free_ports, repo_script, wait_until

if os.environ.get("CAIRN_SANITIZED"):
    pytest.skip("the image does not depend on the sanitizer build; the normal run covers it",
                allow_module_level=True)


@pytest.fixture(scope="module")
def image(debian_package):
    """The image, around the package the package's tests use (built once)."""
    return repo_script("image.sh", 900, str(debian_package))


def _config(image):
    out = subprocess.run(["podman", "image", "inspect", image], stdout=subprocess.PIPE,
                         text=True, check=True, timeout=60).stdout
    return json.loads(out)[0]


@pytest.mark.timeout_s(900)
def test_image_config_and_contents(image):
    cfg = _config(image)["Config"]
    assert cfg["User"] == "cairn:cairn"
    assert "/var/lib/cairn" in cfg["Volumes"]
    assert cfg["Entrypoint"] == ["/usr/bin/cairnd"]
    health = _config(image)["Healthcheck"]["Test"]
    assert health == ["CMD", "curl", "-fsS", "http://127.0.0.1:8080/healthz"], health
    assert {"8080/tcp", "6380/tcp", "7080/tcp"} <= set(cfg["ExposedPorts"])
    env = dict(e.split("=", 1) for e in cfg["Env"])
    assert env["CAIRN_DATA_DIR"] == "/var/lib/cairn"
    oci = REPO / "build-image" / f"cairn-{image.rsplit(':', 1)[1]}.oci.tar"
    assert oci.is_file() and oci.stat().st_size > 10 * 1024 * 1024
    ctr = subprocess.run(["buildah", "from", image], stdout=subprocess.PIPE, text=True,
                         check=True, timeout=120).stdout.strip()
    try:
        def run(*argv):
            return subprocess.run(["buildah", "run", "--isolation", "chroot", ctr, "--", *argv],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  timeout=60)
        assert run("/usr/bin/cairnd", "--version").stdout.startswith("cairnd ")
        assert run("id", "-un").stdout.strip() == "cairn"  # not root
        st = run("stat", "-c", "%U %a", "/var/lib/cairn").stdout.split()
        assert st == ["cairn", "750"], st
        # installed by apt from the package: dpkg knows it
        assert "ii  cairn" in run("dpkg", "-l", "cairn").stdout
    finally:
        subprocess.run(["buildah", "rm", ctr], stdout=subprocess.DEVNULL, timeout=60)


def _podman_works(image):
    r = subprocess.run(["podman", "run", "--rm", "--network", "host", "--no-healthcheck", image,
                        "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=120)
    return r.returncode == 0 and "cairnd" in r.stdout, r.stdout.strip()[-300:]


class ImageNode:
    """One cairnd from the image: a podman container, or a buildah
    container run with chroot isolation."""

    def __init__(self, image, node_id, podman):
        self.node_id = node_id
        self.http, self.resp, self.peer = free_ports(3)
        self.podman = podman
        self.image = image
        self.proc = None
        self.ctr = None

    def url(self, path):
        return f"http://127.0.0.1:{self.http}{path}"

    def start(self, members):
        args = ["--id", str(self.node_id), "--listen-http", f"127.0.0.1:{self.http}",
                "--listen-resp", f"127.0.0.1:{self.resp}", "--listen-peer",
                f"127.0.0.1:{self.peer}", "--initial-cluster", members]
        if self.podman:
            self.ctr = f"cairn-test-{os.getpid()}-{self.node_id}"
            argv = ["podman", "run", "--rm", "--name", self.ctr, "--network", "host",
                    "--no-healthcheck", self.image] + args
        else:
            self.ctr = subprocess.run(["buildah", "from", self.image], stdout=subprocess.PIPE,
                                      text=True, check=True, timeout=120).stdout.strip()
            argv = ["buildah", "run", "--isolation", "chroot", self.ctr, "--",
                    "/usr/bin/cairnd"] + args
        self.log = open(f"/tmp/{self.ctr}.log", "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)

    def _cairnd_pid(self):
        """cairnd's pid among the descendants of `buildah run`."""
        children = {}
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    stat = open(f"/proc/{d}/stat").read()
                except OSError:
                    continue
                comm = stat[stat.index("(") + 1:stat.rindex(")")]
                ppid = int(stat[stat.rindex(")") + 2:].split()[1])
                children.setdefault(ppid, []).append((int(d), comm))
        todo = [self.proc.pid]
        while todo:
            for pid, comm in children.get(todo.pop(), []):
                if comm == "cairnd":
                    return pid
                todo.append(pid)
        return None

    def terminate(self):
        """SIGTERM to cairnd itself: podman forwards it, but buildah run
        answers its own SIGTERM by killing the command."""
        if self.podman:
            self.proc.terminate()
            return
        pid = self._cairnd_pid()
        assert pid, "cairnd not found under buildah run"
        os.kill(pid, signal.SIGTERM)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.ctr and not self.podman:
            subprocess.run(["buildah", "rm", self.ctr], stdout=subprocess.DEVNULL, timeout=60)
        if self.ctr:
            self.log.close()
            os.unlink(self.log.name)


@pytest.mark.timeout_s(900)
def test_three_node_cluster_from_the_image(image):
    podman, why = _podman_works(image)
    if not podman:
        print(f"\npodman cannot run containers on this machine ({why}); running the three "
              f"nodes from the image with buildah's chroot isolation instead")
    nodes = [ImageNode(image, i + 1, podman) for i in range(3)]
    members = ",".join(f"{x.node_id}=127.0.0.1:{x.peer}" for x in nodes)
    try:
        for x in nodes:
            x.start(members)

        def leader():
            ids = set()
            for x in nodes:
                try:
                    ids.add(requests.get(x.url("/v1/status"), timeout=1).json()["leader"])
                except (requests.RequestException, ValueError, KeyError):
                    return None
            return ids.pop() if len(ids) == 1 and None not in ids else None

        lid = wait_until(leader, 30, 0.1, "the image's three nodes to agree on a leader")
        follower = next(x for x in nodes if x.node_id != lid)
        r = requests.put(follower.url("/v1/key/from-image"), data=b"ok", timeout=10)
        assert r.status_code == 201, r.text
        for x in nodes:
            wait_until(lambda: requests.get(x.url("/v1/key/from-image"), timeout=5).content == b"ok",
                       10, 0.1, f"node {x.node_id} to serve the key")
            assert requests.get(x.url("/healthz"), timeout=5).status_code == 200
        # SIGTERM (what `podman stop` sends): a graceful stop. podman
        # passes cairnd's exit status on; buildah run reports its own
        # (1), so there the node's log tells
        for x in nodes:
            x.terminate()
        for x in nodes:
            rc = x.proc.wait(20)
            x.log.flush()
            log = open(x.log.name, "rb").read().decode(errors="replace")
            assert 'msg="stopped"' in log, log[-2000:]
            if podman:
                assert rc == 0
    finally:
        for x in nodes:
            x.stop()
