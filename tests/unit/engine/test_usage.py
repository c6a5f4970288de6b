"""Alauda usage rows on the documented topology (topology.py).

Hand-derived per project, window 2025-06-01 00:00–02:00 (one day, so one period for every step):
    item/method           alpha usage  alpha cost                 beta usage  beta cost
    Cpu Effective         8.5 core-h   0.85  (8.5 × 0.1)          2.25        0.1 + 0.05 + 0.0125 = 0.1625
    Cpu Request           8            0.8                        1.25        0.05 + 0.0125 = 0.0625
    Cpu Usage             4.5          0.45                       1.75        0.1 + 0.025 + 0.0125 = 0.1375
    Cpu ProjectQuota      8 (shop 4×2) 0.4 (× cpuCoreHour 0.05)   4           0.2
    Memory Effective      16 GiB-h     0.4  (16 × 0.025)          4.5         0.05 + 0.02 + 0.005 = 0.075
    Memory Request        16           0.4                        2.5         0.02 + 0.005 = 0.025
    Memory Usage          8            0.2                        3.25        0.05 + 0.01 + 0.0025 = 0.0625
    Memory ProjectQuota   16           0.16 (× 0.01)              8           0.08
    Storage Effective     20           0.002 (× 0.0001)           200         0.04 (× ssd 0.0002)
    Storage Request       20           0.002                      200         0.04
    Storage Usage         10           0.001                      80          0.016
    Storage ProjectQuota  100          0.01 (× 0.0001)            400         0.04
"""

from __future__ import annotations

import pytest

from kubetally.api.pages import paginate
from kubetally.domain.errors import SpecError
from kubetally.domain.filters import parse_filter
from kubetally.domain.vocabulary import Item, Method, UsageKind
from kubetally.domain.window import CalendarStep, calendar_periods, parse_date_range
from kubetally.engine import pipeline, usage
from kubetally.engine.facts import Facts
from kubetally.engine.query import CostQuery, UsageQuery
from tests.unit.engine import topology

APPROX = {"rel": 1e-12, "abs": 1e-12}
PERIODS = calendar_periods(parse_date_range("2025-06-01", "2025-06-01"), CalendarStep.MONTH)

TABLE = {
    ("Cpu", "Effective"): {"alpha": (8.5, 0.85), "beta": (2.25, 0.1625)},
    ("Cpu", "Request"): {"alpha": (8, 0.8), "beta": (1.25, 0.0625)},
    ("Cpu", "Usage"): {"alpha": (4.5, 0.45), "beta": (1.75, 0.1375)},
    ("Cpu", "ProjectQuota"): {"alpha": (8, 0.4), "beta": (4, 0.2)},
    ("Memory", "Effective"): {"alpha": (16, 0.4), "beta": (4.5, 0.075)},
    ("Memory", "Request"): {"alpha": (16, 0.4), "beta": (2.5, 0.025)},
    ("Memory", "Usage"): {"alpha": (8, 0.2), "beta": (3.25, 0.0625)},
    ("Memory", "ProjectQuota"): {"alpha": (16, 0.16), "beta": (8, 0.08)},
    ("Storage", "Effective"): {"alpha": (20, 0.002), "beta": (200, 0.04)},
    ("Storage", "Request"): {"alpha": (20, 0.002), "beta": (200, 0.04)},
    ("Storage", "Usage"): {"alpha": (10, 0.001), "beta": (80, 0.016)},
    ("Storage", "ProjectQuota"): {"alpha": (100, 0.01), "beta": (400, 0.04)},
}


def flat(pairs: dict[object, tuple[float, float]]) -> dict[tuple[object, str], float]:
    """{key: (usage, cost)} → {(key, "usage"): usage, (key, "cost"): cost}, for pytest.approx."""
    return {(key, part): value for key, both in pairs.items() for part, value in zip(("usage", "cost"), both, strict=True)}


@pytest.mark.parametrize(("item", "method"), sorted(TABLE))
def test_every_item_and_method_per_project(facts: Facts, item: str, method: str) -> None:
    rows = usage.compute_usage(
        facts, topology.default_book(), UsageQuery(periods=PERIODS, item=Item(item), method=Method(method))
    )
    got = {row.project: (row.usage, row.cost) for row in rows}
    assert flat(got) == pytest.approx(flat(TABLE[item, method]), **APPROX)
    assert {(row.cluster, row.namespace, row.currency, row.start, row.end) for row in rows} == {
        ("c1", "", "CNY", "20250601", "20250601")
    }
    assert {(row.item.value, row.method.value) for row in rows} == {(item, method)}


def test_namespace_kinds(facts: Facts) -> None:
    rows = usage.compute_usage(
        facts, topology.default_book(), UsageQuery(periods=PERIODS, kind=UsageKind.NAMESPACE_ALL)
    )
    assert flat({(r.project, r.namespace): (r.usage, r.cost) for r in rows}) == pytest.approx(
        flat(
            {
                ("alpha", "shop"): (4.5, 0.45),
                ("alpha", "web"): (4.0, 0.4),
                ("beta", "data"): (2.0, 0.15),
                ("beta", "batch"): (0.25, 0.0125),
            }
        ),
        **APPROX,
    )
    one = usage.compute_usage(
        facts, topology.default_book(), UsageQuery(periods=PERIODS, kind=UsageKind.NAMESPACE, name="web")
    )
    assert [(r.namespace, r.usage) for r in one] == [("web", pytest.approx(4.0))]


def test_cluster_kinds_and_named_project(facts: Facts) -> None:
    book = topology.default_book()
    rows = usage.compute_usage(facts, book, UsageQuery(periods=PERIODS, kind=UsageKind.CLUSTER_ALL))
    assert [(r.project, r.cluster, r.namespace, r.usage) for r in rows] == [("", "c1", "", pytest.approx(10.75))]
    assert usage.compute_usage(facts, book, UsageQuery(periods=PERIODS, kind=UsageKind.CLUSTER, name="other")) == ()
    named = usage.compute_usage(facts, book, UsageQuery(periods=PERIODS, kind=UsageKind.PROJECT, name="beta"))
    assert [(r.project, r.usage) for r in named] == [("beta", pytest.approx(2.25))]


def test_project_scope_never_shows_another_project(facts: Facts) -> None:
    for kind in UsageKind:
        rows = usage.compute_usage(
            facts, topology.default_book(), UsageQuery(periods=PERIODS, kind=kind, project="alpha", name="c1")
        )
        assert all(row.project in {"alpha", ""} for row in rows)
        if kind is UsageKind.CLUSTER_ALL:
            assert [row.usage for row in rows] == [pytest.approx(8.5)]


def test_day_periods_put_facts_in_their_day(facts: Facts) -> None:
    periods = calendar_periods(parse_date_range("2025-05-31", "2025-06-02"), CalendarStep.DAY)
    rows = usage.compute_usage(facts, topology.default_book(), UsageQuery(periods=periods, kind=UsageKind.CLUSTER_ALL))
    assert [(row.start, row.end) for row in rows] == [("20250601", "20250601")]


def test_cpu_and_memory_cost_equal_the_v2_workload_cost(facts: Facts) -> None:
    book = topology.default_book()
    total = sum(
        row.cost
        for item in (Item.CPU, Item.MEMORY)
        for row in usage.compute_usage(facts, book, UsageQuery(periods=PERIODS, item=item))
    )
    table = pipeline.compute(facts, book, CostQuery(window=topology.WINDOW, method=Method.EFFECTIVE, idle=False))
    assert total == pytest.approx(sum(row.cost for row in table.rows), **APPROX)
    assert total == pytest.approx(1.4875, **APPROX)


def test_pages_cover_every_row_once(facts: Facts) -> None:
    """namespace_all gives 4 rows (batch, data, shop, web in project/cluster/namespace order)."""
    rows = usage.compute_usage(facts, topology.default_book(), UsageQuery(periods=PERIODS, kind=UsageKind.NAMESPACE_ALL))
    assert [row.namespace for row in rows] == ["shop", "web", "batch", "data"]
    assert paginate(rows) == (4, rows)
    pages = [paginate(rows, page, 3) for page in (1, 2, 3)]
    assert [(total, [r.namespace for r in items]) for total, items in pages] == [
        (4, ["shop", "web", "batch"]), (4, ["data"]), (4, [])]


@pytest.mark.parametrize(("page", "size", "field"), [(0, 20, "currentPage"), (-1, 20, "currentPage"),
                                                      (1, 0, "pageSize"), (1, 1001, "pageSize")])
def test_bad_pages_are_refused(page: int, size: int, field: str) -> None:
    with pytest.raises(SpecError) as error:
        paginate((), page, size)
    assert error.value.field == field
    assert "e.g." in error.value.message


@pytest.mark.parametrize(
    ("filter_text", "item", "expected"),
    [
        # Per namespace (topology.py): Cpu Effective shop 4.5 core-h / 0.45 (web-1 2 + burst-1 2.5, × 0.1 on n1);
        # Storage Effective shop 20 GiB-h / 0.002 (logs), data 200 / 0.04 (warehouse), web none.
        ('namespace:"shop"', Item.STORAGE, (20, 0.002)),
        ('namespace!:"shop"', Item.STORAGE, (200, 0.04)),
        ('project:"alpha"+namespace:"web"', Item.STORAGE, (0, 0)),
        ('cluster:"c1"+namespace:"shop"', Item.CPU, (4.5, 0.45)),
        ('namespace:"shop"|project:"beta"', Item.MEMORY, (8 + 4.5, 0.2 + 0.075)),
    ],
)
def test_a_scope_filter_keeps_only_its_facts(facts: Facts, filter_text: str, item: Item,
                                             expected: tuple[float, float]) -> None:
    """A CostReport's scope (`UsageQuery.filter`) selects the metered facts by namespace-level fields.
    Memory Effective per pod (GiB-h): web-1 4, burst-1 4 (shop 8, × 0.025 on n1 = 0.2), etl-1 2,
    agent-n3 2, job-1 0.5 (beta 4.5, 0.075) → shop | beta = 12.5 GiB-h, 0.275."""
    query = UsageQuery(periods=PERIODS, kind=UsageKind.CLUSTER_ALL, item=item, filter=parse_filter(filter_text))
    rows = usage.compute_usage(facts, topology.default_book(), query)
    got = (sum(row.usage for row in rows), sum(row.cost for row in rows))
    assert got == pytest.approx(expected, **APPROX)


@pytest.mark.parametrize("filter_text", ['label[app]:"web"', 'namespace:"shop"+pod:"web-1"', 'node!:"n1"'])
def test_a_scope_filter_on_pod_level_fields_is_refused(facts: Facts, filter_text: str) -> None:
    query = UsageQuery(periods=PERIODS, kind=UsageKind.CLUSTER_ALL, item=Item.STORAGE, filter=parse_filter(filter_text))
    with pytest.raises(SpecError, match="usage can be filtered on cluster, namespace, project only"):
        usage.compute_usage(facts, topology.default_book(), query)
