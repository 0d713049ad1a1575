"""Scripting without an oracle: determinism across processes, the instruction limit, replicated script state (a new
VM after failover), and the sandbox's edges."""
import json
import os
import random
import subprocess
import sys

import pytest

from memdb.commands import dispatch, scripting
from memdb.commands.spec import CommandError, Context
from memdb.keyspace import Keyspace

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A log of (now_ms, seed, args): what every node applies.
LOG = [
    (1_700_000_000_000, 11, ["EVAL", "local t = {} for i = 1, 5 do t[i] = math.random(1000) end "
                                     "redis.call('rpush', KEYS[1], unpack(t)) return t", "1", "rand"]),
    (1_700_000_000_250, 12, ["EVAL", "local t = redis.call('time') redis.call('set', KEYS[1], t[1] .. '.' .. t[2]) "
                                     "return t", "1", "clock"]),
    (1_700_000_000_500, 13, ["EVAL", "local h = {} for i = 1, 20 do h['f' .. i] = tostring(math.random()) end "
                                     "local out = {} for k, v in pairs(h) do out[#out + 1] = k "
                                     "redis.call('hset', KEYS[1], k, v) end return out", "1", "hash"]),
    (1_700_000_000_750, 14, ["SCRIPT", "LOAD", "redis.call('sadd', KEYS[1], ARGV[1], ARGV[2], ARGV[3]) "
                                                "return redis.call('spop', KEYS[1])"]),
    (1_700_000_001_000, 15, ["EVALSHA", "SHA", "1", "set", "a", "b", "c"]),
    (1_700_000_001_250, 16, ["FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('roll', function(keys) "
                                                  "return redis.call('incrby', keys[1], math.random(6)) end)"]),
    (1_700_000_001_500, 17, ["FCALL", "roll", "1", "dice"]),
    (1_700_000_001_750, 18, ["EVAL", "redis.call('set', KEYS[1], 'v', 'PX', 100) return redis.call('pttl', KEYS[1])",
                             "1", "ttl"]),
]


def apply_log(keyspace: Keyspace) -> list:
    replies, sha = [], None
    for now_ms, seed, args in LOG:
        args = [sha if a == "SHA" else a for a in args]
        ctx = Context(keyspace, keyspace.dbs[0], now_ms, random.Random(seed))
        try:
            reply = dispatch.execute(ctx, [a.encode() if isinstance(a, str) else a for a in args])
        except CommandError as exc:
            reply = exc.message
        if args[:2] == ["SCRIPT", "LOAD"]:
            sha = reply
        replies.append(reply)
    return replies


def dump(keyspace: Keyspace, replies: list) -> str:
    db = keyspace.dbs[0]
    data = {k.decode(): repr(sorted(v.items()) if isinstance(v, dict) else list(v) if not isinstance(v, bytes) else v)
            for k, v in sorted(db.data.items())}
    return json.dumps({"data": data, "expires": {k.decode(): v for k, v in sorted(db.expires.items())},
                       "replies": repr(replies), "scripts": sorted(keyspace.scripting.scripts)},
                      default=repr, sort_keys=True)


_CHILD = """
import sys
sys.path.insert(0, {root!r})
from tests.unit.test_scripting import apply_log, dump
from memdb.keyspace import Keyspace
ks = Keyspace()
print(dump(ks, apply_log(ks)))
"""


def test_same_log_same_keyspace_in_two_processes():
    outputs = []
    for hashseed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hashseed)
        result = subprocess.run([sys.executable, "-c", _CHILD.format(root=ROOT)], env=env, capture_output=True,
                                text=True, timeout=60, check=True)
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    assert '"rand"' in outputs[0] and '"dice"' in outputs[0]


def test_same_log_same_keyspace_in_process_and_after_new_vm():
    first, second = Keyspace(), Keyspace()
    assert dump(first, apply_log(first)) == dump(second, apply_log(second))


def test_time_in_scripts_is_the_entry_time():
    ks = Keyspace()
    ctx = Context(ks, ks.dbs[0], 1_234_567_890_123, random.Random(0))
    assert dispatch.execute(ctx, [b"EVAL", b"return redis.call('time')", b"0"]) == [b"1234567890", b"123000"]


def _ctx(ks, seed=0):
    return Context(ks, ks.dbs[0], 1_700_000_000_000, random.Random(seed))


def test_script_cache_and_libraries_survive_a_new_vm():
    """The cache is replicated state: a node whose VM never compiled the script (new primary) still runs it."""
    ks = Keyspace()
    sha = dispatch.execute(_ctx(ks), [b"SCRIPT", b"LOAD", b"return ARGV[1]"])
    dispatch.execute(_ctx(ks), [b"FUNCTION", b"LOAD", b"#!lua name=l\nredis.register_function('f', "
                                                     b"function(k, a) return a[1] end)"])
    ks.scripting._vm = None
    assert dispatch.execute(_ctx(ks), [b"EVALSHA", sha, b"0", b"x"]) == b"x"
    assert dispatch.execute(_ctx(ks), [b"FCALL", b"f", b"0", b"y"]) == b"y"


def test_eval_ro_does_not_change_replicated_state():
    ks = Keyspace()
    dispatch.execute(_ctx(ks), [b"EVAL_RO", b"return 1", b"0"])
    assert not ks.scripting.scripts


def test_instruction_limit_aborts_deterministically(monkeypatch):
    monkeypatch.setattr(scripting, "SCRIPT_INSTRUCTIONS_MAX", 1_000_000)
    ks = Keyspace()
    for script in [b"while true do end", b"while true do pcall(function() while true do end end) end",
                   b"local co = coroutine.wrap(function() while true do end end) co()",
                   b"redis.call('incr', 'n') while true do end"]:
        with pytest.raises(CommandError) as info:
            dispatch.execute(_ctx(ks), [b"EVAL", script, b"0"])
        assert info.value.message.startswith("ERR Script aborted")
    # effects before the abort stay, like any script error
    assert ks.dbs[0].data[b"n"] == b"1"
    assert dispatch.execute(_ctx(ks), [b"EVAL", b"return 1", b"0"]) == 1     # the VM is still usable


@pytest.mark.parametrize("script", [
    b"return redis.call.__class__",
    b"return python",
    b"return os.execute('true')",
    b"return loadstring('return os')()",
    b"return getfenv(1)",
    b"return debug.getinfo(1)",
    b"return require('os')",
    b"return io.open('/etc/passwd')",
    b"return string.dump(function() end) and dofile('/etc/passwd')",
])
def test_sandbox_has_no_way_out(script):
    ks = Keyspace()
    with pytest.raises(CommandError):
        dispatch.execute(_ctx(ks), [b"EVAL", script, b"0"])


def test_self_referencing_reply_is_an_error_not_a_crash():
    ks = Keyspace()
    with pytest.raises(CommandError, match="reached lua stack limit"):
        dispatch.execute(_ctx(ks), [b"EVAL", b"local t = {} t[1] = t return t", b"0"])


def test_script_kill_and_function_kill_are_notbusy():
    ks = Keyspace()
    for args in ([b"SCRIPT", b"KILL"], [b"FUNCTION", b"KILL"]):
        with pytest.raises(CommandError, match="NOTBUSY"):
            dispatch.execute(_ctx(ks), args)


def test_rand48_matches_redis():
    """redisSrand48(7) then math.random(1000) twice gives 267, 683 on redis-server 7.0."""
    rand = scripting.Rand48(7)
    assert [int(rand.random() * 1000) + 1 for _ in range(2)] == [267, 683]


def test_eval_key_positions():
    spec = dispatch.lookup([b"EVAL", b"return 1", b"2", b"a", b"b", b"c"])
    assert spec.key_positions([b"EVAL", b"return 1", b"2", b"a", b"b", b"c"]) == [3, 4]
    assert spec.key_positions([b"EVAL", b"return 1", b"0"]) == []
