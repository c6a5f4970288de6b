"""The deployment manifests (manifests/) against a real kube-apiserver: they build, the apiserver
accepts them, and the operator's RBAC is exactly the least privilege of CORRECTNESS.md S4.

The RBAC golden file is tests/e2e/golden/operator-can-i.txt. After a deliberate RBAC change,
rewrite it with `KUBETALLY_UPDATE_GOLDEN=1 pytest tests/e2e/test_manifests.py` and review the diff
by hand. The normalisation (`_can_i`) drops the rules every authenticated user gets from the
apiserver's bootstrap policy (system:basic-user's selfsubjectaccessreviews/selfsubjectrulesreviews,
system:discovery's and system:public-info-viewer's non-resource URLs): they are not granted by
manifests/ and vary between Kubernetes versions. Everything else `kubectl auth can-i --list` prints
for the operator's service account is in the golden file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetally.controlplane import ControlPlane
from tests.support.controlplane import kubectl

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
GOLDEN = Path(__file__).parent / "golden" / "operator-can-i.txt"
NAMESPACE = "kubetally-system"
OPERATOR = f"system:serviceaccount:{NAMESPACE}:kubetally"
RBAC_KINDS = {"ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
# Granted to every authenticated user by the bootstrap policy, not by manifests/ (see the docstring).
BOOTSTRAP_RESOURCES = {
    "selfsubjectaccessreviews.authorization.k8s.io",
    "selfsubjectrulesreviews.authorization.k8s.io",
}
# The only resources the operator may change: its own objects and the events it posts.
WRITABLE = {
    "costreports.kubetally.io",
    "costreports.kubetally.io/status",
    "costweights.kubetally.io",
    "costweights.kubetally.io/status",
    "events",
    "events.events.k8s.io",
}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
# One line of `kubectl auth can-i --list`: resource, non-resource URLs, resource names, verbs.
CAN_I_LINE = re.compile(r"^(?P<resource>\S*)\s+(?P<urls>\[[^\]]*\])\s+(?P<names>\[[^\]]*\])\s+(?P<verbs>\[[^\]]*\])$")


def _build(cp: ControlPlane, directory: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize DIRECTORY`, parsed into its documents."""
    output = kubectl(cp, "kustomize", str(directory)).stdout
    return [doc for doc in yaml.safe_load_all(output) if doc]


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def _ensure_namespace(cp: ControlPlane) -> None:
    """Create kubetally-system for real (idempotently): a server-side dry run creates nothing, so the
    namespaced objects of the same dry run would otherwise find their namespace missing."""
    manifest = kubectl(cp, "create", "namespace", NAMESPACE, "--dry-run=client", "-o", "yaml").stdout
    kubectl(cp, "apply", "-f", "-", input=manifest)


def _apply_crds(cp: ControlPlane) -> None:
    kubectl(cp, "apply", "-k", str(ROOT / "crds"))
    kubectl(cp, "wait", "--for", "condition=established", "--timeout=60s",
            "crd/costreports.kubetally.io", "crd/costweights.kubetally.io")


def _can_i(cp: ControlPlane, *scope: str) -> list[str]:
    """`kubectl auth can-i --list` as the operator, normalised to sorted `<resource> [<verbs>]` lines
    without the bootstrap rules every authenticated user has."""
    output = kubectl(cp, "auth", "can-i", "--list", f"--as={OPERATOR}", *scope).stdout
    lines = set()
    for raw in output.splitlines()[1:]:  # the first line is the table header
        match = CAN_I_LINE.match(raw.rstrip())
        assert match, f"unexpected line in kubectl auth can-i --list: {raw!r}"
        if match["urls"] != "[]" or match["resource"] in BOOTSTRAP_RESOURCES:
            continue
        assert match["names"] == "[]", f"unexpected resourceNames rule: {raw!r}"
        lines.add(f"{match['resource']} {match['verbs']}")
    return sorted(lines)


def _rules(lines: list[str]) -> dict[str, set[str]]:
    """`<resource> [<verbs>]` lines → {resource: verbs}."""
    rules: dict[str, set[str]] = {}
    for line in lines:
        resource, verbs = line.split(" ", 1)
        rules.setdefault(resource, set()).update(verbs.strip("[]").split())
    return rules


def test_default_builds_with_crds_rbac_and_a_hardened_deployment(control_plane: ControlPlane) -> None:
    docs = _build(control_plane, MANIFESTS / "default")
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in docs}
    assert {
        ("Namespace", NAMESPACE),
        ("CustomResourceDefinition", "costreports.kubetally.io"),
        ("CustomResourceDefinition", "costweights.kubetally.io"),
        ("ServiceAccount", "kubetally"),
        ("ClusterRole", "kubetally"),
        ("ClusterRoleBinding", "kubetally"),
        ("Deployment", "kubetally"),
        ("Service", "kubetally"),
        ("PersistentVolumeClaim", "kubetally-ledger"),
    } <= kinds
    assert not any(doc["kind"] == "ServiceMonitor" for doc in docs), "the ServiceMonitor is an optional component"
    for doc in docs:
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == "kubetally"
        if doc["kind"] not in {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}:
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["kind"]

    deployment = _one(docs, "Deployment", "kubetally")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "kubetally"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    [container] = pod["containers"]
    assert container["command"] == ["kubetally", "run"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 65532
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "768Mi"}}
    env = {item["name"]: item["value"] for item in container["env"]}
    assert env["KUBETALLY_LEDGER"] == "/data/kubetally.duckdb"
    assert env["KUBETALLY_PORT"] == "8080"
    assert env["KUBETALLY_ADMIN_NAMESPACES"] == NAMESPACE
    assert env["KUBETALLY_MEMORY_LIMIT"] == "384MB"  # half the 768Mi limit: DuckDB spills rather than OOMs
    assert env["KUBETALLY_PROMETHEUS_URL"].startswith("http")
    assert "KUBETALLY_CLUSTER" in env
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes[mounts["/data"]]["persistentVolumeClaim"] == {"claimName": "kubetally-ledger"}
    assert volumes[mounts["/tmp"]]["emptyDir"] == {}

    pvc = _one(docs, "PersistentVolumeClaim", "kubetally-ledger")
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "5Gi"
    service = _one(docs, "Service", "kubetally")
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]
    assert service["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items()
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()


def test_prometheus_component_adds_a_servicemonitor(control_plane: ControlPlane, tmp_path: Path) -> None:
    """An overlay, as a user would write one, with manifests/default and the optional component
    (kustomize wants relative paths; directories with a kustomization may be anywhere)."""
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(MANIFESTS / "default", tmp_path)],
        "components": [os.path.relpath(MANIFESTS / "prometheus", tmp_path)],
    }))
    docs = _build(control_plane, tmp_path)
    monitor = _one(docs, "ServiceMonitor", "kubetally")
    assert monitor["metadata"]["namespace"] == NAMESPACE
    [endpoint] = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    service = _one(docs, "Service", "kubetally")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()


def test_apiserver_accepts_default_and_samples(control_plane: ControlPlane) -> None:
    _apply_crds(control_plane)  # for real: the samples' kinds must exist even in a dry run
    _ensure_namespace(control_plane)
    applied = kubectl(control_plane, "apply", "--dry-run=server", "-k", str(MANIFESTS / "default")).stdout
    for expected in ("deployment.apps/kubetally", "service/kubetally", "persistentvolumeclaim/kubetally-ledger",
                     "serviceaccount/kubetally", "clusterrole.rbac.authorization.k8s.io/kubetally",
                     "customresourcedefinition.apiextensions.k8s.io/costreports.kubetally.io"):
        assert expected in applied
    samples = kubectl(control_plane, "apply", "--dry-run=server", "-k", str(MANIFESTS / "samples")).stdout
    assert "costreport.kubetally.io/namespaces-7d" in samples
    assert "costweights.kubetally.io/default" in samples
    report = _one(_build(control_plane, MANIFESTS / "samples"), "CostReport", "namespaces-7d")
    assert report["metadata"]["namespace"] == NAMESPACE
    assert report["spec"] == {"window": "7d", "aggregate": ["namespace"], "method": "Effective", "schedule": "@hourly"}


def test_operator_rbac_is_least_privilege(control_plane: ControlPlane) -> None:
    _ensure_namespace(control_plane)
    rbac = [doc for doc in _build(control_plane, MANIFESTS / "default") if doc["kind"] in RBAC_KINDS]
    assert {doc["kind"] for doc in rbac} == RBAC_KINDS
    kubectl(control_plane, "apply", "-f", "-", input=yaml.safe_dump_all(rbac))

    cluster = _can_i(control_plane)
    namespaced = _can_i(control_plane, "-n", NAMESPACE)
    rendered = "".join(
        [f"[cluster] {line}\n" for line in cluster] + [f"[{NAMESPACE}] {line}\n" for line in namespaced]
    )
    if os.environ.get("KUBETALLY_UPDATE_GOLDEN"):
        header = "".join(line + "\n" for line in GOLDEN.read_text().splitlines() if line.startswith("#"))
        GOLDEN.write_text(header + rendered)
    golden = "".join(line + "\n" for line in GOLDEN.read_text().splitlines() if line and not line.startswith("#"))
    assert rendered == golden, f"RBAC differs from {GOLDEN.name}; actual:\n{rendered}"

    for scope, lines in (("cluster", cluster), (NAMESPACE, namespaced)):
        rules = _rules(lines)
        assert rules, scope
        for resource, verbs in rules.items():
            assert "*" not in resource, f"{scope}: wildcard resource {resource}"
            assert "*" not in verbs, f"{scope}: wildcard verb on {resource}"
            assert not resource.startswith(("secrets", "configmaps")), f"{scope}: {resource} {verbs}"
            assert not verbs & WRITE_VERBS or resource in WRITABLE, f"{scope}: writes {resource} {verbs}"
        assert rules["costreports.kubetally.io"] == {"get", "list", "watch", "patch"}
        assert rules["costreports.kubetally.io/status"] == {"get", "patch"}
        assert rules["costweights.kubetally.io"] == {"get", "list", "watch", "patch"}
        assert rules["costweights.kubetally.io/status"] == {"get", "patch"}
        assert rules["events"] == rules["events.events.k8s.io"] == {"create"}
        assert rules["namespaces"] == rules["customresourcedefinitions.apiextensions.k8s.io"] == {"list", "watch"}
        assert not any(resource.startswith(("leases", "kopfpeerings")) for resource in rules), "standalone: no peering"

    for args in (("get", "secrets"), ("list", "secrets", "-A"), ("get", "configmaps", "-A"),
                 ("delete", "costreports.kubetally.io", "-A"), ("create", "pods", "-n", NAMESPACE)):
        answer = kubectl(control_plane, "auth", "can-i", *args, f"--as={OPERATOR}", check=False)
        assert answer.stdout.strip() == "no", args
    answer = kubectl(control_plane, "auth", "can-i", "patch", "costreports.kubetally.io", "--subresource=status",
                     "-n", "shop", f"--as={OPERATOR}")
    assert answer.stdout.strip() == "yes"
