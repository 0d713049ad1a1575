"""Zero acknowledged-write loss across failures (DESIGN.md invariants 1-3), with real processes and fsync.

Each test runs a ledger workload (writers and readers) through the primary endpoint, injects one failure, lets the
cluster recover, and checks that every acknowledged write is on the new primary and, after catch-up, on every
replica, and that the whole recorded history, with final reads from the new primary, is linearizable (which is
what rules out a stale read from a deposed primary, or a lost or doubled INCR).
"""
import signal
import time

import pytest
import redis

from tests.integration.workload import COUNTER, Workload


def check_everywhere(cluster, workload: Workload, timeout_s: float = 15.0) -> None:
    ledger = workload.ledger
    primary = cluster.primary(timeout_s=timeout_s)
    ledger.check(cluster.client(primary))
    workload.final_reads(cluster.client(primary))
    expected = cluster.client(primary).get(COUNTER)
    for n in cluster.data_nodes():
        if cluster.supervisor.procs[n.name].poll() is not None:
            continue
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if cluster.client(n.name).get(COUNTER) == expected:
                    break
            except redis.RedisError:
                pass
            assert time.monotonic() < deadline, f"{n.name} did not catch up"
            time.sleep(0.05)
        ledger.check(cluster.client(n.name))
    result = workload.check_linearizable()
    reads = sum(1 for op in workload.history.generation(0) if op.kind == "get")
    assert reads > 20, f"only {reads} reads recorded"
    print(f"linearizable: {result.summary()} ({reads} reads)")


def test_kill_primary(cluster):
    endpoint = cluster.plan.base_port
    with Workload(lambda: endpoint) as w:
        time.sleep(1.0)
        old = cluster.primary()
        t_kill = time.monotonic()
        cluster.kill(old)
        new = cluster.primary(exclude=old, timeout_s=10)
        time.sleep(1.5)
    assert new != old
    assert w.ledger.acked_writes > 50
    took = w.failover_time_after(t_kill)
    assert took is not None, "no write was acknowledged after the failover"
    print(f"failover (kill -9 primary -> first acknowledged write): {took:.2f}s")
    check_everywhere(cluster, w)


def test_kill_txlog_leader(cluster):
    endpoint = cluster.plan.base_port
    with Workload(lambda: endpoint) as w:
        time.sleep(1.0)
        leader = cluster.txlog_leader()
        t_kill = time.monotonic()
        cluster.kill(leader)
        time.sleep(3.0)
    took = w.failover_time_after(t_kill)
    assert took is not None, "writes did not resume after the txlog leader died"
    print(f"txlog leader kill -> first acknowledged write: {took:.2f}s")
    check_everywhere(cluster, w)


def test_kill_primary_zone(cluster):
    endpoint = cluster.plan.base_port
    with Workload(lambda: endpoint) as w:
        time.sleep(1.0)
        old = cluster.primary()
        zone = cluster.node(old).zone
        t_kill = time.monotonic()
        for n in cluster.plan.nodes:
            if n.zone == zone:
                cluster.kill(n.name)
        new = cluster.primary(exclude=old, timeout_s=10)
        time.sleep(1.5)
    assert cluster.node(new).zone != zone
    took = w.failover_time_after(t_kill)
    assert took is not None
    print(f"zone {zone} kill -> first acknowledged write: {took:.2f}s")
    check_everywhere(cluster, w)


def test_paused_primary_is_deposed_and_rejoins(cluster):
    """SIGSTOP the primary: a replica takes over; when the old one resumes it acknowledges nothing, serves no
    read as a primary, and rejoins as a replica that catches up. Readers through the endpoint keep reading the
    whole time, so a read served by the deposed node after its lease would make the history non-linearizable."""
    endpoint = cluster.plan.base_port
    old = cluster.primary()
    stale_client = cluster.client(old, socket_timeout=5)
    stale_client.set("before-pause", "1")
    with Workload(lambda: endpoint) as w:
        time.sleep(0.5)
        cluster.kill(old, signal.SIGSTOP)
        new = cluster.primary(exclude=old, timeout_s=10)
        time.sleep(1.0)
        cluster.kill(old, signal.SIGCONT)
        # The resumed node must refuse: its lease ended long ago, and its epoch is stale.
        with pytest.raises((redis.exceptions.ReadOnlyError, redis.exceptions.TryAgainError)):
            stale_client.set("written-by-deposed", "1")
        try:
            stale_client.get("before-pause")
            # Answered: only acceptable as a replica (replica reads may lag, as in Redis), never as a primary.
            assert cluster.role(old) == "slave", "a deposed primary served a read after its lease"
        except redis.exceptions.TryAgainError:
            pass   # refused: its lease lapsed
        time.sleep(1.0)
    assert new != old
    assert cluster.client(new).get("written-by-deposed") is None
    deadline = time.monotonic() + 10
    while cluster.role(old) != "slave":
        assert time.monotonic() < deadline, "the deposed primary did not rejoin as a replica"
        time.sleep(0.1)
    check_everywhere(cluster, w)


def test_power_loss_all_nodes(cluster):
    endpoint = cluster.plan.base_port
    with Workload(lambda: endpoint) as w:
        time.sleep(1.5)
        for n in cluster.plan.nodes:
            if n.kind != "endpoint":
                cluster.kill(n.name)
    for n in cluster.plan.nodes:
        if n.kind != "endpoint":
            cluster.restart(n.name)
    assert w.ledger.acked_writes > 50
    check_everywhere(cluster, w, timeout_s=30)




def test_planned_failover_under_load(cluster):
    """FAILOVER hands the shard over while the old primary stays up: its clients' connections through the
    endpoint stay open until the endpoint moves, so a read it answered after stepping down would show here."""
    endpoint = cluster.plan.base_port
    with Workload(lambda: endpoint) as w:
        time.sleep(0.5)
        for _ in range(3):
            old = cluster.primary()
            cluster.client(old).execute_command("FAILOVER")
            cluster.primary(exclude=old, timeout_s=10)
            time.sleep(0.7)
    check_everywhere(cluster, w)


# Regression: the endpoint used to keep routing new connections to the last primary's address while no node held a
# lease, so a primary kill -9'd and restarted on the same port answered reads through the endpoint from an empty or
# half-replayed keyspace (found by bench/chaos.py, seed 2, cycle 9). The replicas are paused here only to hold the
# window open so the scenario happens every time.
def test_restarted_primary_serves_no_stale_reads_through_endpoint(cluster):
    endpoint = cluster.plan.base_port
    filler = cluster.client(endpoint)
    for i in range(40):          # a log that takes a while to replay: 40 entries of 2,000 keys each
        filler.mset({f"filler:{i}:{k}": "x" * 20 for k in range(2000)})
    with Workload(lambda: endpoint) as w:
        time.sleep(1.0)
        old = cluster.primary()
        replicas = [n.name for n in cluster.data_nodes() if n.name != old]
        for name in replicas:
            cluster.kill(name, signal.SIGSTOP)
        cluster.kill(old)
        cluster.restart(old)     # back on the same port; the endpoint still points there
        time.sleep(3.0)
        for name in replicas:
            cluster.kill(name, signal.SIGCONT)
        time.sleep(1.0)
    check_everywhere(cluster, w)
