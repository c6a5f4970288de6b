"""The operator's `objects.ObjectLister`: the CostReports, CostBudgets and CostWeights its watches keep.

Reports and budgets are the bodies last seen by the watch (a budget's status as this process last
wrote it, as in `costbudgets.list_budgets`), limited to `namespaces` (None: all), sorted by
namespace and name; CostWeights are the names in the cluster with the version in force now
(`objects.weights_in_force`). Reading memory only: no call to the Kubernetes API per request.
"""

from __future__ import annotations

from typing import Any

from kubetally.handlers.runtime import Runtime
from kubetally.objects import weights_in_force


async def list_objects(runtime: Runtime, kind: str, namespaces: frozenset[str] | None) -> list[dict[str, Any]]:
    if kind == "costweights":
        now = int(runtime.service.clock())
        items = (weights_in_force(name, runtime.ledger.price_versions(name), now) for name in sorted(runtime.weights))
        return [item for item in items if item is not None]
    bodies = runtime.reports if kind == "costreports" else runtime.budgets
    out = []
    for (namespace, name), body in sorted(bodies.items()):
        if namespaces is not None and namespace not in namespaces:
            continue
        status = body.get("status") or {}
        if kind == "costbudgets" and (mark := runtime.budget_marks.get((namespace, name))) is not None:
            status = mark[2]
        out.append({"metadata": {"namespace": namespace, "name": name,
                                 "generation": (body.get("metadata") or {}).get("generation")},
                    "spec": body.get("spec") or {}, "status": status})
    return out
