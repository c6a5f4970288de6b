"""The `schedule` of a CostReport: when the operator recomputes it next.

A CostReport says how often its status is refreshed (`schedule: "@hourly"`). The handler needs one
answer from it, "when after this instant?", and the answer must not depend on the host's clock or
zone, so that restarts and replicas agree. This module parses the text once and answers
`Schedule.next_after(t)`; it is pure (no clock, no environment).

Accepted forms:

    @hourly @daily @weekly @monthly   the cron expressions 0 * * * *, 0 0 * * *, 0 0 * * 0, 0 0 1 * *
    a duration (30m, 6h, 1d)          every N, aligned on the unix epoch (30m fires at :00 and :30 UTC,
                                      6h at 00:00, 06:00, 12:00, 18:00 UTC); at least 5m
    minute hour day-of-month month day-of-week
                                      a 5-field cron expression, always in UTC; each field is a comma
                                      list of `*`, `*/n`, `a`, `a-b` or `a-b/n`; ranges 0-59, 0-23,
                                      1-31, 1-12, 0-7 (0 and 7 are Sunday)

As in Vixie cron, when both day-of-month and day-of-week are restricted (neither starts with `*`), a
day matches if either does. Expressions that can never fire (`0 0 31 2 *`) are rejected.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from kubetally.domain.errors import SpecError
from kubetally.domain.timeparse import DURATION_SHAPE, EPOCH, duration_or_reason

__all__ = ["MIN_INTERVAL_SECONDS", "SCHEDULE_EXAMPLES", "CronFields", "Schedule", "parse_schedule"]

#: Shortest interval a duration schedule may have.
MIN_INTERVAL_SECONDS = 300
SCHEDULE_EXAMPLES = '@hourly, @daily, @weekly, @monthly, 30m, 6h, "*/15 * * * *", "0 3 * * 1"'

_MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *"}
#: (name, lowest, highest) of the five cron fields.
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day-of-month", 1, 31), ("month", 1, 12), ("day-of-week", 0, 7))
#: Days searched by `next_after`: a 29 February schedule may wait 8 years (2096 → 2104).
_MAX_DAYS = 366 * 9


@dataclass(frozen=True, slots=True)
class CronFields:
    """The five cron fields as sets of allowed values (day-of-week 0-6, Sunday 0)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_restricted: bool
    weekdays_restricted: bool

    def day_matches(self, day: date) -> bool:
        """True if the schedule fires on some minute of `day`."""
        if day.month not in self.months:
            return False
        in_days = day.day in self.days
        in_weekdays = (day.weekday() + 1) % 7 in self.weekdays  # Python Monday=0 → cron Monday=1
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule: an epoch-aligned interval, or cron fields (UTC). `text` is as written."""

    text: str
    interval_seconds: int | None = None
    cron: CronFields | None = None

    def next_after(self, t: datetime) -> datetime:
        """The first instant strictly after `t` at which the schedule fires, in UTC."""
        if t.tzinfo is None or t.utcoffset() is None:
            raise ValueError(f"t must be timezone-aware, got {t!r}")
        t = t.astimezone(UTC)
        if self.interval_seconds is not None:
            step = timedelta(seconds=self.interval_seconds)
            return EPOCH + ((t - EPOCH) // step + 1) * step
        if self.cron is None:
            raise ValueError("a Schedule needs an interval or cron fields")
        return _next_cron(self.cron, t)


def _next_cron(cron: CronFields, t: datetime) -> datetime:
    start = t.replace(second=0, microsecond=0) + timedelta(minutes=1)
    hours, minutes = sorted(cron.hours), sorted(cron.minutes)
    day = start.date()
    for _ in range(_MAX_DAYS):
        if cron.day_matches(day):
            earliest = start.hour * 60 + start.minute if day == start.date() else 0
            for hour in hours:
                for minute in minutes:
                    if hour * 60 + minute >= earliest:
                        return datetime.combine(day, time(hour, minute), tzinfo=UTC)
        day += timedelta(days=1)
    raise ValueError(f"cron schedule never fires within {_MAX_DAYS} days after {t.isoformat()}")


def _fail(field: str, message: str) -> SpecError:
    return SpecError(field, f"{message}; accepted: {SCHEDULE_EXAMPLES}")


def _number(text: str, name: str, low: int, high: int, field: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise _fail(field, f'{name} field: "{text}" is not a number')
    value = int(text)
    if not low <= value <= high:
        raise _fail(field, f"{name} field: {value} is outside {low}-{high}")
    return value


def _parse_item(item: str, name: str, low: int, high: int, field: str) -> set[int]:
    """One comma-separated item: `*`, `*/n`, `a`, `a-b` or `a-b/n`."""
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isascii() or not step_text.isdigit() or int(step_text) == 0:
            raise _fail(field, f'{name} field: "{item}" needs a positive step after "/"')
        step = int(step_text)
    if base == "*":
        first, last = low, high
    elif "-" in base:
        left, _, right = base.partition("-")
        first, last = _number(left, name, low, high, field), _number(right, name, low, high, field)
        if first > last:
            raise _fail(field, f'{name} field: "{item}" runs backwards; write the smaller number first')
    elif slash:
        raise _fail(field, f'{name} field: "{item}": a step needs "*" or a range before "/", e.g. */15')
    else:
        first = last = _number(base, name, low, high, field)
    return set(range(first, last + 1, step))


def _parse_cron(text: str, expression: str, field: str) -> CronFields:
    parts = expression.split()
    if len(parts) != 5:
        raise _fail(field, f'"{text}" has {len(parts)} fields; a cron expression has 5: minute hour day month weekday')
    sets: list[frozenset[int]] = []
    for part, (name, low, high) in zip(parts, _FIELDS, strict=True):
        values: set[int] = set()
        for item in part.split(","):
            if item == "":
                raise _fail(field, f'{name} field: "{part}" has an empty entry')
            values |= _parse_item(item, name, low, high, field)
        sets.append(frozenset(values))
    weekdays = frozenset(value % 7 for value in sets[4])
    cron = CronFields(sets[0], sets[1], sets[2], sets[3], weekdays, not parts[2].startswith("*"),
                      not parts[4].startswith("*"))
    if not cron.weekdays_restricted:
        longest = max(calendar.monthrange(2000, month)[1] for month in cron.months)  # 2000: leap year
        if min(cron.days) > longest:
            raise _fail(field, f'"{text}" never fires: no month of {parts[3]} has day {parts[2]}')
    return cron


def parse_schedule(text: str, *, field: str = "schedule") -> Schedule:
    """Parse a schedule (see the module doc); raises SpecError quoting the bad text."""
    stripped = text.strip()
    if stripped == "":
        raise _fail(field, f'"{text}" is empty')
    if stripped.startswith("@"):
        expression = _MACROS.get(stripped.lower())
        if expression is None:
            raise _fail(field, f'"{text}" is not a schedule macro')
        return Schedule(text=text, cron=_parse_cron(text, expression, field))
    if DURATION_SHAPE.fullmatch(stripped):
        seconds = duration_or_reason(stripped)
        if isinstance(seconds, str):
            raise _fail(field, seconds)
        if seconds < MIN_INTERVAL_SECONDS:
            raise _fail(field, f'"{text}" is shorter than the minimum interval of 5m')
        return Schedule(text=text, interval_seconds=seconds)
    return Schedule(text=text, cron=_parse_cron(text, stripped, field))
