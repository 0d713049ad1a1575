"""DUMP and RESTORE (Redis 7.0 cluster.c) in Redis's RDB value format (memdb/rdb.py), so payloads move between
Redis and memdb in both directions.

RESTORE's TTL is relative to the entry's now_ms (or absolute with ABSTTL); a deadline already reached stores
nothing (and deletes the old key under REPLACE), as checkAlreadyExpired does on a primary. IDLETIME and FREQ are
parsed and checked like Redis and set this node's access clock if one runs (node-local, memdb/access.py).
"""
from __future__ import annotations

from typing import Any

from memdb import notify, rdb
from memdb.commands import messages
from memdb.commands.args import parse_int
from memdb.commands.declare import command
from memdb.commands.spec import OK, CommandError, Context

DUMP_UNSUPPORTED = "ERR DUMP is not supported for this type of value"


def dump(ctx: Context, args: list[bytes]) -> Any:
    value = ctx.db.get(args[1], ctx.now_ms, ctx.is_replica_read)
    if value is None:
        return None
    try:
        return rdb.dump_payload(value)
    except rdb.Unsupported:
        raise CommandError(DUMP_UNSUPPORTED) from None


def restore(ctx: Context, args: list[bytes]) -> Any:
    replace = absttl = False
    idle = freq = -1
    j = 4
    while j < len(args):
        more = len(args) - j - 1
        opt = args[j].upper()
        if opt == b"REPLACE":
            replace = True
        elif opt == b"ABSTTL":
            absttl = True
        elif opt == b"IDLETIME" and more >= 1 and freq == -1:
            idle = parse_int(args[j + 1])
            if idle < 0:
                raise CommandError(messages.RESTORE_INVALID_IDLETIME)
            j += 1
        elif opt == b"FREQ" and more >= 1 and idle == -1:
            freq = parse_int(args[j + 1])
            if not 0 <= freq <= 255:
                raise CommandError(messages.RESTORE_INVALID_FREQ)
            j += 1
        else:
            raise CommandError(messages.SYNTAX)
        j += 1

    key = args[1]
    if not replace and ctx.db.get(key, ctx.now_ms) is not None:
        raise CommandError(messages.BUSYKEY)
    ttl = parse_int(args[2])
    if ttl < 0:
        raise CommandError(messages.RESTORE_INVALID_TTL)
    payload = bytes(args[3])
    if not rdb.verify_payload(payload):
        raise CommandError(messages.DUMP_PAYLOAD_INVALID)
    try:
        value = rdb.restore_payload(payload)
    except rdb.BadPayload:
        raise CommandError(messages.RESTORE_BAD_DATA) from None

    deleted = replace and ctx.db.delete(key)
    if ttl and not absttl:
        ttl += ctx.now_ms
    if ttl and ttl <= ctx.now_ms:
        if deleted:
            ctx.notify(notify.GENERIC, "del", key)
        return OK
    ctx.db.set(key, value)
    if ttl:
        ctx.db.set_expiry(key, ttl)
    if ctx.keyspace.access is not None:        # objectSetLRUOrLFU
        ctx.keyspace.access.restored(ctx.db.index, key, freq, idle, ctx.now_ms)
    ctx.notify(notify.GENERIC, "restore", key)
    return OK


COMMANDS = [
    command("dump", 2, "readonly", 1, 1, 1, dump, "@keyspace @read @slow"),
    command("restore", -4, "write denyoom", 1, 1, 1, restore, "@keyspace @write @slow @dangerous"),
]
