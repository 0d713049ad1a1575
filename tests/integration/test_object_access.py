"""OBJECT IDLETIME / OBJECT FREQ on a real cluster: each node keeps its own access clock (node-local, as in Redis),
chosen by its maxmemory-policy; a read on a replica is an access there only, writes count on every node."""
import time

import pytest
import redis

from memdb.commands import messages


def test_access_clocks_are_node_local_and_follow_the_policy(cluster):
    primary_name = cluster.primary()
    replica_name = next(n.name for n in cluster.data_nodes() if n.name != primary_name)
    primary, replica = cluster.client(primary_name), cluster.client(replica_name)
    for client in (primary, replica):
        assert client.config_set("maxmemory-policy", "allkeys-lru") is True
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
    primary.set("k", "v")
    primary.set("other", "v")
    deadline = time.monotonic() + 5
    while replica.get("other") != b"v":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(2.2)
    assert replica.get("k") == b"v"                       # an access on the replica only
    assert replica.object("idletime", "k") == 0
    assert primary.object("idletime", "k") >= 2
    assert replica.object("idletime", "other") >= 2
    primary.append("other", "w")                          # a write: an access on every node that applies it
    deadline = time.monotonic() + 5
    while replica.get("other") != b"vw":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert primary.object("idletime", "other") == 0
    with pytest.raises(redis.ResponseError) as excinfo:
        primary.object("freq", "k")
    assert str(excinfo.value) == messages.OBJECT_FREQ_NO_LFU.removeprefix("ERR ")

    assert primary.config_set("maxmemory-policy", "allkeys-lfu") is True
    primary.set("hot", "v")
    deadline = time.monotonic() + 5
    while replica.exists("hot") == 0:                     # replicas apply a moment later
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert primary.object("freq", "hot") == 5             # LFU_INIT_VAL
    primary.get("hot")
    assert primary.object("freq", "hot") == 6             # the first access always counts
    with pytest.raises(redis.ResponseError) as excinfo:
        primary.object("idletime", "hot")
    assert str(excinfo.value) == messages.OBJECT_IDLETIME_LFU.removeprefix("ERR ")
    assert replica.object("idletime", "hot") == 0         # the replica still runs its LRU clock
    assert primary.object("freq", "missing") is None
    assert primary.config_set("lfu-log-factor", "0") is True
    for _ in range(5):
        primary.get("hot")
    assert primary.object("freq", "hot") == 11            # log factor 0: every access counts
