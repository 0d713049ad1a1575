"""Keyspace notifications and OBJECT IDLETIME/FREQ vs redis-server.

Notifications are compared as what a subscriber receives: a connection to redis-server in subscribed mode
(PSUBSCRIBE __key*__:*) reads every message published while one command ran, up to a fence message published right
after it (redis-server delivers in order, so everything the command caused comes before the fence). memdb is
compared twice:
  * in process (MemdbInstance): the events the handlers recorded, published through memdb.notify.publish exactly
    as the node does after applying an entry: fast, so hypothesis runs long command sequences;
  * on a real cluster (memdb/node.py, the log, pub/sub delivery): subscribers on the primary AND on a replica must
    receive exactly what the Redis subscriber received, the setting itself having gone through CONFIG SET.
"""
from __future__ import annotations

import socket
import time

import hiredis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memdb import access, notify
from memdb.config import Config, ConfigError
from tests.differential.harness import Approx, Error, MemdbInstance, encode_command

FLAGS = "KEAn"                # every event class Redis 7.0 emits, plus new-key events
FENCE = b"memdb-test-fence"
PATTERN = b"__key*__:*"


class Subscriber:
    """A raw RESP2 connection in subscribed mode, on the notification pattern and a fence channel."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.reader = hiredis.Reader()
        self.sock.sendall(encode_command(("PSUBSCRIBE", PATTERN)) + encode_command(("SUBSCRIBE", FENCE)))
        assert self._next()[0] == b"psubscribe"
        assert self._next()[0] == b"subscribe"

    def _next(self) -> list:
        while True:
            item = self.reader.gets()
            if item is not False:
                return item
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("subscriber connection closed")
            self.reader.feed(chunk)

    def until_fence(self, token: bytes) -> list[tuple[bytes, bytes]]:
        """(channel, message) of every notification before the fence message `token`."""
        got = []
        while True:
            item = self._next()
            if item[0] == b"message" and item[1] == FENCE:
                assert item[2] == token, f"fence {item[2]!r} arrived while waiting for {token!r}"
                return got
            assert item[0] == b"pmessage", item
            got.append((item[2], item[3]))

    def close(self) -> None:
        self.sock.close()


class RedisSide:
    """The oracle: commands on one connection, notifications from a subscriber."""

    def __init__(self, server, conn):
        self.conn = conn
        self.subscriber = Subscriber(server.port)
        self.fences = 0

    def run(self, *args) -> list[tuple[bytes, bytes]]:
        self.conn.call(*args)
        self.fences += 1
        token = b"%d" % self.fences
        self.conn.call("PUBLISH", FENCE, token)
        return self.subscriber.until_fence(token)


class InProcessSide:
    """memdb's handlers with notifications on: what the node would publish after applying the command."""

    def __init__(self):
        self.memdb = MemdbInstance(seed=0)
        self.memdb.keyspace.set_notify_flags(notify.parse_flags(FLAGS))

    def run(self, *args) -> list[tuple[bytes, bytes]]:
        self.memdb.call(*args)
        keyspace = self.memdb.keyspace
        events, keyspace.events = keyspace.events, []
        out: list[tuple[bytes, bytes]] = []
        notify.publish(events, keyspace.notify_flags, lambda channel, message, sharded: out.append((channel, message)))
        return out


@pytest.fixture
def redis_side(redis_server, redis_conn):
    redis_conn.call("SELECT", 0)
    redis_conn.call("FLUSHALL")
    assert redis_conn.call("CONFIG", "SET", "notify-keyspace-events", FLAGS).value == b"OK"
    side = RedisSide(redis_server, redis_conn)
    try:
        yield side
    finally:
        side.subscriber.close()
        redis_conn.call("CONFIG", "SET", "notify-keyspace-events", "")
        redis_conn.call("SELECT", 0)
        redis_conn.call("FLUSHALL")


# One scenario per command family: every event a command can cause, in Redis's order, including the ones that
# only happen on a particular path (a pop that empties the key, a store of an empty result over an existing key).
SCENARIOS = {
    "strings": [
        ("SET", "s", "v"), ("SET", "s", "w", "EX", "100"), ("SET", "s", "x", "NX"), ("SET", "s", "y", "XX", "GET"),
        ("SET", "s", "z", "KEEPTTL"), ("SETNX", "s", "v"), ("SETNX", "t", "v"), ("SETEX", "t", "100", "v"),
        ("PSETEX", "u", "100000", "v"), ("GETSET", "s", "1"), ("MSET", "a", "1", "b", "2"),
        ("MSETNX", "a", "1", "c", "1"),
        ("MSETNX", "c", "1", "d", "1"), ("INCR", "a"), ("DECR", "a"), ("INCRBY", "n", "5"), ("DECRBY", "n", "2"),
        ("INCRBYFLOAT", "f", "1.5"), ("INCR", "s2"), ("INCR", "l"), ("APPEND", "s", "tail"), ("APPEND", "new", "x"),
        ("SETRANGE", "s", "2", "ab"), ("SETRANGE", "s", "0", ""), ("SETRANGE", "e", "0", ""),
        ("SETRANGE", "r", "3", "x"),
        ("GETDEL", "s"), ("GETDEL", "s"), ("GETEX", "a", "EX", "100"), ("GETEX", "a", "PERSIST"),
        ("GETEX", "a", "PERSIST"), ("GETEX", "b", "PXAT", "1"), ("GETEX", "nokey", "EX", "10"), ("GET", "a"),
        ("SET", "i", "x", "EX", "0"), ("SET", "s", "v", "GET"), ("LPUSH", "l", "x"), ("SET", "l", "v", "GET"),
    ],
    "keys": [
        ("SET", "a", "1", "EX", "100"), ("DEL", "a", "b"), ("SET", "a", "1"), ("SET", "b", "2"),
        ("UNLINK", "a", "b", "c"),
        ("SET", "a", "1"), ("RENAME", "a", "b"), ("SET", "c", "3"), ("RENAME", "b", "c"), ("RENAME", "c", "c"),
        ("RENAMENX", "c", "d"), ("SET", "e", "5"), ("RENAMENX", "d", "e"), ("COPY", "e", "f"), ("COPY", "e", "f"),
        ("COPY", "e", "f", "REPLACE"), ("COPY", "e", "g", "DB", "1"), ("MOVE", "g", "1"), ("MOVE", "f", "1"),
        ("EXPIRE", "e", "100"), ("EXPIRE", "e", "50", "GT"), ("PEXPIRE", "e", "100000", "XX"), ("TTL", "e"),
        ("EXPIREAT", "e", "99999999999"), ("PERSIST", "e"), ("PERSIST", "e"), ("EXPIRE", "e", "-1"),
        ("EXPIRE", "nokey", "10"), ("SET", "p", "1"), ("PEXPIREAT", "p", "1"), ("TOUCH", "c", "d"),
        ("EXISTS", "c"), ("SELECT", "1"), ("SET", "x", "1"), ("DEL", "x"), ("SELECT", "0"), ("FLUSHDB",),
    ],
    "lists": [
        ("LPUSH", "l", "a", "b"), ("RPUSH", "l", "c"), ("LPUSHX", "l", "d"), ("RPUSHX", "l", "e"), ("LPUSHX", "m", "d"),
        ("LSET", "l", "0", "z"), ("LINSERT", "l", "BEFORE", "z", "y"), ("LINSERT", "l", "AFTER", "nope", "y"),
        ("LREM", "l", "0", "y"), ("LREM", "l", "0", "nope"), ("LTRIM", "l", "0", "-1"), ("LPOP", "l"), ("RPOP", "l"),
        ("LPOP", "l", "0"), ("RPOP", "l", "2"), ("LPOP", "l", "5"), ("LPOP", "l"), ("RPUSH", "l", "1", "2", "3"),
        ("LMOVE", "l", "m", "LEFT", "RIGHT"), ("RPOPLPUSH", "l", "m"), ("LMOVE", "l", "m", "RIGHT", "LEFT"),
        ("LMOVE", "m", "m", "LEFT", "RIGHT"), ("LMPOP", "2", "x", "m", "LEFT", "COUNT", "2"),
        ("LMPOP", "1", "x", "LEFT"),
        ("RPUSH", "q", "a"), ("BLPOP", "x", "q", "0"), ("RPUSH", "q", "a", "b"), ("BRPOP", "q", "0"),
        ("BLMOVE", "q", "w", "LEFT", "LEFT", "0"), ("BRPOPLPUSH", "w", "w", "0"), ("BLMPOP", "0", "1", "w", "RIGHT"),
        ("RPUSH", "t", "a", "b"), ("LTRIM", "t", "5", "10"), ("RPUSH", "t", "a"), ("LREM", "t", "1", "a"),
    ],
    "hashes": [
        ("HSET", "h", "a", "1", "b", "2"), ("HSET", "h", "a", "1"), ("HMSET", "h", "c", "3"), ("HSETNX", "h", "a", "9"),
        ("HSETNX", "h", "d", "4"), ("HSETNX", "g", "d", "4"), ("HINCRBY", "h", "a", "5"),
        ("HINCRBYFLOAT", "h", "a", "0.5"),
        ("HINCRBY", "h", "z", "1"), ("HINCRBY", "h", "a", "x"), ("HDEL", "h", "nope"), ("HDEL", "h", "a", "b"),
        ("HDEL", "h", "c", "d", "z"), ("HDEL", "g", "d"), ("HGET", "h", "a"),
    ],
    "sets": [
        ("SADD", "s", "a", "b", "c"), ("SADD", "s", "a"), ("SREM", "s", "nope"), ("SREM", "s", "a"),
        ("SMOVE", "s", "t", "b"),
        ("SMOVE", "s", "t", "nope"), ("SMOVE", "s", "s", "c"), ("SMOVE", "s", "t", "c"), ("SMOVE", "t", "t", "c"),
        ("SADD", "u", "x", "y"), ("SINTERSTORE", "d", "t", "u"), ("SUNIONSTORE", "d", "t", "u"),
        ("SDIFFSTORE", "d", "t", "t"), ("SDIFFSTORE", "d", "t", "t"), ("SINTERSTORE", "e", "nokey"),
        ("SADD", "p", "1"), ("SPOP", "p"), ("SADD", "p", "1", "2", "3"), ("SPOP", "p", "0"), ("SPOP", "p", "1"),
        ("SPOP", "p", "5"), ("SPOP", "p", "5"), ("SREM", "u", "x", "y"),
    ],
    "zsets": [
        ("ZADD", "z", "1", "a", "2", "b", "3", "c"), ("ZADD", "z", "1", "a"), ("ZADD", "z", "XX", "5", "nope"),
        ("ZADD", "z", "NX", "9", "a"), ("ZADD", "z", "INCR", "1", "a"), ("ZINCRBY", "z", "2", "b"),
        ("ZADD", "z", "GT", "CH", "0", "c"), ("ZADD", "y", "XX", "1", "a"), ("ZREM", "z", "nope"), ("ZREM", "z", "a"),
        ("ZADD", "z", "1", "a", "7", "d", "8", "e"), ("ZREMRANGEBYSCORE", "z", "100", "200"),
        ("ZREMRANGEBYSCORE", "z", "7", "7"), ("ZREMRANGEBYRANK", "z", "10", "20"), ("ZREMRANGEBYRANK", "z", "0", "0"),
        ("ZADD", "l", "0", "a", "0", "b", "0", "c"), ("ZREMRANGEBYLEX", "l", "[a", "[b"),
        ("ZREMRANGEBYLEX", "l", "[x", "[y"),
        ("ZPOPMIN", "z"), ("ZPOPMAX", "z", "0"), ("ZPOPMAX", "z", "1"), ("ZPOPMIN", "z", "10"), ("ZPOPMIN", "z"),
        ("ZADD", "z", "1", "a", "2", "b"), ("ZUNIONSTORE", "u", "2", "z", "l"), ("ZINTERSTORE", "u", "2", "z", "l"),
        ("ZINTERSTORE", "u", "2", "z", "l"), ("ZDIFFSTORE", "d", "1", "z"), ("ZDIFFSTORE", "d", "2", "z", "z"),
        ("ZRANGESTORE", "r", "z", "0", "-1"), ("ZRANGESTORE", "r", "z", "5", "10"),
        ("ZRANGESTORE", "r", "nokey", "0", "1"),
        ("ZMPOP", "2", "nokey", "z", "MIN", "COUNT", "5"), ("ZADD", "b", "1", "x"), ("BZPOPMIN", "b", "0"),
        ("ZADD", "b", "1", "x", "2", "y"), ("BZPOPMAX", "b", "0"), ("BZMPOP", "0", "1", "b", "MAX"),
        ("ZREM", "l", "c"),
    ],
    "streams": [
        ("XADD", "x", "1-1", "f", "v"), ("XADD", "x", "2-1", "f", "v"), ("XADD", "x", "MAXLEN", "1", "3-1", "f", "v"),
        ("XADD", "x", "MAXLEN", "5", "4-1", "f", "v"), ("XADD", "y", "NOMKSTREAM", "*", "f", "v"),
        ("XADD", "x", "1-1", "f", "v"), ("XDEL", "x", "9-9"), ("XDEL", "x", "3-1"), ("XTRIM", "x", "MAXLEN", "5"),
        ("XADD", "x", "5-1", "f", "v"), ("XTRIM", "x", "MAXLEN", "0"), ("XSETID", "x", "10-1"),
        ("XGROUP", "CREATE", "x", "g", "0"), ("XGROUP", "CREATE", "x", "g", "0"),
        ("XGROUP", "CREATE", "n", "g", "$", "MKSTREAM"),
        ("XGROUP", "SETID", "x", "g", "0"), ("XGROUP", "CREATECONSUMER", "x", "g", "c"),
        ("XGROUP", "CREATECONSUMER", "x", "g", "c"), ("XADD", "x", "11-1", "f", "v"),
        ("XREADGROUP", "GROUP", "g", "d", "COUNT", "1", "STREAMS", "x", ">"), ("XACK", "x", "g", "11-1"),
        ("XADD", "x", "12-1", "f", "v"), ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "x", ">"),
        ("XCLAIM", "x", "g", "e", "0", "12-1"), ("XAUTOCLAIM", "x", "g", "f2", "0", "0"),
        ("XGROUP", "DELCONSUMER", "x", "g", "c"), ("XGROUP", "DELCONSUMER", "x", "g", "nobody"),
        ("XGROUP", "DESTROY", "x", "g"), ("XGROUP", "DESTROY", "x", "g"), ("DEL", "x"),
    ],
    "bits-hll-geo-sort-dump": [
        ("SETBIT", "b", "7", "1"), ("SETBIT", "b", "7", "1"), ("BITFIELD", "b", "SET", "u8", "0", "255"),
        ("BITFIELD", "b", "GET", "u8", "0"), ("BITFIELD", "c", "OVERFLOW", "FAIL", "INCRBY", "u2", "0", "9"),
        ("BITOP", "OR", "d", "b", "c"), ("BITOP", "AND", "d", "nokey"), ("BITOP", "AND", "d", "nokey"),
        ("PFADD", "h", "a", "b"), ("PFADD", "h", "a"), ("PFADD", "i"), ("PFMERGE", "j", "h", "i"), ("PFCOUNT", "h"),
        ("GEOADD", "g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"),
        ("GEOADD", "g", "13.361389", "38.115556", "Palermo"),
        ("GEORADIUS", "g", "15", "37", "200", "km", "STORE", "gs"),
        ("GEORADIUS", "g", "0", "0", "1", "km", "STORE", "gs"),
        ("GEOSEARCHSTORE", "gt", "g", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km"),
        ("GEOSEARCHSTORE", "gt", "nokey", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km"),
        ("RPUSH", "l", "3", "1", "2"), ("SORT", "l", "STORE", "sl"), ("SORT", "nokey", "STORE", "sl"),
        ("SORT", "nokey", "STORE", "sl"), ("SET", "k", "v"), ("RESTORE", "k", "0", "x"),
    ],
}


def _dump_payload(conn, *setup) -> bytes:
    conn.call(*setup)
    payload = conn.call("DUMP", setup[1]).value
    conn.call("DEL", setup[1])
    return payload


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_events_per_command_in_process(redis_side, name):
    memdb = InProcessSide()
    for command in SCENARIOS[name]:
        expected = redis_side.run(*command)
        assert memdb.run(*command) == expected, f"{name}: {command!r}"


def test_restore_events_in_process(redis_side):
    memdb = InProcessSide()
    payload = _dump_payload(redis_side.conn, "RPUSH", "src", "a", "b")
    redis_side.run("PING")                # drains the set-up's own notifications
    for command in [("RESTORE", "r", "0", payload), ("RESTORE", "r", "0", payload),
                    ("RESTORE", "r", "0", payload, "REPLACE"),
                    ("RESTORE", "r", "1", payload, "REPLACE", "ABSTTL"), ("RESTORE", "r", "1", payload, "ABSTTL")]:
        expected = redis_side.run(*command)
        assert memdb.run(*command) == expected, command


def test_expired_key_met_by_a_write_in_process(redis_side):
    """A write that meets an expired key deletes it first (`expired`), then creates it anew (`new`), as Redis's
    lookupKeyWrite does; on redis-server the active expiry may get there first, with the same messages."""
    memdb = InProcessSide()
    for key, write in [("k", ("LPUSH", "k", "x")), ("h", ("HSET", "h", "f", "v"))]:
        command = ("SET", key, "v", "PX", "50")
        assert memdb.run(*command) == redis_side.run(*command)
        time.sleep(0.3)
        expected = redis_side.run(*write)
        assert memdb.run(*write) == expected, write
        assert [message for _, message in expected[:2]] == [b"expired", key.encode()]
    assert [message for _, message in redis_side.run("DEL", "k")] == [b"del", b"k"]


def test_only_enabled_classes_and_channels(redis_side):
    """Flag strings select event classes and channels alike on both (K only, E only, one class, no K/E)."""
    for flags in ("Kl", "E$", "Kg", "KEs", "Ex", "gl$", "KEhz", "Kt", "En", "KA"):
        redis_side.conn.call("CONFIG", "SET", "notify-keyspace-events", flags)
        memdb = InProcessSide()
        memdb.memdb.keyspace.set_notify_flags(notify.parse_flags(flags))
        redis_side.conn.call("FLUSHALL")
        redis_side.run("PING")
        for command in [("SET", "s", "v"), ("LPUSH", "l", "a"), ("LPOP", "l"), ("HSET", "h", "f", "v"),
                        ("SADD", "t", "m"),
                        ("ZADD", "z", "1", "m"), ("XADD", "x", "1-1", "f", "v"), ("EXPIRE", "s", "100"),
                        ("DEL", "s", "h")]:
            expected = redis_side.run(*command)
            assert memdb.run(*command) == expected, (flags, command)


# -- hypothesis: random command sequences over a tiny key pool --------------------------------------------------------
KEYS = st.sampled_from(["k1", "k2", "k3"])
MEMBERS = st.sampled_from(["a", "b", "c"])
NUMBERS = st.sampled_from(["0", "1", "2", "-1", "5"])


def _commands() -> st.SearchStrategy:
    k, m, n = KEYS, MEMBERS, NUMBERS
    return st.one_of(
        st.tuples(st.sampled_from(["SET", "GETSET", "APPEND", "SETNX"]), k, m),
        st.tuples(st.just("SET"), k, m, st.sampled_from(["NX", "XX", "GET", "KEEPTTL"])),
        st.tuples(st.just("SET"), k, m, st.just("EX"), st.sampled_from(["100", "200"])),
        # (no SPOP: which member it takes is random on both sides, and the states would drift apart)
        st.tuples(st.sampled_from(["INCR", "DECR", "GETDEL", "PERSIST", "LPOP", "RPOP"]), k),
        st.tuples(st.sampled_from(["INCRBY", "EXPIRE", "LPOP", "RPOP"]), k, n),
        st.tuples(st.sampled_from(["DEL", "RENAME", "RENAMENX", "COPY"]), k, k),
        st.tuples(st.just("SMOVE"), k, k, m),
        st.tuples(st.sampled_from(["LPUSH", "RPUSH", "LPUSHX", "SADD", "SREM", "HDEL", "ZREM"]), k, m, m),
        st.tuples(st.just("LMOVE"), k, k, st.sampled_from(["LEFT", "RIGHT"]), st.sampled_from(["LEFT", "RIGHT"])),
        st.tuples(st.just("LREM"), k, n, m),
        st.tuples(st.just("LTRIM"), k, n, n),
        st.tuples(st.sampled_from(["HSET", "HSETNX", "HINCRBY"]), k, m, n),
        st.tuples(st.sampled_from(["ZADD", "ZINCRBY"]), k, n, m),
        st.tuples(st.sampled_from(["ZPOPMIN", "ZPOPMAX"]), k, n),
        st.tuples(st.sampled_from(["ZREMRANGEBYRANK", "ZREMRANGEBYSCORE"]), k, n, n),
        st.tuples(st.sampled_from(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]), k, k, k),
        st.tuples(st.sampled_from(["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]), k, st.just("2"), k, k),
        st.tuples(st.just("SETRANGE"), k, n.filter(lambda v: not v.startswith("-")), m),
        st.tuples(st.just("XADD"), k, st.just("*"), m, m),
        st.tuples(st.just("SORT"), k, st.just("STORE"), k),
    )


@settings(deadline=None)
@given(st.lists(_commands(), min_size=1, max_size=25))
def test_random_sequences_in_process(redis_server, redis_conn, commands):
    redis_conn.call("FLUSHALL")
    redis_conn.call("CONFIG", "SET", "notify-keyspace-events", FLAGS)
    side = RedisSide(redis_server, redis_conn)
    try:
        memdb = InProcessSide()
        for command in commands:
            if command[0] == "XADD":     # auto ids differ between the two: give both the same explicit id
                command = (command[0], command[1], "%d-1" % (side.fences + 1), *command[3:])
            expected = side.run(*command)
            assert memdb.run(*command) == expected, command
    finally:
        side.subscriber.close()
        redis_conn.call("CONFIG", "SET", "notify-keyspace-events", "")
        redis_conn.call("FLUSHALL")


# -- CONFIG SET/GET notify-keyspace-events -----------------------------------------------------------------------------
FLAG_STRINGS = ["", "KEA", "AKE", "Kn", "nK", "Ag", "xg", "gK$lshzxetdmn", "KEAmn", "Km", "m", "E$", "Ad", "KEA n", "q",
                "A", "K", "gE", "$lshzxetd", "KEg$lshzxetd", "dE", "ee", "KKEE", "tEm", "a"]


def test_config_flag_strings_like_redis(redis_conn):
    """Normalisation on CONFIG GET and the error for a bad flag character, against Config (the server's)."""
    config = Config()
    try:
        for flags in FLAG_STRINGS:
            got = redis_conn.call("CONFIG", "SET", "notify-keyspace-events", flags).value
            try:
                config.set([("notify-keyspace-events", flags)])
                mine = b"OK"
            except ConfigError as exc:
                mine = Error(exc.message)
            assert mine == got, flags
            expected = redis_conn.call("CONFIG", "GET", "notify-keyspace-events").value
            assert [b"notify-keyspace-events", config.get(["notify-keyspace-events"])[0][1].encode()] == expected, flags
    finally:
        redis_conn.call("CONFIG", "SET", "notify-keyspace-events", "")


@given(st.text(alphabet="Ag$lshzxeKEtmdnq ", max_size=8))
def test_config_flag_strings_random(redis_conn, flags):
    config = Config()
    try:
        got = redis_conn.call("CONFIG", "SET", "notify-keyspace-events", flags).value
        mine = notify.parse_flags(flags)
        assert (mine is None) == isinstance(got, Error), flags
        if mine is not None:
            config.set([("notify-keyspace-events", flags)])
            expected = redis_conn.call("CONFIG", "GET", "notify-keyspace-events").value[1]
            assert config.get(["notify-keyspace-events"])[0][1].encode() == expected, flags
    finally:
        redis_conn.call("CONFIG", "SET", "notify-keyspace-events", "")


# -- OBJECT FREQ / OBJECT IDLETIME -------------------------------------------------------------------------------------
def _policy(redis_conn, memdb: MemdbInstance, policy: str) -> None:
    assert redis_conn.call("CONFIG", "SET", "maxmemory-policy", policy).value == b"OK"
    access.configure(memdb.keyspace, policy, int(time.time() * 1000))


def _same(redis_conn, memdb: MemdbInstance, *args, normalize=None) -> None:
    expected, got = redis_conn.call(*args), memdb.call(*args)
    ev, gv = expected.value, got.value
    if normalize is not None:
        ev, gv = normalize(ev), normalize(gv)
    assert (expected.kind, ev) == (got.kind, gv), args


@pytest.fixture
def object_pair(redis_conn):
    redis_conn.call("FLUSHALL")
    memdb = MemdbInstance(seed=0)
    try:
        yield memdb
    finally:
        redis_conn.call("CONFIG", "SET", "maxmemory-policy", "noeviction")
        redis_conn.call("FLUSHALL")


def test_object_freq_under_lfu(redis_conn, object_pair):
    memdb = object_pair
    _policy(redis_conn, memdb, "allkeys-lfu")
    for args in [("SET", "k", "abc"), ("OBJECT", "FREQ", "k"), ("GET", "k"), ("OBJECT", "FREQ", "k"),
                 ("OBJECT", "FREQ", "k"), ("EXISTS", "k"), ("TYPE", "k"), ("TTL", "k"), ("OBJECT", "FREQ", "k"),
                 ("OBJECT", "IDLETIME", "k"), ("OBJECT", "FREQ", "nokey"), ("OBJECT", "IDLETIME", "nokey"),
                 ("RPUSH", "l", "a"), ("OBJECT", "FREQ", "l"), ("LPUSH", "l", "b"), ("OBJECT", "FREQ", "l"),
                 ("DEL", "l"), ("RPUSH", "l", "a"), ("OBJECT", "FREQ", "l"), ("HSET", "h", "f", "v"),
                 ("OBJECT", "FREQ", "h"), ("OBJECT", "ENCODING", "h"), ("OBJECT", "FREQ", "h"),
                 ("OBJECT", "FREQ"), ("OBJECT", "FREQ", "k", "extra")]:
        _same(redis_conn, memdb, *args)
    payload = redis_conn.call("DUMP", "l").value
    for args in [("RESTORE", "r", "0", payload, "FREQ", "100"), ("OBJECT", "FREQ", "r"),
                 ("RESTORE", "r", "0", payload, "FREQ", "7", "REPLACE"), ("OBJECT", "FREQ", "r"),
                 ("RESTORE", "q", "0", payload, "IDLETIME", "100"), ("OBJECT", "FREQ", "q")]:
        _same(redis_conn, memdb, *args)


def test_object_idletime_under_lru_and_noeviction(redis_conn, object_pair):
    memdb = object_pair
    for policy in ("allkeys-lru", "volatile-lru", "noeviction"):
        _policy(redis_conn, memdb, policy)
        redis_conn.call("FLUSHALL")
        memdb.keyspace = type(memdb.keyspace)()
        access.configure(memdb.keyspace, policy, int(time.time() * 1000))
        for args in [("SET", "k", "abc"), ("OBJECT", "IDLETIME", "k"), ("OBJECT", "FREQ", "k"),
                     ("OBJECT", "IDLETIME", "nokey"), ("OBJECT", "FREQ", "nokey"), ("GET", "k"),
                     ("OBJECT", "IDLETIME", "k")]:
            _same(redis_conn, memdb, *args)
        payload = redis_conn.call("DUMP", "k").value
        for args in [("RESTORE", "r", "0", payload, "IDLETIME", "1000"), ("OBJECT", "IDLETIME", "r"),
                     ("RESTORE", "r", "0", payload, "IDLETIME", "5", "REPLACE"), ("OBJECT", "IDLETIME", "r"),
                     ("RESTORE", "q", "0", payload, "FREQ", "100"), ("OBJECT", "IDLETIME", "q")]:
            _same(redis_conn, memdb, *args, normalize=lambda v: Approx(v, 1) if isinstance(v, int) else v)


def test_object_idletime_counts_seconds_since_the_last_access(redis_conn, object_pair):
    """Idle time grows while a key is left alone; reading it (GET) resets it, looking at it (TYPE, EXISTS, TTL,
    OBJECT) does not, on both."""
    memdb = object_pair
    _policy(redis_conn, memdb, "allkeys-lru")
    for args in [("SET", "read", "v"), ("SET", "looked-at", "v"), ("SET", "idle", "v")]:
        _same(redis_conn, memdb, *args)
    time.sleep(2.2)
    for args in [("GET", "read"), ("TYPE", "looked-at"), ("EXISTS", "looked-at"), ("TTL", "looked-at"),
                 ("OBJECT", "ENCODING", "looked-at")]:
        _same(redis_conn, memdb, *args)
    idle = {}
    for key in ("read", "looked-at", "idle"):
        expected, got = redis_conn.call("OBJECT", "IDLETIME", key).value, memdb.call("OBJECT", "IDLETIME", key).value
        assert abs(expected - got) <= 1, (key, expected, got)
        idle[key] = got
    assert idle["read"] == 0 and idle["looked-at"] >= 2 and idle["idle"] >= 2, idle
