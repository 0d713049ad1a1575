"""Liveness under good conditions: elections finish in bounded time, proposals commit, pre-vote + check-quorum
keep a rejoining minority from disrupting the majority, an isolated leader steps down, divergent suffixes heal.

Bounds are in election timeouts (E = Config.election_ticks; a follower's timeout is randomized in [E, 2E)).
"""
from __future__ import annotations

import pytest

from txlog.raft.core import Config, Role

from .simulator import CALM, Faults, Simulator

E = 10
CONFIG = Config(election_ticks=E, heartbeat_ticks=2)
NET = Faults(delay_ticks_max=1)        # healthy network: every message arrives within a tick
SEEDS = range(40)


def _elect(sim: Simulator, ticks_max: int = 10 * E) -> str:
    took = sim.run_ticks(ticks_max, until=lambda: sim.leader() is not None)
    assert took is not None, f"seed={sim.seed}: no leader within {ticks_max} ticks"
    return sim.leader()


def _commit_everywhere(sim: Simulator, ticks_max: int, nodes: tuple[str, ...] | None = None) -> int:
    """Propose through the leader; return the ticks until every node in `nodes` applied it."""
    leader = sim.leader()
    assert leader is not None and sim.propose(leader, b"probe")
    index = sim.node(leader).log.last_index
    nodes = nodes or sim.up()
    took = sim.run_ticks(ticks_max, until=lambda: all(len(sim.applied[n]) >= index for n in nodes))
    assert took is not None, f"seed={sim.seed}: entry {index} not applied on {nodes} within {ticks_max} ticks"
    assert all(sim.applied[n][index - 1].data == b"probe" for n in nodes)
    return took


@pytest.mark.parametrize("n", [3, 5])
def test_first_election_and_commit_are_prompt(n: int) -> None:
    worst = 0
    for seed in SEEDS:
        sim = Simulator(seed, n, CONFIG, NET)
        took = sim.run_ticks(4 * E, until=lambda: sim.leader() is not None)
        # One randomized timeout (< 2E) plus pre-vote and vote round trips; a split vote costs another timeout.
        assert took is not None and took <= 4 * E, f"seed={seed}: first leader after {took} ticks"
        worst = max(worst, took)
        assert _commit_everywhere(sim, E) <= E   # a few one-way trips of <= 1 tick; laggards probe back
        sim.check_full()
    assert worst >= E, "timeouts are at least one election timeout"


@pytest.mark.parametrize("n", [3, 5])
def test_leader_is_elected_and_commits_after_faults_heal(n: int) -> None:
    chaos = Faults(drop_prob=0.2, dup_prob=0.1, delay_ticks_max=3, long_delay_prob=0.02, long_delay_ticks_max=3 * E,
                   partition_prob=0.03, heal_prob=0.02, crash_prob=0.02, restart_prob=0.05, propose_prob=0.2,
                   lazy_ready_prob=0.2, crash_mid_ready_prob=0.01)
    for seed in SEEDS:
        sim = Simulator(seed, n, CONFIG, chaos)
        sim.run_random(1500)
        took = sim.heal_and_check_liveness(ticks_max=12 * E)
        assert took <= 12 * E, f"seed={seed}"


@pytest.mark.parametrize("n,minority", [(3, 1), (5, 1), (5, 2)])
def test_rejoining_minority_does_not_disrupt_the_majority(n: int, minority: int) -> None:
    """Pre-vote keeps the cut-off nodes' terms still; check-quorum makes the majority ignore their votes."""
    for seed in SEEDS:
        sim = Simulator(seed, n, CONFIG, NET)
        leader = _elect(sim)
        _commit_everywhere(sim, 2 * E)
        term = sim.node(leader).term
        cut = [nid for nid in sim.ids if nid != leader][:minority]
        rest = [nid for nid in sim.ids if nid not in cut]
        sim.partition(cut, rest)
        for _ in range(5):
            sim.propose(leader)
            sim.run_ticks(4 * E)
        for nid in sim.ids:
            assert sim.node(nid).term == term, f"seed={seed}: {nid} moved to term {sim.node(nid).term} while cut off"
        assert sim.leader() == leader
        sim.heal()
        for _ in range(5):
            sim.propose(leader)
            sim.run_ticks(2 * E)
        assert sim.leader() == leader and sim.leader_of_term.keys() == {term}, f"seed={seed}: leadership changed"
        assert all(sim.node(nid).term == term for nid in sim.ids), f"seed={seed}: the rejoin raised a term"
        _commit_everywhere(sim, 2 * E)     # the rejoined nodes caught up


def test_without_pre_vote_a_rejoining_node_does_disrupt() -> None:
    """The contrast that makes the previous test meaningful: no pre-vote, and the cut-off node's term runs ahead
    and deposes the leader when it rejoins."""
    config = Config(election_ticks=E, heartbeat_ticks=2, pre_vote=False)
    sim = Simulator(1, 3, config, NET)
    leader = _elect(sim)
    term = sim.node(leader).term
    lone = [nid for nid in sim.ids if nid != leader][0]
    sim.partition([lone], [nid for nid in sim.ids if nid != lone])
    sim.run_ticks(6 * E)
    assert sim.node(lone).term > term + 1
    sim.heal()
    sim.run_ticks(4 * E)
    assert sim.node(leader).term > term


@pytest.mark.parametrize("n", [3, 5])
def test_isolated_leader_steps_down_within_two_election_timeouts(n: int) -> None:
    for seed in SEEDS:
        sim = Simulator(seed, n, CONFIG, NET)
        old = _elect(sim)
        sim.run_ticks(seed % (2 * E))          # isolate at various points of the check-quorum period
        old_term = sim.node(old).term
        sim.partition([old], [nid for nid in sim.ids if nid != old])
        sim.propose(old, b"lost")              # accepted by the stale leader, never committed
        took = sim.run_ticks(3 * E, until=lambda: sim.node(old).role is not Role.LEADER)
        assert took is not None and took <= 2 * E, f"seed={seed}: isolated leader stayed {took} ticks"
        new = _elect(sim)
        assert new != old and sim.node(new).term > old_term
        sim.heal()
        _commit_everywhere(sim, 2 * E)
        assert sim.node(old).role is Role.FOLLOWER and sim.node(old).leader_id == sim.leader()
        assert all(e.data != b"lost" for nid in sim.ids for e in sim.applied[nid])
        assert all(e.data != b"lost" for d in sim.disks.values() for e in d.entries), "uncommitted suffix kept"


def test_conflicting_uncommitted_suffixes_are_repaired() -> None:
    """Several stale leaders in a row accept entries they cannot commit (Figure 7's divergent followers); after
    healing, every log is the new leader's, byte for byte, and none of the lost entries was ever applied."""
    for seed in SEEDS:
        sim = Simulator(seed, 5, CONFIG, NET)
        lost = []
        for round_no in range(4):
            leader = _elect(sim)
            _commit_everywhere(sim, 2 * E, nodes=tuple(sim.up()))
            others = [nid for nid in sim.ids if nid != leader]
            # The leader keeps one follower; they append entries only the two of them hold.
            sim.partition([leader, others[0]], others[1:])
            for k in range(3):
                data = f"lost-{round_no}-{k}".encode()
                lost.append(data)
                sim.propose(leader, data)
            sim.run_ticks(1)
            sim.partition([leader], [others[0]], others[1:])
            sim.run_ticks(3 * E, until=lambda: sim.leader() not in (None, leader))
            sim.heal()
        _elect(sim)
        _commit_everywhere(sim, 4 * E)
        sim.run_ticks(2 * E)
        logs = {tuple(d.entries) for d in sim.disks.values()}
        assert len(logs) == 1, f"seed={seed}: logs still differ after healing"
        applied = {e.data for nid in sim.ids for e in sim.applied[nid]}
        assert not applied & set(lost), f"seed={seed}: an entry of a minority leader was applied"
        sim.check_full()


def test_stale_messages_after_heal_are_harmless() -> None:
    """Messages held back for many election timeouts arrive after newer terms exist."""
    for seed in SEEDS:
        sim = Simulator(seed, 3, CONFIG, Faults(delay_ticks_max=1, long_delay_prob=0.2, long_delay_ticks_max=8 * E,
                                                 propose_prob=0.3, crash_prob=0.01, restart_prob=0.05))
        sim.run_random(2000)
        assert sim.heal_and_check_liveness(ticks_max=12 * E) <= 12 * E


def test_calm_is_fault_free() -> None:
    assert CALM.drop_prob == CALM.dup_prob == CALM.crash_prob == CALM.partition_prob == 0
