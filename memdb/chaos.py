"""`memdb chaos ...`: break a local cluster's zones and heal them (the zone simulator's controls).

Process faults act on the pids in DIR/pids.json (kill = SIGKILL, pause = SIGSTOP, restart = start again from the
plan). Network faults are written to DIR/faults.json, which every zone proxy (memdb/zonenet.py) re-reads at once:
  {"partitions": [["a", "b"], ...], "latency_ms": 2.0, "jitter_ms": 0.5, "paused": ["data-0a"]}
"""
from __future__ import annotations

import json
import os
import signal

from memdb import localcluster as lc


class ChaosError(Exception):
    pass


def read_faults(plan: lc.ClusterPlan) -> dict:
    try:
        with open(plan.path("faults.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def write_faults(plan: lc.ClusterPlan, faults: dict) -> None:
    if not plan.zone_proxies and (faults.get("partitions") or faults.get("latency_ms")):
        raise ChaosError("this cluster runs without zone proxies (--no-zone-proxies): no network faults possible")
    tmp = plan.path("faults.json.tmp")
    with open(tmp, "w") as f:
        json.dump(faults, f)
    os.replace(tmp, plan.path("faults.json"))     # atomic: a proxy never reads half a file


def targets(plan: lc.ClusterPlan, what: str) -> list[lc.NodePlan]:
    """NODE or zone-X (every txlog and data node of zone X; the zone's network proxy is not a node)."""
    if what.startswith("zone-"):
        zone = what[5:]
        if zone not in lc.ZONES:
            raise ChaosError(f"unknown zone {zone!r} (zones: {', '.join(lc.ZONES)})")
        return [n for n in plan.nodes if n.zone == zone and n.kind in ("txlog", "data")]
    names = [n.name for n in plan.nodes if n.kind in ("txlog", "data")]
    if what not in names:
        raise ChaosError(f"unknown node {what!r} (nodes: {', '.join(names)}, or zone-a/b/c)")
    return [plan.node(what)]


def _signal(plan: lc.ClusterPlan, nodes: list[lc.NodePlan], sig: int) -> list[str]:
    pids = lc.read_pids(plan)
    done = []
    for n in nodes:
        pid = pids.get(n.name)
        if pid and lc.pid_alive(pid):
            os.kill(pid, sig)
            done.append(n.name)
    return done


def kill(plan: lc.ClusterPlan, what: str) -> list[str]:
    return _signal(plan, targets(plan, what), signal.SIGKILL)


def pause(plan: lc.ClusterPlan, what: str) -> list[str]:
    nodes = targets(plan, what)
    done = _signal(plan, nodes, signal.SIGSTOP)
    faults = read_faults(plan)
    faults["paused"] = sorted(set(faults.get("paused", [])) | set(done))
    write_faults(plan, faults)
    return done


def restart(plan: lc.ClusterPlan, what: str) -> list[str]:
    """Start again every target that is not running (a paused one is resumed instead)."""
    pids = lc.read_pids(plan)
    faults = read_faults(plan)
    started = []
    for n in targets(plan, what):
        pid = pids.get(n.name)
        if pid and lc.pid_alive(pid):
            if n.name in faults.get("paused", []):
                os.kill(pid, signal.SIGCONT)
                started.append(n.name)
            continue
        supervisor = lc.Supervisor(plan, detach=True)
        supervisor.start(n)
        pids[n.name] = supervisor.procs[n.name].pid
        started.append(n.name)
    faults["paused"] = [p for p in faults.get("paused", []) if p not in started]
    write_faults(plan, faults)
    with open(plan.path("pids.json"), "w") as f:
        json.dump(pids, f)
    return started


def partition(plan: lc.ClusterPlan, zone: str, other: str | None) -> list[list[str]]:
    zone = zone.removeprefix("zone-")
    others = [other.removeprefix("zone-")] if other else [z for z in lc.ZONES if z != zone]
    for z in [zone, *others]:
        if z not in lc.ZONES:
            raise ChaosError(f"unknown zone {z!r} (zones: {', '.join(lc.ZONES)})")
    if zone in others:
        raise ChaosError("a zone cannot be partitioned from itself")
    faults = read_faults(plan)
    pairs = {tuple(sorted(p)) for p in faults.get("partitions", [])}
    pairs |= {tuple(sorted((zone, o))) for o in others}
    faults["partitions"] = [list(p) for p in sorted(pairs)]
    write_faults(plan, faults)
    return faults["partitions"]


def parse_ms(text: str) -> float:
    text = text.strip().lower()
    for suffix, factor in (("ms", 1.0), ("us", 0.001), ("s", 1000.0)):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def latency(plan: lc.ClusterPlan, rtt: str, jitter: str | None) -> dict:
    faults = read_faults(plan)
    faults["latency_ms"] = parse_ms(rtt)
    faults["jitter_ms"] = parse_ms(jitter) if jitter else 0.0
    if faults["latency_ms"] < 0 or faults["jitter_ms"] < 0:
        raise ChaosError("latency and jitter must not be negative")
    write_faults(plan, faults)
    return faults


def heal(plan: lc.ClusterPlan) -> dict:
    """Remove partitions and latency, resume paused nodes (killed nodes stay down: `restart` them)."""
    faults = read_faults(plan)
    resumed = []
    pids = lc.read_pids(plan)
    for name in faults.get("paused", []):
        pid = pids.get(name)
        if pid and lc.pid_alive(pid):
            os.kill(pid, signal.SIGCONT)
            resumed.append(name)
    write_faults(plan, {})
    return {"resumed": resumed}


def describe(faults: dict) -> str:
    parts = []
    for a, b in faults.get("partitions", []):
        parts.append(f"partition {a}<->{b}")
    if faults.get("latency_ms"):
        parts.append(f"latency {faults['latency_ms']}ms rtt" +
                     (f" +-{faults['jitter_ms']}ms" if faults.get("jitter_ms") else ""))
    for p in faults.get("paused", []):
        parts.append(f"paused {p}")
    return ", ".join(parts) or "none"
