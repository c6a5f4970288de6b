"""Property tests: the DuckDB engine against the plain-Python reference (`tests.reference`).

Random valid fact sets, price books and queries come from `tests.strategies`. Rows are matched by
(step_start, kind, key): the generator keeps display names unique (pods, nodes, controllers), so
the key names the group. Money and quantities are compared with rel 1e-9, abs 1e-12.
"""

from __future__ import annotations

import math
import os
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubetally.domain.aggregation import AggregateKey, Dimension
from kubetally.domain.prices import PriceBook, PriceVersion
from kubetally.domain.vocabulary import Item, Method, ShareSplit, UsageKind
from kubetally.domain.window import CalendarPeriod, Window
from kubetally.engine.query import CostQuery, UsageQuery
from tests import strategies as gen
from tests.reference import (
    GIB,
    price_facts,
    reference_costs,
    reference_diagnostics,
    reference_node_costs,
    reference_step_totals,
    reference_usage,
)

pipeline = pytest.importorskip("kubetally.engine.pipeline")
usage = pytest.importorskip("kubetally.engine.usage")
from kubetally.engine.facts import load_facts  # noqa: E402

REL = 1e-9
ABS = 1e-12

PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("KUBETALLY_PROPERTY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

NUMERIC_FIELDS = (
    "cost",
    "shared_idle_cost",
    "cost_ratio",
    "cpu_core_request_average",
    "cpu_core_usage_average",
    "ram_byte_request_average",
    "ram_byte_usage_average",
    "cpu_core_hours",
    "memory_gib_hours",
)


# --- helpers ------------------------------------------------------------------------------------------


def close(a: float, b: float, rel: float = REL, abs_: float = ABS) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def run_engine(
    fs: gen.FactSet,
    book: PriceBook,
    query: CostQuery,
    custom: PriceBook | None = None,
    *,
    containers: list[dict[str, Any]] | None = None,
    nodes: list[dict[str, Any]] | None = None,
) -> Any:
    facts = load_facts(
        containers=fs.containers if containers is None else containers,
        nodes=fs.nodes if nodes is None else nodes,
        volumes=fs.volumes,
        quotas=fs.quotas,
    )
    return pipeline.compute(facts, book, query, custom_prices=custom)


def run_usage(fs: gen.FactSet, book: PriceBook, query: UsageQuery) -> tuple[Any, ...]:
    return usage.compute_usage(load_facts(**fs.load_kwargs()), book, query)


def by_key(rows: Iterable[Any]) -> dict[tuple[Any, ...], Any]:
    """Engine rows by (step_start, kind, key); a duplicate is a failure (names are unique)."""
    out: dict[tuple[Any, ...], Any] = {}
    for row in rows:
        ident = (row.step_start, row.kind, tuple(row.key))
        assert ident not in out, f"engine returned two rows {ident}"
        out[ident] = row
    return out


def ref_by_key(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[Any, ...], Mapping[str, Any]]:
    out: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for row in rows:
        ident = (row["step_start"], row["kind"], tuple(row["key"]))
        assert ident not in out, f"reference has two rows {ident} (generator names not unique?)"
        out[ident] = row
    return out


def describe(query: CostQuery) -> str:
    return (
        f"window={query.window.start_epoch()}..{query.window.end_epoch()} step={query.step_seconds} "
        f"aggregate={[key.display() for key in query.aggregate]} filter={query.filter} "
        f"method={query.method.value} idle={query.idle} share_idle={query.share_idle} "
        f"split={query.share_split.value} idle_by_node={query.idle_by_node}"
    )


def compare_rows(
    engine_rows: Iterable[Any], reference: list[dict[str, Any]], totals: Mapping[int, float], query: CostQuery
) -> None:
    """Every reference row has an equal engine row and vice versa.

    An idle-like row present on one side only is accepted when its cost is float noise (≤ 1e-9 of
    the step's node cost): `cost > 0` on a rounding residue is not a disagreement about the rules.
    """
    mine = ref_by_key(reference)
    theirs = by_key(engine_rows)
    problems: list[str] = []
    for ident in sorted(set(mine) | set(theirs), key=repr):
        noise = 1e-9 * totals.get(ident[0], 0.0) + ABS
        if ident not in theirs:
            row = mine[ident]
            if row["kind"] != "workload" and row["cost"] <= noise:
                continue
            problems.append(f"missing in engine: {ident} cost={row['cost']!r}")
            continue
        if ident not in mine:
            row = theirs[ident]
            if row.kind != "workload" and row.cost <= noise:
                continue
            problems.append(f"extra in engine: {ident} cost={row.cost!r}")
            continue
        ref, got = mine[ident], theirs[ident]
        if got.step_end != ref["step_end"]:
            problems.append(f"{ident} step_end engine={got.step_end} reference={ref['step_end']}")
        for name in NUMERIC_FIELDS:
            if not close(getattr(got, name), ref[name]):
                problems.append(f"{ident} {name}: engine={getattr(got, name)!r} reference={ref[name]!r}")
        if not same_optional(got.custom_cost, ref["custom_cost"]):
            problems.append(f"{ident} custom_cost: engine={got.custom_cost!r} reference={ref['custom_cost']!r}")
    assert not problems, describe(query) + "\n" + "\n".join(problems[:20])


def same_optional(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return close(a, b)


def node_cost_by_step(fs: gen.FactSet, book: PriceBook, query: CostQuery) -> dict[int, float]:
    return {s["step_start"]: s["node_cost"] for s in reference_step_totals(fs.containers, fs.nodes, book, query)}


def borderline(fs: gen.FactSet, book: PriceBook, query: CostQuery) -> bool:
    """True if some node-segment's basis cost is within float noise of its pool (scaling ambiguous)."""
    start, end = query.window.start_epoch(), query.window.end_epoch()
    priced = price_facts(fs.containers, fs.nodes, book, query.method, start, end)
    for segment in priced.nodes.values():
        for raw, pool in ((segment.raw_cpu, segment.cpu_pool), (segment.raw_mem, segment.mem_pool)):
            if raw > 0 and math.isclose(raw, pool, rel_tol=1e-9):
                return True
    return False


# --- scenarios ---------------------------------------------------------------------------------------


@st.composite
def scenarios(draw: st.DrawFn, *, overcommit: bool = False, unmatched: bool = False, **query_options: Any) -> Any:
    fs = draw(gen.fact_sets(overcommit=overcommit, unmatched=unmatched))
    book = draw(gen.price_books())
    custom = draw(st.one_of(st.none(), gen.price_books()))
    query = draw(gen.cost_queries(fs, **query_options))
    return fs, book, custom, query


any_fact_sets = st.one_of(gen.fact_sets(), gen.overcommitted_fact_sets())


# --- the reference on a hand-computed example -----------------------------------------------------------


def test_reference_hand_example() -> None:
    """One node (4 cores, 16 GiB, 1 h; 0.05/core-h, 0.01/GiB-h) and two pods, checked by hand."""
    start = gen.BASE
    node = {
        "cluster": "c", "node": "n", "labels": {}, "segment_start": start, "segment_end": start + 3600,
        "running_seconds": 3600.0, "cpu_capacity_core_seconds": 4 * 3600.0,
        "memory_capacity_byte_seconds": 16 * GIB * 3600.0, "hourly_price_seconds": None,
    }

    def container(pod: str, cores: float, gib: float) -> dict[str, Any]:
        return {
            "cluster": "c", "node": "n", "namespace": "ns", "project": None, "pod": pod, "pod_uid": pod,
            "container": "main", "controller_kind": None, "controller": None, "labels": {},
            "segment_start": start, "segment_end": start + 3600, "active_start": float(start),
            "active_end": start + 3600.0, "running_seconds": 3600.0,
            "cpu_request_core_seconds": cores * 3600, "cpu_usage_core_seconds": 0.0,
            "cpu_effective_core_seconds": cores * 3600, "memory_request_byte_seconds": gib * GIB * 3600,
            "memory_usage_byte_seconds": 0.0, "memory_effective_byte_seconds": gib * GIB * 3600,
        }

    containers = [container("a", 1, 4), container("b", 1, 0)]
    book = PriceBook((PriceVersion("USD", Decimal("0.05"), Decimal("0.01"), Decimal("0")),))
    window = Window(gen.at(start), gen.at(start + 3600))
    # P = 0.05·4 + 0.01·16 = 0.36; a = 0.05 + 0.04 = 0.09, b = 0.05; idle = 0.22.
    nodes = reference_node_costs(containers, [node], book)
    assert nodes[("c", "n", start, start + 3600)]["node_cost"] == pytest.approx(0.36)
    assert nodes[("c", "n", start, start + 3600)]["idle"] == pytest.approx(0.22)
    rows = reference_costs(containers, [node], book, CostQuery(window=window))
    costs = {row["key"]: row["cost"] for row in rows}
    assert costs == pytest.approx({("a",): 0.09, ("b",): 0.05, ("__idle__",): 0.22})
    shared = reference_costs(containers, [node], book, CostQuery(window=window, share_idle=True))
    costs = {row["key"]: row["cost"] for row in shared}
    assert costs == pytest.approx({("a",): 0.09 + 0.22 * 0.09 / 0.14, ("b",): 0.05 + 0.22 * 0.05 / 0.14})
    even = reference_costs(
        containers, [node], book, CostQuery(window=window, share_idle=True, share_split=ShareSplit.EVEN)
    )
    costs = {row["key"]: row["cost"] for row in even}
    assert costs == pytest.approx({("a",): 0.09 + 0.11, ("b",): 0.05 + 0.11})
    # Two whole-node cores of overcommit on CPU: raw 0.25 > pool 0.2 → both scaled by 0.8.
    over = [container("a", 3, 0), container("b", 2, 0)]
    rows = reference_costs(over, [node], book, CostQuery(window=window))
    costs = {row["key"]: row["cost"] for row in rows}
    assert costs == pytest.approx({("a",): 0.12, ("b",): 0.08, ("__idle__",): 0.16})


# --- (1) the engine equals the reference ----------------------------------------------------------------


@PROPERTY_SETTINGS
@given(scenarios())
def test_rows_equal_reference(scenario: Any) -> None:
    fs, book, custom, query = scenario
    table = run_engine(fs, book, query, custom)
    reference = reference_costs(fs.containers, fs.nodes, book, query, custom)
    compare_rows(table.rows, reference, node_cost_by_step(fs, book, query), query)


@PROPERTY_SETTINGS
@given(scenarios(overcommit=True))
def test_rows_equal_reference_when_overcommitted(scenario: Any) -> None:
    fs, book, custom, query = scenario
    table = run_engine(fs, book, query, custom)
    reference = reference_costs(fs.containers, fs.nodes, book, query, custom)
    compare_rows(table.rows, reference, node_cost_by_step(fs, book, query), query)


@PROPERTY_SETTINGS
@given(scenarios(unmatched=True))
def test_rows_equal_reference_with_unmatched_containers(scenario: Any) -> None:
    fs, book, custom, query = scenario
    table = run_engine(fs, book, query, custom)
    reference = reference_costs(fs.containers, fs.nodes, book, query, custom)
    compare_rows(table.rows, reference, node_cost_by_step(fs, book, query), query)
    expected = reference_diagnostics(fs.containers, fs.nodes, book, query)
    assert table.diagnostics.unmatched_container_facts == expected["unmatched_container_facts"]


@PROPERTY_SETTINGS
@given(st.one_of(scenarios(), scenarios(overcommit=True)))
def test_step_totals_equal_reference(scenario: Any) -> None:
    fs, book, custom, query = scenario
    table = run_engine(fs, book, query, custom)
    assert table.currency == book.currency
    assert table.custom_currency == (custom.currency if custom is not None else None)
    expected = {s["step_start"]: s for s in reference_step_totals(fs.containers, fs.nodes, book, query, custom)}
    got = {s.step_start: s for s in table.steps}
    for start in set(expected) | set(got):
        if start not in got:  # an engine may leave out steps without facts
            ref = expected[start]
            assert ref["node_cost"] == 0, f"step {start} missing: {ref}"
            assert ref["workload_cost"] == 0, f"step {start} missing: {ref}"
            continue
        assert start in expected, f"engine step {start} is not a step of the query: {describe(query)}"
        ref, step = expected[start], got[start]
        assert step.step_end == ref["step_end"]
        for name in ("node_cost", "workload_cost", "idle_cost"):
            assert close(getattr(step, name), ref[name]), (name, getattr(step, name), ref[name], describe(query))
        if custom is None:
            assert step.custom_node_cost is None
        else:
            assert step.custom_node_cost is not None
            assert close(step.custom_node_cost, ref["custom_node_cost"])


@PROPERTY_SETTINGS
@given(st.one_of(scenarios(), scenarios(overcommit=True), scenarios(unmatched=True)))
def test_diagnostics_equal_reference(scenario: Any) -> None:
    """Overcommitted node-segments (R6: a resource's cost was scaled) and unmatched facts (R7), for
    the main price book (without a custom book: which book's scaling counts is not specified)."""
    fs, book, _, query = scenario
    table = run_engine(fs, book, query)
    diagnostics = reference_diagnostics(fs.containers, fs.nodes, book, query)
    assert table.diagnostics.unmatched_container_facts == diagnostics["unmatched_container_facts"]
    if not borderline(fs, book, query):
        assert table.diagnostics.overcommitted_node_segments == diagnostics["overcommitted_node_segments"]


_PROPERTY_NAMES = ("cluster", "node", "namespace", "pod", "podUID", "controllerKind", "controller", "project")


@PROPERTY_SETTINGS
@given(scenarios(filtered=False))
def test_row_properties_are_shared_by_every_member(scenario: Any) -> None:
    """A dimension the engine reports in `properties` has that value in every member of the row."""
    fs, book, _, query = scenario
    table = run_engine(fs, book, query)
    reference = ref_by_key(reference_costs(fs.containers, fs.nodes, book, query))
    for row in table.rows:
        if row.kind != "workload":
            continue
        shared = reference[(row.step_start, row.kind, tuple(row.key))]["properties"]
        for name in _PROPERTY_NAMES:
            value = row.properties.get(name)
            if value in (None, "", "__unallocated__"):
                continue
            assert shared.get(name) == value, (row.key, name, value, shared, describe(query))


# --- (2) conservation per node-segment -------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(st.data())
def test_conservation_per_node_segment(data: st.DataObject) -> None:
    fs = data.draw(any_fact_sets)
    book = data.draw(gen.price_books())
    method = data.draw(st.sampled_from(gen.COST_METHODS))
    query = CostQuery(
        window=Window(gen.at(gen.BASE), gen.at(gen.BASE + 3600 * fs.segments)),
        step_seconds=3600,
        aggregate=(AggregateKey(Dimension.NODE),),
        method=method,
        idle=True,
        share_idle=False,
        idle_by_node=True,
    )
    table = run_engine(fs, book, query)
    per_node: dict[tuple[int, str], float] = defaultdict(float)
    for row in table.rows:
        name = row.key[0].removeprefix("idle:") if row.kind == "idle" else row.key[0]
        per_node[(row.step_start, name)] += row.cost
    expected = reference_node_costs(fs.containers, fs.nodes, book, method)
    for (_, node, start, _), values in expected.items():
        assert close(per_node.get((start, node), 0.0), values["node_cost"]), (node, start, values)
        assert close(values["workload_cost"] + values["idle"], values["node_cost"])


# --- (3) step invariance ----------------------------------------------------------------------------------


def _sum_by_group(rows: Iterable[Any]) -> dict[tuple[Any, ...], float]:
    sums: dict[tuple[Any, ...], float] = defaultdict(float)
    for row in rows:
        sums[(row.kind, tuple(row.key))] += row.cost
    return sums


def _same_sums(a: Mapping[tuple[Any, ...], float], b: Mapping[tuple[Any, ...], float], scale: float) -> None:
    for group in set(a) | set(b):
        x, y = a.get(group, 0.0), b.get(group, 0.0)
        assert close(x, y, abs_=ABS + 1e-9 * scale), (group, x, y)


@PROPERTY_SETTINGS
@given(st.data())
def test_step_invariance(data: st.DataObject) -> None:
    fs = data.draw(any_fact_sets)
    book = data.draw(gen.price_books())
    base = data.draw(gen.cost_queries(fs, full_window=True))
    share = data.draw(st.booleans())
    scale = sum(reference_node_costs(fs.containers, fs.nodes, book, base.method)[k]["node_cost"]
                for k in reference_node_costs(fs.containers, fs.nodes, book, base.method))
    sums = []
    for step in (3600, None, 86400):
        query = CostQuery(
            window=base.window, step_seconds=step, aggregate=base.aggregate, filter=base.filter,
            method=base.method, idle=True, share_idle=share, share_split=base.share_split,
            idle_by_node=base.idle_by_node,
        )
        sums.append(_sum_by_group(run_engine(fs, book, query).rows))
    _same_sums(sums[0], sums[1], scale)
    _same_sums(sums[1], sums[2], scale)


# --- (4) permutation invariance -----------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(scenarios(), st.randoms(use_true_random=False))
def test_permutation_invariance(scenario: Any, rng: random.Random) -> None:
    fs, book, custom, query = scenario
    first = run_engine(fs, book, query, custom)
    containers, nodes = list(fs.containers), list(fs.nodes)
    rng.shuffle(containers)
    rng.shuffle(nodes)
    second = run_engine(fs, book, query, custom, containers=containers, nodes=nodes)
    a, b = by_key(first.rows), by_key(second.rows)
    assert set(a) == set(b)
    for ident, row in a.items():
        other = b[ident]
        for name in NUMERIC_FIELDS:
            assert close(getattr(row, name), getattr(other, name)), (ident, name)
        assert (row.custom_cost is None) == (other.custom_cost is None)
        if row.custom_cost is not None:
            assert close(row.custom_cost, other.custom_cost)
        assert dict(row.properties) == dict(other.properties)
        assert (dict(row.labels) if row.labels is not None else None) == (
            dict(other.labels) if other.labels is not None else None
        )


# --- (5) no negative or non-finite numbers ------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(st.one_of(scenarios(), scenarios(overcommit=True), scenarios(unmatched=True)))
def test_no_negative_or_non_finite_values(scenario: Any) -> None:
    fs, book, custom, query = scenario
    table = run_engine(fs, book, query, custom)
    for row in table.rows:
        values = {name: getattr(row, name) for name in NUMERIC_FIELDS}
        if row.custom_cost is not None:
            values["custom_cost"] = row.custom_cost
        for name, value in values.items():
            assert math.isfinite(value), (row.kind, row.key, name, value, describe(query))
            assert value >= 0, (row.kind, row.key, name, value, describe(query))
    for step in table.steps:
        for name in ("node_cost", "workload_cost", "idle_cost", "custom_node_cost"):
            value = getattr(step, name)
            if value is not None:
                assert math.isfinite(value), (step.step_start, name, value)
                assert value >= 0, (step.step_start, name, value)


# --- (6) sharing idle moves cost, it does not create or lose it ---------------------------------------------


@PROPERTY_SETTINGS
@given(st.one_of(scenarios(filtered=False), scenarios(overcommit=True, filtered=False)))
def test_share_idle_keeps_the_total(scenario: Any) -> None:
    fs, book, _, base = scenario
    shared = CostQuery(
        window=base.window, step_seconds=base.step_seconds, aggregate=base.aggregate, method=base.method,
        idle=True, share_idle=True, share_split=base.share_split, idle_by_node=base.idle_by_node,
    )
    separate = CostQuery(
        window=base.window, step_seconds=base.step_seconds, aggregate=base.aggregate, method=base.method,
        idle=True, share_idle=False, share_split=base.share_split, idle_by_node=base.idle_by_node,
    )
    total_shared = sum(row.cost for row in run_engine(fs, book, shared).rows)
    total_separate = sum(row.cost for row in run_engine(fs, book, separate).rows)
    assert close(total_shared, total_separate), (total_shared, total_separate, describe(base))
    expected = sum(s["node_cost"] for s in reference_step_totals(fs.containers, fs.nodes, book, base))
    assert close(total_separate, expected), (total_separate, expected, describe(base))


# --- (7) cost ratios add up to 1 per step -----------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(st.one_of(scenarios(filtered=False, idle=True), scenarios(overcommit=True, filtered=False, idle=True)))
def test_cost_ratios_sum_to_one(scenario: Any) -> None:
    fs, book, _, query = scenario
    table = run_engine(fs, book, query)
    ratios: dict[int, float] = defaultdict(float)
    for row in table.rows:
        ratios[row.step_start] += row.cost_ratio
    for start, node_cost in node_cost_by_step(fs, book, query).items():
        if node_cost > 0:
            assert close(ratios.get(start, 0.0), 1.0), (start, ratios.get(start), describe(query))
        else:
            assert ratios.get(start, 0.0) == 0.0


# --- (8) Alauda usage agrees with /v2/cost, and with the reference --------------------------------------------


@PROPERTY_SETTINGS
@given(st.data())
def test_usage_cost_equals_workload_cost(data: st.DataObject) -> None:
    fs = data.draw(any_fact_sets)
    book = data.draw(gen.price_books())
    day = CalendarPeriod(Window(gen.at(gen.BASE), gen.at(gen.BASE + 86400)), date(2025, 6, 1), date(2025, 6, 1))
    usage_cost = 0.0
    for item in (Item.CPU, Item.MEMORY):
        query = UsageQuery(periods=(day,), kind=UsageKind.CLUSTER_ALL, item=item, method=Method.EFFECTIVE)
        usage_cost += sum(row.cost for row in run_usage(fs, book, query))
    cost_query = CostQuery(
        window=Window(gen.at(gen.BASE), gen.at(gen.BASE + 3600 * fs.segments)),
        aggregate=(AggregateKey(Dimension.NAMESPACE),),
        method=Method.EFFECTIVE,
        idle=False,
    )
    workload = sum(row.cost for row in run_engine(fs, book, cost_query).rows if row.kind == "workload")
    assert close(usage_cost, workload), (usage_cost, workload)


@PROPERTY_SETTINGS
@given(st.data())
def test_usage_rows_equal_reference(data: st.DataObject) -> None:
    fs = data.draw(st.one_of(gen.fact_sets(), gen.overcommitted_fact_sets(), gen.fact_sets(unmatched=True)))
    book = data.draw(gen.price_books())
    query = data.draw(gen.usage_queries(fs))
    got = run_usage(fs, book, query)
    expected = reference_usage(fs.containers, fs.nodes, fs.volumes, fs.quotas, book, query)
    shown = [(r.start, r.project, r.cluster, r.namespace) for r in got]
    wanted = [(r["start"], r["project"], r["cluster"], r["namespace"]) for r in expected]
    assert shown == wanted, (query, shown, wanted)
    for row, ref in zip(got, expected, strict=True):
        assert row.end == ref["end"]
        assert row.item == ref["item"]
        assert row.method == ref["method"]
        assert row.currency == ref["currency"]
        assert close(row.usage, ref["usage"]), ("usage", row, ref)
        assert close(row.cost, ref["cost"]), ("cost", row, ref)
