"""The workload rows of a /v2/cost answer: grouped, counted, finished and ordered in DuckDB, fetched as columns.

Per step and group of `pod_shares` rows the filter keeps (DESIGN.md §4; `pipeline` stage 8):

    cost             = Σ cost (+ Σ share with shareIdle)                [currency]
    x average        = Σ x integral / active span                       [cores, bytes]  (0 without a span)
    active span      = max(active_end) − min(active_start)              [s]
    cpu_core_hours   = Σ q_cpu / 3600                                   [core·h]
    memory_gib_hours = Σ q_mem / 3600 / 2^30                            [GiB·h]
    costRatio        = cost / Σ node cost of the step                   (0 when that is 0)

Why here and in SQL: at scale L a month by day by controller is 80k rows. Finishing them one Python
object at a time (a CostRow each, a sort, a second pass for the body) took 2-3 s, more than the
whole computation in DuckDB (issue 15). DuckDB finishes every number, orders the rows (by step,
cost descending, key values, then the shared properties: a stable order that needs no Python sort)
and hands columns (`fetchnumpy`), which become `WorkloadRows` lists in C loops; or, given a caller's
`Renderer` (the /v2/cost JSON body's, `api.payloads`), one text per row written by DuckDB
(`Rendered`): then no Python object per row and field exists at all.

The answer is counted before it is fetched, so an answer over the row cap is refused before any
row exists in Python (`check_cap`; `pipeline` may refuse earlier from stored rows alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np
import orjson

from kubetally.domain.errors import SpecError
from kubetally.domain.vocabulary import GIB
from kubetally.engine import filtering, grouping
from kubetally.engine.pricing import PricedBook
from kubetally.engine.query import NUMBER_FIELDS, CostQuery, Rendered, Renderer, WorkloadRows
from kubetally.engine.sql import Params

TABLE = "workload_rows"

#: Summed integrals of a group (`pod_shares` columns).
INTEGRALS = ("q_cpu", "q_mem", "cpu_request_core_seconds", "cpu_usage_core_seconds",
             "memory_request_byte_seconds", "memory_usage_byte_seconds")

#: Each finished number (NUMBER_FIELDS) as SQL over the grouped columns of `TABLE`, with `node_cost`
#: the step's Σ node cost (see the module docstring for the formulas).
_FINISHED = {
    "cpu_core_request_average": "CASE WHEN span > 0 THEN coalesce(cpu_request_core_seconds, 0) / span ELSE 0.0 END",
    "cpu_core_usage_average": "CASE WHEN span > 0 THEN coalesce(cpu_usage_core_seconds, 0) / span ELSE 0.0 END",
    "ram_byte_request_average": "CASE WHEN span > 0 THEN coalesce(memory_request_byte_seconds, 0) / span ELSE 0.0 END",
    "ram_byte_usage_average": "CASE WHEN span > 0 THEN coalesce(memory_usage_byte_seconds, 0) / span ELSE 0.0 END",
    "cpu_core_hours": "coalesce(q_cpu, 0) / 3600.0",
    "memory_gib_hours": f"coalesce(q_mem, 0) / 3600.0 / {GIB}",
    "cost": "coalesce(cost, 0.0)",
    "shared_idle_cost": "coalesce(shared, 0.0)",
    "cost_ratio": "CASE WHEN node_cost > 0 THEN coalesce(cost, 0.0) / node_cost ELSE 0.0 END",
}
assert tuple(_FINISHED) == NUMBER_FIELDS


def _sums(books: list[PricedBook], value: str, prefix: str) -> str:
    return ", ".join(f"sum({value.format(s=b.suffix)}) AS {prefix}{b.suffix}" for b in books)


def group(cursor: duckdb.DuckDBPyConnection, books: list[PricedBook], query: CostQuery, tagged: str) -> int:
    """Create `TABLE`: one row per step and group of the rows of `tagged` (`pod_shares` with
    `step_idx`) the query's filter keeps, with Σ cost, Σ share, Σ integrals, the span, the labels
    property (JSON text, keys sorted) and the shared properties. Returns how many rows it holds."""
    params = Params()
    keys = grouping.grouping(query.aggregate, params)
    where = params.adopt(*filtering.to_sql(query.filter))
    with_share = "cost{s} + share{s}" if query.share_idle else "cost{s}"
    shared = "sum(share) AS shared" if query.share_idle else "0.0 AS shared"
    display = ", ".join(f"k{i}" for i in range(keys.display_count))
    integrals = ", ".join(f"sum({name}) AS {name}" for name in INTEGRALS)
    # CREATE TABLE AS answers with the number of rows it wrote.
    found = cursor.execute(f"""
CREATE TEMP TABLE {TABLE} AS
SELECT step_idx, {display}, {_sums(books, with_share, "cost")}, {shared}, {integrals},
       max(active_end) - min(active_start) AS span,
       to_json(map_from_entries(list_sort(map_entries({keys.labels})))) AS labels, {grouping.properties_sql()}
FROM (SELECT *, {keys.select} FROM {tagged} WHERE {where})
GROUP BY step_idx, {keys.group_by}""", params.values).fetchone()
    return int(found[0]) if found else 0


#: Counting in runs pays only where a month by hour may be refused early; fewer steps count at once.
RUNS_FROM_STEPS = 96


def count_groups(cursor: duckdb.DuckDBPyConnection, query: CostQuery, tagged: str, steps: int,
                 enough: int | None = None, parts: int = 4) -> int:
    """How many (step, group) pairs the rows of `tagged` the filter keeps make: over stored rows
    alone, a lower bound of the answer's workload rows (live hours can only add groups), so an
    answer over the cap is refused before the month is materialised (at scale L, 30 days by hour by
    controller is 1.9M stored rows). The step is part of every pair, so the count is the sum of the
    counts over `parts` disjoint runs of the `steps` step indices (one run below `RUNS_FROM_STEPS`
    steps); it stops once past `enough`."""
    params = Params()
    keys = grouping.grouping(query.aggregate, params)
    where = params.adopt(*filtering.to_sql(query.filter))
    size = max(1, -(-steps // parts)) if steps >= RUNS_FROM_STEPS else max(steps, 1)
    total = 0
    for first in range(0, max(steps, 1), size):
        # `labels` is selected (and unused) because its expression holds parameters of its own.
        found = cursor.execute(
            f"SELECT count(*) FROM (SELECT step_idx, {keys.labels} AS labels FROM "
            f"(SELECT *, {keys.select} FROM {tagged} WHERE {where}) "
            f"WHERE step_idx >= {int(first)} AND step_idx < {int(first + size)} GROUP BY step_idx, {keys.group_by})",
            params.values).fetchone()
        total += int(found[0]) if found else 0
        if enough is not None and total > enough:
            break
    return total


def check_cap(count: int, max_rows: int | None, bound: str = "") -> None:
    """Refuse an answer of more than `max_rows` workload rows (`bound`: "at least " for a lower bound)."""
    if max_rows is not None and count > max_rows:
        raise SpecError(
            "step",
            f"the answer has {bound}{count} rows (groups × steps), over the cap of {max_rows}; use a longer step "
            "(e.g. step=1d), a shorter window, a coarser aggregate (e.g. aggregate=namespace) or a filter",
        )


def finished_sql(books: list[PricedBook], query: CostQuery, steps: str) -> str:
    """SELECT of the rows of `TABLE`, finished (`_FINISHED`), with `step_start`, `step_end`, the key
    values k0.., `custom_cost` (with customWeights), `labels` (JSON text or NULL) and the shared
    properties p_<column>, unordered (`ordered` orders them). `steps` is the step table (`step_idx`,
    `set_start`, `set_end`); costRatio's denominator of step i is `$denominators[i]` (the caller
    binds it: `denominators`)."""
    display = [f"k{i}" for i in range(len(query.aggregate))]
    properties = [f"p_{column}" for column in grouping.PROPERTY_COLUMNS.values()]
    custom = ", coalesce(cost_custom, 0.0) AS custom_cost" if len(books) > 1 else ""
    finished = ", ".join(f"{sql} AS {name}" for name, sql in _FINISHED.items())
    return f"""
SELECT w.step_idx, s.set_start AS step_start, s.set_end AS step_end, {", ".join(display)}, {finished}{custom},
       w.labels, {", ".join(properties)}
FROM {TABLE} AS w
JOIN {steps} AS s USING (step_idx)
JOIN (SELECT unnest($denominators) AS node_cost, unnest(range(len($denominators))) AS step_idx) AS n
  USING (step_idx)"""


def ordered(select: str, books: list[PricedBook], query: CostQuery, steps: str) -> str:
    """`SELECT step_idx, <select>` over `finished_sql`'s rows in answer order: by step, cost
    descending, key values, then the shared properties (a total order: rows of a step differ in a
    key value or a property, so the answer never depends on how DuckDB happened to group)."""
    display = [f"k{i}" for i in range(len(query.aggregate))]
    properties = [f"p_{column} NULLS FIRST" for column in grouping.PROPERTY_COLUMNS.values()]
    order = ", ".join(["step_idx", "cost DESC", *display, *properties])
    return f"SELECT step_idx, {select} FROM ({finished_sql(books, query, steps)}) ORDER BY {order}"


def step_costs(cursor: duckdb.DuckDBPyConnection) -> dict[int, float]:
    """Σ cost of `TABLE`'s rows per step index (costRatio within the answer needs it)."""
    rows = cursor.execute(f"SELECT step_idx, sum(cost) FROM {TABLE} GROUP BY step_idx").fetchall()
    return {int(step): float(total or 0.0) for step, total in rows}


def fetch(cursor: duckdb.DuckDBPyConnection, books: list[PricedBook], query: CostQuery, steps: str,
          denominators: Sequence[float]) -> WorkloadRows:
    """The rows of `TABLE`, finished and ordered (`finished_sql`), as columns."""
    display = [f"k{i}" for i in range(len(query.aggregate))]
    properties = [f"p_{column}" for column in grouping.PROPERTY_COLUMNS.values()]
    result = cursor.execute(ordered("*", books, query, steps),
                            {"denominators": [float(value) for value in denominators]})
    columns = {name: _values(array) for name, array in result.fetchnumpy().items()}
    names = list(grouping.PROPERTY_COLUMNS)
    shared = zip(*(columns[column] for column in properties), strict=True)
    return WorkloadRows(
        step_start=[int(value) for value in columns["step_start"]],
        step_end=[int(value) for value in columns["step_end"]],
        key=list(zip(*(columns[column] for column in display), strict=True)),
        properties=[{name: value for name, value in zip(names, values, strict=True) if value}
                    for values in shared],
        labels=[None if text is None else orjson.loads(text) for text in columns["labels"]],
        numbers={name: columns[name] for name in NUMBER_FIELDS},
        custom_cost=columns["custom_cost"] if len(books) > 1 else None,
    )


def render(cursor: duckdb.DuckDBPyConnection, books: list[PricedBook], query: CostQuery, steps: str,
           denominators: Sequence[float], renderer: Renderer) -> Rendered:
    """The rows of `TABLE` written by `renderer` over `finished_sql`, in answer order."""
    select, params = renderer(len(query.aggregate), len(books) > 1)
    result = cursor.execute(ordered(select, books, query, steps),
                            {**params, "denominators": [float(value) for value in denominators]})
    columns = {name: _values(array) for name, array in result.fetchnumpy().items()}
    return Rendered(step_index=[int(value) for value in columns["step_idx"]], bases=columns["base"],
                    uids=[uid or "" for uid in columns["uid"]], bodies=columns["body"], finite=all(columns["finite"]))


def _values(array: Any) -> list[Any]:
    """A fetched column as a list: masked (NULL) entries become None."""
    if isinstance(array, np.ma.MaskedArray):
        data = array.data.tolist()
        mask = np.ma.getmaskarray(array).tolist()
        return [None if hidden else value for value, hidden in zip(data, mask, strict=True)]
    return list(array.tolist())
