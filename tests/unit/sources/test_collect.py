"""The collector's arithmetic on hand-made query results (a fake source answers each catalogue query).

Segment [T, T+300) at r = 60 s: evaluation times t0..t4 = T, T+60, ..., T+240.
Container shop/web-1/main (uid 1f0c5a2e-0000-4000-8000-000000000001), on n1:
    t            t0    t1    t2    t3    t4
    running      1     1     1     1     0      → 4 samples: running_seconds 240, active [T, T+240)
    cpu request  0.5   0.5   0.5   0.5   0.5
    cpu usage    –     1.0   0.2   0.2   0.2    (no rate at the first sample)
    max          0.5   1.0   0.5   0.5          → effective (0.5+1+0.5+0.5)·60 = 150 core·s
    request 0.5·4·60 = 120; usage (1+0.2+0.2)·60 = 84
    mem request  1     1     1     1     1     GiB
    mem usage    0.5   2     2     0.5   –     GiB (series without a cgroup id: joined by name)
    → request 240 GiB·s, usage 300 GiB·s, effective (1+2+2+1)·60 = 360 GiB·s
A pause container ("POD") is excluded by the query itself; a second, stopped container never ran.
The per-step container queries are answered per exporter series: with a second exporter (another
`job`) whose copies are lower or missing (0 / NaN where the first has numbers), the max per
identity and step is the first's, so the facts are the same ("doubled").
Node n1: kube_node_info at t0, t1, t3, t4 (a gap at t2) → running 240 s, coverage 4/5; 4 cores,
16 GiB, price 0.8/h → cpu 960 core·s, price·s 192. PVC shop/data: request 10 GiB at all five,
used 5 GiB except t2 → effective 10 GiB·300 s. Quota shop requests.cpu 2 → 600 core·s.
"""

from __future__ import annotations

import json
from dataclasses import fields

import numpy as np
import pytest

from kubetally.sources.catalogue import PER_SERIES_ROLES, Catalogue, SourceConfig, catalogue
from kubetally.sources.collect import collect_segment
from kubetally.sources.prometheus import RangeSeries

T = 1748736000
GIB = 1024**3
UID = "1f0c5a2e-0000-4000-8000-000000000001"
NAN = float("nan")


def series(labels: dict[str, str], values: list[float]) -> RangeSeries:
    present = [i for i, v in enumerate(values) if not np.isnan(v)]
    return RangeSeries(labels=labels, timestamps=np.array([T + 60 * i for i in present], dtype=np.int64),
                       values=np.array([values[i] for i in present], dtype=np.float64))


WEB = {"namespace": "shop", "pod": "web-1", "uid": UID, "container": "main"}
ANSWERS: dict[str, list[RangeSeries]] = {
    "running": [series(WEB, [1, 1, 1, 1, 0]),
                series({**WEB, "container": "sidecar"}, [0, 0, 0, 0, 0])],
    "cpu_request": [series(WEB, [0.5] * 5)],
    "memory_request": [series(WEB, [GIB] * 5)],
    "cpu_usage": [series({"namespace": "shop", "pod": "web-1", "container": "main",
                          "id": f"/kubepods/burstable/pod{UID.replace('-', '_')}/abc"}, [NAN, 1.0, 0.2, 0.2, 0.2])],
    "memory_usage": [series({"namespace": "shop", "pod": "web-1", "container": "main"},
                            [0.5 * GIB, 2 * GIB, 2 * GIB, 0.5 * GIB, NAN])],
    "pod_info": [series({"namespace": "shop", "pod": "web-1", "uid": UID, "node": "n1",
                         "created_by_kind": "ReplicaSet", "created_by_name": "web-7d9f"}, [1] * 5)],
    "pod_owner": [series({"namespace": "shop", "pod": "web-1", "uid": UID, "owner_kind": "ReplicaSet",
                          "owner_name": "web-7d9f"}, [1] * 5)],
    "replicaset_owner": [series({"namespace": "shop", "replicaset": "web-7d9f", "owner_kind": "Deployment",
                                 "owner_name": "web"}, [1] * 5)],
    "pod_labels": [series({"namespace": "shop", "pod": "web-1", "uid": UID, "label_app": "web",
                           "label_app_kubernetes_io_name": "shop-web"}, [1] * 5)],
    "namespace_labels": [series({"namespace": "shop", "label_kubetally_io_project": "alpha"}, [1] * 5)],
    "node_info": [series({"node": "n1", "provider_id": "ecs://n1"}, [1, 1, NAN, 1, 1])],
    "node_cpu_capacity": [series({"node": "n1"}, [4] * 5)],
    "node_memory_capacity": [series({"node": "n1"}, [16 * GIB] * 5)],
    "node_labels": [series({"node": "n1", "label_node_kubernetes_io_instance_type": "big"}, [1] * 5)],
    "node_price": [series({"node": "n1"}, [0.8] * 5)],
    "pvc_request": [series({"namespace": "shop", "persistentvolumeclaim": "data"}, [10 * GIB] * 5)],
    "pvc_used": [series({"namespace": "shop", "persistentvolumeclaim": "data"}, [5 * GIB, 5 * GIB, NAN, 5 * GIB, 5 * GIB])],
    "pvc_info": [series({"namespace": "shop", "persistentvolumeclaim": "data", "storageclass": "ssd"}, [1] * 5)],
    "quota": [series({"namespace": "shop", "resource": "requests.cpu"}, [2] * 5)],
}


def doubled(answers: dict[str, list[RangeSeries]]) -> dict[str, list[RangeSeries]]:
    """Each per-step container series twice: the copy (job "ksm-2") lower or NaN at every step."""
    out = dict(answers)
    for role in PER_SERIES_ROLES:
        copies = [RangeSeries(labels={**s.labels, "job": "ksm-2"}, timestamps=s.timestamps,
                              values=np.where(np.arange(len(s.values)) % 2 == 0, np.nan, s.values * 0.5))
                  for s in answers[role]]
        out[role] = [item for pair in zip(copies, answers[role], strict=True) for item in pair]
    return out


class FakeSource:
    def __init__(self, config: SourceConfig, answers: dict[str, list[RangeSeries]] = ANSWERS) -> None:
        queries = catalogue(config)
        self.by_query = {getattr(queries, f.name): answers.get(f.name, []) for f in fields(Catalogue)}
        self.calls: list[tuple[int, int, int]] = []

    async def query_range(self, query: str, start: int, end: int, step: int) -> list[RangeSeries]:
        self.calls.append((start, end, step))
        out = []
        for item in self.by_query[query]:
            keep = (item.timestamps >= start) & (item.timestamps <= end)
            if keep.any():
                out.append(RangeSeries(labels=item.labels, timestamps=item.timestamps[keep], values=item.values[keep]))
        return out


def row(table: dict[str, np.ndarray], index: int = 0) -> dict[str, object]:
    return {name: column[index] for name, column in table.items()}


@pytest.mark.parametrize("series_hint", [20_000, 625_000])
@pytest.mark.parametrize("answers", [ANSWERS, doubled(ANSWERS)], ids=["single", "doubled"])
async def test_integrals_of_one_segment(series_hint: int, answers: dict[str, list[RangeSeries]]) -> None:
    """Samples per point are budgeted as 2 × (lookback / r + 1): 4 for gauges, 12 for usage (300 s).
    With a hint of 625k series a gauge query may hold 5M / (625k · 4) = 2 points and the usage query
    5M / (625k · 12) < 1, so 1 point: queries are chunked, and the facts are the same. Attribute
    queries (owners, labels, storage classes) are evaluated once, at the last step T + 240."""
    config = SourceConfig(cluster="c1", series_hint=series_hint)
    source = FakeSource(config, answers)
    segment = await collect_segment(source, config, T, T + 300)
    if series_hint < 625_000:
        assert set(source.calls) == {(T, T + 240, 60), (T + 240, T + 240, 60)}
    else:
        assert {(a - T, b - T) for a, b, _ in source.calls} == {(0, 60), (120, 180), (240, 240), (0, 0), (60, 60),
                                                               (120, 120), (180, 180)}
    containers = segment.batch.tables["container_facts"]
    assert len(containers["pod"]) == 1  # the sidecar never ran
    web = row(containers)
    assert {k: web[k] for k in ("cluster", "node", "namespace", "project", "pod", "pod_uid", "container",
                                "controller_kind", "controller")} == {
        "cluster": "c1", "node": "n1", "namespace": "shop", "project": "alpha", "pod": "web-1", "pod_uid": UID,
        "container": "main", "controller_kind": "Deployment", "controller": "web"}
    assert json.loads(str(web["labels"])) == {"app": "web", "app_kubernetes_io_name": "shop-web"}
    assert (web["active_start"], web["active_end"], web["running_seconds"]) == (T, T + 240, 240)
    assert [web[k] for k in ("cpu_request_core_seconds", "cpu_usage_core_seconds", "cpu_effective_core_seconds")] == \
        pytest.approx([120, 84, 150])
    assert [web[k] / GIB for k in ("memory_request_byte_seconds", "memory_usage_byte_seconds",
                                    "memory_effective_byte_seconds")] == pytest.approx([240, 300, 360])
    node = row(segment.batch.tables["node_facts"])
    assert (node["node"], node["provider_id"], node["running_seconds"]) == ("n1", "ecs://n1", 240)
    assert json.loads(str(node["labels"])) == {"node_kubernetes_io_instance_type": "big"}
    assert (node["cpu_capacity_core_seconds"], node["memory_capacity_byte_seconds"] / GIB) == (960, 16 * 240)
    assert node["hourly_price_seconds"] == pytest.approx(0.8 * 240)
    assert segment.coverage == pytest.approx(0.8)
    volume = row(segment.batch.tables["volume_facts"])
    assert (volume["pvc"], volume["storage_class"], volume["project"], volume["running_seconds"]) == \
        ("data", "ssd", "alpha", 300)
    assert [volume[k] / GIB for k in ("request_byte_seconds", "used_byte_seconds", "effective_byte_seconds")] == \
        pytest.approx([3000, 1200, 3000])
    quota = row(segment.batch.tables["quota_facts"])
    assert (quota["namespace"], quota["cpu_core_seconds"], quota["memory_byte_seconds"]) == ("shop", 600, 0)


async def test_segments_must_align_to_the_resolution() -> None:
    config = SourceConfig()
    with pytest.raises(ValueError, match="aligned"):
        await collect_segment(FakeSource(config), config, T + 1, T + 300)


def test_the_cluster_matcher_is_escaped() -> None:
    queries = catalogue(SourceConfig(cluster='x"} or vector(1) #', cluster_label="cluster"))
    assert 'cluster="x\\"} or vector(1) #"' in queries.running
    assert 'container!="POD"' in queries.cpu_usage
