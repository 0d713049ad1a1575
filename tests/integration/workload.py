"""A write workload with a ledger of what was acknowledged, for failover tests.

Each writer thread owns a few keys and writes unique values to them in sequence (SET), and increments a shared
counter (INCR). A reply means acknowledged; an error or timeout means *uncertain* (the write may or may not have
been applied). After a failure the checks are:
  - each key holds its last acknowledged value, or a value written after it whose outcome was uncertain;
  - the counter is at least the number of acknowledged INCRs and at most that plus the uncertain ones.
redis-py is used with retries off, so a library retry can never apply an INCR twice behind our back.
"""
from __future__ import annotations

import dataclasses
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

COUNTER = "ledger:counter"


@dataclasses.dataclass
class KeyLedger:
    acked_seq: int = 0                      # seq of the last acknowledged SET
    uncertain: set = dataclasses.field(default_factory=set)   # seqs whose SET outcome is unknown


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self.keys: dict[str, KeyLedger] = {}
        self.incr_acked = 0
        self.incr_uncertain = 0
        self.acked_writes = 0
        self.errors = 0
        self.first_ack_after: dict[float, float] = {}
        self.ack_times: list[float] = []

    def check(self, client: redis.Redis) -> None:
        for key, kl in self.keys.items():
            raw = client.get(key)
            if kl.acked_seq == 0 and raw is None:
                continue
            assert raw is not None, f"{key}: acknowledged seq {kl.acked_seq} lost (key missing)"
            seq = int(raw.split(b":")[1])
            assert seq == kl.acked_seq or (seq > kl.acked_seq and seq in kl.uncertain), \
                f"{key}: holds seq {seq}, last acknowledged {kl.acked_seq} (lost or resurrected write)"
        counter = int(client.get(COUNTER) or 0)
        assert self.incr_acked <= counter <= self.incr_acked + self.incr_uncertain, \
            f"counter {counter}: acknowledged INCRs {self.incr_acked}, uncertain {self.incr_uncertain}"

    def failover_time_after(self, t_kill: float) -> float | None:
        """Seconds from t_kill to the first write acknowledged after it."""
        later = [t for t in self.ack_times if t > t_kill]
        return min(later) - t_kill if later else None


class Workload:
    def __init__(self, port_for_write, threads: int = 4, keys_per_thread: int = 3):
        """port_for_write(): the port to (re)connect to, e.g. the primary endpoint."""
        self.port_for_write = port_for_write
        self.ledger = Ledger()
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i, keys_per_thread), daemon=True)
                        for i in range(threads)]

    def _client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port_for_write(), socket_timeout=5,
                           socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))

    def _run(self, thread_no: int, keys_per_thread: int) -> None:
        ledger = self.ledger
        client = self._client()
        seq = 0
        while not self.stop_event.is_set():
            seq += 1
            key = f"ledger:{thread_no}:{seq % keys_per_thread}"
            with ledger.lock:
                kl = ledger.keys.setdefault(key, KeyLedger())
            try:
                client.set(key, f"{thread_no}:{seq}")
                with ledger.lock:
                    kl.acked_seq = seq
                    kl.uncertain.clear()   # only values after the last ack matter
                    ledger.acked_writes += 1
                    ledger.ack_times.append(time.monotonic())
            except redis.RedisError:
                with ledger.lock:
                    kl.uncertain.add(seq)
                    ledger.errors += 1
                client = self._reconnect(client)
                continue
            try:
                client.incr(COUNTER)
                with ledger.lock:
                    ledger.incr_acked += 1
                    ledger.ack_times.append(time.monotonic())
            except redis.RedisError:
                with ledger.lock:
                    ledger.incr_uncertain += 1
                    ledger.errors += 1
                client = self._reconnect(client)

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

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(15)
