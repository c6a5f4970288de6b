"""Live collection within a budget (kubetally.sources.live) and how a window degrades (ingest.window_facts).

The ledger holds the documented topology's hours h0 = 2025-06-01T00:00Z and h1 = 01:00Z
(tests/unit/engine/topology.py). A window [00:00, 02:30) then has two ledger hours and one live
part, 02:00–02:30. With a store that never answers, that part counts with coverage 0 and the window's
coverage is (1 + 1 + 0) / 3; with no ledger hour at all in the window nothing can be said (503).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import pytest

from kubetally import ingest
from kubetally.domain.errors import SourceUnavailable
from kubetally.ledger.store import DuckDBLedger
from kubetally.sources.catalogue import SourceConfig
from kubetally.sources.live import collect_live
from kubetally.sources.prometheus import RangeSeries
from tests.unit.engine import topology
from tests.unit.ledger.test_store import hour_batch

T0, H = topology.T0, 3600
CONFIG = SourceConfig(cluster="c1", live_budget_seconds=0.2)


class HungStore:
    """Every query waits forever, as on a Prometheus stopped with SIGSTOP."""

    def __init__(self, answers_before: int = 0) -> None:
        self.answers_before = answers_before  # queries evaluated before this time answer at once (empty)

    async def query_range(self, query: str, start: int, end: int, step: int) -> list[RangeSeries]:
        if end < self.answers_before:
            return []
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class DeadStore:
    async def query_range(self, query: str, start: int, end: int, step: int) -> list[RangeSeries]:
        raise SourceUnavailable("http://127.0.0.1:9/api/v1/query_range is unavailable after 3 attempts; "
                                "last error: ConnectError: All connection attempts failed; query: up")


async def test_a_hung_store_costs_one_budget_and_every_part_is_named() -> None:
    started = time.monotonic()
    live = await collect_live(HungStore(), CONFIG, [(T0 + 2 * H, T0 + 2 * H + 1800), (T0 + 3 * H, T0 + 3 * H + 60)])
    assert 0.2 <= time.monotonic() - started < 1.0
    assert live.segments == (None, None)
    assert live.collected == 0
    assert live.warning == (
        "the metrics store did not answer within the live budget of 0.2 s: the live parts "
        "2025-06-01T02:00:00Z–2025-06-01T02:30:00Z, 2025-06-01T03:00:00Z–2025-06-01T03:01:00Z of the window count "
        "with coverage 0 (cost missing, not 0); the rest comes from the ledger"
    )


async def test_a_dead_store_is_named_without_the_query() -> None:
    live = await collect_live(DeadStore(), CONFIG, [(T0, T0 + 60)])
    assert live.reason == ("the metrics store is unavailable (http://127.0.0.1:9/api/v1/query_range is unavailable "
                           "after 3 attempts; last error: ConnectError: All connection attempts failed)")
    assert live.warning is not None
    assert "the live part 2025-06-01T00:00:00Z–2025-06-01T00:01:00Z of the window counts with coverage 0" in live.warning


async def test_segments_collected_before_the_budget_ran_out_are_kept() -> None:
    segments = [(T0 + 60 * k, T0 + 60 * (k + 1)) for k in range(5)]
    live = await collect_live(HungStore(answers_before=T0 + 120), CONFIG, segments)
    assert [segment is not None for segment in live.segments] == [True, True, False, False, False]
    assert live.missing == tuple(segments[2:])
    assert live.warning is not None
    assert "live parts 2025-06-01T00:02:00Z–2025-06-01T00:03:00Z, 2025-06-01T00:03:00Z–2025-06-01T00:04:00Z, " \
           "2025-06-01T00:04:00Z–2025-06-01T00:05:00Z of the window count" in live.warning


async def test_more_than_three_parts_are_summarised() -> None:
    segments = [(T0 + 60 * k, T0 + 60 * (k + 1)) for k in range(7)]
    live = await collect_live(DeadStore(), CONFIG, segments)
    assert live.warning is not None
    assert "2025-06-01T00:02:00Z–2025-06-01T00:03:00Z and 4 more of the window count" in live.warning


async def test_nothing_to_collect_needs_no_store() -> None:
    live = await collect_live(HungStore(), CONFIG, [])
    assert (live.segments, live.warning) == ((), None)


@pytest.fixture
def ledger(tmp_path: Path) -> DuckDBLedger:
    store = DuckDBLedger(tmp_path / "l.duckdb")
    for hour in (0, 1):
        store.write_hour("c1", T0 + hour * H, hour_batch(hour), 1.0, ingested_at=T0 + 2 * H)
    return store


@pytest.mark.parametrize("store", [HungStore(), DeadStore()], ids=["hung", "dead"])
async def test_a_window_answers_from_the_ledger_with_the_live_part_at_coverage_0(
    ledger: DuckDBLedger, store: HungStore | DeadStore
) -> None:
    async with asyncio.timeout(5):
        live, plan = await ingest.window_facts(store, ledger, CONFIG, T0, T0 + 2 * H + 1800)
    assert plan.ledger_hours == (T0, T0 + H)
    assert plan.live == ((T0 + 2 * H, T0 + 2 * H + 1800),)
    assert plan.coverage == {T0: 1.0, T0 + H: 1.0, T0 + 2 * H: 0.0}
    assert len(plan.warnings) == 1
    assert "2025-06-01T02:00:00Z–2025-06-01T02:30:00Z of the window counts with coverage 0" in plan.warnings[0]
    assert all(live.rows(table) == 0 for table in ("container_facts", "node_facts", "volume_facts", "quota_facts"))


async def test_a_window_with_neither_ledger_hours_nor_live_parts_is_unavailable(ledger: DuckDBLedger) -> None:
    with pytest.raises(SourceUnavailable, match=r"^the metrics store did not answer within the live budget of 0.2 s, "
                                                r"and the ledger holds no complete hour of this window$"):
        await ingest.window_facts(HungStore(), ledger, CONFIG, T0 + 2 * H, T0 + 2 * H + 1800)


async def test_the_budget_is_configurable(ledger: DuckDBLedger) -> None:
    started = time.monotonic()
    _, plan = await ingest.window_facts(HungStore(), ledger, replace(CONFIG, live_budget_seconds=0.5),
                                        T0, T0 + 2 * H + 1800)
    assert 0.5 <= time.monotonic() - started < 1.5
    assert "within the live budget of 0.5 s" in plan.warnings[0]


class CountingStore:
    """Answers every query (empty) after `delay` seconds and counts the queries it was asked."""

    def __init__(self, delay: float = 0.05, fail: bool = False) -> None:
        self.delay, self.fail, self.queries = delay, fail, 0

    async def query_range(self, query: str, start: int, end: int, step: int) -> list[RangeSeries]:
        self.queries += 1
        await asyncio.sleep(self.delay)
        if self.fail:
            raise SourceUnavailable("refused; query: up")
        return []


async def test_sixteen_requests_for_the_same_live_parts_collect_them_once() -> None:
    """Sixteen concurrent requests, then one more, for the same two parts: the store is asked what one
    request asks (the parts' queries once), and every request gets both parts."""
    once = CountingStore()
    await collect_live(once, replace(CONFIG, live_budget_seconds=5), [(T0, T0 + 600), (T0 + H, T0 + H + 60)])
    alone = once.queries
    store = CountingStore()
    config = replace(CONFIG, live_budget_seconds=5)
    parts = [(T0, T0 + 600), (T0 + H, T0 + H + 60)]
    answers = await asyncio.gather(*(collect_live(store, config, parts) for _ in range(16)))
    answers.append(await collect_live(store, config, parts))
    assert alone > 0
    assert store.queries == alone
    assert all(answer.collected == 2 and answer.reason is None for answer in answers)


async def test_a_failed_part_is_not_reused() -> None:
    store = CountingStore(fail=True)
    config = replace(CONFIG, live_budget_seconds=5)
    first = await collect_live(store, config, [(T0, T0 + 600)])
    asked = store.queries
    store.fail = False
    second = await collect_live(store, config, [(T0, T0 + 600)])
    assert (first.collected, second.collected) == (0, 1)
    assert store.queries > asked
