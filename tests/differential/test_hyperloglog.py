"""HyperLogLog vs redis-server: the HLL strings must be byte-identical (but for the 8 cached-cardinality bytes,
which Redis's PFCOUNT rewrites and memdb's doesn't), counts equal, and values moved with GET/SET between the two
systems must count the same in both directions."""
import random

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from tests.differential.harness import Differential, MemdbInstance, oracle_server


def without_cache(value):
    """An HLL string minus its cached cardinality bytes (8..15)."""
    if isinstance(value, bytes) and value[:4] == b"HYLL":
        return value[:8] + value[16:]
    return value


def check_same_bytes(d, key):
    d.check("GET", key, normalize=without_cache)


CASES = {
    "basics": [
        ("PFADD", "h"), ("PFADD", "h"), ("GET", "h"), ("PFCOUNT", "h"), ("PFADD", "h", "a", "b", "c"),
        ("PFADD", "h", "a"), ("PFCOUNT", "h"), ("PFCOUNT", "nokey"), ("PFCOUNT", "h", "nokey"),
        ("PFADD", "g", "c", "d"), ("PFCOUNT", "h", "g"), ("PFMERGE", "m", "h", "g"), ("PFCOUNT", "m"),
        ("PFMERGE", "e"), ("GET", "e"), ("PFMERGE", "h"), ("PFCOUNT", "h"), ("OBJECT", "ENCODING", "h"),
        ("TYPE", "h"), ("PFMERGE", "nokey2", "nokey3"), ("GET", "nokey2"),
    ],
    "errors": [
        ("SET", "s", "hello world, this is not an hll"), ("PFADD", "s", "a"), ("PFCOUNT", "s"),
        ("PFCOUNT", "s", "h"), ("PFMERGE", "s"), ("PFMERGE", "d", "s"), ("EXISTS", "d"), ("HSET", "x", "f", "v"),
        ("PFADD", "x", "a"), ("PFCOUNT", "x"), ("PFMERGE", "d", "x"), ("SET", "i", "12345"), ("PFADD", "i", "a"),
        ("SET", "short", "HYLL"), ("PFADD", "short", "a"),
        ("SET", "badenc", "HYLL\x02" + "\x00" * 11 + "\x7f\xff"), ("PFADD", "badenc", "a"),
        ("SET", "baddense", "HYLL\x00" + "\x00" * 11 + "\x00" * 10), ("PFCOUNT", "baddense"),
        ("SET", "badsparse", "HYLL\x01" + "\x00" * 7 + "\x80" + "\x00" * 3 + "\x7f\xfe"), ("PFCOUNT", "badsparse"),
        ("PFADD", "badsparse", "a"), ("PFCOUNT", "badsparse", "nokey"), ("PFMERGE", "d", "badsparse"),
        ("SET", "longsparse", "HYLL\x01" + "\x00" * 7 + "\x80" + "\x00" * 3 + "\x7f\xff\x7f\xff"),
        ("PFCOUNT", "longsparse"), ("PFCOUNT", "longsparse", "nokey"), ("PFADD", "longsparse", "x", "y"),
        ("SET", "cached", "HYLL\x01" + "\x00" * 3 + "\x2a" + "\x00" * 7 + "\x7f\xff"), ("PFCOUNT", "cached"),
        ("PFCOUNT", "cached", "nokey"),
    ],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_examples(diff, case):
    for command in CASES[case]:
        command = tuple(c.encode("latin-1") for c in command)
        diff.check(*command, normalize=without_cache)


def _elements(rnd, n):
    return [("e%d" % rnd.randrange(10 ** 6)).encode() for _ in range(n)]


@pytest.mark.parametrize("sizes", [[1] * 20, [5, 40, 200], [3000, 20000]], ids=["tiny", "sparse", "dense"])
def test_same_bytes_and_counts(diff, sizes):
    """Sparse growth, promotion at 3000 bytes or a register > 32, dense updates: identical bytes."""
    rnd = random.Random(len(sizes))
    for size in sizes:
        diff.check("PFADD", "h", *_elements(rnd, size))
        check_same_bytes(diff, "h")
        diff.check("PFCOUNT", "h")
    diff.check("PFADD", "g", *_elements(rnd, 50))
    diff.check("PFCOUNT", "h", "g")
    diff.check("PFMERGE", "g", "h")
    check_same_bytes(diff, "g")
    diff.check("PFCOUNT", "g")


def test_merge_sparse_targets(diff):
    rnd = random.Random(7)
    for i in range(4):
        diff.check("PFADD", f"s{i}", *_elements(rnd, 30 * (i + 1)))
    diff.check("PFMERGE", "t", "s0", "s1")
    check_same_bytes(diff, "t")
    diff.check("PFMERGE", "t", "s2", "s3")
    check_same_bytes(diff, "t")
    diff.check("PFMERGE", "s0", "s1", "s2", "s3", "t")
    check_same_bytes(diff, "s0")
    diff.check("PFCOUNT", "s0", "s1", "s2", "s3", "t")
    diff.check("PFCOUNT", "s0")


@pytest.mark.parametrize("size", [0, 10, 500, 5000])
def test_cross_system_round_trip(diff, size):
    """GET an HLL from redis-server, SET it into memdb (and the reverse): same counts, same further updates."""
    rnd = random.Random(size)
    elements = _elements(rnd, size)
    diff.redis.call("PFADD", "r", *elements)
    diff.memdb.call("PFADD", "m", *elements)
    from_redis = diff.redis.call("GET", "r").value
    from_memdb = diff.memdb.call("GET", "m").value
    assert diff.memdb.call("SET", "r", from_redis).value == b"OK"
    assert diff.redis.call("SET", "m", from_memdb).value == b"OK"
    for key in ("r", "m"):
        diff.check("PFCOUNT", key)
        more = _elements(rnd, 20)
        diff.check("PFADD", key, *more)
        check_same_bytes(diff, key)
        diff.check("PFCOUNT", key)
    diff.check("PFCOUNT", "r", "m")


KEYS = st.sampled_from(["h1", "h2", "h3", "s"])
ELEMENTS = st.lists(st.integers(0, 400).map(str), max_size=30)


class HllMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.diff = Differential(oracle_server().connect(), MemdbInstance(seed=11))
        self.diff.flush()
        self.diff.check("SET", "s", "x" * 20)

    def teardown(self):
        self.diff.redis.close()

    @rule(key=KEYS, elements=ELEMENTS)
    def pfadd(self, key, elements):
        self.diff.check("PFADD", key, *elements)

    @rule(keys=st.lists(KEYS, min_size=1, max_size=3))
    def pfcount(self, keys):
        self.diff.check("PFCOUNT", *keys)

    @rule(dest=KEYS, sources=st.lists(KEYS, max_size=3))
    def pfmerge(self, dest, sources):
        self.diff.check("PFMERGE", dest, *sources)

    @rule(key=KEYS)
    def get(self, key):
        check_same_bytes(self.diff, key)

    @rule(key=KEYS)
    def delete(self, key):
        self.diff.check("DEL", key)


def test_hll_machine(redis_server):
    run_state_machine_as_test(HllMachine)
