"""The client's exceptions: one tree under MemdbError, redis-py's names where redis-py has one.

Error replies become exceptions by their first word (Redis's error codes): `WRONGTYPE` -> WrongTypeError,
`READONLY` -> ReadOnlyError, `CLUSTERDOWN` -> ClusterDownError, `CROSSSLOT` -> CrossSlotError, `MOVED` -> MovedError,
`TRYAGAIN` -> TryAgainError, `EXECABORT` -> ExecAbortError, `NOSCRIPT` -> NoScriptError, anything else ->
ResponseError. TimeoutError and
ConnectionError also derive from the builtins of the same name, so `except TimeoutError` catches them.
"""
from __future__ import annotations

import builtins


class MemdbError(Exception):
    """Base of every error the client raises."""


class ResponseError(MemdbError):
    """The server answered with an error reply (the message is the reply's full text)."""


class WrongTypeError(ResponseError):
    """WRONGTYPE: the key holds a value of another type."""


class ReadOnlyError(ResponseError):
    """READONLY: a write reached a replica (or a deposed primary) and every retry until the deadline did too."""


class TryAgainError(ResponseError):
    """TRYAGAIN: the node could not serve the request now (lease lapsed, log slow); retried until the deadline."""


class ClusterDownError(ResponseError):
    """CLUSTERDOWN, or no shard serves the key's slot in the topology the client knows."""


class CrossSlotError(ResponseError):
    """The keys of a multi-key command hash to different slots (detected client-side, or CROSSSLOT)."""


class MovedError(ResponseError):
    """MOVED slot host:port: the slot is served elsewhere (the client refreshes its topology and retries)."""


class ExecAbortError(ResponseError):
    """EXECABORT: a transaction was discarded because a queued command had an error."""


class NoScriptError(ResponseError):
    """NOSCRIPT: EVALSHA of a script the node does not have (load it with script_load, or use eval)."""


class WatchError(MemdbError):
    """A WATCHed key changed before EXEC; the transaction was not applied."""


class NotSupported(MemdbError):
    """The server does not support what was asked (e.g. MULTI/EXEC over gRPC)."""


class RetryWindowError(MemdbError):
    """A write's retry came too late for the server's exactly-once table (it was not applied twice, but whether it
    was applied at all is unknown). See the module docstring of memdb.client for the bound."""


class TimeoutError(MemdbError, builtins.TimeoutError):
    """The call's deadline passed. A write may or may not have been applied; it is never retried after this."""


class ConnectionError(MemdbError, builtins.ConnectionError):
    """No node could be reached (bad seed address, all nodes down)."""


_BY_PREFIX: dict[str, type[ResponseError]] = {
    "WRONGTYPE": WrongTypeError,
    "READONLY": ReadOnlyError,
    "TRYAGAIN": TryAgainError,
    "CLUSTERDOWN": ClusterDownError,
    "CROSSSLOT": CrossSlotError,
    "MOVED": MovedError,
    "EXECABORT": ExecAbortError,
    "NOSCRIPT": NoScriptError,
}


def error_from_reply(message: str) -> ResponseError:
    """The exception for an error reply's text."""
    code = message.split(" ", 1)[0]
    return _BY_PREFIX.get(code, ResponseError)(message)


class DataError(MemdbError, builtins.TypeError):
    """A command argument of a type the client cannot send (None, bool, a dict where a scalar belongs, ...)."""
