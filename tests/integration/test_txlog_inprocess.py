"""A txlog node in this process (a one-node group on 127.0.0.1): per-stream resources are released when clients
go away, and the node stops promptly with streams open."""
from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from tests.integration.procs import free_ports
from txlog import server as txserver
from txlog.client import LogClient
from txlog.generated import txlog_pb2 as pb
from txlog.generated import txlog_pb2_grpc as pb_grpc

pytestmark = pytest.mark.timeout(60)


async def start_node(tmp_path):
    port = free_ports(1)[0]
    address = f"127.0.0.1:{port}"
    config = txserver.NodeConfig("a", {"a": address}, str(tmp_path / "a"), logs=("shard0",), tick_ms=10)
    holder = {}
    original = txserver.TxlogNode.__init__

    def capture(self, cfg):
        original(self, cfg)
        holder["node"] = self
    txserver.TxlogNode.__init__ = capture
    try:
        task = asyncio.ensure_future(txserver.serve(config, address))
        while "node" not in holder:
            await asyncio.sleep(0.01)
    finally:
        txserver.TxlogNode.__init__ = original
    node = holder["node"]
    deadline = time.monotonic() + 10
    while node.groups["shard0"].core.role.value != "leader":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    return node, task, address


def test_streams_closed_by_clients_leave_nothing_behind(tmp_path):
    async def body():
        node, serve_task, address = await start_node(tmp_path)
        client = LogClient([address], "shard0")
        await client.append(b"warm", 0)
        await client.close()
        await asyncio.sleep(0.2)
        baseline = len(asyncio.all_tasks())

        for round_ in range(3):
            channel = grpc.aio.insecure_channel(address)
            stub = pb_grpc.TxLogStub(channel)
            appends = []
            for i in range(30):
                call = stub.Append()
                await call.write(pb.AppendRequest(log="shard0", writer_id=f"w{round_}-{i}", batch_seq=1,
                                                  items=[b"x"]))
                appends.append(call)
            for call in appends:
                assert (await call.read()).status == pb.OK
            tails = [stub.Tail(pb.TailRequest(log="shard0", from_index=1)) for _ in range(30)]
            for t in tails:
                await t.read()
            for call in appends + tails:            # the clients walk away without closing their streams
                call.cancel()
            await channel.close()
        # LogClients that come and go
        for _ in range(5):
            c = LogClient([address], "shard0")
            await asyncio.gather(*[c.append(b"y", 0) for _ in range(20)])
            await c.close()

        deadline = time.monotonic() + 5
        while len(asyncio.all_tasks()) > baseline and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        leftover = [t for t in asyncio.all_tasks()]
        assert len(leftover) <= baseline, [t.get_coro() for t in leftover]
        assert not node.groups["shard0"].waiters

        t0 = time.monotonic()
        node.stop()
        await asyncio.wait_for(serve_task, 5)
        assert time.monotonic() - t0 < 1.0
    asyncio.run(body())


def test_stop_answers_waiting_appends_and_ends_tails(tmp_path):
    async def body():
        node, serve_task, address = await start_node(tmp_path)
        client = LogClient([address], "shard0")
        await client.append(b"x", 0)
        tail_client = LogClient([address], "shard0")
        got = []

        async def tail():
            async with grpc.aio.insecure_channel(address) as channel:
                try:
                    async for r in pb_grpc.TxLogStub(channel).Tail(pb.TailRequest(log="shard0", from_index=1)):
                        got.append(r)
                except grpc.aio.AioRpcError as exc:
                    return exc.code()
        tailer = asyncio.ensure_future(tail())
        await asyncio.sleep(0.2)
        t0 = time.monotonic()
        node.stop()
        await asyncio.wait_for(serve_task, 5)
        assert time.monotonic() - t0 < 1.0
        code = await asyncio.wait_for(tailer, 5)
        assert code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
        assert got
        await client.close()
        await tail_client.close()
    asyncio.run(body())
