"""memdb.client against real clusters: every data type, typed errors, pipelines, replica reads with
read-your-writes, two shards, and exactly-once INCR/RPUSH loops across a kill -9 of the primary."""
import asyncio
import signal
import threading
import time

import grpc
import pytest
import redis

from memdb.client import (AsyncClient, Client, ConnectionError, CrossSlotError, DataError, NoScriptError,
                          ResponseError, TimeoutError, WrongTypeError)
from memdb.client.aio import _Shard, _Topology
from memdb.cluster import NUM_SLOTS, key_slot
from memdb.generated import memdb_pb2 as pb
from memdb.generated import memdb_pb2_grpc as pb_grpc
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
        # zone-local first: with the other replica frozen, every read still answers at once
        other = next(n.name for n in shared.data_nodes() if n.name != primary and n.zone != replica_zone)
        shared.kill(other, signal.SIGSTOP)
        try:
            quick = db.with_timeout(2)
            assert [quick.get("ryw") for _ in range(20)] == [b"29"] * 20
        finally:
            shared.kill(other, signal.SIGCONT)


def test_transactions(db):
    def move(pipe):
        balance = int(pipe.get("{acct}a") or 0)
        pipe.multi()
        pipe.set("{acct}a", balance - 10)
        pipe.incrby("{acct}b", 10)
    db.set("{acct}a", 100)
    assert db.transaction(move, "{acct}a") == [True, 10]
    assert db.get("{acct}a") == b"90"


def test_transaction_retries_when_a_watched_key_changes(shared, db):
    """transaction(): WATCH, a concurrent writer changes the key before EXEC, EXEC fails, the function runs
    again and the second EXEC applies."""
    db.set("{w}balance", 100)
    calls = []

    def withdraw(pipe):
        balance = int(pipe.get("{w}balance"))
        calls.append(balance)
        if len(calls) == 1:
            with Client(seeds_of(shared)) as other:
                other.incrby("{w}balance", 5)             # lands between WATCH and EXEC
        pipe.multi()
        pipe.set("{w}balance", balance - 30)
        pipe.rpush("{w}log", balance)
    assert db.transaction(withdraw, "{w}balance") == [True, 1]
    assert calls == [100, 105] and db.get("{w}balance") == b"75" and db.lrange("{w}log", 0, -1) == [b"105"]
    with pytest.raises(CrossSlotError):
        db.transaction(withdraw, "{w}balance", "other-slot-key")


def test_streams_geo_hyperloglog_bitmaps_and_more(db):
    first = db.xadd("st", {"f": "1"})
    second = db.xadd("st", {"f": "2", "g": "x"}, maxlen=100)
    assert db.xlen("st") == 2 and first < second
    assert db.xrange("st") == [(first, {b"f": b"1"}), (second, {b"f": b"2", b"g": b"x"})]
    assert db.xrevrange("st", count=1) == [(second, {b"f": b"2", b"g": b"x"})]
    assert db.xread({"st": first}) == [[b"st", [(second, {b"f": b"2", b"g": b"x"})]]]
    assert db.xread({"st": second}, block=100) == []            # BLOCK in ms, then nothing
    assert db.xgroup_create("st", "grp", id="0") is True
    delivered = db.xreadgroup("grp", "alice", {"st": ">"}, count=1)
    assert delivered == [[b"st", [(first, {b"f": b"1"})]]]
    pending = db.xpending("st", "grp")
    assert pending["pending"] == 1 and pending["consumers"] == [{"name": b"alice", "pending": 1}]
    assert db.xpending_range("st", "grp", "-", "+", 10)[0]["message_id"] == first
    assert db.xack("st", "grp", first) == 1 and db.xdel("st", first) == 1 and db.xtrim("st", maxlen=0,
                                                                                      approximate=False) == 1

    assert db.pfadd("hll", "a", "b", "c") == 1 and db.pfadd("hll", "a") == 0 and db.pfcount("hll") == 3
    assert db.setbit("bits", 7, 1) == 0 and db.getbit("bits", 7) == 1 and db.bitcount("bits") == 1
    assert db.geoadd("geo", [13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania"]) == 2
    assert 166_000 < db.geodist("geo", "Palermo", "Catania") < 167_000
    (lon, lat), missing = db.geopos("geo", "Palermo", "nowhere")
    assert abs(lon - 13.361389) < 1e-4 and abs(lat - 38.115556) < 1e-4 and missing is None
    near = db.geosearch("geo", longitude=15, latitude=37, radius=200, unit="km", sort="ASC", withdist=True)
    assert [m for m, _ in near] == [b"Catania", b"Palermo"] and isinstance(near[0][1], float)

    assert db.getex("{s1}", ex=100) is None and db.psetex("{s1}", 100_000, "v") is True
    assert db.getex("{s1}", persist=True) == b"v" and db.ttl("{s1}") == -1
    assert db.expireat("{s1}", int(time.time()) + 100) is True and db.expiretime("{s1}") > time.time()
    assert db.copy("{s1}", "{s1}copy") is True and db.touch("{s1}", "{s1}copy", "{s1}none") == 2
    assert db.hmset("hm", {"a": "1"}) is True and db.hstrlen("hm", "a") == 1
    assert db.hrandfield("hm", 1, withvalues=True) == [b"a", b"1"]
    assert db.rpush("{l}a", "x", "y") == 2 and db.lpushx("{l}none", "x") == 0
    assert db.linsert("{l}a", "BEFORE", "y", "m") == 3 and db.lpos("{l}a", "m") == 1
    assert db.lmove("{l}a", "{l}b", "LEFT", "RIGHT") == b"x" and db.rpoplpush("{l}a", "{l}b") == b"y"
    assert db.blmove("{l}a", "{l}b", 0.1) == b"m" and db.brpoplpush("{l}a", "{l}b", 0.1) is None
    assert db.lrange("{l}b", 0, -1) == [b"y", b"x", b"m"]          # RPOPLPUSH pushes on the left
    db.sadd("{s}a", "1", "2")
    assert db.smove("{s}a", "{s}b", "1") is True and db.smismember("{s}a", ["1", "2"]) == [False, True]
    assert db.sunionstore("{s}c", "{s}a", "{s}b") == 2 and db.srandmember("{s}c") in (b"1", b"2")
    assert sorted(db.srandmember("{s}c", 5)) == [b"1", b"2"]
    db.zadd("{z}a", {"a": 1, "b": 2, "c": 3})
    assert db.zrevrangebyscore("{z}a", 3, 2) == [b"c", b"b"] and db.zmscore("{z}a", ["a", "x"]) == [1.0, None]
    assert db.zunionstore("{z}u", {"{z}a": 2}) == 3 and db.zscore("{z}u", "c") == 6.0
    assert db.zremrangebyscore("{z}a", 3, 3) == 1 and db.zremrangebyrank("{z}a", 0, 0) == 1
    assert db.bzpopmin("{z}a", 0.1) == (b"{z}a", b"b", 2.0) and db.bzpopmax("{z}a", 0.1) is None
    assert db.eval("return {KEYS[1], ARGV[1]}", 1, "ek", "ev") == [b"ek", b"ev"]
    assert db.publish("chan", "hello") == 0


def test_bad_arguments_raise_clear_errors_at_once(shared, db):
    seeds = seeds_of(shared)
    for bad_seeds in ([], "", "no-port", "host:notaport", ["127.0.0.1:0"], [("127.0.0.1", "x")], [None]):
        with pytest.raises(DataError, match="seed"):
            Client(bad_seeds)
    for options, match in (({"timeout": "soon"}, "timeout"), ({"timeout": 0}, "timeout"),
                           ({"db": 16}, "db"), ({"read_from": "replicas"}, "read_from"),
                           ({"private_key": b"k"}, "certificate_chain"),
                           ({"root_certificates": "/nonexistent/ca.crt"}, "cannot read"),
                           ({"tls_server_name": "x"}, "TLS option")):
        with pytest.raises(DataError, match=match):
            Client(seeds, **options)
    started = time.monotonic()
    with pytest.raises(DataError):
        db.set("k", None)
    with pytest.raises(DataError):
        db.expire("k", "soon")
    with pytest.raises(DataError):
        db.execute()
    with pytest.raises(DataError, match="timeout"):
        db.execute("GET", "k", timeout=-1)
    with pytest.raises(DataError, match="timeout"):
        db.with_timeout("1s")
    with pytest.raises(DataError):
        db.blpop("l", timeout=-1)
    with pytest.raises(DataError):
        db.zadd("z", {})
    with pytest.raises(DataError):
        db.xadd("st", {})
    with pytest.raises(DataError):
        db.xread({"st": "0"}, block=-5)
    with pytest.raises(DataError, match="MULTI"):
        db.execute("MULTI")
    with pytest.raises(ResponseError, match="syntax error|wrong number"):
        db.execute("SET", "k", "v", "EX")
    assert time.monotonic() - started < 2
    # an address nobody listens on: ConnectionError at the client's timeout, not a hang
    started = time.monotonic()
    with Client(["127.0.0.1:1"], timeout=1) as nobody:
        with pytest.raises(ConnectionError, match="127.0.0.1:1"):
            nobody.get("k")
    assert time.monotonic() - started < 3


def test_per_call_deadline(shared, db):
    """with_timeout(s) bounds one call: against a frozen primary it raises TimeoutError at s, not at the
    client's 10 s."""
    db.set("dl", 1)
    primary = shared.primary()
    fast = db.with_timeout(0.3)
    shared.kill(primary, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="may or may not have been applied"):
            fast.incr("dl")
        assert 0.25 < time.monotonic() - started < 1.0
    finally:
        shared.kill(primary, signal.SIGCONT)
    assert fast.get("dl") in (b"1", b"2")                       # the write's outcome was unknown, not lost
    assert db.with_timeout(5).execute("GET", "dl") in (b"1", b"2")


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


@pytest.fixture(scope="module")
def two_shards(tmp_path_factory):
    c = RunningCluster(str(tmp_path_factory.mktemp("client2") / "cluster"), shards=2).start()
    try:
        yield c
    finally:
        c.stop()


def wait_for_both_primaries(db: Client) -> None:
    deadline = time.monotonic() + 15
    while len(db.topology()) < 2 or any(
            not any(role == "primary" for *_, role in s["nodes"]) for s in db.topology().values()):
        assert time.monotonic() < deadline, db.topology()
        time.sleep(0.2)
        db.connect()


def test_two_shards_route_by_slot(two_shards):
    c = two_shards
    seeds = seeds_of(c, "shard0")[:1]                         # one seed is enough to learn both shards
    with Client(seeds) as db:
        wait_for_both_primaries(db)
        db.flushdb()
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
        # scripts: loaded on every shard, so EVALSHA works for keys of either shard
        sha = db.script_load("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        (k0,), (k1,) = keys_by_shard(1)
        db.set(k0, 1)
        db.set(k1, 1)
        assert db.evalsha(sha, 1, k0, 5) == 6 and db.evalsha(sha, 1, k1, 7) == 8
        with pytest.raises(NoScriptError):
            db.evalsha("0" * 40, 1, k1)
        assert db.eval("return redis.call('GET', KEYS[1])", 1, k1) == b"8"
    with Client(seeds, read_from="replica") as reader:
        assert [reader.get(k) for k in keys[:10]] == [k.encode() for k in keys[:10]]
        assert reader.stats["moved"] == 0 and reader.stats["retries"] == 0


def keys_by_shard(count: int = 10) -> tuple[list[str], list[str]]:
    names = [f"mv:{i}" for i in range(400)]
    low = [k for k in names if key_slot(k.encode()) < 8192][:count]
    high = [k for k in names if key_slot(k.encode()) >= 8192][:count]
    return low, high


def test_moved_names_the_grpc_endpoint(two_shards):
    """MOVED over gRPC names the owner's gRPC address (RESP clients still get the RESP one)."""
    c = two_shards
    low, high = keys_by_shard(1)
    p0, p1 = c.node(c.primary("shard0")), c.node(c.primary("shard1"))
    replica0 = next(n for n in c.data_nodes("shard0") if n.name != p0.name)
    cases = [(p0, ["SET", high[0], "v"], p1),           # a key of the other shard, write and read
             (p0, ["GET", high[0]], p1),
             (p1, ["GET", low[0]], p0),
             (replica0, ["SET", low[0], "v"], p0)]       # a write to a replica of the right shard
    for node, args, owner in cases:
        channel = grpc.insecure_channel(f"127.0.0.1:{node.grpc_port}")
        reply = pb_grpc.MemdbStub(channel).Execute(pb.Request(args=[a.encode() for a in args]), timeout=5).reply
        channel.close()
        assert reply.error == f"MOVED {key_slot(args[1].encode())} 127.0.0.1:{owner.grpc_port}", (node.name, args)
    with pytest.raises(redis.exceptions.MovedError, match=f"^{key_slot(high[0].encode())} 127.0.0.1:{p1.port}$"):
        c.client(p0.name).set(high[0], "v")


def stale_topology(db: Client) -> None:
    """Make the client believe shard0 serves every slot (what it would hold had it learnt the topology before
    the slots of shard1 existed elsewhere)."""
    topology = db._async._topology
    shard0 = topology.shards["shard0"]
    db._async._topology = _Topology([_Shard("shard0", [(0, NUM_SLOTS - 1)], shard0.nodes, shard0.epoch)])


def test_client_follows_moved_with_a_stale_topology(two_shards):
    c = two_shards
    low, high = keys_by_shard(10)
    p0, p1 = c.client(c.primary("shard0")), c.client(c.primary("shard1"))
    with Client(seeds_of(c, "shard0")) as db:
        wait_for_both_primaries(db)
        # 1. MOVED -> refresh: the first key of shard1 is redirected, the refreshed topology routes the rest
        stale_topology(db)
        db._async._refreshed_at = 0.0    # the connect() above must not rate-limit (REFRESH_MIN_INTERVAL_S) it
        for k in low + high:
            assert db.set(k, f"v-{k}") is True
        assert [db.get(k) for k in low + high] == [f"v-{k}".encode() for k in low + high]
        assert db.stats["moved"] == 1 and len(db.topology()) == 2
        # 2. a topology that stays stale (refreshes suppressed): every shard1 command follows MOVED's address
        stale_topology(db)
        db._async._refreshed_at = float("inf")
        retries = db.stats["retries"]
        with db.pipeline() as pipe:
            for k in low + high:
                pipe.incr(f"{{{k}}}n")
            assert pipe.execute() == [1] * 20
        assert [db.get(k) for k in high] == [f"v-{k}".encode() for k in high]
        assert db.stats["moved"] == 1 + 10 + 10
        # each MOVED is one retry; a redirect to a wrong (RESP) port would add connection failures
        assert db.stats["retries"] - retries == 20
    # every write landed once, on the shard that owns its key
    assert all(p1.get(f"{{{k}}}n") == b"1" for k in high) and all(p0.get(f"{{{k}}}n") == b"1" for k in low)
