from memdb.commands.spec import CommandError
from memdb.dedup import DedupTable, TooOld

import pytest


def test_retry_gets_the_first_reply_and_is_not_applied_again():
    table = DedupTable()
    assert table.lookup("c1", 1) == (False, None)
    table.record("c1", 1, 5)
    assert table.lookup("c1", 1) == (True, 5)
    assert table.lookup("c1", 2) == (False, None)
    err = CommandError("WRONGTYPE x")
    table.record("c1", 2, err)
    assert table.lookup("c1", 2) == (True, err)


def test_window_and_client_bounds():
    table = DedupTable(window=3, max_clients=2)
    for seq in range(1, 6):
        table.record("a", seq, seq * 10)
    assert table.lookup("a", 5) == (True, 50)
    with pytest.raises(TooOld):
        table.lookup("a", 2)          # forgotten, but known to be applied: refuse, never re-apply
    table.record("b", 1, "x")
    table.record("c", 1, "y")         # evicts the least recently active client ("a")
    assert len(table) == 2
    assert table.lookup("a", 5) == (False, None)
