"""Command lookup and execution: Redis's processCommand checks (unknown command, unknown subcommand, arity) with
its exact error texts, then the handler.

    lookup(args)        -> the CommandSpec that will run args (subcommand row for "OBJECT ENCODING k"),
                           or raises CommandError. Cheap and stateless: the primary calls it before logging.
    execute(ctx, args)  -> the handler's reply, or raises CommandError.

args[0] is the command name (any case); handlers receive the full args list, name included.
"""
from __future__ import annotations

from typing import Any

from memdb.access import NO_TOUCH
from memdb.commands import messages
from memdb.commands.spec import CommandError, CommandSpec, Context
from memdb.commands.table import COMMAND_TABLE, SUBCOMMANDS

_BY_NAME: dict[bytes, CommandSpec] = {name.encode(): spec for name, spec in COMMAND_TABLE.items()}
_SUB_BY_NAME: dict[bytes, dict[bytes, CommandSpec]] = {
    name.encode(): {sub.encode(): spec for sub, spec in subs.items()} for name, subs in SUBCOMMANDS.items()}


_BY_SPELLING: dict[bytes, CommandSpec] = {}    # args[0] exactly as sent ("GET", "get") -> spec, no subcommands
_MAX_SPELLINGS = 4096


def lookup(args: list[bytes]) -> CommandSpec:
    if args and type(args[0]) is bytes:
        spec = _BY_SPELLING.get(args[0])
        if spec is not None and spec.arity_ok(len(args)):
            return spec             # the hot path: no lower(), no second dict
    if not args:
        raise CommandError(messages.unknown_command(b"", []))
    name = bytes(args[0]).lower()
    spec = _BY_NAME.get(name)
    if spec is None:
        raise CommandError(messages.unknown_command(args[0], args[1:]))
    if spec.subcommands and len(args) >= 2:
        sub = _SUB_BY_NAME[name].get(bytes(args[1]).lower())
        if sub is None:
            raise CommandError(messages.unknown_subcommand(args[1], spec.name))
        spec = sub
    if not spec.arity_ok(len(args)):
        raise CommandError(messages.wrong_arity(spec.name))
    if not spec.subcommands and "|" not in spec.name and type(args[0]) is bytes \
            and len(_BY_SPELLING) < _MAX_SPELLINGS:
        _BY_SPELLING[args[0]] = spec
    return spec


def execute(ctx: Context, args: list[bytes]) -> Any:
    return execute_spec(ctx, lookup(args), args)


def execute_spec(ctx: Context, spec: CommandSpec, args: list[bytes]) -> Any:
    """`execute` for a caller that has already looked the command up (and so checked its arity)."""
    if spec.handler is None:
        # Connection/server commands (Flag.CONNECTION) are answered by memdb/server.py, never by a handler.
        raise CommandError(f"ERR '{spec.name}' command is handled by the connection layer")
    access = ctx.keyspace.access
    if access is None or spec.name in NO_TOUCH:
        return spec.handler(ctx, args)
    # OBJECT IDLETIME/FREQ's node-local access clock is running (memdb/access.py): count the named keys' access.
    keys = [args[i] for i in spec.key_positions(args) if i < len(args)]
    return access.around(ctx, keys, lambda: spec.handler(ctx, args))
