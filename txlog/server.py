"""txlog-server: one txlog node. A gRPC service (client API + Raft transport) around the pure Raft core.

The driver loop (`TxlogNode._run`) owns every Raft core and does all I/O, in the order the core's Ready demands:
  1. drain the inbox (peer messages, proposals, trims) and pending ticks into the cores;
  2. collect every group's Ready and persist all of them in ONE LMDB transaction with one fsync (group commit;
     it runs in a worker thread so the event loop keeps accepting appends meanwhile, and they form the next batch);
  3. send messages (only now: they may promise what was just persisted);
  4. apply committed entries: advance the fencing view, answer waiting appends, wake tailers; then advance.
gRPC handlers never touch a core: they enqueue work and await futures the loop resolves.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import random
import signal
from typing import AsyncIterator

import grpc

from txlog.fencing import Decision, LogFencing, Verdict, decode_record
from txlog.generated import txlog_pb2 as pb
from txlog.generated import txlog_pb2_grpc as pb_grpc
from txlog.raft.core import Config, Entry, Message, MessageType, NotLeader, RaftNode, Role
from txlog.storage import GroupWrite, Storage

log = logging.getLogger("txlog")

MAX_MESSAGE_BYTES = 64 << 20
MAX_BATCH_ITEMS = 100_000
MAX_BATCH_BYTES = 32 << 20
MAX_INBOX = 100_000
TAIL_ENTRIES_PER_MESSAGE = 512
GRPC_OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.keepalive_time_ms", 10_000),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.max_pings_without_data", 0)]


@dataclasses.dataclass(frozen=True, slots=True)
class NodeConfig:
    node_id: str
    peers: dict[str, str]              # node id -> host:port (this node included); also the client API address
    data_dir: str
    logs: tuple[str, ...] = ("cluster", "shard0")
    tick_ms: int = 25
    election_ticks: int = 10           # 250-500 ms: well inside the data nodes' 1 s lease
    heartbeat_ticks: int = 2
    append_timeout_ms: int = 5000      # no quorum in this long: UNAVAILABLE
    seed: int | None = None


@dataclasses.dataclass(slots=True)
class _Proposal:
    request: pb.AppendRequest
    future: asyncio.Future


@dataclasses.dataclass(slots=True)
class _Waiter:
    """An append (or trim) waiting for its entry to commit."""
    index: int
    term: int
    future: asyncio.Future
    deadline: float
    is_trim: bool = False


class LogGroup:
    """One Raft group (one log) on this node: its core, fencing view, waiting appends and tailers."""

    def __init__(self, name: str, core: RaftNode):
        self.name = name
        self.core = core
        self.fencing = LogFencing()
        self.waiters: list[_Waiter] = []      # in index order (proposals are appended in order)
        self.commit_changed = asyncio.Event()
        self.was_leader = False

    def notify_tailers(self) -> None:
        self.commit_changed.set()
        self.commit_changed = asyncio.Event()


def _to_proto(log_name: str, m: Message) -> pb.RaftMessage:
    return pb.RaftMessage(log=log_name, type=int(m.type), to=m.to, term=m.term, log_term=m.log_term,
                          index=m.index, commit=m.commit, reject=m.reject, reject_hint=m.reject_hint,
                          entries=[pb.RaftEntry(term=e.term, index=e.index, data=e.data) for e in m.entries],
                          **{"from": m.frm})


def _from_proto(p: pb.RaftMessage) -> Message:
    return Message(MessageType(p.type), getattr(p, "from"), p.to, p.term, log_term=p.log_term, index=p.index,
                   entries=tuple(Entry(e.term, e.index, e.data) for e in p.entries), commit=p.commit,
                   reject=p.reject, reject_hint=p.reject_hint)


class Peer:
    """The outgoing Raft stream to one peer. Messages are fire-and-forget: Raft tolerates loss, so a broken
    connection just drops what was queued and reconnects."""

    QUEUE_LIMIT = 10_000

    def __init__(self, peer_id: str, address: str):
        self.peer_id = peer_id
        self.address = address
        self.queue: asyncio.Queue[pb.RaftMessage] = asyncio.Queue(self.QUEUE_LIMIT)

    def send(self, msg: pb.RaftMessage) -> None:
        try:
            self.queue.put_nowait(msg)
        except asyncio.QueueFull:
            pass   # the peer is not keeping up or is down: dropping is safe, Raft retransmits

    async def run(self) -> None:
        backoff = 0.05
        while True:
            async with grpc.aio.insecure_channel(self.address, options=GRPC_OPTIONS) as channel:
                stub = pb_grpc.RaftStub(channel)
                try:
                    await stub.Send(self._batches())
                except grpc.aio.AioRpcError as exc:
                    log.debug("raft stream to %s broke: %s", self.peer_id, exc.code())
            self._drain()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 0.5)

    async def _batches(self) -> AsyncIterator[pb.RaftBatch]:
        while True:
            first = await self.queue.get()
            batch = pb.RaftBatch(messages=[first])
            while not self.queue.empty() and len(batch.messages) < 256:
                batch.messages.append(self.queue.get_nowait())
            yield batch

    def _drain(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()


class TxlogNode:
    def __init__(self, config: NodeConfig):
        self.config = config
        self.storage = Storage(config.data_dir, list(config.logs))
        rng = random.Random(config.seed)
        raft_config = Config(election_ticks=config.election_ticks, heartbeat_ticks=config.heartbeat_ticks)
        self.groups: dict[str, LogGroup] = {}
        for name in config.logs:
            hard_state, raft_log = self.storage.load(name)
            core = RaftNode(config.node_id, list(config.peers), random.Random(rng.random()), raft_config,
                            hard_state=hard_state, log=raft_log, applied=raft_log.first_index - 1)
            self.groups[name] = LogGroup(name, core)
        self.peers = {pid: Peer(pid, addr) for pid, addr in config.peers.items() if pid != config.node_id}
        self._inbox: list = []
        self._wake = asyncio.Event()
        self._pending_ticks = 0
        self._stopping = False

    # -- the driver loop ---------------------------------------------------------------------------------------
    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            helpers = [tasks.create_task(peer.run()) for peer in self.peers.values()]
            helpers.append(tasks.create_task(self._ticker()))
            await self._run()
            for task in helpers:
                task.cancel()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_ms / 1000)
            self._pending_ticks += 1
            self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            ticks, self._pending_ticks = self._pending_ticks, 0
            inbox, self._inbox = self._inbox, []
            for group in self.groups.values():
                for _ in range(ticks):
                    group.core.tick()
            if ticks:
                self._expire_waiters(loop.time())
            for item in inbox:
                self._handle(item)
            readies = {name: g.core.ready() for name, g in self.groups.items()}
            writes = [GroupWrite(name, r.hard_state, r.entries) for name, r in readies.items()
                      if r.hard_state is not None or r.entries]
            if writes:
                await loop.run_in_executor(None, self.storage.save, writes)
            for name, ready in readies.items():
                group = self.groups[name]
                for m in ready.messages:
                    self.peers[m.to].send(_to_proto(name, m))
                if ready.committed:
                    self._apply(group, ready.committed)
                group.core.advance(ready)
                self._track_role(group)
            if any(g.core.has_ready() for g in self.groups.values()):
                self._wake.set()

    def _handle(self, item) -> None:
        if isinstance(item, pb.RaftMessage):
            group = self.groups.get(item.log)
            if group is not None and item.to == self.config.node_id:
                group.core.step(_from_proto(item))
        elif isinstance(item, _Proposal):
            self._propose(item)
        else:
            trim_log, below, future = item
            self._propose_trim(self.groups[trim_log], below, future)

    def _propose(self, p: _Proposal) -> None:
        req = p.request
        group = self.groups[req.log]
        core = group.core
        self._track_role(group)
        if core.role is not Role.LEADER:
            _resolve(p.future, self._not_leader(req.batch_seq, core.leader_id))
            return
        condition = req.expected_last_index if req.HasField("expected_last_index") else None
        decision: Decision = group.fencing.decide(req.kind, req.epoch, req.writer_id, req.batch_seq, condition,
                                                  core.log.last_index)
        if decision.verdict is Verdict.STALE_EPOCH:
            _resolve(p.future, pb.AppendResponse(batch_seq=req.batch_seq, status=pb.STALE_EPOCH,
                                                 current_epoch=decision.epoch, last_index=core.log.last_index,
                                                 message=f"epoch {req.epoch} is stale: the log is in epoch "
                                                         f"{decision.epoch}"))
            return
        if decision.verdict is Verdict.CONDITION_FAILED:
            _resolve(p.future, pb.AppendResponse(batch_seq=req.batch_seq, status=pb.CONDITION_FAILED,
                                                 current_epoch=decision.epoch, last_index=core.log.last_index,
                                                 message=f"expected last index {req.expected_last_index}, "
                                                         f"the log ends at {core.log.last_index}"))
            return
        if decision.verdict is Verdict.DUPLICATE:
            if decision.index == 0 or decision.index <= core.commit:
                _resolve(p.future, pb.AppendResponse(batch_seq=req.batch_seq, status=pb.OK, index=decision.index,
                                                     current_epoch=decision.epoch))
            else:
                group.waiters.append(_Waiter(decision.index, core.log.term(decision.index) or 0, p.future,
                                             self._deadline()))
                group.waiters.sort(key=lambda w: w.index)
            return
        record = pb.LogRecord(kind=req.kind, epoch=req.epoch, writer_id=req.writer_id, batch_seq=req.batch_seq,
                              items=req.items)
        index, _ = core.propose([record.SerializeToString()])
        group.fencing.note_proposed(index, record)
        group.waiters.append(_Waiter(index, core.term, p.future, self._deadline()))

    def _propose_trim(self, group: LogGroup, below: int, future: asyncio.Future) -> None:
        core = group.core
        if core.role is not Role.LEADER:
            _resolve(future, pb.TrimResponse(status=pb.NOT_LEADER, leader_hint=self._address(core.leader_id)))
            return
        # Trim only what every member already holds, so no follower ever needs entries we have dropped.
        safe = min([core.commit + 1] + [pr.match + 1 for pr in core.progress.values()])
        below = min(below, safe)
        record = pb.LogRecord(kind=pb.TRIM, trim_below=below, epoch=group.fencing.tail_epoch)
        index, _ = core.propose([record.SerializeToString()])
        group.waiters.append(_Waiter(index, core.term, future, self._deadline(), is_trim=True))

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self.config.append_timeout_ms / 1000

    def _apply(self, group: LogGroup, committed: list[Entry]) -> None:
        trim_below = 0
        for entry in committed:
            record = decode_record(entry.data)
            group.fencing.apply(entry.index, record)
            if record.kind == pb.TRIM:
                trim_below = max(trim_below, record.trim_below)
        last = committed[-1].index
        waiters = group.waiters
        done = 0
        for w in waiters:
            if w.index > last:
                break
            done += 1
            entry_term = group.core.log.term(w.index)
            if entry_term is not None and entry_term != w.term:
                _resolve(w.future, self._not_leader(0, group.core.leader_id))   # overwritten: retry elsewhere
            elif w.is_trim:
                _resolve(w.future, pb.TrimResponse(status=pb.OK, first_index=group.core.log.first_index))
            else:
                _resolve(w.future, pb.AppendResponse(status=pb.OK, index=w.index,
                                                     current_epoch=group.fencing.applied_epoch))
        del waiters[:done]
        if trim_below:
            self._trim(group, trim_below)
        group.notify_tailers()

    def _trim(self, group: LogGroup, below: int) -> None:
        core = group.core
        below = min(below, core.applied + 1, core.log.last_index + 1)
        if below <= core.log.first_index:
            return
        prev_term = core.log.term(below - 1) or 0
        core.compact(below)
        self.storage.compact(group.name, below, prev_term)

    def _track_role(self, group: LogGroup) -> None:
        core = group.core
        is_leader = core.role is Role.LEADER
        if is_leader and not group.was_leader:
            uncommitted = [(e.index, decode_record(e.data))
                           for e in core.log.slice(core.applied + 1, core.log.last_index)]
            group.fencing.become_leader(uncommitted)
        elif group.was_leader and not is_leader:
            # Deposed: whatever we proposed may or may not commit under the next leader; the writers retry
            # there and deduplication answers them.
            for w in group.waiters:
                _resolve(w.future, self._not_leader(0, core.leader_id))
            group.waiters.clear()
        group.was_leader = is_leader

    def _expire_waiters(self, now: float) -> None:
        """Appends that waited longer than append_timeout_ms for a quorum get UNAVAILABLE (they may still
        commit later; the writer's retry is deduplicated)."""
        for group in self.groups.values():
            expired = [w for w in group.waiters if now > w.deadline]
            if not expired:
                continue
            for w in expired:
                _resolve(w.future, pb.AppendResponse(status=pb.UNAVAILABLE,
                                                     message="no quorum: not committed in time "
                                                             "(it may still commit later)"))
            group.waiters = [w for w in group.waiters if now <= w.deadline]

    # -- helpers for handlers ----------------------------------------------------------------------------------
    def _address(self, node_id: str) -> str:
        return self.config.peers.get(node_id, "")

    def _not_leader(self, batch_seq: int, leader_id: str) -> pb.AppendResponse:
        return pb.AppendResponse(batch_seq=batch_seq, status=pb.NOT_LEADER, leader_hint=self._address(leader_id),
                                 message=f"not the leader; leader is {leader_id or 'unknown'}")

    def enqueue(self, item) -> bool:
        if len(self._inbox) >= MAX_INBOX:
            return False
        self._inbox.append(item)
        self._wake.set()
        return True

    def submit(self, request: pb.AppendRequest) -> asyncio.Future:
        """Queue an append for the driver loop; the future resolves with its AppendResponse."""
        future = asyncio.get_running_loop().create_future()
        if not self.enqueue(_Proposal(request, future)):
            future.set_result(pb.AppendResponse(status=pb.UNAVAILABLE, message="inbox full"))
        return future


def _resolve(future: asyncio.Future, value) -> None:
    if not future.done():
        future.set_result(value)


def validate_append(request: pb.AppendRequest, logs) -> str | None:
    """Why the request is malformed, or None."""
    if request.log not in logs:
        return f"unknown log {request.log!r}"
    if request.kind not in (pb.DATA, pb.LEADERSHIP):
        return f"entry kind {pb.EntryKind.Name(request.kind) if request.kind in (2, 3) else request.kind} " \
               f"cannot be appended by a client"
    if len(request.items) > MAX_BATCH_ITEMS:
        return f"batch has {len(request.items)} items (limit {MAX_BATCH_ITEMS})"
    if request.ByteSize() > MAX_BATCH_BYTES:
        return f"batch is {request.ByteSize()} bytes (limit {MAX_BATCH_BYTES})"
    if request.kind == pb.DATA and request.writer_id and request.batch_seq == 0:
        return "batch_seq must be >= 1 when writer_id is set"
    return None


class TxLogService(pb_grpc.TxLogServicer):
    def __init__(self, node: TxlogNode):
        self.node = node

    async def Append(self, request_iterator, context):
        """Batches are processed in order and answered in the same order (a rejection waits behind an
        earlier batch that is still committing), so a writer can match answers to batches by position."""
        answers: asyncio.Queue = asyncio.Queue()

        async def read_requests() -> None:
            try:
                async for request in request_iterator:
                    problem = validate_append(request, self.node.groups)
                    if problem is not None:
                        future = asyncio.get_running_loop().create_future()
                        future.set_result(pb.AppendResponse(status=pb.INVALID, message=problem))
                    else:
                        future = self.node.submit(request)
                    answers.put_nowait((request.batch_seq, future))
            finally:
                answers.put_nowait(None)

        reader = asyncio.ensure_future(read_requests())
        try:
            while (item := await answers.get()) is not None:
                batch_seq, future = item
                response = await future
                response.batch_seq = batch_seq
                yield response
        finally:
            reader.cancel()

    async def Tail(self, request: pb.TailRequest, context):
        group = self.node.groups.get(request.log)
        if group is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown log {request.log!r}")
        next_index = max(request.from_index, 1)
        per_message = min(request.max_batch or TAIL_ENTRIES_PER_MESSAGE, 4 * TAIL_ENTRIES_PER_MESSAGE)
        while True:
            core = group.core
            if next_index < core.log.first_index:
                await context.abort(grpc.StatusCode.OUT_OF_RANGE,
                                    f"index {next_index} was trimmed; the log starts at {core.log.first_index}")
            changed = group.commit_changed
            hi = core.applied   # applied entries are committed and persisted here
            while next_index <= hi:
                upto = min(hi, next_index + per_message - 1)
                entries = [pb.TailEntry(index=e.index, term=e.term, record=decode_record(e.data))
                           for e in core.log.slice(next_index, upto)]
                await context.write(pb.TailResponse(entries=entries, commit_index=core.commit,
                                                    first_index=core.log.first_index))
                next_index = upto + 1
                hi = core.applied
            await changed.wait()

    async def Status(self, request, context):
        node = self.node
        logs = []
        for name, g in node.groups.items():
            c = g.core
            logs.append(pb.LogStatus(log=name, role=c.role.value, term=c.term, commit_index=c.commit,
                                     applied_index=c.applied, last_index=c.log.last_index,
                                     first_index=c.log.first_index, epoch=g.fencing.applied_epoch,
                                     leader_id=c.leader_id, leader_hint=node._address(c.leader_id)))
        return pb.StatusResponse(node_id=node.config.node_id, logs=logs, peers=list(node.config.peers))

    async def Trim(self, request, context):
        if request.log not in self.node.groups:
            return pb.TrimResponse(status=pb.INVALID, message=f"unknown log {request.log!r}")
        future = asyncio.get_running_loop().create_future()
        self.node.enqueue((request.log, request.below_index, future))
        return await future


class RaftService(pb_grpc.RaftServicer):
    def __init__(self, node: TxlogNode):
        self.node = node

    async def Send(self, request_iterator, context):
        async for batch in request_iterator:
            for m in batch.messages:
                self.node.enqueue(m)
        return pb.RaftAck()


async def serve(config: NodeConfig, listen: str) -> None:
    node = TxlogNode(config)
    server = grpc.aio.server(options=GRPC_OPTIONS)
    pb_grpc.add_TxLogServicer_to_server(TxLogService(node), server)
    pb_grpc.add_RaftServicer_to_server(RaftService(node), server)
    server.add_insecure_port(listen)
    await server.start()
    log.info("txlog node %s serving on %s (logs: %s)", config.node_id, listen, ",".join(config.logs))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, node.stop)
    try:
        await node.run()
    finally:
        await server.stop(grace=0.5)
        node.storage.close()


def parse_peers(values: list[str]) -> dict[str, str]:
    peers = {}
    for value in values:
        node_id, sep, address = value.partition("=")
        if not sep or not node_id or ":" not in address:
            raise argparse.ArgumentTypeError(f"--peer wants ID=HOST:PORT, got {value!r}")
        peers[node_id] = address
    return peers


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="txlog-server", description="A memdb transaction log node (Raft).")
    parser.add_argument("--id", required=True, help="this node's id (e.g. a)")
    parser.add_argument("--listen", required=True, help="host:port to serve gRPC on")
    parser.add_argument("--peer", action="append", required=True,
                        help="ID=HOST:PORT of every member, this node included (repeat)")
    parser.add_argument("--data", required=True, help="directory of this node's LMDB environment")
    parser.add_argument("--logs", default="cluster,shard0", help="comma-separated log names")
    parser.add_argument("--tick-ms", type=int, default=25)
    parser.add_argument("--election-ticks", type=int, default=10)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s txlog-%(name)s %(message)s")
    peers = parse_peers(args.peer)
    if args.id not in peers:
        parser.error(f"--peer must list this node ({args.id}) too")
    config = NodeConfig(node_id=args.id, peers=peers, data_dir=args.data,
                        logs=tuple(x for x in args.logs.split(",") if x), tick_ms=args.tick_ms,
                        election_ticks=args.election_ticks)
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(config, args.listen))


if __name__ == "__main__":
    main()
