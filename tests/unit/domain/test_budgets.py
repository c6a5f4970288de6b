"""CostBudget specs, periods and the forecast, against hand-computed values.

Periods (UTC instants of [start, end)), each worked out by hand from the zone's offset:

| period    | zone             | now (UTC)            | local now         | start (UTC)          | end (UTC)            |
|-----------|------------------|----------------------|-------------------|----------------------|----------------------|
| monthly   | Asia/Shanghai    | 2026-03-31T17:30:07Z | 04-01 01:30 +08   | 2026-03-31T16:00:00Z | 2026-04-30T16:00:00Z |
| monthly   | UTC              | 2026-12-31T23:59:59Z | 12-31 23:59       | 2026-12-01T00:00:00Z | 2027-01-01T00:00:00Z |
| weekly    | UTC              | 2026-11-30T10:07:13Z | Monday            | 2026-11-30T00:00:00Z | 2026-12-07T00:00:00Z |
| weekly    | America/New_York | 2026-11-30T03:00:00Z | Sun 11-29 22:00   | 2026-11-23T05:00:00Z | 2026-11-30T05:00:00Z |
| quarterly | UTC              | 2026-08-15T12:00:00Z | Q3                | 2026-07-01T00:00:00Z | 2026-10-01T00:00:00Z |
| quarterly | Asia/Tokyo       | 2026-12-31T15:30:00Z | 2027-01-01 00:30  | 2026-12-31T15:00:00Z | 2027-03-31T15:00:00Z |
| daily     | America/New_York | 2026-03-08T12:00:00Z | DST day (23 h)    | 2026-03-08T05:00:00Z | 2026-03-09T04:00:00Z |

Forecast: period 2026-11-01..12-01 UTC, now 2026-11-20T12:00Z, spent 1000, 210 spent in the last 7 days
(lookback 11-13T12:00..11-20T12:00 = 604800 s): rate 210/604800 per s, 10.5 days left = 907200 s, so
forecast = 1000 + 210 × 907200 / 604800 = 1315. Two days into a period (now 11-03T00:00Z, spent 40):
the lookback is the period so far (172800 s), 28 days left, forecast = 40 + 40 × 28 / 2 = 600.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from kubetally.domain.budgets import Period, forecast, lookback_start, parse_cost_budget, period_bounds
from kubetally.domain.errors import SpecError


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@pytest.mark.parametrize(("period", "zone", "now", "start", "end"), [
    (Period.MONTHLY, "Asia/Shanghai", "2026-03-31T17:30:07Z", "2026-03-31T16:00:00Z", "2026-04-30T16:00:00Z"),
    (Period.MONTHLY, "UTC", "2026-12-31T23:59:59Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"),
    (Period.WEEKLY, "UTC", "2026-11-30T10:07:13Z", "2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z"),
    (Period.WEEKLY, "America/New_York", "2026-11-30T03:00:00Z", "2026-11-23T05:00:00Z", "2026-11-30T05:00:00Z"),
    (Period.QUARTERLY, "UTC", "2026-08-15T12:00:00Z", "2026-07-01T00:00:00Z", "2026-10-01T00:00:00Z"),
    (Period.QUARTERLY, "Asia/Tokyo", "2026-12-31T15:30:00Z", "2026-12-31T15:00:00Z", "2027-03-31T15:00:00Z"),
    (Period.DAILY, "America/New_York", "2026-03-08T12:00:00Z", "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z"),
])
def test_periods_are_calendar_periods_in_the_zone(period: Period, zone: str, now: str, start: str, end: str) -> None:
    tz = UTC if zone == "UTC" else ZoneInfo(zone)
    assert period_bounds(period, tz, utc(now)) == (utc(start), utc(end))


def test_the_forecast_is_the_recent_rate_over_the_time_left() -> None:
    start, end = utc("2026-11-01T00:00:00Z"), utc("2026-12-01T00:00:00Z")
    now = utc("2026-11-20T12:00:00Z")
    lookback = lookback_start(start, now)
    assert lookback == utc("2026-11-13T12:00:00Z")
    assert forecast(1000.0, 210.0, lookback=lookback, now=now, period_end=end) == pytest.approx(1315.0, rel=1e-12)
    early = utc("2026-11-03T00:00:00Z")
    assert lookback_start(start, early) == start
    assert forecast(40.0, 40.0, lookback=start, now=early, period_end=end) == pytest.approx(600.0, rel=1e-12)
    assert forecast(5.0, 0.0, lookback=start, now=start, period_end=end) == 5.0  # no lookback: the spend so far
    assert forecast(7.0, 3.0, lookback=start, now=end, period_end=end) == 7.0  # the period is over


def test_a_valid_spec_and_its_defaults() -> None:
    spec = parse_cost_budget({"amount": "2000", "currency": "CNY"})
    assert (spec.amount, spec.period, spec.method.value) == (Decimal(2000), Period.MONTHLY, "Effective")
    assert [t.key for t in spec.thresholds] == ["spent-80", "spent-100", "forecast-100"]
    admin = parse_cost_budget({"amount": "1999.50", "currency": "USD", "period": "quarterly", "timeZone": "+08:00",
                               "scope": {"project": "retail", "namespaces": ["shop", "payments"],
                                         "filter": 'label[team]:"web"'},
                               "thresholds": [{"percent": "50"}, {"percent": "1000", "basis": "forecast"}]})
    scope = admin.scope.as_filter()
    assert scope is not None
    assert [t.key for t in admin.thresholds] == ["spent-50", "forecast-1000"]


@pytest.mark.parametrize(("spec", "field", "fragment"), [
    ({"amount": "-5", "currency": "CNY"}, "spec.amount", "not a decimal string"),
    ({"amount": "0", "currency": "CNY"}, "spec.amount", "must be more than 0"),
    ({"amount": 2000, "currency": "CNY"}, "spec.amount", "not a string"),
    ({"amount": "2000", "currency": "XYZ"}, "spec.currency", "accepted: CNY"),
    ({"amount": "2000", "currency": "CNY", "period": "yearly"}, "spec.period", "'monthly'"),
    ({"amount": "2000", "currency": "CNY", "thresholds": [{"percent": "1001"}]}, "spec.thresholds[0].percent",
     "outside (0, 1000]"),
    ({"amount": "2000", "currency": "CNY", "thresholds": [{"percent": "80"}, {"percent": "80"}]},
     "spec.thresholds[1]", "given twice"),
    ({"amount": "2000", "currency": "CNY", "timeZone": "Mars/Base"}, "spec.timeZone", "not a time zone"),
    ({"amount": "2000", "currency": "CNY", "scope": {"filter": 'namespace:"a" +'}}, "spec.scope.filter", "trailing"),
    ({"amount": "2000", "currency": "CNY", "scope": {"namespaces": ["Not_A_Name"]}}, "spec.scope.namespaces",
     "not a namespace name"),
    ({"amount": "2000", "currency": "CNY", "method": "ProjectQuota"}, "spec.method", "accepted: Request"),
])
def test_bad_specs_name_the_field_and_what_is_accepted(spec: dict[str, object], field: str, fragment: str) -> None:
    with pytest.raises(SpecError) as refused:
        parse_cost_budget(spec)
    assert refused.value.field == field
    assert fragment in refused.value.message
