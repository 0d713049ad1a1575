"""Deterministic simulation of a memdb Raft group, driven from one seed.

Theory of operation
-------------------
`Simulator(seed, ...)` owns everything a real driver would: N `RaftNode`s (txlog/raft/core.py), one simulated disk
per node, a network and a clock. All randomness (schedule, faults, and every node's election-timeout rng, via seeds
derived from the master `random.Random(seed)`) flows from `seed`, and nothing depends on wall-clock time or on
set/dict hash order, so a seed replays the same schedule bit for bit; `trace_hash()` fingerprints a run.

Driver contract (the module docstring of core.py, as etcd-raft's Ready): for each Ready
  1. persist entries (overwriting stored entries from entries[0].index on) + hard state, atomically;
  2. only then send its messages;
  3. apply `committed`;
  4. `advance(ready)`.
A crash may strike between 1 and 2 (the batch is durable, its messages and the apply are lost); a crash at any other
moment loses the node's memory (in-memory core state, un-handled Ready) and every message queued *to* it.
Restart builds a new `RaftNode` from the disk's HardState + entries with applied=0, so the node re-applies its
committed prefix into a fresh state machine.

Network: each message gets a delivery time `now + [0, delay_ticks_max]` ticks (a few: up to long_delay_ticks_max,
so they arrive long stale); among the messages that are due, the schedule picks one at random (reordering); a
delivery may be dropped or duplicated; `blocked` holds directed links that lose every message (a partition blocks
both directions between its groups). In a random schedule, time advances (a tick of every live node) only after
every message due before it was handled, so the network never falls arbitrarily far behind the clock.

The driver may be lazy (`lazy_ready_prob`): it leaves a Ready for later, so several inputs reach a node between two
ready() calls, as the contract allows.

Invariants (`InvariantViolation`, naming seed and step) are checked on every step, incrementally where a full check
would be quadratic:
  - election safety: at most one leader per term, across the whole history;
  - log matching: an (index, term) pair identifies the entry's data *and* its predecessor's term, across every
    entry ever persisted on any node, which by induction gives "same index and term => identical prefix";
  - leader completeness: an entry reported committed (in any Ready.committed) by a node in term T is in the log of
    every leader of every term > T (snapshot of each leader's log when elected), at the same index and term;
  - state machine safety: every node's applied sequence is a prefix of one global committed sequence;
  - committed entries never change: not in the global sequence, and no disk overwrites a durably committed entry;
  - a node's commit index never goes backwards (except across a restart; the durable one never does);
  - an entry reported committed is, at that moment, persisted on a majority of disks;
  - promises are durable before they are sent: a granted vote is on disk, an append ack covers persisted entries,
    committed entries are on the applying node's disk, durable commit <= durable log length.
`check_full()` re-checks the global properties from scratch (pairwise logs, applied prefixes, current leaders).
"""
from __future__ import annotations

import dataclasses
import hashlib
import random
from typing import Callable, Iterable

from txlog.raft.core import (Config, Entry, HardState, Message, MessageType, NotLeader, RaftLog, RaftNode, Ready,
                             Role)

REPRODUCE_HINT = "reproduce with: MEMDB_SIM_SEED={seed} pytest tests/sim -k replay"
READY_LOOPS_MAX = 64          # Readies handled in a row for one node before we call it a livelock
DELIVERIES_PER_TICK_MAX = 10_000
HEAL_ELECTION_TIMEOUTS_MAX = 30  # after the faults stop, a proposal is applied everywhere within this many timeouts


class InvariantViolation(AssertionError):
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class Faults:
    """Fault rates of one schedule. Probabilities are per delivery (drop, duplicate), per Ready (crash between
    persist and send, lazy Ready) or per scheduler step (the rest)."""
    drop_prob: float = 0.0
    dup_prob: float = 0.0
    delay_ticks_max: int = 1
    long_delay_prob: float = 0.0        # a message is held up to `long_delay_ticks_max` (arrives long stale)
    long_delay_ticks_max: int = 30
    lazy_ready_prob: float = 0.0        # the driver leaves a Ready for later, so inputs pile up before ready()
    crash_mid_ready_prob: float = 0.0   # crash after persisting a Ready, before sending it
    partition_prob: float = 0.0
    heal_prob: float = 0.0
    crash_prob: float = 0.0
    restart_prob: float = 0.0
    propose_prob: float = 0.15
    tick_skip_prob: float = 0.0         # a node misses a tick (clock drift)


CALM = Faults()


MEMORY_KEEP = 1     # entries a node keeps in memory past what it may release (txlog keeps hundreds; 1 tests most)
MEMORY_KEEP_BYTES = 8   # on even seeds, the data a node keeps in memory instead (see _handle_ready)


class _DurableReader:
    """A RaftLog's stable reader: entries it released from memory are read back from the node's disk, and must be
    there (releasing an entry that is not durable, or reading one past the disk's end, is a core bug)."""
    __slots__ = ("sim", "nid")

    def __init__(self, sim: "Simulator", nid: str):
        self.sim, self.nid = sim, nid

    def term(self, index: int) -> int | None:
        self._check_durable(index)
        return self.sim.disks[self.nid].entries[index - 1].term

    def slice(self, lo: int, hi: int) -> list[Entry]:
        if hi < lo:
            return []
        self._check_durable(hi)
        return self.sim.disks[self.nid].entries[lo - 1:hi]

    def _check_durable(self, index: int) -> None:
        held = len(self.sim.disks[self.nid].entries)
        self.sim.check(1 <= index <= held, lambda: f"{self.nid} reads released entry {index}, its disk holds {held}")


@dataclasses.dataclass(slots=True)
class Disk:
    """What survives a crash: the log and the hard state, written atomically by one Ready."""
    hard_state: HardState = HardState()
    entries: list[Entry] = dataclasses.field(default_factory=list)   # entries[i].index == i + 1

    def term(self, index: int) -> int | None:
        if index == 0:
            return 0
        if 1 <= index <= len(self.entries):
            return self.entries[index - 1].term
        return None


@dataclasses.dataclass(slots=True)
class InFlight:
    deliver_at: int
    seq: int
    msg: Message


@dataclasses.dataclass(slots=True)
class Stats:
    steps: int = 0
    ticks: int = 0
    delivered: int = 0
    dropped: int = 0
    duplicated: int = 0
    crashes: int = 0
    restarts: int = 0
    partitions: int = 0
    proposals: int = 0
    elections: int = 0
    committed: int = 0


class Simulator:
    def __init__(self, seed: int, n_nodes: int = 3, config: Config | None = None, faults: Faults = CALM):
        self.seed = seed
        self.rng = random.Random(seed)
        self.ids = tuple(f"n{i + 1}" for i in range(n_nodes))
        self.config = config or Config(election_ticks=10, heartbeat_ticks=2)
        self.faults = faults
        self.quorum = n_nodes // 2 + 1
        self.disks = {nid: Disk() for nid in self.ids}
        self.nodes: dict[str, RaftNode | None] = {}
        self.applied: dict[str, list[Entry]] = {}
        self.pending_ready: dict[str, bool] = {}      # node -> has inputs whose Ready the driver has not handled
        self.network: list[InFlight] = []
        self.blocked: set[tuple[str, str]] = set()      # directed links (frm, to) that lose every message
        self.now = 0
        self.step_no = 0
        self.stats = Stats()
        self._seq = 0
        self._proposal_no = 0
        self._trace = hashlib.blake2b(digest_size=16)
        self.trace_log: list[str] | None = None         # set to [] to keep a readable trace (replay, stories)
        self.seeded_schedule = False                    # built by schedule_for_seed: `seed` alone replays it
        # Invariant state.
        self.leader_of_term: dict[int, str] = {}
        self.leader_logs: dict[int, list[int]] = {}    # term -> terms of the leader's log when elected (index-1)
        self.committed: list[Entry] = []                # the global committed sequence, index i at [i - 1]
        self.commit_term: list[int] = []                # term of the first node that reported each entry committed
        self.persisted_ids: dict[tuple[int, int], tuple[bytes, int]] = {}   # (index, term) -> (data, prev term)
        self.last_commit: dict[str, int] = {}
        self.lost: dict[str, set[tuple[int, int]]] = {nid: set() for nid in self.ids}   # (index, term) on wiped disks
        for nid in self.ids:
            self._start(nid)

    # -- helpers ----------------------------------------------------------------------------------------------
    def fail(self, what: str) -> None:
        hint = "\n" + REPRODUCE_HINT.format(seed=self.seed) if self.seeded_schedule else ""
        raise InvariantViolation(f"seed={self.seed} step={self.step_no} (tick {self.now}): {what}{hint}")

    def check(self, cond: bool, what: str | Callable[[], str]) -> None:
        if not cond:
            self.fail(what() if callable(what) else what)

    def _record(self, *event: object) -> None:
        text = " ".join(map(str, event))
        self._trace.update(text.encode())
        self._trace.update(b"\n")
        if self.trace_log is not None:
            self.trace_log.append(f"[{self.step_no}] {text}")

    def trace_hash(self) -> str:
        return self._trace.hexdigest()

    def up(self) -> list[str]:
        return [nid for nid in self.ids if self.nodes[nid] is not None]

    def down(self) -> list[str]:
        return [nid for nid in self.ids if self.nodes[nid] is None]

    def leaders(self) -> list[str]:
        return [nid for nid in self.ids if (n := self.nodes[nid]) is not None and n.role is Role.LEADER]

    def leader(self) -> str | None:
        """The live leader of the highest term, if any."""
        best = None
        for nid in self.leaders():
            if best is None or self.nodes[nid].term > self.nodes[best].term:
                best = nid
        return best

    def node(self, nid: str) -> RaftNode:
        n = self.nodes[nid]
        assert n is not None, f"{nid} is down"
        return n

    # -- node lifecycle and the driver ------------------------------------------------------------------------
    def _start(self, nid: str) -> None:
        disk = self.disks[nid]
        node_rng = random.Random(self.rng.getrandbits(64))
        # As txlog/storage.py loads a log: in memory the newest entries and all that may not be committed (a new
        # leader may rewrite those), the rest read back from the disk.
        in_memory_from = max(0, min(disk.hard_state.commit, len(disk.entries) - MEMORY_KEEP))
        log = RaftLog(disk.entries[in_memory_from:], stable=_DurableReader(self, nid))
        self.nodes[nid] = RaftNode(nid, self.ids, node_rng, self.config, hard_state=disk.hard_state, log=log,
                                   applied=0)
        self.applied[nid] = []
        self.pending_ready[nid] = False
        self.last_commit[nid] = self.nodes[nid].commit

    def _after_input(self, nid: str) -> None:
        """The driver noticed new input; it handles the Ready now, or (lazy) at a later `drive`."""
        if self.faults.lazy_ready_prob and self.rng.random() < self.faults.lazy_ready_prob:
            self.pending_ready[nid] = True
        else:
            self._drive(nid)

    def _drive(self, nid: str) -> None:
        self.pending_ready[nid] = False
        for _ in range(READY_LOOPS_MAX):
            node = self.nodes[nid]
            if node is None:
                return
            rd = node.ready()
            if rd.empty():
                return
            self._handle_ready(nid, node, rd)
        self.fail(f"{nid}: more than {READY_LOOPS_MAX} non-empty Readies in a row")

    def _handle_ready(self, nid: str, node: RaftNode, rd: Ready) -> None:
        self._persist(nid, rd)
        if self.faults.crash_mid_ready_prob and self.rng.random() < self.faults.crash_mid_ready_prob:
            self._record("crash-mid-ready", nid)
            self._crash(nid)
            return
        for m in rd.messages:
            self._check_promise(nid, m)
            self._send(m)
        for e in rd.committed:
            self._apply(nid, node, e)
        node.advance(rd)
        if self.seed % 2:
            node.release_memory(MEMORY_KEEP)
        else:     # the byte budget instead (the sim's entries are a few bytes each): it releases as far
            node.release_memory(10 * MEMORY_KEEP, keep_bytes=MEMORY_KEEP_BYTES)
            assert node.log.held_bytes == sum(len(e.data) for e in node.log.entries), "held_bytes drifted"

    def _persist(self, nid: str, rd: Ready) -> None:
        disk = self.disks[nid]
        old_hs = disk.hard_state
        if rd.entries:
            first = rd.entries[0].index
            self.check(1 <= first <= len(disk.entries) + 1,
                       lambda: f"{nid}: Ready entries start at {first}, disk holds 1..{len(disk.entries)} (gap)")
            self.check(all(e.index == first + i for i, e in enumerate(rd.entries)),
                       lambda: f"{nid}: Ready entries are not contiguous: {[e.index for e in rd.entries]}")
            overwritten = disk.entries[first - 1:]
            for old, new in zip(overwritten, rd.entries):
                if old.term != new.term:
                    self.check(old.index > old_hs.commit,
                               lambda: f"{nid}: overwrites durably committed entry {old} with {new} "
                                       f"(durable commit {old_hs.commit})")
                    if old.index <= len(self.committed):
                        self.check(self.committed[old.index - 1] != old,
                                   lambda: f"{nid}: overwrites committed entry {old} with {new}")
            for old in overwritten[len(rd.entries):]:
                self.check(old.index > old_hs.commit,
                           lambda: f"{nid}: drops durably committed entry {old} (durable commit {old_hs.commit})")
            del disk.entries[first - 1:]
            for e in rd.entries:
                prev_term = disk.entries[-1].term if disk.entries else 0
                key = (e.index, e.term)
                ident = (e.data, prev_term)
                seen = self.persisted_ids.setdefault(key, ident)
                self.check(seen == ident,
                           lambda: f"log matching: {nid} persists {e} after term {prev_term}, but another node "
                                   f"persisted (index {e.index}, term {e.term}) as data={seen[0]!r} after term "
                                   f"{seen[1]}")
                disk.entries.append(e)
        if rd.hard_state is not None:
            hs = rd.hard_state
            self.check(hs.term >= old_hs.term, lambda: f"{nid}: durable term goes back {old_hs} -> {hs}")
            self.check(hs.term > old_hs.term or old_hs.vote in ("", hs.vote),
                       lambda: f"{nid}: votes twice in term {hs.term}: {old_hs.vote} then {hs.vote}")
            self.check(hs.commit >= old_hs.commit, lambda: f"{nid}: durable commit goes back {old_hs} -> {hs}")
            disk.hard_state = hs
        self.check(disk.hard_state.commit <= len(disk.entries),
                   lambda: f"{nid}: durable commit {disk.hard_state.commit} beyond durable log {len(disk.entries)}")
        if rd.entries or rd.hard_state is not None:
            self._record("persist", nid, rd.hard_state, [(e.index, e.term) for e in rd.entries])

    def _check_promise(self, nid: str, m: Message) -> None:
        """A message sent promises durable state; check the disk holds it (the 'persist before send' rule)."""
        disk = self.disks[nid]
        hs = disk.hard_state
        # A vote in term T is safe once the disk holds it or any later term (a node never votes in an old term).
        if m.type is MessageType.VOTE_RESP and not m.reject:
            self.check(hs.term > m.term or (hs.term == m.term and hs.vote == m.to),
                       lambda: f"{nid} grants a vote to {m.to} in term {m.term} but its disk says {hs}")
        elif m.type is MessageType.VOTE:
            self.check(hs.term > m.term or (hs.term == m.term and hs.vote == nid),
                       lambda: f"{nid} campaigns in term {m.term} but its disk says {hs}")
        elif m.type is MessageType.APPEND_RESP and not m.reject and m.index > 0:
            # The leader of m.term will count us as holding its log up to m.index.
            held = disk.term(m.index)
            self.check(held is not None,
                       lambda: f"{nid} acks index {m.index} holding only {len(disk.entries)} durable entries")
            leader = self.nodes.get(self.leader_of_term.get(m.term, ""))
            if leader is not None and leader.term == m.term and leader.role is Role.LEADER:
                self.check(leader.log.term(m.index) == held,
                           lambda: f"{nid} acks index {m.index} to the leader of term {m.term}, but its durable "
                                   f"entry there has term {held}, the leader's {leader.log.term(m.index)}")

    def _apply(self, nid: str, node: RaftNode, e: Entry) -> None:
        applied = self.applied[nid]
        self.check(e.index == len(applied) + 1,
                   lambda: f"{nid} applies {e} after {len(applied)} entries (not in order)")
        self.check(self.disks[nid].term(e.index) == e.term,
                   lambda: f"{nid} applies {e}, which is not on its disk (term there: "
                           f"{self.disks[nid].term(e.index)})")
        # A copy lost with a wiped disk counts: it was durable there (and acknowledged), as a disk that dies right
        # after the commit leaves one copy too. What the wiped node must not do (vote) is checked by the rest.
        replicas = sum(self.disks[p].term(e.index) == e.term or (e.index, e.term) in self.lost[p] for p in self.ids)
        self.check(replicas >= self.quorum,
                   lambda: f"{nid} reports {e} committed but only {replicas} disks hold it")
        if e.index <= len(self.committed):
            self.check(self.committed[e.index - 1] == e,
                       lambda: f"state machine safety: {nid} applies {e}, but {self.committed[e.index - 1]} "
                               f"was committed at that index")
        else:
            self.committed.append(e)
            self.commit_term.append(node.term)
            self.stats.committed += 1
            for term, log in self.leader_logs.items():
                if term > node.term:
                    self._check_leader_has(term, log, e, node.term)
        applied.append(e)
        self._record("apply", nid, e.index, e.term, e.data)

    def _check_leader_has(self, term: int, log: list[int], e: Entry, commit_term: int) -> None:
        held = log[e.index - 1] if e.index <= len(log) else None
        self.check(held == e.term,
                   lambda: f"leader completeness: {e} was committed by term {commit_term}, but the leader of term "
                           f"{term} ({self.leader_of_term[term]}) had term {held} at index {e.index}")

    def _check_step(self) -> None:
        for nid in self.ids:
            node = self.nodes[nid]
            if node is None:
                continue
            commit = node.commit
            if commit < self.last_commit[nid]:
                self.fail(f"{nid}: commit goes back {self.last_commit[nid]} -> {commit}")
            if commit > node.log.last_index:
                self.fail(f"{nid}: commit {commit} beyond its log ({node.log.last_index})")
            self.last_commit[nid] = commit
            if node.role is Role.LEADER:
                holder = self.leader_of_term.setdefault(node.term, nid)
                if holder != nid:
                    self.fail(f"election safety: {holder} and {nid} both lead term {node.term}")
                if node.term not in self.leader_logs:
                    self._on_elected(nid, node)

    def _on_elected(self, nid: str, node: RaftNode) -> None:
        self.stats.elections += 1
        log = [node.log.term(i) for i in range(1, node.log.last_index + 1)]
        self.leader_logs[node.term] = log
        self._record("elected", nid, node.term)
        for e, commit_term in zip(self.committed, self.commit_term):
            if commit_term < node.term:
                self._check_leader_has(node.term, log, e, commit_term)

    def check_full(self) -> None:
        """Re-check the global properties from scratch (slower; hypothesis @invariant and end of schedules)."""
        disks = [(nid, self.disks[nid].entries) for nid in self.ids]
        for i, (a, la) in enumerate(disks):
            for b, lb in disks[i + 1:]:
                common = min(len(la), len(lb))
                # Log matching: below the highest index where the terms agree, the logs are identical.
                top = max((k for k in range(common) if la[k].term == lb[k].term), default=-1)
                self.check(la[:top + 1] == lb[:top + 1],
                           lambda: f"log matching: {a} and {b} agree on index {top + 1} but differ below it")
        for nid in self.ids:
            applied = self.applied[nid]
            self.check(applied == self.committed[:len(applied)],
                       lambda: f"state machine safety: {nid}'s applied sequence is not a prefix of the committed one")
            node = self.nodes[nid]
            if node is not None and node.role is Role.LEADER:
                for e, commit_term in zip(self.committed, self.commit_term):
                    if commit_term < node.term:
                        self.check(node.log.term(e.index) == e.term,
                                   lambda: f"leader completeness: leader {nid} (term {node.term}) lacks {e}")
        self._check_step()

    # -- inputs: one scheduler step each ----------------------------------------------------------------------
    def _begin(self, *event: object) -> None:
        self.step_no += 1
        self.stats.steps += 1
        self._record(*event)

    def _send(self, m: Message) -> None:
        self._seq += 1
        delay = self._delay()
        self.network.append(InFlight(self.now + delay, self._seq, m))
        self._record("send", m)

    def _delay(self) -> int:
        fl = self.faults
        if fl.long_delay_prob and self.rng.random() < fl.long_delay_prob:
            return self.rng.randint(0, fl.long_delay_ticks_max)
        return self.rng.randint(0, fl.delay_ticks_max) if fl.delay_ticks_max else 0

    def due(self) -> list[int]:
        return [i for i, f in enumerate(self.network) if f.deliver_at <= self.now]

    def deliver(self, i: int, drop: bool | None = None, duplicate: bool | None = None) -> None:
        """Deliver network[i] (whatever its due time), subject to the fault rates unless drop/duplicate say."""
        f = self.network.pop(i)
        m = f.msg
        if drop is None:
            drop = bool(self.faults.drop_prob) and self.rng.random() < self.faults.drop_prob
        if duplicate is None:
            duplicate = bool(self.faults.dup_prob) and self.rng.random() < self.faults.dup_prob
        self._begin("deliver", f.seq, m.type.name, m.frm, "->", m.to)
        if duplicate:
            self.stats.duplicated += 1
            self._seq += 1
            delay = self._delay()
            self.network.append(InFlight(self.now + delay, self._seq, m))
        node = self.nodes[m.to]
        if drop or node is None or (m.frm, m.to) in self.blocked:
            self.stats.dropped += 1
            self._record("lost", f.seq)
        else:
            self.stats.delivered += 1
            node.step(m)
            self._after_input(m.to)
        self._check_step()

    def drop(self, i: int) -> None:
        f = self.network.pop(i)
        self._begin("drop", f.seq)
        self.stats.dropped += 1
        self._check_step()

    def duplicate(self, i: int) -> None:
        f = self.network[i]
        self._begin("duplicate", f.seq)
        self._seq += 1
        self.network.append(InFlight(f.deliver_at, self._seq, f.msg))
        self.stats.duplicated += 1
        self._check_step()

    def tick(self, nids: Iterable[str] | None = None) -> None:
        """One tick of logical time: every live node (or just `nids`) ticks."""
        self._begin("tick", self.now + 1)
        self.now += 1
        self.stats.ticks += 1
        for nid in (self.ids if nids is None else tuple(nids)):
            node = self.nodes[nid]
            if node is None:
                continue
            if self.faults.tick_skip_prob and self.rng.random() < self.faults.tick_skip_prob:
                continue
            node.tick()
            self._after_input(nid)
        self._check_step()

    def drive(self, nid: str) -> None:
        """The driver handles `nid`'s pending Ready."""
        self._begin("drive", nid)
        if self.nodes[nid] is not None:
            self._drive(nid)
        self._check_step()

    def propose(self, nid: str | None = None, data: bytes | None = None, count: int = 1) -> bool:
        """A client proposes `count` entries to `nid` (default: the current leader); False if it is not the
        leader. Each proposal's data is unique in the run (so log matching compares real contents)."""
        nid = nid or self.leader()
        datas = []
        for _ in range(count if data is None else 1):
            self._proposal_no += 1
            datas.append(data if data is not None else f"p{self._proposal_no}".encode())
        self._begin("propose", nid, datas)
        accepted = False
        if nid is not None and self.nodes[nid] is not None:
            try:
                self.nodes[nid].propose(datas)
                accepted = True
                self.stats.proposals += 1
                self._after_input(nid)
            except NotLeader:
                pass
        self._check_step()
        return accepted

    def campaign(self, nid: str) -> None:
        self._begin("campaign", nid)
        self.node(nid).campaign()
        self._after_input(nid)
        self._check_step()

    def partition(self, *groups: Iterable[str]) -> None:
        """Nodes in different groups cannot talk (nodes in no group talk to everyone not blocked otherwise)."""
        sets = [sorted(g) for g in groups]
        self._begin("partition", sets)
        self.stats.partitions += 1
        self.blocked = set()
        for i, g in enumerate(sets):
            for h in sets[i + 1:]:
                for a in g:
                    for b in h:
                        self.blocked.add((a, b))
                        self.blocked.add((b, a))
        self._check_step()

    def block(self, frm: str, to: str) -> None:
        """A one-way link failure."""
        self._begin("block", frm, to)
        self.blocked.add((frm, to))
        self._check_step()

    def heal(self) -> None:
        self._begin("heal")
        self.blocked = set()
        self._check_step()

    def _crash(self, nid: str) -> None:
        self.nodes[nid] = None
        self.pending_ready[nid] = False
        self.network = [f for f in self.network if f.msg.to != nid]
        self.stats.crashes += 1

    def crash(self, nid: str) -> None:
        self._begin("crash", nid)
        if self.nodes[nid] is not None:
            self._crash(nid)
        self._check_step()

    def restart(self, nid: str) -> None:
        self._begin("restart", nid)
        if self.nodes[nid] is None:
            self._start(nid)
            self.stats.restarts += 1
            self._drive(nid)
        self._check_step()

    def wipe(self, nid: str) -> None:
        """The node loses its disk and comes back empty, as txlog/server.py's `join` restarts it: recovering, in the
        highest term any other node is in (all of them answer, up or down), with its vote spent on itself."""
        self._begin("wipe", nid)
        self.lost[nid].update((e.index, e.term) for e in self.disks[nid].entries)
        if self.nodes[nid] is not None:
            self._crash(nid)
        term = max((self.nodes[p].term if self.nodes[p] is not None else self.disks[p].hard_state.term)
                   for p in self.ids if p != nid)
        self.disks[nid] = Disk(HardState(term=term, vote=nid, recovering=True))
        self._start(nid)
        self.stats.restarts += 1
        self._drive(nid)
        self._check_step()

    # -- composite runs ---------------------------------------------------------------------------------------
    def deliver_due(self, limit: int = DELIVERIES_PER_TICK_MAX) -> int:
        """Deliver every due message in random order (including ones sent meanwhile with no delay)."""
        n = 0
        while n < limit:
            due = self.due()
            if not due:
                break
            self.deliver(self.rng.choice(due))
            n += 1
        return n

    def drive_all(self) -> None:
        for nid in self.ids:
            if self.pending_ready[nid]:
                self.drive(nid)

    def run_ticks(self, ticks: int, until: Callable[[], bool] | None = None) -> int | None:
        """Alternate delivering the due messages and ticking; return the ticks taken once `until()` holds
        (None if it never did)."""
        for t in range(ticks + 1):
            self.drive_all()
            self.deliver_due()
            self.drive_all()
            if until is not None and until():
                return t
            if t < ticks:
                self.tick()
        return None

    def stabilize(self, rounds_max: int = 1000) -> None:
        """Deliver messages (with no faults of their own) until the network is empty; no ticks."""
        for _ in range(rounds_max):
            self.drive_all()
            if not self.network:
                return
            self.deliver(0, drop=False, duplicate=False)
        self.fail("network does not settle")

    def run_random(self, steps: int) -> None:
        """A random schedule of `steps` scheduler steps under `self.faults`."""
        fl = self.faults
        for _ in range(steps):
            r = self.rng.random()
            due = self.due()
            if due and r < 0.8:
                self.deliver(self.rng.choice(due))
                continue
            r = self.rng.random()
            pending = [nid for nid in self.ids if self.pending_ready[nid]]
            if pending and r < 0.3:
                self.drive(self.rng.choice(pending))
            elif (r := self.rng.random()) < fl.propose_prob:
                # Mostly to the leader; sometimes to anyone (a stale leader accepts entries it will lose).
                nid = self.rng.choice(self.up()) if self.up() and self.rng.random() < 0.2 else None
                self.propose(nid, count=self.rng.choice((1, 1, 1, 2, 3)))
            elif (r := r - fl.propose_prob) < fl.partition_prob:
                self._random_partition()
            elif (r := r - fl.partition_prob) < fl.heal_prob:
                self.heal()
            elif (r := r - fl.heal_prob) < fl.crash_prob and self.up():
                self.crash(self.rng.choice(self.up()))
            elif (r := r - fl.crash_prob) < fl.restart_prob and self.down():
                self.restart(self.rng.choice(self.down()))
            else:
                # Time moves on only once the network has caught up: whatever was due before this tick arrives
                # (or is lost) first, so a message is late by at most its delay plus one tick.
                while overdue := [i for i, f in enumerate(self.network) if f.deliver_at < self.now]:
                    self.deliver(self.rng.choice(overdue))
                self.tick()

    def _random_partition(self) -> None:
        kind = self.rng.random()
        ids = list(self.ids)
        if kind < 0.4:
            lone = self.rng.choice(ids)
            self.partition([lone], [i for i in ids if i != lone])
        elif kind < 0.8:
            self.rng.shuffle(ids)
            cut = self.rng.randint(1, len(ids) - 1)
            self.partition(ids[:cut], ids[cut:])
        else:
            a, b = self.rng.sample(ids, 2)
            self.block(a, b)

    def heal_and_check_liveness(self, ticks_max: int) -> int:
        """Heal every fault, restart every node, and require that within `ticks_max` ticks a leader is elected and
        a fresh proposal is applied on every node; return the ticks it took. Afterwards all nodes agree."""
        self.faults = dataclasses.replace(CALM, delay_ticks_max=min(self.faults.delay_ticks_max, 1),
                                          long_delay_prob=0.0,
                                          propose_prob=0.0)
        self.heal()
        for nid in self.down():
            self.restart(nid)
        self.drive_all()
        start = self.now
        marker: list[bytes] = []

        def done() -> bool:
            leader = self.leader()
            if leader is None:
                return False
            log = self.nodes[leader].log
            if not marker or not any(log.term(i) and log.slice(i, i)[0].data == marker[-1]
                                     for i in range(log.last_index, max(0, log.last_index - 64), -1)):
                # (Re)propose: no marker yet, or the leader's log lost it (it was an uncommitted suffix).
                self._proposal_no += 1
                marker.append(f"p{self._proposal_no}".encode())
                self.propose(leader, marker[-1])
                return False
            return all(any(e.data == marker[-1] for e in reversed(self.applied[nid])) for nid in self.ids)

        took = self.run_ticks(ticks_max, until=done)
        self.check(took is not None,
                   lambda: f"liveness: {ticks_max} ticks after healing, no leader committed a proposal everywhere "
                           f"(roles: {[(nid, n.role.name, n.term) for nid, n in self.nodes.items()]})")
        elapsed = self.now - start
        # Then every node applies the same sequence (entries committed meanwhile included).
        settled = self.run_ticks(ticks_max, until=lambda: len({len(self.applied[nid]) for nid in self.ids}) == 1)
        self.check(settled is not None,
                   lambda: f"after settling, applied lengths differ: {[len(self.applied[n]) for n in self.ids]}")
        self.check_full()
        return elapsed


# -- schedules derived from a seed ----------------------------------------------------------------------------
PROFILES = ("calm", "lossy", "partitions", "crashes", "chaos")
STEPS_MIN, STEPS_MAX = 1000, 2500     # scheduler steps per seeded schedule


def schedule_for_seed(seed: int) -> tuple[Simulator, int]:
    """Build the simulator and step count of the seeded random schedule `seed` (everything from the seed)."""
    rng = random.Random(seed ^ 0x5EED_5EED)
    n_nodes = 5 if rng.random() < 0.25 else 3
    profile = rng.choice(PROFILES)
    election_ticks = rng.randint(3, 10)
    config = Config(election_ticks=election_ticks, heartbeat_ticks=rng.randint(1, max(1, election_ticks // 3)),
                    max_entries_per_message=rng.choice((1, 2, 8, 1024)),
                    max_inflight_entries=rng.choice((2, 16, 65536)),
                    pre_vote=rng.random() < 0.8, check_quorum=rng.random() < 0.8)
    lossy = profile in ("lossy", "chaos")
    parts = profile in ("partitions", "chaos")
    crashy = profile in ("crashes", "chaos")
    faults = Faults(
        drop_prob=rng.uniform(0.02, 0.3) if lossy else 0.0,
        dup_prob=rng.uniform(0.0, 0.15) if lossy else 0.0,
        delay_ticks_max=rng.randint(0, 3),
        long_delay_prob=rng.choice((0.0, 0.0, 0.01, 0.05)),
        long_delay_ticks_max=3 * election_ticks,
        lazy_ready_prob=rng.choice((0.0, 0.2, 0.5)),
        crash_mid_ready_prob=rng.uniform(0.0, 0.02) if crashy else 0.0,
        partition_prob=rng.uniform(0.01, 0.05) if parts else 0.0,
        heal_prob=rng.uniform(0.01, 0.05) if parts else 0.0,
        crash_prob=rng.uniform(0.005, 0.03) if crashy else 0.0,
        restart_prob=rng.uniform(0.02, 0.08) if crashy else 0.0,
        propose_prob=rng.uniform(0.05, 0.3),
        tick_skip_prob=rng.choice((0.0, 0.0, 0.1)),
    )
    steps = rng.randint(STEPS_MIN, STEPS_MAX)
    sim = Simulator(seed, n_nodes, config, faults)
    sim.seeded_schedule = True
    return sim, steps


def run_seed(seed: int, trace: list[str] | None = None) -> Simulator:
    """Run the seeded schedule: random faults, then heal and require liveness; raise InvariantViolation.
    `trace`, if given, receives a readable line per event (also when the run fails)."""
    sim, steps = schedule_for_seed(seed)
    sim.trace_log = trace
    sim.run_random(steps)
    sim.check_full()
    # Budget: elections, plus shipping the backlog of uncommitted entries at the configured batch size.
    last = max([len(d.entries) for d in sim.disks.values()] + [n.log.last_index for n in sim.nodes.values() if n])
    backlog = last - min(d.hard_state.commit for d in sim.disks.values())
    batch = min(sim.config.max_entries_per_message, sim.config.max_inflight_entries)
    sim.heal_and_check_liveness(ticks_max=HEAL_ELECTION_TIMEOUTS_MAX * sim.config.election_ticks
                                + 2 * backlog // batch)
    return sim
