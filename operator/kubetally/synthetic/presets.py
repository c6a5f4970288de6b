"""Named cluster sizes: `tiny` (unit tests), `small` (integration), `medium` (CI scale), `large` (L).

Why fixed presets: scenarios and benchmarks must name the data they ran on. Each preset takes only a
seed; everything else is fixed here. Sizes (concurrent pods are approximate; churn adds unique pods):

* `tiny`: 3 nodes of 2 types (one unpriced, joining late), 4 namespaces in 2 projects, 3 h at 60 s,
  ~16 pods: Deployments (with churn), a StatefulSet (name reuse), a DaemonSet, Jobs of 10 s, 45 s,
  240 s and 3660 s, a bare pod without requests, a Pending pod, a shared PVC, quotas, a 10-minute
  gap and duplicated kube-state-metrics series.
* `small`: 10 nodes, 8 namespaces in 3 projects, 24 h at 60 s, ~100 pods, a 2-hour gap (06:00–08:00,
  coverage 22/24 = 0.9167 for the day: CORRECTNESS.md row 12), duplicated KSM series.
* `medium`: 50 nodes, 50 namespaces in 10 projects, 7 days at 300 s, ~1k pods.
* `demo`: 20 nodes, 20 namespaces in 5 projects, 7 days at 300 s, ~300 concurrent pods (`kubetally
  demo`: a week of a believable cluster that promtool loads in a few minutes, cached afterwards).
* `large` (scale L): 500 nodes, 500 namespaces in 50 projects, 30 days at 60 s, ~10k concurrent
  pods, ~30k unique pods, ~2.6k controllers plus 3k Jobs.
"""

from __future__ import annotations

from kubetally.synthetic.model import DEFAULT_START, ClusterSpec, Namespace, NodeType


def _namespaces(count: int, projects: int) -> tuple[Namespace, ...]:
    return tuple(Namespace(f"ns-{i:03d}", f"project-{i % projects:02d}") for i in range(count))


def tiny(seed: int = 1) -> ClusterSpec:
    """3 nodes, ~16 pods, 3 hours: every feature, small enough to read."""
    return ClusterSpec(
        seed=seed,
        start=DEFAULT_START,
        hours=3,
        node_types=(NodeType("m5.xlarge", 4, 16, 2, 0.192), NodeType("c5.large", 2, 4, 1, None)),
        namespaces=(
            Namespace("shop", "retail"),
            Namespace("payments", "retail"),
            Namespace("ml", "research"),
            Namespace("batch", "research"),
        ),
        deployments=2,
        replicas=(1, 2),
        statefulsets=1,
        statefulset_replicas=2,
        daemonsets=1,
        jobs=4,
        job_durations=(10, 45, 240, 3660),
        bare_pods=1,
        pending_pods=1,
        mean_pod_lifetime_hours=4.0,
        late_nodes=1,
        gaps=((DEFAULT_START + 5400, DEFAULT_START + 6000),),
        duplicate_ksm=True,
    )


def small(seed: int = 2) -> ClusterSpec:
    """10 nodes, ~100 pods, one day with a 2-hour gap."""
    return ClusterSpec(
        seed=seed,
        start=DEFAULT_START,
        hours=24,
        node_types=(NodeType("m5.2xlarge", 8, 32, 6, 0.384), NodeType("r5.xlarge", 4, 32, 4, None)),
        namespaces=_namespaces(8, 3),
        deployments=20,
        replicas=(1, 4),
        statefulsets=4,
        statefulset_replicas=2,
        daemonsets=2,
        jobs=30,
        bare_pods=5,
        pending_pods=1,
        mean_pod_lifetime_hours=12.0,
        late_nodes=1,
        gaps=((DEFAULT_START + 6 * 3600, DEFAULT_START + 8 * 3600),),
        duplicate_ksm=True,
    )


def medium(seed: int = 3) -> ClusterSpec:
    """50 nodes, ~1k pods, 7 days at 300 s."""
    return ClusterSpec(
        seed=seed,
        start=DEFAULT_START,
        hours=7 * 24,
        scrape_seconds=300,
        node_types=(
            NodeType("m5.4xlarge", 16, 64, 30, 0.768),
            NodeType("c5.4xlarge", 16, 32, 15, 0.68),
            NodeType("r5.2xlarge", 8, 64, 5, None),
        ),
        namespaces=_namespaces(50, 10),
        deployments=230,
        replicas=(1, 6),
        statefulsets=30,
        statefulset_replicas=3,
        daemonsets=2,
        jobs=500,
        bare_pods=20,
        pending_pods=2,
        mean_pod_lifetime_hours=72.0,
    )


def demo(seed: int = 5) -> ClusterSpec:
    """20 nodes, ~300 concurrent pods, 20 namespaces in 5 projects, 7 days at 300 s (`kubetally demo`)."""
    return ClusterSpec(
        seed=seed,
        start=DEFAULT_START,
        hours=7 * 24,
        scrape_seconds=300,
        node_types=(
            NodeType("m5.2xlarge", 8, 32, 10, 0.384),
            NodeType("c5.2xlarge", 8, 16, 6, 0.34),
            NodeType("r5.xlarge", 4, 32, 4, None),
        ),
        namespaces=_namespaces(20, 5),
        deployments=60,
        replicas=(1, 5),
        statefulsets=8,
        statefulset_replicas=3,
        daemonsets=2,
        jobs=120,
        bare_pods=8,
        pending_pods=1,
        mean_pod_lifetime_hours=48.0,
        hostile_label=False,
    )


def large(seed: int = 4) -> ClusterSpec:
    """Scale L: 500 nodes, ~10k concurrent pods, 500 namespaces, 30 days at 60 s."""
    return ClusterSpec(
        seed=seed,
        start=DEFAULT_START,
        hours=30 * 24,
        node_types=(
            NodeType("m5.4xlarge", 16, 64, 300, 0.768),
            NodeType("c5.4xlarge", 16, 32, 150, 0.68),
            NodeType("r5.2xlarge", 8, 64, 50, None),
        ),
        namespaces=_namespaces(500, 50),
        deployments=2300,
        replicas=(1, 6),
        statefulsets=300,
        statefulset_replicas=3,
        daemonsets=2,
        jobs=3000,
        bare_pods=200,
        pending_pods=5,
        mean_pod_lifetime_hours=336.0,
    )
