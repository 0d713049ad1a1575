"""The gRPC client API (proto/memdb.proto) of a data node, next to RESP.

Commands run through the node exactly as RESP commands do (same command table, same write path: a write is
answered after commit + apply). What gRPC adds: every reply keeps its RESP3 type (`to_value`), a write may carry
(client_id, client_seq) for exactly-once retries, and a read may carry `min_index` (read-your-writes on replicas).
Replies on a Pipeline stream are in request order; writes may be in flight together (they group-commit), a read
waits for the writes before it on the same stream, as on a RESP connection.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc

from memdb.cluster import node_id
from memdb.commands.dispatch import lookup
from memdb.commands.spec import (Bool, CommandError, Double, Flag, Map, NullArray, SetReply, SimpleString,
                                 Verbatim)
from memdb.generated import memdb_pb2 as pb
from memdb.generated import memdb_pb2_grpc as pb_grpc
from memdb.session import Session

MAX_PIPELINE_INFLIGHT = 1024
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

    async def _run(self, request: pb.Request, session: Session) -> Any:
        """The reply (or CommandError) of one request."""
        node = self.node
        try:
            args = list(request.args)
            if not args:
                raise CommandError("ERR empty command")
            if request.db > 15:
                raise CommandError("ERR DB index is out of range")
            session.db = request.db
            if request.min_index:
                await node.wait_applied(request.min_index)
            connection_reply = _connection_command(args)
            if connection_reply is not None:
                return connection_reply
            result = node.execute(session, args, client=(request.client_id, request.client_seq)
                                  if request.client_id else None)
            if asyncio.isfuture(result) or asyncio.iscoroutine(result):
                result = await result
            return result
        except CommandError as exc:
            return exc

    def _response(self, request: pb.Request, reply: Any) -> pb.Response:
        return pb.Response(reply=to_value(reply), index=self.node.applied_index, request_id=request.request_id)

    async def Execute(self, request, context):
        return self._response(request, await self._run(request, self._session()))

    async def Pipeline(self, request_iterator, context):
        answers: asyncio.Queue = asyncio.Queue(MAX_PIPELINE_INFLIGHT)
        session = self._session()

        async def read_requests() -> None:
            writes_in_flight: list[asyncio.Future] = []
            try:
                async for request in request_iterator:
                    is_write = _is_write(request.args)
                    if not is_write and writes_in_flight:
                        # read-your-writes on this stream: a read runs after the writes before it
                        await asyncio.gather(*writes_in_flight, return_exceptions=True)
                        writes_in_flight.clear()
                    task = asyncio.ensure_future(self._run(request, session))
                    if is_write:
                        writes_in_flight.append(task)
                    else:
                        await task
                    await answers.put((request, task))
            finally:
                await answers.put(None)

        reader = asyncio.ensure_future(read_requests())
        try:
            while (item := await answers.get()) is not None:
                request, task = item
                yield self._response(request, await task)
        finally:
            reader.cancel()

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


def _connection_command(args: list[bytes]) -> Any:
    """The few connection-level commands that make sense over gRPC; None for everything else."""
    try:
        spec = lookup(args)
    except CommandError:
        return None
    if Flag.CONNECTION not in spec.flags:
        return None
    if spec.name == "ping":
        return args[1] if len(args) > 1 else SimpleString("PONG")
    if spec.name == "echo":
        return args[1]
    if spec.name == "time":
        now_us = time.time_ns() // 1000
        return [b"%d" % (now_us // 1_000_000), b"%d" % (now_us % 1_000_000)]
    return CommandError(f"ERR '{spec.name}' is a RESP connection command; over gRPC use the request's fields "
                        f"(db, client_id) instead")


def _is_write(args) -> bool:
    try:
        return Flag.WRITE in lookup(list(args)).flags
    except CommandError:
        return False


async def start_grpc_server(node, address: str) -> grpc.aio.Server:
    server = grpc.aio.server(options=GRPC_OPTIONS)
    pb_grpc.add_MemdbServicer_to_server(MemdbService(node), server)
    server.add_insecure_port(address)
    await server.start()
    return server
