"""Pub/sub on a real cluster: PUBLISH on the primary is logged, so subscribers on replicas receive it too."""
import time

import redis


def next_message(pubsub, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        m = pubsub.get_message(timeout=0.1)
        if m is not None and m["type"] in ("message", "pmessage", "smessage"):
            return m
    raise AssertionError("no message arrived")


def test_publish_reaches_subscribers_on_every_node(cluster):
    primary = cluster.primary()
    subs = {}
    for n in cluster.data_nodes():
        ps = cluster.client(n.name).pubsub()
        ps.subscribe("news")
        ps.psubscribe("n*")
        assert ps.get_message(timeout=2)["type"] == "subscribe"
        assert ps.get_message(timeout=2)["type"] == "psubscribe"
        subs[n.name] = ps
    p = cluster.client(primary)
    assert p.publish("news", "hello") == 2        # this node's receivers: one channel + one pattern subscription
    for name, ps in subs.items():
        got = [next_message(ps), next_message(ps)]
        kinds = sorted((m["type"], m["channel"], m["data"]) for m in got)
        assert kinds == [("message", b"news", b"hello"), ("pmessage", b"news", b"hello")], name
    assert p.pubsub_numsub("news") == [(b"news", 1)]
    assert p.pubsub_channels() == [b"news"]
    assert p.pubsub_numpat() == 1
    for ps in subs.values():
        ps.close()


def test_subscribed_mode_rules_and_resp3(cluster):
    node = cluster.node(cluster.primary())
    import socket
    s = socket.create_connection(("127.0.0.1", node.port))
    s.sendall(b"SUBSCRIBE a b\r\nGET x\r\nPING\r\nUNSUBSCRIBE\r\nUNSUBSCRIBE\r\n")
    time.sleep(0.3)
    data = s.recv(65536)
    assert data.startswith(b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n")
    assert b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed" in data
    assert b"*2\r\n$4\r\npong\r\n$0\r\n\r\n" in data
    assert data.endswith(b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n")
    s.close()
    r3 = redis.Redis(host="127.0.0.1", port=node.port, protocol=3)
    ps = r3.pubsub()
    ps.subscribe("c3")
    ps.get_message(timeout=2)
    assert r3.get("anything") is None          # RESP3: other commands still work on a subscribed client
    cluster.client(cluster.primary()).publish("c3", "m")
    assert next_message(ps)["data"] == b"m"
    ps.close()
