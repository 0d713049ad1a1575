"""txlog-server: one txlog node. A gRPC service (client API + Raft transport) around the pure Raft core, and the
same service on the txlog wire (txlog/wire.py: framed protobuf on plain TCP, ~9x cheaper per message) when the
node's address names a wire port (`HOST:PORT+WIREPORT`).

The driver loop (`TxlogNode._run`) owns every Raft core; one persister task (`TxlogNode._persister`) owns the disk.
Each driver iteration:
  1. drains pending ticks and the inbox into the cores: peer messages first, then every proposal of the iteration
     as ONE `propose` call per group (so followers get one append per iteration, not one per batch), then trims;
  2. collects every group's Ready and
     - sends the leader's APPEND/HEARTBEAT messages at once: they promise nothing about the leader's own disk, so
       the leader fsyncs in parallel with its followers (Raft thesis §10.2.1); the leader counts itself towards a
       commit only once its own fsync is done (the core's `advance`);
     - applies newly committed entries at once: committed means fsynced on a majority, so appends are answered
       and tailers woken without waiting for this node's disk (a leader wakes its tailers before answering the
       appends: the primary applies from its tail; a follower wakes them after its persister, since its fsync
       and ack are on the path of the next commit and its tail is not);
     - hands the rest (entries + hard state to persist, every other message, the Ready to `advance`) to the
       persister.
The persister merges everything queued while its previous fsync ran into ONE storage save, one WAL record with
one fdatasync (group commit across iterations; txlog/storage.py), then sends the held
messages (votes, append acknowledgements: they promise what was just persisted), `advance`s the Readies in order,
and wakes the driver (the leader's commit may have moved). A hard state whose only change is the commit index is
not worth an fsync (the commit index is re-learned from the leader after a restart; etcd-raft does the same): it
rides along with the next transaction that syncs anyway.
A save runs on the loop's thread and blocks it (0.2-0.5 ms here): in a worker thread it cost more than it
saved, in GIL hand-offs, futex calls and wake-ups (a follower's CPU per entry 0.8-1.1 ms -> 0.55-0.6 ms; the
txlog bench at 1 appender 535 -> 730 appends/s, at 50 appenders 21.1k -> 21.8k). Messages arriving meanwhile
wait in the socket buffers and are stepped together in the next iteration. A *heavy* save (a large record, or
one that starts a checkpoint: `Storage.heavy`) runs on the disk thread instead, while the loop goes on ticking,
stepping messages and queueing Readies: a leader whose loop stalled for a 20 MB write's checkpoint (0.1-0.3 s)
missed its heartbeats and lost its leadership. Until that save returns, nothing that depends on the disk is sent or
advanced (`_persisting`), as if it had blocked.
gRPC handlers never touch a core: they enqueue work and await futures the loop resolves.

A node whose store is new (`join`) first asks every peer for its Status, serving meanwhile. If none of them has
ever taken part in the cluster (term 0, empty log), the cluster is new and the node starts as a normal member. If
any has, this node lost its disk (or started late in a new cluster): its logs restart `recovering`
(txlog/raft/core.py), in a term no lower than any peer's, and vote only once they hold a leader's whole log. Forgetting acknowledged entries and votes would
otherwise let it help elect a leader that lacks an acknowledged write. It waits for *every* peer, because the term
it may have voted in is known only to the candidate it voted for; so a new cluster starts once all its nodes are up.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import dataclasses
import logging
import random
import signal
import os
import ssl
import sys
import time
from typing import AsyncIterator

import grpc
from google.protobuf.message import DecodeError

from txlog.fencing import Decision, LogFencing, Verdict, decode_record
from txlog.generated import txlog_pb2 as pb
from txlog.generated import txlog_pb2_grpc as pb_grpc
from txlog.raft.core import Config, Entry, HardState, Message, MessageType, RaftNode, Ready, Role
from txlog.storage import GroupWrite, Storage, StorageCorrupt
from txlog.tls import TxlogTLS, channel, wire_context
from txlog import wire

log = logging.getLogger("txlog")
_MESSAGE_TYPES = frozenset(int(t) for t in MessageType)
# Sent without waiting for the persister (when their term is durable): they promise nothing about this node's log.
# A heartbeat's answer must not wait behind a long save either: the leader counts on it to know it still has a
# quorum (check-quorum), and steps down after an election timeout without one.
_EARLY_TYPES = (MessageType.APPEND, MessageType.HEARTBEAT, MessageType.HEARTBEAT_RESP)

MAX_MESSAGE_BYTES = 64 << 20
MAX_BATCH_ITEMS = 100_000
MAX_BATCH_BYTES = 32 << 20
MAX_INBOX = 100_000
TAIL_ENTRIES_PER_MESSAGE = 512
# A leader's commit-only append (it tells a follower the commit index moved) waits this long for a real append
# (or heartbeat) to the same follower that carries the same news: under load that append comes first and the
# notice is never sent, which saves a write and the follower's reply. Followers apply (and feed their tailers:
# replicas) at most this much later when the shard is quiet; the primary tails from the leader, so
# acknowledgements are not delayed. Measured (bench/README.md): with gRPC (~140 µs of CPU per message on each
# side) 1 ms -> 20 ms gave +30% SET/s at -c 1; on the txlog wire 20 ms -> 5 ms costs nothing measurable at -c 1
# or -c 50 and a replica sees a quiet write after 5.8 ms instead of 21 ms (p50).
COMMIT_NOTICE_DELAY_S = 0.005
GRPC_OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.keepalive_time_ms", 10_000),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.max_pings_without_data", 0)]
# A second server on the same port must fail, not silently share the port (gRPC enables SO_REUSEPORT by default).
SERVER_OPTIONS = GRPC_OPTIONS + [("grpc.so_reuseport", 0)]


MEMORY_ENTRIES = 512   # applied entries (append batches) a log keeps in memory; older ones are read back from LMDB
MEMORY_BYTES = 256 << 20   # ... fewer if their data would hold more than this (large writes: 512 x 20 MB is 10 GB)


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
    memory_entries: int = MEMORY_ENTRIES
    memory_bytes: int = MEMORY_BYTES
    seed: int | None = None
    tls: TxlogTLS | None = None        # mutual TLS for clients and peers, gRPC and wire (txlog/tls.py)


@dataclasses.dataclass(slots=True)
class _Proposal:
    request: pb.AppendRequest
    future: asyncio.Future


@dataclasses.dataclass(slots=True)
class _Trim:
    log: str
    below: int
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

    def __init__(self, name: str, core: RaftNode, hard_state: HardState):
        self.name = name
        self.core = core
        self.fencing = LogFencing()
        self.waiters: list[_Waiter] = []      # in index order (proposals are appended in order)
        self.commit_changed = asyncio.Event()
        self.was_leader = False
        self.recovering = hard_state.recovering   # lost its log; logged when the core has caught up
        self.applied_index = core.applied     # what the driver has applied (tailers read up to here)
        self.durable_term = hard_state.term   # the term on disk: messages of a higher term wait for the fsync
        self.durable_hs = hard_state          # the hard state on disk (commit may lag: see the module doc)
        self.unsynced_hs: HardState | None = None   # a commit-only change waiting for the next fsync
        self.submitted: tuple[int, int] = (0, 0)    # (index, term) of the last entry handed to the persister
        self.trim_floor = 0                   # applied trims: nothing below this is served any more
        self.trim_at = 0                      # index of an applied TRIM entry the core has yet to advance past

    @property
    def first_index(self) -> int:
        return max(self.core.log.first_index, self.trim_floor)

    def notify_tailers(self) -> None:
        self.commit_changed.set()
        self.commit_changed = asyncio.Event()


def _to_proto(log_name: str, m: Message, with_entries: bool = True) -> pb.RaftMessage:
    return pb.RaftMessage(log=log_name, type=int(m.type), to=m.to, term=m.term, log_term=m.log_term,
                          index=m.index, commit=m.commit, reject=m.reject, reject_hint=m.reject_hint,
                          entries=[pb.RaftEntry(term=e.term, index=e.index, data=e.data) for e in m.entries]
                          if with_entries else (),
                          last_index=m.last_index, recovering=m.recovering, **{"from": m.frm})


# Hand-encoded protobuf for what carries entries on the wire (RaftBatch, TailResponse): the same bytes the generated
# classes would produce, but an entry's data (up to 32 MB) is written from the object the log holds, instead of
# being copied into a RaftEntry or a decoded LogRecord, then into the serialized message, then into the frame.
_WRITE_JOINED_BELOW = 64 << 10     # smaller frames are joined into one bytes object (one buffer for the kernel)


def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _raft_batch_parts(messages: list[tuple[str, Message]]) -> tuple[list[bytes], int]:
    """A RaftBatch of `messages` as pieces to write one after the other, and their total size."""
    parts: list[bytes] = []
    total = 0
    for name, m in messages:
        body = [_to_proto(name, m, with_entries=False).SerializeToString()]
        size = len(body[0])
        for e in m.entries:
            entry_head = b"\x08" + _varint(e.term) + b"\x10" + _varint(e.index) + b"\x1a" + _varint(len(e.data))
            field_head = b"\x42" + _varint(len(entry_head) + len(e.data)) + entry_head     # RaftMessage.entries
            body += (field_head, e.data)
            size += len(field_head) + len(e.data)
        head = b"\x0a" + _varint(size)                                                  # RaftBatch.messages
        parts.append(head)
        parts += body
        total += len(head) + size
    return parts, total


def _tail_response_parts(entries: list[Entry], commit_index: int, first_index: int) -> tuple[list[bytes], int]:
    """A TailResponse as pieces, each entry's record being the LogRecord bytes the log stores (Raft's own empty
    entry is written as a NOOP record, as decode_record reads it)."""
    parts: list[bytes] = []
    total = 0
    for e in entries:
        record = e.data or _NOOP_RECORD
        entry_head = b"\x08" + _varint(e.index) + b"\x10" + _varint(e.term) + b"\x1a" + _varint(len(record))
        field_head = b"\x0a" + _varint(len(entry_head) + len(record)) + entry_head     # TailResponse.entries
        parts += (field_head, record)
        total += len(field_head) + len(record)
    tail = b"\x10" + _varint(commit_index) + b"\x18" + _varint(first_index)
    parts.append(tail)
    return parts, total + len(tail)


_NOOP_RECORD = pb.LogRecord(kind=pb.NOOP).SerializeToString()


def _frame_parts(kind: int, parts: list[bytes], size: int) -> list[bytes]:
    header = wire.HEADER.pack(size, kind)
    if size < _WRITE_JOINED_BELOW:
        return [header + b"".join(parts)]
    return [header, *parts]


def _from_proto(p: pb.RaftMessage) -> Message:
    return Message(MessageType(p.type), getattr(p, "from"), p.to, p.term, log_term=p.log_term, index=p.index,
                   entries=tuple([Entry(e.term, e.index, e.data) for e in p.entries]), commit=p.commit,
                   reject=p.reject, reject_hint=p.reject_hint, last_index=p.last_index, recovering=p.recovering)


class Peer:
    """The outgoing Raft stream to one peer. Messages are fire-and-forget: Raft tolerates loss, so a broken
    connection just drops what was queued and reconnects (with a capped backoff while the peer is down)."""

    QUEUE_LIMIT = 10_000
    MESSAGES_PER_BATCH = 1024

    def __init__(self, peer_id: str, address: str, stats: collections.Counter, tls: TxlogTLS | None = None):
        self.stats = stats
        self.peer_id = peer_id
        self.address = address
        self.tls = tls
        self.queue: collections.deque[pb.RaftMessage] = collections.deque()
        self._ready = asyncio.Event()

    def send(self, msgs: list[tuple[str, Message]]) -> None:
        if len(self.queue) + len(msgs) > self.QUEUE_LIMIT:
            return   # the peer is not keeping up or is down: dropping is safe, Raft retransmits
        self.queue.extend(_to_proto(name, m) for name, m in msgs)
        self._ready.set()

    async def run(self) -> None:
        backoff = 0.05
        while True:
            sent = [0]
            async with channel(self.address, self.tls, GRPC_OPTIONS) as peer_channel:
                stub = pb_grpc.RaftStub(peer_channel)
                try:
                    await stub.Send(self._batches(sent))
                except grpc.aio.AioRpcError as exc:
                    log.debug("raft stream to %s broke: %s", self.peer_id, exc.code())
            self.queue.clear()
            if sent[0]:
                backoff = 0.05     # it was working: reconnect promptly
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 0.5)

    async def _batches(self, sent: list[int]) -> AsyncIterator[pb.RaftBatch]:
        queue = self.queue
        while True:
            while not queue:
                self._ready.clear()
                await self._ready.wait()
            if len(queue) <= self.MESSAGES_PER_BATCH:
                batch = pb.RaftBatch(messages=queue)
                queue.clear()
            else:
                batch = pb.RaftBatch(messages=[queue.popleft() for _ in range(self.MESSAGES_PER_BATCH)])
            sent[0] += 1
            self.stats["peer_writes"] += 1
            self.stats["peer_messages"] += len(batch.messages)
            yield batch


class WirePeer:
    """The outgoing Raft connection to one peer over the txlog wire: `send` writes a frame at once (no task hop).
    Fire-and-forget like Peer: while the connection is down or the peer does not read, messages are dropped
    (a few are kept while connecting, so the first votes of a start-up are not lost)."""

    QUEUE_LIMIT = 1_000
    MAX_BUFFERED = 64 << 20           # above it messages are dropped (Raft resends): twice the largest append

    def __init__(self, peer_id: str, address: str, stats: collections.Counter, tls: TxlogTLS | None = None):
        self.stats = stats
        self.peer_id = peer_id
        self.address = address
        self.ssl_context = wire_context(tls)
        self.queue: list[list[bytes]] = []
        self.connection: wire.FrameConnection | None = None
        self._lost = asyncio.Event()

    def send(self, msgs: list[tuple[str, Message]]) -> None:
        data = _frame_parts(wire.Kind.RAFT_BATCH, *_raft_batch_parts(msgs))
        connection = self.connection
        if connection is not None and not connection.closed:
            if connection.buffered < self.MAX_BUFFERED:
                connection.send_parts(data)
                self.stats["peer_writes"] += 1
                self.stats["peer_messages"] += len(msgs)
            else:
                self.stats["peer_dropped"] += len(msgs)
        elif len(self.queue) < self.QUEUE_LIMIT:
            self.queue.append(data)

    async def run(self) -> None:
        backoff = 0.05
        while True:
            try:
                self._lost.clear()
                connection = await wire.connect(self.address, ssl_context=self.ssl_context,
                                                on_lost=lambda _: self._lost.set())
            except (OSError, asyncio.TimeoutError) as exc:
                log.debug("raft connection to %s failed: %r", self.peer_id, exc)
                self.queue.clear()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 0.5)
                continue
            queued, self.queue = self.queue, []
            if connection.closed:           # accepted, then closed at once (a zone proxy refusing a cut route)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 0.5)
                continue
            backoff = 0.05
            if queued:
                connection.send_parts([part for parts in queued for part in parts])
            self.connection = connection
            try:
                await self._lost.wait()
            finally:
                self.connection = None
                connection.close()
            log.debug("raft connection to %s broke", self.peer_id)
            await asyncio.sleep(backoff)


def _make_peer(peer_id: str, address: str, stats: collections.Counter, tls: TxlogTLS | None) -> Peer | WirePeer:
    grpc_address, wire_address = wire.split_address(address)
    return WirePeer(peer_id, wire_address, stats, tls) if wire_address else Peer(peer_id, grpc_address, stats, tls)


@dataclasses.dataclass(slots=True)
class _Persist:
    """What one driver iteration hands to the persister."""
    writes: dict[str, tuple[list[Entry], HardState | None]]
    messages: list[tuple[str, Message]]
    readies: list[tuple[LogGroup, Ready]]
    compactions: list[tuple[str, int, int]] = dataclasses.field(default_factory=list)  # (log, below, prev_term)
    restarts: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)   # log -> Ready.log_start


class TxlogNode:
    def __init__(self, config: NodeConfig):
        self.config = config
        self.storage = Storage(config.data_dir, list(config.logs))
        rng = random.Random(config.seed)
        raft_config = Config(election_ticks=config.election_ticks, heartbeat_ticks=config.heartbeat_ticks)
        self.groups: dict[str, LogGroup] = {}
        for name in config.logs:
            hard_state, raft_log = self.storage.load(name, keep_in_memory=config.memory_entries,
                                                     keep_bytes=config.memory_bytes)
            core = RaftNode(config.node_id, list(config.peers), random.Random(rng.random()), raft_config,
                            hard_state=hard_state, log=raft_log, applied=raft_log.first_index - 1)
            self.groups[name] = LogGroup(name, core, hard_state)
        self.stats = collections.Counter()
        self.peers = {pid: _make_peer(pid, addr, self.stats, config.tls) for pid, addr in config.peers.items()
                      if pid != config.node_id}
        self._inbox: list = []
        self._wake = asyncio.Event()
        self._pending_ticks = 0
        self._stopping = False
        self._stopped = asyncio.Event()
        self._persist_queue: list[_Persist] = []
        self._persist_wake = asyncio.Event()
        self._persisting = False       # the persister holds Readies it has not advanced yet (a save in progress)
        self._disk_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="txlog-disk")
        self._tailers_after_persist: list[LogGroup] = []
        self._commit_notices: dict[tuple[str, str], tuple[str, Message]] = {}  # (peer, log) -> commit-only append
        self._notice_timer: asyncio.TimerHandle | None = None

    # -- a new store: a new cluster, or a node that lost its disk ------------------------------------------------
    async def join(self) -> None:
        """Before the first run on a new store: ask every peer for its Status (until all have answered) and, if
        any of them has taken part in the cluster, restart every log `recovering` (see the module docstring)."""
        if not self.storage.joining:
            return
        answers: dict[str, pb.StatusResponse] = {}
        waiting_since = time.monotonic()
        while True:
            missing = [pid for pid in self.peers if pid not in answers]
            for pid in missing:
                response = await _peer_status(self.config.peers[pid], self.config.tls)
                if response is not None:
                    answers[pid] = response
            if len(answers) == len(self.peers):
                break
            if self._stopping:
                return
            if time.monotonic() - waiting_since > 5:
                log.warning("txlog node %s has a new store and waits for every peer to answer before it joins "
                            "(no answer yet from %s)", self.config.node_id, ", ".join(sorted(missing)))
                waiting_since = time.monotonic()
            await asyncio.sleep(0.2)
        terms: dict[str, int] = {name: 0 for name in self.groups}
        used = False
        for response in answers.values():
            for status in response.logs:
                used = used or status.term > 0 or status.last_index > 0 or status.first_index > 1
                if status.log in terms:
                    terms[status.log] = max(terms[status.log], status.term)
        if not used:
            log.info("txlog node %s: every peer is new too: a new cluster", self.config.node_id)
            self.storage.finish_joining([])
            return
        log.warning("txlog node %s has a new store but its peers have a log (it lost its log, or joins late): "
                    "it catches up with the leader before it votes (terms %s)", self.config.node_id, terms)
        writes = []
        for name, group in self.groups.items():
            hard_state = HardState(term=terms[name], vote=self.config.node_id, recovering=True)
            writes.append(GroupWrite(name, hard_state, []))
            old = group.core
            group.core = RaftNode(old.id, old.peers, old.rng, old.config, hard_state=hard_state, log=old.log)
            group.durable_hs = hard_state
            group.durable_term = hard_state.term
            group.recovering = True
        self.storage.finish_joining(writes)

    # -- the driver loop ---------------------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tasks:
                helpers = [tasks.create_task(peer.run()) for peer in self.peers.values()]
                helpers.append(tasks.create_task(self._ticker()))
                persister = tasks.create_task(self._persister())
                await self._run()
                for task in helpers:
                    task.cancel()
                while self._persist_queue or self._persisting:     # let what is queued for the disk be written
                    self._persist_wake.set()
                    await asyncio.sleep(0.001)
                persister.cancel()
        finally:
            self._shut_down()

    def close(self) -> None:
        """Release the disk: let a save still running on the disk thread finish, then close the store."""
        self._disk_thread.shutdown(wait=True)
        self.storage.close()

    def stop(self) -> None:
        if not self._stopping:
            log.info("txlog node %s stopping", self.config.node_id)
        self._stopping = True
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stopping

    def _shut_down(self) -> None:
        """Answer everything still waiting and end the tails; the gRPC server then stops fast."""
        for group in self.groups.values():
            for w in group.waiters:
                _resolve(w.future, pb.TrimResponse(status=pb.UNAVAILABLE, message="the node is shutting down")
                         if w.is_trim else
                         pb.AppendResponse(status=pb.UNAVAILABLE, message="the node is shutting down"))
            group.waiters.clear()
            group.notify_tailers()
        for item in self._inbox:
            if isinstance(item, _Proposal):
                _resolve(item.future, pb.AppendResponse(status=pb.UNAVAILABLE, message="the node is shutting down"))
            elif isinstance(item, _Trim):
                _resolve(item.future, pb.TrimResponse(status=pb.UNAVAILABLE, message="the node is shutting down"))
        self._inbox.clear()
        self._stopped.set()
        unsynced = [GroupWrite(g.name, g.unsynced_hs, []) for g in self.groups.values() if g.unsynced_hs]
        if unsynced:
            try:
                self.storage.save(unsynced)
            except Exception:   # noqa: BLE001 - best effort: the commit index is re-learned anyway
                log.exception("saving the commit index at shutdown failed")

    async def _ticker(self) -> None:
        period = self.config.tick_ms / 1000
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + period
            await asyncio.sleep(period)
            # How long the loop was held past a tick (Status counter): a leader held past an election timeout
            # loses its leadership.
            late_us = int(1e6 * (loop.time() - due))
            if late_us > self.stats["tick_late_max_us"]:
                self.stats["tick_late_max_us"] = late_us
            if late_us > 1000 * self.config.tick_ms * self.config.election_ticks:
                log.warning("the event loop was held %d ms: longer than an election timeout", late_us // 1000)
            self._pending_ticks += 1
            self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            self.stats["iterations"] += 1
            ticks, self._pending_ticks = self._pending_ticks, 0
            inbox, self._inbox = self._inbox, []
            for group in self.groups.values():
                for _ in range(ticks):
                    group.core.tick()
            if ticks:
                self._expire_waiters(loop.time())
            self._handle_inbox(inbox)
            self._collect()

    def _handle_inbox(self, inbox: list) -> None:
        proposals: list[_Proposal] = []
        trims: list[_Trim] = []
        for item in inbox:
            if isinstance(item, pb.RaftMessage):
                group = self.groups[item.log]
                try:
                    group.core.step(_from_proto(item))
                except Exception:   # noqa: BLE001 - one bad message must not stop the node
                    log.exception("stepping a raft message from %s failed", getattr(item, "from"))
            elif isinstance(item, _Proposal):
                proposals.append(item)
            else:
                trims.append(item)
        for group in self.groups.values():
            self._track_role(group)
        if proposals:
            self._propose(proposals)
        for trim in trims:
            self._propose_trim(self.groups[trim.log], trim.below, trim.future)

    def _collect(self) -> None:
        """Take every group's Ready: send what may go now, apply what is committed, persist the rest."""
        writes: dict[str, tuple[list[Entry], HardState | None]] = {}
        held: list[tuple[str, Message]] = []
        readies: list[tuple[LogGroup, Ready]] = []
        early: dict[str, list[tuple[str, Message]]] = {}
        restarts: dict[str, tuple[int, int]] = {}
        for name, group in self.groups.items():
            core = group.core
            ready = core.ready()
            if ready.log_start is not None:
                restarts[name] = ready.log_start
                self._restart_log(group, *ready.log_start)
            entries = ready.entries
            if entries:
                # Entries already handed to the persister (the previous Ready is not advanced yet) come again;
                # skip them unless the log was rewritten since (then the same index has another term).
                last_index, last_term = group.submitted
                if entries[0].index <= last_index <= entries[-1].index \
                        and entries[last_index - entries[0].index].term == last_term:
                    entries = entries[last_index - entries[0].index + 1:]
                if entries:
                    group.submitted = (entries[-1].index, entries[-1].term)
            hs = ready.hard_state
            if hs is not None and hs == group.durable_hs:
                hs = None
            if entries or hs is not None:
                writes[name] = (entries, hs)
            for m in ready.messages:
                if m.type is MessageType.APPEND and not m.entries and m.term <= group.durable_term:
                    self._commit_notices[(m.to, name)] = (name, m)    # a newer one replaces it
                elif m.type in _EARLY_TYPES and m.term <= group.durable_term:
                    early.setdefault(m.to, []).append((name, m))
                else:
                    held.append((name, m))
            if ready.committed:
                fresh = [e for e in ready.committed if e.index > group.applied_index] \
                    if ready.committed[0].index <= group.applied_index else ready.committed
                if fresh:
                    self._apply(group, fresh)
            readies.append((group, ready))
        for peer_id, msgs in early.items():
            self._send_to_peer(peer_id, msgs)
        if self._commit_notices and self._notice_timer is None:
            self._notice_timer = asyncio.get_running_loop().call_later(COMMIT_NOTICE_DELAY_S,
                                                                       self._flush_commit_notices)
        needs_sync = bool(restarts) or any(entries or _promises(hs, self.groups[n].durable_hs)
                                           for n, (entries, hs) in writes.items())
        if not needs_sync and not self._persist_queue and not self._persisting:
            # Nothing to fsync and nothing in flight: a commit-only hard state waits for the next sync.
            for name, (_, hs) in writes.items():
                self.groups[name].unsynced_hs = hs
            self._send(held)
            for group, ready in readies:
                self._advance(group, ready)
        else:
            self._persist_queue.append(_Persist(writes, held, readies, restarts=restarts))
            self._persist_wake.set()
        # A follower's tailers wake after its persister: the fsync and the ack it sends are on the path of every
        # commit, the tail (a replica's stream) is not. The leader's tail feeds the primary, which waits for it.
        held_back, self._tailers_after_persist = self._tailers_after_persist, []
        for group in held_back:
            group.notify_tailers()

    def _restart_log(self, group: LogGroup, first: int, prev_term: int) -> None:
        """The core dropped its log for the leader's, which starts at `first` (LOG_START): so does the driver's
        view of it. Everything below is committed and trimmed; the fencing view is rebuilt from what follows."""
        log.warning("log %s: starting over at index %d, where the leader's log starts (it was trimmed below)",
                    group.name, first)
        group.fencing = LogFencing()
        group.applied_index = first - 1
        group.trim_floor = first
        group.trim_at = 0
        group.submitted = (0, 0)
        group.notify_tailers()

    def _send(self, messages: list[tuple[str, Message]]) -> None:
        if not messages:
            return
        by_peer: dict[str, list[tuple[str, Message]]] = {}
        for name, m in messages:
            by_peer.setdefault(m.to, []).append((name, m))
        for peer_id, msgs in by_peer.items():
            self._send_to_peer(peer_id, msgs)

    def _send_to_peer(self, peer_id: str, msgs: list[tuple[str, Message]]) -> None:
        """Send msgs (log, message) with any waiting commit notice for that peer: dropped when one of msgs is an
        append of the same log (it carries the commit index too), else riding along in the same write."""
        notices = self._commit_notices
        if notices:
            for name, m in msgs:
                if m.type is MessageType.APPEND:
                    notices.pop((peer_id, name), None)
            for log_name in self.groups:
                notice = notices.pop((peer_id, log_name), None)
                if notice is not None:
                    msgs.append(notice)
        self.peers[peer_id].send(msgs)

    def _flush_commit_notices(self) -> None:
        self._notice_timer = None
        notices, self._commit_notices = self._commit_notices, {}
        by_peer: dict[str, list[tuple[str, Message]]] = {}
        for (peer_id, _), notice in notices.items():
            by_peer.setdefault(peer_id, []).append(notice)
        for peer_id, msgs in by_peer.items():
            self.peers[peer_id].send(msgs)

    def _advance(self, group: LogGroup, ready: Ready) -> None:
        core = group.core
        was_commit = core.commit
        core.advance(ready)
        core.release_memory(self.config.memory_entries, self.config.memory_bytes)
        if core.commit != was_commit:
            self._wake.set()    # the leader's own fsync completed a majority: apply in the next iteration
        if group.trim_at and core.applied >= group.trim_at:
            group.trim_at = 0
            self._trim(group, group.trim_floor)

    async def _persister(self) -> None:
        while True:
            await self._persist_wake.wait()
            self._persist_wake.clear()
            if not self._persist_queue:
                continue
            batch, self._persist_queue = self._persist_queue, []
            self._persisting = True
            try:
                await self._persist(batch)
            finally:
                self._persisting = False
            self._wake.set()

    async def _persist(self, batch: list[_Persist]) -> None:
        """Save what `batch` asks for (one save), then send its held messages and advance its Readies in order."""
        merged: dict[str, tuple[list[Entry], HardState | None]] = {}
        compactions: dict[str, tuple[int, int]] = {}
        restarts: dict[str, tuple[int, int]] = {}
        for item in batch:
            for name, start in item.restarts.items():
                restarts[name] = start            # what was merged or compacted before it is gone
                merged[name] = ([], merged.get(name, ([], None))[1])
                compactions.pop(name, None)
            for name, below, prev_term in item.compactions:
                compactions[name] = (below, prev_term)
            for name, (entries, hs) in item.writes.items():
                old_entries, old_hs = merged.get(name, ([], None))
                if entries and old_entries:
                    # contiguous normally; after a rewrite the later entries replace the earlier suffix
                    cut = entries[0].index - old_entries[0].index
                    old_entries = old_entries[:max(cut, 0)]
                merged[name] = (old_entries + entries if entries else old_entries,
                                hs if hs is not None else old_hs)
        needs_sync = bool(compactions) or bool(restarts) or any(
            entries or _promises(hs, self.groups[name].durable_hs) for name, (entries, hs) in merged.items())
        writes = []
        for name, group in self.groups.items():
            entries, hs = merged.get(name, ([], None))
            if not needs_sync:
                group.unsynced_hs = hs or group.unsynced_hs     # commit-only: rides with the next sync
                continue
            hs = hs or group.unsynced_hs
            group.unsynced_hs = None
            if entries or hs is not None or name in compactions or name in restarts:
                writes.append(GroupWrite(name, hs, entries, compactions.get(name), restarts.get(name)))
        if writes:
            if self.storage.heavy(writes):
                self.stats["heavy_saves"] += 1
                elapsed_us = await asyncio.get_running_loop().run_in_executor(self._disk_thread,
                                                                              self._timed_save, writes)
            else:
                elapsed_us = self._timed_save(writes)
            self.stats["fsync_us"] += elapsed_us
            self.stats["fsyncs"] += 1
            self.stats["fsync_entries"] += sum(len(w.entries) for w in writes)
            for w in writes:
                group = self.groups[w.log]
                if w.hard_state is not None:
                    group.durable_hs = w.hard_state
                    group.durable_term = w.hard_state.term
        for item in batch:
            self._send(item.messages)
            for group, ready in item.readies:
                self._advance(group, ready)

    def _timed_save(self, writes: list[GroupWrite]) -> int:
        t0 = time.perf_counter()
        self.storage.save(writes)
        return int(1e6 * (time.perf_counter() - t0))

    # -- proposals ---------------------------------------------------------------------------------------------
    def _propose(self, proposals: list[_Proposal]) -> None:
        """Decide every proposal against the log's tail (fencing, conditions, dedup), then propose all accepted
        ones of a group with one `propose` call."""
        pending: dict[str, list[bytes]] = {}
        for p in proposals:
            req = p.request
            group = self.groups[req.log]
            core = group.core
            if core.role is not Role.LEADER:
                _resolve(p.future, self._not_leader(req.batch_seq, core.leader_id))
                continue
            datas = pending.setdefault(req.log, [])
            last_index = core.log.last_index + len(datas)
            condition = req.expected_last_index if req.HasField("expected_last_index") else None
            decision: Decision = group.fencing.decide(req.kind, req.epoch, req.writer_id, req.batch_seq, condition,
                                                      last_index)
            if decision.verdict is Verdict.STALE_EPOCH:
                _resolve(p.future, pb.AppendResponse(batch_seq=req.batch_seq, status=pb.STALE_EPOCH,
                                                     current_epoch=decision.epoch, last_index=last_index,
                                                     message=f"epoch {req.epoch} is stale: the log is in epoch "
                                                             f"{decision.epoch}"))
            elif decision.verdict is Verdict.CONDITION_FAILED:
                _resolve(p.future, pb.AppendResponse(batch_seq=req.batch_seq, status=pb.CONDITION_FAILED,
                                                     current_epoch=decision.epoch, last_index=last_index,
                                                     message=f"expected last index {req.expected_last_index}, "
                                                             f"the log ends at {last_index}"))
            elif decision.verdict is Verdict.DUPLICATE:
                if decision.index == 0 or decision.index <= core.commit:
                    _resolve(p.future, pb.AppendResponse(batch_seq=req.batch_seq, status=pb.OK,
                                                         index=decision.index, current_epoch=decision.epoch))
                else:
                    term = core.log.term(decision.index) if decision.index <= core.log.last_index else core.term
                    group.waiters.append(_Waiter(decision.index, term or 0, p.future, self._deadline()))
                    group.waiters.sort(key=lambda w: w.index)
            else:
                record = pb.LogRecord(kind=req.kind, epoch=req.epoch, writer_id=req.writer_id,
                                      batch_seq=req.batch_seq, items=req.items)
                index = last_index + 1
                datas.append(record.SerializeToString())
                group.fencing.note_proposed(index, record)
                group.waiters.append(_Waiter(index, core.term, p.future, self._deadline()))
        for name, datas in pending.items():
            if datas:
                first, _ = self.groups[name].core.propose(datas)
                self.stats["proposals"] += len(datas)
                assert first + len(datas) - 1 == self.groups[name].core.log.last_index

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

    # -- applying ----------------------------------------------------------------------------------------------
    def _apply(self, group: LogGroup, committed: list[Entry]) -> None:
        for entry in committed:
            record = decode_record(entry.data)
            group.fencing.apply(entry.index, record)
            if record.kind == pb.TRIM and record.trim_below > group.trim_floor:
                group.trim_floor = record.trim_below
                group.trim_at = entry.index    # compacted once the core has applied it too (see _advance)
        last = committed[-1].index
        group.applied_index = last
        if group.core.role is Role.LEADER:
            # Before the appends' answers: the primary applies (and answers its clients) from its tail, and the
            # answer only renews its lease, so the tail goes out first.
            group.notify_tailers()
        else:
            self._tailers_after_persist.append(group)     # see _collect
        now = asyncio.get_running_loop().time()
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
                _resolve(w.future, pb.TrimResponse(status=pb.OK, first_index=group.first_index))
            else:
                _resolve(w.future, pb.AppendResponse(status=pb.OK, index=w.index,
                                                     current_epoch=group.fencing.applied_epoch))
                self.stats["commit_wait_us"] += int(1e6 * (now - w.deadline + self.config.append_timeout_ms / 1000))
                self.stats["committed_waiters"] += 1
        del waiters[:done]

    def _trim(self, group: LogGroup, below: int) -> None:
        core = group.core
        below = min(below, core.applied + 1, core.log.last_index + 1)
        if below <= core.log.first_index:
            return
        prev_term = core.log.term(below - 1) or 0
        core.compact(below)
        # In the persister's order: after every save queued before it.
        self._persist_queue.append(_Persist({}, [], [], [(group.name, below, prev_term)]))
        self._persist_wake.set()

    def _track_role(self, group: LogGroup) -> None:
        core = group.core
        if group.recovering and not core.recovering:
            group.recovering = False
            log.warning("log %s: caught up with the leader (index %d, term %d): votes again", group.name,
                        core.log.last_index, core.term)
        is_leader = core.role is Role.LEADER
        if is_leader and not group.was_leader:
            log.info("log %s: leader in term %d", group.name, core.term)
            self.stats["became_leader"] += 1
            uncommitted = [(e.index, decode_record(e.data))
                           for e in core.log.slice(group.applied_index + 1, core.log.last_index)]
            group.fencing.become_leader(uncommitted)
        elif group.was_leader and not is_leader:
            log.info("log %s: no longer leader (term %d, leader %s)", group.name, core.term, core.leader_id or "?")
            self.stats["lost_leadership"] += 1
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
                message = "no quorum: not committed in time (it may still commit later)"
                _resolve(w.future, pb.TrimResponse(status=pb.UNAVAILABLE, message=message) if w.is_trim else
                         pb.AppendResponse(status=pb.UNAVAILABLE, message=message))
            group.waiters = [w for w in group.waiters if now <= w.deadline]

    # -- helpers for handlers ----------------------------------------------------------------------------------
    async def tail_responses(self, request: pb.TailRequest) -> AsyncIterator[pb.TailResponse]:
        """tail_batches as TailResponse messages (the gRPC API)."""
        async for entries, commit_index, first_index in self.tail_batches(request):
            yield pb.TailResponse(entries=[pb.TailEntry(index=e.index, term=e.term, record=decode_record(e.data))
                                           for e in entries], commit_index=commit_index, first_index=first_index)

    async def tail_batches(self, request: pb.TailRequest) -> AsyncIterator[tuple[list[Entry], int, int]]:
        """Committed entries from request.from_index on, in batches (entries, commit index, first index), forever;
        TailEnded says why not."""
        group = self.groups.get(request.log)
        if group is None:
            raise TailEnded(grpc.StatusCode.NOT_FOUND, f"unknown log {request.log!r}")
        next_index = max(request.from_index, 1)
        per_message = min(request.max_batch or TAIL_ENTRIES_PER_MESSAGE, 4 * TAIL_ENTRIES_PER_MESSAGE)
        while True:
            if self.stopping:
                raise TailEnded(grpc.StatusCode.UNAVAILABLE, "the node is shutting down")
            core = group.core
            if next_index < group.first_index:
                raise TailEnded(grpc.StatusCode.OUT_OF_RANGE,
                                f"index {next_index} was trimmed; the log starts at {group.first_index}")
            changed = group.commit_changed
            hi = group.applied_index   # applied entries are committed (fsynced on a majority)
            while next_index <= hi:
                upto = min(hi, next_index + per_message - 1)
                entries = core.log.slice(next_index, upto)
                if not entries or entries[0].index != next_index:
                    break   # compacted meanwhile: the check above reports it
                yield entries, core.commit, group.first_index
                self.stats["tail_writes"] += 1
                next_index = upto + 1
                hi = group.applied_index
            else:
                await changed.wait()

    def _address(self, node_id: str) -> str:
        return self.config.peers.get(node_id, "")

    def _not_leader(self, batch_seq: int, leader_id: str) -> pb.AppendResponse:
        return pb.AppendResponse(batch_seq=batch_seq, status=pb.NOT_LEADER, leader_hint=self._address(leader_id),
                                 message=f"not the leader; leader is {leader_id or 'unknown'}")

    def check_peer_message(self, m: pb.RaftMessage) -> str | None:
        """Why a Raft message from the wire must not reach a core, or None."""
        if m.log not in self.groups:
            return f"unknown log {m.log!r}"
        if m.to != self.config.node_id:
            return f"addressed to {m.to!r}, this is {self.config.node_id!r}"
        sender = getattr(m, "from")
        if sender not in self.config.peers or sender == self.config.node_id:
            return f"from {sender!r}, not a peer"
        if m.type not in _MESSAGE_TYPES:
            return f"unknown message type {m.type}"
        return None

    def receive_raft_batch(self, batch: pb.RaftBatch) -> None:
        self.stats["peer_reads"] += 1
        for m in batch.messages:
            problem = self.check_peer_message(m)
            if problem is None:
                self.enqueue(m)
            else:
                log.warning("dropping a bad raft message: %s", problem)

    def enqueue(self, item) -> bool:
        if self._stopping or len(self._inbox) >= MAX_INBOX:
            return False
        self._inbox.append(item)
        self._wake.set()
        return True

    def accept_append(self, request: pb.AppendRequest, size: int | None = None) -> asyncio.Future:
        """Validate and queue an append (`size`: its serialized size, if known); the future resolves with its
        AppendResponse (INVALID at once)."""
        problem = validate_append(request, self.groups, size)
        if problem is not None:
            future = asyncio.get_running_loop().create_future()
            future.set_result(pb.AppendResponse(status=pb.INVALID, message=problem))
            return future
        self.stats["append_requests"] += 1
        return self.submit(request)

    def submit(self, request: pb.AppendRequest) -> asyncio.Future:
        """Queue an append for the driver loop; the future resolves with its AppendResponse."""
        future = asyncio.get_running_loop().create_future()
        if not self.enqueue(_Proposal(request, future)):
            future.set_result(pb.AppendResponse(status=pb.UNAVAILABLE,
                                                message="shutting down" if self._stopping else "inbox full"))
        return future


class TailEnded(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _promises(hs: HardState | None, durable: HardState) -> bool:
    """Whether hs changes what the node promised (term, vote) and so needs an fsync; a commit-only change (or the
    end of recovering, which is only ever safer on disk late) rides with the next one."""
    return hs is not None and (hs.term != durable.term or hs.vote != durable.vote)


async def _peer_status(address: str, tls: TxlogTLS | None) -> pb.StatusResponse | None:
    """A peer's Status over gRPC, or None if it does not answer."""
    try:
        async with channel(wire.split_address(address)[0], tls, GRPC_OPTIONS) as peer_channel:
            return await pb_grpc.TxLogStub(peer_channel).Status(pb.StatusRequest(), timeout=1.0)
    except grpc.aio.AioRpcError:
        return None


def _resolve(future: asyncio.Future, value) -> None:
    if not future.done():
        future.set_result(value)
def validate_append(request: pb.AppendRequest, logs, size: int | None = None) -> str | None:
    """Why the request is malformed, or None. `size` spares serializing it again to learn its size."""
    if request.log not in logs:
        return f"unknown log {request.log!r}"
    if request.kind not in (pb.DATA, pb.LEADERSHIP):
        name = pb.EntryKind.Name(request.kind) if request.kind in (pb.NOOP, pb.TRIM) else str(request.kind)
        return f"entry kind {name} cannot be appended by a client"
    if len(request.items) > MAX_BATCH_ITEMS:
        return f"batch has {len(request.items)} items (limit {MAX_BATCH_ITEMS})"
    size = request.ByteSize() if size is None else size
    if size > MAX_BATCH_BYTES:
        return f"batch is {size} bytes (limit {MAX_BATCH_BYTES})"
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
                    answers.put_nowait((request.batch_seq, self.node.accept_append(request)))
            finally:
                answers.put_nowait(None)

        reader = asyncio.ensure_future(read_requests())
        try:
            while (item := await answers.get()) is not None:
                batch_seq, future = item
                response = await future
                response.batch_seq = batch_seq
                yield response
            if reader.done() and not reader.cancelled() and reader.exception() is not None:
                exc = reader.exception()
                if not isinstance(exc, (grpc.aio.AioRpcError, asyncio.CancelledError)):
                    log.error("append stream failed", exc_info=exc)
                    await context.abort(grpc.StatusCode.INTERNAL, f"append stream failed: {exc!r}")
        finally:
            reader.cancel()

    async def Tail(self, request: pb.TailRequest, context):
        try:
            async for response in self.node.tail_responses(request):
                await context.write(response)
        except TailEnded as ended:
            await context.abort(ended.code, ended.message)

    async def Status(self, request, context):
        node = self.node
        logs = []
        for name, g in node.groups.items():
            c = g.core
            logs.append(pb.LogStatus(log=name, role=c.role.value, term=c.term, commit_index=c.commit,
                                     applied_index=g.applied_index, last_index=c.log.last_index,
                                     first_index=g.first_index, epoch=g.fencing.applied_epoch,
                                     leader_id=c.leader_id, leader_hint=node._address(c.leader_id),
                                     entries_in_memory=len(c.log.entries), recovering=c.recovering))
        return pb.StatusResponse(node_id=node.config.node_id, logs=logs, peers=list(node.config.peers),
                                 counters={**node.stats, **node.storage.stats})

    async def Trim(self, request, context):
        if request.log not in self.node.groups:
            return pb.TrimResponse(status=pb.INVALID, message=f"unknown log {request.log!r}")
        future = asyncio.get_running_loop().create_future()
        if not self.node.enqueue(_Trim(request.log, request.below_index, future)):
            return pb.TrimResponse(status=pb.UNAVAILABLE, message="the node is shutting down or overloaded")
        return await future


class RaftService(pb_grpc.RaftServicer):
    def __init__(self, node: TxlogNode):
        self.node = node

    async def Send(self, request_iterator, context):
        async for batch in request_iterator:
            self.node.receive_raft_batch(batch)
        return pb.RaftAck()


class WireSession:
    """One connection on the txlog wire; its first frame decides what it carries (see txlog/wire.py)."""

    def __init__(self, node: TxlogNode):
        self.node = node
        self.connection = wire.FrameConnection(self._on_frame, self._on_lost)
        self.kind: int | None = None
        self._answers: collections.deque[tuple[int, asyncio.Future]] = collections.deque()
        self._tail: asyncio.Task | None = None

    def _on_frame(self, kind: int, payload: bytes) -> None:
        if self.kind is None:
            self.kind = kind
        elif kind != self.kind or kind == wire.Kind.TAIL_REQUEST:
            self._refuse(grpc.StatusCode.INVALID_ARGUMENT, f"frame kind {kind} on a stream of kind {self.kind}")
            return
        try:
            if kind == wire.Kind.RAFT_BATCH:
                self.node.receive_raft_batch(pb.RaftBatch.FromString(payload))
            elif kind == wire.Kind.APPEND_REQUEST:
                request = pb.AppendRequest.FromString(payload)
                future = self.node.accept_append(request, len(payload))
                self._answers.append((request.batch_seq, future))
                future.add_done_callback(self._answer)
            elif kind == wire.Kind.TAIL_REQUEST:
                self._tail = asyncio.get_running_loop().create_task(self._run_tail(pb.TailRequest.FromString(payload)))
            else:
                self._refuse(grpc.StatusCode.INVALID_ARGUMENT, f"a client cannot send frames of kind {kind}")
        except DecodeError as exc:
            self._refuse(grpc.StatusCode.INVALID_ARGUMENT, f"malformed {wire.Kind(kind).name}: {exc}")

    def _answer(self, _future: asyncio.Future) -> None:
        """Answer appends in the order they came (a rejection waits behind an earlier batch still committing)."""
        answers = self._answers
        while answers and answers[0][1].done():
            batch_seq, future = answers.popleft()
            if self.connection.closed:
                continue
            response = future.result()
            response.batch_seq = batch_seq
            self.connection.send(wire.Kind.APPEND_RESPONSE, response.SerializeToString())

    async def _run_tail(self, request: pb.TailRequest) -> None:
        connection = self.connection
        try:
            async for batch in self.node.tail_batches(request):
                connection.send_parts(_frame_parts(wire.Kind.TAIL_RESPONSE, *_tail_response_parts(*batch)))
                await connection.drain()
        except TailEnded as ended:
            self._refuse(ended.code, ended.message)
        except (ConnectionError, wire.WireError):
            pass

    def _refuse(self, code: grpc.StatusCode, message: str) -> None:
        if not self.connection.closed:
            self.connection.send_raw(wire.error_frame(code.value[0], message))
            self.connection.close()

    def _on_lost(self, _exc) -> None:
        if self._tail is not None:
            self._tail.cancel()


async def serve_wire(node: TxlogNode, address: str) -> asyncio.AbstractServer:
    host, _, port = address.rpartition(":")
    tls = node.config.tls
    return await asyncio.get_running_loop().create_server(lambda: WireSession(node).connection, host, int(port),
                                                          reuse_address=True,
                                                          ssl=tls.server_context if tls is not None else None)


async def serve(config: NodeConfig, listen: str) -> None:
    grpc_listen, wire_listen = wire.split_address(listen)
    node = TxlogNode(config)
    server = grpc.aio.server(options=SERVER_OPTIONS)
    pb_grpc.add_TxLogServicer_to_server(TxLogService(node), server)
    pb_grpc.add_RaftServicer_to_server(RaftService(node), server)
    wire_server = None
    try:
        if config.tls is not None:
            server.add_secure_port(grpc_listen, config.tls.server_credentials())
        else:
            server.add_insecure_port(grpc_listen)
        if wire_listen:
            wire_server = await serve_wire(node, wire_listen)
    except (RuntimeError, OSError) as exc:
        node.close()
        raise CannotListen(f"cannot listen on {listen}: {exc}") from exc
    await server.start()
    log.info("txlog node %s serving on %s (logs: %s)", config.node_id, listen, ",".join(config.logs))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, node.stop)
    try:
        await node.join()
        await node.run()
    finally:
        # Everything acknowledged is already fsynced on a majority: nothing to flush, so stop fast. Waiting
        # appends were answered UNAVAILABLE and tails ended by node.run(); peers' streams are just cut.
        if wire_server is not None:
            wire_server.close()
        await server.stop(grace=0.05)
        node.close()
        log.info("txlog node %s stopped (%s)", config.node_id,
                 ", ".join(f"{k}={v}" for k, v in sorted(node.stats.items())))


class CannotListen(Exception):
    pass


def parse_peers(values: list[str]) -> dict[str, str]:
    peers = {}
    for value in values:
        node_id, sep, address = value.partition("=")
        try:
            wire.split_address(address)
        except ValueError:
            sep = ""
        if not sep or not node_id or ":" not in address:
            raise argparse.ArgumentTypeError(f"--peer wants ID=HOST:PORT[+WIREPORT], got {value!r}")
        peers[node_id] = address
    return peers


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="txlog-server", description="A memdb transaction log node (Raft).")
    parser.add_argument("--id", required=True, help="this node's id (e.g. a)")
    parser.add_argument("--listen", required=True,
                        help="HOST:PORT to serve gRPC on, or HOST:PORT+WIREPORT to serve the txlog wire too")
    parser.add_argument("--peer", action="append", required=True,
                        help="ID=HOST:PORT[+WIREPORT] of every member, this node included (repeat); peers with a "
                             "wire port get Raft messages over the wire")
    parser.add_argument("--data", required=True, help="directory of this node's LMDB environment")
    parser.add_argument("--logs", default="cluster,shard0", help="comma-separated log names")
    parser.add_argument("--tick-ms", type=int, default=25)
    parser.add_argument("--election-ticks", type=int, default=10)
    parser.add_argument("--append-timeout-ms", type=int, default=5000)
    parser.add_argument("--memory-mb", type=int, default=MEMORY_BYTES >> 20,
                        help="at most this much entry data each log keeps in memory (with --memory-entries)")
    parser.add_argument("--memory-entries", type=int, default=MEMORY_ENTRIES,
                        help="applied entries (append batches) each log keeps in memory; older ones are read back "
                             "from LMDB when a lagging follower or a tail needs them")
    parser.add_argument("--log-level", default=os.environ.get("TXLOG_LOG_LEVEL", "WARNING"))
    tls_options = parser.add_argument_group("mutual TLS for every client and peer (txlog/tls.py); all three or none")
    tls_options.add_argument("--tls-ca", default="", help="PEM CA that signed every member's and client's certificate")
    tls_options.add_argument("--tls-cert", default="", help="PEM certificate of this node (server and client auth)")
    tls_options.add_argument("--tls-key", default="", help="PEM private key of --tls-cert")
    args = parser.parse_args(argv)
    try:
        tls = TxlogTLS.from_options(args.tls_ca, args.tls_cert, args.tls_key)
        if tls is not None:
            tls.check()
    except (ValueError, OSError, ssl.SSLError) as exc:
        parser.error(f"--tls-ca/--tls-cert/--tls-key: {exc}")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s txlog-%(name)s %(message)s")
    peers = parse_peers(args.peer)
    try:
        wire.split_address(args.listen)
    except ValueError as exc:
        parser.error(str(exc))
    if args.id not in peers:
        parser.error(f"--peer must list this node ({args.id}) too")
    config = NodeConfig(node_id=args.id, peers=peers, data_dir=args.data,
                        logs=tuple(x for x in args.logs.split(",") if x), tick_ms=args.tick_ms,
                        election_ticks=args.election_ticks, append_timeout_ms=args.append_timeout_ms,
                        memory_entries=args.memory_entries, memory_bytes=args.memory_mb << 20, tls=tls)
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(serve(config, args.listen))
    except StorageCorrupt as exc:
        log.critical("txlog node %s refuses to start: its storage is corrupt: %s", args.id, exc)
        sys.exit(2)
    except CannotListen as exc:
        log.critical("txlog node %s refuses to start: %s", args.id, exc)
        sys.exit(2)


if __name__ == "__main__":
    main()
