"""The data node: role, write path, apply loop, leases and claims (DESIGN.md "The write path", "Replicas",
"Leadership, leases and failover").

Theory of operation
-------------------
The keyspace is a deterministic function of the shard's log. Every node, primary or replica, builds it the same
way: the apply loop tails the committed log from the txlog and applies each entry in order. Nothing else mutates
the keyspace.

Writes (primary only): `execute` checks the command against the table, stamps it with this node's clock and a
random seed, and queues it on the log client, which group-commits everything queued while earlier batches are in
flight. The client's reply is computed when the entry comes back through the apply loop, i.e. after a majority
of zones has it on disk; the entry carries (origin_id, origin_seq) so the primary knows whose reply it is.

Reads are answered from memory at once and never mutate (expired keys are hidden, not deleted; the primary's
active expiry deletes them through the log). The primary answers only while its lease holds.

Epochs: a node becomes primary by appending a LEADERSHIP record (epoch = current + 1) conditioned on the log's
last index being the last index it applied: only a fully caught-up node can win. The txlog fences writers of
older epochs, and appliers skip data records of epochs older than the last leadership they applied.
Lease: the primary's lease runs until (send time of its latest acknowledged append) + lease_ms; an idle primary
appends LeaseRenew every renew_ms. A replica claims only after lease_ms + margin_ms without any entry of the
current epoch, so the old primary's lease has ended before a new primary can exist.
Snapshots (memdb/snapshot.py): a replica forks a child that writes `replicated_state()` every snapshot_every applied
writes, then trims the log (the primary does, only when no replica has for twice as long); a node starts from the
newest snapshot, and reloads one if the tail says it fell below the trim.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import enum
import functools
import gc
import itertools
import json
import logging
import os
import random
import ssl
import time
from typing import Any, Callable

from memdb.cluster import NodeInfo, Topology, key_slot, node_id
from memdb.commands.dispatch import execute as dispatch_execute
from memdb.commands.dispatch import execute_spec, lookup
from memdb.commands.spec import NULL_ARRAY, OK, QUEUED, Blocked, CommandError, Context, Flag, LazyRandom, Verbatim
from memdb.dedup import DedupTable, TooOld
from memdb.generated import entries_pb2 as epb
from memdb.keyspace import Keyspace
from memdb.runtime import retrieve_exception
from memdb.snapshot import SNAPSHOT_EVERY_ENTRIES, TRIM_MARGIN_RECORDS, SnapshotCorrupt, SnapshotStore
from memdb import notify
from txlog.client import (MAX_ITEM_BYTES, AppendError, ConditionFailed, LogClient, LogTrimmed, LogUnavailable,
                          StaleEpoch)
from txlog.generated import txlog_pb2 as tpb
from txlog.tls import TxlogTLS

log = logging.getLogger("memdb.node")

READONLY_ERROR = "READONLY You can't write against a read only replica."
NO_LEASE_ERROR = "TRYAGAIN this primary's lease has lapsed; retry (it may have been deposed)"
LOG_UNAVAILABLE_ERROR = "TRYAGAIN the transaction log did not commit the write in time (it may still apply)"
DEPOSED_ERROR = "READONLY this node is no longer the primary (a new primary was elected); the write was not applied"
WRITE_TOO_LARGE_ERROR = "ERR the write is {size} bytes; the transaction log takes at most {limit} bytes per write"
ACTIVE_EXPIRE_KEYS_PER_CYCLE = 64


class Role(enum.Enum):
    PRIMARY = "primary"
    REPLICA = "replica"


DEFAULT_LOG_INFLIGHT = 1
# The primary snapshots only when no other node has for this many snapshot intervals (a shard with no live
# replica): its fork and the copy-on-write after it would slow every write, as Redis's BGSAVE does a primary's.
PRIMARY_SNAPSHOT_AFTER = 2
# command spec name -> (the command's name: "client|list" -> "client", its NODE_COMMANDS handler or None, whether
# it goes through the log); filled on first use (_route), so execute() does one dict lookup per command for these
_ROUTES: dict[str, tuple[str, Callable | None, bool]] = {}


@dataclasses.dataclass(frozen=True, slots=True)
class NodeConfig:
    node_id: str
    txlog: tuple[str, ...]
    shard: str = "shard0"
    zone: str = ""
    resp_address: str = ""
    grpc_address: str = ""              # host:port of the gRPC client API ("" = none)
    grpc_tls_cert: str = ""             # PEM paths: serve gRPC over TLS with this certificate chain and key ...
    grpc_tls_key: str = ""
    grpc_tls_ca: str = ""               # ... and require client certificates signed by this CA (mutual TLS)
    txlog_tls: TxlogTLS | None = None   # mutual TLS to the txlog nodes (txlog/tls.py)
    prefer_primary: bool = False        # claim at once on a fresh log; no backoff when claiming
    failover: bool = True               # claim when the primary's lease has lapsed
    lease_ms: int = 1000
    renew_ms: int = 250
    margin_ms: int = 250
    active_expire_ms: int = 100
    # Append batches in flight to the log. One is fastest here: everything queued meanwhile goes in the next
    # batch, so batches are as big as the load makes them and the log's per-batch cost (gRPC messages, Raft
    # entries) is paid least often; measured in bench/README.md ("Tuning").
    log_inflight_batches: int = DEFAULT_LOG_INFLIGHT
    topology_path: str = ""             # shards, slots, nodes (written by `memdb cluster up`); "" = one shard
    snapshot_dir: str = ""              # the shard's snapshot store, shared by its data nodes ("" = none, no trims)
    snapshot_every: int = SNAPSHOT_EVERY_ENTRIES   # 0 = write none (still start from the newest in the store)


@dataclasses.dataclass(slots=True)
class _Parked:
    """A client waiting in a blocking command (BLPOP...) for one of `keys` to change."""
    args: list[bytes]
    db: int
    keys: tuple[bytes, ...]
    deadline: float | None            # monotonic
    timeout_reply: Any
    future: asyncio.Future
    is_write: bool
    session: Any = None
    client: tuple[str, int] | None = None   # exactly-once identity of the request, kept across re-runs


@dataclasses.dataclass(slots=True)
class _Handover:
    """A planned failover in progress on the primary: it serves nothing and holds new commands until the new
    primary's leadership is applied (then they get a READONLY redirect) or the deadline passes (then it claims
    the shard back and runs them)."""
    deadline: float
    held: list[tuple[Any, list[bytes], Any, asyncio.Future]] = dataclasses.field(default_factory=list)


class DataNode:
    def __init__(self, config: NodeConfig):
        self.config = config
        self.keyspace = Keyspace()
        self.log = LogClient(list(config.txlog), config.shard, writer_id=f"{config.node_id}-{os.urandom(6).hex()}",
                             max_inflight_batches=config.log_inflight_batches, tls=config.txlog_tls)
        self.log.on_leader = self._tail_from_leader
        self.origin_id = self.log.writer_id      # this incarnation: a restarted node is a new origin
        self.role = Role.REPLICA
        self.epoch = 0
        self.primary_id = ""
        self.primary_address = ""
        self.applied_index = 0
        self.applied_entries = 0
        self._rng = random.Random()              # seeds and back-off: node decisions, never inside a handler
        self._origin_seq = itertools.count(1)
        # origin_seq -> (client future, deadline of the blocking command it re-runs, if any, its session)
        self._waiting: dict[int, tuple[asyncio.Future, float | None, Any]] = {}
        self._appending: asyncio.Future | None = None      # the log client's future for the batch being gathered
        self._appending_seqs: list[int] = []               # ... and our writes in it
        self._loop: asyncio.AbstractEventLoop | None = None   # once known (see LogClient._loop: a write's futures)
        self.dedup = DedupTable()                  # exactly-once client retries: replicated state
        # Set by the server: delivers a published message to this node's subscribers, returns how many got it.
        self.message_sink: Callable[[bytes, bytes, bool], int] | None = None
        self._parked: list[_Parked] = []
        # Commands that came while the lease was unconfirmed: (session, args, client, future, give-up time).
        self._lease_held: list[tuple[Any, list[bytes], Any, asyncio.Future, float]] = []
        self._lease_until = 0.0                  # monotonic
        self._last_append_at = 0.0
        self._last_epoch_activity = time.monotonic()
        self._claim_sent_at: float | None = None
        self._claim_now = asyncio.Event()          # a Handover named us: claim without waiting for the lease
        self._handover: _Handover | None = None
        self._last_now_ms = 0
        self.log_commit_index = 0                  # the log's commit index, polled (INFO lag)
        self._tail_source: str | None = config.txlog[0] if config.txlog else None   # own zone's txlog first
        self._retail = asyncio.Event()
        self._last_applied_now_ms = 0              # clock stamp of the newest applied write entry
        self._applied_changed = asyncio.Event()
        self._started_at = time.monotonic()
        if config.topology_path:
            self.topology = Topology.load(config.topology_path)
        else:
            host, _, port = config.resp_address.rpartition(":")
            self.topology = Topology.even([config.shard], [NodeInfo(config.node_id, config.shard, config.zone,
                                                                    host or "127.0.0.1", int(port or 0))])
        # Other shards' primaries are published on the `cluster` log (only needed with several shards).
        self.cluster_log = (LogClient(list(config.txlog), "cluster", writer_id=f"{self.origin_id}-cluster",
                                      tls=config.txlog_tls)
                            if self.topology.multi_shard else None)
        self._published_epoch = 0
        self.stats = {"writes_submitted": 0, "writes_failed": 0, "claims_won": 0, "claims_lost": 0,
                      "fenced_entries_skipped": 0, "snapshots_written": 0, "snapshot_failures": 0,
                      "snapshots_loaded": 0, "log_trimmed_below": 0}
        # Snapshots (memdb/snapshot.py): written by replicas (or a lone primary), read at start and when the tail
        # falls below a trim.
        self.snapshots = SnapshotStore(config.snapshot_dir, config.shard) if config.snapshot_dir else None
        self.snapshot_index = 0                  # the newest snapshot this node wrote or loaded
        self._snapshot_base = (0, 0)             # (applied_entries, snapshot index) the count to the next starts at
        self._snapshot_child: int | None = None  # pid of the child writing one
        self._snapshot_saved_at = 0              # unix time of the last snapshot written or loaded here
        self._snapshot_last_ok = True
        self._background: set[asyncio.Task] = set()

    # -- the executor interface used by memdb.server -----------------------------------------------------------
    def execute(self, session, args: list[bytes], client: tuple[str, int] | None = None):
        """Run one command: a reply now (reads), or a future resolved after commit + apply (writes).
        `client` = (client_id, client_seq) makes a write exactly-once across retries (gRPC clients)."""
        state = getattr(session, "node_state", None)
        in_multi = type(state) is _SessionState and state.multi is not None
        try:
            spec = lookup(args)
        except CommandError:
            if in_multi:
                state.multi_dirty = True      # EXEC will answer EXECABORT, as Redis does
            raise
        route = _ROUTES.get(spec.name)
        if route is None:
            route = _route(spec)
        name, node_command, logged = route
        if in_multi and name not in _NOT_QUEUED:
            return self._queue(session, state, spec, args)
        if node_command is not None:
            return node_command(self, session, args)
        if self._handover is not None:
            future = asyncio.get_running_loop().create_future()
            self._handover.held.append((session, args, client, future))
            return future
        if self.role is Role.PRIMARY and time.monotonic() >= self._lease_until:     # not _lease_valid(): hot path
            # Not known to be deposed, only unconfirmed (a txlog leader change, a slow log): hold the command
            # until a commit renews the lease, so the client sees latency rather than an error; after lease_ms
            # it gets TRYAGAIN (see _expire_lease_held), as it does at once if we learn we were deposed.
            future = asyncio.get_running_loop().create_future()
            self._lease_held.append((session, args, client, future,
                                     time.monotonic() + self.config.lease_ms / 1000))
            return future
        if self.topology.multi_shard:
            self._route(session, spec, args)
        db_index = session.db
        if logged:
            # WRITE, and MAY_REPLICATE (EVAL, FCALL...: they may write): through the log, never applied locally.
            if self.role is not Role.PRIMARY:
                raise CommandError(READONLY_ERROR)
            return self._submit_command(args, db_index, client, session)
        keyspace = self.keyspace
        ctx = Context(keyspace, keyspace.dbs[db_index], self._now_ms(), self._rng, True, getattr(session, "resp", 2))
        handler = spec.handler
        if handler is not None and keyspace.access is None:
            reply = handler(ctx, args)          # execute_spec's common case, one call fewer on the read path
        else:
            reply = execute_spec(ctx, spec, args)
        if type(reply) is Blocked:
            future = asyncio.get_running_loop().create_future()
            self._park(reply.rerun_args or args, db_index, reply, future, is_write=False, session=session)
            return future
        return reply

    def session_closed(self, session) -> None:
        """The client went away: forget its blocked commands (a parked pop must not run for nobody)."""
        for p in self._parked:
            if p.session is session and not p.future.done():
                p.future.cancel()

    def info_sections(self) -> dict[str, list[tuple[str, Any]]]:
        replication = [("role", "master" if self.role is Role.PRIMARY else "slave")]
        if self.role is Role.REPLICA:
            host, _, port = self.primary_address.rpartition(":")
            replication += [("master_host", host), ("master_port", port),
                            ("memdb_lag_entries", max(0, self.log_commit_index - self.applied_index)),
                            ("master_link_status", "up" if self.primary_id else "down"),
                            ("master_last_io_seconds_ago", int(time.monotonic() - self._last_epoch_activity)),
                            ("slave_repl_offset", self.applied_index), ("slave_read_only", 1)]
        else:
            # Replicas follow the log, not this node, so the primary has no replica links to count.
            replication += [("master_repl_offset", self.applied_index)]
        replication += [("memdb_primary_id", self.primary_id), ("memdb_epoch", self.epoch),
                        ("memdb_lease_valid", int(self.role is Role.PRIMARY and self._lease_valid()
                                                  and self._handover is None))]
        commit = max(self.log_commit_index, self.applied_index)
        lag_entries = commit - self.applied_index
        lag_ms = max(0, int(time.time() * 1000) - self._last_applied_now_ms) if lag_entries else 0
        txlog = [("shard", self.config.shard), ("epoch", self.epoch), ("committed_index", commit),
                 ("applied_index", self.applied_index), ("lag_entries", lag_entries), ("lag_ms", lag_ms),
                 ("applied_entries", self.applied_entries), ("snapshot_index", self.snapshot_index),
                 ("snapshot_in_progress", int(self._snapshot_child is not None)),
                 ("lease_valid", int(self._lease_valid())), ("writer_id", self.origin_id),
                 *self.stats.items()]
        keyspace = [(f"db{db.index}", f"keys={db.size()},expires={len(db.expires)},avg_ttl=0")
                    for db in self.keyspace.dbs if db.size()]
        # Redis's persistence fields, for the snapshots (durability itself is the log: no AOF).
        persistence = [("loading", 0), ("async_loading", 0),
                       ("rdb_changes_since_last_save", self.applied_entries - self._snapshot_base[0]),
                       ("rdb_bgsave_in_progress", int(self._snapshot_child is not None)),
                       ("rdb_last_save_time", self._snapshot_saved_at),
                       ("rdb_last_bgsave_status", "ok" if self._snapshot_last_ok else "err"),
                       ("rdb_saves", self.stats["snapshots_written"]),
                       ("aof_enabled", 0), ("aof_rewrite_in_progress", 0)]
        return {"replication": replication, "txlog": txlog, "keyspace": keyspace, "persistence": persistence,
                "cluster": [("cluster_enabled", 1)]}

    # -- write path --------------------------------------------------------------------------------------------
    def _check_primary(self) -> None:
        if self.role is not Role.PRIMARY:
            raise CommandError(READONLY_ERROR)
        if not self._lease_valid():
            raise CommandError(NO_LEASE_ERROR)

    def _now_ms(self) -> int:
        # Never behind anything already applied, so time in the log only moves forward.
        now = int(time.time() * 1000)
        if now > self._last_now_ms:
            self._last_now_ms = now
            return now
        return self._last_now_ms

    def _lease_valid(self) -> bool:
        return time.monotonic() < self._lease_until

    def _submit(self, entry: epb.Entry, future: asyncio.Future | None = None,
                block_deadline: float | None = None, session: Any = None) -> asyncio.Future:
        """Stamp and queue a write entry; the future resolves with its reply once it is committed and applied."""
        seq = next(self._origin_seq)
        entry.now_ms = self._now_ms()
        entry.seed = self._rng.getrandbits(63)
        entry.origin_id = self.origin_id
        entry.origin_seq = seq
        return self._send(entry, seq, future, block_deadline, session)

    def _submit_own(self, entry: epb.Entry) -> None:
        """_submit for a write the node makes for itself (a lease renewal, expired keys): no client waits for it, so
        its failure (the log refused it, a new primary fenced it) is retrieved, not logged as unhandled."""
        self._submit(entry).add_done_callback(retrieve_exception)

    def _submit_command(self, args: list[bytes], db_index: int, client: tuple[str, int] | None,
                        session: Any) -> asyncio.Future:
        """_submit for a client's command, the hot path: the stamps go in as constructor arguments, which costs
        half of setting them one by one."""
        seq = next(self._origin_seq)
        entry = epb.Entry(now_ms=self._now_ms(), seed=self._rng.getrandbits(63), origin_id=self.origin_id,
                          origin_seq=seq)
        command = entry.command
        command.args.extend(args)
        if db_index:
            command.db = db_index
        if client is not None:
            entry.client_id, entry.client_seq = client
        return self._send(entry, seq, None, None, session)

    def _send(self, entry: epb.Entry, seq: int, future: asyncio.Future | None, block_deadline: float | None,
              session: Any) -> asyncio.Future:
        item = entry.SerializeToString()
        if len(item) > MAX_ITEM_BYTES:
            # Refused here, at once: the log would refuse it too, after parsing it on its loop (~0.3 s for 32 MB).
            error = CommandError(WRITE_TOO_LARGE_ERROR.format(size=len(item), limit=MAX_ITEM_BYTES))
            if future is None:
                raise error
            future.set_exception(error)
            return future
        if future is None:
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            future = loop.create_future()
        self._waiting[seq] = (future, block_deadline, session)
        sent_at = time.monotonic()
        self._last_append_at = sent_at
        self.stats["writes_submitted"] += 1
        appended = self.log.append(item, self.epoch)
        if appended is not self._appending:
            # The log client shares one future among the items it will send together: one callback per batch.
            self._appending, self._appending_seqs = appended, [seq]
            appended.add_done_callback(functools.partial(self._on_appended, self._appending_seqs, sent_at))
        else:
            self._appending_seqs.append(seq)
        return future

    def _on_appended(self, seqs: list[int], sent_at: float, appended: asyncio.Future) -> None:
        error = appended.exception()
        if error is None:
            # Committed on a majority: the lease runs from when we sent the batch's first write, or from when the
            # log client first sent the latest batch it saw acknowledged, if later (queued behind large writes,
            # a batch can wait longer than the lease before it is sent at all).
            sent_at = max(sent_at, self.log.acked_sent_at)
            self._lease_until = max(self._lease_until, sent_at + self.config.lease_ms / 1000)
            if self._lease_held and self._lease_valid() and self.role is Role.PRIMARY:
                self._release_lease_held()
            return
        self.stats["writes_failed"] += len(seqs)
        message = self._append_error(error)
        for seq in seqs:
            future, _, _ = self._waiting.pop(seq, (None, None, None))
            if future is not None and not future.done():
                future.set_exception(CommandError(message))

    def _append_error(self, error: BaseException) -> str:
        if isinstance(error, StaleEpoch):
            self._step_down(f"the log is in epoch {error.current_epoch}")
            return DEPOSED_ERROR
        if isinstance(error, LogUnavailable):
            return LOG_UNAVAILABLE_ERROR
        return f"TRYAGAIN the transaction log refused the write: {error}"

    def _step_down(self, why: str) -> None:
        if self.role is Role.PRIMARY:
            log.warning("%s: stepping down to replica (%s)", self.config.node_id, why)
        self.role = Role.REPLICA
        self._lease_until = 0.0
        if self._handover is not None:
            for _, _, _, future in self._handover.held:
                if not future.done():
                    future.set_exception(CommandError(READONLY_ERROR))
            self._handover = None
        # Deposed: a held read must not be answered from this node's state now (a newer primary may have
        # acknowledged writes we have not applied yet), nor a held write be accepted.
        held, self._lease_held = self._lease_held, []
        for item in held:
            if not item[3].done():
                item[3].set_exception(CommandError(NO_LEASE_ERROR))

    # -- apply loop --------------------------------------------------------------------------------------------
    async def _apply_loop(self) -> None:
        """Apply the committed log, tailing from one txlog node; restart from another when the watchdog says
        the source is stuck (a partitioned follower never learns new commits, but never errors either)."""
        while True:
            self._retail.clear()
            tail = asyncio.ensure_future(self._apply_from(self._tail_source))
            retail = asyncio.ensure_future(self._retail.wait())
            try:
                await asyncio.wait([tail, retail], return_when=asyncio.FIRST_COMPLETED)
            finally:
                tail.cancel()
                retail.cancel()
            if tail.done() and not tail.cancelled() and tail.exception() is not None:
                if not isinstance(tail.exception(), LogTrimmed):
                    raise tail.exception()
                await self._catch_up_from_snapshot(str(tail.exception()))

    async def _apply_from(self, address: str | None) -> None:
        keyspace = self.keyspace
        async for tail_entries in self.log.tail_batches(self.applied_index + 1, address=address):
            for tail_entry in tail_entries:
                keyspace.current_index = tail_entry.index   # key versions (WATCH) are log indexes
                self._apply_record(tail_entry.record)
                self.applied_index = tail_entry.index
                if keyspace.modified:
                    if self._parked:
                        self._wake_parked(keyspace.drain_modified())
                    else:
                        keyspace.modified.clear()
            # Nothing runs between the entries of one message, so waiters need waking once per message.
            self._applied_changed.set()
            self._applied_changed = asyncio.Event()
            if self.snapshots is not None and self.config.snapshot_every and \
                    self.applied_entries - self._snapshot_base[0] >= self.config.snapshot_every * (
                        PRIMARY_SNAPSHOT_AFTER if self.role is Role.PRIMARY else 1):
                self._maybe_snapshot()

    def _apply_record(self, record: tpb.LogRecord) -> None:
        if record.kind == tpb.LEADERSHIP:
            entry = epb.Entry.FromString(record.items[0])
            self._apply_leadership(entry, record.epoch)
        elif record.kind == tpb.DATA:
            if record.epoch < self.epoch:
                # Fenced: written by a primary that has since been deposed (DESIGN.md invariant 3).
                self.stats["fenced_entries_skipped"] += len(record.items)
                for item in record.items:
                    self._answer(epb.Entry.FromString(item), CommandError(DEPOSED_ERROR))
                return
            self._last_epoch_activity = time.monotonic()
            for item in record.items:
                self._apply_entry(epb.Entry.FromString(item))

    def _apply_entry(self, entry: epb.Entry) -> None:
        self.applied_entries += 1
        now_ms = self._last_applied_now_ms = entry.now_ms
        if now_ms > self._last_now_ms:
            self._last_now_ms = now_ms
        mine = entry.origin_id == self.origin_id
        body = entry.WhichOneof("body")
        reply: Any = None
        if body == "command":
            cmd = entry.command
            ctx = Context(self.keyspace, self.keyspace.dbs[cmd.db], now_ms, LazyRandom(entry.seed))
            if mine:
                # The reply's shape (never the state) may depend on the asking client's protocol version.
                waiting = self._waiting.get(entry.origin_seq)
                if waiting is not None and waiting[2] is not None:
                    ctx.resp = getattr(waiting[2], "resp", 2)
            reply = self._apply_command(ctx, entry)
        elif body == "transaction":
            reply = self._apply_transaction(entry)
        elif body == "publish":
            p = entry.publish
            reply = self.message_sink(p.channel, p.message, p.sharded) if self.message_sink else 0
        elif body == "handover":
            target = entry.handover.to
            if self.role is Role.REPLICA and target in ("", self.config.resp_address):
                self._claim_now.set()
        elif body == "expire":
            db = self.keyspace.dbs[entry.expire.db]
            for key in entry.expire.keys:
                if db.is_expired(key, entry.now_ms):
                    db.delete(key)
                    self.keyspace.notify(db.index, notify.EXPIRED, "expired", key)
        elif body == "config":
            reply = self._apply_config(entry.config)
        if self.keyspace.events:
            self._publish_events()
        if mine:
            self._answer(entry, reply)

    def _apply_command(self, ctx: Context, entry: epb.Entry) -> Any:
        """Apply a command entry; a client retry of an already applied request gets the first reply instead."""
        if entry.client_id:
            try:
                done, first_reply = self.dedup.lookup(entry.client_id, entry.client_seq)
            except TooOld as exc:
                return CommandError(str(exc))
            if done:
                return first_reply
        try:
            reply = dispatch_execute(ctx, entry.command.args[:])     # a list; slicing is 3x cheaper than list()
        except CommandError as exc:
            reply = exc
        if entry.client_id and not isinstance(reply, Blocked):
            self.dedup.record(entry.client_id, entry.client_seq, reply)
        return reply

    def _answer(self, entry: epb.Entry, reply: Any) -> None:
        if entry.origin_id != self.origin_id:
            return
        future, block_deadline, session = self._waiting.pop(entry.origin_seq, (None, None, None))
        if future is None or future.done():
            return
        if isinstance(reply, Blocked):
            client = (entry.client_id, entry.client_seq) if entry.client_id else None
            self._park(reply.rerun_args or list(entry.command.args), entry.command.db, reply, future, is_write=True,
                       deadline=block_deadline, session=session, client=client)
        elif isinstance(reply, CommandError):
            future.set_exception(reply)
        else:
            future.set_result(reply)

    def _apply_leadership(self, entry: epb.Entry, epoch: int) -> None:
        assert epoch == self.epoch + 1 or self.epoch == 0, f"leadership epoch jumped {self.epoch} -> {epoch}"
        leadership = entry.leadership
        self.epoch = epoch
        self.primary_id = leadership.node
        self.primary_address = leadership.resp_address
        self.topology.note_primary(self.config.shard, epoch, leadership.node)
        self._last_epoch_activity = time.monotonic()
        if entry.origin_id == self.origin_id and self._claim_sent_at is not None:
            self.role = Role.PRIMARY
            self._lease_until = self._claim_sent_at + self.config.lease_ms / 1000
            self.stats["claims_won"] += 1
            log.warning("%s: primary of %s in epoch %d", self.config.node_id, self.config.shard, epoch)
            self._release_held()
            if self.log.serving_address is not None:
                self._tail_from_leader(self.log.serving_address)
        else:
            # Our entries after this point carry an older epoch: appliers skip them and _answer fails them.
            self._step_down(f"{leadership.node} claimed epoch {epoch}")

    def _tail_from_leader(self, address: str) -> None:
        """A primary waits for its own writes to come back on the tail before it answers: from the txlog leader
        they come as soon as they commit (a follower learns of a commit one message later). Called by the log
        client whenever its appends are answered by another node."""
        if self.role is Role.PRIMARY and address != self._tail_source:
            self._tail_source = address
            self._retail.set()

    async def wait_applied(self, index: int, timeout_s: float = 5.0) -> None:
        """Read-your-writes on a replica: wait until `index` is applied here."""
        deadline = time.monotonic() + timeout_s
        while self.applied_index < index:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CommandError(f"TRYAGAIN replica has not applied index {index} yet "
                                   f"(applied {self.applied_index})")
            try:
                await asyncio.wait_for(self._applied_changed.wait(), remaining)
            except TimeoutError:
                pass

    # -- snapshots (memdb/snapshot.py) --------------------------------------------------------------------------
    def replicated_state(self) -> dict[str, Any]:
        """What applying the log up to applied_index has built: a snapshot's body."""
        return {"applied_index": self.applied_index, "applied_entries": self.applied_entries,
                "keyspace": self.keyspace, "dedup": self.dedup, "epoch": self.epoch,
                "primary_id": self.primary_id, "primary_address": self.primary_address,
                "last_now_ms": self._last_now_ms, "last_applied_now_ms": self._last_applied_now_ms}

    def _restore(self, state: dict[str, Any]) -> None:
        self.keyspace.take_over(state["keyspace"])
        self.dedup = state["dedup"]
        self.epoch = state["epoch"]
        self.primary_id, self.primary_address = state["primary_id"], state["primary_address"]
        if self.primary_id:
            self.topology.note_primary(self.config.shard, self.epoch, self.primary_id)
        self.applied_index = self.snapshot_index = state["applied_index"]
        self.applied_entries = state["applied_entries"]
        self._last_now_ms = max(self._last_now_ms, state["last_now_ms"])
        self._last_applied_now_ms = state["last_applied_now_ms"]
        self._snapshot_base = (self.applied_entries, self.applied_index)
        self._last_epoch_activity = time.monotonic()
        self._snapshot_saved_at = int(time.time())
        self.stats["snapshots_loaded"] += 1

    def load_snapshot(self, newer_than: int = 0) -> bool:
        """Take the state of the newest readable snapshot past index `newer_than`; False if there is none."""
        for snapshot in self.snapshots.snapshots() if self.snapshots is not None else []:
            if snapshot.index <= newer_than:
                break
            started = time.monotonic()
            try:
                state = self.snapshots.read(snapshot)
            except (OSError, SnapshotCorrupt) as exc:
                log.error("%s: cannot use snapshot %s: %s", self.config.node_id, snapshot.path, exc)
                continue
            self._restore(state)
            log.warning("%s: loaded the snapshot at log index %d (%d keys) in %.2f s", self.config.node_id,
                        snapshot.index, sum(db.size() for db in self.keyspace.dbs), time.monotonic() - started)
            return True
        return False

    async def _catch_up_from_snapshot(self, why: str) -> None:
        """The log no longer holds the entries after applied_index (a trim passed us while we were behind)."""
        if self.role is Role.PRIMARY:
            self._step_down(f"the log was trimmed past what it applied ({why})")
        if not self.load_snapshot(newer_than=self.applied_index):
            log.error("%s: %s, and the snapshot store has nothing newer than index %d; retrying",
                      self.config.node_id, why, self.applied_index)
            await asyncio.sleep(1.0)
            return
        # Our own writes in the skipped part have applied, but their replies are gone: answer as for a write
        # whose outcome is unknown. Blocked clients look at the new state.
        waiting, self._waiting = self._waiting, {}
        for future, _, _ in waiting.values():
            if not future.done():
                future.set_exception(CommandError(LOG_UNAVAILABLE_ERROR))
        parked, self._parked = self._parked, []
        for p in parked:
            if not p.future.done():
                self._retry_parked(p)

    def _maybe_snapshot(self) -> None:
        """Fork a child that writes the state as of now, unless another node has just written one or is writing
        one. A replica is asked every snapshot_every applied writes, the primary only after PRIMARY_SNAPSHOT_AFTER
        times as many: by then a live replica has written one, so the primary writes one only for a shard without
        a replica, whose log would otherwise never be trimmed."""
        if self._snapshot_child is not None:
            return
        newest = self.snapshots.newest_index()
        lock = self.snapshots.try_lock() if newest <= self._snapshot_base[1] else None
        if lock is None:      # another replica wrote one since we started counting, or is writing one
            self._snapshot_base = (self.applied_entries, max(newest, self._snapshot_base[1]))
            return
        index = self.applied_index
        pid = os.fork()
        if pid == 0:
            self._write_snapshot_and_exit(index, lock)
        os.close(lock)        # the child holds the lock until it exits
        self._snapshot_child = pid
        self._snapshot_base = (self.applied_entries, index)
        task = asyncio.ensure_future(self._finish_snapshot(pid, index, time.monotonic()))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _write_snapshot_and_exit(self, index: int, lock: int) -> None:
        """In the forked child: only this thread exists, so touch nothing but the state and the store."""
        code = 1
        try:
            # Keep only stdio and the lock: a copy of the listening socket here would keep a restarted node off
            # its port until the snapshot is written.
            os.closerange(3, lock)
            os.closerange(lock + 1, os.sysconf("SC_OPEN_MAX"))
            gc.disable()   # a full collection would write to every object's header: a copy of every page
            self.snapshots.write(index, self.replicated_state())
            code = 0
        except BaseException:
            log.exception("%s: writing the snapshot at index %d failed", self.config.node_id, index)
        finally:
            os._exit(code)

    async def _finish_snapshot(self, pid: int, index: int, started: float) -> None:
        try:
            _, status = await asyncio.get_running_loop().run_in_executor(None, os.waitpid, pid, 0)
        finally:
            self._snapshot_child = None
        code = os.waitstatus_to_exitcode(status)
        self._snapshot_last_ok = code == 0
        if code != 0:
            self.stats["snapshot_failures"] += 1
            log.error("%s: the child writing the snapshot at index %d failed (%s)", self.config.node_id, index,
                      f"exit status {code}" if code > 0 else f"signal {-code}")
            return
        self.stats["snapshots_written"] += 1
        self.snapshot_index = index
        self._snapshot_saved_at = int(time.time())
        log.info("%s: wrote the snapshot at log index %d in %.2f s", self.config.node_id, index,
                 time.monotonic() - started)
        # Below the oldest snapshot kept, not this one: if this one is ever unreadable, a node can still start
        # from the one before and replay the log after it.
        kept = self.snapshots.snapshots()
        below = min(index, kept[-1].index if kept else index) + 1 - TRIM_MARGIN_RECORDS
        if below <= 1:
            return
        try:
            response = await self.log.trim(below)
        except AppendError as exc:
            log.warning("%s: trimming the log below %d failed: %s", self.config.node_id, below, exc)
            return
        if response.status == tpb.OK:
            self.stats["log_trimmed_below"] = response.first_index

    # -- blocking commands -------------------------------------------------------------------------------------
    def _park(self, args, db_index, blocked: Blocked, future, is_write: bool, deadline: float | None = None,
              session: Any = None, client: tuple[str, int] | None = None) -> None:
        if deadline is None and blocked.timeout_ms is not None:
            deadline = time.monotonic() + blocked.timeout_ms / 1000
        self._parked.append(_Parked(args, db_index, blocked.keys, deadline, blocked.timeout_reply, future, is_write,
                                    session, client))

    def _wake_parked(self, modified: list[tuple[int, bytes]]) -> None:
        if not self._parked:
            return
        touched = set(modified)
        still, woken = [], []
        for p in self._parked:
            if p.future.done():
                continue   # the client went away
            if any((p.db, k) in touched for k in p.keys):
                woken.append(p)
            else:
                still.append(p)
        self._parked = still
        for p in woken:     # in the order they blocked: Redis serves the longest-waiting client first
            self._retry_parked(p)

    def _retry_parked(self, p: _Parked) -> None:
        if p.is_write:
            if self.role is not Role.PRIMARY:
                p.future.set_exception(CommandError(DEPOSED_ERROR))
                return
            # Re-run as a new log entry (a pop must happen through the log), keeping the original deadline.
            # While it is in flight it cannot time out, so a value it pops is never lost.
            entry = epb.Entry(command=epb.Command(args=p.args, db=p.db))
            if p.client is not None:     # a client retry of the same request must find the pop's first reply
                entry.client_id, entry.client_seq = p.client
            self._submit(entry, p.future, p.deadline, p.session)
            return
        ctx = Context(self.keyspace, self.keyspace.dbs[p.db], self._now_ms(), self._rng, is_replica_read=True,
                      resp=getattr(p.session, "resp", 2))
        try:
            reply = dispatch_execute(ctx, p.args)
        except CommandError as exc:
            p.future.set_exception(exc)
            return
        if isinstance(reply, Blocked):
            self._parked.append(p)
        else:
            p.future.set_result(reply)

    def _expire_parked(self) -> None:
        now = time.monotonic()
        keep = []
        for p in self._parked:
            if p.future.done():
                continue
            if p.deadline is not None and now >= p.deadline:
                p.future.set_result(p.timeout_reply)
            else:
                keep.append(p)
        self._parked = keep

    # -- leadership --------------------------------------------------------------------------------------------
    async def _claim(self) -> bool:
        epoch = self.epoch + 1
        entry = epb.Entry(leadership=epb.Leadership(node=self.config.node_id, epoch=epoch,
                                                    lease_ms=self.config.lease_ms,
                                                    resp_address=self.config.resp_address,
                                                    grpc_address=self.config.grpc_address),
                          now_ms=self._now_ms(), origin_id=self.origin_id)
        self._claim_sent_at = time.monotonic()
        try:
            await self.log.append_batch([entry.SerializeToString()], epoch, kind=tpb.LEADERSHIP,
                                        expected_last_index=self.applied_index)
        except (ConditionFailed, StaleEpoch) as exc:
            self.stats["claims_lost"] += 1
            log.info("%s: claim of epoch %d lost: %s", self.config.node_id, epoch, exc)
            return False
        except AppendError as exc:
            log.info("%s: claim of epoch %d failed: %s", self.config.node_id, epoch, exc)
            return False
        # Won; the role changes when the apply loop reaches our LEADERSHIP record.
        return True

    async def _leadership_loop(self) -> None:
        cfg = self.config
        period = min(cfg.renew_ms, 50) / 1000
        while True:
            try:
                await asyncio.wait_for(self._claim_now.wait(), period)
            except TimeoutError:
                pass
            self._expire_parked()
            self._expire_lease_held()
            now = time.monotonic()
            if self._claim_now.is_set():
                self._claim_now.clear()
                if self.role is Role.REPLICA:
                    await self._claim()
                continue
            if self._handover is not None:
                if now >= self._handover.deadline:
                    # Nobody took over in time: take the shard back with a new epoch, then serve what we held.
                    log.warning("%s: failover timed out; reclaiming", self.config.node_id)
                    if await self._claim():
                        # Won: applying our LEADERSHIP ends the hand-over; don't claim again meanwhile.
                        self._handover.deadline = now + (cfg.lease_ms + cfg.margin_ms) / 1000
                    else:
                        self._step_down("failover timed out and the reclaim failed")
                continue
            if self.role is Role.PRIMARY:
                if now - self._last_append_at >= cfg.renew_ms / 1000:
                    self._submit_own(epb.Entry(lease_renew=epb.LeaseRenew()))
                if self.cluster_log is not None and self._published_epoch != self.epoch:
                    await self._publish_primary()
                continue
            if not cfg.failover and not (cfg.prefer_primary and self.epoch == 0):
                continue
            quiet = now - self._last_epoch_activity
            fresh_log = self.epoch == 0
            wait = 0.0 if (fresh_log and cfg.prefer_primary) else (cfg.lease_ms + cfg.margin_ms) / 1000
            if quiet < wait:
                continue
            if not cfg.prefer_primary:
                await asyncio.sleep(self._rng.uniform(0, 0.15))   # de-synchronise competing replicas
                if time.monotonic() - self._last_epoch_activity < wait:
                    continue
            await self._claim()
            await asyncio.sleep(0.05)

    async def _active_expire_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.active_expire_ms / 1000)
            if self.role is not Role.PRIMARY or not self._lease_valid() or self._handover is not None:
                continue
            now = self._now_ms()
            for db in self.keyspace.dbs:
                if not db.expires:
                    continue
                keys = db.expired_keys(now, ACTIVE_EXPIRE_KEYS_PER_CYCLE)
                if keys:
                    self._submit_own(epb.Entry(expire=epb.ExpireKeys(db=db.index, keys=keys)))

    # -- pub/sub -------------------------------------------------------------------------------------------------
    def publish_command(self, session, args: list[bytes]):
        """On the primary, PUBLISH is logged so that the shard's replicas deliver it to their subscribers too
        (the reply counts this node's receivers, as Redis counts its own). A replica delivers locally only, as a
        Redis replica does."""
        sharded = bytes(args[0]).lower() == b"spublish"
        if sharded and self.topology.multi_shard:
            self._route(session, lookup(args), args)
        if self.role is Role.PRIMARY and self._lease_valid():
            publish = epb.Publish(channel=args[1], message=args[2], sharded=sharded)
            return self._submit(epb.Entry(publish=publish), session=session)
        return self.message_sink(args[1], args[2], sharded) if self.message_sink else 0

    def _publish_events(self) -> None:
        """The keyspace notifications of the entry just applied, to this node's subscribers (memdb/notify.py)."""
        events, self.keyspace.events = self.keyspace.events, []
        if self.message_sink is not None:
            notify.publish(events, self.keyspace.notify_flags, self.message_sink)

    # -- replicated configuration: CONFIG SET notify-keyspace-events is a logged write ----------------------------
    REPLICATED_CONFIG = ("notify-keyspace-events",)

    def replicated_config(self, name: str) -> str:
        """CONFIG GET of a replicated parameter: the value applied from the log."""
        assert name in self.REPLICATED_CONFIG, name
        return notify.format_flags(self.keyspace.notify_flags)

    def set_replicated_config(self, params: dict[str, str]) -> asyncio.Future:
        """CONFIG SET of replicated parameters (already validated): every node applies them at this log position."""
        self._check_primary()
        config = epb.ConfigSet(params=[epb.ConfigParam(name=name, value=value) for name, value in params.items()])
        return self._submit(epb.Entry(config=config))

    def _apply_config(self, config: epb.ConfigSet) -> Any:
        for param in config.params:
            if param.name == "notify-keyspace-events":
                flags = notify.parse_flags(param.value)
                assert flags is not None, f"the primary logged invalid notify-keyspace-events {param.value!r}"
                self.keyspace.set_notify_flags(flags)
        return OK

    # -- transactions (MULTI/EXEC/WATCH) --------------------------------------------------------------------
    def multi_command(self, session, args: list[bytes]):
        state = _session_state(session)
        if state.multi is not None:
            raise CommandError("ERR MULTI calls can not be nested")
        state.multi, state.multi_dirty, state.multi_slot = [], False, None
        return OK

    def discard_command(self, session, args: list[bytes]):
        state = _session_state(session)
        if state.multi is None:
            raise CommandError("ERR DISCARD without MULTI")
        state.multi, state.multi_dirty = None, False
        state.watched.clear()
        return OK

    def watch_command(self, session, args: list[bytes]):
        state = _session_state(session)
        if state.multi is not None:
            raise CommandError("ERR WATCH inside MULTI is not allowed")
        db = self.keyspace.dbs[session.db]
        for key in args[1:]:
            key = bytes(key)
            state.watched.setdefault((session.db, key), db.version(key))
        return OK

    def unwatch_command(self, session, args: list[bytes]):
        _session_state(session).watched.clear()
        return OK

    def _queue(self, session, state: _SessionState, spec, args: list[bytes]):
        try:
            if Flag.NO_MULTI in spec.flags:
                raise CommandError("ERR Command not allowed inside a transaction")
            if spec.name.split("|")[0] in NODE_COMMANDS or Flag.CONNECTION in spec.flags:
                raise CommandError(f"ERR memdb does not support '{spec.name}' inside MULTI")
            if self.topology.multi_shard:
                self._route(session, spec, args)
                slots = {key_slot(bytes(args[i])) for i in spec.key_positions(args)}
                if slots:
                    slot = slots.pop()
                    if state.multi_slot not in (None, slot):
                        raise CommandError("CROSSSLOT Keys in request don't hash to the same slot")
                    state.multi_slot = slot
        except CommandError:
            state.multi_dirty = True
            raise
        state.multi.append([session.db, args])
        return QUEUED

    def exec_command(self, session, args: list[bytes]):
        state = _session_state(session)
        if state.multi is None:
            raise CommandError("ERR EXEC without MULTI")
        queued, dirty, watched = state.multi, state.multi_dirty, dict(state.watched)
        state.multi, state.multi_dirty, state.multi_slot = None, False, None
        state.watched.clear()
        if dirty:
            raise CommandError("EXECABORT Transaction discarded because of previous errors.")
        writes = any(lookup(a).flags & _LOGGED_FLAGS for _, a in queued)
        if not writes and (self.role is Role.REPLICA or not watched):
            # Only reads: answered here at once, atomically (nothing else runs meanwhile).
            if self.role is Role.PRIMARY and not self._lease_valid():
                raise CommandError(NO_LEASE_ERROR)
            if any(self.keyspace.dbs[db].version(key) != v for (db, key), v in watched.items()):
                return NULL_ARRAY
            return [self._read_in_transaction(db, a) for db, a in queued]
        self._check_primary()
        tx = epb.Transaction(commands=[epb.Command(args=a, db=db) for db, a in queued],
                             watched=[epb.WatchedKey(db=db, key=key, version=v) for (db, key), v in watched.items()])
        return self._submit(epb.Entry(transaction=tx), session=session)

    def _read_in_transaction(self, db: int, args: list[bytes]):
        ctx = Context(self.keyspace, self.keyspace.dbs[db], self._now_ms(), self._rng, is_replica_read=True)
        try:
            reply = dispatch_execute(ctx, args)
        except CommandError as exc:
            return exc
        return reply.timeout_reply if isinstance(reply, Blocked) else reply

    def _apply_transaction(self, entry: epb.Entry):
        """All of it or, if a WATCHed key changed since WATCH, nothing (the EXEC's reply is then nil)."""
        tx = entry.transaction
        if any(self.keyspace.dbs[w.db].version(w.key) != w.version for w in tx.watched):
            return NULL_ARRAY
        rng = LazyRandom(entry.seed)
        replies = []
        for cmd in tx.commands:
            ctx = Context(self.keyspace, self.keyspace.dbs[cmd.db], entry.now_ms, rng)
            try:
                reply = dispatch_execute(ctx, list(cmd.args))
            except CommandError as exc:
                reply = exc
            # Inside MULTI a blocking command never blocks: it answers as if it timed out (as in Redis).
            replies.append(reply.timeout_reply if isinstance(reply, Blocked) else reply)
        return replies

    # -- cluster mode ----------------------------------------------------------------------------------------
    def _route(self, session, spec, args: list[bytes]) -> None:
        """Redis Cluster's redirections: MOVED to the node that serves the key's slot, CROSSSLOT for keys of
        different slots. Replicas answer reads only on connections that sent READONLY."""
        positions = spec.key_positions(args)
        if not positions:
            return
        slots = {key_slot(bytes(args[i])) for i in positions if i < len(args)}
        if len(slots) > 1:
            raise CommandError("CROSSSLOT Keys in request don't hash to the same slot")
        slot = slots.pop()
        shard = self.topology.shard_of_slot(slot)
        readonly_ok = Flag.WRITE not in spec.flags and _session_state(session).readonly
        if shard == self.config.shard and (self.role is Role.PRIMARY or readonly_ok):
            return
        primary = self.topology.primary_of(shard)
        if primary is None:
            raise CommandError("CLUSTERDOWN Hash slot not served")
        if primary.name == self.config.node_id:
            return
        raise CommandError(f"MOVED {slot} {primary.address}")

    async def _publish_primary(self) -> None:
        record = json.dumps({"shard": self.config.shard, "epoch": self.epoch, "node": self.config.node_id})
        try:
            # shielded: the append's future may be shared with other items (txlog/client.py)
            await asyncio.wait_for(asyncio.shield(self.cluster_log.append(record.encode(), 0)), 2.0)
            self._published_epoch = self.epoch
        except (AppendError, TimeoutError) as exc:
            log.info("%s: could not publish primaryship yet: %s", self.config.node_id, exc)

    async def _cluster_loop(self) -> None:
        async for tail_entry in self.cluster_log.tail(1):
            if tail_entry.record.kind != tpb.DATA:
                continue
            for item in tail_entry.record.items:
                try:
                    info = json.loads(item)
                    self.topology.note_primary(info["shard"], int(info["epoch"]), info["node"])
                except (ValueError, KeyError, TypeError):
                    log.warning("ignoring a malformed record on the cluster log: %r", item[:80])

    def cluster_command(self, args: list[bytes]):
        sub = bytes(args[1]).lower()
        topo = self.topology
        if sub == b"info":
            return Verbatim(topo.info_reply(self.epoch))
        if sub == b"myid":
            return node_id(self.config.node_id).encode()
        if sub == b"keyslot":
            return key_slot(bytes(args[2]))
        if sub == b"slots":
            return topo.slots_reply()
        if sub == b"shards":
            return topo.shards_reply({self.config.node_id: self.applied_index})
        if sub == b"nodes":
            return Verbatim(topo.nodes_reply(self.config.node_id))
        slot = _parse_slot(args[2])
        keys = [k for k in self.keyspace.dbs[0].live_keys(self._now_ms()) if key_slot(k) == slot]
        if sub == b"countkeysinslot":
            return len(keys)
        count = _parse_count(args[3])
        return keys[:count]

    def readonly_command(self, session, args: list[bytes]):
        name = bytes(args[0]).lower()
        if name != b"asking":
            _session_state(session).readonly = name == b"readonly"
        return OK

    # -- planned failover and other node-level commands ------------------------------------------------------
    def _release_held(self) -> None:
        handover, self._handover = self._handover, None
        if handover is None:
            return
        self._rerun(handover.held)

    def _rerun(self, held: list) -> None:
        """Execute commands that were held (hand-over, unconfirmed lease), in order, into their futures."""
        for session, args, client, future, *_ in held:
            if future.done():
                continue
            try:
                result = self.execute(session, args, client)
            except CommandError as exc:
                future.set_exception(exc)
                continue
            if isinstance(result, asyncio.Future):
                result.add_done_callback(functools.partial(_chain, future))
            else:
                future.set_result(result)

    def _release_lease_held(self) -> None:
        held, self._lease_held = self._lease_held, []
        self._rerun(held)

    def _expire_lease_held(self) -> None:
        now = time.monotonic()
        if not self._lease_held or self._lease_held[0][4] > now:
            return
        keep = []
        for item in self._lease_held:
            if item[4] <= now:
                if not item[3].done():
                    item[3].set_exception(CommandError(NO_LEASE_ERROR))
            else:
                keep.append(item)
        self._lease_held = keep

    def failover(self, args: list[bytes]):
        """FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms]: hand the shard to a caught-up replica."""
        target, timeout_ms, abort, i = "", 5000, False, 1
        while i < len(args):
            word = bytes(args[i]).lower()
            if word == b"to" and i + 2 < len(args):
                host, port = bytes(args[i + 1]).decode(), bytes(args[i + 2]).decode()
                if not port.isdigit():
                    raise CommandError("ERR value is not an integer or out of range")
                target = f"{host}:{port}"
                i += 3
                if i < len(args) and bytes(args[i]).lower() == b"force":
                    i += 1
            elif word == b"timeout" and i + 1 < len(args):
                try:
                    timeout_ms = int(args[i + 1])
                except ValueError:
                    raise CommandError("ERR value is not an integer or out of range") from None
                if timeout_ms <= 0:
                    raise CommandError("ERR FAILOVER timeout must be greater than 0")
                i += 2
            elif word == b"abort":
                abort = True
                i += 1
            else:
                raise CommandError("ERR syntax error")
        if abort:
            raise CommandError("ERR No failover in progress." if self._handover is None else
                               "ERR FAILOVER has already been logged and cannot be aborted.")
        if self.role is not Role.PRIMARY:
            raise CommandError("ERR FAILOVER is not valid when server is a replica.")
        if self._handover is not None:
            raise CommandError("ERR FAILOVER already in progress.")
        if not self._lease_valid():
            raise CommandError(NO_LEASE_ERROR)
        # From now on this node serves nothing (it may be deposed any moment); then log the hand-over after
        # every write already queued, so the successor's claim comes after all of them.
        self._handover = _Handover(deadline=time.monotonic() + timeout_ms / 1000)
        self._lease_until = 0.0
        done = self._submit(epb.Entry(handover=epb.Handover(to=target)))
        ok = asyncio.get_running_loop().create_future()
        done.add_done_callback(lambda f: ok.set_exception(f.exception()) if f.exception() else ok.set_result(OK))
        return ok

    def role_reply(self, args: list[bytes]):
        if self.role is Role.PRIMARY:
            return [b"master", self.applied_index, []]
        host, _, port = self.primary_address.rpartition(":")
        state = b"connected" if self.primary_id else b"connect"
        return [b"slave", host.encode(), int(port or 0), state, self.applied_index]

    async def _commit_index_loop(self) -> None:
        """Once a second: learn the log's commit index (INFO's lag) from every txlog node, and watch the tail:
        if the log has committed past what we applied and we made no progress for two rounds, our tail source is
        stuck (e.g. a follower cut off from the leader): tail from the leader instead. A primary always tails
        from the leader."""
        stalled_rounds = 0
        last_applied = self.applied_index
        while True:
            await asyncio.sleep(1.0)
            leader, commit = None, 0
            statuses = await asyncio.gather(*(self.log.status(a, timeout_s=0.5) for a in self.config.txlog),
                                            return_exceptions=True)
            for address, status in zip(self.config.txlog, statuses):
                if isinstance(status, BaseException):
                    continue
                for s in status.logs:
                    if s.log == self.config.shard:
                        commit = max(commit, s.commit_index)
                        if s.role == "leader":
                            leader = address
            self.log_commit_index = max(self.log_commit_index, commit)
            behind = self.log_commit_index > self.applied_index and self.applied_index == last_applied
            stalled_rounds = stalled_rounds + 1 if behind else 0
            last_applied = self.applied_index
            if self.role is Role.PRIMARY and leader is not None and leader != self._tail_source:
                self._tail_from_leader(leader)
                stalled_rounds = 0
            elif stalled_rounds >= 2:
                source = leader or self._next_txlog(self._tail_source)
                log.warning("%s: tail from %s is stuck at %d (log committed %d); tailing from %s",
                            self.config.node_id, self._tail_source, self.applied_index, self.log_commit_index,
                            source)
                self._tail_source = source
                self._retail.set()
                stalled_rounds = 0

    def _next_txlog(self, current: str | None) -> str | None:
        addresses = list(self.config.txlog)
        if not addresses:
            return None
        if current not in addresses:
            return addresses[0]
        return addresses[(addresses.index(current) + 1) % len(addresses)]

    def prepare(self) -> None:
        """Before serving (memdb.server.serve): start from the newest snapshot, if the store has one."""
        self.load_snapshot()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._commit_index_loop())
            if self.cluster_log is not None:
                tasks.create_task(self._cluster_loop())
            tasks.create_task(self._apply_loop())
            tasks.create_task(self._leadership_loop())
            tasks.create_task(self._active_expire_loop())

    async def close(self) -> None:
        await self.log.close()
        if self.cluster_log is not None:
            await self.cluster_log.close()


def _chain(target: asyncio.Future, source: asyncio.Future) -> None:
    if target.done():
        return
    if source.cancelled():
        target.cancel()
    elif source.exception() is not None:
        target.set_exception(source.exception())
    else:
        target.set_result(source.result())


@dataclasses.dataclass(slots=True)
class _SessionState:
    """What the node keeps per connection (in Session.node_state; RESET clears it)."""
    readonly: bool = False                                  # READONLY: replica reads in cluster mode
    multi: list[list[bytes]] | None = None                  # queued commands between MULTI and EXEC
    multi_dirty: bool = False                               # a queued command was refused: EXEC aborts
    multi_slot: int | None = None                           # cluster mode: every queued key in one slot
    watched: dict[tuple[int, bytes], int] = dataclasses.field(default_factory=dict)   # (db, key) -> version


def _session_state(session) -> _SessionState:
    if not isinstance(getattr(session, "node_state", None), _SessionState):
        session.node_state = _SessionState()
    return session.node_state


_NOT_QUEUED = frozenset({"exec", "discard", "multi", "watch", "unwatch"})
_LOGGED_FLAGS = frozenset({Flag.WRITE, Flag.MAY_REPLICATE})


def _route(spec) -> tuple[str, Callable | None, bool]:
    name = spec.name.split("|")[0]
    route = _ROUTES[spec.name] = (name, NODE_COMMANDS.get(name), bool(spec.flags & _LOGGED_FLAGS))
    return route


def _parse_slot(raw: bytes) -> int:
    try:
        slot = int(raw)
    except ValueError:
        raise CommandError("ERR Invalid slot") from None
    if not 0 <= slot < 16384:
        raise CommandError("ERR Invalid slot")
    return slot


def _parse_count(raw: bytes) -> int:
    try:
        count = int(raw)
    except ValueError:
        raise CommandError("ERR value is not an integer or out of range") from None
    if count < 0:
        raise CommandError("ERR Invalid number of keys")
    return count


NODE_COMMANDS = {"failover": lambda node, session, args: node.failover(args),
                 "role": lambda node, session, args: node.role_reply(args),
                 "cluster": lambda node, session, args: node.cluster_command(args),
                 "readonly": DataNode.readonly_command, "readwrite": DataNode.readonly_command,
                 "asking": DataNode.readonly_command,
                 "multi": DataNode.multi_command, "exec": DataNode.exec_command,
                 "discard": DataNode.discard_command, "watch": DataNode.watch_command,
                 "unwatch": DataNode.unwatch_command,
                 "publish": DataNode.publish_command, "spublish": DataNode.publish_command}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data node")
    group.add_argument("--node-id", default=None, help="this data node's name (default: host:port)")
    group.add_argument("--txlog", default="127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003",
                       help="comma-separated txlog node addresses")
    group.add_argument("--shard", default="shard0", help="the shard (log) this node serves")
    group.add_argument("--zone", default="", help="this node's zone (a, b, c)")
    group.add_argument("--role", choices=("primary", "replica"), default="replica",
                       help="primary: claim the shard at once on a fresh log; replica: follow (both take over "
                            "when the primary's lease lapses, unless --no-failover)")
    group.add_argument("--no-failover", action="store_true", help="never claim the shard")
    group.add_argument("--lease-ms", type=int, default=1000)
    group.add_argument("--renew-ms", type=int, default=250)
    group.add_argument("--margin-ms", type=int, default=250)
    group.add_argument("--log-inflight", type=int, default=DEFAULT_LOG_INFLIGHT,
                       help="append batches in flight to the txlog (default %(default)s)")
    group.add_argument("--advertise", default=None, help="host:port clients should use for this node")
    group.add_argument("--topology", default="", help="topology JSON (shards, slots, nodes); default: one shard")
    group.add_argument("--grpc-port", type=int, default=0, help="serve the gRPC client API on this port (0 = off)")
    group.add_argument("--grpc-tls-cert", default="", help="PEM certificate chain: serve the gRPC API over TLS")
    group.add_argument("--grpc-tls-key", default="", help="PEM private key of --grpc-tls-cert")
    group.add_argument("--grpc-tls-ca", default="", help="PEM CA: require gRPC clients to present a certificate "
                                                         "it signed (mutual TLS)")
    group.add_argument("--txlog-tls-ca", default="", help="PEM CA of the txlog's certificates: talk to the txlog "
                                                          "over mutual TLS (with --txlog-tls-cert/--txlog-tls-key)")
    group.add_argument("--txlog-tls-cert", default="", help="PEM certificate this node presents to the txlog")
    group.add_argument("--txlog-tls-key", default="", help="PEM private key of --txlog-tls-cert")
    group.add_argument("--snapshot-dir", default="",
                       help="the shard's snapshot store, a directory shared by its data nodes: start from the newest "
                            "snapshot there; replicas (or a primary without one) write snapshots and then trim the log "
                            "(default: none)")
    group.add_argument("--snapshot-every", type=int, default=SNAPSHOT_EVERY_ENTRIES,
                       help="applied writes between snapshots; 0: write none (default %(default)s)")


def build_node(args: argparse.Namespace) -> DataNode:
    address = args.advertise or f"{args.host}:{args.port}"
    grpc_address = f"{args.host}:{args.grpc_port}" if args.grpc_port else ""
    if bool(args.grpc_tls_cert) != bool(args.grpc_tls_key) or (args.grpc_tls_ca and not args.grpc_tls_cert):
        raise SystemExit("--grpc-tls-cert and --grpc-tls-key go together (and --grpc-tls-ca needs both)")
    try:
        txlog_tls = TxlogTLS.from_options(args.txlog_tls_ca, args.txlog_tls_cert, args.txlog_tls_key)
        if txlog_tls is not None:
            txlog_tls.check()
    except (ValueError, OSError, ssl.SSLError) as exc:
        raise SystemExit(f"--txlog-tls-ca/--txlog-tls-cert/--txlog-tls-key: {exc}")
    config = NodeConfig(node_id=args.node_id or address, txlog=tuple(a for a in args.txlog.split(",") if a),
                        shard=args.shard, zone=args.zone, resp_address=address, grpc_address=grpc_address,
                        prefer_primary=args.role == "primary", failover=not args.no_failover,
                        lease_ms=args.lease_ms, renew_ms=args.renew_ms, margin_ms=args.margin_ms,
                        topology_path=args.topology, grpc_tls_cert=args.grpc_tls_cert,
                        grpc_tls_key=args.grpc_tls_key, grpc_tls_ca=args.grpc_tls_ca, txlog_tls=txlog_tls,
                        log_inflight_batches=max(1, args.log_inflight), snapshot_dir=args.snapshot_dir,
                        snapshot_every=max(0, args.snapshot_every))
    return DataNode(config)
