"""A write/read workload with a ledger of what was acknowledged and a recorded history, for failover tests.

Each writer thread owns a few keys and writes unique values to them in sequence (SET), and increments a shared
counter (INCR). Reader threads GET those keys and the counter. A reply means acknowledged; an error or timeout
means *uncertain* (the write may or may not have been applied), except replies that say the command was refused
before it reached the log (`definitely_not_applied`). Two checks follow a failure:
  - the ledger: each key holds its last acknowledged value, or a value written after it whose outcome was
    uncertain; the counter is at least the number of acknowledged INCRs and at most that plus the uncertain ones;
  - linearizability (tests/linearizability.py) of every operation with its call/return times, plus final reads:
    this also catches stale reads (e.g. from a deposed primary after its lease) and lost or doubled INCRs.
redis-py is used with retries off, so a library retry can never apply an INCR twice behind our back.

Keys are grouped in generations (`start_generation`): a long run (bench/chaos.py) moves the load to fresh keys each
cycle and checks the finished generation, so each key's history stays small.
"""
from __future__ import annotations

import dataclasses
import random
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.linearizability import COUNTER as COUNTER_MODEL
from tests.linearizability import REGISTER, UNKNOWN, Op, Result, check

COUNTER = "ledger:0:counter"      # the counter of generation 0 (the only one the failover tests use)


def counter_key(generation: int) -> str:
    return f"ledger:{generation}:counter"


def definitely_not_applied(error: redis.RedisError) -> bool:
    """Replies that mean the write never reached the log (memdb/node.py, memdb/endpoint.py): READONLY (not the
    primary, or deposed: the entry was fenced), TRYAGAIN for a lapsed lease (checked before submitting), and the
    endpoint's CLUSTERDOWN (sent before it forwards anything). If one of these ever applied, the linearizability
    check would report it."""
    if not isinstance(error, redis.ResponseError):
        return False
    text = str(error)
    return text.startswith(("READONLY", "CLUSTERDOWN", "You can't write against a read only replica")) \
        or "lease has lapsed" in text


@dataclasses.dataclass
class KeyLedger:
    acked_seq: int = 0                      # seq of the last acknowledged SET
    uncertain: set = dataclasses.field(default_factory=set)   # seqs whose SET outcome is unknown


class Ledger:
    def __init__(self, generation: int = 0):
        self.generation = generation
        self.counter = counter_key(generation)
        self.lock = threading.Lock()
        self.keys: dict[str, KeyLedger] = {}
        self.incr_acked = 0
        self.incr_uncertain = 0
        self.acked_writes = 0
        self.errors = 0

    def problems(self, client: redis.Redis) -> list[str]:
        """What the node behind `client` lost or resurrected (empty if nothing)."""
        out = []
        for key, kl in sorted(self.keys.items()):
            raw = client.get(key)
            if kl.acked_seq == 0 and raw is None:
                continue
            if raw is None:
                out.append(f"{key}: acknowledged seq {kl.acked_seq} lost (key missing)")
                continue
            seq = int(raw.split(b":")[1])
            if not (seq == kl.acked_seq or (seq > kl.acked_seq and seq in kl.uncertain)):
                out.append(f"{key}: holds seq {seq}, last acknowledged {kl.acked_seq} (lost or resurrected write)")
        counter = int(client.get(self.counter) or 0)
        if not self.incr_acked <= counter <= self.incr_acked + self.incr_uncertain:
            out.append(f"counter {counter}: acknowledged INCRs {self.incr_acked}, uncertain {self.incr_uncertain}")
        return out

    def check(self, client: redis.Redis) -> None:
        problems = self.problems(client)
        assert not problems, "\n".join(problems)


class History:
    """Every operation of every thread, with call/return times (time.monotonic)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ops: list[Op] = []

    def add(self, op: Op) -> None:
        with self.lock:
            self.ops.append(op)

    def generation(self, generation: int) -> list[Op]:
        prefix = f"ledger:{generation}:"
        with self.lock:
            return [op for op in self.ops if op.key.startswith(prefix)]

    def drop(self, generation: int) -> None:
        """Forget a generation already checked (a long run would otherwise keep millions of ops)."""
        prefix = f"ledger:{generation}:"
        with self.lock:
            self.ops = [op for op in self.ops if not op.key.startswith(prefix)]

    def check(self, generation: int = 0, max_steps: int = 2_000_000) -> Result:
        ops = self.generation(generation)
        counter = counter_key(generation)
        registers = check([op for op in ops if op.key != counter], REGISTER, max_steps)
        counters = check([op for op in ops if op.key == counter], COUNTER_MODEL, max_steps)
        return Result(registers.keys + counters.keys)


class Workload:
    def __init__(self, port_for_write, threads: int = 4, keys_per_thread: int = 3, readers: int = 2,
                 seed: int = 0):
        """port_for_write(): the port to (re)connect to, e.g. the primary endpoint."""
        self.port_for_write = port_for_write
        self.keys_per_thread = keys_per_thread
        self.writers = threads
        self.generation = 0
        self.ledgers = {0: Ledger(0)}
        self.thread_generation = [0] * (threads + readers)   # the generation of each thread's current op
        self.history = History()
        self.ack_times: list[tuple[float, float]] = []   # (call, return) of acknowledged writes, all generations
        self.ack_lock = threading.Lock()
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._write, args=(i,), daemon=True, name=f"writer-{i}")
                        for i in range(threads)]
        self.threads += [threading.Thread(target=self._read, args=(threads + i, random.Random(seed * 1000 + i)),
                                          daemon=True, name=f"reader-{i}") for i in range(readers)]

    @property
    def ledger(self) -> Ledger:
        return self.ledgers[self.generation]

    def start_generation(self, generation: int) -> None:
        """Move the load to fresh keys; the previous generation goes quiet (but for uncertain writes in flight)."""
        self.ledgers[generation] = Ledger(generation)
        self.generation = generation

    def wait_generation(self, generation: int, timeout_s: float = 15.0) -> bool:
        """Wait until every thread has finished its ops on older generations (a reply or an error)."""
        deadline = time.monotonic() + timeout_s
        while any(g < generation for g in self.thread_generation) and time.monotonic() < deadline:
            time.sleep(0.01)
        return all(g >= generation for g in self.thread_generation)

    def keys(self, generation: int) -> list[str]:
        return [f"ledger:{generation}:{t}:{k}" for t in range(self.writers) for k in range(self.keys_per_thread)]

    def failover_time_after(self, t_kill: float) -> float | None:
        """Seconds from t_kill to the first acknowledged write that was *sent* after it (so a reply of the killed
        process already on its way does not count), in any generation."""
        with self.ack_lock:
            later = [ret for call, ret in self.ack_times if call > t_kill]
        return min(later) - t_kill if later else None

    def _client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port_for_write(), socket_timeout=5,
                           socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))

    def _acked(self, call: float, ret: float) -> None:
        with self.ack_lock:
            self.ack_times.append((call, ret))

    def _write(self, thread_no: int) -> None:
        client = self._client()
        seq = 0
        while not self.stop_event.is_set():
            ledger = self.ledger
            self.thread_generation[thread_no] = ledger.generation
            seq += 1
            key = f"ledger:{ledger.generation}:{thread_no}:{seq % self.keys_per_thread}"
            value = f"{thread_no}:{seq}"
            with ledger.lock:
                kl = ledger.keys.setdefault(key, KeyLedger())
            call = time.monotonic()
            try:
                client.set(key, value)
                ret = time.monotonic()
                self.history.add(Op(key, "set", value, "OK", call, ret, thread_no))
                with ledger.lock:
                    kl.acked_seq = seq
                    kl.uncertain.clear()   # only values after the last ack matter
                    ledger.acked_writes += 1
                self._acked(call, ret)
            except redis.RedisError as exc:
                if not definitely_not_applied(exc):
                    self.history.add(Op(key, "set", value, UNKNOWN, call, float("inf"), thread_no))
                    with ledger.lock:
                        kl.uncertain.add(seq)
                with ledger.lock:
                    ledger.errors += 1
                client = self._reconnect(client)
                continue
            call = time.monotonic()
            try:
                new_value = client.incr(ledger.counter)
                ret = time.monotonic()
                self.history.add(Op(ledger.counter, "incr", None, new_value, call, ret, thread_no))
                with ledger.lock:
                    ledger.incr_acked += 1
                self._acked(call, ret)
            except redis.RedisError as exc:
                if not definitely_not_applied(exc):
                    self.history.add(Op(ledger.counter, "incr", None, UNKNOWN, call, float("inf"), thread_no))
                    with ledger.lock:
                        ledger.incr_uncertain += 1
                with ledger.lock:
                    ledger.errors += 1
                client = self._reconnect(client)

    def _read(self, client_no: int, rng: random.Random) -> None:
        client = self._client()
        while not self.stop_event.is_set():
            generation = self.thread_generation[client_no] = self.generation
            key = rng.choice(self.keys(generation) + [counter_key(generation)] * 2)
            call = time.monotonic()
            try:
                raw = client.get(key)
            except redis.RedisError:
                client = self._reconnect(client)   # a failed read has no effect: nothing to record
                continue
            self.history.add(Op(key, "get", None, _decode(key, raw), call, time.monotonic(), client_no))

    def final_reads(self, client: redis.Redis, generation: int = 0) -> None:
        """Read every key of a generation once more (e.g. from the new primary) into the history, so a lost
        write shows up as a non-linearizable read."""
        for key in self.keys(generation) + [counter_key(generation)]:
            call = time.monotonic()
            raw = client.get(key)
            self.history.add(Op(key, "get", None, _decode(key, raw), call, time.monotonic(), -1))

    def check_linearizable(self, generation: int = 0) -> Result:
        result = self.history.check(generation)
        assert result.ok, f"history of generation {generation} is not linearizable:\n{result.summary()}"
        return result

    def _reconnect(self, client: redis.Redis) -> redis.Redis:
        try:
            client.close()
        except redis.RedisError:
            pass
        time.sleep(0.02)
        return self._client()

    def __enter__(self) -> "Workload":
        for t in self.threads:
            t.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(15)

    def __exit__(self, *exc) -> None:
        self.stop()


def _decode(key: str, raw: bytes | None):
    if key.endswith(":counter"):
        return int(raw) if raw is not None else 0
    return raw.decode() if raw is not None else None
