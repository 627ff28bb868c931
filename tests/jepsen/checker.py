"""Linearizability checker for registers with compare-and-set.

Pure Python, no dependencies. Used by the cairn fault-injection harness
(tests/jepsen) and unit-tested on its own (tests/jepsen/test_checker.py).

History
-------
A history is a list of operations (dicts, e.g. one per JSONL line):

    {"id": 17, "key": "k", "f": "read" | "write" | "cas",
     "value": <new value>            (write, cas),
     "expect": <expected value>      (cas; None = key absent),
     "outcome": "ok" | "fail" | "info",
     "result": <value read> (read)  |  True / False (cas applied / 412),
     "inv": <invocation time, int ns>, "cmp": <completion time or None>,
     "after": <id of an operation this one must follow> (optional),
     ... any other fields (client, node, protocol) are kept for reports}

Values are anything hashable; None means "the key does not exist". Every
write must write a value no other write writes (the harness writes unique
values), which is what lets a CAS on a revision be modelled as a CAS on
the value that carried that revision.

Outcomes:
  ok    the operation took effect exactly once between inv and cmp, and
        `result` is what it returned (for a CAS: True = applied,
        False = precondition failed, i.e. the register did not hold
        `expect` at its linearization point);
  fail  it definitely did not take effect: it is left out;
  info  indeterminate (timeout, "outcome unknown", connection lost after
        sending): it may have taken effect once at any point after inv,
        or never. Its completion time is treated as infinite.
Reads that failed or are indeterminate observe nothing and are left out.

`after` is session order that real time cannot show: a read pipelined
behind a write on one connection is sent before the write's answer
arrives, so by the clock the two are concurrent, yet the server must run
them in order. The operation is linearized only after the one it names
(`id`), when that one is `ok`; after a `fail` or `info` predecessor the
constraint is dropped, which only weakens the check.

Algorithm
---------
Per-key decomposition (a history of independent registers is linearizable
iff each key's sub-history is: linearizability is local), then for each key
the Wing & Gong search with Lowe's memoisation of (set of linearized
operations, register state): walk the time-ordered list of call and return
events; at a call, try to linearize that operation next (if the model
allows it and the configuration is new), removing it from the list; at the
return of an operation not yet linearized, backtrack. Indeterminate
operations have no return event, so they never force backtracking and may
stay unlinearized (= never applied).

For a key that fails, `shrink` looks for the smallest sub-history that is
still not linearizable, using only sound reductions (each keeps the
property "if the whole history were linearizable, so would this be"):
cutting the history at a time T (operations still running at T become
indeterminate, observations still running are dropped), dropping
observations (ok reads, failed CAS), and dropping writes whose value no
remaining operation observes (only while no failed CAS remains, whose
outcome could depend on them).
"""

import itertools
import json

__all__ = ["check", "check_key", "shrink", "format_ops", "load_jsonl", "anomalies",
           "LinResult", "OK", "FAIL", "UNKNOWN"]

OK = "ok"
FAIL = "fail"
UNKNOWN = "unknown"

INF = float("inf")


class _Op:
    """Internal, normalised operation."""

    __slots__ = ("idx", "src", "f", "value", "expect", "result", "definite", "inv", "cmp", "after")

    def __init__(self, idx, src, f, value, expect, result, definite, inv, cmp):
        self.idx = idx
        self.src = src          # the original dict
        self.f = f              # "read" | "write" | "cas"
        self.value = value
        self.expect = expect
        self.result = result
        self.definite = definite  # True: must be linearized; False: optional
        self.inv = inv
        self.cmp = cmp            # INF for optional operations
        self.after = None         # the _Op that must be linearized first

    def step(self, state):
        """(legal, new_state) when this op is linearized in `state`."""
        f = self.f
        if f == "read":
            return state == self.result, state
        if f == "write":
            return True, self.value
        # cas
        if not self.definite or self.result is True:
            if state == self.expect:
                return True, self.value
            return False, state
        # definite, precondition failed (412)
        return state != self.expect, state


def _hashable(v):
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    return v


def _normalise(ops):
    """Drop what carries no information; return _Op objects (idx = position)."""
    out = []
    for o in ops:
        f = o.get("f")
        outcome = o.get("outcome")
        if f not in ("read", "write", "cas"):
            raise ValueError(f"unknown operation type {f!r} in {o!r}")
        if outcome not in ("ok", "fail", "info"):
            raise ValueError(f"unknown outcome {outcome!r} in {o!r}")
        if outcome == "fail":
            continue
        if f == "read" and outcome != "ok":
            continue
        inv = o["inv"]
        definite = outcome == "ok"
        cmp = o.get("cmp") if definite else None
        if definite and cmp is None:
            raise ValueError(f"ok operation without completion time: {o!r}")
        if definite and cmp < inv:
            raise ValueError(f"operation completes before it starts: {o!r}")
        result = o.get("result")
        if f == "cas" and definite and result not in (True, False):
            raise ValueError(f"ok cas needs result True or False: {o!r}")
        out.append(_Op(len(out), o, f, _hashable(o.get("value")), _hashable(o.get("expect")),
                       _hashable(result) if f == "read" else result, definite, inv,
                       cmp if definite else INF))
    by_id = {op.src["id"]: op for op in out if op.definite and "id" in op.src}
    for op in out:
        before = by_id.get(op.src.get("after")) if op.src.get("after") is not None else None
        if before is not None and before is not op:
            op.after = before
    return out


class _Entry:
    __slots__ = ("op", "call", "match", "prev", "next")

    def __init__(self, op, call):
        self.op = op
        self.call = call
        self.match = None
        self.prev = None
        self.next = None


def _search(ops, init=None, budget=2_000_000):
    """Wing & Gong / Lowe search over normalised ops of one register.

    Returns (verdict, info): OK with the linearization order (list of ops),
    FAIL with the op whose return could not be passed at the deepest point
    of the search, or UNKNOWN when `budget` steps were not enough."""
    if not ops:
        return OK, []
    events = []
    for op in ops:
        c = _Entry(op, True)
        r = _Entry(op, False)
        c.match = r
        r.match = c
        # calls sort before returns at equal times: treat touching
        # operations as concurrent (never report a violation that depends
        # on clock resolution)
        events.append((op.inv, 0, op.idx, c))
        events.append((op.cmp, 1, op.idx, r))
    events.sort(key=lambda t: (t[0], t[1], t[2]))
    head = _Entry(None, False)
    prev = head
    for _, _, _, e in events:
        prev.next = e
        e.prev = prev
        prev = e

    def lift(e):
        # remove call e and its return from the list
        e.prev.next = e.next
        if e.next is not None:
            e.next.prev = e.prev
        r = e.match
        r.prev.next = r.next
        if r.next is not None:
            r.next.prev = r.prev

    def unlift(e):
        r = e.match
        r.prev.next = r
        if r.next is not None:
            r.next.prev = r
        e.prev.next = e
        if e.next is not None:
            e.next.prev = e

    state = init
    linearized = 0
    cache = set()
    stack = []
    steps = 0
    deepest = -1
    stuck = None
    e = head.next
    while True:
        steps += 1
        if steps > budget:
            return UNKNOWN, {"steps": steps, "deepest": deepest}
        if e is None or (not e.call and not e.op.definite):
            return OK, [c.op for c, _ in stack]
        if e.call:
            op = e.op
            if op.after is not None and not (linearized >> op.after.idx) & 1:
                e = e.next  # its predecessor in session order comes first
                continue
            legal, new_state = op.step(state)
            if legal:
                new_lin = linearized | (1 << op.idx)
                k = (new_lin, new_state)
                if k not in cache:
                    cache.add(k)
                    stack.append((e, state))
                    state = new_state
                    linearized = new_lin
                    lift(e)
                    e = head.next
                    continue
            e = e.next
        else:
            if len(stack) > deepest:
                deepest = len(stack)
                stuck = e.op
            if not stack:
                return FAIL, {"stuck": stuck, "deepest": deepest, "steps": steps}
            c, state = stack.pop()
            linearized &= ~(1 << c.op.idx)
            unlift(c)
            e = c.next


class LinResult:
    """Outcome of checking a whole history."""

    def __init__(self):
        self.verdict = OK
        self.keys = {}          # key -> (verdict, details dict)
        self.failures = []      # list of dicts: key, witness ops, stuck op, message
        self.unknown = []       # keys the budget did not suffice for
        self.counts = {}        # (f, outcome[, result]) -> n

    @property
    def ok(self):
        return self.verdict == OK

    def summary(self):
        n_keys = len(self.keys)
        bad = [k for k, (v, _) in self.keys.items() if v == FAIL]
        return (f"{self.verdict}: {n_keys} keys checked, {len(bad)} not linearizable, "
                f"{len(self.unknown)} undecided")


def _count(ops):
    counts = {}
    for o in ops:
        f, outcome = o.get("f"), o.get("outcome")
        if f == "cas" and outcome == "ok":
            label = "cas ok (applied)" if o.get("result") is True else "cas ok (412)"
        else:
            label = f"{f} {outcome}"
        counts[label] = counts.get(label, 0) + 1
    return counts


def check_key(ops, budget=2_000_000, init=None):
    """Check one register's history (dicts). Returns (verdict, details)."""
    norm = _normalise(ops)
    verdict, info = _search(norm, init=init, budget=budget)
    if verdict == OK:
        return OK, {"order": [o.src for o in info]}
    if verdict == UNKNOWN:
        return UNKNOWN, info
    stuck = info.get("stuck")
    return FAIL, {"stuck": stuck.src if stuck is not None else None, "deepest": info["deepest"]}


def _cut(ops, t):
    """The history as seen at time t: ops invoked after t are gone; writes
    still running become indeterminate; observations still running are
    dropped. Sound: if the whole history is linearizable, so is the cut."""
    out = []
    for o in ops:
        if o["inv"] > t:
            continue
        cmp = o.get("cmp")
        if o["outcome"] == "ok" and cmp is not None and cmp > t:
            if o["f"] == "read" or (o["f"] == "cas" and o.get("result") is False):
                continue
            o = dict(o, outcome="info", cmp=None)
        out.append(o)
    return out


def _observed(ops):
    seen = set()
    for o in ops:
        if o["f"] == "read" and o["outcome"] == "ok":
            seen.add(_hashable(o.get("result")))
        if o["f"] == "cas" and o["outcome"] != "fail":
            seen.add(_hashable(o.get("expect")))
    return seen


def _fails(ops, budget):
    v, _ = check_key(ops, budget=budget)
    return v == FAIL


def shrink(ops, budget=200_000, max_checks=2000):
    """Smallest sub-history (of one key) found that is still not
    linearizable. `ops` must fail check_key. Returns a list of op dicts
    (possibly with ok writes turned indeterminate by the time cut)."""
    ops = [o for o in ops if o.get("outcome") != "fail"
           and not (o.get("f") == "read" and o.get("outcome") != "ok")]
    ops.sort(key=lambda o: o["inv"])
    checks = [0]

    def fails(h):
        checks[0] += 1
        return _fails(h, budget)

    # 1. the earliest cut that still fails (monotone: a later cut contains
    #    an earlier one as a sound weakening)
    times = sorted({o["cmp"] for o in ops if o.get("outcome") == "ok" and o.get("cmp") is not None})
    lo, hi = 0, len(times) - 1
    best = ops
    if times and fails(_cut(ops, times[hi])):
        while lo < hi and checks[0] < max_checks:
            mid = (lo + hi) // 2
            if fails(_cut(ops, times[mid])):
                hi = mid
            else:
                lo = mid + 1
        best = _cut(ops, times[hi])
    cur = list(best)

    # 2. greedy removal with sound reductions, until nothing changes
    changed = True
    while changed and checks[0] < max_checks:
        changed = False
        # observations first (latest first: the violation is usually late)
        for o in sorted(cur, key=lambda o: -o["inv"]):
            if checks[0] >= max_checks:
                break
            is_obs = o["f"] == "read" or (o["f"] == "cas" and o["outcome"] == "ok" and o.get("result") is False)
            if not is_obs:
                continue
            trial = [x for x in cur if x is not o]
            if fails(trial):
                cur = trial
                changed = True
        if any(x["f"] == "cas" and x["outcome"] == "ok" and x.get("result") is False for x in cur):
            continue
        seen = _observed(cur)
        for o in sorted(cur, key=lambda o: o["inv"]):
            if checks[0] >= max_checks:
                break
            if o["f"] == "read":
                continue
            if o["f"] == "cas" and o["outcome"] == "ok" and o.get("result") is False:
                continue
            if _hashable(o.get("value")) in seen:
                continue
            trial = [x for x in cur if x is not o]
            if fails(trial):
                cur = trial
                changed = True
                seen = _observed(cur)
    cur.sort(key=lambda o: o["inv"])
    return cur


def anomalies(ops):
    """Easily explained problems, reported next to the search verdict:
    reads of values no write ever wrote, reads of values whose write was
    reported as definitely not applied, CAS expecting a value never written,
    and one successful CAS per expected value (two CAS from one version)."""
    out = []
    written = {}
    failed = {}
    for o in ops:
        if o["f"] in ("write", "cas"):
            v = _hashable(o.get("value"))
            if o["outcome"] == "fail":
                failed.setdefault(v, o)
            else:
                written.setdefault(v, o)
    cas_from = {}
    for o in ops:
        if o["f"] == "read" and o["outcome"] == "ok":
            v = _hashable(o.get("result"))
            if v is not None and v not in written:
                if v in failed:
                    out.append({"kind": "read-of-failed-write", "op": o, "write": failed[v],
                                "message": "read a value whose write was reported as not applied"})
                else:
                    out.append({"kind": "read-of-unwritten-value", "op": o,
                                "message": "read a value that no operation wrote"})
        if o["f"] == "cas" and o["outcome"] == "ok" and o.get("result") is True:
            e = _hashable(o.get("expect"))
            if e in cas_from:
                out.append({"kind": "double-cas", "op": o, "other": cas_from[e],
                            "message": "two compare-and-set operations succeeded from the same version"})
            else:
                cas_from[e] = o
    return out


def check(history, budget=2_000_000, shrink_budget=200_000):
    """Check a whole history (list of op dicts with "key"). Returns LinResult."""
    res = LinResult()
    res.counts = _count(history)
    by_key = {}
    for o in history:
        by_key.setdefault(o.get("key"), []).append(o)
    for key in sorted(by_key, key=lambda k: repr(k)):
        ops = by_key[key]
        verdict, details = check_key(ops, budget=budget)
        res.keys[key] = (verdict, details)
        if verdict == FAIL:
            witness = shrink(ops, budget=shrink_budget)
            res.failures.append({"key": key, "witness": witness, "stuck": details.get("stuck"),
                                 "anomalies": anomalies(ops), "ops": len(ops)})
        elif verdict == UNKNOWN:
            res.unknown.append(key)
    if res.failures:
        res.verdict = FAIL
    elif res.unknown:
        res.verdict = UNKNOWN
    return res


def _fmt_val(v):
    if v is None:
        return "nil"
    return repr(v) if not isinstance(v, str) else v


def format_op(o, t0=0):
    inv = (o["inv"] - t0) / 1e6
    cmp = o.get("cmp")
    span = f"{inv:10.1f} .. {((cmp - t0) / 1e6):10.1f} ms" if cmp is not None and o["outcome"] == "ok" \
        else f"{inv:10.1f} .. {'?':>10}    "
    who = f"{o.get('client', '?')}@n{o.get('node', '?')}/{o.get('proto', 'http')}"
    f = o["f"]
    if f == "read":
        what = f"read -> {_fmt_val(o.get('result'))}"
    elif f == "write":
        what = f"write {_fmt_val(o.get('value'))}"
    else:
        what = f"cas {_fmt_val(o.get('expect'))} -> {_fmt_val(o.get('value'))}"
        if o["outcome"] == "ok":
            what += " : applied" if o.get("result") is True else " : 412 precondition failed"
    out = o["outcome"]
    extra = ""
    if o["outcome"] != "ok" and o.get("error"):
        extra = f"  ({o['error']})"
    if o.get("after") is not None:
        extra += f"  [pipelined behind op {o['after']}]"
    if o.get("id") is not None:
        extra += f"  #{o['id']}"
    return f"{span}  {who:<18} {out:<4} {what}{extra}"


def format_ops(ops, t0=None):
    if not ops:
        return "(empty)"
    if t0 is None:
        t0 = min(o["inv"] for o in ops)
    return "\n".join(format_op(o, t0) for o in sorted(ops, key=lambda o: o["inv"]))


def format_result(res, t0=None, limit=5):
    """Human-readable report of a LinResult (times relative to t0, in ms)."""
    lines = [res.summary()]
    for fl in res.failures[:limit]:
        w = fl["witness"]
        base = t0 if t0 is not None else (min(o["inv"] for o in w) if w else 0)
        lines.append(f"\nkey {fl['key']!r}: not linearizable ({fl['ops']} ops); "
                     f"smallest failing sub-history found ({len(w)} ops):")
        lines.append(format_ops(w, base))
        if fl.get("stuck") is not None:
            lines.append("search got stuck at the return of:\n" + format_op(fl["stuck"], base))
        for a in fl.get("anomalies", [])[:5]:
            lines.append(f"anomaly {a['kind']}: {a['message']}:\n" + format_op(a["op"], base))
    if len(res.failures) > limit:
        lines.append(f"... and {len(res.failures) - limit} more keys")
    if res.unknown:
        lines.append(f"undecided keys (search budget exhausted): {res.unknown[:20]}")
    return "\n".join(lines)


def load_jsonl(path):
    ops = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                ops.append(json.loads(line))
    return ops


def brute_force(ops, init=None):
    """Exhaustive check of a tiny single-key history (for tests)."""
    norm = _normalise(ops)
    definite = [o for o in norm if o.definite]
    optional = [o for o in norm if not o.definite]
    for k in range(len(optional) + 1):
        for chosen in itertools.combinations(optional, k):
            sel = definite + list(chosen)
            for perm in itertools.permutations(sel):
                ok = True
                for i, a in enumerate(perm):
                    for b in perm[i + 1:]:
                        if b.cmp < a.inv:  # b finished before a started: b must come first
                            ok = False
                            break
                    if not ok:
                        break
                if not ok:
                    continue
                state = init
                for a in perm:
                    legal, state = a.step(state)
                    if not legal:
                        ok = False
                        break
                if ok:
                    return True
    return False


def main(argv):
    """checker.py HISTORY.jsonl...: check each file, print the verdict (and
    the smallest failing sub-histories); exit 0 when every file is
    linearizable, 1 when one is not, 2 when one is undecided."""
    if not argv or argv[0] in ("-h", "--help"):
        print(main.__doc__)
        return 0 if argv else 3
    verdicts = set()
    for path in argv:
        ops = load_jsonl(path)
        res = check(ops)
        print(f"{path}: {len(ops)} operations; " + format_result(res))
        verdicts.add(res.verdict)
    return 1 if FAIL in verdicts else 2 if UNKNOWN in verdicts else 0


if __name__ == "__main__":
    import sys
    sys.exit(main(sys.argv[1:]))
