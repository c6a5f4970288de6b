"""CostReports: computed on create, on spec change, on their schedule, and after a price change.

The handlers only decide *when*; `kubetally.reports` decides *what*; `handlers.results` serves the
result at `status.resultPath` (recomputing it after a restart). Create and spec changes compute
at once; the timer computes a report when it has never been computed for its generation, when its
`nextComputeTime` has passed, or when a price version was added since (the ledger's prices stamp,
kept in an annotation). After a restart nothing is recomputed that is not due. A report outside the
admin namespaces is fenced to its own namespace's project.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from kubetally.api.app import ReportView
from kubetally.domain.errors import SourceUnavailable, SpecError
from kubetally.handlers.runtime import COMPUTED_AT_PRICES, GROUP, VERSION, Runtime
from kubetally.reports import ReportResult, compute_report, failed_status

log = logging.getLogger(__name__)


async def compute(
    runtime: Runtime,
    namespace: str,
    name: str,
    spec: Mapping[str, Any],
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
        isolated=namespace not in runtime.options.admin_namespaces,
        previous=previous or [],
    )


async def _status_for(name: str, namespace: str, body: Mapping[str, Any], runtime: Runtime) -> dict[str, Any]:
    """The new status of one report (a failed status on InvalidSpec or MetricsUnavailable)."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    generation = int(meta.get("generation") or 0)
    now = datetime.fromtimestamp(runtime.service.clock(), UTC)
    previous = list(status.get("conditions") or [])
    try:
        result = await compute(runtime, namespace, name, body.get("spec") or {}, generation, now, previous)
    except (SpecError, SourceUnavailable) as error:
        return failed_status(error, generation=generation, now=now, previous=previous)
    runtime.results[(namespace, name)] = ReportView(result.answer, result.query)
    return result.status


async def _compute(name: str, namespace: str, body: Mapping[str, Any], patch: kopf.Patch, runtime: Runtime) -> None:
    stamp = runtime.ledger.prices_stamp()
    patch.status.update(await _status_for(name, namespace, body, runtime))
    patch.metadata.setdefault("annotations", {})[COMPUTED_AT_PRICES] = stamp


@kopf.on.create(GROUP, VERSION, "costreports")
@kopf.on.update(GROUP, VERSION, "costreports", field="spec")
async def changed(
    name: str, namespace: str | None, body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any
) -> None:
    await _compute(name, namespace or "", body, patch, memo.runtime)


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


def is_due(body: Mapping[str, Any], now: int, prices_stamp: str) -> bool:
    """Never computed for this generation, past nextComputeTime, or priced before the newest version."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    next_time = status.get("nextComputeTime")
    return bool(
        status.get("observedGeneration") != meta.get("generation")
        or next_time is None
        or datetime.fromisoformat(str(next_time).replace("Z", "+00:00")).timestamp() <= now
        or (meta.get("annotations") or {}).get(COMPUTED_AT_PRICES) != prices_stamp
    )


async def schedule_loop(runtime: Runtime, interval_seconds: float = 20.0) -> None:
    """Recompute due reports; patch their status through the Kubernetes API (not a kopf timer, which
    would add a finalizer that blocks deletion once the operator is gone)."""
    while True:
        await asyncio.sleep(interval_seconds)
        stamp = runtime.ledger.prices_stamp()
        for (namespace, name), body in list(runtime.reports.items()):
            if not is_due(body, runtime.service.clock(), stamp):
                continue
            try:
                status = await _status_for(name, namespace, body, runtime)
                await asyncio.to_thread(runtime.patch_report, namespace, name, status, stamp)
            except Exception:
                log.exception("recomputing costreport %s/%s failed", namespace, name)
