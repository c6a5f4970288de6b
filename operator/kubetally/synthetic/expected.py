"""The exact facts the ingest must derive from the synthetic metrics, for one segment `[a, b)`.

Why: the ingest (PromQL → facts) is tested against numbers computed here, from the generator's
objects and the shared sample functions, never from the ingest's own queries. This is the plain
reference: one entity at a time, numpy over that entity's samples. `kubetally.synthetic.arrays`
computes the same numbers vectorised over all entities (for scale L) and is tested against this.

The ingest evaluates its queries at every `t = a, a + r, …, b − r` (a and b are multiples of r) and
treats each evaluated sample as covering `[t, t + r)`. Rules, per container of a pod:

* The container *counts* at `t` iff its `kube_pod_container_status_running` has a sample equal to
  1 exactly at `t` (a query such as `max_over_time(x[r])` with a left-open range `(t − r, t]` sees
  that sample and nothing older). Pending pods (gauge 0) never count, so they have no facts.
  Everything below sums over counted `t` only; a container with no counted `t` has no fact.
* `running_seconds = r·#counted`; `active_start` = first counted t; `active_end` = last counted t + r.
* `cpu_request_core_seconds = Σ request·r` (0 without a request); memory likewise in bytes.
* CPU usage at t = the container's constant rate iff its counter has ≥ 2 samples in `(t − w, t]`
  (`w = samples.rate_window`, counted over all samples, also those before `a`), else 0 — so the
  first sample of a life and the first after a gap longer than `w − r` have usage 0.
  `cpu_usage_core_seconds = Σ usage·r`. Memory usage at t = the working-set sample at t.
* `*_effective_* = Σ max(request, usage)·r`, per sample.
* Identity: node from `kube_pod_info`; project from the namespace label (None when unlabelled);
  controller per `Cluster.controller_of`; labels keyed by sanitized keys (no `label_` prefix).

Nodes: `running_seconds = r·#t` with a `kube_node_info` sample; capacities × r per sample;
`hourly_price_seconds = Σ price·r`, or None for a node without `node_total_hourly_cost`.
Volumes, one fact per PVC: `running_seconds = r·#t` with a request sample; request, used and
effective (= max of the two per sample) byte-seconds. Quotas, one fact per namespace with a
ResourceQuota sample in the segment: `Σ hard·r` of `requests.cpu`, `requests.memory`,
`requests.storage`, where `hard` at t is the minimum over the namespace's quotas that set the
resource (Kubernetes enforces each; `min by (namespace, resource)`), and a resource no quota sets
contributes 0. The generator makes at most one quota per namespace.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kubetally.domain.labels import sanitize_label_key
from kubetally.synthetic.model import INSTANCE_TYPE_LABEL, Cluster, ClusterSpec, Pod
from kubetally.synthetic.samples import (
    FloatArray,
    Int64Array,
    clip,
    data_times,
    grid,
    memory_values,
    rate_window,
    sample_times,
    samples_in_window,
    used_values,
)

Record = dict[str, object]
#: The ResourceQuota resources that become quota facts, in column order.
QUOTA_RESOURCES = ("requests.cpu", "requests.memory", "requests.storage")


@dataclass(frozen=True, slots=True)
class ExpectedFacts:
    """Fact records keyed exactly by the columns of `kubetally.facts.schema`."""

    containers: list[Record]
    nodes: list[Record]
    volumes: list[Record]
    quotas: list[Record]


def check_segment(spec: ClusterSpec, a: int, b: int) -> None:
    """Segments are non-empty and aligned to the scrape grid."""
    r = spec.scrape_seconds
    if a >= b or a % r or b % r:
        raise ValueError(f"segment [{a}, {b}) must be non-empty and aligned to r={r}")


def pod_labels(pod: Pod) -> dict[str, str]:
    return {sanitize_label_key(key): value for key, value in pod.labels}


def expected_coverage(cluster: Cluster, a: int, b: int) -> float:
    """The fraction of `t` in `[a, b)` (step r) at which the store holds samples: inside the data
    span `[spec.start, spec.end)` and outside every gap."""
    spec = cluster.spec
    check_segment(spec, a, b)
    return data_times(spec, a, b).size / grid(a, b, spec.scrape_seconds).size


def _container_facts(cluster: Cluster, a: int, b: int) -> list[Record]:
    spec = cluster.spec
    r, w = spec.scrape_seconds, rate_window(spec)
    records: list[Record] = []
    for pod in cluster.pods:
        if pod.pending or pod.end <= a or pod.start >= b:
            continue
        times = sample_times(spec, pod.start, pod.end)
        counted = clip(times, a, b)
        if counted.size == 0:
            continue
        rated = samples_in_window(times, counted, w) >= 2
        kind, controller = cluster.controller_of(pod)
        for container in pod.containers:
            cpu_request = container.cpu_request or 0.0
            memory_request = container.memory_request or 0
            usage = np.where(rated, container.cpu_rate, 0.0)
            memory = memory_values(container, counted)
            records.append({
                "cluster": spec.name,
                "node": pod.node,
                "namespace": pod.namespace,
                "project": cluster.project_of(pod.namespace),
                "pod": pod.name,
                "pod_uid": pod.uid,
                "container": container.name,
                "controller_kind": kind,
                "controller": controller,
                "labels": pod_labels(pod),
                "segment_start": a,
                "segment_end": b,
                "active_start": float(counted[0]),
                "active_end": float(min(int(counted[-1]) + r, b)),
                "running_seconds": float(counted.size * r),
                "cpu_request_core_seconds": float(np.sum(np.full(counted.size, cpu_request) * r)),
                "cpu_usage_core_seconds": float(np.sum(usage * r)),
                "cpu_effective_core_seconds": float(np.sum(np.maximum(cpu_request, usage) * r)),
                "memory_request_byte_seconds": float(memory_request * counted.size * r),
                "memory_usage_byte_seconds": float(int(memory.sum()) * r),
                "memory_effective_byte_seconds": float(int(np.maximum(memory, memory_request).sum()) * r),
            })
    return records


def _node_facts(cluster: Cluster, a: int, b: int) -> list[Record]:
    spec = cluster.spec
    r = spec.scrape_seconds
    records: list[Record] = []
    for node in cluster.nodes:
        n = clip(sample_times(spec, node.start, node.end), a, b).size
        if n == 0:
            continue
        price = None if node.hourly_price is None else float(np.sum(np.full(n, node.hourly_price) * r))
        records.append({
            "cluster": spec.name,
            "node": node.name,
            "provider_id": node.provider_id,
            "labels": {sanitize_label_key(INSTANCE_TYPE_LABEL): node.instance_type},
            "segment_start": a,
            "segment_end": b,
            "running_seconds": float(n * r),
            "cpu_capacity_core_seconds": float(np.sum(np.full(n, node.cores) * r)),
            "memory_capacity_byte_seconds": float(node.memory_bytes * n * r),
            "hourly_price_seconds": price,
        })
    return records


def _volume_facts(cluster: Cluster, a: int, b: int) -> list[Record]:
    spec = cluster.spec
    r = spec.scrape_seconds
    records: list[Record] = []
    for pvc in cluster.pvcs:
        times: Int64Array = clip(sample_times(spec, pvc.start, pvc.end), a, b)
        if times.size == 0:
            continue
        used = used_values(pvc, times)
        records.append({
            "cluster": spec.name,
            "namespace": pvc.namespace,
            "project": cluster.project_of(pvc.namespace),
            "pvc": pvc.name,
            "storage_class": pvc.storage_class,
            "segment_start": a,
            "segment_end": b,
            "running_seconds": float(times.size * r),
            "request_byte_seconds": float(pvc.request_bytes * times.size * r),
            "used_byte_seconds": float(int(used.sum()) * r),
            "effective_byte_seconds": float(int(np.maximum(used, pvc.request_bytes).sum()) * r),
        })
    return records


def quota_limits(cluster: Cluster, namespace: str, times: Int64Array) -> dict[str, FloatArray]:
    """Per resource, the namespace's effective hard limit at each of `times`: the minimum over its
    quotas that have a sample there and set the resource (Kubernetes enforces every quota), NaN where
    none does."""
    spec = cluster.spec
    limits = {resource: np.full(times.shape, np.inf) for resource in QUOTA_RESOURCES}
    for quota in cluster.quotas:
        if quota.namespace != namespace:
            continue
        alive = np.isin(times, sample_times(spec, quota.start, quota.end))
        for resource, hard in quota.hard:
            if resource in limits:
                limits[resource] = np.where(alive, np.minimum(limits[resource], hard), limits[resource])
    return {resource: np.where(np.isinf(v), np.nan, v) for resource, v in limits.items()}


def _quota_facts(cluster: Cluster, a: int, b: int) -> list[Record]:
    spec = cluster.spec
    r = spec.scrape_seconds
    times = grid(a, b, r)
    records: list[Record] = []
    for namespace in dict.fromkeys(quota.namespace for quota in cluster.quotas):
        limits = quota_limits(cluster, namespace, times)
        if all(np.isnan(v).all() for v in limits.values()):
            continue
        sums = {resource: float(np.nansum(v * r)) for resource, v in limits.items()}
        records.append({
            "cluster": spec.name,
            "namespace": namespace,
            "project": cluster.project_of(namespace),
            "segment_start": a,
            "segment_end": b,
            "cpu_core_seconds": sums["requests.cpu"],
            "memory_byte_seconds": sums["requests.memory"],
            "storage_byte_seconds": sums["requests.storage"],
        })
    return records


def expected_facts(cluster: Cluster, segment_start: int, segment_end: int) -> ExpectedFacts:
    """The facts of every container, node, PVC and namespace quota over `[segment_start, segment_end)`."""
    check_segment(cluster.spec, segment_start, segment_end)
    return ExpectedFacts(
        containers=_container_facts(cluster, segment_start, segment_end),
        nodes=_node_facts(cluster, segment_start, segment_end),
        volumes=_volume_facts(cluster, segment_start, segment_end),
        quotas=_quota_facts(cluster, segment_start, segment_end),
    )
