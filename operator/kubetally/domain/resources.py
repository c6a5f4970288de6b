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
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal, localcontext
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from kubetally.domain.aggregation import AggregateKey, parse_aggregate
from kubetally.domain.errors import SpecError
from kubetally.domain.filters import Filter, parse_filter
from kubetally.domain.prices import (
    OPENCOST_DEFAULT_CPU_CORE_HOUR,
    OPENCOST_DEFAULT_MEMORY_GIB_HOUR,
    OPENCOST_DEFAULT_STORAGE_GIB_HOUR,
    LabelRequirement,
    NodePriceRule,
    PriceVersion,
)
from kubetally.domain.schedule import Schedule, parse_schedule
from kubetally.domain.timeparse import EPOCH, ISO_DATE, parse_date, parse_rfc3339
from kubetally.domain.vocabulary import CURRENCIES, Method, ShareSplit
from kubetally.domain.window import Window, parse_duration, parse_timezone, parse_window

__all__ = [
    "CostReportSpec",
    "CostWeightsSpec",
    "LabelExpression",
    "NodePrice",
    "NodeSelector",
    "StorageClassPrice",
    "UnitPrices",
    "Weights",
    "parse_cost_report",
    "parse_cost_weights",
]

_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
_MAX_DECIMAL_CHARS = 64
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_TIME_EXAMPLE = '"2025-06-01T00:00:00Z"'
#: Any instant off every local midnight (zones of this century have whole-minute offsets), so that
#: "today" or "month" never parse as empty while a spec is only being validated.
_VALIDATION_NOW = datetime(2000, 1, 1, 12, 0, 30, tzinfo=UTC)


class _SubfieldError(ValueError):
    """Raised by a model validator about one of its fields (`path`, camelCase, relative)."""

    def __init__(self, path: tuple[int | str, ...], message: str) -> None:
        super().__init__(message)
        self.path = path


def _decimal_string(example: str, what: str) -> Callable[[object], Decimal]:
    def check(value: object) -> Decimal:
        if not isinstance(value, str):
            shown = str(value).lower() if isinstance(value, bool) else str(value)
            raise ValueError(f'{shown} is a {type(value).__name__}, not a string: write {what} as quoted '
                             f'decimal strings, e.g. "{example}"')
        if len(value) > _MAX_DECIMAL_CHARS or _DECIMAL.fullmatch(value) is None:
            raise ValueError(f'"{value[:_MAX_DECIMAL_CHARS]}" is not a decimal string; write {what} as '
                             f'digits with an optional fraction, no sign or exponent, e.g. "{example}"')
        return Decimal(value)

    return check


def _plain(value: Decimal) -> str:
    return format(value, "f")


Price = Annotated[Decimal, BeforeValidator(_decimal_string("0.031611", "prices")), PlainSerializer(_plain)]
Weight = Annotated[Decimal, BeforeValidator(_decimal_string("0.7", "weights")), PlainSerializer(_plain)]


def _aware_time(value: object) -> datetime:
    if isinstance(value, datetime):  # YAML loaders turn unquoted timestamps into datetimes
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f'"{value.isoformat()}" has no time zone; add Z or an offset, e.g. {_TIME_EXAMPLE}')
        return value.astimezone(UTC).replace(microsecond=0)
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an RFC3339 time; write a quoted string, e.g. {_TIME_EXAMPLE}")
    try:
        return parse_rfc3339(value.strip(), "effectiveFrom")
    except SpecError:
        raise ValueError(f'"{value}" is not an RFC3339 time with a time zone; e.g. {_TIME_EXAMPLE}') from None


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


AwareTime = Annotated[datetime, BeforeValidator(_aware_time), PlainSerializer(_rfc3339)]


class _Spec(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


# --- CostWeights ---------------------------------------------------------------------------------


class Weights(_Spec):
    """How a node's hourly price splits between CPU and memory; the two sum to exactly 1."""

    cpu: Weight
    memory: Weight

    @model_validator(mode="after")
    def _sum_to_one(self) -> Weights:
        with localcontext(prec=200):
            total = self.cpu + self.memory
        if total != 1:
            raise ValueError(f'cpu "{_plain(self.cpu)}" + memory "{_plain(self.memory)}" = {_plain(total)}; '
                             'the weights must sum to exactly 1, e.g. {cpu: "0.7", memory: "0.3"}')
        return self


class UnitPrices(_Spec):
    """Prices per hour of one core, one GiB of memory and one GiB of storage."""

    cpu_core_hour: Price
    memory_gib_hour: Price = Field(alias="memoryGiBHour")
    storage_gib_hour: Price = Field(alias="storageGiBHour")


def _opencost_unit_prices() -> UnitPrices:
    return UnitPrices(
        cpu_core_hour=OPENCOST_DEFAULT_CPU_CORE_HOUR,
        memory_gib_hour=OPENCOST_DEFAULT_MEMORY_GIB_HOUR,
        storage_gib_hour=OPENCOST_DEFAULT_STORAGE_GIB_HOUR,
    )


def _check_label_key(key: str) -> None:
    prefix, slash, name = key.rpartition("/")
    if not (len(name) <= 63 and _LABEL_NAME.fullmatch(name)) or (
        slash and not (len(prefix) <= 253 and _DNS_SUBDOMAIN.fullmatch(prefix))
    ):
        raise ValueError(f'"{key}" is not a label key; e.g. node.kubernetes.io/instance-type')


class LabelExpression(_Spec):
    """One `matchExpressions` entry of a Kubernetes label selector."""

    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _values_fit_operator(self) -> LabelExpression:
        _check_label_key(self.key)
        if self.operator in ("In", "NotIn") and not self.values:
            raise _SubfieldError(("values",), f'operator {self.operator} needs at least one value, e.g. '
                                 f'{{key: "{self.key}", operator: {self.operator}, values: [ecs.g7.xlarge]}}')
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise _SubfieldError(("values",), f"operator {self.operator} takes no values; remove values {list(self.values)}")
        return self


class NodeSelector(_Spec):
    """Which nodes a node price applies to; every part must hold."""

    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: tuple[LabelExpression, ...] = ()

    @model_validator(mode="after")
    def _not_empty(self) -> NodeSelector:
        if not self.match_labels and not self.match_expressions:
            raise ValueError("an empty selector would match every node; name the nodes with matchLabels, "
                             "e.g. {matchLabels: {node.kubernetes.io/instance-type: ecs.g7.xlarge}}")
        for key in self.match_labels:
            try:
                _check_label_key(key)
            except ValueError as error:
                raise _SubfieldError(("matchLabels", key), str(error)) from None
        return self


class NodePrice(_Spec):
    """The hourly price of each whole node the selector matches."""

    selector: NodeSelector
    hourly: Price


class StorageClassPrice(_Spec):
    """The price of one GiB-hour of volumes of one storage class."""

    storage_class_name: str = Field(min_length=1)
    gib_hour: Price


class CostWeightsSpec(_Spec):
    """`CostWeights.spec` (DESIGN.md §5); without unitPrices, OpenCost's public defaults apply."""

    currency: str
    weights: Weights | None = None
    unit_prices: UnitPrices = Field(default_factory=_opencost_unit_prices)
    node_prices: tuple[NodePrice, ...] = ()
    storage_class_prices: tuple[StorageClassPrice, ...] = ()
    effective_from: AwareTime | None = None

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in CURRENCIES:
            raise ValueError(f'"{value}" is not a supported currency; accepted: {", ".join(CURRENCIES)}')
        return value

    @model_validator(mode="after")
    def _unique_storage_classes(self) -> CostWeightsSpec:
        names = [price.storage_class_name for price in self.storage_class_prices]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise _SubfieldError(("storageClassPrices", index, "storageClassName"),
                                     f'storage class "{name}" is priced twice; give each storageClassName once')
        return self

    def to_price_version(self, *, name: str, effective_from: datetime | None = None) -> PriceVersion:
        """This spec as the engine's price list; `effective_from` overrides the spec's (default: epoch)."""
        start = effective_from or self.effective_from or EPOCH
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError(f"effective_from must be timezone-aware, got {start!r}")
        rules = tuple(
            NodePriceRule(
                hourly=rule.hourly,
                match_labels=dict(rule.selector.match_labels),
                match_expressions=tuple(LabelRequirement(e.key, e.operator, e.values)
                                        for e in rule.selector.match_expressions),
            )
            for rule in self.node_prices
        )
        return PriceVersion(
            currency=self.currency,
            cpu_core_hour=self.unit_prices.cpu_core_hour,
            memory_gib_hour=self.unit_prices.memory_gib_hour,
            storage_gib_hour=self.unit_prices.storage_gib_hour,
            weights=None if self.weights is None else (self.weights.cpu, self.weights.memory),
            node_rules=rules,
            storage_class_prices={p.storage_class_name: p.gib_hour for p in self.storage_class_prices},
            effective_from=start.astimezone(UTC),
            source=f"CostWeights/{name}",
        )


# --- CostReport ----------------------------------------------------------------------------------


def _given(text: str | None) -> bool:
    return text is not None and text.strip() != ""


def _time_or_date(value: object) -> object:
    """Accept what YAML loaders make of unquoted times and dates, as the strings they were."""
    if isinstance(value, datetime):
        return _rfc3339(_aware_time(value))
    if isinstance(value, date):
        return value.isoformat()
    return value


def _reraise(error: SpecError) -> ValueError:
    return ValueError(error.message)


class CostReportSpec(_Spec):
    """`CostReport.spec` (DESIGN.md §7): exactly one of `window` or `start`+`end`.

    `start`/`end` are both RFC3339 times or both dates (YYYY-MM-DD at local midnight of `timeZone`);
    like a /v2/cost window pair they mean [start, end). Empty strings count as not given.
    """

    window: str | None = None
    start: Annotated[str | None, BeforeValidator(_time_or_date)] = None
    end: Annotated[str | None, BeforeValidator(_time_or_date)] = None
    time_zone: str | None = None
    step: str | None = None
    aggregate: tuple[str, ...] = ("namespace",)
    filter: str | None = None
    method: Method = Method.EFFECTIVE
    idle: StrictBool = True
    share_idle: StrictBool = False
    share_split: ShareSplit = ShareSplit.WEIGHTED
    idle_by_node: StrictBool = False
    custom_weights: str | None = None
    schedule: str = "@hourly"
    top_n: StrictInt = Field(default=20, ge=1, le=500)

    @field_validator("window")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if _given(value):
            try:
                parse_window(str(value), now=_VALIDATION_NOW)
            except SpecError as error:
                raise _reraise(error) from None
        return value

    @field_validator("start", "end")
    @classmethod
    def _instant(cls, value: str | None) -> str | None:
        if _given(value):
            text = str(value).strip()
            try:
                if ISO_DATE.fullmatch(text):
                    parse_date(text, "start", "2025-06-01", compact=False)
                else:
                    parse_rfc3339(text, "start")
            except SpecError:
                raise ValueError(f'"{value}" is not an RFC3339 time or a date; e.g. {_TIME_EXAMPLE} '
                                 'or "2025-06-01"') from None
        return value

    @field_validator("time_zone", "step", "filter", "schedule", "custom_weights")
    @classmethod
    def _parses(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not _given(value):
            if info.field_name == "schedule":
                raise ValueError(f'"{value}" is empty; accepted: @hourly, @daily, 30m, "0 3 * * 1"')
            return value
        text = str(value)
        try:
            if info.field_name == "time_zone":
                parse_timezone(text)
            elif info.field_name == "step":
                parse_duration(text)
            elif info.field_name == "filter":
                parse_filter(text)
            elif info.field_name == "schedule":
                parse_schedule(text)
            elif len(text) > 253 or _DNS_SUBDOMAIN.fullmatch(text) is None:
                raise ValueError(f'"{text}" is not a CostWeights name (lowercase DNS-1123), e.g. default')
        except SpecError as error:
            raise _reraise(error) from None
        return value

    @field_validator("aggregate")
    @classmethod
    def _aggregate(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError('give at least one key, e.g. [namespace, "label:app"]')
        try:
            parse_aggregate(value)
        except SpecError as error:
            raise _reraise(error) from None
        return value

    @field_validator("method")
    @classmethod
    def _report_method(cls, value: Method) -> Method:
        if value is Method.PROJECT_QUOTA:
            raise ValueError("ProjectQuota is served only by the Alauda usage API, not by CostReports; "
                             "accepted: Request, Usage, Effective")
        return value

    @model_validator(mode="after")
    def _one_window(self) -> CostReportSpec:
        has_window, has_start, has_end = _given(self.window), _given(self.start), _given(self.end)
        if has_window and (has_start or has_end):
            raise _SubfieldError(("window",), "give either window or start and end, not both")
        if not has_window and not (has_start and has_end):
            missing = "end" if has_start else "start" if has_end else "window"
            raise _SubfieldError((missing,), 'give window (e.g. "lastweek", "7d") or both start and end '
                                 '(e.g. "2025-06-01" and "2025-06-08")')
        if not has_window:
            try:
                self.resolve_window(_VALIDATION_NOW)
            except SpecError as error:
                raise _SubfieldError(("end",), error.message) from None
        return self

    def zone(self) -> tzinfo:
        """The time zone of keyword windows, dates and steps (UTC unless `timeZone` says otherwise)."""
        return parse_timezone(self.time_zone)

    def resolve_window(self, now: datetime) -> Window:
        """The report's window at `now` (aware)."""
        if _given(self.window):
            return parse_window(str(self.window), now=now, tz=self.zone(), field="spec.window")
        return parse_window(f"{self.start},{self.end}", now=now, tz=self.zone(), field="spec.end")

    def step_seconds(self) -> int | None:
        """Seconds of `step`, or None for one row per key over the whole window."""
        if self.step is None or not _given(self.step):
            return None
        return parse_duration(self.step, field="spec.step")

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


# --- ValidationError → SpecError -----------------------------------------------------------------


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _fields_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str] | None:
    """The camelCase fields accepted by the model at `loc` (the path of an unknown field)."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if isinstance(part, int) or current is None:
            continue
        found = [info for name, info in current.model_fields.items() if part in (info.alias, name)]
        current = _model_in(found[0].annotation) if found else None
    if current is None:
        return None
    return [info.alias or name for name, info in current.model_fields.items()]


def _path(loc: tuple[int | str, ...]) -> str:
    out = "spec"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _explain(model: type[BaseModel], error: Any) -> tuple[str, str]:
    loc: tuple[int | str, ...] = tuple(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, _SubfieldError):
        return _path((*loc, *cause.path)), str(cause)
    if isinstance(cause, ValueError):
        return _path(loc), str(cause)
    if error["type"] == "extra_forbidden":
        accepted = _fields_at(model, loc)
        tail = f"; accepted fields: {', '.join(accepted)}" if accepted else ""
        return _path(loc[:-1]), f'unknown field "{loc[-1]}"{tail}'
    if error["type"] == "missing":
        return _path(loc), "is required"
    return _path(loc), f"{error['msg']} (got {error['input']!r})"


def _spec_error(model: type[BaseModel], exc: ValidationError) -> SpecError:
    problems = [_explain(model, error) for error in exc.errors()]
    field, message = problems[0]
    if len(problems) > 1:
        message += "; also " + "; ".join(f"{where}: {what}" for where, what in problems[1:])
    return SpecError(field, message)


def parse_cost_weights(obj: Mapping[str, Any]) -> CostWeightsSpec:
    """Validate a `CostWeights.spec`; any problem becomes one SpecError naming `spec.<field>`."""
    try:
        return CostWeightsSpec.model_validate(dict(obj))
    except ValidationError as exc:
        raise _spec_error(CostWeightsSpec, exc) from None


def parse_cost_report(obj: Mapping[str, Any]) -> CostReportSpec:
    """Validate a `CostReport.spec`; any problem becomes one SpecError naming `spec.<field>`."""
    try:
        return CostReportSpec.model_validate(dict(obj))
    except ValidationError as exc:
        raise _spec_error(CostReportSpec, exc) from None
