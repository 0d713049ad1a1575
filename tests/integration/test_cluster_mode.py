"""Several shards: data nodes answer in cluster mode (MOVED, CROSSSLOT, CLUSTER ...), redis-py's RedisCluster
and `redis-cli -c` work, and a single shard still answers plain clients."""
import subprocess
import time

import pytest
import redis
from redis.cluster import RedisCluster

from memdb.cluster import key_slot
from tests.integration.cluster import RunningCluster


@pytest.fixture
def two_shards(tmp_path):
    c = RunningCluster(str(tmp_path / "cluster"), shards=2).start()
    try:
        yield c
    finally:
        c.stop()


def wait_for_topology(cluster, shards: int, timeout_s: float = 10) -> list:
    deadline = time.monotonic() + timeout_s
    while True:
        slots = cluster.client("data-0b").execute_command("CLUSTER", "SLOTS")
        if len(slots) == shards:
            return slots
        assert time.monotonic() < deadline, f"CLUSTER SLOTS still shows {slots}"
        time.sleep(0.1)


def test_redirects_and_cluster_commands(two_shards):
    c = two_shards
    slots = wait_for_topology(c, 2)
    assert sorted((s[0], s[1]) for s in slots) == [(0, 8191), (8192, 16383)]
    assert all(len(s) == 5 for s in slots), "each range lists its primary and two replicas"
    p0 = c.client(c.primary("shard0"))
    key_here = next(f"k{i}" for i in range(100) if key_slot(f"k{i}".encode()) < 8192)
    key_there = next(f"k{i}" for i in range(100) if key_slot(f"k{i}".encode()) >= 8192)
    assert p0.set(key_here, "1") is True
    shard1_primary = c.node(c.primary("shard1"))
    with pytest.raises(redis.exceptions.MovedError) as moved:   # redis-py strips the "MOVED " prefix
        p0.set(key_there, "1")
    assert str(moved.value) == f"{key_slot(key_there.encode())} 127.0.0.1:{shard1_primary.port}"
    with pytest.raises(redis.ResponseError, match="Keys in request don't hash to the same slot"):
        p0.mset({key_here: 1, key_there: 2})
    assert p0.execute_command("CLUSTER", "KEYSLOT", "foo") == 12182
    assert p0.execute_command("CLUSTER", "KEYSLOT", "{user1}.a") == p0.execute_command("CLUSTER", "KEYSLOT", "x{user1}")
    info = p0.execute_command("CLUSTER", "INFO")
    assert b"cluster_state:ok" in info and b"cluster_size:2" in info
    nodes = p0.execute_command("CLUSTER", "NODES")
    assert nodes.count(b"master") == 2 and nodes.count(b"slave") == 4 and b"myself,master" in nodes
    shards = p0.execute_command("CLUSTER", "SHARDS")
    assert len(shards) == 2
    # A replica redirects reads to its primary unless the connection said READONLY.
    replica = next(n.name for n in c.data_nodes("shard0") if n.name != c.primary("shard0"))
    rc = c.client(replica)
    with pytest.raises(redis.exceptions.MovedError):
        rc.get(key_here)
    rc.execute_command("READONLY")
    deadline = time.monotonic() + 5
    while rc.get(key_here) != b"1":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_redis_py_cluster_client_and_redis_cli(two_shards):
    c = two_shards
    wait_for_topology(c, 2)
    node = c.node("data-0a")
    rc = RedisCluster(host="127.0.0.1", port=node.port)
    for i in range(50):
        assert rc.set(f"key:{i}", i) is True
    assert [rc.get(f"key:{i}") for i in range(50)] == [str(i).encode() for i in range(50)]
    assert rc.incr("counter") == 1
    on_shard1 = c.client(c.primary("shard1"))
    shard1_keys = [f"key:{i}" for i in range(50) if key_slot(f"key:{i}".encode()) >= 8192]
    assert shard1_keys and all(on_shard1.get(k) is not None for k in shard1_keys), "keys did not land on shard1"
    rc.close()
    out = subprocess.run(["redis-cli", "-c", "-p", str(node.port), "SET", "foo", "bar"], capture_output=True,
                         text=True, timeout=10)
    assert out.stdout.strip() == "OK"
    out = subprocess.run(["redis-cli", "-c", "-p", str(node.port), "GET", "foo"], capture_output=True, text=True,
                         timeout=10)
    assert out.stdout.strip() == "bar"


def test_one_shard_answers_plain_clients(cluster):
    p = cluster.client(cluster.primary())
    assert p.mset({"a": 1, "b": 2, "c{x}": 3}) is True     # keys of different slots: fine with one shard
    assert p.mget("a", "b", "c{x}") == [b"1", b"2", b"3"]
    slots = p.execute_command("CLUSTER", "SLOTS")
    assert slots[0][0] == 0 and slots[0][1] == 16383
