"""A generated cluster served by a real Prometheus: shared by the integration and e2e tiers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubetally.synthetic import Cluster, ClusterSpec, generate, write_openmetrics
from tests.support import prometheus


@dataclass(frozen=True)
class Served:
    cluster: Cluster
    url: str


def serve_cluster(spec: ClusterSpec, root: Path) -> Iterator[Served]:
    """Generate `spec`, backfill its OpenMetrics with promtool, serve it; yields while it runs."""
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
