"""txlog/storage.py: the LMDB log + hard state, group commit, trim, and corruption detection."""
import os
import struct

import lmdb
import pytest

from txlog.raft.core import Entry, HardState
from txlog.storage import WRITE_AHEAD_BYTES, GroupWrite, Storage, StorageCorrupt

LOGS = ["cluster", "shard0"]


def entries(lo, hi, term=1):
    return [Entry(term, i, f"data-{i}".encode()) for i in range(lo, hi + 1)]


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "store")


def reopen(path):
    return Storage(path, LOGS)


def test_fresh_store_is_empty(path):
    s = reopen(path)
    hs, log = s.load("shard0")
    assert hs == HardState() and log.first_index == 1 and log.last_index == 0
    s.close()


def test_save_and_load_round_trip_all_groups_in_one_transaction(path):
    s = reopen(path)
    s.save([GroupWrite("shard0", HardState(3, "b", 4), entries(1, 5, term=3)),
            GroupWrite("cluster", HardState(2, "", 0), entries(1, 2, term=2))])
    s.close()
    s = reopen(path)
    hs, log = s.load("shard0")
    assert hs == HardState(3, "b", 4)
    assert log.entries == entries(1, 5, term=3)
    hs, log = s.load("cluster")
    assert hs == HardState(2, "", 0) and log.last_index == 2
    s.close()


def test_save_overwrites_a_suffix(path):
    s = reopen(path)
    s.save([GroupWrite("shard0", None, entries(1, 6, term=1))])
    s.save([GroupWrite("shard0", HardState(2, "", 3), entries(4, 4, term=2))])   # conflict at 4: 5, 6 go
    _, log = s.load("shard0")
    assert [(e.index, e.term) for e in log.entries] == [(1, 1), (2, 1), (3, 1), (4, 2)]
    s.close()


def test_compact_remembers_the_trim_point(path):
    s = reopen(path)
    s.save([GroupWrite("shard0", HardState(1, "", 10), entries(1, 10))])
    s.compact("shard0", 6, 1)
    s.save([GroupWrite("shard0", HardState(1, "", 11), entries(11, 11), compact=(8, 1))])
    s.close()
    s = reopen(path)
    hs, log = s.load("shard0")
    assert log.first_index == 8 and log.last_index == 11 and log.prev_term == 1
    assert [e.index for e in log.entries] == [8, 9, 10, 11]
    s.close()


def test_a_new_store_is_joining_until_it_knows_its_place(path):
    s = reopen(path)
    assert s.joining
    s.close()
    s = reopen(path)
    assert s.joining, "a crash before join finished must make the node ask its peers again"
    s.finish_joining([GroupWrite("shard0", HardState(7, "a", 0, recovering=True), [])])
    assert not s.joining
    s.close()
    s = reopen(path)
    assert not s.joining
    hs, _ = s.load("shard0")
    assert hs == HardState(7, "a", 0, recovering=True)
    assert s.load("cluster")[0] == HardState()
    s.save([GroupWrite("shard0", HardState(8, "", 5), entries(1, 5, term=8))])    # caught up: the mark goes
    s.close()
    s = reopen(path)
    assert s.load("shard0")[0] == HardState(8, "", 5, recovering=False)
    s.close()


def test_restart_drops_every_entry_and_starts_the_log_at_the_leaders_trim_point(path):
    s = reopen(path)
    s.save([GroupWrite("shard0", HardState(1, "", 3), entries(1, 6))])
    s.save([GroupWrite("shard0", HardState(2, "", 40), entries(41, 43, term=2), restart=(41, 2))])
    s.close()
    s = reopen(path)
    hs, log = s.load("shard0")
    assert (log.first_index, log.prev_term, log.last_index) == (41, 2, 43)
    assert [e.index for e in log.entries] == [41, 42, 43] and hs.commit == 40
    s.close()


def _corrupt(path, fn):
    env = lmdb.open(path, max_dbs=10, subdir=True)
    with env.begin(write=True) as txn:
        fn(env, txn)
    env.close()


def test_checksum_failure_of_an_entry(path):
    s = reopen(path)
    s.save([GroupWrite("shard0", HardState(1, "", 3), entries(1, 3))])
    s.close()

    def flip(env, txn):
        db = env.open_db(b"entries:shard0", txn=txn)
        key = struct.pack(">Q", 2)
        value = bytearray(txn.get(key, db=db))
        value[-1] ^= 1
        txn.put(key, bytes(value), db=db)
    _corrupt(path, flip)
    s = reopen(path)
    with pytest.raises(StorageCorrupt, match="entry 2 fails its checksum"):
        s.load("shard0")
    s.close()


def test_gap_and_malformed_key_and_truncated_entry(path):
    s = reopen(path)
    s.save([GroupWrite("shard0", HardState(1, "", 0), entries(1, 3))])
    s.close()
    _corrupt(path, lambda env, txn: txn.delete(struct.pack(">Q", 2), db=env.open_db(b"entries:shard0", txn=txn)))
    s = reopen(path)
    with pytest.raises(StorageCorrupt, match="gap"):
        s.load("shard0")
    s.close()
    _corrupt(path, lambda env, txn: txn.put(struct.pack(">Q", 2), b"\x00", db=env.open_db(b"entries:shard0", txn=txn)))
    s = reopen(path)
    with pytest.raises(StorageCorrupt, match="truncated"):
        s.load("shard0")
    s.save([GroupWrite("shard0", None, entries(1, 3))])    # repaired
    assert s.load("shard0")[1].last_index == 3
    s.close()
    _corrupt(path, lambda env, txn: txn.put(b"odd", b"x" * 20, db=env.open_db(b"entries:shard0", txn=txn)))
    s = reopen(path)
    with pytest.raises(StorageCorrupt, match="malformed key"):
        s.load("shard0")
    s.close()


def test_hard_state_checksum_and_commit_past_the_log(path):
    s = reopen(path)
    s.save([GroupWrite("shard0", HardState(1, "a", 9), entries(1, 3))])
    s.close()
    s = reopen(path)
    with pytest.raises(StorageCorrupt, match="committed up to 9"):
        s.load("shard0")
    s.close()

    def flip(env, txn):
        db = env.open_db(b"hardstate", txn=txn)
        value = bytearray(txn.get(b"shard0", db=db))
        value[6] ^= 1
        txn.put(b"shard0", bytes(value), db=db)
    _corrupt(path, flip)
    s = reopen(path)
    with pytest.raises(StorageCorrupt, match="hard state"):
        s.load("shard0")
    s.close()


def test_unknown_format_and_missing_marker(path):
    reopen(path).close()
    _corrupt(path, lambda env, txn: txn.put(b"format", b"other", db=env.open_db(b"meta", txn=txn)))
    with pytest.raises(StorageCorrupt, match="unknown storage format"):
        reopen(path)
    _corrupt(path, lambda env, txn: txn.delete(b"format", db=env.open_db(b"meta", txn=txn)))
    with pytest.raises(StorageCorrupt, match="no txlog format marker"):
        reopen(path)


@pytest.mark.parametrize("size", [0, 100, "half"])
def test_truncated_file(path, size):
    s = reopen(path)
    for i in range(20):
        s.save([GroupWrite("shard0", HardState(1, "", 0), [Entry(1, i + 1, os.urandom(3000))])])
    s.close()
    data_file = os.path.join(path, "data.mdb")
    with open(data_file, "r+b") as f:
        # half of the part that holds data: past it are the zeros written ahead of LMDB (see the next test)
        f.truncate(len(f.read().rstrip(b"\0")) // 2 if size == "half" else size)
    with pytest.raises(StorageCorrupt):
        reopen(path)


def test_zeros_written_ahead_never_cover_data(path):
    """The file is kept ahead of LMDB's last page; small and chunk-sized transactions, and one larger than a
    chunk (LMDB grows the file itself then), must all read back intact after a reopen."""
    s = reopen(path)
    payloads = {}
    index = 0
    for batch_bytes in [100, 5000, WRITE_AHEAD_BYTES // 2, 3 * WRITE_AHEAD_BYTES, 100, WRITE_AHEAD_BYTES]:
        batch = []
        for _ in range(4):
            index += 1
            payloads[index] = os.urandom(batch_bytes // 4 + 1)
            batch.append(Entry(1, index, payloads[index]))
        s.save([GroupWrite("shard0", HardState(1, "", index), batch)])
        used = (s.env.info()["last_pgno"] + 1) * s.env.stat()["psize"]
        assert os.path.getsize(os.path.join(path, "data.mdb")) >= used
    s.close()
    s = reopen(path)
    hs, log = s.load("shard0")
    assert hs.commit == index and [e.data for e in log.slice(1, index)] == [payloads[i] for i in range(1, index + 1)]
    s.save([GroupWrite("shard0", None, [Entry(1, index + 1, b"after")])])
    used = (s.env.info()["last_pgno"] + 1) * s.env.stat()["psize"]
    assert os.path.getsize(os.path.join(path, "data.mdb")) > used      # zeros ahead again after a reopen
    s.close()


def test_load_keeps_the_newest_committed_and_all_uncommitted_entries_in_memory(path):
    s = reopen(path)
    s.save([GroupWrite("shard0", HardState(2, "a", 30), entries(1, 20, term=1) + entries(21, 40, term=2))])
    s.close()
    s = reopen(path)
    full_hs, full = s.load("shard0")
    hs, log = s.load("shard0", keep_in_memory=5)
    assert hs == full_hs
    # committed up to 30: 26..30 are the newest five committed, 31..40 may still be rewritten by a new leader
    assert [e.index for e in log.entries] == list(range(26, 41))
    assert log.first_index == 1 and log.last_index == 40 and log.last_term() == 2
    assert log.slice(1, 40) == full.slice(1, 40) and log.slice(18, 27) == full.slice(18, 27)
    assert [log.term(i) for i in range(0, 42)] == [full.term(i) for i in range(0, 42)]
    log.release(38)                      # released entries come back from the store, checked
    assert log.offset == 38 and log.slice(1, 40) == full.slice(1, 40)
    s.close()


def test_a_released_entry_missing_from_the_store_is_corruption(path):
    s = reopen(path)
    s.save([GroupWrite("shard0", HardState(1, "", 10), entries(1, 10))])
    _, log = s.load("shard0", keep_in_memory=2)
    with s.env.begin(write=True) as txn:         # damage: entry 4 disappears from the store
        txn.delete(struct.pack(">Q", 4), db=s.env.open_db(b"entries:shard0", txn=txn))
    assert log.term(5) == 1
    with pytest.raises(StorageCorrupt, match="lacks released entries in 4..4"):
        log.term(4)
    with pytest.raises(StorageCorrupt, match="lacks released entries in 1..8"):
        log.slice(1, 10)
    s.close()


def test_released_entries_follow_a_trim(path):
    s = reopen(path)
    s.save([GroupWrite("shard0", HardState(1, "", 30), entries(1, 30))])
    _, log = s.load("shard0", keep_in_memory=3)
    log.compact(11)                      # as the txlog does: the log first, then the store (in the persister)
    s.compact("shard0", 11, 1)
    assert log.first_index == 11 and log.term(10) == 1 and log.term(9) is None
    assert [e.index for e in log.slice(1, 30)] == list(range(11, 31))
    s.close()
