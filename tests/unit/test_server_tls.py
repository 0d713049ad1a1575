"""RESP over TLS (memdb/server.py `tls_context`, Redis's --tls-port/--tls-cert-file/--tls-key-file/--tls-ca-cert-file/
--tls-auth-clients): real sockets on 127.0.0.1, real certificates (openssl), redis-py and redis-cli as clients. A
client that does not speak TLS, or does not trust the server, fails at once and the server goes on serving."""
from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from memdb import server as server_module
from memdb.server import tls_context
from tests.integration.tls import make_pki
from tests.unit._resp_support import LocalExecutor, ThreadedServer


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(str(tmp_path_factory.mktemp("pki")))


def _client(port: int, pki: str, ca: str = "ca.crt", cert: str | None = None) -> redis.Redis:
    return redis.Redis(port=port, ssl=True, ssl_ca_certs=os.path.join(pki, ca), socket_timeout=5,
                       retry=Retry(NoBackoff(), 0),
                       ssl_certfile=os.path.join(pki, f"{cert}.crt") if cert else None,
                       ssl_keyfile=os.path.join(pki, f"{cert}.key") if cert else None)


@pytest.fixture
def tls_server(pki):
    context = tls_context(os.path.join(pki, "server.crt"), os.path.join(pki, "server.key"))
    with ThreadedServer(LocalExecutor(), tls=context) as srv:
        yield srv


def test_commands_are_served_over_tls_next_to_the_plaintext_port(tls_server, pki):
    tls_port = tls_server.server.tls_port
    assert tls_port not in (0, tls_server.port)
    secure = _client(tls_port, pki)
    assert secure.set("k", "v") and secure.get("k") == b"v"
    pipe = secure.pipeline(transaction=False)
    for i in range(100):
        pipe.incr("n")
    assert pipe.execute() == list(range(1, 101))
    plain = redis.Redis(port=tls_server.port)
    assert plain.get("n") == b"100"                                     # one keyspace behind both ports
    assert secure.config_get("tls-port") == {"tls-port": str(tls_port)}
    assert sorted(int(c["laddr"].rsplit(":", 1)[1]) for c in secure.client_list()) == sorted(
        [tls_server.port, tls_port])


def test_a_client_that_does_not_speak_tls_or_trust_the_server_fails_and_the_server_goes_on(tls_server, pki):
    tls_port = tls_server.server.tls_port
    with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as plain:
        plain.sendall(b"*1\r\n$4\r\nPING\r\n")
        assert b"+PONG" not in plain.recv(4096)            # a TLS alert or the connection closed, never a reply
    with pytest.raises(redis.ConnectionError, match="(?i)certificate verify failed"):
        _client(tls_port, pki, ca="other-ca.crt").ping()
    assert _client(tls_port, pki).ping()


def test_mutual_tls_requires_a_client_certificate_signed_by_the_ca(pki):
    context = tls_context(os.path.join(pki, "server.crt"), os.path.join(pki, "server.key"),
                          os.path.join(pki, "ca.crt"))                      # --tls-auth-clients yes (Redis's default)
    with ThreadedServer(LocalExecutor(), tls=context) as srv:
        with pytest.raises(redis.ConnectionError):
            _client(srv.server.tls_port, pki).ping()
        assert _client(srv.server.tls_port, pki, cert="client").ping()
    optional = tls_context(os.path.join(pki, "server.crt"), os.path.join(pki, "server.key"),
                           os.path.join(pki, "ca.crt"), auth_clients="optional")
    with ThreadedServer(LocalExecutor(), tls=optional) as srv:
        assert _client(srv.server.tls_port, pki).ping()
        assert _client(srv.server.tls_port, pki, cert="client").ping()


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli not installed")
def test_redis_cli_over_tls(tls_server, pki):
    out = subprocess.run(["redis-cli", "--tls", "--cacert", os.path.join(pki, "ca.crt"), "-h", "127.0.0.1",
                          "-p", str(tls_server.server.tls_port), "SET", "cli", "over-tls"],
                         capture_output=True, text=True, timeout=10)
    assert out.stdout.strip() == "OK", out.stderr
    assert redis.Redis(port=tls_server.port).get("cli") == b"over-tls"


@pytest.mark.parametrize("argv, message", [
    (["--tls-port", "0"], "--tls-port needs --tls-cert-file and --tls-key-file"),
    (["--tls-cert-file", "x.crt", "--tls-key-file", "x.key"], "need --tls-port"),
    (["--tls-port", "0", "--tls-cert-file", "/nonexistent.crt", "--tls-key-file", "/nonexistent.key"],
     "cannot load the TLS certificate"),
])
def test_tls_options_that_cannot_work_are_refused_at_start(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        server_module.main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_tls_auth_clients_no_ignores_client_certificates(pki):
    context = tls_context(os.path.join(pki, "server.crt"), os.path.join(pki, "server.key"),
                          os.path.join(pki, "ca.crt"), auth_clients="no")
    assert context.verify_mode == ssl.CERT_NONE and context.minimum_version >= ssl.TLSVersion.TLSv1_2
