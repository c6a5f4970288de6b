"""A batch of facts in columns, ready for a bulk insert: what one collection of one segment yields.

Columns are numpy arrays keyed by the column names of `kubetally.facts.schema`, one column dict
per fact relation. Label maps travel as JSON text with sorted keys (`encode_labels`) and become
DuckDB MAPs inside the insert (`kubetally.facts.load`), so a batch of 15,000 containers is written
by one vectorised statement, not row by row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from kubetally.facts.schema import TABLES, is_label_map

Columns = dict[str, npt.NDArray[np.generic]]
#: One fact as a dict keyed by column names; a missing key is NULL.
Record = Mapping[str, object]


def encode_labels(labels: Mapping[str, object]) -> str:
    """A label map as the JSON text a batch carries (sorted keys, so equal maps are equal text)."""
    return json.dumps(dict(labels), sort_keys=True)


def _empty(columns: dict[str, str]) -> Columns:
    return {name: np.array([], dtype=np.object_) for name in columns}


def _cell(value: object, kind: str) -> object:
    """A record's value as a batch cell: label maps become JSON text."""
    if is_label_map(kind) and isinstance(value, Mapping):
        return encode_labels(value)
    return value


@dataclass(slots=True)
class FactBatch:
    """Facts of one or more segments, one column dict per fact relation (all four always present)."""

    tables: dict[str, Columns] = field(default_factory=lambda: {name: _empty(cols) for name, cols in TABLES.items()})

    def rows(self, table: str) -> int:
        columns = self.tables[table]
        first = next(iter(columns.values()))
        return len(first)

    @classmethod
    def from_records(cls, **records: Iterable[Record]) -> FactBatch:
        """Build a batch from dict records per relation (`container_facts=[...]`); for tests and small
        sets. A record key that is not a column of its relation is an error, never silently dropped."""
        batch = cls()
        for table, rows in records.items():
            if table not in TABLES:
                raise ValueError(f"unknown fact table {table!r}; accepted: {sorted(TABLES)}")
            listed = list(rows)
            columns = TABLES[table]
            for row in listed:
                unknown = set(row) - set(columns)
                if unknown:
                    raise ValueError(f"unknown fact columns for {table}: {sorted(unknown)}")
            batch.tables[table] = {
                name: np.array([_cell(row.get(name), kind) for row in listed], dtype=np.object_)
                for name, kind in columns.items()
            }
        return batch


def merge(batches: Iterable[FactBatch]) -> FactBatch:
    """One batch holding every row of `batches`, in order."""
    listed = list(batches)
    merged = FactBatch()
    for table, columns in TABLES.items():
        parts = [batch.tables[table] for batch in listed if batch.rows(table)]
        if parts:
            merged.tables[table] = {name: np.concatenate([part[name] for part in parts]) for name in columns}
    return merged
