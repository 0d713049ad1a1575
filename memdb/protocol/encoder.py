"""RESP2/RESP3 encoder: reply values (memdb/commands/spec.py) -> wire bytes.

This is on every reply's path, so it is written for CPython's speed profile: a dict from type to encoder function
(one lookup instead of an isinstance chain), precomputed bytes for the replies that dominate (+OK, :0, :1, $-1,
small integers, bulk headers of short strings), and list-appending into one `parts` list that is joined once per
reply (or once per pipelined batch with `encode_into`), never per-item f-strings.

RESP2 formats follow Redis 7.0 networking.c: doubles are `%.17g` (`addReplyDouble`: 1.5 -> "1.5",
0.1 -> "0.10000000000000001", 1e20 -> "1e+20", -0.0 -> "-0") with "inf"/"-inf" spelled out; RESP3 doubles are
`,<same text>`. An error (CommandError) may appear anywhere, e.g. inside EXEC's array. Newlines in error texts are
replaced by spaces so the error stays one protocol line (Redis does the same).
"""
from __future__ import annotations

import math
from typing import Any, Callable

from memdb.commands.spec import (Bool, CommandError, Double, Map, NullArray, Push, SetReply, SimpleString,
                                 Verbatim)

__all__ = ["encode", "encode_into", "encode_error"]

_CRLF = b"\r\n"
_SMALL_INTS = range(-1, 1025)
_INT_REPLY = {i: b":%d\r\n" % i for i in _SMALL_INTS}
_BULK_HEADER = [b"$%d\r\n" % i for i in range(4096)]
_ARRAY2 = [b"*%d\r\n" % i for i in range(1024)]
_ARRAY3_SET = [b"~%d\r\n" % i for i in range(256)]
_MAP3 = [b"%%%d\r\n" % i for i in range(256)]
_NULL2 = b"$-1\r\n"
_NULL_ARRAY2 = b"*-1\r\n"
_NULL3 = b"_\r\n"
_OK = b"+OK\r\n"
_SIMPLE_CACHE: dict[str, bytes] = {"OK": _OK, "PONG": b"+PONG\r\n", "QUEUED": b"+QUEUED\r\n"}
_TRUE3 = b"#t\r\n"
_FALSE3 = b"#f\r\n"


def _double_text(value: float) -> bytes:
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    return b"%.17g" % value


def _simple_bytes(text: str) -> bytes:
    cached = _SIMPLE_CACHE.get(text)
    if cached is not None:
        return cached
    data = text.encode()
    if b"\r" in data or b"\n" in data:
        data = data.replace(b"\r", b" ").replace(b"\n", b" ")
    line = b"+" + data + _CRLF
    if len(_SIMPLE_CACHE) < 1024:
        _SIMPLE_CACHE[text] = line
    return line


def encode_error(message: str) -> bytes:
    data = message.encode("utf-8", "surrogateescape")
    if b"\r" in data or b"\n" in data:
        data = data.replace(b"\r", b" ").replace(b"\n", b" ")
    return b"-" + data + _CRLF


# Each function appends the encoding of `value` to `out`. Encoders of containers call `_encode_item` per item.
def _bytes(value: bytes, out: list, resp: int) -> None:
    size = len(value)
    out.append(_BULK_HEADER[size] if size < 4096 else b"$%d\r\n" % size)
    out.append(value)
    out.append(_CRLF)


def _int(value: int, out: list, resp: int) -> None:
    cached = _INT_REPLY.get(value)
    out.append(cached if cached is not None else b":%d\r\n" % value)


def _bool_as_int(value: bool, out: list, resp: int) -> None:
    out.append(_INT_REPLY[1] if value else _INT_REPLY[0])


def _none(value: None, out: list, resp: int) -> None:
    out.append(_NULL2 if resp == 2 else _NULL3)


def _null_array(value: NullArray, out: list, resp: int) -> None:
    out.append(_NULL_ARRAY2 if resp == 2 else _NULL3)


def _simple(value: SimpleString, out: list, resp: int) -> None:
    out.append(_simple_bytes(value.value))


def _error(value: CommandError, out: list, resp: int) -> None:
    out.append(encode_error(value.message))


def _list(value: list, out: list, resp: int) -> None:
    size = len(value)
    out.append(_ARRAY2[size] if size < 1024 else b"*%d\r\n" % size)
    encoders = _ENCODERS
    for item in value:
        if type(item) is bytes:                  # the common item, inlined
            n = len(item)
            out.append(_BULK_HEADER[n] if n < 4096 else b"$%d\r\n" % n)
            out.append(item)
            out.append(_CRLF)
        else:
            _dispatch(encoders, item, out, resp)


def _double(value: Double, out: list, resp: int) -> None:
    _float(value.value, out, resp)


def _float(value: float, out: list, resp: int) -> None:
    text = _double_text(value)
    if resp == 2:
        out.append(b"$%d\r\n%s\r\n" % (len(text), text))
    else:
        out.append(b",%s\r\n" % text)


def _map(value: Map, out: list, resp: int) -> None:
    _pairs(value.items, len(value.items), out, resp)


def _dict(value: dict, out: list, resp: int) -> None:
    _pairs(value.items(), len(value), out, resp)


def _pairs(items, size: int, out: list, resp: int) -> None:
    if resp == 2:
        out.append(_ARRAY2[size * 2] if size < 512 else b"*%d\r\n" % (size * 2))
    else:
        out.append(_MAP3[size] if size < 256 else b"%%%d\r\n" % size)
    encoders = _ENCODERS
    for key, item in items:
        _dispatch(encoders, key, out, resp)
        _dispatch(encoders, item, out, resp)


def _set(value: SetReply, out: list, resp: int) -> None:
    items = value.items
    if resp == 2:
        _list(items, out, resp)
        return
    size = len(items)
    out.append(_ARRAY3_SET[size] if size < 256 else b"~%d\r\n" % size)
    encoders = _ENCODERS
    for item in items:
        _dispatch(encoders, item, out, resp)


def _push(value: Push, out: list, resp: int) -> None:
    items = value.items
    if resp == 2:
        _list(items, out, resp)
        return
    out.append(b">%d\r\n" % len(items))
    encoders = _ENCODERS
    for item in items:
        _dispatch(encoders, item, out, resp)


def _bool(value: Bool, out: list, resp: int) -> None:
    if resp == 2:
        out.append(_INT_REPLY[1] if value.value else _INT_REPLY[0])
    else:
        out.append(_TRUE3 if value.value else _FALSE3)


def _verbatim(value: Verbatim, out: list, resp: int) -> None:
    if resp == 2:
        _bytes(value.value, out, resp)
        return
    body = value.format.encode()[:3].ljust(3) + b":" + value.value
    out.append(b"=%d\r\n" % len(body))
    out.append(body)
    out.append(_CRLF)


def _str(value: str, out: list, resp: int) -> None:
    # Not in the reply contract, but a handler that returns text should not take the connection down.
    _bytes(value.encode("utf-8", "surrogateescape"), out, resp)


def _bytes_like(value, out: list, resp: int) -> None:
    _bytes(bytes(value), out, resp)


_ENCODERS: dict[type, Callable[[Any, list, int], None]] = {
    bytes: _bytes, int: _int, bool: _bool_as_int, type(None): _none, list: _list, tuple: _list,
    SimpleString: _simple, CommandError: _error, Double: _double, float: _float, Map: _map, dict: _dict,
    SetReply: _set, Bool: _bool, Verbatim: _verbatim, NullArray: _null_array, str: _str, Push: _push,
    bytearray: _bytes_like, memoryview: _bytes_like,
}


def _dispatch(encoders: dict, value: Any, out: list, resp: int) -> None:
    fn = encoders.get(type(value))
    if fn is None:
        fn = _resolve(type(value))
    fn(value, out, resp)


def _resolve(cls: type) -> Callable[[Any, list, int], None]:
    """Subclasses (e.g. a CommandError subclass, an IntEnum) use their base's encoder; cached per class."""
    for base in cls.__mro__[1:]:
        fn = _ENCODERS.get(base)
        if fn is not None:
            _ENCODERS[cls] = fn
            return fn
    raise TypeError(f"cannot encode reply of type {cls.__name__}")


def encode_into(reply: Any, resp: int, out: list) -> None:
    """Append the encoding of reply to out (a list of bytes to be joined by the caller)."""
    fn = _ENCODERS.get(type(reply))
    if fn is None:
        fn = _resolve(type(reply))
    fn(reply, out, resp)


def encode(reply: Any, resp: int = 2) -> bytes:
    """The RESP2 (resp=2) or RESP3 (resp=3) encoding of one reply value."""
    t = type(reply)
    if t is SimpleString and reply.value == "OK":
        return _OK
    if t is bytes:
        size = len(reply)
        return b"".join((_BULK_HEADER[size] if size < 4096 else b"$%d\r\n" % size, reply, _CRLF))
    if t is int:
        cached = _INT_REPLY.get(reply)
        if cached is not None:
            return cached
        return b":%d\r\n" % reply
    if reply is None:
        return _NULL2 if resp == 2 else _NULL3
    out: list[bytes] = []
    fn = _ENCODERS.get(t)
    if fn is None:
        fn = _resolve(t)
    fn(reply, out, resp)
    return out[0] if len(out) == 1 else b"".join(out)
