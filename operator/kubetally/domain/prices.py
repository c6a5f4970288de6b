"""Price lists the engine applies: plain frozen dataclasses, converted from CostWeights specs.

A `PriceVersion` is one CostWeights as it stood from `effective_from` on; a `PriceBook` is every
version of one CostWeights name, in time order. The engine prices each segment by the version in
force at the segment's start; the earliest version also prices every hour before it (the first
price list is the only one there is), while later versions never rewrite hours before their
`effective_from` (DESIGN.md §5).

Money stays `Decimal` here (it comes from decimal strings); the engine turns it into float64 once.

Node selectors match node labels by sanitized key (`domain.labels`), because facts carry node
labels as kube-state-metrics reports them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from kubetally.domain.labels import sanitize_label_key
from kubetally.domain.timeparse import EPOCH

#: OpenCost's public default prices (USD), used when no CostWeights exists; every response says so.
OPENCOST_DEFAULT_CPU_CORE_HOUR = Decimal("0.031611")
OPENCOST_DEFAULT_MEMORY_GIB_HOUR = Decimal("0.004237")
OPENCOST_DEFAULT_STORAGE_GIB_HOUR = Decimal("0.00005479")

@dataclass(frozen=True, slots=True)
class LabelRequirement:
    """One `matchExpressions` entry: operator In, NotIn, Exists or DoesNotExist."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(sanitize_label_key(self.key))
        if self.operator == "In":
            return value is not None and value in self.values
        if self.operator == "NotIn":
            return value is None or value not in self.values
        if self.operator == "Exists":
            return value is not None
        if self.operator == "DoesNotExist":
            return value is None
        raise ValueError(f"unknown label selector operator {self.operator!r}")


@dataclass(frozen=True, slots=True)
class NodePriceRule:
    """Whole-node hourly price for nodes whose labels match the selector (every part must hold)."""

    hourly: Decimal
    match_labels: Mapping[str, str] = field(default_factory=dict)
    match_expressions: tuple[LabelRequirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True if `labels` (sanitized keys) satisfy every matchLabels and matchExpressions entry."""
        for key, wanted in self.match_labels.items():
            if labels.get(sanitize_label_key(key)) != wanted:
                return False
        return all(requirement.matches(labels) for requirement in self.match_expressions)


@dataclass(frozen=True, slots=True)
class PriceVersion:
    """One price list in force from `effective_from` on.

    `weights` is (w_cpu, w_memory) summing to 1, or None: then each node's split follows its unit
    prices, w_cpu = cpuCoreHour·cores / (cpuCoreHour·cores + memoryGiBHour·GiB).
    """

    currency: str
    cpu_core_hour: Decimal
    memory_gib_hour: Decimal
    storage_gib_hour: Decimal
    weights: tuple[Decimal, Decimal] | None = None
    node_rules: tuple[NodePriceRule, ...] = ()
    storage_class_prices: Mapping[str, Decimal] = field(default_factory=dict)
    effective_from: datetime = EPOCH
    source: str = "opencost-default"

    def node_rule_price(self, labels: Mapping[str, str]) -> Decimal | None:
        """The hourly price of the first rule matching `labels`, or None (first match wins)."""
        for rule in self.node_rules:
            if rule.matches(labels):
                return rule.hourly
        return None

    def storage_price(self, storage_class: str | None) -> Decimal:
        """Price of one GiB-hour of a volume of `storage_class`."""
        if storage_class is not None and storage_class in self.storage_class_prices:
            return self.storage_class_prices[storage_class]
        return self.storage_gib_hour


@dataclass(frozen=True, slots=True)
class PriceBook:
    """Every version of one CostWeights, sorted by `effective_from` (at least one)."""

    versions: tuple[PriceVersion, ...]

    def __post_init__(self) -> None:
        if not self.versions:
            raise ValueError("a PriceBook needs at least one PriceVersion")
        ordered = tuple(sorted(self.versions, key=lambda version: version.effective_from))
        object.__setattr__(self, "versions", ordered)

    @property
    def currency(self) -> str:
        """The currency of the newest version (all versions of one book should agree)."""
        return self.versions[-1].currency

    def index_at(self, epoch_seconds: int) -> int:
        """Index of the version in force at `epoch_seconds`: the last one that started at or before
        it, or the earliest version for times before every version."""
        index = 0
        for position, version in enumerate(self.versions):
            if version.effective_from.timestamp() <= epoch_seconds:
                index = position
        return index


def opencost_default() -> PriceBook:
    """OpenCost's public default prices, in USD, with the unit-price split of each node."""
    return PriceBook(
        versions=(
            PriceVersion(
                currency="USD",
                cpu_core_hour=OPENCOST_DEFAULT_CPU_CORE_HOUR,
                memory_gib_hour=OPENCOST_DEFAULT_MEMORY_GIB_HOUR,
                storage_gib_hour=OPENCOST_DEFAULT_STORAGE_GIB_HOUR,
            ),
        )
    )
