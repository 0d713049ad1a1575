"""SORT and SORT_RO (Redis 7.0 sort.c) on lists, sets and sorted sets.

Options are parsed as sortCommandGeneric does (ASC/DESC/ALPHA/LIMIT/BY/GET/STORE, errors at the first bad option,
before the key's type is checked). Numeric sorting parses each weight with C strtod ("" reads as 0, trailing
garbage, NaN or ERANGE -> "One or more scores can't be converted into double") and breaks ties by comparing the
elements as binary strings, so the order is total. Patterns substitute the element for the first '*'; "->field"
after it reads a hash field; "#" is the element itself.

Determinism
-----------
Redis loads a set (and a sorted set that it sorts) in hash-table order, and its qsort (glibc's merge sort) keeps
that order among elements that compare equal. Only BY + ALPHA has such ties: sortCompare compares the weights
alone there (equal or missing weights tie), while numeric ties fall back to comparing the elements. With BY and
a LIMIT window, Redis sorts with its own pqsort instead, which is not stable; memdb runs a port of it (_pqsort),
so ties in a list come out as in Redis. memdb loads sets in insertion order (SetValue is an insertion-ordered
dict) and sorted sets in score order, both the same on every node; `BY nosort` on a set returns that insertion
order (Redis: its hash order). With STORE, Redis itself forces an ALPHA sort of a set, so stored results always
agree.
Comparisons are on bytes: Redis's ALPHA without STORE uses strcoll(), which equals byte order in the C locale that
memdb assumes (and stops at a NUL byte, which memdb doesn't).

Not reproduced: Redis 7.0 checks `errno == ERANGE` after strtod without clearing errno first, so after any
command that left errno at ERANGE (a SORT weight like 1e400, INCRBYFLOAT 1e400...) every numeric SORT fails until
something clears it. memdb judges each weight on its own.
"""
from __future__ import annotations

import functools
from fractions import Fraction
from typing import Any, Callable

from memdb import notify
from memdb.commands import messages
from memdb.commands._typeutil import parse_long, store_or_delete
from memdb.commands.args import _strtod_exact as strtod_exact, parse_float
from memdb.commands.declare import command
from memdb.commands.spec import CommandError, Context
from memdb.commands.zset_type import ZSetValue
from memdb.keyspace import HashValue, ListValue, SetValue

_DBL_MIN = 2.2250738585072014e-308


def lookup_by_pattern(ctx: Context, pattern: bytes, element: bytes) -> bytes | None:
    """lookupKeyByPattern: the string (or hash field) the pattern names for this element, or None."""
    if pattern == b"#":
        return element
    star = pattern.find(b"*")
    if star < 0:
        return None
    arrow = pattern.find(b"->", star + 1)
    field = None
    if arrow >= 0 and arrow + 2 < len(pattern):
        field = pattern[arrow + 2:]
        key = pattern[:star] + element + pattern[star + 1:arrow]
    else:
        key = pattern[:star] + element + pattern[star + 1:]
    value = ctx.db.get(key, ctx.now_ms, ctx.is_replica_read)
    if value is None:
        return None
    if field is not None:
        return value.get(field) if isinstance(value, HashValue) else None
    return bytes(value) if isinstance(value, bytes) else None


def _weight(text: bytes) -> float | None:
    """strtod with sortCommandGeneric's checks: None unless strtod reads the whole (C) string without NaN or
    ERANGE (overflow, or an inexact result below the smallest normal double)."""
    nul = text.find(b"\0")
    if nul >= 0:
        text = text[:nul]             # a C string ends at the first NUL
    if text == b"":
        return 0.0                    # nothing to convert: strtod stops at the terminator, which is accepted
    body = text.lstrip(b" \t\n\v\f\r")
    if not body:
        return None
    try:
        value = parse_float(body)     # rejects garbage, NaN, overflow and underflow to zero
    except CommandError:
        return None
    if value != 0 and abs(value) < _DBL_MIN and Fraction(value) != strtod_exact(body):
        return None                   # an inexact subnormal result: ERANGE
    return value


def _sort_generic(ctx: Context, args: list[bytes], readonly: bool) -> Any:
    desc = alpha = dontsort = False
    limit_start, limit_count = 0, -1
    sortby: bytes | None = None
    store_key: bytes | None = None
    gets: list[bytes] = []
    j = 2
    while j < len(args):
        left = len(args) - j - 1
        opt = args[j].upper()
        if opt == b"ASC":
            desc = False
        elif opt == b"DESC":
            desc = True
        elif opt == b"ALPHA":
            alpha = True
        elif opt == b"LIMIT" and left >= 2:
            limit_start = parse_long(args[j + 1])
            limit_count = parse_long(args[j + 2])
            j += 2
        elif not readonly and opt == b"STORE" and left >= 1:
            store_key = args[j + 1]
            j += 1
        elif opt == b"BY" and left >= 1:
            sortby = args[j + 1]
            if b"*" not in sortby:
                dontsort = True
            j += 1
        elif opt == b"GET" and left >= 1:
            gets.append(args[j + 1])
            j += 1
        else:
            raise CommandError(messages.SYNTAX)
        j += 1

    value = ctx.db.get(args[1], ctx.now_ms, ctx.is_replica_read)
    if value is not None and not isinstance(value, (ListValue, SetValue, ZSetValue)):
        raise CommandError(messages.WRONGTYPE)
    if value is None:
        value = ListValue()
    if isinstance(value, ZSetValue) and not readonly:
        # "Destructively convert encoded sorted sets for SORT": a listpack zset becomes a skiplist for good.
        # SORT_RO does it too in Redis, but a read is not logged, so memdb's SORT_RO leaves the encoding alone.
        value.listpack = False
    if dontsort and isinstance(value, SetValue) and store_key is not None:
        dontsort, alpha, sortby = False, True, None     # Redis forces a deterministic order for a stored set

    length = len(value)
    start = max(limit_start, 0)
    end = length - 1 if limit_count < 0 else start + limit_count - 1
    if start >= length:
        start, end = length - 1, length - 2
    if end >= length:
        end = length - 1

    if dontsort and isinstance(value, (ListValue, ZSetValue)):
        # native order (reversed for DESC), only the LIMIT range
        elements = [member for member, _ in value.items()] if isinstance(value, ZSetValue) else list(value)
        if desc:
            elements.reverse()
        chosen = elements[start:end + 1] if end >= start else []
    else:
        if isinstance(value, ZSetValue):
            elements = [member for member, _ in value.items()]
        else:
            elements = list(value)
        if not dontsort:
            elements = _sorted(ctx, elements, sortby, alpha, desc, start, end)
        chosen = elements[start:end + 1] if end >= start else []

    if store_key is None:
        if not gets:
            return chosen
        return [lookup_by_pattern(ctx, pattern, element) for element in chosen for pattern in gets]
    if gets:
        stored = [lookup_by_pattern(ctx, pattern, element) or b"" for element in chosen for pattern in gets]
    else:
        stored = chosen
    return store_or_delete(ctx, store_key, ListValue(stored), notify.LIST, "sortstore")


def _sorted(ctx: Context, elements: list[bytes], sortby: bytes | None, alpha: bool, desc: bool,
            start: int, end: int) -> list[bytes]:
    """The elements in sortCompare's order; only positions start..end are guaranteed when a BY + ALPHA sort has
    ties (see _pqsort)."""
    if alpha:
        if sortby is None:
            keyed = [(element, element) for element in elements]
        else:
            keyed = [(element, lookup_by_pattern(ctx, sortby, element)) for element in elements]

            def compare_alpha(a: tuple[bytes, bytes | None], b: tuple[bytes, bytes | None]) -> int:
                if a[1] is None or b[1] is None:
                    cmp = 0 if a[1] is b[1] else (-1 if a[1] is None else 1)
                else:
                    cmp = (a[1] > b[1]) - (a[1] < b[1])
                return -cmp if desc else cmp
            if start != 0 or end != len(keyed) - 1:
                # Redis sorts a LIMIT window with its own pqsort, which is not stable: reproduce it exactly
                _pqsort(keyed, compare_alpha, start, end)
            else:
                # glibc's qsort (a merge sort) is stable, as is Python's
                keyed.sort(key=functools.cmp_to_key(compare_alpha))
            return [element for element, _ in keyed]
        keyed.sort(key=lambda pair: pair[1], reverse=desc)   # elements are distinct: no ties
        return [element for element, _ in keyed]

    scored: list[tuple[float, bytes]] = []
    error = False
    for element in elements:
        weight_text = element if sortby is None else lookup_by_pattern(ctx, sortby, element)
        score = 0.0
        if weight_text is not None:
            parsed = _weight(weight_text)
            if parsed is None:
                error = True
            else:
                score = parsed
        scored.append((score, element))
    if error:
        raise CommandError(messages.SORT_NOT_DOUBLE)
    # (score, element) is a total order equal to sortCompare's (ties broken by binary comparison)
    scored.sort(reverse=desc)
    return [element for _, element in scored]


Compare = Callable[[Any, Any], int]


def _pqsort(items: list[Any], cmp: Compare, first: int, last: int) -> None:
    """Redis's pqsort.c: the NetBSD qsort (Bentley & McIlroy) that skips partitions lying wholly outside
    items[first..last], so that only that window ends up in order. It is not stable, and SORT BY ... ALPHA LIMIT
    shows which of equal elements it leaves in the window, so the pivot choice, the fat partition and the
    insertion sort of short partitions are kept step for step (7.0's version: no "swap_cnt == 0" switch to
    insertion sort, which other Redis versions have). Redis recurses on the left part and loops on the right;
    partitions are disjoint, so an explicit stack processes them in any order with the same result."""
    def outside(lo: int, n: int) -> bool:
        return (first < lo and last < lo) or (first > lo + n - 1 and last > lo + n - 1)

    stack = [(0, len(items))]
    while stack:
        lo, n = stack.pop()
        if n < 7:
            _insertion_sort(items, cmp, lo, n)
            continue
        pm = lo + n // 2
        if n > 7:
            pl, pn = lo, lo + n - 1
            if n > 40:
                d = n // 8
                pl = _med3(items, cmp, pl, pl + d, pl + 2 * d)
                pm = _med3(items, cmp, pm - d, pm, pm + d)
                pn = _med3(items, cmp, pn - 2 * d, pn - d, pn)
            pm = _med3(items, cmp, pl, pm, pn)
        items[lo], items[pm] = items[pm], items[lo]
        pivot = items[lo]
        pa = pb = lo + 1
        pc = pd = lo + n - 1
        while True:
            while pb <= pc and (result := cmp(items[pb], pivot)) <= 0:
                if result == 0:        # equal to the pivot: parked at the left end
                    items[pa], items[pb] = items[pb], items[pa]
                    pa += 1
                pb += 1
            while pb <= pc and (result := cmp(items[pc], pivot)) >= 0:
                if result == 0:        # equal to the pivot: parked at the right end
                    items[pc], items[pd] = items[pd], items[pc]
                    pd -= 1
                pc -= 1
            if pb > pc:
                break
            items[pb], items[pc] = items[pc], items[pb]
            pb += 1
            pc -= 1
        pn = lo + n
        r = min(pa - lo, pb - pa)
        _vecswap(items, lo, pb - r, r)
        r = min(pd - pc, pn - pd - 1)
        _vecswap(items, pb, pn - r, r)
        if (r := pb - pa) > 1 and not outside(lo, r):
            stack.append((lo, r))
        if (r := pd - pc) > 1 and not outside(pn - r, r):
            stack.append((pn - r, r))


def _insertion_sort(items: list[Any], cmp: Compare, lo: int, n: int) -> None:
    for pm in range(lo + 1, lo + n):
        pl = pm
        while pl > lo and cmp(items[pl - 1], items[pl]) > 0:
            items[pl], items[pl - 1] = items[pl - 1], items[pl]
            pl -= 1


def _med3(items: list[Any], cmp: Compare, a: int, b: int, c: int) -> int:
    if cmp(items[a], items[b]) < 0:
        return b if cmp(items[b], items[c]) < 0 else (c if cmp(items[a], items[c]) < 0 else a)
    return b if cmp(items[b], items[c]) > 0 else (a if cmp(items[a], items[c]) < 0 else c)


def _vecswap(items: list[Any], a: int, b: int, n: int) -> None:
    for i in range(n):                 # one by one, as swapfunc does (the ranges may overlap)
        items[a + i], items[b + i] = items[b + i], items[a + i]


def sort(ctx: Context, args: list[bytes]) -> Any:
    return _sort_generic(ctx, args, readonly=False)


def sort_ro(ctx: Context, args: list[bytes]) -> Any:
    return _sort_generic(ctx, args, readonly=True)


def _sort_keys(args: list[bytes]) -> list[int]:
    """sortGetKeys: the sorted key and the key after the last STORE (LIMIT/GET/BY arguments skipped)."""
    keys = [1]
    store = None
    i = 2
    while i < len(args):
        opt = args[i].upper()
        if opt == b"LIMIT":
            i += 2
        elif opt in (b"GET", b"BY"):
            i += 1
        elif opt == b"STORE" and i + 1 < len(args):
            store = i + 1
        i += 1
    if store is not None:
        keys.append(store)
    return keys


COMMANDS = [
    command("sort", -2, "write denyoom movablekeys", 1, 1, 1, sort, "@write @set @sortedset @list @slow @dangerous",
            key_finder=_sort_keys),
    command("sort_ro", -2, "readonly movablekeys", 1, 1, 1, sort_ro, "@read @set @sortedset @list @slow @dangerous"),
]
