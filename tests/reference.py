"""A plain-Python reference implementation of the cost rules: the oracle the engine is tested against.

The engine (`kubetally.engine.pipeline`, `kubetally.engine.usage`) computes costs with vectorised
DuckDB SQL. This module computes the same numbers with dicts and loops, written independently from
the rules below, so that property tests can compare the two on random fact sets. It favours being
easy to audit over being fast: every rule is one small, commented step.

Inputs are fact records (dicts keyed by the column names of `kubetally.facts.schema`), a
`PriceBook`, and a `CostQuery` / `UsageQuery`. Money and quantities are floats. Units: integrals are
core-seconds and byte-seconds; hours = seconds / 3600; GiB = 2**30 bytes.

The rules (numbered as in the brief the engine is built from):

R1  each segment is priced by `book.versions[book.index_at(segment_start)]`.
R2  node hourly price P: first matching node rule, else `hourly_price_seconds / running_seconds`,
    else `cpu_core_hour * cap_cores + memory_gib_hour * cap_gib` (capacities averaged over the
    running time). A node that did not run costs 0.
R3  weights: the version's (w_cpu, w_mem), else the node's unit-price split (0.5 if both are 0).
R4  node cost = P * hours run, split into a CPU pool and a memory pool; rate = pool / capacity.
R5  container cost = basis quantity (Request / Usage / Effective) * rate of its node-segment.
R6  per node-segment and resource, costs above the pool are scaled down to the pool; idle is the rest.
R7  a container fact without a node fact is priced at unit prices, outside conservation.
R8  pod cost in a segment = Σ its containers' costs.
R9  idle is shared per segment and domain (cluster, or node with idle_by_node), weighted by pod
    cost or evenly per pod, over ALL pods (before any filter); what cannot be shared is
    "unallocated idle".
R10 the filter keeps pods whose attributes match (`matches` below, written from the grammar's rules).
R11 facts belong to the step containing their segment_start; facts outside the window are ignored.
R12 workload rows per step and group; R13 idle rows; R14 the unallocated idle row;
R15 custom cost; R16 cost ratio; R17 averages; R18 step totals.
U1-U4 the Alauda usage rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from kubetally.domain.aggregation import AggregateKey, Dimension
from kubetally.domain.filters import AllOf, AnyOf, Filter, Op
from kubetally.domain.labels import sanitize_label_key
from kubetally.domain.prices import PriceBook, PriceVersion
from kubetally.domain.vocabulary import Item, Method, ShareSplit, UsageKind

GIB = float(2**30)
HOUR = 3600.0

UNALLOCATED = "__unallocated__"
IDLE_KEY = "__idle__"
IDLE_NODE_PREFIX = "idle:"
UNALLOCATED_IDLE_KEY = "__unallocated_idle__"

WORKLOAD = "workload"
IDLE = "idle"
UNALLOCATED_IDLE = "unallocated_idle"

Record = Mapping[str, Any]


# --- small helpers --------------------------------------------------------------------------------


def _num(value: object) -> float:
    """A fact's numeric column as float; NULL counts as 0."""
    return 0.0 if value is None else float(value)  # type: ignore[arg-type]


def _labels(value: object) -> dict[str, str]:
    return dict(value) if value else {}  # type: ignore[call-overload]


def _version(book: PriceBook, segment_start: int) -> PriceVersion:
    """R1: the price version in force at the segment's start."""
    return book.versions[book.index_at(segment_start)]


def _basis(fact: Record, method: Method) -> tuple[float, float]:
    """R5: (q_cpu core-seconds, q_mem byte-seconds) of a container fact by method."""
    if method == Method.REQUEST:
        return _num(fact.get("cpu_request_core_seconds")), _num(fact.get("memory_request_byte_seconds"))
    if method == Method.USAGE:
        return _num(fact.get("cpu_usage_core_seconds")), _num(fact.get("memory_usage_byte_seconds"))
    if method == Method.EFFECTIVE:
        return _num(fact.get("cpu_effective_core_seconds")), _num(fact.get("memory_effective_byte_seconds"))
    raise ValueError(f"method {method!r} has no container basis")


def _in_window(segment_start: int, start: int, end: int) -> bool:
    """R11: a fact is in [start, end) by its segment_start."""
    return start <= segment_start < end


def _node_key(fact: Record) -> tuple[str, str, int, int]:
    return (fact["cluster"], fact["node"], int(fact["segment_start"]), int(fact["segment_end"]))


def _pod_identity(fact: Record) -> tuple[Any, Any, Any, Any]:
    """R8: a pod is (cluster, namespace, pod, pod_uid)."""
    return (fact.get("cluster"), fact.get("namespace"), fact.get("pod"), fact.get("pod_uid"))


def _present(value: object) -> bool:
    return value is not None and value != ""


# --- R1-R7: pricing nodes and containers ------------------------------------------------------------


@dataclass
class NodeSegment:
    """One node fact, priced (R2-R4), with its containers' costs after scaling (R6)."""

    cluster: str
    node: str
    segment_start: int
    segment_end: int
    provider_id: str | None
    node_cost: float
    cpu_pool: float
    mem_pool: float
    cpu_rate: float
    mem_rate: float
    raw_cpu: float = 0.0
    raw_mem: float = 0.0
    workload_cpu: float = 0.0
    workload_mem: float = 0.0
    idle_cpu: float = 0.0
    idle_mem: float = 0.0
    overcommitted: bool = False

    @property
    def workload(self) -> float:
        return self.workload_cpu + self.workload_mem

    @property
    def idle(self) -> float:
        return self.idle_cpu + self.idle_mem


@dataclass
class ContainerCost:
    """One container fact with its basis quantities and its cost (R5-R7)."""

    fact: Record
    q_cpu: float
    q_mem: float
    cpu_cost: float
    mem_cost: float
    matched: bool

    @property
    def cost(self) -> float:
        return self.cpu_cost + self.mem_cost


def price_node(fact: Record, version: PriceVersion) -> NodeSegment:
    """R2-R4 for one node fact."""
    running = _num(fact.get("running_seconds"))
    cpu_capacity = _num(fact.get("cpu_capacity_core_seconds"))
    mem_capacity = _num(fact.get("memory_capacity_byte_seconds"))
    cpu_core_hour = float(version.cpu_core_hour)
    memory_gib_hour = float(version.memory_gib_hour)
    if running > 0:
        cap_cores = cpu_capacity / running
        cap_gib = mem_capacity / running / GIB
    else:
        cap_cores = 0.0
        cap_gib = 0.0
    # R2: the node's hourly price.
    rule_price = version.node_rule_price(_labels(fact.get("labels")))
    hourly_price_seconds = fact.get("hourly_price_seconds")
    if rule_price is not None:
        price = float(rule_price)
    elif hourly_price_seconds is not None and running > 0:
        price = float(hourly_price_seconds) / running  # type: ignore[arg-type]
    else:
        price = cpu_core_hour * cap_cores + memory_gib_hour * cap_gib
    # R3: weights.
    if version.weights is not None:
        w_cpu, w_mem = float(version.weights[0]), float(version.weights[1])
    else:
        a = cpu_core_hour * cap_cores
        b = memory_gib_hour * cap_gib
        w_cpu = 0.5 if a + b == 0 else a / (a + b)
        w_mem = 1.0 - w_cpu
    # R4: cost, pools, rates.
    node_cost = price * running / HOUR if running > 0 else 0.0
    cpu_pool = w_cpu * node_cost
    mem_pool = w_mem * node_cost
    cpu_rate = cpu_pool / cpu_capacity if cpu_capacity != 0 else 0.0
    mem_rate = mem_pool / mem_capacity if mem_capacity != 0 else 0.0
    return NodeSegment(
        cluster=fact["cluster"],
        node=fact["node"],
        segment_start=int(fact["segment_start"]),
        segment_end=int(fact["segment_end"]),
        provider_id=fact.get("provider_id"),
        node_cost=node_cost,
        cpu_pool=cpu_pool,
        mem_pool=mem_pool,
        cpu_rate=cpu_rate,
        mem_rate=mem_rate,
    )


@dataclass
class Priced:
    """Every in-window node fact and container fact, priced by one book and one method."""

    nodes: dict[tuple[str, str, int, int], NodeSegment]
    containers: list[ContainerCost]
    unmatched: int = 0

    @property
    def overcommitted(self) -> int:
        return sum(1 for segment in self.nodes.values() if segment.overcommitted)


def price_facts(
    containers: Iterable[Record],
    nodes: Iterable[Record],
    book: PriceBook,
    method: Method,
    start: int | None = None,
    end: int | None = None,
) -> Priced:
    """R1-R7 for every fact whose segment_start is in [start, end) (all facts when None)."""
    lo = -(2**62) if start is None else start
    hi = 2**62 if end is None else end

    node_segments: dict[tuple[str, str, int, int], NodeSegment] = {}
    for fact in nodes:
        if not _in_window(int(fact["segment_start"]), lo, hi):
            continue
        node_segments[_node_key(fact)] = price_node(fact, _version(book, int(fact["segment_start"])))

    # R5 / R7: raw costs.
    costs: list[ContainerCost] = []
    members: dict[tuple[str, str, int, int], list[ContainerCost]] = {}
    unmatched = 0
    for fact in containers:
        if not _in_window(int(fact["segment_start"]), lo, hi):
            continue
        q_cpu, q_mem = _basis(fact, method)
        key = _node_key(fact)
        segment = node_segments.get(key)
        if segment is None:
            version = _version(book, int(fact["segment_start"]))
            cpu_cost = q_cpu / HOUR * float(version.cpu_core_hour)
            mem_cost = q_mem / HOUR / GIB * float(version.memory_gib_hour)
            costs.append(ContainerCost(fact, q_cpu, q_mem, cpu_cost, mem_cost, matched=False))
            unmatched += 1
            continue
        cost = ContainerCost(fact, q_cpu, q_mem, q_cpu * segment.cpu_rate, q_mem * segment.mem_rate, True)
        costs.append(cost)
        members.setdefault(key, []).append(cost)

    # R6: conservation per node-segment and resource.
    for key, segment in node_segments.items():
        group = members.get(key, [])
        cpu_sum = sum(cost.cpu_cost for cost in group)
        segment.raw_cpu = cpu_sum
        if cpu_sum > segment.cpu_pool:
            factor = segment.cpu_pool / cpu_sum
            for cost in group:
                cost.cpu_cost *= factor
            segment.overcommitted = True
        mem_sum = sum(cost.mem_cost for cost in group)
        segment.raw_mem = mem_sum
        if mem_sum > segment.mem_pool:
            factor = segment.mem_pool / mem_sum
            for cost in group:
                cost.mem_cost *= factor
            segment.overcommitted = True
        segment.workload_cpu = sum(cost.cpu_cost for cost in group)
        segment.workload_mem = sum(cost.mem_cost for cost in group)
        segment.idle_cpu = max(0.0, segment.cpu_pool - segment.workload_cpu)
        segment.idle_mem = max(0.0, segment.mem_pool - segment.workload_mem)
    return Priced(node_segments, costs, unmatched)


# --- R8-R9: pods and idle shares ----------------------------------------------------------------------


@dataclass
class PodSegment:
    """One pod in one segment (R8): its attributes, containers, cost and idle share (R9)."""

    identity: tuple[Any, ...]
    segment: tuple[int, int]
    row: dict[str, Any]
    containers: list[ContainerCost] = field(default_factory=list)
    idle_share: float = 0.0

    @property
    def cost(self) -> float:
        return sum(container.cost for container in self.containers)

    @property
    def cluster(self) -> str:
        return self.row["cluster"]

    @property
    def node(self) -> str:
        return self.row["node"]


def _filter_row(fact: Record) -> dict[str, Any]:
    """R10: the attributes a filter sees (and aggregation reads)."""
    return {
        "cluster": fact.get("cluster"),
        "node": fact.get("node"),
        "namespace": fact.get("namespace"),
        "project": fact.get("project"),
        "pod": fact.get("pod"),
        "pod_uid": fact.get("pod_uid"),
        "controller_kind": fact.get("controller_kind"),
        "controller": fact.get("controller"),
        "labels": _labels(fact.get("labels")),
    }


#: R10: filter field name -> the pod attribute it reads (labels aside).
_FILTER_ATTRIBUTE = {
    "cluster": "cluster",
    "node": "node",
    "namespace": "namespace",
    "controllerName": "controller",
    "controllerKind": "controller_kind",
    "pod": "pod",
    "project": "project",
}


def matches(node: Filter, row: Mapping[str, Any]) -> bool:
    """R10: does the filter keep a pod with attributes `row` (as `_filter_row` builds them)?

    Written from the rules of the filter grammar, not from `kubetally.domain.matching`: `+` is AND
    (empty: true), `|` is OR (empty: false); a condition reads one attribute (`label[k]` reads the
    label under the sanitized key), a positive operator holds when ANY value matches and a negated
    one when NONE does; a missing attribute reads as "". With `:` / `!:`, a value matches when it
    equals the attribute, and the value `__unallocated__` also matches where `group_part` would show
    `__unallocated__` (the attribute is missing or empty). Substring operators test plain text.
    """
    if isinstance(node, AllOf):
        return all(matches(child, row) for child in node.children)
    if isinstance(node, AnyOf):
        return any(matches(child, row) for child in node.children)
    if node.label_key is not None:
        raw = row["labels"].get(sanitize_label_key(node.label_key))
    else:
        raw = row[_FILTER_ATTRIBUTE[node.field.value]]
    text = raw if _present(raw) else ""
    hits = []
    for wanted in node.values:
        if node.op in (Op.EQ, Op.NE):
            hits.append(text == wanted or (wanted == UNALLOCATED and not _present(raw)))
        elif node.op in (Op.CONTAINS, Op.NOT_CONTAINS):
            hits.append(wanted in text)
        elif node.op in (Op.PREFIX, Op.NOT_PREFIX):
            hits.append(text[: len(wanted)] == wanted)
        else:
            hits.append(len(wanted) <= len(text) and text[len(text) - len(wanted) :] == wanted)
    return not any(hits) if node.op.value.startswith("!") else any(hits)


def build_pods(priced: Priced) -> dict[tuple[Any, ...], PodSegment]:
    """R8: group container costs by (segment, pod identity). A pod's attributes come from its
    first container fact in the segment (the generator keeps them equal across containers)."""
    pods: dict[tuple[Any, ...], PodSegment] = {}
    for container in priced.containers:
        fact = container.fact
        segment = (int(fact["segment_start"]), int(fact["segment_end"]))
        identity = _pod_identity(fact)
        key = (segment, identity)
        if key not in pods:
            pods[key] = PodSegment(identity=identity, segment=segment, row=_filter_row(fact))
        pods[key].containers.append(container)
    return pods


def _domain_of_node(segment: NodeSegment, idle_by_node: bool) -> tuple[Any, ...]:
    return (segment.cluster, segment.node) if idle_by_node else (segment.cluster,)


def _domain_of_pod(pod: PodSegment, idle_by_node: bool) -> tuple[Any, ...]:
    return (pod.cluster, pod.node) if idle_by_node else (pod.cluster,)


def share_idle(
    priced: Priced, pods: dict[tuple[Any, ...], PodSegment], split: ShareSplit, idle_by_node: bool
) -> dict[tuple[int, int], float]:
    """R9: set every pod's `idle_share`; return the unallocated idle per segment.

    A domain-segment is (segment, cluster) or (segment, cluster, node). Its idle is the Σ idle of
    its node-segments; its pods are all pods with a container fact in it (before any filter).
    """
    domain_idle: dict[tuple[Any, ...], float] = {}
    for segment in priced.nodes.values():
        key = ((segment.segment_start, segment.segment_end), _domain_of_node(segment, idle_by_node))
        domain_idle[key] = domain_idle.get(key, 0.0) + segment.idle

    domain_pods: dict[tuple[Any, ...], list[PodSegment]] = {}
    for pod in pods.values():
        key = (pod.segment, _domain_of_pod(pod, idle_by_node))
        domain_pods.setdefault(key, []).append(pod)

    unallocated: dict[tuple[int, int], float] = {}
    for key, idle in domain_idle.items():
        members = domain_pods.get(key, [])
        segment = key[0]
        if split == ShareSplit.EVEN:
            if not members:
                unallocated[segment] = unallocated.get(segment, 0.0) + idle
                continue
            for pod in members:
                pod.idle_share = idle / len(members)
        else:
            total = sum(pod.cost for pod in members)
            if total == 0:
                unallocated[segment] = unallocated.get(segment, 0.0) + idle
                continue
            for pod in members:
                pod.idle_share = idle * pod.cost / total
    return unallocated


# --- R11-R18: steps, groups and rows ---------------------------------------------------------------------


def cut_sets(start: int, end: int, step: int | None, tz: tzinfo = UTC) -> list[tuple[int, int]]:
    """R11: the sets [start, end) is cut into by `step` seconds, as unix-second pairs.

    Written from the rule, not from `kubetally.domain.sets`: boundaries lie on the step's natural grid in
    `tz`, and the first and last sets are clipped to the window.
      - step = N weeks (a multiple of 7 days): local midnights of Mondays, every N-th week from 1970-01-05;
      - step = N days otherwise: local midnights of every N-th local date from 1970-01-01;
      - step = N hours with 24 % N == 0: local midnight + k*N hours (elapsed), within each local day;
      - any other whole-hour step: multiples of N hours since the Unix epoch.
    Candidate boundaries are walked day by day over the window (slow and obvious on purpose).
    """
    if step is None:
        return [(start, end)]
    cuts: set[int] = set()
    day, last_day = _local_date(start, tz) - timedelta(days=1), _local_date(end, tz) + timedelta(days=1)
    while day <= last_day:
        midnight = int(datetime.combine(day, time(0), tzinfo=tz).timestamp())
        next_midnight = int(datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).timestamp())
        offset_days = (day - date(1970, 1, 1)).days
        if step % (7 * 86400) == 0:
            weeks = step // (7 * 86400)
            if day.weekday() == 0 and ((day - date(1970, 1, 5)).days // 7) % weeks == 0:
                cuts.add(midnight)
        elif step % 86400 == 0:
            if offset_days % (step // 86400) == 0:
                cuts.add(midnight)
        elif 86400 % step == 0:
            cuts.update(range(midnight, next_midnight, step))
        day += timedelta(days=1)
    if step % 86400 != 0 and 86400 % step != 0:
        cuts.update(range(start - start % step, end + step, step))
    inner = sorted(c for c in cuts if start < c < end)
    bounds = [start, *inner, end]
    return list(itertools.pairwise(bounds))


def _local_date(t: int, tz: tzinfo) -> date:
    return datetime.fromtimestamp(t, tz).date()


def _steps(query: Any) -> list[tuple[int, int]]:
    """R11: the query's sets as (start, end) unix seconds."""
    window = query.window
    return cut_sets(window.start_epoch(), window.end_epoch(), query.step_seconds, getattr(query, "time_zone", UTC))


def _step_of(segment_start: int, steps: Sequence[tuple[int, int]]) -> tuple[int, int] | None:
    for step in steps:
        if step[0] <= segment_start < step[1]:
            return step
    return None


def group_part(key: AggregateKey, row: Mapping[str, Any]) -> tuple[Any, str]:
    """R12: (identity, displayed value) of one aggregate key for a pod's attributes."""
    dimension = key.dimension
    if dimension == Dimension.POD:
        identity: Any = (row["cluster"], row["namespace"], row["pod"], row["pod_uid"])
        shown = row["pod"]
    elif dimension == Dimension.NAMESPACE:
        identity = shown = row["namespace"]
    elif dimension == Dimension.CONTROLLER:
        identity = (row["cluster"], row["namespace"], row["controller_kind"], row["controller"])
        shown = row["controller"]
    elif dimension == Dimension.CONTROLLER_KIND:
        identity = shown = row["controller_kind"]
    elif dimension == Dimension.NODE:
        identity = (row["cluster"], row["node"])
        shown = row["node"]
    elif dimension == Dimension.CLUSTER:
        identity = shown = row["cluster"]
    elif dimension == Dimension.PROJECT:
        identity = shown = row["project"]
    elif dimension == Dimension.LABEL:
        assert key.label_key is not None
        identity = shown = row["labels"].get(sanitize_label_key(key.label_key))
    else:  # pragma: no cover - a new dimension needs a rule here
        raise ValueError(f"unknown dimension {dimension!r}")
    if not _present(shown):
        return (UNALLOCATED,), UNALLOCATED
    return identity, shown


def group_of(aggregate: Sequence[AggregateKey], row: Mapping[str, Any]) -> tuple[tuple[Any, ...], tuple[str, ...]]:
    """R12: (group identity, row key) of a pod under the query's aggregate keys."""
    parts = [group_part(key, row) for key in aggregate]
    return tuple(part[0] for part in parts), tuple(part[1] for part in parts)


@dataclass
class _Acc:
    """An accumulating row."""

    step: tuple[int, int]
    kind: str
    key: tuple[str, ...]
    identity: tuple[Any, ...]
    cost: float = 0.0
    shared_idle_cost: float = 0.0
    cpu_request: float = 0.0
    cpu_usage: float = 0.0
    mem_request: float = 0.0
    mem_usage: float = 0.0
    q_cpu: float = 0.0
    q_mem: float = 0.0
    active_start: float | None = None
    active_end: float | None = None
    members: int = 0
    properties: dict[str, Any] | None = None


_PROPERTY_COLUMNS = {
    "cluster": "cluster",
    "node": "node",
    "namespace": "namespace",
    "pod": "pod",
    "podUID": "pod_uid",
    "controllerKind": "controller_kind",
    "controller": "controller",
    "project": "project",
}


def _merge_properties(acc: _Acc, row: Mapping[str, Any]) -> None:
    """Keep the dimensions every member of the row shares (a None value is not shared)."""
    mine = {name: row[column] for name, column in _PROPERTY_COLUMNS.items() if _present(row[column])}
    if acc.properties is None:
        acc.properties = mine
        return
    acc.properties = {name: value for name, value in acc.properties.items() if mine.get(name) == value}


@dataclass
class _Computed:
    """Everything one book gives for one query."""

    rows: dict[tuple[Any, ...], _Acc]
    steps: list[tuple[int, int]]
    node_cost: dict[tuple[int, int], float]
    idle_cost: dict[tuple[int, int], float]
    workload_cost: dict[tuple[int, int], float]
    priced: Priced


def _compute(containers: Sequence[Record], nodes: Sequence[Record], book: PriceBook, query: Any) -> _Computed:
    steps = _steps(query)
    start, end = query.window.start_epoch(), query.window.end_epoch()
    priced = price_facts(containers, nodes, book, query.method, start, end)
    pods = build_pods(priced)
    unallocated = share_idle(priced, pods, query.share_split, query.idle_by_node)
    filtered = query.filter is not None

    rows: dict[tuple[Any, ...], _Acc] = {}

    def acc(step: tuple[int, int], kind: str, key: tuple[str, ...], identity: tuple[Any, ...]) -> _Acc:
        full = (step[0], kind, identity)
        if full not in rows:
            rows[full] = _Acc(step=step, kind=kind, key=key, identity=full)
        return rows[full]

    # R18 totals (before any filter).
    node_cost: dict[tuple[int, int], float] = dict.fromkeys(steps, 0.0)
    idle_cost: dict[tuple[int, int], float] = dict.fromkeys(steps, 0.0)
    workload_cost: dict[tuple[int, int], float] = dict.fromkeys(steps, 0.0)
    for segment in priced.nodes.values():
        step = _step_of(segment.segment_start, steps)
        assert step is not None
        node_cost[step] += segment.node_cost
        idle_cost[step] += segment.idle
    for pod in pods.values():
        step = _step_of(pod.segment[0], steps)
        assert step is not None
        workload_cost[step] += pod.cost

    # R12: workload rows of the kept pods (R10).
    for pod in pods.values():
        if filtered and not matches(query.filter, pod.row):
            continue
        step = _step_of(pod.segment[0], steps)
        assert step is not None
        identity, key = group_of(query.aggregate, pod.row)
        row = acc(step, WORKLOAD, key, identity)
        row.members += 1
        row.cost += pod.cost
        if query.share_idle:
            row.cost += pod.idle_share
            row.shared_idle_cost += pod.idle_share
        _merge_properties(row, pod.row)
        for container in pod.containers:
            fact = container.fact
            row.q_cpu += container.q_cpu
            row.q_mem += container.q_mem
            row.cpu_request += _num(fact.get("cpu_request_core_seconds"))
            row.cpu_usage += _num(fact.get("cpu_usage_core_seconds"))
            row.mem_request += _num(fact.get("memory_request_byte_seconds"))
            row.mem_usage += _num(fact.get("memory_usage_byte_seconds"))
            first, last = _num(fact.get("active_start")), _num(fact.get("active_end"))
            row.active_start = first if row.active_start is None else min(row.active_start, first)
            row.active_end = last if row.active_end is None else max(row.active_end, last)

    # R13: idle rows.
    if query.idle and not query.share_idle:
        if not filtered:
            for segment in priced.nodes.values():
                step = _step_of(segment.segment_start, steps)
                assert step is not None
                if query.idle_by_node:
                    row = acc(step, IDLE, (IDLE_NODE_PREFIX + segment.node,), (segment.cluster, segment.node))
                else:
                    row = acc(step, IDLE, (IDLE_KEY,), (IDLE_KEY,))
                row.cost += segment.idle
        else:
            for pod in pods.values():
                if not matches(query.filter, pod.row):
                    continue
                step = _step_of(pod.segment[0], steps)
                assert step is not None
                if query.idle_by_node:
                    row = acc(step, IDLE, (IDLE_NODE_PREFIX + pod.node,), (pod.cluster, pod.node))
                else:
                    row = acc(step, IDLE, (IDLE_KEY,), (IDLE_KEY,))
                row.cost += pod.idle_share

    # R14: the unallocated idle row.
    if query.share_idle and not filtered:
        for segment, idle in unallocated.items():
            step = _step_of(segment[0], steps)
            assert step is not None
            row = acc(step, UNALLOCATED_IDLE, (UNALLOCATED_IDLE_KEY,), (UNALLOCATED_IDLE_KEY,))
            row.cost += idle

    return _Computed(rows, steps, node_cost, idle_cost, workload_cost, priced)


def _emitted(row: _Acc) -> bool:
    """Workload rows appear whenever the group has members; idle rows only when their cost > 0."""
    if row.kind == WORKLOAD:
        return row.members > 0
    return row.cost > 0


def _averages(row: _Acc) -> dict[str, float]:
    """R17: Σ integral / active span (0 for a zero span and for idle rows)."""
    if row.kind != WORKLOAD or row.active_start is None or row.active_end is None:
        span = 0.0
    else:
        span = row.active_end - row.active_start
    if span <= 0:
        return {
            "cpu_core_request_average": 0.0,
            "cpu_core_usage_average": 0.0,
            "ram_byte_request_average": 0.0,
            "ram_byte_usage_average": 0.0,
        }
    return {
        "cpu_core_request_average": row.cpu_request / span,
        "cpu_core_usage_average": row.cpu_usage / span,
        "ram_byte_request_average": row.mem_request / span,
        "ram_byte_usage_average": row.mem_usage / span,
    }


def reference_costs(
    containers: Sequence[Record],
    nodes: Sequence[Record],
    book: PriceBook,
    query: Any,
    custom_book: PriceBook | None = None,
) -> list[dict[str, Any]]:
    """The rows of a /v2/cost query (R1-R17), sorted by (step_start, kind, key).

    Each row: step_start, step_end, kind, key, identity (step_start, kind, group identity),
    properties (the dimensions all members share), cost, shared_idle_cost, cost_ratio, custom_cost,
    the four averages, cpu_core_hours, memory_gib_hours.

    The row set is the main book's (R12/R13/R14); `custom_cost` is the same row under
    `custom_book` (0 when that book gives the row nothing), None without a custom book.
    """
    main = _compute(containers, nodes, book, query)
    custom = _compute(containers, nodes, custom_book, query) if custom_book is not None else None
    out: list[dict[str, Any]] = []
    for identity, row in main.rows.items():
        if not _emitted(row):
            continue
        total = main.node_cost[row.step]
        custom_cost: float | None = None
        if custom is not None:
            other = custom.rows.get(identity)
            custom_cost = other.cost if other is not None else 0.0
        workload = row.kind == WORKLOAD
        out.append(
            {
                "step_start": row.step[0],
                "step_end": row.step[1],
                "kind": row.kind,
                "key": row.key,
                "identity": identity,
                "properties": dict(row.properties or {}),
                "cost": row.cost,
                "shared_idle_cost": row.shared_idle_cost,
                "cost_ratio": row.cost / total if total != 0 else 0.0,
                "custom_cost": custom_cost,
                **_averages(row),
                "cpu_core_hours": row.q_cpu / HOUR if workload else 0.0,
                "memory_gib_hours": row.q_mem / HOUR / GIB if workload else 0.0,
            }
        )
    out.sort(key=lambda r: (r["step_start"], r["kind"], r["key"]))
    return out


def reference_step_totals(
    containers: Sequence[Record],
    nodes: Sequence[Record],
    book: PriceBook,
    query: Any,
    custom_book: PriceBook | None = None,
) -> list[dict[str, Any]]:
    """R18: per step of the query (every step, also empty ones): node_cost, workload_cost (Σ every
    pod's cost, before any filter, including unmatched containers), idle_cost (Σ node idle) and
    custom_node_cost (None without a custom book)."""
    main = _compute(containers, nodes, book, query)
    custom = _compute(containers, nodes, custom_book, query) if custom_book is not None else None
    return [
        {
            "step_start": step[0],
            "step_end": step[1],
            "node_cost": main.node_cost[step],
            "workload_cost": main.workload_cost[step],
            "idle_cost": main.idle_cost[step],
            "custom_node_cost": custom.node_cost[step] if custom is not None else None,
        }
        for step in main.steps
    ]


def reference_diagnostics(
    containers: Sequence[Record], nodes: Sequence[Record], book: PriceBook, query: Any
) -> dict[str, int]:
    """Overcommitted node-segments (R6) and unmatched container facts (R7) in the query's window."""
    start, end = query.window.start_epoch(), query.window.end_epoch()
    priced = price_facts(containers, nodes, book, query.method, start, end)
    return {"overcommitted_node_segments": priced.overcommitted, "unmatched_container_facts": priced.unmatched}


def reference_node_costs(
    containers: Sequence[Record], nodes: Sequence[Record], book: PriceBook, method: Method = Method.REQUEST
) -> dict[tuple[str, str, int, int], dict[str, float]]:
    """Per node-segment (cluster, node, segment_start, segment_end): node_cost, workload_cost (Σ its
    matched containers' cost after R6 scaling), idle (never negative), and overcommitted."""
    priced = price_facts(containers, nodes, book, method)
    return {
        key: {
            "node_cost": segment.node_cost,
            "workload_cost": segment.workload,
            "idle": segment.idle,
            "overcommitted": segment.overcommitted,
        }
        for key, segment in priced.nodes.items()
    }


# --- U1-U4: Alauda usage ------------------------------------------------------------------------------


def _usage_group(kind: UsageKind, fact: Record) -> tuple[str, str, str]:
    """U3: (project, cluster, namespace) of a fact under the usage kind; None project → ""."""
    project = fact.get("project") or ""
    cluster = fact.get("cluster") or ""
    namespace = fact.get("namespace") or ""
    if kind in (UsageKind.PROJECT, UsageKind.PROJECT_ALL):
        return (project, cluster, "")
    if kind in (UsageKind.NAMESPACE, UsageKind.NAMESPACE_ALL):
        return (project, cluster, namespace)
    return ("", cluster, "")


def _usage_selected(kind: UsageKind, name: str | None, group: tuple[str, str, str]) -> bool:
    """U3: a non-`_all` kind keeps only the rows of the named project / namespace / cluster."""
    project, cluster, namespace = group
    if kind == UsageKind.PROJECT:
        return project == name
    if kind == UsageKind.NAMESPACE:
        return namespace == name
    if kind == UsageKind.CLUSTER:
        return cluster == name
    return True


def reference_usage(
    containers: Sequence[Record],
    nodes: Sequence[Record],
    volumes: Sequence[Record],
    quotas: Sequence[Record],
    book: PriceBook,
    query: Any,
) -> list[dict[str, Any]]:
    """The Alauda usage rows (U1-U4), as dicts with the fields of `UsageRow`.

    Each fact lands in the period containing its segment_start (U1; facts in no period are ignored)
    and in the group of U3; rows exist for groups with at least one fact in the period.
    """
    periods = list(query.periods)
    item = Item(query.item)
    method = Method(query.method)
    kind = UsageKind(query.kind)

    def period_of(segment_start: int) -> int | None:
        for index, period in enumerate(periods):
            if period.window.start_epoch() <= segment_start < period.window.end_epoch():
                return index
        return None

    def wanted(fact: Record) -> bool:
        return query.project is None or (fact.get("project") or "") == query.project

    # (period index, group) -> [usage, cost]
    sums: dict[tuple[int, tuple[str, str, str]], list[float]] = {}

    def add(fact: Record, usage: float, cost: float) -> None:
        index = period_of(int(fact["segment_start"]))
        if index is None or not wanted(fact):
            return
        key = (index, _usage_group(kind, fact))
        total = sums.setdefault(key, [0.0, 0.0])
        total[0] += usage
        total[1] += cost

    if method == Method.PROJECT_QUOTA:
        # U2: quota facts, priced at unit prices.
        for fact in quotas:
            version = _version(book, int(fact["segment_start"]))
            if item == Item.CPU:
                usage = _num(fact.get("cpu_core_seconds")) / HOUR
                add(fact, usage, usage * float(version.cpu_core_hour))
            elif item == Item.MEMORY:
                usage = _num(fact.get("memory_byte_seconds")) / HOUR / GIB
                add(fact, usage, usage * float(version.memory_gib_hour))
            else:
                usage = _num(fact.get("storage_byte_seconds")) / HOUR / GIB
                add(fact, usage, usage * float(version.storage_gib_hour))
    elif item == Item.STORAGE:
        column = {
            Method.REQUEST: "request_byte_seconds",
            Method.USAGE: "used_byte_seconds",
            Method.EFFECTIVE: "effective_byte_seconds",
        }[method]
        for fact in volumes:
            version = _version(book, int(fact["segment_start"]))
            usage = _num(fact.get(column)) / HOUR / GIB
            add(fact, usage, usage * float(version.storage_price(fact.get("storage_class"))))
    else:
        # U2: container costs after R6 scaling over every container of the node-segment, no idle.
        priced = price_facts(containers, nodes, book, method)
        for container in priced.containers:
            if item == Item.CPU:
                add(container.fact, container.q_cpu / HOUR, container.cpu_cost)
            else:
                add(container.fact, container.q_mem / HOUR / GIB, container.mem_cost)

    rows: list[dict[str, Any]] = []
    for (index, group), (usage, cost) in sums.items():
        if not _usage_selected(kind, query.name, group):
            continue
        period = periods[index]
        rows.append(
            {
                "project": group[0],
                "cluster": group[1],
                "namespace": group[2],
                "item": item,
                "method": method,
                "usage": usage,
                "cost": cost,
                "currency": book.currency,
                "start": period.label_start(),
                "end": period.label_end(),
            }
        )
    rows.sort(key=lambda row: (row["start"], row["project"], row["cluster"], row["namespace"]))
    return rows
