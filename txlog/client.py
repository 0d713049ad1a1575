"""The asyncio client data nodes use to write to and read from one log.

Appending (group commit from the writer's side): `append(item, epoch)` queues an item and returns a future; items
queued one after another (same epoch, not yet sent) share one future, which resolves with their batch's index, so a
busy writer pays for one future per batch, not per item (do not cancel it: it is not yours alone). A
sender sends everything queued while earlier batches are in flight as the next batch, over one long-lived
`Append` stream; up to `max_inflight_batches` batches are in flight and the server answers them in order.
Each batch has a number (`batch_seq`, per writer); when the stream breaks or the node says NOT_LEADER, the client
connects to the hinted leader (or the next address) and resends every unanswered batch with the same numbers, so
the log's deduplication appends each batch once.

The stream stays open while the client is busy (and IDLE_STREAM_S after), so a steady writer pays no per-append
stream set-up. Nothing waits forever: queued, unsent and unanswered appends all fail with LogUnavailable once
`append_timeout_s` has passed (their outcome is then unknown: they may still commit).

Tailing: `tail(from_index)` yields committed entries in order, once each, reconnecting (to any node) and resuming
after the last entry it yielded; `tail_batches` yields them as the lists they arrived in (one resumption per
message, not per entry, for an apply loop).

Transport: an address `HOST:PORT+WIREPORT` sends Append and Tail over the txlog wire (txlog/wire.py, ~9x less CPU
per message than a grpc.aio stream); `HOST:PORT` uses gRPC. Status and Trim always use gRPC.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import logging
import time
import uuid
from typing import AsyncIterator, Callable

import grpc

from txlog.generated import txlog_pb2 as pb
from txlog.generated import txlog_pb2_grpc as pb_grpc
from txlog import wire
from txlog.server import GRPC_OPTIONS, MAX_BATCH_BYTES
from txlog.tls import TxlogTLS, channel, wire_context

# The largest item an append can carry: the log refuses a batch over MAX_BATCH_BYTES, and a batch is its items plus
# a few hundred bytes of header.
MAX_ITEM_BYTES = MAX_BATCH_BYTES - 4096

log = logging.getLogger("txlog.client")


class AppendError(Exception):
    def __init__(self, response: pb.AppendResponse):
        super().__init__(f"{pb.AppendStatus.Name(response.status)}: {response.message}")
        self.response = response

    @property
    def current_epoch(self) -> int:
        return self.response.current_epoch

    @property
    def last_index(self) -> int:
        return self.response.last_index


class StaleEpoch(AppendError):
    pass


class ConditionFailed(AppendError):
    pass


class InvalidAppend(AppendError):
    pass


class LogUnavailable(AppendError):
    pass


class LogTrimmed(Exception):
    pass


_ERRORS = {pb.STALE_EPOCH: StaleEpoch, pb.CONDITION_FAILED: ConditionFailed, pb.INVALID: InvalidAppend,
           pb.UNAVAILABLE: LogUnavailable}


@dataclasses.dataclass(slots=True)
class _Batch:
    request: pb.AppendRequest
    futures: list[asyncio.Future]      # one per item (a claim has one future for the whole batch)
    deadline: float
    item_bytes: int = 0
    first_sent_at: float = 0.0         # time.monotonic() when first written to a stream (before any commit of it)


class _WireAppendCall:
    """An Append stream over the txlog wire, with the part of grpc.aio's StreamStreamCall the sender uses."""

    def __init__(self, connection: wire.FrameConnection):
        self.connection = connection
        self.finished = False

    @classmethod
    async def open(cls, address: str, tls: TxlogTLS | None) -> "_WireAppendCall":
        return cls(await wire.connect(address, ssl_context=wire_context(tls)))

    async def write(self, request: pb.AppendRequest) -> None:
        self.connection.send(wire.Kind.APPEND_REQUEST, request.SerializeToString())

    async def read(self):
        try:
            kind, payload = await self.connection.recv()
        except ConnectionError:
            if self.finished:
                return grpc.aio.EOF
            raise
        if kind == wire.Kind.APPEND_RESPONSE:
            return pb.AppendResponse.FromString(payload)
        if kind == wire.Kind.ERROR:
            raise wire.parse_error(payload)
        raise wire.WireError(f"unexpected frame kind {kind} on an append stream")

    async def done_writing(self) -> None:
        self.finished = True
        self.connection.close()

    def cancel(self) -> None:
        self.connection.close()


# What a broken stream raises on either transport (a refused or reset connection, a connect timeout; grpc.aio
# raises InvalidStateError for a write to a call that the server's death already finished).
_STREAM_ERRORS = (grpc.aio.AioRpcError, OSError, asyncio.TimeoutError, asyncio.InvalidStateError, wire.WireError)


def _is_unavailable(exc: Exception) -> bool:
    """Did the node look down (so followers' hints to it are not to be trusted for a while)?"""
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code() == grpc.StatusCode.UNAVAILABLE
    return not isinstance(exc, wire.WireError)


class _Redirect(Exception):
    def __init__(self, hint: str):
        self.hint = hint


class LogClient:
    STALL_S = 0.3            # in-flight batches with no answer this long: the node is stuck, go elsewhere
    # ... and do not go back to it (nor follow hints to it) for this long: longer than a txlog election (0.25-0.5 s),
    # so a paused leader has been replaced by then, yet short, since a slow leader can be taken for a stalled one.
    SUSPECT_S = 0.6
    IDLE_STREAM_S = 5.0      # an Append stream with nothing to send is closed after this long
    JOIN_WINDOW_S = 0.02     # an item shares the queued unit (and future) of items appended at most this long ago
    # A node may take this long per byte in flight before it counts as silent: large values (1 MB SETs from 50
    # clients) are slow to parse, copy and fsync on three nodes, yet the node is working (measured here: a 20 MB
    # SET is answered ~1.6 s after it is sent, ~12 MB/s end to end; this allows 8 MB/s).
    STALL_S_PER_BYTE = 1 / (8 << 20)

    def __init__(self, addresses: list[str], log_name: str, writer_id: str | None = None,
                 max_inflight_batches: int = 8, max_batch_items: int = 8192, append_timeout_s: float = 10.0,
                 max_batch_bytes: int = 1 << 20, max_inflight_bytes: int = 4 << 20, tls: TxlogTLS | None = None):
        assert addresses, "at least one txlog address"
        self.addresses = list(addresses)
        self.tls = tls
        self.log = log_name
        self.writer_id = writer_id or uuid.uuid4().hex
        self.max_inflight_batches = max_inflight_batches
        self.max_batch_items = max_batch_items
        # Batches of many small writes are never near these; large values are. One item goes alone when bigger.
        self.max_batch_bytes = max_batch_bytes
        self.max_inflight_bytes = max_inflight_bytes
        self.append_timeout_s = append_timeout_s
        self.leader_address: str | None = None
        self._channels: dict[str, grpc.aio.Channel] = {}
        # queued units: (items sharing one future, epoch, future, deadline)
        self._queue: collections.deque[tuple[list[bytes], int, asyncio.Future, float]] = collections.deque()
        self._open_unit: tuple | None = None       # the queued unit `append` adds to (never an append_many's list)
        self._open_unit_bytes = 0
        self._special: collections.deque[_Batch] = collections.deque()   # claims: never merged with data
        # The loop this client runs on, once known: asyncio.get_running_loop() makes a getpid() system call (its
        # fork check), 0.2-0.7 µs on these VMs, and `append` runs once per write.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inflight: collections.deque[_Batch] = collections.deque()
        self._seq = itertools.count(1)
        self._wake = asyncio.Event()
        self._sender: asyncio.Task | None = None
        self._rotation = itertools.cycle(range(len(self.addresses)))
        self._closed = False
        self._suspects: dict[str, float] = {}     # address -> until when it is avoided (it stalled)
        # Called with the address of the node that answered an append (so the leader, as we reach it) whenever
        # that changes: a primary tails from there, since the leader sends commits first.
        self.on_leader: Callable[[str], None] | None = None
        self.serving_address: str | None = None
        # When the latest batch acknowledged OK was first sent (time.monotonic()): no later than its commit, so a
        # writer's lease may run from it even when the batch waited here behind others (see memdb/node.py).
        self.acked_sent_at = 0.0

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def _channel(self, address: str) -> grpc.aio.Channel:
        node_channel = self._channels.get(address)
        if node_channel is None:
            node_channel = self._channels[address] = channel(wire.split_address(address)[0], self.tls, GRPC_OPTIONS)
        return node_channel

    async def close(self) -> None:
        self._closed = True
        self._loop = None
        if self._sender is not None:
            self._sender.cancel()
            try:
                await self._sender
            except asyncio.CancelledError:
                pass
        for batch in list(self._inflight) + list(self._special):
            for f in batch.futures:
                if not f.done():
                    f.set_exception(LogUnavailable(pb.AppendResponse(status=pb.UNAVAILABLE,
                                                                     message="client closed")))
        for _, _, f, _ in self._queue:
            if not f.done():
                f.set_exception(LogUnavailable(pb.AppendResponse(status=pb.UNAVAILABLE, message="client closed")))
        for node_channel in self._channels.values():
            await node_channel.close()

    def _ensure_sender(self) -> None:
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._run_sender())

    # -- appending ---------------------------------------------------------------------------------------------
    def append(self, item: bytes, epoch: int) -> asyncio.Future:
        """Queue one item of epoch `epoch`; the future resolves with the index of the batch that holds it. It is
        shared with the items queued next to it (see the module docstring)."""
        queue = self._queue
        if queue:
            last = queue[-1]
            # Join only a young unit: the unit's deadline is its first item's, and while no node answers (an
            # election) the queue waits, so a later item must not inherit an old deadline.
            loop = self._loop or self._bind_loop()
            young = last[3] - loop.time() > self.append_timeout_s - self.JOIN_WINDOW_S
            if last is self._open_unit and last[1] == epoch and len(last[0]) < self.max_batch_items \
                    and self._open_unit_bytes + len(item) <= self.max_batch_bytes and not last[2].done() and young:
                last[0].append(item)
                self._open_unit_bytes += len(item)
                return last[2]
        future = self._enqueue([item], epoch)
        self._open_unit = queue[-1]
        self._open_unit_bytes = len(item)
        return future

    def append_many(self, items: list[bytes], epoch: int) -> asyncio.Future:
        """Queue several items of epoch `epoch` that go into one batch together; one future for all of them
        (the index of that batch). Cheaper than one `append` per item when the caller has them at hand."""
        return self._enqueue(items, epoch)

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        self._loop = asyncio.get_running_loop()
        return self._loop

    def _enqueue(self, items: list[bytes], epoch: int) -> asyncio.Future:
        loop = self._loop or self._bind_loop()
        future = loop.create_future()
        self._queue.append((items, epoch, future, loop.time() + self.append_timeout_s))
        if self._sender is None or self._sender.done():
            self._ensure_sender()
        self._wake.set()
        return future

    async def append_batch(self, items: list[bytes], epoch: int, kind: int = pb.DATA,
                           expected_last_index: int | None = None) -> int:
        """Append items as one batch of their own (e.g. a conditional LEADERSHIP claim); returns its index."""
        future = asyncio.get_running_loop().create_future()
        request = pb.AppendRequest(log=self.log, writer_id=self.writer_id, epoch=epoch, kind=kind, items=items)
        if expected_last_index is not None:
            request.expected_last_index = expected_last_index
        self._special.append(_Batch(request, [future], self._deadline()))
        self._ensure_sender()
        self._wake.set()
        return await future

    def _deadline(self) -> float:
        return asyncio.get_running_loop().time() + self.append_timeout_s

    def _next_batch(self) -> _Batch | None:
        """What to send next: a queued claim first (in order with data), else every queued item of one epoch."""
        if self._special:
            batch = self._special.popleft()
            batch.request.batch_seq = next(self._seq)
            return batch
        if not self._queue:
            return None
        queue = self._queue
        epoch = queue[0][1]
        deadline = queue[0][3]
        items, futures = [], []
        size = 0
        while queue and queue[0][1] == epoch and len(items) < self.max_batch_items:
            unit = queue[0][0]          # items sharing one future: a unit is never split
            unit_bytes = sum(map(len, unit))
            if items and size + unit_bytes > self.max_batch_bytes:
                break
            _, _, future, _ = queue.popleft()
            items.extend(unit)
            futures.append(future)
            size += unit_bytes
        request = pb.AppendRequest(log=self.log, writer_id=self.writer_id, batch_seq=next(self._seq),
                                   epoch=epoch, kind=pb.DATA, items=items)
        return _Batch(request, futures, deadline, size)

    async def _run_sender(self) -> None:
        backoff = 0.01
        while not self._closed:
            address = self.leader_address or self._next_address()
            try:
                await self._stream(address)
                backoff = 0.01
            except _Redirect as redirect:
                # A hint is the answering node's address for the leader; behind zone proxies each zone reaches
                # a node at a different address, so only a hint that is one of ours can be followed.
                self.leader_address = redirect.hint if redirect.hint in self.addresses and \
                    not self._suspected(redirect.hint) else None
                if self.leader_address is None or redirect.hint == address:
                    # No leader known yet (an election is on): ask around again soon; elections take 0.25-0.5 s.
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 0.05)
            except _STREAM_ERRORS as exc:
                log.debug("append stream to %s failed: %r", address, exc)
                self.leader_address = None
                if _is_unavailable(exc):
                    # Down (connection refused or reset): followers keep naming it as leader until they elect
                    # another, so do not follow their hints back to it meanwhile.
                    self._suspects[address] = asyncio.get_running_loop().time() + self.SUSPECT_S
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 0.05)
            except Exception:   # noqa: BLE001 - a sender that died would strand every waiting append
                log.exception("append stream to %s failed unexpectedly", address)
                self.leader_address = None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 0.05)
            self._expire()
            if not self._inflight and not self._queue and not self._special:
                return   # idle: the next append starts a new sender

    def _next_address(self) -> str:
        """The next address in rotation that has not stalled lately (any, if all have)."""
        for _ in range(len(self.addresses)):
            address = self.addresses[next(self._rotation)]
            if not self._suspected(address):
                return address
        return address

    def _suspected(self, address: str) -> bool:
        until = self._suspects.get(address)
        return until is not None and asyncio.get_running_loop().time() < until

    def _expire(self) -> float:
        """Fail what waited longer than append_timeout_s (it may still commit: a retry would be deduplicated
        only while the same batch is resent, so the caller must treat it as "unknown"); returns the next
        deadline."""
        now = asyncio.get_running_loop().time()
        timeout = pb.AppendResponse(status=pb.UNAVAILABLE,
                                    message="the log did not answer in time (it may still commit)")
        while self._inflight and self._inflight[0].deadline < now:
            self._fail(self._inflight.popleft(), timeout)
        while self._special and self._special[0].deadline < now:
            self._fail(self._special.popleft(), timeout)
        queue = self._queue
        if queue and queue[0][3] < now:
            error = LogUnavailable(timeout)
            while queue and queue[0][3] < now:
                future = queue.popleft()[2]
                if not future.done():
                    future.set_exception(error)
        deadlines = [b[0].deadline for b in (self._inflight, self._special) if b] + ([queue[0][3]] if queue else [])
        return min(deadlines) if deadlines else now + self.append_timeout_s

    async def _stream(self, address: str) -> None:
        loop = asyncio.get_running_loop()
        wire_address = wire.split_address(address)[1]
        call = await _WireAppendCall.open(wire_address, self.tls) if wire_address else \
            pb_grpc.TxLogStub(self._channel(address)).Append()
        reader = loop.create_task(self._read_answers(call, address))
        reader.add_done_callback(lambda _: self._wake.set())
        wake = self._wake
        timer = None
        idle_since = loop.time()
        self._progress_at = loop.time()
        stalled = False

        def watch() -> None:
            # A node that stopped answering (paused, or gone without closing the connection) must not hold the
            # writer past its lease: give up on it, even in the middle of a write (a stopped peer can block
            # one), and try another node; the resent batches are deduplicated.
            nonlocal stalled, watchdog
            if self._inflight and loop.time() - self._progress_at > self._stall_s():
                log.info("append stream to %s silent for %.2fs; trying another node", address,
                         loop.time() - self._progress_at)
                stalled = True
                self._suspects[address] = loop.time() + self.SUSPECT_S
                call.cancel()
                reader.cancel()
                wake.set()
            else:
                watchdog = loop.call_later(self.STALL_S / 3, watch)

        watchdog = loop.call_later(self.STALL_S / 3, watch)
        try:
            for batch in list(self._inflight):      # resend what was not answered; dedup makes it safe
                await call.write(batch.request)
            while not reader.done():
                if len(self._inflight) < self.max_inflight_batches and \
                        (not self._inflight or self._inflight_bytes() < self.max_inflight_bytes):
                    batch = self._next_batch()
                    if batch is not None:
                        if not self._inflight:
                            self._progress_at = loop.time()
                        self._inflight.append(batch)
                        batch.first_sent_at = time.monotonic()
                        await call.write(batch.request)
                        continue
                idle = not self._inflight and not self._queue and not self._special
                if idle and loop.time() >= idle_since + self.IDLE_STREAM_S:
                    await call.done_writing()
                    await reader
                    return
                wake.clear()
                # wake up for an answer (the reader sets it), a new append, the next deadline, or to close an
                # idle stream (kept open a while: a new stream per append would cost a round trip and a task)
                if idle:
                    timer = loop.call_at(idle_since + self.IDLE_STREAM_S, wake.set)
                else:
                    idle_since = float("inf")
                    timer = loop.call_at(self._expire(), wake.set)
                await wake.wait()
                timer.cancel()
                if idle_since == float("inf") and not self._inflight and not self._queue and not self._special:
                    idle_since = loop.time()
            if stalled:
                raise _Redirect("")
            reader.result()   # re-raise a redirect or stream error
        except (asyncio.CancelledError,) + _STREAM_ERRORS:
            if stalled:           # our watchdog cancelled the call under a pending write
                raise _Redirect("") from None
            raise
        finally:
            watchdog.cancel()
            if timer is not None:
                timer.cancel()
            if not reader.done():
                reader.cancel()
            elif not reader.cancelled():
                reader.exception()      # retrieved: a stream that ended under a cancelled sender is no news
            call.cancel()

    def _inflight_bytes(self) -> int:
        return sum(b.item_bytes for b in self._inflight)

    def _stall_s(self) -> float:
        """How long the node may stay silent with our batches in flight before we give up on it."""
        return self.STALL_S + self._inflight_bytes() * self.STALL_S_PER_BYTE

    async def _read_answers(self, call, address: str) -> None:
        while True:
            response = await call.read()
            if response is grpc.aio.EOF:
                if self._inflight:
                    raise _Redirect("")
                return
            if not self._inflight or self._inflight[0].request.batch_seq != response.batch_seq:
                continue   # an answer to a batch we already gave up on
            if response.status == pb.NOT_LEADER:
                raise _Redirect(response.leader_hint)
            batch = self._inflight.popleft()
            self._progress_at = asyncio.get_running_loop().time()
            if address != self.serving_address and response.status != pb.UNAVAILABLE:
                self.serving_address = address
                if self.on_leader is not None:
                    self.on_leader(address)
            if response.status == pb.OK:
                self.acked_sent_at = max(self.acked_sent_at, batch.first_sent_at)
                for f in batch.futures:
                    if not f.done():
                        f.set_result(response.index)
            else:
                self._fail(batch, response)
            self._wake.set()

    @staticmethod
    def _fail(batch: _Batch, response: pb.AppendResponse) -> None:
        error = _ERRORS.get(response.status, AppendError)(response)
        for f in batch.futures:
            if not f.done():
                f.set_exception(error)

    # -- reading -----------------------------------------------------------------------------------------------
    async def tail(self, from_index: int, address: str | None = None) -> AsyncIterator[pb.TailEntry]:
        """Committed entries from `from_index` on, forever; survives node failures by moving to another node."""
        async for entries in self.tail_batches(from_index, address):
            for entry in entries:
                yield entry

    async def tail_batches(self, from_index: int, address: str | None = None) -> AsyncIterator[list[pb.TailEntry]]:
        """As `tail`, in the lists the node sent them in (each non-empty, contiguous, continuing the last)."""
        next_index = max(from_index, 1)
        backoff = 0.01
        rotation = itertools.cycle(self.addresses)
        current = address or self.leader_address or next(rotation)
        while not self._closed:
            request = pb.TailRequest(log=self.log, from_index=next_index)
            wire_address = wire.split_address(current)[1]
            responses = _wire_tail(wire_address, request, self.tls) if wire_address else \
                pb_grpc.TxLogStub(self._channel(current)).Tail(request)
            try:
                async for response in responses:
                    backoff = 0.01
                    entries = response.entries
                    if entries and entries[0].index < next_index:     # a resumed tail repeats what we had
                        entries = [e for e in entries if e.index >= next_index]
                    if not entries:
                        continue
                    first, last = entries[0].index, entries[-1].index
                    assert first == next_index and last - first == len(entries) - 1, \
                        f"tail skipped from {next_index} to {first}..{last} ({len(entries)} entries)"
                    next_index = last + 1
                    yield entries
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.OUT_OF_RANGE:
                    raise LogTrimmed(exc.details()) from exc
                log.debug("tail from %s failed: %s", current, exc.code())
            except wire.WireError as exc:
                if exc.code == grpc.StatusCode.OUT_OF_RANGE.value[0]:
                    raise LogTrimmed(str(exc)) from exc
                log.debug("tail from %s failed: %s", current, exc)
            except (OSError, asyncio.TimeoutError) as exc:
                log.debug("tail from %s failed: %r", current, exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 0.2)
            current = next(rotation)

    async def status(self, address: str, timeout_s: float = 1.0) -> pb.StatusResponse:
        return await pb_grpc.TxLogStub(self._channel(address)).Status(pb.StatusRequest(), timeout=timeout_s)

    async def trim(self, below_index: int) -> pb.TrimResponse:
        for _ in range(20):
            address = self.leader_address or self.addresses[next(self._rotation)]
            try:
                response = await pb_grpc.TxLogStub(self._channel(address)).Trim(
                    pb.TrimRequest(log=self.log, below_index=below_index), timeout=5)
            except grpc.aio.AioRpcError:
                self.leader_address = None
                await asyncio.sleep(0.05)
                continue
            if response.status == pb.NOT_LEADER:
                self.leader_address = response.leader_hint or None
                await asyncio.sleep(0.02)
                continue
            return response
        raise LogUnavailable(pb.AppendResponse(status=pb.UNAVAILABLE, message="no leader for trim"))


async def _wire_tail(address: str, request: pb.TailRequest,
                     tls: TxlogTLS | None) -> AsyncIterator[pb.TailResponse]:
    connection = await wire.connect(address, ssl_context=wire_context(tls))
    try:
        connection.send(wire.Kind.TAIL_REQUEST, request.SerializeToString())
        while True:
            kind, payload = await connection.recv()
            if kind == wire.Kind.TAIL_RESPONSE:
                yield pb.TailResponse.FromString(payload)
            elif kind == wire.Kind.ERROR:
                raise wire.parse_error(payload)
            else:
                raise wire.WireError(f"unexpected frame kind {kind} on a tail")
    finally:
        connection.close()
