"""Bitmap commands vs redis-server: examples (errors, ranges, BITFIELD overflow policies), then a hypothesis state
machine over a few keys with small offsets so that commands collide."""
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from tests.differential.harness import Differential, MemdbInstance, oracle_server

CASES = {
    "setbit-getbit": [
        ("SETBIT", "b", "7", "1"), ("GET", "b"), ("SETBIT", "b", "7", "0"), ("SETBIT", "b", "100", "1"),
        ("STRLEN", "b"), ("GETBIT", "b", "100"), ("GETBIT", "b", "101"), ("GETBIT", "b", "100000"),
        ("GETBIT", "nokey", "3"), ("SETBIT", "b", "-1", "1"), ("SETBIT", "b", "x", "1"), ("SETBIT", "b", "1", "2"),
        ("SETBIT", "b", "1", "-1"), ("SETBIT", "b", "1", "x"), ("SETBIT", "b", "4294967296", "1"),
        ("GETBIT", "b", "4294967296"), ("GETBIT", "b", "4294967295"), ("GETBIT", "b", "-1"),
        ("GETBIT", "b", "01"), ("OBJECT", "ENCODING", "b"), ("SET", "i", "12"), ("GETBIT", "i", "2"),
        ("SETBIT", "i", "7", "1"), ("GET", "i"), ("OBJECT", "ENCODING", "i"), ("HSET", "h", "a", "1"),
        ("SETBIT", "h", "1", "1"), ("GETBIT", "h", "1"), ("SETBIT", "h", "x", "1"), ("SET", "t", "abc", "EX", "100"),
        ("SETBIT", "t", "3", "1"), ("TTL", "t"), ("SETBIT", "new", "0", "0"), ("GET", "new"), ("TYPE", "new"),
    ],
    "bitcount": [
        ("SET", "s", "foobar"), ("BITCOUNT", "s"), ("BITCOUNT", "s", "0", "0"), ("BITCOUNT", "s", "1", "1"),
        ("BITCOUNT", "s", "1", "-2"), ("BITCOUNT", "s", "-3", "-1"), ("BITCOUNT", "s", "-1", "-3"),
        ("BITCOUNT", "s", "5", "30"), ("BITCOUNT", "s", "1", "1", "BYTE"), ("BITCOUNT", "s", "5", "30", "BIT"),
        ("BITCOUNT", "s", "0", "-1", "bit"), ("BITCOUNT", "s", "-13", "-2", "BIT"), ("BITCOUNT", "s", "3", "3", "BIT"),
        ("BITCOUNT", "s", "0"), ("BITCOUNT", "s", "0", "1", "FOO"), ("BITCOUNT", "s", "x", "1"),
        ("BITCOUNT", "s", "1", "x"), ("BITCOUNT", "s", "0", "1", "BIT", "x"), ("BITCOUNT", "nokey"),
        ("BITCOUNT", "nokey", "0"), ("BITCOUNT", "nokey", "x", "y"), ("HSET", "h", "a", "1"), ("BITCOUNT", "h"),
        ("BITCOUNT", "s", "100", "200"), ("BITCOUNT", "s", "-100", "-50"), ("BITCOUNT", "s", "-100", "100", "BIT"),
        ("SET", "e", ""), ("BITCOUNT", "e"), ("BITCOUNT", "e", "0", "-1"), ("SET", "n", "1234"), ("BITCOUNT", "n"),
    ],
    "bitpos": [
        ("SET", "s", "\xff\xf0\x00"), ("BITPOS", "s", "0"), ("BITPOS", "s", "1"), ("BITPOS", "s", "1", "2"),
        ("BITPOS", "s", "0", "2"), ("BITPOS", "s", "0", "0", "0"), ("BITPOS", "s", "1", "1", "-1"),
        ("BITPOS", "s", "0", "7", "15", "BIT"), ("BITPOS", "s", "0", "12", "15", "BIT"),
        ("BITPOS", "s", "1", "7", "15", "BIT"), ("BITPOS", "s", "1", "12", "-1", "BIT"),
        ("BITPOS", "s", "1", "12", "BIT"), ("BITPOS", "s", "0", "1", "1", "BYTE"), ("BITPOS", "s", "2"),
        ("BITPOS", "s", "x"), ("BITPOS", "s", "1", "x"), ("BITPOS", "s", "1", "0", "x"),
        ("BITPOS", "s", "1", "0", "1", "FOO"), ("BITPOS", "s", "1", "0", "1", "BIT", "x"), ("BITPOS", "nokey", "0"),
        ("BITPOS", "nokey", "1"), ("BITPOS", "nokey", "1", "x"), ("SET", "ones", "\xff\xff"),
        ("BITPOS", "ones", "0"), ("BITPOS", "ones", "0", "0"), ("BITPOS", "ones", "0", "0", "-1"),
        ("BITPOS", "ones", "0", "3", "BIT"), ("BITPOS", "ones", "0", "3", "12", "BIT"), ("SET", "zero", "\x00"),
        ("BITPOS", "zero", "1"), ("BITPOS", "zero", "0", "5", "BIT"), ("SET", "e", ""), ("BITPOS", "e", "0"),
        ("BITPOS", "e", "1"), ("BITPOS", "e", "0", "0"), ("HSET", "h", "a", "1"), ("BITPOS", "h", "1"),
        ("BITPOS", "h", "3"), ("BITPOS", "s", "1", "-100", "100", "BIT"), ("BITPOS", "s", "0", "5", "2"),
    ],
    "bitop": [
        ("SET", "a", "abc"), ("SET", "b", "\xff\x00"), ("BITOP", "AND", "d", "a", "b"), ("GET", "d"),
        ("BITOP", "OR", "d", "a", "b"), ("GET", "d"), ("BITOP", "XOR", "d", "a", "b", "nokey"), ("GET", "d"),
        ("BITOP", "NOT", "d", "a"), ("GET", "d"), ("BITOP", "NOT", "d", "a", "b"), ("BITOP", "FOO", "d", "a"),
        ("BITOP", "and", "d", "nokey", "nokey2"), ("EXISTS", "d"), ("HSET", "h", "f", "v"),
        ("BITOP", "AND", "d", "a", "h"), ("SET", "d", "x", "EX", "100"), ("BITOP", "OR", "d", "a"), ("TTL", "d"),
        ("OBJECT", "ENCODING", "d"), ("BITOP", "AND", "h", "a"), ("TYPE", "h"), ("BITOP", "AND", "a", "a", "nokey"),
        ("GET", "a"),
    ],
    "bitfield": [
        ("BITFIELD", "f", "SET", "i8", "0", "-100", "GET", "i8", "0", "GET", "u8", "0"),
        ("BITFIELD", "f", "INCRBY", "i8", "0", "-100"), ("BITFIELD", "f", "OVERFLOW", "SAT", "INCRBY", "i8", "0", "-100"),
        ("BITFIELD", "f", "OVERFLOW", "FAIL", "INCRBY", "i8", "0", "-100", "INCRBY", "i8", "0", "1"),
        ("BITFIELD", "f", "SET", "u4", "#3", "17", "GET", "u4", "#3", "GET", "u4", "12"),
        ("BITFIELD", "f", "OVERFLOW", "SAT", "SET", "u4", "#3", "17", "SET", "u8", "0", "-1", "GET", "u8", "0"),
        ("BITFIELD", "f", "OVERFLOW", "FAIL", "SET", "u4", "#3", "17", "SET", "i4", "0", "-9"),
        ("BITFIELD", "f", "OVERFLOW", "WRAP", "SET", "i4", "0", "-9", "GET", "i4", "0"),
        ("BITFIELD", "f", "INCRBY", "u63", "5", "9223372036854775807", "GET", "u63", "5"),
        ("BITFIELD", "f", "INCRBY", "i64", "3", "9223372036854775807", "INCRBY", "i64", "3", "1"),
        ("BITFIELD", "f", "OVERFLOW", "SAT", "INCRBY", "i64", "3", "9223372036854775807", "INCRBY", "i64", "3",
         "-9223372036854775808", "INCRBY", "i64", "3", "-9223372036854775808"),
        ("BITFIELD", "f", "GET", "u64", "0"), ("BITFIELD", "f", "GET", "i65", "0"), ("BITFIELD", "f", "GET", "u0", "0"),
        ("BITFIELD", "f", "GET", "I8", "0"), ("BITFIELD", "f", "GET", "x8", "0"), ("BITFIELD", "f", "GET", "i8", "-1"),
        ("BITFIELD", "f", "GET", "i8", "#-1"), ("BITFIELD", "f", "GET", "i8", "x"), ("BITFIELD", "f", "GET", "i8"),
        ("BITFIELD", "f", "SET", "i8", "0"), ("BITFIELD", "f", "SET", "i8", "0", "x"), ("BITFIELD", "f", "FOO"),
        ("BITFIELD", "f", "OVERFLOW", "FOO", "GET", "i8", "0"), ("BITFIELD", "f", "OVERFLOW"), ("BITFIELD", "f"),
        ("BITFIELD", "f", "get", "i8", "4294967288"), ("BITFIELD", "f", "get", "i8", "4294967296"),
        ("BITFIELD", "f", "get", "i8", "#536870911"), ("BITFIELD", "f", "get", "i8", "#536870912"),
        ("BITFIELD", "nokey", "GET", "u8", "0"), ("BITFIELD", "nokey"), ("EXISTS", "nokey"),
        ("BITFIELD", "nf", "OVERFLOW", "FAIL", "INCRBY", "u2", "100", "8"), ("GET", "nf"),
        ("BITFIELD_RO", "f", "GET", "i8", "0", "GET", "u3", "#2"), ("BITFIELD_RO", "f", "SET", "i8", "0", "1"),
        ("BITFIELD_RO", "f", "INCRBY", "i8", "0", "1"), ("BITFIELD_RO", "f", "OVERFLOW", "SAT"),
        ("BITFIELD_RO", "nokey", "GET", "i8", "0"), ("HSET", "h", "a", "1"), ("BITFIELD", "h", "GET", "i8", "0"),
        ("BITFIELD", "h", "SET", "i8", "0", "1"), ("BITFIELD_RO", "h", "GET", "i8", "0"), ("GET", "f"),
        ("BITFIELD", "h", "SET", "i8", "0", "x"), ("SET", "n", "123"), ("BITFIELD", "n", "GET", "u16", "4"),
        ("BITFIELD", "n", "SET", "u16", "4", "1000"), ("GET", "n"), ("OBJECT", "ENCODING", "n"),
        ("BITFIELD", "f", "OVERFLOW", "SAT", "INCRBY", "u8", "0", "-300", "INCRBY", "u8", "0", "300"),
        ("BITFIELD", "f", "INCRBY", "u8", "0", "-300", "INCRBY", "i1", "0", "1", "INCRBY", "i1", "0", "1"),
        # C's int64 wrap-around: a SET far below -2**63 + 2**15 counts as an overflow upwards
        ("BITFIELD", "q", "OVERFLOW", "SAT", "SET", "i16", "0", "-9223372036854775808", "GET", "i16", "0",
         "SET", "i16", "0", "-9223372036854775000", "GET", "i16", "0", "OVERFLOW", "FAIL", "SET", "i8", "0",
         "-9223372036854775808", "OVERFLOW", "WRAP", "SET", "i8", "0", "-9223372036854775808", "GET", "i8", "0"),
    ],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_examples(diff, case):
    for command in CASES[case]:
        diff.check(*[c.encode("latin-1") if isinstance(c, str) else c for c in command])


def test_examples_resp3(diff3):
    for command in CASES["bitfield"]:
        diff3.check(*command)


def test_large_offsets(diff):
    """Near the 4294967295 limit without allocating 512 MB: GETBIT/BITFIELD GET only read."""
    diff.check("SETBIT", "b", "8000000", "1")
    diff.check("BITCOUNT", "b")
    diff.check("BITPOS", "b", "1")
    diff.check("BITPOS", "b", "1", "-1")
    diff.check("GETBIT", "b", "4294967295")
    diff.check("BITFIELD", "b", "GET", "i64", "7999990")


KEYS = st.sampled_from(["b1", "b2", "h"])
OFFSETS = st.integers(min_value=0, max_value=40)
INDEXES = st.sampled_from(["0", "1", "2", "-1", "-2", "-5", "7", "13", "100", "-100"])
TYPES = st.sampled_from(["i1", "u1", "i5", "u7", "i8", "u8", "i16", "u16", "i33", "u63", "i64"])
NUMBERS = st.sampled_from(["0", "1", "-1", "7", "-8", "127", "200", "-129", "65535", "9223372036854775807",
                           "-9223372036854775808"])


class BitmapMachine(RuleBasedStateMachine):
    RESP = 2

    def __init__(self):
        super().__init__()
        self.diff = Differential(oracle_server().connect(resp=self.RESP), MemdbInstance(seed=5, resp=self.RESP))
        self.diff.flush()
        self.diff.check("HSET", "h", "f", "v")

    def teardown(self):
        self.diff.redis.close()

    @rule(key=KEYS, offset=OFFSETS, bit=st.sampled_from(["0", "1"]))
    def setbit(self, key, offset, bit):
        self.diff.check("SETBIT", key, offset, bit)

    @rule(key=KEYS, offset=OFFSETS)
    def getbit(self, key, offset):
        self.diff.check("GETBIT", key, offset)

    @rule(key=KEYS, value=st.sampled_from(["", "a", "\xff\x0f", "12", "foobar"]))
    def set(self, key, value):
        self.diff.check("SET", key, value.encode("latin-1"))

    @rule(key=KEYS, rng=st.one_of(st.just(()), st.tuples(INDEXES, INDEXES),
                                  st.tuples(INDEXES, INDEXES, st.sampled_from(["BIT", "BYTE"]))))
    def bitcount(self, key, rng):
        self.diff.check("BITCOUNT", key, *rng)

    @rule(key=KEYS, bit=st.sampled_from(["0", "1"]),
          rng=st.one_of(st.just(()), st.tuples(INDEXES), st.tuples(INDEXES, INDEXES),
                        st.tuples(INDEXES, INDEXES, st.sampled_from(["BIT", "BYTE"]))))
    def bitpos(self, key, bit, rng):
        self.diff.check("BITPOS", key, bit, *rng)

    @rule(op=st.sampled_from(["AND", "OR", "XOR", "NOT"]), dest=KEYS,
          sources=st.lists(KEYS | st.just("missing"), min_size=1, max_size=3))
    def bitop(self, op, dest, sources):
        if op == "NOT":
            sources = sources[:1]
        self.diff.check("BITOP", op, dest, *sources)

    @rule(key=KEYS, ops=st.lists(st.one_of(
        st.tuples(st.just("GET"), TYPES, OFFSETS.map(str)),
        st.tuples(st.sampled_from(["SET", "INCRBY"]), TYPES, OFFSETS.map(str) | st.sampled_from(["#0", "#1"]),
                  NUMBERS),
        st.tuples(st.just("OVERFLOW"), st.sampled_from(["WRAP", "SAT", "FAIL"]))), min_size=1, max_size=4),
        ro=st.booleans())
    def bitfield(self, key, ops, ro):
        self.diff.check("BITFIELD_RO" if ro else "BITFIELD", key, *[part for op in ops for part in op])

    @rule(key=KEYS)
    def read(self, key):
        self.diff.check("GET", key)
        self.diff.check("OBJECT", "ENCODING", key)

    @rule(key=KEYS)
    def delete(self, key):
        self.diff.check("DEL", key)


class BitmapMachineResp3(BitmapMachine):
    RESP = 3


@pytest.mark.parametrize("machine", [BitmapMachine, BitmapMachineResp3], ids=["resp2", "resp3"])
def test_bitmap_machine(redis_server, machine):
    run_state_machine_as_test(machine)
