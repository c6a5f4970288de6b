"""Fuzzing every parameter of both APIs through the real app: every answer is a 200 or a 4xx Status
with a message, never a 5xx; and the only PromQL that reaches the store is the fixed catalogue
(user input never becomes query text). The ledger is empty here; `tests/load/test_fuzz_loaded.py`
throws the same values (`tests.support.hostile`) at a real server over a loaded ledger."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubetally.api.app import build_app
from kubetally.api.metrics import Metrics
from kubetally.ledger.store import DuckDBLedger
from kubetally.service import CostService
from kubetally.sources.catalogue import Catalogue, SourceConfig, catalogue
from kubetally.sources.prometheus import RangeSeries
from tests.support.hostile import COST_KEYS, USAGE_KEYS, params_strategy
from tests.unit.engine import topology

CONFIG = SourceConfig(cluster="c1")
KNOWN_QUERIES = {getattr(catalogue(CONFIG), f.name) for f in fields(Catalogue)}


class CheckingSource:
    """A store that fails the test if a query outside the catalogue ever reaches it."""

    def __init__(self) -> None:
        self.unknown: list[str] = []

    async def query_range(self, query: str, start: int, end: int, step: int) -> list[RangeSeries]:
        if query not in KNOWN_QUERIES:
            self.unknown.append(query)
        return []


async def _check(path: str, query: dict[str, str], tmp_path: Path) -> None:
    ledger = DuckDBLedger(tmp_path / "fuzz.duckdb")
    source = CheckingSource()
    service = CostService(ledger, source, CONFIG, clock=lambda: topology.T0 + 7200)

    async def ready() -> bool:
        return True

    try:
        async with TestClient(TestServer(build_app(service, Metrics(), ready))) as client:
            response = await client.get(path, params=query)
            assert response.status < 500, (path, str(query)[:300], (await response.text())[:300])
            if response.status >= 400:
                assert response.content_type == "application/json", (str(query)[:300], response.status)
                body: dict[str, Any] = await response.json()
                assert body["kind"] == "Status"
                assert body["code"] == response.status
                assert len(body["message"]) > 10
    finally:
        ledger.close()
    assert source.unknown == []


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=params_strategy(COST_KEYS))
async def test_v2_cost_never_fails_with_5xx(query: dict[str, str], tmp_path: Path) -> None:
    await _check("/v2/cost", query, tmp_path)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=params_strategy(USAGE_KEYS), project=st.one_of(st.none(), st.sampled_from(["alpha", "Bad_Name", "x" * 70])))
async def test_alauda_usage_never_fails_with_5xx(query: dict[str, str], project: str | None, tmp_path: Path) -> None:
    path = "/platform/cost.alauda.io/v1beta1/costs/usage" if project is None else \
        f"/platform/cost.alauda.io/v1beta1/projects/{project}/costs/usage"
    await _check(path, query, tmp_path)
