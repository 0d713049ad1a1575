"""The blocking list/zset handlers: served at once when they can, else `Blocked(keys, timeout_ms)` with the keys to
watch and a relative timeout (None = forever); errors (timeout, syntax, WRONGTYPE) are raised before blocking."""
import random

import pytest

from memdb.commands import dispatch
from memdb.commands.spec import NULL_ARRAY, Blocked, CommandError, Context, Double
from memdb.keyspace import Keyspace


def run(keyspace, *args, resp=2):
    ctx = Context(keyspace=keyspace, db=keyspace.dbs[0], now_ms=1_000_000, rng=random.Random(1), resp=resp)
    return dispatch.execute(ctx, [a.encode() if isinstance(a, str) else a for a in args])


@pytest.fixture
def ks():
    return Keyspace()


@pytest.mark.parametrize("args, keys, timeout_ms", [
    (("BLPOP", "a", "b", "0"), (b"a", b"b"), None),
    (("BRPOP", "a", "1.5"), (b"a",), 1500),
    (("BLPOP", "a", "0.0001"), (b"a",), None),     # truncated to 0 ms: forever, as Redis
    (("BLMOVE", "src", "dst", "LEFT", "RIGHT", "2"), (b"src",), 2000),
    (("BRPOPLPUSH", "src", "dst", "0"), (b"src",), None),
    (("BLMPOP", "3", "2", "a", "b", "LEFT", "COUNT", "2"), (b"a", b"b"), 3000),
    (("BZPOPMIN", "z1", "z2", "0.5"), (b"z1", b"z2"), 500),
    (("BZPOPMAX", "z", "0"), (b"z",), None),
    (("BZMPOP", "1", "1", "z", "MAX"), (b"z",), 1000),
])
def test_blocks_when_nothing_to_pop(ks, args, keys, timeout_ms):
    reply = run(ks, *args)
    assert reply == Blocked(keys, timeout_ms)
    assert reply.timeout_reply is NULL_ARRAY
    assert ks.drain_modified() == []


def test_served_when_available_then_blocks(ks):
    run(ks, "RPUSH", "b", "x", "y")
    assert run(ks, "BLPOP", "a", "b", "0") == [b"b", b"x"]
    assert run(ks, "BRPOP", "a", "b", "0") == [b"b", b"y"]
    assert run(ks, "EXISTS", "b") == 0
    assert isinstance(run(ks, "BLPOP", "a", "b", "0"), Blocked)


def test_blmove_serves_and_rotates(ks):
    run(ks, "RPUSH", "l", "1", "2")
    assert run(ks, "BLMOVE", "l", "l", "LEFT", "RIGHT", "0") == b"1"
    assert run(ks, "LRANGE", "l", "0", "-1") == [b"2", b"1"]
    assert run(ks, "BRPOPLPUSH", "l", "m", "0") == b"1"
    assert run(ks, "LRANGE", "m", "0", "-1") == [b"1"]


def test_bzpop_replies(ks):
    run(ks, "ZADD", "z", "1", "a", "2", "b")
    assert run(ks, "BZPOPMIN", "nokey", "z", "0") == [b"z", b"a", Double(1.0)]
    assert run(ks, "BZMPOP", "0", "1", "z", "MAX", "COUNT", "5") == [b"z", [[b"b", Double(2.0)]]]
    assert run(ks, "EXISTS", "z") == 0


def test_blmpop_reply(ks):
    run(ks, "RPUSH", "l", "1", "2", "3")
    assert run(ks, "BLMPOP", "0", "2", "nokey", "l", "RIGHT", "COUNT", "2") == [b"l", [b"3", b"2"]]


@pytest.mark.parametrize("args, message", [
    (("BLPOP", "a", "-1"), "ERR timeout is negative"),
    (("BLPOP", "a", "x"), "ERR timeout is not a float or out of range"),
    (("BLPOP", "a", "inf"), "ERR timeout is negative"),
    (("BZPOPMIN", "a", "nan"), "ERR timeout is not a float or out of range"),
    (("BLMOVE", "a", "b", "UP", "LEFT", "x"), "ERR syntax error"),     # positions parsed before the timeout
    (("BLMPOP", "-1", "0", "a", "LEFT"), "ERR numkeys should be greater than 0"),
    (("BZMPOP", "-1", "1", "a", "MIDDLE"), "ERR syntax error"),
    (("BZMPOP", "-1", "1", "a", "MIN"), "ERR timeout is negative"),
])
def test_errors_before_blocking(ks, args, message):
    with pytest.raises(CommandError) as info:
        run(ks, *args)
    assert info.value.message == message


def test_wrongtype_is_not_blocked(ks):
    run(ks, "SET", "s", "v")
    for args in (("BLPOP", "nokey", "s", "0"), ("BZPOPMIN", "s", "0"), ("BLMOVE", "s", "d", "LEFT", "LEFT", "0"),
                 ("BLMPOP", "0", "1", "s", "LEFT"), ("BZMPOP", "0", "1", "s", "MIN")):
        with pytest.raises(CommandError) as info:
            run(ks, *args)
        assert info.value.message.startswith("WRONGTYPE")


def test_rerun_after_push_serves(ks):
    """What the node does: re-run the same command once a watched key was modified."""
    first = run(ks, "BLPOP", "q", "0")
    assert isinstance(first, Blocked)
    run(ks, "LPUSH", "q", "job")
    assert (0, b"q") in ks.drain_modified()
    assert run(ks, "BLPOP", "q", "0") == [b"q", b"job"]


def test_key_finders():
    from memdb.commands.table import COMMAND_TABLE
    finder = COMMAND_TABLE["blmpop"].key_positions
    assert finder([b"blmpop", b"0", b"2", b"a", b"b", b"LEFT"]) == [3, 4]
    assert finder([b"blmpop", b"0", b"x", b"a", b"LEFT"]) == []
    assert COMMAND_TABLE["zunionstore"].key_positions([b"zunionstore", b"d", b"2", b"a", b"b"]) == [1, 3, 4]
    assert COMMAND_TABLE["sintercard"].key_positions([b"sintercard", b"2", b"a", b"b", b"LIMIT", b"1"]) == [2, 3]
    assert COMMAND_TABLE["blpop"].key_positions([b"blpop", b"a", b"b", b"0"]) == [1, 2]
