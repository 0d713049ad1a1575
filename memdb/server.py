"""The RESP server: asyncio (uvloop) Protocol per connection, in front of a CommandExecutor (the node).

Theory of operation
-------------------
One `ClientConnection` per socket, built on asyncio.Protocol callbacks rather than streams (no task and no
await per read). `data_received` feeds the connection's `RequestParser`; the parsed requests join the
connection's `waiting` queue and `_pump` executes as many as the ordering rule allows:

  * A command runs at once when nothing of this connection is in flight.
  * While replies are in flight, a *pipelinable write* (Flag.WRITE, not BLOCKING) may still be handed to the
    executor: its log entry queues behind the earlier ones, so writes of one connection group-commit together
    and still apply in order. At most `max_inflight` of them per connection.
  * Anything else (a read, a connection command like SELECT or CLIENT REPLY, a blocking command, EXEC...) waits
    until every in-flight command of this connection has completed: read-your-writes (DESIGN.md "The write path").
    So does every command behind one of those: an in-flight non-write is a barrier.

`executor.execute(session, args)` returns a reply value (reads) or an awaitable (writes: resolved after commit and
apply). Replies go out strictly in request order through the `replies` deque: a ready reply is encoded at once (to
`out` if nothing is ahead of it, else queued as bytes), an awaitable gets a `_Pending` slot whose done-callback
drains every ready reply at the head of the queue. Futures get a callback, not a task (task churn is a measured
cost); only a bare coroutine is wrapped in a task, owned by the connection and cancelled when it closes.

Everything encoded during one callback is written with a single `transport.write` (one syscall per pipelined
batch). Limits: requests parsed but not yet run (`max_waiting`: reading pauses above it), in-flight commands
per connection (`max_inflight`), the query buffer (`max_query_buffer`: the connection is closed, as Redis does
past client-query-buffer-limit), bulk length and multibulk count (parser), clients (`maxclients`). When the
client does not read its replies, the transport's write buffer fills, `pause_writing` arrives and reading stops.

Connection and server commands (PING, HELLO, SELECT, CLIENT, CONFIG, INFO, COMMAND...; declared in
memdb/commands/connection.py) are answered here by `ConnectionCommands` and never reach the executor.
After a protocol error, the requests parsed before it are executed, the error is replied and the connection is
closed once every earlier reply is out; the same close-after-reply path serves QUIT and CLIENT KILL of oneself.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import functools
import logging
import os
import platform
import socket
import ssl
import sys
import time
from typing import Any, Awaitable, Callable, Iterable, Mapping, Protocol

from memdb import access
from memdb.commands import connection as connection_table
from memdb.commands import pubsub_cmds
from memdb.commands import messages
from memdb.commands.spec import (Bool, CommandError, CommandSpec, Double, Flag, Map, NullArray, SetReply,
                                 SimpleString, Verbatim, OK, PONG)
from memdb.config import Config, ConfigError, glob_to_regex
from memdb.keyspace import NUM_DATABASES
from memdb.pubsub import PubSub
from memdb.protocol import ProtocolError, RequestParser, encode_error, encode_into
from memdb.runtime import retrieve_exception, tune_gc
from memdb.session import ReplyMode, Session

log = logging.getLogger("memdb.server")

REDIS_VERSION = "7.0.15"           # the Redis we are compatible with (INFO, HELLO)
MEMDB_VERSION = "0.1.0"


class CommandExecutor(Protocol):
    """What the server needs from the node (memdb/node.py implements it)."""

    def execute(self, session: Session, args: list[bytes]) -> Any | Awaitable[Any]:
        """A reply value at once (reads), or an awaitable resolved with the reply once the write has committed
        and applied. May raise CommandError."""

    def info_sections(self) -> dict[str, list[tuple[str, Any]]]:
        """Node-specific INFO sections (replication, txlog, keyspace...): section name -> (field, value) pairs."""

    # Optional, looked up with getattr:
    #   session_closed(session) -> None   the connection is gone (unpark its blocked command, drop its MULTI...)
    #   session_reset(session) -> None    RESET (discard MULTI, UNWATCH...)
    #   REPLICATED_CONFIG: tuple[str, ...], replicated_config(name) -> str, set_replicated_config(dict) -> Future
    #                                     CONFIG parameters that are replicated shard state (notify-keyspace-events)
    #   keyspace                          OBJECT IDLETIME/FREQ's access clock follows maxmemory-policy


@dataclasses.dataclass(frozen=True, slots=True)
class ServerLimits:
    max_inflight: int = 1024                 # commands of one connection handed to the executor, not yet replied
    max_waiting: int = 16 * 1024             # parsed requests of one connection not yet executed: pause reading
    max_query_buffer: int = 1024 ** 3        # bytes of one incomplete request (client-query-buffer-limit)


# Replies that are plain values (checked first: the common case), everything else may be an awaitable.
# A RESP2 connection with subscriptions may run only these (Redis's "subscribed mode").
_SUBSCRIBED_MODE_COMMANDS = frozenset({b"subscribe", b"unsubscribe", b"psubscribe", b"punsubscribe", b"ssubscribe",
                                       b"sunsubscribe", b"ping", b"quit", b"reset"})

_PLAIN_REPLY_TYPES = frozenset({bytes, int, SimpleString, list, type(None), CommandError, tuple, Double, Map,
                                SetReply, Bool, Verbatim, NullArray, str, float, bool, dict})
_NO_REPLY = object()                                   # CLIENT REPLY OFF|SKIP: no reply, not even suppressed
_REPLY_ON_ACK = SimpleString("OK")                     # CLIENT REPLY ON: replied even though the mode was OFF
_RESET = SimpleString("RESET")
_MAX_CLIENTS_ERROR = b"-ERR max number of clients reached\r\n"
_UNKNOWN = object()
_ON, _SKIP = ReplyMode.ON, ReplyMode.SKIP


class _Pending:
    """A reply slot waiting for an awaitable; called back by it when done."""
    __slots__ = ("conn", "future", "suppress", "barrier")

    def __init__(self, conn: "ClientConnection", future: asyncio.Future, suppress: bool, barrier: bool):
        self.conn = conn
        self.future = future
        self.suppress = suppress
        self.barrier = barrier

    def __call__(self, future: asyncio.Future) -> None:
        self.conn._completed(self)


class ClientConnection(asyncio.Protocol):
    def __init__(self, server: "RespServer"):
        self.server = server
        self.executor = server.executor
        self.transport: asyncio.Transport | None = None
        self.session: Session = None  # type: ignore[assignment]   # set in connection_made
        self.parser = RequestParser(max_bulk_len=server.config["proto-max-bulk-len"],
                                    max_multibulk_len=server.max_multibulk_len)
        self._out: list[bytes] = []
        self._replies: collections.deque = collections.deque()
        self._waiting: collections.deque = collections.deque()
        self._inflight = 0
        self._barriers = 0
        self._closing = False                 # execute nothing more (QUIT, protocol error): close after replies
        self._eof = False                     # the client half-closed: close once everything is replied
        self._closed = False
        self._reading_paused = False
        self._writing_paused = False
        self._tasks: set[asyncio.Task] = set()
        self.subscriptions: dict[tuple[str, bytes], None] = {}   # pub/sub: (kind, channel or pattern)

    # -- asyncio callbacks ---------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        server = self.server
        if len(server.clients) >= server.config["maxclients"]:
            server.stats.rejected_connections += 1
            transport.write(_MAX_CLIENTS_ERROR)  # type: ignore[attr-defined]
            transport.close()
            self._closed = True
            return
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.session = Session(server.next_client_id(), _format_addr(transport.get_extra_info("sockname")),
                               _format_addr(transport.get_extra_info("peername")))
        server.register(self)

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self.session.last_command_s = time.monotonic()
        parser = self.parser
        requests = parser.feed(data)
        if parser.error is not None:
            self._waiting.extend(requests)
            self._waiting.append(parser.error)
        elif parser.buffered_len > self.server.limits.max_query_buffer:
            log.warning("closing client %s that reached max query buffer length", self.session.raddr)
            self.kill()
            return
        elif len(requests) == 1 and not self._waiting and not self._inflight:
            self._run(requests[0])          # the common case (no pipelining): nothing it must wait behind
        else:
            self._waiting.extend(requests)
        if self._waiting:
            self._pump()
        self._flush()
        if len(self._waiting) > self.server.limits.max_waiting:
            self._update_reading()

    def eof_received(self) -> bool | None:
        # The client will send no more; still run what it sent and write the replies (a write may be waiting
        # for its commit), then close. Returning True keeps the transport open for that.
        self._eof = True
        self._flush()
        return True

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._update_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.session is None or (self._closed and self.transport is None):
            return
        self._closed = True
        self._closing = True
        self.transport = None
        self._waiting.clear()
        self._replies.clear()
        self._out.clear()
        for task in self._tasks:
            task.cancel()
        self.server.unregister(self)
        self.server.pubsub.drop(self)
        hook = getattr(self.executor, "session_closed", None)
        if hook is not None:
            hook(self.session)

    # -- execution -----------------------------------------------------------------------------------------------
    def _pump(self) -> None:
        """Run waiting requests, in order, as far as the ordering rule allows (see the module docstring)."""
        waiting = self._waiting
        server = self.server
        while waiting and not self._closing:
            args = waiting[0]
            if self._inflight:
                if (self._barriers or self._inflight >= server.limits.max_inflight
                        or type(args) is ProtocolError or not server.is_pipelinable_write(args[0])):
                    break
            waiting.popleft()
            if type(args) is ProtocolError:
                self._reply_ready(encode_error(args.message))
                self._close_after_reply()
                break
            self._run(args)

    def _run(self, args: list[bytes]) -> None:
        session = self.session
        server = self.server
        server.stats.total_commands_processed += 1
        mode = session.reply_mode
        if mode is _SKIP:
            session.reply_mode = _ON
        session.last_command_name = args[0]
        entry = server._connection_command.get(args[0], _UNKNOWN)
        if entry is _UNKNOWN:
            entry = server.connection_command(args[0])
        try:
            if self.subscriptions and session.resp == 2 and args[0].lower() not in _SUBSCRIBED_MODE_COMMANDS:
                raise CommandError(f"ERR Can't execute '{_command_name(args[0])}': only (P|S)SUBSCRIBE / "
                                   f"(P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
            if entry is not None:
                result = entry[1](self, args)
            else:
                result = self.executor.execute(session, args)
        except CommandError as exc:
            result = exc
        if result is _NO_REPLY:
            return
        suppress = mode is not _ON and result is not _REPLY_ON_ACK
        if type(result) in _PLAIN_REPLY_TYPES:
            if suppress:
                return
            if self._replies:
                out: list[bytes] = []
                encode_into(result, session.resp, out)
                self._replies.append(b"".join(out))
            else:
                encode_into(result, session.resp, self._out)
            return
        if not isinstance(result, asyncio.Future):
            if not hasattr(result, "__await__"):
                # Some other reply value (a subclass...): let the encoder decide.
                if not suppress:
                    self._reply_value(result)
                return
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            result = task
        barrier = not server.is_pipelinable_write(args[0])
        slot = _Pending(self, result, suppress, barrier)
        self._replies.append(slot)
        self._inflight += 1
        if barrier:
            self._barriers += 1
        result.add_done_callback(slot)

    def push(self, message: Any) -> None:
        """Out-of-band data (a pub/sub message): after every reply that is ready, before pending ones."""
        if self._closed:
            return
        encode_into(message, self.session.resp, self._out)
        self._flush()

    def _reply_value(self, value: Any) -> None:
        if self._replies:
            out: list[bytes] = []
            encode_into(value, self.session.resp, out)
            self._replies.append(b"".join(out))
        else:
            encode_into(value, self.session.resp, self._out)

    def _reply_ready(self, data: bytes) -> None:
        if self._replies:
            self._replies.append(data)
        else:
            self._out.append(data)

    def _completed(self, slot: _Pending) -> None:
        self._inflight -= 1
        if slot.barrier:
            self._barriers -= 1
        if self._closed:
            retrieve_exception(slot.future)
            return
        self._drain_replies()
        self._pump()
        self._flush()
        self._update_reading()

    def _drain_replies(self) -> None:
        replies = self._replies
        out = self._out
        resp = self.session.resp
        while replies:
            head = replies[0]
            if type(head) is bytes:
                out.append(head)
                replies.popleft()
                continue
            future = head.future
            if not future.done():
                break
            replies.popleft()
            if future.cancelled():
                out.append(encode_error("ERR the command was cancelled (the server is shutting down)"))
                self._close_after_reply()
                continue
            exc = future.exception()
            if exc is None:
                if not head.suppress:
                    encode_into(future.result(), resp, out)
            elif isinstance(exc, CommandError):
                if not head.suppress:
                    out.append(encode_error(exc.message))
            else:
                log.error("command failed on client %s", self.session.id, exc_info=exc)
                out.append(encode_error(f"ERR internal error: {type(exc).__name__}"))

    def _flush(self) -> None:
        if self._out and self.transport is not None:
            out = self._out
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()
        if (not self._replies and (self._closing or (self._eof and not self._waiting))
                and self.transport is not None and not self._closed):
            self._closed = True
            self.transport.close()

    def _close_after_reply(self) -> None:
        self._closing = True
        self.session.close_after_reply = True
        self._waiting.clear()
        self._update_reading()

    def _update_reading(self) -> None:
        transport = self.transport
        if transport is None or self._closed:
            return
        pause = (self._closing or self._writing_paused
                 or len(self._waiting) > self.server.limits.max_waiting)
        if pause and not self._reading_paused:
            self._reading_paused = True
            transport.pause_reading()
        elif not pause and self._reading_paused and len(self._waiting) <= self.server.limits.max_waiting // 2:
            self._reading_paused = False
            transport.resume_reading()
            # Requests may be waiting only because reading was paused: nothing else would pump them.

    def kill(self) -> None:
        """Close now, dropping pending replies (CLIENT KILL of another client, idle timeout, query buffer)."""
        if self.transport is not None and not self._closed:
            self._closing = True
            self._closed = True
            self.transport.close()

    # -- introspection (CLIENT LIST / INFO) ----------------------------------------------------------------------
    def describe(self) -> str:
        s = self.session
        now = time.monotonic()
        flags = "N"
        qbuf = self.parser.buffered_len
        return (f"id={s.id} addr={s.raddr} laddr={s.laddr} fd=-1 name={_text(s.name)} "
                f"age={int(time.time() - s.created_s)} idle={int(now - s.last_command_s)} flags={flags} db={s.db} "
                f"sub=0 psub=0 ssub=0 multi=-1 qbuf={qbuf} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 "
                f"obl=0 oll={len(self._replies)} omem=0 tot-mem=0 events=r cmd={_command_name(s.last_command_name)} "
                f"user=default "
                f"redir=-1 resp={s.resp} lib-name={_text(s.lib_name)} lib-ver={_text(s.lib_ver)}\n")

    @property
    def idle(self) -> bool:
        return not self._inflight and not self._waiting and not self._replies


def _format_addr(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = addr[0]
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    return str(addr or "")


def _command_name(name: bytes | str) -> str:
    return name if isinstance(name, str) else name.decode("utf-8", "replace").lower()


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Stats:
    total_connections_received: int = 0
    total_commands_processed: int = 0
    rejected_connections: int = 0
    ops_samples: collections.deque = dataclasses.field(default_factory=lambda: collections.deque(maxlen=16))
    last_sample_commands: int = 0
    last_sample_s: float = 0.0

    def reset(self) -> None:
        self.total_connections_received = 0
        self.total_commands_processed = 0
        self.rejected_connections = 0
        self.ops_samples.clear()
        self.last_sample_commands = 0


def tls_context(cert_file: str, key_file: str, ca_cert_file: str = "", auth_clients: str = "yes") -> ssl.SSLContext:
    """A server context as Redis's tls-* options make one: the certificate chain and key; with a CA file, clients
    must present a certificate it signed (auth_clients "yes", Redis's default), may ("optional") or need not
    ("no"). TLS 1.2 at least."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    if ca_cert_file:
        context.load_verify_locations(ca_cert_file)
        context.verify_mode = {"yes": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL,
                               "no": ssl.CERT_NONE}[auth_clients]
    return context


class RespServer:
    """RESP front end of one node. `await start()` binds; `port` is the bound port (pass port=0 for any). With
    `tls` (a server SSLContext) the same commands are also served over TLS on `tls_port` (0: any free port)."""

    def __init__(self, executor: CommandExecutor, host: str = "127.0.0.1", port: int = 6379, *,
                 tls: ssl.SSLContext | None = None, tls_port: int = 0,
                 config: Config | None = None, limits: ServerLimits | None = None,
                 command_table: Mapping[str, CommandSpec] | None = None,
                 max_multibulk_len: int = 1024 * 1024):
        self.executor = executor
        self.host = host
        self.port = port
        self.tls = tls
        self.tls_port = tls_port if tls is not None else 0
        self.config = config or Config()
        self.limits = limits or ServerLimits()
        self.max_multibulk_len = max_multibulk_len
        self.stats = Stats()
        self.clients: dict[int, ClientConnection] = {}
        self.started_monotonic = time.monotonic()
        self.run_id = os.urandom(20).hex()
        self._command_table = command_table
        self._pipelinable: dict[bytes, bool] = {}
        self._connection_command: dict[bytes, tuple[CommandSpec, Callable] | None] = {}   # by spelling, cached
        self._next_client_id = 0
        self._server: asyncio.AbstractServer | None = None
        self._tls_server: asyncio.AbstractServer | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.pubsub = PubSub()
        self.connection_commands = ConnectionCommands(self).table()
        self.config.on_change("proto-max-bulk-len", self._set_max_bulk_len)
        self.config.set_internal("port", port)
        # Shard state the node keeps and replicates through its log (notify-keyspace-events: memdb/notify.py).
        for name in getattr(executor, "REPLICATED_CONFIG", ()):
            self.config.replicate(name, functools.partial(executor.replicated_config, name))
        keyspace = getattr(executor, "keyspace", None)
        if keyspace is not None:       # OBJECT IDLETIME/FREQ follow maxmemory-policy (memdb/access.py)
            access.bind(self.config, keyspace, lambda: int(time.time() * 1000))

    # -- lifecycle -----------------------------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: ClientConnection(self), self.host, self.port,
                                                reuse_address=True, backlog=511)
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        self.config.set_internal("port", self.port)
        if self.tls is not None:
            self._tls_server = await loop.create_server(lambda: ClientConnection(self), self.host, self.tls_port,
                                                        ssl=self.tls, reuse_address=True, backlog=511)
            self.tls_port = self._tls_server.sockets[0].getsockname()[1]
            self.config.set_internal("tls-port", self.tls_port)
        self.started_monotonic = time.monotonic()
        self.stats.last_sample_s = self.started_monotonic
        self._timer = loop.call_later(0.1, self._tick)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._server is not None:
            listeners = [s for s in (self._server, self._tls_server) if s is not None]
            for listener in listeners:
                listener.close()
            for conn in list(self.clients.values()):
                conn.kill()
            for listener in listeners:
                await listener.wait_closed()

    def _tick(self) -> None:
        """Every 100 ms: sample ops/sec (INFO instantaneous_ops_per_sec) and close idle clients (`timeout`)."""
        now = time.monotonic()
        stats = self.stats
        elapsed = now - stats.last_sample_s
        if elapsed > 0:
            stats.ops_samples.append((stats.total_commands_processed - stats.last_sample_commands) / elapsed)
        stats.last_sample_commands = stats.total_commands_processed
        stats.last_sample_s = now
        timeout_s = self.config["timeout"]
        if timeout_s:
            for conn in list(self.clients.values()):
                if conn.idle and now - conn.session.last_command_s > timeout_s:
                    conn.kill()
        self._timer = asyncio.get_running_loop().call_later(0.1, self._tick)

    # -- clients -------------------------------------------------------------------------------------------------
    def next_client_id(self) -> int:
        self._next_client_id += 1
        return self._next_client_id

    def register(self, conn: ClientConnection) -> None:
        self.stats.total_connections_received += 1
        self.clients[conn.session.id] = conn

    def unregister(self, conn: ClientConnection) -> None:
        self.clients.pop(conn.session.id, None)

    def _set_max_bulk_len(self, value: int) -> None:
        for conn in self.clients.values():
            conn.parser.max_bulk_len = value

    # -- the command table ---------------------------------------------------------------------------------------
    @property
    def command_table(self) -> Mapping[str, CommandSpec]:
        if self._command_table is None:
            table: dict[str, CommandSpec] = {}
            try:
                from memdb.commands.table import COMMAND_TABLE
                items = COMMAND_TABLE.values() if isinstance(COMMAND_TABLE, Mapping) else COMMAND_TABLE
                table.update((spec.name, spec) for spec in items)
            except ImportError:
                log.warning("memdb.commands.table is not available: COMMAND knows only connection commands")
            table.update((spec.name, spec) for spec in connection_table.COMMANDS)
            self._command_table = table
        return self._command_table

    def connection_command(self, name: bytes) -> tuple[CommandSpec, Callable] | None:
        """The connection layer's (spec, handler) for a command name as the client spelled it, or None."""
        entry = self._connection_command.get(name, _UNKNOWN)
        if entry is _UNKNOWN:
            entry = self.connection_commands.get(bytes(name).lower())
            if len(self._connection_command) < 4096:
                self._connection_command[bytes(name)] = entry
        return entry

    def is_pipelinable_write(self, name: bytes) -> bool:
        """May this command be handed to the executor while earlier ones of its connection are in flight?"""
        cached = self._pipelinable.get(name)
        if cached is not None:
            return cached
        spec = self.command_table.get(name.lower().decode("utf-8", "replace"))
        result = (spec is not None and Flag.WRITE in spec.flags and Flag.BLOCKING not in spec.flags
                  and Flag.CONNECTION not in spec.flags)
        if spec is not None and len(self._pipelinable) < 4096:
            self._pipelinable[name] = result
        return result


# ---------------------------------------------------------------------------------------------------------------
_HELP_CLIENT = [
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME", "    Return the name of the current connection.",
    "ID", "    Return the ID of the current connection.",
    "INFO", "    Return information about the current client connection.",
    "KILL <ip:port>", "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are: ID <client-id>, ADDR <ip:port>, LADDR <ip:port>, TYPE <type>,",
    "    USER <username>, SKIPME (YES|NO), MAXAGE <maxage>",
    "LIST [options ...]", "    Return information about client connections. Options: TYPE <type>, ID <id> ...",
    "REPLY (ON|OFF|SKIP)", "    Control the replies sent to the current connection.",
    "SETNAME <name>", "    Assign the name <name> to the current connection.",
    "SETINFO <LIB-NAME|LIB-VER> <value>", "    Set client library name or version.",
    "NO-EVICT (ON|OFF)", "    Protect current client connection from eviction.",
    "GETREDIR", "    Return the client ID we are redirecting to when tracking is enabled (always -1).",
    "HELP", "    Print this help.",
]
_HELP_CONFIG = [
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>", "    Set the configuration <directive> to <value>.",
    "RESETSTAT", "    Reset statistics reported by the INFO command.",
    "REWRITE", "    Rewrite the configuration file.",
    "HELP", "    Print this help.",
]
_HELP_COMMAND = [
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)", "    Return details about all Redis commands.",
    "COUNT", "    Return the total number of commands in this Redis server.",
    "LIST", "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]", "    Return details about multiple Redis commands.",
    "DOCS [<command-name> ...]", "    Return documentation details about multiple Redis commands.",
    "GETKEYS <full-command>", "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>", "    Return the keys and the access flags from a full Redis command.",
    "HELP", "    Print this help.",
]

_INVALID_CLIENT_NAME = "ERR Client names cannot contain spaces, newlines or special characters."
_AUTH_NO_PASSWORD = ("ERR AUTH <password> called without any password configured for the default user. "
                     "Are you sure your configuration is correct?")
_WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."
_DEFAULT_INFO_SECTIONS = ("server", "clients", "memory", "persistence", "stats", "replication", "cpu", "modules",
                          "errorstats", "cluster", "keyspace")


def _valid_client_attr(value: bytes) -> bool:
    """validateClientAttr: only printable ASCII '!'..'~' (no spaces, newlines, specials)."""
    return all(33 <= c <= 126 for c in value)


def _bytes_to_human(n: int) -> str:
    """Redis bytesToHuman."""
    for unit, size in (("B", 1), ("K", 1024), ("M", 1024 ** 2), ("G", 1024 ** 3), ("T", 1024 ** 4),
                       ("P", 1024 ** 5)):
        if n < size * 1024 or unit == "P":
            return f"{n}B" if unit == "B" else f"{n / size:.2f}{unit}"
    return f"{n}B"


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _parse_int(arg: bytes) -> int:
    from memdb.commands.args import parse_int
    return parse_int(arg)


_CONNECTION_SPECS = tuple(connection_table.COMMANDS) + tuple(
    spec for spec in pubsub_cmds.COMMANDS if Flag.CONNECTION in spec.flags)


class ConnectionCommands:
    """The commands answered by the server layer. Each takes (connection, args) and returns a reply value."""

    def __init__(self, server: RespServer):
        self.server = server

    def table(self) -> dict[bytes, tuple[CommandSpec, Callable[[ClientConnection, list[bytes]], Any]]]:
        specs = {spec.name: spec for spec in _CONNECTION_SPECS}
        handlers = {
            "subscribe": self._subscriber("subscribe"), "psubscribe": self._subscriber("psubscribe"),
            "ssubscribe": self._subscriber("ssubscribe"), "unsubscribe": self._unsubscriber("subscribe"),
            "punsubscribe": self._unsubscriber("psubscribe"), "sunsubscribe": self._unsubscriber("ssubscribe"),
            "pubsub": self._container("pubsub", {
                "channels": lambda conn, args: self.server.pubsub.channel_names(args[2] if len(args) > 2 else None),
                "shardchannels": lambda conn, args: self.server.pubsub.channel_names(
                    args[2] if len(args) > 2 else None, sharded=True),
                "numsub": lambda conn, args: self.server.pubsub.numsub(args[2:]),
                "shardnumsub": lambda conn, args: self.server.pubsub.numsub(args[2:], sharded=True),
                "numpat": lambda conn, args: self.server.pubsub.numpat()}),
            "ping": self.ping, "echo": self.echo, "quit": self.quit, "reset": self.reset, "hello": self.hello,
            "auth": self.auth, "select": self.select, "time": self.time, "info": self.info,
            "client": self._container("client", {
                "id": self.client_id, "setname": self.client_setname, "getname": self.client_getname,
                "list": self.client_list, "info": self.client_info, "kill": self.client_kill,
                "reply": self.client_reply, "no-evict": self.client_no_evict, "setinfo": self.client_setinfo,
                "getredir": lambda conn, args: -1, "help": lambda conn, args: _status_lines(_HELP_CLIENT)}),
            "config": self._container("config", {
                "get": self.config_get, "set": self.config_set, "resetstat": self.config_resetstat,
                "rewrite": self.config_rewrite, "help": lambda conn, args: _status_lines(_HELP_CONFIG)}),
            "command": self._container("command", {
                "count": self.command_count, "info": self.command_info, "docs": self.command_docs,
                "list": self.command_list, "getkeys": self.command_getkeys,
                "getkeysandflags": self.command_getkeysandflags,
                "help": lambda conn, args: _status_lines(_HELP_COMMAND)}, no_subcommand=self.command_all),
        }
        table = {}
        for name, handler in handlers.items():
            spec = specs[name]
            table[name.encode()] = (spec, self._checked(spec, handler))
        return table

    @staticmethod
    def _checked(spec: CommandSpec, handler: Callable) -> Callable:
        if spec.subcommands:
            return handler

        def run(conn: ClientConnection, args: list[bytes]) -> Any:
            if not spec.arity_ok(len(args)):
                raise CommandError(messages.wrong_arity(spec.name))
            return handler(conn, args)
        return run

    @staticmethod
    def _container(name: str, subs: dict[str, Callable], no_subcommand: Callable | None = None) -> Callable:
        parent = next(spec for spec in _CONNECTION_SPECS if spec.name == name)
        sub_specs = {spec.name.split("|", 1)[1]: spec for spec in parent.subcommands}

        def run(conn: ClientConnection, args: list[bytes]) -> Any:
            if len(args) == 1 and no_subcommand is not None:
                return no_subcommand(conn, args)
            if not parent.arity_ok(len(args)):
                raise CommandError(messages.wrong_arity(name))
            sub = args[1].lower().decode("utf-8", "replace")
            spec = sub_specs.get(sub)
            if spec is None or sub not in subs:
                raise CommandError(messages.unknown_subcommand(args[1], name))
            if not spec.arity_ok(len(args)):
                raise CommandError(messages.wrong_arity(spec.name))
            conn.session.last_command_name = spec.name
            return subs[sub](conn, args)
        return run

    # -- simple ones ---------------------------------------------------------------------------------------------
    def ping(self, conn: ClientConnection, args: list[bytes]) -> Any:
        if len(args) > 2:
            raise CommandError(messages.wrong_arity("ping"))
        if conn.subscriptions and conn.session.resp == 2:
            return [b"pong", args[1] if len(args) == 2 else b""]     # subscribed mode's PING
        return PONG if len(args) == 1 else args[1]

    # -- pub/sub subscriptions (PUBLISH is the node's: it goes through the log) --------------------------------
    def _subscriber(self, kind: str) -> Callable:
        def run(conn: ClientConnection, args: list[bytes]) -> Any:
            return self._confirm(conn, self.server.pubsub.subscribe(conn, kind, args[1:]))
        return run

    def _unsubscriber(self, kind: str) -> Callable:
        def run(conn: ClientConnection, args: list[bytes]) -> Any:
            return self._confirm(conn, self.server.pubsub.unsubscribe(conn, kind, args[1:]))
        return run

    @staticmethod
    def _confirm(conn: ClientConnection, confirmations: list) -> Any:
        """One reply per channel, in order with the connection's other replies."""
        out: list[bytes] = []
        for push in confirmations:
            encode_into(push, conn.session.resp, out)
        conn._reply_ready(b"".join(out))
        return _NO_REPLY

    def echo(self, conn: ClientConnection, args: list[bytes]) -> Any:
        return args[1]

    def quit(self, conn: ClientConnection, args: list[bytes]) -> Any:
        conn._close_after_reply()
        return OK

    def reset(self, conn: ClientConnection, args: list[bytes]) -> Any:
        conn.session.reset()
        self.server.pubsub.drop(conn)
        hook = getattr(self.server.executor, "session_reset", None)
        if hook is not None:
            hook(conn.session)
        return _RESET

    def time(self, conn: ClientConnection, args: list[bytes]) -> Any:
        now_ns = time.time_ns()
        return [b"%d" % (now_ns // 1_000_000_000), b"%d" % (now_ns // 1000 % 1_000_000)]

    def select(self, conn: ClientConnection, args: list[bytes]) -> Any:
        index = _parse_int(args[1])
        if not 0 <= index < NUM_DATABASES:
            raise CommandError(messages.DB_INDEX_OUT_OF_RANGE)
        conn.session.db = index
        return OK

    def auth(self, conn: ClientConnection, args: list[bytes]) -> Any:
        if len(args) > 3:
            raise CommandError(messages.SYNTAX)
        if len(args) == 2:
            raise CommandError(_AUTH_NO_PASSWORD)
        # The default user has no password (nopass): any password is accepted for it, as in Redis.
        if args[1] != b"default":
            raise CommandError(_WRONGPASS)
        return OK

    def hello(self, conn: ClientConnection, args: list[bytes]) -> Any:
        session = conn.session
        version = session.resp
        if len(args) >= 2:
            try:
                version = _parse_int(args[1])
            except CommandError:
                raise CommandError("ERR Protocol version is not an integer or out of range") from None
            if not 2 <= version <= 3:
                raise CommandError("NOPROTO unsupported protocol version")
        name = None
        i = 2
        while i < len(args):
            option = args[i].lower()
            more = len(args) - i - 1
            if option == b"auth" and more >= 2:
                if args[i + 1] != b"default":
                    raise CommandError(_WRONGPASS)
                i += 3
            elif option == b"setname" and more >= 1:
                name = args[i + 1]
                if not _valid_client_attr(name):
                    raise CommandError(_INVALID_CLIENT_NAME)
                i += 2
            else:
                raise CommandError(f"ERR Syntax error in HELLO option '{_text(args[i])}'")
        if name is not None:
            session.name = name
        session.resp = version
        return Map([(b"server", b"redis"), (b"version", REDIS_VERSION.encode()), (b"proto", version),
                    (b"id", session.id), (b"mode", b"standalone"), (b"role", self._role().encode()),
                    (b"modules", [])])

    def _role(self) -> str:
        for field, value in self.server.executor.info_sections().get("replication", []):
            if field == "role":
                return str(value)
        return "master"

    # -- CLIENT --------------------------------------------------------------------------------------------------
    def client_id(self, conn: ClientConnection, args: list[bytes]) -> Any:
        return conn.session.id

    def client_setname(self, conn: ClientConnection, args: list[bytes]) -> Any:
        if not _valid_client_attr(args[2]):
            raise CommandError(_INVALID_CLIENT_NAME)
        conn.session.name = args[2]
        return OK

    def client_getname(self, conn: ClientConnection, args: list[bytes]) -> Any:
        return conn.session.name or None

    def client_info(self, conn: ClientConnection, args: list[bytes]) -> Any:
        return Verbatim(conn.describe().encode())

    def client_list(self, conn: ClientConnection, args: list[bytes]) -> Any:
        clients = list(self.server.clients.values())
        i = 2
        while i < len(args):
            option = args[i].lower()
            if option == b"type" and i + 1 < len(args):
                kind = args[i + 1].lower()
                if kind not in (b"normal", b"master", b"replica", b"slave", b"pubsub"):
                    raise CommandError(f"ERR Unknown client type '{_text(args[i + 1])}'")
                if kind != b"normal":
                    clients = []
                i += 2
            elif option == b"id" and i + 1 < len(args):
                ids = set()
                for arg in args[i + 1:]:
                    try:
                        ids.add(_parse_int(arg))
                    except CommandError:
                        raise CommandError("ERR Invalid client ID") from None
                clients = [c for c in clients if c.session.id in ids]
                i = len(args)
            else:
                raise CommandError(messages.SYNTAX)
        return Verbatim("".join(c.describe() for c in sorted(clients, key=lambda c: c.session.id)).encode())

    def client_reply(self, conn: ClientConnection, args: list[bytes]) -> Any:
        mode = args[2].lower()
        if mode == b"on":
            conn.session.reply_mode = ReplyMode.ON
            return _REPLY_ON_ACK
        if mode == b"off":
            conn.session.reply_mode = ReplyMode.OFF
            return _NO_REPLY
        if mode == b"skip":
            if conn.session.reply_mode is not ReplyMode.OFF:
                conn.session.reply_mode = ReplyMode.SKIP
            return _NO_REPLY
        raise CommandError(messages.SYNTAX)

    def client_no_evict(self, conn: ClientConnection, args: list[bytes]) -> Any:
        value = args[2].lower()
        if value not in (b"on", b"off"):
            raise CommandError(messages.SYNTAX)
        conn.session.no_evict = value == b"on"
        return OK

    def client_setinfo(self, conn: ClientConnection, args: list[bytes]) -> Any:
        attr = args[2].lower()
        if attr not in (b"lib-name", b"lib-ver"):
            raise CommandError(f"ERR Unrecognized option '{_text(args[2])}'")
        if not _valid_client_attr(args[3]):
            raise CommandError(f"ERR {_text(args[2])} cannot contain spaces, newlines or special characters.")
        if attr == b"lib-name":
            conn.session.lib_name = args[3]
        else:
            conn.session.lib_ver = args[3]
        return OK

    def client_kill(self, conn: ClientConnection, args: list[bytes]) -> Any:
        clients = self.server.clients
        if len(args) == 3:                                   # old form: CLIENT KILL addr:port
            target = _text(args[2])
            for other in list(clients.values()):
                if other.session.raddr == target:
                    self._kill(conn, other)
                    return OK
            raise CommandError("ERR No such client")
        if len(args) % 2 != 0:
            raise CommandError(messages.SYNTAX)
        filters: list[Callable[[ClientConnection], bool]] = []
        skipme = True
        for i in range(2, len(args), 2):
            option, value = args[i].lower(), args[i + 1]
            if option == b"id":
                try:
                    wanted = _parse_int(value)
                except CommandError:
                    wanted = 0
                if wanted <= 0:
                    raise CommandError("ERR client-id should be greater than 0")
                filters.append(lambda c, w=wanted: c.session.id == w)
            elif option == b"addr":
                filters.append(lambda c, w=_text(value): c.session.raddr == w)
            elif option == b"laddr":
                filters.append(lambda c, w=_text(value): c.session.laddr == w)
            elif option == b"type":
                kind = value.lower()
                if kind not in (b"normal", b"master", b"replica", b"slave", b"pubsub"):
                    raise CommandError(f"ERR Unknown client type '{_text(value)}'")
                filters.append(lambda c, k=kind: k == b"normal")
            elif option == b"user":
                filters.append(lambda c, u=value: u == b"default")
            elif option == b"skipme":
                if value.lower() not in (b"yes", b"no"):
                    raise CommandError(messages.SYNTAX)
                skipme = value.lower() == b"yes"
            elif option == b"maxage":
                max_age = _parse_int(value)
                filters.append(lambda c, m=max_age: time.time() - c.session.created_s >= m)
            else:
                raise CommandError(messages.SYNTAX)
        killed = 0
        for other in list(clients.values()):
            if skipme and other is conn:
                continue
            if all(f(other) for f in filters):
                self._kill(conn, other)
                killed += 1
        return killed

    @staticmethod
    def _kill(conn: ClientConnection, other: ClientConnection) -> None:
        if other is conn:
            conn._close_after_reply()          # Redis: CLIENT_CLOSE_AFTER_REPLY for the calling client
        else:
            other.kill()

    # -- CONFIG --------------------------------------------------------------------------------------------------
    def config_get(self, conn: ClientConnection, args: list[bytes]) -> Any:
        pairs = self.server.config.get([_text(a) for a in args[2:]])
        return Map([(name.encode(), value.encode()) for name, value in pairs])

    def config_set(self, conn: ClientConnection, args: list[bytes]) -> Any:
        if len(args) % 2 != 0:
            raise CommandError(messages.wrong_arity("config|set"))
        config = self.server.config
        try:
            staged = config.stage([(_text(args[i]), _text(args[i + 1])) for i in range(2, len(args), 2)])
        except ConfigError as exc:
            raise CommandError(exc.message) from None
        replicated = config.replicated(staged)
        if not replicated:
            config.commit(staged)
            return OK
        # Replicated parameters go through the log (READONLY on a replica); the node-local ones are set only
        # once that write applied, so a refused CONFIG SET changes nothing.
        logged = self.server.executor.set_replicated_config(replicated)
        done = asyncio.get_running_loop().create_future()

        def applied(future: asyncio.Future) -> None:
            failed = future.cancelled() or future.exception() is not None
            if not failed:
                config.commit(staged)
            if done.done():
                return
            if future.cancelled():
                done.cancel()
            elif failed:
                done.set_exception(future.exception())
            else:
                done.set_result(OK)
        logged.add_done_callback(applied)
        return done

    def config_resetstat(self, conn: ClientConnection, args: list[bytes]) -> Any:
        self.server.stats.reset()
        return OK

    def config_rewrite(self, conn: ClientConnection, args: list[bytes]) -> Any:
        raise CommandError("ERR The server is running without a config file")

    # -- INFO ----------------------------------------------------------------------------------------------------
    def info(self, conn: ClientConnection, args: list[bytes]) -> Any:
        return Verbatim(self.info_text([_text(a).lower() for a in args[1:]]).encode())

    def info_text(self, wanted: list[str]) -> str:
        node_sections = self.server.executor.info_sections()
        sections: dict[str, list[tuple[str, Any]]] = {
            "server": self._info_server(), "clients": self._info_clients(), "memory": self._info_memory(),
            "persistence": [("loading", 0), ("async_loading", 0), ("rdb_changes_since_last_save", 0),
                            ("rdb_bgsave_in_progress", 0), ("rdb_last_bgsave_status", "ok"),
                            ("aof_enabled", 0), ("aof_rewrite_in_progress", 0)],
            "stats": self._info_stats(), "replication": [("role", "master"), ("connected_slaves", 0)],
            "cpu": self._info_cpu(), "modules": [], "errorstats": [], "cluster": [("cluster_enabled", 0)],
            "keyspace": [],
        }
        sections.update(node_sections)
        if not wanted or "default" in wanted:
            names = list(_DEFAULT_INFO_SECTIONS) + [n for n in node_sections if n not in _DEFAULT_INFO_SECTIONS]
        elif "all" in wanted or "everything" in wanted:
            names = list(sections)
        else:
            names = [n for n in sections if n in wanted]
        parts = []
        for name in names:
            lines = [f"# {name.capitalize() if name != 'cpu' else 'CPU'}"]
            lines += [f"{field}:{value}" for field, value in sections[name]]
            parts.append("\r\n".join(lines) + "\r\n")
        return "\r\n".join(parts)

    def _info_server(self) -> list[tuple[str, Any]]:
        server = self.server
        uptime = int(time.monotonic() - server.started_monotonic)
        return [
            ("redis_version", REDIS_VERSION), ("redis_git_sha1", "00000000"), ("redis_git_dirty", 0),
            ("redis_build_id", "0"), ("redis_mode", "standalone"),
            ("os", f"{platform.system()} {platform.release()} {platform.machine()}"), ("arch_bits", 64),
            ("monotonic_clock", "POSIX clock_gettime"), ("multiplexing_api", "epoll"),
            ("atomicvar_api", "c11-builtin"), ("gcc_version", "0.0.0"), ("process_id", os.getpid()),
            ("process_supervised", "no"), ("run_id", server.run_id), ("tcp_port", server.port),
            ("server_time_usec", time.time_ns() // 1000), ("uptime_in_seconds", uptime),
            ("uptime_in_days", uptime // 86400), ("hz", server.config["hz"]),
            ("configured_hz", server.config["hz"]), ("lru_clock", int(time.time()) & ((1 << 24) - 1)),
            ("executable", sys.argv[0] if sys.argv else ""), ("config_file", ""), ("io_threads_active", 0),
            ("memdb_version", MEMDB_VERSION), ("python_version", platform.python_version()),
        ]

    def _info_clients(self) -> list[tuple[str, Any]]:
        server = self.server
        return [("connected_clients", len(server.clients)), ("cluster_connections", 0),
                ("maxclients", server.config["maxclients"]), ("client_recent_max_input_buffer", 0),
                ("client_recent_max_output_buffer", 0), ("blocked_clients", 0), ("tracking_clients", 0),
                ("clients_in_timeout_table", 0)]

    def _info_memory(self) -> list[tuple[str, Any]]:
        rss = _rss_bytes()
        maxmemory = self.server.config["maxmemory"]
        return [("used_memory", rss), ("used_memory_human", _bytes_to_human(rss)), ("used_memory_rss", rss),
                ("used_memory_rss_human", _bytes_to_human(rss)), ("used_memory_peak", rss),
                ("used_memory_peak_human", _bytes_to_human(rss)), ("maxmemory", maxmemory),
                ("maxmemory_human", _bytes_to_human(maxmemory)),
                ("maxmemory_policy", self.server.config["maxmemory-policy"]),
                ("mem_fragmentation_ratio", "1.00"), ("mem_allocator", "pymalloc")]

    def _info_stats(self) -> list[tuple[str, Any]]:
        stats = self.server.stats
        samples = stats.ops_samples
        ops = int(sum(samples) / len(samples)) if samples else 0
        return [("total_connections_received", stats.total_connections_received),
                ("total_commands_processed", stats.total_commands_processed),
                ("instantaneous_ops_per_sec", ops), ("total_net_input_bytes", 0), ("total_net_output_bytes", 0),
                ("rejected_connections", stats.rejected_connections), ("expired_keys", 0), ("evicted_keys", 0),
                ("keyspace_hits", 0), ("keyspace_misses", 0), ("pubsub_channels", 0), ("pubsub_patterns", 0),
                ("total_error_replies", 0)]

    @staticmethod
    def _info_cpu() -> list[tuple[str, Any]]:
        t = os.times()
        return [("used_cpu_sys", f"{t.system:.6f}"), ("used_cpu_user", f"{t.user:.6f}"),
                ("used_cpu_sys_children", f"{t.children_system:.6f}"),
                ("used_cpu_user_children", f"{t.children_user:.6f}")]

    # -- COMMAND -------------------------------------------------------------------------------------------------
    def _lookup(self, name: bytes) -> CommandSpec | None:
        """'get' or 'config|get' (COMMAND INFO/DOCS accept subcommand full names)."""
        text = _text(name).lower()
        parent, _, sub = text.partition("|")
        spec = self.server.command_table.get(parent)
        if spec is None or not sub:
            return spec
        return next((s for s in spec.subcommands if s.name == text), None)

    def command_all(self, conn: ClientConnection, args: list[bytes]) -> Any:
        return [command_info_reply(spec) for spec in self.server.command_table.values()]

    def command_count(self, conn: ClientConnection, args: list[bytes]) -> Any:
        return len(self.server.command_table)

    def command_info(self, conn: ClientConnection, args: list[bytes]) -> Any:
        if len(args) == 2:
            return self.command_all(conn, args)
        out = []
        for name in args[2:]:
            spec = self._lookup(name)
            out.append(None if spec is None else command_info_reply(spec))
        return out

    def command_docs(self, conn: ClientConnection, args: list[bytes]) -> Any:
        specs = (list(self.server.command_table.values()) if len(args) == 2
                 else [s for s in (self._lookup(n) for n in args[2:]) if s is not None])
        return Map([(spec.name.encode(), command_docs_reply(spec)) for spec in specs])

    def command_list(self, conn: ClientConnection, args: list[bytes]) -> Any:
        names: list[str] = []
        for spec in self.server.command_table.values():
            names.append(spec.name)
            names.extend(sub.name for sub in spec.subcommands)
        if len(args) == 2:
            return [n.encode() for n in names]
        if len(args) != 5 or args[2].lower() != b"filterby":
            raise CommandError(messages.SYNTAX)
        kind, value = args[3].lower(), _text(args[4])
        if kind == b"module":
            return []
        if kind == b"aclcat":
            category = "@" + value.lower()
            table = self.server.command_table
            specs = [s for spec in table.values() for s in (spec, *spec.subcommands)]
            return [s.name.encode() for s in specs if category in s.acl_categories]
        if kind == b"pattern":
            rx = glob_to_regex(value)
            return [n.encode() for n in names if rx.fullmatch(n)]
        raise CommandError(messages.SYNTAX)

    def _getkeys(self, args: list[bytes]) -> tuple[CommandSpec, list[int]]:
        target = args[2:]
        spec = self.server.command_table.get(_text(target[0]).lower())
        if spec is None:
            raise CommandError("ERR Invalid command specified")
        if spec.subcommands and len(target) >= 2:
            sub = self._lookup(target[0] + b"|" + target[1])
            spec = sub or spec
        if not spec.arity_ok(len(target)):
            raise CommandError("ERR Invalid number of arguments specified for command")
        positions = spec.key_positions(target)
        if not positions:
            raise CommandError("ERR The command has no key arguments")
        return spec, positions

    def command_getkeys(self, conn: ClientConnection, args: list[bytes]) -> Any:
        spec, positions = self._getkeys(args)
        return [args[2 + i] for i in positions]

    def command_getkeysandflags(self, conn: ClientConnection, args: list[bytes]) -> Any:
        spec, positions = self._getkeys(args)
        flags = SetReply([SimpleString(f) for f in _key_spec_flags(spec)])
        return [[args[2 + i], flags] for i in positions]


def _status_lines(lines: list[str]) -> list[SimpleString]:
    return [SimpleString(line) for line in lines]


def _key_spec_flags(spec: CommandSpec) -> list[str]:
    if Flag.WRITE in spec.flags:
        return ["RW", "update"]
    return ["RO", "access"]


def command_info_reply(spec: CommandSpec) -> list:
    """One COMMAND INFO entry, in Redis 7.0's shape (addReplyCommandInfo): name, arity, flags, first key, last
    key, step, ACL categories, tips, key specifications, subcommands."""
    # Redis lists flags in its flag-bit order, which is Flag's definition order.
    flags = SetReply([SimpleString(f.value) for f in Flag if f in spec.flags and f not in (Flag.CONNECTION, Flag.MAY_REPLICATE)])  # Redis hides may_replicate
    tips = SetReply([t.encode() for t in getattr(spec, "tips", None) or connection_table.TIPS.get(spec.name, ())])
    key_specs = []
    if spec.first_key > 0 and spec.key_finder is None:
        last = spec.last_key - spec.first_key if spec.last_key >= 0 else spec.last_key
        key_specs.append(Map([
            (b"flags", SetReply([SimpleString(f) for f in _key_spec_flags(spec)])),
            (b"begin_search", Map([(b"type", b"index"), (b"spec", Map([(b"index", spec.first_key)]))])),
            (b"find_keys", Map([(b"type", b"range"), (b"spec", Map([
                (b"lastkey", last), (b"keystep", spec.key_step), (b"limit", 0)]))])),
        ]))
    return [spec.name.encode(), spec.arity, flags, spec.first_key, spec.last_key, spec.key_step,
            SetReply([SimpleString(c) for c in spec.acl_categories]), tips, SetReply(key_specs),
            SetReply([command_info_reply(sub) for sub in spec.subcommands])]


def _group(spec: CommandSpec) -> bytes:
    for category in spec.acl_categories:
        name = category.lstrip("@")
        if name in ("string", "list", "set", "sortedset", "hash", "stream", "bitmap", "geo", "hyperloglog",
                    "pubsub", "scripting", "transaction", "connection"):
            return {"sortedset": b"sorted-set", "scripting": b"scripting"}.get(name, name.encode())
    return b"server" if "@admin" in spec.acl_categories else b"generic"


def command_docs_reply(spec: CommandSpec) -> Map:
    items: list[tuple[Any, Any]] = [(b"summary", b""), (b"since", b"1.0.0"), (b"group", _group(spec)),
                                    (b"complexity", b"")]
    if spec.subcommands:
        items.append((b"subcommands", Map([(sub.name.encode(), command_docs_reply(sub))
                                           for sub in spec.subcommands])))
    return Map(items)


# ---------------------------------------------------------------------------------------------------------------
def add_node_arguments(parser: argparse.ArgumentParser) -> None:
    """Hook: the node's options (memdb.node.add_arguments)."""
    from memdb.node import add_arguments
    add_arguments(parser)


def build_node(args: argparse.Namespace) -> CommandExecutor:
    """Hook: the node this server fronts, built from the parsed options (memdb.node.build_node)."""
    from memdb.node import build_node as build
    return build(args)


def make_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="memdb-server", description="memdb data node (RESP server)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on for RESP clients")
    parser.add_argument("--port", type=int, default=6379, help="RESP port (0: any free port)")
    parser.add_argument("--maxclients", type=int, default=10000)
    parser.add_argument("--proto-max-bulk-len", type=int, default=512 * 1024 * 1024)
    parser.add_argument("--log-level", default="INFO")
    tls = parser.add_argument_group("RESP over TLS (Redis's options; the plaintext --port stays open)")
    tls.add_argument("--tls-port", type=int, default=None, help="serve RESP over TLS on this port too (0: any)")
    tls.add_argument("--tls-cert-file", default="", help="PEM certificate chain")
    tls.add_argument("--tls-key-file", default="", help="PEM private key of --tls-cert-file")
    tls.add_argument("--tls-ca-cert-file", default="", help="PEM CA for client certificates")
    tls.add_argument("--tls-auth-clients", choices=("yes", "no", "optional"), default="yes",
                     help="with --tls-ca-cert-file: clients must (yes), may (optional) or need not (no) present "
                          "a certificate it signed (default %(default)s, as Redis)")
    add_node_arguments(parser)
    return parser


async def serve(executor: CommandExecutor, host: str, port: int, config: Config | None = None,
                ready: Callable[[RespServer], None] | None = None, tls: ssl.SSLContext | None = None,
                tls_port: int = 0) -> None:
    """Run the RESP server (and the node's own loops, if it has `run()`) until cancelled."""
    server = RespServer(executor, host, port, tls=tls, tls_port=tls_port, config=config)
    prepare = getattr(executor, "prepare", None)
    if prepare is not None:
        prepare()          # the node's state from disk (a snapshot) before any client can see the empty one
    await server.start()
    log.info("memdb RESP server listening on %s:%d%s", host, server.port,
             f" (TLS on {server.tls_port})" if server.tls is not None else "")
    if ready is not None:
        ready(server)
    if hasattr(executor, "message_sink"):
        executor.message_sink = server.pubsub.publish      # PUBLISH entries applied from the log deliver here
    grpc_server = None
    grpc_address = getattr(getattr(executor, "config", None), "grpc_address", "")
    if grpc_address:
        from memdb.grpc_api import start_grpc_server
        grpc_server = await start_grpc_server(executor, grpc_address)
        log.info("memdb gRPC API listening on %s", grpc_address)
    try:
        run = getattr(executor, "run", None)
        if run is not None:
            await run()
        else:
            await asyncio.Event().wait()
    finally:
        if grpc_server is not None:
            await grpc_server.stop(0.5)
        await server.close()
        close = getattr(executor, "close", None)
        if close is not None:
            await close()


def main(argv: Iterable[str] | None = None) -> None:
    # Snapshots fork this process (memdb/snapshot.py) and the child never uses gRPC. gRPC's fork support would
    # restart its poller threads in the child, where they abort on the descriptors the child closes. Set before
    # gRPC is first imported (by memdb.node, through make_arg_parser).
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
    parser = make_arg_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    tls = None
    if args.tls_port is not None:
        if not (args.tls_cert_file and args.tls_key_file):
            parser.error("--tls-port needs --tls-cert-file and --tls-key-file")
        try:
            tls = tls_context(args.tls_cert_file, args.tls_key_file, args.tls_ca_cert_file, args.tls_auth_clients)
        except (OSError, ssl.SSLError) as exc:
            parser.error(f"cannot load the TLS certificate, key or CA: {exc}")
    elif args.tls_cert_file or args.tls_key_file or args.tls_ca_cert_file:
        parser.error("--tls-cert-file, --tls-key-file and --tls-ca-cert-file need --tls-port")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = Config()
    config.set_internal("maxclients", args.maxclients)
    config.set_internal("proto-max-bulk-len", args.proto_max_bulk_len)
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:                                     # pragma: no cover - uvloop is a dependency
        runner = asyncio.run

    async def run() -> None:
        node = build_node(args)
        tune_gc()
        await serve(node, args.host, args.port, config, tls=tls, tls_port=args.tls_port or 0)

    try:
        runner(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
