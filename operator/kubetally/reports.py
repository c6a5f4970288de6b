"""A CostReport, computed: from its spec and the time to the status the operator writes.

The kopf handlers stay thin: they call `compute_report` and write the status it returns. So this
module decides what a report means (and what its `status.resultPath` answers: `ReportView`, or
`NoResult` as a Kubernetes Status; the HTTP API and the handlers both import them from here, so the
two never import each other):

- the window is resolved at `now` in the report's time zone, and floored to the resolution;
- a report outside the admin namespaces sees only its own namespace's project (tenant isolation):
  its filter is ANDed with `project:"<project>"` (or `namespace:"<ns>"` when the namespace belongs
  to no project), so neither its rows nor its idle share can show another tenant's costs. That one
  `Scope` (`domain.scope`) is what every query of the report obeys, the storage query included;
- `totals`: `cost` = Σ of every row (workloads, and idle rows when `idle`), `idleCost` = Σ idle
  rows, `cpuCoreHours` / `memoryGiBHours` = Σ basis quantities of the workload rows, and
  `storageCost` / `storageGiBHours` = the Alauda Storage item of the same scope, window and method,
  absent when the scope names a pod-level field a volume does not carry (the Ready message says so);
- `rows`: the top N rows by cost; `rowCount` counts them all; the full result is kept for
  `resultPath`. Money is written as decimal strings (6 decimals), never floats;
- conditions: `Ready` (True once computed; False with InvalidSpec, MetricsUnavailable) and
  `Degraded` (True with InvalidSpec; with DataGap when coverage < 1, NoData when no row has cost; MetricsUnavailable
  when the store did not answer for the live parts of the window within the live budget: the
  report then holds the ledger's hours, its message the warning, and it is recomputed within
  `DEGRADED_RETRY` rather than at its next scheduled time).
  `lastTransitionTime` changes only when a condition's status changes. `condition` builds every
  condition the operator writes, CostWeights' included.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from kubetally.domain.errors import SpecError
from kubetally.domain.resources import CostReportSpec, parse_cost_report
from kubetally.domain.scope import Scope
from kubetally.domain.timeparse import format_rfc3339, to_epoch
from kubetally.domain.vocabulary import Item, Method, UsageKind
from kubetally.domain.window import CalendarPeriod, Window
from kubetally.engine.query import IDLE, WORKLOAD, CostQuery, CostRow, UsageQuery, UsageRow
from kubetally.service import CostAnswer, CostService

#: Bytes a status may take at most (etcd stores the whole object; CORRECTNESS.md P7).
MAX_STATUS_BYTES = 256 * 1024
#: A report computed while the store did not answer is recomputed this soon (or on schedule if sooner).
DEGRADED_RETRY = timedelta(minutes=5)
_MONEY = Decimal("0.000001")


def money(value: float) -> str:
    """A float as a decimal string with 6 decimals (`0.650000`)."""
    return format(Decimal(repr(value)).quantize(_MONEY), "f")


def rfc3339(moment: datetime) -> str:
    """An aware instant as the status writes it (`domain.timeparse.format_rfc3339`, the one writer)."""
    return format_rfc3339(to_epoch(moment))


@dataclass(frozen=True, slots=True)
class ReportResult:
    """Everything a report's status and result path are made of."""

    status: dict[str, Any]
    rows: tuple[CostRow, ...]
    currency: str
    answer: CostAnswer
    query: CostQuery


@dataclass(frozen=True, slots=True)
class ReportView:
    """A CostReport's whole result, as its `status.resultPath` renders it; `warnings` join the answer's."""

    answer: CostAnswer
    query: CostQuery
    warnings: tuple[str, ...] = ()


class NoResult(Exception):
    """Why a CostReport's result cannot be served now: an HTTP code, a Status reason and a message;
    `retry_after` (seconds) when it will be there soon."""

    def __init__(self, code: int, reason: str, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.retry_after = code, reason, message, retry_after


#: Finds the result of CostReport (namespace, name), or raises NoResult (the operator: handlers.results).
ResultFinder = Callable[[str, str], Awaitable[ReportView]]


async def no_results(namespace: str, name: str) -> ReportView:
    """`kubetally serve` has no CostReports: every result path is a 404 that says where they are."""
    raise NoResult(404, "NotFound", f"no costreport {namespace}/{name} here: CostReport results are served by the "
                                    "operator (kubetally run), at the path in the report's status.resultPath")


def condition(
    *,
    kind: str,
    status: str,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
    previous: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """One metav1.Condition of type `kind`, for CostReports and CostWeights alike. Its
    `lastTransitionTime` is `now` when the type is new or its status changed, else the previous one's."""
    old = next((c for c in previous if c.get("type") == kind), None)
    since = rfc3339(now) if old is None or old.get("status") != status else old.get("lastTransitionTime", rfc3339(now))
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": since,
    }


def failed_status(
    error: Exception, *, generation: int, now: datetime, previous: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """Status for a report (or CostWeights) that could not be computed (recorded): InvalidSpec or
    MetricsUnavailable. Both are Degraded=True: the object is not served as it asks (GitOps tools read
    Degraded as "look at me"; manifests/argocd maps it to Argo CD's Degraded health)."""
    reason = "InvalidSpec" if isinstance(error, SpecError) else str(getattr(error, "reason", "MetricsUnavailable"))
    degraded = "True"
    return {
        "observedGeneration": generation,
        "conditions": [
            condition(kind="Ready", status="False", reason=reason, message=str(error), generation=generation,
                      now=now, previous=previous),
            condition(kind="Degraded", status=degraded, reason=reason, message=str(error), generation=generation,
                      now=now, previous=previous),
        ],
    }


def report_query(spec_body: Mapping[str, Any], *, now: datetime, resolution_seconds: int) -> tuple[CostReportSpec,
                                                                                                CostQuery]:
    """A report's spec, validated, and the query it asks at `now`: every rule that can make a report
    InvalidSpec before anything is computed. The admission webhook and `kubetally validate` run this
    very function (`kubetally.validation`), so that they and the condition never disagree."""
    spec: CostReportSpec = parse_cost_report(spec_body)
    window, step = spec.resolve_span(now, resolution_seconds)
    query = CostQuery(
        window=window,
        step_seconds=step,
        time_zone=spec.zone(),
        aggregate=spec.aggregate_keys(),
        filter=spec.parsed_filter(),
        method=spec.method,
        idle=spec.idle,
        share_idle=spec.share_idle,
        share_split=spec.share_split,
        idle_by_node=spec.idle_by_node,
    )
    spec.parsed_schedule()
    return spec, query


async def compute_report(
    service: CostService,
    spec_body: Mapping[str, Any],
    *,
    namespace: str,
    name: str,
    generation: int,
    now: datetime,
    project: str | None,
    isolated: bool,
    previous: Sequence[Mapping[str, Any]] = (),
) -> ReportResult:
    """Compute a report (SpecError and SourceUnavailable propagate; see `failed_status`)."""
    spec, query = report_query(spec_body, now=now, resolution_seconds=service.config.resolution_seconds)
    window = query.window
    report_scope = Scope.of_report(query.filter, namespace=namespace, project=project, isolated=isolated)
    query = replace(query, filter=report_scope.filter)
    answer = await service.cost(query, spec.custom_weights_name())
    storage = await _storage(service, report_scope, window, spec.method)
    rows = answer.table.rows
    workload = [row for row in rows if row.kind == WORKLOAD]
    by_cost = sorted(rows, key=lambda row: -row.cost)
    totals = {
        "cost": money(sum(row.cost for row in rows)),
        "idleCost": money(sum(row.cost for row in rows if row.kind == IDLE)),
        **({} if storage is None else {"storageCost": money(sum(item.cost for item in storage))}),
        "cpuCoreHours": money(sum(row.cpu_core_hours for row in workload)),
        "memoryGiBHours": money(sum(row.memory_gib_hours for row in workload)),
        **({} if storage is None else {"storageGiBHours": money(sum(item.usage for item in storage))}),
    }
    coverage = answer.coverage
    degraded = (
        (
            "MetricsUnavailable" if answer.plan.warnings else "DataGap",
            f"data coverage of the window is {coverage:.4f}" + "".join(f"; {w}" for w in answer.plan.warnings),
        )
        if coverage < 1
        else (
            ("NoData", "no workload had any cost in the window") if not any(row.cost > 0 for row in workload) else None
        )
    )
    next_time = spec.parsed_schedule().next_after(now)
    if answer.plan.warnings:
        next_time = min(next_time, now + DEGRADED_RETRY)
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "window": {"start": rfc3339(window.start), "end": rfc3339(window.end)},
        "lastComputedTime": rfc3339(now),
        "nextComputeTime": rfc3339(next_time),
        "currency": answer.table.currency,
        "priceSource": answer.table.price_source,
        "coverage": round(coverage, 6),
        "totals": totals,
        "rowCount": len(rows),
        "resultPath": f"/apis/query.kubetally.io/v1alpha1/namespaces/{namespace}/costreports/{name}/result",
        "conditions": [
            condition(
                kind="Ready",
                status="True",
                reason="Computed",
                message=f"{len(rows)} rows over {window.seconds // 3600} h"
                + (f"; {report_scope.storage_note}" if report_scope.storage_note else ""),
                generation=generation,
                now=now,
                previous=previous,
            ),
            condition(
                kind="Degraded",
                status="True" if degraded else "False",
                reason=degraded[0] if degraded else "Complete",
                message=degraded[1] if degraded else "every hour of the window had data",
                generation=generation,
                now=now,
                previous=previous,
            ),
        ],
    }
    status["rows"], status["truncated"] = _top_rows(by_cost, spec.top_n, status)
    return ReportResult(status=status, rows=rows, currency=answer.table.currency, answer=answer, query=query)


async def _storage(
    service: CostService, report_scope: Scope, window: Window, method: Method
) -> tuple[UsageRow, ...] | None:
    """The Alauda Storage rows of the report's scope over its window, or None when the scope cannot
    be decided on volumes (`Scope.on_volumes`): storage is then not reported rather than guessed."""
    if not report_scope.on_volumes:
        return None
    period = CalendarPeriod(window=window, first_day=window.start.date(), last_day=window.end.date())
    query = UsageQuery(periods=(period,), kind=UsageKind.CLUSTER_ALL, item=Item.STORAGE, method=method,
                       filter=report_scope.filter)
    return await service.usage(query)


def _row(row: CostRow) -> dict[str, Any]:
    return {
        "name": row.name,
        "key": list(row.key),
        "cost": money(row.cost),
        "costRatio": money(row.cost_ratio),
        "cpuCoreHours": money(row.cpu_core_hours),
        "memoryGiBHours": money(row.memory_gib_hours),
        "properties": dict(row.properties),
    }


def _top_rows(rows: Sequence[CostRow], top_n: int, status: Mapping[str, Any]) -> tuple[list[dict[str, Any]], bool]:
    """The top N rows, fewer if the status would pass MAX_STATUS_BYTES (then truncated=True)."""
    import json

    chosen = [_row(row) for row in rows[:top_n]]
    base = len(json.dumps(status))
    while chosen and base + len(json.dumps(chosen)) > MAX_STATUS_BYTES - 1024:
        chosen = chosen[: len(chosen) // 2]
    return chosen, len(chosen) < len(rows)
