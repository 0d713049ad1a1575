"""The primary endpoint: one stable port that always reaches the current primary of a shard, as ElastiCache and
MemoryDB give non-cluster clients. It asks the shard's data nodes who is primary (INFO replication) every
poll_ms; new connections go to the primary; when another node is confirmed primary (or none is seen for
PATIENCE_POLLS polls), connections to the old one are closed so clients reconnect (through here) to the new one.
The questions go over one kept connection per node (a new TCP connection every poll cost each node ~4 ms of CPU a
second, idle); a kept connection found closed is replaced at once, in the same question.
With `--tls-listen` a second port forwards to the primary's RESP-over-TLS port (`--tls-nodes`, in --nodes' order):
the bytes pass through, so TLS runs end to end between the client and the data node, whose certificate must name
the host clients dial.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

from memdb import runtime
from memdb.localcluster import parse_info

log = logging.getLogger("memdb.endpoint")


class Endpoint:
    PATIENCE_POLLS = 3

    def __init__(self, nodes: list[str], poll_ms: int = 100, tls_nodes: list[str] | None = None):
        self.nodes = nodes
        self.tls_address = dict(zip(nodes, tls_nodes or []))     # a node's RESP address -> its TLS one
        self.poll_ms = poll_ms
        self.primary: str | None = None
        self._connections: dict[str, set[asyncio.Task]] = {}
        self._probes: dict[str, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
        self._probe_locks: dict[str, asyncio.Lock] = {}

    async def _ask_role(self, address: str) -> tuple[int, int] | None:
        """(epoch, 1) for a primary that holds its lease, None for anything else."""
        async with self._probe_locks.setdefault(address, asyncio.Lock()):     # one question at a time per node
            while True:
                probe = self._probes.get(address)
                kept = probe is not None
                if not kept:
                    host, _, port = address.rpartition(":")
                    try:
                        probe = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 0.5)
                    except (OSError, TimeoutError):
                        return None
                    self._probes[address] = probe
                try:
                    return await self._ask(*probe)
                except asyncio.CancelledError:
                    self._drop_probe(address)   # a reply may still be on its way: never read another from it
                    raise
                except (TimeoutError, ValueError):
                    # Slow or strange (TimeoutError before OSError, whose subclass it is): a new connection would
                    # only make the poll wait twice as long for a stopped node.
                    self._drop_probe(address)
                    return None
                except (OSError, asyncio.IncompleteReadError):
                    self._drop_probe(address)
                    if not kept:
                        return None
                    # The kept connection was closed or reset (the node restarted): ask again on a new one.

    @staticmethod
    async def _ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[int, int] | None:
        runtime.write(writer, b"*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n")
        header = await asyncio.wait_for(reader.readline(), 0.5)
        if not header:
            raise ConnectionResetError("the node closed the connection")
        if not header.startswith(b"$"):
            raise ValueError(f"unexpected reply to INFO: {header[:80]!r}")
        body = await asyncio.wait_for(reader.readexactly(int(header[1:]) + 2), 0.5)
        info = parse_info(body)
        if info.get("role") != "master" or info.get("memdb_lease_valid") != "1":
            return None
        return int(info.get("memdb_epoch", 0)), 1

    def _drop_probe(self, address: str) -> None:
        probe = self._probes.pop(address, None)
        if probe is not None:
            probe[1].close()

    async def poll(self) -> None:
        unseen = 0      # polls in a row that found no primary
        while True:
            try:
                roles = await asyncio.gather(*(self._ask_role(a) for a in self.nodes))
            except Exception:     # noqa: BLE001 - a bug in one question must not end every client's routing
                log.exception("asking the data nodes who is primary failed; asking again")
                for address in self.nodes:
                    self._drop_probe(address)
                await asyncio.sleep(self.poll_ms / 1000)
                continue
            # A deposed primary cut off from the log may still call itself master until it learns better, but
            # its lease has lapsed; among primaries with a lease, the newest epoch wins. With none (a failover
            # in progress) there is no primary: new connections wait, they never go to a replica.
            primaries = sorted((r, a) for a, r in zip(self.nodes, roles) if r is not None)
            new = primaries[-1][1] if primaries else None
            if new != self.primary:
                log.warning("primary is now %s (was %s)", new, self.primary)
                self.primary = new
            unseen = 0 if new is not None else unseen + 1
            if new is not None or unseen >= self.PATIENCE_POLLS:
                # Another primary confirmed: cut the old one's clients at once. No primary at all: only after a
                # few polls, so one slow INFO answer or a lease renewal late under load does not cut everyone
                # off (meanwhile a node without its lease holds its clients' commands, then says TRYAGAIN).
                for target in [t for t in self._connections if t != new]:
                    for task in self._connections.pop(target):
                        task.cancel()
            await asyncio.sleep(self.poll_ms / 1000)

    async def _leased_primary(self) -> str | None:
        """The current primary, confirmed on this connection's behalf: a process restarted on the old primary's
        port is a replica replaying the log, and must never be mistaken for it (stale reads)."""
        for _ in range(50):     # wait up to ~5 s for a primary (during a failover)
            target = self.primary
            if target is not None and await self._ask_role(target) is not None:
                return target
            await asyncio.sleep(0.1)
        return None

    async def handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                     tls: bool = False) -> None:
        try:
            await self._forward(client_reader, client_writer, tls)
        except asyncio.CancelledError:
            pass    # the primary changed: this client reconnects and reaches the new one
        finally:
            client_writer.close()

    async def handle_tls(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        await self.handle(client_reader, client_writer, tls=True)

    async def _forward(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                       tls: bool) -> None:
        target = await self._leased_primary()
        if target is None:
            if not tls:      # a TLS client cannot read a plaintext error: it sees the connection closed
                client_writer.write(b"-CLUSTERDOWN no primary is available right now\r\n")
                await client_writer.drain()
            return
        host, _, port = (self.tls_address[target] if tls else target).rpartition(":")
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            return
        task = asyncio.current_task()
        self._connections.setdefault(target, set()).add(task)
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(_pipe(client_reader, upstream_writer))
                tg.create_task(_pipe(upstream_reader, client_writer))
        except* (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._connections.get(target, set()).discard(task)
            upstream_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        runtime.write(writer, data)
        await writer.drain()
    writer.close()
    raise ConnectionResetError("peer closed")   # ends the other direction too


async def serve(listen: str, nodes: list[str], tls_listen: str = "", tls_nodes: list[str] | None = None) -> None:
    endpoint = Endpoint(nodes, tls_nodes=tls_nodes)
    host, _, port = listen.rpartition(":")
    server = await asyncio.start_server(endpoint.handle, host, int(port))
    async with contextlib.AsyncExitStack() as servers:
        await servers.enter_async_context(server)
        if tls_listen:
            tls_host, _, tls_port = tls_listen.rpartition(":")
            await servers.enter_async_context(await asyncio.start_server(endpoint.handle_tls, tls_host, int(tls_port)))
        async with asyncio.TaskGroup() as tg:
            tg.create_task(endpoint.poll())
            await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="memdb-endpoint")
    parser.add_argument("--listen", required=True)
    parser.add_argument("--nodes", required=True, help="comma-separated data node addresses of the shard")
    parser.add_argument("--tls-listen", default="", help="HOST:PORT forwarding to the primary's RESP-over-TLS port")
    parser.add_argument("--tls-nodes", default="", help="comma-separated RESP-over-TLS addresses of the data nodes, "
                                                        "in --nodes' order")
    args = parser.parse_args(argv)
    nodes = [n for n in args.nodes.split(",") if n]
    tls_nodes = [n for n in args.tls_nodes.split(",") if n]
    if bool(args.tls_listen) != bool(tls_nodes) or (tls_nodes and len(tls_nodes) != len(nodes)):
        parser.error("--tls-listen needs --tls-nodes, one per --nodes address")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s endpoint %(message)s")
    runtime.run(serve(args.listen, nodes, args.tls_listen, tls_nodes))


if __name__ == "__main__":
    main()
