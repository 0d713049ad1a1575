"""The sorted-set value (Redis type "zset"): member -> score, ordered by (score, member bytes).

Redis keeps small sorted sets in a listpack and converts them, once and for good, to a skiplist+dict when they
get an entry over `zset-max-listpack-entries` (128) or a member longer than `zset-max-listpack-value` (64 bytes).
memdb always uses the same structure (a dict for scores and a SortedList for order), but records which encoding
Redis would have: OBJECT ENCODING reports it, and two observable quirks depend on it:
  - a listpack stores scores as text through d2string(), which writes -0.0 as "0", so -0 reads back as 0;
  - lex ranges on a listpack are found by a linear scan, on a skiplist by a descent that assumes members are
    sorted (they are only when all scores are equal; otherwise Redis's answer is "undefined" but deterministic).
"""
from __future__ import annotations

from typing import Iterator

from sortedcontainers import SortedList

from memdb.keyspace import register_type

ZSET_MAX_LISTPACK_ENTRIES = 128
ZSET_MAX_LISTPACK_VALUE = 64


class _Above:
    """Compares greater than any bytes: (score, ABOVE) sorts after every (score, member)."""
    __slots__ = ()

    def __lt__(self, other: object) -> bool:
        return False

    def __gt__(self, other: object) -> bool:
        return True

    def __eq__(self, other: object) -> bool:
        return other is self

    def __hash__(self) -> int:
        return 0


ABOVE = _Above()


class ZSetValue:
    __slots__ = ("scores", "order", "listpack")
    redis_type = "zset"

    def __init__(self, size_hint: int = 0, member_len_hint: int = 0):
        """Like Redis's zsetTypeCreate(size_hint, val_len_hint): start as a skiplist if the hints already
        exceed the listpack limits (ZADD with 200 pairs creates a skiplist even if members repeat)."""
        self.scores: dict[bytes, float] = {}
        self.order: SortedList = SortedList()
        self.listpack = size_hint <= ZSET_MAX_LISTPACK_ENTRIES and member_len_hint <= ZSET_MAX_LISTPACK_VALUE

    def __len__(self) -> int:
        return len(self.scores)

    def __contains__(self, member: bytes) -> bool:
        return member in self.scores

    def __repr__(self) -> str:
        return f"ZSetValue({list(self.items())!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ZSetValue) and self.scores == other.scores

    __hash__ = None  # type: ignore[assignment]

    def copy(self) -> "ZSetValue":
        new = ZSetValue.__new__(ZSetValue)
        new.scores = dict(self.scores)
        new.order = SortedList(self.order)
        new.listpack = self.listpack
        return new

    # -- reads ----------------------------------------------------------------------------------------------
    def score(self, member: bytes) -> float | None:
        return self.scores.get(member)

    def items(self) -> Iterator[tuple[bytes, float]]:
        """(member, score) in ascending order."""
        for score, member in self.order:
            yield member, score

    def at(self, index: int) -> tuple[bytes, float]:
        score, member = self.order[index]
        return member, score

    def rank(self, member: bytes) -> int | None:
        score = self.scores.get(member)
        if score is None:
            return None
        return self.order.index((score, member))

    def slice(self, start: int, stop: int, reverse: bool = False) -> list[tuple[bytes, float]]:
        """Entries with ascending index start..stop-1 (0 <= start <= stop <= len), reversed if asked."""
        return [(m, s) for s, m in self.order.islice(start, stop, reverse=reverse)]

    def score_bounds(self, lo: float, lo_ex: bool, hi: float, hi_ex: bool) -> tuple[int, int]:
        """[first, end) indexes of the entries whose score is within the range."""
        first = self.order.bisect_right((lo, ABOVE)) if lo_ex else self.order.bisect_left((lo, b""))
        end = self.order.bisect_left((hi, b"")) if hi_ex else self.order.bisect_right((hi, ABOVE))
        return first, max(first, end)

    # -- writes ---------------------------------------------------------------------------------------------
    def insert(self, member: bytes, score: float) -> None:
        """Add a member that is not in the set (converting to a skiplist first if Redis would)."""
        if self.listpack and (len(self.scores) + 1 > ZSET_MAX_LISTPACK_ENTRIES
                              or len(member) > ZSET_MAX_LISTPACK_VALUE):
            self.listpack = False
        if self.listpack and score == 0.0:
            score = 0.0  # d2string writes -0.0 as "0"
        self.scores[member] = score
        self.order.add((score, member))

    def update(self, member: bytes, score: float) -> None:
        """Change the score of a member that is in the set."""
        old = self.scores[member]
        self.order.remove((old, member))
        if self.listpack and score == 0.0:
            score = 0.0
        self.scores[member] = score
        self.order.add((score, member))

    def set(self, member: bytes, score: float) -> None:
        if member in self.scores:
            self.update(member, score)
        else:
            self.insert(member, score)

    def remove(self, member: bytes) -> bool:
        score = self.scores.pop(member, None)
        if score is None:
            return False
        self.order.remove((score, member))
        return True

    def remove_slice(self, start: int, stop: int) -> int:
        """Remove the entries with index start..stop-1; returns how many."""
        doomed = list(self.order.islice(start, stop))
        for score, member in doomed:
            del self.scores[member]
        del self.order[start:stop]
        return len(doomed)

    def pop_at(self, index: int) -> tuple[bytes, float]:
        score, member = self.order.pop(index)
        del self.scores[member]
        return member, score

    def convert_if_needed(self, max_member_len: int) -> None:
        """Redis's zsetConvertToListpackIfNeeded (used by ZRANGESTORE/Z*STORE results): a freshly built result
        is a listpack if it fits."""
        was_listpack = self.listpack
        self.listpack = len(self.scores) <= ZSET_MAX_LISTPACK_ENTRIES and max_member_len <= ZSET_MAX_LISTPACK_VALUE
        if self.listpack and not was_listpack:
            for member, score in list(self.scores.items()):
                if score == 0.0 and str(score) == "-0.0":
                    self.update(member, 0.0)


register_type(ZSetValue, "zset")
