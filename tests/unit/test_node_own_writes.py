"""The data node's own writes (lease renewals, expired keys): nobody awaits them, so when the log refuses one or a
new primary fences it, the failure must not surface as asyncio's "Future exception was never retrieved"."""
from __future__ import annotations

import asyncio
import gc
import logging

from memdb.generated import entries_pb2 as epb
from memdb.node import DataNode, NodeConfig, Role
from txlog.client import StaleEpoch
from txlog.generated import txlog_pb2 as tpb


class _FencingLog:
    """Stands in for txlog.client.LogClient: append() hands every item one future, which the test fails."""
    acked_sent_at = 0.0

    def __init__(self) -> None:
        self.appended: asyncio.Future | None = None

    def append(self, item: bytes, epoch: int) -> asyncio.Future:
        self.appended = self.appended or asyncio.get_running_loop().create_future()
        return self.appended


def _fenced_own_write(submit) -> list[str]:
    """Submit a lease renewal through `submit`, have the log fence it, and return what asyncio logged."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("asyncio").addHandler(handler)

    async def body():
        node = DataNode(NodeConfig(node_id="n", txlog=("127.0.0.1:1",)))
        node.log = _FencingLog()
        node.role, node.epoch = Role.PRIMARY, 1
        submit(node, epb.Entry(lease_renew=epb.LeaseRenew()))
        assert node.log.appended is not None, "the renewal went to the log"
        node.log.appended.set_exception(StaleEpoch(tpb.AppendResponse(status=tpb.STALE_EPOCH, current_epoch=2)))
        for _ in range(3):
            await asyncio.sleep(0)
        assert node.role is Role.REPLICA, "the node learned it was deposed"
    try:
        asyncio.run(body())
        gc.collect()
    finally:
        logging.getLogger("asyncio").removeHandler(handler)
    return [r.getMessage() for r in records]


def test_a_fenced_lease_renewal_is_not_an_unhandled_error():
    assert not any("never retrieved" in m for m in _fenced_own_write(lambda node, e: node._submit_own(e)))


def test_the_same_write_submitted_for_a_client_would_be_one():
    """The check above can fail: a future nobody retrieves is reported."""
    assert any("never retrieved" in m for m in _fenced_own_write(lambda node, e: node._submit(e)))
