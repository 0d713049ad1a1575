"""txlog/storage.py: the LMDB log + hard state, the write-ahead log in front of it, trim, and corruption detection."""
import os
import random
import struct
import subprocess
import sys
import textwrap

import lmdb
import pytest
from hypothesis import given, settings, strategies as st

from txlog import storage as storage_module
from txlog.raft.core import Entry, HardState, RaftNode
from txlog.storage import WAL_FILE, WRITE_AHEAD_BYTES, GroupWrite, Storage, StorageCorrupt

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
    chunk (LMDB grows the file itself then), must all read back intact after a reopen. Each save is checkpointed
    at once, so each is an LMDB transaction."""
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
        s.checkpoint()
        used = (s.env.info()["last_pgno"] + 1) * s.env.stat()["psize"]
        assert os.path.getsize(os.path.join(path, "data.mdb")) >= used
    s.close()
    s = reopen(path)
    hs, log = s.load("shard0")
    assert hs.commit == index and [e.data for e in log.slice(1, index)] == [payloads[i] for i in range(1, index + 1)]
    s.save([GroupWrite("shard0", None, [Entry(1, index + 1, b"after")])])
    s.checkpoint()
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


def test_large_entries_are_kept_in_memory_within_a_byte_budget(path):
    """512 applied entries of 20 MB would be 10 GB in memory: with keep_bytes, loading and releasing keep the
    newest committed entries only while their data fits (at least one), and every entry still reads back."""
    s = reopen(path)
    big = [Entry(1, i, bytes([i]) * 1000) for i in range(1, 11)]
    s.save([GroupWrite("shard0", HardState(1, "", 8), big)])
    _, log = s.load("shard0", keep_in_memory=5, keep_bytes=2500)
    # committed up to 8: 7 and 8 fit in 2,500 bytes; 9 and 10 may be rewritten, so they stay whatever they weigh
    assert [e.index for e in log.entries] == [7, 8, 9, 10] and log.held_bytes == 4000
    assert log.slice(1, 10) == big
    core = RaftNode("a", ["a"], random.Random(1), log=log, hard_state=HardState(1, "", 8), applied=8)
    core.release_memory(5, keep_bytes=3500)
    assert [e.index for e in log.entries] == [8, 9, 10] and log.held_bytes == 3000
    core.release_memory(5, keep_bytes=0)             # never past what is applied and persisted here
    assert [e.index for e in log.entries] == [9, 10] and log.held_bytes == 2000
    _, small = s.load("shard0", keep_in_memory=5, keep_bytes=0)
    assert [e.index for e in small.entries] == [8, 9, 10]          # at least one committed entry
    assert small.slice(1, 10) == big
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


# -- the write-ahead log ---------------------------------------------------------------------------------------
def crash(s):
    """The process dies: nothing is checkpointed, the files are just closed (what is on disk stays)."""
    s._close_files()


def loaded(s, log):
    hs, raft_log = s.load(log)
    return hs, raft_log.first_index, raft_log.prev_term, raft_log.entries


def wal_bytes(path):
    with open(os.path.join(path, WAL_FILE), "rb") as f:
        return f.read()


def test_saves_survive_a_crash_before_any_checkpoint(path):
    s = reopen(path)
    s.save([GroupWrite("shard0", HardState(1, "a", 0, recovering=True), entries(1, 6))])
    s.save([GroupWrite("shard0", HardState(2, "", 3), entries(4, 5, term=2)),       # overwrites 4..6
            GroupWrite("cluster", HardState(5, "b", 1), entries(1, 1, term=5))])
    s.save([GroupWrite("shard0", HardState(2, "", 4, recovering=False), [], compact=(3, 1))])
    assert os.path.getsize(os.path.join(path, "data.mdb")) < 64 << 10, "nothing was checkpointed yet"
    crash(s)
    s = reopen(path)
    hs, log = s.load("shard0")
    assert hs == HardState(2, "", 4, recovering=False)
    assert (log.first_index, log.prev_term) == (3, 1)
    assert [(e.index, e.term) for e in log.entries] == [(3, 1), (4, 2), (5, 2)]
    assert s.load("cluster")[0] == HardState(5, "b", 1)
    crash(s)
    s = reopen(path)                     # the replay was checkpointed: the same again, from LMDB
    assert s.load("shard0")[0] == HardState(2, "", 4) and s.load("shard0")[1].last_index == 5
    s.close()


def test_a_record_cut_short_by_a_crash_is_dropped(path):
    s = reopen(path)
    s.save([GroupWrite("shard0", HardState(1, "", 0), entries(1, 2))])
    s.save([GroupWrite("shard0", None, entries(3, 4))])
    end = s._wal_offset
    crash(s)
    with open(os.path.join(path, WAL_FILE), "r+b") as f:      # the last record was being written: its end is zeros
        f.seek(end - 5)
        f.write(bytes(5))
    s = reopen(path)
    assert [e.index for e in s.load("shard0")[1].entries] == [1, 2]
    s.close()


def test_a_damaged_record_followed_by_whole_ones_is_corruption(path):
    s = reopen(path)
    for i in range(1, 4):
        s.save([GroupWrite("shard0", None, [Entry(1, i, b"payload-%d" % i)])])
    crash(s)
    data = wal_bytes(path)
    at = data.find(b"payload-1")
    with open(os.path.join(path, WAL_FILE), "r+b") as f:
        f.seek(at)
        f.write(b"X")
    with pytest.raises(StorageCorrupt, match="damaged, and records follow it"):
        reopen(path)


@pytest.mark.parametrize("length", [0xFFFF_FFFF, 0, "one more"])
def test_a_damaged_length_field_does_not_hide_the_records_after_it(path, length):
    """A record whose length field is damaged points past the file's end, or into the middle of what follows:
    the records after it are found all the same, and the store is corrupt rather than silently shorter."""
    s = reopen(path)
    for i in range(1, 4):
        s.save([GroupWrite("shard0", None, [Entry(1, i, b"payload-%d" % i)])])
    crash(s)
    with open(os.path.join(path, WAL_FILE), "r+b") as f:
        f.seek(4)                                      # the first record's length field
        true_length = struct.unpack(">I", f.read(4))[0]
        f.seek(4)
        f.write(struct.pack(">I", true_length + 1 if length == "one more" else length))
    with pytest.raises(StorageCorrupt, match="damaged, and records follow it"):
        reopen(path)


def test_records_of_an_older_generation_are_never_replayed(path):
    """After a checkpoint the WAL starts over at offset 0: a new record the size of the old first one leaves the
    old second one whole right behind it. It is already in LMDB, and replaying it would undo the new record."""
    s = reopen(path)
    s.save([GroupWrite("shard0", None, [Entry(1, 1, b"a" * 10)])])
    s.save([GroupWrite("shard0", None, [Entry(1, 2, b"b" * 10)])])
    s.checkpoint()
    s.save([GroupWrite("shard0", None, [Entry(2, 2, b"c" * 10)])])       # same size as the first record
    crash(s)
    s = reopen(path)
    assert [(e.index, e.term, e.data) for e in s.load("shard0")[1].entries] == [(1, 1, b"a" * 10),
                                                                                 (2, 2, b"c" * 10)]
    s.close()


def test_a_record_crafted_inside_a_value_is_never_replayed(path):
    """A client controls the data of its entries, and the WAL keeps stale records past its write offset after a
    checkpoint. A value embedding a whole record for the WAL's next generation, placed where the next
    generation's records end, must not be replayed after a crash: nobody can know the next generation."""
    s = reopen(path)
    # The format is public; the next generation is what an attacker would guess (they used to count up from 1).
    injected = [GroupWrite("shard0", HardState(99, "evil", 0), [Entry(1, 2, b"injected")])]
    crafted = b"".join(storage_module._wal_record(s._wal_gen + k, storage_module._encode_wal_payload(injected))
                       for k in range(1, 3))
    s.save([GroupWrite("shard0", HardState(1, "", 0), [Entry(1, 1, b"pad" + crafted)])])
    at = wal_bytes(path).find(crafted)
    s.checkpoint()                                     # the WAL starts over at 0; the value stays behind it
    filler = next(b"f" * n for n in range(at) if len(storage_module._wal_record(
        s._wal_gen, storage_module._encode_wal_payload([GroupWrite("shard0", None, [Entry(1, 2, b"f" * n)])]))) == at)
    s.save([GroupWrite("shard0", None, [Entry(1, 2, filler)])])
    assert s._wal_offset == at, "the crafted records sit right where the real ones end"
    crash(s)
    s = reopen(path)
    hs, log = s.load("shard0")
    assert hs == HardState(1, "", 0)
    assert [(e.index, e.data) for e in log.entries] == [(1, b"pad" + crafted), (2, filler)]
    s.close()


def test_a_checkpoint_starts_when_the_wal_is_full_and_reads_see_pending_saves(path, monkeypatch):
    monkeypatch.setattr(storage_module, "CHECKPOINT_BYTES", 3000)
    s = reopen(path)
    s.save([GroupWrite("shard0", HardState(1, "", 0), [Entry(1, 1, b"x" * 2000)])])
    assert s._pending and s._wal_offset > 2000
    assert [e.index for e in s.read_entries("shard0", 1, 1)] == [1]      # read from LMDB: checkpointed first
    assert not s._pending and s._wal_offset == 0
    s.save([GroupWrite("shard0", None, [Entry(1, 2, b"y" * 2000)])])
    s.save([GroupWrite("shard0", None, [Entry(1, 3, b"z" * 2000)])])     # past CHECKPOINT_BYTES
    assert not s._pending and s._wal_offset == 0
    assert s.stats["checkpoints"] == 2 and s.stats["checkpoint_saves"] == 3
    assert 0 < s.stats["checkpoint_max_us"] <= s.stats["checkpoint_us"]
    crash(s)
    s = reopen(path)
    assert [e.index for e in s.load("shard0")[1].entries] == [1, 2, 3]
    s.close()


@settings(max_examples=40)
@given(st.lists(st.tuples(st.sampled_from(["save", "save", "save", "checkpoint", "crash", "close"]),
                          st.sampled_from(LOGS), st.integers(0, 3), st.integers(0, 4), st.integers(0, 300),
                          st.booleans()), max_size=40))
def test_a_crash_at_any_point_loses_no_save(tmp_path_factory, ops):
    """Differential: a store that crashes and reopens anywhere (with a tiny WAL, so checkpoints and the WAL
    starting over happen often) loads what a store that checkpoints after every save loads."""
    base = tmp_path_factory.mktemp("wal")
    crashing, reference = str(base / "crashing"), str(base / "reference")
    original = storage_module.CHECKPOINT_BYTES
    storage_module.CHECKPOINT_BYTES = 700
    try:
        a, b = reopen(crashing), reopen(reference)
        last = {log: 0 for log in LOGS}
        committed = {log: 0 for log in LOGS}
        term = 1
        for op, log, back, count, size, with_state in ops:
            if op == "save":
                first = max(1, last[log] + 1 - back, committed[log] + 1)    # Raft never rewrites committed entries
                term += 1 if back else 0
                new = [Entry(term, i, os.urandom(size)) for i in range(first, first + count)]
                last[log] = new[-1].index if new else last[log]
                commit = min(first - 1, last[log])
                if with_state:
                    committed[log] = max(committed[log], commit)
                write = GroupWrite(log, HardState(term, "x" * (size % 3), commit,
                                                  recovering=bool(size % 2)) if with_state else None, new)
                a.save([write])
                b.save([write])
                b.checkpoint()
            elif op == "checkpoint":
                a.checkpoint()
            else:
                crash(a) if op == "crash" else a.close()
                a = reopen(crashing)
                for name in LOGS:
                    assert loaded(a, name) == loaded(b, name)
        crash(a)
        a = reopen(crashing)
        for name in LOGS:
            assert loaded(a, name) == loaded(b, name)
        a.close()
        b.close()
    finally:
        storage_module.CHECKPOINT_BYTES = original


def test_a_killed_writer_loses_no_acknowledged_save(path):
    """A real process, killed with SIGKILL while it saves: every save it reported done is there."""
    script = textwrap.dedent(f"""
        import sys
        from txlog.raft.core import Entry, HardState
        from txlog.storage import GroupWrite, Storage
        s = Storage({path!r}, {LOGS!r})
        for i in range(1, 100000):
            s.save([GroupWrite("shard0", HardState(1, "", i - 1), [Entry(1, i, b"%d" % i * 50)])])
            print(i, flush=True)
        """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                             cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    acknowledged = 0
    for line in child.stdout:
        acknowledged = int(line)
        if acknowledged >= 3000:           # past several checkpoints (~1 MiB of WAL each)
            child.kill()
            break
    child.wait()
    s = reopen(path)
    hs, log = s.load("shard0")
    assert log.last_index >= acknowledged
    assert all(e.data == b"%d" % e.index * 50 for e in log.entries)
    s.close()


def test_a_store_written_before_the_wal_opens_and_then_uses_one(path):
    s = reopen(path)
    s.save([GroupWrite("shard0", HardState(1, "", 2), entries(1, 2))])
    s.close()
    os.remove(os.path.join(path, WAL_FILE))        # as the store was before the WAL: no file, no generation
    _corrupt(path, lambda env, txn: txn.delete(b"wal_gen", db=env.open_db(b"meta", txn=txn)))
    s = reopen(path)
    assert s.load("shard0")[1].last_index == 2
    s.save([GroupWrite("shard0", HardState(1, "", 3), entries(3, 3))])
    crash(s)
    s = reopen(path)
    assert loaded(s, "shard0")[0] == HardState(1, "", 3) and s.load("shard0")[1].last_index == 3
    s.close()


def test_a_missing_wal_is_corruption(path):
    s = reopen(path)
    s.save([GroupWrite("shard0", HardState(1, "", 2), entries(1, 2))])
    crash(s)
    os.remove(os.path.join(path, WAL_FILE))
    with pytest.raises(StorageCorrupt, match="write-ahead log is missing"):
        reopen(path)
