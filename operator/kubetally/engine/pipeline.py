"""The /v2/cost engine entry point: facts + prices + a CostQuery → a CostTable.

Order of operations (each stage is one SQL statement over the previous ones' tables):

 1. Select the facts whose segments lie in the window; drop containers named "" or "POD".
 2. Price every node-segment with the version in force at its start: node price P (nodePrices rule,
    else node_total_hourly_cost, else unit prices × capacity), the CPU/memory weights, node cost,
    the two pools and the rates (`engine.pricing`).
 3. Cost every container by the query's method (Request, Usage, Effective) at its node's rates;
    scale a node-segment's costs down per resource where they exceed the pool (conservation),
    and compute node idle = pools − costs ≥ 0 (`engine.allocation`).
 4. Roll containers up to pods per segment (`engine.sharing`).
 5. Compute every pod's share of its domain's idle (cluster, or node with idleByNode; weighted by
    cost or even per pod), over all pods, before any filter (`engine.sharing`).
 6. Apply the filter to pods: shares stay as computed in 5 (`engine.filtering`).
 7. Assign each segment to its step (a segment never straddles a step boundary).
 8. Aggregate the kept pods per step and group (`engine.grouping`): Σ cost (+ Σ shares when
    shareIdle), Σ basis quantities, averages = Σ integral / active span, shared properties.
 9. Idle rows (idle=true, shareIdle=false): without a filter, Σ node idle per step (per node with
    idleByNode); with a filter, Σ of the kept pods' shares (the idle that belongs to them).
    With shareIdle and no filter, idle no domain could take is an `__unallocated_idle__` row.
10. costRatio = row cost / Σ node cost of the step (all nodes, before any filter); with
    `ratio_within_answer`, row cost / Σ cost of the answer's rows in the step.
11. customCost: stages 2–10 with the custom price book, side by side in the same statements.

With `facts.stored` (`engine.rollup`), stages 1–5 ran once per stored hour, ahead of time; their
rows join this query's live ones before stage 6 (`stages.attach`). Whether they may is the caller's
`plan` (`engine.plan.plan_cost`), trusted here: the stored rows must be those fetched for it. When
every hour is stored (`facts.live` is False), stages 1–5 do not run at all: the stored rows alone
are the answer's rows, and a month at scale M is answered in a dozen statements.

Units: money in the price book's currency; averages in cores and bytes; hours are seconds/3600.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import replace

import duckdb

from kubetally.domain.aggregation import Dimension
from kubetally.domain.prices import PriceBook
from kubetally.domain.vocabulary import GIB, IDLE_KEY, IDLE_NODE_PREFIX, UNALLOCATED_IDLE_KEY
from kubetally.domain.window import Window
from kubetally.engine import filtering, rollup, sharing, stages, workload
from kubetally.engine.facts import Facts
from kubetally.engine.plan import RollupPlan, stored_for
from kubetally.engine.pricing import PricedBook
from kubetally.engine.query import (
    IDLE,
    UNALLOCATED_IDLE,
    WORKLOAD,
    CostQuery,
    CostRow,
    CostTable,
    Diagnostics,
    Renderer,
    StepTotals,
    WorkloadRows,
)
from kubetally.engine.sql import Params, run, run_named

_KIND_ORDER = {WORKLOAD: 0, IDLE: 1, UNALLOCATED_IDLE: 2}


def needs_labels(query: CostQuery) -> bool:
    """Whether any row of the answer reads a label map: pod rows show them, label keys group by
    them, and a filter may test them (any filter counts, to keep this rule simple)."""
    return query.filter is not None or any(k.dimension in (Dimension.POD, Dimension.LABEL) for k in query.aggregate)


def compute(facts: Facts, prices: PriceBook, query: CostQuery, *, custom_prices: PriceBook | None = None,
            plan: RollupPlan | None = None, max_rows: int | None = None, render: Renderer | None = None) -> CostTable:
    """Answer `query` from `facts` priced by `prices` (and `custom_prices` for customCost), with
    `facts.stored` rows for the hours the ledger holds built for `plan` (None: facts only).

    With `max_rows`, an answer of more workload rows (groups × steps) is refused with a SpecError
    before the rows become Python objects: at scale L, 30 days by hour by controller is 1.9M rows,
    which took 80 s and 8 GiB to build and would be ~1 GB of JSON. With `render`, the workload rows
    come back as its texts (`CostTable.rendered`), written in DuckDB (`engine.workload.render`)."""
    books = stages.books_of(prices, custom_prices)
    window = (query.window.start_epoch(), query.window.end_epoch())
    cursor = facts.con
    stored = stored_for(facts.stored, plan)
    step = _StepIndex(query.sets)
    try:
        step.create(cursor)
        live = stored is None or facts.live
        # Refused from the stored rows before anything is materialised: always when hours are live (they
        # would be computed first), and from many steps on when all are stored (`group` would hold them
        # all before counting; a month by hour by controller at L is 1.9M rows: 6.8 s, against 0.4 s).
        early = live or len(step.bounds) >= workload.RUNS_FROM_STEPS
        if stored is not None and max_rows is not None and early:
            counted = workload.count_groups(cursor, query, step.tagged(stored.pods), len(step.bounds), max_rows)
            workload.check_cap(counted, max_rows, "at least ")
        if live:
            stages.materialise(cursor, facts, books, window, method=query.method, split=query.share_split,
                               idle_by_node=query.idle_by_node, labels=needs_labels(query))
            step.check(cursor)
        if stored is not None:
            stages.attach(cursor, stored, live=live)
        nodes = _node_sums(cursor, books, step)
        totals = _step_totals(cursor, books, step, nodes)
        node_cost = {total.step_start: total.node_cost for total in totals}
        others: list[CostRow] = []
        if query.idle and not query.share_idle:
            others += _idle_rows(cursor, books, query, step, node_cost, nodes)
        if query.share_idle and query.filter is None:
            others += _unallocated_rows(cursor, books, query, step, node_cost)
        # The answer is counted in DuckDB before any row becomes a Python object (see above).
        workload.check_cap(workload.group(cursor, books, query, step.tagged("pod_shares")), max_rows)
        denominators = [total.node_cost for total in totals]
        if query.ratio_within_answer:
            denominators, others = _within_answer(workload.step_costs(cursor), others, step)
        if render is None:
            rows, rendered = workload.fetch(cursor, books, query, step.TABLE, denominators), None
        else:
            rows = WorkloadRows.of(())
            rendered = workload.render(cursor, books, query, step.TABLE, denominators, render)
        diagnostics = _diagnostics(cursor, stored, live=live, nodes=nodes)
    except BaseException:
        # A failed statement aborts the cursor's transaction, and cleaning up would fail too and hide
        # the error: the caller's ROLLBACK (`ledger.facts`) drops the temporary tables anyway.
        with contextlib.suppress(duckdb.Error):
            _release(cursor)
        raise
    if not facts.rolled_back:
        _release(cursor)
    others.sort(key=lambda r: (r.step_start, _KIND_ORDER[r.kind], -r.cost, r.key, tuple(r.properties.items())))
    custom = books[1].book if len(books) > 1 else None
    return CostTable(
        workload=rows,
        others=tuple(others),
        rendered=rendered,
        steps=totals,
        currency=prices.currency,
        custom_currency=custom.currency if custom is not None else None,
        price_source=prices.versions[-1].source,
        diagnostics=diagnostics,
    )


def _release(cursor: duckdb.DuckDBPyConnection) -> None:
    stages.release(cursor)
    cursor.execute(f"DROP TABLE IF EXISTS {_StepIndex.TABLE}")


def _within_answer(workload_cost: dict[int, float], others: list[CostRow],
                   step: _StepIndex) -> tuple[list[float], list[CostRow]]:
    """costRatio within the answer: each step's denominator is the Σ cost of its rows, workload and
    idle (0 where that sum is 0); returns the denominators by step index and the idle rows re-rated."""
    totals = [workload_cost.get(index, 0.0) for index in range(len(step.bounds))]
    at = {start: index for index, (start, _) in enumerate(step.bounds)}
    for row in others:
        totals[at[row.step_start]] += row.cost
    rated = [replace(row, cost_ratio=row.cost / totals[at[row.step_start]] if totals[at[row.step_start]] > 0 else 0.0)
             for row in others]
    return totals, rated


class _StepIndex:
    """The query's sets (`CostQuery.sets`) as a temporary table, and the relation that tags each
    segment with the index of the set containing its start.

    Sets lie on a calendar grid (`domain.sets`: local midnights, Mondays, DST days of 23 or 25 h), so no
    arithmetic on one fixed size finds a segment's set; an ASOF join on the sets' starts does, in one
    vectorised pass. The service cuts live facts at every set boundary, so every segment nests in one
    set; `check` proves it of the live segments before any number is summed. Stored rows nest by
    construction: an hour row is a whole hour the window plan reads from the ledger (an hour a
    boundary cuts is collected live), and a day row is read only where no boundary cuts its day
    (`RollupPlan.day_fits`)."""

    TABLE = "step_sets"

    def __init__(self, sets: tuple[Window, ...]) -> None:
        self.bounds = [(window.start_epoch(), window.end_epoch()) for window in sets]

    def create(self, cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute(
            f"CREATE TEMP TABLE {self.TABLE} AS SELECT unnest($i) AS step_idx, unnest($a) AS set_start, "
            "unnest($b) AS set_end",
            {"i": list(range(len(self.bounds))), "a": [a for a, _ in self.bounds], "b": [b for _, b in self.bounds]},
        )

    def tagged(self, relation: str) -> str:
        """`relation` (a table name or a parenthesised query with `segment_start`) with `step_idx` and
        `set_end` added; segments before the first set are dropped."""
        return (f"(SELECT t.*, s.step_idx, s.set_end FROM {relation} AS t "
                f"ASOF JOIN {self.TABLE} AS s ON t.segment_start >= s.set_start)")

    def check(self, cursor: duckdb.DuckDBPyConnection) -> None:
        segments = "(SELECT segment_start, segment_end FROM node_idle UNION ALL " \
                   "SELECT segment_start, segment_end FROM pod_segments)"
        found = run(cursor, f"SELECT count(*) FROM {self.tagged(segments)} WHERE segment_end > set_end", Params())
        if found and found[0][0]:
            raise ValueError(f"{found[0][0]} facts straddle a set boundary; segments must nest in sets")


def _float(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _money(row: dict[str, object], books: list[PricedBook], prefix: str) -> dict[str, float]:
    return {b.suffix: _float(row[f"{prefix}{b.suffix}"]) for b in books}


def _sums(books: list[PricedBook], value: str, prefix: str) -> str:
    return ", ".join(f"sum({value.format(s=b.suffix)}) AS {prefix}{b.suffix}" for b in books)


def _node_sums(cursor: duckdb.DuckDBPyConnection, books: list[PricedBook],
               step: _StepIndex) -> dict[int, dict[str, object]]:
    """Per step index: Σ node cost and Σ node idle per book (`node_cost<suffix>`, `idle<suffix>`) and
    the overcommitted node-segments (`over`), in one pass over `node_idle`: the step totals, the idle
    rows without a filter and the diagnostics all read them."""
    sql = (f"SELECT step_idx, {_sums(books, 'node_cost{s}', 'node_cost')}, {_sums(books, 'idle{s}', 'idle')}, "
           f"sum(CAST(overcommitted AS BIGINT)) AS over FROM {step.tagged('node_idle')} GROUP BY step_idx")
    return {int(_float(row["step_idx"])): row for row in run_named(cursor, sql, Params())}


def _step_totals(
    cursor: duckdb.DuckDBPyConnection, books: list[PricedBook], step: _StepIndex, nodes: Mapping[int, dict[str, object]]
) -> tuple[StepTotals, ...]:
    params = Params()
    pods = run_named(
        cursor,
        f"SELECT step_idx, sum(cost) AS cost FROM {step.tagged('pod_segments')} GROUP BY step_idx",
        params,
    )
    by_pod = {int(_float(row["step_idx"])): _float(row["cost"]) for row in pods}
    totals = []
    for index, (start, end) in enumerate(step.bounds):
        row = nodes.get(index, {})
        custom = _float(row.get("node_cost_custom")) if len(books) > 1 else None
        totals.append(StepTotals(step_start=start, step_end=end, node_cost=_float(row.get("node_cost")),
                                 workload_cost=by_pod.get(index, 0.0), idle_cost=_float(row.get("idle")),
                                 custom_node_cost=custom))
    return tuple(totals)


def _idle_rows(
    cursor: duckdb.DuckDBPyConnection, books: list[PricedBook], query: CostQuery, step: _StepIndex,
    node_cost: Mapping[int, float], nodes: Mapping[int, dict[str, object]],
) -> list[CostRow]:
    """Idle rows (stage 9): without a filter Σ node idle per step (`nodes`, already summed) or per node;
    with one, Σ of the kept pods' shares."""
    params = Params()
    by_node = ", cluster, node" if query.idle_by_node else ""
    if query.filter is None and not query.idle_by_node:
        found = [{**row, **{f"cost{b.suffix}": row.get(f"idle{b.suffix}") for b in books}}
                 for _, row in sorted(nodes.items())]
    elif query.filter is None:
        found = run_named(cursor, f"SELECT step_idx{by_node}, any_value(provider_id) AS provider_id, "
                                  f"{_sums(books, 'idle{s}', 'cost')} FROM {step.tagged('node_idle')} "
                                  f"GROUP BY step_idx{by_node}", params)
    else:
        where = params.adopt(*filtering.to_sql(query.filter))
        provider = ", any_value(provider_id) AS provider_id" if query.idle_by_node else ""
        found = run_named(cursor, f"SELECT step_idx{by_node}{provider}, {_sums(books, 'share{s}', 'cost')} "
                                  f"FROM {step.tagged('pod_shares')} WHERE {where} GROUP BY step_idx{by_node}", params)
    out: list[CostRow] = []
    for row in found:
        cost = _money(row, books, "cost")
        if not any(value > 0 for value in cost.values()):
            continue
        properties: dict[str, str] = {}
        name = IDLE_KEY
        if query.idle_by_node:
            name = f"{IDLE_NODE_PREFIX}{row['node']}"
            properties = {
                k: str(row[c])
                for k, c in (("cluster", "cluster"), ("node", "node"), ("providerID", "provider_id"))
                if row.get(c) not in (None, "")
            }
        out.append(_finish(step.bounds[int(_float(row["step_idx"]))], IDLE, (name,), node_cost, cost=cost[""],
                           custom=cost.get("_custom"), properties=properties))
    return out


def _unallocated_rows(
    cursor: duckdb.DuckDBPyConnection, books: list[PricedBook], query: CostQuery, step: _StepIndex,
    node_cost: Mapping[int, float],
) -> list[CostRow]:
    params = Params()
    source = sharing.unallocated_idle_sql(books, query.share_split, query.idle_by_node)
    sql = (
        f"SELECT step_idx, {_sums(books, 'unallocated{s}', 'cost')} "
        f"FROM {step.tagged(f'({source})')} GROUP BY step_idx"
    )
    out: list[CostRow] = []
    for row in run_named(cursor, sql, params):
        cost = _money(row, books, "cost")
        if any(value > 0 for value in cost.values()):
            out.append(_finish(step.bounds[int(_float(row["step_idx"]))], UNALLOCATED_IDLE, (UNALLOCATED_IDLE_KEY,),
                               node_cost, cost=cost[""], custom=cost.get("_custom")))
    return out


def _diagnostics(cursor: duckdb.DuckDBPyConnection, stored: rollup.Stored | None, *, live: bool,
                 nodes: Mapping[int, dict[str, object]]) -> Diagnostics:
    counts = ["(SELECT count(*) FROM container_cost WHERE NOT matched)"] if live else []
    if stored is not None:
        counts.append(f"(SELECT coalesce(sum(unmatched), 0) FROM {stored.unmatched})")
    row = run_named(cursor, f"SELECT {' + '.join(counts)} AS unmatched", Params())[0]
    return Diagnostics(overcommitted_node_segments=sum(int(_float(sums["over"])) for sums in nodes.values()),
                       unmatched_container_facts=int(_float(row["unmatched"])))


#: Idle rows have no usage: every integral is 0.
_NO_INTEGRALS = (0.0,) * len(workload.INTEGRALS)


def _finish(
    bounds: tuple[int, int], kind: str, key: tuple[str, ...], node_cost: Mapping[int, float], *, cost: float,
    custom: float | None, shared: float = 0.0, integrals: Sequence[float | None] = _NO_INTEGRALS,
    span: float | None = 0.0, properties: Mapping[str, str] | None = None, labels: Mapping[str, str] | None = None,
) -> CostRow:
    """The one way an idle row is finished: its sums (`integrals` in `workload.INTEGRALS` order,
    None read as 0) become the CostRow's quantities (DESIGN.md §4; workload rows are finished in SQL
    by the same formulas, `engine.workload`):

        x average        = Σ x integral / active span       [cores, bytes]   (0 without a span)
        cpu_core_hours   = Σ q_cpu / 3600                   [core·h]
        memory_gib_hours = Σ q_mem / 3600 / 2^30            [GiB·h]
        costRatio        = cost / Σ node cost of the step   (0 when that is 0; `_ratios_within` may redo it)
    """
    q_cpu, q_mem, cpu_request, cpu_usage, memory_request, memory_usage = integrals
    span = span if span is not None and span > 0 else 0.0
    total = node_cost.get(bounds[0], 0.0)
    return CostRow(
        step_start=bounds[0],
        step_end=bounds[1],
        kind=kind,
        key=key,
        properties={} if properties is None else properties,
        labels=labels,
        cpu_core_request_average=(cpu_request or 0.0) / span if span else 0.0,
        cpu_core_usage_average=(cpu_usage or 0.0) / span if span else 0.0,
        ram_byte_request_average=(memory_request or 0.0) / span if span else 0.0,
        ram_byte_usage_average=(memory_usage or 0.0) / span if span else 0.0,
        cpu_core_hours=(q_cpu or 0.0) / 3600.0,
        memory_gib_hours=(q_mem or 0.0) / 3600.0 / GIB,
        cost=cost,
        shared_idle_cost=shared,
        cost_ratio=cost / total if total > 0 else 0.0,
        custom_cost=custom,
    )
