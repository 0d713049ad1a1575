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


def parse_reply(parse: Parse | None, value: Any) -> Any:
    """A reply reshaped by its method's parser. Error replies pass through; so does None (a nil reply), unless
    the parser is marked `parses_none` (XREAD: nil means "nothing", redis-py's [])."""
    if parse is None or isinstance(value, Exception):
        return value
    if value is None and not getattr(parse, "parses_none", False):
        return None
    return parse(value)


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

    def zrevrangebyscore(self, name: KeyT, max: EncodableT, min: EncodableT, start: int | None = None,
                         num: int | None = None, withscores: bool = False):
        return self.zrange(name, max, min, desc=True, byscore=True, offset=start, num=num, withscores=withscores)

    def zrangebylex(self, name: KeyT, min: EncodableT, max: EncodableT, start: int | None = None,
                    num: int | None = None):
        return self.zrange(name, min, max, bylex=True, offset=start, num=num)

    def zlexcount(self, name: KeyT, min: EncodableT, max: EncodableT):
        return self._command(["ZLEXCOUNT", name, min, max])

    def zremrangebyrank(self, name: KeyT, min: int, max: int):
        return self._command(["ZREMRANGEBYRANK", name, min, max])

    def zremrangebyscore(self, name: KeyT, min: EncodableT, max: EncodableT):
        return self._command(["ZREMRANGEBYSCORE", name, min, max])

    def zmscore(self, key: KeyT, members: Iterable[EncodableT]):
        members = _listed(members, "zmscore")
        return self._command(["ZMSCORE", key, *members], lambda r: [_float_or_none(x) for x in r])

    def zinterstore(self, dest: KeyT, keys: Iterable[KeyT] | Mapping[KeyT, float], aggregate: str | None = None):
        return self._command(["ZINTERSTORE", dest, *_weighted_keys(keys, aggregate)])

    def zunionstore(self, dest: KeyT, keys: Iterable[KeyT] | Mapping[KeyT, float], aggregate: str | None = None):
        return self._command(["ZUNIONSTORE", dest, *_weighted_keys(keys, aggregate)])

    def bzpopmin(self, keys: KeyT | Iterable[KeyT], timeout: float = 0):
        """(key, member, score) of the first non-empty sorted set, waiting up to `timeout` s; None on timeout."""
        keys = [keys] if isinstance(keys, (bytes, str)) else list(keys)
        return self._command(["BZPOPMIN", *keys, timeout], _key_member_score, block_s=timeout)

    def bzpopmax(self, keys: KeyT | Iterable[KeyT], timeout: float = 0):
        keys = [keys] if isinstance(keys, (bytes, str)) else list(keys)
        return self._command(["BZPOPMAX", *keys, timeout], _key_member_score, block_s=timeout)

    # -- more strings, keys, hashes, lists, sets -----------------------------------------------------------------
    def getex(self, name: KeyT, ex: ExpiryT | None = None, px: ExpiryT | None = None, exat: int | None = None,
              pxat: int | None = None, persist: bool = False):
        if sum(x is not None for x in (ex, px, exat, pxat)) + bool(persist) > 1:
            raise DataError("getex: ex, px, exat, pxat and persist are mutually exclusive")
        args: list[Any] = ["GETEX", name]
        if ex is not None:
            args += ["EX", _seconds_ms(ex, unit_ms=False)]
        if px is not None:
            args += ["PX", _seconds_ms(px, unit_ms=True)]
        if exat is not None:
            args += ["EXAT", _absolute(exat, unit_ms=False)]
        if pxat is not None:
            args += ["PXAT", _absolute(pxat, unit_ms=True)]
        if persist:
            args.append("PERSIST")
        return self._command(args)

    def psetex(self, name: KeyT, time_ms: ExpiryT, value: EncodableT):
        return self._command(["PSETEX", name, _seconds_ms(time_ms, unit_ms=True), value])

    def setbit(self, name: KeyT, offset: int, value: int):
        return self._command(["SETBIT", name, offset, 1 if value else 0])

    def getbit(self, name: KeyT, offset: int):
        return self._command(["GETBIT", name, offset])

    def bitcount(self, key: KeyT, start: int | None = None, end: int | None = None, mode: str | None = None):
        if (start is None) != (end is None):
            raise DataError("bitcount: start and end must be given together")
        args: list[Any] = ["BITCOUNT", key]
        if start is not None:
            args += [start, end]
            if mode is not None:
                args.append(mode)
        return self._command(args)

    def expireat(self, name: KeyT, when: int | datetime.datetime, nx: bool = False, xx: bool = False,
                 gt: bool = False, lt: bool = False):
        flags = [f for f, on in (("NX", nx), ("XX", xx), ("GT", gt), ("LT", lt)) if on]
        return self._command(["EXPIREAT", name, _absolute(when, unit_ms=False), *flags], _bool)

    def pexpireat(self, name: KeyT, when: int | datetime.datetime, nx: bool = False, xx: bool = False,
                  gt: bool = False, lt: bool = False):
        flags = [f for f, on in (("NX", nx), ("XX", xx), ("GT", gt), ("LT", lt)) if on]
        return self._command(["PEXPIREAT", name, _absolute(when, unit_ms=True), *flags], _bool)

    def expiretime(self, key: KeyT):
        return self._command(["EXPIRETIME", key])

    def touch(self, *args: KeyT):
        return self._command(["TOUCH", *args])

    def copy(self, source: KeyT, destination: KeyT, destination_db: int | None = None, replace: bool = False):
        args: list[Any] = ["COPY", source, destination]
        if destination_db is not None:
            args += ["DB", destination_db]
        if replace:
            args.append("REPLACE")
        return self._command(args, _bool)

    def hmset(self, name: KeyT, mapping: Mapping[FieldT, EncodableT]):
        if not mapping:
            raise DataError("hmset: mapping must not be empty")
        return self._command(["HMSET", name, *[x for kv in mapping.items() for x in kv]])

    def hstrlen(self, name: KeyT, key: FieldT):
        return self._command(["HSTRLEN", name, key])

    def hrandfield(self, key: KeyT, count: int | None = None, withvalues: bool = False):
        if withvalues and count is None:
            raise DataError("hrandfield: withvalues needs a count")
        args: list[Any] = ["HRANDFIELD", key]
        if count is not None:
            args.append(count)
        if withvalues:
            args.append("WITHVALUES")
        return self._command(args, _flatten if withvalues else None)

    def lpushx(self, name: KeyT, *values: EncodableT):
        return self._command(["LPUSHX", name, *values])

    def rpushx(self, name: KeyT, *values: EncodableT):
        return self._command(["RPUSHX", name, *values])

    def linsert(self, name: KeyT, where: str, refvalue: EncodableT, value: EncodableT):
        if str(where).upper() not in ("BEFORE", "AFTER"):
            raise DataError(f"linsert: where must be 'BEFORE' or 'AFTER', not {where!r}")
        return self._command(["LINSERT", name, where, refvalue, value])

    def lpos(self, name: KeyT, value: EncodableT, rank: int | None = None, count: int | None = None,
             maxlen: int | None = None):
        args: list[Any] = ["LPOS", name, value]
        for option, given in (("RANK", rank), ("COUNT", count), ("MAXLEN", maxlen)):
            if given is not None:
                args += [option, given]
        return self._command(args)

    def lmove(self, first_list: KeyT, second_list: KeyT, src: str = "LEFT", dest: str = "RIGHT"):
        return self._command(["LMOVE", first_list, second_list, _side(src), _side(dest)])

    def blmove(self, first_list: KeyT, second_list: KeyT, timeout: float, src: str = "LEFT", dest: str = "RIGHT"):
        return self._command(["BLMOVE", first_list, second_list, _side(src), _side(dest), timeout],
                             block_s=timeout)

    def rpoplpush(self, src: KeyT, dst: KeyT):
        return self._command(["RPOPLPUSH", src, dst])

    def brpoplpush(self, src: KeyT, dst: KeyT, timeout: float = 0):
        return self._command(["BRPOPLPUSH", src, dst, timeout], block_s=timeout)

    def smove(self, src: KeyT, dst: KeyT, value: EncodableT):
        return self._command(["SMOVE", src, dst, value], _bool)

    def srandmember(self, name: KeyT, number: int | None = None):
        return self._command(["SRANDMEMBER", name] + ([number] if number is not None else []),
                             None if number is None else _as_list)

    def smismember(self, name: KeyT, values: Iterable[EncodableT], *args: EncodableT):
        values = [values, *args] if isinstance(values, (bytes, str, int, float)) else [*values, *args]
        return self._command(["SMISMEMBER", name, *values], lambda r: [bool(x) for x in r])

    def sinterstore(self, dest: KeyT, keys: KeyT | Iterable[KeyT], *args: KeyT):
        keys = [keys, *args] if isinstance(keys, (bytes, str)) else [*keys, *args]
        return self._command(["SINTERSTORE", dest, *keys])

    def sunionstore(self, dest: KeyT, keys: KeyT | Iterable[KeyT], *args: KeyT):
        keys = [keys, *args] if isinstance(keys, (bytes, str)) else [*keys, *args]
        return self._command(["SUNIONSTORE", dest, *keys])

    def sdiffstore(self, dest: KeyT, keys: KeyT | Iterable[KeyT], *args: KeyT):
        keys = [keys, *args] if isinstance(keys, (bytes, str)) else [*keys, *args]
        return self._command(["SDIFFSTORE", dest, *keys])

    # -- hyperloglog ----------------------------------------------------------------------------------------------
    def pfadd(self, name: KeyT, *values: EncodableT):
        return self._command(["PFADD", name, *values])

    def pfcount(self, *sources: KeyT):
        return self._command(["PFCOUNT", *sources])

    def pfmerge(self, dest: KeyT, *sources: KeyT):
        return self._command(["PFMERGE", dest, *sources])

    # -- streams --------------------------------------------------------------------------------------------------
    def xadd(self, name: KeyT, fields: Mapping[FieldT, EncodableT], id: EncodableT = "*",
             maxlen: int | None = None, approximate: bool = True, nomkstream: bool = False,
             minid: EncodableT | None = None, limit: int | None = None):
        """XADD; the new entry's id."""
        if not fields:
            raise DataError("xadd: fields must be a non-empty mapping")
        if maxlen is not None and minid is not None:
            raise DataError("xadd: maxlen and minid are mutually exclusive")
        args: list[Any] = ["XADD", name]
        if nomkstream:
            args.append("NOMKSTREAM")
        args += _trim_args(maxlen, minid, approximate, limit)
        args += [id, *[x for kv in fields.items() for x in kv]]
        return self._command(args)

    def xlen(self, name: KeyT):
        return self._command(["XLEN", name])

    def xrange(self, name: KeyT, min: EncodableT = "-", max: EncodableT = "+", count: int | None = None):
        """[(id, {field: value}), ...], as redis-py."""
        return self._command(["XRANGE", name, min, max] + (["COUNT", count] if count is not None else []),
                             _stream_entries)

    def xrevrange(self, name: KeyT, max: EncodableT = "+", min: EncodableT = "-", count: int | None = None):
        return self._command(["XREVRANGE", name, max, min] + (["COUNT", count] if count is not None else []),
                             _stream_entries)

    def xdel(self, name: KeyT, *ids: EncodableT):
        return self._command(["XDEL", name, *ids])

    def xtrim(self, name: KeyT, maxlen: int | None = None, approximate: bool = True,
              minid: EncodableT | None = None, limit: int | None = None):
        if (maxlen is None) == (minid is None):
            raise DataError("xtrim: give exactly one of maxlen and minid")
        return self._command(["XTRIM", name, *_trim_args(maxlen, minid, approximate, limit)])

    def xread(self, streams: Mapping[KeyT, EncodableT], count: int | None = None, block: int | None = None):
        """[[stream, [(id, {field: value}), ...]], ...] (redis-py's RESP2 shape); [] when nothing arrived.
        block is in milliseconds, as in Redis (0 = forever)."""
        args = _read_args(streams, count, block)
        return self._command(["XREAD", *args], _xread, **_block_option(block))

    def xreadgroup(self, groupname: EncodableT, consumername: EncodableT, streams: Mapping[KeyT, EncodableT],
                   count: int | None = None, block: int | None = None, noack: bool = False):
        args = _read_args(streams, count, block)
        if noack:
            args.insert(0, "NOACK")
        return self._command(["XREADGROUP", "GROUP", groupname, consumername, *args], _xread,
                             **_block_option(block))

    def xgroup_create(self, name: KeyT, groupname: EncodableT, id: EncodableT = "$", mkstream: bool = False,
                      entries_read: int | None = None):
        args: list[Any] = ["XGROUP", "CREATE", name, groupname, id]
        if mkstream:
            args.append("MKSTREAM")
        if entries_read is not None:
            args += ["ENTRIESREAD", entries_read]
        return self._command(args)

    def xgroup_destroy(self, name: KeyT, groupname: EncodableT):
        return self._command(["XGROUP", "DESTROY", name, groupname], _bool)

    def xack(self, name: KeyT, groupname: EncodableT, *ids: EncodableT):
        return self._command(["XACK", name, groupname, *ids])

    def xpending(self, name: KeyT, groupname: EncodableT):
        """{"pending": n, "min": id, "max": id, "consumers": [{"name": ..., "pending": n}]}, as redis-py."""
        return self._command(["XPENDING", name, groupname], _xpending)

    def xpending_range(self, name: KeyT, groupname: EncodableT, min: EncodableT, max: EncodableT, count: int,
                       consumername: EncodableT | None = None, idle: int | None = None):
        args: list[Any] = ["XPENDING", name, groupname]
        if idle is not None:
            args += ["IDLE", idle]
        args += [min, max, count]
        if consumername is not None:
            args.append(consumername)
        keys = ("message_id", "consumer", "time_since_delivered", "times_delivered")
        return self._command(args, lambda r: [dict(zip(keys, row)) for row in r])

    # -- geo ------------------------------------------------------------------------------------------------------
    def geoadd(self, name: KeyT, values: Iterable[EncodableT], nx: bool = False, xx: bool = False,
               ch: bool = False):
        """values: longitude, latitude, member, longitude, latitude, member, ..."""
        values = list(values)
        if not values or len(values) % 3:
            raise DataError("geoadd: values must be (longitude, latitude, member) triples")
        if nx and xx:
            raise DataError("geoadd: nx and xx are mutually exclusive")
        flags = [f for f, on in (("NX", nx), ("XX", xx), ("CH", ch)) if on]
        return self._command(["GEOADD", name, *flags, *values])

    def geodist(self, name: KeyT, place1: EncodableT, place2: EncodableT, unit: str | None = None):
        return self._command(["GEODIST", name, place1, place2] + ([unit] if unit else []), _float_or_none)

    def geopos(self, name: KeyT, *values: EncodableT):
        """[(longitude, latitude) or None, ...]"""
        return self._command(["GEOPOS", name, *values],
                             lambda r: [tuple(map(float, p)) if p else None for p in r])

    def geohash(self, name: KeyT, *values: EncodableT):
        return self._command(["GEOHASH", name, *values])

    def geosearch(self, name: KeyT, member: EncodableT | None = None, longitude: float | None = None,
                  latitude: float | None = None, unit: str = "m", radius: float | None = None,
                  width: float | None = None, height: float | None = None, sort: str | None = None,
                  count: int | None = None, any: bool = False, withcoord: bool = False, withdist: bool = False,
                  withhash: bool = False):
        """Members within a radius or box; with any with* option, [member, dist, hash, (lon, lat)] lists holding
        the asked fields in that order, as redis-py."""
        args: list[Any] = ["GEOSEARCH", name]
        if (member is None) == (longitude is None or latitude is None):
            raise DataError("geosearch: give member, or longitude and latitude")
        args += ["FROMMEMBER", member] if member is not None else ["FROMLONLAT", longitude, latitude]
        if (radius is None) == (width is None or height is None):
            raise DataError("geosearch: give radius, or width and height")
        args += ["BYRADIUS", radius, unit] if radius is not None else ["BYBOX", width, height, unit]
        if sort is not None:
            if str(sort).upper() not in ("ASC", "DESC"):
                raise DataError(f"geosearch: sort must be 'ASC' or 'DESC', not {sort!r}")
            args.append(sort)
        if count is not None:
            args += ["COUNT", count] + (["ANY"] if any else [])
        elif any:
            raise DataError("geosearch: any needs a count")
        withs = [w for w, on in (("WITHCOORD", withcoord), ("WITHDIST", withdist), ("WITHHASH", withhash)) if on]
        args += withs

        def parse(reply: Any) -> Any:
            if not withs:
                return reply
            out = []
            for item in reply:
                member_, rest = item[0], list(item[1:])
                row: list[Any] = [member_]
                if withdist:
                    row.append(float(rest.pop(0)))
                if withhash:
                    row.append(int(rest.pop(0)))
                if withcoord:
                    row.append(tuple(map(float, rest.pop(0))))
                out.append(row)
            return out
        return self._command(args, parse)

    # -- scripting and pub/sub -------------------------------------------------------------------------------------
    def eval(self, script: str | bytes, numkeys: int, *keys_and_args: EncodableT):
        """EVAL: routed by its keys (the first numkeys arguments, one slot), sent to the primary, exactly-once."""
        return self._command(["EVAL", script, numkeys, *keys_and_args])

    def evalsha(self, sha: str | bytes, numkeys: int, *keys_and_args: EncodableT):
        return self._command(["EVALSHA", sha, numkeys, *keys_and_args])

    def publish(self, channel: EncodableT, message: EncodableT):
        """PUBLISH (delivered to subscribers on RESP connections); the number of receivers. Sent at most once."""
        return self._command(["PUBLISH", channel, message])


def _listed(values: Any, what: str) -> list:
    if isinstance(values, (bytes, str)) or not isinstance(values, Iterable):
        raise DataError(f"{what}: expected a list of members, not {values!r}")
    values = list(values)
    if not values:
        raise DataError(f"{what}: the list of members must not be empty")
    return values


def _weighted_keys(keys: Any, aggregate: str | None) -> list:
    if isinstance(keys, Mapping):
        names, weights = list(keys), list(keys.values())
    else:
        names, weights = _listed(keys, "zinterstore/zunionstore"), None
    args: list[Any] = [len(names), *names]
    if weights:
        args += ["WEIGHTS", *weights]
    if aggregate is not None:
        if str(aggregate).upper() not in ("SUM", "MIN", "MAX"):
            raise DataError(f"aggregate must be SUM, MIN or MAX, not {aggregate!r}")
        args += ["AGGREGATE", aggregate]
    return args


def _key_member_score(reply: Any) -> tuple | None:
    return (reply[0], reply[1], float(reply[2])) if reply else None


def _absolute(when: int | datetime.datetime, unit_ms: bool) -> int:
    if isinstance(when, datetime.datetime):
        seconds = when.timestamp()
        return int(seconds * 1000) if unit_ms else int(seconds)
    if isinstance(when, bool) or not isinstance(when, int):
        raise DataError(f"an absolute expiry must be an int (unix time) or a datetime, not {type(when).__name__}")
    return when


def _side(side: str) -> str:
    if not isinstance(side, str) or side.upper() not in ("LEFT", "RIGHT"):
        raise DataError(f"a list side must be 'LEFT' or 'RIGHT', not {side!r}")
    return side


def _flatten(reply: Any) -> Any:
    """HRANDFIELD WITHVALUES: RESP3's [[field, value], ...] as redis-py's flat [field, value, ...]."""
    if reply and isinstance(reply[0], list):
        return [x for pair in reply for x in pair]
    return reply


def _as_list(reply: Any) -> Any:
    return list(reply) if isinstance(reply, (set, tuple)) else reply


def _trim_args(maxlen: int | None, minid: Any, approximate: bool, limit: int | None) -> list:
    if maxlen is None and minid is None:
        if limit is not None:
            raise DataError("limit needs maxlen or minid")
        return []
    args: list[Any] = ["MAXLEN" if maxlen is not None else "MINID"]
    if approximate:
        args.append("~")
    args.append(maxlen if maxlen is not None else minid)
    if limit is not None:
        if not approximate:
            raise DataError("limit needs approximate=True")
        args += ["LIMIT", limit]
    return args


def _read_args(streams: Mapping[KeyT, Any], count: int | None, block: int | None) -> list:
    if not isinstance(streams, Mapping) or not streams:
        raise DataError("streams must be a non-empty {stream: last id} mapping")
    args: list[Any] = []
    if count is not None:
        args += ["COUNT", count]
    if block is not None:
        if isinstance(block, bool) or not isinstance(block, int) or block < 0:
            raise DataError(f"block must be a non-negative int of milliseconds, not {block!r}")
        args += ["BLOCK", block]
    return args + ["STREAMS", *streams.keys(), *streams.values()]


def _block_option(block: int | None) -> dict:
    return {} if block is None else {"block_s": block / 1000}


def _fields(fields: Any) -> Any:
    if fields is None or isinstance(fields, dict):
        return fields
    return dict(zip(fields[::2], fields[1::2]))


def _stream_entries(reply: Any) -> Any:
    if reply is None:
        return None
    return [(None, None) if item is None else (item[0], _fields(item[1])) for item in reply]


def _xread(reply: Any) -> list:
    if not reply:
        return []
    pairs = reply.items() if isinstance(reply, dict) else reply
    return [[stream, _stream_entries(entries)] for stream, entries in pairs]


_xread.parses_none = True


def _xpending(reply: Any) -> dict:
    return {"pending": reply[0], "min": reply[1], "max": reply[2],
            "consumers": [{"name": n, "pending": int(p)} for n, p in (reply[3] or [])]}


class WithTimeout(Commands):
    """A client's command methods under one per-call timeout: `client.with_timeout(0.5).get("k")` raises
    memdb.client.TimeoutError if the reply takes longer than 0.5 s (a write: "may or may not have been applied")."""

    def __init__(self, client: Any, timeout: float):
        self._client = client
        self._timeout = timeout

    def _command(self, args: list, parse: Parse | None = None, **options: Any) -> Any:
        options.setdefault("timeout", self._timeout)
        return self._client._command(args, parse, **options)

    def execute(self, *args: Any) -> Any:
        return self._client.execute(*args, timeout=self._timeout)
