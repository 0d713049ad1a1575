"""A txlog node that lost its disk (txlog/raft/core.py "A node that lost its disk", txlog/server.py `join`): it
must not help elect a leader that lacks an entry its lost copy helped commit, and it must catch up and vote again.
The simulator's invariants (leader completeness, election safety, votes and acks durable before they are sent)
check every step."""
from __future__ import annotations

import random

import pytest

from txlog.raft.core import Config, Entry, HardState, Message, MessageType, RaftLog, RaftNode, Role

from .simulator import Faults, InvariantViolation, Simulator

E = 5
CONFIG = Config(election_ticks=E, heartbeat_ticks=1)


def elected(sim: Simulator) -> str:
    assert sim.run_ticks(20 * E, until=lambda: sim.leader() is not None) is not None, "no leader"
    return sim.leader()


def all_applied(sim: Simulator, index: int, nodes=None) -> bool:
    return all(len(sim.applied[n]) >= index for n in (nodes or sim.ids))


def commit_on_two(sim: Simulator) -> tuple[str, str, str, int]:
    """An entry committed by the leader and ONE follower (the third is cut off): (leader, holder, other, index)."""
    leader = elected(sim)
    holder, other = [n for n in sim.ids if n != leader]
    sim.partition([leader, holder], [other])
    assert sim.propose(leader, b"acked-by-two")
    index = sim.node(leader).log.last_index
    assert sim.run_ticks(4 * E, until=lambda: all_applied(sim, index, [leader, holder])) is not None
    assert sim.disks[other].term(index) is None, "the cut-off node must not hold it"
    return leader, holder, other, index


def test_a_wiped_node_does_not_elect_a_leader_without_what_it_acknowledged() -> None:
    sim = Simulator(7, 3, CONFIG, Faults(delay_ticks_max=1))
    leader, holder, other, index = commit_on_two(sim)
    sim.wipe(holder)                 # the entry is now on the leader's disk only
    sim.crash(leader)
    sim.heal()
    assert sim.node(holder).recovering
    # holder and other could form a majority, but holder abstains: no leader, rather than one without the entry.
    assert sim.run_ticks(30 * E, until=lambda: sim.leader() is not None) is None
    assert not any(sim.node(n).role is Role.LEADER for n in (holder, other))
    sim.restart(leader)
    new_leader = elected(sim)
    assert sim.propose(new_leader, b"after")
    last = sim.node(new_leader).log.last_index
    assert sim.run_ticks(20 * E, until=lambda: all_applied(sim, last)) is not None
    assert all(sim.applied[n][index - 1].data == b"acked-by-two" for n in sim.ids)
    assert not sim.node(holder).recovering
    sim.check_full()


def test_without_abstaining_the_same_story_loses_the_entry() -> None:
    """The check above can fail: a wiped node that comes back as a normal empty member (what txlog did before)
    votes the cut-off node in, and the simulator catches the lost entry."""
    sim = Simulator(7, 3, CONFIG, Faults(delay_ticks_max=1))
    leader, holder, other, index = commit_on_two(sim)
    sim.wipe(holder)
    sim.disks[holder] = type(sim.disks[holder])()        # no recovering mark, term 0: a fresh member
    sim.crash(holder)
    sim.restart(holder)
    sim.crash(leader)
    sim.heal()
    with pytest.raises(InvariantViolation, match="leader completeness"):
        sim.run_ticks(30 * E)


def test_a_wiped_follower_catches_up_under_load_and_votes_again() -> None:
    sim = Simulator(11, 3, CONFIG, Faults(delay_ticks_max=2, drop_prob=0.05, dup_prob=0.05))
    leader = elected(sim)
    for _ in range(30):
        sim.propose(leader)
        sim.run_ticks(1)
    follower = next(n for n in sim.ids if n != leader)
    sim.wipe(follower)
    assert sim.node(follower).term >= sim.node(leader).term
    for _ in range(30):
        sim.propose(sim.leader())
        sim.run_ticks(1)
    assert sim.run_ticks(40 * E, until=lambda: not sim.node(follower).recovering) is not None, "never caught up"
    last = sim.node(sim.leader()).log.last_index
    assert sim.run_ticks(20 * E, until=lambda: all_applied(sim, last)) is not None
    # It votes again: with the third node down, it and the old leader's replacement must elect someone.
    old = sim.leader()
    sim.crash(old)
    survivor = elected(sim)
    assert survivor != old
    assert sim.propose(survivor, b"two-left")
    last = sim.node(survivor).log.last_index
    assert sim.run_ticks(20 * E, until=lambda: all_applied(sim, last, [n for n in sim.ids if n != old])) is not None
    sim.check_full()


@pytest.mark.parametrize("seed", range(40))
def test_wipes_in_random_schedules_keep_every_invariant(seed: int) -> None:
    """Random faults (drops, duplicates, delays, partitions) with a node wiped now and then, never a second before
    the first has caught up (more than one lost disk at a time is beyond what three nodes tolerate)."""
    sim = Simulator(seed, 3, CONFIG, Faults(delay_ticks_max=3, drop_prob=0.05, dup_prob=0.05, partition_prob=0.01,
                                              heal_prob=0.05, propose_prob=0.3))
    for round_no in range(8):
        sim.run_random(300)
        if not any(sim.nodes[n] is not None and sim.node(n).recovering for n in sim.ids):
            sim.wipe(sim.ids[(seed + round_no) % 3])
    sim.heal_and_check_liveness(60 * E)
    assert not any(sim.node(n).recovering for n in sim.ids)
    sim.check_full()


def test_log_start_brings_an_empty_follower_to_a_trimmed_leader() -> None:
    """A leader whose log was trimmed cannot send what a wiped follower lacks; it sends LOG_START, the follower
    starts its log at the trim point and takes the rest as appends."""
    entries = [Entry(2, i, f"e{i}".encode()) for i in range(1, 21)]
    log = RaftLog(entries)
    log.compact(11)                                    # entries 1..10 trimmed; the log starts at 11
    leader = RaftNode("a", ["a", "b", "c"], random.Random(1), CONFIG,
                      hard_state=HardState(term=2, vote="a", commit=20), log=log, applied=20)
    leader.campaign()
    for m in leader.ready().messages:
        if m.type is MessageType.PRE_VOTE:
            leader.step(Message(MessageType.PRE_VOTE_RESP, m.to, "a", m.term))
    for m in leader.ready().messages:
        if m.type is MessageType.VOTE:
            leader.step(Message(MessageType.VOTE_RESP, m.to, "a", m.term))
    assert leader.role is Role.LEADER
    follower = RaftNode("b", ["a", "b", "c"], random.Random(2), CONFIG,
                        hard_state=HardState(term=leader.term, vote="b", recovering=True))
    starts = 0
    for _ in range(10):                                # deliver a <-> b until quiet
        ready = leader.ready()
        leader.advance(ready)
        to_b = [m for m in ready.messages if m.to == "b"]
        if not to_b:
            break
        for m in to_b:
            starts += m.type is MessageType.LOG_START
            follower.step(m)
        fr = follower.ready()
        if fr.log_start is not None:
            assert fr.log_start == (11, 2)
        follower.advance(fr)
        for m in fr.messages:
            leader.step(m)
    assert starts == 1
    assert follower.log.first_index == 11 and follower.log.last_index == leader.log.last_index
    assert [e.data for e in follower.log.slice(11, 21)] == [e.data for e in leader.log.slice(11, 21)]
    assert follower.commit == leader.commit and not follower.recovering
    assert leader.progress["b"].match == leader.log.last_index
