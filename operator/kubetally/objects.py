"""The billing objects a process knows, as lists for the HTTP API and the web console.

`GET /apis/query.kubetally.io/v1alpha1/[namespaces/{ns}/]costreports|costbudgets` and `…/costweights`
(`api.console`) list what `kubectl get` would, for callers that hold a cost grant but no RBAC on the
kubetally.io objects (a tenant with `kubetally-cost-viewer`), fenced like the cost data: the reports
and budgets of the namespaces the caller may see. An `ObjectLister` answers
`(kind, namespaces or None for all)`; the operator's reads the objects its watches keep
(`handlers.listing`), `kubetally serve`'s (`serve_objects`) has only the CostWeights of its
`--weights` files, and no reports or budgets (a 404 that says where they are).

CostWeights "in force" (`weights_in_force`): of the versions the ledger holds for a name, the one with
the latest `effectiveFrom` ≤ now prices the present; a later one is pending and named in
`status.pendingFrom`. The ledger keeps every version (history keeps its prices), so this reads it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from kubetally.domain.timeparse import format_rfc3339
from kubetally.ledger.store import PriceRecord
from kubetally.reports import NoResult

__all__ = ["KINDS", "ObjectLister", "serve_objects", "weights_in_force"]

#: Plural → the kind of one item, for the lists' `kind` (`<Kind>List`).
KINDS = {"costreports": "CostReport", "costbudgets": "CostBudget", "costweights": "CostWeights"}

ObjectLister = Callable[[str, frozenset[str] | None], Awaitable[list[dict[str, Any]]]]


def weights_in_force(name: str, versions: list[PriceRecord], now: int) -> dict[str, Any] | None:
    """A CostWeights item: the spec of the version in force at `now` (unix seconds), or None if none is
    recorded. Versions are the ledger's, oldest first."""
    if not versions:
        return None
    current = [v for v in versions if v.effective_from <= now]
    chosen = current[-1] if current else versions[0]
    status: dict[str, Any] = {"versions": len(versions), "effectiveFrom": format_rfc3339(chosen.effective_from)}
    pending = [v for v in versions if v.effective_from > now and v is not chosen]
    if pending:
        status["pendingFrom"] = format_rfc3339(pending[0].effective_from)
    return {"metadata": {"name": name}, "spec": dict(chosen.spec), "status": status}


def serve_objects(names: Iterable[str], versions: Callable[[str], list[PriceRecord]],
                  clock: Callable[[], float]) -> ObjectLister:
    """`kubetally serve`'s lister: the CostWeights of its `--weights` files; no reports, no budgets."""
    known = tuple(dict.fromkeys(names))

    async def lister(kind: str, namespaces: frozenset[str] | None) -> list[dict[str, Any]]:
        if kind != "costweights":
            raise NoResult(404, "NotFound", f"no {KINDS[kind]}s here: they are computed and served by the operator "
                                            f"(kubetally run); kubectl get {kind} -A shows them too")
        now = int(clock())
        items = (weights_in_force(name, versions(name), now) for name in known)
        return [item for item in items if item is not None]

    return lister
