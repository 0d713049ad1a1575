"""memdb.client (gRPC, one multiplexed BatchPipeline stream per node) vs redis-py over RESP, against the same
three-zone cluster that this script starts: ops/s and p50/p99 latency for SET, GET and MIX (half the callers SET,
half GET, at once) with 1 and 50 concurrent callers (asyncio tasks on one event loop for both clients, so the
comparison is like for like); with --sync also the synchronous clients (memdb.client.Client, redis.Redis) driven
by as many threads.

    .venv/bin/python -m bench.client_bench [--seconds 3] [--callers 1,50] [--sync]

Not a test: numbers depend on the machine (the cluster's six processes share its CPUs with the clients).
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time

import redis
import redis.asyncio as aredis
import uvloop

from memdb.client import AsyncClient, Client
from tests.integration.cluster import RunningCluster


async def resp_retrying(coro_fn):
    """redis-py gets TRYAGAIN when the primary's lease lapses under load; retry it as memdb.client does (a SET
    refused with TRYAGAIN lease-lapsed was not applied, so the retry is safe)."""
    for _ in range(100):
        try:
            return await coro_fn()
        except redis.exceptions.TryAgainError:
            RESP_TRYAGAIN[0] += 1
            await asyncio.sleep(0.01)
    return await coro_fn()


RESP_TRYAGAIN = [0]
COMMANDS = ("SET", "GET", "MIX")
STATS: dict = {}


def summary(latencies: list[float], elapsed: float) -> tuple[float, float, float]:
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    return len(latencies) / elapsed, p50, p99


def run_threads(op, callers: int, seconds: float) -> tuple[float, float, float]:
    latencies: list[float] = []
    stop_at = time.monotonic() + seconds

    def caller(cid: int) -> None:
        mine, i = [], 0
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            op(cid, i)
            mine.append(time.perf_counter() - started)
            i += 1
        latencies.extend(mine)                      # list.extend is atomic under the GIL

    started = time.monotonic()
    threads = [threading.Thread(target=caller, args=(cid,)) for cid in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return summary(latencies, time.monotonic() - started)


def bench_sync(cluster: RunningCluster, seconds: float, caller_counts: list[int]) -> list[tuple]:
    primary = cluster.node(cluster.primary())
    seeds = [f"127.0.0.1:{n.grpc_port}" for n in cluster.data_nodes()]
    value = b"x" * 100
    rows = []
    with Client(seeds) as grpc_client:
        grpc_client.connect()
        resp_client = redis.Redis(host="127.0.0.1", port=primary.port, max_connections=max(caller_counts))
        for name, client in (("memdb.Client (sync)", grpc_client), ("redis.Redis (sync)", resp_client)):
            for callers in caller_counts:
                for command in COMMANDS:
                    def op(cid, i, c=client, command=command):
                        if command == "SET" or (command == "MIX" and cid % 2):
                            c.set(f"bench:{cid}:{i % 1000}", value)
                        else:
                            c.get(f"bench:{cid}:{i % 1000}")
                    ops, p50, p99 = run_threads(op, callers, seconds)
                    rows.append((name, command, callers, ops, p50, p99))
                    print(f"  {name:22} {command} x{callers:<3} {ops:9.0f} ops/s", flush=True)
        resp_client.close()
    return rows


async def run_callers(op, callers: int, seconds: float) -> tuple[float, float, float]:
    latencies: list[float] = []
    stop_at = time.monotonic() + seconds

    async def caller(cid: int) -> None:
        i = 0
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            await op(cid, i)
            latencies.append(time.perf_counter() - started)
            i += 1

    started = time.monotonic()
    async with asyncio.TaskGroup() as tasks:
        for cid in range(callers):
            tasks.create_task(caller(cid))
    return summary(latencies, time.monotonic() - started)


async def bench(cluster: RunningCluster, seconds: float, caller_counts: list[int]) -> list[tuple]:
    primary = cluster.node(cluster.primary())
    seeds = [f"127.0.0.1:{n.grpc_port}" for n in cluster.data_nodes()]
    grpc_client = AsyncClient(seeds)
    await grpc_client.connect()
    pool = aredis.ConnectionPool(host="127.0.0.1", port=primary.port, max_connections=max(caller_counts))
    resp_client = aredis.Redis(connection_pool=pool)
    value = b"x" * 100
    rows = []
    try:
        for name, client in (("memdb.client (gRPC)", grpc_client), ("redis-py (RESP)", resp_client)):
            for callers in caller_counts:
                for command in COMMANDS:
                    wrap = resp_retrying if client is resp_client else (lambda f: f())

                    async def op(cid, i, c=client, wrap=wrap, command=command):
                        if command == "SET" or (command == "MIX" and cid % 2):
                            await wrap(lambda: c.set(f"bench:{cid}:{i % 1000}", value))
                        else:
                            await wrap(lambda: c.get(f"bench:{cid}:{i % 1000}"))
                    ops, p50, p99 = await run_callers(op, callers, seconds)
                    rows.append((name, command, callers, ops, p50, p99))
                    print(f"  {name:22} {command} x{callers:<3} {ops:9.0f} ops/s", flush=True)
    finally:
        STATS.update(grpc_client.stats)
        await grpc_client.close()
        await resp_client.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--callers", default="1,50", help="comma-separated concurrent caller counts")
    parser.add_argument("--sync", action="store_true", help="also the sync clients, one thread per caller")
    args = parser.parse_args()
    caller_counts = [int(x) for x in args.callers.split(",")]
    with tempfile.TemporaryDirectory(prefix="memdb-client-bench-") as directory:
        cluster = RunningCluster(f"{directory}/cluster").start()
        try:
            rows = uvloop.run(bench(cluster, args.seconds, caller_counts))
            if args.sync:
                rows += bench_sync(cluster, args.seconds, caller_counts)
        finally:
            cluster.stop()
    print()
    print(f"| {'client':22} | cmd | callers | {'ops/s':>8} | {'p50 ms':>7} | {'p99 ms':>7} |")
    print(f"|{'-' * 24}|-----|---------|{'-' * 10}|{'-' * 9}|{'-' * 9}|")
    for name, command, callers, ops, p50, p99 in rows:
        print(f"| {name:22} | {command} | {callers:7} | {ops:8.0f} | {p50:7.2f} | {p99:7.2f} |")
    by_key = {(n, c, k): ops for n, c, k, ops, _, _ in rows}
    print(f"\nretries: memdb.client {STATS.get('retries', 0)}, redis-py TRYAGAIN {RESP_TRYAGAIN[0]}")
    pairs = [("memdb.client (gRPC)", "redis-py (RESP)", "")]
    if args.sync:
        pairs.append(("memdb.Client (sync)", "redis.Redis (sync)", " (sync)"))
    for ours, theirs, label in pairs:
        for callers in caller_counts:
            for command in COMMANDS:
                ratio = by_key[(ours, command, callers)] / by_key[(theirs, command, callers)]
                print(f"{command} x{callers}{label}: memdb.client / redis-py throughput = {ratio:.2f}")


if __name__ == "__main__":
    main()
