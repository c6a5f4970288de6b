"""The rollup plan is decided once, from the query and the prices, and the engine trusts it.

Expected plans follow the rules of `engine.plan` by hand: a cost query reads stored rows when its
method is Request or Effective, it has no filter and no customWeights, it shares idle weighted over
the cluster or not at all, and its keys lie in one level (namespace ⊂ cluster, namespace, project;
node ⊂ cluster, node, provider_id; controller ⊂ … controller_kind, controller; the first that fits).
Usage reads the namespace level for Cpu and Memory by Request or Effective only.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from kubetally.domain.aggregation import parse_aggregate
from kubetally.domain.filters import parse_filter
from kubetally.domain.vocabulary import Item, Method, ShareSplit
from kubetally.domain.window import CalendarStep, calendar_periods, parse_date_range
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
    ("namespace", Method.USAGE, None, False, False, ShareSplit.WEIGHTED, False, None),  # not maintained
    ("namespace", Method.REQUEST, 'namespace:"shop"', False, False, ShareSplit.WEIGHTED, False, None),
    ("namespace", Method.REQUEST, None, True, False, ShareSplit.WEIGHTED, False, None),  # customWeights
    ("namespace", Method.REQUEST, None, False, True, ShareSplit.EVEN, False, None),  # other shares
    ("namespace", Method.REQUEST, None, False, True, ShareSplit.WEIGHTED, True, None),  # shares per node
    ("pod", Method.REQUEST, None, False, False, ShareSplit.WEIGHTED, False, None),
    ("label:team", Method.REQUEST, None, False, False, ShareSplit.WEIGHTED, False, None),
    ("namespace,node", Method.REQUEST, None, False, False, ShareSplit.WEIGHTED, False, None),  # no level
]


@pytest.mark.parametrize(("aggregate", "method", "where", "custom", "share_idle", "split", "by_node", "level"),
                         COST_PLANS)
def test_a_cost_query_is_planned_from_its_settings(aggregate: str, method: Method, where: str | None, custom: bool,
                                                   share_idle: bool, split: ShareSplit, by_node: bool,
                                                   level: str | None) -> None:
    query = CostQuery(window=topology.WINDOW, aggregate=parse_aggregate(aggregate), filter=parse_filter(where),
                      method=method, share_idle=share_idle, share_split=split, idle_by_node=by_node)
    plan = plan_cost(query, BOOK, custom_prices=topology.default_book() if custom else None)
    assert plan == (None if level is None else RollupPlan(method, rollup.fingerprint(BOOK, method), level))


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
    (Item.CPU, Method.USAGE, None),  # not maintained
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
