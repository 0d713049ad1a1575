"""The access clock behind OBJECT IDLETIME/FREQ (memdb/access.py), driven through dispatch with explicit clocks:
what counts as an access, LFU decay and increment, stale entries, and that it never touches replicated state."""
import random

from memdb import access
from memdb.commands import dispatch
from memdb.commands.spec import CommandError, Context
from memdb.keyspace import Keyspace

T0 = 1_700_000_000_000


def run(keyspace: Keyspace, now_ms: int, *args: str, rng: random.Random | None = None):
    ctx = Context(keyspace, keyspace.dbs[0], now_ms, rng or random.Random(0))
    try:
        return dispatch.execute(ctx, [a.encode() for a in args])
    except CommandError as exc:
        return exc.message


def test_lru_idle_seconds_and_what_counts_as_an_access():
    ks = Keyspace()
    access.configure(ks, "allkeys-lru", T0)
    run(ks, T0, "SET", "k", "v")
    assert run(ks, T0 + 59_999, "OBJECT", "IDLETIME", "k") == 59
    for looked_at in (("TYPE", "k"), ("EXISTS", "k"), ("TTL", "k"), ("PTTL", "k"), ("OBJECT", "ENCODING", "k")):
        run(ks, T0 + 60_000, *looked_at)
    assert run(ks, T0 + 61_000, "OBJECT", "IDLETIME", "k") == 61
    run(ks, T0 + 61_000, "STRLEN", "k")
    assert run(ks, T0 + 64_500, "OBJECT", "IDLETIME", "k") == 3
    assert run(ks, T0, "OBJECT", "FREQ", "k").startswith("ERR An LFU maxmemory policy is not selected")
    assert run(ks, T0, "OBJECT", "IDLETIME", "missing") is None


def test_keys_older_than_the_clock_report_the_time_since_it_started():
    ks = Keyspace()
    run(ks, T0, "SET", "old", "v")                     # no clock yet (noeviction): nothing tracked
    assert ks.access is None
    assert run(ks, T0 + 5_000, "OBJECT", "IDLETIME", "old") == 0       # the first question starts the clock
    assert run(ks, T0 + 9_000, "OBJECT", "IDLETIME", "old") == 4
    access.configure(ks, "noeviction", T0 + 9_000)
    assert ks.access is None


def test_lfu_counter_starts_at_5_grows_logarithmically_and_decays():
    ks = Keyspace()
    access.configure(ks, "allkeys-lfu", T0)
    run(ks, T0, "SET", "k", "v")
    assert run(ks, T0, "OBJECT", "FREQ", "k") == access.LFU_INIT_VAL
    run(ks, T0, "GET", "k")
    assert run(ks, T0, "OBJECT", "FREQ", "k") == 6     # p = 1 while the counter is at or below LFU_INIT_VAL
    for _ in range(1000):
        run(ks, T0, "GET", "k")
    hot = run(ks, T0, "OBJECT", "FREQ", "k")
    assert 10 < hot < 40, hot                           # ~ log: 1000 accesses with lfu-log-factor 10
    assert run(ks, T0 + 3 * 60_000, "OBJECT", "FREQ", "k") == hot - 3       # one step per lfu-decay-time minute
    assert run(ks, T0 + 3 * 60_000, "OBJECT", "IDLETIME", "k").startswith("ERR An LFU maxmemory policy is selected")
    ks.access.decay_minutes = 0
    assert run(ks, T0 + 600 * 60_000, "OBJECT", "FREQ", "k") == hot          # decay off


def test_a_recreated_key_starts_fresh_and_stale_entries_are_swept():
    ks = Keyspace()
    access.configure(ks, "allkeys-lfu", T0)
    ks.access.log_factor = 0                             # every access counts
    run(ks, T0, "SET", "k", "v")
    for _ in range(10):
        run(ks, T0, "GET", "k")
    assert run(ks, T0, "OBJECT", "FREQ", "k") == 15
    run(ks, T0, "DEL", "k")
    run(ks, T0, "SET", "k", "v")
    assert run(ks, T0, "OBJECT", "FREQ", "k") == 5
    for i in range(3000):
        run(ks, T0, "SET", f"tmp{i}", "v")
    run(ks, T0, "FLUSHDB")                               # deletes behind the clock's back
    run(ks, T0, "SET", "after", "v")
    assert len(ks.access._dbs[0]) <= access.STALE_ENTRIES_SLACK + 2


def test_the_clock_never_draws_from_the_entry_seed():
    """Replicated results must not depend on whether a node tracks access (SPOP picks with the entry's seed)."""
    picks = []
    for policy in ("noeviction", "allkeys-lfu"):
        ks = Keyspace()
        access.configure(ks, policy, T0)
        rng = random.Random(42)        # one source for the whole entry, as a MULTI/EXEC shares it
        run(ks, T0, "SADD", "s", *"abcdefgh", rng=rng)
        for _ in range(5):
            run(ks, T0, "SCARD", "s", rng=rng)
        picks.append(run(ks, T0, "SPOP", "s", "3", rng=rng))
    assert picks[0] == picks[1]
