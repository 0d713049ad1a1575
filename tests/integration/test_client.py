"""memdb.client against real clusters: every data type, typed errors, pipelines, replica reads with
read-your-writes, two shards, and exactly-once INCR/RPUSH loops across a kill -9 of the primary."""
import asyncio
import threading
import time

import pytest

from memdb.client import (AsyncClient, Client, CrossSlotError, DataError, ResponseError,
                          TimeoutError, WrongTypeError)
from memdb.cluster import key_slot
from tests.integration.cluster import RunningCluster


def seeds_of(cluster, shard="shard0"):
    return [f"127.0.0.1:{n.grpc_port}" for n in cluster.data_nodes(shard)]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    c = RunningCluster(str(tmp_path_factory.mktemp("client") / "cluster")).start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def db(shared):
    with Client(seeds_of(shared)) as client:
        client.flushdb()
        yield client


def test_strings_and_keys(db):
    assert db.ping() is True
    assert db.set("s", "v") is True and db.get("s") == b"v"
    assert db.set("s", "w", nx=True) is None
    assert db.set("nope", "w", xx=True) is None and db.get("nope") is None
    assert db.set("s", "w", get=True) == b"v"
    assert db.set("s", "x", ex=100) is True and 0 < db.ttl("s") <= 100
    assert db.set("s", "y", keepttl=True) is True and 0 < db.pttl("s") <= 100_000
    assert db.set("s", "z", px=50_000) is True and db.persist("s") is True and db.ttl("s") == -1
    assert db.mset({"{m}a": "1", "{m}b": 2}) is True
    assert db.mget(["{m}a", "{m}b", "{m}c"]) == [b"1", b"2", None]
    assert db.incr("n") == 1 and db.incrby("n", 5) == 6 and db.decr("n") == 5 and db.decrby("n", 2) == 3
    assert db.incrbyfloat("f", 1.25) == 1.25 and isinstance(db.incrbyfloat("f"), float)
    assert db.append("{k}a", "hello") == 5 and db.append("{k}a", " world") == 11
    assert db.getrange("{k}a", 0, 4) == b"hello" and db.strlen("{k}a") == 11
    db.set("{k}n", 1)
    assert db.exists("{k}a", "{k}n", "{k}missing") == 2
    assert db.expire("{k}a", 100) is True and db.expire("missing", 100) is False
    assert db.type("{k}a") == b"string" and db.type("missing") == b"none"
    assert db.rename("{k}a", "{k}b") is True and db.get("{k}b") == b"hello world"
    assert db.delete("{k}b", "{k}n", "{k}missing") == 2
    assert sorted(db.keys("{m}*")) == [b"{m}a", b"{m}b"]
    assert sorted(db.scan_iter(match="{m}*", count=2)) == [b"{m}a", b"{m}b"]


def test_hashes_lists_sets_zsets(db):
    assert db.hset("h", "f", 1) == 1 and db.hset("h", mapping={"g": "2", "h": 3.5}) == 2
    assert db.hget("h", "g") == b"2" and db.hget("h", "none") is None
    assert db.hgetall("h") == {b"f": b"1", b"g": b"2", b"h": b"3.5"} and db.hgetall("nohash") == {}
    assert db.hincrby("h", "f", 4) == 5 and db.hlen("h") == 3
    assert sorted(db.hkeys("h")) == [b"f", b"g", b"h"] and sorted(db.hvals("h")) == [b"2", b"3.5", b"5"]
    assert db.hdel("h", "f", "none") == 1

    assert db.rpush("l", "a", "b", "c") == 3 and db.lpush("l", "z") == 4
    assert db.lrange("l", 0, -1) == [b"z", b"a", b"b", b"c"] and db.llen("l") == 4 and db.lindex("l", 1) == b"a"
    assert db.lpop("l") == b"z" and db.rpop("l") == b"c" and db.lpop("l", 5) == [b"a", b"b"]
    assert db.lpop("l") is None
    db.rpush("l", 1, 2, 1, 3, 1)
    assert db.lrem("l", 0, 1) == 3 and db.ltrim("l", 0, 0) is True and db.lrange("l", 0, -1) == [b"2"]
    assert db.blpop("l", timeout=1) == (b"l", b"2")
    started = time.monotonic()
    assert db.brpop(["{l}1", "{l}2"], timeout=0.3) is None and time.monotonic() - started >= 0.25

    assert db.sadd("s1", "a", "b", "c") == 3 and db.sadd("s1", "a") == 0 and db.srem("s1", "c") == 1
    assert db.smembers("s1") == {b"a", b"b"} and db.smembers("noset") == set()
    assert db.sismember("s1", "a") is True and db.sismember("s1", "z") is False and db.scard("s1") == 2
    db.sadd("{s}1", "a", "b")
    db.sadd("{s}2", "b", "c")
    assert db.sinter("{s}1", "{s}2") == {b"b"} and db.sunion(["{s}1", "{s}2"]) == {b"a", b"b", b"c"}
    assert db.spop("{s}2") in (b"b", b"c") and len(db.spop("{s}1", 5)) == 2

    assert db.zadd("z", {"a": 1, "b": 2, "c": 3.5}) == 3
    assert db.zscore("z", "c") == 3.5 and db.zscore("z", "none") is None
    assert db.zrange("z", 0, -1) == [b"a", b"b", b"c"]
    assert db.zrange("z", 0, -1, withscores=True) == [(b"a", 1.0), (b"b", 2.0), (b"c", 3.5)]
    assert db.zrange("z", 0, 1, desc=True, withscores=True) == [(b"c", 3.5), (b"b", 2.0)]
    assert db.zrange("z", 2, "+inf", byscore=True) == [b"b", b"c"]
    assert db.zrank("z", "b") == 1 and db.zrank("z", "none") is None
    assert db.zadd("z", {"a": 5}, nx=True) == 0 and db.zadd("z", {"a": 0.5}, xx=True, ch=True) == 1
    assert db.zadd("z", {"a": 10}, gt=True, ch=True) == 1 and db.zadd("z", {"a": 1}, gt=True, ch=True) == 0
    assert db.zadd("z", {"b": 2}, incr=True) == 4.0 and db.zadd("z", {"new": 1}, xx=True, incr=True) is None
    assert db.zincrby("z", 1.5, "c") == 5.0 and db.zcard("z") == 3
    assert db.zpopmin("z") == [(b"b", 4.0)] and db.zrem("z", "c", "none") == 1
    assert db.zpopmin("z", 3) == [(b"a", 10.0)]


def test_execute_natural_values_and_decode_responses(shared):
    with Client(seeds_of(shared), decode_responses=True) as db:
        db.hset("dh", mapping={"f": "v"})
        assert db.execute("HGETALL", "dh") == {"f": "v"}
        db.sadd("ds", "a")
        assert db.execute("SMEMBERS", "ds") == {"a"}
        db.zadd("dz", {"m": 2.5})
        assert db.execute("ZSCORE", "dz", "m") == 2.5
        assert db.execute("GET", "missing") is None
        assert db.execute("SET", "dk", "v") is True and db.get("dk") == "v"
        assert db.execute("TYPE", "dk") == "string"
        with pytest.raises(ResponseError, match="unknown command"):
            db.execute("NOSUCHCOMMAND", "x")


def test_errors_are_typed_and_never_hang(db):
    db.set("str", "x")
    with pytest.raises(WrongTypeError):
        db.lpush("str", "a")
    with pytest.raises(ResponseError, match="not an integer"):
        db.incr("str")
    with pytest.raises(ResponseError, match="wrong number of arguments"):
        db.execute("GET")
    with pytest.raises(DataError):
        db.set("k", {"a": 1})
    started = time.monotonic()
    with pytest.raises(TimeoutError):                        # a deadline, not a hang
        db.execute("BLPOP", "empty-list", 30, timeout=0.5)
    assert time.monotonic() - started < 2
    assert db.get("str") == b"x"                             # the client is fine afterwards


def test_pipeline_in_order_with_errors(db):
    with db.pipeline() as pipe:
        pipe.set("p", 1).incr("p").rpush("pl", "a").llen("pl").get("p")
        assert len(pipe) == 5
        assert pipe.execute() == [True, 2, 1, 1, b"2"]
    with db.pipeline() as pipe:
        pipe.set("ps", "x").incr("ps").get("ps")
        with pytest.raises(ResponseError):
            pipe.execute()
    with db.pipeline() as pipe:
        pipe.lpush("pq", *range(300))                         # one big write
        for i in range(300):                                   # more writes than the exactly-once window
            pipe.incr("pc")
        results = pipe.incr("ps").get("pc").execute(raise_on_error=False)
    assert results[1:301] == list(range(1, 301)) and results[-1] == b"300"
    assert isinstance(results[-2], ResponseError)


def test_async_client(shared):
    async def scenario():
        async with AsyncClient(seeds_of(shared)) as db:
            assert await db.set("ak", "v") is True and await db.get("ak") == b"v"
            assert await asyncio.gather(*[db.incr("actr") for _ in range(50)]) is not None
            assert await db.get("actr") == b"50"
            pipe = db.pipeline()
            pipe.hset("ah", mapping={"a": 1}).hgetall("ah")
            assert await pipe.execute() == [1, {b"a": b"1"}]
            assert [k async for k in db.scan_iter(match="ak")] == [b"ak"]
    asyncio.run(scenario())


def test_replica_reads_see_own_writes(shared):
    primary = shared.primary()
    replica_zone = next(n.zone for n in shared.data_nodes() if n.name != primary)
    with Client(seeds_of(shared), read_from="replica", zone=replica_zone) as db:
        topology = db.topology()["shard0"]["nodes"]
        for i in range(30):
            assert db.set("ryw", i) is True
            assert db.get("ryw") == str(i).encode()            # right after the write, on a replica
            db.rpush("rywl", i)
            assert db.llen("rywl") == i + 1
        assert db.stats["replica_reads"] == 60
        assert any(zone == replica_zone and role == "replica" for _, zone, _, role in topology)


def test_transactions(db):
    def move(pipe):
        balance = int(pipe.get("{acct}a") or 0)
        pipe.multi()
        pipe.set("{acct}a", balance - 10)
        pipe.incrby("{acct}b", 10)
    db.set("{acct}a", 100)
    assert db.transaction(move, "{acct}a") == [True, 10]
    assert db.get("{acct}a") == b"90"


def test_exactly_once_across_kill_of_the_primary(cluster):
    """Threads (sync Client) and tasks (AsyncClient) INCR and RPUSH while the primary is killed with -9: the final
    counter and list hold exactly the acknowledged operations, and the same clients keep working afterwards."""
    seeds = seeds_of(cluster)
    client = Client(seeds, timeout=20)
    client.connect()
    acked = {"incr": 0, "push": []}
    failures: list[BaseException] = []
    lock = threading.Lock()
    stop = threading.Event()

    def worker(tid: int) -> None:
        i = 0
        while not stop.is_set():
            try:
                client.incr("counter")
                with lock:
                    acked["incr"] += 1
                value = f"t{tid}-{i}"
                client.rpush("list", value)
                with lock:
                    acked["push"].append(value)
            except Exception as exc:                         # an ambiguous outcome: the test reports it
                failures.append(exc)
                return
            i += 1

    async_acked = {"incr": 0, "push": []}

    def async_side() -> None:
        async def task(tid: int, db: AsyncClient) -> None:
            i = 0
            while not stop.is_set():
                await db.incr("acounter")
                async_acked["incr"] += 1
                await db.lpush("alist", f"a{tid}-{i}")
                async_acked["push"].append(f"a{tid}-{i}")
                i += 1

        async def main() -> None:
            async with AsyncClient(seeds, timeout=20) as db:
                try:
                    await asyncio.gather(*[task(t, db) for t in range(4)])
                except Exception as exc:
                    failures.append(exc)
        asyncio.run(main())

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)] + [threading.Thread(target=async_side)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    old_primary = cluster.primary()
    before_kill = acked["incr"]
    cluster.kill(old_primary)
    new_primary = cluster.primary(exclude=old_primary, timeout_s=15)
    time.sleep(1.5)                                           # keep writing on the new primary
    stop.set()
    for t in threads:
        t.join(30)
    assert not failures, failures
    assert acked["incr"] > before_kill, "writes continued after the failover"

    check = cluster.client(new_primary)
    assert int(check.get("counter")) == acked["incr"]
    pushed = [v.decode() for v in check.lrange("list", 0, -1)]
    assert len(pushed) == len(acked["push"]) and sorted(pushed) == sorted(acked["push"])
    assert int(check.get("acounter")) == async_acked["incr"]
    apushed = [v.decode() for v in check.lrange("alist", 0, -1)]
    assert sorted(apushed) == sorted(async_acked["push"])

    # the same client object follows the new topology and keeps working
    assert client.set("after-failover", "ok") is True and client.get("after-failover") == b"ok"
    nodes = client.topology()["shard0"]["nodes"]
    assert nodes[0][0] == new_primary and nodes[0][3] == "primary"
    assert client.stats["refreshes"] >= 2 and client.stats["retries"] >= 1
    client.close()


def test_two_shards_route_by_slot(tmp_path):
    c = RunningCluster(str(tmp_path / "cluster"), shards=2).start()
    try:
        seeds = seeds_of(c, "shard0")[:1]                     # one seed is enough to learn both shards
        with Client(seeds) as db:
            deadline = time.monotonic() + 15
            while len(db.topology()) < 2 or any(
                    not any(role == "primary" for *_, role in s["nodes"]) for s in db.topology().values()):
                assert time.monotonic() < deadline, db.topology()
                time.sleep(0.2)
                db.connect()
            keys = [f"key:{i}" for i in range(200)]
            with db.pipeline() as pipe:
                for k in keys:
                    pipe.set(k, k)
                assert pipe.execute() == [True] * 200
            assert [db.get(k) for k in keys[:20]] == [k.encode() for k in keys[:20]]
            low = sum(1 for k in keys if key_slot(k.encode()) < 8192)
            p0, p1 = c.client(c.primary("shard0")), c.client(c.primary("shard1"))
            assert p0.dbsize() == low and p1.dbsize() == 200 - low and 0 < low < 200
            assert all(p0.get(k) == k.encode() for k in keys[:30] if key_slot(k.encode()) < 8192)
            assert sorted(db.keys()) == sorted(k.encode() for k in keys) and db.dbsize() == 200
            assert len(list(db.scan_iter(count=50))) == 200
            with pytest.raises(CrossSlotError):
                db.mset({"key:0": 1, "key:1": 2} if key_slot(b"key:0") != key_slot(b"key:1") else {"a": 1, "b": 2})
            assert db.mset({"{u1}x": 1, "{u1}y": 2}) is True and db.mget("{u1}x", "{u1}y") == [b"1", b"2"]
        with Client(seeds, read_from="replica") as reader:
            assert [reader.get(k) for k in keys[:10]] == [k.encode() for k in keys[:10]]
    finally:
        c.stop()
