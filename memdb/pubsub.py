"""Pub/sub subscriptions of one node's connections, and delivery to them.

Who is subscribed is local to a node (as in Redis). What is published is not: PUBLISH on the primary is a log
entry, and every node delivers it to its own subscribers when it applies it, so subscribers on the shard's replicas
get the message too (memdb/node.py). Delivery is a push to the connection: RESP3 `>` out of band, RESP2 an array
(a RESP2 connection with subscriptions is in subscribed mode: memdb/server.py enforces which commands it may run).
"""
from __future__ import annotations

from typing import Protocol

from memdb.commands.scanning import glob_match
from memdb.commands.spec import Push


class Subscriber(Protocol):
    subscriptions: dict[tuple[str, bytes], None]      # (kind, channel-or-pattern), insertion-ordered

    def push(self, message: Push) -> None: ...


class PubSub:
    KINDS = {"subscribe": "channels", "psubscribe": "patterns", "ssubscribe": "shard_channels"}

    def __init__(self):
        self.channels: dict[bytes, dict[Subscriber, None]] = {}
        self.patterns: dict[bytes, dict[Subscriber, None]] = {}
        self.shard_channels: dict[bytes, dict[Subscriber, None]] = {}

    def _table(self, kind: str) -> dict[bytes, dict[Subscriber, None]]:
        return getattr(self, self.KINDS[kind])

    def subscribe(self, conn: Subscriber, kind: str, names: list[bytes]) -> list[Push]:
        """kind: subscribe | psubscribe | ssubscribe. One confirmation per name, with the running count."""
        table = self._table(kind)
        replies = []
        for name in names:
            table.setdefault(name, {})[conn] = None
            conn.subscriptions[(kind, name)] = None
            replies.append(Push([kind.encode(), name, self._count(conn, kind)]))
        return replies

    def unsubscribe(self, conn: Subscriber, kind: str, names: list[bytes]) -> list[Push]:
        """kind: subscribe | psubscribe | ssubscribe; no names = all of that kind."""
        table = self._table(kind)
        if not names:
            names = [name for k, name in conn.subscriptions if k == kind]
            if not names:
                return [Push([b"un" + kind.encode(), None, self._count(conn, kind)])]
        replies = []
        for name in names:
            subscribers = table.get(name)
            if subscribers is not None:
                subscribers.pop(conn, None)
                if not subscribers:
                    del table[name]
            conn.subscriptions.pop((kind, name), None)
            replies.append(Push([b"un" + kind.encode(), name, self._count(conn, kind)]))
        return replies

    @staticmethod
    def _count(conn: Subscriber, kind: str) -> int:
        # Redis counts channels and patterns together; shard channels on their own.
        if kind == "ssubscribe":
            return sum(1 for k, _ in conn.subscriptions if k == "ssubscribe")
        return sum(1 for k, _ in conn.subscriptions if k != "ssubscribe")

    def drop(self, conn: Subscriber) -> None:
        """The connection closed (or RESET): forget all its subscriptions."""
        for kind, name in list(conn.subscriptions):
            table = self._table(kind)
            subscribers = table.get(name)
            if subscribers is not None:
                subscribers.pop(conn, None)
                if not subscribers:
                    del table[name]
        conn.subscriptions.clear()

    def publish(self, channel: bytes, message: bytes, sharded: bool = False) -> int:
        """Deliver to local subscribers; returns how many received it (PUBLISH's reply)."""
        receivers = 0
        if sharded:
            for conn in list(self.shard_channels.get(channel, ())):
                conn.push(Push([b"smessage", channel, message]))
                receivers += 1
            return receivers
        for conn in list(self.channels.get(channel, ())):
            conn.push(Push([b"message", channel, message]))
            receivers += 1
        for pattern, conns in list(self.patterns.items()):
            if glob_match(pattern, channel):
                for conn in list(conns):
                    conn.push(Push([b"pmessage", pattern, channel, message]))
                    receivers += 1
        return receivers

    # -- PUBSUB introspection ----------------------------------------------------------------------------------
    def channel_names(self, pattern: bytes | None, sharded: bool = False) -> list[bytes]:
        table = self.shard_channels if sharded else self.channels
        return [c for c in table if pattern is None or glob_match(pattern, c)]

    def numsub(self, channels: list[bytes], sharded: bool = False) -> list:
        table = self.shard_channels if sharded else self.channels
        out = []
        for c in channels:
            out += [c, len(table.get(c, ()))]
        return out

    def numpat(self) -> int:
        return len(self.patterns)
