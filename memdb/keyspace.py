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
blocked clients (BLPOP...). `events` collects keyspace notifications (memdb/notify.py): the handlers' own, plus
`new` when `set` adds a key and `expired` when applying a write deletes an expired key.

Versions (for WATCH): every change stamps the key with `Keyspace.current_index`, the log index of the entry being
applied, so a key's version is the same number on every node. Only the last MAX_RECENT_CHANGES changed keys (live
or deleted) keep their own stamp, in a FIFO (a per-key stamp on every key cost ~40 bytes per key). A stamp pushed
out of the FIFO raises the floor of the key's bucket (one of VERSION_BUCKETS, chosen by CRC-32 of the key, which,
unlike hash(), is the same in every process), and `version()` of a key not in the FIFO answers its bucket's floor.
That floor is >= the key's own last stamp, so a change after WATCH always changes the answer: forgetting can only
make a WATCH abort more often (when another key of the bucket is forgotten meanwhile), never miss a change. A key
changed often stays in the FIFO, so a hot key never spoils the WATCHes on the cold keys that share its bucket.
"""
from __future__ import annotations

import array
import collections
import zlib
from typing import Any, Iterator

from memdb import notify

NUM_DATABASES = 16
MAX_RECENT_CHANGES = 16384      # keys whose own WATCH version is remembered, per database (~120 bytes each)
VERSION_BUCKETS = 65536         # floors for the others (a power of two; 512 KiB, allocated on first use)
SHARED_FIELDS_MAX = 16384       # hash field names shared between hashes; the table is emptied when full
SHARED_FIELD_LEN_MAX = 64

# Hash field name -> the one bytes object every hash uses for it. Hashes of one shape (user:1, user:2...) repeat
# their field names, and a bytes object costs ~40 bytes. Object identity is invisible to every handler (they
# compare by value), so this process-local table changes no reply and no replicated state.
_shared_fields: dict[bytes, bytes] = {}


class HashValue(dict):
    __slots__ = ()
    redis_type = "hash"

    def __setitem__(self, field: bytes, value: Any) -> None:
        if len(field) <= SHARED_FIELD_LEN_MAX:
            shared = _shared_fields.get(field)
            if shared is None:
                if len(_shared_fields) >= SHARED_FIELDS_MAX:
                    _shared_fields.clear()     # bounded; names still in use are shared again from here on
                shared = _shared_fields[field] = field
            field = shared
        dict.__setitem__(self, field, value)


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
    __slots__ = ("index", "data", "expires", "_keyspace", "recent_changes", "version_floors")

    def __init__(self, index: int, keyspace: "Keyspace"):
        self.index = index
        self.data: dict[bytes, Any] = {}
        self.expires: dict[bytes, int] = {}
        self._keyspace = keyspace
        # WATCH versions (see the module docstring): the last changed keys, oldest first -> log index of the change
        self.recent_changes: collections.OrderedDict[bytes, int] = collections.OrderedDict()
        self.version_floors: array.array | None = None          # bucket -> newest stamp forgotten from it

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
                self._keyspace.notify(self.index, notify.EXPIRED, "expired", key)
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
        if self._keyspace.notify_classes & notify.NEW and key not in self.data:
            self._keyspace.notify(self.index, notify.NEW, "new", key)     # Redis's dbAdd
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
        recent = self.recent_changes
        recent[key] = keyspace.current_index
        recent.move_to_end(key)
        if len(recent) > MAX_RECENT_CHANGES:
            forgotten_key, forgotten = recent.popitem(last=False)
            floors = self.version_floors
            if floors is None:
                floors = self.version_floors = array.array("q", bytes(8 * VERSION_BUCKETS))
            bucket = zlib.crc32(forgotten_key) & (VERSION_BUCKETS - 1)
            if forgotten > floors[bucket]:
                floors[bucket] = forgotten

    def version(self, key: bytes) -> int:
        """The log index of the key's last change, or a later one (0 = never changed, as far as can be known)."""
        stamp = self.recent_changes.get(key)
        if stamp is None:
            floors = self.version_floors
            stamp = 0 if floors is None else floors[zlib.crc32(key) & (VERSION_BUCKETS - 1)]
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
        # Keyspace notifications (memdb/notify.py): `notify_flags` is notify-keyspace-events, replicated state
        # changed only by a logged CONFIG SET; `events` are those of the entry being applied (the node publishes
        # them after each entry).
        self.notify_flags = 0
        self.notify_classes = 0       # the event classes to record: none unless K or E is set
        self.events: list[tuple[int, str, bytes]] = []
        # OBJECT IDLETIME/FREQ's access clock (memdb/access.py): node-local, not replicated; None = not tracking.
        self.access: Any = None

    # -- snapshots (memdb/snapshot.py) ------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        """The replicated state only: not this node's access clock, nor an entry's pending changes and events."""
        return {**self.__dict__, "modified": [], "events": [], "access": None}

    def take_over(self, other: "Keyspace") -> None:
        """Become `other` (a snapshot's keyspace) in place: the server keeps a reference to this object, and the
        access clock stays this node's."""
        access = self.access
        self.__dict__.update(other.__dict__)
        self.access = access
        for db in self.dbs:
            db._keyspace = self

    def set_notify_flags(self, flags: int) -> None:
        self.notify_flags = flags
        self.notify_classes = flags if flags & notify.CHANNELS else 0

    def notify(self, db_index: int, event_class: int, event: str, key: bytes) -> None:
        """Record a keyspace event if its class is enabled (Redis's notifyKeyspaceEvent)."""
        if self.notify_classes & event_class:
            self.events.append((db_index, event, key))

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
