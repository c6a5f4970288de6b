"""A CostBudget's status from `budgets.compute_budget`, on the documented topology (tests/unit/engine/topology.py).

The ledger holds 2025-06-01 00:00–02:00Z; the store has nothing live. Effective cost per namespace (hand-computed
in topology.py): shop 0.65, web 0.60 (project alpha: 1.25), data 0.22, batch 0.0175; total 1.4875.

Daily budget (UTC), now = 02:10:17 (unaligned), resolution 60 s:
  window = [00:00, 02:10) = 7800 s; period = [2025-06-01, 2025-06-02); 78600 s left
  shop, amount 0.8:  spent 0.65 → 81.25 %; the lookback is the period so far, so
                     forecast = 0.65 + 0.65 × 78600 / 7800 = 0.65 × 86400 / 7800 = 7.2 → 900.00 %
                     crossed: spent-80 (0.65 ≥ 0.64) and forecast-100 (7.2 ≥ 0.8); not spent-100
  recomputed at 02:40 with the status of 02:10: spent is still 0.65 (no data after 02:00), forecast
                     0.65 × 86400 / 9600 = 5.85; nothing newly crossed, the records keep 02:10
  next day 00:30 with that status: a new period (window [06-02, 00:30), no data: spent 0), the last
                     period's figures in history, no threshold records
  admin, project alpha, amount 1: spent 1.25 → Exceeded (SpentOverAmount), 125.00 %
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kubetally import budgets
from kubetally.domain.errors import SpecError
from kubetally.service import CostService
from tests.unit.test_reports import service as service

NOW = datetime(2025, 6, 1, 2, 10, 17, tzinfo=UTC)


async def compute(service: CostService, spec: dict[str, object], *, now: datetime = NOW, namespace: str = "shop",
                  isolated: bool = True, previous: dict[str, object] | None = None) -> budgets.BudgetResult:
    return await budgets.compute_budget(service, spec, namespace=namespace, generation=2, now=now,
                                        isolated=isolated, previous=previous)


DAILY = {"amount": "0.8", "currency": "CNY", "period": "daily"}


async def test_a_tenant_budget_spends_its_namespace_and_crosses_once(service: CostService) -> None:
    first = await compute(service, DAILY)
    status = first.status
    assert (status["spent"], status["forecast"]) == ("0.650000", "7.200000")
    assert (status["percent"], status["forecastPercent"]) == ("81.25", "900.00")
    assert status["period"] == {"start": "2025-06-01T00:00:00Z", "end": "2025-06-02T00:00:00Z"}
    assert status["window"] == {"start": "2025-06-01T00:00:00Z", "end": "2025-06-01T02:10:00Z"}
    assert status["observedGeneration"] == 2
    assert [c.threshold.key for c in first.crossed] == ["spent-80", "forecast-100"]
    assert [(r["key"], r["crossedAt"], r["value"]) for r in status["thresholds"]] == [
        ("spent-80", "2025-06-01T02:10:17Z", "0.650000"), ("forecast-100", "2025-06-01T02:10:17Z", "7.200000")]
    kinds = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert kinds == {"Ready": ("True", "Computed"), "Exceeded": ("False", "WithinAmount"),
                     "ForecastExceeded": ("True", "ForecastOverAmount")}

    later = datetime(2025, 6, 1, 2, 40, 0, tzinfo=UTC)
    again = await compute(service, DAILY, now=later, previous=status)
    assert again.crossed == ()
    assert again.status["thresholds"] == status["thresholds"]
    assert again.status["forecast"] == "5.850000"
    since = {c["type"]: c["lastTransitionTime"] for c in again.status["conditions"]}
    assert since["ForecastExceeded"] == "2025-06-01T02:10:17Z"  # no transition: the first time is kept

    next_day = datetime(2025, 6, 2, 0, 30, 0, tzinfo=UTC)
    fresh = await compute(service, DAILY, now=next_day, previous=again.status)
    assert fresh.status["spent"] == "0.000000"
    assert fresh.status["thresholds"] == []
    assert fresh.crossed == ()
    assert fresh.status["history"] == [{"amount": "0.800000", "spent": "0.650000", "percent": "81.25",
                                        "currency": "CNY", "start": "2025-06-01T00:00:00Z",
                                        "end": "2025-06-02T00:00:00Z"}]


async def test_an_admin_budget_covers_its_scope(service: CostService) -> None:
    spec = {"amount": "1", "currency": "CNY", "period": "daily", "scope": {"project": "alpha"}}
    result = await compute(service, spec, namespace="finops", isolated=False)
    assert (result.status["spent"], result.status["percent"]) == ("1.250000", "125.00")
    kinds = {c["type"]: (c["status"], c["reason"]) for c in result.status["conditions"]}
    assert kinds["Exceeded"] == ("True", "SpentOverAmount")
    everything = await compute(service, {"amount": "10", "currency": "CNY", "period": "daily"}, namespace="finops",
                               isolated=False)
    assert everything.status["spent"] == "1.487500"


async def test_a_tenant_budget_cannot_reach_further_and_currencies_must_match(
        service: CostService) -> None:
    with pytest.raises(SpecError) as wider:
        await compute(service, {**DAILY, "scope": {"namespaces": ["web"]}})
    assert wider.value.field == "spec.scope"
    assert "covers that namespace only" in wider.value.message
    with pytest.raises(SpecError) as currency:
        await compute(service, {**DAILY, "currency": "USD"})
    assert currency.value.field == "spec.currency"
    assert "priced in CNY" in currency.value.message



async def test_the_http_routes_list_budgets_and_say_where_they_are(service: CostService) -> None:
    """`kubetally serve` (no lister): 404 naming the operator. With a lister (the operator's): the list, one
    budget, and a 404 Status for a name it does not know."""
    from aiohttp.test_utils import TestClient, TestServer

    from kubetally.api.app import build_app
    from kubetally.api.metrics import Metrics
    from kubetally.reports import NoResult

    async def ready() -> bool:
        return True

    item = {"metadata": {"namespace": "shop", "name": "daily"}, "spec": DAILY, "status": {"spent": "0.650000"}}

    async def lister(namespace: str, name: str | None) -> list[dict[str, object]]:
        if name not in (None, "daily"):
            raise NoResult(404, "NotFound", f"no costbudget {namespace}/{name}")
        return [item] if namespace == "shop" else []

    path = "/apis/query.kubetally.io/v1alpha1/namespaces/shop/costbudgets"
    async with TestClient(TestServer(build_app(service, Metrics(), ready))) as client:
        served = await client.get(path)
        assert served.status == 404
        assert "served by the operator (kubetally run)" in (await served.json())["message"]
    async with TestClient(TestServer(build_app(service, Metrics(), ready, budgets=lister))) as client:
        listed = await (await client.get(path)).json()
        assert listed == {"apiVersion": "query.kubetally.io/v1alpha1", "kind": "CostBudgetList", "items": [item]}
        one = await (await client.get(f"{path}/daily")).json()
        assert one == {"apiVersion": "query.kubetally.io/v1alpha1", "kind": "CostBudget", **item}
        missing = await client.get(f"{path}/nope")
        assert missing.status == 404
        assert (await missing.json())["message"] == "no costbudget shop/nope"
        other = await (await client.get(path.replace("/shop/", "/web/"))).json()
        assert other["items"] == []
