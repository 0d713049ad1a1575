"""A real memdb cluster for tests: the same plan and supervisor `memdb cluster up` uses, in a temp dir."""
from __future__ import annotations

import os
import random
import signal
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from memdb import localcluster as lc


class RunningCluster:
    def __init__(self, directory: str, shards: int = 1, grpc_tls_dir: str = "",
                 snapshot_every: int = lc.SNAPSHOT_EVERY_ENTRIES, txlog_tls_dir: str = ""):
        base = self._free_base_port()
        self.plan = lc.ClusterPlan.make(directory, base, shards, grpc_tls_dir, snapshot_every=snapshot_every,
                                        txlog_tls_dir=txlog_tls_dir)
        self.plan.save()
        self.supervisor = lc.Supervisor(self.plan, detach=False)

    @staticmethod
    def _free_base_port() -> int:
        # base (endpoint), base+1..3 (txlog), base+4..6 (txlog wire), base+10.. (data nodes), base+100..111 (zone
        # proxy routes, gRPC and wire), base+120.. (RESP over TLS of the endpoint and the data
        # nodes, with TLS)
        # Below the kernel's ephemeral range (32768+), so outgoing connections never take a planned port.
        wanted = list(range(70)) + list(range(100, 112)) + list(range(120, 130))  # base+50.. gRPC ports of data nodes
        rng = random.Random()
        for _ in range(200):
            base = rng.randrange(10000, 32000 - 120, 10)
            if all(lc.port_is_free(base + i) for i in wanted):
                return base
        raise RuntimeError("no free port window")

    def start(self, timeout_s: float = 30.0) -> "RunningCluster":
        self.supervisor.start_all()
        if not lc.wait_until_serving(self.plan, timeout_s):
            self.stop()
            raise RuntimeError(f"cluster did not start; logs in {self.plan.path('logs')}")
        return self

    def stop(self) -> None:
        for p in self.supervisor.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
        self.supervisor.stop_all(timeout_s=3)
        # Processes started by `memdb chaos restart` (another process) are only in pids.json: stop them too,
        # making sure the pid is still one of this cluster's (its command line names the cluster directory).
        ours = {p.pid for p in self.supervisor.procs.values()}
        for pid in lc.read_pids(self.plan).values():
            if pid in ours:
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if self.plan.directory.encode() not in f.read():
                        continue
                os.kill(pid, signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError):
                pass

    def node(self, name: str) -> lc.NodePlan:
        return next(n for n in self.plan.nodes if n.name == name)

    def data_nodes(self, shard: str = "shard0") -> list[lc.NodePlan]:
        return [n for n in self.plan.by_kind("data") if n.shard == shard]

    def client(self, name_or_port, **kwargs) -> redis.Redis:
        port = name_or_port if isinstance(name_or_port, int) else self.node(name_or_port).port
        # No silent retries: a retried INCR could apply twice and hide a lost or doubled write.
        kwargs.setdefault("retry", Retry(NoBackoff(), 0))
        kwargs.setdefault("socket_timeout", 10)
        return redis.Redis(host=lc.HOST, port=port, **kwargs)

    def role(self, name: str) -> str | None:
        try:
            info = lc.parse_info(lc.resp_command(self.node(name).address, "INFO", "replication"))
        except (OSError, ConnectionError):
            return None
        return info.get("role")

    def primary(self, shard: str = "shard0", timeout_s: float = 10.0, exclude: str | None = None) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for n in self.data_nodes(shard):
                if n.name != exclude and self.supervisor.procs[n.name].poll() is None and self.role(n.name) == "master":
                    return n.name
            time.sleep(0.05)
        raise TimeoutError(f"no primary for {shard} within {timeout_s}s")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        p = self.supervisor.procs[name]
        if p.poll() is None:
            p.send_signal(sig)
            if sig == signal.SIGKILL:
                p.wait(10)

    def restart(self, name: str) -> None:
        self.supervisor.start(self.node(name))

    def txlog_leader(self) -> str:
        import asyncio
        from tests.integration.procs import wait_for_leader
        address = asyncio.run(wait_for_leader(self.plan.txlog_addresses(), "shard0", tls=self.plan.txlog_tls))
        return next(n.name for n in self.plan.by_kind("txlog") if n.txlog_address == address)

    def txlog_terms(self, log_name: str = "shard0") -> dict[str, int]:
        """Each txlog node's Raft term for the log (an election anywhere raises them)."""
        import asyncio
        from txlog.client import LogClient

        async def ask() -> dict[str, int]:
            client = LogClient(self.plan.txlog_addresses(), log_name, tls=self.plan.txlog_tls)
            try:
                terms = {}
                for n in self.plan.by_kind("txlog"):
                    status = await client.status(n.txlog_address, timeout_s=2)
                    terms[n.name] = next(s.term for s in status.logs if s.log == log_name)
                return terms
            finally:
                await client.close()
        return asyncio.run(ask())


def wait_for(predicate, timeout_s: float, what: str, step_s: float = 0.1):
    """Poll until predicate() is truthy and return its value; fail the test after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step_s)
    raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
