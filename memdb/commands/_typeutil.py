"""Helpers shared by the collection modules (lists, hashes, sets, zsets, geo, sort): typed lookups, what follows a
removal or a *STORE (events, deleting an emptied key), index ranges, the *MPOP parser, Redis's range-checked
integer parsers with their exact message rules, C strtod for score ranges, and the numkeys key finders."""
from __future__ import annotations

import math
import re
from typing import Any, Callable

from memdb import notify
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


def signal_or_delete(ctx: Context, key: bytes, value: Any, event_class: int, event: str) -> None:
    """After a command removed elements from the collection at key: its event, then the key is signalled as
    modified, or deleted with a "del" event if it is now empty (Redis never keeps an empty collection)."""
    ctx.notify(event_class, event, key)
    if value:
        ctx.db.signal_modified(key)
    else:
        ctx.db.delete(key)
        ctx.notify(notify.GENERIC, "del", key)


def remove_members(ctx: Context, args: list[bytes], cls: type, remove: Callable[[Any, bytes], bool],
                   event_class: int, event: str) -> int:
    """SREM/HDEL/ZREM key member [member ...]: `remove(value, member)` (True if it was there) for each member,
    stopping once the collection is empty (Redis deletes the key there); then one event. Returns how many went."""
    key = args[1]
    value = lookup(ctx, key, cls)
    if value is None:
        return 0
    removed = 0
    for member in args[2:]:
        if remove(value, member):
            removed += 1
            if not value:
                break
    if removed:
        signal_or_delete(ctx, key, value, event_class, event)
    return removed


def remove_from_dict(value: dict, member: bytes) -> bool:
    """remove_members' `remove` for a set or a hash (a dict keyed by member or field)."""
    if member in value:
        del value[member]
        return True
    return False


def store_or_delete(ctx: Context, key: bytes, value: Any, event_class: int, event: str) -> int:
    """The *STORE commands: a non-empty result replaces key (any TTL goes) with the command's event; an empty one
    deletes key ("del" if it existed). Returns the result's length."""
    if value:
        ctx.db.set(key, value)
        ctx.notify(event_class, event, key)
    elif ctx.db.delete(key):
        ctx.notify(notify.GENERIC, "del", key)
    return len(value)


def index_range(start: int, end: int, length: int) -> tuple[int, int] | None:
    """LRANGE/LTRIM/ZRANGE/ZREMRANGEBYRANK index sanitising: negative indexes count from the end; the inclusive
    [start, end] clipped to the collection, or None if that is empty."""
    if start < 0:
        start += length
    if end < 0:
        end += length
    if start < 0:
        start = 0
    if start > end or start >= length:
        return None
    return start, min(end, length - 1)


def parse_mpop(args: list[bytes], numkeys_index: int,
               directions: tuple[bytes, bytes]) -> tuple[list[bytes], bytes, int]:
    """LMPOP/ZMPOP and their blocking forms: `numkeys key [key ...] <direction> [COUNT count]` from numkeys_index
    -> (keys, the direction upper-cased, count (1 by default)). Errors in Redis's order: numkeys, a missing or
    unknown direction, then COUNT (given once, >= 1)."""
    numkeys = parse_range(args[numkeys_index], 1, LONG_MAX, messages.NUMKEYS_POSITIVE)
    where_index = numkeys_index + numkeys + 1
    if where_index >= len(args):
        raise CommandError(messages.SYNTAX)
    where = args[where_index].upper()
    if where not in directions:
        raise CommandError(messages.SYNTAX)
    count = -1
    i = where_index + 1
    while i < len(args):
        if count == -1 and args[i].upper() == b"COUNT" and i < len(args) - 1:
            count = parse_range(args[i + 1], 1, LONG_MAX, messages.COUNT_POSITIVE)
            i += 2
        else:
            raise CommandError(messages.SYNTAX)
    return args[numkeys_index + 1:where_index], where, (1 if count == -1 else count)


def leading_flags(args: list[bytes], index: int, names: tuple[bytes, ...]) -> tuple[frozenset[bytes], int]:
    """ZADD/GEOADD's options: the flags among `names` (upper-case, any case accepted, repeats allowed) from
    args[index] up to the first other argument, and that argument's index."""
    flags = set()
    while index < len(args) and (flag := args[index].upper()) in names:
        flags.add(flag)
        index += 1
    return frozenset(flags), index


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
