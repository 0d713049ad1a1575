"""Keyspace notifications (Redis 7.0 notify.c): `notify-keyspace-events`, its flag string, and the channel messages.

Theory of operation
-------------------
A write handler reports what it did with one line, `ctx.notify(LIST, "lpush", key)`, at the point where Redis calls
notifyKeyspaceEvent (after the change, so `lpush` comes before the `del` of a list it emptied). The keyspace keeps
only events of the classes `notify-keyspace-events` enables, in `Keyspace.events`; two more come from the keyspace
itself: `new` when a key is added (Redis's dbAdd) and `expired` when applying a write deletes an expired key.

Events are derived from applied writes, never logged: every node applies the same log, records the same events
at the same log position, and after each applied entry publishes them to its *own* subscribers through the node's
message sink (memdb/node.py), so subscribers on replicas get them too; active expiry's ExpireKeys entry yields
`expired`. For every node to agree on which events exist, `notify-keyspace-events` is replicated state: CONFIG SET
of it is a logged entry (ConfigSet), applied at its log position on every node, and CONFIG GET reads the applied
value. A replica refuses to set it (READONLY), as it refuses any write.

Each event is published as Redis does: to `__keyspace@<db>__:<key>` with the event name (flag K), then to
`__keyevent@<db>__:<event>` with the key name (flag E). Not emitted by memdb: `m` (key misses: a read on one node is
not a logged event), `e` (memdb does not evict) and `d` (no modules); the flags are accepted and reported.
"""
from __future__ import annotations

from typing import Callable, Iterable

# Redis's NOTIFY_* bits (server.h), so that the flag string and its normalisation match bit for bit.
KEYSPACE = 1 << 0      # K
KEYEVENT = 1 << 1      # E
GENERIC = 1 << 2       # g
STRING = 1 << 3        # $
LIST = 1 << 4          # l
SET = 1 << 5           # s
HASH = 1 << 6          # h
ZSET = 1 << 7          # z
EXPIRED = 1 << 8       # x
EVICTED = 1 << 9       # e
STREAM = 1 << 10       # t
KEY_MISS = 1 << 11     # m (not part of A)
MODULE = 1 << 13       # d
NEW = 1 << 14          # n (not part of A)
ALL = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE     # A
CHANNELS = KEYSPACE | KEYEVENT

_CHAR_FLAGS = {"A": ALL, "g": GENERIC, "$": STRING, "l": LIST, "s": SET, "h": HASH, "z": ZSET, "x": EXPIRED,
               "e": EVICTED, "K": KEYSPACE, "E": KEYEVENT, "t": STREAM, "m": KEY_MISS, "d": MODULE, "n": NEW}
# keyspaceEventsFlagsToString's order. Its quirk is kept: with every A class set it writes "A" and drops "n"
# (CONFIG SET ... KEAn reads back as "AKE", although new-key events stay on).
_CLASS_CHARS = (("g", GENERIC), ("$", STRING), ("l", LIST), ("s", SET), ("h", HASH), ("z", ZSET), ("x", EXPIRED),
                ("e", EVICTED), ("t", STREAM), ("d", MODULE), ("n", NEW))
_TAIL_CHARS = (("K", KEYSPACE), ("E", KEYEVENT), ("m", KEY_MISS))

INVALID_FLAGS = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'."


def parse_flags(text: str) -> int | None:
    """keyspaceEventsStringToFlags: the flag bits, or None for a character that is not a flag."""
    flags = 0
    for char in text:
        bit = _CHAR_FLAGS.get(char)
        if bit is None:
            return None
        flags |= bit
    return flags


def format_flags(flags: int) -> str:
    """keyspaceEventsFlagsToString: what CONFIG GET notify-keyspace-events answers."""
    if flags & ALL == ALL:
        out = "A"
    else:
        out = "".join(char for char, bit in _CLASS_CHARS if flags & bit)
    return out + "".join(char for char, bit in _TAIL_CHARS if flags & bit)


def publish(events: Iterable[tuple[int, str, bytes]], flags: int, sink: Callable[[bytes, bytes, bool], int]) -> None:
    """Deliver recorded (db, event, key) events as notifyKeyspaceEvent does: keyspace channel first, then keyevent."""
    for db, event, key in events:
        name = event.encode()
        if flags & KEYSPACE:
            sink(b"__keyspace@%d__:%s" % (db, key), name, False)
        if flags & KEYEVENT:
            sink(b"__keyevent@%d__:%s" % (db, name), key, False)
