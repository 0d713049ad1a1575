"""Core bugs the simulator found, pinned as scenarios (the seeds that found them predate later changes to the
schedule generator, so each is restated here as the smallest schedule that shows it)."""
from __future__ import annotations

from txlog.raft.core import Config

from .simulator import Faults, Simulator

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
