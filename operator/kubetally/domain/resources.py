"""Pydantic models of the `CostWeights` and `CostReport` specs (DESIGN.md §5, §7).

The CRD's OpenAPI schema rejects what a schema can say at admission; everything else (weights that
do not sum to 1, a window the /v2/cost grammar refuses, a cron expression out of range) must reach
the user as a `Ready=False, reason=InvalidSpec` condition that says what is accepted. These models
are that second gate: kopf handlers call `parse_cost_weights` / `parse_cost_report` and get either a
frozen, typed spec or one `SpecError(field="spec.<camelPath>", message=...)`.

The models mirror the YAML exactly: camelCase on the wire (`model_dump(by_alias=True)`), snake_case
in Python, unknown fields rejected. Money is written as quoted decimal strings and read as `Decimal`,
never through a float. Pure: no clock, no environment, no network; the engine never sees these
models (it gets `PriceVersion` from `CostWeightsSpec.to_price_version`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, localcontext
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from kubetally.domain import prices, spec_errors
from kubetally.domain.aggregation import AggregateKey, parse_aggregate
from kubetally.domain.errors import SpecError
from kubetally.domain.filters import Filter, parse_filter
from kubetally.domain.names import is_dns_subdomain, is_label_name
from kubetally.domain.schedule import Schedule, parse_schedule
from kubetally.domain.sets import parse_step, resolve_span
from kubetally.domain.spec_errors import SubfieldError
from kubetally.domain.timeparse import EPOCH, ISO_DATE, format_rfc3339, parse_date, parse_rfc3339, to_epoch
from kubetally.domain.vocabulary import CURRENCIES, Method, ShareSplit
from kubetally.domain.window import Window, parse_timezone, parse_window

__all__ = [
    "CostReportSpec", "CostWeightsSpec", "LabelExpression", "NodePrice", "NodeSelector", "StorageClassPrice",
    "UnitPrices", "Weights", "parse_cost_report", "parse_cost_weights",
]

_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
_MAX_DECIMAL_CHARS = 64
_TIME_EXAMPLE = '"2025-06-01T00:00:00Z"'
#: Any instant off every local midnight (zones of this century have whole-minute offsets), so that
#: "today" or "month" never parse as empty while a spec is only being validated.
_VALIDATION_NOW = datetime(2000, 1, 1, 12, 0, 30, tzinfo=UTC)


def decimal_string(example: str, what: str) -> Callable[[object], Decimal]:
    def check(value: object) -> Decimal:
        if isinstance(value, Decimal) and value.is_finite() and value >= 0:  # built in Python, not parsed
            return value
        if not isinstance(value, str):
            kind = "a number" if isinstance(value, int | float) and not isinstance(value, bool) else "not text"
            raise ValueError(f'{value!r} is {kind}, not a string: write {what} as quoted decimal strings, '
                             f'e.g. "{example}"')
        if len(value) > _MAX_DECIMAL_CHARS or _DECIMAL.fullmatch(value) is None:
            raise ValueError(f'"{value[:_MAX_DECIMAL_CHARS]}" is not a decimal string; write {what} as '
                             f'digits with an optional fraction, no sign or exponent, e.g. "{example}"')
        return Decimal(value)

    return check


def plain(value: Decimal) -> str:
    return format(value, "f")


Price = Annotated[Decimal, BeforeValidator(decimal_string("0.031611", "prices")), PlainSerializer(plain)]
Weight = Annotated[Decimal, BeforeValidator(decimal_string("0.7", "weights")), PlainSerializer(plain)]


def _aware_time(value: object) -> datetime:
    if not isinstance(value, str):  # the API server hands over strings; so does kubectl for YAML timestamps
        raise ValueError(f"{value!r} is not an RFC3339 time; write a quoted string, e.g. {_TIME_EXAMPLE}")
    try:
        return parse_rfc3339(value.strip(), "effectiveFrom")
    except SpecError:
        raise ValueError(f'"{value}" is not an RFC3339 time with a time zone; e.g. {_TIME_EXAMPLE}') from None


AwareTime = Annotated[datetime, BeforeValidator(_aware_time),
                      PlainSerializer(lambda value: format_rfc3339(to_epoch(value)))]


def known_currency(value: str) -> str:
    """`value` if kubetally prices in it (`CURRENCIES`: the CostWeights' and the CostBudgets' rule)."""
    if value not in CURRENCIES:
        raise ValueError(f'"{value}" is not a supported currency; accepted: {", ".join(CURRENCIES)}')
    return value


class SpecModel(BaseModel):
    """A CR spec's model: camelCase on the wire, unknown fields rejected, frozen (every kind's spec)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class Weights(SpecModel):
    """How a node's hourly price splits between CPU and memory; the two sum to exactly 1."""

    cpu: Weight
    memory: Weight

    @model_validator(mode="after")
    def _sum_to_one(self) -> Weights:
        with localcontext(prec=200):
            total = self.cpu + self.memory
        if total != 1:
            raise ValueError(f'cpu "{plain(self.cpu)}" + memory "{plain(self.memory)}" = {plain(total)}; '
                             'the weights must sum to exactly 1, e.g. {cpu: "0.7", memory: "0.3"}')
        return self


class UnitPrices(SpecModel):
    """Prices per hour of one core, one GiB of memory and one GiB of storage."""

    cpu_core_hour: Price
    memory_gib_hour: Price = Field(alias="memoryGiBHour")
    storage_gib_hour: Price = Field(alias="storageGiBHour")


def _label_key(key: str) -> str:
    prefix, slash, name = key.rpartition("/")
    if not is_label_name(name) or (slash and not is_dns_subdomain(prefix)):
        raise ValueError(f'"{key}" is not a label key; e.g. node.kubernetes.io/instance-type')
    return key


LabelKey = Annotated[str, AfterValidator(_label_key)]


class LabelExpression(SpecModel):
    """One `matchExpressions` entry of a Kubernetes label selector."""

    key: LabelKey
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _values_fit_operator(self) -> LabelExpression:
        if self.operator in ("In", "NotIn") and not self.values:
            raise SubfieldError(("values",), f'operator {self.operator} needs at least one value, e.g. '
                                 f'{{key: "{self.key}", operator: {self.operator}, values: [ecs.g7.xlarge]}}')
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise SubfieldError(("values",), f"operator {self.operator} takes no values, got {list(self.values)}")
        return self


class NodeSelector(SpecModel):
    """Which nodes a node price applies to; every part must hold."""

    match_labels: dict[LabelKey, str] = Field(default_factory=dict)
    match_expressions: tuple[LabelExpression, ...] = ()

    @model_validator(mode="after")
    def _not_empty(self) -> NodeSelector:
        if not self.match_labels and not self.match_expressions:
            raise ValueError("an empty selector would match every node; name the nodes with matchLabels, "
                             "e.g. {matchLabels: {node.kubernetes.io/instance-type: ecs.g7.xlarge}}")
        return self


class NodePrice(SpecModel):
    """The hourly price of each whole node the selector matches."""

    selector: NodeSelector
    hourly: Price


class StorageClassPrice(SpecModel):
    """The price of one GiB-hour of volumes of one storage class."""

    storage_class_name: str = Field(min_length=1)
    gib_hour: Price


class CostWeightsSpec(SpecModel):
    """`CostWeights.spec` (DESIGN.md §5); without unitPrices, OpenCost's public defaults apply."""

    currency: str
    weights: Weights | None = None
    unit_prices: UnitPrices = Field(default_factory=lambda: UnitPrices(
        cpu_core_hour=prices.OPENCOST_DEFAULT_CPU_CORE_HOUR, memory_gib_hour=prices.OPENCOST_DEFAULT_MEMORY_GIB_HOUR,
        storage_gib_hour=prices.OPENCOST_DEFAULT_STORAGE_GIB_HOUR))
    node_prices: tuple[NodePrice, ...] = ()
    storage_class_prices: tuple[StorageClassPrice, ...] = ()
    effective_from: AwareTime | None = None

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        return known_currency(value)

    @model_validator(mode="after")
    def _unique_storage_classes(self) -> CostWeightsSpec:
        names = [price.storage_class_name for price in self.storage_class_prices]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise SubfieldError(("storageClassPrices", index, "storageClassName"),
                                     f'storage class "{name}" is priced twice; give each storageClassName once')
        return self

    def to_price_version(self, *, name: str, effective_from: datetime | None = None) -> prices.PriceVersion:
        """This spec as the engine's price list; `effective_from` overrides the spec's (default: epoch)."""
        start = effective_from or self.effective_from or EPOCH
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError(f"effective_from must be timezone-aware, got {start!r}")
        rules = tuple(prices.NodePriceRule(rule.hourly, dict(rule.selector.match_labels), tuple(
            prices.LabelRequirement(e.key, e.operator, e.values) for e in rule.selector.match_expressions))
            for rule in self.node_prices)
        unit = self.unit_prices
        return prices.PriceVersion(
            currency=self.currency, cpu_core_hour=unit.cpu_core_hour, memory_gib_hour=unit.memory_gib_hour,
            storage_gib_hour=unit.storage_gib_hour, node_rules=rules, source=f"CostWeights/{name}",
            weights=None if self.weights is None else (self.weights.cpu, self.weights.memory),
            storage_class_prices={p.storage_class_name: p.gib_hour for p in self.storage_class_prices},
            effective_from=start.astimezone(UTC))


def _given(text: str | None) -> bool:
    return text is not None and text.strip() != ""


def _instant(text: str) -> None:
    try:
        _ = parse_date(text, "", "", compact=False) if ISO_DATE.fullmatch(text) else parse_rfc3339(text, "")
    except SpecError:
        what = f'"{text}" is not an RFC3339 time or a date'
        raise SpecError("", f'{what}; e.g. {_TIME_EXAMPLE} or "2025-06-01"') from None


#: Field validators of CostReportSpec: each raises SpecError on text its grammar refuses.
_CHECKS: dict[str, Callable[[Any], object]] = {
    "window": lambda text: parse_window(text, now=_VALIDATION_NOW), "start": _instant, "end": _instant,
    "time_zone": parse_timezone, "step": parse_step, "aggregate": parse_aggregate, "filter": parse_filter,
    "schedule": parse_schedule,
}


class CostReportSpec(SpecModel):
    """`CostReport.spec` (DESIGN.md §7): exactly one of `window` or `start`+`end`.

    `start`/`end` are both RFC3339 times or both dates (YYYY-MM-DD at local midnight of `timeZone`);
    like a /v2/cost window pair they mean [start, end). Empty strings count as not given.
    """

    window: str | None = None
    start: str | None = None
    end: str | None = None
    time_zone: str | None = None
    step: str | None = None
    aggregate: tuple[str, ...] = ("namespace",)
    filter: str | None = None
    method: Method = Method.EFFECTIVE
    idle: bool = Field(default=True, strict=True)
    share_idle: bool = Field(default=False, strict=True)
    share_split: ShareSplit = ShareSplit.WEIGHTED
    idle_by_node: bool = Field(default=False, strict=True)
    custom_weights: str | None = None
    schedule: str = "@hourly"
    top_n: int = Field(default=20, ge=1, le=500, strict=True)

    @field_validator("window", "start", "end", "time_zone", "step", "aggregate", "filter", "schedule", "custom_weights")
    @classmethod
    def _parses(cls, value: Any, info: ValidationInfo) -> Any:
        name = info.field_name or ""
        if name != "schedule" and (value is None or (isinstance(value, str) and not value.strip())):
            return value
        if name == "aggregate" and not value:
            raise ValueError('give at least one key, e.g. [namespace, "label:app"]')
        if name == "custom_weights" and not is_dns_subdomain(value):
            raise ValueError(f'"{value}" is not a CostWeights name (lowercase DNS-1123), e.g. default')
        try:
            _CHECKS.get(name, lambda _: None)(value)
        except SpecError as error:
            raise ValueError(error.message) from None
        return value

    @field_validator("method", mode="before")
    @classmethod
    def _report_method(cls, value: object) -> object:
        if value not in ("Request", "Usage", "Effective"):  # Method members equal their values
            why = "is served only by the Alauda usage API" if value == "ProjectQuota" else "is not a method"
            raise ValueError(f"{value!r} {why}; accepted: Request, Usage, Effective")
        return value

    @model_validator(mode="after")
    def _one_window(self) -> CostReportSpec:
        has_window, has_start, has_end = _given(self.window), _given(self.start), _given(self.end)
        if has_window and (has_start or has_end):
            raise SubfieldError(("window",), "give either window or start and end, not both")
        if not has_window and not (has_start and has_end):
            missing = "end" if has_start else "start" if has_end else "window"
            raise SubfieldError((missing,), 'give window (e.g. "lastweek", "7d") or both start and end '
                                 '(e.g. "2025-06-01" and "2025-06-08")')
        try:
            self.resolve_span(_VALIDATION_NOW, resolution=1)  # 1 s: "today" in +12:00 is 30 s long then
        except SpecError as error:
            if error.field != "spec.end":
                raise SubfieldError((error.field.removeprefix("spec."),), error.message) from None
            what = error.message.split("; accepted")[0]
            raise SubfieldError(("end",), f'{what}; e.g. start: "2025-06-01", end: "2025-06-08"') from None
        return self

    def zone(self) -> tzinfo:
        """`timeZone` (default UTC): keywords, dates and the sets' calendar grid are read in it."""
        return parse_timezone(self.time_zone)

    def resolve_span(self, now: datetime, resolution: int = 60) -> tuple[Window, int | None]:
        """The report's window at `now` (aware) floored to `resolution` seconds, and its step in
        seconds (None: one row per key over the whole window), checked by `domain.sets.resolve_span`,
        the same validator as /v2/cost's."""
        if _given(self.window):
            text, field = str(self.window), "spec.window"
        else:
            text, field = f"{self.start},{self.end}", "spec.end"
        step = self.step if _given(self.step) else None
        return resolve_span(text, step, now=now, tz=self.zone(), resolution=resolution, window_field=field,
                            step_field="spec.step")

    def aggregate_keys(self) -> tuple[AggregateKey, ...]:
        """The parsed `aggregate` keys."""
        return parse_aggregate(self.aggregate, field="spec.aggregate")

    def parsed_filter(self) -> Filter | None:
        """The parsed `filter`, or None for no filter."""
        return parse_filter(self.filter, field="spec.filter")

    def parsed_schedule(self) -> Schedule:
        """The parsed `schedule`."""
        return parse_schedule(self.schedule, field="spec.schedule")

    def custom_weights_name(self) -> str | None:
        """The CostWeights that prices `customCost`, or None ("" means none)."""
        return self.custom_weights if _given(self.custom_weights) else None


#: An accepted value of each field, shown with errors that do not carry their own example.
_EXAMPLES = {
    "currency": "CNY", "cpu": '"0.7"', "memory": '"0.3"', "cpuCoreHour": '"0.031611"', "memoryGiBHour": '"0.004237"',
    "storageGiBHour": '"0.0000548"', "hourly": '"0.82"', "selector": "{matchLabels: {node.kubernetes.io/os: linux}}",
    "key": "node.kubernetes.io/instance-type", "operator": "In (or NotIn, Exists, DoesNotExist)",
    "storageClassName": "ssd", "gibHour": '"0.0002"', "aggregate": '[namespace, "label:app"]',
    "shareSplit": "weighted (or even)", "topN": "20", "idle": "true", "shareIdle": "true", "idleByNode": "true",
    "start": '"2025-06-01" (quoted)', "end": '"2025-06-08" (quoted)',
}


#: The model of each nested field, to list the fields it accepts when an unknown one is given.
_CHILD_MODELS: dict[str, type[BaseModel]] = {
    "weights": Weights, "unitPrices": UnitPrices, "nodePrices": NodePrice, "selector": NodeSelector,
    "matchExpressions": LabelExpression, "storageClassPrices": StorageClassPrice,
}
def parse_cost_weights(obj: Mapping[str, Any]) -> CostWeightsSpec:
    """Validate a `CostWeights.spec`; any problem becomes one SpecError naming `spec.<camelPath>`."""
    return spec_errors.validate(CostWeightsSpec, obj, _EXAMPLES, _CHILD_MODELS)


def parse_cost_report(obj: Mapping[str, Any]) -> CostReportSpec:
    """Validate a `CostReport.spec`; any problem becomes one SpecError naming `spec.<camelPath>`."""
    return spec_errors.validate(CostReportSpec, obj, _EXAMPLES, _CHILD_MODELS)
