"""Sorted-set commands vs redis-server: examples (ZADD option combos and errors, range parsing, score formatting,
encodings, set algebra with weights), then a hypothesis state machine over a few keys/members/scores."""
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from memdb.commands.zset_type import ZSetValue
from tests.differential.harness import Differential, MemdbInstance, oracle_server, sort_list

CASES = {
    "zadd": [
        ("ZADD", "z", "1", "a", "2", "b"), ("ZADD", "z", "NX", "5", "a", "3", "c"), ("ZADD", "z", "XX", "5", "a", "9", "d"),
        ("ZADD", "z", "XX", "CH", "6", "a", "2", "b"), ("ZADD", "z", "GT", "CH", "1", "a", "7", "b"),
        ("ZADD", "z", "LT", "CH", "1", "a", "70", "b"), ("ZADD", "z", "GT", "LT", "1", "a"), ("ZADD", "z", "NX", "XX", "1", "a"),
        ("ZADD", "z", "NX", "GT", "1", "a"), ("ZADD", "z", "NX", "LT", "1", "a"), ("ZADD", "z", "XX", "GT", "CH", "8", "b"),
        ("ZADD", "z", "INCR", "1", "a", "2", "b"), ("ZADD", "z", "INCR", "2.5", "a"), ("ZADD", "z", "INCR", "NX", "2.5", "a"),
        ("ZADD", "z", "INCR", "XX", "1", "zz"), ("ZADD", "z", "INCR", "GT", "-1", "a"), ("ZADD", "z", "1"),
        ("ZADD", "z", "1", "a", "2"), ("ZADD", "z", "x", "a"), ("ZADD", "z", "nan", "a"), ("ZADD", "z", "FOO", "1", "a"),
        ("ZADD", "z", "1", "a", "x", "b"), ("ZADD", "z", "inf", "i"), ("ZADD", "z", "INCR", "-inf", "i"),
        ("ZADD", "z", "-inf", "j"), ("ZADD", "z", "+inf", "k"), ("ZADD", "z", "0x10", "h"), ("ZADD", "z", "1e400", "o"),
        ("ZADD", "z", " 1", "o"), ("ZADD", "z", "1.5e3", "p"), ("ZRANGE", "z", "0", "-1", "WITHSCORES"),
        ("ZADD", "nokey", "XX", "1", "a"), ("EXISTS", "nokey"), ("ZADD", "nokey", "XX", "INCR", "1", "a"),
        ("ZINCRBY", "z", "1", "a"), ("ZINCRBY", "z", "x", "a"), ("ZINCRBY", "z", "1", "new"), ("ZINCRBY", "z", "-inf", "k"),
        ("ZINCRBY", "z", "nx", "a"), ("ZINCRBY", "z2", "0.1", "m"), ("ZINCRBY", "z2", "0.2", "m"),
        ("ZSCORE", "z2", "m"), ("SET", "s", "v"), ("ZADD", "s", "1", "a"), ("ZINCRBY", "s", "1", "a"),
        ("ZADD", "s", "x", "a"), ("ZADD", "s", "XX", "NX", "1", "a"),
    ],
    "scores": [
        ("ZADD", "z", "1.1", "a", "1", "b", "1e20", "c", "0.1", "e", "-0", "f", "3.0000000000000004", "g", "1e-5", "h",
         "123456789012345678", "i", "-1.5", "j"),
        ("ZRANGE", "z", "0", "-1", "WITHSCORES"), ("ZSCORE", "z", "f"), ("ZSCORE", "z", "a"), ("ZSCORE", "z", "nope"),
        ("ZSCORE", "nokey", "a"), ("ZMSCORE", "z", "a", "nope", "c"), ("ZMSCORE", "nokey", "a", "b"),
        ("ZINCRBY", "z", "-0.0", "b"), ("ZADD", "big", *[p for i in range(130) for p in (str(i), f"m{i}")]),
        ("OBJECT", "ENCODING", "big"), ("ZADD", "big", "-0", "neg0"), ("ZSCORE", "big", "neg0"),
        ("ZRANGE", "big", "0", "2", "WITHSCORES"), ("ZRANK", "z", "c"), ("ZREVRANK", "z", "c"), ("ZRANK", "z", "x"),
        ("ZRANK", "nokey", "x"), ("ZCARD", "z"), ("ZCARD", "nokey"), ("ZSCAN", "z", "0"),
    ],
    "ranges": [
        ("ZADD", "z", "1", "a", "2", "b", "2", "c", "3", "d", "5", "e", "inf", "f", "-inf", "g"),
        ("ZRANGE", "z", "1", "3"), ("ZRANGE", "z", "-2", "-1", "WITHSCORES"), ("ZRANGE", "z", "5", "1"),
        ("ZRANGE", "z", "0", "100", "REV"), ("ZREVRANGE", "z", "0", "1", "WITHSCORES"), ("ZRANGE", "z", "x", "1"),
        ("ZRANGEBYSCORE", "z", "2", "3"), ("ZRANGEBYSCORE", "z", "(2", "3"), ("ZRANGEBYSCORE", "z", "-inf", "+inf"),
        ("ZRANGEBYSCORE", "z", "(1", "(5", "WITHSCORES"), ("ZRANGEBYSCORE", "z", "-inf", "inf", "LIMIT", "1", "2"),
        ("ZRANGEBYSCORE", "z", "-inf", "inf", "LIMIT", "-1", "2"), ("ZRANGEBYSCORE", "z", "-inf", "inf", "LIMIT", "2", "-1"),
        ("ZRANGEBYSCORE", "z", "-inf", "inf", "LIMIT", "7", "1"), ("ZRANGEBYSCORE", "z", "-inf", "inf", "LIMIT", "2", "0"),
        ("ZRANGEBYSCORE", "z", "x", "1"), ("ZRANGEBYSCORE", "z", "(", "1"), ("ZRANGEBYSCORE", "z", "", "(5"),
        ("ZRANGEBYSCORE", "z", "nan", "1"), ("ZRANGEBYSCORE", "z", "5", "1"), ("ZRANGEBYSCORE", "z", "(2", "2"),
        ("ZRANGEBYSCORE", "z", "0", "1", "LIMIT", "1"), ("ZRANGEBYSCORE", "z", "0", "1", "REV"),
        ("ZREVRANGEBYSCORE", "z", "3", "2"), ("ZREVRANGEBYSCORE", "z", "+inf", "-inf", "WITHSCORES", "LIMIT", "1", "3"),
        ("ZREVRANGEBYSCORE", "z", "2", "3"), ("ZRANGE", "z", "(1", "5", "BYSCORE"), ("ZRANGE", "z", "5", "(1", "BYSCORE", "REV"),
        ("ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"), ("ZRANGE", "z", "0", "-1", "LIMIT", "0", "-1"),
        ("ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"), ("ZRANGE", "z", "0", "1", "BYSCORE", "BYLEX"),
        ("ZRANGE", "z", "0", "1", "REV", "REV"), ("ZRANGE", "z", "0", "1", "LIMIT", "x", "1", "BYSCORE"),
        ("ZRANGE", "nokey", "0", "1"), ("ZRANGE", "nokey", "x", "1"), ("ZRANGEBYSCORE", "nokey", "x", "1"),
        ("ZCOUNT", "z", "2", "3"), ("ZCOUNT", "z", "(2", "+inf"), ("ZCOUNT", "z", "x", "1"), ("ZCOUNT", "nokey", "0", "1"),
        ("ZREVRANGE", "z", "0", "1", "LIMIT", "0", "1"), ("ZRANGE", "z", "0", "1", "WITHSCORES", "WITHSCORES"),
    ],
    "lex": [
        ("ZADD", "z", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e", "0", "aa"),
        ("ZRANGEBYLEX", "z", "-", "+"), ("ZRANGEBYLEX", "z", "[b", "(d"), ("ZRANGEBYLEX", "z", "(a", "[c"),
        ("ZRANGEBYLEX", "z", "+", "-"), ("ZRANGEBYLEX", "z", "-", "-"), ("ZRANGEBYLEX", "z", "[a", "[a"),
        ("ZRANGEBYLEX", "z", "(a", "(a"), ("ZRANGEBYLEX", "z", "[c", "[b"), ("ZRANGEBYLEX", "z", "a", "b"),
        ("ZRANGEBYLEX", "z", "-", "+", "LIMIT", "1", "2"), ("ZRANGEBYLEX", "z", "-", "+", "LIMIT", "-1", "2"),
        ("ZRANGEBYLEX", "z", "-", "+", "LIMIT", "5", "-1"), ("ZRANGEBYLEX", "z", "-", "+", "WITHSCORES"),
        ("ZRANGEBYLEX", "z", "[", "+"), ("ZRANGEBYLEX", "z", "", "+"), ("ZRANGEBYLEX", "z", "-a", "+"),
        ("ZREVRANGEBYLEX", "z", "+", "-"), ("ZREVRANGEBYLEX", "z", "(d", "[b"), ("ZREVRANGEBYLEX", "z", "+", "-", "LIMIT", "1", "1"),
        ("ZRANGE", "z", "[b", "[d", "BYLEX"), ("ZRANGE", "z", "[d", "[b", "BYLEX", "REV", "LIMIT", "0", "2"),
        ("ZLEXCOUNT", "z", "-", "+"), ("ZLEXCOUNT", "z", "[b", "(e"), ("ZLEXCOUNT", "z", "x", "+"),
        ("ZLEXCOUNT", "nokey", "-", "+"), ("ZREMRANGEBYLEX", "z", "[aa", "(c"), ("ZRANGE", "z", "0", "-1"),
        ("ZREMRANGEBYLEX", "z", "x", "y"), ("ZREMRANGEBYLEX", "z", "-", "+"), ("EXISTS", "z"),
        ("ZADD", "m", "1", "b", "2", "a", "3", "c"), ("ZRANGEBYLEX", "m", "-", "[b"), ("ZLEXCOUNT", "m", "[a", "+"),
    ],
    "remove": [
        ("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"), ("ZREM", "z", "a", "x", "a"), ("ZREM", "nokey", "a"),
        ("ZREMRANGEBYRANK", "z", "0", "0"), ("ZREMRANGEBYRANK", "z", "-1", "-1"), ("ZREMRANGEBYRANK", "z", "5", "10"),
        ("ZREMRANGEBYRANK", "z", "x", "1"), ("ZREMRANGEBYRANK", "nokey", "0", "1"), ("ZRANGE", "z", "0", "-1"),
        ("ZREMRANGEBYSCORE", "z", "(3", "4"), ("ZREMRANGEBYSCORE", "z", "x", "4"), ("ZREMRANGEBYSCORE", "z", "10", "1"),
        ("ZREMRANGEBYSCORE", "z", "-inf", "+inf"), ("EXISTS", "z"), ("SET", "s", "v"), ("ZREM", "s", "a"),
        ("ZREMRANGEBYRANK", "s", "0", "1"), ("ZREMRANGEBYSCORE", "s", "0", "1"), ("ZREMRANGEBYLEX", "s", "-", "+"),
        ("ZREMRANGEBYLEX", "s", "x", "+"), ("ZRANGE", "s", "0", "1"), ("ZCARD", "s"), ("ZSCORE", "s", "a"),
        ("ZMSCORE", "s", "a"), ("ZRANK", "s", "a"), ("ZCOUNT", "s", "0", "1"), ("ZLEXCOUNT", "s", "-", "+"),
    ],
    "rangestore": [
        ("ZADD", "z", "1", "a", "2", "b", "3", "c"), ("ZRANGESTORE", "d", "z", "0", "1"), ("ZRANGE", "d", "0", "-1", "WITHSCORES"),
        ("ZRANGESTORE", "d", "z", "(1", "+inf", "BYSCORE", "LIMIT", "0", "1"), ("ZRANGE", "d", "0", "-1", "WITHSCORES"),
        ("ZRANGESTORE", "d", "z", "[c", "-", "BYLEX", "REV"), ("ZRANGE", "d", "0", "-1"),
        ("ZRANGESTORE", "d", "z", "5", "6"), ("EXISTS", "d"), ("SET", "d", "v"), ("ZRANGESTORE", "d", "nokey", "0", "1"),
        ("EXISTS", "d"), ("ZRANGESTORE", "d", "z", "0", "1", "WITHSCORES"), ("SET", "s", "v"),
        ("ZRANGESTORE", "d", "s", "0", "1"), ("ZRANGESTORE", "s", "z", "0", "-1"), ("TYPE", "s"),
        ("OBJECT", "ENCODING", "s"),
    ],
    "algebra": [
        ("ZADD", "z1", "1", "a", "2", "b", "3", "c"), ("ZADD", "z2", "10", "b", "20", "c", "30", "d"),
        ("SADD", "set", "a", "d", "x"), ("ZUNION", "2", "z1", "z2", "WITHSCORES"), ("ZINTER", "2", "z1", "z2", "WITHSCORES"),
        ("ZDIFF", "2", "z1", "z2", "WITHSCORES"), ("ZUNION", "3", "z1", "z2", "set", "WITHSCORES"),
        ("ZINTER", "2", "z1", "set", "WITHSCORES"), ("ZUNION", "2", "z1", "z2", "WEIGHTS", "2", "0.5", "WITHSCORES"),
        ("ZUNION", "2", "z1", "z2", "AGGREGATE", "MIN", "WITHSCORES"), ("ZINTER", "2", "z1", "z2", "AGGREGATE", "max", "WITHSCORES"),
        ("ZUNION", "2", "z1", "z2", "WEIGHTS", "1"), ("ZUNION", "2", "z1", "z2", "WEIGHTS", "1", "x"),
        ("ZUNION", "2", "z1", "z2", "AGGREGATE", "AVG"), ("ZUNION", "2", "z1", "z2", "AGGREGATE"),
        ("ZDIFF", "2", "z1", "z2", "WEIGHTS", "1", "1"), ("ZDIFF", "1", "nokey"), ("ZINTER", "2", "z1", "nokey"),
        ("ZUNION", "0", "z1"), ("ZUNION", "-1", "z1"), ("ZUNION", "x", "z1"), ("ZUNION", "3", "z1", "z2"),
        ("ZUNION", "1", "z1", "FOO"), ("ZUNIONSTORE", "d", "2", "z1", "z2"), ("ZRANGE", "d", "0", "-1", "WITHSCORES"),
        ("ZUNIONSTORE", "d", "2", "z1", "z2", "WITHSCORES"), ("ZINTERSTORE", "d", "2", "z1", "z2", "WEIGHTS", "-1", "1"),
        ("ZRANGE", "d", "0", "-1", "WITHSCORES"), ("ZDIFFSTORE", "d", "2", "z1", "z1"), ("EXISTS", "d"),
        ("ZDIFFSTORE", "d", "2", "z1", "z2"), ("OBJECT", "ENCODING", "d"), ("ZINTERSTORE", "d", "0", "z1"),
        ("SET", "str", "v"), ("ZUNION", "2", "z1", "str"), ("ZUNION", "2", "str", "z1", "BADOPT"),
        ("ZINTERSTORE", "str2", "2", "nokey", "str"), ("ZINTERCARD", "2", "z1", "z2"), ("ZINTERCARD", "2", "z1", "z2", "LIMIT", "1"),
        ("ZINTERCARD", "2", "z1", "z2", "LIMIT", "-1"), ("ZINTERCARD", "2", "z1", "z2", "WITHSCORES"),
        ("ZINTERCARD", "0", "z1"), ("ZINTERCARD", "3", "z1"), ("ZINTERCARD", "1", "set"),
        ("ZADD", "inf1", "inf", "a", "-inf", "b"), ("ZADD", "inf2", "-inf", "a", "inf", "b"),
        ("ZUNION", "2", "inf1", "inf2", "WITHSCORES"), ("ZINTER", "2", "inf1", "inf2", "WEIGHTS", "0", "1", "WITHSCORES"),
        ("ZUNION", "2", "inf1", "inf2", "WEIGHTS", "0", "0", "WITHSCORES"),
        ("ZADD", "f1", "0.1", "a"), ("ZADD", "f2", "0.2", "a", "1", "b", "2", "c"), ("ZADD", "f3", "0.3", "a", "1", "b"),
        ("ZUNION", "3", "f2", "f3", "f1", "WITHSCORES"), ("ZINTER", "3", "f1", "f2", "f3", "WITHSCORES"),
    ],
    "random-pop": [
        ("ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"), ("ZPOPMIN", "z"), ("ZPOPMAX", "z"), ("ZPOPMIN", "z", "0"),
        ("ZPOPMIN", "z", "-1"), ("ZPOPMIN", "z", "x"), ("ZPOPMIN", "z", "1", "2"), ("ZPOPMAX", "z", "5"), ("EXISTS", "z"),
        ("ZPOPMIN", "nokey"), ("ZPOPMIN", "nokey", "2"), ("SET", "s", "v"), ("ZPOPMIN", "s", "0"), ("ZPOPMIN", "s", "x"),
        ("ZADD", "z", "1", "a", "2", "b", "3", "c"), ("ZADD", "y", "1", "q"), ("ZMPOP", "2", "nokey", "z", "MIN"),
        ("ZMPOP", "2", "z", "y", "MAX", "COUNT", "5"), ("ZMPOP", "1", "z", "MIN"), ("ZMPOP", "0", "z", "MIN"),
        ("ZMPOP", "1", "y", "FOO"), ("ZMPOP", "1", "y", "MIN", "COUNT", "0"), ("ZMPOP", "1", "y", "MIN", "COUNT", "x"),
        ("ZMPOP", "2", "s", "y", "MIN"), ("ZMPOP", "1", "y", "MIN", "COUNT"), ("ZMPOP", "3", "y", "MIN"),
        ("ZRANDMEMBER", "nokey"), ("ZRANDMEMBER", "nokey", "3"), ("ZRANDMEMBER", "y", "0"), ("ZRANDMEMBER", "y", "x"),
        ("ZRANDMEMBER", "y", "1", "FOO"), ("ZRANDMEMBER", "y", "1", "WITHSCORES", "x"),
        ("ZRANDMEMBER", "y", "-9223372036854775807", "WITHSCORES"), ("ZRANDMEMBER", "y", "-9223372036854775808"),
        ("ZRANDMEMBER", "y", "5", "WITHSCORES"), ("ZRANDMEMBER", "y", "-3", "WITHSCORES"), ("ZRANDMEMBER", "y"),
        ("ZRANDMEMBER", "s"), ("ZRANDMEMBER", "s", "1"),
        ("ZADD", "b", "1", "a", "2", "b"), ("BZPOPMIN", "nokey", "b", "0"), ("BZPOPMAX", "b", "1.5"), ("EXISTS", "b"),
        ("BZPOPMIN", "b", "-1"), ("BZPOPMIN", "b", "x"), ("BZPOPMIN", "s", "0"), ("ZADD", "b", "1", "a", "2", "b"),
        ("BZMPOP", "0", "1", "b", "MAX", "COUNT", "9"), ("BZMPOP", "-1", "x", "b", "MIN"), ("BZMPOP", "-1", "1", "b", "MIN"),
        ("BZMPOP", "0", "1", "s", "MIN"),
    ],
    "zscan": [
        ("ZADD", "z", "1", "a1", "2.5", "a2", "inf", "b1"), ("ZSCAN", "z", "0"), ("ZSCAN", "z", "0", "MATCH", "a*"),
        ("ZSCAN", "z", "7"), ("ZSCAN", "z", "x"), ("ZSCAN", "nokey", "0", "FOO"), ("ZSCAN", "z", "0", "COUNT", "0"),
        ("ZSCAN", "z", "0", "NOVALUES"),
    ],
}

RESP3_CASES = ["scores", "ranges", "algebra", "random-pop", "zadd"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_examples(diff, case):
    for command in CASES[case]:
        diff.check(*command, normalize=sort_list if command[0] == "ZRANDMEMBER" else None)


@pytest.mark.parametrize("case", RESP3_CASES)
def test_examples_resp3(diff3, case):
    for command in CASES[case]:
        diff3.check(*command, normalize=sort_list if command[0] == "ZRANDMEMBER" else None)


def test_encoding_conversions(diff):
    d = diff
    d.check("ZADD", "z", "1", "a")
    d.check("OBJECT", "ENCODING", "z")
    d.check("ZADD", "z", "2", "x" * 65)
    d.check("OBJECT", "ENCODING", "z")
    d.check("ZREM", "z", "x" * 65)
    d.check("OBJECT", "ENCODING", "z")
    d.check("ZADD", "long", "1", "y" * 65, "2", "b")
    d.check("OBJECT", "ENCODING", "long")
    d.check("ZADD", "many", *[p for i in range(129) for p in (str(i), f"m{i}")])
    d.check("OBJECT", "ENCODING", "many")
    d.check("ZRANGESTORE", "small", "many", "0", "9")
    d.check("OBJECT", "ENCODING", "small")
    d.check("ZRANGESTORE", "large", "many", "0", "-1")
    d.check("OBJECT", "ENCODING", "large")
    d.check("ZUNIONSTORE", "u", "1", "many")
    d.check("OBJECT", "ENCODING", "u")
    d.check("ZREMRANGEBYRANK", "u", "0", "100")
    d.check("ZINTERSTORE", "i", "1", "u")
    d.check("OBJECT", "ENCODING", "i")
    d.check("OBJECT", "ENCODING", "u")
    d.check("ZADD", "n0", "-0", "a")
    d.check("ZSCORE", "n0", "a")
    d.check("ZUNION", "1", "many", "WEIGHTS", "-0", "WITHSCORES")


def test_large_zset_ranges_and_scan(diff):
    members = [p for i in range(300) for p in (str(i % 17), f"m{i:03d}")]
    diff.check("ZADD", "z", *members)
    diff.check("ZADD", "lex", *[p for i in range(200) for p in ("0", f"k{i:03d}")])
    for command in [("ZRANGE", "z", "10", "20", "WITHSCORES"), ("ZRANGEBYSCORE", "z", "(3", "5", "LIMIT", "5", "10"),
                    ("ZREVRANGEBYSCORE", "z", "5", "(3", "WITHSCORES"), ("ZCOUNT", "z", "3", "(9"),
                    ("ZRANK", "z", "m150"), ("ZREVRANK", "z", "m150"), ("ZRANGEBYLEX", "lex", "[k050", "(k060"),
                    ("ZREVRANGEBYLEX", "lex", "(k060", "[k050", "LIMIT", "2", "3"), ("ZLEXCOUNT", "lex", "(k100", "+"),
                    ("ZREMRANGEBYLEX", "lex", "[k190", "+"), ("ZREMRANGEBYSCORE", "z", "16", "16"),
                    ("ZREMRANGEBYRANK", "z", "-5", "-1"), ("ZCARD", "z")]:
        diff.check(*command)
    results = []
    for conn in (diff.redis, diff.memdb):
        cursor, seen = b"0", []
        while True:
            cursor, items = conn.call("ZSCAN", "z", cursor, "COUNT", "20").value
            seen.extend(zip(items[::2], items[1::2]))
            if cursor == b"0":
                break
        results.append(sorted(set(seen)))
    assert results[0] == results[1]


KEYS = st.sampled_from(["z1", "z2", "z3", "str"])
MEMBERS = st.sampled_from(["a", "b", "c", "d", "m" * 65])
SCORES = st.sampled_from(["1", "2", "-1.5", "0", "inf", "-inf", "0.1", "(1", "x"])
BOUNDS = st.sampled_from(["-inf", "+inf", "0", "1", "(1", "2", "(0.1", "x"])
LEX = st.sampled_from(["-", "+", "[a", "(b", "[c", "(d", "a"])
INDEXES = st.sampled_from(["0", "1", "-1", "2", "-3", "10"])


class ZSetMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.diff = Differential(oracle_server().connect(), MemdbInstance(seed=9))
        self.diff.flush()
        self.diff.check("SET", "str", "string")

    def teardown(self):
        self.diff.redis.close()

    @rule(key=KEYS, options=st.lists(st.sampled_from(["NX", "XX", "GT", "LT", "CH", "INCR"]), max_size=2, unique=True),
          pairs=st.lists(st.tuples(SCORES, MEMBERS), min_size=1, max_size=3))
    def zadd(self, key, options, pairs):
        self.diff.check("ZADD", key, *options, *[part for pair in pairs for part in pair])

    @rule(key=KEYS, amount=SCORES, member=MEMBERS)
    def zincrby(self, key, amount, member):
        self.diff.check("ZINCRBY", key, amount, member)

    @rule(key=KEYS, members=st.lists(MEMBERS, min_size=1, max_size=3))
    def zrem(self, key, members):
        self.diff.check("ZMSCORE", key, *members)
        self.diff.check("ZREM", key, *members)

    @rule(key=KEYS, member=MEMBERS)
    def point_reads(self, key, member):
        for cmd in ("ZSCORE", "ZRANK", "ZREVRANK"):
            self.diff.check(cmd, key, member)

    @rule(key=KEYS, lo=BOUNDS, hi=BOUNDS, options=st.lists(st.sampled_from(["WITHSCORES", "LIMIT"]), max_size=2,
                                                            unique=True),
          cmd=st.sampled_from(["ZRANGEBYSCORE", "ZREVRANGEBYSCORE", "ZCOUNT", "ZREMRANGEBYSCORE"]))
    def score_range(self, key, lo, hi, options, cmd):
        extra = []
        if cmd in ("ZRANGEBYSCORE", "ZREVRANGEBYSCORE"):
            for opt in options:
                extra += ["WITHSCORES"] if opt == "WITHSCORES" else ["LIMIT", "1", "2"]
        self.diff.check(cmd, key, lo, hi, *extra)

    @rule(key=KEYS, lo=LEX, hi=LEX,
          cmd=st.sampled_from(["ZRANGEBYLEX", "ZREVRANGEBYLEX", "ZLEXCOUNT", "ZREMRANGEBYLEX"]))
    def lex_range(self, key, lo, hi, cmd):
        value = self.diff.memdb.keyspace.dbs[0].data.get(key.encode())
        if isinstance(value, ZSetValue) and not value.listpack and len(set(value.scores.values())) > 1:
            # Redis's skiplist answer with mixed scores depends on its random node levels: compare kinds only
            # (and don't let ZREMRANGEBYLEX make the two sides diverge)
            if cmd == "ZREMRANGEBYLEX":
                return
            expected, actual = self.diff.both(cmd, key, lo, hi)
            assert expected.kind == actual.kind
            return
        self.diff.check(cmd, key, lo, hi)

    @rule(key=KEYS, start=INDEXES, stop=INDEXES, rev=st.booleans(), withscores=st.booleans())
    def rank_range(self, key, start, stop, rev, withscores):
        self.diff.check("ZRANGE", key, start, stop, *(["REV"] if rev else []), *(["WITHSCORES"] if withscores else []))

    @rule(key=KEYS, start=INDEXES, stop=INDEXES)
    def zremrangebyrank(self, key, start, stop):
        self.diff.check("ZREMRANGEBYRANK", key, start, stop)

    @rule(cmd=st.sampled_from(["ZUNION", "ZINTER", "ZDIFF"]), keys=st.lists(KEYS, min_size=1, max_size=3),
          weights=st.booleans(), aggregate=st.sampled_from([None, "SUM", "MIN", "MAX"]))
    def algebra(self, cmd, keys, weights, aggregate):
        extra = []
        if weights:
            extra += ["WEIGHTS"] + ["2", "-1", "0.5"][:len(keys)]
        if aggregate:
            extra += ["AGGREGATE", aggregate]
        self.diff.check(cmd, len(keys), *keys, *extra, "WITHSCORES")

    @rule(cmd=st.sampled_from(["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]), dst=KEYS,
          keys=st.lists(KEYS, min_size=1, max_size=3))
    def algebra_store(self, cmd, dst, keys):
        self.diff.check(cmd, dst, len(keys), *keys)

    @rule(dst=KEYS, src=KEYS, lo=BOUNDS, hi=BOUNDS)
    def zrangestore(self, dst, src, lo, hi):
        self.diff.check("ZRANGESTORE", dst, src, lo, hi, "BYSCORE")

    @rule(cmd=st.sampled_from(["ZPOPMIN", "ZPOPMAX"]), key=KEYS, count=st.sampled_from([None, "0", "1", "3"]))
    def zpop(self, cmd, key, count):
        self.diff.check(cmd, key, *([count] if count else []))

    @rule(keys=st.lists(KEYS, min_size=1, max_size=3), where=st.sampled_from(["MIN", "MAX"]),
          count=st.sampled_from([None, "1", "2"]))
    def zmpop(self, keys, where, count):
        self.diff.check("ZMPOP", len(keys), *keys, where, *(["COUNT", count] if count else []))

    @rule(key=KEYS)
    def meta(self, key):
        self.diff.check("ZCARD", key)
        self.diff.check("ZRANGE", key, "0", "-1", "WITHSCORES")
        self.diff.check("OBJECT", "ENCODING", key)
        self.diff.check("ZSCAN", key, "0", normalize=_scan_pairs)


def _scan_pairs(value):
    """A skiplist's ZSCAN order is Redis's hash order: compare the (member, score) pairs unordered."""
    if isinstance(value, list) and len(value) == 2 and isinstance(value[1], list):
        return [value[0], sorted(zip(value[1][::2], value[1][1::2]))]
    return value


def test_zset_machine(redis_server):
    run_state_machine_as_test(ZSetMachine)
