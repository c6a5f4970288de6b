"""The one validator of billing objects: the admission webhook, `kubetally validate` and InvalidSpec.

Why one: a CostWeights or CostReport that reaches the cluster through Argo CD or Flux must be refused
at `kubectl apply` with the very message the operator would otherwise write into its
`Ready=False, reason=InvalidSpec` condition days later (issue 16). So every path runs `check`, and
`check` runs exactly what the handlers run before they compute anything:

- CostWeights: `domain.resources.parse_cost_weights` (the handler's `record_cost_weights` parses the
  same way before it stores a price version);
- CostReport: `reports.report_query` (the spec parsed, its window and step resolved at `now` with
  the operator's resolution, its aggregate, filter and schedule parsed: what `compute_report` does
  before it asks for a single number);
- CostBudget: `domain.budgets.parse_cost_budget` (what `budgets.compute_budget` parses first).

Not decided here, because the answer depends on the cluster at compute time, not on the object: a
`customWeights` naming a CostWeights that does not exist yet (GitOps may create it in the same sync,
after the report), an answer over the row caps (it depends on how many pods there are), a budget's
currency against its CostWeights', and a `spec.scope` or `spec.notify` on a budget outside the admin
namespaces (the operator's setting). Those stay InvalidSpec conditions. A report's tenant scope is
never a reason to refuse: a report outside the admin namespaces is narrowed to its namespace's
project (`domain.scope`), not rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubetally.domain.budgets import parse_cost_budget
from kubetally.domain.errors import SpecError
from kubetally.domain.resources import parse_cost_weights
from kubetally.reports import report_query

GROUP = "kubetally.io"
#: The kinds validated, by kind name; every other kubetally.io kind is refused as unknown.
KINDS = ("CostWeights", "CostReport", "CostBudget")


@dataclass(frozen=True, slots=True)
class Subject:
    """What an object is, for messages: `CostReport team-a/weekly`."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


def subject(obj: Mapping[str, Any]) -> Subject:
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    return Subject(str(obj.get("kind") or "?"), str(meta.get("namespace") or ""), str(meta.get("name") or "?"))


def is_billing(obj: Mapping[str, Any]) -> bool:
    """Whether `obj` is of our API group (any version): the objects `check` is about."""
    return str(obj.get("apiVersion") or "").split("/")[0] == GROUP


def check(obj: Mapping[str, Any], *, now: datetime, resolution_seconds: int) -> None:
    """Raise the SpecError the operator's InvalidSpec condition would carry for `obj` (a whole
    object: apiVersion, kind, metadata, spec); return if it would be accepted."""
    kind = obj.get("kind")
    if kind not in KINDS:
        raise SpecError("kind", f"{kind!r} is not a kind kubetally validates; accepted: {', '.join(KINDS)}")
    spec = obj.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        raise SpecError("spec", f"must be an object of {kind} fields, not {type(spec).__name__}")
    if kind == "CostWeights":
        parse_cost_weights(spec)
    elif kind == "CostBudget":
        parse_cost_budget(spec)
    else:
        report_query(spec, now=now, resolution_seconds=resolution_seconds)

