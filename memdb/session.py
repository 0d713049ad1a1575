"""Per-connection state (what Redis keeps in `client`): identity, selected db, protocol version, reply mode.

The server owns one Session per RESP connection and passes it to the executor with every command; the node reads
`db` (and later its own per-connection state, e.g. MULTI queue or WATCHed keys, which it may keep in
`node_state`). Nothing here does I/O.
"""
from __future__ import annotations

import enum
import time
from typing import Any


class ReplyMode(enum.Enum):
    """CLIENT REPLY: ON (normal), OFF (no replies), SKIP (no reply to the next command only)."""
    ON = "on"
    OFF = "off"
    SKIP = "skip"


class Session:
    __slots__ = ("id", "name", "db", "resp", "reply_mode", "lib_name", "lib_ver", "created_s", "last_command_s",
                 "laddr", "raddr", "last_command_name", "no_evict", "close_after_reply", "node_state")

    def __init__(self, client_id: int, laddr: str = "", raddr: str = ""):
        self.id = client_id
        self.name = b""                         # CLIENT SETNAME (empty = no name)
        self.db = 0                             # SELECTed database index
        self.resp = 2                           # protocol version: 2 or 3 (HELLO)
        self.reply_mode = ReplyMode.ON
        self.lib_name = b""                     # CLIENT SETINFO LIB-NAME
        self.lib_ver = b""                      # CLIENT SETINFO LIB-VER
        self.created_s = time.time()            # wall clock: only for CLIENT LIST age
        self.last_command_s = time.monotonic()  # for CLIENT LIST idle and the idle `timeout`
        self.laddr = laddr                      # "host:port" of our side
        self.raddr = raddr                      # "host:port" of the client
        self.last_command_name = "NULL"         # CLIENT LIST cmd=
        self.no_evict = False
        self.close_after_reply = False          # QUIT, CLIENT KILL of itself, protocol error
        self.node_state: Any = None             # free for the executor (MULTI queue, WATCH...)

    def reset(self) -> None:
        """RESET: back to a fresh connection's state (the id and addresses stay)."""
        self.name = b""
        self.db = 0
        self.resp = 2
        self.reply_mode = ReplyMode.ON
        self.no_evict = False
        self.node_state = None
