"""The stream value (Redis type "stream"): entries keyed by (ms, seq) ids, consumer groups, pending entries lists.

Theory of operation
-------------------
Redis 7.0 stores a stream as a radix tree of listpacks ("nodes"): each node starts with a master entry (the field
names of the node's first entry) and holds up to stream-node-max-entries (100) entries, live or deleted, within
stream-node-max-bytes (4096) bytes. XDEL and exact trimming only *flag* entries as deleted inside their node; a node
disappears only when its last live entry is deleted or when trimming drops it whole. Approximate trimming
(`MAXLEN ~` / `MINID ~`) drops whole nodes only, so its result depends on the node layout, and so does XINFO's
radix-tree-keys.

memdb keeps the entries themselves in one SortedDict (id -> flat field/value tuple, live entries only) and models
the node layout beside it: for every node its master id, master fields, live and deleted counts, the id of its last
entry (live or not) and its listpack size in bytes, computed with listpack's exact encoding sizes
(`lp_entry_size`). Node boundaries are therefore exactly Redis's, `~` trims exactly as Redis does, and XINFO's
radix-tree-keys matches. radix-tree-nodes is the node count of a canonical compressed radix tree of the node keys
(16-byte big-endian ids), which is what rax builds for fixed-length keys.

Everything here is a deterministic function of the commands applied: ids generated for `*` come from the caller's
`now_ms` (the log entry's), delivery and seen times are the caller's `now_ms`, and every ordered collection is a
SortedDict (never a Python set or a dict whose order could differ between nodes).
"""
from __future__ import annotations

from typing import Iterator

from sortedcontainers import SortedDict

from memdb.commands.args import is_int
from memdb.keyspace import register_type

StreamID = tuple[int, int]

UINT64_MAX = (1 << 64) - 1
MIN_ID: StreamID = (0, 0)
MAX_ID: StreamID = (UINT64_MAX, UINT64_MAX)
STREAM_NODE_MAX_BYTES = 4096        # stream-node-max-bytes (default)
STREAM_NODE_MAX_ENTRIES = 100       # stream-node-max-entries (default)
STREAM_LISTPACK_MAX_SIZE = 1 << 30  # t_stream.c: a listpack never grows past 1 GiB
INVALID_ENTRIES_READ = -1           # SCG_INVALID_ENTRIES_READ

FLAG_NONE = 0
FLAG_DELETED = 1
FLAG_SAMEFIELDS = 2


def format_id(stream_id: StreamID) -> bytes:
    return b"%d-%d" % stream_id


def incr_id(stream_id: StreamID) -> StreamID | None:
    """streamIncrID: the next id, or None past the last possible one."""
    ms, seq = stream_id
    if seq == UINT64_MAX:
        if ms == UINT64_MAX:
            return None
        return (ms + 1, 0)
    return (ms, seq + 1)


def decr_id(stream_id: StreamID) -> StreamID | None:
    """streamDecrID: the previous id, or None before 0-0."""
    ms, seq = stream_id
    if seq == 0:
        if ms == 0:
            return None
        return (ms - 1, UINT64_MAX)
    return (ms, seq - 1)


# -- listpack sizes (listpack.c) ------------------------------------------------------------------------------------
LP_HDR_SIZE = 6
LP_EOF_SIZE = 1


def _backlen_size(length: int) -> int:
    if length <= 127:
        return 1
    if length < 16383:
        return 2
    if length < 2097151:
        return 3
    if length < 268435455:
        return 4
    return 5


def lp_int_size(value: int) -> int:
    """Bytes one integer element takes in a listpack (encoding + backlen). `value` is a signed 64-bit int."""
    if 0 <= value <= 127:
        encoded = 1
    elif -4096 <= value <= 4095:
        encoded = 2
    elif -32768 <= value <= 32767:
        encoded = 3
    elif -8388608 <= value <= 8388607:
        encoded = 4
    elif -2147483648 <= value <= 2147483647:
        encoded = 5
    else:
        encoded = 9
    return encoded + 1


def lp_entry_size(element: bytes) -> int:
    """Bytes one string element takes: strings that are canonical 64-bit integers are stored as integers."""
    if is_int(element):
        return lp_int_size(int(element))
    size = len(element)
    if size < 64:
        encoded = 1 + size
    elif size < 4096:
        encoded = 2 + size
    else:
        encoded = 5 + size
    return encoded + _backlen_size(encoded)


def _as_int64(value: int) -> int:
    """How t_stream.c stores an unsigned 64-bit id delta: cast to int64_t."""
    value &= UINT64_MAX
    return value - (1 << 64) if value >= (1 << 63) else value


class Node:
    """One listpack of the radix tree: what Redis's layout decisions depend on (not the entries themselves)."""
    __slots__ = ("master_id", "master_fields", "live", "deleted", "body_bytes", "last_id")

    def __init__(self, master_id: StreamID, master_fields: tuple[bytes, ...]):
        self.master_id = master_id
        self.master_fields = master_fields
        self.live = 0
        self.deleted = 0
        # Every byte but the header/EOF and the two counters (whose size depends on their values).
        self.body_bytes = (lp_int_size(len(master_fields)) + sum(lp_entry_size(f) for f in master_fields)
                           + lp_int_size(0))
        self.last_id = master_id

    def lp_bytes(self) -> int:
        return LP_HDR_SIZE + LP_EOF_SIZE + lp_int_size(self.live) + lp_int_size(self.deleted) + self.body_bytes

    def append(self, stream_id: StreamID, fields: tuple[bytes, ...]) -> None:
        names = fields[0::2]
        same = names == self.master_fields
        size = lp_int_size(FLAG_SAMEFIELDS if same else FLAG_NONE)
        size += lp_int_size(_as_int64(stream_id[0] - self.master_id[0]))
        size += lp_int_size(_as_int64(stream_id[1] - self.master_id[1]))
        numfields = len(names)
        if same:
            size += sum(lp_entry_size(v) for v in fields[1::2])
            size += lp_int_size(numfields + 3)
        else:
            size += lp_int_size(numfields)
            size += sum(lp_entry_size(item) for item in fields)
            size += lp_int_size(2 * numfields + 4)
        self.body_bytes += size
        self.live += 1
        self.last_id = stream_id

    def copy(self) -> "Node":
        other = Node.__new__(Node)
        for name in Node.__slots__:
            setattr(other, name, getattr(self, name))
        return other


class Nack:
    """A pending entry: who has it, when it was last delivered, how many times."""
    __slots__ = ("delivery_time", "delivery_count", "consumer")

    def __init__(self, delivery_time: int, consumer: "Consumer | None", delivery_count: int = 1):
        self.delivery_time = delivery_time
        self.delivery_count = delivery_count
        self.consumer = consumer


class Consumer:
    __slots__ = ("name", "seen_time", "pel")

    def __init__(self, name: bytes, seen_time: int):
        self.name = name
        self.seen_time = seen_time
        self.pel: SortedDict = SortedDict()     # id -> Nack (the same objects as the group's PEL)


class Group:
    __slots__ = ("last_id", "entries_read", "pel", "consumers")

    def __init__(self, last_id: StreamID, entries_read: int):
        self.last_id = last_id
        self.entries_read = entries_read
        self.pel: SortedDict = SortedDict()         # id -> Nack
        self.consumers: SortedDict = SortedDict()   # name -> Consumer (rax order: bytes order)

    def create_consumer(self, name: bytes, now_ms: int) -> Consumer:
        consumer = Consumer(name, now_ms)
        self.consumers[name] = consumer
        return consumer

    def delete_consumer(self, consumer: Consumer) -> int:
        pending = len(consumer.pel)
        for stream_id in consumer.pel:
            del self.pel[stream_id]
        del self.consumers[consumer.name]
        return pending


class StreamValue:
    __slots__ = ("entries", "nodes", "last_id", "entries_added", "max_deleted_id", "groups")
    redis_type = "stream"

    def __init__(self) -> None:
        self.entries: SortedDict = SortedDict()     # id -> (f1, v1, f2, v2, ...), live entries only
        self.nodes: SortedDict = SortedDict()       # master id -> Node, the radix tree's keys
        self.last_id: StreamID = MIN_ID
        self.entries_added = 0
        self.max_deleted_id: StreamID = MIN_ID
        self.groups: SortedDict = SortedDict()      # name -> Group

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"StreamValue(len={len(self.entries)}, last_id={self.last_id})"

    def redis_encoding(self) -> str:
        return "stream"

    # -- reading ----------------------------------------------------------------------------------------------
    @property
    def first_id(self) -> StreamID:
        """recorded-first-entry-id: Redis keeps it equal to the first live entry (0-0 when empty)."""
        return self.entries.keys()[0] if self.entries else MIN_ID

    def last_valid_id(self) -> StreamID:
        """streamLastValidID: the last live entry's id (0-0 if empty)."""
        return self.entries.keys()[-1] if self.entries else MIN_ID

    def range(self, start: StreamID, end: StreamID, reverse: bool = False) -> Iterator[StreamID]:
        if start > end:
            return iter(())
        return self.entries.irange(start, end, reverse=reverse)

    def node_count(self) -> int:
        return len(self.nodes)

    def rax_node_count(self) -> int:
        """numnodes of a rax holding the node keys: the root, every branching prefix, every child of one, and
        every leaf (keys are all 16 bytes long, so none is a prefix of another)."""
        keys = [ms.to_bytes(8, "big") + seq.to_bytes(8, "big") for ms, seq in self.nodes.keys()]
        if not keys:
            return 1
        if len(keys) == 1:
            return 2
        nodes = {b""}
        for a, b in zip(keys, keys[1:]):
            common = 0
            while a[common] == b[common]:
                common += 1
            nodes.add(a[:common])                  # a branching prefix
            nodes.add(a[:common + 1])              # its children
            nodes.add(b[:common + 1])
        nodes.update(keys)
        return len(nodes)

    # -- writing ----------------------------------------------------------------------------------------------
    def append(self, stream_id: StreamID, fields: tuple[bytes, ...]) -> None:
        """streamAppendItem for an id already checked to be > last_id. Appends to the tail node if it has room
        (fewer than 100 entries counting deleted ones, and lp_bytes + the new strings' length < 4096 bytes)."""
        total_len = sum(len(item) for item in fields)
        tail = self.nodes.peekitem(-1)[1] if self.nodes else None
        if tail is not None:
            if tail.lp_bytes() + total_len >= STREAM_NODE_MAX_BYTES or \
                    tail.live + tail.deleted >= STREAM_NODE_MAX_ENTRIES:
                tail = None
        if tail is None:
            tail = Node(stream_id, tuple(fields[0::2]))
            self.nodes[stream_id] = tail
        tail.append(stream_id, fields)
        self.entries[stream_id] = fields
        self.entries_added += 1
        self.last_id = stream_id

    def _node_of(self, stream_id: StreamID) -> Node:
        index = self.nodes.bisect_right(stream_id) - 1
        assert index >= 0, f"entry {stream_id} has no node"
        return self.nodes.peekitem(index)[1]

    def delete(self, stream_id: StreamID) -> bool:
        """streamDeleteItem: flag one live entry deleted; its node goes when it held the last live entry."""
        if stream_id not in self.entries:
            return False
        node = self._node_of(stream_id)
        del self.entries[stream_id]
        if node.live == 1:
            del self.nodes[node.master_id]
        else:
            node.live -= 1
            node.deleted += 1
        return True

    def trim(self, maxlen: int | None, minid: StreamID | None, approx: bool, limit: int) -> int:
        """streamTrim: drop whole nodes from the head while allowed; unless approx, then flag entries of the
        first remaining node. `limit` (0 = none) caps the entries removed. Returns how many were removed."""
        deleted = 0
        while self.nodes:
            if maxlen is not None and len(self.entries) <= maxlen:
                break
            node = self.nodes.peekitem(0)[1]
            if limit and deleted + node.live > limit:
                break
            if maxlen is not None:
                remove_node = len(self.entries) - node.live >= maxlen
            else:
                remove_node = node.last_id < minid
            if remove_node:
                for stream_id in list(self._node_entries(node)):
                    del self.entries[stream_id]
                deleted += node.live
                del self.nodes[node.master_id]
                continue
            if approx:
                break
            removed = 0
            for stream_id in list(self._node_entries(node)):
                if maxlen is not None:
                    if len(self.entries) <= maxlen:
                        break
                elif stream_id >= minid:
                    break
                del self.entries[stream_id]
                removed += 1
            node.live -= removed
            node.deleted += removed
            deleted += removed
            break
        return deleted

    def _node_entries(self, node: Node) -> Iterator[StreamID]:
        index = self.nodes.index(node.master_id)
        if index + 1 < len(self.nodes):
            upper = self.nodes.keys()[index + 1]
            return self.entries.irange(node.master_id, upper, inclusive=(True, False))
        return self.entries.irange(node.master_id, None)

    # -- consumer groups ------------------------------------------------------------------------------------
    def range_has_tombstones(self, start: StreamID) -> bool:
        """streamRangeHasTombstones(s, start, NULL)."""
        if not self.entries or self.max_deleted_id == MIN_ID:
            return False
        if self.first_id > self.max_deleted_id:
            return False
        return start <= self.max_deleted_id

    def estimate_distance(self, stream_id: StreamID) -> int:
        """streamEstimateDistanceFromFirstEverEntry: the logical read counter of an id, or -1 if unknown."""
        if not self.entries_added:
            return 0
        if not self.entries and stream_id <= self.last_id:
            return self.entries_added
        if stream_id == self.last_id:
            return self.entries_added
        if stream_id > self.last_id:
            return INVALID_ENTRIES_READ
        first = self.first_id
        if self.max_deleted_id == MIN_ID or self.max_deleted_id < first:
            if stream_id < first:
                return self.entries_added - len(self.entries)
            if stream_id == first:
                return self.entries_added - len(self.entries) + 1
        return INVALID_ENTRIES_READ

    def group_lag(self, group: Group) -> int | None:
        """streamReplyWithCGLag: entries not yet delivered to the group, None when it can't be known."""
        if not self.entries_added:
            return 0
        if group.entries_read != INVALID_ENTRIES_READ and not self.range_has_tombstones(group.last_id):
            return self.entries_added - group.entries_read
        entries_read = self.estimate_distance(group.last_id)
        if entries_read != INVALID_ENTRIES_READ:
            return self.entries_added - entries_read
        return None

    def copy(self) -> "StreamValue":
        """A deep copy (COPY): groups, consumers and their shared pending entries included."""
        other = StreamValue()
        other.entries = SortedDict(self.entries)
        other.nodes = SortedDict((key, node.copy()) for key, node in self.nodes.items())
        other.last_id = self.last_id
        other.entries_added = self.entries_added
        other.max_deleted_id = self.max_deleted_id
        for name, group in self.groups.items():
            twin = Group(group.last_id, group.entries_read)
            consumers = {}
            for cname, consumer in group.consumers.items():
                consumers[cname] = twin.consumers[cname] = Consumer(cname, consumer.seen_time)
            for stream_id, nack in group.pel.items():
                owner = consumers[nack.consumer.name] if nack.consumer is not None else None
                copied = Nack(nack.delivery_time, owner, nack.delivery_count)
                twin.pel[stream_id] = copied
                if owner is not None:
                    owner.pel[stream_id] = copied
            other.groups[name] = twin
        return other


register_type(StreamValue, "stream")
