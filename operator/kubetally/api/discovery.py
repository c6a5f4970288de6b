"""Discovery documents of the aggregated API `query.kubetally.io/v1alpha1`.

Why: the kube-apiserver lists an APIService's group itself (`/apis`), but asks the backend for the
group version's resources (`/apis/query.kubetally.io/v1alpha1`), and so do `kubectl api-resources`
and the APIService availability check. A resource with a verb here is what RBAC rules name:

- `costs` (namespaced; get, list): `…/[namespaces/{ns}/]costs/cost` is `/v2/cost` and
  `…/[namespaces/{ns}/]costs/usage` the Alauda usage API; the kube-apiserver authorizes these paths
  as verb `get` on `costs` (named `cost` / `usage`) before proxying them to us;
- `costreports` (namespaced; get): `…/namespaces/{ns}/costreports/{name}` is a CostReport's result.
"""

from __future__ import annotations

from typing import Any

GROUP, VERSION = "query.kubetally.io", "v1alpha1"
GROUP_VERSION = f"{GROUP}/{VERSION}"


def _resource(name: str, singular: str, kind: str, verbs: list[str]) -> dict[str, Any]:
    return {"name": name, "singularName": singular, "namespaced": True, "kind": kind, "verbs": verbs}


def resource_list() -> dict[str, Any]:
    """The APIResourceList of `query.kubetally.io/v1alpha1`."""
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GROUP_VERSION,
        "resources": [
            _resource("costs", "cost", "Cost", ["get", "list"]),
            _resource("costreports", "costreport", "CostReportResult", ["get"]),
        ],
    }


def api_group() -> dict[str, Any]:
    """The APIGroup `query.kubetally.io` (one version, preferred)."""
    version = {"groupVersion": GROUP_VERSION, "version": VERSION}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": GROUP, "versions": [version], "preferredVersion": version}
