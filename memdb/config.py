"""Server configuration: the parameters CONFIG GET/SET know, with Redis 7.0's names, defaults, value checks and
exact error texts (config.c). Parameters memdb actually honours are marked `honoured`; the others are accepted
and reported so that clients and test suites that set them (save '', appendonly no, *-max-listpack-*) work.

Listeners (`on_change`) let the server push a new value where it is used (e.g. proto-max-bulk-len into every
connection's parser) instead of reading the config on the hot path.

Replicated parameters (`replicate`: notify-keyspace-events) are not stored here: they are shard state kept by the
node, set through the log so that every node agrees (memdb/notify.py). CONFIG GET reads them from the node, and
CONFIG SET validates them here, then the server hands them to the node (`replicated` of the staged values).
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable

from memdb import notify

LLONG_MAX = (1 << 63) - 1
INT_MAX = (1 << 31) - 1


class ConfigError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _parse_memory(text: str) -> int | None:
    """Redis memtoull: an integer with an optional unit b, k, kb, m, mb, g, gb (case-insensitive)."""
    m = re.fullmatch(r"(\d+)(b|k|kb|m|mb|g|gb)?", text.lower())
    if m is None:
        return None
    unit = {None: 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000 ** 2, "mb": 1024 ** 2, "g": 1000 ** 3,
            "gb": 1024 ** 3}[m.group(2)]
    return int(m.group(1)) * unit


def _parse_int_strict(text: str) -> int | None:
    return int(text) if re.fullmatch(r"-?(0|[1-9]\d{0,18})", text) else None


@dataclasses.dataclass
class Param:
    name: str
    default: Any
    kind: str                       # int | memory | bool | enum | string | save | keyspace_events
    low: int = 0
    high: int = LLONG_MAX
    choices: tuple[str, ...] = ()
    immutable: bool = False
    honoured: bool = False
    aliases: tuple[str, ...] = ()


_PARAMS = [
    Param("proto-max-bulk-len", 512 * 1024 * 1024, "memory", 1024 * 1024, LLONG_MAX, honoured=True),
    Param("maxclients", 10000, "int", 1, INT_MAX, honoured=True),
    Param("timeout", 0, "int", 0, INT_MAX, honoured=True),
    Param("notify-keyspace-events", "", "keyspace_events"),
    Param("hash-max-listpack-entries", 128, "int", 0, LLONG_MAX, aliases=("hash-max-ziplist-entries",)),
    Param("hash-max-listpack-value", 64, "int", 0, LLONG_MAX, aliases=("hash-max-ziplist-value",)),
    Param("zset-max-listpack-entries", 128, "int", 0, LLONG_MAX, aliases=("zset-max-ziplist-entries",)),
    Param("zset-max-listpack-value", 64, "int", 0, LLONG_MAX, aliases=("zset-max-ziplist-value",)),
    Param("list-max-listpack-size", -2, "int", -5, INT_MAX, aliases=("list-max-ziplist-size",)),
    Param("list-compress-depth", 0, "int", 0, INT_MAX),
    Param("set-max-intset-entries", 512, "int", 0, LLONG_MAX),
    Param("stream-node-max-bytes", 4096, "memory", 0, LLONG_MAX),
    Param("stream-node-max-entries", 100, "int", 0, LLONG_MAX),
    Param("save", "", "save"),
    Param("appendonly", "no", "bool"),
    Param("appendfsync", "everysec", "enum", choices=("always", "everysec", "no")),
    Param("maxmemory", 0, "memory", 0, LLONG_MAX),
    # Honoured for OBJECT IDLETIME/FREQ (memdb/access.py: which access clock runs); memdb does not evict.
    Param("maxmemory-policy", "noeviction", "enum",
          choices=("volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "allkeys-lru",
                   "allkeys-lfu", "allkeys-random", "noeviction"), honoured=True),
    Param("lfu-log-factor", 10, "int", 0, INT_MAX, honoured=True),
    Param("lfu-decay-time", 1, "int", 0, INT_MAX, honoured=True),
    Param("databases", 16, "int", 1, INT_MAX, immutable=True),
    Param("port", 6379, "int", 0, 65535, immutable=True),
    Param("tls-port", 0, "int", 0, 65535, immutable=True),
    Param("bind", "", "string", immutable=True),
    Param("cluster-enabled", "no", "bool", immutable=True),
    Param("tcp-keepalive", 300, "int", 0, INT_MAX),
    Param("hz", 10, "int", 0, INT_MAX),
    Param("loglevel", "notice", "enum", choices=("debug", "verbose", "notice", "warning", "nothing")),
    Param("slowlog-log-slower-than", 10000, "int", -1, LLONG_MAX),
    Param("slowlog-max-len", 128, "int", 0, LLONG_MAX),
    Param("busy-reply-threshold", 5000, "int", 0, LLONG_MAX, aliases=("lua-time-limit",)),
    Param("lazyfree-lazy-user-del", "no", "bool"),
    Param("lazyfree-lazy-user-flush", "no", "bool"),
    Param("replica-read-only", "yes", "bool", aliases=("slave-read-only",)),
    Param("activerehashing", "yes", "bool"),
    Param("requirepass", "", "string", immutable=True),
    Param("dir", "", "string", immutable=True),
    Param("dbfilename", "dump.rdb", "string", immutable=True),
]


def glob_to_regex(pattern: str, nocase: bool = True) -> re.Pattern:
    """Redis stringmatchlen: * ? [abc] [^a-z] and \\ escapes."""
    i, n, out = 0, len(pattern), []
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            j = i + 1
            neg = j < n and pattern[j] == "^"
            if neg:
                j += 1
            body = []
            while j < n and pattern[j] != "]":
                if pattern[j] == "\\" and j + 1 < n:
                    j += 1
                    body.append(re.escape(pattern[j]))
                elif j + 2 < n and pattern[j + 1] == "-" and pattern[j + 2] != "]":
                    lo, hi = sorted((pattern[j], pattern[j + 2]))
                    body.append(re.escape(lo) + "-" + re.escape(hi))
                    j += 2
                else:
                    body.append(re.escape(pattern[j]))
                j += 1
            out.append("[" + ("^" if neg else "") + "".join(body) + "]" if body else ("." if neg else "(?!)"))
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.S | (re.I if nocase else 0))


class Config:
    def __init__(self, **overrides: Any):
        self._params = {p.name: p for p in _PARAMS}
        self._alias = {a: p.name for p in _PARAMS for a in p.aliases}
        self._values: dict[str, Any] = {p.name: p.default for p in _PARAMS}
        self._listeners: dict[str, list[Callable[[Any], None]]] = {}
        self._replicated: dict[str, Callable[[], str]] = {}
        for key, value in overrides.items():
            self._values[key.replace("_", "-")] = value

    def __getitem__(self, name: str) -> Any:
        return self._values[self._alias.get(name, name)]

    def on_change(self, name: str, callback: Callable[[Any], None]) -> None:
        self._listeners.setdefault(name, []).append(callback)

    def replicate(self, name: str, current: Callable[[], str]) -> None:
        """`name` is replicated state kept by the node: CONFIG GET answers `current()`, and CONFIG SET leaves it
        to the caller (see `replicated`)."""
        assert name in self._params, name
        self._replicated[name] = current

    def set_internal(self, name: str, value: Any) -> None:
        """Set from code (command line, tests): no validation, but listeners run."""
        name = self._alias.get(name, name)
        self._values[name] = value
        for callback in self._listeners.get(name, ()):
            callback(value)

    def _format(self, name: str) -> str:
        current = self._replicated.get(name)
        if current is not None:
            return current()
        value = self._values[name]
        if self._params[name].kind == "keyspace_events":
            return notify.format_flags(notify.parse_flags(value) or 0)
        return str(value)

    def get(self, patterns: list[str]) -> list[tuple[str, str]]:
        """CONFIG GET: (name, value) pairs for every name or alias that matches one of the patterns."""
        found: dict[str, str] = {}
        for pattern in patterns:
            exact = pattern.lower()
            if not any(ch in pattern for ch in "*?[\\"):
                canonical = self._alias.get(exact, exact)
                if canonical in self._params:
                    found[exact] = self._format(canonical)
                continue
            rx = glob_to_regex(pattern)
            for name in list(self._params) + list(self._alias):
                if name not in found and rx.fullmatch(name):
                    found[name] = self._format(self._alias.get(name, name))
        return list(found.items())

    def set(self, pairs: list[tuple[str, str]]) -> None:
        """CONFIG SET name value [name value ...]: all or nothing, with Redis's error texts. Replicated
        parameters are validated but not stored: use `stage`, `replicated` and `commit` to hand them on."""
        self.commit(self.stage(pairs))

    def replicated(self, staged: dict[str, Any]) -> dict[str, str]:
        """The staged values of replicated parameters (for the node to log)."""
        return {name: value for name, value in staged.items() if name in self._replicated}

    def commit(self, staged: dict[str, Any]) -> None:
        """Store the staged values of the parameters kept here (listeners run)."""
        for name, value in staged.items():
            if name not in self._replicated:
                self.set_internal(name, value)

    def stage(self, pairs: list[tuple[str, str]]) -> dict[str, Any]:
        """Validate CONFIG SET's pairs (canonical name -> parsed value) or raise ConfigError with Redis's text."""
        staged: dict[str, Any] = {}
        seen: set[str] = set()
        for raw_name, text in pairs:
            lname = raw_name.lower()
            name = self._alias.get(lname, lname)
            param = self._params.get(name)
            if param is None:
                raise ConfigError(f"ERR Unknown option or number of arguments for CONFIG SET - '{raw_name}'")
            if name in seen:
                raise ConfigError(self._failed(raw_name, "duplicate parameter"))
            seen.add(name)
            if param.immutable:
                raise ConfigError(self._failed(raw_name, "can't set immutable config"))
            staged[name] = self._parse(param, raw_name, text)
        return staged

    @staticmethod
    def _failed(name: str, why: str) -> str:
        return f"ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"

    def _parse(self, param: Param, raw_name: str, text: str) -> Any:
        kind = param.kind
        if kind in ("int", "memory"):
            value = _parse_int_strict(text) if kind == "int" else _parse_memory(text)
            if value is None and kind == "memory":
                value = _parse_int_strict(text)
                if value is None:
                    raise ConfigError(self._failed(raw_name, "argument must be a memory value"))
            if value is None:
                raise ConfigError(self._failed(raw_name, "argument couldn't be parsed into an integer"))
            if not param.low <= value <= param.high:
                raise ConfigError(self._failed(
                    raw_name, f"argument must be between {param.low} and {param.high} inclusive"))
            return value
        if kind == "bool":
            if text.lower() not in ("yes", "no"):
                raise ConfigError(self._failed(raw_name, "argument must be 'yes' or 'no'"))
            return text.lower()
        if kind == "enum":
            if text.lower() not in param.choices:
                raise ConfigError(self._failed(
                    raw_name, "argument(s) must be one of the following: " + ", ".join(param.choices)))
            return text.lower()
        if kind == "save":
            parts = text.split()
            if len(parts) % 2 or any(_parse_int_strict(p) is None or int(p) < 0 for p in parts):
                raise ConfigError(self._failed(raw_name, "Invalid save parameters"))
            return " ".join(parts)
        if kind == "keyspace_events":
            # Kept as given (CONFIG GET normalises): the normal form can lose a flag ("KEAn" reads back "AKE").
            if notify.parse_flags(text) is None:
                raise ConfigError(self._failed(raw_name, notify.INVALID_FLAGS))
            return text
        return text
