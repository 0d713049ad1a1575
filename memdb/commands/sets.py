"""Set commands (Redis 7.0 t_set.c).

A set is a `SetValue`: a dict of member -> None, so iteration follows insertion order and is the same on every
node (a Python `set` iterates in per-process hash order). Random picks (SPOP, SRANDMEMBER) draw indexes with the
entry's seeded `ctx.rng` into that order; results of SINTER/SUNION/SDIFF are built by iterating dicts, never sets.

Encoding: Redis 7.0 keeps a set of integers as an intset while it has at most set-max-intset-entries (512)
members, and converts it once and for all to a hash table when a non-integer member is added or it grows past
the limit (7.0 has no listpack sets). A converted set is recorded by switching its class to `SetTableValue`
(same layout, so `__class__` assignment works); OBJECT ENCODING and SSCAN read it. SMEMBERS on an intset returns
members in numeric order; memdb returns insertion order (the differential tests compare such replies unordered).
"""
from __future__ import annotations

from typing import Any, Iterable

from memdb import keyspace, notify
from memdb.commands import messages
from memdb.commands._typeutil import (
    LONG_MAX, lookup, numkeys_finder, parse_positive, parse_range, remove_from_dict, remove_members, signal_or_delete,
    store_or_delete)
from memdb.commands.args import is_int
from memdb.commands.declare import command
from memdb.commands.scanning import glob_match, parse_cursor, parse_scan_options, scan_page
from memdb.commands.spec import CommandError, Context, SetReply
from memdb.keyspace import SetValue

SET_MAX_INTSET_ENTRIES = 512     # set-max-intset-entries


class SetTableValue(SetValue):
    """A set Redis holds as a hash table (encoding 'hashtable')."""
    __slots__ = ()

    def redis_encoding(self) -> str:
        return "hashtable"


keyspace.register_type(SetTableValue, "set")


def encoding(value: SetValue) -> str:
    """OBJECT ENCODING of a set in Redis 7.0: intset or hashtable."""
    if isinstance(value, SetTableValue):
        return "hashtable"
    if len(value) <= SET_MAX_INTSET_ENTRIES and all(is_int(m) for m in value):
        return "intset"
    return "hashtable"


# -- helpers ------------------------------------------------------------------------------------------------------
def _lookup(ctx: Context, key: bytes) -> SetValue | None:
    return lookup(ctx, key, SetValue)


def _new_set(members: Iterable[bytes] = ()) -> SetValue:
    """setTypeCreate + setTypeAdd of each member: an intset that converts as Redis's would."""
    value = SetValue()
    for member in members:
        _add(value, member)
    return value


def _add(value: SetValue, member: bytes) -> bool:
    """setTypeAdd: True if the member is new. Converts an intset on a non-integer member or past the limit."""
    if member in value:
        return False
    if type(value) is SetValue and not is_int(member):
        value.__class__ = SetTableValue
    value[member] = None
    if type(value) is SetValue and len(value) > SET_MAX_INTSET_ENTRIES:
        value.__class__ = SetTableValue
    return True


def _random_indexes(ctx: Context, size: int, count: int) -> list[int]:
    """count distinct indexes into a collection of `size` (count < size), ascending."""
    return sorted(ctx.rng.sample(range(size), count))


# -- basic commands -----------------------------------------------------------------------------------------------
def sadd(ctx: Context, args: list[bytes]) -> Any:
    key = args[1]
    value = _lookup(ctx, key)
    if value is None:
        value = SetValue()
        ctx.db.set(key, value)
    added = sum(_add(value, member) for member in args[2:])
    if added:
        ctx.db.signal_modified(key)
        ctx.notify(notify.SET, "sadd", key)
    return added


def srem(ctx: Context, args: list[bytes]) -> Any:
    return remove_members(ctx, args, SetValue, remove_from_dict, notify.SET, "srem")


def scard(ctx: Context, args: list[bytes]) -> Any:
    value = _lookup(ctx, args[1])
    return 0 if value is None else len(value)


def sismember(ctx: Context, args: list[bytes]) -> Any:
    value = _lookup(ctx, args[1])
    return int(value is not None and args[2] in value)


def smismember(ctx: Context, args: list[bytes]) -> Any:
    value = _lookup(ctx, args[1])
    return [int(value is not None and member in value) for member in args[2:]]


def smembers(ctx: Context, args: list[bytes]) -> Any:
    value = _lookup(ctx, args[1])
    return SetReply([] if value is None else list(value))


def smove(ctx: Context, args: list[bytes]) -> Any:
    source, destination, member = args[1], args[2], args[3]
    src_value = ctx.db.get(source, ctx.now_ms, ctx.is_replica_read)
    dst_value = ctx.db.get(destination, ctx.now_ms, ctx.is_replica_read)
    if src_value is None:
        return 0
    if not isinstance(src_value, SetValue) or (dst_value is not None and not isinstance(dst_value, SetValue)):
        raise CommandError(messages.WRONGTYPE)
    if src_value is dst_value:
        return int(member in src_value)
    if member not in src_value:
        return 0
    del src_value[member]
    signal_or_delete(ctx, source, src_value, notify.SET, "srem")
    if dst_value is None:
        dst_value = SetValue()
        ctx.db.set(destination, dst_value)
    if _add(dst_value, member):
        ctx.db.signal_modified(destination)
        ctx.notify(notify.SET, "sadd", destination)
    return 1


# -- random -------------------------------------------------------------------------------------------------------
def spop(ctx: Context, args: list[bytes]) -> Any:
    if len(args) > 3:
        raise CommandError(messages.SYNTAX)
    key = args[1]
    if len(args) == 2:
        value = _lookup(ctx, key)
        if value is None:
            return None
        member = _member_at(value, ctx.rng.randrange(len(value)))
        del value[member]
        signal_or_delete(ctx, key, value, notify.SET, "spop")
        return member
    count = parse_positive(args[2])
    value = _lookup(ctx, key)
    if value is None or count == 0:
        return SetReply([])
    size = len(value)
    ctx.notify(notify.SET, "spop", key)
    if count >= size:
        members = list(value)
        ctx.db.delete(key)
        ctx.notify(notify.GENERIC, "del", key)
        return SetReply(members)
    indexes = set(_random_indexes(ctx, size, count))
    popped = [m for i, m in enumerate(value) if i in indexes]
    for member in popped:
        del value[member]
    ctx.db.signal_modified(key)
    return SetReply(popped)


def _member_at(value: SetValue, index: int) -> bytes:
    for i, member in enumerate(value):
        if i == index:
            return member
    raise AssertionError("index within the set")


def srandmember(ctx: Context, args: list[bytes]) -> Any:
    if len(args) > 3:
        raise CommandError(messages.SYNTAX)
    if len(args) == 2:
        value = _lookup(ctx, args[1])
        if value is None:
            return None
        return _member_at(value, ctx.rng.randrange(len(value)))
    count = parse_range(args[2], -LONG_MAX, LONG_MAX)
    value = _lookup(ctx, args[1])
    if value is None or count == 0:
        return []
    members = list(value)
    if count < 0:
        return [members[ctx.rng.randrange(len(members))] for _ in range(-count)]
    if count >= len(members):
        return members
    return [members[i] for i in _random_indexes(ctx, len(members), count)]


# -- algebra ------------------------------------------------------------------------------------------------------
def _sets(ctx: Context, keys: list[bytes]) -> list[SetValue | None]:
    """Every key looked up and type-checked (WRONGTYPE wins even after a missing key)."""
    return [_lookup(ctx, key) for key in keys]


def _inter(values: list[SetValue | None], limit: int = 0) -> list[bytes]:
    if any(v is None for v in values):
        return []
    ordered = sorted(values, key=len)   # smallest first, like Redis (stable: ties keep argument order)
    result = []
    for member in ordered[0]:
        if all(member in other for other in ordered[1:]):
            result.append(member)
            if limit and len(result) >= limit:
                break
    return result


def _union(values: list[SetValue | None]) -> list[bytes]:
    seen: dict[bytes, None] = {}
    for value in values:
        if value is not None:
            seen.update(value)
    return list(seen)


def _diff(values: list[SetValue | None]) -> list[bytes]:
    first = values[0]
    if first is None:
        return []
    others = [v for v in values[1:] if v is not None]
    return [m for m in first if not any(m in other for other in others)]


def sinter(ctx: Context, args: list[bytes]) -> Any:
    return SetReply(_inter(_sets(ctx, args[1:])))


def sunion(ctx: Context, args: list[bytes]) -> Any:
    return SetReply(_union(_sets(ctx, args[1:])))


def sdiff(ctx: Context, args: list[bytes]) -> Any:
    return SetReply(_diff(_sets(ctx, args[1:])))


def sinterstore(ctx: Context, args: list[bytes]) -> Any:
    return store_or_delete(ctx, args[1], _new_set(_inter(_sets(ctx, args[2:]))), notify.SET, "sinterstore")


def sunionstore(ctx: Context, args: list[bytes]) -> Any:
    return store_or_delete(ctx, args[1], _new_set(_union(_sets(ctx, args[2:]))), notify.SET, "sunionstore")


def sdiffstore(ctx: Context, args: list[bytes]) -> Any:
    return store_or_delete(ctx, args[1], _new_set(_diff(_sets(ctx, args[2:]))), notify.SET, "sdiffstore")


def sintercard(ctx: Context, args: list[bytes]) -> Any:
    numkeys = parse_range(args[1], 1, LONG_MAX, messages.NUMKEYS_POSITIVE)
    if numkeys > len(args) - 2:
        raise CommandError(messages.NUMKEYS_GREATER_THAN_ARGS)
    limit = 0
    i = 2 + numkeys
    while i < len(args):
        if args[i].upper() == b"LIMIT" and i < len(args) - 1:
            limit = parse_positive(args[i + 1], messages.LIMIT_NEGATIVE)
            i += 2
        else:
            raise CommandError(messages.SYNTAX)
    return len(_inter(_sets(ctx, args[2:2 + numkeys]), limit))


# -- scan ---------------------------------------------------------------------------------------------------------
def sscan(ctx: Context, args: list[bytes]) -> Any:
    cursor = parse_cursor(args[2])
    value = _lookup(ctx, args[1])
    if value is None:
        return [b"0", []]
    count, pattern, _ = parse_scan_options(args, 3, allow_type=False)
    if encoding(value) == "intset":
        # an intset is returned whole in one call, in numeric order, whatever the cursor (like Redis)
        next_cursor, members = 0, sorted(value, key=int)
    else:
        next_cursor, members = scan_page(list(value), cursor, count)
    return [b"%d" % next_cursor, [m for m in members if pattern is None or glob_match(pattern, m)]]


COMMANDS = [
    command("sadd", -3, "write denyoom fast", 1, 1, 1, sadd, "@write @set @fast"),
    command("srem", -3, "write fast", 1, 1, 1, srem, "@write @set @fast"),
    command("scard", 2, "readonly fast", 1, 1, 1, scard, "@read @set @fast"),
    command("sismember", 3, "readonly fast", 1, 1, 1, sismember, "@read @set @fast"),
    command("smismember", -3, "readonly fast", 1, 1, 1, smismember, "@read @set @fast"),
    command("smembers", 2, "readonly", 1, 1, 1, smembers, "@read @set @slow"),
    command("spop", -2, "write fast", 1, 1, 1, spop, "@write @set @fast"),
    command("srandmember", -2, "readonly", 1, 1, 1, srandmember, "@read @set @slow"),
    command("smove", 4, "write fast", 1, 2, 1, smove, "@write @set @fast"),
    command("sinter", -2, "readonly", 1, -1, 1, sinter, "@read @set @slow"),
    command("sintercard", -3, "readonly movablekeys", 0, 0, 0, sintercard, "@read @set @slow",
            key_finder=numkeys_finder(1)),
    command("sinterstore", -3, "write denyoom", 1, -1, 1, sinterstore, "@write @set @slow"),
    command("sunion", -2, "readonly", 1, -1, 1, sunion, "@read @set @slow"),
    command("sunionstore", -3, "write denyoom", 1, -1, 1, sunionstore, "@write @set @slow"),
    command("sdiff", -2, "readonly", 1, -1, 1, sdiff, "@read @set @slow"),
    command("sdiffstore", -3, "write denyoom", 1, -1, 1, sdiffstore, "@write @set @slow"),
    command("sscan", -3, "readonly", 1, 1, 1, sscan, "@read @set @slow"),
]
