"""Write a synthetic cluster's metrics as OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`.

Why: integration tests and benchmarks load these samples into a real Prometheus, so the ingest runs
its real PromQL against data whose exact facts `kubetally.synthetic.expected` knows.

Format: `# TYPE <family> gauge|counter` once per family, then every sample of that family (families
never interleave), one series after the other, each series' samples in time order; lines are
`name{labels} value timestamp_seconds`; the text ends with `# EOF`. Counter families are declared
without `_total` and their samples carry it. Label values are escaped per OpenMetrics (`\\` `\"`
`\n`); label names are sorted. Values are integers (bytes, gauges) or Python's shortest round-trip
float repr, so Prometheus parses back exactly the numbers `kubetally.synthetic.samples` produces.

Sample times are `kubetally.synthetic.samples.sample_times` of the owning object (pod, node, PVC,
quota; namespaces and ReplicaSets over their life), optionally clipped to `[start, end)`. Every
series carries `cluster`, `job` and `instance`. kube-state-metrics series (`kube_*`) come from job
`kube-state-metrics`; with `duplicate_ksm` each is written twice, by a second `instance`, with the
same values. cAdvisor series (job `kubelet`, no `uid` label, an `id` cgroup path that includes the
pod uid) exist only while the pod runs (never for Pending pods) and include a pod-level cgroup
series (`container=""`, the sum of the containers plus the pause container) and a `container="POD"`
series: both must be ignored by the ingest. `kube_resourcequota` also has `type="used"` series (to be
ignored). `node_total_hourly_cost` (job `opencost`) exists only for priced node types.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TextIO

import numpy as np

from kubetally.domain.labels import sanitize_label_key
from kubetally.synthetic.model import INSTANCE_TYPE_LABEL, PROJECT_LABEL, Cluster, Pod
from kubetally.synthetic.samples import (
    FloatArray,
    Int64Array,
    counter_values,
    memory_values,
    sample_times,
    used_values,
)

#: The pause container's CPU rate (cores) and working set (bytes) in the `container="POD"` series.
PAUSE_RATE = 1 / 4096
PAUSE_MEMORY = 409_600
PAUSE_IMAGE = "registry.k8s.io/pause:3.9"
KSM_INSTANCES = ("10.0.0.10:8080", "10.0.0.11:8080")

Value = int | float | Int64Array | FloatArray
Series = tuple[dict[str, str], Int64Array, Value]
_Family = tuple[str, str, bool, Callable[["_Writer"], Iterator[Series]]]


def escape(value: str) -> str:
    """An OpenMetrics label value: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_labels(labels: dict[str, str]) -> str:
    return ",".join(f'{key}="{escape(labels[key])}"' for key in sorted(labels))


class _Writer:
    def __init__(self, cluster: Cluster, out: TextIO, start: int | None, end: int | None) -> None:
        self.cluster, self.spec, self.out = cluster, cluster.spec, out
        self.start, self.end = start, end
        self.samples = 0
        self.instances = KSM_INSTANCES if self.spec.duplicate_ksm else KSM_INSTANCES[:1]

    def times(self, start: int, end: int) -> Int64Array:
        lo = start if self.start is None else max(start, self.start)
        hi = end if self.end is None else min(end, self.end)
        return sample_times(self.spec, lo, hi)

    def write(self, sample: str, labels: dict[str, str], times: Int64Array, value: Value) -> None:
        if times.size == 0:
            return
        head = f"{sample}{{{format_labels(labels)}}} "
        if isinstance(value, np.ndarray):
            lines = [f"{head}{v} {t}\n" for v, t in zip(value.tolist(), times.tolist(), strict=True)]
        else:
            prefix = f"{head}{value} "
            lines = [f"{prefix}{t}\n" for t in times.tolist()]
        self.out.write("".join(lines))
        self.samples += times.size

    def family(self, name: str, kind: str, ksm: bool, series: Iterator[Series]) -> None:
        self.out.write(f"# TYPE {name} {kind}\n")
        sample = f"{name}_total" if kind == "counter" else name
        base = {"cluster": self.spec.name}
        for labels, times, value in series:
            if ksm:
                for instance in self.instances:
                    full = {**base, **labels, "job": "kube-state-metrics", "instance": instance}
                    self.write(sample, full, times, value)
            else:
                self.write(sample, {**base, **labels}, times, value)

    def pod_series(self) -> Iterator[tuple[Pod, Int64Array, dict[str, str]]]:
        for pod in self.cluster.pods:
            times = self.times(pod.start, pod.end)
            if times.size:
                yield pod, times, {"namespace": pod.namespace, "pod": pod.name, "uid": pod.uid}


def _pod_info(w: _Writer) -> Iterator[Series]:
    for pod, times, ids in w.pod_series():
        kind, name = pod.owner_kind or "<none>", pod.owner_name or "<none>"
        yield {**ids, "node": pod.node, "created_by_kind": kind, "created_by_name": name}, times, 1


def _pod_owner(w: _Writer) -> Iterator[Series]:
    for pod, times, ids in w.pod_series():
        controller = "true" if pod.owner_kind else "<none>"
        yield {**ids, "owner_kind": pod.owner_kind or "<none>", "owner_name": pod.owner_name or "<none>",
               "owner_is_controller": controller}, times, 1


def _replicaset_owner(w: _Writer) -> Iterator[Series]:
    for rs in w.cluster.replicasets:
        labels = {"namespace": rs.namespace, "replicaset": rs.name, "owner_kind": "Deployment",
                  "owner_name": rs.deployment, "owner_is_controller": "true"}
        yield labels, w.times(rs.start, rs.end), 1


def _pod_labels(w: _Writer) -> Iterator[Series]:
    for pod, times, ids in w.pod_series():
        yield {**ids, **{f"label_{sanitize_label_key(k)}": v for k, v in pod.labels}}, times, 1


def _running(w: _Writer) -> Iterator[Series]:
    for pod, times, ids in w.pod_series():
        for container in pod.containers:
            yield {**ids, "container": container.name}, times, 0 if pod.pending else 1


def _requests(w: _Writer) -> Iterator[Series]:
    for pod, times, ids in w.pod_series():
        for c in pod.containers:
            labels = {**ids, "container": c.name, "node": pod.node}
            if c.cpu_request is not None:
                yield {**labels, "resource": "cpu", "unit": "core"}, times, c.cpu_request
            if c.memory_request is not None:
                yield {**labels, "resource": "memory", "unit": "byte"}, times, c.memory_request


def _pod_volumes(w: _Writer) -> Iterator[Series]:
    for pod, times, ids in w.pod_series():
        for volume, claim in pod.volumes:
            yield {**ids, "volume": volume, "persistentvolumeclaim": claim}, times, 1


def _namespace_labels(w: _Writer) -> Iterator[Series]:
    times = w.times(w.spec.start, w.spec.end)
    for ns in w.cluster.namespaces:
        labels = {"namespace": ns.name}
        if ns.project is not None:
            labels[f"label_{sanitize_label_key(PROJECT_LABEL)}"] = ns.project
        yield labels, times, 1


def _node_info(w: _Writer) -> Iterator[Series]:
    for node in w.cluster.nodes:
        yield {"node": node.name, "provider_id": node.provider_id}, w.times(node.start, node.end), 1


def _node_labels(w: _Writer) -> Iterator[Series]:
    key = f"label_{sanitize_label_key(INSTANCE_TYPE_LABEL)}"
    for node in w.cluster.nodes:
        yield {"node": node.name, key: node.instance_type}, w.times(node.start, node.end), 1


def _node_resources(allocatable: bool) -> Callable[[_Writer], Iterator[Series]]:
    def series(w: _Writer) -> Iterator[Series]:
        for node in w.cluster.nodes:
            times = w.times(node.start, node.end)
            cores = node.allocatable_cores if allocatable else node.cores
            memory = node.allocatable_memory_bytes if allocatable else node.memory_bytes
            yield {"node": node.name, "resource": "cpu", "unit": "core"}, times, cores
            yield {"node": node.name, "resource": "memory", "unit": "byte"}, times, memory

    return series


def _pvc_info(w: _Writer) -> Iterator[Series]:
    for pvc in w.cluster.pvcs:
        labels = {"namespace": pvc.namespace, "persistentvolumeclaim": pvc.name,
                  "storageclass": pvc.storage_class, "volumename": pvc.volume_name}
        yield labels, w.times(pvc.start, pvc.end), 1


def _pvc_requests(w: _Writer) -> Iterator[Series]:
    for pvc in w.cluster.pvcs:
        labels = {"namespace": pvc.namespace, "persistentvolumeclaim": pvc.name}
        yield labels, w.times(pvc.start, pvc.end), pvc.request_bytes


def _quotas(w: _Writer) -> Iterator[Series]:
    for quota in w.cluster.quotas:
        times = w.times(quota.start, quota.end)
        for resource, hard in quota.hard:
            labels = {"namespace": quota.namespace, "resourcequota": quota.name, "resource": resource}
            yield {**labels, "type": "hard"}, times, hard
            yield {**labels, "type": "used"}, times, hard / 2


def _cadvisor(w: _Writer, memory: bool) -> Iterator[Series]:
    for pod, times, _ in w.pod_series():
        if pod.pending:
            continue
        job = {"job": "kubelet", "metrics_path": "/metrics/cadvisor", "instance": f"{pod.node}:10250"}
        ids = {**job, "namespace": pod.namespace, "pod": pod.name}
        cgroup = f"/kubepods/burstable/pod{pod.uid}"
        memory_total = np.full(times.shape, PAUSE_MEMORY, dtype=np.int64)
        for c in pod.containers:
            value: Value
            if memory:
                value = memory_values(c, times)
                memory_total = memory_total + value
            else:
                value = counter_values(c.cpu_rate, pod.start, times)
            cid = f"{c.key:016x}" * 4
            yield {**ids, "container": c.name, "id": f"{cgroup}/{cid}", "image": c.image}, times, value
        pod_rate = PAUSE_RATE + sum(c.cpu_rate for c in pod.containers)
        total: Value = memory_total if memory else counter_values(pod_rate, pod.start, times)
        yield {**ids, "container": "", "id": cgroup, "image": ""}, times, total
        pause: Value = PAUSE_MEMORY if memory else counter_values(PAUSE_RATE, pod.start, times)
        yield {**ids, "container": "POD", "id": f"{cgroup}/pause", "image": PAUSE_IMAGE}, times, pause


def _volume_stats(w: _Writer) -> Iterator[Series]:
    mounted: dict[tuple[str, str], str] = {}
    for pod in w.cluster.pods:
        for _, claim in pod.volumes:
            mounted.setdefault((pod.namespace, claim), pod.node)
    fallback = w.cluster.nodes[0].name if w.cluster.nodes else "kubelet"
    for pvc in w.cluster.pvcs:
        node = mounted.get((pvc.namespace, pvc.name), fallback)
        labels = {"job": "kubelet", "metrics_path": "/metrics", "instance": f"{node}:10250",
                  "namespace": pvc.namespace, "persistentvolumeclaim": pvc.name}
        times = w.times(pvc.start, pvc.end)
        yield labels, times, used_values(pvc, times)


def _node_cost(w: _Writer) -> Iterator[Series]:
    for node in w.cluster.nodes:
        if node.hourly_price is None:
            continue
        labels = {"job": "opencost", "instance": "opencost.opencost:9003", "node": node.name,
                  "instance_type": node.instance_type, "provider_id": node.provider_id}
        yield labels, w.times(node.start, node.end), node.hourly_price


FAMILIES: tuple[_Family, ...] = (
    ("kube_pod_info", "gauge", True, _pod_info),
    ("kube_pod_owner", "gauge", True, _pod_owner),
    ("kube_replicaset_owner", "gauge", True, _replicaset_owner),
    ("kube_pod_labels", "gauge", True, _pod_labels),
    ("kube_pod_container_status_running", "gauge", True, _running),
    ("kube_pod_container_resource_requests", "gauge", True, _requests),
    ("kube_pod_spec_volumes_persistentvolumeclaims_info", "gauge", True, _pod_volumes),
    ("kube_namespace_labels", "gauge", True, _namespace_labels),
    ("kube_node_info", "gauge", True, _node_info),
    ("kube_node_labels", "gauge", True, _node_labels),
    ("kube_node_status_capacity", "gauge", True, _node_resources(False)),
    ("kube_node_status_allocatable", "gauge", True, _node_resources(True)),
    ("kube_persistentvolumeclaim_info", "gauge", True, _pvc_info),
    ("kube_persistentvolumeclaim_resource_requests_storage_bytes", "gauge", True, _pvc_requests),
    ("kube_resourcequota", "gauge", True, _quotas),
    ("container_cpu_usage_seconds", "counter", False, lambda w: _cadvisor(w, memory=False)),
    ("container_memory_working_set_bytes", "gauge", False, lambda w: _cadvisor(w, memory=True)),
    ("kubelet_volume_stats_used_bytes", "gauge", False, _volume_stats),
    ("node_total_hourly_cost", "gauge", False, _node_cost),
)


def write_openmetrics(cluster: Cluster, out: TextIO, start: int | None = None, end: int | None = None) -> int:
    """Stream every sample of `cluster` (optionally only those in `[start, end)`) to `out`.

    Returns the number of samples written. Memory stays bounded by one series at a time.
    """
    writer = _Writer(cluster, out, start, end)
    for name, kind, ksm, series in FAMILIES:
        writer.family(name, kind, ksm, series(writer))
    out.write("# EOF\n")
    return writer.samples
