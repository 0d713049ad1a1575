"""DUMP/RESTORE vs redis-server: payloads move both ways (DUMP on Redis -> RESTORE on memdb, and the reverse) for
small and large values of every type, with the same contents, encodings and TTLs; tiny values dump to the very
same bytes; RESTORE's options and error texts match."""
import pytest

from tests.differential.harness import Error, sort_list, sort_pairs

BUILDERS = {
    "int": [("SET", "k", "12345")],
    "bigint": [("SET", "k", "-9223372036854775808")],
    "str": [("SET", "k", "hello")],
    "str-long": [("SET", "k", "x" * 5000)],
    "str-random": [("SET", "k", bytes(range(256)) * 3)],
    "list": [("RPUSH", "k", "a", "1", "-5", "300", "70000", "x" * 100)],
    "list-big": [("RPUSH", "k", *[f"item-{i}" * (1 + i % 7) for i in range(3000)])],
    "set-intset": [("SADD", "k", "1", "-2", "70000", "5000000000")],
    "set-hashtable": [("SADD", "k", "a", "b", "1")],
    "set-big": [("SADD", "k", *[str(i) for i in range(600)])],
    "hash": [("HSET", "k", "a", "1", "b", "x" * 60, "n", "-4097")],
    "hash-big": [("HSET", "k", *[p for i in range(700) for p in (f"f{i}", f"v{i}")])],
    "hash-longvalue": [("HSET", "k", "a", "x" * 100)],
    "zset": [("ZADD", "k", "1", "a", "-2.5", "b", "1e300", "c", "0", "d", "inf", "e")],
    "zset-big": [("ZADD", "k", *[p for i in range(300) for p in (str(i * 0.5), f"m{i}")])],
    "zset-longmember": [("ZADD", "k", "1", "m" * 100, "2", "b")],
}


def _contents(conn, key):
    kind = conn.call("TYPE", key).value
    if kind == b"string":
        body = conn.call("GET", key).value
    elif kind == b"list":
        body = conn.call("LRANGE", key, "0", "-1").value
    elif kind == b"set":
        body = sort_list(conn.call("SMEMBERS", key).value)
    elif kind == b"hash":
        body = sort_pairs(conn.call("HGETALL", key).value)
    elif kind == b"zset":
        body = conn.call("ZRANGE", key, "0", "-1", "WITHSCORES").value
    else:
        body = None
    return kind, body, conn.call("OBJECT", "ENCODING", key).value


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_round_trips(diff, name):
    for command in BUILDERS[name]:
        diff.check(*command)
    from_redis = diff.redis.call("DUMP", "k").value
    from_memdb = diff.memdb.call("DUMP", "k").value
    assert isinstance(from_redis, bytes) and isinstance(from_memdb, bytes)
    # Redis -> memdb
    assert diff.memdb.call("RESTORE", "r", "0", from_redis).value == b"OK"
    # memdb -> Redis
    assert diff.redis.call("RESTORE", "m", "0", from_memdb).value == b"OK"
    original = _contents(diff.redis, "k")
    assert _contents(diff.memdb, "r") == original
    assert _contents(diff.redis, "m") == original
    # and each side restores its own dump
    diff.check("RESTORE", "self", "0", from_redis)
    assert _contents(diff.memdb, "self") == original
    # memdb's payload restores in memdb, too
    assert diff.memdb.call("RESTORE", "self2", "0", from_memdb).value == b"OK"
    assert _contents(diff.memdb, "self2") == original


@pytest.mark.parametrize("name", sorted(set(BUILDERS) - {"hash-big", "set-big", "set-hashtable"}))
def test_same_bytes(diff, name):
    """Same value, same encoding: byte-identical payloads (LZF included). Hash tables are excluded: Redis writes
    them in its hash order, memdb in insertion order."""
    for command in BUILDERS[name]:
        diff.check(*command)
    diff.check("DUMP", "k")


def test_restore_options_and_errors(diff):
    diff.check("RPUSH", "src", "a", "b")
    payload = diff.redis.call("DUMP", "src").value
    bad_crc = payload[:-1] + bytes([payload[-1] ^ 1])
    bad_version = payload[:-10] + b"\x0b\x00" + payload[-8:]
    for command in [
        ("RESTORE", "src", "0", payload), ("RESTORE", "src", "0", payload, "REPLACE"), ("LRANGE", "src", "0", "-1"),
        ("RESTORE", "k", "-1", payload), ("RESTORE", "k", "x", payload), ("RESTORE", "k", "0", bad_crc),
        ("RESTORE", "k", "0", bad_version), ("RESTORE", "k", "0", "short"), ("RESTORE", "k", "0", payload, "FOO"),
        ("RESTORE", "k", "0", payload, "IDLETIME", "-1"), ("RESTORE", "k", "0", payload, "IDLETIME", "x"),
        ("RESTORE", "k", "0", payload, "FREQ", "256"), ("RESTORE", "k", "0", payload, "FREQ", "x"),
        ("RESTORE", "k", "0", payload, "FREQ", "1", "IDLETIME", "1"), ("RESTORE", "k", "0", payload, "IDLETIME"),
        ("RESTORE", "src", "0", payload, "FOO"), ("RESTORE", "src", "-1", payload), ("RESTORE", "src", "0", bad_crc),
        ("RESTORE", "k", "0", payload, "IDLETIME", "10"), ("DEL", "k"), ("RESTORE", "k", "0", payload, "FREQ", "5"),
        ("DEL", "k"),
        ("RESTORE", "k", "100000", payload), ("TTL", "k"), ("RESTORE", "k", "1", payload, "ABSTTL", "REPLACE"),
        ("EXISTS", "k"), ("RESTORE", "k", "4102444800000", payload, "ABSTTL"), ("TTL", "k"), ("DEL", "k"),
        ("DUMP", "nokey"), ("SET", "k", "v", "EX", "100"), ("RESTORE", "k", "0", payload, "REPLACE"), ("TTL", "k"),
        ("RESTORE", "k", "0", b"\x00\x01" + b"\x0a\x00" + bytes(8)),
    ]:
        if command[0] == "TTL":
            expected, actual = diff.both(*command)
            assert abs(expected.value - actual.value) <= 1
        else:
            diff.check(*command)


def _payload(body: bytes) -> bytes:
    from memdb.rdb import crc64
    body = body + b"\x0a\x00"
    return body + crc64(body).to_bytes(8, "little")


def test_bad_data_format(diff):
    """Well-formed envelopes around broken bodies: both sides reply Bad data format (or accept alike)."""
    for body in [b"\x00", b"\x00\x05ab", b"\x02\x00", b"\x0b\x02ab", b"\x10\x03abc", b"\x63", b"\x05\x01\x01a",
                 b"\x00\xc3\x01\x05\x00", b"\x00\x05hello"]:
        diff.check("RESTORE", "k", "0", _payload(body), "REPLACE")


def test_lzf_payload_from_redis(diff):
    """A long compressible string: Redis LZF-compresses it; memdb must decompress it."""
    diff.check("SET", "k", "abcabcabc" * 500 + "tail")
    payload = diff.redis.call("DUMP", "k").value
    assert payload[1] == 0xC3, "Redis compressed the string"
    diff.check("RESTORE", "r", "0", payload)
    diff.check("GET", "r")
    diff.check("OBJECT", "ENCODING", "r")
    diff.check("HSET", "h", *[p for i in range(50) for p in (f"field{i}", "value")])
    payload = diff.redis.call("DUMP", "h").value
    diff.check("RESTORE", "r2", "0", payload)
    diff.check("HGETALL", "r2")
    expected = diff.redis.call("DUMP", "r2")
    assert not isinstance(expected.value, Error)
