"""Copying whole hours out of a damaged ledger (`kubetally ledger repair`, `kubetally.repair`).

The damaged file is attached read-only as `old` on the new ledger's connection. Hours are copied
with range predicates on `segment_start` itself, so DuckDB's zone maps keep the copy off the row
groups of other hours: a damaged block fails only the copies of the hours it holds.
"""

from __future__ import annotations

import duckdb

from kubetally.facts.schema import TABLES
from kubetally.ledger import rollups


def copy_hours(con: duckdb.DuckDBPyConnection, hours: list[tuple[str, int]]) -> bool:
    """Copy `hours` (one cluster's, within one day) from `old` in one transaction; False if a read failed."""
    cluster = hours[0][0]
    spans = rollups.runs(hour for _, hour in hours)  # ranges on the column itself: zone maps prune
    try:
        con.execute("BEGIN TRANSACTION")
        for table in TABLES:
            con.execute(f"INSERT INTO main.{table} BY NAME SELECT * FROM old.{table} WHERE coalesce(cluster, '') = ? "
                        f"AND {rollups.in_runs(spans)}", [cluster])
        con.execute(f"INSERT INTO main.hours BY NAME SELECT * FROM old.hours WHERE cluster = ? AND "
                    f"{rollups.in_runs(spans, 'hour_start')}", [cluster])
        con.execute("COMMIT")
        return True
    except duckdb.Error:
        con.execute("ROLLBACK")
        return False
