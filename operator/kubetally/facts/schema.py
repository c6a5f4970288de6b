"""The four fact relations: their columns, with units in the names, and their storage types.

A fact is one entity over one segment `[segment_start, segment_end)` of time (unix seconds, UTC).
The ledger stores one fact per entity per complete hour; the live edges of a window are facts over
shorter segments. Everything is already gated by the running status: a fact exists only for time
the container (node, volume) ran, and its integrals cover only that time.

Units are in the column names: `*_core_seconds` = CPU cores × seconds, `*_byte_seconds` =
bytes × seconds, `running_seconds` = seconds the entity ran within the segment. `active_start` /
`active_end` are the first and last instants (unix seconds) the entity ran within the segment; the
API's averages divide by the span from the earliest `active_start` to the latest `active_end`.

Label maps are keyed by sanitized keys (`kubetally.domain.labels.sanitize_label_key`), as
kube-state-metrics reports them after the `label_` prefix.

The values of the column dicts are DuckDB types: the storage form, which only `kubetally.facts`,
the ledger and the engine may read (an import-linter contract in pyproject.toml).
"""

from __future__ import annotations

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

#: Fact relation name (the ledger's table, the engine's default relation) → its columns.
TABLES: dict[str, dict[str, str]] = {
    "container_facts": CONTAINER_COLUMNS,
    "node_facts": NODE_COLUMNS,
    "volume_facts": VOLUME_COLUMNS,
    "quota_facts": QUOTA_COLUMNS,
}


def is_label_map(kind: str) -> bool:
    """Whether a column of storage type `kind` holds a label map (it travels as JSON text in a batch)."""
    return kind.startswith("MAP")


#: Fact relation → the SELECT list that casts a batch of it (label maps as JSON text) to the stored
#: types: a constant of the schema, built once rather than on every insert.
CASTS: dict[str, str] = {
    table: ", ".join(f"CAST(CAST({name} AS JSON) AS {kind}) AS {name}" if is_label_map(kind)
                     else f"CAST({name} AS {kind})" for name, kind in columns.items())
    for table, columns in TABLES.items()
}


def definitions(table: str) -> str:
    """The column definitions of fact relation `table` for a CREATE TABLE: "cluster VARCHAR, ..."."""
    return ", ".join(f"{name} {kind}" for name, kind in TABLES[table].items())
