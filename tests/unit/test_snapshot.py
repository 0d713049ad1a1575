"""memdb/snapshot.py: the snapshot store (atomic files, checksums, retention, the writers' lock), and that a
snapshot of a keyspace holding every data type gives back the same database."""
import os
import pickle
import zlib

import pytest

from memdb.access import AccessClock
from memdb.commands.dispatch import execute
from memdb.commands.spec import CommandError, Context, LazyRandom
from memdb.dedup import DedupTable
from memdb.keyspace import Keyspace
from memdb.snapshot import _HEADER, FORMAT_VERSION, KEEP_SNAPSHOTS, MAGIC, SnapshotCorrupt, SnapshotFile, SnapshotStore
from tests.integration.tools.canonical import dump_keyspace

NOW_MS = 1_700_000_000_000


def run(ks: Keyspace, *args, db: int = 0, now_ms: int = NOW_MS):
    ctx = Context(ks, ks.dbs[db], now_ms, LazyRandom(7))
    try:
        return execute(ctx, [a if isinstance(a, bytes) else str(a).encode() for a in args])
    except CommandError as exc:
        return exc


def test_written_snapshots_read_back_newest_first_and_only_the_newest_are_kept(tmp_path):
    store = SnapshotStore(str(tmp_path), "shard0")
    other = SnapshotStore(str(tmp_path), "shard1")
    assert store.snapshots() == [] and store.newest_index() == 0
    for index in (10, 30, 20):
        store.write(index, {"index": index, "payload": b"x" * index})
    other.write(99, {"index": 99})
    assert [s.index for s in store.snapshots()] == [30, 20][:KEEP_SNAPSHOTS]
    assert store.newest_index() == 30 and other.newest_index() == 99
    assert store.read(store.snapshots()[0]) == {"index": 30, "payload": b"x" * 30}
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_a_damaged_or_foreign_snapshot_is_refused(tmp_path):
    store = SnapshotStore(str(tmp_path), "shard0")
    snapshot = store.write(5, {"keys": list(range(1000))})
    raw = bytearray(open(snapshot.path, "rb").read())

    def refused_with(data: bytes, as_index: int = 5) -> str:
        with open(snapshot.path, "wb") as f:
            f.write(data)
        with pytest.raises(SnapshotCorrupt) as exc:
            store.read(SnapshotFile(as_index, snapshot.path))
        return str(exc.value)

    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0x40
    assert "damaged" in refused_with(bytes(flipped))
    assert "damaged" in refused_with(bytes(raw[:-10]))
    assert "damaged" in refused_with(bytes(raw), as_index=6)          # renamed: the header says another index
    assert "shorter than its header" in refused_with(bytes(raw[:12]))
    assert "not a memdb snapshot" in refused_with(b"REDIS0011" + bytes(raw[9:]))
    assert "format version 9" in refused_with(bytes(raw[:8]) + b"\x00\x00\x00\x09" + bytes(raw[12:]))
    with open(snapshot.path, "wb") as f:
        f.write(raw)
    assert store.read(snapshot) == {"keys": list(range(1000))}


def test_a_whole_but_unloadable_body_is_refused(tmp_path):
    """Checksum right, but the body names a class this code does not have (written by another version)."""
    store = SnapshotStore(str(tmp_path), "shard0")
    body = pickle.dumps({"file": SnapshotFile(1, "x")}, protocol=5).replace(b"SnapshotFile", b"SnapshotGone")
    path = os.path.join(str(tmp_path), "shard0-00000000000000000003.snap")
    with open(path, "wb") as f:
        f.write(_HEADER.pack(MAGIC, FORMAT_VERSION, 3, len(body), zlib.crc32(body)) + body)
    with pytest.raises(SnapshotCorrupt, match="cannot be loaded by this memdb"):
        store.read(store.snapshots()[0])


def test_only_one_writer_holds_the_lock(tmp_path):
    a, b = SnapshotStore(str(tmp_path), "shard0"), SnapshotStore(str(tmp_path), "shard0")
    fd = a.try_lock()
    assert fd is not None
    assert b.try_lock() is None
    os.close(fd)
    fd = b.try_lock()
    assert fd is not None
    os.close(fd)


def _keyspace_with_every_type() -> Keyspace:
    ks = Keyspace()
    run(ks, "SET", "s", "v")
    run(ks, "SET", "n", 12345)
    run(ks, "SET", "ttl", "v", "PX", 10_000_000)
    run(ks, "RPUSH", "l", *range(300))
    run(ks, "HSET", "h", "a", 1, "b", 2)
    run(ks, "HSET", "bh", *[x for i in range(200) for x in (f"f{i}", "x" * 70)])
    run(ks, "SADD", "si", 1, 2, 3)
    run(ks, "SADD", "ss", "a", "b", "c")
    run(ks, "ZADD", "z", 1, "a", 2.5, "b")
    run(ks, "ZADD", "bz", *[x for i in range(300) for x in (i, f"m{i}")])
    run(ks, "XADD", "st", "1-1", "f", "v")
    run(ks, "XADD", "st", "2-1", "f", "w")
    run(ks, "XGROUP", "CREATE", "st", "g", "0")
    run(ks, "XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "STREAMS", "st", ">")
    run(ks, "PFADD", "hll", "a", "b", "c")
    run(ks, "SETBIT", "bits", 100, 1)
    run(ks, "GEOADD", "geo", 13.361389, 38.115556, "Palermo")
    run(ks, "SET", "other-db", "x", db=3)
    run(ks, "FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('twice', "
                                "function(keys, args) return args[1] * 2 end)")
    run(ks, "SCRIPT", "LOAD", "return 'hi'")
    run(ks, "CONFIG", "SET", "notify-keyspace-events", "KEA")
    ks.set_notify_flags(5)
    return ks


QUESTIONS = [
    ("XINFO", "GROUPS", "st"), ("XPENDING", "st", "g"), ("XRANGE", "st", "-", "+"), ("OBJECT", "ENCODING", "bh"),
    ("OBJECT", "ENCODING", "si"), ("OBJECT", "ENCODING", "bz"), ("PEXPIRETIME", "ttl"), ("PFCOUNT", "hll"),
    ("GEOPOS", "geo", "Palermo"), ("FCALL", "twice", 0, 21),
    ("ZRANGE", "bz", 0, 5, "WITHSCORES"), ("LRANGE", "l", 100, 105), ("HGETALL", "h"), ("GETBIT", "bits", 100),
]


def test_a_keyspace_comes_back_whole_through_a_snapshot(tmp_path):
    ks = _keyspace_with_every_type()
    for i in range(20_000):       # enough changes to push WATCH stamps out to the version floors
        ks.current_index = 100 + i
        run(ks, "SET", f"churn:{i}", i)
    dedup = DedupTable()
    dedup.record("client-1", 1, b"first reply")
    store = SnapshotStore(str(tmp_path), "shard0")
    store.write(20_099, {"keyspace": ks, "dedup": dedup})
    state = store.read(store.snapshots()[0])

    restored = Keyspace()
    restored.access = access = AccessClock(lfu=False, now_ms=NOW_MS)   # node-local: survives a take-over
    restored.take_over(state["keyspace"])
    assert restored.access is access
    assert all(db._keyspace is restored for db in restored.dbs)
    assert dump_keyspace(restored, now_ms=None) == dump_keyspace(ks, now_ms=None)
    sha = run(ks, "SCRIPT", "LOAD", "return 'hi'")
    for question in QUESTIONS + [("EVALSHA", sha, 0)]:
        assert run(restored, *question) == run(ks, *question), question
    for key in (b"s", b"churn:0", b"churn:19999", b"never"):
        assert restored.dbs[0].version(key) == ks.dbs[0].version(key)
    assert restored.notify_flags == ks.notify_flags
    assert state["dedup"].lookup("client-1", 1) == (True, b"first reply")
    # The restored keyspace goes on as the original does.
    for k in (ks, restored):
        k.current_index = 30_000
        run(k, "XADD", "st", "3-1", "f", "x")
        run(k, "LPUSH", "l", "new")
        run(k, "HSET", "bh", "f0", "changed")
    assert dump_keyspace(restored, now_ms=None) == dump_keyspace(ks, now_ms=None)
    assert restored.dbs[0].version(b"l") == 30_000
