"""redis-py-style command methods, shared by Client, AsyncClient and their pipelines.

Each method only builds the argument list and names a parser for the reply; `self._command(args, parse)` does the
rest: Client runs it and returns the value, AsyncClient returns an awaitable, a pipeline queues it and returns
itself. Replies arrive as RESP3 (the gRPC API keeps every type), already converted by values.from_value, so the
parsers only reshape them the way redis-py does (bools for 0/1 flags, floats for scores, tuples for pairs).
"""
from __future__ import annotations

import datetime
from typing import Any, Callable, Iterable, Mapping, Union

from memdb.client.exceptions import DataError

KeyT = Union[bytes, str]
FieldT = Union[bytes, str]
EncodableT = Union[bytes, str, int, float]
ExpiryT = Union[int, float, datetime.timedelta]
Parse = Callable[[Any], Any]


def _bool(reply: Any) -> Any:
    return bool(reply) if isinstance(reply, int) else reply


def _float_or_none(reply: Any) -> float | None:
    return None if reply is None else float(reply)


def _pairs(reply: Any) -> list[tuple[Any, float]]:
    """(member, score) tuples from either RESP3's [[m, s], ...] or RESP2's flat [m, s, m, s]."""
    if not reply:
        return []
    if isinstance(reply[0], list):
        return [(m, float(s)) for m, s in reply]
    return [(reply[i], float(reply[i + 1])) for i in range(0, len(reply), 2)]


def _pop_pairs(reply: Any) -> list[tuple[Any, float]]:
    """ZPOPMIN/ZPOPMAX: RESP3 answers [m, s] without a count and [[m, s], ...] with one."""
    if not reply:
        return []
    if isinstance(reply[0], list):
        return _pairs(reply)
    return _pairs(reply) if len(reply) % 2 == 0 and not isinstance(reply[1], list) else []


def _tuple_or_none(reply: Any) -> tuple | None:
    return tuple(reply) if reply else None


def _seconds_ms(value: ExpiryT, unit_ms: bool) -> int:
    if isinstance(value, datetime.timedelta):
        total_ms = int(value.total_seconds() * 1000)
        return total_ms if unit_ms else total_ms // 1000
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"an expiry must be an int or a timedelta, not {type(value).__name__}")
    return int(value)


def _set_or_raw(reply: Any) -> Any:
    return set(reply) if isinstance(reply, list) else reply


class Commands:
    """The command methods. Subclasses define `_command(args, parse=None, **options)`."""

    def _command(self, args: list, parse: Parse | None = None, **options: Any) -> Any:
        raise NotImplementedError

    # -- strings -------------------------------------------------------------------------------------------------
    def set(self, name: KeyT, value: EncodableT, ex: ExpiryT | None = None, px: ExpiryT | None = None,
            nx: bool = False, xx: bool = False, keepttl: bool = False, get: bool = False,
            exat: int | None = None, pxat: int | None = None):
        """SET; True on success, None when NX/XX prevented it; with get=True the old value instead."""
        args: list[Any] = ["SET", name, value]
        if sum(x is not None for x in (ex, px, exat, pxat)) + bool(keepttl) > 1:
            raise DataError("set: ex, px, exat, pxat and keepttl are mutually exclusive")
        if nx and xx:
            raise DataError("set: nx and xx are mutually exclusive")
        if ex is not None:
            args += ["EX", _seconds_ms(ex, unit_ms=False)]
        if px is not None:
            args += ["PX", _seconds_ms(px, unit_ms=True)]
        if exat is not None:
            args += ["EXAT", exat]
        if pxat is not None:
            args += ["PXAT", pxat]
        if keepttl:
            args.append("KEEPTTL")
        if nx:
            args.append("NX")
        if xx:
            args.append("XX")
        if get:
            args.append("GET")
        return self._command(args)

    def get(self, name: KeyT):
        return self._command(["GET", name])

    def getset(self, name: KeyT, value: EncodableT):
        return self._command(["GETSET", name, value])

    def getdel(self, name: KeyT):
        return self._command(["GETDEL", name])

    def setnx(self, name: KeyT, value: EncodableT):
        return self._command(["SETNX", name, value], _bool)

    def setex(self, name: KeyT, time: ExpiryT, value: EncodableT):
        return self._command(["SETEX", name, _seconds_ms(time, unit_ms=False), value])

    def mget(self, keys: KeyT | Iterable[KeyT], *args: KeyT):
        keys = [keys, *args] if isinstance(keys, (bytes, str)) else [*keys, *args]
        return self._command(["MGET", *keys])

    def mset(self, mapping: Mapping[KeyT, EncodableT]):
        return self._command(["MSET", *[x for kv in mapping.items() for x in kv]])

    def msetnx(self, mapping: Mapping[KeyT, EncodableT]):
        return self._command(["MSETNX", *[x for kv in mapping.items() for x in kv]], _bool)

    def incr(self, name: KeyT, amount: int = 1):
        return self.incrby(name, amount)

    def incrby(self, name: KeyT, amount: int = 1):
        return self._command(["INCRBY", name, amount])

    def decr(self, name: KeyT, amount: int = 1):
        return self.decrby(name, amount)

    def decrby(self, name: KeyT, amount: int = 1):
        return self._command(["DECRBY", name, amount])

    def incrbyfloat(self, name: KeyT, amount: float = 1.0):
        return self._command(["INCRBYFLOAT", name, amount], float)

    def append(self, key: KeyT, value: EncodableT):
        return self._command(["APPEND", key, value])

    def getrange(self, key: KeyT, start: int, end: int):
        return self._command(["GETRANGE", key, start, end])

    def setrange(self, name: KeyT, offset: int, value: EncodableT):
        return self._command(["SETRANGE", name, offset, value])

    def strlen(self, name: KeyT):
        return self._command(["STRLEN", name])

    # -- keys ------------------------------------------------------------------------------------------------------
    def delete(self, *names: KeyT):
        return self._command(["DEL", *names])

    def unlink(self, *names: KeyT):
        return self._command(["UNLINK", *names])

    def exists(self, *names: KeyT):
        return self._command(["EXISTS", *names])

    def expire(self, name: KeyT, time: ExpiryT, nx: bool = False, xx: bool = False, gt: bool = False,
               lt: bool = False):
        flags = [f for f, on in (("NX", nx), ("XX", xx), ("GT", gt), ("LT", lt)) if on]
        return self._command(["EXPIRE", name, _seconds_ms(time, unit_ms=False), *flags], _bool)

    def pexpire(self, name: KeyT, time: ExpiryT):
        return self._command(["PEXPIRE", name, _seconds_ms(time, unit_ms=True)], _bool)

    def ttl(self, name: KeyT):
        return self._command(["TTL", name])

    def pttl(self, name: KeyT):
        return self._command(["PTTL", name])

    def persist(self, name: KeyT):
        return self._command(["PERSIST", name], _bool)

    def type(self, name: KeyT):
        return self._command(["TYPE", name])

    def rename(self, src: KeyT, dst: KeyT):
        return self._command(["RENAME", src, dst])

    def renamenx(self, src: KeyT, dst: KeyT):
        return self._command(["RENAMENX", src, dst], _bool)

    # -- hashes ---------------------------------------------------------------------------------------------------
    def hset(self, name: KeyT, key: FieldT | None = None, value: EncodableT | None = None,
             mapping: Mapping[FieldT, EncodableT] | None = None, items: list | None = None):
        """HSET name key value, and/or every field of `mapping`; the number of new fields."""
        if key is None and not mapping and not items:
            raise DataError("hset: give key and value, or a non-empty mapping")
        pieces: list[Any] = []
        if key is not None:
            pieces += [key, value]
        if mapping:
            pieces += [x for kv in mapping.items() for x in kv]
        if items:
            pieces += list(items)
        return self._command(["HSET", name, *pieces])

    def hsetnx(self, name: KeyT, key: FieldT, value: EncodableT):
        return self._command(["HSETNX", name, key, value], _bool)

    def hget(self, name: KeyT, key: FieldT):
        return self._command(["HGET", name, key])

    def hmget(self, name: KeyT, keys: FieldT | Iterable[FieldT], *args: FieldT):
        keys = [keys, *args] if isinstance(keys, (bytes, str)) else [*keys, *args]
        return self._command(["HMGET", name, *keys])

    def hgetall(self, name: KeyT):
        return self._command(["HGETALL", name], lambda r: r if isinstance(r, dict) else
                             dict(zip(r[::2], r[1::2])))

    def hdel(self, name: KeyT, *keys: FieldT):
        return self._command(["HDEL", name, *keys])

    def hexists(self, name: KeyT, key: FieldT):
        return self._command(["HEXISTS", name, key], _bool)

    def hincrby(self, name: KeyT, key: FieldT, amount: int = 1):
        return self._command(["HINCRBY", name, key, amount])

    def hincrbyfloat(self, name: KeyT, key: FieldT, amount: float = 1.0):
        return self._command(["HINCRBYFLOAT", name, key, amount], float)

    def hkeys(self, name: KeyT):
        return self._command(["HKEYS", name])

    def hvals(self, name: KeyT):
        return self._command(["HVALS", name])

    def hlen(self, name: KeyT):
        return self._command(["HLEN", name])

    # -- lists ----------------------------------------------------------------------------------------------------
    def lpush(self, name: KeyT, *values: EncodableT):
        return self._command(["LPUSH", name, *values])

    def rpush(self, name: KeyT, *values: EncodableT):
        return self._command(["RPUSH", name, *values])

    def lpop(self, name: KeyT, count: int | None = None):
        return self._command(["LPOP", name] + ([count] if count is not None else []))

    def rpop(self, name: KeyT, count: int | None = None):
        return self._command(["RPOP", name] + ([count] if count is not None else []))

    def lrange(self, name: KeyT, start: int, end: int):
        return self._command(["LRANGE", name, start, end])

    def llen(self, name: KeyT):
        return self._command(["LLEN", name])

    def lindex(self, name: KeyT, index: int):
        return self._command(["LINDEX", name, index])

    def lset(self, name: KeyT, index: int, value: EncodableT):
        return self._command(["LSET", name, index, value])

    def lrem(self, name: KeyT, count: int, value: EncodableT):
        return self._command(["LREM", name, count, value])

    def ltrim(self, name: KeyT, start: int, end: int):
        return self._command(["LTRIM", name, start, end])

    def blpop(self, keys: KeyT | Iterable[KeyT], timeout: float = 0):
        """(key, value) of the first non-empty list, waiting up to `timeout` s (0 = forever); None on timeout."""
        keys = [keys] if isinstance(keys, (bytes, str)) else list(keys)
        return self._command(["BLPOP", *keys, timeout], _tuple_or_none, block_s=timeout)

    def brpop(self, keys: KeyT | Iterable[KeyT], timeout: float = 0):
        keys = [keys] if isinstance(keys, (bytes, str)) else list(keys)
        return self._command(["BRPOP", *keys, timeout], _tuple_or_none, block_s=timeout)

    # -- sets -----------------------------------------------------------------------------------------------------
    def sadd(self, name: KeyT, *values: EncodableT):
        return self._command(["SADD", name, *values])

    def srem(self, name: KeyT, *values: EncodableT):
        return self._command(["SREM", name, *values])

    def smembers(self, name: KeyT):
        return self._command(["SMEMBERS", name], _set_or_raw)

    def sismember(self, name: KeyT, value: EncodableT):
        return self._command(["SISMEMBER", name, value], _bool)

    def scard(self, name: KeyT):
        return self._command(["SCARD", name])

    def sinter(self, keys: KeyT | Iterable[KeyT], *args: KeyT):
        keys = [keys, *args] if isinstance(keys, (bytes, str)) else [*keys, *args]
        return self._command(["SINTER", *keys], _set_or_raw)

    def sunion(self, keys: KeyT | Iterable[KeyT], *args: KeyT):
        keys = [keys, *args] if isinstance(keys, (bytes, str)) else [*keys, *args]
        return self._command(["SUNION", *keys], _set_or_raw)

    def sdiff(self, keys: KeyT | Iterable[KeyT], *args: KeyT):
        keys = [keys, *args] if isinstance(keys, (bytes, str)) else [*keys, *args]
        return self._command(["SDIFF", *keys], _set_or_raw)

    def spop(self, name: KeyT, count: int | None = None):
        """A random member (None if empty), or with `count` a list of up to count members (as redis-py)."""
        if count is None:
            return self._command(["SPOP", name])
        return self._command(["SPOP", name, count], lambda r: list(r) if isinstance(r, (set, list)) else r)

    # -- sorted sets ---------------------------------------------------------------------------------------------
    def zadd(self, name: KeyT, mapping: Mapping[EncodableT, float], nx: bool = False, xx: bool = False,
             ch: bool = False, incr: bool = False, gt: bool = False, lt: bool = False):
        """ZADD with {member: score}; the number added (changed with ch=True), or with incr=True the new score
        (None if nx/xx/gt/lt prevented it)."""
        if not mapping:
            raise DataError("zadd: mapping must not be empty")
        if nx and xx:
            raise DataError("zadd: nx and xx are mutually exclusive")
        if nx and (gt or lt):
            raise DataError("zadd: nx cannot be combined with gt or lt")
        if incr and len(mapping) != 1:
            raise DataError("zadd: incr takes exactly one member/score pair")
        flags = [f for f, on in (("NX", nx), ("XX", xx), ("GT", gt), ("LT", lt), ("CH", ch), ("INCR", incr)) if on]
        pieces = [x for member, score in mapping.items() for x in (score, member)]
        return self._command(["ZADD", name, *flags, *pieces], _float_or_none if incr else None)

    def zscore(self, name: KeyT, value: EncodableT):
        return self._command(["ZSCORE", name, value], _float_or_none)

    def zincrby(self, name: KeyT, amount: float, value: EncodableT):
        return self._command(["ZINCRBY", name, amount, value], _float_or_none)

    def zcard(self, name: KeyT):
        return self._command(["ZCARD", name])

    def zcount(self, name: KeyT, min: EncodableT, max: EncodableT):
        return self._command(["ZCOUNT", name, min, max])

    def zrange(self, name: KeyT, start: EncodableT, end: EncodableT, desc: bool = False, withscores: bool = False,
               byscore: bool = False, bylex: bool = False, offset: int | None = None, num: int | None = None):
        """ZRANGE (Redis 6.2 form); with withscores=True a list of (member, score) tuples."""
        if (offset is None) != (num is None):
            raise DataError("zrange: offset and num must be given together")
        if byscore and bylex:
            raise DataError("zrange: byscore and bylex are mutually exclusive")
        args: list[Any] = ["ZRANGE", name, start, end]
        if byscore:
            args.append("BYSCORE")
        if bylex:
            args.append("BYLEX")
        if desc:
            args.append("REV")
        if offset is not None:
            args += ["LIMIT", offset, num]
        if withscores:
            args.append("WITHSCORES")
        return self._command(args, _pairs if withscores else None)

    def zrevrange(self, name: KeyT, start: int, end: int, withscores: bool = False):
        return self.zrange(name, start, end, desc=True, withscores=withscores)

    def zrangebyscore(self, name: KeyT, min: EncodableT, max: EncodableT, start: int | None = None,
                      num: int | None = None, withscores: bool = False):
        return self.zrange(name, min, max, byscore=True, offset=start, num=num, withscores=withscores)

    def zrank(self, name: KeyT, value: EncodableT):
        return self._command(["ZRANK", name, value])

    def zrevrank(self, name: KeyT, value: EncodableT):
        return self._command(["ZREVRANK", name, value])

    def zrem(self, name: KeyT, *values: EncodableT):
        return self._command(["ZREM", name, *values])

    def zpopmin(self, name: KeyT, count: int | None = None):
        """A list of (member, score) tuples, as redis-py."""
        return self._command(["ZPOPMIN", name] + ([count] if count is not None else []), _pop_pairs)

    def zpopmax(self, name: KeyT, count: int | None = None):
        return self._command(["ZPOPMAX", name] + ([count] if count is not None else []), _pop_pairs)
