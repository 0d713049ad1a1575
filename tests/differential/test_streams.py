"""Stream commands vs redis-server: examples (id parsing, trimming options and errors, consumer groups, XCLAIM /
XAUTOCLAIM / XPENDING shapes, XINFO), the node layout behind `~` trimming and XINFO's radix-tree counters, blocking
XREAD/XREADGROUP against a really blocked Redis client, then a hypothesis state machine over a few keys, groups and
consumers (RESP2 and RESP3).

Time: ids are explicit (or `ms-*`, or `*` only once a stream's last id is far in the future, where Redis and memdb
must both assign last.ms-(seq+1)), so both sides hold the same entries. Idle times, seen-times and delivery times are
compared within TOL_MS (both sides run the same commands at almost the same moment); min-idle thresholds are either 0
or far larger than the test's duration, so what gets claimed never depends on timing.
"""
import random

import hiredis
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule, run_state_machine_as_test

from memdb.commands.spec import Blocked
from memdb.commands.stream_type import StreamValue
from tests.differential.harness import (
    Approx, Differential, MemdbInstance, Reply, _convert, encode_command, oracle_server)

TOL_MS = 2000
FUTURE_MS = 1 << 62          # ids from here on: `*` can't use the clock, so it is deterministic
TIME_KEYS = {b"idle", b"seen-time"}


# -- normalisers for time-dependent fields ----------------------------------------------------------------------------
def _fuzz(value):
    return Approx(value, TOL_MS) if isinstance(value, int) and not isinstance(value, bool) else value


def fuzz_times(value):
    """XINFO replies: values of idle/seen-time keys, and absolute ms timestamps (delivery times), within TOL_MS."""
    if isinstance(value, dict):
        return {k: (_fuzz(v) if k in TIME_KEYS else fuzz_times(v)) for k, v in value.items()}
    if isinstance(value, list):
        out = []
        for i, item in enumerate(value):
            if i % 2 == 1 and isinstance(value[i - 1], bytes) and value[i - 1] in TIME_KEYS:
                out.append(_fuzz(item))
            else:
                out.append(fuzz_times(item))
        return out
    if isinstance(value, int) and not isinstance(value, bool) and value >= 10 ** 12:
        return _fuzz(value)
    return value


def fuzz_pending(value):
    """XPENDING extended rows [id, consumer, idle, deliveries]: idle within TOL_MS."""
    if isinstance(value, list):
        return [[row[0], row[1], _fuzz(row[2]), row[3]] if isinstance(row, list) and len(row) == 4 else row
                for row in value]
    return value


def check(d, *command):
    name = command[0].upper()
    if name == "XPENDING" and len(command) > 3:
        return d.check(*command, normalize=fuzz_pending)
    if name == "XINFO":
        return d.check(*command, normalize=fuzz_times)
    return d.check(*command)


# -- examples -------------------------------------------------------------------------------------------------------
CASES = {
    "ids": [
        ("XADD", "s", "1-1", "a", "1"), ("XADD", "s", "1-1", "a", "1"), ("XADD", "s", "0-0", "a", "1"),
        ("XADD", "s", "0", "a", "1"), ("XADD", "s", "abc", "a", "1"), ("XADD", "s", " 5-1", "a", "1"),
        ("XADD", "s", "6- 1", "a", "1"), ("XADD", "s", "7-+1", "a", "1"), ("XADD", "s", "9-0x1", "a", "1"),
        ("XADD", "s", "10 ", "a", "1"), ("XADD", "s", "", "a", "1"), ("XADD", "s", "11-", "a", "1"),
        ("XADD", "s", "-", "a", "1"), ("XADD", "s", "+", "a", "1"), ("XADD", "s", "1" * 130, "a", "1"),
        ("XADD", "s", "12-1-1", "a", "1"), ("XADD", "s", "18446744073709551616-1", "a", "1"),
        ("XADD", "s", "13-*", "a", "1"), ("XADD", "s", "13-*", "b", "2"), ("XADD", "s", "13-**", "a", "1"),
        ("XADD", "s", "14-1\x00zz", "a", "1"), ("XADD", "s", "015-1", "a", "1"), ("XADD", "s", "16--0", "a", "1"),
        ("XADD", "s", "17--18446744073709551615", "a", "1"), ("XADD", "s", "18-3", "a"), ("XADD", "s", "18-3"),
        ("XADD", "s", "12-*", "a", "1"), ("XRANGE", "s", "-", "+"), ("XLEN", "s"),
        ("XADD", "t", "1-18446744073709551615", "a", "1"), ("XADD", "t", "1-*", "a", "1"),
        ("XADD", "t", "18446744073709551615-18446744073709551615", "a", "1"), ("XADD", "t", "*", "a", "1"),
        ("XADD", "t", "18446744073709551615-*", "a", "1"), ("XINFO", "STREAM", "t"),
        ("XADD", "u", "5-5", "a", "1"), ("XADD", "u", "5-*", "a", "1"), ("XADD", "u", "4-*", "a", "1"),
        ("XADD", "u", f"{FUTURE_MS}-7", "a", "1"), ("XADD", "u", "*", "a", "1"), ("XADD", "u", "*", "a", "1"),
    ],
    "ranges": [
        ("XADD", "s", "1-1", "a", "1"), ("XADD", "s", "1-2", "b", "2", "c", "3"), ("XADD", "s", "2-0", "a", "1"),
        ("XADD", "s", "3-5", "x", "y"), ("XRANGE", "s", "-", "+"), ("XRANGE", "s", "1", "1"),
        ("XRANGE", "s", "(1-1", "+"),
        ("XRANGE", "s", "(1", "+"), ("XRANGE", "s", "(", "+"), ("XRANGE", "s", "-", "("), ("XRANGE", "s", "+", "-"),
        ("XRANGE", "s", "(18446744073709551615-18446744073709551615", "+"), ("XRANGE", "s", "-", "(0"),
        ("XRANGE", "s", "-", "(0-1"), ("XRANGE", "s", "(-", "+"), ("XRANGE", "s", "-", "(+"),
        ("XRANGE", "s", "-", "+", "COUNT", "2"), ("XRANGE", "s", "-", "+", "COUNT", "0"),
        ("XRANGE", "s", "-", "+", "COUNT", "-1"), ("XRANGE", "s", "-", "+", "COUNT"),
        ("XRANGE", "s", "-", "+", "FOO"),
        ("XRANGE", "s", "-", "+", "COUNT", "1", "COUNT", "3"), ("XRANGE", "s", "-", "+", "COUNT", "x"),
        ("XREVRANGE", "s", "+", "-"), ("XREVRANGE", "s", "(3-5", "(1-1"), ("XREVRANGE", "s", "+", "-", "COUNT", "2"),
        ("XREVRANGE", "s", "-", "+"), ("XRANGE", "nokey", "-", "+"), ("XRANGE", "nokey", "x", "+"),
        ("XRANGE", "nokey", "-", "+", "COUNT", "0"), ("XLEN", "nokey"), ("SET", "str", "v"),
        ("XRANGE", "str", "-", "+"),
        ("XRANGE", "str", "x", "+"), ("XLEN", "str"), ("XADD", "str", "1-1", "a", "1"), ("TYPE", "s"),
        ("OBJECT", "ENCODING", "s"),
    ],
    "trim": [
        ("XADD", "s", "MAXLEN", "1", "MINID", "1", "*", "a", "1"), ("XADD", "s", "MAXLEN", "-1", "*", "a", "1"),
        ("XADD", "s", "MAXLEN", "~", "1", "LIMIT", "-1", "*", "a", "1"), ("XADD", "s", "LIMIT", "5", "*", "a", "1"),
        ("XADD", "s", "MAXLEN", "1", "LIMIT", "5", "*", "a", "1"), ("XADD", "s", "MAXLEN", "x", "*", "a", "1"),
        ("XADD", "s", "MAXLEN", "~", "x", "*", "a", "1"), ("XADD", "s", "MINID", "-", "*", "a", "1"),
        ("XADD", "s", "MAXLEN"), ("XADD", "s", "MAXLEN", "5"), ("XADD", "s", "MAXLEN", "5", "*"),
        ("XADD", "s", "MAXLEN", "~"), ("XADD", "s", "MAXLEN", "~", "5"), ("XADD", "s", "*", "a", "1", "b"),
        ("XADD", "m", "MAXLEN", "0", "1-1", "a", "1"), ("EXISTS", "m"), ("XINFO", "STREAM", "m"),
        ("XADD", "m", "MAXLEN", "=", "1", "2-1", "a", "1"), ("XADD", "m", "MINID", "=", "5", "3-1", "a", "1"),
        ("XADD", "m", "maxlen", "~", "0", "NOMKSTREAM", "4-1", "a", "1"),
        ("XADD", "m", "NOMKSTREAM", "maxlen", "~", "0", "5-1", "a", "1"),
        ("XADD", "m", "LIMIT", "0", "9-1", "a", "1"),
        ("XADD", "m", "MAXLEN", "~", "1", "LIMIT", "0", "6-1", "a", "1"), ("XINFO", "STREAM", "m"),
        ("XADD", "m", "MINID", "18446744073709551615", "8-1", "a", "1"),
        ("XADD", "nomk", "NOMKSTREAM", "1-1", "a", "1"),
        ("EXISTS", "nomk"), ("XTRIM", "m", "LIMIT", "5"), ("XTRIM", "m", "MAXLEN"), ("XTRIM", "m", "FOO", "1"),
        ("XTRIM", "m", "MAXLEN", "~", "1", "LIMIT", "5", "foo"), ("XTRIM", "m", "MINID", "~"),
        ("XTRIM", "m", "MAXLEN", "1", "MAXLEN", "2"), ("XTRIM", "m", "MAXLEN", "1", "LIMIT", "1"),
        ("XTRIM", "nokey", "MAXLEN", "1"), ("XTRIM", "nokey", "MAXLEN", "x"),
        ("XTRIM", "m", "NOMKSTREAM", "MAXLEN", "1"),
        ("XADD", "m", "20-1", "a", "1"), ("XADD", "m", "21-1", "a", "1"), ("XTRIM", "m", "MINID", "21"),
        ("XTRIM", "m", "MAXLEN", "0"), ("XINFO", "STREAM", "m"), ("SET", "str", "v"), ("XTRIM", "str", "MAXLEN", "1"),
    ],
    "xdel-xsetid": [
        ("XADD", "s", "1-1", "a", "1"), ("XADD", "s", "5-1", "a", "1"), ("XDEL", "s", "5-1", "5-1", "x"),
        ("XDEL", "s", "5-1", "5-1", "9-9"), ("XINFO", "STREAM", "s"), ("XDEL", "nokey", "x"), ("XSETID", "s", "3-0"),
        ("XSETID", "s", "0-5"), ("XSETID", "s", "5-2"), ("XDEL", "s", "1-1"), ("XSETID", "s", "3-0"),
        ("XINFO", "STREAM", "s"), ("XSETID", "s", "5-0", "MAXDELETEDID", "4-0"),
        ("XSETID", "s", "4-0", "MAXDELETEDID", "5-0"),
        ("XSETID", "s", "4-0", "ENTRIESADDED", "1"), ("XSETID", "s", "4-0", "ENTRIESADDED", "-1"),
        ("XSETID", "s", "4-0", "ENTRIESADDED", "x"), ("XSETID", "s", "4-0", "FOO"),
        ("XSETID", "s", "4-0", "ENTRIESADDED"),
        ("XSETID", "s", "-"), ("XSETID", "s", "x"), ("XSETID", "nokey", "1-1"), ("XINFO", "STREAM", "s"),
        ("XADD", "s", "4-0", "a", "1"), ("XADD", "s", "6-0", "a", "1"), ("XSETID", "s", "5-0"),
        ("XSETID", "s", "7-0", "ENTRIESADDED", "0"), ("XSETID", "s", "7-0", "ENTRIESADDED", "9"),
        ("XINFO", "STREAM", "s"),
        ("SET", "str", "v"), ("XDEL", "str", "1-1"), ("XSETID", "str", "1-1"), ("XSETID", "str", "x"),
    ],
    "xread": [
        ("XADD", "s", "1-1", "a", "1"), ("XADD", "s", "2-1", "b", "2"), ("XADD", "t", "1-5", "c", "3"),
        ("XREAD", "STREAMS", "s", "0"), ("XREAD", "COUNT", "1", "STREAMS", "s", "t", "0", "0"),
        ("XREAD", "STREAMS", "s", "t", "$", "$"), ("XREAD", "STREAMS", "s", "t", "1-1", "1"),
        ("XREAD", "STREAMS", "nokey", "s", "0", "0"), ("XREAD", "COUNT", "-5", "STREAMS", "s", "0"),
        ("XREAD", "COUNT", "x", "STREAMS", "s", "0"), ("XREAD", "STREAMS"), ("XREAD", "BLOCK", "0", "COUNT", "1"),
        ("XREAD", "COUNT", "1", "FOO", "STREAMS", "s", "0"), ("XREAD", "STREAMS", "s", "-"),
        ("XREAD", "STREAMS", "s", "+"),
        ("XREAD", "STREAMS", "s", "(1"), ("XREAD", "STREAMS", "s", ">"), ("XREAD", "STREAMS", "s", "1", "2"),
        ("XREAD", "GROUP", "g", "c", "STREAMS", "s", "1"), ("XREAD", "NOACK", "STREAMS", "s", "1"),
        ("XREAD", "BLOCK", "-1", "STREAMS", "s", "0"), ("XREAD", "BLOCK", "x", "STREAMS", "s", "0"),
        ("XREAD", "BLOCK", "100", "STREAMS", "s", "0"), ("XREAD", "STREAMS", "s", "s", "0", "0"),
        ("XREAD", "streams", "streams", "s", "0", "0"), ("XDEL", "s", "2-1"), ("XREAD", "STREAMS", "s", "1-1"),
        ("SET", "str", "v"), ("XREAD", "STREAMS", "s", "str", "0", "0"), ("XREAD", "STREAMS", "s", "str", "x", "0"),
    ],
    "groups": [
        ("XADD", "s", "1-1", "a", "1"), ("XADD", "s", "2-1", "b", "2"), ("XADD", "s", "3-1", "c", "3"),
        ("XGROUP", "CREATE", "s", "g", "0", "ENTRIESREAD", "-5"), ("XGROUP", "CREATE", "s", "g", "0", "foo"),
        ("XGROUP", "CREATE", "nokey", "g", "0"), ("XGROUP", "SETID", "s", "nog", "0"),
        ("XGROUP", "CREATE", "s", "g", "0"),
        ("XGROUP", "CREATE", "s", "g", "0"), ("XGROUP", "CREATE", "s", "g2", "$"),
        ("XGROUP", "CREATE", "s", "g3", "x"),
        ("XGROUP", "CREATE", "s", "g3", "-"), ("XGROUP", "CREATE", "s", "g4", "2", "ENTRIESREAD", "1"),
        ("XGROUP", "CREATE", "s", "g5", "0", "MKSTREAM", "MKSTREAM"), ("XGROUP", "SETID", "s", "g", "0", "foo"),
        ("XGROUP", "SETID", "s", "g5", "+"), ("XGROUP", "SETID", "s", "g5", "-", "ENTRIESREAD", "2"),
        ("XINFO", "GROUPS", "s"), ("XGROUP", "DESTROY", "s", "nog"), ("XGROUP", "DESTROY", "s", "g5"),
        ("XGROUP", "CREATECONSUMER", "s", "g", "c"), ("XGROUP", "CREATECONSUMER", "s", "g", "c"),
        ("XGROUP", "CREATECONSUMER", "s", "nog", "c"), ("XGROUP", "DELCONSUMER", "s", "g", "nobody"),
        ("XGROUP", "CREATE", "mk", "g", "$", "MKSTREAM"), ("XINFO", "STREAM", "mk"), ("XINFO", "GROUPS", "mk"),
        ("XGROUP", "FOO"), ("XGROUP", "CREATE", "s"), ("XGROUP", "HELP"), ("XGROUP", "HELP", "x"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "1"),
        ("XREADGROUP", "GROUP", "nog", "c", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "$"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "1", "2"),
        ("XREADGROUP", "GROUP", "g", "STREAMS", "s", "0"), ("XREADGROUP", "NOACK", "STREAMS", "s", "0", "x"),
        ("XREADGROUP", "COUNT", "1", "STREAMS", "s", "0", "x"),
        ("XREADGROUP", "GROUP", "g", "c0", "COUNT", "1", "STREAMS", "s", ">"),
        ("XINFO", "GROUPS", "s"), ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"), ("XINFO", "CONSUMERS", "s", "g"),
        ("XPENDING", "s", "g"), ("XPENDING", "s", "g", "-", "+", "10"), ("XPENDING", "s", "g", "-", "+", "10", "c1"),
        ("XPENDING", "s", "g", "-", "+", "10", "zz"), ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0"),
        ("XREADGROUP", "GROUP", "g", "c0", "COUNT", "1", "STREAMS", "s", "0"), ("XDEL", "s", "2-1"),
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "0"), ("XINFO", "GROUPS", "s"),
        ("XREADGROUP", "GROUP", "g", "c1", "STREAMS", "s", "18446744073709551615-18446744073709551615"),
        ("XACK", "s", "g", "1-1", "9-9", "1-1"), ("XACK", "s", "g", "x"), ("XACK", "s", "nog", "x"),
        ("XACK", "nokey", "g", "1-1"), ("XPENDING", "s", "g"), ("XGROUP", "DELCONSUMER", "s", "g", "c1"),
        ("XPENDING", "s", "g"), ("XINFO", "CONSUMERS", "s", "g"), ("XADD", "s", "4-1", "d", "4"),
        ("XREADGROUP", "GROUP", "g", "c3", "NOACK", "STREAMS", "s", ">"), ("XPENDING", "s", "g"),
        ("XINFO", "GROUPS", "s"), ("XGROUP", "SETID", "s", "g", "0", "ENTRIESREAD", "3"),
        ("XREADGROUP", "GROUP", "g", "c4", "STREAMS", "s", ">"), ("XINFO", "GROUPS", "s"),
        ("XGROUP", "SETID", "s", "g", "$"), ("XINFO", "GROUPS", "s"), ("XINFO", "STREAM", "s", "FULL"),
        ("SET", "str", "v"), ("XGROUP", "CREATE", "str", "g", "0"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "str", ">"),
        ("XACK", "str", "g", "1-1"), ("XPENDING", "str", "g"), ("XINFO", "GROUPS", "str"),
    ],
    "lag": [
        ("XGROUP", "CREATE", "e", "g", "0", "MKSTREAM"), ("XINFO", "GROUPS", "e"), ("XADD", "e", "1-1", "a", "1"),
        ("XINFO", "GROUPS", "e"), ("XDEL", "e", "1-1"), ("XINFO", "GROUPS", "e"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "e", ">"), ("XINFO", "GROUPS", "e"),
        ("XADD", "e", "2-1", "a", "1"),
        ("XADD", "e", "3-1", "a", "1"), ("XADD", "e", "4-1", "a", "1"), ("XDEL", "e", "3-1"),
        ("XINFO", "GROUPS", "e"),
        ("XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "e", ">"), ("XINFO", "GROUPS", "e"),
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "e", ">"), ("XINFO", "GROUPS", "e"),
        ("XGROUP", "CREATE", "e", "g3", "1-5"), ("XGROUP", "CREATE", "e", "g4", "0", "ENTRIESREAD", "7"),
        ("XGROUP", "CREATE", "e", "g5", "$"), ("XINFO", "GROUPS", "e"), ("XTRIM", "e", "MAXLEN", "1"),
        ("XINFO", "GROUPS", "e"), ("XSETID", "e", "9-9", "ENTRIESADDED", "20", "MAXDELETEDID", "9-0"),
        ("XINFO", "GROUPS", "e"), ("XINFO", "STREAM", "e"),
        ("XADD", "d", "1-1", "a", "1"), ("XDEL", "d", "1-1"), ("XGROUP", "CREATE", "d", "g", "0"),
        ("XINFO", "GROUPS", "d"), ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "d", ">"), ("XINFO", "GROUPS", "d"),
        ("XADD", "t", "1-1", "a", "1"), ("XADD", "t", "2-1", "a", "1"), ("XTRIM", "t", "MAXLEN", "0"),
        ("XGROUP", "CREATE", "t", "g", "0"), ("XGROUP", "CREATE", "t", "g2", "1-5"), ("XINFO", "GROUPS", "t"),
    ],
    "claim": [
        ("XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"),
        *[("XADD", "s", f"{i}-1", "f", str(i)) for i in range(1, 40)],
        ("XREADGROUP", "GROUP", "g", "c1", "COUNT", "25", "STREAMS", "s", ">"),
        ("XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"),
        ("XDEL", "s", *[f"{i}-1" for i in range(3, 15)]),
        ("XAUTOCLAIM", "s", "g", "c3", "0", "0", "COUNT", "2"),
        ("XAUTOCLAIM", "s", "g", "c3", "0", "0", "COUNT", "2"),
        ("XAUTOCLAIM", "s", "g", "c3", "100000000", "0", "COUNT", "2"),
        ("XAUTOCLAIM", "s", "g", "c3", "100000000", "0", "COUNT", "1"),
        ("XAUTOCLAIM", "s", "g", "c3", "0", "(15-1", "COUNT", "3", "JUSTID"), ("XINFO", "CONSUMERS", "s", "g"),
        ("XAUTOCLAIM", "s", "g", "c3", "0", "38-1"), ("XAUTOCLAIM", "s", "g", "c3", "0", "(39-1"),
        ("XAUTOCLAIM", "s", "g", "c3", "x", "0"), ("XAUTOCLAIM", "s", "g", "c3", "0", "0", "COUNT", "0"),
        ("XAUTOCLAIM", "s", "g", "c3", "0", "0", "COUNT", "x"), ("XAUTOCLAIM", "s", "g", "c3", "0", "0", "FOO"),
        ("XAUTOCLAIM", "s", "g", "c3", "0", "x"), ("XAUTOCLAIM", "s", "nog", "c3", "0", "0"),
        ("XAUTOCLAIM", "s", "g", "c3", "0", "(18446744073709551615-18446744073709551615"),
        ("XAUTOCLAIM", "nokey", "g", "c3", "0", "0"), ("XPENDING", "s", "g"),
        ("XPENDING", "s", "g", "IDLE", "100000000", "-", "+", "100"),
        ("XPENDING", "s", "g", "IDLE", "0", "-", "+", "3"),
        ("XPENDING", "s", "g", "IDLE", "-5", "(20-1", "(30-1", "100", "c2"), ("XPENDING", "s", "g", "-", "+", "0"),
        ("XPENDING", "s", "g", "-", "+", "-3"), ("XPENDING", "s", "g", "(5", "(5", "10"),
        ("XPENDING", "s", "g", "30", "20", "10"), ("XPENDING", "s", "g", "x"), ("XPENDING", "s", "g", "-", "+", "x"),
        ("XPENDING", "s", "g", "IDLE", "x", "-", "+", "10"), ("XPENDING", "s", "g", "IDLE", "10", "-", "+"),
        ("XPENDING", "s", "g", "x", "+", "10"), ("XPENDING", "s", "g", "(+", "+", "10"),
        ("XPENDING", "s", "nog"), ("XPENDING", "nokey", "g"), ("XPENDING", "s", "g", "-", "+", "1", "c1", "x"),
        ("XINFO", "STREAM", "s", "FULL", "COUNT", "2"), ("XINFO", "STREAM", "s", "FULL", "COUNT", "0"),
        ("XCLAIM", "s", "g", "c9", "100000000", "20-1"),
        ("XCLAIM", "s", "g", "c9", "0", "20-1", "21-1", "99-1", "1-1", "2-1", "FORCE", "JUSTID"),
        ("XPENDING", "s", "g", "-", "+", "100"), ("XINFO", "CONSUMERS", "s", "g"),
        ("XCLAIM", "s", "g", "c9", "0", "20-1", "IDLE", "5000000", "JUSTID"),
        ("XPENDING", "s", "g", "IDLE", "4000000", "-", "+", "100"),
        ("XCLAIM", "s", "g", "c8", "0", "20-1", "TIME", "0", "JUSTID"), ("XPENDING", "s", "g", "20-1", "20-1", "1"),
        ("XCLAIM", "s", "g", "c8", "0", "20-1", "IDLE", "-100", "JUSTID"),
        ("XPENDING", "s", "g", "20-1", "20-1", "1"),
        ("XCLAIM", "s", "g", "c8", "100000000", "20-1"),
        ("XCLAIM", "s", "g", "c8", "0", "20-1", "IDLE", "3000", "RETRYCOUNT", "-5"),
        ("XCLAIM", "s", "g", "c8", "0", "20-1", "RETRYCOUNT", "42"), ("XPENDING", "s", "g", "20-1", "20-1", "1"),
        ("XCLAIM", "s", "g", "c8", "0", "20-1", "IDLE"), ("XCLAIM", "s", "g", "c8", "0", "20-1", "LASTID", "x"),
        ("XCLAIM", "s", "g", "c8", "0", "20-1", "LASTID", "0-1", "RETRYCOUNT", "x"),
        ("XCLAIM", "s", "g", "c8", "0", "20-1", "TIME", "x"), ("XCLAIM", "s", "g", "c8", "x", "20-1"),
        ("XCLAIM", "s", "g", "c8", "0", "20-1", "bogus"), ("XCLAIM", "s", "g", "c8", "0", "20-1", "JUSTID", "21-1"),
        ("XCLAIM", "s", "nog", "c8", "0", "20-1"), ("XCLAIM", "nokey", "g", "c8", "x", "20-1"),
        ("XINFO", "GROUPS", "s"), ("XCLAIM", "s", "g", "c8", "0", "20-1", "LASTID", "100-1"),
        ("XINFO", "GROUPS", "s"),
        ("XADD", "s", "100-5", "a", "1"), ("XINFO", "GROUPS", "s"),
        ("XREADGROUP", "GROUP", "g", "c8", "STREAMS", "s", ">"), ("XINFO", "GROUPS", "s"),
        ("XADD", "s", "101-1", "f", "6"), ("XREADGROUP", "GROUP", "g", "c9", "COUNT", "1", "STREAMS", "s", ">"),
        ("XDEL", "s", "101-1"), ("XCLAIM", "s", "g", "c1", "0", "101-1"), ("XPENDING", "s", "g"),
        ("XGROUP", "DELCONSUMER", "s", "g", "c2"), ("XPENDING", "s", "g"), ("XINFO", "STREAM", "s"),
        ("SET", "str", "v"), ("XCLAIM", "str", "g", "c", "0", "1-1"), ("XAUTOCLAIM", "str", "g", "c", "0", "0"),
    ],
    "xinfo": [
        ("XADD", "s", "1-1", "a", "1"), ("XADD", "s", "2-1", "b", "2", "c", "3"), ("XGROUP", "CREATE", "s", "g", "0"),
        ("XGROUP", "CREATE", "s", "a", "$"), ("XGROUP", "CREATECONSUMER", "s", "g", "zed"),
        ("XREADGROUP", "GROUP", "g", "bob", "COUNT", "1", "STREAMS", "s", ">"), ("XINFO", "STREAM", "s"),
        ("XINFO", "STREAM", "s", "FULL"), ("XINFO", "STREAM", "s", "FULL", "COUNT", "1"),
        ("XINFO", "STREAM", "s", "FULL", "COUNT", "-1"), ("XINFO", "STREAM", "s", "FULL", "COUNT", "x"),
        ("XINFO", "STREAM", "s", "FULL", "x"), ("XINFO", "STREAM", "s", "FOO"),
        ("XINFO", "STREAM", "s", "FULL", "COUNT"),
        ("XINFO", "STREAM", "s", "full", "count", "1", "x"), ("XINFO", "GROUPS", "s"),
        ("XINFO", "CONSUMERS", "s", "g"),
        ("XINFO", "CONSUMERS", "s", "nog"), ("XINFO", "STREAM", "nokey"), ("XINFO", "GROUPS", "nokey"),
        ("XINFO", "CONSUMERS", "nokey", "g"), ("XINFO", "FOO", "s"), ("XINFO", "HELP"), ("XINFO",),
        ("XINFO", "STREAM"), ("XGROUP", "CREATE", "e", "g", "0", "MKSTREAM"), ("XINFO", "STREAM", "e"),
        ("XINFO", "STREAM", "e", "FULL"), ("SET", "str", "v"), ("XINFO", "STREAM", "str"),
        ("XINFO", "CONSUMERS", "str", "g"),
    ],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_examples(diff, case):
    for command in CASES[case]:
        check(diff, *command)


@pytest.mark.parametrize("case", ["ranges", "xread", "groups", "claim", "xinfo"])
def test_examples_resp3(diff3, case):
    for command in CASES[case]:
        check(diff3, *command)


def test_auto_id_uses_the_clock(diff):
    """`*` on a fresh stream: both take their clock, so only the shape and closeness of the ids can be compared."""
    expected, actual = diff.both("XADD", "s", "*", "a", "1")
    ms_redis, seq_redis = map(int, expected.value.split(b"-"))
    ms_memdb, seq_memdb = map(int, actual.value.split(b"-"))
    assert (seq_redis, seq_memdb) == (0, 0) and abs(ms_redis - ms_memdb) < TOL_MS


def test_node_layout_and_approximate_trimming(diff):
    """Entries of varied sizes (node splits by count and by bytes), XDEL emptying nodes, `~` and exact trims:
    XINFO's radix-tree-keys/nodes and every trim result must be Redis's."""
    rnd = random.Random(7)
    ms = 1 << 40
    added = []
    for i in range(700):
        op = rnd.random()
        if op < 0.6:
            ms += rnd.choice([0, 1, 255, 256, 65536, 1 << 24])
            options = []
            if rnd.random() < 0.2:
                strategy = rnd.choice(["MAXLEN", "MINID"])
                options = [strategy, rnd.choice(["~", "=", "~"])]
                options.append(str(rnd.randrange(0, 300)) if strategy == "MAXLEN"
                               else str(max(0, ms - rnd.randrange(0, 1 << 25))))
                if options[1] == "~" and rnd.random() < 0.5:
                    options += ["LIMIT", str(rnd.randrange(0, 300))]
            fields = []
            for _ in range(rnd.choice([1, 1, 2, 3])):
                fields += [rnd.choice(["f", "g", "12", "x" * 70]),
                           rnd.choice(["1", "v", "y" * 200, "z" * 900, "-4097", "9999999999", "3.5"])]
            diff.check("XADD", "s", *options, f"{ms}-*", *fields)
            added.append(ms)
        elif op < 0.85:
            diff.check("XDEL", "s", *[f"{rnd.choice(added)}-{rnd.randrange(0, 3)}" for _ in range(rnd.randrange(1,
                20))])
        elif op < 0.9:
            diff.check("XTRIM", "s", rnd.choice(["MAXLEN", "MINID"]), rnd.choice(["~", "="]),
                       str(rnd.choice([rnd.randrange(0, 300), max(0, ms - rnd.randrange(0, 1 << 26))])))
        else:
            diff.check("XINFO", "STREAM", "s")
    diff.check("XINFO", "STREAM", "s", "FULL", "COUNT", "0")


def test_copy_rename_and_expiry(diff):
    for command in [("XADD", "s", "1-1", "a", "1"), ("XGROUP", "CREATE", "s", "g", "0"),
                    ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"), ("COPY", "s", "t"),
                    ("XACK", "t", "g", "1-1"), ("XPENDING", "s", "g"), ("XPENDING", "t", "g"),
                    ("XADD", "t", "2-1", "b", "2"),
                    ("XLEN", "s"), ("RENAME", "t", "u"), ("XINFO", "STREAM", "u"), ("EXPIRE", "u", "100"),
                    ("TTL", "u"),
                    ("DEL", "u"), ("TYPE", "s"), ("OBJECT", "ENCODING", "s")]:
        check(diff, *command)


# -- blocking: memdb's Blocked + rerun against a really blocked Redis client -----------------------------------------
def _read_reply(conn) -> Reply:
    reader = hiredis.Reader()
    raw = bytearray()
    while True:
        value = reader.gets()
        if value is not False:
            return Reply(chr(raw[0]), _convert(value))
        chunk = conn.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("redis-server closed the connection")
        raw += chunk
        reader.feed(chunk)


@pytest.mark.parametrize("resp", [2, 3])
@pytest.mark.parametrize("setup, blocking, writes", [
    ([("XADD", "s", "1-1", "a", "1")], ("XREAD", "BLOCK", "0", "STREAMS", "s", "$"),
     [("XADD", "s", "2-1", "b", "2")]),
    ([], ("XREAD", "BLOCK", "0", "COUNT", "1", "STREAMS", "s", "t", "$", "$"),
     [("XADD", "t", "5-1", "b", "2"), ("XADD", "t", "6-1", "c", "3")]),
    ([("XADD", "s", "1-1", "a", "1"), ("XGROUP", "CREATE", "s", "g", "$")],
     ("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"), [("XADD", "s", "3-1", "b", "2")]),
    ([("XADD", "s", "1-1", "a", "1"), ("XGROUP", "CREATE", "s", "g", "$")],
     ("XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "NOACK", "STREAMS", "s", ">"), [("XADD", "s", "3-1", "b", "2")]),
])
def test_blocked_read_served_like_redis(redis_server, resp, setup, blocking, writes):
    """Redis: one client blocks, another writes, the first gets its reply. memdb: the handler returns Blocked, the
    writes are applied, the node re-runs (rerun_args or the original args): the reply must be Redis's."""
    blocked_conn, writer = redis_server.connect(resp=resp), redis_server.connect(resp=resp)
    try:
        writer.call("FLUSHALL")
        memdb = MemdbInstance(resp=resp)
        for command in setup:
            assert writer.call(*command) == memdb.call(*command)
        blocked_conn.sock.sendall(encode_command(blocking))
        outcome = memdb.raw_call(*blocking)
        assert isinstance(outcome, Blocked)
        writer.call("PING")                # the blocking command has reached Redis before the writes
        for command in writes:
            assert writer.call(*command) == memdb.call(*command)
        expected = _read_reply(blocked_conn)
        rerun = outcome.rerun_args if outcome.rerun_args is not None else list(blocking)
        assert memdb.call(*rerun) == expected
    finally:
        blocked_conn.close()
        writer.close()


# -- the state machine ------------------------------------------------------------------------------------------------
KEYS = st.sampled_from(["s1", "s1", "s2", "str"])
GROUPS = st.sampled_from(["g1", "g2"])
CONSUMERS = st.sampled_from(["c1", "c2", "c3"])
MS = st.sampled_from([1, 2, 3, 5, 8, FUTURE_MS, FUTURE_MS + 2])
SEQ = st.sampled_from(["0", "1", "2", "*", None])
FIELDS = st.lists(st.tuples(st.sampled_from(["a", "b", "12"]), st.sampled_from(["1", "v", "x" * 70])),
                  min_size=1, max_size=2)
IDS = st.builds(lambda ms, seq: f"{ms}-{seq}", st.sampled_from([1, 2, 3, 5, 8]), st.sampled_from([0, 1, 2]))
BOUNDS = st.one_of(st.sampled_from(["-", "+", "0", "(2", "3", "(5-1"]), IDS)
MIN_IDLE = st.sampled_from(["0", "100000000"])


class StreamMachine(RuleBasedStateMachine):
    RESP = 2

    def __init__(self):
        super().__init__()
        self.diff = Differential(oracle_server().connect(resp=self.RESP), MemdbInstance(seed=5, resp=self.RESP))
        self.diff.flush()
        for command in [("SET", "str", "string"), ("XADD", "s1", "1-0", "a", "1"), ("XADD", "s1", "2-0", "b", "2"),
                        ("XGROUP", "CREATE", "s1", "g1", "0"), ("XGROUP", "CREATE", "s1", "g2", "$"),
                        ("XADD", "s2", "1-1", "a", "1"), ("XGROUP", "CREATE", "s2", "g1", "0"),
                        ("XREADGROUP", "GROUP", "g1", "c1", "COUNT", "1", "STREAMS", "s1", ">"),
                        ("XREADGROUP", "GROUP", "g1", "c2", "STREAMS", "s2", ">")]:
            self.diff.check(*command)

    def teardown(self):
        self.diff.redis.close()

    def _memdb_stream(self, key):
        value = self.diff.memdb.keyspace.dbs[0].data.get(key.encode())
        return value if isinstance(value, StreamValue) else None

    def _draw_ids(self, data, key):
        """Ids that matter for key (its entries, its pending entries) mixed with arbitrary ones."""
        stream = self._memdb_stream(key)
        known = []
        if stream is not None:
            known = [f"{ms}-{seq}" for ms, seq in stream.entries.keys()[-6:]]
            for group in stream.groups.values():
                known += [f"{ms}-{seq}" for ms, seq in group.pel.keys()[:4]]
        choice = st.sampled_from(sorted(set(known))) if known else IDS
        return data.draw(st.lists(st.one_of(choice, choice, IDS), min_size=1, max_size=3))

    @rule(key=KEYS, ms=MS, seq=SEQ, fields=FIELDS,
          trim=st.one_of(st.none(), st.tuples(st.sampled_from(["MAXLEN", "MINID"]), st.sampled_from(["~", "=", ""]),
                                              st.sampled_from(["0", "1", "3", "5"]))),
          nomkstream=st.booleans())
    def xadd(self, key, ms, seq, fields, trim, nomkstream):
        options = ["NOMKSTREAM"] if nomkstream else []
        if trim:
            options += [part for part in trim if part]
        stream_id = str(ms) if seq is None else f"{ms}-{seq}"
        self.diff.check("XADD", key, *options, stream_id, *[p for pair in fields for p in pair])

    @rule(key=st.sampled_from(["s1", "s2"]), step=st.sampled_from([0, 1, 2]), fields=FIELDS)
    def xadd_next(self, key, step, fields):
        """Grow a stream with an id just after its last one (`ms-*`), so streams get long enough to matter."""
        stream = self._memdb_stream(key)
        ms = (stream.last_id[0] if stream is not None else 0) + step
        self.diff.check("XADD", key, f"{ms}-*", *[p for pair in fields for p in pair])

    @precondition(lambda self: any((s := self._memdb_stream(k)) is not None and s.last_id[0] >= FUTURE_MS
                                   for k in ("s1", "s2")))
    @rule(key=st.sampled_from(["s1", "s2"]), fields=FIELDS)
    def xadd_auto_id(self, key, fields):
        stream = self._memdb_stream(key)
        if stream is not None and stream.last_id[0] >= FUTURE_MS:
            self.diff.check("XADD", key, "*", *[p for pair in fields for p in pair])

    @rule(key=KEYS, strategy=st.sampled_from(["MAXLEN", "MINID"]), approx=st.sampled_from(["~", "=", ""]),
          threshold=st.sampled_from(["0", "1", "2", "3-1", "5"]), limit=st.sampled_from([None, "0", "1"]))
    def xtrim(self, key, strategy, approx, threshold, limit):
        args = ["XTRIM", key, strategy] + ([approx] if approx else []) + [threshold]
        if limit is not None:
            args += ["LIMIT", limit]
        self.diff.check(*args)

    @rule(key=KEYS, data=st.data())
    def xdel(self, key, data):
        self.diff.check("XDEL", key, *self._draw_ids(data, key))

    @rule(key=KEYS, start=BOUNDS, end=BOUNDS, count=st.sampled_from([None, "0", "1", "2"]),
          reverse=st.booleans())
    def xrange(self, key, start, end, count, reverse):
        args = ["XREVRANGE", key, end, start] if reverse else ["XRANGE", key, start, end]
        self.diff.check(*args, *(["COUNT", count] if count else []))

    @rule(key=KEYS)
    def meta(self, key):
        self.diff.check("XLEN", key)
        self.diff.check("TYPE", key)
        check(self.diff, "XINFO", "STREAM", key)
        check(self.diff, "XINFO", "GROUPS", key)

    @rule(key=KEYS, count=st.sampled_from(["0", "1", "3"]))
    def xinfo_full(self, key, count):
        check(self.diff, "XINFO", "STREAM", key, "FULL", "COUNT", count)

    @rule(key=KEYS, group=GROUPS)
    def xinfo_consumers(self, key, group):
        check(self.diff, "XINFO", "CONSUMERS", key, group)

    @rule(keys=st.lists(KEYS, min_size=1, max_size=2), ids=st.lists(st.sampled_from(["0", "$", "2-0", "5"]),
                                                                     min_size=2, max_size=2),
          count=st.sampled_from([None, "1"]))
    def xread(self, keys, ids, count):
        self.diff.check("XREAD", *(["COUNT", count] if count else []), "STREAMS", *keys, *ids[:len(keys)])

    @rule(key=KEYS, group=GROUPS, start=st.sampled_from(["$", "0", "2-1", "-"]), mkstream=st.booleans(),
          entries_read=st.sampled_from([None, "-1", "1", "7"]))
    def xgroup_create(self, key, group, start, mkstream, entries_read):
        self.diff.check("XGROUP", "CREATE", key, group, start, *(["MKSTREAM"] if mkstream else []),
                        *(["ENTRIESREAD", entries_read] if entries_read else []))

    @rule(key=KEYS, group=GROUPS, start=st.sampled_from(["$", "0", "2-1", "+"]),
          entries_read=st.sampled_from([None, "2"]))
    def xgroup_setid(self, key, group, start, entries_read):
        self.diff.check("XGROUP", "SETID", key, group, start, *(["ENTRIESREAD",
            entries_read] if entries_read else []))

    @rule(key=KEYS, group=GROUPS, consumer=CONSUMERS,
          sub=st.sampled_from(["CREATECONSUMER", "DELCONSUMER", "DESTROY"]))
    def xgroup_admin(self, key, group, consumer, sub):
        self.diff.check("XGROUP", sub, key, group, *([] if sub == "DESTROY" else [consumer]))

    @rule(key=KEYS, group=GROUPS, consumer=CONSUMERS, start=st.sampled_from([">", ">", "0", "2-1"]),
          count=st.sampled_from([None, "1", "2"]), noack=st.sampled_from([False, False, False, True]))
    def xreadgroup(self, key, group, consumer, start, count, noack):
        self.diff.check("XREADGROUP", "GROUP", group, consumer, *(["COUNT", count] if count else []),
                        *(["NOACK"] if noack else []), "STREAMS", key, start)

    @rule(key=KEYS, group=GROUPS, data=st.data())
    def xack(self, key, group, data):
        self.diff.check("XACK", key, group, *self._draw_ids(data, key))

    @rule(key=KEYS, group=GROUPS, idle=st.sampled_from([None, "0", "100000000"]), start=BOUNDS,
          count=st.sampled_from(["1", "10"]), consumer=st.one_of(st.none(), CONSUMERS))
    def xpending(self, key, group, idle, start, count, consumer):
        self.diff.check("XPENDING", key, group)
        check(self.diff, "XPENDING", key, group, *(["IDLE", idle] if idle else []), start, "+", count,
              *([consumer] if consumer else []))

    @rule(key=KEYS, group=GROUPS, consumer=CONSUMERS, min_idle=MIN_IDLE, data=st.data(),
          options=st.lists(st.sampled_from([("JUSTID",), ("FORCE",), ("RETRYCOUNT", "5"), ("IDLE", "10000000000"),
                                            ("TIME", "0"), ("LASTID", "3-0")]), max_size=2))
    def xclaim(self, key, group, consumer, min_idle, data, options):
        self.diff.check("XCLAIM", key, group, consumer, min_idle, *self._draw_ids(data, key),
                        *[p for option in options for p in option])

    @rule(key=KEYS, group=GROUPS, consumer=CONSUMERS, min_idle=MIN_IDLE, start=st.sampled_from(["0", "(2-1", "3"]),
          count=st.sampled_from([None, "1", "2"]), justid=st.booleans())
    def xautoclaim(self, key, group, consumer, min_idle, start, count, justid):
        self.diff.check("XAUTOCLAIM", key, group, consumer, min_idle, start, *(["COUNT", count] if count else []),
                        *(["JUSTID"] if justid else []))

    @rule(key=KEYS, stream_id=st.sampled_from(["0-0", "3-0", "8-2", str(FUTURE_MS)]),
          entries_added=st.sampled_from([None, "0", "50"]), max_deleted=st.sampled_from([None, "1-1", "0-0"]))
    def xsetid(self, key, stream_id, entries_added, max_deleted):
        self.diff.check("XSETID", key, stream_id, *(["ENTRIESADDED", entries_added] if entries_added else []),
                        *(["MAXDELETEDID", max_deleted] if max_deleted else []))

    @rule(key=st.sampled_from(["s1", "s2", "s2", "s2"]))
    def delete(self, key):
        self.diff.check("DEL", key)


class StreamMachineResp3(StreamMachine):
    RESP = 3


@pytest.mark.parametrize("machine", [StreamMachine, StreamMachineResp3], ids=["resp2", "resp3"])
def test_stream_machine(redis_server, machine):
    run_state_machine_as_test(machine)
