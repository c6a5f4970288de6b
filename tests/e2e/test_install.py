"""The install commands as a user types them, against the real kube-apiserver.

`kubectl apply -f crds/` is the first thing a user types; it failed with `no matches for kind
"Kustomization"` while crds/ held a kustomization.yaml, because `apply -f <dir>` sends every .json,
.yaml and .yml file of the folder to the apiserver (issue 12, bug 7). The kustomizations of the
folders users apply are now named `Kustomization`, a name kustomize (and kubectl's built-in
kustomize) reads too, so `apply -f` and `apply -k` both work. The kustomize builds themselves and
`kubectl apply -k manifests/default` are checked in test_manifests.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetally.controlplane import ControlPlane
from tests.support.controlplane import kubectl

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
CRDS = ("customresourcedefinition.apiextensions.k8s.io/costbudgets.kubetally.io",
        "customresourcedefinition.apiextensions.k8s.io/costreports.kubetally.io",
        "customresourcedefinition.apiextensions.k8s.io/costweights.kubetally.io")


def _objects(output: str) -> list[str]:
    """`kubectl apply` lines (`<kind>/<name> created|configured|unchanged`) → sorted `<kind>/<name>`."""
    return sorted(line.split()[0] for line in output.splitlines() if line.strip())


def test_kubectl_apply_f_crds_installs_both_crds(control_plane: ControlPlane) -> None:
    applied = kubectl(control_plane, "apply", "-f", str(ROOT / "crds") + "/")
    assert _objects(applied.stdout) == list(CRDS), applied.stdout
    kubectl(control_plane, "wait", "--for", "condition=established", "--timeout=60s",
            "crd/costbudgets.kubetally.io", "crd/costreports.kubetally.io", "crd/costweights.kubetally.io")
    again = kubectl(control_plane, "apply", "-k", str(ROOT / "crds"))  # the same CRDs through the kustomization
    assert _objects(again.stdout) == list(CRDS), again.stdout


def test_kubectl_apply_f_samples_is_accepted(control_plane: ControlPlane) -> None:
    kubectl(control_plane, "apply", "-f", str(ROOT / "crds") + "/")
    kubectl(control_plane, "wait", "--for", "condition=established", "--timeout=60s",
            "crd/costbudgets.kubetally.io", "crd/costreports.kubetally.io", "crd/costweights.kubetally.io")
    namespace = kubectl(control_plane, "create", "namespace", "kubetally-system", "--dry-run=client", "-o", "yaml")
    kubectl(control_plane, "apply", "-f", "-", input=namespace.stdout)
    applied = kubectl(control_plane, "apply", "--dry-run=server", "-f", str(ROOT / "manifests" / "samples") + "/")
    assert _objects(applied.stdout) == ["costreport.kubetally.io/namespaces-7d", "costweights.kubetally.io/default"]
