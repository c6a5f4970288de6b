"""`generate(spec)`: turn a `ClusterSpec` into concrete, deterministic objects with lifetimes.

Why: tests and benchmarks need clusters with every feature that has bitten cost tools (churn, name
reuse, short jobs, pending pods, bursting, shared PVCs, gaps, duplicate exporters), reproducible
from a seed. All randomness comes from one `numpy.random.Generator(PCG64(spec.seed))`, consumed in
a fixed order; no clock, environment or network is read.

What is generated (names as Kubernetes would make them):

* Nodes: `count` per node type; the last `late_nodes` join at `start + span//3 + 17`; the others
  exist from before the data to its end.
* Deployments: a ReplicaSet each (owned by the Deployment), `replicas` slots; each slot runs pods
  `<rs>-<5 chars>` one after another (a new pod, new uid, starts when the previous one ends).
* StatefulSets: `statefulset_replicas` slots `<sts>-<ordinal>`, each with a PVC `data-<pod>`; a
  replacement reuses the name with a new uid after a gap of `w + r + [0, 2r)` seconds (w = rate
  window), so ≥ 2 samples are missing and no rate window bridges two incarnations.
* DaemonSets: one pod per node, over the node's life. Jobs: one pod each, durations cycling through
  `job_durations`, start anywhere in the span. Bare pods (no owner, no `team` label). Pending pods:
  bare, scheduled on a node, with requests, never running.
* PVCs: one per StatefulSet slot, plus one shared by all pods of the first Deployment (its used
  bytes exceed its request at some samples). Quotas: namespaces `i % 4 < 2` get one, with
  `requests.storage` only when `i` is even.

Features forced at every scale so that even `tiny()` has them all: the first Deployment has ≥ 2
replicas, a sidecar, a CPU-bursting app container and a memory-bursting sidecar (above request at
some samples); its first pod is replaced at `start + span//3 + 7`; the first StatefulSet pod ends at
`start + span//2 + 13` and comes back under the same name; the first bare pod sets no requests; the
first StatefulSet's containers set a CPU request only; the first Deployment's pods carry the
hostile `team` label value when `hostile_label` is set.
"""

from __future__ import annotations

import uuid

import numpy as np

from kubetally.synthetic.model import (
    HOSTILE_VALUE,
    PAGE,
    Cluster,
    ClusterSpec,
    Container,
    Node,
    PersistentVolumeClaim,
    Pod,
    ReplicaSet,
    ResourceQuota,
)
from kubetally.synthetic.samples import rate_window

GIB = 2**30
MIB = 2**20
DAY = 86400
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_WORDS = ("web", "api", "cart", "search", "auth", "billing", "worker", "cache", "feed", "ingest", "notify")
_CPU_REQUESTS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
_MEMORY_REQUESTS_MIB = (64, 128, 256, 512, 1024, 2048)
_STORAGE_CLASSES = ("gp3", "standard", "fast-ssd")
_PROFILES = ("normal", "cpu_burst", "mem_burst", "no_request", "cpu_only")
_PROFILE_WEIGHTS = (0.72, 0.10, 0.08, 0.07, 0.03)

# (container name, image, cpu request, memory request, profile)
_Template = tuple[str, str, float | None, int | None, str]
_Labels = tuple[tuple[str, str], ...]


def _pages(value: float) -> int:
    return max(1, round(value / PAGE)) * PAGE


class _Builder:
    def __init__(self, spec: ClusterSpec) -> None:
        self.spec = spec
        self.rng = np.random.Generator(np.random.PCG64(spec.seed))
        self.start, self.end = spec.start, spec.end
        self.span = spec.end - spec.start
        self.r = spec.scrape_seconds
        self.w = rate_window(spec)
        self.pods: list[Pod] = []
        self.pvcs: list[PersistentVolumeClaim] = []
        self.replicasets: list[ReplicaSet] = []
        self.templates = 0

    # -- random primitives -------------------------------------------------------------------------
    def suffix(self, n: int) -> str:
        return "".join(_ALPHABET[i] for i in self.rng.integers(0, len(_ALPHABET), n))

    def uid(self) -> str:
        return str(uuid.UUID(bytes=self.rng.bytes(16), version=4))

    def uniform(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def pick(self, n: int) -> int:
        return int(self.rng.integers(0, n))

    def life(self) -> int:
        """A pod lifetime in seconds (≥ 60); beyond the span when there is no churn."""
        mean = self.spec.mean_pod_lifetime_hours * 3600
        return int(self.rng.exponential(mean)) + 60 if mean > 0 else self.span + 2 * DAY

    def before_start(self) -> int:
        return self.start - int(self.rng.integers(60, 2 * DAY))

    # -- objects -----------------------------------------------------------------------------------
    def make_nodes(self) -> tuple[Node, ...]:
        nodes: list[Node] = []
        total = sum(nt.count for nt in self.spec.node_types)
        for nt in self.spec.node_types:
            for _ in range(nt.count):
                i = len(nodes)
                late = i >= total - self.spec.late_nodes
                memory = int(nt.memory_gib * GIB)
                nodes.append(Node(
                    name=f"ip-10-0-{i // 250}-{i % 250 + 1}.ec2.internal",
                    instance_type=nt.name,
                    cores=nt.cores,
                    memory_bytes=memory,
                    allocatable_cores=round(nt.cores * 0.95, 3),
                    allocatable_memory_bytes=_pages(memory * 0.9),
                    provider_id=f"aws:///us-east-1{'abc'[i % 3]}/i-0{self.rng.bytes(8).hex()}",
                    start=self.start + self.span // 3 + 17 if late else self.start - 30 * DAY,
                    end=self.end,
                    hourly_price=nt.hourly_price,
                ))
        return tuple(nodes)

    def template(self, name: str, image: str, profile: str | None = None) -> _Template:
        forced = {0: "cpu_burst", 1: "mem_burst"}.get(self.templates)
        self.templates += 1
        if profile is None:
            profile = forced or _PROFILES[int(self.rng.choice(len(_PROFILES), p=_PROFILE_WEIGHTS))]
        cpu: float | None = float(self.rng.choice(_CPU_REQUESTS))
        memory: int | None = int(self.rng.choice(_MEMORY_REQUESTS_MIB)) * MIB
        if profile == "no_request":
            cpu = memory = None
        elif profile == "cpu_only":
            memory = None
        return name, image, cpu, memory, profile

    def container(self, template: _Template) -> Container:
        name, image, cpu, memory, profile = template
        if cpu is None:
            rate = self.uniform(0.02, 0.5)
        elif profile == "cpu_burst":
            rate = cpu * self.uniform(1.2, 2.5)
        else:
            rate = cpu * self.uniform(0.05, 0.9)
        reference = memory if memory is not None else int(self.uniform(64, 512)) * MIB
        if profile == "mem_burst":
            span = _pages(reference * 0.3)
            base = reference - (span // (2 * PAGE)) * PAGE
        else:
            base = _pages(reference * self.uniform(0.3, 0.8))
            span = _pages(reference * self.uniform(0.02, 0.15))
        return Container(
            name=name,
            image=image,
            cpu_request=cpu,
            memory_request=memory,
            cpu_rate=max(1, round(rate * 256)) / 256,
            memory_base=base,
            memory_span=span,
            key=int(self.rng.integers(0, 2**63)),
        )

    def templates_for(self, app: str, sidecar: bool, profile: str | None = None) -> tuple[_Template, ...]:
        main = self.template(app, f"registry.example.com/{app}:1.{self.pick(9)}", profile)
        if not sidecar:
            return (main,)
        return main, self.template("sidecar", "envoyproxy/envoy:v1.30.1", profile)

    def add_pod(self, namespace: str, name: str, node: str, start: int, end: int,
                templates: tuple[_Template, ...], owner: tuple[str | None, str | None], labels: _Labels,
                volumes: tuple[tuple[str, str], ...] = (), pending: bool = False) -> None:
        self.pods.append(Pod(
            namespace=namespace, name=name, uid=self.uid(), node=node, start=start, end=min(end, self.end),
            containers=tuple(self.container(t) for t in templates), owner_kind=owner[0], owner_name=owner[1],
            labels=labels, volumes=volumes, pending=pending,
        ))

    def add_pvc(self, namespace: str, name: str, over_request: bool = False) -> None:
        request = int(self.rng.choice((1, 5, 10, 20, 50, 100))) * GIB
        if over_request:
            span = _pages(request * 0.1)
            base = request - (span // (2 * PAGE)) * PAGE
        else:
            base = _pages(request * self.uniform(0.1, 0.7))
            span = _pages(request * self.uniform(0.01, 0.1))
        self.pvcs.append(PersistentVolumeClaim(
            namespace=namespace, name=name, storage_class=_STORAGE_CLASSES[self.pick(len(_STORAGE_CLASSES))],
            volume_name=f"pvc-{self.uid()}", request_bytes=request, used_base=base, used_span=span,
            key=int(self.rng.integers(0, 2**63)), start=self.start - 10 * DAY, end=self.end,
        ))


def _labels(app: str, team: str | None) -> _Labels:
    base = (("app", app), ("app.kubernetes.io/name", app))
    return (*base, ("team", team)) if team is not None else base


def _deployments(b: _Builder, namespaces: list[str], full_nodes: list[Node]) -> None:
    spec = b.spec
    for d in range(spec.deployments):
        ns = namespaces[b.pick(len(namespaces))]
        app = f"{_WORDS[d % len(_WORDS)]}-{d}"
        rs = f"{app}-{b.suffix(10)}"
        replicas = int(b.rng.integers(spec.replicas[0], spec.replicas[1] + 1))
        team = HOSTILE_VALUE if d == 0 and spec.hostile_label else f"team-{b.pick(8)}"
        templates = b.templates_for(app, d == 0 or b.rng.random() < spec.sidecar_fraction)
        volumes: tuple[tuple[str, str], ...] = ()
        if d == 0:
            replicas = max(replicas, 2)
            b.add_pvc(ns, f"{app}-shared", over_request=True)
            volumes = (("shared", f"{app}-shared"),)
        b.replicasets.append(ReplicaSet(ns, rs, app, b.start - 40 * DAY, b.end))
        for slot in range(replicas):
            begin = b.before_start()
            finish = b.start + b.span // 3 + 7 if d == 0 and slot == 0 else b.start + b.life()
            while True:
                node = full_nodes[b.pick(len(full_nodes))].name
                b.add_pod(ns, f"{rs}-{b.suffix(5)}", node, begin, finish, templates, ("ReplicaSet", rs),
                          _labels(app, team), volumes)
                if finish >= b.end:
                    break
                begin, finish = finish, finish + b.life()


def _statefulsets(b: _Builder, namespaces: list[str], full_nodes: list[Node]) -> None:
    spec = b.spec
    for s in range(spec.statefulsets):
        ns = namespaces[b.pick(len(namespaces))]
        app = f"{_WORDS[(s + 3) % len(_WORDS)]}-db-{s}"
        templates = b.templates_for(app, b.rng.random() < spec.sidecar_fraction, "cpu_only" if s == 0 else None)
        labels = _labels(app, f"team-{b.pick(8)}")
        for ordinal in range(spec.statefulset_replicas):
            name = f"{app}-{ordinal}"
            b.add_pvc(ns, f"data-{name}")
            begin = b.before_start()
            finish = b.start + b.span // 2 + 13 if s == 0 and ordinal == 0 else b.start + b.life()
            while True:
                node = full_nodes[b.pick(len(full_nodes))].name
                b.add_pod(ns, name, node, begin, finish, templates, ("StatefulSet", app), labels,
                          (("data", f"data-{name}"),))
                if finish >= b.end:
                    break
                begin = finish + b.w + b.r + int(b.rng.integers(0, 2 * b.r))
                if begin >= b.end:
                    break
                finish = begin + b.life()


def _daemonsets(b: _Builder, namespaces: list[str], nodes: tuple[Node, ...]) -> None:
    for k in range(b.spec.daemonsets):
        app = f"node-agent-{k}"
        templates = b.templates_for(app, False)
        for node in nodes:
            b.add_pod(namespaces[0], f"{app}-{b.suffix(5)}", node.name, node.start + 5 + b.pick(30), node.end,
                      templates, ("DaemonSet", app), _labels(app, "team-platform"))


def _jobs(b: _Builder, namespaces: list[str], full_nodes: list[Node]) -> None:
    durations = b.spec.job_durations
    for j in range(b.spec.jobs):
        duration = durations[j % len(durations)]
        ns = namespaces[b.pick(len(namespaces))]
        begin = b.start + int(b.rng.integers(0, max(1, b.span - duration)))
        app = f"{_WORDS[j % len(_WORDS)]}-job"
        job = f"{app}-{j}-{b.suffix(5)}"
        node = full_nodes[b.pick(len(full_nodes))].name
        b.add_pod(ns, f"{job}-{b.suffix(5)}", node, begin, begin + duration, b.templates_for(app, False),
                  ("Job", job), _labels(app, f"team-{b.pick(8)}"))


def _bare_and_pending(b: _Builder, namespaces: list[str], full_nodes: list[Node]) -> None:
    for i in range(b.spec.bare_pods):
        ns = namespaces[b.pick(len(namespaces))]
        if i % 2 == 0:
            begin, finish = b.before_start(), b.end
        else:
            begin = b.start + b.pick(b.span // 2)
            finish = begin + 60 + b.pick(b.span // 2)
        node = full_nodes[b.pick(len(full_nodes))].name
        templates = b.templates_for("toolbox", False, "no_request" if i == 0 else None)
        b.add_pod(ns, f"toolbox-{b.suffix(5)}", node, begin, finish, templates, (None, None),
                  _labels("toolbox", None))
    for _ in range(b.spec.pending_pods):
        ns = namespaces[b.pick(len(namespaces))]
        node = full_nodes[b.pick(len(full_nodes))].name
        templates = b.templates_for("big-batch", False, "normal")
        b.add_pod(ns, f"big-batch-{b.suffix(5)}", node, b.start + b.pick(b.span // 2), b.end, templates,
                  (None, None), _labels("big-batch", "team-data"), pending=True)


def _quotas(b: _Builder) -> tuple[ResourceQuota, ...]:
    quotas: list[ResourceQuota] = []
    for i, ns in enumerate(b.spec.namespaces):
        if i % 4 >= 2:
            continue
        hard: list[tuple[str, float]] = [
            ("requests.cpu", float(b.rng.choice((4, 8, 16, 32, 64)))),
            ("requests.memory", float(int(b.rng.choice((8, 16, 32, 64, 128))) * GIB)),
        ]
        if i % 2 == 0:
            hard.append(("requests.storage", float(int(b.rng.choice((50, 100, 500))) * GIB)))
        quotas.append(ResourceQuota(ns.name, "compute-quota", tuple(hard), b.start - 90 * DAY, b.end))
    return tuple(quotas)


def generate(spec: ClusterSpec) -> Cluster:
    """The cluster `spec` describes; the same spec always gives the same cluster."""
    b = _Builder(spec)
    nodes = b.make_nodes()
    namespaces = [ns.name for ns in spec.namespaces]
    full_nodes = [node for node in nodes if node.start <= spec.start]
    wants_pods = spec.deployments + spec.statefulsets + spec.daemonsets + spec.jobs + spec.bare_pods
    if wants_pods + spec.pending_pods and (not namespaces or not full_nodes):
        raise ValueError("a spec with pods needs namespaces and at least one node present from the start")
    _deployments(b, namespaces, full_nodes)
    _statefulsets(b, namespaces, full_nodes)
    _daemonsets(b, namespaces, nodes)
    _jobs(b, namespaces, full_nodes)
    _bare_and_pending(b, namespaces, full_nodes)
    return Cluster(
        spec=spec,
        nodes=nodes,
        pods=tuple(b.pods),
        replicasets=tuple(b.replicasets),
        pvcs=tuple(b.pvcs),
        quotas=_quotas(b),
    )
