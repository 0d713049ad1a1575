"""Keyspace notifications on a real cluster: derived from applied log entries, so subscribers on the replicas get
them too, in the same order and with the same content as a subscriber of a real redis-server running the same
commands; notify-keyspace-events itself is replicated state (a logged CONFIG SET) and survives a failover."""
import time

import pytest
import redis

from tests.differential.harness import RespConnection, oracle_server
from tests.differential.test_notifications import FENCE, FLAGS, SCENARIOS, RedisSide, Subscriber


class ClusterSide:
    """Commands on the primary; one subscriber on every data node; the fence is a PUBLISH, which is logged, so
    every node delivers it after the notifications of everything applied before it."""

    def __init__(self, cluster):
        self.primary = cluster.primary()
        self.conn = RespConnection(cluster.node(self.primary).port)
        self.subscribers = {n.name: Subscriber(n.port) for n in cluster.data_nodes()}
        self.fences = 0

    def run(self, *args) -> dict[str, list[tuple[bytes, bytes]]]:
        self.conn.call(*args)
        self.fences += 1
        token = b"%d" % self.fences
        self.conn.call("PUBLISH", FENCE, token)
        return {name: sub.until_fence(token) for name, sub in self.subscribers.items()}

    def close(self) -> None:
        self.conn.close()
        for sub in self.subscribers.values():
            sub.close()


@pytest.fixture
def oracle():
    server = oracle_server()
    if server is None:
        pytest.skip("redis-server is not installed")
    conn = server.connect()
    conn.call("FLUSHALL")
    conn.call("CONFIG", "SET", "notify-keyspace-events", FLAGS)
    side = RedisSide(server, conn)
    try:
        yield side
    finally:
        side.subscriber.close()
        conn.call("CONFIG", "SET", "notify-keyspace-events", "")
        conn.call("FLUSHALL")
        conn.close()


def test_replicas_deliver_the_same_notifications_as_redis(cluster, oracle):
    primary = cluster.client(cluster.primary())
    assert primary.config_set("notify-keyspace-events", FLAGS) is True
    side = ClusterSide(cluster)
    try:
        for name in ("strings", "lists", "hashes", "sets", "zsets", "streams", "keys"):
            for command in SCENARIOS[name]:
                if command[0] in ("SELECT", "FLUSHDB"):
                    continue        # connection state / whole-db commands: covered in process
                expected = oracle.run(*command)
                got = side.run(*command)
                for node, messages in got.items():
                    role = "primary" if node == side.primary else "replica"
                    assert messages == expected, f"{node} ({role}): {command!r}"
            oracle.conn.call("FLUSHALL")
            side.conn.call("FLUSHALL")
        # MULTI/EXEC and EVAL apply as one entry: their events arrive together, in command order
        for script in [("MULTI",), ("SET", "tx", "1"), ("INCR", "tx"), ("LPUSH", "txl", "a"), ("EXEC",)]:
            oracle.conn.call(*script)
            side.conn.call(*script)
        expected = oracle.run("PING")
        assert set(map(tuple, side.run("PING").values())) == {tuple(expected)}
        lua = ("EVAL", "redis.call('SET', KEYS[1], 'x'); redis.call('DEL', KEYS[1]); return 1", "1", "lua")
        expected = oracle.run(*lua)
        assert set(map(tuple, side.run(*lua).values())) == {tuple(expected)}
    finally:
        side.close()


def test_replicated_setting_expiry_and_failover(cluster):
    """CONFIG SET notify-keyspace-events is a logged write: a replica refuses it, every node reports the value,
    active expiry's `expired` reaches replica subscribers, and a new primary keeps the setting."""
    old = cluster.primary()
    replicas = [n.name for n in cluster.data_nodes() if n.name != old]
    with pytest.raises(redis.ReadOnlyError):
        cluster.client(replicas[0]).config_set("notify-keyspace-events", "KEA")
    with pytest.raises(redis.ResponseError, match="Invalid event class character"):
        cluster.client(old).config_set("notify-keyspace-events", "KEAq")
    assert cluster.client(old).config_set("notify-keyspace-events", "Egx") is True
    for n in cluster.data_nodes():
        deadline = time.monotonic() + 5
        while cluster.client(n.name).config_get("notify-keyspace-events") != {"notify-keyspace-events": "gxE"}:
            assert time.monotonic() < deadline, n.name
            time.sleep(0.05)

    subs = {}
    for name in replicas:
        ps = cluster.client(name).pubsub()
        ps.psubscribe("__keyevent@0__:*")
        assert ps.get_message(timeout=2)["type"] == "psubscribe"
        subs[name] = ps
    p = cluster.client(old)
    p.set("short", "v", px=200)          # 'set' is a string event: not enabled (no '$'), 'expire' is generic
    p.lpush("list", "x")                 # no 'l': nothing
    for name, ps in subs.items():
        assert _events(ps, 2) == [(b"__keyevent@0__:expire", b"short"), (b"__keyevent@0__:expired", b"short")], name

    cluster.kill(old)
    new = cluster.primary(exclude=old, timeout_s=10)
    assert cluster.client(new).config_get("notify-keyspace-events") == {"notify-keyspace-events": "gxE"}
    survivor = next(name for name in replicas if name != new)
    cluster.client(new).delete("list")
    assert _events(subs[survivor], 1) == [(b"__keyevent@0__:del", b"list")]
    for ps in subs.values():
        ps.close()


def _events(pubsub, count: int, timeout_s: float = 5.0) -> list[tuple[bytes, bytes]]:
    got = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count and time.monotonic() < deadline:
        m = pubsub.get_message(timeout=0.1)
        if m is not None and m["type"] == "pmessage":
            got.append((m["channel"], m["data"]))
    extra = pubsub.get_message(timeout=0.3)
    assert extra is None or extra["type"] != "pmessage", f"unexpected {extra}"
    return got
