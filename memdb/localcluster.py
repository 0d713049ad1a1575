"""A three-zone memdb cluster as local processes on 127.0.0.1: the plan (which process, which port), starting and
stopping it, and asking every node how it is.

Layout of DIR (default ./memdb-data):
  cluster.json          the plan: ports, nodes, zones (written once; a restart on the same DIR reuses it)
  pids.json             pids of the running processes
  txlog-<zone>/         LMDB environment of the zone's txlog node
  logs/<node>.log       each process's output
  faults.json           the zone simulator's current faults (written by `memdb chaos`, read by the zone proxies)
Ports from the base port P: P = primary endpoint, P+1..P+3 = txlog a,b,c (gRPC), P+4..P+6 = their txlog wire
ports (txlog/wire.py), P+10.. per shard three data nodes, P+100.. the cross-zone routes of the zone proxies (two
ports per route: gRPC and wire).

Every connection that crosses zones goes through the source zone's proxy (memdb/zonenet.py), so latency and
partitions injected by `memdb chaos` are real on the wire: a process in zone X reaches a txlog node in zone Y at
the route X->Y, never directly.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time

from memdb.snapshot import SNAPSHOT_EVERY_ENTRIES
from txlog.tls import TxlogTLS

ZONES = ("a", "b", "c")
HOST = "127.0.0.1"
# RESP over TLS (with TLS certificates): the endpoint's on base+120, the data nodes' on base+121.. (port + 111),
# past the zone proxies' routes (base+100..111).
TLS_PORTS_FROM = 120


@dataclasses.dataclass
class NodePlan:
    name: str
    zone: str
    kind: str               # "txlog" | "data" | "endpoint" | "zonenet"
    port: int
    shard: str = ""
    grpc_port: int = 0
    wire_port: int = 0      # txlog nodes: the txlog wire's port (txlog/wire.py); 0 = gRPC only

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def txlog_address(self) -> str:
        """A txlog node as its peers and data nodes name it: HOST:PORT+WIREPORT (gRPC, then the wire)."""
        return f"{HOST}:{self.port}+{self.wire_port}" if self.wire_port else self.address


@dataclasses.dataclass
class RoutePlan:
    """A port in zone `src` that forwards to node `target` in zone `dst`."""
    src: str
    dst: str
    target: str             # node name
    port: int
    wire_port: int = 0      # a second forwarded port, to the target's wire port


@dataclasses.dataclass
class ClusterPlan:
    directory: str
    base_port: int
    shards: int
    nodes: list[NodePlan]
    routes: list[RoutePlan] = dataclasses.field(default_factory=list)
    # Data nodes serve gRPC over TLS with server.crt/server.key from here, and require client certificates
    # signed by client-ca.crt when that file exists (mutual TLS). "" = plaintext gRPC.
    grpc_tls_dir: str = ""
    # False: no zone proxies, every process reaches every other directly (a faster cluster for benchmarks; the
    # network faults of `memdb chaos` then have nothing to act on).
    zone_proxies: bool = True
    # Data nodes share <directory>/snapshots; replicas write one every this many applied writes (the primary after
    # twice as many without one), then trim the log.
    snapshot_every: int = SNAPSHOT_EVERY_ENTRIES
    # Every process talks to the txlog over mutual TLS with ca.crt, node.crt and node.key from here (txlog/tls.py);
    # "" = plaintext.
    txlog_tls_dir: str = ""

    @property
    def txlog_tls(self) -> TxlogTLS | None:
        return TxlogTLS.from_dir(self.txlog_tls_dir) if self.txlog_tls_dir else None

    @classmethod
    def make(cls, directory: str, base_port: int, shards: int, grpc_tls_dir: str = "",
             zone_proxies: bool = True, snapshot_every: int = SNAPSHOT_EVERY_ENTRIES,
             txlog_tls_dir: str = "") -> "ClusterPlan":
        nodes = [NodePlan(f"txlog-{z}", z, "txlog", base_port + 1 + i, wire_port=base_port + 4 + i)
                 for i, z in enumerate(ZONES)]
        port = base_port + 10
        for s in range(shards):
            for z in ZONES:
                nodes.append(NodePlan(f"data-{s}{z}", z, "data", port, shard=f"shard{s}", grpc_port=port + 40))
                port += 1
        routes, port = [], base_port + 100
        for src in ZONES if zone_proxies else ():
            for t in nodes:
                if t.kind == "txlog" and t.zone != src:
                    routes.append(RoutePlan(src, t.zone, t.name, port, wire_port=port + 1))
                    port += 2
        nodes += [NodePlan(f"zonenet-{z}", z, "zonenet", next(r.port for r in routes if r.src == z))
                  for z in ZONES if zone_proxies]
        nodes.append(NodePlan("endpoint", "", "endpoint", base_port, shard="shard0"))
        return cls(os.path.abspath(directory), base_port, shards, nodes, routes,
                   os.path.abspath(grpc_tls_dir) if grpc_tls_dir else "", zone_proxies, snapshot_every,
                   os.path.abspath(txlog_tls_dir) if txlog_tls_dir else "")

    def node(self, name: str) -> NodePlan:
        return next(n for n in self.nodes if n.name == name)

    def address_from(self, zone: str, target: NodePlan) -> str:
        """How a process in `zone` reaches `target`: directly in its own zone, else through its zone's proxy."""
        if not zone or target.zone == zone or not self.zone_proxies:
            return target.txlog_address if target.kind == "txlog" else target.address
        route = next(r for r in self.routes if r.src == zone and r.target == target.name)
        return f"{HOST}:{route.port}+{route.wire_port}" if route.wire_port else f"{HOST}:{route.port}"

    def tls_port(self, node: NodePlan) -> int:
        """The RESP-over-TLS port of a data node or the endpoint, served when the cluster has TLS certificates
        (else 0)."""
        if not self.grpc_tls_dir or node.kind not in ("data", "endpoint"):
            return 0
        return self.base_port + TLS_PORTS_FROM + (node.port - self.base_port - 9 if node.kind == "data" else 0)

    def tls_arguments(self, node: NodePlan) -> list[str]:
        """The gRPC API over TLS, and RESP over TLS on tls_port next to the plaintext port, with the same
        certificate; with a client-ca.crt both require client certificates it signed."""
        if not self.grpc_tls_dir:
            return []
        cert, key, client_ca = (os.path.join(self.grpc_tls_dir, f) for f in ("server.crt", "server.key",
                                                                            "client-ca.crt"))
        mutual = os.path.exists(client_ca)
        return ["--grpc-tls-cert", cert, "--grpc-tls-key", key] + (["--grpc-tls-ca", client_ca] if mutual else []) \
            + ["--tls-port", str(self.tls_port(node)), "--tls-cert-file", cert, "--tls-key-file", key] \
            + (["--tls-ca-cert-file", client_ca] if mutual else [])

    def txlog_tls_arguments(self, prefix: str) -> list[str]:
        tls = self.txlog_tls
        return [] if tls is None else [prefix + "ca", tls.ca, prefix + "cert", tls.cert, prefix + "key", tls.key]

    def path(self, *parts: str) -> str:
        return os.path.join(self.directory, *parts)

    def topology(self):
        from memdb.cluster import NodeInfo, Topology
        nodes = [NodeInfo(n.name, n.shard, n.zone, HOST, n.port, n.grpc_port) for n in self.by_kind("data")]
        return Topology.even([f"shard{s}" for s in range(self.shards)], nodes)

    def save(self) -> None:
        os.makedirs(self.directory, exist_ok=True)
        with open(self.path("topology.json"), "w") as f:
            json.dump(self.topology().dump(), f, indent=2)
        with open(self.path("cluster.json"), "w") as f:
            json.dump({"base_port": self.base_port, "shards": self.shards,
                       "nodes": [dataclasses.asdict(n) for n in self.nodes],
                       "routes": [dataclasses.asdict(r) for r in self.routes],
                       "grpc_tls_dir": self.grpc_tls_dir, "zone_proxies": self.zone_proxies,
                       "snapshot_every": self.snapshot_every, "txlog_tls_dir": self.txlog_tls_dir}, f, indent=2)

    @classmethod
    def load(cls, directory: str) -> "ClusterPlan | None":
        path = os.path.join(directory, "cluster.json")
        if not os.path.exists(path):
            return None
        with open(path) as f:
            raw = json.load(f)
        return cls(os.path.abspath(directory), raw["base_port"], raw["shards"],
                   [NodePlan(**n) for n in raw["nodes"]], [RoutePlan(**r) for r in raw.get("routes", [])],
                   raw.get("grpc_tls_dir", ""), raw.get("zone_proxies", True),
                   raw.get("snapshot_every", SNAPSHOT_EVERY_ENTRIES), raw.get("txlog_tls_dir", ""))

    def by_kind(self, kind: str) -> list[NodePlan]:
        return [n for n in self.nodes if n.kind == kind]

    def logs(self) -> list[str]:
        return ["cluster"] + [f"shard{s}" for s in range(self.shards)]

    def txlog_addresses(self, zone: str = "") -> list[str]:
        """The txlog nodes as seen from `zone` (own zone first, others through the zone proxy)."""
        txlogs = sorted(self.by_kind("txlog"), key=lambda t: t.zone != zone)
        return [self.address_from(zone, t) for t in txlogs]

    def command(self, node: NodePlan) -> list[str]:
        py = sys.executable
        if node.kind == "txlog":
            peers = [a for t in self.by_kind("txlog")
                     for a in ("--peer", f"{t.zone}={self.address_from(node.zone, t)}")]
            return [py, "-m", "txlog.server", "--id", node.zone, "--listen", node.txlog_address, *peers,
                    "--data", self.path(f"txlog-{node.zone}"), "--logs", ",".join(self.logs()),
                    *self.txlog_tls_arguments("--tls-")]
        if node.kind == "data":
            role = "primary" if node.zone == "a" else "replica"
            return [py, "-m", "memdb.server", "--host", HOST, "--port", str(node.port), "--node-id", node.name,
                    "--zone", node.zone, "--shard", node.shard, "--role", role,
                    "--topology", self.path("topology.json"), "--grpc-port", str(node.grpc_port),
                    "--txlog", ",".join(self.txlog_addresses(node.zone)), *self.tls_arguments(node),
                    *self.txlog_tls_arguments("--txlog-tls-"),
                    "--snapshot-dir", self.path("snapshots"), "--snapshot-every", str(self.snapshot_every)]
        if node.kind == "zonenet":
            routes = [a for r in self.routes if r.src == node.zone
                      for port, target in ((r.port, self.node(r.target).address),
                                           (r.wire_port, f"{HOST}:{self.node(r.target).wire_port}"))
                      if port for a in ("--route", f"{port}={target}/{r.src}-{r.dst}")]
            return [py, "-m", "memdb.zonenet", "--zone", node.zone, "--faults", self.path("faults.json"), *routes]
        data = [n for n in self.by_kind("data") if n.shard == node.shard]
        tls = ["--tls-listen", f"{HOST}:{self.tls_port(node)}",
               "--tls-nodes", ",".join(f"{HOST}:{self.tls_port(n)}" for n in data)] if self.grpc_tls_dir else []
        return [py, "-m", "memdb.endpoint", "--listen", node.address, "--nodes", ",".join(n.address for n in data),
                *tls]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        # As the servers bind (SO_REUSEADDR): connections of a cluster just stopped, lingering in TIME_WAIT,
        # must not make `cluster up` refuse the port; only a listener does.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


class Supervisor:
    """Starts and stops the plan's processes and remembers their pids."""

    def __init__(self, plan: ClusterPlan, detach: bool):
        self.plan = plan
        self.detach = detach
        self.procs: dict[str, subprocess.Popen] = {}

    def start_all(self) -> None:
        ports = ([(n.name, n.port) for n in self.plan.nodes] +
                 [(f"{n.name}-grpc", n.grpc_port) for n in self.plan.nodes if n.grpc_port] +
                 [(f"{n.name}-wire", n.wire_port) for n in self.plan.nodes if n.wire_port] +
                 [(f"route-{r.src}-{r.dst}", r.port) for r in self.plan.routes] +
                 [(f"route-{r.src}-{r.dst}-wire", r.wire_port) for r in self.plan.routes if r.wire_port])
        busy = [(name, port) for name, port in ports if not port_is_free(port)]
        if busy:
            raise SystemExit(f"ports in use: {', '.join(f'{name}:{port}' for name, port in busy)} "
                             f"(is a cluster already running? try `memdb cluster status`)")
        os.makedirs(self.plan.path("logs"), exist_ok=True)
        for node in self.plan.nodes:
            self.start(node)
        self.write_pids()

    def start(self, node: NodePlan) -> None:
        out = open(self.plan.path("logs", f"{node.name}.log"), "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.procs[node.name] = subprocess.Popen(self.plan.command(node), stdout=out, stderr=subprocess.STDOUT,
                                                 stdin=subprocess.DEVNULL, env=env,
                                                 start_new_session=self.detach)
        out.close()

    def write_pids(self) -> None:
        with open(self.plan.path("pids.json"), "w") as f:
            json.dump({name: p.pid for name, p in self.procs.items()}, f)

    def stop_all(self, timeout_s: float = 5.0) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for p in self.procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def read_pids(plan: ClusterPlan) -> dict[str, int]:
    try:
        with open(plan.path("pids.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:   # a zombie (exited, not yet reaped) is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def stop_pids(plan: ClusterPlan, timeout_s: float = 5.0) -> list[str]:
    pids = read_pids(plan)
    stopped = []
    for name, pid in pids.items():
        if pid_alive(pid):
            try:
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGTERM)
                stopped.append(name)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout_s
    for name, pid in pids.items():
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
    return stopped


# -- asking nodes how they are ---------------------------------------------------------------------------------
def resp_command(address: str, *args: str, timeout_s: float = 1.0) -> bytes:
    """One command over RESP with a plain socket (no client library needed)."""
    host, _, port = address.rpartition(":")
    payload = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
    with socket.create_connection((host, int(port)), timeout=timeout_s) as s:
        s.sendall(payload)
        import hiredis
        reader = hiredis.Reader()
        while True:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            reader.feed(chunk)
            reply = reader.gets()
            if reply is not False:
                if isinstance(reply, hiredis.ReplyError):
                    raise ConnectionError(str(reply))
                return reply


def parse_info(raw: bytes) -> dict[str, str]:
    fields = {}
    for line in raw.decode(errors="replace").splitlines():
        if ":" in line and not line.startswith("#"):
            k, _, v = line.partition(":")
            fields[k] = v
    return fields


async def txlog_status(address: str, tls: TxlogTLS | None = None):
    from txlog.client import LogClient
    client = LogClient([address], "cluster", tls=tls)
    try:
        return await client.status(address, timeout_s=1.0)
    finally:
        await client.close()


def node_status(plan: ClusterPlan) -> dict:
    pids = read_pids(plan)
    rows = []
    for node in plan.nodes:
        pid = pids.get(node.name, 0)
        alive = bool(pid) and pid_alive(pid)
        row = {"name": node.name, "zone": node.zone, "kind": node.kind, "shard": node.shard, "role": "",
               "host": HOST, "port": node.port, "grpc_port": node.grpc_port, "pid": pid, "alive": alive,
               "applied_index": None, "committed_index": None, "lag": None}
        if alive and node.kind == "txlog":
            try:
                status = asyncio.run(txlog_status(node.address, plan.txlog_tls))
                shard_logs = [s for s in status.logs if s.log != "cluster"] or list(status.logs)
                row["role"] = ("leader" if any(s.role == "leader" for s in shard_logs) else
                               "recovering" if any(s.recovering for s in status.logs) else "follower")
                row["applied_index"] = sum(s.applied_index for s in shard_logs)
                row["committed_index"] = sum(s.commit_index for s in shard_logs)
                row["logs"] = {s.log: {"role": s.role, "term": s.term, "commit": s.commit_index,
                                       "epoch": s.epoch, "entries_in_memory": s.entries_in_memory,
                                       "first_index": s.first_index, "recovering": s.recovering}
                               for s in status.logs}
                row["log_first"] = min(s.first_index for s in shard_logs)    # > 1 once trimmed
                counters = status.counters
                # Averages since the node started: a save (WAL write + fdatasync, with its checkpoints), and, on
                # a leader, an append's time from arrival to commit on a majority.
                if counters.get("fsyncs"):
                    row["fsync_ms"] = round(counters["fsync_us"] / counters["fsyncs"] / 1000, 2)
                if counters.get("committed_waiters"):
                    row["commit_ms"] = round(counters["commit_wait_us"] / counters["committed_waiters"] / 1000, 2)
                # The longest its event loop was held past a Raft tick: past an election timeout, a leader is
                # deposed (a slow disk, a huge write, a starved CPU).
                row["loop_max_ms"] = round(counters.get("tick_late_max_us", 0) / 1000, 1)
            except Exception as exc:   # noqa: BLE001 - report, don't crash the status table
                row["error"] = str(exc)[:80]
        elif alive and node.kind == "data":
            try:
                info = parse_info(resp_command(node.address, "INFO", "txlog"))
                info.update(parse_info(resp_command(node.address, "INFO", "replication")))
                row["role"] = "primary" if info.get("role") == "master" else "replica"
                row["applied_index"] = int(info.get("applied_index", 0))
                row["epoch"] = int(info.get("epoch", 0))
                row["snapshot"] = int(info.get("snapshot_index", 0))
            except (OSError, ConnectionError, ValueError) as exc:
                row["error"] = str(exc)[:80]
        elif alive and node.kind in ("endpoint", "zonenet"):
            row["role"] = "endpoint" if node.kind == "endpoint" else "proxy"
        rows.append(row)
    by_shard: dict[str, int] = {}
    for r in rows:
        if r["kind"] == "data" and r["applied_index"] is not None:
            by_shard[r["shard"]] = max(by_shard.get(r["shard"], 0), r["applied_index"])
    for r in rows:
        if r["kind"] == "data" and r["applied_index"] is not None:
            r["lag"] = by_shard[r["shard"]] - r["applied_index"]
    endpoint = next(n for n in plan.nodes if n.kind == "endpoint")
    from memdb.chaos import read_faults
    return {"nodes": rows, "endpoint": {"host": HOST, "port": endpoint.port}, "faults": read_faults(plan)}


def wait_until_serving(plan: ClusterPlan, timeout_s: float = 30.0) -> bool:
    """True once every shard has a primary holding its lease (it got its claim committed)."""
    deadline = time.monotonic() + timeout_s
    shards = {f"shard{s}" for s in range(plan.shards)}
    while time.monotonic() < deadline:
        ready = set()
        for node in plan.by_kind("data"):
            try:
                info = parse_info(resp_command(node.address, "INFO", "replication"))
                if info.get("role") == "master" and info.get("memdb_lease_valid") == "1":
                    resp_command(node.address, "CLUSTER", "SLOTS")   # answers once it knows the topology
                    ready.add(node.shard)
            except (OSError, ConnectionError):
                continue
        if ready >= shards:
            return True
        time.sleep(0.2)
    return False
