"""The primary endpoint's switching rule (memdb/endpoint.py), with the nodes' INFO answers scripted: connections
to the old primary are cut at once when another primary is confirmed, and only after PATIENCE_POLLS polls when
none is seen (a slow INFO answer must not cut every client off)."""
from __future__ import annotations

import asyncio
import socket
import struct

import pytest
import uvloop

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


# -- asking a node: one kept connection per node --------------------------------------------------------------------
class _Node:
    """A data node's INFO replication on a real socket: a primary in epoch <questions asked so far>, answering
    after `delay_s`, or never while `silent`."""

    def __init__(self) -> None:
        self.connections = 0
        self.questions = 0
        self.delay_s = 0.0
        self.silent = False
        self._writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return "127.0.0.1:%d" % self.server.sockets[0].getsockname()[1]

    def drop_connections(self) -> None:
        """What a restart does to the connections the endpoint holds."""
        for writer in self._writers:
            writer.close()

    def reset_connections(self) -> None:
        """What a node killed with unread bytes in its socket does: RST, not FIN."""
        for writer in self._writers:
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            while await reader.readline():                      # *2
                for _ in range(4):                              # $4 INFO $11 replication
                    await reader.readline()
                self.questions += 1
                epoch = self.questions
                if self.silent:
                    continue
                await asyncio.sleep(self.delay_s)
                body = b"role:master\r\nmemdb_lease_valid:1\r\nmemdb_epoch:%d\r\n" % epoch
                writer.write(b"$%d\r\n%s\r\n" % (len(body), body))
        except (ConnectionError, asyncio.CancelledError):
            pass


def _with_node(test, loop_factory=asyncio.new_event_loop) -> None:
    async def body():
        node = _Node()
        address = await node.start()
        try:
            await test(node, Endpoint([address]), address)
        finally:
            node.drop_connections()
            node.server.close()
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(body())


def test_questions_to_a_node_share_one_connection():
    async def test(node, endpoint, address):
        answers = [await endpoint._ask_role(address) for _ in range(5)]
        assert answers == [(epoch, 1) for epoch in range(1, 6)]
        assert node.connections == 1
    _with_node(test)


def test_a_connection_closed_by_a_restart_is_replaced_within_the_same_question():
    async def test(node, endpoint, address):
        assert await endpoint._ask_role(address) == (1, 1)
        node.drop_connections()
        await asyncio.sleep(0.05)
        assert await endpoint._ask_role(address) == (2, 1)     # answered, not None until the next poll
        assert node.connections == 2
    _with_node(test)


@pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"])
def test_a_connection_reset_by_a_killed_node_is_replaced_within_the_same_question(loop_factory):
    # uvloop (what the endpoint runs on) closes a transport the peer reset and then raises RuntimeError on a
    # write to it, where asyncio's loop drops the write: the question must see a reset connection either way.
    async def test(node, endpoint, address):
        assert await endpoint._ask_role(address) == (1, 1)
        node.reset_connections()
        await asyncio.sleep(0.05)             # the reset reaches the endpoint's side and closes its transport
        assert await endpoint._ask_role(address) == (2, 1)
        assert node.connections == 2
    _with_node(test, loop_factory)


def test_a_silent_node_costs_one_timeout_not_two():
    async def test(node, endpoint, address):
        assert await endpoint._ask_role(address) == (1, 1)
        node.silent = True
        started = asyncio.get_running_loop().time()
        assert await endpoint._ask_role(address) is None
        assert asyncio.get_running_loop().time() - started < 0.9     # one 0.5 s timeout, no second connection
    _with_node(test)


def test_a_cancelled_question_leaves_no_answer_behind_for_the_next():
    async def test(node, endpoint, address):
        node.delay_s = 0.2
        question = asyncio.ensure_future(endpoint._ask_role(address))
        await asyncio.sleep(0.05)
        question.cancel()                     # e.g. a client's connection cut while the endpoint asked for it
        await asyncio.gather(question, return_exceptions=True)
        node.delay_s = 0.0
        await asyncio.sleep(0.3)              # the first question's answer has been sent by now
        assert await endpoint._ask_role(address) == (2, 1)    # the answer to this question, not the first one's
    _with_node(test)


@pytest.mark.parametrize("extra", [["--tls-listen", "127.0.0.1:1"], ["--tls-nodes", "127.0.0.1:2,127.0.0.1:3"],
                                   ["--tls-listen", "127.0.0.1:1", "--tls-nodes", "127.0.0.1:2"]])
def test_a_tls_port_needs_one_tls_address_per_node(extra, capsys):
    from memdb import endpoint as endpoint_module
    with pytest.raises(SystemExit) as exit_info:
        endpoint_module.main(["--listen", "127.0.0.1:0", "--nodes", "127.0.0.1:4,127.0.0.1:5", *extra])
    assert exit_info.value.code == 2 and "one per --nodes address" in capsys.readouterr().err


def test_an_unexpected_error_in_a_poll_is_logged_and_the_next_poll_goes_on(caplog):
    # An error no question expects (session 13: uvloop's RuntimeError on a reset connection) once ended the poller,
    # and with it the whole endpoint process.
    async def body():
        endpoint = Endpoint(["a"], poll_ms=1)
        calls = 0

        async def ask_role(address):
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")
            return (1, 1)
        endpoint._ask_role = ask_role
        poller = asyncio.ensure_future(endpoint.poll())
        try:
            for _ in range(500):
                if endpoint.primary == "a":
                    break
                await asyncio.sleep(0.01)
            assert not poller.done()
            assert endpoint.primary == "a" and calls >= 2
        finally:
            poller.cancel()
    asyncio.run(body())
    assert "asking the data nodes who is primary failed" in caplog.text
