"""Throwaway certificates for TLS tests, made with the `openssl` command line (no Python crypto dependency).

make_pki(directory) writes, all PEM:
  ca.crt / ca.key              a self-signed CA
  server.crt / server.key      signed by it, for 127.0.0.1 and localhost (what the data nodes serve)
  client.crt / client.key      signed by it, for mutual TLS
  node.crt / node.key          signed by it, for server and client auth, 127.0.0.1 and localhost (the txlog's)
  other-ca.crt / other-ca.key  an unrelated CA (a client that trusts only this one must refuse the server)
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def _openssl(*args: str, cwd: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(name: str, cwd: str) -> None:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt",
             "-days", "2", "-subj", f"/CN=memdb test {name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=cwd)


def _leaf(name: str, extensions: str, cwd: str) -> None:
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", f"/CN=memdb test {name}", cwd=cwd)
    with open(os.path.join(cwd, f"{name}.ext"), "w") as f:
        f.write(extensions)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=cwd)


def make_pki(directory: str) -> str:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command line is needed to make test certificates")
    os.makedirs(directory, exist_ok=True)
    _ca("ca", directory)
    _ca("other-ca", directory)
    _leaf("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n", directory)
    _leaf("client", "extendedKeyUsage=clientAuth\n", directory)
    _leaf("node", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n", directory)
    return directory


def read(directory: str, name: str) -> bytes:
    with open(os.path.join(directory, name), "rb") as f:
        return f.read()
