"""Hash commands (Redis 7.0 t_hash.c).

A hash is a `HashValue` (an insertion-ordered dict field -> value). Redis keeps small hashes as a listpack (fields
in insertion order, an overwrite keeps its place, which a Python dict reproduces) and converts them once and for
all to a hash table when they get more than hash-max-listpack-entries fields or a field/value longer than
hash-max-listpack-value bytes. The conversion is recorded by switching the value's class to `HashTableValue`
(same layout, so `__class__` assignment is allowed), which OBJECT ENCODING and HSCAN read.
"""
from __future__ import annotations

from typing import Any

from memdb import keyspace, notify
from memdb.commands import messages
from memdb.commands._typeutil import lookup, remove_from_dict, remove_members
from memdb.commands.args import (
    INT64_MAX, INT64_MIN, LongDouble, format_long_double, parse_int, parse_int_range, parse_long_double)
from memdb.commands.declare import command
from memdb.commands.scanning import glob_match, parse_cursor, parse_scan_options, scan_page
from memdb.commands.spec import OK, CommandError, Context, Map
from memdb.keyspace import HashValue

HASH_MAX_LISTPACK_ENTRIES = 512   # hash-max-listpack-entries (Debian's redis 7.0 default)
HASH_MAX_LISTPACK_VALUE = 64      # hash-max-listpack-value
LONG_MAX = INT64_MAX


class HashTableValue(HashValue):
    """A hash Redis has converted to a real hash table (encoding 'hashtable')."""
    __slots__ = ()


keyspace.register_type(HashTableValue, "hash")


def hash_encoding(value: HashValue) -> str:
    return "hashtable" if isinstance(value, HashTableValue) else "listpack"


def _convert(value: HashValue) -> None:
    if type(value) is HashValue:
        value.__class__ = HashTableValue


def _lookup(ctx: Context, key: bytes) -> HashValue | None:
    return lookup(ctx, key, HashValue)


def _lookup_or_create(ctx: Context, key: bytes) -> HashValue:
    """hashTypeLookupWriteOrCreate: the hash, stored as a new empty hash if missing (callers always add to it)."""
    value = _lookup(ctx, key)
    if value is None:
        value = HashValue()
        ctx.db.set(key, value)
    return value


def _try_conversion(value: HashValue, items: list[bytes]) -> None:
    """hashTypeTryConversion: any field or value argument too long for a listpack converts up front."""
    if type(value) is HashValue and any(len(item) > HASH_MAX_LISTPACK_VALUE for item in items):
        _convert(value)


def _hash_set(ctx: Context, key: bytes, value: HashValue, field: bytes, new: bytes) -> bool:
    """hashTypeSet; True if the field is new."""
    if type(value) is HashValue and (len(field) > HASH_MAX_LISTPACK_VALUE or len(new) > HASH_MAX_LISTPACK_VALUE):
        _convert(value)
    created = field not in value
    value[field] = new
    if type(value) is HashValue and len(value) > HASH_MAX_LISTPACK_ENTRIES:
        _convert(value)
    ctx.db.signal_modified(key)
    return created


def _dropped_if_empty(ctx: Context, key: bytes, value: HashValue) -> None:
    if not value:
        ctx.db.delete(key)


# -- writes -----------------------------------------------------------------------------------------------------------
def hset(ctx: Context, args: list[bytes]) -> Any:
    if len(args) % 2 == 1:
        raise CommandError(messages.wrong_arity(args[0].decode("utf-8", "replace").lower()))
    key = args[1]
    value = _lookup_or_create(ctx, key)
    _try_conversion(value, args[2:])
    created = sum(_hash_set(ctx, key, value, args[i], bytes(args[i + 1])) for i in range(2, len(args), 2))
    ctx.notify(notify.HASH, "hset", key)
    return created


def hmset(ctx: Context, args: list[bytes]) -> Any:
    if len(args) % 2 == 1:
        raise CommandError(messages.wrong_arity("hmset"))
    hset(ctx, args)
    return OK


def hsetnx(ctx: Context, args: list[bytes]) -> Any:
    key, field = args[1], args[2]
    value = _lookup_or_create(ctx, key)
    if field in value:
        return 0
    _try_conversion(value, args[2:4])
    _hash_set(ctx, key, value, field, bytes(args[3]))
    ctx.notify(notify.HASH, "hset", key)
    return 1


def hdel(ctx: Context, args: list[bytes]) -> Any:
    return remove_members(ctx, args, HashValue, remove_from_dict, notify.HASH, "hdel")


def hincrby(ctx: Context, args: list[bytes]) -> Any:
    increment = parse_int(args[3])
    key, field = args[1], args[2]
    value = _lookup_or_create(ctx, key)
    current = value.get(field)
    number = 0 if current is None else parse_int(current, messages.HASH_NOT_INTEGER)
    if (increment < 0 and number < 0 and increment < INT64_MIN - number) or \
            (increment > 0 and number > 0 and increment > INT64_MAX - number):
        _dropped_if_empty(ctx, key, value)
        raise CommandError(messages.OVERFLOW)
    number += increment
    _hash_set(ctx, key, value, field, b"%d" % number)
    ctx.notify(notify.HASH, "hincrby", key)
    return number


def hincrbyfloat(ctx: Context, args: list[bytes]) -> Any:
    increment = parse_long_double(args[3])
    if not increment.is_finite():
        raise CommandError(messages.HASH_INCR_NAN_OR_INFINITY)
    key, field = args[1], args[2]
    value = _lookup_or_create(ctx, key)
    current = value.get(field)
    if current is None:
        number = LongDouble.from_int(0)
    else:
        try:
            number = parse_long_double(current)
        except CommandError:
            raise CommandError(messages.HASH_NOT_FLOAT) from None
    total = number + increment
    if not total.is_finite():
        _dropped_if_empty(ctx, key, value)
        raise CommandError(messages.NAN_OR_INFINITY)
    text = format_long_double(total)
    _hash_set(ctx, key, value, field, text)
    ctx.notify(notify.HASH, "hincrbyfloat", key)
    return text


# -- reads ------------------------------------------------------------------------------------------------------------
def hget(ctx: Context, args: list[bytes]) -> Any:
    value = _lookup(ctx, args[1])
    return None if value is None else value.get(args[2])


def hmget(ctx: Context, args: list[bytes]) -> Any:
    value = _lookup(ctx, args[1])
    if value is None:
        return [None] * (len(args) - 2)
    return [value.get(field) for field in args[2:]]


def hlen(ctx: Context, args: list[bytes]) -> Any:
    value = _lookup(ctx, args[1])
    return 0 if value is None else len(value)


def hstrlen(ctx: Context, args: list[bytes]) -> Any:
    value = _lookup(ctx, args[1])
    if value is None:
        return 0
    return len(value.get(args[2], b""))


def hexists(ctx: Context, args: list[bytes]) -> Any:
    value = _lookup(ctx, args[1])
    return int(value is not None and args[2] in value)


def hkeys(ctx: Context, args: list[bytes]) -> Any:
    value = _lookup(ctx, args[1])
    return [] if value is None else list(value)


def hvals(ctx: Context, args: list[bytes]) -> Any:
    value = _lookup(ctx, args[1])
    return [] if value is None else list(value.values())


def hgetall(ctx: Context, args: list[bytes]) -> Any:
    value = _lookup(ctx, args[1])
    return Map([] if value is None else list(value.items()))


def _field_reply(ctx: Context, field: bytes, val: bytes, with_values: bool) -> list[Any]:
    if not with_values:
        return [field]
    if ctx.resp == 2:
        return [field, val]
    return [[field, val]]


def hrandfield(ctx: Context, args: list[bytes]) -> Any:
    if len(args) >= 3:
        count = parse_int_range(args[2], -LONG_MAX, LONG_MAX)
        with_values = False
        if len(args) > 4 or (len(args) == 4 and args[3].upper() != b"WITHVALUES"):
            raise CommandError(messages.SYNTAX)
        if len(args) == 4:
            with_values = True
            if count < -LONG_MAX // 2 or count > LONG_MAX // 2:
                raise CommandError(messages.OUT_OF_RANGE)
        return _hrandfield_count(ctx, args[1], count, with_values)
    value = _lookup(ctx, args[1])
    if value is None:
        return None
    fields = list(value)
    return fields[ctx.rng.randrange(len(fields))]


def _hrandfield_count(ctx: Context, key: bytes, count: int, with_values: bool) -> Any:
    value = _lookup(ctx, key)
    if value is None or count == 0:
        return []
    items = list(value.items())
    reply: list[Any] = []
    if count < 0 or count == 1:
        # CASE 1: repetitions allowed; one independent pick per element
        for _ in range(abs(count)):
            field, val = items[ctx.rng.randrange(len(items))]
            reply.extend(_field_reply(ctx, field, val, with_values))
        return reply
    if count >= len(items):
        chosen = items                          # CASE 2: the whole hash
    else:
        chosen = [items[i] for i in ctx.rng.sample(range(len(items)), count)]
    for field, val in chosen:
        reply.extend(_field_reply(ctx, field, val, with_values))
    return reply


def hscan(ctx: Context, args: list[bytes]) -> Any:
    cursor = parse_cursor(args[2])
    value = _lookup(ctx, args[1])
    if value is None:
        return [b"0", []]
    count, pattern, _ = parse_scan_options(args, 3, allow_type=False)
    if isinstance(value, HashTableValue):
        next_cursor, fields = scan_page(list(value), cursor, count)
    else:
        next_cursor, fields = 0, list(value)   # a listpack is returned whole, whatever the cursor (like Redis)
    reply = []
    for field in fields:
        if pattern is None or glob_match(pattern, field):
            reply.extend((field, value[field]))
    return [b"%d" % next_cursor, reply]


COMMANDS = [
    command("hset", -4, "write denyoom fast", 1, 1, 1, hset, "@write @hash @fast"),
    command("hsetnx", 4, "write denyoom fast", 1, 1, 1, hsetnx, "@write @hash @fast"),
    command("hget", 3, "readonly fast", 1, 1, 1, hget, "@read @hash @fast"),
    command("hmget", -3, "readonly fast", 1, 1, 1, hmget, "@read @hash @fast"),
    command("hmset", -4, "write denyoom fast", 1, 1, 1, hmset, "@write @hash @fast"),
    command("hdel", -3, "write fast", 1, 1, 1, hdel, "@write @hash @fast"),
    command("hlen", 2, "readonly fast", 1, 1, 1, hlen, "@read @hash @fast"),
    command("hstrlen", 3, "readonly fast", 1, 1, 1, hstrlen, "@read @hash @fast"),
    command("hexists", 3, "readonly fast", 1, 1, 1, hexists, "@read @hash @fast"),
    command("hkeys", 2, "readonly", 1, 1, 1, hkeys, "@read @hash @slow"),
    command("hvals", 2, "readonly", 1, 1, 1, hvals, "@read @hash @slow"),
    command("hgetall", 2, "readonly", 1, 1, 1, hgetall, "@read @hash @slow"),
    command("hincrby", 4, "write denyoom fast", 1, 1, 1, hincrby, "@write @hash @fast"),
    command("hincrbyfloat", 4, "write denyoom fast", 1, 1, 1, hincrbyfloat, "@write @hash @fast"),
    command("hrandfield", -2, "readonly", 1, 1, 1, hrandfield, "@read @hash @slow"),
    command("hscan", -3, "readonly", 1, 1, 1, hscan, "@read @hash @slow"),
]
