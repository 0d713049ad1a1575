"""The zone network simulator: one forwarding proxy process per zone, carrying every connection that leaves the
zone (log replication between txlog nodes, data nodes appending to and tailing txlog nodes of other zones).

This kernel has no `tc netem`, so faults live in the transport: each route is a listening port in the source
zone that forwards to a node in another zone, and the proxy applies the faults in the cluster's faults file:
  - latency: every chunk is held for one-way delay = latency/2 (+- jitter/2) before it is forwarded, in order,
    without stopping the stream (a chunk's due time is fixed when it arrives, like a long wire);
  - partition between zones X and Y: connections on X<->Y routes are cut and new ones refused, until healed.
The faults file is JSON written by `memdb chaos` (see memdb/chaos.py); proxies re-read it when it changes.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import os
import random

from memdb import runtime

log = logging.getLogger("memdb.zonenet")
CHUNK_BYTES = 65536
POLL_S = 0.05


def load_faults(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def is_cut(faults: dict, zone_a: str, zone_b: str) -> bool:
    return any({zone_a, zone_b} == set(pair) for pair in faults.get("partitions", []))


class Route:
    def __init__(self, listen_port: int, target: str, src_zone: str, dst_zone: str):
        self.listen_port = listen_port
        self.target = target
        self.src_zone = src_zone
        self.dst_zone = dst_zone
        self.connections: set[asyncio.Task] = set()


class ZoneNet:
    def __init__(self, zone: str, routes: list[Route], faults_path: str, seed: int | None = None):
        self.zone = zone
        self.routes = routes
        self.faults_path = faults_path
        self.faults: dict = {}
        self.rng = random.Random(seed)

    def one_way_delay_s(self) -> float:
        latency = float(self.faults.get("latency_ms", 0)) / 2
        jitter = float(self.faults.get("jitter_ms", 0)) / 2
        if latency <= 0 and jitter <= 0:
            return 0.0
        return max(0.0, latency + self.rng.uniform(-jitter, jitter)) / 1000

    async def watch_faults(self) -> None:
        mtime = None
        while True:
            try:
                current = os.stat(self.faults_path).st_mtime_ns
            except FileNotFoundError:
                current = None
            if current != mtime:
                mtime = current
                self.faults = load_faults(self.faults_path)
                for route in self.routes:
                    if is_cut(self.faults, route.src_zone, route.dst_zone):
                        for task in list(route.connections):
                            task.cancel()
            await asyncio.sleep(POLL_S)

    async def handle(self, route: Route, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if is_cut(self.faults, route.src_zone, route.dst_zone):
            writer.close()
            return
        host, _, port = route.target.rpartition(":")
        try:
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.close()
            return
        task = asyncio.current_task()
        route.connections.add(task)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._pipe(reader, up_writer))
                tg.create_task(self._pipe(up_reader, writer))
        except* (OSError, EOFError):
            pass
        finally:
            route.connections.discard(task)
            for w in (writer, up_writer):
                w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Forward reader -> writer, each chunk delivered at its arrival time + one-way delay."""
        loop = asyncio.get_running_loop()
        queue: collections.deque[tuple[float, bytes]] = collections.deque()
        arrived = asyncio.Event()
        finished = False

        async def deliver() -> None:
            while True:
                while not queue:
                    if finished:
                        return
                    arrived.clear()
                    await arrived.wait()
                due, data = queue.popleft()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                runtime.write(writer, data)
                await writer.drain()

        deliverer = asyncio.ensure_future(deliver())
        try:
            while data := await reader.read(CHUNK_BYTES):
                queue.append((loop.time() + self.one_way_delay_s(), data))
                arrived.set()
            finished = True
            arrived.set()
            await deliverer
        finally:
            deliverer.cancel()
        raise EOFError("connection closed")   # ends the other direction of this connection too

    async def serve(self) -> None:
        servers = []
        for route in self.routes:
            async def handler(r, w, route=route):
                await self.handle(route, r, w)
            servers.append(await asyncio.start_server(handler, "127.0.0.1", route.listen_port))
        log.info("zone %s: %d routes", self.zone, len(self.routes))
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.watch_faults())
            for server in servers:
                tg.create_task(server.serve_forever())


def parse_route(spec: str) -> Route:
    """PORT=HOST:PORT/SRCZONE-DSTZONE"""
    listen, _, rest = spec.partition("=")
    target, _, zones = rest.partition("/")
    src, _, dst = zones.partition("-")
    return Route(int(listen), target, src, dst)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="memdb-zonenet", description="cross-zone forwarding proxy of one zone")
    parser.add_argument("--zone", required=True)
    parser.add_argument("--route", action="append", default=[], help="PORT=HOST:PORT/SRC-DST (repeat)")
    parser.add_argument("--faults", required=True, help="the cluster's faults.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s zonenet %(message)s")
    runtime.run(ZoneNet(args.zone, [parse_route(r) for r in args.route], args.faults).serve())


if __name__ == "__main__":
    main()
