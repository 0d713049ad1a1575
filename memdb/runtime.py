"""How memdb's small asyncio programs (endpoint, zone proxy) run: uvloop when present, Ctrl-C ends quietly, and
writes to a connection the peer reset fail the same way on either loop; the cyclic garbage collector's settings
for a long-running data node; and a done callback for futures nobody awaits."""
import asyncio
import gc
from typing import Coroutine


def run(main: Coroutine) -> None:
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(main)
    except KeyboardInterrupt:
        pass


def write(writer: asyncio.StreamWriter, data: bytes) -> None:
    """writer.write, raising ConnectionResetError if the transport is already closed: uvloop closes a transport
    the peer reset (a killed process) and raises RuntimeError on the next write, where asyncio's own loop drops
    the bytes; the callers handle a reset connection, not a RuntimeError (the endpoint's poller died of one)."""
    if writer.is_closing():
        raise ConnectionResetError("the connection was closed or reset")
    writer.write(data)


# Allocations (minus deallocations) between young-generation collections; CPython's default is 700.
GC_YOUNG_THRESHOLD = 20_000


def tune_gc() -> None:
    """For a data node, once started: a write allocates a dozen short-lived containers (futures, tuples, protobuf
    messages) that reference counting frees, yet each one counts towards the next collection, so at the default
    threshold a primary ran ~80 young collections a second at 0.3 ms each and an old-generation one (20 ms, every
    object ever made) every 1.5 s. Startup objects (modules, the command table) are frozen out of every later
    collection, and young collections run ~30x less often; cyclic garbage still goes, a little later."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def retrieve_exception(future: asyncio.Future) -> None:
    """Retrieve a finished future's exception so asyncio does not log it as never retrieved (a done callback for
    a future whose failure nobody is waiting to hear about)."""
    if not future.cancelled():
        future.exception()
