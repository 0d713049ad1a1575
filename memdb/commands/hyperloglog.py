"""HyperLogLog commands (Redis 7.0 hyperloglog.c): PFADD, PFCOUNT, PFMERGE, with Redis's exact string format, so a
value moved with GET/SET (or DUMP/RESTORE) between Redis and memdb counts the same, byte for byte.

Format (a plain string value)
-----------------------------
  "HYLL" | encoding (0 dense, 1 sparse) | 3 unused bytes | cached cardinality, 8 bytes little endian, whose most
  significant bit set means "stale" | registers.
16384 registers of 6 bits (P = 14): an element's MurmurHash64A (seed 0xadc83b19) picks the register with its low 14
bits and counts 1 + the trailing zeros of the remaining 50 bits.
  dense:  16384 * 6 bits packed little-endian (register i at bit 6*i), 12288 bytes.
  sparse: run-length opcodes  ZERO 00xxxxxx (1..64 zero registers), XZERO 01xxxxxx yyyyyyyy (1..16384 zeros),
          VAL 1vvvvvxx (1..4 registers of value 1..32). A sparse HLL is promoted to dense when a register needs a
          value over 32 or the string would grow past hll-sparse-max-bytes (3000).
Updates follow hllSparseSet step by step (split the opcode covering the register, then merge up to 5 adjacent VAL
opcodes), so the bytes equal Redis's. The estimator is Ertl's improved raw estimator, as hllCount.

Divergence (determinism): Redis's PFCOUNT writes the computed cardinality back into the cached bytes of the value.
memdb's PFCOUNT is a read that is not logged, so it must not change the keyspace (replicas would differ); it reads
a valid cache but never writes one. Only the 8 cache bytes of a value can differ from Redis after a PFCOUNT.
"""
from __future__ import annotations

import functools
import math
from typing import Any

from memdb import notify
from memdb.commands import messages
from memdb.commands.declare import command
from memdb.commands.spec import OK, CommandError, Context
from memdb.commands.strings import RawStr, string_encoding

HLL_P = 14
HLL_Q = 64 - HLL_P
HLL_REGISTERS = 1 << HLL_P
HLL_P_MASK = HLL_REGISTERS - 1
HLL_BITS = 6
HLL_REGISTER_MAX = (1 << HLL_BITS) - 1
HLL_HDR_SIZE = 16
HLL_DENSE_SIZE = HLL_HDR_SIZE + (HLL_REGISTERS * HLL_BITS + 7) // 8
HLL_DENSE, HLL_SPARSE = 0, 1
HLL_SPARSE_MAX_BYTES = 3000          # hll-sparse-max-bytes
HLL_SPARSE_VAL_MAX_VALUE = 32
HLL_SPARSE_VAL_MAX_LEN = 4
HLL_SPARSE_ZERO_MAX_LEN = 64
HLL_SPARSE_XZERO_MAX_LEN = 16384
HLL_ALPHA_INF = 0.721347520444481703680
MURMUR_SEED = 0xADC83B19
_M64 = (1 << 64) - 1

# Sparse opcodes are kept as small lists: [ZERO, length], [XZERO, length], [VAL, value, length].
ZERO, XZERO, VAL = 0, 1, 2


class CorruptedHLL(Exception):
    """The registers of an HLL string do not add up (Redis's invalid_hll_err)."""


# -- hashing ----------------------------------------------------------------------------------------------------------
def murmurhash64a(data: bytes, seed: int = MURMUR_SEED) -> int:
    m, r = 0xC6A4A7935BD1E995, 47
    length = len(data)
    h = (seed ^ (length * m)) & _M64
    tail = length - (length & 7)
    for i in range(0, tail, 8):
        k = int.from_bytes(data[i:i + 8], "little")
        k = (k * m) & _M64
        k ^= k >> r
        k = (k * m) & _M64
        h ^= k
        h = (h * m) & _M64
    rest = length & 7
    if rest:
        h ^= int.from_bytes(data[tail:], "little")
        h = (h * m) & _M64
    h ^= h >> r
    h = (h * m) & _M64
    h ^= h >> r
    return h


def pattern_length(element: bytes) -> tuple[int, int]:
    """hllPatLen: (register index, run length of the '000..1' pattern + 1)."""
    h = murmurhash64a(element)
    index = h & HLL_P_MASK
    h >>= HLL_P
    h |= 1 << HLL_Q
    count = (h & -h).bit_length()
    return index, count


# -- header -----------------------------------------------------------------------------------------------------------
def new_sparse() -> bytes:
    """createHLLObject: all registers zero as XZERO opcodes, cached cardinality 0 (valid)."""
    ops = []
    left = HLL_REGISTERS
    while left:
        run = min(left, HLL_SPARSE_XZERO_MAX_LEN)
        ops.append([XZERO, run])
        left -= run
    return b"HYLL" + bytes([HLL_SPARSE]) + bytes(11) + encode_sparse(ops)


def is_valid_hll(value: bytes) -> bool:
    """isHLLObjectOrReply's checks (an int-encoded string is never an HLL)."""
    if len(value) < HLL_HDR_SIZE or value[:4] != b"HYLL" or value[4] > HLL_SPARSE:
        return False
    if value[4] == HLL_DENSE and len(value) != HLL_DENSE_SIZE:
        return False
    return string_encoding(value) != "int"


def _invalidate_cache(header: bytearray) -> None:
    header[15] |= 0x80


# -- sparse -----------------------------------------------------------------------------------------------------------
def decode_sparse(data: bytes) -> list[list[int]]:
    ops: list[list[int]] = []
    i, end = 0, len(data)
    while i < end:
        byte = data[i]
        if byte & 0x80:
            ops.append([VAL, ((byte >> 2) & 0x1F) + 1, (byte & 3) + 1])
            i += 1
        elif byte & 0x40:
            if i + 1 >= end:
                # Redis reads the second byte past the end of the string; it is the sds terminator (0)
                ops.append([XZERO, ((byte & 0x3F) << 8) + 1])
                i += 2
                continue
            ops.append([XZERO, (((byte & 0x3F) << 8) | data[i + 1]) + 1])
            i += 2
        else:
            ops.append([ZERO, (byte & 0x3F) + 1])
            i += 1
    return ops


def encode_sparse(ops: list[list[int]]) -> bytes:
    out = bytearray()
    for op in ops:
        if op[0] == VAL:
            out.append(0x80 | ((op[1] - 1) << 2) | (op[2] - 1))
        elif op[0] == XZERO:
            n = op[1] - 1
            out.append(0x40 | (n >> 8))
            out.append(n & 0xFF)
        else:
            out.append(op[1] - 1)
    return bytes(out)


def _op_size(op: list[int]) -> int:
    return 2 if op[0] == XZERO else 1


def _op_span(op: list[int]) -> int:
    return op[2] if op[0] == VAL else op[1]


def _zero_run(length: int) -> list[int]:
    return [XZERO, length] if length > HLL_SPARSE_ZERO_MAX_LEN else [ZERO, length]


class _Sparse:
    """A sparse HLL being updated: opcodes plus the byte length Redis's sds would have."""
    __slots__ = ("ops", "size", "hint")

    def __init__(self, data: bytes):
        self.ops = decode_sparse(data[HLL_HDR_SIZE:])
        self.size = len(data)
        self.hint = (0, 0)   # (opcode position, first register) to start the next search from (PFMERGE's order)

    def set(self, index: int, count: int) -> int:
        """hllSparseSet: 1 if updated, 0 if not needed, -1 corrupted, 2 if Redis would promote to dense."""
        if count > HLL_SPARSE_VAL_MAX_VALUE:
            return 2
        ops = self.ops
        pos, first = self.hint
        if index < first:
            pos, first = 0, 0
        span = 0
        while pos < len(ops):
            span = _op_span(ops[pos])
            if index <= first + span - 1:
                break
            first += span
            pos += 1
        if span == 0 or pos >= len(ops):
            return -1
        prev = pos - 1 if pos > 0 else None
        prev_first = first - _op_span(ops[prev]) if prev is not None else 0
        op = ops[pos]
        kind = op[0]
        if kind == VAL:
            if op[1] >= count:
                return 0
            if op[2] == 1:
                ops[pos] = [VAL, count, 1]
                return self._merge(prev, prev_first)
        if kind == ZERO and op[1] == 1:
            ops[pos] = [VAL, count, 1]
            return self._merge(prev, prev_first)
        last = first + span - 1
        seq: list[list[int]] = []
        if kind != VAL:
            if index != first:
                seq.append(_zero_run(index - first))
            seq.append([VAL, count, 1])
            if index != last:
                seq.append(_zero_run(last - index))
        else:
            if index != first:
                seq.append([VAL, op[1], index - first])
            seq.append([VAL, count, 1])
            if index != last:
                seq.append([VAL, op[1], last - index])
        delta = sum(map(_op_size, seq)) - _op_size(op)
        if delta > 0 and self.size + delta > HLL_SPARSE_MAX_BYTES:
            return 2
        ops[pos:pos + 1] = seq
        self.size += delta
        return self._merge(prev, prev_first)

    def _merge(self, prev: int | None, prev_first: int) -> int:
        """Step 4 of hllSparseSet: merge adjacent VAL opcodes of equal value, scanning up to 5 opcodes."""
        ops = self.ops
        pos = prev if prev is not None else 0
        scan = 5
        while pos < len(ops) and scan:
            scan -= 1
            op = ops[pos]
            if op[0] != VAL:
                pos += 1
                continue
            if pos + 1 < len(ops) and ops[pos + 1][0] == VAL and ops[pos + 1][1] == op[1] \
                    and op[2] + ops[pos + 1][2] <= HLL_SPARSE_VAL_MAX_LEN:
                ops[pos:pos + 2] = [[VAL, op[1], op[2] + ops[pos + 1][2]]]
                self.size -= 1
                continue
            pos += 1
        self.hint = (prev, prev_first) if prev is not None else (0, 0)
        return 1


def sparse_registers(data: bytes, strict: bool = True) -> list[int]:
    """The registers of a sparse HLL (hllSparseToDense/hllMerge). CorruptedHLL if they don't add up to 16384."""
    registers = [0] * HLL_REGISTERS
    idx = 0
    for op in decode_sparse(data[HLL_HDR_SIZE:]):
        if op[0] == VAL:
            value, run = op[1], op[2]
            if idx + run > HLL_REGISTERS:
                break
            registers[idx:idx + run] = [value] * run
            idx += run
        else:
            idx += op[1]
    if idx != HLL_REGISTERS:
        raise CorruptedHLL()
    return registers


def _sparse_histogram(data: bytes) -> list[int]:
    """hllSparseRegHisto (no overflow check on VAL runs, as Redis)."""
    histogram = [0] * 64
    idx = 0
    for op in decode_sparse(data[HLL_HDR_SIZE:]):
        if op[0] == VAL:
            histogram[op[1]] += op[2]
            idx += op[2]
        else:
            histogram[0] += op[1]
            idx += op[1]
    if idx != HLL_REGISTERS:
        raise CorruptedHLL()
    return histogram


# -- dense ------------------------------------------------------------------------------------------------------------
def dense_registers(data: bytes) -> list[int]:
    """All 16384 registers of a dense HLL (3 bytes hold 4 registers)."""
    regs = data[HLL_HDR_SIZE:]
    out = [0] * HLL_REGISTERS
    j = 0
    for i in range(0, len(regs), 3):
        b0, b1, b2 = regs[i], regs[i + 1], regs[i + 2]
        out[j] = b0 & 63
        out[j + 1] = ((b0 >> 6) | (b1 << 2)) & 63
        out[j + 2] = ((b1 >> 4) | (b2 << 4)) & 63
        out[j + 3] = b2 >> 2
        j += 4
    return out


def encode_dense_registers(registers: list[int]) -> bytes:
    out = bytearray(HLL_DENSE_SIZE - HLL_HDR_SIZE)
    k = 0
    for i in range(0, HLL_REGISTERS, 4):
        r0, r1, r2, r3 = registers[i], registers[i + 1], registers[i + 2], registers[i + 3]
        out[k] = (r0 | (r1 << 6)) & 0xFF
        out[k + 1] = ((r1 >> 2) | (r2 << 4)) & 0xFF
        out[k + 2] = ((r2 >> 4) | (r3 << 2)) & 0xFF
        k += 3
    return bytes(out)


def _dense_get(data: bytearray, index: int) -> int:
    bit = index * HLL_BITS
    byte, shift = HLL_HDR_SIZE + (bit >> 3), bit & 7
    low = data[byte] >> shift
    if shift > 2:
        low |= data[byte + 1] << (8 - shift)
    return low & 63


def _dense_set(data: bytearray, index: int, value: int) -> None:
    bit = index * HLL_BITS
    byte, shift = HLL_HDR_SIZE + (bit >> 3), bit & 7
    data[byte] = (data[byte] & ~(63 << shift) & 0xFF) | ((value << shift) & 0xFF)
    if shift > 2:
        data[byte + 1] = (data[byte + 1] & ~(63 >> (8 - shift)) & 0xFF) | (value >> (8 - shift))


def _dense_add(data: bytearray, index: int, count: int) -> int:
    if _dense_get(data, index) < count:
        _dense_set(data, index, count)
        return 1
    return 0


def to_dense(data: bytes) -> bytearray:
    """hllSparseToDense: the header (cached cardinality included) is kept, the encoding byte becomes dense."""
    if data[4] == HLL_DENSE:
        return bytearray(data)
    registers = sparse_registers(data)
    out = bytearray(data[:HLL_HDR_SIZE])
    out[4] = HLL_DENSE
    out += encode_dense_registers(registers)
    return out


def registers_of(data: bytes) -> list[int]:
    return dense_registers(data) if data[4] == HLL_DENSE else sparse_registers(data)


# -- estimation -------------------------------------------------------------------------------------------------------
def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        z_prime = z
        z += x * y
        y += y
        if z_prime == z:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y, z = 1.0, 1 - x
    while True:
        x = math.sqrt(x)
        z_prime = z
        y *= 0.5
        z -= math.pow(1 - x, 2) * y
        if z_prime == z:
            return z / 3


def count_from_histogram(histogram: list[int]) -> int:
    m = float(HLL_REGISTERS)
    z = m * _tau((m - histogram[HLL_Q + 1]) / m)
    for j in range(HLL_Q, 0, -1):
        z += histogram[j]
        z *= 0.5
    z += m * _sigma(histogram[0] / m)
    estimate = HLL_ALPHA_INF * m * m / z
    whole = math.floor(estimate)      # llroundl: halves away from zero (estimate >= 0)
    return int(whole + (1 if estimate - whole >= 0.5 else 0))


def _histogram(registers: list[int]) -> list[int]:
    histogram = [0] * 64
    for value in registers:
        histogram[value] += 1
    return histogram


@functools.lru_cache(maxsize=64)
def _count_uncached(data: bytes) -> int:
    """hllCount of one HLL string (a pure function of its bytes, memoised: a dense count decodes 16384 registers)."""
    if data[4] == HLL_DENSE:
        return count_from_histogram(_histogram(dense_registers(data)))
    return count_from_histogram(_sparse_histogram(data))


def cardinality(data: bytes) -> int:
    """PFCOUNT of one HLL string: its cached value if valid, else the estimate. CorruptedHLL if invalid."""
    if not data[15] & 0x80:
        return int.from_bytes(data[8:16], "little")
    return _count_uncached(bytes(data))


# -- commands ---------------------------------------------------------------------------------------------------------
def _lookup_hll(ctx: Context, key: bytes) -> bytes | None:
    value = ctx.db.get(key, ctx.now_ms, ctx.is_replica_read)
    if value is None:
        return None
    if not isinstance(value, bytes):
        raise CommandError(messages.WRONGTYPE)
    if not is_valid_hll(value):
        raise CommandError(messages.HLL_INVALID)
    return value


def _add_registers(data: bytes, updates: list[tuple[int, int]]) -> tuple[bytearray, int]:
    """Apply (index, count) register updates in order as Redis does; returns (new bytes, registers changed)."""
    updated = 0
    if data[4] == HLL_SPARSE:
        sparse = _Sparse(data)
        for n, (index, count) in enumerate(updates):
            result = sparse.set(index, count)
            if result == -1:
                raise CorruptedHLL()
            if result == 2:
                # promote: rebuild the sparse bytes so far, convert, continue dense
                partial = bytes(data[:HLL_HDR_SIZE]) + encode_sparse(sparse.ops)
                dense = to_dense(partial)
                for index2, count2 in updates[n:]:
                    updated += _dense_add(dense, index2, count2)
                return dense, updated
            updated += result
        out = bytearray(data[:HLL_HDR_SIZE]) + encode_sparse(sparse.ops)
        return out, updated
    dense = bytearray(data)
    for index, count in updates:
        updated += _dense_add(dense, index, count)
    return dense, updated


def pfadd(ctx: Context, args: list[bytes]) -> Any:
    key = args[1]
    current = _lookup_hll(ctx, key)
    created = current is None
    data = new_sparse() if created else current
    updates = [pattern_length(bytes(element)) for element in args[2:]]
    try:
        out, updated = _add_registers(data, updates)
    except CorruptedHLL:
        raise CommandError(messages.HLL_CORRUPTED) from None
    if updated:
        _invalidate_cache(out)
    if created or updated:
        ctx.db.set(key, RawStr(out), keep_ttl=True)
        ctx.notify(notify.STRING, "pfadd", key)
    return 1 if created or updated else 0


def pfcount(ctx: Context, args: list[bytes]) -> Any:
    if len(args) > 2:
        registers = [0] * HLL_REGISTERS
        for key in args[1:]:
            value = _lookup_hll(ctx, key)
            if value is None:
                continue
            try:
                other = registers_of(value)
            except CorruptedHLL:
                raise CommandError(messages.HLL_CORRUPTED) from None
            registers = list(map(max, registers, other))
        return count_from_histogram(_histogram(registers))
    value = _lookup_hll(ctx, args[1])
    if value is None:
        return 0
    try:
        return cardinality(value)
    except CorruptedHLL:
        raise CommandError(messages.HLL_CORRUPTED) from None


def pfmerge(ctx: Context, args: list[bytes]) -> Any:
    registers = [0] * HLL_REGISTERS
    use_dense = False
    for key in args[1:]:
        value = _lookup_hll(ctx, key)
        if value is None:
            continue
        if value[4] == HLL_DENSE:
            use_dense = True
        try:
            other = registers_of(value)
        except CorruptedHLL:
            raise CommandError(messages.HLL_CORRUPTED) from None
        registers = list(map(max, registers, other))
    target = args[1]
    current = _lookup_hll(ctx, target)
    data = new_sparse() if current is None else current
    try:
        if use_dense:
            data = bytes(to_dense(data))
        updates = [(i, v) for i, v in enumerate(registers) if v]
        out, _ = _add_registers(data, updates)
    except CorruptedHLL:
        raise CommandError(messages.HLL_CORRUPTED) from None
    _invalidate_cache(out)
    ctx.db.set(target, RawStr(out), keep_ttl=True)
    ctx.notify(notify.STRING, "pfadd", target)
    return OK


COMMANDS = [
    command("pfadd", -2, "write denyoom fast", 1, 1, 1, pfadd, "@write @hyperloglog @fast"),
    command("pfcount", -2, "readonly", 1, -1, 1, pfcount, "@read @hyperloglog @slow"),
    command("pfmerge", -2, "write denyoom", 1, -1, 1, pfmerge, "@write @hyperloglog @slow"),
]
