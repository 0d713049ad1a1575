"""Connection and server commands: answered by the RESP server layer (memdb/server.py), never logged.

These are table rows only (arity, flags, ACL categories exactly as Redis 7.0's COMMAND INFO, except CLIENT SETINFO
which is Redis 7.2's and is here because redis-py >= 5 sends it on connect). The implementations live in
memdb/server.py (`ConnectionCommands`), because they need the connection, the server and its configuration,
which a command handler (a pure function of the keyspace) must never see. `Flag.CONNECTION` marks them so that
dispatch hands them to the server instead of the node; COMMAND INFO leaves that memdb-only flag out.
"""
from __future__ import annotations

from memdb.commands.spec import CommandSpec, Flag

F = Flag
_CONN = F.CONNECTION
_SUB = frozenset({F.NOSCRIPT, F.LOADING, F.STALE, _CONN})
_SUB_ADMIN = frozenset({F.ADMIN, F.NOSCRIPT, F.LOADING, F.STALE, _CONN})
_NOAUTH = frozenset({F.NOSCRIPT, F.LOADING, F.STALE, F.FAST, F.NO_AUTH, F.ALLOW_BUSY, _CONN})
_ACL_SUB = ("@slow", "@connection")
_ACL_ADMIN = ("@admin", "@slow", "@dangerous", "@connection")
_ACL_CONFIG_ADMIN = ("@admin", "@slow", "@dangerous")

# Command tips (COMMAND INFO field 8) are not part of CommandSpec; the COMMAND command reads them from here.
TIPS: dict[str, tuple[str, ...]] = {
    "ping": ("request_policy:all_shards", "response_policy:all_succeeded"),
    "time": ("nondeterministic_output",),
    "info": ("nondeterministic_output", "request_policy:all_shards", "response_policy:special"),
    "client|list": ("nondeterministic_output",),
    "client|info": ("nondeterministic_output",),
    "config|set": ("request_policy:all_nodes", "response_policy:all_succeeded"),
    "command": ("nondeterministic_output_order",),
    "command|info": ("nondeterministic_output_order",),
    "command|list": ("nondeterministic_output_order",),
    "command|docs": ("nondeterministic_output_order",),
}


def _sub(parent: str, name: str, arity: int, flags: frozenset, acl: tuple[str, ...] = _ACL_SUB) -> CommandSpec:
    return CommandSpec(f"{parent}|{name}", arity, flags, acl_categories=acl)


COMMANDS: list[CommandSpec] = [
    CommandSpec("ping", -1, frozenset({F.FAST, _CONN}), acl_categories=("@fast", "@connection")),
    CommandSpec("echo", 2, frozenset({F.LOADING, F.STALE, F.FAST, _CONN}), acl_categories=("@fast", "@connection")),
    CommandSpec("quit", -1, _NOAUTH, acl_categories=("@fast", "@connection")),
    CommandSpec("reset", 1, _NOAUTH, acl_categories=("@fast", "@connection")),
    CommandSpec("hello", -1, _NOAUTH, acl_categories=("@fast", "@connection")),
    CommandSpec("auth", -2, _NOAUTH, acl_categories=("@fast", "@connection")),
    CommandSpec("select", 2, frozenset({F.LOADING, F.STALE, F.FAST, _CONN}),
                acl_categories=("@fast", "@connection")),
    CommandSpec("time", 1, frozenset({F.LOADING, F.STALE, F.FAST, _CONN}), acl_categories=("@fast",)),
    CommandSpec("info", -1, frozenset({F.LOADING, F.STALE, _CONN}), acl_categories=("@slow", "@dangerous")),
    CommandSpec("client", -2, frozenset({_CONN}), acl_categories=("@slow",), subcommands=(
        _sub("client", "id", 2, _SUB),
        _sub("client", "setname", 3, _SUB),
        _sub("client", "getname", 2, _SUB),
        _sub("client", "list", -2, _SUB_ADMIN, _ACL_ADMIN),
        _sub("client", "info", 2, _SUB),
        _sub("client", "kill", -3, _SUB_ADMIN, _ACL_ADMIN),
        _sub("client", "reply", 3, _SUB),
        _sub("client", "no-evict", 3, _SUB_ADMIN, _ACL_ADMIN),
        _sub("client", "setinfo", 4, _SUB),
        _sub("client", "getredir", 2, _SUB),
        _sub("client", "help", 2, frozenset({F.LOADING, F.STALE, _CONN})),
    )),
    CommandSpec("config", -2, frozenset({_CONN}), acl_categories=("@slow",), subcommands=(
        _sub("config", "get", -3, _SUB_ADMIN, _ACL_CONFIG_ADMIN),
        _sub("config", "set", -4, _SUB_ADMIN, _ACL_CONFIG_ADMIN),
        _sub("config", "resetstat", 2, _SUB_ADMIN, _ACL_CONFIG_ADMIN),
        _sub("config", "rewrite", 2, _SUB_ADMIN, _ACL_CONFIG_ADMIN),
        _sub("config", "help", 2, frozenset({F.LOADING, F.STALE, _CONN}), ("@slow",)),
    )),
    CommandSpec("command", -1, frozenset({F.LOADING, F.STALE, _CONN}), acl_categories=("@slow", "@connection"),
                subcommands=(
        _sub("command", "count", 2, frozenset({F.LOADING, F.STALE, _CONN})),
        _sub("command", "info", -2, frozenset({F.LOADING, F.STALE, _CONN})),
        _sub("command", "docs", -2, frozenset({F.LOADING, F.STALE, _CONN})),
        _sub("command", "list", -2, frozenset({F.LOADING, F.STALE, _CONN})),
        _sub("command", "getkeys", -4, frozenset({F.LOADING, F.STALE, _CONN})),
        _sub("command", "getkeysandflags", -4, frozenset({F.LOADING, F.STALE, _CONN})),
        _sub("command", "help", 2, frozenset({F.LOADING, F.STALE, _CONN})),
    )),
]
