"""SORT / SORT_RO vs redis-server: options, patterns, STORE, error texts, then a hypothesis state machine.

Where Redis's answer depends on its hash-table order (a set with BY nosort; BY + ALPHA ties on a set or sorted
set), replies are compared as multisets, or by length when LIMIT picks a window of that order."""
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from tests.differential.harness import Differential, MemdbInstance, oracle_server, sort_list

CASES = {
    "lists": [
        ("RPUSH", "l", "3", "1", "2", "10", "-1.5", "1e2"), ("SORT", "l"), ("SORT", "l", "DESC"),
        ("SORT", "l", "ALPHA"), ("SORT", "l", "ALPHA", "DESC"), ("SORT", "l", "LIMIT", "1", "2"),
        ("SORT", "l", "LIMIT", "-5", "2"), ("SORT", "l", "LIMIT", "2", "-1"), ("SORT", "l", "LIMIT", "10", "3"),
        ("SORT", "l", "LIMIT", "0", "0"), ("SORT", "l", "LIMIT", "5", "100"), ("SORT", "l", "LIMIT", "x", "1"),
        ("SORT", "l", "LIMIT", "1"), ("SORT", "l", "BY", "nosort"), ("SORT", "l", "BY", "nosort", "DESC"),
        ("SORT", "l", "BY", "nosort", "LIMIT", "1", "3"), ("SORT", "l", "BY", "nosort", "DESC", "LIMIT", "1", "3"),
        ("SORT", "l", "BY", "nosort", "LIMIT", "9", "3"), ("SORT_RO", "l", "DESC", "LIMIT", "0", "2"),
        ("SORT", "l", "FOO"), ("SORT_RO", "l", "STORE", "d"), ("SORT", "l", "STORE"), ("SORT", "l", "BY"),
        ("SORT", "l", "GET"), ("RPUSH", "bad", "1", "x"), ("SORT", "bad"), ("SORT", "bad", "ALPHA"),
        ("SORT", "bad", "BY", "nosort"), ("SORT", "bad", "STORE", "d"), ("EXISTS", "d"), ("SORT", "nokey"),
        ("SORT", "nokey", "STORE", "d"), ("SET", "s", "x"), ("SORT", "s"), ("SORT", "s", "FOO"),
        ("HSET", "h", "a", "1"), ("SORT", "h", "LIMIT", "0", "1"), ("SORT", "h", "LIMIT", "x", "1"),
        ("RPUSH", "w", " 1", "", "0x10", "inf", "-inf", "1e400"), ("SORT", "w"), ("RPUSH", "w2", " 1", "", "0x10", "inf"),
        ("SORT", "w2"), ("SORT", "w2", "DESC"), ("RPUSH", "w3", "nan"), ("SORT", "w3"), ("RPUSH", "w4", "1e-400"),
        ("SORT", "w4"), ("RPUSH", "w7", "1e-310", "0x1p-1070"), ("SORT", "w7"), ("RPUSH", "w8", "0x1p-1070", "+5", ".5"),
        ("SORT", "w8"), ("RPUSH", "w5", " "), ("SORT", "w5"), ("RPUSH", "w6", "1 "), ("SORT", "w6"),
    ],
    "patterns": [
        ("RPUSH", "l", "a", "b", "c", "d"), ("MSET", "w_a", "3", "w_b", "1", "w_c", "2", "o_a", "A", "o_b", "B"),
        ("HSET", "h_a", "f", "9", "g", "x"), ("HSET", "h_b", "f", "7"), ("HSET", "h_c", "f", "8"),
        ("SORT", "l", "BY", "w_*"), ("SORT", "l", "BY", "w_*", "DESC"), ("SORT", "l", "BY", "w_*", "GET", "o_*"),
        ("SORT", "l", "BY", "w_*", "GET", "#", "GET", "o_*", "GET", "h_*->f"), ("SORT", "l", "BY", "h_*->f"),
        ("SORT", "l", "BY", "h_*->g"), ("SORT", "l", "BY", "h_*->", "ALPHA"), ("SORT", "l", "BY", "o_*", "ALPHA"),
        ("SORT", "l", "BY", "o_*", "ALPHA", "DESC"), ("SORT", "l", "BY", "o_*"), ("SORT", "l", "GET", "nostar"),
        ("SORT", "l", "GET", "w_*->f"), ("SORT", "l", "GET", "h_*"), ("SORT", "l", "BY", "w_*", "LIMIT", "1", "2"),
        ("SORT", "l", "BY", "w_*", "GET", "#", "STORE", "dst"), ("LRANGE", "dst", "0", "-1"),
        ("SORT", "l", "BY", "w_*", "GET", "o_*", "STORE", "dst"), ("LRANGE", "dst", "0", "-1"),
        ("SORT", "l", "BY", "*_w"), ("SORT", "l", "BY", "w_**"), ("SORT", "l", "BY", "h_*->f->g"),
        ("SET", "dst", "x", "EX", "100"), ("SORT", "l", "STORE", "dst"), ("TTL", "dst"), ("TYPE", "dst"),
        ("SORT", "l", "LIMIT", "9", "9", "STORE", "dst"), ("EXISTS", "dst"), ("SORT", "l", "STORE", "l", "DESC"),
        ("LRANGE", "l", "0", "-1"),
    ],
    "sets-zsets": [
        ("SADD", "s", "5", "3", "9", "1"), ("SORT", "s"), ("SORT", "s", "DESC", "LIMIT", "1", "2"),
        ("SADD", "t", "b", "a", "c"), ("SORT", "t", "ALPHA"), ("SORT", "t"), ("SORT", "t", "BY", "nosort", "STORE", "d"),
        ("LRANGE", "d", "0", "-1"), ("SORT", "s", "BY", "nosort", "STORE", "d", "DESC"), ("LRANGE", "d", "0", "-1"),
        ("ZADD", "z", "1", "c", "2", "b", "3", "a"), ("SORT", "z", "ALPHA"), ("SORT", "z", "BY", "nosort"),
        ("SORT", "z", "BY", "nosort", "DESC"), ("SORT", "z", "BY", "nosort", "LIMIT", "1", "1"),
        ("SORT", "z", "BY", "nosort", "DESC", "LIMIT", "1", "5"), ("SORT", "z"), ("SORT_RO", "z", "ALPHA", "DESC"),
        ("MSET", "w_a", "2", "w_b", "2", "w_c", "1"), ("SORT", "z", "BY", "w_*"), ("SORT", "z", "BY", "w_*", "DESC"),
        ("SORT", "z", "BY", "w_*", "STORE", "d"), ("LRANGE", "d", "0", "-1"), ("OBJECT", "ENCODING", "z"),
    ],
    # BY + ALPHA ties (equal or missing weights) with a LIMIT window: Redis's pqsort is not stable, so which tied
    # element lands in the window follows its pivots (lists of < 7, 7, 8..40 and > 40 elements take different
    # paths). Found by test_sort_machine: the first two commands.
    "alpha-ties": [
        ("RPUSH", "l", "1", "1", "1", "2", "1", "1", "1"), ("SORT", "l", "BY", "w_*", "LIMIT", "0", "1", "ALPHA"),
        ("SORT", "l", "BY", "w_*", "ALPHA", "DESC", "LIMIT", "4", "3"), ("SORT", "l", "BY", "w_*", "ALPHA"),
        ("RPUSH", "m", "a", "b", "c", "d", "e", "f", "g", "h"),
        ("MSET", "w_a", "1", "w_b", "1", "w_c", "1", "w_d", "1", "w_e", "0", "w_f", "1", "w_g", "1"),
        ("SORT", "m", "BY", "w_*", "ALPHA", "LIMIT", "0", "3"), ("SORT", "m", "BY", "w_*", "ALPHA", "LIMIT", "2", "3"),
        ("SORT", "m", "BY", "w_*", "ALPHA", "DESC", "LIMIT", "1", "4"),
        ("SORT", "m", "BY", "w_*", "ALPHA", "LIMIT", "1", "-1"),
        ("SORT", "m", "BY", "w_*", "ALPHA", "LIMIT", "0", "8"), ("SORT", "m", "BY", "w_*", "ALPHA", "DESC"),
        ("SORT", "m", "BY", "w_*", "ALPHA", "LIMIT", "0", "2", "GET", "#", "GET", "w_*", "STORE", "d"),
        ("LRANGE", "d", "0", "-1"), ("RPUSH", "x", "x", "y", "z", "x", "y"),
        ("SORT", "x", "BY", "w_*", "ALPHA", "LIMIT", "1", "2"),
        ("RPUSH", "big", *[f"e{i % 45}" for i in range(60)]),       # e40..e44 have no weight
        ("MSET", *[part for i in range(40) for part in (f"w_e{i}", str(i % 3))]),
    ] + [("SORT", "big", "BY", "w_*", "ALPHA", *order, "LIMIT", start, count)
         for order in ((), ("DESC",)) for start, count in (("0", "5"), ("20", "7"), ("55", "10"), ("1", "-1"))],
}


def _set_order_sensitive(command):
    """Redis's order depends on its hash table: a set with BY nosort (no STORE)."""
    upper = [str(c).upper() for c in command]
    return command[1] in ("s", "t") and "BY" in upper and "STORE" not in upper


def reset_errno(redis_conn):
    """Redis 7.0's SORT reads a stale errno (see memdb/commands/sort.py): clear it. string2ld (INCRBYFLOAT) sets
    errno = 0 before its strtold."""
    redis_conn.call("INCRBYFLOAT", "__errno_reset", "0")
    redis_conn.call("DEL", "__errno_reset")


@pytest.mark.parametrize("case", sorted(CASES))
def test_examples(diff, case):
    for command in CASES[case]:
        if command[0].upper().startswith("SORT"):
            reset_errno(diff.redis)
        diff.check(*command, normalize=sort_list if _set_order_sensitive(command) else None)


def test_large_list_and_set(diff):
    reset_errno(diff.redis)
    values = [str((i * 7919) % 1000) for i in range(600)]
    diff.check("RPUSH", "l", *values)
    diff.check("SADD", "s", *values)
    for key in ("l", "s"):
        diff.check("SORT", key)
        diff.check("SORT", key, "DESC", "LIMIT", "10", "20")
        diff.check("SORT", key, "ALPHA", "LIMIT", "100", "5")
        diff.check("SORT", key, "STORE", "d")
        diff.check("LRANGE", "d", "0", "-1")


KEYS = st.sampled_from(["l", "s", "z", "str"])
ELEMENTS = st.sampled_from(["1", "2", "10", "-3", "a", "b", "2.5", ""])
WEIGHT_PATTERNS = st.sampled_from(["w_*", "h_*->f", "nosort", "missing_*"])
GET_PATTERNS = st.sampled_from(["#", "w_*", "h_*->f", "h_*->g"])


class SortMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.diff = Differential(oracle_server().connect(), MemdbInstance(seed=9))
        self.diff.flush()
        self.diff.check("SET", "str", "x")

    def teardown(self):
        self.diff.redis.close()

    @rule(key=KEYS, elements=st.lists(ELEMENTS, min_size=1, max_size=4))
    def add(self, key, elements):
        if key == "l":
            self.diff.check("RPUSH", key, *elements)
        elif key == "s":
            self.diff.check("SADD", key, *elements)
        elif key == "z":
            self.diff.check("ZADD", key, *[part for i, e in enumerate(elements) for part in (str(i % 2), e)])

    @rule(element=ELEMENTS, weight=st.sampled_from(["1", "2", "x", "-1", "1.5"]), as_hash=st.booleans())
    def weight(self, element, weight, as_hash):
        if as_hash:
            self.diff.check("HSET", f"h_{element}", "f", weight, "g", weight + "g")
        else:
            self.diff.check("SET", f"w_{element}", weight)

    @rule(key=KEYS, desc=st.booleans(), alpha=st.booleans(), by=st.none() | WEIGHT_PATTERNS,
          limit=st.none() | st.tuples(st.sampled_from(["0", "1", "-1", "3"]), st.sampled_from(["1", "2", "-1", "0"])),
          gets=st.lists(GET_PATTERNS, max_size=2), store=st.booleans(), ro=st.booleans())
    def sort(self, key, desc, alpha, by, limit, gets, store, ro):
        command = ["SORT_RO" if ro and not store else "SORT", key]
        if by:
            command += ["BY", by]
        if limit:
            command += ["LIMIT", *limit]
        for pattern in gets:
            command += ["GET", pattern]
        if desc:
            command.append("DESC")
        if alpha:
            command.append("ALPHA")
        if store:
            command += ["STORE", "dst"]
        reset_errno(self.diff.redis)
        # Hash-table order shows in Redis's reply: a set BY nosort (without STORE, which forces ALPHA), and ties
        # of BY + ALPHA (missing weights) on sets and sorted sets, which Redis loads in hash order
        unordered = key in ("s", "z") and by is not None and (
            (by == "nosort" and key == "s" and not store) or (alpha and by != "nosort"))
        if store:
            self.diff.check(*command)
            command = ["LRANGE", "dst", "0", "-1"]
        if unordered and limit:
            expected, actual = self.diff.both(*command)
            assert expected.kind == actual.kind
            assert type(expected.value) is type(actual.value)
            if isinstance(expected.value, list):
                assert len(expected.value) == len(actual.value)
            else:
                assert expected.value == actual.value
            if store:
                self.diff.check("DEL", "dst")
            return
        self.diff.check(*command, normalize=sort_list if unordered else None)
        if store and unordered:
            self.diff.check("DEL", "dst")     # its order is Redis's hash order: keep later checks exact

    @rule(key=KEYS)
    def delete(self, key):
        if key != "str":
            self.diff.check("DEL", key)


def test_sort_machine(redis_server):
    run_state_machine_as_test(SortMachine)
