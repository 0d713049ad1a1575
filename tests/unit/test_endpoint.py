"""The primary endpoint's switching rule (memdb/endpoint.py), with the nodes' INFO answers scripted: connections
to the old primary are cut at once when another primary is confirmed, and only after PATIENCE_POLLS polls when
none is seen (a slow INFO answer must not cut every client off)."""
from __future__ import annotations

import asyncio

from memdb.endpoint import Endpoint


def _run_polls(answers: list[dict[str, tuple[int, int] | None]]) -> list[tuple[str | None, bool]]:
    """Poll once per scripted round; after each, (endpoint.primary, is the client connected to node a cut?)."""
    async def body():
        endpoint = Endpoint(["a", "b"], poll_ms=1)
        rounds = iter(answers)
        current: dict = {}
        observed = []
        polled = asyncio.Event()

        async def ask_role(address):
            if address == "a":
                current.clear()
                current.update(next(rounds))
            return current.get(address)

        endpoint._ask_role = ask_role
        client = asyncio.ensure_future(asyncio.sleep(60))
        endpoint._connections["a"] = {client}
        original_sleep = asyncio.sleep

        async def after_poll(seconds):
            await original_sleep(0)      # let a cancellation land
            observed.append((endpoint.primary, client.cancelled()))
            if len(observed) == len(answers):
                polled.set()
                await original_sleep(3600)

        poller = asyncio.ensure_future(endpoint.poll())
        try:
            asyncio.sleep = after_poll
            await asyncio.wait_for(polled.wait(), 5)
        finally:
            asyncio.sleep = original_sleep
            poller.cancel()
            client.cancel()
        return observed
    return asyncio.run(body())


def test_a_moment_without_a_primary_keeps_the_clients():
    a_primary = {"a": (1, 1)}
    nobody: dict = {}
    seen = _run_polls([a_primary, nobody, nobody, a_primary])
    assert seen == [("a", False), (None, False), (None, False), ("a", False)]


def test_no_primary_for_patience_polls_cuts_the_clients():
    nobody: dict = {}
    seen = _run_polls([{"a": (1, 1)}] + [nobody] * Endpoint.PATIENCE_POLLS)
    assert [cut for _, cut in seen] == [False] * Endpoint.PATIENCE_POLLS + [True]


def test_another_primary_cuts_the_old_ones_clients_at_once():
    seen = _run_polls([{"a": (1, 1)}, {"b": (2, 1)}])
    assert seen == [("a", False), ("b", True)]


def test_the_newest_epoch_wins_when_two_nodes_say_primary():
    seen = _run_polls([{"a": (1, 1)}, {"a": (1, 1), "b": (2, 1)}])
    assert seen == [("a", False), ("b", True)]
