"""Differential testing against a real redis-server: run the same command on Redis and on memdb, compare replies.

API (import from tests.differential.harness)
--------------------------------------------
oracle_server() -> RedisServer | None
    The session-wide redis-server (started on first use on a free port with `--save '' --appendonly no`, stopped
    at interpreter exit), or None if /usr/bin/redis-server is absent (tests then skip).
RedisServer.connect(resp=2) -> RespConnection
    A raw-socket RESP client; `.call(*args) -> Reply` (one command in flight, so it also knows the reply's raw
    bytes). resp=3 sends HELLO 3 first.
MemdbInstance(seed=0, resp=2)
    An in-process memdb: a fresh Keyspace + dispatch.execute, ctx.now_ms = current unix ms, ctx.rng seeded.
    `.call(*args) -> Reply` encodes the handler's reply (or CommandError) with memdb.protocol.encode for the
    instance's RESP version and parses it back with hiredis, so RESP encoding is covered too. SELECT n is
    handled here (it belongs to the connection layer).
Reply(kind, value)
    kind is the first byte of the raw reply ('+', '-', ':', '$', '*', '%', ...); value is hiredis's parse with
    errors turned into `Error(message)` (comparable), recursively.
Differential(redis_conn, memdb)
    `.check(*args, normalize=None) -> (redis_value, memdb_value)`: runs args on both, applies normalize (a
    function of the parsed value, e.g. `sort_list`) to both values and asserts kind and value are equal.
    `.check_clock_ms(*args)`: the same for a ms reply read off the clock (PTTL after PXAT): positive integers may
    differ by the time the call took (the most the two clock reads can be apart), -1/-2 and errors stay exact.
    `.flush()`: FLUSHALL on Redis, a fresh keyspace for memdb, both back to db 0.
Normalisers: `sort_list`, `sort_pairs` (flat k v k v arrays, e.g. HGETALL in RESP2), `unordered` (recursively
sorts a list, for SMEMBERS-like replies), `as_set`, `approx_ms(tolerance_ms)` for PTTL-like integers,
`length_only`.

Rules of thumb for writing differential tests: keep key/field/value pools small (2-5) so that commands collide;
never sleep; use TTLs of seconds (not ms) so that clock skew between the two never shows; replies chosen at
random (RANDOMKEY, HRANDFIELD, SPOP) can only be compared through invariants (membership, lengths).
"""
from __future__ import annotations

import atexit
import dataclasses
import math
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any, Callable

import hiredis

from memdb.commands import dispatch
from memdb.commands.spec import CommandError, Context
from memdb.keyspace import Keyspace

REDIS_SERVER = "/usr/bin/redis-server"


@dataclasses.dataclass(frozen=True)
class Error:
    message: str


@dataclasses.dataclass(frozen=True)
class Reply:
    kind: str
    value: Any


def _convert(value: Any) -> Any:
    if isinstance(value, hiredis.ReplyError):
        return Error(str(value))
    if isinstance(value, list):
        return [_convert(v) for v in value]
    if isinstance(value, dict):
        return {_convert_key(k): _convert(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return frozenset(_convert_key(v) for v in value)
    return value


def _convert_key(value: Any) -> Any:
    value = _convert(value)
    return tuple(value) if isinstance(value, list) else value


def parse_one(data: bytes) -> Reply:
    reader = hiredis.Reader()
    reader.feed(data)
    value = reader.gets()
    assert value is not False, f"incomplete reply {data!r}"
    return Reply(chr(data[0]), _convert(value))


def encode_command(args: tuple[Any, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int):
            arg = b"%d" % arg
        elif isinstance(arg, float):
            arg = repr(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


def _as_bytes(args: tuple[Any, ...]) -> list[bytes]:
    out = []
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int):
            arg = b"%d" % arg
        elif isinstance(arg, float):
            arg = repr(arg).encode()
        out.append(bytes(arg))
    return out


class RespConnection:
    def __init__(self, port: int, resp: int = 2, timeout_s: float = 10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.resp = resp
        if resp == 3:
            reply = self.call("HELLO", "3")
            assert reply.kind == "%", reply

    def call(self, *args: Any) -> Reply:
        self.sock.sendall(encode_command(args))
        reader = hiredis.Reader()
        raw = bytearray()
        while True:
            value = reader.gets()
            if value is not False:
                return Reply(chr(raw[0]), _convert(value))
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("redis-server closed the connection")
            raw += chunk
            reader.feed(chunk)

    def close(self) -> None:
        self.sock.close()


class RedisServer:
    def __init__(self, path: str = REDIS_SERVER):
        self.path = path
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.dir = tempfile.mkdtemp(prefix="memdb-oracle-")

    def start(self) -> None:
        for _ in range(5):
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            proc = subprocess.Popen(
                [self.path, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", self.dir, "--daemonize", "no", "--loglevel", "warning"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    conn = RespConnection(port)
                    if conn.call("PING").value == b"PONG":
                        conn.close()
                        self.port, self.proc = port, proc
                        return
                except OSError:
                    time.sleep(0.02)
            proc.kill()
            proc.wait()
        raise RuntimeError("could not start redis-server")

    def connect(self, resp: int = 2) -> RespConnection:
        return RespConnection(self.port, resp)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


_ORACLE: RedisServer | None = None


def oracle_server() -> RedisServer | None:
    global _ORACLE
    if _ORACLE is None:
        if not os.path.exists(REDIS_SERVER):
            return None
        _ORACLE = RedisServer()
        _ORACLE.start()
        atexit.register(_ORACLE.stop)
    return _ORACLE


class MemdbInstance:
    def __init__(self, seed: int = 0, resp: int = 2, keyspace: Keyspace | None = None):
        self.keyspace = keyspace or Keyspace()
        self.rng = random.Random(seed)
        self.resp = resp
        self.db_index = 0

    def raw_call(self, *args: Any) -> Any:
        """The handler's reply value (or the CommandError raised), not encoded."""
        argv = _as_bytes(args)
        if argv and argv[0].lower() == b"select" and len(argv) == 2:
            return self._select(argv[1])
        ctx = Context(keyspace=self.keyspace, db=self.keyspace.dbs[self.db_index],
                      now_ms=int(time.time() * 1000), rng=self.rng, resp=self.resp)
        try:
            return dispatch.execute(ctx, argv)
        except CommandError as exc:
            return exc

    def _select(self, arg: bytes) -> Any:
        from memdb.commands import messages
        from memdb.commands.args import parse_int32
        from memdb.commands.spec import OK
        try:
            index = parse_int32(arg)
        except CommandError as exc:
            return exc
        if not 0 <= index < len(self.keyspace.dbs):
            return CommandError(messages.DB_INDEX_OUT_OF_RANGE)
        self.db_index = index
        return OK

    def call(self, *args: Any) -> Reply:
        from memdb.protocol import encode
        return parse_one(encode(self.raw_call(*args), self.resp))


# -- normalisers ------------------------------------------------------------------------------------------------------
def _sort_key(value: Any) -> tuple:
    return (type(value).__name__, repr(value))


def sort_list(value: Any) -> Any:
    return sorted(value, key=_sort_key) if isinstance(value, list) else value


def sort_pairs(value: Any) -> Any:
    if isinstance(value, list) and len(value) % 2 == 0:
        return sorted(zip(value[::2], value[1::2]), key=_sort_key)
    return value


def unordered(value: Any) -> Any:
    if isinstance(value, list):
        return sorted((unordered(v) for v in value), key=_sort_key)
    return value


def as_set(value: Any) -> Any:
    return frozenset(map(_sort_key, value)) if isinstance(value, list) else value


def length_only(value: Any) -> Any:
    return len(value) if isinstance(value, list) else value


class Approx:
    """An integer equal to any other within tolerance (both sides of a comparison get wrapped)."""

    def __init__(self, value: int, tolerance: int):
        self.value, self.tolerance = value, tolerance

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Approx) and abs(self.value - other.value) <= self.tolerance

    def __repr__(self) -> str:
        return f"~{self.value}"


def approx_ms(tolerance_ms: int) -> Callable[[Any], Any]:
    """For PTTL-like replies: positive integers compare equal within tolerance (-1/-2 stay exact)."""
    def normalize(value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return Approx(value, tolerance_ms)
        return value
    return normalize


class Differential:
    def __init__(self, redis_conn: RespConnection, memdb: MemdbInstance):
        self.redis = redis_conn
        self.memdb = memdb

    def flush(self) -> None:
        self.redis.call("SELECT", 0)
        self.redis.call("FLUSHALL")
        self.memdb.keyspace = Keyspace()
        self.memdb.db_index = 0

    def both(self, *args: Any) -> tuple[Reply, Reply]:
        return self.redis.call(*args), self.memdb.call(*args)

    def check(self, *args: Any, normalize: Callable[[Any], Any] | None = None) -> tuple[Any, Any]:
        expected, actual = self.both(*args)
        return self._compare(args, expected, actual, normalize)

    def check_clock_ms(self, *args: Any) -> tuple[Any, Any]:
        """For a reply in ms read off the clock (PTTL of a key with a PXAT/EXAT deadline): the two servers read
        the clock at most the duration of this call apart, so positive integers may differ by that (rounded up,
        + 1 ms for each side truncating to whole ms); usually 1-2 ms, more only when the machine stalled."""
        started_s = time.monotonic()
        expected, actual = self.both(*args)
        tolerance_ms = math.ceil((time.monotonic() - started_s) * 1000) + 1
        return self._compare(args, expected, actual, approx_ms(tolerance_ms))

    def _compare(self, args: tuple[Any, ...], expected: Reply, actual: Reply,
                 normalize: Callable[[Any], Any] | None) -> tuple[Any, Any]:
        ev, av = expected.value, actual.value
        if normalize is not None and not isinstance(ev, Error) and not isinstance(av, Error):
            ev, av = normalize(ev), normalize(av)
        assert (expected.kind, ev) == (actual.kind, av), \
            f"{args!r}: redis replied {expected!r}, memdb replied {actual!r}"
        return expected.value, actual.value
