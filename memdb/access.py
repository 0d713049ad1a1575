"""OBJECT IDLETIME and OBJECT FREQ: a per-key access clock, as Redis keeps one in every object's `lru` field (evict.c).

Theory of operation
-------------------
Access times are node-local, not replicated state: a read on a replica is an access of that replica's keys only,
exactly as in Redis, where each replica has its own LRU/LFU data. So the clock lives beside the keyspace
(`Keyspace.access`), never inside the values, never touches the entry's seeded random source (that would change
what SPOP picks on this node only), and nothing replicated depends on it.

Which clock runs follows `maxmemory-policy` (a node-local CONFIG parameter), as in Redis:
  * an LFU policy (allkeys-lfu, volatile-lfu): an 8-bit logarithmic access counter per key with Redis's
    probabilistic increment (lfu-log-factor) and decay (lfu-decay-time minutes); new keys start at 5. OBJECT FREQ
    answers it; OBJECT IDLETIME is an error.
  * any other policy: the time of the last access per key (LRU). OBJECT IDLETIME answers the seconds since;
    OBJECT FREQ is an error. To keep memory cheap, the LRU clock only runs under an LRU policy (allkeys-lru,
    volatile-lru), or once OBJECT IDLETIME has been asked on this node: under noeviction (the default) nothing is
    tracked until then. A key not accessed since the clock started reports the seconds since it started (a lower
    bound of its true idle time); switching policy restarts the clock.

An access is what Redis counts as one: every key argument of a command (its key positions in the command table),
looked at before the command runs, except the commands that look with LOOKUP_NOTOUCH (OBJECT, TYPE, EXISTS, the
TTL family). A key the command created starts fresh (LFU_INIT_VAL). memdb/commands/dispatch.py calls `around`.
"""
from __future__ import annotations

import random
from typing import Any, Callable

LFU_INIT_VAL = 5
LFU_COUNTER_MAX = 255
# Commands whose lookups do not count as an access (Redis's LOOKUP_NOTOUCH).
NO_TOUCH = frozenset({"object|encoding", "object|freq", "object|idletime", "object|refcount", "type", "exists",
                      "ttl", "pttl", "expiretime", "pexpiretime"})
# How many stale entries (keys deleted behind the clock's back: FLUSHALL, expiry...) to allow before a sweep.
STALE_ENTRIES_SLACK = 1024


class AccessClock:
    """Per database: key -> last access in unix ms (LRU), or (access minute << 8) | counter (LFU, as Redis packs
    its 24-bit lru field)."""

    def __init__(self, lfu: bool, now_ms: int, log_factor: int = 10, decay_minutes: int = 1,
                 rng: random.Random | None = None):
        self.lfu = lfu
        self.started_ms = now_ms
        self.log_factor = log_factor
        self.decay_minutes = decay_minutes
        self._rng = rng or random.Random()      # node-local chance for the LFU increment, never the entry's seed
        self._dbs: dict[int, dict[bytes, int]] = {}

    # -- what dispatch calls ------------------------------------------------------------------------------------
    def around(self, ctx: Any, keys: list[bytes], run: Callable[[], Any]) -> Any:
        """Run a command that names `keys`, counting one access of each (lookupKey's touch, then createObject's
        fresh clock for a key it created)."""
        data = ctx.db.data
        times = self._dbs.setdefault(ctx.db.index, {})
        now_ms = ctx.now_ms
        existed = [key in data for key in keys]
        for key, present in zip(keys, existed):
            if present:
                times[key] = self._touched(times.get(key), now_ms)
            else:
                times.pop(key, None)          # a stale entry (the key went behind the clock's back)
        reply = run()
        for key, present in zip(keys, existed):
            if key not in data:
                times.pop(key, None)
            elif not present:
                times.setdefault(key, self._fresh(now_ms))   # unless RESTORE ... IDLETIME/FREQ set it
        if len(times) > 2 * len(data) + STALE_ENTRIES_SLACK:
            for key in [k for k in times if k not in data]:
                del times[key]
        return reply

    def restored(self, db_index: int, key: bytes, freq: int, idle_s: int, now_ms: int) -> None:
        """RESTORE ... FREQ f | IDLETIME s (objectSetLRUOrLFU): each applies only under its own policy."""
        times = self._dbs.setdefault(db_index, {})
        if self.lfu and freq >= 0:
            times[key] = ((now_ms // 60000) << 8) | freq
        elif not self.lfu and idle_s >= 0:
            times[key] = now_ms - idle_s * 1000

    # -- OBJECT IDLETIME / OBJECT FREQ ----------------------------------------------------------------------------
    def idle_seconds(self, db_index: int, key: bytes, now_ms: int) -> int:
        assert not self.lfu
        last_ms = self._dbs.get(db_index, {}).get(key, self.started_ms)
        return max(0, now_ms - last_ms) // 1000

    def frequency(self, db_index: int, key: bytes, now_ms: int) -> int:
        assert self.lfu
        packed = self._dbs.get(db_index, {}).get(key)
        if packed is None:
            packed = self._fresh(self.started_ms)
        return self._decayed(packed, now_ms)

    # -- Redis's LFU arithmetic (evict.c) -------------------------------------------------------------------------
    def _fresh(self, now_ms: int) -> int:
        return ((now_ms // 60000) << 8) | LFU_INIT_VAL if self.lfu else now_ms

    def _touched(self, previous: int | None, now_ms: int) -> int:
        if not self.lfu:
            return now_ms
        counter = self._decayed(previous if previous is not None else self._fresh(self.started_ms), now_ms)
        return ((now_ms // 60000) << 8) | self._log_incr(counter)

    def _decayed(self, packed: int, now_ms: int) -> int:
        """LFUDecrAndReturn: one step down per lfu-decay-time minutes since the last access."""
        counter = packed & 255
        if self.decay_minutes:
            periods = max(0, now_ms // 60000 - (packed >> 8)) // self.decay_minutes
            counter = max(0, counter - periods)
        return counter

    def _log_incr(self, counter: int) -> int:
        """LFULogIncr: the higher the counter, the less likely an access increments it."""
        if counter == LFU_COUNTER_MAX:
            return counter
        base = max(0, counter - LFU_INIT_VAL)
        if self._rng.random() < 1.0 / (base * self.log_factor + 1):
            counter += 1
        return counter


def configure(keyspace: Any, policy: str, now_ms: int, log_factor: int = 10, decay_minutes: int = 1) -> None:
    """Run the clock `maxmemory-policy` asks for (see the module docstring); keep it if it is already the right one."""
    if policy.endswith("-lfu"):
        wanted: bool | None = True
    elif policy.endswith("-lru"):
        wanted = False
    else:
        wanted = None
    clock = keyspace.access
    if wanted is None:
        keyspace.access = None
    elif clock is None or clock.lfu != wanted:
        keyspace.access = AccessClock(wanted, now_ms, log_factor, decay_minutes)


def bind(config: Any, keyspace: Any, clock_ms: Callable[[], int]) -> None:
    """Follow the server's maxmemory-policy, lfu-log-factor and lfu-decay-time (memdb/server.py wires this)."""
    def policy_changed(policy: str) -> None:
        configure(keyspace, policy, clock_ms(), config["lfu-log-factor"], config["lfu-decay-time"])

    def tuning_changed(_: int) -> None:
        if keyspace.access is not None:
            keyspace.access.log_factor = config["lfu-log-factor"]
            keyspace.access.decay_minutes = config["lfu-decay-time"]

    config.on_change("maxmemory-policy", policy_changed)
    config.on_change("lfu-log-factor", tuning_changed)
    config.on_change("lfu-decay-time", tuning_changed)
    policy_changed(config["maxmemory-policy"])
