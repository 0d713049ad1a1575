"""The containerised cluster (deploy/): build the image, bring the three zones up with docker-compose, write
through the published primary endpoint, stop the primary's zone (zone a: its txlog node and data-0a, the
initial primary) with `docker stop`, and check that writes go on through a new primary in zone b or c and that no acknowledged write
is lost, on the new primary and on the surviving replica.

Installs Debian's docker.io, docker-compose and mmdebstrap when missing and starts dockerd when none runs
(deploy/ensure-docker.sh), stopping at the end a daemon it started. Where no daemon can run, it is skipped with
the reason. The image is reused when its sources are unchanged (deploy/build-image.sh).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.integration.cluster import wait_for

pytestmark = [pytest.mark.needs_docker, pytest.mark.timeout(900)]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(ROOT, "deploy")
COMPOSE_FILE = os.path.join(DEPLOY, "docker-compose.yml")
DATA_PORTS = {"data-0a": 7010, "data-0b": 7011, "data-0c": 7012}
COUNTER = "docker:counter"


def run(args: list[str], timeout: float = 120, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=check, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def note(timings: dict, phase: str, t0: float) -> float:
    now = time.monotonic()
    timings[phase] = now - t0
    return now


# -- the daemon ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def docker_daemon():
    """Yields the compose command prefix once a daemon answers; stops a daemon this fixture started."""
    if shutil.which("bash") is None:
        pytest.skip("no bash to run deploy/ensure-docker.sh")
    t0 = time.monotonic()
    try:
        proc = run(["bash", os.path.join(DEPLOY, "ensure-docker.sh")], timeout=600, check=False)
    except subprocess.TimeoutExpired:
        pytest.skip("installing or starting Docker took over 10 minutes")
    if proc.returncode != 0:
        reason = f"no Docker daemon can run here: {proc.stderr.strip() or proc.stdout.strip()}"
        print(reason)
        pytest.skip(reason)
    started_pid = None
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if last.startswith("dockerd-started"):
        started_pid = int(last.split()[1])
    compose = ["docker-compose"] if shutil.which("docker-compose") else ["docker", "compose"]
    try:
        yield {"compose": compose, "started": started_pid is not None, "setup_s": time.monotonic() - t0}
    finally:
        if started_pid is not None:
            os.kill(started_pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    os.kill(started_pid, 0)
                except ProcessLookupError:
                    break
                try:   # reap it if it is our child's child adopted by nobody in particular
                    os.waitpid(started_pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                time.sleep(0.2)
            else:
                os.kill(started_pid, signal.SIGKILL)


# -- the workload -------------------------------------------------------------------------------------------------
class Writes:
    """Writer threads through the endpoint: each SET writes a fresh key, each INCR bumps one counter. A reply is
    an acknowledged write; an error or timeout makes it uncertain (it may or may not have been applied)."""

    def __init__(self, port: int, threads: int = 4):
        self.port = port
        self.lock = threading.Lock()
        self.acked: dict[str, str] = {}
        self.uncertain: set[str] = set()
        self.incr_acked = 0
        self.incr_uncertain = 0
        self.errors = 0
        self.ack_times: list[float] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, socket_connect_timeout=2,
                           retry=Retry(NoBackoff(), 0))

    def _run(self, no: int) -> None:
        client, seq = self.client(), 0
        while not self.stop.is_set():
            seq += 1
            key, value = f"docker:{no}:{seq}", f"v{no}:{seq}"
            try:
                client.set(key, value)
                with self.lock:
                    self.acked[key] = value
                    self.ack_times.append(time.monotonic())
            except redis.RedisError:
                with self.lock:
                    self.uncertain.add(key)
                    self.errors += 1
                client = self._reconnect(client)
                continue
            try:
                client.incr(COUNTER)
                with self.lock:
                    self.incr_acked += 1
                    self.ack_times.append(time.monotonic())
            except redis.RedisError:
                with self.lock:
                    self.incr_uncertain += 1
                    self.errors += 1
                client = self._reconnect(client)

    def _reconnect(self, client: redis.Redis) -> redis.Redis:
        try:
            client.close()
        except redis.RedisError:
            pass
        time.sleep(0.05)
        return self.client()

    def first_ack_after(self, t: float) -> float | None:
        with self.lock:
            later = [a for a in self.ack_times if a > t]
        return min(later) - t if later else None

    def __enter__(self) -> "Writes":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(15)

    def problems(self, values: dict[str, str | None], counter: int) -> list[str]:
        """What a node holding `values` (key -> value, None if missing) and `counter` lost or invented."""
        out = [f"{k}: acknowledged {v!r}, holds {values.get(k)!r}" for k, v in self.acked.items()
               if values.get(k) != v]
        if not self.incr_acked <= counter <= self.incr_acked + self.incr_uncertain:
            out.append(f"counter {counter}: acknowledged INCRs {self.incr_acked}, uncertain {self.incr_uncertain}")
        return out


# -- the cluster ------------------------------------------------------------------------------------------------
class Compose:
    def __init__(self, compose: list[str], project: str, port: int):
        self.cmd = [*compose, "-p", project, "-f", COMPOSE_FILE]
        self.env = dict(os.environ, MEMDB_PORT=str(port))
        self.port = port

    def __call__(self, *args: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess:
        return run([*self.cmd, *args], timeout=timeout, check=check, env=self.env)

    def container(self, service: str) -> str:
        return self("ps", "-q", service).stdout.strip()

    def exec_python(self, service: str, code: str, timeout: float = 30) -> str:
        return run(["docker", "exec", self.container(service), "python", "-c", code], timeout=timeout).stdout

    def dump(self, service: str) -> tuple[dict[str, str | None], int]:
        """Every docker:* key and the counter as seen by one data node (from inside its container)."""
        code = (
            "import json\n"
            "from memdb.localcluster import resp_command as r\n"
            f"a = '127.0.0.1:{DATA_PORTS[service]}'\n"
            "keys = [k.decode() for k in r(a, 'KEYS', 'docker:*', timeout_s=10) if k != b'docker:counter']\n"
            "out = {}\n"
            "for i in range(0, len(keys), 500):\n"
            "    chunk = keys[i:i + 500]\n"
            "    out.update(zip(chunk, [v.decode() if v is not None else None "
            "for v in r(a, 'MGET', *chunk, timeout_s=10)]))\n"
            "c = r(a, 'GET', 'docker:counter')\n"
            "print(json.dumps({'keys': out, 'counter': int(c or 0)}))\n")
        raw = json.loads(self.exec_python(service, code))
        return raw["keys"], raw["counter"]

    def logs(self) -> str:
        return self("logs", "--no-color", "--tail", "40", check=False).stdout


def remove_stale_projects(compose: list[str]) -> None:
    """Tear down clusters left by runs of this test that died (project memdbtest<pid>, that pid gone)."""
    out = run(["docker", "ps", "-a", "--filter", "label=com.docker.compose.project",
               "--format", '{{.Label "com.docker.compose.project"}}'], check=False).stdout.split()
    for name in sorted(set(out)):
        if not (name.startswith("memdbtest") and name[9:].isdigit()):
            continue
        try:
            os.kill(int(name[9:]), 0)
            continue
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        Compose(compose, name, 0)("down", "-v", "--remove-orphans", "--timeout", "1", check=False)


def endpoint_primary(port: int) -> str | None:
    """memdb_primary_id of the node the endpoint forwards to, or None while it has none."""
    try:
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=6, socket_connect_timeout=2,
                             retry=Retry(NoBackoff(), 0))
        info = client.info("replication")
        client.close()
        return info.get("memdb_primary_id") if info.get("role") == "master" else None
    except redis.RedisError:
        return None


def test_zone_loss_in_containers(docker_daemon, capsys):
    timings = {"docker daemon ready": docker_daemon["setup_s"]}
    t = time.monotonic()
    build = run(["bash", os.path.join(DEPLOY, "build-image.sh")], timeout=900, check=False,
                env=dict(os.environ, PYTHON=sys.executable))
    assert build.returncode == 0, f"image build failed:\n{build.stdout}\n{build.stderr}"
    t = note(timings, "image (" + ("reused" if "up to date" in build.stdout else "built") + ")", t)

    remove_stale_projects(docker_daemon["compose"])
    port = free_port()
    compose = Compose(docker_daemon["compose"], f"memdbtest{os.getpid()}", port)
    failed = True
    try:
        compose("up", "-d")
        t = note(timings, "compose up -d", t)
        # data-0a claims the shard at once on a fresh log; on a very slow start a replica may claim it first.
        first = wait_for(lambda: endpoint_primary(port), 90, "a primary behind the endpoint", 0.2)
        zone = first[-1]
        t = note(timings, "-> endpoint serves", t)

        with Writes(port) as writes:
            time.sleep(2.0)
            before_stop = len(writes.acked)
            assert before_stop > 20, f"only {before_stop} writes acknowledged before the zone stop"
            stopped = [compose.container(f"txlog-{zone}"), compose.container(first)]
            t_stop = time.monotonic()
            run(["docker", "stop", *stopped], timeout=60)
            timings[f"docker stop zone {zone}"] = time.monotonic() - t_stop
            exits = run(["docker", "inspect", "-f", "{{.State.ExitCode}}", *stopped]).stdout.split()
            others = [n for n in DATA_PORTS if n != first]
            new = wait_for(lambda: (p := endpoint_primary(port)) in others and p, 60, f"a new primary in {others}")
            timings[f"zone {zone} stop -> new primary seen"] = time.monotonic() - t_stop
            acked_at_failover = len(writes.acked)
            wait_for(lambda: len(writes.acked) >= acked_at_failover + 50, 30, "50 writes after the failover")
            time.sleep(1.0)
        took = writes.first_ack_after(t_stop + timings[f"docker stop zone {zone}"])
        assert took is not None, f"no write was acknowledged after zone {zone} stopped"
        timings[f"zone {zone} stopped -> first acknowledged write"] = took
        t = note(timings, "writes (before and after the zone stop)", t)

        # Every acknowledged write is on the new primary (read through the endpoint) ...
        client = writes.client()
        keys = list(writes.acked)
        values = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            values.update(zip(chunk, [v.decode() if v is not None else None for v in client.mget(chunk)]))
        counter = int(client.get(COUNTER) or 0)
        problems = writes.problems(values, counter)
        assert not problems, f"{len(problems)} problem(s) on the new primary {new}:\n" + "\n".join(problems[:20])
        # ... and on the surviving replica once it has caught up.
        [replica] = [n for n in others if n != new]
        deadline = time.monotonic() + 20
        while True:
            r_values, r_counter = compose.dump(replica)
            if r_counter == counter or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        problems = writes.problems(r_values, r_counter)
        assert not problems, f"{len(problems)} problem(s) on the replica {replica}:\n" + "\n".join(problems[:20])
        t = note(timings, "checks", t)
        failed = False
        summary = (f"{len(writes.acked)} acknowledged SETs, {writes.incr_acked} INCRs, {writes.errors} errors; "
                   f"stopped zone {zone} (txlog-{zone} exit {exits[0]}, {first} exit {exits[1]}); new primary {new}")
    finally:
        logs = compose.logs() if failed else ""
        compose("down", "-v", "--remove-orphans", "--timeout", "2", timeout=180, check=False)
        note(timings, "compose down -v", t)
        with capsys.disabled():
            print("\n[docker] " + "; ".join(f"{k}: {v:.1f}s" for k, v in timings.items()))
            if not failed:
                print(f"[docker] {summary}")
            if logs:
                print(logs)

