"""Cluster topology: shards, hash slots, nodes, zones, and who is primary of each shard.

The static part (which shard owns which slots, which data nodes serve which shard, in which zone, at which
address) comes from a topology file written by `memdb cluster up` (or by hand for docker compose). The dynamic
part, the primary of each shard, is decided through the logs: a node's own shard from the LEADERSHIP records of its
shard log, other shards from the `cluster` log, where each new primary publishes itself (newest epoch wins).

A one-shard cluster also answers plain non-cluster clients: no MOVED (it owns every slot) and no CROSSSLOT.
Pure: no I/O beyond reading the topology file.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

NUM_SLOTS = 16384


def _crc16_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC16 = _crc16_table()


def crc16(data: bytes) -> int:
    """CRC16-CCITT (XMODEM), the one Redis Cluster uses (cluster.c keyHashSlot)."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[((crc >> 8) ^ byte) & 0xFF]
    return crc


def key_slot(key: bytes) -> int:
    """The key's hash slot; only the part inside the first non-empty {...} counts, as in Redis."""
    start = key.find(b"{")
    if start != -1:
        end = key.find(b"}", start + 1)
        if end != -1 and end != start + 1:
            key = key[start + 1:end]
    return crc16(key) % NUM_SLOTS


def node_id(name: str) -> str:
    """A stable 40-hex-digit id, like Redis's, derived from the node's name."""
    return hashlib.sha1(name.encode()).hexdigest()


@dataclasses.dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    shard: str
    zone: str
    host: str
    port: int
    grpc_port: int = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclasses.dataclass(slots=True)
class Topology:
    shards: dict[str, list[tuple[int, int]]]          # shard -> slot ranges (inclusive)
    nodes: list[NodeInfo]
    primaries: dict[str, tuple[int, str]] = dataclasses.field(default_factory=dict)  # shard -> (epoch, name)
    _slot_owner: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self):
        owner = [""] * NUM_SLOTS
        for shard, ranges in self.shards.items():
            for lo, hi in ranges:
                for slot in range(lo, hi + 1):
                    owner[slot] = shard
        self._slot_owner = owner

    @classmethod
    def even(cls, shard_names: list[str], nodes: list[NodeInfo]) -> "Topology":
        """Slots split evenly between shards, in order (as redis-cli --cluster create does)."""
        n = len(shard_names)
        shards = {}
        for i, name in enumerate(shard_names):
            lo = i * NUM_SLOTS // n
            hi = (i + 1) * NUM_SLOTS // n - 1
            shards[name] = [(lo, hi)]
        return cls(shards, nodes)

    @classmethod
    def load(cls, path: str) -> "Topology":
        with open(path) as f:
            raw = json.load(f)
        return cls({s: [tuple(r) for r in ranges] for s, ranges in raw["shards"].items()},
                   [NodeInfo(**n) for n in raw["nodes"]])

    def dump(self) -> dict:
        return {"shards": {s: [list(r) for r in ranges] for s, ranges in self.shards.items()},
                "nodes": [dataclasses.asdict(n) for n in self.nodes]}

    @property
    def multi_shard(self) -> bool:
        return len(self.shards) > 1

    def shard_of_slot(self, slot: int) -> str:
        return self._slot_owner[slot]

    def note_primary(self, shard: str, epoch: int, name: str) -> None:
        current = self.primaries.get(shard)
        if current is None or epoch >= current[0]:
            self.primaries[shard] = (epoch, name)

    def node(self, name: str) -> NodeInfo | None:
        return next((n for n in self.nodes if n.name == name), None)

    def primary_of(self, shard: str) -> NodeInfo | None:
        current = self.primaries.get(shard)
        return self.node(current[1]) if current else None

    def shard_nodes(self, shard: str) -> list[NodeInfo]:
        """The shard's nodes, primary first."""
        primary = self.primary_of(shard)
        rest = [n for n in self.nodes if n.shard == shard and n != primary]
        return ([primary] if primary else []) + rest

    # -- CLUSTER replies ---------------------------------------------------------------------------------------
    def slots_reply(self) -> list:
        rows = []
        for shard, ranges in self.shards.items():
            nodes = self.shard_nodes(shard)
            if not nodes or self.primary_of(shard) is None:
                continue
            for lo, hi in ranges:
                rows.append([lo, hi, *[[n.host.encode(), n.port, node_id(n.name).encode()] for n in nodes]])
        return rows

    def shards_reply(self, applied: dict[str, int]) -> list:
        from memdb.commands.spec import Map
        out = []
        for shard, ranges in self.shards.items():
            primary = self.primary_of(shard)
            nodes = []
            for n in self.shard_nodes(shard):
                nodes.append(Map([(b"id", node_id(n.name).encode()), (b"port", n.port),
                                  (b"ip", n.host.encode()), (b"endpoint", n.host.encode()),
                                  (b"role", b"master" if n == primary else b"replica"),
                                  (b"replication-offset", applied.get(n.name, 0)),
                                  (b"health", b"online")]))
            out.append(Map([(b"slots", [x for r in ranges for x in r]), (b"nodes", nodes)]))
        return out

    def nodes_reply(self, myself: str) -> bytes:
        lines = []
        for shard, ranges in self.shards.items():
            primary = self.primary_of(shard)
            epoch = self.primaries.get(shard, (0, ""))[0]
            for n in self.shard_nodes(shard):
                flags = ["myself"] if n.name == myself else []
                is_primary = n == primary
                flags.append("master" if is_primary else "slave")
                master = "-" if is_primary or primary is None else node_id(primary.name)
                slots = " ".join(f"{lo}-{hi}" if lo != hi else str(lo) for lo, hi in ranges) if is_primary else ""
                lines.append(f"{node_id(n.name)} {n.host}:{n.port}@{n.port + 10000} {','.join(flags)} {master} "
                             f"0 0 {epoch} connected {slots}".rstrip())
        return ("\n".join(lines) + "\n").encode()

    def info_reply(self, my_epoch: int) -> bytes:
        known = len(self.nodes)
        assigned = sum(hi - lo + 1 for ranges in self.shards.values() for lo, hi in ranges)
        ok = all(self.primary_of(s) is not None for s in self.shards)
        current_epoch = max((e for e, _ in self.primaries.values()), default=0)
        fields = [("cluster_state", "ok" if ok else "fail"), ("cluster_slots_assigned", assigned),
                  ("cluster_slots_ok", assigned if ok else 0), ("cluster_slots_pfail", 0),
                  ("cluster_slots_fail", 0 if ok else assigned), ("cluster_known_nodes", known),
                  ("cluster_size", len(self.shards)), ("cluster_current_epoch", current_epoch),
                  ("cluster_my_epoch", my_epoch), ("cluster_stats_messages_sent", 0),
                  ("cluster_stats_messages_received", 0), ("total_cluster_links_buffer_limit_exceeded", 0)]
        return ("".join(f"{k}:{v}\r\n" for k, v in fields)).encode()
