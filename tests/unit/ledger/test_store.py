"""The DuckDB ledger: idempotent, atomic hours; coverage; price versions; windows with live edges.

Uses the documented topology (tests/unit/engine/topology.py): Effective costs web-1 0.30,
burst-1 0.35, api-1 0.60, etl-1 0.15, agent-n3 0.07, job-1 0.0175; idle 2.1125 over two hours.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetally.domain.vocabulary import Method
from kubetally.engine import pipeline
from kubetally.engine.query import CostQuery
from kubetally.facts.batch import FactBatch
from kubetally.facts.load import insert
from kubetally.facts.schema import TABLES
from kubetally.ledger.store import DuckDBLedger
from tests.unit.engine import topology
from tests.unit.engine.conftest import costs

T0, H = topology.T0, 3600


def hour_batch(hour: int) -> FactBatch:
    start = T0 + hour * H
    return FactBatch.from_records(
        container_facts=[c for c in topology.containers() if c["segment_start"] == start],
        node_facts=[n for n in topology.nodes() if n["segment_start"] == start],
        volume_facts=[v for v in topology.volumes() if v["segment_start"] == start],
        quota_facts=[q for q in topology.quotas() if q["segment_start"] == start],
    )


def counts(ledger: DuckDBLedger) -> tuple[int, ...]:
    con = ledger._con
    return tuple(int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES)  # type: ignore[index]


def window_costs(ledger: DuckDBLedger, live: FactBatch | None = None) -> dict[str, float]:
    with ledger.facts(T0, T0 + 2 * H, live) as facts:
        return costs(pipeline.compute(facts, topology.default_book(),
                                      CostQuery(window=topology.WINDOW, method=Method.EFFECTIVE)))


def test_hours_written_twice_change_nothing(tmp_path: Path) -> None:
    ledger = DuckDBLedger(tmp_path / "ledger.duckdb")
    for hour in (0, 1):
        ledger.write_hour("c1", T0 + hour * H, hour_batch(hour), 1.0, ingested_at=T0 + 3 * H)
    first = counts(ledger)
    for hour in (0, 1):
        ledger.write_hour("c1", T0 + hour * H, hour_batch(hour), 1.0, ingested_at=T0 + 4 * H)
    assert counts(ledger) == first == (13, 6, 4, 4)  # 7 + 6 containers incl. the pause ones
    assert window_costs(ledger) == pytest.approx({"web-1": 0.30, "burst-1": 0.35, "api-1": 0.60, "etl-1": 0.15,
                                                  "agent-n3": 0.07, "job-1": 0.0175, "__idle__": 2.1125})


def test_an_interrupted_write_leaves_the_hour_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ledger.duckdb"
    ledger = DuckDBLedger(path)
    ledger.write_hour("c1", T0, hour_batch(0), 1.0, ingested_at=T0)
    before = counts(ledger)
    real_insert = insert

    def failing_insert(con: object, table: str, target: str, columns: object) -> int:
        if table == "node_facts":
            raise RuntimeError("killed mid-write")
        return real_insert(con, table, target, columns)  # type: ignore[arg-type]

    monkeypatch.setattr("kubetally.ledger.store.insert", failing_insert)
    with pytest.raises(RuntimeError, match="killed"):
        ledger.write_hour("c1", T0, hour_batch(1), 0.5, ingested_at=T0 + H)
    assert counts(ledger) == before
    assert ledger.hours("c1", T0, T0 + 2 * H)[T0].coverage == 1.0
    ledger.close()
    reopened = DuckDBLedger(path)
    assert counts(reopened) == before
    assert list(reopened.hours("c1", T0, T0 + 2 * H)) == [T0]


def test_coverage_is_kept_per_hour(tmp_path: Path) -> None:
    ledger = DuckDBLedger(tmp_path / "l.duckdb")
    ledger.write_hour("c1", T0, hour_batch(0), 0.9167, ingested_at=T0 + H)
    ledger.write_hour("c2", T0, FactBatch(), 1.0, ingested_at=T0 + H)
    assert {h: r.coverage for h, r in ledger.hours("c1", T0, T0 + 2 * H).items()} == {T0: 0.9167}
    assert ledger.hours("c1", T0 + H, T0 + 2 * H) == {}
    with pytest.raises(ValueError, match="hour boundary"):
        ledger.write_hour("c1", T0 + 5, FactBatch(), 1.0, ingested_at=T0)


def test_live_edges_join_the_ledger_hours(tmp_path: Path) -> None:
    """h0 from the ledger, h1 live: the same answer as both from the ledger."""
    ledger = DuckDBLedger(tmp_path / "l.duckdb")
    ledger.write_hour("c1", T0, hour_batch(0), 1.0, ingested_at=T0 + 2 * H)
    assert window_costs(ledger, live=hour_batch(1)) == pytest.approx(
        {"web-1": 0.30, "burst-1": 0.35, "api-1": 0.60, "etl-1": 0.15, "agent-n3": 0.07, "job-1": 0.0175,
         "__idle__": 2.1125})


def test_price_versions_are_appended_never_rewritten(tmp_path: Path) -> None:
    ledger = DuckDBLedger(tmp_path / "l.duckdb")
    spec_a = {"currency": "CNY", "weights": {"cpu": "0.5", "memory": "0.5"}}
    spec_b = {"currency": "CNY", "weights": {"cpu": "1", "memory": "0"}}
    assert ledger.record_price_version("default", spec_a, effective_from=T0, recorded_at=T0)
    assert not ledger.record_price_version("default", spec_a, effective_from=T0, recorded_at=T0 + 10)
    assert ledger.record_price_version("default", spec_b, effective_from=T0 + H, recorded_at=T0 + 20)
    versions = ledger.price_versions("default")
    assert [(v.effective_from, v.spec) for v in versions] == [(T0, spec_a), (T0 + H, spec_b)]
    # A later record for the same start wins; earlier starts are untouched.
    assert ledger.record_price_version("default", spec_a, effective_from=T0 + H, recorded_at=T0 + 30)
    assert [(v.effective_from, v.spec) for v in ledger.price_versions("default")] == [(T0, spec_a), (T0 + H, spec_a)]
    assert ledger.price_versions("other") == []


def test_cost_weights_versions_price_their_own_hours(tmp_path: Path) -> None:
    """v1 (big nodes 0.8/h) is recorded before the data; v2 (1.6/h) is applied at T0 + 30 min, so it
    prices from the next hour, h1: web-1 costs 0.15 in h0 and 0.30 in h1 (topology.py)."""
    from kubetally.ledger.pricebook import price_book, record_cost_weights

    def spec(big: str) -> dict[str, object]:
        return {"currency": "CNY", "weights": {"cpu": "0.5", "memory": "0.5"},
                "unitPrices": {"cpuCoreHour": "0.05", "memoryGiBHour": "0.01", "storageGiBHour": "0.0001"},
                "nodePrices": [{"selector": {"matchLabels": {"node.kubernetes.io/instance-type": "big"}},
                                "hourly": big}]}

    ledger = DuckDBLedger(tmp_path / "l.duckdb")
    for hour in (0, 1):
        ledger.write_hour("c1", T0 + hour * H, hour_batch(hour), 1.0, ingested_at=T0 + 3 * H)
    assert record_cost_weights(ledger, "default", spec("0.8"), observed_at=T0 - 100)
    assert not record_cost_weights(ledger, "default", spec("0.8"), observed_at=T0 + 600)
    assert record_cost_weights(ledger, "default", spec("1.6"), observed_at=T0 + 1800)
    assert [v.effective_from for v in ledger.price_versions("default")] == [0, T0 + H]
    book = price_book(ledger, "default")
    assert book is not None
    with ledger.facts(T0, T0 + 2 * H) as facts:
        table = pipeline.compute(facts, book, CostQuery(window=topology.WINDOW, method=Method.EFFECTIVE,
                                                        step_seconds=H))
    web = {row.step_start - T0: row.cost for row in table.rows if row.name == "web-1"}
    assert web == pytest.approx({0: 0.15, H: 0.30})
    assert price_book(ledger, "missing") is None
