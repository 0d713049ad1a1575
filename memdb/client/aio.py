"""AsyncClient: the asyncio client. The sync Client (memdb/client/sync.py) runs one of these on its own loop thread.

Theory of operation
-------------------
* Topology. The client asks its seeds (and every node it has learnt of) for `Topology`, keeps for each shard the
  answer with the highest epoch, and maps each of the 16384 hash slots to its shard. A command's keys (from the
  command table, memdb.commands.dispatch.lookup) pick the slot; keys of different slots raise CrossSlotError before
  anything is sent. The topology is refreshed (one refresh at a time, shared by all callers) on a MOVED reply, on a
  lost connection (gRPC UNAVAILABLE and friends), and on READONLY / TRYAGAIN / CLUSTERDOWN replies, which is what a
  failover looks like from outside. The gRPC API's MOVED names the owner's gRPC address: a call resends at once,
  to where the refreshed topology says, or to MOVED's address if the topology still disagrees.
* Transport. One gRPC channel per data node and, on it, long-lived `BatchPipeline` streams shared by every caller
  (_Mux; one for writes and pipelines, one for single reads, see _Connection): a command is added to the request
  batch being built, and the stream's writer sends the whole batch as one message whenever gRPC can take the next
  one; replies come back in order, in batches too. In Python, gRPC's cost is per message (unary calls top out near
  3k/s), so under concurrency this divides it among the commands of a batch; a lone caller pays one message each
  way. Blocking commands (BLPOP, XREAD, ...) use unary `Execute` instead, since the server answers a stream in order
  and a parked pop would hold up every later reply.
* Deadlines. Every call has one. A stream call's future is failed by one sweeper task (_expire_calls, every 10 ms
  while calls wait) rather than a timer per call; a unary call carries it as the gRPC timeout.
* Exactly-once writes. A write (WRITE or MAY_REPLICATE in the command table: EVAL, FCALL go through the log too)
  gets the next `client_seq` of this client's random `client_id`; every retry of it reuses the number, so the
  server's table (memdb/dedup.py) applies it once and gives a retry the first reply. Writes are retried until the
  call's deadline, never after it.
* Read-your-writes. Each write's Response.index (per shard: every shard has its own log) is remembered; a read sent
  to a replica carries min_index = that index, so the replica answers only once it has applied the client's writes.
"""
from __future__ import annotations

import asyncio
import bisect
import collections
import dataclasses
import functools
import logging
import random
import time
import uuid
from typing import Any, Callable, Iterable, Sequence

import grpc

from memdb.client import exceptions as exc
from memdb.client.commands import Commands, Parse, WithTimeout, parse_reply
from memdb.client.values import encode_args, from_value
from memdb.cluster import key_slot as _key_slot
from memdb.commands.dispatch import lookup
from memdb.commands.spec import CommandError, Flag
from memdb.generated import memdb_pb2 as pb
from memdb.generated import memdb_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
# Writes in flight per client are limited so that a retry always lands inside the server's exactly-once window
# (memdb/dedup.py keeps the last 256 replies per client): while the oldest unfinished write is outstanding, no
# write numbered `oldest + WRITE_WINDOW` or higher is sent, so fewer than 2 * WRITE_WINDOW = 256 replies can be
# recorded after it and it can never be evicted before its retry.
WRITE_WINDOW = 128
TOPOLOGY_PROBE_TIMEOUT_S = 1.0
REFRESH_MIN_INTERVAL_S = 0.05
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.02, 0.25
NODE_DOWN_S = 1.0
MAX_MESSAGE_BYTES = 512 << 20
MAX_BATCH_REQUESTS = 512            # requests per BatchPipeline message ...
MAX_BATCH_BYTES = 1 << 20           # ... and argument bytes (a bigger single request goes alone)
DEADLINE_TICK_S = 0.01              # how late a stream call's TimeoutError may be
GRPC_OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 1000)]
# Transport failures after which the request may or may not have reached the node: retried (writes with their
# client_seq), after a topology refresh.
RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN,
                             grpc.StatusCode.INTERNAL, grpc.StatusCode.ABORTED})
# CRC16 in Python costs ~1 us per key; hot keys repeat
key_slot = functools.lru_cache(maxsize=1 << 16)(_key_slot)
# Commands the server logs (memdb.node: WRITE and MAY_REPLICATE): sent to the primary with a client_seq.
_LOGGED_FLAGS = frozenset({Flag.WRITE, Flag.MAY_REPLICATE})
# Logged, but outside the exactly-once table (PUBLISH): sent once to the primary, never retried.
_AT_MOST_ONCE = frozenset({"publish", "spublish"})
# Error replies that mean "not here / not now": refresh the topology and retry. A READONLY or TRYAGAIN write was
# either not applied or is deduplicated by its client_seq, so retrying it is safe.
RETRYABLE_REPLIES = ("MOVED", "READONLY", "TRYAGAIN", "CLUSTERDOWN")


class _TransportError(Exception):
    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code.name}: {details}")
        self.code = code


class _TlsMismatch(exc.ConnectionError):
    """A node refused the connection in a way that points at the TLS settings (see AsyncClient._tls_hint)."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.hint = hint


class _Expired(Exception):
    """A call's deadline passed while it waited for its reply."""


@dataclasses.dataclass(slots=True)
class _Node:
    name: str
    zone: str
    address: str            # host:grpc_port
    role: str


@dataclasses.dataclass(slots=True)
class _Shard:
    name: str
    ranges: list[tuple[int, int]]
    nodes: list[_Node]      # primary first
    epoch: int
    primary: _Node | None = dataclasses.field(init=False)
    replicas: list[_Node] = dataclasses.field(init=False)

    def __post_init__(self):
        self.primary = next((n for n in self.nodes if n.role == "primary"), None)
        self.replicas = [n for n in self.nodes if n.role != "primary"]


class _Topology:
    """Shards and the slot -> shard map, from Topology answers."""

    def __init__(self, shards: Sequence[_Shard]):
        self.shards = {s.name: s for s in shards}
        bounds = sorted((lo, hi, s.name) for s in shards for lo, hi in s.ranges)
        self._starts = [lo for lo, _, _ in bounds]
        self._bounds = bounds

    def shard_of_slot(self, slot: int) -> _Shard | None:
        i = bisect.bisect_right(self._starts, slot) - 1
        if i >= 0:
            lo, hi, name = self._bounds[i]
            if lo <= slot <= hi:
                return self.shards[name]
        return None

    def addresses(self) -> list[str]:
        return [n.address for s in self.shards.values() for n in s.nodes]


class _Mux:
    """One long-lived BatchPipeline stream to a node, shared by all callers. send() adds a request to the batch
    being built; the stream's writer takes the whole batch whenever gRPC is ready for the next message, so
    concurrent callers share messages (gRPC's per-message cost is paid per batch). Replies come back in request
    order, so the pending futures are a FIFO."""

    def __init__(self, stub: pb_grpc.MemdbStub):
        self._loop = asyncio.get_running_loop()
        self._batches: collections.deque[pb.RequestBatch] = collections.deque()
        self._batch_bytes = 0
        self._wakeup: asyncio.Future | None = None
        self._pending: collections.deque[tuple[int, asyncio.Future, float]] = collections.deque()
        self._earliest = float("inf")          # no waiting call has a deadline before this
        self._next_id = 1
        self._ending = False
        self.broken: _TransportError | None = None
        self._call = stub.BatchPipeline(self._requests())
        self._reader = self._loop.create_task(self._read())   # owned: cancelled by close()

    async def _requests(self):
        while True:
            if self._batches:
                yield self._batches.popleft()
            elif self._ending:
                return
            else:
                self._wakeup = self._loop.create_future()
                await self._wakeup

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)
        self._wakeup = None

    async def _read(self) -> None:
        error = _TransportError(grpc.StatusCode.CANCELLED, "stream closed")
        pending = self._pending
        try:
            async for batch in self._call:
                for response in batch.responses:
                    request_id, future, _ = pending[0]
                    if request_id != response.request_id:
                        error = _TransportError(grpc.StatusCode.INTERNAL, f"reply {response.request_id} arrived "
                                                f"where {request_id} was expected")
                        return
                    pending.popleft()
                    if not future.done():
                        future.set_result(response)
        except grpc.aio.AioRpcError as e:
            error = _TransportError(e.code(), e.details() or "")
        except asyncio.CancelledError:
            pass
        finally:
            self.broken = error
            self._ending = True
            self._wake()                        # ends the request generator, so grpc's sender task finishes too
            for _, future, _ in pending:
                if not future.done():
                    future.set_exception(error)
            pending.clear()

    def send(self, args: list[bytes], db: int, client_id: str, client_seq: int, min_index: int,
             deadline: float) -> asyncio.Future:
        future = self._loop.create_future()
        if self.broken is not None:
            future.set_exception(self.broken)
            return future
        size = sum(map(len, args))
        if not self._batches or len(self._batches[-1].requests) >= MAX_BATCH_REQUESTS \
                or self._batch_bytes + size > MAX_BATCH_BYTES:
            self._batches.append(pb.RequestBatch())
            self._batch_bytes = 0
        self._batch_bytes += size
        request_id = self._next_id
        self._next_id += 1
        request = self._batches[-1].requests.add(args=args, db=db, request_id=request_id)
        if client_seq:
            request.client_id, request.client_seq = client_id, client_seq
        if min_index:
            request.min_index = min_index
        self._pending.append((request_id, future, deadline))
        if deadline < self._earliest:
            self._earliest = deadline
        self._wake()
        return future

    def expire(self, now: float) -> bool:
        """Fail the waiting calls whose deadline passed (their replies, when they come, are dropped); True while
        any call still waits. Scans only when the earliest deadline has passed."""
        if not self._pending:
            self._earliest = float("inf")
        elif now >= self._earliest:
            earliest = float("inf")
            for _, future, deadline in self._pending:
                if not future.done():
                    if deadline <= now:
                        future.set_exception(_Expired())
                    elif deadline < earliest:
                        earliest = deadline
            self._earliest = earliest
        return self._earliest != float("inf")

    async def close(self) -> None:
        self._ending = True
        self._wake()
        self._call.cancel()
        self._reader.cancel()
        try:
            await self._reader
        except asyncio.CancelledError:
            pass


class _Connection:
    """A channel to one node and its two shared streams. The server answers a stream in order and runs a read
    only after the writes before it on the same stream (read-your-writes, as on a RESP connection). Pipelines need
    that, independent callers do not: with one stream, every read would wait for the writes of all other callers
    (a mixed workload ran at ~100 ops/s). So writes and pipelines go on the ordered stream, single reads on a stream
    of their own; a caller's read after its own write still sees it, as the write was applied when it answered."""

    def __init__(self, address: str, credentials: grpc.ChannelCredentials | None, options: list):
        if credentials is not None:
            self.channel = grpc.aio.secure_channel(address, credentials, options=options)
        else:
            self.channel = grpc.aio.insecure_channel(address, options=options)
        self.stub = pb_grpc.MemdbStub(self.channel)
        self._muxes: list[_Mux | None] = [None, None]      # [ordered (writes, pipelines), single reads]

    def mux_waiting(self, now: float) -> bool:
        waiting = False
        for mux in self._muxes:
            if mux is not None and mux.expire(now):
                waiting = True
        return waiting

    def mux(self, ordered: bool = True) -> _Mux:
        i = 0 if ordered else 1
        mux = self._muxes[i]
        if mux is None or mux.broken is not None:
            mux = self._muxes[i] = _Mux(self.stub)
        return mux

    async def close(self) -> None:
        for mux in self._muxes:
            if mux is not None:
                await mux.close()
        await self.channel.close()


@dataclasses.dataclass(slots=True)
class _Call:
    """One command on its way: everything a retry needs to send it again identically."""
    args: list[bytes]
    parse: Parse | None
    is_write: bool
    retry_safe: bool                # a transport failure may be retried (a read, or a write with a client_seq)
    blocking: bool
    slot: int | None
    seq: int                        # 0 = no client_seq (reads)
    deadline: float                 # time.monotonic()
    raise_on_error: bool = True
    node: _Node | None = None
    shard: _Shard | None = None
    force_primary: bool = False
    in_pipeline: bool = False       # keeps its place among the pipeline's other commands (the ordered stream)
    redirect: str = ""              # host:port named by a MOVED reply that the topology did not confirm
    moved: int = 0                  # MOVED replies seen by this call


def check_timeout(timeout: Any) -> float:
    """A call's timeout in seconds: a positive int or float (DataError otherwise, never a hang or a TypeError)."""
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise exc.DataError(f"timeout must be a positive number of seconds, not {timeout!r}")
    return float(timeout)


def _pem(value: bytes | str | None, what: str) -> bytes | None:
    """PEM bytes, from bytes/str holding PEM or from a file path."""
    if value is None or isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise exc.DataError(f"{what} must be PEM bytes or a file path, not {type(value).__name__}")
    if value.lstrip().startswith("-----BEGIN"):
        return value.encode()
    try:
        with open(value, "rb") as f:
            return f.read()
    except OSError as e:
        raise exc.DataError(f"cannot read {what} from {value!r}: {e.strerror}") from None


def _tls_credentials(tls: bool, root_certificates, private_key, certificate_chain) -> grpc.ChannelCredentials | None:
    """Channel credentials when any TLS option is given (tls=True alone: the system's root certificates)."""
    if not (tls or root_certificates is not None or private_key is not None or certificate_chain is not None):
        return None
    if (private_key is None) != (certificate_chain is None):
        raise exc.DataError("a client certificate needs both private_key= and certificate_chain=")
    return grpc.ssl_channel_credentials(_pem(root_certificates, "root_certificates"),
                                        _pem(private_key, "private_key"),
                                        _pem(certificate_chain, "certificate_chain"))


def parse_seeds(seeds: str | Iterable[str | tuple[str, int]]) -> list[str]:
    if isinstance(seeds, str):
        seeds = [s.strip() for s in seeds.split(",") if s.strip()]
    out = []
    for seed in seeds:
        if isinstance(seed, tuple):
            host, port = seed
            seed = f"{host}:{port}"
        if not isinstance(seed, str):
            raise exc.DataError(f"a seed must be a 'host:port' string or a (host, port) tuple, not {seed!r}")
        host, _, port = seed.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise exc.DataError(f"a seed must be host:port (the gRPC port of a data node), not {seed!r}")
        out.append(seed)
    if not out:
        raise exc.DataError("at least one seed endpoint (host:port) is needed")
    return out


class AsyncClient(Commands):
    """The asyncio client. `await client.set("k", "v")`; `async with AsyncClient([...]) as client:`."""

    def __init__(self, seeds: str | Iterable[str | tuple[str, int]], *, timeout: float = DEFAULT_TIMEOUT_S,
                 decode_responses: bool = False, read_from: str = "primary", zone: str | None = None,
                 db: int = 0, tls: bool = False, root_certificates: bytes | str | None = None,
                 private_key: bytes | str | None = None, certificate_chain: bytes | str | None = None,
                 tls_server_name: str | None = None, client_id: str | None = None):
        if read_from not in ("primary", "replica"):
            raise exc.DataError(f"read_from must be 'primary' or 'replica', not {read_from!r}")
        if isinstance(db, bool) or not isinstance(db, int) or not 0 <= db <= 15:
            raise exc.DataError(f"db must be an int from 0 to 15, not {db!r}")
        if zone is not None and not isinstance(zone, str):
            raise exc.DataError(f"zone must be a zone name (str), not {zone!r}")
        self.seeds = parse_seeds(seeds)
        self.timeout = check_timeout(timeout)
        self.decode_responses = decode_responses
        self.read_from = read_from
        self.zone = zone
        self.db = db
        self.client_id = client_id or uuid.uuid4().hex
        self._credentials = _tls_credentials(tls, root_certificates, private_key, certificate_chain)
        if tls_server_name is not None and self._credentials is None:
            raise exc.DataError("tls_server_name is a TLS option: pass tls=True or root_certificates= too")
        self._channel_options = GRPC_OPTIONS + ([("grpc.ssl_target_name_override", tls_server_name)]
                                                if tls_server_name else [])
        self._connections: dict[str, _Connection] = {}
        self._topology: _Topology | None = None
        self._refreshing: asyncio.Future | None = None
        self._sweeper: asyncio.Task | None = None          # _expire_calls, while stream calls wait
        self._refreshed_at = 0.0
        self._last_refresh_error = ""
        self._down_until: dict[str, float] = {}
        self._next_seq = 1
        self._outstanding: dict[int, None] = {}      # seqs in flight, oldest first (insertion order)
        self._window_open: asyncio.Event | None = None
        self._last_write_index: dict[str, int] = {}   # shard -> index of this client's last write there
        self._replica_reads = read_from == "replica"
        self._transactions_supported: bool | None = None
        self._rng = random.Random()
        self.stats = {"retries": 0, "refreshes": 0, "replica_reads": 0, "moved": 0}

    # -- lifecycle -------------------------------------------------------------------------------------------------
    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def close(self) -> None:
        for task in (self._refreshing, self._sweeper):
            if task is not None:
                task.cancel()
        self._refreshing = None
        connections, self._connections = self._connections, {}
        for connection in connections.values():
            await connection.close()

    async def connect(self, timeout: float | None = None) -> "AsyncClient":
        """Fetch the topology now (otherwise the first command does)."""
        await self._refresh(self._deadline(timeout), force=True)
        return self

    async def ping(self, timeout: float | None = None) -> bool:
        """True once the cluster answers (a fresh Topology from its nodes); ConnectionError/TimeoutError if not.
        execute("PING") sends PING itself to one node."""
        await self._refresh(self._deadline(timeout), force=True)
        return True

    def _deadline(self, timeout: float | None) -> float:
        """The time.monotonic() deadline of a call with this timeout (None: the client's)."""
        return time.monotonic() + (self.timeout if timeout is None else check_timeout(timeout))

    def _connection(self, address: str) -> _Connection:
        connection = self._connections.get(address)
        if connection is None:
            connection = self._connections[address] = _Connection(address, self._credentials,
                                                                  self._channel_options)
        return connection

    # -- topology --------------------------------------------------------------------------------------------------
    async def topology(self) -> dict[str, dict[str, Any]]:
        """The topology the client routes by: {shard: {"slots": [(lo, hi)], "nodes": [(name, zone, address,
        role)], "epoch": n}}."""
        if self._topology is None:
            await self._refresh(time.monotonic() + self.timeout, force=True)
        return {s.name: {"slots": s.ranges, "nodes": [(n.name, n.zone, n.address, n.role) for n in s.nodes],
                         "epoch": s.epoch} for s in self._topology.shards.values()}

    async def _refresh(self, deadline: float, force: bool = False) -> None:
        """Refresh the topology; concurrent callers share one refresh."""
        if not force and self._topology is not None and time.monotonic() - self._refreshed_at < REFRESH_MIN_INTERVAL_S:
            return
        if self._refreshing is None:
            self._refreshing = asyncio.get_running_loop().create_task(self._fetch_topology(deadline))
            # its failure is raised to the callers that wait for it; one that stopped waiting must not leave it
            # "never retrieved"
            self._refreshing.add_done_callback(lambda t: t.cancelled() or t.exception())
        refreshing = self._refreshing
        try:
            await asyncio.wait_for(asyncio.shield(refreshing), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            detail = f": {self._last_refresh_error}" if self._last_refresh_error else ""
            if self._topology is None:            # never reached any node: a bad seed list, or all down
                raise exc.ConnectionError(f"could not reach any of the seeds {self.seeds} in time{detail}") from None
            raise exc.TimeoutError(f"timed out fetching the topology{detail}") from None
        finally:
            if refreshing.done() and self._refreshing is refreshing:
                self._refreshing = None

    async def _fetch_topology(self, deadline: float) -> None:
        self.stats["refreshes"] += 1
        backoff = BACKOFF_MIN_S
        mismatched_rounds = 0
        while True:
            addresses = list(dict.fromkeys([*(self._topology.addresses() if self._topology else []), *self.seeds]))
            probe_s = max(0.05, min(TOPOLOGY_PROBE_TIMEOUT_S, deadline - time.monotonic()))
            answers = await asyncio.gather(*[self._ask_topology(a, probe_s) for a in addresses],
                                           return_exceptions=True)
            best: dict[str, _Shard] = {}
            failures = []
            for answer in answers:
                if isinstance(answer, exc.ConnectionError):
                    failures.append(answer)
                    continue
                if isinstance(answer, BaseException):
                    raise answer
                for shard in answer:
                    if shard.name not in best or shard.epoch > best[shard.name].epoch:
                        best[shard.name] = shard
            if best:
                self._topology = _Topology(list(best.values()))
                self._refreshed_at = time.monotonic()
                self._last_refresh_error = ""
                return
            hints = dict.fromkeys(f.hint for f in failures if isinstance(f, _TlsMismatch))
            self._last_refresh_error = "; ".join(map(str, failures)) + "".join(hints) or "no node answered"
            # A TLS mismatch does not heal by itself: a client that never reached the cluster stops at once
            # (after a second round, so one handshake torn by a restarting node is not mistaken for it).
            mismatched_rounds = mismatched_rounds + 1 if failures and all(
                isinstance(f, _TlsMismatch) for f in failures) and self._topology is None else 0
            if mismatched_rounds >= 2 or time.monotonic() + backoff >= deadline:
                raise exc.ConnectionError(f"could not fetch the topology from any of {addresses}: "
                                          f"{self._last_refresh_error}")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    async def _ask_topology(self, address: str, timeout_s: float) -> list[_Shard]:
        try:
            answer = await self._connection(address).stub.Topology(pb.TopologyRequest(), timeout=timeout_s)
        except grpc.aio.AioRpcError as e:
            details = e.details() or ""
            hint = self._tls_hint(details)
            if hint:
                raise _TlsMismatch(f"{address}: {e.code().name} {details}", hint) from None
            raise exc.ConnectionError(f"{address}: {e.code().name} {details}") from None
        # a node without a gRPC port (grpc_port 0) cannot be used by this client
        return [_Shard(s.name, [(r.start, r.end) for r in s.slots],
                       [_Node(n.name, n.zone, f"{n.host}:{n.grpc_port}", n.role) for n in s.nodes if n.grpc_port],
                       s.epoch)
                for s in answer.shards]

    def _tls_hint(self, details: str) -> str:
        """What a failed connection says about the TLS settings ("" when it says nothing)."""
        lowered = details.lower()
        if any(word in lowered for word in ("handshake", "certificate", "ssl", "verification")):
            return (" (the TLS handshake failed: root_certificates= must hold the CA that signed the nodes' "
                    "certificates, and their certificates must name the host you connect to; tls_server_name= "
                    "overrides the name checked)")
        if "socket closed" in lowered:
            if self._credentials is None:
                return (" (the node closed the connection at once: is this its gRPC port, and does it serve TLS? "
                        "then pass tls=True or root_certificates=)")
            return (" (the node closed the connection during the TLS handshake: if it requires client "
                    "certificates (mutual TLS), pass private_key= and certificate_chain=; if it serves plaintext, "
                    "drop the TLS options)")
        return ""

    # -- the command path ------------------------------------------------------------------------------------------
    def _command(self, args: list, parse: Parse | None = None, **options: Any):
        return self._execute(args, parse, **options)

    def with_timeout(self, timeout: float) -> WithTimeout:
        """The command methods with a per-call timeout: `await client.with_timeout(0.5).get("k")`."""
        return WithTimeout(self, check_timeout(timeout))

    async def execute(self, *args: Any, timeout: float | None = None) -> Any:
        """Any command; its reply as the natural Python value (see memdb.client.values.from_value)."""
        return await self._execute(list(args), None, timeout=timeout)

    execute_command = execute

    async def _execute(self, args: list, parse: Parse | None, timeout: float | None = None,
                       block_s: float | None = None) -> Any:
        call = await self._prepare(args, parse, timeout, block_s)
        return await self._finish(call, self._submit(call))

    async def _prepare(self, args: list, parse: Parse | None, timeout: float | None, block_s: float | None,
                       raise_on_error: bool = True) -> _Call:
        wire = encode_args(args)
        if not wire:
            raise exc.DataError("empty command")
        timeout_s = self.timeout if timeout is None else check_timeout(timeout)
        if block_s is not None:
            try:
                block_s = float(block_s)
            except (TypeError, ValueError):
                raise exc.DataError(f"invalid blocking timeout {block_s!r}") from None
            if block_s < 0:
                raise exc.DataError("a blocking timeout must not be negative")
            # a blocking pop waits on the server first: the call's deadline starts after that (0 = forever)
            timeout_s = float("inf") if block_s == 0 else timeout_s + block_s
        name = wire[0].upper()
        if name in (b"MULTI", b"EXEC", b"DISCARD", b"WATCH", b"UNWATCH"):
            raise exc.DataError(f"{name.decode()} needs a connection of its own: use transaction() or pipeline"
                                "(transaction=True)")
        try:
            spec = lookup(wire)
            # EVAL/FCALL/SCRIPT LOAD (MAY_REPLICATE) go through the log like writes: primary, exactly-once
            is_write = bool(spec.flags & _LOGGED_FLAGS)
            blocking = Flag.BLOCKING in spec.flags
            known = spec.name not in _AT_MOST_ONCE
            is_write = is_write or not known
            slots = {key_slot(wire[i]) for i in spec.key_positions(wire) if i < len(wire)}
        except CommandError:
            # unknown here (or a wrong arity): the server gives the error; sent once, to a primary, not retried
            is_write, blocking, known, slots = True, False, False, set()
        if len(slots) > 1:
            raise exc.CrossSlotError(f"CROSSSLOT the keys of {name.decode()} hash to different slots "
                                     f"({sorted(slots)}); use a {{hash tag}} to keep them together")
        seq = 0
        deadline = time.monotonic() + timeout_s
        if is_write and known:
            seq = await self._acquire_seq(deadline)
        return _Call(wire, parse, is_write, retry_safe=known, blocking=blocking,
                     slot=slots.pop() if slots else None, seq=seq, deadline=deadline, raise_on_error=raise_on_error)

    async def _acquire_seq(self, deadline: float) -> int:
        while self._outstanding and self._next_seq - next(iter(self._outstanding)) >= WRITE_WINDOW:
            if self._window_open is None:
                self._window_open = asyncio.Event()
            try:
                await asyncio.wait_for(self._window_open.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                raise exc.TimeoutError("timed out waiting for the write window (too many writes in flight)") from None
        seq = self._next_seq
        self._next_seq += 1
        self._outstanding[seq] = None
        return seq

    def _release_seq(self, seq: int) -> None:
        if seq:
            self._outstanding.pop(seq, None)
            if self._window_open is not None:
                self._window_open.set()
                self._window_open = None

    def _pick_node(self, call: _Call) -> tuple[_Shard | None, _Node | None]:
        topology = self._topology
        if topology is None:
            return None, None
        if call.redirect:
            shard = next((s for s in topology.shards.values() for n in s.nodes if n.address == call.redirect), None)
            node = next((n for n in shard.nodes if n.address == call.redirect), None) if shard else None
            return shard, _Node(node.name if node else call.redirect, node.zone if node else "", call.redirect,
                                "primary")
        if call.slot is None:
            shard = topology.shards[min(topology.shards)] if topology.shards else None
        else:
            shard = topology.shard_of_slot(call.slot)
        if shard is None:
            return None, None
        if call.is_write or not self._replica_reads or call.force_primary:
            return shard, shard.primary
        now = time.monotonic()
        replicas = [n for n in shard.replicas if self._down_until.get(n.address, 0) <= now]
        local = [n for n in replicas if self.zone and n.zone == self.zone]
        pool = local or replicas
        return shard, (self._rng.choice(pool) if pool else shard.primary)

    def _submit(self, call: _Call) -> asyncio.Future | None:
        """Send the call to its node now (no await: pipelines keep their order); None if there is no node yet."""
        shard, node = self._pick_node(call)
        call.shard, call.node = shard, node
        if node is None:
            return None
        min_index = 0
        if not call.is_write and node.role != "primary" and shard is not None:
            min_index = self._last_write_index.get(shard.name, 0)
            self.stats["replica_reads"] += 1
        connection = self._connections.get(node.address) or self._connection(node.address)
        if call.blocking:
            request = pb.Request(args=call.args, db=self.db, min_index=min_index)
            if call.seq:
                request.client_id, request.client_seq = self.client_id, call.seq
            remaining = call.deadline - time.monotonic()
            return asyncio.ensure_future(connection.stub.Execute(
                request, timeout=None if remaining == float("inf") else max(0.001, remaining)))
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._expire_calls())
        mux = connection.mux(ordered=call.is_write or call.in_pipeline)
        return mux.send(call.args, self.db, self.client_id, call.seq, min_index, call.deadline)

    async def _finish(self, call: _Call, future: asyncio.Future | None) -> Any:
        """Await the reply; on a retryable failure refresh the topology and send again (same client_seq) until
        the deadline."""
        backoff = BACKOFF_MIN_S
        last_error: Exception | None = None
        try:
            while True:
                if future is None:                      # no topology yet, or no node for the slot
                    try:
                        await self._refresh(call.deadline)
                    except exc.TimeoutError:
                        raise self._timeout(call, last_error) from None
                    future = self._submit(call)
                    if future is None:
                        last_error = exc.ClusterDownError(f"CLUSTERDOWN no shard serves slot {call.slot}")
                        if not await self._backoff(call, backoff):
                            raise last_error
                        backoff = min(backoff * 2, BACKOFF_MAX_S)
                        continue
                try:
                    response = await self._reply(call, future)
                except _Expired:
                    raise self._timeout(call, last_error) from None
                except (_TransportError, grpc.aio.AioRpcError) as e:
                    code = e.code if isinstance(e, _TransportError) else e.code()
                    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                        raise self._timeout(call, last_error) from None
                    if code not in RETRYABLE_CODES or not call.retry_safe:
                        raise exc.ConnectionError(f"{call.node.address}: {e}") from None
                    last_error = exc.ConnectionError(f"{call.node.address}: {e}")
                    self._down_until[call.node.address] = time.monotonic() + NODE_DOWN_S
                    call.redirect = ""
                    future = None
                    self.stats["retries"] += 1
                    if not await self._backoff(call, backoff / 2):
                        raise self._timeout(call, last_error) from None
                    backoff = min(backoff * 2, BACKOFF_MAX_S)
                    continue
                reply = response.reply
                if reply.WhichOneof("kind") == "error":
                    if reply.error.startswith(RETRYABLE_REPLIES) and call.retry_safe:
                        last_error = exc.error_from_reply(reply.error)
                        self.stats["retries"] += 1
                        if reply.error.startswith("MOVED"):
                            future = await self._follow_moved(call, reply.error)
                            if future is not None:
                                continue
                        else:
                            call.redirect = ""
                        future = None
                        if not await self._backoff(call, backoff):
                            raise last_error
                        backoff = min(backoff * 2, BACKOFF_MAX_S)
                        continue
                    if "too old to deduplicate" in reply.error:
                        raise exc.RetryWindowError(reply.error)
                if call.is_write and call.shard is not None:
                    name = call.shard.name
                    if response.index > self._last_write_index.get(name, 0):
                        self._last_write_index[name] = response.index
                value = from_value(reply, self.decode_responses, raise_errors=call.raise_on_error)
                return parse_reply(call.parse, value)
        finally:
            self._release_seq(call.seq)

    async def _reply(self, call: _Call, future: asyncio.Future) -> pb.Response:
        """The call's Response, or _Expired at its deadline: a stream call's future is failed by _expire_calls,
        a blocking call's unary Execute carries the deadline itself (DEADLINE_EXCEEDED)."""
        if call.deadline <= time.monotonic():
            raise _Expired
        return await future

    async def _expire_calls(self) -> None:
        """Every DEADLINE_TICK_S while stream calls wait, fail those past their deadline. One timer for all calls:
        a timer per call (call_later, or asyncio.wait_for) cost ~10% of the client's CPU."""
        try:
            while True:
                await asyncio.sleep(DEADLINE_TICK_S)
                now = time.monotonic()
                waiting = False
                for connection in list(self._connections.values()):
                    if connection.mux_waiting(now):
                        waiting = True
                if not waiting:
                    return
        finally:
            self._sweeper = None

    async def _follow_moved(self, call: _Call, error: str) -> asyncio.Future | None:
        """MOVED slot host:port (the gRPC API names the owner's gRPC address): the topology is stale. Refresh it;
        if it still does not send the slot where MOVED says, send this call there anyway (as Redis Cluster
        clients trust MOVED). Resent at once the first time; None (back off, then resend) after that."""
        self.stats["moved"] += 1
        call.moved += 1
        parts = error.split(" ")
        target = parts[2] if len(parts) == 3 and ":" in parts[2] else ""
        try:
            await self._refresh(call.deadline)
        except exc.MemdbError:
            pass                                        # the redirect alone may do
        call.redirect = ""
        _, node = self._pick_node(call)
        if target and (node is None or node.address != target):
            call.redirect = target
        return self._submit(call) if call.moved == 1 else None

    async def _backoff(self, call: _Call, delay_s: float) -> bool:
        """Sleep a little (with jitter) before a retry; False if the deadline does not leave room for one."""
        delay_s *= 0.5 + self._rng.random()
        if time.monotonic() + delay_s >= call.deadline:
            return False
        await asyncio.sleep(delay_s)
        return True

    def _timeout(self, call: _Call, last_error: Exception | None) -> Exception:
        what = call.args[0].decode(errors="replace")
        if isinstance(last_error, (exc.ReadOnlyError, exc.ClusterDownError)):
            return last_error
        detail = f" (last failure: {last_error})" if last_error else ""
        ambiguous = "; the write may or may not have been applied" if call.is_write else ""
        return exc.TimeoutError(f"{what} timed out{ambiguous}{detail}")

    # -- whole-keyspace commands -----------------------------------------------------------------------------------
    async def _primaries(self, timeout: float | None) -> list[tuple[_Shard, int]]:
        if self._topology is None:
            await self._refresh(self._deadline(timeout), force=True)
        # one representative slot per shard routes a keyless command to that shard's primary
        return [(s, s.ranges[0][0]) for s in self._topology.shards.values() if s.ranges]

    async def _on_every_shard(self, args: list, timeout: float | None = None) -> list[Any]:
        results = []
        for shard, slot in await self._primaries(timeout):
            call = await self._prepare(args, None, timeout, None)
            call.slot, call.force_primary = slot, True
            results.append(await self._finish(call, self._submit(call)))
        return results

    async def script_load(self, script: str | bytes, timeout: float | None = None) -> Any:
        """SCRIPT LOAD on every shard (a script's keys may live on any), so EVALSHA works wherever it is routed;
        the script's SHA1."""
        return (await self._on_every_shard(["SCRIPT", "LOAD", script], timeout))[0]

    async def keys(self, pattern: str | bytes = "*", timeout: float | None = None) -> list:
        return [k for part in await self._on_every_shard(["KEYS", pattern], timeout) for k in part]

    async def dbsize(self, timeout: float | None = None) -> int:
        return sum(await self._on_every_shard(["DBSIZE"], timeout))

    async def flushdb(self, timeout: float | None = None) -> bool:
        return all(await self._on_every_shard(["FLUSHDB"], timeout))

    async def flushall(self, timeout: float | None = None) -> bool:
        return all(await self._on_every_shard(["FLUSHALL"], timeout))

    async def scan_iter(self, match: str | bytes | None = None, count: int | None = None,
                        _type: str | None = None):
        """Every key (matching `match`), shard by shard, with SCAN cursors."""
        for _, slot in await self._primaries(None):
            cursor = b"0"
            while True:
                args: list[Any] = ["SCAN", cursor]
                if match is not None:
                    args += ["MATCH", match]
                if count is not None:
                    args += ["COUNT", count]
                if _type is not None:
                    args += ["TYPE", _type]
                call = await self._prepare(args, None, None, None)
                call.slot, call.force_primary = slot, True
                cursor, keys = await self._finish(call, self._submit(call))
                for key in keys:
                    yield key
                if cursor in (b"0", "0", 0):
                    break

    # -- pipelines and transactions --------------------------------------------------------------------------------
    def pipeline(self, transaction: bool = False) -> "AsyncPipeline":
        """Commands queued locally and sent together when `await pipe.execute()` runs (one stream message each,
        no round trip between them); results in order. transaction=True wraps them in MULTI/EXEC."""
        return AsyncPipeline(self, transaction)

    async def transaction(self, func: Callable, *watches: Any, value_from_callable: bool = False,
                          timeout: float | None = None) -> Any:
        """redis-py's transaction(): WATCH `watches`, call func(pipe) (reads on pipe run at once until
        pipe.multi(); the commands after it are queued), then MULTI/EXEC; on a WatchError start again."""
        while True:
            pipe = AsyncPipeline(self, transaction=True)
            try:
                await pipe.watch(*watches, timeout=timeout)
                result = func(pipe)
                if asyncio.iscoroutine(result):
                    result = await result
                exec_result = await pipe.execute()
                return result if value_from_callable else exec_result
            except exc.WatchError:
                continue
            finally:
                await pipe.reset()

    async def _check_transactions(self, deadline: float) -> None:
        """MULTI/EXEC over gRPC needs the server to keep MULTI state for the whole Pipeline stream: probe once."""
        if self._transactions_supported:
            return
        if self._transactions_supported is False:
            raise exc.NotSupported(self._transactions_reason)
        session = _Session(self, None)
        try:
            await session.open(deadline)
            multi = await session.roundtrip(["MULTI"], deadline)
            if multi.WhichOneof("kind") == "error":
                reason = f"the server refuses MULTI over gRPC: {multi.error}"
            else:
                exec_reply = await session.roundtrip(["EXEC"], deadline)
                if exec_reply.WhichOneof("kind") == "error":
                    reason = ("the server keeps no MULTI/WATCH state across the requests of a gRPC Pipeline stream "
                              f"(EXEC answered {exec_reply.error!r}), so transactions cannot be sent over gRPC")
                else:
                    self._transactions_supported = True
                    return
        finally:
            await session.close()
        self._transactions_supported = False
        self._transactions_reason = reason
        raise exc.NotSupported(reason)


class _Session:
    """A dedicated Pipeline stream (one server-side session) to one primary, for WATCH/MULTI/EXEC."""

    def __init__(self, client: AsyncClient, slot: int | None):
        self.client = client
        self.slot = slot
        self._call = None
        self.shard: _Shard | None = None

    async def open(self, deadline: float) -> None:
        client = self.client
        if client._topology is None:
            await client._refresh(deadline, force=True)
        probe = _Call([b"PING"], None, True, True, False, self.slot, 0, deadline)
        shard, node = client._pick_node(probe)
        if node is None:
            raise exc.ClusterDownError(f"CLUSTERDOWN no primary for slot {self.slot}")
        self.shard = shard
        self._call = client._connection(node.address).stub.Pipeline()

    async def roundtrip(self, args: list, deadline: float, client_seq: int = 0) -> pb.Value:
        request = pb.Request(args=encode_args(args), db=self.client.db)
        if client_seq:
            request.client_id, request.client_seq = self.client.client_id, client_seq
        try:
            await asyncio.wait_for(self._call.write(request), max(0.0, deadline - time.monotonic()))
            response = await asyncio.wait_for(self._call.read(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise exc.TimeoutError(f"{args[0]} timed out") from None
        except grpc.aio.AioRpcError as e:
            raise exc.ConnectionError(f"transaction stream failed: {e.code().name} {e.details()}") from None
        if response is grpc.aio.EOF:
            raise exc.ConnectionError("transaction stream closed by the server")
        if self.shard is not None and response.index > self.client._last_write_index.get(self.shard.name, 0):
            self.client._last_write_index[self.shard.name] = response.index
        return response.reply

    async def close(self) -> None:
        if self._call is not None:
            self._call.cancel()
            self._call = None


class AsyncPipeline(Commands):
    """Queued commands, sent back to back by execute(). In a transaction (transaction=True or via
    AsyncClient.transaction), commands run immediately after watch() until multi() is called."""

    def __init__(self, client: AsyncClient, transaction: bool = False):
        self.client = client
        self.transaction = transaction
        self._queue: list[tuple[list, Parse | None, dict]] = []
        self._session: _Session | None = None
        self._immediate = False
        self._watched_slot: int | None = None

    async def __aenter__(self) -> "AsyncPipeline":
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.reset()

    def __len__(self) -> int:
        return len(self._queue)

    def _command(self, args: list, parse: Parse | None = None, **options: Any):
        if self._immediate:
            return self._immediate_command(args, parse, options.get("timeout"))
        self._queue.append((args, parse, options))
        return self

    def execute_command(self, *args: Any, **options: Any):
        return self._command(list(args), None, **options)

    async def reset(self) -> None:
        self._queue.clear()
        self._immediate = False
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- plain pipelines -------------------------------------------------------------------------------------------
    async def execute(self, raise_on_error: bool = True, timeout: float | None = None) -> list:
        if self.transaction:
            return await self._execute_transaction(raise_on_error, timeout)
        queue, self._queue = self._queue, []
        client = self.client
        if client._topology is None:      # routed in order below, so the topology must be known first
            await client._refresh(client._deadline(timeout))
        outcomes: list[Any] = [None] * len(queue)

        async def finish(i: int, call: _Call, future) -> None:
            try:
                outcomes[i] = await client._finish(call, future)
            except exc.MemdbError as e:
                outcomes[i] = e

        async with asyncio.TaskGroup() as tasks:     # owns every reply's retry loop
            for i, (args, parse, options) in enumerate(queue):
                try:
                    call = await client._prepare(args, parse, options.get("timeout", timeout),
                                                 options.get("block_s"), raise_on_error=False)
                except exc.MemdbError as e:
                    outcomes[i] = e
                    continue
                call.in_pipeline = True
                tasks.create_task(finish(i, call, client._submit(call)))
        if raise_on_error:
            first = next((o for o in outcomes if isinstance(o, exc.MemdbError)), None)
            if first is not None:
                raise first
        return outcomes

    # -- transactions ----------------------------------------------------------------------------------------------
    async def _open_session(self, slot: int | None, timeout: float | None) -> _Session:
        deadline = self.client._deadline(timeout)
        await self.client._check_transactions(deadline)
        if self._session is None:
            self._session = _Session(self.client, slot)
            await self._session.open(deadline)
        return self._session

    async def watch(self, *names: Any, timeout: float | None = None) -> None:
        if not names:
            self._immediate = True
            return
        slots = {key_slot(encode_args([n])[0]) for n in names}
        if len(slots) > 1:
            raise exc.CrossSlotError("CROSSSLOT watched keys hash to different slots")
        self._watched_slot = slots.pop()
        session = await self._open_session(self._watched_slot, timeout)
        reply = await session.roundtrip(["WATCH", *names], self.client._deadline(timeout))
        from_value(reply, self.client.decode_responses)
        self._immediate = True

    def multi(self) -> None:
        """End the immediate mode of a watched pipeline: the commands after this are queued for EXEC."""
        self._immediate = False

    async def _immediate_command(self, args: list, parse: Parse | None, timeout: float | None) -> Any:
        session = await self._open_session(self._watched_slot, timeout)
        reply = await session.roundtrip(args, self.client._deadline(timeout))
        value = from_value(reply, self.client.decode_responses)
        return parse_reply(parse, value)

    async def _execute_transaction(self, raise_on_error: bool, timeout: float | None) -> list:
        queue, self._queue = self._queue, []
        wire = [encode_args(args) for args, _, _ in queue]
        slots = set()
        for args in wire:
            try:
                spec = lookup(args)
                slots |= {key_slot(args[i]) for i in spec.key_positions(args) if i < len(args)}
            except CommandError:
                pass
        if self._watched_slot is not None:
            slots.add(self._watched_slot)
        if len(slots) > 1:
            raise exc.CrossSlotError("CROSSSLOT the keys of a transaction must all hash to one slot")
        deadline = self.client._deadline(timeout)
        session = await self._open_session(slots.pop() if slots else None, timeout)
        multi = await session.roundtrip(["MULTI"], deadline)
        from_value(multi, False)
        for args in wire:
            queued = await session.roundtrip(args, deadline)
            if queued.WhichOneof("kind") == "error":
                pass                                    # EXEC will answer EXECABORT
        reply = await session.roundtrip(["EXEC"], deadline)
        await self.reset()
        if reply.WhichOneof("kind") == "null":
            raise exc.WatchError("a watched key changed; the transaction was not applied")
        values = from_value(reply, self.client.decode_responses, raise_errors=False)
        if isinstance(values, exc.ResponseError):
            raise values
        results = []
        for (args, parse, _), value in zip(queue, values):
            if isinstance(value, exc.ResponseError):
                if raise_on_error:
                    raise value
                results.append(value)
            else:
                results.append(parse_reply(parse, value))
        return results
