"""The `CostBudget` spec (issue 17) and the arithmetic of a budget: its period, spend rate and forecast.

A CostBudget says "this scope may spend `amount` `currency` per `period`; tell us at these
thresholds". This module is pure (no clock, no ledger): `parse_cost_budget` validates a spec into one
typed value or one SpecError naming `spec.<field>`, like the other CR specs (`domain.resources`);
`period_bounds` finds the calendar period containing an instant; `forecast` projects the spend.

Decisions:

- Money is a quoted decimal string ("2000", "1999.50"), read as `Decimal`; `amount` must be > 0.
- Periods are calendar periods in `timeZone` (default UTC): `daily` from local midnight, `weekly`
  from Monday's local midnight, `monthly` from the 1st, `quarterly` from Jan, Apr, Jul or Oct 1st.
  A period ends where the next one starts (a DST day is 23 or 25 hours).
- Thresholds are percents of `amount`, each on `spent` or on `forecast`: `{percent: "80", basis: spent}`.
  0 < percent ≤ 1000, each (percent, basis) pair once ("80" and "80.0" are one); default: 80 and 100
  on spent, 100 on forecast.
- Notifications (`notify`): a webhook URL read from a key of the one Secret the operator may read,
  `kubetally-budget-webhooks` in its namespace, for budgets in the admin namespaces (`kubetally.budgets`).
- Scope: a budget in a tenant namespace covers that namespace and nothing else; `spec.scope`
  (project, namespaces, or a /v2/cost filter, ANDed) is for budgets in the operator's admin
  namespaces. Whether a namespace is an admin namespace is the operator's setting, so that check is
  made where it is known (`kubetally.budgets`), not here.

Forecast (what `forecast` computes), in the budget's currency:

    lookback  = [max(period start, now − 7 d), now)              the spend-rate window
    rate      = spend in lookback / length of lookback            [currency / s]
    forecast  = spent + rate × (period end − now)                 (= spent when the lookback is empty)

The rate is that of the last 7 days, or of the period so far when it is younger; it is never
negative, so the forecast is never below `spent`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, field_validator, model_validator

from kubetally.domain import spec_errors
from kubetally.domain.errors import SpecError
from kubetally.domain.filters import Filter, parse_filter
from kubetally.domain.names import is_dns_label, is_dns_subdomain
from kubetally.domain.resources import SpecModel, decimal_string, known_currency, plain
from kubetally.domain.spec_errors import SubfieldError
from kubetally.domain.timeparse import parse_timezone
from kubetally.domain.vocabulary import Method

__all__ = ["WEBHOOK_SECRET", "CostBudgetSpec", "Notify", "Period", "Threshold", "forecast", "lookback_start",
           "parse_cost_budget", "period_bounds"]

#: How far back the spend rate of a forecast looks.
LOOKBACK = timedelta(days=7)
MAX_PERCENT = Decimal(1000)

Money = Annotated[Decimal, BeforeValidator(decimal_string("2000", "amounts")), PlainSerializer(plain)]
Percent = Annotated[Decimal, BeforeValidator(decimal_string("80", "percents")), PlainSerializer(plain)]


class Period(enum.StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"


class Threshold(SpecModel):
    """A percent of `amount`, crossed when `spent` (or the forecast: `basis`) reaches it. The field is
    not called `on`: YAML 1.1 (kubectl, PyYAML) reads a bare `on` key as the boolean true."""

    percent: Percent
    basis: Literal["spent", "forecast"] = "spent"

    @field_validator("percent")
    @classmethod
    def _in_range(cls, value: Decimal) -> Decimal:
        if not 0 < value <= MAX_PERCENT:
            raise ValueError(f"{plain(value)} is outside (0, {MAX_PERCENT}]; e.g. 80")
        return value

    @property
    def number(self) -> Decimal:
        """`percent` without trailing zeros: "80" and "80.0" are one threshold."""
        normal = self.percent.normalize()
        return normal.quantize(Decimal(1)) if normal == normal.to_integral_value() else normal

    @property
    def key(self) -> str:
        """How the status names it: `spent-80`, `forecast-100` (`number`, so "80.0" is `spent-80` too)."""
        return f"{self.basis}-{plain(self.number)}"


class BudgetScope(SpecModel):
    """What an admin budget covers (all given parts ANDed); a tenant budget may not set it."""

    project: str | None = None
    namespaces: tuple[str, ...] = ()
    filter: str | None = None

    @field_validator("namespaces")
    @classmethod
    def _names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not is_dns_label(name):
                raise ValueError(f'"{name}" is not a namespace name (lowercase DNS-1123 label), e.g. shop')
        return value

    @field_validator("filter")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            try:
                parse_filter(value, field="filter")
            except SpecError as error:
                raise ValueError(error.message) from None
        return value

    def as_filter(self) -> Filter | None:
        """The scope in the /v2/cost filter grammar (the one compiler of `domain.filters`)."""
        parts = []
        if self.project:
            parts.append(f'project:"{_quoted(self.project)}"')
        if self.namespaces:
            parts.append("namespace:" + ",".join(f'"{name}"' for name in self.namespaces))
        if self.filter and self.filter.strip():
            parts.append(f"({self.filter})")
        return parse_filter("+".join(parts), field="spec.scope") if parts else None

    @property
    def given(self) -> bool:
        return bool(self.project or self.namespaces or (self.filter and self.filter.strip()))


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


#: The one Secret the operator may read (in its own namespace): a key per webhook URL.
WEBHOOK_SECRET = "kubetally-budget-webhooks"
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")


class Notify(SpecModel):
    """Where threshold crossings are POSTed: the URL under `secret_key` of Secret `WEBHOOK_SECRET` in
    the operator's namespace, as generic JSON or a Slack body. One Secret, named in the operator's RBAC
    (`resourceNames`), so the operator can read no other Secret."""

    secret_key: str
    format: Literal["json", "slack"] = "json"

    @field_validator("secret_key")
    @classmethod
    def _key(cls, value: str) -> str:
        if len(value) > 253 or not _SECRET_KEY.fullmatch(value):
            raise ValueError(f'"{value[:64]}" is not a Secret key (letters, digits, -, _ and .), e.g. finops-slack')
        return value


_DEFAULT_THRESHOLDS = (Threshold(percent=Decimal(80)), Threshold(percent=Decimal(100)),
                       Threshold(percent=Decimal(100), basis="forecast"))


class CostBudgetSpec(SpecModel):
    """`CostBudget.spec`: amount per period in a currency, the scope, the method, the thresholds."""

    amount: Money
    currency: str
    period: Period = Period.MONTHLY
    time_zone: str | None = None
    method: Method = Method.EFFECTIVE
    custom_weights: str | None = None
    scope: BudgetScope = Field(default_factory=BudgetScope)
    thresholds: tuple[Threshold, ...] = _DEFAULT_THRESHOLDS
    notify: Notify | None = None

    @field_validator("amount")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError('must be more than 0, e.g. "2000"')
        return value

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        return known_currency(value)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        try:
            parse_timezone(value)
        except SpecError as error:
            raise ValueError(error.message) from None
        return value

    @field_validator("method", mode="before")
    @classmethod
    def _budget_method(cls, value: object) -> object:
        if value not in ("Request", "Usage", "Effective"):
            raise ValueError(f"{value!r} is not a method of a budget; accepted: Request, Usage, Effective")
        return value

    @field_validator("custom_weights")
    @classmethod
    def _weights_name(cls, value: str | None) -> str | None:
        if value and not is_dns_subdomain(value):
            raise ValueError(f'"{value}" is not a CostWeights name (lowercase DNS-1123), e.g. default')
        return value

    @model_validator(mode="after")
    def _thresholds_once(self) -> CostBudgetSpec:
        keys = [threshold.key for threshold in self.thresholds]
        for index, key in enumerate(keys):
            if key in keys[:index]:
                raise SubfieldError(("thresholds", index), f"{key.replace('-', ' ')}% is given twice; give each "
                                                           "(percent, basis) once")
        return self

    def zone(self) -> tzinfo:
        return parse_timezone(self.time_zone)

    def weights_name(self) -> str | None:
        """The CostWeights pricing the spend: `customWeights`, or None for the default book."""
        return self.custom_weights or None


def parse_cost_budget(obj: Mapping[str, Any]) -> CostBudgetSpec:
    """Validate a `CostBudget.spec`; any problem becomes one SpecError naming `spec.<camelPath>`."""
    return spec_errors.validate(CostBudgetSpec, obj, {"amount": '"2000"', "currency": "CNY",
                                                      "period": "monthly (or daily, weekly, quarterly)",
                                                      "percent": "80", "basis": "spent (or forecast)"},
                                {"scope": BudgetScope, "thresholds": Threshold, "notify": Notify})


def period_bounds(period: Period, zone: tzinfo, now: datetime) -> tuple[datetime, datetime]:
    """The calendar period of `period` in `zone` containing the aware instant `now`: [start, end) in UTC."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    local = now.astimezone(zone)
    day = local.date()
    if period is Period.DAILY:
        first, after = day, day + timedelta(days=1)
    elif period is Period.WEEKLY:
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
    else:
        months = 1 if period is Period.MONTHLY else 3
        month = day.month if months == 1 else day.month - (day.month - 1) % 3
        first = day.replace(month=month, day=1)
        index = first.year * 12 + first.month - 1 + months
        after = first.replace(year=index // 12, month=index % 12 + 1)
    start = datetime(first.year, first.month, first.day, tzinfo=zone).astimezone(UTC)
    end = datetime(after.year, after.month, after.day, tzinfo=zone).astimezone(UTC)
    return start, end


def lookback_start(period_start: datetime, now: datetime) -> datetime:
    """The start of the spend-rate window: 7 days before `now`, or the period's start if later."""
    return max(period_start, now - LOOKBACK)


def forecast(spent: float, recent: float, *, lookback: datetime, now: datetime, period_end: datetime) -> float:
    """Spend at the period's end: `spent` + the rate of `recent` (spent in [lookback, now)) × the
    time left (module doc); `spent` when the lookback is empty or the period is over."""
    window = (now - lookback).total_seconds()
    left = max(0.0, (period_end - now).total_seconds())
    rate = max(0.0, recent) / window if window > 0 else 0.0
    return spent + rate * left
