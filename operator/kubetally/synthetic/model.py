"""The objects of a synthetic Kubernetes cluster: what exists, when, and with which parameters.

Why: every correctness scenario (CORRECTNESS.md) is tested on metrics whose exact meaning is known.
This module holds the *truth* — nodes, pods, containers, PVCs and quotas with lifetimes — from which
`kubetally.synthetic.openmetrics` writes the metrics that Prometheus would hold and
`kubetally.synthetic.expected` computes the facts the ingest must derive from them. Both read the
same objects and the same sample functions (`kubetally.synthetic.samples`), so the metrics and the
expected facts cannot disagree about a value.

Conventions (all times are unix seconds, UTC, integers):

* Every object lives over `[start, end)`. An object may start before the data does
  (`ClusterSpec.start`); samples exist only inside `[spec.start, spec.end)`.
* The scrape grid is the absolute multiples of `r = spec.scrape_seconds`: an object has a sample at
  every `t = k·r` with `start ≤ t < end`, `spec.start ≤ t < spec.end` and `t` outside every gap
  `[g0, g1)` of `spec.gaps` (a gap is a Prometheus outage: no metric at all has samples there).
* Containers live as long as their pod. A pod with `pending=True` is scheduled (it has a node, its
  requests and `kube_pod_info`) but never runs: its running gauge is 0 and cAdvisor has no series.
* CPU usage is a constant `cpu_rate` (cores) per container lifetime: the cAdvisor counter at `t` is
  `cpu_rate·(t − pod.start)`. `cpu_rate` is a multiple of 1/256 core and times are integers, so
  every counter value, and every difference quotient of two of them, is exact in float64.
* Memory working set and PVC used bytes vary per sample: `base + PAGE·(h(key, t) mod (span/PAGE+1))`
  with a splitmix64 hash `h` (`samples.wobble`): integer bytes, a pure function of (key, t).
* Labels are kept with their Kubernetes keys (`app.kubernetes.io/name`); the metrics and facts use
  the kube-state-metrics sanitized form (`kubetally.domain.labels.sanitize_label_key`).

`ClusterSpec` describes a cluster to generate (`kubetally.synthetic.generate.generate`); a `Cluster`
can also be built by hand in tests (one node, one pod) with the same classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Memory and storage values move in pages of this many bytes.
PAGE = 4096
#: The default start of the data.
DEFAULT_START = 1_767_225_600  # 2026-01-01T00:00:00Z
#: The hostile label value (CORRECTNESS.md S3): quote, backslash, braces and a pipe.
HOSTILE_VALUE = 'a"b\\c{d}|e'
#: The namespace label carrying the project (DESIGN.md §3).
PROJECT_LABEL = "kubetally.io/project"
#: The node label carrying the instance type.
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"


@dataclass(frozen=True, slots=True)
class NodeType:
    """A kind of node: `count` nodes with these capacities and an optional price per hour."""

    name: str
    cores: float
    memory_gib: float
    count: int
    hourly_price: float | None = None


@dataclass(frozen=True, slots=True)
class Namespace:
    """A namespace and its project (the `kubetally.io/project` label), None when unlabelled."""

    name: str
    project: str | None = None


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """What to generate. Counts are of controllers; `generate` turns them into pods.

    `replicas` is an inclusive range per Deployment. `mean_pod_lifetime_hours` > 0 makes
    Deployment and StatefulSet pods end after an exponential lifetime and be replaced (0: pods live
    to the end, apart from the two forced replacements `generate` always makes). `late_nodes` nodes
    (the last ones) join a third of the way into the span. `rate_window` is the PromQL range of the
    CPU usage rate; None means `max(300, 2·r)` (see `samples.rate_window`).
    """

    seed: int
    start: int = DEFAULT_START
    hours: int = 1
    name: str = "c1"
    scrape_seconds: int = 60
    node_types: tuple[NodeType, ...] = ()
    namespaces: tuple[Namespace, ...] = ()
    deployments: int = 0
    replicas: tuple[int, int] = (1, 3)
    statefulsets: int = 0
    statefulset_replicas: int = 2
    daemonsets: int = 0
    jobs: int = 0
    job_durations: tuple[int, ...] = (10, 45, 240, 3660)
    bare_pods: int = 0
    pending_pods: int = 0
    mean_pod_lifetime_hours: float = 0.0
    sidecar_fraction: float = 0.3
    late_nodes: int = 0
    gaps: tuple[tuple[int, int], ...] = ()
    duplicate_ksm: bool = False
    hostile_label: bool = True
    rate_window: int | None = None

    def __post_init__(self) -> None:
        r = self.scrape_seconds
        if r <= 0 or 3600 % r:
            raise ValueError(f"scrape_seconds must divide 3600, got {r}")
        if self.start % 3600:
            raise ValueError("start must be a multiple of 3600")
        if self.hours <= 0:
            raise ValueError("hours must be positive")
        for g0, g1 in self.gaps:
            if not g0 < g1:
                raise ValueError(f"gap [{g0}, {g1}) is empty")
        if self.rate_window is not None and self.rate_window < 2 * r:
            raise ValueError("rate_window must hold at least two samples (≥ 2·scrape_seconds)")

    @property
    def end(self) -> int:
        """The end of the data: `start + hours·3600` (exclusive)."""
        return self.start + self.hours * 3600


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    instance_type: str
    cores: float
    memory_bytes: int
    allocatable_cores: float
    allocatable_memory_bytes: int
    provider_id: str
    start: int
    end: int
    hourly_price: float | None = None


@dataclass(frozen=True, slots=True)
class Container:
    """One container. Requests are None when the container sets none (KSM then has no series).

    `key` seeds the per-sample memory wobble; `memory_span` is a multiple of `PAGE`.
    """

    name: str
    image: str
    cpu_request: float | None
    memory_request: int | None
    cpu_rate: float
    memory_base: int
    memory_span: int
    key: int


@dataclass(frozen=True, slots=True)
class Pod:
    """One pod incarnation (one uid). `owner_kind`/`owner_name` are what `kube_pod_owner` reports
    (None for a bare pod, reported as `<none>`); a Deployment's pods are owned by its ReplicaSet.
    `volumes` are (volume name, claim name) pairs. `labels` use Kubernetes keys."""

    namespace: str
    name: str
    uid: str
    node: str
    start: int
    end: int
    containers: tuple[Container, ...]
    owner_kind: str | None = None
    owner_name: str | None = None
    labels: tuple[tuple[str, str], ...] = ()
    volumes: tuple[tuple[str, str], ...] = ()
    pending: bool = False


@dataclass(frozen=True, slots=True)
class ReplicaSet:
    namespace: str
    name: str
    deployment: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class PersistentVolumeClaim:
    """A bound PVC. Used bytes wobble in `[used_base, used_base + used_span]` (page multiples)."""

    namespace: str
    name: str
    storage_class: str
    volume_name: str
    request_bytes: int
    used_base: int
    used_span: int
    key: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class ResourceQuota:
    """A ResourceQuota: `hard` maps `requests.cpu` (cores), `requests.memory` and `requests.storage`
    (bytes) to their limits; a resource absent from `hard` has no series."""

    namespace: str
    name: str
    hard: tuple[tuple[str, float], ...]
    start: int
    end: int


@dataclass(frozen=True)
class Cluster:
    """A concrete cluster. `cache` holds derived column tables (`kubetally.synthetic.arrays`)."""

    spec: ClusterSpec
    nodes: tuple[Node, ...]
    pods: tuple[Pod, ...]
    replicasets: tuple[ReplicaSet, ...] = ()
    pvcs: tuple[PersistentVolumeClaim, ...] = ()
    quotas: tuple[ResourceQuota, ...] = ()
    cache: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    @property
    def namespaces(self) -> tuple[Namespace, ...]:
        return self.spec.namespaces

    def project_of(self, namespace: str) -> str | None:
        projects = self.cache.get("projects")
        if not isinstance(projects, dict):
            projects = {item.name: item.project for item in self.spec.namespaces}
            self.cache["projects"] = projects
        project = projects.get(namespace)
        return project if isinstance(project, str) else None

    def controller_of(self, pod: Pod) -> tuple[str | None, str | None]:
        """(kind, name) of the pod's controller: a ReplicaSet owned by a Deployment is reported as
        the Deployment; any other owner as itself; a bare pod as (None, None)."""
        if pod.owner_kind == "ReplicaSet":
            owners = self.cache.get("replicaset_owners")
            if not isinstance(owners, dict):
                owners = {(rs.namespace, rs.name): rs.deployment for rs in self.replicasets}
                self.cache["replicaset_owners"] = owners
            deployment = owners.get((pod.namespace, pod.owner_name or ""))
            if isinstance(deployment, str):
                return "Deployment", deployment
        return pod.owner_kind, pod.owner_name
