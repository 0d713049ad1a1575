"""A pure Raft consensus core, in the style of etcd-raft.

Theory of operation
-------------------
`RaftNode` is one member of one Raft group (one log). It does no I/O: it is driven by three inputs
  - `step(msg)`: a message from a peer,
  - `tick()`: one unit of logical time (the driver calls it every `tick_ms`),
  - `propose(datas)`: new entries to append (leader only),
and produces one output, a `Ready`, that the driver must handle in this order (the contract etcd-raft's
`Ready` states):
  1. persist `ready.entries` (overwriting any stored entries from `entries[0].index` on) and
     `ready.hard_state`, with one fsync;
  2. only then send `ready.messages` (a vote or an append acknowledgement promises durable state);
  3. apply `ready.committed` (all of them are durable on this node by step 1);
  4. call `advance(ready)`.
Randomness (election timeouts) comes from an injected `random.Random`; time is ticks; so a seed plus a schedule of
inputs replays exactly, which is what tests/sim relies on.

Safety-relevant choices, with the paper's sections:
  - A leader commits only entries of its own term by counting replicas (§5.4.2); earlier entries commit
    indirectly. A leader appends an empty entry when elected so its term gets a committed entry promptly.
  - The leader counts itself only up to what it has persisted (`advance`), so "committed" always means durable
    on a majority.
  - Votes go only to candidates whose log is at least as up to date (§5.4.1); vote and term are persisted
    (hard_state) before the vote is sent.
  - Pre-vote (Ongaro's thesis §9.6) and check-quorum: a node that cannot reach a majority neither bumps terms
    nor disrupts a healthy leader, and a leader that loses its quorum steps down within an election timeout.

A node that lost its disk (`HardState.recovering`): its old acknowledgements may have counted towards commits and
its old votes towards elections, and it remembers neither. The driver restarts it with a term at least as high as
any it could have voted in (the highest its peers report) and `vote` set to itself, so it never votes twice in a
term. Until it holds the whole log of a leader of its term or later (as of a message sent after the restart) it
neither campaigns nor grants votes, and it takes no commit index from heartbeats; its replies say `recovering`, so
the leader forgets the match it had acknowledged before (and re-sends from where the node now is). While it abstains
a candidate needs the votes of all the others, which keeps every committed entry in every new leader's log (§5.4.1)
even if the lost copy was one of its majority. A follower that needs entries the leader has trimmed gets LOG_START:
the trim point (index, term), below which everything is committed; it drops its log and starts there.
"""
from __future__ import annotations

import dataclasses
import enum
import random
from typing import Iterable, Protocol, Sequence


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre_candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class MessageType(enum.IntEnum):
    VOTE = 1
    VOTE_RESP = 2
    PRE_VOTE = 3
    PRE_VOTE_RESP = 4
    APPEND = 5
    APPEND_RESP = 6
    HEARTBEAT = 7
    HEARTBEAT_RESP = 8
    LOG_START = 9      # the leader's log starts after (index, log_term): trimmed below, all of it committed


_FROM_LEADER = (MessageType.APPEND, MessageType.HEARTBEAT, MessageType.LOG_START)


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    term: int
    index: int
    data: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    type: MessageType
    frm: str
    to: str
    term: int
    log_term: int = 0          # APPEND: term of the entry at `index`; votes: term of the candidate's last entry
    index: int = 0             # APPEND: index before `entries`; votes: candidate's last index;
                               # APPEND_RESP: last index now matching (or the rejected index)
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    reject: bool = False
    reject_hint: int = 0       # APPEND_RESP reject: a lower bound the leader can retry from;
                               # HEARTBEAT_RESP from a recovering node: its last index
    last_index: int = 0        # APPEND: the leader's last index when it sent this (a recovering node's goal)
    recovering: bool = False   # replies of a node that lost its log and has not caught up yet


@dataclasses.dataclass(frozen=True, slots=True)
class HardState:
    term: int = 0
    vote: str = ""             # "" = voted for nobody in `term`
    commit: int = 0
    recovering: bool = False   # lost its log: no campaigns, no votes until it holds a leader's whole log


@dataclasses.dataclass(slots=True)
class Ready:
    hard_state: HardState | None      # None: unchanged since the last Ready
    entries: list[Entry]              # to persist before sending; may overwrite stored entries from entries[0]
    messages: list[Message]           # to send after persisting
    committed: list[Entry]            # to apply, in order
    log_start: tuple[int, int] | None = None   # (first index, term before it): drop every stored entry and start
                                               # the log there, before persisting `entries` (after a LOG_START)

    def empty(self) -> bool:
        return (self.hard_state is None and not self.entries and not self.messages and not self.committed
                and self.log_start is None)


class NotLeader(Exception):
    """A proposal reached a node that is not the leader; `leader_id` is the leader it knows of, or ""."""

    def __init__(self, leader_id: str):
        super().__init__(f"not the leader (leader: {leader_id or 'unknown'})")
        self.leader_id = leader_id


@dataclasses.dataclass(frozen=True, slots=True)
class Config:
    election_ticks: int = 10         # randomized in [election_ticks, 2 * election_ticks)
    heartbeat_ticks: int = 2
    max_entries_per_message: int = 1024
    large_append_bytes: int = 1 << 20   # a probe this large is resent at most once per election timeout
    max_inflight_entries: int = 65536   # flow control: unacknowledged entries in flight to one follower
    pre_vote: bool = True
    check_quorum: bool = True


@dataclasses.dataclass(slots=True)
class Progress:
    """The leader's view of one follower (§5.3: nextIndex/matchIndex)."""
    match: int = 0
    next: int = 1
    probing: bool = True       # True: one append at a time until the follower's position is known
    probe_sent: bool = False   # in probing mode, an append is outstanding (resent on heartbeat)
    probe_sent_at: int = 0     # the leader's tick count when it went out...
    probe_bytes: int = 0       # ... and the size of its entries
    recent_active: bool = False
    match_at_heartbeat: int = 0   # to notice a pipeline that stopped moving (a lost append)


class StableLog(Protocol):
    """The driver's durable copy of entries the log has released from memory (see RaftLog.release)."""

    def term(self, index: int) -> int | None: ...

    def slice(self, lo: int, hi: int) -> list[Entry]: ...


class RaftLog:
    """The log as the core sees it: entries [first_index, last_index], plus the term of the entry just before them
    (after a trim) so appends right after the trim point still match.

    The newest entries are in memory, from `offset` on. With a `stable` reader, older ones may be released from
    memory once they are durable (the driver's promise, see `RaftNode.release_memory`) and are read back from it
    when needed (a lagging follower, a tail from far back), so memory does not grow with the log. Only committed
    entries are released, and Raft never rewrites those, so a rewrite (`truncate_from`) stays in memory."""

    __slots__ = ("entries", "offset", "first", "prev_term", "stable", "held_bytes")

    def __init__(self, entries: Sequence[Entry] = (), first_index: int = 1, prev_term: int = 0,
                 stable: StableLog | None = None):
        self.entries: list[Entry] = list(entries)
        self.first = first_index         # the log's first index (after a trim)
        self.offset = self.entries[0].index if self.entries else first_index   # index of entries[0]
        self.prev_term = prev_term       # term of the entry at first_index - 1 (0 if none)
        self.stable = stable
        self.held_bytes = sum(len(e.data) for e in self.entries)    # the data of the entries in memory
        assert stable is not None or self.offset == first_index, "entries below offset need a stable reader"
        assert all(e.index == self.offset + i for i, e in enumerate(self.entries)), "log has gaps"

    @property
    def first_index(self) -> int:
        return self.first

    @property
    def last_index(self) -> int:
        return self.offset + len(self.entries) - 1

    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else (self.term(self.offset - 1) or 0)

    def term(self, index: int) -> int | None:
        """Term of the entry at index; None if unknown (trimmed away or past the end)."""
        if index >= self.offset:
            return self.entries[index - self.offset].term if index <= self.last_index else None
        if index >= self.first:
            return self.stable.term(index)     # released from memory
        return self.prev_term if index == self.first - 1 else None

    def slice(self, lo: int, hi: int) -> list[Entry]:
        """Entries with lo <= index <= hi."""
        lo = max(lo, self.first)
        if lo >= self.offset:
            return self.entries[lo - self.offset: hi - self.offset + 1]
        older = self.stable.slice(lo, min(hi, self.offset - 1))
        return older + self.entries[:hi - self.offset + 1] if hi >= self.offset else older

    def truncate_from(self, index: int) -> None:
        assert index >= self.offset, f"rewriting released (committed) entries from {index}"
        self._drop(slice(index - self.offset, None))

    def append(self, entries: Iterable[Entry]) -> None:
        entries = list(entries)
        self.entries.extend(entries)
        self.held_bytes += sum(len(e.data) for e in entries)

    def _drop(self, part: slice) -> None:
        self.held_bytes -= sum(len(e.data) for e in self.entries[part])
        del self.entries[part]

    def restart_at(self, first_index: int, prev_term: int) -> None:
        """Forget every entry: the log now starts at first_index, after an entry of prev_term (LOG_START)."""
        self.entries = []
        self.held_bytes = 0
        self.first = self.offset = first_index
        self.prev_term = prev_term

    def compact(self, below: int) -> None:
        """Drop entries with index < below (they are applied everywhere they are needed)."""
        if below <= self.first:
            return
        below = min(below, self.last_index + 1)
        self.prev_term = self.term(below - 1) or 0
        self.first = below
        if below > self.offset:
            self._drop(slice(None, below - self.offset))
            self.offset = below

    def release(self, below: int) -> None:
        """Drop entries below `below` from memory (never the last one); `stable` holds them durably."""
        below = min(below, self.last_index)
        if self.stable is None or below <= self.offset:
            return
        self._drop(slice(None, below - self.offset))
        self.offset = below


class RaftNode:
    """One member of one Raft group. See the module docstring for the driver's contract."""

    def __init__(self, node_id: str, peers: Sequence[str], rng: random.Random, config: Config = Config(),
                 hard_state: HardState = HardState(), log: RaftLog | None = None, applied: int = 0):
        assert node_id in peers, "peers lists every member, this node included"
        self.id = node_id
        self.peers = tuple(sorted(peers))
        self.rng = rng
        self.config = config
        self.log = log or RaftLog()
        self.term = hard_state.term
        self.vote = hard_state.vote
        self.commit = min(hard_state.commit, self.log.last_index)
        self.recovering = hard_state.recovering
        self.applied = max(applied, self.log.first_index - 1)
        assert self.applied <= self.commit or self.commit == 0 or self.applied <= self.log.last_index
        self.role = Role.FOLLOWER
        self.leader_id = ""
        self.progress: dict[str, Progress] = {}
        self.votes: dict[str, bool] = {}
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self._leader_ticks = 0         # ticks while leader, a clock for overdue probes
        self.randomized_election_timeout = 0
        self._msgs: list[Message] = []
        self._unstable_from = self.log.last_index + 1    # entries from here on are not yet persisted
        self._persisted_hard_state = HardState(self.term, self.vote, hard_state.commit, self.recovering)
        self._commit_sent: dict[str, int] = {}
        self._log_start: tuple[int, int] | None = None
        self._reset_election_timer()

    # -- public driver API ------------------------------------------------------------------------------------
    @property
    def quorum(self) -> int:
        return len(self.peers) // 2 + 1

    def hard_state(self) -> HardState:
        return HardState(self.term, self.vote, self.commit, self.recovering)

    def tick(self) -> None:
        if self.role is Role.LEADER:
            self._tick_leader()
        else:
            self.election_elapsed += 1
            if self.election_elapsed >= self.randomized_election_timeout:
                self.election_elapsed = 0
                if not self.recovering:
                    self._campaign(pre=self.config.pre_vote)

    def propose(self, datas: Sequence[bytes]) -> tuple[int, int]:
        """Append entries to the leader's log; returns their (first, last) index. They are committed once a
        majority has persisted them (watch `ready().committed`)."""
        if self.role is not Role.LEADER:
            raise NotLeader(self.leader_id)
        first = self.log.last_index + 1
        self.log.append(Entry(self.term, first + i, d) for i, d in enumerate(datas))
        self._broadcast_append()
        return first, self.log.last_index

    def campaign(self) -> None:
        """Start an election now (tests; leadership hand-over)."""
        if self.role is not Role.LEADER:
            self._campaign(pre=self.config.pre_vote)

    def ready(self) -> Ready:
        if self.role is Role.LEADER:
            self._propagate_commit()
        hs = self.hard_state()
        committed_hi = self.commit
        ready = Ready(
            hard_state=hs if hs != self._persisted_hard_state else None,
            entries=self.log.slice(self._unstable_from, self.log.last_index),
            messages=self._msgs,
            committed=self.log.slice(self.applied + 1, committed_hi) if committed_hi > self.applied else [],
            log_start=self._log_start,
        )
        self._msgs = []
        self._log_start = None
        return ready

    def has_ready(self) -> bool:
        """Whether ready() would return something (the driver loops until it doesn't)."""
        return bool(self._msgs or self._log_start or self._unstable_from <= self.log.last_index
                    or self.commit > self.applied
                    or self.hard_state() != self._persisted_hard_state
                    or (self.role is Role.LEADER and any(self._commit_sent.get(p, 0) < self.commit
                                                         and not pr.probing for p, pr in self.progress.items())))

    def advance(self, ready: Ready) -> None:
        """The driver has persisted, sent and applied `ready`."""
        if ready.hard_state is not None:
            self._persisted_hard_state = ready.hard_state
        if ready.entries:
            self._unstable_from = max(self._unstable_from, ready.entries[-1].index + 1)
        if ready.committed:
            self.applied = ready.committed[-1].index
        if self.role is Role.LEADER and ready.entries:
            self._maybe_commit()

    def compact(self, below: int) -> None:
        """Forget entries below `below` (they must be applied here)."""
        below = min(below, self.applied + 1)
        self.log.compact(below)

    def release_memory(self, keep: int, keep_bytes: int | None = None) -> None:
        """Let the log drop from memory all but the newest `keep` of the entries that are both applied and
        persisted here (its stable reader gives them back), and more of those while the entries in memory hold
        over `keep_bytes` of data (large writes); a no-op for a log without one."""
        log = self.log
        limit = min(self.applied, self._unstable_from - 1)
        below = limit + 1 - keep
        if keep_bytes is not None and log.held_bytes > keep_bytes and log.stable is not None:
            below = max(below, log.offset)
            entries, offset = log.entries, log.offset
            held = log.held_bytes - sum(len(e.data) for e in entries[:below - offset])
            while held > keep_bytes and below <= limit:
                held -= len(entries[below - offset].data)
                below += 1
        log.release(below)

    def step(self, m: Message) -> None:
        if m.term > self.term:
            if m.type in (MessageType.VOTE, MessageType.PRE_VOTE) and self._in_lease():
                # Check-quorum: we heard from a live leader within the election timeout, so this candidate is
                # disrupting a healthy cluster (e.g. it was partitioned away); ignore it (thesis §4.2.3).
                return
            if m.type is MessageType.PRE_VOTE or (m.type is MessageType.PRE_VOTE_RESP and not m.reject):
                pass   # pre-votes are about a future term; they change nobody's term
            else:
                leader = m.frm if m.type in _FROM_LEADER else ""
                self._become_follower(m.term, leader)
        elif m.term < self.term:
            if m.type in _FROM_LEADER:
                # A stale leader: tell it our term so it steps down (it may never hear a vote request from us,
                # since pre-vote keeps terms from rising needlessly).
                self._send(MessageType.APPEND_RESP, m.frm)
            elif m.type is MessageType.PRE_VOTE:
                self._send(MessageType.PRE_VOTE_RESP, m.frm, reject=True)
            return

        if m.type in (MessageType.VOTE, MessageType.PRE_VOTE):
            self._handle_vote_request(m)
        elif self.role is Role.LEADER:
            self._step_leader(m)
        elif self.role in (Role.CANDIDATE, Role.PRE_CANDIDATE):
            self._step_candidate(m)
        else:
            self._step_follower(m)

    # -- roles ------------------------------------------------------------------------------------------------
    def _become_follower(self, term: int, leader_id: str) -> None:
        if term != self.term:
            self.term = term
            self.vote = ""
        self.role = Role.FOLLOWER
        self.leader_id = leader_id
        self.progress = {}
        self._reset_election_timer()

    def _become_pre_candidate(self) -> None:
        self.role = Role.PRE_CANDIDATE
        self.leader_id = ""
        self.votes = {}
        self._reset_election_timer()

    def _become_candidate(self) -> None:
        self.term += 1
        self.vote = self.id
        self.role = Role.CANDIDATE
        self.leader_id = ""
        self.votes = {}
        self._reset_election_timer()

    def _become_leader(self) -> None:
        self.role = Role.LEADER
        self.leader_id = self.id
        last = self.log.last_index
        self.progress = {p: Progress(match=0, next=last + 1, probing=True) for p in self.peers if p != self.id}
        self._commit_sent = {}
        self.heartbeat_elapsed = 0
        self.election_elapsed = 0
        # An entry of our own term, so earlier-term entries can be committed through it (§5.4.2, §8).
        self.propose([b""])

    def _campaign(self, pre: bool) -> None:
        if len(self.peers) == 1:
            self._become_candidate()
            self._become_leader()
            return
        if pre:
            self._become_pre_candidate()
            term, mtype = self.term + 1, MessageType.PRE_VOTE
        else:
            self._become_candidate()
            term, mtype = self.term, MessageType.VOTE
        self.votes[self.id] = True
        for peer in self.peers:
            if peer != self.id:
                self._msgs.append(Message(mtype, self.id, peer, term, log_term=self.log.last_term(),
                                          index=self.log.last_index))

    def _handle_vote_request(self, m: Message) -> None:
        pre = m.type is MessageType.PRE_VOTE
        can_vote = not self.recovering and (self.vote == m.frm
                                            or (self.vote == "" and self.leader_id == "")
                                            or (pre and m.term > self.term))
        # §5.4.1: only vote for a candidate whose log is at least as up to date as ours.
        up_to_date = (m.log_term > self.log.last_term()
                      or (m.log_term == self.log.last_term() and m.index >= self.log.last_index))
        resp = MessageType.PRE_VOTE_RESP if pre else MessageType.VOTE_RESP
        if can_vote and up_to_date:
            # The reply carries the candidate's term so a granted pre-vote doesn't look like a stale answer.
            self._msgs.append(Message(resp, self.id, m.frm, m.term))
            if not pre:
                self.election_elapsed = 0
                self.vote = m.frm
        else:
            self._msgs.append(Message(resp, self.id, m.frm, self.term, reject=True))

    def _step_candidate(self, m: Message) -> None:
        expected = MessageType.PRE_VOTE_RESP if self.role is Role.PRE_CANDIDATE else MessageType.VOTE_RESP
        if m.type in _FROM_LEADER:
            self._become_follower(m.term, m.frm)
            self._step_follower(m)
        elif m.type is expected:
            self.votes[m.frm] = not m.reject
            granted = sum(self.votes.values())
            rejected = len(self.votes) - granted
            if granted >= self.quorum:
                if self.role is Role.PRE_CANDIDATE:
                    self._campaign(pre=False)
                else:
                    self._become_leader()
            elif rejected >= self.quorum:
                self._become_follower(self.term, "")

    def _step_follower(self, m: Message) -> None:
        if m.type is MessageType.APPEND:
            self.election_elapsed = 0
            self.leader_id = m.frm
            self._handle_append(m)
        elif m.type is MessageType.HEARTBEAT:
            self.election_elapsed = 0
            self.leader_id = m.frm
            if self.recovering:
                # The leader's min(match, commit) may rest on a match we have lost: tell it where we are.
                self._send(MessageType.HEARTBEAT_RESP, m.frm, reject_hint=self.log.last_index)
                return
            self._commit_to(m.commit)   # the leader sends min(match, commit): never beyond what we hold
            self._send(MessageType.HEARTBEAT_RESP, m.frm)
        elif m.type is MessageType.LOG_START:
            self.election_elapsed = 0
            self.leader_id = m.frm
            self._handle_log_start(m)

    def _handle_log_start(self, m: Message) -> None:
        if m.index <= self.commit or self.log.term(m.index) == m.log_term:
            # We hold the entry at the start point (Log Matching: and everything before it).
            self._send(MessageType.APPEND_RESP, m.frm, index=max(m.index, self.commit))
            return
        # Everything we hold at or after the start point is from another history (so not committed), and what is
        # before it is committed and trimmed: start our log where the leader's starts.
        self.log.restart_at(m.index + 1, m.log_term)
        self.commit = self.applied = m.index
        self._unstable_from = m.index + 1
        self._log_start = (m.index + 1, m.log_term)
        self._msgs = [x for x in self._msgs if x.type is not MessageType.APPEND_RESP or x.reject]
        self._send(MessageType.APPEND_RESP, m.frm, index=m.index)

    def _handle_append(self, m: Message) -> None:
        if m.index < self.commit:
            # Everything up to our commit index is known to match the leader (Log Matching).
            self._send(MessageType.APPEND_RESP, m.frm, index=self.commit)
            return
        if self.log.term(m.index) != m.log_term:
            # §5.3: reject, and suggest where to retry: our last index if we are short, otherwise just before the
            # conflicting term, so the leader skips a whole divergent term per round trip.
            if m.index > self.log.last_index:
                hint = self.log.last_index
            else:
                conflict_term = self.log.term(m.index)
                hint = m.index - 1
                while hint > self.commit and self.log.term(hint) == conflict_term:
                    hint -= 1
            self._send(MessageType.APPEND_RESP, m.frm, index=m.index, reject=True, reject_hint=hint)
            return
        new_entries = list(m.entries)
        for i, entry in enumerate(new_entries):
            existing = self.log.term(entry.index)
            if existing is None:
                self.log.append(new_entries[i:])
                break
            if existing != entry.term:
                assert entry.index > self.commit, "a committed entry would be overwritten"
                self.log.truncate_from(entry.index)
                self._unstable_from = min(self._unstable_from, entry.index)
                # Acks still queued (not yet sent: the driver has not handled our Ready) for entries we just
                # dropped would reach their leader after this Ready persisted the *new* suffix, promising what we no
                # longer hold; withdraw them (to that leader they are lost messages, which it retries).
                self._msgs = [x for x in self._msgs if x.type is not MessageType.APPEND_RESP or x.reject
                              or x.index < entry.index]
                self.log.append(new_entries[i:])
                break
        last_new = m.index + len(new_entries)
        self._commit_to(min(m.commit, last_new))
        if self.recovering and m.last_index and last_new >= m.last_index:
            self.recovering = False    # we hold this leader's whole log, so every committed entry: vote again
        self._send(MessageType.APPEND_RESP, m.frm, index=last_new)

    def _step_leader(self, m: Message) -> None:
        pr = self.progress.get(m.frm)
        if pr is None:
            return
        pr.recent_active = True
        if m.recovering and (m.reject or m.type is MessageType.HEARTBEAT_RESP) and m.reject_hint < pr.match:
            # The follower lost its log: what it acknowledged before is gone. Start over from where it is.
            pr.match = pr.match_at_heartbeat = 0
            pr.next = m.reject_hint + 1
            pr.probing, pr.probe_sent = True, False
            self._send_append(m.frm)
            return
        if m.type is MessageType.APPEND_RESP:
            if m.reject:
                # Ignore stale rejections: of an earlier probe, or of an append below what is already matched.
                if (pr.probing and m.index != pr.next - 1) or (not pr.probing and m.index <= pr.match):
                    return
                pr.next = max(pr.match + 1, min(m.index, m.reject_hint + 1))
                pr.probing = True
                pr.probe_sent = False
                self._send_append(m.frm)
            else:
                if m.index > pr.match:
                    pr.match = m.index
                    pr.next = max(pr.next, m.index + 1)
                    pr.probing = False
                    self._maybe_commit()
                elif pr.probing:
                    pr.next = max(pr.next, m.index + 1)
                    pr.probing = False
                pr.probe_sent = False
                if pr.next <= self.log.last_index:
                    self._send_append(m.frm)
        elif m.type is MessageType.HEARTBEAT_RESP:
            if pr.match < self.log.last_index:
                if pr.probing and pr.probe_sent and pr.probe_bytes >= self.config.large_append_bytes and \
                        self._leader_ticks - pr.probe_sent_at < self.config.election_ticks:
                    # A large probe may be slow rather than lost (a follower answers heartbeats while it saves):
                    # resending megabytes every heartbeat only adds to the follower's work.
                    return
                pr.probe_sent = False
                self._send_append(m.frm)

    def _tick_leader(self) -> None:
        self._leader_ticks += 1
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.config.election_ticks:
            self.election_elapsed = 0
            if self.config.check_quorum:
                active = 1 + sum(pr.recent_active for pr in self.progress.values())
                for pr in self.progress.values():
                    pr.recent_active = False
                if active < self.quorum:
                    self._become_follower(self.term, "")   # we lost our majority: stop acting as leader
                    return
        if self.heartbeat_elapsed >= self.config.heartbeat_ticks:
            self.heartbeat_elapsed = 0
            last = self.log.last_index
            for peer, pr in self.progress.items():
                if not pr.probing and pr.match < last and pr.match == pr.match_at_heartbeat:
                    # No progress for a whole heartbeat interval: an append was probably lost. Fall back to
                    # probing from the last known match (the heartbeat reply triggers the resend).
                    pr.probing, pr.probe_sent, pr.next = True, False, pr.match + 1
                pr.match_at_heartbeat = pr.match
                self._send(MessageType.HEARTBEAT, peer, commit=min(pr.match, self.commit))
                self._commit_sent[peer] = max(self._commit_sent.get(peer, 0), min(pr.match, self.commit))

    # -- replication helpers ----------------------------------------------------------------------------------
    def _broadcast_append(self) -> None:
        for peer in self.progress:
            self._send_append(peer)

    def _send_append(self, peer: str) -> None:
        pr = self.progress[peer]
        if pr.probing and pr.probe_sent:
            return
        if not pr.probing and pr.next - pr.match - 1 >= self.config.max_inflight_entries:
            return   # flow control: wait for acknowledgements. Not for a probe: it is one append, and while probing
                     # `match` is only a lower bound (0 for a new leader), so next - match could block it forever.
        prev = pr.next - 1
        prev_term = self.log.term(prev)
        if prev_term is None:
            # The follower needs entries we have trimmed (the trim policy, below every match, avoids it unless
            # the follower lost its log): tell it where our log starts.
            start = self.log.first_index - 1
            if prev < start <= self.commit:
                self._msgs.append(Message(MessageType.LOG_START, self.id, peer, self.term,
                                          log_term=self.log.prev_term, index=start, commit=self.commit,
                                          last_index=self.log.last_index))
                pr.probe_sent = pr.probing
            return
        hi = min(self.log.last_index, prev + self.config.max_entries_per_message)
        entries = tuple(self.log.slice(pr.next, hi))
        if not entries and not pr.probing and self.commit <= self._commit_sent.get(peer, 0):
            return
        self._msgs.append(Message(MessageType.APPEND, self.id, peer, self.term, log_term=prev_term, index=prev,
                                  entries=entries, commit=self.commit, last_index=self.log.last_index))
        self._commit_sent[peer] = self.commit
        if pr.probing:
            pr.probe_sent, pr.probe_sent_at = True, self._leader_ticks
            pr.probe_bytes = sum(len(e.data) for e in entries)
        else:
            pr.next = hi + 1   # optimistic: pipeline the next append without waiting

    def _propagate_commit(self) -> None:
        """Tell followers about a commit advance, batched into one message per Ready."""
        for peer, pr in self.progress.items():
            if self._commit_sent.get(peer, 0) < self.commit and not pr.probing:
                self._send_append(peer)

    def _maybe_commit(self) -> None:
        persisted = min(self.log.last_index, self._unstable_from - 1)
        matches = sorted([persisted] + [pr.match for pr in self.progress.values()], reverse=True)
        candidate = matches[self.quorum - 1]
        # §5.4.2: only entries of the current term are committed by counting replicas.
        if candidate > self.commit and self.log.term(candidate) == self.term:
            self.commit = candidate

    def _commit_to(self, index: int) -> None:
        if index > self.commit:
            self.commit = min(index, self.log.last_index)

    def _in_lease(self) -> bool:
        return (self.config.check_quorum and self.leader_id != "" and
                self.election_elapsed < self.config.election_ticks)

    def _send(self, mtype: MessageType, to: str, **fields) -> None:
        self._msgs.append(Message(mtype, self.id, to, self.term, recovering=self.recovering, **fields))

    def _reset_election_timer(self) -> None:
        self.election_elapsed = 0
        self.randomized_election_timeout = self.config.election_ticks + self.rng.randrange(self.config.election_ticks)
