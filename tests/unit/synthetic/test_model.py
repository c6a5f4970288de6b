"""The generator: determinism from the seed, and every feature present in the tiny preset."""

from __future__ import annotations

import hashlib
import io
import itertools
from collections import Counter

import numpy as np
import pytest

from kubetally.synthetic import (
    ClusterSpec,
    expected_facts,
    generate,
    large,
    medium,
    small,
    tiny,
    write_openmetrics,
)
from kubetally.synthetic.model import HOSTILE_VALUE, Cluster, Pod
from kubetally.synthetic.samples import memory_values, rate_window, sample_times, used_values


def _digest(cluster: Cluster) -> str:
    out = io.StringIO()
    write_openmetrics(cluster, out)
    return hashlib.sha256(out.getvalue().encode()).hexdigest()


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    return generate(tiny())


def test_same_seed_same_metrics_and_facts() -> None:
    first, second = generate(tiny(5)), generate(tiny(5))
    assert first == second
    assert _digest(first) == _digest(second)
    spec = first.spec
    assert expected_facts(first, spec.start, spec.end) == expected_facts(second, spec.start, spec.end)


def test_other_seed_other_cluster() -> None:
    assert _digest(generate(tiny(5))) != _digest(generate(tiny(6)))


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="3600"):
        ClusterSpec(seed=0, start=1_767_225_601)
    with pytest.raises(ValueError, match="divide"):
        ClusterSpec(seed=0, scrape_seconds=7)
    with pytest.raises(ValueError, match="empty"):
        ClusterSpec(seed=0, gaps=((10, 10),))
    with pytest.raises(ValueError, match="at least one node"):
        generate(ClusterSpec(seed=0, bare_pods=1))


def _running(cluster: Cluster) -> list[Pod]:
    return [p for p in cluster.pods if not p.pending]


def test_tiny_has_nodes_namespaces_and_controllers(cluster: Cluster) -> None:
    spec = cluster.spec
    assert (len(cluster.nodes), spec.hours) == (3, 3)
    assert {n.instance_type for n in cluster.nodes} == {"m5.xlarge", "c5.large"}
    assert any(n.hourly_price is None for n in cluster.nodes)
    assert any(n.start > spec.start for n in cluster.nodes), "a node joins late"
    assert len(cluster.namespaces) == 4
    assert len({ns.project for ns in cluster.namespaces}) == 2
    kinds = Counter(cluster.controller_of(p)[0] for p in cluster.pods)
    assert set(kinds) == {"Deployment", "StatefulSet", "DaemonSet", "Job", None}
    assert kinds["DaemonSet"] == len(cluster.nodes)
    assert 10 <= sum(1 for p in cluster.pods if p.start <= spec.start + 5400 < p.end) <= 20


def test_tiny_has_jobs_of_every_duration(cluster: Cluster) -> None:
    durations = sorted(p.end - p.start for p in cluster.pods if p.owner_kind == "Job")
    assert durations == [10, 45, 240, 3660]


def test_tiny_has_pending_pod_with_requests_and_node(cluster: Cluster) -> None:
    pending = [p for p in cluster.pods if p.pending]
    assert len(pending) == 1
    assert pending[0].node
    assert all(c.cpu_request and c.memory_request for c in pending[0].containers)
    facts = expected_facts(cluster, cluster.spec.start, cluster.spec.end)
    assert pending[0].uid not in {f["pod_uid"] for f in facts.containers}


def test_tiny_has_every_container_shape(cluster: Cluster) -> None:
    containers = [(p, c) for p in _running(cluster) for c in p.containers]
    assert any(len(p.containers) == 2 for p in cluster.pods)
    assert any(len(p.containers) == 1 for p in cluster.pods)
    assert any(c.cpu_request is None and c.memory_request is None for _, c in containers)
    assert any(c.cpu_request is not None and c.memory_request is None for _, c in containers)
    assert any(c.cpu_request is not None and c.cpu_rate > c.cpu_request for _, c in containers), "CPU bursting"
    over = [
        c for p, c in containers
        if c.memory_request is not None
        and (memory_values(c, sample_times(cluster.spec, p.start, p.end)) > c.memory_request).any()
    ]
    assert over, "memory above request at some samples"
    for _, c in containers:
        assert (c.cpu_rate * 256).is_integer(), "rates are multiples of 1/256 core"


def test_tiny_has_churn_and_statefulset_name_reuse(cluster: Cluster) -> None:
    spec = cluster.spec
    deployment_pods = [p for p in cluster.pods if p.owner_kind == "ReplicaSet"]
    assert any(p.end < spec.end for p in deployment_pods)
    assert len({p.uid for p in cluster.pods}) == len(cluster.pods)
    by_name: dict[str, list[Pod]] = {}
    for p in cluster.pods:
        if p.owner_kind == "StatefulSet":
            by_name.setdefault(p.name, []).append(p)
    reused = [pods for pods in by_name.values() if len(pods) > 1]
    assert reused
    for pods in reused:
        for old, new in itertools.pairwise(pods):
            assert new.uid != old.uid
            assert new.start - old.end >= rate_window(spec) + spec.scrape_seconds
            missing = sample_times(spec, old.end, new.start)
            assert missing.size >= 2 or spec.gaps


def test_tiny_has_volumes_quotas_gaps_duplicates_and_labels(cluster: Cluster) -> None:
    spec = cluster.spec
    assert spec.gaps
    assert spec.duplicate_ksm
    mounts = Counter(claim for p in cluster.pods for _, claim in p.volumes)
    shared = [claim for claim, n in mounts.items() if n >= 2 and not claim.startswith("data-")]
    assert shared
    sharing = [p for p in cluster.pods if any(claim == shared[0] for _, claim in p.volumes)]
    assert any(a.start < b.end and b.start < a.end for a in sharing for b in sharing if a is not b)
    assert any(
        (used_values(pvc, sample_times(spec, pvc.start, pvc.end)) > pvc.request_bytes).any() for pvc in cluster.pvcs
    )
    assert len({pvc.storage_class for pvc in cluster.pvcs}) >= 1
    resources = {resource for q in cluster.quotas for resource, _ in q.hard}
    assert resources == {"requests.cpu", "requests.memory", "requests.storage"}
    keys = {key for p in cluster.pods for key, _ in p.labels}
    assert keys == {"app", "team", "app.kubernetes.io/name"}
    assert any(value == HOSTILE_VALUE for p in cluster.pods for _, value in p.labels)
    assert any("team" not in dict(p.labels) for p in cluster.pods)


def test_presets_sizes() -> None:
    for preset, pods in ((small(), 100), (medium(), 1000)):
        c = generate(preset)
        middle = preset.start + preset.hours * 1800
        concurrent = sum(1 for p in c.pods if p.start <= middle < p.end)
        assert 0.7 * pods <= concurrent <= 1.3 * pods
    assert medium().scrape_seconds == 300
    assert rate_window(medium()) == 600
    spec = large()
    assert (spec.hours, sum(n.count for n in spec.node_types), len(spec.namespaces)) == (720, 500, 500)
    gap = small().gaps[0]
    assert gap[1] - gap[0] == 7200


def test_wobble_is_deterministic_and_bounded() -> None:
    c = generate(tiny()).pods[0].containers[0]
    times = np.arange(0, 6000, 60, dtype=np.int64)
    values = memory_values(c, times)
    assert (values == memory_values(c, times)).all()
    assert values.min() >= c.memory_base
    assert values.max() <= c.memory_base + c.memory_span
    assert len(set(values.tolist())) > 10
