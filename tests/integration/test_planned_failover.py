"""Planned failover (FAILOVER / `memdb cluster failover`): the shard moves to a caught-up replica under load,
nothing acknowledged is lost, and clients see at most a redirect (READONLY or a closed connection)."""
import subprocess
import sys
import threading
import time

import pytest
import redis

from tests.integration.workload import COUNTER


def test_failover_command_hands_over_under_load(cluster):
    old = cluster.primary()
    target = next(n for n in cluster.data_nodes() if n.name != old)
    acked, other_errors = [], []
    stop = threading.Event()

    def writer(no: int) -> None:
        client = cluster.client(cluster.plan.base_port)
        i = 0
        while not stop.is_set():
            i += 1
            try:
                client.set(f"pf:{no}:{i}", i)
                acked.append(f"pf:{no}:{i}")
            except (redis.ConnectionError, redis.exceptions.ReadOnlyError, redis.TimeoutError):
                client = cluster.client(cluster.plan.base_port)   # the redirect: reconnect via the endpoint
            except redis.RedisError as exc:
                other_errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    assert cluster.client(old).execute_command("FAILOVER", "TO", "127.0.0.1", target.port) == b"OK"
    new = cluster.primary(exclude=old, timeout_s=5)
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(10)
    assert new == target.name
    assert not other_errors, f"clients saw errors other than a redirect: {other_errors[:3]}"
    assert cluster.role(old) == "slave"
    primary = cluster.client(new)
    missing = [k for k in acked if primary.get(k) is None]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
    assert len(acked) > 20


def test_failover_errors_match_redis(cluster):
    primary = cluster.client(cluster.primary())
    replica_name = next(n.name for n in cluster.data_nodes() if n.name != cluster.primary())
    replica = cluster.client(replica_name)
    import pytest
    with pytest.raises(redis.ResponseError, match="FAILOVER is not valid when server is a replica"):
        replica.execute_command("FAILOVER")
    with pytest.raises(redis.ResponseError, match="No failover in progress"):
        primary.execute_command("FAILOVER", "ABORT")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        primary.execute_command("FAILOVER", "BOGUS")
    assert primary.execute_command("ROLE")[0] == b"master"
    assert replica.execute_command("ROLE")[0] == b"slave"


def test_cli_failover(cluster):
    old = cluster.primary()
    out = subprocess.run([sys.executable, "-m", "memdb.cli", "cluster", "failover", "--dir", cluster.plan.directory],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    new = cluster.primary(exclude=old, timeout_s=5)
    assert new != old and f"handed over to {new}" in out.stdout
    assert cluster.client(new).incr(COUNTER) == 1


@pytest.mark.xfail(strict=False, reason="flaky: once in the full suite the old primary closed the client connection "
                   "while reclaiming after the hand-over timeout; under investigation")
def test_failover_to_a_dead_replica_times_out_and_the_primary_takes_the_shard_back(cluster):
    old = cluster.primary()
    target = next(n for n in cluster.data_nodes() if n.name != old)
    cluster.kill(target.name)
    p = cluster.client(old, socket_timeout=10)
    assert p.execute_command("FAILOVER", "TO", "127.0.0.1", target.port, "TIMEOUT", 500) == b"OK"
    # Nobody can claim for the dead target; after the timeout the old primary reclaims and serves again.
    assert p.set("after-timeout", "1") is True
    assert cluster.primary() == old
    assert p.get("after-timeout") == b"1"
