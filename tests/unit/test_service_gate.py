"""Sixteen clients at once: the service computes at most `max_queries` questions at a time, answers all.

The topology ledger (two hours, hand-derived in tests/unit/engine/topology.py: by namespace over both
hours, Effective, default book: shop 0.65, web 0.60, data 0.22, batch 0.0175, idle 2.1125). Sixteen
cost questions and sixteen usage questions are asked together; the engine entry points are wrapped
(the fast tier may spy) to record how many run at one instant, each held 20 ms so that they overlap
if nothing stops them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kubetally import service as service_module
from kubetally.domain.aggregation import parse_aggregate
from kubetally.domain.vocabulary import Item, Method
from kubetally.domain.window import CalendarStep, calendar_periods, parse_date_range
from kubetally.engine.query import CostQuery, UsageQuery
from kubetally.ledger.store import DuckDBLedger
from kubetally.service import CostService
from kubetally.sources.catalogue import SourceConfig
from tests.unit.api.test_app import WEIGHTS, NoLiveData
from tests.unit.engine import topology
from tests.unit.test_reports import NOW, hour_batch


class Spy:
    """Wraps an engine entry point; counts the calls running at once (they run in worker threads)."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real, self.running, self.most, self.calls = real, 0, 0, 0
        self.lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.running += 1
            self.calls += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.02)
            return self.real(*args, **kwargs)
        finally:
            with self.lock:
                self.running -= 1


@pytest.mark.parametrize("max_queries", [1, 2, 4])
async def test_sixteen_clients_are_answered_at_most_max_queries_at_a_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, max_queries: int) -> None:
    ledger = DuckDBLedger(tmp_path / "l.duckdb")
    for hour in (0, 1):
        ledger.write_hour("c1", topology.T0 + hour * 3600, hour_batch(hour), 1.0, ingested_at=topology.T0)
    service = CostService(ledger, NoLiveData(), SourceConfig(cluster="c1"), clock=lambda: int(NOW.timestamp()),
                          max_queries=max_queries)
    service.record_weights("default", WEIGHTS)  # the topology's default book
    costs = Spy(service_module.pipeline.compute)
    usages = Spy(service_module.usage.compute_usage)
    monkeypatch.setattr(service_module.pipeline, "compute", costs)
    monkeypatch.setattr(service_module.usage, "compute_usage", usages)
    cost = CostQuery(window=topology.WINDOW, aggregate=parse_aggregate("namespace"), method=Method.EFFECTIVE)
    periods = calendar_periods(parse_date_range("2025-06-01", "2025-06-01"), CalendarStep.DAY)
    used = UsageQuery(periods=periods, item=Item.CPU, method=Method.EFFECTIVE)
    answers = await asyncio.gather(*(service.cost(cost) for _ in range(16)), *(service.usage(used) for _ in range(16)))
    ledger.close()
    assert costs.calls == usages.calls == 16
    assert 1 <= max(costs.most, usages.most) <= max_queries
    for answer in answers[:16]:
        assert {row.name: row.cost for row in answer.table.rows} == pytest.approx(  # type: ignore[union-attr]
            {"shop": 0.65, "web": 0.60, "data": 0.22, "batch": 0.0175, "__idle__": 2.1125})
    assert all(rows == answers[16] for rows in answers[17:])


def test_the_service_refuses_a_gate_of_no_queries(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_queries must be at least 1"):
        CostService(DuckDBLedger(":memory:"), NoLiveData(), SourceConfig(), clock=lambda: 0, max_queries=0)
