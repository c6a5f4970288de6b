"""What a window text means at a given server minute, written independently of `kubetally.domain.window`.

Why: the campaign's server clock keeps running, so a relative window (`7d`, `today`, `month`) is
resolved at the server's own `now`. The campaign reads the window the server reports, checks that it
is one this module derives from the text for a minute the server clock can have read (the client
tracks the clock's offset within bounds, `ServerClock`), and computes the oracle for exactly it.

Rules (the README's grammar), all instants unix seconds:

    today      [local midnight of now's local date, now)
    yesterday  [local midnight of the day before, local midnight of today)
    week       [local midnight of this ISO week's Monday, now)
    lastweek   [the Monday before, this Monday), both at local midnight
    month      [local midnight of the 1st, now);   lastmonth [1st of the previous month, 1st of this one)
    Nunit      [now − N·unit, now)
    pairs      RFC3339 / unix seconds / dates (local midnights of the query's time zone)

then both bounds are floored to the 60 s resolution. A keyword's `now` only matters through the minute
`E = floor60(now)` and the local date of `E` (local midnights are whole minutes in every zone used).

Alauda `start`/`end` are inclusive local dates: [midnight(start), midnight(end + 1 day)), its end clipped
to `max(start, E)`; periods split at local midnights of days, ISO-week Mondays or month firsts.
"""

from __future__ import annotations

import math
import time as clock
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

RESOLUTION = 60
DAY = 86400
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
KEYWORDS = ("today", "yesterday", "week", "lastweek", "month", "lastmonth")
#: Windows that end at the server's now (their end moves with the clock).
ENDS_AT_NOW = ("today", "week", "month")


def zone(text: str | None) -> tzinfo:
    """The tz a `timeZone` value names (None/"UTC" → UTC; ±HH:MM → a fixed offset; else IANA)."""
    if text is None or text.upper() in ("UTC", "Z", ""):
        return UTC
    if text[0] in "+-":
        sign = -1 if text[0] == "-" else 1
        hours, minutes = int(text[1:3]), int(text[-2:])
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    return ZoneInfo(text)


def floor60(t: int) -> int:
    return t - t % RESOLUTION


def local_date(t: int, tz: tzinfo) -> date:
    return datetime.fromtimestamp(t, tz).date()


def midnight(day: date, tz: tzinfo) -> int:
    """Unix seconds of the first instant of local date `day` (fold 0)."""
    return int(datetime.combine(day, time(0), tzinfo=tz).timestamp())


def keyword_window(word: str, minute: int, tz: tzinfo) -> tuple[int, int]:
    """The floored window of a calendar keyword when the server's clock reads within minute `minute`."""
    today = local_date(minute, tz)
    monday = today - timedelta(days=today.weekday())
    first = today.replace(day=1)
    bounds = {
        "today": (midnight(today, tz), minute),
        "yesterday": (midnight(today - timedelta(days=1), tz), midnight(today, tz)),
        "week": (midnight(monday, tz), minute),
        "lastweek": (midnight(monday - timedelta(days=7), tz), midnight(monday, tz)),
        "month": (midnight(first, tz), minute),
        "lastmonth": (midnight((first - timedelta(days=1)).replace(day=1), tz), midnight(first, tz)),
    }[word]
    return floor60(bounds[0]), floor60(bounds[1])


def duration_windows(seconds: int, minute: int) -> set[tuple[int, int]]:
    """Every floored [now − N, now) for a now within minute `minute` (two when N is not whole minutes)."""
    return {(floor60(minute + second - seconds), minute) for second in range(RESOLUTION)}


def duration_seconds(text: str) -> int:
    return int(text[:-1]) * UNITS[text[-1].lower()]


@dataclass
class ServerClock:
    """Bounds on the server's clock offset: server_now = floor(time.time() − offset), lo ≤ offset ≤ hi.

    `kubetally serve --now T` sets offset = time.time() − T when it starts, so before the first answer
    lo = t_launch − T and hi = t_ready − T. Every answer to a window ending at now reports the minute
    E its clock read at some instant of [t_send, t_recv]: then t_send − E − 60 < offset ≤ t_recv − E.
    """

    lo: float
    hi: float

    def minutes(self, t_send: float, t_recv: float) -> list[int]:
        """The minutes the server clock may have read during a request sent and answered at these times."""
        first = floor60(math.floor(t_send - self.hi))
        last = floor60(math.floor(t_recv - self.lo))
        return list(range(first, last + 1, RESOLUTION))

    def observe(self, minute: int, t_send: float, t_recv: float) -> None:
        """Narrow the bounds with a reported minute; AssertionError when it is impossible."""
        self.lo = max(self.lo, t_send - minute - RESOLUTION)
        self.hi = min(self.hi, t_recv - minute)
        assert self.lo <= self.hi + 1.0, f"the server clock jumped: offset bounds [{self.lo}, {self.hi}]"

    def now(self) -> float:
        """The client's best view of the server clock (middle of the bounds)."""
        return clock.time() - (self.lo + self.hi) / 2


def resolve(text: str, minute: int, tz: tzinfo) -> set[tuple[int, int]]:
    """The floored windows `text` may mean when the server clock is within `minute` (unix pairs are
    always UTC; RFC3339 carries its offset; dates use `tz`)."""
    word = text.strip().lower()
    if word in KEYWORDS:
        return {keyword_window(word, minute, tz)}
    if "," not in text:
        return duration_windows(duration_seconds(text.strip()), minute)
    first, second = (part.strip() for part in text.split(","))
    if first.isdigit():
        return {(floor60(int(first)), floor60(int(second)))}
    if "T" in first:
        return {(floor60(rfc3339(first)), floor60(rfc3339(second)))}
    return {(midnight(date.fromisoformat(first), tz), midnight(date.fromisoformat(second), tz))}


def rfc3339(text: str) -> int:
    """Unix seconds of `2026-01-01T05:17:00Z` or `...+05:30` (fractional seconds floored)."""
    return math.floor(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def to_rfc3339(t: int) -> str:
    """`2026-01-01T05:17:00Z`, the payload's spelling."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Span:
    """[start, end) unix seconds, with the methods `tests.reference` expects of a window."""

    start: int
    end: int

    def start_epoch(self) -> int:
        return self.start

    def end_epoch(self) -> int:
        return self.end


@dataclass(frozen=True)
class Period:
    """One Alauda row period: its instants and its first and last local day (inclusive)."""

    window: Span
    first_day: date
    last_day: date

    def label_start(self) -> str:
        return self.first_day.strftime("%Y%m%d")

    def label_end(self) -> str:
        return self.last_day.strftime("%Y%m%d")


def _next_boundary(day: date, step: str) -> date:
    if step == "day":
        return day + timedelta(days=1)
    if step == "week":
        return day + timedelta(days=7 - day.weekday())
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def alauda_periods(first: date, last: date, step: str, tz: tzinfo) -> list[Period]:
    """Inclusive local dates split per day, ISO week or month, first and last period clipped."""
    periods: list[Period] = []
    day, end_day = first, last + timedelta(days=1)
    while day < end_day:
        after = min(_next_boundary(day, step), end_day)
        periods.append(Period(Span(midnight(day, tz), midnight(after, tz)), day, after - timedelta(days=1)))
        day = after
    return periods
