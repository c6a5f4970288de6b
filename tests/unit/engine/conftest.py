"""Shared helpers for engine tests: run a query against the documented topology."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kubetally.domain.aggregation import parse_aggregate
from kubetally.domain.filters import parse_filter
from kubetally.domain.prices import PriceBook
from kubetally.domain.vocabulary import Method, ShareSplit
from kubetally.engine import pipeline
from kubetally.engine.facts import Facts
from kubetally.engine.query import CostQuery, CostTable
from tests.unit.engine import topology

Run = Callable[..., CostTable]


@pytest.fixture
def facts() -> Facts:
    return topology.topology_facts()


@pytest.fixture
def run(facts: Facts) -> Run:
    """run(aggregate="pod", filter=None, method="Effective", step=None, book=None, custom=None, **flags)."""

    def _run(
        aggregate: str = "pod",
        filter: str | None = None,
        method: str = "Effective",
        step: int | None = None,
        book: PriceBook | None = None,
        custom: PriceBook | None = None,
        share_split: str = "weighted",
        **flags: bool,
    ) -> CostTable:
        query = CostQuery(
            window=topology.WINDOW,
            step_seconds=step,
            aggregate=parse_aggregate(aggregate),
            filter=parse_filter(filter),
            method=Method(method),
            share_split=ShareSplit(share_split),
            **flags,
        )
        return pipeline.compute(facts, book or topology.default_book(), query, custom_prices=custom)

    return _run


def costs(table: CostTable) -> dict[str, float]:
    """Row name → cost, for tables with one step and unique names."""
    out: dict[str, float] = {}
    for row in table.rows:
        assert row.name not in out, f"duplicate row {row.name}"
        out[row.name] = row.cost
    return out


def by_step(table: CostTable) -> dict[tuple[int, str], float]:
    return {(row.step_start - topology.T0, row.name): row.cost for row in table.rows}
