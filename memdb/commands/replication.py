"""Replication-level commands. They act on the node (its role, its lease, the log), not on the keyspace, so they
have no handler here: memdb/node.py answers them (`NODE_COMMANDS`), and they are rows of the table so COMMAND,
arity checks and ACL categories work as for every other command."""
from memdb.commands.declare import command

COMMANDS = [
    command("failover", -1, "admin noscript stale", acl="@admin @slow @dangerous"),
    command("role", 1, "noscript loading stale fast", acl="@admin @fast @dangerous"),
]
