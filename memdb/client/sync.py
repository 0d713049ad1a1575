"""Client: the synchronous client, for threads. It drives an AsyncClient on a private event-loop thread, so both
share one implementation (routing, retries, exactly-once numbering) and any number of threads can share a Client:
their commands are multiplexed on one Pipeline stream per node."""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, Iterator

try:
    import uvloop
except ImportError:                  # optional: the stdlib loop works, only slower
    uvloop = None

from memdb.client.aio import DEFAULT_TIMEOUT_S, AsyncClient, AsyncPipeline, check_timeout
from memdb.client.commands import Commands, Parse, WithTimeout
from memdb.client.exceptions import WatchError


class _LoopThread:
    """An event loop on a daemon thread; run() submits a coroutine and waits for it."""

    def __init__(self):
        # uvloop: a cross-thread hand-off costs ~70 us instead of ~500 us with the default loop on these machines
        self.loop = uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="memdb-client", daemon=True)
        self._thread.start()

    def run(self, coro) -> Any:
        if threading.current_thread() is self._thread:
            raise RuntimeError("a sync memdb Client cannot be used from its own loop thread")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
        if not self.loop.is_running() and not self.loop.is_closed():
            self.loop.close()


class Client(Commands):
    """The synchronous client: `Client(["127.0.0.1:7050"]).set("k", "v")`.

    Arguments (all but seeds keyword-only): seeds (host:port of data nodes' gRPC ports: a list, or one
    comma-separated string), timeout (seconds per call, default 10; writes are retried within it, never after),
    decode_responses, read_from ("primary" = linearizable, or "replica"), zone (prefer replicas in this zone),
    db, tls / root_certificates / private_key / certificate_chain, client_id (default: random).
    """

    def __init__(self, seeds, *, timeout: float = DEFAULT_TIMEOUT_S, **options: Any):
        self._loop = _LoopThread()
        try:
            self._async = AsyncClient(seeds, timeout=timeout, **options)
        except BaseException:
            self._loop.stop()
            raise

    # -- lifecycle -------------------------------------------------------------------------------------------------
    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if self._loop.loop.is_running():
            self._loop.run(self._async.close())
        self._loop.stop()

    def connect(self, timeout: float | None = None) -> "Client":
        self._loop.run(self._async.connect(timeout))
        return self

    def __getattr__(self, name: str) -> Any:
        # read-only settings and counters of the async core: client_id, timeout, read_from, zone, stats, ...
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._async, name)

    # -- commands --------------------------------------------------------------------------------------------------
    def _command(self, args: list, parse: Parse | None = None, **options: Any) -> Any:
        return self._loop.run(self._async._execute(args, parse, **options))

    def execute(self, *args: Any, timeout: float | None = None) -> Any:
        """Any command; its reply as the natural Python value (map -> dict, set -> set, double -> float,
        null -> None; an error reply raises)."""
        return self._loop.run(self._async.execute(*args, timeout=timeout))

    execute_command = execute

    def with_timeout(self, timeout: float) -> WithTimeout:
        """The command methods with a per-call timeout: `client.with_timeout(0.5).get("k")`."""
        return WithTimeout(self, check_timeout(timeout))

    def script_load(self, script: str | bytes, timeout: float | None = None) -> Any:
        return self._loop.run(self._async.script_load(script, timeout))

    def ping(self, timeout: float | None = None) -> bool:
        return self._loop.run(self._async.ping(timeout))

    def topology(self) -> dict:
        return self._loop.run(self._async.topology())

    def keys(self, pattern: str | bytes = "*", timeout: float | None = None) -> list:
        return self._loop.run(self._async.keys(pattern, timeout))

    def dbsize(self, timeout: float | None = None) -> int:
        return self._loop.run(self._async.dbsize(timeout))

    def flushdb(self, timeout: float | None = None) -> bool:
        return self._loop.run(self._async.flushdb(timeout))

    def flushall(self, timeout: float | None = None) -> bool:
        return self._loop.run(self._async.flushall(timeout))

    def scan_iter(self, match: str | bytes | None = None, count: int | None = None,
                  _type: str | None = None) -> Iterator:
        agen = self._async.scan_iter(match, count, _type)
        try:
            while True:
                try:
                    yield self._loop.run(agen.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            if self._loop.loop.is_running():
                self._loop.run(agen.aclose())

    # -- pipelines and transactions --------------------------------------------------------------------------------
    def pipeline(self, transaction: bool = False) -> "Pipeline":
        return Pipeline(self, AsyncPipeline(self._async, transaction))

    def transaction(self, func: Callable[["Pipeline"], Any], *watches: Any, value_from_callable: bool = False,
                    timeout: float | None = None) -> Any:
        """redis-py's transaction(func, *watches): WATCH, func(pipe) (reads run at once until pipe.multi()),
        MULTI/EXEC; retried from the start when a watched key changed. Raises NotSupported if the server cannot
        keep MULTI state on a gRPC stream."""
        while True:
            pipe = self.pipeline(transaction=True)
            try:
                pipe.watch(*watches, timeout=timeout)
                result = func(pipe)
                exec_result = pipe.execute(timeout=timeout)
                return result if value_from_callable else exec_result
            except WatchError:
                continue
            finally:
                pipe.reset()


class Pipeline(Commands):
    """The sync face of an AsyncPipeline: `with client.pipeline() as pipe: pipe.set(...).incr(...);
    pipe.execute()`."""

    def __init__(self, client: Client, apipe: AsyncPipeline):
        self._client = client
        self._apipe = apipe

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc_info) -> None:
        self.reset()

    def __len__(self) -> int:
        return len(self._apipe)

    def _command(self, args: list, parse: Parse | None = None, **options: Any) -> Any:
        result = self._apipe._command(args, parse, **options)
        if result is self._apipe:
            return self
        return self._client._loop.run(result)       # immediate mode of a watched transaction

    def execute_command(self, *args: Any, **options: Any) -> Any:
        return self._command(list(args), None, **options)

    def execute(self, raise_on_error: bool = True, timeout: float | None = None) -> list:
        return self._client._loop.run(self._apipe.execute(raise_on_error, timeout))

    def watch(self, *names: Any, timeout: float | None = None) -> None:
        self._client._loop.run(self._apipe.watch(*names, timeout=timeout))

    def multi(self) -> None:
        self._apipe.multi()

    def reset(self) -> None:
        if self._client._loop.loop.is_running():
            self._client._loop.run(self._apipe.reset())
