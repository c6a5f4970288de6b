"""A batch of facts in columns, ready for a bulk insert: what one ingest of one segment yields.

Columns are numpy arrays keyed by the names of `engine.facts` (`CONTAINER_COLUMNS`, ...). Label
maps travel as JSON text (`labels_json`) and become DuckDB MAPs inside the insert, so a batch of
15,000 containers is written by one vectorised statement, not row by row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import duckdb
import numpy as np
import numpy.typing as npt

from kubetally.engine.facts import CONTAINER_COLUMNS, NODE_COLUMNS, QUOTA_COLUMNS, VOLUME_COLUMNS

Columns = dict[str, npt.NDArray[np.generic]]

#: Fact table name in the ledger → its columns.
TABLES: dict[str, dict[str, str]] = {
    "container_facts": CONTAINER_COLUMNS,
    "node_facts": NODE_COLUMNS,
    "volume_facts": VOLUME_COLUMNS,
    "quota_facts": QUOTA_COLUMNS,
}


def _empty(columns: dict[str, str]) -> Columns:
    return {name: np.array([], dtype=np.object_) for name in columns}


def _cell(value: object, kind: str) -> object:
    """A record's value as a batch cell: label maps become JSON text."""
    if kind.startswith("MAP") and isinstance(value, Mapping):
        return json.dumps(dict(value), sort_keys=True)
    return value


@dataclass(slots=True)
class FactBatch:
    """Facts of one or more segments, one column dict per fact table."""

    tables: dict[str, Columns] = field(default_factory=lambda: {name: _empty(cols) for name, cols in TABLES.items()})

    def rows(self, table: str) -> int:
        columns = self.tables[table]
        first = next(iter(columns.values()))
        return len(first)

    @classmethod
    def from_records(cls, **records: Iterable[Mapping[str, object]]) -> FactBatch:
        """Build a batch from dict records per table (`container_facts=[...]`); for tests and small sets."""
        batch = cls()
        for table, rows in records.items():
            if table not in TABLES:
                raise ValueError(f"unknown fact table {table!r}; accepted: {sorted(TABLES)}")
            listed = list(rows)
            batch.tables[table] = {
                name: np.array([_cell(row.get(name), kind) for row in listed], dtype=np.object_)
                for name, kind in TABLES[table].items()
            }
        return batch


def insert(con: duckdb.DuckDBPyConnection, table: str, target: str, columns: Columns) -> int:
    """Insert `columns` (a FactBatch table) into `target` with one statement; returns the row count."""
    names = list(TABLES[table])
    if not len(next(iter(columns.values()))):
        return 0
    view = f"_batch_{table}"
    con.register(view, {name: columns[name] for name in names})
    try:
        select = ", ".join(
            f"CAST(CAST({name} AS JSON) AS {kind}) AS {name}" if kind.startswith("MAP") else f"CAST({name} AS {kind})"
            for name, kind in TABLES[table].items()
        )
        con.execute(f"INSERT INTO {target} ({', '.join(names)}) SELECT {select} FROM {view}")
    finally:
        con.unregister(view)
    return len(next(iter(columns.values())))
