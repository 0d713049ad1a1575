"""The txlog service with three real txlog-server processes on 127.0.0.1, each with its own LMDB directory.

What is checked (DESIGN.md "The txlog service", "Leadership, leases and failover", "Durability ... invariants"):
an append is acknowledged only once a majority has it (one follower down: still acknowledged; two down: a clear
UNAVAILABLE, and it commits once one comes back); killing the leader (kill -9) loses no acknowledged entry and a new
leader is elected within seconds; a restarted node catches up; Tail delivers every committed entry once, in order,
across a leader change; epoch fencing and conditions hold across a leader change; duplicate batches are appended
once; Trim, then Tail below the trim point fails clearly; a node that lost its disk catches up from the trim point
and elects no leader that lacks an acknowledged entry; corrupt storage keeps a node from starting; bad input gets
a clear gRPC status and the server keeps running; SIGTERM stops a node fast; a dead peer costs the leader no CPU.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import time
from typing import AsyncIterator

import grpc
import pytest

from tests.integration.procs import TxlogCluster, start_txlog_cluster, wait_for_leader
from txlog import server as txserver
from txlog import wire
from txlog.client import ConditionFailed, InvalidAppend, LogClient, LogTrimmed, LogUnavailable, StaleEpoch
from txlog.generated import txlog_pb2 as pb
from txlog.generated import txlog_pb2_grpc as pb_grpc

LOG = "shard0"
pytestmark = pytest.mark.timeout(90)


def grpc_address(address: str) -> str:
    return wire.split_address(address)[0]


def run(coro, timeout_s: float = 60.0):
    async def bounded():
        return await asyncio.wait_for(coro, timeout_s)
    return asyncio.run(bounded())


@pytest.fixture(params=["grpc", "wire"])
def cluster(tmp_path, request):
    """Every test runs twice: peers and LogClients on gRPC, then on the txlog wire (txlog/wire.py). The nodes keep
    only 4 applied entries in memory, so catch-ups, tails from far back and restarts read from LMDB."""
    c = start_txlog_cluster(str(tmp_path), logs=("cluster", LOG),
                            extra_args=("--log-level", "INFO", "--memory-entries", "4"), wire=request.param == "wire")
    yield c
    c.stop()


async def read_log(address: str, upto: int, from_index: int = 1, timeout_s: float = 10.0,
                   log_name: str = LOG) -> list[pb.TailEntry]:
    """Entries from_index..upto read with a Tail from one node (waits until that node has them)."""
    out: list[pb.TailEntry] = []
    async with grpc.aio.insecure_channel(grpc_address(address)) as channel:
        call = pb_grpc.TxLogStub(channel).Tail(pb.TailRequest(log=log_name, from_index=from_index),
                                               timeout=timeout_s)
        async for response in call:
            out.extend(response.entries)
            if out and out[-1].index >= upto:
                call.cancel()
                break
    return [e for e in out if e.index <= upto]


@contextlib.asynccontextmanager
async def log_client(cluster) -> AsyncIterator[LogClient]:
    client = LogClient(cluster.addresses, LOG)
    try:
        yield client
    finally:
        await client.close()


def data_items(entries) -> list[tuple[int, bytes]]:
    return [(e.index, item) for e in entries if e.record.kind == pb.DATA for item in e.record.items]


async def status_of(address: str, log_name: str = LOG) -> pb.LogStatus:
    async with grpc.aio.insecure_channel(grpc_address(address)) as channel:
        response = await pb_grpc.TxLogStub(channel).Status(pb.StatusRequest(), timeout=2)
    return next(s for s in response.logs if s.log == log_name)


async def wait_until(predicate, timeout_s: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(interval)
    raise TimeoutError("condition not reached")


async def caught_up(address: str, index: int) -> bool:
    try:
        return (await status_of(address)).applied_index >= index
    except grpc.aio.AioRpcError:
        return False


def followers(cluster: TxlogCluster, leader: str):
    return [n for n in cluster.nodes.values() if n.address != leader]


# -- quorum ----------------------------------------------------------------------------------------------------
def test_ack_needs_a_majority(cluster):
    async def body():
        leader = await wait_for_leader(cluster.addresses, LOG)
        client = LogClient(cluster.addresses, LOG, append_timeout_s=2.0)
        try:
            first = await client.append(b"all-up", 0)
            f1, f2 = followers(cluster, leader)
            f1.kill()                                    # one follower down: a majority is still there
            index = await asyncio.wait_for(client.append(b"one-down", 0), 5)
            assert index > first

            f2.kill()                                    # two down: no acknowledgement, a clear error instead
            with pytest.raises(LogUnavailable):
                await client.append(b"no-quorum", 0)

            patient = LogClient(cluster.addresses, LOG, append_timeout_s=30.0)
            try:
                pending = asyncio.ensure_future(patient.append(b"waits-for-quorum", 0))
                await asyncio.sleep(1.5)
                assert not pending.done(), "acknowledged without a majority"
                f1.start()                               # one comes back: it commits
                index = await asyncio.wait_for(pending, 20)
            finally:
                await patient.close()
            leader = await wait_for_leader([f1.address, cluster.by_address(leader).address], LOG)
            entries = await read_log(leader, index)
            items = [item for _, item in data_items(entries)]
            assert items.count(b"all-up") == 1 and items.count(b"one-down") == 1
            assert items.count(b"waits-for-quorum") == 1
            assert items.count(b"no-quorum") <= 1        # unknown outcome: at most once
            # the restarted follower caught up with everything
            await wait_until(lambda: caught_up(f1.address, index))
            assert [(e.index, e.term, e.record) for e in await read_log(f1.address, index)] == \
                   [(e.index, e.term, e.record) for e in entries]
        finally:
            await client.close()
    run(body())


def test_a_follower_far_behind_catches_up_from_the_leaders_disk(cluster):
    """With 4 entries in memory, the leader sends a follower that missed 40 entries what it reads back from LMDB."""
    async def body():
        leader = await wait_for_leader(cluster.addresses, LOG)
        straggler = followers(cluster, leader)[0]
        straggler.kill()
        async with log_client(cluster) as client:
            indexes = [await client.append(f"missed-{i}".encode(), 0) for i in range(40)]
        straggler.start()
        await wait_until(lambda: caught_up(straggler.address, indexes[-1]), 15)
        expected = await read_log(leader, indexes[-1])
        assert [item for _, item in data_items(expected)][-40:] == [f"missed-{i}".encode() for i in range(40)]
        for node in cluster.nodes.values():
            got = await read_log(node.address, indexes[-1])
            assert [(e.index, e.term, e.record) for e in got] == [(e.index, e.term, e.record) for e in expected]
    run(body())


def test_memory_holds_a_window_of_the_log_and_status_counts_commits(cluster):
    async def body():
        leader = await wait_for_leader(cluster.addresses, LOG)
        async with log_client(cluster) as client:
            indexes = [await client.append(f"w-{i}".encode(), 0) for i in range(60)]
            await client.append(b"last", 0)        # carries the commit of the 60th to the followers
        for node in cluster.nodes.values():
            await wait_until(lambda: caught_up(node.address, indexes[-1]))
            status = await status_of(node.address)
            assert status.last_index - status.first_index + 1 > 60
            assert status.entries_in_memory <= 4 + 2, status     # 4 applied + what is not applied yet
        async with grpc.aio.insecure_channel(grpc_address(leader)) as channel:
            response = await pb_grpc.TxLogStub(channel).Status(pb.StatusRequest(), timeout=2)
        counters = response.counters
        assert counters["committed_waiters"] >= 61 and counters["fsyncs"] > 0 and counters["fsync_us"] > 0
    run(body())


# -- leader crash, tail across it, catch-up --------------------------------------------------------------------
def test_leader_kill_loses_no_acknowledged_entry(cluster):
    async def body():
        leader = await wait_for_leader(cluster.addresses, LOG)
        follower = followers(cluster, leader)[0].address
        client = LogClient(cluster.addresses, LOG, append_timeout_s=10.0)
        tail_client = LogClient(cluster.addresses, LOG)
        acked: dict[bytes, int] = {}
        stop_writing = asyncio.Event()
        seen: list[pb.TailEntry] = []

        async def writer(w: int) -> None:
            n = 0
            while not stop_writing.is_set():
                item = f"w{w}-{n}".encode()
                try:
                    acked[item] = await client.append(item, 0)
                except LogUnavailable:
                    pass                                 # unknown outcome: not in the ledger
                n += 1

        async def tailer() -> None:
            # starts on the leader, so the kill breaks it and it must resume elsewhere
            async for entry in tail_client.tail(1, address=leader):
                seen.append(entry)

        tail_task = asyncio.ensure_future(tailer())
        writers = [asyncio.ensure_future(writer(w)) for w in range(8)]
        try:
            await wait_until(lambda: asyncio.sleep(0, len(acked) >= 200), 20)
            before_kill = dict(acked)
            t_kill = time.monotonic()
            cluster.by_address(leader).kill()
            new_leader = await wait_for_leader(cluster.addresses, LOG, timeout_s=10, exclude=leader)
            elected_after = time.monotonic() - t_kill
            assert new_leader != leader
            assert elected_after < 5, f"no new leader for {elected_after:.1f}s"
            await wait_until(lambda: asyncio.sleep(0, len(acked) >= len(before_kill) + 200), 20)
            stop_writing.set()
            await asyncio.gather(*writers)

            last = max(acked.values())
            entries = await read_log(follower, last)
            log_items = data_items(entries)
            assert [e.index for e in entries] == list(range(1, last + 1))
            positions = {item: index for index, item in log_items}
            assert len(positions) == len(log_items), "an item is in the log twice"
            lost = {item: index for item, index in acked.items() if positions.get(item) != index}
            assert not lost, f"acknowledged entries lost or moved: {list(lost.items())[:5]}"

            # the tail that ran across the kill: every committed entry once, in order
            await wait_until(lambda: asyncio.sleep(0, bool(seen) and seen[-1].index >= last), 10)
            assert [e.index for e in seen[:last]] == list(range(1, last + 1))
            assert [(e.index, e.record) for e in seen[:last]] == [(e.index, e.record) for e in entries]

            # the old leader comes back and catches up (dropping any uncommitted suffix it had)
            old = cluster.by_address(leader)
            old.start()
            await wait_until(lambda: caught_up(leader, last), 15)
            assert [(e.index, e.term, e.record) for e in await read_log(leader, last)] == \
                   [(e.index, e.term, e.record) for e in entries]
        finally:
            stop_writing.set()
            tail_task.cancel()
            for w in writers:
                w.cancel()
            await client.close()
            await tail_client.close()
    run(body())


# -- fencing ---------------------------------------------------------------------------------------------------
def test_epoch_fencing_across_leader_change(cluster):
    async def body():
        leader = await wait_for_leader(cluster.addresses, LOG)
        async with log_client(cluster) as client:
            await client.append(b"epoch0", 0)
            last = (await status_of(leader)).last_index
            with pytest.raises(ConditionFailed) as failed:
                await client.append_batch([b"claim-a"], 1, kind=pb.LEADERSHIP, expected_last_index=last - 1)
            assert failed.value.last_index == last
            with pytest.raises(StaleEpoch):
                await client.append_batch([b"claim-a"], 2, kind=pb.LEADERSHIP, expected_last_index=last)
            claim = await client.append_batch([b"claim-a"], 1, kind=pb.LEADERSHIP, expected_last_index=last)
            assert claim == last + 1
            with pytest.raises(StaleEpoch) as stale:
                await client.append(b"deposed-writer", 0)
            assert stale.value.current_epoch == 1
            index = await client.append(b"epoch1", 1)

            cluster.by_address(leader).kill()
            new_leader = await wait_for_leader(cluster.addresses, LOG, exclude=leader)
            await wait_until(lambda: caught_up(new_leader, index))
            with pytest.raises(StaleEpoch):
                await client.append(b"old-epoch-after-change", 0)
            with pytest.raises(StaleEpoch):       # epoch 1 was claimed already
                await client.append_batch([b"claim-again"], 1, kind=pb.LEADERSHIP)
            last = (await status_of(new_leader)).last_index   # includes the new term's NOOP
            with pytest.raises(ConditionFailed):
                await client.append_batch([b"claim-b"], 2, kind=pb.LEADERSHIP, expected_last_index=index)
            claim_b = await client.append_batch([b"claim-b"], 2, kind=pb.LEADERSHIP, expected_last_index=last)
            with pytest.raises(StaleEpoch):
                await client.append(b"epoch1-after-claim-b", 1)
            final = await client.append(b"epoch2", 2)
            entries = await read_log(new_leader, final)
            items = [item for e in entries for item in e.record.items]
            assert items == [b"epoch0", b"claim-a", b"epoch1", b"claim-b", b"epoch2"]
            assert [e.index for e in entries if e.record.kind == pb.LEADERSHIP] == [claim, claim_b]
            assert (await status_of(new_leader)).epoch == 2
    run(body())


# -- deduplication ---------------------------------------------------------------------------------------------
def test_append_many_puts_its_items_in_one_entry_in_order(cluster):
    async def body():
        await wait_for_leader(cluster.addresses, LOG)
        async with log_client(cluster) as client:
            single = client.append(b"before", 0)
            many = client.append_many([b"m1", b"m2", b"m3"], 0)
            index = await many
            assert await single <= index
            entries = await read_log(cluster.addresses[0], index)
            items = [item for _, item in data_items(entries) if item != b"before"]
            assert items == [b"m1", b"m2", b"m3"]
            assert {i for i, item in data_items(entries) if item.startswith(b"m")} == {index}
    run(body())


def test_items_appended_together_share_a_future_and_commit_in_order(cluster):
    async def body():
        await wait_for_leader(cluster.addresses, LOG)
        async with log_client(cluster) as client:
            await client.append(b"warm-up", 0)          # the stream is open: the next items queue while it is busy
            futures = [client.append(f"s{i}".encode(), 0) for i in range(30)]
            assert len({id(f) for f in futures}) < len(futures), "items queued together share a future"
            indexes = await asyncio.gather(*futures)
            entries = await read_log(cluster.addresses[0], max(indexes))
            items = [item for _, item in data_items(entries) if item.startswith(b"s")]
            assert items == [f"s{i}".encode() for i in range(30)]
            where = {item: i for i, item in data_items(entries)}
            assert [where[f"s{i}".encode()] for i in range(30)] == list(indexes)
            # A cancelled shared future is not handed out again: later items get a live one and commit.
            doomed = client.append(b"c1", 0)
            doomed.cancel()
            later = client.append(b"c2", 0)
            assert later is not doomed and not later.cancelled()
            index = await later
            assert b"c2" in {item for _, item in data_items(await read_log(cluster.addresses[0], index))}
    run(body())


def test_batches_stay_within_the_byte_cap_and_never_split_a_shared_unit(cluster):
    async def body():
        await wait_for_leader(cluster.addresses, LOG)
        client = LogClient(cluster.addresses, LOG, max_batch_bytes=10_000, max_inflight_bytes=20_000)
        try:
            await client.append(b"warm-up", 0)
            futures = [client.append(b"a%03d" % i + b"." * 2996, 0) for i in range(40)]     # 3 KB each
            unit = client.append_many([b"u%d" % i + b"." * 5998 for i in range(3)], 0)     # 18 KB, one future
            alone = client.append(b"big" + b"." * 29_997, 0)                               # 30 KB, over the cap
            indexes = await asyncio.gather(*futures, unit, alone)
            entries = await read_log(cluster.addresses[0], max(indexes))
            by_index: dict[int, list[bytes]] = {}
            for index, item in data_items(entries):
                by_index.setdefault(index, []).append(item)
            for index in set(indexes):
                batch = by_index[index]
                over_the_cap_alone = len(batch) == 1 or all(item.startswith(b"u") for item in batch)
                assert sum(map(len, batch)) <= 10_000 or over_the_cap_alone, (index, [len(i) for i in batch])
            assert [item[:2] for item in by_index[indexes[-2]]] == [b"u0", b"u1", b"u2"], "the unit stays whole"
            assert by_index[indexes[-1]] == [b"big" + b"." * 29_997]
            assert len(set(indexes[:40])) >= 40 * 3_000 // 10_000
        finally:
            await client.close()
    run(body())


def test_tail_batches_are_contiguous_and_resume_where_asked(cluster):
    async def body():
        leader = await wait_for_leader(cluster.addresses, LOG)
        async with log_client(cluster) as client:
            last = 0
            for i in range(5):
                last = await client.append_many([f"t{i}-{j}".encode() for j in range(3)], 0)
            seen: list[int] = []
            async for entries in client.tail_batches(2, address=leader):
                assert entries, "never an empty batch"
                assert [e.index for e in entries] == list(range(entries[0].index, entries[0].index + len(entries)))
                seen.extend(e.index for e in entries)
                if seen[-1] >= last:
                    break
            assert seen == list(range(2, last + 1))
    run(body())


def test_duplicate_batches_are_appended_once(cluster):
    async def body():
        leader = await wait_for_leader(cluster.addresses, LOG)

        async def send(address: str, requests: list[pb.AppendRequest]) -> list[pb.AppendResponse]:
            async with grpc.aio.insecure_channel(grpc_address(address)) as channel:
                call = pb_grpc.TxLogStub(channel).Append(timeout=10)
                for r in requests:
                    await call.write(r)
                await call.done_writing()
                return [r async for r in call]

        def batch(seq: int, item: bytes) -> pb.AppendRequest:
            return pb.AppendRequest(log=LOG, writer_id="writer-1", batch_seq=seq, epoch=0, items=[item])

        first = await send(leader, [batch(1, b"one"), batch(2, b"two"), batch(1, b"one"), batch(2, b"two")])
        assert [r.status for r in first] == [pb.OK] * 4
        assert first[0].index == first[2].index and first[1].index == first[3].index
        again = await send(leader, [batch(2, b"two"), batch(3, b"three")])     # a retry on a new stream
        assert again[0].index == first[1].index and again[1].status == pb.OK

        cluster.by_address(leader).kill()                                       # and on the next leader
        new_leader = await wait_for_leader(cluster.addresses, LOG, exclude=leader)
        retry = await send(new_leader, [batch(1, b"one"), batch(3, b"three"), batch(4, b"four")])
        assert [r.index for r in retry[:2]] == [first[0].index, again[1].index]
        entries = await read_log(new_leader, retry[2].index)
        items = [item for _, item in data_items(entries)]
        assert items == [b"one", b"two", b"three", b"four"]
    run(body())


# -- trim ------------------------------------------------------------------------------------------------------
def test_trim_then_tail_below_and_restart(cluster):
    async def body():
        await wait_for_leader(cluster.addresses, LOG)
        async with log_client(cluster) as client:
            # Epoch 1 is claimed below the trim point: after the trim its LEADERSHIP record is gone.
            claim = await client.append_batch([b"claim"], 1, kind=pb.LEADERSHIP)
            indexes = [await client.append(f"item-{i}".encode(), 1) for i in range(40)]
            assert claim < indexes[20]
            below = indexes[20]
            for node in cluster.nodes.values():          # Trim only cuts below what every member holds
                await wait_until(lambda: caught_up(node.address, indexes[-1]))
            await asyncio.sleep(0.2)                     # and the leader has heard so (next heartbeat)
            response = await client.trim(below)
            assert response.status == pb.OK and response.first_index == below
            with pytest.raises(LogTrimmed):
                async for _ in client.tail(1):
                    pass
            entries = await read_log(client.leader_address, indexes[-1], from_index=below)
            assert [e.index for e in entries] == list(range(below, indexes[-1] + 1))
        for node in cluster.nodes.values():           # every node trimmed: all restart from the trim point
            assert node.stop() < 5
        for node in cluster.nodes.values():
            node.start()
        leader = await wait_for_leader(cluster.addresses, LOG, timeout_s=15)
        async with log_client(cluster) as client:
            # Still epoch 1 (the TRIM record carries it): the current writer goes on, a stale one is fenced.
            more = await client.append(b"after-restart", 1)
            with pytest.raises(StaleEpoch):
                await client.append_batch([b"stale"], 0)
            for node in cluster.nodes.values():
                await wait_until(lambda: caught_up(node.address, more), 15)
                status = await status_of(node.address)
                assert status.first_index == below
                got = await read_log(node.address, more, from_index=below)
                assert got[0].index == below and got[-1].record.items == [b"after-restart"]
            with pytest.raises(LogTrimmed):
                async for _ in client.tail(below - 1, address=leader):
                    pass
    run(body())


# -- a node that lost its disk -----------------------------------------------------------------------------------
def _wipe(node) -> None:
    node.kill()
    shutil.rmtree(os.path.join(os.path.dirname(node.log_path), f"txlog-{node.node_id}"))


async def _recovering(address: str) -> bool | None:
    """Whether the node's logs are recovering (both logs agree), None while it does not answer."""
    try:
        flags = {(await status_of(address, name)).recovering for name in ("cluster", LOG)}
    except grpc.aio.AioRpcError:
        return None
    return flags.pop() if len(flags) == 1 else None


def test_a_node_that_lost_its_disk_starts_at_the_trim_point_and_catches_up(cluster):
    """Its store is new and its peers' are not: it comes back recovering, takes the leader's trimmed log from the
    trim point on (LOG_START), catches up and votes again; then it and the leader's old follower can elect a
    leader without the old leader, with every acknowledged entry."""
    async def body():
        leader = await wait_for_leader(cluster.addresses, LOG)
        async with log_client(cluster) as client:
            indexes = [await client.append(f"before-{i}".encode(), 0) for i in range(30)]
            for node in cluster.nodes.values():
                await wait_until(lambda: caught_up(node.address, indexes[-1]))
            await asyncio.sleep(0.2)
            below = indexes[20]
            assert (await client.trim(below)).first_index == below
            lost, other = followers(cluster, leader)
            _wipe(lost)
            lost.start()
            more = [await client.append(f"after-{i}".encode(), 0) for i in range(10)]
            await wait_until(lambda: caught_up(lost.address, more[-1]), 15)
            await wait_until(lambda: _not_recovering(lost.address), 15)
            status = await status_of(lost.address)
            assert status.first_index == below and status.last_index >= more[-1]
            expected = await read_log(leader, more[-1], from_index=below)
            got = await read_log(lost.address, more[-1], from_index=below)
            assert [(e.index, e.term, e.record) for e in got] == [(e.index, e.term, e.record) for e in expected]
            assert "its peers have a log" in lost.read_log() and "votes again" in lost.read_log()
        # It votes again: the old leader gone, it and the other follower elect one of them.
        cluster.by_address(leader).kill()
        survivor = await wait_for_leader([lost.address, other.address], LOG, timeout_s=15)
        async with log_client(cluster) as client:
            last = await client.append(b"two-left", 0)
        items = [item for _, item in data_items(await read_log(survivor, last, from_index=below))]
        assert items == [f"before-{i}".encode() for i in range(20, 30)] + \
            [f"after-{i}".encode() for i in range(10)] + [b"two-left"]
    run(body())


async def _not_recovering(address: str) -> bool:
    return await _recovering(address) is False


def test_a_node_that_lost_its_disk_waits_rather_than_elect_a_leader_without_an_acknowledged_entry(cluster):
    """An entry acknowledged by the leader and one follower; that follower loses its disk and the leader dies.
    The two left could form a majority, but the wiped node holds nothing and votes for no one until it has caught
    up, which takes the old leader: no leader meanwhile (before, it came back as an empty voter and elected the
    node that never had the entry). Once the old leader is back, the entry is there."""
    async def body():
        leader_address = await wait_for_leader(cluster.addresses, LOG)
        holder, other = followers(cluster, leader_address)
        leader = cluster.by_address(leader_address)
        other.kill()
        async with log_client(cluster) as client:
            acked = await client.append(b"acked-by-two", 0)
        await wait_until(lambda: caught_up(holder.address, acked))
        _wipe(holder)
        leader.kill()
        other.start()
        holder.start()
        with pytest.raises(TimeoutError):
            await wait_for_leader([holder.address, other.address], LOG, timeout_s=6)
        assert "waits for every peer" in holder.read_log()
        leader.start()
        new_leader = await wait_for_leader(cluster.addresses, LOG, timeout_s=15)
        async with log_client(cluster) as client:
            last = await client.append(b"after", 0)
        for node in cluster.nodes.values():
            await wait_until(lambda: caught_up(node.address, last), 15)
            items = [item for _, item in data_items(await read_log(node.address, last))]
            assert items == [b"acked-by-two", b"after"], (node.node_id, new_leader, items)
        await wait_until(lambda: _not_recovering(holder.address), 15)
    run(body())


# -- corrupt storage -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "wal-missing"])
def test_corrupt_storage_refuses_to_start(cluster, damage):
    marker = b"CORRUPT-ME-" + b"m" * 64

    async def body():
        await wait_for_leader(cluster.addresses, LOG)
        async with log_client(cluster) as client:
            index = await client.append(marker, 0)
            for _ in range(50):
                await client.append(b"p" * 2000, 0)
        return index

    index = run(body())
    node = cluster.nodes["a"]
    run(wait_until(lambda: caught_up(node.address, index)))
    node.stop()
    path = os.path.join(os.path.dirname(node.log_path), "txlog-a", "data.mdb")
    if damage == "wal-missing":
        os.remove(os.path.join(os.path.dirname(path), "wal"))
    else:
        _damage_data_file(path, damage, marker)
    node.start()
    code = node.wait_exit(15)
    assert code != 0
    text = node.read_log()
    assert "refuses to start" in text and "corrupt" in text, text[-2000:]
    assert "Traceback" not in text


def _damage_data_file(path: str, damage: str, marker: bytes) -> None:
    with open(path, "r+b") as f:
        data = f.read()
        if damage == "flip":
            # every copy: LMDB is copy-on-write, so stale copies of the page may sit in free pages too
            at = data.find(marker)
            assert at >= 0
            while at >= 0:
                f.seek(at + 5)
                f.write(bytes([data[at + 5] ^ 0x01]))
                at = data.find(marker, at + 1)
        elif damage == "truncate":
            f.truncate(len(data.rstrip(b"\0")) // 2)      # half of what holds data, not of the zeros ahead
        else:
            f.truncate(0)


# -- bad input -------------------------------------------------------------------------------------------------
def test_bad_input_gets_a_clear_status_and_the_server_keeps_running(cluster):
    async def body():
        leader = await wait_for_leader(cluster.addresses, LOG)
        async with grpc.aio.insecure_channel(grpc_address(leader), options=txserver.GRPC_OPTIONS) as channel:
            stub = pb_grpc.TxLogStub(channel)

            async def append(request: pb.AppendRequest) -> pb.AppendResponse:
                call = stub.Append(timeout=10)
                await call.write(request)
                await call.done_writing()
                return [r async for r in call][0]

            bad = [pb.AppendRequest(log="nope", items=[b"x"]),
                   pb.AppendRequest(log=LOG, kind=pb.NOOP, items=[b"x"]),
                   pb.AppendRequest(log=LOG, kind=pb.TRIM, items=[b"x"]),
                   pb.AppendRequest(log=LOG, kind=77, items=[b"x"]),
                   pb.AppendRequest(log=LOG, items=[b""] * (txserver.MAX_BATCH_ITEMS + 1)),
                   pb.AppendRequest(log=LOG, items=[b"x" * (txserver.MAX_BATCH_BYTES + 10)]),
                   pb.AppendRequest(log=LOG, writer_id="w", batch_seq=0, items=[b"x"])]
            for request in bad:
                response = await append(request)
                assert response.status == pb.INVALID and response.message, response
        # A 32 MB message can hold a node's loop past an election timeout on 2 vCPUs (the leader may change
        # then); everything below must not disturb whoever leads now.
        leader = await wait_for_leader(cluster.addresses, LOG)
        async with grpc.aio.insecure_channel(grpc_address(leader), options=txserver.GRPC_OPTIONS) as channel:
            stub = pb_grpc.TxLogStub(channel)
            with pytest.raises(InvalidAppend):
                c = LogClient([leader], "nope")
                try:
                    await c.append(b"x", 0)
                finally:
                    await c.close()

            with pytest.raises(grpc.aio.AioRpcError) as err:
                async for _ in stub.Tail(pb.TailRequest(log="nope"), timeout=5):
                    pass
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
            trim = await stub.Trim(pb.TrimRequest(log="nope", below_index=5), timeout=5)
            assert trim.status == pb.INVALID

            # undecodable protobuf on a real method
            raw = channel.unary_unary("/txlog.TxLog/Status")
            with pytest.raises(grpc.aio.AioRpcError):
                await raw(b"\xff\xff\xff\xff\x0f", timeout=5)
            # unknown method
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await channel.unary_unary("/txlog.TxLog/Nope")(b"", timeout=5)
            assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
            # raft messages no core may see: unknown type, unknown log, not from a peer, not for us
            raft = pb_grpc.RaftStub(channel)
            node_id = cluster.by_address(leader).node_id
            other = next(i for i in cluster.nodes if i != node_id)
            await raft.Send(iter([pb.RaftBatch(messages=[
                pb.RaftMessage(log=LOG, type=99, to=node_id, term=1000, **{"from": other}),
                pb.RaftMessage(log="nope", type=5, to=node_id, term=1000, **{"from": other}),
                pb.RaftMessage(log=LOG, type=5, to=node_id, term=1000, **{"from": "mallory"}),
                pb.RaftMessage(log=LOG, type=5, to="zz", term=1000, **{"from": other})])]), timeout=5)

        # garbage bytes on the raw HTTP/2 port
        host, port = grpc_address(leader).rsplit(":", 1)
        for garbage in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", os.urandom(4096),
                        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + os.urandom(512)):
            with socket.create_connection((host, int(port)), timeout=5) as s:
                s.sendall(garbage)
                s.settimeout(2)
                try:
                    s.recv(1024)
                except (socket.timeout, ConnectionError):
                    pass

        assert cluster.by_address(leader).alive()
        assert (await status_of(leader)).role == "leader", "the garbage must not have disturbed the leader"
        async with log_client(cluster) as client:
            assert await client.append(b"still-fine", 0) > 0
    run(body())


def _wire_exchange(address: str, data: bytes) -> bytes:
    """Send raw bytes to a wire port and read until the server closes the connection."""
    host, port = address.rsplit(":", 1)
    received = b""
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(data)
        s.settimeout(5)
        try:
            while chunk := s.recv(65536):
                received += chunk
        except ConnectionError:
            pass
    return received


def _frames(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    while len(data) >= 5:
        length, kind = wire.HEADER.unpack_from(data)
        out.append((kind, data[5:5 + length]))
        data = data[5 + length:]
    return out


def test_bad_input_on_the_wire_closes_that_connection_only(cluster):
    if "+" not in cluster.addresses[0]:
        pytest.skip("the cluster serves gRPC only")

    async def body():
        leader = await wait_for_leader(cluster.addresses, LOG)
        port = wire.split_address(leader)[1]
        invalid = grpc.StatusCode.INVALID_ARGUMENT.value[0]
        loop = asyncio.get_running_loop()

        def exchange(data: bytes):
            return loop.run_in_executor(None, _wire_exchange, port, data)

        # framing errors: the connection is closed, nothing is answered
        assert await exchange(wire.HEADER.pack(wire.MAX_FRAME_BYTES + 1, wire.Kind.APPEND_REQUEST)) == b""
        assert await exchange(wire.frame(99, b"x")) == b""
        # random bytes: closed, at most after an ERROR frame (if they happened to start like a frame)
        assert all(kind == wire.Kind.ERROR for kind, _ in _frames(await exchange(os.urandom(4096))))
        # an undecodable message, then frames of two kinds on one stream: an ERROR frame, then the close
        for data in (wire.frame(wire.Kind.APPEND_REQUEST, b"\xff\xff\xff\xff\x0f"),
                     wire.frame(wire.Kind.RAFT_BATCH, b"") + wire.frame(wire.Kind.APPEND_REQUEST, b""),
                     wire.frame(wire.Kind.APPEND_RESPONSE, b"")):
            (kind, payload), = _frames(await exchange(data))
            assert kind == wire.Kind.ERROR and payload[0] == invalid and payload[1:], payload
        # a well-formed but invalid append gets an INVALID answer on the stream
        request = pb.AppendRequest(log="nope", items=[b"x"], batch_seq=7)
        connection = await wire.connect(port)
        try:
            connection.send(wire.Kind.APPEND_REQUEST, request.SerializeToString())
            kind, payload = await asyncio.wait_for(connection.recv(), 5)
            response = pb.AppendResponse.FromString(payload)
            assert kind == wire.Kind.APPEND_RESPONSE and response.status == pb.INVALID and response.batch_seq == 7
        finally:
            connection.close()
        # a tail of an unknown log: ERROR NOT_FOUND
        (kind, payload), = _frames(await exchange(wire.frame(wire.Kind.TAIL_REQUEST,
                                                             pb.TailRequest(log="nope").SerializeToString())))
        assert kind == wire.Kind.ERROR and payload[0] == grpc.StatusCode.NOT_FOUND.value[0]

        assert cluster.by_address(leader).alive()
        assert (await status_of(leader)).role == "leader", "the bad frames must not have disturbed the leader"
        async with log_client(cluster) as client:
            index = await client.append(b"still-fine", 0)
            got = await _take(client.tail(index), 1)
            assert got[0].record.items == [b"still-fine"]
    run(body())


async def _take(iterator, n: int) -> list:
    out = []
    async for item in iterator:
        out.append(item)
        if len(out) == n:
            break
    return out


# -- process behaviour -----------------------------------------------------------------------------------------
def test_sigterm_stops_fast_with_streams_open(cluster):
    async def body():
        leader = await wait_for_leader(cluster.addresses, LOG)
        client = LogClient(cluster.addresses, LOG)
        tail_client = LogClient(cluster.addresses, LOG)
        tail = asyncio.ensure_future(tail_client.tail(1, address=leader).__anext__())
        try:
            await client.append(b"x", 0)
            await tail
            times = {}
            for node in cluster.nodes.values():
                times[node.node_id] = node.stop()
                assert node.proc.returncode == 0, node.read_log()[-2000:]
            assert max(times.values()) < 1.0, times
        finally:
            await client.close()
            await tail_client.close()
    run(body())


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_dead_peer_costs_the_leader_no_cpu(cluster):
    async def body():
        leader = await wait_for_leader(cluster.addresses, LOG)
        async with log_client(cluster) as client:
            for _ in range(20):
                await client.append(b"x" * 100, 0)
            followers(cluster, leader)[0].kill()
            for _ in range(20):                      # the dead follower now lags: the leader keeps probing it
                await client.append(b"x" * 100, 0)
        pid = cluster.by_address(leader).proc.pid
        c0, t0 = _cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(3)
        share = (_cpu_seconds(pid) - c0) / (time.monotonic() - t0)
        assert share < 0.15, f"an idle leader with a dead peer uses {share:.0%} CPU"
    run(body())


def test_node_started_twice_on_one_directory_fails_clearly(cluster):
    """Not a corruption: the second process cannot bind the port (or lock the store) and exits non-zero."""
    run(wait_for_leader(cluster.addresses, LOG))       # every node is up and listening
    node = cluster.nodes["a"]
    twin = type(node)(node.node_id + "-twin", node.address, list(node.args), node.log_path + ".twin")
    twin.start()
    try:
        assert twin.wait_exit(15) != 0
        assert "cannot listen" in twin.read_log()
        assert node.alive()
    finally:
        twin.kill()
