"""Cluster commands (CLUSTER ..., READONLY, READWRITE, ASKING). Like the replication commands they act on the
node's topology and per-connection routing, not the keyspace: memdb/node.py answers them (`NODE_COMMANDS`)."""
from memdb.commands.declare import command


def _sub(name: str, arity: int) -> object:
    return command(f"cluster|{name}", arity, "stale", acl="@slow")


COMMANDS = [
    command("cluster", -2, "", acl="@slow", subcommands=(
        _sub("info", 2), _sub("keyslot", 3), _sub("myid", 2), _sub("nodes", 2), _sub("shards", 2),
        _sub("slots", 2), _sub("countkeysinslot", 3), _sub("getkeysinslot", 4))),
    command("readonly", 1, "loading stale fast", acl="@fast @connection"),
    command("readwrite", 1, "loading stale fast", acl="@fast @connection"),
    command("asking", 1, "fast", acl="@fast @connection"),
]
