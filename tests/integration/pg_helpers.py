"""A real PostgreSQL server for the tests: Debian's postgresql, initdb in a
temporary directory, pg_ctl on a free loopback port, as the unprivileged
`postgres` user when the tests run as root (initdb refuses root).

Nothing here touches the machine's own PostgreSQL cluster: the server has
its own data dir, port and socket directory, and is stopped (immediate
mode) and removed by stop_and_remove(), which the fixture calls also when a
test fails."""
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time

from conftest import free_ports


def pg_bindir():
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    return dirs[-1] if dirs else None


class Postgres:
    def __init__(self):
        self.bindir = pg_bindir()
        assert self.bindir, "PostgreSQL is not installed (scripts/deps.sh test installs it)"
        self.root = tempfile.mkdtemp(prefix="cairn-pg-")
        self.data = os.path.join(self.root, "data")
        self.log = os.path.join(self.root, "server.log")
        self.port = free_ports(1)[0]
        self.user = "cairn"
        self.as_user = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run([f"{self.bindir}/initdb", "-D", self.data, "-A", "trust", "-U", self.user,
                   "--no-sync", "-E", "UTF8"], timeout=60)

    @property
    def url(self):
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/postgres"

    def _run(self, argv, timeout=30):
        return subprocess.run(self.as_user + argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=timeout, check=True, text=True)

    def start(self):
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run([f"{self.bindir}/pg_ctl", "-D", self.data, "-o", opts, "-l", self.log, "-w",
                   "-t", "30", "start"], timeout=40)
        return self

    def stop(self, mode="immediate"):
        """immediate: as a crash (no checkpoint), what a killed server does."""
        subprocess.run(self.as_user + [f"{self.bindir}/pg_ctl", "-D", self.data, "-m", mode,
                                       "-w", "-t", "30", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=40)

    def sql(self, query):
        """Rows of a query as lists of strings (psql -At, '|' separated)."""
        r = subprocess.run(["psql", "-X", "-At", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                            self.user, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", query],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30, text=True)
        assert r.returncode == 0, r.stderr
        return [line.split("|") for line in r.stdout.splitlines() if line]

    def stop_and_remove(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def replay(pg):
    """The book's ReadEvents: the table replayed in revision order into a
    dict key -> (value, expire_ms), value ("dump", payload) for a key of
    another type than string. Checks that revisions are contiguous
    from 1 and that each revision's seq runs 0, 1, ..."""
    rows = pg.sql("SELECT revision, seq, event_type, encode(key, 'hex'), encode(value, 'hex'), "
                  "coalesce(expire_ms, 0) FROM cairn_txlog ORDER BY revision, seq")
    state, prev_rev, prev_seq = {}, 0, -1
    for rev, seq, kind, key, value, expire in rows:
        rev, seq, kind, expire = int(rev), int(seq), int(kind), int(expire)
        if rev == prev_rev:
            assert seq == prev_seq + 1, f"revision {rev}: seq {seq} after {prev_seq}"
        else:
            # a base (type 4) replaces everything before it: it may follow any revision
            assert rev == prev_rev + 1 or (kind == 4 and rev > prev_rev), \
                f"gap in the table: revision {rev} after {prev_rev}"
            assert seq == 0, f"revision {rev} starts at seq {seq}"
        prev_rev, prev_seq = rev, seq
        if kind == 1:
            state[bytes.fromhex(key)] = (bytes.fromhex(value), expire)
        elif kind == 5:  # a hash, list, set, zset or stream: its DUMP payload
            state[bytes.fromhex(key)] = (("dump", bytes.fromhex(value)), expire)
        elif kind == 4:
            state.clear()
        elif kind == 2:
            state.pop(bytes.fromhex(key), None)
        else:
            assert kind == 3, kind
            state.clear()
    return state, prev_rev


def wait_shipped(node, pg, timeout=20):
    """Until the node says PostgreSQL has every revision it has applied."""
    deadline = time.monotonic() + timeout
    st = None
    while time.monotonic() < deadline:
        st = node.status()
        tx = st.get("txlog", {})
        if tx.get("shipped") == st["revision"] and tx.get("lag") == 0:
            return st
        time.sleep(0.05)
    raise AssertionError(f"txlog did not catch up in {timeout}s: {st}")
