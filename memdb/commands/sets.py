"""Placeholder: the sets commands module (owned by the collections engineer). The table imports its COMMANDS."""
from memdb.commands.spec import CommandSpec

COMMANDS: list[CommandSpec] = []
