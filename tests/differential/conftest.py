"""Fixtures for differential tests: one redis-server per session (skipped if absent), flushed before each test."""
import pytest

from tests.differential.harness import Differential, MemdbInstance, oracle_server


@pytest.fixture(scope="session")
def redis_server():
    server = oracle_server()
    if server is None:
        pytest.skip("redis-server is not installed at /usr/bin/redis-server (run `make test-deps`)")
    return server


@pytest.fixture(scope="session")
def redis_conn(redis_server):
    conn = redis_server.connect(resp=2)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def redis_conn3(redis_server):
    conn = redis_server.connect(resp=3)
    yield conn
    conn.close()


@pytest.fixture
def diff(redis_conn):
    """A Differential on RESP2, both sides empty."""
    d = Differential(redis_conn, MemdbInstance(seed=0, resp=2))
    d.flush()
    return d


@pytest.fixture
def diff3(redis_conn3):
    """A Differential on RESP3, both sides empty."""
    d = Differential(redis_conn3, MemdbInstance(seed=0, resp=3))
    d.flush()
    return d
