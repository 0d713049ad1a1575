"""Chaos run: randomized kill -9 cycles against one real cluster under continuous load (DESIGN.md invariants 1-3).

One cluster (3 txlog nodes, a primary and 2 replicas, the primary endpoint) and one workload (tests/integration/
workload.py: writers SET unique values and INCR a counter, readers GET them, all through the endpoint) run for the
whole session. Each cycle:
  1. wait until the cluster is whole again (every process up, one primary, replicas and txlog nodes caught up; a
     process that exited by itself is restarted and reported);
  2. move the load to fresh keys (a new generation), then check the finished generation: the ledger on the
     primary (no acknowledged write lost) and linearizability of its history with final reads from the primary;
  3. after a random pause, kill -9 a random victim: the primary, a replica, the txlog leader (of shard0), a txlog
     follower, a whole zone (its txlog node and data node), or a txlog node that also loses its disk (its data
     directory is deleted: it must come back recovering and catch up, txlog/server.py `join`);
  4. after a random downtime, restart it; the kill-to-first-acknowledged-write time is recorded (a write sent
     after the kill, so nothing the dead process already answered counts).
The victim choice and the timings come from random.Random(seed): `--seed S` repeats a run's schedule (the
processes' own timing is not under its control, so a failure may need a few repetitions).

Prints one line per cycle and, at the end: cycles, acknowledged writes, lost writes (must be 0), linearizability
violations (must be 0), and failover times p50/p99 (goal with the default 1 s lease: p50 <= 1.5 s, p99 <= 2.5 s).
Exit status 1 if anything was lost, not linearizable, or stuck. The cluster directory (logs/ per process) is kept
when something failed, or with --keep.

Usage: python -m bench.chaos [--cycles 200] [--seed S] [--dir DIR] [--keep]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import redis  # noqa: E402

from memdb import localcluster as lc  # noqa: E402
from tests.integration.cluster import RunningCluster  # noqa: E402
from tests.integration.tls import make_pki  # noqa: E402
from tests.integration.workload import Workload  # noqa: E402

VICTIMS = ("primary", "replica", "txlog-leader", "txlog-follower", "zone", "txlog-disk")
HEALTHY_TIMEOUT_S = 120.0
FAILOVER_TIMEOUT_S = 20.0


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def fmt_s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


# -- asking the cluster how it is ------------------------------------------------------------------------------
def data_info(cluster: RunningCluster, name: str) -> dict[str, str] | None:
    try:
        address = cluster.node(name).address
        info = lc.parse_info(lc.resp_command(address, "INFO", "txlog"))
        info.update(lc.parse_info(lc.resp_command(address, "INFO", "replication")))
        return info
    except (OSError, ConnectionError, ValueError):
        return None


def txlog_commit(cluster: RunningCluster, name: str) -> tuple[str, int] | None:
    """(role, commit index) of shard0's log on a txlog node, or None if it does not answer."""
    try:
        status = asyncio.run(lc.txlog_status(cluster.node(name).address, cluster.plan.txlog_tls))
    except Exception:   # noqa: BLE001 - grpc raises several kinds for a dead or starting node
        return None
    for s in status.logs:
        if s.log == "shard0":
            return s.role, s.commit_index
    return None


def wait_healthy(cluster: RunningCluster, exits: list[str], timeout_s: float = HEALTHY_TIMEOUT_S) -> str | None:
    """Wait until every process is up, there is one primary, and every replica and txlog node has reached the
    primary's applied index as first seen. Returns None when healthy, else what is still wrong.

    A process that exited by itself is restarted (every second until the deadline) and noted in `exits` with the
    end of its log: the harness's fixed ports lie in the ephemeral range, so a restarted node can find its port
    held by some other process's outgoing connection ("Address already in use") for a while, which is not a memdb
    failure."""
    deadline = time.monotonic() + timeout_s
    target = None
    problem = "not checked"
    while time.monotonic() < deadline:
        dead = [name for name, p in cluster.supervisor.procs.items() if p.poll() is not None]
        if dead:
            for name in dead:
                exits.append(f"{name} exited by itself (status {cluster.supervisor.procs[name].poll()}): "
                             f"{last_error(cluster, name)}")
                cluster.restart(name)
            time.sleep(1.0)
            continue
        problem = _health_problem(cluster, target)
        if problem is None:
            return None
        if problem.startswith("target:"):
            target = int(problem.split(":")[1])
            continue
        time.sleep(0.1)
    return problem


def last_error(cluster: RunningCluster, name: str) -> str:
    try:
        with open(cluster.plan.path("logs", f"{name}.log"), errors="replace") as f:
            lines = [line.strip() for line in f.read().splitlines()[-40:] if line.strip()]
    except OSError:
        return "(no log)"
    if any("Address already in use" in line or "Failed to bind" in line for line in lines):
        return "port already in use at restart (harness port race)"
    return " | ".join(lines[-3:])[:300]


def _health_problem(cluster: RunningCluster, target: int | None) -> str | None:
    dead = [name for name, p in cluster.supervisor.procs.items() if p.poll() is not None]
    if dead:
        return f"not running: {dead}"
    infos = {n.name: data_info(cluster, n.name) for n in cluster.data_nodes()}
    silent = [name for name, info in infos.items() if info is None]
    if silent:
        return f"data nodes not answering: {silent}"
    primaries = [name for name, info in infos.items() if info.get("role") == "master"]
    if len(primaries) != 1:
        return f"primaries: {primaries}"
    if target is None:
        return f"target:{int(infos[primaries[0]].get('applied_index', 0))}"
    behind = [name for name, info in infos.items() if int(info.get("applied_index", 0)) < target]
    if behind:
        return f"data nodes behind index {target}: {behind}"
    txlogs = {n.name: txlog_commit(cluster, n.name) for n in cluster.plan.by_kind("txlog")}
    if not any(t and t[0] == "leader" for t in txlogs.values()):
        return f"no txlog leader: {txlogs}"
    lagging = [name for name, t in txlogs.items() if t is None or t[1] < target]
    if lagging:
        return f"txlog nodes behind index {target}: {lagging}"
    return None


# -- one cycle -----------------------------------------------------------------------------------------------------
def snapshots_loaded(cluster: RunningCluster) -> int:
    loaded = 0
    for n in cluster.data_nodes():
        with open(cluster.plan.path("logs", f"{n.name}.log"), errors="replace") as f:
            loaded += f.read().count("loaded the snapshot at log index")
    return loaded


def choose_victims(cluster: RunningCluster, rng: random.Random) -> tuple[str, list[str], bool]:
    """(kind, process names, whether the primary is among them)."""
    kind = rng.choice(VICTIMS)
    primary = cluster.primary()
    if kind == "primary":
        return kind, [primary], True
    if kind == "replica":
        return kind, [rng.choice(sorted(n.name for n in cluster.data_nodes() if n.name != primary))], False
    if kind in ("txlog-leader", "txlog-follower"):
        leader = cluster.txlog_leader()
        if kind == "txlog-leader":
            return kind, [leader], False
        return kind, [rng.choice(sorted(n.name for n in cluster.plan.by_kind("txlog") if n.name != leader))], False
    if kind == "txlog-disk":
        return kind, [rng.choice(sorted(n.name for n in cluster.plan.by_kind("txlog")))], False
    zone = rng.choice(lc.ZONES)
    names = sorted(n.name for n in cluster.plan.nodes if n.zone == zone)
    return f"zone-{zone}", names, primary in names


def check_generation(cluster: RunningCluster, workload: Workload, generation: int) -> tuple[list[str], object]:
    """Ledger problems on the primary, and the linearizability result of the generation (with final reads)."""
    primary = cluster.primary(timeout_s=HEALTHY_TIMEOUT_S)
    client = cluster.client(primary)
    try:
        problems = workload.ledgers[generation].problems(client)
        workload.final_reads(client, generation)
    finally:
        client.close()
    result = workload.history.check(generation)
    return problems, result


def dump_history(workload: Workload, generation: int, path: str) -> None:
    """One JSON object per op (times are time.monotonic() of this process; ret null = outcome unknown)."""
    with open(path, "w") as f:
        for op in sorted(workload.history.generation(generation), key=lambda o: o.call):
            f.write(json.dumps({"key": op.key, "kind": op.kind, "value": op.value,
                                "output": None if op.uncertain else op.output, "uncertain": op.uncertain,
                                "call": op.call, "ret": None if op.ret == math.inf else op.ret,
                                "client": op.client}) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--seed", type=int, default=None, help="default: a random seed (printed)")
    parser.add_argument("--dir", default=None, help="cluster directory (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the cluster directory even if all is well")
    parser.add_argument("--pause-max-s", type=float, default=1.5, help="longest load before a kill")
    parser.add_argument("--down-max-s", type=float, default=2.5, help="longest downtime before the restart")
    parser.add_argument("--snapshot-every", type=int, default=lc.SNAPSHOT_EVERY_ENTRIES,
                        help="the cluster's snapshot interval in applied writes (small: restarts load snapshots "
                             "and replicas reload them after trims; default %(default)s)")
    parser.add_argument("--txlog-tls", action="store_true",
                        help="run the txlog's traffic over mutual TLS (throwaway certificates in the directory)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    rng = random.Random(seed)
    directory = args.dir or tempfile.mkdtemp(prefix="memdb-chaos-")
    print(f"chaos: seed={seed} cycles={args.cycles} dir={directory}{' txlog over TLS' if args.txlog_tls else ''}",
          flush=True)

    tls_dir = make_pki(os.path.join(directory, "pki")) if args.txlog_tls else ""
    cluster = RunningCluster(os.path.join(directory, "cluster"), snapshot_every=args.snapshot_every,
                             txlog_tls_dir=tls_dir).start()
    endpoint = cluster.plan.base_port
    workload = Workload(lambda: endpoint, threads=4, readers=2, seed=seed)
    failover_s: dict[str, list[float]] = {}
    primary_failover_s: list[float] = []
    acked = lost = violations = too_large = stuck = 0
    failures: list[str] = []
    exits: list[str] = []
    cycle_desc: dict[int, str] = {0: "start-up"}      # generation -> what was done to the cluster during it
    t_start = time.monotonic()
    cycle = generation = 0        # the last cycle started, the generation the load is on

    def finish_generation(generation: int) -> None:
        nonlocal acked, lost, violations, too_large, stuck
        try:
            problems, result = check_generation(cluster, workload, generation)
        except (TimeoutError, redis.RedisError) as exc:
            stuck += 1
            failures.append(f"generation {generation}: could not read it back from a primary: {exc!r}")
            return
        acked += workload.ledgers[generation].acked_writes + workload.ledgers[generation].incr_acked
        lost += len(problems)
        violations += len(result.violations)
        too_large += len(result.too_large)
        if problems or not result.ok:
            path = os.path.join(directory, f"history-{generation}.jsonl")
            dump_history(workload, generation, path)
            what = f"generation {generation} ({cycle_desc.get(generation, '?')}; history in {path})"
            failures.append(f"{what}:\n" + "\n".join(problems) + "\n" + result.summary())
            print(f"  !! {what}: {len(problems)} lost, {result.summary()}", flush=True)
        workload.history.drop(generation)
        del workload.ledgers[generation]

    try:
        workload.__enter__()
        for cycle in range(1, args.cycles + 1):
            problem = wait_healthy(cluster, exits)
            if problem is not None:
                stuck += 1
                failures.append(f"cycle {cycle}: cluster did not recover within {HEALTHY_TIMEOUT_S}s: {problem}")
                print(f"  !! cycle {cycle}: cluster did not recover: {problem}", flush=True)
                break
            generation = cycle
            workload.start_generation(generation)
            if not workload.wait_generation(generation):
                failures.append(f"cycle {cycle}: a client thread is stuck in generation {cycle - 1}")
            finish_generation(cycle - 1)

            time.sleep(rng.uniform(0.3, args.pause_max_s))
            kind, names, primary_hit = choose_victims(cluster, rng)
            downtime_s = rng.uniform(0.0, args.down_max_s)
            t_kill, wall_kill = time.monotonic(), time.time()
            for name in names:
                cluster.kill(name)
                if kind == "txlog-disk":
                    shutil.rmtree(cluster.plan.path(name), ignore_errors=False)
            time.sleep(downtime_s)
            for name in names:
                cluster.restart(name)
            took = None
            while time.monotonic() < t_kill + FAILOVER_TIMEOUT_S:
                took = workload.failover_time_after(t_kill)
                if took is not None:
                    break
                time.sleep(0.02)
            if took is None:
                stuck += 1
                failures.append(f"cycle {cycle}: no write acknowledged within {FAILOVER_TIMEOUT_S}s after killing "
                                f"{kind} {names}")
            else:
                label = f"{kind} (had primary)" if primary_hit and kind.startswith("zone") else kind
                failover_s.setdefault(label, []).append(took)
                if primary_hit:
                    primary_failover_s.append(took)
            wall = time.strftime("%H:%M:%S", time.localtime(wall_kill)) + f"{wall_kill % 1:.3f}"[1:]
            cycle_desc[cycle] = (f"cycle {cycle}: kill -9 {kind} {','.join(names)} at monotonic {t_kill:.3f} "
                                 f"(wall {wall}), restarted after {downtime_s:.2f}s")
            print(f"cycle {cycle:4d}  {kind:15s} {','.join(names):22s} down {downtime_s:4.2f}s  "
                  f"first ack after {fmt_s(took):>6s}  [{time.monotonic() - t_start:6.0f}s]", flush=True)
        workload.start_generation(generation + 1)
        workload.wait_generation(generation + 1)
        if wait_healthy(cluster, exits) is None:
            finish_generation(generation)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    finally:
        workload.stop()
        cluster.stop()

    elapsed = time.monotonic() - t_start
    print("\n=== chaos summary ===")
    print(f"seed                        {seed}")
    print(f"cycles                      {cycle}")
    print(f"elapsed                     {elapsed:.0f}s")
    print(f"acknowledged writes         {acked}")
    print(f"lost writes                 {lost}")
    print(f"linearizability violations  {violations}   (keys too large to check: {too_large})")
    print(f"stuck (no recovery)         {stuck}")
    print(f"snapshots loaded            {snapshots_loaded(cluster)}   (by starting or lagging data nodes)")
    port_races = sum("harness port race" in e for e in exits)
    print(f"unexpected process exits    {len(exits)} ({port_races} of them a port taken at restart)")
    print(f"failover, primary killed    n={len(primary_failover_s)} p50 {fmt_s(percentile(primary_failover_s, 50))} "
          f"p99 {fmt_s(percentile(primary_failover_s, 99))} max {fmt_s(max(primary_failover_s, default=None))}")
    for kind, values in sorted(failover_s.items()):
        print(f"  first ack after {kind:22s} n={len(values):3d} p50 {fmt_s(percentile(values, 50))} "
              f"p99 {fmt_s(percentile(values, 99))} max {fmt_s(max(values))}")
    crashes = [e for e in exits if "harness port race" not in e]
    bad = bool(lost or violations or stuck or failures or crashes)
    if exits:
        print("\nunexpected exits:\n" + "\n".join(exits[:20]))
    if bad:
        print("\nfailures:\n" + "\n".join(failures[:20]))
    if bad or args.keep or args.dir:
        print(f"cluster directory kept: {directory} (process logs in cluster/logs/)")
    else:
        shutil.rmtree(directory, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
