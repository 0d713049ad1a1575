"""Mutual TLS for the txlog's traffic: its clients (the data nodes) and its peers, over gRPC and the txlog wire.

Everyone who talks to a txlog node can append to the log or vote in it, so both ends prove themselves: each process
has one certificate (node.crt/node.key, usable as server and as client: extendedKeyUsage serverAuth and
clientAuth) signed by the cluster's CA (ca.crt), and accepts only peers whose certificate that CA signed. Names are
checked as everywhere else: a certificate must name the host (or IP) others dial it by, zone proxies included
(they forward TCP, so TLS runs end to end through them). TLS 1.2 at least.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import ssl

import grpc

CA_FILE, CERT_FILE, KEY_FILE = "ca.crt", "node.crt", "node.key"


@dataclasses.dataclass(frozen=True)
class TxlogTLS:
    ca: str      # PEM paths
    cert: str
    key: str

    @classmethod
    def from_dir(cls, directory: str) -> "TxlogTLS":
        """ca.crt, node.crt and node.key in `directory` (what `memdb cluster up --txlog-tls-dir` expects)."""
        return cls(*(os.path.join(directory, name) for name in (CA_FILE, CERT_FILE, KEY_FILE)))

    @classmethod
    def from_options(cls, ca: str, cert: str, key: str) -> "TxlogTLS | None":
        """None when no option is given; ValueError unless all three are."""
        if not (ca or cert or key):
            return None
        if not (ca and cert and key):
            raise ValueError("TLS for the txlog needs a CA, a certificate and its key, all three")
        return cls(ca, cert, key)

    def check(self) -> None:
        """Load everything once, so a missing or bad file stops a process at start (OSError or ssl.SSLError)."""
        self.server_context, self.client_context      # noqa: B018 - built for their errors

    @functools.cached_property
    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=self.ca)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert, self.key)
        context.verify_mode = ssl.CERT_REQUIRED
        return context

    @functools.cached_property
    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert, self.key)
        return context

    @functools.cached_property
    def _pem(self) -> tuple[bytes, bytes, bytes]:
        return tuple(_read(path) for path in (self.ca, self.cert, self.key))

    def server_credentials(self) -> grpc.ServerCredentials:
        ca, cert, key = self._pem
        return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        ca, cert, key = self._pem
        return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


def wire_context(tls: TxlogTLS | None) -> ssl.SSLContext | None:
    """The SSL context a txlog wire connection is opened with (wire.connect's ssl_context): None for plaintext."""
    return tls.client_context if tls is not None else None


def channel(address: str, tls: TxlogTLS | None, options) -> grpc.aio.Channel:
    """A grpc.aio channel to a txlog node: over mutual TLS when `tls` is given."""
    if tls is None:
        return grpc.aio.insecure_channel(address, options=options)
    return grpc.aio.secure_channel(address, tls.channel_credentials(), options=options)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
