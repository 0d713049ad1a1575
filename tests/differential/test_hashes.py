"""Hash commands vs redis-server: examples (errors, encodings, HRANDFIELD shapes, HSCAN), then a hypothesis state
machine over a few keys/fields/values."""
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from tests.differential.harness import Differential, MemdbInstance, Error, oracle_server, sort_list, sort_pairs

CASES = {
    "basics": [
        ("HSET", "h", "a", "1", "b", "2"), ("HSET", "h", "a", "3"), ("HSET", "h", "a"), ("HSET", "h", "a", "1", "b"),
        ("HMSET", "h", "c", "3"), ("HMSET", "h", "c"), ("HGET", "h", "a"), ("HGET", "h", "x"), ("HGET", "x", "a"),
        ("HMGET", "h", "a", "x", "b"), ("HMGET", "x", "a", "b"), ("HLEN", "h"), ("HLEN", "x"), ("HSTRLEN", "h", "a"),
        ("HSTRLEN", "h", "x"), ("HEXISTS", "h", "a"), ("HEXISTS", "h", "x"), ("HKEYS", "h"), ("HVALS", "h"),
        ("HGETALL", "h"), ("HGETALL", "x"), ("HSETNX", "h", "a", "9"), ("HSETNX", "h", "z", "9"),
        ("HDEL", "h", "a", "a", "x"), ("HDEL", "h", "b", "c", "z"), ("EXISTS", "h"), ("HDEL", "h", "a"),
        ("SET", "s", "v"), ("HSET", "s", "a", "1"), ("HGET", "s", "a"), ("HGETALL", "s"), ("HDEL", "s", "a"),
        ("HLEN", "s"), ("HSETNX", "s", "a", "b"), ("HRANDFIELD", "s"), ("HSCAN", "s", "0"), ("HKEYS", "s"),
    ],
    "incr": [
        ("HINCRBY", "h", "a", "5"), ("HINCRBY", "h", "a", "-10"), ("HINCRBY", "h", "a", "x"),
        ("HINCRBY", "h", "a", "9223372036854775807"), ("HSET", "h", "a", "9223372036854775807"),
        ("HINCRBY", "h", "a", "1"), ("HSET", "h", "s", "abc"), ("HINCRBY", "h", "s", "1"),
        ("HINCRBYFLOAT", "h", "s", "1"), ("HINCRBYFLOAT", "h", "f", "1.5"), ("HINCRBYFLOAT", "h", "f", "0.1"),
        ("HINCRBYFLOAT", "h", "f", "inf"), ("HINCRBYFLOAT", "h", "f", "nan"), ("HINCRBYFLOAT", "h", "f", "x"),
        ("HSET", "h", "g", "1e4000"), ("HINCRBYFLOAT", "h", "g", "1"), ("HSET", "h", "g", "1e308"),
        ("HINCRBYFLOAT", "h", "g", "1e308"), ("HINCRBYFLOAT", "n", "f", "1e-5000"), ("EXISTS", "n"),
        ("HINCRBY", "n", "f", "x"), ("EXISTS", "n"), ("HGETALL", "h"), ("SET", "k", "v"), ("HINCRBY", "k", "f", "1"),
        ("HINCRBYFLOAT", "k", "f", "1"), ("HINCRBY", "k", "f", "x"), ("HINCRBY", "h", "a", "-1"),
        ("HINCRBYFLOAT", "h", "i", "3.0"), ("HGET", "h", "i"),
    ],
    "encoding": [
        ("HSET", "h", "a", "1"), ("OBJECT", "ENCODING", "h"), ("HSET", "h", "b", "x" * 64),
        ("OBJECT", "ENCODING", "h"), ("HSET", "h", "c", "x" * 65), ("OBJECT", "ENCODING", "h"),
        ("HDEL", "h", "c"), ("OBJECT", "ENCODING", "h"), ("HSET", "g", "y" * 65, "1"), ("OBJECT", "ENCODING", "g"),
        ("HSETNX", "e", "a", "x" * 65), ("OBJECT", "ENCODING", "e"), ("HSET", "i", "a", "1"),
        ("HINCRBYFLOAT", "i", "a", "0.0000000000000000000000000000000000000000000000000000000000001"),
        ("OBJECT", "ENCODING", "i"), ("HSET", "j", "a", "1"), ("HSETNX", "j", "a", "x" * 65),
        ("OBJECT", "ENCODING", "j"), ("HSET", "k", "a", "1"), ("HINCRBY", "k", "b" * 70, "1"),
        ("OBJECT", "ENCODING", "k"), ("OBJECT", "REFCOUNT", "k"),
    ],
    "hrandfield-errors": [
        ("HSET", "h", "a", "1", "b", "2", "c", "3"), ("HRANDFIELD", "h", "x"), ("HRANDFIELD", "h", "1", "FOO"),
        ("HRANDFIELD", "h", "1", "WITHVALUES", "x"), ("HRANDFIELD", "h", "-9223372036854775808"),
        ("HRANDFIELD", "h", "4611686018427387904", "WITHVALUES"), ("HRANDFIELD", "h", "0"),
        ("HRANDFIELD", "h", "0", "WITHVALUES"), ("HRANDFIELD", "x"), ("HRANDFIELD", "x", "5"),
        ("HRANDFIELD", "x", "-5", "WITHVALUES"), ("HRANDFIELD", "h", "3"), ("HRANDFIELD", "h", "10", "WITHVALUES"),
    ],
    "hscan": [
        ("HSET", "h", "a1", "1", "a2", "2", "b1", "3"), ("HSCAN", "h", "0"), ("HSCAN", "h", "0", "MATCH", "a*"),
        ("HSCAN", "h", "0", "COUNT", "1"), ("HSCAN", "h", "x"), ("HSCAN", "h", "0", "COUNT", "0"),
        ("HSCAN", "h", "0", "TYPE", "string"), ("HSCAN", "nokey", "0", "FOO"), ("HSCAN", "nokey", "x"),
        ("HSCAN", "h", "0", "MATCH"),
    ],
}


def check_ordered_if_listpack(d, *command):
    """HKEYS/HVALS/HGETALL: a listpack's order (insertion order) must match exactly, a hash table's can't."""
    if d.memdb.call("OBJECT", "ENCODING", command[1]).value == b"listpack":
        return d.check(*command)
    if command[0] == "HGETALL" and d.memdb.resp == 2:
        return d.check(*command, normalize=sort_pairs)
    return d.check(*command, normalize=sort_list)


@pytest.mark.parametrize("case", sorted(CASES))
def test_examples(diff, case):
    for command in CASES[case]:
        if command[0] in ("HKEYS", "HVALS", "HGETALL"):
            check_ordered_if_listpack(diff, *command)
        else:
            diff.check(*command, normalize=sort_list if command[0] in ("HRANDFIELD",) else None)


def test_examples_resp3(diff3):
    for command in CASES["basics"] + CASES["incr"]:
        if command[0] in ("HKEYS", "HVALS", "HGETALL"):
            check_ordered_if_listpack(diff3, *command)
        else:
            diff3.check(*command)


def test_hrandfield_shapes(diff, diff3):
    for d in (diff, diff3):
        d.flush()
        d.check("HSET", "h", "a", "1", "b", "2", "c", "3")
        fields = {b"a": b"1", b"b": b"2", b"c": b"3"}
        for count in ("1", "2", "-5", "5"):
            for extra in ((), ("WITHVALUES",)):
                expected, actual = d.both("HRANDFIELD", "h", count, *extra)
                assert expected.kind == actual.kind and len(expected.value) == len(actual.value)
                items = actual.value
                if extra and d.memdb.resp == 2:
                    items = list(zip(items[::2], items[1::2]))
                elif extra:
                    items = [tuple(pair) for pair in items]
                for item in items:
                    field, value = item if extra else (item, fields.get(item))
                    assert fields[field] == value
                if int(count) > 0:
                    assert len(set(map(str, items))) == len(items)


def test_hscan_large_hash(diff):
    for i in range(0, 600, 50):
        diff.check("HSET", "h", *[part for j in range(i, i + 50) for part in (f"f{j}", str(j))])
    diff.check("OBJECT", "ENCODING", "h")
    for options in [(), ("COUNT", "7"), ("MATCH", "f1*", "COUNT", "100")]:
        results = []
        for conn in (diff.redis, diff.memdb):
            cursor, seen = b"0", []
            while True:
                cursor, items = conn.call("HSCAN", "h", cursor, *options).value
                seen.extend(zip(items[::2], items[1::2]))
                if cursor == b"0":
                    break
            results.append(sorted(set(seen)))
        assert results[0] == results[1]
    diff.check("HGETALL", "h", normalize=sort_pairs)
    diff.check("HKEYS", "h", normalize=sort_list)


KEYS = st.sampled_from(["h1", "h2", "s"])
FIELDS = st.sampled_from(["a", "b", "c", "d" * 65])
VALUES = st.sampled_from(["1", "-2", "x", "1.5", "", "v" * 65, "9223372036854775807"])


class HashMachine(RuleBasedStateMachine):
    RESP = 2

    def __init__(self):
        super().__init__()
        self.diff = Differential(oracle_server().connect(resp=self.RESP), MemdbInstance(seed=3, resp=self.RESP))
        self.diff.flush()
        self.diff.check("SET", "s", "string")

    def teardown(self):
        self.diff.redis.close()

    @rule(key=KEYS, pairs=st.lists(st.tuples(FIELDS, VALUES), min_size=1, max_size=3),
          cmd=st.sampled_from(["HSET", "HMSET"]))
    def hset(self, key, pairs, cmd):
        self.diff.check(cmd, key, *[part for pair in pairs for part in pair])

    @rule(key=KEYS, field=FIELDS, value=VALUES)
    def hsetnx(self, key, field, value):
        self.diff.check("HSETNX", key, field, value)

    @rule(key=KEYS, fields=st.lists(FIELDS, min_size=1, max_size=3))
    def hdel_hmget(self, key, fields):
        self.diff.check("HMGET", key, *fields)
        self.diff.check("HDEL", key, *fields)

    @rule(key=KEYS, field=FIELDS, cmd=st.sampled_from(["HGET", "HSTRLEN", "HEXISTS"]))
    def field_read(self, key, field, cmd):
        self.diff.check(cmd, key, field)

    @rule(key=KEYS, cmd=st.sampled_from(["HLEN", "HKEYS", "HVALS", "HGETALL"]))
    def whole_read(self, key, cmd):
        if cmd == "HLEN":
            self.diff.check(cmd, key)
        else:
            check_ordered_if_listpack(self.diff, cmd, key)

    @rule(key=KEYS, field=FIELDS, amount=st.sampled_from(["1", "-3", "x", "9223372036854775807"]))
    def hincrby(self, key, field, amount):
        self.diff.check("HINCRBY", key, field, amount)

    @rule(key=KEYS, field=FIELDS, amount=st.sampled_from(["1.5", "-3", "x", "1e308", "0.1"]))
    def hincrbyfloat(self, key, field, amount):
        self.diff.check("HINCRBYFLOAT", key, field, amount)

    @rule(key=KEYS)
    def meta(self, key):
        self.diff.check("OBJECT", "ENCODING", key)
        self.diff.check("TYPE", key)
        self.diff.check("HSCAN", key, "0", normalize=lambda v: [v[0], sort_pairs(v[1])])

    @rule(key=KEYS, count=st.sampled_from([None, "2", "-2", "10"]))
    def hrandfield(self, key, count):
        expected, actual = self.diff.both("HRANDFIELD", key, *([count] if count else []))
        if isinstance(expected.value, (Error, type(None))) or not count:
            assert (expected.kind, type(expected.value)) == (actual.kind, type(actual.value))
        else:
            assert len(expected.value) == len(actual.value)

    @rule(key=KEYS)
    def delete(self, key):
        self.diff.check("DEL", key)


class HashMachineResp3(HashMachine):
    RESP = 3


@pytest.mark.parametrize("machine", [HashMachine, HashMachineResp3], ids=["resp2", "resp3"])
def test_hash_machine(redis_server, machine):
    run_state_machine_as_test(machine)
