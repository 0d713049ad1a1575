"""Durable Raft state for one txlog node: one LMDB environment, all logs in it.

Layout (named sub-databases):
  entries:<log>   big-endian u64 index -> crc32(4) | term(8) | data        (one sub-db per log)
  hardstate       log name -> crc32(4) | term(8) | commit(8) | vote (utf-8)
  trim            log name -> first_index(8) | prev_term(8)                (after a Trim)
  meta            b"format" -> FORMAT
                  b"joining" -> b"" while a new store has not yet learned whether its cluster is new (server.join)
                  b"recovering:<log>" -> b"" while the log, lost with a previous store, catches up (HardState)
                  b"wal_gen" -> u64: the generation of the WAL records not yet in LMDB (below)

Group commit through a write-ahead log: `save()` appends every group's new entries, hard state and trim
(compaction) as ONE record to the file `wal` and fdatasyncs it once; it returns when the record is on disk. LMDB
is brought up to date by a *checkpoint*: every pending record applied in one write transaction, with the
environment opened sync=True, metasync=True (fully durable: LMDB flushes the data pages, then the meta page, so a
crash at any point leaves either the old or the new state). Why not an LMDB transaction per save, as before: its
commit flushes twice (data pages, then the meta page), and three nodes doing that on one disk cost 0.44-0.49 ms a
commit against 0.20 ms for one append + fdatasync (bench/README.md, session 10). A checkpoint runs once the WAL
holds CHECKPOINT_BYTES, before anything reads LMDB for entries still pending, and on close; it stores the WAL's
next generation (a random number, `_new_generation`) in the same transaction, and the WAL starts over at offset 0
with that generation.
Opening replays the records of the stored generation, from offset 0 to the first that is not whole (a record is
[crc32 | length | generation | payload], the crc covering the rest): records of an older generation are already
in LMDB, a record cut short by a crash was never acknowledged. An invalid record with a valid one of the same
generation anywhere after it is damage, not a crash (records are written one after the other, each synced before
the next), and raises StorageCorrupt; the later record is found by its generation field, so a damaged length field
cannot hide it. Replaying is a checkpoint, so each record reaches LMDB once. The driver's persister calls
`save()` one batch at a time, on the event loop's thread, or on its disk thread when the save is `heavy` (a large
record, or one that starts a checkpoint), and sends the messages that depend on what it wrote only after it returns.
A lock serializes the store's methods, so the loop may read entries back or close the store meanwhile. A hard state
whose only change is the commit index is not written on its own (see txlog/server.py): the stored commit may lag,
never lead, the stored log.

Write-ahead zeros: a commit whose pages land past the end of the file grows it, and its fdatasync then also has
to write the file's new size and block allocation. The log only grows, so nearly every commit did. A checkpoint
keeps zeros written ahead of LMDB's last page, a chunk at a time, so a commit only overwrites blocks the file
already has (with three nodes committing at once on one disk this took a commit from ~0.95 ms to ~0.65 ms,
bench/README.md); the WAL is kept a chunk ahead of its write offset the same way, and never shrinks. The zeros are
only ever written past a file's end, on the thread that runs the transactions: never over a page LMDB uses.

Reading back: a log keeps only its newest entries in memory (`load(keep_in_memory=...)`, RaftLog.release);
StoredEntries reads the others from here when a lagging follower or a tail from far back needs them.

Corruption: opening checks the file against the database's own size (a truncated file would otherwise fault when
read through the map) and refuses an existing but empty or unmarked store, or one whose WAL is missing once it
has used one (b"wal_gen" is written when the WAL is created); every record carries a CRC32; `load()`
checks every record, that indexes are contiguous from the trim point, and that the hard state's commit does not
point past the log. Any violation (or an LMDB error while reading) raises StorageCorrupt with the path and what is
wrong, so a damaged node refuses to start (txlog-server logs it and exits with status 2) instead of serving a wrong
log.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import os
import struct
import threading
import time
import zlib

import lmdb

from txlog.raft.core import Entry, HardState, RaftLog

FORMAT = b"txlog-1"
MAP_SIZE_BYTES = 16 << 30          # address space only; the file grows as needed
MAX_LOGS = 1000
MIN_PAGE_BYTES = 4096              # LMDB writes two meta pages when it creates a file
WRITE_AHEAD_BYTES = 512 << 10      # zeros kept written past LMDB's last page (see Storage._write_ahead)
_ZEROS = bytes(WRITE_AHEAD_BYTES)
WAL_FILE = "wal"
WAL_CHUNK_BYTES = 1 << 20          # zeros kept written past the WAL's write offset
CHECKPOINT_BYTES = 1 << 20         # fold the WAL into LMDB once it holds this much (~400 append batches of 2.5 KB)
HEAVY_SAVE_BYTES = 256 << 10       # a save at least this large is `heavy` (the server runs it off its event loop)
_WAL_GROUP_OVERHEAD = 128          # a group's vote and fixed fields in a WAL record, at most (votes are node ids)

_ENTRY_HEADER = struct.Struct(">IQ")        # crc32, term
_HARD_STATE = struct.Struct(">IQQ")         # crc32, term, commit
_TRIM = struct.Struct(">QQ")
_INDEX = struct.Struct(">Q")
_WAL_HEADER = struct.Struct(">IIQ")         # crc32 (of what follows it), payload length, generation
_WAL_GEN_AT = 8                             # the generation's offset in a record
_WAL_GROUP = struct.Struct(">BQQQQQQQI")    # flags, term, commit, compact (below, prev_term), restart (first,
                                            # prev_term), first entry's index, entry count
_WAL_ENTRY = struct.Struct(">QI")           # term, data length (indexes follow each other from the first)
_HAS_HARD_STATE, _RECOVERING, _HAS_COMPACT, _HAS_RESTART = 1, 2, 4, 8


def _locked(method):
    """Run the method holding the store's lock: the server may save on a worker thread (see `heavy`) while its
    loop reads entries back or closes the store."""
    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return locked


def _recovering_key(log: str) -> bytes:
    return b"recovering:" + log.encode()


class StorageCorrupt(Exception):
    pass


@dataclasses.dataclass(slots=True)
class GroupWrite:
    """What one Raft group asks to persist from one Ready."""
    log: str
    hard_state: HardState | None
    entries: list[Entry]
    compact: tuple[int, int] | None = None   # (below, prev_term): drop entries below `below` (after a trim)
    restart: tuple[int, int] | None = None   # (first, prev_term): drop every entry, the log starts at `first`


def _encode_wal_payload(writes: list["GroupWrite"]) -> bytes:
    """One save as bytes: per group, its name and vote (length-prefixed), the fixed fields, then its entries."""
    parts = []
    for w in writes:
        hs = w.hard_state
        flags = (_HAS_HARD_STATE | (_RECOVERING if hs.recovering else 0) if hs is not None else 0) | \
            (_HAS_COMPACT if w.compact is not None else 0) | (_HAS_RESTART if w.restart is not None else 0)
        name, vote = w.log.encode(), (hs.vote.encode() if hs is not None else b"")
        parts += [struct.pack(">H", len(name)), name, struct.pack(">H", len(vote)), vote,
                  _WAL_GROUP.pack(flags, hs.term if hs else 0, hs.commit if hs else 0, *(w.compact or (0, 0)),
                                  *(w.restart or (0, 0)), w.entries[0].index if w.entries else 0,
                                  len(w.entries))]
        for e in w.entries:
            parts += [_WAL_ENTRY.pack(e.term, len(e.data)), e.data]
    return b"".join(parts)


def _decode_wal_payload(payload: bytes) -> list["GroupWrite"]:
    """The inverse of _encode_wal_payload; raises ValueError/struct.error on bytes it did not write."""
    writes, view, at = [], memoryview(payload), 0

    def take(n: int) -> bytes:
        nonlocal at
        if at + n > len(view):
            raise ValueError("the record ends early")
        at += n
        return bytes(view[at - n:at])
    while at < len(view):
        name = take(struct.unpack(">H", take(2))[0]).decode()
        vote = take(struct.unpack(">H", take(2))[0]).decode()
        flags, term, commit, c_below, c_prev, r_first, r_prev, first, count = _WAL_GROUP.unpack(
            take(_WAL_GROUP.size))
        entries = []
        for index in range(first, first + count):
            e_term, length = _WAL_ENTRY.unpack(take(_WAL_ENTRY.size))
            entries.append(Entry(e_term, index, take(length)))
        hs = HardState(term, vote, commit, recovering=bool(flags & _RECOVERING)) \
            if flags & _HAS_HARD_STATE else None
        writes.append(GroupWrite(name, hs, entries, (c_below, c_prev) if flags & _HAS_COMPACT else None,
                                 (r_first, r_prev) if flags & _HAS_RESTART else None))
    return writes


def _new_generation(old: int = 0) -> int:
    """A random WAL generation (not 0, not `old`). Clients choose the bytes of their entries, and stale records
    stay in the WAL past its write offset: a value embedding a record of a generation a client could guess
    (they used to count up from 1) would be replayed after a crash as this node's own save."""
    while True:
        generation = int.from_bytes(os.urandom(8), "big")
        if generation not in (0, old):
            return generation


def _wal_record(generation: int, payload: bytes) -> bytes:
    rest = _WAL_HEADER.pack(0, len(payload), generation)[4:]
    return struct.pack(">I", zlib.crc32(payload, zlib.crc32(rest))) + rest + payload


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _encode_entry(entry: Entry) -> bytes:
    term = _INDEX.pack(entry.term)
    crc = zlib.crc32(entry.data, zlib.crc32(_INDEX.pack(entry.index) + term))    # the data is not copied for it
    return b"".join((struct.pack(">I", crc), term, entry.data))


class StoredEntries:
    """A RaftLog's stable reader (txlog/raft/core.py): the entries it released from memory, read back from the
    store. They are durable and committed, so the store holds them until a trim, below which the log never reads:
    one that is missing means a damaged store."""
    __slots__ = ("storage", "log")

    def __init__(self, storage: "Storage", log: str):
        self.storage, self.log = storage, log

    def term(self, index: int) -> int:
        return self.slice(index, index)[0].term

    def slice(self, lo: int, hi: int) -> list[Entry]:
        entries = self.storage.read_entries(self.log, lo, hi)
        if len(entries) != max(0, hi - lo + 1):
            raise StorageCorrupt(f"{self.storage.path}: log {self.log!r} lacks released entries in {lo}..{hi} "
                                 f"(found {len(entries)})")
        return entries


class Storage:
    def __init__(self, path: str, logs: list[str]):
        os.makedirs(path, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        data_file = os.path.join(path, "data.mdb")
        existed = os.path.exists(data_file)
        size = os.path.getsize(data_file) if existed else 0
        if existed and size < 2 * MIN_PAGE_BYTES:
            # LMDB would silently start a fresh, empty environment in an empty file: a node that forgot its log
            # and its votes must not rejoin the group as if it were new.
            raise StorageCorrupt(f"{data_file}: the file is truncated ({size} bytes); refusing to start with an "
                                 f"empty log (delete the directory only if this node's data is really gone)")
        try:
            self.env = lmdb.open(path, map_size=MAP_SIZE_BYTES, max_dbs=2 * MAX_LOGS + 4, subdir=True,
                                 sync=True, metasync=True, lock=True)
        except lmdb.Error as exc:
            raise StorageCorrupt(f"{path}: cannot open the LMDB environment: {exc}") from exc
        try:
            if existed:
                # Pages past the end of the file would fault (SIGBUS) when read through the map: check first.
                needed = (self.env.info()["last_pgno"] + 1) * self.env.stat()["psize"]
                if size < needed:
                    raise StorageCorrupt(f"{data_file}: the file is truncated: {size} bytes, but the database "
                                         f"uses {needed}")
            self._meta = self.env.open_db(b"meta")
            self._hard = self.env.open_db(b"hardstate")
            self._trim = self.env.open_db(b"trim")
            self._entries = {log: self.env.open_db(b"entries:" + log.encode()) for log in logs}
            with self.env.begin(write=True) as txn:
                fmt = txn.get(b"format", db=self._meta)
                if fmt is None and existed:
                    raise StorageCorrupt(f"{path}: the LMDB environment has no txlog format marker (damaged, "
                                         f"or not a txlog store)")
                if fmt is None:
                    txn.put(b"format", FORMAT, db=self._meta)
                    txn.put(b"joining", b"", db=self._meta)
                elif fmt != FORMAT:
                    raise StorageCorrupt(f"{path}: unknown storage format {fmt!r} (expected {FORMAT!r})")
                raw_gen = txn.get(b"wal_gen", db=self._meta)
            self.stats: collections.Counter = collections.Counter()   # checkpoints and their time (txlog Status)
            self._page_bytes = self.env.stat()["psize"]
            self._data_fd = os.open(data_file, os.O_WRONLY | os.O_CLOEXEC)
            # Logs marked recovering in LMDB; a checkpoint touches a mark only when the state differs.
            self._recovering = self._read_recovering_marks(logs)
            self._wal_gen = _new_generation() if raw_gen is None else _INDEX.unpack(raw_gen)[0]
            self._pending: list[GroupWrite] = self._open_wal(must_exist=raw_gen is not None)
            if raw_gen is None:      # a new store, or one written before the WAL: from now on the WAL must exist
                with self.env.begin(write=True) as txn:
                    txn.put(b"wal_gen", _INDEX.pack(self._wal_gen), db=self._meta)
            self._pending_low: dict[str, int] = {}      # log -> lowest entry index among the pending writes
            self.checkpoint()                           # replaying the WAL is a checkpoint
            with self.env.begin() as txn:
                self.joining = txn.get(b"joining", db=self._meta) is not None
        except lmdb.Error as exc:
            self._close_files()
            raise StorageCorrupt(f"{path}: the LMDB environment is damaged: {exc}") from exc
        except StorageCorrupt:
            self._close_files()
            raise

    @_locked
    def close(self) -> None:
        self.checkpoint()
        self._close_files()

    def _close_files(self) -> None:
        self.env.close()
        for name in ("_data_fd", "_wal_fd"):
            fd = getattr(self, name, -1)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)

    def _read_recovering_marks(self, logs: list[str]) -> set[str]:
        with self.env.begin() as txn:
            return {log for log in logs if txn.get(_recovering_key(log), db=self._meta) is not None}

    # -- the write-ahead log -----------------------------------------------------------------------------------
    def _open_wal(self, must_exist: bool) -> list[GroupWrite]:
        """Open (or create) the WAL and read the records of the current generation: the saves not in LMDB."""
        wal_path = os.path.join(self.path, WAL_FILE)
        created = not os.path.exists(wal_path)
        if created and must_exist:
            # Saves acknowledged since the last checkpoint may have been in it: as with a truncated data file, a
            # node that may have forgotten part of its log must not serve.
            raise StorageCorrupt(f"{wal_path}: the write-ahead log is missing (the store has used one)")
        self._wal_fd = os.open(wal_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        if created:
            _pwrite_all(self._wal_fd, bytes(WAL_CHUNK_BYTES), 0)
            os.fsync(self._wal_fd)
            dir_fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(dir_fd)      # the file's name is durable before any record in it is acknowledged
            finally:
                os.close(dir_fd)
        self._wal_end = os.fstat(self._wal_fd).st_size
        data = os.pread(self._wal_fd, self._wal_end, 0)
        writes, at = [], 0
        while True:
            record = self._wal_record_at(data, at)
            if record is None:
                break
            payload, at = record
            try:
                writes += _decode_wal_payload(payload)
            except (ValueError, struct.error, UnicodeDecodeError) as exc:
                raise StorageCorrupt(f"{wal_path}: the record at offset {at - len(payload) - _WAL_HEADER.size} "
                                     f"passes its checksum but cannot be read ({exc})") from exc
        # Not whole at `at`: cut short by a crash, unless a whole record follows (see the module docstring).
        # Looked for anywhere after it by its generation field, so a damaged length field hides nothing.
        marker = _INDEX.pack(self._wal_gen)           # never all zeros (no generation is 0), as free space is
        hit = data.find(marker, at + _WAL_GEN_AT + 1)
        while hit >= 0:
            if self._wal_record_at(data, hit - _WAL_GEN_AT) is not None:
                raise StorageCorrupt(f"{wal_path}: the record at offset {at} is damaged, and records follow it "
                                     f"(one at offset {hit - _WAL_GEN_AT})")
            hit = data.find(marker, hit + 1)
        self._wal_offset = 0           # the next generation starts over; this one is checkpointed first
        return writes

    def _wal_record_at(self, data: bytes, at: int) -> tuple[bytes, int] | None:
        """(payload, offset after it) of a whole record of the current generation at `at`, else None."""
        if at + _WAL_HEADER.size > len(data):
            return None
        crc, length, generation = _WAL_HEADER.unpack_from(data, at)
        end = at + _WAL_HEADER.size + length
        if generation != self._wal_gen or end > len(data):
            return None
        payload = data[at + _WAL_HEADER.size:end]
        if zlib.crc32(payload, zlib.crc32(data[at + 4:at + _WAL_HEADER.size])) != crc:
            return None
        return payload, end

    @_locked
    def checkpoint(self) -> None:
        """Apply every pending save to LMDB in one durable transaction, with the WAL's next generation."""
        if not self._pending:
            return
        started = time.perf_counter()
        self._write_ahead()
        with self.env.begin(write=True) as txn:
            recovering = set(self._recovering)
            for w in self._pending:
                self._apply(txn, w)
                if w.hard_state is not None:
                    (recovering.add if w.hard_state.recovering else recovering.discard)(w.log)
            for log_name in recovering - self._recovering:
                txn.put(_recovering_key(log_name), b"", db=self._meta)
            for log_name in self._recovering - recovering:
                txn.delete(_recovering_key(log_name), db=self._meta)
            next_gen = _new_generation(self._wal_gen)
            txn.put(b"wal_gen", _INDEX.pack(next_gen), db=self._meta)
        self._recovering = recovering       # committed
        elapsed_us = int(1e6 * (time.perf_counter() - started))
        self.stats["checkpoints"] += 1
        self.stats["checkpoint_saves"] += len(self._pending)
        self.stats["checkpoint_us"] += elapsed_us
        self.stats["checkpoint_max_us"] = max(self.stats["checkpoint_max_us"], elapsed_us)
        self._wal_gen = next_gen
        self._wal_offset = 0
        self._pending = []
        self._pending_low = {}

    # -- loading at start --------------------------------------------------------------------------------------
    @_locked
    def load(self, log: str, keep_in_memory: int | None = None,
             keep_bytes: int | None = None) -> tuple[HardState, RaftLog]:
        """The persisted hard state and log of one group, fully checked. With keep_in_memory, the log holds in
        memory only the newest that many committed entries (fewer if their data is over keep_bytes; at least one)
        and those that may not be committed (a new leader may rewrite them); it reads the others back from this
        store (see RaftLog)."""
        self.checkpoint()
        try:
            return self._load(log, keep_in_memory, keep_bytes)
        except lmdb.Error as exc:
            raise StorageCorrupt(f"{self.path}: log {log!r} cannot be read: {exc}") from exc

    def _load(self, log: str, keep_in_memory: int | None, keep_bytes: int | None) -> tuple[HardState, RaftLog]:
        with self.env.begin() as txn:
            first_index, prev_term = 1, 0
            raw = txn.get(log.encode(), db=self._trim)
            if raw is not None:
                if len(raw) != _TRIM.size:
                    raise StorageCorrupt(f"{self.path}: trim record of log {log!r} is truncated")
                first_index, prev_term = _TRIM.unpack(raw)
            hard_state = self._load_hard_state(txn, log)
            # Every entry is checked; committed ones are kept only while among the newest keep_in_memory and within
            # keep_bytes (at least one, so the log knows its end), the others all.
            committed: collections.deque[Entry] | list[Entry] = \
                [] if keep_in_memory is None else collections.deque(maxlen=max(keep_in_memory, 1))
            uncommitted: list[Entry] = []
            committed_bytes = 0
            expected = first_index
            for key, value in txn.cursor(db=self._entries[log]):
                index = self._check_key(log, key)
                if index < first_index:
                    continue   # left behind by a trim that crashed half-way; harmless, below the log
                if index != expected:
                    raise StorageCorrupt(f"{self.path}: log {log!r} has a gap: expected index {expected}, "
                                         f"found {index}")
                entry = self._decode_entry(log, index, value)
                if index <= hard_state.commit:
                    if keep_in_memory is not None and len(committed) == committed.maxlen:
                        committed_bytes -= len(committed[0].data)
                    committed.append(entry)
                    committed_bytes += len(entry.data)
                    while keep_in_memory is not None and keep_bytes is not None and committed_bytes > keep_bytes \
                            and len(committed) > 1:
                        committed_bytes -= len(committed.popleft().data)
                else:
                    uncommitted.append(entry)
                expected += 1
        raft_log = RaftLog(list(committed) + uncommitted, first_index=first_index, prev_term=prev_term,
                           stable=None if keep_in_memory is None else StoredEntries(self, log))
        if hard_state.commit > raft_log.last_index:
            raise StorageCorrupt(f"{self.path}: log {log!r} was committed up to {hard_state.commit} but holds "
                                 f"entries only up to {raft_log.last_index} (truncated log)")
        return hard_state, raft_log

    @_locked
    def read_entries(self, log: str, lo: int, hi: int) -> list[Entry]:
        """Stored entries lo..hi (checked); fewer if the log ends (or was trimmed) in that range."""
        if self._pending_low.get(log, hi + 1) <= hi:
            self.checkpoint()
        entries = []
        try:
            with self.env.begin() as txn:
                cursor = txn.cursor(db=self._entries[log])
                if hi < lo or not cursor.set_key(_INDEX.pack(lo)):
                    return entries
                for key, value in cursor:
                    index = self._check_key(log, key)
                    if index > hi:
                        break
                    entries.append(self._decode_entry(log, index, value))
        except lmdb.Error as exc:
            raise StorageCorrupt(f"{self.path}: log {log!r} cannot be read: {exc}") from exc
        return entries

    def _check_key(self, log: str, key: bytes) -> int:
        if len(key) != _INDEX.size:
            raise StorageCorrupt(f"{self.path}: log {log!r} has a malformed key {key!r}")
        return _INDEX.unpack(key)[0]

    def _decode_entry(self, log: str, index: int, value: bytes) -> Entry:
        if len(value) < _ENTRY_HEADER.size:
            raise StorageCorrupt(f"{self.path}: log {log!r} entry {index} is truncated")
        crc, term = _ENTRY_HEADER.unpack_from(value)
        if zlib.crc32(_INDEX.pack(index) + value[4:]) != crc:
            raise StorageCorrupt(f"{self.path}: log {log!r} entry {index} fails its checksum")
        return Entry(term, index, bytes(value[_ENTRY_HEADER.size:]))

    def _load_hard_state(self, txn, log: str) -> HardState:
        raw = txn.get(log.encode(), db=self._hard)
        if raw is None:
            return HardState()
        if len(raw) < _HARD_STATE.size:
            raise StorageCorrupt(f"{self.path}: hard state of log {log!r} is truncated")
        crc, term, commit = _HARD_STATE.unpack_from(raw)
        if zlib.crc32(raw[4:]) != crc:
            raise StorageCorrupt(f"{self.path}: hard state of log {log!r} fails its checksum")
        return HardState(term=term, commit=commit, vote=raw[_HARD_STATE.size:].decode(),
                         recovering=log in self._recovering)     # load() checkpoints first

    # -- writing -----------------------------------------------------------------------------------------------
    def heavy(self, writes: list[GroupWrite]) -> bool:
        """Whether saving `writes` would hold a thread long enough to stall an event loop: a large record (written
        and flushed whole) or one that starts a checkpoint (an LMDB transaction of everything in the WAL: ~5 ms for
        1 MiB of small batches, 0.1-0.3 s after a 20 MB write, longer than a Raft election timeout). The size is
        an upper bound, so a save that will checkpoint is always heavy."""
        size = _WAL_HEADER.size + sum(
            _WAL_GROUP_OVERHEAD + len(w.log) + sum(len(e.data) + _WAL_ENTRY.size for e in w.entries)
            for w in writes)
        return size >= HEAVY_SAVE_BYTES or self._wal_offset + size >= CHECKPOINT_BYTES

    @_locked
    def save(self, writes: list[GroupWrite]) -> None:
        """Persist all groups' writes as one WAL record: one fdatasync for the whole batch."""
        record = _wal_record(self._wal_gen, _encode_wal_payload(writes))
        end = self._wal_offset + len(record)
        if end + WAL_CHUNK_BYTES // 2 > self._wal_end:
            # Grow the file ahead of the records (see the module docstring): this fdatasync journals the new size,
            # the next ones only overwrite blocks the file has.
            grown = max(end, self._wal_end) + WAL_CHUNK_BYTES
            _pwrite_all(self._wal_fd, bytes(grown - self._wal_end), self._wal_end)
            self._wal_end = grown
        _pwrite_all(self._wal_fd, record, self._wal_offset)
        os.fdatasync(self._wal_fd)
        self._wal_offset = end
        self._pending += writes
        for w in writes:
            low = 0 if w.restart is not None else w.entries[0].index if w.entries else None
            if low is not None and low < self._pending_low.get(w.log, low + 1):
                self._pending_low[w.log] = low
        if self._wal_offset >= CHECKPOINT_BYTES:
            self.checkpoint()

    def _apply(self, txn, w: GroupWrite) -> None:
        db = self._entries[w.log]
        if w.restart is not None:
            self._truncate_from(txn, db, 0)
            txn.put(w.log.encode(), _TRIM.pack(*w.restart), db=self._trim)
        if w.entries:
            self._truncate_from(txn, db, w.entries[0].index)
            cursor = txn.cursor(db=db)
            cursor.putmulti([(_INDEX.pack(e.index), _encode_entry(e)) for e in w.entries], append=True)
        if w.hard_state is not None:
            hs = w.hard_state
            body = _HARD_STATE.pack(0, hs.term, hs.commit)[4:] + hs.vote.encode()
            txn.put(w.log.encode(), struct.pack(">I", zlib.crc32(body)) + body, db=self._hard)
        if w.compact is not None:
            self._compact(txn, w.log, *w.compact)

    @_locked
    def finish_joining(self, writes: list[GroupWrite]) -> None:
        """The store knows its place in the cluster: save `writes` (a recovering node's hard states), then drop the
        joining mark (a crash in between only makes the node ask its peers again)."""
        self.save(writes)
        self.checkpoint()
        with self.env.begin(write=True) as txn:
            txn.delete(b"joining", db=self._meta)
        self.joining = False

    def _write_ahead(self) -> None:
        """Keep at least half a chunk of zeros past LMDB's last page (see the module docstring). A transaction
        larger than that grows the file itself, which is only slower."""
        end = os.fstat(self._data_fd).st_size
        used = (self.env.info()["last_pgno"] + 1) * self._page_bytes
        if end - used < WRITE_AHEAD_BYTES // 2:
            os.pwrite(self._data_fd, _ZEROS, end)

    @staticmethod
    def _truncate_from(txn, db, index: int) -> None:
        """Delete stored entries >= index (a follower overwriting an uncommitted suffix)."""
        cursor = txn.cursor(db=db)
        if not cursor.last() or _INDEX.unpack(cursor.key())[0] < index:
            return
        if cursor.set_range(_INDEX.pack(index)):
            while cursor.delete():
                pass

    @_locked
    def compact(self, log: str, below: int, prev_term: int) -> None:
        """Drop entries below `below`; remembers the trim point so a restart knows where the log starts."""
        self.checkpoint()
        with self.env.begin(write=True) as txn:
            self._compact(txn, log, below, prev_term)

    def _compact(self, txn, log: str, below: int, prev_term: int) -> None:
        txn.put(log.encode(), _TRIM.pack(below, prev_term), db=self._trim)
        cursor = txn.cursor(db=self._entries[log])
        if cursor.first():
            while cursor.key() and _INDEX.unpack(cursor.key())[0] < below:
                if not cursor.delete():
                    break
