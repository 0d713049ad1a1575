"""Benchmark of the txlog alone: three real txlog-server processes on 127.0.0.1, real LMDB + fsync.

Appenders each loop "append B entries of 100 bytes (B calls of `append`, gathered), wait for the acknowledgement".
Two shapes:
  - shared:   every appender uses ONE LogClient, the way a data node does (its batcher merges them);
  - separate: every appender has its own LogClient (its own writer, stream and batches).
Rows: 1 and 50 concurrent appenders x 1 and 16 entries. Prints acknowledged entries/s and p50/p99 latency of one
append round. Not a test: numbers are reported, never asserted.

Usage: python bench/txlog_bench.py [--seconds 5] [--shape shared|separate|both]
       [--profile ROW --profile-out FILE]   e.g. --profile shared:50x1: py-spy records the leader during that row
       (collapsed stacks, `py-spy record --format raw`; needs py-spy in the venv).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from txlog.client import LogClient  # noqa: E402
from tests.integration.procs import start_txlog_cluster, wait_for_leader  # noqa: E402


async def run_row(addresses: list[str], shape: str, appenders: int, batch: int, seconds: float) -> dict:
    if shape == "shared":
        shared = LogClient(addresses, "shard0")
        clients = [shared] * appenders
    else:
        clients = [LogClient(addresses, "shard0") for _ in range(appenders)]
    status = await clients[0].status(await wait_for_leader(addresses, "shard0"))
    epoch = {s.log: s.epoch for s in status.logs}["shard0"]
    for c in set(clients):     # connect (and find the leader) before the clock starts
        await c.append(b"warmup", epoch)
    latencies: list[float] = []
    count = 0
    payload = b"x" * 100
    stop_at = time.perf_counter() + seconds

    async def appender(client: LogClient) -> None:
        nonlocal count
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            if batch == 1:
                await client.append(payload, epoch)
            else:
                await client.append_many([payload] * batch, epoch)
            latencies.append(time.perf_counter() - t0)
            count += batch

    t0 = time.perf_counter()
    await asyncio.gather(*(appender(c) for c in clients))
    elapsed = time.perf_counter() - t0
    for c in set(clients):
        await c.close()
    latencies.sort()
    return {"shape": shape, "appenders": appenders, "batch": batch, "entries_per_s": count / elapsed,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]}


def disk_probe(path: str, n: int = 200) -> float:
    """p50 ms of one small fully synced LMDB write transaction here and now: the disk of these VMs varies a lot
    over time (0.1 - 4 ms per fdatasync), so every result is printed next to it."""
    import lmdb
    env = lmdb.open(os.path.join(path, "probe"), map_size=1 << 26, sync=True, metasync=True)
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        with env.begin(write=True) as txn:
            txn.put(i.to_bytes(8, "big"), b"x" * 200)
        times.append(time.perf_counter() - t0)
    env.close()
    return 1000 * sorted(times)[n // 2]


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def leader_pid(cluster, leader_address: str) -> int:
    for node in cluster.nodes.values():
        if node.address == leader_address:
            return node.proc.pid
    raise LookupError(leader_address)


async def main_async(args) -> None:
    shapes = ["shared", "separate"] if args.shape == "both" else [args.shape]
    plan = []
    for shape in shapes:
        for appenders in (1, 50):
            if shape == "separate" and appenders == 1 and "shared" in shapes:
                continue   # one appender: the same thing in both shapes
            for batch in (1, 16):
                plan.append((shape, appenders, batch))
    with tempfile.TemporaryDirectory() as tmp:
        disk_before = disk_probe(tmp)
        cluster = start_txlog_cluster(tmp, logs=("shard0",), extra_args=("--log-level", "INFO"),
                                      wire=args.transport == "wire")
        try:
            addresses = cluster.addresses
            leader = await wait_for_leader(addresses, "shard0")
            rows = []
            for shape, appenders, batch in plan:
                profiler = None
                if args.profile == f"{shape}:{appenders}x{batch}":
                    py_spy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
                    profiler = subprocess.Popen([py_spy, "record", "--pid", str(leader_pid(cluster, leader)),
                                                 "--format", "raw", "--rate", "250", "--nonblocking",
                                                 "--duration", str(int(args.seconds)), "-o", args.profile_out],
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                cpu0 = {n.node_id: _cpu_seconds(n.proc.pid) for n in cluster.nodes.values()}
                cpu0["bench"] = _cpu_seconds(os.getpid())
                wall0 = time.perf_counter()
                rows.append(await run_row(addresses, shape, appenders, batch, args.seconds))
                wall = time.perf_counter() - wall0
                rows[-1]["cpu"] = " ".join(
                    f"{k}{'*' if k != 'bench' and cluster.nodes[k].address == leader else ''}="
                    f"{100 * (_cpu_seconds(cluster.nodes[k].proc.pid if k != 'bench' else os.getpid()) - v) / wall:.0f}%"
                    for k, v in cpu0.items())
                if profiler is not None:
                    profiler.wait(60)
            disk_after = disk_probe(tmp)
        finally:
            for node in cluster.nodes.values():
                node.kill(signal.SIGTERM)
            cluster.stop()
            if args.server_logs:
                for node in cluster.nodes.values():
                    with open(node.log_path) as f:
                        print(f"--- {node.node_id}:", *[line for line in f if "stopped" in line or "ERROR" in line])
    print(f"txlog benchmark: 3 nodes on 127.0.0.1, LMDB with fsync, 100-byte entries, {args.seconds}s per row, "
          f"appenders on {args.loop}; disk: a synced LMDB commit takes {disk_before:.2f} ms (p50) before, "
          f"{disk_after:.2f} ms after")
    print("| shape | appenders | batch | entries/s | p50 ms | p99 ms | CPU (* = leader) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['shape']} | {r['appenders']} | {r['batch']} | {r['entries_per_s']:,.0f} | {r['p50_ms']:.2f} | "
              f"{r['p99_ms']:.2f} | {r['cpu']} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=("wire", "grpc"), default="wire",
                        help="what peers and appenders use: the txlog wire (as memdb's cluster does) or gRPC")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--shape", choices=("shared", "separate", "both"), default="both")
    parser.add_argument("--profile", default="", help="row to profile the leader in, as SHAPE:NxB")
    parser.add_argument("--server-logs", action="store_true", help="print the servers' closing stats")
    parser.add_argument("--profile-out", default="txlog-leader.prof.txt")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="the appenders' event loop (a data node runs on uvloop)")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop
        uvloop.install()
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
