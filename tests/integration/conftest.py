import pytest

from tests.integration.cluster import TestCluster


@pytest.fixture
def cluster(tmp_path):
    c = TestCluster(str(tmp_path / "cluster")).start()
    try:
        yield c
    finally:
        c.stop()
