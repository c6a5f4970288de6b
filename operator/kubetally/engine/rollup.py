"""Priced hourly rollups: an hour's engine result at a coarse level, computed once, read many times.

Why this exists: at scale L (10k pods on 500 nodes) a 30-day window holds 7.2M container-hours.
Pricing them, scaling per node-hour and sharing idle on every request took 13 s and 8 GiB of
memory (bench/RESULTS.md). Every engine stage is local to a segment, which in the ledger is an hour:
node prices and pools per node-hour, conservation per node-hour, idle shares per domain-hour. So an
hour's priced pods can be rolled up once per *level* and stored, and a window's answer becomes one
GROUP BY over the stored rows of its hours, with the live stages run only for the hours not stored
(the window's live edges, hours ingested since the last refresh).

A level is the set of identity columns its rows keep (`LEVELS`); a query may read it when every
column its aggregate keys display or identify by, and every column its filter tests, is among them
(`level_for`):

    namespace   cluster, namespace, project                                  keys namespace, project, cluster
    node        cluster, node, provider_id                                   keys node, cluster
    controller  cluster, namespace, project, controller_kind, controller     + controller, controllerKind
    labels      cluster, namespace, project, controller_kind, controller,    + labels (no pod, no node)
                labels
    pod         cluster, namespace, project, pod, pod_uid, node,             every key, every filter
                controller_kind, controller, labels

A stored row has the columns of a `pod_shares` row (`POD_COLUMNS`, and `labels` at the pod level):
per hour (or day) and group, Σ cost, Σ share, Σ of every integral, min(active_start),
max(active_end). A property column outside the level holds the value every member of the group
shares, else NULL. `grouping.properties_sql` (shared ⇔ min = max and no NULL) over stored rows is
then exactly what it is over the pods: a value is shared by a group iff it is shared within each of
its stored groups and equal across them. A filter tests only kept columns, which are constant within
a stored row, so it keeps a stored row iff it keeps every pod-hour the row sums.

Grains (`HOUR`, `DAY`): the namespace, node and controller levels are stored per hour and per UTC
day; the labels and pod levels per UTC day only (an hour by pod is most of a container-hour's size:
at scale L, 7.2M rows per method, where a day by pod is ~0.3M). The labels level exists because a
label key is most often asked without pods: the pods of one controller mostly share their labels,
so at scale L a day by controller and label set is ~2.6k rows where a day by pod is ~10.8k.

A day row may answer a day that lies whole in the window, whole in one of its sets (its steps), and
whose every hour is stored: `engine.plan` carries the set boundaries, the ledger picks the days.
Hours of other days are read per hour, or computed from their facts at the daily levels. Day rows
are not read when idle is shared: the unallocated idle of an hour with no pods to take it is an
hourly fact a day row cannot keep.

A *variant* is what stored money depends on besides the facts: the price book and the method.
Stored shares are those of the weighted split over the cluster domain, so a query may read stored
rows when it has no customWeights, its keys and filter lie in a level, its method is the variant's,
and it does not share idle by another rule: `engine.plan` decides it, once per request.
`fingerprint` names a price book and method: stored rows of another fingerprint are stale and are
rebuilt, never read.

Building is the engine's (`stages.build_rollups`: the answer's stages over a span of ledger hours,
rolled up by `rows_sql`, `node_rows_sql`, `unmatched_sql` into the tables `Built` names);
keeping them (which hours are built for which fingerprint) is the ledger's (`ledger.rollups`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from kubetally.domain.aggregation import AggregateKey, Dimension
from kubetally.domain.prices import PriceBook
from kubetally.domain.vocabulary import Method
from kubetally.engine.grouping import PROPERTY_COLUMNS

#: Bumped whenever the meaning or shape of stored rows changes: every stored row is then rebuilt.
ROLLUP_VERSION = "4"

#: The methods whose rollups are maintained: every container basis (/v2/cost's default Request,
#: Alauda's and the CostReport samples' Effective, and Usage), so no method re-derives a month of
#: container facts per request.
METHODS = (Method.REQUEST, Method.EFFECTIVE, Method.USAGE)

#: Grains, in seconds: a stored row sums one hour or one UTC day of its group.
HOUR = 3600
DAY = 86400

LEVELS: dict[str, tuple[str, ...]] = {
    "namespace": ("cluster", "namespace", "project"),
    "node": ("cluster", "node", "provider_id"),
    "controller": ("cluster", "namespace", "project", "controller_kind", "controller"),
    "labels": ("cluster", "namespace", "project", "controller_kind", "controller", "labels"),
    "pod": ("cluster", "namespace", "project", "pod", "pod_uid", "node", "controller_kind", "controller", "labels"),
}

#: The levels also stored per hour; the others (`DAILY`) are stored per day only (module docstring).
HOURLY = ("namespace", "node", "controller")
DAILY = tuple(level for level in LEVELS if level not in HOURLY)

#: The columns an aggregate key reads (display and identity; see `engine.grouping`).
_KEY_COLUMNS: dict[Dimension, frozenset[str]] = {
    Dimension.NAMESPACE: frozenset({"namespace"}),
    Dimension.PROJECT: frozenset({"project"}),
    Dimension.CLUSTER: frozenset({"cluster"}),
    Dimension.NODE: frozenset({"cluster", "node"}),
    Dimension.CONTROLLER: frozenset({"cluster", "namespace", "controller_kind", "controller"}),
    Dimension.CONTROLLER_KIND: frozenset({"controller_kind"}),
    Dimension.POD: frozenset({"cluster", "namespace", "pod", "pod_uid", "labels"}),  # pod rows show labels
    Dimension.LABEL: frozenset({"labels"}),
}

#: Stored workload rows: the `pod_shares` columns the answer stages read (labels excepted); the
#: namespace level's `cpu_cost`, `mem_cost`, `q_cpu` and `q_mem` also answer Alauda's Cpu and Memory
#: usage (`engine.usage`), which is container cost without idle.
POD_COLUMNS: dict[str, str] = {
    "cluster": "VARCHAR",
    "namespace": "VARCHAR",
    "pod": "VARCHAR",
    "pod_uid": "VARCHAR",
    "node": "VARCHAR",
    "segment_start": "BIGINT",
    "segment_end": "BIGINT",
    "project": "VARCHAR",
    "controller_kind": "VARCHAR",
    "controller": "VARCHAR",
    "provider_id": "VARCHAR",
    "cost": "DOUBLE",
    "cpu_cost": "DOUBLE",
    "mem_cost": "DOUBLE",
    "q_cpu": "DOUBLE",
    "q_mem": "DOUBLE",
    "cpu_request_core_seconds": "DOUBLE",
    "cpu_usage_core_seconds": "DOUBLE",
    "memory_request_byte_seconds": "DOUBLE",
    "memory_usage_byte_seconds": "DOUBLE",
    "active_start": "DOUBLE",
    "active_end": "DOUBLE",
    "share": "DOUBLE",
}

#: Stored node rows: the `node_idle` columns the answer stages read.
NODE_COLUMNS: dict[str, str] = {
    "cluster": "VARCHAR",
    "node": "VARCHAR",
    "provider_id": "VARCHAR",
    "segment_start": "BIGINT",
    "segment_end": "BIGINT",
    "node_cost": "DOUBLE",
    "idle": "DOUBLE",
    "overcommitted": "BIGINT",  # how many of the row's node-hours were overcommitted
}

#: The label map of a stored pod-level row (other levels keep none).
LABELS_TYPE = "MAP(VARCHAR, VARCHAR)"

_SUMMED = ("cost", "cpu_cost", "mem_cost", "q_cpu", "q_mem", "cpu_request_core_seconds", "cpu_usage_core_seconds",
           "memory_request_byte_seconds", "memory_usage_byte_seconds", "share")


@dataclass(frozen=True, slots=True)
class Stored:
    """Relations (views on the engine's cursor) holding the stored rows of one variant and level
    for the window's stored hours: `pods` (POD_COLUMNS), `nodes` (NODE_COLUMNS) and `unmatched`
    (one BIGINT column `unmatched`: container facts of those hours without a node fact). Rows of
    hours and of whole days may mix; each nests in one of the query's sets (`engine.plan`)."""

    method: Method
    level: str
    pods: str = "stored_pods"
    nodes: str = "stored_nodes"
    unmatched: str = "stored_unmatched"

    @property
    def labels(self) -> bool:
        """Whether the stored pod rows carry a `labels` map (the pod level's do)."""
        return "labels" in LEVELS[self.level]


@dataclass(frozen=True, slots=True)
class Built:
    """Temporary tables (on the builder's cursor) holding the rollups `stages.build_rollups` computed
    for one span, book and method: `pods(level)` per level (POD_COLUMNS), `nodes` (NODE_COLUMNS) and
    `unmatched` (cluster, segment_start, unmatched), and `days(level)` per `DAILY` level: its rows
    per UTC day of the span's hours (a day not whole in the span holds only those hours: the ledger
    compacts a day's parts once all of its hours are stored). Whoever stores them drops `tables`."""

    nodes: str = "built_nodes"
    unmatched: str = "built_unmatched"

    @staticmethod
    def pods(level: str) -> str:
        return f"built_pods_{level}"

    @staticmethod
    def days(level: str) -> str:
        return f"built_days_{level}"

    @property
    def tables(self) -> tuple[str, ...]:
        return (*(self.pods(level) for level in HOURLY), *(self.days(level) for level in DAILY), self.nodes,
                self.unmatched)


def fingerprint(book: PriceBook, method: Method) -> str:
    """A name for what stored money depends on: the rollup version, every price version, the method."""
    text = f"{ROLLUP_VERSION}|{method.value}|{book!r}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def level_for(keys: tuple[AggregateKey, ...], filtered: frozenset[str] = frozenset()) -> str | None:
    """The coarsest level whose columns cover `keys` and the columns a filter tests (`filtered`,
    `engine.filtering.columns_read`), or None (a mix no level holds)."""
    needed: set[str] = set(filtered)
    for key in keys:
        columns = _KEY_COLUMNS.get(key.dimension)
        if columns is None:
            return None
        needed |= columns
    for name, kept in LEVELS.items():
        if needed <= set(kept):
            return name
    return None


def rows_sql(level: str, source: str, grain: int) -> str:
    """SELECT of the rows of `level` per `grain` (HOUR: per segment, the ledger's hours; DAY: per
    UTC day) from `source`: the materialised `pod_shares` (one book), or stored rows of the same
    level (compacting parts of a day: every rule below gives the same result over its own output)."""
    kept = LEVELS[level]
    if grain == DAY:
        source = (f"(SELECT * REPLACE (segment_start - segment_start % {DAY} AS segment_start, "
                  f"segment_start - segment_start % {DAY} + {DAY} AS segment_end) FROM {source})")
    elif grain != HOUR:
        raise ValueError(f"not a grain: {grain}")
    columns: list[str] = []
    for column in [*POD_COLUMNS, *(["labels"] if "labels" in kept else [])]:
        if column in kept or column in ("segment_start", "segment_end"):
            columns.append(column)
        elif column in _SUMMED:
            columns.append(f"sum({column}) AS {column}")
        elif column == "active_start":
            columns.append("min(active_start) AS active_start")
        elif column == "active_end":
            columns.append("max(active_end) AS active_end")
        else:
            if column not in PROPERTY_COLUMNS.values():
                raise ValueError(f"stored column {column} has no rule")
            columns.append(
                f"CASE WHEN min({column}) = max({column}) AND count({column}) = count(*) THEN min({column}) END "
                f"AS {column}"
            )
    return (f"SELECT {', '.join(columns)} FROM {source} "
            f"GROUP BY {', '.join(kept)}, segment_start, segment_end")


def node_rows_sql(source: str = "node_idle", grain: int = HOUR) -> str:
    """SELECT of the stored node rows per `grain` from the materialised `node_idle` (one book; its
    `overcommitted` flag counted), or from stored hour rows per UTC day (`grain` DAY)."""
    if grain == HOUR:
        columns = [f"CAST({c} AS BIGINT) AS {c}" if c == "overcommitted" else c for c in NODE_COLUMNS]
        return f"SELECT {', '.join(columns)} FROM {source}"
    day = f"segment_start - segment_start % {DAY}"
    return (f"SELECT cluster, node, provider_id, {day} AS segment_start, {day} + {DAY} AS segment_end, "
            f"sum(node_cost) AS node_cost, sum(idle) AS idle, sum(overcommitted) AS overcommitted "
            f"FROM {source} GROUP BY cluster, node, provider_id, {day}")


def unmatched_sql() -> str:
    """SELECT of the unmatched container facts per cluster and segment from `container_cost`."""
    return ("SELECT cluster, segment_start, count(*) FILTER (WHERE NOT matched) AS unmatched "
            "FROM container_cost GROUP BY cluster, segment_start")
