"""CostReports: computed on create, on spec change, on their schedule, and after a price change.

The handlers only decide *when*; `kubetally.reports` decides *what*; `handlers.results` serves the
result at `status.resultPath` (recomputing it after a restart). Create and spec changes compute
at once; the timer computes a report when it has never been computed for its generation, when its
`nextComputeTime` has passed, or when a price version was added since (the ledger's prices stamp,
kept in an annotation). After a restart nothing is recomputed that is not due. A report outside the
admin namespaces is fenced to its own namespace's project. Both paths end in `recompute`, which
writes through the one writer, `Runtime.write_report` (kopf's patch is left to kopf's own progress).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from kubetally.domain.errors import SourceUnavailable, SpecError
from kubetally.domain.timeparse import parse_rfc3339, to_epoch
from kubetally.handlers.runtime import COMPUTED_AT_PRICES, GROUP, VERSION, Runtime
from kubetally.reports import ReportResult, ReportView, compute_report, failed_status

log = logging.getLogger(__name__)


async def compute(
    runtime: Runtime,
    namespace: str,
    name: str,
    spec: Mapping[str, Any],
    *,
    generation: int,
    now: datetime,
    previous: list[Mapping[str, Any]] | None = None,
) -> ReportResult:
    """Compute one report in its scope: its namespace's project, fenced unless an admin namespace."""
    return await compute_report(
        runtime.service,
        dict(spec),
        namespace=namespace,
        name=name,
        generation=generation,
        now=now,
        project=runtime.ledger.project_of(runtime.service.config.cluster, namespace),
        isolated=namespace not in runtime.admin_namespaces,
        previous=previous or [],
    )


async def _status_for(name: str, namespace: str, body: Mapping[str, Any], runtime: Runtime) -> dict[str, Any]:
    """The new status of one report (a failed status on InvalidSpec or MetricsUnavailable)."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    generation = int(meta.get("generation") or 0)
    now = datetime.fromtimestamp(runtime.service.clock(), UTC)
    previous = list(status.get("conditions") or [])
    try:
        result = await compute(runtime, namespace, name, body.get("spec") or {}, generation=generation, now=now,
                               previous=previous)
    except (SpecError, SourceUnavailable) as error:
        return failed_status(error, generation=generation, now=now, previous=previous)
    runtime.results[(namespace, name)] = ReportView(result.answer, result.query)
    return result.status


async def recompute(name: str, namespace: str, body: Mapping[str, Any], runtime: Runtime) -> None:
    """Compute a report and write its status with the prices stamp read before the computation (so a
    price version added meanwhile makes it due again): on create, on spec change, and when due."""
    stamp = runtime.ledger.prices_stamp()
    status = await _status_for(name, namespace, body, runtime)
    await runtime.write_report(namespace, name, status, stamp)


@kopf.on.create(GROUP, VERSION, "costreports")
@kopf.on.update(GROUP, VERSION, "costreports", field="spec")
async def changed(name: str, namespace: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await recompute(name, namespace or "", body, memo.runtime)


@kopf.on.event(GROUP, VERSION, "costreports")
def seen(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Keep the runtime's registry of reports current (event handlers add no finalizer)."""
    runtime: Runtime = memo.runtime
    body = event["object"]
    key = (str(body["metadata"].get("namespace", "")), str(body["metadata"]["name"]))
    if event["type"] == "DELETED":
        runtime.reports.pop(key, None)
        runtime.results.pop(key, None)
    else:
        runtime.reports[key] = dict(body)


def _epoch(stamp: object) -> int:
    """Unix seconds of a time the status holds; one that does not parse counts as past (recompute)."""
    try:
        return to_epoch(parse_rfc3339(str(stamp), "status.nextComputeTime"))
    except SpecError:
        return 0


def is_due(body: Mapping[str, Any], now: int, prices_stamp: str) -> bool:
    """Never computed for this generation, past nextComputeTime, or priced before the newest version."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    next_time = status.get("nextComputeTime")
    return bool(
        status.get("observedGeneration") != meta.get("generation")
        or next_time is None
        or _epoch(next_time) <= now
        or (meta.get("annotations") or {}).get(COMPUTED_AT_PRICES) != prices_stamp
    )


async def schedule_loop(runtime: Runtime, interval_seconds: float = 20.0) -> None:
    """Recompute due reports (a loop, not a kopf timer, which would add a finalizer that blocks
    deletion once the operator is gone)."""
    while True:
        await asyncio.sleep(interval_seconds)
        stamp = runtime.ledger.prices_stamp()
        for (namespace, name), body in list(runtime.reports.items()):
            if not is_due(body, runtime.service.clock(), stamp):
                continue
            try:
                await recompute(name, namespace, body, runtime)
            except Exception:
                log.exception("recomputing costreport %s/%s failed", namespace, name)
