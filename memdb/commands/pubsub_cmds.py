"""Pub/sub commands. SUBSCRIBE and friends and PUBSUB are the connection's (memdb/server.py, Flag.CONNECTION);
PUBLISH/SPUBLISH go through the node (memdb/node.py), which logs them so replicas' subscribers get them too."""
from memdb.commands.declare import command
from memdb.commands.spec import Flag

_C = " connection"


def _sub(name: str, arity: int, flags: str) -> object:
    return command(f"pubsub|{name}", arity, flags + _C, acl="@pubsub @slow")


COMMANDS = [
    command("subscribe", -2, "pubsub noscript loading stale" + _C, acl="@pubsub @slow"),
    command("unsubscribe", -1, "pubsub noscript loading stale" + _C, acl="@pubsub @slow"),
    command("psubscribe", -2, "pubsub noscript loading stale" + _C, acl="@pubsub @slow"),
    command("punsubscribe", -1, "pubsub noscript loading stale" + _C, acl="@pubsub @slow"),
    command("ssubscribe", -2, "pubsub noscript loading stale" + _C, 1, -1, 1, acl="@pubsub @slow"),
    command("sunsubscribe", -1, "pubsub noscript loading stale" + _C, 1, -1, 1, acl="@pubsub @slow"),
    command("publish", 3, "pubsub loading stale fast", acl="@pubsub @fast"),
    command("spublish", 3, "pubsub loading stale fast", 1, 1, 1, acl="@pubsub @fast"),
    command("pubsub", -2, "" + _C, acl="@slow", subcommands=(
        _sub("channels", -2, "pubsub loading stale"), _sub("numpat", 2, "pubsub loading stale"),
        _sub("numsub", -2, "pubsub loading stale"), _sub("shardchannels", -2, "pubsub loading stale"),
        _sub("shardnumsub", -2, "pubsub loading stale"))),
]
assert all(Flag.CONNECTION in c.flags for c in COMMANDS if not c.name.endswith("publish"))
