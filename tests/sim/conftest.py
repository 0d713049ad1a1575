"""tests/sim: prints a one-line summary of the simulated schedules at the end of the run."""
from __future__ import annotations

from .simulator import Stats

SWEEP_TOTALS = {"schedules": 0, **{f: 0 for f in Stats.__slots__}}


def add_to_summary(stats: Stats) -> None:
    SWEEP_TOTALS["schedules"] += 1
    for f in Stats.__slots__:
        SWEEP_TOTALS[f] += getattr(stats, f)


def pytest_terminal_summary(terminalreporter) -> None:
    if SWEEP_TOTALS["schedules"]:
        terminalreporter.write_line("raft sim: " + ", ".join(f"{k}={v}" for k, v in SWEEP_TOTALS.items()))
