"""Ingest from a real Prometheus into the ledger equals the generator's exact facts.

The tiny cluster (kubetally.synthetic.presets.tiny) has every kube-state-metrics series twice
(a second replica), a 10-minute gap at 01:30–01:40, short jobs, a pending pod, a reused pod name,
bursting and request-less containers, PVCs and quotas. Expected facts and coverage come from
`kubetally.synthetic.expected_facts` / `expected_coverage`, computed from the generator's model.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kubetally.ledger.store import DuckDBLedger
from kubetally.sources.catalogue import SourceConfig
from kubetally.sources.collect import collect_segment
from kubetally.sources.prometheus import PrometheusClient
from kubetally.synthetic import expected_coverage, expected_facts
from tests.integration.conftest import Served
from tests.integration.ledgers import EXPECTED_ATTRIBUTE, assert_same_facts, ingest_all, ledger_records, run_in_thread

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def assert_ledger_matches(ledger: DuckDBLedger, served: Served, hours: list[int]) -> None:
    for hour in hours:
        expected = expected_facts(served.cluster, hour, hour + 3600)
        for table, attribute in EXPECTED_ATTRIBUTE.items():
            assert_same_facts(ledger_records(ledger, table, hour, hour + 3600), getattr(expected, attribute), table)


async def test_ingested_hours_equal_the_generator(tiny: Served, tmp_path: Path) -> None:
    spec = tiny.cluster.spec
    ledger = await ingest_all(tiny, tmp_path / "l.duckdb")
    hours = list(range(spec.start, spec.end, 3600))
    assert sorted(ledger.hours(spec.name, spec.start, spec.end)) == hours
    assert_ledger_matches(ledger, tiny, hours)
    coverage = {h: r.coverage for h, r in ledger.hours(spec.name, spec.start, spec.end).items()}
    assert coverage == pytest.approx({h: expected_coverage(tiny.cluster, h, h + 3600) for h in hours})
    assert min(coverage.values()) == pytest.approx(50 / 60)  # the 10-minute gap


async def test_ingesting_twice_changes_nothing(tiny: Served, tmp_path: Path) -> None:
    spec = tiny.cluster.spec
    ledger = await ingest_all(tiny, tmp_path / "l.duckdb")
    first = {t: sorted(map(str, ledger_records(ledger, t, spec.start, spec.end))) for t in EXPECTED_ATTRIBUTE}
    ledger.close()
    again = await ingest_all(tiny, tmp_path / "l.duckdb")
    assert {t: sorted(map(str, ledger_records(again, t, spec.start, spec.end))) for t in EXPECTED_ATTRIBUTE} == first


async def test_duplicate_series_count_once(tiny: Served, tiny_single: Served, tmp_path: Path) -> None:
    spec = tiny.cluster.spec
    doubled = await ingest_all(tiny, tmp_path / "doubled.duckdb")
    single = await ingest_all(tiny_single, tmp_path / "single.duckdb")
    for table in EXPECTED_ATTRIBUTE:
        assert_same_facts(ledger_records(doubled, table, spec.start, spec.end),
                          ledger_records(single, table, spec.start, spec.end), table)


async def test_a_hostile_cluster_name_reaches_prometheus_escaped(tiny: Served) -> None:
    spec = tiny.cluster.spec
    config = SourceConfig(cluster='c1"} or vector(1) or {x="', cluster_label="cluster", resolution_seconds=60)
    async with PrometheusClient(tiny.url) as client:
        segment = await collect_segment(client, config, spec.start, spec.start + 3600)
    assert segment.batch.rows("container_facts") == 0
    assert segment.coverage == 0.0


def test_a_killed_ingest_leaves_a_consistent_ledger(small: Served, tmp_path: Path) -> None:
    """kill -9 during `kubetally ingest` of 24 hours: every hour in the ledger is whole; a second run
    with --missing-only completes the day."""
    spec = small.cluster.spec
    ledger_path = tmp_path / "l.duckdb"
    command = [sys.executable, "-m", "kubetally", "ingest", "--prometheus-url", small.url, "--ledger",
               str(ledger_path), "--start", str(spec.start), "--end", str(spec.end), "--cluster", spec.name]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT / "operator")})
    assert process.stdout is not None
    lines = [process.stdout.readline() for _ in range(3)]
    assert all(line.startswith("[") for line in lines), lines
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stdout.close()
    ledger = DuckDBLedger(ledger_path)
    present = sorted(ledger.hours(spec.name, spec.start, spec.end))
    assert 3 <= len(present) < 24
    assert_ledger_matches(ledger, small, present)
    ledger.close()
    finished = subprocess.run([*command, "--missing-only"], capture_output=True, text=True, check=False, timeout=600,
                              env={**os.environ, "PYTHONPATH": str(ROOT / "operator")})
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert f"ingested {24 - len(present)} hours" in finished.stdout
    ledger = DuckDBLedger(ledger_path)
    hours = list(range(spec.start, spec.end, 3600))
    assert sorted(ledger.hours(spec.name, spec.start, spec.end)) == hours
    assert_ledger_matches(ledger, small, [hours[0], hours[6], hours[-1]])


def test_a_gap_shows_as_coverage_not_as_zero_cost(small: Served, tmp_path: Path) -> None:
    """small has no data 06:00–08:00 on its day: those hours have coverage 0, the day 22/24."""
    spec = small.cluster.spec
    ledger = run_in_thread(ingest_all(small, tmp_path / "l.duckdb"))
    coverage = {h - spec.start: r.coverage for h, r in ledger.hours(spec.name, spec.start, spec.end).items()}
    assert len(coverage) == 24
    assert (coverage[6 * 3600], coverage[7 * 3600], coverage[5 * 3600], coverage[8 * 3600]) == (0.0, 0.0, 1.0, 1.0)
    assert sum(coverage.values()) / 24 == pytest.approx(0.9167, abs=5e-5)
