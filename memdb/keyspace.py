"""The in-memory database: 16 numbered databases of keys -> typed values, with an expiry index.

Theory of operation
-------------------
Every node builds its keyspace by applying the same committed log, so everything here must be deterministic:
no local clock (callers pass `now_ms`, from the log entry when applying a write), no module `random`, no
iteration over Python `set`s or over dicts whose insertion order could differ between nodes.

Values are plain Python objects whose class names the Redis type:
  string -> bytes          hash -> HashValue (dict)      list -> ListValue (deque)
  set    -> SetValue (dict of member -> None: insertion-ordered, so SPOP/SRANDMEMBER can pick by index
            deterministically, unlike a Python set whose order depends on per-process hash randomisation)
  zset   -> memdb.commands.zset_type.ZSetValue (registered by its module via `register_type`)

Expiry: `expires` maps key -> absolute unix ms. A key is *logically* expired when now_ms > its deadline (as
Redis's keyIsExpired: `now > when`).
  - Applying a write (primary and replicas alike, with the entry's now_ms) deletes expired keys it touches, so
    every node deletes the same keys at the same log position.
  - Reads on the primary treat expired keys as missing (and the node appends a delete to the log).
  - Reads on a replica (`replica_read=True`) hide expired keys but never delete them, as Redis replicas do.
`modified` collects (db_index, key) for every change since the caller last drained it: the node uses it to wake
blocked clients (BLPOP...).

Versions (for WATCH): every change stamps the key with `Keyspace.current_index`, the log index of the entry being
applied, so a key's version is the same number on every node. Deleted keys keep their stamp in a bounded FIFO of
tombstones; once a tombstone is forgotten, `version()` of an absent key answers the newest forgotten stamp, which
can only make a WATCH abort more often (safe), never miss a change.
"""
from __future__ import annotations

import collections
from typing import Any, Iterator

NUM_DATABASES = 16
MAX_TOMBSTONES = 65536


class HashValue(dict):
    __slots__ = ()
    redis_type = "hash"


class SetValue(dict):
    """An insertion-ordered set: members are the keys, values are None."""
    __slots__ = ()
    redis_type = "set"


class ListValue(collections.deque):
    __slots__ = ()
    redis_type = "list"


_TYPE_NAMES: dict[type, str] = {bytes: "string", HashValue: "hash", SetValue: "set", ListValue: "list"}


def register_type(cls: type, name: str) -> None:
    """Data-type modules that define their own value class (zset, stream...) name it here."""
    _TYPE_NAMES[cls] = name


def type_name(value: Any) -> str:
    return _TYPE_NAMES[type(value)]


class Database:
    __slots__ = ("index", "data", "expires", "_keyspace", "versions", "tombstones", "tombstone_floor")

    def __init__(self, index: int, keyspace: "Keyspace"):
        self.index = index
        self.data: dict[bytes, Any] = {}
        self.expires: dict[bytes, int] = {}
        self._keyspace = keyspace
        self.versions: dict[bytes, int] = {}                    # live key -> log index of its last change
        self.tombstones: collections.OrderedDict[bytes, int] = collections.OrderedDict()
        self.tombstone_floor = 0                                # newest stamp among forgotten tombstones

    # -- lookups --------------------------------------------------------------------------------------------
    def is_expired(self, key: bytes, now_ms: int) -> bool:
        deadline = self.expires.get(key)
        return deadline is not None and now_ms > deadline

    def get(self, key: bytes, now_ms: int, replica_read: bool = False) -> Any | None:
        """The live value of key, or None. Expired keys are deleted (or only hidden, on a replica)."""
        value = self.data.get(key)
        if value is None:
            return None
        if key in self.expires and now_ms > self.expires[key]:
            if not replica_read:
                self.delete(key)
            return None
        return value

    def contains(self, key: bytes, now_ms: int, replica_read: bool = False) -> bool:
        return self.get(key, now_ms, replica_read) is not None

    def ttl_ms(self, key: bytes) -> int | None:
        """Absolute expiry deadline in unix ms, or None if the key has no expiry."""
        return self.expires.get(key)

    def live_keys(self, now_ms: int) -> Iterator[bytes]:
        """Keys that are not logically expired, in insertion order (does not delete anything)."""
        expires = self.expires
        for key in self.data:
            deadline = expires.get(key)
            if deadline is None or now_ms <= deadline:
                yield key

    def size(self) -> int:
        return len(self.data)

    # -- mutations ------------------------------------------------------------------------------------------
    def set(self, key: bytes, value: Any, keep_ttl: bool = False) -> None:
        """Store value under key; an existing expiry is dropped unless keep_ttl (SET's KEEPTTL)."""
        self.data[key] = value
        if not keep_ttl:
            self.expires.pop(key, None)
        self.signal_modified(key)

    def delete(self, key: bytes) -> bool:
        if key not in self.data:
            return False
        del self.data[key]
        self.expires.pop(key, None)
        self.signal_modified(key)
        return True

    def set_expiry(self, key: bytes, deadline_ms: int | None) -> None:
        if deadline_ms is None:
            self.expires.pop(key, None)
        else:
            self.expires[key] = deadline_ms
        self.signal_modified(key)

    def signal_modified(self, key: bytes) -> None:
        """Call after mutating a value in place (LPUSH on an existing list...)."""
        keyspace = self._keyspace
        keyspace.modified.append((self.index, key))
        stamp = keyspace.current_index
        if key in self.data:
            self.versions[key] = stamp
            self.tombstones.pop(key, None)
        else:
            self.versions.pop(key, None)
            self.tombstones[key] = stamp
            self.tombstones.move_to_end(key)
            if len(self.tombstones) > MAX_TOMBSTONES:
                _, forgotten = self.tombstones.popitem(last=False)
                self.tombstone_floor = max(self.tombstone_floor, forgotten)

    def version(self, key: bytes) -> int:
        """The log index of the key's last change (0 = never changed, as far as can be known)."""
        stamp = self.versions.get(key)
        if stamp is None:
            stamp = self.tombstones.get(key, self.tombstone_floor)
        return stamp

    def flush(self) -> None:
        keys = list(self.data)
        self.data.clear()
        self.expires.clear()
        for key in keys:
            self.signal_modified(key)

    def expired_keys(self, now_ms: int, limit: int) -> list[bytes]:
        """Up to `limit` keys whose deadline has passed (for active expiry on the primary)."""
        found = []
        for key, deadline in self.expires.items():
            if now_ms > deadline:
                found.append(key)
                if len(found) >= limit:
                    break
        return found


class Keyspace:
    def __init__(self, num_databases: int = NUM_DATABASES):
        self.modified: list[tuple[int, bytes]] = []
        self.current_index = 0        # log index of the entry being applied (the node sets it)
        self.dbs = [Database(i, self) for i in range(num_databases)]
        # EVAL's script cache and FUNCTION libraries (memdb.commands.scripting.ScriptingState, created on first
        # use): replicated state, changed only by logged commands, so EVALSHA/FCALL work after a failover.
        self.scripting: Any = None

    def drain_modified(self) -> list[tuple[int, bytes]]:
        changed, self.modified = self.modified, []
        return changed

    def swap(self, a: int, b: int) -> None:
        """SWAPDB: exchange the contents of two databases."""
        da, db_ = self.dbs[a], self.dbs[b]
        touched = set(da.data) | set(db_.data)
        da.data, db_.data = db_.data, da.data
        da.expires, db_.expires = db_.expires, da.expires
        for d in (da, db_):
            for key in sorted(touched):     # sorted: the stamping order must not depend on hash order
                d.signal_modified(key)
