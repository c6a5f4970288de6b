"""End-to-end tier: a real control plane (etcd + kube-apiserver v1.20.2) on loopback ports.

One control plane serves the whole session (`kubetally.controlplane.local_control_plane`). The
first run ever builds kube-apiserver (scripts/build-kube-apiserver.sh, about 7 minutes); later
runs start in seconds. There is no controller-manager or scheduler: use a fresh namespace per
test and never wait for deletions.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kubetally.controlplane import ControlPlane, local_control_plane

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with local_control_plane(tmp_path_factory.mktemp("cp")) as cp:
        yield cp
