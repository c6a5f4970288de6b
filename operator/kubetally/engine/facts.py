"""The columns of the four fact relations the engine reads, and a loader for small fact sets.

A *fact* is one entity over one segment `[segment_start, segment_end)` of time (unix seconds,
UTC), holding integrals that add up exactly across segments and groups (DESIGN.md §2, §4). The
ledger stores one fact per entity per complete hour; the live edges of a window are facts over
shorter segments. Everything is already gated by the running status: a fact exists only for time
the container (node, volume) ran, and its integrals cover only that time.

Units are in the column names: `*_core_seconds` = CPU cores × seconds, `*_byte_seconds` =
bytes × seconds, `running_seconds` = seconds the entity ran within the segment. `active_start` /
`active_end` are the first and last instants (unix seconds) the entity ran within the segment; the
API's averages divide by the span from the earliest `active_start` to the latest `active_end`.

Label maps are keyed by sanitized keys (`kubetally.domain.labels.sanitize_label_key`), as
kube-state-metrics reports them after the `label_` prefix.

`load_facts` builds the relations from Python records in an in-memory DuckDB connection. It is
for tests and small inputs; the ledger hands the engine its own tables or views with the same
columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import duckdb

from kubetally.engine.rollup import Stored

#: Container facts: one running container of a pod over one segment.
CONTAINER_COLUMNS: dict[str, str] = {
    "cluster": "VARCHAR",
    "node": "VARCHAR",
    "namespace": "VARCHAR",
    "project": "VARCHAR",
    "pod": "VARCHAR",
    "pod_uid": "VARCHAR",
    "container": "VARCHAR",
    "controller_kind": "VARCHAR",
    "controller": "VARCHAR",
    "labels": "MAP(VARCHAR, VARCHAR)",
    "segment_start": "BIGINT",
    "segment_end": "BIGINT",
    "active_start": "DOUBLE",
    "active_end": "DOUBLE",
    "running_seconds": "DOUBLE",
    "cpu_request_core_seconds": "DOUBLE",
    "cpu_usage_core_seconds": "DOUBLE",
    "cpu_effective_core_seconds": "DOUBLE",
    "memory_request_byte_seconds": "DOUBLE",
    "memory_usage_byte_seconds": "DOUBLE",
    "memory_effective_byte_seconds": "DOUBLE",
}

#: Node facts: one node over one segment. `hourly_price_seconds` is ∫ node_total_hourly_cost dt
#: (currency/hour × seconds) where an OpenCost-compatible exporter provides the metric, else NULL.
NODE_COLUMNS: dict[str, str] = {
    "cluster": "VARCHAR",
    "node": "VARCHAR",
    "provider_id": "VARCHAR",
    "labels": "MAP(VARCHAR, VARCHAR)",
    "segment_start": "BIGINT",
    "segment_end": "BIGINT",
    "running_seconds": "DOUBLE",
    "cpu_capacity_core_seconds": "DOUBLE",
    "memory_capacity_byte_seconds": "DOUBLE",
    "hourly_price_seconds": "DOUBLE",
}

#: Volume facts: one bound PersistentVolumeClaim over one segment.
VOLUME_COLUMNS: dict[str, str] = {
    "cluster": "VARCHAR",
    "namespace": "VARCHAR",
    "project": "VARCHAR",
    "pvc": "VARCHAR",
    "storage_class": "VARCHAR",
    "segment_start": "BIGINT",
    "segment_end": "BIGINT",
    "running_seconds": "DOUBLE",
    "request_byte_seconds": "DOUBLE",
    "used_byte_seconds": "DOUBLE",
    "effective_byte_seconds": "DOUBLE",
}

#: Quota facts: one namespace's ResourceQuota hard limits (requests.*) × time over one segment.
QUOTA_COLUMNS: dict[str, str] = {
    "cluster": "VARCHAR",
    "namespace": "VARCHAR",
    "project": "VARCHAR",
    "segment_start": "BIGINT",
    "segment_end": "BIGINT",
    "cpu_core_seconds": "DOUBLE",
    "memory_byte_seconds": "DOUBLE",
    "storage_byte_seconds": "DOUBLE",
}


@dataclass(frozen=True, slots=True)
class Facts:
    """Where the engine finds the four fact relations: a DuckDB connection and relation names.

    The engine creates (and drops) temporary tables on `con`, so `con` must belong to one
    computation at a time: callers that share a database hand each computation its own cursor
    (`connection.cursor()`). The names are trusted identifiers chosen by our own code (tables or
    views), never user input. With `stored`, the fact relations hold only the hours not stored.
    """

    con: duckdb.DuckDBPyConnection
    containers: str = "container_facts"
    nodes: str = "node_facts"
    volumes: str = "volume_facts"
    quotas: str = "quota_facts"
    #: Stored rollup rows for the hours the four relations leave out (`engine.rollup`), or None.
    stored: Stored | None = None


Record = Mapping[str, object]


def create_tables(con: duckdb.DuckDBPyConnection, facts: Facts) -> None:
    """Create the four relations, empty, with the columns above."""
    for name, columns in (
        (facts.containers, CONTAINER_COLUMNS),
        (facts.nodes, NODE_COLUMNS),
        (facts.volumes, VOLUME_COLUMNS),
        (facts.quotas, QUOTA_COLUMNS),
    ):
        body = ", ".join(f"{column} {kind}" for column, kind in columns.items())
        con.execute(f"CREATE TABLE {name} ({body})")


def _insert(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, str], rows: Iterable[Record]) -> None:
    names = list(columns)
    batch = []
    for row in rows:
        unknown = set(row) - set(names)
        if unknown:
            raise ValueError(f"unknown fact columns for {table}: {sorted(unknown)}")
        values: list[object] = []
        for name in names:
            value = row.get(name)
            if columns[name].startswith("MAP") and value is not None:
                mapping = dict(value)  # type: ignore[call-overload]
                value = {"key": list(mapping), "value": list(mapping.values())}
            values.append(value)
        batch.append(values)
    if batch:
        marks = ", ".join("?" for _ in names)
        con.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", batch)


def load_facts(
    *,
    containers: Iterable[Record] = (),
    nodes: Iterable[Record] = (),
    volumes: Iterable[Record] = (),
    quotas: Iterable[Record] = (),
    con: duckdb.DuckDBPyConnection | None = None,
) -> Facts:
    """Load records (dicts keyed by the column names above; missing keys are NULL) into DuckDB."""
    connection = con if con is not None else duckdb.connect()
    facts = Facts(con=connection)
    create_tables(connection, facts)
    _insert(connection, facts.containers, CONTAINER_COLUMNS, containers)
    _insert(connection, facts.nodes, NODE_COLUMNS, nodes)
    _insert(connection, facts.volumes, VOLUME_COLUMNS, volumes)
    _insert(connection, facts.quotas, QUOTA_COLUMNS, quotas)
    return facts
