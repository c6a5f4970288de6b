"""The PromQL queries that turn standard exporters' series into facts (DESIGN.md §3).

Every query is evaluated by `query_range` at t = a, a+r, ..., b−r for a segment [a, b) at
resolution r, and each evaluated point stands for [t, t+r). Three rules shape every query:

- **No lookback smear.** Gauges are read through `max_over_time(x[r − 1ms])`, which sees the
  sample at exactly t and nothing older: a deleted pod stops counting at its last sample, not five
  minutes later (Prometheus' default lookback would keep it alive). The range is written `r·1000−1`
  milliseconds because Prometheus 2.x ranges are closed `[t−r, t]` and 3.x ranges are left-open
  `(t−r, t]`; one millisecond less gives the same answer on both.
- **Duplicates count once.** Two scrape jobs or two kube-state-metrics replicas give the same series
  with another `job`/`instance`; every query aggregates with `max by (<identity>)` (or `max without`
  the scrape-target labels for label-carrying info metrics), so a duplicate can never double. The
  five per-step container queries (`PER_SERIES_ROLES`) are the exception: they return every series
  and the collector keeps the max per identity and step (`np.fmax`, as `max by` does, NaN losing to
  a number). Prometheus 2.42 spent ~1.2 s of CPU per L hour on each `max by` of ~12k series × 60
  steps (grouping every series at every step) and ~0.2 s without it; the answers grow by ~10%.
- **The cluster is a matcher, escaped.** With a cluster label configured, every selector carries
  `cluster="<name>"`, rendered by `promql.selector`, which escapes the value.

CPU usage is `irate(container_cpu_usage_seconds_total[w])` with w = max(5m, 2r): the rate between
the last two samples, i.e. the usage of the sample interval itself, which is what a per-sample
max(request, usage) needs (`rate` would average and extrapolate over w). At a container's first
sample there is no earlier one, so its usage there is 0. cAdvisor's series have no `uid` label, so
the `id` (cgroup path, which holds the pod UID) is kept and parsed by the collector.
Containers named "" or "POD" (cgroup totals, pause containers) are excluded in the selectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubetally.sources.promql import Matcher, selector

#: Labels that a scrape target adds; dropped when deduplicating info metrics.
TARGET_LABELS: tuple[str, ...] = ("instance", "job", "service", "endpoint", "prometheus", "prometheus_replica")


#: A request's live collection budget in seconds (`SourceConfig.live_budget_seconds`).
DEFAULT_LIVE_BUDGET_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """Where facts come from: the cluster's name, the series label naming it (None for a single
    cluster whose series carry no such label), the namespace label that names a project, and the
    resolution r in seconds."""

    cluster: str = "default"
    cluster_label: str | None = None
    project_label_key: str = "kubetally_io_project"
    resolution_seconds: int = 60
    rate_window_seconds: int | None = None  # default max(300, 2r)
    target_labels: tuple[str, ...] = field(default=TARGET_LABELS)
    #: An upper bound on series per query (containers), used to chunk queries in time so that none
    #: reads more than `max_samples` samples (CORRECTNESS.md P3: ≤ 5M, 10% of Prometheus' default).
    series_hint: int = 20_000
    max_samples: int = 5_000_000
    #: Seconds an API request or a report may spend collecting the live parts of its window in all
    #: (`sources.live`); past it they count with coverage 0 and a warning. Ingest has no such budget.
    live_budget_seconds: float = DEFAULT_LIVE_BUDGET_SECONDS

    @property
    def usage_window_seconds(self) -> int:
        """The irate window w = max(5m, 2r) unless configured."""
        return self.rate_window_seconds or max(300, 2 * self.resolution_seconds)

    def points_per_query(self, lookback_seconds: int) -> int:
        """Evaluation points per query such that series_hint × samples read per point (each point
        reads the samples in its lookback, twice over for a duplicated exporter) ≤ max_samples."""
        per_point = 2 * (lookback_seconds // self.resolution_seconds + 1)
        return max(1, self.max_samples // (self.series_hint * per_point))


#: Roles whose series are read for their labels only (who owns a pod, its labels, a claim's storage
#: class...). They are evaluated once per segment, at its last evaluation time t, over
#: (t − 1 h, t]: for an hour that is exactly the samples the per-step queries see, one point per
#: series instead of 60 (a quarter of the points of an hour at scale L). A shorter live segment
#: sees up to an hour before it, which can only add owners of pods that are not in the segment.
ATTRIBUTE_ROLES = frozenset({"pod_info", "pod_owner", "replicaset_owner", "pod_labels", "namespace_labels",
                             "node_labels", "pvc_info"})
ATTRIBUTE_WINDOW_SECONDS = 3600
#: Roles evaluated at every step without a server-side `max by`: the collector deduplicates them.
PER_SERIES_ROLES = frozenset({"running", "cpu_request", "memory_request", "cpu_usage", "memory_usage"})


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The rendered queries of one SourceConfig; attribute name = role."""

    running: str
    cpu_request: str
    memory_request: str
    cpu_usage: str
    memory_usage: str
    pod_info: str
    pod_owner: str
    replicaset_owner: str
    pod_labels: str
    namespace_labels: str
    node_info: str
    node_cpu_capacity: str
    node_memory_capacity: str
    node_labels: str
    node_price: str
    pvc_request: str
    pvc_used: str
    pvc_info: str
    quota: str


def node_presence(config: SourceConfig, span_seconds: int) -> str:
    """`count` of nodes with a kube_node_info sample in the last `span_seconds` (range written
    `span·1000−1` ms, so evaluated at t − 1 s it holds exactly the samples of [t − span, t))."""
    base = [Matcher(config.cluster_label, "=", config.cluster)] if config.cluster_label else []
    return (
        f"count(max by (node, provider_id) (max_over_time({selector('kube_node_info', base)}"
        f"[{span_seconds * 1000 - 1}ms])))"
    )


def catalogue(config: SourceConfig) -> Catalogue:
    """Render every query for `config`."""
    base = [Matcher(config.cluster_label, "=", config.cluster)] if config.cluster_label else []
    r = f"{config.resolution_seconds * 1000 - 1}ms"
    window = config.usage_window_seconds
    no_pause = [Matcher("container", "!=", ""), Matcher("container", "!=", "POD")]
    drop = ", ".join(config.target_labels)

    hour = f"{ATTRIBUTE_WINDOW_SECONDS * 1000 - 1}ms"

    def gauge(metric: str, by: str, *extra: Matcher, span: str = r) -> str:
        return f"max by ({by}) (max_over_time({selector(metric, [*base, *extra])}[{span}]))"

    def each(metric: str, *extra: Matcher) -> str:
        return f"max_over_time({selector(metric, [*base, *extra])}[{r}])"

    def info(metric: str, *extra: Matcher) -> str:
        return f"max without ({drop}) (max_over_time({selector(metric, [*base, *extra])}[{hour}]))"

    return Catalogue(
        running=each("kube_pod_container_status_running", *no_pause),
        cpu_request=each("kube_pod_container_resource_requests", Matcher("resource", "=", "cpu")),
        memory_request=each("kube_pod_container_resource_requests", Matcher("resource", "=", "memory")),
        cpu_usage=f"irate({selector('container_cpu_usage_seconds_total', [*base, *no_pause])}[{window * 1000 - 1}ms])",
        memory_usage=each("container_memory_working_set_bytes", *no_pause),
        pod_info=gauge("kube_pod_info", "namespace, pod, uid, node, created_by_kind, created_by_name", span=hour),
        pod_owner=gauge("kube_pod_owner", "namespace, pod, uid, owner_kind, owner_name", span=hour),
        replicaset_owner=gauge("kube_replicaset_owner", "namespace, replicaset, owner_kind, owner_name", span=hour),
        pod_labels=info("kube_pod_labels"),
        namespace_labels=info("kube_namespace_labels"),
        node_info=gauge("kube_node_info", "node, provider_id"),
        node_cpu_capacity=gauge("kube_node_status_capacity", "node", Matcher("resource", "=", "cpu")),
        node_memory_capacity=gauge("kube_node_status_capacity", "node", Matcher("resource", "=", "memory")),
        node_labels=info("kube_node_labels"),
        node_price=gauge("node_total_hourly_cost", "node"),
        pvc_request=gauge(
            "kube_persistentvolumeclaim_resource_requests_storage_bytes", "namespace, persistentvolumeclaim"
        ),
        pvc_used=gauge("kubelet_volume_stats_used_bytes", "namespace, persistentvolumeclaim"),
        pvc_info=gauge("kube_persistentvolumeclaim_info", "namespace, persistentvolumeclaim, storageclass", span=hour),
        quota=(
            "min by (namespace, resource) ("
            + gauge(
                "kube_resourcequota",
                "namespace, resourcequota, resource",
                Matcher("type", "=", "hard"),
                Matcher("resource", "=~", "requests\\.cpu|requests\\.memory|requests\\.storage"),
            )
            + ")"
        ),
    )
