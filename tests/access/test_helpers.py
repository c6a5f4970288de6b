"""The tier's own helpers on hand-made inputs (no server): what a fence expects, and usage regrouping.

Hand-derived table for `regroup` (two periods, per-namespace rows of a viewer of shop and ml):

    period    project   namespace  usage  cost        project_all row           cluster_all row
    20260101  retail    shop       2.0    0.5         retail  2.0 / 0.5         c1  5.0 / 1.25
    20260101  research  ml         3.0    0.75        research 3.0 / 0.75
    20260102  retail    shop       1.0    0.25        retail  1.0 / 0.25        c1  1.0 / 0.25
"""

from __future__ import annotations

from datetime import date

import pytest

from tests.access.fence import fence_filter, regroup
from tests.access.routes import AGGREGATED, API, DIRECT, Caller, Placed, Placement
from tests.campaign import filters
from tests.campaign.requests import Case, Request, Usage

pytestmark = pytest.mark.access

ROWS = [
    {"project": "retail", "cluster": "c1", "namespace": "shop", "usage": 2.0, "cost": 0.5, "start": "20260101",
     "end": "20260101", "item": "Cpu", "method": "Effective", "currency": "CNY"},
    {"project": "research", "cluster": "c1", "namespace": "ml", "usage": 3.0, "cost": 0.75, "start": "20260101",
     "end": "20260101", "item": "Cpu", "method": "Effective", "currency": "CNY"},
    {"project": "retail", "cluster": "c1", "namespace": "shop", "usage": 1.0, "cost": 0.25, "start": "20260102",
     "end": "20260102", "item": "Cpu", "method": "Effective", "currency": "CNY"},
]


def _figures(rows: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [(r["start"], r["project"], r["namespace"], r["usage"], r["cost"]) for r in rows]


def test_usage_rows_regroup_into_the_kind_asked_for() -> None:
    assert _figures(regroup(ROWS, "project_all", None)) == [
        ("20260101", "research", "", 3.0, 0.75), ("20260101", "retail", "", 2.0, 0.5), ("20260102", "retail", "", 1.0, 0.25)]
    assert _figures(regroup(ROWS, "cluster_all", None)) == [("20260101", "", "", 5.0, 1.25),
                                                            ("20260102", "", "", 1.0, 0.25)]
    assert _figures(regroup(ROWS, "project", "research")) == [("20260101", "research", "", 3.0, 0.75)]
    assert _figures(regroup(ROWS, "namespace", "shop")) == [("20260101", "retail", "shop", 2.0, 0.5),
                                                            ("20260102", "retail", "shop", 1.0, 0.25)]
    assert regroup(ROWS, "cluster", "c2") == []


def test_a_fence_is_an_and_with_the_visible_namespaces() -> None:
    pod = {"namespace": "shop", "controller_kind": "Job"}
    own = filters.Cond("controllerKind", ":", ("Job",))
    assert filters.holds(fence_filter(own, {"shop", "ml"}), pod)
    assert not filters.holds(fence_filter(own, {"ml"}), pod)
    assert not filters.holds(fence_filter(None, {"ml"}), pod)


def _usage(project: str | None) -> Request:
    spec = Usage(first=date(2026, 1, 1), last=date(2026, 1, 2), step="day", tz=None, kind="project", name=project,
                 item="Cpu", method="Effective", project=project, page=1, size=20)
    path = f"/platform/cost.alauda.io/v1beta1/projects/{project}/costs/usage" if project else \
        "/platform/cost.alauda.io/v1beta1/costs/usage"
    return Request(path, [("start", "2026-01-01"), ("end", "2026-01-02"), ("kind", "project")], spec)


PROJECTS = {"retail": frozenset({"shop", "payments"}), "research": frozenset({"ml"})}
NAMESPACES = ("shop", "payments", "ml", "sandbox")


def _placed(caller: Caller, route: str, request: Request, seed: int = 1) -> Placed:
    (placed,) = Placement(seed, caller, route, NAMESPACES, PROJECTS).place(Case("single", [request])).requests
    assert isinstance(placed, Placed)
    return placed


def test_what_each_caller_must_get_on_the_direct_route() -> None:
    tenant = Caller("tenant-a", "t", frozenset({"shop"}))
    admin = Caller("cost-admin", "t", None)
    nobody = Caller("nobody", "t", frozenset())
    assert _placed(tenant, DIRECT, _usage("retail")).scope == frozenset({"shop"})
    assert _placed(tenant, DIRECT, _usage("research")).forbidden  # a project without any of its namespaces
    assert _placed(tenant, DIRECT, _usage("ghost")).forbidden
    assert _placed(admin, DIRECT, _usage("ghost")).scope is None  # today's answer: no rows, no 403
    assert _placed(nobody, DIRECT, _usage(None)).forbidden


def test_namespaced_paths_take_the_project_as_the_object_name() -> None:
    tenant = Caller("tenant-a", "t", frozenset({"shop"}))
    placed = [_placed(tenant, AGGREGATED, _usage("retail"), seed) for seed in range(40)]
    inside = [p for p in placed if p.path == f"{API}/namespaces/shop/costs/usage"]
    outside = [p for p in placed if p not in inside]
    assert inside
    assert outside
    for p in inside:
        assert (p.scope, p.forbidden, ("name", "retail") in p.params) == (frozenset({"shop"}), False, True)
        assert isinstance(p.spec, Usage)
        assert p.spec.project is None
    assert all(p.forbidden for p in outside)
