"""Unit tests of the linearizability checker (tests/jepsen/checker.py) on
hand-written and generated histories; no cairnd involved."""
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import checker  # noqa: E402
from checker import FAIL, OK, UNKNOWN  # noqa: E402

_ids = iter(range(1, 10 ** 9))


def op(f, inv, cmp, outcome="ok", key="k", value=None, expect=None, result=None, client="c"):
    """inv/cmp in ms (converted to ns); cmp None for indeterminate ops."""
    return {"id": next(_ids), "key": key, "f": f, "value": value, "expect": expect,
            "result": result, "outcome": outcome, "inv": int(inv * 1e6),
            "cmp": None if cmp is None else int(cmp * 1e6), "client": client}


def w(value, inv, cmp, outcome="ok", key="k", client="c"):
    return op("write", inv, cmp, outcome, key, value=value, client=client)


def r(result, inv, cmp, outcome="ok", key="k", client="c"):
    return op("read", inv, cmp, outcome, key, result=result, client=client)


def cas(expect, value, inv, cmp, result=True, outcome="ok", key="k", client="c"):
    return op("cas", inv, cmp, outcome, key, value=value, expect=expect, result=result, client=client)


def verdict(ops):
    return checker.check_key(ops)[0]


# --------------------------------------------------------------------------
# accepted histories
# --------------------------------------------------------------------------

def test_empty_and_initial_state():
    assert verdict([]) == OK
    assert verdict([r(None, 0, 1)]) == OK


def test_sequential_writes_reads_and_cas():
    h = [w("a", 0, 1), r("a", 2, 3), cas("a", "b", 4, 5), r("b", 6, 7),
         cas("a", "c", 8, 9, result=False), r("b", 10, 11), cas(None, "x", 12, 13, result=False)]
    assert verdict(h) == OK


def test_create_if_absent_cas():
    assert verdict([cas(None, "a", 0, 1), r("a", 2, 3)]) == OK


def test_concurrent_read_may_see_old_or_new():
    for seen in (None, "a"):
        assert verdict([w("a", 0, 10), r(seen, 1, 5)]) == OK


def test_concurrent_reads_may_disagree_while_write_in_flight():
    # r1 sees new, r2 (concurrent with r1 and the write) sees old: fine as
    # long as r2 can be ordered before r1
    h = [w("a", 0, 100), r("a", 10, 20), r(None, 5, 30)]
    assert verdict(h) == OK


def test_indeterminate_write_observed_later():
    h = [w("a", 0, 1), w("b", 2, None, outcome="info"), r("a", 3, 4), r("b", 50, 51), r("b", 60, 61)]
    assert verdict(h) == OK


def test_indeterminate_write_never_observed():
    h = [w("a", 0, 1), w("b", 2, None, outcome="info"), r("a", 3, 4), r("a", 50, 51)]
    assert verdict(h) == OK


def test_indeterminate_cas_may_apply_or_not():
    base = [w("a", 0, 1), cas("a", "b", 2, None, outcome="info")]
    assert verdict(base + [r("a", 3, 4), r("b", 5, 6)]) == OK
    assert verdict(base + [r("a", 3, 4), r("a", 5, 6)]) == OK


def test_failed_ops_are_ignored():
    h = [w("a", 0, 1), w("b", 2, 3, outcome="fail"), r("a", 4, 5),
         r("zzz", 6, 7, outcome="fail"), cas("a", "c", 8, 9, outcome="fail"), r("a", 10, 11)]
    assert verdict(h) == OK


def test_touching_intervals_count_as_concurrent():
    # the read ends exactly when the write starts: no false alarm
    assert verdict([r("a", 0, 5), w("a", 5, 9)]) == OK


def test_per_key_decomposition_reports_only_the_bad_key():
    h = [w("a", 0, 1, key="x"), r("a", 2, 3, key="x"),
         w("b", 0, 1, key="y"), r(None, 2, 3, key="y")]
    res = checker.check(h)
    assert res.verdict == FAIL
    assert [f["key"] for f in res.failures] == ["y"]
    assert res.keys["x"][0] == OK


# --------------------------------------------------------------------------
# rejected histories
# --------------------------------------------------------------------------

def test_stale_read():
    h = [w("a", 0, 1), w("b", 2, 3), r("a", 4, 5)]
    assert verdict(h) == FAIL
    res = checker.check(h)
    wit = res.failures[0]["witness"]
    assert {o["f"] for o in wit} == {"write", "read"} and len(wit) == 3


def test_stale_read_from_a_lagging_follower_after_newer_read():
    # reads need not overlap writes to expose it: a newer value was already
    # returned to someone before this read began
    h = [w("a", 0, 1), w("b", 2, 50), r("b", 10, 20), r("a", 30, 40)]
    assert verdict(h) == FAIL


def test_lost_write():
    h = [w("a", 0, 1), r(None, 10, 11)]
    assert verdict(h) == FAIL
    h = [w("a", 0, 1), w("b", 2, 3), r("b", 4, 5), r("a", 100, 101)]
    assert verdict(h) == FAIL


def test_two_successful_cas_from_the_same_version():
    h = [w("a", 0, 1), cas("a", "b", 2, 10), cas("a", "c", 3, 11)]
    assert verdict(h) == FAIL
    res = checker.check(h)
    kinds = {a["kind"] for a in res.failures[0]["anomalies"]}
    assert "double-cas" in kinds


def test_read_of_never_written_value():
    h = [w("a", 0, 1), r("zzz", 2, 3)]
    assert verdict(h) == FAIL
    res = checker.check(h)
    assert res.failures[0]["anomalies"][0]["kind"] == "read-of-unwritten-value"


def test_read_of_a_write_reported_as_not_applied():
    h = [w("a", 0, 1), w("b", 2, 3, outcome="fail"), r("b", 4, 5)]
    assert verdict(h) == FAIL
    res = checker.check(h)
    assert res.failures[0]["anomalies"][0]["kind"] == "read-of-failed-write"


def test_value_visible_before_its_write_began():
    h = [r("a", 0, 1), w("a", 2, None, outcome="info")]
    assert verdict(h) == FAIL


def test_indeterminate_write_flickers():
    h = [w("a", 0, 1), w("b", 2, None, outcome="info"), r("b", 3, 4), r("a", 5, 6)]
    assert verdict(h) == FAIL


def test_cas_412_while_value_matched():
    h = [w("a", 0, 1), cas("a", "b", 2, 3, result=False), r("a", 4, 5)]
    assert verdict(h) == FAIL
    # ...but fine when a concurrent write explains it
    h2 = [w("a", 0, 1), w("c", 1.5, 3.5), cas("a", "b", 2, 3, result=False)]
    assert verdict(h2) == OK


def test_cas_applied_on_wrong_value():
    h = [w("a", 0, 1), w("b", 2, 3), cas("a", "c", 4, 5)]
    assert verdict(h) == FAIL


# --------------------------------------------------------------------------
# shrinking
# --------------------------------------------------------------------------

def _linearizable_history(rng, n_ops, clients=5, info_rate=0.05, fail_rate=0.03, key="k",
                          t_start=0.0):
    """A random history that is linearizable by construction: each op gets
    a linearization point inside its interval and results are computed in
    that order. Values are unique."""
    t = [t_start + rng.random() for _ in range(clients)]
    pending = []
    for i in range(n_ops):
        c = rng.randrange(clients)
        inv = t[c]
        dur = rng.expovariate(1 / 3.0) + 0.01
        cmp = inv + dur
        t[c] = cmp + rng.random()
        point = rng.uniform(inv, cmp)
        kind = rng.choice(["read", "read", "write", "cas"])
        outcome = "ok"
        x = rng.random()
        if kind != "read" and x < info_rate:
            outcome = "info"
            # applied (at a point after inv, possibly after cmp) or never
            point = inv + rng.random() * 40 if rng.random() < 0.5 else None
        elif kind != "read" and x < info_rate + fail_rate:
            outcome = "fail"
            point = None
        pending.append({"kind": kind, "inv": inv, "cmp": cmp, "point": point, "outcome": outcome,
                        "client": f"c{c}", "value": f"v{i}"})
    state = None
    history = []
    seen = [None]
    for p in sorted(pending, key=lambda p: p["point"] if p["point"] is not None else float("inf")):
        k = p["kind"]
        cmp = p["cmp"] if p["outcome"] == "ok" else (p["cmp"] if p["outcome"] == "fail" else None)
        if k == "read":
            history.append(r(state, p["inv"], cmp, key=key, client=p["client"]))
        elif k == "write":
            if p["point"] is not None:
                state = p["value"]
                seen.append(state)
            history.append(w(p["value"], p["inv"], cmp, p["outcome"], key=key, client=p["client"]))
        else:
            expect = rng.choice(seen[-3:])
            res = None
            if p["point"] is not None:
                res = state == expect
                if res:
                    state = p["value"]
                    seen.append(state)
            if p["outcome"] == "info" and p["point"] is not None and not res:
                # an applied CAS whose precondition failed changed nothing
                pass
            history.append(cas(expect, p["value"], p["inv"], cmp,
                               result=res if p["outcome"] == "ok" else None,
                               outcome=p["outcome"], key=key, client=p["client"]))
    history.sort(key=lambda o: o["inv"])
    return history


def test_generated_linearizable_histories_pass():
    rng = random.Random(7)
    for _ in range(30):
        h = _linearizable_history(rng, 80)
        assert verdict(h) == OK


def test_long_history_is_fast():
    rng = random.Random(11)
    h = []
    for k in range(10):
        h += _linearizable_history(rng, 300, key=f"key{k}")
    t0 = time.monotonic()
    res = checker.check(h)
    took = time.monotonic() - t0
    assert res.verdict == OK, checker.format_result(res)
    assert took < 20, took


def test_shrink_finds_the_stale_read_in_a_long_history():
    rng = random.Random(3)
    h = _linearizable_history(rng, 200, info_rate=0.0, fail_rate=0.0)
    end = max(o["cmp"] for o in h)
    h += [w("late-1", end / 1e6 + 1, end / 1e6 + 2), w("late-2", end / 1e6 + 3, end / 1e6 + 4),
          r("late-1", end / 1e6 + 5, end / 1e6 + 6)]
    res = checker.check(h)
    assert res.verdict == FAIL
    wit = res.failures[0]["witness"]
    assert verdict(wit) == FAIL
    assert len(wit) <= 4, checker.format_ops(wit)
    assert any(o["f"] == "read" and o["result"] == "late-1" for o in wit)


def test_shrunk_witness_is_itself_not_linearizable():
    rng = random.Random(5)
    for _ in range(10):
        h = _linearizable_history(rng, 60)
        # inject a violation: a late read of the first value ever written
        writes = [o for o in h if o["f"] == "write" and o["outcome"] == "ok"]
        if len(writes) < 3:
            continue
        end = max((o["cmp"] or o["inv"]) for o in h)
        h.append(r(writes[0]["value"], end / 1e6 + 100, end / 1e6 + 101))
        if verdict(h) != FAIL:
            continue  # rare: the injected read happens to be explainable
        wit = checker.shrink(h)
        assert verdict(wit) == FAIL
        assert len(wit) < len(h)


# --------------------------------------------------------------------------
# cross-check against exhaustive search on tiny random histories
# --------------------------------------------------------------------------

def _random_tiny(rng):
    n = rng.randint(1, 6)
    ops = []
    values = []
    for i in range(n):
        inv = rng.randint(0, 10)
        cmp = inv + rng.randint(0, 6)
        kind = rng.choice(["read", "write", "cas"])
        outcome = rng.choice(["ok", "ok", "ok", "info", "fail"])
        if kind == "read":
            res = rng.choice([None] + values + ["never"]) if values else rng.choice([None, "never"])
            ops.append(r(res, inv, cmp, "fail" if outcome == "fail" else "ok"))
        elif kind == "write":
            v = f"v{i}"
            values.append(v)
            ops.append(w(v, inv, cmp if outcome == "ok" else None, outcome))
        else:
            v = f"v{i}"
            exp = rng.choice([None] + values) if values else None
            values.append(v)
            ops.append(cas(exp, v, inv, cmp if outcome == "ok" else None,
                           result=rng.choice([True, False]) if outcome == "ok" else None, outcome=outcome))
    return ops


def test_agrees_with_exhaustive_search():
    rng = random.Random(1234)
    n_fail = n_ok = 0
    for _ in range(1500):
        h = _random_tiny(rng)
        expect = checker.brute_force(h)
        got = verdict(h)
        assert got in (OK, FAIL)
        assert (got == OK) == expect, checker.format_ops(h)
        n_ok += expect
        n_fail += not expect
    assert n_ok > 100 and n_fail > 100  # both kinds were exercised


def test_budget_exhaustion_is_reported_as_unknown():
    rng = random.Random(9)
    h = _linearizable_history(rng, 200, info_rate=0.3)
    assert checker.check_key(h, budget=10)[0] == UNKNOWN


def test_formatting_and_jsonl_roundtrip(tmp_path):
    h = [w("a", 0, 1), w("b", 2, 3), r("a", 4, 5)]
    p = tmp_path / "h.jsonl"
    import json
    p.write_text("".join(json.dumps(o) + "\n" for o in h))
    back = checker.load_jsonl(p)
    res = checker.check(back)
    text = checker.format_result(res)
    assert "not linearizable" in text and "read -> a" in text


# --------------------------------------------------------------------------
# session order of pipelined operations ("after")
# --------------------------------------------------------------------------

def _pipelined(write, read):
    read["after"] = write["id"]
    return [write, read]


def test_pipelined_read_that_overtook_its_write_is_rejected():
    # PUT x=2 and GET x pipelined on one connection at 10 ms; both answers
    # arrive at 20 ms. By the clock the read may precede the write, but it
    # was sent behind it: returning the old value 1 means it overtook it.
    h = [w(1, 0, 5)] + _pipelined(w(2, 10, 20), r(1, 10.1, 20.1))
    assert verdict(h) == FAIL
    # without the session order the same history is linearizable
    del h[2]["after"]
    assert verdict(h) == OK


def test_pipelined_read_seeing_its_write_or_newer_passes():
    h = [w(1, 0, 5)] + _pipelined(w(2, 10, 20), r(2, 10.1, 20.1))
    assert verdict(h) == OK
    # a concurrent write from another client may land between them
    h = [w(1, 0, 5), w(3, 11, 19, client="d")] + _pipelined(w(2, 10, 20), r(3, 10.1, 20.1))
    assert verdict(h) == OK


def test_pipelined_read_after_a_failed_or_unknown_write_is_unconstrained():
    for outcome in ("fail", "info"):
        h = [w(1, 0, 5)] + _pipelined(w(2, 10, 20 if outcome == "fail" else None, outcome=outcome),
                                      r(1, 10.1, 20.1))
        assert verdict(h) == OK, outcome


def test_pipelined_read_after_a_412_cas():
    # the CAS failed its precondition (the register held 1, not 7): the
    # read behind it still sees 1
    h = [w(1, 0, 5)] + _pipelined(cas(7, 2, 10, 20, result=False), r(1, 10.1, 20.1))
    assert verdict(h) == OK
    h = [w(1, 0, 5)] + _pipelined(cas(1, 2, 10, 20), r(1, 10.1, 20.1))
    assert verdict(h) == FAIL
