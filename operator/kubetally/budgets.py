"""A CostBudget, computed: from its spec, the time and its last status to the status the operator writes.

The kopf handler stays thin (`handlers.costbudgets`): it calls `compute_budget`, writes the status,
then posts an Event (and a notification) for each threshold this computation crossed. So this module
decides what a budget means:

- scope: a budget outside the admin namespaces covers its own namespace, nothing else (a
  `spec.scope` there is InvalidSpec: a tenant's budget never sees more than its namespace); in an
  admin namespace, `spec.scope` (project AND namespaces AND filter; none: the whole cluster);
- `spent` = Σ cost of the workloads in scope over `window` = [period start, now), now floored to the
  resolution: exactly `/v2/cost?window=<window>&filter=<scope>&method=<method>&idle=false`, summed
  (idle is the cluster's, not the scope's; with customWeights, Σ customCost). Money in the budget's
  currency, which must be the pricing CostWeights' (else InvalidSpec: no conversion is guessed);
- `forecast` = `domain.budgets.forecast` over the spend of the last 7 days (or of the period so far);
  `percent` = spent / amount × 100, `forecastPercent` likewise;
- `thresholds`: those crossed this period, each with the time it was first found crossed and the
  value then; a threshold is crossed once per period (a later computation keeps the first record, so
  its Event is posted once, across restarts too: the record is in the status);
- a new period starts clean: the last period's final figures go to `history` (newest first, at most
  `HISTORY`), its crossings are forgotten;
- conditions: Ready (Computed; False with InvalidSpec or MetricsUnavailable, `reports.failed_status`),
  Exceeded (True, reason SpentOverAmount, once spent ≥ amount; else False, WithinAmount) and
  ForecastExceeded (ForecastOverAmount / ForecastWithinAmount), with stable transition times.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from kubetally.domain.aggregation import AggregateKey, Dimension
from kubetally.domain.budgets import (
    CostBudgetSpec,
    Threshold,
    forecast,
    lookback_start,
    parse_cost_budget,
    period_bounds,
)
from kubetally.domain.errors import SpecError
from kubetally.domain.filters import Condition, Field, Filter, Op
from kubetally.domain.sets import floor_to
from kubetally.domain.window import Window
from kubetally.engine.query import WORKLOAD, CostQuery
from kubetally.reports import NoResult, condition, money, rfc3339
from kubetally.service import CostService

#: Past periods kept in `status.history`.
HISTORY = 12

#: Lists the CostBudgets of a namespace (all, or the one named) as the operator knows them: each as
#: {metadata: {namespace, name}, spec, status}; raises `reports.NoResult` (a 404) where there are none
#: to know (`kubetally serve`), or for a name that does not exist.
BudgetLister = Callable[[str, str | None], Awaitable[list[dict[str, Any]]]]


async def no_budgets(namespace: str, name: str | None) -> list[dict[str, Any]]:
    """`kubetally serve` has no CostBudgets: a 404 that says where they are."""
    raise NoResult(404, "NotFound", "no CostBudgets here: they are computed and served by the operator "
                                    "(kubetally run); kubectl get costbudgets -n <namespace> shows them too")


@dataclass(frozen=True, slots=True)
class Crossed:
    """A threshold this computation found crossed for the first time this period."""

    threshold: Threshold
    value: Decimal
    at: str


@dataclass(frozen=True, slots=True)
class BudgetResult:
    status: dict[str, Any]
    crossed: tuple[Crossed, ...]
    spec: CostBudgetSpec


def scope_filter(spec: CostBudgetSpec, *, namespace: str, isolated: bool) -> Filter | None:
    """What the budget covers (module doc); SpecError for a tenant budget that names a scope."""
    if isolated:
        if spec.notify is not None:
            raise SpecError("spec.notify", f"webhook notifications are set on budgets in the admin namespaces (their "
                                           "Secret lives in the operator's namespace); remove spec.notify from "
                                           f"this budget in namespace {namespace}, or ask the platform team")
        if spec.scope.given:
            raise SpecError("spec.scope", f"a CostBudget in namespace {namespace} covers that namespace only; "
                                          "remove spec.scope, or create the budget in an admin namespace "
                                          "(kubetally run --admin-namespaces) to cover projects, namespaces or "
                                          "a filter")
        return Condition(Field.NAMESPACE, Op.EQ, (namespace,))
    return spec.scope.as_filter()


async def _spend(service: CostService, spec: CostBudgetSpec, scope: Filter | None, start: int, end: int,
                 ) -> tuple[Decimal, float, str]:
    """(Σ cost of the workloads in scope over [start, end), coverage, the pricing book's currency)."""
    window = Window(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))
    query = CostQuery(window=window, aggregate=(AggregateKey(Dimension.CLUSTER),), filter=scope, method=spec.method,
                      idle=False)
    answer = await service.cost(query, spec.weights_name())
    table = answer.table
    custom = table.custom_currency is not None
    total = sum(Decimal(repr(row.custom_cost if custom and row.custom_cost is not None else row.cost))
                for row in table.rows if row.kind == WORKLOAD)
    return Decimal(total), answer.coverage, table.custom_currency or table.currency


async def compute_budget(
    service: CostService, spec_body: Mapping[str, Any], *, namespace: str, generation: int, now: datetime,
    isolated: bool, previous: Mapping[str, Any] | None = None,
) -> BudgetResult:
    """Compute a budget's status at `now` (SpecError and SourceUnavailable propagate, as for reports)."""
    spec = parse_cost_budget(spec_body)
    scope = scope_filter(spec, namespace=namespace, isolated=isolated)
    first, last = period_bounds(spec.period, spec.zone(), now)
    start, end = int(first.timestamp()), int(last.timestamp())
    until = max(start, min(end, floor_to(int(now.timestamp()), service.config.resolution_seconds)))
    spent, coverage, currency = (Decimal(0), 1.0, spec.currency) if until == start else \
        await _spend(service, spec, scope, start, until)
    if currency != spec.currency:
        raise SpecError("spec.currency", f"the spend is priced in {currency} (CostWeights "
                                         f"{spec.weights_name() or 'default'}); set currency: {currency}")
    reach = int(lookback_start(first, datetime.fromtimestamp(until, UTC)).timestamp())
    recent = spent if reach == start or until == start else (await _spend(service, spec, scope, reach, until))[0]
    projected = Decimal(repr(forecast(float(spent), float(recent), lookback=datetime.fromtimestamp(reach, UTC),
                                      now=datetime.fromtimestamp(until, UTC), period_end=last)))
    old = dict(previous or {})
    same_period = (old.get("period") or {}).get("start") == rfc3339(first)
    history = list(old.get("history") or [])
    if old.get("period") and not same_period:
        history.insert(0, {key: old[key] for key in ("amount", "spent", "percent", "currency") if key in old}
                       | {"start": old["period"].get("start"), "end": old["period"].get("end")})
    records = [dict(r) for r in (old.get("thresholds") or [])] if same_period else []
    known = {r.get("key") for r in records}
    crossed = []
    for threshold in spec.thresholds:
        value = spent if threshold.basis == "spent" else projected
        if threshold.key not in known and value * 100 >= spec.amount * threshold.number:
            crossed.append(Crossed(threshold, value, rfc3339(now)))
            records.append({"key": threshold.key, "percent": format(threshold.number, "f"), "basis": threshold.basis,
                            "crossedAt": rfc3339(now), "value": money(float(value))})
    conditions = old.get("conditions") or []
    status = {
        "observedGeneration": generation, "currency": spec.currency, "amount": money(float(spec.amount)),
        "period": {"start": rfc3339(first), "end": rfc3339(last)},
        "window": {"start": rfc3339(first), "end": rfc3339(datetime.fromtimestamp(until, UTC))},
        "spent": money(float(spent)), "forecast": money(float(projected)),
        "percent": _percent(spent, spec.amount), "forecastPercent": _percent(projected, spec.amount),
        "coverage": round(coverage, 6), "lastComputedTime": rfc3339(now), "thresholds": records,
        "history": history[:HISTORY],
        "conditions": _conditions(spec, spent, projected, generation, now, conditions),
    }
    return BudgetResult(status=status, crossed=tuple(crossed), spec=spec)


def _percent(value: Decimal, amount: Decimal) -> str:
    return format((value * 100 / amount).quantize(Decimal("0.01")), "f")


def _conditions(spec: CostBudgetSpec, spent: Decimal, projected: Decimal, generation: int, now: datetime,
                previous: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    over, over_forecast = spent >= spec.amount, projected >= spec.amount
    amount = f"{money(float(spec.amount))} {spec.currency}"
    return [
        condition(kind="Ready", status="True", reason="Computed", generation=generation, now=now, previous=previous,
                  message=f"spent {money(float(spent))} of {amount} this {spec.period.value} period"),
        condition(kind="Exceeded", status="True" if over else "False",
                  reason="SpentOverAmount" if over else "WithinAmount", generation=generation, now=now,
                  previous=previous, message=f"spent {money(float(spent))} {'≥' if over else '<'} {amount}"),
        condition(kind="ForecastExceeded", status="True" if over_forecast else "False",
                  reason="ForecastOverAmount" if over_forecast else "ForecastWithinAmount", generation=generation,
                  now=now, previous=previous,
                  message=f"forecast {money(float(projected))} {'≥' if over_forecast else '<'} {amount}"),
    ]
