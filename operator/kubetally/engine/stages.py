"""The shared first stages of every engine answer, materialised as temporary tables.

`materialise` runs, on one DuckDB cursor (a connection of its own, so temporary tables never
collide between concurrent requests):

    node_idle      one row per node fact in the window: prices, pools, rates, scale factors, idle
    container_cost one row per counted container fact: basis quantities and scaled costs
    pod_segments   one row per pod and segment (containers rolled up)
    pod_shares     pod_segments with the idle share each pod carries

Later stages (`pipeline`, `usage`) read these tables. Tables are dropped by `release`.
"""

from __future__ import annotations

import duckdb

from kubetally.domain.prices import PriceBook
from kubetally.domain.vocabulary import Method, ShareSplit
from kubetally.engine import allocation, pricing, sharing
from kubetally.engine.facts import Facts
from kubetally.engine.pricing import PricedBook
from kubetally.engine.sql import Params

TABLES = ("pod_shares", "pod_segments", "container_cost", "node_idle")


def materialise(
    cursor: duckdb.DuckDBPyConnection,
    facts: Facts,
    books: list[PricedBook],
    window: tuple[int, int],
    method: Method,
    split: ShareSplit = ShareSplit.WEIGHTED,
    idle_by_node: bool = False,
    *,
    pods: bool = True,
    labels: bool = True,
) -> None:
    """Create the temporary tables above for `window` (unix seconds) on `cursor`; with
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


def release(cursor: duckdb.DuckDBPyConnection) -> None:
    """Drop the temporary tables of `materialise`."""
    for table in TABLES:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")


def books_of(prices: PriceBook, custom: PriceBook | None) -> list[PricedBook]:
    """The books to price with: `prices` (suffix ""), and `custom` (suffix "_custom") if given."""
    books = [PricedBook(prices, "")]
    if custom is not None:
        books.append(PricedBook(custom, "_custom"))
    return books
