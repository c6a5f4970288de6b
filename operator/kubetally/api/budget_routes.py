"""CostBudgets over HTTP: `GET /apis/query.kubetally.io/v1alpha1/namespaces/{ns}/costbudgets[/{name}]`.

The same figures as `kubectl get costbudget -o json` (spec and status, as the operator last computed
them), for tools that read the cost APIs rather than the Kubernetes API. Authorized like the cost
routes of a namespace (`api.guard.fence`): a caller who may see the costs of `ns` may see its budgets.
`kubetally serve` has no budgets and answers 404 saying where they are (`budgets.no_budgets`).
"""

from __future__ import annotations

import orjson
from aiohttp import web

from kubetally.api import payloads
from kubetally.api.guard import fence
from kubetally.budgets import BudgetLister
from kubetally.reports import NoResult

BUDGETS: web.AppKey[BudgetLister] = web.AppKey("budgets")
GROUP_VERSION = "query.kubetally.io/v1alpha1"


async def budgets(request: web.Request) -> web.StreamResponse:
    namespace, name = request.match_info["namespace"], request.match_info.get("name")
    await fence(request, namespace=namespace)
    try:
        items = await request.app[BUDGETS](namespace, name)
    except NoResult as missing:
        return web.Response(body=orjson.dumps(payloads.status(missing.code, missing.reason, missing.message)),
                            status=missing.code, content_type="application/json")
    if name is not None and items:
        body = {"apiVersion": GROUP_VERSION, "kind": "CostBudget", **items[0]}
    else:
        body = {"apiVersion": GROUP_VERSION, "kind": "CostBudgetList", "items": items}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_get(f"{prefix}/namespaces/{{namespace}}/costbudgets", budgets)
    app.router.add_get(f"{prefix}/namespaces/{{namespace}}/costbudgets/{{name}}", budgets)
