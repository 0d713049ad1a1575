"""Arguments to wire bytes, and typed Values (every RESP3 type) to natural Python values, at the transport edge."""
from __future__ import annotations

from typing import Any

from memdb.client.exceptions import DataError, ResponseError, error_from_reply
from memdb.generated import memdb_pb2 as pb


def encode_arg(arg: Any) -> bytes:
    """One command argument as bytes, as redis-py encodes it (str as UTF-8, numbers in decimal, floats by repr)."""
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, bool):          # before int: bool is an int, but redis-py refuses it too
        raise DataError(f"invalid argument {arg!r}: convert a bool to bytes, str, int or float first")
    if isinstance(arg, int):
        return str(arg).encode()
    if isinstance(arg, float):
        return repr(arg).encode()
    if isinstance(arg, (bytearray, memoryview)):
        return bytes(arg)
    raise DataError(f"invalid argument of type {type(arg).__name__}: {arg!r} "
                    "(expected bytes, str, int or float)")


def encode_args(args) -> list[bytes]:
    return [encode_arg(a) for a in args]


def _hashable(value: Any) -> Any:
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


def from_value(value: pb.Value, decode: bool, raise_errors: bool = True) -> Any:
    """The natural Python value of a reply: bulk -> bytes (str if `decode`), integer -> int, double -> float,
    null -> None, array/push -> list, map -> dict, set -> set, boolean -> bool, big number -> int, simple string
    "OK" -> True (others like bulk), verbatim -> its text. An error reply raises its typed exception
    (or, with raise_errors=False, is returned as the exception instance, as in redis-py's pipelines)."""
    kind = value.WhichOneof("kind")
    if kind == "bulk":
        return value.bulk.decode(errors="replace") if decode else value.bulk
    if kind == "integer":
        return value.integer
    if kind == "simple":
        if value.simple == "OK":
            return True
        return value.simple if decode else value.simple.encode()
    if kind == "null" or kind is None:
        return None
    if kind == "double":
        return value.double
    if kind == "array":
        return [from_value(v, decode, raise_errors) for v in value.array.items]
    if kind == "map":
        return {_hashable(from_value(e.key, decode, raise_errors)): from_value(e.value, decode, raise_errors)
                for e in value.map.entries}
    if kind == "set":
        return {_hashable(from_value(v, decode, raise_errors)) for v in value.set.items}
    if kind == "error":
        exc = error_from_reply(value.error)
        if raise_errors:
            raise exc
        return exc
    if kind == "boolean":
        return value.boolean
    if kind == "big_number":
        return int(value.big_number)
    if kind == "verbatim":
        return value.verbatim.text.decode(errors="replace") if decode else value.verbatim.text
    if kind == "push":
        return [from_value(v, decode, raise_errors) for v in value.push.items]
    raise ResponseError(f"unknown reply kind {kind!r}")
