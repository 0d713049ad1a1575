"""memdb.protocol.parser: request framing, inline quoting, limits and Redis's exact protocol error texts."""
from __future__ import annotations

import time

import pytest
from hypothesis import given, strategies as st

from memdb.protocol import ProtocolError, RequestParser, split_inline
from memdb.protocol.parser import _whole_requests


def multibulk(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def parse_all(data: bytes, **kw) -> tuple[list, str | None]:
    p = RequestParser(**kw)
    out = p.feed(data)
    return out, (p.error.message if p.error else None)


def test_multibulk_and_pipelining():
    data = multibulk(b"SET", b"k", b"v") * 3 + multibulk(b"GET", b"k")
    out, err = parse_all(data)
    assert out == [[b"SET", b"k", b"v"]] * 3 + [[b"GET", b"k"]] and err is None


def test_byte_at_a_time_equals_whole():
    data = multibulk(b"SET", b"key", b"x" * 100) + b"PING\r\n" + multibulk(b"ECHO", b"") + b'ECHO "a b"\r\n'
    p = RequestParser()
    out = []
    for i in range(len(data)):
        out += p.feed(data[i:i + 1])
    assert out == parse_all(data)[0] == [[b"SET", b"key", b"x" * 100], [b"PING"], [b"ECHO", b""],
                                         [b"ECHO", b"a b"]]


@pytest.mark.parametrize("data, requests", [
    (b"*0\r\n*-1\r\n*-5\r\nPING\r\n", [[b"PING"]]),          # empty multibulks are skipped
    (b"\r\n\r\n  \r\nPING\n", [[b"PING"]]),                   # empty inline lines are skipped, bare \n ends a line
    (b"*1\r\n$4\r\nPINGxx", [[b"PING"]]),                     # Redis skips the CRLF after a bulk without checking
    (b"*1\r\n$0\r\n\r\n", [[b""]]),
    (b"$999999999999\r\n", [[b"$999999999999"]]),            # not a multibulk: an inline command, as in Redis
])
def test_accepted_like_redis(data, requests):
    assert parse_all(data) == (requests, None)


@pytest.mark.parametrize("data, error", [
    (b"*1\r\n+PING\r\n", "expected '$', got '+'"),
    (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n:1\r\n", "expected '$', got ':'"),
    (b"*1\r\n$-1\r\n", "invalid bulk length"),
    (b"*1\r\n$-0\r\n", "invalid bulk length"),
    (b"*1\r\n$abc\r\n", "invalid bulk length"),
    (b"*1\r\n$04\r\nPING\r\n", "invalid bulk length"),
    (b"*1\r\n$+4\r\nPING\r\n", "invalid bulk length"),
    (b"*1\r\n$4\nPING\r\n", "invalid bulk length"),
    (b"*1\r\n$999999999999\r\n", "invalid bulk length"),
    (b"*1\r\n$536870913\r\n", "invalid bulk length"),
    (b"*abc\r\n", "invalid multibulk length"),
    (b"*01\r\n", "invalid multibulk length"),
    (b"*+1\r\n", "invalid multibulk length"),
    (b"*1 \r\n", "invalid multibulk length"),
    (b"*-0\r\n", "invalid multibulk length"),
    (b"*1048577\r\n", "invalid multibulk length"),
    (b"*" + b"1" * 70000, "too big mbulk count string"),
    (b"*1\r\n$" + b"1" * 70000, "too big bulk count string"),
    (b"PING" + b" " * 70000, "too big inline request"),
    (b'PING "a\r\n', "unbalanced quotes in request"),
    (b'ECHO "a"b\r\n', "unbalanced quotes in request"),
    (b"ECHO ''x\r\n", "unbalanced quotes in request"),
    (b'ECHO a"b\r\n', "unbalanced quotes in request"),
])
def test_protocol_errors_have_redis_texts(data, error):
    out, err = parse_all(data)
    assert out == [] and err == "ERR Protocol error: " + error


def test_requests_before_an_error_are_returned_and_parser_stays_failed():
    p = RequestParser()
    assert p.feed(b"PING\r\n*1\r\n$4\r\nECHO\r\n*1\r\n+X\r\nPING\r\n") == [[b"PING"], [b"ECHO"]]
    assert isinstance(p.error, ProtocolError)
    assert p.feed(b"PING\r\n") == []


def test_bulk_limit_is_configurable_and_checked_on_the_header():
    p = RequestParser(max_bulk_len=10)
    assert p.feed(b"*1\r\n$10\r\n") == [] and p.error is None
    p = RequestParser(max_bulk_len=10)
    assert p.feed(b"*1\r\n$11\r\n") == [] and p.error.message == "ERR Protocol error: invalid bulk length"


def test_large_value_in_many_chunks_is_linear():
    value = b"x" * (8 * 1024 * 1024)
    data = multibulk(b"SET", b"k", value)
    p = RequestParser()
    start = time.perf_counter()
    out = []
    for i in range(0, len(data), 4096):
        out += p.feed(data[i:i + 4096])
    assert out == [[b"SET", b"k", value]]
    assert time.perf_counter() - start < 2.0       # quadratic re-joining would take minutes
    assert p.buffered_len == 0


@pytest.mark.parametrize("line, args", [
    (b"SET a b", [b"SET", b"a", b"b"]),
    (b"  SET\ta   b  ", [b"SET", b"a", b"b"]),
    (b'ECHO "\\x41\\n\\t\\\\\\"" \'x\\\'y\'', [b"ECHO", b'A\n\t\\"', b"x'y"]),
    (b'ECHO "a\\zb"', [b"ECHO", b"azb"]),
    (b"ECHO 'a\\nb'", [b"ECHO", b"a\\nb"]),
    (b'ECHO "\\xZZ"', [b"ECHO", b"xZZ"]),
    (b'ECHO ""', [b"ECHO", b""]),
    (b'ECHO a"b c"d', None),
    (b'ECHO a"b c"', [b"ECHO", b"ab c"]),
    (b"", []),
])
def test_split_inline_matches_sdssplitargs(line, args):
    assert split_inline(line) == args


@given(st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=6), min_size=1, max_size=8),
       st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=20))
def test_any_chunking_gives_the_same_requests(requests, cuts):
    data = b"".join(multibulk(*r) for r in requests)
    p = RequestParser()
    out, pos, i = [], 0, 0
    while pos < len(data):
        step = cuts[i % len(cuts)]
        out += p.feed(data[pos:pos + step])
        pos += step
        i += 1
    assert out == requests and p.error is None and p.buffered_len == 0


def _general_pass(data: bytes) -> tuple[list, int, str | None]:
    p = RequestParser()
    out: list = []
    try:
        pos = p._parse(data, out)
    except ProtocolError as exc:
        return out, -1, exc.message
    return out, pos, None


# Pieces that make framing ambiguous: CRLFs inside payloads, headers with odd spellings, digits, stray markers.
_PIECES = st.sampled_from([b"\r\n", b"\r", b"\n", b"*", b"$", b"*1", b"*2", b"$0", b"$1", b"$2", b"$3", b"$03",
                           b"*-1", b"$-1", b"0", b"1", b"2", b"a", b"GET", b" "])


@given(st.one_of(
    st.lists(_PIECES, max_size=24).map(b"".join),
    st.lists(st.lists(st.lists(_PIECES, max_size=4).map(b"".join), min_size=1, max_size=4), min_size=1,
             max_size=4).map(lambda reqs: b"".join(multibulk(*r) for r in reqs)),
    st.tuples(st.lists(st.lists(st.binary(max_size=8), min_size=1, max_size=3), min_size=1, max_size=3),
              st.integers(0, 60), st.binary(max_size=4)).map(
        lambda t: (lambda d: d[:t[1]] + t[2] + d[t[1]:])(b"".join(multibulk(*r) for r in t[0]))),
    # Payloads that are themselves requests, less their last CRLF: the split finds the inner frames first.
    st.lists(st.lists(st.binary(max_size=3), min_size=1, max_size=2), min_size=1, max_size=3).map(
        lambda reqs: multibulk(b"x\r\n" + b"".join(multibulk(*r) for r in reqs)[:-2]))))
def test_whole_requests_fast_path_agrees_with_the_general_pass(data):
    fast = _whole_requests(data, 1024 * 1024)
    if fast is not None:
        # The fast path only answers for input the general pass reads whole, error-free, to the same requests.
        assert _general_pass(data) == (fast, len(data), None)
    else:
        assert RequestParser().feed(data) == _general_pass(data)[0]


def test_whole_requests_takes_the_common_shapes_and_leaves_the_rest():
    get, set_ = multibulk(b"GET", b"k"), multibulk(b"SET", b"k", b"a\r\nb")
    assert _whole_requests(get * 16, 1024) == [[b"GET", b"k"]] * 16
    # A CRLF in a payload, also one that makes the payload look like a second request: the general pass reads it.
    assert _whole_requests(set_, 1024) is None
    nested = multibulk(b"x\r\n*1\r\n$1\r\ny")
    assert _whole_requests(nested, 1024) is None and RequestParser().feed(nested) == [[b"x\r\n*1\r\n$1\r\ny"]]
    assert _whole_requests(get[:-1], 1024) is None                      # incomplete
    assert _whole_requests(b"PING\r\n", 1024) is None                  # inline
    assert _whole_requests(b"*1\r\n$04\r\nPING\r\n", 1024) is None     # non-canonical length
    assert _whole_requests(multibulk(b"a", b"b", b"c"), 2) is None      # over the multibulk limit


@given(st.lists(st.binary(min_size=1, max_size=10).filter(lambda b: all(c > 32 and c not in b"\"'" for c in b)),
                min_size=1, max_size=5).filter(lambda words: not words[0].startswith(b"*")))
def test_inline_plain_words(words):
    # A request that starts with '*' is a multibulk one, as in Redis (processInputBuffer), never inline.
    assert RequestParser().feed(b" ".join(words) + b"\r\n") == [words]


def test_parser_throughput():
    """Not a benchmark gate, a sanity bound (and the number quoted in the parser's docstring)."""
    data = multibulk(b"SET", b"key:000000000001", b"xxx") * 10000
    p = RequestParser()
    best = min(_timed(p.feed, data) for _ in range(5))
    print(f"parser: {best / 10000 * 1e6:.2f} us/request")
    assert best / 10000 < 50e-6


def _timed(fn, arg) -> float:
    start = time.perf_counter()
    fn(arg)
    return time.perf_counter() - start
