"""The txlog wire's framing and addresses (txlog/wire.py), on a real socket pair of this process."""
import asyncio

import pytest

from txlog import wire


@pytest.mark.parametrize("address,expected", [
    ("127.0.0.1:7001", ("127.0.0.1:7001", None)),
    ("127.0.0.1:7001+7004", ("127.0.0.1:7001", "127.0.0.1:7004")),
    ("txlog-a:7001+7004", ("txlog-a:7001", "txlog-a:7004")),
])
def test_split_address(address, expected):
    assert wire.split_address(address) == expected


@pytest.mark.parametrize("address", ["127.0.0.1:7001+", "127.0.0.1:7001+x", "7001+7004"])
def test_split_address_refuses_malformed(address):
    with pytest.raises(ValueError):
        wire.split_address(address)


class _Pair:
    """A listening FrameConnection (frames to a list) and a client one, over 127.0.0.1."""

    async def __aenter__(self):
        self.received: list[tuple[int, bytes]] = []
        self.server_side: list[wire.FrameConnection] = []

        def factory():
            connection = wire.FrameConnection(lambda kind, payload: self.received.append((kind, payload)))
            self.server_side.append(connection)
            return connection

        self.server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.client = await wire.connect(f"127.0.0.1:{port}")
        return self

    async def __aexit__(self, *exc):
        self.client.close()
        self.server.close()

    async def wait_for(self, n: int) -> None:
        for _ in range(500):
            if len(self.received) >= n or self.server_side and self.server_side[0].closed:
                return
            await asyncio.sleep(0.005)


@pytest.mark.parametrize("large_frame_bytes", [wire.FrameConnection.LARGE_FRAME_BYTES, 100, 1])
def test_frames_arrive_whole_and_in_order_however_they_are_cut(large_frame_bytes, monkeypatch):
    """Also with frames collected as large ones (their chunks joined once): a low threshold sends the same cuts
    through that path, frames ending inside a chunk, at its end, and followed by the start of the next."""
    monkeypatch.setattr(wire.FrameConnection, "LARGE_FRAME_BYTES", large_frame_bytes)

    async def body():
        async with _Pair() as pair:
            payloads = [b"", b"x", bytes(range(256)) * 40, b"y" * 70_000, b"z" * 3, bytes(range(200)) * 100]
            data = b"".join(wire.frame(wire.Kind.APPEND_REQUEST, p) for p in payloads)
            for cut in (1, 3, 5, 4096, 65_536):      # byte by byte, header split, bigger chunks
                pair.received.clear()
                for i in range(0, len(data), cut):
                    pair.client.send_raw(data[i:i + cut])
                    if cut < 5 and i % 997 == 0:
                        await asyncio.sleep(0)       # let some chunks arrive alone
                await pair.wait_for(len(payloads))
                assert pair.received == [(wire.Kind.APPEND_REQUEST, p) for p in payloads], cut
    asyncio.run(body())


@pytest.mark.parametrize("bad", [wire.HEADER.pack(wire.MAX_FRAME_BYTES + 1, wire.Kind.RAFT_BATCH),
                                 wire.HEADER.pack(1, 0) + b"x", wire.HEADER.pack(1, 200) + b"x"])
def test_a_bad_frame_closes_the_connection(bad):
    async def body():
        async with _Pair() as pair:
            pair.client.send_raw(wire.frame(wire.Kind.RAFT_BATCH, b"ok") + bad + wire.frame(wire.Kind.RAFT_BATCH, b"no"))
            await pair.wait_for(2)
            assert pair.received == [(wire.Kind.RAFT_BATCH, b"ok")]
            assert pair.server_side[0].closed
            with pytest.raises((ConnectionError, wire.WireError)):
                await asyncio.wait_for(pair.client.recv(), 5)
    asyncio.run(body())


def test_recv_reads_queued_frames_then_raises_at_close():
    async def body():
        server_side: list[wire.FrameConnection] = []

        def factory():
            connection = wire.FrameConnection()
            server_side.append(connection)
            return connection

        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = await wire.connect(f"127.0.0.1:{port}")
        try:
            for _ in range(100):
                if server_side:
                    break
                await asyncio.sleep(0.01)
            server_side[0].send(wire.Kind.TAIL_RESPONSE, b"a")
            server_side[0].send_raw(wire.error_frame(5, "gone"))
            server_side[0].close()
            assert await asyncio.wait_for(client.recv(), 5) == (wire.Kind.TAIL_RESPONSE, b"a")
            kind, payload = await asyncio.wait_for(client.recv(), 5)
            error = wire.parse_error(payload)
            assert kind == wire.Kind.ERROR and error.code == 5 and str(error) == "gone"
            with pytest.raises(ConnectionError):
                await asyncio.wait_for(client.recv(), 5)
            with pytest.raises(ConnectionError):
                client.send(wire.Kind.TAIL_REQUEST, b"")
        finally:
            client.close()
            server.close()
    asyncio.run(body())
