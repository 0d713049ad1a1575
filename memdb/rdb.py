"""Redis's RDB value format (Redis 7.0 rdb.c, listpack.c, intset.c, lzf_d.c, crc64.c), as DUMP/RESTORE use it.

A DUMP payload is: object type byte | the object | RDB version (2 bytes LE, 10 for Redis 7.0) | CRC64 (8 bytes LE,
Jones polynomial, reflected, over everything before it).

What memdb writes (what Redis 7.0 writes for the same value and encoding):
  string       type 0; integers that fit 32 bits as INT8/16/32 encodings, otherwise length-prefixed bytes
  list         type 18 (QUICKLIST_2): nodes of listpacks, a node closed when it would pass 8 KB
               (list-max-listpack-size -2)
  set          intset encoding -> type 11 (an intset blob); hashtable -> type 2 (members)
  hash         listpack -> type 16 (a listpack of field, value ...); hashtable -> type 4 (field, value pairs)
  zset         listpack -> type 17 (member, score-as-text ...); skiplist -> type 5 (members from the highest score,
               scores as binary doubles)
Strings (and listpack/intset blobs) over 20 bytes are LZF-compressed with liblzf's exact algorithm when that
saves 4 bytes, as Redis does, so DUMP payloads are byte-identical to Redis's for the same value and encoding
(except for quicklist node boundaries of lists built other than by appends, and Redis's rare matches through its
uninitialised LZF hash table). Reading accepts the types above plus the older LIST (1), ZSET (3). Ziplist-era types (9, 10, 12, 13, 14) and
streams/modules are refused ("Bad data format").
"""
from __future__ import annotations

import struct
from typing import Any

from memdb.commands.args import is_int
from memdb.commands._typeutil import listpack_double_text
from memdb.commands.hashes import HASH_MAX_LISTPACK_ENTRIES, HASH_MAX_LISTPACK_VALUE, HashTableValue
from memdb.commands.keys import object_encoding
from memdb.commands.zset_type import ZSET_MAX_LISTPACK_ENTRIES, ZSetValue
from memdb.keyspace import HashValue, ListValue, SetValue

RDB_VERSION = 10

TYPE_STRING, TYPE_LIST, TYPE_SET, TYPE_ZSET, TYPE_HASH, TYPE_ZSET_2 = 0, 1, 2, 3, 4, 5
TYPE_SET_INTSET, TYPE_HASH_LISTPACK, TYPE_ZSET_LISTPACK, TYPE_LIST_QUICKLIST_2 = 11, 16, 17, 18

QUICKLIST_NODE_PLAIN, QUICKLIST_NODE_PACKED = 1, 2
QUICKLIST_NODE_MAX_BYTES = 8192     # list-max-listpack-size -2

ENC_INT8, ENC_INT16, ENC_INT32, ENC_LZF = 0, 1, 2, 3


class BadPayload(Exception):
    """The payload can't be decoded into a value (RESTORE replies "ERR Bad data format")."""


class Unsupported(Exception):
    """A value memdb can't serialise (a type without an RDB form here)."""


# -- CRC64 (Jones, reflected) -----------------------------------------------------------------------------------------
def _crc64_table() -> list[int]:
    poly = 0x95AC9329AC4BC9B5   # 0xad93d23594c935a9 reflected
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC64_TABLE = _crc64_table()


def crc64(data: bytes, crc: int = 0) -> int:
    table = _CRC64_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


# -- lengths and strings ----------------------------------------------------------------------------------------------
def encode_length(n: int) -> bytes:
    if n < 64:
        return bytes([n])
    if n < 16384:
        return bytes([0x40 | (n >> 8), n & 0xFF])
    if n <= 0xFFFFFFFF:
        return b"\x80" + n.to_bytes(4, "big")
    return b"\x81" + n.to_bytes(8, "big")


def _encode_int(value: int) -> bytes | None:
    """rdbEncodeInteger: INT8/16/32 special encodings, None if the value needs more."""
    if -(1 << 7) <= value < (1 << 7):
        return bytes([0xC0 | ENC_INT8]) + value.to_bytes(1, "little", signed=True)
    if -(1 << 15) <= value < (1 << 15):
        return bytes([0xC0 | ENC_INT16]) + value.to_bytes(2, "little", signed=True)
    if -(1 << 31) <= value < (1 << 31):
        return bytes([0xC0 | ENC_INT32]) + value.to_bytes(4, "little", signed=True)
    return None


def encode_string(data: bytes, int_encoded: bool = False) -> bytes:
    """rdbSaveRawString / rdbSaveLongLongAsStringObject: small integers as INT8/16/32, strings over 20 bytes
    LZF-compressed when that saves at least 4 bytes (rdbcompression yes)."""
    if (int_encoded or len(data) <= 11) and is_int(data):
        encoded = _encode_int(int(data))
        if encoded is not None:
            return encoded
    if len(data) > 20 and not int_encoded:
        compressed = lzf_compress(bytes(data), len(data) - 4)
        if compressed is not None:
            return b"\xc3" + encode_length(len(compressed)) + encode_length(len(data)) + compressed
    return encode_length(len(data)) + bytes(data)


class Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise BadPayload("short read")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def length(self) -> tuple[int, bool]:
        """rdbLoadLenByRef: (length or special encoding, is_encoded)."""
        first = self.byte()
        kind = first >> 6
        if kind == 0:
            return first & 0x3F, False
        if kind == 1:
            return ((first & 0x3F) << 8) | self.byte(), False
        if kind == 3:
            return first & 0x3F, True
        if first == 0x80:
            return int.from_bytes(self.take(4), "big"), False
        if first == 0x81:
            return int.from_bytes(self.take(8), "big"), False
        raise BadPayload("bad length")

    def plain_length(self) -> int:
        n, encoded = self.length()
        if encoded:
            raise BadPayload("encoded length")
        return n

    def string(self) -> bytes:
        """rdbGenericLoadStringObject."""
        n, encoded = self.length()
        if not encoded:
            return self.take(n)
        if n == ENC_INT8:
            return b"%d" % int.from_bytes(self.take(1), "little", signed=True)
        if n == ENC_INT16:
            return b"%d" % int.from_bytes(self.take(2), "little", signed=True)
        if n == ENC_INT32:
            return b"%d" % int.from_bytes(self.take(4), "little", signed=True)
        if n == ENC_LZF:
            compressed_len = self.plain_length()
            raw_len = self.plain_length()
            return lzf_decompress(self.take(compressed_len), raw_len)
        raise BadPayload("unknown string encoding")

    def binary_double(self) -> float:
        return struct.unpack("<d", self.take(8))[0]

    def text_double(self) -> float:
        """rdbLoadDoubleValue: 253 nan, 254 +inf, 255 -inf, else a length byte and text."""
        n = self.byte()
        if n == 253:
            return float("nan")
        if n == 254:
            return float("inf")
        if n == 255:
            return float("-inf")
        try:
            return float(self.take(n).decode("ascii"))
        except ValueError:
            raise BadPayload("bad double") from None


def lzf_decompress(data: bytes, out_len: int) -> bytes:
    out = bytearray()
    i, end = 0, len(data)
    while i < end:
        ctrl = data[i]
        i += 1
        if ctrl < 32:
            run = ctrl + 1
            if i + run > end:
                raise BadPayload("lzf literal overrun")
            out += data[i:i + run]
            i += run
        else:
            length = ctrl >> 5
            ref = len(out) - ((ctrl & 0x1F) << 8) - 1
            if length == 7:
                if i >= end:
                    raise BadPayload("lzf overrun")
                length += data[i]
                i += 1
            if i >= end:
                raise BadPayload("lzf overrun")
            ref -= data[i]
            i += 1
            length += 2
            if ref < 0:
                raise BadPayload("lzf back reference")
            for k in range(length):
                out.append(out[ref + k])
        if len(out) > out_len:
            raise BadPayload("lzf output too long")
    if len(out) != out_len:
        raise BadPayload("lzf length mismatch")
    return bytes(out)


def lzf_compress(data: bytes, out_len: int) -> bytes | None:
    """liblzf 3.6 lzf_compress as Redis builds it (HLOG 16, VERY_FAST, hash slots as offsets): the compressed
    bytes, or None if they would not fit in out_len. The hash table starts empty (Redis leaves it uninitialised,
    which on a fresh stack reads as empty; a slot naming offset 0 never matches because of `ref > in_data`)."""
    in_len = len(data)
    if not in_len or not out_len:
        return None
    htab = [0] * (1 << 16)
    out = bytearray(out_len + 8)
    ip, op, lit = 0, 1, 0
    in_end = in_len

    def idx(h: int) -> int:
        return ((h >> 8) - h * 5) & 0xFFFF

    hval = (data[0] << 8) | data[1] if in_len > 1 else data[0] << 8
    while ip < in_end - 2:
        hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFFFF
        slot = idx(hval)
        ref = htab[slot]
        htab[slot] = ip
        off = ip - ref - 1
        if 0 <= off < 8192 and ref > 0 and data[ref + 2] == data[ip + 2] \
                and data[ref] == data[ip] and data[ref + 1] == data[ip + 1]:
            length = 2
            maxlen = in_end - ip - length
            maxlen = min(maxlen, 264)
            if op + 3 + 1 >= out_len and op - (0 if lit else 1) + 3 + 1 >= out_len:
                return None
            out[op - lit - 1] = (lit - 1) & 0xFF
            op -= 0 if lit else 1
            matched = False
            if maxlen > 16:
                for _ in range(16):
                    length += 1
                    if data[ref + length] != data[ip + length]:
                        matched = True
                        break
            if not matched:
                while True:
                    length += 1
                    if not (length < maxlen and data[ref + length] == data[ip + length]):
                        break
            length -= 2
            ip += 1
            if length < 7:
                out[op] = ((off >> 8) + (length << 5)) & 0xFF
                op += 1
            else:
                out[op] = ((off >> 8) + (7 << 5)) & 0xFF
                out[op + 1] = (length - 7) & 0xFF
                op += 2
            out[op] = off & 0xFF
            op += 1
            lit = 0
            op += 1
            ip += length + 1
            if ip >= in_end - 2:
                break
            ip -= 2
            hval = (data[ip] << 8) | data[ip + 1]
            hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFFFF
            htab[idx(hval)] = ip
            ip += 1
            hval = ((hval << 8) | data[ip + 2]) & 0xFFFFFFFF
            htab[idx(hval)] = ip
            ip += 1
        else:
            if op >= out_len:
                return None
            lit += 1
            out[op] = data[ip]
            op += 1
            ip += 1
            if lit == 32:
                out[op - lit - 1] = lit - 1
                lit = 0
                op += 1
    if op + 3 > out_len:
        return None
    while ip < in_end:
        lit += 1
        out[op] = data[ip]
        op += 1
        ip += 1
        if lit == 32:
            out[op - lit - 1] = lit - 1
            lit = 0
            op += 1
    out[op - lit - 1] = (lit - 1) & 0xFF
    op -= 0 if lit else 1
    return bytes(out[:op])


# -- listpack -------------------------------------------------------------------------------------------------------
def _backlen(n: int) -> bytes:
    if n <= 127:
        return bytes([n])
    if n < 16383:
        return bytes([n >> 7, (n & 127) | 128])
    if n < 2097151:
        return bytes([n >> 14, ((n >> 7) & 127) | 128, (n & 127) | 128])
    if n < 268435455:
        return bytes([n >> 21, ((n >> 14) & 127) | 128, ((n >> 7) & 127) | 128, (n & 127) | 128])
    return bytes([n >> 28, ((n >> 21) & 127) | 128, ((n >> 14) & 127) | 128, ((n >> 7) & 127) | 128,
                  (n & 127) | 128])


def listpack_entry(item: bytes) -> bytes:
    """One listpack entry (encoding + data + backlen); integers as lpAppend stores them."""
    if is_int(item):
        v = int(item)
        if 0 <= v <= 127:
            body = bytes([v])
        elif -4096 <= v <= 4095:
            u = v + (1 << 13) if v < 0 else v
            body = bytes([(u >> 8) | 0xC0, u & 0xFF])
        elif -(1 << 15) <= v < (1 << 15):
            body = b"\xf1" + v.to_bytes(2, "little", signed=True)
        elif -(1 << 23) <= v < (1 << 23):
            body = b"\xf2" + v.to_bytes(3, "little", signed=True)
        elif -(1 << 31) <= v < (1 << 31):
            body = b"\xf3" + v.to_bytes(4, "little", signed=True)
        else:
            body = b"\xf4" + v.to_bytes(8, "little", signed=True)
    else:
        n = len(item)
        if n < 64:
            body = bytes([0x80 | n]) + item
        elif n < 4096:
            body = bytes([0xE0 | (n >> 8), n & 0xFF]) + item
        else:
            body = b"\xf0" + n.to_bytes(4, "little") + item
    return body + _backlen(len(body))


def encode_listpack(items: list[bytes]) -> bytes:
    entries = b"".join(listpack_entry(bytes(item)) for item in items)
    total = 6 + len(entries) + 1
    count = len(items) if len(items) < 65535 else 65535
    return total.to_bytes(4, "little") + count.to_bytes(2, "little") + entries + b"\xff"


def decode_listpack(blob: bytes) -> list[bytes]:
    if len(blob) < 7 or int.from_bytes(blob[:4], "little") != len(blob) or blob[-1] != 0xFF:
        raise BadPayload("bad listpack header")
    items: list[bytes] = []
    i, end = 6, len(blob) - 1
    while i < end:
        b = blob[i]
        if b < 0x80:
            item, size = b"%d" % b, 1
        elif b < 0xC0:
            n = b & 0x3F
            item, size = blob[i + 1:i + 1 + n], 1 + n
        elif b < 0xE0:
            u = ((b & 0x1F) << 8) | blob[i + 1]
            item, size = b"%d" % (u - (1 << 13) if u >= 1 << 12 else u), 2
        elif b < 0xF0:
            n = ((b & 0x0F) << 8) | blob[i + 1]
            item, size = blob[i + 2:i + 2 + n], 2 + n
        elif b == 0xF0:
            n = int.from_bytes(blob[i + 1:i + 5], "little")
            item, size = blob[i + 5:i + 5 + n], 5 + n
        elif b in (0xF1, 0xF2, 0xF3, 0xF4):
            width = {0xF1: 2, 0xF2: 3, 0xF3: 4, 0xF4: 8}[b]
            item = b"%d" % int.from_bytes(blob[i + 1:i + 1 + width], "little", signed=True)
            size = 1 + width
        else:
            raise BadPayload("bad listpack entry")
        if i + size > end:
            raise BadPayload("listpack entry overrun")
        back = _backlen(size)
        if blob[i + size:i + size + len(back)] != back:
            raise BadPayload("bad listpack backlen")
        items.append(bytes(item))
        i += size + len(back)
    if i != end:
        raise BadPayload("listpack overrun")
    count = int.from_bytes(blob[4:6], "little")
    if count != 65535 and count != len(items):
        raise BadPayload("listpack count mismatch")
    return items


# -- intset ---------------------------------------------------------------------------------------------------------
def encode_intset(values: list[int]) -> bytes:
    values = sorted(values)
    width = 2
    for v in values:
        if not -(1 << 15) <= v < (1 << 15):
            width = 4
        if not -(1 << 31) <= v < (1 << 31):
            width = 8
            break
    body = b"".join(v.to_bytes(width, "little", signed=True) for v in values)
    return width.to_bytes(4, "little") + len(values).to_bytes(4, "little") + body


def decode_intset(blob: bytes) -> list[bytes]:
    if len(blob) < 8:
        raise BadPayload("short intset")
    width = int.from_bytes(blob[:4], "little")
    count = int.from_bytes(blob[4:8], "little")
    if width not in (2, 4, 8) or len(blob) != 8 + width * count:
        raise BadPayload("bad intset")
    values = [int.from_bytes(blob[8 + k * width:8 + (k + 1) * width], "little", signed=True) for k in range(count)]
    if any(a >= b for a, b in zip(values, values[1:])):
        raise BadPayload("intset not sorted")
    return [b"%d" % v for v in values]


# -- values -----------------------------------------------------------------------------------------------------------
def _quicklist_nodes(items: list[bytes]) -> list[list[bytes]]:
    """Split a list into listpack nodes as RPUSH would fill them (_quicklistNodeAllowInsert with fill -2). Lists
    built otherwise (LPUSH, LINSERT, deletions) have other node boundaries in Redis: same elements, other bytes."""
    nodes: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for item in items:
        # quicklistNodeExceedsLimit(new_sz = node->sz + sz + SIZE_ESTIMATE_OVERHEAD (8))
        if current and size + len(item) + 8 > QUICKLIST_NODE_MAX_BYTES:
            nodes.append(current)
            current, size = [], 0
        if not current:
            size = 7    # an empty listpack
        current.append(item)
        size += len(listpack_entry(item))
    if current:
        nodes.append(current)
    return nodes


def serialize_value(value: Any) -> bytes:
    """rdbSaveObjectType + rdbSaveObject."""
    if isinstance(value, bytes):
        return bytes([TYPE_STRING]) + encode_string(bytes(value), object_encoding(value) == "int")
    if isinstance(value, ListValue):
        nodes = _quicklist_nodes(list(value))
        out = [bytes([TYPE_LIST_QUICKLIST_2]), encode_length(len(nodes))]
        for node in nodes:
            out.append(encode_length(QUICKLIST_NODE_PACKED))
            out.append(encode_string(encode_listpack(node)))
        return b"".join(out)
    if isinstance(value, SetValue):
        if object_encoding(value) == "intset":
            return bytes([TYPE_SET_INTSET]) + encode_string(encode_intset([int(m) for m in value]))
        return bytes([TYPE_SET]) + encode_length(len(value)) + b"".join(encode_string(m) for m in value)
    if isinstance(value, HashValue):
        if not isinstance(value, HashTableValue):
            flat = [part for pair in value.items() for part in pair]
            return bytes([TYPE_HASH_LISTPACK]) + encode_string(encode_listpack(flat))
        return bytes([TYPE_HASH]) + encode_length(len(value)) + b"".join(
            encode_string(f) + encode_string(v) for f, v in value.items())
    if isinstance(value, ZSetValue):
        if value.listpack:
            flat = [part for member, score in value.items() for part in (member, listpack_double_text(score))]
            return bytes([TYPE_ZSET_LISTPACK]) + encode_string(encode_listpack(flat))
        entries = list(value.items())
        entries.reverse()
        return bytes([TYPE_ZSET_2]) + encode_length(len(entries)) + b"".join(
            encode_string(member) + struct.pack("<d", score) for member, score in entries)
    raise Unsupported(type(value).__name__)


def dump_payload(value: Any) -> bytes:
    """createDumpPayload."""
    body = serialize_value(value) + RDB_VERSION.to_bytes(2, "little")
    return body + crc64(body).to_bytes(8, "little")


def verify_payload(payload: bytes) -> bool:
    """verifyDumpPayload: version <= 10 and the CRC64 matches."""
    if len(payload) < 10:
        return False
    version = int.from_bytes(payload[-10:-8], "little")
    if version > RDB_VERSION:
        return False
    return crc64(payload[:-8]) == int.from_bytes(payload[-8:], "little")


def _hash_from_pairs(pairs: list[tuple[bytes, bytes]], from_listpack: bool) -> HashValue:
    value: HashValue = HashValue()
    for field, val in pairs:
        if field in value:
            raise BadPayload("duplicate hash field")
        value[field] = val
    if len(value) > HASH_MAX_LISTPACK_ENTRIES or (not from_listpack and any(
            len(f) > HASH_MAX_LISTPACK_VALUE or len(v) > HASH_MAX_LISTPACK_VALUE for f, v in value.items())):
        value = HashTableValue(value)
    return value


def _set_from_members(members: list[bytes]) -> SetValue:
    value = SetValue()
    for member in members:
        if member in value:
            raise BadPayload("duplicate set member")
        value[member] = None
    return value


def _zset_from_pairs(pairs: list[tuple[bytes, float]], listpack: bool | None) -> ZSetValue:
    value = ZSetValue(size_hint=1 << 30)      # built as a skiplist, converted below as Redis does
    max_len = 0
    for member, score in pairs:
        if member in value or score != score:
            raise BadPayload("duplicate member or NaN score")
        value.insert(member, score)
        max_len = max(max_len, len(member))
    if listpack is None:
        value.convert_if_needed(max_len)     # ZSET_2: zsetConvertToListpackIfNeeded
    else:
        value.listpack = len(value) <= ZSET_MAX_LISTPACK_ENTRIES
    return value


def load_value(reader: Reader) -> Any:
    """rdbLoadObjectType + rdbLoadObject for the types memdb knows. BadPayload otherwise."""
    kind = reader.byte()
    if kind == TYPE_STRING:
        return reader.string()
    if kind == TYPE_LIST:
        items = [reader.string() for _ in range(reader.plain_length())]
        if not items:
            raise BadPayload("empty list")
        return ListValue(items)
    if kind == TYPE_LIST_QUICKLIST_2:
        items = []
        for _ in range(reader.plain_length()):
            container = reader.plain_length()
            blob = reader.string()
            if container == QUICKLIST_NODE_PLAIN:
                items.append(blob)
            elif container == QUICKLIST_NODE_PACKED:
                node = decode_listpack(blob)
                items.extend(node)     # Redis skips empty nodes
            else:
                raise BadPayload("bad quicklist container")
        if not items:
            raise BadPayload("empty list")
        return ListValue(items)
    if kind == TYPE_SET:
        members = [reader.string() for _ in range(reader.plain_length())]
        if not members:
            raise BadPayload("empty set")
        return _set_from_members(members)
    if kind == TYPE_SET_INTSET:
        members = decode_intset(reader.string())
        if not members:
            raise BadPayload("empty set")
        return _set_from_members(members)
    if kind == TYPE_HASH:
        n = reader.plain_length()
        if not n:
            raise BadPayload("empty hash")
        return _hash_from_pairs([(reader.string(), reader.string()) for _ in range(n)], from_listpack=False)
    if kind == TYPE_HASH_LISTPACK:
        flat = decode_listpack(reader.string())
        if not flat or len(flat) % 2:
            raise BadPayload("bad hash listpack")
        return _hash_from_pairs(list(zip(flat[::2], flat[1::2])), from_listpack=True)
    if kind in (TYPE_ZSET, TYPE_ZSET_2):
        n = reader.plain_length()
        if not n:
            raise BadPayload("empty zset")
        read_score = reader.binary_double if kind == TYPE_ZSET_2 else reader.text_double
        pairs = []
        for _ in range(n):
            member = reader.string()
            pairs.append((member, read_score()))
        return _zset_from_pairs(pairs, listpack=None)
    if kind == TYPE_ZSET_LISTPACK:
        flat = decode_listpack(reader.string())
        if not flat or len(flat) % 2:
            raise BadPayload("bad zset listpack")
        pairs = []
        for member, text in zip(flat[::2], flat[1::2]):
            try:
                pairs.append((member, float(text)))
            except ValueError:
                raise BadPayload("bad zset score") from None
        return _zset_from_pairs(pairs, listpack=True)
    raise BadPayload(f"unsupported RDB type {kind}")


def restore_payload(payload: bytes) -> Any:
    """The value a verified DUMP payload holds (BadPayload if it can't be decoded entirely)."""
    # Like Redis, the reader runs over the whole payload: an object may read into the footer, and bytes left
    # after it are ignored.
    return load_value(Reader(payload))

