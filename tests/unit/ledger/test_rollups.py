"""Stored rollups answer exactly as the facts do, and are never read stale.

Two kinds of evidence:
- the documented topology (tests/unit/engine/topology.py), whose per-namespace Effective costs are
  hand-derived in its docstring: shop 0.65, web 0.60, data 0.22, batch 0.0175, idle 2.1125 over h0–h1;
- generated clusters (`tiny`, `small`: late nodes, gaps, jobs, pending pods): for every query a
  rollup may answer, the stored answer equals the live engine's row for row (rel 1e-9; only the
  summation order differs). The live engine is itself checked against independent references
  (tests/unit/engine, tests/integration), so equality carries those proofs over.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kubetally.bench.ledgers import batch_of
from kubetally.domain.aggregation import AggregateKey, Dimension
from kubetally.domain.errors import SpecError
from kubetally.domain.prices import PriceBook, opencost_default
from kubetally.domain.vocabulary import Item, Method, ShareSplit, UsageKind
from kubetally.domain.window import CalendarStep, Window, calendar_periods, parse_date_range
from kubetally.engine import pipeline, plan, rollup, usage
from kubetally.engine.plan import RollupPlan
from kubetally.engine.query import CostQuery, CostRow, CostTable, UsageQuery
from kubetally.facts.batch import FactBatch
from kubetally.ledger import rollups
from kubetally.ledger.store import DuckDBLedger
from kubetally.synthetic import fact_arrays, generate, small, tiny
from tests.unit.engine import topology
from tests.unit.ledger.test_store import hour_batch

T0, H = topology.T0, 3600


def wanted(book: PriceBook, query: CostQuery) -> RollupPlan:
    """The planner's own plan (its level, fingerprint, set boundaries and days), which must exist."""
    found = plan.plan_cost(query, book)
    assert found is not None, query
    return found


def answer(ledger: DuckDBLedger, book: PriceBook, query: CostQuery, *, stored: bool,
           live: FactBatch | None = None) -> tuple[CostTable, bool]:
    start, end = query.window.start_epoch(), query.window.end_epoch()
    rollups = wanted(book, query) if stored else None
    with ledger.facts(start, end, live, plan=rollups) as facts:
        return pipeline.compute(facts, book, query, plan=rollups), facts.stored is not None


def _by_identity(rows: tuple[CostRow, ...]) -> list[CostRow]:
    """Rows in an order that does not depend on cost: two rows whose costs differ by an ulp (summed
    in another order) may swap in the answer's own order (cost descending)."""
    return sorted(rows, key=lambda r: (r.step_start, r.kind, r.key, tuple(sorted(r.properties.items()))))


def assert_same(live: CostTable, stored: CostTable) -> None:
    assert len(live.rows) == len(stored.rows)
    assert live.diagnostics == stored.diagnostics
    for a, b in zip([*_by_identity(live.rows), *live.steps], [*_by_identity(stored.rows), *stored.steps],
                    strict=True):
        for field in dataclasses.fields(a):
            x, y = getattr(a, field.name), getattr(b, field.name)
            if isinstance(x, float):
                assert math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12), (field.name, a, b)
            else:
                assert x == y, (field.name, a, b)


def topology_ledger(path: Path) -> DuckDBLedger:
    ledger = DuckDBLedger(path)
    for hour in (0, 1):
        ledger.write_hour("c1", T0 + hour * H, hour_batch(hour), 1.0, ingested_at=T0 + 3 * H)
    return ledger


def test_stored_namespaces_match_the_hand_derived_topology(tmp_path: Path) -> None:
    ledger = topology_ledger(tmp_path / "l.duckdb")
    book = topology.default_book()
    assert ledger.build_rollups(book) == 2 * len(rollup.METHODS)  # 2 hours × the maintained methods
    query = CostQuery(window=topology.WINDOW, aggregate=(AggregateKey(Dimension.NAMESPACE),), method=Method.EFFECTIVE)
    table, used = answer(ledger, book, query, stored=True)
    assert used
    assert {row.name: row.cost for row in table.rows} == pytest.approx(
        {"shop": 0.65, "web": 0.60, "data": 0.22, "batch": 0.0175, "__idle__": 2.1125})
    shop = next(row for row in table.rows if row.name == "shop")
    # Two pods on one node in one project: those properties are shared, pod and controller are not.
    assert shop.properties == {"cluster": "c1", "namespace": "shop", "node": "n1", "providerID": "ecs://n1",
                               "project": "alpha", "controllerKind": "Deployment"}
    # Nothing is stored twice: the facts the engine saw were none, every hour came from the rollups.
    with ledger.facts(T0, T0 + 2 * H, plan=wanted(book, query)) as facts:
        assert facts.con.execute(f"SELECT count(*) FROM {facts.containers}").fetchone() == (0,)


QUERIES = list(itertools.product(
    [(Dimension.NAMESPACE,), (Dimension.CONTROLLER,), (Dimension.NODE,), (Dimension.PROJECT, Dimension.NAMESPACE),
     (Dimension.CONTROLLER_KIND,), (Dimension.CLUSTER,)],
    [None, 3600, 7200],
    list(rollup.METHODS),
    [(False, False), (True, False), (False, True)],  # (shareIdle, idleByNode)
))


@pytest.mark.parametrize("preset", [tiny, small], ids=["tiny", "small"])
def test_every_stored_answer_equals_the_live_one(tmp_path: Path, preset: object) -> None:
    spec = preset()  # type: ignore[operator]
    cluster = generate(spec)
    ledger = DuckDBLedger(tmp_path / "l.duckdb")
    for hour in range(spec.start, spec.end, H):
        ledger.write_hour(spec.name, hour, batch_of(fact_arrays(cluster, hour)), 1.0, ingested_at=spec.end)
    book = opencost_default()
    ledger.build_rollups(book, chunk_hours=5)  # several chunks, one of them short
    window = Window(datetime.fromtimestamp(spec.start, UTC), datetime.fromtimestamp(spec.end, UTC))
    for keys, step, method, (share_idle, by_node) in QUERIES:
        query = CostQuery(window=window, step_seconds=step, aggregate=tuple(AggregateKey(k) for k in keys),
                          method=method, share_idle=share_idle, idle_by_node=by_node)
        live, _ = answer(ledger, book, query, stored=False)
        stored, used = answer(ledger, book, query, stored=True)
        assert used
        assert live.rows, query
        assert_same(live, stored)


def test_rewritten_hours_and_live_edges_mix_with_stored_ones(tmp_path: Path) -> None:
    """27 hours from a UTC midnight: day 1 whole, then 3 hours of day 2. Hour 25 is written again (a
    re-ingest): every rollup of day 2 goes (its pod-level parts sum hours 24 and 25 together), day 1's
    stay; hour 26 arrives live. So hours 24-26 come from facts and day 1 from stored rows."""
    spec = dataclasses.replace(tiny(), hours=27)
    assert spec.start % 86400 == 0
    cluster = generate(spec)
    ledger = DuckDBLedger(tmp_path / "l.duckdb")
    hours = list(range(spec.start, spec.end, H))
    for hour in hours[:-1]:
        ledger.write_hour(spec.name, hour, batch_of(fact_arrays(cluster, hour)), 1.0, ingested_at=spec.end)
    book = opencost_default()
    ledger.build_rollups(book)
    ledger.write_hour(spec.name, hours[25], batch_of(fact_arrays(cluster, hours[25])), 1.0, ingested_at=spec.end)
    live_edge = batch_of(fact_arrays(cluster, hours[-1]))
    window = Window(datetime.fromtimestamp(spec.start, UTC), datetime.fromtimestamp(spec.end, UTC))
    for step, keys in ((H, (Dimension.NAMESPACE,)), (86400, (Dimension.POD,)), (None, (Dimension.CONTROLLER,))):
        query = CostQuery(window=window, step_seconds=step, aggregate=tuple(AggregateKey(k) for k in keys),
                          method=Method.EFFECTIVE, share_idle=step == H)
        with ledger.facts(spec.start, spec.end, live_edge, plan=wanted(book, query)) as facts:
            assert facts.stored is not None
            assert facts.con.execute(f"SELECT count(*) FROM {facts.stored.pods}").fetchone()[0] > 0  # type: ignore[index]
            hours_in_facts = facts.con.execute(
                f"SELECT DISTINCT segment_start - segment_start % 3600 FROM {facts.containers} ORDER BY 1").fetchall()
        assert [h for (h,) in hours_in_facts] == hours[24:], (step, keys)
        assert_same(answer(ledger, book, query, stored=False, live=live_edge)[0],
                    answer(ledger, book, query, stored=True, live=live_edge)[0])
    assert ledger.build_rollups(book) == 2 * len(rollup.METHODS)  # day 2's two ledger hours, rebuilt


def test_alauda_usage_from_stored_rows_equals_usage_from_facts(tmp_path: Path) -> None:
    """Cpu and Memory usage by project, namespace and cluster over 2026-01-01..02 by day, with hour 27
    rewritten: day 1 comes from its day rows, day 2 (its rollups forgotten) from the facts; by week,
    the same from day 1's day rows and day 2's facts within one period."""
    spec = dataclasses.replace(small(), hours=30)
    cluster = generate(spec)
    ledger = DuckDBLedger(tmp_path / "l.duckdb")
    for hour in range(spec.start, spec.end, H):
        ledger.write_hour(spec.name, hour, batch_of(fact_arrays(cluster, hour)), 1.0, ingested_at=spec.end)
    book = opencost_default()
    ledger.build_rollups(book)
    ledger.write_hour(spec.name, spec.start + 27 * H, batch_of(fact_arrays(cluster, spec.start + 27 * H)), 1.0,
                      ingested_at=spec.end)
    kinds = [(UsageKind.PROJECT_ALL, None), (UsageKind.NAMESPACE_ALL, None), (UsageKind.CLUSTER_ALL, None),
             (UsageKind.NAMESPACE, "ns-002")]
    for step in (CalendarStep.DAY, CalendarStep.WEEK):
        periods = calendar_periods(parse_date_range("2026-01-01", "2026-01-02"), step)
        start, end = periods[0].window.start_epoch(), periods[-1].window.end_epoch()
        for (kind, name), item, method in itertools.product(kinds, [Item.CPU, Item.MEMORY], list(rollup.METHODS)):
            query = UsageQuery(periods=periods, kind=kind, item=item, method=method, name=name)
            with ledger.facts(start, end) as facts:
                live = usage.compute_usage(facts, book, query)
            namespaces = plan.plan_usage(query, book)
            assert namespaces is not None
            with ledger.facts(start, end, plan=namespaces) as facts:
                assert facts.stored is not None
                assert facts.con.execute(f"SELECT DISTINCT segment_end - segment_start FROM {facts.stored.pods}"
                                         ).fetchall() == [(86400,)]  # day 1, as one day row per group
                stored = usage.compute_usage(facts, book, query, plan=namespaces)
            assert live, query
            assert [(r.project, r.cluster, r.namespace, r.start) for r in live] == [
                (r.project, r.cluster, r.namespace, r.start) for r in stored]
            for a, b in zip(live, stored, strict=True):
                assert a.usage == pytest.approx(b.usage, rel=1e-9, abs=1e-12)
                assert a.cost == pytest.approx(b.cost, rel=1e-9, abs=1e-12)


def test_a_price_change_makes_stored_rows_stale_until_rebuilt(tmp_path: Path) -> None:
    ledger = topology_ledger(tmp_path / "l.duckdb")
    old, new = opencost_default(), topology.default_book()
    ledger.build_rollups(old)
    query = CostQuery(window=topology.WINDOW, aggregate=(AggregateKey(Dimension.NAMESPACE),), method=Method.EFFECTIVE)
    _, used = answer(ledger, new, query, stored=True)
    assert not used  # nothing stored for the new prices: every hour is computed from the facts
    assert ledger.build_rollups(new) == 2 * len(rollup.METHODS)
    table, used = answer(ledger, new, query, stored=True)
    assert used
    assert {row.name: row.cost for row in table.rows}["shop"] == pytest.approx(0.65)
    fingerprints = ledger._con.execute("SELECT DISTINCT fingerprint FROM rollup_hours").fetchall()
    assert sorted(f for (f,) in fingerprints) == sorted(rollup.fingerprint(new, m) for m in rollup.METHODS)
    assert ledger.build_rollups(new) == 0  # nothing left to do


def test_queries_rollups_cannot_answer_are_refused_or_computed_live() -> None:
    assert rollup.level_for((AggregateKey(Dimension.NAMESPACE),)) == "namespace"
    assert rollup.level_for((AggregateKey(Dimension.CLUSTER), AggregateKey(Dimension.PROJECT))) == "namespace"
    assert rollup.level_for((AggregateKey(Dimension.NODE),)) == "node"
    assert rollup.level_for((AggregateKey(Dimension.CONTROLLER_KIND),)) == "controller"
    assert rollup.level_for((AggregateKey(Dimension.POD),)) == "pod"
    assert rollup.level_for((AggregateKey(Dimension.LABEL, "team"),)) == "labels"
    assert rollup.level_for((AggregateKey(Dimension.NAMESPACE), AggregateKey(Dimension.NODE))) == "pod"
    assert rollup.level_for((AggregateKey(Dimension.NAMESPACE),), frozenset({"namespace", "project"})) == "namespace"
    assert rollup.level_for((AggregateKey(Dimension.NAMESPACE),), frozenset({"labels"})) == "labels"
    assert rollup.level_for((AggregateKey(Dimension.LABEL, "team"),), frozenset({"pod"})) == "pod"
    assert rollup.level_for((AggregateKey(Dimension.NODE),), frozenset({"controller"})) == "pod"
    weighted = ShareSplit.WEIGHTED
    usable = functools.partial(plan.usable, method=Method.REQUEST, has_custom=False,
                               reads_shares=False, split=weighted, idle_by_node=False)
    assert usable(reads_shares=True)
    assert usable(method=Method.USAGE)
    assert not usable(method=Method.PROJECT_QUOTA)  # not a container basis
    assert not usable(has_custom=True)  # customWeights
    assert not usable(reads_shares=True, split=ShareSplit.EVEN)  # other shares
    assert not usable(reads_shares=True, idle_by_node=True)  # shares per node
    assert usable(split=ShareSplit.EVEN, idle_by_node=True)  # shares unused
    query = CostQuery(window=topology.WINDOW, aggregate=(AggregateKey(Dimension.POD),))
    with pytest.raises(ValueError, match="cannot answer"):
        pipeline.compute(dataclasses.replace(topology.topology_facts(), stored=rollup.Stored(Method.REQUEST, "namespace")),
                         topology.default_book(), query)


def test_runs_and_their_complement() -> None:
    assert rollups.runs([7200, 0, 3600, 14400], 2) == [(0, 7200), (7200, 10800), (14400, 18000)]
    assert rollups.complement([(3600, 7200), (10800, 14400)], 0, 18000) == [(0, 3600), (7200, 10800),
                                                                          (14400, 18000)]
    assert rollups.complement([(0, 18000)], 0, 18000) == []
    assert rollups.in_runs([]) == "FALSE"


def test_a_ledger_with_rollups_of_another_version_gets_them_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "l.duckdb"
    ledger = topology_ledger(path)
    ledger._con.execute("DROP TABLE rollup_pods_namespace")
    ledger._con.execute("CREATE TABLE rollup_pods_namespace (fingerprint VARCHAR, cluster VARCHAR)")  # an old shape
    ledger._con.execute("UPDATE ledger_meta SET value = 'old' WHERE key = 'rollup_version'")
    ledger.close()
    ledger = DuckDBLedger(path)
    assert ledger.build_rollups(topology.default_book()) == 2 * len(rollup.METHODS)
    query = CostQuery(window=topology.WINDOW, aggregate=(AggregateKey(Dimension.NAMESPACE),), method=Method.EFFECTIVE)
    table, used = answer(ledger, topology.default_book(), query, stored=True)
    assert used
    assert {row.name: row.cost for row in table.rows}["web"] == pytest.approx(0.60)


def test_the_ledger_takes_a_duckdb_memory_cap_and_refuses_a_malformed_one(tmp_path: Path) -> None:
    ledger = DuckDBLedger(tmp_path / "l.duckdb", memory_limit="300MB")
    found = ledger._con.execute("SELECT current_setting('memory_limit')").fetchone()
    assert found is not None
    assert str(found[0]).replace(" ", "") in ("286.1MiB", "300.0MB")  # DuckDB shows it in its own unit
    ledger.close()
    with pytest.raises(SpecError, match=r"e\.g\. 1GB"):
        DuckDBLedger(tmp_path / "m.duckdb", memory_limit="300MB'; DROP TABLE hours; --")
