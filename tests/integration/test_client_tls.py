"""The gRPC API and RESP over TLS, end to end: data nodes started with --grpc-tls-cert/--grpc-tls-key and
--tls-port/--tls-cert-file/--tls-key-file (via `memdb cluster up --grpc-tls-dir`'s plan), certificates from a
throwaway CA made in the test. A client that trusts the CA works (primary and replica reads, pipelines, redis-py on
the TLS port); a plaintext client and a client that trusts another CA fail at once with a ConnectionError that
says why; with client-ca.crt in the directory the nodes require client certificates."""
import os
import shutil
import time

import grpc
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from memdb.client import Client, ConnectionError
from memdb.generated import memdb_pb2 as pb
from memdb.generated import memdb_pb2_grpc as pb_grpc
from tests.integration.cluster import RunningCluster
from tests.integration.tls import make_pki, read

FAIL_FAST_S = 3.0            # a misconfigured client must fail well before its 10 s timeout


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


def seeds_of(cluster):
    return [f"127.0.0.1:{n.grpc_port}" for n in cluster.data_nodes()]


def assert_fails_fast(match: str, seeds, **options) -> None:
    started = time.monotonic()
    with Client(seeds, timeout=10, **options) as db:
        with pytest.raises(ConnectionError, match=match):
            db.get("k")
    assert time.monotonic() - started < FAIL_FAST_S


def test_tls_client_works_and_misconfigured_clients_fail_clearly(tmp_path, pki):
    cluster = RunningCluster(str(tmp_path / "cluster"), grpc_tls_dir=pki).start()
    try:
        seeds = seeds_of(cluster)
        with Client(seeds, root_certificates=read(pki, "ca.crt")) as db:
            assert db.set("tls-key", "v") is True and db.get("tls-key") == b"v"
            with db.pipeline() as pipe:
                assert pipe.incr("tls-n").incr("tls-n").get("tls-n").execute() == [1, 2, b"2"]
        # a path works as well as PEM bytes; replica reads go over TLS to the replicas
        with Client(seeds, root_certificates=os.path.join(pki, "ca.crt"), read_from="replica") as reader:
            assert reader.set("tls-ryw", 1) is True and reader.get("tls-ryw") == b"1"
            assert reader.stats["replica_reads"] == 1

        # raw gRPC: the port speaks TLS only
        primary = cluster.node(cluster.primary())
        channel = grpc.secure_channel(f"127.0.0.1:{primary.grpc_port}",
                                      grpc.ssl_channel_credentials(read(pki, "ca.crt")))
        assert pb_grpc.MemdbStub(channel).Execute(pb.Request(args=[b"GET", b"tls-key"]), timeout=5).reply.bulk == b"v"
        channel.close()
        plain = grpc.insecure_channel(f"127.0.0.1:{primary.grpc_port}")
        with pytest.raises(grpc.RpcError) as raised:
            pb_grpc.MemdbStub(plain).Execute(pb.Request(args=[b"GET", b"tls-key"]), timeout=5)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        plain.close()

        # RESP over TLS on each data node's TLS port, next to its plaintext port
        tls_port = cluster.plan.tls_port(primary)
        resp = redis.Redis(port=tls_port, ssl=True, ssl_ca_certs=os.path.join(pki, "ca.crt"), socket_timeout=5,
                           retry=Retry(NoBackoff(), 0))
        assert resp.get("tls-key") == b"v" and resp.incr("tls-n") == 3
        assert resp.config_get("tls-port") == {"tls-port": str(tls_port)}
        with pytest.raises(redis.ConnectionError):
            redis.Redis(port=tls_port, socket_timeout=5, retry=Retry(NoBackoff(), 0)).ping()

        assert_fails_fast("does it serve TLS", seeds)
        assert_fails_fast("TLS handshake failed", seeds, root_certificates=read(pki, "other-ca.crt"))
        # the certificate names 127.0.0.1 and localhost; another name is refused
        assert_fails_fast("TLS handshake failed", seeds, root_certificates=read(pki, "ca.crt"),
                          tls_server_name="memdb.example")
        # and through the endpoint's TLS port, to whichever node is primary: TLS end to end
        endpoint = cluster.node("endpoint")
        via_endpoint = redis.Redis(port=cluster.plan.tls_port(endpoint), ssl=True, socket_timeout=5,
                                   ssl_ca_certs=os.path.join(pki, "ca.crt"), retry=Retry(NoBackoff(), 0))
        assert via_endpoint.incr("tls-n") == 4 and via_endpoint.config_get("tls-port") == {"tls-port": str(tls_port)}
        cluster.kill(primary.name)
        new = cluster.node(cluster.primary(exclude=primary.name, timeout_s=10))
        deadline = time.monotonic() + 10
        while True:            # the endpoint cuts the old primary's clients; reconnect (a read: never applied twice)
            try:
                assert via_endpoint.get("tls-n") == b"4"
                break
            except (redis.ConnectionError, redis.TimeoutError):
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert via_endpoint.incr("tls-n") == 5
        assert via_endpoint.config_get("tls-port") == {"tls-port": str(cluster.plan.tls_port(new))}
    finally:
        cluster.stop()


def test_mutual_tls(tmp_path, pki):
    tls_dir = str(tmp_path / "tls")
    shutil.copytree(pki, tls_dir)
    shutil.copyfile(os.path.join(pki, "ca.crt"), os.path.join(tls_dir, "client-ca.crt"))
    cluster = RunningCluster(str(tmp_path / "cluster"), grpc_tls_dir=tls_dir).start()
    try:
        seeds = seeds_of(cluster)
        with Client(seeds, root_certificates=read(pki, "ca.crt"), private_key=read(pki, "client.key"),
                    certificate_chain=read(pki, "client.crt")) as db:
            assert db.set("mtls", "yes") is True and db.get("mtls") == b"yes"
        assert_fails_fast("mutual TLS", seeds, root_certificates=read(pki, "ca.crt"))
        tls_port = cluster.plan.tls_port(cluster.node(cluster.primary()))
        resp_options = dict(port=tls_port, ssl=True, ssl_ca_certs=os.path.join(pki, "ca.crt"), socket_timeout=5,
                            retry=Retry(NoBackoff(), 0))
        with pytest.raises(redis.ConnectionError):
            redis.Redis(**resp_options).ping()                      # RESP over TLS wants the certificate too
        assert redis.Redis(**resp_options, ssl_certfile=os.path.join(pki, "client.crt"),
                           ssl_keyfile=os.path.join(pki, "client.key")).get("mtls") == b"yes"
        assert_fails_fast("does it serve TLS", seeds)
    finally:
        cluster.stop()
