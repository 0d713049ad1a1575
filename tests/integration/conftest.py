import pytest

from tests.integration.cluster import RunningCluster


@pytest.fixture
def cluster(tmp_path):
    c = RunningCluster(str(tmp_path / "cluster")).start()
    try:
        yield c
    finally:
        c.stop()
