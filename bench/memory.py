"""memdb's memory per key vs redis-server's, on this machine (issue #9, item 3).

    .venv/bin/python -m bench.memory [--scale 1.0] [--only strings,hashes,zset] [--out bench/results]
    make bench-memory BENCH_MEMORY_ARGS='--scale 0.1'

Not a test. For each workload, starts a fresh memdb cluster (3 txlog nodes, primary + 2 replicas, endpoint, zone
proxies; as bench/run.py does) and a fresh redis-server with no persistence (`--save '' --appendonly no`), loads the
same data into both, and compares the growth of the resident set (VmRSS from /proc/<pid>/status):
  strings  1M keys, 16-byte keys, 100-byte values (SET)
  hashes   100k hashes of 10 fields (HSET key f0 v0 ... f9 v9; 7-byte fields, 20-byte values)
  zset     one sorted set of 1M members (ZADD, 100 members per command; 16-byte members, seeded random scores)
--scale multiplies the number of keys / hashes / members (0.1 for a quick check).

memdb's number is the RSS growth of the *primary data node* process only (txlog nodes keep the log on disk in
LMDB, the endpoint and zone proxies hold no data). Each replica applies the same log into the same structures, so
it costs the same again; the replicas' growth is measured and reported too. The load is pipelined raw RESP
(asyncio + hiredis, N connections x P commands in flight) to the primary's RESP port, so every write goes through
the quorum-replicated log. RSS is read after the replicas have caught up, the load connections are closed and the
processes have been idle for --settle seconds: it includes allocator slack (Python's pymalloc arenas, jemalloc's
size classes), which is what a user pays. redis's own `used_memory` growth is reported beside its RSS.
Results go to <out>/<date>-memory.md and .json and are printed. Every started process is stopped at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Callable, Iterator

from bench.run import HOST, ROOT, Memdb, Redis, _encode, log, read_replies, resp, run_async, wait_for

CONNECTIONS = 8
PIPELINE = 256            # commands in flight per connection (memdb's server allows 1024)
ZADD_BATCH = 100          # members per ZADD
ZADD_PIPELINE = 16
HASH_FIELDS = 10
MAX_RETRIES = 1_000_000   # TRYAGAIN / READONLY replies re-sent per load, at most


@dataclasses.dataclass
class Workload:
    name: str
    unit: str                                   # what "per" means: key, field, member
    items: int                                  # how many units
    commands: Callable[[], Iterator[bytes]]     # encoded RESP commands that load them
    check: tuple[str, ...]                      # a read whose integer reply equals `expect` once all is applied
    expect: int
    pipeline: int = PIPELINE


def _strings(n: int) -> Workload:
    def commands() -> Iterator[bytes]:
        for i in range(n):
            yield _encode(b"SET", b"key:%012d" % i, b"v" * 88 + b"%012d" % i)   # 16-byte key, 100-byte value
    return Workload("strings", "key", n, commands, ("DBSIZE",), n)


def _hashes(n: int) -> Workload:
    def commands() -> Iterator[bytes]:
        for i in range(n):
            args = [b"HSET", b"hash:%011d" % i]
            for f in range(HASH_FIELDS):
                args += [b"field:%d" % f, b"v%02d:%016d" % (f, i)]     # 7-byte field, 20-byte value
            yield _encode(*args)
    return Workload("hashes", "field", n * HASH_FIELDS, commands, ("DBSIZE",), n)


def _zset(n: int) -> Workload:
    def commands() -> Iterator[bytes]:
        rng = random.Random(9)
        for start in range(0, n, ZADD_BATCH):
            args = [b"ZADD", b"zset"]
            for i in range(start, min(n, start + ZADD_BATCH)):
                args += [b"%.6f" % (rng.random() * 1e6), b"member:%09d" % i]     # 16-byte member
            yield _encode(*args)
    # Fewer ZADDs in flight: memdb parses each score exactly (Fractions, ~40 us), so a group-committed batch of
    # 2,048 ZADDs of 100 members keeps the apply loop busy for seconds. Even at 16 in flight per connection the
    # primary's lease lapses now and then on a busy 2-vCPU machine (TRYAGAIN, sometimes a failover: the loader
    # retries, the report says so).
    return Workload("zset", "member", n, commands, ("ZCARD", "zset"), n, pipeline=ZADD_PIPELINE)


WORKLOADS = {"strings": (_strings, 1_000_000), "hashes": (_hashes, 100_000), "zset": (_zset, 1_000_000)}


# -- measuring --------------------------------------------------------------------------------------------------
def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def redis_used_memory(port: int) -> int:
    info = resp(port, "INFO", "memory").decode()
    return next(int(line.split(":")[1]) for line in info.splitlines() if line.startswith("used_memory:"))


async def _load(target: Callable[[], int], commands: Iterator[bytes], conns: int, pipeline: int) -> dict:
    """Send every command, `pipeline` in flight per connection over `conns` connections to the port `target()`
    names; count the error replies.

    memdb's primary answers TRYAGAIN while its lease is not (yet) renewed and READONLY once deposed; on an
    overloaded machine a failover can happen mid-load. Such commands were not applied: they are sent again, after
    a reconnect to whichever node `target()` then names (every load command is idempotent: SET, HSET, ZADD)."""
    import hiredis
    counts = {"commands": 0, "errors": 0, "retries": 0, "reconnects": 0, "first_error": None}

    async def conn() -> None:
        retry: list[bytes] = []
        w = None
        try:
            while True:
                if w is None:
                    r, w = await asyncio.open_connection(HOST, await asyncio.to_thread(target))
                    reader = hiredis.Reader()
                # `commands` is shared by every connection: no two take the same command.
                batch = retry + [c for _, c in zip(range(pipeline - len(retry)), commands)]
                if not batch:
                    return
                retry, moved = [], False
                w.write(b"".join(batch))
                for command, reply in zip(batch, await read_replies(r, reader, len(batch))):
                    if isinstance(reply, hiredis.ReplyError):
                        text = str(reply)
                        if text.startswith(("TRYAGAIN", "READONLY")) and counts["retries"] < MAX_RETRIES:
                            counts["retries"] += 1
                            retry.append(command)
                            moved = moved or text.startswith("READONLY")
                        else:
                            counts["errors"] += 1
                            counts["first_error"] = counts["first_error"] or text
                counts["commands"] += len(batch) - len(retry)
                if retry:
                    await asyncio.sleep(0.05)
                if moved:
                    counts["reconnects"] += 1
                    w.close()
                    w = None
        finally:
            if w is not None:
                w.close()

    t0 = time.monotonic()
    await asyncio.gather(*(conn() for _ in range(conns)))
    counts["elapsed_s"] = round(time.monotonic() - t0, 2)
    return counts


def memdb_primary(memdb: Memdb, timeout_s: float = 60) -> tuple[str, int]:
    """(name, RESP port) of the data node that is primary and holds its lease."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for node in memdb.supervisor.plan.by_kind("data"):
            try:
                info = resp(node.port, "INFO", "replication").decode()
            except (OSError, ConnectionError):
                continue
            if "role:master" in info and "memdb_lease_valid:1" in info:
                return node.name, node.port
        time.sleep(0.1)
    raise RuntimeError(f"memdb: no primary with a lease within {timeout_s} s")


def _reply_int(port: int, check: tuple[str, ...]) -> int:
    reply = resp(port, *check, timeout_s=10)
    return reply if isinstance(reply, int) else -1


def measure(workload: Workload, root: str, settle_s: float) -> dict:
    """Fresh memdb and redis, baseline RSS, load, wait until applied everywhere, settle, RSS again."""
    memdb, redis = Memdb(os.path.join(root, workload.name)), Redis("d", os.path.join(root, workload.name))
    os.makedirs(redis.root, exist_ok=True)
    try:
        memdb.start()
        redis.start()
        data = {n.name: n for n in memdb.supervisor.plan.by_kind("data")}
        pids = {name: memdb.supervisor.procs[name].pid for name in data}
        redis_pid = redis.procs[0].pid
        time.sleep(settle_s)
        before = {name: rss_bytes(pid) for name, pid in pids.items()}
        before["redis"], redis_used0 = rss_bytes(redis_pid), redis_used_memory(redis.port)

        loads = {}
        for system, target in (("memdb", lambda: memdb_primary(memdb)[1]), ("redis", lambda: redis.port)):
            log(f"{workload.name}: loading {workload.items:,} {workload.unit}s into {system}")
            loads[system] = run_async(_load(target, workload.commands(), CONNECTIONS, workload.pipeline))
            log(f"  {loads[system]}")
            if loads[system]["errors"]:
                raise RuntimeError(f"{system}: {loads[system]['errors']} error replies, "
                                   f"first: {loads[system]['first_error']}")
        for name in data:   # the replicas apply asynchronously: wait until they hold everything
            wait_for(lambda port=data[name].port: _reply_int(port, workload.check) == workload.expect, 300,
                     f"{name} applied everything")
        if _reply_int(redis.port, workload.check) != workload.expect:
            raise RuntimeError(f"redis: {workload.check} is not {workload.expect}")
        time.sleep(settle_s)
        after = {name: rss_bytes(pid) for name, pid in pids.items()}
        after["redis"], redis_used1 = rss_bytes(redis_pid), redis_used_memory(redis.port)
        primary, _ = memdb_primary(memdb)   # normally the one that started as primary (see `failover`)
    finally:
        memdb.stop()
        redis.stop()

    def per_unit(name: str) -> float:
        return (after[name] - before[name]) / workload.items

    replicas = [name for name in data if name != primary]
    return {"workload": workload.name, "unit": workload.unit, "items": workload.items,
            "memdb_primary": primary, "failover": primary != memdb.primary, "memdb_rss_before": before[primary],
            "memdb_rss_after": after[primary], "memdb_bytes_per_unit": round(per_unit(primary), 1),
            "memdb_replica_bytes_per_unit": {name: round(per_unit(name), 1) for name in replicas},
            "redis_rss_before": before["redis"], "redis_rss_after": after["redis"],
            "redis_bytes_per_unit": round(per_unit("redis"), 1),
            "redis_used_memory_bytes_per_unit": round((redis_used1 - redis_used0) / workload.items, 1),
            "ratio": round(per_unit(primary) / per_unit("redis"), 2) if per_unit("redis") > 0 else None,
            "load": loads}


# -- reporting --------------------------------------------------------------------------------------------------
def report(meta: dict, results: list[dict]) -> str:
    out = [f"# memdb memory per key vs redis — {meta['date']}", "",
           f"- machine: {meta['machine']}",
           f"- load average at start: {meta['loadavg_start']}, at end: {meta.get('loadavg_end')}",
           f"- scale: {meta['scale']}; redis: {meta['redis_version']}",
           "- RSS growth (VmRSS after load - before, after the replicas caught up and "
           f"{meta['settle_s']} s idle) divided by the number of keys / fields / members",
           "- memdb: the primary data node's process; each replica costs the same (its own column)",
           "- redis: redis-server --save '' --appendonly no; used_memory = redis's own allocator count", ""]
    if meta.get("error"):
        out += [f"**run stopped early: {meta['error']}**", ""]
    out += ["| workload | items | memdb B/item (primary) | memdb replicas B/item | redis B/item (RSS) "
            "| redis used_memory B/item | memdb / redis (RSS) | load time memdb / redis s |",
            "|---|---|---|---|---|---|---|---|"]
    for r in results:
        replicas = " / ".join(f"{v:,.0f}" for v in r["memdb_replica_bytes_per_unit"].values())
        reconnects = r["load"]["memdb"]["reconnects"]
        failover = (" (after a failover)" if r["failover"] else
                    f" ({reconnects} reconnects to a new primary)" if reconnects else "")
        out.append(f"| {r['workload']} | {r['items']:,} {r['unit']}s | {r['memdb_bytes_per_unit']:,.0f}{failover} | "
                   f"{replicas} | {r['redis_bytes_per_unit']:,.0f} | {r['redis_used_memory_bytes_per_unit']:,.0f} | "
                   f"{r['ratio']}x | {r['load']['memdb']['elapsed_s']} / {r['load']['redis']['elapsed_s']} |")
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every workload's size (0.1: quick check)")
    ap.add_argument("--only", default="", help="comma-separated subset of " + ",".join(WORKLOADS))
    ap.add_argument("--settle", type=float, default=2.0, help="idle seconds before each RSS reading")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    args = ap.parse_args()
    names = args.only.split(",") if args.only else list(WORKLOADS)
    unknown = set(names) - set(WORKLOADS)
    if unknown:
        ap.error(f"unknown workload(s): {', '.join(sorted(unknown))}")
    if shutil.which("redis-server") is None:
        log("installing redis-server (apt-get)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "redis-server"], check=True, env=env)

    root = tempfile.mkdtemp(prefix="memdb-bench-memory-")
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} vCPU, {platform.platform()}, "
                       f"python {platform.python_version()}",
            "loadavg_start": tuple(round(x, 2) for x in os.getloadavg()), "scale": args.scale,
            "settle_s": args.settle, "connections": CONNECTIONS, "pipeline": PIPELINE,
            "redis_version": subprocess.run(["redis-server", "--version"], capture_output=True,
                                            text=True).stdout.strip()}
    log(f"load average {meta['loadavg_start']}; data in {root}")

    def on_term(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    results = []
    try:
        for name in names:
            make, full = WORKLOADS[name]
            results.append(measure(make(max(1, int(full * args.scale))), root, args.settle))
            log(f"{name}: {results[-1]['memdb_bytes_per_unit']} B vs {results[-1]['redis_bytes_per_unit']} B per "
                f"{results[-1]['unit']} ({results[-1]['ratio']}x)")
    except KeyboardInterrupt:
        log("interrupted")
        meta["error"] = "interrupted"
    except Exception as e:   # noqa: BLE001 - e.g. a system that did not start: report what there is
        log(f"error: {type(e).__name__}: {e}")
        meta["error"] = f"{type(e).__name__}: {e}"[:500]
    meta["loadavg_end"] = tuple(round(x, 2) for x in os.getloadavg())
    md = report(meta, results)
    print(md)
    os.makedirs(args.out, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d-%H%M")
    with open(os.path.join(args.out, f"{stamp}-memory.md"), "w") as f:
        f.write(md)
    with open(os.path.join(args.out, f"{stamp}-memory.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    log(f"wrote {args.out}/{stamp}-memory.md and .json")
    shutil.rmtree(root, ignore_errors=True)
    return 1 if meta.get("error") else 0


if __name__ == "__main__":
    sys.exit(main())
