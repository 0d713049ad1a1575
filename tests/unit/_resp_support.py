"""Test-only pieces for the RESP server tests: an executor without replication, and a server running in a thread.

`LocalExecutor` applies commands straight to a Keyspace through memdb.commands.dispatch. Writes behave like the
real node's: `execute` returns a Future and the write is applied (in submission order, like the log) only when it
"commits" on a later loop iteration; with `shuffle=True` the futures of a batch resolve in a random order and
after random small delays, so the server's reply ordering is exercised.
"""
from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Any

from memdb.commands import dispatch
from memdb.commands.spec import Blocked, CommandError, Context, Flag
from memdb.keyspace import Keyspace
from memdb.server import RespServer, ServerLimits


class LocalExecutor:
    def __init__(self, shuffle: bool = False, seed: int = 0):
        self.keyspace = Keyspace()
        self.shuffle = shuffle
        self.rng = random.Random(seed)
        self._queue: list[tuple[list[bytes], int, asyncio.Future]] = []
        self.writes_submitted = 0
        self.closed_sessions: list[int] = []

    def _ctx(self, db: int, resp: int = 2) -> Context:
        return Context(self.keyspace, self.keyspace.dbs[db], int(time.time() * 1000), self.rng, resp=resp)

    def execute(self, session, args: list[bytes]) -> Any:
        spec = dispatch.lookup(args)
        if Flag.WRITE in spec.flags:
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            if not self._queue:
                loop.call_soon(self._commit)
            self._queue.append((args, session.db, future))
            self.writes_submitted += 1
            return future
        reply = dispatch.execute(self._ctx(session.db, session.resp), args)
        if isinstance(reply, Blocked):
            return reply.timeout_reply
        return reply

    def _commit(self) -> None:
        batch, self._queue = self._queue, []
        results = []
        for args, db, future in batch:               # apply in log order
            try:
                reply = dispatch.execute(self._ctx(db), args)
                results.append((future, reply, None))
            except CommandError as exc:
                results.append((future, None, exc))
        if self.shuffle:
            self.rng.shuffle(results)
        loop = asyncio.get_running_loop()
        for future, reply, exc in results:
            delay = self.rng.random() * 0.002 if self.shuffle else 0
            loop.call_later(delay, _resolve, future, reply, exc)

    def info_sections(self) -> dict[str, list[tuple[str, Any]]]:
        keyspace = [(f"db{db.index}", f"keys={db.size()},expires={len(db.expires)},avg_ttl=0")
                    for db in self.keyspace.dbs if db.size()]
        return {"replication": [("role", "master"), ("connected_slaves", 0)], "keyspace": keyspace,
                "txlog": [("applied_index", self.writes_submitted)]}

    def session_closed(self, session) -> None:
        self.closed_sessions.append(session.id)


def _resolve(future: asyncio.Future, reply: Any, exc: Exception | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(reply)


class ThreadedServer:
    """A RespServer on 127.0.0.1:<free port>, in its own uvloop event loop thread."""

    def __init__(self, executor: Any, limits: ServerLimits | None = None, tls: Any = None):
        import uvloop
        self.executor = executor
        self.loop = uvloop.new_event_loop()
        self.server = RespServer(executor, "127.0.0.1", 0, limits=limits, tls=tls)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> "ThreadedServer":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self

    @property
    def port(self) -> int:
        return self.server.port

    def call(self, fn, *args):
        """Run fn(*args) on the server's loop and return its result (for inspecting server state safely)."""
        async def run():
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
