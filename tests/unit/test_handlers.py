"""The operator's scheduling decisions, in process and fast (the e2e tier runs them for real).

`is_due` decides when a report is recomputed; `seen` keeps the registry the schedule loop walks;
both the create/update handler and the schedule loop write through `Runtime.write_report`.
T = 2025-06-01T00:00:00Z = 1748736000.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import kopf
import pytest

from kubetally.handlers.costreports import changed, is_due, seen
from kubetally.handlers.runtime import COMPUTED_AT_PRICES, Runtime

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


class Recorder:
    """A CustomObjectsApi that records the patches it is sent (method, path arguments, body, deadline)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...], object]] = []

    def patch_namespaced_custom_object_status(self, *args: object, _request_timeout: object = None) -> None:
        self.calls.append(("status", args, _request_timeout))

    def patch_namespaced_custom_object(self, *args: object, _request_timeout: object = None) -> None:
        self.calls.append(("object", args, _request_timeout))


async def test_the_one_writer_patches_the_status_then_the_prices_stamp_with_deadlines() -> None:
    api = Recorder()
    runtime = Runtime(service=None, ledger=None, api=api)  # type: ignore[arg-type]
    await runtime.write_report("ns", "r", {"observedGeneration": 2}, "3-100")
    assert api.calls == [
        ("status", ("kubetally.io", "v1alpha1", "ns", "costreports", "r", {"status": {"observedGeneration": 2}}), 10.0),
        ("object", ("kubetally.io", "v1alpha1", "ns", "costreports", "r",
                    {"metadata": {"annotations": {"kubetally.io/prices-version": "3-100"}}}), 10.0),
    ]


async def test_create_and_spec_changes_write_through_the_one_writer() -> None:
    """An invalid spec needs no ledger hours: the handler writes the failed status with the stamp read first."""
    writes: list[tuple[str, str, dict[str, Any], str]] = []

    async def write_report(namespace: str, name: str, status: dict[str, Any], stamp: str) -> None:
        writes.append((namespace, name, status, stamp))

    runtime = SimpleNamespace(
        service=SimpleNamespace(clock=lambda: T, config=SimpleNamespace(cluster="c1", resolution_seconds=60)),
        ledger=SimpleNamespace(prices_stamp=lambda: "3-100", project_of=lambda cluster, namespace: None),
        admin_namespaces=frozenset(), results={}, write_report=write_report)
    report = body(generation=4) | {"spec": {"window": "fortnight"}}
    # kopf passes more keyword arguments (patch, diff, old, new, logger...); the handler takes them as **_.
    await changed(name="r", namespace="ns", body=report, memo=kopf.Memo(runtime=runtime))  # type: ignore[call-arg, arg-type, misc]
    ((namespace, name, status, stamp),) = writes
    assert (namespace, name, stamp, status["observedGeneration"]) == ("ns", "r", "3-100", 4)
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("Ready", "False", "InvalidSpec"), ("Degraded", "True", "InvalidSpec")]
    assert runtime.results == {}
