"""The txlog over mutual TLS (txlog/tls.py; `memdb cluster up --txlog-tls-dir`): data nodes append and tail, and
txlog nodes replicate to each other, over TLS on gRPC and on the txlog wire, through the zone proxies. Failover of
the primary and of the txlog leader loses no acknowledged write; a client without the cluster's certificate, or
that does not trust it, is refused; `memdb cluster status` reads the txlog nodes over TLS."""
import asyncio
import os
import ssl
import time

import grpc
import pytest

from memdb import localcluster as lc
from tests.integration.cluster import RunningCluster
from tests.integration.test_failover import check_everywhere
from tests.integration.tls import make_pki
from tests.integration.workload import Workload
from txlog import wire
from txlog.client import LogClient, LogUnavailable
from txlog.generated import txlog_pb2 as pb
from txlog.generated import txlog_pb2_grpc as pb_grpc
from txlog.tls import TxlogTLS


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture
def cluster(tmp_path, pki):
    c = RunningCluster(str(tmp_path / "cluster"), txlog_tls_dir=pki).start()
    try:
        yield c
    finally:
        c.stop()


def test_writes_and_failovers_over_a_tls_txlog(cluster):
    rows = {r["name"]: r for r in lc.node_status(cluster.plan)["nodes"]}       # `memdb cluster status`, over TLS
    assert sorted(rows[t.name]["role"] for t in cluster.plan.by_kind("txlog")) == ["follower", "follower", "leader"]
    endpoint = cluster.plan.base_port
    with Workload(lambda: endpoint) as w:
        time.sleep(1.0)
        leader = cluster.txlog_leader()
        cluster.kill(leader)
        time.sleep(1.5)
        cluster.restart(leader)
        old = cluster.primary()
        cluster.kill(old)
        new = cluster.primary(exclude=old, timeout_s=10)
        time.sleep(1.5)
    assert new != old
    assert w.ledger.acked_writes > 50
    check_everywhere(cluster, w)


def _refused(addresses: list[str], tls: TxlogTLS | None) -> None:
    """An append from this client never reaches the log: it fails as unavailable, not as a fenced epoch."""
    async def attempt() -> None:
        client = LogClient(addresses, "shard0", append_timeout_s=2.0, tls=tls)
        try:
            with pytest.raises(LogUnavailable):
                await client.append(b"stranger", epoch=0)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await client.status(wire.split_address(addresses[0])[0], timeout_s=2.0)
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        finally:
            await client.close()
    asyncio.run(attempt())


def test_clients_without_the_clusters_certificate_are_refused(cluster, pki):
    addresses = cluster.plan.txlog_addresses()
    _refused(addresses, None)                                                      # plaintext
    _refused(addresses, TxlogTLS(os.path.join(pki, "other-ca.crt"),                # trusts another CA
                                 os.path.join(pki, "node.crt"), os.path.join(pki, "node.key")))

    async def without_a_certificate() -> None:
        context = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))   # trusts the node, shows nothing
        connection = await wire.connect(wire.split_address(addresses[0])[1], timeout_s=2.0, ssl_context=context)
        connection.send(wire.Kind.TAIL_REQUEST, pb.TailRequest(log="shard0", from_index=1).SerializeToString())
        with pytest.raises((ConnectionError, ssl.SSLError, wire.WireError)):
            await asyncio.wait_for(connection.recv(), 2.0)
        connection.close()
        channel = grpc.aio.secure_channel(wire.split_address(addresses[0])[0],
                                          grpc.ssl_channel_credentials(open(os.path.join(pki, "ca.crt"), "rb").read()))
        with pytest.raises(grpc.aio.AioRpcError):
            await pb_grpc.TxLogStub(channel).Status(pb.StatusRequest(), timeout=2.0)
        await channel.close()
    asyncio.run(without_a_certificate())
    # and the cluster's own certificate works
    async def member() -> None:
        client = LogClient(addresses, "shard0", tls=TxlogTLS.from_dir(pki))
        try:
            assert (await client.status(wire.split_address(addresses[0])[0])).logs
        finally:
            await client.close()
    asyncio.run(member())
