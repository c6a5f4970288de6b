"""The rollup plan is decided once, from the query and the prices, and the engine trusts it.

Expected plans follow the rules of `engine.plan` by hand: a cost query reads stored rows when its
method is Request, Effective or Usage, it has no customWeights, it reads idle shares (shareIdle, or
idle shown under a filter) only weighted over the cluster, and its keys and the columns its filter tests lie in one level (namespace ⊂
cluster, namespace, project; node ⊂ cluster, node, provider_id; controller ⊂ … controller_kind,
controller; labels ⊂ cluster, namespace, project, controller_kind, controller, labels; pod ⊂ all of
them, node and pod included; the first that fits). Usage reads the namespace level for
Cpu and Memory by a container basis only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from kubetally.domain.aggregation import parse_aggregate
from kubetally.domain.filters import parse_filter
from kubetally.domain.vocabulary import Item, Method, ShareSplit
from kubetally.domain.window import CalendarStep, Window, calendar_periods, parse_date_range
from kubetally.engine import rollup
from kubetally.engine.plan import RollupPlan, plan_cost, plan_usage, stored_for
from kubetally.engine.query import CostQuery, UsageQuery
from tests.unit.engine import topology

BOOK = topology.default_book()

#: (aggregate, method, filter, customWeights, shareIdle, shareSplit, idleByNode) → the level read, or None.
COST_PLANS = [
    ("namespace", Method.REQUEST, None, False, False, ShareSplit.WEIGHTED, False, "namespace"),
    ("project,namespace", Method.EFFECTIVE, None, False, True, ShareSplit.WEIGHTED, False, "namespace"),
    ("cluster", Method.EFFECTIVE, None, False, False, ShareSplit.WEIGHTED, False, "namespace"),
    ("node", Method.REQUEST, None, False, False, ShareSplit.WEIGHTED, True, "node"),  # shares unused
    ("controller", Method.EFFECTIVE, None, False, False, ShareSplit.WEIGHTED, False, "controller"),
    ("controllerKind", Method.REQUEST, None, False, False, ShareSplit.WEIGHTED, False, "controller"),
    ("namespace", Method.USAGE, None, False, False, ShareSplit.WEIGHTED, False, "namespace"),
    ("namespace", Method.REQUEST, 'namespace:"shop","web"', False, False, ShareSplit.WEIGHTED, False, "namespace"),
    ("project", Method.REQUEST, 'project!:"a"+cluster:"c1"', False, False, ShareSplit.WEIGHTED, False, "namespace"),
    ("namespace", Method.REQUEST, 'label[app]:"web"', False, False, ShareSplit.WEIGHTED, False, "labels"),
    ("namespace", Method.REQUEST, 'pod:"web-1"', False, False, ShareSplit.WEIGHTED, False, "pod"),
    ("controller", Method.EFFECTIVE, 'namespace:"shop"', False, False, ShareSplit.WEIGHTED, False, "controller"),
    ("node", Method.EFFECTIVE, 'namespace:"shop"', False, False, ShareSplit.WEIGHTED, False, "pod"),
    ("pod", Method.REQUEST, 'namespace:"shop"', False, False, ShareSplit.WEIGHTED, False, "pod"),
    ("namespace", Method.REQUEST, None, True, False, ShareSplit.WEIGHTED, False, None),  # customWeights
    ("namespace", Method.REQUEST, None, False, True, ShareSplit.EVEN, False, None),  # other shares
    ("namespace", Method.REQUEST, None, False, True, ShareSplit.WEIGHTED, True, None),  # shares per node
    # Idle shown under a filter is the kept pods' shares: only the stored rule's shares may answer it.
    ("namespace", Method.REQUEST, 'namespace:"shop"', False, False, ShareSplit.EVEN, False, None),
    ("cluster", Method.REQUEST, 'namespace:"shop"', False, False, ShareSplit.WEIGHTED, True, None),
    ("label:app", Method.EFFECTIVE, 'namespace:"shop"', False, False, ShareSplit.WEIGHTED, False, "labels"),
    ("pod", Method.REQUEST, None, False, False, ShareSplit.WEIGHTED, False, "pod"),
    ("label:team", Method.REQUEST, None, False, False, ShareSplit.WEIGHTED, False, "labels"),
    ("namespace,label:app", Method.EFFECTIVE, None, False, False, ShareSplit.WEIGHTED, False, "labels"),
    ("node,label:app", Method.EFFECTIVE, None, False, False, ShareSplit.WEIGHTED, False, "pod"),
    ("namespace,node", Method.REQUEST, None, False, False, ShareSplit.WEIGHTED, False, "pod"),
]


@pytest.mark.parametrize(("aggregate", "method", "where", "custom", "share_idle", "split", "by_node", "level"),
                         COST_PLANS)
def test_a_cost_query_is_planned_from_its_settings(aggregate: str, method: Method, where: str | None, custom: bool,
                                                   share_idle: bool, split: ShareSplit, by_node: bool,
                                                   level: str | None) -> None:
    query = CostQuery(window=topology.WINDOW, aggregate=parse_aggregate(aggregate), filter=parse_filter(where),
                      method=method, share_idle=share_idle, share_split=split, idle_by_node=by_node)
    plan = plan_cost(query, BOOK, custom_prices=topology.default_book() if custom else None)
    expected = RollupPlan(method, rollup.fingerprint(BOOK, method), level, (), days=not share_idle)
    assert plan == (None if level is None else expected)


def test_the_plan_names_the_prices_it_was_made_for() -> None:
    query = CostQuery(window=topology.WINDOW, aggregate=parse_aggregate("namespace"), method=Method.EFFECTIVE)
    cheaper = topology.default_book(cpu_core_hour=Decimal("0.04"))
    a, b = plan_cost(query, BOOK), plan_cost(query, cheaper)
    assert a is not None
    assert b is not None
    assert (a.method, a.level) == (b.method, b.level) == (Method.EFFECTIVE, "namespace")
    assert a.fingerprint != b.fingerprint  # rows stored for other prices are never read


@pytest.mark.parametrize(("item", "method", "level"), [
    (Item.CPU, Method.EFFECTIVE, "namespace"),
    (Item.MEMORY, Method.REQUEST, "namespace"),
    (Item.CPU, Method.USAGE, "namespace"),
    (Item.STORAGE, Method.EFFECTIVE, None),  # volumes have no rollups
    (Item.MEMORY, Method.PROJECT_QUOTA, None),  # quota facts
])
def test_a_usage_query_is_planned_from_its_item_and_method(item: Item, method: Method, level: str | None) -> None:
    periods = calendar_periods(parse_date_range("2025-06-01", "2025-06-01"), CalendarStep.DAY)
    plan = plan_usage(UsageQuery(periods=periods, item=item, method=method), BOOK)
    assert plan == (None if level is None else RollupPlan(method, rollup.fingerprint(BOOK, method), level))


def test_the_engine_takes_only_the_stored_rows_of_its_plan() -> None:
    stored = rollup.Stored(Method.EFFECTIVE, "namespace")
    plan = RollupPlan(Method.EFFECTIVE, rollup.fingerprint(BOOK, Method.EFFECTIVE), "namespace")
    assert stored_for(stored, plan) is stored
    assert stored_for(None, plan) is None  # no hour was stored: everything comes from the facts
    assert stored_for(None, None) is None
    with pytest.raises(ValueError, match=r"cannot answer this query \(its plan: facts only\)"):
        stored_for(stored, None)
    with pytest.raises(ValueError, match="its plan: Effective rows at level controller"):
        stored_for(stored, RollupPlan(Method.EFFECTIVE, plan.fingerprint, "controller"))
    with pytest.raises(ValueError, match="its plan: Request rows at level namespace"):
        stored_for(stored, RollupPlan(Method.REQUEST, plan.fingerprint, "namespace"))


def test_the_plan_carries_the_set_boundaries_day_rows_must_not_cross() -> None:
    """A 2-day window from 2026-01-01T00:00Z (1767225600): by day its one boundary is the midnight
    between (both days fit); by 6 hours the boundaries fall inside each day (none fits); in
    Asia/Kolkata (+05:30) the local midnight 1767205800 + 86400 = 1767292200 cuts day 1; sharing
    idle reads no day rows at all."""
    window = Window(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 3, tzinfo=UTC))
    day1, day2 = 1767225600, 1767225600 + 86400

    def planned(**settings: object) -> RollupPlan:
        found = plan_cost(CostQuery(window=window, aggregate=parse_aggregate("namespace"), **settings), BOOK)
        assert found is not None
        return found

    by_day = planned(step_seconds=86400)
    assert by_day.boundaries == (day2,)
    assert by_day.day_fits(day1)
    assert by_day.day_fits(day2)
    by_six = planned(step_seconds=6 * 3600)
    assert not by_six.day_fits(day1)
    assert not by_six.day_fits(day2)
    kolkata = planned(step_seconds=86400, time_zone=ZoneInfo("Asia/Kolkata"))
    assert 1767292200 in kolkata.boundaries
    assert not kolkata.day_fits(day1)
    whole = planned()
    assert whole.boundaries == ()
    assert whole.day_fits(day1)
    assert not planned(step_seconds=86400, share_idle=True).day_fits(day1)
