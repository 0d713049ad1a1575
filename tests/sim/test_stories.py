"""The story files in testdata/ (see stories.py for the format; MEMDB_SIM_REWRITE=1 regenerates outputs)."""
from __future__ import annotations

from pathlib import Path

import pytest

from .stories import run_story

TESTDATA = Path(__file__).parent / "testdata"


@pytest.mark.parametrize("path", sorted(TESTDATA.glob("*.txt")), ids=lambda p: p.stem)
def test_story(path: Path) -> None:
    run_story(path)
