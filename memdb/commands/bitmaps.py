"""Bitmap commands on string values (Redis 7.0 bitops.c): SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD(_RO).

Bits are numbered from the most significant bit of byte 0 (bit 0 is 0x80 of the first byte), as in Redis.
Strings are immutable `bytes`, so every write builds a new value; Redis modifies the sds in place, which makes
the object raw-encoded, so written values are stored as `RawStr` (OBJECT ENCODING "raw", as Redis reports).

Offsets are limited like getBitOffsetFromArgument: 0 <= offset and offset / 8 < proto-max-bulk-len (512 MB), i.e.
the largest bit offset is 4294967295. BITFIELD's "#N" offsets are N * width.
"""
from __future__ import annotations

from typing import Any

from memdb import notify
from memdb.commands import messages
from memdb.commands.args import PROTO_MAX_BULK_LEN, is_int, parse_int
from memdb.commands.declare import command
from memdb.commands.spec import CommandError, Context
from memdb.commands.strings import RawStr, lookup_string


# -- helpers ----------------------------------------------------------------------------------------------------------
def parse_bit_offset(arg: bytes, hash_form: bool = False, bits: int = 0) -> int:
    """getBitOffsetFromArgument: a bit offset, '#N' meaning N * bits where allowed (BITFIELD)."""
    text = bytes(arg)
    use_hash = hash_form and text[:1] == b"#"
    if use_hash:
        text = text[1:]
    if not is_int(text):
        raise CommandError(messages.BIT_OFFSET)
    offset = int(text)
    if use_hash:
        offset *= bits
    if offset < 0 or (offset >> 3) >= PROTO_MAX_BULK_LEN:
        raise CommandError(messages.BIT_OFFSET)
    return offset


def _lookup_for_write(ctx: Context, key: bytes, max_bit: int) -> bytes:
    """lookupStringForBitCommand: the string at key, zero-padded to hold bit max_bit (created if missing)."""
    current = lookup_string(ctx, key)
    needed = (max_bit >> 3) + 1
    if current is None:
        return b"\0" * needed
    if len(current) < needed:
        return bytes(current) + b"\0" * (needed - len(current))
    return bytes(current)


def _store(ctx: Context, key: bytes, data: bytes | bytearray) -> None:
    """Keeps the key's TTL: Redis changes the string in place."""
    ctx.db.set(key, RawStr(data), keep_ttl=True)


def _popcount(data: bytes) -> int:
    return int.from_bytes(data, "big").bit_count() if data else 0


def _clip_range(start: int, end: int, total: int) -> tuple[int, int]:
    """Negative indexes count from the end; clamp both to [0, total-1] (start may still exceed end)."""
    if start < 0:
        start += total
    if end < 0:
        end += total
    start = max(start, 0)
    end = max(end, 0)
    if end >= total:
        end = total - 1
    return start, end


def _parse_unit(arg: bytes) -> bool:
    unit = arg.upper()
    if unit == b"BIT":
        return True
    if unit == b"BYTE":
        return False
    raise CommandError(messages.SYNTAX)


# -- SETBIT / GETBIT --------------------------------------------------------------------------------------------------
def setbit(ctx: Context, args: list[bytes]) -> Any:
    offset = parse_bit_offset(args[2])
    on = parse_int(args[3], messages.BIT_VALUE)
    if on & ~1:
        raise CommandError(messages.BIT_VALUE)
    key = args[1]
    data = bytearray(_lookup_for_write(ctx, key, offset))
    byte, mask = offset >> 3, 0x80 >> (offset & 7)
    old = 1 if data[byte] & mask else 0
    if on:
        data[byte] |= mask
    else:
        data[byte] &= ~mask & 0xFF
    _store(ctx, key, data)
    if old != on:       # Redis 7.0 signals (and notifies) only a bit that changed
        ctx.notify(notify.STRING, "setbit", key)
    return old


def getbit(ctx: Context, args: list[bytes]) -> Any:
    offset = parse_bit_offset(args[2])
    value = lookup_string(ctx, args[1])
    if value is None:
        return 0
    byte = offset >> 3
    if byte >= len(value):
        return 0
    return 1 if value[byte] & (0x80 >> (offset & 7)) else 0


# -- BITCOUNT / BITPOS ------------------------------------------------------------------------------------------------
def _bits_between(data: bytes, first_bit: int, last_bit: int) -> int:
    """Population count of bits first_bit..last_bit (inclusive, MSB-first numbering)."""
    first_byte, last_byte = first_bit >> 3, last_bit >> 3
    chunk = int.from_bytes(data[first_byte:last_byte + 1], "big")
    width = (last_byte - first_byte + 1) * 8
    chunk >>= 7 - (last_bit & 7)
    chunk &= (1 << (width - (first_bit & 7) - (7 - (last_bit & 7)))) - 1
    return chunk.bit_count()


def bitcount(ctx: Context, args: list[bytes]) -> Any:
    value = lookup_string(ctx, args[1])
    if value is None:
        return 0
    if len(args) in (4, 5):
        start = parse_int(args[2])
        end = parse_int(args[3])
        if start < 0 and end < 0 and start > end:
            return 0
        is_bit = _parse_unit(args[4]) if len(args) == 5 else False
        total = len(value) * 8 if is_bit else len(value)
        start, end = _clip_range(start, end, total)
        if start > end:
            return 0
        if is_bit:
            return _bits_between(value, start, end)
        return _popcount(value[start:end + 1])
    if len(args) == 2:
        return _popcount(value)
    raise CommandError(messages.SYNTAX)


def _first_bit(data: bytes, first_bit: int, last_bit: int, bit: int) -> int | None:
    """Position of the first bit equal to `bit` within first_bit..last_bit, or None."""
    if first_bit > last_bit:
        return None
    first_byte, last_byte = first_bit >> 3, last_bit >> 3
    chunk = bytearray(data[first_byte:last_byte + 1])
    # Mask the edge bits outside the range so they never match.
    head_mask = (0xFF >> (first_bit & 7))
    tail_mask = (0xFF << (7 - (last_bit & 7))) & 0xFF
    if bit:
        chunk[0] &= head_mask
        chunk[-1] &= tail_mask
        skip = b"\x00"
    else:
        chunk[0] |= ~head_mask & 0xFF
        chunk[-1] |= ~tail_mask & 0xFF
        skip = b"\xff"
    stripped = chunk.lstrip(skip)
    if not stripped:
        return None
    index = len(chunk) - len(stripped)
    byte = stripped[0] if bit else ~stripped[0] & 0xFF
    return (first_byte + index) * 8 + (8 - byte.bit_length())


def bitpos(ctx: Context, args: list[bytes]) -> Any:
    bit = parse_int(args[2])
    if bit not in (0, 1):
        raise CommandError(messages.BITPOS_BIT)
    value = lookup_string(ctx, args[1])
    if value is None:
        return -1 if bit else 0
    length = len(value)
    end_given = False
    if len(args) in (4, 5, 6):
        start = parse_int(args[3])
        is_bit = _parse_unit(args[5]) if len(args) == 6 else False
        if len(args) >= 5:
            end = parse_int(args[4])
            end_given = True
        else:
            end = length * 8 + 7 if is_bit else length - 1
        total = length * 8 if is_bit else length
        start, end = _clip_range(start, end, total)
        if start > end:
            return -1
        first_bit, last_bit = (start, end) if is_bit else (start * 8, end * 8 + 7)
    elif len(args) == 3:
        if length == 0:
            return -1
        first_bit, last_bit = 0, length * 8 - 1
    else:
        raise CommandError(messages.SYNTAX)
    found = _first_bit(value, first_bit, last_bit, bit)
    if found is not None:
        return found
    if bit == 1 or end_given:
        return -1
    # Looking for a clear bit with no explicit end: the string is as if padded with zeros on the right.
    return last_bit + 1


# -- BITOP ------------------------------------------------------------------------------------------------------------
def bitop(ctx: Context, args: list[bytes]) -> Any:
    op = args[1].upper()
    if op not in (b"AND", b"OR", b"XOR", b"NOT"):
        raise CommandError(messages.SYNTAX)
    if op == b"NOT" and len(args) != 4:
        raise CommandError(messages.BITOP_NOT_SINGLE_KEY)
    sources = []
    for key in args[3:]:
        value = lookup_string(ctx, key)
        sources.append(b"" if value is None else bytes(value))
    max_len = max(len(s) for s in sources)
    target = args[2]
    if not max_len:
        if ctx.db.delete(target):
            ctx.notify(notify.GENERIC, "del", target)
        return 0
    numbers = [int.from_bytes(s.ljust(max_len, b"\0"), "big") for s in sources]
    if op == b"NOT":
        result = ~numbers[0] & ((1 << (8 * max_len)) - 1)
    else:
        result = numbers[0]
        for number in numbers[1:]:
            if op == b"AND":
                result &= number
            elif op == b"OR":
                result |= number
            else:
                result ^= number
    ctx.db.set(target, RawStr(result.to_bytes(max_len, "big")))
    ctx.notify(notify.STRING, "set", target)
    return max_len


# -- BITFIELD ---------------------------------------------------------------------------------------------------------
_WRAP, _SAT, _FAIL = "wrap", "sat", "fail"


def _parse_type(arg: bytes) -> tuple[bool, int]:
    """getBitfieldTypeFromArgument: (signed, bits) for i1..i64 / u1..u63 (lower-case prefix only)."""
    prefix, digits = arg[:1], bytes(arg[1:])
    if prefix not in (b"i", b"u") or not is_int(digits):
        raise CommandError(messages.BITFIELD_TYPE)
    bits = int(digits)
    signed = prefix == b"i"
    if bits < 1 or (signed and bits > 64) or (not signed and bits > 63):
        raise CommandError(messages.BITFIELD_TYPE)
    return signed, bits


def _get_field(data: bytes | bytearray, offset: int, bits: int, signed: bool) -> int:
    first_byte, last_byte = offset >> 3, (offset + bits - 1) >> 3
    chunk = bytes(data[first_byte:last_byte + 1]).ljust(last_byte - first_byte + 1, b"\0")
    value = int.from_bytes(chunk, "big") >> (7 - ((offset + bits - 1) & 7))
    value &= (1 << bits) - 1
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return value


def _set_field(data: bytearray, offset: int, bits: int, value: int) -> None:
    first_byte, last_byte = offset >> 3, (offset + bits - 1) >> 3
    width = (last_byte - first_byte + 1) * 8
    shift = 7 - ((offset + bits - 1) & 7)
    mask = ((1 << bits) - 1) << shift
    chunk = int.from_bytes(data[first_byte:last_byte + 1], "big")
    chunk = (chunk & ~mask) | ((value & ((1 << bits) - 1)) << shift)
    data[first_byte:last_byte + 1] = chunk.to_bytes(width // 8, "big")


def _int64(value: int) -> int:
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >> 63 else value


def _overflow(value: int, incr: int, bits: int, signed: bool, policy: str) -> tuple[bool, int]:
    """checkSignedBitfieldOverflow / checkUnsignedBitfieldOverflow with C's 64-bit arithmetic (its quirk included:
    SET i16 to a value far below -2**63 + 2**15 reads as an *upward* overflow, so SAT stores the maximum).
    Returns (overflowed, the value WRAP/SAT would store)."""
    if signed:
        high = (1 << 63) - 1 if bits == 64 else (1 << (bits - 1)) - 1
        low = -high - 1
        max_incr = _int64(high - value)
        min_incr = _int64(low - value)
        up = value > high or (bits != 64 and incr > max_incr) or (value >= 0 and incr > 0 and incr > max_incr)
        down = not up and (value < low or (bits != 64 and incr < min_incr)
                           or (value < 0 and incr < 0 and incr < min_incr))
    else:
        value &= (1 << 64) - 1
        high, low = (1 << bits) - 1, 0
        up = value > high or (incr > 0 and incr > _int64(high - value))
        down = not up and incr < 0 and incr < _int64(-value)
    if not (up or down):
        return False, value + incr
    if policy == _SAT:
        return True, high if up else low
    wrapped = (value + incr) & ((1 << bits) - 1)
    if signed and wrapped >> (bits - 1):
        wrapped -= 1 << bits
    return True, wrapped


def _bitfield(ctx: Context, args: list[bytes], readonly_command: bool) -> Any:
    ops: list[tuple[str, bool, int, int, int, str]] = []   # (op, signed, bits, offset, argument, overflow)
    policy = _WRAP
    readonly = True
    highest_write_bit = 0
    j = 2
    while j < len(args):
        remaining = len(args) - j - 1
        sub = args[j].upper()
        if sub == b"GET" and remaining >= 2:
            op = "get"
        elif sub == b"SET" and remaining >= 3:
            op = "set"
        elif sub == b"INCRBY" and remaining >= 3:
            op = "incrby"
        elif sub == b"OVERFLOW" and remaining >= 1:
            name = args[j + 1].upper()
            if name == b"WRAP":
                policy = _WRAP
            elif name == b"SAT":
                policy = _SAT
            elif name == b"FAIL":
                policy = _FAIL
            else:
                raise CommandError(messages.BITFIELD_OVERFLOW_TYPE)
            j += 2
            continue
        else:
            raise CommandError(messages.SYNTAX)
        signed, bits = _parse_type(args[j + 1])
        offset = parse_bit_offset(args[j + 2], hash_form=True, bits=bits)
        argument = 0
        if op != "get":
            readonly = False
            highest_write_bit = max(highest_write_bit, offset + bits - 1)
            argument = parse_int(args[j + 3])
        ops.append((op, signed, bits, offset, argument, policy))
        j += 3 if op == "get" else 4

    key = args[1]
    if readonly:
        data: bytes | bytearray = lookup_string(ctx, key) or b""
    else:
        if readonly_command:
            raise CommandError(messages.BITFIELD_RO_GET_ONLY)
        data = bytearray(_lookup_for_write(ctx, key, highest_write_bit))

    reply: list[Any] = []
    changes = 0
    for op, signed, bits, offset, argument, op_policy in ops:
        old = _get_field(data, offset, bits, signed)
        if op == "get":
            reply.append(old)
            continue
        if op == "incrby":
            overflowed, new = _overflow(old, argument, bits, signed, op_policy)
            result = new
        else:
            # SET of an unsigned field reads the argument as a uint64 (so -1 saturates to the maximum)
            overflowed, new = _overflow(argument, 0, bits, signed, op_policy)
            result = old
        if overflowed and op_policy == _FAIL:
            reply.append(None)
            continue
        assert isinstance(data, bytearray)
        _set_field(data, offset, bits, new)
        changes += 1
        reply.append(result)
    if not readonly:
        _store(ctx, key, data)
    if changes:
        ctx.notify(notify.STRING, "setbit", key)
    return reply


def bitfield(ctx: Context, args: list[bytes]) -> Any:
    return _bitfield(ctx, args, readonly_command=False)


def bitfield_ro(ctx: Context, args: list[bytes]) -> Any:
    return _bitfield(ctx, args, readonly_command=True)


COMMANDS = [
    command("setbit", 4, "write denyoom", 1, 1, 1, setbit, "@write @bitmap @slow"),
    command("getbit", 3, "readonly fast", 1, 1, 1, getbit, "@read @bitmap @fast"),
    command("bitcount", -2, "readonly", 1, 1, 1, bitcount, "@read @bitmap @slow"),
    command("bitpos", -3, "readonly", 1, 1, 1, bitpos, "@read @bitmap @slow"),
    command("bitop", -4, "write denyoom", 2, -1, 1, bitop, "@write @bitmap @slow"),
    command("bitfield", -2, "write denyoom", 1, 1, 1, bitfield, "@write @bitmap @slow"),
    command("bitfield_ro", -2, "readonly fast", 1, 1, 1, bitfield_ro, "@read @bitmap @fast"),
]
