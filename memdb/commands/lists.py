"""List commands (Redis 7.0 t_list.c), including the blocking ones.

A list is a `ListValue` (a deque). Redis 7.0 always reports the encoding "quicklist" (listpack-encoded small lists
came in 7.2). Empty lists never exist: every command that can empty a list deletes the key.

Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) first try to serve the request like their
non-blocking twin; when every key is missing they return `Blocked(keys, timeout_ms)`, and the node re-runs the
same command when one of the keys is modified, or replies with a null array once the timeout passes (Redis's
replyToBlockedClientTimedOut sends a null *array* for every list command, BRPOPLPUSH included).
The order of checks follows Redis: the timeout is parsed before any key is looked at, and a key of the wrong type
met before a non-empty list is a WRONGTYPE error even for a blocking command.
"""
from __future__ import annotations

import itertools
from typing import Any

from memdb import notify
from memdb.commands import messages
from memdb.commands._typeutil import (
    LONG_MIN, index_range, lookup, numkeys_finder, parse_long, parse_mpop, parse_positive, signal_or_delete)
from memdb.commands.args import parse_timeout_ms
from memdb.commands.declare import command
from memdb.commands.spec import NULL_ARRAY, OK, Blocked, CommandError, Context
from memdb.keyspace import ListValue

LEFT, RIGHT = b"LEFT", b"RIGHT"
_POP_EVENTS = {LEFT: "lpop", RIGHT: "rpop"}
_PUSH_EVENTS = {LEFT: "lpush", RIGHT: "rpush"}


def encoding(value: ListValue) -> str:
    """OBJECT ENCODING of a list in Redis 7.0."""
    return "quicklist"


# -- helpers ------------------------------------------------------------------------------------------------------
def _lookup(ctx: Context, key: bytes) -> ListValue | None:
    return lookup(ctx, key, ListValue)


def _where(arg: bytes) -> bytes:
    """getListPositionFromObjectOrReply: LEFT or RIGHT, else syntax error."""
    where = arg.upper()
    if where not in (LEFT, RIGHT):
        raise CommandError(messages.SYNTAX)
    return where


def _pop(value: ListValue, where: bytes) -> bytes:
    return value.popleft() if where == LEFT else value.pop()


def _pop_many(ctx: Context, key: bytes, value: ListValue, where: bytes, count: int) -> list[bytes]:
    popped = [_pop(value, where) for _ in range(min(count, len(value)))]
    signal_or_delete(ctx, key, value, notify.LIST, _POP_EVENTS[where])
    return popped


def _push(ctx: Context, key: bytes, value: ListValue | None, where: bytes, elements: list[bytes]) -> ListValue:
    """Push onto value (creating the list at key if value is None)."""
    if value is None:
        value = ListValue()
        ctx.db.set(key, value)
    if where == LEFT:
        value.extendleft(elements)
    else:
        value.extend(elements)
    ctx.db.signal_modified(key)
    ctx.notify(notify.LIST, _PUSH_EVENTS[where], key)
    return value


# -- push ---------------------------------------------------------------------------------------------------------
def _push_command(ctx: Context, args: list[bytes], where: bytes, only_existing: bool) -> int:
    key = args[1]
    value = _lookup(ctx, key)
    if value is None and only_existing:
        return 0
    return len(_push(ctx, key, value, where, args[2:]))


def lpush(ctx: Context, args: list[bytes]) -> Any:
    return _push_command(ctx, args, LEFT, False)


def rpush(ctx: Context, args: list[bytes]) -> Any:
    return _push_command(ctx, args, RIGHT, False)


def lpushx(ctx: Context, args: list[bytes]) -> Any:
    return _push_command(ctx, args, LEFT, True)


def rpushx(ctx: Context, args: list[bytes]) -> Any:
    return _push_command(ctx, args, RIGHT, True)


# -- pop ----------------------------------------------------------------------------------------------------------
def _pop_command(ctx: Context, args: list[bytes], where: bytes) -> Any:
    """popGenericCommand: LPOP key [count]. Without count: a bulk or nil; with count: an array, a null array for
    a missing key, and an empty array for count 0 on an existing list."""
    if len(args) > 3:
        raise CommandError(messages.wrong_arity(args[0].decode(errors="replace").lower()))
    has_count = len(args) == 3
    count = parse_positive(args[2]) if has_count else 0
    key = args[1]
    value = _lookup(ctx, key)
    if value is None:
        return NULL_ARRAY if has_count else None
    if not has_count:
        popped = _pop(value, where)
        signal_or_delete(ctx, key, value, notify.LIST, _POP_EVENTS[where])
        return popped
    if count == 0:
        return []
    return _pop_many(ctx, key, value, where, count)


def lpop(ctx: Context, args: list[bytes]) -> Any:
    return _pop_command(ctx, args, LEFT)


def rpop(ctx: Context, args: list[bytes]) -> Any:
    return _pop_command(ctx, args, RIGHT)


# -- reads --------------------------------------------------------------------------------------------------------
def llen(ctx: Context, args: list[bytes]) -> Any:
    value = _lookup(ctx, args[1])
    return 0 if value is None else len(value)


def lrange(ctx: Context, args: list[bytes]) -> Any:
    start, end = parse_long(args[2]), parse_long(args[3])
    value = _lookup(ctx, args[1])
    if value is None:
        return []
    bounds = index_range(start, end, len(value))
    if bounds is None:
        return []
    first, last = bounds
    if first > len(value) // 2:   # walk from the nearer end, as a quicklist iterator would
        tail = list(itertools.islice(reversed(value), len(value) - 1 - last, len(value) - first))
        tail.reverse()
        return tail
    return list(itertools.islice(value, first, last + 1))


def lindex(ctx: Context, args: list[bytes]) -> Any:
    value = _lookup(ctx, args[1])
    if value is None:
        return None
    index = parse_long(args[2])
    if index < 0:
        index += len(value)
    if not 0 <= index < len(value):
        return None
    return value[index]


def lpos(ctx: Context, args: list[bytes]) -> Any:
    """LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]."""
    element = args[2]
    rank, count, maxlen = 1, -1, 0
    i = 3
    while i < len(args):
        opt = args[i].upper()
        more = len(args) - 1 - i
        if opt == b"RANK" and more:
            i += 1
            rank = parse_long(args[i])
            if rank == 0:
                raise CommandError(messages.LPOS_RANK_ZERO)
        elif opt == b"COUNT" and more:
            i += 1
            count = parse_positive(args[i], messages.LPOS_COUNT_NEGATIVE)
        elif opt == b"MAXLEN" and more:
            i += 1
            maxlen = parse_positive(args[i], messages.LPOS_MAXLEN_NEGATIVE)
        else:
            raise CommandError(messages.SYNTAX)
        i += 1
    from_tail = rank < 0
    # -LONG_MIN overflows back to LONG_MIN in C, and "matches >= rank" is then always true: like rank -1.
    skip = 0 if rank == LONG_MIN else abs(rank) - 1
    value = _lookup(ctx, args[1])
    if value is None:
        return [] if count != -1 else None
    length = len(value)
    items = reversed(value) if from_tail else iter(value)
    limit = length if maxlen == 0 else min(maxlen, length)
    found: list[int] = []
    matches = 0
    for index, item in enumerate(itertools.islice(items, limit)):
        if item == element:
            matches += 1
            if matches > skip:
                found.append(length - 1 - index if from_tail else index)
                if count == -1 or (count and len(found) >= count):
                    break
    if count == -1:
        return found[0] if found else None
    return found


# -- in-place edits -----------------------------------------------------------------------------------------------
def lset(ctx: Context, args: list[bytes]) -> Any:
    key = args[1]
    value = _lookup(ctx, key)
    if value is None:
        raise CommandError(messages.NO_SUCH_KEY)
    index = parse_long(args[2])
    if index < 0:
        index += len(value)
    if not 0 <= index < len(value):
        raise CommandError(messages.INDEX_OUT_OF_RANGE)
    value[index] = args[3]
    ctx.db.signal_modified(key)
    ctx.notify(notify.LIST, "lset", key)
    return OK


def linsert(ctx: Context, args: list[bytes]) -> Any:
    where = args[2].upper()
    if where not in (b"BEFORE", b"AFTER"):
        raise CommandError(messages.SYNTAX)
    key = args[1]
    value = _lookup(ctx, key)
    if value is None:
        return 0
    try:
        index = value.index(args[3])
    except ValueError:
        return -1
    value.insert(index if where == b"BEFORE" else index + 1, args[4])
    ctx.db.signal_modified(key)
    ctx.notify(notify.LIST, "linsert", key)
    return len(value)


def lrem(ctx: Context, args: list[bytes]) -> Any:
    count = parse_long(args[2])
    key, element = args[1], args[3]
    value = _lookup(ctx, key)
    if value is None:
        return 0
    items = list(value)
    if count < 0:
        items.reverse()
    limit = abs(count) if count else len(items)
    kept, removed = [], 0
    for item in items:
        if removed < limit and item == element:
            removed += 1
        else:
            kept.append(item)
    if removed:
        if count < 0:
            kept.reverse()
        value.clear()
        value.extend(kept)
        signal_or_delete(ctx, key, value, notify.LIST, "lrem")
    return removed


def ltrim(ctx: Context, args: list[bytes]) -> Any:
    start, end = parse_long(args[2]), parse_long(args[3])
    key = args[1]
    value = _lookup(ctx, key)
    if value is None:
        return OK
    bounds = index_range(start, end, len(value))
    if bounds is None:
        value.clear()
    else:
        first, last = bounds
        for _ in range(len(value) - 1 - last):
            value.pop()
        for _ in range(first):
            value.popleft()
    signal_or_delete(ctx, key, value, notify.LIST, "ltrim")
    return OK


# -- moves --------------------------------------------------------------------------------------------------------
def _move(ctx: Context, source: bytes, destination: bytes, where_from: bytes, where_to: bytes) -> Any:
    """lmoveGenericCommand: pop from source, push to destination (the same list rotates)."""
    src = _lookup(ctx, source)
    if src is None:
        return None
    dst = _lookup(ctx, destination)
    element = _pop(src, where_from)
    if source == destination:
        dst = src
    _push(ctx, destination, dst, where_to, [element])
    ctx.notify(notify.LIST, _POP_EVENTS[where_from], source)    # after the push's event, as Redis does
    if not src:
        ctx.db.delete(source)
        ctx.notify(notify.GENERIC, "del", source)
    elif source != destination:
        ctx.db.signal_modified(source)
    return element


def lmove(ctx: Context, args: list[bytes]) -> Any:
    where_from, where_to = _where(args[3]), _where(args[4])
    return _move(ctx, args[1], args[2], where_from, where_to)


def rpoplpush(ctx: Context, args: list[bytes]) -> Any:
    return _move(ctx, args[1], args[2], RIGHT, LEFT)


def _mpop(ctx: Context, keys: list[bytes], where: bytes, count: int) -> Any:
    """mpopGenericCommand: pop from the first non-empty list; None if there is none."""
    for key in keys:
        value = _lookup(ctx, key)
        if value is None:
            continue
        return [key, _pop_many(ctx, key, value, where, count)]
    return None


def lmpop(ctx: Context, args: list[bytes]) -> Any:
    keys, where, count = parse_mpop(args, 1, (LEFT, RIGHT))
    result = _mpop(ctx, keys, where, count)
    return NULL_ARRAY if result is None else result


# -- blocking -----------------------------------------------------------------------------------------------------
def _timeout(arg: bytes) -> int | None:
    timeout_ms = parse_timeout_ms(arg)
    return timeout_ms or None


def _blocking_pop(ctx: Context, args: list[bytes], where: bytes) -> Any:
    timeout_ms = _timeout(args[-1])
    keys = args[1:-1]
    result = _mpop(ctx, keys, where, 1)
    if result is None:
        return Blocked(tuple(keys), timeout_ms)
    key, (element,) = result
    return [key, element]


def blpop(ctx: Context, args: list[bytes]) -> Any:
    return _blocking_pop(ctx, args, LEFT)


def brpop(ctx: Context, args: list[bytes]) -> Any:
    return _blocking_pop(ctx, args, RIGHT)


def _blocking_move(ctx: Context, source: bytes, destination: bytes, where_from: bytes, where_to: bytes,
                   timeout_arg: bytes) -> Any:
    timeout_ms = _timeout(timeout_arg)
    if _lookup(ctx, source) is None:
        return Blocked((source,), timeout_ms)
    return _move(ctx, source, destination, where_from, where_to)


def blmove(ctx: Context, args: list[bytes]) -> Any:
    where_from, where_to = _where(args[3]), _where(args[4])
    return _blocking_move(ctx, args[1], args[2], where_from, where_to, args[5])


def brpoplpush(ctx: Context, args: list[bytes]) -> Any:
    return _blocking_move(ctx, args[1], args[2], RIGHT, LEFT, args[3])


def blmpop(ctx: Context, args: list[bytes]) -> Any:
    keys, where, count = parse_mpop(args, 2, (LEFT, RIGHT))   # Redis checks numkeys/where/COUNT before the timeout
    timeout_ms = _timeout(args[1])
    result = _mpop(ctx, keys, where, count)
    if result is None:
        return Blocked(tuple(keys), timeout_ms)
    return result


COMMANDS = [
    command("lpush", -3, "write denyoom fast", 1, 1, 1, lpush, "@write @list @fast"),
    command("rpush", -3, "write denyoom fast", 1, 1, 1, rpush, "@write @list @fast"),
    command("lpushx", -3, "write denyoom fast", 1, 1, 1, lpushx, "@write @list @fast"),
    command("rpushx", -3, "write denyoom fast", 1, 1, 1, rpushx, "@write @list @fast"),
    command("lpop", -2, "write fast", 1, 1, 1, lpop, "@write @list @fast"),
    command("rpop", -2, "write fast", 1, 1, 1, rpop, "@write @list @fast"),
    command("llen", 2, "readonly fast", 1, 1, 1, llen, "@read @list @fast"),
    command("lrange", 4, "readonly", 1, 1, 1, lrange, "@read @list @slow"),
    command("lindex", 3, "readonly", 1, 1, 1, lindex, "@read @list @slow"),
    command("lset", 4, "write denyoom", 1, 1, 1, lset, "@write @list @slow"),
    command("linsert", 5, "write denyoom", 1, 1, 1, linsert, "@write @list @slow"),
    command("lrem", 4, "write", 1, 1, 1, lrem, "@write @list @slow"),
    command("ltrim", 4, "write", 1, 1, 1, ltrim, "@write @list @slow"),
    command("lpos", -3, "readonly", 1, 1, 1, lpos, "@read @list @slow"),
    command("lmove", 5, "write denyoom", 1, 2, 1, lmove, "@write @list @slow"),
    command("rpoplpush", 3, "write denyoom", 1, 2, 1, rpoplpush, "@write @list @slow"),
    command("lmpop", -4, "write movablekeys", 0, 0, 0, lmpop, "@write @list @slow",
            key_finder=numkeys_finder(1)),
    command("blpop", -3, "write noscript blocking", 1, -2, 1, blpop, "@write @list @slow @blocking"),
    command("brpop", -3, "write noscript blocking", 1, -2, 1, brpop, "@write @list @slow @blocking"),
    command("blmove", 6, "write denyoom noscript blocking", 1, 2, 1, blmove, "@write @list @slow @blocking"),
    command("brpoplpush", 4, "write denyoom noscript blocking", 1, 2, 1, brpoplpush,
            "@write @list @slow @blocking"),
    command("blmpop", -5, "write blocking movablekeys", 0, 0, 0, blmpop, "@write @list @slow @blocking",
            key_finder=numkeys_finder(2)),
]
