"""memdb/rdb.py without a server: CRC64 check value, LZF and listpack/intset round trips, payload envelope."""
import random

import pytest

from memdb import rdb
from memdb.commands.zset_type import ZSetValue
from memdb.keyspace import HashValue, ListValue, SetValue


def test_crc64_check_value():
    assert rdb.crc64(b"123456789") == 0xE9C6D914C4B8D9CA


@pytest.mark.parametrize("seed", range(5))
def test_lzf_round_trip(seed):
    rnd = random.Random(seed)
    for _ in range(200):
        alphabet = rnd.choice([b"ab", b"abcdefgh", bytes(range(256))])
        data = bytes(rnd.choice(alphabet) for _ in range(rnd.randrange(21, 2000)))
        compressed = rdb.lzf_compress(data, len(data) - 4)
        if compressed is not None:
            assert len(compressed) <= len(data) - 4
            assert rdb.lzf_decompress(compressed, len(data)) == data


def test_listpack_and_intset_round_trip():
    items = [b"0", b"127", b"128", b"-4096", b"4095", b"-32768", b"8388607", b"2147483647", b"-9223372036854775808",
             b"", b"x" * 63, b"y" * 64, b"z" * 4095, b"w" * 4096, b"007", b"-0", b"1.5"]
    assert rdb.decode_listpack(rdb.encode_listpack(items)) == items
    ints = [5, -3, 70000, 1 << 40]
    assert rdb.decode_intset(rdb.encode_intset(ints)) == [b"%d" % v for v in sorted(ints)]


@pytest.mark.parametrize("value", [
    b"hello", b"12", b"x" * 1000, ListValue([b"a", b"1"] * 3000), SetValue({b"1": None, b"2": None}),
    SetValue({b"a": None}), HashValue({b"f": b"v"}), HashValue({b"f%d" % i: b"v" for i in range(600)}),
])
def test_payload_round_trip(value):
    payload = rdb.dump_payload(value)
    assert rdb.verify_payload(payload)
    assert rdb.restore_payload(payload) == value
    assert not rdb.verify_payload(payload[:-1] + bytes([payload[-1] ^ 1]))


def test_zset_payload_round_trip():
    value = ZSetValue()
    for i in range(200):
        value.insert(b"m%d" % i, i / 3)
    restored = rdb.restore_payload(rdb.dump_payload(value))
    assert list(restored.items()) == list(value.items()) and restored.listpack is False
