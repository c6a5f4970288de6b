"""Expected facts on hand-built micro clusters, with the integrals worked out by hand (r = 60 s).

Times are written as wall-clock minutes after 10:00:00 on the data's first day. The rate window is
the default `max(300, 2r)` = 300 s: CPU usage counts at a sample iff the counter has ≥ 2 samples in
`(t − 300, t]`.
"""

from __future__ import annotations

import pytest

from kubetally.facts.schema import CONTAINER_COLUMNS, NODE_COLUMNS, QUOTA_COLUMNS, VOLUME_COLUMNS
from kubetally.synthetic.expected import expected_coverage, expected_facts
from kubetally.synthetic.model import Cluster, PersistentVolumeClaim, ReplicaSet, ResourceQuota
from tests.unit.synthetic.micro import GIB, HOUR, MIB, T10, at, cluster, container, node, pod, spec


def _one(c: Cluster, a: int = T10, b: int = T10 + HOUR) -> dict[str, object]:
    facts = expected_facts(c, a, b)
    assert len(facts.containers) == 1
    return facts.containers[0]


def test_five_minute_pod_has_five_samples_and_usage_at_four() -> None:
    """Pod 10:00:00–10:05:00: samples at 10:00, 10:01, 10:02, 10:03, 10:04 → running 5·60 = 300 s,
    active 10:00–10:05. Request 0.5 core → 0.5·300 = 150 core-s. Usage 0.75 core (bursting) counts at
    10:01..10:04 only (10:00 is the first sample: no rate) → 0.75·60·4 = 180. Effective: 10:00 gives
    max(0.5, 0)·60 = 30, the other four max(0.5, 0.75)·60 = 45 each → 30 + 180 = 210.
    Memory: request 100 MiB = 104857600 B → ·300 = 31457280000; working set constant 50 MiB =
    52428800 B → ·300 = 15728640000; effective = request (above usage) = 31457280000."""
    fact = _one(cluster(pod("p", at(0), at(5))))
    assert fact["running_seconds"] == 300.0
    assert (fact["active_start"], fact["active_end"]) == (float(at(0)), float(at(5)))
    assert fact["cpu_request_core_seconds"] == 150.0
    assert fact["cpu_usage_core_seconds"] == 180.0
    assert fact["cpu_effective_core_seconds"] == 210.0
    assert fact["memory_request_byte_seconds"] == 31457280000.0
    assert fact["memory_usage_byte_seconds"] == 15728640000.0
    assert fact["memory_effective_byte_seconds"] == 31457280000.0


def test_columns_and_identity() -> None:
    """Records carry exactly the engine's columns; labels use sanitized keys without `label_`."""
    c = cluster(pod("p", at(0), at(5)))
    facts = expected_facts(c, T10, T10 + HOUR)
    assert set(facts.containers[0]) == set(CONTAINER_COLUMNS)
    assert set(facts.nodes[0]) == set(NODE_COLUMNS)
    fact = facts.containers[0]
    assert fact["cluster"] == "c1"
    assert (fact["node"], fact["namespace"], fact["project"]) == ("n1", "shop", "retail")
    assert (fact["pod"], fact["pod_uid"], fact["container"]) == ("p", "uid-p", "app")
    assert (fact["controller_kind"], fact["controller"]) == (None, None)
    assert fact["labels"] == {"app": "p", "app_kubernetes_io_name": "p"}
    assert (fact["segment_start"], fact["segment_end"]) == (T10, T10 + HOUR)


def test_busy_container_without_request_costs_its_usage() -> None:
    """CORRECTNESS row 13. No request, 0.25 core for 10:00–10:05: request 0; usage at 10:01..10:04 =
    0.25·60·4 = 60 core-s; effective = max(0, usage) = 60. Memory request 0, effective = usage."""
    fact = _one(cluster(pod("p", at(0), at(5), container(cpu_request=None, memory_request=None, cpu_rate=0.25))))
    assert fact["cpu_request_core_seconds"] == 0.0
    assert fact["cpu_usage_core_seconds"] == 60.0
    assert fact["cpu_effective_core_seconds"] == 60.0
    assert fact["memory_request_byte_seconds"] == 0.0
    assert fact["memory_effective_byte_seconds"] == fact["memory_usage_byte_seconds"] == 50 * MIB * 300.0


def test_unaligned_life_counts_grid_points_inside_it() -> None:
    """Pod 10:00:30–10:02:10: samples at 10:01 and 10:02 → running 120, active 10:01–10:03; usage
    (rate 0.75) only at 10:02 → 45; request 0.5·120 = 60; effective 10:01: 30, 10:02: 45 → 75."""
    fact = _one(cluster(pod("p", at(0.5), at(2 + 1 / 6))))
    assert fact["running_seconds"] == 120.0
    assert (fact["active_start"], fact["active_end"]) == (float(at(1)), float(at(3)))
    assert fact["cpu_usage_core_seconds"] == 45.0
    assert fact["cpu_request_core_seconds"] == 60.0
    assert fact["cpu_effective_core_seconds"] == 75.0


def test_short_jobs_are_seen_only_when_they_cover_a_sample() -> None:
    """CORRECTNESS row 9. A 10 s job 10:00:10–10:00:20 covers no grid point: no fact (error 10 s ≤ r).
    A 45 s job 10:00:30–10:01:15 covers 10:01: running 60 (error 15 s ≤ r), one sample so usage 0,
    request 0.5·60 = 30, effective 30."""
    c = cluster(pod("ten", at(10 / 60), at(20 / 60)), pod("fortyfive", at(0.5), at(1.25)))
    facts = expected_facts(c, T10, T10 + HOUR).containers
    assert [f["pod"] for f in facts] == ["fortyfive"]
    assert facts[0]["running_seconds"] == 60.0
    assert facts[0]["cpu_usage_core_seconds"] == 0.0
    assert facts[0]["cpu_effective_core_seconds"] == 30.0


def test_pending_pod_is_not_counted() -> None:
    """A Pending pod with requests and a node, 10:00–11:00, has no fact (running gate)."""
    c = cluster(pod("pending", at(0), at(60), pending=True))
    assert expected_facts(c, T10, T10 + HOUR).containers == []


def test_gap_longer_than_rate_window_restarts_the_rate() -> None:
    """Gap 10:02–10:10, pod 10:00–10:20: samples 10:00, 10:01, 10:10..10:19 → 12 → running 720.
    Usage at 10:01 and 10:11..10:19 (10 samples; 10:00 and 10:10 have no second sample within
    300 s) → 0.75·60·10 = 450. Coverage of 10:00–11:00 is 52/60."""
    c = cluster(pod("p", at(0), at(20)), spec=spec(gaps=((at(2), at(10)),)))
    fact = _one(c)
    assert fact["running_seconds"] == 720.0
    assert fact["cpu_usage_core_seconds"] == 450.0
    assert (fact["active_start"], fact["active_end"]) == (float(at(0)), float(at(20)))
    assert expected_coverage(c, T10, T10 + HOUR) == pytest.approx(52 / 60)


def test_short_gap_keeps_the_rate() -> None:
    """Gap 10:02–10:04, pod 10:00–10:06: samples 10:00, 10:01, 10:04, 10:05 → running 240; at 10:04
    the window (09:59, 10:04] holds 10:00, 10:01, 10:04 → usage counts at 10:01, 10:04, 10:05 → 135."""
    fact = _one(cluster(pod("p", at(0), at(6)), spec=spec(gaps=((at(2), at(4)),))))
    assert fact["running_seconds"] == 240.0
    assert fact["cpu_usage_core_seconds"] == 135.0


def test_statefulset_name_reuse_gives_two_facts_without_bridging() -> None:
    """CORRECTNESS row 7. db-0 uid a 10:00–10:10 (10 samples, running 600) and uid b 10:17–10:30
    (10:17..10:29, 13 samples, running 780): two facts, the 7-minute gap not bridged."""
    owner = ("StatefulSet", "db")
    c = cluster(pod("db-0", at(0), at(10), uid="a", owner=owner), pod("db-0", at(17), at(30), uid="b", owner=owner))
    facts = {f["pod_uid"]: f for f in expected_facts(c, T10, T10 + HOUR).containers}
    assert facts["a"]["running_seconds"] == 600.0
    assert facts["b"]["running_seconds"] == 780.0
    assert facts["b"]["active_start"] == float(at(17))
    assert facts["a"]["controller_kind"] == "StatefulSet"


def test_rate_window_looks_before_the_segment() -> None:
    """Pod 09:58–10:03, segment 10:00–10:05: counted 10:00, 10:01, 10:02 (running 180); the rate at
    10:00 sees 09:58 and 09:59, so usage counts at all three → 0.75·180 = 135."""
    fact = _one(cluster(pod("p", at(-2), at(3))), T10, at(5))
    assert fact["running_seconds"] == 180.0
    assert fact["cpu_usage_core_seconds"] == 135.0
    assert fact["active_end"] == float(at(3))


def test_active_end_is_capped_by_the_segment() -> None:
    """Pod 10:00–11:00 in segment 10:30–10:35: 5 samples, active 10:30–10:35."""
    fact = _one(cluster(pod("p", at(0), at(60))), at(30), at(35))
    assert (fact["active_start"], fact["active_end"], fact["running_seconds"]) == (float(at(30)), float(at(35)), 300.0)


def test_controllers() -> None:
    """A ReplicaSet owned by a Deployment reports the Deployment; a Job itself; a ReplicaSet without a
    Deployment record itself."""
    rs = ReplicaSet("shop", "web-7d4b9c8f6d", "web", T10 - HOUR, T10 + HOUR)
    c = cluster(pod("w", at(0), at(5), owner=("ReplicaSet", "web-7d4b9c8f6d")),
                pod("j", at(0), at(5), owner=("Job", "backup-1")),
                pod("o", at(0), at(5), owner=("ReplicaSet", "orphan-rs")), replicasets=(rs,))
    kinds = {f["pod"]: (f["controller_kind"], f["controller"]) for f in expected_facts(c, T10, T10 + HOUR).containers}
    assert kinds == {"w": ("Deployment", "web"), "j": ("Job", "backup-1"), "o": ("ReplicaSet", "orphan-rs")}


def test_nodes() -> None:
    """Node 4 cores, 16 GiB, 0.2/h for a full hour: running 3600, 14400 core-s, 16 GiB·3600 B·s,
    price 0.2·3600 = 720 price-seconds. An unpriced node has price None. A node joining 10:30 runs
    1800 s. With a 10-minute gap the first node runs 3000 s."""
    c = cluster(nodes=(node(), node("n2", price=None, start=at(30))), spec=spec(gaps=((at(40), at(50)),)))
    facts = {f["node"]: f for f in expected_facts(c, T10, T10 + HOUR).nodes}
    assert facts["n1"]["running_seconds"] == 3000.0
    assert facts["n1"]["cpu_capacity_core_seconds"] == 12000.0
    assert facts["n1"]["memory_capacity_byte_seconds"] == 16 * GIB * 3000.0
    assert facts["n1"]["hourly_price_seconds"] == pytest.approx(600.0)
    assert facts["n1"]["labels"] == {"node_kubernetes_io_instance_type": "m5.xlarge"}
    assert facts["n1"]["provider_id"] == "aws:///us-east-1a/i-n1"
    assert facts["n2"]["running_seconds"] == 1200.0
    assert facts["n2"]["hourly_price_seconds"] is None


def test_volumes_and_quotas() -> None:
    """PVC 10 GiB request, 4 GiB used (constant), one hour: request 10 GiB·3600, used 4 GiB·3600,
    effective = request. A PVC using 12 GiB of 10: effective = used. One fact per PVC even when two
    pods mount it. Quota 8 cores, 16 GiB, no storage: 28800 core-s, 16 GiB·3600, storage 0."""
    pvcs = (
        PersistentVolumeClaim("shop", "data", "gp3", "pvc-1", 10 * GIB, 4 * GIB, 0, 7, T10 - HOUR, T10 + 2 * HOUR),
        PersistentVolumeClaim("shop", "big", "gp3", "pvc-2", 10 * GIB, 12 * GIB, 0, 8, T10 - HOUR, T10 + 2 * HOUR),
    )
    quota = ResourceQuota("shop", "q", (("requests.cpu", 8.0), ("requests.memory", 16.0 * GIB)), T10 - HOUR, T10 + 2 * HOUR)
    mounts = (("data", "data"),)
    c = cluster(pod("a", at(0), at(5), volumes=mounts), pod("b", at(0), at(5), volumes=mounts), pvcs=pvcs, quotas=(quota,))
    facts = expected_facts(c, T10, T10 + HOUR)
    assert set(facts.volumes[0]) == set(VOLUME_COLUMNS)
    assert set(facts.quotas[0]) == set(QUOTA_COLUMNS)
    volumes = {f["pvc"]: f for f in facts.volumes}
    assert len(facts.volumes) == 2
    assert volumes["data"]["request_byte_seconds"] == 10 * GIB * 3600.0
    assert volumes["data"]["used_byte_seconds"] == 4 * GIB * 3600.0
    assert volumes["data"]["effective_byte_seconds"] == 10 * GIB * 3600.0
    assert volumes["big"]["effective_byte_seconds"] == 12 * GIB * 3600.0
    assert (volumes["data"]["storage_class"], volumes["data"]["project"]) == ("gp3", "retail")
    assert facts.quotas == [{"cluster": "c1", "namespace": "shop", "project": "retail", "segment_start": T10,
                             "segment_end": T10 + HOUR, "cpu_core_seconds": 28800.0,
                             "memory_byte_seconds": 16.0 * GIB * 3600, "storage_byte_seconds": 0.0}]


def test_two_quotas_in_a_namespace_take_the_minimum() -> None:
    """Quota a: 8 cores all hour; quota b: 4 cores and 10 GiB storage from 10:30. Kubernetes enforces
    both, so the limit is 8 for 10:00–10:30 and 4 after: 8·1800 + 4·1800 = 21600 core-s; storage
    only from 10:30: 10 GiB·1800; memory set by neither: 0."""
    quotas = (
        ResourceQuota("shop", "a", (("requests.cpu", 8.0),), T10 - HOUR, T10 + 2 * HOUR),
        ResourceQuota("shop", "b", (("requests.cpu", 4.0), ("requests.storage", 10.0 * GIB)), at(30), T10 + 2 * HOUR),
    )
    (fact,) = expected_facts(cluster(quotas=quotas), T10, T10 + HOUR).quotas
    assert fact["cpu_core_seconds"] == 21600.0
    assert fact["storage_byte_seconds"] == 10.0 * GIB * 1800
    assert fact["memory_byte_seconds"] == 0.0


def test_memory_wobbles_between_base_and_base_plus_span() -> None:
    """With a span of 64 pages, the working set varies per sample within [base, base + span] and the
    usage integral is Σ sample·60; effective uses max(request, sample) per sample."""
    c = container(memory_request=52 * MIB, memory_base=50 * MIB, memory_span=4 * MIB, key=12345)
    fact = _one(cluster(pod("p", at(0), at(60), c)))
    usage, effective = fact["memory_usage_byte_seconds"], fact["memory_effective_byte_seconds"]
    assert isinstance(usage, float)
    assert isinstance(effective, float)
    assert 50 * MIB * 3600 < usage < 54 * MIB * 3600
    assert effective > max(52 * MIB * 3600, usage)


def test_coverage_counts_data_span_and_gaps() -> None:
    """Coverage is the share of grid points in [a, b) that are inside the data and outside gaps."""
    c = cluster(spec=spec(hours=1, start=T10))
    assert expected_coverage(c, T10, T10 + HOUR) == 1.0
    assert expected_coverage(c, T10 - HOUR, T10 + HOUR) == 0.5


@pytest.mark.parametrize(("a", "b"), [(T10 + 30, T10 + HOUR), (T10, T10 + 90), (T10, T10)])
def test_segments_must_be_aligned_and_non_empty(a: int, b: int) -> None:
    with pytest.raises(ValueError, match="aligned"):
        expected_facts(cluster(), a, b)
