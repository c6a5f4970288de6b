"""Time windows: the one place that turns a user's `window`, `step`, `tz`, `start`/`end` into instants.

Every query and every CostReport names a span of time, and the two APIs we serve spell it differently:
Alibaba ACK's `GET /v2/cost?window=...` (keywords, durations, RFC3339 or unix pairs, as OpenCost does)
and Alauda's `/platform/cost.alauda.io` usage API (inclusive `start`/`end` dates and a calendar
`step=day|week|month`, rows labelled `YYYYMMDD`). Parsing them once, here, keeps the meaning of
"yesterday" or "June" identical everywhere, and keeps time-zone arithmetic out of the engine.

This module is pure: it never reads a clock or the environment. `now` and the time zone are
parameters; every returned datetime is timezone-aware and in UTC (`datetime.UTC`).

A `Window` is the half-open interval [start, end) of UTC instants, start < end.

`parse_window(text, now=, tz=)` (keywords case-insensitive, whitespace around parts ignored):

    today        [local midnight of now's date, now)
    yesterday    [local midnight of the day before, local midnight of now's date)  (23 h / 25 h on DST days)
    week         [local midnight of this ISO week's Monday, now)
    lastweek     [Monday before that, this week's Monday)            (both at local midnight)
    month        [local midnight of the 1st of this month, now)
    lastmonth    [1st of the previous month, 1st of this month)      (both at local midnight)
    Ns Nm Nh Nd Nw       [now - N, now); N a positive integer, at most 10 years
    2024-03-26T00:00:00Z,2024-03-27T00:00:00Z   RFC3339 pair; an offset (Z, +08:00) is required;
                                                fractional seconds are floored to the second
    1711382400,1711468800                       unix seconds pair, always UTC (tz is ignored)
    2024-03-26,2024-03-27                       [start date, end date) at local midnight in tz

"Local midnight" is computed on dates and then converted to UTC, never by adding a timedelta to an
aware datetime, so days are 23 or 25 hours long across DST changes. When local midnight does not
exist (a DST jump at 00:00), the day starts at the first instant of that local date.

`parse_date_range(start, end, tz=)` reads Alauda's inclusive dates (2025-06-01 or 20250601) as
[start local midnight, day-after-end local midnight); `calendar_periods` splits such a window at
local day, ISO week (Monday) or month boundaries, clipping the first and last period.

Bad user input raises `SpecError(field, message)`, naming the bad text and showing accepted
examples. Programming errors (a naive `now`, an empty `Window`) raise plain `ValueError`.
The lexical parsers (durations, zones, RFC3339, unix, dates) live in `timeparse.py` to keep files
short; import everything, `parse_duration` and `parse_timezone` included, from this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum

from kubetally.domain.errors import SpecError
from kubetally.domain.timeparse import (
    DATE_EXAMPLES,
    DURATION_SHAPE,
    ISO_DATE,
    MAX_DURATION_SECONDS,
    UNIX,
    WINDOW_EXAMPLES,
    duration_or_reason,
    parse_date,
    parse_duration,
    parse_rfc3339,
    parse_timezone,
    parse_unix,
    to_epoch,
    window_error,
)

__all__ = [
    "MAX_DATE_RANGE_DAYS",
    "MAX_DURATION_SECONDS",
    "CalendarPeriod",
    "CalendarStep",
    "Window",
    "calendar_periods",
    "local_midnight",
    "parse_calendar_step",
    "parse_date_range",
    "parse_duration",
    "parse_timezone",
    "parse_window",
]

_SECOND = timedelta(seconds=1)
_DAY = timedelta(days=1)

#: Longest range `parse_date_range` accepts, in days (both ends included).
MAX_DATE_RANGE_DAYS = 366 * 5


@dataclass(frozen=True, slots=True)
class Window:
    """The half-open interval [start, end) of instants; both ends tz-aware and stored in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value: datetime = getattr(self, name)
            if value.tzinfo is None or value.utcoffset() is None:
                raise ValueError(f"Window.{name} must be timezone-aware, got {value!r}")
            object.__setattr__(self, name, value.astimezone(UTC))
        if not self.start < self.end:
            raise ValueError(f"Window start {self.start.isoformat()} not before end {self.end.isoformat()}")

    @property
    def seconds(self) -> int:
        """Whole seconds of end - start (floored)."""
        return (self.end - self.start) // _SECOND

    def start_epoch(self) -> int:
        """Unix seconds of start, floored."""
        return to_epoch(self.start)

    def end_epoch(self) -> int:
        """Unix seconds of end, floored."""
        return to_epoch(self.end)


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The first instant of local date `day` in `tz`, in UTC.

    Built from the date with fold=0, so a nonexistent midnight (DST jump at 00:00) maps to the
    transition instant and a repeated one to its first occurrence.
    """
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


# --- parse_window ------------------------------------------------------------------------------


def _form_of(part: str) -> str:
    if UNIX.fullmatch(part):
        return "unix"
    if ISO_DATE.fullmatch(part):
        return "date"
    return "rfc3339"


def _parse_pair(text: str, first: str, second: str, tz: tzinfo, field: str) -> Window:
    if first == "" or second == "":
        raise window_error(field, f'"{text}" needs a start and an end around the comma')
    form = _form_of(first)
    if _form_of(second) != form:
        raise window_error(field, f'"{text}" mixes two forms; give both ends in the same form')
    if form == "unix":
        start, end = parse_unix(first, field), parse_unix(second, field)
    elif form == "rfc3339":
        start, end = parse_rfc3339(first, field), parse_rfc3339(second, field)
    else:
        days = [parse_date(part, field, WINDOW_EXAMPLES, compact=False) for part in (first, second)]
        try:
            start, end = local_midnight(days[0], tz), local_midnight(days[1], tz)
        except (OverflowError, ValueError):
            raise window_error(field, f'"{text}" is out of range') from None
    if end <= start:
        raise window_error(field, f'"{text}" ends before or when it starts; the end must be after the start')
    return Window(start, end)


def _keyword_bounds(keyword: str, now: datetime, tz: tzinfo) -> tuple[datetime, datetime] | None:
    today = now.astimezone(tz).date()
    monday = today - timedelta(days=today.weekday())
    first = today.replace(day=1)
    if keyword == "today":
        return local_midnight(today, tz), now
    if keyword == "yesterday":
        return local_midnight(today - _DAY, tz), local_midnight(today, tz)
    if keyword == "week":
        return local_midnight(monday, tz), now
    if keyword == "lastweek":
        return local_midnight(monday - timedelta(days=7), tz), local_midnight(monday, tz)
    if keyword == "month":
        return local_midnight(first, tz), now
    if keyword == "lastmonth":
        return local_midnight((first - _DAY).replace(day=1), tz), local_midnight(first, tz)
    return None


def parse_window(text: str, *, now: datetime, tz: tzinfo = UTC, field: str = "window") -> Window:
    """The window `text` names, relative to `now` and the local calendar of `tz` (see module doc).

    A window may start after `now`: no clock reasoning happens here. A keyword window that would be
    empty (`today` asked exactly at local midnight) is a SpecError.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got {now!r}")
    now = now.astimezone(UTC)
    stripped = text.strip()
    if stripped == "":
        raise window_error(field, f'"{text}" is empty')
    parts = [part.strip() for part in stripped.split(",")]
    if len(parts) > 2:
        raise window_error(field, f'"{text}" has {len(parts)} parts; a pair is start,end')
    if len(parts) == 2:
        return _parse_pair(text, parts[0], parts[1], tz, field)
    try:
        bounds = _keyword_bounds(stripped.lower(), now, tz)
    except (OverflowError, ValueError):
        raise window_error(field, f'"{text}" is out of range at now={now.isoformat()}') from None
    if bounds is not None:
        if not bounds[0] < bounds[1]:
            raise window_error(field, f'"{text}" is empty at now={now.isoformat()}, a local midnight')
        return Window(*bounds)
    if DURATION_SHAPE.fullmatch(stripped):
        seconds = duration_or_reason(stripped)
        if isinstance(seconds, str):
            raise window_error(field, seconds)
        try:
            return Window(now - timedelta(seconds=seconds), now)
        except OverflowError:
            raise window_error(field, f'"{text}" reaches before year 1') from None
    if stripped[0].isdigit() and ("-" in stripped or stripped.isdigit()):  # a time: name it if malformed
        form = _form_of(stripped)
        if form == "unix":
            parse_unix(stripped, field)
        elif form == "date":
            parse_date(stripped, field, WINDOW_EXAMPLES, compact=False)
        else:
            parse_rfc3339(stripped, field)
        raise window_error(field, f'"{text}" is a single time; a window needs start,end')
    raise window_error(field, f'"{text}" is not a window')


# --- Alauda calendar dates ---------------------------------------------------------------------


class CalendarStep(StrEnum):
    """The `step` of Alauda's usage API: one row per local day, ISO week or calendar month."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def parse_calendar_step(text: str | None) -> CalendarStep:
    """`day`, `week` or `month` (case-insensitive); None or "" is MONTH, the documented default."""
    stripped = (text or "").strip().lower()
    if stripped == "":
        return CalendarStep.MONTH
    try:
        return CalendarStep(stripped)
    except ValueError:
        raise SpecError("step", f'"{text}" is not a step; accepted: day, week, month') from None


def parse_date_range(start: str, end: str, *, tz: tzinfo = UTC) -> Window:
    """Inclusive local dates → [start local midnight, day-after-end local midnight) in UTC.

    Dates are YYYY-MM-DD or YYYYMMDD; end may equal start (one day); at most 366*5 days.
    """
    first = parse_date(start.strip(), "start", DATE_EXAMPLES, compact=True)
    last = parse_date(end.strip(), "end", DATE_EXAMPLES, compact=True)
    if last < first:
        what = f'"{end}" is before start "{start}"'
        raise SpecError("end", f"{what}; accepted: an end on or after the start, e.g. 2025-06-01..2025-06-30")
    days = (last - first).days + 1
    if days > MAX_DATE_RANGE_DAYS:
        span = f'"{start}".."{end}" spans {days} days, over {MAX_DATE_RANGE_DAYS}'
        raise SpecError("end", f"{span}; accepted: {DATE_EXAMPLES}")
    try:
        return Window(local_midnight(first, tz), local_midnight(last + _DAY, tz))
    except (OverflowError, ValueError):
        raise SpecError("end", f'"{end}" is out of range; accepted: {DATE_EXAMPLES}') from None


def _label(day: date) -> str:
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


@dataclass(frozen=True, slots=True)
class CalendarPeriod:
    """One row of a calendar split: its UTC instants and the local dates it covers (inclusive)."""

    window: Window
    first_day: date
    last_day: date

    def label_start(self) -> str:
        """The first local day as YYYYMMDD, e.g. "20250601"."""
        return _label(self.first_day)

    def label_end(self) -> str:
        """The last local day (inclusive) as YYYYMMDD, e.g. "20250630"."""
        return _label(self.last_day)


def _next_boundary(day: date, step: CalendarStep) -> date:
    if step is CalendarStep.DAY:
        return day + _DAY
    if step is CalendarStep.WEEK:
        return day + timedelta(days=7 - day.weekday())
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


def calendar_periods(window: Window, step: CalendarStep, *, tz: tzinfo = UTC) -> tuple[CalendarPeriod, ...]:
    """Split `window` at local midnights of `tz`: per day, ISO week (Monday) or month, clipped.

    `window` must start and end at local midnights (as `parse_date_range` returns); otherwise
    ValueError, a programming error.
    """
    first_day = window.start.astimezone(tz).date()
    end_day = window.end.astimezone(tz).date()
    if local_midnight(first_day, tz) != window.start or local_midnight(end_day, tz) != window.end:
        raise ValueError(f"{window} does not start and end at local midnights of {tz}")
    step = CalendarStep(step)
    periods: list[CalendarPeriod] = []
    day = first_day
    while day < end_day:
        after = min(_next_boundary(day, step), end_day)
        period = Window(local_midnight(day, tz), local_midnight(after, tz))
        periods.append(CalendarPeriod(period, day, after - _DAY))
        day = after
    return tuple(periods)
