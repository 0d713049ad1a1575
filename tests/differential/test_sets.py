"""Set commands vs redis-server: examples (errors, encodings, random-reply shapes, SSCAN), then a hypothesis state
machine over a few keys/members. Set replies are compared unordered; random picks through invariants."""
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from tests.differential.harness import Differential, Error, MemdbInstance, oracle_server, sort_list, unordered

UNORDERED = {"SMEMBERS", "SINTER", "SUNION", "SDIFF", "SPOP"}

CASES = {
    "basics": [
        ("SADD", "s", "a", "b", "a"), ("SADD", "s", "c"), ("SADD", "s", "a"), ("SCARD", "s"), ("SCARD", "x"),
        ("SISMEMBER", "s", "a"), ("SISMEMBER", "s", "z"), ("SISMEMBER", "x", "a"), ("SMISMEMBER", "s", "a", "z", "b"),
        ("SMISMEMBER", "x", "a"), ("SMEMBERS", "s"), ("SMEMBERS", "x"), ("SREM", "s", "a", "z", "a"),
        ("SREM", "x", "a"), ("SREM", "s", "b", "c"), ("EXISTS", "s"), ("SET", "str", "v"), ("SADD", "str", "a"),
        ("SREM", "str", "a"), ("SCARD", "str"), ("SISMEMBER", "str", "a"), ("SMISMEMBER", "str", "a"),
        ("SMEMBERS", "str"), ("SPOP", "str"), ("SRANDMEMBER", "str"), ("SSCAN", "str", "0"),
    ],
    "move": [
        ("SADD", "a", "1", "2"), ("SADD", "b", "x"), ("SMOVE", "a", "b", "1"), ("SMOVE", "a", "b", "9"),
        ("SMOVE", "a", "a", "2"), ("SMOVE", "a", "a", "9"), ("SMOVE", "nokey", "b", "1"), ("SMOVE", "a", "c", "2"),
        ("EXISTS", "a"), ("SMEMBERS", "c"), ("SET", "str", "v"), ("SMOVE", "str", "b", "x"),
        ("SMOVE", "b", "str", "x"), ("SMOVE", "nokey", "str", "x"), ("SMOVE", "b", "str", "nomember"),
        ("OBJECT", "ENCODING", "c"), ("SMOVE", "b", "c", "x"), ("OBJECT", "ENCODING", "c"),
    ],
    "algebra": [
        ("SADD", "a", "1", "2", "3", "x"), ("SADD", "b", "2", "3", "4"), ("SADD", "c", "3", "x", "y"),
        ("SINTER", "a", "b"), ("SINTER", "a", "b", "c"), ("SINTER", "a", "nokey"), ("SUNION", "a", "b", "nokey"),
        ("SDIFF", "a", "b"), ("SDIFF", "a", "b", "c"), ("SDIFF", "nokey", "a"), ("SDIFF", "a", "a"),
        ("SINTERSTORE", "d", "a", "b"), ("SMEMBERS", "d"), ("OBJECT", "ENCODING", "d"),
        ("SUNIONSTORE", "d", "a", "c"), ("OBJECT", "ENCODING", "d"), ("SDIFFSTORE", "d", "a", "a"), ("EXISTS", "d"),
        ("SET", "d", "v"), ("SINTERSTORE", "d", "a", "nokey"), ("EXISTS", "d"), ("SUNIONSTORE", "a", "a", "b"),
        ("SMEMBERS", "a"), ("SET", "str", "v"), ("SINTER", "a", "str"), ("SINTER", "nokey", "str"),
        ("SUNION", "str", "a"), ("SDIFF", "nokey", "str"), ("SDIFFSTORE", "d", "a", "str"),
        ("SINTERSTORE", "str", "a", "b"), ("TYPE", "str"),
        ("SINTERCARD", "2", "a", "b"), ("SINTERCARD", "2", "a", "b", "LIMIT", "1"),
        ("SINTERCARD", "2", "a", "b", "LIMIT", "0"), ("SINTERCARD", "1", "a", "LIMIT", "-1"),
        ("SINTERCARD", "1", "a", "LIMIT", "x"), ("SINTERCARD", "0", "a"), ("SINTERCARD", "x", "a"),
        ("SINTERCARD", "3", "a", "b"), ("SINTERCARD", "1", "a", "FOO"), ("SINTERCARD", "1", "a", "LIMIT"),
        ("SINTERCARD", "2", "a", "nokey"), ("SINTERCARD", "2", "str", "a"), ("SINTERCARD", "2", "nokey", "str"),
    ],
    "random-errors": [
        ("SADD", "s", "a", "b", "c"), ("SPOP", "s", "x"), ("SPOP", "s", "-1"), ("SPOP", "s", "1", "2"),
        ("SPOP", "s", "0"), ("SPOP", "nokey", "0"), ("SPOP", "nokey", "2"), ("SPOP", "nokey"),
        ("SRANDMEMBER", "s", "x"), ("SRANDMEMBER", "s", "1", "2"), ("SRANDMEMBER", "s", "0"),
        ("SRANDMEMBER", "s", "-9223372036854775808"), ("SRANDMEMBER", "nokey"), ("SRANDMEMBER", "nokey", "3"),
        ("SRANDMEMBER", "nokey", "-3"), ("SPOP", "s", "3"), ("EXISTS", "s"), ("SADD", "t", "1"),
        ("SRANDMEMBER", "t", "5"), ("SRANDMEMBER", "t", "-3"), ("SPOP", "t", "5"), ("EXISTS", "t"),
    ],
    "encoding": [
        ("SADD", "i", "1", "2", "-3"), ("OBJECT", "ENCODING", "i"), ("SADD", "i", "01"), ("OBJECT", "ENCODING", "i"),
        ("SREM", "i", "01"), ("OBJECT", "ENCODING", "i"), ("SADD", "j", "9223372036854775807"),
        ("OBJECT", "ENCODING", "j"), ("SADD", "j", "9223372036854775808"), ("OBJECT", "ENCODING", "j"),
        ("SADD", "k", "a"), ("OBJECT", "ENCODING", "k"), ("SREM", "k", "a"), ("SADD", "k", "1"),
        ("OBJECT", "ENCODING", "k"), ("SADD", "big", *[str(i) for i in range(512)]), ("OBJECT", "ENCODING", "big"),
        ("SADD", "big", "512"), ("OBJECT", "ENCODING", "big"), ("SREM", "big", "1", "2"),
        ("OBJECT", "ENCODING", "big"), ("SSCAN", "i", "0"), ("SADD", "n", "5", "-1", "3", "10"), ("SSCAN", "n", "0"),
        ("SSCAN", "n", "123"), ("SSCAN", "n", "0", "MATCH", "-*"), ("SSCAN", "n", "0", "MATCH", "1*", "COUNT", "1"),
        ("SSCAN", "i", "x"), ("SSCAN", "nokey", "0", "FOO"), ("SSCAN", "i", "0", "COUNT", "0"),
        ("SSCAN", "i", "0", "TYPE", "set"), ("SSCAN", "i", "0", "MATCH"),
    ],
}


def _normalizer(command):
    if command[0] == "SSCAN":
        return lambda v: [v[0], sort_list(v[1])] if isinstance(v, list) else v
    return unordered if command[0] in UNORDERED else None


@pytest.mark.parametrize("case", sorted(CASES))
def test_examples(diff, case):
    for command in CASES[case]:
        diff.check(*command, normalize=_normalizer(command))


@pytest.mark.parametrize("case", ["basics", "algebra", "random-errors"])
def test_examples_resp3(diff3, case):
    for command in CASES[case]:
        diff3.check(*command, normalize=_normalizer(command))


def test_random_reply_shapes(diff, diff3):
    for d in (diff, diff3):
        d.flush()
        d.check("SADD", "s", "a", "b", "c", "1")
        members = {b"a", b"b", b"c", b"1"}
        for count in ("1", "3", "-7", "9"):
            expected, actual = d.both("SRANDMEMBER", "s", count)
            assert (expected.kind, len(expected.value)) == (actual.kind, len(actual.value))
            assert set(actual.value) <= members
            if int(count) > 0:
                assert len(set(actual.value)) == len(actual.value)
        expected, actual = d.both("SRANDMEMBER", "s")
        assert expected.kind == actual.kind and actual.value in members
        expected, actual = d.both("SPOP", "s", "2")
        assert (expected.kind, len(expected.value)) == (actual.kind, len(actual.value))
        assert set(actual.value) <= members
        # both sides popped different members: make them equal again
        d.flush()


def test_sscan_large_set(diff):
    for i in range(0, 600, 50):
        diff.check("SADD", "s", *[f"m{j}" for j in range(i, i + 50)])
    for options in [(), ("COUNT", "7"), ("MATCH", "m1*", "COUNT", "100")]:
        results = []
        for conn in (diff.redis, diff.memdb):
            cursor, seen = b"0", []
            while True:
                cursor, items = conn.call("SSCAN", "s", cursor, *options).value
                seen.extend(items)
                if cursor == b"0":
                    break
            results.append(sorted(set(seen)))
        assert results[0] == results[1]


KEYS = st.sampled_from(["s1", "s2", "s3", "str"])
MEMBERS = st.sampled_from(["a", "b", "1", "2", "-3", "01"])


class SetMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.diff = Differential(oracle_server().connect(), MemdbInstance(seed=7))
        self.diff.flush()
        self.diff.check("SET", "str", "string")

    def teardown(self):
        self.diff.redis.close()

    @rule(key=KEYS, members=st.lists(MEMBERS, min_size=1, max_size=4))
    def sadd(self, key, members):
        self.diff.check("SADD", key, *members)

    @rule(key=KEYS, members=st.lists(MEMBERS, min_size=1, max_size=3))
    def srem(self, key, members):
        self.diff.check("SMISMEMBER", key, *members)
        self.diff.check("SREM", key, *members)

    @rule(src=KEYS, dst=KEYS, member=MEMBERS)
    def smove(self, src, dst, member):
        self.diff.check("SMOVE", src, dst, member)

    @rule(cmd=st.sampled_from(["SINTER", "SUNION", "SDIFF"]), keys=st.lists(KEYS, min_size=1, max_size=3))
    def algebra(self, cmd, keys):
        self.diff.check(cmd, *keys, normalize=unordered)

    @rule(cmd=st.sampled_from(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]), dst=KEYS,
          keys=st.lists(KEYS, min_size=1, max_size=3))
    def store(self, cmd, dst, keys):
        self.diff.check(cmd, dst, *keys)

    @rule(keys=st.lists(KEYS, min_size=1, max_size=3), limit=st.sampled_from([None, "0", "1", "2"]))
    def sintercard(self, keys, limit):
        self.diff.check("SINTERCARD", len(keys), *keys, *(["LIMIT", limit] if limit else []))

    @rule(key=KEYS, count=st.sampled_from([None, "1", "2", "-3", "10"]))
    def srandmember(self, key, count):
        expected, actual = self.diff.both("SRANDMEMBER", key, *([count] if count else []))
        assert expected.kind == actual.kind
        if isinstance(expected.value, list):
            assert len(expected.value) == len(actual.value)
        else:
            assert type(expected.value) is type(actual.value)

    @rule(key=KEYS)
    def spop_all(self, key):
        # the only SPOP both sides agree on: popping everything
        size = self.diff.memdb.raw_call("SCARD", key)
        self.diff.check("SPOP", key, "10", normalize=unordered)
        assert isinstance(size, Exception) or self.diff.memdb.raw_call("EXISTS", key) == 0

    @rule(key=KEYS)
    def meta(self, key):
        self.diff.check("SCARD", key)
        self.diff.check("SMEMBERS", key, normalize=unordered)
        self.diff.check("OBJECT", "ENCODING", key)
        self.diff.check("SSCAN", key, "0", normalize=lambda v: [v[0], sort_list(v[1])])


def test_set_machine(redis_server):
    run_state_machine_as_test(SetMachine)
