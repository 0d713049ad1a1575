"""WATCH versions (memdb/keyspace.py, "Versions"): only recently changed keys keep their own stamp, the others answer
their bucket's floor. Checked against a model that remembers every change: a key's version is never below its last
change and never above the last applied index, so a change after WATCH always changes the version; recently changed
keys are exact; and the answers do not depend on the process (CRC-32 buckets, not hash())."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from memdb import keyspace as ks
from memdb.keyspace import Keyspace

KEYS = [b"k%d" % i for i in range(12)]
OPS = st.lists(st.tuples(st.sampled_from(["set", "del", "next"]), st.sampled_from(KEYS)), max_size=300)


def _small(monkeypatch, recent: int = 4, buckets: int = 4) -> None:
    monkeypatch.setattr(ks, "MAX_RECENT_CHANGES", recent)
    monkeypatch.setattr(ks, "VERSION_BUCKETS", buckets)


@given(OPS)
def test_version_bounds_every_change(ops):
    with pytest.MonkeyPatch.context() as monkeypatch:
        _small(monkeypatch)
        _check_against_model(ops)


def _check_against_model(ops) -> None:
    keyspace = Keyspace(num_databases=1)
    db = keyspace.dbs[0]
    last_change = {}                    # the model: key -> index of its last change, never forgotten
    keyspace.current_index = 1
    for op, key in ops:
        if op == "next":                # the next log entry
            keyspace.current_index += 1
            continue
        if op == "set":
            db.set(key, b"v")
            last_change[key] = keyspace.current_index
        elif db.delete(key):
            last_change[key] = keyspace.current_index
        for k in KEYS:
            assert last_change.get(k, 0) <= db.version(k) <= keyspace.current_index
        recent = list(db.recent_changes)
        assert len(recent) <= ks.MAX_RECENT_CHANGES
        for k in recent:
            assert db.version(k) == last_change[k]


def test_watch_sees_a_change_after_its_stamp_was_forgotten(monkeypatch):
    _small(monkeypatch)
    keyspace = Keyspace(num_databases=1)
    db = keyspace.dbs[0]
    keyspace.current_index = 10
    db.set(b"watched", b"v")
    watched = db.version(b"watched")
    keyspace.current_index = 11
    db.set(b"watched", b"w")            # changed after WATCH ...
    for i in range(20):                 # ... and then pushed out of the FIFO
        keyspace.current_index += 1
        db.set(b"other%d" % i, b"v")
    assert b"watched" not in db.recent_changes
    assert db.version(b"watched") != watched


def test_a_hot_key_does_not_spoil_cold_watches(monkeypatch):
    _small(monkeypatch, recent=4, buckets=1)   # one bucket: every key shares the hot key's floor
    keyspace = Keyspace(num_databases=1)
    db = keyspace.dbs[0]
    for i in range(8):                  # the cold keys' stamps are forgotten
        keyspace.current_index += 1
        db.set(b"cold%d" % i, b"v")
    db.set(b"hot", b"v")
    watched = db.version(b"cold0")
    for _ in range(100):                # a hot key changes 100 times: it stays in the FIFO, nothing is forgotten
        keyspace.current_index += 1
        db.set(b"hot", b"v")
    assert db.version(b"cold0") == watched
    assert db.version(b"hot") == keyspace.current_index


def test_floors_use_crc32_buckets():
    keyspace = Keyspace(num_databases=1)
    db = keyspace.dbs[0]
    for i in range(ks.MAX_RECENT_CHANGES + 1):
        keyspace.current_index = i + 1
        db.set(b"key:%d" % i, b"v")
    # b"key:0" (stamp 1) was forgotten into bucket crc32(b"key:0") % 65536 = 2938 (the same in every process)
    assert ks.zlib.crc32(b"key:0") & (ks.VERSION_BUCKETS - 1) == 2938
    assert db.version_floors[2938] == 1
    assert db.version(b"key:0") == 1
    assert db.version(b"never-set") in (0, 1)
