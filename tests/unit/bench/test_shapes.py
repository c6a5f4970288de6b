"""The issue-15 shapes, their goals and how many runs each gets, on hand-made numbers and pods."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kubetally.api.params import parse_cost_params
from kubetally.bench.measure import Timing
from kubetally.bench.shapes import MONTH, Goal, cost_shapes, median_namespaces, require_label, runs_after_first
from kubetally.synthetic import Cluster, presets
from kubetally.synthetic.model import Pod


def test_goals_judge_the_statistic_they_name() -> None:
    """Durations 0.1, 0.2, 0.3, 0.26 s: median (0.2 + 0.26) / 2 = 0.23; p95 is rank ⌈3.8⌉ = 4, 0.3 s."""
    timing = Timing((0.1, 0.2, 0.3, 0.26))
    assert (Goal("p95", 0.25).met(timing), Goal("median", 0.25).met(timing)) == (False, True)
    assert Goal("p95", 0.3).met(timing) is False  # "<" is strict
    assert Goal("p95", 0.3, inclusive=True).met(timing) is True
    assert Goal("median", 0.54, inclusive=True).text == "median ≤ 0.54 s"
    assert Goal("p95", 1.0).text == "p95 < 1 s"


@pytest.mark.parametrize(("first", "runs", "expected"), [
    (0.5, 20, (False, 20)),   # fast: the first is a warm-up, then the full 20
    (1.99, 20, (False, 20)),
    (2.0, 20, (True, 19)),    # ⌊90 / 2⌋ = 45 → capped at 20, the first one of them
    (4.0, 20, (True, 19)),    # ⌊90 / 4⌋ = 22 → 20
    (6.0, 20, (True, 14)),    # ⌊90 / 6⌋ = 15 in all
    (38.0, 20, (True, 1)),    # ⌊90 / 38⌋ = 2
    (60.0, 20, (True, 0)),    # ⌊90 / 60⌋ = 1: the first is the only run
    (300.0, 20, (True, 0)),   # never fewer than one
    (5.0, 3, (True, 2)),      # ⌊90 / 5⌋ = 18 → --runs 3
])
def test_runs_adapt_to_the_first_request(first: float, runs: int, expected: tuple[bool, int]) -> None:
    assert runs_after_first(first, runs) == expected


def test_median_namespaces_by_pod_count_then_name() -> None:
    """Counts b 1, c 2, d 2, a 3, e 5 → ranked b, c, d, a, e; ⌊5/2⌋ = 2 → d, then a."""
    pods = ["a"] * 3 + ["b"] + ["c"] * 2 + ["d"] * 2 + ["e"] * 5
    assert median_namespaces(pods) == (("d", 2), ("a", 3))
    assert median_namespaces(["y", "x"]) == (("x", 1), ("y", 1))  # ⌊2/2⌋ = 1 is the last: step back to 0
    with pytest.raises(ValueError, match="two namespaces"):
        median_namespaces(["only"] * 4)


def _pod(namespace: str, number: int, *, pending: bool = False, app: bool = True) -> Pod:
    labels = (("app", f"app-{number}"),) if app else (("team", "x"),)
    return Pod(namespace=namespace, name=f"p-{number}", uid=f"u-{number}", node="n", start=0, end=3600,
               containers=(), labels=labels, pending=pending)


def _cluster(*pods: Pod) -> Cluster:
    return Cluster(spec=presets.tiny(), nodes=(), pods=pods)


#: shop 3 pods, ml 1 (+1 pending, not counted), batch 2, payments 2 → ranked ml, batch, payments, shop;
#: ⌊4/2⌋ = 2 → payments (2 pods), then shop (3 pods).
PODS = [_pod("shop", 1), _pod("shop", 2), _pod("shop", 3), _pod("ml", 4), _pod("ml", 5, pending=True),
        _pod("batch", 6), _pod("batch", 7), _pod("payments", 8), _pod("payments", 9, app=False)]
MONTH_1D = [("window", MONTH), ("step", "1d")]


def test_the_shapes_of_the_issue_table() -> None:
    shapes = cost_shapes(_cluster(*PODS))
    table = [(shape.name, list(shape.params), shape.goal.text, shape.expect) for shape in shapes]
    assert table == [
        ("step=1d aggregate=namespace", [*MONTH_1D, ("aggregate", "namespace")], "p95 < 0.25 s", 200),
        ("step=1d aggregate=controller", [*MONTH_1D, ("aggregate", "controller")], "p95 < 1 s", 200),
        ("step=1d aggregate=label:app", [*MONTH_1D, ("aggregate", "label:app")], "p95 < 1 s", 200),
        ('step=1d aggregate=pod filter=namespace:"payments" (2 pods)',
         [*MONTH_1D, ("aggregate", "pod"), ("filter", 'namespace:"payments"')], "p95 < 1 s", 200),
        ('step=1d aggregate=namespace filter=namespace:"payments","shop" (5 pods)',
         [*MONTH_1D, ("aggregate", "namespace"), ("filter", 'namespace:"payments","shop"')], "p95 < 1 s", 200),
        ("step=1d aggregate=namespace method=Usage", [*MONTH_1D, ("aggregate", "namespace"), ("method", "Usage")],
         "p95 < 1 s", 200),
        ("step=1d aggregate=namespace,label:app", [*MONTH_1D, ("aggregate", "namespace,label:app")], "p95 < 1 s",
         200),
        ("step=1d aggregate=namespace shareIdle=true", [*MONTH_1D, ("aggregate", "namespace"), ("shareIdle", "true")],
         "median ≤ 0.54 s", 200),
        ("step=1d aggregate=node idleByNode=true", [*MONTH_1D, ("aggregate", "node"), ("idleByNode", "true")],
         "median ≤ 0.81 s", 200),
        ("step=1h aggregate=controller: refused with 400 (over the row cap)",
         [("window", MONTH), ("step", "1h"), ("aggregate", "controller")], "p95 < 0.5 s", 400),
    ]


def test_every_shape_is_a_request_the_api_accepts() -> None:
    """The API's own parser reads each shape (the refusal comes later, from the row cap): the 30-day
    window, the filter grammar (namespace:"a","b") and the method are spelt as /v2/cost wants."""
    now = datetime(2026, 1, 31, tzinfo=UTC)
    for shape in cost_shapes(_cluster(*PODS)):
        request = parse_cost_params(dict(shape.params), now=now)
        assert request.query.window.end - request.query.window.start == (datetime(2026, 1, 31, tzinfo=UTC)
                                                                          - datetime(2026, 1, 1, tzinfo=UTC))
        assert (request.query.filter is not None) == ("filter" in dict(shape.params))


def test_a_shape_groups_by_a_label_the_pods_carry() -> None:
    assert require_label(_cluster(*PODS), "app") == 8
    with pytest.raises(ValueError, match="no generated pod carries the label 'app'"):
        cost_shapes(_cluster(_pod("a", 1, app=False), _pod("b", 2, app=False)))
