"""Real processes for integration tests and benchmarks: txlog-server nodes on 127.0.0.1 with their own LMDB dirs."""
from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = sys.executable


def free_ports(n: int) -> list[int]:
    sockets, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
        ports.append(s.getsockname()[1])
    for s in sockets:
        s.close()
    return ports


@dataclasses.dataclass
class TxlogProcess:
    node_id: str
    address: str
    args: list[str]
    log_path: str
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                self.proc.wait(10)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 10.0) -> float:
        """SIGTERM and wait; returns how long the node took to exit."""
        t0 = time.monotonic()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout_s)
        return time.monotonic() - t0

    def wait_exit(self, timeout_s: float = 10.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout_s)

    def read_log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()


@dataclasses.dataclass
class TxlogCluster:
    nodes: dict[str, TxlogProcess]

    @property
    def addresses(self) -> list[str]:
        return [n.address for n in self.nodes.values()]

    def by_address(self, address: str) -> TxlogProcess:
        return next(n for n in self.nodes.values() if n.address == address)

    def stop(self) -> None:
        for n in self.nodes.values():
            if n.proc and n.proc.poll() is None:
                n.proc.send_signal(signal.SIGCONT)
                n.kill(signal.SIGKILL)


def start_txlog_cluster(data_root: str, logs=("cluster", "shard0"), ids=("a", "b", "c"),
                        extra_args: tuple[str, ...] = (), wire: bool = False) -> TxlogCluster:
    """Three txlog nodes; with wire=True each also serves the txlog wire and is named HOST:PORT+WIREPORT, so
    peers and LogClients use the wire (gRPC stays up for Status, Trim and gRPC clients)."""
    ports = free_ports(2 * len(ids) if wire else len(ids))
    peers = {i: f"127.0.0.1:{ports[k]}" + (f"+{ports[len(ids) + k]}" if wire else "") for k, i in enumerate(ids)}
    peer_args = [a for i, addr in peers.items() for a in ("--peer", f"{i}={addr}")]
    nodes = {}
    for i in ids:
        args = [PYTHON, "-m", "txlog.server", "--id", i, "--listen", peers[i], *peer_args,
                "--data", os.path.join(data_root, f"txlog-{i}"), "--logs", ",".join(logs), *extra_args]
        nodes[i] = TxlogProcess(i, peers[i], args, os.path.join(data_root, f"txlog-{i}.log"))
        nodes[i].start()
    return TxlogCluster(nodes)


async def wait_for_leader(addresses: list[str], log_name: str, timeout_s: float = 10.0,
                          exclude: str | None = None, tls=None) -> str:
    """Address of the node that leads `log_name` (asked of every node), waiting for an election."""
    from txlog.client import LogClient
    client = LogClient(addresses, log_name, tls=tls)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for address in addresses:
                if address == exclude:
                    continue
                try:
                    status = await client.status(address, timeout_s=0.5)
                except Exception:   # noqa: BLE001 - a dead or starting node: ask the next one
                    continue
                for s in status.logs:
                    if s.log == log_name and s.role == "leader":
                        return address
            await asyncio.sleep(0.05)
    finally:
        await client.close()
    raise TimeoutError(f"no leader for {log_name} within {timeout_s}s")
