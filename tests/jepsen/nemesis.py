"""Fault schedules and their execution against a harness.Cluster.

A schedule is a list of steps computed from the seed alone, so a seed
reproduces it; which node "the leader" is gets resolved when the step runs
(and is recorded in the fault log). Every fault lasts a bounded time and is
healed before the next one starts; at most a minority (one node of three)
is faulty at any moment, except in `restart-all`, which is the point of it.

Overlap (make_schedule(overlap=P)): a share P of the steps start while the
cluster is still recovering from the step before (0.05-0.6 s after its
heal, not after every node is ready again): a fault during a restarted
node's catch-up or snapshot install, during a new leader's first moments,
or during a re-added member's join. The harness waits for full health
only at the end of such a chain. Overlap draws from its own random stream,
so a seed's steps are the same with and without it.

Kinds:
  kill              kill -9 a random node, restart it after the fault time
  kill-leader       kill -9 the current leader, restart it
  pause             SIGSTOP a random node (a very slow node), SIGCONT
  pause-leader      SIGSTOP the leader, SIGCONT
  partition-random  cut a random node off from both peers (connections reset)
  partition-leader  cut the leader off from both peers
  blackhole-leader  isolate the leader silently (packets dropped, no resets)
  partition-partial cut only the link between the leader and one follower;
                    the third node still reaches both (a non-transitive net)
  partition-asym    the leader's outgoing messages are dropped, incoming
                    ones still arrive
  delay             every link delayed by 20-150 ms (chaos.py --delay-ms) with jitter,
                    the clients' links too
  client-cut        every client connection to a random node reset, new ones
                    refused (its peers still reach it)
  member            remove a random node (DELETE /v1/cluster/members/N), wipe
                    its data, re-add it (POST /v1/cluster/members) and restart
                    it with --join; the cluster runs on two voters meanwhile
  transfer          POST /v1/cluster/leader to move leadership to a random
                    follower
  restart-all       kill -9 every node at once, then restart them all
"""
import random
import threading
import time

import requests

KINDS = ["kill", "kill-leader", "pause", "pause-leader", "partition-random", "partition-leader",
         "blackhole-leader", "partition-partial", "partition-asym", "delay", "member", "transfer",
         "restart-all", "client-cut"]

# rough time each kind takes beyond its fault time (recovery), for planning
_RECOVERY = {"kill": 1.5, "kill-leader": 2, "pause": 1, "pause-leader": 1.5, "partition-random": 1,
             "partition-leader": 1.5, "blackhole-leader": 1.5, "partition-partial": 1,
             "partition-asym": 1.5, "delay": 0.5, "member": 4, "transfer": 0.5, "restart-all": 3,
             "client-cut": 0.5}


def parse_mix(mix):
    """'all' or 'kind[:weight],...' -> {kind: weight}."""
    if mix in (None, "", "all"):
        return {k: 1 for k in KINDS}
    out = {}
    for part in mix.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, w = part.partition(":")
        if name == "all":
            for k in KINDS:
                out.setdefault(k, 1)
            continue
        if name not in KINDS:
            raise ValueError(f"unknown nemesis {name!r}; known: {', '.join(KINDS)}")
        out[name] = int(w) if w else 1
    if not out:
        raise ValueError("empty nemesis mix")
    return out


def make_schedule(seed, duration, mix="all", fault_time=(3.0, 6.0), gap=(1.0, 3.0), rounds=None,
                  delay_ms=(20, 150), overlap=0.0):
    """Steps whose planned total (fault + recovery + gap) fits `duration`
    seconds, or exactly `rounds` rounds when given. Kinds come in shuffled
    rounds where each kind appears `weight` times, so a run of one round
    sees every kind of the mix. A share `overlap` of the steps after the
    first start before the cluster has recovered from the one before."""
    rng = random.Random(seed)
    orng = random.Random(seed * 1_000_003 + 17)
    weights = parse_mix(mix)
    steps = []
    planned = 0.0
    bag = []
    done_rounds = 0
    while True:
        if not bag:
            if rounds is not None and done_rounds >= rounds:
                break
            bag = [k for k, w in weights.items() for _ in range(w)]
            rng.shuffle(bag)
            done_rounds += 1
        kind = bag.pop()
        d = rng.uniform(*fault_time)
        if kind == "transfer":
            d = rng.uniform(1.0, 2.0)
        elif kind == "restart-all":
            d = rng.uniform(0.5, 2.0)
        g = rng.uniform(*gap)
        cost = d + g + _RECOVERY[kind]
        if rounds is None and steps and planned + cost > duration:
            break
        steps.append({"step": len(steps), "kind": kind, "duration": round(d, 2), "gap": round(g, 2),
                      "pick": round(rng.random(), 4), "delay_ms": rng.randint(*delay_ms),
                      "jitter_ms": rng.randint(0, max(1, delay_ms[1] // 2))})
        if overlap > 0:
            lag = round(orng.uniform(0.05, 0.6), 2)
            if len(steps) > 1 and orng.random() < overlap:
                steps[-1]["overlap"] = True
                steps[-1]["overlap_after"] = lag
                cost -= g  # the gap before it is replaced by the short lag
        planned += cost
        if rounds is None and planned > duration:
            break
    return steps


class Nemesis:
    def __init__(self, cluster, log=print, recovery_timeout=60.0):
        self.c = cluster
        self.log = log
        self.events = []
        self.lock = threading.Lock()
        self.recovery_timeout = recovery_timeout
        self.problems = []  # harness-level trouble (not safety violations)
        self.next_overlaps = False
        self.joins = []  # joins left running under an overlapping fault
        self.unavailable = []  # cluster did not recover in time after a heal

    # -- bookkeeping --------------------------------------------------------------
    def event(self, step, phase, **kw):
        e = {"t": time.monotonic_ns(), "step": step["step"], "kind": step["kind"], "phase": phase}
        e.update(kw)
        with self.lock:
            self.events.append(e)
        self.log(f"nemesis: step {step['step']} {step['kind']} {phase} "
                 + " ".join(f"{k}={v}" for k, v in kw.items()))
        return e

    def _pick(self, step, candidates):
        candidates = sorted(candidates)
        return candidates[int(step["pick"] * len(candidates)) % len(candidates)]

    def _leader_or_pick(self, step):
        ld = self.c.leader(8)
        if ld is None:
            ld = self._pick(step, self.c.node_ids())
            self.event(step, "info", note="no leader found, picking a node instead", node=ld)
        return ld

    def _others(self, i):
        return [j for j in self.c.node_ids() if j != i]

    # -- the run --------------------------------------------------------------------
    def run(self, schedule, deadline):
        """Run steps until the schedule ends or the monotonic deadline passes
        (a started fault is always finished and healed)."""
        chained = False  # the step that just ran started before recovery
        for k, step in enumerate(schedule):
            if time.monotonic() >= deadline:
                break
            nxt = schedule[k + 1] if k + 1 < len(schedule) else None
            self.next_overlaps = bool(nxt and nxt.get("overlap")) and time.monotonic() < deadline
            try:
                getattr(self, "do_" + step["kind"].replace("-", "_"))(step)
            except Exception as e:  # noqa: BLE001 - heal and carry on, but say so
                if chained:
                    # a fault on top of a recovery may break the operator's
                    # procedure it interrupted (a member's join): repaired
                    # below, not a harness error
                    self.event(step, "info", note="step failed during an overlap", error=repr(e))
                else:
                    self.problems.append(f"step {step['step']} {step['kind']}: {e!r}")
                    self.event(step, "error", error=repr(e))
                self.c.proxy.call(cmd="heal")
                for i in self.c.node_ids():
                    self.c.resume(i)
                self._repair_members(step)
                self.c.heal_all()
            if self.next_overlaps:
                self._restart_crashed(step)
                time.sleep(nxt["overlap_after"])
                self.event(nxt, "overlap", after_s=nxt["overlap_after"], healthy=self.c.healthy())
                chained = True
                continue
            t0 = time.monotonic()
            if chained:
                # a join interrupted by the overlapping fault is finished
                # the way an operator would: remove and add it again
                self.c.heal_all()
                ok = self.c.wait_healthy(min(20.0, self.recovery_timeout))
                if not ok:
                    self._repair_members(step)
                chained = False
            ok = self.c.wait_healthy(self.recovery_timeout)
            if self._restart_crashed(step):
                ok = self.c.wait_healthy(self.recovery_timeout)
            took = time.monotonic() - t0
            self.event(step, "recovered" if ok else "not-recovered", seconds=round(took, 2))
            if not ok:
                self.unavailable.append(f"step {step['step']} {step['kind']}: cluster not healthy "
                                        f"{self.recovery_timeout}s after the heal")
                self.c.heal_all()
                if not self.c.wait_healthy(self.recovery_timeout):
                    # the run has failed already; more faults would only
                    # burn time (and test nothing: no healthy majority)
                    self.event(step, "abort", note="cluster did not recover: remaining steps skipped")
                    break
            time.sleep(step["gap"])

    def _restart_crashed(self, step):
        """Record every node that exited by itself and restart it (heal_all
        records it too); True if there was one."""
        crashed = self.c.crashed()
        for i, rc in crashed:
            self.event(step, "crash", node=i, status=rc, log=str(self.c.node(i).stderr_path))
        if crashed:
            self.c.heal_all()
        return bool(crashed)

    def _repair_members(self, step):
        """A node that is no longer a voter must be removed (if still
        listed) and join again, not bootstrap from --initial-cluster with
        an empty data dir."""
        end = time.monotonic() + 60
        for j in self.joins:
            j.join(max(0.0, end - time.monotonic()))
        self.joins = [j for j in self.joins if j.is_alive()]
        for i in self.c.node_ids():
            role = self._member_role(i, exclude=i)
            if role in ("voter", "?"):
                continue
            try:
                if role is not None:
                    ok, res = self._admin("DELETE", f"/v1/cluster/members/{i}", exclude=i)
                    self.event(step, "info", action="DELETE member (repair)", result=res)
                self.readd(step, i)
            except Exception as e2:  # noqa: BLE001
                self.problems.append(f"re-adding node {i}: {e2!r}")

    # -- faults -----------------------------------------------------------------------
    def _note_leader_while_out(self, step, target):
        """For a fault on the leader: which node the others follow now (a
        run asserts that it is a new one, i.e. that the fault did what it is
        meant to do)."""
        if step["kind"].endswith("-leader"):
            self.event(step, "info", leader_during=self.c.leader(1.5, exclude=(target,)))

    def _kill(self, step, target):
        self.event(step, "start", node=target, action="kill -9")
        self.c.kill9(target)
        time.sleep(step["duration"])
        self._note_leader_while_out(step, target)
        self.c.restart(target, wait=False)
        self.event(step, "heal", node=target, action="restart")

    def do_kill(self, step):
        self._kill(step, self._pick(step, self.c.node_ids()))

    def do_kill_leader(self, step):
        self._kill(step, self._leader_or_pick(step))

    def _pause(self, step, target):
        self.event(step, "start", node=target, action="SIGSTOP")
        self.c.pause(target)
        time.sleep(step["duration"])
        self._note_leader_while_out(step, target)
        self.c.resume(target)
        self.event(step, "heal", node=target, action="SIGCONT")

    def do_pause(self, step):
        self._pause(step, self._pick(step, self.c.node_ids()))

    def do_pause_leader(self, step):
        self._pause(step, self._leader_or_pick(step))

    def _isolate(self, step, target, mode):
        links = [[target, o] for o in self._others(target)] + [[o, target] for o in self._others(target)]
        self.event(step, "start", node=target, mode=mode, links=links)
        self.c.proxy.call(cmd="set", links=links, mode=mode)
        time.sleep(step["duration"])
        self._note_leader_while_out(step, target)
        self.c.proxy.call(cmd="heal")
        self.event(step, "heal", node=target)

    def do_partition_random(self, step):
        self._isolate(step, self._pick(step, self.c.node_ids()), "cut")

    def do_partition_leader(self, step):
        self._isolate(step, self._leader_or_pick(step), "cut")

    def do_blackhole_leader(self, step):
        self._isolate(step, self._leader_or_pick(step), "blackhole")

    def do_partition_partial(self, step):
        ld = self._leader_or_pick(step)
        other = self._pick(step, self._others(ld))
        links = [[ld, other], [other, ld]]
        self.event(step, "start", node=ld, peer=other, mode="cut", links=links)
        self.c.proxy.call(cmd="set", links=links, mode="cut")
        time.sleep(step["duration"])
        self.c.proxy.call(cmd="heal")
        self.event(step, "heal", node=ld, peer=other)

    def do_partition_asym(self, step):
        ld = self._leader_or_pick(step)
        links = [[ld, o] for o in self._others(ld)]
        self.event(step, "start", node=ld, mode="blackhole", links=links, note="outgoing only")
        self.c.proxy.call(cmd="set", links=links, mode="blackhole")
        time.sleep(step["duration"])
        self.c.proxy.call(cmd="heal")
        self.event(step, "heal", node=ld)

    def do_delay(self, step):
        ids = self.c.node_ids()
        ends = ids + [0]  # 0: the clients
        links = [[a, b] for a in ends for b in ends if a != b]
        self.event(step, "start", delay_ms=step["delay_ms"], jitter_ms=step["jitter_ms"], links="all")
        self.c.proxy.call(cmd="set", links=links, mode="ok", delay_ms=step["delay_ms"],
                          jitter_ms=step["jitter_ms"])
        time.sleep(step["duration"])
        self.c.proxy.call(cmd="heal")
        self.event(step, "heal")

    def do_client_cut(self, step):
        target = self._pick(step, self.c.node_ids())
        links = [[0, target]]
        self.event(step, "start", node=target, mode="cut", links=links, note="client connections")
        self.c.proxy.call(cmd="set", links=links, mode="cut")
        time.sleep(step["duration"])
        self.c.proxy.call(cmd="heal")
        self.event(step, "heal", node=target)

    def do_transfer(self, step):
        ld = self.c.leader(8)
        ids = self.c.node_ids()
        target = self._pick(step, [i for i in ids if i != ld] or ids)
        via = self._pick(step, ids)
        self.event(step, "start", node=target, via=via, leader=ld)
        try:
            r = self.c.http(via, "POST", "/v1/cluster/leader", json={"id": target}, timeout=15)
            res = f"{r.status_code} {r.text.strip()[:200]}"
        except requests.RequestException as e:
            res = repr(e)
        self.event(step, "info", result=res)
        time.sleep(step["duration"])
        self.event(step, "heal", leader=self.c.leader(5))

    def do_restart_all(self, step):
        ids = self.c.node_ids()
        self.event(step, "start", nodes=ids, action="kill -9 all")
        for i in ids:
            self.c.kill9(i)
        time.sleep(step["duration"])
        for i in ids:
            self.c.restart(i, wait=False)
        self.event(step, "heal", nodes=ids, action="restart all")

    # -- membership -------------------------------------------------------------------
    def _view(self, exclude):
        for i in self.c.node_ids():
            if i == exclude or not self.c.node(i).running or i in self.c.paused:
                continue
            v = self.c.members_view(i)
            if v:
                return v
        return None

    def _member_role(self, target, exclude):
        """'voter', 'spare', 'standby', None (absent) or '?' (no answer)."""
        v = self._view(exclude)
        if v is None:
            return "?"
        for m in v["members"]:
            if m["id"] == target:
                return "voter" if m.get("voter") else m.get("role", "?")
        return None

    def _admin(self, method, path, exclude, body=None, timeout=20):
        vias = [i for i in self.c.node_ids() if i != exclude and i not in self.c.paused]
        tried = []
        for via in vias:
            try:
                r = self.c.http(via, method, path, json=body, timeout=timeout)
                tried.append(f"via {via}: {r.status_code} {r.text.strip()[:200]}")
                if r.status_code == 200:
                    return True, "; ".join(tried)
            except requests.RequestException as e:
                self.c.sessions.pop(via, None)
                tried.append(f"via {via}: {e!r}")
        return False, "; ".join(tried)

    def do_member(self, step):
        ids = self.c.node_ids()
        target = self._pick(step, ids)
        ld = self.c.leader(8)
        self.event(step, "start", node=target, leader=ld, action="remove")
        # 1. remove it (retried: a leader change may fail the request)
        removed = False
        for _ in range(4):
            ok, res = self._admin("DELETE", f"/v1/cluster/members/{target}", exclude=target)
            self.event(step, "info", action="DELETE member", result=res)
            if ok or self._member_role(target, exclude=target) is None:
                removed = True
                break
            time.sleep(1)
        if not removed:
            raise RuntimeError(f"could not remove node {target}: {res}")
        # 2. stop it, wipe its data; the cluster runs on the others
        self.c.kill9(target)
        self.c.wipe(target)
        self.event(step, "info", node=target, action="killed and wiped")
        time.sleep(step["duration"])
        self.readd(step, target, wait_voter=not self.next_overlaps)

    def readd(self, step, target, wait_voter=True):
        """Add a removed, wiped node back under its old (proxy) address and
        start it with --join; wait until it is a voter (or, when the next
        fault overlaps the join, only until the node runs: the rest of the
        join goes on in the background)."""
        ids = self.c.node_ids()
        if self.c.node(target).running:
            self.c.kill9(target)
        self.c.wipe(target)
        peer = self.c.peer_addr(target)
        adder = {}

        def add():
            adder["result"] = self._admin("POST", "/v1/cluster/members", exclude=target,
                                          body={"id": target, "peer": peer}, timeout=30)

        t = threading.Thread(target=add, daemon=True)
        t.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self._member_role(target, exclude=target) in (None, "?"):
            time.sleep(0.1)
        via = self._pick(step, [i for i in ids if i != target])
        join_url = f"http://127.0.0.1:{self.c.node(via).http_port}"
        args = ["--join", join_url] + [a for a in self.c.base_args[target]]
        # --initial-cluster is for bootstrapping; a joining node must not carry it
        k = args.index("--initial-cluster")
        del args[k:k + 2]
        self.c.spawn(target, args)
        self.event(step, "heal", node=target, action="re-add + restart with --join", join=join_url,
                   peer=peer)
        if not wait_voter:
            j = threading.Thread(target=self._finish_join, args=(step, target, t, adder, False),
                                 daemon=True)
            j.start()
            self.joins.append(j)
            return
        self._finish_join(step, target, t, adder, True)

    def _finish_join(self, step, target, t, adder, strict):
        deadline = time.monotonic() + 45
        while t.is_alive() and time.monotonic() < deadline and self.c.node(target).running:
            t.join(0.2)
        self.event(step, "info", action="POST member", result=str(adder.get("result")))
        deadline = time.monotonic() + 45
        role = None
        while time.monotonic() < deadline:
            x = self.c.node(target)
            if not x.running:
                rc = x.proc.poll() if x.proc is not None else None
                self.event(step, "info", node=target, action="exited while joining", status=rc)
                x.extra_args = list(self.c.base_args[target])
                if not strict:
                    return  # killed by the overlapping fault; repaired later
                tail = "\n".join(x.stderr_text().splitlines()[-5:])
                raise RuntimeError(f"node {target} exited with status {rc} while joining; log tail:\n{tail}")
            role = self._member_role(target, exclude=None)
            if role == "voter":
                break
            time.sleep(0.2)
        self.event(step, "info", node=target, role=role)
        # later restarts of this node use the normal command line
        self.c.node(target).extra_args = list(self.c.base_args[target])
        if role != "voter" and strict:
            raise RuntimeError(f"node {target} did not become a voter again (role {role}, "
                               f"add: {adder.get('result')})")
