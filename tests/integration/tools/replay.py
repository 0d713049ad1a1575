"""Replay a shard's committed log into an empty keyspace in this (fresh) process and print a canonical dump.

Usage: python -m tests.integration.tools.replay TXLOG_ADDRESSES SHARD UPTO_INDEX
It uses the data node's own apply path (DataNode._apply_record), without a server and without claiming anything.
"""
import asyncio
import json
import sys

from memdb.node import DataNode, NodeConfig
from tests.integration.tools.canonical import dump_keyspace


async def replay(addresses: list[str], shard: str, upto: int) -> dict:
    node = DataNode(NodeConfig(node_id="replayer", txlog=tuple(addresses), shard=shard, failover=False))
    async for entry in node.log.tail(1):
        node.keyspace.current_index = entry.index
        node._apply_record(entry.record)
        if entry.index >= upto:
            break
    await node.close()
    return dump_keyspace(node.keyspace, now_ms=None)


if __name__ == "__main__":
    addresses, shard, upto = sys.argv[1].split(","), sys.argv[2], int(sys.argv[3])
    print(json.dumps(asyncio.run(replay(addresses, shard, upto)), sort_keys=True))
