"""Helpers shared by the collection modules (lists, sets, zsets): typed lookups, Redis's range-checked integer
parsers with their exact message rules, C strtod for score ranges, and the numkeys key finders."""
from __future__ import annotations

import math
import re
from typing import Any, Callable

from memdb.commands import messages
from memdb.commands.args import INT64_MAX, INT64_MIN, format_double, is_int, parse_float
from memdb.commands.spec import CommandError, Context

LONG_MAX = INT64_MAX
LONG_MIN = INT64_MIN

# What C's strtod accepts (after optional leading whitespace): decimal, hex floats, inf/infinity, nan.
_STRTOD_RE = re.compile(
    rb"[ \t\n\v\f\r]*([+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    rb"|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
    rb"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN]))")


def lookup(ctx: Context, key: bytes, cls: type) -> Any | None:
    """The live value of key if it is a `cls` (or a subclass), None if missing; WRONGTYPE otherwise."""
    value = ctx.db.get(key, ctx.now_ms, ctx.is_replica_read)
    if value is not None and not isinstance(value, cls):
        raise CommandError(messages.WRONGTYPE)
    return value


def parse_long(arg: bytes, message: str = messages.NOT_INTEGER) -> int:
    """getLongFromObjectOrReply / getLongLongFromObjectOrReply (string2ll)."""
    if not is_int(arg):
        raise CommandError(message)
    return int(arg)


def parse_range(arg: bytes, low: int, high: int, message: str | None = None) -> int:
    """getRangeLongFromObjectOrReply. Redis passes a custom message to the integer parse too, so with a message
    both an unparsable and an out-of-range value get it (LMPOP 'x' -> 'numkeys should be greater than 0')."""
    if not is_int(arg):
        raise CommandError(message or messages.NOT_INTEGER)
    value = int(arg)
    if not low <= value <= high:
        raise CommandError(message or messages.out_of_range_between(low, high))
    return value


def parse_positive(arg: bytes, message: str = messages.OUT_OF_RANGE_POSITIVE) -> int:
    """getPositiveLongFromObjectOrReply: 0..LONG_MAX, one message for both failures ('LPOP l x')."""
    return parse_range(arg, 0, LONG_MAX, message)


def strtod(arg: bytes) -> float | None:
    """C strtod over the whole argument, as zslParseRange uses it: leading whitespace allowed, "" reads as 0,
    overflow gives +-inf. None if strtod would stop before the end."""
    if arg == b"":
        return 0.0
    m = _STRTOD_RE.fullmatch(arg)
    if m is None:
        return None
    text = m.group(1)
    if b"x" in text or b"X" in text:
        sign = -1.0 if text.startswith(b"-") else 1.0
        body = text.lstrip(b"+-")
        if b"p" not in body and b"P" not in body:
            body += b"p0"
        try:
            return sign * float.fromhex(body.decode())
        except OverflowError:
            return sign * float("inf")
    return float(text)


def numkeys_finder(numkeys_index: int, extra: tuple[int, ...] = ()) -> Callable[[list[bytes]], list[int]]:
    """A CommandSpec.key_finder for `... numkeys key [key ...]` commands, plus fixed key positions `extra`
    (ZUNIONSTORE's destination). A bad numkeys finds no keys (the handler reports the error)."""
    def find(args: list[bytes]) -> list[int]:
        if len(args) <= numkeys_index or not is_int(args[numkeys_index]):
            return list(extra)
        n = int(args[numkeys_index])
        if n < 1 or numkeys_index + n >= len(args):
            return list(extra)
        return list(extra) + list(range(numkeys_index + 1, numkeys_index + 1 + n))
    return find


def parse_score(arg: bytes, message: str = messages.NOT_FLOAT) -> float:
    """getDoubleFromObject for scores and weights: args.parse_float, keeping the sign of a negative zero
    ("-0" is -0.0 to strtod, which a skiplist keeps and replies as "-0")."""
    value = parse_float(arg, message)
    if value == 0.0 and arg.lstrip()[:1] == b"-":
        return -0.0
    return value


def listpack_double_text(value: float) -> bytes:
    """How a listpack stores a score (d2string with double2ll): integral values within +-LLONG_MAX/2 as
    integers (so -0 becomes "0" and 1.2345678901234568e+17 "123456789012345680"), others as "%.17g"."""
    if math.isfinite(value) and -_HALF_LLONG <= value <= _HALF_LLONG and value == int(value):
        return b"%d" % int(value)
    return format_double(value)


_HALF_LLONG = float(LONG_MAX // 2)
