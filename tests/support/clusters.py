"""A generated cluster served by a real Prometheus: shared by the integration and e2e tiers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubetally import localprom as prometheus
from kubetally.synthetic import Cluster, ClusterSpec, generate


@dataclass(frozen=True)
class Served:
    cluster: Cluster
    url: str


def serve_cluster(spec: ClusterSpec, root: Path) -> Iterator[Served]:
    """Generate `spec`, load its samples with promtool (2-hour blocks), serve it; yields while it runs."""
    if not prometheus.binaries_present():
        pytest.fail("prometheus and promtool are missing: run scripts/test.sh, which installs them")
    cluster = generate(spec)
    prometheus.load_cluster(cluster, root / "data")
    with prometheus.running_prometheus(root / "data") as url:
        yield Served(cluster=cluster, url=url)
