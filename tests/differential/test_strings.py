"""String commands vs redis-server: tricky examples (error texts, option combinations, encodings), then a
hypothesis state machine over a small pool of keys and values."""
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from tests.differential.harness import Differential, MemdbInstance, oracle_server

# Each case: commands run in order on a clean server; every reply is compared.
CASES = {
    "set-options": [
        ("SET", "k", "v", "NX"), ("SET", "k", "w", "NX"), ("SET", "k", "w", "XX"), ("SET", "n", "w", "XX"),
        ("SET", "k", "v", "NX", "XX"), ("SET", "k", "v", "XX", "NX"), ("SET", "k", "v", "EX", "10", "PX", "100"),
        ("SET", "k", "v", "EX", "10", "EX", "20"), ("TTL", "k"), ("SET", "k", "v", "KEEPTTL", "EX", "1"),
        ("SET", "k", "v", "EX", "1", "KEEPTTL"), ("SET", "k", "v", "KEEPTTL"), ("TTL", "k"),
        ("SET", "k", "v", "EX"), ("SET", "k", "v", "EX", "0"), ("SET", "k", "v", "EX", "-1"),
        ("SET", "k", "v", "EX", "x"), ("SET", "k", "v", "PX", "9223372036854775807"),
        ("SET", "k", "v", "EX", "9223372036854775"), ("SET", "k", "v", "EX", "9223372036854776"),
        ("SET", "k", "v", "EXAT", "1"), ("GET", "k"), ("EXISTS", "k"),
        ("SET", "k", "v", "PXAT", "99999999999999"), ("PTTL", "k"), ("SET", "k", "v", "persist"),
        ("SET", "k", "v", "foo"), ("SET", "k", "v", "nx", "get"), ("SET", "k", "new", "GET"),
        ("SET", "k2", "new", "GET"), ("HSET", "h", "f", "v"), ("SET", "h", "x", "GET"), ("GET", "h"),
        ("SET", "h", "x", "GET", "EX", "0"), ("set", "k", "v", "get", "xx", "px", "100000"), ("get", "k"),
    ],
    "setex-family": [
        ("SETEX", "k", "0", "v"), ("SETEX", "k", "-5", "v"), ("SETEX", "k", "x", "v"), ("SETEX", "k", "100", "v"),
        ("TTL", "k"), ("PSETEX", "k", "0", "v"), ("PSETEX", "k", "100000", "v"), ("TTL", "k"),
        ("SETNX", "k", "w"), ("SETNX", "k2", "w"), ("GET", "k2"), ("GETSET", "k2", "z"), ("GETSET", "k3", "z"),
        ("TTL", "k"), ("GETSET", "k", "a"), ("TTL", "k"), ("HSET", "h", "a", "b"), ("GETSET", "h", "x"),
        ("SETNX", "h", "x"),
    ],
    "getex-getdel": [
        ("SET", "k", "v"), ("GETEX", "k"), ("GETEX", "k", "EX", "100"), ("TTL", "k"), ("GETEX", "k", "PERSIST"),
        ("TTL", "k"), ("GETEX", "k", "PX", "100000", "PERSIST"), ("GETEX", "k", "PERSIST", "EX", "1"),
        ("GETEX", "k", "EX", "0"), ("GETEX", "k", "EX", "-1"), ("GETEX", "nokey", "EX", "-1"),
        ("GETEX", "nokey", "FOO"), ("GETEX", "k", "KEEPTTL"), ("GETEX", "k", "NX"), ("GETEX", "k", "EXAT", "1"),
        ("EXISTS", "k"), ("SET", "k", "v"), ("GETEX", "k", "PXAT", "99999999999999"), ("PTTL", "k"),
        ("GETDEL", "k"), ("GETDEL", "k"), ("HSET", "h", "a", "b"), ("GETDEL", "h"), ("GETEX", "h"),
        ("GETEX", "h", "EX", "x"),
    ],
    "mget-mset": [
        ("MSET", "a", "1", "b", "2"), ("MSET", "a"), ("MSET", "a", "1", "b"), ("MGET", "a", "b", "c"),
        ("HSET", "h", "f", "v"), ("MGET", "a", "h"), ("MSETNX", "a", "x", "z", "y"), ("MSETNX", "y", "x", "z", "y"),
        ("MGET", "y", "z"), ("MSETNX", "q", "1", "q", "2"), ("GET", "q"), ("MSETNX", "a", "1", "b"),
    ],
    "counters": [
        ("INCR", "c"), ("INCRBY", "c", "10"), ("DECR", "c"), ("DECRBY", "c", "3"), ("INCRBY", "c", "x"),
        ("INCRBY", "c", "1.5"), ("INCRBY", "c", " 1"), ("INCRBY", "c", "+1"), ("INCRBY", "c", "01"),
        ("SET", "c", "9223372036854775806"), ("INCR", "c"), ("INCR", "c"), ("SET", "c", "-9223372036854775807"),
        ("DECR", "c"), ("DECR", "c"), ("DECRBY", "c", "-9223372036854775808"), ("DECRBY", "x", "9223372036854775807"),
        ("SET", "s", "abc"), ("INCR", "s"), ("SET", "s", " 1"), ("INCR", "s"), ("SET", "s", "1 "), ("INCR", "s"),
        ("SET", "s", "-0"), ("INCR", "s"), ("SET", "e", "5", "EX", "100"), ("INCR", "e"), ("TTL", "e"),
        ("HSET", "h", "a", "1"), ("INCR", "h"), ("INCRBY", "h", "x"), ("OBJECT", "ENCODING", "c"),
    ],
    "incrbyfloat": [
        ("INCRBYFLOAT", "f", "1.5"), ("INCRBYFLOAT", "f", "0.1"), ("INCRBYFLOAT", "f", "-1.6"), ("GET", "f"),
        ("INCRBYFLOAT", "f", "1e308"), ("INCRBYFLOAT", "f", "1e308"), ("INCRBYFLOAT", "f", "1e308"),
        ("SET", "f", "0.1"), ("INCRBYFLOAT", "f", "0.2"), ("INCRBYFLOAT", "f", "inf"), ("INCRBYFLOAT", "f", "-inf"),
        ("INCRBYFLOAT", "f", "nan"), ("INCRBYFLOAT", "f", "abc"), ("INCRBYFLOAT", "f", " 1"),
        ("INCRBYFLOAT", "f", "0x10"), ("INCRBYFLOAT", "f", "1e-5000"), ("INCRBYFLOAT", "f", "1.0e-20"),
        ("INCRBYFLOAT", "g", "3"), ("OBJECT", "ENCODING", "g"), ("INCRBYFLOAT", "g", "-3"), ("GET", "g"),
        ("SET", "g", "1e4000"), ("INCRBYFLOAT", "g", "1"), ("SET", "g", "1e5000"), ("INCRBYFLOAT", "g", "1"),
        ("SET", "g", "abc"), ("INCRBYFLOAT", "g", "1"), ("SET", "g", "5", "EX", "100"),
        ("INCRBYFLOAT", "g", "2.5"), ("TTL", "g"), ("HSET", "h", "a", "1"), ("INCRBYFLOAT", "h", "1"),
        ("INCRBYFLOAT", "x", "1.23456789012345678901234567890"), ("INCRBYFLOAT", "y", "-0.0"),
        ("INCRBYFLOAT", "z", "12345678901234567890"), ("INCRBYFLOAT", "z", "0.0000000000000000001"),
    ],
    "append-ranges": [
        ("APPEND", "a", "123"), ("OBJECT", "ENCODING", "a"), ("APPEND", "a", "4"), ("OBJECT", "ENCODING", "a"),
        ("GET", "a"), ("STRLEN", "a"), ("STRLEN", "nokey"), ("GETRANGE", "a", "0", "-1"), ("GETRANGE", "a", "1", "2"),
        ("GETRANGE", "a", "-2", "-1"), ("GETRANGE", "a", "-1", "-2"), ("GETRANGE", "a", "5", "10"),
        ("GETRANGE", "a", "-100", "100"), ("GETRANGE", "a", "x", "1"), ("GETRANGE", "nokey", "0", "-1"),
        ("SUBSTR", "a", "0", "1"), ("SETRANGE", "a", "10", "xy"), ("GET", "a"), ("SETRANGE", "a", "-1", "x"),
        ("SETRANGE", "a", "0", ""), ("SETRANGE", "new", "0", ""), ("EXISTS", "new"), ("SETRANGE", "new", "3", "z"),
        ("GET", "new"), ("OBJECT", "ENCODING", "new"), ("SETRANGE", "a", "536870911", "xy"),
        ("SETRANGE", "a", "x", "1"), ("HSET", "h", "a", "b"), ("APPEND", "h", "x"), ("SETRANGE", "h", "0", "x"),
        ("GETRANGE", "h", "0", "1"), ("STRLEN", "h"), ("SET", "i", "12345"), ("GETRANGE", "i", "1", "3"),
        ("SETRANGE", "i", "0", "9"), ("OBJECT", "ENCODING", "i"),
    ],
    "encodings": [
        ("SET", "a", "123"), ("OBJECT", "ENCODING", "a"), ("SET", "a", "-123"), ("OBJECT", "ENCODING", "a"),
        ("SET", "a", "0123"), ("OBJECT", "ENCODING", "a"), ("SET", "a", "x" * 44), ("OBJECT", "ENCODING", "a"),
        ("SET", "a", "x" * 45), ("OBJECT", "ENCODING", "a"), ("SET", "a", "9223372036854775808"),
        ("OBJECT", "ENCODING", "a"), ("SET", "a", "5"), ("OBJECT", "REFCOUNT", "a"), ("SET", "a", "10000"),
        ("OBJECT", "REFCOUNT", "a"), ("SET", "a", "abc"), ("OBJECT", "REFCOUNT", "a"), ("OBJECT", "FREQ", "a"),
        ("OBJECT", "FREQ", "nokey"), ("OBJECT", "ENCODING", "nokey"), ("OBJECT", "IDLETIME", "a"),
        ("OBJECT", "HELP"), ("OBJECT", "help", "x"), ("OBJECT", "NOPE", "a"), ("OBJECT",), ("OBJECT", "ENCODING"),
        ("INCR", "n"), ("OBJECT", "ENCODING", "n"), ("MSET", "m", "77", "m2", "x" * 50),
        ("OBJECT", "ENCODING", "m"), ("OBJECT", "ENCODING", "m2"), ("APPEND", "m2", "y"),
        ("OBJECT", "ENCODING", "m2"), ("GETSET", "m2", "1"), ("OBJECT", "ENCODING", "m2"),
    ],
    "lcs": [
        ("MSET", "a", "ohmytext", "b", "mynewtext"), ("LCS", "a", "b"), ("LCS", "a", "b", "LEN"),
        ("LCS", "a", "b", "IDX"), ("LCS", "a", "b", "IDX", "WITHMATCHLEN"),
        ("LCS", "a", "b", "IDX", "MINMATCHLEN", "4"), ("LCS", "a", "b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"),
        ("LCS", "a", "b", "LEN", "IDX"), ("LCS", "a", "b", "MINMATCHLEN"), ("LCS", "a", "b", "MINMATCHLEN", "x"),
        ("LCS", "a", "b", "MINMATCHLEN", "-5", "IDX"), ("LCS", "a", "b", "FOO"), ("LCS", "a", "nokey"),
        ("LCS", "nokey", "nokey2", "IDX"), ("HSET", "h", "a", "b"), ("LCS", "a", "h"), ("LCS", "h", "a", "FOO"),
        ("MSET", "x", "aaaabbbbccccaaaa", "y", "bbbbaaaaccccaaab"), ("LCS", "x", "y", "IDX", "WITHMATCHLEN"),
        ("LCS", "x", "y"), ("LCS", "a", "a", "idx"),
    ],
    "arity-and-unknown": [
        ("GET",), ("GET", "a", "b"), ("SET", "a"), ("NOSUCHCMD", "a", "b"), ("NOSUCHCMD",),
        ("NOSUCH", "x" * 200, "y"), ("getrange", "a", "1"), ("lcs", "a"), ("Mget",), ("incrbyfloat", "a"),
    ],
}


def check_example(diff, command):
    """PTTL of a key with a PXAT deadline depends on when each server reads its clock."""
    if command[0] == "PTTL":
        diff.check_clock_ms(*command)
    else:
        diff.check(*command)


@pytest.mark.parametrize("case", sorted(CASES))
def test_examples(diff, case):
    for command in CASES[case]:
        check_example(diff, command)


def test_examples_resp3(diff3):
    for name in ("lcs", "set-options", "incrbyfloat"):
        diff3.flush()
        for command in CASES[name]:
            check_example(diff3, command)


KEYS = st.sampled_from(["k1", "k2", "k3"])
VALUES = st.sampled_from(["", "0", "1", "-7", "abc", "12345678901234567890", "3.5", "x" * 50, "9999"])
INTS = st.sampled_from(["0", "1", "-1", "100", "9223372036854775807", "-9223372036854775808", "x", "1.5"])
FLOATS = st.sampled_from(["0", "1.5", "-2.25", "1e3", "0.1", "inf", "abc", "5e-2"])
OFFSETS = st.sampled_from(["0", "1", "3", "-1", "-3", "100", "x"])
SECONDS = st.sampled_from(["100", "1000", "0", "-1", "x"])


class StringMachine(RuleBasedStateMachine):
    """Every string command on 3 keys, with a hash key thrown in for type clashes; every reply compared."""
    RESP = 2

    def __init__(self):
        super().__init__()
        self.diff = Differential(oracle_server().connect(resp=self.RESP), MemdbInstance(seed=1, resp=self.RESP))
        self.diff.flush()

    def teardown(self):
        self.diff.redis.close()

    @rule(key=KEYS, value=VALUES, opts=st.lists(st.sampled_from(
        [("NX",), ("XX",), ("GET",), ("KEEPTTL",), ("EX", "100"), ("PX", "100000"), ("EX", "0")]), max_size=2))
    def set(self, key, value, opts):
        self.diff.check("SET", key, value, *[part for opt in opts for part in opt])

    @rule(key=KEYS)
    def get(self, key):
        self.diff.check("GET", key)

    @rule(key=KEYS, opts=st.sampled_from([(), ("EX", "100"), ("PERSIST",), ("PX", "0"), ("EXAT", "1")]))
    def getex(self, key, opts):
        self.diff.check("GETEX", key, *opts)

    @rule(key=KEYS)
    def getdel(self, key):
        self.diff.check("GETDEL", key)

    @rule(key=KEYS, value=VALUES)
    def getset(self, key, value):
        self.diff.check("GETSET", key, value)

    @rule(key=KEYS, value=VALUES)
    def setnx(self, key, value):
        self.diff.check("SETNX", key, value)

    @rule(key=KEYS, seconds=SECONDS, value=VALUES, millis=st.booleans())
    def setex(self, key, seconds, value, millis):
        self.diff.check("PSETEX" if millis else "SETEX", key, seconds + ("000" if millis else ""), value)

    @rule(keys=st.lists(KEYS, min_size=1, max_size=4))
    def mget(self, keys):
        self.diff.check("MGET", *keys)

    @rule(pairs=st.lists(st.tuples(KEYS, VALUES), min_size=1, max_size=3), nx=st.booleans())
    def mset(self, pairs, nx):
        self.diff.check("MSETNX" if nx else "MSET", *[part for pair in pairs for part in pair])

    @rule(key=KEYS, cmd=st.sampled_from(["INCR", "DECR"]))
    def incr(self, key, cmd):
        self.diff.check(cmd, key)

    @rule(key=KEYS, amount=INTS, cmd=st.sampled_from(["INCRBY", "DECRBY"]))
    def incrby(self, key, amount, cmd):
        self.diff.check(cmd, key, amount)

    @rule(key=KEYS, amount=FLOATS)
    def incrbyfloat(self, key, amount):
        self.diff.check("INCRBYFLOAT", key, amount)

    @rule(key=KEYS, value=VALUES)
    def append(self, key, value):
        self.diff.check("APPEND", key, value)

    @rule(key=KEYS, start=OFFSETS, end=OFFSETS)
    def getrange(self, key, start, end):
        self.diff.check("GETRANGE", key, start, end)

    @rule(key=KEYS, offset=OFFSETS, value=VALUES)
    def setrange(self, key, offset, value):
        self.diff.check("SETRANGE", key, offset, value)

    @rule(key=KEYS)
    def strlen(self, key):
        self.diff.check("STRLEN", key)

    @rule(a=KEYS, b=KEYS, opts=st.sampled_from([(), ("LEN",), ("IDX",), ("IDX", "WITHMATCHLEN"),
                                                ("IDX", "MINMATCHLEN", "2")]))
    def lcs(self, a, b, opts):
        self.diff.check("LCS", a, b, *opts)

    @rule(key=KEYS)
    def encoding_and_ttl(self, key):
        self.diff.check("OBJECT", "ENCODING", key)
        self.diff.check("TTL", key)
        self.diff.check("TYPE", key)

    @rule(key=KEYS)
    def make_hash(self, key):
        self.diff.check("HSET", key, "f", "v")

    @rule(key=KEYS)
    def delete(self, key):
        self.diff.check("DEL", key)


class StringMachineResp3(StringMachine):
    RESP = 3


@pytest.mark.parametrize("machine", [StringMachine, StringMachineResp3], ids=["resp2", "resp3"])
def test_string_machine(redis_server, machine):
    run_state_machine_as_test(machine)


def test_lcs_random_strings(diff):
    import random
    r = random.Random(7)
    for _ in range(40):
        a = "".join(r.choice("abc") for _ in range(r.randrange(60)))
        b = "".join(r.choice("abcd") for _ in range(r.randrange(60)))
        diff.check("MSET", "a", a, "b", b)
        for opts in [(), ("LEN",), ("IDX", "WITHMATCHLEN"), ("IDX", "MINMATCHLEN", "3")]:
            diff.check("LCS", "a", "b", *opts)
