"""Hypothesis drives the simulator rule by rule (deliver, deliver lazily + drive, drop, duplicate, tick, partition,
heal, crash, restart, propose), checking the safety invariants after every rule, so a failure shrinks to a short
schedule.

Message and node choices are indices taken modulo what exists, so every drawn value is valid and shrinks toward
"the oldest message" / "the first node". The Simulator's own checks run inside each rule; `check_full` re-derives
the global properties from scratch as the @invariant.
"""
from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from txlog.raft.core import Config

from .simulator import CALM, Simulator

# Short timeouts so a few dozen rules reach elections, re-elections and repairs.
CONFIG = Config(election_ticks=3, heartbeat_ticks=1, max_entries_per_message=2, max_inflight_entries=4)
NODE = st.integers(0, 4)
MSG = st.integers(0, 63)


class RaftMachine(RuleBasedStateMachine):
    sim: Simulator

    @initialize(seed=st.integers(0, 2**32 - 1), n=st.sampled_from([3, 5]), pre_vote=st.booleans(),
                check_quorum=st.booleans())
    def start(self, seed: int, n: int, pre_vote: bool, check_quorum: bool) -> None:
        config = Config(**{**{f: getattr(CONFIG, f) for f in CONFIG.__slots__}, "pre_vote": pre_vote,
                           "check_quorum": check_quorum})
        # Delay 0: messages are due at once and the rules alone decide order, loss and duplication.
        self.sim = Simulator(seed, n, config, CALM)

    def _node(self, i: int) -> str:
        return self.sim.ids[i % len(self.sim.ids)]

    def _has_msgs(self) -> bool:
        return bool(self.sim.network)

    @precondition(_has_msgs)
    @rule(i=MSG)
    def deliver(self, i: int) -> None:
        self.sim.deliver(i % len(self.sim.network), drop=False, duplicate=False)

    @precondition(_has_msgs)
    @rule(i=MSG)
    def deliver_lazily(self, i: int) -> None:
        """Step the message into its node but leave the Ready for later (`drive`): inputs pile up in one Ready."""
        self.sim.faults = dataclasses.replace(self.sim.faults, lazy_ready_prob=1.0)
        try:
            self.sim.deliver(i % len(self.sim.network), drop=False, duplicate=False)
        finally:
            self.sim.faults = dataclasses.replace(self.sim.faults, lazy_ready_prob=0.0)

    @rule(i=NODE)
    def drive(self, i: int) -> None:
        self.sim.drive(self._node(i))

    @precondition(_has_msgs)
    @rule()
    def deliver_all(self) -> None:
        """Everything in flight, oldest first (no new messages: those wait for later rules)."""
        for _ in range(len(self.sim.network)):
            if self.sim.network:
                self.sim.deliver(0, drop=False, duplicate=False)

    @precondition(_has_msgs)
    @rule(i=MSG)
    def drop(self, i: int) -> None:
        self.sim.drop(i % len(self.sim.network))

    @precondition(_has_msgs)
    @rule(i=MSG)
    def duplicate(self, i: int) -> None:
        self.sim.duplicate(i % len(self.sim.network))

    @rule(i=NODE, times=st.integers(1, 6))
    def tick(self, i: int, times: int) -> None:
        for _ in range(times):
            self.sim.tick([self._node(i)])

    @rule(times=st.integers(1, 6))
    def tick_all(self, times: int) -> None:
        for _ in range(times):
            self.sim.tick()

    @rule(mask=st.integers(1, 30))
    def partition(self, mask: int) -> None:
        side = [nid for k, nid in enumerate(self.sim.ids) if mask >> k & 1]
        other = [nid for nid in self.sim.ids if nid not in side]
        if side and other:
            self.sim.partition(side, other)

    @rule()
    def heal(self) -> None:
        self.sim.heal()

    @rule(i=NODE)
    def crash(self, i: int) -> None:
        self.sim.crash(self._node(i))

    @rule(i=NODE)
    def restart(self, i: int) -> None:
        self.sim.restart(self._node(i))

    @rule(i=st.one_of(st.none(), NODE), count=st.integers(1, 3))
    def propose(self, i: int | None, count: int) -> None:
        """To the leader (None) or to any node: a stale leader accepts entries it will lose."""
        self.sim.propose(None if i is None else self._node(i), count=count)

    @invariant()
    def safety(self) -> None:
        if hasattr(self, "sim"):
            self.sim.check_full()


RaftMachine.TestCase.settings = settings(settings(), stateful_step_count=80,
                                         suppress_health_check=[HealthCheck.too_slow])
TestRaftMachine = RaftMachine.TestCase
