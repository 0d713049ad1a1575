"""memdb.protocol.encode: exact bytes per reply type in RESP2/RESP3, Redis 7.0 double formatting, round trips
through hiredis (the parser real clients use)."""
from __future__ import annotations

import math

import hiredis
import pytest
from hypothesis import given, strategies as st

from memdb.commands.spec import (NULL_ARRAY, OK, Bool, CommandError, Double, Map, NullArray, SetReply,
                                 SimpleString, Verbatim)
from memdb.protocol import encode


@pytest.mark.parametrize("reply, resp2, resp3", [
    (b"abc", b"$3\r\nabc\r\n", b"$3\r\nabc\r\n"),
    (b"", b"$0\r\n\r\n", b"$0\r\n\r\n"),
    (0, b":0\r\n", b":0\r\n"),
    (-7, b":-7\r\n", b":-7\r\n"),
    (2 ** 63 - 1, b":9223372036854775807\r\n", b":9223372036854775807\r\n"),
    (None, b"$-1\r\n", b"_\r\n"),
    (NULL_ARRAY, b"*-1\r\n", b"_\r\n"),
    (OK, b"+OK\r\n", b"+OK\r\n"),
    (SimpleString("QUEUED"), b"+QUEUED\r\n", b"+QUEUED\r\n"),
    (CommandError("ERR bad\r\nthing"), b"-ERR bad  thing\r\n", b"-ERR bad  thing\r\n"),
    ([], b"*0\r\n", b"*0\r\n"),
    ([b"a", 1, None, [b"b"]], b"*4\r\n$1\r\na\r\n:1\r\n$-1\r\n*1\r\n$1\r\nb\r\n",
     b"*4\r\n$1\r\na\r\n:1\r\n_\r\n*1\r\n$1\r\nb\r\n"),
    ([OK, CommandError("WRONGTYPE x")], b"*2\r\n+OK\r\n-WRONGTYPE x\r\n", b"*2\r\n+OK\r\n-WRONGTYPE x\r\n"),
    (Map([(b"k", b"v"), (b"n", 2)]), b"*4\r\n$1\r\nk\r\n$1\r\nv\r\n$1\r\nn\r\n:2\r\n",
     b"%2\r\n$1\r\nk\r\n$1\r\nv\r\n$1\r\nn\r\n:2\r\n"),
    (SetReply([b"a"]), b"*1\r\n$1\r\na\r\n", b"~1\r\n$1\r\na\r\n"),
    (Bool(True), b":1\r\n", b"#t\r\n"),
    (Bool(False), b":0\r\n", b"#f\r\n"),
    (Verbatim(b"a:1"), b"$3\r\na:1\r\n", b"=7\r\ntxt:a:1\r\n"),
    (Double(1.5), b"$3\r\n1.5\r\n", b",1.5\r\n"),
])
def test_exact_bytes(reply, resp2, resp3):
    assert encode(reply, 2) == resp2
    assert encode(reply, 3) == resp3


# Checked against redis-server 7.0.15 ZSCORE (skiplist encoding, so -0.0 is kept).
@pytest.mark.parametrize("value, text", [
    (1.5, b"1.5"), (0.1, b"0.10000000000000001"), (1e20, b"1e+20"), (1e21, b"1e+21"), (math.inf, b"inf"),
    (-math.inf, b"-inf"), (-0.0, b"-0"), (0.0, b"0"), (3.0, b"3"), (1e-5, b"1.0000000000000001e-05"),
    (123456789012345678.0, b"1.2345678901234568e+17"), (2.5e-300, b"2.5e-300"),
    (1.7976931348623157e308, b"1.7976931348623157e+308"), (0.30000000000000004, b"0.30000000000000004"),
    (100.0, b"100"),
])
def test_doubles_like_redis_7_0(value, text):
    assert encode(Double(value), 2) == b"$%d\r\n%s\r\n" % (len(text), text)
    assert encode(Double(value), 3) == b",%s\r\n" % text


def test_large_bulk_and_large_array_headers():
    big = b"x" * 10000
    assert encode(big, 2) == b"$10000\r\n" + big + b"\r\n"
    assert encode([1] * 2000, 2).startswith(b"*2000\r\n:1\r\n")


def _parse(data: bytes):
    reader = hiredis.Reader()
    reader.feed(data)
    value = reader.gets()
    assert reader.gets() is False        # exactly one reply, nothing left over
    return value


leaves = st.one_of(
    st.binary(max_size=20), st.integers(min_value=-2 ** 63, max_value=2 ** 63 - 1), st.none(),
    st.builds(Double, st.floats(allow_nan=False)), st.builds(Bool, st.booleans()),
    st.builds(SimpleString, st.text(alphabet="abcdefghijklmnopqrstuvwxyz OK", max_size=10)),
    st.builds(CommandError, st.text(alphabet="ABCDEFGHIJ xyz", min_size=1, max_size=10).map(lambda t: "ERR " + t)),
    st.builds(Verbatim, st.binary(max_size=20)), st.just(NULL_ARRAY),
)
replies = st.recursive(leaves, lambda children: st.one_of(
    st.lists(children, max_size=5),
    st.builds(SetReply, st.lists(children, max_size=5)),
    st.builds(Map, st.lists(st.tuples(st.binary(max_size=8), children), max_size=4, unique_by=lambda kv: kv[0])),
), max_leaves=20)


def _expected(value, resp: int):
    """What hiredis gives back for `value` encoded in `resp`."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if value is None or isinstance(value, NullArray):
        return None
    if isinstance(value, Double):
        text = b"inf" if value.value == math.inf else b"-inf" if value.value == -math.inf else b"%.17g" % value.value
        return text if resp == 2 else float(text)
    if isinstance(value, Bool):
        return int(value.value) if resp == 2 else value.value
    if isinstance(value, SimpleString):
        return value.value.encode()
    if isinstance(value, CommandError):
        return ("error", value.message)
    if isinstance(value, Verbatim):
        return value.value
    if isinstance(value, SetReply):
        return [_expected(v, resp) for v in value.items]
    if isinstance(value, Map):
        if resp == 2:
            return [x for k, v in value.items for x in (_expected(k, resp), _expected(v, resp))]
        return {_expected(k, resp): _expected(v, resp) for k, v in value.items}
    return [_expected(v, resp) for v in value]


def _normalise(parsed):
    if isinstance(parsed, hiredis.ReplyError):
        return ("error", str(parsed))
    if isinstance(parsed, list):
        return [_normalise(v) for v in parsed]
    if isinstance(parsed, dict):
        return {k: _normalise(v) for k, v in parsed.items()}
    return parsed


@given(replies)
def test_round_trip_through_hiredis_resp2(reply):
    if isinstance(reply, CommandError):
        return                             # a top-level error is raised by hiredis, covered above
    assert _normalise(_parse(encode(reply, 2))) == _expected(reply, 2)


@given(replies)
def test_round_trip_through_hiredis_resp3(reply):
    if isinstance(reply, CommandError):
        return
    assert _normalise(_parse(encode(reply, 3))) == _expected(reply, 3)
