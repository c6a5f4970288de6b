"""Idle sharing, price variants and conservation on the documented topology (topology.py).

Hand-derived figures used below (Effective basis):
- pod cost per hour: h0 web-1 0.15, burst-1 0.20, api-1 0.30, etl-1 0.075, agent-n3 0.035 (Σ 0.76);
  h1 the same but burst-1 0.15, plus job-1 0.0175 (Σ 0.7275). Cluster idle h0 1.04, h1 1.0725.
- weighted sharing, cluster domain: a pod's cost × (1 + idle/workload) = cost × 1.8/workload per hour.
- even sharing: 1.04/5 per pod in h0, 1.0725/6 per pod in h1.
- node domains: n1 idle 0.45 (h0) and 0.5 (h1) among web-1 and burst-1; n2 0.425 per hour among
  api-1 (0.30) and etl-1 (0.075); n3 0.165 / 0.1475 among agent-n3 and job-1.
- ACK policy weights cpu 1 / memory 0: n1, n2 charge 0.8/4 = 0.2 per core-hour, n3 0.2/2 = 0.1.
- no weights (unit-price split): n1 w_cpu = 0.05·4 / (0.05·4 + 0.01·16) = 5/9, so a core-hour costs
  0.8·5/9/4 = 1/9 and a GiB-hour 0.8·4/9/16 = 1/45; n3 w_cpu = 0.1/0.2 = 1/2, i.e. the unit prices.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from kubetally.domain.aggregation import parse_aggregate
from kubetally.domain.prices import NodePriceRule, PriceBook
from kubetally.domain.vocabulary import Method
from kubetally.engine import pipeline
from kubetally.engine.facts import load_facts
from kubetally.engine.query import CostQuery
from tests.unit.engine import topology
from tests.unit.engine.conftest import Run, by_step, costs

APPROX = {"rel": 1e-12, "abs": 1e-12}


def test_share_idle_weighted_spreads_all_idle_by_cost(run: Run) -> None:
    table = run(aggregate="namespace", share_idle=True)
    h0, h1 = 1.8 / 0.76, 1.8 / 0.7275
    assert costs(table) == pytest.approx(
        {
            "shop": 0.35 * h0 + 0.30 * h1,
            "web": 0.30 * h0 + 0.30 * h1,
            "data": 0.11 * h0 + 0.11 * h1,
            "batch": 0.0175 * h1,
        },
        **APPROX,
    )
    assert sum(costs(table).values()) == pytest.approx(3.6, **APPROX)
    shop = next(row for row in table.rows if row.name == "shop")
    assert shop.shared_idle_cost == pytest.approx(0.35 * 1.04 / 0.76 + 0.30 * 1.0725 / 0.7275, **APPROX)


def test_share_idle_even_gives_each_pod_equal_parts(run: Run) -> None:
    table = run(aggregate="namespace", share_idle=True, share_split="even")
    assert costs(table) == pytest.approx(
        {
            "shop": 0.65 + 2 * 1.04 / 5 + 2 * 1.0725 / 6,
            "web": 0.60 + 1.04 / 5 + 1.0725 / 6,
            "data": 0.22 + 2 * 1.04 / 5 + 2 * 1.0725 / 6,
            "batch": 0.0175 + 1.0725 / 6,
        },
        **APPROX,
    )


def test_share_idle_by_node_keeps_idle_on_its_node(run: Run) -> None:
    table = run(aggregate="namespace", share_idle=True, idle_by_node=True)
    assert costs(table) == pytest.approx(
        {
            "shop": 0.65 + 0.95,
            "web": 0.60 + 2 * 0.425 * 0.30 / 0.375,
            "data": 0.15 + 2 * 0.425 * 0.075 / 0.375 + 0.07 + 0.165 + 0.1475 * 0.035 / 0.0525,
            "batch": 0.0175 + 0.1475 * 0.0175 / 0.0525,
        },
        **APPROX,
    )


def test_filter_never_inflates_shares(run: Run) -> None:
    shared = costs(run(aggregate="namespace", share_idle=True))
    filtered = costs(run(aggregate="namespace", share_idle=True, filter='namespace:"shop"'))
    assert filtered == pytest.approx({"shop": shared["shop"]}, **APPROX)


def test_unallocated_idle_for_a_node_without_pods(facts: object) -> None:
    """A fourth big node n4 runs no pod: with idleByNode its 0.8/h cannot be shared."""
    nodes = topology.nodes() + [topology._node("n4", "big", 4, 16, hour) for hour in (0, 1)]
    extra = load_facts(containers=topology.containers(), nodes=nodes)
    query = CostQuery(
        window=topology.WINDOW,
        aggregate=parse_aggregate("namespace"),
        method=Method.EFFECTIVE,
        share_idle=True,
        idle_by_node=True,
    )
    table = pipeline.compute(extra, topology.default_book(), query)
    assert costs(table)["__unallocated_idle__"] == pytest.approx(1.6, **APPROX)
    assert sum(costs(table).values()) == pytest.approx(3.6 + 1.6, **APPROX)
    cluster_domain = pipeline.compute(extra, topology.default_book(), replace(query, idle_by_node=False))
    assert "__unallocated_idle__" not in costs(cluster_domain)


def test_steps_are_invariant_under_sharing(run: Run) -> None:
    hourly = by_step(run(aggregate="namespace", share_idle=True, step=3600))
    whole = costs(run(aggregate="namespace", share_idle=True))
    for name, total in whole.items():
        assert hourly.get((0, name), 0.0) + hourly.get((3600, name), 0.0) == pytest.approx(total, **APPROX)


def test_custom_cost_uses_the_second_book(run: Run) -> None:
    ack = topology.default_book(weights=(Decimal("1"), Decimal("0")), currency="USD")
    table = run(idle=False, custom=ack)
    custom = {row.name: row.custom_cost for row in table.rows}
    assert custom == pytest.approx(
        {"web-1": 0.4, "burst-1": 0.5, "api-1": 0.8, "etl-1": 0.2, "agent-n3": 0.1, "job-1": 0.025}, **APPROX
    )
    assert costs(table)["web-1"] == pytest.approx(0.30)
    assert table.custom_currency == "USD"
    assert table.steps[0].custom_node_cost == pytest.approx(3.6)


def test_without_weights_the_split_follows_unit_prices(run: Run) -> None:
    table = run(idle=False, book=topology.default_book(weights=None))
    assert costs(table)["web-1"] == pytest.approx(2 * (1 / 9 + 2 / 45), **APPROX)
    assert costs(table)["agent-n3"] == pytest.approx(2 * (0.5 * 0.05 + 1 * 0.01), **APPROX)


def test_node_price_metric_is_used_without_a_rule() -> None:
    """No rule matches n1 (the rule asks for type `huge`); its metric says 0.6/h; n3 falls back to units."""
    nodes = topology.nodes()
    for node in nodes:
        if node["node"] == "n1":
            node["hourly_price_seconds"] = 0.6 * 3600
    facts = load_facts(containers=topology.containers(), nodes=nodes)
    book = topology.default_book(
        node_rules=(NodePriceRule(hourly=Decimal("0.8"), match_labels={"node.kubernetes.io/instance-type": "huge"}),)
    )
    query = CostQuery(
        window=topology.WINDOW, aggregate=parse_aggregate("node"), method=Method.EFFECTIVE, idle_by_node=True
    )
    table = pipeline.compute(facts, book, query)
    # n1: 0.6/h → 0.075 per core-h, 0.01875 per GiB-h. web-1 (1 core, 2 GiB) + burst-1 (1.5+1 core-h, 2 GiB):
    n1 = 0.075 * (1 + 1.5 + 1 + 1) + 0.01875 * (2 + 2 + 2 + 2)
    # n2 without rule or metric: units 0.05·4 + 0.01·16 = 0.36/h, split 0.5/0.5 → 0.045 per core-h, 0.01125 per GiB-h.
    n2 = 0.045 * (2 + 0.5) * 2 + 0.01125 * (4 + 1) * 2
    assert costs(table)["n1"] == pytest.approx(n1, **APPROX)
    assert costs(table)["n2"] == pytest.approx(n2, **APPROX)
    assert costs(table)["n1"] + costs(table)["idle:n1"] == pytest.approx(1.2, **APPROX)


def test_overcommitted_node_is_scaled_to_its_cost_and_flagged() -> None:
    """A pod requesting 4 cores and 20 GiB on n3 (2 cores, 10 GiB) for both hours, Request basis.
    n3's pools are 0.1/h each; raw cpu = (0.5 + 4)·0.05 = 0.225 > 0.1, raw mem = (1 + 20)·0.01 = 0.21 > 0.1
    in h0, so both scale and n3's idle is 0; hog gets 4/4.5 of the cpu pool and 20/21 of memory."""
    hog = [
        topology._container(
            "hog", hour, request=(4, 20), usage=(4, 20), effective=(4, 20), node="n3", namespace="batch", project="beta"
        )
        for hour in (0, 1)
    ]
    facts = load_facts(containers=topology.containers() + hog, nodes=topology.nodes())
    query = CostQuery(window=topology.WINDOW, method=Method.REQUEST, idle_by_node=True, step_seconds=3600)
    table = pipeline.compute(facts, topology.default_book(), query)
    hourly = by_step(table)
    assert hourly[(0, "hog")] == pytest.approx(0.1 * 4 / 4.5 + 0.1 * 20 / 21, **APPROX)
    assert (0, "idle:n3") not in hourly
    n3_h0 = sum(cost for (start, name), cost in hourly.items() if start == 0 and name in {"hog", "agent-n3"})
    assert n3_h0 == pytest.approx(0.2, **APPROX)
    assert table.diagnostics.overcommitted_node_segments == 2


def test_container_on_an_unknown_node_is_priced_at_unit_prices_and_counted() -> None:
    ghost = [
        topology._container(
            "ghost", 0, request=(1, 1), usage=(1, 1), effective=(1, 1), node="gone", namespace="batch", project="beta"
        )
    ]
    facts = load_facts(containers=topology.containers() + ghost, nodes=topology.nodes())
    table = pipeline.compute(
        facts, topology.default_book(), CostQuery(window=topology.WINDOW, method=Method.EFFECTIVE, idle=False)
    )
    assert costs(table)["ghost"] == pytest.approx(0.05 + 0.01, **APPROX)
    assert table.diagnostics.unmatched_container_facts == 1


def test_a_new_price_version_prices_only_hours_after_it() -> None:
    """Version 2 doubles the `big` rule from h1 on: web-1 costs 0.15 in h0 and 0.30 in h1."""
    first = topology.default_version()
    second = topology.default_version(
        node_rules=(NodePriceRule(hourly=Decimal("1.6"), match_labels={"node.kubernetes.io/instance-type": "big"}),),
        effective_from=datetime(2025, 6, 1, 1, tzinfo=UTC),
    )
    book = PriceBook(versions=(second, first))
    table = pipeline.compute(
        topology.topology_facts(), book, CostQuery(window=topology.WINDOW, method=Method.EFFECTIVE, step_seconds=3600)
    )
    hourly = by_step(table)
    assert (hourly[(0, "web-1")], hourly[(3600, "web-1")]) == pytest.approx((0.15, 0.30), **APPROX)
    assert [step.node_cost for step in table.steps] == pytest.approx([1.8, 3.4])


def test_sets_that_cut_a_fact_are_refused() -> None:
    """Hourly facts and hourly sets in a +00:30 zone: every set boundary lies inside a fact. The service
    collects such hours live in pieces; handed whole hours, the engine refuses rather than misplace them."""
    query = CostQuery(window=topology.WINDOW, step_seconds=3600, time_zone=timezone(timedelta(minutes=30)))
    with pytest.raises(ValueError, match="straddle a set boundary"):
        pipeline.compute(topology.topology_facts(), topology.default_book(), query)


def test_no_facts_gives_empty_rows_and_zero_totals() -> None:
    table = pipeline.compute(load_facts(), topology.default_book(), CostQuery(window=topology.WINDOW))
    assert table.rows == ()
    assert [(s.node_cost, s.idle_cost) for s in table.steps] == [(0.0, 0.0)]
