"""The gRPC client API (proto/memdb.proto) of a data node, next to RESP.

Commands run through the node exactly as RESP commands do (same command table, same write path: a write is
answered after commit + apply). What gRPC adds: every reply keeps its RESP3 type (`to_value`), a write may carry
(client_id, client_seq) for exactly-once retries, and a read may carry `min_index` (read-your-writes on replicas).
Replies on a Pipeline / BatchPipeline stream are in request order; writes may be in flight together (they
group-commit), a read waits for the writes before it on the same stream, as on a RESP connection. BatchPipeline
carries many requests per message and answers with every reply that is ready at once, in one message.
A MOVED redirect names the owner's gRPC address here (the node's _route names its RESP one). With the node's
grpc_tls_* settings (--grpc-tls-cert/--grpc-tls-key[/--grpc-tls-ca]) the API is served over (mutual) TLS only.
"""
from __future__ import annotations

import asyncio
import time
import types
from typing import Any, AsyncIterator, Sequence

import grpc

from memdb.cluster import node_id
from memdb.commands.dispatch import lookup
from memdb.commands.spec import (Bool, CommandError, CommandSpec, Double, Flag, Map, NullArray, SetReply,
                                 SimpleString, Verbatim)
from memdb.generated import memdb_pb2 as pb
from memdb.generated import memdb_pb2_grpc as pb_grpc
from memdb.session import Session

MAX_PIPELINE_INFLIGHT = 1024                # requests started on a stream and not yet answered
MAX_RESPONSE_BATCH = 512                    # replies per ResponseBatch message
_END = object()                             # end of a stream's requests
_LOGGED_FLAGS = frozenset({Flag.WRITE, Flag.MAY_REPLICATE})
GRPC_OPTIONS = [("grpc.max_receive_message_length", 512 << 20), ("grpc.max_send_message_length", 512 << 20)]


def to_value(reply: Any) -> pb.Value:
    """A handler's reply (see memdb/commands/spec.py) as a typed Value."""
    if reply is None or isinstance(reply, NullArray):
        return pb.Value(null=True)
    if isinstance(reply, bytes):
        return pb.Value(bulk=reply)
    if isinstance(reply, bool):
        return pb.Value(boolean=reply)
    if isinstance(reply, int):
        if -(1 << 63) <= reply < (1 << 63):
            return pb.Value(integer=reply)
        return pb.Value(big_number=str(reply))
    if isinstance(reply, SimpleString):
        return pb.Value(simple=reply.value)
    if isinstance(reply, CommandError):
        return pb.Value(error=reply.message)
    if isinstance(reply, Double):
        return pb.Value(double=reply.value)
    if isinstance(reply, float):
        return pb.Value(double=reply)
    if isinstance(reply, Bool):
        return pb.Value(boolean=reply.value)
    if isinstance(reply, Map):
        return pb.Value(map=pb.Map(entries=[pb.MapEntry(key=to_value(k), value=to_value(v)) for k, v in reply.items]))
    if isinstance(reply, SetReply):
        return pb.Value(set=pb.Array(items=[to_value(x) for x in reply.items]))
    if isinstance(reply, Verbatim):
        return pb.Value(verbatim=pb.Verbatim(format=reply.format, text=reply.value))
    if isinstance(reply, (list, tuple)):
        return pb.Value(array=pb.Array(items=[to_value(x) for x in reply]))
    if isinstance(reply, str):
        return pb.Value(bulk=reply.encode())
    raise TypeError(f"cannot encode a reply of type {type(reply).__name__}")


class MemdbService(pb_grpc.MemdbServicer):
    def __init__(self, node):
        self.node = node

    def _session(self) -> Session:
        """One per Execute call or Pipeline stream (MULTI/WATCH state lives across a stream's requests)."""
        session = Session(client_id=0)
        session.resp = 3                      # the richest reply shapes; Value keeps every type
        # A gRPC request sent to a replica is a deliberate replica read (the client chose the node).
        self.node.readonly_command(session, [b"READONLY"])
        return session

    def _start(self, request: pb.Request, args: list[bytes], spec: CommandSpec | None, session: Session) -> Any:
        """Start one request (`spec`: its command, None if unknown): the reply if it is ready at once (most reads,
        errors), else a future of it (writes answer after commit + apply; a read may wait for min_index or block)."""
        node = self.node
        try:
            if not args:
                raise CommandError("ERR empty command")
            if request.db > 15:
                raise CommandError("ERR DB index is out of range")
            if spec is not None and Flag.CONNECTION in spec.flags:
                return _connection_command(spec.name, args)
            if request.min_index and node.applied_index < request.min_index:
                return asyncio.ensure_future(self._after_index(request, args, spec, session))
            session.db = request.db
            # an unknown command (spec None) still goes to the node: it gives the error and marks an open MULTI
            result = node.execute(session, args, client=(request.client_id, request.client_seq)
                                  if request.client_id else None)
        except CommandError as exc:
            return self._redirect(exc)
        if isinstance(result, types.CoroutineType):   # not asyncio.iscoroutine: an ABC check on every reply
            result = asyncio.ensure_future(result)
        return result

    async def _after_index(self, request: pb.Request, args: list[bytes], spec: CommandSpec | None,
                           session: Session) -> Any:
        """Read-your-writes: run the request once this node has applied request.min_index."""
        try:
            await self.node.wait_applied(request.min_index)
        except CommandError as exc:
            return exc
        return await self._settle(self._start(request, args, spec, session))

    async def _settle(self, reply: Any) -> Any:
        """The final reply of a started request (a CommandError is a reply too)."""
        if isinstance(reply, asyncio.Future) and not reply.done():
            await asyncio.wait([reply])       # never raises: the outcome is read by _ready
        return self._ready(reply)

    def _ready(self, reply: Any) -> Any:
        return self._outcome(reply) if isinstance(reply, asyncio.Future) else reply

    def _outcome(self, future: asyncio.Future) -> Any:
        if future.cancelled():
            return CommandError("ERR the request was cancelled on the server")
        error = future.exception()
        if error is None:
            return future.result()
        if isinstance(error, CommandError):
            return self._redirect(error)
        raise error

    def _redirect(self, error: CommandError) -> CommandError:
        """MOVED names a node's RESP address (memdb.node._route); a gRPC client needs the same node's gRPC
        address, so the redirect is rewritten here (to the owner's gRPC port when the topology knows one)."""
        if not error.message.startswith("MOVED "):
            return error
        try:
            _, slot, address = error.message.split(" ")
        except ValueError:
            return error
        target = next((n for n in self.node.topology.nodes if n.address == address and n.grpc_port), None)
        if target is None:
            return error
        return CommandError(f"MOVED {slot} {target.host}:{target.grpc_port}")

    def _response(self, request: pb.Request, reply: Any) -> pb.Response:
        response = pb.Response(index=self.node.applied_index, request_id=request.request_id)
        value = response.reply
        # the common shapes are set in place; the rest (arrays, maps, ...) are built by to_value and copied
        if isinstance(reply, bytes):
            value.bulk = reply
        elif reply is None:
            value.null = True
        elif type(reply) is int and -(1 << 63) <= reply < (1 << 63):
            value.integer = reply
        elif isinstance(reply, SimpleString):
            value.simple = reply.value
        elif isinstance(reply, CommandError):
            value.error = reply.message
        else:
            value.CopyFrom(to_value(reply))
        return response

    async def Execute(self, request, context):
        args = list(request.args)
        reply = self._start(request, args, _lookup(args), self._session())
        return self._response(request, await self._settle(reply))

    async def Pipeline(self, request_iterator, context):
        async def batches():
            async for request in request_iterator:
                yield (request,)
        async for responses in self._pipeline(batches()):
            for response in responses:
                yield response

    async def BatchPipeline(self, request_iterator, context):
        async def batches():
            async for batch in request_iterator:
                yield batch.requests
        async for responses in self._pipeline(batches()):
            yield pb.ResponseBatch(responses=responses)

    async def _pipeline(self, batches: AsyncIterator[Sequence[pb.Request]]) -> AsyncIterator[list[pb.Response]]:
        """One session for the whole stream; replies in request order, in groups of those ready together.

        Writes may be in flight together (they group-commit); a read waits for the writes before it on the stream
        (read-your-writes, as on a RESP connection), and a read that cannot answer at once (min_index, a blocking
        command) holds back the requests after it."""
        answers: asyncio.Queue = asyncio.Queue(MAX_PIPELINE_INFLIGHT)
        session = self._session()

        async def read_requests() -> None:
            writes = _WritesInFlight()
            try:
                async for batch in batches:
                    for request in batch:
                        args = list(request.args)
                        spec = _lookup(args)
                        # logged commands (writes, EVAL/FCALL: MAY_REPLICATE) answer after commit: in flight
                        is_write = spec is not None and bool(spec.flags & _LOGGED_FLAGS)
                        if not is_write and writes.count:
                            await writes.drained()
                        reply = self._start(request, args, spec, session)
                        if isinstance(reply, asyncio.Future):
                            if is_write:
                                writes.add(reply)
                            elif not reply.done():
                                await asyncio.wait([reply])
                        await answers.put((request, reply))
            finally:
                await answers.put(_END)

        reader = asyncio.ensure_future(read_requests())
        try:
            item = await answers.get()
            while item is not _END:
                request, reply = item
                responses = [self._response(request, await self._settle(reply))]
                item = None
                # everything else already answered goes in the same message
                while len(responses) < MAX_RESPONSE_BATCH and not answers.empty():
                    item = answers.get_nowait()
                    if item is _END or (isinstance(item[1], asyncio.Future) and not item[1].done()):
                        break
                    responses.append(self._response(item[0], self._ready(item[1])))
                    item = None
                yield responses
                if item is None:
                    item = await answers.get()
        finally:
            reader.cancel()
            session_closed = getattr(self.node, "session_closed", None)
            if session_closed is not None:
                session_closed(session)        # a parked command must not run for a client that left

    async def Topology(self, request, context):
        node = self.node
        topo = node.topology
        shards = []
        for name, ranges in topo.shards.items():
            primary = topo.primary_of(name)
            nodes = [pb.NodeInfo(name=n.name, zone=n.zone, host=n.host, port=n.port, grpc_port=n.grpc_port,
                                 role="primary" if n == primary else "replica", id=node_id(n.name))
                     for n in topo.shard_nodes(name)]
            shards.append(pb.ShardInfo(name=name, slots=[pb.SlotRange(start=lo, end=hi) for lo, hi in ranges],
                                       nodes=nodes, epoch=topo.primaries.get(name, (0, ""))[0]))
        return pb.TopologyResponse(shards=shards, answered_by=node.config.node_id)


class _WritesInFlight:
    """The writes started on a stream and not yet answered: a count and a way to wait until there are none."""

    def __init__(self):
        self.count = 0
        self._none_left: asyncio.Event | None = None

    def add(self, future: asyncio.Future) -> None:
        self.count += 1
        future.add_done_callback(self._done)

    def _done(self, _future: asyncio.Future) -> None:
        self.count -= 1
        if self.count == 0 and self._none_left is not None:
            self._none_left.set()
            self._none_left = None

    async def drained(self) -> None:
        if self.count:
            if self._none_left is None:
                self._none_left = asyncio.Event()
            await self._none_left.wait()


def _connection_command(name: str, args: list[bytes]) -> Any:
    """The few connection-level commands that make sense over gRPC; an error reply for the others."""
    if name == "ping":
        return args[1] if len(args) > 1 else SimpleString("PONG")
    if name == "echo":
        return args[1]
    if name == "time":
        now_us = time.time_ns() // 1000
        return [b"%d" % (now_us // 1_000_000), b"%d" % (now_us % 1_000_000)]
    return CommandError(f"ERR '{name}' is a RESP connection command; over gRPC use the request's fields "
                        f"(db, client_id) instead")


def _lookup(args: list[bytes]) -> CommandSpec | None:
    try:
        return lookup(args)
    except CommandError:
        return None


def server_credentials(cert_path: str, key_path: str, ca_path: str = "") -> grpc.ServerCredentials:
    """TLS for the gRPC API from PEM files; with `ca_path`, clients must present a certificate that CA signed."""
    def read(path: str, what: str) -> bytes:
        try:
            with open(path, "rb") as f:
                pem = f.read()
        except OSError as exc:
            raise SystemExit(f"gRPC TLS: cannot read the {what} {path!r}: {exc.strerror}") from None
        if b"-----BEGIN " not in pem:
            raise SystemExit(f"gRPC TLS: the {what} {path!r} is not PEM")
        return pem
    chain, key = read(cert_path, "certificate chain"), read(key_path, "private key")
    ca = read(ca_path, "client CA") if ca_path else None
    return grpc.ssl_server_credentials([(key, chain)], root_certificates=ca, require_client_auth=ca is not None)


async def start_grpc_server(node, address: str) -> grpc.aio.Server:
    """Serve the API on `address`: over TLS when the node's config names a certificate (NodeConfig.grpc_tls_*)."""
    server = grpc.aio.server(options=GRPC_OPTIONS)
    pb_grpc.add_MemdbServicer_to_server(MemdbService(node), server)
    config = node.config
    if getattr(config, "grpc_tls_cert", ""):
        server.add_secure_port(address, server_credentials(config.grpc_tls_cert, config.grpc_tls_key,
                                                           config.grpc_tls_ca))
    else:
        server.add_insecure_port(address)
    await server.start()
    return server
