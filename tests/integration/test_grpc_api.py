"""The data node's gRPC API (proto/memdb.proto) on a real cluster: typed replies, exactly-once retries,
read-your-writes on replicas, pipelines in order, topology."""
import grpc

from memdb.generated import memdb_pb2 as pb
from memdb.generated import memdb_pb2_grpc as pb_grpc


def stub_for(cluster, name):
    node = cluster.node(name)
    return pb_grpc.MemdbStub(grpc.insecure_channel(f"127.0.0.1:{node.grpc_port}"))


def req(*args, **kw):
    return pb.Request(args=[a if isinstance(a, bytes) else str(a).encode() for a in args], **kw)


def test_typed_replies_and_errors(cluster):
    s = stub_for(cluster, cluster.primary())
    assert s.Execute(req("SET", "k", "v")).reply.simple == "OK"
    assert s.Execute(req("GET", "k")).reply.bulk == b"v"
    assert s.Execute(req("GET", "missing")).reply.null
    assert s.Execute(req("INCR", "n")).reply.integer == 1
    s.Execute(req("HSET", "h", "f", "1"))
    m = s.Execute(req("HGETALL", "h")).reply.map
    assert [(e.key.bulk, e.value.bulk) for e in m.entries] == [(b"f", b"1")]
    s.Execute(req("ZADD", "z", "1.5", "m"))
    assert s.Execute(req("ZSCORE", "z", "m")).reply.double == 1.5
    assert s.Execute(req("INCR", "k")).reply.error == "ERR value is not an integer or out of range"
    assert s.Execute(req("NOSUCH")).reply.error.startswith("ERR unknown command 'NOSUCH'")
    assert s.Execute(req("GET", "k", db=3)).reply.null


def test_exactly_once_retry_returns_first_reply(cluster):
    s = stub_for(cluster, cluster.primary())
    first = s.Execute(req("INCR", "counter", client_id="client-1", client_seq=7))
    retry = s.Execute(req("INCR", "counter", client_id="client-1", client_seq=7))
    assert first.reply.integer == retry.reply.integer == 1
    assert s.Execute(req("INCR", "counter", client_id="client-1", client_seq=8)).reply.integer == 2
    assert s.Execute(req("GET", "counter")).reply.bulk == b"2"


def test_read_your_writes_on_a_replica(cluster):
    primary = cluster.primary()
    replica = next(n.name for n in cluster.data_nodes() if n.name != primary)
    p, r = stub_for(cluster, primary), stub_for(cluster, replica)
    for i in range(20):
        written = p.Execute(req("SET", "ryw", i))
        assert r.Execute(req("GET", "ryw", min_index=written.index)).reply.bulk == str(i).encode()


def test_pipeline_replies_in_order_and_topology(cluster):
    s = stub_for(cluster, cluster.primary())
    requests = [req("RPUSH", "l", i, request_id=i) if i % 3 else req("LLEN", "l", request_id=i) for i in range(60)]
    replies = list(s.Pipeline(iter(requests)))
    assert [r.request_id for r in replies] == list(range(60))
    lengths = [r.reply.integer for r in replies]
    pushed = 0
    for i, n in enumerate(lengths):          # every LLEN sees exactly the pushes before it on the stream
        if i % 3:
            pushed += 1
        assert n == pushed, (i, lengths)
    topo = s.Topology(pb.TopologyRequest())
    assert len(topo.shards) == 1 and topo.shards[0].slots[0].end == 16383
    roles = [n.role for n in topo.shards[0].nodes]
    assert roles[0] == "primary" and roles.count("replica") == 2
    assert all(n.grpc_port for n in topo.shards[0].nodes)
