"""Benchmark of the txlog alone: three real txlog-server processes on 127.0.0.1, real LMDB + fsync.

Appenders each loop "append a batch of B entries of 100 bytes, wait for the acknowledgement". Rows:
1 and 50 concurrent appenders x batches of 1 and 16 entries. Prints acknowledged entries/s and p50/p99 latency
of one append. Not a test: numbers are reported, never asserted. Usage: python bench/txlog_bench.py [--seconds 5]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from txlog.client import LogClient  # noqa: E402
from txlog.generated import txlog_pb2 as pb  # noqa: E402
from tests.integration.procs import free_ports, start_txlog_cluster, wait_for_leader  # noqa: E402


async def run_row(addresses: list[str], appenders: int, batch: int, seconds: float) -> dict:
    clients = [LogClient(addresses, "shard0") for _ in range(appenders)]
    epoch_client = LogClient(addresses, "shard0")
    status = await epoch_client.status(addresses[0])
    epoch = {l.log: l.epoch for l in status.logs}["shard0"]
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
                await client.append_batch([payload] * batch, epoch)
            latencies.append(time.perf_counter() - t0)
            count += batch

    t0 = time.perf_counter()
    await asyncio.gather(*(appender(c) for c in clients))
    elapsed = time.perf_counter() - t0
    for c in clients + [epoch_client]:
        await c.close()
    latencies.sort()
    return {"appenders": appenders, "batch": batch, "entries_per_s": count / elapsed,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]}


async def main_async(seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cluster = start_txlog_cluster(tmp, logs=("shard0",))
        try:
            addresses = cluster.addresses
            await wait_for_leader(addresses, "shard0")
            rows = []
            for appenders in (1, 50):
                for batch in (1, 16):
                    rows.append(await run_row(addresses, appenders, batch, seconds))
            print(f"txlog benchmark: 3 nodes on 127.0.0.1, LMDB with fsync, 100-byte entries, {seconds}s per row")
            print("| appenders | batch | entries/s | p50 ms | p99 ms |")
            print("|---:|---:|---:|---:|---:|")
            for r in rows:
                print(f"| {r['appenders']} | {r['batch']} | {r['entries_per_s']:,.0f} | {r['p50_ms']:.2f} | "
                      f"{r['p99_ms']:.2f} |")
        finally:
            cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(main_async(args.seconds))


if __name__ == "__main__":
    main()
