"""CORRECTNESS.md scenarios on the tiny generated cluster, ingested from a real Prometheus.

The tiny cluster (kubetally.synthetic.presets.tiny, seed 1) holds, relative to its start T:
Jobs of 10 s (web-job, T+10246), 45 s (api-job, T+8418), 240 s (cart-job) and 3660 s (search-job);
a Pending pod with requests (big-batch); StatefulSet pod `search-db-0-0` ending at T+5413 and
coming back under the same name with a new UID at T+5858; a bare pod `toolbox-…` with no requests;
a PVC `web-0-shared` mounted by three pods. Every expected number comes from the generator's model
(`expected_facts`), not from the code under test; expected costs are the plain-Python oracle
(tests/reference.py) run on those exact facts, hour by hour, with OpenCost's default prices.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubetally import ingest
from kubetally.domain.aggregation import parse_aggregate
from kubetally.domain.filters import parse_filter
from kubetally.domain.prices import opencost_default
from kubetally.domain.vocabulary import Method
from kubetally.domain.window import Window
from kubetally.engine import pipeline
from kubetally.engine.facts import load_facts
from kubetally.engine.query import CostQuery, CostTable
from kubetally.ledger.store import DuckDBLedger
from kubetally.sources.prometheus import PrometheusClient
from kubetally.synthetic import expected_facts
from tests.integration.conftest import Served
from tests.integration.ledgers import config_for, ingest_all, ledger_records, run_in_thread
from tests.reference import reference_costs

pytestmark = pytest.mark.integration
BOOK = opencost_default()


@pytest.fixture(scope="module")
def ledger(tiny: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBLedger]:
    store = run_in_thread(ingest_all(tiny, tmp_path_factory.mktemp("scenarios") / "l.duckdb"))
    yield store
    store.close()


def window(served: Served, start: int = 0, end: int | None = None) -> Window:
    from datetime import UTC, datetime

    spec = served.cluster.spec
    stop = spec.end if end is None else spec.start + end
    return Window(datetime.fromtimestamp(spec.start + start, UTC), datetime.fromtimestamp(stop, UTC))


def run(ledger: DuckDBLedger, served: Served, **options: object) -> CostTable:
    win = options.pop("window", window(served))
    assert isinstance(win, Window)
    with ledger.facts(win.start_epoch(), win.end_epoch()) as facts:
        return pipeline.compute(facts, BOOK, CostQuery(window=win, **options))  # type: ignore[arg-type]


def oracle(served: Served, **options: object) -> dict[str, dict[str, float]]:
    """The oracle's workload rows of the query `run` makes, keyed by pod UID: cost and core-hours,
    from the generator's exact facts of every hour of the cluster."""
    win = options.pop("window", window(served))
    assert isinstance(win, Window)
    spec = served.cluster.spec
    parts = [expected_facts(served.cluster, hour, hour + 3600) for hour in range(spec.start, spec.end, 3600)]
    rows = reference_costs([c for p in parts for c in p.containers], [n for p in parts for n in p.nodes], BOOK,
                           CostQuery(window=win, **options))  # type: ignore[arg-type]
    return {row["properties"]["podUID"]: {"cost": row["cost"], "cpu_core_hours": row["cpu_core_hours"]}
            for row in rows if row["kind"] == "workload"}


def test_row7_a_reused_pod_name_is_two_allocations_without_bridging(ledger: DuckDBLedger, tiny: Served) -> None:
    query = {"aggregate": parse_aggregate("pod"), "filter": parse_filter('pod:"search-db-0-0"'),
             "method": Method.EFFECTIVE, "idle": False}
    table = run(ledger, tiny, **query)
    rows = sorted(table.rows, key=lambda row: row.properties["podUID"])
    assert len(rows) == 2
    assert len({row.properties["podUID"] for row in rows}) == 2
    expected_rows = oracle(tiny, **query)
    assert {row.properties["podUID"]: row.cost for row in rows} == pytest.approx(
        {uid: row["cost"] for uid, row in expected_rows.items()}, rel=1e-9)
    assert {row.properties["podUID"]: row.cpu_core_hours for row in rows} == pytest.approx(
        {uid: row["cpu_core_hours"] for uid, row in expected_rows.items()}, rel=1e-9)
    whole = expected_facts(tiny.cluster, tiny.cluster.spec.start, tiny.cluster.spec.end).containers
    for row in rows:
        expected = [f for f in whole if f["pod_uid"] == row.properties["podUID"]]
        hours = sum(float(f["cpu_request_core_seconds"]) for f in expected) / 3600  # type: ignore[arg-type]
        running = sum(float(f["running_seconds"]) for f in expected)  # type: ignore[arg-type]
        # The request is 1 core, so the request average over the row's own span is exactly 1:
        # the span is the pod's running time, never the gap between the two lives.
        assert row.cpu_core_request_average == pytest.approx(hours * 3600 / running)
    start = tiny.cluster.spec.start
    facts = [f for f in ledger_records(ledger, "container_facts", start, tiny.cluster.spec.end)
             if f["pod"] == "search-db-0-0"]
    ends = {f["pod_uid"]: max(float(g["active_end"]) for g in facts if g["pod_uid"] == f["pod_uid"]) for f in facts}
    starts = {f["pod_uid"]: min(float(g["active_start"]) for g in facts if g["pod_uid"] == f["pod_uid"]) for f in facts}
    old, new = sorted(ends, key=lambda uid: ends[uid])
    assert ends[old] <= start + 5413 + 60
    assert starts[new] >= start + 5858


def test_row8_facts_stay_inside_their_segment_and_are_finite(ledger: DuckDBLedger, tiny: Served) -> None:
    spec = tiny.cluster.spec
    for fact in ledger_records(ledger, "container_facts", spec.start, spec.end):
        a, b = int(fact["segment_start"]), int(fact["segment_end"])  # type: ignore[call-overload]
        assert a <= float(fact["active_start"]) <= float(fact["active_end"]) <= b  # type: ignore[arg-type]
        assert 0 < float(fact["running_seconds"]) <= b - a  # type: ignore[arg-type]
        for name, value in fact.items():
            if isinstance(value, float):
                assert math.isfinite(value), name
                assert value >= 0, name


def test_row9_short_jobs_within_one_scrape_and_pending_pods_cost_nothing(ledger: DuckDBLedger, tiny: Served) -> None:
    """Error bound: a pod's running time is its lifetime to within one resolution step (60 s)."""
    spec = tiny.cluster.spec
    facts = ledger_records(ledger, "container_facts", spec.start, spec.end)
    for pod in tiny.cluster.pods:
        if pod.owner_kind != "Job":
            continue
        running = sum(float(f["running_seconds"]) for f in facts if f["pod_uid"] == pod.uid)  # type: ignore[arg-type]
        lifetime = min(pod.end, spec.end) - max(pod.start, spec.start)
        assert abs(running - lifetime) <= spec.scrape_seconds, pod.name
    pending = [pod for pod in tiny.cluster.pods if pod.pending]
    assert pending
    assert not any(f["pod_uid"] in {p.uid for p in pending} for f in facts)


def test_row10_steps_are_invariant(ledger: DuckDBLedger, tiny: Served) -> None:
    for share in (False, True):
        options = {"aggregate": parse_aggregate("namespace"), "method": Method.EFFECTIVE, "share_idle": share}
        hourly, whole = run(ledger, tiny, step_seconds=3600, **options), run(ledger, tiny, **options)
        daily = run(ledger, tiny, step_seconds=86400, **options)
        for name in {row.name for row in whole.rows}:
            total = sum(row.cost for row in whole.rows if row.name == name)
            assert sum(row.cost for row in hourly.rows if row.name == name) == pytest.approx(total, rel=1e-9)
            assert sum(row.cost for row in daily.rows if row.name == name) == pytest.approx(total, rel=1e-9)
        assert all(row.step_end - row.step_start == 3600 for row in hourly.rows)


def test_row11_boundary_samples_count_once(ledger: DuckDBLedger, tiny: Served) -> None:
    """Hours [h, h+1h) are half-open: Σ over the three hours = the whole range as one segment."""
    spec = tiny.cluster.spec
    whole = expected_facts(tiny.cluster, spec.start, spec.end).containers
    per_uid: dict[str, float] = {}
    for fact in ledger_records(ledger, "container_facts", spec.start, spec.end):
        per_uid[str(fact["pod_uid"])] = per_uid.get(str(fact["pod_uid"]), 0.0) + float(fact["running_seconds"])  # type: ignore[arg-type]
    expected: dict[str, float] = {}
    for fact in whole:
        expected[str(fact["pod_uid"])] = expected.get(str(fact["pod_uid"]), 0.0) + float(fact["running_seconds"])  # type: ignore[arg-type]
    assert per_uid == pytest.approx(expected)


async def test_row11_a_window_before_the_data_reports_coverage(tiny: Served, tmp_path: Path) -> None:
    spec = tiny.cluster.spec
    store = DuckDBLedger(tmp_path / "l.duckdb")
    async with PrometheusClient(tiny.url) as client:
        _, plan = await ingest.window_facts(client, store, config_for(tiny), spec.start - 3600, spec.start + 3600)
    assert plan.coverage == {spec.start - 3600: 0.0, spec.start: 1.0}


def test_row13_a_busy_pod_without_requests_costs_something(ledger: DuckDBLedger, tiny: Served) -> None:
    query = {"aggregate": parse_aggregate("pod"), "filter": parse_filter('pod<~:"toolbox-"'), "idle": False}
    effective = run(ledger, tiny, method=Method.EFFECTIVE, **query)
    request = run(ledger, tiny, method=Method.REQUEST, **query)
    assert [row.cost for row in request.rows] == [0.0]
    [expected] = oracle(tiny, method=Method.EFFECTIVE, **query).values()
    assert [row.cost for row in effective.rows] == pytest.approx([expected["cost"]], rel=1e-9)
    assert expected["cost"] > 0  # the oracle itself: usage without requests is priced


def test_row5_a_shared_volume_is_counted_once(ledger: DuckDBLedger, tiny: Served) -> None:
    spec = tiny.cluster.spec
    volumes = [v for v in ledger_records(ledger, "volume_facts", spec.start, spec.end) if v["pvc"] == "web-0-shared"]
    assert len(volumes) == 3  # one fact per hour, whatever the number of pods mounting it
    expected = [v for v in expected_facts(tiny.cluster, spec.start, spec.end).volumes if v["pvc"] == "web-0-shared"]
    total = sum(float(v["effective_byte_seconds"]) for v in volumes)  # type: ignore[arg-type]
    assert total == pytest.approx(sum(float(v["effective_byte_seconds"]) for v in expected))  # type: ignore[arg-type]


async def test_live_edges_equal_the_facts_of_the_partial_segments(ledger: DuckDBLedger, tiny: Served) -> None:
    """Window [T+30m, T+2h40m): h0's second half and h2's first 40 minutes are live, h1 from the ledger."""
    spec = tiny.cluster.spec
    win = window(tiny, 1800, 2 * 3600 + 2400)
    async with PrometheusClient(tiny.url) as client:
        live, plan = await ingest.window_facts(client, ledger, config_for(tiny), win.start_epoch(), win.end_epoch())
    assert plan.ledger_hours == (spec.start + 3600,)
    assert plan.live == ((spec.start + 1800, spec.start + 3600), (spec.start + 7200, spec.start + 9600))
    query = CostQuery(window=win, aggregate=parse_aggregate("namespace"), method=Method.EFFECTIVE)
    with ledger.facts(win.start_epoch(), win.end_epoch(), live) as facts:
        answer = {row.name: row.cost for row in pipeline.compute(facts, BOOK, query).rows}
    parts = [expected_facts(tiny.cluster, a, b) for a, b in
             ((spec.start + 1800, spec.start + 3600), (spec.start + 3600, spec.start + 7200),
              (spec.start + 7200, spec.start + 9600))]
    reference = load_facts(containers=[c for p in parts for c in p.containers], nodes=[n for p in parts for n in p.nodes])
    expected = {row.name: row.cost for row in pipeline.compute(reference, BOOK, query).rows}
    assert answer == pytest.approx(expected, rel=1e-9)


async def test_backfill_finds_where_the_store_begins(tiny: Served) -> None:
    """The tiny cluster's samples start at its spec.start (objects that began earlier have no older
    samples): the start-up backfill goes exactly that far back."""
    spec = tiny.cluster.spec
    async with PrometheusClient(tiny.url) as client:
        earliest = await ingest.earliest_data(client, config_for(tiny), now=spec.end)
    assert earliest == spec.start


def test_a_hostile_label_value_filters_literally(ledger: DuckDBLedger, tiny: Served) -> None:
    """The first Deployment's pods carry team=`a"b\\c{d}|e`; a filter on it selects exactly them."""
    hostile = [pod for pod in tiny.cluster.pods if dict(pod.labels).get("team") == 'a"b\\c{d}|e']
    assert hostile
    table = run(ledger, tiny, aggregate=parse_aggregate("pod"), method=Method.EFFECTIVE, idle=False,
                filter=parse_filter('label[team]:"a\\"b\\\\c{d}|e"'))
    assert {row.properties["podUID"] for row in table.rows} == {pod.uid for pod in hostile}
