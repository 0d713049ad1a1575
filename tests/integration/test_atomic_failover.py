"""kill -9 of the primary while clients move amounts between accounts with Lua scripts (EVAL) and MULTI/EXEC: a
script or a transaction is one log entry, so on the new primary and on every replica it is applied entirely or
not at all, and every acknowledged one is there.

Each transfer does several writes in one script or transaction: DECRBY the source, INCRBY the destination, and
RPUSH a journal record "id from to amount". Checks, on every node after catch-up, from one atomic snapshot (a
read-only MULTI/EXEC, answered at once by the node):
  * the balances sum to the initial total (a half-applied transfer breaks it);
  * replaying the journal from the initial balances gives exactly the balances (a transfer whose journal record
    is missing, or present without its balance changes, breaks it);
  * every acknowledged transfer is in the journal exactly once; none refused before reaching the log is;
  * every node holds the same snapshot.
redis-py runs with retries off (Retry(NoBackoff(), 0)): an error counts as "outcome unknown", never as a silent retry
that could apply a transfer twice.
"""
import threading
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.integration.workload import definitely_not_applied

ACCOUNTS = [f"acct:{i}" for i in range(6)]
INITIAL = 1000
JOURNAL = "journal"
TRANSFER_LUA = """
local amount = tonumber(ARGV[1])
redis.call('DECRBY', KEYS[1], amount)
redis.call('INCRBY', KEYS[2], amount)
redis.call('RPUSH', KEYS[3], ARGV[2])
return redis.call('LLEN', KEYS[3])
"""


class Transfers:
    """Client threads moving amounts between accounts, each attempt with a unique id, outcomes recorded."""

    def __init__(self, port: int, kinds: list[str]):
        self.port = port
        self.lock = threading.Lock()
        self.acked: set[str] = set()
        self.refused: set[str] = set()         # definitely not applied (refused before the log)
        self.uncertain: set[str] = set()
        self.acked_after: list[float] = []     # monotonic time of each acknowledgement
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i, kind), daemon=True)
                        for i, kind in enumerate(kinds)]

    def _client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, socket_connect_timeout=2,
                           retry=Retry(NoBackoff(), 0))

    def _run(self, thread_no: int, kind: str) -> None:
        client = self._client()
        script = client.register_script(TRANSFER_LUA)
        seq = 0
        while not self.stop_event.is_set():
            seq += 1
            src, dst = ACCOUNTS[seq % len(ACCOUNTS)], ACCOUNTS[(seq * 7 + thread_no) % len(ACCOUNTS)]
            amount = 1 + (seq * 13 + thread_no) % 50
            tid = f"{kind}-{thread_no}-{seq}"
            record = f"{tid} {src} {dst} {amount}"
            try:
                if kind == "eval":
                    # EVALSHA (falling back to EVAL once per connection): the script cache is replicated state.
                    script(keys=[src, dst, JOURNAL], args=[amount, record], client=client)
                else:
                    pipe = client.pipeline(transaction=True)
                    pipe.decrby(src, amount).incrby(dst, amount).rpush(JOURNAL, record)
                    pipe.execute()
                with self.lock:
                    self.acked.add(tid)
                    self.acked_after.append(time.monotonic())
            except redis.RedisError as exc:
                with self.lock:
                    (self.refused if definitely_not_applied(exc) else self.uncertain).add(tid)
                try:
                    client.close()
                except redis.RedisError:
                    pass
                time.sleep(0.02)
                client = self._client()
                script = client.register_script(TRANSFER_LUA)

    def __enter__(self) -> "Transfers":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(15)


def snapshot(client: redis.Redis) -> tuple[list[int], list[bytes]]:
    """Balances and journal read atomically (a read-only transaction is answered at once, in one piece)."""
    pipe = client.pipeline(transaction=True)
    for key in ACCOUNTS:
        pipe.get(key)
    pipe.lrange(JOURNAL, 0, -1)
    *balances, journal = pipe.execute()
    return [int(b) for b in balances], journal


def check_snapshot(balances: list[int], journal: list[bytes], transfers: Transfers) -> None:
    assert sum(balances) == INITIAL * len(ACCOUNTS), f"money created or destroyed: {balances}"
    replayed = dict.fromkeys(ACCOUNTS, INITIAL)
    ids = []
    for record in journal:
        tid, src, dst, amount = record.decode().split()
        replayed[src] -= int(amount)
        replayed[dst] += int(amount)
        ids.append(tid)
    assert [replayed[a] for a in ACCOUNTS] == balances, "balances disagree with the journal: a half-applied transfer"
    assert len(ids) == len(set(ids)), "a transfer applied twice"
    applied = set(ids)
    lost = transfers.acked - applied
    assert not lost, f"{len(lost)} acknowledged transfers lost, e.g. {sorted(lost)[:5]}"
    resurrected = transfers.refused & applied
    assert not resurrected, f"transfers refused before the log were applied: {sorted(resurrected)[:5]}"
    unknown = applied - transfers.acked - transfers.uncertain
    assert not unknown, f"journal holds transfers nobody attempted: {sorted(unknown)[:5]}"


def run_failover(cluster, kinds: list[str]) -> None:
    endpoint = cluster.plan.base_port
    setup = cluster.client(cluster.primary())
    setup.mset({key: INITIAL for key in ACCOUNTS})
    with Transfers(endpoint, kinds) as transfers:
        time.sleep(1.0)
        old = cluster.primary()
        t_kill = time.monotonic()
        cluster.kill(old)
        new = cluster.primary(exclude=old, timeout_s=10)
        time.sleep(1.5)
    assert new != old
    with transfers.lock:
        after_kill = sum(1 for t in transfers.acked_after if t > t_kill + 0.1)
    assert len(transfers.acked) > 30, f"only {len(transfers.acked)} transfers acknowledged"
    assert after_kill > 0, "no transfer was acknowledged by the new primary"
    for kind in set(kinds):
        assert any(tid.startswith(kind) for tid in transfers.acked), f"no {kind} transfer acknowledged"

    primary_view = snapshot(cluster.client(new))
    check_snapshot(*primary_view, transfers)
    for n in cluster.data_nodes():
        if n.name == old:
            continue
        deadline = time.monotonic() + 10
        while (view := snapshot(cluster.client(n.name))) != primary_view:
            assert time.monotonic() < deadline, f"{n.name} did not catch up: {len(view[1])} vs {len(primary_view[1])}"
            time.sleep(0.05)
        check_snapshot(*view, transfers)
    print(f"{len(transfers.acked)} acknowledged, {len(transfers.uncertain)} uncertain, "
          f"{len(transfers.refused)} refused; {len(primary_view[1])} applied")


def test_the_checks_catch_half_applied_lost_and_doubled_transfers():
    """The checks themselves (no cluster): each kind of damage a non-atomic apply could leave is reported."""
    transfers = Transfers(0, [])
    transfers.acked = {"eval-0-1", "multi-0-2"}
    good = [b"eval-0-1 acct:0 acct:1 5", b"multi-0-2 acct:2 acct:0 7"]
    balances = [INITIAL + 2, INITIAL + 5, INITIAL - 7] + [INITIAL] * 3
    check_snapshot(balances, good, transfers)
    half_applied = [INITIAL + 2, INITIAL, INITIAL - 7] + [INITIAL] * 3          # the INCRBY of eval-0-1 missing
    missing_record = [INITIAL - 5, INITIAL + 5] + [INITIAL] * 4                 # multi-0-2 lost its journal record
    cases = [(half_applied, good, "money created or destroyed"),
             (missing_record, good[:1], "acknowledged transfers lost"),
             ([INITIAL] * 6, [], "acknowledged transfers lost"),
             ([INITIAL + 2, INITIAL + 10, INITIAL - 12] + [INITIAL] * 3, good + [b"eval-0-1 acct:2 acct:1 5"],
              "applied twice")]
    for bad_balances, bad_journal, message in cases:
        try:
            check_snapshot(bad_balances, bad_journal, transfers)
        except AssertionError as exc:
            assert message in str(exc), (message, exc)
        else:
            raise AssertionError(f"not caught: {message}")


def test_kill_primary_during_lua_transfers(cluster):
    run_failover(cluster, ["eval"] * 4)


def test_kill_primary_during_multi_exec_transfers(cluster):
    run_failover(cluster, ["multi"] * 4)


def test_kill_primary_during_mixed_transfers(cluster):
    run_failover(cluster, ["eval", "multi", "eval", "multi"])
