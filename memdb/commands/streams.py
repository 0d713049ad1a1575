"""Stream commands (Redis 7.0 t_stream.c): XADD, XRANGE/XREVRANGE, XLEN, XDEL, XTRIM, XSETID, XREAD, consumer
groups (XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM) and XINFO.

Determinism: every time-dependent decision uses ctx.now_ms (the log entry's for writes): the id XADD assigns to `*`
(max(now_ms, last ms), with Redis's sequence rules), delivery times of pending entries, consumers' seen-time, idle
times. So every node computes the same ids, and pending entries survive a failover as ordinary replicated state.

Approximate trimming (`MAXLEN ~`, `MINID ~`) removes whole nodes exactly as Redis 7.0 does with its default
stream-node-max-entries 100 / stream-node-max-bytes 4096: memdb models the node layout (see stream_type.py), so the
result is the same as Redis's, not merely "approximately" the same, and it is deterministic on every node.

Blocking: XREAD/XREADGROUP with BLOCK return `Blocked(keys, timeout_ms)` when nothing can be served. XREAD's `$`
means "after the last id at the time of the call", so the Blocked carries `rerun_args` with each `$` replaced by that
id; re-running the original args would otherwise wait for the entry after the *then* last one, forever.
"""
from __future__ import annotations

import re
from typing import Any

from memdb import notify
from memdb.commands import messages
from memdb.commands.args import INT64_MAX, is_int, parse_int, parse_timeout_ms
from memdb.commands.declare import command
from memdb.commands.spec import NULL_ARRAY, OK, Blocked, CommandError, Context, Map, SimpleString
from memdb.commands.stream_type import (
    INVALID_ENTRIES_READ, MAX_ID, MIN_ID, STREAM_LISTPACK_MAX_SIZE, STREAM_NODE_MAX_ENTRIES, UINT64_MAX, Consumer,
    Group, Nack, StreamID, StreamValue, decr_id, format_id, incr_id)

STREAM_ID_MAX_CHARS = 127                # streamGenericParseIDOrReply's buffer
XAUTOCLAIM_ATTEMPTS_FACTOR = 10
XAUTOCLAIM_MAX_COUNT = INT64_MAX // 16   # LONG_MAX / max(sizeof(streamID), attempts_factor)
XINFO_FULL_DEFAULT_COUNT = 10

_STRTOULL_RE = re.compile(rb"[ \t\n\v\f\r]*([+-]?)([0-9]+)")


# -- ids ------------------------------------------------------------------------------------------------------------
def _string2ull(text: bytes) -> int | None:
    """util.c string2ull: string2ll if it parses (negatives refused), else C strtoull over the whole string, which
    also takes leading whitespace, a sign (a '-' wraps modulo 2**64) and leading zeros."""
    if is_int(text):
        value = int(text)
        return value if value >= 0 else None
    m = _STRTOULL_RE.fullmatch(text)
    if m is None:
        return None
    value = int(m.group(2))
    if value > UINT64_MAX:
        return None                       # ERANGE
    return (-value) & UINT64_MAX if m.group(1) == b"-" else value


def parse_id(arg: bytes, missing_seq: int = 0, strict: bool = False, seq_star: bool = False) -> tuple[StreamID, bool]:
    """streamGenericParseIDOrReply: (id, seq_given). `-`/`+` are the smallest/largest ids unless strict; `ms`
    alone takes missing_seq; `ms-*` (only if seq_star, for XADD) returns seq_given False."""
    if len(arg) > STREAM_ID_MAX_CHARS:
        raise CommandError(messages.STREAM_INVALID_ID)
    text = arg.split(b"\0", 1)[0]          # the C code works on a NUL-terminated copy
    if strict and text in (b"-", b"+"):
        raise CommandError(messages.STREAM_INVALID_ID)
    if text == b"-":
        return MIN_ID, True
    if text == b"+":
        return MAX_ID, True
    ms_text, dash, seq_text = text.partition(b"-")
    ms = _string2ull(ms_text)
    if ms is None:
        raise CommandError(messages.STREAM_INVALID_ID)
    if not dash:
        return (ms, missing_seq), True
    if seq_star and seq_text == b"*":
        return (ms, 0), False
    seq = _string2ull(seq_text)
    if seq is None:
        raise CommandError(messages.STREAM_INVALID_ID)
    return (ms, seq), True


def parse_strict_id(arg: bytes, missing_seq: int = 0) -> StreamID:
    return parse_id(arg, missing_seq, strict=True)[0]


def _parse_interval(arg: bytes, missing_seq: int) -> tuple[StreamID, bool]:
    """streamParseIntervalIDOrReply: a leading '(' makes the bound exclusive (and the id strict)."""
    if len(arg) > 1 and arg[:1] == b"(":
        return parse_id(arg[1:], missing_seq, strict=True)[0], True
    return parse_id(arg, missing_seq)[0], False


def _range_start(arg: bytes) -> StreamID:
    start, exclusive = _parse_interval(arg, 0)
    if exclusive:
        start = incr_id(start)
        if start is None:
            raise CommandError(messages.STREAM_INVALID_START)
    return start


def _range_end(arg: bytes) -> StreamID:
    end, exclusive = _parse_interval(arg, UINT64_MAX)
    if exclusive:
        end = decr_id(end)
        if end is None:
            raise CommandError(messages.STREAM_INVALID_END)
    return end


# -- helpers ----------------------------------------------------------------------------------------------------------
def _lookup(ctx: Context, key: bytes) -> StreamValue | None:
    value = ctx.db.get(key, ctx.now_ms, ctx.is_replica_read)
    if value is not None and not isinstance(value, StreamValue):
        raise CommandError(messages.WRONGTYPE)
    return value


def _entry(stream_id: StreamID, fields: tuple[bytes, ...]) -> list[Any]:
    return [format_id(stream_id), list(fields)]


def _entries(stream: StreamValue, start: StreamID, end: StreamID, count: int = 0, reverse: bool = False) -> list:
    """streamReplyWithRange without a group: live entries in [start, end], at most count (0 = all)."""
    reply = []
    for stream_id in stream.range(start, end, reverse):
        reply.append(_entry(stream_id, stream.entries[stream_id]))
        if count and len(reply) == count:
            break
    return reply


def _parse_count(arg: bytes) -> int:
    """getLongLongFromObjectOrReply then Redis's usual 'negative means zero'."""
    return max(parse_int(arg), 0)


class _TrimArgs:
    __slots__ = ("maxlen", "minid", "approx", "limit", "no_mkstream", "id", "id_given", "seq_given", "id_pos")

    def __init__(self) -> None:
        self.maxlen: int | None = None
        self.minid: StreamID | None = None
        self.approx = False
        self.limit = 0
        self.no_mkstream = False
        self.id: StreamID = MIN_ID
        self.id_given = False
        self.seq_given = True
        self.id_pos = 0

    @property
    def has_strategy(self) -> bool:
        return self.maxlen is not None or self.minid is not None


def _parse_add_or_trim(args: list[bytes], xadd: bool) -> _TrimArgs:
    """streamParseAddOrTrimArgsOrReply: options from argv[2]; for XADD the first argument that is not an option
    is the id."""
    parsed = _TrimArgs()
    limit_given = False
    i = 2
    argc = len(args)
    while i < argc:
        more = argc - 1 - i
        opt = args[i]
        lowered = opt.lower()
        if xadd and opt == b"*":
            break
        if lowered in (b"maxlen", b"minid") and more:
            if parsed.has_strategy:
                raise CommandError(messages.STREAM_MAXLEN_AND_MINID)
            parsed.approx = False
            following = args[i + 1]
            if more >= 2 and following == b"~":
                parsed.approx = True
                i += 1
            elif more >= 2 and following == b"=":
                i += 1
            if lowered == b"maxlen":
                maxlen = parse_int(args[i + 1])
                if maxlen < 0:
                    raise CommandError(messages.STREAM_MAXLEN_NEGATIVE)
                parsed.maxlen = maxlen
            else:
                parsed.minid = parse_strict_id(args[i + 1])
            i += 1
        elif lowered == b"limit" and more:
            limit = parse_int(args[i + 1])
            if limit < 0:
                raise CommandError(messages.STREAM_LIMIT_NEGATIVE)
            parsed.limit = limit
            limit_given = True
            i += 1
        elif xadd and lowered == b"nomkstream":
            parsed.no_mkstream = True
        elif xadd:
            parsed.id, parsed.seq_given = parse_id(opt, strict=True, seq_star=True)
            parsed.id_given = True
            break
        else:
            raise CommandError(messages.SYNTAX)
        i += 1
    parsed.id_pos = i
    if parsed.limit and not parsed.has_strategy:
        raise CommandError(messages.STREAM_LIMIT_WITHOUT_STRATEGY)
    if not xadd and not parsed.has_strategy:
        raise CommandError(messages.STREAM_XTRIM_WITHOUT_STRATEGY)
    if limit_given:
        if not parsed.approx:
            raise CommandError(messages.STREAM_LIMIT_WITHOUT_APPROX)
    elif parsed.approx:
        parsed.limit = 100 * STREAM_NODE_MAX_ENTRIES    # at most 100 nodes' worth of work
    else:
        parsed.limit = 0
    return parsed


def _trim(stream: StreamValue, parsed: _TrimArgs) -> int:
    if not parsed.has_strategy:
        return 0
    return stream.trim(parsed.maxlen, parsed.minid, parsed.approx, parsed.limit)


# -- XADD, XRANGE, XLEN, XDEL, XTRIM, XSETID ------------------------------------------------------------------------
def xadd(ctx: Context, args: list[bytes]) -> Any:
    parsed = _parse_add_or_trim(args, xadd=True)
    field_pos = parsed.id_pos + 1
    nfields = len(args) - field_pos
    if nfields < 2 or nfields % 2 == 1:
        raise CommandError(messages.wrong_arity("xadd"))
    if parsed.id_given and parsed.seq_given and parsed.id == MIN_ID:
        raise CommandError(messages.STREAM_ID_ZERO)
    key = args[1]
    stream = _lookup(ctx, key)
    if stream is None:
        if parsed.no_mkstream:
            return None
        stream = StreamValue()
        ctx.db.set(key, stream)
    if stream.last_id == MAX_ID:
        raise CommandError(messages.STREAM_EXHAUSTED)
    last = stream.last_id
    if not parsed.id_given:
        # streamNextID with the log entry's clock: never backwards, so every node assigns the same id.
        new_id = (ctx.now_ms, 0) if ctx.now_ms > last[0] else incr_id(last)
    elif parsed.seq_given:
        new_id = parsed.id
    elif parsed.id[0] == last[0]:
        if last[1] == UINT64_MAX:
            # Redis 7.0 fails here without setting errno, so xaddCommand reports the "too large" error.
            raise CommandError(messages.STREAM_ELEMENTS_TOO_LARGE)
        new_id = (last[0], last[1] + 1)
    else:
        new_id = parsed.id
    if new_id <= last:
        raise CommandError(messages.STREAM_ID_TOO_SMALL)
    fields = tuple(bytes(a) for a in args[field_pos:])
    if sum(len(item) for item in fields) > STREAM_LISTPACK_MAX_SIZE:
        raise CommandError(messages.STREAM_ELEMENTS_TOO_LARGE)
    stream.append(new_id, fields)
    ctx.notify(notify.STREAM, "xadd", key)
    if _trim(stream, parsed):
        ctx.notify(notify.STREAM, "xtrim", key)
    ctx.db.signal_modified(key)
    return format_id(new_id)


def _xrange(ctx: Context, args: list[bytes], reverse: bool) -> Any:
    start_arg, end_arg = (args[3], args[2]) if reverse else (args[2], args[3])
    start = _range_start(start_arg)
    end = _range_end(end_arg)
    count = -1
    j = 4
    while j < len(args):
        if args[j].lower() == b"count" and len(args) - j - 1 >= 1:
            count = _parse_count(args[j + 1])
            j += 1
        else:
            raise CommandError(messages.SYNTAX)
        j += 1
    stream = _lookup(ctx, args[1])
    if stream is None:
        return []
    if count == 0:
        return NULL_ARRAY
    return _entries(stream, start, end, max(count, 0), reverse)


def xrange(ctx: Context, args: list[bytes]) -> Any:
    return _xrange(ctx, args, reverse=False)


def xrevrange(ctx: Context, args: list[bytes]) -> Any:
    return _xrange(ctx, args, reverse=True)


def xlen(ctx: Context, args: list[bytes]) -> Any:
    stream = _lookup(ctx, args[1])
    return 0 if stream is None else len(stream)


def xdel(ctx: Context, args: list[bytes]) -> Any:
    key = args[1]
    stream = _lookup(ctx, key)
    if stream is None:
        return 0
    ids = [parse_strict_id(arg) for arg in args[2:]]
    deleted = 0
    for stream_id in ids:
        if stream.delete(stream_id):
            if stream_id > stream.max_deleted_id:
                stream.max_deleted_id = stream_id
            deleted += 1
    if deleted:
        ctx.db.signal_modified(key)
        ctx.notify(notify.STREAM, "xdel", key)
    return deleted


def xtrim(ctx: Context, args: list[bytes]) -> Any:
    parsed = _parse_add_or_trim(args, xadd=False)
    key = args[1]
    stream = _lookup(ctx, key)
    if stream is None:
        return 0
    deleted = _trim(stream, parsed)
    if deleted:
        ctx.db.signal_modified(key)
        ctx.notify(notify.STREAM, "xtrim", key)
    return deleted


def xsetid(ctx: Context, args: list[bytes]) -> Any:
    new_id = parse_strict_id(args[2])
    entries_added = -1
    max_deleted = MIN_ID
    i = 3
    while i < len(args):
        more = len(args) - 1 - i
        opt = args[i].lower()
        if opt == b"entriesadded" and more:
            entries_added = parse_int(args[i + 1])
            if entries_added < 0:
                raise CommandError(messages.XSETID_ENTRIES_ADDED_NEGATIVE)
            i += 2
        elif opt == b"maxdeletedid" and more:
            max_deleted = parse_strict_id(args[i + 1])
            if new_id < max_deleted:
                raise CommandError(messages.XSETID_SMALLER_THAN_MAX_DELETED_ARG)
            i += 2
        else:
            raise CommandError(messages.SYNTAX)
    key = args[1]
    stream = _lookup(ctx, key)
    if stream is None:
        raise CommandError(messages.NO_SUCH_KEY)
    if len(stream):
        if new_id < stream.last_valid_id():
            raise CommandError(messages.XSETID_SMALLER_THAN_TOP)
        if entries_added != -1 and len(stream) > entries_added:
            raise CommandError(messages.XSETID_ENTRIES_ADDED_SMALL)
    stream.last_id = new_id
    if entries_added != -1:
        stream.entries_added = entries_added
    if max_deleted != MIN_ID:
        stream.max_deleted_id = max_deleted
    ctx.db.signal_modified(key)
    ctx.notify(notify.STREAM, "xsetid", key)
    return OK


# -- XREAD / XREADGROUP -----------------------------------------------------------------------------------------------
def _serve_group(ctx: Context, stream: StreamValue, group: Group, consumer, start: StreamID, count: int,
                 noack: bool) -> list:
    """streamReplyWithRange with a group: new entries advance the group's last id and read counter and (unless
    NOACK) become pending for this consumer, taken over from whoever had them."""
    reply = []
    now = ctx.now_ms
    for stream_id in stream.range(start, MAX_ID):
        if stream_id > group.last_id:
            if group.entries_read != INVALID_ENTRIES_READ and not stream.range_has_tombstones(stream_id):
                group.entries_read += 1
            elif stream.entries_added:
                group.entries_read = stream.estimate_distance(stream_id)
            group.last_id = stream_id
        reply.append(_entry(stream_id, stream.entries[stream_id]))
        if not noack:
            nack = group.pel.get(stream_id)
            if nack is None:
                nack = Nack(now, consumer)
                group.pel[stream_id] = nack
            else:
                del nack.consumer.pel[stream_id]
                nack.consumer = consumer
                nack.delivery_time = now
                nack.delivery_count = 1
            consumer.pel[stream_id] = nack
        if count and len(reply) == count:
            break
    return reply


def _serve_history(ctx: Context, stream: StreamValue, consumer, start: StreamID, count: int) -> list:
    """streamReplyWithRangeFromConsumerPEL: the consumer's own pending entries from start; an entry deleted from
    the stream since is reported as [id, nil]."""
    reply = []
    for stream_id in consumer.pel.irange(start, None):
        if count and len(reply) >= count:
            break
        fields = stream.entries.get(stream_id)
        if fields is None:
            reply.append([format_id(stream_id), NULL_ARRAY])
        else:
            reply.append(_entry(stream_id, fields))
            nack = consumer.pel[stream_id]
            nack.delivery_time = ctx.now_ms
            nack.delivery_count += 1
    return reply


def _xread(ctx: Context, args: list[bytes], xreadgroup: bool) -> Any:
    timeout_ms: int | None = -1          # -1: no BLOCK option
    count = 0
    streams_arg = 0
    streams_count = 0
    noack = False
    group_name: bytes | None = None
    consumer_name = b""
    argc = len(args)
    i = 1
    while i < argc:
        more = argc - i - 1
        opt = args[i].lower()
        if opt == b"block" and more:
            i += 1
            timeout_ms = parse_timeout_ms(args[i], seconds=False)
        elif opt == b"count" and more:
            i += 1
            count = _parse_count(args[i])
        elif opt == b"streams" and more:
            streams_arg = i + 1
            streams_count = argc - streams_arg
            if streams_count % 2:
                raise CommandError(messages.XREAD_UNBALANCED)
            streams_count //= 2
            break
        elif opt == b"group" and more >= 2:
            if not xreadgroup:
                raise CommandError(messages.XREAD_GROUP_OPTION)
            group_name, consumer_name = args[i + 1], args[i + 2]
            i += 2
        elif opt == b"noack":
            if not xreadgroup:
                raise CommandError(messages.XREAD_NOACK_OPTION)
            noack = True
        else:
            raise CommandError(messages.SYNTAX)
        i += 1
    if streams_arg == 0:
        raise CommandError(messages.SYNTAX)
    if xreadgroup and group_name is None:
        raise CommandError(messages.XREADGROUP_MISSING_GROUP)

    keys = args[streams_arg:streams_arg + streams_count]
    ids: list[StreamID] = []
    groups: list[Group] = []
    rerun_args: list[bytes] | None = None
    for index, key in enumerate(keys):
        id_pos = streams_arg + streams_count + index
        id_arg = args[id_pos]
        stream = _lookup(ctx, key)
        if group_name is not None:
            group = stream.groups.get(group_name) if stream is not None else None
            if group is None:
                raise CommandError(messages.nogroup_key_or_group(
                    key, group_name, " in XREADGROUP with GROUP option"))
            groups.append(group)
        if id_arg == b"$":
            if xreadgroup:
                raise CommandError(messages.XREADGROUP_DOLLAR)
            resolved = stream.last_id if stream is not None else MIN_ID
            ids.append(resolved)
            if rerun_args is None:
                rerun_args = list(args)
            rerun_args[id_pos] = format_id(resolved)
        elif id_arg == b">":
            if not xreadgroup:
                raise CommandError(messages.XREAD_GREATER_ID)
            ids.append(MAX_ID)       # as Redis: the largest id stands for ">"
        else:
            ids.append(parse_strict_id(id_arg))

    served = []
    for index, key in enumerate(keys):
        stream = _lookup(ctx, key)
        if stream is None:
            continue
        after = ids[index]
        serve = history = False
        if groups:
            if after != MAX_ID:
                serve = history = True
            elif len(stream) and stream.last_valid_id() > groups[index].last_id:
                serve = True
                after = groups[index].last_id
        elif len(stream) and stream.last_valid_id() > after:
            serve = True
        if not serve:
            continue
        start = incr_id(after) or after
        if groups:
            group = groups[index]
            consumer = _serving_consumer(ctx, key, group, consumer_name)
            if history:
                reply = _serve_history(ctx, stream, consumer, start, count)
            else:
                reply = _serve_group(ctx, stream, group, consumer, start, count, noack)
            ctx.db.signal_modified(key)
        else:
            reply = _entries(stream, start, MAX_ID, count)
        served.append((key, reply))

    if served:
        if ctx.resp == 2:
            return [[key, reply] for key, reply in served]
        return Map(served)
    if timeout_ms != -1:
        return Blocked(tuple(keys), timeout_ms or None, NULL_ARRAY, rerun_args)
    return NULL_ARRAY


def xread(ctx: Context, args: list[bytes]) -> Any:
    return _xread(ctx, args, xreadgroup=False)


def xreadgroup(ctx: Context, args: list[bytes]) -> Any:
    return _xread(ctx, args, xreadgroup=True)


def xread_keys(args: list[bytes]) -> list[int]:
    """xreadGetKeys: skip BLOCK/COUNT/GROUP/NOACK and their arguments up to STREAMS; the keys are the first half
    of what follows it (none on a syntax error)."""
    i = 1
    while i < len(args):
        opt = args[i].lower()
        if opt in (b"block", b"count"):
            i += 2
        elif opt == b"group":
            i += 3
        elif opt == b"noack":
            i += 1
        elif opt == b"streams":
            rest = len(args) - i - 1
            if rest <= 0 or rest % 2:
                return []
            return list(range(i + 1, i + 1 + rest // 2))
        else:
            break
    return []


# -- consumer groups ------------------------------------------------------------------------------------------------
def _group_or_error(ctx: Context, key: bytes, group_name: bytes) -> tuple[StreamValue, Group]:
    stream = _lookup(ctx, key)
    group = stream.groups.get(group_name) if stream is not None else None
    if group is None:
        raise CommandError(messages.nogroup_key_or_group(key, group_name))
    return stream, group


def _serving_consumer(ctx: Context, key: bytes, group: Group, name: bytes) -> Consumer:
    """The consumer that XREADGROUP serves or XCLAIM/XAUTOCLAIM claim for, its seen-time refreshed, or a new one
    (with the "xgroup-createconsumer" event). Redis 7.0 does this only once something is served or claimed."""
    consumer = group.consumers.get(name)
    if consumer is None:
        consumer = group.create_consumer(name, ctx.now_ms)
        ctx.notify(notify.STREAM, "xgroup-createconsumer", key)
    else:
        consumer.seen_time = ctx.now_ms
    return consumer


def _hand_over(nack: Nack, stream_id: StreamID, consumer: Consumer) -> None:
    """A claimed pending entry moves to consumer's PEL (out of its previous owner's, if it had one)."""
    if nack.consumer is consumer:
        return
    if nack.consumer is not None:
        del nack.consumer.pel[stream_id]
    consumer.pel[stream_id] = nack
    nack.consumer = consumer


XGROUP_HELP = [
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
]

XINFO_HELP = [
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
]


def xgroup_help(ctx: Context, args: list[bytes]) -> Any:
    return [SimpleString(line) for line in XGROUP_HELP]


def xgroup(ctx: Context, args: list[bytes]) -> Any:
    """xgroupCommand: one function for CREATE/SETID/DESTROY/CREATECONSUMER/DELCONSUMER, checking in its order."""
    sub = args[1].lower()
    argc = len(args)
    mkstream = False
    entries_read = INVALID_ENTRIES_READ
    i = 5
    while i < argc:
        opt = args[i].lower()
        if sub == b"create" and opt == b"mkstream":
            mkstream = True
            i += 1
        elif sub in (b"create", b"setid") and opt == b"entriesread" and i + 1 < argc:
            entries_read = parse_int(args[i + 1])
            if entries_read < 0 and entries_read != INVALID_ENTRIES_READ:
                raise CommandError(messages.XGROUP_ENTRIESREAD)
            i += 2
        else:
            raise CommandError(messages.subcommand_syntax(args[1], args[0]))
    key, group_name = args[2], args[3]
    stream = _lookup(ctx, key)
    group = None
    if not mkstream:
        if stream is None:
            raise CommandError(messages.XGROUP_KEY_MISSING)
        group = stream.groups.get(group_name)
        if group is None and sub in (b"setid", b"createconsumer", b"delconsumer"):
            raise CommandError(messages.nogroup_for_key(group_name, key))

    if sub == b"create" and 5 <= argc <= 8:
        if args[4] == b"$":
            last_id = stream.last_id if stream is not None else MIN_ID
        else:
            last_id = parse_strict_id(args[4])
        if stream is None:
            stream = StreamValue()
            ctx.db.set(key, stream)
        if group_name in stream.groups:
            raise CommandError(messages.BUSYGROUP)
        stream.groups[group_name] = Group(last_id, entries_read)
        ctx.db.signal_modified(key)
        ctx.notify(notify.STREAM, "xgroup-create", key)
        return OK
    if sub == b"setid" and argc in (5, 7):
        last_id = stream.last_id if args[4] == b"$" else parse_id(args[4])[0]
        group.last_id = last_id
        group.entries_read = entries_read
        ctx.db.signal_modified(key)
        ctx.notify(notify.STREAM, "xgroup-setid", key)
        return OK
    if sub == b"destroy" and argc == 4:
        if group is None:
            return 0
        del stream.groups[group_name]
        ctx.db.signal_modified(key)     # wakes blocked XREADGROUPs, which then fail with NOGROUP
        ctx.notify(notify.STREAM, "xgroup-destroy", key)
        return 1
    if sub == b"createconsumer" and argc == 5:
        if args[4] in group.consumers:
            return 0
        group.create_consumer(args[4], ctx.now_ms)
        ctx.db.signal_modified(key)
        ctx.notify(notify.STREAM, "xgroup-createconsumer", key)
        return 1
    if sub == b"delconsumer" and argc == 5:
        consumer = group.consumers.get(args[4])
        if consumer is None:
            return 0
        pending = group.delete_consumer(consumer)
        ctx.db.signal_modified(key)
        ctx.notify(notify.STREAM, "xgroup-delconsumer", key)
        return pending
    raise CommandError(messages.subcommand_syntax(args[1], args[0]))


def xack(ctx: Context, args: list[bytes]) -> Any:
    key = args[1]
    stream = _lookup(ctx, key)
    group = stream.groups.get(args[2]) if stream is not None else None
    if group is None:
        return 0
    ids = [parse_strict_id(arg) for arg in args[3:]]     # all or nothing: parse every id first
    acknowledged = 0
    for stream_id in ids:
        nack = group.pel.pop(stream_id, None)
        if nack is not None:
            del nack.consumer.pel[stream_id]
            acknowledged += 1
    if acknowledged:
        ctx.db.signal_modified(key)
    return acknowledged


def xpending(ctx: Context, args: list[bytes]) -> Any:
    argc = len(args)
    if argc != 3 and not 6 <= argc <= 9:
        raise CommandError(messages.SYNTAX)
    start = end = MIN_ID
    count = 0
    min_idle_ms = 0
    consumer_name = None
    if argc >= 6:
        first = 3
        if args[3].lower() == b"idle":
            min_idle_ms = parse_int(args[4])
            if argc < 8:
                raise CommandError(messages.SYNTAX)
            first += 2
        count = _parse_count(args[first + 2])
        start = _range_start(args[first])
        end = _range_end(args[first + 1])
        if first + 3 < argc:
            consumer_name = args[first + 3]
    stream, group = _group_or_error(ctx, args[1], args[2])
    if argc == 3:
        if not group.pel:
            return [0, None, None, NULL_ARRAY]
        consumers = [[c.name, b"%d" % len(c.pel)] for c in group.consumers.values() if c.pel]
        return [len(group.pel), format_id(group.pel.keys()[0]), format_id(group.pel.keys()[-1]), consumers]
    if consumer_name is not None:
        consumer = group.consumers.get(consumer_name)
        if consumer is None:
            return []
        pel = consumer.pel
    else:
        pel = group.pel
    now = ctx.now_ms
    reply = []
    if count and start <= end:
        for stream_id in pel.irange(start, end):
            nack = pel[stream_id]
            idle_ms = now - nack.delivery_time
            if min_idle_ms and idle_ms < min_idle_ms:
                continue
            reply.append([format_id(stream_id), nack.consumer.name, max(idle_ms, 0), nack.delivery_count])
            if len(reply) == count:
                break
    return reply


def xclaim(ctx: Context, args: list[bytes]) -> Any:
    key = args[1]
    stream, group = _group_or_error(ctx, key, args[2])
    min_idle_ms = max(parse_int(args[4], messages.XCLAIM_MIN_IDLE), 0)
    ids: list[StreamID] = []
    j = 5
    while j < len(args):
        try:
            ids.append(parse_strict_id(args[j]))
        except CommandError:
            break                       # perhaps the options start here
        j += 1
    now = ctx.now_ms
    delivery_time = -1
    retry_count = -1
    force = justid = False
    last_id = MIN_ID
    while j < len(args):
        more = len(args) - 1 - j
        opt = args[j].lower()
        if opt == b"force":
            force = True
        elif opt == b"justid":
            justid = True
        elif opt == b"idle" and more:
            j += 1
            delivery_time = now - parse_int(args[j], messages.XCLAIM_IDLE)
        elif opt == b"time" and more:
            j += 1
            delivery_time = parse_int(args[j], messages.XCLAIM_TIME)
        elif opt == b"retrycount" and more:
            j += 1
            retry_count = parse_int(args[j], messages.XCLAIM_RETRYCOUNT)
        elif opt == b"lastid" and more:
            j += 1
            last_id = parse_strict_id(args[j])
        else:
            raise CommandError(messages.xclaim_unrecognized_option(args[j]))
        j += 1
    changed = False
    if last_id > group.last_id:
        group.last_id = last_id
        changed = True
    if delivery_time == -1 or delivery_time < 0 or delivery_time > now:
        delivery_time = now      # bogus (or absent) times become "now", as Redis: never an error
    consumer = None
    reply = []
    for stream_id in ids:
        nack = group.pel.get(stream_id)
        if stream_id not in stream.entries:
            if nack is not None:         # the entry is gone: drop it from the PEL
                del group.pel[stream_id]
                del nack.consumer.pel[stream_id]
                changed = True
            continue
        if force and nack is None:
            nack = Nack(now, None)
            group.pel[stream_id] = nack
            changed = True
        if nack is None:
            continue
        if nack.consumer is not None and min_idle_ms and now - nack.delivery_time < min_idle_ms:
            continue
        if consumer is None:
            consumer = _serving_consumer(ctx, key, group, args[3])
        _hand_over(nack, stream_id, consumer)
        nack.delivery_time = delivery_time
        if retry_count >= 0:
            nack.delivery_count = retry_count
        elif not justid:
            nack.delivery_count += 1
        reply.append(format_id(stream_id) if justid else _entry(stream_id, stream.entries[stream_id]))
        changed = True
    if changed:
        ctx.db.signal_modified(key)
    return reply


def xautoclaim(ctx: Context, args: list[bytes]) -> Any:
    min_idle_ms = max(parse_int(args[4], messages.XAUTOCLAIM_MIN_IDLE), 0)
    start = _range_start(args[5])
    count = 100
    justid = False
    j = 6
    while j < len(args):
        more = len(args) - 1 - j
        opt = args[j].lower()
        if opt == b"count" and more:
            if not is_int(args[j + 1]) or not 1 <= int(args[j + 1]) <= XAUTOCLAIM_MAX_COUNT:
                raise CommandError(messages.XAUTOCLAIM_COUNT)
            count = int(args[j + 1])
            j += 1
        elif opt == b"justid":
            justid = True
        else:
            raise CommandError(messages.SYNTAX)
        j += 1
    key = args[1]
    stream, group = _group_or_error(ctx, key, args[2])
    now = ctx.now_ms
    attempts = count * XAUTOCLAIM_ATTEMPTS_FACTOR
    consumer = None
    claimed: list[Any] = []
    deleted: list[bytes] = []
    pel_ids = group.pel.irange(start, None)
    cursor = MIN_ID
    while True:
        if not attempts:
            break
        attempts -= 1
        if not count:
            break
        stream_id = next(pel_ids, None)
        if stream_id is None:
            break
        nack = group.pel[stream_id]
        if stream_id not in stream.entries:
            # The entry is gone: drop it from the PEL and report it; it counts towards COUNT.
            del group.pel[stream_id]
            del nack.consumer.pel[stream_id]
            deleted.append(format_id(stream_id))
            pel_ids = group.pel.irange(stream_id, None)
            count -= 1
            continue
        if min_idle_ms and now - nack.delivery_time < min_idle_ms:
            continue
        if consumer is None:
            consumer = _serving_consumer(ctx, key, group, args[3])
        _hand_over(nack, stream_id, consumer)
        nack.delivery_time = now
        if not justid:
            nack.delivery_count += 1
        claimed.append(format_id(stream_id) if justid else _entry(stream_id, stream.entries[stream_id]))
        count -= 1
    following = next(pel_ids, None)       # the cursor: the next PEL entry, 0-0 at the end
    if following is not None:
        cursor = following
    if claimed or deleted:
        ctx.db.signal_modified(key)
    return [format_id(cursor), claimed, deleted]


# -- XINFO ------------------------------------------------------------------------------------------------------------
def xinfo_help(ctx: Context, args: list[bytes]) -> Any:
    return [SimpleString(line) for line in XINFO_HELP]


def _xinfo_stream_value(ctx: Context, key: bytes) -> StreamValue:
    stream = _lookup(ctx, key)
    if stream is None:
        raise CommandError(messages.NO_SUCH_KEY)
    return stream


def xinfo_consumers(ctx: Context, args: list[bytes]) -> Any:
    stream = _xinfo_stream_value(ctx, args[2])
    group = stream.groups.get(args[3])
    if group is None:
        raise CommandError(messages.nogroup_for_key(args[3], args[2]))
    now = ctx.now_ms
    return [Map([(b"name", consumer.name), (b"pending", len(consumer.pel)),
                 (b"idle", max(now - consumer.seen_time, 0))])
            for consumer in group.consumers.values()]


def xinfo_groups(ctx: Context, args: list[bytes]) -> Any:
    stream = _xinfo_stream_value(ctx, args[2])
    return [Map([(b"name", name), (b"consumers", len(group.consumers)), (b"pending", len(group.pel)),
                 (b"last-delivered-id", format_id(group.last_id)),
                 (b"entries-read", None if group.entries_read == INVALID_ENTRIES_READ else group.entries_read),
                 (b"lag", stream.group_lag(group))])
            for name, group in stream.groups.items()]


def xinfo_stream(ctx: Context, args: list[bytes]) -> Any:
    stream = _xinfo_stream_value(ctx, args[2])
    options = args[3:]
    full = bool(options)
    count = XINFO_FULL_DEFAULT_COUNT
    if options:
        if len(options) not in (1, 3) or options[0].lower() != b"full":
            raise CommandError(messages.subcommand_syntax(args[1], args[0]))
        if len(options) == 3:
            if options[1].lower() != b"count":
                raise CommandError(messages.subcommand_syntax(args[1], args[0]))
            count = parse_int(options[2])
            if count < 0:
                count = XINFO_FULL_DEFAULT_COUNT
    items: list[tuple[bytes, Any]] = [
        (b"length", len(stream)),
        (b"radix-tree-keys", stream.node_count()),
        (b"radix-tree-nodes", stream.rax_node_count()),
        (b"last-generated-id", format_id(stream.last_id)),
        (b"max-deleted-entry-id", format_id(stream.max_deleted_id)),
        (b"entries-added", stream.entries_added),
        (b"recorded-first-entry-id", format_id(stream.first_id)),
    ]
    if not full:
        first = _entries(stream, MIN_ID, MAX_ID, 1)
        last = _entries(stream, MIN_ID, MAX_ID, 1, reverse=True)
        items += [(b"groups", len(stream.groups)),
                  (b"first-entry", first[0] if first else None),
                  (b"last-entry", last[0] if last else None)]
        return Map(items)
    groups = []
    for name, group in stream.groups.items():
        pending = [[format_id(stream_id), nack.consumer.name, nack.delivery_time, nack.delivery_count]
                   for stream_id, nack in _first(group.pel.items(), count)]
        consumers = []
        for consumer in group.consumers.values():
            consumer_pending = [[format_id(stream_id), nack.delivery_time, nack.delivery_count]
                                for stream_id, nack in _first(consumer.pel.items(), count)]
            consumers.append(Map([(b"name", consumer.name), (b"seen-time", consumer.seen_time),
                                  (b"pel-count", len(consumer.pel)), (b"pending", consumer_pending)]))
        groups.append(Map([
            (b"name", name), (b"last-delivered-id", format_id(group.last_id)),
            (b"entries-read", None if group.entries_read == INVALID_ENTRIES_READ else group.entries_read),
            (b"lag", stream.group_lag(group)), (b"pel-count", len(group.pel)), (b"pending", pending),
            (b"consumers", consumers)]))
    items += [(b"entries", _entries(stream, MIN_ID, MAX_ID, count)), (b"groups", groups)]
    return Map(items)


def _first(items, count: int) -> list:
    """At most count items (0 = all)."""
    out = []
    for item in items:
        if count and len(out) >= count:
            break
        out.append(item)
    return out


COMMANDS = [
    command("xadd", -5, "write denyoom fast", 1, 1, 1, xadd, "@write @stream @fast"),
    command("xrange", -4, "readonly", 1, 1, 1, xrange, "@read @stream @slow"),
    command("xrevrange", -4, "readonly", 1, 1, 1, xrevrange, "@read @stream @slow"),
    command("xlen", 2, "readonly fast", 1, 1, 1, xlen, "@read @stream @fast"),
    command("xdel", -3, "write fast", 1, 1, 1, xdel, "@write @stream @fast"),
    command("xtrim", -4, "write", 1, 1, 1, xtrim, "@write @stream @slow"),
    command("xsetid", -3, "write denyoom fast", 1, 1, 1, xsetid, "@write @stream @fast"),
    command("xread", -4, "readonly blocking movablekeys", 0, 0, 0, xread, "@read @stream @slow @blocking",
            key_finder=xread_keys),
    command("xreadgroup", -7, "write blocking movablekeys", 0, 0, 0, xreadgroup,
            "@write @stream @slow @blocking", key_finder=xread_keys),
    command("xack", -4, "write fast", 1, 1, 1, xack, "@write @stream @fast"),
    command("xpending", -3, "readonly", 1, 1, 1, xpending, "@read @stream @slow"),
    command("xclaim", -6, "write fast", 1, 1, 1, xclaim, "@write @stream @fast"),
    command("xautoclaim", -6, "write fast", 1, 1, 1, xautoclaim, "@write @stream @fast"),
    command("xgroup", -2, "", acl="@slow", subcommands=(
        command("xgroup|create", -5, "write denyoom", 2, 2, 1, xgroup, "@write @stream @slow"),
        command("xgroup|setid", -5, "write", 2, 2, 1, xgroup, "@write @stream @slow"),
        command("xgroup|destroy", 4, "write", 2, 2, 1, xgroup, "@write @stream @slow"),
        command("xgroup|createconsumer", 5, "write denyoom", 2, 2, 1, xgroup, "@write @stream @slow"),
        command("xgroup|delconsumer", 5, "write", 2, 2, 1, xgroup, "@write @stream @slow"),
        command("xgroup|help", 2, "loading stale", 0, 0, 0, xgroup_help, "@stream @slow"),
    )),
    command("xinfo", -2, "", acl="@slow", subcommands=(
        command("xinfo|consumers", 4, "readonly", 2, 2, 1, xinfo_consumers, "@read @stream @slow"),
        command("xinfo|groups", 3, "readonly", 2, 2, 1, xinfo_groups, "@read @stream @slow"),
        command("xinfo|stream", -3, "readonly", 2, 2, 1, xinfo_stream, "@read @stream @slow"),
        command("xinfo|help", 2, "loading stale", 0, 0, 0, xinfo_help, "@stream @slow"),
    )),
]
