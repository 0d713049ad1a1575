"""Sorted-set commands (Redis 7.0 t_zset.c), including BZPOPMIN/BZPOPMAX/BZMPOP.

Values are `ZSetValue` (memdb/commands/zset_type.py): ordered by (score, member bytes) exactly as Redis's skiplist
and listpack order ties, and recording which encoding Redis would use (see that module for the two quirks that
depend on it). Scores are replied as `Double` (RESP2: "%.17g", inf/-inf; RESP3: a double).

Reply shapes that differ between protocols beyond encoding (Redis 7.0):
  - WITHSCORES (ZRANGE family, ZUNION/ZINTER/ZDIFF, ZRANDMEMBER) and ZPOPMIN/ZPOPMAX with a count: RESP2 a flat
    [member, score, ...] array, RESP3 an array of [member, score] pairs. ZPOPMIN without count stays flat.
  - ZMPOP/BZMPOP always nest [[member, score], ...]; BZPOPMIN is always flat [key, member, score].
These read `ctx.resp`.

Range arguments are parsed like Redis: scores with C strtod ("(" for exclusive, "" reads as 0, "inf", hex...),
lex items must start with "(" or "[" or be exactly "-" or "+". Lex ranges on a listpack are found by a linear
scan (zzlFirstInLexRange), on a skiplist by a descent that assumes members sorted; with mixed scores the two may
differ, as they do in Redis.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

from memdb import notify
from memdb.commands import messages
from memdb.commands._typeutil import (
    LONG_MAX, index_range, leading_flags, listpack_double_text, lookup, numkeys_finder, parse_long, parse_mpop,
    parse_positive, parse_range, parse_score, remove_members, signal_or_delete, store_or_delete, strtod)
from memdb.commands.args import format_double, parse_timeout_ms
from memdb.commands.declare import command
from memdb.commands.scanning import glob_match, parse_cursor, parse_scan_options, scan_page
from memdb.commands.spec import NULL_ARRAY, Blocked, CommandError, Context, Double
from memdb.commands.zset_type import ZSetValue
from memdb.keyspace import SetValue

__all__ = ["COMMANDS", "ZSetValue", "encoding"]


def encoding(value: ZSetValue) -> str:
    """OBJECT ENCODING of a sorted set in Redis 7.0: listpack or skiplist."""
    return "listpack" if value.listpack else "skiplist"


# -- helpers ------------------------------------------------------------------------------------------------------
def _lookup(ctx: Context, key: bytes) -> ZSetValue | None:
    return lookup(ctx, key, ZSetValue)


def _with_scores(ctx: Context, entries: Iterable[tuple[bytes, float]]) -> list[Any]:
    if ctx.resp > 2:
        return [[member, Double(score)] for member, score in entries]
    reply: list[Any] = []
    for member, score in entries:
        reply.append(member)
        reply.append(Double(score))
    return reply


def _members_reply(ctx: Context, entries: list[tuple[bytes, float]], withscores: bool) -> list[Any]:
    return _with_scores(ctx, entries) if withscores else [member for member, _ in entries]


# -- range specs ---------------------------------------------------------------------------------------------------
def _parse_score_item(arg: bytes) -> tuple[float, bool]:
    exclusive = arg[:1] == b"("
    value = strtod(arg[1:] if exclusive else arg)
    if value is None or math.isnan(value):
        raise CommandError(messages.MIN_MAX_NOT_FLOAT)
    return value, exclusive


def _parse_score_range(lo: bytes, hi: bytes) -> tuple[float, bool, float, bool]:
    """zslParseRange: (min, minex, max, maxex)."""
    lo_v, lo_ex = _parse_score_item(lo)
    hi_v, hi_ex = _parse_score_item(hi)
    return lo_v, lo_ex, hi_v, hi_ex


# A lex bound is (kind, value, exclusive): kind -1 is "-" (below everything), +1 is "+", 0 a string.
LexBound = tuple[int, bytes, bool]


def _parse_lex_item(arg: bytes) -> LexBound:
    """zslParseLexRangeItem: '+' and '-' alone (and exclusive), or '(' / '[' followed by the string."""
    head = arg[:1]
    if head == b"+" and len(arg) == 1:
        return 1, b"", True
    if head == b"-" and len(arg) == 1:
        return -1, b"", True
    if head == b"(":
        return 0, arg[1:], True
    if head == b"[":
        return 0, arg[1:], False
    raise CommandError(messages.MIN_MAX_NOT_LEX)


def _parse_lex_range(lo: bytes, hi: bytes) -> tuple[LexBound, LexBound]:
    return _parse_lex_item(lo), _parse_lex_item(hi)


def _lex_cmp_bounds(a: LexBound, b: LexBound) -> int:
    """sdscmplex between two bounds (the shared min/max strings compare by identity)."""
    if a[0] == b[0] and a[0] != 0:
        return 0
    if a[0] == -1 or b[0] == 1:
        return -1
    if a[0] == 1 or b[0] == -1:
        return 1
    return (a[1] > b[1]) - (a[1] < b[1])


def _gte_min(member: bytes, lo: LexBound) -> bool:
    if lo[0]:
        return lo[0] < 0
    return member > lo[1] if lo[2] else member >= lo[1]


def _lte_max(member: bytes, hi: LexBound) -> bool:
    if hi[0]:
        return hi[0] > 0
    return member < hi[1] if hi[2] else member <= hi[1]


def _lex_in_range(value: ZSetValue, lo: LexBound, hi: LexBound) -> bool:
    """zslIsInLexRange: the range is not empty and overlaps the set's first..last members."""
    cmp = _lex_cmp_bounds(lo, hi)
    if cmp > 0 or (cmp == 0 and (lo[2] or hi[2])):
        return False
    if not value:
        return False
    return _gte_min(value.at(-1)[0], lo) and _lte_max(value.at(0)[0], hi)


def _first_in_lex(value: ZSetValue, lo: LexBound, hi: LexBound) -> int | None:
    if not _lex_in_range(value, lo, hi):
        return None
    n = len(value)
    if value.listpack:
        index = next((i for i in range(n) if _gte_min(value.at(i)[0], lo)), None)
        if index is None:
            return None
    else:
        low, high = 0, n - 1   # the skiplist descent: the first member >= min, assuming members sorted
        while low < high:
            mid = (low + high) // 2
            if _gte_min(value.at(mid)[0], lo):
                high = mid
            else:
                low = mid + 1
        index = low
    return index if _lte_max(value.at(index)[0], hi) else None


def _last_in_lex(value: ZSetValue, lo: LexBound, hi: LexBound) -> int | None:
    if not _lex_in_range(value, lo, hi):
        return None
    n = len(value)
    if value.listpack:
        index = next((i for i in range(n - 1, -1, -1) if _lte_max(value.at(i)[0], hi)), None)
        if index is None:
            return None
    else:
        low, high = 0, n - 1   # the last member <= max, assuming members sorted
        while low < high:
            mid = (low + high + 1) // 2
            if _lte_max(value.at(mid)[0], hi):
                low = mid
            else:
                high = mid - 1
        index = low
    return index if _gte_min(value.at(index)[0], lo) else None


def _rank_range(value: ZSetValue, start: int, end: int, reverse: bool) -> list[tuple[bytes, float]]:
    bounds = index_range(start, end, len(value))
    if bounds is None:
        return []
    first, last = bounds
    n = len(value)
    if reverse:
        return value.slice(n - 1 - last, n - first, reverse=True)
    return value.slice(first, last + 1)


def _score_range(value: ZSetValue, spec: tuple[float, bool, float, bool], reverse: bool, offset: int,
                 limit: int) -> list[tuple[bytes, float]]:
    """genericZrangebyscoreCommand: a negative offset walks off the end (empty); a negative limit is no limit."""
    if offset < 0 or (offset > 0 and offset >= len(value)):
        return []
    first, end = value.score_bounds(*spec)
    if first >= end:
        return []
    count = end - first - offset
    if limit >= 0:
        count = min(count, limit)
    if count <= 0:
        return []
    if reverse:
        return value.slice(end - offset - count, end - offset, reverse=True)
    return value.slice(first + offset, first + offset + count)


def _lex_range(value: ZSetValue, lo: LexBound, hi: LexBound, reverse: bool, offset: int,
               limit: int) -> list[tuple[bytes, float]]:
    """genericZrangebylexCommand: start at the first (last) member in range, skip offset, then take members while
    they are <= max (>= min)."""
    if offset < 0 or (offset > 0 and offset >= len(value)):
        return []
    start = _last_in_lex(value, lo, hi) if reverse else _first_in_lex(value, lo, hi)
    if start is None:
        return []
    result = []
    step = -1 if reverse else 1
    index = start + step * offset
    while 0 <= index < len(value) and limit != 0:
        member, score = value.at(index)
        if not (_gte_min(member, lo) if reverse else _lte_max(member, hi)):
            break
        result.append((member, score))
        index += step
        limit -= 1
    return result


# -- ZADD / ZINCRBY ------------------------------------------------------------------------------------------------
def _zadd_generic(ctx: Context, args: list[bytes], incr: bool) -> Any:
    """zaddGenericCommand: options, then score-member pairs; all scores are parsed before anything changes."""
    flags, index = leading_flags(args, 2, (b"NX", b"XX", b"CH", b"INCR", b"GT", b"LT"))
    nx, xx, ch, gt, lt = (name in flags for name in (b"NX", b"XX", b"CH", b"GT", b"LT"))
    incr = incr or b"INCR" in flags
    elements = len(args) - index
    if elements % 2 or not elements:
        raise CommandError(messages.SYNTAX)
    if nx and xx:
        raise CommandError(messages.ZADD_XX_NX)
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise CommandError(messages.ZADD_GT_LT_NX)
    if incr and elements > 2:
        raise CommandError(messages.ZADD_INCR_PAIRS)
    pairs = [(parse_score(args[i]), args[i + 1]) for i in range(index, len(args), 2)]

    key = args[1]
    value = _lookup(ctx, key)
    if value is None:
        if xx:
            return None if incr else 0
        # Redis 7.0 picks the encoding from the first member only (zset-max-listpack-value)
        value = ZSetValue(member_len_hint=len(pairs[0][1]))
        ctx.db.set(key, value)

    added = updated = processed = 0
    score = 0.0
    for score, member in pairs:
        current = value.score(member)
        if current is not None:
            if nx:
                continue
            if incr:
                score += current
                if math.isnan(score):   # inf + -inf; only INCR gets here, with a single pair
                    raise CommandError(messages.ZSCORE_NAN)
            if (lt and score >= current) or (gt and score <= current):
                continue
            processed += 1
            if score != current:
                value.update(member, score)
                updated += 1
        elif not xx:
            value.insert(member, score)
            added += 1
            processed += 1
        else:
            continue
    if added or updated:
        ctx.db.signal_modified(key)
        ctx.notify(notify.ZSET, "zincr" if incr else "zadd", key)
    if incr:
        return Double(score) if processed else None
    return added + updated if ch else added


def zadd(ctx: Context, args: list[bytes]) -> Any:
    return _zadd_generic(ctx, args, incr=False)


def zincrby(ctx: Context, args: list[bytes]) -> Any:
    # Redis runs ZADD's parser from argv[2], so "ZINCRBY k nx m" reads NX as an option (then a syntax error).
    return _zadd_generic(ctx, args, incr=True)


# -- reads ---------------------------------------------------------------------------------------------------------
def zcard(ctx: Context, args: list[bytes]) -> Any:
    value = _lookup(ctx, args[1])
    return 0 if value is None else len(value)


def zscore(ctx: Context, args: list[bytes]) -> Any:
    value = _lookup(ctx, args[1])
    score = None if value is None else value.score(args[2])
    return None if score is None else Double(score)


def member_scores(ctx: Context, key: bytes, members: list[bytes]) -> list[float | None]:
    """ZMSCORE/GEOPOS/GEOHASH: each member's score, None where it is absent (all None if the key is missing)."""
    value = _lookup(ctx, key)
    return [None if value is None else value.score(member) for member in members]


def zmscore(ctx: Context, args: list[bytes]) -> Any:
    return [None if score is None else Double(score) for score in member_scores(ctx, args[1], args[2:])]


def _rank_command(ctx: Context, args: list[bytes], reverse: bool) -> Any:
    value = _lookup(ctx, args[1])
    if value is None:
        return None
    rank = value.rank(args[2])
    if rank is None:
        return None
    return len(value) - 1 - rank if reverse else rank


def zrank(ctx: Context, args: list[bytes]) -> Any:
    return _rank_command(ctx, args, False)


def zrevrank(ctx: Context, args: list[bytes]) -> Any:
    return _rank_command(ctx, args, True)


def zcount(ctx: Context, args: list[bytes]) -> Any:
    spec = _parse_score_range(args[2], args[3])
    value = _lookup(ctx, args[1])
    if value is None:
        return 0
    first, end = value.score_bounds(*spec)
    return end - first


def zlexcount(ctx: Context, args: list[bytes]) -> Any:
    lo, hi = _parse_lex_range(args[2], args[3])
    value = _lookup(ctx, args[1])
    if value is None:
        return 0
    first = _first_in_lex(value, lo, hi)
    if first is None:
        return 0
    if value.listpack:
        count = 0
        for index in range(first, len(value)):
            if not _lte_max(value.at(index)[0], hi):
                break
            count += 1
        return count
    last = _last_in_lex(value, lo, hi)
    return 0 if last is None else max(0, last - first + 1)


# -- removal -------------------------------------------------------------------------------------------------------
def zrem(ctx: Context, args: list[bytes]) -> Any:
    return remove_members(ctx, args, ZSetValue, ZSetValue.remove, notify.ZSET, "zrem")


def zremrangebyrank(ctx: Context, args: list[bytes]) -> Any:
    start, end = parse_long(args[2]), parse_long(args[3])
    key = args[1]
    value = _lookup(ctx, key)
    if value is None:
        return 0
    bounds = index_range(start, end, len(value))
    if bounds is None:
        return 0
    removed = value.remove_slice(bounds[0], bounds[1] + 1)
    if removed:
        signal_or_delete(ctx, key, value, notify.ZSET, "zremrangebyrank")
    return removed


def zremrangebyscore(ctx: Context, args: list[bytes]) -> Any:
    spec = _parse_score_range(args[2], args[3])
    key = args[1]
    value = _lookup(ctx, key)
    if value is None:
        return 0
    first, end = value.score_bounds(*spec)
    removed = value.remove_slice(first, end) if end > first else 0
    if removed:
        signal_or_delete(ctx, key, value, notify.ZSET, "zremrangebyscore")
    return removed


def zremrangebylex(ctx: Context, args: list[bytes]) -> Any:
    lo, hi = _parse_lex_range(args[2], args[3])
    key = args[1]
    value = _lookup(ctx, key)
    if value is None:
        return 0
    first = _first_in_lex(value, lo, hi)
    if first is None:
        return 0
    end = first
    while end < len(value) and _lte_max(value.at(end)[0], hi):
        end += 1
    removed = value.remove_slice(first, end)
    if removed:
        signal_or_delete(ctx, key, value, notify.ZSET, "zremrangebylex")
    return removed


# -- ZRANGE family -------------------------------------------------------------------------------------------------
RANK, SCORE, LEX = "rank", "score", "lex"


def _zrange_generic(ctx: Context, args: list[bytes], key_index: int, store: bytes | None, rangetype: str | None,
                    reverse: bool | None) -> Any:
    """zrangeGenericCommand. rangetype/reverse None means 'auto' (ZRANGE/ZRANGESTORE accept BYSCORE/BYLEX/REV)."""
    key = args[key_index]
    min_index, max_index = key_index + 1, key_index + 2
    withscores = False
    offset, limit = 0, -1
    i = key_index + 3
    while i < len(args):
        opt = args[i].upper()
        left = len(args) - i - 1
        if store is None and opt == b"WITHSCORES":
            withscores = True
        elif opt == b"LIMIT" and left >= 2:
            offset, limit = parse_long(args[i + 1]), parse_long(args[i + 2])
            i += 2
        elif reverse is None and opt == b"REV":
            reverse = True
        elif rangetype is None and opt == b"BYLEX":
            rangetype = LEX
        elif rangetype is None and opt == b"BYSCORE":
            rangetype = SCORE
        else:
            raise CommandError(messages.SYNTAX)
        i += 1
    reverse = bool(reverse)
    rangetype = rangetype or RANK
    if limit != -1 and rangetype == RANK:
        raise CommandError(messages.ZRANGE_LIMIT_BY_RANK)
    if withscores and rangetype == LEX:
        raise CommandError(messages.ZRANGE_WITHSCORES_BYLEX)
    if reverse and rangetype in (SCORE, LEX):
        min_index, max_index = max_index, min_index   # the range is given as max min

    if rangetype == RANK:
        start, end = parse_long(args[min_index]), parse_long(args[max_index])
    elif rangetype == SCORE:
        spec = _parse_score_range(args[min_index], args[max_index])
    else:
        lo, hi = _parse_lex_range(args[min_index], args[max_index])

    value = _lookup(ctx, key)
    if value is None:
        if store is None:
            return []
        return store_or_delete(ctx, store, ZSetValue(), notify.ZSET, "zrangestore")   # empty: deletes the dst

    if rangetype == RANK:
        entries = _rank_range(value, start, end, reverse)
    elif rangetype == SCORE:
        entries = _score_range(value, spec, reverse, offset, limit)
    else:
        entries = _lex_range(value, lo, hi, reverse, offset, limit)

    if store is not None:
        # zrangeResultBeginStore: a skiplist up front only for a rank range known to exceed the listpack limit
        result = ZSetValue(size_hint=len(entries) if rangetype == RANK else 0)
        for member, score in entries:
            result.insert(member, score)
        return store_or_delete(ctx, store, result, notify.ZSET, "zrangestore")
    return _members_reply(ctx, entries, withscores)


def zrange(ctx: Context, args: list[bytes]) -> Any:
    return _zrange_generic(ctx, args, 1, None, None, None)


def zrangestore(ctx: Context, args: list[bytes]) -> Any:
    return _zrange_generic(ctx, args, 2, args[1], None, None)


def zrevrange(ctx: Context, args: list[bytes]) -> Any:
    return _zrange_generic(ctx, args, 1, None, RANK, True)


def zrangebyscore(ctx: Context, args: list[bytes]) -> Any:
    return _zrange_generic(ctx, args, 1, None, SCORE, False)


def zrevrangebyscore(ctx: Context, args: list[bytes]) -> Any:
    return _zrange_generic(ctx, args, 1, None, SCORE, True)


def zrangebylex(ctx: Context, args: list[bytes]) -> Any:
    return _zrange_generic(ctx, args, 1, None, LEX, False)


def zrevrangebylex(ctx: Context, args: list[bytes]) -> Any:
    return _zrange_generic(ctx, args, 1, None, LEX, True)


# -- ZUNION / ZINTER / ZDIFF ---------------------------------------------------------------------------------------
UNION, INTER, DIFF = "union", "inter", "diff"
_STORE_EVENTS = {UNION: "zunionstore", INTER: "zinterstore", DIFF: "zdiffstore"}


def _source_items(source: Any) -> list[tuple[bytes, float]]:
    if isinstance(source, ZSetValue):
        return list(source.items())
    return [(member, 1.0) for member in source]


def _source_score(source: Any, member: bytes) -> float | None:
    if isinstance(source, ZSetValue):
        return source.score(member)
    return 1.0 if member in source else None


def _aggregate(target: float, value: float, how: bytes) -> float:
    """zunionInterAggregate."""
    if how == b"SUM":
        total = target + value
        return 0.0 if math.isnan(total) else total
    if how == b"MIN":
        return value if value < target else target
    return value if value > target else target


def _zsetop(ctx: Context, args: list[bytes], numkeys_index: int, op: str, dest: bytes | None,
            cardinality_only: bool = False) -> Any:
    """zunionInterDiffGenericCommand."""
    name = args[0].decode(errors="replace").lower()
    setnum = parse_long(args[numkeys_index])
    if setnum < 1:
        raise CommandError(messages.at_least_one_input_key(name))
    if setnum > len(args) - (numkeys_index + 1):
        raise CommandError(messages.SYNTAX)
    keys = args[numkeys_index + 1:numkeys_index + 1 + setnum]
    sources: list[Any] = []
    for key in keys:   # every input is looked up and type-checked before the options are parsed
        value = ctx.db.get(key, ctx.now_ms, ctx.is_replica_read)
        if value is not None and not isinstance(value, (ZSetValue, SetValue)):
            raise CommandError(messages.WRONGTYPE)
        sources.append(value)
    weights = [1.0] * setnum
    how = b"SUM"
    withscores = False
    limit = 0
    j = numkeys_index + 1 + setnum
    while j < len(args):
        remaining = len(args) - j
        opt = args[j].upper()
        if op != DIFF and not cardinality_only and remaining >= setnum + 1 and opt == b"WEIGHTS":
            weights = [parse_score(args[j + 1 + i], messages.WEIGHT_NOT_FLOAT) for i in range(setnum)]
            j += 1 + setnum
        elif op != DIFF and not cardinality_only and remaining >= 2 and opt == b"AGGREGATE":
            how = args[j + 1].upper()
            if how not in (b"SUM", b"MIN", b"MAX"):
                raise CommandError(messages.SYNTAX)
            j += 2
        elif dest is None and not cardinality_only and opt == b"WITHSCORES":
            withscores = True
            j += 1
        elif cardinality_only and remaining >= 2 and opt == b"LIMIT":
            limit = parse_positive(args[j + 1], messages.LIMIT_NEGATIVE)
            j += 2
        else:
            raise CommandError(messages.SYNTAX)

    results: dict[bytes, float] = {}
    if op == DIFF:
        first = sources[0]
        if first is not None:
            others = [s for s in sources[1:] if s is not None]
            for member, score in _source_items(first):
                if not any(_source_score(other, member) is not None for other in others):
                    results[member] = score
    else:
        # smallest input first, as Redis's qsort by cardinality (stable): it fixes the order of float sums
        order = sorted(range(setnum), key=lambda i: 0 if sources[i] is None else len(sources[i]))
        if op == INTER:
            first_i = order[0]
            if sources[first_i] is not None and len(sources[first_i]):
                for member, score in _source_items(sources[first_i]):
                    total = weights[first_i] * score
                    if math.isnan(total):
                        total = 0.0
                    for i in order[1:]:
                        other = _source_score(sources[i], member) if sources[i] is not None else None
                        if other is None:
                            break
                        total = _aggregate(total, weights[i] * other, how)
                    else:
                        results[member] = total
                        if cardinality_only and limit and len(results) >= limit:
                            break
        else:
            for i in order:
                if sources[i] is None:
                    continue
                for member, score in _source_items(sources[i]):
                    weighted = weights[i] * score
                    if math.isnan(weighted):
                        weighted = 0.0
                    if member in results:
                        results[member] = _aggregate(results[member], weighted, how)
                    else:
                        results[member] = weighted

    if cardinality_only:
        return len(results)
    result = ZSetValue()
    result.listpack = False   # zsetCreate(): a skiplist, converted below only when stored
    for member, score in results.items():
        result.insert(member, score)
    if dest is not None:
        if result:
            result.convert_if_needed(max(len(m) for m in results))
        return store_or_delete(ctx, dest, result, notify.ZSET, _STORE_EVENTS[op])
    return _members_reply(ctx, list(result.items()), withscores)


def zunion(ctx: Context, args: list[bytes]) -> Any:
    return _zsetop(ctx, args, 1, UNION, None)


def zinter(ctx: Context, args: list[bytes]) -> Any:
    return _zsetop(ctx, args, 1, INTER, None)


def zdiff(ctx: Context, args: list[bytes]) -> Any:
    return _zsetop(ctx, args, 1, DIFF, None)


def zunionstore(ctx: Context, args: list[bytes]) -> Any:
    return _zsetop(ctx, args, 2, UNION, args[1])


def zinterstore(ctx: Context, args: list[bytes]) -> Any:
    return _zsetop(ctx, args, 2, INTER, args[1])


def zdiffstore(ctx: Context, args: list[bytes]) -> Any:
    return _zsetop(ctx, args, 2, DIFF, args[1])


def zintercard(ctx: Context, args: list[bytes]) -> Any:
    return _zsetop(ctx, args, 1, INTER, None, cardinality_only=True)


# -- random --------------------------------------------------------------------------------------------------------
def zrandmember(ctx: Context, args: list[bytes]) -> Any:
    if len(args) == 2:
        value = _lookup(ctx, args[1])
        if value is None:
            return None
        return value.at(ctx.rng.randrange(len(value)))[0]
    if len(args) > 4 or (len(args) == 4 and args[3].upper() != b"WITHSCORES"):
        raise CommandError(messages.SYNTAX)
    withscores = len(args) == 4
    count = parse_range(args[2], -LONG_MAX, LONG_MAX)
    if withscores and count < -LONG_MAX // 2:
        raise CommandError(messages.OUT_OF_RANGE)   # the reply would need more than LONG_MAX elements
    value = _lookup(ctx, args[1])
    if value is None or count == 0:
        return []
    size = len(value)
    if count < 0:
        entries = [value.at(ctx.rng.randrange(size)) for _ in range(-count)]
    elif count >= size:
        entries = list(value.items())
    else:
        entries = [value.at(i) for i in sorted(ctx.rng.sample(range(size), count))]
    return _members_reply(ctx, entries, withscores)


# -- pops ----------------------------------------------------------------------------------------------------------
def _pop(ctx: Context, key: bytes, value: ZSetValue, from_max: bool, count: int) -> list[tuple[bytes, float]]:
    popped = [value.pop_at(-1 if from_max else 0) for _ in range(min(count, len(value)))]
    signal_or_delete(ctx, key, value, notify.ZSET, "zpopmax" if from_max else "zpopmin")
    return popped


def _zpop_command(ctx: Context, args: list[bytes], from_max: bool) -> Any:
    if len(args) > 3:
        raise CommandError(messages.SYNTAX)
    has_count = len(args) == 3
    count = parse_positive(args[2]) if has_count else 1
    key = args[1]
    value = _lookup(ctx, key)
    if value is None or count == 0:
        return []
    popped = _pop(ctx, key, value, from_max, count)
    if not has_count:
        member, score = popped[0]
        return [member, Double(score)]
    return _with_scores(ctx, popped)


def zpopmin(ctx: Context, args: list[bytes]) -> Any:
    return _zpop_command(ctx, args, False)


def zpopmax(ctx: Context, args: list[bytes]) -> Any:
    return _zpop_command(ctx, args, True)


def _parse_mpop(args: list[bytes], numkeys_index: int) -> tuple[list[bytes], bool, int]:
    """ZMPOP numkeys key [key ...] MIN|MAX [COUNT count] -> (keys, from_max, count)."""
    keys, where, count = parse_mpop(args, numkeys_index, (b"MIN", b"MAX"))
    return keys, where == b"MAX", count


def _mpop(ctx: Context, keys: list[bytes], from_max: bool, count: int) -> Any:
    for key in keys:
        value = _lookup(ctx, key)
        if value is None:
            continue
        popped = _pop(ctx, key, value, from_max, count)
        return [key, [[member, Double(score)] for member, score in popped]]
    return None


def zmpop(ctx: Context, args: list[bytes]) -> Any:
    keys, from_max, count = _parse_mpop(args, 1)
    result = _mpop(ctx, keys, from_max, count)
    return NULL_ARRAY if result is None else result


def _blocking_zpop(ctx: Context, args: list[bytes], from_max: bool) -> Any:
    timeout_ms = parse_timeout_ms(args[-1]) or None
    keys = args[1:-1]
    for key in keys:
        value = _lookup(ctx, key)
        if value is None:
            continue
        (member, score), = _pop(ctx, key, value, from_max, 1)
        return [key, member, Double(score)]
    return Blocked(tuple(keys), timeout_ms)


def bzpopmin(ctx: Context, args: list[bytes]) -> Any:
    return _blocking_zpop(ctx, args, False)


def bzpopmax(ctx: Context, args: list[bytes]) -> Any:
    return _blocking_zpop(ctx, args, True)


def bzmpop(ctx: Context, args: list[bytes]) -> Any:
    keys, from_max, count = _parse_mpop(args, 2)   # Redis checks numkeys/where/COUNT before the timeout
    timeout_ms = parse_timeout_ms(args[1]) or None
    result = _mpop(ctx, keys, from_max, count)
    if result is None:
        return Blocked(tuple(keys), timeout_ms)
    return result


# -- scan ----------------------------------------------------------------------------------------------------------
def zscan(ctx: Context, args: list[bytes]) -> Any:
    cursor = parse_cursor(args[2])
    value = _lookup(ctx, args[1])
    if value is None:
        return [b"0", []]
    count, pattern, _ = parse_scan_options(args, 3, allow_type=False)
    if value.listpack:
        # a listpack is returned whole in one call, in order, whatever the cursor (like Redis)
        next_cursor, members = 0, [member for member, _ in value.items()]
    else:
        next_cursor, members = scan_page(list(value.scores), cursor, count)
    # a listpack replies the score text it stores; a skiplist formats the double with "%.17g"
    score_text = listpack_double_text if value.listpack else format_double
    reply = []
    for member in members:
        if pattern is None or glob_match(pattern, member):
            reply.append(member)
            reply.append(score_text(value.scores[member]))
    return [b"%d" % next_cursor, reply]


COMMANDS = [
    command("zadd", -4, "write denyoom fast", 1, 1, 1, zadd, "@write @sortedset @fast"),
    command("zincrby", 4, "write denyoom fast", 1, 1, 1, zincrby, "@write @sortedset @fast"),
    command("zcard", 2, "readonly fast", 1, 1, 1, zcard, "@read @sortedset @fast"),
    command("zcount", 4, "readonly fast", 1, 1, 1, zcount, "@read @sortedset @fast"),
    command("zlexcount", 4, "readonly fast", 1, 1, 1, zlexcount, "@read @sortedset @fast"),
    command("zscore", 3, "readonly fast", 1, 1, 1, zscore, "@read @sortedset @fast"),
    command("zmscore", -3, "readonly fast", 1, 1, 1, zmscore, "@read @sortedset @fast"),
    command("zrank", 3, "readonly fast", 1, 1, 1, zrank, "@read @sortedset @fast"),
    command("zrevrank", 3, "readonly fast", 1, 1, 1, zrevrank, "@read @sortedset @fast"),
    command("zrem", -3, "write fast", 1, 1, 1, zrem, "@write @sortedset @fast"),
    command("zremrangebyrank", 4, "write", 1, 1, 1, zremrangebyrank, "@write @sortedset @slow"),
    command("zremrangebyscore", 4, "write", 1, 1, 1, zremrangebyscore, "@write @sortedset @slow"),
    command("zremrangebylex", 4, "write", 1, 1, 1, zremrangebylex, "@write @sortedset @slow"),
    command("zrange", -4, "readonly", 1, 1, 1, zrange, "@read @sortedset @slow"),
    command("zrangebyscore", -4, "readonly", 1, 1, 1, zrangebyscore, "@read @sortedset @slow"),
    command("zrevrangebyscore", -4, "readonly", 1, 1, 1, zrevrangebyscore, "@read @sortedset @slow"),
    command("zrangebylex", -4, "readonly", 1, 1, 1, zrangebylex, "@read @sortedset @slow"),
    command("zrevrangebylex", -4, "readonly", 1, 1, 1, zrevrangebylex, "@read @sortedset @slow"),
    command("zrevrange", -4, "readonly", 1, 1, 1, zrevrange, "@read @sortedset @slow"),
    command("zrangestore", -5, "write denyoom", 1, 2, 1, zrangestore, "@write @sortedset @slow"),
    command("zunion", -3, "readonly movablekeys", 0, 0, 0, zunion, "@read @sortedset @slow",
            key_finder=numkeys_finder(1)),
    command("zinter", -3, "readonly movablekeys", 0, 0, 0, zinter, "@read @sortedset @slow",
            key_finder=numkeys_finder(1)),
    command("zdiff", -3, "readonly movablekeys", 0, 0, 0, zdiff, "@read @sortedset @slow",
            key_finder=numkeys_finder(1)),
    command("zunionstore", -4, "write denyoom movablekeys", 1, 1, 1, zunionstore, "@write @sortedset @slow",
            key_finder=numkeys_finder(2, (1,))),
    command("zinterstore", -4, "write denyoom movablekeys", 1, 1, 1, zinterstore, "@write @sortedset @slow",
            key_finder=numkeys_finder(2, (1,))),
    command("zdiffstore", -4, "write denyoom movablekeys", 1, 1, 1, zdiffstore, "@write @sortedset @slow",
            key_finder=numkeys_finder(2, (1,))),
    command("zintercard", -3, "readonly movablekeys", 0, 0, 0, zintercard, "@read @sortedset @slow",
            key_finder=numkeys_finder(1)),
    command("zrandmember", -2, "readonly", 1, 1, 1, zrandmember, "@read @sortedset @slow"),
    command("zpopmin", -2, "write fast", 1, 1, 1, zpopmin, "@write @sortedset @fast"),
    command("zpopmax", -2, "write fast", 1, 1, 1, zpopmax, "@write @sortedset @fast"),
    command("zmpop", -4, "write movablekeys", 0, 0, 0, zmpop, "@write @sortedset @slow",
            key_finder=numkeys_finder(1)),
    command("bzpopmin", -3, "write noscript blocking fast", 1, -2, 1, bzpopmin,
            "@write @sortedset @fast @blocking"),
    command("bzpopmax", -3, "write noscript blocking fast", 1, -2, 1, bzpopmax,
            "@write @sortedset @fast @blocking"),
    command("bzmpop", -5, "write blocking movablekeys", 0, 0, 0, bzmpop, "@write @sortedset @slow @blocking",
            key_finder=numkeys_finder(2)),
    command("zscan", -3, "readonly", 1, 1, 1, zscan, "@read @sortedset @slow"),
]
