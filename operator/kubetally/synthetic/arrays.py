"""`fact_arrays`: the expected facts of one segment as numpy columns, vectorised for scale L.

Why: at scale L (≈15k containers alive per hour, 720 hours) the per-entity reference in
`kubetally.synthetic.expected` is too slow for a benchmark that writes a ledger directly. This
module computes the same facts with the same rules (see `expected`'s docstring) over a
(containers × sample times) matrix, in row chunks so memory stays bounded for long segments. It is
tested to agree with `expected_facts` on small clusters.

How the rules map to arrays, for segment `[a, b)` with `T = a, a + r, …, b − r`:

* `E` extends `T` back by `ceil(w/r) − 1` grid points (the CPU rate window `w` looks before `a`);
  `P[c, e]` = container c has a sample at `E[e]` (alive, in the data span, outside gaps).
* counted = `P` restricted to `T` (never for Pending pods); rated = counted and ≥ 2 samples of `P` in
  the `ceil(w/r)` grid points `(t − w, t]` (a sliding sum of `P` by cumulative sums).
* Memory is `base + wobble(key, T)` per cell; integer sums times `r`, so the byte-seconds are equal,
  bit for bit, to `expected`'s. CPU sums are `value·r·count` (equal to `expected`'s per-sample sums
  up to float rounding, ~1e-15 relative).

Columns are exactly those of `kubetally.facts.schema`; strings and label maps are object arrays;
`hourly_price_seconds` is NaN where the fact has NULL (no price metric).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kubetally.domain.labels import sanitize_label_key
from kubetally.synthetic.expected import QUOTA_RESOURCES, ExpectedFacts, Record, check_segment, pod_labels
from kubetally.synthetic.model import INSTANCE_TYPE_LABEL, Cluster
from kubetally.synthetic.samples import BoolArray, Int64Array, gap_mask, grid, rate_window, wobble

Columns = dict[str, NDArray[Any]]
_CELLS_PER_CHUNK = 2_000_000


@dataclass(frozen=True, slots=True)
class FactArrays:
    """Column arrays of the four fact relations over one segment."""

    containers: Columns
    nodes: Columns
    volumes: Columns
    quotas: Columns

    def records(self) -> ExpectedFacts:
        """The same facts as records (NaN prices become None), e.g. to compare with `expected_facts`."""
        return ExpectedFacts(
            containers=_records(self.containers),
            nodes=_records(self.nodes, nullable=("hourly_price_seconds",)),
            volumes=_records(self.volumes),
            quotas=_records(self.quotas),
        )


def _records(columns: Columns, nullable: tuple[str, ...] = ()) -> list[Record]:
    names = list(columns)
    size = len(next(iter(columns.values()))) if columns else 0
    lists = {name: columns[name].tolist() for name in names}
    rows: list[Record] = []
    for i in range(size):
        row: Record = {name: lists[name][i] for name in names}
        for name in nullable:
            value = row[name]
            if isinstance(value, float) and np.isnan(value):
                row[name] = None
        rows.append(row)
    return rows


def _objects(values: list[Any]) -> NDArray[Any]:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


@dataclass(frozen=True, slots=True)
class _ContainerTable:
    start: Int64Array
    end: Int64Array
    pending: BoolArray
    cpu_request: NDArray[np.float64]
    memory_request: Int64Array
    cpu_rate: NDArray[np.float64]
    memory_base: Int64Array
    memory_span: Int64Array
    key: NDArray[np.uint64]
    identity: Columns


def _container_table(cluster: Cluster) -> _ContainerTable:
    cached = cluster.cache.get("container_table")
    if isinstance(cached, _ContainerTable):
        return cached
    rows = [(pod, c) for pod in cluster.pods for c in pod.containers]
    identity: dict[str, list[Any]] = {name: [] for name in (
        "node", "namespace", "project", "pod", "pod_uid", "container", "controller_kind", "controller", "labels")}
    labels_of: dict[str, dict[str, str]] = {}
    for pod, c in rows:
        kind, controller = cluster.controller_of(pod)
        labels = labels_of.setdefault(pod.uid, pod_labels(pod))
        for name, value in (("node", pod.node), ("namespace", pod.namespace),
                            ("project", cluster.project_of(pod.namespace)), ("pod", pod.name),
                            ("pod_uid", pod.uid), ("container", c.name), ("controller_kind", kind),
                            ("controller", controller), ("labels", labels)):
            identity[name].append(value)
    table = _ContainerTable(
        start=np.array([p.start for p, _ in rows], dtype=np.int64),
        end=np.array([p.end for p, _ in rows], dtype=np.int64),
        pending=np.array([p.pending for p, _ in rows], dtype=np.bool_),
        cpu_request=np.array([c.cpu_request or 0.0 for _, c in rows], dtype=np.float64),
        memory_request=np.array([c.memory_request or 0 for _, c in rows], dtype=np.int64),
        cpu_rate=np.array([c.cpu_rate for _, c in rows], dtype=np.float64),
        memory_base=np.array([c.memory_base for _, c in rows], dtype=np.int64),
        memory_span=np.array([c.memory_span for _, c in rows], dtype=np.int64),
        key=np.array([c.key for _, c in rows], dtype=np.uint64),
        identity={name: _objects(values) for name, values in identity.items()},
    )
    cluster.cache["container_table"] = table
    return table


def _valid(cluster: Cluster, times: Int64Array) -> BoolArray:
    spec = cluster.spec
    return (times >= spec.start) & (times < spec.end) & ~gap_mask(times, spec.gaps)


def _alive(times: Int64Array, valid: BoolArray, start: Int64Array, end: Int64Array) -> BoolArray:
    return (times >= start[:, None]) & (times < end[:, None]) & valid


def _container_chunk(t: _ContainerTable, rows: Int64Array, ext: Int64Array, valid: BoolArray,
                     window: int, r: int) -> Columns:
    n_t = ext.size - window + 1
    times = ext[window - 1:]
    present = _alive(ext, valid, t.start[rows], t.end[rows])
    counted = present[:, window - 1:]
    sums = np.concatenate([np.zeros((rows.size, 1), dtype=np.int64), np.cumsum(present, axis=1)], axis=1)
    rated = counted & ((sums[:, window:] - sums[:, :n_t]) >= 2)
    n = counted.sum(axis=1)
    keep = n > 0
    rows, counted, rated, n = rows[keep], counted[keep], rated[keep], n[keep]
    n_rated = rated.sum(axis=1)
    first = np.argmax(counted, axis=1)
    last = n_t - 1 - np.argmax(counted[:, ::-1], axis=1)
    memory = t.memory_base[rows, None] + wobble(t.key[rows, None], times, t.memory_span[rows, None])
    memory_request = t.memory_request[rows]
    cpu_request, rate = t.cpu_request[rows], t.cpu_rate[rows]
    return {
        **{name: column[rows] for name, column in t.identity.items()},
        "active_start": times[first].astype(np.float64),
        "active_end": (times[last] + r).astype(np.float64),
        "running_seconds": (n * r).astype(np.float64),
        "cpu_request_core_seconds": cpu_request * r * n,
        "cpu_usage_core_seconds": rate * r * n_rated,
        "cpu_effective_core_seconds": np.maximum(cpu_request, rate) * r * n_rated + cpu_request * r * (n - n_rated),
        "memory_request_byte_seconds": (memory_request * n * r).astype(np.float64),
        "memory_usage_byte_seconds": ((memory * counted).sum(axis=1) * r).astype(np.float64),
        "memory_effective_byte_seconds": (
            (np.maximum(memory, memory_request[:, None]) * counted).sum(axis=1) * r).astype(np.float64),
    }


_CONTAINER_ORDER = (
    "cluster", "node", "namespace", "project", "pod", "pod_uid", "container", "controller_kind", "controller",
    "labels", "segment_start", "segment_end", "active_start", "active_end", "running_seconds",
    "cpu_request_core_seconds", "cpu_usage_core_seconds", "cpu_effective_core_seconds",
    "memory_request_byte_seconds", "memory_usage_byte_seconds", "memory_effective_byte_seconds",
)


def _segment(columns: Columns, cluster: Cluster, a: int, b: int, order: tuple[str, ...]) -> Columns:
    size = len(next(iter(columns.values())))
    full = {
        **columns,
        "cluster": _objects([cluster.spec.name] * size),
        "segment_start": np.full(size, a, dtype=np.int64),
        "segment_end": np.full(size, b, dtype=np.int64),
    }
    return {name: full[name] for name in order}


def _containers(cluster: Cluster, a: int, b: int) -> Columns:
    spec = cluster.spec
    r = spec.scrape_seconds
    window = -(-rate_window(spec) // r)
    ext = np.arange(a - (window - 1) * r, b, r, dtype=np.int64)
    valid = _valid(cluster, ext)
    table = _container_table(cluster)
    rows = np.flatnonzero(~table.pending & (table.start < b) & (table.end > a))
    step = max(1, _CELLS_PER_CHUNK // ext.size)
    chunks = [_container_chunk(table, rows[i:i + step], ext, valid, window, r) for i in range(0, rows.size, step)]
    if not chunks:
        chunks = [_container_chunk(table, rows, ext, valid, window, r)]
    merged = {name: np.concatenate([chunk[name] for chunk in chunks]) for name in chunks[0]}
    return _segment(merged, cluster, a, b, _CONTAINER_ORDER)


def _nodes(cluster: Cluster, a: int, b: int, times: Int64Array, valid: BoolArray) -> Columns:
    r = cluster.spec.scrape_seconds
    nodes = cluster.nodes
    start = np.array([n.start for n in nodes], dtype=np.int64)
    end = np.array([n.end for n in nodes], dtype=np.int64)
    count = _alive(times, valid, start, end).sum(axis=1) if nodes else np.zeros(0, dtype=np.int64)
    keep = np.flatnonzero(count > 0)
    n = count[keep]
    price = np.array([np.nan if x.hourly_price is None else x.hourly_price for x in nodes], dtype=np.float64)
    cores = np.array([x.cores for x in nodes], dtype=np.float64)
    memory = np.array([x.memory_bytes for x in nodes], dtype=np.int64)
    label = sanitize_label_key(INSTANCE_TYPE_LABEL)
    columns: Columns = {
        "node": _objects([nodes[i].name for i in keep]),
        "provider_id": _objects([nodes[i].provider_id for i in keep]),
        "labels": _objects([{label: nodes[i].instance_type} for i in keep]),
        "running_seconds": (n * r).astype(np.float64),
        "cpu_capacity_core_seconds": cores[keep] * r * n,
        "memory_capacity_byte_seconds": (memory[keep] * n * r).astype(np.float64),
        "hourly_price_seconds": price[keep] * r * n,
    }
    order = ("cluster", "node", "provider_id", "labels", "segment_start", "segment_end", "running_seconds",
             "cpu_capacity_core_seconds", "memory_capacity_byte_seconds", "hourly_price_seconds")
    return _segment(columns, cluster, a, b, order)


def _volumes(cluster: Cluster, a: int, b: int, times: Int64Array, valid: BoolArray) -> Columns:
    r = cluster.spec.scrape_seconds
    pvcs = cluster.pvcs
    start = np.array([p.start for p in pvcs], dtype=np.int64)
    end = np.array([p.end for p in pvcs], dtype=np.int64)
    alive = _alive(times, valid, start, end) if pvcs else np.zeros((0, times.size), dtype=np.bool_)
    keep = np.flatnonzero(alive.sum(axis=1) > 0)
    alive = alive[keep]
    n = alive.sum(axis=1)
    request = np.array([p.request_bytes for p in pvcs], dtype=np.int64)[keep]
    keys = np.array([p.key for p in pvcs], dtype=np.uint64)[keep]
    base = np.array([p.used_base for p in pvcs], dtype=np.int64)[keep]
    span = np.array([p.used_span for p in pvcs], dtype=np.int64)[keep]
    used = base[:, None] + wobble(keys[:, None], times, span[:, None])
    columns: Columns = {
        "namespace": _objects([pvcs[i].namespace for i in keep]),
        "project": _objects([cluster.project_of(pvcs[i].namespace) for i in keep]),
        "pvc": _objects([pvcs[i].name for i in keep]),
        "storage_class": _objects([pvcs[i].storage_class for i in keep]),
        "running_seconds": (n * r).astype(np.float64),
        "request_byte_seconds": (request * n * r).astype(np.float64),
        "used_byte_seconds": ((used * alive).sum(axis=1) * r).astype(np.float64),
        "effective_byte_seconds": ((np.maximum(used, request[:, None]) * alive).sum(axis=1) * r).astype(np.float64),
    }
    order = ("cluster", "namespace", "project", "pvc", "storage_class", "segment_start", "segment_end",
             "running_seconds", "request_byte_seconds", "used_byte_seconds", "effective_byte_seconds")
    return _segment(columns, cluster, a, b, order)


def _quotas(cluster: Cluster, a: int, b: int, times: Int64Array, valid: BoolArray) -> Columns:
    r = cluster.spec.scrape_seconds
    namespaces = list(dict.fromkeys(quota.namespace for quota in cluster.quotas))
    index = {namespace: i for i, namespace in enumerate(namespaces)}
    limits = np.full((len(namespaces), len(QUOTA_RESOURCES), times.size), np.inf)
    for quota in cluster.quotas:
        alive = _alive(times, valid, np.array([quota.start]), np.array([quota.end]))[0]
        hard = dict(quota.hard)
        for j, resource in enumerate(QUOTA_RESOURCES):
            if resource in hard:
                row = limits[index[quota.namespace], j]
                row[alive] = np.minimum(row[alive], hard[resource])
    present = np.isfinite(limits)
    keep = np.flatnonzero(present.any(axis=(1, 2)))
    sums = np.where(present, limits, 0.0)[keep].sum(axis=2) * r
    columns: Columns = {
        "namespace": _objects([namespaces[i] for i in keep]),
        "project": _objects([cluster.project_of(namespaces[i]) for i in keep]),
        "cpu_core_seconds": sums[:, 0],
        "memory_byte_seconds": sums[:, 1],
        "storage_byte_seconds": sums[:, 2],
    }
    order = ("cluster", "namespace", "project", "segment_start", "segment_end", "cpu_core_seconds",
             "memory_byte_seconds", "storage_byte_seconds")
    return _segment(columns, cluster, a, b, order)


def fact_arrays(cluster: Cluster, segment_start: int, segment_end: int | None = None) -> FactArrays:
    """The facts over `[segment_start, segment_end)` (default: one hour) as column arrays."""
    b = segment_start + 3600 if segment_end is None else segment_end
    check_segment(cluster.spec, segment_start, b)
    times = grid(segment_start, b, cluster.spec.scrape_seconds)
    valid = _valid(cluster, times)
    return FactArrays(
        containers=_containers(cluster, segment_start, b),
        nodes=_nodes(cluster, segment_start, b, times, valid),
        volumes=_volumes(cluster, segment_start, b, times, valid),
        quotas=_quotas(cluster, segment_start, b, times, valid),
    )
