"""The campaign's plain-Python oracle: the generator's exact facts, priced by `tests.reference`.

Why: every answer of the campaign is compared with numbers that owe nothing to the code under test.
Facts come from `kubetally.synthetic.expected_facts` (the generator's own model), per *piece*; pricing,
conservation and idle shares (R1-R9) from `tests.reference`; rows (R10-R17) are accumulated here per
set, mirroring `reference._compute`, because calling `reference_costs` for each of thousands of queries
would reprice a week of facts every time. `cross_check` compares the two on a sample of queries.

Pieces. The server prices per segment: a whole ledger hour, or a piece collected live (a window's
partial edge hours, and hours cut by a set boundary, e.g. daily sets in a +05:30 zone). Conservation
and idle sharing are per segment, so the oracle cuts the window at every whole hour and every set
boundary, and takes `expected_facts(cluster, a, b)` for each piece [a, b). A piece's pricing is cached
per (piece, method, share split, idle by node, book): only a window's edges are new pieces.

Nothing is collected after the server's now: a window reaching past it has facts until that minute
only (`CostQuestion.known`), while its sets keep their bounds.

Money in the book's currency; quantities: core-seconds and byte-seconds in facts, core-hours and
byte-hours (`ramByteHours`) in answers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubetally.domain.aggregation import AggregateKey
from kubetally.domain.prices import PriceBook
from kubetally.domain.vocabulary import Method, ShareSplit
from kubetally.synthetic import Cluster, ExpectedFacts, expected_facts
from tests import reference
from tests.campaign import filters
from tests.campaign.windows import Span

HOUR = 3600
EMPTY = ExpectedFacts([], [], [], [])


@dataclass
class PodPart:
    """One pod in one piece, priced: what its rows accumulate."""

    row: dict[str, Any]
    cost: float
    idle_share: float
    q_cpu: float
    q_mem: float
    cpu_request: float
    cpu_usage: float
    mem_request: float
    mem_usage: float
    active_start: float
    active_end: float


@dataclass
class Piece:
    """One segment [a, b) priced: node cost, idle per node, unallocated idle, pods."""

    node_cost: float
    node_idle: list[tuple[str, str, float]]  # (cluster, node, idle)
    unallocated_idle: float
    pods: list[PodPart]


@dataclass
class Row:
    """A row being accumulated (reference `_Acc`)."""

    kind: str
    key: tuple[str, ...]
    cost: float = 0.0
    shared_idle_cost: float = 0.0
    q_cpu: float = 0.0
    q_mem: float = 0.0
    cpu_request: float = 0.0
    cpu_usage: float = 0.0
    mem_request: float = 0.0
    mem_usage: float = 0.0
    active_start: float | None = None
    active_end: float | None = None
    members: int = 0
    properties: dict[str, Any] | None = None
    uids: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class CostQuestion:
    """A /v2/cost question as the oracle needs it."""

    sets: tuple[tuple[int, int], ...]
    aggregate: tuple[AggregateKey, ...]
    filter: filters.Node | None
    method: Method
    idle: bool
    share_idle: bool
    share_split: ShareSplit
    idle_by_node: bool
    custom: bool
    known: int  # facts end here (the server's minute, when the window reaches past now)


def cut(start: int, end: int, bounds: Iterable[int] = ()) -> list[tuple[int, int]]:
    """[start, end) cut at every whole hour and at `bounds`."""
    points = {start, end, *(b for b in bounds if start < b < end)}
    points.update(range(start - start % HOUR + HOUR, end, HOUR))
    ordered = sorted(points)
    return list(itertools.pairwise(ordered))


class Oracle:
    """Facts and priced pieces of one generated cluster, cached."""

    def __init__(self, cluster: Cluster, book: PriceBook, custom_book: PriceBook) -> None:
        self.cluster = cluster
        self.book = book
        self.custom_book = custom_book
        self._facts: dict[tuple[int, int], ExpectedFacts] = {}
        self._pieces: dict[tuple[int, int, Method, ShareSplit, bool, bool], Piece] = {}

    def facts(self, a: int, b: int) -> ExpectedFacts:
        """The generator's facts of [a, b) (a piece within one hour), cached."""
        spec = self.cluster.spec
        if b <= spec.start or a >= spec.end:
            return EMPTY
        found = self._facts.get((a, b))
        if found is None:
            found = self._facts[(a, b)] = expected_facts(self.cluster, a, b)
        return found

    def facts_of(self, pieces: Sequence[tuple[int, int]]) -> ExpectedFacts:
        parts = [self.facts(a, b) for a, b in pieces]
        return ExpectedFacts([c for p in parts for c in p.containers], [n for p in parts for n in p.nodes],
                             [v for p in parts for v in p.volumes], [q for p in parts for q in p.quotas])

    def piece(self, a: int, b: int, method: Method, split: ShareSplit, by_node: bool, custom: bool) -> Piece:
        key = (a, b, method, split, by_node, custom)
        found = self._pieces.get(key)
        if found is None:
            found = self._pieces[key] = self._price(a, b, method, split, by_node, custom)
        return found

    def _price(self, a: int, b: int, method: Method, split: ShareSplit, by_node: bool, custom: bool) -> Piece:
        facts = self.facts(a, b)
        priced = reference.price_facts(facts.containers, facts.nodes, self.custom_book if custom else self.book, method)
        pods = reference.build_pods(priced)
        unallocated = reference.share_idle(priced, pods, split, by_node)
        parts = []
        for pod in pods.values():
            sums = [0.0] * 6
            starts, ends = [], []
            for container in pod.containers:
                fact = container.fact
                values = (container.q_cpu, container.q_mem, fact["cpu_request_core_seconds"],
                          fact["cpu_usage_core_seconds"], fact["memory_request_byte_seconds"],
                          fact["memory_usage_byte_seconds"])
                sums = [total + float(value or 0.0) for total, value in zip(sums, values, strict=True)]
                starts.append(float(fact["active_start"]))
                ends.append(float(fact["active_end"]))
            q_cpu, q_mem, cpu_request, cpu_usage, mem_request, mem_usage = sums
            parts.append(PodPart(pod.row, pod.cost, pod.idle_share, q_cpu, q_mem, cpu_request, cpu_usage, mem_request,
                                 mem_usage, min(starts), max(ends)))
        nodes = [(s.cluster, s.node, s.idle) for s in priced.nodes.values()]
        return Piece(sum(s.node_cost for s in priced.nodes.values()), nodes, sum(unallocated.values()), parts)

    # --- /v2/cost --------------------------------------------------------------------------------

    def cost_sets(self, question: CostQuestion) -> tuple[list[dict[tuple[Any, ...], dict[str, Any]]], list[float]]:
        """Per set, the emitted rows keyed by (kind, group identity), each with its JSON figures; and per
        set the cluster cost (Σ node cost, R18)."""
        bounds = [a for a, _ in question.sets[1:]]
        pieces = cut(question.sets[0][0], question.sets[-1][1], [*bounds, question.known])
        out, totals = [], []
        index = 0
        for start, end in question.sets:
            mine = []
            while index < len(pieces) and pieces[index][0] < end:
                mine.append(pieces[index])
                index += 1
            whole = mine
            mine = [(a, b) for a, b in mine if b <= question.known]  # nothing is collected after now
            rows, node_cost = self._set_rows(mine, question, custom=False)
            custom_rows = self._set_rows(mine, question, custom=True)[0] if question.custom else None
            out.append(self._finish(rows, node_cost, custom_rows))
            totals.append(node_cost)
            assert not whole or (whole[0][0] == start and whole[-1][1] == end)
        return out, totals

    def _set_rows(self, pieces: Sequence[tuple[int, int]], q: CostQuestion, custom: bool
                  ) -> tuple[dict[tuple[Any, ...], Row], float]:
        rows: dict[tuple[Any, ...], Row] = {}
        kept: dict[tuple[Any, ...], bool] = {}
        groups: dict[str, tuple[tuple[Any, ...], tuple[str, ...], dict[str, Any]]] = {}  # per pod uid
        node_cost = 0.0

        def acc(kind: str, key: tuple[str, ...], identity: tuple[Any, ...]) -> Row:
            found = rows.get((kind, identity))
            if found is None:
                found = rows[(kind, identity)] = Row(kind, key)
            return found

        for a, b in pieces:
            piece = self.piece(a, b, q.method, q.share_split, q.idle_by_node, custom)
            node_cost += piece.node_cost
            for pod in piece.pods:
                uid = pod.row["pod_uid"]
                if q.filter is not None:
                    if uid not in kept:
                        kept[uid] = filters.holds(q.filter, pod.row)
                    if not kept[uid]:
                        continue
                if uid not in groups:  # a pod's attributes are the same in every piece
                    groups[uid] = (*reference.group_of(q.aggregate, pod.row), _properties(pod.row))
                identity, key, properties = groups[uid]
                row = acc(reference.WORKLOAD, key, identity)
                row.members += 1
                row.cost += pod.cost
                if q.share_idle:
                    row.cost += pod.idle_share
                    row.shared_idle_cost += pod.idle_share
                _merge_properties(row, properties)
                row.q_cpu += pod.q_cpu
                row.q_mem += pod.q_mem
                row.cpu_request += pod.cpu_request
                row.cpu_usage += pod.cpu_usage
                row.mem_request += pod.mem_request
                row.mem_usage += pod.mem_usage
                row.active_start = pod.active_start if row.active_start is None else min(row.active_start,
                                                                                         pod.active_start)
                row.active_end = pod.active_end if row.active_end is None else max(row.active_end, pod.active_end)
                if q.idle and not q.share_idle and q.filter is not None:  # R13: the kept pods' idle share
                    _idle_row(acc, q.idle_by_node, pod.row["cluster"], pod.row["node"]).cost += pod.idle_share
            if q.idle and not q.share_idle and q.filter is None:
                for cluster, node, idle_cost in piece.node_idle:
                    _idle_row(acc, q.idle_by_node, cluster, node).cost += idle_cost
            if q.share_idle and q.filter is None and piece.unallocated_idle:
                key = (reference.UNALLOCATED_IDLE_KEY,)
                acc(reference.UNALLOCATED_IDLE, key, key).cost += piece.unallocated_idle
        return rows, node_cost

    @staticmethod
    def _finish(rows: dict[tuple[Any, ...], Row], node_cost: float,
                custom: dict[tuple[Any, ...], Row] | None) -> dict[tuple[Any, ...], dict[str, Any]]:
        out: dict[tuple[Any, ...], dict[str, Any]] = {}
        for identity, row in rows.items():
            workload = row.kind == reference.WORKLOAD
            if not (row.members > 0 if workload else row.cost > 0):
                continue
            span = (row.active_end or 0.0) - (row.active_start or 0.0) if workload else 0.0
            other = None if custom is None else custom.get(identity)

            def average(total: float, span: float = span) -> float:
                return total / span if span > 0 else 0.0

            out[identity] = {
                "kind": row.kind,
                "name": "/".join(row.key),
                "properties": dict(row.properties or {}),
                "cost": row.cost,
                "costRatio": row.cost / node_cost if node_cost != 0 else 0.0,
                "sharedIdleCost": row.shared_idle_cost,
                "customCost": None if custom is None else (other.cost if other is not None else 0.0),
                "cpuCoreRequestAverage": average(row.cpu_request),
                "cpuCoreUsageAverage": average(row.cpu_usage),
                "ramByteRequestAverage": average(row.mem_request),
                "ramByteUsageAverage": average(row.mem_usage),
                "cpuCoreHours": row.q_cpu / HOUR if workload else 0.0,
                "ramByteHours": row.q_mem / HOUR if workload else 0.0,
            }
        return out

    def cross_check(self, q: CostQuestion, step: int | None, tz: Any, parsed_filter: Any) -> None:
        """`cost_sets` must equal `reference.reference_costs` on the same pieces (AssertionError if not);
        `parsed_filter` is the domain's parse of the filter text (the reference evaluates that)."""
        start, end = q.sets[0][0], q.sets[-1][1]
        facts = self.facts_of([(a, b) for a, b in cut(start, end, [*(a for a, _ in q.sets[1:]), q.known])
                               if b <= q.known])
        query = _Query(Span(start, end), step, tz, q.aggregate, parsed_filter, q.method, q.idle, q.share_idle,
                       q.share_split, q.idle_by_node)
        rows = reference.reference_costs(facts.containers, facts.nodes, self.book, query,
                                         self.custom_book if q.custom else None)
        mine, _ = self.cost_sets(q)
        flat = {(a, *key): row for (a, _), found in zip(q.sets, mine, strict=True) for key, row in found.items()}
        theirs = {row["identity"]: row for row in rows}
        assert flat.keys() == theirs.keys(), f"rows differ: {sorted(flat.keys() ^ theirs.keys())[:4]}"
        for key, row in flat.items():
            other = theirs[key]
            for mine_name, their_name in (("cost", "cost"), ("costRatio", "cost_ratio"), ("customCost", "custom_cost"),
                                          ("sharedIdleCost", "shared_idle_cost"), ("cpuCoreHours", "cpu_core_hours")):
                a, b = row[mine_name], other[their_name]
                assert (a is None and b is None) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (key, mine_name)
            assert row["properties"] == other["properties"] or row["kind"] != reference.WORKLOAD, key

    # --- Alauda usage ----------------------------------------------------------------------------

    def usage(self, start: int, end: int, bounds: Sequence[int], query: Any) -> list[dict[str, Any]]:
        """`reference.reference_usage` on the facts of [start, end) cut at whole hours and at the period
        boundaries `bounds` (a day of a +05:45 zone cuts an hour, priced per piece as /v2/cost sets)."""
        if end <= start:
            return []
        facts = self.facts_of(cut(start, end, bounds))
        return reference.reference_usage(facts.containers, facts.nodes, facts.volumes, facts.quotas, self.book,
                                         query)


_PROPERTY_COLUMNS = {"cluster": "cluster", "node": "node", "namespace": "namespace", "pod": "pod",
                     "podUID": "pod_uid", "controllerKind": "controller_kind", "controller": "controller",
                     "project": "project"}


def _properties(pod: dict[str, Any]) -> dict[str, Any]:
    """A pod's dimensions with a value (reference `_merge_properties`: None or "" is not a value)."""
    return {name: pod[column] for name, column in _PROPERTY_COLUMNS.items() if pod[column] not in (None, "")}


def _merge_properties(row: Row, mine: dict[str, Any]) -> None:
    """Keep the dimensions every member shares."""
    if row.properties is None:
        row.properties = dict(mine)
    elif row.properties != mine:
        row.properties = {name: value for name, value in row.properties.items() if mine.get(name) == value}


def _idle_row(acc: Any, by_node: bool, cluster: str, node: str) -> Row:
    if by_node:
        row: Row = acc(reference.IDLE, (reference.IDLE_NODE_PREFIX + node,), (cluster, node))
        return row
    key = (reference.IDLE_KEY,)
    found: Row = acc(reference.IDLE, key, key)
    return found


@dataclass(frozen=True)
class _Query:
    """What `reference.reference_costs` reads of a /v2/cost query."""

    window: Span
    step_seconds: int | None
    time_zone: Any
    aggregate: tuple[AggregateKey, ...]
    filter: Any
    method: Method
    idle: bool
    share_idle: bool
    share_split: ShareSplit
    idle_by_node: bool
