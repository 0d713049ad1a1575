"""The data node's Python cost per command, without sockets or a log: a profiling aid, not a benchmark of memdb.

    .venv/bin/python -m bench.hotpath                 # GET, SET -P 1 and SET -P 16 over 50 connections
    .venv/bin/python -m bench.hotpath --reps 20       # more repetitions (the minimum is reported)
    py-spy record -r 2000 -f raw -o /tmp/p.txt -- .venv/bin/python -m bench.hotpath --only set16

What runs is the primary's real code: `ClientConnection.data_received` parses RESP and runs each request through
`DataNode.execute`; a write is stamped, encoded and handed to the log client; then, as if the log had committed the
batch, `DataNode._apply_record` applies the entries, answers their futures, and the connection encodes the
replies. Only the two ends are stand-ins: the transport drops what it is given instead of sending it, and the log
client queues items instead of sending them to a txlog leader. So the numbers leave out every system call, the
event loop's I/O and the txlog (`make bench` has those, with CPU per process): they say how many microseconds of
Python a command costs on the primary, and where (submit: parse + execute + encode the entry; apply; reply).
"""
from __future__ import annotations

import argparse
import asyncio
import time

import uvloop

from memdb.node import DataNode, NodeConfig, Role
from memdb.runtime import tune_gc
from memdb.server import ClientConnection, RespServer
from txlog.generated import txlog_pb2 as tpb

CONNECTIONS = 50
KEYS = 100_000


class _DiscardingTransport:
    """What uvloop's transport offers a protocol, minus the socket: replies are dropped."""

    def write(self, data: bytes) -> None:
        pass

    def get_extra_info(self, name: str, default=None):
        return ("127.0.0.1", 6379) if name in ("sockname", "peername") else default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass


class _QueueingLog:
    """The part of txlog.client.LogClient a primary's write path uses: items queued, one future per batch."""
    writer_id = "hotpath"
    serving_address = None
    acked_sent_at = 0.0

    def __init__(self) -> None:
        self.items: list[bytes] = []
        self.future: asyncio.Future | None = None

    def append(self, item: bytes, epoch: int) -> asyncio.Future:
        self.items.append(item)
        if self.future is None:
            self.future = asyncio.get_running_loop().create_future()
        return self.future

    def take_batch(self) -> tuple[list[bytes], asyncio.Future]:
        items, future = self.items, self.future
        self.items, self.future = [], None
        return items, future


def _primary() -> tuple[DataNode, RespServer]:
    node = DataNode(NodeConfig(node_id="hotpath", txlog=("127.0.0.1:1",)))
    node.log = _QueueingLog()
    node.role, node.epoch = Role.PRIMARY, 1
    node._lease_until = float("inf")          # a primary holding its lease: reads run at once, not held
    server = RespServer(node, port=0)
    db = node.keyspace.dbs[0]
    for i in range(KEYS):
        db.set(b"key:%012d" % i, b"xxx")
    return node, server


def _connections(server: RespServer) -> list[ClientConnection]:
    conns = []
    for _ in range(CONNECTIONS):
        conn = ClientConnection(server)
        conn.connection_made(_DiscardingTransport())
        conns.append(conn)
    return conns


async def measure_gets(reps: int) -> float:
    """µs of Python per GET, one request per data_received (redis-benchmark -c 50 without -P)."""
    node, server = _primary()
    conns = _connections(server)
    requests = [b"*2\r\n$3\r\nGET\r\n$16\r\nkey:%012d\r\n" % (i * 7919 % KEYS) for i in range(100_000)]
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        for i, request in enumerate(requests):
            conns[i % CONNECTIONS].data_received(request)
        best = min(best, (time.perf_counter() - start) / len(requests))
    return best * 1e6


async def measure_sets(pipeline: int, reps: int) -> dict[str, float]:
    """µs of Python per SET with `pipeline` requests per data_received on each of 50 connections, split into
    submit / apply / reply; one log batch per round, as with one batch in flight."""
    node, server = _primary()
    conns = _connections(server)
    chunks = [b"".join(b"*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$3\r\nxxx\r\n" % ((c * 7919 + i) % KEYS)
                       for i in range(pipeline)) for c in range(CONNECTIONS)]
    rounds = max(1, 6400 // pipeline)
    index = 0
    best: dict[str, float] = {}
    for _ in range(reps):
        spent = {"submit": 0.0, "apply": 0.0, "reply": 0.0}
        for _ in range(rounds):
            t0 = time.perf_counter()
            for conn, chunk in zip(conns, chunks):
                conn.data_received(chunk)
            t1 = time.perf_counter()
            items, appended = node.log.take_batch()
            index += 1
            appended.set_result(index)
            await asyncio.sleep(0)                      # the lease callback, as after a real commit
            t2 = time.perf_counter()
            node.keyspace.current_index = index
            node._apply_record(tpb.LogRecord(kind=tpb.DATA, epoch=1, items=items))
            node.applied_index = index
            t3 = time.perf_counter()
            await asyncio.sleep(0)                      # the connections' completion callbacks: replies out
            t4 = time.perf_counter()
            spent["submit"] += t1 - t0
            spent["apply"] += t3 - t2
            spent["reply"] += t4 - t3
        commands = rounds * CONNECTIONS * pipeline
        total = sum(spent.values()) / commands * 1e6
        if total < best.get("total", float("inf")):
            best = {"total": total, **{k: v / commands * 1e6 for k, v in spent.items()}}
    return best


async def main(args: argparse.Namespace) -> None:
    tune_gc()
    if "get" in args.only:
        print(f"GET c50            {await measure_gets(args.reps):6.2f} us of Python per command")
    for name, pipeline in (("set1", 1), ("set16", 16)):
        if name in args.only:
            r = await measure_sets(pipeline, args.reps)
            print(f"SET c50 -P {pipeline:<2}      {r['total']:6.2f} us of Python per command "
                  f"(submit {r['submit']:.2f}, apply {r['apply']:.2f}, reply {r['reply']:.2f})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=8)
    parser.add_argument("--only", default="get,set1,set16", help="comma-separated: get, set1, set16")
    uvloop.run(main(parser.parse_args()))
