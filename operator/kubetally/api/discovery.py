"""Discovery documents of the aggregated API `query.kubetally.io/v1alpha1`.

Why: the kube-apiserver lists an APIService's group itself (`/apis`), but asks the backend for the
group version's resources (`/apis/query.kubetally.io/v1alpha1`), and so do `kubectl api-resources`
and the APIService availability check. A resource with a verb here is what RBAC rules name:

- `costs` (namespaced; get, list): the collection `…/[namespaces/{ns}/]costs` (verb `list`) and
  `…/[namespaces/{ns}/]costs/cost` (verb `get`) are `/v2/cost`; `…/[namespaces/{ns}/]costs/usage` (verb
  `get`) the Alauda usage API. The kube-apiserver authorizes these paths before proxying them to us;
- `costreports/result` (namespaced; get): `…/namespaces/{ns}/costreports/{name}/result` is a
  CostReport's result (its `status.resultPath`). `kubectl api-resources` lists `costs` only: it
  hides subresources.
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
            _resource("costreports/result", "", "CostReportResult", ["get"]),
        ],
    }


def api_group() -> dict[str, Any]:
    """The APIGroup `query.kubetally.io` (one version, preferred)."""
    version = {"groupVersion": GROUP_VERSION, "version": VERSION}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": GROUP, "versions": [version], "preferredVersion": version}
