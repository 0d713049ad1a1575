"""Snapshots and log trimming, end to end (DESIGN.md "Snapshots and restart"; memdb/snapshot.py): replicas snapshot
the shard into the cluster's shared store and trim the log, and nothing acknowledged is lost when nodes restart
from a snapshot plus the log after it, when the newest snapshot is unreadable, or when a replica that fell behind
the trim has to reload one while it runs."""
import asyncio
import json
import os
import random
import signal
import time

import pytest

from memdb import localcluster as lc
from tests.integration.cluster import RunningCluster, wait_for
from memdb.snapshot import SnapshotStore
from tests.integration.test_failover import check_everywhere
from tests.integration.test_replay_determinism import replay_in_fresh_process, send_random_commands
from tests.integration.tools.canonical import dump_keyspace, dump_over_resp
from tests.integration.workload import Workload
from txlog.client import LogClient

SNAPSHOT_EVERY = 300


@pytest.fixture
def cluster(tmp_path):
    c = RunningCluster(str(tmp_path / "cluster"), snapshot_every=SNAPSHOT_EVERY).start()
    try:
        yield c
    finally:
        c.stop()


def log_first_indexes(cluster) -> list[int]:
    """The first index each txlog node still holds of shard0."""
    async def ask() -> list[int]:
        client = LogClient(cluster.plan.txlog_addresses(), "shard0")
        try:
            firsts = []
            for address in cluster.plan.txlog_addresses():
                status = await client.status(address, timeout_s=2)
                firsts += [s.first_index for s in status.logs if s.log == "shard0"]
            return firsts
        finally:
            await client.close()
    return asyncio.run(ask())


def txlog_info(cluster, name: str) -> dict:
    return cluster.client(name).info("txlog")


def snapshots_in_store(cluster) -> list[str]:
    return sorted(n for n in os.listdir(cluster.plan.path("snapshots")) if n.endswith(".snap"))


def wait_caught_up(cluster, name: str, index: int) -> None:
    wait_for(lambda: txlog_info(cluster, name)["applied_index"] >= index, 30, f"{name} to apply index {index}")


def test_nodes_restart_from_snapshots_after_the_log_is_trimmed(cluster):
    endpoint = cluster.plan.base_port
    with Workload(lambda: endpoint) as w:
        # Trimmed on every txlog node past the first snapshots: a restart can no longer replay from index 1.
        wait_for(lambda: min(log_first_indexes(cluster)) > 1, 60, "the log to be trimmed")
        primary = cluster.primary()
        replicas = [n.name for n in cluster.data_nodes() if n.name != primary]
        assert sum(txlog_info(cluster, r)["snapshots_written"] for r in replicas) >= 2
        assert all(txlog_info(cluster, r)["snapshot_failures"] == 0 for r in replicas)
        rows = {r["name"]: r for r in lc.node_status(cluster.plan)["nodes"]}   # what `memdb cluster status` shows
        assert all(rows[t.name]["log_first"] > 1 for t in cluster.plan.by_kind("txlog"))
        assert max(rows[r]["snapshot"] for r in replicas) > 0 and rows[primary]["snapshot"] == 0
        persistence = [cluster.client(r).info("persistence") for r in replicas]
        assert max(p["rdb_saves"] for p in persistence) >= 1
        assert all(p["rdb_last_bgsave_status"] == "ok" and p["aof_enabled"] == 0 for p in persistence)
        assert max(p["rdb_last_save_time"] for p in persistence) > time.time() - 120
        assert txlog_info(cluster, primary)["snapshots_written"] == 0, "the primary never snapshots"
        # A replica restarts from the newest snapshot while writes go on.
        cluster.kill(replicas[0])
        cluster.restart(replicas[0])
        wait_for(lambda: cluster.role(replicas[0]) is not None, 30, f"{replicas[0]} to serve")
        assert txlog_info(cluster, replicas[0])["snapshots_loaded"] == 1
        # Then the primary dies; a replica takes over and the old primary comes back from a snapshot.
        cluster.kill(primary)
        new = cluster.primary(exclude=primary, timeout_s=10)
        time.sleep(1.0)
        cluster.restart(primary)
        wait_for(lambda: cluster.role(primary) is not None, 30, f"{primary} to serve")
        assert txlog_info(cluster, primary)["snapshots_loaded"] == 1
        time.sleep(1.0)
    assert new != primary
    assert w.ledger.acked_writes > 200
    check_everywhere(cluster, w)
    applied = txlog_info(cluster, new)["applied_index"]
    expected = dump_over_resp(cluster.client(new))
    for n in cluster.data_nodes():
        wait_caught_up(cluster, n.name, applied)
        assert dump_over_resp(cluster.client(n.name)) == expected, n.name


def test_an_unreadable_newest_snapshot_falls_back_to_the_one_before(cluster):
    p = cluster.client(cluster.primary())
    for i in range(2000):      # past TRIM_MARGIN_RECORDS (1000) below the older of the two snapshots kept
        p.set(f"key:{i}", f"value:{i}")
    wait_for(lambda: len(snapshots_in_store(cluster)) == 2, 30, "two snapshots")
    wait_for(lambda: min(log_first_indexes(cluster)) > 1, 30, "the log to be trimmed")
    replica = next(n.name for n in cluster.data_nodes() if cluster.role(n.name) == "slave")
    cluster.kill(replica)
    newest = os.path.join(cluster.plan.path("snapshots"), snapshots_in_store(cluster)[-1])
    with open(newest, "r+b") as f:         # one flipped byte in the body: the checksum catches it
        f.seek(os.path.getsize(newest) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    cluster.restart(replica)
    wait_for(lambda: cluster.role(replica) is not None, 30, f"{replica} to serve")
    info = txlog_info(cluster, replica)
    assert info["snapshots_loaded"] == 1
    assert info["snapshot_index"] < int(os.path.basename(newest).split("-")[1].split(".")[0])
    wait_caught_up(cluster, replica, p.info("txlog")["applied_index"])
    assert dump_over_resp(cluster.client(replica)) == dump_over_resp(p)
    with open(os.path.join(cluster.plan.directory, "logs", f"{replica}.log")) as f:
        assert "damaged" in f.read()


def test_a_replica_behind_the_trim_reloads_a_snapshot_while_running(cluster):
    primary = cluster.primary()
    p = cluster.client(primary)
    replicas = [n.name for n in cluster.data_nodes() if n.name != primary]
    behind = replicas[0]
    p.set("before", "pause")
    paused_at = p.info("txlog")["applied_index"]
    wait_caught_up(cluster, behind, paused_at)
    cluster.kill(behind, signal.SIGSTOP)
    try:
        # Big values: more than the socket buffers between the txlog and the paused node can hold, so the node
        # cannot have received these entries before the trim.
        value = "v" * 16384
        for i in range(4000):
            p.set(f"big:{i % 500}", f"{i}:{value}")
        applied = p.info("txlog")["applied_index"]
        wait_for(lambda: min(log_first_indexes(cluster)) > paused_at + 1500, 30,
                 "the log to be trimmed well past the paused node")
    finally:
        cluster.kill(behind, signal.SIGCONT)
    wait_caught_up(cluster, behind, applied)
    info = txlog_info(cluster, behind)
    assert info["snapshots_loaded"] == 1, "the node should have reloaded a snapshot"
    assert txlog_info(cluster, replicas[1])["snapshot_failures"] == 0
    assert cluster.supervisor.procs[behind].poll() is None, "it reloads in place, without restarting"
    assert dump_over_resp(cluster.client(behind)) == dump_over_resp(p)


def test_snapshot_every_zero_writes_none_and_keeps_the_whole_log(tmp_path):
    c = RunningCluster(str(tmp_path / "cluster"), snapshot_every=0).start()
    try:
        p = c.client(c.primary())
        for i in range(500):
            p.set(f"key:{i}", i)
        applied = p.info("txlog")["applied_index"]
        for n in c.data_nodes():
            wait_caught_up(c, n.name, applied)
            assert txlog_info(c, n.name)["snapshots_written"] == 0
        assert snapshots_in_store(c) == []
        assert log_first_indexes(c) == [1, 1, 1]
    finally:
        c.stop()


def test_a_snapshot_holds_exactly_the_log_replayed_up_to_its_index(tmp_path):
    """Every data type, expiry, transactions, random picks: the snapshot a replica wrote equals the log up to its
    index applied in a fresh process (another hash seed), with the epoch and primary of that point."""
    c = RunningCluster(str(tmp_path / "cluster"), snapshot_every=250).start()
    try:
        primary = c.primary()
        send_random_commands(c.client(primary), random.Random(77), 700)
        wait_for(lambda: snapshots_in_store(c), 30, "a snapshot")
        store = SnapshotStore(c.plan.path("snapshots"), "shard0")
        snapshot = store.snapshots()[0]
        state = store.read(snapshot)
        assert state["applied_index"] == snapshot.index and state["primary_id"] == primary and state["epoch"] >= 1
        ours = json.loads(json.dumps(dump_keyspace(state["keyspace"], now_ms=None)))   # as the replay prints it
        assert ours and ours == replay_in_fresh_process(c, snapshot.index)
    finally:
        c.stop()


def test_a_primary_without_a_live_replica_snapshots_and_trims_the_log(cluster):
    """With no replica to write snapshots (both down, or none configured) the primary writes them once nobody has
    for PRIMARY_SNAPSHOT_AFTER intervals, so the log is still trimmed; then every node starts from a snapshot."""
    primary = cluster.primary()
    replicas = [n.name for n in cluster.data_nodes() if n.name != primary]
    for name in replicas:
        cluster.kill(name)
    p = cluster.client(primary)
    written = 0

    def write_and_check_trim() -> bool:
        nonlocal written
        for i in range(written, written + 100):      # one log record each (a pipeline's would share one)
            assert p.set(f"lone:{i}", i)
        written += 100
        return min(log_first_indexes(cluster)) > 1
    wait_for(write_and_check_trim, 60, "the log to be trimmed with both replicas down")
    assert txlog_info(cluster, primary)["snapshots_written"] >= 2
    assert txlog_info(cluster, primary)["snapshot_failures"] == 0

    cluster.kill(primary)
    cluster.restart(primary)
    assert cluster.primary(timeout_s=30) == primary
    assert txlog_info(cluster, primary)["snapshots_loaded"] == 1
    p = cluster.client(primary)
    assert p.mget([f"lone:{i}" for i in range(written)]) == [str(i).encode() for i in range(written)]
    # The replicas stopped below the trim: they start from the newest snapshot too and catch up.
    for name in replicas:
        cluster.restart(name)
    applied = txlog_info(cluster, primary)["applied_index"]
    expected = dump_over_resp(p)
    for name in replicas:
        wait_for(lambda: cluster.role(name) is not None, 30, f"{name} to serve")
        wait_caught_up(cluster, name, applied)
        assert txlog_info(cluster, name)["snapshots_loaded"] >= 1
        assert dump_over_resp(cluster.client(name)) == expected, name
