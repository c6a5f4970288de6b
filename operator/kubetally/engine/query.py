"""What the engine is asked (`CostQuery`, `UsageQuery`) and what it answers (`CostRow`, `UsageRow`).

These are plain frozen dataclasses so that the API, the CostReport handler and the tests share one
vocabulary. Money and quantities are float64 here; rounding to decimal strings happens only where
results leave the process (status, JSON).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from functools import cached_property

from kubetally.domain.aggregation import AggregateKey, Dimension
from kubetally.domain.filters import Filter
from kubetally.domain.sets import cut_sets
from kubetally.domain.vocabulary import Item, Method, ShareSplit, UsageKind
from kubetally.domain.window import CalendarPeriod, Window


@dataclass(frozen=True, slots=True)
class CostQuery:
    """A /v2/cost question: window, sets (a step on its grid in a time zone), grouping, filter, basis
    and idle handling."""

    window: Window
    step_seconds: int | None = None
    time_zone: tzinfo = UTC
    aggregate: tuple[AggregateKey, ...] = (AggregateKey(Dimension.POD),)
    filter: Filter | None = None
    method: Method = Method.REQUEST
    idle: bool = True
    share_idle: bool = False
    share_split: ShareSplit = ShareSplit.WEIGHTED
    idle_by_node: bool = False
    #: costRatio's denominator: False = the step's total node cost (all nodes, before any filter);
    #: True = the Σ cost of the answer's rows in the step, for callers who may not see the whole
    #: cluster (issue 13: the cluster's total would tell a tenant what everyone else spends).
    ratio_within_answer: bool = False

    @property
    def sets(self) -> tuple[Window, ...]:
        """The sets the answer is split into: `step_seconds` on its grid in `time_zone` (`domain.sets`)."""
        return cut_sets(self.window, self.step_seconds, self.time_zone)


#: Row kinds of a CostTable.
WORKLOAD = "workload"
IDLE = "idle"
UNALLOCATED_IDLE = "unallocated_idle"


@dataclass(frozen=True, slots=True)
class CostRow:
    """One cost set: one group over one step.

    `key` holds one value per aggregate key (for idle rows: the idle row name). `properties` holds
    the dimensions every member of the group shares (cluster, node, namespace, pod, podUID,
    controllerKind, controller, providerID, project); `labels` the pod labels if all members share
    them. Averages are Σ integral / active span (DESIGN.md §4); `cpu_core_hours` [core·h] and
    `memory_gib_hours` [GiB·h] are the basis quantities (by the query's method) behind `cost`.
    `shared_idle_cost` is the part of `cost` that is shared idle.

    Inside kubetally a quantity has one name, these; API vocabulary exists only where a body is
    written: /v2/cost says `cpuCoreHours` and `ramByteHours` (= memory_gib_hours × 2^30, OpenCost's
    bytes; `api.payloads`), a CostReport's status `cpuCoreHours` and `memoryGiBHours` (`reports`).
    """

    step_start: int
    step_end: int
    kind: str
    key: tuple[str, ...]
    properties: Mapping[str, str]
    labels: Mapping[str, str] | None
    cpu_core_request_average: float
    cpu_core_usage_average: float
    ram_byte_request_average: float
    ram_byte_usage_average: float
    cpu_core_hours: float
    memory_gib_hours: float
    cost: float
    shared_idle_cost: float
    cost_ratio: float
    custom_cost: float | None

    @property
    def name(self) -> str:
        """The row's display name: its key values joined by `/` (OpenCost's allocation name)."""
        return "/".join(self.key)


@dataclass(frozen=True, slots=True)
class StepTotals:
    """Per step: the cost of every node (before any filter) and how it splits."""

    step_start: int
    step_end: int
    node_cost: float
    workload_cost: float
    idle_cost: float
    custom_node_cost: float | None


@dataclass(frozen=True, slots=True)
class Diagnostics:
    """What the engine noticed and did not hide.

    `overcommitted_node_segments`: node-segments whose basis exceeded capacity, so workload costs
    were scaled down to the node's cost. `unmatched_container_facts`: container facts with no node
    fact for their node and segment (priced at unit prices, outside conservation).
    """

    overcommitted_node_segments: int = 0
    unmatched_container_facts: int = 0


#: The numbers of a CostRow besides `custom_cost`, in this order (the columns of `WorkloadRows.numbers`).
NUMBER_FIELDS = ("cpu_core_request_average", "cpu_core_usage_average", "ram_byte_request_average",
                 "ram_byte_usage_average", "cpu_core_hours", "memory_gib_hours", "cost", "shared_idle_cost",
                 "cost_ratio")


@dataclass(frozen=True, slots=True)
class WorkloadRows:
    """An answer's workload rows as columns: entry i of every list is row i, in answer order.

    Why columns: at scale L a month by day by controller is 80k rows, and one CostRow per row (with
    the passes made over them) cost more than the whole computation in DuckDB (issue 15). The engine
    finishes every number in SQL and hands these lists; a caller that wants row objects makes them
    (`CostTable.rows`), the /v2/cost JSON body is written straight from the columns. `numbers` maps
    each of `NUMBER_FIELDS` to its column; `custom_cost` is None without customWeights."""

    step_start: list[int]
    step_end: list[int]
    key: list[tuple[str, ...]]
    properties: list[dict[str, str]]
    labels: list[dict[str, str] | None]
    numbers: dict[str, list[float]]
    custom_cost: list[float] | None = None

    def __len__(self) -> int:
        return len(self.step_start)

    def row(self, index: int) -> CostRow:
        """Row `index` as a CostRow (kind workload)."""
        return CostRow(step_start=self.step_start[index], step_end=self.step_end[index], kind=WORKLOAD,
                       key=self.key[index], properties=self.properties[index], labels=self.labels[index],
                       custom_cost=None if self.custom_cost is None else self.custom_cost[index],
                       **{name: values[index] for name, values in self.numbers.items()})

    @classmethod
    def of(cls, rows: Iterable[CostRow]) -> WorkloadRows:
        """Columns of `rows` (workload rows, in answer order): for callers that hold row objects."""
        listed = list(rows)
        customs = [row.custom_cost for row in listed]
        return cls(step_start=[row.step_start for row in listed], step_end=[row.step_end for row in listed],
                   key=[row.key for row in listed], properties=[dict(row.properties) for row in listed],
                   labels=[None if row.labels is None else dict(row.labels) for row in listed],
                   numbers={name: [float(getattr(row, name)) for row in listed] for name in NUMBER_FIELDS},
                   custom_cost=None if any(value is None for value in customs) or not listed
                   else [float(value) for value in customs if value is not None])


#: Writes an answer's workload rows as text in DuckDB: given the number of keys and whether customCost
#: is priced, it returns a select list over the finished rows (`engine.workload.finished_sql`:
#: step_idx, step_start, step_end, k0.., NUMBER_FIELDS, custom_cost with customWeights, labels as JSON
#: text, p_<property>) with the columns `base` (the row's name before it is made unique), `uid` (its
#: pod UID or NULL), `body` (its text after the name) and `finite`, and the list's parameters. The
#: engine evaluates it, in answer order, before it releases the rows; its vocabulary is the caller's.
Renderer = Callable[[int, bool], tuple[str, dict[str, object]]]


@dataclass(frozen=True, slots=True)
class Rendered:
    """Workload rows as a `Renderer` wrote them, in answer order: per row its step index, base name,
    pod UID ("" when none) and body text; `finite` is False if any number of any row was NaN or
    infinite (never expected). Names are made unique by the caller, which also names the other rows."""

    step_index: list[int]
    bases: list[str]
    uids: list[str]
    bodies: list[str]
    finite: bool


@dataclass(frozen=True)
class CostTable:
    """The engine's answer to a CostQuery: workload rows as columns (`workload`), idle and unallocated
    idle rows as CostRows (`others`, a few per step), in answer order: per step, the workload rows by
    cost descending, then idle, then unallocated idle (`rows` merges them). With `rendered` (computed
    with a `Renderer`) the workload rows exist only as its texts, and `workload` is empty."""

    workload: WorkloadRows
    others: tuple[CostRow, ...]
    steps: tuple[StepTotals, ...]
    currency: str
    custom_currency: str | None
    price_source: str
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    rendered: Rendered | None = None

    @cached_property
    def rows(self) -> tuple[CostRow, ...]:
        """Every row as a CostRow, in answer order (made on first use); a rendered table has none."""
        if self.rendered is not None:
            raise ValueError("this table's workload rows were rendered as text; compute it without a renderer")
        out: list[CostRow] = []
        others = list(self.others)
        taken = 0
        for index in range(len(self.workload)):
            step = self.workload.step_start[index]
            while taken < len(others) and others[taken].step_start < step:
                out.append(others[taken])
                taken += 1
            out.append(self.workload.row(index))
        return (*out, *others[taken:])

    @property
    def most_rows_in_a_step(self) -> int:
        """The largest number of rows (workload and idle) any one step holds."""
        counts: dict[int, int] = {}
        rendered = [] if self.rendered is None else [self.steps[index].step_start for index in self.rendered.step_index]
        for step in (*self.workload.step_start, *rendered, *(row.step_start for row in self.others)):
            counts[step] = counts.get(step, 0) + 1
        return max(counts.values(), default=0)


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """An Alauda usage question. `project` scopes the answer to one project's namespaces (the
    project endpoint); `name` names the one project/namespace/cluster of a non-`_all` kind;
    `filter` (a CostReport's scope, `domain.scope`) keeps only the facts it matches and may name only
    the fields every metered fact carries: cluster, namespace, project."""

    periods: tuple[CalendarPeriod, ...]
    kind: UsageKind = UsageKind.PROJECT_ALL
    item: Item = Item.CPU
    method: Method = Method.EFFECTIVE
    name: str | None = None
    project: str | None = None
    filter: Filter | None = None


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One Alauda CostUsageItem: usage in core-hours (Cpu) or GiB-hours (Memory, Storage)."""

    project: str
    cluster: str
    namespace: str
    item: Item
    method: Method
    usage: float
    cost: float
    currency: str
    start: str
    end: str
