"""CostReport results at `status.resultPath`: a path written into a status must answer, restarts included.

The operator keeps the last computation of each report in memory (`Runtime.results`). After a
restart that memory is empty while the statuses in the API server still name their result paths, so
a missing result is recomputed on demand, from the ledger, to the numbers of the status:

    spec   = the report's spec, when status.observedGeneration = metadata.generation
    window = status.window as an absolute pair "start,end", so a relative window (7d, lastweek)
             resolves to exactly the instants the status describes whatever the clock says now
    now    = status.lastComputedTime (what the first computation saw)
    scope  = the report's namespace, its project and the admin namespaces, as for any computation

Why recompute rather than store: the ledger already holds what a result is made of (every complete
hour and every price version), a recomputation is one report computation (the same cost as the
scheduled one) paid only by the first request after a restart, and a stored copy of up to 400,000
rows per report would be a second truth to keep in step with prices. The recomputed totals are
compared with status.totals; any difference (say the metrics store lost a live edge's samples) is
named in the answer's `warnings`, never hidden. The result is then kept like a computed one, and the
next computation of the report replaces it.

What cannot answer is a Kubernetes Status, never a stale or wrong table:

    404 NotFound            no such CostReport, or no status.window yet (never computed)
    503 ServiceUnavailable  the status is being recomputed: its spec changed (observedGeneration ≠
                            generation) or prices changed since (the prices-stamp annotation); Retry-After
    409 Conflict            the spec is invalid now, so status.window describes an earlier spec
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from kubetally.domain.errors import SourceUnavailable, SpecError
from kubetally.domain.timeparse import parse_rfc3339
from kubetally.handlers.costreports import compute
from kubetally.handlers.runtime import COMPUTED_AT_PRICES, GROUP, VERSION, Runtime
from kubetally.reports import NoResult, ReportView

log = logging.getLogger(__name__)

#: Seconds a client should wait for a report that is being recomputed (the schedule loop's interval).
RETRY_AFTER = 20
#: Deadline of the read of a report from the API server (seconds).
READ_TIMEOUT = 5.0


async def find_result(runtime: Runtime, namespace: str, name: str) -> ReportView:
    """The result of CostReport namespace/name: kept, or recomputed (see the module docstring)."""
    key = (namespace, name)
    kept = runtime.results.get(key)
    if kept is not None:
        return kept
    async with runtime.recomputing:
        kept = runtime.results.get(key)  # another request may have recomputed it meanwhile
        if kept is not None:
            return kept
        body = runtime.reports.get(key) or await _read(runtime, namespace, name)
        if body is None:
            raise NoResult(404, "NotFound", f"no costreport {namespace}/{name}")
        view = await _recompute(runtime, namespace, name, body)
        return runtime.results.setdefault(key, view)  # a fresh computation that landed meanwhile wins


async def _read(runtime: Runtime, namespace: str, name: str) -> dict[str, Any] | None:
    """The report from the API server (the watch may not have listed it yet after a restart)."""
    if runtime.api is None:
        return None
    try:
        body = await asyncio.wait_for(
            asyncio.to_thread(runtime.api.get_namespaced_custom_object, GROUP, VERSION, namespace, "costreports",
                              name, _request_timeout=READ_TIMEOUT),
            READ_TIMEOUT + 1,
        )
    except Exception as error:
        if getattr(error, "status", None) == 404:
            return None
        raise SourceUnavailable(f"the Kubernetes API did not answer for costreport {namespace}/{name}: "
                                f"{type(error).__name__}") from error
    return dict(body)


async def _recompute(runtime: Runtime, namespace: str, name: str, body: Mapping[str, Any]) -> ReportView:
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    window, computed = status.get("window") or {}, status.get("lastComputedTime")
    what = f"costreport {namespace}/{name}"
    if not (window.get("start") and window.get("end") and computed):
        raise NoResult(404, "NotFound", f"{what} has not been computed yet; its result appears with its status")
    generation = int(meta.get("generation") or 0)
    if status.get("observedGeneration") != generation:
        raise NoResult(503, "ServiceUnavailable", f"{what} changed (generation {generation}, status of "
                                                  f"{status.get('observedGeneration')}) and is being recomputed",
                       RETRY_AFTER)
    if (meta.get("annotations") or {}).get(COMPUTED_AT_PRICES) != runtime.ledger.prices_stamp():
        raise NoResult(503, "ServiceUnavailable", f"prices changed since {what} was computed; it is being "
                                                  "recomputed", RETRY_AFTER)
    spec = {key: value for key, value in dict(body.get("spec") or {}).items() if key not in ("start", "end")}
    spec["window"] = f"{window['start']},{window['end']}"
    try:
        now = parse_rfc3339(str(computed), "status.lastComputedTime")
        result = await compute(runtime, namespace, name, spec, generation=generation, now=now)
    except SpecError as error:
        raise NoResult(409, "Conflict", f"{what} has no result for its current spec, which is invalid: "
                                        f"{error}") from error
    recorded, recomputed = dict(status.get("totals") or {}), result.status["totals"]
    differs = sorted(key for key in recorded.keys() | recomputed.keys() if recorded.get(key) != recomputed.get(key))
    notes: tuple[str, ...] = ()
    if differs:
        notes = (f"recomputed from the ledger after a restart; {', '.join(differs)} differ from status.totals "
                 "(the metrics store no longer holds the same samples for the window's live edges)",)
        log.warning("%s recomputed with totals differing from its status: %s", what, ", ".join(differs))
    return ReportView(result.answer, result.query, notes)
