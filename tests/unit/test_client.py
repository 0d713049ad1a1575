"""memdb.client without a cluster: value conversion, argument encoding, typed errors, client-side checks, and the
retry/exactly-once machinery against a small in-process fake of the gRPC service."""
import asyncio
import time

import grpc
import pytest

from memdb.client import (AsyncClient, Client, ClusterDownError, ConnectionError, CrossSlotError, DataError,
                          MemdbError, NoScriptError, ReadOnlyError, ResponseError, TimeoutError, WrongTypeError)
from memdb.client import aio
from memdb.client.commands import _pairs, _pop_pairs
from memdb.client.exceptions import error_from_reply
from memdb.client.values import encode_arg, from_value
from memdb.generated import memdb_pb2 as pb
from memdb.generated import memdb_pb2_grpc as pb_grpc


def V(**kw):
    return pb.Value(**kw)


def test_values_become_natural_python_values():
    assert from_value(V(bulk=b"x"), decode=False) == b"x"
    assert from_value(V(bulk=b"x"), decode=True) == "x"
    assert from_value(V(integer=-3), decode=False) == -3
    assert from_value(V(double=1.5), decode=False) == 1.5
    assert from_value(V(null=True), decode=False) is None
    assert from_value(V(simple="OK"), decode=False) is True
    assert from_value(V(simple="PONG"), decode=False) == b"PONG"
    assert from_value(V(boolean=True), decode=False) is True
    assert from_value(V(big_number="123456789012345678901234567890"), decode=False) == 123456789012345678901234567890
    assert from_value(V(verbatim=pb.Verbatim(format="txt", text=b"hi")), decode=True) == "hi"
    m = V(map=pb.Map(entries=[pb.MapEntry(key=V(bulk=b"f"), value=V(integer=1))]))
    assert from_value(m, decode=False) == {b"f": 1}
    s = V(set=pb.Array(items=[V(bulk=b"a"), V(bulk=b"b")]))
    assert from_value(s, decode=True) == {"a", "b"}
    nested = V(array=pb.Array(items=[V(array=pb.Array(items=[V(bulk=b"m"), V(double=2.0)])), V(null=True)]))
    assert from_value(nested, decode=False) == [[b"m", 2.0], None]
    unhashable_keys = V(set=pb.Array(items=[V(array=pb.Array(items=[V(integer=1)]))]))
    assert from_value(unhashable_keys, decode=False) == {(1,)}


def test_error_replies_raise_typed_exceptions():
    with pytest.raises(WrongTypeError, match="WRONGTYPE Operation"):
        from_value(V(error="WRONGTYPE Operation against a key holding the wrong kind of value"), decode=False)
    assert isinstance(from_value(V(error="ERR x"), decode=False, raise_errors=False), ResponseError)
    assert type(error_from_reply("READONLY You can't write")) is ReadOnlyError
    assert type(error_from_reply("CLUSTERDOWN Hash slot not served")) is ClusterDownError
    assert type(error_from_reply("CROSSSLOT Keys")) is CrossSlotError
    assert type(error_from_reply("NOSCRIPT No matching script")) is NoScriptError
    assert type(error_from_reply("ERR unknown command")) is ResponseError
    for cls in (WrongTypeError, ReadOnlyError, ClusterDownError, CrossSlotError, TimeoutError, ConnectionError):
        assert issubclass(cls, MemdbError)
    assert issubclass(TimeoutError, builtins_timeout()) and issubclass(ConnectionError, builtins_connection())


def builtins_timeout():
    import builtins
    return builtins.TimeoutError


def builtins_connection():
    import builtins
    return builtins.ConnectionError


def test_arguments_encode_like_redis_py():
    assert encode_arg("é") == "é".encode()
    assert encode_arg(12) == b"12"
    assert encode_arg(1.5) == b"1.5"
    assert encode_arg(b"\x00") == b"\x00"
    for bad in (None, True, {"a": 1}, [1]):
        with pytest.raises(DataError):
            encode_arg(bad)


def test_score_pairs_from_both_reply_shapes():
    assert _pairs([[b"a", 1.0], [b"b", 2.5]]) == [(b"a", 1.0), (b"b", 2.5)]
    assert _pairs([b"a", b"1", b"b", b"2.5"]) == [(b"a", 1.0), (b"b", 2.5)]
    assert _pop_pairs([b"a", 1.0]) == [(b"a", 1.0)]
    assert _pop_pairs([[b"a", 1.0]]) == [(b"a", 1.0)]
    assert _pop_pairs([]) == []


def test_client_side_checks_need_no_server():
    with Client(["127.0.0.1:1"], timeout=0.5) as db:
        with pytest.raises(CrossSlotError):
            db.mset({"a": 1, "b": 2})                 # different slots: refused before anything is sent
        with pytest.raises(DataError):
            db.set("k", None)
        with pytest.raises(DataError):
            db.set("k", "v", ex=1, px=5)
        with pytest.raises(DataError):
            db.zadd("z", {})
        with pytest.raises(DataError):
            db.execute("MULTI")
    with pytest.raises(DataError):
        Client("nohostport")
    with pytest.raises(DataError):
        Client(["127.0.0.1:1"], read_from="anywhere")


def test_bad_seed_fails_fast_with_connection_error():
    started = time.monotonic()
    with Client(["127.0.0.1:1"], timeout=0.5) as db:
        with pytest.raises(ConnectionError):
            db.get("k")
    assert time.monotonic() - started < 3


def test_tls_client_construction():
    client = AsyncClient(["db.example:7050"], tls=True)
    assert client._credentials is not None
    client = AsyncClient(["db.example:7050"], root_certificates=b"-----BEGIN CERTIFICATE-----\n")
    assert client._credentials is not None
    assert AsyncClient(["db.example:7050"])._credentials is None

    async def channel_is_secure():
        connection = client._connection("db.example:7050")
        await connection.close()
        return connection.channel
    assert isinstance(asyncio.run(channel_is_secure()), grpc.aio.Channel)


def test_write_window_bounds_writes_in_flight():
    async def scenario():
        client = AsyncClient(["127.0.0.1:1"])
        far = time.monotonic() + 5
        seqs = [await client._acquire_seq(far) for _ in range(aio.WRITE_WINDOW)]
        assert seqs == list(range(1, aio.WRITE_WINDOW + 1))
        with pytest.raises(TimeoutError):           # the oldest is still out: no room for another
            await client._acquire_seq(time.monotonic() + 0.05)
        waiter = asyncio.ensure_future(client._acquire_seq(far))
        await asyncio.sleep(0.01)
        client._release_seq(5)                      # not the oldest: still no room
        await asyncio.sleep(0.01)
        assert not waiter.done()
        client._release_seq(1)
        assert await waiter == aio.WRITE_WINDOW + 1
    asyncio.run(scenario())


class _FlakyService(pb_grpc.MemdbServicer):
    """Topology points at itself; the first write on a stream is taken and then the stream is broken (a lost
    reply), the first read gets READONLY-free TRYAGAIN once; retries are answered and recorded."""

    def __init__(self):
        self.port = 0
        self.seen: list[tuple[bytes, str, int]] = []
        self.applied: dict[tuple[str, int], int] = {}
        self.counter = 0
        self.tryagain_once = True

    async def Topology(self, request, context):
        node = pb.NodeInfo(name="n", zone="a", host="127.0.0.1", grpc_port=self.port, role="primary")
        return pb.TopologyResponse(shards=[pb.ShardInfo(name="s", slots=[pb.SlotRange(start=0, end=16383)],
                                                        nodes=[node], epoch=1)])

    def _answer(self, request) -> pb.Response:
        self.seen.append((request.args[0], request.client_id, request.client_seq))
        if request.args[0] == b"INCRBY":
            key = (request.client_id, request.client_seq)
            if key not in self.applied:                # the server's exactly-once table
                self.counter += 1
                self.applied[key] = self.counter
            return pb.Response(reply=pb.Value(integer=self.applied[key]), index=self.counter,
                               request_id=request.request_id)
        if self.tryagain_once:
            self.tryagain_once = False
            return pb.Response(reply=pb.Value(error="TRYAGAIN lease lapsed"), request_id=request.request_id)
        return pb.Response(reply=pb.Value(bulk=b"v"), request_id=request.request_id)

    async def BatchPipeline(self, request_iterator, context):
        async for batch in request_iterator:
            responses = []
            for request in batch.requests:
                responses.append(self._answer(request))
                if request.args[0] == b"INCRBY" and len([s for s in self.seen if s[0] == b"INCRBY"]) == 1:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "connection lost after apply")
            yield pb.ResponseBatch(responses=responses)


def test_lost_reply_is_retried_with_the_same_client_seq():
    async def scenario():
        service = _FlakyService()
        server = grpc.aio.server()
        pb_grpc.add_MemdbServicer_to_server(service, server)
        service.port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with AsyncClient([f"127.0.0.1:{service.port}"], timeout=5) as client:
                assert await client.incr("c") == 1          # applied, reply lost, retried: the first reply
                assert await client.incr("c") == 2
                assert await client.get("k") == b"v"          # TRYAGAIN once, then answered
                assert client.stats["retries"] >= 2
            incrs = [(cid, seq) for name, cid, seq in service.seen if name == b"INCRBY"]
            assert incrs[0] == incrs[1] and incrs[0][1] == 1 and incrs[2][1] == 2
            assert service.counter == 2                        # never applied twice
            assert all(seq == 0 for name, _, seq in service.seen if name == b"GET")   # reads carry no seq
        finally:
            await server.stop(0)
    asyncio.run(scenario())
