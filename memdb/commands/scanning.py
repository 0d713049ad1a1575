"""Glob matching (KEYS, SCAN/HSCAN/SSCAN/ZSCAN MATCH) and deterministic SCAN cursors, shared by every module.

glob_match is a line-by-line port of Redis's util.c stringmatchlen (case-sensitive): '*', '?', '[abc]',
'[^a-c]' (also '[a-]', reversed ranges '[z-a]', an unclosed '[' matching to the end), and '\\' escapes, with
C's signed char comparisons for range bounds, and the skipLongerMatches cut that keeps '*a*a*a*b' patterns linear.

Cursors
-------
Redis's cursor is a reverse-binary bucket index: stable while the table grows or shrinks, so an element present
for the whole iteration is returned at least once. memdb needs the same guarantee *and* determinism across
processes, so a cursor is a position in a fixed total order: each element's 64-bit BLAKE2b hash (independent of
PYTHONHASHSEED and of insertion order). A page returns the `count` smallest hashes >= cursor (elements sharing a
hash are never split across pages) and the next cursor is last hash + 1; 0 means done. Inserting or deleting
other elements never moves an element in that order, so nothing present throughout is skipped.
Cost: each page is O(n log count) over the collection (no per-key index is kept).
"""
from __future__ import annotations

import hashlib
import heapq
import re
from typing import Iterable, Sequence

from memdb.commands import messages
from memdb.commands.args import parse_int
from memdb.commands.spec import CommandError

ULONG_MAX = (1 << 64) - 1
DEFAULT_SCAN_COUNT = 10


def _signed(c: int) -> int:
    return c - 256 if c >= 128 else c


def glob_match(pattern: bytes, string: bytes) -> bool:
    """Redis stringmatchlen(pattern, string, nocase=0)."""
    if pattern == b"*":
        return True
    try:
        return _match(pattern, 0, string, 0, [False])
    except RecursionError:   # thousands of nested '*': Redis 7.0 would recurse as deep; treat as no match
        return False


def _match(p: bytes, pi: int, s: bytes, si: int, skip_longer: list[bool]) -> bool:
    plen, slen = len(p), len(s)

    def pat(i: int) -> int:   # C reads the NUL terminator past the end
        return p[i] if i < plen else 0

    while pi < plen and si < slen:
        c = p[pi]
        if c == 0x2A:  # '*'
            while pi + 1 < plen and p[pi + 1] == 0x2A:
                pi += 1
            if pi + 1 == plen:
                return True
            while si < slen:
                if _match(p, pi + 1, s, si, skip_longer):
                    return True
                if skip_longer[0]:
                    return False
                si += 1
            skip_longer[0] = True
            return False
        elif c == 0x3F:  # '?'
            si += 1
        elif c == 0x5B:  # '['
            pi += 1
            negate = pat(pi) == 0x5E
            if negate:
                pi += 1
            matched = False
            while True:
                if pat(pi) == 0x5C and plen - pi >= 2:
                    pi += 1
                    if p[pi] == s[si]:
                        matched = True
                elif pat(pi) == 0x5D:
                    break
                elif pi >= plen:
                    pi -= 1
                    break
                elif plen - pi >= 3 and p[pi + 1] == 0x2D:
                    start, end = _signed(p[pi]), _signed(p[pi + 2])
                    if start > end:
                        start, end = end, start
                    pi += 2
                    if start <= _signed(s[si]) <= end:
                        matched = True
                else:
                    if p[pi] == s[si]:
                        matched = True
                pi += 1
            if negate:
                matched = not matched
            if not matched:
                return False
            si += 1
        else:
            if c == 0x5C and plen - pi >= 2:  # '\\' escapes the next byte
                pi += 1
            if p[pi] != s[si]:
                return False
            si += 1
        pi += 1
        if si == slen:
            while pat(pi) == 0x2A:
                pi += 1
            break
    return pi >= plen and si == slen


# -- cursors --------------------------------------------------------------------------------------------------------
_CURSOR_RE = re.compile(rb"([+-]?)([0-9]+)\Z")


def parse_cursor(arg: bytes) -> int:
    """parseScanCursorOrReply: C strtoul over the whole argument ("" is 0, "-1" wraps to ULONG_MAX)."""
    if arg == b"":
        return 0
    m = _CURSOR_RE.match(arg)
    if not m:
        raise CommandError(messages.INVALID_CURSOR)
    value = int(m.group(2))
    if value > ULONG_MAX:
        raise CommandError(messages.INVALID_CURSOR)
    return (-value) & ULONG_MAX if m.group(1) == b"-" else value


def element_hash(element: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(element, digest_size=8).digest(), "big")


def scan_page(elements: Iterable[bytes], cursor: int, count: int) -> tuple[int, list[bytes]]:
    """The next page: up to `count` elements (more if hashes tie) whose hash >= cursor, in hash order."""
    candidates = [(h, e) for e in elements if (h := element_hash(e)) >= cursor]
    if len(candidates) <= count:
        candidates.sort()
        return 0, [e for _, e in candidates]
    page = heapq.nsmallest(count, candidates)
    last = page[-1][0]
    # never split equal hashes across pages: take every remaining element with the last hash too
    page.extend(sorted(c for c in candidates if c[0] == last and c not in page))
    next_cursor = last + 1
    return (0 if next_cursor > ULONG_MAX else next_cursor), [e for _, e in page]


def parse_scan_options(args: Sequence[bytes], start: int, allow_type: bool) -> tuple[int, bytes | None, bytes | None]:
    """COUNT n / MATCH pattern / TYPE name (SCAN only), in any order, repeated (last wins), as Redis parses them.
    Returns (count, pattern or None for no filtering, type name or None)."""
    count, pattern, type_name = DEFAULT_SCAN_COUNT, None, None
    i = start
    while i < len(args):
        remaining = len(args) - i
        opt = args[i].lower()
        if opt == b"count" and remaining >= 2:
            count = parse_int(args[i + 1])
            if count < 1:
                raise CommandError(messages.SYNTAX)
            i += 2
        elif opt == b"match" and remaining >= 2:
            pattern = None if args[i + 1] == b"*" else args[i + 1]
            i += 2
        elif opt == b"type" and allow_type and remaining >= 2:
            type_name = args[i + 1]
            i += 2
        else:
            raise CommandError(messages.SYNTAX)
    return count, pattern, type_name
