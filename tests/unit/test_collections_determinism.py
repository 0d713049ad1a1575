"""Replaying the same list/set/zset commands (same now_ms, same seeds) must give the same replies and keyspace in
processes with different hash seeds: SPOP/SRANDMEMBER/ZRANDMEMBER pick by index in insertion order, and no reply
or result depends on Python set/dict hash order."""
import os
import subprocess
import sys

SCRIPT = r'''
import random
from memdb.commands import dispatch
from memdb.commands.spec import CommandError, Context
from memdb.keyspace import Keyspace

ks = Keyspace()
script = random.Random(42)
members = [b"a", b"b", b"c", b"1", b"2", b"x" * 70, b"m%d" % 7]
keys = [b"s1", b"s2", b"z1", b"z2", b"l1"]
out = []
for step in range(1500):
    kind = script.choice(["SADD", "SPOP", "SRANDMEMBER", "SINTERSTORE", "SUNION", "SDIFF", "SMOVE", "ZADD",
                          "ZRANDMEMBER", "ZUNIONSTORE", "ZINTER", "RPUSH", "LMOVE", "SSCAN", "ZSCAN", "ZPOPMIN"])
    k1, k2 = script.choice(keys), script.choice(keys)
    m = script.choice(members)
    args = {
        "SADD": [k1, m, script.choice(members)], "SPOP": [k1, b"2"], "SRANDMEMBER": [k1, b"-3"],
        "SINTERSTORE": [k1, k1, k2], "SUNION": [k1, k2], "SDIFF": [k1, k2], "SMOVE": [k1, k2, m],
        "ZADD": [k1, str(script.randint(0, 5)).encode(), m], "ZRANDMEMBER": [k1, b"2", b"WITHSCORES"],
        "ZUNIONSTORE": [k1, b"2", k1, k2], "ZINTER": [b"2", k1, k2], "RPUSH": [k1, m],
        "LMOVE": [k1, k2, b"LEFT", b"RIGHT"], "SSCAN": [k1, b"0", b"COUNT", b"2"], "ZSCAN": [k1, b"0"],
        "ZPOPMIN": [k1],
    }[kind]
    ctx = Context(keyspace=ks, db=ks.dbs[0], now_ms=1000 + step, rng=random.Random(step))
    try:
        out.append(repr(dispatch.execute(ctx, [kind.encode()] + args)))
    except CommandError as exc:
        out.append(exc.message)
for key in sorted(ks.dbs[0].data):
    value = ks.dbs[0].data[key]
    out.append(repr((key, type(value).__name__, list(value.items()) if hasattr(value, "items") else list(value))))
print("\n".join(out))
'''


def _run(hash_seed: str) -> str:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=root, capture_output=True, text=True,
                            timeout=120, check=True)
    return result.stdout


def test_same_results_under_different_hash_seeds():
    first, second = _run("1"), _run("2")
    assert first.count("\n") > 1000
    assert first == second
