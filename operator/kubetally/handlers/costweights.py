"""CostWeights → price versions in the ledger, with Ready and Degraded conditions (Recorded or InvalidSpec).

A changed spec becomes a new price version (from its effectiveFrom, or the next full hour), so hours
already priced keep their prices; the ledger's prices stamp changes, so reports are recomputed on
their next tick (and not after a mere restart).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf

from kubetally.domain.errors import SpecError
from kubetally.domain.timeparse import format_rfc3339
from kubetally.handlers.runtime import GROUP, VERSION, Runtime
from kubetally.reports import condition, failed_status


@kopf.on.resume(GROUP, VERSION, "costweights")
@kopf.on.create(GROUP, VERSION, "costweights")
@kopf.on.update(GROUP, VERSION, "costweights", field="spec")
def record(
    name: str, spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo, **_: Any
) -> None:
    runtime: Runtime = memo.runtime
    generation = int(meta.get("generation") or 0)
    now = datetime.fromtimestamp(runtime.service.clock(), UTC)
    previous = list(status.get("conditions") or [])
    try:
        changed = runtime.service.record_weights(name, dict(spec))
    except SpecError as error:
        patch.status.update(failed_status(error, generation=generation, now=now, previous=previous))
        return
    del changed  # reports see the new version through the ledger's prices stamp
    versions = runtime.ledger.price_versions(name)
    newest = format_rfc3339(versions[-1].effective_from)
    message = f"{len(versions)} price version(s); the newest prices from {newest}"
    ready = condition(kind="Ready", status="True", reason="Recorded", generation=generation, now=now,
                      previous=previous, message=message)
    degraded = condition(kind="Degraded", status="False", reason="Recorded", generation=generation, now=now,
                         previous=previous, message=message)
    patch.status.update({"observedGeneration": generation, "versions": len(versions), "effectiveFrom": newest,
                         "conditions": [ready, degraded]})


@kopf.on.event(GROUP, VERSION, "costweights")
def seen(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Keep the names of the CostWeights in the cluster (event handlers add no finalizer); a deleted one
    leaves the list, its versions stay in the ledger for the hours they priced."""
    runtime: Runtime = memo.runtime
    name = str(event["object"]["metadata"]["name"])
    if event["type"] == "DELETED":
        runtime.weights.discard(name)
    else:
        runtime.weights.add(name)
