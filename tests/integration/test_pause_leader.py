"""A leader frozen for two seconds (SIGSTOP, as a GC pause, VM steal or a
slow disk freezes it) while clients keep writing and reading linearizably
through every node must serve again once it resumes (issues 11 and 23).

Before the fix, in a GCC -O3 build (what a packager builds: Release), the
old leader never answered HTTP again and burnt a core: on resuming, libraft
failed the barrier that the queued linearizable reads waited on, and the
leadership-lost branch of replica__barrier_done moved them back to the
queue with a pop-and-push loop that GCC 12 compiled into an endless one
(docs/design.md, "The op lists and GCC -O3"). The suite runs this test on
the normal, the sanitizer and the Release build.
"""
import signal
import threading
import time

import pytest
import requests


def _cluster(make_node):
    nodes = [make_node(node_id=i) for i in (1, 2, 3)]
    members = ",".join(f"{x.node_id}=127.0.0.1:{x.peer_port}" for x in nodes)
    for x in nodes:
        x.extra_args = ["--initial-cluster", members]  # defaults, as a new user runs it
    for x in nodes:
        x.start(wait_ready=False)
    for x in nodes:
        x.wait_ready(20)
    return nodes


def _status(x, timeout=1.0):
    return requests.get(x.url("/v1/status"), timeout=timeout).json()


def _leader(nodes, deadline_s=15, exclude=()):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        for x in nodes:
            if x in exclude:
                continue
            try:
                if _status(x)["role"] == "leader":
                    return x
            except requests.RequestException:
                pass
        time.sleep(0.05)
    raise AssertionError("no leader")


class Clients:
    """6 threads, each looping PUT then linearizable GET over 4 keys,
    spread round-robin over every node's HTTP port."""

    def __init__(self, nodes, n=6):
        self.nodes = nodes
        self.stop = threading.Event()
        self.ok = [0] * n
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(n)]

    def _run(self, i):
        s = requests.Session()
        k = 0
        while not self.stop.is_set() and k < 100000:
            x = self.nodes[(i + k) % len(self.nodes)]
            key = f"k{k % 4}"
            try:
                s.put(x.url(f"/v1/key/{key}"), data=f"{i}-{k}", timeout=2)
                r = s.get(x.url(f"/v1/key/{key}"), timeout=2)
                if r.status_code == 200:
                    self.ok[i] += 1
            except requests.RequestException:
                s = requests.Session()
            k += 1

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(10)


PAUSES = 6


@pytest.mark.timeout_s(300)
def test_paused_leader_serves_again(make_node):
    nodes = _cluster(make_node)
    with Clients(nodes) as clients:
        for attempt in range(PAUSES):
            old = _leader(nodes)
            term_before = _status(old)["term"]
            before = sum(clients.ok)
            old.send_signal(signal.SIGSTOP)
            try:
                # the fault itself: a two-second freeze, longer only until
                # the others have elected a leader (pre-vote may take more
                # than 2 s), so that every round loses leadership
                time.sleep(2.0)
                others = [x for x in nodes if x is not old]
                _leader(others, deadline_s=8)
            finally:
                old.send_signal(signal.SIGCONT)
            # the old leader answers /v1/status within 10 s, and rejoins the
            # cluster as a ready member within a few election timeouts more
            resumed = time.monotonic()
            st, err, answered, ready = None, None, None, False
            while time.monotonic() < resumed + 20:
                try:
                    st = _status(old, timeout=1.0)
                    if answered is None:
                        answered = time.monotonic() - resumed
                    if st.get("leader") and requests.get(old.url("/readyz"), timeout=1).status_code == 200:
                        ready = True
                        break
                except requests.RequestException as e:
                    err = e
                if answered is None and time.monotonic() > resumed + 10:
                    break
                time.sleep(0.1)
            if answered is None or answered > 10:
                pytest.fail(f"pause {attempt + 1}: node {old.node_id}, paused as leader, does not "
                            f"answer /v1/status 10 s after SIGCONT (last error {err})\n"
                            f"{old.stderr_text()[-3000:]}")
            if not ready:
                pytest.fail(f"pause {attempt + 1}: node {old.node_id} answers but is not a ready "
                            f"member 20 s after SIGCONT (last status {st})")
            # the fault did what it is for: the others elected a leader in a
            # later term while this one was frozen
            assert st["term"] > term_before, f"pause {attempt + 1}: no election happened: {st}"
            print(f"pause {attempt + 1}: old leader {old.node_id} answered after {answered:.2f} s; "
                  f"term {term_before} -> {st['term']}, leader now {st['leader']}")
            assert old.running
            # and it serves writes and linearizable reads itself
            r = requests.put(old.url("/v1/key/after-pause"), data=str(attempt), timeout=10)
            assert r.status_code == 201, r.text
            r = requests.get(old.url("/v1/key/after-pause"), timeout=10)
            assert r.status_code == 200 and r.text == str(attempt)
            # the clients made progress across the fault
            deadline = time.monotonic() + 10
            while sum(clients.ok) <= before + 10 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert sum(clients.ok) > before + 10, f"clients made no progress: {clients.ok}"
