"""Facts for one segment [a, b) from a Prometheus-compatible store: query, align, integrate.

Each query of `catalogue` is evaluated at the n = (b − a)/r times t_k = a + k·r. Results are
scattered into (entities × n) matrices, NaN where a series had no point, and integrated with
numpy in one pass per quantity (never per sample in Python):

    running_k    = running gauge == 1 at t_k        (everything else counts only where running)
    request      = Σ_k request_k · r · running_k                          [core·s], [byte·s]
    usage        = Σ_k usage_k · r · running_k
    effective    = Σ_k max(request_k, usage_k) · r · running_k            (per sample, DESIGN.md §4)
    running_seconds = r · Σ_k running_k; active_start / active_end = first t_k / last t_k + r

Nodes run where `kube_node_info` has a point; volumes where their request has one; quotas are
Σ hard · r. Coverage is the fraction of t_k at which any node reported: a gap in the store shows as
coverage < 1, never as a silent zero. A short-lived container is seen at the evaluation times it
spans: the error is at most one resolution step per container lifetime.

The per-step container queries (`catalogue.PER_SERIES_ROLES`) come back one series per exporter
series; each answer is reduced to identity keys as it arrives (`grid.Keyed`: (namespace, pod, uid,
container), cAdvisor (namespace, pod, container, cgroup id)) and duplicates meet on one matrix row,
where the max is kept: what `max by (<identity>)` would give, without Prometheus grouping ~12k
series at each of 60 steps.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, fields
from typing import Protocol

import numpy as np
import numpy.typing as npt

from kubetally.facts.batch import FactBatch, encode_labels
from kubetally.sources.catalogue import ATTRIBUTE_ROLES, PER_SERIES_ROLES, Catalogue, SourceConfig, catalogue
from kubetally.sources.grid import Grid, Key, Keyed, Matrix
from kubetally.sources.prometheus import RangeSeries, chunk_range

Series = dict[str, list[RangeSeries]]
#: The identity labels of each per-step container role (cAdvisor has no uid: its cgroup id holds it).
_CONTAINER = ("namespace", "pod", "uid", "container")
_CADVISOR = ("namespace", "pod", "container", "id")
_UID_IN_CGROUP = re.compile(
    r"pod([0-9a-fA-F]{8}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{12})"
)


class RangeSource(Protocol):
    """What the collector needs of a Prometheus client."""

    async def query_range(self, query: str, start: int, end: int, step: int) -> list[RangeSeries]: ...


@dataclass(frozen=True, slots=True)
class Segment:
    """Facts of one segment, and the fraction of its evaluation times with data."""

    batch: FactBatch
    coverage: float


def _labels_of(labels: dict[str, str]) -> dict[str, str]:
    return {key.removeprefix("label_"): value for key, value in labels.items() if key.startswith("label_")}


async def collect_segment(source: RangeSource, config: SourceConfig, start: int, end: int) -> Segment:
    """Query and integrate the facts of [start, end) (both multiples of the resolution r)."""
    r = config.resolution_seconds
    if start % r or end % r or end <= start:
        raise ValueError(f"segment [{start}, {end}) must be non-empty and aligned to the resolution {r}s")
    queries = catalogue(config)
    names = [item.name for item in fields(Catalogue)]
    keyed_names = [n for n in names if n in PER_SERIES_ROLES]
    other_names = [n for n in names if n not in PER_SERIES_ROLES]

    def points(role: str) -> int:
        return config.points_per_query(config.usage_window_seconds if role == "cpu_usage" else r)

    keyed_answers, other_answers = await asyncio.gather(
        asyncio.gather(*(
            _query_keyed(source, getattr(queries, n), start, end - r, r, points(n),
                         _CADVISOR if n in ("cpu_usage", "memory_usage") else _CONTAINER)
            for n in keyed_names
        )),
        asyncio.gather(*(
            _query_chunked(source, getattr(queries, n), end - r, end - r, r, 1) if n in ATTRIBUTE_ROLES else
            _query_chunked(source, getattr(queries, n), start, end - r, r, points(n))
            for n in other_names
        )),
    )
    keyed = dict(zip(keyed_names, keyed_answers, strict=True))
    results = dict(zip(other_names, other_answers, strict=True))
    n = (end - start) // r
    batch = FactBatch()
    projects = _projects(results["namespace_labels"], config.project_label_key)
    batch.tables["container_facts"] = _containers(keyed, results, config, start, end, n, projects)
    nodes, coverage = _nodes(results, config, start, end, n)
    batch.tables["node_facts"] = nodes
    batch.tables["volume_facts"] = _volumes(results, config, start, end, n, projects)
    batch.tables["quota_facts"] = _quotas(results, config, start, end, n, projects)
    return Segment(batch=batch, coverage=coverage)


async def _query_chunked(
    source: RangeSource, query: str, first: int, last: int, step: int, points: int
) -> list[RangeSeries]:
    """query_range over evaluation times first..last in chunks of at most `points` points, with
    each series' pieces joined back in time order."""
    chunks = chunk_range(first, last, step, max_points=points)
    if len(chunks) == 1:
        return await source.query_range(query, first, last, step)
    pieces: dict[frozenset[tuple[str, str]], list[RangeSeries]] = {}
    for chunk_start, chunk_end in chunks:
        for series in await source.query_range(query, chunk_start, chunk_end, step):
            pieces.setdefault(frozenset(series.labels.items()), []).append(series)
    return [
        parts[0] if len(parts) == 1 else RangeSeries(
            labels=parts[0].labels,
            timestamps=np.concatenate([part.timestamps for part in parts]),
            values=np.concatenate([part.values for part in parts]),
        )
        for parts in pieces.values()
    ]


async def _query_keyed(
    source: RangeSource, query: str, first: int, last: int, step: int, points: int, names: tuple[str, ...]
) -> Keyed:
    """query_range over evaluation times first..last in chunks of at most `points` points, each
    chunk's answer keyed by the labels `names` as soon as it arrives (a series' chunks share a key)."""
    return Keyed.joined([
        Keyed.of(await source.query_range(query, chunk_start, chunk_end, step), names)
        for chunk_start, chunk_end in chunk_range(first, last, step, max_points=points)
    ])


def _projects(results: list[RangeSeries], key: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for series in results:
        project = series.labels.get(f"label_{key}")
        if project:
            out[series.labels.get("namespace", "")] = project
    return out


def _integrals(values: Matrix, running: npt.NDArray[np.bool_], r: int) -> npt.NDArray[np.float64]:
    return np.asarray(np.where(running, np.nan_to_num(values), 0.0).sum(axis=1) * r, dtype=np.float64)


def _containers(
    keyed: dict[str, Keyed], results: Series, config: SourceConfig, start: int, end: int, n: int,
    projects: dict[str, str],
) -> dict[str, npt.NDArray[np.generic]]:
    r = config.resolution_seconds
    answer = keyed["running"]
    keys = sorted(answer.seen(answer.points.values == 1))
    grid = Grid(start, r, n, keys)
    by_name: dict[tuple[str, str, str], list[Key]] = {}
    for key in keys:
        by_name.setdefault((key[0], key[1], key[3]), []).append(key)

    def containers_of(cadvisor: Key) -> list[Key]:
        """The container a cAdvisor series is of: the pod UID from its cgroup path, else every
        container of that namespace, pod and name."""
        namespace, pod, name, cgroup = cadvisor
        found = _UID_IN_CGROUP.search(cgroup)
        if found:
            return [(namespace, pod, found.group(1).replace("_", "-"), name)]
        return by_name.get((namespace, pod, name), [])

    def usage(role: str) -> Matrix:
        return np.nan_to_num(grid.matrix(keyed[role], {key: containers_of(key) for key in set(keyed[role].keys)}))

    running = grid.matrix(answer) == 1
    cpu_req = np.nan_to_num(grid.matrix(keyed["cpu_request"]))
    mem_req = np.nan_to_num(grid.matrix(keyed["memory_request"]))
    cpu_use, mem_use = usage("cpu_usage"), usage("memory_usage")
    pods = _pod_attributes(results)
    count = running.sum(axis=1)
    first = np.argmax(running, axis=1)
    last = n - 1 - np.argmax(running[:, ::-1], axis=1)
    attributes = [pods.get((k[0], k[1], k[2]), {}) for k in keys]
    return {
        "cluster": np.full(len(keys), config.cluster, dtype=np.object_),
        "node": np.array([a.get("node") for a in attributes], dtype=np.object_),
        "namespace": np.array([k[0] for k in keys], dtype=np.object_),
        "project": np.array([projects.get(k[0]) for k in keys], dtype=np.object_),
        "pod": np.array([k[1] for k in keys], dtype=np.object_),
        "pod_uid": np.array([k[2] for k in keys], dtype=np.object_),
        "container": np.array([k[3] for k in keys], dtype=np.object_),
        "controller_kind": np.array([a.get("controller_kind") for a in attributes], dtype=np.object_),
        "controller": np.array([a.get("controller") for a in attributes], dtype=np.object_),
        "labels": np.array([a.get("labels", "{}") for a in attributes], dtype=np.object_),
        "segment_start": np.full(len(keys), start, dtype=np.int64),
        "segment_end": np.full(len(keys), end, dtype=np.int64),
        "active_start": (start + first * r).astype(np.float64),
        "active_end": np.minimum(start + (last + 1) * r, end).astype(np.float64),
        "running_seconds": (count * r).astype(np.float64),
        "cpu_request_core_seconds": _integrals(cpu_req, running, r),
        "cpu_usage_core_seconds": _integrals(cpu_use, running, r),
        "cpu_effective_core_seconds": _integrals(np.fmax(cpu_req, cpu_use), running, r),
        "memory_request_byte_seconds": _integrals(mem_req, running, r),
        "memory_usage_byte_seconds": _integrals(mem_use, running, r),
        "memory_effective_byte_seconds": _integrals(np.fmax(mem_req, mem_use), running, r),
    }


def _pod_attributes(results: Series) -> dict[tuple[str, str, str], dict[str, str]]:
    """(namespace, pod, uid) → node, controller kind/name (a Deployment's ReplicaSet is reported as
    the Deployment) and labels as JSON text."""
    deployments = {
        (s.labels.get("namespace", ""), s.labels.get("replicaset", "")): s.labels.get("owner_name", "")
        for s in results["replicaset_owner"]
        if s.labels.get("owner_kind") == "Deployment"
    }
    out: dict[tuple[str, str, str], dict[str, str]] = {}

    def entry(labels: dict[str, str]) -> dict[str, str]:
        return out.setdefault((labels.get("namespace", ""), labels.get("pod", ""), labels.get("uid", "")), {})

    for series in results["pod_info"]:
        item = entry(series.labels)
        item.setdefault("node", series.labels.get("node", ""))
        kind, name = series.labels.get("created_by_kind", ""), series.labels.get("created_by_name", "")
        if kind and kind != "<none>":
            item.setdefault("controller_kind", kind)
            item.setdefault("controller", name)
    for series in results["pod_owner"]:
        kind, name = series.labels.get("owner_kind", ""), series.labels.get("owner_name", "")
        if kind and kind != "<none>":
            item = entry(series.labels)
            item["controller_kind"], item["controller"] = kind, name
    for item_key, item in out.items():
        if item.get("controller_kind") == "ReplicaSet":
            deployment = deployments.get((item_key[0], item.get("controller", "")))
            if deployment:
                item["controller_kind"], item["controller"] = "Deployment", deployment
    for series in results["pod_labels"]:
        entry(series.labels)["labels"] = encode_labels(_labels_of(series.labels))
    return out


def _single_keys(answer: Keyed) -> list[Key]:
    """The keys of the series with at least one number (not NaN), sorted."""
    return sorted(answer.seen(~np.isnan(answer.points.values)))


def _nodes(
    results: Series, config: SourceConfig, start: int, end: int, n: int
) -> tuple[dict[str, npt.NDArray[np.generic]], float]:
    r = config.resolution_seconds
    info = Keyed.of(results["node_info"], ("node",))
    keys = _single_keys(info)
    grid = Grid(start, r, n, keys)
    running = ~np.isnan(grid.matrix(info))
    cpu = np.nan_to_num(grid.matrix(Keyed.of(results["node_cpu_capacity"], ("node",))))
    memory = np.nan_to_num(grid.matrix(Keyed.of(results["node_memory_capacity"], ("node",))))
    price = grid.matrix(Keyed.of(results["node_price"], ("node",)))
    seen = running & ~np.isnan(price)
    count = running.sum(axis=1)
    # The mean of the prices seen while running, over all running time; None where never seen.
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_price = np.where(seen, price, 0.0).sum(axis=1) / seen.sum(axis=1)
    ever_seen: list[bool] = np.asarray(seen.any(axis=1), dtype=np.bool_).tolist()
    hourly = [float(p * c * r) if s else None for p, c, s in zip(mean_price, count, ever_seen, strict=True)]
    providers = {s.labels.get("node", ""): s.labels.get("provider_id", "") for s in results["node_info"]}
    labels = {
        s.labels.get("node", ""): encode_labels(_labels_of(s.labels)) for s in results["node_labels"]
    }
    names = [k[0] for k in keys]
    covered = np.zeros(n, dtype=bool)
    reported = info.points
    covered[(reported.timestamps[~np.isnan(reported.values)] - start) // r] = True
    table: dict[str, npt.NDArray[np.generic]] = {
        "cluster": np.full(len(keys), config.cluster, dtype=np.object_),
        "node": np.array(names, dtype=np.object_),
        "provider_id": np.array([providers.get(name) or None for name in names], dtype=np.object_),
        "labels": np.array([labels.get(name, "{}") for name in names], dtype=np.object_),
        "segment_start": np.full(len(keys), start, dtype=np.int64),
        "segment_end": np.full(len(keys), end, dtype=np.int64),
        "running_seconds": (count * r).astype(np.float64),
        "cpu_capacity_core_seconds": _integrals(cpu, running, r),
        "memory_capacity_byte_seconds": _integrals(memory, running, r),
        "hourly_price_seconds": np.array(hourly, dtype=np.object_),
    }
    return table, float(covered.mean()) if n else 0.0


def _volumes(
    results: Series, config: SourceConfig, start: int, end: int, n: int, projects: dict[str, str]
) -> dict[str, npt.NDArray[np.generic]]:
    r = config.resolution_seconds
    claim = ("namespace", "persistentvolumeclaim")
    request = Keyed.of(results["pvc_request"], claim)
    keys = _single_keys(request)
    grid = Grid(start, r, n, keys)
    requested = grid.matrix(request)
    bound = ~np.isnan(requested)
    used = np.nan_to_num(grid.matrix(Keyed.of(results["pvc_used"], claim)))
    requested = np.nan_to_num(requested)
    classes = {
        (s.labels.get("namespace", ""), s.labels.get("persistentvolumeclaim", "")): s.labels.get("storageclass")
        for s in results["pvc_info"]
    }
    return {
        "cluster": np.full(len(keys), config.cluster, dtype=np.object_),
        "namespace": np.array([k[0] for k in keys], dtype=np.object_),
        "project": np.array([projects.get(k[0]) for k in keys], dtype=np.object_),
        "pvc": np.array([k[1] for k in keys], dtype=np.object_),
        "storage_class": np.array([classes.get((k[0], k[1])) or None for k in keys], dtype=np.object_),
        "segment_start": np.full(len(keys), start, dtype=np.int64),
        "segment_end": np.full(len(keys), end, dtype=np.int64),
        "running_seconds": (bound.sum(axis=1) * r).astype(np.float64),
        "request_byte_seconds": _integrals(requested, bound, r),
        "used_byte_seconds": _integrals(used, bound, r),
        "effective_byte_seconds": _integrals(np.fmax(requested, used), bound, r),
    }


_QUOTA_RESOURCES = {
    "requests.cpu": "cpu_core_seconds",
    "requests.memory": "memory_byte_seconds",
    "requests.storage": "storage_byte_seconds",
}


def _quotas(
    results: Series, config: SourceConfig, start: int, end: int, n: int, projects: dict[str, str]
) -> dict[str, npt.NDArray[np.generic]]:
    r = config.resolution_seconds
    keys = _single_keys(Keyed.of(results["quota"], ("namespace",)))
    grid = Grid(start, r, n, keys)
    table: dict[str, npt.NDArray[np.generic]] = {
        "cluster": np.full(len(keys), config.cluster, dtype=np.object_),
        "namespace": np.array([k[0] for k in keys], dtype=np.object_),
        "project": np.array([projects.get(k[0]) for k in keys], dtype=np.object_),
        "segment_start": np.full(len(keys), start, dtype=np.int64),
        "segment_end": np.full(len(keys), end, dtype=np.int64),
    }
    everywhere = np.ones((len(keys), n), dtype=bool)
    for resource, column in _QUOTA_RESOURCES.items():
        chosen = [s for s in results["quota"] if s.labels.get("resource") == resource]
        table[column] = _integrals(grid.matrix(Keyed.of(chosen, ("namespace",))), everywhere, r)
    return table
