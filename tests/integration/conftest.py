"""Integration tier: generated clusters served by a real Prometheus (Debian's 2.42), no Kubernetes.

Each fixture generates a synthetic cluster (kubetally.synthetic), writes its OpenMetrics, turns it
into blocks with promtool and serves them on a free loopback port for the whole session. Expected
facts come from the generator's own model (`expected_facts`), never from the code under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from kubetally.synthetic import presets
from tests.support.clusters import Served, serve_cluster

__all__ = ["Served"]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The tiny preset: 3 nodes, ~11 pods, 3 hours, a 10-minute gap, duplicated KSM series."""
    yield from serve_cluster(presets.tiny(), tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The same cluster with every kube-state-metrics series written once."""
    yield from serve_cluster(replace(presets.tiny(), duplicate_ksm=False), tmp_path_factory.mktemp("tiny-single"))


@pytest.fixture(scope="session")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The small preset: ~87 pods, 10 nodes, 24 hours with a 2-hour gap (06:00–08:00)."""
    yield from serve_cluster(presets.small(), tmp_path_factory.mktemp("small"))
