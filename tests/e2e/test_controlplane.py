"""The local control plane is a working Kubernetes API: kubectl, RBAC, namespaces, CRDs."""

from __future__ import annotations

import json

import pytest

from kubetally.controlplane import ControlPlane
from tests.support.controlplane import kubectl

pytestmark = pytest.mark.e2e

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.test.kubetally.io}
spec:
  group: test.kubetally.io
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
"""

WIDGET = """
apiVersion: test.kubetally.io/v1
kind: Widget
metadata: {name: w1, namespace: default}
spec: {size: 3}
"""


def test_server_version(control_plane: ControlPlane) -> None:
    version = json.loads(kubectl(control_plane, "version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.20.2"


def test_namespaces(control_plane: ControlPlane) -> None:
    names = kubectl(control_plane, "get", "ns", "-o", "name").stdout.split()
    assert {"namespace/default", "namespace/kube-system"} <= set(names)
    kubectl(control_plane, "create", "namespace", "e2e-x")
    assert kubectl(control_plane, "get", "namespace", "e2e-x", "-o", "name").stdout.strip() == "namespace/e2e-x"


def test_admin_token_is_cluster_admin(control_plane: ControlPlane) -> None:
    assert kubectl(control_plane, "auth", "can-i", "create", "pods").stdout.strip() == "yes"


def test_custom_resources(control_plane: ControlPlane) -> None:
    kubectl(control_plane, "apply", "-f", "-", input=CRD)
    kubectl(control_plane, "wait", "--for", "condition=established", "--timeout=60s", "crd/widgets.test.kubetally.io")
    kubectl(control_plane, "apply", "-f", "-", input=WIDGET)
    widget = json.loads(kubectl(control_plane, "get", "widgets.test.kubetally.io", "w1", "-n", "default", "-o", "json").stdout)
    assert widget["spec"] == {"size": 3}
