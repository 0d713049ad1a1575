"""MULTI/EXEC/DISCARD/WATCH/UNWATCH. The queue and the watched keys are per connection and the EXEC is one log
entry applied atomically, so memdb/node.py answers these (`NODE_COMMANDS`); the rows are here for the table."""
from memdb.commands.declare import command

COMMANDS = [
    command("multi", 1, "noscript loading stale fast allow_busy", acl="@fast @transaction"),
    command("exec", 1, "noscript loading stale skip_slowlog", acl="@slow @transaction"),
    command("discard", 1, "noscript loading stale fast allow_busy", acl="@fast @transaction"),
    command("watch", -2, "noscript loading stale fast allow_busy", 1, -1, 1, acl="@fast @transaction"),
    command("unwatch", 1, "noscript loading stale fast allow_busy", acl="@fast @transaction"),
]
