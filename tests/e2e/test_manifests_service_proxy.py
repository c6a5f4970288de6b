"""The optional service-proxy admin route (`manifests/service-proxy`): rendered and accepted by a real
kube-apiserver (server-side dry run).

What it must be (README "The service proxy"): the operator started with `--service-proxy-port 8444`
(env KUBETALLY_SERVICE_PROXY_PORT, container port `service-proxy`), a Service `kubetally-admin` of its
own (port 443 → service-proxy, so RBAC can name it apart from the checked `kubetally` Service), and a
NetworkPolicy that leaves the checked port open and admits the admin port only from an ipBlock that
the user sets to their control plane (192.0.2.0/24, a documentation range, until they do). The
routing itself is proven in tests/access/test_proxies.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetally.controlplane import ControlPlane
from tests.e2e.test_manifests import MANIFESTS, NAMESPACE, _build, _ensure_namespace, _one, _overlay
from tests.support.controlplane import kubectl

pytestmark = pytest.mark.e2e


def test_the_component_opens_a_port_only_the_apiserver_may_reach(control_plane: ControlPlane,
                                                                   tmp_path: Path) -> None:
    overlay = _overlay(tmp_path, "service-proxy")
    docs = _build(control_plane, overlay)
    [container] = _one(docs, "Deployment", "kubetally")["spec"]["template"]["spec"]["containers"]
    assert {"name": "KUBETALLY_SERVICE_PROXY_PORT", "value": "8444"} in container["env"]
    assert {"name": "service-proxy", "containerPort": 8444, "protocol": "TCP"} in container["ports"]
    assert {"name": "https", "containerPort": 8443, "protocol": "TCP"} in container["ports"]
    service = _one(docs, "Service", "kubetally-admin")
    assert service["metadata"]["namespace"] == NAMESPACE
    assert service["spec"]["ports"] == [{"name": "https", "port": 443, "targetPort": "service-proxy", "protocol": "TCP"}]
    policy = _one(docs, "NetworkPolicy", "kubetally-service-proxy")
    assert policy["spec"]["podSelector"]["matchLabels"] == service["spec"]["selector"]
    assert policy["spec"]["ingress"] == [
        {"ports": [{"port": "https", "protocol": "TCP"}]},
        {"from": [{"ipBlock": {"cidr": "192.0.2.0/24"}}], "ports": [{"port": "service-proxy", "protocol": "TCP"}]},
    ]
    assert not any(doc["kind"] == "NetworkPolicy" for doc in _build(control_plane, MANIFESTS / "default"))
    _ensure_namespace(control_plane)
    applied = kubectl(control_plane, "apply", "--dry-run=server", "-k", str(overlay)).stdout
    for expected in ("service/kubetally-admin", "networkpolicy.networking.k8s.io/kubetally-service-proxy",
                     "deployment.apps/kubetally"):
        assert f"{expected} " in applied, (expected, applied)
