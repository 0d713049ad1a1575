"""How memdb's small asyncio programs (endpoint, zone proxy) run: uvloop when present, Ctrl-C ends quietly."""
import asyncio
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
