"""List commands vs redis-server: examples (errors, option parsing order, RESP2 nil vs empty array quirks), then
a hypothesis state machine over a few keys/values. Blocking commands are compared only where they don't block
(the blocked path is unit-tested in tests/unit/test_blocking_handlers.py)."""
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from tests.differential.harness import Differential, MemdbInstance, oracle_server

CASES = {
    "push-pop": [
        ("LPUSH", "l", "a", "b", "c"), ("RPUSH", "l", "d"), ("LRANGE", "l", "0", "-1"), ("LPUSHX", "x", "a"),
        ("RPUSHX", "x", "a"), ("EXISTS", "x"), ("LPUSHX", "l", "z"), ("RPUSHX", "l", "y", "w"), ("LLEN", "l"),
        ("LPOP", "l"), ("RPOP", "l"), ("LPOP", "l", "2"), ("RPOP", "l", "0"), ("LPOP", "l", "-1"),
        ("LPOP", "l", "x"), ("LPOP", "l", "1", "2"), ("RPOP", "l", "10"), ("EXISTS", "l"), ("LPOP", "l"),
        ("LPOP", "l", "0"), ("LPOP", "l", "3"), ("RPOP", "nokey", "1"), ("LLEN", "nokey"),
        ("SET", "s", "v"), ("LPUSH", "s", "a"), ("RPUSHX", "s", "a"), ("LPOP", "s"), ("LPOP", "s", "0"),
        ("LLEN", "s"), ("LRANGE", "s", "0", "1"), ("LRANGE", "s", "x", "1"), ("LINDEX", "s", "x"),
    ],
    "range-index": [
        ("RPUSH", "l", "a", "b", "c", "d", "e"), ("LRANGE", "l", "1", "3"), ("LRANGE", "l", "-3", "-1"),
        ("LRANGE", "l", "-100", "100"), ("LRANGE", "l", "3", "1"), ("LRANGE", "l", "5", "10"),
        ("LRANGE", "l", "0", "-6"), ("LRANGE", "l", "4", "4"), ("LRANGE", "l", "x", "y"),
        ("LRANGE", "l", "0", "9223372036854775808"), ("LRANGE", "nokey", "a", "b"), ("LRANGE", "nokey", "0", "1"),
        ("LINDEX", "l", "0"), ("LINDEX", "l", "-1"), ("LINDEX", "l", "5"), ("LINDEX", "l", "-6"),
        ("LINDEX", "l", "x"), ("LINDEX", "nokey", "x"), ("LINDEX", "l", "01"),
        ("LSET", "l", "0", "A"), ("LSET", "l", "-1", "E"), ("LSET", "l", "5", "x"), ("LSET", "l", "x", "x"),
        ("LSET", "nokey", "0", "x"), ("LSET", "nokey", "x", "x"), ("LRANGE", "l", "0", "-1"),
    ],
    "insert-rem-trim": [
        ("RPUSH", "l", "a", "b", "a", "c", "a"), ("LINSERT", "l", "BEFORE", "a", "x"),
        ("LINSERT", "l", "after", "c", "y"), ("LINSERT", "l", "AFTER", "zz", "y"), ("LINSERT", "l", "MIDDLE", "a", "y"),
        ("LINSERT", "nokey", "BEFORE", "a", "b"), ("LINSERT", "nokey", "foo", "a", "b"), ("LRANGE", "l", "0", "-1"),
        ("LREM", "l", "1", "a"), ("LREM", "l", "-1", "a"), ("LRANGE", "l", "0", "-1"), ("LREM", "l", "0", "y"),
        ("LREM", "l", "x", "a"), ("LREM", "nokey", "x", "a"), ("LREM", "nokey", "1", "a"),
        ("RPUSH", "m", "a", "a", "a", "b", "a"), ("LREM", "m", "-2", "a"), ("LRANGE", "m", "0", "-1"),
        ("LREM", "m", "0", "a"), ("LREM", "m", "0", "b"), ("EXISTS", "m"),
        ("RPUSH", "t", "1", "2", "3", "4", "5", "6"), ("LTRIM", "t", "1", "-2"), ("LRANGE", "t", "0", "-1"),
        ("LTRIM", "t", "-100", "100"), ("LTRIM", "t", "x", "1"), ("LTRIM", "nokey", "0", "1"),
        ("LTRIM", "t", "2", "1"), ("EXISTS", "t"), ("RPUSH", "t", "a", "b"), ("LTRIM", "t", "5", "10"),
        ("EXISTS", "t"), ("SET", "s", "v"), ("LINSERT", "s", "BEFORE", "a", "b"), ("LINSERT", "s", "X", "a", "b"),
        ("LREM", "s", "0", "a"), ("LTRIM", "s", "0", "1"), ("LSET", "s", "0", "a"),
    ],
    "lpos": [
        ("RPUSH", "l", "a", "b", "c", "1", "2", "3", "c", "c"), ("LPOS", "l", "c"), ("LPOS", "l", "c", "RANK", "2"),
        ("LPOS", "l", "c", "RANK", "-1"), ("LPOS", "l", "c", "RANK", "-3"), ("LPOS", "l", "c", "RANK", "4"),
        ("LPOS", "l", "c", "COUNT", "0"), ("LPOS", "l", "c", "COUNT", "2"), ("LPOS", "l", "c", "COUNT", "2", "RANK", "-1"),
        ("LPOS", "l", "c", "MAXLEN", "3"), ("LPOS", "l", "c", "MAXLEN", "2"), ("LPOS", "l", "c", "COUNT", "0", "MAXLEN", "7"),
        ("LPOS", "l", "c", "RANK", "-1", "MAXLEN", "1"), ("LPOS", "l", "x"), ("LPOS", "l", "x", "COUNT", "1"),
        ("LPOS", "l", "c", "RANK", "0"), ("LPOS", "l", "c", "RANK", "x"), ("LPOS", "l", "c", "COUNT", "-1"),
        ("LPOS", "l", "c", "COUNT", "x"), ("LPOS", "l", "c", "MAXLEN", "-1"), ("LPOS", "l", "c", "FOO", "1"),
        ("LPOS", "l", "c", "RANK"), ("LPOS", "nokey", "c"), ("LPOS", "nokey", "c", "COUNT", "0"),
        ("LPOS", "l", "c", "RANK", "-9223372036854775808"), ("LPOS", "l", "c", "RANK", "9223372036854775807"),
        ("SET", "s", "v"), ("LPOS", "s", "c"), ("LPOS", "s", "c", "RANK", "0"),
    ],
    "move": [
        ("RPUSH", "a", "1", "2", "3"), ("LMOVE", "a", "b", "LEFT", "RIGHT"), ("LMOVE", "a", "b", "right", "left"),
        ("LRANGE", "b", "0", "-1"), ("LMOVE", "a", "a", "LEFT", "RIGHT"), ("LRANGE", "a", "0", "-1"),
        ("LMOVE", "a", "b", "UP", "LEFT"), ("LMOVE", "nokey", "b", "LEFT", "LEFT"), ("LMOVE", "nokey", "b", "X", "LEFT"),
        ("RPOPLPUSH", "a", "b"), ("EXISTS", "a"), ("RPOPLPUSH", "a", "b"), ("LRANGE", "b", "0", "-1"),
        ("SET", "s", "v"), ("LMOVE", "b", "s", "LEFT", "LEFT"), ("LRANGE", "b", "0", "-1"), ("RPOPLPUSH", "s", "b"),
        ("RPOPLPUSH", "nokey", "s"), ("RPUSH", "one", "x"), ("RPOPLPUSH", "one", "one"), ("LRANGE", "one", "0", "-1"),
        ("LMOVE", "one", "two", "LEFT", "LEFT"), ("EXISTS", "one"), ("LRANGE", "two", "0", "-1"),
    ],
    "mpop": [
        ("RPUSH", "a", "1", "2", "3"), ("RPUSH", "b", "x"), ("LMPOP", "2", "nokey", "a", "LEFT"),
        ("LMPOP", "2", "nokey", "a", "RIGHT", "COUNT", "5"), ("LMPOP", "2", "a", "b", "LEFT", "COUNT", "1"),
        ("LMPOP", "2", "a", "b", "LEFT"), ("LMPOP", "1", "nokey", "LEFT"), ("LMPOP", "0", "a", "LEFT"),
        ("LMPOP", "x", "a", "LEFT"), ("LMPOP", "3", "a", "LEFT"), ("LMPOP", "1", "a", "MIDDLE"),
        ("LMPOP", "1", "a", "LEFT", "COUNT", "0"), ("LMPOP", "1", "a", "LEFT", "COUNT", "x"),
        ("LMPOP", "1", "a", "LEFT", "COUNT", "1", "COUNT", "1"), ("LMPOP", "1", "a", "LEFT", "FOO"),
        ("LMPOP", "1", "a", "LEFT", "COUNT"), ("SET", "s", "v"), ("RPUSH", "c", "1"), ("LMPOP", "2", "s", "c", "LEFT"),
        ("LMPOP", "2", "c", "s", "LEFT"), ("LMPOP", "2", "nokey", "s", "LEFT"),
    ],
    "blocking-nonblocking-paths": [
        ("RPUSH", "a", "1", "2", "3", "4", "5", "6"), ("BLPOP", "nokey", "a", "0"), ("BRPOP", "a", "nokey", "1.5"),
        ("BLPOP", "a", "-1"), ("BLPOP", "a", "x"), ("BLPOP", "a", "inf"), ("BLPOP", "a", "1e16"),
        ("BLPOP", "a", " 1"), ("BLPOP", "a", "nan"), ("BLMOVE", "a", "b", "LEFT", "LEFT", "0"),
        ("BLMOVE", "a", "b", "LEFT", "LEFT", "-1"), ("BLMOVE", "a", "b", "FOO", "LEFT", "x"),
        ("BRPOPLPUSH", "b", "a", "0"), ("BRPOPLPUSH", "b", "a", "x"), ("BLMPOP", "0", "1", "a", "LEFT"),
        ("BLMPOP", "-1", "1", "a", "LEFT"), ("BLMPOP", "-1", "x", "a", "LEFT"), ("BLMPOP", "0", "2", "n", "a", "RIGHT",
                                                                                   "COUNT", "9"),
        ("SET", "s", "v"), ("BLPOP", "nokey", "s", "0"), ("BLMOVE", "s", "a", "LEFT", "LEFT", "0"),
        ("RPUSH", "c", "1"), ("BLMOVE", "c", "s", "LEFT", "LEFT", "0"), ("BRPOPLPUSH", "c", "s", "0"),
        ("BLMPOP", "0", "2", "s", "c", "LEFT"), ("EXISTS", "a", "b", "c"),
    ],
    "types": [
        ("RPUSH", "l", "a"), ("TYPE", "l"), ("OBJECT", "ENCODING", "l"), ("RPUSH", "l", "x" * 10000),
        ("OBJECT", "ENCODING", "l"), ("HSET", "h", "f", "v"), ("LPUSH", "h", "x"), ("LRANGE", "h", "0", "-1"),
    ],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_examples(diff, case):
    for command in CASES[case]:
        diff.check(*command)


@pytest.mark.parametrize("case", ["push-pop", "lpos", "mpop", "blocking-nonblocking-paths"])
def test_examples_resp3(diff3, case):
    for command in CASES[case]:
        diff3.check(*command)


KEYS = st.sampled_from(["l1", "l2", "s"])
VALUES = st.sampled_from(["a", "b", "1", "", "x" * 70])
INDEXES = st.sampled_from(["0", "1", "-1", "2", "-3", "10", "-10", "x"])
SIDES = st.sampled_from(["LEFT", "RIGHT", "left", "UP"])


class ListMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.diff = Differential(oracle_server().connect(), MemdbInstance(seed=5))
        self.diff.flush()
        self.diff.check("SET", "s", "string")

    def teardown(self):
        self.diff.redis.close()

    @rule(cmd=st.sampled_from(["LPUSH", "RPUSH", "LPUSHX", "RPUSHX"]), key=KEYS,
          values=st.lists(VALUES, min_size=1, max_size=4))
    def push(self, cmd, key, values):
        self.diff.check(cmd, key, *values)

    @rule(cmd=st.sampled_from(["LPOP", "RPOP"]), key=KEYS,
          count=st.sampled_from([None, "0", "1", "2", "5", "-1"]))
    def pop(self, cmd, key, count):
        self.diff.check(cmd, key, *([count] if count is not None else []))

    @rule(key=KEYS, start=INDEXES, stop=INDEXES)
    def lrange(self, key, start, stop):
        self.diff.check("LRANGE", key, start, stop)

    @rule(key=KEYS, start=INDEXES, stop=INDEXES)
    def ltrim(self, key, start, stop):
        self.diff.check("LTRIM", key, start, stop)

    @rule(key=KEYS, index=INDEXES, value=VALUES)
    def index_set(self, key, index, value):
        self.diff.check("LINDEX", key, index)
        self.diff.check("LSET", key, index, value)

    @rule(key=KEYS, where=st.sampled_from(["BEFORE", "AFTER", "x"]), pivot=VALUES, value=VALUES)
    def linsert(self, key, where, pivot, value):
        self.diff.check("LINSERT", key, where, pivot, value)

    @rule(key=KEYS, count=st.sampled_from(["0", "1", "-1", "2", "-2"]), value=VALUES)
    def lrem(self, key, count, value):
        self.diff.check("LREM", key, count, value)

    @rule(key=KEYS, value=VALUES,
          options=st.lists(st.tuples(st.sampled_from(["RANK", "COUNT", "MAXLEN"]),
                                     st.sampled_from(["0", "1", "-1", "2", "-2"])), max_size=3))
    def lpos(self, key, value, options):
        self.diff.check("LPOS", key, value, *[part for pair in options for part in pair])

    @rule(src=KEYS, dst=KEYS, a=SIDES, b=SIDES)
    def lmove(self, src, dst, a, b):
        self.diff.check("LMOVE", src, dst, a, b)
        self.diff.check("RPOPLPUSH", dst, src)

    @rule(keys=st.lists(KEYS, min_size=1, max_size=3), side=SIDES, count=st.sampled_from([None, "1", "3"]))
    def lmpop(self, keys, side, count):
        self.diff.check("LMPOP", len(keys), *keys, side, *(["COUNT", count] if count else []))

    @rule(keys=st.lists(KEYS, min_size=1, max_size=3), cmd=st.sampled_from(["BLPOP", "BRPOP"]))
    def blocking_pop(self, keys, cmd):
        # only when something is there to pop (or a WRONGTYPE is met first): Redis would block otherwise
        if any(self.diff.memdb.raw_call("EXISTS", key) for key in keys):
            self.diff.check(cmd, *keys, "0")

    @rule(key=KEYS)
    def meta(self, key):
        self.diff.check("LLEN", key)
        self.diff.check("LRANGE", key, "0", "-1")
        self.diff.check("TYPE", key)


def test_list_machine(redis_server):
    run_state_machine_as_test(ListMachine)
