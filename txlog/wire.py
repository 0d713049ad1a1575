"""The txlog wire: the same protobuf messages as the gRPC API, framed on a plain TCP connection.

Why a second transport: a grpc.aio stream message costs ~140 µs of CPU on each side on these machines (a
ping-pong measured 280 µs per round trip per process), and a Raft entry moves ~7 messages through the leader. The
same round trip over an asyncio Protocol with uvloop costs ~30 µs. gRPC stays the public API (Status, Trim, and
Append/Tail for any client); txlog nodes use the wire between themselves, and data nodes use it for Append and
Tail, when the addresses they are given name a wire port.

Addresses: a txlog node is written `HOST:PORT` (gRPC only) or `HOST:PORT+WIREPORT` (gRPC on PORT, the wire on
WIREPORT of the same host). The whole string is the node's name in peer lists and leader hints.

Framing: a 5-byte header (payload length, big-endian u32; kind, u8), then the payload. The first frame a client
sends fixes what the connection is: a Raft stream (RAFT_BATCH frames, one way), an append stream (APPEND_REQUEST
frames, answered in order by APPEND_RESPONSE) or a tail (one TAIL_REQUEST, then TAIL_RESPONSE frames until an
ERROR frame or the connection ends). ERROR's payload is a gRPC status code byte and a UTF-8 message. A frame
longer than MAX_FRAME_BYTES or of an unknown kind closes the connection; the server keeps running.
"""
from __future__ import annotations

import asyncio
import collections
import enum
import logging
import ssl
import struct
from typing import Callable

log = logging.getLogger("txlog.wire")

HEADER = struct.Struct(">IB")
MAX_FRAME_BYTES = 64 << 20


class Kind(enum.IntEnum):
    RAFT_BATCH = 1
    APPEND_REQUEST = 2
    APPEND_RESPONSE = 3
    TAIL_REQUEST = 4
    TAIL_RESPONSE = 5
    ERROR = 6


_KINDS = frozenset(int(k) for k in Kind)


class WireError(Exception):
    """The peer broke the framing, or sent an ERROR frame (code is a grpc.StatusCode value[0])."""

    def __init__(self, message: str, code: int = 2):    # 2 = UNKNOWN
        super().__init__(message)
        self.code = code


def split_address(address: str) -> tuple[str, str | None]:
    """`HOST:PORT+WIREPORT` -> (`HOST:PORT`, `HOST:WIREPORT`); `HOST:PORT` -> (`HOST:PORT`, None)."""
    grpc_address, plus, wire_port = address.partition("+")
    if not plus:
        return address, None
    host = grpc_address.rpartition(":")[0]
    if not host or not wire_port.isdigit():
        raise ValueError(f"a txlog address is HOST:PORT or HOST:PORT+WIREPORT, got {address!r}")
    return grpc_address, f"{host}:{wire_port}"


def frame(kind: int, payload: bytes) -> bytes:
    return HEADER.pack(len(payload), kind) + payload


def error_frame(code: int, message: str) -> bytes:
    return frame(Kind.ERROR, bytes([code]) + message.encode())


def parse_error(payload: bytes) -> WireError:
    return WireError(payload[1:].decode(errors="replace"), payload[0] if payload else 2)


class FrameConnection(asyncio.Protocol):
    """One end of a wire connection. Incoming frames go to `on_frame(kind, payload)` if given, else to a queue
    that `recv()` reads; `send` writes at once (the transport buffers); `drain()` waits while the peer is slow."""

    # The transport pauses us above this many buffered bytes (a slow tailer, a stuck peer).
    HIGH_WATER = 4 << 20
    MAX_QUEUED_FRAMES = 256
    # A frame at least this large is collected as a list of the chunks that bring it and joined once, instead of
    # growing the buffer chunk by chunk (each growth may copy it all) and then copying the payload out of it.
    LARGE_FRAME_BYTES = 1 << 20

    def __init__(self, on_frame: Callable[[int, bytes], None] | None = None,
                 on_lost: Callable[[Exception | None], None] | None = None):
        self.on_frame = on_frame
        self.on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buffer = bytearray()
        self._large: list[bytes] = []           # payload pieces of a large frame still arriving...
        self._large_kind = 0
        self._large_missing = 0                 # ... and how many of its bytes are still to come
        self._frames: collections.deque[tuple[int, bytes]] = collections.deque()
        self._frame_waiter: asyncio.Future | None = None
        self._lost: Exception | None = None
        self._paused = False
        self._reading_paused = False
        self._drain_waiters: list[asyncio.Future] = []

    # -- asyncio.Protocol --------------------------------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.set_write_buffer_limits(high=self.HIGH_WATER)

    def data_received(self, data: bytes) -> None:
        if self._large_missing:
            data = self._collect_large(data)
            if not data:
                return
        buffer = self._buffer
        buffer += data
        offset, size = 0, len(buffer)
        with memoryview(buffer) as view:      # one copy per payload (a bytearray slice would be a second)
            while size - offset >= 5:
                length, kind = HEADER.unpack_from(buffer, offset)
                if length > MAX_FRAME_BYTES or kind not in _KINDS:
                    self._broken(f"bad frame (kind {kind}, {length} bytes; limit {MAX_FRAME_BYTES})")
                    return
                end = offset + 5 + length
                if end > size:
                    if length >= self.LARGE_FRAME_BYTES:
                        self._large = [bytes(view[offset + 5:])]
                        self._large_kind = kind
                        self._large_missing = end - size
                        offset = size
                    break
                payload = bytes(view[offset + 5:end])
                offset = end
                if self.on_frame is not None:
                    self.on_frame(kind, payload)
                    if self.closed:
                        return
                else:
                    self._frames.append((kind, payload))
        if offset:
            del buffer[:offset]
        if len(self._frames) > self.MAX_QUEUED_FRAMES and not self._reading_paused:
            self._reading_paused = True     # the reader is behind (a replica catching up): let TCP push back
            self.transport.pause_reading()
        if self._frames and self._frame_waiter is not None and not self._frame_waiter.done():
            self._frame_waiter.set_result(None)

    def _collect_large(self, data: bytes) -> bytes:
        """Add `data` to the large frame arriving; once it is whole, deliver it and return what follows it."""
        if len(data) < self._large_missing:
            self._large.append(data)
            self._large_missing -= len(data)
            return b""
        missing, self._large_missing = self._large_missing, 0
        pieces, self._large = self._large, []
        pieces.append(data[:missing] if missing < len(data) else data)
        self._deliver(self._large_kind, b"".join(pieces))
        return b"" if self.closed else data[missing:]

    def _deliver(self, kind: int, payload: bytes) -> None:
        if self.on_frame is not None:
            self.on_frame(kind, payload)
        else:
            self._frames.append((kind, payload))
            if self._frame_waiter is not None and not self._frame_waiter.done():
                self._frame_waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._lost = self._lost or exc or ConnectionResetError("the connection closed")
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()
        if self._frame_waiter is not None and not self._frame_waiter.done():
            self._frame_waiter.set_result(None)
        if self.on_lost is not None:
            self.on_lost(exc)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    # -- use ---------------------------------------------------------------------------------------------------
    def _broken(self, why: str) -> None:
        log.warning("closing a txlog wire connection from %s: %s",
                    self.transport.get_extra_info("peername") if self.transport else "?", why)
        self._lost = WireError(why)
        self.close()

    def send(self, kind: int, payload: bytes) -> None:
        if self.closed:
            raise self._lost or ConnectionResetError("the connection is closed")
        self.transport.write(HEADER.pack(len(payload), kind) + payload)

    def send_raw(self, data: bytes) -> None:
        if self.closed:
            raise self._lost or ConnectionResetError("the connection is closed")
        self.transport.write(data)

    def send_parts(self, parts: list[bytes]) -> None:
        """Write frames given as pieces (a frame's header and payload pieces may be apart: nothing is joined)."""
        if self.closed:
            raise self._lost or ConnectionResetError("the connection is closed")
        if len(parts) == 1:
            self.transport.write(parts[0])
        else:
            self.transport.writelines(parts)

    @property
    def buffered(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport and not self.closed else 0

    async def drain(self) -> None:
        if self.closed:
            raise self._lost or ConnectionResetError("the connection is closed")
        if self._paused:
            waiter = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(waiter)
            await waiter
            if self.closed:
                raise self._lost or ConnectionResetError("the connection is closed")

    async def recv(self) -> tuple[int, bytes]:
        """The next frame; raises the connection's error once it is closed and every frame was read."""
        while not self._frames:
            if self.closed:
                raise self._lost or ConnectionResetError("the connection closed")
            self._frame_waiter = asyncio.get_running_loop().create_future()
            await self._frame_waiter
        if self._reading_paused and len(self._frames) < self.MAX_QUEUED_FRAMES // 4 and not self.closed:
            self._reading_paused = False
            self.transport.resume_reading()
        return self._frames.popleft()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()


async def connect(address: str, timeout_s: float = 1.0, ssl_context: ssl.SSLContext | None = None,
                  **kwargs) -> FrameConnection:
    """A FrameConnection to `address`; over TLS with `ssl_context` (the handshake is part of the timeout)."""
    host, _, port = address.rpartition(":")
    loop = asyncio.get_running_loop()
    _, connection = await asyncio.wait_for(
        loop.create_connection(lambda: FrameConnection(**kwargs), host, int(port), ssl=ssl_context,
                               server_hostname=host if ssl_context is not None else None), timeout_s)
    return connection
