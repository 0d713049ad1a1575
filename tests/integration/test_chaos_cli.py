"""The zone simulator through its CLI (`memdb chaos ...`, `memdb cluster status`) against real processes."""
import json
import subprocess
import sys
import time

import pytest
import redis

from tests.integration.workload import COUNTER


def memdb(cluster, *args) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "memdb.cli", *args, "--dir", cluster.plan.directory],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"memdb {' '.join(args)} failed: {out.stderr}"
    return out


def status(cluster) -> dict:
    return json.loads(memdb(cluster, "cluster", "status", "--json").stdout)


def test_partitioned_primary_zone_fails_over_and_rejoins(cluster):
    old = cluster.primary()
    assert cluster.node(old).zone == "a"
    old_client = cluster.client(old, socket_timeout=5)
    old_client.set("before", "1")
    memdb(cluster, "chaos", "partition", "zone-a")
    assert status(cluster)["faults"]["partitions"] == [["a", "b"], ["a", "c"]]
    new = cluster.primary(exclude=old, timeout_s=10)
    assert cluster.node(new).zone in ("b", "c")
    # The old primary is cut off from the log's majority: it acknowledges nothing any more.
    with pytest.raises(redis.RedisError):
        old_client.set("during-partition", "x")
    assert cluster.client(new).set("after", "2") is True
    memdb(cluster, "chaos", "heal")
    deadline = time.monotonic() + 10
    while cluster.role(old) != "slave":
        assert time.monotonic() < deadline, "the old primary did not rejoin as a replica"
        time.sleep(0.1)
    while cluster.client(old).get("after") != b"2":
        assert time.monotonic() < deadline, "the old primary did not catch up"
        time.sleep(0.05)
    assert cluster.client(new).get("during-partition") is None
    assert cluster.client(old).get("during-partition") is None
    assert cluster.client(new).get("before") == b"1"


def test_latency_is_on_the_wire(cluster):
    p = cluster.client(cluster.primary())

    def median_write_ms() -> float:
        times = []
        for i in range(15):
            t0 = time.perf_counter()
            p.incr(COUNTER)
            times.append((time.perf_counter() - t0) * 1000)
        return sorted(times)[len(times) // 2]

    memdb(cluster, "chaos", "latency", "40ms")
    assert status(cluster)["faults"]["latency_ms"] == 40.0
    time.sleep(0.3)
    # A quorum write must cross zones at least once (leader -> follower -> leader), so it cannot beat one RTT.
    slow = median_write_ms()
    assert slow >= 40, f"median durable write took {slow:.1f} ms with 40 ms of inter-zone RTT"
    memdb(cluster, "chaos", "heal")
    time.sleep(0.3)
    assert median_write_ms() < 40
    assert status(cluster)["faults"] == {}


def test_kill_pause_restart_and_status(cluster):
    replica = next(n.name for n in cluster.data_nodes() if n.name != cluster.primary())
    memdb(cluster, "chaos", "kill", replica)
    rows = {r["name"]: r for r in status(cluster)["nodes"]}
    assert rows[replica]["alive"] is False
    assert set(rows) >= {"txlog-a", "txlog-b", "txlog-c", "data-0a", "data-0b", "data-0c", "endpoint"}
    cluster.client(cluster.primary()).set("while-down", "1")
    memdb(cluster, "chaos", "restart", replica)
    deadline = time.monotonic() + 15
    while True:
        try:
            if cluster.client(replica).get("while-down") == b"1":
                break
        except redis.ConnectionError:
            pass
        assert time.monotonic() < deadline, "restarted replica did not catch up"
        time.sleep(0.1)
    # the txlog leader's averages: an LMDB commit, and an append's wait for its majority
    leader = next(r for r in status(cluster)["nodes"] if r["kind"] == "txlog" and r["role"] == "leader")
    assert leader["fsync_ms"] > 0 and leader["commit_ms"] > 0, leader
    # the table, to a reader that left before it was written (`| true`, as `| head` does once it has its lines):
    # no traceback
    piped = subprocess.run(f"{sys.executable} -m memdb.cli cluster status --dir {cluster.plan.directory} | true",
                           shell=True, capture_output=True, text=True, timeout=60)
    assert piped.stderr == "", piped.stderr
    assert "loop_max_ms" in memdb(cluster, "cluster", "status").stdout.splitlines()[0]
    # every txlog node reports the longest its loop was held past a tick (txlog Status tick_late_max_us)
    assert all(isinstance(r["loop_max_ms"], float) and r["loop_max_ms"] >= 0
               for r in status(cluster)["nodes"] if r["kind"] == "txlog"), leader
    assert 1 <= leader["logs"]["shard0"]["entries_in_memory"] <= 512, leader
    memdb(cluster, "chaos", "pause", "txlog-c")
    assert status(cluster)["faults"]["paused"] == ["txlog-c"]
    assert cluster.client(cluster.primary()).set("one-txlog-paused", "1") is True   # 2 of 3 still commit
    out = memdb(cluster, "chaos", "heal")
    assert "resumed txlog-c" in out.stdout
    zone_kill = memdb(cluster, "chaos", "kill", "zone-c")
    assert "txlog-c" in zone_kill.stdout and "data-0c" in zone_kill.stdout
    assert cluster.client(cluster.primary()).set("zone-c-down", "1") is True


def test_bad_chaos_arguments_are_refused(cluster):
    for args in (["chaos", "kill", "nope"], ["chaos", "partition", "zone-x"], ["chaos", "partition", "a", "a"]):
        out = subprocess.run([sys.executable, "-m", "memdb.cli", *args, "--dir", cluster.plan.directory],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 2 and "memdb chaos:" in out.stderr


def test_replica_whose_txlog_node_is_stuck_tails_from_another(cluster):
    """A paused txlog follower never errors, it just stops: the replica tailing from it (its own zone's) must
    notice the log moved on without it and switch its tail to the leader."""
    primary = cluster.primary()
    replica = next(n for n in cluster.data_nodes() if n.name != primary)
    own_txlog = f"txlog-{replica.zone}"
    if cluster.txlog_leader() == own_txlog:
        pytest.skip("the replica's own txlog node leads; pausing it would test a txlog election instead")
    memdb(cluster, "chaos", "pause", own_txlog)
    try:
        p = cluster.client(primary)
        for i in range(20):
            p.set(f"while-paused-{i}", i)
        deadline = time.monotonic() + 10
        while cluster.client(replica.name).get("while-paused-19") != b"19":
            assert time.monotonic() < deadline, "the replica stayed stuck on a paused txlog node"
            time.sleep(0.1)
    finally:
        memdb(cluster, "chaos", "heal")


def test_paused_txlog_leader_does_not_stall_writes(cluster):
    """A paused (not dead) txlog leader answers nothing and closes nothing: the primary's log client must give up
    on it well inside its lease and resend elsewhere (deduplicated), so writes continue after a txlog election."""
    p = cluster.client(cluster.primary(), socket_timeout=10)
    p.set("before", "1")
    leader = cluster.txlog_leader()
    memdb(cluster, "chaos", "pause", leader)
    try:
        started = time.monotonic()
        assert p.incr("after-pause") == 1
        assert time.monotonic() - started < 5
        for i in range(20):
            assert p.incr("after-pause") == i + 2
    finally:
        memdb(cluster, "chaos", "heal")
