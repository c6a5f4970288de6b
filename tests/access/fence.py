"""What a caller may see, as the oracle computes it (AUTH.md "Who sees what"), independent of the server.

A caller who may see everything gets the campaign oracle's answer unchanged. A partial viewer whose
visible namespaces are V gets, for `/v2/cost`, the admin's answer to the same query with

    filter = (their filter) AND namespace:"v1","v2",...      (the engine's filter semantics: idle rows
                                                            hold only the idle of the kept pods)

except `costRatio`, which is the row's cost over the sum of the costs of every row of the same step in
the answer (Σ costRatio = 1 per step with a non-zero total; 0 when the step's total is 0), so that it
never reveals the cluster's cost. For the Alauda usage, the rows are the admin's per-namespace rows
(kind namespace_all) of the namespaces in V, summed again into the kind asked for: a project row holds
only V's namespaces of that project, a cluster row only V's namespaces. That is exact because usage rows
are sums of per-container figures priced over the whole node (conservation scaling is per node, not
per caller), so dropping namespaces after pricing is what "restricted" means.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

from kubetally.domain.aggregation import AggregateKey, Dimension
from kubetally.domain.vocabulary import Method, ShareSplit
from tests.campaign import filters
from tests.campaign.oracle import CostQuestion, Oracle
from tests.campaign.requests import V2


def fence_filter(existing: filters.Node | None, scope: Iterable[str]) -> filters.Node:
    """`existing AND namespace:"a","b"` as the campaign's filter tree (evaluated by `filters.holds`)."""
    fence = filters.Cond("namespace", ":", tuple(sorted(scope)))
    return fence if existing is None else filters.Combo("+", (existing, fence))


def fenced_v2(spec: V2, scope: frozenset[str] | None) -> V2:
    """The query whose admin answer a caller limited to `scope` gets (None: everything, unchanged)."""
    return spec if scope is None else replace(spec, filter=fence_filter(spec.filter, scope))


class FencedOracle(Oracle):
    """The campaign oracle seen through a fence: `scope` None sees everything; a set of namespaces keeps
    only their rows (usage rows regrouped from those namespaces' rows), with `ratio_of_answer` the
    partial viewer's costRatio. Shares the priced pieces of `base`, so many callers cost one pricing.
    `last` holds the rows of the last `cost_sets` question (the checks' totals read it)."""

    def __init__(self, base: Oracle, scope: frozenset[str] | None, *, ratio_of_answer: bool) -> None:
        super().__init__(base.cluster, base.book, base.custom_book)
        self._facts = base._facts
        self._pieces = base._pieces
        self.scope = scope
        self.ratio_of_answer = ratio_of_answer
        self.last: list[dict[tuple[Any, ...], dict[str, Any]]] = []

    def cost_sets(self, question: CostQuestion) -> tuple[list[dict[tuple[Any, ...], dict[str, Any]]], list[float]]:
        sets, totals = super().cost_sets(question)
        self.last = sets
        if not self.ratio_of_answer:
            return sets, totals
        for rows in sets:
            total = sum(row["cost"] for row in rows.values())
            for row in rows.values():
                row["costRatio"] = row["cost"] / total if total != 0 else 0.0
        return sets, totals

    def usage(self, start: int, end: int, bounds: Sequence[int], query: Any) -> list[dict[str, Any]]:
        if self.scope is None:
            return super().usage(start, end, bounds, query)
        per_namespace = SimpleNamespace(periods=query.periods, item=query.item, method=query.method,
                                        kind="namespace_all", name=None, project=query.project)
        rows = [row for row in super().usage(start, end, bounds, per_namespace) if row["namespace"] in self.scope]
        return regroup(rows, query.kind, query.name)


def regroup(rows: Sequence[dict[str, Any]], kind: str, name: str | None) -> list[dict[str, Any]]:
    """Per-namespace usage rows summed into `kind`'s groups, a named kind keeping its one object, sorted
    like the API's rows (start, project, cluster, namespace)."""
    base = kind.removesuffix("_all")
    sums: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for row in rows:
        group = {"project": (row["project"], row["cluster"], ""), "namespace": (row["project"], row["cluster"],
                 row["namespace"]), "cluster": ("", row["cluster"], "")}[base]
        if not kind.endswith("_all") and name != {"project": group[0], "namespace": group[2],
                                                   "cluster": group[1]}[base]:
            continue
        key = (row["start"], *group)
        found = sums.get(key)
        if found is None:
            sums[key] = {**row, "project": group[0], "cluster": group[1], "namespace": group[2]}
        else:
            found["usage"] += row["usage"]
            found["cost"] += row["cost"]
    return sorted(sums.values(), key=lambda r: (r["start"], r["project"], r["cluster"], r["namespace"]))


def namespace_rows(base: Oracle, start: int, end: int, scope: frozenset[str] | None) -> dict[str, dict[str, Any]]:
    """The oracle's `/v2/cost?window=<start>,<end>&aggregate=namespace` (whole hours, Request, idle) for a
    caller limited to `scope` (None: everything), by row name: each row's `cost` and `costRatio`."""
    question = CostQuestion(((start, end),), (AggregateKey(Dimension.NAMESPACE),),
                            None if scope is None else fence_filter(None, scope), Method.REQUEST, True, False,
                            ShareSplit.WEIGHTED, False, False, end)
    (rows,), _ = FencedOracle(base, scope, ratio_of_answer=scope is not None).cost_sets(question)
    return {row["name"]: row for row in rows.values()}
