"""A hung or dead metrics store never hangs the API or a report (issue 12, bug 5), in process.

The ledger holds the documented topology's hours h0 (2025-06-01T00:00Z) and h1 (tests/unit/engine/
topology.py); the clock reads 02:30:40. The store never answers (`HungStore`) or refuses
(`DeadStore`), with a live budget of 0.3 s. Hand-derived answers from the ledger alone:

- window 00:00–02:30, Effective by namespace: shop 0.65, web 0.60, data 0.22, batch 0.0175, idle
  2.1125 (the whole table of h0 + h1: the live part 02:00–02:30 is missing); coverage over the hours
  {h0: 1, h1: 1, h2: 0} = 2/3;
- window=2h (00:30–02:30): h1 alone (both edges are live and missing), coverage 1/3; its figures come
  from the plain-Python oracle (tests/reference.py) on h1's facts;
- window=30m (02:00–02:30): nothing but a live part: 503 Status;
- Alauda Cpu by project over 2025-06-01 (to 02:30): alpha 8.5 core-h / 0.85, beta 2.25 / 0.1625;
- a CostReport over 00:00–02:30: cost 3.6 = 1.4875 + idle 2.1125, Degraded MetricsUnavailable,
  recomputed 5 minutes later (02:35:40) rather than at 03:00 (@hourly);
- `kubetally serve`'s ingest loop, after a pass failed on the outage, runs again as soon as the store
  answers, not after its 60 s interval.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from kubetally import reports, serve
from kubetally.api.app import build_app
from kubetally.api.metrics import Metrics
from kubetally.domain.aggregation import parse_aggregate
from kubetally.domain.errors import SourceUnavailable
from kubetally.domain.vocabulary import Method
from kubetally.domain.window import Window
from kubetally.engine.query import CostQuery
from kubetally.ledger.store import DuckDBLedger
from kubetally.service import CostService
from kubetally.sources.catalogue import SourceConfig
from kubetally.sources.health import StoreHealth
from kubetally.sources.prometheus import PrometheusClient
from tests.reference import reference_costs
from tests.unit.api.test_app import WEIGHTS
from tests.unit.engine import topology
from tests.unit.sources.test_live import CountingStore, DeadStore, HungStore
from tests.unit.test_reports import hour_batch

NOW = datetime(2025, 6, 1, 2, 30, 40, tzinfo=UTC)
CONFIG = SourceConfig(cluster="c1", live_budget_seconds=0.3)
#: The bound a degraded answer must meet here: one budget for the cost query (two for a report: its
#: storage figures are a second query), plus the in-process engine; generous for a loaded machine.
BOUND_SECONDS = 2.5


def make_service(tmp_path: Path, store: HungStore | DeadStore) -> CostService:
    ledger = DuckDBLedger(tmp_path / "l.duckdb")
    for hour in (0, 1):
        ledger.write_hour("c1", topology.T0 + hour * 3600, hour_batch(hour), 1.0, ingested_at=topology.T0 + 7200)
    service = CostService(ledger, store, CONFIG, clock=lambda: int(NOW.timestamp()))
    service.record_weights("default", WEIGHTS)
    return service


@pytest.fixture(params=[HungStore, DeadStore], ids=["hung", "dead"])
async def api(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    service = make_service(tmp_path, request.param())
    health = StoreHealth()
    health.record_failure("no answer to a probe within 2s")
    app = build_app(service, Metrics(), health.ready, state=health.describe)
    async with TestClient(TestServer(app)) as client:
        yield client
    service.ledger.close()


async def timed_json(client: TestClient[Any, Any], path: str, **params: str) -> tuple[int, Any, float]:
    started = time.monotonic()
    async with asyncio.timeout(10):  # fail, never hang, should the bound be broken
        response = await client.get(path, params=params)
        body = await response.json()
    return response.status, body, time.monotonic() - started


async def test_a_window_answers_from_the_ledger_with_coverage_and_a_warning(api: TestClient[Any, Any]) -> None:
    status, body, seconds = await timed_json(api, "/v2/cost", window="2025-06-01T00:00:00Z,2025-06-01T02:30:00Z",
                                             aggregate="namespace", method="Effective")
    assert status == 200
    assert seconds < BOUND_SECONDS
    costs = {name: row["cost"] for name, row in body["data"][0].items()}
    assert costs == pytest.approx({"shop": 0.65, "web": 0.60, "data": 0.22, "batch": 0.0175, "__idle__": 2.1125},
                                  rel=1e-9)
    assert body["coverage"] == pytest.approx(2 / 3, rel=1e-9)
    assert any("the live part 2025-06-01T02:00:00Z–2025-06-01T02:30:00Z of the window counts with coverage 0"
               in warning for warning in body["warnings"])
    assert any(warning.startswith("data coverage of the window is 0.6667") for warning in body["warnings"])


async def test_window_2h_holds_the_ledger_hour_exactly(api: TestClient[Any, Any]) -> None:
    status, body, seconds = await timed_json(api, "/v2/cost", window="2h", aggregate="namespace", method="Effective")
    assert (status, seconds < BOUND_SECONDS) == (200, True)
    assert (body["window"]["start"], body["window"]["end"]) == ("2025-06-01T00:30:00Z", "2025-06-01T02:30:00Z")
    h1 = topology.T0 + 3600
    query = CostQuery(window=Window(datetime(2025, 6, 1, 0, 30, tzinfo=UTC), datetime(2025, 6, 1, 2, 30, tzinfo=UTC)),
                      aggregate=parse_aggregate("namespace"), method=Method.EFFECTIVE)
    expected = {row["key"][0] if row["kind"] == "workload" else "__idle__": row["cost"] for row in reference_costs(
        [c for c in topology.containers() if c["segment_start"] == h1 and c["container"] != "POD"],  # never counts
        [n for n in topology.nodes() if n["segment_start"] == h1], topology.default_book(), query)}
    costs = {name: row["cost"] for name, row in body["data"][0].items()}
    assert costs == pytest.approx(expected, rel=1e-9)
    assert sum(costs.values()) == pytest.approx(1.8, rel=1e-9)  # one hour of the three nodes: 3.6 / 2
    assert body["coverage"] == pytest.approx(1 / 3, rel=1e-9)
    assert any("the live parts 2025-06-01T00:30:00Z–2025-06-01T01:00:00Z, 2025-06-01T02:00:00Z–2025-06-01T02:30:00Z"
               in warning for warning in body["warnings"])


async def test_a_window_of_live_parts_only_is_a_503_status(api: TestClient[Any, Any]) -> None:
    status, body, seconds = await timed_json(api, "/v2/cost", window="30m")
    assert (status, seconds < BOUND_SECONDS) == (503, True)
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "ServiceUnavailable", 503)
    assert body["message"].startswith("the metrics store is unavailable: the metrics store ")
    assert body["message"].endswith(", and the ledger holds no complete hour of this window")


async def test_alauda_usage_answers_from_the_ledger(api: TestClient[Any, Any]) -> None:
    status, body, seconds = await timed_json(api, "/platform/cost.alauda.io/v1beta1/costs/usage",
                                             start="2025-06-01", end="2025-06-01")
    assert (status, seconds < BOUND_SECONDS) == (200, True)
    items = {(item["project"], figure): item[figure] for item in body["items"] for figure in ("usage", "cost")}
    assert items == pytest.approx({("alpha", "usage"): 8.5, ("alpha", "cost"): 0.85, ("beta", "usage"): 2.25,
                                   ("beta", "cost"): 0.1625}, rel=1e-9)


async def test_readyz_reads_the_known_state(api: TestClient[Any, Any]) -> None:
    started = time.monotonic()
    response = await api.get("/readyz")
    assert time.monotonic() - started < 1.0
    assert response.status == 200
    assert (await response.text()).startswith("degraded: the metrics store has not answered for ")


async def probe_app(ready: Callable[[], Awaitable[bool]], state: Callable[[], str]) -> tuple[int, str, float]:
    app = build_app(CostService.__new__(CostService), Metrics(), ready, state=state)
    async with TestClient(TestServer(app)) as client:
        started = time.monotonic()
        response = await client.get("/readyz")
        return response.status, await response.text(), time.monotonic() - started


async def test_readyz_is_503_until_the_state_is_known_and_never_waits_long() -> None:
    health = StoreHealth()
    status, text, _ = await probe_app(health.ready, health.describe)
    assert status == 503
    assert "not ready: starting: the metrics store has not been probed yet" in text

    async def hangs() -> bool:
        await asyncio.Event().wait()
        return True

    status, text, seconds = await probe_app(hangs, lambda: "")
    assert (status, seconds < 1.8) == (503, True)  # the 1 s deadline of /readyz itself
    health.record_success()
    assert (await probe_app(health.ready, health.describe))[:2] == (200, "ok")


@pytest.mark.parametrize("store", [HungStore, DeadStore], ids=["hung", "dead"])
async def test_a_report_is_computed_from_the_ledger_and_degraded(tmp_path: Path, store: type[HungStore]) -> None:
    service = make_service(tmp_path, store())
    spec = {"window": "2025-06-01T00:00:00Z,2025-06-01T02:30:00Z", "aggregate": ["namespace"]}
    started = time.monotonic()
    async with asyncio.timeout(10):
        result = await reports.compute_report(service, spec, namespace="ops", name="r", generation=1, now=NOW,
                                              project=None, isolated=False)
    assert time.monotonic() - started < 2 * BOUND_SECONDS
    status = result.status
    assert (status["totals"]["cost"], status["totals"]["idleCost"]) == ("3.600000", "2.112500")
    assert status["coverage"] == 0.666667
    ready, degraded = status["conditions"]
    assert (ready["status"], ready["reason"]) == ("True", "Computed")
    assert (degraded["status"], degraded["reason"]) == ("True", "MetricsUnavailable")
    assert degraded["message"].startswith("data coverage of the window is 0.6667; the metrics store ")
    assert "the live part 2025-06-01T02:00:00Z–2025-06-01T02:30:00Z of the window counts" in degraded["message"]
    assert status["nextComputeTime"] == "2025-06-01T02:35:40Z"
    service.ledger.close()


async def test_the_ingest_loop_backfills_as_soon_as_the_store_answers_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pass that fails while the store is down waits for its return, not for the 60 s interval."""
    health = StoreHealth()
    passes: list[float] = []

    async def ingest_once(*args: object) -> int:
        passes.append(time.monotonic())
        if len(passes) == 1:
            health.record_failure("ConnectError: refused")
            raise SourceUnavailable("refused")
        return 0

    async def no_rollups(service: object) -> int:
        return 0

    monkeypatch.setattr(serve, "ingest_once", ingest_once)
    monkeypatch.setattr(serve, "refresh_rollups", no_rollups)
    client = PrometheusClient("http://prometheus.test:9090", health=health)
    options = serve.ServeOptions(prometheus_url=client.base_url, ledger=Path("unused"), weights=(), port=0,
                                 ingest_interval_seconds=60)
    loop = asyncio.create_task(serve.ingest_loop(CostService.__new__(CostService), client, options, Metrics()))
    try:
        async with asyncio.timeout(5):
            while not passes:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)
            assert len(passes) == 1  # down: waiting
            health.record_success()  # the probe sees it back
            while len(passes) < 2:
                await asyncio.sleep(0.01)
        assert passes[1] - passes[0] < 2.0
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await client.aclose()


async def test_a_window_reaching_past_now_asks_the_store_nothing_after_now(tmp_path: Path) -> None:
    """A month from 00:00 with the clock at 02:30:40: only 02:00–02:30 is collected live (the store
    answers it empty at once), never the 700-odd hours after now, which used to spend the whole live
    budget and then be reported as "the store did not answer". The answer is h0 + h1 (total 3.6 =
    1.4875 workload + 2.1125 idle, as above) and says the window ends after now."""
    store = CountingStore(delay=0.0)
    service = CostService(make_service(tmp_path, HungStore()).ledger, store, CONFIG,
                          clock=lambda: int(NOW.timestamp()))
    month = Window(datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC))
    answer = await service.cost(CostQuery(window=month, method=Method.EFFECTIVE,
                                          aggregate=parse_aggregate("namespace")))
    live = [(datetime.fromtimestamp(a, UTC).strftime("%H:%M"), datetime.fromtimestamp(b, UTC).strftime("%H:%M"))
            for a, b in answer.plan.live]
    assert live == [("02:00", "02:30")]
    assert sum(row.cost for row in answer.table.rows) == pytest.approx(3.6, rel=1e-9)
    assert answer.plan.warnings == ("the window ends at 2025-07-01T00:00:00Z, after now (2025-06-01T02:30:00Z): "
                                    "the time after now has no data yet",)
    service.ledger.close()
