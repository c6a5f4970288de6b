"""The one way facts get into DuckDB: a `FactBatch` relation inserted by one vectorised statement.

`insert` registers the batch's numpy columns as a view and writes them with one
`INSERT … SELECT CAST(…)`; label maps arrive as JSON text and are cast to MAP(VARCHAR, VARCHAR).
The ingest, the ledger's live edges and the records loaded by `load_records` (tests, small inputs)
all take this path, so a fact has one shape in storage whatever produced it. NaN in an object
column is read as NULL ("no value"), as the collector and the generator mean it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import duckdb

from kubetally.facts.batch import Columns, FactBatch, Record
from kubetally.facts.schema import CASTS, TABLES, definitions


def create_table(con: duckdb.DuckDBPyConnection, table: str, target: str) -> None:
    """Create `target` (a trusted identifier chosen by our code), empty, with the columns of `table`."""
    con.execute(f"CREATE TABLE {target} ({definitions(table)})")


def insert(con: duckdb.DuckDBPyConnection, table: str, target: str, columns: Columns) -> int:
    """Insert `columns` (a FactBatch relation `table`) into `target` with one statement; returns the row count."""
    names = list(TABLES[table])
    if not len(next(iter(columns.values()))):
        return 0
    view = f"_batch_{table}"
    con.register(view, {name: columns[name] for name in names})
    try:
        con.execute(f"INSERT INTO {target} ({', '.join(names)}) SELECT {CASTS[table]} FROM {view}")
    finally:
        con.unregister(view)
    return len(next(iter(columns.values())))


def load_records(
    con: duckdb.DuckDBPyConnection,
    records: Mapping[str, Iterable[Record]],
    targets: Mapping[str, str] | None = None,
) -> None:
    """Create the four fact relations on `con` and fill them from dict records keyed by relation
    (`{"container_facts": [...]}`; missing keys are NULL, unknown keys an error). `targets` names
    the created tables per relation (default: the relation's own name)."""
    batch = FactBatch.from_records(**records)
    for table in TABLES:
        target = (targets or {}).get(table, table)
        create_table(con, table, target)
        insert(con, table, target, batch.tables[table])
