"""memdb.server over real sockets on 127.0.0.1: redis-py (RESP2/RESP3), redis-cli, redis-benchmark, raw bytes.
The executor is tests/unit/_resp_support.LocalExecutor (no replication; writes resolve on a later loop
iteration, in shuffled order where it matters). Where Redis's exact bytes matter, the same input is sent to a real
redis-server and the replies compared."""
from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time

import pytest
import redis

from tests.unit._resp_support import LocalExecutor, ThreadedServer
from memdb.server import ServerLimits


@pytest.fixture
def srv():
    with ThreadedServer(LocalExecutor(shuffle=True, seed=1)) as server:
        yield server


@pytest.fixture(scope="module")
def real_redis():
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    port = _free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
                             "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.skip("redis-server did not start")
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(10)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raw(port: int, data: bytes, wait_s: float = 0.3, expect_eof: bool = False) -> bytes:
    """Send data, read until EOF or until nothing arrives for wait_s."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(data)
        s.settimeout(wait_s if not expect_eof else 5)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out + b"<EOF>"
                out += chunk
        except socket.timeout:
            return out
        except ConnectionResetError:
            # The server closed with our unread input in its socket (Redis does the same): the kernel resets.
            return out + b"<EOF>"


def multibulk(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


# -- clients ------------------------------------------------------------------------------------------------------
def test_redis_py_resp2(srv):
    r = redis.Redis(port=srv.port, protocol=2)
    assert r.ping() is True
    assert r.set("a", 1) is True and r.get("a") == b"1" and r.incr("a") == 2
    assert r.echo("x") == b"x"
    assert r.hset("h", mapping={"f": "v"}) == 1 and r.hgetall("h") == {b"f": b"v"}
    assert r.delete("a", "h") == 2 and r.get("a") is None


def test_redis_py_resp3(srv):
    r = redis.Redis(port=srv.port, protocol=3)
    assert r.ping() is True
    assert r.set("a", "x") is True and r.get("a") == b"x"
    assert r.hset("h", mapping={"f": "v"}) == 1 and r.hgetall("h") == {b"f": b"v"}
    assert r.execute_command("HELLO")[b"proto"] == 3
    assert raw(srv.port, b"HELLO 3\r\nGET nosuch\r\n").endswith(b"_\r\n")


def test_unknown_command_and_arity_texts_match_redis(srv, real_redis):
    for data in (b"FOO a b\r\n", b"*1\r\n$3\r\nFOO\r\n", b"GET\r\n", b"SET k\r\n", b"PING a b\r\n",
                 b"CLIENT FOO\r\n", b"CONFIG GET\r\n", b"SELECT 16\r\n", b"SELECT x\r\n", b"ECHO\r\n"):
        assert raw(srv.port, data) == raw(real_redis, data), data


@pytest.mark.parametrize("data", [
    b"*1\r\n+PING\r\n", b"*1\r\n$-1\r\n", b"*abc\r\n", b"*1\r\n$04\r\nPING\r\n", b"PING \"a\r\n",
    b"ECHO ''x\r\n", b"*" + b"1" * 70000, b"*1\r\n$" + b"1" * 70000, b"PING" + b" " * 70000,
    b"PING\r\n*1\r\n+X\r\nPING\r\n", b"*1\r\n$999999999999\r\n", b"*2\r\n$4\r\nECHO\r\n$536870913\r\n",
    b"*3000000000\r\n", b"$999999999999\r\n", b'ECHO "\\x41\\n" \'x\\\'y\'\r\nECHO "a b"\r\n',
])
def test_protocol_errors_match_redis_bytes_and_close(srv, real_redis, data):
    ours = raw(srv.port, data)
    assert ours == raw(real_redis, data)


def test_oversized_bulk_refused_at_once_without_waiting(srv):
    with socket.create_connection(("127.0.0.1", srv.port)) as s:
        s.sendall(b"*1\r\n$999999999999\r\n")          # only the header: nothing else ever comes
        s.settimeout(5)
        assert s.recv(1000) == b"-ERR Protocol error: invalid bulk length\r\n"
        assert s.recv(1000) == b""                      # closed


def test_malformed_client_does_not_disturb_another(srv):
    good = redis.Redis(port=srv.port, protocol=2)
    good.set("k", "v")
    assert raw(srv.port, b"*1\r\n:1\r\n").endswith(b"<EOF>")
    assert good.get("k") == b"v" and good.ping()


def test_pipeline_1000_in_order(srv):
    r = redis.Redis(port=srv.port, protocol=2)
    p = r.pipeline(transaction=False)
    for i in range(1000):
        p.set(f"k{i}", i)
        p.get(f"k{i}")
        p.incr("counter")
    res = p.execute()
    assert res[0::3] == [True] * 1000
    assert res[1::3] == [str(i).encode() for i in range(1000)]        # read-your-writes
    assert res[2::3] == list(range(1, 1001))                         # applied in order


def test_replies_in_order_when_writes_resolve_out_of_order(srv):
    # One raw pipeline: writes are in flight together (shuffled completion), reads must wait for them.
    parts, expected = [], []
    for i in range(300):
        parts.append(multibulk(b"INCR", b"n"))
        expected.append(b":%d\r\n" % (i + 1))
        if i % 7 == 0:
            parts.append(multibulk(b"GET", b"n"))
            expected.append(b"$%d\r\n%d\r\n" % (len(str(i + 1)), i + 1))
        if i % 11 == 0:
            parts.append(multibulk(b"SET", b"s%d" % i, b"v"))
            expected.append(b"+OK\r\n")
        if i % 13 == 0:
            parts.append(b"PING\r\n")
            expected.append(b"+PONG\r\n")
    want = b"".join(expected)
    with socket.create_connection(("127.0.0.1", srv.port)) as s:
        s.sendall(b"".join(parts))
        s.settimeout(10)
        got = b""
        while len(got) < len(want):
            chunk = s.recv(65536)
            assert chunk
            got += chunk
    assert got == want
    assert srv.executor.writes_submitted >= 300


def test_writes_overlap_but_reads_wait(srv):
    """Several writes of one connection are handed to the executor before the first completes."""
    seen = []
    original = srv.executor.execute

    def spy(session, args):
        result = original(session, args)
        seen.append((args[0], srv.server.clients[session.id]._inflight))
        return result
    srv.executor.execute = spy
    data = multibulk(b"SET", b"a", b"1") * 5 + multibulk(b"GET", b"a")
    assert raw(srv.port, data) == b"+OK\r\n" * 5 + b"$1\r\n1\r\n"
    inflight_at_submit = [n for name, n in seen if name == b"SET"]
    assert max(inflight_at_submit) >= 3                 # group commit possible
    assert seen[-1] == (b"GET", 0)                      # the read ran only after every write completed


def test_inflight_depth_is_bounded():
    with ThreadedServer(LocalExecutor(shuffle=True), limits=ServerLimits(max_inflight=4)) as server:
        depths = []
        original = server.executor.execute

        def spy(session, args):
            depths.append(server.server.clients[session.id]._inflight)
            return original(session, args)
        server.executor.execute = spy
        assert raw(server.port, multibulk(b"INCR", b"x") * 50) == b"".join(b":%d\r\n" % i for i in range(1, 51))
        assert max(depths) <= 4


def test_client_reply_off_skip_on(srv):
    data = (b"CLIENT REPLY OFF\r\nSET a 1\r\nGET a\r\nCLIENT REPLY ON\r\nGET a\r\n"
            b"CLIENT REPLY SKIP\r\nINCR a\r\nGET a\r\n")
    assert raw(srv.port, data) == b"+OK\r\n$1\r\n1\r\n$1\r\n2\r\n"


def test_client_reply_matches_redis(srv, real_redis):
    data = b"CLIENT REPLY SKIP\r\nPING\r\nPING\r\nCLIENT REPLY OFF\r\nPING\r\nCLIENT REPLY ON\r\nCLIENT REPLY FOO\r\n"
    assert raw(srv.port, data) == raw(real_redis, data)


def test_quit_replies_then_closes(srv):
    assert raw(srv.port, b"SET a 1\r\nQUIT\r\nPING\r\n", expect_eof=True) == b"+OK\r\n+OK\r\n<EOF>"


def test_half_closed_client_still_gets_write_replies(srv):
    with socket.create_connection(("127.0.0.1", srv.port)) as s:
        s.sendall(multibulk(b"SET", b"a", b"1") * 3 + b"GET a\r\n")
        s.shutdown(socket.SHUT_WR)
        s.settimeout(5)
        got = b""
        while chunk := s.recv(1000):
            got += chunk
    assert got == b"+OK\r\n" * 3 + b"$1\r\n1\r\n"


def test_disconnect_mid_pipeline_does_not_disturb_others(srv):
    other = redis.Redis(port=srv.port, protocol=2)
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", srv.port))
        payload = multibulk(b"INCR", b"cut") * 200
        s.sendall(payload + payload[:len(payload) // 3][:-5])
        s.close()
        assert other.incr("mine") >= 1
    assert other.ping()
    deadline = time.monotonic() + 5
    while srv.call(lambda: len(srv.server.clients)) > 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert srv.call(lambda: len(srv.server.clients)) == 1
    assert len(srv.executor.closed_sessions) == 20


def test_concurrent_clients(srv):
    errors = []

    def work(n):
        try:
            r = redis.Redis(port=srv.port, protocol=2)
            for i in range(200):
                r.incr("shared")
                assert r.set(f"c{n}", i) and r.get(f"c{n}") == str(i).encode()
        except Exception as exc:          # surfaced below
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert redis.Redis(port=srv.port).get("shared") == b"1600"


# -- connection commands ------------------------------------------------------------------------------------------
def test_select_and_dbs(srv):
    r = redis.Redis(port=srv.port, protocol=2)
    r.set("k", "db0")
    assert raw(srv.port, b"SELECT 3\r\nGET k\r\nSET k db3\r\nGET k\r\nSELECT 0\r\nGET k\r\n") == \
        b"+OK\r\n$-1\r\n+OK\r\n$3\r\ndb3\r\n+OK\r\n$3\r\ndb0\r\n"


def test_hello_and_auth_like_redis(srv, real_redis):
    for data in (b"HELLO 4\r\n", b"HELLO foo\r\n", b"HELLO 2 SETNAME a b\r\n", b'HELLO 2 SETNAME "a b"\r\n',
                 b"HELLO 2 AUTH x\r\n", b"HELLO 3 AUTH bob x\r\n", b"AUTH x\r\n", b"AUTH default x\r\n",
                 b"AUTH a b\r\n", b"RESET\r\n", b"CLIENT SETNAME \"a b\"\r\n", b"CLIENT KILL 1.2.3.4:5\r\n",
                 b"CLIENT KILL ID 999999\r\n", b"CLIENT KILL FOO bar\r\n", b"CLIENT KILL ID x\r\n",
                 b"CLIENT NO-EVICT maybe\r\n", b"CLIENT GETNAME\r\n", b"CLIENT SETNAME x\r\nCLIENT GETNAME\r\n",
                 b"CONFIG SET nosuch 1\r\n", b"CONFIG SET maxclients x\r\n", b"CONFIG SET timeout -1\r\n",
                 b"CONFIG SET save foo\r\n", b"CONFIG SET appendonly maybe\r\n", b"CONFIG FOO\r\n",
                 b"CONFIG GET nosuch\r\n", b"CONFIG SET proto-max-bulk-len 1\r\n",
                 b"CONFIG SET maxclients 10 maxclients 5\r\n", b"CONFIG GET maxmemory-policy\r\n",
                 b"CONFIG SET databases 3\r\n", b"COMMAND FOO\r\n", b"COMMAND INFO nosuch\r\n"):
        assert raw(srv.port, data) == raw(real_redis, data), data


def test_hello_reply(srv):
    r = redis.Redis(port=srv.port, protocol=2)
    hello = r.execute_command("HELLO", "3", "SETNAME", "me")
    assert hello[b"server"] == b"redis" and hello[b"proto"] == 3 and hello[b"role"] == b"master"


def test_client_commands(srv):
    r = redis.Redis(port=srv.port, protocol=2)
    cid = r.client_id()
    assert r.client_setname("worker") and r.client_getname() == "worker"
    listing = r.client_list()
    assert any(c["id"] == str(cid) and c["name"] == "worker" for c in listing)
    assert r.client_info()["id"] == cid
    with socket.create_connection(("127.0.0.1", srv.port)) as victim:
        victim.settimeout(5)
        victim.sendall(b"CLIENT ID\r\n")
        victim_id = int(victim.recv(100)[1:-2])
        assert r.client_kill_filter(_id=victim_id) == 1
        assert victim.recv(100) == b""                  # closed by the kill
    assert raw(srv.port, b"CLIENT KILL SKIPME no TYPE normal\r\nPING\r\n", expect_eof=True).endswith(b"<EOF>")


def test_config_get_set_glob_and_effect(srv):
    r = redis.Redis(port=srv.port, protocol=2)
    assert r.config_get("maxmemory*") == {"maxmemory": "0", "maxmemory-policy": "noeviction"}
    assert r.config_get("hash-max-*-entries") == {"hash-max-listpack-entries": "128",
                                                  "hash-max-ziplist-entries": "128"}
    assert r.config_set("proto-max-bulk-len", "2mb") and r.config_get("proto-max-bulk-len") == \
        {"proto-max-bulk-len": "2097152"}
    assert raw(srv.port, b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$3145728\r\n") == \
        b"-ERR Protocol error: invalid bulk length\r\n<EOF>"
    assert raw(srv.port, multibulk(b"SET", b"ok", b"x" * (1024 * 1024))) == b"+OK\r\n"
    assert r.config_set("notify-keyspace-events", "KEA") and \
        r.config_get("notify-keyspace-events")["notify-keyspace-events"] == "AKE"
    assert r.config_get("save") == {"save": ""} and r.config_get("appendonly") == {"appendonly": "no"}


def test_maxclients(srv):
    r = redis.Redis(port=srv.port, protocol=2)
    r.config_set("maxclients", 2)
    keep = socket.create_connection(("127.0.0.1", srv.port))
    try:
        time.sleep(0.1)
        assert raw(srv.port, b"") == b"-ERR max number of clients reached\r\n<EOF>"
    finally:
        keep.close()


def test_info_sections(srv):
    r = redis.Redis(port=srv.port, protocol=2)
    r.set("a", 1)
    info = r.info()
    assert info["redis_version"].startswith("7.0") and info["redis_mode"] == "standalone"
    assert info["tcp_port"] == srv.port and info["connected_clients"] >= 1
    assert info["total_commands_processed"] >= 2 and "used_memory_human" in info
    assert info["role"] == "master" and info["db0"]["keys"] == 1
    assert "applied_index" in r.info("txlog")
    text = raw(srv.port, b"INFO server clients\r\n")
    assert text.startswith(b"$") and b"\r\n# Server\r\n" in text and b"# Clients\r\n" in text and b"# Memory" not in text
    assert "instantaneous_ops_per_sec" in r.info("stats")
    r.config_resetstat()
    assert r.info("stats")["total_commands_processed"] <= 2


def test_time(srv):
    sec, usec = redis.Redis(port=srv.port, protocol=2).time()
    assert abs(sec - time.time()) < 5 and 0 <= usec < 1_000_000


def test_command_info_matches_redis_shape(srv, real_redis):
    for name in (b"get", b"ping", b"echo", b"hello", b"select", b"set", b"mset"):
        data = b"COMMAND INFO " + name + b"\r\n"
        ours, theirs = raw(srv.port, data), raw(real_redis, data)
        if name in (b"get", b"ping", b"echo", b"hello", b"select"):
            assert ours == theirs, name
        else:
            assert ours.split(b"*", 5)[:4] == theirs.split(b"*", 5)[:4], name   # name, arity, flags
    r = redis.Redis(port=srv.port, protocol=2)
    assert r.command_count() >= 12
    assert [k if isinstance(k, str) else k.decode() for k in r.command_getkeys("MSET", "a", "1", "b", "2")] == ["a", "b"]
    assert b"$10\r\nconfig|get\r\n" in raw(srv.port, b"COMMAND LIST\r\n")
    listed = raw(srv.port, b"COMMAND LIST FILTERBY PATTERN cl*\r\n")          # subcommands too, as in Redis
    assert b"$6\r\nclient\r\n" in listed and b"$9\r\nclient|id\r\n" in listed and b"config" not in listed
    assert raw(srv.port, b"COMMAND DOCS get\r\n").startswith(b"*2\r\n$3\r\nget\r\n*8\r\n$7\r\nsummary")
    assert raw(srv.port, b"HELLO 3\r\nCOMMAND INFO client\r\n").count(b"client|") >= 10
    assert raw(srv.port, b"COMMAND\r\n").startswith(b"*%d\r\n" % r.command_count())


def test_idle_timeout_closes_idle_clients(srv):
    r = redis.Redis(port=srv.port, protocol=2)
    r.config_set("timeout", 1)
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.settimeout(5)
    start = time.monotonic()
    assert s.recv(10) == b""
    assert 0.9 < time.monotonic() - start < 4
    r.config_set("timeout", 0)


# -- real tools ---------------------------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli not installed")
def test_redis_cli(srv):
    def cli(*args, proto=()):
        return subprocess.run(["redis-cli", "-p", str(srv.port), *proto, *args], capture_output=True,
                              text=True, timeout=20).stdout
    assert cli("PING") == "PONG\n"
    assert cli("SET", "greeting", "hello world") == "OK\n"
    assert cli("GET", "greeting") == "hello world\n"
    assert cli("HSET", "h", "a", "1", proto=("-3",)) == "1\n"
    assert cli("HGETALL", "h", proto=("-3",)) == "a 1\n"            # a RESP3 map
    assert "ERR unknown command 'NOPE'" in cli("NOPE")
    piped = subprocess.run(["redis-cli", "-p", str(srv.port)], input="INCR n\nINCR n\nGET n\n",
                           capture_output=True, text=True, timeout=20).stdout
    assert piped == "1\n2\n2\n"


@pytest.mark.skipif(shutil.which("redis-benchmark") is None, reason="redis-benchmark not installed")
def test_redis_benchmark_runs_clean(srv):
    result = subprocess.run(["redis-benchmark", "-p", str(srv.port), "-t", "ping,set,get", "-n", "20000", "-q",
                             "--csv"], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line and not line.startswith('"test"')]
    tests = {line.split(",")[0].strip('"') for line in lines}
    assert {"PING_INLINE", "PING_MBULK", "SET", "GET"} <= tests, result.stdout
    assert "error" not in (result.stdout + result.stderr).lower()
    print(result.stdout)
    r = redis.Redis(port=srv.port, protocol=2)
    assert len(r.get("key:__rand_int__")) == 3
