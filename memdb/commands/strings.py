"""String commands (Redis 7.0 t_string.c): SET family, GET family, counters, APPEND/SETRANGE/GETRANGE, LCS.

String values are `bytes`. OBJECT ENCODING depends on how Redis created the object, which the value's class records
(see `string_encoding`):
  bytes      went through tryObjectEncoding (SET, MSET, GETSET, APPEND on a new key, INCR...): "int" if it is a
             64-bit integer in canonical form, "embstr" up to 44 bytes, else "raw";
  EmbStr     created by createStringObject without tryObjectEncoding (INCRBYFLOAT): never "int";
  RawStr     modified in place (APPEND to an existing key, SETRANGE): always "raw".
All three are `bytes` for every other purpose (isinstance, equality, hashing).
"""
from __future__ import annotations

from typing import Any

from memdb import keyspace, notify
from memdb.commands import messages
from memdb.commands._typeutil import lookup
from memdb.commands.args import (
    INT64_MAX, INT64_MIN, PROTO_MAX_BULK_LEN, LongDouble, format_long_double, is_int, parse_int, parse_long_double)
from memdb.commands.declare import command
from memdb.commands.spec import OK, CommandError, Context, Map

EMBSTR_SIZE_LIMIT = 44          # OBJ_ENCODING_EMBSTR_SIZE_LIMIT
SHARED_INTEGERS = 10000         # OBJ_SHARED_INTEGERS: 0..9999 are shared objects (OBJECT REFCOUNT = INT_MAX)


class EmbStr(bytes):
    """A string created without tryObjectEncoding (INCRBYFLOAT's result)."""
    __slots__ = ()


class RawStr(bytes):
    """A string Redis holds raw-encoded regardless of its length (after APPEND/SETRANGE on an existing key)."""
    __slots__ = ()


keyspace.register_type(EmbStr, "string")
keyspace.register_type(RawStr, "string")


def string_encoding(value: bytes) -> str:
    kind = type(value)
    if kind is RawStr:
        return "raw"
    if kind is bytes and is_int(value):
        return "int"
    return "embstr" if len(value) <= EMBSTR_SIZE_LIMIT else "raw"


# -- lookups --------------------------------------------------------------------------------------------------------
def lookup_string(ctx: Context, key: bytes) -> bytes | None:
    """The string at key, None if missing; WRONGTYPE for any other type."""
    return lookup(ctx, key, bytes)


def _check_length(current: int, extra: int) -> None:
    if current + extra > PROTO_MAX_BULK_LEN:
        raise CommandError(messages.STRING_TOO_LONG)


# -- SET and friends --------------------------------------------------------------------------------------------------
_SET_NX, _SET_XX, _SET_GET, _KEEPTTL, _PERSIST = 1, 2, 4, 8, 16
_EX, _PX, _EXAT, _PXAT = 32, 64, 128, 256
_EXPIRY_FLAGS = {b"EX": _EX, b"PX": _PX, b"EXAT": _EXAT, b"PXAT": _PXAT}


def _parse_extended(args: list[bytes], start: int, is_set: bool) -> tuple[int, bytes | None]:
    """parseExtendedStringArgumentsOrReply, condition for condition (its quirks included: 'EX 1 EX 2' is fine)."""
    flags = 0
    expire: bytes | None = None
    j = start
    while j < len(args):
        opt = args[j].upper()
        has_next = j < len(args) - 1
        if opt == b"NX" and not flags & _SET_XX and is_set:
            flags |= _SET_NX
        elif opt == b"XX" and not flags & _SET_NX and is_set:
            flags |= _SET_XX
        elif opt == b"GET" and is_set:
            flags |= _SET_GET
        elif opt == b"KEEPTTL" and not flags & (_PERSIST | _EX | _EXAT | _PX | _PXAT) and is_set:
            flags |= _KEEPTTL
        elif opt == b"PERSIST" and not is_set and not flags & (_EX | _EXAT | _PX | _PXAT | _KEEPTTL):
            flags |= _PERSIST
        elif (opt in _EXPIRY_FLAGS and has_next and not flags & (_KEEPTTL | _PERSIST)
              and not flags & ((_EX | _PX | _EXAT | _PXAT) & ~_EXPIRY_FLAGS[opt])):
            flags |= _EXPIRY_FLAGS[opt]
            expire = args[j + 1]
            j += 1
        else:
            raise CommandError(messages.SYNTAX)
        j += 1
    return flags, expire


def _expire_deadline_ms(ctx: Context, expire: bytes, flags: int, command_name: str) -> int:
    """getExpireMillisecondsOrReply: the absolute deadline in unix ms."""
    value = parse_int(expire)
    seconds = bool(flags & (_EX | _EXAT))
    if value <= 0 or (seconds and value > INT64_MAX // 1000):
        raise CommandError(messages.invalid_expire_time(command_name))
    if seconds:
        value *= 1000
    if flags & (_EX | _PX):
        value += ctx.now_ms
    if value > INT64_MAX:   # C overflow -> negative -> "milliseconds <= 0"
        raise CommandError(messages.invalid_expire_time(command_name))
    return value


def _set_generic(ctx: Context, flags: int, key: bytes, value: bytes, expire: bytes | None, command_name: str,
                 ok_reply: Any = OK, abort_reply: Any = None) -> Any:
    deadline = _expire_deadline_ms(ctx, expire, flags, command_name) if expire is not None else None
    old = None
    if flags & _SET_GET:
        old = lookup_string(ctx, key)
    found = ctx.db.get(key, ctx.now_ms) is not None
    if (flags & _SET_NX and found) or (flags & _SET_XX and not found):
        return old if flags & _SET_GET else abort_reply
    ctx.db.set(key, value, keep_ttl=bool(flags & _KEEPTTL))
    ctx.notify(notify.STRING, "set", key)
    if deadline is not None:
        ctx.db.set_expiry(key, deadline)
        ctx.notify(notify.GENERIC, "expire", key)
    return old if flags & _SET_GET else ok_reply


def set_(ctx: Context, args: list[bytes]) -> Any:
    flags, expire = _parse_extended(args, 3, is_set=True)
    return _set_generic(ctx, flags, args[1], bytes(args[2]), expire, "set")


def setnx(ctx: Context, args: list[bytes]) -> Any:
    return _set_generic(ctx, _SET_NX, args[1], bytes(args[2]), None, "setnx", ok_reply=1, abort_reply=0)


def setex(ctx: Context, args: list[bytes]) -> Any:
    return _set_generic(ctx, _EX, args[1], bytes(args[3]), args[2], "setex")


def psetex(ctx: Context, args: list[bytes]) -> Any:
    return _set_generic(ctx, _PX, args[1], bytes(args[3]), args[2], "psetex")


def get(ctx: Context, args: list[bytes]) -> Any:
    return lookup_string(ctx, args[1])


def getdel(ctx: Context, args: list[bytes]) -> Any:
    value = lookup_string(ctx, args[1])
    if value is not None:
        ctx.db.delete(args[1])
        ctx.notify(notify.GENERIC, "del", args[1])
    return value


def getex(ctx: Context, args: list[bytes]) -> Any:
    flags, expire = _parse_extended(args, 2, is_set=False)
    key = args[1]
    value = lookup_string(ctx, key)
    if value is None:
        return None
    deadline = _expire_deadline_ms(ctx, expire, flags, "getex") if expire is not None else None
    if flags & (_EXAT | _PXAT) and deadline is not None and deadline <= ctx.now_ms:
        ctx.db.delete(key)
        ctx.notify(notify.GENERIC, "del", key)
    elif deadline is not None:
        ctx.db.set_expiry(key, deadline)
        ctx.notify(notify.GENERIC, "expire", key)
    elif flags & _PERSIST and ctx.db.ttl_ms(key) is not None:
        ctx.db.set_expiry(key, None)
        ctx.notify(notify.GENERIC, "persist", key)
    return value


def getset(ctx: Context, args: list[bytes]) -> Any:
    old = lookup_string(ctx, args[1])
    ctx.db.set(args[1], bytes(args[2]))
    ctx.notify(notify.STRING, "set", args[1])
    return old


def mget(ctx: Context, args: list[bytes]) -> Any:
    reply = []
    for key in args[1:]:
        value = ctx.db.get(key, ctx.now_ms, ctx.is_replica_read)
        reply.append(value if isinstance(value, bytes) else None)
    return reply


def mset(ctx: Context, args: list[bytes]) -> Any:
    if len(args) % 2 == 0:
        raise CommandError(messages.wrong_arity("mset"))
    for i in range(1, len(args), 2):
        ctx.db.get(args[i], ctx.now_ms)   # lookupKeyWrite: an expired key is deleted first, on every node alike
        ctx.db.set(args[i], bytes(args[i + 1]))
        ctx.notify(notify.STRING, "set", args[i])
    return OK


def msetnx(ctx: Context, args: list[bytes]) -> Any:
    if len(args) % 2 == 0:
        raise CommandError(messages.wrong_arity("msetnx"))
    for i in range(1, len(args), 2):
        if ctx.db.get(args[i], ctx.now_ms) is not None:
            return 0
    for i in range(1, len(args), 2):
        ctx.db.set(args[i], bytes(args[i + 1]))
        ctx.notify(notify.STRING, "set", args[i])
    return 1


# -- counters -------------------------------------------------------------------------------------------------------
def _incr_by(ctx: Context, key: bytes, increment: int) -> int:
    current = lookup_string(ctx, key)
    value = 0 if current is None else parse_int(current)
    if (increment < 0 and value < 0 and increment < INT64_MIN - value) or \
            (increment > 0 and value > 0 and increment > INT64_MAX - value):
        raise CommandError(messages.OVERFLOW)
    value += increment
    ctx.db.set(key, b"%d" % value, keep_ttl=True)
    ctx.notify(notify.STRING, "incrby", key)
    return value


def incr(ctx: Context, args: list[bytes]) -> Any:
    return _incr_by(ctx, args[1], 1)


def decr(ctx: Context, args: list[bytes]) -> Any:
    return _incr_by(ctx, args[1], -1)


def incrby(ctx: Context, args: list[bytes]) -> Any:
    return _incr_by(ctx, args[1], parse_int(args[2]))


def decrby(ctx: Context, args: list[bytes]) -> Any:
    decrement = parse_int(args[2])
    if decrement == INT64_MIN:
        raise CommandError(messages.DECREMENT_OVERFLOW)
    return _incr_by(ctx, args[1], -decrement)


def incrbyfloat(ctx: Context, args: list[bytes]) -> Any:
    key = args[1]
    current = lookup_string(ctx, key)
    value = LongDouble.from_int(0) if current is None else parse_long_double(current)
    increment = parse_long_double(args[2])
    total = value + increment
    if not total.is_finite():
        raise CommandError(messages.NAN_OR_INFINITY)
    text = format_long_double(total)
    ctx.db.set(key, EmbStr(text), keep_ttl=True)
    ctx.notify(notify.STRING, "incrbyfloat", key)
    return text


# -- byte ranges ------------------------------------------------------------------------------------------------------
def append(ctx: Context, args: list[bytes]) -> Any:
    key, suffix = args[1], bytes(args[2])
    current = lookup_string(ctx, key)
    if current is None:
        ctx.db.set(key, suffix)
        ctx.notify(notify.STRING, "append", key)
        return len(suffix)
    _check_length(len(current), len(suffix))
    ctx.db.set(key, RawStr(current + suffix), keep_ttl=True)
    ctx.notify(notify.STRING, "append", key)
    return len(current) + len(suffix)


def getrange(ctx: Context, args: list[bytes]) -> Any:
    start, end = parse_int(args[2]), parse_int(args[3])
    value = lookup_string(ctx, args[1])
    if value is None:
        return b""
    length = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start += length
    if end < 0:
        end += length
    start, end = max(start, 0), max(end, 0)
    if end >= length:
        end = length - 1
    if start > end or length == 0:
        return b""
    return bytes(value[start:end + 1])


def setrange(ctx: Context, args: list[bytes]) -> Any:
    key, patch = args[1], bytes(args[3])
    offset = parse_int(args[2])
    if offset < 0:
        raise CommandError(messages.OFFSET_OUT_OF_RANGE)
    current = lookup_string(ctx, key)
    if current is None:
        if not patch:
            return 0
        _check_length(offset, len(patch))
        current = b""
    elif not patch:
        return len(current)
    else:
        _check_length(offset, len(patch))
    padded = current.ljust(offset, b"\0") if len(current) < offset else current
    updated = padded[:offset] + patch + padded[offset + len(patch):]
    ctx.db.set(key, RawStr(updated), keep_ttl=True)
    ctx.notify(notify.STRING, "setrange", key)
    return len(updated)


def strlen(ctx: Context, args: list[bytes]) -> Any:
    value = lookup_string(ctx, args[1])
    return 0 if value is None else len(value)


# -- LCS --------------------------------------------------------------------------------------------------------------
LCS_CELLS_MAX = PROTO_MAX_BULK_LEN // 4   # Redis refuses a DP table larger than proto-max-bulk-len bytes


def lcs(ctx: Context, args: list[bytes]) -> Any:
    a = ctx.db.get(args[1], ctx.now_ms, ctx.is_replica_read)
    b = ctx.db.get(args[2], ctx.now_ms, ctx.is_replica_read)
    if (a is not None and not isinstance(a, bytes)) or (b is not None and not isinstance(b, bytes)):
        raise CommandError(messages.LCS_NOT_STRINGS)
    a = a or b""
    b = b or b""
    get_len = get_idx = with_match_len = False
    min_match_len = 0
    j = 3
    while j < len(args):
        opt = args[j].upper()
        more = len(args) - 1 - j
        if opt == b"IDX":
            get_idx = True
        elif opt == b"LEN":
            get_len = True
        elif opt == b"WITHMATCHLEN":
            with_match_len = True
        elif opt == b"MINMATCHLEN" and more:
            min_match_len = max(parse_int(args[j + 1]), 0)
            j += 1
        else:
            raise CommandError(messages.SYNTAX)
        j += 1
    if get_idx and get_len:
        raise CommandError(messages.LCS_LEN_AND_IDX)
    alen, blen = len(a), len(b)
    if (alen + 1) * (blen + 1) > LCS_CELLS_MAX:
        raise CommandError(messages.LCS_TOO_MUCH_MEMORY)

    # Bit-parallel LCS (Allison-Dix / Hyyro): rows[i] has a 0 bit at j for each LCS "step" of a[:i] vs b, so
    # LCS(i, j) = j - popcount(rows[i] & (2**j - 1)): the same table Redis fills, in O(alen) big-int operations.
    mask = (1 << blen) - 1
    match_masks: dict[int, int] = {}
    for pos, ch in enumerate(b):
        match_masks[ch] = match_masks.get(ch, 0) | (1 << pos)
    rows = [mask]
    v = mask
    for ch in a:
        u = v & match_masks.get(ch, 0)
        v = ((v + u) | (v - u)) & mask
        rows.append(v)

    def table(i: int, j: int) -> int:
        return j - (rows[i] & ((1 << j) - 1)).bit_count()

    total = table(alen, blen)
    if get_len:
        return total

    # Walk back exactly as Redis does, emitting ranges from the end of the strings to the start.
    result = bytearray(total)
    idx = total
    matches = []
    i, jj = alen, blen
    a_start, a_end, b_start, b_end = alen, 0, 0, 0   # a_start == alen: no range open
    while i > 0 and jj > 0:
        emit = False
        if a[i - 1] == b[jj - 1]:
            result[idx - 1] = a[i - 1]
            if a_start == alen:
                a_start = a_end = i - 1
                b_start = b_end = jj - 1
            elif a_start == i and b_start == jj:
                a_start -= 1
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            idx -= 1
            i -= 1
            jj -= 1
        else:
            if table(i - 1, jj) > table(i, jj - 1):
                i -= 1
            else:
                jj -= 1
            if a_start != alen:
                emit = True
        match_len = a_end - a_start + 1
        if emit:
            if min_match_len == 0 or match_len >= min_match_len:
                entry: list[Any] = [[a_start, a_end], [b_start, b_end]]
                if with_match_len:
                    entry.append(match_len)
                matches.append(entry)
            a_start = alen
    if get_idx:
        return Map([(b"matches", matches), (b"len", total)])
    return bytes(result)


COMMANDS = [
    command("set", -3, "write denyoom", 1, 1, 1, set_, "@write @string @slow"),
    command("get", 2, "readonly fast", 1, 1, 1, get, "@read @string @fast"),
    command("getex", -2, "write fast", 1, 1, 1, getex, "@write @string @fast"),
    command("getdel", 2, "write fast", 1, 1, 1, getdel, "@write @string @fast"),
    command("getset", 3, "write denyoom fast", 1, 1, 1, getset, "@write @string @fast"),
    command("setnx", 3, "write denyoom fast", 1, 1, 1, setnx, "@write @string @fast"),
    command("setex", 4, "write denyoom", 1, 1, 1, setex, "@write @string @slow"),
    command("psetex", 4, "write denyoom", 1, 1, 1, psetex, "@write @string @slow"),
    command("mget", -2, "readonly fast", 1, -1, 1, mget, "@read @string @fast"),
    command("mset", -3, "write denyoom", 1, -1, 2, mset, "@write @string @slow"),
    command("msetnx", -3, "write denyoom", 1, -1, 2, msetnx, "@write @string @slow"),
    command("incr", 2, "write denyoom fast", 1, 1, 1, incr, "@write @string @fast"),
    command("decr", 2, "write denyoom fast", 1, 1, 1, decr, "@write @string @fast"),
    command("incrby", 3, "write denyoom fast", 1, 1, 1, incrby, "@write @string @fast"),
    command("decrby", 3, "write denyoom fast", 1, 1, 1, decrby, "@write @string @fast"),
    command("incrbyfloat", 3, "write denyoom fast", 1, 1, 1, incrbyfloat, "@write @string @fast"),
    command("append", 3, "write denyoom fast", 1, 1, 1, append, "@write @string @fast"),
    command("getrange", 4, "readonly", 1, 1, 1, getrange, "@read @string @slow"),
    command("substr", 4, "readonly", 1, 1, 1, getrange, "@read @string @slow"),
    command("setrange", 4, "write denyoom", 1, 1, 1, setrange, "@write @string @slow"),
    command("strlen", 2, "readonly fast", 1, 1, 1, strlen, "@read @string @fast"),
    command("lcs", -3, "readonly", 1, 2, 1, lcs, "@read @string @slow"),
]
