"""What the txlog decides about an append before it proposes it: epoch fencing, conditions, and deduplication.

The log is a Raft log of `LogRecord`s. Two views of it matter:
  - the *committed* view (`applied_*`), the same on every node, advanced as committed entries are applied;
  - the *tail* view on the leader: the committed view extended by the uncommitted suffix of the leader's log.
Fencing decisions are made against the tail view. That is safe because the leader never rewrites its own log: if
the new entry commits, everything the decision looked at (the prefix before it) commits with it, in that order.

Rules (DESIGN.md "Leadership, leases and failover"):
  - LEADERSHIP is accepted only with epoch = tail epoch + 1, and if it has a condition, only when the log's last
    index equals it (so only a fully caught-up data node can win, and it holds every acknowledged write).
  - DATA is accepted only with epoch = tail epoch: a deposed primary never gets a write acknowledged.
  - A batch (writer_id, batch_seq) already in the log is not appended again; the retry learns its index.
A TRIM record carries the tail epoch it was proposed in, and sets the epoch like a LEADERSHIP does: after a trim,
the leaderships below it are gone, and a node that restarts rebuilds its views from the log that is left. Batches
below a trim are forgotten (their retries come seconds later, not a trim margin later).
Pure: no I/O, no clock; the server calls it from its driver loop.
"""
from __future__ import annotations

import collections
import dataclasses
import enum

from txlog.generated import txlog_pb2 as pb

DEDUP_WINDOW_PER_WRITER = 4096   # recent batches remembered per writer (a retry is always among the newest)
MAX_WRITERS = 10000              # writers remembered; the least recently seen are forgotten first


class Verdict(enum.Enum):
    PROPOSE = "propose"
    DUPLICATE = "duplicate"          # already in the log at `index`
    STALE_EPOCH = "stale_epoch"
    CONDITION_FAILED = "condition_failed"


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    index: int = 0                   # DUPLICATE: where the batch is (0 = committed long ago, index forgotten)
    epoch: int = 0                   # the tail epoch when decided


def decode_record(data: bytes) -> pb.LogRecord:
    """Raft's own empty entry (written by a new leader) reads as a NOOP record."""
    record = pb.LogRecord()
    if data:
        record.ParseFromString(data)
    else:
        record.kind = pb.NOOP
    return record


class _Writers:
    """(writer_id, batch_seq) -> index for the most recent batches of each writer."""

    def __init__(self):
        self.recent: collections.OrderedDict[str, collections.OrderedDict[int, int]] = collections.OrderedDict()
        self.highest: dict[str, int] = {}

    def add(self, writer: str, seq: int, index: int) -> None:
        seqs = self.recent.get(writer)
        if seqs is None:
            seqs = self.recent[writer] = collections.OrderedDict()
            if len(self.recent) > MAX_WRITERS:
                old, _ = self.recent.popitem(last=False)
                self.highest.pop(old, None)
        else:
            self.recent.move_to_end(writer)
        seqs[seq] = index
        if len(seqs) > DEDUP_WINDOW_PER_WRITER:
            seqs.popitem(last=False)
        self.highest[writer] = max(self.highest.get(writer, 0), seq)

    def find(self, writer: str, seq: int) -> int | None:
        """Index of the batch, 0 if it is older than the window (known to be in the log), None if never seen."""
        seqs = self.recent.get(writer)
        if seqs is not None and seq in seqs:
            return seqs[seq]
        if seq <= self.highest.get(writer, 0):
            return 0
        return None


class LogFencing:
    def __init__(self):
        self.applied_epoch = 0
        self._applied_writers = _Writers()
        # Leader-only tail view of entries after the applied index:
        self.tail_epoch = 0
        self._pending: dict[tuple[str, int], int] = {}

    # -- committed view (every node) ---------------------------------------------------------------------------
    def apply(self, index: int, record: pb.LogRecord) -> None:
        if record.kind in (pb.LEADERSHIP, pb.TRIM):
            self.applied_epoch = record.epoch
        if record.writer_id:
            self._applied_writers.add(record.writer_id, record.batch_seq, index)
            self._pending.pop((record.writer_id, record.batch_seq), None)

    # -- tail view (leader) ------------------------------------------------------------------------------------
    def become_leader(self, uncommitted: list[tuple[int, pb.LogRecord]]) -> None:
        """Rebuild the tail view from the committed view plus the log's entries after the applied index."""
        self.tail_epoch = self.applied_epoch
        self._pending = {}
        for index, record in uncommitted:
            self.note_proposed(index, record)

    def note_proposed(self, index: int, record: pb.LogRecord) -> None:
        if record.kind in (pb.LEADERSHIP, pb.TRIM):
            self.tail_epoch = record.epoch
        if record.writer_id:
            self._pending[(record.writer_id, record.batch_seq)] = index

    def decide(self, kind: int, epoch: int, writer_id: str, batch_seq: int, expected_last_index: int | None,
               last_index: int) -> Decision:
        if writer_id:
            index = self._pending.get((writer_id, batch_seq))
            if index is None:
                index = self._applied_writers.find(writer_id, batch_seq)
            if index is not None:
                return Decision(Verdict.DUPLICATE, index=index, epoch=self.tail_epoch)
        if kind == pb.LEADERSHIP:
            if epoch != self.tail_epoch + 1:
                return Decision(Verdict.STALE_EPOCH, epoch=self.tail_epoch)
            if expected_last_index is not None and expected_last_index != last_index:
                return Decision(Verdict.CONDITION_FAILED, epoch=self.tail_epoch)
        else:
            if epoch != self.tail_epoch:
                return Decision(Verdict.STALE_EPOCH, epoch=self.tail_epoch)
            if expected_last_index is not None and expected_last_index != last_index:
                return Decision(Verdict.CONDITION_FAILED, epoch=self.tail_epoch)
        return Decision(Verdict.PROPOSE, epoch=self.tail_epoch)
