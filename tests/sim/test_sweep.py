"""The seed sweep: thousands of random fault schedules of the Raft core, each fully determined by its seed.

MEMDB_SIM_SCHEDULES (default 2,000; `make sim-long` sets 100,000) sets how many; MEMDB_SIM_SEED_BASE shifts the
seed range (default 0) to explore new schedules. A failure names its seed; `MEMDB_SIM_SEED=<seed> pytest tests/sim
-k replay` replays exactly that schedule and prints its trace.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import add_to_summary
from .simulator import REPRODUCE_HINT, InvariantViolation, run_seed

SCHEDULES = int(os.environ.get("MEMDB_SIM_SCHEDULES", "2000"))
SEED_BASE = int(os.environ.get("MEMDB_SIM_SEED_BASE", "0"))
CHUNK = 100      # seeds per test item: keeps each item far below the per-test timeout, at any total
REPLAY_SEED_DEFAULT = 7
TRACE_TAIL_LINES = 400
REPO = Path(__file__).resolve().parents[2]


def _chunks() -> list[range]:
    return [range(SEED_BASE + lo, SEED_BASE + min(lo + CHUNK, SCHEDULES)) for lo in range(0, SCHEDULES, CHUNK)]


@pytest.mark.parametrize("seeds", _chunks(), ids=lambda r: f"seeds{r.start}-{r.stop - 1}")
def test_sweep(seeds: range) -> None:
    for seed in seeds:
        try:
            sim = run_seed(seed)
        except InvariantViolation:
            raise
        except Exception as e:   # a crash of the core (an assert in it) is a failure of the seed, too
            raise AssertionError(f"seed={seed}: {type(e).__name__}: {e}\n" + REPRODUCE_HINT.format(seed=seed)) from e
        add_to_summary(sim.stats)


def _replay_seed() -> int:
    return int(os.environ.get("MEMDB_SIM_SEED", REPLAY_SEED_DEFAULT))


def test_replay() -> None:
    """Replay one seed (MEMDB_SIM_SEED) with its trace; on failure the trace's tail is printed."""
    seed = _replay_seed()
    traced: list[str] = []
    try:
        sim = run_seed(seed, trace=traced)
    except BaseException:
        print(f"--- trace of seed {seed}, last {TRACE_TAIL_LINES} lines ---")
        print("\n".join(traced[-TRACE_TAIL_LINES:]))
        raise
    print(f"seed {seed}: {sim.stats} trace={sim.trace_hash()}")


def test_replay_is_deterministic() -> None:
    """Same seed => same schedule, byte for byte: twice in this process, and in fresh interpreters whose string
    hashing differs (a choice that followed set/dict order of strings would show up here)."""
    seed = _replay_seed()
    first = run_seed(seed).trace_hash()
    assert run_seed(seed).trace_hash() == first
    code = ("import sys; from tests.sim.simulator import run_seed; "
            f"sys.stdout.write(run_seed({seed}).trace_hash())")
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                             check=True).stdout
        assert out == first, f"seed {seed} replays differently with PYTHONHASHSEED={hash_seed}"


def test_different_seeds_differ() -> None:
    assert len({run_seed(s).trace_hash() for s in range(5)}) == 5
