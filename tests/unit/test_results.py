"""`status.resultPath` after an operator restart (issue 12, bug 8), in process and fast; the e2e tier
restarts the real `kubetally run` (tests/e2e/test_operator.py).

A report is computed by the handler's own path (`handlers.costreports._status_for`) by "process 1",
whose in-memory results are then dropped: "process 2" (a new runtime over the same ledger) must serve
the result at the status's path with the status's numbers. The report's window is `today`, computed
at 2025-06-01T02:10:00Z: [00:00, 02:10) holds the documented topology's two ledger hours
(tests/unit/engine/topology.py) and ten empty live minutes. Hand-derived, Effective, per namespace:
shop 0.65, web 0.60, data 0.22, batch 0.0175, idle 2.1125; total 3.6. Process 2 runs a day later
(2025-06-02T03:17:00Z), when `today` would mean an empty day: only the recorded window gives 3.6.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from kubetally.api.app import build_app
from kubetally.api.metrics import Metrics
from kubetally.handlers.costreports import _status_for
from kubetally.handlers.results import find_result
from kubetally.handlers.runtime import COMPUTED_AT_PRICES
from kubetally.ledger.store import DuckDBLedger
from kubetally.service import CostService
from kubetally.sources.catalogue import SourceConfig
from tests.unit.api.test_app import WEIGHTS, NoLiveData
from tests.unit.engine import topology
from tests.unit.ledger.test_store import hour_batch

COMPUTED = datetime(2025, 6, 1, 2, 10, tzinfo=UTC)
RESTARTED = datetime(2025, 6, 2, 3, 17, tzinfo=UTC)
SPEC = {"window": "today", "aggregate": ["namespace"], "topN": 2}
PATH = "/apis/query.kubetally.io/v1alpha1/namespaces/ops/costreports/r/result"
EXPECTED = {"shop": 0.65, "web": 0.60, "data": 0.22, "batch": 0.0175, "__idle__": 2.1125}


class Clock:
    def __init__(self) -> None:
        self.now = int(COMPUTED.timestamp())

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[DuckDBLedger]:
    ledger = DuckDBLedger(tmp_path / "l.duckdb")
    for hour in (0, 1):
        ledger.write_hour("c1", topology.T0 + hour * 3600, hour_batch(hour), 1.0, ingested_at=topology.T0)
    yield ledger
    ledger.close()


def runtime_over(ledger: DuckDBLedger, clock: Clock) -> SimpleNamespace:
    """What `kubetally.run.startup` builds, minus Kubernetes and the ingest loop."""
    service = CostService(ledger, NoLiveData(), SourceConfig(cluster="c1"), clock=clock)
    service.record_weights("default", WEIGHTS)
    return SimpleNamespace(service=service, ledger=ledger, results={}, reports={}, api=None,
                           recomputing=asyncio.Lock(), admin_namespaces=frozenset({"ops"}))


async def computed_body(ledger: DuckDBLedger, clock: Clock) -> dict[str, Any]:
    """The report as the API server holds it after process 1 computed it (status and prices stamp)."""
    first = runtime_over(ledger, clock)
    body: dict[str, Any] = {"metadata": {"name": "r", "namespace": "ops", "generation": 2}, "spec": SPEC}
    body["status"] = await _status_for("r", "ops", body, first)  # type: ignore[arg-type]
    body["metadata"]["annotations"] = {COMPUTED_AT_PRICES: ledger.prices_stamp()}
    assert first.results  # process 1 served it from memory
    return body


async def serve(runtime: SimpleNamespace) -> TestClient[Any, Any]:
    async def ready() -> bool:
        return True

    client: TestClient[Any, Any] = TestClient(TestServer(build_app(runtime.service, Metrics(), ready,
                                                                   partial(find_result, runtime))))  # type: ignore[arg-type]
    await client.start_server()
    return client


@pytest.fixture
async def restarted(ledger: DuckDBLedger) -> AsyncIterator[tuple[dict[str, Any], SimpleNamespace, TestClient[Any, Any]]]:
    """(the report's body, process 2's runtime with nothing in memory, its HTTP client), a day later."""
    clock = Clock()
    body = await computed_body(ledger, clock)
    clock.now = int(RESTARTED.timestamp())
    second = runtime_over(ledger, clock)
    client = await serve(second)
    yield body, second, client
    await client.close()


async def test_the_result_path_answers_after_a_restart_with_the_status_numbers(
    restarted: tuple[dict[str, Any], SimpleNamespace, TestClient[Any, Any]],
) -> None:
    body, second, client = restarted
    status = body["status"]
    assert status["resultPath"] == PATH
    assert (status["totals"]["cost"], status["rowCount"]) == ("3.600000", 5)
    assert status["window"] == {"start": "2025-06-01T00:00:00Z", "end": "2025-06-01T02:10:00Z"}
    second.reports[("ops", "r")] = body  # the watch has listed it
    response = await client.get(PATH)
    assert response.status == 200
    answer = await response.json()
    assert {name: item["cost"] for name, item in answer["data"][0].items()} == pytest.approx(EXPECTED, abs=1e-12)
    assert (answer["window"]["start"], answer["window"]["end"]) == ("2025-06-01T00:00:00Z", "2025-06-01T02:10:00Z")
    assert not any("differ" in warning for warning in answer["warnings"])
    csv = await (await client.get(PATH, params={"format": "csv"})).text()
    assert len(csv.strip().splitlines()) == 1 + status["rowCount"]
    assert list(second.results) == [("ops", "r")]  # kept: the next request computes nothing


async def test_before_the_watch_lists_it_the_report_is_read_from_the_api_server(
    restarted: tuple[dict[str, Any], SimpleNamespace, TestClient[Any, Any]],
) -> None:
    body, second, client = restarted
    reads: list[tuple[object, ...]] = []

    class Api:
        def get_namespaced_custom_object(self, *args: object, **kwargs: object) -> dict[str, Any]:
            reads.append(args)
            if args[3:] != ("costreports", "r"):
                raise type("ApiException", (Exception,), {"status": 404})()
            return body

    second.api = Api()
    two = await asyncio.gather(client.get(PATH), client.get(PATH))
    assert [response.status for response in two] == [200, 200]
    totals = [sum(item["cost"] for item in (await response.json())["data"][0].values()) for response in two]
    assert totals == pytest.approx([3.6, 3.6], abs=1e-12)
    assert len(reads) == 1  # concurrent requests after a restart recompute once
    missing = await client.get("/apis/kubetally.io/v1alpha1/namespaces/ops/costreports/nobody/result")
    assert (missing.status, (await missing.json())["reason"]) == (404, "NotFound")


@pytest.mark.parametrize(
    ("change", "code", "reason", "said"),
    [
        ({"metadata": {"generation": 3}}, 503, "ServiceUnavailable", "is being recomputed"),
        ({"metadata": {"annotations": {COMPUTED_AT_PRICES: "1-0"}}}, 503, "ServiceUnavailable", "prices changed"),
        ({"status": {"window": None}}, 404, "NotFound", "has not been computed yet"),
        ({"spec": {"aggregate": ["colour"]}}, 409, "Conflict", "colour"),
    ],
)
async def test_what_cannot_be_recomputed_is_a_status_never_a_wrong_table(
    restarted: tuple[dict[str, Any], SimpleNamespace, TestClient[Any, Any]],
    change: dict[str, dict[str, Any]], code: int, reason: str, said: str,
) -> None:
    body, second, client = restarted
    second.reports[("ops", "r")] = {part: {**body[part], **change.get(part, {})} for part in body}
    response = await client.get(PATH)
    payload = await response.json()
    assert (response.status, payload["kind"], payload["reason"]) == (code, "Status", reason)
    assert said in payload["message"]
    assert (response.headers.get("Retry-After") == "20") is (code == 503)
    assert second.results == {}


async def test_serve_has_no_report_results(ledger: DuckDBLedger) -> None:
    runtime = runtime_over(ledger, Clock())

    async def ready() -> bool:
        return True

    async with TestClient(TestServer(build_app(runtime.service, Metrics(), ready))) as client:
        response = await client.get(PATH)
        assert response.status == 404
        assert "served by the operator (kubetally run)" in (await response.json())["message"]
