"""Hypothesis strategies: small, random but valid fact sets, price books and queries.

A generated fact set has 1-2 clusters, 1-4 nodes (1-16 cores, 1-64 GiB, a label `instance_type`),
1-4 hourly segments from 2025-06-01T00:00Z (the last one possibly a shorter live edge), and 1-8 pods of 1-2 containers in 1-4 namespaces of
2 projects (or none). Each pod lives on one node and runs in a random non-empty subset of the
segments. Every node has a node fact in every segment (so every container fact matches a node
fact) unless `unmatched=True` drops some. Integrals are consistent: a container runs at most as long
as its node, and effective lies between max(request, usage) and request + usage.

Names are globally unique where the rows' display keys would otherwise collide (pods, pod uids,
nodes, controllers), so a row is identified by (step_start, kind, key) in the tests.

`overcommit=True` makes every container run as long as its node with requests above the node's
capacity, so every node-segment with containers is scaled (R6).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from kubetally.domain.aggregation import AggregateKey, Dimension
from kubetally.domain.filters import parse_filter
from kubetally.domain.prices import LabelRequirement, NodePriceRule, PriceBook, PriceVersion
from kubetally.domain.vocabulary import Item, Method, ShareSplit, UsageKind
from kubetally.domain.window import CalendarPeriod, Window
from kubetally.engine.query import CostQuery, UsageQuery

#: 2025-06-01T00:00:00Z
BASE = 1748736000
HOUR = 3600
GIB = 2**30

INSTANCE_TYPES = ("small", "large", "gpu")
APPS = ("web", "db", "cache")
TEAMS = ("alpha", "beta")
CONTROLLER_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
STORAGE_CLASSES = ("ssd", "standard", None)

COST_METHODS = (Method.REQUEST, Method.USAGE, Method.EFFECTIVE)


def at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


@dataclass
class FactSet:
    """Generated facts plus what queries may refer to."""

    containers: list[dict[str, Any]]
    nodes: list[dict[str, Any]]
    volumes: list[dict[str, Any]]
    quotas: list[dict[str, Any]]
    segments: int
    clusters: list[str]
    node_names: list[str]
    namespaces: list[str]
    projects: list[str] = field(default_factory=lambda: ["p0", "p1"])
    pods: list[str] = field(default_factory=list)

    def load_kwargs(self) -> dict[str, list[dict[str, Any]]]:
        return {"containers": self.containers, "nodes": self.nodes, "volumes": self.volumes, "quotas": self.quotas}


def _thousandths(low: int, high: int) -> st.SearchStrategy[float]:
    """A fraction low/1000 .. high/1000 on a 1/1000 grid (keeps the numbers readable)."""
    return st.integers(low, high).map(lambda value: value / 1000)


def _running(limit: int) -> st.SearchStrategy[int]:
    """Seconds in (0, limit], often the whole of it."""
    return st.one_of(st.just(limit), st.integers(1, limit))


@st.composite
def fact_sets(draw: st.DrawFn, *, overcommit: bool = False, unmatched: bool = False) -> FactSet:
    """A valid fact set (see the module docstring)."""
    clusters = [f"c{index}" for index in range(draw(st.integers(1, 2)))]
    segments = draw(st.integers(1, 4))
    starts = [BASE + HOUR * index for index in range(segments)]
    # The last segment may be a live edge, shorter than an hour.
    length = dict.fromkeys(starts, HOUR)
    length[starts[-1]] = draw(st.one_of(st.just(HOUR), st.integers(60, HOUR)))

    # Nodes: the first ones cover every cluster.
    nodes: list[dict[str, Any]] = []
    node_facts: list[dict[str, Any]] = []
    node_running: dict[tuple[str, int], int] = {}
    for index in range(draw(st.integers(len(clusters), 4))):
        cluster = clusters[index] if index < len(clusters) else draw(st.sampled_from(clusters))
        name = f"node{index}"
        cores = draw(st.integers(1, 16))
        gib = draw(st.integers(1, 64))
        labels = {"instance_type": draw(st.sampled_from(INSTANCE_TYPES)), "kubernetes_io_hostname": name}
        metric = draw(st.one_of(st.none(), st.sampled_from([0.05, 0.5, 1.25])))
        node = {"cluster": cluster, "node": name, "cores": cores, "gib": gib}
        nodes.append(node)
        for start in starts:
            running = draw(_running(length[start]))
            node_running[(name, start)] = running
            node_facts.append(
                {
                    "cluster": cluster,
                    "node": name,
                    "provider_id": f"provider://{cluster}/{name}",
                    "labels": labels,
                    "segment_start": start,
                    "segment_end": start + length[start],
                    "running_seconds": float(running),
                    "cpu_capacity_core_seconds": float(cores * running),
                    "memory_capacity_byte_seconds": float(gib * GIB * running),
                    "hourly_price_seconds": None if metric is None else metric * running,
                }
            )

    namespaces = [f"ns{index}" for index in range(draw(st.integers(1, 4)))]
    project_of = {ns: draw(st.sampled_from(["p0", "p1", None])) for ns in namespaces}

    containers: list[dict[str, Any]] = []
    pods: list[str] = []
    for index in range(draw(st.integers(1, 8))):
        node = draw(st.sampled_from(nodes))
        cluster = node["cluster"]
        namespace = draw(st.sampled_from(namespaces))
        pod = f"pod{index}"
        pods.append(pod)
        controller = draw(st.one_of(st.none(), st.tuples(st.sampled_from(CONTROLLER_KINDS), st.integers(0, 1))))
        if controller is None:
            kind, controller_name = None, None
        else:
            kind = controller[0]
            controller_name = f"{kind.lower()}-{cluster}-{namespace}-{controller[1]}"
        labels = {"app": draw(st.sampled_from(APPS))}
        if draw(st.booleans()):
            labels["team"] = draw(st.sampled_from(TEAMS))
        if draw(st.booleans()):
            labels["app_kubernetes_io_name"] = draw(st.sampled_from(APPS))
        present = draw(st.lists(st.sampled_from(starts), min_size=1, max_size=segments, unique=True))
        for container in ["main", "sidecar"][: draw(st.integers(1, 2))]:
            for start in sorted(present):
                limit = node_running[(node["node"], start)]
                running = limit if overcommit else draw(_running(limit))
                offset = draw(st.integers(0, length[start] - running))
                if overcommit:
                    request_cpu = node["cores"] * draw(_thousandths(1010, 3000))
                    request_mem = node["gib"] * GIB * draw(_thousandths(1010, 3000))
                else:
                    request_cpu = node["cores"] * draw(_thousandths(0, 250))
                    request_mem = node["gib"] * GIB * draw(_thousandths(0, 250))
                usage_cpu = node["cores"] * draw(_thousandths(0, 500))
                usage_mem = node["gib"] * GIB * draw(_thousandths(0, 500))
                blend_cpu = draw(_thousandths(0, 1000))
                blend_mem = draw(_thousandths(0, 1000))
                effective_cpu = max(request_cpu, usage_cpu) + blend_cpu * min(request_cpu, usage_cpu)
                effective_mem = max(request_mem, usage_mem) + blend_mem * min(request_mem, usage_mem)
                containers.append(
                    {
                        "cluster": cluster,
                        "node": node["node"],
                        "namespace": namespace,
                        "project": project_of[namespace],
                        "pod": pod,
                        "pod_uid": f"uid-{index}",
                        "container": container,
                        "controller_kind": kind,
                        "controller": controller_name,
                        "labels": labels,
                        "segment_start": start,
                        "segment_end": start + length[start],
                        "active_start": float(start + offset),
                        "active_end": float(start + offset + running),
                        "running_seconds": float(running),
                        "cpu_request_core_seconds": request_cpu * running,
                        "cpu_usage_core_seconds": usage_cpu * running,
                        "cpu_effective_core_seconds": effective_cpu * running,
                        "memory_request_byte_seconds": request_mem * running,
                        "memory_usage_byte_seconds": usage_mem * running,
                        "memory_effective_byte_seconds": effective_mem * running,
                    }
                )

    if unmatched:
        keep = draw(st.lists(st.booleans(), min_size=len(node_facts), max_size=len(node_facts)))
        if all(keep):
            keep[draw(st.integers(0, len(keep) - 1))] = False
        node_facts = [fact for fact, kept in zip(node_facts, keep, strict=True) if kept]

    # Volumes: 0-2 PVCs per (cluster, namespace) that has pods.
    volumes: list[dict[str, Any]] = []
    quotas: list[dict[str, Any]] = []
    places = sorted({(fact["cluster"], fact["namespace"]) for fact in containers})
    for cluster, namespace in places:
        for pvc in range(draw(st.integers(0, 2))):
            storage_class = draw(st.sampled_from(STORAGE_CLASSES))
            for start in starts:
                if not draw(st.booleans()):
                    continue
                running = draw(_running(length[start]))
                requested = draw(st.integers(1, 100)) * GIB
                used = requested * draw(_thousandths(0, 1000))
                volumes.append(
                    {
                        "cluster": cluster,
                        "namespace": namespace,
                        "project": project_of[namespace],
                        "pvc": f"pvc-{namespace}-{pvc}",
                        "storage_class": storage_class,
                        "segment_start": start,
                        "segment_end": start + length[start],
                        "running_seconds": float(running),
                        "request_byte_seconds": float(requested * running),
                        "used_byte_seconds": used * running,
                        "effective_byte_seconds": max(float(requested), used) * running,
                    }
                )
        if draw(st.booleans()):
            cores = draw(st.integers(1, 32))
            gib = draw(st.integers(1, 128))
            storage = draw(st.integers(0, 500))
            for start in starts:
                quotas.append(
                    {
                        "cluster": cluster,
                        "namespace": namespace,
                        "project": project_of[namespace],
                        "segment_start": start,
                        "segment_end": start + length[start],
                        "cpu_core_seconds": float(cores * length[start]),
                        "memory_byte_seconds": float(gib * GIB * length[start]),
                        "storage_byte_seconds": float(storage * GIB * length[start]),
                    }
                )

    return FactSet(
        containers=containers,
        nodes=node_facts,
        volumes=volumes,
        quotas=quotas,
        segments=segments,
        clusters=clusters,
        node_names=[node["node"] for node in nodes],
        namespaces=namespaces,
        pods=pods,
    )


def overcommitted_fact_sets() -> st.SearchStrategy[FactSet]:
    """Fact sets whose containers request more than their node's capacity."""
    return fact_sets(overcommit=True)


# --- prices -----------------------------------------------------------------------------------------

CPU_PRICES = ("0", "0.031611", "0.05", "0.5")
MEMORY_PRICES = ("0", "0.004237", "0.01", "0.2")
STORAGE_PRICES = ("0.00005479", "0.0002", "0.001")
WEIGHTS = ("0", "0.25", "0.5", "0.7", "1")
RULE_PRICES = ("0", "0.1", "0.82", "2.5")


@st.composite
def node_rules(draw: st.DrawFn) -> tuple[NodePriceRule, ...]:
    """0-2 whole-node price rules on `instance_type` (matchLabels or an In expression)."""
    rules: list[NodePriceRule] = []
    for _ in range(draw(st.integers(0, 2))):
        hourly = Decimal(draw(st.sampled_from(RULE_PRICES)))
        if draw(st.booleans()):
            rules.append(NodePriceRule(hourly, match_labels={"instance_type": draw(st.sampled_from(INSTANCE_TYPES))}))
        else:
            values = tuple(draw(st.lists(st.sampled_from(INSTANCE_TYPES), min_size=1, max_size=2, unique=True)))
            rules.append(NodePriceRule(hourly, match_expressions=(LabelRequirement("instance_type", "In", values),)))
    return tuple(rules)


@st.composite
def price_versions(draw: st.DrawFn, currency: str, effective_from: datetime) -> PriceVersion:
    weight = draw(st.one_of(st.none(), st.sampled_from(WEIGHTS)))
    weights = None if weight is None else (Decimal(weight), Decimal(1) - Decimal(weight))
    storage_classes = {"ssd": Decimal("0.0002")} if draw(st.booleans()) else {}
    return PriceVersion(
        currency=currency,
        cpu_core_hour=Decimal(draw(st.sampled_from(CPU_PRICES))),
        memory_gib_hour=Decimal(draw(st.sampled_from(MEMORY_PRICES))),
        storage_gib_hour=Decimal(draw(st.sampled_from(STORAGE_PRICES))),
        weights=weights,
        node_rules=draw(node_rules()),
        storage_class_prices=storage_classes,
        effective_from=effective_from,
        source="costweights/test",
    )


@st.composite
def price_books(draw: st.DrawFn) -> PriceBook:
    """1-2 versions; the second starts on an hour boundary or mid-segment (priced by segment start)."""
    currency = draw(st.sampled_from(["USD", "CNY"]))
    first = at(draw(st.sampled_from([0, BASE, BASE + HOUR])))
    versions = [draw(price_versions(currency, first))]
    if draw(st.booleans()):
        second = at(draw(st.sampled_from([BASE + HOUR, BASE + 2 * HOUR, BASE + 3 * HOUR, BASE + HOUR + 1800])))
        if second != first:
            versions.append(draw(price_versions(currency, second)))
    return PriceBook(tuple(versions))


# --- queries ----------------------------------------------------------------------------------------

AGGREGATE_CHOICES = (
    AggregateKey(Dimension.POD),
    AggregateKey(Dimension.NAMESPACE),
    AggregateKey(Dimension.CONTROLLER),
    AggregateKey(Dimension.CONTROLLER_KIND),
    AggregateKey(Dimension.NODE),
    AggregateKey(Dimension.CLUSTER),
    AggregateKey(Dimension.PROJECT),
    AggregateKey(Dimension.LABEL, "app"),
    AggregateKey(Dimension.LABEL, "team"),
    AggregateKey(Dimension.LABEL, "app.kubernetes.io/name"),
)


def filter_texts(fs: FactSet) -> st.SearchStrategy[str]:
    """Filter conditions built from the generated data, alone or joined by `+` / `|`."""
    conditions = [
        *(f'namespace:"{ns}"' for ns in fs.namespaces),
        *(f'namespace!:"{ns}"' for ns in fs.namespaces),
        *(f'label[app]:"{app}"' for app in APPS),
        'label[team]:""',
        'label[app.kubernetes.io/name]~:"e"',
        'project:"p0"',
        'project!:"p1"',
        *(f'node:"{node}"' for node in fs.node_names),
        *(f'cluster:"{cluster}"' for cluster in fs.clusters),
        'controllerKind:"Deployment","StatefulSet"',
        'pod<~:"pod1"',
        'controller~>:"-0"',
        # `__unallocated__`: missing or empty, as the aggregate row of that name (domain.filters)
        'label[team]:"__unallocated__"',
        'label[team]!:"__unallocated__"',
        'label[team]:"alpha","__unallocated__"',
        'label[app.kubernetes.io/name]!:"web","__unallocated__"',
        'controller:"__unallocated__"',
        'controllerKind!:"__unallocated__"',
        'project:"__unallocated__"',
        'project!:"p0","__unallocated__"',
        'namespace:"__unallocated__"',
    ]
    one = st.sampled_from(conditions)
    return st.one_of(
        one,
        st.tuples(one, one).map(lambda pair: f"{pair[0]}+{pair[1]}"),
        st.tuples(one, one).map(lambda pair: f"{pair[0]}|{pair[1]}"),
    )


def windows(fs: FactSet, *, full: bool = False) -> st.SearchStrategy[Window]:
    """The whole generated span, or (unless `full`) a sub-range of hours, possibly empty of facts."""
    whole = Window(at(BASE), at(BASE + HOUR * fs.segments))
    if full:
        return st.just(whole)
    pairs = st.tuples(st.integers(0, fs.segments), st.integers(1, fs.segments + 1)).filter(
        lambda pair: pair[0] < pair[1]
    )
    sub = pairs.map(lambda pair: Window(at(BASE + HOUR * pair[0]), at(BASE + HOUR * pair[1])))
    return st.one_of(st.just(whole), sub)


@st.composite
def cost_queries(
    draw: st.DrawFn,
    fs: FactSet,
    *,
    filtered: bool | None = None,
    full_window: bool = False,
    method: Method | None = None,
    **fixed: Any,
) -> CostQuery:
    """A random CostQuery over `fs`; `filtered` forces a filter on / off; `fixed` pins fields."""
    aggregate = tuple(draw(st.lists(st.sampled_from(AGGREGATE_CHOICES), min_size=1, max_size=2, unique=True)))
    use_filter = draw(st.booleans()) if filtered is None else filtered
    values: dict[str, Any] = {
        "window": draw(windows(fs, full=full_window)),
        "step_seconds": draw(st.sampled_from([None, HOUR, 2 * HOUR, 86400])),
        "aggregate": aggregate,
        "filter": parse_filter(draw(filter_texts(fs))) if use_filter else None,
        "method": method if method is not None else draw(st.sampled_from(COST_METHODS)),
        "idle": draw(st.booleans()),
        "share_idle": draw(st.booleans()),
        "share_split": draw(st.sampled_from(list(ShareSplit))),
        "idle_by_node": draw(st.booleans()),
    }
    values.update(fixed)
    return CostQuery(**values)


@st.composite
def usage_periods(draw: st.DrawFn, fs: FactSet) -> tuple[CalendarPeriod, ...]:
    """One period for the whole day, or two periods split at an hour boundary (distinct labels)."""
    day = Window(at(BASE), at(BASE + 86400))
    if draw(st.booleans()):
        return (CalendarPeriod(day, date(2025, 6, 1), date(2025, 6, 1)),)
    split = BASE + HOUR * draw(st.integers(1, fs.segments))
    return (
        CalendarPeriod(Window(at(BASE), at(split)), date(2025, 6, 1), date(2025, 6, 1)),
        CalendarPeriod(Window(at(split), at(BASE + 86400)), date(2025, 6, 2), date(2025, 6, 2)),
    )


@st.composite
def usage_queries(draw: st.DrawFn, fs: FactSet) -> UsageQuery:
    """A random UsageQuery over `fs` (names taken from the data, or unknown)."""
    kind = draw(st.sampled_from(list(UsageKind)))
    if kind == UsageKind.PROJECT:
        name: str | None = draw(st.sampled_from([*fs.projects, "nope"]))
    elif kind == UsageKind.NAMESPACE:
        name = draw(st.sampled_from([*fs.namespaces, "nope"]))
    elif kind == UsageKind.CLUSTER:
        name = draw(st.sampled_from([*fs.clusters, "nope"]))
    else:
        name = None
    return UsageQuery(
        periods=draw(usage_periods(fs)),
        kind=kind,
        item=draw(st.sampled_from(list(Item))),
        method=draw(st.sampled_from(list(Method))),
        name=name,
        project=draw(st.one_of(st.none(), st.sampled_from(fs.projects))),
    )
