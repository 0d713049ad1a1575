"""Core bugs the simulator found: the seeds that showed them (replayed by the sweep's generator; if the generator
changes, a seed may stop exercising its bug, hence also a hand-written scenario per bug)."""
from __future__ import annotations

import dataclasses
import random

import pytest

from txlog.raft.core import Config, Message, MessageType, RaftNode, Role

from .simulator import Faults, Simulator, run_seed

# seed -> the bug it found (core.py before the fix fails each of these seeds).
REGRESSION_SEEDS = {
    2: "flow control blocked probes: a new leader with a log longer than max_inflight_entries never replicated",
    105020: "a queued ack was sent for entries truncated (by a newer leader's append) before the Ready was handled",
}


@pytest.mark.parametrize("seed", sorted(REGRESSION_SEEDS))
def test_regression_seed(seed: int) -> None:
    run_seed(seed)

E = 5


def test_new_leader_replicates_a_log_longer_than_the_inflight_limit() -> None:
    """Found by the sweep (a liveness failure after healing): flow control held back *probes*. A new leader starts
    every follower at match=0, next=last+1, so next - match - 1 = last >= max_inflight_entries blocked every
    append forever once the log outgrew the limit (in production: a cluster whose log passed 65,536 entries
    could never replicate again after a leader change)."""
    config = Config(election_ticks=E, heartbeat_ticks=1, max_inflight_entries=2, max_entries_per_message=1)
    sim = Simulator(3, 3, config, Faults(delay_ticks_max=1))
    assert sim.run_ticks(10 * E, until=lambda: sim.leader() is not None) is not None
    first = sim.leader()
    for _ in range(6):
        sim.propose(first)
        sim.run_ticks(2)
    sim.run_ticks(4 * E, until=lambda: len({len(sim.applied[n]) for n in sim.ids}) == 1)
    # Force a leader change: the new leader's progress starts from match=0 for everybody.
    sim.partition([first], [n for n in sim.ids if n != first])
    assert sim.run_ticks(10 * E, until=lambda: sim.leader() not in (None, first)) is not None
    sim.heal()
    second = sim.leader()
    assert sim.node(second).log.last_index > config.max_inflight_entries
    assert sim.propose(second, b"after")
    index = sim.node(second).log.last_index
    took = sim.run_ticks(6 * E, until=lambda: all(len(sim.applied[n]) >= index for n in sim.ids))
    assert took is not None, "the new leader never replicated its log"
    sim.check_full()


def test_no_ack_for_entries_truncated_before_the_ready_was_handled() -> None:
    """Found by the sweep (seed 105020) through the check "an ack promises durable entries", with a lazy driver
    (several inputs before one Ready, as the contract allows): a follower queued an ack of index 2 (term 1) to the
    old leader, then, before its Ready was handled, a term-2 leader's append truncated that entry. The Ready
    persisted the new suffix and still sent the old ack, so the old leader counted a replica that did not exist.
    (The vote rule happens to keep that phantom replica from completing a false majority, but the ack broke the
    core's promise.) Now the queued ack is withdrawn."""
    sim = Simulator(0, 5, Config(election_ticks=10, pre_vote=False, check_quorum=False), Faults(delay_ticks_max=0))
    sim.campaign("n1")
    sim.stabilize()
    sim.partition(["n1", "n2"], ["n3", "n4", "n5"])
    sim.propose("n1", b"a")                                       # 2/1, on its way to n2 only
    sim.faults = dataclasses.replace(sim.faults, lazy_ready_prob=1.0)
    sim.deliver(_find(sim, to="n2"))                              # n2 takes 2/1; its ack waits in the Ready
    sim.faults = dataclasses.replace(sim.faults, lazy_ready_prob=0.0)
    sim.partition(["n1"], ["n2", "n3", "n4", "n5"])
    sim.campaign("n3")
    while (i := _find(sim, not_to="n2")) is not None:
        sim.deliver(i)
    assert sim.leader() == "n3" and sim.node("n1").role.name == "LEADER"   # two leaders, terms 1 and 2
    sim.faults = dataclasses.replace(sim.faults, lazy_ready_prob=1.0)
    sim.deliver(_find(sim, to="n2", type_name="APPEND"))          # the term-2 append truncates 2/1 on n2
    sim.drive("n2")                                               # raised InvariantViolation before the fix
    acks = [f.msg for f in sim.network if f.msg.to == "n1" and f.msg.type.name == "APPEND_RESP"]
    assert all(m.index < 2 or m.term > 1 for m in acks), acks


def _find(sim: Simulator, to: str | None = None, not_to: str | None = None, type_name: str | None = None) -> int | None:
    for i, f in enumerate(sim.network):
        if ((to is None or f.msg.to == to) and (not_to is None or f.msg.to != not_to)
                and (type_name is None or f.msg.type.name == type_name)):
            return i
    return None


def _appends_with_entries(core: RaftNode, peer: str) -> list[Message]:
    return [m for m in core.ready().messages if m.type is MessageType.APPEND and m.to == peer and m.entries]


def test_a_large_probe_is_resent_once_per_election_timeout_not_on_every_heartbeat_answer() -> None:
    """Found in a cluster (bench/README.md, session 12): a follower answers heartbeats while it is still saving a
    20 MB append, and the leader resent the probe on every answer (every 50 ms): 797 MB sent for five 20 MB
    writes, and the work kept every loop busy past an election timeout. A probe of large_append_bytes or more is
    now resent only once it is an election timeout old (it may really be lost); a small one still at once."""
    config = Config(election_ticks=10, heartbeat_ticks=2, pre_vote=False, check_quorum=False)
    leader = RaftNode("a", ["a", "b", "c"], random.Random(1), config)
    leader.campaign()
    leader.ready()
    leader.step(Message(MessageType.VOTE_RESP, "b", "a", leader.term))
    assert leader.role is Role.LEADER
    leader.propose([bytes(config.large_append_bytes)])
    leader.ready()                              # the first probe (the leader's empty entry) left before it
    answer = Message(MessageType.HEARTBEAT_RESP, "b", "a", leader.term)
    leader.step(answer)                         # a small probe is resent at once, now with the large entry
    resent = _appends_with_entries(leader, "b")
    assert len(resent) == 1 and sum(len(e.data) for e in resent[0].entries) == config.large_append_bytes
    for _ in range(config.election_ticks - 1):
        leader.tick()
        leader.step(answer)
        assert _appends_with_entries(leader, "b") == [], "a large probe was resent before it was overdue"
    leader.tick()
    leader.step(answer)
    assert len(_appends_with_entries(leader, "b")) == 1, "an overdue large probe was never resent"
