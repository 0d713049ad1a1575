"""A compact way to write one command table row: `command("get", 2, "readonly fast", 1, 1, 1, get, "@read @string @fast")`.

Flags and ACL categories are written as in `COMMAND INFO` (space separated), so a row can be checked against
Redis by eye; tests/unit/test_command_table.py checks every row against a real redis-server.
"""
from __future__ import annotations

from typing import Any, Callable

from memdb.commands.spec import CommandSpec, Flag


def command(name: str, arity: int, flags: str, first_key: int = 0, last_key: int = 0, key_step: int = 0,
            handler: Callable[..., Any] | None = None, acl: str = "",
            subcommands: tuple[CommandSpec, ...] = (),
            key_finder: Callable[[list[bytes]], list[int]] | None = None) -> CommandSpec:
    return CommandSpec(
        name=name, arity=arity, flags=frozenset(Flag(f) for f in flags.split()),
        first_key=first_key, last_key=last_key, key_step=key_step, handler=handler,
        acl_categories=tuple(acl.split()), subcommands=subcommands, key_finder=key_finder)
