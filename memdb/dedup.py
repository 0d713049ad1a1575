"""Exactly-once writes for client-library retries: the state machine remembers recent (client_id, client_seq) ->
reply, so a write retried after a failover or a lost reply is applied once and the retry gets the first reply.

The table is part of the replicated state: every node builds it from the log in the same order, so a new primary
answers a retry exactly as the old one would have. It is bounded, deterministically:
  - per client, the replies of its last WINDOW_PER_CLIENT requests are kept; a retry older than that gets
    `ERR memdb: request ... is too old to deduplicate` (never a second application);
  - at most MAX_CLIENTS clients are remembered, the least recently active forgotten first. A client that was
    forgotten (idle while MAX_CLIENTS others wrote) and then retries a request would have it applied again; the
    client library avoids this by never retrying a request older than its own retry deadline.
"""
from __future__ import annotations

import collections
from typing import Any

WINDOW_PER_CLIENT = 256
MAX_CLIENTS = 100_000


class _Client:
    __slots__ = ("replies", "floor")

    def __init__(self):
        self.replies: collections.OrderedDict[int, Any] = collections.OrderedDict()
        self.floor = 0          # every seq <= floor has been applied (and its reply forgotten)


class TooOld(Exception):
    pass


class DedupTable:
    def __init__(self, window: int = WINDOW_PER_CLIENT, max_clients: int = MAX_CLIENTS):
        self.window = window
        self.max_clients = max_clients
        self._clients: collections.OrderedDict[str, _Client] = collections.OrderedDict()

    def lookup(self, client_id: str, seq: int) -> tuple[bool, Any]:
        """(True, first reply) if (client_id, seq) was applied; (False, None) if not. Raises TooOld."""
        client = self._clients.get(client_id)
        if client is None:
            return False, None
        if seq in client.replies:
            return True, client.replies[seq]
        if seq <= client.floor:
            raise TooOld(f"ERR memdb: request {seq} of client {client_id} is too old to deduplicate")
        return False, None

    def record(self, client_id: str, seq: int, reply: Any) -> None:
        client = self._clients.get(client_id)
        if client is None:
            client = self._clients[client_id] = _Client()
            if len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(client_id)
        client.replies[seq] = reply
        while len(client.replies) > self.window:
            old_seq, _ = client.replies.popitem(last=False)
            client.floor = max(client.floor, old_seq)

    def __len__(self) -> int:
        return len(self._clients)
