"""Day rows and the pod level answer exactly as the facts do, whatever the keys, filter, step and method.

Evidence: a generated cluster (`tiny`: late nodes, gaps, jobs, pending pods) over 36 hours that start 5
hours before a UTC midnight (a partial day, one whole day, a partial day), priced by a book whose
second version starts at 13:00 on the whole day, with one hour of the last day written again (its
day's rollups are forgotten) and the last hour arriving live. For a seeded sample of queries (keys
including pod and labels, filters on namespaces, labels and controllers, steps of an hour, a day, a
day in Asia/Tokyo (+09:00: its midnights cut UTC days; a zone of half hours would cut the ledger's
hours, which the service collects live instead), none; every maintained method; idle shared or not, split evenly, by node), the answer read through
the planner's stored rows equals the live engine's row for row (rel 1e-9: only the order of sums
differs). The live engine is checked against independent references elsewhere (tests/unit/engine,
tests/integration), so equality carries those proofs to the stored levels.
"""

from __future__ import annotations

import dataclasses
import os
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from kubetally.bench.ledgers import batch_of
from kubetally.domain.aggregation import parse_aggregate
from kubetally.domain.errors import SpecError
from kubetally.domain.filters import parse_filter
from kubetally.domain.prices import PriceBook
from kubetally.domain.vocabulary import Method, ShareSplit
from kubetally.domain.window import Window
from kubetally.engine import pipeline, plan, rollup
from kubetally.engine.query import CostQuery
from kubetally.ledger.store import DuckDBLedger
from kubetally.synthetic import fact_arrays, generate, tiny
from tests.unit.engine import topology
from tests.unit.ledger.test_rollups import answer, assert_same

H, DAY = 3600, 86400
KEYS = ["pod", "label:app", "namespace", "controller", "node", "namespace,label:team", "controllerKind,node"]
FILTERS = [None, 'namespace:"shop","ml"', 'label[app]!:"__unallocated__"', 'namespace!:"batch"+controllerKind:"Deployment"',
           'label[team]~:"team-"|node:"__unallocated__"']
STEPS: list[tuple[int | None, str]] = [(None, "UTC"), (DAY, "UTC"), (H, "UTC"), (DAY, "Asia/Tokyo")]


def _book(changed_at: int) -> PriceBook:
    """Two versions: the fixture's prices, then (from `changed_at`) a dearer CPU and no fixed weights."""
    later = datetime.fromtimestamp(changed_at, UTC)
    return PriceBook(versions=(topology.default_version(),
                               topology.default_version(cpu_core_hour=Decimal("0.09"), weights=None,
                                                        effective_from=later)))


def test_day_rows_and_the_pod_level_equal_the_live_engine(tmp_path: Path) -> None:
    seed = int(os.environ.get("KUBETALLY_ROLLUP_SEED", "0") or 0) or random.SystemRandom().randrange(1, 2**31)
    print(f"rollup levels seed {seed} (KUBETALLY_ROLLUP_SEED={seed} to repeat)")
    rng = random.Random(seed)
    base = tiny()
    spec = dataclasses.replace(base, start=base.start - 5 * H, hours=36)
    midnight = spec.start + 5 * H
    assert midnight % DAY == 0
    cluster = generate(spec)
    ledger = DuckDBLedger(tmp_path / "l.duckdb")
    hours = list(range(spec.start, spec.end, H))
    for hour in hours[:-1]:
        ledger.write_hour(spec.name, hour, batch_of(fact_arrays(cluster, hour)), 1.0, ingested_at=spec.end)
    book = _book(midnight + 13 * H)
    ledger.build_rollups(book, chunk_hours=7)  # runs that cross midnights: the pod level's day parts
    rewritten = midnight + DAY + 3 * H
    ledger.write_hour(spec.name, rewritten, batch_of(fact_arrays(cluster, rewritten)), 1.0, ingested_at=spec.end)
    live_edge = batch_of(fact_arrays(cluster, hours[-1]))
    windows = [(spec.start, spec.end), (midnight, midnight + DAY), (spec.start + 2 * H, spec.end)]
    idle = [(False, ShareSplit.WEIGHTED, False), (True, ShareSplit.WEIGHTED, False), (False, ShareSplit.EVEN, False),
            (False, ShareSplit.WEIGHTED, True)]  # (shareIdle, shareSplit, idleByNode)
    cases = [(keys, where, step, method, sharing, window)
             for keys in KEYS for where in FILTERS for step in STEPS for method in rollup.METHODS
             for sharing in idle for window in windows]
    day_rows_read = 0
    for keys, where, (step, zone), method, (share, split, by_node), (start, end) in rng.sample(cases, 120):
        query = CostQuery(window=Window(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)),
                          step_seconds=step, time_zone=ZoneInfo(zone), aggregate=parse_aggregate(keys),
                          filter=parse_filter(where), method=method, share_idle=share, share_split=split,
                          idle_by_node=by_node)
        planned = plan.plan_cost(query, book)
        if planned is None:  # idle under a filter by another share rule: the facts answer (test_plan.py)
            assert where is not None, query
            assert split is ShareSplit.EVEN or by_node, query
            continue
        live = answer(ledger, book, query, stored=False, live=live_edge)[0]
        stored, used = answer(ledger, book, query, stored=True, live=live_edge)
        whole_day = start <= midnight and midnight + DAY <= end and planned.day_fits(midnight)
        assert used or not whole_day, query
        day_rows_read += whole_day
        assert_same(live, stored)
    assert day_rows_read > 0


def test_a_day_is_read_as_day_rows_only_once_every_hour_of_it_is_stored(tmp_path: Path) -> None:
    """Hours 00-22 of a day built, then hour 23 arrives and is built alone: only then is the day
    compacted, and its pod rows are one per pod and day (the 24 hourly parts of 2 runs folded into one)."""
    base = tiny()
    spec = dataclasses.replace(base, hours=24)
    cluster = generate(spec)
    ledger = DuckDBLedger(tmp_path / "l.duckdb")
    book = topology.default_book()
    for hour in range(spec.start, spec.end - H, H):
        ledger.write_hour(spec.name, hour, batch_of(fact_arrays(cluster, hour)), 1.0, ingested_at=spec.end)
    ledger.build_rollups(book)
    query = CostQuery(window=Window(datetime.fromtimestamp(spec.start, UTC),
                                    datetime.fromtimestamp(spec.start, UTC) + timedelta(days=1)),
                      step_seconds=DAY, aggregate=parse_aggregate("pod"), method=Method.REQUEST)
    planned = plan.plan_cost(query, book)
    assert planned is not None
    with ledger.facts(spec.start, spec.end, plan=planned) as facts:
        assert facts.stored is None  # 23 hours: no day to read, and the pod level has no hour rows
    last = spec.end - H
    ledger.write_hour(spec.name, last, batch_of(fact_arrays(cluster, last)), 1.0, ingested_at=spec.end)
    assert ledger.build_rollups(book) == len(rollup.METHODS)
    with ledger.facts(spec.start, spec.end, plan=planned) as facts:
        assert facts.stored is not None
        counts = facts.con.execute(
            f"SELECT count(*), count(DISTINCT (cluster, namespace, pod, pod_uid)), min(segment_start), "
            f"max(segment_end) FROM {facts.stored.pods}").fetchone()
        assert facts.con.execute(f"SELECT count(*) FROM {facts.containers}").fetchone() == (0,)
    assert counts is not None
    assert counts[0] == counts[1]  # one row per pod (no pod of tiny changes node, labels or project)
    assert counts[2:] == (spec.start, spec.end)
    assert_same(answer(ledger, book, query, stored=False)[0], answer(ledger, book, query, stored=True)[0])


def test_an_answer_over_the_row_cap_is_refused_from_the_stored_rows_before_any_fact_is_read(tmp_path: Path) -> None:
    """A day's 24 hours stored, the 25th hour written after the build (so it is read from its facts).

    The facts-only engine counts the answer's workload rows after computing them: N24 over the stored
    day, N25 over all 25 hours. Over the stored day alone (no fact to read), the cap N24 - 1 is refused
    with the exact count N24, from the stored rows. Over 25 hours with the cap N24 - 1, the stored rows'
    distinct (hour, controller) pairs are counted before the 25th hour's facts are materialised: the
    refusal says `at least N24` (a lower bound: live hours can only add rows), where the facts-only
    engine says N25."""
    spec = dataclasses.replace(tiny(), hours=25)
    cluster = generate(spec)
    ledger = DuckDBLedger(tmp_path / "l.duckdb")
    day_end = spec.start + 24 * H
    for hour in range(spec.start, day_end, H):
        ledger.write_hour(spec.name, hour, batch_of(fact_arrays(cluster, hour)), 1.0, ingested_at=spec.end)
    book = topology.default_book()
    ledger.build_rollups(book)
    ledger.write_hour(spec.name, day_end, batch_of(fact_arrays(cluster, day_end)), 1.0, ingested_at=spec.end)

    def query(end: int) -> CostQuery:
        return CostQuery(window=Window(datetime.fromtimestamp(spec.start, UTC), datetime.fromtimestamp(end, UTC)),
                         step_seconds=H, aggregate=parse_aggregate("controller"), method=Method.REQUEST)

    def rows(end: int) -> int:
        with ledger.facts(spec.start, end) as facts:
            return sum(row.kind == "workload" for row in pipeline.compute(facts, book, query(end)).rows)

    day, all_hours = rows(day_end), rows(spec.end)
    assert all_hours > day
    for end, expected in ((day_end, f"the answer has {day} rows"), (spec.end, f"the answer has at least {day} rows")):
        planned = plan.plan_cost(query(end), book)
        with ledger.facts(spec.start, end, plan=planned) as facts:
            assert facts.live is (end == spec.end)
            with pytest.raises(SpecError) as refused:
                pipeline.compute(facts, book, query(end), plan=planned, max_rows=day - 1)
        assert f"{expected} (groups × steps), over the cap of {day - 1}" in refused.value.message
    with ledger.facts(spec.start, spec.end) as facts, pytest.raises(SpecError) as live:
        pipeline.compute(facts, book, query(spec.end), max_rows=day - 1)
    assert f"the answer has {all_hours} rows (groups × steps), over the cap of {day - 1}" in live.value.message
