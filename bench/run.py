"""memdb side by side with redis-server and etcd on this machine (issue "Performance", items 1 and 4).

    .venv/bin/python -m bench.run [--reps 3] [--quick] [--seconds 2.5] [--out bench/results]
    make bench                      # the same, with BENCH_ARGS passed through

Not a test. Starts, on 127.0.0.1 only, and keeps running for the whole run:
  (a) memdb   a three-zone memdb cluster (3 txlog nodes, primary + 2 replicas, endpoint; zone proxies only with
              --zone-proxies); the load
              goes straight to the primary data node's RESP port
  (b) redis+replica+WAIT  redis-server --appendonly yes --appendfsync always + a replica (--replicaof); every
              write is followed by WAIT 1 0
  (c) redis-aof-always    redis-server --appendonly yes --appendfsync always, alone
  (d) redis-nopersist     redis-server --save '' --appendonly no
  (e) etcd    three etcd members (separate data dirs); puts through etcd's gRPC KV.Put (write rows only)

Two load generators, named in every row of the table:
  redis-benchmark  SET/GET/INCR/LPUSH/ZADD (-r 100000) at -c 1, -c 50, -c 50 -P 16, --csv, -n sized to run about
                   --seconds per cell; systems a, c, d
  gen              this file's asyncio + hiredis raw-RESP generator (N connections, P ops pipelined per round trip,
                   time-bound). For (b) one op = "SET k v" + "WAIT 1 0" sent as a pair and counted once; (a) and
                   (c) get the same generator with the plain write (memdb acknowledges only after the quorum log
                   commit and has no WAIT; a lone redis has no replica to WAIT for). For (e) the same generator
                   shape sends etcd KV.Put over gRPC (grpcio, hand-encoded PutRequest, N puts in flight).

Cells are interleaved: for each repetition, for each row, every system in turn (A B C D E, A B C D E, ...).
Per cell: ops/s, p50/p99 latency (from the tool), and CPU seconds per op summed over every process of the
measured system (utime+stime from /proc/<pid>/stat before/after, incl. child processes). Reported: median and
min..max over repetitions, plus memdb/anchor ratios. Results go to <out>/<date>.md and .json and are printed.
Every started process is stopped at the end, errors or not (each runs in its own process group).
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import datetime
import io
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SYSTEMS = {
    "a": "memdb (3 zones)",
    "b": "redis+replica+WAIT",
    "c": "redis-aof-always",
    "d": "redis-nopersist",
    "e": "etcd (3 members)",
}
RB_TESTS = ["SET", "GET", "INCR", "LPUSH", "ZADD"]
RB_LOADS = [("c1", 1, 1), ("c50", 50, 1), ("c50-P16", 50, 16)]
WRITE_TESTS = {"SET", "INCR", "LPUSH", "ZADD"}


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


# -- installing -------------------------------------------------------------------------------------------------
def ensure_deps() -> None:
    need = {"redis-server": "redis-server", "redis-benchmark": "redis-tools", "redis-cli": "redis-tools",
            "etcd": "etcd-server", "etcdctl": "etcd-client"}
    missing = sorted({pkg for cmd, pkg in need.items() if shutil.which(cmd) is None})
    if missing:
        log(f"installing {' '.join(missing)} (apt-get)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)
    import importlib.util
    if not all(importlib.util.find_spec(m) for m in ("hiredis", "grpc")):
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "hiredis", "grpcio"], check=True)


# -- processes and CPU ------------------------------------------------------------------------------------------
def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_ports(n: int, lo: int = 20000, hi: int = 32000) -> list[int]:
    rng = random.Random()
    for _ in range(500):
        base = rng.randrange(lo, hi - n)
        ports = list(range(base, base + n))
        if all(port_free(p) for p in ports):
            return ports
    raise RuntimeError("no free ports")


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for root in pids:
        for p in descendants(root):
            try:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])   # utime, stime (fields 14, 15)
            except (OSError, IndexError, ValueError):
                pass
    return total / CLK_TCK


def spawn(cmd: list[str], logpath: str) -> subprocess.Popen:
    with open(logpath, "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def kill_groups(procs: list[subprocess.Popen], timeout_s: float = 5.0) -> None:
    for p in procs:
        if p.poll() is None:
            for sig in (signal.SIGCONT, signal.SIGTERM):
                try:
                    os.killpg(p.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
    deadline = time.monotonic() + timeout_s
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:   # the whole group, even if the leader already exited
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(2)
        except subprocess.TimeoutExpired:
            pass


def resp(port: int, *args: str, timeout_s: float = 2.0):
    import hiredis
    payload = b"".join([f"*{len(args)}\r\n".encode()] +
                       [b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args])
    with socket.create_connection((HOST, port), timeout=timeout_s) as s:
        s.sendall(payload)
        reader = hiredis.Reader()
        while True:
            reply = reader.gets()
            if reply is not False:
                return reply
            data = s.recv(65536)
            if not data:
                raise ConnectionError("closed")
            reader.feed(data)


async def read_replies(r: asyncio.StreamReader, reader, count: int) -> list:
    """The next `count` RESP replies from `r` (a hiredis.Reader parses; error replies come as ReplyError)."""
    replies = []
    while len(replies) < count:
        reply = reader.gets()
        if reply is False:
            data = await r.read(1 << 16)
            if not data:
                raise ConnectionError("server closed the connection")
            reader.feed(data)
            continue
        replies.append(reply)
    return replies


def wait_for(cond, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except Exception as e:   # noqa: BLE001 - not up yet
            last = e
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready within {timeout_s}s ({last})")


# -- the systems ------------------------------------------------------------------------------------------------
class System:
    key = ""
    port = 0
    procs: list[subprocess.Popen]

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def named_pids(self) -> dict[str, int]:
        names = getattr(self, "names", None) or [f"{self.key}{i}" for i in range(len(self.procs))]
        return {n: p.pid for n, p in zip(names, self.procs) if p.poll() is None}

    def stop(self) -> None:
        kill_groups(self.procs)


class Memdb(System):
    key = "a"

    def __init__(self, root: str, zone_proxies: bool = False):
        self.zone_proxies = zone_proxies
        self.dir = os.path.join(root, "memdb")
        self.procs = []
        self.supervisor = None

    def start(self) -> None:
        from memdb import localcluster as lc
        wanted = list(range(70)) + list(range(100, 110))
        for _ in range(200):
            base = random.randrange(10000, 20000 - 120, 10)
            if all(lc.port_is_free(base + i) for i in wanted):
                break
        # No zone proxies: they are the local cluster's fault injector (every cross-zone byte through one more
        # Python process), not part of memdb; a real deployment (deploy/, or three hosts) has none.
        plan = lc.ClusterPlan.make(self.dir, base, 1, zone_proxies=self.zone_proxies)
        plan.save()
        self.supervisor = lc.Supervisor(plan, detach=True)   # detach: every node in its own process group
        try:
            self.supervisor.start_all()
        finally:
            self.procs = list(self.supervisor.procs.values())
            self.names = list(self.supervisor.procs.keys())
        if not lc.wait_until_serving(plan, 60):
            raise RuntimeError(f"memdb cluster did not start; logs in {plan.path('logs')}")
        for n in plan.by_kind("data"):
            info = lc.parse_info(lc.resp_command(n.address, "INFO", "replication"))
            if info.get("role") == "master":
                self.port, self.primary = n.port, n.name
                break
        log(f"memdb: primary {self.primary} on port {self.port}, {len(self.procs)} processes")


class Redis(System):
    def __init__(self, key: str, root: str):
        self.key = key
        self.root = root
        self.procs = []

    def _server(self, name: str, port: int, extra: list[str]) -> subprocess.Popen:
        d = os.path.join(self.root, name)
        os.makedirs(d, exist_ok=True)
        cmd = ["redis-server", "--bind", HOST, "--port", str(port), "--dir", d, "--daemonize", "no",
               "--protected-mode", "no", "--save", "", *extra]
        p = spawn(cmd, os.path.join(self.root, f"{name}.log"))
        self.procs.append(p)
        self.names = [*getattr(self, "names", []), name]
        wait_for(lambda: resp(port, "PING") == b"PONG", 10, name)
        return p

    def start(self) -> None:
        aof = ["--appendonly", "yes", "--appendfsync", "always"]
        if self.key == "d":
            self.port, = free_ports(1)
            self._server("redis-d", self.port, ["--appendonly", "no"])
        elif self.key == "c":
            self.port, = free_ports(1)
            self._server("redis-c", self.port, aof)
        else:
            self.port, rport = free_ports(2)
            self._server("redis-b", self.port, aof)
            self._server("redis-b-replica", rport, [*aof, "--replicaof", HOST, str(self.port)])
            wait_for(lambda: b"connected_slaves:1" in resp(self.port, "INFO", "replication"), 20, "replica link")
            wait_for(lambda: resp(self.port, "WAIT", "1", "1000") == 1, 20, "WAIT 1")
        log(f"{SYSTEMS[self.key]}: port {self.port}")


class Etcd(System):
    key = "e"

    def __init__(self, root: str):
        self.root = root
        self.procs = []

    def start(self) -> None:
        ports = free_ports(6)
        names = ["m0", "m1", "m2"]
        self.clients = {n: ports[i] for i, n in enumerate(names)}
        peers = {n: ports[3 + i] for i, n in enumerate(names)}
        cluster = ",".join(f"{n}=http://{HOST}:{peers[n]}" for n in names)
        for n in names:
            cmd = ["etcd", "--name", n, "--data-dir", os.path.join(self.root, f"etcd-{n}"),
                   "--listen-client-urls", f"http://{HOST}:{self.clients[n]}",
                   "--advertise-client-urls", f"http://{HOST}:{self.clients[n]}",
                   "--listen-peer-urls", f"http://{HOST}:{peers[n]}",
                   "--initial-advertise-peer-urls", f"http://{HOST}:{peers[n]}",
                   "--initial-cluster", cluster, "--initial-cluster-state", "new",
                   "--initial-cluster-token", "memdb-bench", "--quota-backend-bytes", str(8 << 30),
                   "--log-level", "warn"]
            self.procs.append(spawn(cmd, os.path.join(self.root, f"etcd-{n}.log")))
        self.names = [f"etcd-{n}" for n in names]
        self.endpoints = ",".join(f"{HOST}:{p}" for p in self.clients.values())
        wait_for(self._find_leader, 30, "etcd leader")
        log(f"etcd: leader endpoint {HOST}:{self.port}")

    def _find_leader(self) -> bool:
        out = subprocess.run(["etcdctl", "--endpoints", self.endpoints, "endpoint", "status", "-w", "json"],
                             capture_output=True, text=True, timeout=10, env=dict(os.environ, ETCDCTL_API="3"))
        for st in json.loads(out.stdout or "[]"):
            s = st["Status"]
            if s.get("leader") and s["header"]["member_id"] == s["leader"]:
                self.port = int(st["Endpoint"].rsplit(":", 1)[1])
                return True
        return False


# -- load: redis-benchmark --------------------------------------------------------------------------------------
def redis_benchmark(port: int, test: str, clients: int, pipeline: int, n: int) -> dict:
    cmd = ["redis-benchmark", "-h", HOST, "-p", str(port), "-t", test.lower(), "-n", str(n), "-c", str(clients),
           "-P", str(pipeline), "-r", "100000", "--csv"]
    started = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    rows = [r for r in csv.DictReader(io.StringIO(out.stdout)) if r.get("test")]
    if out.returncode != 0 or not rows:
        raise RuntimeError(f"redis-benchmark failed ({out.returncode}): {out.stderr.strip()[:300]}")
    r = rows[0]
    return {"ops": n, "ops_s": float(r["rps"]), "p50_ms": float(r["p50_latency_ms"]),
            "p99_ms": float(r["p99_latency_ms"]), "elapsed_s": elapsed, "errors": None}


# -- load: the raw-RESP generator and the etcd gRPC generator ---------------------------------------------------
def _encode(*args: bytes) -> bytes:
    return b"".join([b"*%d\r\n" % len(args)] + [b"$%d\r\n%s\r\n" % (len(a), a) for a in args])


def _write_cmd(test: str, i: int) -> bytes:
    k = b"%d" % random.randrange(100000)
    if test == "SET":
        return _encode(b"SET", b"key:" + k, b"xxx")
    if test == "INCR":
        return _encode(b"INCR", b"counter:" + k)
    if test == "LPUSH":
        return _encode(b"LPUSH", b"mylist", b"xxx")
    if test == "ZADD":
        return _encode(b"ZADD", b"myzset", b"0", b"element:" + k)
    raise ValueError(test)


WAIT = _encode(b"WAIT", b"1", b"0")


async def _resp_gen(port: int, test: str, conns: int, pipeline: int, wait: bool, seconds: float) -> dict:
    import hiredis
    lat: list[float] = []
    counts = {"ops": 0, "errors": 0, "first_error": None}
    per_op = 2 if wait else 1
    stop_at = time.monotonic() + seconds

    async def conn() -> None:
        r, w = await asyncio.open_connection(HOST, port)
        reader = hiredis.Reader()
        i = 0
        try:
            while time.monotonic() < stop_at:
                parts = []
                for _ in range(pipeline):
                    parts.append(_write_cmd(test, i))
                    if wait:
                        parts.append(WAIT)
                    i += 1
                t0 = time.perf_counter()
                w.write(b"".join(parts))
                for reply in await read_replies(r, reader, pipeline * per_op):
                    if isinstance(reply, hiredis.ReplyError):
                        counts["errors"] += 1
                        counts["first_error"] = counts["first_error"] or str(reply)
                lat.append(time.perf_counter() - t0)
                counts["ops"] += pipeline
        finally:
            w.close()

    t0 = time.monotonic()
    await asyncio.gather(*(conn() for _ in range(conns)))
    return _summary(counts, lat, time.monotonic() - t0)


def _pb_bytes(field: int, value: bytes) -> bytes:
    n, varint = len(value), b""
    while True:
        b = n & 0x7F
        n >>= 7
        varint += bytes([b | (0x80 if n else 0)])
        if not n:
            break
    return bytes([(field << 3) | 2]) + varint + value


async def _etcd_gen(port: int, in_flight: int, seconds: float) -> dict:
    import grpc
    lat: list[float] = []
    counts = {"ops": 0, "errors": 0, "first_error": None}
    stop_at = time.monotonic() + seconds
    # One HTTP/2 channel per 10 callers (etcd's own benchmark defaults to few connections, many clients).
    channels = [grpc.aio.insecure_channel(f"{HOST}:{port}") for _ in range(max(1, in_flight // 10))]
    puts = [ch.unary_unary("/etcdserverpb.KV/Put") for ch in channels]   # raw bytes in and out

    async def caller(c: int) -> None:
        put = puts[c % len(puts)]
        while time.monotonic() < stop_at:
            req = _pb_bytes(1, b"key:%d" % random.randrange(100000)) + _pb_bytes(2, b"xxx")
            t0 = time.perf_counter()
            try:
                await put(req, timeout=10)
            except grpc.RpcError as e:
                counts["errors"] += 1
                counts["first_error"] = counts["first_error"] or str(e)[:200]
                continue
            lat.append(time.perf_counter() - t0)
            counts["ops"] += 1

    t0 = time.monotonic()
    try:
        await asyncio.gather(*(caller(c) for c in range(in_flight)))
    finally:
        for ch in channels:
            await ch.close()
    return _summary(counts, lat, time.monotonic() - t0)


def _summary(counts: dict, lat: list[float], elapsed: float) -> dict:
    lat.sort()
    return {"ops": counts["ops"], "ops_s": counts["ops"] / elapsed if elapsed else 0.0,
            "p50_ms": lat[len(lat) // 2] * 1000 if lat else None,
            "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else None,
            "elapsed_s": elapsed, "errors": counts["errors"], "first_error": counts["first_error"]}


def run_async(coro):
    try:
        import uvloop
        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


# -- the plan ---------------------------------------------------------------------------------------------------
def build_rows(quick: bool) -> list[dict]:
    rows = []
    for load, c, p in RB_LOADS:
        for test in RB_TESTS:
            rows.append({"gen": "redis-benchmark", "test": test, "load": load, "c": c, "P": p,
                         "systems": ["a", "c", "d"]})
    gen_loads = [("c1", 1, 1), ("c50", 50, 1), ("c50-P16", 50, 16)]
    for load, c, p in gen_loads:
        for test in (["SET"] if load != "c50" else ["SET", "INCR", "LPUSH", "ZADD"]):
            systems = ["a", "b", "c"] + (["e"] if test == "SET" and p == 1 else [])
            rows.append({"gen": "gen", "test": test, "load": load, "c": c, "P": p, "systems": systems})
    return rows


def row_id(row: dict) -> str:
    return f"{row['gen']} {row['test']} {row['load']}"


def measure(system: System, row: dict, seconds: float, rate_guess: dict, idle: dict) -> dict:
    key = (system.key, row_id(row))
    named = system.named_pids()
    pids = list(named.values())
    per_before = {n: cpu_seconds([p]) for n, p in named.items()}
    if row["gen"] == "redis-benchmark":
        rate = rate_guess.get(key)
        if rate is None:   # a short probe (doubles as warm-up) sizes -n for ~`seconds`
            probe_n = {1: 300, 50: 3000}[row["c"]] * row["P"]
            rate = redis_benchmark(system.port, row["test"], row["c"], row["P"], probe_n)["ops_s"]
        n = int(min(max(rate * seconds, 100 * row["P"]), 5_000_000))
        before, t0 = cpu_seconds(pids), time.monotonic()
        res = redis_benchmark(system.port, row["test"], row["c"], row["P"], n)
        after = cpu_seconds(pids)
        rate_guess[key] = res["ops_s"]
    else:
        before, t0 = cpu_seconds(pids), time.monotonic()
        if system.key == "e":
            res = run_async(_etcd_gen(system.port, row["c"], seconds))
            res["gen_detail"] = f"grpc KV.Put, {row['c']} in flight"
        else:
            wait = system.key == "b"
            res = run_async(_resp_gen(system.port, row["test"], row["c"], row["P"], wait, seconds))
            res["gen_detail"] = ("pair " if wait else "") + row["test"] + (" + WAIT 1 0" if wait else "")
        after = cpu_seconds(pids)
    wall = time.monotonic() - t0
    res["cpu_s"] = after - before
    res["cpu_s_by_process"] = {n: round(cpu_seconds([p]) - per_before[n], 3) for n, p in named.items()}
    res["cpu_s_per_op"] = res["cpu_s"] / res["ops"] if res["ops"] else None
    # The same, less what the system burns when idle (heartbeats, lease renewals) over the cell's wall time.
    net = max(0.0, res["cpu_s"] - idle.get(system.key, 0.0) * wall)
    res["cpu_s_per_op_net"] = net / res["ops"] if res["ops"] else None
    return res


# -- reporting --------------------------------------------------------------------------------------------------
def med_range(vals: list[float]) -> tuple[float | None, float | None, float | None]:
    vals = [v for v in vals if v is not None]
    if not vals:
        return None, None, None
    return statistics.median(vals), min(vals), max(vals)


def fmt_ops(vals: list[float]) -> str:
    m, lo, hi = med_range(vals)
    if m is None:
        return "n/a"
    return f"{m:,.0f}" if len(vals) == 1 else f"{m:,.0f} [{lo:,.0f}..{hi:,.0f}]"


def fmt(v, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def ratio_anchor(row: dict) -> list[str]:
    if row["gen"] == "gen":
        return ["b", "e"] if "e" in row["systems"] else ["b"]
    return ["d"] if row["test"] not in WRITE_TESTS else ["c", "d"]


def report(meta: dict, rows: list[dict], results: dict) -> str:
    out = [f"# memdb benchmark — {meta['date']}", ""]
    out.append(f"- machine: {meta['machine']}")
    out.append(f"- load average at start: {meta['loadavg_start']}, at end: {meta.get('loadavg_end')}")
    out.append(f"- repetitions: {meta['reps']} (interleaved A B C D E per row), ~{meta['seconds']} s per cell"
               f"{' (--quick)' if meta['quick'] else ''}")
    out.append(f"- versions: {meta['versions']}")
    out.append(f"- idle CPU of each system over 2 s before the run (s/s): {meta.get('idle_cpu')}")
    if meta.get("error"):
        out.append(f"- **run stopped early: {meta['error']}**")
    out.append("- all systems run at the same time on 127.0.0.1 and share the CPUs with the load generator; "
               "memdb load goes to the primary data node's RESP port")
    out.append("- gen = bench/run.py's asyncio+hiredis generator (for (b) one op = SET + WAIT 1 0 pipelined as a "
               "pair; memdb has no WAIT: its acknowledgement already waits for the quorum log commit); for etcd "
               "it sends gRPC KV.Put via grpcio")
    out.append("")
    out.append("- CPU s/op: all of the system's processes, utime+stime per op; 'net' subtracts the idle rate above")
    out.append("")
    out.append("| generator | load | system | ops/s median [min..max] | p50 ms | p99 ms | CPU s/op | CPU s/op net "
               "| errors |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        for s in row["systems"]:
            cells = results.get((row_id(row), s), [])
            if not cells:
                out.append(f"| {row['gen']} | {row['test']} {row['load']} | {SYSTEMS[s]} | failed | | | | | |")
                continue
            ok = [c for c in cells if "error" not in c]
            p50 = med_range([c.get("p50_ms") for c in ok])[0]
            p99 = med_range([c.get("p99_ms") for c in ok])[0]
            cpu = med_range([c.get("cpu_s_per_op") for c in ok])[0]
            cpu_net = med_range([c.get("cpu_s_per_op_net") for c in ok])[0]
            errs = [c.get("errors") for c in ok if c.get("errors") is not None]
            failed = len(cells) - len(ok)
            err_txt = (str(sum(errs)) if errs else "") + (f" ({failed} cell(s) failed)" if failed else "")
            out.append(f"| {row['gen']} | {row['test']} {row['load']} | {SYSTEMS[s]} | "
                       f"{fmt_ops([c['ops_s'] for c in ok])} | {fmt(p50, '.3f')} | {fmt(p99, '.3f')} | "
                       f"{fmt(cpu, '.2e')} | {fmt(cpu_net, '.2e')} | {err_txt} |")
    out += ["", "## memdb / anchor (median ops/s ratio; CPU s/op ratio)", "",
            "| generator | load | anchor | throughput ratio | CPU/op ratio |", "|---|---|---|---|---|"]
    for row in rows:
        a = [c for c in results.get((row_id(row), "a"), []) if "error" not in c]
        for anc in ratio_anchor(row):
            b = [c for c in results.get((row_id(row), anc), []) if "error" not in c]
            if not a or not b:
                continue
            ra = med_range([c["ops_s"] for c in a])[0] / max(1e-9, med_range([c["ops_s"] for c in b])[0])
            ca, cb = med_range([c["cpu_s_per_op"] for c in a])[0], med_range([c["cpu_s_per_op"] for c in b])[0]
            cr = f"{ca / cb:.1f}x" if ca and cb else "n/a"
            out.append(f"| {row['gen']} | {row['test']} {row['load']} | {SYSTEMS[anc]} | {ra:.3f} | {cr} |")
    # Where memdb's CPU goes: per process, µs of CPU per op (median over repetitions).
    procs: list[str] = []
    lines = []
    for row in rows:
        a = [c for c in results.get((row_id(row), "a"), []) if "error" not in c and c.get("ops")]
        if not a:
            continue
        if not procs:
            procs = list(a[0]["cpu_s_by_process"])
        vals = [med_range([c["cpu_s_by_process"].get(n, 0) / c["ops"] * 1e6 for c in a])[0] for n in procs]
        lines.append(f"| {row['gen']} {row['test']} {row['load']} | " + " | ".join(f"{v:.0f}" for v in vals) + " |")
    if lines:
        out += ["", "## memdb CPU µs per op, by process", "", "| row | " + " | ".join(procs) + " |",
                "|---|" + "---|" * len(procs), *lines]
    return "\n".join(out) + "\n"


# -- main -------------------------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="1 repetition, ~1.5 s per cell")
    ap.add_argument("--seconds", type=float, default=None, help="target seconds per cell (default 2.5)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--only", default="", help="comma-separated subset of systems, e.g. a,d")
    ap.add_argument("--zone-proxies", action="store_true",
                    help="run memdb with the local cluster's zone proxies (fault injectors) in the path")
    args = ap.parse_args()
    reps = 1 if args.quick else args.reps
    seconds = args.seconds or (1.5 if args.quick else 2.5)

    ensure_deps()
    root = tempfile.mkdtemp(prefix="memdb-bench-")
    meta = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} vCPU, {platform.platform()}, "
                       f"python {platform.python_version()}",
            "loadavg_start": tuple(round(x, 2) for x in os.getloadavg()), "reps": reps, "seconds": seconds,
            "quick": args.quick, "versions": {}}
    for tool, cmd in {"redis": ["redis-server", "--version"], "etcd": ["etcd", "--version"]}.items():
        try:
            meta["versions"][tool] = subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            meta["versions"][tool] = "?"
    log(f"load average {meta['loadavg_start']}; data in {root}")
    only = set(args.only.split(",")) if args.only else set(SYSTEMS)
    systems: dict[str, System] = {}
    results: dict = {}
    rows = build_rows(args.quick)
    for row in rows:
        row["systems"] = [s for s in row["systems"] if s in only]
    rows = [r for r in rows if r["systems"]]

    def stop_everything(*_):
        for s in systems.values():
            s.stop()

    def on_term(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        for key, ctor in [("a", lambda: Memdb(root, args.zone_proxies)), ("b", lambda: Redis("b", root)),
                          ("c", lambda: Redis("c", root)), ("d", lambda: Redis("d", root)),
                          ("e", lambda: Etcd(root))]:
            if key in only:
                systems[key] = ctor()
                systems[key].start()
        idle0 = {k: cpu_seconds(s.pids()) for k, s in systems.items()}
        time.sleep(2)
        idle = {k: (cpu_seconds(s.pids()) - idle0[k]) / 2 for k, s in systems.items()}
        meta["idle_cpu"] = {SYSTEMS[k]: round(v, 3) for k, v in idle.items()}
        rate_guess: dict = {}
        total = sum(len(r["systems"]) for r in rows) * reps
        done = 0
        for rep in range(reps):
            for row in rows:
                for s in row["systems"]:
                    done += 1
                    try:
                        res = measure(systems[s], row, seconds, rate_guess, idle)
                    except Exception as e:   # noqa: BLE001 - a failed cell is reported, the run goes on
                        res = {"error": f"{type(e).__name__}: {e}"[:300]}
                    res["rep"] = rep
                    results.setdefault((row_id(row), s), []).append(res)
                    shown = (f"{res['ops_s']:,.0f} ops/s p50 {fmt(res['p50_ms'], '.3f')} ms "
                             f"cpu/op {fmt(res['cpu_s_per_op'], '.2e')}" if "error" not in res else res["error"])
                    log(f"[{done}/{total}] rep {rep + 1} {row_id(row):28s} {SYSTEMS[s]:20s} {shown}")
                    dead = sum(p.poll() is not None for p in systems[s].procs)
                    if dead:
                        log(f"  warning: {dead} process(es) of {SYSTEMS[s]} exited")
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        meta["error"] = "interrupted"
    except Exception as e:   # noqa: BLE001 - e.g. a system that did not start: report what there is
        log(f"error: {type(e).__name__}: {e}")
        meta["error"] = f"{type(e).__name__}: {e}"[:500]
    finally:
        stop_everything()
        meta["loadavg_end"] = tuple(round(x, 2) for x in os.getloadavg())
    md = report(meta, rows, results)
    print(md)
    os.makedirs(args.out, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d-%H%M")
    with open(os.path.join(args.out, f"{stamp}.md"), "w") as f:
        f.write(md)
    with open(os.path.join(args.out, f"{stamp}.json"), "w") as f:
        json.dump({"meta": meta, "systems": SYSTEMS,
                   "rows": [{**r, "id": row_id(r), "results": {s: results.get((row_id(r), s), [])
                                                              for s in r["systems"]}} for r in rows]},
                  f, indent=1)
    log(f"wrote {args.out}/{stamp}.md and .json")
    shutil.rmtree(root, ignore_errors=True)
    return 1 if meta.get("error") else 0


if __name__ == "__main__":
    sys.exit(main())
