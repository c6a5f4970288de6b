"""Integration tier: generated clusters served by a real Prometheus (Debian's 2.42), no Kubernetes.

Each fixture generates a synthetic cluster (kubetally.synthetic), writes its OpenMetrics, turns it
into blocks with promtool and serves them on a free loopback port for the whole session. Expected
facts come from the generator's own model (`expected_facts`), never from the code under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from kubetally.synthetic import Cluster, ClusterSpec, generate, presets, write_openmetrics
from tests.support import prometheus

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Served:
    cluster: Cluster
    url: str


def _serve(spec: ClusterSpec, root: Path) -> Iterator[Served]:
    if not prometheus.binaries_present():
        pytest.fail("prometheus and promtool are missing: run scripts/test.sh, which installs them")
    cluster = generate(spec)
    openmetrics = root / "metrics.om"
    with openmetrics.open("w") as out:
        write_openmetrics(cluster, out)
    prometheus.backfill(openmetrics, root / "data")
    openmetrics.unlink()
    with prometheus.running_prometheus(root / "data") as url:
        yield Served(cluster=cluster, url=url)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The tiny preset: 3 nodes, ~11 pods, 3 hours, a 10-minute gap, duplicated KSM series."""
    yield from _serve(presets.tiny(), tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The same cluster with every kube-state-metrics series written once."""
    yield from _serve(replace(presets.tiny(), duplicate_ksm=False), tmp_path_factory.mktemp("tiny-single"))


@pytest.fixture(scope="session")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The small preset: ~87 pods, 10 nodes, 24 hours with a 2-hour gap (06:00–08:00)."""
    yield from _serve(presets.small(), tmp_path_factory.mktemp("small"))
