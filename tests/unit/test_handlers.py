"""The operator's scheduling decisions, in process and fast (the e2e tier runs them for real).

`is_due` decides when a report is recomputed; `seen` keeps the registry the schedule loop walks.
T = 2025-06-01T00:00:00Z = 1748736000.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import kopf
import pytest

from kubetally.handlers.costreports import is_due, seen
from kubetally.handlers.runtime import COMPUTED_AT_PRICES

T = 1748736000


def body(generation: int = 2, observed: int | None = 2, next_time: str | None = "2025-06-01T01:00:00Z",
         stamp: str | None = "3-100") -> dict[str, Any]:
    annotations = {COMPUTED_AT_PRICES: stamp} if stamp else {}
    status: dict[str, Any] = {"observedGeneration": observed} if observed is not None else {}
    if next_time:
        status["nextComputeTime"] = next_time
    return {"metadata": {"name": "r", "namespace": "ns", "generation": generation, "annotations": annotations},
            "status": status}


@pytest.mark.parametrize(
    ("report", "now", "due"),
    [
        (body(), T + 600, False),                       # computed, next at 01:00, same prices
        (body(), T + 3600, True),                       # 01:00 reached
        (body(generation=3), T + 600, True),            # spec changed since
        (body(observed=None), T + 600, True),           # never computed
        (body(next_time=None), T + 600, True),          # no schedule recorded
        (body(stamp="2-50"), T + 600, True),            # computed before the newest price version
        (body(stamp=None), T + 600, True),              # stamp unknown
    ],
)
def test_when_a_report_is_due(report: dict[str, Any], now: int, due: bool) -> None:
    assert is_due(report, now, "3-100") is due


def test_the_registry_follows_the_watch() -> None:
    runtime = SimpleNamespace(reports={}, results={("ns", "r"): "old"})
    memo = kopf.Memo(runtime=runtime)
    seen(event={"type": "ADDED", "object": body()}, memo=memo)
    assert list(runtime.reports) == [("ns", "r")]
    seen(event={"type": "DELETED", "object": body()}, memo=memo)
    assert runtime.reports == {}
    assert runtime.results == {}
