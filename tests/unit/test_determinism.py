"""Replaying the same command log on an empty keyspace gives the same keyspace (and the same replies) in a fresh
Python process with a different PYTHONHASHSEED: no handler may depend on the local clock, module `random`, or
set/dict hash order. The log carries now_ms and a seed per entry, as the replicated log does."""
import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from memdb.commands import dispatch
from memdb.commands.keys import object_encoding
from memdb.commands.spec import CommandError, Context
from memdb.keyspace import Keyspace, type_name

ROOT = Path(__file__).resolve().parents[2]
KEYS = [b"k%d" % i for i in range(6)] + [b"h%d" % i for i in range(3)]
FIELDS = [b"f%d" % i for i in range(40)] + [b"long" * 20]
VALUES = [b"1", b"-5", b"abc", b"3.25", b"x" * 50, b"", b"9999", b"12345678901234567890"]

# (command, argument generator) for every command family whose handler must be deterministic.
# Other modules' commands can be appended here (SPOP, SRANDMEMBER, ZRANDMEMBER...).
def _generators(r: random.Random):
    k, f, v = (lambda: r.choice(KEYS)), (lambda: r.choice(FIELDS)), (lambda: r.choice(VALUES))
    return [
        lambda: [b"SET", k(), v()] + r.choice([[], [b"EX", b"100"], [b"PX", b"5"], [b"NX"], [b"GET"], [b"KEEPTTL"]]),
        lambda: [b"APPEND", k(), v()],
        lambda: [b"SETRANGE", k(), str(r.randrange(10)).encode(), v()],
        lambda: [b"INCRBYFLOAT", k(), r.choice([b"0.1", b"1e3", b"-2.5"])],
        lambda: [b"INCRBY", k(), b"7"],
        lambda: [b"MSET", k(), v(), k(), v()],
        lambda: [b"GETEX", k(), b"PX", b"3"],
        lambda: [b"HSET", k(), f(), v(), f(), v()],
        lambda: [b"HDEL", k(), f(), f()],
        lambda: [b"HINCRBYFLOAT", k(), f(), b"1.5"],
        lambda: [b"HRANDFIELD", k(), r.choice([b"-5", b"3", b"1", b"30"]), b"WITHVALUES"],
        lambda: [b"HRANDFIELD", k()],
        lambda: [b"HSCAN", k(), b"0", b"COUNT", b"3"],
        lambda: [b"DEL", k()],
        lambda: [b"RENAME", k(), k()],
        lambda: [b"COPY", k(), k(), b"DB", r.choice([b"0", b"1"]), b"REPLACE"],
        lambda: [b"MOVE", k(), b"1"],
        lambda: [b"SWAPDB", b"0", b"1"],
        lambda: [b"EXPIRE", k(), r.choice([b"1", b"100", b"-1"])],
        lambda: [b"PEXPIRE", k(), b"4", b"GT"],
        lambda: [b"PERSIST", k()],
        lambda: [b"RANDOMKEY"],
        lambda: [b"SCAN", b"0", b"COUNT", b"4"],
        lambda: [b"KEYS", b"*"],
        lambda: [b"TTL", k()],
        lambda: [b"OBJECT", b"ENCODING", k()],
    ]


def make_log(seed: int, length: int) -> list[tuple[int, int, list[bytes]]]:
    r = random.Random(seed)
    gens = _generators(r)
    now_ms = 1_700_000_000_000
    log = []
    for _ in range(length):
        now_ms += r.randrange(3)          # entries a few ms apart, so short expiries fire
        log.append((now_ms, r.randrange(1 << 32), r.choice(gens)()))
    return log


def _canonical(value):
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return [(_canonical(a), _canonical(b)) for a, b in value.items()]
    items = getattr(value, "items", None)
    if items is not None:
        return [(_canonical(a), repr(b)) for a, b in items()]
    return [_canonical(v) for v in value]


def dump(keyspace: Keyspace) -> str:
    """The whole keyspace, in dict (insertion) order, with types, encodings and deadlines."""
    lines = []
    for db in keyspace.dbs:
        for key, value in db.data.items():
            lines.append(repr((db.index, key.hex(), type_name(value), object_encoding(value),
                               db.expires.get(key), _canonical(value))))
    return "\n".join(lines)


def run_log(seed: int, length: int = 3000) -> str:
    keyspace = Keyspace()
    replies = hashlib.sha256()
    for now_ms, entry_seed, args in make_log(seed, length):
        ctx = Context(keyspace=keyspace, db=keyspace.dbs[0], now_ms=now_ms, rng=random.Random(entry_seed))
        try:
            reply = dispatch.execute(ctx, args)
        except CommandError as exc:
            reply = exc.message
        replies.update(repr(reply).encode())
    state = hashlib.sha256(dump(keyspace).encode()).hexdigest()
    return f"{state}:{replies.hexdigest()}"


@pytest.mark.parametrize("seed", [1, 2])
def test_replay_in_fresh_process_is_identical(seed):
    here = run_log(seed)
    env = dict(os.environ, PYTHONHASHSEED=str(12345 + seed), PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", f"from tests.unit.test_determinism import run_log; print(run_log({seed}))"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == here


def test_log_exercises_state():
    keyspace_dump_lines = run_log(3, 500)
    assert keyspace_dump_lines   # smoke: the log runs without a non-CommandError exception
