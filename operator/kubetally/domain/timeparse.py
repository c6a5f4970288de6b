"""The lexical half of `kubetally.domain.window`: text → seconds, time zones, instants and dates.

Split out of `window.py` only to keep files short; `kubetally.domain.window` re-exports the window
parsers (`parse_duration`, `parse_timezone`); the instant writers and readers below (`format_rfc3339`,
`parse_rfc3339`, `to_epoch`, `from_epoch`) are imported from here. Nothing here knows about
`Window`, keywords or `now`. Pure: no clock, no environment (the host's "localtime" zone is refused).

Accepted forms:

    duration     N + one unit of s m h d w ("30m", "12h", "7d", "2w"); N a positive integer;
                 units case-insensitive; one unit only ("1h30m" is refused: write "90m"); ≤ 10 years
    time zone    None, "", "UTC", "Z" → UTC; an IANA name ("Asia/Shanghai"); a fixed offset ±HH:MM or
                 ±HHMM in -12:00..+14:00 (a zero offset is UTC)
    RFC3339      2024-03-26T00:00:00Z or 2024-03-26T08:00:00.750+08:00: the offset is required,
                 fractional seconds are floored (offsets are whole minutes, so local and UTC floors agree)
    unix         non-negative whole seconds since 1970-01-01T00:00:00Z, always UTC
    date         2025-06-01, and also 20250601 where a caller allows it

The way back, for every instant kubetally writes (API bodies, CostReport and CostWeights status,
warnings): `format_rfc3339(epoch)` → "2024-03-26T00:00:00Z" (UTC, whole seconds, 4-digit year), and
`to_epoch` / `from_epoch` between aware datetimes and unix seconds. `parse_rfc3339` reads those
strings back (and any user's RFC3339); nothing else formats or parses RFC3339.

Errors are `SpecError(field, message)`; the message quotes the bad text and ends with accepted
examples.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kubetally.domain.errors import SpecError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)

#: Longest duration accepted: 10 years of 365.25 days, rounded up to whole days.
MAX_DURATION_SECONDS = 3653 * 86400

DURATION_EXAMPLES = "30m, 12h, 7d, 2w"
WINDOW_EXAMPLES = (
    "today, yesterday, week, lastweek, month, lastmonth, 30m, 12h, 7d, 2w, "
    "2024-03-26T00:00:00Z,2024-03-27T00:00:00Z, 1711382400,1711468800, 2024-03-26,2024-03-27"
)
TZ_EXAMPLES = "UTC, Asia/Shanghai, America/New_York, +08:00, -03:30"
DATE_EXAMPLES = "2025-06-01 or 20250601"

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DURATION_SHAPE = re.compile(r"(-?)(\d+)([a-z]+)", re.IGNORECASE)
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:([Zz])|([+-])(\d{2}):(\d{2}))?"
)
ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
UNIX = re.compile(r"\d+")
_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})")


def window_error(field: str, what: str) -> SpecError:
    """A SpecError about a window, ending with every accepted window form."""
    return SpecError(field, f"{what}; accepted: {WINDOW_EXAMPLES}")


def duration_or_reason(text: str) -> int | str:
    """Seconds of a single-unit duration, or why it is not one (a message without examples)."""
    match = DURATION_SHAPE.fullmatch(text.strip())
    if match is None or match.group(3).lower() not in _UNIT_SECONDS:
        return f'"{text}" is not a duration'
    sign, digits, unit = match.groups()
    if sign == "-" or int(digits) == 0:
        return f'"{text}" must be a positive duration'
    if len(digits) > 15 or int(digits) * _UNIT_SECONDS[unit.lower()] > MAX_DURATION_SECONDS:
        return f'"{text}" is over 10 years'
    return int(digits) * _UNIT_SECONDS[unit.lower()]


def parse_duration(text: str, *, field: str = "step") -> int:
    """Seconds of `Nunit` (N a positive integer, unit one of s m h d w), e.g. "12h" → 43200."""
    result = duration_or_reason(text)
    if isinstance(result, str):
        raise SpecError(field, f"{result}; accepted: {DURATION_EXAMPLES}")
    return result


def parse_timezone(text: str | None) -> tzinfo:
    """UTC for None, "", "UTC" or "Z"; an IANA zone ("Asia/Shanghai"); or a fixed offset "+08:00"."""
    stripped = (text or "").strip()
    if stripped == "" or stripped.upper() in ("UTC", "Z"):
        return UTC
    bad = SpecError("tz", f'"{text}" is not a time zone; accepted: {TZ_EXAMPLES}')
    offset = _OFFSET.fullmatch(stripped)
    if offset is not None:
        sign, hours, minutes = offset.groups()
        if int(minutes) >= 60:
            raise bad
        delta = timedelta(hours=int(hours), minutes=int(minutes)) * (-1 if sign == "-" else 1)
        if not timedelta(hours=-12) <= delta <= timedelta(hours=14):
            raise SpecError("tz", f'"{text}" is outside -12:00..+14:00; accepted: {TZ_EXAMPLES}')
        return UTC if delta == timedelta(0) else timezone(delta)
    if stripped.lower() == "localtime" or stripped[0] in "+-":
        raise bad
    try:
        return ZoneInfo(stripped)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise bad from None


def to_epoch(t: datetime) -> int:
    """Unix seconds of the aware instant `t`, floored: ⌊(t − 1970-01-01T00:00:00Z) / 1 s⌋."""
    return (t - EPOCH) // _SECOND


def from_epoch(epoch: int) -> datetime:
    """The aware UTC instant `epoch` unix seconds after 1970-01-01T00:00:00Z (negative: before)."""
    return EPOCH + timedelta(seconds=epoch)


def format_rfc3339(epoch: int) -> str:
    """Unix seconds as RFC3339 in UTC with a `Z`, e.g. 1711411200 → "2024-03-26T00:00:00Z".

    The one writer of instants: ISO 8601's zero-padded 4-digit year, whole seconds, no offset other
    than Z; `parse_rfc3339` reads it back to the same second."""
    return from_epoch(epoch).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def parse_rfc3339(part: str, field: str = "time") -> datetime:
    """An RFC3339 time with a required offset, floored to the second, in UTC; a SpecError naming
    `field` otherwise (e.g. `parse_rfc3339(format_rfc3339(t)) == from_epoch(t)`)."""
    match = _RFC3339.fullmatch(part)
    if match is None:
        raise window_error(field, f'"{part}" is not an RFC3339 time')
    year, month, day, hour, minute, second, zulu, sign, off_h, off_m = match.groups()
    if zulu is None and sign is None:
        raise window_error(field, f'"{part}" has no offset: end it with Z or an offset such as +08:00')
    try:
        zone: tzinfo = UTC
        if zulu is None:
            if int(off_m) >= 60:
                raise ValueError(off_m)
            delta = timedelta(hours=int(off_h), minutes=int(off_m))
            zone = timezone(-delta if sign == "-" else delta)
        fields = (int(year), int(month), int(day), int(hour), int(minute), int(second))
        return datetime(*fields, tzinfo=zone).astimezone(UTC)
    except (ValueError, OverflowError):
        raise window_error(field, f'"{part}" is not an RFC3339 time') from None


def parse_unix(part: str, field: str) -> datetime:
    """Non-negative unix seconds as a UTC datetime."""
    if UNIX.fullmatch(part) is None or len(part) > 12:
        raise window_error(field, f'"{part}" is not a unix time in seconds')
    try:
        return EPOCH + timedelta(seconds=int(part))
    except OverflowError:
        raise window_error(field, f'"{part}" is out of range (past the year 9999)') from None


def parse_date(part: str, field: str, examples: str, *, compact: bool) -> date:
    """A calendar date YYYY-MM-DD (and YYYYMMDD when `compact`)."""
    match = ISO_DATE.fullmatch(part) or (_COMPACT_DATE.fullmatch(part) if compact else None)
    try:
        if match is None:
            raise ValueError(part)
        return date(*(int(group) for group in match.groups()))
    except ValueError:
        raise SpecError(field, f'"{part}" is not a date; accepted: {examples}') from None
