"""The checks are not vacuous: re-introduce classic Raft bugs into the core (source mutations of one method each)
and require the simulator to catch every one. If the core's text changes so a mutation no longer applies, the
test says so (update the mutation, don't delete it)."""
from __future__ import annotations

import inspect
import textwrap
from pathlib import Path

import pytest

import txlog.raft.core as core

from .simulator import InvariantViolation, run_seed
from .stories import run_story

TESTDATA = Path(__file__).parent / "testdata"
SEEDS_MAX = 300


def mutate(monkeypatch: pytest.MonkeyPatch, method: str, old: str, new: str) -> None:
    src = textwrap.dedent(inspect.getsource(getattr(core.RaftNode, method)))
    assert src.count(old) == 1, f"mutation site {old!r} not found once in RaftNode.{method}"
    namespace: dict = {}
    exec(compile(src.replace(old, new), f"<mutant {method}>", "exec"), vars(core).copy(), namespace)
    monkeypatch.setattr(core.RaftNode, method, namespace[method])


def first_failing_seed() -> tuple[int, str] | None:
    for seed in range(SEEDS_MAX):
        try:
            run_seed(seed)
        except (InvariantViolation, AssertionError) as e:
            return seed, str(e)
    return None


MUTANTS = {
    # §5.4.1 gone: votes for a candidate whose log is behind -> a leader lacking committed entries.
    "vote_ignores_log": ("_handle_vote_request", "if can_vote and up_to_date:", "if can_vote:"),
    # The vote is not recorded: two candidates of one term both get it -> two leaders in a term.
    "vote_not_recorded": ("_handle_vote_request", "self.vote = m.frm", "pass"),
    # A follower trusts the leader's commit beyond what this append proved matches.
    "commit_past_match": ("_handle_append", "self._commit_to(min(m.commit, last_new))", "self._commit_to(m.commit)"),
    # A truncated suffix is not marked unstable: the rewritten entries never reach the disk.
    "truncation_not_persisted": ("_handle_append", "self._unstable_from = min(self._unstable_from, entry.index)",
                                 "pass"),
}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_sweep_catches_mutant(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    method, old, new = MUTANTS[name]
    mutate(monkeypatch, method, old, new)
    found = first_failing_seed()
    assert found is not None, f"no seed below {SEEDS_MAX} catches the mutant {name}"
    print(f"{name}: caught by seed {found[0]}: {found[1].splitlines()[0]}")


def test_figure8_story_catches_commit_by_counting_old_term(monkeypatch: pytest.MonkeyPatch) -> None:
    """§5.4.2 gone: the leader commits an old-term entry on a majority; Figure 8 (d) then overwrites it."""
    mutate(monkeypatch, "_maybe_commit", "if candidate > self.commit and self.log.term(candidate) == self.term:",
           "if candidate > self.commit:")
    with pytest.raises(AssertionError):
        run_story(TESTDATA / "figure8.txt")
