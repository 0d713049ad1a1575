"""Stream handlers without a Redis: ids from the entry's now_ms (never the local clock), Blocked results of XREAD /
XREADGROUP (keys, timeout, rerun_args for `$`), replay determinism (two keyspaces fed the same commands and clocks
end up identical, pending entries included), COPY independence, key positions, the node-layout model."""
import random

import pytest

from memdb.commands import dispatch
from memdb.commands.spec import NULL_ARRAY, Blocked, CommandError, Context, Map
from memdb.commands.stream_type import StreamValue, lp_entry_size, lp_int_size
from memdb.commands.streams import parse_id, xread_keys
from memdb.commands.table import COMMAND_TABLE
from memdb.keyspace import Keyspace


def run(keyspace, *args, now_ms=1_000_000, resp=2):
    ctx = Context(keyspace=keyspace, db=keyspace.dbs[0], now_ms=now_ms, rng=random.Random(1), resp=resp)
    try:
        return dispatch.execute(ctx, [a.encode() if isinstance(a, str) else a for a in args])
    except CommandError as exc:
        return exc


@pytest.fixture
def ks():
    return Keyspace()


# -- ids ------------------------------------------------------------------------------------------------------------
def test_auto_id_comes_from_now_ms(ks):
    assert run(ks, "XADD", "s", "*", "a", "1", now_ms=5000) == b"5000-0"
    assert run(ks, "XADD", "s", "*", "a", "1", now_ms=5000) == b"5000-1"
    assert run(ks, "XADD", "s", "*", "a", "1", now_ms=4000) == b"5000-2"     # the clock went back: never the ids
    assert run(ks, "XADD", "s", "*", "a", "1", now_ms=6000) == b"6000-0"
    assert run(ks, "XADD", "s", "6000-*", "a", "1", now_ms=1) == b"6000-1"
    assert run(ks, "XADD", "s", "7000-*", "a", "1", now_ms=1) == b"7000-0"


def test_auto_id_sequence_overflow_moves_to_next_ms(ks):
    assert run(ks, "XADD", "s", "10-18446744073709551615", "a", "1") == b"10-18446744073709551615"
    assert run(ks, "XADD", "s", "*", "a", "1", now_ms=10) == b"11-0"
    run(ks, "XSETID", "s", "18446744073709551615-18446744073709551615")
    assert run(ks, "XADD", "s", "*", "a", "1").message.startswith("ERR The stream has exhausted")


@pytest.mark.parametrize("text, expected", [
    (b"5", ((5, 0), True)), (b"5-7", ((5, 7), True)), (b"-", ((0, 0), True)),
    (b"+", ((18446744073709551615, 18446744073709551615), True)), (b" 5-+7", ((5, 7), True)),
    (b"5--0", ((5, 0), True)), (b"5--1", None), (b"5-", None), (b"x", None), (b"5-18446744073709551616", None),
    (b"007-1", ((7, 1), True)), (b"5-3\x00junk", ((5, 3), True)), (b"1" * 128, None),
])
def test_parse_id(text, expected):
    if expected is None:
        with pytest.raises(CommandError):
            parse_id(text)
    else:
        assert parse_id(text) == expected


def test_parse_id_star_and_strict():
    assert parse_id(b"5-*", seq_star=True) == ((5, 0), False)
    with pytest.raises(CommandError):
        parse_id(b"5-*")
    with pytest.raises(CommandError):
        parse_id(b"+", strict=True)


# -- blocking ---------------------------------------------------------------------------------------------------------
def test_xread_block_resolves_dollar(ks):
    run(ks, "XADD", "s", "3-1", "a", "1")
    ks.drain_modified()
    reply = run(ks, "XREAD", "BLOCK", "1500", "COUNT", "2", "STREAMS", "s", "nokey", "$", "$")
    assert reply == Blocked((b"s", b"nokey"), 1500, NULL_ARRAY,
                            [b"XREAD", b"BLOCK", b"1500", b"COUNT", b"2", b"STREAMS", b"s", b"nokey", b"3-1", b"0-0"])
    assert ks.drain_modified() == []
    run(ks, "XADD", "s", "4-1", "b", "2")
    assert run(ks, *reply.rerun_args) == [[b"s", [[b"4-1", [b"b", b"2"]]]]]
    # the original args would still block: `$` now means 4-1
    assert isinstance(run(ks, "XREAD", "BLOCK", "1500", "STREAMS", "s", "nokey", "$", "$"), Blocked)


def test_xread_block_zero_is_forever_and_explicit_ids_need_no_rewrite(ks):
    reply = run(ks, "XREAD", "BLOCK", "0", "STREAMS", "s", "0")
    assert reply == Blocked((b"s",), None, NULL_ARRAY, None)


def test_xread_served_at_once_when_possible(ks):
    run(ks, "XADD", "s", "1-1", "a", "1")
    assert run(ks, "XREAD", "BLOCK", "0", "STREAMS", "s", "0") == [[b"s", [[b"1-1", [b"a", b"1"]]]]]
    assert run(ks, "XREAD", "STREAMS", "s", "1-1") is NULL_ARRAY            # no BLOCK: a null array
    assert run(ks, "XREAD", "STREAMS", "s", "0", resp=3) == Map([(b"s", [[b"1-1", [b"a", b"1"]]])])


def test_xreadgroup_blocks_then_serves(ks):
    run(ks, "XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    ks.drain_modified()
    args = ("XREADGROUP", "GROUP", "g", "c", "BLOCK", "250", "STREAMS", "s", ">")
    blocked = run(ks, *args)
    assert blocked == Blocked((b"s",), 250, NULL_ARRAY, None)
    assert ks.drain_modified() == []                  # blocking creates nothing (not even the consumer)
    assert run(ks, "XINFO", "CONSUMERS", "s", "g") == []
    run(ks, "XADD", "s", "7-1", "f", "v", now_ms=2_000_000)
    assert run(ks, *args, now_ms=2_000_500) == [[b"s", [[b"7-1", [b"f", b"v"]]]]]
    pending = run(ks, "XPENDING", "s", "g", "-", "+", "10", now_ms=2_000_600)
    assert pending == [[b"7-1", b"c", 100, 1]]         # idle from the entries' clocks, not the local one


def test_xreadgroup_history_never_blocks(ks):
    run(ks, "XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    assert run(ks, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", "0") == [[b"s", []]]


def test_blocking_errors_come_first(ks):
    assert run(ks, "XREAD", "BLOCK", "-1", "STREAMS", "s", "0").message == "ERR timeout is negative"
    assert run(ks, "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">").message.startswith("NOGROUP")
    run(ks, "SET", "k", "v")
    assert run(ks, "XREAD", "BLOCK", "0", "STREAMS", "k", "0").message.startswith("WRONGTYPE")


def test_destroyed_group_fails_the_rerun(ks):
    run(ks, "XGROUP", "CREATE", "s", "g", "$", "MKSTREAM")
    args = ("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">")
    assert isinstance(run(ks, *args), Blocked)
    ks.drain_modified()
    assert run(ks, "XGROUP", "DESTROY", "s", "g") == 1
    assert ks.drain_modified() == [(0, b"s")]          # wakes the parked client ...
    assert run(ks, *args).message.startswith("NOGROUP")   # ... whose re-run fails


# -- determinism ------------------------------------------------------------------------------------------------------
def _state(keyspace):
    out = {}
    for key, value in keyspace.dbs[0].data.items():
        if not isinstance(value, StreamValue):
            continue
        groups = {}
        for name, group in value.groups.items():
            groups[name] = (group.last_id, group.entries_read,
                            [(i, n.consumer.name, n.delivery_time, n.delivery_count) for i, n in group.pel.items()],
                            [(c.name, c.seen_time, list(c.pel)) for c in group.consumers.values()])
        nodes = [(n.master_id, n.live, n.deleted, n.lp_bytes(), n.last_id) for n in value.nodes.values()]
        out[key] = (list(value.entries.items()), nodes, value.last_id, value.entries_added, value.max_deleted_id,
                    groups)
    return out


def test_replay_reaches_the_same_state():
    rnd = random.Random(3)
    commands = []
    now = 1_700_000_000_000
    for _ in range(400):
        now += rnd.choice([0, 0, 1, 5])
        key = rnd.choice(["s", "t"])
        cmd = rnd.choice([
            ("XADD", key, *rnd.choice([(), ("MAXLEN", "~", "3"), ("MINID", "=", str(now - 3))]), "*", "f", "v"),
            ("XDEL", key, f"{now - rnd.randrange(5)}-0"),
            ("XGROUP", "CREATE", key, "g", "0", "MKSTREAM"),
            ("XREADGROUP", "GROUP", "g", rnd.choice(["a", "b"]), "COUNT", "2", "STREAMS", key, ">"),
            ("XCLAIM", key, "g", rnd.choice(["a", "b"]), "0", f"{now - rnd.randrange(5)}-0"),
            ("XAUTOCLAIM", key, "g", "c", "1", "0", "COUNT", "3"),
            ("XACK", key, "g", f"{now - rnd.randrange(5)}-0"),
        ])
        commands.append((now, cmd))
    spaces = [Keyspace(), Keyspace()]
    replies = [[run(space, *cmd, now_ms=t) for t, cmd in commands] for space in spaces]
    assert [repr(r) for r in replies[0]] == [repr(r) for r in replies[1]]
    assert _state(spaces[0]) == _state(spaces[1])
    assert _state(spaces[0])[b"s"][5]          # the groups and pending entries really were exercised


def test_copy_is_independent(ks):
    run(ks, "XADD", "s", "1-1", "a", "1")
    run(ks, "XGROUP", "CREATE", "s", "g", "0")
    run(ks, "XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">")
    assert run(ks, "COPY", "s", "t") == 1
    assert run(ks, "XACK", "t", "g", "1-1") == 1
    run(ks, "XADD", "t", "2-1", "b", "2")
    assert run(ks, "XPENDING", "s", "g")[0] == 1
    assert run(ks, "XLEN", "s") == 1
    stream = ks.dbs[0].data[b"s"]
    nack = stream.groups[b"g"].pel[(1, 1)]
    assert nack.consumer is stream.groups[b"g"].consumers[b"c"]


# -- table, keys, layout model --------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, positions", [
    ([b"XREAD", b"COUNT", b"1", b"STREAMS", b"a", b"b", b"0", b"0"], [4, 5]),
    ([b"XREAD", b"BLOCK", b"0", b"STREAMS", b"streams", b"0"], [4]),
    ([b"XREADGROUP", b"GROUP", b"streams", b"c", b"NOACK", b"STREAMS", b"k", b">"], [6]),
    ([b"XREAD", b"STREAMS", b"a", b"b", b"0"], []),
    ([b"XREAD", b"FOO", b"STREAMS", b"a", b"0"], []),
])
def test_xread_key_positions(args, positions):
    assert xread_keys(args) == positions
    assert COMMAND_TABLE[args[0].decode().lower()].key_positions(args) == positions


def test_object_encoding_and_type(ks):
    run(ks, "XADD", "s", "1-1", "a", "1")
    assert run(ks, "OBJECT", "ENCODING", "s") == b"stream"
    assert run(ks, "TYPE", "s").value == "stream"


@pytest.mark.parametrize("element, size", [
    (b"1", 2), (b"127", 2), (b"128", 3), (b"-4096", 3), (b"-4097", 4), (b"9999999999", 10), (b"01", 4),
    (b"a" * 63, 65), (b"a" * 64, 67), (b"a" * 125, 128), (b"a" * 126, 130), (b"a" * 5000, 5007),
])
def test_listpack_element_sizes(element, size):
    assert lp_entry_size(element) == size
    assert lp_int_size(0) == 2


def test_nodes_split_at_100_entries_or_4096_bytes(ks):
    for i in range(1, 251):
        run(ks, "XADD", "s", f"{i}-0", "f", "v")
    stream = ks.dbs[0].data[b"s"]
    assert [node.live for node in stream.nodes.values()] == [100, 100, 50]
    run(ks, "XADD", "big", "1-0", "f", "x" * 1000)
    for i in range(2, 10):
        run(ks, "XADD", "big", f"{i}-0", "f", "x" * 1000)
    assert [node.live for node in ks.dbs[0].data[b"big"].nodes.values()] == [4, 4, 1]
    assert run(ks, "XTRIM", "s", "MAXLEN", "~", "120") == 100     # whole nodes only
    assert run(ks, "XTRIM", "s", "MAXLEN", "~", "120") == 0
    assert run(ks, "XTRIM", "s", "MAXLEN", "120") == 30
