"""Snapshots of a shard's replicated state, so the log can be trimmed (DESIGN.md "Snapshots and restart").

Theory of operation
-------------------
A snapshot is everything applying the log up to index i builds (the keyspace, the epoch and primary, the
exactly-once table...), taken by a replica, or by the primary when no replica has written one for twice the
interval (a shard with no live replica; memdb/node.py's PRIMARY_SNAPSHOT_AFTER). The node forks: the child writes the
state as it was at the fork (copy-on-write, as Redis's BGSAVE) while the parent goes on applying and serving. Once
the file is durable, the node asks the txlog to trim below the oldest snapshot kept (KEEP_SNAPSHOTS), less
TRIM_MARGIN_RECORDS, so a node can still start if the newest snapshot turns out unreadable; the txlog trims no
further than every txlog node already holds.

A node starts from the newest snapshot in its store and tails the log after it. A node whose tail falls below
the trim point (a replica stopped for a while) reloads the newest snapshot the same way.

The store is a directory shared by the shard's data nodes (the local cluster's `<dir>/snapshots`, a volume in
docker compose; in MemoryDB, S3). One file per snapshot, `<shard>-<index, 20 digits>.snap`:

    MAGIC (8) | format version (4, BE) | log index (8, BE) | body length (8, BE) | CRC-32 of the body (4, BE) | body

The body is a pickle (protocol 5) of a dict of plain state objects. It is read only from this store, which is as
trusted as a node's own data: pickle runs code while loading, so a store must never take files from elsewhere.
A file is written under a temporary name, fsynced, renamed into place and the directory fsynced, so a reader
sees a whole file or none; the CRC catches a file damaged after that. The newest KEEP_SNAPSHOTS are kept.
"""
from __future__ import annotations

import dataclasses
import fcntl
import gc
import os
import pickle
import re
import struct
import zlib
from typing import Any, BinaryIO

MAGIC = b"MEMDBSN\x01"
FORMAT_VERSION = 1
_HEADER = struct.Struct(">8sIQQI")
KEEP_SNAPSHOTS = 2
# Applied writes between two snapshots; each bounds what a restart replays (~8 s here) and what the log keeps.
# A snapshot of 1M small keys costs a forked child ~1 s of CPU.
SNAPSHOT_EVERY_ENTRIES = 1_000_000
TRIM_MARGIN_RECORDS = 1000     # log records kept below a snapshot, so a replica a little behind needs no reload


class SnapshotCorrupt(Exception):
    """A snapshot file that is not whole, not ours, or of another format version."""


@dataclasses.dataclass(frozen=True, slots=True)
class SnapshotFile:
    index: int          # the last log index the state includes
    path: str


class _CrcWriter:
    """A file-like object for pickle.Pickler that counts and checksums what passes through."""

    def __init__(self, file: BinaryIO):
        self.file = file
        self.crc = 0
        self.length = 0

    def write(self, data: bytes) -> int:
        self.crc = zlib.crc32(data, self.crc)
        self.length += len(data)
        return self.file.write(data)


class SnapshotStore:
    def __init__(self, directory: str, shard: str):
        self.directory = directory
        self.shard = shard
        self._name = re.compile(re.escape(shard) + r"-(\d{20})\.snap")
        os.makedirs(directory, exist_ok=True)

    def snapshots(self) -> list[SnapshotFile]:
        """This shard's snapshots, newest first."""
        found = []
        for name in os.listdir(self.directory):
            match = self._name.fullmatch(name)
            if match:
                found.append(SnapshotFile(int(match.group(1)), os.path.join(self.directory, name)))
        return sorted(found, key=lambda s: s.index, reverse=True)

    def newest_index(self) -> int:
        snapshots = self.snapshots()
        return snapshots[0].index if snapshots else 0

    def write(self, index: int, state: dict[str, Any]) -> SnapshotFile:
        """Write `state` as the snapshot at `index`, durably; then drop all but the newest KEEP_SNAPSHOTS."""
        final = os.path.join(self.directory, f"{self.shard}-{index:020d}.snap")
        temporary = os.path.join(self.directory, f".{self.shard}-{index:020d}.{os.getpid()}.tmp")
        try:
            with open(temporary, "wb") as f:
                f.write(bytes(_HEADER.size))
                body = _CrcWriter(f)
                pickle.Pickler(body, protocol=5).dump(state)
                f.seek(0)
                f.write(_HEADER.pack(MAGIC, FORMAT_VERSION, index, body.length, body.crc))
                f.flush()
                os.fsync(f.fileno())
            os.rename(temporary, final)
        except BaseException:
            _remove(temporary)
            raise
        self._sync_directory()
        for old in self.snapshots()[KEEP_SNAPSHOTS:]:
            _remove(old.path)
        return SnapshotFile(index, final)

    def read(self, snapshot: SnapshotFile) -> dict[str, Any]:
        with open(snapshot.path, "rb") as f:
            raw = f.read()
        if len(raw) < _HEADER.size:
            raise SnapshotCorrupt(f"{snapshot.path}: shorter than its header")
        magic, version, index, length, crc = _HEADER.unpack_from(raw)
        if magic != MAGIC:
            raise SnapshotCorrupt(f"{snapshot.path}: not a memdb snapshot")
        if version != FORMAT_VERSION:
            raise SnapshotCorrupt(f"{snapshot.path}: format version {version}, this memdb reads {FORMAT_VERSION}")
        body = memoryview(raw)[_HEADER.size:]
        if index != snapshot.index or len(body) != length or zlib.crc32(body) != crc:
            raise SnapshotCorrupt(f"{snapshot.path}: damaged (index, length or checksum does not match)")
        gc.disable()     # millions of new objects, none of them garbage: collections would only cost time
        try:
            return pickle.loads(body)
        except Exception as exc:     # whole (the checksum matched) but not loadable: written by other code
            raise SnapshotCorrupt(f"{snapshot.path}: cannot be loaded by this memdb: {exc!r}") from exc
        finally:
            gc.enable()

    def try_lock(self) -> int | None:
        """An exclusive lock on the store, so two nodes do not snapshot at once: a file descriptor to close
        (or to hand to a child, which then holds it until it exits), or None if another holds it."""
        fd = os.open(os.path.join(self.directory, f".{self.shard}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
