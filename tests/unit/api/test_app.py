"""The HTTP API in process (aiohttp's test server) over a ledger holding the documented topology.

Expected numbers are the hand-computed table of tests/unit/engine/topology.py: Effective cost per
namespace shop 0.65, web 0.60, data 0.22, batch 0.0175, idle 2.1125 (window 00:00–02:00 on
2025-06-01); Request cost per pod web-1 0.30, burst-1 0.30, api-1 0.60, etl-1 0, agent-n3 0.07,
job-1 0.0175; Alauda Cpu Effective per project alpha 8.5 core-h / 0.85, beta 2.25 / 0.1625.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from kubetally.api.app import build_app
from kubetally.api.metrics import Metrics
from kubetally.ledger.store import DuckDBLedger
from kubetally.service import CostService
from kubetally.sources.catalogue import SourceConfig
from kubetally.sources.prometheus import RangeSeries
from tests.unit.engine import topology
from tests.unit.ledger.test_store import hour_batch

WEIGHTS = {
    "currency": "CNY", "weights": {"cpu": "0.5", "memory": "0.5"},
    "unitPrices": {"cpuCoreHour": "0.05", "memoryGiBHour": "0.01", "storageGiBHour": "0.0001"},
    "nodePrices": [{"selector": {"matchLabels": {"node.kubernetes.io/instance-type": "big"}}, "hourly": "0.8"}],
    "storageClassPrices": [{"storageClassName": "ssd", "gibHour": "0.0002"}],
}
WINDOW = "2025-06-01T00:00:00Z,2025-06-01T02:00:00Z"


class NoLiveData:
    """A metrics store with nothing in it (the ledger answers every whole hour)."""

    async def query_range(self, query: str, start: int, end: int, step: int) -> list[RangeSeries]:
        return []


def topology_service(tmp_path: Path) -> CostService:
    """The service over a ledger holding the topology's two hours, priced by WEIGHTS, at 02:00."""
    ledger = DuckDBLedger(tmp_path / "l.duckdb")
    for hour in (0, 1):
        ledger.write_hour("c1", topology.T0 + hour * 3600, hour_batch(hour), 1.0, ingested_at=topology.T0)
    service = CostService(ledger, NoLiveData(), SourceConfig(cluster="c1"), clock=lambda: topology.T0 + 7200)
    service.record_weights("default", WEIGHTS)
    return service


async def ready() -> bool:
    return True


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    service = topology_service(tmp_path)
    async with TestClient(TestServer(build_app(service, Metrics(), ready))) as test_client:
        yield test_client
    service.ledger.close()


def by_name(body: dict[str, Any], step: int = 0) -> dict[str, float]:
    return {name: item["cost"] for name, item in body["data"][step].items()}


async def test_v2_cost_by_namespace_with_idle(client: TestClient[Any, Any]) -> None:
    response = await client.get("/v2/cost", params={"window": WINDOW, "aggregate": "namespace", "method": "Effective"})
    assert response.status == 200
    body = await response.json()
    assert by_name(body) == pytest.approx({"shop": 0.65, "web": 0.60, "data": 0.22, "batch": 0.0175,
                                           "__idle__": 2.1125})
    shop = body["data"][0]["shop"]
    assert (shop["start"], shop["end"]) == ("2025-06-01T00:00:00Z", "2025-06-01T02:00:00Z")
    assert shop["costRatio"] == pytest.approx(0.65 / 3.6)
    assert shop["cpuCoreRequestAverage"] == pytest.approx(2.0)
    assert body["currency"] == "CNY"


async def test_v2_cost_defaults_to_request_per_pod(client: TestClient[Any, Any]) -> None:
    body = await (await client.get("/v2/cost", params={"window": WINDOW, "idle": "false"})).json()
    assert by_name(body) == pytest.approx({"web-1": 0.30, "burst-1": 0.30, "api-1": 0.60, "etl-1": 0.0,
                                           "agent-n3": 0.07, "job-1": 0.0175})
    web = body["data"][0]["web-1"]
    assert web["properties"]["namespace"] == "shop"
    assert web["properties"]["controllerKind"] == "Deployment"
    assert web["properties"]["labels"] == {"app": "web"}


async def test_v2_cost_steps_and_csv(client: TestClient[Any, Any]) -> None:
    body = await (await client.get("/v2/cost", params={"window": WINDOW, "step": "1h", "aggregate": "namespace",
                                                        "method": "Effective"})).json()
    assert [by_name(body, 0)["shop"], by_name(body, 1)["shop"]] == pytest.approx([0.35, 0.30])
    response = await client.get("/v2/cost", params={"window": WINDOW, "aggregate": "namespace", "format": "csv",
                                                     "method": "Effective"})
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    lines = (await response.text()).strip().splitlines()
    assert lines[0].startswith("start,end,name")
    assert len(lines) == 1 + 5


async def test_alauda_usage_and_the_same_totals(client: TestClient[Any, Any]) -> None:
    base = "/platform/cost.alauda.io/v1beta1"
    body = await (await client.get(f"{base}/costs/usage", params={"start": "2025-06-01", "end": "2025-06-01"})).json()
    assert (body["total"], body["currentPage"], body["pageSize"]) == (2, 1, 20)
    items = {item["project"]: item for item in body["items"]}
    assert (items["alpha"]["usage"], items["alpha"]["cost"]) == pytest.approx((8.5, 0.85))
    assert (items["beta"]["usage"], items["beta"]["cost"]) == pytest.approx((2.25, 0.1625))
    assert (items["alpha"]["item"], items["alpha"]["method"], items["alpha"]["currency"]) == ("Cpu", "Effective", "CNY")
    assert (items["alpha"]["start"], items["alpha"]["end"]) == ("20250601", "20250601")
    memory = await (await client.get(f"{base}/costs/usage", params={"start": "2025-06-01", "end": "2025-06-01",
                                                                    "item": "Memory"})).json()
    alauda_total = sum(item["cost"] for item in body["items"]) + sum(item["cost"] for item in memory["items"])
    ack = await (await client.get("/v2/cost", params={"window": WINDOW, "method": "Effective", "idle": "false",
                                                      "aggregate": "cluster"})).json()
    assert alauda_total == pytest.approx(sum(by_name(ack).values()))
    assert alauda_total == pytest.approx(1.4875)


async def test_the_project_endpoint_sees_only_its_project(client: TestClient[Any, Any]) -> None:
    base = "/platform/cost.alauda.io/v1beta1/projects/beta/costs/usage"
    body = await (await client.get(base, params={"start": "2025-06-01", "end": "2025-06-01",
                                                 "kind": "namespace_all"})).json()
    assert {(item["project"], item["namespace"]) for item in body["items"]} == {("beta", "data"), ("beta", "batch")}


@pytest.mark.parametrize(
    ("path", "params", "code", "fragment"),
    [
        ("/v2/cost", {}, 400, "window"),
        ("/v2/cost", {"window": "7 days"}, 400, "7 days"),
        ("/v2/cost", {"window": WINDOW, "aggregate": "color"}, 400, "aggregate"),
        ("/v2/cost", {"window": WINDOW, "filter": 'namespace:"a'}, 400, "filter"),
        ("/v2/cost", {"window": WINDOW, "customWeights": "nope"}, 400, "customWeights"),
        ("/platform/cost.alauda.io/v1beta1/costs/usage", {"start": "2025-06-01"}, 400, "end"),
        ("/nowhere", {}, 404, "no route"),
    ],
)
async def test_bad_requests_get_a_status(
    client: TestClient[Any, Any], path: str, params: dict[str, str], code: int, fragment: str
) -> None:
    response = await client.get(path, params=params)
    assert response.status == code
    body = await response.json()
    assert (body["kind"], body["status"], body["code"]) == ("Status", "Failure", code)
    assert fragment in body["message"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
async def test_another_method_on_a_get_route_is_a_405_status(client: TestClient[Any, Any], method: str) -> None:
    response = await client.request(method, "/v2/cost", params={"window": WINDOW})
    assert response.status == 405
    assert response.headers["Allow"] == "GET, HEAD"
    body = await response.json()
    assert (body["kind"], body["status"], body["code"], body["reason"]) == ("Status", "Failure", 405, "MethodNotAllowed")
    assert body["message"] == f"{method} is not allowed on /v2/cost; allowed: GET, HEAD"
    assert (await client.request(method, "/nowhere")).status == 404


async def test_health_and_metrics(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    await client.get("/v2/cost", params={"window": WINDOW})
    text = await (await client.get("/metrics")).text()
    assert 'kubetally_http_request_duration_seconds_count{code="200",route="/v2/cost"}' in text


async def test_too_many_groups_is_a_400_naming_the_cap(client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("kubetally.service.MAX_GROUPS", 5)  # the topology has 6 pods + idle per step
    response = await client.get("/v2/cost", params={"window": WINDOW})
    assert response.status == 400
    assert "over the cap of 5" in (await response.json())["message"]
    assert (await client.get("/v2/cost", params={"window": WINDOW, "aggregate": "namespace"})).status == 200


async def test_too_many_rows_is_a_400_before_the_rows_are_built(
    client: TestClient[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """By hour, the topology's workloads are 5 pods in h0 and 6 in h1 (job-1 runs only in h1): 11 rows;
    by namespace, 4 in each hour: 8 rows."""
    monkeypatch.setattr("kubetally.service.MAX_ROWS", 10)
    response = await client.get("/v2/cost", params={"window": WINDOW, "step": "1h"})
    assert response.status == 400
    body = await response.json()
    assert "the answer has 11 rows (groups × steps), over the cap of 10" in body["message"]
    assert "step=1d" in body["message"]
    assert (await client.get("/v2/cost", params={"window": WINDOW, "step": "1h", "aggregate": "namespace"})).status == 200


async def test_a_client_that_left_is_not_an_unexpected_error(caplog: pytest.LogCaptureFixture) -> None:
    """A handler that finds the client gone (ConnectionResetError while writing) is counted as 499 and
    logs nothing: it used to log a traceback as an 'unexpected error' and try to send a 500."""
    from aiohttp import web as aioweb
    from aiohttp.test_utils import TestClient as Client
    from aiohttp.test_utils import TestServer as Server

    from kubetally.api.app import METRICS, errors_and_timing

    async def gone(request: aioweb.Request) -> aioweb.StreamResponse:
        raise ConnectionResetError("Cannot write to closing transport")

    app = aioweb.Application(middlewares=[errors_and_timing])
    app[METRICS] = Metrics()
    app.router.add_get("/gone", gone)
    async with Client(Server(app)) as client:
        response = await client.get("/gone")
        assert response.status == 499
    assert "unexpected error" not in caplog.text
