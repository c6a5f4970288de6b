"""The shared first stages of every engine answer, materialised as temporary tables.

`materialise` runs, on one DuckDB cursor (a connection of its own, so temporary tables never
collide between concurrent requests):

    node_idle      one row per node fact in the window: prices, pools, rates, scale factors, idle
    container_cost one row per counted container fact: basis quantities and scaled costs
    pod_segments   one row per pod and segment (containers rolled up)
    pod_shares     pod_segments with the idle share each pod carries

Later stages (`pipeline`, `usage`) read these tables. Tables are dropped by `release`.

With stored rollups (`engine.rollup`), `attach` renames the last three of these to `live_*` and
puts views of the same names in their place: the live rows UNION ALL the stored rows, projected
onto the columns the answer stages read. Segments of the two parts never overlap (the fact
relations leave the stored hours out), and every stage before is local to a segment. The stored
rows themselves are built here too (`build_rollups`), by the same stages over the ledger's hours.
"""

from __future__ import annotations

import duckdb

from kubetally.domain.prices import PriceBook
from kubetally.domain.vocabulary import Method, ShareSplit
from kubetally.engine import allocation, pricing, rollup, sharing
from kubetally.engine.facts import Facts
from kubetally.engine.pricing import PricedBook
from kubetally.engine.sql import Params

TABLES = ("workload_rows", "pod_shares", "pod_segments", "container_cost", "node_idle")
_ATTACHED = ("pod_shares", "pod_segments", "node_idle")


def materialise(
    cursor: duckdb.DuckDBPyConnection,
    facts: Facts,
    books: list[PricedBook],
    window: tuple[int, int],
    *,
    method: Method,
    split: ShareSplit = ShareSplit.WEIGHTED,
    idle_by_node: bool = False,
    pods: bool = True,
    labels: bool = True,
) -> None:
    """Create the temporary tables above for `window` (unix seconds) on `cursor`, costing containers
    by `method` and sharing idle by `split` over the cluster (or per node with `idle_by_node`); with
    `pods=False` only `node_idle` and `container_cost` (all that usage rows need); with
    `labels=False` the container rows carry no label maps (see `allocation.container_cost_sql`)."""
    params = Params()
    ctes = pricing.node_cost_ctes(books, params, facts.nodes, window)
    load = allocation.raw_load_sql(books, params, facts.containers, window, method)
    cursor.execute(f"CREATE TEMP TABLE node_idle AS WITH {ctes} {allocation.node_idle_sql(books, load)}", params.values)
    params = Params()
    cursor.execute(
        "CREATE TEMP TABLE container_cost AS "
        + allocation.container_cost_sql(books, params, facts.containers, window, method, labels=labels),
        params.values,
    )
    if not pods:
        return
    cursor.execute("CREATE TEMP TABLE pod_segments AS " + sharing.pod_segments_sql(books))
    cursor.execute("CREATE TEMP TABLE pod_shares AS " + sharing.pod_shares_sql(books, split, idle_by_node))


def attach(cursor: duckdb.DuckDBPyConnection, stored: rollup.Stored, *, live: bool = True) -> None:
    """Replace `node_idle`, `pod_segments` and `pod_shares` by views that add `stored`'s rows; with
    `live=False` (nothing was materialised: every hour of the window is stored) the views hold
    `stored`'s rows alone, and the answer costs no statement over empty facts (issue 15: at scale M
    the stages over no facts were a fifth of a request)."""
    if live:
        for table in _ATTACHED:
            cursor.execute(f"ALTER TABLE {table} RENAME TO live_{table}")
    nodes = ", ".join(rollup.NODE_COLUMNS)
    node_rows = f"{rollup.node_rows_sql('live_node_idle')} UNION ALL " if live else ""
    cursor.execute(f"CREATE TEMP VIEW node_idle AS {node_rows}SELECT {nodes} FROM {stored.nodes}")
    pods = ", ".join(rollup.POD_COLUMNS)
    labels = "labels" if stored.labels else f"CAST(NULL AS {rollup.LABELS_TYPE}) AS labels"
    pod_rows = f"SELECT {pods}, labels FROM live_pod_shares UNION ALL " if live else ""
    cursor.execute(f"CREATE TEMP VIEW pod_shares AS {pod_rows}SELECT {pods}, {labels} FROM {stored.pods}")
    cursor.execute("CREATE TEMP VIEW pod_segments AS SELECT * EXCLUDE (share) FROM pod_shares")


def build_rollups(cursor: duckdb.DuckDBPyConnection, facts: Facts, book: PriceBook, *, method: Method,
                  span: tuple[int, int]) -> rollup.Built:
    """Compute the rollups of `span` (whole hours; `facts` hold exactly those hours) priced by `book`
    and `method`: the stages above with the split rollups store (weighted over the cluster), rolled
    up to every hourly level and to the daily levels per day, into the temporary tables `rollup.Built`
    names (the caller stores and drops them). The stages' own tables are released; `cursor` must be
    inside a transaction, whose ROLLBACK on an error drops whatever was created."""
    materialise(cursor, facts, books_of(book, None), span, method=method)
    built = rollup.Built()
    for level in rollup.HOURLY:
        cursor.execute(f"CREATE TEMP TABLE {built.pods(level)} AS {rollup.rows_sql(level, 'pod_shares', rollup.HOUR)}")
    for level in rollup.DAILY:
        cursor.execute(f"CREATE TEMP TABLE {built.days(level)} AS {rollup.rows_sql(level, 'pod_shares', rollup.DAY)}")
    cursor.execute(f"CREATE TEMP TABLE {built.nodes} AS {rollup.node_rows_sql()}")
    cursor.execute(f"CREATE TEMP TABLE {built.unmatched} AS {rollup.unmatched_sql()}")
    release(cursor)
    return built


def release(cursor: duckdb.DuckDBPyConnection) -> None:
    """Drop the temporary tables of `materialise` and the views of `attach` that exist."""
    ours = [*TABLES, *(f"live_{table}" for table in _ATTACHED)]
    found = cursor.execute(
        "SELECT table_name, false FROM duckdb_tables() WHERE temporary AND list_contains($ours, table_name) "
        "UNION ALL SELECT view_name, true FROM duckdb_views() WHERE temporary AND list_contains($ours, view_name)",
        {"ours": ours}).fetchall()
    for name, view in found:
        cursor.execute(f"DROP {'VIEW' if view else 'TABLE'} {name}")


def books_of(prices: PriceBook, custom: PriceBook | None) -> list[PricedBook]:
    """The books to price with: `prices` (suffix ""), and `custom` (suffix "_custom") if given."""
    books = [PricedBook(prices, "")]
    if custom is not None:
        books.append(PricedBook(custom, "_custom"))
    return books
