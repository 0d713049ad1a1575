"""Argument parsing: Redis's integer/float acceptance rules and the 80-bit long double emulation."""
import pytest

from memdb.commands import messages
from memdb.commands.args import (
    LongDouble, format_long_double, is_float, is_int, parse_float, parse_long_double, parse_timeout_ms)
from memdb.commands.scanning import ULONG_MAX, glob_match, parse_cursor, scan_page
from memdb.commands.spec import CommandError


@pytest.mark.parametrize("text,ok", [
    (b"0", True), (b"-1", True), (b"9223372036854775807", True), (b"-9223372036854775808", True),
    (b"9223372036854775808", False), (b"-0", False), (b"01", False), (b"+1", False), (b" 1", False),
    (b"1 ", False), (b"", False), (b"-", False), (b"1.0", False), (b"00000000000000000000001", False),
])
def test_is_int(text, ok):
    assert is_int(text) is ok


@pytest.mark.parametrize("text,value", [
    (b"1.5", 1.5), (b"+2", 2.0), (b"-.5", -0.5), (b"1e3", 1000.0), (b"inf", float("inf")),
    (b"-Infinity", float("-inf")), (b"0x1p3", 8.0), (b"1e-310", 1e-310), (b"5.", 5.0),
])
def test_parse_float_accepts(text, value):
    assert parse_float(text) == value


@pytest.mark.parametrize("text", [b"", b" 1", b"1 ", b"nan", b"1e400", b"1e-400", b"1_0", b".", b"e5", b"1e", b"0x"])
def test_parse_float_rejects(text):
    assert not is_float(text)


def test_long_double_sums_match_redis():
    # values observed from redis-server 7.0 on x86-64 (80-bit long double)
    big = parse_long_double(b"1e308")
    assert format_long_double(big + big).startswith(b"199999999999999999993371759311691291321120199694831134")
    assert format_long_double(parse_long_double(b"0.1") + parse_long_double(b"0.2")) == b"0.3"
    assert format_long_double(parse_long_double(b"-0.0") + LongDouble.from_int(0)) == b"0"
    assert format_long_double(parse_long_double(b"3.0")) == b"3"


def test_long_double_limits():
    assert not (parse_long_double(b"1e4932") + parse_long_double(b"1e4932")).is_finite()
    with pytest.raises(CommandError, match="not a valid float"):
        parse_long_double(b"1e5000")
    with pytest.raises(CommandError):
        parse_long_double(b"1" * 6000)


def test_timeouts():
    assert parse_timeout_ms(b"1.5") == 1500
    assert parse_timeout_ms(b"0") == 0
    assert parse_timeout_ms(b"10", seconds=False) == 10
    for bad, message in [(b"-1", messages.TIMEOUT_NEGATIVE), (b"x", messages.TIMEOUT_NOT_FLOAT)]:
        with pytest.raises(CommandError) as exc:
            parse_timeout_ms(bad)
        assert exc.value.message == message


def test_cursor_parsing():
    assert parse_cursor(b"") == 0
    assert parse_cursor(b"-1") == ULONG_MAX
    assert parse_cursor(b"+5") == 5
    for bad in (b"x", b" 1", b"1.0", b"18446744073709551616"):
        with pytest.raises(CommandError, match="invalid cursor"):
            parse_cursor(bad)


def test_scan_page_covers_everything_once():
    elements = [b"e%d" % i for i in range(1000)]
    cursor, seen = 0, []
    while True:
        cursor, page = scan_page(elements, cursor, 37)
        seen.extend(page)
        if cursor == 0:
            break
    assert sorted(seen) == sorted(elements)


def test_glob_basics():
    assert glob_match(b"h?llo", b"hello")
    assert glob_match(b"h[^e]llo", b"hallo") and not glob_match(b"h[^e]llo", b"hello")
    assert glob_match(b"h[a-b]llo", b"hbllo")
    assert glob_match(b"\\*", b"*") and not glob_match(b"\\*", b"a")
    assert glob_match(b"*a*a*a*a*a*a*a*a*a*b", b"a" * 200 + b"b")
    assert not glob_match(b"*a*a*a*a*a*a*a*a*a*b", b"a" * 200)
