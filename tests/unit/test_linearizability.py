"""The linearizability checker accepts what it must and rejects what it must (tests/linearizability.py)."""
import itertools
import math
import random
import time

import pytest

from tests.linearizability import COUNTER, REGISTER, UNKNOWN, Op, Outcome, check, check_key, uncertain


def s(key, value, call, ret, client=0):
    return Op(key, "set", value, "OK", call, ret, client)


def g(key, output, call, ret, client=0):
    return Op(key, "get", None, output, call, ret, client)


def inc(output, call, ret, client=0, key="n"):
    return Op(key, "incr", None, output, call, ret, client)


def register_ok(ops):
    return check(ops, REGISTER).ok


def counter_ok(ops):
    return check(ops, COUNTER).ok


# -- register: accepted ---------------------------------------------------------------------------------------
def test_empty_and_sequential_register_histories_are_linearizable():
    assert register_ok([])
    assert register_ok([g("k", None, 0, 1), s("k", "a", 2, 3), g("k", "a", 4, 5), s("k", "b", 6, 7),
                        g("k", "b", 8, 9)])


def test_concurrent_read_may_see_old_or_new_value():
    # The read overlaps the write: both answers are linearizable.
    assert register_ok([s("k", "a", 0, 1), s("k", "b", 2, 6), g("k", "a", 3, 4, client=1)])
    assert register_ok([s("k", "a", 0, 1), s("k", "b", 2, 6), g("k", "b", 3, 4, client=1)])


def test_two_concurrent_reads_may_straddle_the_write_point():
    # r1 sees the new value, r2 (which started later, but overlaps the write) sees... also new: fine.
    assert register_ok([s("k", "a", 0, 1), s("k", "b", 2, 10), g("k", "b", 3, 4, 1), g("k", "b", 5, 6, 2)])
    # r1 sees the old value after r2 saw the new one, while both overlap the write and each other: fine.
    assert register_ok([s("k", "a", 0, 1), s("k", "b", 2, 10), g("k", "b", 3, 6, 1), g("k", "a", 4, 7, 2)])


def test_keys_are_independent():
    assert register_ok([s("x", "a", 0, 1), s("y", "b", 0, 1), g("x", "a", 2, 3), g("y", "b", 2, 3)])


# -- register: rejected ---------------------------------------------------------------------------------------
def test_stale_read_after_a_later_acknowledged_write_is_rejected():
    result = check([s("k", "a", 0, 1), s("k", "b", 2, 3), g("k", "a", 4, 5, client=1)], REGISTER)
    assert not result.ok
    assert [k.key for k in result.violations] == ["k"]
    assert "GET k" in result.violations[0].detail


def test_new_then_old_value_by_non_overlapping_reads_is_rejected():
    # The write is still running, but once a read has returned "b", a later read may not return "a".
    assert not register_ok([s("k", "a", 0, 1), s("k", "b", 2, 10), g("k", "b", 3, 4, 1), g("k", "a", 5, 6, 2)])


def test_read_of_a_never_written_value_is_rejected():
    assert not register_ok([s("k", "a", 0, 1), g("k", "zzz", 2, 3)])
    assert not register_ok([g("k", "a", 0, 1)])


def test_lost_write_is_rejected():
    # Acknowledged SET, then the final read finds the value from before it.
    assert not register_ok([s("k", "a", 0, 1), s("k", "b", 2, 3), g("k", "a", 10, 11)])
    assert not register_ok([s("k", "a", 0, 1), g("k", None, 10, 11)])


def test_one_bad_key_is_reported_among_good_ones():
    ops = [s("good", "a", 0, 1), g("good", "a", 2, 3), s("bad", "a", 0, 1), s("bad", "b", 2, 3),
           g("bad", "a", 4, 5)]
    result = check(ops, REGISTER)
    assert [k.key for k in result.violations] == ["bad"]
    assert "1 violations" in result.summary()


# -- register: uncertain writes ---------------------------------------------------------------------------------
def test_uncertain_write_may_apply_late_or_never():
    base = [s("k", "a", 0, 1), uncertain("k", "set", "b", call=2)]
    assert register_ok(base + [g("k", "a", 3, 4)])                         # not applied (yet)
    assert register_ok(base + [g("k", "b", 3, 4)])                         # applied
    assert register_ok(base + [g("k", "a", 3, 4), g("k", "b", 100, 101)])  # applied much later
    assert register_ok(base + [g("k", "a", 100, 101)])                     # never applied


def test_uncertain_write_cannot_apply_before_its_call():
    assert not register_ok([s("k", "a", 0, 1), g("k", "b", 2, 3), uncertain("k", "set", "b", call=5)])


def test_uncertain_write_cannot_flip_back_once_seen():
    ops = [s("k", "a", 0, 1), uncertain("k", "set", "b", call=2), g("k", "b", 3, 4), g("k", "a", 5, 6)]
    assert not register_ok(ops)


def test_uncertain_write_does_not_excuse_losing_an_acknowledged_one():
    # "c" was acknowledged after the uncertain "b" was seen, so a final read of "b" means "c" was lost.
    ops = [s("k", "a", 0, 1), uncertain("k", "set", "b", call=2), g("k", "b", 3, 4), s("k", "c", 5, 6),
           g("k", "b", 7, 8)]
    assert not register_ok(ops)
    # ...but an uncertain write of "b" that may land after "c" makes the same reads fine.
    ops = [s("k", "a", 0, 1), s("k", "c", 5, 6), uncertain("k", "set", "b", call=2), g("k", "b", 7, 8)]
    assert register_ok(ops)


def test_uncertain_reads_are_ignored():
    assert register_ok([s("k", "a", 0, 1), uncertain("k", "get", call=2), g("k", "a", 3, 4)])


# -- counter ----------------------------------------------------------------------------------------------------
def test_counter_sequential_and_concurrent_increments():
    assert counter_ok([inc(1, 0, 1), inc(2, 2, 3), g("n", 2, 4, 5)])
    # Concurrent INCRs may return in either order.
    assert counter_ok([inc(2, 0, 5, 1), inc(1, 1, 4, 2), g("n", 2, 6, 7)])
    assert counter_ok([g("n", None, 0, 1), inc(1, 2, 3)])  # a missing counter reads as 0


def test_lost_increment_is_rejected():
    assert not counter_ok([inc(1, 0, 1), inc(2, 2, 3), g("n", 1, 4, 5)])
    assert not counter_ok([inc(1, 0, 1), inc(2, 2, 3), inc(2, 4, 5)])


def test_double_applied_increment_is_rejected():
    assert not counter_ok([inc(1, 0, 1), g("n", 2, 2, 3)])
    assert not counter_ok([inc(1, 0, 1), inc(3, 2, 3)])


def test_stale_counter_read_is_rejected():
    assert not counter_ok([inc(1, 0, 1), inc(2, 2, 3), g("n", 2, 4, 5, 1), g("n", 1, 6, 7, 2)])


def test_uncertain_increments_count_zero_or_one_each():
    base = [inc(1, 0, 1), uncertain("n", "incr", call=2), uncertain("n", "incr", call=2.5)]
    assert counter_ok(base + [g("n", 1, 3, 4)])
    assert counter_ok(base + [g("n", 2, 3, 4)])
    assert counter_ok(base + [g("n", 3, 3, 4)])
    assert counter_ok(base + [inc(3, 3, 4)])          # both uncertain ones applied before this one
    assert not counter_ok(base + [g("n", 4, 3, 4)])   # only two could have been applied
    assert not counter_ok(base + [g("n", 0, 3, 4)])   # the acknowledged one cannot vanish
    assert not counter_ok(base + [g("n", 3, 3, 4), g("n", 2, 5, 6)])   # and applied ones cannot un-apply


def test_uncertain_increment_cannot_apply_before_its_call():
    assert not counter_ok([inc(1, 0, 1), g("n", 2, 2, 3), uncertain("n", "incr", call=5)])


# -- scale and bounds -------------------------------------------------------------------------------------------
def _random_linearizable_counter(rng, n_ops, clients=6, p_uncertain=0.02):
    """Simulate clients on a true atomic counter: each op takes effect at a random instant inside its interval."""
    ops, value, t, events = [], 0, 0.0, []
    for k in range(n_ops):
        c = k % clients
        call = t + rng.random()
        effect = call + rng.random() * 3
        ret = effect + rng.random() * 3
        kind = "incr" if rng.random() < 0.6 else "get"
        events.append((effect, call, ret, c, kind, rng.random() < p_uncertain))
        t += 0.5
    for effect, call, ret, c, kind, unsure in sorted(events):
        if kind == "incr":
            value += 1
            ops.append(uncertain("n", "incr", call=call, client=c) if unsure else inc(value, call, ret, c))
        else:
            ops.append(g("n", value, call, ret, c))
    return ops


def test_a_few_thousand_ops_check_quickly():
    rng = random.Random(7)
    ops = _random_linearizable_counter(rng, 3000)
    t0 = time.monotonic()
    result = check(ops, COUNTER)
    elapsed = time.monotonic() - t0
    assert result.ok, result.summary()
    assert elapsed < 10, f"took {elapsed:.1f}s"
    # Break it: one acknowledged INCR claims a value one too high.
    i = next(i for i, op in enumerate(ops) if op.kind == "incr" and not op.uncertain and op.call > 500)
    bad = ops[:i] + [Op("n", "incr", None, ops[i].output + 1, ops[i].call, ops[i].ret, ops[i].client)] + ops[i + 1:]
    assert not check(bad, COUNTER).ok


def test_register_history_of_thousands_with_uncertain_writes():
    rng = random.Random(3)
    ops, value, events = [], None, []
    for k in range(3000):
        call = k * 0.3 + rng.random()
        effect = call + rng.random() * 2
        ret = effect + rng.random() * 2
        events.append((effect, call, ret, k % 5, "set" if k % 3 == 0 else "get", f"v{k}", rng.random() < 0.03))
    for effect, call, ret, c, kind, v, unsure in sorted(events):
        if kind == "set":
            value = v
            ops.append(uncertain("k", "set", v, call, c) if unsure else s("k", v, call, ret, c))
        else:
            ops.append(g("k", value, call, ret, c))
    t0 = time.monotonic()
    assert register_ok(ops)
    assert time.monotonic() - t0 < 10


def test_search_budget_gives_too_large_not_a_hang():
    # Many mutually concurrent writes and a read of a never-written value: refuting it is exponential without
    # the cache, and the budget stops it early either way.
    ops = [s("k", f"v{i}", 0, 100) for i in range(40)] + [g("k", "nope", 0, 100)]
    result = check_key("k", ops, REGISTER, max_steps=1000)
    assert result.outcome in (Outcome.TOO_LARGE, Outcome.VIOLATION)
    ops = [s("k", f"v{i}", 0, 100) for i in range(18)] + [g("k", f"v{i}", 0, 100) for i in range(18)]
    result = check_key("k", ops, REGISTER, max_steps=200)
    assert result.outcome is Outcome.TOO_LARGE
    assert "budget" in result.detail


def _brute_force(ops, model):
    """Every order of every subset that keeps all certain ops: the definition, for tiny histories."""
    certain = [op for op in ops if not op.uncertain]
    unsure = [op for op in ops if op.uncertain]
    for mask in range(1 << len(unsure)):
        chosen = certain + [op for i, op in enumerate(unsure) if mask >> i & 1]
        for order in itertools.permutations(chosen):
            if any(b.ret < a.call for i, a in enumerate(order) for b in order[i + 1:]):
                continue     # b returned before a was called, yet a comes first
            state = model.init()
            for op in order:
                state = model.step(state, op)
                if state is None:
                    break
            else:
                return True
    return False


@pytest.mark.parametrize("model", [REGISTER, COUNTER], ids=lambda m: m.name)
def test_agrees_with_brute_force_on_random_small_histories(model):
    rng = random.Random(11)
    verdicts = {True: 0, False: 0}
    for _ in range(1500):
        ops = []
        for c in range(rng.randint(1, 6)):
            call = rng.randint(0, 8)
            ret = call + rng.randint(0, 4)
            kind = rng.choice(["set", "get"] if model is REGISTER else ["incr", "get"])
            if kind == "get":
                out = rng.choice([None, "a", "b", "c"]) if model is REGISTER else rng.randint(0, 3)
                ops.append(g("k", out, call, ret, c))
            elif rng.random() < 0.25:
                ops.append(uncertain("k", kind, rng.choice("abc") if kind == "set" else None, call, c))
            elif kind == "set":
                ops.append(s("k", rng.choice("abc"), call, ret, c))
            else:
                ops.append(inc(rng.randint(1, 3), call, ret, c, key="k"))
        expected = _brute_force(ops, model)
        assert check(ops, model).ok == expected, "\n".join(map(str, ops))
        verdicts[expected] += 1
    assert min(verdicts.values()) > 100, verdicts     # both answers were exercised


def test_op_validation():
    with pytest.raises(AssertionError):
        check([Op("k", "get", None, None, 5, 4)], REGISTER)
    assert uncertain("k", "set", "a", call=1).ret == math.inf
    assert uncertain("k", "set", "a", call=1).output is UNKNOWN
