"""Generic key commands (Redis 7.0 db.c, expire.c, object.c): DEL/EXISTS/TYPE/RENAME/COPY/MOVE, KEYS/SCAN/RANDOMKEY,
EXPIRE family and TTLs, OBJECT, DBSIZE/FLUSHDB/FLUSHALL/SWAPDB.

Expiry deadlines are absolute unix ms; relative forms (EXPIRE, PEXPIRE) are computed from ctx.now_ms, the log
entry's time, so every node stores the same deadline. A deadline already in the past deletes the key, as Redis
does on a primary (checkAlreadyExpired).
"""
from __future__ import annotations

import collections
import copy
from typing import Any

from memdb import access, notify
from memdb.commands import hashes, messages
from memdb.commands.args import INT64_MAX, is_int, parse_int, parse_int32
from memdb.commands.declare import command
from memdb.commands.scanning import glob_match, parse_cursor, parse_scan_options, scan_page
from memdb.commands.spec import OK, CommandError, Context, SimpleString
from memdb.commands.strings import SHARED_INTEGERS, string_encoding
from memdb.keyspace import HashValue, ListValue, SetValue, type_name

SET_MAX_INTSET_ENTRIES = 512   # set-max-intset-entries
OBJ_SHARED_REFCOUNT = 2147483647


def _lookup(ctx: Context, key: bytes) -> Any | None:
    return ctx.db.get(key, ctx.now_ms, ctx.is_replica_read)


def _database(ctx: Context, index: int):
    if not 0 <= index < len(ctx.keyspace.dbs):
        raise CommandError(messages.DB_INDEX_OUT_OF_RANGE)
    return ctx.keyspace.dbs[index]


def duplicate(value: Any) -> Any:
    """A deep copy keeping the value's class (and so its encoding), for COPY."""
    if isinstance(value, bytes):
        return value                      # immutable
    if isinstance(value, (dict, collections.deque)):
        return type(value)(value)         # members are immutable bytes (or floats)
    own_copy = getattr(value, "copy", None)        # e.g. ZSetValue.copy() keeps its encoding
    return own_copy() if own_copy is not None else copy.deepcopy(value)


def object_encoding(value: Any) -> str:
    """OBJECT ENCODING as Redis 7.0 reports it. A value class may define `redis_encoding()` to take over."""
    if isinstance(value, bytes):
        return string_encoding(value)
    own = getattr(value, "redis_encoding", None)
    if own is not None:
        return own()
    if isinstance(value, HashValue):
        return hashes.hash_encoding(value)
    if isinstance(value, ListValue):
        return "quicklist"               # 7.0 always uses a quicklist (listpack lists came in 7.2)
    if isinstance(value, SetValue):
        if len(value) <= SET_MAX_INTSET_ENTRIES and all(is_int(m) for m in value):
            return "intset"
        return "hashtable"
    listpack = getattr(value, "listpack", None)     # ZSetValue records which encoding Redis would use
    if listpack is not None:
        return "listpack" if listpack else "skiplist"
    return "unknown"


# -- existence and types ----------------------------------------------------------------------------------------------
def del_(ctx: Context, args: list[bytes]) -> Any:
    deleted = 0
    for key in args[1:]:
        if ctx.db.get(key, ctx.now_ms) is not None:
            ctx.db.delete(key)
            ctx.notify(notify.GENERIC, "del", key)
            deleted += 1
    return deleted


def exists(ctx: Context, args: list[bytes]) -> Any:
    return sum(1 for key in args[1:] if _lookup(ctx, key) is not None)


def type_(ctx: Context, args: list[bytes]) -> Any:
    value = _lookup(ctx, args[1])
    return SimpleString("none" if value is None else type_name(value))


def touch(ctx: Context, args: list[bytes]) -> Any:
    return exists(ctx, args)


def _rename(ctx: Context, args: list[bytes], nx: bool) -> Any:
    src, dst = args[1], args[2]
    value = ctx.db.get(src, ctx.now_ms)
    if value is None:
        raise CommandError(messages.NO_SUCH_KEY)
    if src == dst:
        return 0 if nx else OK
    deadline = ctx.db.ttl_ms(src)
    if ctx.db.get(dst, ctx.now_ms) is not None:
        if nx:
            return 0
        ctx.db.delete(dst)
    ctx.db.set(dst, value)
    if deadline is not None:
        ctx.db.set_expiry(dst, deadline)
    ctx.db.delete(src)
    ctx.notify(notify.GENERIC, "rename_from", src)
    ctx.notify(notify.GENERIC, "rename_to", dst)
    return 1 if nx else OK


def rename(ctx: Context, args: list[bytes]) -> Any:
    return _rename(ctx, args, nx=False)


def renamenx(ctx: Context, args: list[bytes]) -> Any:
    return _rename(ctx, args, nx=True)


def copy_(ctx: Context, args: list[bytes]) -> Any:
    src_db = dst_db = ctx.db
    replace = False
    j = 3
    while j < len(args):
        opt = args[j].upper()
        if opt == b"REPLACE":
            replace = True
        elif opt == b"DB" and len(args) - j - 1 >= 1:
            dst_db = _database(ctx, parse_int32(args[j + 1]))
            j += 1
        else:
            raise CommandError(messages.SYNTAX)
        j += 1
    key, new_key = args[1], args[2]
    if src_db is dst_db and key == new_key:
        raise CommandError(messages.SAME_OBJECT)
    value = src_db.get(key, ctx.now_ms)
    if value is None:
        return 0
    deadline = src_db.ttl_ms(key)
    if dst_db.get(new_key, ctx.now_ms) is not None:
        if not replace:
            return 0
        dst_db.delete(new_key)
    dst_db.set(new_key, duplicate(value))
    if deadline is not None:
        dst_db.set_expiry(new_key, deadline)
    ctx.notify(notify.GENERIC, "copy_to", new_key, dst_db)
    return 1


def move(ctx: Context, args: list[bytes]) -> Any:
    dst_db = _database(ctx, parse_int32(args[2]))
    src_db = ctx.db
    if src_db is dst_db:
        raise CommandError(messages.SAME_OBJECT)
    key = args[1]
    value = src_db.get(key, ctx.now_ms)
    if value is None:
        return 0
    deadline = src_db.ttl_ms(key)
    if dst_db.get(key, ctx.now_ms) is not None:
        return 0
    dst_db.set(key, value)
    if deadline is not None:
        dst_db.set_expiry(key, deadline)
    src_db.delete(key)
    ctx.notify(notify.GENERIC, "move_from", key, src_db)
    ctx.notify(notify.GENERIC, "move_to", key, dst_db)
    return 1


# -- iteration --------------------------------------------------------------------------------------------------------
def keys(ctx: Context, args: list[bytes]) -> Any:
    pattern = args[1]
    return [key for key in ctx.db.live_keys(ctx.now_ms) if glob_match(pattern, key)]


def scan(ctx: Context, args: list[bytes]) -> Any:
    cursor = parse_cursor(args[1])
    count, pattern, wanted_type = parse_scan_options(args, 2, allow_type=True)
    next_cursor, page = scan_page(list(ctx.db.data), cursor, count)
    found = []
    for key in page:
        if pattern is not None and not glob_match(pattern, key):
            continue
        value = _lookup(ctx, key)          # expired keys are dropped (and deleted on a primary), as in Redis
        if value is None:
            continue
        if wanted_type is not None and wanted_type.lower() != type_name(value).encode():
            continue
        found.append(key)
    return [b"%d" % next_cursor, found]


def randomkey(ctx: Context, args: list[bytes]) -> Any:
    candidates = list(ctx.db.live_keys(ctx.now_ms))
    if not candidates:
        return None
    return candidates[ctx.rng.randrange(len(candidates))]


def dbsize(ctx: Context, args: list[bytes]) -> Any:
    return ctx.db.size()


def _flush_option(args: list[bytes]) -> None:
    if len(args) == 2 and args[1].upper() in (b"SYNC", b"ASYNC"):
        return
    if len(args) != 1:
        raise CommandError(messages.SYNTAX)


def flushdb(ctx: Context, args: list[bytes]) -> Any:
    _flush_option(args)
    ctx.db.flush()
    return OK


def flushall(ctx: Context, args: list[bytes]) -> Any:
    _flush_option(args)
    for db in ctx.keyspace.dbs:
        db.flush()
    return OK


def swapdb(ctx: Context, args: list[bytes]) -> Any:
    first = parse_int32(args[1], messages.INVALID_FIRST_DB_INDEX)
    second = parse_int32(args[2], messages.INVALID_SECOND_DB_INDEX)
    count = len(ctx.keyspace.dbs)
    if not (0 <= first < count and 0 <= second < count):
        raise CommandError(messages.DB_INDEX_OUT_OF_RANGE)
    if first != second:
        ctx.keyspace.swap(first, second)
    return OK


# -- expiry -----------------------------------------------------------------------------------------------------------
_NX, _XX, _GT, _LT = 1, 2, 4, 8


def _expire_options(args: list[bytes]) -> int:
    flags = 0
    for opt in args[3:]:
        upper = opt.upper()
        if upper == b"NX":
            flags |= _NX
        elif upper == b"XX":
            flags |= _XX
        elif upper == b"GT":
            flags |= _GT
        elif upper == b"LT":
            flags |= _LT
        else:
            raise CommandError(messages.unsupported_option(opt))
    if flags & _NX and flags & (_XX | _GT | _LT):
        raise CommandError(messages.NX_XX_GT_LT)
    if flags & _GT and flags & _LT:
        raise CommandError(messages.GT_AND_LT)
    return flags


def _expire_generic(ctx: Context, args: list[bytes], base_ms: int, seconds: bool, name: str) -> Any:
    flags = _expire_options(args)
    when = parse_int(args[2])
    if seconds:
        if when > INT64_MAX // 1000 or when < -(INT64_MAX // 1000):   # C: LLONG_MIN/1000 truncates toward zero
            raise CommandError(messages.invalid_expire_time(name))
        when *= 1000
    if when > INT64_MAX - base_ms:
        raise CommandError(messages.invalid_expire_time(name))
    when += base_ms
    key = args[1]
    if ctx.db.get(key, ctx.now_ms) is None:
        return 0
    current = ctx.db.ttl_ms(key)
    if flags & _NX and current is not None:
        return 0
    if flags & _XX and current is None:
        return 0
    if flags & _GT and (current is None or when <= current):
        return 0
    if flags & _LT and current is not None and when >= current:
        return 0
    if when <= ctx.now_ms:
        ctx.db.delete(key)
        ctx.notify(notify.GENERIC, "del", key)
    else:
        ctx.db.set_expiry(key, when)
        ctx.notify(notify.GENERIC, "expire", key)
    return 1


def expire(ctx: Context, args: list[bytes]) -> Any:
    return _expire_generic(ctx, args, ctx.now_ms, True, "expire")


def pexpire(ctx: Context, args: list[bytes]) -> Any:
    return _expire_generic(ctx, args, ctx.now_ms, False, "pexpire")


def expireat(ctx: Context, args: list[bytes]) -> Any:
    return _expire_generic(ctx, args, 0, True, "expireat")


def pexpireat(ctx: Context, args: list[bytes]) -> Any:
    return _expire_generic(ctx, args, 0, False, "pexpireat")


def _ttl_generic(ctx: Context, key: bytes, output_ms: bool, absolute: bool) -> int:
    if _lookup(ctx, key) is None:
        return -2
    deadline = ctx.db.ttl_ms(key)
    if deadline is None:
        return -1
    ttl = deadline if absolute else deadline - ctx.now_ms
    ttl = max(ttl, 0)
    return ttl if output_ms else (ttl + 500) // 1000


def ttl(ctx: Context, args: list[bytes]) -> Any:
    return _ttl_generic(ctx, args[1], False, False)


def pttl(ctx: Context, args: list[bytes]) -> Any:
    return _ttl_generic(ctx, args[1], True, False)


def expiretime(ctx: Context, args: list[bytes]) -> Any:
    return _ttl_generic(ctx, args[1], False, True)


def pexpiretime(ctx: Context, args: list[bytes]) -> Any:
    return _ttl_generic(ctx, args[1], True, True)


def persist(ctx: Context, args: list[bytes]) -> Any:
    key = args[1]
    if ctx.db.get(key, ctx.now_ms) is None or ctx.db.ttl_ms(key) is None:
        return 0
    ctx.db.set_expiry(key, None)
    ctx.notify(notify.GENERIC, "persist", key)
    return 1


# -- OBJECT -----------------------------------------------------------------------------------------------------------
OBJECT_HELP = [
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
]


def object_encoding_command(ctx: Context, args: list[bytes]) -> Any:
    value = _lookup(ctx, args[2])
    return None if value is None else object_encoding(value).encode()


def object_freq(ctx: Context, args: list[bytes]) -> Any:
    if _lookup(ctx, args[2]) is None:
        return None
    clock = ctx.keyspace.access          # node-local (memdb/access.py)
    if clock is None or not clock.lfu:
        raise CommandError(messages.OBJECT_FREQ_NO_LFU)
    return clock.frequency(ctx.db.index, args[2], ctx.now_ms)


def object_idletime(ctx: Context, args: list[bytes]) -> Any:
    if _lookup(ctx, args[2]) is None:
        return None
    clock = ctx.keyspace.access          # node-local (memdb/access.py)
    if clock is None:
        # Not tracking (no LRU/LFU maxmemory-policy): the first question starts the LRU clock on this node.
        clock = ctx.keyspace.access = access.AccessClock(lfu=False, now_ms=ctx.now_ms)
    if clock.lfu:
        raise CommandError(messages.OBJECT_IDLETIME_LFU)
    return clock.idle_seconds(ctx.db.index, args[2], ctx.now_ms)


def object_refcount(ctx: Context, args: list[bytes]) -> Any:
    value = _lookup(ctx, args[2])
    if value is None:
        return None
    if isinstance(value, bytes) and string_encoding(value) == "int" and 0 <= int(value) < SHARED_INTEGERS:
        return OBJ_SHARED_REFCOUNT
    return 1


def object_help(ctx: Context, args: list[bytes]) -> Any:
    return [SimpleString(line) for line in OBJECT_HELP]


COMMANDS = [
    command("del", -2, "write", 1, -1, 1, del_, "@keyspace @write @slow"),
    command("unlink", -2, "write fast", 1, -1, 1, del_, "@keyspace @write @fast"),
    command("exists", -2, "readonly fast", 1, -1, 1, exists, "@keyspace @read @fast"),
    command("type", 2, "readonly fast", 1, 1, 1, type_, "@keyspace @read @fast"),
    command("rename", 3, "write", 1, 2, 1, rename, "@keyspace @write @slow"),
    command("renamenx", 3, "write fast", 1, 2, 1, renamenx, "@keyspace @write @fast"),
    command("copy", -3, "write denyoom", 1, 2, 1, copy_, "@keyspace @write @slow"),
    command("move", 3, "write fast", 1, 1, 1, move, "@keyspace @write @fast"),
    command("keys", 2, "readonly", 0, 0, 0, keys, "@keyspace @read @slow @dangerous"),
    command("scan", -2, "readonly", 0, 0, 0, scan, "@keyspace @read @slow"),
    command("randomkey", 1, "readonly", 0, 0, 0, randomkey, "@keyspace @read @slow"),
    command("touch", -2, "readonly fast", 1, -1, 1, touch, "@keyspace @read @fast"),
    command("expire", -3, "write fast", 1, 1, 1, expire, "@keyspace @write @fast"),
    command("pexpire", -3, "write fast", 1, 1, 1, pexpire, "@keyspace @write @fast"),
    command("expireat", -3, "write fast", 1, 1, 1, expireat, "@keyspace @write @fast"),
    command("pexpireat", -3, "write fast", 1, 1, 1, pexpireat, "@keyspace @write @fast"),
    command("ttl", 2, "readonly fast", 1, 1, 1, ttl, "@keyspace @read @fast"),
    command("pttl", 2, "readonly fast", 1, 1, 1, pttl, "@keyspace @read @fast"),
    command("expiretime", 2, "readonly fast", 1, 1, 1, expiretime, "@keyspace @read @fast"),
    command("pexpiretime", 2, "readonly fast", 1, 1, 1, pexpiretime, "@keyspace @read @fast"),
    command("persist", 2, "write fast", 1, 1, 1, persist, "@keyspace @write @fast"),
    command("object", -2, "", acl="@slow", subcommands=(
        command("object|encoding", 3, "readonly", 2, 2, 1, object_encoding_command, "@keyspace @read @slow"),
        command("object|freq", 3, "readonly", 2, 2, 1, object_freq, "@keyspace @read @slow"),
        command("object|idletime", 3, "readonly", 2, 2, 1, object_idletime, "@keyspace @read @slow"),
        command("object|refcount", 3, "readonly", 2, 2, 1, object_refcount, "@keyspace @read @slow"),
        command("object|help", 2, "loading stale", 0, 0, 0, object_help, "@keyspace @slow"),
    )),
    command("dbsize", 1, "readonly fast", 0, 0, 0, dbsize, "@keyspace @read @fast"),
    command("flushdb", -1, "write", 0, 0, 0, flushdb, "@keyspace @write @slow @dangerous"),
    command("flushall", -1, "write", 0, 0, 0, flushall, "@keyspace @write @slow @dangerous"),
    command("swapdb", 3, "write fast", 0, 0, 0, swapdb, "@keyspace @write @fast @dangerous"),
]
