"""CostReports: computed on create, on spec change, on their schedule, and after a price change.

The handlers only decide *when*; `kubetally.reports` decides *what*. Create and spec changes compute
at once; the timer computes a report when it has never been computed for its generation, when its
`nextComputeTime` has passed, or when a price version was added since (the ledger's prices stamp,
kept in an annotation). After a restart nothing is recomputed that is not due. A report outside the
admin namespaces is fenced to its own namespace's project.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf

from kubetally.domain.errors import SourceUnavailable, SpecError
from kubetally.handlers.runtime import GROUP, VERSION, Runtime
from kubetally.reports import compute_report, failed_status

_COMPUTED_AT_PRICES = "kubetally.io/prices-version"


async def _compute(
    name: str,
    namespace: str,
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    runtime: Runtime,
) -> None:
    generation = int(meta.get("generation") or 0)
    now = datetime.fromtimestamp(runtime.service.clock(), UTC)
    previous = list(status.get("conditions") or [])
    isolated = namespace not in runtime.options.admin_namespaces
    try:
        result = await compute_report(
            runtime.service,
            dict(spec),
            namespace=namespace,
            name=name,
            generation=generation,
            now=now,
            project=runtime.ledger.project_of(runtime.service.config.cluster, namespace),
            isolated=isolated,
            previous=previous,
        )
    except (SpecError, SourceUnavailable) as error:
        patch.status.update(failed_status(error, generation=generation, now=now, previous=previous))
        return
    patch.status.update(result.status)
    patch.metadata.setdefault("annotations", {})[_COMPUTED_AT_PRICES] = runtime.ledger.prices_stamp()


@kopf.on.create(GROUP, VERSION, "costreports")
@kopf.on.update(GROUP, VERSION, "costreports", field="spec")
async def changed(
    name: str,
    namespace: str | None,
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    await _compute(name, namespace or "", spec, meta, status, patch, memo.runtime)


@kopf.timer(GROUP, VERSION, "costreports", interval=20, initial_delay=10, idle=5)
async def tick(
    name: str,
    namespace: str | None,
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    runtime: Runtime = memo.runtime
    now = runtime.service.clock()
    next_time = status.get("nextComputeTime")
    priced_at = (meta.get("annotations") or {}).get(_COMPUTED_AT_PRICES)
    due = (
        status.get("observedGeneration") != meta.get("generation")
        or next_time is None
        or datetime.fromisoformat(str(next_time).replace("Z", "+00:00")).timestamp() <= now
        or priced_at != runtime.ledger.prices_stamp()
    )
    if due:
        await _compute(name, namespace or "", spec, meta, status, patch, runtime)
