"""The engine against the documented topology (tests/unit/engine/topology.py holds the hand-computed
table every expected number here comes from)."""

from __future__ import annotations

import pytest

from tests.unit.engine.conftest import Run, by_step, costs
from tests.unit.engine.topology import GIB, T0

APPROX = {"rel": 1e-12, "abs": 1e-12}


def test_effective_cost_per_pod_with_idle(run: Run) -> None:
    table = run()
    assert costs(table) == pytest.approx(
        {
            "web-1": 0.30,
            "burst-1": 0.35,
            "api-1": 0.60,
            "etl-1": 0.15,
            "agent-n3": 0.07,
            "job-1": 0.0175,
            "__idle__": 2.1125,
        },
        **APPROX,
    )
    (step,) = table.steps
    assert (step.node_cost, step.workload_cost, step.idle_cost) == pytest.approx((3.6, 1.4875, 2.1125), **APPROX)
    assert table.currency == "CNY"
    assert table.price_source == "CostWeights/default"
    assert table.diagnostics.overcommitted_node_segments == 0
    assert table.diagnostics.unmatched_container_facts == 0


def test_request_and_usage_methods(run: Run) -> None:
    assert costs(run(method="Request", idle=False)) == pytest.approx(
        {"web-1": 0.30, "burst-1": 0.30, "api-1": 0.60, "etl-1": 0.0, "agent-n3": 0.07, "job-1": 0.0175}, **APPROX
    )
    assert costs(run(method="Usage", idle=False)) == pytest.approx(
        {"web-1": 0.15, "burst-1": 0.2, "api-1": 0.30, "etl-1": 0.15, "agent-n3": 0.035, "job-1": 0.015}, **APPROX
    )
    # Idle is what the method leaves: 3.6 − 1.2875 (Request), 3.6 − 0.85 (Usage).
    assert costs(run(method="Request"))["__idle__"] == pytest.approx(3.6 - 1.2875, **APPROX)
    assert costs(run(method="Usage"))["__idle__"] == pytest.approx(3.6 - 0.85, **APPROX)


def test_averages_over_active_span(run: Run) -> None:
    rows = {row.name: row for row in run(idle=False).rows}
    web, burst, job = rows["web-1"], rows["burst-1"], rows["job-1"]
    assert (web.cpu_core_request_average, web.cpu_core_usage_average) == pytest.approx((1.0, 0.5))
    assert (web.ram_byte_request_average, web.ram_byte_usage_average) == pytest.approx((2 * GIB, 1 * GIB))
    assert burst.cpu_core_usage_average == pytest.approx(0.75)  # (1.0 + 0.5) / 2 h
    # The 15-minute job: its averages are over its own 15 minutes, not the 2-hour window.
    assert (job.cpu_core_request_average, job.ram_byte_request_average) == pytest.approx((1.0, 2 * GIB))
    assert job.cpu_core_hours == pytest.approx(0.25)
    assert job.memory_gib_hours == pytest.approx(0.5)
    namespaces = {row.name: row for row in run(aggregate="namespace", idle=False).rows}
    assert namespaces["shop"].cpu_core_request_average == pytest.approx(2.0)
    assert namespaces["data"].cpu_core_request_average == pytest.approx(0.5)
    assert namespaces["batch"].cpu_core_usage_average == pytest.approx(1.0)


def test_pod_properties_and_labels(run: Run) -> None:
    rows = {row.name: row for row in run(idle=False).rows}
    assert dict(rows["web-1"].properties) == {
        "cluster": "c1",
        "node": "n1",
        "namespace": "shop",
        "pod": "web-1",
        "podUID": "uid-web-1",
        "controllerKind": "Deployment",
        "controller": "web",
        "providerID": "ecs://n1",
        "project": "alpha",
    }
    assert rows["web-1"].labels == {"app": "web"}
    assert "controller" not in rows["etl-1"].properties


@pytest.mark.parametrize(
    ("aggregate", "expected"),
    [
        ("namespace", {"shop": 0.65, "web": 0.60, "data": 0.22, "batch": 0.0175}),
        (
            "controller",
            {"web": 0.30, "burst": 0.35, "api": 0.60, "agent": 0.07, "report": 0.0175, "__unallocated__": 0.15},
        ),
        (
            "controllerKind",
            {"Deployment": 0.65, "StatefulSet": 0.60, "DaemonSet": 0.07, "Job": 0.0175, "__unallocated__": 0.15},
        ),
        ("node", {"n1": 0.65, "n2": 0.75, "n3": 0.0875}),
        ("cluster", {"c1": 1.4875}),
        ("project", {"alpha": 1.25, "beta": 0.2375}),
        (
            "label:app",
            {"web": 0.30, "burst": 0.35, "api": 0.60, "agent": 0.07, "report": 0.0175, "__unallocated__": 0.15},
        ),
        (
            "namespace,label:app",
            {
                "shop/web": 0.30,
                "shop/burst": 0.35,
                "web/api": 0.60,
                "data/__unallocated__": 0.15,
                "data/agent": 0.07,
                "batch/report": 0.0175,
            },
        ),
    ],
)
def test_aggregations(run: Run, aggregate: str, expected: dict[str, float]) -> None:
    assert costs(run(aggregate=aggregate, idle=False)) == pytest.approx(expected, **APPROX)


def test_hourly_steps_sum_to_the_window(run: Run) -> None:
    table = run(aggregate="namespace", step=3600)
    assert by_step(table) == pytest.approx(
        {
            (0, "shop"): 0.35,
            (0, "web"): 0.30,
            (0, "data"): 0.11,
            (0, "__idle__"): 1.04,
            (3600, "shop"): 0.30,
            (3600, "web"): 0.30,
            (3600, "data"): 0.11,
            (3600, "batch"): 0.0175,
            (3600, "__idle__"): 1.0725,
        },
        **APPROX,
    )
    assert [(s.step_start - T0, s.step_end - T0) for s in table.steps] == [(0, 3600), (3600, 7200)]
    assert [s.node_cost for s in table.steps] == pytest.approx([1.8, 1.8])


def test_idle_by_node_rows(run: Run) -> None:
    table = run(aggregate="node", idle_by_node=True)
    assert costs(table) == pytest.approx(
        {"n1": 0.65, "n2": 0.75, "n3": 0.0875, "idle:n1": 0.95, "idle:n2": 0.85, "idle:n3": 0.3125}, **APPROX
    )
    idle_n1 = next(row for row in table.rows if row.name == "idle:n1")
    assert idle_n1.properties == {"cluster": "c1", "node": "n1", "providerID": "ecs://n1"}
    # Node view = node cost: workload + idle of n1 = 0.8 × 2 h.
    assert costs(table)["n1"] + costs(table)["idle:n1"] == pytest.approx(1.6)


def test_idle_false_drops_the_idle_row(run: Run) -> None:
    assert "__idle__" not in costs(run(idle=False))


def test_cost_ratio_is_against_the_whole_cluster(run: Run) -> None:
    table = run(aggregate="namespace")
    ratios = {row.name: row.cost_ratio for row in table.rows}
    assert ratios == pytest.approx(
        {"shop": 0.65 / 3.6, "web": 0.60 / 3.6, "data": 0.22 / 3.6, "batch": 0.0175 / 3.6, "__idle__": 2.1125 / 3.6}
    )
    # A filter does not change the denominator.
    filtered = run(aggregate="namespace", filter='namespace:"shop"', idle=False)
    assert [row.cost_ratio for row in filtered.rows] == pytest.approx([0.65 / 3.6])


def test_filters_select_pods_after_costing(run: Run) -> None:
    # ACK example 1: a namespace, a controller kind and a label together.
    table = run(filter='namespace:"data"+controllerKind:"DaemonSet"+label[app]:"agent"', idle=False)
    assert costs(table) == pytest.approx({"agent-n3": 0.07})
    assert costs(run(filter='namespace:"shop","web"', aggregate="namespace", idle=False)) == pytest.approx(
        {"shop": 0.65, "web": 0.60}
    )
    assert costs(run(filter='namespace!:"shop"|pod~:"burst"', aggregate="namespace", idle=False)) == pytest.approx(
        {"shop": 0.35, "web": 0.60, "data": 0.22, "batch": 0.0175}
    )
    assert costs(run(filter='project:"beta"+pod<~:"a"', idle=False)) == pytest.approx({"agent-n3": 0.07})


def test_idle_row_under_a_filter_holds_the_filtered_share(run: Run) -> None:
    """shop costs 0.35 in h0 and 0.30 in h1; cluster workload 0.76 / 0.7275, idle 1.04 / 1.0725."""
    table = run(filter='namespace:"shop"', aggregate="namespace")
    assert costs(table) == pytest.approx(
        {"shop": 0.65, "__idle__": 0.35 * 1.04 / 0.76 + 0.30 * 1.0725 / 0.7275}, **APPROX
    )
    even = run(filter='namespace:"shop"', aggregate="namespace", share_split="even")
    assert costs(even)["__idle__"] == pytest.approx(2 * 1.04 / 5 + 2 * 1.0725 / 6, **APPROX)
