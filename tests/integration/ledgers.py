"""Helpers for integration tests: ingest a served cluster into a ledger, read facts back, compare."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kubetally import ingest
from kubetally.facts.schema import TABLES
from kubetally.ledger.store import DuckDBLedger
from kubetally.sources.catalogue import SourceConfig
from kubetally.sources.prometheus import PrometheusClient
from tests.integration.conftest import Served

KEYS = {
    "container_facts": ("namespace", "pod", "pod_uid", "container"),
    "node_facts": ("node",),
    "volume_facts": ("namespace", "pvc"),
    "quota_facts": ("namespace",),
}
T = TypeVar("T")
EXPECTED_ATTRIBUTE = {"container_facts": "containers", "node_facts": "nodes", "volume_facts": "volumes",
                      "quota_facts": "quotas"}


def config_for(served: Served) -> SourceConfig:
    spec = served.cluster.spec
    return SourceConfig(cluster=spec.name, resolution_seconds=spec.scrape_seconds)


def run_in_thread(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on a worker thread. On the main thread `asyncio.run` clears the current event
    loop, which leaves pytest-asyncio's saved loop unreferenced and later reported as an unclosed
    loop (pytest-asyncio#724) by whichever test happens to trigger garbage collection."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def ingest_all(served: Served, path: Path) -> DuckDBLedger:
    spec = served.cluster.spec
    ledger = DuckDBLedger(path)
    async with PrometheusClient(served.url) as client:
        await ingest.ingest_range(client, ledger, config_for(served), spec.start, spec.end, now=spec.end + 3600)
    return ledger


def ledger_records(ledger: DuckDBLedger, table: str, start: int, end: int) -> list[dict[str, object]]:
    cursor = ledger._con.cursor()
    try:
        result = cursor.execute(f"SELECT * FROM {table} WHERE segment_start >= ? AND segment_end <= ?", [start, end])
        names = [column[0] for column in result.description or ()]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
    finally:
        cursor.close()


def _normal(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Mapping):
        return dict(value)
    return value


def assert_same_facts(actual: Iterable[Mapping[str, object]], expected: Iterable[Mapping[str, object]], table: str) -> None:
    """Every fact of `expected` is in `actual` (by key) with equal values (numbers to rel 1e-9)."""
    key = KEYS[table]
    by_key = {tuple(row[k] for k in key): row for row in actual}
    wanted = {tuple(row[k] for k in key): row for row in expected}
    assert sorted(by_key, key=str) == sorted(wanted, key=str), f"{table}: different entities"
    for name_key, row in wanted.items():
        got = by_key[name_key]
        for column in TABLES[table]:
            left, right = _normal(got.get(column)), _normal(row.get(column))
            if isinstance(right, float) or isinstance(left, float):
                assert left == pytest.approx(right, rel=1e-9, abs=1e-6), f"{table} {name_key} {column}"
            else:
                assert left == right, f"{table} {name_key} {column}: {left!r} != {right!r}"
