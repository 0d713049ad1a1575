"""THE command table: every command memdb knows, assembled from each data-type module's `COMMANDS` list.

No module registers itself at import time: the table is exactly the modules listed in `MODULES`, in order, and a
name defined twice is a programmer error (assert). Subcommands ("object|encoding") live in their container's
`subcommands` and are indexed in `SUBCOMMANDS`. tests/unit/test_command_table.py checks every row (arity, flags,
first/last/step key positions, ACL categories) against a real redis-server's COMMAND INFO.
"""
from __future__ import annotations

from memdb.commands import (cluster_cmds, connection, hashes, keys, lists, pubsub_cmds, replication, sets,
                            strings, transactions, zsets)
from memdb.commands import bitmaps, dump, geo, hyperloglog, sort
from memdb.commands import functions, scripting
from memdb.commands import streams
from memdb.commands.spec import CommandSpec

# One line per data-type module. Add new modules here (and only here).
MODULES = (
    strings,
    keys,
    hashes,
    lists,
    sets,
    zsets,
    connection,
    replication,
    cluster_cmds,
    transactions,
    pubsub_cmds,
    bitmaps,
    hyperloglog,
    geo,
    sort,
    dump,
    scripting,
    functions,
    streams,
)


def build_table(modules=MODULES) -> dict[str, CommandSpec]:
    table: dict[str, CommandSpec] = {}
    for module in modules:
        for spec in module.COMMANDS:
            assert spec.name == spec.name.lower() and "|" not in spec.name, spec.name
            assert spec.name not in table, f"command {spec.name!r} defined twice"
            for sub in spec.subcommands:
                assert sub.name.startswith(spec.name + "|"), sub.name
            table[spec.name] = spec
    return table


COMMAND_TABLE: dict[str, CommandSpec] = build_table()

# container name -> subcommand name (lower case, without the container) -> spec
SUBCOMMANDS: dict[str, dict[str, CommandSpec]] = {
    name: {sub.name.split("|", 1)[1]: sub for sub in spec.subcommands}
    for name, spec in COMMAND_TABLE.items() if spec.subcommands
}


def all_specs() -> list[CommandSpec]:
    """Every row, containers followed by their subcommands."""
    rows = []
    for spec in COMMAND_TABLE.values():
        rows.append(spec)
        rows.extend(spec.subcommands)
    return rows
