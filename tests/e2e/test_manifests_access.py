"""What the access manifests grant, asked of a real kube-apiserver with the SubjectAccessReviews the
operator itself makes (and the ones the apiserver makes before proxying an aggregated path).

The ClusterRoles of manifests/access and the bindings of manifests/examples and
manifests/prometheus are applied for real, the examples' namespaces renamed `ex-<name>` (so that no
other test's `ns-003` or user meets them) and every binding deleted afterwards. Expected answers,
derived by hand from the files (RoleBinding = that namespace only; ClusterRoleBinding = everywhere,
including the cluster-wide check with namespace ""; a RoleBinding never grants a cluster-scoped
resource such as costweights; non-resource URLs only through ClusterRoleBindings). CostBudgets are read
(get, list, watch) wherever costreports are, and written by the cost admin only:

| who (example file)                     | costs get/list          | costreports/result get | kubetally.io writes                   | costweights get | /metrics |
|----------------------------------------|-------------------------|------------------------|---------------------------------------|-----------------|----------|
| alice (tenant.yaml, ns-003)            | ns-003 only             | ns-003                 | none                                  | no              | no       |
| group team-03 (project-tenant.yaml)    | ns-003/008/013/018 only | those four             | none                                  | no              | no       |
| carol (admin.yaml, ClusterRoleBinding) | every ns and ""         | every ns               | costreports, costbudgets, costweights | yes             | no       |
| monitoring/prometheus (prometheus/)    | none                    | none                   | none                                  | no              | yes      |
| dave (no binding)                      | none                    | none                   | none                                  | no              | no       |
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetally.controlplane import ControlPlane
from tests.support.controlplane import kubectl

pytestmark = pytest.mark.e2e

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
PROJECT = ("ns-003", "ns-008", "ns-013", "ns-018")  # project-03 in the demo: i % 5 == 3
PROMETHEUS = "system:serviceaccount:monitoring:prometheus"
AUTHENTICATED = ("system:authenticated",)


def _renamed(namespace: str) -> str:
    return f"ex-{namespace}"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def granted(control_plane: ControlPlane) -> Iterator[ControlPlane]:
    """The access ClusterRoles and every example binding, applied; the bindings deleted afterwards."""
    kubectl(control_plane, "apply", "-k", str(MANIFESTS / "access"))
    bindings: list[dict[str, Any]] = []
    for name in ("tenant.yaml", "project-tenant.yaml", "admin.yaml"):
        bindings += _documents(MANIFESTS / "examples" / name)
    bindings += _documents(MANIFESTS / "prometheus" / "metrics_reader_binding.yaml")
    namespaces = sorted({doc["metadata"]["namespace"] for doc in bindings if "namespace" in doc["metadata"]})
    assert namespaces == sorted({"ns-003", *PROJECT})
    for namespace in namespaces:
        created = kubectl(control_plane, "create", "namespace", _renamed(namespace), "--dry-run=client", "-o", "yaml")
        kubectl(control_plane, "apply", "-f", "-", input=created.stdout)
    for doc in bindings:
        if "namespace" in doc["metadata"]:
            doc["metadata"]["namespace"] = _renamed(doc["metadata"]["namespace"])
    manifest = yaml.safe_dump_all(bindings)
    kubectl(control_plane, "apply", "-f", "-", input=manifest)
    try:
        yield control_plane
    finally:
        kubectl(control_plane, "delete", "--ignore-not-found", "-f", "-", input=manifest)


def _allowed(cp: ControlPlane, user: str, groups: tuple[str, ...] = AUTHENTICATED, *, verb: str = "get",
             resource: str = "costs", group: str = "query.kubetally.io", namespace: str = "", name: str = "",
             subresource: str = "", path: str | None = None) -> bool:
    """A SubjectAccessReview as the operator (or the apiserver) makes it; namespace "" = cluster-wide."""
    attributes: dict[str, Any]
    if path is not None:
        attributes = {"nonResourceAttributes": {"path": path, "verb": verb}}
    else:
        attributes = {"resourceAttributes": {"verb": verb, "group": group, "resource": resource,
                                             "namespace": namespace, "name": name, "subresource": subresource}}
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "spec": {"user": user, "groups": list(groups), **attributes}}
    answer = kubectl(cp, "create", "-f", "-", "-o", "json", input=json.dumps(review))
    return bool(json.loads(answer.stdout)["status"].get("allowed", False))


def _costs(cp: ControlPlane, user: str, groups: tuple[str, ...] = AUTHENTICATED) -> set[str]:
    """The namespaces (of the project's, ns-004, and "" for cluster-wide) where USER may get AND list costs."""
    candidates = ["", *(_renamed(ns) for ns in (*PROJECT, "ns-004"))]
    return {ns for ns in candidates
            if _allowed(cp, user, groups, namespace=ns) and _allowed(cp, user, groups, verb="list", namespace=ns)}


def test_tenant_sees_one_namespace(granted: ControlPlane) -> None:
    assert _costs(granted, "alice") == {"ex-ns-003"}
    assert _allowed(granted, "alice", resource="costreports", namespace="ex-ns-003", name="my-controllers", subresource="result")
    assert not _allowed(granted, "alice", resource="costreports", namespace="ex-ns-008", name="my-controllers", subresource="result")
    assert _allowed(granted, "alice", verb="watch", group="kubetally.io", resource="costreports", namespace="ex-ns-003")
    assert not _allowed(granted, "alice", verb="create", group="kubetally.io", resource="costreports",
                        namespace="ex-ns-003")
    for verb in ("get", "list", "watch"):  # the namespace's budgets, read-only
        assert _allowed(granted, "alice", verb=verb, group="kubetally.io", resource="costbudgets", namespace="ex-ns-003")
        assert not _allowed(granted, "alice", verb=verb, group="kubetally.io", resource="costbudgets",
                            namespace="ex-ns-008")
    for verb in ("create", "patch", "delete"):
        assert not _allowed(granted, "alice", verb=verb, group="kubetally.io", resource="costbudgets",
                            namespace="ex-ns-003")
    assert not _allowed(granted, "alice", verb="patch", group="kubetally.io", resource="costbudgets",
                        namespace="ex-ns-003", name="monthly", subresource="status")
    assert not _allowed(granted, "alice", group="kubetally.io", resource="costweights", name="default")
    assert not _allowed(granted, "alice", path="/metrics")


def test_project_tenant_sees_its_project(granted: ControlPlane) -> None:
    team = (*AUTHENTICATED, "team-03")
    assert _costs(granted, "bob", team) == {_renamed(ns) for ns in PROJECT}
    assert _costs(granted, "bob") == set(), "the grant is the group's, not bob's"
    assert not _allowed(granted, "bob", team, path="/metrics")


def test_cost_admin_sees_everything_and_edits_prices(granted: ControlPlane) -> None:
    assert _costs(granted, "carol") == {"", *(_renamed(ns) for ns in (*PROJECT, "ns-004"))}
    assert _allowed(granted, "carol", resource="costreports", namespace="ex-ns-004", name="any", subresource="result")
    for verb in ("create", "update", "patch", "delete"):
        assert _allowed(granted, "carol", verb=verb, group="kubetally.io", resource="costweights", name="default")
        assert _allowed(granted, "carol", verb=verb, group="kubetally.io", resource="costreports", namespace="x")
        assert _allowed(granted, "carol", verb=verb, group="kubetally.io", resource="costbudgets", namespace="x")
    assert not _allowed(granted, "carol", verb="patch", group="kubetally.io", resource="costbudgets", namespace="x",
                        name="monthly", subresource="status")  # the status is the operator's
    assert not _allowed(granted, "carol", path="/metrics")
    assert not _allowed(granted, "carol", verb="get", group="", resource="secrets", namespace="ex-ns-003")


def test_prometheus_may_scrape_metrics_only(granted: ControlPlane) -> None:
    groups = (*AUTHENTICATED, "system:serviceaccounts", "system:serviceaccounts:monitoring")
    assert _allowed(granted, PROMETHEUS, groups, path="/metrics")
    assert not _allowed(granted, PROMETHEUS, groups, verb="post", path="/metrics")
    assert not _allowed(granted, PROMETHEUS, groups, path="/v2/cost")
    assert _costs(granted, PROMETHEUS, groups) == set()


def test_no_binding_sees_nothing(granted: ControlPlane) -> None:
    assert _costs(granted, "dave") == set()
    assert not _allowed(granted, "dave", resource="costreports", namespace="ex-ns-003", name="my-controllers", subresource="result")
    assert not _allowed(granted, "dave", group="kubetally.io", resource="costbudgets", namespace="ex-ns-003")
    assert not _allowed(granted, "dave", path="/metrics")
