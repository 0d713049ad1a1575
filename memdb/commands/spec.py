"""The shape every command has: its table row (CommandSpec), what a handler sees (Context), what it returns.

A handler is a pure function `handler(ctx, args) -> reply` of the keyspace, the entry's `now_ms` and its seeded
random source. It never sees sockets, never reads the local clock, never calls module `random`, and never lets a
choice depend on set/dict hash order: every node replays the same log and must reach the same keyspace.

Replies are plain Python values, encoded to RESP2/RESP3 only at the protocol edge (memdb/protocol):
  bytes -> bulk string      int -> integer        None -> null (RESP2 nil bulk)
  list/tuple -> array       SimpleString -> +OK   CommandError (raised) -> -ERR ...
  Double -> RESP3 double, RESP2 bulk string       Map -> RESP3 map, RESP2 flat array
  SetReply -> RESP3 set, RESP2 array              Bool -> RESP3 boolean, RESP2 integer 0/1
  NullArray -> RESP2 *-1 (RESP3 null)             Verbatim -> RESP3 verbatim, RESP2 bulk
  Push -> RESP3 push '>', RESP2 array
"""
from __future__ import annotations

import dataclasses
import enum
import random
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from memdb.keyspace import Database, Keyspace


class Flag(enum.StrEnum):
    """Redis's command flags (COMMAND INFO), the ones memdb uses."""
    WRITE = "write"
    READONLY = "readonly"
    DENYOOM = "denyoom"
    ADMIN = "admin"
    PUBSUB = "pubsub"
    NOSCRIPT = "noscript"
    BLOCKING = "blocking"
    LOADING = "loading"
    STALE = "stale"
    SKIP_MONITOR = "skip_monitor"
    SKIP_SLOWLOG = "skip_slowlog"
    ASKING = "asking"
    FAST = "fast"
    NO_AUTH = "no_auth"
    MAY_REPLICATE = "may_replicate"
    NO_MULTI = "no_multi"
    MOVABLEKEYS = "movablekeys"
    ALLOW_BUSY = "allow_busy"
    NO_MANDATORY_KEYS = "no_mandatory_keys"   # EVAL/FCALL: numkeys may be 0
    # memdb-only: the command is answered by the connection/server layer, never logged
    CONNECTION = "connection"


@dataclasses.dataclass(frozen=True, slots=True)
class CommandSpec:
    """One row of the command table. `arity` follows Redis: N = exactly N args (name included), -N = at least N."""
    name: str                         # lower case, e.g. "set"; subcommands are "config|get"
    arity: int
    flags: frozenset[Flag]
    first_key: int = 0                # position of the first key (0 = no keys)
    last_key: int = 0                 # position of the last key; -1 = last argument, -2 = second to last ...
    key_step: int = 0
    handler: Callable[["Context", list[bytes]], Any] | None = None
    acl_categories: tuple[str, ...] = ()
    subcommands: tuple["CommandSpec", ...] = ()
    # For commands whose keys can't be found by first/last/step (ZUNION numkeys, EVAL, XREAD...):
    key_finder: Callable[[list[bytes]], list[int]] | None = None

    @property
    def is_write(self) -> bool:
        return Flag.WRITE in self.flags

    def arity_ok(self, argc: int) -> bool:
        return argc == self.arity if self.arity >= 0 else argc >= -self.arity

    def key_positions(self, args: list[bytes]) -> list[int]:
        """Indexes into args (args[0] is the command name) that are keys."""
        if self.key_finder is not None:
            return self.key_finder(args)
        if self.first_key == 0:
            return []
        last = self.last_key if self.last_key >= 0 else len(args) + self.last_key
        return list(range(self.first_key, last + 1, self.key_step or 1))


class CommandError(Exception):
    """An error reply. `message` is the full text after the '-' (e.g. 'ERR syntax error', 'WRONGTYPE ...')."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclasses.dataclass(frozen=True, slots=True)
class SimpleString:
    value: str


OK = SimpleString("OK")
QUEUED = SimpleString("QUEUED")
PONG = SimpleString("PONG")


@dataclasses.dataclass(frozen=True, slots=True)
class Double:
    """A floating point reply: RESP3 ',' double; RESP2 bulk string formatted as Redis does."""
    value: float


@dataclasses.dataclass(frozen=True, slots=True)
class Map:
    """RESP3 map (RESP2: flat array k1 v1 k2 v2 ...). Items are (key, value) pairs in reply order."""
    items: list[tuple[Any, Any]]


@dataclasses.dataclass(frozen=True, slots=True)
class SetReply:
    """RESP3 set (RESP2: array)."""
    items: list[Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Bool:
    """RESP3 boolean (RESP2: integer 1/0)."""
    value: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Verbatim:
    """RESP3 verbatim string (RESP2: bulk string), e.g. INFO, CLIENT LIST."""
    value: bytes
    format: str = "txt"


@dataclasses.dataclass(frozen=True, slots=True)
class Push:
    """RESP3 push (out-of-band data: pub/sub messages); RESP2: array."""
    items: list[Any]


@dataclasses.dataclass(frozen=True, slots=True)
class NullArray:
    """RESP2 null array '*-1' (BLPOP timeout, EXEC abort); RESP3 null."""


NULL_ARRAY = NullArray()


class LazyRandom:
    """A random.Random seeded from a log entry's seed on first use. Most commands never draw a number, and
    seeding the Mersenne Twister costs several µs per applied entry on every node."""
    __slots__ = ("seed_value", "real")

    def __init__(self, seed: int):
        self.seed_value = seed
        self.real: random.Random | None = None

    def __getattr__(self, name: str):     # only reached for random.Random's methods (random, choice, ...)
        real = self.real
        if real is None:
            real = self.real = random.Random(self.seed_value)
        return getattr(real, name)


@dataclasses.dataclass(slots=True)
class Context:
    """What a handler sees. For writes applied from the log, now_ms and rng come from the log entry, so every
    node computes the same result; for reads on the primary or a replica, now_ms is that node's clock.

    `db` is the selected database; `keyspace` gives all 16 (SWAPDB, FLUSHALL, MOVE, COPY ... DB n).
    `is_replica_read` makes expired keys invisible without deleting them (replicas never expire keys).
    `resp` is the protocol version of the asking connection (2 or 3) for the few commands whose reply shape
    differs beyond encoding; it is 2 when applying from the log (the reply is only sent by the primary, which
    re-encodes it for its client).
    """
    keyspace: "Keyspace"
    db: "Database"
    now_ms: int
    rng: random.Random
    is_replica_read: bool = False
    resp: int = 2

    def notify(self, event_class: int, event: str, key: bytes, db: "Database | None" = None) -> None:
        """Report a keyspace event (Redis's notifyKeyspaceEvent), e.g. `ctx.notify(notify.LIST, "lpush", key)`;
        `db` when it is not the selected one (MOVE, COPY ... DB). See memdb/notify.py."""
        keyspace = self.keyspace
        if keyspace.notify_classes & event_class:
            keyspace.events.append(((db or self.db).index, event, key))


@dataclasses.dataclass(frozen=True, slots=True)
class Blocked:
    """Returned by a blocking command (BLPOP, BZPOPMIN, XREAD BLOCK...) when nothing is available yet.
    The node parks the client and re-runs the command (as a new log entry) when one of `keys` is modified,
    or replies with `timeout_reply` once `timeout_ms` has passed (None = wait forever).
    `rerun_args`, when set, is what to re-run instead of the original args: XREAD BLOCK ... `$` must wait for
    entries after the last id *at the time of the call*, so it is re-run with `$` replaced by that id."""
    keys: tuple[bytes, ...]
    timeout_ms: int | None
    timeout_reply: Any = NULL_ARRAY
    rerun_args: list[bytes] | None = None
