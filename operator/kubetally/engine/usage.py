"""Alauda usage rows: metered quantities and their cost per project, namespace or cluster.

For each calendar period (day, week, month) and group (UsageQuery.kind):

    Cpu      usage = Σ q_cpu / 3600                 [core-hours]   cost = Σ cpu_cost
    Memory   usage = Σ q_mem / 3600 / 2^30          [GiB-hours]    cost = Σ mem_cost
    Storage  usage = Σ q_pvc / 3600 / 2^30          [GiB-hours]    cost = usage × class price (or storageGiBHour)

where q is the basis of the method (Request, Usage, Effective; per sample for Effective) and
cpu_cost / mem_cost are the same node-priced, conservation-scaled costs that /v2/cost reports
(no idle: usage is what was used). With method ProjectQuota the quantity is the namespaces'
ResourceQuota hard limits × time (`requests.cpu`, `requests.memory`, `requests.storage`), priced
at the unit prices of the version in force (quota reserves capacity on no node in particular).

Groups: project kinds → (project, cluster); namespace kinds → (project, cluster, namespace);
cluster kinds → (cluster). A namespace without a project reports project "". Kinds without
`_all` keep only the object called `name`; `project` scopes everything to one project (the project
endpoint); `filter` (a CostReport's scope) keeps the facts it matches, compiled by the same
`engine.filtering` as cost queries, and may name only cluster, namespace and project (the fields
every metered fact carries; `domain.scope`). Rows are sorted by period, project, cluster, namespace.

With `facts.stored` (namespace-level rollups, `engine.rollup`, fetched for the caller's `plan`,
`engine.plan.plan_usage`) Cpu and Memory rows add the stored hours' Σ q and Σ cpu_cost / mem_cost
to those of the facts of the other hours.
"""

from __future__ import annotations

from kubetally.domain.errors import SpecError
from kubetally.domain.prices import PriceBook
from kubetally.domain.scope import VOLUME_FIELDS, Scope
from kubetally.domain.vocabulary import GIB, Item, Method, UsageKind
from kubetally.engine import filtering, stages
from kubetally.engine.facts import Facts
from kubetally.engine.plan import RollupPlan, stored_for
from kubetally.engine.pricing import unit_price, version_expression
from kubetally.engine.query import UsageQuery, UsageRow
from kubetally.engine.sql import Params, case_by_version, run_named

_GROUPS = {
    UsageKind.PROJECT: ("project", "cluster"),
    UsageKind.PROJECT_ALL: ("project", "cluster"),
    UsageKind.NAMESPACE: ("project", "cluster", "namespace"),
    UsageKind.NAMESPACE_ALL: ("project", "cluster", "namespace"),
    UsageKind.CLUSTER: ("cluster",),
    UsageKind.CLUSTER_ALL: ("cluster",),
}
_NAMED = {UsageKind.PROJECT: "project", UsageKind.NAMESPACE: "namespace", UsageKind.CLUSTER: "cluster"}
_STORAGE_BASIS = {
    Method.REQUEST: "request_byte_seconds",
    Method.USAGE: "used_byte_seconds",
    Method.EFFECTIVE: "effective_byte_seconds",
}
_QUOTA_COLUMN = {Item.CPU: "cpu_core_seconds", Item.MEMORY: "memory_byte_seconds", Item.STORAGE: "storage_byte_seconds"}
_QUOTA_PRICE = {Item.CPU: "cpu_core_hour", Item.MEMORY: "memory_gib_hour", Item.STORAGE: "storage_gib_hour"}


def compute_usage(facts: Facts, prices: PriceBook, query: UsageQuery, *,
                  plan: RollupPlan | None = None) -> tuple[UsageRow, ...]:
    """Answer an Alauda usage query from `facts` priced by `prices`, with `facts.stored` rows for the
    hours the ledger holds built for `plan` (None: facts only)."""
    if not query.periods:
        return ()
    outside = Scope(query.filter).pod_level_fields
    if outside:
        raise SpecError("filter", f"usage can be filtered on {', '.join(sorted(f.value for f in VOLUME_FIELDS))} "
                                  f"only, not on {', '.join(outside)}; e.g. namespace:\"shop\"")
    window = (query.periods[0].window.start_epoch(), query.periods[-1].window.end_epoch())
    params = Params()
    periods = (
        f"(SELECT unnest({params.add([p.window.start_epoch() for p in query.periods])}) AS p_start, "
        f"unnest({params.add([p.window.end_epoch() for p in query.periods])}) AS p_end, "
        f"unnest({params.add(list(range(len(query.periods))))}) AS p_idx)"
    )
    cursor = facts.con
    try:
        if query.method is Method.PROJECT_QUOTA:
            source = _quota_source(facts, prices, query.item, params, window)
        elif query.item is Item.STORAGE:
            source = _storage_source(facts, prices, query.method, params, window)
        else:
            stages.materialise(cursor, facts, stages.books_of(prices, None), window, method=query.method,
                               pods=False, labels=False)
            source = _container_source(query.item, "container_cost")
            stored = stored_for(facts.stored, plan)
            if stored is not None:
                source += " UNION ALL " + _container_source(query.item, stored.pods)
        groups = _GROUPS[query.kind]
        conditions = ["TRUE"]
        if query.project is not None:
            conditions.append(f"coalesce(project, '') = {params.add(query.project)}")
        if query.kind in _NAMED:
            conditions.append(f"coalesce({_NAMED[query.kind]}, '') = {params.add(query.name or '')}")
        if query.filter is not None:
            conditions.append(params.adopt(*filtering.to_sql(query.filter)))
        columns = ", ".join(f"coalesce({column}, '') AS {column}" for column in groups)
        sql = f"""
SELECT p_idx, {", ".join(groups)}, sum(quantity) AS usage, sum(money) AS cost
FROM (SELECT {columns}, segment_start, quantity, money FROM ({source}) WHERE {" AND ".join(conditions)}) AS f
JOIN {periods} AS p ON f.segment_start >= p.p_start AND f.segment_start < p.p_end
GROUP BY p_idx, {", ".join(groups)}
ORDER BY p_idx, {", ".join(groups)}"""
        rows = run_named(cursor, sql, params)
    finally:
        stages.release(cursor)
    out = []
    for row in rows:
        period = query.periods[int(str(row["p_idx"]))]
        out.append(
            UsageRow(
                project=str(row.get("project", "")),
                cluster=str(row.get("cluster", "")),
                namespace=str(row.get("namespace", "")),
                item=query.item,
                method=query.method,
                usage=float(str(row["usage"] or 0.0)),
                cost=float(str(row["cost"] or 0.0)),
                currency=prices.currency,
                start=period.label_start(),
                end=period.label_end(),
            )
        )
    return tuple(out)


def _container_source(item: Item, relation: str) -> str:
    """Quantity and money per row of `relation` (`container_cost`, or stored namespace rows)."""
    if item is Item.CPU:
        return (
            "SELECT cluster, namespace, project, segment_start, q_cpu / 3600.0 AS quantity, "
            f"cpu_cost AS money FROM {relation}"
        )
    return (
        f"SELECT cluster, namespace, project, segment_start, q_mem / 3600.0 / {GIB} AS quantity, "
        f"mem_cost AS money FROM {relation}"
    )


def _bounds(params: Params, window: tuple[int, int]) -> str:
    return f"segment_start >= {params.add(window[0])} AND segment_end <= {params.add(window[1])}"


def _storage_source(facts: Facts, prices: PriceBook, method: Method, params: Params, window: tuple[int, int]) -> str:
    basis = _STORAGE_BASIS[method]
    per_version: list[str] = []
    for version in prices.versions:
        arms = " ".join(
            f"WHEN {params.add(name)} THEN {params.add(float(price))}::DOUBLE"
            for name, price in version.storage_class_prices.items()
        )
        default = f"{params.add(float(version.storage_gib_hour))}::DOUBLE"
        per_version.append(f"(CASE coalesce(storage_class, '') {arms} ELSE {default} END)" if arms else default)
    price = case_by_version("version", per_version)
    return f"""
SELECT cluster, namespace, project, segment_start, quantity, quantity * {price} AS money
FROM (SELECT *, coalesce({basis}, 0) / 3600.0 / {GIB} AS quantity, {version_expression(prices, params)} AS version
      FROM {facts.volumes} WHERE {_bounds(params, window)})"""


def _quota_source(facts: Facts, prices: PriceBook, item: Item, params: Params, window: tuple[int, int]) -> str:
    scale = "3600.0" if item is Item.CPU else f"3600.0 / {GIB}"
    price = unit_price(prices, params, _QUOTA_PRICE[item], "version")
    return f"""
SELECT cluster, namespace, project, segment_start, quantity, quantity * {price} AS money
FROM (SELECT *, coalesce({_QUOTA_COLUMN[item]}, 0) / {scale} AS quantity,
             {version_expression(prices, params)} AS version
      FROM {facts.quotas} WHERE {_bounds(params, window)})"""

